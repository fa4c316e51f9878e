#!/usr/bin/env bash
# Instructions per saga: the worker's own work, counted, for a change too small to show in CPU
# time on a noisy machine. CPU time per saga moves 15 % between rounds here (the server, the
# peers and the kernel share two cores); the instructions a worker executes for the same sagas
# move 0.5 to 1 % between runs (so compare builds side by side, in one run). So a change of a
# few percent in what the worker does is measured here, and
# `scripts/bench-compare.sh` says what it does to the goals.
#
# How: one in-memory dev server; each binary's `saga worker` runs under valgrind's callgrind,
# which counts every instruction of the process in user space (its threads, the SDK, SQLite,
# malloc; not the kernel's work behind a system call, nor cache misses). `saga-bench` sends
# WARMUP sagas, the counters are zeroed, N sagas run at concurrency C, the counters are
# dumped: the instructions of those N sagas alone, divided by N. Every answer is checked.
# Under callgrind a worker runs some 50 times slower, so C stays low; the count per saga
# barely depends on it.
#
# Usage: scripts/bench-instructions.sh [BIN_A [BIN_B]]
#   BIN_A, BIN_B: `saga` binaries, each with its `saga-bench` beside it (default: the `dist`
#   build, built if missing). With two, each mode prints both counts and B/A.
# Knobs (environment): N (200), C (10), WARMUP (30), MODES ("local intake": a `--dispatch`
# value, or "intake" for orders posted to `saga worker --intake`), OUT (the callgrind files;
# `callgrind_annotate --inclusive=yes OUT/<label>-<mode>.callgrind` says where they went).
# The workers log at their default level, as they ship. Needs valgrind and the temporal CLI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200}
C=${C:-10}
WARMUP=${WARMUP:-30}
MODES=${MODES:-"local intake"}
OUT=${OUT:-$(mktemp -d /tmp/bench-instructions.XXXXXX)}
mkdir -p "$OUT"
log() { echo "[bench-instructions $(date -u +%H:%M:%S)] $*" >&2; }

command -v valgrind >/dev/null ||
    { echo "valgrind is needed (Debian: apt-get install valgrind; scripts/setup.sh installs it)" >&2; exit 1; }
[[ $# -le 2 ]] || { echo "usage: $0 [BIN_A [BIN_B]]" >&2; exit 2; }
BINS=("$@")
if [[ ${#BINS[@]} == 0 ]]; then
    BINS=("$ROOT/target/dist/saga")
    if [[ ! -x ${BINS[0]} ]]; then
        log "building the shipped binaries (cargo build --profile dist)"
        (cd "$ROOT" && cargo build --profile dist -p saga-worker -p saga-bench --quiet)
    fi
fi
for bin in "${BINS[@]}"; do
    [[ -x $bin && -x $(dirname "$bin")/saga-bench ]] ||
        { echo "$bin: no such binary, or no saga-bench beside it" >&2; exit 2; }
done

# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
log "one in-memory dev server; callgrind files in $OUT"
start_bench_server "$OUT/server.log"

# count LABEL BIN MODE: sets COUNT to the instructions per saga of BIN's worker in MODE. It runs
# in this shell (not in a command substitution), so the worker is in PIDS for the exit trap and
# `set -e` holds.
count() {
    local label=$1 bin=$2 mode=$3
    local dir=$OUT/$label-$mode queue=instructions-$label-$mode-$RANDOM
    local bench flags=(--dispatch "$mode") intake=()
    bench=$(dirname "$bin")/saga-bench
    rm -rf "$dir" "$OUT/$label-$mode.callgrind"
    mkdir -p "$dir"
    if [[ $mode == intake ]]; then
        local address
        address=127.0.0.1:$(free_port)
        flags=(--intake "$address")
        intake=(--intake "http://$address")
    fi
    SAGA_DATA_DIR=$dir valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.%p" \
        "$bin" worker --task-queue "$queue" "${flags[@]}" >"$dir/worker.log" 2>&1 &
    local worker=$!
    PIDS+=("$worker")
    [[ $mode != intake ]] || wait_listening "${flags[1]}" "$dir/worker.log" 120
    local run
    for run in warmup measured; do
        local sagas=$WARMUP
        if [[ $run == measured ]]; then
            sagas=$N
            callgrind_control --zero "$worker" >"$dir/callgrind_control.log" 2>&1 ||
                { log "$label-$mode: callgrind_control --zero failed: $(cat "$dir/callgrind_control.log")"; exit 1; }
        fi
        if ! "$bench" --label "$label" --sagas "$sagas" --concurrency "$C" --task-queue "$queue" \
            --warmup 0 --data-dir "$dir" "${intake[@]}" --stall-timeout 300 --json --quiet \
            >"$dir/$run.json" 2>"$dir/bench.log"; then
            log "$label-$mode FAILED: $(tail -c 2000 "$dir/bench.log")"
            exit 1
        fi
    done
    callgrind_control --dump "$worker" >"$dir/callgrind_control.log" 2>&1 ||
        { log "$label-$mode: callgrind_control --dump failed: $(cat "$dir/callgrind_control.log")"; exit 1; }
    # The worker drains and exits on SIGTERM; under valgrind that can be slow, so it gets 120 s.
    kill "$worker" 2>/dev/null || true
    # (Its own output goes nowhere, so a caller reading this script's output is not held open.)
    (sleep 120 && kill -KILL "$worker") >/dev/null 2>&1 &
    local watchdog=$!
    wait "$worker" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    # The dump of the zeroed counters is the process's first (callgrind.<pid>.1).
    mv "$dir/callgrind.$worker.1" "$OUT/$label-$mode.callgrind"
    COUNT=$(python3 - "$OUT/$label-$mode.callgrind" "$N" <<'PY'
import sys
total = next(int(l.split()[1]) for l in open(sys.argv[1]) if l.startswith(("summary:", "totals:")))
print(round(total / int(sys.argv[2])))
PY
)
}

printf '%-8s %-22s %-22s %s\n' mode "A: instructions/saga" "B: instructions/saga" "B/A" >"$OUT/summary.txt"
for mode in $MODES; do
    log "$mode: ${BINS[0]}: $N sagas at concurrency $C under callgrind"
    count a "${BINS[0]}" "$mode"
    a=$COUNT b=- ratio=-
    if [[ ${#BINS[@]} == 2 ]]; then
        log "$mode: ${BINS[1]}"
        count b "${BINS[1]}" "$mode"
        b=$COUNT
        ratio=$(python3 -c "print(f'{$b / $a:.3f}')")
    fi
    printf '%-8s %-22s %-22s %s\n' "$mode" "$a" "$b" "$ratio" >>"$OUT/summary.txt"
done
cat "$OUT/summary.txt"
echo "A: ${BINS[0]}"
[[ ${#BINS[@]} == 2 ]] && echo "B: ${BINS[1]}"
echo "$N sagas per count at concurrency $C, after $WARMUP; every answer checked; callgrind files in $OUT"
