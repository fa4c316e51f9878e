//! A deployment whose topology changes with sagas in flight: an all-in-one worker (local
//! activities) SIGKILLed and replaced by split-role workers (regular activities on each
//! service's queue), and the reverse. Every saga must end on its scenario's path with its
//! stores right, and no step the history already recorded as done may run again because the
//! mode changed.

use crate::support;

use saga_protos::{Order, scenario::SCENARIOS};
use std::{collections::BTreeMap, time::Duration};
use support::{
    DevServer, assert_design_paths, assert_stores_consistent, deploy::Deployment, history_events,
    open_stores, order_with_lines, wait_all,
};
use temporalio_client::Client;
use temporalio_common::protos::{
    coresdk::common::decode_change_marker_details,
    temporal::api::history::v1::history_event::Attributes,
};

const SAGAS: usize = 100;
const ITEMS: [&str; 3] = ["item-x", "item-y", "item-z"];

/// `n` orders over the seven scenarios, each one unit of one or two shared items.
fn mixed_orders(n: usize) -> Vec<Order> {
    (0..n)
        .map(|i| {
            let scenario = &SCENARIOS[i % SCENARIOS.len()];
            let lines: Vec<(&str, i64)> = ITEMS[..1 + i % 2].iter().map(|i| (*i, 1)).collect();
            order_with_lines(&scenario.fresh_order_id(), &lines)
        })
        .collect()
}

/// How a saga's steps ran, read from its history.
#[derive(Debug, Default)]
struct Executions {
    /// Activity type → steps recorded as done (a completed local activity marker or an
    /// ActivityTaskCompleted).
    completed: BTreeMap<String, usize>,
    local: usize,
    remote: usize,
    /// The dispatch choices recorded (patch markers).
    choices: Vec<String>,
}

async fn executions(client: &Client, workflow_id: &str) -> Executions {
    let events = history_events(client, workflow_id).await;
    let mut ran = Executions::default();
    let mut scheduled: BTreeMap<i64, String> = BTreeMap::new();
    for event in &events {
        match &event.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                ran.remote += 1;
                scheduled.insert(event.event_id, a.activity_type.clone().unwrap().name);
            }
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                *ran.completed
                    .entry(scheduled[&a.scheduled_event_id].clone())
                    .or_default() += 1;
            }
            Some(Attributes::MarkerRecordedEventAttributes(m)) => match m.marker_name.as_str() {
                "core_local_activity" => {
                    ran.local += 1;
                    if m.failure.is_none() {
                        let data = &m.details["data"].payloads[0].data;
                        let data: serde_json::Value = serde_json::from_slice(data).unwrap();
                        let kind = data["activity_type"].as_str().unwrap().to_owned();
                        *ran.completed.entry(kind).or_default() += 1;
                    }
                }
                "core_patch" => {
                    let (id, _) = decode_change_marker_details(&m.details).unwrap();
                    ran.choices.push(id);
                }
                _ => {}
            },
            _ => {}
        }
    }
    ran
}

/// Waits until `ready` says the kill would find what the test needs in flight.
async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready().await {
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts `SAGAS` sagas on `before`, kills it once `ready` says so, finishes them on `after`,
/// and checks every answer.
async fn switch(
    server: &DevServer,
    mut deployment: Deployment,
    before: impl FnOnce(&mut Deployment, &DevServer),
    ready: impl AsyncFnMut(&Client, &[saga_worker::launch::Started]) -> bool,
    after: impl FnOnce(&mut Deployment, &DevServer),
) -> Vec<Executions> {
    let client = server.client().await;
    before(&mut deployment, server);
    let orders = mixed_orders(SAGAS);
    let started = deployment.start_sagas(&client, &orders).await;
    let mut ready = ready;
    wait_for("the moment to switch", async || {
        ready(&client, &started).await
    })
    .await;
    deployment.kill_all();
    after(&mut deployment, server);
    let histories = wait_all(&client, &started, Duration::from_secs(240), || {
        deployment.log_tails(30)
    })
    .await;
    assert_design_paths(&orders, &histories);
    let stores = open_stores(&deployment.data).await;
    assert_stores_consistent(&stores, &orders, 1000).await;
    let mut all = Vec::new();
    for s in &started {
        let ran = executions(&client, &s.workflow_id).await;
        for (activity, n) in &ran.completed {
            assert_eq!(
                *n, 1,
                "{activity} of {} recorded as done {n} times: {ran:?}",
                s.workflow_id
            );
        }
        // Whatever ran first, the choice was recorded, and so was every change.
        let first = ran.choices.first().map(String::as_str);
        if ran.local > 0 || ran.remote > 0 {
            assert!(
                first.is_some_and(|c| c.starts_with("saga-dispatch-")),
                "{ran:?}"
            );
        }
        if ran.local > 0 && ran.remote > 0 {
            assert!(
                ran.choices.len() >= 2,
                "a change of mode was not recorded: {ran:?}"
            );
        }
        all.push(ran);
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn sagas_started_all_in_one_finish_on_split_workers() {
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    // An all-in-one saga runs its steps as local activities in one workflow task; a step held
    // past 8 s makes the worker record what is done so far (a workflow task heartbeat), so the
    // kill finds sagas with steps recorded locally and steps still to run.
    let deployment =
        Deployment::new("a", dir.path()).env("SAGA_FAULTS", "delay=ReserveInventory:9000");
    let runs = switch(
        &server,
        deployment,
        |d, s| {
            d.start_all_in_one(s);
        },
        // A success-scenario saga started halfway has recorded the steps before the held one.
        async |client, started| executions(client, &started[48].workflow_id).await.local >= 2,
        |d, s| {
            d.set_env("SAGA_FAULTS", "");
            d.start_split(s)
        },
    )
    .await;
    let changed = runs.iter().filter(|r| r.local > 0 && r.remote > 0).count();
    assert!(changed > 0, "no saga changed mode mid-way: {runs:?}");
    assert!(
        runs.iter()
            .filter(|r| r.local > 0)
            .all(|r| r.choices[0] == "saga-dispatch-local"),
        "{runs:?}"
    );
    eprintln!(
        "{changed} of {} sagas changed from local to remote dispatch mid-way",
        runs.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sagas_started_on_split_workers_finish_all_in_one() {
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Split roles run each step as a regular activity; a step held for seconds keeps the sagas
    // at it, with steps after it, while the kill lands. (Waiting for a share of the sagas to
    // close instead let a busy machine switch only once the rest were at their last step.)
    let deployment =
        Deployment::new("b", dir.path()).env("SAGA_FAULTS", "delay=ReserveInventory:4000");
    let runs = switch(
        &server,
        deployment,
        |d, s| d.start_split(s),
        // A success-scenario saga started halfway has scheduled its third step, the held one.
        async |client, started| executions(client, &started[48].workflow_id).await.remote >= 3,
        |d, s| {
            d.set_env("SAGA_FAULTS", "");
            d.start_all_in_one(s);
        },
    )
    .await;
    let changed = runs.iter().filter(|r| r.local > 0 && r.remote > 0).count();
    assert!(changed > 0, "no saga changed mode mid-way: {runs:?}");
    assert!(
        runs.iter()
            .filter(|r| r.remote > 0)
            .all(|r| r.choices[0] == "saga-dispatch-remote"),
        "{runs:?}"
    );
    eprintln!(
        "{changed} of {} sagas changed from remote to local dispatch mid-way",
        runs.len()
    );
}
