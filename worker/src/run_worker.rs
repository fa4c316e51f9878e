//! `saga worker`: the Temporal worker that runs the workflow and the services' activities.

use crate::{
    config, connect,
    intake::admission::Admission,
    observability,
    roles::{DispatchChoice, QueuePlan, Roles, ServiceQueues},
};
use anyhow::Context as _;
use saga_activities::{Faults, Service, Stores, elsewhere::ElsewhereActivities};
use saga_delivery::RelayHandle;
use saga_workflows::{OrderSaga, Patience, SagaConfig};
use std::{sync::Arc, time::Duration};
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions, runtime::RuntimeOptions};

/// What one worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The workflow's task queue (and, with the `all` role, every activity's).
    pub task_queue: String,
    /// How long in-flight activities may take to finish after a shutdown signal.
    pub graceful_shutdown: Duration,
    /// How the workflow dispatches its steps (by topology unless told).
    pub dispatch: DispatchChoice,
    /// How long forward steps wait on infrastructure.
    pub patience: Patience,
    /// The parts of the saga this process runs.
    pub roles: Roles,
    /// Each service's task queue when the roles are split.
    pub queues: ServiceQueues,
    /// Serve Prometheus metrics on this port (`None`: no endpoint).
    pub metrics_port: Option<u16>,
    /// Slots, pollers, cache and eager dispatch (see [`crate::tuning`]); its runtime threads are
    /// for whoever builds the runtime (`saga worker` does, before it calls [`run`]).
    pub tuning: crate::tuning::Tuning,
    /// Take orders over HTTP on this address (see [`crate::intake`]; `None`: no intake).
    pub intake: Option<std::net::SocketAddr>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            task_queue: config::DEFAULT_TASK_QUEUE.to_owned(),
            graceful_shutdown: Duration::from_secs(10),
            dispatch: DispatchChoice::Auto,
            patience: Patience::default(),
            roles: Roles::default(),
            queues: ServiceQueues::default(),
            metrics_port: None,
            tuning: Default::default(),
            intake: None,
        }
    }
}

/// Opens the stores of this process's services, connects (retrying until the server answers)
/// and polls every queue of its roles until SIGINT or SIGTERM, then drains in-flight work and
/// returns.
///
/// The phases, in order, each refusing what it can before the next touches anything:
/// [`Plan::of`] checks the settings, [`open_stores`] opens the databases (and the webhook
/// relay), [`connect`] reaches the server and binds the intake, [`start_workers`] builds the
/// runtime and a worker per queue, and [`serve`] polls until a signal and shuts down in order.
pub async fn run(settings: WorkerSettings) -> anyhow::Result<()> {
    let plan = Plan::of(&settings)?;
    let (stores, faults, relay) = open_stores(&plan.services).await?;
    let (client, intake) = connect(&settings).await?;
    let (workers, intake) =
        start_workers(&settings, &plan, &stores, &faults, client.clone(), intake)?;
    serve(&settings, &plan, workers, intake, client).await?;
    if let Some(relay) = relay {
        relay.stop().await;
    }
    tracing::info!("worker stopped cleanly");
    Ok(())
}

/// What this process runs: the saga's settings, a worker per task queue, the services.
struct Plan {
    saga: SagaConfig,
    queues: Vec<QueuePlan>,
    services: Vec<Service>,
}

impl Plan {
    /// Refuses an impossible role choice or a malformed key before any database or the server
    /// is touched.
    fn of(settings: &WorkerSettings) -> anyhow::Result<Self> {
        let saga =
            settings
                .roles
                .saga_config(settings.dispatch, &settings.queues, settings.patience)?;
        let queues = settings
            .roles
            .plan(&settings.task_queue, &settings.queues)?;
        if settings.intake.is_some() && !settings.roles.runs_workflow() {
            anyhow::bail!(
                "--intake needs the workflow role: the intake starts sagas in the process that \
                 runs them"
            );
        }
        tracing::info!(
            "payload encryption {}",
            crate::encryption::describe(crate::encryption::keys_from_env()?.as_ref())
        );
        if settings.roles.runs_workflow() {
            tracing::info!(
                dispatch = %saga.dispatch,
                chosen = ?settings.dispatch,
                legacy_dispatch = %saga.legacy_dispatch,
                step_window = %humantime::format_duration(saga.patience.step_window),
                deadline = %humantime::format_duration(saga.patience.deadline),
                "saga settings"
            );
        }
        Ok(Self {
            saga,
            queues,
            services: settings.roles.services(),
        })
    }
}

/// Opens the stores of `services` (waiting for their databases), the fault injection, and the
/// webhook relay beside the notifications service ([`crate::webhooks`]).
async fn open_stores(
    services: &[Service],
) -> anyhow::Result<(Stores, Arc<Faults>, Option<RelayHandle>)> {
    let stores_config = config::stores_config()?;
    let faults = Arc::new(Faults::from_env()?);
    if !faults.is_empty() {
        tracing::warn!(?faults, "fault injection is ON (SAGA_FAULTS)");
    }
    // Webhook settings are checked before any database is touched.
    let delivery = saga_delivery::DeliveryConfig::from_env()?;
    let stores = Stores::open_when_available(&stores_config, services).await?;
    let (stores, relay) = crate::webhooks::attach_relay(stores, delivery)?;
    for &service in services {
        let db = stores_config.db(service);
        tracing::info!(
            service = service.name(),
            database = saga_activities::db::redact(&db.url),
            connections = db.max_connections,
            "store ready"
        );
    }
    Ok((stores, faults, relay))
}

/// Connects (retrying until the server answers), registers the missing search attributes, and
/// binds the intake's address, so a taken port stops the start with nothing half running.
async fn connect(
    settings: &WorkerSettings,
) -> anyhow::Result<(Client, Option<crate::intake::Listener>)> {
    let (conn_opts, client_opts) = connect::options()?;
    tracing::info!(
        address = %conn_opts.target,
        namespace = %client_opts.namespace,
        roles = %settings.roles,
        grpc_compression = ?conn_opts.grpc_compression,
        "connecting to Temporal"
    );
    let client = connect::connect_with_retry().await?;
    crate::search_attributes::ensure(&client).await?;
    let intake = match settings.intake {
        Some(address) => Some(crate::intake::bind(address).await?),
        None => None,
    };
    Ok((client, intake))
}

/// The intake's listener and the admission that bounds the sagas it puts in this process.
type Intake = (crate::intake::Listener, Admission);

/// Builds the Temporal runtime (with the metrics endpoint) and a worker per queue of `plan`.
fn start_workers(
    settings: &WorkerSettings,
    plan: &Plan,
    stores: &Stores,
    faults: &Arc<Faults>,
    client: Client,
    intake: Option<crate::intake::Listener>,
) -> anyhow::Result<(Vec<Worker>, Option<Intake>)> {
    let metrics = settings
        .metrics_port
        .map(observability::start_metrics)
        .transpose()?;
    if let Some(m) = &metrics {
        tracing::info!(address = %m.address, "serving Prometheus metrics on /metrics");
    }
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(observability::telemetry_options(metrics.as_ref()))
        .build()
        .map_err(|e| anyhow::anyhow!(e))?;
    let runtime =
        Runtime::from_current_tokio(runtime_options).context("starting the Temporal runtime")?;
    // Only the workflow worker sees a saga begin and leave its cache, so it reports both to
    // the intake's admission, which bounds the sagas the intake puts in this process.
    let intake = intake.map(|listener| (listener, Admission::new(settings.tuning.intake_sagas)));
    let mut workers = Vec::with_capacity(plan.queues.len());
    for queue in &plan.queues {
        let mut options = worker_options(queue, &plan.saga, stores, faults, settings)?;
        if let Some((_, admission)) = intake.as_ref().filter(|_| queue.workflow) {
            options.worker_interceptor(admission.interceptor());
        }
        let worker = Worker::new(&runtime, client.clone(), options)
            .with_context(|| format!("creating the worker for task queue {}", queue.task_queue))?;
        tracing::info!(
            task_queue = %queue.task_queue,
            workflow = queue.workflow,
            services = ?queue.services.iter().map(|s| s.name()).collect::<Vec<_>>(),
            tuning = ?settings.tuning,
            "polling"
        );
        workers.push(worker);
    }
    Ok((workers, intake))
}

/// Serves the intake and polls every worker until SIGINT or SIGTERM; then stops taking orders,
/// answers the ones being taken, and lets the workers finish what they began.
async fn serve(
    settings: &WorkerSettings,
    plan: &Plan,
    mut workers: Vec<Worker>,
    intake: Option<Intake>,
    client: Client,
) -> anyhow::Result<()> {
    let queues = &plan.queues;
    let dispatch = plan.saga.dispatch;
    let (stop_intake, intake_stopped) = tokio::sync::watch::channel(false);
    // Started with the worker's own client: the SDK offers eager start only to its workers.
    let intake = intake.map(|(listener, admission)| {
        tracing::info!(
            address = %listener.address,
            "taking orders on http://{}/orders (eager workflow start)",
            listener.address
        );
        tokio::spawn(crate::intake::serve(
            listener,
            client,
            settings.task_queue.clone(),
            dispatch,
            admission,
            intake_stopped,
        ))
    });
    let shutdowns: Vec<_> = workers.iter().map(Worker::shutdown_handle).collect();
    let grace = settings.graceful_shutdown;
    let mut shutdown = tokio::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!("{signal} received: finishing in-flight work, then exiting");
        // No new orders first, and the orders being taken answered, while the workers still
        // take eager starts (a worker shutting down no longer does); then the sagas begun are
        // finished.
        let _ = stop_intake.send(true);
        let intake_result = match intake {
            Some(intake) => match tokio::time::timeout(grace, intake).await {
                Ok(joined) => joined.context("order intake").and_then(|served| served),
                Err(_) => {
                    tracing::warn!("order intake: requests still open after {grace:?}; closing");
                    Ok(())
                }
            },
            None => Ok(()),
        };
        for shutdown in &shutdowns {
            shutdown();
        }
        intake_result
    });
    // The SDK's workers are not `Send` (workflows run on a local set), so they share this task
    // and are polled together rather than spawned.
    let results = futures_util::future::join_all(workers.iter_mut().map(|w| w.run())).await;
    for (queue, result) in queues.iter().zip(results) {
        result.with_context(|| format!("the worker on task queue {} stopped", queue.task_queue))?;
    }
    // After a signal the shutdown task has told the workers to stop, so it is done or about to
    // be; workers that stopped on their own leave it waiting for a signal that will not come.
    match tokio::time::timeout(Duration::from_secs(1), &mut shutdown).await {
        Ok(done) => done.context("shutdown")??,
        Err(_) => shutdown.abort(),
    }
    Ok(())
}

/// The options of the worker that polls `queue`: what it runs, its settings and tuning.
fn worker_options(
    queue: &QueuePlan,
    saga: &SagaConfig,
    stores: &Stores,
    faults: &Arc<Faults>,
    settings: &WorkerSettings,
) -> anyhow::Result<WorkerOptions> {
    let mut options = WorkerOptions::new(&queue.task_queue);
    if queue.workflow {
        options = options.register_workflow_with_factory(OrderSaga::factory(saga))?;
        if queue.services.is_empty() {
            // A workflow worker without the services: see `saga_activities::elsewhere`.
            options = options.register_activities(ElsewhereActivities);
        }
    }
    for &service in &queue.services {
        // Each service's activities only where that service's store was opened.
        options = match service {
            Service::Orders => options
                .register_activities(stores.order_activities(faults).context("orders store")?),
            Service::Payments => options.register_activities(
                stores
                    .payment_activities(faults)
                    .context("payments store")?,
            ),
            Service::Inventory => options.register_activities(
                stores
                    .inventory_activities(faults)
                    .context("inventory store")?,
            ),
            Service::Notifications => options.register_activities(
                stores
                    .notification_activities(faults)
                    .context("notifications store")?,
            ),
        };
    }
    let mut options = options
        .graceful_shutdown_period(settings.graceful_shutdown)
        .build();

    // --- Tuning: concurrency settings, kept apart from roles and queues above. ---
    settings.tuning.apply(&mut options);
    Ok(options)
}

/// Waits for SIGINT or SIGTERM; names the one that came.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
