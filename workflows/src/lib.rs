//! The `OrderSaga` workflow, on the saga library [`temporal_saga`].
//!
//! The saga runs three local transactions in order — save the order, take the payment, reserve
//! the stock — and then publishes a success notification. When a step fails, the failed step's
//! own compensation runs first (the step may have committed before it failed), then the
//! compensations of the earlier steps in reverse. When a compensation itself fails, a failure
//! notification goes out and the saga stops compensating.
//!
//! Only business errors change the saga's course. A step whose database is down, locked or
//! unreachable waits for it, in rounds of retries: a forward step for a window of minutes, a
//! compensation or a notification until it gets through; meanwhile the `state` query and the
//! `SagaWaiting` search attribute say what it waits on. All of that is the library's; this
//! crate holds only what belongs to the order.
//!
//! | module | concern |
//! |---|---|
//! | `saga` | the order's steps, compensations and notification; the `state` query |
//! | `config` | what the worker tells the saga ([`SagaConfig`]) and the library options it makes |
//! | [`visibility`] | the order's search attributes |
//!
//! Everything here is deterministic: no clock, no randomness, no I/O. The side effects live in the
//! activities, which this crate knows only by their contracts in [`saga_protos::contracts`].

mod config;
mod saga;
pub mod visibility;

pub use config::{Dispatch, Patience, Routing, SagaConfig};
pub use saga::{OrderSaga, SagaState, Waiting};
/// The start memo key in which a starter that knows the deployment's mode names the dispatch.
pub use temporal_saga::DISPATCH_MEMO;
