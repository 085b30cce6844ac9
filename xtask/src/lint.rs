//! `cargo xtask lint`: the gate `.ci/run` passes before the tests.
//!
//! - `cargo fmt --all --check` (style in `rustfmt.toml`), and the same
//!   over the fuzz targets (`fuzz/`, a workspace of its own). They are not
//!   given to clippy: they build only with the nightly toolchain and
//!   libFuzzer, which `cargo xtask fuzz` uses;
//! - `cargo clippy --all-targets -- -D warnings` over every host crate
//!   (the libraries, tools and xtask; lints in the workspace's
//!   `[workspace.lints]`);
//! - the same over the bare-metal PD programs, checked for the host target
//!   in the groups `cargo xtask build` builds them in (the initialiser
//!   alone, then every PD program). They cannot be checked with the host
//!   crates: cargo unifies features across one invocation, and the host
//!   tools turn on `std` in dependencies (serde) that the programs share, which
//!   would meet the programs' own panic handler.

use crate::harness::system::{program_groups, program_packages};
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::Command;

pub fn run(ws: &Path) -> Result<()> {
    println!("== cargo fmt --check");
    cargo(ws, &["fmt", "--all", "--check"], "the tree is not formatted: run `cargo fmt --all`")?;
    cargo(
        ws,
        &["fmt", "--manifest-path", "fuzz/Cargo.toml", "--check"],
        "the fuzz targets are not formatted: run `cargo fmt --manifest-path fuzz/Cargo.toml`",
    )?;

    let groups = program_groups(program_packages(ws)?);
    println!("== cargo clippy: host crates");
    let mut args = vec!["clippy", "--workspace", "--all-targets"];
    for p in groups.iter().flatten() {
        args.extend(["--exclude", p.as_str()]);
    }
    args.extend(["--", "-D", "warnings"]);
    cargo(ws, &args, "clippy found problems in the host crates")?;

    for group in &groups {
        println!("== cargo clippy: PD programs {}", group.join(" "));
        let mut args = vec!["clippy", "--target-dir", "target/clippy-pds"];
        for p in group {
            args.extend(["-p", p.as_str()]);
        }
        args.extend(["--", "-D", "warnings"]);
        cargo(ws, &args, "clippy found problems in the PD programs")?;
    }
    println!("lint: clean");
    Ok(())
}

fn cargo(ws: &Path, args: &[&str], failure: &str) -> Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(ws)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    ensure!(status.success(), "{failure} (cargo {})", args.join(" "));
    Ok(())
}
