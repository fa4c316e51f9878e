#!/usr/bin/env python3
"""How much of worker/link-order.txt a `saga` binary still has: `link-order-match.py BINARY LIST`.

The list names functions by their mangled symbols, which change with the toolchain, Cargo.lock
and the code that instantiates them; a name the binary lacks is skipped by the linker, and the
functions it stood for are laid out in the usual order, spread over the binary's code and
resident in every worker (docs/performance-history.md, "Link order"). Prints one line; exits 1
when less than 90 % of the list is in the binary, 0 otherwise.
"""
import subprocess
import sys

binary, listed = sys.argv[1:3]
symbols = set()
for line in subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        symbols.add(parts[2])
names = open(listed).read().split()
kept = sum(name in symbols for name in names)
share = kept / len(names) if names else 0.0
print(f"{kept} of the {len(names)} functions of {listed} are in {binary} ({share:.0%})")
sys.exit(0 if share >= 0.9 else 1)
