//! The network node (`tests/systems/node.system`: driver, demultiplexer,
//! arpd, stray-packet daemon, and two test PDs), judged from outside with
//! the host's own tools.
//!
//! Each test creates a network namespace holding a TAP device (the node's
//! wire) with the host end at [`HOST_IP`], boots QEMU inside the namespace
//! attached to that TAP device, and talks to the node with `ping`,
//! `arping`, `nc`, `tcpdump` and small Python programs (raw frames, UDP),
//! all run in the namespace. Nothing touches the machine's own network.
//! Needs root (CI runs as root).

use super::{build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::deps::{self, Package};
use crate::harness::qemu::Session;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn tests() -> Vec<Test> {
    vec![
        ("node: announces itself at boot, answers ping (rate-limited) and ARP; the host's neighbour table shows it; arpd sees a claim of its address", ping_and_arp),
        ("node: closed ports give ICMP port unreachable for UDP (seen by tcpdump), TCP connect refused at once", closed_ports),
        ("node: a burst of malformed frames is dropped and counted; every PD keeps running", malformed_burst),
        ("node: claims outside a grant and forged sends are refused and counted; copy filters see copies", grants_and_forgery),
        ("node: datagrams sent in place from a client's send_from region (one range; the most ranges a frame may have; one with checksum offload) arrive byte for byte; a range past the region is refused and counted", in_place_send),
    ]
}

const SYSTEM: &str = "tests/systems/node.system";
pub(super) use crate::harness::netns::{run, Netns, HOST_IP, NODE_IP, TAP};
/// QEMU's default MAC for the first NIC: what the node must answer with.
pub(super) const NODE_MAC: &str = "52:54:00:12:34:56";
/// The test PD's UDP echo service.
const PROBE_PORT: u16 = 7000;
/// Where the probe sends its in-place datagram (`pds/test/net-probe`).
const IN_PLACE_PORT: u16 = 7009;

/// Host tools the tests use.
#[rustfmt::skip]
pub(super) const TOOLS: &[Package] = &[
    Package { name: "iproute2", probe: "ip" },
    Package { name: "iputils-ping", probe: "ping" },
    Package { name: "iputils-arping", probe: "arping" },
    Package { name: "tcpdump", probe: "tcpdump" },
    Package { name: "netcat-openbsd", probe: "nc" },
    Package { name: "python3", probe: "/usr/bin/python3" },
];

/// A `tcpdump` capture on the TAP device, to a file; decoded when done.
struct Capture {
    tcpdump: std::process::Child,
    file: std::path::PathBuf,
}

impl Capture {
    /// Starts capturing packets that match `filter` (tcpdump syntax),
    /// stopping after `count` of them.
    fn start(ns: &Netns, name: &str, count: u32, filter: &str) -> Result<Capture> {
        let file = std::env::temp_dir().join(format!("{}-{name}.pcap", ns.name()));
        let mut tcpdump = ns
            .command("tcpdump")
            .args(["-i", TAP, "-n", "-U", "-c", &count.to_string(), "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcpdump")?;
        // tcpdump says "listening on" once its filter is in place.
        let stderr = tcpdump.stderr.take().context("tcpdump's stderr")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut line)?;
        ensure!(line.contains("listening on"), "tcpdump did not start: {line}");
        Ok(Capture { tcpdump, file })
    }

    /// Waits up to `timeout` for the capture to have all its packets, then
    /// returns them decoded (`tcpdump -n -v -r`), whatever was captured.
    fn finish(self, timeout: Duration) -> Result<String> {
        let file = self.stop(timeout);
        let decoded = run(Command::new("tcpdump").args(["-n", "-v", "-r"]).arg(&file));
        let _ = std::fs::remove_file(&file);
        decoded
    }

    /// [`Capture::finish`], but the frames as captured, byte for byte.
    fn finish_frames(self, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        let file = self.stop(timeout);
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()));
        let _ = std::fs::remove_file(&file);
        pcap_frames(&bytes?)
    }

    /// Waits up to `timeout` for tcpdump to have all its packets, stops
    /// it, and returns the capture file.
    fn stop(mut self, timeout: Duration) -> std::path::PathBuf {
        let deadline = Instant::now() + timeout;
        while !matches!(self.tcpdump.try_wait(), Ok(Some(_)) | Err(_)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.tcpdump.kill();
        let _ = self.tcpdump.wait();
        self.file
    }
}

/// The frames of a pcap file (the classic format tcpdump writes: a 24-byte
/// header, then per frame a 16-byte record header and the bytes), in
/// either byte order.
fn pcap_frames(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let word = |at: usize, little: bool| -> Result<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4).context("pcap file cut short")?.try_into()?;
        Ok(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let little = match word(0, true)? {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        magic => bail!("not a pcap file (magic {magic:#x})"),
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let len = word(at + 8, little)? as usize;
        let frame = bytes.get(at + 16..at + 16 + len).context("pcap record cut short")?;
        frames.push(frame.to_vec());
        at += 16 + len;
    }
    Ok(frames)
}

/// The Internet checksum's one's complement sum (RFC 1071) of `data`, a
/// trailing odd byte padded with zero.
fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Builds the node, boots it in a fresh namespace and waits until every
/// network PD is up; then runs `check`. On failure the console is printed.
fn with_node(ws: &Path, check: impl FnOnce(&Netns, &mut Session) -> Result<()>) -> Result<()> {
    with_node_captured(ws, None, |ns, s, _| check(ns, s))
}

/// [`with_node`], with a capture of `boot_capture` = (packets, tcpdump
/// filter) started before QEMU, so that it sees what the node sends at boot.
fn with_node_captured(
    ws: &Path,
    boot_capture: Option<(u32, &str)>,
    check: impl FnOnce(&Netns, &mut Session, Option<Capture>) -> Result<()>,
) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    let built = build(ws, SYSTEM, KERNEL_CONSOLE)?;
    let ns = Netns::new()?;
    let capture = boot_capture.map(|(count, filter)| Capture::start(&ns, "boot", count, filter)).transpose()?;
    let mut s = ns.boot(&built)?;
    let result = wait_ready(&mut s).and_then(|()| check(&ns, &mut s, capture));
    if result.is_err() {
        s.print_transcript();
    }
    // QEMU stops before the namespace and its TAP device go.
    drop(s);
    drop(ns);
    result
}

fn wait_ready(s: &mut Session) -> Result<()> {
    s.expect("[monitor] all PDs started", LINE_TIMEOUT)?;
    s.seen_or_expect(&format!("[arpd] announced {NODE_IP} is-at {NODE_MAC}"), LINE_TIMEOUT)?;
    s.seen_or_expect("[net-watch] watching", LINE_TIMEOUT)?;
    Ok(())
}

/// Fails if any PD faulted or panicked so far.
pub(super) fn no_faults(s: &Session) -> Result<()> {
    if let Some(line) = s.transcript.iter().find(|l| l.contains("faulted") || l.contains("panicked")) {
        bail!("a PD failed: {line}");
    }
    Ok(())
}

fn ping_and_arp(ws: &Path) -> Result<()> {
    // arpd's two announcements at boot, on the wire.
    // (Gratuitous: sender and target protocol address are the same.)
    let announcements = (2, "arp and ether src 52:54:00:12:34:56 and arp[14:4] = arp[24:4]");
    with_node_captured(ws, Some(announcements), |ns, s, boot| {
        let boot = boot.context("boot capture")?.finish(Duration::from_secs(10))?;
        let gratuitous = boot
            .lines()
            .filter(|l| {
                l.contains(&format!("{NODE_IP} is-at {NODE_MAC}"))
                    || l.contains(&format!("who-has {NODE_IP} tell {NODE_IP}"))
            })
            .count();
        if gratuitous != 2 {
            // What arpd and the timer said, for the cause (seen once in CI:
            // one announcement captured; the console excerpt was cut).
            s.drain(Duration::from_millis(200), Duration::from_secs(1));
            let said: Vec<&String> =
                s.transcript.iter().filter(|l| l.contains("[arpd]") || l.contains("[timer]")).collect();
            bail!("expected arpd's 2 gratuitous ARPs at boot, captured: {boot:?}; arpd and the timer said: {said:#?}");
        }
        println!("   at boot: {}", boot.lines().next().unwrap_or("").trim());

        let out = run(ns.command("ping").args(["-c", "3", "-i", "0.3", "-W", "3", NODE_IP]))?;
        ensure!(out.contains("3 received"), "ping: {out}");
        println!("   ping: {}", out.lines().find(|l| l.contains("rtt")).unwrap_or("").trim());

        let out = run(ns.command("arping").args(["-c", "3", "-w", "10", "-I", TAP, NODE_IP]))?;
        let replies = out.lines().filter(|l| l.contains("reply from") && l.to_lowercase().contains(NODE_MAC)).count();
        ensure!(replies >= 3, "arping: expected 3 replies from {NODE_MAC}: {out}");

        let neigh = run(ns.command("ip").args(["neigh", "show", NODE_IP, "dev", TAP]))?;
        ensure!(neigh.to_lowercase().contains(NODE_MAC), "the host's neighbour table lacks the node: {neigh:?}");
        println!("   neighbour table: {}", neigh.trim());

        // A burst of 200 pings at once: the stray-packet daemon answers its
        // burst allowance (50) and little more.
        let out = ns.command("ping").args(["-q", "-l", "200", "-c", "200", "-W", "2", NODE_IP]).output()?;
        let out = String::from_utf8_lossy(&out.stdout);
        let received: u32 = out
            .split(", ")
            .find_map(|part| part.strip_suffix(" received"))
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("ping output: {out}"))?;
        ensure!((40..=120).contains(&received), "rate limit: {received} of 200 pings sent at once were answered");
        println!("   rate limit: {received} of 200 pings sent at once answered");

        // Another host claims the node's address: arpd logs it.
        let host_mac = host_mac(ns)?;
        ns.python(ADDRESS_THIEF, &[TAP, NODE_IP])?;
        let line = s.seen_or_expect("[arpd] address conflict", LINE_TIMEOUT)?;
        ensure!(line.contains(&format!("{NODE_IP} claimed by {host_mac}")), "{line} (host MAC {host_mac})");
        s.drain(Duration::from_millis(300), Duration::from_secs(2));
        no_faults(s)
    })
}

fn closed_ports(ws: &Path) -> Result<()> {
    with_node(ws, |ns, s| {
        // Capture ICMP from the node while a UDP datagram goes to port 9.
        let capture = Capture::start(ns, "unreachable", 1, &format!("icmp and src host {NODE_IP}"))?;
        run(ns.command("sh").args(["-c", &format!("echo probe | nc -u -w 1 {NODE_IP} 9")])).ok();
        let decoded = capture.finish(Duration::from_secs(10))?;
        ensure!(
            decoded.contains("udp port 9 unreachable"),
            "no ICMP port unreachable for port 9 from the node: {decoded:?}"
        );
        println!("   captured: {}", decoded.lines().next().unwrap_or("").trim());

        // A TCP connect to a closed port: a reset, at once.
        let started = Instant::now();
        let out = ns.command("nc").args(["-z", "-v", "-w", "5", NODE_IP, "81"]).stdin(Stdio::null()).output()?;
        let took = started.elapsed();
        let said = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success() && said.contains("refused"), "TCP connect to port 81 was not refused: {said}");
        ensure!(took < Duration::from_secs(3), "TCP connect refused only after {took:?}");
        println!("   TCP port 81: refused after {:.0} ms", took.as_secs_f64() * 1000.0);
        s.drain(Duration::from_millis(300), Duration::from_secs(2));
        no_faults(s)
    })
}

/// Broadcasts a gratuitous ARP reply claiming an address (argv[2]) for the
/// sender's MAC.
const ADDRESS_THIEF: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
me = s.getsockname()[4]
ip = socket.inet_aton(sys.argv[2])
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, me, ip, b"\xff" * 6, ip)
s.send(b"\xff" * 6 + me + b"\x08\x06" + arp)
"#;

/// The MAC of the host's end of the TAP device, as `aa:bb:..`.
fn host_mac(ns: &Netns) -> Result<String> {
    let out = run(Command::new("ip").args(["-n", ns.name(), "-br", "link", "show", TAP]))?;
    Ok(out.split_whitespace().nth(2).context("no MAC in `ip -br link`")?.to_lowercase())
}

/// Sends malformed frames of every kind the demultiplexer must drop, from
/// a raw socket on the TAP device.
const MALFORMED_SENDER: &str = r#"
import socket, struct, sys, time
iface, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
node = bytes.fromhex("525400123456")
me = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def ip(ihl=5, total=None, frag=0, proto=17, payload=b"\0" * 8, version=4):
    opts = b"\x01" * (4 * (ihl - 5)) if ihl > 5 else b""
    total = total if total is not None else 4 * max(ihl, 5) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, total, 1, frag, 64, proto, 0,
                    socket.inet_aton("10.0.2.2"), socket.inet_aton("10.0.2.15")) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload
eth = node + me + b"\x08\x00"
# (A frame shorter than an Ethernet header cannot be sent on a TAP device.)
kinds = [
    eth + ip()[:12],                            # truncated IPv4 header
    eth + ip(ihl=3),                            # IHL below 5
    eth + ip(total=400),                        # total length beyond the frame
    eth + ip(total=10),                         # total length below the header
    eth + ip(frag=0x2000),                      # a first fragment (MF)
    eth + ip(frag=0x0010),                      # a later fragment
    eth + ip(ihl=6),                            # IPv4 options
    eth + ip(version=6),                        # version 6 in an IPv4 frame
    eth + ip(payload=b"\0" * 4),                # UDP header cut short
    node + me + b"\x08\x06" + b"\0" * 10,       # truncated ARP
]
sent = 0
for i in range(count):
    s.send(kinds[i % len(kinds)])
    sent += 1
    if sent % 50 == 0:
        time.sleep(0.01)  # a burst, but within what the TAP queue holds
print(sent, len(kinds))
"#;

/// Asks the probe PD for the demultiplexer's counters over UDP.
const STATS_ASKER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for attempt in range(5):
    s.sendto(sys.argv[2].encode(), (sys.argv[1], int(sys.argv[3])))
    try:
        print(s.recv(2048).decode().strip())
        break
    except socket.timeout:
        pass
else:
    sys.exit("no answer from the node")
"#;

/// Parses `key=value` from a counters line.
fn counter(line: &str, key: &str) -> Result<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .with_context(|| format!("no {key} in {line:?}"))?
        .parse()
        .with_context(|| format!("{key} in {line:?}"))
}

fn ask(ns: &Netns, payload: &str) -> Result<String> {
    let out = ns.python(STATS_ASKER, &[NODE_IP, payload, &PROBE_PORT.to_string()])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Frames the host's end of the TAP device dropped (its queue was full,
/// e.g. while QEMU was busy): they never reached the node.
fn tap_dropped(ns: &Netns) -> Result<u64> {
    let out = run(ns.command("cat").arg(format!("/sys/class/net/{TAP}/statistics/tx_dropped")))?;
    out.trim().parse().context("tx_dropped of the TAP device")
}

fn malformed_burst(ws: &Path) -> Result<()> {
    const BURST: u32 = 2000;
    with_node(ws, |ns, s| {
        let before = ask(ns, "stats")?;
        let lost_before = tap_dropped(ns)?;
        let out = ns.python(MALFORMED_SENDER, &[TAP, &BURST.to_string()])?;
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        let sent: u64 = printed
            .split_whitespace()
            .next()
            .with_context(|| format!("the sender printed no count: {printed:?}"))?
            .parse()
            .with_context(|| format!("the sender's count: {printed:?}"))?;
        ensure!(sent == u64::from(BURST), "the sender sent {sent} of {BURST} frames");
        // Everything still answers...
        let out = run(ns.command("ping").args(["-c", "2", "-i", "0.3", "-W", "3", NODE_IP]))?;
        ensure!(out.contains("2 received"), "ping after the burst: {out}");
        let after = ask(ns, "stats")?;
        let lost = tap_dropped(ns)? - lost_before;
        let counted = counter(&after, "malformed")? - counter(&before, "malformed")?;
        println!(
            "   {sent} malformed frames sent, {lost} lost in the host's TAP queue; the demultiplexer counted {counted}"
        );
        // ...and every malformed frame that reached the node was counted:
        // all sent but those the TAP device dropped (which may include a
        // frame or two of other traffic, hence no exact equality), and no
        // more than were sent.
        ensure!(
            counted > 0 && counted >= sent - lost && counted <= sent,
            "{counted} of {sent} malformed frames counted, {} expected ({lost} lost on the host): {after}",
            sent - lost
        );
        s.drain(Duration::from_millis(300), Duration::from_secs(2));
        let logged = s.transcript.iter().any(|l| l.starts_with("[net-mux]") && l.contains("; malformed "));
        ensure!(logged, "the demultiplexer did not log its malformed counters");
        no_faults(s)
    })
}

fn grants_and_forgery(ws: &Path) -> Result<()> {
    with_node(ws, |ns, s| {
        // The probe's own checks at boot: four claims, then two forged
        // sends. (PDs start in priority order, so some of these lines may
        // come before the ones `wait_ready` waited for.)
        let line = s.seen_or_expect("[net-probe] forged sends refused", LINE_TIMEOUT)?;
        ensure!(line.ends_with(": ok"), "{line}");
        let claims: Vec<&String> = s.transcript.iter().filter(|l| l.starts_with("[net-probe] claim")).collect();
        ensure!(claims.len() == 4, "expected 4 claim checks, saw {}", claims.len());
        for line in claims {
            ensure!(line.ends_with(": ok"), "{line}");
        }
        // arpd resolved the gateway (this namespace's end of the link).
        let host_mac = host_mac(ns)?;
        let line = s.seen_or_expect("[net-probe] resolved", LINE_TIMEOUT)?;
        ensure!(line.contains(&format!("{HOST_IP} is-at {host_mac}: ok")), "{line} (host MAC {host_mac})");

        // The probe's claimed port works both ways: its frames pass transmit
        // validation.
        let echo = ask(ns, "hello through the filter")?;
        ensure!(echo == "hello through the filter", "echo from port {PROBE_PORT}: {echo:?}");
        let stats = ask(ns, "stats")?;
        ensure!(counter(&stats, "tx_refused")? >= 2, "forged frames not counted: {stats}");
        ensure!(counter(&stats, "claims_refused")? >= 3, "refused claims not counted: {stats}");

        // A ping, seen by the watcher's copy filter and answered by the
        // stray-packet daemon all the same.
        let out = run(ns.command("ping").args(["-c", "2", "-i", "0.3", "-W", "3", NODE_IP]))?;
        ensure!(out.contains("2 received"), "ping: {out}");
        let line = s.seen_or_expect("[net-watch] copy 1:", LINE_TIMEOUT)?;
        ensure!(line.contains(&format!("{HOST_IP} -> {NODE_IP} protocol 1")), "{line}");
        s.drain(Duration::from_millis(300), Duration::from_secs(2));
        no_faults(s)
    })
}

/// Binds UDP port argv[3], sends argv[4] to the probe (argv[1], port
/// argv[2]) and prints the answer's source port and payload in hex. One
/// request only: the test counts the bytes sent in place.
const IN_PLACE_ASKER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.settimeout(10)
s.sendto(sys.argv[4].encode(), (sys.argv[1], int(sys.argv[2])))
data, addr = s.recvfrom(4096)
print(addr[1], data.hex())
"#;

/// The in-place ranges (offset in the probe's `send_from` region, bytes)
/// of its answer to `in-place` (`pds/test/net-probe`: `SINGLE`).
const SINGLE: &[(usize, usize)] = &[(0x234, 1000)];
/// Of its answer to `in-place-max` (`MOST`): seven ranges, the most a
/// frame may have, at odd offsets.
const MOST: &[(usize, usize)] =
    &[(0x001, 120), (0x101, 120), (0x201, 120), (0x301, 120), (0x401, 120), (0x501, 120), (0x601, 120)];

/// The payload of the probe's in-place datagram with `ranges`: its copied
/// prefix, then each range of its region (byte `i` is `i % 251`) followed
/// by a copied `|piece-N`, the last by the copied trailer.
fn in_place_payload(ranges: &[(usize, usize)]) -> Vec<u8> {
    let mut payload = b"in-place follows".to_vec();
    for (n, &(offset, len)) in ranges.iter().enumerate() {
        payload.extend((offset..offset + len).map(|i| (i % 251) as u8));
        if n + 1 < ranges.len() {
            payload.extend_from_slice(format!("|piece-{n}").as_bytes());
        } else {
            payload.extend_from_slice(b"-the end");
        }
    }
    payload
}

/// How a captured datagram's UDP checksum was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UdpChecksum {
    /// It verifies.
    Complete,
    /// It holds exactly the pseudo-header sum: the frame left the guest
    /// with checksum offload (virtio `NEEDS_CSUM`) and QEMU handed it to
    /// the host with its virtio header (TAP `vnet_hdr`), so the host kernel
    /// took it as a partial checksum, which it never completes for a
    /// packet it delivers itself (a capture on the TAP shows it so).
    Partial,
}

/// Checks a captured frame of the in-place datagram: Ethernet, IPv4 from
/// the node, UDP from the probe's port to [`IN_PLACE_PORT`] with a
/// checksum that verifies (or, if `partial_ok`, holds the pseudo-header
/// sum), and exactly `payload`.
#[cfg(test)]
fn check_in_place_frame(frame: &[u8], payload: &[u8]) -> Result<()> {
    check_in_place_frame_checksum(frame, payload, false).map(|_| ())
}

fn check_in_place_frame_checksum(frame: &[u8], payload: &[u8], partial_ok: bool) -> Result<UdpChecksum> {
    ensure!(
        frame.len() == 14 + 20 + 8 + payload.len(),
        "captured {} bytes, expected {}",
        frame.len(),
        14 + 20 + 8 + payload.len()
    );
    ensure!(
        frame[12..14] == [0x08, 0x00] && frame[14] == 0x45 && frame[14 + 9] == 17,
        "not UDP over IPv4: {:02x?}",
        &frame[..34]
    );
    ensure!(ones_complement_sum(&frame[14..34]) == 0xffff, "bad IPv4 header checksum");
    let (src, dst) = (&frame[26..30], &frame[30..34]);
    ensure!(src == [10, 0, 2, 15], "source {src:?}");
    let udp = &frame[34..];
    let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
    ensure!(
        (port(0), port(2), usize::from(port(4))) == (PROBE_PORT, IN_PLACE_PORT, 8 + payload.len()),
        "UDP header {:02x?}",
        &udp[..8]
    );
    let mut pseudo = [src, dst].concat();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&udp[4..6]);
    let header_sum = ones_complement_sum(&pseudo);
    pseudo.extend_from_slice(udp);
    let checksum = if ones_complement_sum(&pseudo) == 0xffff {
        UdpChecksum::Complete
    } else {
        let field = u16::from_be_bytes([udp[6], udp[7]]);
        ensure!(
            partial_ok && field == header_sum,
            "the UDP checksum does not verify (field {field:#06x}; pseudo-header sum {header_sum:#06x})"
        );
        UdpChecksum::Partial
    };
    if udp[8..] != *payload {
        let first = udp[8..].iter().zip(payload).position(|(a, b)| a != b).unwrap_or(0);
        bail!(
            "payload differs from byte {first}: {:02x?} vs {:02x?}",
            &udp[8 + first..(8 + first + 16).min(udp.len())],
            &payload[first..(first + 16).min(payload.len())]
        );
    }
    Ok(checksum)
}

fn in_place_send(ws: &Path) -> Result<()> {
    with_node(ws, |ns, s| {
        // The probe's own check at boot: a range past its region refused.
        let line = s.seen_or_expect("[net-probe] in-place range past the end of send_from refused", LINE_TIMEOUT)?;
        ensure!(line.ends_with(": ok"), "{line}");
        let line = s.seen_or_expect("[virtio-net] in-place transmit window (send_from): 0x1000 bytes", LINE_TIMEOUT)?;
        println!("   {}", line.trim());

        // One range between copied bytes; then the most ranges a frame may
        // have, between copied pieces (a chain of 16 at the driver).
        let mut in_place = 0;
        for (request, ranges) in [("in-place", SINGLE), ("in-place-max", MOST), ("in-place-csum", SINGLE)] {
            let capture =
                Capture::start(ns, request, 1, &format!("udp and src host {NODE_IP} and dst port {IN_PLACE_PORT}"))?;
            let out =
                ns.python(IN_PLACE_ASKER, &[NODE_IP, &PROBE_PORT.to_string(), &IN_PLACE_PORT.to_string(), request])?;
            let frames = capture.finish_frames(Duration::from_secs(10))?;
            let expected = in_place_payload(ranges);
            ensure!(frames.len() == 1, "{request}: captured {} datagrams, expected 1", frames.len());
            let offloaded = request == "in-place-csum";
            let checksum = check_in_place_frame_checksum(&frames[0], &expected, offloaded)
                .with_context(|| format!("{request}: the captured frame"))?;
            // The host's UDP stack took it too (it drops a bad checksum).
            let out = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let (port, hex) = out.split_once(' ').with_context(|| format!("python printed {out:?}"))?;
            ensure!(port == PROBE_PORT.to_string(), "{request}: answered from port {port}");
            let received: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16)).collect::<Result<_, _>>()?;
            ensure!(
                received == expected,
                "{request}: the host's socket received {} bytes that differ from the {} expected",
                received.len(),
                expected.len()
            );
            let bytes: usize = ranges.iter().map(|&(_, len)| len).sum();
            in_place += bytes;
            println!(
                "   {request}: captured and received {} payload bytes, {bytes} of them in place in {} ranges; UDP checksum {}",
                expected.len(),
                ranges.len(),
                match checksum {
                    UdpChecksum::Complete => "verifies",
                    // The host's socket took it (above): the kernel drops a
                    // bad checksum unless the virtio header said partial.
                    UdpChecksum::Partial => "partial (pseudo-header sum) on the TAP, completed by no one: \
                        the host took it as NEEDS_CSUM from the virtio header",
                }
            );
        }
        // The probe asked for the device's checksum only if the driver
        // negotiated it.
        let line = s.seen_or_expect(
            "[net-probe] sent 1000 bytes in place in 1 ranges to 10.0.2.2:7009, checksum by the device",
            LINE_TIMEOUT,
        )?;
        println!("   {}", line.trim());
        for wanted in ["[virtio-net] features offered", "[net-mux] driver offloads:"] {
            let line = s.seen_or_expect(wanted, LINE_TIMEOUT)?;
            println!("   {}", line.trim());
        }

        // Counted by the demultiplexer: the bytes sent in place, and the
        // probe's refused range under its reason.
        let stats = ask(ns, "stats")?;
        ensure!(
            counter(&stats, "tx_in_place_bytes")? == in_place as u64,
            "expected {in_place} bytes in place: {stats}"
        );
        s.drain(Duration::from_millis(300), Duration::from_secs(2));
        let line = s
            .transcript
            .iter()
            .rev()
            .find(|l| l.starts_with("[net-mux] net-probe: rx delivered"))
            .context("no counters of net-probe in the demultiplexer's log")?;
        ensure!(
            line.contains("in-place-out-of-bounds 1") && line.contains(&format!("in place {in_place} bytes")),
            "{line}"
        );
        println!("   {}", line.trim());
        no_faults(s)
    })
}

#[cfg(test)]
mod tests {
    use super::{check_in_place_frame, counter, in_place_payload, ones_complement_sum, pcap_frames, MOST, SINGLE};

    #[test]
    fn pcap_files_and_in_place_frames_are_read() {
        assert_eq!(in_place_payload(SINGLE).len(), 16 + 1000 + 8);
        let most = in_place_payload(MOST);
        assert_eq!(most.len(), 16 + 7 * 120 + 6 * 8 + 8);
        assert_eq!(&most[16 + 120..16 + 128], b"|piece-0");
        assert_eq!((most[16], most[16 + 128]), (1, (0x101 % 251) as u8));
        // A UDP datagram as the probe sends it, checksummed here.
        let payload = in_place_payload(SINGLE);
        let udp_len = 8 + payload.len();
        let mut frame = vec![0u8; 14 + 20];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[16..18].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        frame[14 + 8] = 64;
        frame[14 + 9] = 17;
        frame[26..30].copy_from_slice(&[10, 0, 2, 15]);
        frame[30..34].copy_from_slice(&[10, 0, 2, 2]);
        let sum = !ones_complement_sum(&frame[14..34]);
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
        let mut udp =
            [&7000u16.to_be_bytes()[..], &7009u16.to_be_bytes(), &(udp_len as u16).to_be_bytes(), &[0, 0], &payload]
                .concat();
        let pseudo = [&[10, 0, 2, 15, 10, 0, 2, 2, 0, 17][..], &(udp_len as u16).to_be_bytes(), &udp].concat();
        let sum = !ones_complement_sum(&pseudo);
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&udp);
        check_in_place_frame(&frame, &payload).unwrap();
        // One changed byte of the in-place part is found.
        let mut bad = frame.clone();
        bad[14 + 20 + 8 + 100] ^= 1;
        assert!(check_in_place_frame(&bad, &payload).is_err());
        // With checksum offload: complete, or exactly the pseudo-header sum.
        use super::{check_in_place_frame_checksum, UdpChecksum};
        assert_eq!(check_in_place_frame_checksum(&frame, &payload, true).unwrap(), UdpChecksum::Complete);
        let mut partial = frame.clone();
        let header_sum =
            ones_complement_sum(&[&[10, 0, 2, 15, 10, 0, 2, 2, 0, 17][..], &(udp_len as u16).to_be_bytes()].concat());
        partial[40..42].copy_from_slice(&header_sum.to_be_bytes());
        assert_eq!(check_in_place_frame_checksum(&partial, &payload, true).unwrap(), UdpChecksum::Partial);
        assert!(check_in_place_frame_checksum(&partial, &payload, false).is_err());
        partial[40] ^= 1;
        assert!(check_in_place_frame_checksum(&partial, &payload, true).is_err());
        // As tcpdump writes it (little-endian host).
        let mut pcap = Vec::new();
        for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 0x40000, 1] {
            pcap.extend_from_slice(&w.to_le_bytes());
        }
        for w in [1u32, 2, frame.len() as u32, frame.len() as u32] {
            pcap.extend_from_slice(&w.to_le_bytes());
        }
        pcap.extend_from_slice(&frame);
        assert_eq!(pcap_frames(&pcap).unwrap(), vec![frame]);
        assert!(pcap_frames(&pcap[..pcap.len() - 1]).is_err());
        assert!(pcap_frames(b"not a capture file at all").is_err());
    }

    #[test]
    fn counters_parse() {
        let line = "rx_delivered=3 malformed=12 tx_refused=2";
        assert_eq!(counter(line, "malformed").unwrap(), 12);
        assert_eq!(counter(line, "tx_refused").unwrap(), 2);
        assert!(counter(line, "missing").is_err());
    }
}
