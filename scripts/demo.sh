#!/usr/bin/env bash
# `make demo`: a Temporal dev server (Web UI, state persisted under the data directory), one
# `saga worker`, and the seven reference scenarios run against them. Server and worker keep
# running until Ctrl-C, so the sagas can be read in the Web UI; then both are stopped.
#
# Payloads are encrypted (keys in SAGA_ENCRYPTION_KEYS_FILE, default: a key made once in
# DATA/encryption-keys.txt) and `saga codec-server` on DEMO_CODEC_PORT (default DEMO_PORT + 2000)
# decrypts them for the Web UI, which is pointed at it.
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
codec_port="${DEMO_CODEC_PORT:-$((port + 2000))}"
hook_port="${DEMO_WEBHOOK_PORT:-$((port + 1500))}"
intake_port="${DEMO_INTAKE_PORT:-$((port + 1700))}"
data="${SAGA_DATA_DIR:-data}"
saga="${SAGA_BIN:-target/release/saga}"
mkdir -p "$data/logs"
server_log="$data/logs/temporal.log"
worker_log="$data/logs/worker.log"
webhook_log="$data/logs/webhooks.log"

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" "$ui_port" "$codec_port" "$hook_port" "$intake_port"; do
    if in_use "$p"; then
        echo "demo: port $p is already in use (another Temporal server?)." >&2
        echo "demo: stop it, or pick free ports: make demo DEMO_PORT=7300 (UI on DEMO_PORT+1000, webhooks on DEMO_PORT+1500, intake on DEMO_PORT+1700)" >&2
        exit 1
    fi
done

# A closed standard output (`make demo | tee demo.log` where tee took the Ctrl-C too) must not
# kill this script halfway: a write to it then fails instead, and everything below tolerates that.
trap '' PIPE
# Progress for the reader; never fatal (stdout may be a closed pipe).
say() { printf '%s\n' "$*" 2>/dev/null || true; }
# Clean-up messages go to stderr, which is still the terminal when stdout was piped.
note() { printf '%s\n' "$*" >&2 2>/dev/null || true; }

# Whether a child is still running (a child that exited stays a zombie until waited for, and
# `kill -0` would still find it).
running() {
    local state
    state=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2)
    [ -n "$state" ] && [ "$state" != Z ]
}

# SIGTERM, up to `grace` seconds to exit, then SIGKILL; always reaps it.
stop_process() {
    local name=$1 pid=$2 grace=$3
    [ -n "$pid" ] || return 0
    if running "$pid"; then
        note "demo: stopping the $name (pid $pid)…"
        kill -TERM "$pid" 2>/dev/null
        local waited=0
        while running "$pid" && [ "$waited" -lt $((grace * 10)) ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if running "$pid"; then
            note "demo: the $name did not stop within ${grace} s; killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    return 0
}

server_pid=
worker_pid=
codec_pid=
receiver_pid=
stop() {
    # Nothing may interrupt the clean-up: not a failing write (set -e), not a second Ctrl-C.
    set +e
    trap '' INT TERM HUP
    trap - EXIT
    note ""
    # The worker first (it finishes in-flight steps within its 10 s grace period), then the server.
    stop_process worker "$worker_pid" 20
    stop_process "webhook receiver" "$receiver_pid" 10
    stop_process "codec server" "$codec_pid" 10
    stop_process "Temporal server" "$server_pid" 15
    note "demo: stopped. Data stays in $data/ (delete it to start afresh)."
}
trap stop EXIT
# Ctrl-C is how the demo is meant to end: a clean stop, exit status 0. A closed terminal too.
trap 'exit 0' INT HUP
trap 'exit 143' TERM

# One key, made once and kept with the demo's data, unless a keys file is given.
keys_file="${SAGA_ENCRYPTION_KEYS_FILE:-$data/encryption-keys.txt}"
if [ ! -s "$keys_file" ]; then
    say "demo: making an encryption key in $keys_file"
    (umask 077 && echo "demo-1 $(head -c 32 /dev/urandom | base64)" >"$keys_file")
fi
export SAGA_ENCRYPTION_KEYS_FILE="$keys_file"
codec_url="http://localhost:$codec_port"
codec_log="$data/logs/codec-server.log"

say "demo: starting the Temporal dev server on 127.0.0.1:$port (Web UI http://localhost:$ui_port)"
# Server and worker run in sessions of their own, so that Ctrl-C reaches only this script,
# which then stops them in order (worker first, then server) instead of racing their exits.
setsid temporal server start-dev \
    --ip 127.0.0.1 --port "$port" --ui-port "$ui_port" \
    --db-filename "$data/temporal.db" \
    --search-attribute OrderId=Keyword --search-attribute SagaOutcome=Keyword \
    --search-attribute SagaWaiting=Keyword \
    --ui-codec-endpoint "$codec_url" \
    --log-level warn >"$server_log" 2>&1 &
server_pid=$!

address="127.0.0.1:$port"
for _ in $(seq 1 150); do
    if temporal operator namespace describe --namespace default --address "$address" >/dev/null 2>&1; then
        break
    fi
    if ! running "$server_pid"; then
        note "demo: the Temporal server exited; its log ($server_log):"
        tail -n 20 "$server_log" >&2 2>/dev/null
        exit 1
    fi
    sleep 0.2
done
if ! temporal operator namespace describe --namespace default --address "$address" >/dev/null 2>&1; then
    note "demo: the Temporal server did not become ready in 30 s; see $server_log"
    exit 1
fi

export TEMPORAL_ADDRESS="$address" TEMPORAL_NAMESPACE=default SAGA_DATA_DIR="$data"
export SAGA_UI_URL="http://localhost:$ui_port"
say "demo: starting the codec server on $codec_url (payloads encrypted with $keys_file)"
setsid "$saga" codec-server --port "$codec_port" \
    --cors-origin "http://localhost:$ui_port,http://127.0.0.1:$ui_port" >"$codec_log" 2>&1 &
codec_pid=$!

# Webhooks: the receiver verifies what the worker signs with the same secret.
if [ -z "${SAGA_WEBHOOK_SECRET:-}" ]; then
    SAGA_WEBHOOK_SECRET="whsec_demo_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
fi
export SAGA_WEBHOOK_SECRET
export SAGA_WEBHOOK_URLS="http://127.0.0.1:$hook_port/saga"
say "demo: starting the webhook receiver on 127.0.0.1:$hook_port ($saga webhook-receiver)"
setsid "$saga" webhook-receiver --port "$hook_port" >"$webhook_log" 2>&1 &
receiver_pid=$!

say "demo: starting the worker ($saga worker --intake 127.0.0.1:$intake_port)"
setsid "$saga" worker --intake "127.0.0.1:$intake_port" >"$worker_log" 2>&1 &
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
say
say "demo: notifications the webhook receiver got (signature verified ✓), scenarios 2, 4, 6 and 7:"
grep -E ' (✓|✗) ' "$webhook_log" | sed 's/^/  /' || say "  (none yet; see $webhook_log and $worker_log)"

cat <<MSG 2>/dev/null || true

demo: the Temporal server and the worker keep running until you press Ctrl-C.
demo:   Web UI       http://localhost:$ui_port/namespaces/default/workflows
demo:   server log   $server_log
demo:   worker log   $worker_log
demo:   processes    server pid $server_pid, worker pid $worker_pid, codec server pid $codec_pid,
demo:                webhook receiver pid $receiver_pid
demo:   codec server $codec_url (log $codec_log); orders are encrypted in the server:
demo:                temporal workflow show -w <workflow id> --address $address          (ciphertext)
demo:                temporal workflow show -w <workflow id> --address $address --codec-endpoint $codec_url
demo:   try          export SAGA_ENCRYPTION_KEYS_FILE=$keys_file TEMPORAL_ADDRESS=$address
demo:                $saga start --wait testdata/scenario-5.json
demo:   orders       curl -d @testdata/scenario-7.json http://127.0.0.1:$intake_port/orders   (the worker's intake;
demo:                one saga per order_id: edit it for another)
demo:   webhooks     $webhook_log (receiver on http://127.0.0.1:$hook_port/; tail -f it while you start sagas)
demo:                SAGA_DATA_DIR=$data $saga status <order id from the table>
demo:                SAGA_DATA_DIR=$data $saga webhooks list
MSG
if [ -z "$scenarios_ok" ]; then
    note "demo: some scenarios did not take the design's path (see the table and $worker_log)"
fi

# Returns when either process ends on its own, or when Ctrl-C runs the trap.
wait -n "$server_pid" "$worker_pid" "$codec_pid" "$receiver_pid" || true
note "demo: a process ended unexpectedly; see $server_log, $worker_log, $codec_log and $webhook_log"
exit 1
