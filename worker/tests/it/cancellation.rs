//! Cancelling a saga from the `temporal` CLI while one of its steps is in progress.
//!
//! The step in progress is allowed to finish (its activity has a cancellation token of its own),
//! then the workflow sees the cancellation, runs the compensations of everything done, including
//! that step, and ends Cancelled. The compensations are never cancelled themselves, so the stores
//! end as consistent as after any compensated saga.
//!
//! The saga acts on a cancellation after a step that ran as a regular activity (see
//! `cancellation_settled` in the workflow): with split workers after any step, with an
//! all-in-one worker once a step waits on its infrastructure (its later rounds are regular
//! activities); its local steps, milliseconds long, run to the end.

use crate::support;

use saga_protos::scenario::activity::*;
use saga_worker::{
    history::Closed,
    launch::{self, Started},
};
use serde_json::json;
use std::{path::Path, time::Duration};
use support::{
    DevServer, WorkerProcess, fresh_id, history_events, open_stores, order_with_id,
    saga_status_json, wait_until_started,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType, history::v1::history_event::Attributes,
};

/// Long enough for the test to see the step start and send the cancellation while it runs.
const SLOW_STEPS: &str = "delay=ProcessPayment:4000,delay=ReserveInventory:4000";

struct Expected {
    /// The step running when the cancellation is sent.
    cancel_during: &'static str,
    /// The activity types scheduled after the cancellation request, in order.
    after_cancel: &'static [&'static str],
    payments: &'static [&'static str],
    inventory: &'static [&'static str],
}

fn start(server: &DevServer, dir: &Path, workflow_id: &str, order_id: &str) {
    let file = dir.join(format!("{workflow_id}.json"));
    std::fs::write(&file, serde_json::to_vec(&order_with_id(order_id)).unwrap()).unwrap();
    server.start_order_with_cli("order-saga", workflow_id, &file);
}

async fn cancel_and_check(server: &DevServer, data: &Path, expected: &Expected) {
    let client = server.client().await;
    let order_id = fresh_id("");
    let workflow_id = format!("cancel-during-{}", expected.cancel_during);
    start(server, data, &workflow_id, &order_id);
    wait_until_started(server, &workflow_id, expected.cancel_during).await;
    let out = server.cli(&["workflow", "cancel", "-w", &workflow_id]);
    assert!(
        out.status.success(),
        "temporal workflow cancel: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Started {
        workflow_id: workflow_id.clone(),
        run_id: String::new(),
    };
    let history = tokio::time::timeout(Duration::from_secs(120), launch::wait(&client, &started))
        .await
        .expect("the cancelled saga finishes compensating")
        .unwrap();
    assert_eq!(history.closed, Closed::Cancelled, "{workflow_id}");

    let events = history_events(&client, &workflow_id).await;
    let cancel_at = events
        .iter()
        .position(|e| e.event_type() == EventType::WorkflowExecutionCancelRequested)
        .expect("the history records the cancel request");
    let scheduled_after: Vec<String> = events[cancel_at..]
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                a.activity_type.as_ref().map(|t| t.name.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        scheduled_after, expected.after_cancel,
        "{workflow_id}: compensations after the cancel request"
    );
    // Nothing was cancelled: the step in progress and every compensation completed.
    let count = |kind: EventType| events.iter().filter(|e| e.event_type() == kind).count();
    assert_eq!(count(EventType::ActivityTaskCancelRequested), 0);
    assert_eq!(count(EventType::ActivityTaskCanceled), 0);
    assert_eq!(
        count(EventType::ActivityTaskCompleted),
        history.path.len(),
        "{workflow_id}: every activity completed: {:?}",
        history.path
    );

    let status = saga_status_json(data, &order_id);
    assert_eq!(status["order"]["order_status"], "Pending", "{status}");
    let kinds = |list: &str, key: &str| -> Vec<String> {
        status[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[key].as_str().unwrap().to_owned())
            .collect()
    };
    let mut payments = kinds("payments", "payment_type");
    payments.sort_by_key(|t| t != "Debit");
    assert_eq!(payments, expected.payments, "{status}");
    let mut inventory = kinds("inventory", "transaction_type");
    inventory.sort_by_key(|t| t != "Reserve");
    assert_eq!(inventory, expected.inventory, "{status}");
    assert_eq!(status["notifications"], json!([]), "{status}");
    if let [debit, credit] = status["payments"].as_array().unwrap().as_slice() {
        assert_eq!(
            debit["amount_cents"].as_i64().unwrap(),
            -credit["amount_cents"].as_i64().unwrap(),
            "{status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saga_cancelled_mid_step_compensates_and_ends_cancelled() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(
        &server,
        data.path(),
        &[("SAGA_FAULTS", SLOW_STEPS), ("SAGA_DISPATCH", "remote")],
    );

    let during_reserve = Expected {
        cancel_during: RESERVE_INVENTORY,
        after_cancel: &[RELEASE_INVENTORY, PROCESS_REFUND, UPDATE_ORDER_STATUS],
        payments: &["Debit", "Credit"],
        inventory: &["Reserve", "Release"],
    };
    let during_payment = Expected {
        cancel_during: PROCESS_PAYMENT,
        after_cancel: &[PROCESS_REFUND, UPDATE_ORDER_STATUS],
        payments: &["Debit", "Credit"],
        inventory: &[],
    };
    tokio::join!(
        cancel_and_check(&server, data.path(), &during_reserve),
        cancel_and_check(&server, data.path(), &during_payment),
    );

    // Every reservation came back: the stock is what it was before either order.
    let stores = open_stores(data.path()).await;
    let inventory = stores.inventory.as_ref().unwrap();
    for item in order_with_id("x").items {
        assert_eq!(
            inventory.available(&item.item_id).await.unwrap(),
            Some(1000),
            "stock of {}",
            item.item_id
        );
    }
}

/// All in one (local activities): a saga whose payment database is "down" for its first five
/// attempts waits in a round of regular activities; cancelled then, it stops at the end of that
/// round and compensates the payment and the order. A saga cancelled while its local steps run
/// finishes, as if the request came after its last step.
#[tokio::test(flavor = "multi_thread")]
async fn an_all_in_one_saga_waiting_on_its_database_can_be_cancelled() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(
        &server,
        data.path(),
        &[(
            "SAGA_FAULTS",
            "unavailable=ProcessPayment:5,delay=ReserveInventory:3000",
        )],
    );
    let client = server.client().await;
    let waiting_id = fresh_id("");
    start(&server, data.path(), "cancel-waiting", &waiting_id);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = support::observe::state(&client, "cancel-waiting").await;
        if state
            .waiting
            .as_ref()
            .is_some_and(|w| w.activity == PROCESS_PAYMENT)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never waited: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let running_id = fresh_id("");
    start(&server, data.path(), "cancel-running", &running_id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in ["cancel-waiting", "cancel-running"] {
        assert!(
            server
                .cli(&["workflow", "cancel", "-w", id])
                .status
                .success()
        );
    }

    let wait = |id: &str| {
        let started = Started {
            workflow_id: id.to_owned(),
            run_id: String::new(),
        };
        let client = client.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(120), launch::wait(&client, &started))
                .await
                .expect("the saga finishes")
                .unwrap()
        }
    };
    let waiting = wait("cancel-waiting").await;
    assert_eq!(waiting.closed, Closed::Cancelled);
    assert_eq!(
        waiting.path,
        [
            PROCESS_ORDER,
            PROCESS_PAYMENT,
            PROCESS_REFUND,
            UPDATE_ORDER_STATUS
        ]
    );
    let status = saga_status_json(data.path(), &waiting_id);
    assert_eq!(status["order"]["order_status"], "Pending", "{status}");
    assert_eq!(status["payments"].as_array().unwrap().len(), 2, "{status}");
    assert_eq!(status["inventory"], json!([]), "{status}");

    let running = wait("cancel-running").await;
    assert_eq!(running.closed, Closed::Completed, "{running:?}");
    let status = saga_status_json(data.path(), &running_id);
    assert_eq!(status["order"]["order_status"], "New", "{status}");
    assert_eq!(status["notifications"][0]["status"], "success", "{status}");
}
