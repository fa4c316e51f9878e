#!/usr/bin/env python3
"""Medians and ratios of the runs that scripts/bench-compare.sh recorded (one JSON per line)."""
import json
import statistics
import sys
from collections import defaultdict


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = defaultdict(list)
for r in runs:
    groups[(r["scenario"], r["label"], r["concurrency"])].append(r)


def figures(rs):
    w = [r.get("worker") or {} for r in rs]
    s = [r.get("server") or {} for r in rs]
    return {
        "runs": len(rs),
        "failures": sum(r["failures"] for r in rs),
        "rate": median(r["sagas_per_s"] for r in rs),
        "p50": median(r["latency"]["p50_ms"] for r in rs),
        "p95": median(r["latency"]["p95_ms"] for r in rs),
        "p99": median(r["latency"]["p99_ms"] for r in rs),
        "cpu": median(x.get("cpu_ms_per_saga") for x in w),
        "rss": median(x.get("peak_rss_mib") for x in w),
        "wbusy": median(x.get("cores_busy") for x in w),
        "sbusy": median(x.get("cores_busy") for x in s),
        "scpu": median(x.get("cpu_ms_per_saga") for x in s),
    }


NAMES = {"peer": "python peer", "remote": "rust remote", "local": "rust local"}
header = (f"{'scenario':<11}{'worker':<13}{'c':>4}{'runs':>5}{'fail':>5}{'sagas/s':>9}"
          f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'wCPU ms/saga':>13}{'peak RSS MiB':>13}"
          f"{'worker cores':>13}{'server cores':>13}{'sCPU ms/saga':>13}")
print("Medians over rounds (sweep: one run each)")
print(header)
print("-" * len(header))
table = {}
order = {"throughput": 0, "latency": 1, "sweep": 2}
for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[2], list(NAMES).index(k[1]) if k[1] in NAMES else 9)):
    scenario, label, c = key
    f = figures(groups[key])
    table[key] = f
    print(f"{scenario:<11}{NAMES.get(label, label):<13}{c:>4}{f['runs']:>5}{f['failures']:>5}"
          f"{fmt(f['rate']):>9}{fmt(f['p50']):>9}{fmt(f['p95']):>9}{fmt(f['p99']):>9}"
          f"{fmt(f['cpu'], 2):>13}{fmt(f['rss']):>13}{fmt(f['wbusy'], 2):>13}{fmt(f['sbusy'], 2):>13}"
          f"{fmt(f['scpu'], 2):>13}")


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


print()
print("Ratios against the python peer (medians)      target   " + "   ".join(
    f"{NAMES[m]:>11}" for m in ("remote", "local")))
tp = lambda label: next((v for k, v in table.items() if k[0] == "throughput" and k[1] == label), None)
lat = lambda label: next((v for k, v in table.items() if k[0] == "latency" and k[1] == label), None)
rows = [
    ("throughput at c=100 (x peer)", ">= 1.5", lambda m: ratio((tp(m) or {}).get("rate"), (tp("peer") or {}).get("rate")), lambda r: r >= 1.5),
    ("p50 latency at c=1 (x peer)", "<= 0.5", lambda m: ratio((lat(m) or {}).get("p50"), (lat("peer") or {}).get("p50")), lambda r: r <= 0.5),
    ("worker CPU per saga, c=100 (x peer)", "<= 0.25", lambda m: ratio((tp(m) or {}).get("cpu"), (tp("peer") or {}).get("cpu")), lambda r: r <= 0.25),
    ("worker peak RSS, c=100 (x peer)", "<= 0.5", lambda m: ratio((tp(m) or {}).get("rss"), (tp("peer") or {}).get("rss")), lambda r: r <= 0.5),
]
for name, target, get, ok in rows:
    cells = []
    for m in ("remote", "local"):
        r = get(m)
        cells.append("-" if r is None else f"{r:.2f} {'met' if ok(r) else 'MISSED'}")
    print(f"{name:<46}{target:>7}   " + "   ".join(f"{c:>11}" for c in cells))
failures = sum(f["failures"] for f in table.values())
print()
print(f"wrong or missing answers across all runs: {failures}")
sys.exit(1 if failures else 0)
