//! Nothing lost, nothing doubled when processes die: a `saga worker` killed with SIGKILL in the
//! middle of a load, a worker that dies (or fails) right after an activity's local transaction
//! committed and before Temporal heard of it, and a Temporal server killed and restarted under
//! load. Every test runs a real dev server, real worker processes and real SQLite stores, and
//! judges the outcome by the server's history and by the rows the stores hold.
//!
//! The randomness (kill moment, order mix) comes from a seed that is printed; set
//! `SAGA_TEST_SEED` to replay a run.

use crate::support;

use saga_protos::{
    Order,
    scenario::{SCENARIOS, activity::*},
};
use saga_worker::{history::Closed, launch};
use std::time::Duration;
use support::{
    DevServer, ServerOptions, WorkerProcess, activity_attempts, assert_design_paths,
    assert_stores_consistent, fresh_id, open_stores, order_with_lines, start_all, wait_all,
};

/// The stock every item starts with (the worker's default).
const INITIAL_STOCK: i64 = 1000;
/// A small item set, so that many orders take stock from the same items.
const ITEMS: [&str; 4] = ["item-a", "item-b", "item-c", "item-d"];

fn rng() -> fastrand::Rng {
    let seed = std::env::var("SAGA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("SAGA_TEST_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// `n` orders spread evenly over the seven scenarios, in random order, each taking 1–3 units of
/// 1–3 of the shared items.
fn mixed_orders(rng: &mut fastrand::Rng, n: usize) -> Vec<Order> {
    let mut orders: Vec<Order> = (0..n)
        .map(|i| {
            let scenario = &SCENARIOS[i % SCENARIOS.len()];
            let mut items = ITEMS;
            rng.shuffle(&mut items);
            let lines: Vec<(&str, i64)> = items[..rng.usize(1..=3)]
                .iter()
                .map(|item| (*item, rng.i64(1..=3)))
                .collect();
            order_with_lines(&scenario.fresh_order_id(), &lines)
        })
        .collect();
    rng.shuffle(&mut orders);
    orders
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_load_loses_and_doubles_nothing() {
    let mut rng = rng();
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let client = server.client().await;

    let orders = mixed_orders(&mut rng, 200);
    let started = start_all(&client, &orders).await;
    // The worker starts only once all 200 are queued, and its payments take a second (a delay
    // before the transaction, on the first attempt's worker only): an idle machine finishes 200
    // sagas in about a second, and the kill must find work in flight, some of it mid-step.
    let mut worker = WorkerProcess::start(
        &server,
        data.path(),
        &[("SAGA_FAULTS", "delay=ProcessPayment:1000")],
    );
    let kill_after = Duration::from_millis(rng.u64(800..=2500));
    eprintln!("200 sagas queued; SIGKILL {kill_after:?} after the worker starts");
    tokio::time::sleep(kill_after).await;
    worker.kill();
    let mut open_at_kill = 0;
    for s in &started {
        if launch::history(&client, &s.workflow_id)
            .await
            .unwrap()
            .closed
            == Closed::Running
        {
            open_at_kill += 1;
        }
    }
    eprintln!("worker killed with {open_at_kill} sagas still open; restarting it");
    assert!(
        open_at_kill > 0,
        "the kill came after every saga had closed: it proves nothing"
    );

    let restarted = WorkerProcess::start(&server, data.path(), &[]);
    let histories = wait_all(&client, &started, Duration::from_secs(240), || {
        format!(
            "--- killed worker ---\n{}\n--- restarted worker ---\n{}",
            worker.log_tail(20),
            restarted.log_tail(40)
        )
    })
    .await;
    assert_design_paths(&orders, &histories);

    let stores = open_stores(data.path()).await;
    let held = assert_stores_consistent(&stores, &orders, INITIAL_STOCK).await;
    let mut retried = 0;
    for s in &started {
        retried += activity_attempts(&client, &s.workflow_id)
            .await
            .iter()
            .filter(|(_, attempt)| *attempt > 1)
            .count();
    }
    eprintln!(
        "consistent; stock held by completed orders: {held:?}; activities retried: {retried}"
    );
}

/// For each activity, a saga whose path includes it, with its scenario's prefix. Together they
/// cover all seven activities and all seven scenarios.
const CRASH_PLAN: [(&str, &str); 7] = [
    (PROCESS_ORDER, ""),
    (UPDATE_ORDER_STATUS, "1"),
    (PROCESS_PAYMENT, "2"),
    (PROCESS_REFUND, "22"),
    (RESERVE_INVENTORY, "3"),
    (RELEASE_INVENTORY, "33"),
    (NOTIFY, "11"),
];

/// `crash-after-commit` for every activity.
///
/// The cheapest run that still pins each crash to its activity: one server and one data
/// directory for all seven, and for each activity a worker started with
/// `crash-after-commit=<that activity>` only, plus a new saga that reaches it. The worker dies
/// right after that activity's commit; the next worker (with the next activity's fault) starts at
/// once. The crashed attempt is retried by the server only after its 10 s start-to-close timeout,
/// so the seven crashes follow each other within seconds and their seven timeouts overlap: the
/// whole test waits for about one timeout instead of seven. A final worker without faults then
/// runs every retry: each must find the committed transaction and not repeat it.
///
/// (`crash-after-commit=*` would crash on the first activity of whichever saga got there first,
/// so which activity died after its commit would be left to chance.) A saga resumed from an
/// earlier crash may reach the current fault's activity first; then that worker's crash did not
/// hit the new saga, and the loop simply starts another worker with the same fault.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_dying_right_after_any_commit_repeats_nothing() {
    dying_right_after_any_commit("remote").await;
}

/// The same with local activities: the saga's workflow task dies with the worker, and the next
/// worker runs the step again from the history, where the first run left no trace but its commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_step_dying_right_after_its_commit_repeats_nothing() {
    dying_right_after_any_commit("local").await;
}

async fn dying_right_after_any_commit(dispatch: &str) {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let client = server.client().await;

    let mut orders = Vec::new();
    let mut started = Vec::new();
    for (activity, prefix) in CRASH_PLAN {
        let order = order_with_lines(&fresh_id(prefix), &[("item-a", 1), ("item-b", 2)]);
        let saga = launch::start(
            &client,
            "order-saga",
            &launch::workflow_id(&order.order_id),
            &order,
        )
        .await
        .unwrap();
        let fault = format!("crash-after-commit={activity}");
        let mut crashed_on_it = false;
        for _ in 0..5 {
            let mut worker = WorkerProcess::start(
                &server,
                data.path(),
                &[("SAGA_FAULTS", &fault), ("SAGA_DISPATCH", dispatch)],
            );
            let status = worker.wait_exit(Duration::from_secs(60)).unwrap_or_else(|| {
                panic!(
                    "the worker with SAGA_FAULTS={fault} did not crash within 60 s; its log:\n{}",
                    worker.log_tail(40)
                )
            });
            assert!(!status.success(), "a crash is not a clean exit: {status}");
            let log = worker.log_text();
            let crash = log
                .lines()
                .find(|l| l.contains("crashing the worker after commit"))
                .unwrap_or_else(|| panic!("worker exited without the injected crash:\n{log}"));
            if crash.contains(&order.order_id) {
                crashed_on_it = true;
                break;
            }
        }
        assert!(
            crashed_on_it,
            "no worker crashed on {activity} of {}",
            order.order_id
        );
        eprintln!("crashed after committing {activity} of {}", order.order_id);
        orders.push(order);
        started.push(saga);
    }

    let worker = WorkerProcess::start(&server, data.path(), &[("SAGA_DISPATCH", dispatch)]);
    let histories = wait_all(&client, &started, Duration::from_secs(120), || {
        worker.log_tail(40)
    })
    .await;
    assert_design_paths(&orders, &histories);
    let stores = open_stores(data.path()).await;
    assert_stores_consistent(&stores, &orders, INITIAL_STOCK).await;
    if dispatch == "local" {
        // A local activity's attempts live in the workflow task that died with the worker; the
        // history shows only the run that completed, so there is no retry count to check.
        return;
    }
    for ((activity, _), saga) in CRASH_PLAN.iter().zip(&started) {
        let attempts = activity_attempts(&client, &saga.workflow_id).await;
        let (_, attempt) = attempts
            .iter()
            .find(|(a, _)| a == activity)
            .expect("the activity ran");
        assert!(
            *attempt >= 2,
            "{activity} of {} crashed on attempt 1, so the server must have retried it: \
             {attempts:?}",
            saga.workflow_id
        );
    }
}

/// `fail-after-commit=*`: every activity of every scenario commits, then reports a retryable
/// error on its first attempt. Each retry must find its committed work; the history shows every
/// activity closed by attempt 2.
#[tokio::test(flavor = "multi_thread")]
async fn an_error_after_every_commit_is_retried_without_doubling() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let worker = WorkerProcess::start(
        &server,
        data.path(),
        &[("SAGA_FAULTS", "fail-after-commit=*")],
    );
    let client = server.client().await;

    let orders: Vec<Order> = SCENARIOS
        .iter()
        .chain(SCENARIOS.iter())
        .enumerate()
        .map(|(i, s)| order_with_lines(&s.fresh_order_id(), &[(ITEMS[i % 4], 2), ("item-x", 1)]))
        .collect();
    let started = start_all(&client, &orders).await;
    let histories = wait_all(&client, &started, Duration::from_secs(120), || {
        worker.log_tail(40)
    })
    .await;
    assert_design_paths(&orders, &histories);
    let stores = open_stores(data.path()).await;
    assert_stores_consistent(&stores, &orders, INITIAL_STOCK).await;
    for saga in &started {
        let attempts = activity_attempts(&client, &saga.workflow_id).await;
        assert!(
            attempts.iter().all(|(_, attempt)| *attempt == 2),
            "every activity of {} failed once after its commit and succeeded on attempt 2: \
             {attempts:?}",
            saga.workflow_id
        );
    }
    assert!(worker.log_text().contains("injected failure after commit"));
}

/// The Temporal server, persisting to a file, is killed under load and started again on the same
/// port and file. The worker must ride out the outage by itself and every saga must complete.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_and_restarted_mid_load_loses_no_saga() {
    let mut rng = rng();
    let dir = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        db_file: Some(dir.path().join("temporal.db")),
        port: Some(support::free_port()),
        ..Default::default()
    };
    let mut server = DevServer::start_with(options.clone());
    let data = dir.path().join("data");
    let mut worker = WorkerProcess::start(&server, &data, &[]);
    let client = server.client().await;

    let orders = mixed_orders(&mut rng, 100);
    let started = start_all(&client, &orders).await;
    let kill_after = rng.usize(20..=60);
    wait_all(
        &client,
        &started[..kill_after],
        Duration::from_secs(120),
        || worker.log_tail(40),
    )
    .await;
    server.stop();
    eprintln!("server killed after {kill_after} sagas closed; restarting it in 3 s");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        worker.is_running(),
        "the worker exited when the server went away:\n{}",
        worker.log_tail(40)
    );
    drop(server);
    let server = DevServer::start_with(options);
    eprintln!("server restarted on port {}", server.port);

    let client = server.client().await;
    let histories = wait_all(&client, &started, Duration::from_secs(240), || {
        worker.log_tail(40)
    })
    .await;
    assert_design_paths(&orders, &histories);
    assert!(
        worker.is_running(),
        "the worker survived the outage and keeps serving"
    );
    let stores = open_stores(&data).await;
    assert_stores_consistent(&stores, &orders, INITIAL_STOCK).await;
}
