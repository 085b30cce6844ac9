//! Property-style robustness: no input makes a parser or builder panic.
//!
//! A small deterministic PRNG (xorshift64*) generates random byte strings
//! and mutations of valid frames; every parse entry point must return
//! (Ok or Err) for every prefix of each.

mod common;

use common::*;
use lib_test_rng::Rng as XorShift;
use net_packet::reply::{self, Local};
use net_packet::{
    classify, classify_headers, classify_strict, ArpPacket, EthernetAddress, IcmpMessage, Ipv4Address, Ipv4Packet,
    TcpSegment, UdpDatagram,
};

fn exercise(bytes: &[u8]) {
    let local = Local { mac: EthernetAddress(MAC_LOCAL), ip: Ipv4Address(IP_LOCAL) };
    let mut out = [0u8; 1600];
    for end in 0..=bytes.len() {
        let prefix = &bytes[..end];
        let _ = classify(prefix);
        let _ = classify_strict(prefix);
        let _ = classify_headers(prefix);
        let _ = reply::echo_reply(prefix, local, &mut out);
        let _ = reply::port_unreachable(prefix, local, &mut out);
        let _ = reply::protocol_unreachable(prefix, local, &mut out);
        let _ = reply::protocol_unreachable(prefix, local, &mut out[..end.min(70)]);
        let _ = reply::tcp_reset(prefix, local, &mut out);
        let _ = reply::tcp_reset(prefix, local, &mut out[..end.min(80)]);
        if let Ok(ip) = Ipv4Packet::parse_header(prefix) {
            let _ = (ip.payload(), ip.packet(), ip.fragment_offset());
        }
        if let Ok(tcp) = TcpSegment::parse_header(prefix) {
            let _ = (tcp.options(), tcp.payload(), tcp.segment_len());
            let _ = tcp.verify_checksum(Ipv4Address(IP_PEER), Ipv4Address(IP_LOCAL));
        }
        if let Ok(udp) = UdpDatagram::parse_header(prefix) {
            let _ = udp.verify_checksum(Ipv4Address(IP_PEER), Ipv4Address(IP_LOCAL));
        }
        if let Ok(icmp) = IcmpMessage::parse(prefix) {
            let _ = (icmp.data(), icmp.verify_checksum());
        }
        if let Ok(arp) = ArpPacket::parse(prefix) {
            let _ = (arp.operation(), arp.target_ip());
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let len = rng.below(120);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make the interesting paths likely: an IPv4 or ARP EtherType and
        // a plausible version/IHL byte.
        if len > 14 {
            let ethertype: [u8; 2] = if rng.below(4) == 0 { [0x08, 0x06] } else { [0x08, 0x00] };
            bytes[12..14].copy_from_slice(&ethertype);
            if rng.below(2) == 0 {
                bytes[14] = 0x45;
            }
        }
        exercise(&bytes);
    }
}

#[test]
fn mutated_valid_frames_never_panic() {
    let seeds = [
        tcp_frame(80, 1, 0, 0x02, b"hello"),
        tcp_frame(80, 7, 9, 0x11, &[]),
        udp_frame(53, b"query bytes"),
        frame_to_local(1, &icmp(8, 0, [0, 1, 0, 2], b"ping")),
        frame_to_local(1, &icmp(3, 3, [0; 4], &[0x45; 28])),
    ];
    let mut rng = XorShift(42);
    for seed in &seeds {
        exercise(seed);
        for _ in 0..300 {
            let mut frame = seed.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(frame.len());
                frame[at] = rng.next() as u8;
            }
            if rng.below(3) == 0 {
                fix_ip_checksum(&mut frame);
            }
            exercise(&frame);
        }
    }
}
