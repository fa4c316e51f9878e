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

# The whole suite (scripts/test.sh): fmt, every test target built once, clippy, the doc tests,
# every crate's `tests/it` binary in parallel, then the tests that must not share the machine
# (`tests/alone`) one at a time. The outage tests, minutes of waiting for a stopped database,
# run beside the rest from the end of the build on. Every test starts its own dev server and
# workers on free ports: nothing to start by hand.
test: setup
	CARGO_FLAGS="$(CARGO_FLAGS)" scripts/test.sh

lint: fmt clippy

fmt:
	cargo fmt --all --check

clippy:
	cargo clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

ci: test

clean-data:
	rm -rf data
