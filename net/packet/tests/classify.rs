//! `classify` on known-good frames and on every malformed case.

mod common;

use common::*;
use net_packet::{
    classify, classify_headers, classify_strict, ArpOperation, EtherType, EthernetAddress, IcmpType, IpProtocol,
    Ipv4Address, Malformed, Network, TcpFlags, Transport,
};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

#[test]
fn tcp_frame_is_summarised() {
    let frame = tcp_frame(80, 1000, 0, SYN, &[]);
    let parsed = classify_strict(&frame).unwrap();
    assert_eq!(parsed.dst_mac, EthernetAddress(MAC_LOCAL));
    assert_eq!(parsed.src_mac, EthernetAddress(MAC_PEER));
    assert_eq!(parsed.ethertype, EtherType::IPV4);
    assert_eq!(parsed.ip_protocol(), Some(IpProtocol::TCP));
    assert_eq!(parsed.src_ip(), Some(Ipv4Address(IP_PEER)));
    assert_eq!(parsed.dst_ip(), Some(Ipv4Address(IP_LOCAL)));
    assert_eq!(parsed.ports(), Some((40000, 80)));
    assert_eq!(parsed.tcp_flags(), Some(TcpFlags::SYN));
    assert!(matches!(parsed.ipv4().unwrap().transport, Transport::Tcp { seq: 1000, .. }));
}

#[test]
fn udp_frame_is_summarised() {
    let frame = udp_frame(53, b"query");
    let parsed = classify_strict(&frame).unwrap();
    assert_eq!(parsed.ip_protocol(), Some(IpProtocol::UDP));
    assert_eq!((parsed.src_port(), parsed.dst_port()), (Some(5353), Some(53)));
    assert_eq!(parsed.tcp_flags(), None);
}

#[test]
fn icmp_frame_is_summarised() {
    let frame = frame_to_local(1, &icmp(8, 0, [0, 1, 0, 1], b"ping"));
    let parsed = classify_strict(&frame).unwrap();
    assert_eq!(parsed.ports(), None);
    assert_eq!(parsed.ipv4().unwrap().transport, Transport::Icmp { icmp_type: IcmpType::ECHO_REQUEST, code: 0 });
}

#[test]
fn other_protocols_and_ethertypes_are_classified_as_other() {
    let gre = frame_to_local(47, &[0; 8]);
    assert_eq!(classify(&gre).unwrap().ipv4().unwrap().transport, Transport::Other);
    let ipv6 = ethernet(MAC_LOCAL, MAC_PEER, 0x86dd, &[0x60; 40]);
    let parsed = classify(&ipv6).unwrap();
    assert_eq!(parsed.network, Network::Other);
    assert_eq!(parsed.ethertype, EtherType::IPV6);
    assert_eq!(parsed.ip_protocol(), None);
}

#[test]
fn arp_frame_is_summarised() {
    let mut arp = vec![0, 1, 0x08, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&MAC_PEER);
    arp.extend_from_slice(&IP_PEER);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&IP_LOCAL);
    arp.extend_from_slice(&[0; 18]); // Ethernet padding
    let frame = ethernet([0xff; 6], MAC_PEER, 0x0806, &arp);
    let parsed = classify(&frame).unwrap();
    let Network::Arp(summary) = parsed.network else { panic!("not ARP: {parsed:?}") };
    assert_eq!(summary.operation, ArpOperation::Request);
    assert_eq!(summary.sender_ip, Ipv4Address(IP_PEER));
    assert_eq!(summary.target_ip, Ipv4Address(IP_LOCAL));
}

#[test]
fn ethernet_padding_after_the_packet_is_accepted() {
    let mut frame = udp_frame(7, b"");
    assert_eq!(frame.len(), 42);
    frame.resize(60, 0);
    assert!(classify_strict(&frame).is_ok());
}

#[test]
fn reversed_swaps_both_ends() {
    let parsed = classify(&tcp_frame(80, 1, 0, SYN, &[])).unwrap();
    let reversed = parsed.reversed();
    assert_eq!(reversed.src_mac, parsed.dst_mac);
    assert_eq!(reversed.src_ip(), parsed.dst_ip());
    assert_eq!(reversed.dst_ip(), parsed.src_ip());
    assert_eq!(reversed.ports(), Some((80, 40000)));
    assert_eq!(reversed.reversed(), parsed);
}

fn assert_malformed(frame: &[u8], reason: Malformed) {
    assert_eq!(classify(frame), Err(reason), "{frame:02x?}");
}

#[test]
fn truncated_headers() {
    let frame = tcp_frame(80, 1, 0, SYN, &[]);
    assert_malformed(&frame[..13], Malformed::Truncated);
    assert_malformed(&frame[..14 + 19], Malformed::Truncated);
    let arp = ethernet([0xff; 6], MAC_PEER, 0x0806, &[0, 1, 0x08, 0, 6, 4, 0, 1]);
    assert_malformed(&arp, Malformed::Truncated);
    // IPv4 total length covers only 10 bytes of TCP header.
    let short_tcp = frame_to_local(6, &[0; 10]);
    assert_malformed(&short_tcp, Malformed::Truncated);
    let short_udp = frame_to_local(17, &[0; 7]);
    assert_malformed(&short_udp, Malformed::Truncated);
    let short_icmp = frame_to_local(1, &[8, 0, 0, 0]);
    assert_malformed(&short_icmp, Malformed::Truncated);
}

#[test]
fn bad_ip_version() {
    let mut frame = udp_frame(53, b"x");
    frame[14] = 0x65;
    assert_malformed(&frame, Malformed::BadIpVersion);
}

#[test]
fn bad_ihl() {
    let mut frame = udp_frame(53, b"x");
    frame[14] = 0x44;
    assert_malformed(&frame, Malformed::BadIhl);
    frame[14] = 0x4f; // 60 bytes of header in a 29-byte packet
    assert_malformed(&frame, Malformed::BadIhl);
}

#[test]
fn bad_total_length() {
    let mut frame = udp_frame(53, b"x");
    frame[16..18].copy_from_slice(&19u16.to_be_bytes());
    fix_ip_checksum(&mut frame);
    assert_malformed(&frame, Malformed::BadTotalLength);
    let one_past_the_frame = (frame.len() - 14 + 1) as u16;
    frame[16..18].copy_from_slice(&one_past_the_frame.to_be_bytes());
    fix_ip_checksum(&mut frame);
    assert_malformed(&frame, Malformed::BadTotalLength);
}

#[test]
fn bad_ip_checksum() {
    let mut frame = udp_frame(53, b"x");
    frame[22] -= 1; // TTL
    assert_malformed(&frame, Malformed::BadIpChecksum);
}

#[test]
fn fragments() {
    for flags_offset in [0x2000u16, 0x0001, 0x6000, 0x00b9] {
        let mut frame = udp_frame(53, b"x");
        frame[20..22].copy_from_slice(&flags_offset.to_be_bytes());
        fix_ip_checksum(&mut frame);
        assert_malformed(&frame, Malformed::Fragment);
        assert_eq!(classify_headers(&frame), Err(Malformed::Fragment));
    }
}

#[test]
fn options() {
    let inner = udp(IP_PEER, IP_LOCAL, 1, 2, b"x");
    let mut frame = frame_to_local(17, &[[1u8, 1, 1, 0].as_slice(), &inner].concat());
    frame[14] = 0x46;
    fix_ip_checksum(&mut frame);
    assert_malformed(&frame, Malformed::Options);
    assert_eq!(classify_headers(&frame), Err(Malformed::Options));
}

#[test]
fn bad_udp_length() {
    for length in [0u16, 7, 8, 11] {
        let mut frame = udp_frame(53, b"xy");
        frame[38..40].copy_from_slice(&length.to_be_bytes());
        assert_malformed(&frame, Malformed::BadL4Length);
    }
}

#[test]
fn bad_tcp_data_offset() {
    for offset in [0u8, 4, 6, 15] {
        let mut frame = tcp_frame(80, 1, 0, SYN, &[]);
        frame[46] = offset << 4;
        assert_malformed(&frame, Malformed::BadTcpDataOffset);
    }
}

#[test]
fn bad_l4_checksums_only_in_strict_mode() {
    let frames = [
        tcp_frame(80, 1, 2, ACK, b"data"),
        udp_frame(53, b"query"),
        frame_to_local(1, &icmp(8, 0, [0, 1, 0, 1], b"ping")),
    ];
    for mut frame in frames {
        let last = frame.len() - 1;
        frame[last] ^= 0x55;
        assert!(classify(&frame).is_ok());
        assert_eq!(classify_strict(&frame), Err(Malformed::BadL4Checksum));
    }
}

#[test]
fn unsupported_arp() {
    let mut arp = vec![0, 6, 0x08, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&[0; 20]);
    let frame = ethernet([0xff; 6], MAC_PEER, 0x0806, &arp);
    assert_malformed(&frame, Malformed::UnsupportedArp);
}

#[test]
fn headers_only_ignores_lengths_and_checksums_outside_the_copy() {
    let frame = tcp_frame(80, 1, 0, SYN, b"a payload sent from elsewhere");
    let headers = &frame[..54];
    assert_eq!(classify(headers), Err(Malformed::BadTotalLength));
    let parsed = classify_headers(headers).unwrap();
    assert_eq!(parsed.ports(), Some((40000, 80)));
    assert_eq!(classify_headers(&frame[..53]), Err(Malformed::Truncated));
    let mut bad_version = frame.clone();
    bad_version[14] = 0x55;
    assert_eq!(classify_headers(&bad_version), Err(Malformed::BadIpVersion));
}
