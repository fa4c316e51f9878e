# Sourced by the bench scripts: an in-memory dev server on free ports (one for a whole benchmark,
# or a fresh one per run), stopped with every process listed in PIDS when the script exits,
# however it exits.
#
#   source scripts/lib/bench-server.sh
#   start_bench_server LOG_FILE [extra start-dev flags…]
#
# A server whose port another process took meanwhile is started again on new ports (5 tries);
# one that never answers within 60 s fails the start with the end of its log.
# Sets and exports TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, sets SERVER_PID and SERVER_FLAGS (the
# flags it was started with, for the record); a script adds the workers it starts to PIDS, and
# calls forget_pid once it has stopped one. stop_bench_server stops the server, for a script
# that wants a fresh server per run.

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
# forget_pid PID: a process the script has stopped and waited for leaves PIDS, so that the exit
# trap never signals a later process the kernel gave its number to (a comparison starts
# thousands of processes, and process ids wrap).
forget_pid() {
    local pid kept=()
    for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
}
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

start_bench_server() {
    local log=$1
    shift
    # The search attributes are registered up front so no worker's first minute measures it.
    SERVER_FLAGS="--headless --log-level error --search-attribute OrderId=Keyword"
    SERVER_FLAGS+=" --search-attribute SagaOutcome=Keyword --search-attribute SagaWaiting=Keyword"
    # Cache them, as a production server does. The dev server, unless this key is given, reads
    # the search attributes and the namespace from its store on every use: 18 reads a saga of
    # this worker (its start names two, its end upserts one), all on the one connection of the
    # in-memory store; fewer for a saga whose start names them but that upserts none, none for
    # the eager Python peer, which starts its own sagas without any. The three are registered
    # before the first use, so the cache never misses one.
    # SA_CACHE=0 runs the dev server as it comes (docs/performance.md, "Method").
    if [[ ${SA_CACHE:-1} != 0 ]]; then
        SERVER_FLAGS+=" --dynamic-config-value system.forceSearchAttributesCacheRefreshOnRead=false"
    fi
    [[ $# -gt 0 ]] && SERVER_FLAGS+=" $*"
    # A port free_port picks is free when picked, not when the server binds it: on a busy machine
    # another process can take it in between. A server that exits on a taken port is started
    # again on new ports, as the Rust tests' DevServer does.
    local attempt
    for attempt in 1 2 3 4 5; do
        _spawn_bench_server "$log" && return 0
        stop_bench_server
        if [[ $attempt -ge 5 ]] || ! grep -q "address already in use" "$log" 2>/dev/null; then
            break
        fi
        echo "the dev server's port was taken; starting it again on other ports" >&2
    done
    echo "the dev server on $TEMPORAL_ADDRESS did not become ready; the end of its log ($log):" >&2
    tail -n 20 "$log" >&2 2>/dev/null || true
    return 1
}

# _spawn_bench_server LOG: one try; succeeds once the server answers for its default namespace
# (the frontend accepts connections before that), fails if it exits first or after 60 s.
_spawn_bench_server() {
    local log=$1 port
    port=$(free_port)
    export TEMPORAL_ADDRESS=127.0.0.1:$port TEMPORAL_NAMESPACE=default
    # shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
    temporal server start-dev --ip 127.0.0.1 --port "$port" \
        --http-port "$(free_port)" --metrics-port "$(free_port)" $SERVER_FLAGS >"$log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        # Our own server must still be running: whatever else answers on that port is not it.
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        if temporal operator namespace describe --namespace default --address "$TEMPORAL_ADDRESS" \
            >/dev/null 2>&1; then
            # Another process's server may have answered while ours was still starting on the
            # port it took; ours then exits within a moment, so it must outlive one.
            sleep 1
            kill -0 "$SERVER_PID" 2>/dev/null && return 0
            return 1
        fi
        sleep 0.2
    done
    stop_bench_server
    return 1
}

stop_bench_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    forget_pid "$SERVER_PID"
}
