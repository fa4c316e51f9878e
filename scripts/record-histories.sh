#!/usr/bin/env bash
# Re-records workflows/tests/histories/ from a real dev server and worker: the seven scenarios,
# a cancelled saga and two local-dispatch sagas. Do this only for a deliberate change of the
# workflow's commands, versioned so that sagas in flight still replay (see temporal-saga/src/version.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p saga-worker --test it -- --ignored --nocapture record_histories
