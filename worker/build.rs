//! Link order: the functions a worker runs go first in the `saga` binary, together.
//!
//! | build | what the linker gets |
//! |---|---|
//! | optimised (`release`, `dist`), and a test link shows the linker takes the option (rustc's own lld on x86-64 Linux does) | `link-order.txt` as lld's `--symbol-ordering-file` |
//! | anything else (tests, GNU ld, a path with a comma), or `SAGA_LINK_ORDER=0` | nothing: the usual layout |
//!
//! Why: the kernel maps a binary's code into a process 64 KB at a time around each page it
//! runs. A worker runs about 5 MB of the binary's 19 MB of code, spread over all of it, so
//! nearly the whole 19 MB ended up in its resident memory; with those functions first, an idle
//! worker maps 9.6 MiB of files instead of 17.4, and 9 MiB less at its peak (docs/performance-history.md,
//! "Link order"). `scripts/link-order.sh` records the list from a running worker. A name the
//! binary no longer has (after a toolchain or Cargo.lock change) is skipped, so a stale list
//! costs memory, never a broken build.

use std::{env, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    for var in ["SAGA_LINK_ORDER", "RUSTC_LINKER", "CARGO_ENCODED_RUSTFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let var = |name: &str| env::var(name).unwrap_or_default();
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    let list = list.display().to_string();
    // `-Wl,` splits its argument at commas.
    if var("PROFILE") != "release"
        || var("SAGA_LINK_ORDER") == "0"
        || list.contains(',')
        || !Path::new(&list).is_file()
    {
        return;
    }
    let args = [
        format!("-Wl,--symbol-ordering-file={list}"),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ];
    if linker_takes(&args) {
        for arg in args {
            println!("cargo:rustc-link-arg-bin=saga={arg}");
        }
    } else {
        println!(
            "cargo:warning=the linker does not take lld's --symbol-ordering-file: `saga` is \
             linked in the usual order, with more of its code resident (worker/build.rs)"
        );
    }
}

/// Links an empty program with this build's compiler, target, flags and linker plus `args`:
/// GNU ld, which some toolchains and targets link with, has no ordering option and would fail
/// the real link.
fn linker_takes(args: &[String]) -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let out = Path::new(&var("OUT_DIR")).join("link-order-probe");
    let source = out.with_extension("rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()));
    rustc
        .args(["--crate-type", "bin", "--edition", "2021", "--target"])
        .arg(var("TARGET"))
        .arg("-o")
        .arg(&out)
        .arg(&source);
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    rustc.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    let linker = var("RUSTC_LINKER");
    if !linker.is_empty() {
        rustc.arg(format!("-Clinker={linker}"));
    }
    for arg in args {
        rustc.arg(format!("-Clink-arg={arg}"));
    }
    rustc
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
