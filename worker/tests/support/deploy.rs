//! Deployments of the saga for tests that change the world under it: an all-in-one worker or
//! split roles, each deployment on task queues of its own so that several share one dev server,
//! with processes that can be killed and started again.

use super::{DevServer, WorkerProcess};
use saga_activities::Service;
use saga_worker::launch::{self, Started};
use std::path::{Path, PathBuf};
use temporalio_client::Client;

/// The roles of a split deployment, one process each.
pub const SPLIT_ROLES: [&str; 5] = [
    "workflow",
    "orders",
    "payments",
    "inventory",
    "notifications",
];

pub struct Deployment {
    pub name: String,
    pub data: PathBuf,
    env: Vec<(String, String)>,
    processes: Vec<Process>,
}

struct Process {
    args: Vec<String>,
    worker: Option<WorkerProcess>,
}

impl Deployment {
    /// A deployment named `name` (its queues are `<name>-saga`, `<name>-orders`, …), its SQLite
    /// files under `dir/<name>` unless [`Self::database`] says otherwise.
    pub fn new(name: &str, dir: &Path) -> Self {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut env = vec![("SAGA_TASK_QUEUE".to_owned(), format!("{name}-saga"))];
        for service in Service::ALL {
            env.push((
                format!("SAGA_{}_QUEUE", service.name().to_ascii_uppercase()),
                format!("{name}-{}", service.name()),
            ));
        }
        Self {
            name: name.to_owned(),
            data,
            env,
            processes: Vec::new(),
        }
    }

    /// The workflow's task queue.
    pub fn task_queue(&self) -> String {
        format!("{}-saga", self.name)
    }

    /// Sets an environment variable of every process started from now on.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.set_env(key, value);
        self
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Puts `service`'s database at `url`.
    pub fn database(self, service: Service, url: &str) -> Self {
        self.env(service.url_env(), url)
    }

    /// Starts one `saga worker` process with `args` (e.g. `--role payments`); returns its index.
    pub fn start(&mut self, server: &DevServer, args: &[&str]) -> usize {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let worker = self.spawn(server, &args);
        self.processes.push(Process {
            args,
            worker: Some(worker),
        });
        self.processes.len() - 1
    }

    /// One process running every role (local dispatch unless the environment says otherwise).
    pub fn start_all_in_one(&mut self, server: &DevServer) -> usize {
        self.start(server, &[])
    }

    /// The five roles, one process each.
    pub fn start_split(&mut self, server: &DevServer) {
        for role in SPLIT_ROLES {
            self.start(server, &["--role", role]);
        }
    }

    fn spawn(&self, server: &DevServer, args: &[String]) -> WorkerProcess {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        WorkerProcess::start_args(server, &self.data, &env, &args)
    }

    /// SIGKILLs process `index`.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut worker) = self.processes[index].worker.take() {
            worker.kill();
        }
    }

    /// SIGKILLs every process of the deployment.
    pub fn kill_all(&mut self) {
        for index in 0..self.processes.len() {
            self.kill(index);
        }
    }

    /// Starts process `index` again with the arguments it had.
    pub fn restart(&mut self, server: &DevServer, index: usize) {
        self.kill(index);
        let worker = self.spawn(server, &self.processes[index].args);
        self.processes[index].worker = Some(worker);
    }

    /// The last lines of every process's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        self.processes
            .iter()
            .filter_map(|p| p.worker.as_ref())
            .map(|w| format!("--- {} ---\n{}", w.log.display(), w.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the sagas `started` for `orders` on this deployment, then asserts that each took
    /// its scenario's path and that the stores hold exactly its rows (stock starting at 1000).
    /// Returns the stock held per item, as [`super::assert_stores_consistent`] does.
    pub async fn assert_sagas_end_right(
        &self,
        client: &Client,
        orders: &[saga_protos::Order],
        started: &[Started],
        timeout: std::time::Duration,
    ) -> std::collections::BTreeMap<String, i64> {
        let histories = super::wait_all(client, started, timeout, || self.log_tails(20)).await;
        super::assert_design_paths(orders, &histories);
        super::assert_stores_consistent(&self.stores().await, orders, 1000).await
    }

    /// The deployment's four stores, opened beside its workers.
    pub async fn stores(&self) -> saga_activities::Stores {
        let db = |service: Service| {
            let url = self
                .env
                .iter()
                .find(|(k, _)| k == service.url_env())
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| service.default_url(&self.data));
            saga_activities::DbConfig::new(url)
        };
        let config = saga_activities::StoresConfig {
            orders: db(Service::Orders),
            payments: db(Service::Payments),
            inventory: db(Service::Inventory),
            notifications: db(Service::Notifications),
            default_stock: 1000,
        };
        saga_activities::Stores::open(&config, &Service::ALL)
            .await
            .expect("opening the deployment's stores")
    }

    /// Starts one saga per order on this deployment's queue, under `order-<order_id>`.
    pub async fn start_sagas(
        &self,
        client: &Client,
        orders: &[saga_protos::Order],
    ) -> Vec<Started> {
        use futures_util::{StreamExt as _, stream};
        let queue = self.task_queue();
        stream::iter(orders)
            .map(|order| {
                let queue = queue.clone();
                async move {
                    launch::start(client, &queue, &launch::workflow_id(&order.order_id), order)
                        .await
                        .expect("starting a saga")
                }
            })
            .buffered(16)
            .collect()
            .await
    }
}
