//! What a failed round of a step means for the saga.
//!
//! | the round ended with                                        | meaning           | the saga |
//! |-------------------------------------------------------------|-------------------|----------|
//! | `LocalDispatchUnavailable`: a local activity on a workflow worker without the step's service | not here | runs the step as a regular activity, at once |
//! | a non-retryable application failure (`Err*`, `InvalidOrder`) | a business error  | changes course at once: compensates, or reports a failed compensation |
//! | a timeout of the step's whole time (schedule-to-close), or the server's "retries would outlast the timeout" | out of time | gives up on a forward step and compensates |
//! | anything else: a retryable failure (the database down, locked, in conflict), an attempt's start-to-close timeout | infrastructure | waits: another round |
//!
//! Everything here reads the failure the history recorded, so a replay classifies it the same.

use saga_protos::scenario::LOCAL_DISPATCH_UNAVAILABLE;
use temporalio_common::{
    error::ActivityExecutionError,
    protos::temporal::api::{
        enums::v1::{RetryState, TimeoutType},
        failure::v1::{Failure, failure::FailureInfo},
    },
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoundFailure {
    /// This workflow worker cannot run the step locally; another round, as a regular activity.
    NotHere,
    /// "ErrProcessPayment: ProcessPayment failed for order …".
    Business(String),
    /// The step's time ran out while infrastructure errors were being retried; the last one.
    OutOfTime(String),
    /// The round's attempts were spent on infrastructure errors; the last one.
    Infrastructure(String),
}

pub(crate) fn classify(error: &ActivityExecutionError) -> RoundFailure {
    let Some(top) = error.failure() else {
        // The result could not be decoded: no retry of the same code will decode it.
        return RoundFailure::Business(error.to_string());
    };
    // A regular activity's failure wraps its cause in ActivityFailureInfo, with the server's
    // verdict on its retries; a local activity's is usually the cause itself.
    let (retry_state, cause) = match &top.failure_info {
        Some(FailureInfo::ActivityFailureInfo(info)) => {
            (info.retry_state(), top.cause.as_deref().unwrap_or(top))
        }
        _ => (RetryState::Unspecified, top),
    };
    match &cause.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(app))
            if app.r#type == LOCAL_DISPATCH_UNAVAILABLE =>
        {
            RoundFailure::NotHere
        }
        Some(FailureInfo::ApplicationFailureInfo(app)) if app.non_retryable => {
            RoundFailure::Business(describe(cause))
        }
        Some(FailureInfo::TimeoutFailureInfo(t))
            if t.timeout_type() == TimeoutType::ScheduleToClose =>
        {
            RoundFailure::OutOfTime(last_failure(cause))
        }
        // An infrastructure failure's message names the service and the fault already.
        _ if retry_state == RetryState::Timeout => RoundFailure::OutOfTime(cause.message.clone()),
        _ => RoundFailure::Infrastructure(cause.message.clone()),
    }
}

/// "ErrProcessPayment: payment failed …", or the message alone for a failure without a type.
fn describe(failure: &Failure) -> String {
    match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(app)) if !app.r#type.is_empty() => {
            format!("{}: {}", app.r#type, failure.message)
        }
        _ => failure.message.clone(),
    }
}

/// A schedule-to-close timeout carries the last attempt's failure as its cause, when there was
/// one: that is what the saga was waiting on.
fn last_failure(timeout: &Failure) -> String {
    match timeout.cause.as_deref() {
        Some(last) => last.message.clone(),
        None => timeout.message.clone(),
    }
}
