//! The services' own metrics, served with the SDK's on the worker's Prometheus endpoint.
//!
//! Outcomes are counted here, on the activity side, because workflow code must stay free of side
//! effects (it is replayed) and the Rust SDK has no replay-aware workflow meter. Each count is
//! made when an activity reports success, so it is at least once: only an activity whose
//! completion is lost after it returned (a worker crash at that instant) is counted twice.
//!
//! | metric | labels | counted when |
//! |---|---|---|
//! | `saga_outcomes_total` | `outcome` | `completed`: the success notification is published; `compensation-failed`: the failure notification is published; `compensated`: `UpdateOrderStatus` succeeds — always the last compensation of a fully undone saga (a cancelled saga's compensations count here too) |
//! | `saga_compensations_total` | `activity` | a compensation succeeds |
//! | `saga_compensation_failures_total` | `activity` | a compensation fails with its business error |
//! | `saga_store_latency` | `activity` | histogram of one local transaction, in milliseconds |
//! | `saga_infrastructure_faults_total` | `activity` | an attempt fails for infrastructure reasons (database down, locked, in conflict) |
//! | `saga_steps_waiting_on_infrastructure` | `activity` | gauge: steps (saga and activity type) whose last attempt in this process failed for infrastructure reasons in the last two minutes; a step leaves it when an attempt gets through |
//! | `saga_webhook_deliveries_total` | `subscriber` | a webhook attempt got a 2xx: delivered |
//! | `saga_webhook_retries_total` | `subscriber` | a webhook attempt failed and will be tried again |
//! | `saga_webhook_dead_total` | `subscriber` | a webhook delivery's last attempt failed: dead |
//! | `saga_webhook_attempt_latency` | `subscriber` | histogram of one webhook attempt, in milliseconds |
//! | `saga_intake_sagas` | - | gauge: sagas posted to the worker's order intake that are in the worker now (at most `SAGA_INTAKE_SAGAS`) |
//! | `saga_intake_waiting` | - | gauge: orders posted to the intake that wait for one of those places |
//! | `saga_intake_unplaced_total` | - | orders the intake started without a place (none came free within 10 s, or the worker was stopping): through the server's queue, outside the bound |
//!
//! The steps-waiting gauge is what an operator watches during an outage: a stuck database shows
//! as steps waiting, not as failed orders. Each process counts the attempts it ran, so a
//! deployment's total is the sum over its workers (a step whose attempts moved between workers
//! may count in two for up to two minutes).
//!
//! Nothing is recorded until [`install`] is called (the worker does when metrics are on).

use saga_protos::scenario::activity as activity_type;
use saga_protos::scenario::activity::{PROCESS_REFUND, RELEASE_INVENTORY, UPDATE_ORDER_STATUS};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, Gauge, HistogramDuration, MetricAttributes, MetricKeyValue,
    MetricParameters, NewAttributes,
};

pub const OUTCOMES: &str = "saga_outcomes_total";
pub const COMPENSATIONS: &str = "saga_compensations_total";
pub const COMPENSATION_FAILURES: &str = "saga_compensation_failures_total";
pub const STORE_LATENCY: &str = "saga_store_latency";
pub const INFRASTRUCTURE_FAULTS: &str = "saga_infrastructure_faults_total";
pub const STEPS_WAITING: &str = "saga_steps_waiting_on_infrastructure";

/// How long a step counts as waiting after its last failed attempt: longer than the 30 s
/// between later attempts plus a round's turnaround.
const WAITING_FOR: Duration = Duration::from_secs(120);
pub const WEBHOOK_DELIVERIES: &str = "saga_webhook_deliveries_total";
pub const WEBHOOK_RETRIES: &str = "saga_webhook_retries_total";
pub const WEBHOOK_DEAD: &str = "saga_webhook_dead_total";
pub const WEBHOOK_ATTEMPT_LATENCY: &str = "saga_webhook_attempt_latency";
pub const INTAKE_SAGAS: &str = "saga_intake_sagas";
pub const INTAKE_WAITING: &str = "saga_intake_waiting";
pub const INTAKE_UNPLACED: &str = "saga_intake_unplaced_total";

struct Instruments {
    meter: Arc<dyn CoreMeter>,
    outcomes: Counter,
    compensations: Counter,
    compensation_failures: Counter,
    store_latency: HistogramDuration,
    infrastructure_faults: Counter,
    steps_waiting: Gauge,
    /// (workflow id, activity type) → when its last attempt failed for infrastructure reasons.
    waiting: Mutex<HashMap<(String, &'static str), Instant>>,
    webhook_deliveries: Counter,
    webhook_retries: Counter,
    webhook_dead: Counter,
    webhook_attempt_latency: HistogramDuration,
    intake_sagas: Gauge,
    intake_waiting: Gauge,
    intake_unplaced: Counter,
    /// For the metrics without labels, made once: the intake's are recorded on every order.
    no_labels: MetricAttributes,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Records the services' metrics on `meter` from now on. A process has one meter: later calls
/// change nothing.
pub fn install(meter: Arc<dyn CoreMeter>) {
    INSTRUMENTS.get_or_init(|| {
        let param = |name: &'static str, description: &'static str| {
            MetricParameters::builder()
                .name(name)
                .description(description)
                .build()
        };
        Instruments {
            outcomes: meter.counter(param(OUTCOMES, "Sagas ended, by outcome")),
            compensations: meter.counter(param(
                COMPENSATIONS,
                "Compensating transactions committed, by activity type",
            )),
            compensation_failures: meter.counter(param(
                COMPENSATION_FAILURES,
                "Compensations that failed with their business error, by activity type",
            )),
            store_latency: meter.histogram_duration(param(
                STORE_LATENCY,
                "Duration of one local transaction, by activity type",
            )),
            infrastructure_faults: meter.counter(param(
                INFRASTRUCTURE_FAULTS,
                "Attempts that failed for infrastructure reasons, by activity type",
            )),
            steps_waiting: meter.gauge(param(
                STEPS_WAITING,
                "Steps whose last attempt failed for infrastructure reasons, by activity type",
            )),
            waiting: Mutex::default(),
            webhook_deliveries: meter.counter(param(
                WEBHOOK_DELIVERIES,
                "Webhook deliveries a subscriber answered with 2xx",
            )),
            webhook_retries: meter.counter(param(
                WEBHOOK_RETRIES,
                "Failed webhook attempts that will be tried again",
            )),
            webhook_dead: meter.counter(param(
                WEBHOOK_DEAD,
                "Webhook deliveries given up after their last attempt (dead letters)",
            )),
            webhook_attempt_latency: meter.histogram_duration(param(
                WEBHOOK_ATTEMPT_LATENCY,
                "Duration of one webhook attempt, by subscriber",
            )),
            intake_sagas: meter.gauge(param(
                INTAKE_SAGAS,
                "Sagas posted to the order intake that are in the worker now",
            )),
            intake_waiting: meter.gauge(param(
                INTAKE_WAITING,
                "Orders posted to the intake waiting for a place in the worker",
            )),
            intake_unplaced: meter.counter(param(
                INTAKE_UNPLACED,
                "Orders the intake started without a place, through the server's queue",
            )),
            no_labels: meter.new_attributes(NewAttributes::new(Vec::new())),
            meter,
        }
    });
    // A step that stops being retried (its saga gave up, or moved to another worker) leaves the
    // gauge once its entry is stale; re-publish now and then so that shows without new faults.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                with(Instruments::publish_waiting);
            }
        });
    }
}

fn with(f: impl FnOnce(&Instruments)) {
    if let Some(instruments) = INSTRUMENTS.get() {
        f(instruments);
    }
}

fn is_compensation(activity: &str) -> bool {
    matches!(
        activity,
        UPDATE_ORDER_STATUS | PROCESS_REFUND | RELEASE_INVENTORY
    )
}

impl Instruments {
    fn labels(&self, key: &'static str, value: &str) -> MetricAttributes {
        self.meter
            .new_attributes(NewAttributes::new(vec![MetricKeyValue::new(
                key,
                value.to_owned(),
            )]))
    }
}

/// One local transaction of `activity` took `elapsed`.
pub(crate) fn store_latency(activity: &str, elapsed: Duration) {
    with(|m| {
        m.store_latency
            .record(elapsed, &m.labels("activity", activity))
    });
}

/// A step of one saga, as the waiting gauge tells them apart.
#[derive(Debug, Clone, Copy)]
pub struct WaitingStep<'a> {
    pub workflow_id: &'a str,
    pub activity: &'a str,
}

/// The activity types, so the gauge reports every one (a zero included).
const ACTIVITY_TYPES: [&str; 7] = [
    activity_type::PROCESS_ORDER,
    activity_type::UPDATE_ORDER_STATUS,
    activity_type::PROCESS_PAYMENT,
    activity_type::PROCESS_REFUND,
    activity_type::RESERVE_INVENTORY,
    activity_type::RELEASE_INVENTORY,
    activity_type::NOTIFY,
];

impl Instruments {
    fn publish_waiting(&self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|_, at| at.elapsed() < WAITING_FOR);
        for activity in ACTIVITY_TYPES {
            let count = waiting.keys().filter(|(_, a)| *a == activity).count();
            self.steps_waiting
                .record(count as u64, &self.labels("activity", activity));
        }
    }
}

/// An attempt of `step` failed for infrastructure reasons.
pub(crate) fn infrastructure_fault(step: &WaitingStep) {
    let Some(activity) = ACTIVITY_TYPES.into_iter().find(|a| *a == step.activity) else {
        return;
    };
    with(|m| {
        m.infrastructure_faults
            .add(1, &m.labels("activity", activity));
        m.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((step.workflow_id.to_owned(), activity), Instant::now());
        m.publish_waiting();
    });
}

/// An attempt of `step` got through (succeeded, or failed with its business error).
pub(crate) fn step_got_through(step: &WaitingStep) {
    with(|m| {
        let mut waiting = m.waiting.lock().unwrap_or_else(|e| e.into_inner());
        // The common case, on every step of every saga: nothing waits.
        if waiting.is_empty() {
            return;
        }
        let before = waiting.len();
        waiting.retain(|(workflow_id, activity), _| {
            !(workflow_id == step.workflow_id && *activity == step.activity)
        });
        let changed = waiting.len() != before;
        drop(waiting);
        if changed {
            m.publish_waiting();
        }
    });
}

/// `activity` succeeded.
pub(crate) fn succeeded(activity: &str) {
    with(|m| {
        if is_compensation(activity) {
            m.compensations.add(1, &m.labels("activity", activity));
        }
        // ProcessOrder runs first in every saga, so its compensation runs last.
        if activity == UPDATE_ORDER_STATUS {
            m.outcomes.add(1, &m.labels("outcome", "compensated"));
        }
    });
}

/// `activity` failed with its business error.
pub(crate) fn business_failure(activity: &str) {
    with(|m| {
        if is_compensation(activity) {
            m.compensation_failures
                .add(1, &m.labels("activity", activity));
        }
    });
}

/// A notification with `status` (`success` or `failed`) was published.
pub(crate) fn notified(status: &str) {
    let outcome = if status == "success" {
        "completed"
    } else {
        "compensation-failed"
    };
    with(|m| m.outcomes.add(1, &m.labels("outcome", outcome)));
}

/// A webhook attempt to `subscriber` took `elapsed`.
pub fn webhook_attempt(subscriber: &str, elapsed: Duration) {
    with(|m| {
        m.webhook_attempt_latency
            .record(elapsed, &m.labels("subscriber", subscriber))
    });
}

/// A webhook delivery to `subscriber` was answered with a 2xx.
pub fn webhook_delivered(subscriber: &str) {
    with(|m| {
        m.webhook_deliveries
            .add(1, &m.labels("subscriber", subscriber))
    });
}

/// A webhook attempt to `subscriber` failed and will be tried again.
pub fn webhook_retry(subscriber: &str) {
    with(|m| {
        m.webhook_retries
            .add(1, &m.labels("subscriber", subscriber))
    });
}

/// A webhook delivery to `subscriber` failed its last attempt.
pub fn webhook_dead(subscriber: &str) {
    with(|m| m.webhook_dead.add(1, &m.labels("subscriber", subscriber)));
}

/// The order intake's admission: `sagas` posted sagas in the worker, `waiting` orders at the
/// door.
pub fn intake_admission(sagas: usize, waiting: usize) {
    with(|m| {
        m.intake_sagas.record(sagas as u64, &m.no_labels);
        m.intake_waiting.record(waiting as u64, &m.no_labels);
    });
}

/// The intake started an order's saga without a place.
pub fn intake_unplaced() {
    with(|m| m.intake_unplaced.add(1, &m.no_labels));
}
