//! Booting an image in QEMU (TCG): the command line, and a session that a
//! test can read the serial console of, with timeouts. QEMU is always
//! stopped by its PID when the session ends, whatever happened.

use crate::harness::system::Built;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The CPU model the kernel config expects: fsgsbase (FSGSBASE_INST),
/// 1 GiB pages (HUGE_PAGE), xsaveopt; rdrand for the PDs' secrets
/// (`lib-entropy`; TCG draws it from the host's `getrandom`). `+invtsc`
/// makes TCG refuse to start. The Linux reference guest boots with it too.
pub const CPU: &str = "Nehalem,+fsgsbase,+pdpe1gb,+xsaveopt,+rdrand";

/// The machine: q35 (ICH9) with Intel VT-d, so that every device's DMA
/// goes through the IOMMU and reaches only what the initialiser mapped into
/// its IOSpace (README, "Security: least privilege"). `intel-iommu` must
/// come before the devices it translates; interrupt remapping stays off
/// (seL4 5.0 routes IOAPIC interrupts without it). QEMU's virtio devices
/// use the IOMMU only with `iommu_platform=on` (without it they bypass it):
/// [`NIC_DEVICE`] and [`blk_drive`] set it.
pub const MACHINE: &[&str] = &["-machine", "q35", "-device", "intel-iommu,intremap=off"];

/// The machine without an IOMMU (i440FX, QEMU's `pc`): devices reach all
/// of memory by DMA. Only the IOMMU test boots it, to show that its
/// attack is real where nothing stops it.
pub const MACHINE_WITHOUT_IOMMU: &[&str] = &["-machine", "pc"];

/// The QEMU command for an image. `interactive` puts the serial console on
/// the terminal (with QEMU's monitor on Ctrl-A C); otherwise the console is
/// a plain pipe for a test to read.
/// `extra` adds devices, netdevs and drives.
pub fn command(built: &Built, ram_mib: u64, interactive: bool, extra: &[&str]) -> Command {
    command_on(MACHINE, built, ram_mib, interactive, extra)
}

/// [`command`] on another machine (`machine`: QEMU's `-machine` and the
/// devices that come with it).
pub fn command_on(machine: &[&str], built: &Built, ram_mib: u64, interactive: bool, extra: &[&str]) -> Command {
    let mut cmd = machine_command(machine, ram_mib, interactive);
    cmd.arg("-kernel").arg(&built.kernel.elf32).arg("-initrd").arg(&built.image);
    cmd.args(extra);
    cmd
}

/// The QEMU command for a PC that boots from its disks, as a PC does
/// (firmware, then the boot loader on the disk; no `-kernel`): [`MACHINE`]
/// with `firmware` (`None`: SeaBIOS, a BIOS; `Some(path)`: that image as
/// the BIOS, e.g. OVMF for UEFI) and `extra` (the disk, the NIC). The
/// console is a plain pipe for a test to read.
pub fn command_disk_boot(firmware: Option<&std::path::Path>, ram_mib: u64, extra: &[&str]) -> Command {
    let mut cmd = machine_command(MACHINE, ram_mib, false);
    if let Some(firmware) = firmware {
        cmd.arg("-bios").arg(firmware);
    }
    cmd.args(extra);
    cmd
}

/// `qemu-system-x86_64` on `machine` with the CPU, memory and console,
/// booting nothing yet.
fn machine_command(machine: &[&str], ram_mib: u64, interactive: bool) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(machine)
        .args(["-accel", "tcg", "-cpu", CPU, "-m"])
        .arg(ram_mib.to_string())
        .args(["-nographic", "-no-reboot"])
        .args(DEBUG_THREADS)
        .args(if interactive { ["-serial", "mon:stdio"] } else { ["-serial", "stdio"] });
    if !interactive {
        cmd.args(["-monitor", "none"]);
    }
    cmd
}

/// Names QEMU's threads (the vCPU's is `CPU 0/TCG`), so that
/// [`Session::vcpu_seconds`] can tell it from the I/O thread.
pub const DEBUG_THREADS: &[&str] = &["-name", "guest,debug-threads=on"];

/// The NIC every system is given: virtio-net, modern only, at PCI 00:03.0
/// as the system descriptions expect, on the netdev `n0`, without an
/// option ROM (`romfile=`): SeaBIOS would otherwise run QEMU's iPXE ROM at
/// every boot, which none of the systems uses (they boot by `-kernel`);
/// behind the IOMMU (`iommu_platform=on`, see [`MACHINE`]).
pub const NIC_DEVICE: &str = "virtio-net-pci,disable-legacy=on,iommu_platform=on,addr=3,netdev=n0,romfile=";

/// The Intel 82574L (QEMU's `e1000e`, PCI 8086:10d3) in [`NIC_DEVICE`]'s
/// place, PCI 00:03.0 on the netdev `n0` without an option ROM, for the
/// systems whose NIC driver is `drivers/e1000e` (`Built::nic` says which a
/// system needs). QEMU's emulated NICs always DMA through the IOMMU.
pub const E1000E_DEVICE: &str = "e1000e,netdev=n0,addr=3,romfile=";

/// [`NIC_DEVICE`] as it was before the IOMMU, for the benchmarks' Linux
/// guest, which boots its own machine (`-machine pc`) and stays as its
/// published figures were measured.
pub const NIC_DEVICE_WITHOUT_IOMMU: &str = "virtio-net-pci,disable-legacy=on,addr=3,netdev=n0,romfile=";

/// QEMU arguments for the NIC `device` ([`NIC_DEVICE`], `Built::nic`,
/// [`NIC_DEVICE_WITHOUT_IOMMU`], ...) on an existing TAP device.
pub fn tap_nic_device(ifname: &str, device: &str) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!("tap,id=n0,ifname={ifname},script=no,downscript=no"),
        "-device".into(),
        device.into(),
    ]
}

/// QEMU arguments for the NIC on a `dgram` netdev: each Ethernet frame is a
/// UDP datagram between QEMU's `127.0.0.1:qemu_port` and the test's
/// `127.0.0.1:peer_port` (no root needed for the link itself).
pub fn dgram_nic(qemu_port: u16, peer_port: u16) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!(
            "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={qemu_port},remote.type=inet,remote.host=127.0.0.1,remote.port={peer_port}"
        ),
        "-device".into(),
        NIC_DEVICE.into(),
    ]
}

/// Where `cargo xtask run` forwards the node's port 80 on the host.
pub const HOST_HTTP: &str = "127.0.0.1:8080";

/// QEMU arguments for the NIC on QEMU's user-mode network (no root
/// needed): the guest sits behind a NAT at 10.0.2.0/24, gateway 10.0.2.2;
/// connections to the host's [`HOST_HTTP`] are forwarded to the node's
/// port 80 (QEMU connects from 10.0.2.2 to the guest's 10.0.2.15).
pub fn user_nic() -> Vec<String> {
    user_nic_forwarding(HOST_HTTP)
}

/// Where `cargo xtask run` forwards the node's FTP control port on the
/// host (its passive ports are forwarded to the same port numbers).
pub const HOST_FTP: &str = "127.0.0.1:8021";

/// [`user_nic`] for a node that serves `served`: HTTP on [`HOST_HTTP`],
/// FTP's control port on [`HOST_FTP`] and each passive port on the same
/// port of 127.0.0.1 (an EPSV reply names only the port, which then
/// works from the host; a PASV reply names the node's 10.0.2.15, which
/// clients must ignore: curl's `--ftp-skip-pasv-ip`, lftp's
/// `ftp:ignore-pasv-address`, Python's ftplib does by default).
/// `device` is the NIC's `-device` ([`NIC_DEVICE`], or `Built::nic`).
pub fn user_nic_serving(served: &crate::harness::system::Served, device: &str) -> Vec<String> {
    let mut netdev = format!("user,id=n0,hostfwd=tcp:{HOST_HTTP}-:{}", served.http.unwrap_or(80));
    if let Some((control, first, last)) = served.ftp {
        netdev.push_str(&format!(",hostfwd=tcp:{HOST_FTP}-:{control}"));
        for port in first..=last {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:{port}"));
        }
    }
    vec!["-netdev".into(), netdev, "-device".into(), device.into()]
}

/// [`user_nic`], forwarding the host's `host_addr` (`127.0.0.1:PORT`) to
/// the guest's port 80.
pub fn user_nic_forwarding(host_addr: &str) -> Vec<String> {
    vec!["-netdev".into(), format!("user,id=n0,hostfwd=tcp:{host_addr}-:80"), "-device".into(), NIC_DEVICE.into()]
}

/// A loopback address whose port was free a moment ago, for a forward QEMU
/// binds (another process could take it meanwhile; QEMU then fails to
/// start and says so).
pub fn free_loopback_addr() -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Ok(format!("127.0.0.1:{port}"))
}

/// QEMU arguments for a modern virtio-blk device at PCI 00:05.0 (as the
/// system descriptions expect) on a raw disk image, behind the IOMMU
/// (`iommu_platform=on`, see [`MACHINE`]).
pub fn blk_drive(image: &std::path::Path, read_only: bool) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},if=none,id=d0,format=raw{}", image.display(), if read_only { ",readonly=on" } else { "" }),
        "-device".into(),
        "virtio-blk-pci,disable-legacy=on,iommu_platform=on,addr=5,drive=d0".into(),
    ]
}

/// QEMU arguments for a bootable disk image (`cargo xtask image`) as the
/// PC's only disk: the same virtio-blk device as [`blk_drive`] (PCI
/// 00:05.0, modern only, behind the IOMMU), first in the boot order.
pub fn boot_drive(image: &std::path::Path, read_only: bool) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},if=none,id=d0,format=raw{}", image.display(), if read_only { ",readonly=on" } else { "" }),
        "-device".into(),
        "virtio-blk-pci,disable-legacy=on,iommu_platform=on,addr=5,drive=d0,bootindex=0".into(),
    ]
}

pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running QEMU whose serial output is read line by line.
/// `sysconf(_SC_CLK_TCK)` on Linux (USER_HZ, the unit of `/proc`'s times).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

pub struct Session {
    child: Child,
    lines: Receiver<String>,
    started: Instant,
    /// Every line seen so far, for failure messages.
    pub transcript: Vec<String>,
}

impl Session {
    pub fn start(mut cmd: Command) -> Result<Session> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn().context("starting qemu-system-x86_64")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Session { child, lines, started, transcript: Vec::new() })
    }

    /// Waits for a line containing `needle`; returns it with the time since
    /// start. Fails after `timeout` or if QEMU exits.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<(String, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let line = line.trim_matches('\r').to_string();
                    self.transcript.push(line.clone());
                    if line.contains(needle) {
                        return Ok((line, self.started.elapsed()));
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!("no line containing {needle:?} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("QEMU exited before printing {needle:?}"),
            }
        }
    }

    /// The first line containing `needle`, whether already read (by an
    /// earlier `expect` waiting for something else) or still to come.
    pub fn seen_or_expect(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        match self.transcript.iter().find(|l| l.contains(needle)) {
            Some(line) => Ok(line.clone()),
            None => Ok(self.expect(needle, timeout)?.0),
        }
    }

    /// Host CPU seconds QEMU has used so far (user and system, from
    /// `/proc/PID/stat`; the child is QEMU itself, or `ip netns exec`,
    /// which execs it). `None` if it cannot be read.
    pub fn cpu_seconds(&self) -> Option<f64> {
        stat_cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Host CPU seconds QEMU's vCPU threads have used so far (threads
    /// named `CPU N/...`, from [`DEBUG_THREADS`]): the guest's own time,
    /// without the I/O thread's copying of frames. `None` if they cannot be
    /// read (QEMU not started with [`DEBUG_THREADS`], or gone).
    pub fn vcpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id();
        let mut total = None;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("CPU ") {
                continue;
            }
            *total.get_or_insert(0.0) += stat_cpu_seconds(&task.path().join("stat").to_string_lossy())?;
        }
        total
    }

    /// After a failed check: collects what QEMU still prints and prints
    /// the whole console transcript, so the reason shows in CI logs.
    pub fn print_transcript(&mut self) {
        self.drain(Duration::from_millis(500), Duration::from_secs(2));
        let lines: Vec<String> = self.transcript.iter().map(|l| format!("   | {l}")).collect();
        println!("   serial output:\n{}", lines.join("\n"));
    }

    /// Collects lines until none arrive for `quiet` (or `max` passes).
    pub fn drain(&mut self, quiet: Duration, max: Duration) {
        let end = Instant::now() + max;
        while Instant::now() < end {
            match self.lines.recv_timeout(quiet) {
                Ok(line) => self.transcript.push(line.trim_matches('\r').to_string()),
                Err(_) => break,
            }
        }
    }

    /// Index of the first transcript line containing `needle`.
    pub fn position(&self, needle: &str) -> Option<usize> {
        self.transcript.iter().position(|l| l.contains(needle))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Kill by PID, then reap, so no QEMU outlives its test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User and system CPU seconds in a `/proc/.../stat` file (a process's or
/// a thread's). The fields after the command name (which may hold spaces)
/// in parentheses: utime and stime are the 14th and 15th of the line.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / CLOCK_TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::stat_cpu_seconds;

    /// The process's and a thread's CPU time read from their stat files
    /// (the command name in parentheses may hold spaces and parentheses).
    #[test]
    fn cpu_seconds_from_proc_stat() {
        // Burn some CPU so the count is above zero.
        let spin: u64 = (0..20_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert_ne!(spin, 1);
        let process = stat_cpu_seconds("/proc/self/stat").expect("our own stat");
        assert!(process > 0.0, "{process}");
        let tid = std::fs::read_link("/proc/thread-self").expect("thread-self");
        let thread = stat_cpu_seconds(&format!("/proc/{}/stat", tid.display())).expect("our thread's stat");
        assert!(thread <= process + 0.01, "{thread} > {process}");
        assert_eq!(stat_cpu_seconds("/proc/self/nonexistent"), None);
        let dir = std::env::temp_dir().join(format!("stat-test-{}", std::process::id()));
        std::fs::write(&dir, "1 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0\n").unwrap();
        let odd = stat_cpu_seconds(&dir.to_string_lossy());
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(odd, Some(300.0 / super::CLOCK_TICKS_PER_SECOND));
    }
}
