//! The subcommands.

use anyhow::Context as _;
use saga_protos::{Order, parse_order, scenario::SCENARIOS};
use saga_worker::{
    connect,
    history::SagaHistory,
    launch::{self, ui_link},
    roles::{Role, Roles},
    run_worker::{self, WorkerSettings},
    status,
};
use saga_workflows::Dispatch;
use std::{io::Read as _, path::Path, process::ExitCode};

pub fn init_logging(json: bool, is_worker: bool) {
    use tracing_subscriber::{EnvFilter, fmt};
    let json = json || std::env::var("SAGA_LOG_FORMAT").is_ok_and(|v| v == "json");
    // The worker tells what it does; the one-shot commands stay quiet unless asked. The SDK
    // core's info-level spans (one per workflow activation, completion and history event, each
    // formatting its fields, a whole completion's commands among them) carry no line of their
    // own and cost 5 % of the worker's CPU per saga (docs/performance-history.md, "The SDK core's spans"):
    // off unless `SAGA_LOG` asks for them (`SAGA_LOG=info`). So are the SDK's own
    // `RunActivity` and `RunWorkflow` spans: each step's line carries the activity, order id,
    // workflow id and attempt itself, which they would repeat.
    let default = if is_worker {
        "info,temporalio_sdk_core=warn,temporalio_sdk=warn"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env("SAGA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a terminal: a log file (make demo's, docker's) gets plain text.
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        // A step's line has its activity, order_id, workflow_id and attempt under "fields", so
        // it can be filtered without joining lines; a line logged inside a span (the SDK's,
        // when `SAGA_LOG` turns them on) has that span's fields under "span".
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

/// `saga worker`: the roles are checked here, the rest is as the flags gave it.
pub async fn worker(roles: Vec<Role>, settings: WorkerSettings) -> anyhow::Result<ExitCode> {
    run_worker::run(WorkerSettings {
        roles: Roles::new(roles)?,
        ..settings
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates the order document; every failure is one line naming the file and the
/// problem (the field, for a document that parses but breaks a rule).
fn read_order(file: &Path) -> anyhow::Result<Order> {
    let (name, bytes) = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the order from standard input")?;
        ("standard input".to_owned(), buf)
    } else {
        let name = file.display().to_string();
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {name}"))?;
        (name, bytes)
    };
    parse_order(&bytes).with_context(|| format!("{name} is not a valid order"))
}

/// Connects for a one-shot command, with a hint for the commonest failure: no server running.
async fn client() -> anyhow::Result<temporalio_client::Client> {
    // A bad key setting is reported as itself, not as a server that did not answer.
    saga_worker::encryption::keys_from_env()?;
    connect::connect().await.context(
        "no Temporal server answered (start one with `make demo` or `temporal server start-dev`, \
         or point TEMPORAL_ADDRESS at yours)",
    )
}

/// Registers the saga's search attributes when the server lacks them (a plain `temporal server
/// start-dev`), so the sagas this command starts can record them; says so on standard error.
async fn search_attributes(client: &temporalio_client::Client) -> anyhow::Result<()> {
    let ensured = saga_worker::search_attributes::ensure(client).await?;
    if !ensured.registered.is_empty() {
        eprintln!(
            "saga: registered the search attributes {} in namespace {}",
            ensured.registered.join(", "),
            client.options().namespace
        );
    }
    Ok(())
}

pub async fn start(
    file: &Path,
    wait: bool,
    workflow_id: Option<String>,
    task_queue: &str,
    dispatch: Option<Dispatch>,
) -> anyhow::Result<ExitCode> {
    let order = read_order(file)?;
    let client = client().await?;
    search_attributes(&client).await?;
    let workflow_id = workflow_id.unwrap_or_else(|| launch::workflow_id(&order.order_id));
    let started = launch::start_named(&client, task_queue, &workflow_id, &order, dispatch).await?;
    println!("started {} (run {})", started.workflow_id, started.run_id);
    println!("web ui: {}", ui_link(&started.workflow_id, &started.run_id));
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let history = follow(&client, &started).await?;
    print_outcome(&history);
    let expected = launch::matches_design(&order.order_id, &history);
    Ok(
        if matches!(history.closed, saga_worker::history::Closed::Completed) || expected {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Polls the history until the saga closes, printing each step on standard error as the
/// workflow schedules it, so a long compensation chain is visible while it runs.
async fn follow(
    client: &temporalio_client::Client,
    started: &launch::Started,
) -> anyhow::Result<SagaHistory> {
    eprintln!("waiting for the saga to finish (steps as the workflow schedules them):");
    let mut shown = 0;
    loop {
        let history = launch::history(client, &started.workflow_id).await?;
        for (i, step) in history.path.iter().enumerate().skip(shown) {
            eprintln!("  {:>2}. {step}", i + 1);
        }
        shown = history.path.len();
        if history.closed != saga_worker::history::Closed::Running {
            return Ok(history);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn print_outcome(history: &SagaHistory) {
    println!("outcome: {}", history.closed.label());
    if let saga_worker::history::Closed::Failed { message, .. } = &history.closed {
        println!("reason: {message}");
    }
    println!("path: {}", history.path.join(" → "));
}

pub async fn scenarios(
    task_queue: &str,
    json: bool,
    dispatch: Option<Dispatch>,
) -> anyhow::Result<ExitCode> {
    use saga_worker::scenario_report::{Report, ScenarioRun, output_width};
    let client = client().await?;
    search_attributes(&client).await?;
    let base = read_order_template();
    let runs = SCENARIOS.iter().enumerate().map(|(i, scenario)| {
        let client = client.clone();
        let mut order = base.clone();
        order.order_id = scenario.fresh_order_id();
        async move {
            let workflow_id = launch::workflow_id(&order.order_id);
            let started =
                launch::start_named(&client, task_queue, &workflow_id, &order, dispatch).await?;
            let history = launch::wait(&client, &started).await?;
            let link = ui_link(&started.workflow_id, &started.run_id);
            anyhow::Ok(ScenarioRun::new(
                i + 1,
                scenario,
                order.order_id,
                &started,
                &history,
                link,
            ))
        }
    });
    eprintln!("running {} scenarios…", SCENARIOS.len());
    let report = Report::new(futures_util::future::try_join_all(runs).await?);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render(output_width()));
    }
    let mismatches = report
        .scenarios
        .iter()
        .filter(|s| !s.matches_design)
        .count();
    if mismatches > 0 {
        eprintln!("{mismatches} saga(s) took a path the design does not allow (marked ✗)");
        return Ok(ExitCode::FAILURE);
    }
    if !json {
        println!(
            "all {} scenarios took the design's path",
            report.scenarios.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_order_template() -> Order {
    parse_order(include_bytes!("../../testdata/scenario-7.json"))
        .expect("the bundled sample order is valid")
}

pub async fn status(order_id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let stores = status::open_stores().await?;
    let s = status::read(&stores, order_id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", status::render(order_id, &s));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn history(workflow_id: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let client = connect::connect().await?;
    let json = launch::history_json(&client, workflow_id).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&json)?;
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn codec_server(
    args: &saga_worker::encryption::CodecServerArgs,
) -> anyhow::Result<ExitCode> {
    saga_worker::encryption::serve(args, async {
        let signal = run_worker::shutdown_signal().await;
        tracing::info!("{signal} received: stopping the codec server");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
