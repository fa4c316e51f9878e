//! Starting the sagas: at most `--concurrency` in flight, each timed from its start request to
//! its result; a run that cannot finish (the worker gone, nothing finishing) gives up.

use super::{BenchArgs, process::process_is_running, workload::bench_order};
use saga_protos::Order;
use saga_worker::config;
use saga_workflows::Dispatch;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use temporalio_client::{Client, UntypedWorkflow, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::data_converters::{PayloadConverter, RawValue};

/// One saga as the load generator saw it.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) order_id: String,
    pub(crate) workflow_id: String,
    /// From the start request to the result.
    pub(crate) latency: Duration,
    /// The start request alone.
    pub(crate) start_latency: Duration,
    /// Set when the saga could not be started or its result not read.
    pub(crate) error: Option<String>,
}

/// Runs sagas `first..first + count` with at most `concurrency` in flight; returns them and
/// the wall time from the first start to the last result. Fails early when the worker under
/// test dies or nothing finishes for `--stall-timeout`, rather than waiting for good.
pub(crate) async fn drive(
    client: &Client,
    args: &BenchArgs,
    first: usize,
    count: usize,
    quiet: bool,
) -> anyhow::Result<(Vec<Sample>, Duration)> {
    let starter = Starter::new(args)?;
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.min(count)));
    let done = Arc::new(AtomicUsize::new(0));
    let begun = Instant::now();
    let progress = (!quiet).then(|| {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let now = done.load(Ordering::Relaxed);
                let elapsed = begun.elapsed().as_secs_f64();
                eprintln!(
                    "{now}/{count} done, {:.1}/s last second, {:.1}/s overall",
                    now - last,
                    now as f64 / elapsed
                );
                last = now;
            }
        })
    });
    let tasks: Vec<_> = (first..first + count)
        .map(|i| {
            let client = client.clone();
            let starter = starter.clone();
            let permits = permits.clone();
            let done = done.clone();
            let order = bench_order(args.mix.scenario(i));
            let task_queue = args.task_queue.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("never closed");
                let sample = one(&client, &starter, &task_queue, order).await;
                done.fetch_add(1, Ordering::Relaxed);
                sample
            })
        })
        .collect();
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let collect = async {
        let mut samples = Vec::with_capacity(count);
        for task in tasks {
            samples.push(task.await.expect("a saga task panicked"));
        }
        samples
    };
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let outcome = tokio::select! {
        samples = collect => Ok(samples),
        why = watchdog(args.worker_pid, done, stall, &args.task_queue) => Err(why),
    };
    let wall = begun.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    if outcome.is_err() {
        aborts.iter().for_each(|a| a.abort());
    }
    Ok((outcome?, wall))
}

/// Resolves only when the run cannot finish: the worker under test has exited, or no saga
/// has finished for `stall`.
async fn watchdog(
    worker_pid: Option<u32>,
    done: Arc<AtomicUsize>,
    stall: Duration,
    task_queue: &str,
) -> anyhow::Error {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_done = done.load(Ordering::Relaxed);
    let mut last_progress = Instant::now();
    loop {
        tick.tick().await;
        if let Some(pid) = worker_pid
            && !process_is_running(pid)
        {
            return anyhow::anyhow!(
                "the worker under test (pid {pid}) exited during the run; see its log"
            );
        }
        let now = done.load(Ordering::Relaxed);
        if now != last_done {
            last_done = now;
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= stall {
            return anyhow::anyhow!(
                "no saga finished in {} s: is a worker polling task queue `{task_queue}` \
                 on this server and namespace?",
                stall.as_secs()
            );
        }
    }
}

/// How the sagas are started.
#[derive(Clone)]
enum Starter {
    /// A start request to the server, as any client sends it, naming the dispatch or not.
    Server { dispatch: Option<Dispatch> },
    /// A post to the worker's order intake (`saga worker --intake`).
    Intake {
        http: reqwest::Client,
        orders: String,
    },
}

impl Starter {
    fn new(args: &BenchArgs) -> anyhow::Result<Self> {
        Ok(match &args.intake {
            None => Self::Server {
                dispatch: args.dispatch.named(),
            },
            Some(url) => Self::Intake {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()?,
                orders: format!("{}/orders", url.trim_end_matches('/')),
            },
        })
    }

    /// Starts the saga; returns its workflow id.
    /// The workflow id the saga of `order_id` gets: `bench-` ids through the server, so that
    /// bench sagas are told apart; the intake names it as `saga start` does.
    fn workflow_id(&self, order_id: &str) -> String {
        match self {
            Self::Server { .. } => format!("bench-{order_id}"),
            Self::Intake { .. } => saga_worker::launch::workflow_id(order_id),
        }
    }

    async fn start(
        &self,
        client: &Client,
        task_queue: &str,
        order: &Order,
    ) -> Result<String, String> {
        match self {
            Self::Server { dispatch } => {
                let workflow_id = self.workflow_id(&order.order_id);
                let input = RawValue::from_value(order, &PayloadConverter::serde_json());
                // As `saga start` does: no execution timeout, the contract's search attributes.
                let mut options = WorkflowStartOptions::new(task_queue, &workflow_id)
                    .search_attributes(saga_worker::launch::initial_search_attributes(
                        &order.order_id,
                    ))
                    .build();
                if let Some(dispatch) = *dispatch {
                    saga_worker::launch::name_dispatch(&mut options, dispatch);
                }
                client
                    .start_workflow(UntypedWorkflow::new(config::WORKFLOW_TYPE), input, options)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(workflow_id)
            }
            Self::Intake { http, orders } => {
                #[derive(serde::Deserialize)]
                struct Taken {
                    workflow_id: String,
                }
                let response = http
                    .post(orders)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(order).map_err(|e| e.to_string())?)
                    .send()
                    .await
                    .map_err(|e| format!("{orders}: {e}"))?;
                let status = response.status();
                if status != reqwest::StatusCode::ACCEPTED {
                    let body = response.text().await.unwrap_or_default();
                    return Err(format!("{orders} answered {status}: {body}"));
                }
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| format!("{orders}: {e}"))?;
                let taken: Taken =
                    serde_json::from_slice(&body).map_err(|e| format!("{orders}: {e}"))?;
                Ok(taken.workflow_id)
            }
        }
    }
}

/// Starts one saga and waits for its result.
async fn one(client: &Client, starter: &Starter, task_queue: &str, order: Order) -> Sample {
    let started = Instant::now();
    let mut start_latency = Duration::ZERO;
    // Named as the starter names it, so that a saga that was not started is looked for there.
    let mut workflow_id = starter.workflow_id(&order.order_id);
    let error = match starter.start(client, task_queue, &order).await {
        Ok(id) => {
            start_latency = started.elapsed();
            workflow_id = id;
            let handle = client.get_workflow_handle::<UntypedWorkflow>(&workflow_id);
            // A failed workflow is an answer too (the compensating scenarios end that way);
            // only not getting an answer is an error here. The checks judge the answers.
            match handle.get_result(WorkflowGetResultOptions::default()).await {
                Ok(_) | Err(temporalio_client::errors::WorkflowGetResultError::Failed(_)) => None,
                Err(e) => Some(format!("no result: {e}")),
            }
        }
        Err(e) => Some(format!("not started: {e}")),
    };
    Sample {
        order_id: order.order_id,
        workflow_id,
        latency: started.elapsed(),
        start_latency,
        error,
    }
}
