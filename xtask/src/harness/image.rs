//! `cargo xtask image --site DIR --out FILE`: one bootable disk image
//! carrying everything a PC needs to run the web node: GRUB, the seL4
//! kernel, the system image and the site.
//!
//! The layout (sectors of 512 bytes; MBR partition table):
//!
//! | sectors | what |
//! |---|---|
//! | 0 | GRUB's `boot.img` (BIOS boot code) and the partition table |
//! | 1 .. | GRUB's i386-pc core image (`grub-mkimage -O i386-pc`), in the gap before the first partition |
//! | window | partition 1 (type `0xda`, non-FS data): the site image, at the partition's first sector, the rest zero |
//! | after it, from the next MiB | partition 2 (type `0xef`, EFI System, active): FAT with `/boot/grub/grub.cfg`, `/boot/kernel32.elf`, `/boot/system.elf` and `/EFI/BOOT/BOOTX64.EFI` |
//!
//! The site partition is the disk window the description gives the block
//! driver's client (`client_sectors` of the PD running `virtio-blk`), read
//! from the description the system image is built from: the layout follows
//! the description, never the reverse, so the image that boots here is
//! bit for bit the one every test of that description boots (the tests
//! place the site image at the same sector, `site::disk_for`). The image is
//! assembled as a plain file (no loop devices, no root): the FAT partition
//! with mtools (`mformat`, `mmd`, `mcopy` on an offset of the file), GRUB's
//! images with `grub-mkimage`, and what `grub-setup` would patch (the core
//! image's first sector in `boot.img`, the boot-drive check) written here.
//!
//! BIOS: the firmware runs `boot.img`, which loads the core image from
//! sector 1 (its first sector, `diskboot.img`, lists the rest:
//! `grub-mkimage` writes the count, the default start is sector 2); the
//! core image finds `/boot/grub/grub.cfg` on partition 2 of the disk it
//! was loaded from (prefix `(,msdos2)/boot/grub`) and boots the kernel by
//! multiboot with the system image as its module. UEFI: the firmware
//! runs `/EFI/BOOT/BOOTX64.EFI` from the EFI System partition, whose
//! prefix is `/boot/grub` on that same partition, and the same `grub.cfg`.

use crate::harness::deps::{self, Package};
use crate::harness::site;
use crate::harness::system::Built;
use anyhow::{bail, ensure, Context, Result};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Sector size of the layout (and of every disk it is written to).
pub const SECTOR: u64 = 512;
/// Partitions start on MiB boundaries (2048 sectors), as partitioning
/// tools align them.
const ALIGN: u64 = 2048;

/// Debian packages the image is made with.
#[rustfmt::skip]
pub const PACKAGES: &[Package] = &[
    Package { name: "grub-common", probe: "grub-mkimage" },
    Package { name: "grub-pc-bin", probe: "/usr/lib/grub/i386-pc/boot.img" },
    Package { name: "grub-efi-amd64-bin", probe: "/usr/lib/grub/x86_64-efi/multiboot.mod" },
    Package { name: "mtools", probe: "mformat" },
];

/// OVMF, the UEFI firmware the UEFI test boots QEMU with (as `-bios`).
pub const OVMF: Package = Package { name: "ovmf", probe: "/usr/share/ovmf/OVMF.fd" };

/// GRUB's BIOS boot sector.
const BOOT_IMG: &str = "/usr/lib/grub/i386-pc/boot.img";
/// Offsets in `boot.img` that `grub-setup` patches (GRUB's
/// `include/grub/i386/pc/boot.h`): the first sector of the core image
/// (a 64-bit LBA), and the boot-drive check, a jump that NOPs turn into a
/// check that the BIOS passed a hard disk (for BIOSes that pass a bogus
/// drive number, as some do for USB sticks).
const KERNEL_SECTOR_AT: usize = 0x5c;
const DRIVE_CHECK_AT: usize = 0x66;
/// The MBR's disk signature, partition table and boot signature.
const DISK_SIGNATURE_AT: usize = 0x1b8;
const PARTITION_TABLE_AT: usize = 0x1be;
/// Partition types: non-FS data (the site), EFI System (FAT; BIOS GRUB
/// reads it as any FAT partition).
const TYPE_SITE: u8 = 0xda;
const TYPE_BOOT: u8 = 0xef;
/// GRUB modules built into both core images: the disk and partition
/// table (`biosdisk` on BIOS; the EFI image uses the firmware's block
/// I/O), FAT, the configuration file and its `[` (`test`), Multiboot
/// and Multiboot2, and the serial console.
const MODULES: &[&str] = &[
    "part_msdos",
    "fat",
    "normal",
    "configfile",
    "test",
    "multiboot",
    "multiboot2",
    "boot",
    "serial",
    "terminal",
    "echo",
];

/// The configuration both GRUBs read: console on the first serial port
/// (115200 8N1, as the node's own console) and the screen, then the kernel
/// with the system image as its one module, at once (no menu: the machine
/// is an appliance). BIOS: by Multiboot, as QEMU's `-kernel` boots it in
/// every test. UEFI: by Multiboot2, the only way the kernel learns where
/// the firmware put the ACPI tables (`kernel/patches/0004-*`), in the
/// firmware's graphics mode (`gfxpayload=keep`: UEFI has no text mode to
/// switch to, and GRUB would say "no suitable video mode found").
pub const GRUB_CFG: &str = "\
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial console
echo \"seL4 web node: loading /boot/kernel32.elf and /boot/system.elf ($grub_platform)\"
if [ \"$grub_platform\" = efi ]; then
  set gfxpayload=keep
  multiboot2 /boot/kernel32.elf
  module2 /boot/system.elf
else
  multiboot /boot/kernel32.elf
  module /boot/system.elf
fi
boot
";

/// Where each part of the disk lies, in sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The core image's sectors, from sector 1.
    pub core_sectors: u64,
    /// Partition 1, the site: the description's window.
    pub site_first: u64,
    pub site_sectors: u64,
    /// Partition 2, the boot partition (FAT).
    pub boot_first: u64,
    pub boot_sectors: u64,
}

impl Layout {
    /// The layout for the window `first..=last` and a core image and boot
    /// partition of these sizes; refused if the core image does not fit
    /// before the window (the window must leave the first MiB, as
    /// partitions do).
    pub fn new(window: (u64, u64), core_bytes: u64, boot_bytes: u64) -> Result<Layout> {
        let (first, last) = window;
        let core_sectors = core_bytes.div_ceil(SECTOR);
        ensure!(
            first > core_sectors,
            "the site partition (the description's client_sectors, {first:#x}-{last:#x}) must start after GRUB's \
             core image (sectors 1-{core_sectors}): start it at {ALIGN:#x} (1 MiB) or later"
        );
        let boot_first = (last + 1).div_ceil(ALIGN) * ALIGN;
        let boot_sectors = boot_bytes.div_ceil(SECTOR * ALIGN) * ALIGN;
        Ok(Layout { core_sectors, site_first: first, site_sectors: last - first + 1, boot_first, boot_sectors })
    }

    /// Sectors of the whole disk.
    pub fn total_sectors(&self) -> u64 {
        self.boot_first + self.boot_sectors
    }

    /// The MBR: `boot_img`'s code with the core image's sector and the
    /// boot-drive check patched as `grub-setup` does, the disk signature,
    /// the two partitions (the boot partition active) and 0x55aa.
    pub fn mbr(&self, boot_img: &[u8], signature: u32) -> Result<[u8; 512]> {
        ensure!(boot_img.len() == 512, "boot.img is {} bytes, not one sector", boot_img.len());
        let mut mbr = [0u8; 512];
        mbr[..DISK_SIGNATURE_AT].copy_from_slice(&boot_img[..DISK_SIGNATURE_AT]);
        mbr[KERNEL_SECTOR_AT..KERNEL_SECTOR_AT + 8].copy_from_slice(&1u64.to_le_bytes());
        mbr[DRIVE_CHECK_AT..DRIVE_CHECK_AT + 2].copy_from_slice(&[0x90, 0x90]);
        mbr[DISK_SIGNATURE_AT..DISK_SIGNATURE_AT + 4].copy_from_slice(&signature.to_le_bytes());
        let entries = [
            (false, TYPE_SITE, self.site_first, self.site_sectors),
            (true, TYPE_BOOT, self.boot_first, self.boot_sectors),
        ];
        for (i, (active, kind, first, sectors)) in entries.into_iter().enumerate() {
            let at = PARTITION_TABLE_AT + 16 * i;
            mbr[at..at + 16].copy_from_slice(&partition_entry(active, kind, first, sectors)?);
        }
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        Ok(mbr)
    }
}

/// One MBR partition entry: status, CHS of the first sector, type, CHS of
/// the last, LBA of the first, sectors. CHS as partitioning tools write
/// it for a disk of 255 heads and 63 sectors a track, 1023/254/63 past its
/// range (firmware and GRUB use the LBA fields).
fn partition_entry(active: bool, kind: u8, first: u64, sectors: u64) -> Result<[u8; 16]> {
    let lba = u32::try_from(first).context("a partition starts past 2 TiB")?;
    let count = u32::try_from(sectors).context("a partition is larger than 2 TiB")?;
    let mut e = [0u8; 16];
    e[0] = if active { 0x80 } else { 0 };
    e[1..4].copy_from_slice(&chs(first));
    e[4] = kind;
    e[5..8].copy_from_slice(&chs(first + sectors - 1));
    e[8..12].copy_from_slice(&lba.to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
    Ok(e)
}

/// The CHS address of `lba` (255 heads, 63 sectors a track), as the
/// partition table encodes it: head, sector and the cylinder's high bits,
/// the cylinder's low byte.
fn chs(lba: u64) -> [u8; 3] {
    let (heads, per_track) = (255, 63);
    let cylinder = lba / (heads * per_track);
    if cylinder > 1023 {
        return [254, 0xff, 0xff];
    }
    let head = (lba / per_track) % heads;
    let sector = lba % per_track + 1;
    [head as u8, (sector as u8) | (((cylinder >> 2) & 0xc0) as u8), (cylinder & 0xff) as u8]
}

/// What [`build`] wrote.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub layout: Layout,
    pub site_bytes: u64,
    pub core_bytes: u64,
    pub efi_bytes: u64,
}

/// Writes the disk image `out` for `built` (its kernel and system image)
/// and the site image `site_image`, laid out for `built`'s description
/// ([`Layout`]). The site image must fit the description's window.
pub fn build(built: &Built, site_image: &Path, out: &Path) -> Result<Written> {
    deps::ensure_packages(PACKAGES)?;
    let window = site::disk_window(&built.system)?
        .with_context(|| format!("{} has no block driver: nothing would read the site", built.system.display()))?;
    site::check_fits_window(&built.system, site_image)?;
    let work = out.with_extension("parts");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let core = work.join("core.img");
    grub_mkimage("i386-pc", "(,msdos2)/boot/grub", &["biosdisk"], &core)?;
    let efi = work.join("BOOTX64.EFI");
    grub_mkimage("x86_64-efi", "/boot/grub", &[], &efi)?;
    let cfg = work.join("grub.cfg");
    fs::write(&cfg, GRUB_CFG)?;

    let len = |p: &Path| fs::metadata(p).map(|m| m.len()).with_context(|| format!("reading {}", p.display()));
    let (core_bytes, efi_bytes) = (len(&core)?, len(&efi)?);
    let files = [
        (built.kernel.elf32.as_path(), "/boot/kernel32.elf"),
        (built.image.as_path(), "/boot/system.elf"),
        (cfg.as_path(), "/boot/grub/grub.cfg"),
        (efi.as_path(), "/EFI/BOOT/BOOTX64.EFI"),
    ];
    let mut contents = 0;
    for (from, _) in &files {
        contents += len(from)?;
    }
    // Room for the FAT's own tables and a kernel or system image that
    // grows: twice the contents, and at least 32 MiB.
    let layout = Layout::new(window, core_bytes, (2 * contents).max(32 << 20))?;

    let boot_img = fs::read(BOOT_IMG).with_context(|| format!("reading {BOOT_IMG}"))?;
    let signature = u32::from_le_bytes(sha_prefix(&fs::read(&built.image)?));
    let mbr = layout.mbr(&boot_img, signature)?;
    let mut disk = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    disk.set_len(layout.total_sectors() * SECTOR)?;
    disk.write_all(&mbr)?;
    disk.write_all(&fs::read(&core)?)?;
    disk.seek(SeekFrom::Start(layout.site_first * SECTOR))?;
    std::io::copy(&mut File::open(site_image)?, &mut disk).context("writing the site partition")?;
    disk.sync_all()?;
    drop(disk);

    // The boot partition, formatted in place (mtools' `FILE@@OFFSET`).
    let part = format!("{}@@{}", out.display(), layout.boot_first * SECTOR);
    mtools(
        Command::new("mformat")
            .args(["-i", &part, "-T", &layout.boot_sectors.to_string(), "-h", "64", "-s", "32"])
            .args(["-H", &layout.boot_first.to_string(), "-v", "NODEBOOT", "::"]),
    )?;
    mtools(Command::new("mmd").args(["-i", &part, "::/boot", "::/boot/grub", "::/EFI", "::/EFI/BOOT"]))?;
    for (from, to) in files {
        mtools(Command::new("mcopy").args(["-i", &part]).arg(from).arg(format!("::{to}")))?;
    }
    fs::remove_dir_all(&work).ok();
    Ok(Written { path: out.to_path_buf(), layout, site_bytes: len(site_image)?, core_bytes, efi_bytes })
}

/// The first four bytes of the SHA-256 of `data`: a disk signature that
/// differs between system images and is the same for the same one.
fn sha_prefix(data: &[u8]) -> [u8; 4] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(data);
    [d[0], d[1], d[2], d[3]]
}

/// `grub-mkimage` for `format` with `prefix`, the [`MODULES`] and `extra`.
fn grub_mkimage(format: &str, prefix: &str, extra: &[&str], out: &Path) -> Result<()> {
    let status = Command::new("grub-mkimage")
        .args(["-O", format, "-p", prefix, "-o"])
        .arg(out)
        .args(extra)
        .args(MODULES)
        .status()
        .context("running grub-mkimage")?;
    ensure!(status.success(), "grub-mkimage -O {format} failed with {status}");
    Ok(())
}

fn mtools(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// What `cargo xtask image` prints: the layout, with the window the
/// description gives the web server, and how to use the file.
pub fn print_report(w: &Written, built: &Built) {
    let l = &w.layout;
    let mib = |sectors: u64| sectors as f64 * SECTOR as f64 / (1 << 20) as f64;
    println!("disk image: {} ({} sectors, {:.1} MiB)", w.path.display(), l.total_sectors(), mib(l.total_sectors()));
    println!("  sector 0            MBR: GRUB boot.img, partition table");
    println!("  sectors 1-{:<9} GRUB i386-pc core image ({} bytes)", l.core_sectors, w.core_bytes);
    println!(
        "  partition 1         sectors {:#x}-{:#x} ({:.0} MiB), type 0xda: the site ({} bytes); the web server's window \
         (client_sectors in {})",
        l.site_first,
        l.site_first + l.site_sectors - 1,
        mib(l.site_sectors),
        w.site_bytes,
        built.system.display()
    );
    println!(
        "  partition 2, active sectors {:#x}-{:#x} ({:.0} MiB), type 0xef, FAT: /boot/grub/grub.cfg, /boot/kernel32.elf \
         ({} config), /boot/system.elf, /EFI/BOOT/BOOTX64.EFI ({} bytes)",
        l.boot_first,
        l.total_sectors() - 1,
        mib(l.boot_sectors),
        built.kernel.config.name(),
        w.efi_bytes
    );
    println!("write it to a USB stick: dd if={} of=/dev/sdX bs=4M conv=fsync", w.path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_partition_is_the_window_and_the_boot_partition_follows_it() {
        let l = Layout::new((0x800, 0x407ff), 148_016, 40 << 20).unwrap();
        assert_eq!(l.core_sectors, 290);
        assert_eq!((l.site_first, l.site_sectors), (0x800, 0x40000));
        assert_eq!((l.boot_first, l.boot_sectors), (0x40800, 40 * 2048));
        assert_eq!(l.total_sectors(), 0x40800 + 40 * 2048);
        // A window that is not MiB-aligned at its end: the boot partition
        // starts at the next MiB.
        assert_eq!(Layout::new((0x800, 0x1000), 512, 1).unwrap().boot_first, 0x1000 + 0x800);
        // A window at sector 0 leaves no room for the boot code.
        let e = Layout::new((0, 0x3ffff), 148_016, 1).unwrap_err().to_string();
        assert!(e.contains("must start after GRUB's core image"), "{e}");
        assert!(Layout::new((290, 0x3ffff), 148_016, 1).is_err());
    }

    #[test]
    fn the_mbr_is_grubs_boot_code_patched_with_the_partitions() {
        let l = Layout::new((0x800, 0x407ff), 148_016, 40 << 20).unwrap();
        let boot_img: Vec<u8> = (0..512).map(|i| i as u8).collect();
        let mbr = l.mbr(&boot_img, 0x1234_5678).unwrap();
        assert_eq!(&mbr[..KERNEL_SECTOR_AT], &boot_img[..KERNEL_SECTOR_AT]);
        assert_eq!(&mbr[KERNEL_SECTOR_AT..KERNEL_SECTOR_AT + 8], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&mbr[DRIVE_CHECK_AT..DRIVE_CHECK_AT + 2], &[0x90, 0x90]);
        assert_eq!(&mbr[0x1b8..0x1bc], &[0x78, 0x56, 0x34, 0x12]);
        let site = &mbr[0x1be..0x1ce];
        assert_eq!((site[0], site[4]), (0, 0xda));
        assert_eq!(u32::from_le_bytes(site[8..12].try_into().unwrap()), 0x800);
        assert_eq!(u32::from_le_bytes(site[12..16].try_into().unwrap()), 0x40000);
        let boot = &mbr[0x1ce..0x1de];
        assert_eq!((boot[0], boot[4]), (0x80, 0xef));
        assert_eq!(u32::from_le_bytes(boot[8..12].try_into().unwrap()), 0x40800);
        assert_eq!(u32::from_le_bytes(boot[12..16].try_into().unwrap()), 40 * 2048);
        assert!(mbr[0x1de..0x1fe].iter().all(|&b| b == 0), "two partitions only");
        assert_eq!(&mbr[510..], &[0x55, 0xaa]);
        // CHS of sector 0x800: cylinder 0, head 32, sector 33.
        assert_eq!(&site[1..4], &[32, 33, 0]);
        assert_eq!(chs(u64::from(u32::MAX)), [254, 0xff, 0xff]);
        assert!(l.mbr(&boot_img[..100], 0).is_err());
    }
}
