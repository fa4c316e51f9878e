//! The `OrderSaga` workflow.
//!
//! The saga runs three local transactions in order — save the order, take the payment, reserve
//! the stock — and then publishes a success notification. When a step fails, the failed step's
//! own compensation runs first (the step may have committed before it failed), then the
//! compensations of the earlier steps in reverse. When a compensation itself fails, a failure
//! notification goes out and the saga stops compensating.
//!
//! Only business errors change the saga's course. A step whose database is down, locked or
//! unreachable waits for it, in rounds of retries ([`options`]): a forward step for a window of
//! minutes ([`patience`]), a compensation or a notification until it gets through; meanwhile the
//! `state` query and the `SagaWaiting` search attribute say what it waits on ([`visibility`]).
//!
//! | module | concern |
//! |---|---|
//! | `saga` | the saga itself: steps, compensations, notifications, the `state` query |
//! | [`options`] | timeouts and retry rounds |
//! | [`patience`] | the forward step window and the saga's deadline |
//! | `failure` | what a failed round means: business error, infrastructure, out of time |
//! | `dispatch` | local or regular activities, decided per step and recorded in the history |
//! | [`visibility`] | search attributes |
//! | `config` | what the worker tells the saga ([`SagaConfig`]) |
//!
//! Everything here is deterministic: no clock, no randomness, no I/O. The side effects live in the
//! activities, which this crate knows only by their contracts in [`saga_protos::contracts`].

mod config;
mod dispatch;
mod failure;
pub mod options;
pub mod patience;
mod saga;
pub mod visibility;

pub use config::{Dispatch, Patience, Routing, SagaConfig};
pub use saga::{OrderSaga, SagaState, Step, Waiting};
