#!/usr/bin/env python3
"""One measured run of the Python peer's `selfload` mode, reported as `saga-bench --json` does.

`selfload` is the peer at its best: its worker and its starter share one process, the steps are
local activities and every saga is started eagerly. It drives itself, so `saga-bench` cannot
time it; this wrapper runs it and reads its own figures (sagas/s, p50, p99, failed) from the
line it prints.

Its CPU counts the starting and the waiting too, as the peer's own loop does them. The
interpreter's start-up and imports are not charged to the sagas: the peer runs twice, WARM
sagas and then N, and the CPU per saga is the difference over the N - WARM extra sagas.
Peak RSS is the N run's. Every saga's outcome is checked on the server afterwards: the
completed executions on the run's task queue must be exactly WARM + N.

usage: selfload-run.py PYTHON PEER_SCRIPT ADDRESS QUEUE N CONCURRENCY WARM SERVER_PID LABEL
"""
import json
import os
import re
import resource
import subprocess
import sys
import time


def proc_cpu_s(pid):
    """User + system CPU seconds of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_peer(python, script, address, queue, n, concurrency):
    """Runs the peer to its end and returns the figures of the line it prints."""
    proc = subprocess.Popen([python, script, "selfload", address, queue, str(n), str(concurrency)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # communicate() reaps the child: its CPU and peak RSS land in RUSAGE_CHILDREN.
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"the peer exited with {proc.returncode}: {err.strip()[-2000:]}")
    m = re.search(r"rate=([\d.]+)/s p50=(\d+)ms p99=(\d+)ms failed=(\d+)", out)
    if not m:
        sys.exit(f"unexpected peer output: {out!r} {err.strip()[-2000:]}")
    return {
        "rate": float(m.group(1)),
        "p50": float(m.group(2)),
        "p99": float(m.group(3)),
        "failed": int(m.group(4)),
    }


def children_usage():
    """CPU seconds of every reaped child so far, and the largest child's peak RSS in KiB."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime, u.ru_maxrss


def completed_on(address, queue, expected):
    """Completed executions on the queue; waits up to 15 s for visibility to catch up."""
    query = f"TaskQueue='{queue}' AND ExecutionStatus='Completed'"
    count = -1
    for _ in range(30):
        out = subprocess.run(["temporal", "workflow", "count", "--address", address,
                              "--query", query, "-o", "json"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            count = int(json.loads(out.stdout).get("count", 0))
            if count >= expected:
                return count
        time.sleep(0.5)
    return count


def main():
    python, script, address, queue = sys.argv[1:5]
    n, concurrency, warm, server_pid, label = (int(sys.argv[5]), int(sys.argv[6]),
                                               int(sys.argv[7]), sys.argv[8], sys.argv[9])
    cpu0, _ = children_usage()
    small = run_peer(python, script, address, queue, warm, min(concurrency, warm))
    cpu1, _ = children_usage()
    server0, t0 = proc_cpu_s(server_pid), time.monotonic()
    big = run_peer(python, script, address, queue, n, concurrency)
    server1, wall = proc_cpu_s(server_pid), time.monotonic() - t0
    cpu2, maxrss_kib = children_usage()
    # RUSAGE_CHILDREN's maxrss is the largest of the children so far; the N run is the larger.
    cpu_small, cpu_big = cpu1 - cpu0, cpu2 - cpu1
    cpu_per_saga_ms = (cpu_big - cpu_small) * 1000 / max(n - warm, 1)
    completed = completed_on(address, queue, warm + n)
    missing = max(warm + n - completed, 0)
    failures = small["failed"] + big["failed"] + missing
    report = {
        "label": label,
        "sagas": n,
        "concurrency": concurrency,
        "failures": failures,
        "completed": completed,
        "sagas_per_s": big["rate"],
        "latency": {"p50_ms": big["p50"], "p95_ms": None, "p99_ms": big["p99"]},
        "worker": {
            "cpu_s": cpu_big,
            "cores_busy": cpu_big / wall,
            "cpu_ms_per_saga": cpu_per_saga_ms,
            "peak_rss_mib": maxrss_kib / 1024,
        },
        "server": {
            "pid": server_pid,
            "cpu_s": server1 - server0,
            "cores_busy": (server1 - server0) / wall,
            "cpu_ms_per_saga": (server1 - server0) * 1000 / n,
        },
    }
    print(json.dumps(report))
    if failures:
        print(f"{label}: {failures} sagas wrong or missing ({completed} of {warm + n} completed)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
