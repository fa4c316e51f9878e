# The two commands of the README: `make demo` and `make test`; `make check` is the fast tier.
.PHONY: demo test check ci setup build lint fmt clippy clean-data

export DEMO_PORT ?= 7233
export DEMO_UI_PORT

# Build exactly the dependency versions in Cargo.lock: a lock file that no longer matches the
# manifests fails here (and in CI) instead of being rewritten on a user's machine.
CARGO_FLAGS ?= --locked

setup:
	scripts/setup.sh

# Only the `saga` binary the demo runs (as the Dockerfile builds it); `saga-bench` and the
# examples are built by the commands that use them.
build:
	scripts/setup.sh --no-browser
	cargo build --release $(CARGO_FLAGS) --bin saga

# Dev server + Web UI + worker + the seven scenarios; runs until Ctrl-C.
demo: build
	scripts/demo.sh

# The fast tier, no server: fmt, clippy, every crate's unit tests (the saga library's policy
# among them) and the replay of every recorded history.
# Both lines select the whole workspace, so dependencies build once with one feature set.
check: lint
	cargo test $(CARGO_FLAGS) --workspace --lib --bins
	cargo test $(CARGO_FLAGS) --workspace --test it -- replay::

# The whole suite. Every test starts its own dev server and workers on free ports: nothing to
# start by hand. Doc tests come first, so the run closes on the integration tests' summary.
# Each crate's integration tests are one binary (`tests/it/`), run in parallel; the tests that
# must not share the machine (load, outages, timing: `worker/tests/alone/`, `bench/tests/alone/`)
# are binaries of their own, run last, one test at a time.
test: setup lint
	cargo test $(CARGO_FLAGS) --workspace --doc
	# The saga library's example, which its integration test runs against a dev server. Built
	# with the whole workspace selected, as the tests are, so the dependencies it shares with
	# them are built once (`-p temporal-saga` alone unifies other features: a second build).
	cargo build $(CARGO_FLAGS) --workspace --examples
	cargo test $(CARGO_FLAGS) --workspace --lib --bins --test it
	cargo test $(CARGO_FLAGS) --workspace --test alone -- --test-threads=1

lint: fmt clippy

fmt:
	cargo fmt --all --check

clippy:
	cargo clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

ci: test

clean-data:
	rm -rf data
