//! `cargo xtask`: the one entry point for building, running and testing.
//!
//! - `cargo xtask build [--system FILE] [--config debug|release] [--ram MIB]`
//! - `cargo xtask run   [--system FILE] [--config debug|release] [--ram MIB]`
//! - `cargo xtask test [FILTER]`
//! - `cargo xtask bench`
//! - `cargo xtask site DIR [--out FILE]`
//!
//! Each installs the Debian packages it needs when they are missing (as
//! root) or says which command to run.

mod bench;
mod deps;
mod itest;
mod kernel;
mod lint;
mod linux_guest;
mod qemu;
mod site;
mod system;

use anyhow::{bail, Context, Result};
use kernel::KernelConfig;
use std::path::{Path, PathBuf};
use system::BuildOptions;

const USAGE: &str =
    "usage: cargo xtask <build|run|test|bench> [--system FILE] [--config debug|release] [--ram MIB] [--tap IFNAME]
       cargo xtask site DIR [--out FILE]
       cargo xtask lint

  build   build the kernel, the PD programs and the system image; print their paths
  run     build, then boot the system in QEMU with the serial console on this terminal
          (quit QEMU with Ctrl-A X); --tap IFNAME attaches the NIC to an existing TAP device
  test    host unit tests, then integration tests that boot the image in QEMU;
          test FILTER runs only the integration tests whose name contains FILTER
  bench   throughput and boot figures beside a Linux guest in the same QEMU configuration;
          bench web: only the web servers; bench mux: only the demultiplexer's cost
  site    build the site image of the document root DIR (default target/site/site.img)
          and print what it stored
  lint    the gate .ci/run passes first: cargo fmt --check, clippy -D warnings on the host
          crates and on the PD programs";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn parse_options(args: &[String], ws: &Path) -> Result<BuildOptions> {
    let mut opts = BuildOptions {
        system: ws.join("microkit.system"),
        config: KernelConfig::Debug,
        ram_mib: system::DEFAULT_RAM_MIB,
        tap: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "--system" => {
                let v = PathBuf::from(value("--system")?);
                opts.system = if v.is_absolute() { v } else { std::env::current_dir()?.join(v) };
            }
            "--config" => {
                opts.config = match value("--config")?.as_str() {
                    "debug" => KernelConfig::Debug,
                    "release" => KernelConfig::Release,
                    other => bail!("unknown config {other:?}: use debug or release"),
                }
            }
            "--ram" => opts.ram_mib = value("--ram")?.parse().context("--ram takes MiB, e.g. 512")?,
            "--tap" => opts.tap = Some(value("--tap")?),
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ws = workspace();
    let Some(cmd) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match cmd.as_str() {
        "build" => {
            let opts = parse_options(&args[1..], &ws)?;
            let built = system::build(&ws, &opts)?;
            system::print_paths(&built);
        }
        "run" => {
            let opts = parse_options(&args[1..], &ws)?;
            let built = system::build(&ws, &opts)?;
            deps::ensure_packages(deps::QEMU)?;
            let mut devices = opts.tap.as_deref().map(qemu::tap_nic).unwrap_or_else(qemu::user_nic);
            // The demo site, as the disk a web server's file cache reads.
            let site = site::default_image(&ws);
            site::build(&ws.join("images/site"), &site)?;
            println!("site image: {} (from images/site)", site.display());
            devices.extend(qemu::blk_drive(&site, true));
            let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
            let mut cmd = qemu::command(&built, opts.ram_mib, true, &devices);
            println!("{}", qemu::command_line(&cmd));
            match &opts.tap {
                Some(tap) => println!("the node is on {tap}: http://10.0.2.15/ if its description has a web server"),
                None => println!("web server (if the description has one): http://{}/", qemu::HOST_HTTP),
            }
            let status = cmd.status().context("starting QEMU")?;
            if !status.success() {
                bail!("QEMU exited with {status}");
            }
        }
        "test" => itest::run(&ws, args.get(1).map(String::as_str))?,
        "bench" => bench::run(&ws, bench::Only::parse(args.get(1).map(String::as_str))?)?,
        "site" => site::run(&ws, &args[1..], USAGE)?,
        "lint" => lint::run(&ws)?,
        "-h" | "--help" | "help" => println!("{USAGE}"),
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
    Ok(())
}
