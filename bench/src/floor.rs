//! `saga-floor`: a worker whose `OrderSaga` does no work of its own and returns its order.
//!
//! Driven by `saga-bench --floor`, it measures what the server alone spends on the smallest
//! workflow there is (a start, one workflow task, a completion: five history events), on the
//! same server and with the same load generator as the real sagas. No worker of any SDK can
//! take a saga through that server faster, so its throughput and latency are the floor the
//! comparison in docs/performance.md is read against.
//!
//! `--patches N` and `--upserts N` add what a saga records beyond its steps (a patch marker
//! with the `TemporalChangeVersion` upsert the SDK adds to it; a search attribute upsert), so
//! that the server's CPU per saga can be read off for each kind of event.
//! `--local-steps N` adds N local activities that do nothing (no store, no log line): the SDK's
//! own cost of a local step, in the worker's CPU, beside what the real saga's steps cost.
//!
//! `--intake ADDR` serves the worker's order intake (`saga worker --intake`) in front of it, so
//! that posted orders start eagerly: the floor of the intake's path, as `saga-bench --floor
//! --intake` drives it.

use anyhow::Context as _;
use clap::Parser;
use saga_worker::{intake, tuning::Tuning};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use temporalio_common::{data_converters::RawValue, search_attributes::SearchAttributeKey};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    LocalActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
    runtime::RuntimeOptions,
};

/// A worker whose `OrderSaga` does no work of its own: the floors, for `saga-bench --floor`.
#[derive(Debug, Parser)]
#[command(name = "saga-floor", version)]
struct Cli {
    /// Task queue to poll.
    #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
    task_queue: String,
    /// Patch markers per run (`ctx.patched`), each with its `TemporalChangeVersion` upsert.
    #[arg(long, default_value_t = 0)]
    patches: usize,
    /// Search attribute upserts per run (`SagaWaiting`, which the bench server registers).
    #[arg(long, default_value_t = 0)]
    upserts: usize,
    /// Local activities per run, one after another, each returning the order it is given.
    #[arg(long, default_value_t = 0)]
    local_steps: usize,
    /// Serve the order intake on this address (as `saga worker --intake` does): posted orders
    /// start eagerly, through this worker's own client.
    #[arg(long)]
    intake: Option<SocketAddr>,
}

/// The order saga's contract (its type name, the order as input and answer) with no work in it.
#[workflow]
#[derive(Default)]
struct NoStepSaga {
    patches: usize,
    upserts: usize,
    local_steps: usize,
}

/// The step `--local-steps` runs: nothing but the SDK's own work for a local activity.
struct EmptySteps;

#[activities]
impl EmptySteps {
    #[activity(name = "EmptyStep")]
    async fn empty_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: RawValue,
    ) -> Result<RawValue, ActivityError> {
        Ok(order)
    }
}

const SAGA_WAITING: SearchAttributeKey<String> = SearchAttributeKey::keyword("SagaWaiting");

#[workflow_methods]
impl NoStepSaga {
    #[run(name = "OrderSaga")]
    async fn run(ctx: &mut WorkflowContext<Self>, order: RawValue) -> WorkflowResult<RawValue> {
        let (patches, upserts, local_steps) = ctx.state(|w| (w.patches, w.upserts, w.local_steps));
        let mut order = order;
        for _ in 0..local_steps {
            let mut options = LocalActivityOptions::default();
            options.start_to_close_timeout = Some(Duration::from_secs(10));
            order = ctx
                .execute_local_activity(EmptySteps::empty_step, order, options)
                .await?;
        }
        for i in 0..patches {
            ctx.patched(&format!("floor-{i}"));
        }
        for i in 0..upserts {
            ctx.upsert_search_attributes([SAGA_WAITING.value_set(format!("floor-{i}"))]);
        }
        Ok(order)
    }
}

/// The worker's allocator (worker/src/main.rs), so that this floor measures the same SDK work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    saga_bench::init_tracing();
    let client = saga_worker::connect::connect_with_retry().await?;
    let runtime = Runtime::from_current_tokio(
        RuntimeOptions::builder()
            .build()
            .map_err(anyhow::Error::msg)?,
    )
    .context("starting the Temporal runtime")?;
    let (patches, upserts, local_steps) = (cli.patches, cli.upserts, cli.local_steps);
    let mut options = WorkerOptions::new(&cli.task_queue)
        .register_workflow_with_factory(move || NoStepSaga {
            patches,
            upserts,
            local_steps,
        })?
        .register_activities(EmptySteps)
        .build();
    // The worker's own settings (polls, slots, cache), so that only the saga differs.
    let tuning = Tuning::default();
    tuning.apply(&mut options);
    // The intake's admission learns from the worker's activations when a saga leaves it, and
    // gives its place to the next order.
    let intake = match cli.intake {
        Some(address) => {
            let listener = intake::bind(address).await?;
            let admission = intake::admission::Admission::new(tuning.intake_sagas);
            options.worker_interceptor(admission.interceptor());
            Some((listener, admission))
        }
        None => None,
    };
    let mut worker =
        Worker::new(&runtime, client.clone(), options).context("creating the worker")?;
    let shutdown = worker.shutdown_handle();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if let Some((listener, admission)) = intake {
        eprintln!("saga-floor intake on http://{}", listener.address);
        let task_queue = cli.task_queue.clone();
        // Named in the memo as the worker's intake names it; the floor has no dispatch to choose.
        let dispatch = saga_workflows::Dispatch::Local;
        tokio::spawn(async move {
            if let Err(e) =
                intake::serve(listener, client, task_queue, dispatch, admission, stopped).await
            {
                tracing::error!("the intake stopped: {e:#}");
            }
        });
    }
    tokio::spawn(async move {
        saga_worker::run_worker::shutdown_signal().await;
        let _ = stop.send(true);
        shutdown();
    });
    eprintln!("saga-floor polling {}", cli.task_queue);
    worker.run().await.context("the worker stopped")
}
