//! The committed `Cargo.lock` matches the manifests, and every build that `make` (hence CI) and
//! the Dockerfile run refuses to rewrite it (`--locked`): a stale lock file fails here rather
//! than changing under a user's fresh clone.

use std::{path::PathBuf, process::Command};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A build without `--locked` quietly rewrites a stale lock file before the tests run; the
/// rewritten file then differs from the committed one, and this says so.
#[test]
fn the_lock_file_this_build_used_is_the_committed_one() {
    let out = Command::new("git")
        .args(["diff", "--exit-code", "--stat", "HEAD", "--", "Cargo.lock"])
        .current_dir(repo())
        .output();
    let out = match out {
        Ok(out) if out.status.code() != Some(128) => out,
        // Not a git checkout (a source archive): nothing to compare with.
        _ => return eprintln!("not a git checkout; Cargo.lock not compared"),
    };
    assert!(
        out.status.success(),
        "cargo rewrote Cargo.lock for this build: the committed one does not match the \
         manifests. Commit the rewritten file. {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_cargo_build_in_the_makefile_and_the_dockerfile_is_locked() {
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    assert!(
        makefile
            .lines()
            .any(|l| l.trim() == "CARGO_FLAGS ?= --locked"),
        "{makefile}"
    );
    let builds: Vec<&str> = makefile
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["cargo build", "cargo test", "cargo clippy", "cargo run"]
                .iter()
                .any(|c| l.starts_with(c))
        })
        .collect();
    assert!(builds.len() >= 4, "{builds:?}");
    for line in builds {
        assert!(line.contains("$(CARGO_FLAGS)"), "not locked: {line}");
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for line in dockerfile.lines().filter(|l| l.contains("cargo build")) {
        assert!(line.contains("--locked"), "not locked: {line}");
    }
}
