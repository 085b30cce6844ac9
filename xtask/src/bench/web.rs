//! `cargo xtask bench web`: this system's web server beside Linux with
//! nginx, on the same emulated machine, serving the same bytes, measured
//! the same way in the same run.
//!
//! - Systems: [`SYSTEMS`], a list; each is booted in QEMU (`-machine pc
//!   -accel tcg -cpu Nehalem,... -m 512`, modern virtio-net) on a TAP
//!   device in a fresh network namespace ([`super::netns`]) once per round,
//!   and every measure of the round runs against that boot. The rounds go
//!   A B A B ...; each figure is the median of its rounds.
//! - Files: 0 B to 1 MB and a SPECweb96-style set, random bytes from a
//!   fixed seed, written to `target/bench/site/`; the seL4 node serves the
//!   Cheetah image built from that folder (as `cargo xtask site` does), the
//!   guest the same folder as its `/www`. Before measuring, every file is
//!   downloaded once from the server and compared byte for byte with the
//!   source (this also warms the node's file cache).
//! - Measures: wrk (`-t1 --latency`, `--timeout 30s`) per file size, with
//!   keep-alive and with one connection per request (`Connection: close`),
//!   at 16 and 256 connections; the SPECweb96 mix (`specweb96.lua`). Every
//!   error wrk counts (connect, read, write, timeout, status not 2xx/3xx)
//!   goes into the table.
//! - Segments: one short close-mode run per round under tcpdump on the TAP
//!   device: server-to-client TCP segments per completed request.
//! - SYN flood: hping3 in the namespace sends SYNs at [`FLOOD_INTERVAL_US`]
//!   from [`netns::SILENT_IP`] (nobody answers the server's SYN-ACKs) while
//!   wrk measures legitimate close-mode clients; the table shows that rate
//!   as a fraction of the same measure without the flood.
//! - Boot: host seconds from starting QEMU to the first HTTP 200, with a
//!   try every 50 ms on a connection of its own ([`first_response`]).
//! - CPU steal (from /proc/stat) is recorded for every run, and the share
//!   of a host core QEMU's vCPU thread had ([`Session::vcpu_seconds`]):
//!   the flood row gives it with and without the flood (below a whole
//!   core, the guest had time to spare: what the flood cost was latency),
//!   and the host's busy cores (QEMU's threads, wrk, hping3 and the
//!   kernel's network path share them).
//!
//! Results: `target/bench/web-<UTC time>.tsv` (every run) and `.md` (the
//! table), copied to `target/bench/web-latest.tsv` and `.md`.

use super::netns::{self, Netns};
use super::{median, CpuTimes};
use crate::harness::deps::{self, Package};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::{self, Session};
use crate::harness::{site, system};
use crate::itest;
use crate::linux_guest::{self, measure::BOOT_TIMEOUT};
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A system under test.
pub struct System {
    /// Its column in the table.
    pub name: &'static str,
    pub kind: Kind,
}

pub enum Kind {
    /// A Microkit system description with a web server on port 80 at
    /// [`netns::SERVER_IP`], built with the release kernel configuration;
    /// its disk is the site image.
    Sel4 { description: &'static str },
    /// The Linux reference guest (`crate::linux_guest`), in the mode the
    /// benchmark boots it in: nginx here, nginx and vsftpd for
    /// [`super::ftp`].
    Linux,
}

/// Every system measured, in table order. Another seL4 web server (say with
/// another TCP) is one more entry; ratios are to [`REFERENCE`].
pub const SYSTEMS: &[System] = &[
    System { name: "seL4 httpd (Cheetah TCP)", kind: Kind::Sel4 { description: "microkit.system" } },
    System { name: "seL4 httpd (smoltcp)", kind: Kind::Sel4 { description: "tests/systems/web-smoltcp.system" } },
    System { name: "Linux 6.1 nginx", kind: Kind::Linux },
];

/// The system every other is compared with (its index in [`SYSTEMS`]).
const REFERENCE: usize = 2;

/// File sizes measured one by one: (name in the table, bytes).
const SIZES: &[(&str, usize)] =
    &[("0 B", 0), ("100 B", 100), ("1 KB", 1024), ("10 KB", 10 * 1024), ("100 KB", 100 * 1024), ("1 MB", 1024 * 1024)];

/// Concurrent connections.
const CLIENTS: &[usize] = &[16, 256];

/// The mix's wrk script, committed beside this file.
const SPECWEB_SCRIPT: &str = include_str!("specweb96.lua");

/// The segment count and the flood use close mode with this file and this
/// many connections.
const PROBE_SIZE: usize = 2; // "1 KB" in SIZES
const PROBE_CLIENTS: usize = 16;

/// hping3's interval between SYNs (`-i u100`: at most 10,000 per second;
/// the rate achieved is measured and printed).
const FLOOD_INTERVAL_US: u32 = 100;

/// The path of a size's file in the document root.
pub(super) fn size_path(bytes: usize) -> String {
    format!("/size/{bytes}.bin")
}

/// The SPECweb96-style files: (path, bytes), class 0..4, file 1..=9 (see
/// `specweb96.lua`).
fn specweb_files() -> Vec<(String, usize)> {
    (0..4u32)
        .flat_map(|class| {
            (1..=9usize).map(move |n| (format!("/specweb/class{class}_{n}.bin"), n * 1024 * 10usize.pow(class) / 10))
        })
        .collect()
}

/// How long and how often: the default, or `--quick` for development.
#[derive(Clone, Copy, Debug)]
struct Plan {
    rounds: usize,
    seconds: u64,
    capture_seconds: u64,
    flood_seconds: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan { rounds: 3, seconds: 2, capture_seconds: 2, flood_seconds: 3 }
        } else {
            Plan { rounds: 3, seconds: 10, capture_seconds: 3, flood_seconds: 10 }
        }
    }
}

/// One wrk measure.
#[derive(Clone, Debug)]
struct Measure {
    name: String,
    /// The URL's path, or `None` for the SPECweb96 mix (the script picks).
    path: Option<String>,
    close: bool,
    clients: usize,
}

fn measures() -> Vec<Measure> {
    let mut list = Vec::new();
    for &(size, bytes) in SIZES {
        for close in [false, true] {
            for &clients in CLIENTS {
                let mode = if close { "close" } else { "keep-alive" };
                list.push(Measure {
                    name: format!("{size}, {mode}, {clients} conn."),
                    path: Some(size_path(bytes)),
                    close,
                    clients,
                });
            }
        }
    }
    for &clients in CLIENTS {
        list.push(Measure {
            name: format!("SPECweb96 mix, keep-alive, {clients} conn."),
            path: None,
            close: false,
            clients,
        });
    }
    list
}

/// The probe measure (close mode, [`PROBE_SIZE`], [`PROBE_CLIENTS`]): its
/// index in the list (`None` if `--only` left it out).
fn probe_index(list: &[Measure]) -> Option<usize> {
    let path = size_path(SIZES[PROBE_SIZE].1);
    list.iter().position(|m| m.close && m.clients == PROBE_CLIENTS && m.path.as_deref() == Some(&path))
}

/// Errors wrk counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Errors {
    pub(super) connect: u64,
    pub(super) read: u64,
    pub(super) write: u64,
    pub(super) timeout: u64,
    /// Responses with a status other than 2xx or 3xx.
    pub(super) status: u64,
    /// Runs that could not start: wrk's first connection was refused (or
    /// unanswered) after every retry, so the run has no requests at all.
    pub(super) unreachable: u64,
}

impl Errors {
    pub(super) fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.status + self.unreachable
    }

    pub(super) fn add(&mut self, other: &Errors) {
        self.connect += other.connect;
        self.read += other.read;
        self.write += other.write;
        self.timeout += other.timeout;
        self.status += other.status;
        self.unreachable += other.unreachable;
    }

    /// `0`, or the total and its non-zero parts.
    pub(super) fn describe(&self) -> String {
        if self.total() == 0 {
            return "0".into();
        }
        let parts: Vec<String> = [
            ("connect", self.connect),
            ("read", self.read),
            ("write", self.write),
            ("timeout", self.timeout),
            ("status", self.status),
            ("unreachable", self.unreachable),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
        format!("{} ({})", self.total(), parts.join(", "))
    }
}

/// What one wrk run reported.
#[derive(Clone, Debug, PartialEq)]
struct WrkReport {
    requests: u64,
    per_second: f64,
    bytes_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: Errors,
}

/// A run, the CPU steal during it (percent), the share of a host core
/// QEMU's vCPU thread had meanwhile (`None` if it could not be read) and
/// the host's cores busy on average (everything: QEMU's threads, wrk,
/// hping3, the kernel's network path).
#[derive(Clone, Debug)]
struct Run {
    report: Option<WrkReport>,
    steal: f64,
    vcpu: Option<f64>,
    host_busy: Option<(f64, usize)>,
}

/// The capture run: server-to-client TCP segments, of which resets, the
/// requests wrk completed meanwhile, and what tcpdump says it dropped.
#[derive(Clone, Copy, Debug)]
struct Segments {
    captured: u64,
    resets: u64,
    requests: u64,
    dropped: u64,
}

impl Segments {
    fn per_request(&self) -> f64 {
        self.captured as f64 / self.requests.max(1) as f64
    }

    fn resets_per_request(&self) -> f64 {
        self.resets as f64 / self.requests.max(1) as f64
    }
}

/// One system's figures from one boot.
#[derive(Clone, Debug, Default)]
struct SystemRound {
    boot_s: Option<f64>,
    runs: Vec<Run>,
    segments: Option<Segments>,
    /// The run under the SYN flood, and the SYNs per second sent.
    flood: Option<(Run, f64)>,
    /// Host CPU microseconds QEMU spent per SYN of a slow flood (above
    /// its idle use): the per-packet cost of the whole receive path.
    syn_cost_us: Option<f64>,
    /// What went wrong, if the round ended early.
    failure: Option<String>,
}

/// Runs the web benchmark; `quick` shortens every run for development;
/// `only`: only the measures whose name contains it, or one of its
/// `|`-separated parts (the capture and the
/// SYN flood need the probe measure, "1 KB, close, 16 conn.").
pub fn run(ws: &Path, quick: bool, only: Option<&str>) -> Result<()> {
    let plan = Plan::new(quick);
    deps::ensure_packages(deps::QEMU)?;
    deps::ensure_packages(TOOLS)?;
    let out_dir = ws.join("target/bench");
    let docroot = out_dir.join("site");
    let files = write_site(&docroot)?;
    let image = out_dir.join("site.img");
    site::build(&docroot, &image)?;
    let guest = linux_guest::build(ws)?;
    let web_guest = linux_guest::with_document_root(&guest, &docroot, &out_dir.join("nginx-initramfs.cpio"))?;
    let script = out_dir.join("specweb96.lua");
    std::fs::write(&script, SPECWEB_SCRIPT)?;
    let built: Vec<Option<system::Built>> = SYSTEMS
        .iter()
        .map(|s| match s.kind {
            Kind::Sel4 { description } => itest::build(ws, description, KernelConfig::Release).map(Some),
            Kind::Linux => Ok(None),
        })
        .collect::<Result<_>>()?;

    let wanted = |m: &Measure| only.is_none_or(|o| o.split('|').any(|o| m.name.contains(o)));
    let list: Vec<Measure> = measures().into_iter().filter(wanted).collect();
    anyhow::ensure!(!list.is_empty(), "no measure's name contains {:?}", only.unwrap_or(""));
    let started = Timestamp::now()?;
    let steal_start = CpuTimes::read()?;
    let load_start = load_average();
    let mut rounds: Vec<Vec<SystemRound>> = vec![Vec::new(); SYSTEMS.len()];
    let ctx = RoundContext { files: &files, docroot: &docroot, script: &script, plan };
    for round in 1..=plan.rounds {
        for (i, system) in SYSTEMS.iter().enumerate() {
            println!("round {round}/{}: {}", plan.rounds, system.name);
            let boot = |ns: &Netns| boot(ns, system, built[i].as_ref(), &image, (&web_guest, "nginx"));
            rounds[i].push(system_round(&ctx, &list, &boot));
        }
    }
    let steal = CpuTimes::read()?.steal_percent_since(&steal_start);
    let load = format!("{} at the start, {} at the end", load_start, load_average());

    let tsv = tsv(&list, &rounds, &started);
    let markdown = markdown(&list, &rounds, (steal, &load), &plan, &started, quick)?;
    println!("\n{markdown}");
    std::fs::create_dir_all(&out_dir)?;
    for (ext, text) in [("tsv", &tsv), ("md", &markdown)] {
        let path = out_dir.join(format!("web-{}.{ext}", started.compact));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::write(out_dir.join(format!("web-latest.{ext}")), text)?;
        println!("written: {}", path.display());
    }
    println!("(also as target/bench/web-latest.tsv and web-latest.md)");
    Ok(())
}

/// Boots `system` in QEMU on the TAP device of `ns`: a seL4 system
/// (`built`) with `image` as its read-only disk, or the Linux guest
/// `linux.0` in mode `linux.1`.
pub(super) fn boot(
    ns: &Netns,
    system: &System,
    built: Option<&system::Built>,
    image: &Path,
    linux: (&linux_guest::Guest, &str),
) -> Result<Session> {
    match (&system.kind, built) {
        (Kind::Sel4 { .. }, Some(built)) => {
            let drive = crate::harness::site::drive(built, image)?;
            let drive: Vec<&str> = drive.iter().map(String::as_str).collect();
            ns.start_on_tap(qemu::command(built, system::DEFAULT_RAM_MIB, false, &drive), qemu::NIC_DEVICE)
        }
        (Kind::Linux, _) => {
            ns.start_on_tap(linux_guest::qemu_command(linux.0, linux.1, &[]), qemu::NIC_DEVICE_WITHOUT_IOMMU)
        }
        (Kind::Sel4 { .. }, None) => bail!("{} was not built", system.name),
    }
}

/// Host tools the web benchmark runs in the namespace.
#[rustfmt::skip]
const TOOLS: &[Package] = &[
    Package { name: "iproute2", probe: "ip" },
    Package { name: "procps", probe: "sysctl" },
    Package { name: "wrk", probe: "wrk" },
    Package { name: "curl", probe: "curl" },
    Package { name: "tcpdump", probe: "tcpdump" },
    Package { name: "hping3", probe: "hping3" },
];

/// What every round needs.
struct RoundContext<'a> {
    files: &'a [(String, Vec<u8>)],
    docroot: &'a Path,
    script: &'a Path,
    plan: Plan,
}

/// One boot of one system and every measure against it. A failure ends the
/// round (recorded, shown in the table) but not the benchmark.
fn system_round(ctx: &RoundContext, list: &[Measure], boot: &dyn Fn(&Netns) -> Result<Session>) -> SystemRound {
    let mut round = SystemRound::default();
    let result = (|| -> Result<()> {
        let ns = netns::for_load()?;
        let started = Instant::now();
        let mut session = boot(&ns)?;
        let booted = first_response(&ns, started, &mut session);
        let boot_s = match booted {
            Ok(d) => d.as_secs_f64(),
            Err(e) => {
                print_console_tail(&mut session);
                return Err(e);
            }
        };
        println!("  first HTTP response {boot_s:.1} s after QEMU started");
        round.boot_s = Some(boot_s);
        check_files(&ns, ctx.files, ctx.docroot)?;
        for m in list {
            let run = measured(&session, || wrk(&ns, m, ctx.script, ctx.plan.seconds));
            print_run(&m.name, &run);
            round.runs.push(run);
        }
        if let Some(probe) = probe_index(list).map(|i| &list[i]) {
            round.segments = Some(segments(&ns, probe, ctx.script, ctx.plan.capture_seconds)?);
            round.syn_cost_us = syn_cost(&ns, &session);
            round.flood = Some(flood(&ns, &session, probe, ctx.script, ctx.plan.flood_seconds)?);
        }
        // Still alive after the flood?
        if let Err(e) = get(&ns, &size_path(0), Duration::from_secs(10)) {
            println!("  after the flood: {e:#}");
        }
        print_counters(&mut session);
        drop(session);
        drop(ns);
        Ok(())
    })();
    if let Err(e) = result {
        println!("  the round failed: {e:#}");
        round.failure = Some(format!("{e:#}"));
    }
    round
}

/// The seL4 servers' counter lines (logged at most every 10 s when they
/// changed): where frames were dropped or requests waited, for the round
/// just measured. Nothing for nginx (its console has no such line).
fn print_counters(session: &mut Session) {
    session.drain(Duration::from_secs(12), Duration::from_secs(12));
    let counters = |l: &&String| l.contains("accepted=") || l.contains("no_work=") || l.contains("rx_dropped");
    if let Some(line) = session.transcript.iter().rev().find(counters) {
        println!("  counters: {line}");
    }
}

/// Runs `f`, with the CPU steal and the vCPU thread's share of a core
/// meanwhile.
fn measured(session: &Session, f: impl FnOnce() -> Result<WrkReport>) -> Run {
    let start = CpuTimes::read().ok();
    let (vcpu_start, began) = (session.vcpu_seconds(), Instant::now());
    let report = f();
    let end = CpuTimes::read().ok();
    let steal = start.as_ref().zip(end.as_ref()).map_or(f64::NAN, |(s, e)| e.steal_percent_since(s));
    let host_busy = start.as_ref().zip(end.as_ref()).map(|(s, e)| (e.busy_cores_since(s), e.cores()));
    let vcpu = vcpu_start.zip(session.vcpu_seconds()).map(|(a, b)| (b - a) / began.elapsed().as_secs_f64());
    match report {
        Ok(report) => Run { report: Some(report), steal, vcpu, host_busy },
        Err(e) => {
            println!("  wrk failed: {e:#}");
            Run { report: None, steal, vcpu, host_busy }
        }
    }
}

fn print_run(name: &str, run: &Run) {
    match &run.report {
        Some(r) => println!(
            "  {name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {}, steal {:.1} %, vCPU {} % of a core, host {} of {} cores busy",
            r.per_second,
            r.p50_ms,
            r.p99_ms,
            r.errors.describe(),
            run.steal,
            figure(run.vcpu.map(|v| v * 100.0), 0),
            figure(run.host_busy.map(|b| b.0), 2),
            run.host_busy.map_or("-".into(), |b| b.1.to_string())
        ),
        None => println!("  {name}: no figure"),
    }
}

pub(super) fn print_console_tail(session: &mut Session) {
    session.drain(Duration::from_millis(300), Duration::from_secs(2));
    let start = session.transcript.len().saturating_sub(20);
    for line in &session.transcript[start..] {
        println!("  | {line}");
    }
}

/// Polls the server with `GET /size/0.bin` until it answers 200; the host
/// time since `started`. QEMU exiting ends the wait at once.
///
/// A new try starts every [`BOOT_POLL`], each on its own connection and
/// with its own 2 s limit, while the earlier ones still wait: a SYN sent
/// before the server listens is lost, and its connection would only try
/// again a second later (TCP's initial retransmission timeout), so one try
/// after another measured that timeout, in steps of about 0.6 s, rather
/// than the boot. The figure is within [`BOOT_POLL`] of the server's first
/// possible answer.
fn first_response(ns: &Netns, started: Instant, session: &mut Session) -> Result<Duration> {
    let mut tries: Vec<std::process::Child> = Vec::new();
    let mut next = Instant::now();
    let result = loop {
        if Instant::now() >= next {
            next += BOOT_POLL;
            tries.push(get_command(ns, &size_path(0), Duration::from_secs(2)).spawn().context("running curl")?);
        }
        let mut answered = false;
        for child in &mut tries {
            if let Ok(Some(_)) = child.try_wait() {
                let mut code = String::new();
                if let Some(out) = child.stdout.as_mut() {
                    std::io::Read::read_to_string(out, &mut code)?;
                }
                answered |= code == "200";
            }
        }
        if answered {
            break Ok(started.elapsed());
        }
        if qemu_exited(session) {
            break Err(anyhow::anyhow!("QEMU exited before the server answered"));
        }
        if started.elapsed() >= BOOT_TIMEOUT {
            break Err(anyhow::anyhow!("no HTTP response within {} s", BOOT_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    for mut child in tries {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// How often [`first_response`] starts a new try.
const BOOT_POLL: Duration = Duration::from_millis(50);

/// Whether QEMU has exited (its console closed); reads what it printed.
fn qemu_exited(session: &mut Session) -> bool {
    // A line no system prints: the wait ends by timeout while QEMU runs.
    matches!(session.expect("\u{1}", Duration::from_millis(1)), Err(e) if e.to_string().contains("QEMU exited"))
}

/// One GET with curl in the namespace, on a new connection; an error unless
/// the status is 200.
fn get(ns: &Netns, path: &str, timeout: Duration) -> Result<()> {
    let out = get_command(ns, path, timeout).output().context("running curl")?;
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(code == "200", "GET {path}: {code:?}");
    Ok(())
}

/// The curl command of [`get`]: it prints the status code on stdout.
fn get_command(ns: &Netns, path: &str, timeout: Duration) -> Command {
    let secs = format!("{:.1}", timeout.as_secs_f64());
    let mut cmd = ns.command("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--connect-timeout", &secs, "-m", &secs])
        .arg(format!("http://{}{path}", netns::SERVER_IP))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    cmd
}

/// Downloads every file once and compares it with its source: both servers
/// serve the same bytes (and the node's file cache is warm after).
fn check_files(ns: &Netns, files: &[(String, Vec<u8>)], docroot: &Path) -> Result<()> {
    let dir = docroot.with_file_name("download");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut cmd = ns.command("curl");
    cmd.args(["-s", "-f", "-m", "120"]);
    for (i, (path, _)) in files.iter().enumerate() {
        cmd.arg("-o").arg(dir.join(i.to_string())).arg(format!("http://{}{path}", netns::SERVER_IP));
    }
    netns::run(&mut cmd).context("downloading every file of the site")?;
    for (i, (path, want)) in files.iter().enumerate() {
        let got = std::fs::read(dir.join(i.to_string())).unwrap_or_default();
        ensure!(&got == want, "GET {path}: {} bytes that differ from the {} of the source", got.len(), want.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("  every file ({}) served byte for byte", files.len());
    Ok(())
}

/// Attempts of a wrk run whose first connection fails, a second apart.
const WRK_ATTEMPTS: usize = 3;

/// One wrk run of `m` for `seconds`, in the namespace, after a pause that
/// lets the previous run's connections close. wrk refuses to start when
/// its first connection fails; after [`WRK_ATTEMPTS`] such refusals the
/// run counts as no request at all and one error ([`Errors::unreachable`]).
fn wrk(ns: &Netns, m: &Measure, script: &Path, seconds: u64) -> Result<WrkReport> {
    for attempt in 1..=WRK_ATTEMPTS {
        std::thread::sleep(Duration::from_secs(1));
        match wrk_once(ns, m, script, seconds)? {
            Some(report) => return Ok(report),
            None => println!("  {}: wrk could not connect (attempt {attempt} of {WRK_ATTEMPTS})", m.name),
        }
    }
    let errors = Errors { unreachable: 1, ..Errors::default() };
    Ok(WrkReport { requests: 0, per_second: 0.0, bytes_per_second: 0.0, p50_ms: f64::NAN, p99_ms: f64::NAN, errors })
}

/// One wrk run; `None` if wrk could not make its first connection.
fn wrk_once(ns: &Netns, m: &Measure, script: &Path, seconds: u64) -> Result<Option<WrkReport>> {
    let mut cmd = ns.command("wrk");
    cmd.args(["-t", "1", "-c", &m.clients.to_string(), "-d", &format!("{seconds}s"), "--timeout", "30s", "--latency"]);
    if m.close {
        cmd.args(["-H", "Connection: close"]);
    }
    if m.path.is_none() {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(format!("http://{}{}", netns::SERVER_IP, m.path.as_deref().unwrap_or("/")));
    let out = cmd.stdin(Stdio::null()).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && text.contains("unable to connect") {
        return Ok(None);
    }
    ensure!(out.status.success(), "wrk failed: {text}");
    parse_wrk(&text).map(Some)
}

/// Reads wrk's report (`--latency`): requests, rates, the 50 % and 99 %
/// latencies, and its error lines (printed only when there were errors).
fn parse_wrk(text: &str) -> Result<WrkReport> {
    let field = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix)).map(str::trim);
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .with_context(|| format!("no request count in wrk's report:\n{text}"))?;
    let per_second = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's report:\n{text}"))?;
    let bytes_per_second = field("Transfer/sec:")
        .and_then(parse_bytes)
        .with_context(|| format!("no Transfer/sec in wrk's report:\n{text}"))?;
    let latency = |percent: &str| -> Result<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(percent).map(str::trim))
            .and_then(parse_duration_ms)
            .with_context(|| format!("no {percent} latency in wrk's report:\n{text}"))
    };
    let mut errors = Errors::default();
    if let Some(socket) = field("Socket errors:") {
        // "connect 0, read 12, write 0, timeout 3"
        for part in socket.split(',') {
            let (name, n) = part.trim().split_once(' ').with_context(|| format!("wrk's errors: {socket:?}"))?;
            let n: u64 = n.trim().parse().with_context(|| format!("wrk's errors: {socket:?}"))?;
            match name {
                "connect" => errors.connect = n,
                "read" => errors.read = n,
                "write" => errors.write = n,
                "timeout" => errors.timeout = n,
                _ => bail!("unknown wrk error kind {name:?}"),
            }
        }
    }
    if let Some(status) = field("Non-2xx or 3xx responses:") {
        errors.status = status.parse().with_context(|| format!("wrk's non-2xx count: {status:?}"))?;
    }
    // Without a completed request wrk prints latencies of 0: none measured.
    let (p50_ms, p99_ms) = if requests == 0 { (f64::NAN, f64::NAN) } else { (latency("50%")?, latency("99%")?) };
    Ok(WrkReport { requests, per_second, bytes_per_second, p50_ms, p99_ms, errors })
}

/// `1.23ms`, `456.00us`, `2.00s`, `1.00m` -> milliseconds.
fn parse_duration_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(n * scale)
}

/// `1.23MB` (binary units, as wrk prints them) -> bytes.
fn parse_bytes(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "" | "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * scale)
}

/// A process started in the namespace, ended by its PID with `signal` so
/// that it prints its summary.
fn stop(child: &mut std::process::Child, signal: &str) -> Result<()> {
    Command::new("kill").args([signal, &child.id().to_string()]).status().context("running kill")?;
    Ok(())
}

/// Close-mode run `m` for `seconds` under tcpdump on the TAP device:
/// the server-to-client TCP segments.
fn segments(ns: &Netns, m: &Measure, script: &Path, seconds: u64) -> Result<Segments> {
    let file = std::env::temp_dir().join(format!("sel4-bench-{}.pcap", std::process::id()));
    let filter = format!("tcp and src host {} and src port 80", netns::SERVER_IP);
    let mut tcpdump = ns
        .command("tcpdump")
        .args(["-i", netns::TAP, "-n", "-B", "32768", "-w"])
        .arg(&file)
        .arg(&filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tcpdump")?;
    let mut stderr = std::io::BufReader::new(tcpdump.stderr.take().context("tcpdump's stderr")?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line)?;
    if !line.contains("listening on") {
        let _ = tcpdump.kill();
        let _ = tcpdump.wait();
        bail!("tcpdump did not start: {line}");
    }
    let report = wrk(ns, m, script, seconds);
    // Frames still in flight when wrk stops (the last FINs).
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut tcpdump, "-INT")?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest)?;
    tcpdump.wait()?;
    let (captured, resets) = pcap_segments(&std::fs::read(&file).context("reading the capture")?)?;
    let _ = std::fs::remove_file(&file);
    let report = report?;
    let dropped = rest
        .lines()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel").and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0);
    println!(
        "  capture ({}): {captured} server segments ({resets} resets) for {} requests ({:.2} per request), {dropped} dropped by the capture; errors {}",
        m.name,
        report.requests,
        captured as f64 / report.requests.max(1) as f64,
        report.errors.describe()
    );
    Ok(Segments { captured, resets, requests: report.requests, dropped })
}

/// Segments of a classic pcap file of Ethernet frames: (all records, those
/// that carry a TCP RST).
fn pcap_segments(bytes: &[u8]) -> Result<(u64, u64)> {
    ensure!(bytes.len() >= 24, "pcap file cut short");
    let little = match u32::from_le_bytes(bytes[..4].try_into()?) {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        magic => bail!("not a pcap file (magic {magic:#x})"),
    };
    let (mut at, mut count, mut resets) = (24, 0, 0);
    while at + 16 <= bytes.len() {
        let len: [u8; 4] = bytes[at + 8..at + 12].try_into()?;
        let len = if little { u32::from_le_bytes(len) } else { u32::from_be_bytes(len) } as usize;
        let frame = bytes.get(at + 16..at + 16 + len).unwrap_or(&[]);
        // Ethernet (14 bytes), IPv4 (IHL words), TCP flags at byte 13.
        let ip = frame.get(14..).unwrap_or(&[]);
        let flags = ip.first().and_then(|b| ip.get(usize::from(b & 0xf) * 4 + 13));
        if flags.is_some_and(|f| f & 0x04 != 0) {
            resets += 1;
        }
        at += 16 + len;
        count += 1;
    }
    Ok((count, resets))
}

/// Close-mode run `m` for `seconds` while hping3 floods the server's port
/// 80 with SYNs from [`netns::SILENT_IP`]: the run and the SYNs per second
/// sent.
fn flood(ns: &Netns, session: &Session, m: &Measure, script: &Path, seconds: u64) -> Result<(Run, f64)> {
    let mut hping = ns
        .command("hping3")
        .args([
            "-q",
            "-S",
            "-p",
            "80",
            "-a",
            netns::SILENT_IP,
            "-i",
            &format!("u{FLOOD_INTERVAL_US}"),
            netns::SERVER_IP,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting hping3")?;
    let started = Instant::now();
    // Let the flood fill whatever it fills before measuring.
    std::thread::sleep(Duration::from_secs(1));
    let before = tap_counters(ns);
    let run = measured(session, || wrk(ns, m, script, seconds));
    let after = tap_counters(ns);
    let elapsed = started.elapsed().as_secs_f64();
    stop(&mut hping, "-INT")?;
    if let (Ok(b), Ok(a)) = (before, after) {
        // Frames the TAP device had for the guest but QEMU did not take
        // (no free receive buffer in the NIC's ring): lost before any PD.
        println!(
            "  during wrk: {} frames to the node, {} dropped at the TAP (the NIC's ring full), {} frames from it",
            a.0 - b.0,
            a.1 - b.1,
            a.2 - b.2
        );
    }
    let out = hping.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let sent = transmitted(&text).with_context(|| format!("no packet count in hping3's output:\n{text}"))?;
    let rate = sent as f64 / elapsed;
    print_run(&format!("under a SYN flood of {rate:.0}/s, {}", m.name), &run);
    Ok((run, rate))
}

/// The packets hping3 says it sent ("N packets transmitted").
fn transmitted(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.split_once(" packets transmitted").and_then(|(n, _)| n.trim().parse().ok()))
}

/// SYNs a second of the slow flood that [`syn_cost`] measures: far below
/// what any of the systems absorbs, so that each is answered.
const PROFILE_SYNS_PER_SECOND: u32 = 1000;
const PROFILE_SECONDS: u64 = 3;
/// Above this share of a core while the guest is idle, QEMU's CPU time
/// says nothing about the guest's work.
const MAX_IDLE_SHARE: f64 = 0.5;

/// Host CPU microseconds QEMU spends per SYN from a silent address (the
/// receive path through every layer, and the answer's), measured as its
/// CPU time during a flood of [`PROFILE_SYNS_PER_SECOND`] less its CPU
/// time while idle for as long, over the SYNs sent. QEMU's TCG runs the
/// guest's one CPU on one host thread, so this is the guest's per-packet
/// cost in host time.
fn syn_cost(ns: &Netns, session: &Session) -> Option<f64> {
    let window = Duration::from_secs(PROFILE_SECONDS);
    let idle_start = session.cpu_seconds()?;
    std::thread::sleep(window);
    let idle = session.cpu_seconds()? - idle_start;
    let count = PROFILE_SYNS_PER_SECOND as u64 * PROFILE_SECONDS;
    let start = session.cpu_seconds()?;
    let began = Instant::now();
    let sent = ns
        .command("hping3")
        .args(["-q", "-S", "-p", "80", "-a", netns::SILENT_IP, "-c", &count.to_string()])
        .args(["-i", &format!("u{}", 1_000_000 / PROFILE_SYNS_PER_SECOND), netns::SERVER_IP])
        .output()
        .ok()?;
    let busy = session.cpu_seconds()? - start;
    // hping3 exits with 1 when nothing answered (the silent address gets
    // no SYN-ACK): the count it printed says what was sent.
    let text = String::from_utf8_lossy(&sent.stdout).into_owned() + &String::from_utf8_lossy(&sent.stderr);
    let Some(count) = transmitted(&text) else {
        println!("  the SYN cost was not measured: no packet count in hping3's output:\n{text}");
        return None;
    };
    let idle_share = idle / window.as_secs_f64();
    if idle_share > MAX_IDLE_SHARE {
        // The vCPU thread never sleeps (the guest does not halt when it has
        // nothing to do): CPU time then measures nothing.
        println!(
            "  the SYN cost was not measured: QEMU used {:.0} % of a core while the guest was idle",
            idle_share * 100.0
        );
        return None;
    }
    let idle_during = idle_share * began.elapsed().as_secs_f64();
    let cost = (busy - idle_during).max(0.0) * 1e6 / count.max(1) as f64;
    println!(
        "  a SYN costs {cost:.0} us of host CPU ({count} at {PROFILE_SYNS_PER_SECOND}/s; QEMU idle: {:.0} %)",
        idle * 100.0 / PROFILE_SECONDS as f64
    );
    Some(cost)
}

/// The TAP device's counters: frames sent to the guest, dropped on the
/// way to it, received from it.
fn tap_counters(ns: &Netns) -> Result<(u64, u64, u64)> {
    let read = |name: &str| -> Result<u64> {
        let path = format!("/sys/class/net/{}/statistics/{name}", crate::harness::netns::TAP);
        let out = ns.command("cat").arg(&path).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((read("tx_packets")?, read("tx_dropped")?, read("rx_packets")?))
}

/// Writes the document root: each of [`SIZES`] and the SPECweb96 files,
/// random bytes from fixed seeds (the same bytes every time). Returns every
/// file as (URL path, content).
fn write_site(root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<(String, usize)> = SIZES.iter().map(|&(_, n)| (size_path(n), n)).collect();
    files.extend(specweb_files());
    write_files(root, files)
}

/// Writes a document root of `files` (URL path, length), emptied first:
/// random bytes, the i-th file's from seed i (the same bytes every time).
/// Returns every file as (URL path, content).
pub(super) fn write_files(root: &Path, files: Vec<(String, usize)>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let _ = std::fs::remove_dir_all(root);
    for (i, (path, len)) in files.into_iter().enumerate() {
        let mut rng = lib_test_rng::Rng(0x5eed_0000_0000_0001 + i as u64);
        let mut bytes = vec![0; len];
        rng.fill(&mut bytes);
        let file = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().context("a file has a folder")?)?;
        std::fs::write(&file, &bytes).with_context(|| format!("writing {}", file.display()))?;
        out.push((path, bytes));
    }
    Ok(out)
}

/// When the run started, for the file names and the table.
pub(super) struct Timestamp {
    /// `2026-12-06 20:20 UTC`
    pub(super) readable: String,
    /// `20261206T2020Z`
    pub(super) compact: String,
}

impl Timestamp {
    pub(super) fn now() -> Result<Timestamp> {
        let date = |format: &str| -> Result<String> {
            Ok(netns::run(Command::new("date").args(["-u", format]))?.trim().to_owned())
        };
        Ok(Timestamp { readable: date("+%Y-%m-%d %H:%M UTC")?, compact: date("+%Y%m%dT%H%MZ")? })
    }
}

/// Every run, one line each.
fn tsv(list: &[Measure], rounds: &[Vec<SystemRound>], started: &Timestamp) -> String {
    let mut text = String::from(
        "started\tsystem\tround\tmeasure\trequests\treq_per_s\tbytes_per_s\tp50_ms\tp99_ms\terr_connect\terr_read\terr_write\terr_timeout\terr_status\terr_unreachable\tsteal_pct\tvcpu_pct\thost_busy_cores\tnote\n",
    );
    let mut line = |system: &str, round: usize, measure: &str, run: Option<&Run>, note: &str| {
        let figures = match run.and_then(|r| r.report.as_ref()) {
            Some(r) => format!(
                "{}\t{:.1}\t{:.0}\t{:.3}\t{:.3}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.requests,
                r.per_second,
                r.bytes_per_second,
                r.p50_ms,
                r.p99_ms,
                r.errors.connect,
                r.errors.read,
                r.errors.write,
                r.errors.timeout,
                r.errors.status,
                r.errors.unreachable
            ),
            None => "\t\t\t\t\t\t\t\t\t\t".into(),
        };
        let steal = run.map_or(String::new(), |r| format!("{:.1}", r.steal));
        let vcpu = run.and_then(|r| r.vcpu).map_or(String::new(), |v| format!("{:.1}", v * 100.0));
        let busy = run.and_then(|r| r.host_busy).map_or(String::new(), |b| format!("{:.2}", b.0));
        let _ = writeln!(
            text,
            "{}\t{system}\t{round}\t{measure}\t{figures}\t{steal}\t{vcpu}\t{busy}\t{note}",
            started.readable
        );
    };
    for (s, system) in SYSTEMS.iter().enumerate() {
        for (r, round) in rounds[s].iter().enumerate() {
            let r = r + 1;
            line(
                system.name,
                r,
                "boot to first HTTP response",
                None,
                &round.boot_s.map_or(String::new(), |b| format!("{b:.2} s")),
            );
            for (m, run) in list.iter().zip(&round.runs) {
                line(system.name, r, &m.name, Some(run), "");
            }
            if let Some(g) = round.segments {
                let note = format!(
                    "{} server segments ({} resets) / {} requests; {} dropped by tcpdump",
                    g.captured, g.resets, g.requests, g.dropped
                );
                line(system.name, r, "segment capture", None, &note);
            }
            if let Some((run, rate)) = &round.flood {
                line(system.name, r, "under SYN flood", Some(run), &format!("{rate:.0} SYN/s"));
            }
            if let Some(failure) = &round.failure {
                line(system.name, r, "failure", None, &failure.replace(['\t', '\n'], " "));
            }
        }
    }
    text
}

/// The median of the rounds' figures (rounds without one left out).
pub(super) fn median_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| median(v.into_iter()))
}

pub(super) fn figure(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v >= 1000.0 && decimals == 0 => {
            let s = format!("{v:.0}");
            let (head, tail) = s.split_at(s.len() - 3);
            format!("{head},{tail}")
        }
        Some(v) => format!("{v:.decimals$}"),
        None => "-".into(),
    }
}

pub(super) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The Markdown table: a row per measure, for each system the median
/// requests/s, p50/p99 latency and every error of every round, and each
/// system's ratio to the reference.
fn markdown(
    list: &[Measure],
    rounds: &[Vec<SystemRound>],
    (steal, load): (f64, &str),
    plan: &Plan,
    started: &Timestamp,
    quick: bool,
) -> Result<String> {
    let mut t = String::new();
    let command = if quick { "cargo xtask bench web --quick" } else { "cargo xtask bench web" };
    let steals: Vec<f64> =
        rounds.iter().flatten().flat_map(|r| r.runs.iter().map(|run| run.steal)).filter(|s| s.is_finite()).collect();
    let (lo, hi) = steals.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    writeln!(t, "Web servers, {} ({}); `{command}`", started.readable, machine()?)?;
    writeln!(
        t,
        "{} rounds interleaved, medians; wrk -t1 for {} s per figure; CPU steal {steal:.1} % over the run ({lo:.0}-{hi:.0} % per figure); load average {load}\n",
        plan.rounds, plan.seconds
    )?;
    let reference = SYSTEMS[REFERENCE].name;
    let mut head = String::from("| measure |");
    let mut rule = String::from("|---|");
    for (s, system) in SYSTEMS.iter().enumerate() {
        head += &format!(" {} req/s | p50 / p99 ms | errors |", system.name);
        rule += "---:|---:|---:|";
        if s != REFERENCE {
            head += &format!(" / {reference} |");
            rule += "---:|";
        }
    }
    head += " steal % |";
    rule += "---:|";
    writeln!(t, "{head}\n{rule}")?;
    let per_second =
        |s: usize, m: usize| median_of(rounds[s].iter().map(|r| r.runs.get(m)?.report.as_ref().map(|x| x.per_second)));
    for (m, measure) in list.iter().enumerate() {
        let mut row = format!("| {} |", measure.name);
        for (s, system_rounds) in rounds.iter().enumerate() {
            let reports: Vec<&WrkReport> =
                system_rounds.iter().filter_map(|r| r.runs.get(m)?.report.as_ref()).collect();
            let p50 = median_of(reports.iter().map(|r| Some(r.p50_ms)));
            let p99 = median_of(reports.iter().map(|r| Some(r.p99_ms)));
            let mut errors = Errors::default();
            reports.iter().for_each(|r| errors.add(&r.errors));
            let missing = system_rounds.len() - reports.len();
            let errors = if missing > 0 {
                format!("{} + {missing} round(s) without figures", errors.describe())
            } else {
                errors.describe()
            };
            row += &format!(" {} | {} / {} | {errors} |", figure(per_second(s, m), 0), figure(p50, 2), figure(p99, 1));
            if s != REFERENCE {
                row += &format!(" {} |", ratio(per_second(s, m), per_second(REFERENCE, m)));
            }
        }
        let steal = median_of(rounds.iter().flatten().map(|r| r.runs.get(m).map(|run| run.steal)));
        row += &format!(" {} |", figure(steal, 0));
        writeln!(t, "{row}")?;
    }

    // The other measures: one value per system.
    writeln!(t, "\n| measure | {} |", SYSTEMS.iter().map(|s| s.name).collect::<Vec<_>>().join(" | "))?;
    writeln!(t, "|---|{}", "---:|".repeat(SYSTEMS.len()))?;
    let probe_name = probe_index(list).map_or("not measured: --only", |i| list[i].name.as_str());
    let boot: Vec<Option<f64>> = (0..SYSTEMS.len()).map(|s| median_of(rounds[s].iter().map(|r| r.boot_s))).collect();
    writeln!(t, "| boot: QEMU start to first HTTP 200 (host s) | {} |", row_of(&boot, |v| figure(Some(v), 1)))?;
    let segments: Vec<String> = rounds
        .iter()
        .map(|rs| {
            let all = median_of(rs.iter().map(|r| r.segments.map(|g| g.per_request())));
            let resets = median_of(rs.iter().map(|r| r.segments.map(|g| g.resets_per_request())));
            format!("{} (resets {})", figure(all, 2), figure(resets, 2))
        })
        .collect();
    let dropped: u64 = rounds.iter().flatten().filter_map(|r| r.segments.map(|g| g.dropped)).sum();
    writeln!(
        t,
        "| server TCP segments per completed request ({}; tcpdump, {} s) | {} |",
        probe_name,
        plan.capture_seconds,
        segments.join(" | ")
    )?;
    let probe_index = probe_index(list);
    let flood: Vec<String> = (0..SYSTEMS.len())
        .map(|s| {
            let under = median_of(rounds[s].iter().map(|r| r.flood.as_ref()?.0.report.as_ref().map(|x| x.per_second)));
            let rate = median_of(rounds[s].iter().map(|r| r.flood.as_ref().map(|f| f.1)));
            let mut errors = Errors::default();
            rounds[s].iter().filter_map(|r| r.flood.as_ref()?.0.report.as_ref()).for_each(|r| errors.add(&r.errors));
            // The vCPU thread's share of a core with and without the flood:
            // below a whole core, the guest had time to spare.
            let vcpu_under = median_of(rounds[s].iter().map(|r| r.flood.as_ref()?.0.vcpu));
            let vcpu_base = probe_index.and_then(|m| median_of(rounds[s].iter().map(|r| r.runs.get(m)?.vcpu)));
            let host_under = median_of(rounds[s].iter().map(|r| r.flood.as_ref()?.0.host_busy.map(|b| b.0)));
            let host_base =
                probe_index.and_then(|m| median_of(rounds[s].iter().map(|r| r.runs.get(m)?.host_busy.map(|b| b.0))));
            let vcpu = match (vcpu_under, vcpu_base, host_under, host_base) {
                (Some(a), Some(b), Some(c), Some(d)) => {
                    format!("; vCPU {:.0} % / {:.0} % of a core, host {c:.1} / {d:.1} cores busy", a * 100.0, b * 100.0)
                }
                _ => String::new(),
            };
            match (under, probe_index.and_then(|m| per_second(s, m))) {
                (Some(u), Some(base)) if base > 0.0 => format!(
                    "{:.2} ({} of {} req/s; {} SYN/s{vcpu}; errors {})",
                    u / base,
                    figure(Some(u), 0),
                    figure(Some(base), 0),
                    figure(rate, 0),
                    errors.describe()
                ),
                _ => "-".into(),
            }
        })
        .collect();
    writeln!(
        t,
        "| SYN flood (hping3 from a silent address): legitimate req/s ({}) during / without | {} |",
        probe_name,
        flood.join(" | ")
    )?;
    let costs: Vec<Option<f64>> =
        (0..SYSTEMS.len()).map(|s| median_of(rounds[s].iter().map(|r| r.syn_cost_us))).collect();
    writeln!(
        t,
        "| host CPU per SYN from a silent address ({PROFILE_SYNS_PER_SECOND}/s for {PROFILE_SECONDS} s, QEMU's time less its idle time), us | {} |",
        row_of(&costs, |v| figure(Some(v), 0))
    )?;
    let failures: Vec<String> = SYSTEMS
        .iter()
        .zip(rounds)
        .flat_map(|(system, rs)| {
            rs.iter()
                .enumerate()
                .filter_map(move |(i, r)| Some(format!("- {} round {}: {}", system.name, i + 1, r.failure.as_ref()?)))
        })
        .collect();
    if dropped > 0 {
        writeln!(
            t,
            "\ntcpdump dropped {dropped} segments over all captures: the segment counts are low by that much."
        )?;
    }
    if !failures.is_empty() {
        writeln!(t, "\nRounds that ended early (their later figures are missing):\n{}", failures.join("\n"))?;
    }
    Ok(t)
}

fn row_of(values: &[Option<f64>], show: impl Fn(f64) -> String) -> String {
    values.iter().map(|v| v.map_or("-".into(), &show)).collect::<Vec<_>>().join(" | ")
}

/// The host's 1-minute load average (other work on the machine slows
/// QEMU as steal does).
pub(super) fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_owned()
}

/// The host, in a few words: CPU model, cores, kernel.
pub(super) fn machine() -> Result<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = netns::run(Command::new("uname").arg("-r")).map(|k| k.trim().to_owned()).unwrap_or_default();
    Ok(format!("{model}, {cores} cores, Linux {kernel}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://10.0.2.15/size/1024.bin
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.71ms    2.14ms  40.16ms   89.00%
    Req/Sec     1.37k    98.41     1.52k    77.00%
  Latency Distribution
     50%   11.40ms
     75%   12.11ms
     90%   13.52ms
     99%    1.02s
  13652 requests in 10.00s, 16.49MB read
  Socket errors: connect 0, read 12, write 3, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   1364.91
Transfer/sec:      1.65MB
";

    #[test]
    fn wrk_reports_are_read_with_every_error() {
        let r = parse_wrk(REPORT).unwrap();
        assert_eq!(r.requests, 13652);
        assert!((r.per_second - 1364.91).abs() < 1e-9);
        assert!((r.bytes_per_second - 1.65 * 1024.0 * 1024.0).abs() < 1.0);
        assert!((r.p50_ms - 11.40).abs() < 1e-9);
        assert!((r.p99_ms - 1020.0).abs() < 1e-9);
        assert_eq!(r.errors, Errors { connect: 0, read: 12, write: 3, timeout: 1, status: 5, unreachable: 0 });
        assert_eq!(r.errors.describe(), "21 (read 12, write 3, timeout 1, status 5)");
    }

    #[test]
    fn a_report_without_error_lines_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse_wrk(&clean).unwrap();
        assert_eq!(r.errors.total(), 0);
        assert_eq!(r.errors.describe(), "0");
        assert!(parse_wrk("garbage").is_err());
        let refused = Errors { unreachable: 1, ..Errors::default() };
        assert_eq!(refused.describe(), "1 (unreachable 1)");
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration_ms("456.00us"), Some(0.456));
        assert_eq!(parse_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_duration_ms("1.00m"), Some(60000.0));
        assert_eq!(parse_duration_ms("12"), None);
    }

    #[test]
    fn specweb_files_span_the_four_classes() {
        let files = specweb_files();
        assert_eq!(files.len(), 36);
        assert_eq!(files[0], ("/specweb/class0_1.bin".to_owned(), 102));
        assert_eq!(files[8].1, 921);
        assert_eq!(files[9].1, 1024);
        assert_eq!(files[35], ("/specweb/class3_9.bin".to_owned(), 921_600));
        // The script names the same files.
        assert!(SPECWEB_SCRIPT.contains("\"/specweb/class%d_%d.bin\""));
    }

    #[test]
    fn the_probe_is_a_close_mode_measure() {
        let list = measures();
        let probe = &list[probe_index(&list).expect("the full list has the probe")];
        assert!(probe.close && probe.clients == PROBE_CLIENTS, "{probe:?}");
        assert_eq!(list.len(), SIZES.len() * 2 * CLIENTS.len() + CLIENTS.len());
    }

    #[test]
    fn pcap_segments_are_counted() {
        let mut pcap = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        pcap.resize(24, 0);
        for (len, flags) in [(60u32, 0x12u8), (1514, 0x10), (60, 0x14)] {
            let mut header = vec![0; 16];
            header[8..12].copy_from_slice(&len.to_le_bytes());
            pcap.extend(header);
            let mut frame = vec![0; len as usize];
            frame[14] = 0x45; // IPv4, 20-byte header
            frame[14 + 20 + 13] = flags;
            pcap.extend(frame);
        }
        assert_eq!(pcap_segments(&pcap).unwrap(), (3, 1));
        assert!(pcap_segments(b"nope").is_err());
    }
}
