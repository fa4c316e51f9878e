//! The engine's policy, driven through its seam ([`SagaContext`]) with no server: a context
//! that scripts each activity's rounds and records what the saga asked for.

use crate::{
    Compensation, DISPATCH_MEMO, Dispatch, Phase, SagaContext, SagaError, SagaOptions, SagaRuntime,
    SearchAttributeNames, Step, StepFailure,
    failure::{RoundError, recorded},
    rounds::Round,
    saga::Saga,
    version,
};
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, SystemTime},
};
use temporalio_common::{
    ActivityDefinition,
    data_converters::{PayloadConverter, RawValue},
    protos::temporal::api::enums::v1::RetryState,
    search_attributes::SearchAttributeUpdate,
};

/// The value the test sagas pass on: the activities that ran, in order.
type Log = Vec<String>;

macro_rules! activities {
    ($($marker:ident),*) => {$(
        struct $marker;
        impl ActivityDefinition for $marker {
            type Input = Log;
            type Output = Log;
            fn name(&self) -> &str {
                stringify!($marker)
            }
        }
    )*};
}
activities!(
    BookFlight,
    CancelFlight,
    BookHotel,
    CancelHotel,
    BookCar,
    CancelCar,
    Notify
);

/// How a scripted round ends.
#[derive(Clone, Copy)]
enum Answer {
    Business(&'static str),
    Infrastructure,
    OutOfTime,
    NotHere,
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    activity: String,
    round: u32,
    dispatch: Dispatch,
    budget: Option<Duration>,
}

struct Fake {
    runtime: RefCell<SagaRuntime<Log>>,
    /// Each activity's failing rounds, in order; a round with no answer left succeeds.
    script: RefCell<BTreeMap<&'static str, VecDeque<Answer>>>,
    calls: RefCell<Vec<Call>>,
    replaying: bool,
    /// Patch markers the history holds (replaying) or that the saga recorded (not replaying).
    markers: RefCell<BTreeSet<String>>,
    answered: RefCell<BTreeMap<String, bool>>,
    start: SystemTime,
    now: Cell<SystemTime>,
    cancel: Cell<bool>,
    details: RefCell<Vec<String>>,
    upserts: RefCell<Vec<String>>,
    converter: PayloadConverter,
    /// The start request's memo, as strings.
    memo: BTreeMap<String, String>,
}

impl Fake {
    fn new() -> Self {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Self {
            runtime: RefCell::default(),
            script: RefCell::default(),
            calls: RefCell::default(),
            replaying: false,
            markers: RefCell::default(),
            answered: RefCell::default(),
            start,
            now: Cell::new(start),
            cancel: Cell::new(false),
            details: RefCell::default(),
            upserts: RefCell::default(),
            converter: PayloadConverter::default(),
            memo: BTreeMap::new(),
        }
    }

    fn with_memo(mut self, key: &str, value: &str) -> Self {
        self.memo.insert(key.to_owned(), value.to_owned());
        self
    }

    fn replaying(markers: &[&str]) -> Self {
        let fake = Self {
            replaying: true,
            ..Self::new()
        };
        fake.markers
            .borrow_mut()
            .extend(markers.iter().map(|m| m.to_string()));
        fake
    }

    fn fails(self, activity: &'static str, answers: &[Answer]) -> Self {
        self.script
            .borrow_mut()
            .insert(activity, answers.iter().cloned().collect());
        self
    }

    fn activities(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|c| c.activity.clone())
            .collect()
    }

    fn status(&self) -> crate::SagaStatus {
        self.runtime.borrow().status().clone()
    }
}

impl SagaContext for Fake {
    type Value = Log;

    async fn run_round(
        &self,
        activity: &str,
        input: RawValue,
        round: &Round,
    ) -> Result<RawValue, RoundError> {
        self.calls.borrow_mut().push(Call {
            activity: activity.to_owned(),
            round: round.number,
            dispatch: round.dispatch,
            budget: round.budget,
        });
        // Yield once, so that compensations in parallel are all scheduled before any ends.
        tokio::task::yield_now().await;
        let answer = self
            .script
            .borrow_mut()
            .get_mut(activity)
            .and_then(VecDeque::pop_front);
        let failure = match answer {
            None => {
                let mut log: Log = input.to_value(&self.converter);
                log.push(activity.to_owned());
                return Ok(RawValue::from_value(&log, &self.converter));
            }
            Some(Answer::Business(error_type)) => recorded::activity(
                recorded::application(error_type, "it failed", true),
                RetryState::NonRetryableFailure,
            ),
            Some(Answer::Infrastructure) => recorded::activity(
                recorded::application("", "database unavailable", false),
                RetryState::MaximumAttemptsReached,
            ),
            Some(Answer::OutOfTime) => recorded::activity(
                recorded::schedule_to_close(Some(recorded::application(
                    "",
                    "database unavailable",
                    false,
                ))),
                RetryState::Timeout,
            ),
            Some(Answer::NotHere) => RoundError {
                failure: Some(Box::new(recorded::application(
                    crate::LOCAL_DISPATCH_UNAVAILABLE,
                    "not in this worker",
                    true,
                ))),
                message: String::new(),
            },
        };
        Err(failure)
    }

    fn patched(&self, patch_id: &str) -> bool {
        // As the SDK: the first answer for a patch holds for the rest of the run.
        if let Some(&answer) = self.answered.borrow().get(patch_id) {
            return answer;
        }
        let answer = if self.replaying {
            self.markers.borrow().contains(patch_id)
        } else {
            self.markers.borrow_mut().insert(patch_id.to_owned());
            true
        };
        self.answered
            .borrow_mut()
            .insert(patch_id.to_owned(), answer);
        answer
    }

    fn deprecate_patch(&self, patch_id: &str) -> bool {
        self.markers
            .borrow_mut()
            .insert(format!("{patch_id} (deprecated)"));
        true
    }

    fn is_replaying(&self) -> bool {
        self.replaying
    }

    fn start_memo(&self, key: &str) -> Option<String> {
        self.memo.get(key).cloned()
    }

    fn workflow_time(&self) -> Option<SystemTime> {
        Some(self.now.get())
    }

    fn start_time(&self) -> Option<SystemTime> {
        Some(self.start)
    }

    fn cancel_requested(&self) -> bool {
        self.cancel.get()
    }

    fn set_current_details(&self, details: String) {
        self.details.borrow_mut().push(details);
    }

    fn upsert_search_attributes(&self, updates: Vec<SearchAttributeUpdate>) {
        self.upserts
            .borrow_mut()
            .extend(updates.iter().map(|u| format!("{u:?}")));
    }

    fn payload_converter(&self) -> &PayloadConverter {
        &self.converter
    }

    fn read_saga<R>(&self, f: impl FnOnce(&SagaRuntime<Log>) -> R) -> R {
        f(&self.runtime.borrow())
    }

    fn with_saga<R>(&self, f: impl FnOnce(&mut SagaRuntime<Log>) -> R) -> R {
        f(&mut self.runtime.borrow_mut())
    }
}

fn trip(options: SagaOptions) -> Saga<Log> {
    Saga::new()
        .step(Step::new(BookFlight).compensate_with(CancelFlight))
        .step(Step::new(BookHotel).compensate_with(CancelHotel))
        .step(Step::new(BookCar).compensate_with(CancelCar))
        .options(options)
}

/// An upsert of a keyword as the fake records it.
fn keyword(name: &'static str, value: &str) -> String {
    let key = temporalio_common::search_attributes::SearchAttributeKey::<String>::keyword(name);
    format!("{:?}", key.value_set(value.to_owned()))
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn every_step_runs_in_order_and_passes_the_value_on() {
    let ctx = Fake::new();
    let done = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap();
    assert_eq!(done, names(&["BookFlight", "BookHotel", "BookCar"]));
    assert_eq!(ctx.activities(), done);
    assert_eq!(ctx.status().phase, Phase::Completed);
    assert_eq!(ctx.status().current.as_deref(), Some("BookCar"));
    // The first activity records the dispatch; the rest follow it without a marker.
    assert_eq!(
        *ctx.markers.borrow(),
        BTreeSet::from(["saga-dispatch-remote".to_owned()])
    );
}

#[tokio::test]
async fn the_failing_step_is_compensated_first_then_the_earlier_ones_newest_first() {
    let ctx = Fake::new().fails("BookHotel", &[Answer::Business("ErrBookHotel")]);
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    assert_eq!(
        ctx.activities(),
        names(&["BookFlight", "BookHotel", "CancelHotel", "CancelFlight"])
    );
    let SagaError::Compensated {
        value,
        failure,
        cancelled,
    } = error
    else {
        panic!("{error:?}");
    };
    assert!(!cancelled);
    assert_eq!(failure.to_string(), "ErrBookHotel: it failed");
    assert!(
        matches!(failure, StepFailure::Business { ref activity, .. } if activity == "BookHotel")
    );
    // Each compensation passes the value on, as the steps do.
    assert_eq!(value, names(&["BookFlight", "CancelHotel", "CancelFlight"]));
    let status = ctx.status();
    assert_eq!(status.phase, Phase::Compensated);
    assert_eq!(
        status.compensations,
        names(&["CancelHotel", "CancelFlight"])
    );
    assert_eq!(
        status.last_error.as_deref(),
        Some("ErrBookHotel: it failed")
    );
}

#[tokio::test]
async fn a_step_that_never_commits_on_failure_is_not_compensated() {
    let saga = Saga::new()
        .step(Step::new(BookFlight).compensate_with(CancelFlight))
        .step(
            Step::new(BookHotel)
                .compensate_with(CancelHotel)
                .uncommitted_on_failure(),
        );
    let ctx = Fake::new().fails("BookHotel", &[Answer::Business("ErrBookHotel")]);
    saga.run(&ctx, vec![]).await.unwrap_err();
    assert_eq!(
        ctx.activities(),
        names(&["BookFlight", "BookHotel", "CancelFlight"])
    );
}

#[tokio::test]
async fn a_failed_compensation_stops_the_rest_by_default() {
    let ctx = Fake::new()
        .fails("BookCar", &[Answer::Business("ErrBookCar")])
        .fails("CancelHotel", &[Answer::Business("ErrCancelHotel")]);
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    assert_eq!(
        ctx.activities(),
        names(&[
            "BookFlight",
            "BookHotel",
            "BookCar",
            "CancelCar",
            "CancelHotel"
        ])
    );
    let SagaError::CompensationFailed {
        failed, failure, ..
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(failure.to_string(), "ErrBookCar: it failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].compensation, "CancelHotel");
    assert_eq!(failed[0].step, "BookHotel");
    assert_eq!(failed[0].error.to_string(), "ErrCancelHotel: it failed");
    let status = ctx.status();
    assert_eq!(status.phase, Phase::CompensationFailed);
    assert_eq!(
        status.last_error.as_deref(),
        Some("ErrCancelHotel: it failed")
    );
    assert_eq!(status.compensations, names(&["CancelCar"]));
}

#[tokio::test]
async fn continuing_after_a_failed_compensation_runs_every_other_one() {
    let options = SagaOptions {
        compensation: Compensation {
            parallel: false,
            continue_after_failure: true,
        },
        ..Default::default()
    };
    let ctx = Fake::new()
        .fails("BookCar", &[Answer::Business("ErrBookCar")])
        .fails("CancelHotel", &[Answer::Business("ErrCancelHotel")]);
    let error = trip(options).run(&ctx, vec![]).await.unwrap_err();
    assert_eq!(
        ctx.activities()[3..],
        names(&["CancelCar", "CancelHotel", "CancelFlight"])
    );
    let SagaError::CompensationFailed { failed, .. } = error else {
        panic!("{error:?}");
    };
    assert_eq!(failed.len(), 1);
    assert_eq!(
        ctx.status().compensations,
        names(&["CancelCar", "CancelFlight"])
    );
}

#[tokio::test]
async fn parallel_compensations_are_all_scheduled_before_any_ends() {
    let ctx = Fake::new()
        .fails("BookCar", &[Answer::Business("ErrBookCar")])
        .fails("CancelHotel", &[Answer::Business("ErrCancelHotel")]);
    let options = SagaOptions {
        compensation: Compensation::PARALLEL,
        ..Default::default()
    };
    let error = trip(options).run(&ctx, vec![]).await.unwrap_err();
    assert_eq!(
        ctx.activities()[3..],
        names(&["CancelCar", "CancelHotel", "CancelFlight"])
    );
    let SagaError::CompensationFailed { failed, .. } = error else {
        panic!("{error:?}");
    };
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].compensation, "CancelHotel");
    assert_eq!(
        ctx.status().compensations,
        names(&["CancelCar", "CancelFlight"])
    );
}

#[tokio::test]
async fn infrastructure_faults_are_waited_out_in_remote_rounds_and_shown_meanwhile() {
    let options = SagaOptions {
        dispatch: Dispatch::Local,
        search_attributes: SearchAttributeNames {
            outcome: Some("SagaOutcome"),
            waiting: Some("SagaWaiting"),
        },
        ..Default::default()
    };
    let saga = trip(options);
    let ctx = Fake::new().fails(
        "BookHotel",
        &[Answer::Infrastructure, Answer::Infrastructure],
    );
    saga.run(&ctx, vec![]).await.unwrap();
    let rounds: Vec<(String, u32, Dispatch)> = ctx
        .calls
        .borrow()
        .iter()
        .map(|c| (c.activity.clone(), c.round, c.dispatch))
        .collect();
    let local = Dispatch::Local;
    let remote = Dispatch::Remote;
    assert_eq!(
        rounds,
        vec![
            ("BookFlight".into(), 1, local),
            ("BookHotel".into(), 1, local),
            ("BookHotel".into(), 2, remote),
            ("BookHotel".into(), 3, remote),
            // The next step runs as the saga's dispatch says again.
            ("BookCar".into(), 1, local),
        ]
    );
    let details = ctx.details.borrow();
    assert!(
        details.iter().any(|d| d.starts_with(
            "BookHotel: waiting on infrastructure since 2027-01-15T08:00:00Z, 8 attempts"
        )),
        "{details:?}"
    );
    // Set once when the wait begins, cleared once when the step gets through.
    let upserts = ctx.upserts.borrow();
    assert_eq!(upserts.len(), 2, "{upserts:?}");
    assert_eq!(upserts[0], keyword("SagaWaiting", "BookHotel"));
    assert_eq!(
        upserts[1],
        format!("{:?}", crate::waiting_cleared("SagaWaiting"))
    );
    assert_eq!(ctx.status().waiting, None);
}

#[tokio::test]
async fn a_forward_step_out_of_time_is_compensated_and_says_why() {
    let ctx = Fake::new().fails("BookHotel", &[Answer::Infrastructure, Answer::OutOfTime]);
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    let SagaError::Compensated { failure, .. } = error else {
        panic!("{error:?}");
    };
    assert_eq!(
        failure.to_string(),
        "BookHotel gave up waiting on its infrastructure: the step's window for infrastructure \
         errors (10m) ran out; last error: database unavailable"
    );
    // Every round of a forward step carries its remaining time.
    let calls = ctx.calls.borrow();
    assert!(
        calls
            .iter()
            .filter(|c| c.activity.starts_with("Book"))
            .all(|c| c.budget == Some(Duration::from_secs(600)))
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.activity.starts_with("Cancel"))
            .all(|c| c.budget.is_none())
    );
}

#[tokio::test]
async fn a_compensation_is_retried_until_it_succeeds() {
    let ctx = Fake::new()
        .fails("BookHotel", &[Answer::Business("ErrBookHotel")])
        .fails("CancelFlight", &[Answer::Infrastructure; 5]);
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    assert!(matches!(error, SagaError::Compensated { .. }), "{error:?}");
    let rounds = ctx
        .calls
        .borrow()
        .iter()
        .filter(|c| c.activity == "CancelFlight")
        .count();
    assert_eq!(rounds, 6);
}

#[tokio::test]
async fn past_the_deadline_the_saga_compensates_instead_of_going_on() {
    let ctx = Fake::new();
    ctx.now.set(ctx.start + Duration::from_secs(31 * 60));
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "compensated after the saga's deadline (30m) passed before BookFlight"
    );
    assert!(ctx.activities().is_empty());
    assert!(ctx.markers.borrow().contains("saga-deadline@0"));
}

#[tokio::test]
async fn a_replay_follows_the_recorded_deadline_verdict_not_the_clock() {
    let ctx = Fake::replaying(&["saga-dispatch-remote", "saga-deadline@1"]);
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    assert_eq!(ctx.activities(), names(&["BookFlight", "CancelFlight"]));
    assert!(matches!(
        error,
        SagaError::Compensated {
            failure: StepFailure::DeadlinePassed { .. },
            ..
        }
    ));
}

#[tokio::test]
async fn a_cancel_request_stops_a_remote_saga_after_the_step_and_undoes_it() {
    let ctx = Fake::new();
    ctx.cancel.set(true);
    let error = trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap_err();
    assert_eq!(ctx.activities(), names(&["BookFlight", "CancelFlight"]));
    assert!(matches!(
        error,
        SagaError::Compensated {
            failure: StepFailure::Cancelled,
            cancelled: true,
            ..
        }
    ));
    assert_eq!(ctx.status().phase, Phase::Cancelled);
}

#[tokio::test]
async fn a_cancel_request_never_stops_local_steps_that_may_have_committed() {
    let options = SagaOptions {
        dispatch: Dispatch::Local,
        ..Default::default()
    };
    let ctx = Fake::new();
    ctx.cancel.set(true);
    trip(options).run(&ctx, vec![]).await.unwrap();
    assert_eq!(ctx.activities().len(), 3);
}

#[tokio::test]
async fn a_step_not_in_this_worker_runs_remotely_at_once_without_waiting() {
    let options = SagaOptions {
        dispatch: Dispatch::Local,
        ..Default::default()
    };
    let ctx = Fake::new().fails("BookFlight", &[Answer::NotHere]);
    trip(options).run(&ctx, vec![]).await.unwrap();
    let calls = ctx.calls.borrow();
    assert_eq!(calls[0].dispatch, Dispatch::Local);
    assert_eq!((calls[1].round, calls[1].dispatch), (2, Dispatch::Remote));
    assert!(ctx.details.borrow().iter().all(|d| !d.contains("waiting")));
}

#[tokio::test]
async fn a_replay_follows_the_recorded_dispatch_whatever_the_worker_prefers() {
    // Started local, switched to remote at the third activity (`@2`).
    let ctx = Fake::replaying(&["saga-dispatch-local", "saga-dispatch-remote@2"]);
    trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap();
    let dispatch: Vec<Dispatch> = ctx.calls.borrow().iter().map(|c| c.dispatch).collect();
    assert_eq!(
        dispatch,
        [Dispatch::Local, Dispatch::Local, Dispatch::Remote]
    );
}

#[tokio::test]
async fn a_worker_that_prefers_the_other_mode_records_the_change() {
    let ctx = Fake::new();
    let saga = trip(SagaOptions {
        dispatch: Dispatch::Local,
        ..Default::default()
    });
    saga.run(&ctx, vec![]).await.unwrap();
    assert!(ctx.markers.borrow().contains("saga-dispatch-local"));
    assert!(!ctx.markers.borrow().iter().any(|m| m.contains('@')));
}

#[tokio::test]
async fn a_dispatch_named_by_the_starter_records_no_marker() {
    let ctx = Fake::new().with_memo(DISPATCH_MEMO, "local");
    let saga = trip(SagaOptions {
        dispatch: Dispatch::Local,
        ..Default::default()
    });
    saga.run(&ctx, vec![]).await.unwrap();
    assert!(
        ctx.markers.borrow().is_empty(),
        "{:?}",
        ctx.markers.borrow()
    );
    assert!(
        ctx.calls
            .borrow()
            .iter()
            .all(|c| c.dispatch == Dispatch::Local)
    );
}

#[tokio::test]
async fn a_worker_that_prefers_another_dispatch_than_the_starter_named_records_the_change() {
    let ctx = Fake::new().with_memo(DISPATCH_MEMO, "local");
    trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap();
    assert_eq!(
        *ctx.markers.borrow(),
        BTreeSet::from(["saga-dispatch-remote@0".to_owned()])
    );
    assert!(
        ctx.calls
            .borrow()
            .iter()
            .all(|c| c.dispatch == Dispatch::Remote)
    );
}

#[tokio::test]
async fn a_replay_follows_the_dispatch_the_starter_named_whatever_the_worker_prefers() {
    for (markers, expected) in [
        (&[][..], Dispatch::Local),
        (&["saga-dispatch-remote@0"][..], Dispatch::Remote),
    ] {
        let ctx = Fake::replaying(markers).with_memo(DISPATCH_MEMO, "local");
        trip(SagaOptions::default())
            .run(&ctx, vec![])
            .await
            .unwrap();
        assert!(ctx.calls.borrow().iter().all(|c| c.dispatch == expected));
    }
}

#[tokio::test]
async fn a_replay_follows_a_first_marker_that_a_worker_recorded_despite_the_memo() {
    // A worker that did not read the memo ran the saga's first task as it preferred.
    for (marker, expected) in [
        ("saga-dispatch-remote", Dispatch::Remote),
        ("saga-dispatch-local", Dispatch::Local),
    ] {
        let ctx = Fake::replaying(&[marker]).with_memo(DISPATCH_MEMO, expected.other().as_str());
        trip(SagaOptions::default())
            .run(&ctx, vec![])
            .await
            .unwrap();
        assert!(
            ctx.calls.borrow().iter().all(|c| c.dispatch == expected),
            "{marker}"
        );
    }
}

#[tokio::test]
async fn a_memo_that_names_no_dispatch_is_ignored() {
    let ctx = Fake::new().with_memo(DISPATCH_MEMO, "somewhere");
    trip(SagaOptions::default())
        .run(&ctx, vec![])
        .await
        .unwrap();
    assert_eq!(
        *ctx.markers.borrow(),
        BTreeSet::from(["saga-dispatch-remote".to_owned()])
    );
}

#[tokio::test]
async fn the_notification_goes_out_after_success_and_after_a_failed_compensation_only() {
    let notice = |log: &Log, error: Option<String>| {
        let summary = format!("after {}", log.len());
        (vec![error.unwrap_or_else(|| "success".into())], summary)
    };
    let ctx = Fake::new();
    let saga = trip(SagaOptions::default());
    saga.run_and_notify(&ctx, vec![], Notify, notice)
        .await
        .unwrap();
    assert_eq!(ctx.activities().last().map(String::as_str), Some("Notify"));
    assert_eq!(ctx.status().phase, Phase::Completed);

    let compensated = Fake::new().fails("BookHotel", &[Answer::Business("ErrBookHotel")]);
    saga.run_and_notify(&compensated, vec![], Notify, notice)
        .await
        .unwrap_err();
    assert!(!compensated.activities().contains(&"Notify".to_owned()));

    let stuck = Fake::new()
        .fails("BookHotel", &[Answer::Business("ErrBookHotel")])
        .fails("CancelHotel", &[Answer::Business("ErrCancelHotel")]);
    saga.run_and_notify(&stuck, vec![], Notify, notice)
        .await
        .unwrap_err();
    assert_eq!(
        stuck.activities().last().map(String::as_str),
        Some("Notify")
    );
    assert_eq!(stuck.status().phase, Phase::CompensationFailed);
}

#[tokio::test]
async fn a_failed_notification_fails_the_saga_and_it_closes_failed() {
    let options = SagaOptions {
        search_attributes: SearchAttributeNames {
            outcome: Some("SagaOutcome"),
            waiting: None,
        },
        ..Default::default()
    };
    let saga = trip(options);
    let ctx = Fake::new().fails("Notify", &[Answer::Business("ErrNotify")]);
    let error = saga
        .run_and_notify(&ctx, vec![], Notify, |_, _| (vec![], String::new()))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "Notify failed: ErrNotify: it failed");
    assert_eq!(saga.close(&ctx), Phase::Failed);
    assert_eq!(ctx.details.borrow().last().unwrap(), "ended: failed");
    let upserts = ctx.upserts.borrow();
    assert_eq!(upserts.last().unwrap(), &keyword("SagaOutcome", "failed"));
}

#[tokio::test]
async fn a_rejected_input_closes_invalid_with_its_reason() {
    let saga = trip(SagaOptions::default());
    let ctx = Fake::new();
    saga.reject(&ctx, "invalid trip: trip_id: empty");
    assert_eq!(saga.close(&ctx), Phase::Invalid);
    assert_eq!(
        ctx.status().last_error.as_deref(),
        Some("invalid trip: trip_id: empty")
    );
    assert!(ctx.activities().is_empty());
}

#[test]
fn a_version_is_recorded_for_new_sagas_and_absent_from_old_ones() {
    let new = Fake::new();
    assert!(version::decide(&new, "add-car"));
    assert!(new.markers.borrow().contains("add-car"));
    let old = Fake::replaying(&["saga-dispatch-remote"]);
    assert!(!version::decide(&old, "add-car"));
    // Decided once: the same answer for the rest of the run.
    assert!(!version::decide(&old, "add-car"));
    assert!(version::retired(&new, "add-car"));
}

#[test]
fn phases_read_back_what_they_print_and_close_as_outcomes() {
    for name in Phase::OUTCOMES {
        assert_eq!(Phase::parse(name).unwrap().as_str(), name);
    }
    assert_eq!(Phase::Running.at_close(), Phase::Failed);
    assert_eq!(Phase::Compensating.at_close(), Phase::Failed);
    assert_eq!(Phase::Compensated.at_close(), Phase::Compensated);
    assert_eq!(Phase::parse("paused"), None);
}
