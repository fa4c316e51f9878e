#!/usr/bin/env bash
# Side-by-side benchmark: this worker as `saga worker` starts it (all roles in one process, so
# local activities) and with regular activities (`--dispatch remote`, what split roles run)
# against the official Python
# SDK peer (scripts/peer/peer_saga.py), on ONE in-memory dev server, driven by ONE load
# generator (`saga-bench`) with the same orders, alternating, several rounds; prints medians
# and ratios. See docs/performance-history.md for the method.
#
# Knobs (environment): ROUNDS (3), N (1500, sagas per throughput run), C (100), LAT_N (100,
# sagas per latency run at concurrency 1), SWEEP ("1 10 100 500"), SWEEP_N (1000),
# MODES ("intake default remote"; "default" is `saga worker` with no flag, orders started
# through the server as any client starts them; "intake" is the same worker with `--intake`,
# orders posted to it, so the server hands each saga's first task back in the start reply
# (eager workflow start); the others pass --dispatch MODE), PEER (1 = include the peer), WARMUP (20, untimed sagas per run),
# SERVER_ARGS (extra start-dev flags),
# WORKER_ARGS (extra `saga worker` flags), OUT (results directory), SAGA_BIN (use this binary
# instead of building the shipped one, `target/dist/saga`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
N=${N:-1500}
C=${C:-100}
LAT_N=${LAT_N:-100}
SWEEP=${SWEEP-"1 10 100 500"} # empty: no sweep
SWEEP_N=${SWEEP_N:-1000}
MODES=${MODES:-"intake default remote"}
PEER=${PEER:-1}
WARMUP=${WARMUP:-20}
SERVER_ARGS=${SERVER_ARGS:-}
WORKER_ARGS=${WORKER_ARGS:-}
OUT=${OUT:-$ROOT/.bench/results-$(date -u +%Y%m%dT%H%M%SZ)}
PEER_SCRIPT=${PEER_SCRIPT:-$ROOT/scripts/peer/peer_saga.py}
VENV=$ROOT/.bench/peer
mkdir -p "$OUT"
log() { echo "[bench-compare $(date -u +%H:%M:%S)] $*" >&2; }

# The shipped build (Cargo.toml's `dist` profile, what the Docker image runs); its first build
# takes several minutes more than `release`.
SAGA=${SAGA_BIN:-$ROOT/target/dist/saga}
# The load generator, beside the worker's binary unless named (SAGA_BENCH_BIN).
BENCH=${SAGA_BENCH_BIN:-$(dirname "$SAGA")/saga-bench}
if [[ -z ${SAGA_BIN:-} ]]; then
  log "building the shipped binaries (cargo build --profile dist)"
  cargo build --profile dist -p saga-worker -p saga-bench --quiet
fi

if [[ $PEER == 1 ]] && ! "$VENV/bin/python" -c 'import temporalio' 2>/dev/null; then
  log "setting up the Python peer in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet temporalio==1.35.0
fi

# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
log "starting one in-memory dev server"
# shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
start_bench_server "$OUT/server.log" $SERVER_ARGS
log "dev server on $TEMPORAL_ADDRESS"

WORKER_PID=
INTAKE_ARGS=()
# start_worker IMPL QUEUE DATA_DIR: a fresh worker process (peak RSS is per process). `saga
# worker` logs at its default level (info: a line per step) into worker.log, as a process
# manager would capture it; the peer at its own default.
start_worker() {
  local impl=$1 queue=$2 dir=$3
  mkdir -p "$dir"
  INTAKE_ARGS=()
  case $impl in
    peer)
      "$VENV/bin/python" "$PEER_SCRIPT" worker "$TEMPORAL_ADDRESS" "$queue" >"$dir/worker.log" 2>&1 &
      ;;
    intake)
      local address
      address=127.0.0.1:$(free_port)
      # shellcheck disable=SC2086
      SAGA_DATA_DIR=$dir "$SAGA" worker --task-queue "$queue" --intake "$address" \
        $WORKER_ARGS >"$dir/worker.log" 2>&1 &
      INTAKE_ARGS=(--intake "http://$address")
      wait_listening "$address" "$dir/worker.log" || true
      ;;
    *)
      local dispatch=(--dispatch "$impl")
      [[ $impl == default ]] && dispatch=()
      # shellcheck disable=SC2086
      SAGA_DATA_DIR=$dir "$SAGA" worker --task-queue "$queue" "${dispatch[@]}" \
        $WORKER_ARGS >"$dir/worker.log" 2>&1 &
      ;;
  esac
  WORKER_PID=$!
  PIDS+=("$WORKER_PID")
}
stop_worker() {
  kill "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
}

# run IMPL SCENARIO ROUND N C: one measured run with a fresh worker on a fresh queue.
run() {
  local impl=$1 scenario=$2 round=$3 n=$4 c=$5
  local name=$impl-$scenario-c$c-r$round
  local dir=$OUT/$name queue=bench-$name-$RANDOM
  start_worker "$impl" "$queue" "$dir"
  local checks=(--data-dir "$dir")
  # The peer keeps no stores: its answers are checked from the history only.
  [[ $impl == peer ]] && checks=(--no-store-check)
  log "$name: $n sagas at concurrency $c"
  if ! "$BENCH" --label "$impl" --sagas "$n" --concurrency "$c" --task-queue "$queue" \
    --warmup "$WARMUP" \
    --worker-pid "$WORKER_PID" --server-pid "$SERVER_PID" "${checks[@]}" "${INTAKE_ARGS[@]}" \
    --json --quiet \
    >"$dir/report.json" 2>"$dir/bench.log"; then
    log "$name FAILED: $(cat "$dir/bench.log")"
    echo "$name" >>"$OUT/failed-runs.txt"
  fi
  # One line per run, tagged with what it measured, for bench-summary.py.
  python3 - "$dir/report.json" "$scenario" "$round" >>"$OUT/runs.jsonl" <<'PY' || true
import json, sys
report = json.load(open(sys.argv[1]))
report.update(scenario=sys.argv[2], round=int(sys.argv[3]))
print(json.dumps(report, separators=(",", ":")))
PY
  stop_worker
}

IMPLS=()
[[ $PEER == 1 ]] && IMPLS+=(peer)
for m in $MODES; do IMPLS+=("$m"); done

for round in $(seq "$ROUNDS"); do
  # Rotate who goes first so that no one always runs on the warmest (or noisiest) server.
  k=${#IMPLS[@]}
  for i in $(seq 0 $((k - 1))); do
    impl=${IMPLS[$(((i + round - 1) % k))]}
    run "$impl" throughput "$round" "$N" "$C"
    run "$impl" latency "$round" "$LAT_N" 1
  done
done

for c in $SWEEP; do
  for impl in "${IMPLS[@]}"; do
    [[ $impl == peer ]] && continue
    n=$SWEEP_N
    [[ $c == 1 ]] && n=$LAT_N
    run "$impl" sweep 1 "$n" "$c"
  done
done

log "results in $OUT"
status=0
python3 "$ROOT/scripts/bench-summary.py" "$OUT/runs.jsonl" | tee "$OUT/summary.txt" || status=1
if [[ -s $OUT/failed-runs.txt ]]; then
  echo "runs that did not finish (see their bench.log and worker.log): $(paste -sd' ' "$OUT/failed-runs.txt")" |
    tee -a "$OUT/summary.txt"
  status=1
fi
exit $status
