//! The design's seven scenarios, end to end: a real dev server, a real `saga worker` process,
//! real SQLite stores. Each sample order from `testdata/` is started with the `temporal` CLI,
//! exactly as the README tells users to, and judged by the server's own history and by what the
//! stores hold afterwards.

use crate::support;

use saga_protos::scenario::{SAGA_FAILED, Scenario};
use saga_worker::{
    history::Closed,
    launch::{self, Started},
};
use std::{collections::BTreeMap, path::PathBuf};
use support::{DevServer, WorkerProcess, assert_consistent, open_stores};

fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(file)
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_scenarios_started_from_the_temporal_cli_take_the_designs_paths() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(&server, data.path(), &[]);
    let client = server.client().await;

    let mut runs = Vec::new();
    for n in 1..=7 {
        let file = testdata(&format!("scenario-{n}.json"));
        let order = saga_protos::parse_order(&std::fs::read(&file).unwrap()).unwrap();
        let workflow_id = format!("cli-scenario-{n}");
        server.start_order_with_cli("order-saga", &workflow_id, &file);
        runs.push((order, workflow_id));
    }

    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let stores = open_stores(data.path()).await;
    for (order, workflow_id) in &runs {
        let started = Started {
            workflow_id: workflow_id.clone(),
            run_id: String::new(),
        };
        let history = launch::wait(&client, &started).await.unwrap();
        let scenario = Scenario::for_order_id(&order.order_id);
        assert_eq!(
            history.path, scenario.path,
            "path of {} ({})",
            order.order_id, scenario.name
        );
        match (&history.closed, scenario.completes) {
            (Closed::Completed, true) => {}
            (Closed::Failed { failure_type, .. }, false) => assert_eq!(failure_type, SAGA_FAILED),
            (other, _) => panic!("{} ended {other:?}", order.order_id),
        }
        for (item, qty) in assert_consistent(&stores, &order.order_id).await {
            *held.entry(item).or_default() += qty;
        }
    }

    // Only the completed order still holds stock; every compensated reservation came back.
    let inventory = stores.inventory.as_ref().unwrap();
    let mut named: Vec<String> = runs
        .iter()
        .flat_map(|(o, _)| o.items.iter().map(|i| i.item_id.clone()))
        .collect();
    named.sort();
    named.dedup();
    for item in named {
        let available = inventory.available(&item).await.unwrap();
        let expected = 1000 - held.get(&item).copied().unwrap_or(0);
        // Items only named by orders that failed before reserving were never stocked.
        assert!(
            available.is_none() || available == Some(expected),
            "stock of {item}: {available:?}, expected {expected}"
        );
    }
    assert!(
        !held.is_empty(),
        "the success scenario holds its reservation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_order_fails_fast_names_the_field_and_writes_nothing() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(&server, data.path(), &[]);
    let client = server.client().await;

    let bad = data.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"order_id":"47bad","order_date":"2018-10-19T10:50:16+08:00","customer_id":"c",
            "items":[{"item_id":"1","qty":0,"description":"x","unit_price":1.0}]}"#,
    )
    .unwrap();
    server.start_order_with_cli("order-saga", "bad-qty", &bad);
    let history = launch::wait(
        &client,
        &Started {
            workflow_id: "bad-qty".into(),
            run_id: String::new(),
        },
    )
    .await
    .unwrap();
    match &history.closed {
        Closed::Failed {
            failure_type,
            message,
        } => {
            assert_eq!(failure_type, "InvalidOrder");
            assert!(message.contains("items[0].qty"), "{message}");
        }
        other => panic!("expected an InvalidOrder failure, got {other:?}"),
    }
    assert!(
        history.path.is_empty(),
        "no activity ran: {:?}",
        history.path
    );
    let stores = open_stores(data.path()).await;
    assert!(stores.orders.unwrap().get("47bad").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn saga_start_wait_reports_the_path_and_saga_status_the_rows() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(&server, data.path(), &[]);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["start", "--wait"])
        .arg(testdata("scenario-5.json"))
        .env("TEMPORAL_ADDRESS", server.address())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("outcome: Failed (SagaFailed)"), "{stdout}");
    assert!(
        stdout.contains(
            "ProcessOrder → ProcessPayment → ReserveInventory → ReleaseInventory → \
             ProcessRefund → UpdateOrderStatus"
        ),
        "{stdout}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["status", "3b7dc768-6f32-495d-a140-3d330c246f50", "--json"])
        .env("SAGA_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["order"]["order_status"], "Pending");
    let types: Vec<&str> = status["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payment_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Debit", "Credit"]);
    let kinds: Vec<&str> = status["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["transaction_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Reserve", "Release"]);
    assert_eq!(status["notifications"], serde_json::json!([]));
}

/// The dispatch choices a history records: its patch markers, and whether the SDK's
/// `TemporalChangeVersion` upsert came with them.
async fn recorded_choices(
    client: &temporalio_client::Client,
    workflow_id: &str,
) -> (Vec<String>, bool) {
    use temporalio_common::protos::{
        coresdk::common::decode_change_marker_details,
        temporal::api::history::v1::history_event::Attributes,
    };
    let mut markers = Vec::new();
    let mut change_version = false;
    for event in support::history_events(client, workflow_id).await {
        match event.attributes {
            Some(Attributes::MarkerRecordedEventAttributes(m)) if m.marker_name == "core_patch" => {
                markers.push(decode_change_marker_details(&m.details).unwrap().0);
            }
            Some(Attributes::UpsertWorkflowSearchAttributesEventAttributes(u)) => {
                let fields = u.search_attributes.map(|s| s.indexed_fields);
                change_version |= fields.is_some_and(|f| f.contains_key("TemporalChangeVersion"));
            }
            _ => {}
        }
    }
    (markers, change_version)
}

/// Asserts that a success-scenario saga completed on the design's path.
async fn succeeded(client: &temporalio_client::Client, workflow_id: &str) {
    let started = Started {
        workflow_id: workflow_id.to_owned(),
        run_id: String::new(),
    };
    let history = launch::wait(client, &started).await.unwrap();
    assert_eq!(history.closed, Closed::Completed, "{workflow_id}");
    assert_eq!(
        history.path,
        saga_protos::scenario::SCENARIOS[6].path,
        "{workflow_id}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_names_the_dispatch_spares_the_saga_its_patch_marker() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(&server, data.path(), &[]);
    let client = server.client().await;
    let saga = |args: &[&str], dispatch: &str| {
        support::saga_cli(&server, args, &[("SAGA_DISPATCH", dispatch)])
    };

    // Named as the all-in-one worker runs the steps: the start event records the choice.
    let out = saga(&["scenarios", "--json"], "local");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["all_match"], true, "{report:#}");
    for row in report["scenarios"].as_array().unwrap() {
        let workflow_id = row["workflow_id"].as_str().unwrap();
        assert_eq!(
            recorded_choices(&client, workflow_id).await,
            (vec![], false),
            "{workflow_id}"
        );
    }

    // Named by the temporal CLI, as docs/operations.md shows it (an order of its own: each
    // saga here saves a different one).
    let mut order: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("scenario-7.json")).unwrap()).unwrap();
    order["order_id"] = saga_protos::scenario::SCENARIOS[6].fresh_order_id().into();
    let files = tempfile::tempdir().unwrap();
    let cli_order = files.path().join("cli-order.json");
    std::fs::write(&cli_order, order.to_string()).unwrap();
    let out = server.cli(&[
        "workflow",
        "execute",
        "--type",
        "OrderSaga",
        "--task-queue",
        "order-saga",
        "--workflow-id",
        "cli-named-local",
        "--input-file",
        cli_order.to_str().unwrap(),
        "--memo",
        "SagaDispatch=\"local\"",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        recorded_choices(&client, "cli-named-local").await,
        (vec![], false)
    );
    succeeded(&client, "cli-named-local").await;

    // Named wrong: the worker records a change at the first step, as an unnamed start records
    // its choice, and the saga takes its path all the same.
    let sample = testdata("scenario-7.json");
    let out = saga(
        &[
            "start",
            "--wait",
            "--workflow-id",
            "named-remote",
            sample.to_str().unwrap(),
        ],
        "remote",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        recorded_choices(&client, "named-remote").await,
        (vec!["saga-dispatch-local@0".to_owned()], true)
    );
    succeeded(&client, "named-remote").await;

    // Unnamed: the worker records its choice.
    let out = saga(&["scenarios", "--json"], "auto");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["all_match"], true, "{report:#}");
    let workflow_id = report["scenarios"][6]["workflow_id"].as_str().unwrap();
    assert_eq!(
        recorded_choices(&client, workflow_id).await,
        (vec!["saga-dispatch-local".to_owned()], true)
    );
}
