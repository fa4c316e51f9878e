//! What a saga that did not complete returns: typed, so the author can react to each case.
//!
//! Infrastructure faults never surface here: forward steps wait them out within their
//! [`crate::Patience`], and compensations and notifications retry them until they pass. So a
//! failed compensation is always a business error ([`CompensationFailure::error`]).

use crate::{failure::BusinessError, patience::humanize, rounds::Stop};
use std::time::Duration;

/// Why the saga stopped going forward.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepFailure {
    /// A step failed with its business error.
    #[error("{error}")]
    Business {
        /// The step's activity type.
        activity: String,
        /// Its error.
        error: BusinessError,
    },
    /// A step's infrastructure stayed down longer than the step's window or the saga's deadline
    /// allowed.
    #[error("{activity} gave up waiting on its infrastructure: {why}; last error: {last_error}")]
    OutOfTime {
        /// The step's activity type.
        activity: String,
        /// Which limit ran out.
        why: String,
        /// The last attempt's error.
        last_error: String,
    },
    /// The saga's deadline had passed before this step could start.
    #[error("the saga's deadline ({}) passed before {before}", humanize(*.deadline))]
    DeadlinePassed {
        /// The step that did not start.
        before: String,
        /// The deadline the saga had.
        deadline: Duration,
    },
    /// A client asked to cancel the saga.
    #[error("workflow cancelled")]
    Cancelled,
}

impl StepFailure {
    pub(crate) fn of_step(activity: &str, stop: Stop) -> Self {
        match stop {
            Stop::Business(error) => Self::Business {
                activity: activity.to_owned(),
                error,
            },
            Stop::OutOfTime { why, last_error } => Self::OutOfTime {
                activity: activity.to_owned(),
                why,
                last_error,
            },
        }
    }
}

/// A compensation that failed with its business error: what it left undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{compensation} (undoing {step}) failed: {error}")]
pub struct CompensationFailure {
    /// The compensation's activity type.
    pub compensation: String,
    /// The step it was to undo, which stays done.
    pub step: String,
    /// Its error.
    pub error: BusinessError,
}

/// A saga that did not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SagaError<T> {
    /// A step failed (or the deadline passed, or a client cancelled) and every compensation
    /// succeeded: nothing the saga did is left done.
    #[error("compensated after {failure}")]
    Compensated {
        /// The value as the last compensation returned it.
        value: T,
        /// Why the saga stopped going forward.
        failure: StepFailure,
        /// Whether a client asked to cancel: the phase is then `cancelled`, not `compensated`.
        cancelled: bool,
    },
    /// A step failed, and at least one compensation failed with its business error: what it
    /// was to undo stays done, and someone must look.
    #[error("compensation failed after {failure}: {}", .failed[0])]
    CompensationFailed {
        /// The value as the last successful activity returned it.
        value: T,
        /// Why the saga stopped going forward.
        failure: StepFailure,
        /// Each compensation that failed, in the order they ran (never empty).
        failed: Vec<CompensationFailure>,
    },
    /// The notification at the end failed with its business error.
    #[error("{activity} failed: {error}")]
    NotificationFailed {
        /// The notification's activity type.
        activity: String,
        /// Its error.
        error: BusinessError,
    },
}
