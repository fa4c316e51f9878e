//! `saga`: the order saga's Temporal worker and the command line around it.

mod commands;

use clap::{Parser, Subcommand};
use std::{path::PathBuf, process::ExitCode};

/// Durable, compensating order transactions on Temporal.
///
/// Connection settings come from the standard Temporal environment: TEMPORAL_ADDRESS
/// (default localhost:7233), TEMPORAL_NAMESPACE (default "default"), or a temporal.toml profile.
/// Each service keeps its data under SAGA_DATA_DIR (default ./data).
#[derive(Debug, Parser)]
#[command(name = "saga", version, propagate_version = true)]
struct Cli {
    /// Log as JSON lines instead of human-readable text (also SAGA_LOG_FORMAT=json).
    #[arg(long, global = true)]
    log_json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the worker: the OrderSaga workflow and the services' activities.
    ///
    /// Retries the server connection until it answers; SIGINT or SIGTERM lets in-flight work
    /// finish, then exits.
    Worker {
        /// Task queue to poll.
        #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
        task_queue: String,
        /// How the workflow runs its steps: `remote` (regular activities, each visible in the
        /// history) or `local` (local activities in this process, recorded as markers; fewer
        /// server round trips). Change it only with no sagas in flight.
        #[arg(long, env = "SAGA_DISPATCH", default_value = "remote")]
        dispatch: saga_workflows::Dispatch,
        #[command(flatten)]
        tuning: saga_worker::tuning::Tuning,
    },
    /// Start an OrderSaga from an order JSON file ("-" reads standard input).
    Start {
        /// The order document (see testdata/ for examples).
        file: PathBuf,
        /// Wait for the saga to finish and print its outcome and path.
        #[arg(long)]
        wait: bool,
        /// Workflow id (default: order-<order_id>).
        #[arg(long)]
        workflow_id: Option<String>,
        /// Task queue the worker polls.
        #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
        task_queue: String,
    },
    /// Run the design's seven scenarios against a running server and worker and print a table.
    ///
    /// Each run uses fresh order ids with the scenario's prefix. Exits non-zero when any saga's
    /// path differs from the design.
    Scenarios {
        /// Task queue the worker polls.
        #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
        task_queue: String,
    },
    /// Start many sagas against a running server and worker; report throughput, latency, the
    /// worker's CPU and memory, and check every answer. Exits non-zero on any wrong answer.
    Bench(saga_worker::bench::BenchArgs),
    /// Show what each service holds for an order.
    Status {
        order_id: String,
        /// Print the contract's JSON instead of a readable summary.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::init_logging(cli.log_json, matches!(cli.command, Command::Worker { .. }));
    let outcome = match cli.command {
        Command::Worker {
            task_queue,
            dispatch,
            tuning,
        } => commands::worker(task_queue, dispatch, tuning).await,
        Command::Start {
            file,
            wait,
            workflow_id,
            task_queue,
        } => commands::start(&file, wait, workflow_id, &task_queue).await,
        Command::Scenarios { task_queue } => commands::scenarios(&task_queue).await,
        Command::Status { order_id, json } => commands::status(&order_id, json).await,
        Command::Bench(args) => commands::bench(&args).await,
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("saga: {e:#}");
            ExitCode::from(2)
        }
    }
}
