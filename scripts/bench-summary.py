#!/usr/bin/env python3
"""Medians and goal ratios of the runs that scripts/bench-compare.sh recorded (JSON lines).

Each ratio pairs runs of the same round (each run on a fresh server of its own), then takes the
median over the rounds, so what drifts between rounds cancels out. "Best peer" is, in each round and for each
measure separately, the best figure any peer configuration of the goal's set reached.
"""
import json
import statistics
import sys
from collections import defaultdict

NAMES = {
    "default": "saga worker, through the server",
    "unnamed": "the same, dispatch not named",
    "intake": "saga worker --intake, posted",
    "remote": "saga worker --dispatch remote",
    "py": "Python, regular activities",
    "py-local": "Python, local activities",
    "py-eager": "Python, local + eager, one process",
    "ts": "TypeScript, regular activities",
    "ts-local": "TypeScript, local activities",
    "floor": "saga-floor: no step (the floor)",
    "floor-intake": "saga-floor --intake: no step",
    "shape": "saga-floor: the saga's events",
    "shape-intake": "saga-floor --intake: the saga's events",
}
PEERS = ["py", "py-local", "py-eager", "ts", "ts-local"]

# (our configuration, the peer configurations it is judged against, goals per measure, the
# floor of its path: a worker whose saga runs no step, on the same server, by the same route;
# and its shape: the saga's events with steps that do nothing, on this SDK)
THROUGH_THE_SERVER = {"rate": 2.0, "p50": 1.05, "cpu": 0.12, "rss": 0.25}
GOALS = [
    ("default", PEERS, THROUGH_THE_SERVER, "floor", "shape"),
    ("intake", ["py-eager"], {"rate": 3.0, "p50": 0.2, "cpu": 0.1, "rss": 0.25}, "floor-intake",
     "shape-intake"),
    ("unnamed", PEERS, THROUGH_THE_SERVER, "floor", None),
]
# Configurations shown against a goal for comparison only: a start that names no dispatch (as
# the temporal CLI's without a memo) beside `default`, whose start names it; not counted.
BESIDE = {"unnamed"}
# Which run each measure comes from, how to read it, and which way is better.
MEASURES = {
    "rate": ("throughput", lambda r: r["sagas_per_s"], max, "sagas/s"),
    "p50": ("latency", lambda r: r["latency"]["p50_ms"], min, "p50 @1"),
    "cpu": ("throughput", lambda r: (r.get("worker") or {}).get("cpu_ms_per_saga"), min, "CPU/saga"),
    "rss": ("throughput", lambda r: (r.get("worker") or {}).get("peak_rss_mib"), min, "peak RSS"),
}


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
        "p99": median(r["latency"]["p99_ms"] for r in rs),
        "cpu": median(x.get("cpu_ms_per_saga") for x in w),
        "rss": median(x.get("peak_rss_mib") for x in w),
        "scpu": median(x.get("cpu_ms_per_saga") for x in s),
    }


order = {"throughput": 0, "latency": 1, "sweep": 2}
rank = lambda label: list(NAMES).index(label) if label in NAMES else 99
header = (f"{'run':<11}{'configuration':<40}{'c':>4}{'runs':>5}{'wrong':>6}{'sagas/s':>9}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/saga':>12}{'RSS MiB':>9}{'server CPU ms/saga':>20}")
print("Medians over the rounds (a sweep is one run per point)")
print(header)
print("-" * len(header))
failures = 0
for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[2], rank(k[1]))):
    scenario, label, c = key
    f = figures(groups[key])
    failures += f["failures"]
    print(f"{scenario:<11}{NAMES.get(label, label):<40}{c:>4}{f['runs']:>5}{f['failures']:>6}"
          f"{fmt(f['rate']):>9}{fmt(f['p50']):>9}{fmt(f['p99']):>9}{fmt(f['cpu'], 2):>12}"
          f"{fmt(f['rss']):>9}{fmt(f['scpu'], 2):>20}")


def round_value(scenario, label, rnd, read):
    for r in runs:
        if r["scenario"] == scenario and r["label"] == label and r["round"] == rnd:
            return read(r)
    return None


print()
print("Goals: ratio against the best peer figure on each measure, median of the per-round")
print("ratios [min-max]; the peer that set the best figure most often is named. 'floor' is the")
print("same ratio for the path's floor (no step at all): where even it misses, no saga can meet")
print("the goal on this server, and the goal is counted out of reach, not missed. 'shape' is the")
print("ratio for the saga's own events with empty steps: what is left once the steps cost nothing")
missed = out_of_reach = 0


def ratio(ours, peers, scenario, read, best_of):
    """The median over rounds of ours / the best peer, its range, and the usual best peer."""
    ratios, bests = [], []
    for rnd in sorted({r["round"] for r in runs if r["scenario"] == scenario}):
        mine = round_value(scenario, ours, rnd, read)
        theirs = [(round_value(scenario, p, rnd, read), p) for p in peers]
        theirs = [(v, p) for v, p in theirs if v]
        if mine is None or not theirs:
            continue
        best, who = best_of(theirs)
        ratios.append(mine / best)
        bests.append(who)
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios), max(set(bests), key=bests.count)


for ours, peers, goals, floor, shape in GOALS:
    if not any(r["label"] == ours for r in runs):
        continue
    print(f"\n{NAMES[ours]} against {', '.join(p for p in peers)}")
    for measure, goal in goals.items():
        scenario, read, best_of, title = MEASURES[measure]
        found = ratio(ours, peers, scenario, read, best_of)
        if found is None:
            print(f"  {title:<10} no paired runs")
            continue
        r, low, high, who = found
        meets = (lambda x: x >= goal) if best_of is max else (lambda x: x <= goal)
        floor_found = ratio(floor, peers, scenario, read, best_of)
        floor_text, verdict = "", "met" if meets(r) else "MISSED"
        if floor_found is not None:
            floor_text = f"  floor {floor_found[0]:.2f}x"
            if not meets(r) and not meets(floor_found[0]):
                verdict = "out of reach"
        shape_found = shape and ratio(shape, peers, scenario, read, best_of)
        if shape_found:
            floor_text += f"  shape {shape_found[0]:.2f}x"
        if ours in BESIDE:
            verdict = f"({verdict}, beside)"
        missed += verdict == "MISSED"
        out_of_reach += verdict == "out of reach"
        sign = ">=" if best_of is max else "<="
        print(f"  {title:<10} {r:6.2f}x  goal {sign} {goal:<5} {verdict:<13} "
              f"[{low:.2f}-{high:.2f}]  best peer: {who}{floor_text}")
print()
print(f"goals missed: {missed}")
print(f"goals out of reach (the floor misses them too): {out_of_reach}")
print(f"wrong or missing answers across all runs: {failures}")
sys.exit(1 if failures else 0)
