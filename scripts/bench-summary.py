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


NAMES = {
    "peer": "python peer",
    "default": "saga worker",
    "intake": "saga+intake",
    "local": "rust local",
    "remote": "rust remote",
}
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


def paired_ratios(scenario, label, value):
    """One ratio per round, this worker's run over the peer's run of the same round.

    Pairing within a round cancels what drifts between rounds (the in-memory server slows
    down as it fills up); the median of the pairs is the figure the targets are judged on."""
    by_round = lambda who: {r["round"]: r for r in runs if r["scenario"] == scenario and r["label"] == who}
    ours, peer = by_round(label), by_round("peer")
    out = []
    for rnd in sorted(set(ours) & set(peer)):
        a, b = value(ours[rnd]), value(peer[rnd])
        if a is not None and b:
            out.append(a / b)
    return out


rate = lambda r: r["sagas_per_s"]
p50 = lambda r: r["latency"]["p50_ms"]
wcpu = lambda r: (r.get("worker") or {}).get("cpu_ms_per_saga")
wrss = lambda r: (r.get("worker") or {}).get("peak_rss_mib")
# The throughput runs' concurrency (100 unless C said otherwise) names the rows.
c_tp = next((k[2] for k in table if k[0] == "throughput"), 100)
rows = [
    (f"throughput at c={c_tp} (x peer)", ">= 3", "throughput", rate, lambda r: r >= 3),
    ("p50 latency at c=1 (x peer)", "<= 0.15", "latency", p50, lambda r: r <= 0.15),
    (f"worker CPU per saga, c={c_tp} (x peer)", "<= 0.1", "throughput", wcpu, lambda r: r <= 0.1),
    (f"worker peak RSS, c={c_tp} (x peer)", "<= 0.3", "throughput", wrss, lambda r: r <= 0.3),
]
# The targets are set for the worker as `saga worker` starts it, judged twice: with orders started
# through the server ("default") and posted to its intake ("intake", the same worker with
# `--intake`); the other modes are shown beside them for comparison.
modes = [m for m in NAMES if m != "peer" and any(r["label"] == m for r in runs)]
print()
print("Ratios against the python peer: median of per-round ratios [min-max]")
print(f"{'':<46}{'target':>7}   " + "   ".join(f"{NAMES[m]:>24}" for m in modes))
for name, target, scenario, value, ok in rows:
    cells = []
    for m in modes:
        pairs = paired_ratios(scenario, m, value)
        if not pairs:
            cells.append("-")
            continue
        r = statistics.median(pairs)
        verdict = ("met" if ok(r) else "MISSED") if m in ("default", "intake") else "   "
        cells.append(f"{r:.2f} {verdict} [{min(pairs):.2f}-{max(pairs):.2f}]")
    print(f"{name:<46}{target:>7}   " + "   ".join(f"{c:>24}" for c in cells))
failures = sum(f["failures"] for f in table.values())
print()
print(f"wrong or missing answers across all runs: {failures}")
sys.exit(1 if failures else 0)
