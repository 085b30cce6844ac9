//! `cargo xtask test`: host unit tests first, then integration tests that
//! build real images and judge them from outside: booting in QEMU and
//! reading the serial console, or feeding the builder broken descriptions.

mod badlink;
pub mod blk;
pub mod cache;
mod drivers;
mod ftp;
mod hostile;
mod http_client;
mod image;
mod iommu;
mod net;
mod node;
mod recovery;
mod redteam;
pub(crate) mod web;
pub(crate) mod web_http;
mod web_site;

use crate::harness::deps;
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::{self, Session};
use crate::harness::system::{self, BuildOptions, Built};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long any one expected console line may take under TCG on a busy
/// machine. Generous: this is a hang detector, not a speed check
/// (`cargo xtask bench` measures speed).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel configuration of the test systems that have no serial PD
/// (every one but `microkit.system` and `serial-release.system`): their
/// PDs log through the kernel's debug console (`seL4_DebugPutChar`), which
/// the tests read, so they boot the debug kernel. The deployed node
/// (`microkit.system`, `cargo xtask build`'s default) boots the release
/// kernel in its tests (`web_http`, the renumbered node, `release_builds`).
pub const KERNEL_CONSOLE: KernelConfig = KernelConfig::Debug;

/// An integration test: a name and a function that passes or says why not.
pub type Test = (&'static str, fn(&Path) -> Result<()>);

/// Runs the host unit tests, then every integration test; with a
/// `filter`, only the integration tests whose name contains it.
pub fn run(ws: &Path, filter: Option<&str>) -> Result<()> {
    deps::ensure_packages(deps::KERNEL_BUILD)?;
    deps::ensure_packages(deps::QEMU)?;
    deps::ensure_packages(deps::GRAPHVIZ)?;
    if filter.is_none() {
        println!("== host unit tests");
        // Every library's host tests: the workspace root selects them all
        // (the PD programs have no tests).
        cargo_test(ws, &[])?;
    }

    println!("\n== integration tests");
    let mut tests: Vec<Test> = vec![
        ("demo system boots and shows every behaviour", demo_boots),
        ("child faults go to the parent, panics to the monitor", faults_are_handled),
        ("a PCI device is found at boot and granted to its driver", pci_device_granted),
        ("invalid descriptions are refused with their specific errors", invalid_descriptions),
        ("release configuration builds", release_builds),
    ];
    // Each area of the system adds its own tests here, from its own module
    // under itest/: `tests.extend(area::tests());`
    tests.extend(drivers::tests());
    tests.push((
        "the Linux reference guest of the benchmarks echoes frames and reads its disk",
        crate::linux_guest::smoke_test,
    ));
    tests.extend(blk::tests());
    tests.extend(cache::tests());
    tests.extend(iommu::tests());
    tests.extend(net::tests());
    tests.extend(node::tests());
    tests.extend(web::tests());
    tests.extend(web_http::tests());
    tests.extend(ftp::tests());
    tests.extend(hostile::tests());
    tests.extend(redteam::tests());
    tests.extend(recovery::tests());
    tests.extend(image::tests());
    if let Some(filter) = filter {
        tests.retain(|(name, _)| name.contains(filter));
        ensure!(!tests.is_empty(), "no integration test name contains {filter:?}");
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        println!("-- {name}");
        match test(ws) {
            Ok(()) => {
                println!("   ok");
                passed += 1;
            }
            Err(e) => {
                println!("   FAILED: {e:#}");
                failed += 1;
            }
        }
    }
    println!("\nintegration: {passed} passed, {failed} failed");
    ensure!(failed == 0, "{failed} integration test(s) failed");
    Ok(())
}

fn cargo_test(ws: &Path, args: &[&str]) -> Result<()> {
    let status =
        Command::new(env!("CARGO")).arg("test").args(args).current_dir(ws).status().context("running cargo test")?;
    ensure!(status.success(), "host unit tests failed (cargo test {})", args.join(" "));
    Ok(())
}

/// Builds a system description (a path relative to the workspace).
pub fn build(ws: &Path, system: &str, config: KernelConfig) -> Result<Built> {
    system::build(
        ws,
        &BuildOptions { system: ws.join(system), config, ram_mib: system::DEFAULT_RAM_MIB, tap: None, site: None },
    )
}

/// Boots `tests/systems/demo.system` and checks, in the serial output, every
/// behaviour the demo is there to show.
fn demo_boots(ws: &Path) -> Result<()> {
    let built = build(ws, "tests/systems/demo.system", KERNEL_CONSOLE)?;
    let report = std::fs::read_to_string(&built.report)?;
    for needle in [
        "== PD ping ==",
        "protected call channel 0 -> endpoint of pong",
        "memory region `shared`",
        "fault endpoint -> monitor",
    ] {
        ensure!(report.contains(needle), "report lacks {needle:?}");
    }
    boot_and_check(&built, check_demo)
}

/// Boots an image and runs `check` on its serial console; on failure the
/// console transcript is printed, so the reason is visible in CI logs.
pub fn boot_and_check(built: &Built, check: impl FnOnce(&mut Session) -> Result<()>) -> Result<()> {
    boot_with_and_check(built, &[], check)
}

/// As [`boot_and_check`], with extra QEMU arguments (devices, netdevs).
pub fn boot_with_and_check(
    built: &Built,
    qemu_args: &[&str],
    check: impl FnOnce(&mut Session) -> Result<()>,
) -> Result<()> {
    let mut s = Session::start(qemu::command(built, system::DEFAULT_RAM_MIB, false, qemu_args))?;
    let result = check(&mut s);
    if result.is_err() {
        s.print_transcript();
    }
    result
}

fn check_demo(s: &mut Session) -> Result<()> {
    s.expect("Booting all finished", LINE_TIMEOUT)?;
    s.expect("[monitor] 3 PDs", LINE_TIMEOUT)?;
    // The capability self-check: 3 caps each (input, fault endpoint, own
    // notification), ping's notify and call caps, pong's notify caps; the
    // kernel printed no error while the initialiser probed the CSpaces.
    s.expect("[monitor] capabilities checked: 13 caps in 3 PDs match the plan", LINE_TIMEOUT)?;
    ensure!(s.position("<<seL4").is_none(), "the kernel reported an error during the boot");
    // pong has the highest priority of the three, so its init runs first.
    let (_, first_init) = s.expect("[pong] init", LINE_TIMEOUT)?;
    println!(
        "   boot to the first PD's init: {:.2} s of host time (QEMU start to `[pong] init`)",
        first_init.as_secs_f64()
    );
    s.expect("[faulter] init", LINE_TIMEOUT)?;
    s.expect("[ping] init: wrote 15 bytes to the shared region", LINE_TIMEOUT)?;
    // Notifying a higher-priority PD switches to it at once: pong reads the
    // shared region before ping's notify returns.
    s.expect("[pong] notified by ping; shared region says: \"hello from ping\"", LINE_TIMEOUT)?;
    s.expect("[ping] notify returned", LINE_TIMEOUT)?;
    s.expect("[ping] notified by pong (round 1)", LINE_TIMEOUT)?;
    s.expect("[pong] protected call add_mul(6, 7)", LINE_TIMEOUT)?;
    s.expect("[ping] protected call add_mul(6, 7) -> sum 13, product 42", LINE_TIMEOUT)?;
    s.expect("[faulter] faulting on purpose", LINE_TIMEOUT)?;
    let (fault, _) = s.expect("[monitor] PD 'faulter' faulted", LINE_TIMEOUT)?;
    ensure!(fault.contains("address 0x10"), "fault report lacks the address: {fault}");
    ensure!(fault.contains("ip 0x2"), "fault report lacks the instruction pointer: {fault}");
    s.expect("[pong] protected call add_mul(20, 22)", LINE_TIMEOUT)?;
    s.expect("[ping] still running after the faulter's fault: add_mul(20, 22) -> sum 42", LINE_TIMEOUT)?;
    s.expect("[ping] demo complete", LINE_TIMEOUT)?;
    s.drain(Duration::from_millis(500), Duration::from_secs(2));
    ensure!(s.position("unreachable").is_none(), "the faulter ran past its fault");
    ensure!(s.position("panic").is_none(), "something panicked");
    Ok(())
}

/// Boots `tests/systems/faults.system`: a child PD faults and its parent's
/// `fault` handler restarts it; another PD panics and the monitor says so.
fn faults_are_handled(ws: &Path) -> Result<()> {
    let built = build(ws, "tests/systems/faults.system", KERNEL_CONSOLE)?;
    boot_and_check(&built, |s| {
        // The supervisor holds its child's TCB, and no PD its own.
        s.expect("[monitor] capabilities checked: 10 caps in 3 PDs match the plan", LINE_TIMEOUT)?;
        s.expect("[worker] run 1", LINE_TIMEOUT)?;
        s.expect("[supervisor] child 0 faulted: VM fault at address 0x20", LINE_TIMEOUT)?;
        s.expect("[supervisor] restarted child 0 (restart 1)", LINE_TIMEOUT)?;
        s.expect("[worker] run 2: work done", LINE_TIMEOUT)?;
        s.expect("[panicker] panic: panicked at", LINE_TIMEOUT)?;
        s.expect("deliberate panic with answer 42", LINE_TIMEOUT)?;
        s.expect("[monitor] PD 'panicker' panicked", LINE_TIMEOUT)?;
        s.drain(Duration::from_millis(500), Duration::from_secs(2));
        ensure!(s.position("PD 'worker'").is_none(), "the worker's fault went to the monitor, not to its parent");
        Ok(())
    })
}

/// Boots `tests/systems/pci.system` with a virtio-net device: the probe PD
/// reads the device's identity from its configuration snapshot and the
/// virtio common configuration through the BAR the initialiser mapped.
fn pci_device_granted(ws: &Path) -> Result<()> {
    let built = build(ws, "tests/systems/pci.system", KERNEL_CONSOLE)?;
    let args =
        ["-netdev", "user,id=n0", "-device", "virtio-net-pci,disable-legacy=on,iommu_platform=on,addr=3,netdev=n0"];
    boot_with_and_check(&built, &args, |s| {
        s.expect("[monitor] PCI 00:03.0 1af4:1041 -> PD 'pci-probe'", LINE_TIMEOUT)?;
        s.expect("[pci-probe] config space: vendor 0x1af4 device 0x1041", LINE_TIMEOUT)?;
        // virtio-net without multiqueue: receive, transmit, control.
        s.expect("num_queues 3", LINE_TIMEOUT)?;
        Ok(())
    })
}

/// Each file in `tests/invalid/` is a broken description whose header says
/// which error it must produce and where:
/// `<!-- expect 12:9: unknown protection domain -->`.
fn invalid_descriptions(ws: &Path) -> Result<()> {
    // The PD programs the descriptions name, built as for any debug image:
    // the test must not depend on an earlier one having built them.
    build(ws, "tests/systems/demo.system", KERNEL_CONSOLE)?;
    let dir = ws.join("tests/invalid");
    let bin = ws.join("target/pds-debug/release");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "system"));
    files.sort();
    ensure!(!files.is_empty(), "no test descriptions in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let expect = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("<!-- expect ")?.strip_suffix("-->"))
            .with_context(|| format!("{} has no `<!-- expect L:C: message -->` line", file.display()))?
            .trim();
        let (at, message) = expect.split_once(": ").context("expect line is `L:C: message`")?;
        let options = tools_builder::Options {
            system: file.clone(),
            monitor: bin.join("monitor"),
            search_path: vec![bin.clone()],
            out_dir: ws.join("target/invalid-test"),
            target: tools_builder::Target { ram_bytes: system::DEFAULT_RAM_MIB << 20 },
            kernel: "test".into(),
        };
        match tools_builder::build(&options) {
            Ok(_) => bail!("{} was accepted", file.display()),
            Err(e) => {
                let text = e.to_string();
                let located = format!("{}:{at}: error", file.display());
                ensure!(
                    text.contains(&located) && text.contains(message),
                    "{}: expected `{at}: ... {message}`, got:\n{text}",
                    file.display()
                );
                println!(
                    "   {} -> {}",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    text.lines().next().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// The release configuration (no kernel printing) builds end to end.
fn release_builds(ws: &Path) -> Result<()> {
    let built = build(ws, "microkit.system", KernelConfig::Release)?;
    ensure!(built.image.is_file(), "no image at {}", built.image.display());
    Ok(())
}
