//! What a failed round of an activity means for the saga.
//!
//! | the round ended with | meaning | the saga |
//! |---|---|---|
//! | the [`not-here`](crate::SagaOptions::not_here_error_type) error type: a local activity on a workflow worker without the activity | not here | runs the activity as a regular activity, at once |
//! | a non-retryable application failure (the activity's own error types) | a business error | changes course at once: compensates, or reports a failed compensation |
//! | a timeout of the step's whole time (schedule-to-close), or the server's "retries would outlast the timeout" | out of time | gives up on a forward step and compensates |
//! | anything else: a retryable failure (the database down, locked, in conflict), an attempt's start-to-close timeout | infrastructure | waits: another round |
//!
//! Everything here reads the failure the history recorded, so a replay classifies it the same.
//! Infrastructure faults never end a compensation (its rounds go on until it succeeds), so a
//! failed compensation is always a business error.

use temporalio_common::{
    error::ActivityExecutionError,
    protos::temporal::api::{
        enums::v1::{RetryState, TimeoutType},
        failure::v1::{Failure, failure::FailureInfo},
    },
};

/// Why one round of an activity failed, as the history recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundError {
    /// The failure the history recorded; `None` when the result could not be decoded.
    pub failure: Option<Box<Failure>>,
    /// The error as the SDK words it.
    pub message: String,
}

impl From<&ActivityExecutionError> for RoundError {
    fn from(error: &ActivityExecutionError) -> Self {
        Self {
            failure: error.failure().cloned().map(Box::new),
            message: error.to_string(),
        }
    }
}

impl RoundError {
    /// A round whose input or output could not be converted: no retry of the same code fixes it.
    pub(crate) fn conversion(error: impl std::fmt::Display) -> Self {
        Self {
            failure: None,
            message: format!("Payload conversion failed: {error}"),
        }
    }
}

/// A business error: the activity's own non-retryable failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessError {
    /// The application error type (`ErrProcessPayment`); `None` when it has none.
    pub error_type: Option<String>,
    /// The failure's message.
    pub message: String,
}

impl std::fmt::Display for BusinessError {
    /// "ErrProcessPayment: payment failed …", or the message alone for a failure without a type.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_type {
            Some(error_type) => write!(f, "{error_type}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoundFailure {
    /// This workflow worker cannot run the activity locally; another round, as a regular one.
    NotHere,
    /// The activity's own error.
    Business(BusinessError),
    /// The step's time ran out while infrastructure errors were being retried; the last one.
    OutOfTime(String),
    /// The round's attempts were spent on infrastructure errors; the last one.
    Infrastructure(String),
}

pub(crate) fn classify(error: &RoundError, not_here_error_type: &str) -> RoundFailure {
    let Some(top) = error.failure.as_deref() else {
        return RoundFailure::Business(BusinessError {
            error_type: None,
            message: error.message.clone(),
        });
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
        Some(FailureInfo::ApplicationFailureInfo(app)) if app.r#type == not_here_error_type => {
            RoundFailure::NotHere
        }
        Some(FailureInfo::ApplicationFailureInfo(app)) if app.non_retryable => {
            RoundFailure::Business(BusinessError {
                error_type: (!app.r#type.is_empty()).then(|| app.r#type.clone()),
                message: cause.message.clone(),
            })
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

/// A schedule-to-close timeout carries the last attempt's failure as its cause, when there was
/// one: that is what the saga was waiting on.
fn last_failure(timeout: &Failure) -> String {
    match timeout.cause.as_deref() {
        Some(last) => last.message.clone(),
        None => timeout.message.clone(),
    }
}

/// Failures as the history records them, for tests of the engine.
#[cfg(test)]
pub(crate) mod recorded {
    use super::*;
    use temporalio_common::protos::temporal::api::failure::v1::{
        ActivityFailureInfo, ApplicationFailureInfo, TimeoutFailureInfo,
    };

    pub(crate) fn application(error_type: &str, message: &str, non_retryable: bool) -> Failure {
        Failure {
            message: message.to_owned(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: error_type.to_owned(),
                    non_retryable,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    /// A regular activity's failure: `cause` wrapped with the server's verdict.
    pub(crate) fn activity(cause: Failure, retry_state: RetryState) -> RoundError {
        RoundError {
            failure: Some(Box::new(Failure {
                message: "Activity task failed".into(),
                failure_info: Some(FailureInfo::ActivityFailureInfo(ActivityFailureInfo {
                    retry_state: retry_state as i32,
                    ..Default::default()
                })),
                cause: Some(Box::new(cause)),
                ..Default::default()
            })),
            message: "Activity failed".into(),
        }
    }

    pub(crate) fn schedule_to_close(last: Option<Failure>) -> Failure {
        Failure {
            message: "activity ScheduleToClose timeout".into(),
            failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
                timeout_type: TimeoutType::ScheduleToClose as i32,
                ..Default::default()
            })),
            cause: last.map(Box::new),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{recorded::*, *};

    const NOT_HERE: &str = crate::LOCAL_DISPATCH_UNAVAILABLE;

    #[test]
    fn a_non_retryable_application_failure_is_business() {
        let error = activity(
            application("ErrBookCar", "no car left", true),
            RetryState::NonRetryableFailure,
        );
        let RoundFailure::Business(business) = classify(&error, NOT_HERE) else {
            panic!("not business");
        };
        assert_eq!(business.to_string(), "ErrBookCar: no car left");
    }

    #[test]
    fn a_local_failure_is_read_without_a_wrapper() {
        let error = RoundError {
            failure: Some(Box::new(application("", "bad", true))),
            message: String::new(),
        };
        assert_eq!(
            classify(&error, NOT_HERE),
            RoundFailure::Business(BusinessError {
                error_type: None,
                message: "bad".into()
            })
        );
    }

    #[test]
    fn retries_spent_on_a_retryable_failure_are_infrastructure() {
        let error = activity(
            application("DatabaseUnavailable", "db down", false),
            RetryState::MaximumAttemptsReached,
        );
        assert_eq!(
            classify(&error, NOT_HERE),
            RoundFailure::Infrastructure("db down".into())
        );
    }

    #[test]
    fn a_step_out_of_time_reports_the_last_attempts_error() {
        let timeout = schedule_to_close(Some(application("", "db down", false)));
        let error = activity(timeout, RetryState::Timeout);
        assert_eq!(
            classify(&error, NOT_HERE),
            RoundFailure::OutOfTime("db down".into())
        );
        let would_outlast = activity(application("", "still down", false), RetryState::Timeout);
        assert_eq!(
            classify(&would_outlast, NOT_HERE),
            RoundFailure::OutOfTime("still down".into())
        );
    }

    #[test]
    fn the_not_here_type_reroutes_even_when_non_retryable() {
        let error = RoundError {
            failure: Some(Box::new(application(
                NOT_HERE,
                "no such activity here",
                true,
            ))),
            message: String::new(),
        };
        assert_eq!(classify(&error, NOT_HERE), RoundFailure::NotHere);
    }

    #[test]
    fn an_undecodable_result_is_business() {
        let error = RoundError::conversion("expected a string");
        assert!(matches!(
            classify(&error, NOT_HERE),
            RoundFailure::Business(_)
        ));
    }
}
