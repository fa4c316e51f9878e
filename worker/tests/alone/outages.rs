//! A database outage is not a failed order. The services' databases go away under sagas in
//! flight — a PostgreSQL server of the test's own stopped and started again, an SQLite file
//! locked by another process — and every saga must end exactly as the design's table says once
//! they are back, with nothing doubled; meanwhile the saga says what it waits on. Each test runs
//! an all-in-one deployment (local activities) and a split one (regular activities on each
//! service's queue) side by side on one dev server.
//!
//! Only what the issue of time cannot change is asserted: paths, outcomes, rows, and that the
//! waiting shows while it lasts. The outages are real: a stopped server refuses connections and
//! drops the open ones.

use crate::support;

use saga_activities::{Service, testing::PrivatePostgres};
use saga_protos::{
    Order,
    ids::TransactionType,
    scenario::{SAGA_FAILED, SCENARIOS, Scenario, activity::*},
};
use saga_worker::{
    history::{Closed, SagaHistory},
    launch::{self, Started},
};
use std::time::{Duration, Instant};
use support::{
    DevServer,
    deploy::Deployment,
    free_port, fresh_id,
    observe::{scrape, state_if_answered, total},
    order_with_lines, wait_all,
};
use temporalio_client::Client;

/// All five roles in one process: regular activities on each service's queue, as split
/// workers run them, with one process to kill.
const SPLIT_IN_ONE: &[&str] = &["--role", "workflow,orders,payments,inventory,notifications"];

/// `n` orders over the seven scenarios, one or two units of shared items.
fn mixed_orders(n: usize) -> Vec<Order> {
    (0..n)
        .map(|i| {
            let scenario = &SCENARIOS[i % SCENARIOS.len()];
            let lines = [("item-p", 1 + (i % 2) as i64), ("item-q", 1)];
            order_with_lines(&scenario.fresh_order_id(), &lines[..1 + i % 2])
        })
        .collect()
}

fn orders_of(prefix: &str, n: usize) -> Vec<Order> {
    (0..n)
        .map(|_| order_with_lines(&fresh_id(prefix), &[("item-p", 1)]))
        .collect()
}

/// Polls until `check` finds what it looks for among the running sagas of `started`, within
/// `within`; returns what it found. Each round asks every saga at once: a saga retrying a
/// local step answers a query only between its workflow tasks, seconds apart, and asking them
/// one after another would spend the time on those. `make test` runs these tests beside the
/// others' builds and runs, and there a refund of the five-minute outage once took longer
/// than 90 s to report itself waiting (well under it alone), and once more than 150 s. What is
/// looked for only exists while the outage lasts, so the callers wait as long as the outage
/// leaves room for (150 s, or more for the five-minute one): a busy machine then finds it,
/// and nothing else changes. Giving up, it prints what each saga showed at the last look and
/// the workers' last lines (`logs`).
async fn eventually<T>(
    what: &str,
    within: Duration,
    client: &Client,
    started: &[Started],
    logs: impl Fn() -> String,
    check: impl Fn(&saga_workflows::SagaState) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let looks = futures_util::future::join_all(started.iter().map(|s| async move {
            match launch::history(client, &s.workflow_id).await {
                Ok(h) if h.closed == Closed::Running => {
                    Ok(state_if_answered(client, &s.workflow_id).await)
                }
                Ok(h) => Err(format!("{:?}", h.closed)),
                Err(e) => Err(format!("no history: {e}")),
            }
        }))
        .await;
        if let Some(found) = looks.iter().flatten().flatten().find_map(&check) {
            return found;
        }
        if Instant::now() >= deadline {
            // What each saga showed at the last look, and the workers' last lines: a failure in
            // CI is read from this alone.
            let seen = started
                .iter()
                .zip(&looks)
                .map(|(s, look)| match look {
                    Ok(Some(st)) => format!(
                        "{}: {} at {:?}, waiting {:?}",
                        s.workflow_id,
                        st.phase,
                        st.current,
                        st.waiting.as_ref().map(|w| (&w.activity, &w.last_error))
                    ),
                    Ok(None) => format!("{}: running, no answer to the query", s.workflow_id),
                    Err(closed) => format!("{}: {closed}", s.workflow_id),
                })
                .collect::<Vec<_>>()
                .join("\n");
            panic!("never saw {what}; the last look:\n{seen}\n{}", logs());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until every order has its Debit in the payments ledger: its saga is then held in
/// ReserveInventory (the tests slow it down) or past it. Started on a busy machine, sagas take
/// longer to get there than on a quiet one, so a fixed pause before an outage would find them
/// in a different place. Read from the database, not asked of the sagas: a saga answers a query
/// only when its workflow task ends, and one whose local steps all run in its first task ends
/// that task with the saga itself, so a query could tell that it had paid only once its
/// compensation was done, too late for an outage to hold up its refund.
async fn until_paid(stores: &saga_activities::Stores, orders: &[Order]) {
    let ledger = stores.payments.as_ref().expect("the payments store");
    let deadline = Instant::now() + Duration::from_secs(90);
    for order in orders {
        loop {
            let rows = ledger.for_order(&order.order_id).await.unwrap_or_default();
            if rows
                .iter()
                .any(|row| row.payment_type == TransactionType::Debit.as_str())
            {
                break;
            }
            assert!(Instant::now() < deadline, "{} never paid", order.order_id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Asserts each saga took `path` and failed with `SagaFailed` for the reason `because`.
fn assert_gave_up(histories: &[SagaHistory], path: &[&str], because: &str) {
    for history in histories {
        assert_eq!(history.path, path, "{history:?}");
        match &history.closed {
            Closed::Failed {
                failure_type,
                message,
            } => {
                assert_eq!(failure_type, SAGA_FAILED);
                assert!(message.contains(because), "{message}");
            }
            other => panic!("ended {other:?}, expected SagaFailed"),
        }
    }
}

/// The all-in-one and split deployments of a test, sharing a dev server.
fn databases(pg: &PrivatePostgres, deployment: Deployment, services: &[Service]) -> Deployment {
    let tag = deployment.name.clone();
    services.iter().fold(deployment, |d, &service| {
        d.database(service, &pg.url(&format!("{tag}_{}", service.name())))
    })
}

fn database_names(tags: &[&str], services: &[Service]) -> Vec<String> {
    tags.iter()
        .flat_map(|tag| services.iter().map(move |s| format!("{tag}_{}", s.name())))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_database_down_for_a_minute_under_150_sagas() {
    let names = database_names(&["l", "s", "w"], &Service::ALL);
    let pg = PrivatePostgres::start(&names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    // Steps held a little, so that the outage finds sagas in every step.
    let slow = "delay=ProcessPayment:1500";
    let mut local = databases(
        &pg,
        Deployment::new("l", dir.path())
            .env("SAGA_FAULTS", slow)
            .env("SAGA_METRICS_PORT", &metrics_port.to_string()),
        &Service::ALL,
    );
    let mut split = databases(
        &pg,
        Deployment::new("s", dir.path()).env("SAGA_FAULTS", slow),
        &Service::ALL,
    );
    // A forward step window shorter than the outage: these sagas give up and compensate.
    let mut short = databases(
        &pg,
        Deployment::new("w", dir.path()).env("SAGA_STEP_WINDOW", "20s"),
        &Service::ALL,
    );
    let local_worker = local.start_all_in_one(&server);
    split.start(&server, SPLIT_IN_ONE);
    short.start_all_in_one(&server);
    let client = server.client().await;

    let (mut local_orders, mut split_orders) = (mixed_orders(50), mixed_orders(50));
    let mut local_started = local.start_sagas(&client, &local_orders).await;
    let mut split_started = split.start_sagas(&client, &split_orders).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    pg.stop();
    let outage = Instant::now();
    eprintln!("PostgreSQL stopped with 100 sagas in flight");
    let more_local = mixed_orders(25);
    let more_split = mixed_orders(25);
    local_started.extend(local.start_sagas(&client, &more_local).await);
    split_started.extend(split.start_sagas(&client, &more_split).await);
    local_orders.extend(more_local);
    split_orders.extend(more_split);
    let doomed = orders_of("", 10);
    let doomed_started = short.start_sagas(&client, &doomed).await;

    // The saga says what it waits on: the state query, the search attribute, the metric. An
    // attempt can also end on its time limit while the pool waits for a connection ("Activity
    // timed out"), so the one looked for is a saga whose last attempt named the database.
    let waiting = eventually(
        "a saga waiting on its database, naming it",
        Duration::from_secs(150),
        &client,
        &local_started,
        || local.log_tails(20),
        |s| {
            s.waiting
                .as_ref()
                .is_some_and(|w| w.attempts >= 4 && w.last_error.contains("database unavailable"))
                .then(|| s.clone())
        },
    )
    .await;
    // Still running (or compensating a business failure): waiting is not failing.
    assert!(
        waiting.phase == "running" || waiting.phase == "compensating",
        "{waiting:?}"
    );
    let waiting = waiting.waiting.unwrap();
    assert!(
        waiting.last_error.contains("database unavailable"),
        "{waiting:?}"
    );
    assert!(
        !server
            .list_ids_until("SagaWaiting IS NOT NULL", Duration::from_secs(30), |ids| {
                !ids.is_empty()
            })
            .is_empty(),
        "SagaWaiting lists the waiting sagas"
    );
    assert!(
        total(
            &scrape(metrics_port),
            "saga_steps_waiting_on_infrastructure"
        ) > 0.0
    );
    eprintln!("waiting shows: {waiting:?}");

    // The worker dies during the outage; its replacement waits for the database.
    local.kill(local_worker);
    local.restart(&server, local_worker);

    let elapsed = outage.elapsed();
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(elapsed)).await;
    pg.start_again();
    eprintln!("PostgreSQL started again after {:.0?}", outage.elapsed());

    for (deployment, orders, started) in [
        (&local, &local_orders, &local_started),
        (&split, &split_orders, &split_started),
    ] {
        deployment
            .assert_sagas_end_right(&client, orders, started, Duration::from_secs(300))
            .await;
    }
    let histories = wait_all(&client, &doomed_started, Duration::from_secs(300), || {
        short.log_tails(20)
    })
    .await;
    assert_gave_up(
        &histories,
        &[PROCESS_ORDER, UPDATE_ORDER_STATUS],
        "ProcessOrder gave up waiting on its infrastructure: the step's window for \
         infrastructure errors (20s) ran out",
    );
    let stores = short.stores().await;
    for order in &doomed {
        let rows = stores
            .orders
            .as_ref()
            .unwrap()
            .get(&order.order_id)
            .await
            .unwrap();
        assert_eq!(rows, None, "nothing of {} was ever written", order.order_id);
    }
    assert!(
        server
            .list_ids_until("SagaWaiting IS NOT NULL", Duration::from_secs(30), |ids| {
                ids.is_empty()
            })
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_payments_database_down_for_five_minutes() {
    let names = database_names(&["l", "s", "d"], &[Service::Payments]);
    let pg = PrivatePostgres::start(&names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Held in ReserveInventory, so that the outage finds sagas paid and about to compensate
    // their payment (the `3` scenarios fail there). Six seconds, under the steps' ten-second
    // time limit: the outage starts once the hurried sagas' debits are in the ledger
    // (`until_paid`), and the last of them is still held then, however busy the machine.
    let slow = "delay=ReserveInventory:6000";
    let payments = [Service::Payments];
    let mut local = databases(
        &pg,
        Deployment::new("l", dir.path()).env("SAGA_FAULTS", slow),
        &payments,
    );
    let mut split = databases(
        &pg,
        Deployment::new("s", dir.path()).env("SAGA_FAULTS", slow),
        &payments,
    );
    // A deadline shorter than the outage: compensations are never cut off by it, forward
    // steps are.
    let mut hurried = databases(
        &pg,
        Deployment::new("d", dir.path())
            .env("SAGA_FAULTS", slow)
            .env("SAGA_DEADLINE", "60s"),
        &payments,
    );
    local.start_all_in_one(&server);
    let split_worker = split.start(&server, SPLIT_IN_ONE);
    hurried.start_all_in_one(&server);
    let client = server.client().await;

    let (mut local_orders, mut split_orders) = (mixed_orders(40), mixed_orders(40));
    let mut local_started = local.start_sagas(&client, &local_orders).await;
    let mut split_started = split.start_sagas(&client, &split_orders).await;
    let undone = orders_of("3", 5);
    let undone_started = hurried.start_sagas(&client, &undone).await;
    // The outage must find the hurried ones paid, so that their deadline can cut off no forward
    // step; they are `3` orders, so their refunds will wait on the database.
    until_paid(&hurried.stores().await, &undone).await;

    pg.stop();
    let outage = Instant::now();
    eprintln!("the payments database stopped");
    let more_local = mixed_orders(20);
    let more_split = mixed_orders(20);
    local_started.extend(local.start_sagas(&client, &more_local).await);
    split_started.extend(split.start_sagas(&client, &more_split).await);
    local_orders.extend(more_local);
    split_orders.extend(more_split);
    let late = orders_of("", 3);
    let late_started = hurried.start_sagas(&client, &late).await;

    // A compensation blocked by the outage says so (a hurried saga's, or a local `3` order's
    // that had paid by then).
    let compensating: Vec<Started> = undone_started
        .iter()
        .chain(&local_started)
        .cloned()
        .collect();
    // As above, an attempt may end on its time limit instead: the one looked for names the
    // database.
    // Up to four minutes into the outage, which leaves the listings below a minute before the
    // database comes back.
    let look = Duration::from_secs(240).saturating_sub(outage.elapsed());
    let blocked = eventually(
        "a refund waiting, naming it",
        look,
        &client,
        &compensating,
        || format!("{}\n{}", hurried.log_tails(20), local.log_tails(20)),
        |s| {
            (s.phase == "compensating")
                .then_some(s.waiting.clone())
                .flatten()
                .filter(|w| {
                    w.activity == PROCESS_REFUND && w.last_error.starts_with("payments database")
                })
        },
    )
    .await;
    assert!(
        blocked.last_error.starts_with("payments database"),
        "{blocked:?}"
    );
    let waiting_on = format!("SagaWaiting = '{PROCESS_REFUND}'");
    let listed = server.list_ids_until(&waiting_on, Duration::from_secs(30), |ids| !ids.is_empty());
    assert!(!listed.is_empty(), "nothing listed for {waiting_on}");
    let waiting_on = format!("SagaWaiting = '{PROCESS_PAYMENT}'");
    let listed = server.list_ids_until(&waiting_on, Duration::from_secs(30), |ids| !ids.is_empty());
    assert!(!listed.is_empty(), "nothing listed for {waiting_on}");

    // Half way through, the split worker dies and comes back.
    tokio::time::sleep(Duration::from_secs(150).saturating_sub(outage.elapsed())).await;
    split.kill(split_worker);
    split.restart(&server, split_worker);

    tokio::time::sleep(Duration::from_secs(300).saturating_sub(outage.elapsed())).await;
    pg.start_again();
    eprintln!(
        "the payments database started again after {:.0?}",
        outage.elapsed()
    );

    for (deployment, orders, started) in [
        (&local, &local_orders, &local_started),
        (&split, &split_orders, &split_started),
        (&hurried, &undone, &undone_started),
    ] {
        deployment
            .assert_sagas_end_right(&client, orders, started, Duration::from_secs(300))
            .await;
    }
    // Started during the outage with a one-minute deadline: the payment never went through,
    // the saga gave up at its deadline, and its refund (of nothing) waited for the database.
    let histories = wait_all(&client, &late_started, Duration::from_secs(120), || {
        hurried.log_tails(20)
    })
    .await;
    assert_gave_up(
        &histories,
        Scenario::with_prefix("2").unwrap().path,
        "ProcessPayment gave up waiting on its infrastructure: the saga's deadline (1m) passed",
    );
    let stores = hurried.stores().await;
    for order in &late {
        let payments = stores
            .payments
            .as_ref()
            .unwrap()
            .for_order(&order.order_id)
            .await;
        assert_eq!(payments.unwrap(), vec![], "no debit, no credit");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_sqlite_file_is_waited_for() {
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut local = Deployment::new("l", dir.path());
    let mut split = Deployment::new("s", dir.path());
    local.start_all_in_one(&server);
    split.start(&server, SPLIT_IN_ONE);
    let client = server.client().await;
    // The files exist once the workers have migrated them; run one saga through each.
    let warm: Vec<Order> = orders_of("", 1);
    let warm_split: Vec<Order> = orders_of("", 1);
    let mut local_started = local.start_sagas(&client, &warm).await;
    let mut split_started = split.start_sagas(&client, &warm_split).await;
    wait_all(
        &client,
        &local_started,
        Duration::from_secs(60),
        String::new,
    )
    .await;
    wait_all(
        &client,
        &split_started,
        Duration::from_secs(60),
        String::new,
    )
    .await;

    // Another process holds the inventory files' write lock for 45 s.
    let mut locks = Vec::new();
    for deployment in [&local, &split] {
        use sqlx::Connection as _;
        let url = Service::Inventory.default_url(&deployment.data);
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        locks.push(conn);
    }
    let locked = Instant::now();
    let (local_orders, split_orders) = (mixed_orders(21), mixed_orders(21));
    local_started.extend(local.start_sagas(&client, &local_orders).await);
    split_started.extend(split.start_sagas(&client, &split_orders).await);
    let within = Duration::from_secs(150);
    let waiting = eventually(
        "a step waiting on the lock",
        within,
        &client,
        &split_started,
        || split.log_tails(20),
        |s| s.waiting.clone(),
    )
    .await;
    assert!(
        waiting.last_error.contains("inventory database"),
        "{waiting:?}"
    );

    tokio::time::sleep(Duration::from_secs(45).saturating_sub(locked.elapsed())).await;
    for mut conn in locks {
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    let all = |warm: &[Order], more: &[Order]| -> Vec<Order> {
        warm.iter().chain(more).cloned().collect()
    };
    for (deployment, orders, started) in [
        (&local, all(&warm, &local_orders), &local_started),
        (&split, all(&warm_split, &split_orders), &split_started),
    ] {
        let held = deployment
            .assert_sagas_end_right(&client, &orders, started, Duration::from_secs(240))
            .await;
        assert!(!held.is_empty(), "some orders completed");
    }
}
