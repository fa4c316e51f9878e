//! How a saga runs its steps: dispatch, patience, retry rounds, compensation order, routing.
//!
//! None of these settings can break a saga in flight when a worker restarts with other values:
//! each reaches the history only through something the history records.
//!
//! | setting | used for | why a change is safe with sagas in flight |
//! |---|---|---|
//! | [`SagaOptions::dispatch`] | how the next step is dispatched | the choice is recorded when it is made ([`crate::dispatch`]); replay follows the record |
//! | [`SagaOptions::legacy_dispatch`] | sagas started before the choice was recorded | nothing else can tell how their steps ran |
//! | [`SagaOptions::task_queues`] | the task queue of a regular activity | replay does not compare task queues |
//! | [`Patience`] | a forward step's schedule-to-close timeout; the deadline check | the timeout is an option of the scheduled step, and the check's verdict is recorded ([`crate::patience`]) |
//! | [`Retries`] | each round's retry policy | an option of the scheduled round; its outcome is what the history records |
//! | [`Compensation`] | reverse or parallel, stop or go on after a failed compensation | decides which commands are issued: change it only behind a version ([`crate::version`]) |

use std::{collections::BTreeMap, time::Duration};
use temporalio_common::RetryPolicy;

/// How a step is dispatched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Dispatch {
    /// Regular activities: each step is scheduled through the server and appears in the history
    /// as ActivityTaskScheduled/Started/Completed. Works across task queues and hosts.
    #[default]
    Remote,
    /// Local activities: steps run in the workflow worker's process and are recorded as markers,
    /// which saves server round trips. Needs every step's activity in the workflow worker.
    Local,
}

impl Dispatch {
    /// `remote` or `local`, as markers and command lines spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Remote => "remote",
            Self::Local => "local",
        }
    }

    /// The other mode.
    pub const fn other(self) -> Self {
        match self {
            Self::Remote => Self::Local,
            Self::Local => Self::Remote,
        }
    }
}

impl std::fmt::Display for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dispatch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "remote" => Ok(Self::Remote),
            "local" => Ok(Self::Local),
            other => Err(format!(
                "unknown dispatch mode `{other}` (expected remote or local)"
            )),
        }
    }
}

/// How long a saga keeps trying forward while its infrastructure is down.
///
/// Business errors end a forward step at once whatever these say, and compensations are retried
/// until they succeed: a compensation that gives up leaves the world half undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// How long one forward step keeps retrying infrastructure errors before the saga gives up
    /// on it and compensates.
    pub step_window: Duration,
    /// How long after its start a saga may still run forward steps; past it, the saga
    /// compensates what it did. Use it instead of a workflow execution timeout, which cuts a
    /// saga off wherever it stands, compensations included.
    pub deadline: Duration,
}

impl Patience {
    /// A forward step rides out a ten-minute outage of its database.
    pub const DEFAULT_STEP_WINDOW: Duration = Duration::from_secs(10 * 60);
    /// A saga has half an hour to finish its forward steps.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);
}

impl Default for Patience {
    fn default() -> Self {
        Self {
            step_window: Self::DEFAULT_STEP_WINDOW,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }
}

/// The retry rounds of every activity the saga runs.
///
/// A step runs in rounds. Each round is one scheduled activity (or local activity) whose
/// retries the server (or the SDK's core) runs; between rounds the saga updates what it shows
/// and decides again.
///
/// | round | dispatch | attempts | waits between attempts | each attempt |
/// |-------|----------|----------|------------------------|--------------|
/// | 1     | the step's ([`crate::dispatch`]) | [`Retries::attempts_per_round`] | [`Retries::first_round_interval`] times [`Retries::backoff`]: 2 s, 4 s, 8 s by default | [`Retries::start_to_close`] |
/// | 2, 3, … (only after infrastructure errors) | remote | the same | [`Retries::later_interval`] each, the first at once | the same |
///
/// Later rounds are regular activities even when the first was local: the server keeps their
/// retries and backoff, so a long outage costs no workflow-task heartbeats, and the Web UI shows
/// the step pending with its attempt count and last failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retries {
    /// Each attempt must finish within this.
    pub start_to_close: Duration,
    /// Attempts in every round.
    pub attempts_per_round: u32,
    /// The first round's first wait; each next one is `backoff` times longer, up to
    /// `first_round_max_interval`.
    pub first_round_interval: Duration,
    /// The first round's backoff coefficient.
    pub backoff: f64,
    /// The first round's longest wait.
    pub first_round_max_interval: Duration,
    /// The wait between attempts of every later round.
    pub later_interval: Duration,
}

impl Default for Retries {
    /// Four attempts of 10 s at most, 2 s, 4 s and 8 s apart; later rounds an attempt every 30 s.
    fn default() -> Self {
        Self {
            start_to_close: Duration::from_secs(10),
            attempts_per_round: 4,
            first_round_interval: Duration::from_secs(2),
            backoff: 2.0,
            first_round_max_interval: Duration::from_secs(8),
            later_interval: Duration::from_secs(30),
        }
    }
}

impl Retries {
    /// The retry policy of round `number` (1 for the first).
    pub fn policy(&self, number: u32) -> RetryPolicy {
        if number == 1 {
            RetryPolicy::builder()
                .initial_interval(self.first_round_interval)
                .backoff_coefficient(self.backoff)
                .maximum_interval(self.first_round_max_interval)
                .maximum_attempts(self.attempts_per_round)
                .build()
        } else {
            RetryPolicy::builder()
                .initial_interval(self.later_interval)
                .backoff_coefficient(1.0)
                .maximum_interval(self.later_interval)
                .maximum_attempts(self.attempts_per_round)
                .build()
        }
    }
}

/// How compensations run once a forward step has failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compensation {
    /// Run every compensation at once instead of newest first. Each receives the value as the
    /// forward steps left it; their outputs are not passed on.
    pub parallel: bool,
    /// Go on with the other compensations after one fails (with its business error). Without
    /// it, the first failed compensation stops the saga: nothing more is undone until a person
    /// has looked. Compensations started in parallel always all run.
    pub continue_after_failure: bool,
}

impl Compensation {
    /// Newest first, stopping at the first compensation that fails: the default.
    pub const SEQUENTIAL: Self = Self {
        parallel: false,
        continue_after_failure: false,
    };
    /// All at once, every failure reported.
    pub const PARALLEL: Self = Self {
        parallel: true,
        continue_after_failure: true,
    };
}

/// The search attributes a saga keeps, by name (each must be a `Keyword` the namespace knows:
/// an unknown attribute fails the workflow task, and the saga would hang).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchAttributeNames {
    /// Set to the saga's outcome when it closes ([`crate::Saga::close`]).
    pub outcome: Option<&'static str>,
    /// Set to the activity a step waits on while its infrastructure is down; cleared after.
    pub waiting: Option<&'static str>,
}

/// Everything about how a saga runs that is not its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaOptions {
    /// How new steps are dispatched.
    pub dispatch: Dispatch,
    /// How the steps of a saga whose history records no dispatch choice ran (sagas started
    /// before the choice was recorded).
    pub legacy_dispatch: Dispatch,
    /// How long forward steps wait on their infrastructure.
    pub patience: Patience,
    /// The retry rounds of every activity.
    pub retries: Retries,
    /// How compensations run.
    pub compensation: Compensation,
    /// The task queue of each activity type that does not run on the workflow's own queue.
    pub task_queues: BTreeMap<String, String>,
    /// The search attributes the saga keeps up to date.
    pub search_attributes: SearchAttributeNames,
    /// The application error type with which an activity says "not in this worker": a local
    /// round that fails with it runs again at once as a regular activity (see
    /// [`crate::failure`]).
    pub not_here_error_type: &'static str,
}

/// The error type of [`SagaOptions::not_here_error_type`] by default.
pub const LOCAL_DISPATCH_UNAVAILABLE: &str = "LocalDispatchUnavailable";

impl Default for SagaOptions {
    fn default() -> Self {
        Self {
            dispatch: Dispatch::Remote,
            legacy_dispatch: Dispatch::Remote,
            patience: Patience::default(),
            retries: Retries::default(),
            compensation: Compensation::SEQUENTIAL,
            task_queues: BTreeMap::new(),
            search_attributes: SearchAttributeNames::default(),
            not_here_error_type: LOCAL_DISPATCH_UNAVAILABLE,
        }
    }
}

impl SagaOptions {
    /// The task queue of `activity`'s regular rounds; `None` is the workflow's own queue.
    pub fn task_queue_of(&self, activity: &str) -> Option<String> {
        self.task_queues.get(activity).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_reads_back_what_it_prints() {
        for mode in [Dispatch::Local, Dispatch::Remote] {
            assert_eq!(mode.to_string().parse::<Dispatch>(), Ok(mode));
            assert_eq!(mode.other().other(), mode);
        }
        assert!("both".parse::<Dispatch>().unwrap_err().contains("`both`"));
    }

    #[test]
    fn the_first_round_backs_off_and_later_rounds_keep_an_even_pace() {
        let retries = Retries::default();
        let (first, later) = (
            format!("{:?}", retries.policy(1)),
            format!("{:?}", retries.policy(2)),
        );
        assert!(first.contains("maximum_attempts: 4"), "{first}");
        assert!(first.contains("backoff_coefficient: 2.0"), "{first}");
        assert!(later.contains("maximum_attempts: 4"), "{later}");
        assert!(later.contains("backoff_coefficient: 1.0"), "{later}");
        assert!(later.contains("seconds: 30"), "{later}");
    }
}
