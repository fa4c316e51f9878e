//! The saga library against a real Temporal dev server: one test binary, one module a topic.
//!
//! | module | what it shows |
//! |---|---|
//! | `trip_example` | the `trip_booking` example takes every scenario's design path |
//! | `evolution` | a saga definition changed with sagas in flight: each saga ends on its own version |
//!
//! Each test starts its own dev server (`temporal` from `TEMPORAL_BIN` or the PATH).

mod evolution;
mod support;
mod trip_example;
