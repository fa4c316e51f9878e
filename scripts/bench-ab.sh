#!/usr/bin/env bash
# Two builds of `saga` side by side: is the worker of build B slower than build A's? Used to
# judge a build setting (release profile, features) by what it does to the worker, with the
# method of docs/performance-history.md: one in-memory dev server, one load generator (`saga-bench` of build
# B) for both, a fresh worker process and queue per run, the two builds alternating (the first
# rotating each round), every answer checked; medians over rounds and the per-round ratio B/A.
#
# Usage: scripts/bench-ab.sh BIN_A BIN_B   (each a `saga` binary with its `saga-bench` beside it)
# Knobs (environment): ROUNDS (3), N (1000 sagas per run), C (100), MODES ("remote local"),
# WARMUP (20), OUT (results directory). The workers log at warn, so both builds write the same
# (nothing) and only the build differs. A mode is a `--dispatch` value, or "intake": the worker as
# `saga worker --intake` runs it, with orders posted to it (eager workflow start).
set -euo pipefail

[[ $# == 2 ]] || { echo "usage: $0 BIN_A BIN_B" >&2; exit 2; }
A=$1 B=$2
ROUNDS=${ROUNDS:-3}
N=${N:-1000}
C=${C:-100}
MODES=${MODES:-"remote local"}
WARMUP=${WARMUP:-20}
OUT=${OUT:-$(mktemp -d /tmp/bench-ab.XXXXXX)}
mkdir -p "$OUT"
log() { echo "[bench-ab $(date -u +%H:%M:%S)] $*" >&2; }
# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
log "one in-memory dev server; results in $OUT"
start_bench_server "$OUT/server.log"

# run LABEL BIN MODE ROUND: one measured run with a fresh worker of BIN on a fresh queue.
run() {
    local label=$1 bin=$2 mode=$3 round=$4
    local name=$label-$mode-r$round
    local dir=$OUT/$name queue=ab-$name-$RANDOM
    mkdir -p "$dir"
    local flags=(--dispatch "$mode") intake=()
    if [[ $mode == intake ]]; then
        local address
        address=127.0.0.1:$(free_port)
        flags=(--intake "$address")
        intake=(--intake "http://$address")
    fi
    SAGA_DATA_DIR=$dir SAGA_LOG=warn "$bin" worker --task-queue "$queue" "${flags[@]}" \
        >"$dir/worker.log" 2>&1 &
    local worker=$!
    PIDS+=("$worker")
    [[ $mode != intake ]] || wait_listening "${flags[1]}" "$dir/worker.log"
    log "$name: $N sagas at concurrency $C"
    if ! "$(dirname "$B")/saga-bench" --label "$label" --sagas "$N" --concurrency "$C" --task-queue "$queue" \
        --warmup "$WARMUP" --worker-pid "$worker" --server-pid "$SERVER_PID" \
        --data-dir "$dir" "${intake[@]}" --json --quiet >"$dir/report.json" 2>"$dir/bench.log"; then
        log "$name FAILED: $(cat "$dir/bench.log")"
        exit 1
    fi
    python3 - "$dir/report.json" "$mode" "$round" >>"$OUT/runs.jsonl" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
report.update(mode=sys.argv[2], round=int(sys.argv[3]))
print(json.dumps(report, separators=(",", ":")))
PY
    kill "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
    for mode in $MODES; do
        if ((round % 2)); then
            run A "$A" "$mode" "$round"
            run B "$B" "$mode" "$round"
        else
            run B "$B" "$mode" "$round"
            run A "$A" "$mode" "$round"
        fi
    done
done

python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(xs): return statistics.median(xs) if xs else float("nan")
metrics = [("sagas/s", lambda r: r["sagas_per_s"]),
           ("p50 ms", lambda r: r["latency"]["p50_ms"]),
           ("p95 ms", lambda r: r["latency"]["p95_ms"]),
           ("worker CPU ms/saga", lambda r: r["worker"]["cpu_ms_per_saga"]),
           ("worker peak RSS MiB", lambda r: r["worker"]["peak_rss_mib"])]
print(f"{'mode':7} {'metric':20} {'A (median)':>11} {'B (median)':>11} {'B/A per round (median, range)':>32}")
for mode in sorted({r["mode"] for r in runs}):
    for name, get in metrics:
        a = {r["round"]: get(r) for r in runs if r["mode"] == mode and r["label"] == "A"}
        b = {r["round"]: get(r) for r in runs if r["mode"] == mode and r["label"] == "B"}
        ratios = [b[k] / a[k] for k in sorted(a) if k in b and a[k]]
        print(f"{mode:7} {name:20} {med(list(a.values())):11.2f} {med(list(b.values())):11.2f} "
              f"{med(ratios):14.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
fails = sum(r["failures"] for r in runs)
print(f"{len(runs)} runs, {sum(r['paths_checked'] for r in runs)} sagas checked, {fails} wrong answers")
PY
