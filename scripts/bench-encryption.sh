#!/usr/bin/env bash
# What payload encryption costs: `saga-bench` against the same dev server with encryption off and
# on, alternating within each round (the starting mode rotating), a fresh worker process, data
# directory and task queue per run. Prints one line per run and the medians per mode.
#
# ROUNDS (3), N (600 sagas at C=100), LAT_N (50 sagas at c=1), SAGA_BIN (target/release/saga),
# OUT (.bench/encryption-<time>) for the JSON reports.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-3}"
n="${N:-600}"
c="${C:-100}"
lat_n="${LAT_N:-50}"
saga="${SAGA_BIN:-target/release/saga}"
out="${OUT:-.bench/encryption-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
bench="${SAGA_BENCH_BIN:-$(dirname "$saga")/saga-bench}"
[ -x "$saga" ] && [ -x "$bench" ] || cargo build --release -p saga-worker -p saga-bench

keys="$out/keys.txt"
(umask 077 && echo "bench-1 $(head -c 32 /dev/urandom | base64)" >"$keys")

# shellcheck source=lib/bench-server.sh
source "$(dirname "$0")/lib/bench-server.sh"
start_bench_server "$out/server.log"

# run MODE ROUND KIND SAGAS CONCURRENCY
run() {
    local mode=$1 round=$2 kind=$3 sagas=$4 conc=$5
    local queue="bench-$mode-$round-$kind" data="$out/data-$mode-$round-$kind"
    mkdir -p "$data"
    if [ "$mode" = on ]; then export SAGA_ENCRYPTION_KEYS_FILE="$keys"; else unset SAGA_ENCRYPTION_KEYS_FILE; fi
    SAGA_DATA_DIR="$data" SAGA_LOG=warn "$saga" worker --task-queue "$queue" \
        >"$data/worker.log" 2>&1 &
    worker_pid=$!
    PIDS+=("$worker_pid")
    SAGA_DATA_DIR="$data" "$bench" --label "encryption-$mode" --sagas "$sagas" \
        --concurrency "$conc" --task-queue "$queue" --worker-pid "$worker_pid" \
        --server-pid "$SERVER_PID" --json --quiet >"$out/$mode-$round-$kind.json"
    kill -TERM "$worker_pid" && wait "$worker_pid" || true
    python3 - "$out/$mode-$round-$kind.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = r["worker"]
print(f'{r["label"]:<14} c={r["concurrency"]:<4} {r["sagas_per_s"]:7.1f} sagas/s  '
      f'p50 {r["latency"]["p50_ms"]:8.1f} ms  p95 {r["latency"]["p95_ms"]:8.1f} ms  '
      f'worker {w["cpu_ms_per_saga"]:6.2f} CPU ms/saga  peak RSS {w["peak_rss_mib"]:5.1f} MiB  '
      f'bench CPU {r["bench_cpu_s"]:.2f} s  failures {r["failures"]}')
PY
}

for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then modes="off on"; else modes="on off"; fi
    for mode in $modes; do
        run "$mode" "$round" throughput "$n" "$c"
        run "$mode" "$round" latency "$lat_n" 1
    done
done

python3 - "$out" <<'PY'
import glob, json, statistics, sys
rows = {}
for f in glob.glob(f"{sys.argv[1]}/*-*-*.json"):
    r = json.load(open(f))
    mode = r["label"].split("-")[1]
    kind = "throughput" if r["concurrency"] > 1 else "latency"
    rows.setdefault((kind, mode), []).append(r)
print("\nMedians over rounds")
print(f'{"run":<11}{"encryption":<11}{"runs":>5}{"fail":>5}{"sagas/s":>9}{"p50 ms":>9}{"p95 ms":>9}'
      f'{"wCPU ms/saga":>13}{"peak RSS MiB":>13}{"sCPU ms/saga":>13}')
for kind in ("throughput", "latency"):
    for mode in ("off", "on"):
        rs = rows.get((kind, mode), [])
        if not rs:
            continue
        med = lambda f: statistics.median(f(r) for r in rs)
        print(f'{kind:<11}{mode:<11}{len(rs):>5}{sum(r["failures"] for r in rs):>5}'
              f'{med(lambda r: r["sagas_per_s"]):>9.1f}{med(lambda r: r["latency"]["p50_ms"]):>9.1f}'
              f'{med(lambda r: r["latency"]["p95_ms"]):>9.1f}'
              f'{med(lambda r: r["worker"]["cpu_ms_per_saga"]):>13.2f}'
              f'{med(lambda r: r["worker"]["peak_rss_mib"]):>13.1f}'
              f'{med(lambda r: r["server"]["cpu_ms_per_saga"]):>13.2f}')
if any(r["failures"] for rs in rows.values() for r in rs):
    sys.exit(1)
PY
