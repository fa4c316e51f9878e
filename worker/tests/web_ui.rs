//! The Temporal Web UI, read as a person would: headless Chromium opens the test server's UI on a
//! compensated saga (an order of the inventory-fails scenario) and the rendered page must show
//! the workflow as failed and the compensations in its history. A screenshot is left under
//! `target/web-ui/` to look at.

mod support;

use saga_worker::{history::Closed, launch};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use support::{DevServer, ServerOptions, WorkerProcess};

/// Debian's `chromium`, or `CHROMIUM` when set.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its standard output.
/// `--virtual-time-budget` lets the client-side app fetch and render before the page is read.
fn run_chromium(bin: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let stdout = profile.with_extension("out");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1440,1400",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&stdout).unwrap_or_default()
}

/// Text the page shows: the DOM without its tags, scripts and styles.
fn visible_text(dom: &str) -> String {
    let mut text = String::with_capacity(dom.len() / 4);
    let mut rest = dom;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push(' ');
        let tag = &rest[open..];
        let skip_to = ["<script", "<style"]
            .iter()
            .find(|t| tag.starts_with(**t))
            .and_then(|t| tag.find(&format!("</{}", &t[1..])));
        let after = skip_to.unwrap_or(0);
        rest = match tag[after..].find('>') {
            Some(close) => &tag[after + close + 1..],
            None => "",
        };
    }
    text.push_str(rest);
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_shows_a_compensated_saga_as_failed_with_its_compensations() {
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
    let _worker = WorkerProcess::start(&server, data.path(), &[]);
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
        std::fs::write(out_dir.join("scenario-3.html"), &dom).unwrap();
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

    let shot = out_dir.join("scenario-3.png");
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
