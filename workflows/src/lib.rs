//! The `OrderSaga` workflow.
//!
//! The saga runs three local transactions in order — save the order, take the payment, reserve
//! the stock — and then publishes a success notification. When a step fails, the failed step's
//! own compensation runs first (the step may have committed before it failed), then the
//! compensations of the earlier steps in reverse. When a compensation itself fails, a failure
//! notification goes out and the saga stops compensating.
//!
//! Everything here is deterministic: no clock, no randomness, no I/O. The side effects live in the
//! activities, which this crate knows only by their contracts in [`saga_protos::contracts`].

mod config;
mod options;
mod saga;
pub mod visibility;

pub use config::{Dispatch, Routing, SagaConfig};

pub use options::{activity_options, local_activity_options, retry_policy};
pub use saga::{OrderSaga, SagaState, Step};
