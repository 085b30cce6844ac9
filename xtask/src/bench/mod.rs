//! Benchmarks (`cargo xtask bench`): figures for this system beside the same
//! measure for a Linux guest in the same QEMU configuration, run in the same
//! invocation, as ratios. [`frames`] is the frame-rate measure both share;
//! [`web`] is the web servers' benchmark (`cargo xtask bench web`: the web
//! node against Linux with nginx) and [`ftp`] the FTP servers' (`cargo
//! xtask bench ftp`: the node's ftpd against Linux with vsftpd, MB/s of
//! one and of 8 parallel downloads of a 10 MB file), run last by `cargo
//! xtask bench`, in that order.
//!
//! The machines are shared and noisy (the host is itself a VM), so the two
//! systems are interleaved round by round (A B A B ...), each figure is the
//! median of its rounds, and the CPU steal seen during the whole run is
//! printed beside the table.

pub mod frames;
mod ftp;
pub mod netns;
mod web;

use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::{self, Session};
use crate::harness::system;
use crate::harness::{deps, site};
use crate::itest::{self, KERNEL_CONSOLE};
use crate::linux_guest::{self, measure};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// Rounds per system; figures are medians over them.
const ROUNDS: usize = 3;
/// Frames in flight while measuring echo throughput, the same for both.
const WINDOW: usize = 32;
/// How long each throughput measurement runs.
const MEASURE: Duration = Duration::from_secs(3);
/// Frame sizes measured: minimum-size and full-MTU frames.
const FRAME_LENS: [usize; 2] = [64, 1514];
/// Disk read measured over an image of this size (both systems).
const DISK_MIB: u64 = itest::blk::BENCH_DISK_MIB as u64;

/// One system's figures from one round.
#[derive(Clone, Debug, Default)]
struct Round {
    /// Host seconds from starting QEMU to the echo service being ready.
    ready_s: f64,
    /// Echoed frames per second, per entry of [`FRAME_LENS`].
    frames_per_s: Vec<f64>,
    disk_mb_s: f64,
}

/// Which measures to run: all, or one group.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    /// The web servers: this system's against Linux with nginx ([`web`]).
    Web,
    /// The FTP servers: this system's against Linux with vsftpd ([`ftp`]).
    Ftp,
    /// The demultiplexer's cost alone (seL4 only).
    Mux,
}

impl Only {
    pub fn parse(arg: Option<&str>) -> Result<Only> {
        match arg {
            None => Ok(Only::All),
            Some("web") => Ok(Only::Web),
            Some("ftp") => Ok(Only::Ftp),
            Some("mux") => Ok(Only::Mux),
            Some(other) => anyhow::bail!("unknown bench group {other:?} (try `web`, `ftp`, `mux`, or nothing for all)"),
        }
    }
}

/// `cargo xtask bench [web|ftp|mux] [--quick] [--only TEXT]`: `--quick`
/// shortens the web and FTP benchmarks' runs (2 s instead of 10 s),
/// `--only` keeps the web measures whose name contains TEXT (e.g. "1 MB"),
/// for development.
pub fn run(ws: &Path, args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut only = None;
    let mut groups: Vec<&str> = Vec::new();
    let mut rest = args.iter().map(String::as_str).filter(|a| *a != "--quick");
    while let Some(arg) = rest.next() {
        match arg {
            "--only" => only = Some(rest.next().context("--only needs a text (a measure's name contains it)")?),
            flag if flag.starts_with("--") => anyhow::bail!("unknown bench option {flag:?} (try --quick, --only TEXT)"),
            group => groups.push(group),
        }
    }
    anyhow::ensure!(groups.len() <= 1, "one bench group at most, not {groups:?}");
    match Only::parse(groups.first().copied())? {
        Only::Web => web::run(ws, quick, only),
        Only::Ftp => {
            anyhow::ensure!(only.is_none(), "--only chooses web measures; `bench ftp` has two, always run");
            ftp::run(ws, quick)
        }
        Only::Mux => {
            deps::ensure_packages(deps::QEMU)?;
            mux_only(ws)
        }
        Only::All => {
            deps::ensure_packages(deps::QEMU)?;
            echo_disk_mux_in_place(ws)?;
            println!("\nthe web servers:");
            web::run(ws, quick, only)?;
            println!("\nthe FTP servers:");
            ftp::run(ws, quick)
        }
    }
}

/// Echo, disk, the demultiplexer's cost and bodies sent in place versus
/// copied, interleaved round by round.
fn echo_disk_mux_in_place(ws: &Path) -> Result<()> {
    let ours = itest::build(ws, "tests/systems/net.system", KERNEL_CONSOLE)?;
    let node = itest::build(ws, "tests/systems/node.system", KERNEL_CONSOLE)?;
    // The web node on the debug kernel, as the figures in the README were
    // measured (it logs through its serial PD in either configuration).
    let web = itest::build(ws, "microkit.system", KernelConfig::Debug)?;
    let web_copied = itest::build(ws, &copying_web_node(ws)?, KernelConfig::Debug)?;
    let site = site::default_image(ws);
    site::build(&ws.join("images/site"), &site)?;
    deps::ensure_packages(&[deps::Package { name: "wrk", probe: "wrk" }])?;
    let guest = linux_guest::build(ws)?;
    let image = measure::test_image(ws, DISK_MIB)?;
    let steal_start = CpuTimes::read()?;

    let (mut sel4, mut linux, mut through_mux) = (Vec::new(), Vec::new(), Vec::new());
    let (mut in_place, mut copied) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        println!("round {round}/{ROUNDS}: seL4");
        let mut r = echo_round_ours(&ours)?;
        r.disk_mb_s = itest::blk::bench_disk_read(ws)?;
        sel4.push(r);
        println!("round {round}/{ROUNDS}: Linux");
        let mut r = echo_round_linux(&guest)?;
        r.disk_mb_s = measure::disk_read(&guest, &image)?.mb_per_sec();
        linux.push(r);
        println!("round {round}/{ROUNDS}: seL4 network node (UDP echo behind the demultiplexer)");
        through_mux.push(udp_echo_round_node(&node)?);
        println!("round {round}/{ROUNDS}: seL4 web node, bodies in place and copied (wrk)");
        in_place.push(web_paths_round(&web, &site)?);
        copied.push(web_paths_round(&web_copied, &site)?);
    }
    let steal = CpuTimes::read()?.steal_percent_since(&steal_start);

    println!("\n{:<38} {:>12} {:>12} {:>8}", "measure (median of rounds)", "seL4", "Linux", "ratio");
    let row = |name: &str, f: &dyn Fn(&Round) -> f64, higher_is_better: bool| {
        let (a, b) = (median(sel4.iter().map(f)), median(linux.iter().map(f)));
        let note = if higher_is_better { "x" } else { "x (lower is better)" };
        println!("{name:<38} {a:>12.1} {b:>12.1} {:>7.2}{note}", a / b);
    };
    row("boot to echo service ready (s)", &|r| r.ready_s, false);
    for (i, len) in FRAME_LENS.iter().enumerate() {
        row(&format!("echoed {len}-byte frames (frames/s)"), &|r| r.frames_per_s[i], true);
    }
    row(&format!("disk read, {DISK_MIB} MiB (MB/s)"), &|r| r.disk_mb_s, true);

    print_mux_table(&through_mux, &sel4);

    println!("\n{:<38} {:>12} {:>12} {:>8}", "seL4 web node, file bodies", "in place", "copied", "ratio");
    for (i, (path, connections)) in WEB_PATHS.iter().enumerate() {
        let (a, b) = (median(in_place.iter().map(|r| r[i])), median(copied.iter().map(|r| r[i])));
        let unit = if i == 0 { "requests/s" } else { "MB/s" };
        println!("{:<38} {a:>12.1} {b:>12.1} {:>7.2}x", format!("{path} ({unit}, -c {connections})"), a / b);
    }
    println!("(wrk on a TAP device in a network namespace, no QEMU user networking in between; in place: the NIC reads bodies from the file cache, checksums from the image's piece sums; copied: the same node without `send_from`, bodies copied into smoltcp's buffer and by the demultiplexer)");
    println!("\nCPU steal during the run: {steal:.1}% (the host is shared; high steal makes every figure slower)");
    println!("setup: QEMU TCG, -m {} MiB, virtio-net (dgram socket) and virtio-blk; window {WINDOW}, {} s per measure, {ROUNDS} rounds interleaved", system::DEFAULT_RAM_MIB, MEASURE.as_secs());
    Ok(())
}

/// `bench mux`: the demultiplexer's cost alone, direct echo and via mux
/// interleaved.
fn mux_only(ws: &Path) -> Result<()> {
    let ours = itest::build(ws, "tests/systems/net.system", KERNEL_CONSOLE)?;
    let node = itest::build(ws, "tests/systems/node.system", KERNEL_CONSOLE)?;
    let (mut direct, mut through_mux) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        println!("round {round}/{ROUNDS}: seL4 echo on the driver");
        direct.push(echo_round_ours(&ours)?);
        println!("round {round}/{ROUNDS}: seL4 network node (UDP echo behind the demultiplexer)");
        through_mux.push(udp_echo_round_node(&node)?);
    }
    print_mux_table(&through_mux, &direct);
    Ok(())
}

fn print_mux_table(through_mux: &[Vec<f64>], direct: &[Round]) {
    println!("\n{:<38} {:>12} {:>12} {:>8}", "the demultiplexer's cost (seL4)", "via mux", "direct", "ratio");
    for (i, len) in FRAME_LENS.iter().enumerate() {
        let (a, b) = (median(through_mux.iter().map(|r| r[i])), median(direct.iter().map(|r| r.frames_per_s[i])));
        println!("{:<38} {a:>12.1} {b:>12.1} {:>7.2}x", format!("echoed {len}-byte frames (frames/s)"), a / b);
    }
    println!("(via mux: UDP to the node's net-probe PD, classified, copied in and out, checked; direct: raw frames to an echo PD on the driver)");
}

fn echo_round_ours(built: &system::Built) -> Result<Round> {
    let link = frames::FrameLink::new()?;
    let args = link.qemu_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = Session::start(qemu::command(built, system::DEFAULT_RAM_MIB, false, &args))?;
    let (_, ready) = s.expect("[net-echo] ready", itest::LINE_TIMEOUT).context("booting the seL4 echo system")?;
    let frames_per_s = measure_frames(&link)?;
    Ok(Round { ready_s: ready.as_secs_f64(), frames_per_s, disk_mb_s: 0.0 })
}

/// UDP echo through driver, demultiplexer and the node's `net-probe` PD:
/// frames per second for each of [`FRAME_LENS`].
fn udp_echo_round_node(built: &system::Built) -> Result<Vec<f64>> {
    let link = frames::FrameLink::new()?;
    let args = link.qemu_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = Session::start(qemu::command(built, system::DEFAULT_RAM_MIB, false, &args))?;
    s.expect("[net-probe] ready", itest::LINE_TIMEOUT).context("booting the seL4 network node")?;
    let traffic = frames::Traffic::UdpToNode { port: PROBE_PORT };
    FRAME_LENS
        .iter()
        .map(|&len| {
            let rate = frames::measure_echo_of(&traffic, &link, len, WINDOW, MEASURE)?;
            println!("  {rate}");
            Ok(rate.frames_per_sec())
        })
        .collect()
}

/// Connections of the in-place comparison's small page.
const WEB_CONNECTIONS: usize = 32;

/// What the in-place comparison fetches, and with how many connections:
/// a small page (requests/s) and the site's large file (MB/s).
const WEB_PATHS: [(&str, usize); 3] =
    [("/index.html", WEB_CONNECTIONS), ("/data/squares.txt", 4), ("/data/squares.txt", 16)];

/// One boot of a web node on a TAP device: each of [`WEB_PATHS`], the
/// first in requests/s, the others in MB/s.
fn web_paths_round(built: &system::Built, site: &Path) -> Result<Vec<f64>> {
    let runs = itest::web::wrk_on_tap(built, site, &WEB_PATHS, MEASURE.as_secs())?;
    Ok(runs
        .iter()
        .zip(WEB_PATHS)
        .enumerate()
        .map(|(i, (run, (path, _)))| {
            let figure = if i == 0 { run.per_second } else { run.bytes_per_second / 1e6 };
            println!("  {path}: {figure:.1}");
            figure
        })
        .collect())
}

/// `microkit.system` without `send_from`: the same web node, with file
/// bodies copied instead of sent in place. Written under `target/bench`;
/// returns its path relative to the workspace.
fn copying_web_node(ws: &Path) -> Result<String> {
    let text = std::fs::read_to_string(ws.join("microkit.system"))?;
    const GRANT: &str = r#" send_from="site_cache""#;
    anyhow::ensure!(
        text.contains(GRANT),
        "microkit.system has no {GRANT}: the comparison would compare a node with itself"
    );
    let dir = ws.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("web-copied.system"), text.replace(GRANT, ""))?;
    Ok("target/bench/web-copied.system".into())
}

/// The UDP echo port of `net-probe` in `tests/systems/node.system`.
const PROBE_PORT: u16 = 7000;

fn echo_round_linux(guest: &linux_guest::Guest) -> Result<Round> {
    let g = measure::EchoGuest::boot(guest)?;
    let frames_per_s = measure_frames(&g.link)?;
    Ok(Round { ready_s: g.ready_after.as_secs_f64(), frames_per_s, disk_mb_s: 0.0 })
}

fn measure_frames(link: &frames::FrameLink) -> Result<Vec<f64>> {
    FRAME_LENS
        .iter()
        .map(|&len| {
            let rate = frames::measure_echo(link, len, WINDOW, MEASURE)?;
            println!("  {rate}");
            Ok(rate.frames_per_sec())
        })
        .collect()
}

pub(super) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The machine-wide CPU time counters of /proc/stat, in clock ticks.
pub(super) struct CpuTimes {
    total: u64,
    steal: u64,
    /// Idle and waiting for I/O.
    idle: u64,
    cores: usize,
}

impl CpuTimes {
    pub(super) fn read() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let line = stat.lines().next().context("/proc/stat is empty")?;
        let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal ...
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        let cores = stat.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count().max(1);
        Ok(CpuTimes { total: fields.iter().take(8).sum(), steal: field(7), idle: field(3) + field(4), cores })
    }

    /// Host cores busy on average since `start` (neither idle nor stolen),
    /// of [`Self::cores`].
    pub(super) fn busy_cores_since(&self, start: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(start.total).max(1);
        let idle = self.idle.saturating_sub(start.idle) + self.steal.saturating_sub(start.steal);
        self.cores as f64 * (total.saturating_sub(idle)) as f64 / total as f64
    }

    pub(super) fn cores(&self) -> usize {
        self.cores
    }

    pub(super) fn steal_percent_since(&self, start: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(start.total).max(1);
        100.0 * self.steal.saturating_sub(start.steal) as f64 / total as f64
    }
}
