//! How an activity's failure reaches Temporal.

use saga_protos::{InvalidOrder, scenario::INVALID_ORDER};
use temporalio_sdk::{ApplicationFailure, activities::ActivityError};

/// Everything a step can fail with, sorted by whether a retry could help.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A business failure (`ErrReserveInventory`, …): final, never retried.
    #[error("{kind}: {message}")]
    Business { kind: &'static str, message: String },
    /// The order itself is invalid: final, never retried.
    #[error(transparent)]
    Invalid(#[from] InvalidOrder),
    /// A database that is locked, down or unreachable: retried by the activity's retry policy.
    #[error("{0:#}")]
    Transient(#[from] anyhow::Error),
}

impl StepError {
    pub fn business(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Business {
            kind,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(anyhow::Error::new(e).context("database error"))
    }
}

impl StepError {
    /// The Temporal failure: business and validation errors non-retryable, the rest retryable.
    ///
    /// (Not a `From` impl: the SDK already converts every error into a retryable failure, which
    /// would be the wrong default for a business error.)
    pub fn into_activity_error(self) -> ActivityError {
        let failure = match self {
            StepError::Business { kind, message } => ApplicationFailure::builder(message)
                .type_name(kind.to_owned())
                .non_retryable(true)
                .build(),
            StepError::Invalid(invalid) => ApplicationFailure::builder(invalid.to_string())
                .type_name(INVALID_ORDER.to_owned())
                .non_retryable(true)
                .build(),
            StepError::Transient(error) => ApplicationFailure::builder(format!("{error:#}"))
                .type_name("Transient".to_owned())
                .build(),
        };
        ActivityError::application(failure)
    }
}
