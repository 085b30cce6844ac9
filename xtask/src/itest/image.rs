//! The deployable disk image (`cargo xtask image`, `harness::image`),
//! booted as a PC boots it: the file is the only disk of a q35 PC (the
//! virtio-blk device the description expects, first in the boot order),
//! with no `-kernel`: the firmware runs GRUB from the disk, GRUB loads the
//! kernel and the system image from the boot partition by multiboot, and
//! the file cache reads the site from the site partition. The node sits on
//! a TAP device in a network namespace, as in the other web tests
//! ([`super::node`]), and `curl` fetches every file of a small generated
//! site, compared byte for byte. Needs root.

use super::node::{no_faults, run, Netns, NODE_IP, TOOLS};
use super::web::{no_error_lines, CURL, SERVING};
use super::{build, Test, LINE_TIMEOUT};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::{self, Session};
use crate::harness::{deps, image, site, system};
use anyhow::{ensure, Context, Result};
use lib_test_rng::Rng;
use std::fs;
use std::path::{Path, PathBuf};

pub fn tests() -> Vec<Test> {
    vec![
        (
            "image: the disk image of `cargo xtask image` boots a PC by BIOS (SeaBIOS, then GRUB from the disk by Multiboot, no -kernel) as its only disk, and the node serves the site from its partition byte for byte",
            boots::<BIOS>,
        ),
        (
            "image: the same disk image boots a PC by UEFI (OVMF, then GRUB's BOOTX64.EFI from the EFI System partition by Multiboot2, the ACPI tables passed by GRUB), and the node serves the site byte for byte",
            boots::<UEFI>,
        ),
    ]
}

/// The firmware of [`boots`]: SeaBIOS (QEMU's default) or OVMF.
const BIOS: bool = false;
const UEFI: bool = true;

/// What GRUB's configuration prints before it loads the kernel
/// ([`image::GRUB_CFG`]).
const GRUB_LOADING: &str = "seL4 web node: loading";

/// A small site: pages, nested directories, an empty file, sizes around
/// a TCP segment and a block, and one file of 1.5 MB. Deterministic.
/// Returns the files' URL paths and where they are.
fn small_site(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let _ = fs::remove_dir_all(root);
    let mut rng = Rng(0x1a6e_5173);
    let mut files = Vec::new();
    let mut write = |url: &str, bytes: &[u8]| -> Result<()> {
        let path = root.join(url.trim_start_matches('/'));
        fs::create_dir_all(path.parent().context("a file has a directory")?)?;
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push((url.to_string(), path));
        Ok(())
    };
    write("/index.html", b"<!doctype html>\n<html><body><h1>a node from its own disk</h1></body></html>\n")?;
    write("/empty.txt", b"")?;
    for (i, len) in [1, 1460, 1461, 4096, 4097, 65_536, 200_001, 1_500_000].into_iter().enumerate() {
        let mut data = vec![0; len];
        rng.fill(&mut data);
        write(&format!("/d{}/f{i}.bin", i % 3), &data)?;
    }
    Ok(files)
}

/// Builds the image of the deployed node (`microkit.system`, release
/// kernel) with a small site, boots it in a namespace by BIOS (SeaBIOS) or
/// by UEFI (OVMF), and fetches every file with curl.
fn boots<const FIRMWARE_UEFI: bool>(ws: &Path) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    deps::ensure_packages(&[CURL])?;
    deps::ensure_packages(image::PACKAGES)?;
    deps::ensure_packages(&[image::OVMF])?;
    let dir = ws.join("target").join("image-test");
    let files = small_site(&dir.join("site"))?;
    let built = build(ws, "microkit.system", KernelConfig::Release)?;
    let site_image = dir.join("site.img");
    site::build(&dir.join("site"), &site_image)?;
    let written = image::build(&built, &site_image, &dir.join("node.img"))?;
    image::print_report(&written, &built);
    ensure!(
        Some((written.layout.site_first, written.layout.site_first + written.layout.site_sectors - 1))
            == site::disk_window(&built.system)?,
        "the site partition is not the description's window"
    );

    let ns = Netns::new()?;
    let drive = qemu::boot_drive(&written.path, true);
    let drive: Vec<&str> = drive.iter().map(String::as_str).collect();
    let firmware = FIRMWARE_UEFI.then(|| Path::new(image::OVMF.probe));
    let cmd = qemu::command_disk_boot(firmware, system::DEFAULT_RAM_MIB, &drive);
    let line = qemu::command_line(&cmd);
    ensure!(!line.contains("-kernel") && !line.contains("-initrd"), "{line}");
    let mut s = ns.start_on_tap(cmd, qemu::NIC_DEVICE)?;
    let platform = if FIRMWARE_UEFI { "(efi)" } else { "(pc)" };
    let result = judge(&ns, &mut s, &files, platform);
    if result.is_err() {
        s.print_transcript();
    }
    drop(s);
    drop(ns);
    result
}

/// Judges a boot: GRUB ran from the disk on `platform` (its
/// `$grub_platform` in parentheses, as GRUB's line shows it), the block
/// driver gives the file cache the site partition, httpd serves, and every
/// file of `files` comes back byte for byte.
fn judge(ns: &Netns, s: &mut Session, files: &[(String, PathBuf)], platform: &str) -> Result<()> {
    let (grub, at) = s.expect(GRUB_LOADING, LINE_TIMEOUT).context("GRUB did not run from the disk")?;
    ensure!(grub.contains(platform), "GRUB ran, but not as {platform}: {grub}");
    println!("   GRUB {platform} ran from the disk {:.1} s after QEMU started", at.as_secs_f64());
    let (window, _) = s.expect("[virtio-blk] client window:", LINE_TIMEOUT)?;
    println!("   {window}");
    let (serving, at) = s.expect(SERVING, LINE_TIMEOUT)?;
    println!("   {serving} ({:.1} s after QEMU started)", at.as_secs_f64());
    let fetched = std::env::temp_dir().join(format!("{}-fetched", ns.name()));
    let mut bytes = 0;
    for (url, path) in files {
        run(ns
            .command("curl")
            .args(["-sS", "-f", "-m", "60", "-o"])
            .arg(&fetched)
            .arg(format!("http://{NODE_IP}{url}")))
        .with_context(|| format!("GET {url}"))?;
        let (got, want) = (fs::read(&fetched)?, fs::read(path)?);
        ensure!(got == want, "GET {url}: {} bytes, differs from the source ({} bytes)", got.len(), want.len());
        bytes += want.len();
    }
    let _ = fs::remove_file(&fetched);
    println!("   {} files, {bytes} bytes, each equal to its source", files.len());
    no_faults(s)?;
    no_error_lines(s)
}
