#!/usr/bin/env bash
# Records worker/link-order.txt: the functions of the shipped `saga` binary that a worker runs,
# hottest first. worker/build.rs hands the list to the linker (lld's --symbol-ordering-file), so
# those functions sit together at the front of the code instead of spread across all 19 MB of
# it: the kernel maps a binary's code into a process 64 KB at a time around each page it runs,
# and a worker whose few thousand functions are scattered ends up with nearly all of it resident
# (docs/performance-history.md, "Link order").
#
# How: one dev server; `saga worker` under valgrind's callgrind (which records every function
# run and its instruction count), first as it starts (orders posted to its intake, then started
# through the server, then the seven scenarios), then with `--dispatch remote` (the split roles'
# path). Symbols are the binary's own, mangled, so the list fits exactly the binary it was
# recorded from: the same toolchain, Cargo.lock and profile. Functions added later are simply
# not ordered; record again after a toolchain or Cargo.lock change (the script says how many
# names of the old list the binary still has, and writes no list of fewer than 1,000).
# The callgrind output stays in OUT (a temporary directory unless given).
#
# Needs valgrind, the temporal CLI and python3. Knobs: SAGA_BIN (the binary to record; default:
# build the `dist` profile), OUT (working directory), N (sagas per load, 300).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=${N:-300}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
LIST=$ROOT/worker/link-order.txt
log() { echo "[link-order $(date -u +%H:%M:%S)] $*" >&2; }

command -v valgrind >/dev/null || { echo "valgrind is needed (Debian: apt-get install valgrind)" >&2; exit 1; }
SAGA=${SAGA_BIN:-$ROOT/target/dist/saga}
BENCH=${SAGA_BENCH_BIN:-$(dirname "$SAGA")/saga-bench}
if [[ -z ${SAGA_BIN:-} ]]; then
    log "building the shipped binaries (cargo build --profile dist)"
    cargo build --profile dist -p saga-worker -p saga-bench --quiet
fi

# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
start_bench_server "$OUT/server.log"
log "dev server on $TEMPORAL_ADDRESS; callgrind output in $OUT"

# record NAME [worker flags…]: one worker under callgrind, driven by `saga-bench` and
# `saga scenarios`, stopped with SIGINT so callgrind writes its counts.
record() {
    local name=$1
    shift
    local queue=order-$name-$RANDOM address
    address=127.0.0.1:$(free_port)
    SAGA_DATA_DIR=$OUT/$name valgrind --tool=callgrind --demangle=no --dump-line=no \
        --callgrind-out-file="$OUT/$name.callgrind" \
        "$SAGA" worker --task-queue "$queue" --intake "$address" "$@" >"$OUT/$name.log" 2>&1 &
    local worker=$!
    PIDS+=("$worker")
    # Under valgrind the worker starts in seconds, not milliseconds.
    wait_listening "$address" "$OUT/$name.log" 120
    log "$name: $N sagas posted to the intake, $N started through the server, the scenarios"
    "$BENCH" --sagas "$N" --concurrency 20 --warmup 0 --task-queue "$queue" \
        --intake "http://$address" --data-dir "$OUT/$name" --quiet >/dev/null
    "$BENCH" --sagas "$N" --concurrency 20 --warmup 0 --task-queue "$queue" \
        --data-dir "$OUT/$name" --quiet >/dev/null
    "$SAGA" scenarios --task-queue "$queue" >"$OUT/$name.scenarios"
    kill -INT "$worker"
    # callgrind writes its counts as the worker exits; a worker stuck in shutdown is killed.
    (sleep 120 && kill -KILL "$worker" 2>/dev/null) &
    local watchdog=$!
    wait "$worker" || true
    kill "$watchdog" 2>/dev/null || true
}
record default
record remote --dispatch remote

python3 - "$SAGA" "$LIST" "$OUT"/default.callgrind "$OUT"/remote.callgrind <<'PY'
import os, re, subprocess, sys
binary, out, *profiles = sys.argv[1:]
binary = os.path.realpath(binary)
ours = {}
for line in subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        ours[parts[2]] = True
cost = {}
for path in profiles:
    objects, names, obj, fn, after_call = {}, {}, None, None, False
    for line in open(path):
        if m := re.match(r"^(c?)ob=\((\d+)\)(?: (.*))?$", line):
            if m[3]:
                objects[m[2]] = m[3].strip()
            if not m[1]:
                obj = objects.get(m[2])
        elif m := re.match(r"^(c?)fn=\((\d+)\)(?: (.*))?$", line):
            if m[3]:
                names[m[2]] = m[3].strip()
            if not m[1]:
                fn = names.get(m[2]) if obj and os.path.realpath(obj) == binary else None
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            # The line after calls= is the callee's inclusive cost, not this function's own.
            if fn and not after_call:
                fields = line.split()
                if len(fields) > 1:
                    symbol = fn.split("'")[0]
                    cost[symbol] = cost.get(symbol, 0) + int(fields[1])
            after_call = False
run = [s for s in sorted(cost, key=lambda s: (-cost[s], s)) if s in ours]
if os.path.exists(out):
    old = open(out).read().split()
    kept = sum(1 for s in old if s in ours)
    print(f"the old list: {kept} of its {len(old)} names are in this binary", file=sys.stderr)
if len(run) < 1000:
    sys.exit(f"only {len(run)} functions of {binary} were seen running; {out} is left as it was")
with open(out, "w") as f:
    f.write("\n".join(run) + "\n")
print(f"{len(run)} functions of the binary's {len(ours)} in {out}", file=sys.stderr)
PY
