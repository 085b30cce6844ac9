//! A network namespace holding a TAP device: the wire of a system booted
//! in QEMU inside it, with the host's tools (ping, curl, wrk, tcpdump,
//! hping3, Python) on the other end. Nothing touches the machine's own
//! network. Used by the integration tests and the benchmarks; needs root.

use super::qemu::{self, Session};
use super::system::{self, Built};
use anyhow::{ensure, Context, Result};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The TAP device inside each namespace.
pub const TAP: &str = "tap0";
/// The host's end of the link.
pub const HOST_IP: &str = "10.0.2.2";
/// The node's address (from the descriptions; the Linux guest of the
/// benchmarks is given the same one).
pub const NODE_IP: &str = "10.0.2.15";

/// A network namespace with a TAP device whose host end is [`HOST_IP`]/24.
/// Deleted (with the TAP device) when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Result<Netns> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!("sel4-node-{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        run(Command::new("ip").args(["netns", "add", &name])).context("creating a network namespace (needs root)")?;
        let ns = Netns { name };
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["tuntap", "add", "dev", TAP, "mode", "tap"],
            vec!["addr", "add", &format!("{HOST_IP}/24"), "dev", TAP],
            vec!["link", "set", TAP, "up"],
        ] {
            run(Command::new("ip").arg("-n").arg(&ns.name).args(&args))?;
        }
        Ok(ns)
    }

    /// The namespace's name (for `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program args...` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Moves the calling thread into the namespace (network namespaces
    /// are per thread), so that its sockets reach the node.
    pub fn enter(&self) -> Result<()> {
        use std::os::fd::AsRawFd;
        extern "C" {
            fn setns(fd: i32, nstype: i32) -> i32;
        }
        const CLONE_NEWNET: i32 = 0x4000_0000;
        let path = format!("/var/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns(2) with a valid open descriptor of a network
        // namespace; it only changes the calling thread's namespace.
        let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
        ensure!(rc == 0, "setns {path}: {}", std::io::Error::last_os_error());
        Ok(())
    }

    /// Runs a Python program inside the namespace; its output.
    pub fn python(&self, script: &str, args: &[&str]) -> Result<Output> {
        let out =
            self.command("/usr/bin/python3").arg("-c").arg(script).args(args).output().context("running python3")?;
        ensure!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(out)
    }

    /// Starts `qemu` (a QEMU command without a NIC) inside the namespace,
    /// with a virtio-net NIC (`device`: [`qemu::NIC_DEVICE`] behind the
    /// IOMMU, or another) on the TAP device.
    pub fn start_on_tap(&self, qemu: Command, device: &str) -> Result<Session> {
        let mut cmd = self.command(&qemu.get_program().to_string_lossy());
        cmd.args(qemu.get_args()).args(qemu::tap_nic_device(TAP, device));
        Session::start(cmd)
    }

    /// Boots `built` in QEMU inside the namespace, on the TAP device.
    /// (`ip netns exec` execs QEMU, so the session's PID is QEMU's.)
    pub fn boot(&self, built: &Built) -> Result<Session> {
        self.boot_with(built, &[])
    }

    /// [`Netns::boot`] with more QEMU device arguments (a disk). The NIC
    /// is the one the system's driver needs (`Built::nic`).
    pub fn boot_with(&self, built: &Built, extra: &[String]) -> Result<Session> {
        let mut devices = qemu::tap_nic_device(TAP, built.nic);
        devices.extend_from_slice(extra);
        self.boot_devices(built, &devices)
    }

    /// Boots `built` in QEMU inside the namespace with exactly `devices`
    /// (the NIC included: for a NIC that is not the TAP device).
    pub fn boot_devices(&self, built: &Built, devices: &[String]) -> Result<Session> {
        let nic: Vec<&str> = devices.iter().map(String::as_str).collect();
        let qemu = qemu::command(built, system::DEFAULT_RAM_MIB, false, &nic);
        let mut cmd = self.command(&qemu.get_program().to_string_lossy());
        cmd.args(qemu.get_args());
        Session::start(cmd)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs a command that must succeed; its stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
