//! Fault injection for reliability tests and demos. Off unless `SAGA_FAULTS` is set.
//!
//! `SAGA_FAULTS` is a comma-separated list; `ACTIVITY` is an activity type name or `*`:
//!
//! | setting                       | effect |
//! |-------------------------------|--------|
//! | `fail-after-commit=ACTIVITY`  | on an activity's first attempt, commit, then report a retryable error |
//! | `crash-after-commit=ACTIVITY` | on an activity's first attempt, commit, then kill the worker process |
//! | `transient=P`                 | before the transaction, fail with probability P (0..1) with a retryable error; never on the last attempt, so the retry policy always has a way out |
//! | `delay=ACTIVITY:MILLIS`       | sleep before the transaction (a long step for cancellation and query tests) |
//! | `unavailable=ACTIVITY:N`      | the first N attempts of ACTIVITY in this process fail with an infrastructure error before the transaction, as if its database were down (a step that waits past its first round of retries) |
//!
//! Example: `SAGA_FAULTS="crash-after-commit=ProcessPayment,transient=0.2"`.

use crate::StepError;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

#[derive(Debug, Clone, Default)]
pub struct Faults {
    fail_after_commit: Vec<String>,
    crash_after_commit: Vec<String>,
    transient: f64,
    delays: Vec<(String, Duration)>,
    /// (activity, attempts to fail, attempts failed so far in this process)
    unavailable: Vec<(String, u32, Arc<AtomicU32>)>,
}

impl PartialEq for Faults {
    fn eq(&self, other: &Self) -> bool {
        let outages = |f: &Self| -> Vec<(String, u32)> {
            f.unavailable
                .iter()
                .map(|(a, n, _)| (a.clone(), *n))
                .collect()
        };
        self.fail_after_commit == other.fail_after_commit
            && self.crash_after_commit == other.crash_after_commit
            && self.transient == other.transient
            && self.delays == other.delays
            && outages(self) == outages(other)
    }
}

/// The retry policy's attempt count; transient faults spare the last attempt.
const MAX_ATTEMPTS: u32 = 4;

impl Faults {
    /// Reads `SAGA_FAULTS`; an unset or empty variable means no faults.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("SAGA_FAULTS") {
            Ok(spec) => Self::parse(&spec),
            Err(_) => Ok(Self::default()),
        }
    }

    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut faults = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("SAGA_FAULTS: `{part}` is not KEY=VALUE"))?;
            match key {
                "fail-after-commit" => faults.fail_after_commit.push(value.to_owned()),
                "crash-after-commit" => faults.crash_after_commit.push(value.to_owned()),
                "transient" => {
                    faults.transient = value
                        .parse()
                        .ok()
                        .filter(|p: &f64| (0.0..=1.0).contains(p))
                        .ok_or_else(|| {
                            anyhow::anyhow!("SAGA_FAULTS: transient={value} is not between 0 and 1")
                        })?
                }
                "delay" => {
                    let (activity, millis) = value.split_once(':').ok_or_else(|| {
                        anyhow::anyhow!("SAGA_FAULTS: delay={value} is not ACTIVITY:MILLIS")
                    })?;
                    let millis: u64 = millis.parse().map_err(|_| {
                        anyhow::anyhow!(
                            "SAGA_FAULTS: delay={value}: `{millis}` is not milliseconds"
                        )
                    })?;
                    faults
                        .delays
                        .push((activity.to_owned(), Duration::from_millis(millis)));
                }
                "unavailable" => {
                    let (activity, count) = value.split_once(':').ok_or_else(|| {
                        anyhow::anyhow!("SAGA_FAULTS: unavailable={value} is not ACTIVITY:N")
                    })?;
                    let count: u32 = count.parse().map_err(|_| {
                        anyhow::anyhow!(
                            "SAGA_FAULTS: unavailable={value}: `{count}` is not a number of attempts"
                        )
                    })?;
                    faults
                        .unavailable
                        .push((activity.to_owned(), count, Arc::default()));
                }
                other => anyhow::bail!(
                    "SAGA_FAULTS: unknown setting `{other}` (expected fail-after-commit, \
                     crash-after-commit, transient, delay or unavailable)"
                ),
            }
        }
        Ok(faults)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Runs before the local transaction.
    pub(crate) async fn before(&self, activity: &str, attempt: u32) -> Result<(), StepError> {
        if let Some((_, delay)) = self.delays.iter().find(|(a, _)| matches(a, activity)) {
            tokio::time::sleep(*delay).await;
        }
        for (pattern, count, failed) in &self.unavailable {
            if matches(pattern, activity) && failed.fetch_add(1, Ordering::Relaxed) < *count {
                return Err(StepError::Infrastructure {
                    kind: crate::FaultKind::Unavailable,
                    error: anyhow::anyhow!(
                        "injected outage (SAGA_FAULTS unavailable={pattern}:{count})"
                    ),
                });
            }
        }
        if self.transient > 0.0 && attempt < MAX_ATTEMPTS && fastrand::f64() < self.transient {
            return Err(StepError::infrastructure(anyhow::anyhow!(
                "injected transient fault (SAGA_FAULTS transient={})",
                self.transient
            )));
        }
        Ok(())
    }

    /// Runs after the local transaction committed, before Temporal hears of it.
    /// `order_id` and `workflow_id` only name the step on the crash's line.
    pub(crate) fn after_commit(
        &self,
        activity: &str,
        attempt: u32,
        order_id: &str,
        workflow_id: &str,
    ) -> Result<(), StepError> {
        if attempt > 1 {
            return Ok(());
        }
        if self.crash_after_commit.iter().any(|a| matches(a, activity)) {
            tracing::error!(
                %activity,
                order_id,
                workflow_id,
                attempt,
                "SAGA_FAULTS: crashing the worker after commit"
            );
            std::process::abort();
        }
        if self.fail_after_commit.iter().any(|a| matches(a, activity)) {
            return Err(StepError::infrastructure(anyhow::anyhow!(
                "injected failure after commit (SAGA_FAULTS fail-after-commit={activity})"
            )));
        }
        Ok(())
    }
}

fn matches(pattern: &str, activity: &str) -> bool {
    pattern == "*" || pattern == activity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_setting() {
        let f = Faults::parse(
            "fail-after-commit=ProcessOrder, crash-after-commit=*,transient=0.25,delay=Notify:1500",
        )
        .unwrap();
        assert_eq!(f.fail_after_commit, ["ProcessOrder"]);
        assert_eq!(f.crash_after_commit, ["*"]);
        assert_eq!(f.transient, 0.25);
        assert_eq!(
            f.delays,
            [("Notify".to_owned(), Duration::from_millis(1500))]
        );
        assert!(Faults::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_nonsense_with_a_reason() {
        for bad in [
            "transient=2",
            "delay=Notify",
            "delay=Notify:soon",
            "explode=yes",
            "x",
        ] {
            let e = Faults::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("SAGA_FAULTS"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn fail_after_commit_fires_on_the_first_attempt_only() {
        let f = Faults::parse("fail-after-commit=ProcessOrder").unwrap();
        assert!(
            f.after_commit("ProcessOrder", 1, "A-1", "order-A-1")
                .is_err()
        );
        assert!(
            f.after_commit("ProcessOrder", 2, "A-1", "order-A-1")
                .is_ok()
        );
        assert!(
            f.after_commit("ProcessPayment", 1, "A-1", "order-A-1")
                .is_ok()
        );
        assert!(f.before("ProcessOrder", 1).await.is_ok());
    }

    #[tokio::test]
    async fn unavailable_fails_the_first_attempts_only() {
        let f = Faults::parse("unavailable=ProcessPayment:2").unwrap();
        for _ in 0..2 {
            let e = f.before("ProcessPayment", 1).await.unwrap_err();
            assert!(e.is_infrastructure(), "{e}");
        }
        assert!(f.before("ProcessPayment", 3).await.is_ok());
        assert!(f.before("ProcessOrder", 1).await.is_ok());
    }

    #[tokio::test]
    async fn transient_spares_the_last_attempt() {
        let f = Faults::parse("transient=1").unwrap();
        assert!(f.before("ProcessOrder", 1).await.is_err());
        assert!(f.before("ProcessOrder", MAX_ATTEMPTS).await.is_ok());
    }
}
