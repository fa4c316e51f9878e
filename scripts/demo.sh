#!/usr/bin/env bash
# `make demo`: a Temporal dev server (Web UI, state persisted under the data directory), one
# `saga worker`, and the seven reference scenarios run against them. Server and worker keep
# running until Ctrl-C, so the sagas can be read in the Web UI; then both are stopped.
#
# A `saga webhook-receiver` listens too, and the worker delivers every saga notification to it,
# signed (SAGA_WEBHOOK_URLS, SAGA_WEBHOOK_SECRET; a fresh secret per run unless one is set).
#
# DEMO_PORT (default 7233) and DEMO_UI_PORT (default DEMO_PORT + 1000) move the server;
# DEMO_WEBHOOK_PORT (default DEMO_PORT + 1500) moves the webhook receiver;
# SAGA_DATA_DIR (default ./data) holds the service databases, temporal.db and the logs;
# SAGA_BIN (default target/release/saga) picks the binary.
set -euo pipefail

cd "$(dirname "$0")/.."
port="${DEMO_PORT:-7233}"
ui_port="${DEMO_UI_PORT:-$((port + 1000))}"
hook_port="${DEMO_WEBHOOK_PORT:-$((port + 1500))}"
data="${SAGA_DATA_DIR:-data}"
saga="${SAGA_BIN:-target/release/saga}"
mkdir -p "$data/logs"
server_log="$data/logs/temporal.log"
worker_log="$data/logs/worker.log"
webhook_log="$data/logs/webhooks.log"

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" "$ui_port" "$hook_port"; do
    if in_use "$p"; then
        echo "demo: port $p is already in use (another Temporal server?)." >&2
        echo "demo: stop it, or pick free ports: make demo DEMO_PORT=7300 (UI on DEMO_PORT+1000, webhooks on DEMO_PORT+1500)" >&2
        exit 1
    fi
done

server_pid=
worker_pid=
receiver_pid=
stop() {
    # A closed stdout (a pager or tee that took the Ctrl-C too) must not stop the clean-up.
    trap '' PIPE
    trap - INT TERM EXIT
    echo
    if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
        echo "demo: stopping the worker (pid $worker_pid)…"
        kill -TERM "$worker_pid" 2>/dev/null || true
        wait "$worker_pid" 2>/dev/null || true
    fi
    if [ -n "$receiver_pid" ] && kill -0 "$receiver_pid" 2>/dev/null; then
        echo "demo: stopping the webhook receiver (pid $receiver_pid)…"
        kill -TERM "$receiver_pid" 2>/dev/null || true
        wait "$receiver_pid" 2>/dev/null || true
    fi
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        echo "demo: stopping the Temporal server (pid $server_pid)…"
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    echo "demo: stopped. Data stays in $data/ (delete it to start afresh)."
}
trap stop EXIT
# Ctrl-C is how the demo is meant to end: a clean stop, exit status 0.
trap 'exit 0' INT
trap 'exit 143' TERM

echo "demo: starting the Temporal dev server on 127.0.0.1:$port (Web UI http://localhost:$ui_port)"
# Server and worker run in sessions of their own, so that Ctrl-C reaches only this script,
# which then stops them in order (worker first, then server) instead of racing their exits.
setsid temporal server start-dev \
    --ip 127.0.0.1 --port "$port" --ui-port "$ui_port" \
    --db-filename "$data/temporal.db" \
    --search-attribute OrderId=Keyword --search-attribute SagaOutcome=Keyword \
    --log-level warn >"$server_log" 2>&1 &
server_pid=$!

address="127.0.0.1:$port"
for _ in $(seq 1 150); do
    if temporal operator namespace describe --namespace default --address "$address" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "demo: the Temporal server exited; its log ($server_log):" >&2
        tail -n 20 "$server_log" >&2
        exit 1
    fi
    sleep 0.2
done
if ! temporal operator namespace describe --namespace default --address "$address" >/dev/null 2>&1; then
    echo "demo: the Temporal server did not become ready in 30 s; see $server_log" >&2
    exit 1
fi

export TEMPORAL_ADDRESS="$address" TEMPORAL_NAMESPACE=default SAGA_DATA_DIR="$data"
export SAGA_UI_URL="http://localhost:$ui_port"

# Webhooks: the receiver verifies what the worker signs with the same secret.
if [ -z "${SAGA_WEBHOOK_SECRET:-}" ]; then
    SAGA_WEBHOOK_SECRET="whsec_demo_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
fi
export SAGA_WEBHOOK_SECRET
export SAGA_WEBHOOK_URLS="http://127.0.0.1:$hook_port/saga"
echo "demo: starting the webhook receiver on 127.0.0.1:$hook_port ($saga webhook-receiver)"
setsid "$saga" webhook-receiver --port "$hook_port" >"$webhook_log" 2>&1 &
receiver_pid=$!

echo "demo: starting the worker ($saga worker)"
setsid "$saga" worker >"$worker_log" 2>&1 &
worker_pid=$!

scenarios_ok=1
"$saga" scenarios || scenarios_ok=

# Rows 2, 4, 6 (a compensation failed: someone must look) and 7 (completed) publish a
# notification; rows 1, 3 and 5 end fully compensated and publish none, as the design says.
arrived() { grep -c ' ✓ ' "$webhook_log" 2>/dev/null || true; }
for _ in $(seq 1 75); do
    [ "$(arrived)" -ge 4 ] && break
    sleep 0.2
done
echo
echo "demo: notifications the webhook receiver got (signature verified ✓), scenarios 2, 4, 6 and 7:"
grep -E ' (✓|✗) ' "$webhook_log" | sed 's/^/  /' || echo "  (none yet; see $webhook_log and $worker_log)"

cat <<MSG

demo: the Temporal server and the worker keep running until you press Ctrl-C.
demo:   Web UI       http://localhost:$ui_port/namespaces/default/workflows
demo:   server log   $server_log
demo:   worker log   $worker_log
demo:   webhooks     $webhook_log (receiver on http://127.0.0.1:$hook_port/; tail -f it while you start sagas)
demo:   try          TEMPORAL_ADDRESS=$address $saga start --wait testdata/scenario-5.json
demo:                SAGA_DATA_DIR=$data $saga status <order id from the table>
demo:                SAGA_DATA_DIR=$data $saga webhooks list
MSG
if [ -z "$scenarios_ok" ]; then
    echo "demo: some scenarios did not take the design's path (see the table and $worker_log)" >&2
fi

# Returns when either process ends on its own, or when Ctrl-C runs the trap.
wait -n "$server_pid" "$worker_pid" "$receiver_pid" || true
echo "demo: a process ended unexpectedly; see $server_log, $worker_log and $webhook_log" >&2
exit 1
