//! The Linux reference guest: what every benchmark figure of this project is
//! compared with.
//!
//! A figure of our system means little alone, so each is printed beside the
//! same measure taken, in the same run, from Linux on the same emulated
//! machine (README, "Benchmarks": how the guest is built and run, and why
//! its nginx is configured as it is). This module builds that Linux
//! guest from Debian packages only and boots it with the device configuration
//! our system uses; `crate::bench` measures it:
//!
//! - [`build`]: a Debian kernel and a small initramfs (busybox, the virtio
//!   modules, two C programs from `xtask/linux-guest/`, and nginx with the
//!   shared libraries it links), cached by a hash of every input;
//! - [`build_with_ftp`]: the same guest with vsftpd added (from the Debian
//!   package, with the libraries it links and `xtask/linux-guest/vsftpd.conf`),
//!   for the FTP benchmark: a second cpio archive after the first, so
//!   that the plain guest, which the other benchmarks boot, stays as it
//!   was, byte for byte but for /init;
//! - [`with_document_root`]: that guest with a web site added at `/www`
//!   (a second cpio archive after the first, which the kernel unpacks over
//!   it), for the web benchmark;
//! - [`qemu_command`]: the QEMU command, in `mode=echo` (every Ethernet
//!   frame received is sent back unchanged, as our echo PD does),
//!   `mode=diskread` (read all of the disk with O_DIRECT, timed in the
//!   guest), `mode=nginx` (nginx serving `/www` on 10.0.2.15:80, the
//!   address our web node has, configured by `xtask/linux-guest/nginx.conf`)
//!   or `mode=nginx-vsftpd` (the same nginx, then vsftpd serving `/www` by
//!   anonymous FTP on port 21, passive ports 50000-50031, configured by
//!   `xtask/linux-guest/vsftpd.conf`; only with [`build_with_ftp`]'s guest);
//! - [`measure`]: the guest booted for each measure, and [`smoke_test`].

mod cpio;
mod debian;
pub mod measure;

#[allow(unused_imports)] // Until `cargo xtask bench` and `test` call them.
pub use measure::smoke_test;

use crate::harness::deps::{self, Package};
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A built guest: what QEMU's `-kernel` and `-initrd` take.
#[derive(Clone, Debug)]
pub struct Guest {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
}

// Our kernel's CPU model, used for Linux too so that both run on the same
// emulated processor (Linux boots with it and seeds its RNG from RDRAND).
use crate::harness::qemu::CPU;

/// Guest RAM, as our system's default.
const RAM_MIB: &str = "512";

/// The Debian meta-package whose dependency is the guest's kernel.
const KERNEL_META: &str = "linux-image-amd64";

/// The guest's shell and tools: one static binary, nothing else to copy.
const BUSYBOX: &str = "busybox-static";

/// Kernel modules the guest loads, in dependency order (`modinfo -F
/// depends`): Debian builds virtio support as modules.
const MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
];

/// The Debian package of the guest's web server. In Debian 12 `nginx-light`
/// is a transitional package that depends on this one, which holds
/// `/usr/sbin/nginx` (modules are separate packages; the guest loads none).
const NGINX: &str = "nginx";

/// nginx's path in its package and in the guest.
const NGINX_BINARY: &str = "usr/sbin/nginx";

/// The Debian package of the guest's FTP server (the FTP benchmark's
/// reference), and its binary's path in the package and in the guest.
const VSFTPD: &str = "vsftpd";
const VSFTPD_BINARY: &str = "usr/sbin/vsftpd";

/// The guest's users: root, and nobody for nginx's worker (and vsftpd's
/// unprivileged side).
const PASSWD: &str = "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
/// vsftpd's anonymous user (`ftp_username`), whose home is the document
/// root (`anon_root`): added by the FTP variant.
const FTP_USER: &str = "ftp:x:100:101:ftp:/www:/bin/false\n";
const FTP_GROUP: &str = "ftp:x:101:\n";

/// Where the web benchmark's guests keep their document root: `/www`.
const DOCUMENT_ROOT: &str = "www";

/// Guest programs, compiled on the host: (source in `xtask/linux-guest/`,
/// path in the guest).
const PROGRAMS: &[(&str, &str)] = &[("frame-echo.c", "bin/frame-echo"), ("disk-read.c", "bin/disk-read")];

/// Host tools the build runs. apt-get, apt-cache and dpkg come with every
/// Debian system.
#[rustfmt::skip]
const BUILD_TOOLS: &[Package] = &[
    Package { name: "gcc", probe: "gcc" },
    // For `gcc -static`.
    Package { name: "libc6-dev", probe: "/usr/lib/x86_64-linux-gnu/libc.a" },
    // The libraries vsftpd links (ldd resolves them on the host, and the
    // guest gets the host's copies; their own dependencies come with them).
    // The host needs no vsftpd, which would start a server on its port 21.
    Package { name: "libwrap0", probe: "/lib/x86_64-linux-gnu/libwrap.so.0" },
    Package { name: "libpam0g", probe: "/lib/x86_64-linux-gnu/libpam.so.0" },
    Package { name: "libcap2", probe: "/lib/x86_64-linux-gnu/libcap.so.2" },
    Package { name: "libssl3", probe: "/lib/x86_64-linux-gnu/libssl.so.3" },
];

/// The source of the build recipe itself, hashed into the cache key so that
/// a change to how the guest is put together rebuilds it.
const RECIPE: &[&str] = &[include_str!("mod.rs"), include_str!("cpio.rs")];

/// Builds the guest, or reuses the cached build.
///
/// Everything lives under `<workspace>/target/linux-guest/`: the downloaded
/// .debs in `debs/`, the guest in `<key>/`, where the key hashes every input
/// (see [`Inputs`]). The kernel and busybox versions are the ones apt would
/// install now, so a Debian update rebuilds the guest.
pub fn build(ws: &Path) -> Result<Guest> {
    Ok(build_both(ws)?.0)
}

/// [`build`]'s guest with vsftpd: its initramfs followed by a second
/// archive holding vsftpd, its configuration, the libraries it links that
/// nginx does not, its empty `secure_chroot_dir`, and `/etc/passwd` and
/// `/etc/group` with the `ftp` user added. Built and cached with it.
pub fn build_with_ftp(ws: &Path) -> Result<Guest> {
    Ok(build_both(ws)?.1)
}

/// The plain guest and its FTP variant (same kernel).
fn build_both(ws: &Path) -> Result<(Guest, Guest)> {
    deps::ensure_packages(BUILD_TOOLS)?;
    let inputs = Inputs::collect(ws)?;
    let root = ws.join("target/linux-guest");
    let dir = root.join(inputs.key());
    let guest = Guest { kernel: dir.join("vmlinuz"), initramfs: dir.join("initramfs.cpio") };
    let ftp = Guest { kernel: guest.kernel.clone(), initramfs: dir.join("initramfs-ftp.cpio") };
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;

    // Parallel xtask processes wanting the same guest: the second waits here
    // and then finds it cached.
    let lock_path = root.join(format!("{}.lock", inputs.key()));
    let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;

    let stamp = dir.join("build-inputs.txt");
    if stamp.is_file() && guest.kernel.is_file() && guest.initramfs.is_file() && ftp.initramfs.is_file() {
        return Ok((guest, ftp));
    }
    let start = Instant::now();
    recreate_dir(&dir)?;
    let scratch = dir.join("scratch");
    let kernel_root = scratch.join("kernel");
    let busybox_root = scratch.join("busybox");
    let nginx_root = scratch.join("nginx");
    let vsftpd_root = scratch.join("vsftpd");
    debian::unpack(&inputs.kernel.fetch(&root.join("debs"))?, &kernel_root)?;
    debian::unpack(&inputs.busybox.fetch(&root.join("debs"))?, &busybox_root)?;
    debian::unpack(&inputs.nginx.fetch(&root.join("debs"))?, &nginx_root)?;
    debian::unpack(&inputs.vsftpd.fetch(&root.join("debs"))?, &vsftpd_root)?;

    copy(&find_vmlinuz(&kernel_root)?, &guest.kernel)?;
    let roots = Roots { kernel: &kernel_root, busybox: &busybox_root, nginx: &nginx_root };
    let (mut initramfs, libraries) = initramfs(ws, &inputs, &roots, &scratch)?;
    fs::write(&guest.initramfs, &initramfs).with_context(|| format!("writing {}", guest.initramfs.display()))?;
    let (overlay, ftp_libraries) = ftp_overlay(&inputs, &nginx_root, &vsftpd_root)?;
    // Each archive of a concatenation starts on a 4-byte boundary; ours end
    // on one.
    ensure!(initramfs.len() % 4 == 0, "the initramfs does not end on a 4-byte boundary");
    initramfs.extend(overlay);
    fs::write(&ftp.initramfs, &initramfs).with_context(|| format!("writing {}", ftp.initramfs.display()))?;
    fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    // Written last: its presence marks the build as complete.
    fs::write(&stamp, inputs.describe() + &libraries + &ftp_libraries)
        .with_context(|| format!("writing {}", stamp.display()))?;
    println!("linux guest: built {} in {:.1} s", dir.display(), start.elapsed().as_secs_f64());
    Ok((guest, ftp))
}

/// The QEMU command that boots the guest in `mode` (`echo`, `diskread`, `nginx`
/// or, with [`build_with_ftp`]'s guest, `nginx-vsftpd`),
/// in the configuration our system boots in (see harness/qemu.rs), with the caller's
/// devices in `extra`: say a virtio-net-pci or virtio-blk-pci device and its
/// backend.
///
/// The serial console is QEMU's stdout, for [`crate::harness::qemu::Session`]. The
/// kernel runs `quiet`; `panic=-1` turns a kernel panic (or /init dying)
/// into a reboot, which `-no-reboot` turns into QEMU exiting, so a broken
/// guest fails a test at once rather than at its timeout.
#[rustfmt::skip] // One line per group of options reads best.
pub fn qemu_command(guest: &Guest, mode: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "pc", "-accel", "tcg", "-cpu", CPU, "-m", RAM_MIB]);
    cmd.args(["-nographic", "-no-reboot", "-serial", "stdio", "-monitor", "none"]);
    cmd.args(crate::harness::qemu::DEBUG_THREADS);
    cmd.arg("-kernel").arg(&guest.kernel);
    cmd.arg("-initrd").arg(&guest.initramfs);
    cmd.arg("-append").arg(format!("console=ttyS0 quiet panic=-1 mode={mode}"));
    cmd.args(extra);
    cmd
}

/// Everything a guest build depends on, and hence its cache key.
#[derive(Debug)]
struct Inputs {
    kernel: debian::Package,
    busybox: debian::Package,
    nginx: debian::Package,
    vsftpd: debian::Package,
    /// The files of `xtask/linux-guest/` that go into the guest, by name.
    files: Vec<(&'static str, Vec<u8>)>,
    /// `gcc --version`: it compiles the guest's programs.
    gcc_version: String,
}

impl Inputs {
    fn collect(ws: &Path) -> Result<Self> {
        let dir = ws.join("xtask/linux-guest");
        let names = ["init", "nginx.conf", "vsftpd.conf"].into_iter().chain(PROGRAMS.iter().map(|(source, _)| *source));
        let files = names.map(|name| Ok((name, read(&dir.join(name))?))).collect::<Result<_>>()?;
        Ok(Inputs {
            kernel: debian::Package::kernel_of(KERNEL_META)?,
            busybox: debian::Package::candidate(BUSYBOX)?,
            nginx: debian::Package::candidate(NGINX)?,
            vsftpd: debian::Package::candidate(VSFTPD)?,
            files,
            gcc_version: first_line_of(Command::new("gcc").arg("--version"))?,
        })
    }

    fn file(&self, name: &str) -> &[u8] {
        &self.files.iter().find(|(n, _)| *n == name).expect("every guest file is collected").1
    }

    /// A readable account of the inputs, kept beside the build.
    fn describe(&self) -> String {
        let mut text = String::new();
        for pkg in [&self.kernel, &self.busybox, &self.nginx, &self.vsftpd] {
            text += &format!("package {} {}\n", pkg.name, pkg.version);
        }
        for (name, content) in &self.files {
            text += &format!("file {name} {}\n", sha256_hex(content));
        }
        text += &format!("modules {}\n", MODULES.join(" "));
        text += &format!("gcc {}\n", self.gcc_version);
        text += &format!("recipe {}\n", sha256_hex(RECIPE.concat().as_bytes()));
        text
    }

    fn key(&self) -> String {
        sha256_hex(self.describe().as_bytes())[..16].to_owned()
    }
}

/// The unpacked Debian packages a guest is made of.
struct Roots<'a> {
    kernel: &'a Path,
    busybox: &'a Path,
    nginx: &'a Path,
}

/// The initramfs: /init, busybox as /bin/sh (init installs its other
/// applets), the modules as `/lib/modules/<name>.ko` with their load order
/// in /etc/modules, the guest programs, and nginx with its configuration and
/// libraries. Also returns a list of the libraries copied from the host
/// (path and hash), for the build's record.
fn initramfs(ws: &Path, inputs: &Inputs, roots: &Roots, scratch: &Path) -> Result<(Vec<u8>, String)> {
    let (kernel_root, busybox_root) = (roots.kernel, roots.busybox);
    let mut archive = cpio::Archive::new();
    #[rustfmt::skip]
    let dirs = [
        "bin", "dev", "etc", "etc/nginx", "lib", "lib/modules", "lib64", "lib/x86_64-linux-gnu", "proc", "run",
        "sys", "tmp", "usr", "usr/sbin", "var", "var/lib", "var/lib/nginx", "var/log", "var/log/nginx",
        DOCUMENT_ROOT,
    ];
    for dir in dirs {
        archive.dir(dir, 0o755);
    }
    // The kernel opens it as PID 1's stdin/stdout/stderr before /init runs,
    // so it must exist before devtmpfs is mounted.
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("init", 0o755, inputs.file("init"));
    archive.file("bin/busybox", 0o755, &read(&busybox_root.join("bin/busybox"))?);
    archive.symlink("bin/sh", "busybox");

    let modules = module_index(kernel_root)?;
    for name in MODULES {
        let path = modules.get(*name).with_context(|| format!("module {name} not found in the kernel package"))?;
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, &module_bytes(path)?);
    }
    archive.file("etc/modules", 0o644, (MODULES.join("\n") + "\n").as_bytes());

    for (source, dest) in PROGRAMS {
        let binary = scratch.join(source.trim_end_matches(".c"));
        compile(&ws.join("xtask/linux-guest").join(source), &binary)?;
        archive.file(dest, 0o755, &read(&binary)?);
    }

    // nginx: the binary, its configuration, the users it names, and the
    // libraries the dynamic loader will look for, at the paths ldd gives.
    let nginx = roots.nginx.join(NGINX_BINARY);
    archive.file(NGINX_BINARY, 0o755, &read(&nginx)?);
    archive.file("etc/nginx/nginx.conf", 0o644, inputs.file("nginx.conf"));
    archive.file("etc/passwd", 0o644, PASSWD.as_bytes());
    archive.file("etc/group", 0o644, GROUP.as_bytes());
    archive.file("etc/nsswitch.conf", 0o644, b"passwd: files\ngroup: files\n");
    let record = add_libraries(&mut archive, "nginx", &shared_libraries(&nginx)?, &[])?;
    Ok((archive.finish(), record))
}

/// The FTP variant's second archive (see [`build_with_ftp`]), and the list
/// of the libraries it copied from the host.
fn ftp_overlay(inputs: &Inputs, nginx_root: &Path, vsftpd_root: &Path) -> Result<(Vec<u8>, String)> {
    let mut archive = cpio::Archive::new();
    // var/run is new; vsftpd refuses to start without its empty
    // secure_chroot_dir, which must not be writable by the ftp user.
    for dir in ["var/run", "var/run/vsftpd", "var/run/vsftpd/empty"] {
        archive.dir(dir, 0o755);
    }
    let vsftpd = vsftpd_root.join(VSFTPD_BINARY);
    archive.file(VSFTPD_BINARY, 0o755, &read(&vsftpd)?);
    // vsftpd refuses a configuration file not owned by root (the archive's
    // files are).
    archive.file("etc/vsftpd.conf", 0o644, inputs.file("vsftpd.conf"));
    archive.file("etc/passwd", 0o644, (PASSWD.to_owned() + FTP_USER).as_bytes());
    archive.file("etc/group", 0o644, (GROUP.to_owned() + FTP_GROUP).as_bytes());
    let present = shared_libraries(&nginx_root.join(NGINX_BINARY))?;
    let record = add_libraries(&mut archive, "vsftpd", &shared_libraries(&vsftpd)?, &present)?;
    Ok((archive.finish(), record))
}

/// Adds the host's `libraries` that `binary` links to `archive`, at the
/// paths ldd gave, except those in `present` (already in the guest); a
/// line per library (path and hash) for the build's record.
fn add_libraries(
    archive: &mut cpio::Archive,
    binary: &str,
    libraries: &[PathBuf],
    present: &[PathBuf],
) -> Result<String> {
    let mut record = String::new();
    for library in libraries.iter().filter(|l| !present.contains(l)) {
        let bytes = read(library)?;
        let path = library.to_string_lossy().trim_start_matches('/').to_owned();
        ensure!(
            path.starts_with("lib/x86_64-linux-gnu/") || path.starts_with("lib64/"),
            "{binary} links {path}, outside the guest's library folders"
        );
        record += &format!("library {path} {}\n", sha256_hex(&bytes));
        archive.file(&path, 0o755, &bytes);
    }
    Ok(record)
}

/// The shared libraries `binary` needs, as absolute paths on the host
/// (`ldd`'s `name => /path (address)` lines and the loader's own line).
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output().context("running ldd")?;
    ensure!(out.status.success(), "ldd {} failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = text.lines().filter(|l| l.contains("not found")).map(str::trim).collect();
    ensure!(missing.is_empty(), "{} links libraries the host lacks: {}", binary.display(), missing.join("; "));
    let libraries: Vec<PathBuf> = parse_ldd(&text);
    ensure!(libraries.iter().any(|l| l.ends_with("libc.so.6")), "ldd {} lists no libc:\n{text}", binary.display());
    Ok(libraries)
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = line.split_once("=>").map_or(line, |(_, p)| p.trim());
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// `guest` with the files of `root` added under `/www`: its initramfs
/// followed by a second archive of the site (the kernel unpacks each in
/// turn), written to `out`. The files keep their relative paths.
pub fn with_document_root(guest: &Guest, root: &Path, out: &Path) -> Result<Guest> {
    let mut archive = cpio::Archive::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for path in read_dir(&dir)? {
            let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
            let inside = format!("{DOCUMENT_ROOT}/{relative}");
            if path.is_dir() {
                archive.dir(&inside, 0o755);
                pending.push(path);
            } else {
                archive.file(&inside, 0o644, &read(&path)?);
            }
        }
    }
    let mut bytes = read(&guest.initramfs)?;
    // Each archive of a concatenation starts on a 4-byte boundary; ours end
    // on one already.
    ensure!(bytes.len() % 4 == 0, "{} does not end on a 4-byte boundary", guest.initramfs.display());
    bytes.extend(archive.finish());
    fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(Guest { kernel: guest.kernel.clone(), initramfs: out.to_path_buf() })
}

/// The kernel image of an unpacked linux-image package: `boot/vmlinuz-*`.
fn find_vmlinuz(kernel_root: &Path) -> Result<PathBuf> {
    let boot = kernel_root.join("boot");
    let found: Vec<PathBuf> = read_dir(&boot)?
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .collect();
    match found.as_slice() {
        [vmlinuz] => Ok(vmlinuz.clone()),
        _ => bail!("expected one vmlinuz-* in {}, found {}", boot.display(), found.len()),
    }
}

/// Every module file of an unpacked linux-image package, by module name
/// (`virtio_net` for `.../virtio_net.ko`, `.ko.xz` or `.ko.zst`).
fn module_index(kernel_root: &Path) -> Result<HashMap<String, PathBuf>> {
    let releases = read_dir(&kernel_root.join("lib/modules"))?;
    let [release] = releases.as_slice() else {
        bail!("expected one kernel release under {}/lib/modules, found {}", kernel_root.display(), releases.len());
    };
    let mut index = HashMap::new();
    let mut pending = vec![release.join("kernel")];
    while let Some(dir) = pending.pop() {
        for path in read_dir(&dir)? {
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = module_name(&path) {
                index.insert(name, path);
            }
        }
    }
    Ok(index)
}

/// The module name of a module file, `None` for other files.
fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    [".ko", ".ko.xz", ".ko.zst"].iter().find_map(|ext| file.strip_suffix(ext)).map(str::to_owned)
}

/// A module's plain ELF bytes: compressed modules are decompressed here, as
/// busybox's insmod may not be built to read them.
fn module_bytes(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Package { name: "xz-utils", probe: "xz" }
    } else if name.ends_with(".zst") {
        Package { name: "zstd", probe: "zstd" }
    } else {
        return read(path);
    };
    deps::ensure_packages(&[tool])?;
    let out = Command::new(tool.probe)
        .arg("-dc")
        .arg(path)
        .output()
        .with_context(|| format!("running {} on {}", tool.probe, path.display()))?;
    ensure!(out.status.success(), "{} -dc {name} failed: {}", tool.probe, String::from_utf8_lossy(&out.stderr));
    Ok(out.stdout)
}

/// Compiles a guest program statically: the initramfs has no libraries.
fn compile(source: &Path, binary: &Path) -> Result<()> {
    let status = Command::new("gcc")
        .args(["-O2", "-static", "-Wall", "-Wextra", "-o"])
        .arg(binary)
        .arg(source)
        .status()
        .context("running gcc")?;
    ensure!(status.success(), "compiling {} failed ({status})", source.display());
    Ok(())
}

fn first_line_of(cmd: &mut Command) -> Result<String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().with_context(|| format!("running {name}"))?;
    ensure!(out.status.success(), "{name} failed with {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_owned())
}

/// The entries of a directory, sorted so that every walk is the same.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn recreate_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_drop_every_kind_of_extension() {
        assert_eq!(module_name(Path::new("a/virtio_net.ko")).as_deref(), Some("virtio_net"));
        assert_eq!(module_name(Path::new("a/virtio.ko.xz")).as_deref(), Some("virtio"));
        assert_eq!(module_name(Path::new("a/failover.ko.zst")).as_deref(), Some("failover"));
        assert_eq!(module_name(Path::new("a/modules.dep")), None);
    }

    #[test]
    fn ldd_lines_give_the_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007fb1469f7000)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n";
        let want: Vec<PathBuf> = vec!["/lib/x86_64-linux-gnu/libz.so.1".into(), "/lib64/ld-linux-x86-64.so.2".into()];
        assert_eq!(parse_ldd(text), want);
    }

    #[test]
    fn command_boots_the_mode_with_the_callers_devices() {
        let guest = Guest { kernel: "/k".into(), initramfs: "/i".into() };
        let cmd = qemu_command(&guest, "echo", &["-device", "x"]);
        let line = crate::harness::qemu::command_line(&cmd);
        assert!(line.contains(&format!("-cpu {CPU} -m 512")), "{line}");
        assert!(line.contains("-kernel /k -initrd /i -append console=ttyS0 quiet panic=-1 mode=echo"), "{line}");
        assert!(line.ends_with("-device x"), "{line}");
    }
}
