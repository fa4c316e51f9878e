//! Admission: how many posted sagas the worker holds at once; the rest wait at the door.
//!
//! | a posted order | holds a place | gives it back |
//! |---|---|---|
//! | waits for a free place (first come, first served) | from the start call | when its saga leaves the worker's cache (it ended, or was evicted) |
//! | its start fails, or the saga already existed | during the call only | when the call returns |
//! | its saga's first task ran elsewhere (another worker, or no eager start) | until [`UNSEEN_AFTER`] | then |
//! | found no free place within [`WAIT_FOR_A_PLACE`], or came while the worker stops | none | - (started anyway, not eagerly: the server queues its first task, counted in `saga_intake_unplaced_total`) |
//!
//! Why: the intake starts each saga in this worker (eager start), so without a bound every
//! order posted at once is a saga in the worker's memory at once (its workflow state, its
//! steps, the SDK's bookkeeping: about 150 KB each, docs/performance-history.md "Memory"). Sagas in the
//! worker do not finish sooner for being many: the server paces each one's workflow tasks.
//! Holding the excess as waiting requests costs a few hundred bytes each and keeps the
//! order fair; bounding the SDK's cache or slots instead makes the excess wait in buffers or
//! the server's queue, out of order (docs/performance-history.md, "Tried and not adopted"). Waiting is
//! bounded too, so a worker whose sagas are stuck (retrying a database that is down) delays
//! orders but never refuses them: past the wait they go through the server's queue.
//!
//! The worker reports its sagas' comings and goings through the SDK's worker interceptor
//! ([`Admission::interceptor`]): a saga's first activation names its workflow id, and the
//! eviction that follows its end names its run.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use temporalio_common::protos::coresdk::workflow_activation::{
    WorkflowActivation, workflow_activation_job::Variant,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// How long a posted order waits for a free place before its saga is started without one.
pub const WAIT_FOR_A_PLACE: Duration = Duration::from_secs(10);

/// How long a place stays taken for a started saga this worker has not seen begin.
pub const UNSEEN_AFTER: Duration = Duration::from_secs(30);

/// The places, shared by the intake (which takes them) and the worker interceptor (which
/// gives them back).
#[derive(Debug, Clone)]
pub struct Admission {
    places: Arc<Semaphore>,
    held: Arc<Mutex<Held>>,
    /// Orders waiting for a place now.
    waiting: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct Held {
    /// Started (or being started) from the intake, not yet seen in this worker: by workflow id.
    starting: HashMap<String, (OwnedSemaphorePermit, Instant)>,
    /// In this worker's cache: by run id.
    running: HashMap<String, OwnedSemaphorePermit>,
}

/// What [`Admission::admit`] decided for one order.
#[must_use]
pub struct Admitted {
    /// True: a place is held for the saga, start it eagerly (and call
    /// [`Admission::not_started`] if the start does not go ahead). False: no place came free
    /// in time or the worker is stopping; start it through the server's queue.
    pub with_a_place: bool,
}

/// Counts an order as waiting for as long as it lives, however its wait ends (a client that
/// hangs up drops the request mid-wait).
struct Waiting<'a>(&'a Admission);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.publish(&self.0.held());
    }
}

impl Admission {
    /// `places`: at least 1 (`--intake-sagas` takes 1 to 100,000).
    pub fn new(places: u32) -> Self {
        Self {
            places: Arc::new(Semaphore::new(places.max(1) as usize)),
            held: Arc::default(),
            waiting: Arc::default(),
        }
    }

    /// Waits for a free place for the saga `workflow_id`, at most [`WAIT_FOR_A_PLACE`].
    pub async fn admit(&self, workflow_id: &str) -> Admitted {
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => Some(place),
            Err(_) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let _waiting = Waiting(self);
                self.publish(&self.held());
                let place =
                    tokio::time::timeout(WAIT_FOR_A_PLACE, self.places.clone().acquire_owned())
                        .await;
                // Closed (the worker stops) or timed out alike: no place.
                place.ok().and_then(Result::ok)
            }
        };
        let with_a_place = place.is_some();
        if !with_a_place {
            saga_activities::metrics::intake_unplaced();
        }
        let mut held = self.held();
        if let Some(place) = place {
            // Posted twice at once, an order holds one place (the second replaces the first),
            // and the post that finds its saga already started gives it back: that saga then
            // runs outside the bound, which is rare enough not to matter.
            held.starting
                .insert(workflow_id.to_owned(), (place, Instant::now()));
        }
        self.publish(&held);
        Admitted { with_a_place }
    }

    /// The start of `workflow_id` failed or found its saga already there: its place is free.
    pub fn not_started(&self, workflow_id: &str) {
        let mut held = self.held();
        if held.starting.remove(workflow_id).is_some() {
            self.publish(&held);
        }
    }

    /// The worker stops: the orders still waiting go ahead at once, without a place, so none
    /// outlasts the shutdown's grace period (their sagas go through the server's queue).
    pub fn close(&self) {
        self.places.close();
    }

    /// The bookkeeping; a panic elsewhere while it was held leaves it consistent (each
    /// change is one map operation), so a poisoned lock is used as it is.
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The gauges `saga_intake_sagas` and `saga_intake_waiting` (when metrics are on).
    fn publish(&self, held: &Held) {
        saga_activities::metrics::intake_admission(
            held.starting.len() + held.running.len(),
            self.waiting.load(Ordering::Relaxed),
        );
    }

    /// Sagas held now (places taken).
    #[cfg(test)]
    fn taken(&self) -> usize {
        let held = self.held();
        held.starting.len() + held.running.len()
    }

    /// What the worker interceptor reports: a saga begun here moves from starting to running
    /// under its run id; a run that leaves the cache gives its place back.
    pub fn observe(&self, activation: &WorkflowActivation) {
        for job in &activation.jobs {
            match &job.variant {
                Some(Variant::InitializeWorkflow(init)) => {
                    let mut held = self.held();
                    if let Some((place, _)) = held.starting.remove(&init.workflow_id) {
                        held.running.insert(activation.run_id.clone(), place);
                    }
                }
                Some(Variant::RemoveFromCache(_)) => {
                    let mut held = self.held();
                    if held.running.remove(&activation.run_id).is_some() {
                        self.publish(&held);
                    }
                }
                _ => {}
            }
        }
    }

    /// Hands the worker's activations to [`Admission::observe`].
    pub fn interceptor(&self) -> Interceptor {
        Interceptor(self.clone())
    }

    /// Gives back, every second, the places of sagas this worker has not seen begin (their
    /// first task went elsewhere), so they cannot shut the door for good.
    pub async fn sweep(self) {
        let mut every_second = tokio::time::interval(Duration::from_secs(1));
        loop {
            every_second.tick().await;
            let mut held = self.held();
            held.forget_unseen();
            self.publish(&held);
        }
    }
}

impl Held {
    fn forget_unseen(&mut self) {
        self.starting
            .retain(|_, (_, since)| since.elapsed() < UNSEEN_AFTER);
    }
}

/// The SDK's worker interceptor that reports to an [`Admission`]. (A worker that stops does not
/// evict the sagas idle in its cache, so their places stay taken: the process is ending.)
pub struct Interceptor(Admission);

#[async_trait::async_trait(?Send)]
impl temporalio_sdk::interceptors::WorkerInterceptor for Interceptor {
    async fn on_workflow_activation(&self, activation: &WorkflowActivation) -> anyhow::Result<()> {
        self.0.observe(activation);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::protos::coresdk::workflow_activation::{
        InitializeWorkflow, RemoveFromCache, WorkflowActivationJob,
    };

    fn activation(run_id: &str, job: Variant) -> WorkflowActivation {
        WorkflowActivation {
            run_id: run_id.to_owned(),
            jobs: vec![WorkflowActivationJob { variant: Some(job) }],
            ..Default::default()
        }
    }

    fn begins(workflow_id: &str, run_id: &str) -> WorkflowActivation {
        activation(
            run_id,
            Variant::InitializeWorkflow(InitializeWorkflow {
                workflow_id: workflow_id.to_owned(),
                ..Default::default()
            }),
        )
    }

    fn leaves(run_id: &str) -> WorkflowActivation {
        activation(run_id, Variant::RemoveFromCache(RemoveFromCache::default()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_saga_holds_its_place_until_it_leaves_the_cache_and_the_next_order_waits_for_it() {
        let admission = Admission::new(1);
        assert!(admission.admit("order-a").await.with_a_place);
        admission.observe(&begins("order-a", "run-a"));
        let next = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit("order-b").await.with_a_place }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!next.is_finished(), "the one place is taken");
        admission.observe(&leaves("run-a"));
        assert!(
            next.await.unwrap(),
            "order-b took the place order-a gave back"
        );
        assert_eq!(admission.taken(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn places_come_back_from_failed_starts_and_from_sagas_begun_elsewhere() {
        let admission = Admission::new(2);
        let _ = admission.admit("order-failed").await;
        admission.not_started("order-failed");
        assert_eq!(admission.taken(), 0);

        let _ = admission.admit("order-elsewhere").await;
        tokio::spawn(admission.clone().sweep());
        tokio::time::sleep(UNSEEN_AFTER + Duration::from_secs(2)).await;
        assert_eq!(admission.taken(), 0, "never seen begin here: given back");
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_worker_stops_the_waiting_orders_go_ahead_at_once_and_a_hang_up_stops_waiting()
    {
        let admission = Admission::new(1);
        let _ = admission.admit("order-a").await;
        // A client that hangs up mid-wait: its request is dropped, and so is its count.
        let hung_up =
            tokio::time::timeout(Duration::from_secs(1), admission.admit("order-b")).await;
        assert!(hung_up.is_err());
        assert_eq!(admission.waiting.load(Ordering::Relaxed), 0);

        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit("order-c").await.with_a_place }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        admission.close();
        let started = tokio::time::Instant::now();
        assert!(!waiting.await.unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it did not wait out the 10 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_place_free_in_time_the_order_goes_ahead_without_one() {
        let admission = Admission::new(1);
        let _ = admission.admit("order-a").await;
        assert!(!admission.admit("order-b").await.with_a_place);
        assert_eq!(admission.taken(), 1);
    }
}
