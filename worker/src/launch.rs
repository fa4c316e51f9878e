//! Starting sagas and waiting for them, for the CLI, the benchmarks and the tests.

use crate::{
    config::WORKFLOW_TYPE,
    history::{Closed, SagaHistory},
};
use anyhow::Context as _;
use saga_protos::Order;
use saga_workflows::visibility::{ORDER_ID, RUNNING, SAGA_OUTCOME};
use saga_workflows::{DISPATCH_MEMO, Dispatch, OrderSaga};
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_common::{
    MemoValues,
    data_converters::{PayloadConverter, RawValue},
    protos::temporal::api::enums::v1::EventType,
    search_attributes::SearchAttributes,
};

/// The workflow id `saga start` gives an order's saga.
pub fn workflow_id(order_id: &str) -> String {
    format!("order-{order_id}")
}

/// A started saga.
#[derive(Debug, Clone)]
pub struct Started {
    pub workflow_id: String,
    pub run_id: String,
}

/// Starts an `OrderSaga` for `order` on `task_queue` under `workflow_id`, naming no dispatch:
/// the worker that runs its first step records its choice in the history.
pub async fn start(
    client: &Client,
    task_queue: &str,
    workflow_id: &str,
    order: &Order,
) -> anyhow::Result<Started> {
    start_named(client, task_queue, workflow_id, order, None).await
}

/// As [`start`], naming in the start request how the deployment's workers run the steps, when
/// `dispatch` is given ([`name_dispatch`]).
pub async fn start_named(
    client: &Client,
    task_queue: &str,
    workflow_id: &str,
    order: &Order,
    dispatch: Option<Dispatch>,
) -> anyhow::Result<Started> {
    let encrypted = crate::encryption::encrypts(client).await;
    let (input, mut options) = start_request(encrypted, task_queue, workflow_id, order);
    if let Some(dispatch) = dispatch {
        name_dispatch(&mut options, dispatch);
    }
    let handle = client
        .start_workflow(OrderSaga::run, input, options)
        .await
        .with_context(|| format!("starting {WORKFLOW_TYPE} {workflow_id}"))?;
    Ok(Started {
        workflow_id: workflow_id.to_owned(),
        run_id: handle.run_id().unwrap_or_default().to_owned(),
    })
}

/// What every starter of a saga sends: the order as the only argument and these options.
///
/// No execution timeout: the saga enforces its own deadline, and a timeout would cut its
/// compensations off. The search attributes are set in the start request, which saves the
/// workflow an update of them. `encrypted` is whether the client that sends it encrypts
/// ([`crate::encryption::encrypts`]), which a long-lived starter works out once.
pub fn start_request(
    encrypted: bool,
    task_queue: &str,
    workflow_id: &str,
    order: &Order,
) -> (RawValue, WorkflowStartOptions) {
    let input = RawValue::from_value(order, &PayloadConverter::serde_json());
    // The SDK sends the Web UI's summary and details as they are, past any codec: with
    // encryption on they carry only what the workflow id shows anyway.
    let (summary, details) = if encrypted {
        describe_redacted(order)
    } else {
        describe(order)
    };
    let options = WorkflowStartOptions::new(task_queue, workflow_id)
        .search_attributes(initial_search_attributes(&order.order_id))
        .static_summary(summary)
        .static_details(details)
        .build();
    (input, options)
}

/// Names in the start request's memo ([`DISPATCH_MEMO`]; the only memo this project's starters
/// send, so it replaces any) how the saga's first step runs, so that the start event records
/// the choice: a worker that runs the steps that way then needs no patch marker for it, nor the
/// `TemporalChangeVersion` upsert the SDK adds to a marker (a visibility write: without it 1 to
/// 3.5 % more sagas a second through a dev server, docs/performance.md). A worker that prefers
/// the other way records a change at the first step instead, which costs what an unnamed start
/// costs; so a wrong name is never dearer than none. For starters that know the deployment:
/// `saga start --dispatch`, the intake (the worker itself), `saga-bench --dispatch`. Any client
/// can do the same: `temporal workflow start --memo 'SagaDispatch="local"'`.
pub fn name_dispatch(options: &mut WorkflowStartOptions, dispatch: Dispatch) {
    let mut memo = MemoValues::new();
    memo.insert(DISPATCH_MEMO, dispatch.as_str().to_owned());
    options.memo = Some(memo);
}

/// The Web UI page of a workflow.
pub fn ui_link(workflow_id: &str, run_id: &str) -> String {
    let base = std::env::var("SAGA_UI_URL").unwrap_or_else(|_| "http://localhost:8233".into());
    let namespace = std::env::var("TEMPORAL_NAMESPACE").unwrap_or_else(|_| "default".into());
    format!(
        "{}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history",
        base.trim_end_matches('/')
    )
}

/// `OrderId` and `SagaOutcome=running`, as the workflow would set them.
pub fn initial_search_attributes(order_id: &str) -> SearchAttributes {
    SearchAttributes::new([
        ORDER_ID.value_set(order_id.to_owned()),
        SAGA_OUTCOME.value_set(RUNNING.to_owned()),
    ])
}

/// The Web UI's summary line and details of a saga: which order, whose, how much, what.
pub fn describe(order: &Order) -> (String, String) {
    let money = |cents: i64| format!("{}.{:02}", cents / 100, cents % 100);
    let summary = format!(
        "order {} · {} items · total {}",
        order.order_id,
        order.items.len(),
        money(order.total_cents())
    );
    let mut details = format!(
        "order: {}\ncustomer: {}\ndate: {}\ntotal: {}\nitems:",
        order.order_id,
        order.customer_id,
        order.order_date,
        money(order.total_cents())
    );
    for item in &order.items {
        details.push_str(&format!(
            "\n- {} × {} ({}) at {}",
            item.qty, item.item_id, item.description, item.unit_price
        ));
    }
    (summary, details)
}

/// [`describe`] for an encrypted saga: nothing about the order at all (its id is in the
/// workflow id and the `OrderId` search attribute; the rest is for key holders only).
pub fn describe_redacted(_order: &Order) -> (String, String) {
    (
        "order saga · encrypted".to_owned(),
        "The order is encrypted: read it through the codec server (`saga codec-server`)."
            .to_owned(),
    )
}

/// Waits for the saga to close and reads its path and outcome from the history.
pub async fn wait(client: &Client, started: &Started) -> anyhow::Result<SagaHistory> {
    let handle = client.get_workflow_handle::<OrderSaga>(&started.workflow_id);
    // The result itself is read from the history below; this only waits for the close event.
    let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
    history(client, &started.workflow_id).await
}

/// The history of the latest run of `workflow_id`.
pub async fn history(client: &Client, workflow_id: &str) -> anyhow::Result<SagaHistory> {
    let mut events = client
        .get_workflow_handle::<OrderSaga>(workflow_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .with_context(|| format!("reading the history of {workflow_id}"))?;
    // Failure messages of an encrypted saga are read decrypted, as the workflow wrote them.
    // Only the events the outcome is read from: a saga followed live is read many times.
    let outcome_events = events.iter_mut().filter(|e| {
        matches!(
            e.event_type(),
            EventType::WorkflowExecutionFailed | EventType::MarkerRecorded
        )
    });
    crate::encryption::decode_history(&client.options().data_converter, outcome_events).await;
    Ok(SagaHistory::from_events(&events))
}

/// The full event history of the latest run of `workflow_id` as JSON (the replayer's format).
pub async fn history_json(client: &Client, workflow_id: &str) -> anyhow::Result<Vec<u8>> {
    client
        .get_workflow_handle::<OrderSaga>(workflow_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .with_context(|| format!("reading the history of {workflow_id}"))
}

/// True when `history` is what the design's table says for the order id's scenario.
pub fn matches_design(order_id: &str, history: &SagaHistory) -> bool {
    let scenario = saga_protos::scenario::Scenario::for_order_id(order_id);
    let closed_ok = match &history.closed {
        Closed::Completed => scenario.completes,
        Closed::Failed { failure_type, .. } => {
            !scenario.completes && failure_type == saga_protos::scenario::SAGA_FAILED
        }
        _ => false,
    };
    closed_ok
        && history
            .path
            .iter()
            .map(String::as_str)
            .eq(scenario.path.iter().copied())
}
