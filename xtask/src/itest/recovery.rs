//! Recovery: PDs killed by fault injection while `wrk` runs come back.
//!
//! `tests/systems/restart.system` first: a server restarted in the middle
//! of a protected call answers the caller with the error label
//! `LABEL_SERVER_RESTARTED` instead of leaving it blocked, and its memory
//! is its image's again (a `.bss` counter and a `.data` word).
//!
//! `tests/systems/recovery.system` is the web node of `microkit.system`
//! (release kernel, serial console, httpd serving `images/site`, the same
//! `on_fault` policies) plus the test PD `fault-injector`
//! (`pds/test/fault-injector`), which asks the monitor to make arpd, stray,
//! httpd, file-cache, virtio-blk, virtio-net, ftpd, serial and the timer fault, in that order,
//! 6, 9, 12, 15, 18, 21, 24, 27 and 30 s after it starts: the monitor points the PD's instruction pointer
//! at an unmapped page, so the PD takes a genuine VM fault. The test boots it in a network namespace
//! on a TAP device, starts `wrk` against `/index.html`, and for each PD:
//!
//! - the monitor reports the fault and restarts it (`restart 1`), and the
//!   PD reports that it serves again (arpd and stray when their `init`
//!   returns, httpd once it has read its site image and accepts
//!   connections, virtio-net once the demultiplexer attached again:
//!   `pds_runtime::serving`); the monitor's line says how
//!   long after the fault (its TSC, the kernel's calibration): that
//!   recovery time must be at most 100 ms, and is printed;
//! - the demultiplexer gave a network client a clean slate, or attached
//!   the restarted NIC driver again (`attached again`);
//! - it serves again, judged from outside: arpd answers `arping`, stray
//!   answers `ping`, httpd and virtio-net serve `/` byte for byte to
//!   `curl`, and after file-cache's and virtio-blk's restarts every file of
//!   the site is served byte for byte (the cache, emptied by its own
//!   restart, reads them again, the second time through the restarted
//!   driver; httpd reset the connections that were sending from the old
//!   cache and greeted the new one), after ftpd's restart `curl`
//!   downloads `/index.html` by FTP byte for byte, and after the serial
//!   console's restart a line httpd writes later (its counter line) is
//!   printed: the console resumes every ring where its last life left it
//!   (the read position is in the ring's region, `lib-console-ring`); and
//!   after the timer's restart, with `wrk` over and the node idle, a
//!   request head that never ends is closed with `408` at httpd's header
//!   deadline, which only a timeout of the new timer can bring (its
//!   clock was kept, its clients set their timeouts again).
//!
//! Then: no other PD faulted or restarted, each target restarted once,
//! `wrk` made requests throughout (its errors, from the connections httpd
//! forgot when it restarted, are printed, not judged), and a last `curl`
//! gets `/` byte for byte.
//!
//! With `RECOVERY_TRANSCRIPT` set in the environment the console is
//! printed even when the test passes.

use super::http_client::Client;
use super::node::{Netns, NODE_IP, TAP, TOOLS};
use super::web::{CURL, SERVING};
use super::{boot_and_check, build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::deps::{self, Package};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::Session;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

pub fn tests() -> Vec<Test> {
    vec![
        (
            "recovery: a server restarted in the middle of a protected call answers that call with an error and comes back with its memory as in its image; its second fault is restarted after the backoff; once stopped for good it answers every call with an error",
            dying_call_answered,
        ),
        (
            "recovery: arpd, stray, httpd, file-cache, virtio-blk, virtio-net, ftpd, serial and the timer killed by fault injection while wrk runs are each back within 100 ms, serving, and no other PD restarts",
            killed_pds_come_back,
        ),
    ]
}

/// `tests/systems/restart.system`: call-client calls call-server twice,
/// has it fault in the middle of a third call, and calls once more. The
/// dying call must be answered `LABEL_SERVER_RESTARTED` (0xffff0), and the
/// restarted server's `.bss` counter and `.data` word must be as in its
/// image again. A second fault (`restart-backoff`) is restarted no sooner
/// than 10 ms after it, and its call answered the same way. Further faults
/// until the monitor gives up (the 6th of the streak): the call the
/// server died in and every later call are answered
/// `LABEL_SERVER_STOPPED` (0xffff3) by the stopped server, which runs
/// none of its own code.
fn dying_call_answered(ws: &Path) -> Result<()> {
    let built = build(ws, "tests/systems/restart.system", KERNEL_CONSOLE)?;
    boot_and_check(&built, |s| {
        s.expect("[call-client] count: (0, 1, 24301) then (0, 2, 24302)", LINE_TIMEOUT)?;
        let fault = s.expect("[monitor] PD 'call-server' faulted", LINE_TIMEOUT)?.0;
        ensure!(fault.contains("restarting it (restart 1)"), "not restarted: {fault}");
        s.seen_or_expect("[call-server] init (restart 1): 0 calls served, data 0x5eed", LINE_TIMEOUT)?;
        s.seen_or_expect("[monitor] PD 'call-server' is back (restart 1)", LINE_TIMEOUT)?;
        s.seen_or_expect(
            "[call-client] the dying call answered label 0xffff0: the server restarted: ok",
            LINE_TIMEOUT,
        )?;
        s.seen_or_expect("[call-client] count after the restart: (0, 1, 24301)", LINE_TIMEOUT)?;
        // The second fault of the streak: restarted 10 ms after it (the
        // monitor waits at the lowest priority meanwhile).
        let again = s.seen_or_expect("restarting it in 10 ms (restart 2)", LINE_TIMEOUT)?;
        ensure!(again.contains("PD 'call-server' faulted"), "{again}");
        let back = s.seen_or_expect("[monitor] PD 'call-server' is back (restart 2)", LINE_TIMEOUT)?;
        let after = number_after(&back, "serving ").with_context(|| format!("no time in {back:?}"))?;
        ensure!(after >= 10.0, "restarted {after} ms after its second fault, before the 10 ms backoff");
        println!("   second fault: back {after:.3} ms after it (backoff 10 ms)");
        s.seen_or_expect("[call-client] the second dying call answered label 0xffff0", LINE_TIMEOUT)?;
        // Faults until the streak is given up (restart-backoff: 5
        // restarts, the 6th fault stops it for good): the dying call of
        // the last one and every later call are answered "stopped".
        let given_up = s.seen_or_expect("faults in a row: it is stopped for good", LINE_TIMEOUT)?;
        ensure!(given_up.contains("PD 'call-server' faulted") && given_up.contains("6 faults"), "{given_up}");
        s.seen_or_expect(
            "[monitor] PD 'call-server' answers every call 'stopped' (LABEL_SERVER_STOPPED)",
            LINE_TIMEOUT,
        )?;
        s.seen_or_expect("[call-client] dying call 4 more answered label 0xffff3", LINE_TIMEOUT)?;
        s.seen_or_expect(
            "[call-client] calls to the stopped server answered labels 0xffff3 and 0xffff3: ok",
            LINE_TIMEOUT,
        )?;
        s.seen_or_expect("[call-client] done", LINE_TIMEOUT)?;
        ensure!(
            s.position("[call-server] init (restart 6)").is_none(),
            "the server stopped for good ran its init again"
        );
        Ok(())
    })
}

const SYSTEM: &str = "tests/systems/recovery.system";
const WRK: Package = Package { name: "wrk", probe: "wrk" };
/// The PDs fault-injector kills, in its order.
const TARGETS: &[&str] =
    &["arpd", "stray", "httpd", "file-cache", "virtio-blk", "virtio-net", "ftpd", "serial", "timer"];
/// The most a PD may take from its fault to its event loop.
const MAX_RECOVERY_MS: f64 = 100.0;

fn killed_pds_come_back(ws: &Path) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    deps::ensure_packages(&[CURL, WRK])?;
    // As close to the deployed node as it can be: every element line of
    // microkit.system is in it.
    let deployed = std::fs::read_to_string(ws.join("microkit.system"))?;
    let test_system = std::fs::read_to_string(ws.join(SYSTEM))?;
    let body = &deployed[deployed.find("<system>").context("microkit.system has no <system>")?..];
    for line in body.lines().map(str::trim).filter(|l| l.starts_with('<') && !l.starts_with("<!--")) {
        ensure!(test_system.contains(line), "{SYSTEM} lacks microkit.system's {line:?}: make it follow");
    }
    let built = build(ws, SYSTEM, KernelConfig::Release)?;
    let report = std::fs::read_to_string(&built.report)?;
    ensure!(
        report.contains("WARNING: TEST SYSTEM: PD 'fault-injector'"),
        "the report does not warn of fault injection"
    );
    let image = crate::harness::site::default_image(ws);
    crate::harness::site::build(&ws.join("images/site"), &image)?;
    let index = std::fs::read(ws.join("images/site/index.html"))?;
    let ns = Netns::new()?;
    let mut s = ns.boot_with(&built, &crate::harness::site::drive(&built, &image)?)?;
    let result = judge(&ns, &mut s, &index, &ws.join("images/site"));
    if result.is_err() || std::env::var_os("RECOVERY_TRANSCRIPT").is_some() {
        s.print_transcript();
    }
    drop(s);
    drop(ns);
    result
}

/// Sends a request head that never ends (the project's HTTP client, on a
/// thread inside the namespace): whether the node answered `408` at
/// httpd's header deadline (10 s, `HEADER_TIMEOUT_NS`; the client waits
/// 30 s) and closed the connection.
fn header_deadline_408(ns: &Netns) -> Result<bool> {
    let answered = std::thread::scope(|s| {
        s.spawn(|| -> Result<(u16, bool)> {
            ns.enter()?;
            let mut c = Client::connect(&format!("{NODE_IP}:80"))?;
            c.send(b"GET / HTTP/1.1\r\nHost: node\r\n")?;
            let status = c.response(false)?.status;
            Ok((status, c.is_closed(std::time::Duration::from_secs(5))?))
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the client panicked")))
    });
    match answered {
        Ok((408, true)) => Ok(true),
        other => {
            println!("   the never-ending request head got {other:?} (want 408, then the connection closed)");
            Ok(false)
        }
    }
}

/// `curl` of `/` in the namespace; fails unless it is `index.html`.
fn get_index(ns: &Netns, index: &[u8], when: &str) -> Result<()> {
    let out = ns
        .command("curl")
        .args(["-sS", "-m", "20", &format!("http://{NODE_IP}/")])
        .stdin(Stdio::null())
        .output()
        .context("running curl")?;
    ensure!(out.status.success(), "curl {when}: {}", String::from_utf8_lossy(&out.stderr));
    ensure!(out.stdout == index, "curl {when}: the body differs from images/site/index.html");
    Ok(())
}

/// `curl` of `ftp://NODE/index.html` in the namespace; fails unless it is
/// `index.html`.
fn get_by_ftp(ns: &Netns, index: &[u8]) -> Result<()> {
    let out = ns
        .command("curl")
        .args(["-sS", "-m", "20", &format!("ftp://{NODE_IP}/index.html")])
        .stdin(Stdio::null())
        .output()
        .context("running curl")?;
    ensure!(out.status.success(), "curl ftp://: {}", String::from_utf8_lossy(&out.stderr));
    ensure!(out.stdout == index, "curl ftp://: the body differs from images/site/index.html");
    Ok(())
}

/// `curl` of every file under `site` in the namespace, each compared
/// with its source byte for byte; how many.
fn get_site(ns: &Netns, site: &Path) -> Result<usize> {
    let files = crate::harness::site::files(site)?;
    for (rel, file) in &files {
        let rel = rel.trim_start_matches('/');
        let out = ns
            .command("curl")
            .args(["-sS", "-m", "20", &format!("http://{NODE_IP}/{rel}")])
            .stdin(Stdio::null())
            .output()
            .context("running curl")?;
        ensure!(out.status.success(), "curl /{rel}: {}", String::from_utf8_lossy(&out.stderr));
        ensure!(out.stdout == std::fs::read(file)?, "curl /{rel}: the body differs from its source");
    }
    Ok(files.len())
}

/// The number after `key` in `line`, up to the next space.
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split([' ', ')', ',']).next()?.parse().ok()
}

/// The console without the monitor's lines, which it writes to COM1
/// itself and so may put in the middle of a line the serial PD is
/// printing: what is left reads as the PDs wrote it.
fn without_monitor_lines(transcript: &[String]) -> String {
    let mut text = transcript.join("\n");
    while let Some(start) = text.find("[monitor] ") {
        let end = text[start..].find('\n').map_or(text.len(), |n| start + n + 1);
        text.replace_range(start..end, "");
    }
    text
}

/// Whether `command` succeeds (quietly).
fn succeeds(mut command: Command) -> Result<bool> {
    Ok(command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status()?.success())
}

fn judge(ns: &Netns, s: &mut Session, index: &[u8], site: &Path) -> Result<()> {
    s.expect(SERVING, LINE_TIMEOUT).context("booting the node")?;
    s.seen_or_expect("WARNING: TEST SYSTEM: PD 'fault-injector'", LINE_TIMEOUT)?;
    get_index(ns, index, "before the faults")?;
    let wrk = ns
        .command("wrk")
        .args(["-t", "1", "-c", "16", "-d", "29s", "--timeout", "5s", &format!("http://{NODE_IP}/index.html")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting wrk")?;

    let mut rows = Vec::new();
    for target in TARGETS {
        let fault = s.seen_or_expect(&format!("[monitor] PD '{target}' faulted"), LINE_TIMEOUT)?;
        ensure!(fault.contains("restarting it (restart 1)"), "{target} not restarted at once: {fault}");
        let back = s.seen_or_expect(&format!("[monitor] PD '{target}' is back"), LINE_TIMEOUT)?;
        let recovery = number_after(&back, "serving ").with_context(|| format!("no recovery time in {back:?}"))?;
        let init = number_after(&back, "fault, ").unwrap_or(f64::NAN);
        let serving = match *target {
            "arpd" => {
                let mut c = ns.command("arping");
                c.args(["-c", "1", "-w", "5", "-I", TAP, NODE_IP]);
                ("arping answered", succeeds(c)?)
            }
            "stray" => {
                let mut c = ns.command("ping");
                c.args(["-c", "1", "-W", "5", NODE_IP]);
                ("ping answered", succeeds(c)?)
            }
            "httpd" => ("curl / byte for byte", get_index(ns, index, &format!("after {target}'s restart")).is_ok()),
            // After httpd's restart its cache is empty: every file it
            // serves now is read through the restarted driver.
            "file-cache" | "virtio-blk" => ("every file of the site byte for byte", get_site(ns, site).is_ok()),
            "ftpd" => ("curl ftp:// byte for byte", get_by_ftp(ns, index).is_ok()),
            // The console prints what PDs write after its restart: httpd's
            // counter line (every 10 s while wrk's requests change it).
            "serial" => (
                "a line httpd wrote after the restart printed",
                s.expect("[httpd] accepted=", std::time::Duration::from_secs(15)).is_ok(),
            ),
            // wrk has ended: on an idle node only a timeout of the
            // restarted timer wakes httpd to close a request that never
            // ends (its header deadline) with 408.
            "timer" => ("a trickled request closed with 408 at httpd's header deadline", header_deadline_408(ns)?),
            _ => ("curl / byte for byte", get_index(ns, index, &format!("after {target}'s restart")).is_ok()),
        };
        println!(
            "   {target:<10} fault -> serving {recovery:>8.3} ms (restart -> serving {init:.3} ms); {}: {}",
            serving.0,
            if serving.1 { "yes" } else { "NO" }
        );
        rows.push((*target, recovery, serving));
    }

    let out = wrk.wait_with_output().context("waiting for wrk")?;
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("requests in") || l.contains("Socket errors") || l.contains("Requests/sec"))
        .map(str::trim)
        .collect();
    println!("   wrk meanwhile (16 connections): {}", summary.join("; "));
    get_index(ns, index, "at the end")?;
    let files = get_site(ns, site).context("the whole site at the end")?;
    println!("   at the end: all {files} files of the site byte for byte");
    s.drain(std::time::Duration::from_millis(300), std::time::Duration::from_secs(2));

    for (target, recovery, (what, ok)) in &rows {
        ensure!(*recovery <= MAX_RECOVERY_MS, "{target} took {recovery:.3} ms, more than {MAX_RECOVERY_MS} ms");
        ensure!(*ok, "{target} restarted but not serving: {what} failed");
    }
    let faults: Vec<&String> =
        s.transcript.iter().filter(|l| l.contains("faulted") || l.contains("panicked")).collect();
    for target in TARGETS {
        let n = faults.iter().filter(|l| l.contains(&format!("PD '{target}' faulted"))).count();
        ensure!(n == 1, "{target} faulted {n} times");
    }
    // The demultiplexer's side: a clean slate for each network client, a
    // new start with the restarted NIC driver. Its lines come through the
    // serial PD, which the monitor's own writes to COM1 may cut in two.
    let console = without_monitor_lines(&s.transcript);
    for target in ["arpd", "stray", "httpd"] {
        let line = format!("{target} attached again (restarted)");
        ensure!(console.contains(&line), "the demultiplexer did not log {line:?}");
    }
    ensure!(
        console.contains("[net-mux] the driver attached again (restarted)"),
        "net-mux did not attach the driver again"
    );
    ensure!(faults.len() == TARGETS.len(), "other PDs faulted: {faults:?}");
    let backs = s.transcript.iter().filter(|l| l.contains("is back (restart")).count();
    ensure!(backs == TARGETS.len(), "{backs} restarts reported, expected {}", TARGETS.len());
    ensure!(report.contains("requests in"), "wrk made no requests: {report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::without_monitor_lines;

    #[test]
    fn a_line_the_monitor_cut_in_two_is_whole_again() {
        let transcript = [
            "[net-mux] client 1 stray att[monitor] PD 'stray' is back (restart 1)".to_string(),
            "ached again (restarted): its queues emptied".to_string(),
            "[monitor] PD 'httpd' faulted".to_string(),
            "[httpd] serving".to_string(),
        ];
        let text = without_monitor_lines(&transcript);
        assert_eq!(text, "[net-mux] client 1 stray attached again (restarted): its queues emptied\n[httpd] serving");
    }
}
