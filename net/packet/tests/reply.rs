//! The stray-packet daemon's answers: echo reply, port unreachable, reset.

mod common;

use common::*;
use net_packet::reply::{self, Local, NotAnswerable, ReplyError};
use net_packet::{
    classify_strict, EthernetAddress, IcmpMessage, IcmpType, Ipv4Address, Ipv4Packet, Malformed, TcpFlags, TcpSegment,
};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn local() -> Local {
    Local { mac: EthernetAddress(MAC_LOCAL), ip: Ipv4Address(IP_LOCAL) }
}

/// Checks the answer's Ethernet and IPv4 headers go from us to the peer,
/// and returns its IPv4 payload.
fn answer_payload(frame: &[u8]) -> Vec<u8> {
    let parsed = classify_strict(frame).expect("answers are valid frames");
    assert_eq!(parsed.src_mac, EthernetAddress(MAC_LOCAL));
    assert_eq!(parsed.dst_mac, EthernetAddress(MAC_PEER));
    assert_eq!(parsed.src_ip(), Some(Ipv4Address(IP_LOCAL)));
    assert_eq!(parsed.dst_ip(), Some(Ipv4Address(IP_PEER)));
    assert!(frame.len() >= 60);
    Ipv4Packet::parse(&frame[14..]).unwrap().payload().to_vec()
}

#[test]
fn echo_reply_returns_identifier_sequence_and_data() {
    let request = frame_to_local(1, &icmp(8, 0, [0xbe, 0xef, 0, 7], b"0123456789abcdef-odd"));
    let mut out = [0u8; 200];
    let len = reply::echo_reply(&request, local(), &mut out).unwrap();
    let payload = answer_payload(&out[..len]);
    let message = IcmpMessage::parse(&payload).unwrap();
    assert_eq!(message.icmp_type(), IcmpType::ECHO_REPLY);
    assert_eq!((message.echo_identifier(), message.echo_sequence()), (0xbeef, 7));
    assert_eq!(message.data(), b"0123456789abcdef-odd");
    // The incrementally updated checksum equals an independent recomputation.
    assert_eq!(payload, icmp(0, 0, [0xbe, 0xef, 0, 7], b"0123456789abcdef-odd"));
}

/// Found by the `packet` fuzz target: an echo request whose identifier,
/// sequence number and data are all zero (scapy's `IP()/ICMP()`, for one)
/// has a reply that sums to +0, whose checksum is 0xffff. RFC 1624's
/// incremental update gives 0x0000 there, which no receiver accepts.
#[test]
fn echo_reply_to_an_all_zero_request_has_a_valid_checksum() {
    for data in [&[][..], &[0; 8]] {
        let request = frame_to_local(1, &icmp(8, 0, [0; 4], data));
        let mut out = [0u8; 200];
        let len = reply::echo_reply(&request, local(), &mut out).unwrap();
        let payload = answer_payload(&out[..len]);
        assert_eq!(payload, icmp(0, 0, [0; 4], data));
        assert_eq!(IcmpMessage::parse(&payload).unwrap().checksum(), 0xffff);
    }
}

#[test]
fn echo_reply_refusals() {
    let mut out = [0u8; 200];
    let not_echo = frame_to_local(1, &icmp(13, 0, [0; 4], &[0; 12]));
    assert_eq!(
        reply::echo_reply(&not_echo, local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::WrongKind))
    );
    let udp = udp_frame(7, b"x");
    assert_eq!(reply::echo_reply(&udp, local(), &mut out), Err(ReplyError::NotAnswerable(NotAnswerable::WrongKind)));
    let to_broadcast = ethernet([0xff; 6], MAC_PEER, 0x0800, &ipv4(IP_PEER, [255; 4], 1, &icmp(8, 0, [0; 4], b"")));
    assert_eq!(
        reply::echo_reply(&to_broadcast, local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::NotAddressedToUs))
    );
    let from_multicast_mac =
        ethernet(MAC_LOCAL, [0x01, 0, 0x5e, 0, 0, 1], 0x0800, &ipv4(IP_PEER, IP_LOCAL, 1, &icmp(8, 0, [0; 4], b"")));
    assert_eq!(
        reply::echo_reply(&from_multicast_mac, local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::SourceNotUnicast))
    );
    let mut bad_checksum = frame_to_local(1, &icmp(8, 0, [0; 4], b"abc"));
    *bad_checksum.last_mut().unwrap() ^= 1;
    assert_eq!(
        reply::echo_reply(&bad_checksum, local(), &mut out),
        Err(ReplyError::Malformed(Malformed::BadL4Checksum))
    );
    let request = frame_to_local(1, &icmp(8, 0, [0; 4], b"abc"));
    assert_eq!(reply::echo_reply(&request, local(), &mut out[..59]), Err(ReplyError::BufferTooSmall));
}

#[test]
fn port_unreachable_quotes_header_and_eight_bytes() {
    let offending = udp_frame(9999, b"more than eight bytes of data");
    let mut out = [0u8; 200];
    let len = reply::port_unreachable(&offending, local(), &mut out).unwrap();
    let payload = answer_payload(&out[..len]);
    let quoted = &offending[14..14 + 20 + 8];
    assert_eq!(payload, icmp(3, 3, [0; 4], quoted));
}

#[test]
fn protocol_unreachable_for_protocols_no_one_speaks() {
    // IGMP (2) to our address.
    let offending = frame_to_local(2, &[0x11, 0x64, 0xee, 0x9b, 0, 0, 0, 0, 0xaa]);
    let mut out = [0u8; 200];
    let len = reply::protocol_unreachable(&offending, local(), &mut out).unwrap();
    let payload = answer_payload(&out[..len]);
    assert_eq!(payload, icmp(3, 2, [0; 4], &offending[14..14 + 20 + 8]));
    for known in [udp_frame(7, b"x"), tcp_frame(81, 1, 0, SYN, &[]), frame_to_local(1, &icmp(8, 0, [0; 4], b""))] {
        assert_eq!(
            reply::protocol_unreachable(&known, local(), &mut out),
            Err(ReplyError::NotAnswerable(NotAnswerable::WrongKind))
        );
    }
}

#[test]
fn nothing_sent_as_a_link_layer_broadcast_is_answered() {
    // RFC 1122 §3.2.2: to our IPv4 address, but to every station.
    let mut out = [0u8; 200];
    for dst_mac in [[0xff; 6], [0x01, 0, 0x5e, 0, 0, 1], [0x02, 0, 0, 0, 0, 0x99]] {
        let mut frames =
            [udp_frame(7, b"x"), tcp_frame(81, 1, 0, SYN, &[]), frame_to_local(1, &icmp(8, 0, [0; 4], b""))];
        for frame in &mut frames {
            frame[..6].copy_from_slice(&dst_mac);
        }
        let refused = Err(ReplyError::NotAnswerable(NotAnswerable::NotAddressedToUs));
        assert_eq!(reply::port_unreachable(&frames[0], local(), &mut out), refused);
        assert_eq!(reply::tcp_reset(&frames[1], local(), &mut out), refused);
        assert_eq!(reply::echo_reply(&frames[2], local(), &mut out), refused);
    }
}

#[test]
fn no_icmp_error_about_an_icmp_error() {
    let error = frame_to_local(1, &icmp(3, 3, [0; 4], &[0x45; 28]));
    let mut out = [0u8; 200];
    assert_eq!(reply::echo_reply(&error, local(), &mut out), Err(ReplyError::NotAnswerable(NotAnswerable::IcmpError)));
    assert_eq!(
        reply::port_unreachable(&error, local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::IcmpError))
    );
}

#[test]
fn port_unreachable_refusals() {
    let mut out = [0u8; 200];
    let from_broadcast =
        ethernet(MAC_LOCAL, MAC_PEER, 0x0800, &ipv4([255; 4], IP_LOCAL, 17, &udp([255; 4], IP_LOCAL, 1, 2, b"")));
    assert_eq!(
        reply::port_unreachable(&from_broadcast, local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::SourceNotUnicast))
    );
    let tcp = tcp_frame(81, 1, 0, SYN, &[]);
    assert_eq!(
        reply::port_unreachable(&tcp, local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::WrongKind))
    );
}

fn reset_for(frame: &[u8]) -> (u32, u32, TcpFlags, (u16, u16)) {
    let mut out = [0u8; 100];
    let len = reply::tcp_reset(frame, local(), &mut out).unwrap();
    assert_eq!(len, 60, "54 bytes padded to the Ethernet minimum");
    let payload = answer_payload(&out[..len]);
    let segment = TcpSegment::parse(&payload).unwrap();
    assert!(segment.verify_checksum(Ipv4Address(IP_LOCAL), Ipv4Address(IP_PEER)));
    assert_eq!(segment.window(), 0);
    (segment.seq(), segment.ack(), segment.flags(), (segment.src_port(), segment.dst_port()))
}

#[test]
fn reset_without_ack_acknowledges_seq_plus_len() {
    // SYN: SEG.LEN = 1.
    let (seq, ack, flags, ports) = reset_for(&tcp_frame(81, 1000, 0, SYN, &[]));
    assert_eq!((seq, ack, flags), (0, 1001, TcpFlags::RST.union(TcpFlags::ACK)));
    assert_eq!(ports, (81, 40000));
    // SYN+FIN with 3 bytes of data: SEG.LEN = 5, wrapping past 2^32.
    let (seq, ack, _, _) = reset_for(&tcp_frame(81, u32::MAX - 1, 0, SYN | FIN, b"abc"));
    assert_eq!((seq, ack), (0, 3));
}

#[test]
fn reset_with_ack_uses_seg_ack_as_seq() {
    let (seq, ack, flags, _) = reset_for(&tcp_frame(81, 5, 0xdead_beef, ACK, b"data"));
    assert_eq!((seq, ack, flags), (0xdead_beef, 0, TcpFlags::RST));
}

#[test]
fn never_reset_a_reset() {
    let mut out = [0u8; 100];
    for flags in [RST, RST | ACK] {
        assert_eq!(
            reply::tcp_reset(&tcp_frame(81, 1, 2, flags, &[]), local(), &mut out),
            Err(ReplyError::NotAnswerable(NotAnswerable::Reset))
        );
    }
    assert_eq!(
        reply::tcp_reset(&udp_frame(81, b""), local(), &mut out),
        Err(ReplyError::NotAnswerable(NotAnswerable::WrongKind))
    );
}
