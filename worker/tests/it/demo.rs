//! `make demo`'s clean-up as a user meets it: the demo's output piped into another program
//! (`make demo | tee demo.log`), then Ctrl-C in the terminal, which sends SIGINT to the whole
//! foreground process group, the demo script and `tee` alike. `tee` dies at once and the script
//! is left writing into a closed pipe; it must still stop the worker and the server, and leave
//! both ports free.
//!
//! The script runs as `make demo` runs it (`scripts/demo.sh`), with this build's `saga` binary
//! (`SAGA_BIN`), ports and a data directory of its own.

use crate::support;

use std::{
    io::Read as _,
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::free_port;

/// The demo's process group and the processes it started; whatever is still alive when the test
/// ends (it failed) is killed, so a failure leaves nothing running on the machine.
struct Demo {
    shell: Child,
    pids: Vec<i32>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: plain kill(2) on a pid this test read from the demo's own output.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // SAFETY: kill(2) of the process group this test created for the demo.
        unsafe { libc::kill(-(self.shell.id() as i32), libc::SIGKILL) };
        let _ = self.shell.wait();
    }
}

fn alive(pid: i32) -> bool {
    // A zombie has exited; only its parent has not read its status yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_owned())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Posts an order file to an intake under a fresh order id; returns the whole answer.
fn post_order(port: u16, order: &Path) -> String {
    let mut body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(order).unwrap()).unwrap();
    // A fresh order id: the demo's own scenarios may have used the sample's.
    body["order_id"] = support::fresh_id("").into();
    support::post_order_json(port, &body.to_string())
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Processes whose command line or environment mentions `needle` (this test's data directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 || !alive(pid) {
            continue;
        }
        let read = |file: &str| std::fs::read(entry.path().join(file)).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&read("cmdline")).replace('\0', " ");
        let environ = String::from_utf8_lossy(&read("environ")).into_owned();
        if cmdline.contains(needle) || environ.contains(needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// The pid after `NAME pid ` in the demo's banner (`server pid N, worker pid M, …`).
fn pid_in(banner: &str, name: &str) -> Option<i32> {
    let (_, after) = banner.split_once(&format!(" {name} pid "))?;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The server's and the worker's pids from the demo's banner.
fn pids_in(banner: &str) -> Option<(i32, i32)> {
    Some((pid_in(banner, "server")?, pid_in(banner, "worker")?))
}

/// The demo as it runs, up: its process group, where it writes, the ports it was given.
struct Running {
    demo: Demo,
    out_file: std::path::PathBuf,
    err_file: std::path::PathBuf,
    port: u16,
    ui_port: u16,
    intake_port: u16,
    server_pid: i32,
    worker_pid: i32,
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Starts `scripts/demo.sh | tee` as a terminal would and waits for its banner; `Err` with its
/// output when it ended before it was up.
fn start_demo(repo: &Path, data: &Path) -> Result<Running, String> {
    let (port, ui_port, intake_port) = (free_port(), free_port(), free_port());
    let out_file = data.join("demo.out");
    let err_file = data.join("demo.err");
    let mut command = Command::new("bash");
    // As a terminal's shell starts a foreground job: SIGINT and SIGPIPE at their defaults, even
    // when this test itself runs with them ignored (a background job, Rust's SIGPIPE handling).
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        })
    };
    let shell = command
        .arg("-c")
        .arg(r#"scripts/demo.sh | tee "$DEMO_OUT" >/dev/null"#)
        .current_dir(repo)
        .env("DEMO_OUT", &out_file)
        .env("DEMO_PORT", port.to_string())
        .env("DEMO_UI_PORT", ui_port.to_string())
        .env("DEMO_INTAKE_PORT", intake_port.to_string())
        .env("SAGA_DATA_DIR", data)
        .env("SAGA_BIN", env!("CARGO_BIN_EXE_saga"))
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("SAGA_FAULTS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_file).unwrap())
        // Its own process group, as a terminal gives a foreground job: the group gets the SIGINT.
        .process_group(0)
        .spawn()
        .expect("running bash");
    let mut demo = Demo {
        shell,
        pids: Vec::new(),
    };

    // Up and the scenarios done: the banner names the processes.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let out = read(&out_file);
        if out.contains("keep running until you press Ctrl-C")
            && let Some((server_pid, worker_pid)) = pids_in(&out)
        {
            return Ok(Running {
                demo,
                out_file,
                err_file,
                port,
                ui_port,
                intake_port,
                server_pid,
                worker_pid,
            });
        }
        if let Ok(Some(status)) = demo.shell.try_wait() {
            return Err(format!(
                "the demo ended ({status}) before it was up:\n{out}\n{}",
                read(&err_file)
            ));
        }
        assert!(
            Instant::now() < deadline,
            "the demo was not up in 240 s:\n{out}\n{}",
            read(&err_file)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ctrl_c_with_the_output_piped_into_tee_stops_worker_and_server() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = tempfile::tempdir().unwrap();
    // A port free when picked can be taken before the demo's server binds it, by a server that
    // another test starts meanwhile; the demo then stops, saying so, and starts again here with
    // other ports. Anything else that ends it early fails the test.
    let mut attempt = 1;
    let running = loop {
        match start_demo(&repo, data.path()) {
            Ok(running) => break running,
            Err(early) if early.contains("address already in use") && attempt < 3 => {
                eprintln!("a port was taken before the demo bound it; starting again:\n{early}");
                attempt += 1;
            }
            Err(early) => panic!("{early}"),
        }
    };
    let Running {
        mut demo,
        out_file,
        err_file,
        port,
        ui_port,
        intake_port,
        server_pid,
        worker_pid,
    } = running;
    let out = read(&out_file);
    demo.pids = vec![server_pid, worker_pid];
    demo.pids.extend(
        ["codec server", "webhook receiver"]
            .iter()
            .filter_map(|name| pid_in(&out, name)),
    );
    assert!(
        out.contains("all 7 scenarios took the design's path"),
        "{out}"
    );
    assert!(alive(server_pid) && alive(worker_pid));
    assert!(!port_free(port) && !port_free(ui_port));
    // The banner's order line works: the worker's intake takes an order.
    assert!(
        out.contains(&format!("http://127.0.0.1:{intake_port}/orders")),
        "{out}"
    );
    let answer = post_order(intake_port, &repo.join("testdata/scenario-7.json"));
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    // Ctrl-C: SIGINT to the whole group. `tee` dies, the script's stdout is a closed pipe.
    // SAFETY: kill(2) of the process group this test created.
    assert_eq!(
        unsafe { libc::kill(-(demo.shell.id() as i32), libc::SIGINT) },
        0
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while demo.shell.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the demo did not end within 90 s of Ctrl-C: {}",
            read(&err_file)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = read(&err_file);
    assert!(!alive(worker_pid), "the worker still runs: {stderr}");
    assert!(!alive(server_pid), "the server still runs: {stderr}");
    assert!(port_free(port), "port {port} is still taken: {stderr}");
    assert!(
        port_free(ui_port),
        "port {ui_port} is still taken: {stderr}"
    );
    assert!(
        port_free(intake_port),
        "port {intake_port} is still taken: {stderr}"
    );
    let left = processes_mentioning(&data.path().display().to_string());
    assert!(left.is_empty(), "processes left: {left:#?}\n{stderr}");
    // It said what it did on stderr, which a terminal still shows.
    assert!(stderr.contains("stopping the worker"), "{stderr}");
    assert!(stderr.contains("stopping the Temporal server"), "{stderr}");
    assert!(stderr.contains("demo: stopped."), "{stderr}");
}
