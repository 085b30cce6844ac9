//! A network namespace holding a TAP device, for the web benchmark: the
//! system under test boots in QEMU attached to the TAP device, and the load
//! generators (wrk, hping3, curl, tcpdump) run in the namespace, so no QEMU
//! user networking sits between client and server and nothing touches the
//! machine's own network. Needs root.

use crate::harness::qemu::{self, Session};
use anyhow::{ensure, Context, Result};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The TAP device in the namespace.
pub const TAP: &str = "tap0";
/// The host's end of the link, and the server's address (the web node's,
/// from `microkit.system`; the Linux guest is given the same one).
pub const HOST_IP: &str = "10.0.2.2";
pub const SERVER_IP: &str = "10.0.2.15";
/// QEMU's default MAC of the first NIC: both servers have it.
const SERVER_MAC: &str = "52:54:00:12:34:56";
/// An address of the subnet that nothing answers for: the SYN flood's
/// source, so that the server's SYN-ACKs go nowhere (it asks ARP in vain).
pub const SILENT_IP: &str = "10.0.2.200";

/// Deleted (with the TAP device) when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Result<Netns> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!("sel4-bench-{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        run(Command::new("ip").args(["netns", "add", &name]))
            .context("creating a network namespace (the web benchmark needs root)")?;
        let ns = Netns { name };
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["tuntap", "add", "dev", TAP, "mode", "tap"],
            vec!["addr", "add", &format!("{HOST_IP}/24"), "dev", TAP],
            vec!["link", "set", TAP, "up"],
            // The server's MAC is known: the client side never waits for
            // ARP, so the boot time is not rounded up to ARP's retries, and
            // both servers are reached the same way.
            vec!["neigh", "replace", SERVER_IP, "lladdr", SERVER_MAC, "dev", TAP, "nud", "permanent"],
        ] {
            run(Command::new("ip").arg("-n").arg(&ns.name).args(&args))?;
        }
        // Connections per second in close mode use many client ports: all
        // of them, and reuse of those in TIME_WAIT, so the client never runs
        // out. These settings belong to the namespace only.
        for setting in ["net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"] {
            run(ns.command("sysctl").args(["-q", "-w", setting]))?;
        }
        Ok(ns)
    }

    /// `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Starts `qemu` (a QEMU command without a NIC) inside the namespace
    /// with a virtio-net NIC on the TAP device. `ip netns exec` execs, so
    /// the session's PID is QEMU's.
    pub fn start_qemu(&self, qemu: Command) -> Result<Session> {
        let mut cmd = self.command(&qemu.get_program().to_string_lossy());
        cmd.args(qemu.get_args()).args(qemu::tap_nic(TAP));
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
