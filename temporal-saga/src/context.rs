//! The seam between the saga engine and the SDK: [`SagaContext`], what the engine asks of a
//! workflow, and [`SagaWorkflow`], how it finds its state in the author's workflow type.
//!
//! The SDK's `WorkflowContext` can only be built inside the SDK, so the engine is written
//! against this trait: a workflow passes its `&WorkflowContext<W>` (the impl below), and the
//! library's unit tests pass a context that scripts each activity's answer, so the policy
//! (ordering, options, classification, rounds) is tested with no server.

use crate::{
    failure::RoundError,
    rounds::{Round, RoundKind},
    status::SagaRuntime,
};
use std::{future::Future, time::SystemTime};
use temporalio_common::{
    UntypedActivity, data_converters::PayloadConverter, data_converters::RawValue,
    search_attributes::SearchAttributeUpdate,
};
use temporalio_sdk::WorkflowContext;

/// A workflow type that runs a saga: it holds the saga's [`SagaRuntime`].
///
/// ```
/// use temporal_saga::{SagaRuntime, SagaWorkflow};
///
/// #[derive(Default)]
/// struct TripSaga {
///     saga: SagaRuntime<String>,
/// }
///
/// impl SagaWorkflow for TripSaga {
///     type Value = String;
///     fn saga(&self) -> &SagaRuntime<String> {
///         &self.saga
///     }
///     fn saga_mut(&mut self) -> &mut SagaRuntime<String> {
///         &mut self.saga
///     }
/// }
/// ```
pub trait SagaWorkflow: 'static {
    /// The value the saga's steps pass on (the order, the trip).
    type Value: Clone + 'static;
    /// The saga's state.
    fn saga(&self) -> &SagaRuntime<Self::Value>;
    /// The saga's state, to change.
    fn saga_mut(&mut self) -> &mut SagaRuntime<Self::Value>;
}

/// What the saga engine asks of a running workflow. Implemented for the SDK's
/// `WorkflowContext<W>` of every [`SagaWorkflow`]; implement it yourself only to drive the
/// engine in a test.
pub trait SagaContext {
    /// The value the saga's steps pass on.
    type Value: Clone + 'static;

    /// Runs one round of `activity` with `input`, as a local or regular activity as `round`
    /// says, and returns its output or why the round failed.
    fn run_round(
        &self,
        activity: &str,
        input: RawValue,
        round: &Round,
    ) -> impl Future<Output = Result<RawValue, RoundError>>;

    /// Checks or records a patch marker (the SDK's `patched`).
    fn patched(&self, patch_id: &str) -> bool;
    /// Records a patch marker that is being retired (the SDK's `deprecate_patch`).
    fn deprecate_patch(&self, patch_id: &str) -> bool;
    /// Whether the workflow is replaying history.
    fn is_replaying(&self) -> bool;
    /// The string the starter put under `key` in the start request's memo; `None` when there
    /// is none, or it is not a string. The memo comes with the start event, so every replay
    /// reads what the first run read.
    fn start_memo(&self, key: &str) -> Option<String>;
    /// Workflow time: the workflow task's time, the same on every replay.
    fn workflow_time(&self) -> Option<SystemTime>;
    /// When the workflow execution started.
    fn start_time(&self) -> Option<SystemTime>;
    /// Whether a client asked to cancel the workflow.
    fn cancel_requested(&self) -> bool;
    /// Sets the details the Web UI shows for the running workflow.
    fn set_current_details(&self, details: String);
    /// Upserts search attributes.
    fn upsert_search_attributes(&self, updates: Vec<SearchAttributeUpdate>);
    /// The converter that turns values into payloads and back.
    fn payload_converter(&self) -> &PayloadConverter;
    /// Reads the saga's state.
    fn read_saga<R>(&self, f: impl FnOnce(&SagaRuntime<Self::Value>) -> R) -> R;
    /// Changes the saga's state.
    fn with_saga<R>(&self, f: impl FnOnce(&mut SagaRuntime<Self::Value>) -> R) -> R;
}

impl<W: SagaWorkflow> SagaContext for WorkflowContext<W> {
    type Value = W::Value;

    fn run_round(
        &self,
        activity: &str,
        input: RawValue,
        round: &Round,
    ) -> impl Future<Output = Result<RawValue, RoundError>> {
        let activity = UntypedActivity::new(activity);
        let run = match round.kind() {
            RoundKind::Remote(options) => {
                futures_util::future::Either::Left(self.execute_activity(activity, input, options))
            }
            RoundKind::Local(options) => futures_util::future::Either::Right(
                self.execute_local_activity(activity, input, options),
            ),
        };
        async move { run.await.map_err(|error| RoundError::from(&error)) }
    }

    fn patched(&self, patch_id: &str) -> bool {
        WorkflowContext::patched(self, patch_id)
    }

    fn deprecate_patch(&self, patch_id: &str) -> bool {
        WorkflowContext::deprecate_patch(self, patch_id)
    }

    fn is_replaying(&self) -> bool {
        WorkflowContext::is_replaying(self)
    }

    fn start_memo(&self, key: &str) -> Option<String> {
        // The saga never changes its memo, so the current memo is the start event's.
        self.memo().get::<String>(key).ok().flatten()
    }

    fn workflow_time(&self) -> Option<SystemTime> {
        WorkflowContext::workflow_time(self)
    }

    fn start_time(&self) -> Option<SystemTime> {
        self.info().start_time()
    }

    fn cancel_requested(&self) -> bool {
        self.cancellation_token().is_cancelled()
    }

    fn set_current_details(&self, details: String) {
        WorkflowContext::set_current_details(self, details)
    }

    fn upsert_search_attributes(&self, updates: Vec<SearchAttributeUpdate>) {
        WorkflowContext::upsert_search_attributes(self, updates)
    }

    fn payload_converter(&self) -> &PayloadConverter {
        WorkflowContext::payload_converter(self)
    }

    fn read_saga<R>(&self, f: impl FnOnce(&SagaRuntime<W::Value>) -> R) -> R {
        self.state(|w| f(w.saga()))
    }

    fn with_saga<R>(&self, f: impl FnOnce(&mut SagaRuntime<W::Value>) -> R) -> R {
        self.state_mut(|w| f(w.saga_mut()))
    }
}
