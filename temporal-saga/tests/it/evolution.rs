//! A saga definition that changes with sagas in flight, on a real dev server.
//!
//! Version 1 ships `Reserve → Charge`. Version 2 adds `Insure` between them, behind the patch
//! `add-insurance`, decided once at the saga's start ([`temporal_saga::version`]). Sagas are
//! started on a version-1 worker and held mid-flight (`Charge` fails with an infrastructure
//! error until the test opens its gate); the worker is replaced by version 2; every saga ends
//! on its own version's path, its compensations included, and new sagas take version 2's.
//! Then version 2 is retired (version 3: `retired`, version 1's definition deleted): a
//! version-2 history replays on it.

use crate::support::DevServer;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use temporal_saga::{Retries, Saga, SagaOptions, SagaRuntime, SagaWorkflow, Step, version};
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ApplicationFailure, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
    workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions},
};

/// The saga's value: its id, then each activity that ran, in order.
type Log = Vec<String>;

const PATCH: &str = "add-insurance";

/// Which code the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// Before the change: knows nothing of it.
    V1,
    /// The change behind `decide`.
    V2,
    /// The change retired: `retired`, version 1 deleted.
    V3,
}

fn options() -> SagaOptions {
    SagaOptions {
        // Rounds of a few hundred milliseconds, so a held saga retries often.
        retries: Retries {
            attempts_per_round: 2,
            first_round_interval: Duration::from_millis(100),
            first_round_max_interval: Duration::from_millis(100),
            later_interval: Duration::from_millis(200),
            ..Retries::default()
        },
        ..SagaOptions::default()
    }
}

fn version_1() -> Saga<Log> {
    Saga::new()
        .step(Step::new(Shipping::reserve).compensate_with(Shipping::release))
        .step(Step::new(Shipping::charge).compensate_with(Shipping::refund))
        .options(options())
}

fn version_2() -> Saga<Log> {
    Saga::new()
        .step(Step::new(Shipping::reserve).compensate_with(Shipping::release))
        .step(Step::new(Shipping::insure).compensate_with(Shipping::cancel_insurance))
        .step(Step::new(Shipping::charge).compensate_with(Shipping::refund))
        .options(options())
}

#[workflow]
pub struct ShipmentSaga {
    code: Code,
    saga: SagaRuntime<Log>,
}

impl Default for ShipmentSaga {
    fn default() -> Self {
        Self::on(Code::V2)
    }
}

impl ShipmentSaga {
    fn on(code: Code) -> Self {
        Self {
            code,
            saga: SagaRuntime::default(),
        }
    }
}

impl SagaWorkflow for ShipmentSaga {
    type Value = Log;
    fn saga(&self) -> &SagaRuntime<Log> {
        &self.saga
    }
    fn saga_mut(&mut self) -> &mut SagaRuntime<Log> {
        &mut self.saga
    }
}

#[workflow_methods]
impl ShipmentSaga {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, log: Log) -> WorkflowResult<Log> {
        // Decided once, before the first step: the whole saga, compensations included, runs
        // the definition of the version it started on.
        let saga = match ctx.state(|w| w.code) {
            Code::V1 => version_1(),
            Code::V2 if version::decide(ctx, PATCH) => version_2(),
            Code::V2 => version_1(),
            Code::V3 => {
                version::retired(ctx, PATCH);
                version_2()
            }
        };
        let result = saga.run(ctx, log).await;
        saga.close(ctx);
        result.map_err(|error| {
            ApplicationFailure::builder(error.to_string())
                .type_name("SagaFailed".to_owned())
                .non_retryable(true)
                .build()
                .into()
        })
    }
}

/// The activities: a journal of what ran for each saga, and a gate that holds `Charge`.
#[derive(Default)]
pub struct Shipping {
    journal: Mutex<Vec<(String, String)>>,
    charge_open: AtomicBool,
}

impl Shipping {
    fn ran(&self, mut log: Log, activity: &str) -> Log {
        self.journal
            .lock()
            .unwrap()
            .push((log[0].clone(), activity.to_owned()));
        log.push(activity.to_owned());
        log
    }

    fn journal_of(&self, id: &str) -> Vec<String> {
        let journal = self.journal.lock().unwrap();
        let mut ran: Vec<String> = journal
            .iter()
            .filter(|(saga, _)| saga == id)
            .map(|(_, a)| a.clone())
            .collect();
        ran.dedup();
        ran
    }
}

#[activities]
impl Shipping {
    #[activity(name = "Reserve")]
    pub async fn reserve(
        self: Arc<Self>,
        _ctx: ActivityContext,
        log: Log,
    ) -> Result<Log, ActivityError> {
        Ok(self.ran(log, "Reserve"))
    }

    #[activity(name = "Release")]
    pub async fn release(
        self: Arc<Self>,
        _ctx: ActivityContext,
        log: Log,
    ) -> Result<Log, ActivityError> {
        Ok(self.ran(log, "Release"))
    }

    #[activity(name = "Insure")]
    pub async fn insure(
        self: Arc<Self>,
        _ctx: ActivityContext,
        log: Log,
    ) -> Result<Log, ActivityError> {
        Ok(self.ran(log, "Insure"))
    }

    #[activity(name = "CancelInsurance")]
    pub async fn cancel_insurance(
        self: Arc<Self>,
        _ctx: ActivityContext,
        log: Log,
    ) -> Result<Log, ActivityError> {
        Ok(self.ran(log, "CancelInsurance"))
    }

    /// Fails as infrastructure while the gate is shut; then a saga whose id starts with
    /// `refused` fails with its business error, and the others are charged.
    #[activity(name = "Charge")]
    pub async fn charge(
        self: Arc<Self>,
        _ctx: ActivityContext,
        log: Log,
    ) -> Result<Log, ActivityError> {
        if !self.charge_open.load(Ordering::SeqCst) {
            self.ran(log, "Charge (held)");
            return Err(ActivityError::application(
                ApplicationFailure::builder("payments unavailable").build(),
            ));
        }
        if log[0].starts_with("refused") {
            return Err(ActivityError::application(
                ApplicationFailure::builder("card refused")
                    .type_name("ErrCharge".to_owned())
                    .non_retryable(true)
                    .build(),
            ));
        }
        Ok(self.ran(log, "Charge"))
    }

    #[activity(name = "Refund")]
    pub async fn refund(
        self: Arc<Self>,
        _ctx: ActivityContext,
        log: Log,
    ) -> Result<Log, ActivityError> {
        Ok(self.ran(log, "Refund"))
    }
}

struct Shared(Arc<Shipping>);

impl temporalio_sdk::activities::ActivityImplementer for Shared {
    fn register_all(self: Arc<Self>, defs: &mut temporalio_sdk::activities::ActivityDefinitions) {
        self.0.clone().register_all(defs)
    }
}

fn worker(runtime: &Runtime, client: &Client, code: Code, shipping: &Arc<Shipping>) -> Worker {
    let options = WorkerOptions::new("shipments")
        .register_workflow_with_factory(move || ShipmentSaga::on(code))
        .unwrap()
        .register_activities(Shared(shipping.clone()))
        .graceful_shutdown_period(Duration::from_secs(1))
        .build();
    Worker::new(runtime, client.clone(), options).unwrap()
}

async fn start(client: &Client, id: &str) {
    client
        .start_workflow(
            ShipmentSaga::run,
            vec![id.to_owned()],
            WorkflowStartOptions::new("shipments", id).build(),
        )
        .await
        .unwrap_or_else(|e| panic!("starting {id}: {e}"));
}

async fn ends(client: &Client, id: &str) -> Result<Log, String> {
    tokio::time::timeout(
        Duration::from_secs(60),
        client
            .get_workflow_handle::<ShipmentSaga>(id)
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("{id} did not end within a minute"))
    .map_err(|e| format!("{e:?}"))
}

async fn wait_until(shipping: &Shipping, id: &str, activity: &str) {
    for _ in 0..300 {
        if shipping.journal_of(id).iter().any(|a| a == activity) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never ran {activity}: {:?}", shipping.journal_of(id));
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn sagas_in_flight_keep_their_version_and_new_ones_take_the_new_one() {
    let server = DevServer::start();
    let client = server.client().await;
    let runtime = Runtime::from_current_tokio(Default::default()).unwrap();
    let shipping = Arc::new(Shipping::default());

    // Version 1: two sagas held at Charge, one to complete and one to compensate later.
    let mut v1 = worker(&runtime, &client, Code::V1, &shipping);
    let stop_v1 = v1.shutdown_handle();
    let held = async {
        start(&client, "kept-1").await;
        start(&client, "refused-1").await;
        wait_until(&shipping, "kept-1", "Charge (held)").await;
        wait_until(&shipping, "refused-1", "Charge (held)").await;
        stop_v1();
    };
    let (stopped, ()) = tokio::join!(v1.run(), held);
    stopped.unwrap();

    // Version 2 replaces it; the gate opens; new sagas start.
    let mut v2 = worker(&runtime, &client, Code::V2, &shipping);
    let stop_v2 = v2.shutdown_handle();
    let after = async {
        shipping.charge_open.store(true, Ordering::SeqCst);
        let kept_1 = ends(&client, "kept-1").await;
        let refused_1 = ends(&client, "refused-1").await;
        start(&client, "kept-2").await;
        start(&client, "refused-2").await;
        let kept_2 = ends(&client, "kept-2").await;
        let refused_2 = ends(&client, "refused-2").await;
        stop_v2();
        (kept_1, refused_1, kept_2, refused_2)
    };
    let (stopped, (kept_1, refused_1, kept_2, refused_2)) = tokio::join!(v2.run(), after);
    stopped.unwrap();

    // Version 1's path, to its end, on version 2's worker.
    assert_eq!(kept_1.unwrap(), strings(&["kept-1", "Reserve", "Charge"]));
    assert!(refused_1.unwrap_err().contains("ErrCharge"));
    assert_eq!(
        shipping.journal_of("refused-1"),
        strings(&["Reserve", "Charge (held)", "Refund", "Release"]),
        "a version-1 saga compensates as version 1 did: no insurance to cancel"
    );
    // Version 2's path for the sagas started on it.
    assert_eq!(
        kept_2.unwrap(),
        strings(&["kept-2", "Reserve", "Insure", "Charge"])
    );
    assert!(refused_2.unwrap_err().contains("ErrCharge"));
    assert_eq!(
        shipping.journal_of("refused-2"),
        strings(&["Reserve", "Insure", "Refund", "CancelInsurance", "Release"])
    );

    // Retiring version 2's patch: its histories replay on the retired code; version 1's must
    // not be in flight any more, and indeed would not replay.
    let history = |id: &'static str| {
        let client = client.clone();
        async move {
            let events = client
                .get_workflow_handle::<ShipmentSaga>(id)
                .fetch_history(WorkflowFetchHistoryOptions::default())
                .into_events()
                .await
                .unwrap_or_else(|e| panic!("history of {id}: {e}"));
            temporalio_client::WorkflowHistory::from(History { events })
        }
    };
    let replay_on_v3 = |histories: Vec<temporalio_client::WorkflowHistory>| async move {
        let options = WorkflowReplayerOptions::new()
            .register_workflow_with_factory(|| ShipmentSaga::on(Code::V3))
            .unwrap()
            .build();
        let replayer = WorkflowReplayer::new(options).unwrap();
        replayer
            .replay_workflows(histories)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.replay_failure.map(|f| f.to_string()))
            .collect::<Vec<_>>()
    };
    let v2_histories = vec![history("kept-2").await, history("refused-2").await];
    assert_eq!(replay_on_v3(v2_histories).await, vec![None, None]);
    let v1_history = vec![history("kept-1").await];
    assert!(
        replay_on_v3(v1_history).await[0].is_some(),
        "a version-1 saga does not replay once version 1 is deleted"
    );
}
