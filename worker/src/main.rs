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
#[command(
    name = "saga",
    version,
    propagate_version = true,
    after_help = "Examples:
  saga worker                                    run the worker (retries until the server answers)
  saga start --wait testdata/scenario-5.json     start a saga, follow it, print outcome and path
  saga scenarios                                 run the seven reference scenarios, print a table
  saga status 3b7dc768-6f32-495d-a140-3d330c246f50 --json

Web UI links use SAGA_UI_URL (default http://localhost:8233)."
)]
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
    ///
    /// With the notifications role it also delivers notifications to webhooks when
    /// SAGA_WEBHOOK_URLS and SAGA_WEBHOOK_SECRET (or SAGA_WEBHOOK_CONFIG) are set; the README's
    /// "Webhooks" section lists every SAGA_WEBHOOK_* setting.
    Worker {
        /// Task queue of the workflow (and, with `--role all`, of every activity).
        #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
        task_queue: String,
        /// How the workflow runs its steps: `remote` (regular activities, each visible in the
        /// history) or `local` (local activities in this process, recorded as markers; fewer
        /// server round trips). Change it only with no sagas in flight.
        #[arg(long, env = "SAGA_DISPATCH", default_value = "remote")]
        dispatch: saga_workflows::Dispatch,
        /// The parts of the saga this process runs: `all` (the default: the workflow and every
        /// service on the one task queue), or any of workflow, orders, payments, inventory,
        /// notifications (repeat the flag or separate with commas). Split roles put each service
        /// on its own task queue and open only that service's database; every workflow worker of
        /// a deployment must then be split too, with the same queue names.
        #[arg(
            long = "role",
            env = "SAGA_ROLES",
            value_enum,
            value_delimiter = ',',
            default_value = "all"
        )]
        roles: Vec<saga_worker::roles::Role>,
        #[command(flatten)]
        queues: saga_worker::roles::ServiceQueues,
        /// Serve Prometheus metrics (the SDK's and the saga's) on this port, at /metrics.
        /// Off unless set; 9464 is the usual choice.
        #[arg(long, env = "SAGA_METRICS_PORT")]
        metrics_port: Option<u16>,
        #[command(flatten)]
        tuning: saga_worker::tuning::Tuning,
    },
    /// Start an OrderSaga from an order JSON file ("-" reads standard input).
    ///
    /// The order is validated first: a missing field or a bad value is reported here, naming the
    /// field, and nothing is started. Prints the workflow id and its Web UI link.
    #[command(after_help = "Examples:
  saga start testdata/scenario-7.json
  saga start --wait testdata/scenario-5.json
  cat order.json | saga start --workflow-id my-order -")]
    Start {
        /// The order document, or "-" for standard input (see testdata/ for examples).
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
        /// Follow the saga: print each step as it is scheduled, then the outcome and the path.
        /// Exits non-zero when a failed saga's path is not the design's.
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
    /// Print a workflow's full event history as JSON, the format the Web UI exports and the
    /// replay tests read (`saga history ID > workflows/tests/histories/NAME.json`).
    History { workflow_id: String },
    /// Start many sagas against a running server and worker; report throughput, latency, the
    /// worker's CPU and memory, and check every answer. Exits non-zero on any wrong answer.
    Bench(saga_worker::bench::BenchArgs),
    /// Listen for webhook deliveries, verify their signatures with SAGA_WEBHOOK_SECRET and print
    /// each notification that arrives.
    WebhookReceiver(saga_worker::webhook_receiver::ReceiverArgs),
    /// Webhook deliveries: list them, send dead ones again.
    #[command(subcommand)]
    Webhooks(saga_worker::webhooks::WebhooksCommand),
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
            roles,
            queues,
            metrics_port,
            tuning,
        } => commands::worker(task_queue, dispatch, roles, queues, metrics_port, tuning).await,
        Command::Start {
            file,
            wait,
            workflow_id,
            task_queue,
        } => commands::start(&file, wait, workflow_id, &task_queue).await,
        Command::Scenarios { task_queue } => commands::scenarios(&task_queue).await,
        Command::History { workflow_id } => commands::history(&workflow_id).await,
        Command::Status { order_id, json } => commands::status(&order_id, json).await,
        Command::Bench(args) => commands::bench(&args).await,
        Command::WebhookReceiver(args) => saga_worker::webhook_receiver::run(&args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Webhooks(command) => saga_worker::webhooks::run(&command).await,
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("saga: {e:#}");
            ExitCode::from(2)
        }
    }
}
