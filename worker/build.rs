//! Link order: the functions a worker runs go first in the `saga` binary, together.
//!
//! | build | what the linker gets |
//! |---|---|
//! | optimised (`release`, `dist`), x86-64 Linux, rustc's own lld | `link-order.txt` as lld's `--symbol-ordering-file` |
//! | anything else (tests, other targets, another linker), or `SAGA_LINK_ORDER=0` | nothing: the usual layout |
//!
//! Why: the kernel maps a binary's code into a process 64 KB at a time around each page it
//! runs. A worker runs about 5 MB of the binary's 19 MB of code, spread over all of it, so
//! nearly the whole 19 MB ended up in its resident memory; with those functions first, an idle
//! worker maps 9.6 MiB of files instead of 17.4, and 9 MiB less at its peak (BENCHMARKS.md,
//! "Link order").
//! `scripts/link-order.sh` records the list from a running worker. A name the binary no longer
//! has (after a toolchain or Cargo.lock change) is skipped, so a stale list costs memory, never
//! a broken build.

use std::{env, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=SAGA_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let optimised = var("PROFILE") == "release";
    if !optimised || var("SAGA_LINK_ORDER") == "0" || !links_with_rust_lld(&var) {
        return;
    }
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=saga=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=saga=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links this build with the lld it ships: x86-64 Linux since 1.90 (the workspace
/// needs 1.92), when the toolchain has it (rustup's do; a distribution's may not) and no linker
/// or link flag was chosen by hand. Anything else may be GNU ld, which has no ordering option.
fn links_with_rust_lld(var: &impl Fn(&str) -> String) -> bool {
    const TARGET: &str = "x86_64-unknown-linux-gnu";
    if var("TARGET") != TARGET
        || !var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link")
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("bin/gcc-ld/ld.lld")
        .exists()
}
