//! The subcommands.

use anyhow::Context as _;
use saga_protos::{Order, parse_order, scenario::SCENARIOS};
use saga_worker::{
    connect,
    history::SagaHistory,
    launch,
    run_worker::{self, WorkerSettings},
    status,
};
use std::{io::Read as _, path::Path, process::ExitCode};

pub fn init_logging(json: bool, is_worker: bool) {
    use tracing_subscriber::{EnvFilter, fmt};
    let json = json || std::env::var("SAGA_LOG_FORMAT").is_ok_and(|v| v == "json");
    // The worker tells what it does; the one-shot commands stay quiet unless asked.
    let default = if is_worker { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("SAGA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn worker(
    task_queue: String,
    dispatch: saga_workflows::Dispatch,
    tuning: saga_worker::tuning::Tuning,
) -> anyhow::Result<ExitCode> {
    run_worker::run(WorkerSettings {
        task_queue,
        tuning,
        saga: saga_workflows::SagaConfig {
            dispatch,
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn read_order(file: &Path) -> anyhow::Result<Order> {
    let bytes = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the order from standard input")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
    };
    parse_order(&bytes).with_context(|| format!("{} is not a valid order", file.display()))
}

/// The Web UI page of a workflow.
pub fn ui_link(workflow_id: &str, run_id: &str) -> String {
    let base = std::env::var("SAGA_UI_URL").unwrap_or_else(|_| "http://localhost:8233".into());
    let namespace = std::env::var("TEMPORAL_NAMESPACE").unwrap_or_else(|_| "default".into());
    format!(
        "{}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history",
        base.trim_end_matches('/')
    )
}

pub async fn start(
    file: &Path,
    wait: bool,
    workflow_id: Option<String>,
    task_queue: &str,
) -> anyhow::Result<ExitCode> {
    let order = read_order(file)?;
    let client = connect::connect().await?;
    let workflow_id = workflow_id.unwrap_or_else(|| launch::workflow_id(&order.order_id));
    let started = launch::start(&client, task_queue, &workflow_id, &order).await?;
    println!("started {} (run {})", started.workflow_id, started.run_id);
    println!("web ui: {}", ui_link(&started.workflow_id, &started.run_id));
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("waiting for the saga to finish…");
    let history = launch::wait(&client, &started).await?;
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

fn print_outcome(history: &SagaHistory) {
    println!("outcome: {}", history.closed.label());
    if let saga_worker::history::Closed::Failed { message, .. } = &history.closed {
        println!("reason: {message}");
    }
    println!("path: {}", history.path.join(" → "));
}

pub async fn scenarios(task_queue: &str) -> anyhow::Result<ExitCode> {
    let client = connect::connect().await?;
    let base = read_order_template();
    let runs = SCENARIOS.iter().map(|scenario| {
        let client = client.clone();
        let mut order = base.clone();
        order.order_id = scenario.fresh_order_id();
        async move {
            let workflow_id = launch::workflow_id(&order.order_id);
            let started = launch::start(&client, task_queue, &workflow_id, &order).await?;
            let history = launch::wait(&client, &started).await?;
            anyhow::Ok((scenario, order.order_id, started, history))
        }
    });
    eprintln!("running {} scenarios…", SCENARIOS.len());
    let results = futures_util::future::try_join_all(runs).await?;
    let mut mismatches = 0;
    println!(
        "{:<3} {:<30} {:<38} {:<20} {:<5} path",
        "#", "scenario", "order id", "final status", "ok"
    );
    for (i, (scenario, order_id, started, history)) in results.iter().enumerate() {
        let ok = launch::matches_design(order_id, history);
        mismatches += usize::from(!ok);
        println!(
            "{:<3} {:<30} {:<38} {:<20} {:<5} {}",
            i + 1,
            scenario.name,
            order_id,
            history.closed.label(),
            if ok { "yes" } else { "NO" },
            history.path.join(" → ")
        );
        println!("    {}", ui_link(&started.workflow_id, &started.run_id));
    }
    if mismatches > 0 {
        eprintln!("{mismatches} saga(s) took a path the design does not allow");
        return Ok(ExitCode::FAILURE);
    }
    println!("all {} scenarios took the design's path", results.len());
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

pub async fn bench(args: &saga_worker::bench::BenchArgs) -> anyhow::Result<ExitCode> {
    let report = saga_worker::bench::run(args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
