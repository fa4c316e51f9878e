//! `cargo run -p temporal-saga --example trip_booking` against a dev server, as its docs say:
//! every scenario takes its design path, and the table says so.

use crate::support::DevServer;
use std::{path::PathBuf, process::Command};

/// The example binary `cargo test` built beside this test binary (`target/<profile>/examples`).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("examples").join("trip_booking");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p temporal-saga --example trip_booking` \
         (`cargo test -p temporal-saga` builds it)",
        binary.display()
    );
    binary
}

#[test]
fn the_trip_example_takes_every_design_path_against_a_dev_server() {
    let server = DevServer::start();
    let out = Command::new(example_binary())
        .env("TEMPORAL_ADDRESS", server.address())
        .output()
        .expect("running the trip_booking example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "trip_booking exited {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("5 of 5 scenarios took their design path"),
        "{stdout}"
    );
    let row = |prefix: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("{prefix} ")))
            .unwrap_or_else(|| panic!("no row for trip {prefix}:\n{stdout}"))
            .to_owned()
    };
    assert!(row("4").contains("compensation-failed") && row("4").contains("hotel"));
    assert!(row("7").contains("completed") && row("7").contains("car, flight, hotel"));
    assert!(
        stdout.contains("left booked: CancelHotel (undoing BookHotel) failed"),
        "the failed cancellation is named in the result:\n{stdout}"
    );
}
