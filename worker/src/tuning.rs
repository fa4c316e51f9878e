//! Worker concurrency settings: the async runtime's threads, the intake's places, task slots,
//! pollers, the workflow cache and eager activities.
//!
//! Defaults are the SDK's, except where `docs/performance-history.md` shows a measured gain; every setting
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
    /// Threads that run the worker's async work: the workflow code, its gRPC calls, the
    /// activities while they wait on their databases, the intake. 1 runs it all on the main
    /// thread, the fewest hand-offs between threads; 0 gives one thread per CPU (tokio's
    /// work-stealing scheduler, as does any number above 1). The SDK's workflow state machines
    /// and each SQLite connection have a thread of their own whatever this says. Raise it only
    /// when the worker's main thread is busy all the time (`top -H`: the thread named `saga`).
    #[arg(long, env = "SAGA_RUNTIME_THREADS", default_value_t = Tuning::default().runtime_threads)]
    pub runtime_threads: u16,
    /// Most sagas posted to the intake (`--intake`) in the worker at once; the orders beyond
    /// them wait for a place in the intake, first come first served, up to 10 s (then their
    /// saga starts anyway, not eagerly: the server queues it).
    #[arg(long, env = "SAGA_INTAKE_SAGAS", default_value_t = Tuning::default().intake_sagas,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub intake_sagas: u32,
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
    #[arg(long, env = "SAGA_WORKFLOW_POLLERS", default_value_t = Tuning::default().workflow_pollers)]
    pub workflow_pollers: usize,
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
            // A worker's async work is waiting, not computing: at the dev server's full speed
            // the whole process keeps a fifth to a quarter of a core busy, and on one thread it
            // spends 8 to 14 % less CPU per saga than on tokio's work-stealing threads, which
            // wake each other and the main thread for every message (docs/performance-history.md, "One
            // runtime thread").
            runtime_threads: 1,
            // At 100 orders in flight, 30 places kept the throughput and latency of 100 (the
            // dev server paces the sagas, not the worker) with 6 MiB less memory: more places
            // only hold more sagas waiting on the server, about 150 KB each (docs/performance-history.md,
            // "Room for 30 posted sagas").
            intake_sagas: 30,
            workflow_slots: 100,
            activity_slots: 100,
            local_activity_slots: 100,
            // Sagas started through the server wait in its task queue when no poll is open for
            // them; 20 polls instead of the SDK's 5 gave 8 % more sagas a second at 100 in flight
            // and 11 to 34 % more at 500, for 16 % less worker CPU per saga and 1.2 MiB more
            // memory (docs/performance-history.md, "Workflow task polls").
            workflow_pollers: 20,
            activity_pollers: None,
            max_cached_workflows: 1000,
            eager_activities: 3,
        }
    }
}

impl Tuning {
    /// The async runtime the worker runs on: tokio's current-thread scheduler for one thread,
    /// its multi-thread scheduler for more (0: one worker thread per CPU, tokio's default).
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self.runtime_threads {
            1 => tokio::runtime::Builder::new_current_thread(),
            0 => tokio::runtime::Builder::new_multi_thread(),
            n => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(usize::from(n));
                builder
            }
        };
        builder.enable_all().build()
    }

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
        options.workflow_task_poller_behavior =
            Some(PollerBehavior::SimpleMaximum(self.workflow_pollers.max(2)));
        if let Some(n) = self.activity_pollers {
            options.activity_task_poller_behavior = Some(PollerBehavior::SimpleMaximum(n.max(1)));
        }
        options.max_cached_workflows = self.max_cached_workflows;
        options.max_eager_activity_reservations_per_workflow_task = self.eager_activities;
    }
}

#[cfg(test)]
mod tests {
    use super::Tuning;
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_runtime_thread_is_the_current_thread_scheduler_others_are_work_stealing() {
        let one = Tuning::default().runtime().unwrap();
        assert_eq!(one.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let two = Tuning {
            runtime_threads: 2,
            ..Tuning::default()
        }
        .runtime()
        .unwrap();
        assert_eq!(two.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(two.metrics().num_workers(), 2);
        let per_cpu = Tuning {
            runtime_threads: 0,
            ..Tuning::default()
        }
        .runtime()
        .unwrap();
        assert_eq!(
            per_cpu.handle().runtime_flavor(),
            RuntimeFlavor::MultiThread
        );
        assert_eq!(
            per_cpu.metrics().num_workers(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
}
