//! The Temporal Web UI, read as a person would: headless Chromium opens the test server's UI on a
//! compensated saga (an order of the inventory-fails scenario) and the rendered page must show
//! the workflow as failed and the compensations in its history, by name, whether the steps ran
//! as local activities (the UI labels their markers by activity type) or as regular ones.
//! Screenshots are left under `target/web-ui/` to look at.

use crate::support;

use saga_worker::{history::Closed, launch};
use std::{path::PathBuf, time::Duration};
use support::{
    DevServer, ServerOptions, WorkerProcess,
    browser::{chromium, run_chromium, visible_text},
};

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_shows_a_compensated_saga_as_failed_with_its_compensations() {
    // `saga worker` as it starts: every role in one process, so local activities.
    shows_a_compensated_saga(&[], "local").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_shows_the_steps_of_a_remote_saga_too() {
    shows_a_compensated_saga(&["--dispatch", "remote"], "remote").await;
}

async fn shows_a_compensated_saga(worker_args: &[&str], name: &str) {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "chromium is required in CI (scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: no chromium here; run scripts/setup.sh to install it");
        return;
    };

    let server = DevServer::start_with(ServerOptions {
        ui: true,
        ..Default::default()
    });
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start_args(&server, data.path(), &[], worker_args);
    let client = server.client().await;

    let order = support::order_with_id(&support::fresh_id("3"));
    let workflow_id = launch::workflow_id(&order.order_id);
    let started = launch::start(&client, "order-saga", &workflow_id, &order)
        .await
        .unwrap();
    let history = launch::wait(&client, &started).await.unwrap();
    assert!(
        matches!(history.closed, Closed::Failed { .. }),
        "{history:?}"
    );

    let url = format!(
        "http://127.0.0.1:{}/namespaces/default/workflows/{}/{}/history",
        server.ui_port.unwrap(),
        started.workflow_id,
        started.run_id
    );
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("web-ui");
    std::fs::create_dir_all(&out_dir).unwrap();
    let profile = data.path().join("chromium-profile");

    // The UI renders client-side and its server may still be warming up: read the page until
    // everything expected is there, a few times at most.
    let expected = [
        "Workflow Execution Failed",
        "SagaFailed",
        "ReleaseInventory",
        "ProcessRefund",
        "UpdateOrderStatus",
        workflow_id.as_str(),
    ];
    let mut missing = Vec::new();
    let mut text = String::new();
    for _ in 0..5 {
        let dom = run_chromium(&chromium, &profile, &url, &["--dump-dom"]);
        std::fs::write(out_dir.join(format!("scenario-3-{name}.html")), &dom).unwrap();
        text = visible_text(&dom);
        missing = expected
            .iter()
            .filter(|e| !text.contains(**e))
            .copied()
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(
        missing.is_empty(),
        "the Web UI page {url} lacks {missing:?}; it shows: {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    );

    let shot = out_dir.join(format!("scenario-3-{name}.png"));
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &chromium,
        &profile,
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("chromium saved a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("screenshot: {}", shot.display());
}
