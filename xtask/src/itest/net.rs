//! Network: the virtio-net driver PD and the echo client
//! (`tests/systems/net.system`), judged from outside through QEMU's NIC
//! attached to a UDP socket on the loopback interface.
//!
//! Each UDP datagram is one Ethernet frame (QEMU's `dgram` netdev). The test
//! sends frames with a sequence number and a checksum, keeps a bounded window
//! in flight, never resends, and checks that every frame comes back exactly
//! once and unchanged. Then it asks the echo PD for statistics (a control
//! frame) and checks that the driver's counters agree with what was sent.

use super::{boot_with_and_check, build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::qemu::Session;
use anyhow::{ensure, Context, Result};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn tests() -> Vec<Test> {
    vec![("virtio-net driver echoes thousands of frames intact (gather transmit, in-place receive)", echo_frames)]
}

const SYSTEM: &str = "tests/systems/net.system";
/// Frames the test sends.
const TEST_FRAMES: u32 = 6000;
/// Frames in flight at most: the test paces itself rather than overrun the
/// socket buffers on the way (the driver lends the device at most 128
/// receive buffers at a time).
const WINDOW: usize = 48;
/// With frames in flight and nothing back for this long, they are lost.
const LOSS_TIMEOUT: Duration = Duration::from_secs(5);
/// Frame sizes, Ethernet header included, FCS excluded.
const MIN_FRAME: usize = 60;
const MAX_FRAME: usize = 1514;
/// EtherType of test frames (IEEE 802 local experimental 2).
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xb6];
/// A control frame the echo PD answers by logging statistics.
const CONTROL_ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const STATS_REQUEST: &[u8] = b"net-echo stats";
/// QEMU's default MAC for the first NIC, and a locally administered source.
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// The host end of the guest's NIC.
struct Link {
    socket: UdpSocket,
    qemu: SocketAddr,
    qemu_args: Vec<String>,
}

impl Link {
    /// Binds the test's socket and picks a free port for QEMU's (a port
    /// just bound and released; another process could take it meanwhile, in
    /// which case QEMU fails to start and says so).
    fn new() -> Result<Link> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding the test's UDP socket")?;
        let qemu = UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
        let qemu_args = crate::harness::qemu::dgram_nic(qemu.port(), socket.local_addr()?.port());
        Ok(Link { socket, qemu, qemu_args })
    }

    fn args(&self) -> Vec<&str> {
        self.qemu_args.iter().map(String::as_str).collect()
    }
}

/// FNV-1a, 32 bits: the frames' checksum.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Test frame `seq` of `len` bytes: Ethernet header, sequence number,
/// length, bytes derived from the sequence number, and an FNV-1a checksum
/// of everything before it in the last 4 bytes.
fn test_frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&TEST_ETHERTYPE);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&(len as u16).to_be_bytes());
    let mut x = seq.wrapping_mul(2_654_435_761) | 1;
    while f.len() < len - 4 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f.push(x as u8);
    }
    let sum = fnv1a(&f);
    f.extend_from_slice(&sum.to_be_bytes());
    f
}

/// The sequence number of a received test frame whose length field and
/// checksum are right.
fn parse_test_frame(f: &[u8]) -> Option<u32> {
    if f.len() < MIN_FRAME || f[12..14] != TEST_ETHERTYPE {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([f[18], f[19]]));
    let (body, sum) = f.split_at(f.len() - 4);
    (len == f.len() && fnv1a(body).to_be_bytes() == sum).then(|| u32::from_be_bytes([f[14], f[15], f[16], f[17]]))
}

/// Varied sizes over the whole range, the same in every run.
fn varied_len(seq: u32) -> usize {
    MIN_FRAME + (seq as usize * 7919) % (MAX_FRAME - MIN_FRAME + 1)
}

/// What came back of an exchange.
#[derive(Debug, Default)]
struct Exchange {
    sent: u32,
    /// Frames back intact, each counted once.
    echoed: u32,
    echoed_bytes: u64,
    sent_bytes: u64,
    lost: u32,
    duplicated: u32,
    corrupted: u32,
    elapsed: Duration,
}

impl Exchange {
    fn frames_per_second(&self) -> f64 {
        f64::from(self.echoed) / self.elapsed.as_secs_f64()
    }
}

/// Sends `count` frames (`len(seq)` bytes each) keeping at most `window`
/// unanswered, never resending; checks every reply against what was sent.
fn exchange(link: &Link, count: u32, window: usize, len: impl Fn(u32) -> usize) -> Result<Exchange> {
    let mut seen = vec![false; count as usize];
    let mut x = Exchange::default();
    let mut buf = vec![0u8; 2048];
    let mut outstanding = 0usize;
    let mut last_progress = Instant::now();
    link.socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let start = Instant::now();
    while x.sent < count || outstanding > 0 {
        while x.sent < count && outstanding < window {
            let f = test_frame(x.sent, len(x.sent));
            link.socket.send_to(&f, link.qemu).context("sending a frame")?;
            x.sent += 1;
            x.sent_bytes += f.len() as u64;
            outstanding += 1;
        }
        match link.socket.recv(&mut buf) {
            Ok(n) => {
                let f = &buf[..n];
                outstanding = outstanding.saturating_sub(1);
                last_progress = Instant::now();
                match parse_test_frame(f) {
                    Some(seq) if seq < x.sent && f == test_frame(seq, len(seq)).as_slice() => {
                        if std::mem::replace(&mut seen[seq as usize], true) {
                            x.duplicated += 1;
                        } else {
                            x.echoed += 1;
                            x.echoed_bytes += n as u64;
                        }
                    }
                    _ => x.corrupted += 1,
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if outstanding > 0 && last_progress.elapsed() > LOSS_TIMEOUT {
                    // Give up on what is in flight; carry on with the rest.
                    outstanding = 0;
                    last_progress = Instant::now();
                }
            }
            Err(e) => return Err(e).context("receiving a frame"),
        }
    }
    x.elapsed = start.elapsed();
    x.lost = count - x.echoed;
    Ok(x)
}

/// Asks the echo PD for statistics; returns the driver's counters from its
/// log line (`[virtio-net] stats: key=value ...`).
fn request_stats(link: &Link, s: &mut Session) -> Result<HashMap<String, u64>> {
    let mut f = Vec::new();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&CONTROL_ETHERTYPE);
    f.extend_from_slice(STATS_REQUEST);
    f.resize(MIN_FRAME, 0);
    link.socket.send_to(&f, link.qemu)?;
    let (line, _) = s.expect("[virtio-net] stats:", LINE_TIMEOUT)?;
    let fields = line.split_once("stats:").map(|(_, rest)| rest).unwrap_or_default();
    fields
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').with_context(|| format!("bad stats field {kv:?}"))?;
            Ok((k.to_string(), v.parse::<u64>().with_context(|| format!("bad stats value {kv:?}"))?))
        })
        .collect()
}

/// Waits until the driver has brought the device up and the echo PD has
/// lent it its buffers.
fn wait_ready(s: &mut Session) -> Result<()> {
    s.expect("[monitor] PCI 00:03.0 1af4:1041 -> PD 'virtio-net'", LINE_TIMEOUT)?;
    let (up, _) = s.expect("[virtio-net] virtio-net 1af4:1041 up", LINE_TIMEOUT)?;
    println!("   {}", up.trim_start_matches("[virtio-net] "));
    s.expect("[net-echo] ready", LINE_TIMEOUT)?;
    Ok(())
}

/// Thousands of frames of varied sizes, echoed by the guest: every one back
/// intact, and the driver's statistics agree.
fn echo_frames(ws: &Path) -> Result<()> {
    let built = build(ws, SYSTEM, KERNEL_CONSOLE)?;
    let link = Link::new()?;
    boot_with_and_check(&built, &link.args(), |s| {
        wait_ready(s)?;
        let x = exchange(&link, TEST_FRAMES, WINDOW, varied_len)?;
        println!(
            "   {} frames of {MIN_FRAME}..={MAX_FRAME} bytes ({} bytes), window {WINDOW}: {} back intact, {} lost, {} duplicated, {} corrupted; {:.1} s, {:.0} frames/s",
            x.sent,
            x.sent_bytes,
            x.echoed,
            x.lost,
            x.duplicated,
            x.corrupted,
            x.elapsed.as_secs_f64(),
            x.frames_per_second()
        );
        ensure!(
            x.echoed == TEST_FRAMES && x.lost == 0 && x.duplicated == 0 && x.corrupted == 0,
            "not every frame came back exactly once and intact: {x:?}"
        );
        ensure!(x.echoed_bytes == x.sent_bytes, "{} bytes sent, {} back", x.sent_bytes, x.echoed_bytes);

        let stats = request_stats(&link, s)?;
        let (echo, _) = s.expect("[net-echo] stats:", LINE_TIMEOUT)?;
        println!(
            "   driver: {}",
            s.transcript.iter().rev().find(|l| l.contains("[virtio-net] stats:")).map(String::as_str).unwrap_or("")
        );
        println!("   {echo}");
        let get = |k: &str| stats.get(k).copied().with_context(|| format!("driver stats lack {k}"));
        let frames = u64::from(TEST_FRAMES);
        // The control frame is received but not echoed.
        ensure!(
            get("rx_frames")? == frames + 1,
            "driver rx_frames {} != {} sent + 1 control",
            get("rx_frames")?,
            frames
        );
        ensure!(
            get("rx_bytes")? == x.sent_bytes + MIN_FRAME as u64,
            "driver rx_bytes {} != {}",
            get("rx_bytes")?,
            x.sent_bytes + MIN_FRAME as u64
        );
        ensure!(get("tx_frames")? == frames, "driver tx_frames {} != {frames}", get("tx_frames")?);
        ensure!(get("tx_bytes")? == x.sent_bytes, "driver tx_bytes {} != {}", get("tx_bytes")?, x.sent_bytes);
        for k in ["rx_dropped", "tx_dropped", "client_errors"] {
            ensure!(get(k)? == 0, "driver {k} = {}", get(k)?);
        }
        ensure!(get("irqs")? > 0 && get("device_notifies")? > 0, "no interrupts or no device notifications counted");
        ensure!(
            get("irqs")? < 2 * frames && get("device_notifies")? < 2 * frames,
            "no batching or suppression: {} irqs, {} device notifications for {frames} frames each way",
            get("irqs")?,
            get("device_notifies")?
        );
        ensure!(echo.contains(&format!("echoed {frames} frames")), "echo PD's count disagrees: {echo}");
        s.drain(Duration::from_millis(300), Duration::from_secs(2));
        ensure!(s.position("panic").is_none() && s.position("faulted").is_none(), "a PD panicked or faulted");
        ensure!(s.position("] error:").is_none(), "a PD logged an error");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frames_check_themselves() {
        for seq in [0, 1, 77, 5999] {
            let f = test_frame(seq, varied_len(seq));
            assert_eq!(f.len(), varied_len(seq));
            assert_eq!(parse_test_frame(&f), Some(seq));
            let mut bad = f.clone();
            bad[30] ^= 1;
            assert_eq!(parse_test_frame(&bad), None);
        }
        assert!((0..10_000).map(varied_len).all(|l| (MIN_FRAME..=MAX_FRAME).contains(&l)));
        assert!((0..10_000).map(varied_len).any(|l| l == MAX_FRAME) || (0..10_000).map(varied_len).max() > Some(1500));
    }
}
