#!/usr/bin/env bash
# Fuzzes the order parser and validator (fuzz/fuzz_targets/parse_order.rs) for SECONDS
# (default 60), starting from the sample orders in testdata/. Installs cargo-fuzz if missing.
#
# cargo fuzz passes nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them. SAGA_FUZZ_SANITIZER picks the sanitizer (default: none, the quickest build; the
# target is safe Rust, so a panic is what we look for). Findings land in fuzz/artifacts/.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
corpus="$root/fuzz/corpus/parse_order"
mkdir -p "$corpus"
cd "$root/fuzz"
exec cargo fuzz run parse_order \
    --sanitizer "${SAGA_FUZZ_SANITIZER:-none}" \
    "$corpus" "$root/testdata" \
    -- -max_total_time="$seconds" -max_len=16384 -timeout=10 -print_final_stats=1
