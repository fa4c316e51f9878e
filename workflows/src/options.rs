//! Timeouts and retries of the design, in one place.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityOptions, LocalActivityOptions, WorkflowCancellationToken};

/// Each attempt of an activity must finish within this.
pub const START_TO_CLOSE: Duration = Duration::from_secs(10);

/// Transient errors retry: 2 s, then 4 s, then 8 s; four attempts in all. Business errors are
/// raised as non-retryable and never retry.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(2))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(8))
        .maximum_attempts(4)
        .build()
}

/// Options for every saga step.
///
/// Each step gets a cancellation token of its own, detached from the workflow's: a local
/// transaction that has started is allowed to finish, so the saga always knows what it must
/// compensate. The workflow checks for cancellation between steps instead.
pub fn activity_options(summary: String, task_queue: Option<String>) -> ActivityOptions {
    let mut options = ActivityOptions::with_start_to_close_timeout(START_TO_CLOSE)
        .retry_policy(retry_policy())
        .cancellation_token(WorkflowCancellationToken::new())
        .summary(summary)
        .build();
    options.task_queue = task_queue;
    options
}

/// The same timeouts, retries and detached cancellation for a step run as a local activity.
pub fn local_activity_options(summary: String) -> LocalActivityOptions {
    let mut options = LocalActivityOptions::default();
    options.start_to_close_timeout = Some(START_TO_CLOSE);
    options.retry_policy = retry_policy();
    options.cancellation_token = Some(WorkflowCancellationToken::new());
    options.summary = Some(summary);
    options
}
