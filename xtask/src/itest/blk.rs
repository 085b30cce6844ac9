//! Block storage: the virtio-blk driver PD and its test client
//! (`tests/systems/blk.system`), judged against a disk image the host made
//! and reads back.

use super::{boot_with_and_check, build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::qemu::Session;
use anyhow::{ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SYSTEM: &str = "tests/systems/blk.system";
const SECTOR: usize = 512;
/// Size of the test disk.
const TEST_DISK_MIB: usize = 8;
/// Size of the disk `bench_disk_read` reads.
pub const BENCH_DISK_MIB: usize = 32;
/// The client's window (`tests/systems/blk.system`'s `client_sectors`,
/// `0x800-0x107ff`): the sectors from `WINDOW_START`, at most
/// `WINDOW_SECTORS` of them (clipped to the disk).
const WINDOW_START: usize = 0x800;
const WINDOW_SECTORS: usize = 0x10000;
/// The range the client writes (`pds/test/blk-client`: `WRITE_START`,
/// `WRITE_SECTORS`) and its pattern.
const WRITE_START: usize = 2048;
const WRITE_SECTORS: usize = 512;

fn pattern(lba: u64, word: u64) -> u64 {
    0xb10c_0000_0000_0000 | lba << 16 | word
}

pub fn tests() -> Vec<Test> {
    vec![(
        "virtio-blk: a client reads, hashes, writes, flushes and verifies its window of the disk; requests outside it are refused",
        disk_read_write,
    )]
}

/// The bytes of `disk` inside the client's window.
fn window_of(disk: &[u8]) -> std::ops::Range<usize> {
    let sectors = disk.len() / SECTOR;
    let end = sectors.min(WINDOW_START + WINDOW_SECTORS);
    WINDOW_START.min(end) * SECTOR..end * SECTOR
}

/// `len` bytes from a fixed-seed generator (SplitMix64): the same disk on
/// every run, without any dependency.
fn random_disk(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut disk = Vec::with_capacity(len);
    while disk.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        disk.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    disk.truncate(len);
    disk
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a disk image under `target/blk-test/`; returns its path.
fn write_image(ws: &Path, name: &str, contents: &[u8]) -> Result<PathBuf> {
    let dir = ws.join("target/blk-test");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// QEMU arguments for a modern virtio-blk device at 00:05.0 on `image`.
fn drive_args(image: &Path) -> Vec<String> {
    crate::harness::qemu::blk_drive(image, false)
}

/// Boots with a random 8 MiB disk: the client's SHA-256 of its window
/// (the disk from 1 MiB in) must be the host's; its requests for sectors
/// before the window must be refused (`OutsideWindow`, logged by the
/// driver) while the rest of its work goes on; after its write phase, the
/// image on the host must hold the pattern in the written range and be
/// unchanged elsewhere (the write outside the window included).
fn disk_read_write(ws: &Path) -> Result<()> {
    let original = random_disk(TEST_DISK_MIB << 20, 0x5eed_b10c);
    let image = write_image(ws, "disk.img", &original)?;
    let window = window_of(&original);
    let expected_hash = hex(&Sha256::digest(&original[window.clone()]));
    let built = build(ws, SYSTEM, KERNEL_CONSOLE)?;
    let args = drive_args(&image);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    boot_with_and_check(&built, &args, |s| {
        s.expect("[monitor] PCI 00:05.0 1af4:1042 -> PD 'virtio-blk'", LINE_TIMEOUT)?;
        s.expect(&format!("[virtio-blk] disk: {} sectors", original.len() / SECTOR), LINE_TIMEOUT)?;
        let (line, _) = s.expect("[virtio-blk] client window: ", LINE_TIMEOUT)?;
        let sectors = format!("sectors {}..{}", window.start / SECTOR, window.end / SECTOR);
        ensure!(line.contains(&sectors), "the driver's window is not {sectors}: {line}");
        let (_, start) = s.expect("[blk-client] read: start", LINE_TIMEOUT)?;
        let (line, end) = s.expect("[blk-client] read: ", LINE_TIMEOUT)?;
        ensure!(
            line.contains(&format!("sha256 {expected_hash}")),
            "client's hash differs from the host's ({expected_hash}): {line}"
        );
        ensure!(line.contains(", 0 failed"), "some reads failed: {line}");
        println!("   hash of the window ({sectors}) matches the host's: {expected_hash}");
        println!(
            "   hashed {} MiB (the window) in {:.2} s of host time; {}",
            window.len() >> 20,
            (end - start).as_secs_f64(),
            in_flight(&line)
        );
        let (line, _) = s.expect("[blk-client] write: ", LINE_TIMEOUT)?;
        ensure!(line.ends_with("read back: OK"), "write phase failed: {line}");
        let (line, _) = s.expect("[blk-client] invalid: ", LINE_TIMEOUT)?;
        for expected in [
            "read past the end -> OutOfRange",
            "buffer outside the data region -> BadBuffer",
            "read before the window -> OutsideWindow",
            "read across the window's start -> OutsideWindow",
            "write outside the window -> OutsideWindow",
        ] {
            ensure!(line.contains(expected), "invalid requests got the wrong statuses (no `{expected}`): {line}");
        }
        println!("   invalid requests: {}", line.split_once("invalid: ").map_or("", |(_, rest)| rest));
        let refused = s.seen_or_expect("[virtio-blk] refused a request outside the client's window", LINE_TIMEOUT)?;
        println!("   {}", refused.trim_start_matches("[virtio-blk] "));
        // Still served after the refusals: the bench reads the window again.
        let mib_s = time_bench(s, window.len())?;
        println!("   read throughput (no hashing): {mib_s:.1} MB/s");
        s.expect("[blk-client] done", LINE_TIMEOUT)?;
        s.drain(Duration::from_millis(300), Duration::from_secs(1));
        ensure!(s.position("panic").is_none(), "something panicked");
        ensure!(s.position("[virtio-blk] warning").is_none(), "the driver reported trouble");
        Ok(())
    })?;

    // QEMU has been stopped: judge the image.
    let after = std::fs::read(&image)?;
    ensure!(after.len() == original.len(), "the image changed size");
    let mut expected = original.clone();
    for (i, word) in
        expected[WRITE_START * SECTOR..(WRITE_START + WRITE_SECTORS) * SECTOR].chunks_exact_mut(8).enumerate()
    {
        let (lba, w) = ((WRITE_START + i / 64) as u64, (i % 64) as u64);
        word.copy_from_slice(&pattern(lba, w).to_le_bytes());
    }
    let written = WRITE_START * SECTOR..(WRITE_START + WRITE_SECTORS) * SECTOR;
    ensure!(after[written.clone()] == expected[written], "the written range does not hold the pattern");
    ensure!(Sha256::digest(&after) == Sha256::digest(&expected), "the image changed outside the written range");
    println!(
        "   image after the run: pattern in sectors {WRITE_START}..{}, the rest unchanged (the refused write to sector 0 too)",
        WRITE_START + WRITE_SECTORS
    );
    Ok(())
}

/// The "N requests in flight at most" part of the client's read line.
fn in_flight(line: &str) -> &str {
    line.split(", ").find(|p| p.contains("in flight")).unwrap_or("")
}

/// Times the client's bench phase (a read of the whole disk, `bytes`
/// bytes, without hashing) by its two log lines; returns MB/s (10⁶ bytes).
/// Read throughput as the guest measured it: the client's TSC cycle count
/// for the sweep over the TSC frequency the kernel reported at boot, so the
/// figure is timed inside the guest like the Linux reference's (host time
/// between console lines would add serial latency to a sweep of ~10 ms).
fn time_bench(s: &mut Session, bytes: usize) -> Result<f64> {
    let boot = s.seen_or_expect("[monitor] all PDs started", LINE_TIMEOUT)?;
    let mhz: f64 = number_before(&boot, " MHz").context("no TSC frequency in the monitor's boot line")?;
    s.expect("[blk-client] bench: start", LINE_TIMEOUT)?;
    let (line, _) = s.expect("[blk-client] bench: read ", LINE_TIMEOUT)?;
    ensure!(line.contains(&format!("read {bytes} bytes")) && line.contains(", 0 failed"), "bench read failed: {line}");
    let cycles: f64 = number_before(&line, " TSC cycles").context("no cycle count in the bench line")?;
    let seconds = (cycles / (mhz * 1e6)).max(1e-9);
    Ok(bytes as f64 / 1e6 / seconds)
}

/// The number that ends right before `unit` in `line`.
fn number_before(line: &str, unit: &str) -> Option<f64> {
    let head = &line[..line.find(unit)?];
    head.rsplit(|c: char| !c.is_ascii_digit() && c != '.').next()?.parse().ok()
}

/// Reads 32 MiB (the client's window of a disk 1 MiB larger) through the driver and the client (up to 32
/// requests of 64 KiB in flight, no hashing) in QEMU (TCG); returns the
/// throughput in MB/s (10⁶ bytes per second), timed on the host between the
/// client's log lines around the read.
pub fn bench_disk_read(ws: &Path) -> Result<f64> {
    // The window starts 1 MiB in: the disk holds that much more, so that
    // the client reads BENCH_DISK_MIB, as the Linux guest does.
    let disk = random_disk((BENCH_DISK_MIB << 20) + WINDOW_START * SECTOR, 0xbe4c);
    let image = write_image(ws, "bench.img", &disk)?;
    let built = build(ws, SYSTEM, KERNEL_CONSOLE)?;
    let args = drive_args(&image);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut result = 0.0;
    boot_with_and_check(&built, &args, |s| {
        result = time_bench(s, window_of(&disk).len())?;
        Ok(())
    })?;
    Ok(result)
}
