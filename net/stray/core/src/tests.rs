//! The daemon with a fake clock. Frames are built here with a separate,
//! naive checksum; answers are checked with `net_packet`'s strict parser (which
//! verifies every checksum) and field by field.

use super::*;
use lib_test_rng::Rng;
use net_packet::reply::NotAnswerable;
use net_packet::{
    classify_strict, EthernetAddress, IcmpMessage, Ipv4Address, Ipv4Packet, Malformed, TcpFlags, TcpSegment,
};
use std::vec::Vec;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const IP: [u8; 4] = [10, 0, 2, 15];
const PEER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const PEER: [u8; 4] = [10, 0, 2, 2];
const T0: u64 = 3 * SECOND_NS;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn local() -> Local {
    Local { mac: EthernetAddress(MAC), ip: Ipv4Address(IP) }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for pair in bytes.chunks(2) {
        sum += u64::from(pair[0]) << 8 | u64::from(*pair.get(1).unwrap_or(&0));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame with these addresses carrying `l4` of `protocol`, checksums
/// right (the transport checksum too, for TCP, UDP and ICMP).
fn frame(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut l4 = l4.to_vec();
    let pseudo = [&src[..], &dst[..], &[0, protocol], &(l4.len() as u16).to_be_bytes()].concat();
    match protocol {
        1 => {
            let sum = checksum(&l4);
            l4[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        6 => {
            let sum = checksum(&[&pseudo[..], &l4].concat());
            l4[16..18].copy_from_slice(&sum.to_be_bytes());
        }
        17 => {
            let sum = checksum(&[&pseudo[..], &l4].concat());
            l4[6..8].copy_from_slice(&sum.to_be_bytes());
        }
        _ => {}
    }
    let mut ip = std::vec![0x45, 0];
    ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0xab, 0xcd, 0x40, 0, 64, protocol, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = [&dst_mac[..], &PEER_MAC[..], &[0x08, 0x00]].concat();
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&l4);
    frame
}

fn to_us(protocol: u8, l4: &[u8]) -> Vec<u8> {
    frame(MAC, PEER, IP, protocol, l4)
}

fn echo_request(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut icmp = std::vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(data);
    icmp
}

fn udp(dst_port: u16, data: &[u8]) -> Vec<u8> {
    let mut udp = std::vec![0x9c, 0x40];
    udp.extend_from_slice(&dst_port.to_be_bytes());
    udp.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    udp
}

fn tcp(dst_port: u16, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut tcp = std::vec![0xc3, 0x50];
    tcp.extend_from_slice(&dst_port.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    tcp.extend_from_slice(data);
    tcp
}

/// Handles `frame` and returns the answer, checked to be a valid frame from
/// us to the peer, as its IPv4 payload.
fn answer(stray: &mut Stray, now: u64, frame: &[u8], expect: Answer) -> Vec<u8> {
    let mut out = [0u8; 1514];
    let outcome = stray.handle(now, frame, &mut out);
    let Outcome::Send { answer, len } = outcome else { panic!("not answered: {outcome:?}") };
    assert_eq!(answer, expect);
    let sent = &out[..len];
    let parsed = classify_strict(sent).expect("answers are valid, checksums included");
    assert_eq!(
        (parsed.src_mac, parsed.dst_mac),
        (EthernetAddress(MAC), EthernetAddress(PEER_MAC)),
        "to the frame's source MAC"
    );
    assert_eq!((parsed.src_ip(), parsed.dst_ip()), (Some(Ipv4Address(IP)), Some(Ipv4Address(PEER))));
    Ipv4Packet::parse(&sent[14..]).unwrap().payload().to_vec()
}

fn ignored(stray: &mut Stray, frame: &[u8]) -> Outcome {
    let mut out = [0u8; 1514];
    let outcome = stray.handle(T0, frame, &mut out);
    assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    outcome
}

#[test]
fn echo_requests_get_echo_replies() {
    let mut stray = Stray::new(local());
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let payload = answer(&mut stray, T0, &to_us(1, &echo_request(0x1234, 9, &data)), Answer::EchoReply);
    let reply = IcmpMessage::parse(&payload).unwrap();
    assert_eq!((reply.icmp_type().0, reply.code()), (0, 0));
    assert_eq!((reply.echo_identifier(), reply.echo_sequence()), (0x1234, 9));
    assert_eq!(reply.data(), &data[..]);
    assert_eq!(stray.counters().echo_replies, 1);
}

#[test]
fn udp_to_a_closed_port_gets_port_unreachable() {
    let mut stray = Stray::new(local());
    let offending = to_us(17, &udp(5353, b"a datagram for no one"));
    let payload = answer(&mut stray, T0, &offending, Answer::PortUnreachable);
    assert_eq!(&payload[..2], &[3, 3], "destination unreachable, port");
    assert_eq!(&payload[4..8], &[0; 4]);
    assert_eq!(&payload[8..], &offending[14..14 + 28], "the IPv4 header and 8 bytes");
    assert_eq!(stray.counters().port_unreachable, 1);
}

#[test]
fn another_protocol_gets_protocol_unreachable() {
    let mut stray = Stray::new(local());
    let offending = to_us(47, &[0, 0, 0x08, 0, 0x45, 0, 0, 20, 1, 2, 3, 4]); // GRE
    let payload = answer(&mut stray, T0, &offending, Answer::ProtocolUnreachable);
    assert_eq!(&payload[..2], &[3, 2]);
    assert_eq!(&payload[8..], &offending[14..14 + 28]);
}

fn reset(stray: &mut Stray, segment: &[u8]) -> (u32, u32, TcpFlags) {
    let payload = answer(stray, T0, &to_us(6, segment), Answer::Reset);
    let rst = TcpSegment::parse(&payload).unwrap();
    assert_eq!((rst.src_port(), rst.dst_port()), (8080, 50000));
    assert!(rst.payload().is_empty());
    (rst.seq(), rst.ack(), rst.flags())
}

#[test]
fn tcp_for_no_connection_gets_a_reset_per_rfc_9293() {
    let mut stray = Stray::new(local());
    let rst_ack = TcpFlags(RST | ACK);
    // No ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN and FIN counted.
    assert_eq!(reset(&mut stray, &tcp(8080, 1000, 0, SYN, &[])), (0, 1001, rst_ack));
    assert_eq!(reset(&mut stray, &tcp(8080, 1000, 0, SYN | FIN, b"xyz")), (0, 1005, rst_ack));
    assert_eq!(reset(&mut stray, &tcp(8080, u32::MAX, 0, FIN, &[])), (0, 0, rst_ack), "wraps");
    // ACK: <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(reset(&mut stray, &tcp(8080, 5, 0xfeed_f00d, ACK | PSH, b"GET /")), (0xfeed_f00d, 0, TcpFlags(RST)));
    assert_eq!(stray.counters().resets, 4);
    // Never a reset to a reset.
    for flags in [RST, RST | ACK] {
        assert_eq!(
            ignored(&mut stray, &to_us(6, &tcp(8080, 1, 2, flags, &[]))),
            Outcome::Ignored(ReplyError::NotAnswerable(NotAnswerable::Reset))
        );
    }
    assert_eq!(stray.counters().ignored, 2);
}

#[test]
fn what_must_not_be_answered_is_not() {
    let mut stray = Stray::new(local());
    let ping = echo_request(1, 1, b"hi");
    let not_for_us = Outcome::Ignored(ReplyError::NotAnswerable(NotAnswerable::NotAddressedToUs));
    let not_unicast = Outcome::Ignored(ReplyError::NotAnswerable(NotAnswerable::SourceNotUnicast));
    // Broadcast and multicast destinations, another host, a link-layer broadcast.
    for dst in [[255; 4], [10, 0, 2, 255], [224, 0, 0, 1], [10, 0, 2, 16]] {
        assert_eq!(ignored(&mut stray, &frame(MAC, PEER, dst, 1, &ping)), not_for_us, "{dst:?}");
        assert_eq!(ignored(&mut stray, &frame(MAC, PEER, dst, 17, &udp(9, b""))), not_for_us);
    }
    assert_eq!(ignored(&mut stray, &frame([0xff; 6], PEER, IP, 17, &udp(9, b""))), not_for_us);
    assert_eq!(ignored(&mut stray, &frame([0xff; 6], PEER, IP, 6, &tcp(9, 1, 0, SYN, &[]))), not_for_us);
    // Sources that are not a single host.
    for src in [[0; 4], [255; 4], [224, 0, 0, 5], [127, 0, 0, 1]] {
        assert_eq!(ignored(&mut stray, &frame(MAC, src, IP, 17, &udp(9, b""))), not_unicast, "{src:?}");
    }
    let mut from_multicast_mac = to_us(6, &tcp(9, 1, 0, SYN, &[]));
    from_multicast_mac[6] = 0x01;
    assert_eq!(ignored(&mut stray, &from_multicast_mac), not_unicast);
    // ICMP errors, and ICMP that is not an echo request.
    let mut unreachable = std::vec![3, 3, 0, 0, 0, 0, 0, 0];
    unreachable.extend_from_slice(&to_us(17, &udp(9, b""))[14..14 + 28]);
    assert_eq!(
        ignored(&mut stray, &to_us(1, &unreachable)),
        Outcome::Ignored(ReplyError::NotAnswerable(NotAnswerable::IcmpError))
    );
    let mut echo_reply = ping.clone();
    echo_reply[0] = 0;
    assert_eq!(
        ignored(&mut stray, &to_us(1, &echo_reply)),
        Outcome::Ignored(ReplyError::NotAnswerable(NotAnswerable::WrongKind))
    );
    assert_eq!(stray.counters().ignored, 17);
    // Bad checksums: discarded silently (RFC 1122 §3.2.2, §4.1.3.4).
    let mut corrupt = to_us(17, &udp(9, b"data"));
    *corrupt.last_mut().unwrap() ^= 0x40;
    assert_eq!(ignored(&mut stray, &corrupt), Outcome::Ignored(ReplyError::Malformed(Malformed::BadL4Checksum)));
    let mut bad_header = to_us(1, &ping);
    bad_header[22] ^= 1; // TTL, under the header checksum
    assert_eq!(ignored(&mut stray, &bad_header), Outcome::Ignored(ReplyError::Malformed(Malformed::BadIpChecksum)));
    ignored(&mut stray, &bad_header[..20]);
    assert_eq!(stray.counters().malformed, 3);
    // Not IPv4.
    let mut arp = to_us(1, &ping);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    ignored(&mut stray, &arp);
    let c = stray.counters();
    assert_eq!(c.echo_replies + c.port_unreachable + c.protocol_unreachable + c.resets, 0);
}

#[test]
fn answers_are_rate_limited_by_the_bucket() {
    let mut stray = Stray::new(local());
    let ping = to_us(1, &echo_request(7, 7, b"x"));
    let mut out = [0u8; 1514];
    let sent = |stray: &mut Stray, now: u64, n: usize, out: &mut [u8]| {
        (0..n).filter(|_| matches!(stray.handle(now, &ping, out), Outcome::Send { .. })).count()
    };
    assert_eq!(sent(&mut stray, T0, 80, &mut out), BURST as usize, "a burst of {BURST}");
    assert_eq!(stray.counters().rate_limited, 80 - BURST);
    assert_eq!(stray.handle(T0, &ping, &mut out), Outcome::RateLimited(Answer::EchoReply));
    // One token every 10 ms.
    assert_eq!(sent(&mut stray, T0 + 9_999_999, 5, &mut out), 0);
    assert_eq!(sent(&mut stray, T0 + 10_000_000, 5, &mut out), 1);
    // A quiet second refills the burst, no more.
    assert_eq!(sent(&mut stray, T0 + 2 * SECOND_NS, 200, &mut out), BURST as usize);
    // Sustained: 100 a second.
    let mut total = 0;
    for ms in 1..=1000u64 {
        total += sent(&mut stray, T0 + 2 * SECOND_NS + ms * 1_000_000, 3, &mut out);
    }
    assert_eq!(total, RATE_PER_SECOND as usize);
}

#[test]
fn only_answerable_packets_take_tokens() {
    let mut stray = Stray::with_limit(local(), TokenBucket::new(1, 1));
    let broadcast_ping = frame(MAC, PEER, [255; 4], 1, &echo_request(1, 1, b""));
    for _ in 0..10 {
        ignored(&mut stray, &broadcast_ping);
    }
    assert_eq!(stray.counters().rate_limited, 0);
    answer(&mut stray, T0, &to_us(17, &udp(7, b"")), Answer::PortUnreachable);
}

#[test]
fn the_bucket_survives_odd_clocks() {
    let mut bucket = TokenBucket::new(RATE_PER_SECOND, 2);
    let t = 10 * SECOND_NS;
    assert!(bucket.try_take(t) && bucket.try_take(t));
    assert!(!bucket.try_take(t));
    // A clock going back refills nothing and does not move the refill's start.
    assert!(!bucket.try_take(t / 2));
    assert!(!bucket.try_take(t + 9_999_999));
    assert!(bucket.try_take(t + 10_000_000));
    // A huge gap neither overflows nor exceeds the burst.
    assert!(bucket.try_take(u64::MAX) && bucket.try_take(u64::MAX));
    assert!(!bucket.try_take(u64::MAX));
    let mut never = TokenBucket::new(0, 0);
    assert!(!never.try_take(0) && !never.try_take(u64::MAX));
}

#[test]
fn mutated_frames_never_panic_and_every_answer_is_valid() {
    let mut stray = Stray::with_limit(local(), TokenBucket::new(u64::MAX, u64::MAX));
    let seeds = [
        to_us(1, &echo_request(3, 4, b"0123456789")),
        to_us(17, &udp(53, b"query")),
        to_us(6, &tcp(22, 77, 0, SYN, &[])),
        to_us(6, &tcp(22, 77, 88, ACK, b"ssh")),
        to_us(132, &[1, 2, 3, 4]),
    ];
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut out = [0u8; 1514];
    let mut answered = 0;
    for round in 0..30_000u64 {
        let mut frame = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
        for _ in 0..rng.next() % 3 {
            let at = (rng.next() % frame.len() as u64) as usize;
            frame[at] = rng.next() as u8;
        }
        frame.truncate(frame.len() - (rng.next() % 4) as usize);
        if let Outcome::Send { len, .. } = stray.handle(round, &frame, &mut out) {
            let parsed = classify_strict(&out[..len]).expect("a valid answer");
            assert_eq!((parsed.src_mac, parsed.src_ip()), (EthernetAddress(MAC), Some(Ipv4Address(IP))));
            assert!(parsed.dst_mac.is_unicast());
            answered += 1;
        }
    }
    assert!(answered > 1000, "{answered}");
    assert!(stray.counters().malformed > 0 && stray.counters().ignored > 0);
}

#[test]
fn only_the_kinds_of_its_policy_are_answered() {
    let mut stray = Stray::new(local()).answering(net_config::ANSWER_ECHO_REPLY);
    answer(&mut stray, T0, &to_us(1, &echo_request(1, 1, b"x")), Answer::EchoReply);
    let mut out = [0u8; 1514];
    let datagram = to_us(17, &udp(5353, b"d"));
    assert_eq!(stray.handle(T0, &datagram, &mut out), Outcome::NotAllowed(Answer::PortUnreachable));
    let syn = to_us(6, &tcp(22, 5, 0, 0x02, b""));
    assert_eq!(stray.handle(T0, &syn, &mut out), Outcome::NotAllowed(Answer::Reset));
    assert_eq!((stray.counters().echo_replies, stray.counters().not_allowed), (1, 2));
    assert_eq!(
        Stray::new(local()).answering(0).handle(T0, &datagram, &mut out),
        Outcome::NotAllowed(Answer::PortUnreachable)
    );
}
