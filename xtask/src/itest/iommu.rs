//! The IOMMU (`tests/systems/dma.system`, README "Security: least
//! privilege"): a driver that programs its device to DMA outside its
//! regions. The rogue driver (`pds/test/dma`, `dma-rogue`) owns a
//! virtio-blk device; it reads sector 0 (a pattern the host wrote) into
//! its own DMA region, then into another PD's memory (`dma-canary`'s,
//! whose physical address it learns through a shared page, not from the
//! description). Judged from outside:
//!
//! - on the harness's machine (q35 with VT-d): the initialiser maps only
//!   the rogue's two regions into the device's IOSpace (its boot line says
//!   so), the read into its own region brings the pattern, a read into
//!   its region the device may only read (`dma="r"`) leaves it intact,
//!   the kernel reports the IOMMU's fault on the canary's address, and the
//!   canary is intact;
//! - on QEMU's `pc` machine (no IOMMU), the same image: both the
//!   read-only region and the canary are overwritten with the pattern.
//!   This is the control that the attacks are real, so the first run
//!   cannot pass by accident.

use super::{build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::qemu::{self, Session};
use crate::harness::system::{self, Built};
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::time::Duration;

const SYSTEM: &str = "tests/systems/dma.system";
/// What sector 0 of the test disk holds (its first 17 bytes, repeated).
const PATTERN: &[u8] = b"IOMMU TEST SECTOR ";

pub fn tests() -> Vec<Test> {
    vec![(
        "iommu: a driver that aims its device outside its DMA regions is stopped by VT-d (the canary stays intact; without an IOMMU it is overwritten)",
        rogue_dma,
    )]
}

/// A 1 MiB disk whose sector 0 holds [`PATTERN`] over and over.
fn disk(ws: &Path) -> Result<std::path::PathBuf> {
    let mut bytes = vec![0u8; 1 << 20];
    for (i, b) in bytes[..512].iter_mut().enumerate() {
        *b = PATTERN[i % PATTERN.len()];
    }
    let dir = ws.join("target/iommu-test");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("disk.img");
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Boots `built` on `machine` with the disk; returns the session once the
/// canary has judged the attack, with the rogue's line about its
/// read-only region and the canary's verdict.
fn boot(built: &Built, machine: &[&str], image: &Path) -> Result<(Session, String, String)> {
    let drive = qemu::blk_drive(image, true);
    let drive: Vec<&str> = drive.iter().map(String::as_str).collect();
    let mut s = Session::start(qemu::command_on(machine, built, system::DEFAULT_RAM_MIB, false, &drive))?;
    let result = (|| {
        s.expect("[monitor] PCI 00:05.0 1af4:1042 -> PD 'dma-rogue'", LINE_TIMEOUT)?;
        let (line, _) = s.expect("[dma-rogue] control: ", LINE_TIMEOUT)?;
        let text = std::str::from_utf8(&PATTERN[..17]).expect("ASCII");
        ensure!(line.contains(&format!("status 0, data '{text}'")), "the read into its own region failed: {line}");
        let (read_only, _) = s.expect("[dma-rogue] read-only region: ", LINE_TIMEOUT)?;
        s.expect("[dma-rogue] attack: ", LINE_TIMEOUT)?;
        let (verdict, _) = s.expect("[dma-canary] canary ", LINE_TIMEOUT)?;
        Ok((read_only, verdict))
    })();
    match result {
        Ok((read_only, verdict)) => Ok((s, read_only, verdict)),
        Err(e) => {
            s.print_transcript();
            Err(e)
        }
    }
}

/// The console line containing `needle`: one already seen, or the next
/// within a few seconds.
fn line_with(s: &mut Session, needle: &str) -> Result<String> {
    if let Some(i) = s.position(needle) {
        return Ok(s.transcript[i].clone());
    }
    Ok(s.expect(needle, Duration::from_secs(5))?.0)
}

fn rogue_dma(ws: &Path) -> Result<()> {
    let image = disk(ws)?;
    let built = build(ws, SYSTEM, KERNEL_CONSOLE)?;

    // Behind VT-d.
    let (mut s, read_only, verdict) = boot(&built, qemu::MACHINE, &image)?;
    let mapped = line_with(&mut s, "[monitor] IOMMU: PCI 00:05.0").context("the monitor did not map the IOSpace")?;
    ensure!(
        mapped.contains("may DMA to rogue_dma (rw), rogue_ro (r) (5 pages") && mapped.contains("nothing else"),
        "the IOSpace is not the rogue's region alone: {mapped}"
    );
    let canary = line_with(&mut s, "[dma-canary] canary at physical ").context("the canary did not say where it is")?;
    let address = canary
        .split("physical ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .context("no address in the canary's line")?
        .trim_start_matches("0x")
        .to_string();
    ensure!(
        read_only.contains("intact: 4096 bytes of 0x5a"),
        "behind the IOMMU the device wrote a region it may only read: {read_only}"
    );
    ensure!(verdict.contains("canary intact: 4096 bytes of 0xc5"), "behind the IOMMU the canary changed: {verdict}");
    // The kernel's report of the IOMMU's fault: the device (00:05.0,
    // request id 0x28) writing at the canary's address.
    let fault =
        line_with(&mut s, &format!("IOMMU: DMA write page fault from bus/dev/fun 0x28 on address 0x0:{address} "))
            .context("the kernel reported no IOMMU fault of 00:05.0 at the canary's address")?;
    println!("   behind VT-d: {mapped}");
    println!("   behind VT-d: {}", read_only.trim());
    println!("   behind VT-d: {}", fault.trim());
    println!("   behind VT-d: {}", verdict.trim());
    drop(s);

    // The same image without an IOMMU: the attack lands.
    let (s, read_only, verdict) = boot(&built, qemu::MACHINE_WITHOUT_IOMMU, &image)?;
    ensure!(
        s.position("[monitor] no IOMMU (no DMAR table)").is_some(),
        "the monitor did not say that the pc machine has no IOMMU"
    );
    let head: String = PATTERN[..4].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(", ");
    ensure!(
        verdict.contains("canary OVERWRITTEN: 512 of 4096 bytes changed") && verdict.contains(&head),
        "without an IOMMU the attack should have landed (the control): {verdict}"
    );
    ensure!(
        read_only.contains("OVERWRITTEN: 512 bytes changed"),
        "without an IOMMU the device should have written the read-only region (the control): {read_only}"
    );
    println!("   without an IOMMU (-machine pc): {}", read_only.trim());
    println!("   without an IOMMU (-machine pc): {}", verdict.trim());
    Ok(())
}
