use crate::{
    config::{Dispatch, SagaConfig},
    options::{activity_options, local_activity_options},
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
use temporalio_common::{
    ActivityDefinition,
    data_converters::RawValue,
    error::{ActivityExecutionError, IncomingError},
};
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
}

/// The order saga. Its input is the order JSON; it returns the enriched order.
#[workflow]
#[derive(Default)]
pub struct OrderSaga {
    config: SagaConfig,
    state: SagaState,
}

impl OrderSaga {
    /// An instance that dispatches its steps as `config` says (see [`SagaConfig`]).
    pub fn with_config(config: SagaConfig) -> Self {
        Self {
            config,
            state: SagaState::default(),
        }
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

    /// The saga's progress: current step, order, last error, compensations run.
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
    ctx.upsert_search_attributes([
        visibility::ORDER_ID.value_set(order.order_id.clone()),
        visibility::SAGA_OUTCOME.value_set(visibility::RUNNING.to_owned()),
    ]);
    progress(ctx, |s| {
        s.order = Some(order.clone());
        s.phase = visibility::RUNNING.into();
    });

    // Cancelled before anything was done: nothing to undo.
    if ctx.cancellation_token().is_cancelled() {
        progress(ctx, |s| s.phase = visibility::CANCELLED.into());
        return Err(WorkflowTermination::cancelled());
    }
    let mut order = order;
    let mut done: Vec<Step> = Vec::new();
    for step in [
        Step::ProcessOrder,
        Step::ProcessPayment,
        Step::ReserveInventory,
    ] {
        let reason = match run_step(ctx, step, &order).await {
            Ok(next) => {
                order = next;
                done.push(step);
                progress(ctx, |s| s.order = Some(order.clone()));
                if !ctx.cancellation_token().is_cancelled() {
                    continue;
                }
                "workflow cancelled".to_owned()
            }
            Err(error) => {
                // The failed step may have committed before it failed: undo it first.
                done.push(step);
                describe(&error)
            }
        };
        let order = compensate(ctx, order, done, &reason).await?;
        // Cancellation never interrupts a step (its activity has a detached token), so a
        // cancel request lands in one of three places, all ending the same way once the
        // compensations have run:
        // - the step in progress succeeds: it is compensated with the earlier ones;
        // - the step fails with its business error at the same time: the failure is
        //   compensated as usual, but the caller asked for a cancellation and the saga is
        //   undone, so the workflow ends Cancelled rather than SagaFailed (the cause stays
        //   in the `state` query's `last_error`);
        // - a compensation fails: `compensate` has already returned SagaFailed above and
        //   sent the failure notification, because someone must look at that order.
        if ctx.cancellation_token().is_cancelled() {
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

async fn run_step(
    ctx: &WorkflowContext<OrderSaga>,
    step: Step,
    order: &Order,
) -> Result<Order, ActivityExecutionError> {
    let summary = step_summary(order);
    let input = order.clone();
    match step {
        Step::ProcessOrder => call(ctx, ProcessOrder, input, summary).await,
        Step::ProcessPayment => call(ctx, ProcessPayment, input, summary).await,
        Step::ReserveInventory => call(ctx, ReserveInventory, input, summary).await,
    }
}

async fn run_compensation(
    ctx: &WorkflowContext<OrderSaga>,
    compensation: Compensation,
    order: &Order,
) -> Result<Order, ActivityExecutionError> {
    let summary = step_summary(order);
    let input = order.clone();
    match compensation {
        Compensation::UpdateOrderStatus => call(ctx, UpdateOrderStatus, input, summary).await,
        Compensation::ProcessRefund => call(ctx, ProcessRefund, input, summary).await,
        Compensation::ReleaseInventory => call(ctx, ReleaseInventory, input, summary).await,
    }
}

async fn call<A>(
    ctx: &WorkflowContext<OrderSaga>,
    activity: A,
    input: A::Input,
    summary: String,
) -> Result<A::Output, ActivityExecutionError>
where
    A: ActivityDefinition,
{
    let name = activity.name().to_owned();
    let (dispatch, task_queue) =
        ctx.state(|w| (w.config.dispatch, w.config.routing.queue_of(&name)));
    ctx.set_current_details(format!("{name}: {summary}"));
    progress(ctx, |s| s.current = Some(name));
    match dispatch {
        Dispatch::Remote => {
            ctx.execute_activity(activity, input, activity_options(summary, task_queue))
                .await
        }
        Dispatch::Local => {
            ctx.execute_local_activity(activity, input, local_activity_options(summary))
                .await
        }
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
                let error = describe(&error);
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

async fn notify(
    ctx: &WorkflowContext<OrderSaga>,
    order: &Order,
    error: Option<String>,
) -> Result<(), ActivityExecutionError> {
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
    call(ctx, Notify, notification, summary).await
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

/// "ErrProcessPayment: payment failed for order …" from an activity's failure.
fn describe(error: &ActivityExecutionError) -> String {
    match error.cause() {
        Some(IncomingError::Application(app)) => match app.type_name() {
            Some(kind) => format!("{kind}: {}", app.source_error()),
            None => app.source_error().to_string(),
        },
        Some(other) => other.failure().message.clone(),
        None => error.to_string(),
    }
}
