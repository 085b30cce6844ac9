//! `net-packet`: every header parser of a received or outgoing frame
//! (Ethernet, ARP, IPv4, ICMP, UDP, TCP and its options), the one-pass
//! classifiers, and the stray-packet daemon's answers.
//!
//! The first byte chooses what the rest is:
//!
//! - `0`: a frame as received. When bit 0 of the second byte is set, the
//!   IPv4 header checksum is repaired first, and with bit 1 the TCP, UDP
//!   or ICMP checksum too (by a naive sum written here, independent of the
//!   crate's), so that the fuzzer gets past them. Checks: the three
//!   classifiers agree ([`classify_strict`] ⊆ [`classify`], and what
//!   `classify` accepts `classify_headers` accepts with the same
//!   summary); the summary is the frame's bytes; every length and offset
//!   a view reports lies inside the frame; a repaired frame never fails
//!   on a checksum; TCP options survive being written back
//!   ([`TcpHeader::emit`]); ARP packets are re-encoded byte for byte by
//!   [`ArpRepr::emit`].
//! - `1`: the same frame handed to the stray-packet daemon's four
//!   builders ([`net_packet::reply`]) from the frame's own destination
//!   (or from another address). An answer fits the buffer, is at least 60
//!   bytes, passes [`classify_strict`] (valid checksums), comes from the
//!   local addresses, goes back to the sender, and is itself never
//!   answered (no ICMP error about an ICMP error, no reset of a reset).
//! - `2`: raw TCP option bytes: [`TcpOptions::parse`] keeps a window
//!   scale of at most 14, and what it read is written and read back the
//!   same.
//! - anything else: headers written from fuzzed fields
//!   ([`Ipv4Repr`], [`EthernetRepr`], [`ArpRepr`], [`TcpHeader`]) parse
//!   back to those fields, and checksums set by the crate verify.

#![no_main]

use fuzz::Input;
use libfuzzer_sys::fuzz_target;
use net_packet::reply::{self, Local, ReplyError};
use net_packet::tcp::{self, TcpHeader, TcpOptions};
use net_packet::{
    arp, checksum, classify, classify_headers, classify_strict, ethernet, icmp, ipv4, udp, ArpOperation, ArpPacket,
    ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IcmpMessage, IcmpType, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv4Repr, Malformed, Network, Parsed, TcpFlags, TcpSegment, Transport, UdpDatagram,
};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() {
        0 => {
            let repair = input.u8();
            let mut frame = input.rest().to_vec();
            let repaired = repair_checksums(&mut frame, repair & 1 != 0, repair & 2 != 0);
            received_frame(&frame, repaired);
        }
        1 => {
            let which = input.u8();
            let out_len = usize::from(input.u16()) % 1600;
            let frame = input.rest().to_vec();
            let mut frame = frame;
            repair_checksums(&mut frame, which & 0x10 != 0, which & 0x20 != 0);
            answers(&frame, which, out_len);
        }
        2 => tcp_options(input.rest()),
        _ => written_headers(&mut input),
    }
});

/// What the repair did: the IPv4 header checksum, the transport's.
#[derive(Clone, Copy, Default)]
struct Repaired {
    ip: bool,
    l4: bool,
}

/// The Internet checksum of `chunks`, naively: every 16-bit word into a
/// `u64`, folded at the end.
fn naive_checksum(chunks: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = chunks.concat();
    let mut total: u64 = 0;
    for pair in bytes.chunks(2) {
        total += u64::from(pair[0]) << 8 | u64::from(pair.get(1).copied().unwrap_or(0));
    }
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    !(total as u16)
}

/// Makes the IPv4 header checksum (and the transport's) right, where the
/// header is there to be summed.
fn repair_checksums(frame: &mut [u8], ip: bool, l4: bool) -> Repaired {
    let mut done = Repaired::default();
    if !ip || frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return done;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    if ihl < 20 || frame.len() < 14 + ihl {
        return done;
    }
    frame[24..26].fill(0);
    let sum = naive_checksum(&[&frame[14..14 + ihl]]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
    done.ip = true;
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    if !l4 || total < ihl || frame.len() < 14 + total {
        return done;
    }
    let (src, dst, protocol) =
        ([frame[26], frame[27], frame[28], frame[29]], [frame[30], frame[31], frame[32], frame[33]], frame[23]);
    let payload = &mut frame[14 + ihl..14 + total];
    let len = payload.len();
    let pseudo = |payload: &[u8]| {
        let mut p = Vec::with_capacity(12);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0, protocol]);
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p
    };
    let at = match protocol {
        6 if len >= 20 => 16,
        17 if len >= 8 => 6,
        1 if len >= 8 => 2,
        _ => return done,
    };
    payload[at..at + 2].fill(0);
    let sum = if protocol == 1 { naive_checksum(&[payload]) } else { naive_checksum(&[&pseudo(payload), payload]) };
    // RFC 768: a computed zero is sent as all ones (zero means "none").
    let sum = if protocol == 17 && sum == 0 { 0xffff } else { sum };
    payload[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    done.l4 = true;
    done
}

fn received_frame(frame: &[u8], repaired: Repaired) {
    let strict = classify_strict(frame);
    let loose = classify(frame);
    let headers = classify_headers(frame);
    if let Ok(p) = strict {
        assert_eq!(loose, Ok(p), "classify_strict accepted what classify refused");
    }
    match (loose, strict) {
        (Ok(_), Err(reason)) => {
            assert_eq!(reason, Malformed::BadL4Checksum, "classify_strict differs only by checksums")
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "both refuse for the same reason"),
        _ => {}
    }
    if repaired.ip {
        assert_ne!(loose, Err(Malformed::BadIpChecksum), "a repaired IPv4 header checksum verifies");
    }
    if repaired.l4 {
        assert_ne!(strict, Err(Malformed::BadL4Checksum), "a repaired transport checksum verifies");
    }
    let Ok(parsed) = loose else { return };
    assert_eq!(headers, Ok(parsed), "classify_headers reads what classify read");
    assert_eq!(parsed.reversed().reversed(), parsed);
    summary_is_the_frame(frame, &parsed);
}

/// The summary's fields are the frame's bytes, and every view's lengths
/// lie inside it.
fn summary_is_the_frame(frame: &[u8], parsed: &Parsed) {
    let eth = EthernetFrame::parse(frame).expect("classify parsed it");
    assert_eq!(parsed.dst_mac.0, frame[0..6]);
    assert_eq!(parsed.src_mac.0, frame[6..12]);
    assert_eq!(parsed.ethertype.0, u16::from_be_bytes([frame[12], frame[13]]));
    assert_eq!(eth.payload().len(), frame.len() - ethernet::HEADER_LEN);
    match parsed.network {
        Network::Other => assert!(parsed.ethertype != EtherType::IPV4 && parsed.ethertype != EtherType::ARP),
        Network::Arp(summary) => {
            assert_eq!(parsed.ethertype, EtherType::ARP);
            let packet = ArpPacket::parse(eth.payload()).expect("classify parsed it");
            let repr = ArpRepr {
                operation: summary.operation,
                sender_mac: summary.sender_mac,
                sender_ip: summary.sender_ip,
                target_mac: summary.target_mac,
                target_ip: summary.target_ip,
            };
            let mut bytes = [0u8; arp::PACKET_LEN];
            repr.emit(&mut bytes).unwrap();
            assert_eq!(bytes, eth.payload()[..arp::PACKET_LEN], "an ARP packet is re-encoded byte for byte");
            assert_eq!(packet.operation(), Some(summary.operation));
            if let Some(reply) = ArpRepr::reply_to(&packet, EthernetAddress([2, 0, 0, 0, 0, 9])) {
                assert_eq!(summary.operation, ArpOperation::Request);
                assert_eq!((reply.target_mac, reply.target_ip), (summary.sender_mac, summary.sender_ip));
                let mut out = [0u8; 64];
                assert_eq!(reply.emit_frame(&mut out), Some(ethernet::MIN_FRAME_LEN));
                let back = classify(&out[..ethernet::MIN_FRAME_LEN]).expect("the reply parses");
                assert_eq!(back.dst_mac, summary.sender_mac);
            }
        }
        Network::Ipv4(ip) => {
            assert_eq!(parsed.ethertype, EtherType::IPV4);
            let packet = Ipv4Packet::parse(eth.payload()).expect("classify parsed it");
            assert_eq!(packet.header_len(), ipv4::HEADER_LEN, "options are refused");
            assert!(!packet.is_fragment(), "fragments are refused");
            assert_eq!((packet.src(), packet.dst(), packet.protocol()), (ip.src, ip.dst, ip.protocol));
            let total = usize::from(packet.total_len());
            assert!(total <= eth.payload().len() && total >= packet.header_len());
            assert_eq!(packet.packet().len(), total);
            assert_eq!(packet.payload().len(), total - packet.header_len());
            let payload = packet.payload();
            match ip.transport {
                Transport::Tcp { src_port, dst_port, seq, ack, flags } => {
                    assert_eq!(ip.protocol, IpProtocol::TCP);
                    let segment = TcpSegment::parse(payload).expect("classify parsed it");
                    assert_eq!((segment.src_port(), segment.dst_port()), (src_port, dst_port));
                    assert_eq!((segment.seq(), segment.ack(), segment.flags()), (seq, ack, flags));
                    assert!(segment.header_len() >= tcp::HEADER_LEN && segment.header_len() <= payload.len());
                    assert_eq!(segment.options().len(), segment.header_len() - tcp::HEADER_LEN);
                    assert_eq!(segment.payload().len(), payload.len() - segment.header_len());
                    let expected = segment.payload().len() as u32 + u32::from(flags.syn()) + u32::from(flags.fin());
                    assert_eq!(segment.segment_len(), expected);
                    tcp_options(segment.options());
                }
                Transport::Udp { src_port, dst_port } => {
                    assert_eq!(ip.protocol, IpProtocol::UDP);
                    let datagram = UdpDatagram::parse(payload).expect("classify parsed it");
                    assert_eq!((datagram.src_port(), datagram.dst_port()), (src_port, dst_port));
                    assert_eq!(usize::from(datagram.length()), payload.len());
                    assert_eq!(datagram.payload().len(), payload.len() - udp::HEADER_LEN);
                }
                Transport::Icmp { icmp_type, code } => {
                    assert_eq!(ip.protocol, IpProtocol::ICMP);
                    let message = IcmpMessage::parse(payload).expect("classify parsed it");
                    assert_eq!((message.icmp_type(), message.code()), (icmp_type, code));
                    assert_eq!(message.data().len(), payload.len() - icmp::HEADER_LEN);
                }
                Transport::Other => {
                    assert!(![IpProtocol::TCP, IpProtocol::UDP, IpProtocol::ICMP].contains(&ip.protocol))
                }
            }
        }
    }
}

/// The four answers of the stray-packet daemon.
fn answers(frame: &[u8], which: u8, out_len: usize) {
    let parsed = classify_strict(frame).ok();
    // Mostly from the frame's own destination, so that it is "ours".
    let local = match (which & 0x40 == 0, parsed) {
        (true, Some(p)) => Local { mac: p.dst_mac, ip: p.dst_ip().unwrap_or(Ipv4Address::new(10, 0, 0, 1)) },
        _ => Local { mac: EthernetAddress([2, 0, 0, 0, 0, 1]), ip: Ipv4Address::new(10, 0, 0, 1) },
    };
    let mut out = vec![0xa5u8; out_len];
    let builders: [fn(&[u8], Local, &mut [u8]) -> Result<usize, ReplyError>; 4] =
        [reply::echo_reply, reply::port_unreachable, reply::protocol_unreachable, reply::tcp_reset];
    let kind = usize::from(which & 3);
    let result = builders[kind](frame, local, &mut out);
    let Ok(n) = result else {
        if let Err(ReplyError::Malformed(reason)) = result {
            assert_eq!(classify_strict(frame), Err(reason), "an answer refuses what classify_strict refuses");
        }
        return;
    };
    let asked = parsed.expect("only a valid frame is answered");
    assert!(n <= out.len(), "the answer fits the buffer");
    assert!(n >= ethernet::MIN_FRAME_LEN, "short answers are padded to 60 bytes");
    let answer = classify_strict(&out[..n]).expect("an answer is a valid frame with valid checksums");
    assert_eq!((answer.src_mac, answer.src_ip()), (local.mac, Some(local.ip)), "sent from the local addresses");
    assert_eq!((answer.dst_mac, answer.dst_ip()), (asked.src_mac, asked.src_ip()), "sent back to the sender");
    assert!(local.mac == asked.dst_mac && Some(local.ip) == asked.dst_ip(), "only what was sent to us is answered");
    let transport = answer.ipv4().expect("an IPv4 answer").transport;
    match kind {
        0 => {
            // RFC 792: the type changes to 0; the rest is returned as it came.
            let Some(Transport::Icmp { code: asked_code, .. }) = asked.ipv4().map(|ip| ip.transport) else {
                panic!("an echo reply answers ICMP")
            };
            assert!(
                matches!(transport, Transport::Icmp { icmp_type: IcmpType::ECHO_REPLY, code } if code == asked_code)
            );
        }
        1 => assert!(matches!(transport, Transport::Icmp { icmp_type: IcmpType::DESTINATION_UNREACHABLE, code: 3 })),
        2 => assert!(matches!(transport, Transport::Icmp { icmp_type: IcmpType::DESTINATION_UNREACHABLE, code: 2 })),
        _ => assert!(matches!(transport, Transport::Tcp { flags, .. } if flags.rst())),
    }
    // An answer is never answered in turn.
    let mut again = vec![0u8; 1600];
    let answer_local = Local { mac: answer.dst_mac, ip: answer.dst_ip().unwrap() };
    for (i, build) in builders.iter().enumerate() {
        if build(&out[..n], answer_local, &mut again).is_ok() {
            panic!("builder {i} answered the answer of builder {kind}");
        }
    }
}

/// TCP options: what is read is within bounds and written back the same.
fn tcp_options(bytes: &[u8]) {
    let options = TcpOptions::parse(bytes);
    if let Some(shift) = options.window_scale {
        assert!(shift <= tcp::MAX_WINDOW_SCALE);
    }
    let header = TcpHeader {
        src_port: 1,
        dst_port: 2,
        seq: 3,
        ack: 4,
        flags: TcpFlags::SYN,
        window: 5,
        mss: options.mss,
        window_scale: options.window_scale,
    };
    let mut buf = [0u8; 60];
    let len = header.emit(&mut buf).expect("a SYN-ACK header fits 60 bytes");
    let segment = TcpSegment::parse(&buf[..len]).expect("an emitted header parses");
    assert_eq!(segment.header_len(), len);
    let back = TcpOptions::parse(segment.options());
    assert_eq!((back.mss, back.window_scale), (options.mss, options.window_scale));
}

/// Headers written from fuzzed fields parse back to them.
fn written_headers(input: &mut Input<'_>) {
    let mac = |input: &mut Input<'_>| EthernetAddress(core::array::from_fn(|_| input.u8()));
    let ip = |input: &mut Input<'_>| Ipv4Address::from_u32(input.u32());
    let eth = EthernetRepr { dst: mac(input), src: mac(input), ethertype: EtherType(input.u16()) };
    let repr = Ipv4Repr {
        src: ip(input),
        dst: ip(input),
        protocol: IpProtocol(input.u8()),
        payload_len: input.u16() % 1500,
        ttl: input.u8(),
    };
    let payload = input.long_piece(usize::from(repr.payload_len));
    let mut frame = vec![0u8; 14 + 20 + usize::from(repr.payload_len)];
    eth.emit(&mut frame).unwrap();
    repr.emit(&mut frame[14..]).unwrap();
    frame[34..34 + payload.len()].copy_from_slice(payload);
    let view = EthernetFrame::parse(&frame).unwrap();
    assert_eq!((view.dst(), view.src(), view.ethertype()), (eth.dst, eth.src, eth.ethertype));
    let packet = Ipv4Packet::parse(&frame[14..]).expect("an emitted IPv4 header parses, checksum included");
    assert_eq!(
        (packet.src(), packet.dst(), packet.protocol(), packet.ttl()),
        (repr.src, repr.dst, repr.protocol, repr.ttl)
    );
    assert_eq!(packet.payload().len(), usize::from(repr.payload_len));
    assert!(packet.dont_fragment() && !packet.is_fragment() && !packet.has_options());

    // Transport checksums the crate writes verify with the crate's views.
    let body = packet.payload().to_vec();
    if body.len() >= tcp::HEADER_LEN {
        let mut segment = body.clone();
        segment[12] = (segment[12] & 0x0f) | 5 << 4;
        tcp::set_checksum(&mut segment, 0).unwrap();
        let sum = tcp::checksum(repr.src, repr.dst, &segment);
        tcp::set_checksum(&mut segment, sum).unwrap();
        assert!(TcpSegment::parse(&segment).unwrap().verify_checksum(repr.src, repr.dst));
    }
    if body.len() >= udp::HEADER_LEN {
        let mut datagram = body.clone();
        datagram[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
        datagram[6..8].fill(0);
        let sum = udp::checksum(repr.src, repr.dst, &datagram);
        assert_ne!(sum, 0, "RFC 768: a computed zero is sent as all ones");
        datagram[6..8].copy_from_slice(&sum.to_be_bytes());
        let parsed = UdpDatagram::parse(&datagram).unwrap();
        assert!(parsed.verify_checksum(repr.src, repr.dst));
    }
    if body.len() >= 4 {
        // RFC 1624: an incrementally updated checksum equals a fresh one.
        let mut message = body.clone();
        message[2..4].fill(0);
        let sum = checksum::checksum(&message);
        message[2..4].copy_from_slice(&sum.to_be_bytes());
        let old = u16::from_be_bytes([message[0], message[1]]);
        let new = input.u16();
        message[0..2].copy_from_slice(&new.to_be_bytes());
        let updated = checksum::update_word(sum, old, new);
        message[2..4].copy_from_slice(&updated.to_be_bytes());
        if message.iter().enumerate().all(|(i, &b)| b == 0 || (2..4).contains(&i)) {
            // The limit `update_word` documents: all-zero data gives +0.
            assert_eq!(updated, 0);
        } else {
            assert!(checksum::verify(&message), "update_word keeps the checksum valid");
        }
    }

    let arp_repr = ArpRepr {
        operation: if input.bool() { ArpOperation::Request } else { ArpOperation::Reply },
        sender_mac: mac(input),
        sender_ip: ip(input),
        target_mac: mac(input),
        target_ip: ip(input),
    };
    let mut arp_frame = [0u8; 60];
    assert_eq!(arp_repr.emit_frame(&mut arp_frame), Some(60));
    let packet = ArpPacket::parse(&arp_frame[14..]).unwrap();
    assert_eq!(packet.operation(), Some(arp_repr.operation));
    assert_eq!((packet.sender_mac(), packet.sender_ip()), (arp_repr.sender_mac, arp_repr.sender_ip));
    assert_eq!((packet.target_mac(), packet.target_ip()), (arp_repr.target_mac, arp_repr.target_ip));
}
