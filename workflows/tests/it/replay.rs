//! Determinism: every history recorded from a real server (`tests/histories/`, see
//! `scripts/record-histories.sh`) replays on the current workflow code. A change to the
//! commands the workflow issues (a step added, removed or reordered, other options, another
//! dispatch) makes the replay fail here, before it can break sagas in flight.
//!
//! Histories that record their dispatch choice (`dispatch-*`, `waited-*`; `dispatch-memo-*` in
//! their start request's memo) must replay whatever the replaying worker prefers: on a local-dispatch worker and on a remote-dispatch one. The
//! older ones (`scenario-*`, `cancelled`, `local-scenario-*`) replay on a worker started with the
//! `--dispatch` they ran with, as before.

use saga_workflows::{Dispatch, OrderSaga, SagaConfig};
use std::path::PathBuf;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

/// Histories that must be present: the seven scenarios, a cancelled saga, local dispatch.
const REQUIRED: &[&str] = &[
    "dispatch-local-scenario-3",
    "dispatch-remote-scenario-3",
    "dispatch-local-saga-start-scenario-5",
    "dispatch-changed-scenario-7",
    "dispatch-memo-local-scenario-7",
    "dispatch-memo-switched-scenario-7",
    "waited-scenario-7",
    "scenario-1",
    "scenario-2",
    "scenario-3",
    "scenario-4",
    "scenario-5",
    "scenario-6",
    "scenario-7",
    "cancelled",
    "local-scenario-5",
    "local-scenario-7",
];

fn histories() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Replays `histories` with the workflow built as a worker started with `--dispatch <dispatch>`
/// builds it: new steps and histories that record no dispatch choice both take `dispatch`.
async fn replay(dispatch: Dispatch, histories: &[(String, Vec<u8>)]) -> Vec<String> {
    let config = SagaConfig {
        dispatch,
        legacy_dispatch: dispatch,
        ..Default::default()
    };
    let options = WorkflowReplayerOptions::new()
        .register_workflow_with_factory(move || OrderSaga::with_config(config.clone()))
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    let parsed = histories.iter().map(|(name, json)| {
        WorkflowHistory::from_json(json).unwrap_or_else(|e| panic!("{name}: {e}"))
    });
    let results = replayer.replay_workflows(parsed).await.unwrap();
    assert_eq!(results.len(), histories.len());
    histories
        .iter()
        .zip(results)
        .filter_map(|((name, _), result)| {
            result
                .replay_failure
                .map(|failure| format!("{name}: {failure}"))
        })
        .collect()
}

#[tokio::test]
async fn recorded_histories_replay_on_the_current_code() {
    let all = histories();
    for name in REQUIRED {
        assert!(
            all.iter().any(|(n, _)| n == name),
            "tests/histories/{name}.json is missing: record it with scripts/record-histories.sh"
        );
    }
    let (recorded, older): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(name, _)| name.starts_with("dispatch-") || name.starts_with("waited-"));
    let (local, remote): (Vec<_>, Vec<_>) = older
        .into_iter()
        .partition(|(name, _)| name.starts_with("local-"));
    let mut failures = replay(Dispatch::Remote, &remote).await;
    failures.extend(replay(Dispatch::Local, &local).await);
    for dispatch in [Dispatch::Local, Dispatch::Remote] {
        for failure in replay(dispatch, &recorded).await {
            failures.push(format!("on a {dispatch}-dispatch worker: {failure}"));
        }
    }
    assert!(
        failures.is_empty(),
        "histories that no longer replay:\n{}",
        failures.join("\n")
    );
}

/// The check has teeth: the same histories on a workflow that dispatches differently (local
/// activities, recorded as markers, instead of scheduled activities) must not replay.
#[tokio::test]
async fn a_workflow_that_issues_other_commands_fails_replay() {
    let remote: Vec<_> = histories()
        .into_iter()
        .filter(|(name, _)| name.starts_with("scenario-"))
        .collect();
    let failures = replay(Dispatch::Local, &remote).await;
    assert_eq!(
        failures.len(),
        remote.len(),
        "every remote-dispatch history fails on local dispatch: {failures:?}"
    );
}
