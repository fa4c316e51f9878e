//! `saga-floor`: a worker whose `OrderSaga` runs no step and returns its order at once.
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

use anyhow::Context as _;
use clap::Parser;
use temporalio_common::{data_converters::RawValue, search_attributes::SearchAttributeKey};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult, runtime::RuntimeOptions,
};

/// A worker whose `OrderSaga` runs no step: the server's floor, for `saga-bench --floor`.
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
}

/// The order saga's contract (its type name, the order as input and answer) with no step in it.
#[workflow]
#[derive(Default)]
struct NoStepSaga {
    patches: usize,
    upserts: usize,
}

const SAGA_WAITING: SearchAttributeKey<String> = SearchAttributeKey::keyword("SagaWaiting");

#[workflow_methods]
impl NoStepSaga {
    #[run(name = "OrderSaga")]
    async fn run(ctx: &mut WorkflowContext<Self>, order: RawValue) -> WorkflowResult<RawValue> {
        let (patches, upserts) = ctx.state(|w| (w.patches, w.upserts));
        for i in 0..patches {
            ctx.patched(&format!("floor-{i}"));
        }
        for i in 0..upserts {
            ctx.upsert_search_attributes([SAGA_WAITING.value_set(format!("floor-{i}"))]);
        }
        Ok(order)
    }
}

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
    let (patches, upserts) = (cli.patches, cli.upserts);
    let options = WorkerOptions::new(&cli.task_queue)
        .register_workflow_with_factory(move || NoStepSaga { patches, upserts })?
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        saga_worker::run_worker::shutdown_signal().await;
        shutdown();
    });
    eprintln!("saga-floor polling {}", cli.task_queue);
    worker.run().await.context("the worker stopped")
}
