//! Running one activity in rounds until it succeeds, fails with its business error, or (a
//! forward step) runs out of time; and what the saga shows meanwhile.
//!
//! See [`crate::Retries`] for the rounds' policy and [`crate::failure`] for how a failed round
//! is read.

use crate::{
    context::SagaContext,
    dispatch,
    failure::{BusinessError, RoundError, RoundFailure, classify},
    options::{Dispatch, Retries, SagaOptions},
    patience::{self, Limits},
    status::Waiting,
};
use std::time::Duration;
use temporalio_common::{
    data_converters::{
        GenericPayloadConverter, RawValue, SerializationContext, SerializationContextData,
        TemporalDeserializable, TemporalSerializable, WorkflowSerializationContext,
    },
    search_attributes::SearchAttributeKey,
};
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityOptions, LocalActivityOptions, WorkflowCancellationToken,
};

/// One round of an activity, as the saga schedules it.
#[derive(Debug, Clone)]
pub struct Round {
    /// 1 for the first round.
    pub number: u32,
    /// Local or regular activity.
    pub dispatch: Dispatch,
    /// What the Web UI's timeline shows for the activity.
    pub summary: Option<String>,
    /// The step's remaining time (forward steps); `None` retries until it succeeds.
    pub budget: Option<Duration>,
    /// The task queue of a regular round; `None` is the workflow's own.
    pub task_queue: Option<String>,
    /// The retry policy of every round.
    pub retries: Retries,
}

/// A round's options, for the SDK.
#[derive(Debug)]
pub enum RoundKind {
    /// A regular activity.
    Remote(ActivityOptions),
    /// A local activity.
    Local(LocalActivityOptions),
}

impl Round {
    /// The round's options as the SDK takes them.
    ///
    /// Each round gets a cancellation token of its own, detached from the workflow's: a local
    /// transaction that has started is allowed to finish, so the saga always knows what it must
    /// compensate. The saga checks for cancellation between steps instead
    /// ([`crate::cancellation`]).
    pub fn kind(&self) -> RoundKind {
        let start_to_close = self.retries.start_to_close;
        let policy = self.retries.policy(self.number);
        match self.dispatch {
            Dispatch::Remote => {
                let timeouts = match self.budget {
                    Some(budget) => ActivityCloseTimeouts::ScheduleAndStartToClose {
                        schedule_to_close: budget,
                        start_to_close: start_to_close.min(budget),
                    },
                    None => ActivityCloseTimeouts::StartToClose(start_to_close),
                };
                let builder = ActivityOptions::with_close_timeouts(timeouts)
                    .retry_policy(policy)
                    .cancellation_token(WorkflowCancellationToken::new());
                let mut options = match &self.summary {
                    Some(summary) => builder.summary(summary.clone()).build(),
                    None => builder.build(),
                };
                options.task_queue = self.task_queue.clone();
                RoundKind::Remote(options)
            }
            Dispatch::Local => {
                let mut options = LocalActivityOptions::default();
                options.start_to_close_timeout = Some(start_to_close);
                // Without one the SDK sets 100 s; an activity that must complete has no limit
                // but its attempts, which the retry policy bounds.
                options.schedule_to_close_timeout =
                    Some(self.budget.unwrap_or(Duration::from_secs(3600)));
                options.retry_policy = policy;
                options.cancellation_token = Some(WorkflowCancellationToken::new());
                options.summary = self.summary.clone();
                RoundKind::Local(options)
            }
        }
    }
}

/// Why an activity stopped without succeeding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Its business error.
    Business(BusinessError),
    /// Its time ran out while infrastructure errors were retried.
    OutOfTime { why: String, last_error: String },
}

/// Runs `activity` in rounds until it succeeds, fails with its business error, or, for a
/// forward step (`limits` set), runs out of time.
pub(crate) async fn call<C, I, O>(
    ctx: &C,
    options: &SagaOptions,
    activity: &str,
    input: &I,
    summary: Option<String>,
    limits: Option<Limits>,
) -> Result<O, Stop>
where
    C: SagaContext,
    I: TemporalSerializable + 'static,
    O: TemporalDeserializable + 'static,
{
    ctx.set_current_details(match &summary {
        Some(summary) => format!("{activity}: {summary}"),
        None => activity.to_owned(),
    });
    ctx.with_saga(|s| s.status.current = Some(activity.to_owned()));
    let mut number = 0;
    loop {
        number += 1;
        let budget = limits.map(|l| l.budget(ctx));
        // The first round runs the way the saga's dispatch says; later ones are regular
        // activities, whose long retries the server keeps.
        let dispatch = if number == 1 {
            dispatch::next(ctx, options.dispatch, options.legacy_dispatch)
        } else {
            Dispatch::Remote
        };
        ctx.with_saga(|s| s.last_round_remote = dispatch == Dispatch::Remote);
        let round = Round {
            number,
            dispatch,
            summary: summary.clone(),
            budget,
            task_queue: match dispatch {
                Dispatch::Remote => options.task_queue_of(activity),
                Dispatch::Local => None,
            },
            retries: options.retries,
        };
        let outcome = match encode(ctx, input) {
            Ok(raw) => match ctx.run_round(activity, raw, &round).await {
                Ok(output) => decode(ctx, output),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let failure = match outcome {
            Ok(output) => {
                stop_waiting(ctx, options);
                return Ok(output);
            }
            Err(error) => classify(&error, options.not_here_error_type),
        };
        match failure {
            RoundFailure::NotHere => {}
            RoundFailure::Business(error) => {
                stop_waiting(ctx, options);
                return Err(Stop::Business(error));
            }
            RoundFailure::OutOfTime(last_error) if limits.is_some() => {
                stop_waiting(ctx, options);
                let why = limits.map(|l| l.why_out_of_time(options.patience));
                return Err(Stop::OutOfTime {
                    why: why.unwrap_or_default(),
                    last_error,
                });
            }
            // A compensation has no time limit, so "out of time" cannot reach it; were it to,
            // it is one more fault to wait out.
            RoundFailure::OutOfTime(last_error) | RoundFailure::Infrastructure(last_error) => {
                let attempts = number * options.retries.attempts_per_round;
                wait_on_infrastructure(ctx, options, activity, attempts, last_error);
            }
        }
    }
}

/// Runs an activity that has no time limit (a compensation, a notification) until it succeeds:
/// only its business error ends it.
pub(crate) async fn call_until_done<C, I, O>(
    ctx: &C,
    options: &SagaOptions,
    activity: &str,
    input: &I,
    summary: Option<String>,
) -> Result<O, BusinessError>
where
    C: SagaContext,
    I: TemporalSerializable + 'static,
    O: TemporalDeserializable + 'static,
{
    call(ctx, options, activity, input, summary, None)
        .await
        .map_err(|stop| match stop {
            Stop::Business(error) => error,
            // Without limits `call` waits out every timeout as one more fault; kept for the
            // type's sake.
            Stop::OutOfTime { last_error, .. } => BusinessError {
                error_type: None,
                message: last_error,
            },
        })
}

fn serialization_context() -> SerializationContextData {
    SerializationContextData::Workflow(WorkflowSerializationContext::new())
}

/// The input as the SDK's typed call would send it: the workflow's payload converter.
fn encode<I: TemporalSerializable + 'static>(
    ctx: &impl SagaContext,
    input: &I,
) -> Result<RawValue, RoundError> {
    let converter = ctx.payload_converter();
    let data = serialization_context();
    converter
        .to_payloads(&SerializationContext::new(&data, converter), input)
        .map(RawValue::new)
        .map_err(|e| RoundError::conversion(format!("{e:?}")))
}

fn decode<O: TemporalDeserializable + 'static>(
    ctx: &impl SagaContext,
    output: RawValue,
) -> Result<O, RoundError> {
    let converter = ctx.payload_converter();
    let data = serialization_context();
    converter
        .from_payloads(
            &SerializationContext::new(&data, converter),
            output.payloads,
        )
        .map_err(|e| RoundError::conversion(format!("{e:?}")))
}

/// Shows the saga waiting on its infrastructure: in its status, the waiting search attribute
/// and the Web UI's current details.
fn wait_on_infrastructure(
    ctx: &impl SagaContext,
    options: &SagaOptions,
    activity: &str,
    attempts: u32,
    last_error: String,
) {
    let since = ctx.read_saga(|s| s.status.waiting.as_ref().map(|w| w.since.clone()));
    if since.is_none()
        && let Some(name) = options.search_attributes.waiting
    {
        ctx.upsert_search_attributes(vec![
            SearchAttributeKey::<String>::keyword(name).value_set(activity.to_owned()),
        ]);
    }
    let since = since.unwrap_or_else(|| patience::rfc3339(patience::now(ctx)));
    ctx.set_current_details(format!(
        "{activity}: waiting on infrastructure since {since}, {attempts} attempts; last error: \
         {last_error}"
    ));
    ctx.with_saga(|s| {
        s.status.waiting = Some(Waiting {
            activity: activity.to_owned(),
            since,
            attempts,
            last_error,
        })
    });
}

fn stop_waiting(ctx: &impl SagaContext, options: &SagaOptions) {
    if ctx.read_saga(|s| s.status.waiting.is_some()) {
        if let Some(name) = options.search_attributes.waiting {
            ctx.upsert_search_attributes(vec![waiting_cleared(name)]);
        }
        ctx.with_saga(|s| s.status.waiting = None);
    }
}

/// Clears a keyword attribute. (The SDK's `value_unset()` sends a payload without an encoding,
/// which the server refuses as a Keyword value; an empty list is how a keyword is cleared.)
pub fn waiting_cleared(
    name: &'static str,
) -> temporalio_common::search_attributes::SearchAttributeUpdate {
    SearchAttributeKey::<Vec<String>>::keyword_list(name).value_set(Vec::new())
}
