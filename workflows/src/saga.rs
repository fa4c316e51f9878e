use crate::{
    config::{Dispatch, SagaConfig},
    dispatch,
    failure::{RoundFailure, classify},
    options::{ATTEMPTS_PER_ROUND, Round},
    patience::{self, Limits},
    visibility,
};
use saga_protos::{
    Notification, Order,
    contracts::{
        Notify, ProcessOrder, ProcessPayment, ProcessRefund, ReleaseInventory, ReserveInventory,
        UpdateOrderStatus,
    },
    parse_order,
    scenario::{INVALID_ORDER, SAGA_FAILED},
};
use serde::{Deserialize, Serialize};
use temporalio_common::{ActivityDefinition, data_converters::RawValue};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ApplicationFailure, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// The forward steps of the saga, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    ProcessOrder,
    ProcessPayment,
    ReserveInventory,
}

impl Step {
    const FORWARD: [Step; 3] = [
        Step::ProcessOrder,
        Step::ProcessPayment,
        Step::ReserveInventory,
    ];

    /// The step's own compensation.
    fn compensation(self) -> Compensation {
        match self {
            Step::ProcessOrder => Compensation::UpdateOrderStatus,
            Step::ProcessPayment => Compensation::ProcessRefund,
            Step::ReserveInventory => Compensation::ReleaseInventory,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Compensation {
    UpdateOrderStatus,
    ProcessRefund,
    ReleaseInventory,
}

/// What the saga has done so far; the workflow's `state` query returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SagaState {
    /// The activity running now, or the last one that ran.
    pub current: Option<String>,
    /// The order as the last successful activity returned it.
    pub order: Option<Order>,
    /// The error that started the compensation, or that stopped it.
    pub last_error: Option<String>,
    /// The compensations that have completed, in the order they ran.
    pub compensations: Vec<String>,
    /// `running` or `compensating` while the saga runs; once it has ended, its outcome (the
    /// `SagaOutcome` search attribute): `completed`, `compensated`, `compensation-failed`,
    /// `cancelled`, `invalid` or `failed`.
    pub phase: String,
    /// Set while the current step keeps failing for infrastructure reasons (its database down,
    /// locked, unreachable); cleared when the step gets through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

/// A step that waits on infrastructure rather than failing the order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The activity that keeps failing.
    pub activity: String,
    /// When its first round of attempts ran out (RFC 3339, workflow time).
    pub since: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: String,
}

/// The order saga. Its input is the order JSON; it returns the enriched order.
#[workflow]
#[derive(Default)]
pub struct OrderSaga {
    config: SagaConfig,
    state: SagaState,
    pub(crate) dispatch: dispatch::Decisions,
    /// Whether the last round of the last step ran as a regular activity.
    last_round_remote: bool,
}

impl OrderSaga {
    /// An instance that dispatches its steps as `config` says (see [`SagaConfig`]).
    pub fn with_config(config: SagaConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    pub(crate) fn config(&self) -> &SagaConfig {
        &self.config
    }
}

#[workflow_methods]
impl OrderSaga {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: RawValue) -> WorkflowResult<Order> {
        let result = run_saga(ctx, input).await;
        // Recorded in the workflow task that closes the saga, so a list query by outcome never
        // sees a closed saga still marked `running`.
        let outcome = ctx.state(|w| visibility::outcome_at_close(&w.state.phase));
        progress(ctx, |s| s.phase = outcome.to_owned());
        ctx.upsert_search_attributes([visibility::SAGA_OUTCOME.value_set(outcome.to_owned())]);
        ctx.set_current_details(format!("ended: {outcome}"));
        result
    }

    /// The saga's progress: current step, order, last error, compensations run, and what it
    /// waits on.
    #[query]
    pub fn state(&self, _ctx: &WorkflowContextView) -> SagaState {
        self.state.clone()
    }
}

async fn run_saga(ctx: &WorkflowContext<OrderSaga>, input: RawValue) -> WorkflowResult<Order> {
    // The input is parsed here rather than by the SDK so that a malformed order fails the
    // workflow with an error naming the field, instead of failing workflow tasks forever.
    let order = match parse_input(&input) {
        Ok(order) => order,
        Err(reason) => {
            progress(ctx, |s| {
                s.last_error = Some(reason.clone());
                s.phase = visibility::INVALID.into();
            });
            return Err(ApplicationFailure::builder(reason)
                .type_name(INVALID_ORDER.to_owned())
                .non_retryable(true)
                .build()
                .into());
        }
    };
    visibility::record_start(ctx, &order.order_id);
    progress(ctx, |s| {
        s.order = Some(order.clone());
        s.phase = visibility::RUNNING.into();
    });

    let mut order = order;
    let mut done: Vec<Step> = Vec::new();
    for (index, step) in Step::FORWARD.into_iter().enumerate() {
        let mut cancelled = false;
        let reason = if patience::past_deadline(ctx, index) {
            let deadline = ctx.state(|w| w.config.patience.deadline);
            format!(
                "the saga's deadline ({}) passed before {step:?}",
                patience::humanize(deadline)
            )
        } else {
            match run_step(ctx, step, &order).await {
                Ok(next) => {
                    order = next;
                    done.push(step);
                    progress(ctx, |s| s.order = Some(order.clone()));
                    if !cancellation_settled(ctx) {
                        continue;
                    }
                    cancelled = true;
                    "workflow cancelled".to_owned()
                }
                Err(reason) => {
                    // The failed step may have committed before it failed: undo it first.
                    done.push(step);
                    cancelled = cancellation_settled(ctx);
                    reason
                }
            }
        };
        let order = compensate(ctx, order, done, &reason).await?;
        // Cancellation never interrupts a step (its activity has a detached token), so a
        // cancel request that `cancellation_settled` lets through lands in one of three places,
        // all ending the same way once the compensations have run:
        // - the step in progress succeeds: it is compensated with the earlier ones;
        // - the step fails with its business error at the same time: the failure is
        //   compensated as usual, but the caller asked for a cancellation and the saga is
        //   undone, so the workflow ends Cancelled rather than SagaFailed (the cause stays
        //   in the `state` query's `last_error`);
        // - a compensation fails: `compensate` has already returned SagaFailed above and
        //   sent the failure notification, because someone must look at that order.
        if cancelled {
            progress(ctx, |s| s.phase = visibility::CANCELLED.into());
            return Err(WorkflowTermination::cancelled());
        }
        return Err(saga_failed(format!(
            "order {} compensated after {reason}",
            order.order_id
        )));
    }

    notify(ctx, &order, None).await?;
    progress(ctx, |s| s.phase = visibility::COMPLETED.into());
    Ok(order)
}

/// Whether to act on a cancellation request now: only after a step whose last round ran as a
/// regular activity.
///
/// A local activity runs before the history records it. When a cancellation request arrives
/// while a workflow task runs local steps, the server refuses that task's completion and the
/// next worker runs the saga again from the history, where the request now precedes the steps
/// the refused task ran: acting on it there would skip steps that did commit (a reservation, a
/// success notification) and leave them uncompensated. A regular activity's result comes from
/// the history, so every run sees the request at the same point. So an all-in-one saga, whose
/// steps take milliseconds, finishes once it has started, as if the request came after its last
/// step; a saga waiting on its infrastructure (its later rounds are regular activities) stops
/// at the end of the current round and compensates.
fn cancellation_settled(ctx: &WorkflowContext<OrderSaga>) -> bool {
    ctx.cancellation_token().is_cancelled() && ctx.state(|w| w.last_round_remote)
}

fn parse_input(input: &RawValue) -> Result<Order, String> {
    let payload = match input.payloads.as_slice() {
        [one] => one,
        [] => return Err("invalid order: order: no input; pass the order JSON".into()),
        _ => return Err("invalid order: order: pass the order JSON as the only argument".into()),
    };
    match payload.metadata.get("encoding").map(Vec::as_slice) {
        Some(b"json/plain") => parse_order(&payload.data).map_err(|e| e.to_string()),
        Some(b"binary/null") | None if payload.data.is_empty() => {
            Err("invalid order: order: no input; pass the order JSON".into())
        }
        other => Err(format!(
            "invalid order: order: expected a JSON payload (encoding json/plain), got encoding {}",
            other.map_or("none".into(), |e| String::from_utf8_lossy(e).into_owned())
        )),
    }
}

/// A forward step: retried through infrastructure errors until its time runs out.
async fn run_step(
    ctx: &WorkflowContext<OrderSaga>,
    step: Step,
    order: &Order,
) -> Result<Order, String> {
    let limits = Some(Limits::for_step(ctx));
    let (input, summary) = (order.clone(), step_summary(order));
    let outcome = match step {
        Step::ProcessOrder => call(ctx, ProcessOrder, input, summary, limits).await,
        Step::ProcessPayment => call(ctx, ProcessPayment, input, summary, limits).await,
        Step::ReserveInventory => call(ctx, ReserveInventory, input, summary, limits).await,
    };
    outcome.map_err(|stop| stop.reason(ctx, &format!("{step:?}")))
}

/// A compensation: retried through infrastructure errors until it succeeds.
async fn run_compensation(
    ctx: &WorkflowContext<OrderSaga>,
    compensation: Compensation,
    order: &Order,
) -> Result<Order, String> {
    let (input, summary) = (order.clone(), step_summary(order));
    let outcome = match compensation {
        Compensation::UpdateOrderStatus => call(ctx, UpdateOrderStatus, input, summary, None).await,
        Compensation::ProcessRefund => call(ctx, ProcessRefund, input, summary, None).await,
        Compensation::ReleaseInventory => call(ctx, ReleaseInventory, input, summary, None).await,
    };
    outcome.map_err(|stop| stop.reason(ctx, &format!("{compensation:?}")))
}

/// Why a step stopped without succeeding.
enum Stop {
    /// Its business error, e.g. "ErrProcessPayment: …".
    Business(String),
    /// Its time ran out while infrastructure errors were retried.
    OutOfTime { limits: Limits, last_error: String },
}

impl Stop {
    fn reason(self, ctx: &WorkflowContext<OrderSaga>, activity: &str) -> String {
        match self {
            Stop::Business(reason) => reason,
            Stop::OutOfTime { limits, last_error } => {
                let patience = ctx.state(|w| w.config.patience);
                format!(
                    "{activity} gave up waiting on its infrastructure: {}; last error: {last_error}",
                    limits.why_out_of_time(patience)
                )
            }
        }
    }
}

/// Runs one activity in rounds (see [`crate::options`]) until it succeeds, fails with its
/// business error, or, for a forward step (`limits` set), runs out of time.
async fn call<A>(
    ctx: &WorkflowContext<OrderSaga>,
    activity: A,
    input: A::Input,
    summary: String,
    limits: Option<Limits>,
) -> Result<A::Output, Stop>
where
    A: ActivityDefinition + Copy,
    A::Input: Clone,
{
    let name = activity.name().to_owned();
    ctx.set_current_details(format!("{name}: {summary}"));
    progress(ctx, |s| s.current = Some(name.clone()));
    let mut number = 0;
    loop {
        number += 1;
        let round = Round {
            number,
            summary: summary.clone(),
            budget: limits.map(|l| l.budget(ctx)),
        };
        // The first round runs the way the saga's dispatch says; later ones are regular
        // activities, whose long retries the server keeps (see `options`).
        let dispatch = if number == 1 {
            dispatch::next_step(ctx)
        } else {
            Dispatch::Remote
        };
        ctx.state_mut(|w| w.last_round_remote = dispatch == Dispatch::Remote);
        let outcome = match dispatch {
            Dispatch::Remote => {
                let queue = ctx.state(|w| w.config().routing.queue_of(&name));
                ctx.execute_activity(activity, input.clone(), round.activity_options(queue))
                    .await
            }
            Dispatch::Local => {
                ctx.execute_local_activity(activity, input.clone(), round.local_activity_options())
                    .await
            }
        };
        let failure = match outcome {
            Ok(output) => {
                stop_waiting(ctx);
                return Ok(output);
            }
            Err(error) => classify(&error),
        };
        match failure {
            RoundFailure::NotHere => {}
            RoundFailure::Business(reason) => {
                stop_waiting(ctx);
                return Err(Stop::Business(reason));
            }
            RoundFailure::OutOfTime(last_error) => {
                stop_waiting(ctx);
                return Err(Stop::OutOfTime {
                    limits: limits.expect("only a step with limits runs out of time"),
                    last_error,
                });
            }
            RoundFailure::Infrastructure(last_error) => {
                wait_on_infrastructure(ctx, &name, number * ATTEMPTS_PER_ROUND, last_error);
            }
        }
    }
}

/// Shows the saga waiting on its infrastructure: in the `state` query, the `SagaWaiting` search
/// attribute and the Web UI's current details.
fn wait_on_infrastructure(
    ctx: &WorkflowContext<OrderSaga>,
    activity: &str,
    attempts: u32,
    last_error: String,
) {
    let first = ctx.state(|w| w.state.waiting.is_none());
    if first {
        ctx.upsert_search_attributes([visibility::SAGA_WAITING.value_set(activity.to_owned())]);
    }
    let since = ctx
        .state(|w| w.state.waiting.as_ref().map(|w| w.since.clone()))
        .unwrap_or_else(|| rfc3339(ctx.workflow_time()));
    ctx.set_current_details(format!(
        "{activity}: waiting on infrastructure since {since}, {attempts} attempts; last error: \
         {last_error}"
    ));
    progress(ctx, |s| {
        s.waiting = Some(Waiting {
            activity: activity.to_owned(),
            since,
            attempts,
            last_error,
        })
    });
}

fn stop_waiting(ctx: &WorkflowContext<OrderSaga>) {
    if ctx.state(|w| w.state.waiting.is_some()) {
        ctx.upsert_search_attributes([visibility::saga_waiting_cleared()]);
        progress(ctx, |s| s.waiting = None);
    }
}

/// Runs the compensations of `done` in reverse and returns the order they leave.
///
/// When a compensation fails, publishes the failure and ends the saga with `SagaFailed`: nothing
/// more can be undone safely without a person looking at it.
async fn compensate(
    ctx: &WorkflowContext<OrderSaga>,
    mut order: Order,
    done: Vec<Step>,
    reason: &str,
) -> WorkflowResult<Order> {
    progress(ctx, |s| {
        s.last_error = Some(reason.to_owned());
        s.phase = visibility::COMPENSATING.into();
    });
    for step in done.into_iter().rev() {
        let compensation = step.compensation();
        match run_compensation(ctx, compensation, &order).await {
            Ok(next) => {
                order = next;
                progress(ctx, |s| {
                    s.order = Some(order.clone());
                    s.compensations.push(format!("{compensation:?}"));
                });
            }
            Err(error) => {
                progress(ctx, |s| {
                    s.last_error = Some(error.clone());
                    s.phase = visibility::COMPENSATION_FAILED.into();
                });
                notify(ctx, &order, Some(error.clone())).await?;
                return Err(saga_failed(format!(
                    "compensation {compensation:?} failed after {reason}: {error}"
                )));
            }
        }
    }
    progress(ctx, |s| s.phase = visibility::COMPENSATED.into());
    Ok(order)
}

/// Publishes the saga's outcome; retried through infrastructure errors until it is written.
async fn notify(
    ctx: &WorkflowContext<OrderSaga>,
    order: &Order,
    error: Option<String>,
) -> WorkflowResult<()> {
    let status = if error.is_some() { "failed" } else { "success" };
    let notification = Notification {
        order_id: order.order_id.clone(),
        status: status.into(),
        error,
        // Webhook deliveries carry a summary of it (the notifications service has no order
        // data of its own).
        order: Some(order.clone()),
    };
    let summary = format!("order {}: {status}", order.order_id);
    call(ctx, Notify, notification, summary, None)
        .await
        .map_err(|stop| match stop {
            Stop::Business(reason)
            | Stop::OutOfTime {
                last_error: reason, ..
            } => ApplicationFailure::builder(format!("Notify failed: {reason}"))
                .non_retryable(true)
                .build()
                .into(),
        })
}

/// Records progress for the `state` query.
fn progress(ctx: &WorkflowContext<OrderSaga>, update: impl FnOnce(&mut SagaState)) {
    ctx.state_mut(|w| update(&mut w.state));
}

fn saga_failed(message: String) -> WorkflowTermination {
    ApplicationFailure::builder(message)
        .type_name(SAGA_FAILED.to_owned())
        .non_retryable(true)
        .build()
        .into()
}

/// What the Web UI's timeline shows for a step: which order, which amount.
fn step_summary(order: &Order) -> String {
    let cents = order.total_cents();
    format!(
        "order {} ({} items, {}.{:02})",
        order.order_id,
        order.items.len(),
        cents / 100,
        cents % 100
    )
}

/// Workflow time as RFC 3339 (UTC, seconds): deterministic, it is the workflow task's time.
fn rfc3339(time: Option<std::time::SystemTime>) -> String {
    let time = time.unwrap_or(std::time::UNIX_EPOCH);
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_time_reads_as_rfc3339() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_739_696);
        assert_eq!(rfc3339(Some(t)), "2026-11-27T00:34:56Z");
        assert_eq!(rfc3339(None), "1970-01-01T00:00:00Z");
    }
}
