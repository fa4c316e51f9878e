//! The order saga on the saga library: its steps and their compensations, its notification,
//! its `state` query. How the steps run, retry, wait, compensate and record their dispatch is
//! the library's ([`temporal_saga`]).

use crate::{config::SagaConfig, visibility};
use saga_protos::{
    Notification, Order,
    contracts::{
        Json, Notify, ProcessOrder, ProcessPayment, ProcessRefund, ReleaseInventory,
        ReserveInventory, UpdateOrderStatus,
    },
    parse_order,
    scenario::{INVALID_ORDER, SAGA_FAILED},
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
pub use temporal_saga::Waiting;
use temporal_saga::{Saga, SagaError, SagaRuntime, SagaWorkflow, Step};
use temporalio_common::data_converters::RawValue;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ApplicationFailure, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// The order saga's definition: each step passes the order on, and each is undone by its
/// compensation (newest first, stopping at the first that fails). The order crosses to and from
/// each step as [`Json`]: the SDK's payloads, read and written straight.
fn definition(config: &SagaConfig) -> Saga<Json<Order>> {
    Saga::new()
        .step(Step::new(ProcessOrder).compensate_with(UpdateOrderStatus))
        .step(Step::new(ProcessPayment).compensate_with(ProcessRefund))
        .step(Step::new(ReserveInventory).compensate_with(ReleaseInventory))
        .summary(step_summary)
        .options(config.saga_options())
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

impl From<&SagaRuntime<Json<Order>>> for SagaState {
    fn from(runtime: &SagaRuntime<Json<Order>>) -> Self {
        let status = runtime.status();
        Self {
            current: status.current.clone(),
            order: runtime.value().map(|order| order.0.clone()),
            last_error: status.last_error.clone(),
            compensations: status.compensations.clone(),
            phase: status.phase.as_str().to_owned(),
            waiting: status.waiting.clone(),
        }
    }
}

/// The order saga. Its input is the order JSON; it returns the enriched order.
#[workflow]
pub struct OrderSaga {
    definition: Arc<Saga<Json<Order>>>,
    runtime: SagaRuntime<Json<Order>>,
}

impl Default for OrderSaga {
    fn default() -> Self {
        Self::with_config(SagaConfig::default())
    }
}

impl SagaWorkflow for OrderSaga {
    type Value = Json<Order>;

    fn saga(&self) -> &SagaRuntime<Json<Order>> {
        &self.runtime
    }

    fn saga_mut(&mut self) -> &mut SagaRuntime<Json<Order>> {
        &mut self.runtime
    }
}

impl OrderSaga {
    /// An instance that dispatches its steps as `config` says (see [`SagaConfig`]).
    pub fn with_config(config: SagaConfig) -> Self {
        Self::with_definition(Arc::new(definition(&config)))
    }

    /// A factory of instances that share one definition built from `config`: what a worker
    /// registers, so a saga's start builds nothing but its state.
    pub fn factory(config: &SagaConfig) -> impl Fn() -> Self + Send + Sync + 'static {
        let definition = Arc::new(definition(config));
        move || Self::with_definition(definition.clone())
    }

    fn with_definition(definition: Arc<Saga<Json<Order>>>) -> Self {
        Self {
            definition,
            runtime: SagaRuntime::default(),
        }
    }
}

#[workflow_methods]
impl OrderSaga {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: RawValue) -> WorkflowResult<Order> {
        let saga = ctx.state(|w| w.definition.clone());
        let result = run_saga(ctx, &saga, input).await;
        // Recorded in the workflow task that closes the saga, so a list query by outcome never
        // sees a closed saga still marked `running`.
        saga.close(ctx);
        result
    }

    /// The saga's progress: current step, order, last error, compensations run, and what it
    /// waits on.
    #[query]
    pub fn state(&self, _ctx: &WorkflowContextView) -> SagaState {
        SagaState::from(&self.runtime)
    }
}

async fn run_saga(
    ctx: &WorkflowContext<OrderSaga>,
    saga: &Saga<Json<Order>>,
    input: RawValue,
) -> WorkflowResult<Order> {
    // The input is parsed here rather than by the SDK so that a malformed order fails the
    // workflow with an error naming the field, instead of failing workflow tasks forever.
    let order = match parse_input(&input) {
        Ok(order) => order,
        Err(reason) => {
            saga.reject(ctx, &reason);
            return Err(ApplicationFailure::builder(reason)
                .type_name(INVALID_ORDER.to_owned())
                .non_retryable(true)
                .build()
                .into());
        }
    };
    visibility::record_start(ctx, &order.order_id);
    match saga.run_and_notify(ctx, Json(order), Notify, notice).await {
        Ok(Json(order)) => Ok(order),
        // The saga is undone; a client that asked for it gets Cancelled, whatever else failed
        // meanwhile (the cause stays in the `state` query's `last_error`).
        Err(SagaError::Compensated {
            cancelled: true, ..
        }) => Err(WorkflowTermination::cancelled()),
        Err(SagaError::Compensated { value, failure, .. }) => Err(saga_failed(format!(
            "order {} compensated after {failure}",
            value.order_id
        ))),
        // The failure notification has gone out: someone must look at this order.
        Err(SagaError::CompensationFailed {
            failure, failed, ..
        }) => Err(saga_failed(format!(
            "compensation {} failed after {failure}: {}",
            failed[0].compensation, failed[0].error
        ))),
        Err(SagaError::NotificationFailed { activity, error }) => Err(ApplicationFailure::builder(
            format!("{activity} failed: {error}"),
        )
        .non_retryable(true)
        .build()
        .into()),
    }
}

/// The notification of the saga's outcome: success, or the compensation that failed. Webhook
/// deliveries carry a summary of the order (the notifications service has no order data of its
/// own).
fn notice(order: &Json<Order>, error: Option<String>) -> (Json<Notification>, String) {
    let status = if error.is_some() { "failed" } else { "success" };
    let summary = format!("order {}: {status}", order.order_id);
    let notification = Notification {
        order_id: order.order_id.clone(),
        status: status.into(),
        error,
        order: Some(order.0.clone()),
    };
    (Json(notification), summary)
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

fn saga_failed(message: String) -> WorkflowTermination {
    ApplicationFailure::builder(message)
        .type_name(SAGA_FAILED.to_owned())
        .non_retryable(true)
        .build()
        .into()
}

/// What the Web UI's timeline shows for a step: which order, which amount.
fn step_summary(order: &Json<Order>) -> String {
    let cents = order.total_cents();
    format!(
        "order {} ({} items, {}.{:02})",
        order.order_id,
        order.items.len(),
        cents / 100,
        cents % 100
    )
}
