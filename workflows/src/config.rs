//! How the saga dispatches its steps, fixed per worker.
//!
//! The worker builds every `OrderSaga` instance with a [`SagaConfig`] (a workflow factory), so the
//! workflow code itself reads no environment. Changing the config changes the commands a
//! workflow issues: drain in-flight sagas (or version the change with `ctx.patched`) before
//! switching the dispatch mode of a running deployment.

/// Where and how the saga's activities run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaConfig {
    pub routing: Routing,
    pub dispatch: Dispatch,
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

/// How steps are dispatched.
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
