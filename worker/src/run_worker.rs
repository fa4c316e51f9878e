//! `saga worker`: the Temporal worker that runs the workflow and the services' activities.

use crate::{config, connect};
use anyhow::Context as _;
use saga_activities::{Faults, Service, Stores};
use saga_workflows::{OrderSaga, SagaConfig};
use std::{sync::Arc, time::Duration};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// What one worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub task_queue: String,
    /// How long in-flight activities may take to finish after a shutdown signal.
    pub graceful_shutdown: Duration,
    /// How the workflow dispatches its steps and to which queues.
    pub saga: SagaConfig,
    /// Slots, pollers, cache and eager dispatch (see [`crate::tuning`]).
    pub tuning: crate::tuning::Tuning,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            task_queue: config::DEFAULT_TASK_QUEUE.to_owned(),
            graceful_shutdown: Duration::from_secs(10),
            saga: SagaConfig::default(),
            tuning: Default::default(),
        }
    }
}

/// Opens the stores, connects (retrying until the server answers) and polls until SIGINT or
/// SIGTERM, then drains in-flight work and returns.
pub async fn run(settings: WorkerSettings) -> anyhow::Result<()> {
    let stores_config = config::stores_config()?;
    let faults = Arc::new(Faults::from_env()?);
    if !faults.is_empty() {
        tracing::warn!(?faults, "fault injection is ON (SAGA_FAULTS)");
    }
    let stores = Stores::open(&stores_config, &Service::ALL).await?;
    for service in Service::ALL {
        tracing::info!(
            service = service.name(),
            database = saga_activities::db::redact(&stores_config.db(service).url),
            "store ready"
        );
    }

    let (conn_opts, client_opts) = connect::options()?;
    tracing::info!(
        address = %conn_opts.target,
        namespace = %client_opts.namespace,
        "connecting to Temporal"
    );
    let client = connect::connect_with_retry().await?;
    tracing::info!(task_queue = %settings.task_queue, "connected; polling");

    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let saga = settings.saga.clone();
    tracing::info!(dispatch = ?saga.dispatch, routing = ?saga.routing, "saga dispatch");
    let mut options = WorkerOptions::new(&settings.task_queue)
        .register_workflow_with_factory(move || OrderSaga::with_config(saga.clone()))?;
    if let Some(a) = stores.order_activities(&faults) {
        options = options.register_activities(a);
    }
    if let Some(a) = stores.payment_activities(&faults) {
        options = options.register_activities(a);
    }
    if let Some(a) = stores.inventory_activities(&faults) {
        options = options.register_activities(a);
    }
    if let Some(a) = stores.notification_activities(&faults) {
        options = options.register_activities(a);
    }
    let mut options = options
        .graceful_shutdown_period(settings.graceful_shutdown)
        .build();

    // --- Tuning: concurrency settings, kept apart from roles and queues above. ---
    settings.tuning.apply(&mut options);
    tracing::info!(tuning = ?settings.tuning, "worker tuning");

    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;

    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!("{signal} received: finishing in-flight work, then exiting");
        shutdown();
    });
    worker.run().await.context("worker stopped")?;
    tracing::info!("worker stopped cleanly");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
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
