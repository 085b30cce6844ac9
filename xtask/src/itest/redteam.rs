//! The red team: a compromised web server played on purpose by
//! `pds/test/redteam`, judged from outside.
//!
//! `tests/systems/redteam.system` is the web node of `microkit.system`
//! (release kernel, serial console, httpd serving `images/site`) with the
//! PD `redteam` beside httpd, holding httpd's kinds of capabilities and
//! regions, and one `rt-<attempt>` PD per attempt that only a fault can
//! refuse. The test boots it in a network namespace on a TAP device, as
//! the node tests do, and judges every attempt from outside:
//!
//! - attempts refused with an answer (a refused frame, claim or call): the
//!   red team's own line (`[redteam] <attempt>: <observed>: refused`), and
//!   the demultiplexer's counters by reason in its Stats report;
//! - attempts refused by a fault: the monitor's report of the `rt-*` PD,
//!   with the kind of fault each must take (a cap fault for a receive
//!   without Read, a VM fault for a write to a read-only or unmapped page,
//!   a user exception for an `out` instruction without the port, an
//!   unknown syscall for the debug calls, one report for a PD's own fault
//!   messages);
//! - the log floods: the demultiplexer's summary of suppressed lines, the
//!   monitor's reports of a PD's own fault messages (one: the monitor
//!   stops the PD), and how many of the red team's own flood lines reached
//!   the console;
//! - meanwhile the node serves: `curl` gets `/` before, during a second
//!   round of attacks (triggered by a connection to the red team's port
//!   81) and after, byte for byte; no other PD faults.
//!
//! `tests/systems/redteam-blk.system` gives the red team httpd's network
//! capabilities and the block queues the file cache holds (the block
//! driver serves one client) for the disk attempts, judged by the driver's
//! answers and its refusal log.
//!
//! Both print a table of attempts and outcomes.

use super::node::{Netns, NODE_IP, TOOLS};
use super::web::CURL;
use super::{boot_with_and_check, build, Test, LINE_TIMEOUT};
use crate::harness::deps;
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::{self, Session};
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        ("redteam: a compromised httpd's attempts from inside (receive on its endpoints, write read-only regions, I/O ports, forged frames, claims on httpd's traffic, the filter quota, arpd and mux calls, in-place ranges outside send_from, the debug calls, log floods) are each refused while httpd serves the site before, during and after", beside_httpd),
        ("redteam: with the disk queues the file cache holds, its disk requests outside the window, outside its data region, of an unknown operation and writing the read-only disk are refused by the block driver", with_the_disk),
    ]
}

const SYSTEM: &str = "tests/systems/redteam.system";
const BLK_SYSTEM: &str = "tests/systems/redteam-blk.system";

/// The red team's attempts that are refused with an answer, in the order
/// it makes them, each logged once per round as `[redteam] NAME: ...`.
const ANSWERED: &[&str] = &[
    "claim-outside-grant",
    "claim-httpd-port",
    "claim-httpd-port-narrower",
    "copy-httpd-traffic",
    "remove-httpd-filter",
    "exhaust-filter-table",
    "arpd-resolve-own-address",
    "arpd-resolve-broadcast",
    "arpd-resolve-off-link",
    "arpd-unknown-call",
    "mux-unknown-call",
    "io-port-invoke-0",
    "io-port-invoke-1",
    "forged-source-mac",
    "forged-source-ip",
    "forged-source-port",
    "forged-arp-reply",
    "in-place-past-end",
    "in-place-far-offset",
    "flood-mux-log",
];

/// The attempts a fault refuses: the `rt-*` PD, the kind of fault the
/// monitor must report, and what the PD tries.
const FAULTING: &[(&str, &str, &str)] = &[
    ("rt-recv-fault-ep", "cap fault", "receive on its fault endpoint (the monitor's: other PDs' faults)"),
    ("rt-recv-timer", "cap fault", "receive on the timer's endpoint (other clients' calls)"),
    ("rt-recv-notify", "cap fault", "receive on its capability to the timer's notification"),
    ("rt-recv-mux", "cap fault", "receive on the demultiplexer's endpoint"),
    ("rt-recv-arpd", "cap fault", "receive on arpd's endpoint"),
    ("rt-write-cache", "VM fault", "write the file cache (mapped read-only, the NIC sends from it)"),
    ("rt-write-blk-info", "VM fault", "write blk_info (read-only: the disk window)"),
    ("rt-write-arp", "VM fault", "write the ARP table (read-only: redirect the node's traffic)"),
    ("rt-nic-regs", "VM fault", "write the NIC's registers at its driver's address"),
    ("rt-io-cmos", "user exception", "out to the CMOS index port 0x70 (the timer's)"),
    ("rt-io-pci", "user exception", "out to PCI configuration port 0xcf8 (the initialiser's)"),
    ("rt-io-com1", "user exception", "out to COM1 0x3f8 (the serial PD's)"),
    ("rt-debug-putchar", "unknown syscall", "seL4_DebugPutChar on the release kernel"),
    ("rt-debug-halt", "unknown syscall", "seL4_DebugHalt on the release kernel"),
];

/// The demultiplexer's reasons the red team's forged frames must be
/// counted under (`net-mux-core`'s `TxDrop` names).
const TX_REASONS: &[&str] =
    &["forged-source-mac", "forged-source-ip", "forged-arp-sender", "endpoint-not-owned", "in-place-out-of-bounds"];

/// Fault messages `rt-fake-faults` sends (`FAKE_FAULTS` in the program).
const FAKE_FAULTS: usize = 1000;
/// Lines of the red team's console flood per round (`FLOOD_LINES` in the
/// program).
const FLOOD_LINES: usize = 4000;

/// One row of the table.
struct Outcome {
    attempt: String,
    judged_by: &'static str,
    observed: String,
    refused: bool,
}

fn print_table(rows: &[Outcome]) {
    println!("   | attempt | judged by | observed | outcome |");
    println!("   |---|---|---|---|");
    for r in rows {
        // Rows in parentheses are checks of the whole, not attempts.
        let check = r.attempt.starts_with('(');
        let outcome = match (r.refused, check) {
            (true, true) => "ok",
            (false, true) => "FAILED",
            (true, false) => "refused",
            (false, false) => "NOT REFUSED",
        };
        println!("   | {} | {} | {} | {outcome} |", r.attempt, r.judged_by, r.observed.replace('|', "/"));
    }
}

/// Fails listing the rows not refused.
fn all_refused(rows: &[Outcome]) -> Result<()> {
    let failed: Vec<&str> = rows.iter().filter(|r| !r.refused).map(|r| r.attempt.as_str()).collect();
    ensure!(failed.is_empty(), "not refused: {}", failed.join(", "));
    Ok(())
}

/// The red team's first line for `attempt` (round 1's).
fn attempt_line<'a>(s: &'a Session, attempt: &str) -> Option<&'a str> {
    let prefix = format!("[redteam] {attempt}: ");
    s.transcript.iter().find(|l| l.starts_with(&prefix)).map(String::as_str)
}

/// `curl` of `/` in the namespace; fails unless it is `index.html`.
fn get_index(ns: &Netns, index: &[u8], when: &str) -> Result<String> {
    let out = ns
        .command("curl")
        .args(["-sS", "-m", "60", &format!("http://{NODE_IP}/")])
        .stdin(Stdio::null())
        .output()
        .context("running curl")?;
    ensure!(out.status.success(), "curl {when}: {}", String::from_utf8_lossy(&out.stderr));
    ensure!(out.stdout == index, "curl {when}: the body differs from images/site/index.html");
    Ok(format!("{} bytes, as images/site/index.html", out.stdout.len()))
}

fn beside_httpd(ws: &Path) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    deps::ensure_packages(&[CURL])?;
    let built = build(ws, SYSTEM, KernelConfig::Release)?;
    let image = crate::harness::site::default_image(ws);
    crate::harness::site::build(&ws.join("images/site"), &image)?;
    let index = std::fs::read(ws.join("images/site/index.html"))?;
    let ns = Netns::new()?;
    let mut s = ns.boot_with(&built, &qemu::blk_drive(&image, true))?;
    let result = judge(&ns, &mut s, &index);
    if result.is_err() {
        s.print_transcript();
    }
    drop(s);
    drop(ns);
    result
}

fn judge(ns: &Netns, s: &mut Session, index: &[u8]) -> Result<()> {
    s.expect("[httpd] serving", LINE_TIMEOUT).context("booting the node")?;
    s.seen_or_expect("[redteam] round 1 done", LINE_TIMEOUT)?;
    ensure!(s.position("Booting all finished").is_none(), "the kernel printed: not a release kernel");
    let mut rows = Vec::new();

    // The faults, as the monitor reports them.
    for &(pd, kind, what) in FAULTING {
        let line = s.seen_or_expect(&format!("PD '{pd}' faulted"), LINE_TIMEOUT)?;
        let observed = line.split_once("faulted: ").map_or(line.as_str(), |(_, r)| r);
        let observed = observed.split(';').next().unwrap_or(observed).to_string();
        rows.push(Outcome {
            attempt: format!("{}: {what}", pd.trim_start_matches("rt-")),
            judged_by: "monitor",
            refused: observed.starts_with(kind),
            observed,
        });
    }

    // Fault messages of its own, to flood the monitor's log: reported once.
    s.seen_or_expect("PD 'rt-fake-faults' faulted", LINE_TIMEOUT)?;

    // The node serves before, during a second round and after.
    let before = get_index(ns, index, "before the second round")?;
    let during = ns
        .command("sh")
        .args([
            "-c",
            &format!(
                "for i in $(seq 1 20); do curl -s -m 60 -o /dev/null -w '%{{http_code}}\\n' http://{NODE_IP}/; done"
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the curl loop")?;
    // A connection to the red team's port starts its second round (the
    // SYN is all it needs; nothing answers it).
    let _ = ns.command("curl").args(["-s", "-m", "2", &format!("http://{NODE_IP}:81/")]).stdin(Stdio::null()).status();
    // The end of a later round (a retransmitted SYN may start a third,
    // whose flood may drop the second's last line).
    loop {
        let (line, _) = s.expect("[redteam] round ", LINE_TIMEOUT).context("the second round")?;
        if line.contains(" done: ") && !line.starts_with("[redteam] round 1 ") {
            break;
        }
    }
    let out = during.wait_with_output().context("the curl loop")?;
    let codes = String::from_utf8_lossy(&out.stdout);
    let ok = codes.lines().filter(|c| *c == "200").count();
    ensure!(ok == 20, "curl during the second round: {ok} of 20 answered 200 ({codes:?})");
    let after = get_index(ns, index, "after the attacks")?;
    s.drain(Duration::from_millis(500), Duration::from_secs(3));
    rows.push(Outcome {
        attempt: "(httpd keeps serving)".into(),
        judged_by: "curl",
        observed: format!("before: {before}; during round 2: {ok} of 20 GETs 200; after: {after}"),
        refused: true,
    });

    // What the red team saw, first round.
    for &attempt in ANSWERED {
        let line = attempt_line(s, attempt).with_context(|| format!("no line of the red team's {attempt}"))?;
        let observed = line.trim_start_matches(&format!("[redteam] {attempt}: ")).to_string();
        rows.push(Outcome {
            attempt: attempt.into(),
            judged_by: "redteam",
            refused: observed.ends_with(": refused"),
            observed: observed.trim_end_matches(": refused").to_string(),
        });
    }
    let control = attempt_line(s, "control-frame").context("no control frame line")?;
    ensure!(control.ends_with("allowed (control)"), "the control frame was refused: {control}");

    // The demultiplexer's counters for the red team (the Stats report of
    // round 2, after round 1's frames), and its log budget.
    let mux = s
        .transcript
        .iter()
        .rfind(|l| l.starts_with("[net-mux] redteam: rx delivered"))
        .context("no Stats report of the demultiplexer for redteam")?
        .clone();
    let missing: Vec<&str> = TX_REASONS.iter().copied().filter(|r| !mux.contains(r)).collect();
    rows.push(Outcome {
        attempt: "(forged frames, counted)".into(),
        judged_by: "net-mux Stats",
        observed: mux.split_once("tx ").map_or(mux.as_str(), |(_, r)| r).split(';').next().unwrap_or("").to_string(),
        refused: missing.is_empty(),
    });
    let suppressed = s.transcript.iter().find(|l| l.starts_with("[net-mux] redteam: ") && l.contains("suppressed"));
    let mux_lines = s.transcript.iter().filter(|l| l.starts_with("[net-mux]")).count();
    rows.push(Outcome {
        attempt: "(flood-mux-log, from outside)".into(),
        judged_by: "net-mux log",
        observed: match suppressed {
            Some(l) => format!("{} ({mux_lines} net-mux lines in all)", l.trim_start_matches("[net-mux] ")),
            None => format!("no suppression summary ({mux_lines} net-mux lines)"),
        },
        refused: suppressed.is_some(),
    });

    let fake = s.transcript.iter().filter(|l| l.contains("PD 'rt-fake-faults' faulted")).count();
    rows.push(Outcome {
        attempt: format!("fake-faults: {FAKE_FAULTS} fault messages sent on its own fault endpoint"),
        judged_by: "monitor",
        observed: format!("{fake} report(s); the PD stopped at the first"),
        refused: fake == 1,
    });

    // The console flood: how many of round 1's lines reached the console,
    // and the serial PD's count of the rest.
    let printed = s.transcript.iter().filter(|l| l.starts_with("[redteam] flood 1.")).count();
    let over = s.transcript.iter().find(|l| l.starts_with("[serial] client 7 wrote"));
    rows.push(Outcome {
        attempt: "flood-console".into(),
        judged_by: "console",
        observed: format!(
            "{printed} of its {FLOOD_LINES} flood lines of round 1 printed; {}",
            over.map_or("the serial PD reported no drop", |l| l.trim_start_matches("[serial] "))
        ),
        refused: printed < FLOOD_LINES && over.is_some(),
    });

    // Nothing but the rt-* PDs faulted: the red team itself and every PD
    // of the node still run.
    let failed = s
        .transcript
        .iter()
        .find(|l| (l.contains("faulted") || l.contains("panicked")) && !l.starts_with("[monitor] PD 'rt-"));
    if let Some(line) = failed {
        bail!("a PD failed: {line}");
    }
    print_table(&rows);
    all_refused(&rows)
}

/// A sparse disk larger than the window `0-0x3ffff` of the description,
/// so that a sector past the window is still on the disk.
fn sparse_disk(ws: &Path) -> Result<std::path::PathBuf> {
    let dir = ws.join("target").join("redteam");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("disk.img");
    let file = std::fs::File::create(&path)?;
    file.set_len((0x40000 + 0x800) * 512)?;
    Ok(path)
}

/// The red team's block attempts and what the driver must answer.
const BLK_ATTEMPTS: &[(&str, &str)] = &[
    ("blk-read-past-window", "OutsideWindow"),
    ("blk-read-across-window-end", "OutsideWindow"),
    ("blk-read-wrapping-sector", "OutOfRange"),
    ("blk-buffer-outside-data-region", "BadBuffer"),
    ("blk-unknown-op", "BadOp"),
    ("blk-write-read-only-disk", "ReadOnly"),
];

fn with_the_disk(ws: &Path) -> Result<()> {
    let built = build(ws, BLK_SYSTEM, KernelConfig::Release)?;
    let disk = sparse_disk(ws)?;
    let mut devices = qemu::user_nic();
    devices.extend(qemu::blk_drive(&disk, true));
    let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
    boot_with_and_check(&built, &devices, |s| {
        s.expect("[redteam] blk: disk of", LINE_TIMEOUT)?;
        let mut rows = Vec::new();
        for &(attempt, status) in BLK_ATTEMPTS {
            let line = s.seen_or_expect(&format!("[redteam] {attempt}: "), LINE_TIMEOUT)?;
            let observed = line.trim_start_matches(&format!("[redteam] {attempt}: ")).to_string();
            rows.push(Outcome {
                attempt: attempt.into(),
                judged_by: "redteam (driver's answer)",
                refused: observed.ends_with(": refused") && observed.contains(status),
                observed: observed.trim_end_matches(": refused").to_string(),
            });
        }
        let control = s.seen_or_expect("[redteam] blk-control-read", LINE_TIMEOUT)?;
        ensure!(control.ends_with("allowed (control)"), "the control read failed: {control}");
        s.drain(Duration::from_millis(500), Duration::from_secs(2));
        let logged = s
            .transcript
            .iter()
            .rfind(|l| l.starts_with("[virtio-blk] refused a request outside the client's window"))
            .context("the block driver logged no refusal")?
            .clone();
        rows.push(Outcome {
            attempt: "(outside the window, counted)".into(),
            judged_by: "virtio-blk log",
            observed: logged.trim_start_matches("[virtio-blk] ").to_string(),
            refused: true,
        });
        if let Some(line) = s.transcript.iter().find(|l| l.contains("faulted") || l.contains("panicked")) {
            bail!("a PD failed: {line}");
        }
        print_table(&rows);
        all_refused(&rows)
    })
}
