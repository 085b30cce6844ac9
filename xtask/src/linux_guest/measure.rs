//! The guest's side of the measures: booting it in echo mode with its end
//! of a frame link, timing its read of a whole disk, and the short
//! [`smoke_test`] of both that `cargo xtask test` runs.

use super::{build, qemu_command, Guest};
use crate::bench::frames::{check_echo, measure_echo, FrameLink, MAX_FRAME, MIN_FRAME};
use crate::harness::deps;
use crate::harness::qemu::Session;
use anyhow::{ensure, Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the guest may take to boot to its ready line, or to read its
/// disk, under TCG on a busy shared machine. A hang detector, not a speed
/// check: a normal boot takes a few seconds.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// The guest booted in echo mode, with the host end of its network link.
pub struct EchoGuest {
    /// The running QEMU: held so that the guest lives as long as this value
    /// (dropping the session stops QEMU).
    #[allow(dead_code)]
    pub session: Session,
    pub link: FrameLink,
    /// Host time from starting QEMU to the guest's `ECHO READY`.
    pub ready_after: Duration,
}

impl EchoGuest {
    pub fn boot(guest: &Guest) -> Result<Self> {
        deps::ensure_packages(deps::QEMU)?;
        let link = FrameLink::new()?;
        let args = link.qemu_args_without_iommu();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut session = Session::start(qemu_command(guest, "echo", &args))?;
        let ready = session.expect("ECHO READY", BOOT_TIMEOUT);
        let (_, ready_after) = with_console(&mut session, ready).context("booting the Linux guest in echo mode")?;
        Ok(EchoGuest { session, link, ready_after })
    }
}

/// One read of the whole disk by the guest.
#[derive(Clone, Debug)]
pub struct DiskRead {
    pub bytes: u64,
    /// The read's duration, timed inside the guest.
    pub guest_time: Duration,
    /// Host time from starting QEMU to the result.
    pub boot_and_read: Duration,
}

impl DiskRead {
    /// Throughput in MB/s (10^6 bytes per second).
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.guest_time.as_secs_f64() / 1e6
    }
}

/// Boots the guest in diskread mode with `image` as its virtio-blk disk, at
/// the PCI address our system uses (00:05.0), read-only.
pub fn disk_read(guest: &Guest, image: &Path) -> Result<DiskRead> {
    deps::ensure_packages(deps::QEMU)?;
    let drive = format!("file={},if=none,id=d0,format=raw,readonly=on", image.display());
    let args = ["-drive", &drive, "-device", "virtio-blk-pci,disable-legacy=on,addr=5,drive=d0"];
    let mut session = Session::start(qemu_command(guest, "diskread", &args))?;
    let result = session.expect("DISKREAD", BOOT_TIMEOUT);
    let (line, boot_and_read) = with_console(&mut session, result).context("reading the disk in the Linux guest")?;
    let (bytes, ns) = parse_diskread(&line)?;
    Ok(DiskRead { bytes, guest_time: Duration::from_nanos(ns), boot_and_read })
}

/// `DISKREAD bytes=<n> ns=<t>` -> (n, t).
fn parse_diskread(line: &str) -> Result<(u64, u64)> {
    let field = |name: &str| -> Result<u64> {
        let value = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .with_context(|| format!("no {name} in {line:?}"))?;
        value.parse().with_context(|| format!("bad {name} in {line:?}"))
    };
    Ok((field("bytes=")?, field("ns=")?))
}

/// A disk image of `mib` MiB under `target/linux-guest/`, filled with a
/// non-zero pattern (so that no layer can shortcut reading zeros), created
/// once.
pub fn test_image(ws: &Path, mib: u64) -> Result<PathBuf> {
    let dir = ws.join("target/linux-guest");
    let path = dir.join(format!("disk-{mib}m.img"));
    if fs::metadata(&path).is_ok_and(|m| m.len() == mib << 20) {
        return Ok(path);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written under another name first: a half-written image is never used.
    let partial = path.with_extension("partial");
    let mut file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    for _ in 0..mib {
        file.write_all(&block).with_context(|| format!("writing {}", partial.display()))?;
    }
    fs::rename(&partial, &path).with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(path)
}

/// A short check of both modes, for the integration tests: the guest builds,
/// echoes frames of several sizes unchanged, and reads a 64 MiB disk whole.
pub fn smoke_test(ws: &Path) -> Result<()> {
    let guest = build(ws)?;
    let echo = EchoGuest::boot(&guest)?;
    println!("   linux echo: ready {:.1} s after QEMU started", echo.ready_after.as_secs_f64());
    check_echo(&echo.link, &[MIN_FRAME, 64, 128, 1000, MAX_FRAME])?;
    let rate = measure_echo(&echo.link, MAX_FRAME, 8, Duration::from_secs(1))?;
    ensure!(rate.echoed > 0, "no frame echoed in a 1 s run: {rate}");
    println!("   linux echo: {rate}");
    drop(echo);

    let image = test_image(ws, 64)?;
    let read = disk_read(&guest, &image)?;
    ensure!(read.bytes == 64 << 20, "the guest read {} bytes of a 64 MiB disk", read.bytes);
    println!(
        "   linux diskread: {:.0} MB/s ({} bytes in {:.2} s; {:.1} s with the boot)",
        read.mb_per_sec(),
        read.bytes,
        read.guest_time.as_secs_f64(),
        read.boot_and_read.as_secs_f64()
    );
    Ok(())
}

/// Passes `result` on; on failure, adds the end of the serial console to
/// the error, where the guest's `init:` lines say what went wrong.
fn with_console<T>(session: &mut Session, result: Result<T>) -> Result<T> {
    result.map_err(|e| {
        session.drain(Duration::from_millis(500), Duration::from_secs(2));
        let start = session.transcript.len().saturating_sub(30);
        let tail: Vec<String> = session.transcript[start..].iter().map(|l| format!("  | {l}")).collect();
        e.context(format!("serial console (last lines):\n{}", tail.join("\n")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diskread_line_is_parsed() {
        assert_eq!(parse_diskread("DISKREAD bytes=67108864 ns=123456789").unwrap(), (67108864, 123456789));
        assert!(parse_diskread("DISKREAD bytes=1").is_err());
        assert!(parse_diskread("DISKREAD bytes=x ns=1").is_err());
    }
}
