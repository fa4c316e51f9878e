//! Seeing inside running sagas, against a real dev server and real `saga worker` processes: the
//! `state` query mid-saga and at the end, the search attributes behind `temporal workflow list`,
//! the Prometheus endpoint, the JSON logs, and the worker's refusal of a server that lacks the
//! search attributes.

mod support;

use saga_protos::scenario::{SCENARIOS, Scenario, activity::*, injected_failure};
use saga_worker::launch;
use saga_workflows::OrderSaga;
use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read as _, Write as _},
    time::{Duration, Instant},
};
use support::{DevServer, WorkerProcess, free_port, fresh_id, order_with_id};
use temporalio_client::{Client, WorkflowQueryOptions};

async fn state(client: &Client, workflow_id: &str) -> saga_workflows::SagaState {
    client
        .get_workflow_handle::<OrderSaga>(workflow_id)
        .query(OrderSaga::state, (), WorkflowQueryOptions::default())
        .await
        .unwrap_or_else(|e| panic!("querying {workflow_id}: {e}"))
}

async fn start(client: &Client, order_id: &str) -> launch::Started {
    let workflow_id = launch::workflow_id(order_id);
    launch::start(client, "order-saga", &workflow_id, &order_with_id(order_id))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_state_query_shows_a_saga_held_at_a_step_and_at_its_end() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    // Regular activities: a query is answered between workflow tasks, and with local
    // activities the whole saga is one task (or one per 8 s heartbeat), so only regular
    // activities show a saga held inside one step.
    let _worker = WorkerProcess::start(
        &server,
        data.path(),
        &[
            ("SAGA_FAULTS", "delay=ReserveInventory:3000"),
            ("SAGA_DISPATCH", "remote"),
        ],
    );
    let client = server.client().await;
    let success = start(&client, &fresh_id("")).await;
    let compensated_id = fresh_id("3");
    let compensated = start(&client, &compensated_id).await;

    // Held in ReserveInventory by the delay: the order is saved and paid, nothing undone yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let s = state(&client, &success.workflow_id).await;
        if s.current.as_deref() == Some(RESERVE_INVENTORY) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "never reached ReserveInventory: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held.phase, "running");
    let order = held.order.expect("the order so far");
    assert_eq!(order.order_status.as_deref(), Some("New"));
    assert!(order.payment.is_some(), "paid before reserving: {order:?}");
    assert!(order.inventory.is_none());
    assert!(held.compensations.is_empty());
    assert_eq!(held.last_error, None);

    // The CLI shows the same query.
    let out = server.cli(&[
        "workflow",
        "query",
        "--type",
        "state",
        "--workflow-id",
        &success.workflow_id,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(RESERVE_INVENTORY) && text.contains("running"),
        "{text}"
    );

    // At the end: both closed, and the query still answers (from a replay if need be).
    launch::wait(&client, &success).await.unwrap();
    launch::wait(&client, &compensated).await.unwrap();
    let done = state(&client, &success.workflow_id).await;
    assert_eq!(done.phase, "completed");
    assert_eq!(done.current.as_deref(), Some(NOTIFY));
    assert!(done.order.unwrap().inventory.is_some());
    assert!(done.compensations.is_empty());

    let undone = state(&client, &compensated.workflow_id).await;
    assert_eq!(undone.phase, "compensated");
    assert_eq!(
        undone.compensations,
        [RELEASE_INVENTORY, PROCESS_REFUND, UPDATE_ORDER_STATUS]
    );
    assert_eq!(undone.current.as_deref(), Some(UPDATE_ORDER_STATUS));
    let error = undone.last_error.unwrap();
    assert!(error.starts_with("ErrReserveInventory"), "{error}");
    assert_eq!(
        undone.order.unwrap().order_status.as_deref(),
        Some("Pending")
    );
}

/// `temporal workflow list` ids (JSON output), waiting until the visibility store has caught up
/// to `expected` or the timeout passes.
fn list_until(server: &DevServer, query: &str, expected: &BTreeSet<String>) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = server.cli(&["workflow", "list", "--query", query, "--output", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids = workflow_ids(&String::from_utf8_lossy(&out.stdout));
        if &ids == expected || Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn workflow_ids(json: &str) -> BTreeSet<String> {
    let values: Vec<serde_json::Value> = match serde_json::from_str(json) {
        Ok(serde_json::Value::Array(all)) => all,
        Ok(one) => vec![one],
        // JSON lines
        Err(_) => json
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    };
    values
        .iter()
        .map(|v| v["execution"]["workflowId"].as_str().unwrap().to_owned())
        .collect()
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn sample(metrics: &BTreeMap<String, f64>, name: &str, label: &str, value: &str) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.starts_with(&format!("{name}{{"))
                && series.contains(&format!("{label}=\"{value}\""))
        })
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_run_is_listed_counted_and_logged() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let worker = WorkerProcess::start_args(
        &server,
        data.path(),
        &[("SAGA_LOG_FORMAT", "json")],
        &["--metrics-port", &metrics_port.to_string()],
    );
    let client = server.client().await;

    // Every scenario once, the success scenario twice more.
    let mut orders: Vec<String> = SCENARIOS.iter().map(Scenario::fresh_order_id).collect();
    orders.push(fresh_id(""));
    orders.push(fresh_id(""));
    let mut started = Vec::new();
    for order_id in &orders {
        started.push(start(&client, order_id).await);
    }
    for s in &started {
        launch::wait(&client, s).await.unwrap();
    }

    // Search attributes: each outcome lists exactly its sagas; OrderId finds one saga.
    let mut by_outcome: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for order_id in &orders {
        by_outcome
            .entry(Scenario::for_order_id(order_id).outcome.as_str())
            .or_default()
            .insert(launch::workflow_id(order_id));
    }
    for (outcome, expected) in &by_outcome {
        let listed = list_until(&server, &format!("SagaOutcome='{outcome}'"), expected);
        assert_eq!(&listed, expected, "SagaOutcome='{outcome}'");
    }
    assert_eq!(by_outcome["compensated"].len(), 3);
    let one = BTreeSet::from([launch::workflow_id(&orders[4])]);
    assert_eq!(
        list_until(&server, &format!("OrderId='{}'", orders[4]), &one),
        one
    );
    assert!(list_until(&server, "SagaOutcome='running'", &BTreeSet::new()).is_empty());

    // Metrics: the saga counters equal what the scenarios' paths say ran.
    let metrics = scrape(metrics_port);
    for (outcome, sagas) in &by_outcome {
        assert_eq!(
            sample(&metrics, "saga_outcomes_total", "outcome", outcome),
            sagas.len() as f64,
            "saga_outcomes_total{{outcome={outcome}}}"
        );
    }
    let mut ran: BTreeMap<&str, f64> = BTreeMap::new();
    let mut compensated: BTreeMap<&str, f64> = BTreeMap::new();
    let mut compensation_failed: BTreeMap<&str, f64> = BTreeMap::new();
    for order_id in &orders {
        for &activity in Scenario::for_order_id(order_id).path {
            *ran.entry(activity).or_default() += 1.0;
            if [UPDATE_ORDER_STATUS, PROCESS_REFUND, RELEASE_INVENTORY].contains(&activity) {
                let counts = if injected_failure(activity, order_id).is_some() {
                    &mut compensation_failed
                } else {
                    &mut compensated
                };
                *counts.entry(activity).or_default() += 1.0;
            }
        }
    }
    for activity in [UPDATE_ORDER_STATUS, PROCESS_REFUND, RELEASE_INVENTORY] {
        let get = |m: &BTreeMap<&str, f64>| m.get(activity).copied().unwrap_or(0.0);
        assert_eq!(
            sample(&metrics, "saga_compensations_total", "activity", activity),
            get(&compensated),
            "compensations of {activity}"
        );
        assert_eq!(
            sample(
                &metrics,
                "saga_compensation_failures_total",
                "activity",
                activity
            ),
            get(&compensation_failed),
            "compensation failures of {activity}"
        );
    }
    for (activity, count) in &ran {
        assert_eq!(
            sample(&metrics, "saga_store_latency_count", "activity", activity),
            *count,
            "store transactions of {activity}"
        );
    }
    // The all-in-one worker runs the steps as local activities.
    for sdk_metric in [
        "temporal_workflow_completed",
        "temporal_workflow_failed",
        "temporal_local_activity_execution_latency_count",
        "temporal_worker_task_slots_available",
    ] {
        assert!(
            metrics.keys().any(|k| k.starts_with(sdk_metric)),
            "the SDK's {sdk_metric} is served"
        );
    }

    // JSON logs: every line an activity logged names its order and its saga.
    let log = worker.log_text();
    let mut logged: BTreeSet<String> = BTreeSet::new();
    let mut activity_lines = 0;
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        if !entry["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("saga_activities"))
        {
            continue;
        }
        activity_lines += 1;
        let span = &entry["span"];
        let order_id = span["order_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        let workflow_id = span["workflow_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(workflow_id, launch::workflow_id(order_id), "{line}");
        assert!(span["activity"].is_string(), "{line}");
        logged.insert(order_id.to_owned());
    }
    assert_eq!(
        activity_lines as f64,
        ran.values().sum::<f64>(),
        "one line per activity run"
    );
    assert_eq!(logged, orders.iter().cloned().collect());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_refuses_a_server_without_the_search_attributes() {
    let server = support::start_server_without_search_attributes();
    let data = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(&server, data.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the worker kept running: {}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = worker.log_text();
    assert!(!status.success(), "{log}");
    let commands: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("temporal operator search-attribute create"))
        .collect();
    assert_eq!(
        commands,
        [
            "temporal operator search-attribute create --namespace default --name OrderId --type Keyword",
            "temporal operator search-attribute create --namespace default --name SagaOutcome --type Keyword",
            "temporal operator search-attribute create --namespace default --name SagaWaiting --type Keyword",
        ],
        "{log}"
    );

    // The commands it prints are the fix.
    for command in commands {
        let args: Vec<&str> = command.split(' ').skip(1).collect();
        let out = server.cli(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _worker = WorkerProcess::start(&server, data.path(), &[]);
    let client = server.client().await;
    let started = start(&client, &fresh_id("")).await;
    let history = launch::wait(&client, &started).await.unwrap();
    assert!(launch::matches_design(
        started.workflow_id.trim_start_matches("order-"),
        &history
    ));
}
