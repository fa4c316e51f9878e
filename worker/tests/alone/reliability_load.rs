//! Retries and contention under load: a share of all activity attempts failing with a retryable
//! error, and many concurrent orders for one item with limited stock, served by two worker
//! processes on the same stores. Real dev server, real worker processes, real SQLite stores.

use crate::support;

use saga_protos::{
    Order,
    scenario::{SAGA_FAILED, SCENARIOS, Scenario, activity::*},
};
use saga_worker::history::Closed;
use std::time::Duration;
use support::{
    DevServer, WorkerProcess, activity_attempts, assert_consistent, assert_design_paths,
    assert_stores_consistent, fresh_id, open_stores, order_with_lines, start_all, wait_all,
};

const INITIAL_STOCK: i64 = 1000;

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_and_every_saga_ends_on_its_path() {
    transient_faults("remote").await;
}

/// The same retry policy holds for local activities: the worker retries them itself, with the
/// same backoff, and records the attempt that succeeded in each step's marker.
#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_in_local_steps_are_retried_alike() {
    transient_faults("local").await;
}

async fn transient_faults(dispatch: &str) {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let worker = WorkerProcess::start(
        &server,
        data.path(),
        &[
            ("SAGA_FAULTS", "transient=0.3"),
            ("SAGA_DISPATCH", dispatch),
        ],
    );
    let client = server.client().await;

    let items = ["item-a", "item-b", "item-c"];
    let orders: Vec<Order> = (0..100)
        .map(|i| {
            let scenario = &SCENARIOS[i % SCENARIOS.len()];
            order_with_lines(
                &scenario.fresh_order_id(),
                &[(items[i % 3], 1 + (i % 2) as i64), (items[(i + 1) % 3], 1)],
            )
        })
        .collect();
    let started = start_all(&client, &orders).await;
    let histories = wait_all(&client, &started, Duration::from_secs(300), || {
        worker.log_tail(40)
    })
    .await;
    assert_design_paths(&orders, &histories);
    let stores = open_stores(data.path()).await;
    assert_stores_consistent(&stores, &orders, INITIAL_STOCK).await;

    let mut activities = 0;
    let mut retried = 0;
    for saga in &started {
        let attempts = activity_attempts(&client, &saga.workflow_id).await;
        activities += attempts.len();
        retried += attempts.iter().filter(|(_, a)| *a > 1).count();
        // The fault spares the last of the four attempts, so no step may run out of them.
        assert!(
            attempts.iter().all(|(_, a)| (1..=4).contains(a)),
            "{attempts:?}"
        );
    }
    eprintln!("{retried} of {activities} activities needed a retry");
    assert!(
        retried > 0,
        "with transient=0.3 some activities must have been retried"
    );
    assert!(worker.log_text().contains("will retry"));
}

/// 60 concurrent orders of one unit each for an item with a stock of 25, served by two worker
/// processes sharing the stores (one with a pool of several connections): exactly 25 complete,
/// the other 35 fail to reserve and are compensated, and the stock ends at 0.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_orders_for_scarce_stock_never_oversell() {
    const STOCK: i64 = 25;
    const ORDERS: usize = 60;
    let item = "scarce-item";
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let stores = open_stores(data.path()).await;
    stores
        .inventory
        .as_ref()
        .unwrap()
        .set_stock(item, STOCK)
        .await
        .unwrap();
    let first = WorkerProcess::start(&server, data.path(), &[]);
    let second = WorkerProcess::start(&server, data.path(), &[("SAGA_DB_POOL_SIZE", "4")]);
    let client = server.client().await;

    let orders: Vec<Order> = (0..ORDERS)
        .map(|_| order_with_lines(&fresh_id(""), &[(item, 1)]))
        .collect();
    let started = start_all(&client, &orders).await;
    let histories = wait_all(&client, &started, Duration::from_secs(180), || {
        format!("{}\n---\n{}", first.log_tail(20), second.log_tail(20))
    })
    .await;

    let success = Scenario::for_order_id(&orders[0].order_id);
    let compensated_path = [
        PROCESS_ORDER,
        PROCESS_PAYMENT,
        RESERVE_INVENTORY,
        RELEASE_INVENTORY,
        PROCESS_REFUND,
        UPDATE_ORDER_STATUS,
    ];
    let mut completed = 0;
    for (order, history) in orders.iter().zip(&histories) {
        let id = &order.order_id;
        match &history.closed {
            Closed::Completed => {
                completed += 1;
                assert_eq!(history.path, success.path, "path of {id}");
                let held = assert_consistent(&stores, id).await;
                assert_eq!(held, [(item.to_owned(), 1)], "reservation of {id}");
            }
            Closed::Failed { failure_type, .. } => {
                assert_eq!(failure_type, SAGA_FAILED, "{id}");
                assert_eq!(history.path, compensated_path, "path of {id}");
                assert_compensated_for_lack_of_stock(&stores, id).await;
            }
            other => panic!("{id} ended {other:?}"),
        }
    }
    assert_eq!(
        completed, STOCK as usize,
        "exactly as many orders as units in stock"
    );
    assert_eq!(
        stores
            .inventory
            .as_ref()
            .unwrap()
            .available(item)
            .await
            .unwrap(),
        Some(0)
    );
    let both_served = [&first, &second]
        .iter()
        .all(|w| w.log_text().contains("committed"));
    eprintln!(
        "{completed} completed, {} compensated; both workers served: {both_served}",
        ORDERS - completed
    );
}

/// The rows of an order whose reservation found no stock: order compensated, Debit refunded,
/// no reservation and so no release, no notification.
async fn assert_compensated_for_lack_of_stock(stores: &saga_activities::Stores, id: &str) {
    let order = stores.orders.as_ref().unwrap().get(id).await.unwrap();
    assert_eq!(
        order.map(|o| o.order_status),
        Some("Pending".to_owned()),
        "{id}"
    );
    let ledger = stores
        .payments
        .as_ref()
        .unwrap()
        .for_order(id)
        .await
        .unwrap();
    let mut types: Vec<&str> = ledger.iter().map(|p| p.payment_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["Credit", "Debit"], "ledger of {id}");
    assert_eq!(
        ledger.iter().map(|p| p.amount_cents).sum::<i64>(),
        0,
        "refund of {id}"
    );
    let inventory = stores
        .inventory
        .as_ref()
        .unwrap()
        .for_order(id)
        .await
        .unwrap();
    assert!(inventory.is_empty(), "{id} reserved nothing: {inventory:?}");
    let sent = stores
        .notifications
        .as_ref()
        .unwrap()
        .for_order(id)
        .await
        .unwrap();
    assert!(sent.is_empty(), "{id}: {sent:?}");
}
