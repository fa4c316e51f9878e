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

// Parsed once at start and matched once: the size of the worker's settings costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the worker: the OrderSaga workflow and the services' activities.
    ///
    /// Retries the server connection until it answers; registers the search attributes the saga
    /// sets (OrderId, SagaOutcome, SagaWaiting) when the namespace lacks them, and exits with the commands
    /// to run when the server refuses; SIGINT or SIGTERM lets in-flight work finish, then exits.
    ///
    /// With the notifications role it also delivers notifications to webhooks when
    /// SAGA_WEBHOOK_URLS and SAGA_WEBHOOK_SECRET (or SAGA_WEBHOOK_CONFIG) are set; the
    /// configuration table of docs/operations.md lists every SAGA_WEBHOOK_* setting.
    Worker {
        /// Task queue of the workflow.
        #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
        task_queue: String,
        /// How the workflow runs its steps: `auto` (local activities when this process runs
        /// every role, regular activities when the roles are split), `local` (local activities
        /// in this process, recorded as markers; fewest server round trips) or `remote`
        /// (regular activities on each service's task queue). Safe to change with sagas in
        /// flight: each step's choice is recorded in its history and replayed as recorded.
        #[arg(long, env = "SAGA_DISPATCH", value_enum, default_value_t)]
        dispatch: saga_worker::roles::DispatchChoice,
        /// How long a forward step keeps retrying infrastructure errors (its database down,
        /// locked, unreachable) before the saga gives up and compensates, e.g. `10m`, `90s`.
        /// Compensations are retried until they succeed, whatever this says.
        #[arg(long, env = "SAGA_STEP_WINDOW", value_parser = humantime::parse_duration,
              default_value = "10m")]
        step_window: std::time::Duration,
        /// How long after its start a saga may still run forward steps; past it, it compensates
        /// (e.g. `30m`). Replaces a workflow execution timeout, which would cut compensations off.
        #[arg(long, env = "SAGA_DEADLINE", value_parser = humantime::parse_duration,
              default_value = "30m")]
        deadline: std::time::Duration,
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
        /// Take orders over HTTP on this address (`POST /orders`, the order JSON), e.g.
        /// `127.0.0.1:8090`. Each saga is started by this process itself, so the server hands its
        /// first task straight back (eager workflow start): a saga's quickest way in. No
        /// authentication: keep it on a private address. Needs the workflow role. Off unless set.
        #[arg(long, env = "SAGA_INTAKE", value_name = "ADDR")]
        intake: Option<std::net::SocketAddr>,
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
        #[command(flatten)]
        dispatch: NamedDispatch,
    },
    /// Run the design's seven scenarios against a running server and worker and print a table.
    ///
    /// Each run uses fresh order ids with the scenario's prefix. Exits non-zero when any saga's
    /// path differs from the design.
    #[command(after_help = "Output:
  A block per scenario: its row, scenario, order id and final status; the path taken (wrapped
  between steps at the terminal's width, COLUMNS, or 100 columns when not a terminal); the
  design's path when they differ (the row is marked ✗); the Web UI link on its own line.

  --json prints one document instead:
    {\"all_match\": true,
     \"scenarios\": [{\"row\": 1, \"scenario\": \"order fails\", \"order_id\": \"1…\",
                    \"workflow_id\": \"order-1…\", \"run_id\": \"…\",
                    \"status\": \"Failed\", \"failure_type\": \"SagaFailed\",
                    \"path\": [\"ProcessOrder\", \"UpdateOrderStatus\"],
                    \"expected_path\": [\"ProcessOrder\", \"UpdateOrderStatus\"],
                    \"expected_status\": \"Failed\", \"expected_failure_type\": \"SagaFailed\",
                    \"matches_design\": true, \"web_ui\": \"http://…\"}, …]}
  status is Completed, Failed, Cancelled, Terminated, TimedOut or Running; failure_type and
  expected_failure_type are null unless Failed. Exit status: 0 when every scenario matches,
  1 when one does not, 2 when the run could not be made.")]
    Scenarios {
        /// Task queue the worker polls.
        #[arg(long, env = "SAGA_TASK_QUEUE", default_value = saga_worker::config::DEFAULT_TASK_QUEUE)]
        task_queue: String,
        /// Print one JSON document (shape below) instead of the table, for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dispatch: NamedDispatch,
    },
    /// Print a workflow's full event history as JSON, the format the Web UI exports and the
    /// replay tests read (`saga history ID > workflows/tests/histories/NAME.json`).
    History { workflow_id: String },
    /// Serve Temporal's codec server protocol with the encryption keys, so the Web UI and the
    /// CLIs (`temporal … --codec-endpoint`, tctl's `--codec_endpoint`) read encrypted sagas.
    ///
    /// Keys come from SAGA_ENCRYPTION_KEYS_FILE (or SAGA_ENCRYPTION_KEYS), the bearer token it
    /// demands from SAGA_CODEC_AUTH_TOKEN: neither from the command line.
    #[command(after_help = "Examples:
  SAGA_ENCRYPTION_KEYS_FILE=keys.txt saga codec-server --port 8081
  temporal server start-dev --ui-codec-endpoint http://localhost:8081
  temporal workflow show -w order-… --codec-endpoint http://localhost:8081")]
    CodecServer(saga_worker::encryption::CodecServerArgs),
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

/// `--dispatch` of the commands that start sagas.
#[derive(Debug, clap::Args)]
struct NamedDispatch {
    /// How the deployment's workers run the steps, named in each start request so that the
    /// saga records no patch marker for its first step (nor the search attribute upsert the SDK
    /// adds to one): `local` for an all-in-one worker, `remote` for split roles; `auto` (the
    /// default) names nothing and leaves the choice to the worker. A wrong name costs what no
    /// name costs. Shares SAGA_DISPATCH with `saga worker`.
    #[arg(
        long = "dispatch",
        env = "SAGA_DISPATCH",
        value_enum,
        default_value_t,
        hide_possible_values = true
    )]
    choice: saga_worker::roles::DispatchChoice,
}

impl NamedDispatch {
    fn named(&self) -> Option<saga_workflows::Dispatch> {
        self.choice.named()
    }
}

/// A worker allocates and frees on every message between the SDK's layers (payloads, commands,
/// metrics attributes); with glibc's malloc that was 28 % of the instructions it ran a saga.
/// mimalloc's thread-local free lists spend 9 to 16 % less CPU a saga for 1.3 to 2.3 MiB more
/// peak memory (docs/performance-history.md, "mimalloc as the allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    limit_malloc_arenas();
    no_transparent_huge_pages();
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Command::Worker { tuning, .. } => tuning.runtime(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("saga: starting the async runtime: {e}");
            ExitCode::from(2)
        }
    }
}

/// glibc's malloc still serves the C code (SQLite, on the steps' thread and sqlx's connection
/// threads). It gives each thread that allocates an arena of its own (up to eight per core) and
/// keeps what is freed in it; before the worker's own allocations moved to mimalloc, those
/// arenas held about 3.5 MiB of peak RSS at 100 concurrent sagas, for no CPU gained
/// (docs/performance-history.md, "Memory: where the intake's extra megabytes are"). Two arenas
/// are enough for two cores. `MALLOC_ARENA_MAX` still decides when set.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter, and no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// mimalloc is built not to ask for transparent huge pages, but a kernel that gives them to
/// every process (`/sys/kernel/mm/transparent_hugepage/enabled` set to `always`, as on many
/// distributions) would back its memory with 2 MiB pages anyway: with them a worker's peak
/// memory grew by 57 to 73 % (docs/performance-history.md, "mimalloc as the allocator"), for
/// no CPU gain measured. `MIMALLOC_ALLOW_THP`, when set, decides instead (mimalloc reads it
/// too).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE sets one flag of this process and touches no memory.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    commands::init_logging(
        cli.log_json,
        matches!(
            cli.command,
            Command::Worker { .. } | Command::CodecServer(_)
        ),
    );
    let outcome = match cli.command {
        Command::Worker {
            task_queue,
            dispatch,
            step_window,
            deadline,
            roles,
            queues,
            metrics_port,
            intake,
            tuning,
        } => {
            let settings = saga_worker::run_worker::WorkerSettings {
                task_queue,
                dispatch,
                patience: saga_workflows::Patience {
                    step_window,
                    deadline,
                },
                queues,
                metrics_port,
                intake,
                tuning,
                ..Default::default()
            };
            commands::worker(roles, settings).await
        }
        Command::Start {
            file,
            wait,
            workflow_id,
            task_queue,
            dispatch,
        } => commands::start(&file, wait, workflow_id, &task_queue, dispatch.named()).await,
        Command::Scenarios {
            task_queue,
            json,
            dispatch,
        } => commands::scenarios(&task_queue, json, dispatch.named()).await,
        Command::History { workflow_id } => commands::history(&workflow_id).await,
        Command::Status { order_id, json } => commands::status(&order_id, json).await,
        Command::CodecServer(args) => commands::codec_server(&args).await,
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
