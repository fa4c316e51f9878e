//! Records the histories that `workflows/tests/it/replay.rs` replays, each from a real server and
//! real workers, with the dispatch choice recorded in them:
//!
//! | file | saga |
//! |---|---|
//! | `dispatch-local-scenario-N` | scenario N on an all-in-one worker (local activities) |
//! | `dispatch-remote-scenario-N` | scenario N on split roles (regular activities) |
//! | `dispatch-local-saga-start-scenario-5` | scenario 5 started as `saga start` starts it (search attributes in the start request) |
//! | `dispatch-changed-scenario-7` | started on split roles, its worker killed mid-step, finished all-in-one |
//! | `waited-scenario-7` | its payment database "down" for five attempts: a round of local attempts, then regular ones |
//! | `dispatch-memo-*` | the dispatch named in the start request's memo ([`record_histories_named_by_the_starter`]) |
//!
//! The other files there (`scenario-N`, `local-scenario-N`, `cancelled`) come from the version
//! before the choice was recorded; they are kept as they are, because a saga started then may
//! still be in flight, and no current worker can record them again.
//!
//! Not part of the regular suite (it rewrites files in the repository). Run it after a
//! deliberate, versioned change of the workflow's commands:
//! `scripts/record-histories.sh` (or `cargo test -p saga-worker --test it -- --ignored
//! record_histories`).

use crate::support;

use saga_worker::launch::{self, Started};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use support::{DevServer, deploy::Deployment, wait_until_started};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn start(server: &DevServer, task_queue: &str, workflow_id: &str, file: &Path) {
    server.start_order_with_cli(task_queue, workflow_id, file);
}

/// Waits for the saga to close and writes its history with `saga history`, pretty-printed so
/// that a re-recording reads well in a diff.
async fn save(server: &DevServer, workflow_id: &str, name: &str) {
    let client = server.client().await;
    let started = Started {
        workflow_id: workflow_id.to_owned(),
        run_id: String::new(),
    };
    tokio::time::timeout(Duration::from_secs(180), launch::wait(&client, &started))
        .await
        .expect("the saga finishes")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["history", workflow_id])
        .env("TEMPORAL_ADDRESS", server.address())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = repo("workflows/tests/histories").join(format!("{name}.json"));
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&history).unwrap() + "\n",
    )
    .unwrap();
    eprintln!("recorded {}", file.display());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "rewrites workflows/tests/histories; run scripts/record-histories.sh"]
async fn record_histories() {
    std::fs::create_dir_all(repo("workflows/tests/histories")).unwrap();
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut local = Deployment::new("local", data.path());
    local.start_all_in_one(&server);
    let mut remote = Deployment::new("remote", data.path());
    remote.start_split(&server);
    let mut waited =
        Deployment::new("waited", data.path()).env("SAGA_FAULTS", "unavailable=ProcessPayment:5");
    waited.start_all_in_one(&server);
    let mut changed =
        Deployment::new("changed", data.path()).env("SAGA_FAULTS", "delay=ReserveInventory:3000");
    changed.start_split(&server);

    let mut names = Vec::new();
    for n in 1..=7 {
        let file = repo(&format!("testdata/scenario-{n}.json"));
        for deployment in [&local, &remote] {
            let id = format!("history-{}-scenario-{n}", deployment.name);
            start(&server, &deployment.task_queue(), &id, &file);
            names.push((id, format!("dispatch-{}-scenario-{n}", deployment.name)));
        }
    }
    // As `saga start` starts a saga: the search attributes set in the start request.
    let client = server.client().await;
    let order = saga_protos::parse_order(&std::fs::read(repo("testdata/scenario-5.json")).unwrap())
        .unwrap();
    launch::start(&client, &local.task_queue(), "history-saga-start", &order)
        .await
        .unwrap();
    names.push((
        "history-saga-start".into(),
        "dispatch-local-saga-start-scenario-5".into(),
    ));

    let file = repo("testdata/scenario-7.json");
    start(&server, &waited.task_queue(), "history-waited", &file);
    names.push(("history-waited".into(), "waited-scenario-7".into()));

    start(&server, &changed.task_queue(), "history-changed", &file);
    wait_until_started(&server, "history-changed", "ReserveInventory").await;
    changed.kill_all();
    changed.set_env("SAGA_FAULTS", "");
    changed.start_all_in_one(&server);
    names.push((
        "history-changed".into(),
        "dispatch-changed-scenario-7".into(),
    ));

    for (workflow_id, name) in names {
        save(&server, &workflow_id, &name).await;
    }
}

/// The sagas whose start request names their dispatch (`temporal_saga::DISPATCH_MEMO`):
///
/// | file | saga |
/// |---|---|
/// | `dispatch-memo-local-scenario-7` | posted to an all-in-one worker's intake: started eagerly, the memo says `local`, no dispatch marker |
/// | `dispatch-memo-local-scenario-3` | the same, compensated |
/// | `dispatch-memo-switched-scenario-7` | the memo says `local`, the split roles that ran it prefer `remote`: marker `saga-dispatch-remote@0` |
///
/// Only these files are written; the ones above stay as recorded.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "rewrites workflows/tests/histories; run scripts/record-histories.sh"]
async fn record_histories_named_by_the_starter() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let address = format!("127.0.0.1:{port}");
    let mut intake = Deployment::new("intake", data.path());
    intake.start(&server, &["--intake", &address]);
    let mut split = Deployment::new("split", data.path());
    split.start_split(&server);
    wait_for_listening(&address);

    let mut names = Vec::new();
    for n in [7, 3] {
        let body = std::fs::read_to_string(repo(&format!("testdata/scenario-{n}.json"))).unwrap();
        let answer = support::post_order_json(port, &body);
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        let order = saga_protos::parse_order(body.as_bytes()).unwrap();
        names.push((
            launch::workflow_id(&order.order_id),
            format!("dispatch-memo-local-scenario-{n}"),
        ));
    }

    // As the intake names it, but started through the server's queue, where only the split
    // roles poll.
    let client = server.client().await;
    let order = saga_protos::parse_order(&std::fs::read(repo("testdata/scenario-7.json")).unwrap())
        .unwrap();
    let id = "history-memo-switched";
    let (input, mut options) = launch::start_request(false, &split.task_queue(), id, &order);
    launch::name_dispatch(&mut options, saga_workflows::Dispatch::Local);
    client
        .start_workflow(saga_workflows::OrderSaga::run, input, options)
        .await
        .unwrap();
    names.push((id.into(), "dispatch-memo-switched-scenario-7".into()));

    for (workflow_id, name) in names {
        save(&server, &workflow_id, &name).await;
    }
}

fn wait_for_listening(address: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no intake on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
