//! Webhook delivery end to end: a real dev server, real `saga worker` processes, real SQLite
//! stores and real local HTTP receivers (the `saga webhook-receiver` command, and servers in this
//! test that misbehave on purpose). Signatures are checked here with this file's own HMAC, not
//! with the code under test.

use crate::support;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::any,
};
use hmac::{Hmac, Mac};
use saga_protos::{Order, scenario::SCENARIOS};
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use support::{
    DevServer, WorkerProcess, assert_design_paths, assert_stores_consistent, free_port,
    observe::{sample, scrape},
    open_stores, start_all, wait_all,
};

const SECRET: &str = "whsec_shared_test_secret";
const OPS_SECRET: &str = "whsec_ops_own_secret";

// ---- Receivers ----

/// One request as an in-test receiver saw it.
#[derive(Debug, Clone)]
struct Hit {
    event_id: String,
    attempt: u32,
    signature: String,
    body: Bytes,
    answer: u16,
}

/// How an in-test receiver answers a request: after `delay`, with `status`.
#[derive(Debug, Clone, Copy)]
struct Reply {
    status: u16,
    delay: Duration,
}

impl Reply {
    const OK: Reply = Reply {
        status: 200,
        delay: Duration::ZERO,
    };
    fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
        }
    }
    fn slow(delay: Duration) -> Self {
        Self { status: 200, delay }
    }
}

/// Decides a reply from the event id and how many requests for it came before this one.
type Policy = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<AtomicUsize>,
    policy: Policy,
}

/// A real HTTP server on a local port that records every request and answers by its policy.
struct TestReceiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

async fn record_and_reply(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event_id = header("saga-event-id");
    let before = state
        .hits
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.event_id == event_id)
        .count();
    let reply = (state.policy)(&event_id, before);
    state.hits.lock().unwrap().push(Hit {
        event_id,
        attempt: header("saga-delivery-attempt").parse().unwrap_or(0),
        signature: header("saga-signature"),
        body,
        answer: reply.status,
    });
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(reply.delay).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::from_u16(reply.status).unwrap()
}

/// A local port bound but not listening: it is this test's, and a connection to it is refused,
/// as to a receiver that is down, until [`TestReceiver::listen`] brings the receiver up on it.
/// (A port found free and let go could be taken by the dev servers of tests running alongside.)
struct HeldPort(tokio::net::TcpSocket);

impl HeldPort {
    fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("binding a local port");
        Self(socket)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().expect("a bound socket").port()
    }
}

impl TestReceiver {
    /// Up at once, on a port of its own.
    fn start(policy: Policy) -> Self {
        Self::listen(HeldPort::new(), policy)
    }

    /// Up on a port held until now.
    fn listen(held: HeldPort, policy: Policy) -> Self {
        let port = held.port();
        let listener = held
            .0
            .listen(1024)
            .unwrap_or_else(|e| panic!("listening on port {port}: {e}"));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .fallback(any(record_and_reply))
            .with_state(ReceiverState {
                hits: hits.clone(),
                in_flight: in_flight.clone(),
                policy,
            });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hooks/saga"),
            hits,
            in_flight,
            task,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn by_event(&self) -> BTreeMap<String, Vec<Hit>> {
        let mut by_event: BTreeMap<String, Vec<Hit>> = BTreeMap::new();
        for hit in self.hits() {
            by_event.entry(hit.event_id.clone()).or_default().push(hit);
        }
        by_event
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `saga webhook-receiver --json` verifying with `secret`; its output goes to a file.
struct CliReceiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl CliReceiver {
    /// On `port`, or with 0 on a port it picks (and reports).
    fn start(port: u16, secret: &str, out: PathBuf) -> Self {
        let file = std::fs::File::create(&out).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_saga"))
            .args(["webhook-receiver", "--json", "--port", &port.to_string()])
            .env("SAGA_WEBHOOK_SECRET", secret)
            .stdout(Stdio::from(file))
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting saga webhook-receiver");
        // It says so on stderr once it listens.
        let mut line = String::new();
        std::io::BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_once("listening on http://127.0.0.1:")
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(port, _)| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { child, port, out }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Every JSON line it printed so far.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the receiver exits cleanly on SIGTERM");
    }
}

impl Drop for CliReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- Checks ----

/// The `Saga-Signature` header is an HMAC-SHA256 of `"{t}.{body}"` with `secret`, computed here
/// independently of the code under test.
fn assert_signed(hit: &Hit, secret: &str) {
    let mut t = None;
    let mut v1 = None;
    for part in hit.signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("t="), v1.expect("v1="));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hit.body);
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        v1,
        "signature of {}",
        hit.event_id
    );
    let age = now_secs() - t.parse::<i64>().unwrap();
    assert!((0..120).contains(&age), "signed {age} s ago");
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The event id the README documents: UUIDv5 of `order_id|notification|status` in the design's
/// namespace.
fn expected_event_id(order_id: &str, status: &str) -> String {
    let namespace = uuid::Uuid::parse_str("8b03bc51-6db8-4d24-9e5b-0f8245f5f42e").unwrap();
    uuid::Uuid::new_v5(
        &namespace,
        format!("{order_id}|notification|{status}").as_bytes(),
    )
    .to_string()
}

/// The notification an order's saga publishes: `None` for the fully compensated scenarios.
fn expected_status(order_id: &str) -> Option<&'static str> {
    let scenario = saga_protos::scenario::Scenario::for_order_id(order_id);
    let notifies = scenario
        .path
        .contains(&saga_protos::scenario::activity::NOTIFY);
    notifies.then_some(if scenario.completes {
        "success"
    } else {
        "failed"
    })
}

/// The body is the documented event for `order`.
fn assert_event_body(event: &Value, order: &Order) {
    let status = expected_status(&order.order_id).unwrap();
    assert_eq!(event["order_id"], order.order_id.as_str(), "{event}");
    assert_eq!(event["status"], status, "{event}");
    assert_eq!(
        event["event_id"],
        expected_event_id(&order.order_id, status).as_str()
    );
    if status == "failed" {
        let error = event["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("Err"), "the failed compensation: {event}");
    } else {
        assert!(event["error"].is_null(), "{event}");
    }
    let summary = &event["order"];
    assert_eq!(
        summary["customer_id"],
        order.customer_id.as_str(),
        "{event}"
    );
    assert_eq!(
        summary["order_date"],
        saga_protos::canonical_order_date(&order.order_date)
            .unwrap()
            .as_str(),
        "{event}"
    );
    assert_eq!(
        summary["total"].as_f64().unwrap(),
        saga_protos::amount(order.total_cents())
    );
    assert_eq!(
        summary["items"].as_array().unwrap().len(),
        order.items.len()
    );
    // The status as the saga last saw it: absent when ProcessOrder itself failed (row 2).
    if status == "success" || !summary["order_status"].is_null() {
        assert_eq!(summary["order_status"], "New", "{event}");
    }
    let time = event["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339 UTC time: {time}"
    );
}

/// `saga webhooks …` on a worker's data.
fn saga_webhooks(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_saga"))
        .arg("webhooks")
        .args(args)
        .env("SAGA_DATA_DIR", data)
        .output()
        .expect("running saga webhooks")
}

/// Every delivery under `data`, from `saga webhooks list --json`.
fn deliveries(data: &Path) -> Vec<Value> {
    let out = saga_webhooks(data, &["list", "--json", "--limit", "100000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `done` holds for the deliveries under `data`.
async fn wait_deliveries(
    data: &Path,
    what: &str,
    timeout: Duration,
    worker_log: impl Fn() -> String,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = deliveries(data);
        if done(&all) {
            return all;
        }
        if Instant::now() > deadline {
            let mut states: BTreeMap<String, usize> = BTreeMap::new();
            for d in &all {
                *states
                    .entry(format!("{} {}", d["subscriber"], d["state"]))
                    .or_default() += 1;
            }
            panic!(
                "{what}: not within {timeout:?}; deliveries by subscriber and state: {states:?}\n\
                 --- worker log ---\n{}",
                worker_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_settled(d: &Value) -> bool {
    d["state"] != "pending"
}

fn sample_orders() -> Vec<Order> {
    (1..=7)
        .map(|n| {
            let path = format!(
                "{}/../testdata/scenario-{n}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            saga_protos::parse_order(&std::fs::read(&path).unwrap()).unwrap()
        })
        .collect()
}

// ---- Tests ----

/// The seven sample orders with four subscribers at once: the `saga webhook-receiver` command,
/// a receiver that answers 500 three times per event, one slower than the timeout on the first
/// attempt, and one (filtered to `failed`, with its own secret) that verifies with the wrong
/// secret until it is fixed and the dead deliveries are sent again from the CLI.
#[tokio::test(flavor = "multi_thread")]
async fn every_notification_arrives_signed_retried_and_resendable() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let data = data.path();

    let cli = CliReceiver::start(0, SECRET, data.join("cli-receiver.jsonl"));
    let flaky = TestReceiver::start(Arc::new(|_, before| {
        if before < 3 {
            Reply::status(500)
        } else {
            Reply::OK
        }
    }));
    let slow = TestReceiver::start(Arc::new(|_, before| {
        if before == 0 {
            Reply::slow(Duration::from_millis(1800))
        } else {
            Reply::OK
        }
    }));
    // The ops receiver verifies with the shared secret, but the worker signs its deliveries with
    // the ops secret from the subscriber file.
    let mut ops = CliReceiver::start(0, SECRET, data.join("ops-receiver.jsonl"));
    let config = data.join("webhooks.toml");
    std::fs::write(
        &config,
        format!(
            "[[subscriber]]\nname = \"ops\"\nurl = \"{}\"\nsecret_env = \"OPS_WEBHOOK_SECRET\"\n\
             statuses = [\"failed\"]\n",
            ops.url()
        ),
    )
    .unwrap();
    let urls = format!("{},{},{}", cli.url(), flaky.url, slow.url);
    let metrics_port = free_port();
    let worker = WorkerProcess::start_args(
        &server,
        data,
        &[
            ("SAGA_WEBHOOK_URLS", &urls),
            ("SAGA_WEBHOOK_SECRET", SECRET),
            ("SAGA_WEBHOOK_CONFIG", config.to_str().unwrap()),
            ("OPS_WEBHOOK_SECRET", OPS_SECRET),
            ("SAGA_WEBHOOK_TIMEOUT", "1s"),
            ("SAGA_WEBHOOK_RETRY_INITIAL", "100ms"),
            ("SAGA_WEBHOOK_RETRY_MAX", "400ms"),
            ("SAGA_WEBHOOK_MAX_ATTEMPTS", "5"),
            ("SAGA_WEBHOOK_LEASE", "5s"),
            ("SAGA_WEBHOOK_POLL", "100ms"),
        ],
        &["--metrics-port", &metrics_port.to_string()],
    );
    let client = server.client().await;
    let orders = sample_orders();
    let started = start_all(&client, &orders).await;
    let histories = wait_all(&client, &started, Duration::from_secs(120), || {
        worker.log_tail(40)
    })
    .await;
    assert_design_paths(&orders, &histories);

    let notifying: Vec<&Order> = orders
        .iter()
        .filter(|o| expected_status(&o.order_id).is_some())
        .collect();
    let failed = notifying
        .iter()
        .filter(|o| expected_status(&o.order_id) == Some("failed"))
        .count();
    assert_eq!(
        (notifying.len(), failed),
        (4, 3),
        "rows 2, 4, 6 and 7 notify"
    );
    let all = wait_deliveries(
        data,
        "every delivery settled",
        Duration::from_secs(60),
        || worker.log_tail(40),
        |all| all.len() == 3 * 4 + failed && all.iter().all(is_settled),
    )
    .await;
    let by_subscriber =
        |name: &str| -> Vec<&Value> { all.iter().filter(|d| d["subscriber"] == name).collect() };

    // The receiver command got each notification once, verified, on the first attempt.
    let lines = cli.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for order in &notifying {
        let line = lines
            .iter()
            .find(|l| l["event"]["order_id"] == order.order_id.as_str())
            .unwrap_or_else(|| panic!("{} did not arrive: {lines:?}", order.order_id));
        assert_eq!(line["verified"], true, "{line}");
        assert_eq!(line["duplicate"], false, "{line}");
        assert_eq!(line["attempt"], 1, "{line}");
        assert_event_body(&line["event"], order);
    }
    for d in by_subscriber(&cli.url()) {
        assert_eq!(
            (&d["state"], &d["attempts"]),
            (&"delivered".into(), &1.into())
        );
    }

    // 500, 500, 500, 200: four requests per event, one event id and one body throughout,
    // delivered exactly once.
    let flaky_events = flaky.by_event();
    assert_eq!(flaky_events.len(), 4);
    for order in &notifying {
        let id = expected_event_id(&order.order_id, expected_status(&order.order_id).unwrap());
        let hits = &flaky_events[&id];
        let seen: Vec<(u32, u16)> = hits.iter().map(|h| (h.attempt, h.answer)).collect();
        assert_eq!(seen, [(1, 500), (2, 500), (3, 500), (4, 200)], "{id}");
        for hit in hits {
            assert_signed(hit, SECRET);
            assert_eq!(hit.body, hits[0].body, "the same body on every attempt");
            assert_event_body(&serde_json::from_slice(&hit.body).unwrap(), order);
        }
    }
    for d in by_subscriber(&flaky.url) {
        assert_eq!(
            (&d["state"], &d["attempts"]),
            (&"delivered".into(), &4.into())
        );
        assert!(
            d["last_error"].as_str().unwrap().starts_with("HTTP 500"),
            "{d}"
        );
    }

    // Slower than the timeout on the first attempt: retried, delivered on a later one.
    for (id, hits) in slow.by_event() {
        assert!(hits.len() >= 2, "{id}: {hits:?}");
        for hit in &hits {
            assert_signed(hit, SECRET);
        }
    }
    for d in by_subscriber(&slow.url) {
        assert_eq!(d["state"], "delivered", "{d}");
        assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");
        assert!(
            d["last_error"].as_str().unwrap().contains("timed out"),
            "{d}"
        );
    }

    // The wrong secret fails the receiver's check: 401 on every attempt, then dead; only the
    // failed notifications were sent there.
    let rejected = ops.lines();
    assert_eq!(rejected.len(), 5 * failed, "{rejected:?}");
    for line in &rejected {
        assert_eq!(line["verified"], false, "{line}");
        assert_eq!(line["answer"], 401, "{line}");
        assert!(
            line["error"].as_str().unwrap().contains("does not match"),
            "{line}"
        );
    }
    let dead = by_subscriber("ops");
    assert_eq!(dead.len(), failed);
    for d in &dead {
        assert_eq!((&d["state"], &d["attempts"]), (&"dead".into(), &5.into()));
        assert_eq!(d["status"], "failed");
        assert!(
            d["last_error"].as_str().unwrap().starts_with("HTTP 401"),
            "{d}"
        );
    }

    // `saga status` shows each notification's deliveries, in JSON and as text.
    let order = notifying[0];
    let status = support::saga_status_json(data, &order.order_id);
    let notification = &status["notifications"][0];
    assert_eq!(notification["order_id"], order.order_id.as_str());
    assert!(notification["time"].is_string() && notification.get("error").is_some());
    let listed: BTreeSet<&str> = notification["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["subscriber"].as_str().unwrap())
        .collect();
    assert!(listed.contains(cli.url().as_str()) && listed.contains(flaky.url.as_str()));
    let text = Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["status", &order.order_id])
        .env("SAGA_DATA_DIR", data)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("webhook → ") && text.contains("delivered") && text.contains("attempt"),
        "{text}"
    );

    let metrics = scrape(metrics_port);
    assert_eq!(
        sample(
            &metrics,
            "saga_webhook_deliveries_total",
            "subscriber",
            &cli.url()
        ),
        4.0
    );
    assert_eq!(
        sample(
            &metrics,
            "saga_webhook_deliveries_total",
            "subscriber",
            &flaky.url
        ),
        4.0
    );
    assert_eq!(
        sample(
            &metrics,
            "saga_webhook_retries_total",
            "subscriber",
            &flaky.url
        ),
        12.0
    );
    assert!(
        sample(
            &metrics,
            "saga_webhook_retries_total",
            "subscriber",
            &slow.url
        ) >= 4.0
    );
    assert_eq!(
        sample(&metrics, "saga_webhook_retries_total", "subscriber", "ops"),
        4.0 * failed as f64
    );
    assert_eq!(
        sample(&metrics, "saga_webhook_dead_total", "subscriber", "ops"),
        failed as f64
    );

    // Fix the receiver's secret and send the dead deliveries again from the CLI.
    let listed = saga_webhooks(data, &["list", "--state", "dead"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.matches("DEAD since").count(), failed, "{listed}");
    ops.stop();
    let ops = CliReceiver::start(ops.port, OPS_SECRET, data.join("ops-fixed.jsonl"));
    let resent = saga_webhooks(data, &["resend", "--all", "--subscriber", "ops"]);
    assert!(resent.status.success(), "{resent:?}");
    let resent = String::from_utf8(resent.stdout).unwrap();
    assert_eq!(resent.matches("queued again").count(), failed, "{resent}");
    wait_deliveries(
        data,
        "the resent deliveries",
        Duration::from_secs(30),
        || worker.log_tail(40),
        |all| {
            all.iter()
                .filter(|d| d["subscriber"] == "ops")
                .all(|d| d["state"] == "delivered")
        },
    )
    .await;
    let arrived = ops.lines();
    assert_eq!(arrived.len(), failed, "{arrived:?}");
    for line in &arrived {
        assert_eq!(line["verified"], true, "{line}");
        assert_eq!(line["event"]["status"], "failed", "{line}");
    }
    // Nothing is dead any more, so there is nothing to resend.
    let again = saga_webhooks(data, &["resend", "--all"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to send again"));
    assert_eq!(
        sample(
            &scrape(metrics_port),
            "saga_webhook_deliveries_total",
            "subscriber",
            "ops"
        ),
        failed as f64
    );
}

/// The receiver is down while 28 sagas run: every saga still ends on its design path and the
/// stores hold exactly its rows. It comes back answering slowly, the worker is SIGKILLed while
/// it waits for answers, and a new worker on the same data delivers everything: nothing lost,
/// and the event sent twice (the one in flight at the kill) carries the same event id and body.
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_and_a_crash_lose_nothing() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let held_port = HeldPort::new();
    let url = format!("http://127.0.0.1:{}/hooks/saga", held_port.port());
    let env = [
        ("SAGA_WEBHOOK_URLS", url.as_str()),
        ("SAGA_WEBHOOK_SECRET", SECRET),
        ("SAGA_WEBHOOK_TIMEOUT", "5s"),
        ("SAGA_WEBHOOK_RETRY_INITIAL", "200ms"),
        ("SAGA_WEBHOOK_RETRY_MAX", "1s"),
        ("SAGA_WEBHOOK_LEASE", "6s"),
        ("SAGA_WEBHOOK_POLL", "100ms"),
    ];
    let mut first = WorkerProcess::start(&server, data, &env);
    let client = server.client().await;
    let orders: Vec<Order> = (0..28)
        .map(|i| support::order_with_id(&SCENARIOS[i % 7].fresh_order_id()))
        .collect();
    let expected: BTreeSet<String> = orders
        .iter()
        .filter_map(|o| {
            Some(expected_event_id(
                &o.order_id,
                expected_status(&o.order_id)?,
            ))
        })
        .collect();
    assert_eq!(expected.len(), 16);
    let started = start_all(&client, &orders).await;
    let histories = wait_all(&client, &started, Duration::from_secs(180), || {
        first.log_tail(40)
    })
    .await;
    assert_design_paths(&orders, &histories);
    let stores = open_stores(data).await;
    assert_stores_consistent(&stores, &orders, 1000).await;

    // The receiver stays away until every delivery has been tried and retried.
    let pending = wait_deliveries(
        data,
        "retries during the outage",
        Duration::from_secs(60),
        || first.log_tail(40),
        |all| all.len() == 16 && all.iter().all(|d| d["attempts"].as_i64() >= Some(2)),
    )
    .await;
    for d in &pending {
        assert_eq!(d["state"], "pending", "{d}");
        assert!(
            d["last_error"]
                .as_str()
                .unwrap()
                .contains("connection failed"),
            "{d}"
        );
    }

    // Back, but each answer takes 2 s: kill the worker while it waits for them.
    let receiver = TestReceiver::listen(
        held_port,
        Arc::new(|_, _| Reply::slow(Duration::from_secs(2))),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.in_flight.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no delivery reached the receiver"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let in_flight_at_kill: BTreeSet<String> =
        receiver.hits().into_iter().map(|h| h.event_id).collect();
    assert!(!in_flight_at_kill.is_empty());

    let mut second = WorkerProcess::start(&server, data, &env);
    let all = wait_deliveries(
        data,
        "every delivery after the restart",
        Duration::from_secs(60),
        || second.log_tail(40),
        |all| all.iter().all(|d| d["state"] == "delivered"),
    )
    .await;
    assert_eq!(all.len(), 16);
    let by_event = receiver.by_event();
    let seen: BTreeSet<String> = by_event.keys().cloned().collect();
    assert_eq!(
        seen, expected,
        "every notification arrived, and nothing else"
    );
    for (id, hits) in &by_event {
        for hit in hits {
            assert_signed(hit, SECRET);
            assert_eq!(hit.body, hits[0].body, "{id}: a repeat is the same event");
        }
    }
    // What was in flight when the worker died was sent again: at least once, never silently
    // less.
    for id in &in_flight_at_kill {
        assert!(by_event[id].len() >= 2, "{id} was in flight at the kill");
    }
    // SIGTERM stops the relay with the worker, cleanly.
    assert!(second.terminate(), "{}", second.log_tail(20));
    assert!(second.log_text().contains("webhook relay stopped"));
}

/// 1,000 sagas of all seven kinds on two worker processes sharing one data directory (two relays
/// on one outbox), against a receiver that fails a quarter of the requests and is slower than
/// the timeout on a tenth: every notification ends delivered or dead, none missing, none
/// delivered that the receiver did not accept.
#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_sagas_with_a_flaky_receiver_miss_nothing() {
    const SAGAS: usize = 1000;
    let seed = std::env::var("SAGA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("SAGA_TEST_SEED={seed}");
    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
    let receiver = TestReceiver::start(Arc::new(move |_, _| {
        let roll = rng.lock().unwrap().f64();
        if roll < 0.25 {
            Reply::status(500)
        } else if roll < 0.35 {
            Reply::slow(Duration::from_millis(900))
        } else {
            Reply::OK
        }
    }));
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let env = [
        ("SAGA_WEBHOOK_URLS", receiver.url.as_str()),
        ("SAGA_WEBHOOK_SECRET", SECRET),
        ("SAGA_WEBHOOK_TIMEOUT", "500ms"),
        ("SAGA_WEBHOOK_RETRY_INITIAL", "100ms"),
        ("SAGA_WEBHOOK_RETRY_MAX", "400ms"),
        ("SAGA_WEBHOOK_MAX_ATTEMPTS", "4"),
        ("SAGA_WEBHOOK_LEASE", "3s"),
        ("SAGA_WEBHOOK_POLL", "200ms"),
        ("SAGA_WEBHOOK_CONCURRENCY", "8"),
    ];
    let local = ["--dispatch", "local"];
    let workers = [
        WorkerProcess::start_args(&server, data, &env, &local),
        WorkerProcess::start_args(&server, data, &env, &local),
    ];
    let client = server.client().await;
    let orders: Vec<Order> = (0..SAGAS)
        .map(|i| support::order_with_id(&SCENARIOS[i % 7].fresh_order_id()))
        .collect();
    let expected: BTreeMap<String, &Order> = orders
        .iter()
        .filter_map(|o| {
            Some((
                expected_event_id(&o.order_id, expected_status(&o.order_id)?),
                o,
            ))
        })
        .collect();
    let started = start_all(&client, &orders).await;
    let diagnostics = || {
        workers
            .iter()
            .map(|w| w.log_tail(20))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let histories = wait_all(&client, &started, Duration::from_secs(600), diagnostics).await;
    assert_design_paths(&orders, &histories);

    let all = wait_deliveries(
        data,
        "every delivery settled",
        Duration::from_secs(180),
        diagnostics,
        |all| all.len() == expected.len() && all.iter().all(is_settled),
    )
    .await;
    // Requests cut off by the timeout may still be on their way into the receiver.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let by_event = receiver.by_event();
    let accepted: BTreeSet<String> = receiver
        .hits()
        .into_iter()
        .filter(|h| h.answer == 200)
        .map(|h| h.event_id)
        .collect();
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &all {
        let order_id = d["order_id"].as_str().unwrap();
        let id = expected_event_id(order_id, d["status"].as_str().unwrap());
        assert!(expected.contains_key(&id), "{d}");
        match d["state"].as_str().unwrap() {
            "delivered" => assert!(accepted.contains(&id), "delivered but never accepted: {d}"),
            "dead" => {
                assert_eq!(d["attempts"], 4, "{d}");
                assert!(d["last_error"].is_string(), "{d}");
            }
            other => panic!("{other}: {d}"),
        }
        // Every attempt the outbox counted reached the receiver once, numbered in order: no
        // attempt lost, none sent twice by two relays at once.
        let attempts: Vec<u32> = by_event[&id].iter().map(|h| h.attempt).collect();
        let counted = d["attempts"].as_u64().unwrap() as u32;
        assert_eq!(attempts, (1..=counted).collect::<Vec<_>>(), "{d}");
        *states.entry(d["state"].as_str().unwrap()).or_default() += 1;
    }
    let distinct: BTreeSet<(String, String)> = all
        .iter()
        .map(|d| (d["order_id"].to_string(), d["status"].to_string()))
        .collect();
    assert_eq!(
        distinct.len(),
        expected.len(),
        "one delivery per notification"
    );
    let hits = receiver.hits();
    for hit in &hits {
        assert!(
            expected.contains_key(&hit.event_id),
            "unexpected event {hit:?}"
        );
        assert_signed(hit, SECRET);
    }
    eprintln!(
        "{} notifications: {states:?}; {} requests reached the receiver",
        expected.len(),
        hits.len()
    );
    assert!(states.get("delivered").copied().unwrap_or(0) > expected.len() / 2);
}
