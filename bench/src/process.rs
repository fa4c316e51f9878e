//! The worker's and the server's share of a run: CPU time and peak memory, read from `/proc`.

use anyhow::Context as _;
use serde::Serialize;

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

pub(crate) fn process_figures(
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

/// Whether `pid` is a live process (an exited child waiting to be reaped counts as gone).
pub(crate) fn process_is_running(pid: u32) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
