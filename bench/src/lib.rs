//! `saga-bench`: a load generator that starts many sagas against a running server and worker,
//! measures throughput and start-to-result latency, samples the worker's CPU time and peak
//! memory, and then checks every saga's answer (its path in the history and, when the stores
//! are reachable, the rows they hold), so a fast wrong answer counts as a failure.
//!
//! It only speaks the workflow's public contract (workflow type `OrderSaga`, the order JSON as
//! its only argument), so it can drive any worker of that contract, including other SDKs'.
//!
//! | module | concern |
//! |---|---|
//! | [`workload`] | which sagas: the scenario mix and the bench order |
//! | `load` | starting them with bounded concurrency, timing each, giving up on a stall |
//! | [`process`] | the CPU time and memory of the worker and server under test, from `/proc` |
//! | `verify` | judging every answer: the path in the history, the rows in the stores |
//! | [`report`] | latency percentiles and the report |

mod load;
pub mod process;
pub mod report;
mod verify;
pub mod workload;

pub use report::{Latency, Report};
pub use verify::check_rows;
pub use workload::{Mix, bench_order};

use anyhow::Context as _;
use process::{ProcSample, process_figures, process_is_running};
use saga_worker::{config, connect};
use std::path::PathBuf;

/// Options of one benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How many sagas to start in the timed window.
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub sagas: usize,
    /// How many sagas are in flight at once.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub concurrency: usize,
    /// Scenario mix: `success`, `all` (the seven scenarios in turn), or weights by the design
    /// table's row number (1-7, 7 = success), e.g. `7=90,5=10`.
    #[arg(long, default_value = "success")]
    pub mix: Mix,
    /// Sagas run (and checked) before the timed window, to warm connections and caches.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Start each saga by posting its order to this worker's intake (`saga worker --intake`),
    /// e.g. `http://127.0.0.1:8090`, rather than asking the server; each result is still read
    /// from the server. Its workflow ids are then `order-<order_id>`, on the task queue of the
    /// worker behind the intake (give the same `--task-queue` for the messages to name it).
    #[arg(long, value_name = "URL")]
    pub intake: Option<String>,
    /// Name in each start request how the worker under test runs the steps, as
    /// `saga start --dispatch` does (`local` for `saga worker` all in one, `remote` for split
    /// roles): the saga then records no patch marker for its first step. `auto` names nothing,
    /// as a start by the `temporal` CLI without a memo. The intake names its own.
    #[arg(
        long,
        value_enum,
        default_value_t,
        conflicts_with = "intake",
        hide_possible_values = true
    )]
    pub dispatch: saga_worker::roles::DispatchChoice,
    /// Task queue the worker under test polls.
    #[arg(long, env = "SAGA_TASK_QUEUE", default_value = config::DEFAULT_TASK_QUEUE)]
    pub task_queue: String,
    /// Process id of the worker under test: its CPU time and peak RSS are reported. Peak RSS
    /// is the process's lifetime peak, so give each run a fresh worker.
    #[arg(long)]
    pub worker_pid: Option<u32>,
    /// Process id of the Temporal server, to report its CPU time beside the worker's.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The worker's data directory: each order's rows are checked there after the run.
    #[arg(long, env = "SAGA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Check only the histories, not the stores (for workers that keep no stores here).
    #[arg(long)]
    pub no_store_check: bool,
    /// The worker under test is `saga-floor`, whose `OrderSaga` runs no step (the server's
    /// floor): each run is checked only to have completed, and no store is read.
    #[arg(long)]
    pub floor: bool,
    /// Give up when no saga has finished for this many seconds (no worker polling the task
    /// queue, say); the run then fails instead of waiting for good.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub stall_timeout: u64,
    /// A name for this run in the report.
    #[arg(long, default_value = "saga")]
    pub label: String,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// Logs of `saga-bench` and `saga-floor`: to standard error (standard output carries the
/// report), filtered by `SAGA_LOG`, warnings only by default.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SAGA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the benchmark: warm-up, the timed window, then the checks.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.sagas > 0, "--sagas must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    if let Some(pid) = args.worker_pid {
        anyhow::ensure!(
            process_is_running(pid),
            "--worker-pid {pid}: no such running process"
        );
    }
    let client = connect::connect().await?;
    saga_worker::search_attributes::ensure(&client).await?;
    let stores = match (&args.data_dir, args.no_store_check || args.floor) {
        (Some(dir), false) => Some(verify::open_stores(dir).await?),
        _ => None,
    };

    let mut samples = Vec::with_capacity(args.warmup + args.sagas);
    if args.warmup > 0 {
        let (warm, _) = load::drive(&client, args, 0, args.warmup, true)
            .await
            .context("warming up")?;
        samples.extend(warm);
    }

    let worker_before = read_pid(args.worker_pid)?;
    let server_before = read_pid(args.server_pid)?;
    let bench_before = ProcSample::read("self")?;
    let (timed, wall) = load::drive(&client, args, args.warmup, args.sagas, args.quiet).await?;
    let bench_after = ProcSample::read("self")?;
    let worker_after = read_pid(args.worker_pid)?;
    let server_after = read_pid(args.server_pid)?;
    let wall_s = wall.as_secs_f64();
    let figures = |pid: Option<u32>, before: Option<ProcSample>, after: Option<ProcSample>| {
        Some(process_figures(
            &pid?.to_string(),
            before?,
            after?,
            wall_s,
            args.sagas,
        ))
    };
    let latency = Latency::of(timed.iter().map(|s| s.latency));
    let start_latency = Latency::of(timed.iter().map(|s| s.start_latency));
    samples.extend(timed);

    if !args.quiet {
        eprintln!("checking {} sagas…", samples.len());
    }
    let verdicts = verify::check_all(&client, stores.as_ref(), &samples, args.floor).await;
    let mut report = Report {
        label: args.label.clone(),
        task_queue: args.task_queue.clone(),
        mix: args.mix.to_string(),
        sagas: args.sagas,
        concurrency: args.concurrency,
        warmup: args.warmup,
        wall_s,
        sagas_per_s: args.sagas as f64 / wall_s,
        latency,
        start_latency,
        worker: figures(args.worker_pid, worker_before, worker_after),
        server: figures(args.server_pid, server_before, server_after),
        bench_cpu_s: bench_after.cpu_s - bench_before.cpu_s,
        paths_checked: 0,
        stores_checked: 0,
        completed: 0,
        compensated: 0,
        failures: 0,
        failure_examples: Vec::new(),
    };
    for verdict in verdicts {
        report.paths_checked += usize::from(verdict.path_checked);
        report.stores_checked += usize::from(verdict.store_checked);
        match verdict.outcome {
            Ok(true) => report.completed += 1,
            Ok(false) => report.compensated += 1,
            Err(why) => {
                report.failures += 1;
                if report.failure_examples.len() < 10 {
                    report.failure_examples.push(why);
                }
            }
        }
    }
    Ok(report)
}

fn read_pid(pid: Option<u32>) -> anyhow::Result<Option<ProcSample>> {
    pid.map(|p| ProcSample::read(&p.to_string())).transpose()
}
