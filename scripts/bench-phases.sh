#!/usr/bin/env bash
# Where one saga's time goes on the default path: `saga worker` as it starts (all roles, local
# activities) on an unmodified dev server, one saga at a time, started through the server and
# posted to the worker's order intake. Prints the medians of each phase, from the client's clock
# (`saga-bench`) and the history's event times (the server's clock).
#
#   worker start-up     spawning `saga worker` until a saga started at that moment is done
#   start request       StartWorkflowExecution, client round trip (or the post to the intake)
#   task queued         WorkflowExecutionStarted → WorkflowTaskStarted (the server hands the first
#                       workflow task to the worker's poll; with the intake, in the start reply)
#   worker runs saga    WorkflowTaskStarted → WorkflowTaskCompleted (the four local activities,
#                       their SQLite commits, the workflow code; one task when nothing fails)
#   completion          WorkflowTaskCompleted → WorkflowExecutionCompleted
#   result to client    what the client's end-to-end time holds beyond the start request and
#                       the server-side span (the result long-poll returning)
#
# N (100 sagas), SAGA_BIN (target/dist/saga, the shipped build, built when missing), OUT (results
# directory).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100}
SAGA=${SAGA_BIN:-target/dist/saga}
OUT=${OUT:-.bench/phases-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
BENCH=${SAGA_BENCH_BIN:-$(dirname "$SAGA")/saga-bench}
[[ -x $SAGA && -x $BENCH ]] || cargo build --profile dist -p saga-worker -p saga-bench --quiet
# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
start_bench_server "$OUT/server.log"

# Worker start-up, five times: a fresh worker and data directory each, the saga started at once.
for i in 1 2 3 4 5; do
    dir=$OUT/cold-$i queue=phases-cold-$i
    mkdir -p "$dir"
    t0=$(date +%s%N)
    SAGA_DATA_DIR=$dir "$SAGA" worker --task-queue "$queue" >"$dir/worker.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    SAGA_DATA_DIR=$dir "$SAGA" start --task-queue "$queue" --wait testdata/scenario-7.json \
        --workflow-id "cold-$i-$RANDOM" >/dev/null 2>&1
    echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/cold-ms.txt"
    kill "$pid" && wait "$pid" 2>/dev/null || true
done

# One saga at a time, twice: started through the server as any client starts it, then posted to
# the worker's order intake (`--intake`), which starts it with eager workflow start.
for path in server intake; do
    queue=phases-$path dir=$OUT/$path
    mkdir -p "$dir"
    args=() bench_args=()
    if [[ $path == intake ]]; then
        address=127.0.0.1:$(free_port)
        args=(--intake "$address")
        bench_args=(--intake "http://$address")
    fi
    SAGA_DATA_DIR=$dir "$SAGA" worker --task-queue "$queue" "${args[@]}" \
        >"$dir/worker.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if [[ $path == intake ]]; then
        wait_listening "$address" "$dir/worker.log"
    fi
    SAGA_DATA_DIR=$dir "$BENCH" -n "$N" -c 1 --task-queue "$queue" "${bench_args[@]}" \
        --json --quiet >"$dir/bench.json"
    temporal workflow list --query "TaskQueue='$queue'" --limit 1000 --output json \
        >"$dir/list.json"
    # One worker at a time: the next path is measured without this one polling beside it.
    kill "$pid" && wait "$pid" 2>/dev/null || true
done
python3 - "$OUT" <<'PY'
import json, statistics, subprocess, sys
from datetime import datetime
out = sys.argv[1]
def t(e):
    s = e["eventTime"].rstrip("Z")
    head, _, frac = s.partition(".")
    return datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))
def phases_of(path):
    ids = [w["execution"]["workflowId"] for w in json.load(open(f"{out}/{path}/list.json"))]
    phases = {"task queued": [], "worker runs saga": [], "completion": [], "server span": [], "tasks": []}
    for wid in ids:
        h = json.loads(subprocess.run(["temporal", "workflow", "show", "-w", wid, "--output", "json"],
                                      check=True, capture_output=True).stdout)
        ev = h["events"]
        first = lambda kind: next(e for e in ev if e["eventType"] == kind)
        last = lambda kind: [e for e in ev if e["eventType"] == kind][-1]
        started, closed = first("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"), ev[-1]
        phases["task queued"].append(t(first("EVENT_TYPE_WORKFLOW_TASK_STARTED")) - t(started))
        phases["worker runs saga"].append(t(last("EVENT_TYPE_WORKFLOW_TASK_COMPLETED")) - t(first("EVENT_TYPE_WORKFLOW_TASK_STARTED")))
        phases["completion"].append(t(closed) - t(last("EVENT_TYPE_WORKFLOW_TASK_COMPLETED")))
        phases["server span"].append(t(closed) - t(started))
        phases["tasks"].append(sum(e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_STARTED" for e in ev))
    bench = json.load(open(f"{out}/{path}/bench.json"))
    med = lambda xs: statistics.median(xs) * 1000
    start, e2e = bench["start_latency"]["p50_ms"], bench["latency"]["p50_ms"]
    return len(ids), {
        "start request (client)": start,
        "task queued (server clock)": med(phases["task queued"]),
        "worker runs saga (server clock)": med(phases["worker runs saga"]),
        "completion (server clock)": med(phases["completion"]),
        "result to client (the rest)": e2e - start - med(phases["server span"]),
        "end to end (client)": e2e,
        "workflow tasks per saga": statistics.median(phases["tasks"]),
    }
cold = [int(x) for x in open(f"{out}/cold-ms.txt")]
(n, server), (_, intake) = phases_of("server"), phases_of("intake")
print(f"{n} sagas per path (the warm-up included) at concurrency 1, `saga worker` as it starts; medians:")
print(f"  {'':<36}{'started via server':>20}{'posted to intake':>18}")
print(f"  {'worker start-up to first saga done':<36}{statistics.median(cold):17.1f} ms  (5 fresh workers: {cold})")
for name in server:
    unit = "" if name == "workflow tasks per saga" else " ms"
    print(f"  {name:<36}{server[name]:17.1f}{unit:3}{intake[name]:15.1f}{unit}")
PY
