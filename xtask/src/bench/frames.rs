//! Echo frames over a virtual Ethernet cable and count them: the frame
//! rates of `cargo xtask bench`, for our system and the Linux guest alike.
//!
//! [`FrameLink`], [`check_echo`] and [`measure_echo`] know nothing of Linux:
//! they talk to whatever echoes frames at the other end of a QEMU `dgram`
//! netdev, so our echo PD and the Linux guest are measured with the very
//! same sender.

use anyhow::{bail, ensure, Context, Result};
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The guest's MAC address (QEMU's default for the first NIC, set
/// explicitly), the destination of every test frame.
pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// The sender's MAC address: locally administered, so it is nobody's.
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// IEEE 802 "local experimental 2" EtherType: no protocol stack claims these
/// frames, and anything else the guest sends is told apart from them. (The
/// seL4 echo PD takes "local experimental 1", 0x88b5, as its control
/// channel, so test frames must not use it.)
const ETHERTYPE: [u8; 2] = [0x88, 0xb6];

/// Where a test frame carries its sequence number (after the 14-byte header).
const SEQ: std::ops::Range<usize> = 14..22;

/// The smallest frame: the Ethernet minimum without its FCS.
pub const MIN_FRAME: usize = 60;

/// The largest frame at the default 1500-byte MTU, without the FCS.
pub const MAX_FRAME: usize = 1514;

/// Without an echo for this long, the frames in flight are counted lost, so
/// that a dropped frame does not stall the window for good.
const LOSS_TIMEOUT: Duration = Duration::from_millis(100);

/// The host end of a virtual Ethernet cable: a UDP socket on loopback that
/// QEMU's `dgram` netdev exchanges frames with, one frame per datagram.
pub struct FrameLink {
    socket: UdpSocket,
    host_port: u16,
    qemu_port: u16,
}

impl FrameLink {
    /// Binds the host end on a free loopback port and picks a free port for
    /// QEMU's end.
    pub fn new() -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding the host end of the frame link")?;
        let host_port = socket.local_addr().context("reading the frame link's port")?.port();
        // A port that was free a moment ago: QEMU binds it when it starts.
        let qemu_port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .context("finding a free UDP port for QEMU")?
            .port();
        // Connected: send() goes to QEMU, and only QEMU's datagrams arrive.
        socket.connect(("127.0.0.1", qemu_port)).context("connecting the frame link to QEMU's port")?;
        Ok(FrameLink { socket, host_port, qemu_port })
    }

    /// The QEMU arguments for the other end: the netdev and the virtio-net
    /// device at the PCI address our system uses (00:03.0), modern only,
    /// behind the IOMMU (`iommu_platform=on`, `harness::qemu::MACHINE`).
    pub fn qemu_args(&self) -> Vec<String> {
        self.qemu_args_with("iommu_platform=on,")
    }

    /// [`FrameLink::qemu_args`] without `iommu_platform`, for the Linux
    /// guest, which boots `-machine pc` as its figures were measured.
    pub fn qemu_args_without_iommu(&self) -> Vec<String> {
        self.qemu_args_with("")
    }

    fn qemu_args_with(&self, iommu: &str) -> Vec<String> {
        let mac = GUEST_MAC.map(|b| format!("{b:02x}")).join(":");
        vec![
            "-netdev".into(),
            format!(
                "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={},\
                 remote.type=inet,remote.host=127.0.0.1,remote.port={}",
                self.qemu_port, self.host_port
            ),
            "-device".into(),
            format!("virtio-net-pci,disable-legacy=on,{iommu}addr=3,netdev=n0,mac={mac}"),
        ]
    }

    fn send(&self, frame: &[u8]) -> Result<()> {
        self.socket.send(frame).context("sending a frame to QEMU")?;
        Ok(())
    }

    /// Receives the next frame into `buf`: its length, or `None` after
    /// `timeout`.
    fn recv(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        self.socket.set_read_timeout(Some(timeout)).context("setting the frame link's timeout")?;
        match self.socket.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                bail!("QEMU is not listening on its end of the frame link")
            }
            Err(e) => Err(e).context("receiving a frame from QEMU"),
        }
    }

    /// As [`Self::recv`], for test frames only: anything else the guest sends
    /// is skipped.
    fn recv_test_frame(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        self.recv_echo_of(&Traffic::RawFrames, buf, timeout)
    }

    /// As [`Self::recv`], for echoes of `traffic` only.
    fn recv_echo_of(&self, traffic: &Traffic, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.recv(buf, left)? {
                Some(n) if traffic.echo_seq(&buf[..n]).is_none() => continue,
                received => return Ok(received),
            }
        }
    }
}

/// A test frame of `len` bytes: to the guest, EtherType [`ETHERTYPE`], the
/// sequence number, then bytes that depend on their position only, so that
/// any change on the way is seen.
pub fn test_frame(seq: u64, len: usize) -> Vec<u8> {
    assert!(len >= SEQ.end, "a test frame holds at least its header and sequence number");
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(&GUEST_MAC);
    frame.extend_from_slice(&HOST_MAC);
    frame.extend_from_slice(&ETHERTYPE);
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend((SEQ.end..len).map(|i| (i * 7 + 3) as u8));
    frame
}

/// The sequence number of a test frame; `None` for other frames.
fn frame_seq(frame: &[u8]) -> Option<u64> {
    (frame.len() >= SEQ.end && frame[12..14] == ETHERTYPE).then(|| u64::from_be_bytes(frame[SEQ].try_into().unwrap()))
}

/// Sends one frame of each length in turn and checks that each comes back
/// byte for byte, once.
pub fn check_echo(link: &FrameLink, lens: &[usize]) -> Result<()> {
    let mut buf = vec![0; 65536];
    for (seq, &len) in (0u64..).zip(lens) {
        let sent = test_frame(seq, len);
        link.send(&sent)?;
        let n = link
            .recv_test_frame(&mut buf, Duration::from_secs(5))?
            .with_context(|| format!("no echo of a {len}-byte frame within 5 s"))?;
        let echoed = &buf[..n];
        ensure!(
            echoed == sent.as_slice(),
            "the {len}-byte frame came back changed ({} bytes, sequence {:?})",
            echoed.len(),
            frame_seq(echoed)
        );
    }
    // An echo that saw its own transmissions would answer them again.
    if let Some(n) = link.recv_test_frame(&mut buf, Duration::from_millis(300))? {
        bail!("an extra echo came back (frame {:?}): frames are echoed more than once", frame_seq(&buf[..n]));
    }
    Ok(())
}

/// Frames echoed during one [`measure_echo`] run.
#[derive(Clone, Debug)]
pub struct EchoRate {
    pub frame_len: usize,
    pub window: usize,
    pub sent: u64,
    pub echoed: u64,
    /// Frames with no echo within [`LOSS_TIMEOUT`].
    pub lost: u64,
    pub elapsed: Duration,
    /// When the first window was lost, and after how many echoes.
    pub first_loss: Option<(Duration, u64)>,
}

impl EchoRate {
    pub fn frames_per_sec(&self) -> f64 {
        self.echoed as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for EchoRate {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} B frames: {:.0} frames/s ({} sent, {} echoed, {} lost, window {}, {:.1} s)",
            self.frame_len,
            self.frames_per_sec(),
            self.sent,
            self.echoed,
            self.lost,
            self.window,
            self.elapsed.as_secs_f64()
        )?;
        if let Some((at, echoed)) = self.first_loss {
            write!(f, "; first loss at {:.3} s, after {echoed} echoes", at.as_secs_f64())?;
        }
        Ok(())
    }
}

/// Measures echoed frames per second: keeps `window` frames of `frame_len`
/// bytes in flight for `duration`, sending one more for each echo.
///
/// A window, rather than sending as fast as possible, measures what the
/// echo sustains without overrunning queues; frames with no echo within
/// [`LOSS_TIMEOUT`] are counted lost and the window refilled. Every echo is
/// checked to be the frame that was sent.
pub fn measure_echo(link: &FrameLink, frame_len: usize, window: usize, duration: Duration) -> Result<EchoRate> {
    measure_echo_of(&Traffic::RawFrames, link, frame_len, window, duration)
}

/// What is sent and echoed while measuring.
#[derive(Clone, Copy, Debug)]
pub enum Traffic {
    /// Raw Ethernet frames of [`ETHERTYPE`], echoed unchanged (an echo PD
    /// on the driver, or the Linux guest's AF_PACKET echo).
    RawFrames,
    /// UDP datagrams from 10.0.2.2 to the network node's 10.0.2.15, to a
    /// UDP echo service on `port` behind the demultiplexer, which answers
    /// with addresses and ports swapped and the same payload.
    UdpToNode { port: u16 },
}

const HOST_IP: [u8; 4] = [10, 0, 2, 2];
const NODE_IP: [u8; 4] = [10, 0, 2, 15];
const HOST_UDP_PORT: u16 = 40_000;
/// Ethernet, IPv4 and UDP headers before the payload of a UDP test frame.
const UDP_HEADERS: usize = 14 + 20 + 8;

impl Traffic {
    /// Test frame `seq` of `len` bytes (Ethernet header included).
    fn frame(&self, seq: u64, len: usize) -> Vec<u8> {
        match *self {
            Traffic::RawFrames => test_frame(seq, len),
            Traffic::UdpToNode { port } => {
                assert!(len >= UDP_HEADERS + 8, "a UDP test frame holds its headers and sequence number");
                let mut f = Vec::with_capacity(len);
                f.extend_from_slice(&GUEST_MAC);
                f.extend_from_slice(&HOST_MAC);
                f.extend_from_slice(&[0x08, 0x00]);
                let ip_len = (len - 14) as u16;
                let mut ip = [0u8; 20];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
                ip[6] = 0x40; // don't fragment
                ip[8] = 64;
                ip[9] = 17;
                ip[12..16].copy_from_slice(&HOST_IP);
                ip[16..20].copy_from_slice(&NODE_IP);
                let sum = internet_checksum(&ip);
                ip[10..12].copy_from_slice(&sum.to_be_bytes());
                f.extend_from_slice(&ip);
                f.extend_from_slice(&HOST_UDP_PORT.to_be_bytes());
                f.extend_from_slice(&port.to_be_bytes());
                f.extend_from_slice(&(ip_len - 20).to_be_bytes());
                // Checksum 0: none (RFC 768), which IPv4 allows.
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&seq.to_be_bytes());
                f.extend((f.len()..len).map(|i| (i * 7 + 3) as u8));
                f
            }
        }
    }

    /// The sequence number of an echo of this traffic; `None` for any
    /// other frame.
    fn echo_seq(&self, frame: &[u8]) -> Option<u64> {
        match *self {
            Traffic::RawFrames => frame_seq(frame),
            Traffic::UdpToNode { port } => {
                let is_echo = frame.len() >= UDP_HEADERS + 8
                    && frame[12..14] == [0x08, 0x00]
                    && frame[23] == 17
                    && frame[26..30] == NODE_IP
                    && frame[34..36] == port.to_be_bytes()
                    && frame[36..38] == HOST_UDP_PORT.to_be_bytes();
                is_echo.then(|| u64::from_be_bytes(frame[UDP_HEADERS..UDP_HEADERS + 8].try_into().unwrap()))
            }
        }
    }

    /// Whether `echo` is the right answer to frame `seq` of `len` bytes.
    fn echo_matches(&self, echo: &[u8], seq: u64, len: usize) -> bool {
        let sent = self.frame(seq, len);
        match self {
            Traffic::RawFrames => echo == sent.as_slice(),
            // Same length and payload; headers are the node's.
            Traffic::UdpToNode { .. } => echo.len() == len && echo[UDP_HEADERS..] == sent[UDP_HEADERS..],
        }
    }
}

/// The Internet checksum (RFC 1071) of `data`.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// [`measure_echo`] for any [`Traffic`].
pub fn measure_echo_of(
    traffic: &Traffic,
    link: &FrameLink,
    frame_len: usize,
    window: usize,
    duration: Duration,
) -> Result<EchoRate> {
    ensure!(window > 0, "the window must hold at least one frame");
    let mut buf = vec![0; 65536];
    let (mut sent, mut echoed, mut lost, mut in_flight) = (0u64, 0u64, 0u64, 0usize);
    let mut first_loss = None;
    let start = Instant::now();
    while start.elapsed() < duration {
        while in_flight < window {
            link.send(&traffic.frame(sent, frame_len))?;
            sent += 1;
            in_flight += 1;
        }
        match link.recv_echo_of(traffic, &mut buf, LOSS_TIMEOUT)? {
            Some(n) => {
                let echo = &buf[..n];
                let seq = traffic.echo_seq(echo).expect("an echo");
                ensure!(seq < sent && traffic.echo_matches(echo, seq, frame_len), "frame {seq} came back changed");
                echoed += 1;
                // An echo later than LOSS_TIMEOUT was already counted lost.
                in_flight = in_flight.saturating_sub(1);
            }
            None => {
                lost += in_flight as u64;
                in_flight = 0;
                first_loss.get_or_insert((start.elapsed(), echoed));
            }
        }
    }
    let elapsed = start.elapsed();
    // Let the frames still in flight arrive, so the next run starts clean.
    while link.recv_echo_of(traffic, &mut buf, LOSS_TIMEOUT)?.is_some() {}
    Ok(EchoRate { frame_len, window, sent, echoed, lost, elapsed, first_loss })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_test_frames_have_valid_ip_headers_and_are_recognised_as_echoes() {
        let t = Traffic::UdpToNode { port: 7000 };
        let f = t.frame(42, 64);
        assert_eq!(f.len(), 64);
        assert_eq!(internet_checksum(&f[14..34]), 0, "the IPv4 header checksum verifies");
        // The node's answer: addresses and ports swapped, same payload.
        let mut echo = f.clone();
        echo[26..30].copy_from_slice(&NODE_IP);
        echo[30..34].copy_from_slice(&HOST_IP);
        echo[34..36].copy_from_slice(&7000u16.to_be_bytes());
        echo[36..38].copy_from_slice(&HOST_UDP_PORT.to_be_bytes());
        assert_eq!(t.echo_seq(&echo), Some(42));
        assert!(t.echo_matches(&echo, 42, 64));
        assert_eq!(t.echo_seq(&f), None, "our own frame is not an echo");
    }

    #[test]
    fn test_frames_carry_their_sequence_number() {
        let frame = test_frame(42, MAX_FRAME);
        assert_eq!(frame.len(), MAX_FRAME);
        assert_eq!(&frame[..6], &GUEST_MAC);
        assert_eq!(frame_seq(&frame), Some(42));
        assert_eq!(test_frame(42, MAX_FRAME), frame, "deterministic");
        let mut other = frame.clone();
        other[12] = 0x08; // IPv4
        assert_eq!(frame_seq(&other), None);
    }
}
