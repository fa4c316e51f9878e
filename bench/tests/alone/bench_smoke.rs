//! `saga-bench` end to end: a real dev server, a real `saga worker`, the real `saga-bench`
//! binary with every scenario in the mix. Checks what the report counts, never how fast.

use crate::support;

use std::process::Command;
use support::{DevServer, WorkerProcess};

fn bench(
    server: &DevServer,
    worker: &WorkerProcess,
    data: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    // `saga-bench` waits for every saga; if the worker died it would wait for good, so the test
    // puts a generous bound on it.
    let out = Command::new("timeout")
        .args(["300", env!("CARGO_BIN_EXE_saga-bench")])
        .args(["--sagas", "21", "--concurrency", "5", "--warmup", "2"])
        .args(["--mix", "all", "--json", "--quiet"])
        .args(["--worker-pid", &worker.pid().to_string()])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .env("TEMPORAL_ADDRESS", server.address())
        .env("TEMPORAL_NAMESPACE", "default")
        .env_remove("SAGA_TASK_QUEUE")
        .output()
        .expect("running saga-bench");
    assert!(
        out.status.success(),
        "saga-bench failed: {}\n{}\nworker log:\n{}",
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
async fn bench_checks_every_saga_in_both_dispatch_modes_and_through_the_intake() {
    let server = DevServer::start();
    for dispatch in ["remote", "local"] {
        let data = tempfile::tempdir().unwrap();
        let mut worker =
            WorkerProcess::start_args(&server, data.path(), &[], &["--dispatch", dispatch]);
        let report = bench(&server, &worker, data.path(), &[]);
        assert_counts(&report);
        worker.kill();
    }
    // Orders posted to the worker's intake rather than started through the server.
    let data = tempfile::tempdir().unwrap();
    let intake = format!("127.0.0.1:{}", support::free_port());
    let mut worker = WorkerProcess::start_args(&server, data.path(), &[], &["--intake", &intake]);
    support::wait_for_intake(&intake, &worker);
    let url = format!("http://{intake}");
    let report = bench(&server, &worker, data.path(), &["--intake", &url]);
    assert_counts(&report);
    worker.kill();
}

fn saga_bench(server: &DevServer, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args(["120", env!("CARGO_BIN_EXE_saga-bench")])
        .args(args)
        .env("TEMPORAL_ADDRESS", server.address())
        .env("TEMPORAL_NAMESPACE", "default")
        .env_remove("SAGA_TASK_QUEUE")
        .output()
        .expect("running saga-bench")
}

#[test]
fn bench_gives_up_when_nothing_polls_or_the_worker_dies() {
    let server = DevServer::start();

    // Nobody polls this queue: the run fails after the stall timeout, naming the queue.
    let begun = std::time::Instant::now();
    let out = saga_bench(
        &server,
        &[
            "-n",
            "3",
            "--warmup",
            "0",
            "--quiet",
            "--stall-timeout",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 2: the run could not be made (1 is kept for wrong answers).
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no saga finished in 2 s") && stderr.contains("`order-saga`"),
        "{stderr}"
    );
    assert!(
        begun.elapsed().as_secs() < 60,
        "gave up only after {:?}",
        begun.elapsed()
    );

    // The process it measures ends mid-run (a stand-in that lives two seconds): the run fails
    // then, naming the pid, long before the default stall timeout.
    let mut short_lived = Command::new("sleep").arg("2").spawn().unwrap();
    let pid = short_lived.id().to_string();
    let begun = std::time::Instant::now();
    let out = saga_bench(
        &server,
        &["-n", "3", "--warmup", "0", "--quiet", "--worker-pid", &pid],
    );
    short_lived.wait().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 2: the run could not be made (1 is kept for wrong answers).
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("the worker under test (pid {pid}) exited")),
        "{stderr}"
    );
    assert!(
        begun.elapsed().as_secs() < 30,
        "gave up only after {:?}",
        begun.elapsed()
    );
}

/// Runs one of the repository's `scripts/` with bash (at most 15 minutes), its results in
/// `out_dir` (`OUT`), on a dev server of its own; returns its standard output once it has
/// succeeded.
fn run_script(
    script: &str,
    args: &[&std::ffi::OsStr],
    out_dir: &std::path::Path,
    configure: impl FnOnce(&mut Command) -> &mut Command,
) -> String {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let mut command = Command::new("timeout");
    command
        .args(["900", "bash"])
        .arg(repo.join("scripts").join(script))
        .args(args)
        .env("OUT", out_dir)
        .env_remove("TEMPORAL_ADDRESS");
    let out = configure(&mut command)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// `scripts/bench-compare.sh` end to end at toy size: a fresh dev server per run, every
/// configuration (this worker four ways, the Python peer three ways, its virtualenv created on
/// first use, the TypeScript peer two ways after `npm ci`, `saga-floor` with no step and with
/// the saga's events, each both ways), every answer checked, medians and goal ratios printed.
/// What it measures is not judged here; that it runs from a clone is.
#[test]
fn the_comparison_script_runs_every_configuration_and_prints_the_goals() {
    let out_dir = tempfile::tempdir().unwrap();
    run_script("bench-compare.sh", &[], out_dir.path(), |c| {
        c.env("SAGA_BIN", support::saga_bin())
            .env("SAGA_BENCH_BIN", env!("CARGO_BIN_EXE_saga-bench"))
            .envs([
                ("ROUNDS", "1"),
                ("N", "8"),
                ("C", "4"),
                ("LAT_N", "3"),
                ("WARMUP", "2"),
                ("SWEEP", ""),
            ])
    });

    let runs = std::fs::read_to_string(out_dir.path().join("runs.jsonl")).unwrap();
    let runs: Vec<serde_json::Value> = runs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let labels: std::collections::BTreeSet<_> =
        runs.iter().map(|r| r["label"].as_str().unwrap()).collect();
    let every = [
        "default",
        "floor",
        "floor-intake",
        "intake",
        "py",
        "py-eager",
        "py-local",
        "remote",
        "shape",
        "shape-intake",
        "ts",
        "ts-local",
        "unnamed",
    ];
    assert_eq!(labels, every.into());
    // A throughput and a latency run each.
    assert_eq!(runs.len(), 2 * every.len(), "{runs:?}");
    for run in &runs {
        assert_eq!(run["failures"], 0, "{run}");
        let sagas = run["sagas"].as_u64().unwrap();
        if run["label"] == "py-eager" {
            // It drives itself: its sagas are counted on the server, the warm-up's among them.
            assert_eq!(run["completed"], sagas + 2, "{run}");
        } else {
            assert_eq!(run["paths_checked"], sagas + 2, "{run}");
        }
    }

    let summary = std::fs::read_to_string(out_dir.path().join("summary.txt")).unwrap();
    // Both sets of goals (through the server, through the intake), four measures each, every
    // one judged against a peer figure of the same round; and the start that names no dispatch
    // against the first set, shown beside it and not counted.
    let verdicts: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" goal "))
        .collect();
    assert_eq!(verdicts.len(), 12, "{summary}");
    for line in &verdicts {
        assert!(
            line.contains('[')
                && [" met ", "MISSED", "out of reach", "met, beside"]
                    .iter()
                    .any(|verdict| line.contains(verdict)),
            "{line}"
        );
    }
    let beside = verdicts.iter().filter(|l| l.contains(", beside)")).count();
    assert_eq!(beside, 4, "{summary}");
    assert!(
        summary.contains("wrong or missing answers across all runs: 0"),
        "{summary}"
    );
    assert!(summary.contains("temporal server start-dev"), "{summary}");
}

/// `scripts/bench-instructions.sh` end to end at toy size: the same worker counted twice under
/// callgrind, posted to its intake, every answer checked. Two counts of one binary agree (the
/// point of counting instructions rather than CPU time on a shared machine); a count is
/// plausible for a saga (several hundred thousand instructions, not a handful).
#[test]
fn the_instruction_count_script_counts_a_saga_the_same_twice() {
    let out_dir = tempfile::tempdir().unwrap();
    let saga = support::saga_bin();
    let stdout = run_script(
        "bench-instructions.sh",
        &[saga.as_os_str(), saga.as_os_str()],
        out_dir.path(),
        |c| {
            c.envs([
                ("N", "12"),
                ("C", "4"),
                ("WARMUP", "3"),
                ("MODES", "intake"),
            ])
        },
    );

    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("intake "))
        .unwrap_or_else(|| panic!("no intake row: {stdout}"))
        .split_whitespace()
        .collect();
    let [_, a, b, ratio] = row[..] else {
        panic!("not a row of four: {row:?}")
    };
    let (a, b, ratio): (u64, u64, f64) = (
        a.parse().unwrap(),
        b.parse().unwrap(),
        ratio.parse().unwrap(),
    );
    assert!(a > 200_000 && b > 200_000, "{stdout}");
    assert!(
        (0.8..1.25).contains(&ratio),
        "two counts of one binary: {stdout}"
    );
    for label in ["a", "b"] {
        let report =
            std::fs::read_to_string(out_dir.path().join(format!("{label}-intake/measured.json")))
                .unwrap();
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["failures"], 0, "{report}");
        assert_eq!(report["paths_checked"], 12, "{report}");
        assert!(
            out_dir
                .path()
                .join(format!("{label}-intake.callgrind"))
                .exists()
        );
    }
}

/// `saga-floor` (an `OrderSaga` with no step) driven by `saga-bench --floor`, through the
/// server and posted to its intake: every run completes, and is checked for it; each history
/// holds what the flags asked for (a patch marker and two local steps' markers).
#[test]
fn the_floor_worker_completes_every_run_started_either_way() {
    let server = DevServer::start();
    let queue = format!("floor-{}", support::fresh_id(""));
    let intake = format!("127.0.0.1:{}", support::free_port());
    let mut floor = Command::new(env!("CARGO_BIN_EXE_saga-floor"))
        .args(["--task-queue", &queue, "--patches", "1", "--upserts", "1"])
        .args(["--local-steps", "2", "--intake", &intake])
        .env("TEMPORAL_ADDRESS", server.address())
        .env("TEMPORAL_NAMESPACE", "default")
        .spawn()
        .expect("starting saga-floor");
    let pid = floor.id().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(&intake).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "saga-floor's intake never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let intake_url = format!("http://{intake}");
    for route in [&[][..], &["--intake", intake_url.as_str()][..]] {
        let mut args = vec!["-n", "6", "-c", "3", "--warmup", "1", "--floor", "--json"];
        args.extend(["--quiet", "--task-queue", &queue, "--worker-pid", &pid]);
        args.extend(route);
        let out = saga_bench(&server, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{route:?}: {stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["failures"], 0, "{report}");
        assert_eq!(report["paths_checked"], 7, "{report}");
        assert_eq!(report["completed"], 7, "{report}");
        assert_eq!(report["stores_checked"], 0, "{report}");
    }
    floor.kill().unwrap();
    floor.wait().unwrap();

    let query = format!("TaskQueue=\"{queue}\"");
    let listed = server.cli(&["workflow", "list", "--query", &query, "-o", "json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.len(), 14, "{listed:?}");
    let id = listed[0]["execution"]["workflowId"].as_str().unwrap();
    let shown = server.cli(&["workflow", "show", "--workflow-id", id, "-o", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let markers = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "EVENT_TYPE_MARKER_RECORDED")
        .count();
    assert_eq!(markers, 3, "one patch marker and two local steps': {shown}");
}
