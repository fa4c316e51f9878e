//! Timeouts and retries, in one place: the reference's policy first, then patience.
//!
//! A step runs in rounds. Each round is one scheduled activity (or local activity) whose retries
//! the server (or core) runs; between rounds the saga updates what it shows (`state` query,
//! `SagaWaiting` search attribute) and decides again.
//!
//! | round | dispatch | attempts | waits between attempts | each attempt |
//! |-------|----------|----------|------------------------|--------------|
//! | 1     | the step's ([`crate::dispatch`]) | 4 | 2 s, 4 s, 8 s (the reference's policy) | 10 s start-to-close |
//! | 2, 3, … (only after infrastructure errors) | remote | 4 | 30 s each, the first at once | 10 s start-to-close |
//!
//! Business errors (`Err*`, `InvalidOrder`) are non-retryable and end a round at once. A forward
//! step's rounds also stop at its time limit ([`crate::patience`]); a compensation's and a
//! notification's never do. Later rounds are regular activities even in an all-in-one worker:
//! the server keeps their retries and backoff, so a long outage costs no workflow-task
//! heartbeats, and the Web UI shows the step pending with its attempt count and last failure.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityOptions, LocalActivityOptions, WorkflowCancellationToken,
};

/// Each attempt of an activity must finish within this.
pub const START_TO_CLOSE: Duration = Duration::from_secs(10);

/// Attempts in every round.
pub const ATTEMPTS_PER_ROUND: u32 = 4;

/// The wait between attempts once the reference's backoff is spent.
pub const LATER_INTERVAL: Duration = Duration::from_secs(30);

/// The reference's policy: 2 s, then 4 s, then 8 s; four attempts in all.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(2))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(8))
        .maximum_attempts(ATTEMPTS_PER_ROUND)
        .build()
}

/// The policy of rounds after the first: an attempt every 30 s.
pub fn later_retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(LATER_INTERVAL)
        .backoff_coefficient(1.0)
        .maximum_interval(LATER_INTERVAL)
        .maximum_attempts(ATTEMPTS_PER_ROUND)
        .build()
}

/// One round of a step, as the saga schedules it.
#[derive(Debug, Clone)]
pub struct Round {
    /// 1 for the first round.
    pub number: u32,
    pub summary: String,
    /// The step's remaining time (forward steps); `None` retries until it succeeds.
    pub budget: Option<Duration>,
}

impl Round {
    fn policy(&self) -> RetryPolicy {
        if self.number == 1 {
            retry_policy()
        } else {
            later_retry_policy()
        }
    }

    /// Options for the round as a regular activity.
    ///
    /// Each step gets a cancellation token of its own, detached from the workflow's: a local
    /// transaction that has started is allowed to finish, so the saga always knows what it must
    /// compensate. The workflow checks for cancellation between steps and rounds instead.
    pub fn activity_options(&self, task_queue: Option<String>) -> ActivityOptions {
        let timeouts = match self.budget {
            Some(budget) => ActivityCloseTimeouts::ScheduleAndStartToClose {
                schedule_to_close: budget,
                start_to_close: START_TO_CLOSE.min(budget),
            },
            None => ActivityCloseTimeouts::StartToClose(START_TO_CLOSE),
        };
        let mut options = ActivityOptions::with_close_timeouts(timeouts)
            .retry_policy(self.policy())
            .cancellation_token(WorkflowCancellationToken::new())
            .summary(self.summary.clone())
            .build();
        options.task_queue = task_queue;
        options
    }

    /// The same round as a local activity.
    pub fn local_activity_options(&self) -> LocalActivityOptions {
        let mut options = LocalActivityOptions::default();
        options.start_to_close_timeout = Some(START_TO_CLOSE);
        // Without one the SDK sets 100 s; a step that must complete has no limit but its
        // attempts, which the retry policy bounds.
        options.schedule_to_close_timeout = Some(self.budget.unwrap_or(Duration::from_secs(3600)));
        options.retry_policy = self.policy();
        options.cancellation_token = Some(WorkflowCancellationToken::new());
        options.summary = Some(self.summary.clone());
        options
    }
}
