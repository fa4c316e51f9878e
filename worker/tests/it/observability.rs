//! Seeing inside running sagas, against a real dev server and real `saga worker` processes: the
//! `state` query mid-saga and at the end, the search attributes behind `temporal workflow list`,
//! the Prometheus endpoint, the JSON logs, and the search attributes on a plain dev server: the
//! worker registers them, or prints the commands to run when the server refuses.

use crate::support;

use saga_protos::scenario::{SCENARIOS, Scenario, activity::*, injected_failure};
use saga_worker::launch;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};
use support::{
    DevServer, WorkerProcess, free_port, fresh_id,
    observe::{sample, scrape, state},
    order_with_id, saga_cli,
};
use temporalio_client::Client;

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
        let listed = server.list_ids_until(
            &format!("SagaOutcome='{outcome}'"),
            Duration::from_secs(30),
            |ids| ids == expected,
        );
        assert_eq!(&listed, expected, "SagaOutcome='{outcome}'");
    }
    assert_eq!(by_outcome["compensated"].len(), 3);
    let one = BTreeSet::from([launch::workflow_id(&orders[4])]);
    assert_eq!(
        server.list_ids_until(
            &format!("OrderId='{}'", orders[4]),
            Duration::from_secs(30),
            |ids| ids == &one
        ),
        one
    );
    assert!(
        server
            .list_ids_until("SagaOutcome='running'", Duration::from_secs(30), |ids| ids
                == &BTreeSet::new())
            .is_empty()
    );

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
        let fields = &entry["fields"];
        let order_id = fields["order_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        let workflow_id = fields["workflow_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(workflow_id, launch::workflow_id(order_id), "{line}");
        assert!(fields["activity"].is_string(), "{line}");
        logged.insert(order_id.to_owned());
    }
    assert_eq!(
        activity_lines as f64,
        ran.values().sum::<f64>(),
        "one line per activity run"
    );
    assert_eq!(logged, orders.iter().cloned().collect());
}

/// The custom search attributes the server lists.
fn registered_attributes(server: &DevServer) -> BTreeSet<String> {
    let out = server.cli(&["operator", "search-attribute", "list", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["customAttributes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_plain_dev_server_the_worker_registers_the_search_attributes_and_every_scenario_runs()
{
    // `temporal server start-dev --headless --port P`, as Temporal's docs start it.
    let server = support::start_server_without_search_attributes();
    let wanted: BTreeSet<String> = saga_workflows::visibility::SEARCH_ATTRIBUTES
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert!(registered_attributes(&server).is_disjoint(&wanted));

    let data = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(&server, data.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !worker.log_text().contains("registered search attributes") {
        assert!(
            worker.is_running(),
            "the worker exited: {}",
            worker.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "no registration logged: {}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(registered_attributes(&server).is_superset(&wanted));

    // The seven scenarios, through `saga scenarios --json`, right after the registration.
    let out = saga_cli(&server, &["scenarios", "--json"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        worker.log_tail(20)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["all_match"], true, "{report:#}");
    let rows = report["scenarios"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let client = server.client().await;
    for (row, scenario) in rows.iter().zip(&SCENARIOS) {
        assert_eq!(row["scenario"], scenario.name);
        assert_eq!(row["matches_design"], true, "{row}");
        assert_eq!(row["path"], serde_json::json!(scenario.path), "{row}");
        // The fresh attributes were usable at once: no workflow task failed on an upsert.
        let workflow_id = row["workflow_id"].as_str().unwrap();
        let task_failures = support::history_events(&client, workflow_id)
            .await
            .iter()
            .filter(|e| {
                e.event_type()
                    == temporalio_common::protos::temporal::api::enums::v1::EventType::WorkflowTaskFailed
            })
            .count();
        assert_eq!(task_failures, 0, "{workflow_id}");
    }

    // The list query by outcome finds exactly the compensated sagas.
    let compensated: BTreeSet<String> = rows
        .iter()
        .zip(&SCENARIOS)
        .filter(|(_, s)| s.outcome.as_str() == "compensated")
        .map(|(row, _)| row["workflow_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(compensated.len(), 3);
    assert_eq!(
        server.list_ids_until(
            "SagaOutcome='compensated'",
            Duration::from_secs(20),
            |ids| ids.len() >= 3
        ),
        compensated
    );
    let order_id = rows[6]["order_id"].as_str().unwrap();
    assert_eq!(
        server.list_ids_until(
            &format!("OrderId='{order_id}'"),
            Duration::from_secs(20),
            |ids| !ids.is_empty()
        ),
        BTreeSet::from([rows[6]["workflow_id"].as_str().unwrap().to_owned()])
    );

    // The table a person reads fits a 100-column terminal; only the links may be longer, and
    // they stand alone on their lines.
    let out = saga_cli(&server, &["scenarios"], &[("COLUMNS", "100")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("all 7 scenarios took the design's path"),
        "{text}"
    );
    for line in text.lines() {
        if line.trim_start().starts_with("http://") {
            assert!(!line.trim().contains(' '), "{line}");
        } else {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("http://"))
            .count(),
        7,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_server_refuses_to_register_them_the_commands_to_run_are_printed() {
    let server = support::start_server_without_search_attributes();
    // A SQL visibility store has ten Keyword columns per namespace: with ten taken, the server
    // refuses to add another, as a server without operator rights would.
    let mut fill = vec!["operator", "search-attribute", "create"];
    let names: Vec<String> = (1..=10).map(|i| format!("Filler{i:02}")).collect();
    for name in &names {
        fill.extend(["--name", name, "--type", "Keyword"]);
    }
    let out = server.cli(&fill);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<String> = saga_workflows::visibility::SEARCH_ATTRIBUTES
        .iter()
        .map(|(name, kind)| {
            format!(
                "temporal operator search-attribute create --namespace default --name {name} \
                 --type {kind}"
            )
        })
        .collect();
    let commands_in = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("temporal operator search-attribute create"))
            .map(str::to_owned)
            .collect()
    };

    // `saga start` refuses before starting anything, exit status 2, with the commands.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/scenario-7.json");
    let out = saga_cli(&server, &["start", sample], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused to register them"), "{stderr}");
    assert!(
        stderr.contains("more than 10"),
        "the server's reason: {stderr}"
    );
    assert_eq!(commands_in(&stderr), expected, "{stderr}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(server.list_ids("WorkflowType='OrderSaga'").is_empty());

    // So does the worker, before it polls.
    let data = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(&server, data.path(), &[]);
    let status = worker
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the worker kept running: {}", worker.log_text()));
    let log = worker.log_text();
    assert_eq!(status.code(), Some(2), "{log}");
    assert_eq!(commands_in(&log), expected, "{log}");

    // The commands it prints are the fix, once the namespace has room.
    let out = server.cli(&[
        "operator",
        "search-attribute",
        "remove",
        "--yes",
        "--name",
        &names[0],
        "--name",
        &names[1],
        "--name",
        &names[2],
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for command in &expected {
        let args: Vec<&str> = command.split(' ').skip(1).collect();
        let out = server.cli(&args);
        assert!(
            out.status.success(),
            "{command}: {}",
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
