//! `cargo xtask bench ftp`: this system's FTP server (the `ftpd` PD) beside
//! Linux with vsftpd, on the same emulated machine, serving the same
//! bytes, measured the same way in the same run. Built like
//! [`super::web`], whose helpers it uses:
//!
//! - Systems: [`SYSTEMS`]; each is booted in QEMU on a TAP device in a
//!   fresh network namespace ([`super::netns`]) once per round, and both
//!   measures of the round run against that boot. The rounds go A B A B
//!   ...; each figure is the median of its rounds, each system's ratio is
//!   to the reference (vsftpd).
//! - The web node (`microkit.system`, release kernel configuration) serves
//!   the Cheetah image of `target/bench/ftp-site/`, a folder holding one
//!   file of [`FILE_BYTES`] random bytes (fixed seed) at [`file_path`]; it
//!   is ready when its console prints an `[ftpd] serving` line. Until the
//!   node has an ftpd, its rounds end with "the node does not serve FTP: no
//!   [ftpd] serving line", [`FTPD_GRACE`] after httpd's serving line, and
//!   the table shows them without figures.
//! - Linux: the reference guest's FTP variant
//!   ([`linux_guest::build_with_ftp`]) in `mode=nginx-vsftpd`, with the
//!   same folder as its `/www`: vsftpd 3.0.3 from Debian 12, anonymous,
//!   read-only, passive ports 50000-50031, `use_sendfile=YES` (the
//!   default), one process per session, no per-session namespaces, no
//!   transfer log (`xtask/linux-guest/vsftpd.conf`); ready at its console's
//!   `VSFTPD READY`.
//! - Before measuring, the file is downloaded once by FTP and compared byte
//!   for byte with its source (this also warms the node's file cache).
//! - Measures ([`PARALLEL`]): one download at a time, and 8 downloads at
//!   once, each by its own curl (`curl -s -o /dev/null
//!   ftp://10.0.2.15/...`: anonymous login, EPSV, RETR, QUIT; a new
//!   control and data connection per download), in the namespace. A
//!   measure repeats such batches for [`Plan::seconds`]; its figure is the
//!   bytes of the complete downloads over the host wall time of the
//!   batches (MB/s, 10^6 bytes; process start, login and passive setup
//!   included, the same for both systems). Every failed download is an
//!   error in the table, by curl's exit code: connect (7), timeout (28),
//!   read (18, 56, or fewer bytes than the file), write (55), status (any
//!   other: the server refused a command).
//! - CPU steal (from /proc/stat) is recorded for every measure.
//!
//! Results: `target/bench/ftp-<UTC time>.tsv` (every measure of every
//! round) and `.md` (the table), copied to `target/bench/ftp-latest.tsv`
//! and `.md`.

use super::netns::{self, Netns};
use super::web::{self, Errors, Kind, System, Timestamp};
use super::CpuTimes;
use crate::harness::deps::{self, Package};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::Session;
use crate::harness::{site, system};
use crate::itest;
use crate::linux_guest::{self, measure::BOOT_TIMEOUT};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every system measured, in table order; ratios are to [`REFERENCE`].
pub const SYSTEMS: &[System] = &[
    System { name: "seL4 ftpd (Cheetah TCP)", kind: Kind::Sel4 { description: "microkit.system" } },
    System { name: "Linux 6.1 vsftpd", kind: Kind::Linux },
];

/// The system every other is compared with (its index in [`SYSTEMS`]).
const REFERENCE: usize = 1;

/// The reference guest's mode: nginx as in the web benchmark, and vsftpd.
const LINUX_MODE: &str = "nginx-vsftpd";
/// The guest's line once both servers listen (`xtask/linux-guest/init`).
const LINUX_READY: &str = "VSFTPD READY";
/// The line the node's FTP server prints once it serves.
const FTPD_SERVING: &str = "[ftpd] serving";
/// The node's web server's line: the node has booted.
const HTTPD_SERVING: &str = "[httpd] serving";
/// How long after httpd's serving line ftpd's may come.
const FTPD_GRACE: Duration = Duration::from_secs(15);

/// The file downloaded: 10 MB (MiB, as the web benchmark's "1 MB").
const FILE_BYTES: usize = 10 * 1024 * 1024;

/// Its path on both servers.
fn file_path() -> String {
    web::size_path(FILE_BYTES)
}

/// Downloads at once, per measure.
const PARALLEL: &[usize] = &[1, 8];

/// A download's limit: far above what one takes (well under 10 s), so that
/// a stalled transfer ends as an error rather than a hang.
const DOWNLOAD_TIMEOUT_S: u64 = 120;

/// How long and how often: the default, or `--quick` for development.
#[derive(Clone, Copy, Debug)]
struct Plan {
    rounds: usize,
    /// Each measure repeats its batch of downloads until this much time
    /// has passed (at least one batch).
    seconds: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan { rounds: 3, seconds: 2 }
        } else {
            Plan { rounds: 3, seconds: 10 }
        }
    }
}

/// One measure of one round: its figure (0 if every download failed), its
/// errors, and the CPU steal meanwhile (percent).
#[derive(Clone, Debug)]
struct Run {
    mb_per_s: Option<f64>,
    downloads: u64,
    errors: Errors,
    steal: f64,
}

/// One system's figures from one boot.
#[derive(Clone, Debug, Default)]
struct SystemRound {
    /// Host seconds from starting QEMU to the ready line.
    ready_s: Option<f64>,
    /// One per entry of [`PARALLEL`].
    runs: Vec<Run>,
    /// What went wrong, if the round ended early.
    failure: Option<String>,
}

/// Host tools the FTP benchmark runs in the namespace.
#[rustfmt::skip]
const TOOLS: &[Package] = &[
    Package { name: "iproute2", probe: "ip" },
    Package { name: "procps", probe: "sysctl" },
    Package { name: "curl", probe: "curl" },
];

/// Runs the FTP benchmark; `quick` shortens every measure for development.
pub fn run(ws: &Path, quick: bool) -> Result<()> {
    let plan = Plan::new(quick);
    deps::ensure_packages(deps::QEMU)?;
    deps::ensure_packages(TOOLS)?;
    let out_dir = ws.join("target/bench");
    let docroot = out_dir.join("ftp-site");
    let files = web::write_files(&docroot, vec![(file_path(), FILE_BYTES)])?;
    let content = &files[0].1;
    let image = out_dir.join("ftp-site.img");
    site::build(&docroot, &image)?;
    let guest = linux_guest::build_with_ftp(ws)?;
    let ftp_guest = linux_guest::with_document_root(&guest, &docroot, &out_dir.join("vsftpd-initramfs.cpio"))?;
    let built: Vec<Option<system::Built>> = SYSTEMS
        .iter()
        .map(|s| match s.kind {
            Kind::Sel4 { description } => itest::build(ws, description, KernelConfig::Release).map(Some),
            Kind::Linux => Ok(None),
        })
        .collect::<Result<_>>()?;

    let started = Timestamp::now()?;
    let steal_start = CpuTimes::read()?;
    let load_start = web::load_average();
    let mut rounds: Vec<Vec<SystemRound>> = vec![Vec::new(); SYSTEMS.len()];
    for round in 1..=plan.rounds {
        for (i, system) in SYSTEMS.iter().enumerate() {
            println!("round {round}/{}: {}", plan.rounds, system.name);
            let boot = |ns: &Netns| web::boot(ns, system, built[i].as_ref(), &image, (&ftp_guest, LINUX_MODE));
            rounds[i].push(system_round(system, &boot, content, plan));
        }
    }
    let steal = CpuTimes::read()?.steal_percent_since(&steal_start);
    let load = format!("{load_start} at the start, {} at the end", web::load_average());

    let tsv = tsv(&rounds, &started);
    let markdown = markdown(&rounds, (steal, &load), &plan, &started, quick)?;
    println!("\n{markdown}");
    for (ext, text) in [("tsv", &tsv), ("md", &markdown)] {
        let path = out_dir.join(format!("ftp-{}.{ext}", started.compact));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::write(out_dir.join(format!("ftp-latest.{ext}")), text)?;
        println!("written: {}", path.display());
    }
    println!("(also as target/bench/ftp-latest.tsv and ftp-latest.md)");
    Ok(())
}

/// One boot of one system and both measures against it. A failure ends
/// the round (recorded, shown in the table) but not the benchmark.
fn system_round(system: &System, boot: &dyn Fn(&Netns) -> Result<Session>, content: &[u8], plan: Plan) -> SystemRound {
    let mut round = SystemRound::default();
    let result = (|| -> Result<()> {
        let ns = netns::for_load()?;
        let mut session = boot(&ns)?;
        let ready = match &system.kind {
            Kind::Sel4 { .. } => ftpd_serving(&mut session),
            Kind::Linux => session.expect(LINUX_READY, BOOT_TIMEOUT).map(|(_, at)| at),
        };
        let ready = match ready {
            Ok(at) => at,
            Err(e) => {
                web::print_console_tail(&mut session);
                return Err(e);
            }
        };
        println!("  ready {:.1} s after QEMU started", ready.as_secs_f64());
        round.ready_s = Some(ready.as_secs_f64());
        check_file(&ns, content)?;
        for &parallel in PARALLEL {
            let run = measure(&ns, parallel, content.len(), plan.seconds);
            println!(
                "  {}: {} MB/s, {} downloads, errors {}, steal {:.1} %",
                measure_name(parallel),
                web::figure(run.mb_per_s, 1),
                run.downloads,
                run.errors.describe(),
                run.steal
            );
            round.runs.push(run);
        }
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

/// Waits for the node's `[ftpd] serving` line: the host time since QEMU
/// started. Fails at once if QEMU exits, and [`FTPD_GRACE`] after httpd's
/// serving line if ftpd's has not come (a node without ftpd boots fine).
fn ftpd_serving(session: &mut Session) -> Result<Duration> {
    let mut deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match session.expect(" serving", left) {
            Ok((line, at)) if line.contains(FTPD_SERVING) => return Ok(at),
            Ok((line, _)) if line.contains(HTTPD_SERVING) => deadline = deadline.min(Instant::now() + FTPD_GRACE),
            Ok(_) => {}
            Err(e) if e.to_string().contains("QEMU exited") => {
                bail!("the node does not serve FTP: QEMU exited before an {FTPD_SERVING} line")
            }
            Err(_) => {
                let httpd = session.position(HTTPD_SERVING).is_some();
                let waited = if httpd {
                    format!("{} s after httpd's", FTPD_GRACE.as_secs())
                } else {
                    format!("{} s after QEMU started, nor an {HTTPD_SERVING} line", BOOT_TIMEOUT.as_secs())
                };
                bail!("the node does not serve FTP: no {FTPD_SERVING} line ({waited})")
            }
        }
    }
}

/// The URL of the benchmark's file.
fn url() -> String {
    format!("ftp://{}{}", netns::SERVER_IP, file_path())
}

/// Downloads the file once and compares it with its source.
fn check_file(ns: &Netns, content: &[u8]) -> Result<()> {
    let file = std::env::temp_dir().join(format!("sel4-bench-ftp-{}.bin", std::process::id()));
    let result = (|| -> Result<()> {
        netns::run(
            ns.command("curl")
                .args(["-s", "-S", "--connect-timeout", "10", "-m", &DOWNLOAD_TIMEOUT_S.to_string(), "-o"])
                .arg(&file)
                .arg(url()),
        )
        .context("downloading the file by FTP")?;
        let got = std::fs::read(&file).unwrap_or_default();
        anyhow::ensure!(
            got == content,
            "RETR {}: {} bytes that differ from the {} of the source",
            file_path(),
            got.len(),
            content.len()
        );
        Ok(())
    })();
    let _ = std::fs::remove_file(&file);
    result?;
    println!("  {} ({} bytes) served byte for byte", file_path(), content.len());
    Ok(())
}

fn measure_name(parallel: usize) -> String {
    match parallel {
        1 => "10 MB file, 1 download".into(),
        n => format!("10 MB file, {n} parallel downloads"),
    }
}

/// Batches of `parallel` downloads for at least `seconds` (after a pause
/// that lets the previous connections close): MB/s over the batches'
/// wall time, the errors, the CPU steal.
fn measure(ns: &Netns, parallel: usize, bytes: usize, seconds: u64) -> Run {
    std::thread::sleep(Duration::from_secs(1));
    let steal_start = CpuTimes::read().ok();
    let (mut received, mut downloads, mut errors) = (0u64, 0u64, Errors::default());
    let start = Instant::now();
    let mut batches = 0;
    while batches == 0 || start.elapsed() < Duration::from_secs(seconds) {
        batches += 1;
        let children: Vec<_> = (0..parallel).map(|_| download_command(ns).spawn()).collect();
        for child in children {
            downloads += 1;
            match child.and_then(|c| c.wait_with_output()) {
                Ok(out) => {
                    let size: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
                    match (out.status.code(), size == bytes as u64) {
                        (Some(0), true) => received += size,
                        (code, _) => count_error(&mut errors, code, &out.stderr),
                    }
                }
                Err(e) => {
                    println!("  curl did not run: {e}");
                    count_error(&mut errors, None, &[]);
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let steal = steal_start.and_then(|s| CpuTimes::read().ok().map(|e| e.steal_percent_since(&s))).unwrap_or(f64::NAN);
    Run { mb_per_s: Some(received as f64 / elapsed / 1e6), downloads, errors, steal }
}

/// One download of the file to nowhere; curl prints the bytes received.
fn download_command(ns: &Netns) -> Command {
    let mut cmd = ns.command("curl");
    cmd.args(["-s", "-S", "-o", "/dev/null", "-w", "%{size_download}", "--connect-timeout", "10"])
        .args(["-m", &DOWNLOAD_TIMEOUT_S.to_string()])
        .arg(url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Counts a failed download by curl's exit code (`Some(0)`: it ended
/// early without an error of its own, fewer bytes than the file).
fn count_error(errors: &mut Errors, code: Option<i32>, stderr: &[u8]) {
    match code {
        Some(7) => errors.connect += 1,
        Some(28) => errors.timeout += 1,
        Some(0 | 18 | 56) => errors.read += 1,
        Some(55) => errors.write += 1,
        _ => errors.status += 1,
    }
    // The first few say why.
    if errors.total() <= 3 {
        println!("  a download failed (curl exit {code:?}): {}", String::from_utf8_lossy(stderr).trim());
    }
}

/// Every measure of every round, one line each.
fn tsv(rounds: &[Vec<SystemRound>], started: &Timestamp) -> String {
    let mut text = String::from(
        "started\tsystem\tround\tmeasure\tmb_per_s\tdownloads\terr_connect\terr_read\terr_write\terr_timeout\terr_status\tsteal_pct\tnote\n",
    );
    for (system, system_rounds) in SYSTEMS.iter().zip(rounds) {
        for (r, round) in system_rounds.iter().enumerate() {
            let mut line = |measure: &str, figures: String, note: &str| {
                let _ =
                    writeln!(text, "{}\t{}\t{}\t{measure}\t{figures}\t{note}", started.readable, system.name, r + 1);
            };
            let ready = round.ready_s.map_or(String::new(), |s| format!("{s:.2} s"));
            line("boot to ready line", "\t".repeat(7), &ready);
            for (parallel, run) in PARALLEL.iter().zip(&round.runs) {
                let e = &run.errors;
                let figures = format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}",
                    run.mb_per_s.map_or(String::new(), |v| format!("{v:.2}")),
                    run.downloads,
                    e.connect,
                    e.read,
                    e.write,
                    e.timeout,
                    e.status,
                    run.steal
                );
                line(&measure_name(*parallel), figures, "");
            }
            if let Some(failure) = &round.failure {
                line("failure", "\t".repeat(7), &failure.replace(['\t', '\n'], " "));
            }
        }
    }
    text
}

/// The Markdown table: a row per measure, for each system the median MB/s
/// and every error of every round, each system's ratio to the reference,
/// and the median steal; then the boot, and the rounds that failed.
fn markdown(
    rounds: &[Vec<SystemRound>],
    (steal, load): (f64, &str),
    plan: &Plan,
    started: &Timestamp,
    quick: bool,
) -> Result<String> {
    let mut t = String::new();
    let command = if quick { "cargo xtask bench ftp --quick" } else { "cargo xtask bench ftp" };
    writeln!(t, "FTP servers, {} ({}); `{command}`", started.readable, web::machine()?)?;
    writeln!(
        t,
        "{} rounds interleaved, medians; curl downloads of a {} byte file for {} s per figure; CPU steal {steal:.1} % over the run; load average {load}\n",
        plan.rounds, FILE_BYTES, plan.seconds
    )?;
    let reference = SYSTEMS[REFERENCE].name;
    let mut head = String::from("| measure |");
    let mut rule = String::from("|---|");
    for (s, system) in SYSTEMS.iter().enumerate() {
        head += &format!(" {} MB/s | errors |", system.name);
        rule += "---:|---:|";
        if s != REFERENCE {
            head += &format!(" / {reference} |");
            rule += "---:|";
        }
    }
    writeln!(t, "{head} steal % |\n{rule}---:|")?;
    let mb_per_s = |s: usize, m: usize| web::median_of(rounds[s].iter().map(|r| r.runs.get(m)?.mb_per_s));
    for (m, &parallel) in PARALLEL.iter().enumerate() {
        let mut row = format!("| {} |", measure_name(parallel));
        for (s, system_rounds) in rounds.iter().enumerate() {
            let runs: Vec<&Run> = system_rounds.iter().filter_map(|r| r.runs.get(m)).collect();
            let mut errors = Errors::default();
            runs.iter().for_each(|r| errors.add(&r.errors));
            let missing = system_rounds.len() - runs.len();
            let errors = if missing > 0 {
                format!("{} + {missing} round(s) without figures", errors.describe())
            } else {
                errors.describe()
            };
            row += &format!(" {} | {errors} |", web::figure(mb_per_s(s, m), 1));
            if s != REFERENCE {
                row += &format!(" {} |", web::ratio(mb_per_s(s, m), mb_per_s(REFERENCE, m)));
            }
        }
        let steal = web::median_of(rounds.iter().flatten().map(|r| r.runs.get(m).map(|run| run.steal)));
        writeln!(t, "{row} {} |", web::figure(steal, 0))?;
    }
    let ready: Vec<String> =
        rounds.iter().map(|rs| web::figure(web::median_of(rs.iter().map(|r| r.ready_s)), 1)).collect();
    writeln!(t, "\nboot, QEMU start to the ready line (host s): {}", {
        let parts: Vec<String> = SYSTEMS.iter().zip(&ready).map(|(s, r)| format!("{} {r}", s.name)).collect();
        parts.join(", ")
    })?;
    let failures: Vec<String> = SYSTEMS
        .iter()
        .zip(rounds)
        .flat_map(|(system, rs)| {
            rs.iter()
                .enumerate()
                .filter_map(move |(i, r)| Some(format!("- {} round {}: {}", system.name, i + 1, r.failure.as_ref()?)))
        })
        .collect();
    if !failures.is_empty() {
        writeln!(t, "\nRounds that ended early (their later figures are missing):\n{}", failures.join("\n"))?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_exit_codes_are_counted_by_kind() {
        let mut errors = Errors::default();
        for code in [Some(7), Some(28), Some(56), Some(0), Some(55), Some(78), None] {
            count_error(&mut errors, code, b"");
        }
        assert_eq!(errors, Errors { connect: 1, timeout: 1, read: 2, write: 1, status: 2, unreachable: 0 });
    }

    #[test]
    fn the_file_is_10_mb_at_a_size_path() {
        assert_eq!(file_path(), "/size/10485760.bin");
        assert_eq!(url(), "ftp://10.0.2.15/size/10485760.bin");
        assert_eq!(measure_name(8), "10 MB file, 8 parallel downloads");
    }
}
