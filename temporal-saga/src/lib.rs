//! Sagas on the Temporal Rust SDK.
//!
//! A saga runs local transactions in order, each in its own service with its own database, and
//! when one fails runs compensating transactions so the system ends consistent. This crate
//! runs such a saga inside a Temporal workflow: you declare the steps, each an activity with its
//! compensation, and [`Saga::run`] runs them. Whatever you declare, these hold:
//!
//! - **The failing step is compensated too**: its compensation is registered before it runs,
//!   because a step may commit and then fail ([`Step::uncommitted_on_failure`] opts out).
//! - **Compensations run newest first**, or all at once, stopping at the first that fails or
//!   going on ([`Compensation`]); the result names each that failed ([`SagaError`]).
//! - **Business errors change the saga's course at once; infrastructure faults are waited
//!   out**: a forward step for a window, a compensation until it succeeds ([`failure`],
//!   [`Retries`], [`Patience`]).
//! - **The deadline is the workflow's**, recorded in the history, so it never cuts a
//!   compensation off and a replay under other settings follows it ([`patience`]).
//! - **Cancellation never skips a committed step**, with local activities too
//!   ([`cancellation`]).
//! - **Each activity's dispatch (local or regular) is recorded**, so replay and a topology
//!   change mid-flight follow the record ([`dispatch`]).
//! - **People can see what the saga does and waits on**: [`SagaStatus`] for a query, and search
//!   attributes for its outcome and what it waits on ([`SearchAttributeNames`]).
//! - **A definition can change with sagas in flight** ([`version`]).
//!
//! What remains yours: activities that are idempotent (Temporal runs an activity at least
//! once) and each inside one local transaction, and deterministic workflow code around the saga.
//! `docs/semantics.md` beside this crate says what is guaranteed and what is not.
//!
//! # Example
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use temporal_saga::{Saga, SagaError, SagaRuntime, SagaWorkflow, Step};
//! use temporalio_common::ActivityDefinition;
//! use temporalio_macros::{workflow, workflow_methods};
//! use temporalio_sdk::{ApplicationFailure, WorkflowContext, WorkflowResult};
//!
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! pub struct Trip {
//!     pub trip_id: String,
//!     pub flight: Option<String>,
//!     pub hotel: Option<String>,
//! }
//!
//! // Activity contracts: the workflow needs only their names and types.
//! macro_rules! activity {
//!     ($marker:ident) => {
//!         pub struct $marker;
//!         impl ActivityDefinition for $marker {
//!             type Input = Trip;
//!             type Output = Trip;
//!             fn name(&self) -> &str {
//!                 stringify!($marker)
//!             }
//!         }
//!     };
//! }
//! activity!(BookFlight);
//! activity!(CancelFlight);
//! activity!(BookHotel);
//! activity!(CancelHotel);
//!
//! #[workflow]
//! #[derive(Default)]
//! pub struct TripSaga {
//!     saga: SagaRuntime<Trip>,
//! }
//!
//! impl SagaWorkflow for TripSaga {
//!     type Value = Trip;
//!     fn saga(&self) -> &SagaRuntime<Trip> {
//!         &self.saga
//!     }
//!     fn saga_mut(&mut self) -> &mut SagaRuntime<Trip> {
//!         &mut self.saga
//!     }
//! }
//!
//! #[workflow_methods]
//! impl TripSaga {
//!     #[run]
//!     pub async fn run(ctx: &mut WorkflowContext<Self>, trip: Trip) -> WorkflowResult<Trip> {
//!         let saga = Saga::new()
//!             .step(Step::new(BookFlight).compensate_with(CancelFlight))
//!             .step(Step::new(BookHotel).compensate_with(CancelHotel));
//!         let result = saga.run(ctx, trip).await;
//!         saga.close(ctx);
//!         result.map_err(|error: SagaError<Trip>| {
//!             ApplicationFailure::builder(error.to_string())
//!                 .type_name("SagaFailed".to_owned())
//!                 .non_retryable(true)
//!                 .build()
//!                 .into()
//!         })
//!     }
//! }
//! ```
//!
//! # Layout
//!
//! | module | concern |
//! |---|---|
//! | `saga` | [`Saga`] and [`Step`]: the definition, the forward run, compensation |
//! | [`context`] | the seam: [`SagaContext`] (what the engine asks of a workflow), [`SagaWorkflow`] (where its state lives) |
//! | `options` | [`SagaOptions`]: dispatch, [`Patience`], [`Retries`], [`Compensation`], routing, search attributes |
//! | `rounds` | one activity in rounds of retries, and what the saga shows while it waits |
//! | [`failure`] | what a failed round means: business error, infrastructure, out of time |
//! | [`dispatch`] | local or regular activities, decided per activity and recorded in the history |
//! | [`patience`] | the forward step window and the saga's deadline |
//! | [`cancellation`] | where a cancel request stops a saga, and why never inside a step |
//! | `status` | [`SagaStatus`], [`Phase`], [`Waiting`]: what a query shows |
//! | `error` | [`SagaError`], [`StepFailure`], [`CompensationFailure`] |
//! | [`version`] | changing a definition with sagas in flight |
//! | [`json`] | [`Json`]: a value that crosses as JSON straight from and to the payload's bytes |
//!
//! Everything here but [`Json`] (which activities use too) runs in workflow code: no clock but
//! workflow time, no randomness, no I/O.
#![deny(missing_docs)]

pub mod cancellation;
pub mod context;
pub mod dispatch;
mod error;
pub mod failure;
pub mod json;
mod options;
pub mod patience;
mod rounds;
mod saga;
mod status;
pub mod version;

#[cfg(test)]
mod tests;

pub use context::{SagaContext, SagaWorkflow};
pub use dispatch::DISPATCH_MEMO;
pub use error::{CompensationFailure, SagaError, StepFailure};
pub use failure::{BusinessError, RoundError};
pub use json::Json;
pub use options::{
    Compensation, Dispatch, LOCAL_DISPATCH_UNAVAILABLE, Patience, Retries, SagaOptions,
    SearchAttributeNames,
};
pub use rounds::{Round, RoundKind, waiting_cleared};
pub use saga::{Saga, Step};
pub use status::{Phase, SagaRuntime, SagaStatus, Waiting};
