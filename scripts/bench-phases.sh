#!/usr/bin/env bash
# Where one saga's time goes on the default path: `saga worker` as it starts (all roles, local
# activities) on an unmodified dev server, one saga at a time. Prints the medians of each phase,
# from the client's clock (`saga bench`) and the history's event times (the server's clock).
#
#   worker start-up     spawning `saga worker` until a saga started at that moment is done
#   start request       StartWorkflowExecution, client round trip
#   task queued         WorkflowExecutionStarted → WorkflowTaskStarted (the server hands the first
#                       workflow task to the worker's poll)
#   worker runs saga    WorkflowTaskStarted → WorkflowTaskCompleted (the four local activities,
#                       their SQLite commits, the workflow code; one task when nothing fails)
#   completion          WorkflowTaskCompleted → WorkflowExecutionCompleted
#   result to client    what the client's end-to-end time holds beyond the start request and
#                       the server-side span (the result long-poll returning)
#
# N (100 sagas), SAGA_BIN (target/release/saga, built when missing), OUT (results directory).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100}
SAGA=${SAGA_BIN:-target/release/saga}
OUT=${OUT:-.bench/phases-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
[[ -x $SAGA ]] || cargo build --release -p saga-worker --quiet
# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
start_bench_server "$OUT/server.log"

# Worker start-up, five times: a fresh worker and data directory each, the saga started at once.
for i in 1 2 3 4 5; do
    dir=$OUT/cold-$i queue=phases-cold-$i
    mkdir -p "$dir"
    t0=$(date +%s%N)
    SAGA_DATA_DIR=$dir SAGA_LOG=warn "$SAGA" worker --task-queue "$queue" >"$dir/worker.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    SAGA_DATA_DIR=$dir "$SAGA" start --task-queue "$queue" --wait testdata/scenario-7.json \
        --workflow-id "cold-$i-$RANDOM" >/dev/null 2>&1
    echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/cold-ms.txt"
    kill "$pid" && wait "$pid" 2>/dev/null || true
done

queue=phases-warm
SAGA_DATA_DIR=$OUT/warm SAGA_LOG=warn "$SAGA" worker --task-queue "$queue" >"$OUT/worker.log" 2>&1 &
PIDS+=("$!")
SAGA_DATA_DIR=$OUT/warm "$SAGA" bench -n "$N" -c 1 --task-queue "$queue" --json --quiet \
    >"$OUT/bench.json"
temporal workflow list --query "TaskQueue='$queue'" --limit 1000 --output json >"$OUT/list.json"
python3 - "$OUT" <<'PY'
import json, statistics, subprocess, sys
from datetime import datetime
out = sys.argv[1]
ids = [w["execution"]["workflowId"] for w in json.load(open(f"{out}/list.json"))]
def t(e):
    s = e["eventTime"].rstrip("Z")
    head, _, frac = s.partition(".")
    return datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))
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
bench = json.load(open(f"{out}/bench.json"))
cold = [int(x) for x in open(f"{out}/cold-ms.txt")]
med = lambda xs: statistics.median(xs) * 1000
start_p50, e2e_p50 = bench["start_latency"]["p50_ms"], bench["latency"]["p50_ms"]
print(f"{len(ids)} sagas (the warm-up included) at concurrency 1, the worker as `saga worker` starts it; medians:")
print(f"  worker start-up to first saga done  {statistics.median(cold):7.1f} ms  (5 fresh workers: {cold})")
print(f"  start request (client)              {start_p50:7.1f} ms")
for name in ("task queued", "worker runs saga", "completion"):
    print(f"  {name + ' (server clock)':<36}{med(phases[name]):7.1f} ms")
print(f"  result to client (the rest)         {e2e_p50 - start_p50 - med(phases['server span']):7.1f} ms")
print(f"  end to end (client)                 {e2e_p50:7.1f} ms  (workflow tasks per saga: {statistics.median(phases['tasks']):.0f})")
PY
