# Sourced by the bench scripts: one in-memory dev server on free ports for a whole benchmark,
# stopped with every process listed in PIDS when the script exits, however it exits.
#
#   source scripts/lib/bench-server.sh
#   start_bench_server LOG_FILE [extra start-dev flags…]
#
# Sets and exports TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, sets SERVER_PID and SERVER_FLAGS (the
# flags it was started with, for the record); a script adds the workers it starts to PIDS.
# stop_bench_server stops it, for a script that wants a fresh server per round.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_listening ADDRESS LOG [SECONDS]: waits up to SECONDS (30) for a worker's intake to accept
# connections (the bench posts its first order as soon as it starts); names LOG when it never does.
wait_listening() {
    local address=$1 log=$2 seconds=${3:-30}
    for _ in $(seq $((seconds * 10))); do
        python3 -c 'import socket,sys; socket.create_connection(sys.argv[1].split(":"), 0.2)' \
            "$address" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the intake on $address never listened; see $log" >&2
    return 1
}

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

start_bench_server() {
    local log=$1
    shift
    local port
    port=$(free_port)
    export TEMPORAL_ADDRESS=127.0.0.1:$port TEMPORAL_NAMESPACE=default
    # The search attributes are registered up front so no worker's first minute measures it.
    SERVER_FLAGS="--headless --log-level error --search-attribute OrderId=Keyword"
    SERVER_FLAGS+=" --search-attribute SagaOutcome=Keyword --search-attribute SagaWaiting=Keyword"
    [[ $# -gt 0 ]] && SERVER_FLAGS+=" $*"
    # shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
    temporal server start-dev --ip 127.0.0.1 --port "$port" \
        --http-port "$(free_port)" --metrics-port "$(free_port)" $SERVER_FLAGS >"$log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 150); do
        temporal operator namespace describe --namespace default --address "$TEMPORAL_ADDRESS" \
            >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "the dev server did not answer within 30 s; its log: $log" >&2
    return 1
}

stop_bench_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
