//! Starting the sagas: at most `--concurrency` in flight, each timed from its start request to
//! its result; a run that cannot finish (the worker gone, nothing finishing) gives up.

use super::{BenchArgs, process::process_is_running, workload::bench_order};
use crate::config;
use saga_protos::Order;
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
            let permits = permits.clone();
            let done = done.clone();
            let order = bench_order(args.mix.scenario(i));
            let task_queue = args.task_queue.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("never closed");
                let sample = one(&client, &task_queue, order).await;
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

/// Starts one saga and waits for its result.
async fn one(client: &Client, task_queue: &str, order: Order) -> Sample {
    let workflow_id = format!("bench-{}", order.order_id);
    let input = RawValue::from_value(&order, &PayloadConverter::serde_json());
    // As `saga start` does: no execution timeout, the contract's search attributes set.
    let options = WorkflowStartOptions::new(task_queue, &workflow_id)
        .search_attributes(crate::launch::initial_search_attributes(&order.order_id))
        .build();
    let started = Instant::now();
    let mut start_latency = Duration::ZERO;
    let error = match client
        .start_workflow(UntypedWorkflow::new(config::WORKFLOW_TYPE), input, options)
        .await
    {
        Ok(handle) => {
            start_latency = started.elapsed();
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
