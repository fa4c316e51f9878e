//! Records the histories that `workflows/tests/replay.rs` replays: the seven scenarios, a
//! cancelled saga and sagas run with local dispatch, each from a real server and worker.
//!
//! Not part of the regular suite (it rewrites files in the repository). Run it after a
//! deliberate, versioned change of the workflow's commands:
//! `scripts/record-histories.sh` (or `cargo test -p saga-worker --test record_histories --
//! --ignored`).

mod support;

use saga_worker::launch::{self, Started};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use support::{DevServer, WorkerProcess, order_with_id, wait_until_started};

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
    tokio::time::timeout(Duration::from_secs(120), launch::wait(&client, &started))
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
    let _remote = WorkerProcess::start(&server, &data.path().join("remote"), &[]);
    let _local = WorkerProcess::start_args(
        &server,
        &data.path().join("local"),
        &[("SAGA_TASK_QUEUE", "order-saga-local")],
        &["--dispatch", "local"],
    );
    let _slow = WorkerProcess::start(
        &server,
        &data.path().join("slow"),
        &[
            ("SAGA_TASK_QUEUE", "order-saga-slow"),
            ("SAGA_FAULTS", "delay=ReserveInventory:3000"),
        ],
    );

    for n in 1..=7 {
        let file = repo(&format!("testdata/scenario-{n}.json"));
        start(
            &server,
            "order-saga",
            &format!("history-scenario-{n}"),
            &file,
        );
    }
    for n in [5, 7] {
        let file = repo(&format!("testdata/scenario-{n}.json"));
        start(
            &server,
            "order-saga-local",
            &format!("history-local-scenario-{n}"),
            &file,
        );
    }
    let cancelled = data.path().join("cancelled.json");
    std::fs::write(
        &cancelled,
        serde_json::to_vec(&order_with_id("40ca0000-0000-4000-8000-000000000001")).unwrap(),
    )
    .unwrap();
    start(&server, "order-saga-slow", "history-cancelled", &cancelled);
    wait_until_started(&server, "history-cancelled", "ReserveInventory").await;
    assert!(
        server
            .cli(&["workflow", "cancel", "-w", "history-cancelled"])
            .status
            .success()
    );

    for n in 1..=7 {
        save(
            &server,
            &format!("history-scenario-{n}"),
            &format!("scenario-{n}"),
        )
        .await;
    }
    for n in [5, 7] {
        save(
            &server,
            &format!("history-local-scenario-{n}"),
            &format!("local-scenario-{n}"),
        )
        .await;
    }
    save(&server, "history-cancelled", "cancelled").await;
}
