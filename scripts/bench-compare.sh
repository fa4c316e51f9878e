#!/usr/bin/env bash
# Side-by-side benchmark of this worker against every configuration of the two peer SDKs in
# scripts/peer/ (verbatim copies of the reference peers): the same saga, the same server build
# and flags, the same load generator (`saga-bench`, store checks off for the peers, which keep
# no stores), configurations alternating within each round, a fresh in-memory dev server for
# each run.
# Prints medians and, per goal, the ratio against the best peer figure on each measure.
# The method is written down in docs/performance.md.
#
# Configurations (CONFIGS, all by default):
#   default    `saga worker` as it starts; orders started through the server, as any client does,
#              naming the worker's dispatch in the start request (`saga start --dispatch local`)
#   unnamed    the same, the dispatch not named (as `temporal workflow start` without a memo):
#              the saga records the choice in a patch marker, with the SDK's upsert beside it
#   intake     the same worker with `--intake`; orders posted to it, started eagerly
#   remote     `saga worker --dispatch remote`: each step a regular activity (split roles),
#              started naming `remote`
#   py         Python SDK, regular activities          (peer_saga.py worker)
#   py-local   Python SDK, local activities            (peer_saga.py worker --local)
#   py-eager   Python SDK, local activities, eager start, worker and starter in one process
#              (peer_saga.py selfload; it drives itself, see scripts/lib/selfload-run.py)
#   ts         TypeScript SDK, regular activities      (peer.js worker)
#   ts-local   TypeScript SDK, local activities        (peer.js worker --local)
#   floor      `saga-floor`, an OrderSaga that runs no step: what the server alone allows
#              (start, one workflow task, completion), the floor under every figure above
#   floor-intake  the same with orders posted to its intake (`saga-floor --intake`), started
#              eagerly: the floor under the intake's figures
#   shape      `saga-floor` with the saga's events and empty steps (four local activities that
#              do nothing, the outcome's upsert; no patch marker, as the start names the
#              dispatch): what the SDK and the server spend on this saga's shape, whatever its
#              steps do
#   shape-intake  the same posted to its intake
#
# Knobs (environment): ROUNDS (3), N (400, sagas per throughput run), C (100), LAT_N (30, sagas
# per latency run at concurrency 1), WARMUP (20, untimed sagas per run), CONFIGS, SWEEP
# (concurrencies for a one-run sweep of this worker's configurations after the rounds, e.g.
# "10 100 500"; empty by default), SWEEP_N (1000), SERVER_ARGS (extra start-dev flags),
# SA_CACHE (1: the servers cache their search attributes, as a production server does; 0: as the
# dev server comes, reading them from its store on every use; see scripts/lib/bench-server.sh),
# WORKER_ARGS (extra `saga worker` flags), OUT (results directory), SAGA_BIN (use this binary
# instead of building the shipped one, `target/dist/saga`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
N=${N:-400}
C=${C:-100}
LAT_N=${LAT_N:-30}
WARMUP=${WARMUP:-20}
CONFIGS=${CONFIGS:-"default unnamed intake remote py py-local py-eager ts ts-local floor floor-intake shape shape-intake"}
SWEEP=${SWEEP-}
SWEEP_N=${SWEEP_N:-1000}
SERVER_ARGS=${SERVER_ARGS:-}
WORKER_ARGS=${WORKER_ARGS:-}
OUT=${OUT:-$ROOT/.bench/results-$(date -u +%Y%m%dT%H%M%SZ)}
PY_PEER=$ROOT/scripts/peer/peer_saga.py
PY_VENV=$ROOT/.bench/peer
TS_DIR=$ROOT/.bench/peer-ts
mkdir -p "$OUT"
log() { echo "[bench-compare $(date -u +%H:%M:%S)] $*" >&2; }

# The shipped build (Cargo.toml's `dist` profile, what the Docker image runs); its first build
# takes several minutes more than `release`.
SAGA=${SAGA_BIN:-$ROOT/target/dist/saga}
# The load generator, beside the worker's binary unless named (SAGA_BENCH_BIN).
BENCH=${SAGA_BENCH_BIN:-$(dirname "$SAGA")/saga-bench}
FLOOR=$(dirname "$BENCH")/saga-floor
if [[ -z ${SAGA_BIN:-} ]]; then
  log "building the shipped binaries (cargo build --profile dist)"
  cargo build --profile dist -p saga-worker -p saga-bench --quiet
fi
# A stale link order leaves the worker's code spread over its binary: about 6 MiB more resident
# (docs/performance-history.md, "Link order"). Said here, since every figure below would show it.
if ! match=$(python3 "$ROOT/scripts/lib/link-order-match.py" "$SAGA" "$ROOT/worker/link-order.txt"); then
  log "WARNING: $match; record it again (scripts/link-order.sh) before trusting the memory figures"
else
  log "link order: $match"
fi

# The peers at the versions their own files pin: temporalio 1.35.0 for Python (peer_saga.py's
# header), package-lock.json for TypeScript.
if [[ " $CONFIGS " == *" py"* ]] && ! "$PY_VENV/bin/python" -c 'import temporalio' 2>/dev/null; then
  log "setting up the Python peer in $PY_VENV"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install --quiet temporalio==1.35.0
fi
if [[ " $CONFIGS " == *" ts"* ]] &&
  ! cmp -s "$ROOT/scripts/peer/typescript/package-lock.json" "$TS_DIR/package-lock.json" 2>/dev/null; then
  log "setting up the TypeScript peer in $TS_DIR (npm ci)"
  rm -rf "$TS_DIR" && mkdir -p "$TS_DIR"
  cp "$ROOT"/scripts/peer/typescript/* "$TS_DIR/"
  (cd "$TS_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"

WORKER_PID=
INTAKE_ARGS=()
# wait_for_line FILE TEXT SECONDS: until the log holds TEXT (the TypeScript worker bundles its
# workflows before it polls, which would otherwise count as the first sagas' latency).
wait_for_line() {
  for _ in $(seq $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  log "no '$2' in $1 after $3 s"
}
# start_worker CONFIG QUEUE DIR: a fresh worker process (peak RSS is per process). `saga worker`
# logs at its default level (info: a line per step) into worker.log, as a process manager would
# capture it; the peers at their own defaults.
start_worker() {
  local config=$1 queue=$2 dir=$3
  INTAKE_ARGS=()
  case $config in
    py | py-local)
      local flags=()
      [[ $config == py-local ]] && flags=(--local)
      "$PY_VENV/bin/python" "$PY_PEER" worker "$TEMPORAL_ADDRESS" "$queue" "${flags[@]}" \
        >"$dir/worker.log" 2>&1 &
      ;;
    ts | ts-local)
      local flags=()
      [[ $config == ts-local ]] && flags=(--local)
      node "$TS_DIR/peer.js" worker "$TEMPORAL_ADDRESS" "$queue" "${flags[@]}" >"$dir/worker.log" 2>&1 &
      ;;
    intake)
      local address
      address=127.0.0.1:$(free_port)
      # shellcheck disable=SC2086 # WORKER_ARGS is a list of flags
      SAGA_DATA_DIR=$dir "$SAGA" worker --task-queue "$queue" --intake "$address" \
        $WORKER_ARGS >"$dir/worker.log" 2>&1 &
      INTAKE_ARGS=(--intake "http://$address")
      ;;
    default | unnamed | remote)
      local dispatch=()
      [[ $config == remote ]] && dispatch=(--dispatch remote)
      # shellcheck disable=SC2086
      SAGA_DATA_DIR=$dir "$SAGA" worker --task-queue "$queue" "${dispatch[@]}" \
        $WORKER_ARGS >"$dir/worker.log" 2>&1 &
      ;;
    floor | shape)
      local steps=()
      [[ $config == shape ]] && steps=(--local-steps 4 --upserts 1)
      "$FLOOR" --task-queue "$queue" "${steps[@]}" >"$dir/worker.log" 2>&1 &
      ;;
    floor-intake | shape-intake)
      local address steps=()
      [[ $config == shape-intake ]] && steps=(--local-steps 4 --upserts 1)
      address=127.0.0.1:$(free_port)
      "$FLOOR" --task-queue "$queue" --intake "$address" "${steps[@]}" >"$dir/worker.log" 2>&1 &
      INTAKE_ARGS=(--intake "http://$address")
      ;;
    *)
      echo "unknown configuration '$config' in CONFIGS" >&2
      exit 2
      ;;
  esac
  WORKER_PID=$!
  PIDS+=("$WORKER_PID")
  case $config in
    intake | floor-intake | shape-intake) wait_listening "$address" "$dir/worker.log" || true ;;
    ts | ts-local) wait_for_line "$dir/worker.log" "peer worker ready" 120 ;;
  esac
}
stop_worker() {
  kill "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  forget_pid "$WORKER_PID"
}

# run CONFIG SCENARIO ROUND N C: one measured run with a fresh worker on a fresh queue of a
# fresh dev server (its log in the run's directory); appends its report, tagged with what it
# measured, to runs.jsonl.
#
# Why a server per run: an in-memory dev server grows with every saga it has run, and a dozen
# configurations rotating one place a round over three rounds do not share the places fairly
# (with twelve, the first ran 1st, 12th and 11th; the eighth 8th, 7th and 6th). A fresh server
# gives every run the same start; the rotation still spreads the machine's drift over the
# configurations.
run() {
  local config=$1 scenario=$2 round=$3 n=$4 c=$5
  local name=$config-$scenario-c$c-r$round
  local dir=$OUT/$name queue=bench-$name-$RANDOM
  mkdir -p "$dir"
  # shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
  if ! start_bench_server "$dir/server.log" $SERVER_ARGS; then
    log "$name FAILED: its dev server did not start (see $dir/server.log)"
    echo "$name" >>"$OUT/failed-runs.txt"
    return 0
  fi
  log "$name: $n sagas at concurrency $c (a fresh dev server on $TEMPORAL_ADDRESS)"
  local ok=1
  if [[ $config == py-eager ]]; then
    python3 "$ROOT/scripts/lib/selfload-run.py" "$PY_VENV/bin/python" "$PY_PEER" \
      "$TEMPORAL_ADDRESS" "$queue" "$n" "$c" "$WARMUP" "$SERVER_PID" "$config" \
      >"$dir/report.json" 2>"$dir/bench.log" || ok=
  else
    start_worker "$config" "$queue" "$dir"
    local checks=(--data-dir "$dir")
    [[ $config == py* || $config == ts* ]] && checks=(--no-store-check)
    [[ $config == floor* || $config == shape* ]] && checks=(--floor)
    # The load generator names the dispatch of the worker it started, as `saga start
    # --dispatch` does; `unnamed` starts as the temporal CLI does without a memo.
    local named=()
    case $config in
      default) named=(--dispatch local) ;;
      remote) named=(--dispatch remote) ;;
    esac
    "$BENCH" --label "$config" --sagas "$n" --concurrency "$c" --task-queue "$queue" \
      --warmup "$WARMUP" --worker-pid "$WORKER_PID" --server-pid "$SERVER_PID" \
      "${checks[@]}" "${named[@]}" "${INTAKE_ARGS[@]}" --json --quiet \
      >"$dir/report.json" 2>"$dir/bench.log" || ok=
    stop_worker
  fi
  stop_bench_server
  if [[ -z $ok ]]; then
    log "$name FAILED: $(tail -c 2000 "$dir/bench.log")"
    echo "$name" >>"$OUT/failed-runs.txt"
  fi
  python3 - "$dir/report.json" "$scenario" "$round" >>"$OUT/runs.jsonl" <<'PY' || true
import json, sys
report = json.load(open(sys.argv[1]))
report.update(scenario=sys.argv[2], round=int(sys.argv[3]))
print(json.dumps(report, separators=(",", ":")))
PY
}

read -r -a CONFIG_LIST <<<"$CONFIGS"
k=${#CONFIG_LIST[@]}
for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  # Rotate who goes first, so that no one always runs while the machine is at its quietest (or
  # its noisiest).
  for i in $(seq 0 $((k - 1))); do
    config=${CONFIG_LIST[$(((i + round - 1) % k))]}
    run "$config" throughput "$round" "$N" "$C"
    run "$config" latency "$round" "$LAT_N" 1
  done
done

if [[ -n $SWEEP ]]; then
  for c in $SWEEP; do
    for config in default intake; do
      run "$config" sweep 1 "$SWEEP_N" "$c"
    done
  done
fi
echo "every run: a fresh temporal server start-dev ${SERVER_FLAGS-} ($(temporal --version | head -1))" \
  >"$OUT/servers.txt"

log "results in $OUT"
status=0
if [[ -s $OUT/runs.jsonl ]]; then
  python3 "$ROOT/scripts/bench-summary.py" "$OUT/runs.jsonl" | tee "$OUT/summary.txt" || status=1
else
  echo "no run finished" | tee "$OUT/summary.txt"
  status=1
fi
cat "$OUT/servers.txt" >>"$OUT/summary.txt"
if [[ -s $OUT/failed-runs.txt ]]; then
  echo "runs that did not finish (see their bench.log, worker.log and server.log): $(paste -sd' ' "$OUT/failed-runs.txt")" |
    tee -a "$OUT/summary.txt"
  status=1
fi
exit $status
