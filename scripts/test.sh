#!/usr/bin/env bash
# The whole suite, as `make test` and CI run it: fmt, every test target built once, then clippy,
# the doc tests, every crate's `tests/it` binary (in parallel) and the `tests/alone` binaries
# (one test at a time). Each test starts its own dev servers and databases on free ports.
#
# The outage tests spend most of their seven minutes waiting for a stopped database to come
# back, so they run beside everything after the build instead of after it: one at a time, in a
# process group of their own, logged to target/outages.log and summed up at the end. The
# compile steps beside them run at a lower priority, so the sagas under test get the CPU when
# they need it. Every other `tests/alone` test still runs last, with nothing beside it but
# the outages' idle waiting.
#
# Prints each phase with the seconds elapsed, so a slow run shows where its time went.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FLAGS=${CARGO_FLAGS---locked}
# shellcheck disable=SC2206 # a list of flags
flags=($CARGO_FLAGS)
# SECONDS counts from the script's start.
phase() { echo "==> make test, ${SECONDS} s in: $*" >&2; }

outages_pid=
outages_log=target/outages.log
stop_outages() {
    if [[ -n $outages_pid ]] && kill -0 "$outages_pid" 2>/dev/null; then
        echo "stopping the outage tests (their log: $outages_log)" >&2
        # The whole group: cargo, the test binary and the servers and workers it started.
        kill -- -"$outages_pid" 2>/dev/null || true
    fi
}
trap stop_outages EXIT

phase "cargo fmt --check"
cargo fmt --all --check

phase "building every test target (cargo test --workspace --no-run)"
cargo test "${flags[@]}" --workspace --no-run

phase "the outage tests start beside the rest (log: $outages_log)"
mkdir -p target
setsid cargo test "${flags[@]}" --workspace --test alone -- --test-threads=1 outages:: \
    >"$outages_log" 2>&1 &
outages_pid=$!

phase "clippy"
nice -n 10 cargo clippy "${flags[@]}" --workspace --all-targets -- -D warnings

phase "doc tests"
nice -n 10 cargo test "${flags[@]}" --workspace --doc

phase "unit tests and every crate's tests/it binary"
cargo test "${flags[@]}" --workspace --lib --bins --test it

phase "tests/alone, one at a time (the outages excepted)"
cargo test "${flags[@]}" --workspace --test alone -- --test-threads=1 --skip outages::

phase "waiting for the outage tests"
status=0
wait "$outages_pid" || status=$?
outages_pid=
grep -E "^test |^test result|panicked|FAILED|failures" "$outages_log" >&2 || true
if [[ $status -ne 0 ]]; then
    echo "the outage tests failed; their whole log:" >&2
    cat "$outages_log" >&2
    exit "$status"
fi
phase "all passed"
