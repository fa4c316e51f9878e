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
//! | `saga_webhook_deliveries_total` | `subscriber` | a webhook attempt got a 2xx: delivered |
//! | `saga_webhook_retries_total` | `subscriber` | a webhook attempt failed and will be tried again |
//! | `saga_webhook_dead_total` | `subscriber` | a webhook delivery's last attempt failed: dead |
//! | `saga_webhook_attempt_latency` | `subscriber` | histogram of one webhook attempt, in milliseconds |
//!
//! Nothing is recorded until [`install`] is called (the worker does when metrics are on).

use saga_protos::scenario::activity::{PROCESS_REFUND, RELEASE_INVENTORY, UPDATE_ORDER_STATUS};
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, HistogramDuration, MetricKeyValue, MetricParameters, NewAttributes,
};

pub const OUTCOMES: &str = "saga_outcomes_total";
pub const COMPENSATIONS: &str = "saga_compensations_total";
pub const COMPENSATION_FAILURES: &str = "saga_compensation_failures_total";
pub const STORE_LATENCY: &str = "saga_store_latency";
pub const WEBHOOK_DELIVERIES: &str = "saga_webhook_deliveries_total";
pub const WEBHOOK_RETRIES: &str = "saga_webhook_retries_total";
pub const WEBHOOK_DEAD: &str = "saga_webhook_dead_total";
pub const WEBHOOK_ATTEMPT_LATENCY: &str = "saga_webhook_attempt_latency";

struct Instruments {
    meter: Arc<dyn CoreMeter>,
    outcomes: Counter,
    compensations: Counter,
    compensation_failures: Counter,
    store_latency: HistogramDuration,
    webhook_deliveries: Counter,
    webhook_retries: Counter,
    webhook_dead: Counter,
    webhook_attempt_latency: HistogramDuration,
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
            meter,
        }
    });
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
    fn labels(
        &self,
        key: &'static str,
        value: &str,
    ) -> temporalio_common::telemetry::metrics::MetricAttributes {
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
pub(crate) fn webhook_attempt(subscriber: &str, elapsed: Duration) {
    with(|m| {
        m.webhook_attempt_latency
            .record(elapsed, &m.labels("subscriber", subscriber))
    });
}

/// A webhook delivery to `subscriber` was answered with a 2xx.
pub(crate) fn webhook_delivered(subscriber: &str) {
    with(|m| {
        m.webhook_deliveries
            .add(1, &m.labels("subscriber", subscriber))
    });
}

/// A webhook attempt to `subscriber` failed and will be tried again.
pub(crate) fn webhook_retry(subscriber: &str) {
    with(|m| {
        m.webhook_retries
            .add(1, &m.labels("subscriber", subscriber))
    });
}

/// A webhook delivery to `subscriber` failed its last attempt.
pub(crate) fn webhook_dead(subscriber: &str) {
    with(|m| m.webhook_dead.add(1, &m.labels("subscriber", subscriber)));
}
