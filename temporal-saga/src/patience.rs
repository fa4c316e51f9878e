//! How long a saga waits for its infrastructure: the forward step window and the saga's deadline.
//!
//! | when | rule | enforced by |
//! |---|---|---|
//! | a forward step is scheduled | retries infrastructure errors until `min(step start + window, saga start + deadline)` | the step's schedule-to-close timeout: the server (or core, for a local activity) ends the step with a timeout, and the history records it |
//! | before each forward step | past the deadline, the saga compensates instead of going on | this module; the verdict is recorded as a marker `saga-deadline@<step>` |
//! | a compensation, a notification | retried until it succeeds | no timeout at all: cutting a compensation off would leave the world half undone |
//!
//! Only what the history records decides the saga's course (the timeout that ended a step, the
//! deadline marker), never the window or the deadline themselves: a worker restarted with other
//! values replays every saga in flight exactly as it ran.

use crate::{context::SagaContext, options::Patience};
use std::time::{Duration, SystemTime};

/// The least time a forward step is given, even past its window: enough for one attempt to
/// finish, so that a step's time running out is always reported by the step itself.
const LEAST_BUDGET: Duration = Duration::from_secs(1);

/// When a saga must stop going forward, and when one forward step must stop retrying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    deadline: SystemTime,
    step_ends: SystemTime,
}

impl Limits {
    /// The limits of a forward step that starts now, in a saga that started at `started`
    /// ([`SagaContext::start_time`], read once per saga: the SDK copies the workflow's whole
    /// start information, input included, to answer it).
    pub(crate) fn for_step(
        ctx: &impl SagaContext,
        started: Option<SystemTime>,
        patience: Patience,
    ) -> Self {
        let now = now(ctx);
        let start = started.unwrap_or(now);
        let deadline = start + patience.deadline;
        Self {
            deadline,
            step_ends: (now + patience.step_window).min(deadline),
        }
    }

    /// The schedule-to-close timeout of the step's next round.
    pub(crate) fn budget(&self, ctx: &impl SagaContext) -> Duration {
        self.step_ends
            .duration_since(now(ctx))
            .unwrap_or_default()
            .max(LEAST_BUDGET)
    }

    /// Why the step's time ran out.
    pub(crate) fn why_out_of_time(&self, patience: Patience) -> String {
        if self.step_ends >= self.deadline {
            format!(
                "the saga's deadline ({}) passed",
                humanize(patience.deadline)
            )
        } else {
            format!(
                "the step's window for infrastructure errors ({}) ran out",
                humanize(patience.step_window)
            )
        }
    }
}

/// The marker that records the deadline's verdict before forward step `step` (from 0).
pub fn deadline_marker(step: usize) -> String {
    format!("saga-deadline@{step}")
}

/// Whether the saga is past its deadline before forward step number `step`; the verdict is
/// recorded, and a replay reads it back instead of judging again.
pub(crate) fn past_deadline(
    ctx: &impl SagaContext,
    started: Option<SystemTime>,
    patience: Patience,
    step: usize,
) -> bool {
    let marker = deadline_marker(step);
    if ctx.is_replaying() {
        return ctx.patched(&marker);
    }
    let limits = Limits::for_step(ctx, started, patience);
    now(ctx) >= limits.deadline && ctx.patched(&marker)
}

pub(crate) fn now(ctx: &impl SagaContext) -> SystemTime {
    // Workflow time: the time of the workflow task, the same on every replay.
    ctx.workflow_time().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// "10m", "45s", "1h 30m".
pub fn humanize(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

/// Workflow time as RFC 3339 (UTC, seconds): deterministic, it is the workflow task's time.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(humanize(Duration::from_secs(600)), "10m");
        assert_eq!(humanize(Duration::from_millis(45_300)), "45s");
        assert_eq!(humanize(Duration::from_secs(5400)), "1h 30m");
    }

    #[test]
    fn workflow_time_reads_as_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_739_696);
        assert_eq!(rfc3339(t), "2026-11-27T00:34:56Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn markers_name_the_step() {
        assert_eq!(deadline_marker(2), "saga-deadline@2");
    }
}
