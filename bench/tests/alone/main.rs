//! `saga-bench` against a real dev server and `saga worker` (the worker's test support,
//! `worker/tests/support`). These load the machine, so `make test`
//! runs them one at a time, after the tests that share it.
//!
//! | module | what it shows |
//! |---|---|
//! | `bench_smoke` | a toy-size run checks every saga; a dead worker or an unpolled queue ends the run; the comparison script runs every configuration; the instruction-count script counts a saga the same twice; the no-step floor completes every run |

#[path = "../../../worker/tests/support/mod.rs"]
mod support;

mod bench_smoke;
