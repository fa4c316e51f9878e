//! `saga bench`: a load generator that starts many sagas against a running server and worker,
//! measures throughput and start-to-result latency, samples the worker's CPU time and peak
//! memory, and then checks every saga's answer (its path in the history and, when the stores
//! are reachable, the rows they hold), so a fast wrong answer counts as a failure.
//!
//! It only speaks the workflow's public contract (workflow type `OrderSaga`, the order JSON as
//! its only argument), so it can drive any worker of that contract, including other SDKs'.

use crate::{
    config, connect,
    history::SagaHistory,
    launch,
    status::{self, OrderStatus},
};
use anyhow::Context as _;
use saga_activities::{Service, Stores, StoresConfig};
use saga_protos::{
    Item, Order,
    ids::{TransactionType, transaction_id},
    scenario::{SCENARIOS, Scenario, activity},
};
use serde::Serialize;
use std::{
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use temporalio_client::{Client, UntypedWorkflow, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::data_converters::{PayloadConverter, RawValue};

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

/// Which scenarios the sagas exercise, as a repeating schedule of the design's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// `(row number 1-7, weight)`, in the order given.
    weights: Vec<(usize, u32)>,
    schedule: Vec<&'static Scenario>,
}

impl Mix {
    /// The scenario of the `i`-th saga.
    pub fn scenario(&self, i: usize) -> &'static Scenario {
        self.schedule[i % self.schedule.len()]
    }

    fn new(weights: Vec<(usize, u32)>) -> Result<Self, String> {
        if weights.iter().all(|&(_, w)| w == 0) {
            return Err("the mix needs at least one positive weight".into());
        }
        // Smooth weighted round robin: the rows interleave instead of running in blocks, so
        // any window of the run sees about the same mix.
        let total: i64 = weights.iter().map(|&(_, w)| i64::from(w)).sum();
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, &(_, w)) in current.iter_mut().zip(&weights) {
                *c += i64::from(w);
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
                .expect("weights are not empty");
            current[best] -= total;
            schedule.push(&SCENARIOS[weights[best].0 - 1]);
        }
        Ok(Self { weights, schedule })
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let success = SCENARIOS.len();
        match s.trim() {
            "success" => return Self::new(vec![(success, 1)]),
            "all" => return Self::new((1..=success).map(|row| (row, 1)).collect()),
            _ => {}
        }
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (row, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected ROW=WEIGHT, e.g. 7=90"))?;
            let row: usize = row
                .trim()
                .parse()
                .ok()
                .filter(|r| (1..=success).contains(r))
                .ok_or_else(|| format!("`{part}`: the row must be 1 to {success}"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| *w <= 10_000)
                .ok_or_else(|| format!("`{part}`: the weight must be 0 to 10000"))?;
            weights.push((row, weight));
        }
        if weights.is_empty() {
            return Err("expected success, all, or ROW=WEIGHT,… (e.g. 7=90,5=10)".into());
        }
        Self::new(weights)
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(row, w)| format!("{row}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The order of one benchmark saga: the same shape the Python peer's load generator sends, one
/// item with a random id, so sagas do not compete for one item's stock.
pub fn bench_order(scenario: &Scenario) -> Order {
    let item = uuid::Uuid::new_v4().as_u128() % 1_000_000 + 1;
    Order {
        order_id: scenario.fresh_order_id(),
        order_date: "2018-10-19T10:50:16+08:00".into(),
        customer_id: "c1".into(),
        items: vec![Item {
            item_id: item.to_string(),
            qty: 1.0,
            description: "x".into(),
            unit_price: 1.5,
        }],
        ..Default::default()
    }
}

/// One saga as the load generator saw it.
#[derive(Debug, Clone)]
struct Sample {
    order_id: String,
    workflow_id: String,
    latency: Duration,
    /// Set when the saga could not be started or its result not read.
    error: Option<String>,
}

/// CPU time and memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcSample {
    /// User + system CPU seconds of all its threads.
    pub cpu_s: f64,
    /// Lifetime peak resident set (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` (`pid` "self" for this process).
    pub fn read(pid: &str) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat (is the process running?)"))?;
        let fields = stat_fields_after_name(&stat);
        // utime and stime are fields 14 and 15 of the line; `fields` starts at field 3.
        let ticks = |i: usize| -> anyhow::Result<u64> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .with_context(|| format!("unexpected /proc/{pid}/stat: {stat}"))
        };
        let cpu_s = (ticks(11)? + ticks(12)?) as f64 / clock_ticks_per_second();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Self {
            cpu_s,
            peak_rss_kib,
        })
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A process's share of the timed window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessFigures {
    pub pid: String,
    pub cpu_s: f64,
    /// CPU seconds over wall seconds: 1.0 is one core busy all the time.
    pub cores_busy: f64,
    pub cpu_ms_per_saga: f64,
    pub peak_rss_mib: f64,
}

fn process_figures(
    pid: &str,
    before: ProcSample,
    after: ProcSample,
    wall: f64,
    sagas: usize,
) -> ProcessFigures {
    let cpu_s = after.cpu_s - before.cpu_s;
    ProcessFigures {
        pid: pid.to_owned(),
        cpu_s,
        cores_busy: cpu_s / wall,
        cpu_ms_per_saga: cpu_s * 1000.0 / sagas.max(1) as f64,
        peak_rss_mib: after.peak_rss_kib as f64 / 1024.0,
    }
}

/// Start-to-result latency percentiles, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    fn of(samples: &[Sample]) -> Self {
        let mut ms: Vec<f64> = samples
            .iter()
            .map(|s| s.latency.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        Self {
            p50_ms: percentile(&ms, 0.50),
            p95_ms: percentile(&ms, 0.95),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
            mean_ms: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What `saga bench` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub task_queue: String,
    pub mix: String,
    pub sagas: usize,
    pub concurrency: usize,
    pub warmup: usize,
    pub wall_s: f64,
    pub sagas_per_s: f64,
    pub latency: Latency,
    pub worker: Option<ProcessFigures>,
    pub server: Option<ProcessFigures>,
    /// This load generator's own CPU time in the window.
    pub bench_cpu_s: f64,
    /// Sagas (warm-up included) whose history was checked against the design.
    pub paths_checked: usize,
    /// Sagas whose rows were checked in the stores.
    pub stores_checked: usize,
    /// Sagas that completed, and that failed as their scenario says they must.
    pub completed: usize,
    pub compensated: usize,
    /// Sagas with a wrong or missing answer; the run fails when this is not zero.
    pub failures: usize,
    /// The first few failures, explained.
    pub failure_examples: Vec<String>,
}

impl Report {
    /// The human-readable report.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} sagas (+{} warm-up) at concurrency {} on queue {}, mix {}",
            self.label, self.sagas, self.warmup, self.concurrency, self.task_queue, self.mix
        );
        let _ = writeln!(
            out,
            "  throughput  {:.1} sagas/s ({:.2} s)",
            self.sagas_per_s, self.wall_s
        );
        let l = &self.latency;
        let _ = writeln!(
            out,
            "  latency     p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
        for (name, p) in [("worker", &self.worker), ("server", &self.server)] {
            if let Some(p) = p {
                let _ = writeln!(
                    out,
                    "  {name:<11} pid {}: {:.2} CPU s, {:.2} ms/saga, {:.2} cores busy, peak RSS {:.1} MiB",
                    p.pid, p.cpu_s, p.cpu_ms_per_saga, p.cores_busy, p.peak_rss_mib
                );
            }
        }
        let _ = writeln!(out, "  bench       {:.2} CPU s", self.bench_cpu_s);
        let _ = writeln!(
            out,
            "  checked     {} paths, {} stores: {} completed, {} compensated as designed, {} failures",
            self.paths_checked,
            self.stores_checked,
            self.completed,
            self.compensated,
            self.failures
        );
        for f in &self.failure_examples {
            let _ = writeln!(out, "    {f}");
        }
        out
    }
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
    crate::search_attributes::ensure(&client).await?;
    let stores = match (&args.data_dir, args.no_store_check) {
        (Some(dir), false) => Some(open_stores(dir).await?),
        _ => None,
    };

    let mut samples = Vec::with_capacity(args.warmup + args.sagas);
    if args.warmup > 0 {
        let (warm, _) = drive(&client, args, 0, args.warmup, true)
            .await
            .context("warming up")?;
        samples.extend(warm);
    }

    let worker_before = read_pid(args.worker_pid)?;
    let server_before = read_pid(args.server_pid)?;
    let bench_before = ProcSample::read("self")?;
    let (timed, wall) = drive(&client, args, args.warmup, args.sagas, args.quiet).await?;
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
    let latency = Latency::of(&timed);
    samples.extend(timed);

    if !args.quiet {
        eprintln!("checking {} sagas…", samples.len());
    }
    let verdicts = check_all(&client, stores.as_ref(), &samples).await;
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

async fn open_stores(dir: &std::path::Path) -> anyhow::Result<Stores> {
    let db = |s: Service| saga_activities::DbConfig::new(s.default_url(dir));
    let config = StoresConfig {
        orders: db(Service::Orders),
        payments: db(Service::Payments),
        inventory: db(Service::Inventory),
        notifications: db(Service::Notifications),
        default_stock: config::DEFAULT_STOCK,
    };
    Stores::open(&config, &Service::ALL)
        .await
        .with_context(|| format!("opening the stores under {}", dir.display()))
}

/// Runs sagas `first..first + count` with at most `concurrency` in flight; returns them and
/// the wall time from the first start to the last result. Fails early when the worker under
/// test dies or nothing finishes for `--stall-timeout`, rather than waiting for good.
async fn drive(
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

/// Whether `pid` is a live process (an exited child waiting to be reaped counts as gone).
fn process_is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The first field after the name is the state.
        let state = stat_fields_after_name(&stat).first().copied();
        !matches!(state, Some("Z" | "X") | None)
    })
}

/// The fields of a `/proc/PID/stat` line from the third on (state, ppid, …). The command name
/// before them may hold spaces and parentheses, so they are counted after the last ')'.
fn stat_fields_after_name(stat: &str) -> Vec<&str> {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    rest.split_whitespace().collect()
}

/// Starts one saga and waits for its result.
async fn one(client: &Client, task_queue: &str, order: Order) -> Sample {
    let workflow_id = format!("bench-{}", order.order_id);
    let input = RawValue::from_value(&order, &PayloadConverter::serde_json());
    let options = WorkflowStartOptions::new(task_queue, &workflow_id)
        .execution_timeout(config::EXECUTION_TIMEOUT)
        .build();
    let started = Instant::now();
    let error = match client
        .start_workflow(UntypedWorkflow::new(config::WORKFLOW_TYPE), input, options)
        .await
    {
        Ok(handle) => {
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
        error,
    }
}

struct Verdict {
    path_checked: bool,
    store_checked: bool,
    /// Whether it completed (true) or compensated (false) as designed, or why it is wrong.
    outcome: Result<bool, String>,
}

/// Checks every saga, a few at a time, after the timed window.
async fn check_all(client: &Client, stores: Option<&Stores>, samples: &[Sample]) -> Vec<Verdict> {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(samples)
        .map(|s| check(client, stores, s))
        .buffered(16)
        .collect()
        .await
}

async fn check(client: &Client, stores: Option<&Stores>, sample: &Sample) -> Verdict {
    let mut verdict = Verdict {
        path_checked: false,
        store_checked: false,
        outcome: Err(String::new()),
    };
    let id = &sample.order_id;
    if let Some(error) = &sample.error {
        verdict.outcome = Err(format!("{id}: {error}"));
        return verdict;
    }
    let history = match launch::history(client, &sample.workflow_id).await {
        Ok(h) => h,
        Err(e) => {
            verdict.outcome = Err(format!("{id}: {e:#}"));
            return verdict;
        }
    };
    verdict.path_checked = true;
    if !launch::matches_design(id, &history) {
        verdict.outcome = Err(path_mismatch(id, &history));
        return verdict;
    }
    let scenario = Scenario::for_order_id(id);
    if let Some(stores) = stores {
        verdict.store_checked = true;
        let rows = match status::read(stores, id).await {
            Ok(rows) => rows,
            Err(e) => {
                verdict.outcome = Err(format!("{id}: reading the stores: {e:#}"));
                return verdict;
            }
        };
        if let Err(why) = check_rows(scenario, id, &rows) {
            verdict.outcome = Err(format!("{id}: {why}"));
            return verdict;
        }
    }
    verdict.outcome = Ok(scenario.completes);
    verdict
}

fn path_mismatch(id: &str, history: &SagaHistory) -> String {
    let scenario = Scenario::for_order_id(id);
    format!(
        "{id}: ended {} by [{}], the design says {} by [{}]",
        history.closed.label(),
        history.path.join(", "),
        if scenario.completes {
            "Completed"
        } else {
            "Failed (SagaFailed)"
        },
        scenario.path.join(", ")
    )
}

/// What the stores must hold once a saga has taken its scenario's path: every activity in the
/// path committed exactly one row (failures are injected after the commit), with the design's
/// deterministic transaction ids and amounts.
pub fn check_rows(scenario: &Scenario, order_id: &str, rows: &OrderStatus) -> Result<(), String> {
    let ran = |a: &str| scenario.path.contains(&a);
    let order = rows.order.as_ref().ok_or("no order row")?;
    let status = if ran(activity::UPDATE_ORDER_STATUS) {
        "Pending"
    } else {
        "New"
    };
    if order.order_status != status {
        return Err(format!(
            "order status {}, expected {status}",
            order.order_status
        ));
    }
    let mut want_payments = Vec::new();
    if ran(activity::PROCESS_PAYMENT) {
        want_payments.push((TransactionType::Debit, order.total_cents));
    }
    if ran(activity::PROCESS_REFUND) {
        want_payments.push((TransactionType::Credit, -order.total_cents));
    }
    let mut got: Vec<(String, String, i64)> = rows
        .payments
        .iter()
        .map(|p| {
            (
                p.payment_type.clone(),
                p.transaction_id.clone(),
                p.amount_cents,
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String, i64)> = want_payments
        .iter()
        .map(|&(kind, cents)| {
            (
                kind.as_str().to_owned(),
                transaction_id(order_id, kind),
                cents,
            )
        })
        .collect();
    want.sort();
    if got != want {
        return Err(format!("ledger {got:?}, expected {want:?}"));
    }
    let mut want_inventory = Vec::new();
    if ran(activity::RESERVE_INVENTORY) {
        want_inventory.push(TransactionType::Reserve);
    }
    if ran(activity::RELEASE_INVENTORY) {
        want_inventory.push(TransactionType::Release);
    }
    let mut got: Vec<(String, String)> = rows
        .inventory
        .iter()
        .map(|t| (t.transaction_type.clone(), t.transaction_id.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = want_inventory
        .iter()
        .map(|&k| (k.as_str().to_owned(), transaction_id(order_id, k)))
        .collect();
    want.sort();
    if got != want {
        return Err(format!("inventory {got:?}, expected {want:?}"));
    }
    if let [a, b] = rows.inventory.as_slice()
        && a.items != b.items
    {
        return Err("the release does not give back the reservation".into());
    }
    let got: Vec<&str> = rows
        .notifications
        .iter()
        .map(|n| n.status.as_str())
        .collect();
    let want: &[&str] = match (ran(activity::NOTIFY), scenario.completes) {
        (false, _) => &[],
        (true, true) => &["success"],
        (true, false) => &["failed"],
    };
    if got != want {
        return Err(format!("notifications {got:?}, expected {want:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_interleave() {
        let all: Mix = "all".parse().unwrap();
        let prefixes: Vec<&str> = (0..7).map(|i| all.scenario(i).prefix).collect();
        assert_eq!(prefixes, ["1", "11", "2", "22", "3", "33", ""]);

        let success: Mix = "success".parse().unwrap();
        assert!((0..10).all(|i| success.scenario(i).completes));

        let mix: Mix = "7=90,5=10".parse().unwrap();
        let failing = (0..100).filter(|&i| !mix.scenario(i).completes).count();
        assert_eq!(failing, 10);
        // Interleaved: the first ten sagas already include one of the rarer row.
        assert!((0..10).any(|i| mix.scenario(i).prefix == "3"));
        assert_eq!(mix.to_string(), "7=90,5=10");

        for bad in ["", "8=1", "0=1", "7", "7=x", "7=0"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn a_missing_process_is_not_running() {
        assert!(process_is_running(std::process::id()));
        // Above the kernel's pid_max (at most 2^22), so never a live process.
        assert!(!process_is_running(u32::MAX));
    }

    #[test]
    fn reads_this_process_from_proc() {
        let s = ProcSample::read("self").unwrap();
        assert!(s.peak_rss_kib > 0);
        assert!(s.cpu_s >= 0.0);
    }

    #[test]
    fn bench_orders_are_valid_and_select_their_scenario() {
        for s in &SCENARIOS {
            let order = bench_order(s);
            saga_protos::validate_order(&order).unwrap();
            assert_eq!(Scenario::for_order_id(&order.order_id), s);
        }
    }
}
