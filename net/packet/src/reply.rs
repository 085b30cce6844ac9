//! Answers the stray-packet daemon sends for traffic no one claimed: ICMP
//! echo replies, ICMP port and protocol unreachable, TCP resets.
//!
//! Each builder takes the received frame, re-validates it with
//! [`classify_strict`] (RFC 1122 §3.2.2: a datagram with a bad checksum is
//! silently discarded, not answered), refuses what must not be answered
//! ([`NotAnswerable`]), and writes a whole frame into the caller's buffer
//! from the [`Local`] addresses, so the answer passes transmit validation
//! by construction. Frames shorter than 60 bytes are zero-padded.

use crate::checksum;
use crate::classify::{classify_strict, Transport};
use crate::ethernet::{self, EtherType, EthernetAddress, EthernetRepr};
use crate::icmp::{self, IcmpMessage, IcmpType};
use crate::ipv4::{self, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
use crate::tcp::{self, TcpFlags, TcpSegment};
use crate::Malformed;

/// The addresses an answer is sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    pub mac: EthernetAddress,
    pub ip: Ipv4Address,
}

/// Why no answer was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The received frame is malformed.
    Malformed(Malformed),
    /// The received frame must not, or cannot, be answered this way.
    NotAnswerable(NotAnswerable),
    /// The output buffer cannot hold the answer.
    BufferTooSmall,
}

/// Why a valid frame is not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAnswerable {
    /// Not the kind of packet this answer is for (an echo reply to
    /// something other than an echo request, a reset to something other
    /// than TCP, ...).
    WrongKind,
    /// Its IPv4 destination is not [`Local::ip`], or its Ethernet
    /// destination is not [`Local::mac`] (RFC 1122 §3.2.2: no ICMP error for
    /// a datagram "destined to an IP broadcast or IP multicast address" or
    /// "sent as a link-layer broadcast"; we answer only what was sent to
    /// our own addresses).
    NotAddressedToUs,
    /// Its source is not a single host: link-layer multicast or broadcast,
    /// or an IPv4 source that is unspecified, broadcast, multicast,
    /// loopback or class E (RFC 1122 §3.2.2).
    SourceNotUnicast,
    /// It is an ICMP error message (RFC 1122 §3.2.2: "An ICMP error message
    /// MUST NOT be sent as the result of receiving ... an ICMP error
    /// message").
    IcmpError,
    /// It is a reset (RFC 9293 §3.10.7.1: "An incoming segment containing a
    /// RST is discarded").
    Reset,
}

impl From<Malformed> for ReplyError {
    fn from(reason: Malformed) -> Self {
        ReplyError::Malformed(reason)
    }
}

impl From<NotAnswerable> for ReplyError {
    fn from(reason: NotAnswerable) -> Self {
        ReplyError::NotAnswerable(reason)
    }
}

/// Bytes of the quoted offending datagram in an ICMP error: its header plus
/// "the first 64 bits of the original datagram's data" (RFC 792).
const QUOTED_DATA_LEN: usize = 8;

/// Writes the echo reply to the echo request in `request` into `out` and
/// returns the frame's length. RFC 792: "To form an echo reply message, the
/// source and destination addresses are simply reversed, the type code
/// changed to 0, and the checksum recomputed"; identifier, sequence number
/// and data are returned unchanged. The checksum is computed afresh over
/// the reply (the request's was verified): RFC 1624's incremental update
/// would give 0x0000 for a reply whose words are all zero (identifier,
/// sequence and data zero), where the checksum must be 0xffff.
pub fn echo_reply(request: &[u8], local: Local, out: &mut [u8]) -> Result<usize, ReplyError> {
    let peer = answerable(request, local)?;
    if !matches!(peer.transport, Transport::Icmp { icmp_type: IcmpType::ECHO_REQUEST, .. }) {
        return Err(NotAnswerable::WrongKind.into());
    }
    let message = IcmpMessage::parse(ipv4_packet(request)?.payload())?;
    let icmp_len = message.as_bytes().len();
    let frame = start_ipv4_frame(out, &peer, local, IpProtocol::ICMP, icmp_len)?;
    let reply = &mut frame[ethernet::HEADER_LEN + ipv4::HEADER_LEN..];
    reply[..icmp_len].copy_from_slice(message.as_bytes());
    reply[0] = IcmpType::ECHO_REPLY.0;
    reply[2..4].fill(0);
    let sum = checksum::checksum(&reply[..icmp_len]);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(frame.len())
}

/// Writes an ICMP destination unreachable, port unreachable (code 3), for
/// the UDP datagram in `offending` into `out` and returns the frame's
/// length. RFC 1122 §3.2.2.1: a host SHOULD send it when "the designated
/// transport protocol ... is unable to demultiplex the datagram"; the
/// message quotes "the Internet header plus the first 64 bits of the
/// original datagram's data" (RFC 792).
pub fn port_unreachable(offending: &[u8], local: Local, out: &mut [u8]) -> Result<usize, ReplyError> {
    let peer = answerable(offending, local)?;
    if !matches!(peer.transport, Transport::Udp { .. }) {
        return Err(NotAnswerable::WrongKind.into());
    }
    destination_unreachable(offending, &peer, local, icmp::unreachable::PORT, out)
}

/// Writes an ICMP destination unreachable, protocol unreachable (code 2),
/// for the datagram in `offending`, whose protocol is none this crate
/// parses (not TCP, UDP or ICMP), into `out` and returns the frame's
/// length. RFC 1122 §3.2.2.1: a host SHOULD send it when "the designated
/// transport protocol is not supported". Quotes as [`port_unreachable`].
pub fn protocol_unreachable(offending: &[u8], local: Local, out: &mut [u8]) -> Result<usize, ReplyError> {
    let peer = answerable(offending, local)?;
    if peer.transport != Transport::Other {
        return Err(NotAnswerable::WrongKind.into());
    }
    destination_unreachable(offending, &peer, local, icmp::unreachable::PROTOCOL, out)
}

/// The destination unreachable message with `code` about the answerable
/// datagram in `offending`, from `peer`.
fn destination_unreachable(
    offending: &[u8],
    peer: &Peer,
    local: Local,
    code: u8,
    out: &mut [u8],
) -> Result<usize, ReplyError> {
    let ip = ipv4_packet(offending)?;
    let quoted_len = ip.header_len() + QUOTED_DATA_LEN.min(ip.payload().len());
    let quoted = &ip.packet()[..quoted_len];
    let icmp_len = icmp::HEADER_LEN + quoted.len();
    let frame = start_ipv4_frame(out, peer, local, IpProtocol::ICMP, icmp_len)?;
    let message = &mut frame[ethernet::HEADER_LEN + ipv4::HEADER_LEN..][..icmp_len];
    message[0] = IcmpType::DESTINATION_UNREACHABLE.0;
    message[1] = code;
    message[2..8].fill(0);
    message[icmp::HEADER_LEN..].copy_from_slice(quoted);
    let sum = checksum::checksum(message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(frame.len())
}

/// Writes the reset for the TCP segment in `segment`, which arrived for a
/// port with no listener, into `out` and returns the frame's length. RFC
/// 9293 §3.10.7.1 (CLOSED state):
///
/// - "An incoming segment containing a RST is discarded"
///   ([`NotAnswerable::Reset`]);
/// - "If the ACK bit is off, sequence number zero is used,
///   `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`";
/// - "If the ACK bit is on, `<SEQ=SEG.ACK><CTL=RST>`".
///
/// SEG.LEN counts SYN and FIN. The window is zero and there are no options.
pub fn tcp_reset(segment: &[u8], local: Local, out: &mut [u8]) -> Result<usize, ReplyError> {
    let peer = answerable(segment, local)?;
    let Transport::Tcp { src_port, dst_port, flags, .. } = peer.transport else {
        return Err(NotAnswerable::WrongKind.into());
    };
    if flags.rst() {
        return Err(NotAnswerable::Reset.into());
    }
    let received = TcpSegment::parse(ipv4_packet(segment)?.payload())?;
    let (seq, ack, reply_flags) = if flags.ack() {
        (received.ack(), 0, TcpFlags::RST)
    } else {
        let ack = received.seq().wrapping_add(received.segment_len());
        (0, ack, TcpFlags::RST.union(TcpFlags::ACK))
    };
    let frame = start_ipv4_frame(out, &peer, local, IpProtocol::TCP, tcp::HEADER_LEN)?;
    let header = &mut frame[ethernet::HEADER_LEN + ipv4::HEADER_LEN..][..tcp::HEADER_LEN];
    header[0..2].copy_from_slice(&dst_port.to_be_bytes());
    header[2..4].copy_from_slice(&src_port.to_be_bytes());
    header[4..8].copy_from_slice(&seq.to_be_bytes());
    header[8..12].copy_from_slice(&ack.to_be_bytes());
    header[12] = 5 << 4;
    header[13] = reply_flags.0;
    header[14..20].fill(0); // window, checksum, urgent pointer
    let sum = tcp::checksum(local.ip, peer.ip, header);
    header[16..18].copy_from_slice(&sum.to_be_bytes());
    Ok(frame.len())
}

/// The sender of a received packet that may be answered, and what it sent.
struct Peer {
    mac: EthernetAddress,
    ip: Ipv4Address,
    transport: Transport,
}

/// Classifies `frame` strictly and checks it is IPv4 from a single host to
/// `local.ip` at `local.mac`, and not an ICMP error.
fn answerable(frame: &[u8], local: Local) -> Result<Peer, ReplyError> {
    let parsed = classify_strict(frame)?;
    let Some(ip) = parsed.ipv4() else {
        return Err(NotAnswerable::WrongKind.into());
    };
    if ip.dst != local.ip || parsed.dst_mac != local.mac {
        return Err(NotAnswerable::NotAddressedToUs.into());
    }
    if parsed.src_mac.is_multicast() || !ip.src.is_unicast() {
        return Err(NotAnswerable::SourceNotUnicast.into());
    }
    if let Transport::Icmp { icmp_type, .. } = ip.transport {
        if icmp_type.is_error() {
            return Err(NotAnswerable::IcmpError.into());
        }
    }
    Ok(Peer { mac: parsed.src_mac, ip: ip.src, transport: ip.transport })
}

/// The IPv4 packet of an already classified frame.
fn ipv4_packet(frame: &[u8]) -> Result<Ipv4Packet<'_>, Malformed> {
    Ipv4Packet::parse(frame.get(ethernet::HEADER_LEN..).ok_or(Malformed::Truncated)?)
}

/// Writes the Ethernet and IPv4 headers of an answer to `peer` carrying
/// `payload_len` bytes of `protocol`, zero-pads the frame to the Ethernet
/// minimum, and returns the frame (headers, payload space, padding).
fn start_ipv4_frame<'b>(
    out: &'b mut [u8],
    peer: &Peer,
    local: Local,
    protocol: IpProtocol,
    payload_len: usize,
) -> Result<&'b mut [u8], ReplyError> {
    let packet_len = ipv4::HEADER_LEN + payload_len;
    let frame_len = (ethernet::HEADER_LEN + packet_len).max(ethernet::MIN_FRAME_LEN);
    let frame = out.get_mut(..frame_len).ok_or(ReplyError::BufferTooSmall)?;
    frame.fill(0);
    EthernetRepr { dst: peer.mac, src: local.mac, ethertype: EtherType::IPV4 }
        .emit(frame)
        .ok_or(ReplyError::BufferTooSmall)?;
    Ipv4Repr {
        src: local.ip,
        dst: peer.ip,
        protocol,
        payload_len: u16::try_from(payload_len).map_err(|_| ReplyError::BufferTooSmall)?,
        ttl: Ipv4Repr::DEFAULT_TTL,
    }
    .emit(&mut frame[ethernet::HEADER_LEN..])
    .ok_or(ReplyError::BufferTooSmall)?;
    Ok(frame)
}
