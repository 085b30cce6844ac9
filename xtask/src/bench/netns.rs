//! The benchmark's network namespace: the harness's
//! ([`crate::harness::netns`]) tuned for load generators: the server's MAC
//! pinned in the neighbour table (no ARP round in a boot time; both servers
//! reached the same way), and every client port usable, with TIME_WAIT
//! reuse (close mode uses many). These settings belong to the namespace only.

pub use crate::harness::netns::{run, Netns, NODE_IP as SERVER_IP, TAP};
use anyhow::Result;
use std::process::Command;

/// QEMU's default MAC of the first NIC: both servers have it.
const SERVER_MAC: &str = "52:54:00:12:34:56";
/// An address of the subnet that nothing answers for: the SYN flood's
/// source, so that the server's SYN-ACKs go nowhere (it asks ARP in vain).
pub const SILENT_IP: &str = "10.0.2.200";

/// A fresh namespace for a benchmark round.
pub fn for_load() -> Result<Netns> {
    let ns = Netns::new()?;
    run(Command::new("ip").args([
        "-n",
        ns.name(),
        "neigh",
        "replace",
        SERVER_IP,
        "lladdr",
        SERVER_MAC,
        "dev",
        TAP,
        "nud",
        "permanent",
    ]))?;
    for setting in ["net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"] {
        run(ns.command("sysctl").args(["-q", "-w", setting]))?;
    }
    Ok(ns)
}
