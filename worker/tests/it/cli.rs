//! The `saga` command line as a user meets it: bad input gets one line naming the problem and a
//! non-zero exit (nothing is started, no server is needed), and `start --wait` follows a real
//! saga on a real dev server.

use crate::support;

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Output, Stdio},
};
use support::{DevServer, WorkerProcess, free_port};

fn saga(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saga"));
    cmd.args(args)
        // Nothing listens there: a command that got as far as connecting would fail differently.
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running saga");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Asserts a failed run printed exactly one line on stderr, nothing on stdout, and returns it.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure; stderr: {stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(lines[0].starts_with("saga: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    lines[0].to_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-order.json");
    let line = one_line_error(&saga(&["start", missing.to_str().unwrap()], None));
    assert!(line.contains("cannot read"), "{line}");
    assert!(line.contains("no-such-order.json"), "{line}");
    assert!(line.contains("No such file"), "{line}");
}

#[test]
fn malformed_json_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "broken.json", r#"{"order_id": "47", "items": [ }"#);
    let line = one_line_error(&saga(&["start", file.to_str().unwrap()], None));
    assert!(line.contains("broken.json is not a valid order"), "{line}");
    assert!(line.contains("expected"), "{line}");
}

#[test]
fn a_missing_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "no-customer.json",
        r#"{"order_id":"47","order_date":"2018-10-19T10:50:16+08:00",
            "items":[{"item_id":"1","qty":1,"description":"x","unit_price":1.0}]}"#,
    );
    let line = one_line_error(&saga(&["start", file.to_str().unwrap()], None));
    assert!(line.contains("no-customer.json"), "{line}");
    assert!(line.contains("customer_id"), "{line}");
    assert!(line.contains("missing field"), "{line}");
}

#[test]
fn a_bad_value_on_standard_input_names_its_field() {
    let order = r#"{"order_id":"47","order_date":"2018-10-19T10:50:16+08:00","customer_id":"c",
        "items":[{"item_id":"1","qty":1,"description":"x","unit_price":1.0},
                 {"item_id":"2","qty":-3,"description":"y","unit_price":1.0}]}"#;
    let line = one_line_error(&saga(&["start", "-"], Some(order)));
    assert!(line.contains("standard input"), "{line}");
    assert!(line.contains("items[1].qty"), "{line}");
}

#[test]
fn an_order_date_that_is_not_a_date_time_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let order = include_str!("../../../testdata/scenario-7.json")
        .replace("2018-10-19T10:50:16+08:00", "yesterday");
    let file = write(&dir, "yesterday.json", &order);
    let out = saga(&["start", file.to_str().unwrap()], None);
    let line = one_line_error(&out);
    assert!(
        line.contains(
            "yesterday.json is not a valid order: invalid order: order_date: must be \
             an RFC 3339 date-time"
        ),
        "{line}"
    );
    assert!(line.contains(r#"got "yesterday""#), "{line}");
}

#[test]
fn empty_input_is_refused() {
    let line = one_line_error(&saga(&["start", "-"], Some("")));
    assert!(
        line.contains("standard input is not a valid order"),
        "{line}"
    );
}

#[test]
fn a_valid_order_without_a_server_says_how_to_get_one() {
    let order = include_str!("../../../testdata/scenario-7.json");
    let line = one_line_error(&saga(&["start", "-"], Some(order)));
    assert!(line.contains("no Temporal server answered"), "{line}");
    assert!(line.contains("TEMPORAL_ADDRESS"), "{line}");
}

#[test]
fn help_explains_the_commands() {
    let out = saga(&["--help"], None);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "worker",
        "start",
        "scenarios",
        "status",
        "TEMPORAL_ADDRESS",
        "SAGA_DATA_DIR",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    let out = saga(&["start", "--help"], None);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("FILE|-") && help.contains("--wait"), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_wait_from_standard_input_shows_each_step_then_the_outcome() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(&server, data.path(), &[]);

    let order = support::order_with_id(&support::fresh_id("22"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_saga"))
        .args(["start", "--wait", "-"])
        .env("TEMPORAL_ADDRESS", server.address())
        .env("SAGA_UI_URL", "http://ui.example:9999/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(serde_json::to_string(&order).unwrap().as_bytes())
        .unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");

    let workflow_id = format!("order-{}", order.order_id);
    assert!(
        stdout.contains(&format!("started {workflow_id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "web ui: http://ui.example:9999/namespaces/default/workflows/{workflow_id}/"
        )),
        "{stdout}"
    );
    // Progress: every step of the path, numbered, in the order the workflow scheduled them.
    let steps: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().split_once(". "))
        .map(|(_, step)| step)
        .collect();
    assert_eq!(
        steps,
        ["ProcessOrder", "ProcessPayment", "ProcessRefund", "Notify"],
        "{stderr}"
    );
    assert!(stdout.contains("outcome: Failed (SagaFailed)"), "{stdout}");
    assert!(
        stdout.contains("path: ProcessOrder → ProcessPayment → ProcessRefund → Notify"),
        "{stdout}"
    );
}
