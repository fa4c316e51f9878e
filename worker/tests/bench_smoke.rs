//! `saga bench` end to end: a real dev server, a real `saga worker`, the real `saga bench`
//! binary with every scenario in the mix. Checks what the report counts, never how fast.

mod support;

use std::process::Command;
use support::{DevServer, WorkerProcess};

fn bench(server: &DevServer, worker: &WorkerProcess, data: &std::path::Path) -> serde_json::Value {
    // `saga bench` waits for every saga; if the worker died it would wait for good, so the test
    // puts a generous bound on it.
    let out = Command::new("timeout")
        .args(["300", env!("CARGO_BIN_EXE_saga")])
        .args([
            "bench",
            "--sagas",
            "21",
            "--concurrency",
            "5",
            "--warmup",
            "2",
        ])
        .args(["--mix", "all", "--json", "--quiet"])
        .args(["--worker-pid", &worker.pid().to_string()])
        .arg("--data-dir")
        .arg(data)
        .env("TEMPORAL_ADDRESS", server.address())
        .env("TEMPORAL_NAMESPACE", "default")
        .env_remove("SAGA_TASK_QUEUE")
        .output()
        .expect("running saga bench");
    assert!(
        out.status.success(),
        "saga bench failed: {}\n{}\nworker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        worker.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("the JSON report")
}

fn assert_counts(report: &serde_json::Value) {
    let count = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {report}"))
    };
    assert_eq!(count("sagas"), 21);
    assert_eq!(count("failures"), 0, "{report}");
    // Warm-up sagas are checked too.
    assert_eq!(count("paths_checked"), 23);
    assert_eq!(count("stores_checked"), 23);
    // The mix cycles the seven rows: three rounds in the window and the first two rows before
    // it, and only the seventh row completes.
    assert_eq!(count("completed"), 3);
    assert_eq!(count("compensated"), 20);
    let worker = &report["worker"];
    assert!(
        worker["cpu_s"].as_f64().is_some_and(|s| s >= 0.0),
        "{report}"
    );
    assert!(
        worker["peak_rss_mib"].as_f64().is_some_and(|m| m > 0.0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_checks_every_saga_in_both_dispatch_modes() {
    let server = DevServer::start();
    for dispatch in ["remote", "local"] {
        let data = tempfile::tempdir().unwrap();
        let mut worker =
            WorkerProcess::start_args(&server, data.path(), &[], &["--dispatch", dispatch]);
        let report = bench(&server, &worker, data.path());
        assert_counts(&report);
        worker.kill();
    }
}
