//! What a run reports: throughput, latency percentiles, the processes' figures, the checks.

use super::process::ProcessFigures;
use serde::Serialize;
use std::time::Duration;

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
    pub(crate) fn of(durations: impl Iterator<Item = Duration>) -> Self {
        let mut ms: Vec<f64> = durations.map(|d| d.as_secs_f64() * 1000.0).collect();
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
    /// How long the start request itself took (the server's answer to it).
    pub start_latency: Latency,
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
        let s = &self.start_latency;
        let _ = writeln!(
            out,
            "  of which    the start request p50 {:.1} ms  p95 {:.1} ms",
            s.p50_ms, s.p95_ms
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
