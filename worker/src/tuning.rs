//! Worker concurrency settings: task slots, pollers, the workflow cache and eager activities.
//!
//! Defaults are the SDK's, except where `BENCHMARKS.md` shows a measured gain; every setting
//! can be changed with a `saga worker` flag or its environment variable.

use temporalio_sdk::{
    WorkerOptions,
    runtime::{
        PollerBehavior,
        worker_tuner::{FixedSizeSlotSupplier, TunerHolder},
    },
};

/// How much work one worker process takes on at once.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Tuning {
    /// Most workflow tasks processed at once.
    #[arg(long, env = "SAGA_WORKFLOW_SLOTS", default_value_t = Tuning::default().workflow_slots)]
    pub workflow_slots: usize,
    /// Most activities (remote dispatch) run at once.
    #[arg(long, env = "SAGA_ACTIVITY_SLOTS", default_value_t = Tuning::default().activity_slots)]
    pub activity_slots: usize,
    /// Most local activities (local dispatch) run at once.
    #[arg(long, env = "SAGA_LOCAL_ACTIVITY_SLOTS", default_value_t = Tuning::default().local_activity_slots)]
    pub local_activity_slots: usize,
    /// Most concurrent workflow task polls, sticky and normal queue together (at least 2).
    /// Unset: the SDK's 5, scaled by the server when it offers poller autoscaling.
    #[arg(long, env = "SAGA_WORKFLOW_POLLERS")]
    pub workflow_pollers: Option<usize>,
    /// Most concurrent activity task polls. Unset: as for workflow pollers.
    #[arg(long, env = "SAGA_ACTIVITY_POLLERS")]
    pub activity_pollers: Option<usize>,
    /// Workflows kept in memory between their tasks (0 replays every task from history).
    #[arg(long, env = "SAGA_MAX_CACHED_WORKFLOWS", default_value_t = Tuning::default().max_cached_workflows)]
    pub max_cached_workflows: usize,
    /// Activity slots a workflow task may reserve so the server hands the scheduled activity
    /// straight back in its reply (eager dispatch; 0 turns it off). Needs the server's
    /// `system.enableActivityEagerExecution`.
    #[arg(long, env = "SAGA_EAGER_ACTIVITIES", default_value_t = Tuning::default().eager_activities)]
    pub eager_activities: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            workflow_slots: 100,
            activity_slots: 100,
            local_activity_slots: 100,
            workflow_pollers: None,
            activity_pollers: None,
            max_cached_workflows: 1000,
            eager_activities: 3,
        }
    }
}

impl Tuning {
    /// Sets these values on built worker options.
    pub fn apply(&self, options: &mut WorkerOptions) {
        options.tuner = TunerHolder::builder()
            .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(self.workflow_slots.max(1)))
            .activity_task_slot_supplier(FixedSizeSlotSupplier::new(self.activity_slots.max(1)))
            .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(
                self.local_activity_slots.max(1),
            ))
            // The saga uses no Nexus operations.
            .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
            .build()
            .into();
        if let Some(n) = self.workflow_pollers {
            options.workflow_task_poller_behavior = Some(PollerBehavior::SimpleMaximum(n.max(2)));
        }
        if let Some(n) = self.activity_pollers {
            options.activity_task_poller_behavior = Some(PollerBehavior::SimpleMaximum(n.max(1)));
        }
        options.max_cached_workflows = self.max_cached_workflows;
        options.max_eager_activity_reservations_per_workflow_task = self.eager_activities;
    }
}
