//! The split deployment: the workflow and each service in processes of their own, on their own
//! task queues, every store on PostgreSQL (one database per service, created and dropped by the
//! test on the machine's PostgreSQL, see `support::PgDatabases`).

use crate::support;

use futures_util::{StreamExt as _, stream};
use saga_activities::{Service, Stores};
use saga_protos::scenario::{SCENARIOS, Scenario};
use saga_worker::launch::{self, Started};
use saga_workflows::OrderSaga;
use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};
use support::{DevServer, PgDatabases, WorkerProcess, assert_consistent, order_with_id};
use temporalio_client::{Client, WorkflowFetchHistoryOptions};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

const ROLES: [(&str, Option<Service>); 5] = [
    ("workflow", None),
    ("orders", Some(Service::Orders)),
    ("payments", Some(Service::Payments)),
    ("inventory", Some(Service::Inventory)),
    ("notifications", Some(Service::Notifications)),
];

/// A `saga worker --role <role>` process that knows only its own service's database.
fn start_role(
    server: &DevServer,
    dbs: &PgDatabases,
    dir: &Path,
    role: &str,
    service: Option<Service>,
) -> WorkerProcess {
    let mut env = vec![("SAGA_DB_POOL_SIZE", "4")];
    if let Some(service) = service {
        env.push(dbs.env_of(service));
    }
    WorkerProcess::start_args(server, dir, &env, &["--role", role])
}

/// Each scheduled activity's type and the task queue it was scheduled on.
async fn scheduled_queues(client: &Client, workflow_id: &str) -> Vec<(String, String)> {
    let events = client
        .get_workflow_handle::<OrderSaga>(workflow_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .unwrap();
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => Some((
                a.activity_type.as_ref().unwrap().name.clone(),
                a.task_queue.as_ref().unwrap().name.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// Activities that needed more than one attempt (their process died under them, for one).
async fn retried_activities(client: &Client, workflow_id: &str) -> usize {
    let events = client
        .get_workflow_handle::<OrderSaga>(workflow_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| {
            matches!(&e.attributes,
                Some(Attributes::ActivityTaskStartedEventAttributes(a)) if a.attempt > 1)
        })
        .count()
}

fn service_of(activity: &str) -> &'static str {
    use saga_protos::scenario::activity::*;
    match activity {
        PROCESS_ORDER | UPDATE_ORDER_STATUS => "orders",
        PROCESS_PAYMENT | PROCESS_REFUND => "payments",
        RESERVE_INVENTORY | RELEASE_INVENTORY => "inventory",
        NOTIFY => "notifications",
        other => panic!("unknown activity {other}"),
    }
}

/// Every item's stock adds up: what is available plus what reservations still hold is the
/// starting stock, and nothing is below zero.
async fn assert_stock_adds_up(stores: &Stores, held: &BTreeMap<String, i64>) {
    let audit = stores.inventory.as_ref().unwrap().audit().await.unwrap();
    assert!(!audit.is_empty(), "some stock was reserved");
    for item in audit {
        assert!(item.available >= 0, "{item:?}");
        assert_eq!(
            item.available + item.reserved - item.released,
            1000,
            "reservations and releases of {item:?}"
        );
        let still_held = held.get(&item.item_id).copied().unwrap_or(0);
        assert_eq!(
            item.available,
            1000 - still_held,
            "stock of {} with {still_held} held by completed sagas",
            item.item_id
        );
    }
}

/// True when no service database was opened on the data directory's SQLite files.
fn no_sqlite_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains(".db"))
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_scenarios_with_every_role_in_its_own_process_on_postgres() {
    let Some(dbs) = PgDatabases::create("split7").await else {
        return;
    };
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<_> = ROLES
        .iter()
        .map(|&(role, service)| {
            let d = dir.path().join(role);
            (d.clone(), start_role(&server, &dbs, &d, role, service))
        })
        .collect();
    let client = server.client().await;

    let runs = SCENARIOS.iter().map(|scenario| {
        let client = client.clone();
        let order = order_with_id(&scenario.fresh_order_id());
        async move {
            let workflow_id = launch::workflow_id(&order.order_id);
            let started = launch::start(&client, "order-saga", &workflow_id, &order)
                .await
                .unwrap();
            let history =
                tokio::time::timeout(Duration::from_secs(120), launch::wait(&client, &started))
                    .await
                    .expect("the saga ends in time")
                    .unwrap();
            (order, started, history)
        }
    });
    let results = futures_util::future::join_all(runs).await;

    let stores = dbs.open_stores().await;
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    for (order, started, history) in &results {
        let scenario = Scenario::for_order_id(&order.order_id);
        assert!(
            launch::matches_design(&order.order_id, history),
            "{} ({}) ended {:?} along {:?}",
            order.order_id,
            scenario.name,
            history.closed,
            history.path
        );
        let scheduled = scheduled_queues(&client, &started.workflow_id).await;
        assert_eq!(scheduled.len(), scenario.path.len());
        for (activity, queue) in &scheduled {
            assert_eq!(queue, service_of(activity), "task queue of {activity}");
        }
        for (item, qty) in assert_consistent(&stores, &order.order_id).await {
            *held.entry(item).or_default() += qty;
        }
    }
    assert_stock_adds_up(&stores, &held).await;
    for (d, worker) in &workers {
        assert!(no_sqlite_files(d), "{} opened an SQLite store", d.display());
        assert!(
            !worker.log_text().contains("ERROR"),
            "{}",
            worker.log_text()
        );
    }

    drop(stores);
    drop(workers);
    dbs.drop_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_sagas_survive_sigkill_of_one_process_per_service() {
    let Some(dbs) = PgDatabases::create("splitkill").await else {
        return;
    };
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Two workflow processes and two processes of every service.
    let mut workers: Vec<(&str, WorkerProcess)> = Vec::new();
    for copy in 0..2 {
        for &(role, service) in &ROLES {
            let d = dir.path().join(format!("{role}-{copy}"));
            workers.push((role, start_role(&server, &dbs, &d, role, service)));
        }
    }
    let client = server.client().await;
    let stores = dbs.open_stores().await;

    let orders: Vec<_> = (0..300)
        .map(|i| order_with_id(&SCENARIOS[i % SCENARIOS.len()].fresh_order_id()))
        .collect();
    let started: Vec<Started> = stream::iter(&orders)
        .map(|order| {
            let client = client.clone();
            async move {
                let workflow_id = launch::workflow_id(&order.order_id);
                launch::start(&client, "order-saga", &workflow_id, order)
                    .await
                    .unwrap()
            }
        })
        .buffered(32)
        .collect()
        .await;

    // Once the sagas are well under way, SIGKILL the first process of every service: whatever
    // it was running is lost with it and must be retried elsewhere.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let paid = count_rows(dbs.url(Service::Payments), "payments").await;
        if paid >= 40 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {paid} payments");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut killed = Vec::new();
    for (role, worker) in workers.iter_mut() {
        if *role != "workflow" && !killed.contains(role) {
            worker.kill();
            killed.push(*role);
        }
    }
    assert_eq!(killed.len(), 4);

    let histories: Vec<_> = stream::iter(&started)
        .map(|s| {
            let client = client.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(150), launch::wait(&client, s))
                    .await
                    .expect("the saga ends in time")
                    .unwrap()
            }
        })
        .buffered(50)
        .collect()
        .await;

    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let mut retried = 0;
    for ((order, s), history) in orders.iter().zip(&started).zip(&histories) {
        assert!(
            launch::matches_design(&order.order_id, history),
            "{} ended {:?} along {:?}",
            order.order_id,
            history.closed,
            history.path
        );
        for (item, qty) in assert_consistent(&stores, &order.order_id).await {
            *held.entry(item).or_default() += qty;
        }
        retried += retried_activities(&client, &s.workflow_id).await;
    }
    assert_stock_adds_up(&stores, &held).await;
    // The kills hit activities in flight: they were retried on the surviving processes.
    assert!(retried > 0, "no activity was running on a killed process");
    eprintln!("{retried} activities were retried after the kills");

    drop(stores);
    drop(workers);
    dbs.drop_all().await;
}

async fn count_rows(url: &str, table: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    n
}

/// Runs `count` success-path sagas, at most `concurrency` at a time, and returns the wall time.
async fn timed_load(client: &Client, tag: &str, count: usize, concurrency: usize) -> Duration {
    let begin = Instant::now();
    let histories: Vec<_> = stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let order = order_with_id(&format!("4{tag}-{i:05}-{}", uuid::Uuid::new_v4()));
                let id = launch::workflow_id(&order.order_id);
                let started = launch::start(&client, "order-saga", &id, &order)
                    .await
                    .unwrap();
                let history = launch::wait(&client, &started).await.unwrap();
                (order.order_id, history)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = begin.elapsed();
    for (order_id, history) in &histories {
        assert!(launch::matches_design(order_id, history), "{order_id}");
    }
    elapsed
}

/// A measurement, not a check: sagas per second with one all-in-one worker on SQLite against
/// split roles on PostgreSQL (one and two processes per role), on one dev server. Run with
/// `cargo test -p saga-worker --test it -- --ignored --nocapture split::`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement; run by hand"]
async fn measure_throughput_all_in_one_and_split() {
    let count: usize = std::env::var("SAGA_MEASURE_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let concurrency = 50;
    let Some(dbs) = PgDatabases::create("measure").await else {
        return;
    };
    let server = DevServer::start();
    let client = server.client().await;
    let dir = tempfile::tempdir().unwrap();

    let mut report = Vec::new();
    {
        let _all = WorkerProcess::start(&server, &dir.path().join("all"), &[]);
        timed_load(&client, "warm", 20, concurrency).await;
        let t = timed_load(&client, "all", count, concurrency).await;
        report.push(("1 process, --role all, SQLite".to_owned(), t));
    }
    for copies in [1, 2] {
        let mut workers = Vec::new();
        for copy in 0..copies {
            for &(role, service) in &ROLES {
                let d = dir.path().join(format!("{role}-{copies}-{copy}"));
                workers.push(start_role(&server, &dbs, &d, role, service));
            }
        }
        timed_load(&client, "warm", 20, concurrency).await;
        let t = timed_load(&client, &format!("split{copies}"), count, concurrency).await;
        report.push((
            format!("{copies} process(es) per role, split, PostgreSQL"),
            t,
        ));
    }
    for (setup, t) in &report {
        eprintln!(
            "{setup}: {count} sagas in {:.1} s = {:.1} sagas/s",
            t.as_secs_f64(),
            count as f64 / t.as_secs_f64()
        );
    }
    drop(client);
    dbs.drop_all().await;
}
