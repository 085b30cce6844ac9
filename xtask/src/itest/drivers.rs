//! Device driver PDs: the serial console and the timer, judged from the
//! serial console of a booted system.

use super::{boot_and_check, build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::Session;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        ("timer: timeouts expire in deadline order, never early; now() is monotonic", timer_timeouts),
        (
            "timer: channels and the interrupt renumbered in the description alone keep the same behaviour",
            timer_renumbered,
        ),
        ("serial: a release build logs through the serial PD's console rings", serial_release_console),
        (
            "web: microkit.system with every written channel and interrupt renumbered serves the site as before",
            microkit_renumbered,
        ),
    ]
}

/// `microkit.system` with every id it writes changed (the channels of
/// arpd, stray and httpd to the timer, httpd's to the block driver, the
/// drivers' to their clients, the timer's and httpd's to the console, the
/// PIT's and both PCI devices' interrupts),
/// the programs unchanged: the web node boots and serves `images/site`
/// byte for byte. (The ids of the `<network>` element's channels are the
/// expansion's, from `net-config`, and are not written in the file.)
fn microkit_renumbered(ws: &Path) -> Result<()> {
    let mut text = std::fs::read_to_string(ws.join("microkit.system"))?;
    for (from, to) in [
        (r#"<irq id="24" pin="2""#, r#"<irq id="23" pin="2""#),
        (r#"<end pd="timer" id="25""#, r#"<end pd="timer" id="20""#),
        (r#"<end pd="httpd" id="25""#, r#"<end pd="httpd" id="24""#),
        (r#"device="0x1041" irq="0""#, r#"device="0x1041" irq="5""#),
        (r#"device="0x1042" irq="1""#, r#"device="0x1042" irq="6""#),
        (r#"<end pd="virtio-net" id="1""#, r#"<end pd="virtio-net" id="4""#),
        (r#"<end pd="timer" id="0" />"#, r#"<end pd="timer" id="7" />"#),
        (r#"<end pd="timer" id="1" />"#, r#"<end pd="timer" id="8" />"#),
        (r#"<end pd="timer" id="2" />"#, r#"<end pd="timer" id="9" />"#),
        (r#"<end pd="arpd" id="10""#, r#"<end pd="arpd" id="21""#),
        (r#"<end pd="stray" id="10""#, r#"<end pd="stray" id="22""#),
        (r#"<end pd="httpd" id="10""#, r#"<end pd="httpd" id="23""#),
        (r#"<end pd="virtio-blk" id="0""#, r#"<end pd="virtio-blk" id="3""#),
        (r#"<end pd="httpd" id="2""#, r#"<end pd="httpd" id="12""#),
    ] {
        ensure!(text.contains(from), "microkit.system no longer has `{from}`");
        text = text.replace(from, to);
    }
    let dir = ws.join("target/itest");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("microkit-renumbered.system");
    std::fs::write(&file, text)?;
    // The node as deployed: the release kernel.
    let built = build(ws, file.to_str().context("path is UTF-8")?, KernelConfig::Release)?;
    let image = crate::harness::site::default_image(ws);
    crate::harness::site::build(&ws.join("images/site"), &image)?;
    let web = super::web_http::Web::start(&built, &image)?;
    let mut client = super::http_client::Client::connect(&web.addr)?;
    for path in ["/", "/style.css", "/data/squares.txt"] {
        let response = client.get(path)?;
        ensure!(response.status == 200, "GET {path}: {}", response.status);
        let source = if path == "/" { "index.html" } else { &path[1..] };
        let want = std::fs::read(ws.join("images/site").join(source))?;
        ensure!(response.body == want, "GET {path}: {} bytes, differs from the source", response.body.len());
        println!("   GET {path}: {} bytes, as the source", want.len());
    }
    Ok(())
}

/// `tests/systems/timer.system` with every id changed (the client's end
/// 0 -> 9, the timer's end 0 -> 3, the PIT's irq 24 -> 25) and nothing
/// else: the programs know their channels by name (`setvar_id`), the
/// builder writes the new ids, and the timer behaves exactly as before.
fn timer_renumbered(ws: &Path) -> Result<()> {
    let text = std::fs::read_to_string(ws.join("tests/systems/timer.system"))?;
    let mut renumbered = text.clone();
    for (from, to) in [
        (r#"<end pd="timer-client" id="0""#, r#"<end pd="timer-client" id="9""#),
        (r#"<end pd="timer" id="0""#, r#"<end pd="timer" id="3""#),
        (r#"<irq id="24" pin="2""#, r#"<irq id="25" pin="2""#),
    ] {
        ensure!(renumbered.contains(from), "tests/systems/timer.system no longer has `{from}`");
        renumbered = renumbered.replace(from, to);
    }
    let dir = ws.join("target/itest");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("timer-renumbered.system");
    std::fs::write(&file, renumbered)?;
    let built = build(ws, file.to_str().context("path is UTF-8")?, KERNEL_CONSOLE)?;
    let report = std::fs::read_to_string(&built.report)?;
    for planned in [
        "protected call channel 9 -> endpoint of timer",
        "notify channel 3 -> notification of timer-client",
        "irq id 25",
    ] {
        ensure!(report.contains(planned), "the report does not show `{planned}`:\n{report}");
    }
    boot_and_check(&built, check_timer)
}

/// Boots `tests/systems/timer.system` (debug kernel, logs via the kernel).
fn timer_timeouts(ws: &Path) -> Result<()> {
    let built = build(ws, "tests/systems/timer.system", KERNEL_CONSOLE)?;
    boot_and_check(&built, check_timer)
}

/// The timeouts the test client sets, in the order it sets them.
const TIMEOUTS_MS: [u64; 5] = [30, 10, 50, 20, 120];
/// A notification later than this means the timer is broken, not slow.
/// (Generous: QEMU may be descheduled on a busy host.)
const MAX_LATENESS_US: u64 = 250_000;

/// One `expired:` line of the test client.
struct Expiry {
    ms: u64,
    deadline_ns: u64,
    now_ns: u64,
}

fn parse_expiry(line: &str) -> Result<Expiry> {
    // "[timer-client] expired: 10 ms timeout; deadline D ns; now N ns; late L us"
    let field = |key: &str| -> Result<u64> {
        let rest = line.split(key).nth(1).with_context(|| format!("no {key:?} in {line:?}"))?;
        let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().with_context(|| format!("bad number after {key:?} in {line:?}"))
    };
    Ok(Expiry { ms: field("expired:")?, deadline_ns: field("deadline")?, now_ns: field("now")? })
}

/// How far the guest's wall clock may be from the host's: QEMU's CMOS
/// clock is the host's UTC (`-rtc base=utc`, the default), read at boot
/// with one-second resolution; the rest is the console's delay.
const MAX_WALL_CLOCK_SKEW_S: u64 = 30;

/// The timer's wall clock (the CMOS clock, read by the timer PD at boot
/// and handed out as a boot epoch): the client's boot epoch plus its
/// `now()` is the host's time.
fn check_wall_clock(s: &mut Session) -> Result<()> {
    let (line, _) = s.expect("[timer-client] wall clock: boot epoch", LINE_TIMEOUT)?;
    let field = |key: &str| -> Result<u64> {
        let rest = line.split(key).nth(1).with_context(|| format!("no {key:?} in {line:?}"))?;
        let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().with_context(|| format!("bad number after {key:?} in {line:?}"))
    };
    let guest = field("boot epoch")? + field("; now")? / 1_000_000_000;
    let host = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    ensure!(
        guest.abs_diff(host) <= MAX_WALL_CLOCK_SKEW_S,
        "the guest's wall clock reads {guest}, the host's {host}: {line}"
    );
    println!("   wall clock (the timer's, from the CMOS clock): {guest}, host {host}");
    Ok(())
}

fn check_timer(s: &mut Session) -> Result<()> {
    let (calibrated, _) = s.expect("[timer] TSC", LINE_TIMEOUT)?;
    println!("   {}", calibrated.trim_start_matches("[timer] "));
    s.expect("[timer-client] now() read", LINE_TIMEOUT)?;
    let (local, _) = s.expect("[timer-client] local clock read against now()", LINE_TIMEOUT)?;
    ensure!(local.ends_with(" 0 disagreements"), "{local}");
    println!("   {}", local.trim_start_matches("[timer-client] "));
    check_wall_clock(s)?;
    let mut expiries = Vec::new();
    for _ in TIMEOUTS_MS {
        let (line, _) = s.expect("[timer-client] expired:", LINE_TIMEOUT)?;
        expiries.push(parse_expiry(&line)?);
    }
    s.expect("[timer-client] all 5 timeouts expired", LINE_TIMEOUT)?;
    s.drain(Duration::from_millis(300), Duration::from_secs(1));

    let mut sorted = TIMEOUTS_MS;
    sorted.sort();
    let order: Vec<u64> = expiries.iter().map(|e| e.ms).collect();
    ensure!(order == sorted, "timeouts expired in the order {order:?}, not by deadline {sorted:?}");
    let mut last_now = 0;
    let mut figures = Vec::new();
    for e in &expiries {
        ensure!(
            e.now_ns >= e.deadline_ns,
            "the {} ms timeout was notified {} ns early",
            e.ms,
            e.deadline_ns - e.now_ns
        );
        ensure!(e.now_ns >= last_now, "now() went backwards: {last_now} ns, then {} ns", e.now_ns);
        let late_us = (e.now_ns - e.deadline_ns) / 1000;
        ensure!(late_us <= MAX_LATENESS_US, "the {} ms timeout was {late_us} us late", e.ms);
        last_now = e.now_ns;
        figures.push(format!("{} ms: +{late_us} us", e.ms));
    }
    println!("   lateness (deadline to the client's now()): {}", figures.join(", "));
    for bad in ["error:", "went backwards", "panic"] {
        if let Some(i) = s.position(bad) {
            bail!("unexpected line: {}", s.transcript[i]);
        }
    }
    Ok(())
}

/// Boots `tests/systems/serial-release.system` on the release kernel, which
/// prints nothing: every line on the console came through the serial PD.
fn serial_release_console(ws: &Path) -> Result<()> {
    let built = build(ws, "tests/systems/serial-release.system", KernelConfig::Release)?;
    boot_and_check(&built, |s| {
        s.expect("[serial] COM1 at 115200 baud, 8N1; 4 client console(s)", LINE_TIMEOUT)?;
        // The timer and its client, through their rings.
        check_timer(s)?;
        // Two loggers, each with a burst of 100 lines (about 7 KiB) written
        // in one handler into a 2 KiB ring: nothing may be lost or torn.
        for logger in ["logger-a", "logger-b"] {
            let done = format!("[{logger}] burst done");
            if s.position(&done).is_none() {
                s.expect(&done, LINE_TIMEOUT)?;
            }
        }
        s.drain(Duration::from_millis(300), Duration::from_secs(1));
        for logger in ["logger-a", "logger-b"] {
            let prefix = format!("[{logger}] burst line");
            let lines: Vec<&String> = s.transcript.iter().filter(|l| l.contains(&prefix)).collect();
            ensure!(lines.len() == 100, "{} of {logger}'s 100 burst lines arrived", lines.len());
            for (i, line) in lines.iter().enumerate() {
                let want =
                    format!("[{logger}] burst line {:03} of 100: the quick brown fox jumps over the lazy dog", i + 1);
                ensure!(**line == want, "{logger}'s line {} is {line:?}, expected {want:?}", i + 1);
            }
        }
        ensure!(s.position("dropped").is_none(), "the serial PD reports dropped bytes");
        ensure!(s.position("Booting all finished").is_none(), "the kernel printed: not a release kernel");
        // A release monitor writes its own few lines to the UART directly.
        ensure!(s.position("[monitor] 5 PDs").is_some(), "the release monitor's boot line is missing");
        let through_serial = s.transcript.iter().filter(|l| l.contains("] ") && !l.contains("[monitor]")).count();
        println!(
            "   {through_serial} log lines from 5 PDs, all through the serial PD (release kernel: no kernel printing)"
        );
        Ok(())
    })
}
