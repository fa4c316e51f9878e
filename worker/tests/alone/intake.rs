//! The order intake (`saga worker --intake ADDR`) against a real dev server and a real worker:
//! the seven scenarios posted as orders run the design's paths with the right rows, the server
//! accepted each saga's eager start (its first workflow task handed back in the start reply), a repeated post starts
//! nothing new, a bad order is refused naming its field with nothing started or written, and the
//! worker refuses an intake it cannot serve. Orders beyond the worker's places for posted sagas
//! wait at the door and all run, each started eagerly.

use crate::support;

use saga_protos::scenario::SCENARIOS;
use saga_worker::history::Closed;
use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use support::{
    DevServer, WorkerProcess, assert_consistent, assert_design_paths, free_port, history_events,
    observe::{scrape, total},
    open_stores, order_with_id, row_counts, wait_all, wait_for_intake,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType, history::v1::history_event::Attributes,
};

/// Posts `body` to the intake; returns the status and the JSON answer.
async fn post(intake: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{intake}/orders"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the intake answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

/// Waits for every saga of `started` to close, then checks its path against the design and the
/// stores' rows of its order.
async fn assert_all_ran_the_design(
    client: &temporalio_client::Client,
    worker: &WorkerProcess,
    data: &std::path::Path,
    orders: &[saga_protos::Order],
    started: &[saga_worker::launch::Started],
) {
    let histories = wait_all(client, started, Duration::from_secs(120), || {
        worker.log_text()
    })
    .await;
    assert_design_paths(orders, &histories);
    let stores = open_stores(data).await;
    for order in orders {
        assert_consistent(&stores, &order.order_id).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn posted_orders_run_the_design_started_eagerly_once_each() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let intake = format!("127.0.0.1:{}", free_port());
    let mut worker = WorkerProcess::start_args(&server, data.path(), &[], &["--intake", &intake]);
    wait_for_intake(&intake, &worker);
    let client = server.client().await;

    // Every scenario of the design, posted as a shop's front end would.
    let orders: Vec<_> = SCENARIOS
        .iter()
        .map(|s| order_with_id(&s.fresh_order_id()))
        .collect();
    let mut started = Vec::new();
    for order in &orders {
        let (status, taken) = post(&intake, serde_json::to_vec(order).unwrap()).await;
        assert_eq!(status, 202, "{taken}");
        let workflow_id = taken["workflow_id"].as_str().unwrap().to_owned();
        let run_id = taken["run_id"].as_str().unwrap().to_owned();
        assert_eq!(workflow_id, format!("order-{}", order.order_id));
        assert!(!run_id.is_empty(), "{taken}");
        assert!(
            taken["web_ui"].as_str().unwrap().contains(&workflow_id),
            "{taken}"
        );
        started.push(saga_worker::launch::Started {
            workflow_id,
            run_id,
        });
    }
    assert_all_ran_the_design(&client, &worker, data.path(), &orders, &started).await;

    // Eager start: the server says in the start event that it handed the first workflow task
    // back in the start reply. A saga started through the server, beside them, says it was not.
    let through_server = order_with_id(&SCENARIOS[6].fresh_order_id());
    let queued = saga_worker::launch::start(
        &client,
        "order-saga",
        &format!("order-{}", through_server.order_id),
        &through_server,
    )
    .await
    .unwrap();
    saga_worker::launch::wait(&client, &queued).await.unwrap();
    for (s, eager) in started.iter().map(|s| (s, true)).chain([(&queued, false)]) {
        let events = history_events(&client, &s.workflow_id).await;
        let kinds: Vec<_> = events.iter().take(3).map(|e| e.event_type()).collect();
        assert_eq!(
            kinds,
            [
                EventType::WorkflowExecutionStarted,
                EventType::WorkflowTaskScheduled,
                EventType::WorkflowTaskStarted
            ],
            "{}",
            s.workflow_id
        );
        let Some(Attributes::WorkflowExecutionStartedEventAttributes(start)) =
            &events[0].attributes
        else {
            panic!("{}: no start attributes", s.workflow_id)
        };
        assert_eq!(
            start.eager_execution_accepted, eager,
            "{}: eager start accepted",
            s.workflow_id
        );
    }

    // The same order again, after its saga closed: that saga is the answer, nothing starts.
    let rows_before = row_counts(data.path()).await;
    let (status, again) = post(&intake, serde_json::to_vec(&orders[6]).unwrap()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["already_started"], true, "{again}");
    assert_eq!(again["workflow_id"], started[6].workflow_id.as_str());
    assert_eq!(again["run_id"], started[6].run_id.as_str());

    // A bad order: refused naming the field; no saga, no row.
    let mut bad = order_with_id(&SCENARIOS[6].fresh_order_id());
    bad.items[0].qty = -2.0;
    let (status, refused) = post(&intake, serde_json::to_vec(&bad).unwrap()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["field"], "items[0].qty", "{refused}");
    let (status, refused) = post(&intake, b"{\"order_id\": ".to_vec()).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("invalid order"),
        "{refused}"
    );
    let never = saga_worker::launch::history(&client, &format!("order-{}", bad.order_id)).await;
    assert!(never.is_err(), "a saga was started for a refused order");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        row_counts(data.path()).await,
        rows_before,
        "rows were written"
    );

    // SIGTERM: the intake closes and the worker exits cleanly.
    assert!(worker.terminate(), "{}", worker.log_text());
    assert!(std::net::TcpStream::connect(&intake).is_err());
    let history = saga_worker::launch::history(&client, &started[6].workflow_id)
        .await
        .unwrap();
    assert_eq!(history.closed, Closed::Completed);
}

/// Room for two posted sagas (`SAGA_INTAKE_SAGAS=2`) and 42 orders posted at once: the rest
/// wait at the door (the gauges show orders waiting and never more than two sagas in the
/// worker, and none went ahead without a place), every post is answered 202, every saga starts
/// eagerly and runs its design path, and
/// once they have ended every place is free again (each saga gave its place back when it left
/// the worker's cache).
#[tokio::test(flavor = "multi_thread")]
async fn orders_beyond_the_places_wait_at_the_door_and_all_run_eagerly() {
    const ORDERS: usize = 42;
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let intake = format!("127.0.0.1:{}", free_port());
    let metrics_port = free_port();
    let worker = WorkerProcess::start_args(
        &server,
        data.path(),
        &[("SAGA_INTAKE_SAGAS", "2")],
        &[
            "--intake",
            &intake,
            "--metrics-port",
            &metrics_port.to_string(),
        ],
    );
    wait_for_intake(&intake, &worker);
    let client = server.client().await;

    // The gauges, read every few milliseconds while the orders go in.
    let posting = Arc::new(AtomicBool::new(true));
    let gauges = std::thread::spawn({
        let posting = posting.clone();
        move || {
            let mut seen = Vec::new();
            while posting.load(Ordering::SeqCst) {
                let metrics = scrape(metrics_port);
                seen.push((
                    total(&metrics, "saga_intake_sagas"),
                    total(&metrics, "saga_intake_waiting"),
                ));
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        }
    });
    let orders: Vec<_> = (0..ORDERS)
        .map(|i| order_with_id(&SCENARIOS[i % SCENARIOS.len()].fresh_order_id()))
        .collect();
    let answers = futures_util::future::join_all(
        orders
            .iter()
            .map(|order| post(&intake, serde_json::to_vec(order).unwrap())),
    )
    .await;
    posting.store(false, Ordering::SeqCst);
    let seen = gauges.join().unwrap();

    let mut started = Vec::new();
    for (status, taken) in answers {
        assert_eq!(status, 202, "{taken}");
        started.push(saga_worker::launch::Started {
            workflow_id: taken["workflow_id"].as_str().unwrap().to_owned(),
            run_id: taken["run_id"].as_str().unwrap().to_owned(),
        });
    }
    let most_in_worker = seen.iter().map(|&(sagas, _)| sagas).fold(0.0, f64::max);
    let most_waiting = seen.iter().map(|&(_, waiting)| waiting).fold(0.0, f64::max);
    assert!(most_in_worker <= 2.0, "{seen:?}");
    assert!(most_waiting >= 1.0, "no order waited: {seen:?}");

    assert_all_ran_the_design(&client, &worker, data.path(), &orders, &started).await;
    for s in &started {
        let events = history_events(&client, &s.workflow_id).await;
        let Some(Attributes::WorkflowExecutionStartedEventAttributes(start)) =
            &events[0].attributes
        else {
            panic!("{}: no start attributes", s.workflow_id)
        };
        assert!(start.eager_execution_accepted, "{}", s.workflow_id);
    }

    // None went ahead without a place (through the server's queue, outside the bound).
    assert_eq!(
        total(&scrape(metrics_port), "saga_intake_unplaced_total"),
        0.0
    );

    // Every saga has ended and left the cache: no place is held, no order waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = scrape(metrics_port);
        let now = (
            total(&metrics, "saga_intake_sagas"),
            total(&metrics, "saga_intake_waiting"),
        );
        if now == (0.0, 0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "places still held: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn an_intake_it_cannot_serve_stops_the_worker_with_the_reason() {
    // Without the workflow role the process could not run the sagas it starts.
    let out = Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["worker", "--role", "orders", "--intake", "127.0.0.1:0"])
        .env("TEMPORAL_ADDRESS", "127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--intake needs the workflow role"),
        "{stderr}"
    );

    // A port already taken: the worker stops before polling, naming the address.
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut worker = WorkerProcess::start_args(&server, data.path(), &[], &["--intake", &address]);
    let status = worker
        .wait_exit(Duration::from_secs(60))
        .expect("the worker exits");
    assert!(!status.success());
    let log = worker.log_text();
    assert!(
        log.contains(&format!("order intake: cannot listen on {address}")),
        "{log}"
    );
}
