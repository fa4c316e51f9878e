//! What the worker tells the saga: where its steps run and how long it may wait for them.
//!
//! The worker builds every `OrderSaga` instance with a [`SagaConfig`] (a workflow factory), so the
//! workflow code itself reads no environment. None of these settings can break a saga in flight
//! when it changes: each one reaches the history only through something the history records.
//!
//! | setting | used for | why a change is safe with sagas in flight |
//! |---|---|---|
//! | [`SagaConfig::dispatch`] | how the next step is dispatched | the choice is recorded when it is made ([`crate::dispatch`]); replay follows the record |
//! | [`SagaConfig::legacy_dispatch`] | sagas started before the choice was recorded | nothing else can tell how their steps ran |
//! | [`SagaConfig::routing`] | the task queue of a regular activity | replay does not compare task queues |
//! | [`Patience::step_window`], [`Patience::deadline`] | a forward step's schedule-to-close timeout; the deadline check | the timeout is an option of the scheduled step, and the check's verdict is recorded ([`crate::patience`]) |

use std::time::Duration;

/// Where and how the saga's activities run, and how long forward steps may wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaConfig {
    pub routing: Routing,
    /// How new steps are dispatched.
    pub dispatch: Dispatch,
    /// How the steps of a saga whose history records no dispatch choice ran: sagas started by a
    /// worker older than the recorded choice used the worker's `--dispatch`, remote by default.
    pub legacy_dispatch: Dispatch,
    pub patience: Patience,
}

/// How long a saga keeps trying forward while its infrastructure is down.
///
/// Business errors end a forward step at once whatever these say, and compensations are retried
/// until they succeed: a compensation that gives up leaves money taken or stock held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// How long one forward step keeps retrying infrastructure errors before the saga gives up
    /// on it and compensates.
    pub step_window: Duration,
    /// How long after its start a saga may still run forward steps; past it, the saga
    /// compensates what it did. Replaces the reference's 600 s workflow execution timeout,
    /// which cut sagas off wherever they stood, compensations included.
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

/// The task queue of each service's activities; `None` schedules on the workflow's own queue
/// (the all-in-one worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub orders: Option<String>,
    pub payments: Option<String>,
    pub inventory: Option<String>,
    pub notifications: Option<String>,
}

impl Routing {
    /// The task queue of the service that runs `activity_type`.
    pub fn queue_of(&self, activity_type: &str) -> Option<String> {
        use saga_protos::scenario::activity::*;
        match activity_type {
            PROCESS_ORDER | UPDATE_ORDER_STATUS => self.orders.clone(),
            PROCESS_PAYMENT | PROCESS_REFUND => self.payments.clone(),
            RESERVE_INVENTORY | RELEASE_INVENTORY => self.inventory.clone(),
            NOTIFY => self.notifications.clone(),
            _ => None,
        }
    }
}

/// How a step is dispatched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// Regular activities: each step is scheduled through the server and appears in the history
    /// as ActivityTaskScheduled/Started/Completed. Works across task queues and hosts.
    #[default]
    Remote,
    /// Local activities: steps run in the workflow worker's process and are recorded as markers,
    /// which saves server round trips. Needs every service in the workflow worker's process.
    Local,
}

impl Dispatch {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Remote => "remote",
            Self::Local => "local",
        }
    }

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
