//! Packet summaries and header bytes for the tests.
#![allow(dead_code)]

use net_filter::{Ipv4Prefix, Owner};
use net_packet::{
    ArpOperation, ArpSummary, EtherType, EthernetAddress, IpProtocol, Ipv4Address, Ipv4Summary, Network, Parsed,
    TcpFlags, Transport,
};

pub const MAC_US: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
pub const MAC_PEER: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);

pub fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Address {
    Ipv4Address::new(a, b, c, d)
}

pub fn prefix(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Prefix {
    Ipv4Prefix::new(ip(a, b, c, d), len).unwrap()
}

pub fn owner(index: usize) -> Owner {
    Owner::new(index).unwrap()
}

fn ipv4(src: Ipv4Address, dst: Ipv4Address, protocol: IpProtocol, transport: Transport) -> Parsed {
    Parsed {
        dst_mac: MAC_US,
        src_mac: MAC_PEER,
        ethertype: EtherType::IPV4,
        network: Network::Ipv4(Ipv4Summary { src, dst, protocol, transport }),
    }
}

/// A TCP segment (SYN) summary.
pub fn tcp(src: Ipv4Address, src_port: u16, dst: Ipv4Address, dst_port: u16) -> Parsed {
    let transport = Transport::Tcp { src_port, dst_port, seq: 1, ack: 0, flags: TcpFlags::SYN };
    ipv4(src, dst, IpProtocol::TCP, transport)
}

pub fn udp(src: Ipv4Address, src_port: u16, dst: Ipv4Address, dst_port: u16) -> Parsed {
    ipv4(src, dst, IpProtocol::UDP, Transport::Udp { src_port, dst_port })
}

pub fn icmp(src: Ipv4Address, dst: Ipv4Address) -> Parsed {
    let transport = Transport::Icmp { icmp_type: net_packet::IcmpType::ECHO_REQUEST, code: 0 };
    ipv4(src, dst, IpProtocol::ICMP, transport)
}

pub fn other_ip(src: Ipv4Address, dst: Ipv4Address, protocol: u8) -> Parsed {
    ipv4(src, dst, IpProtocol(protocol), Transport::Other)
}

pub fn arp() -> Parsed {
    Parsed {
        dst_mac: EthernetAddress::BROADCAST,
        src_mac: MAC_PEER,
        ethertype: EtherType::ARP,
        network: Network::Arp(ArpSummary {
            operation: ArpOperation::Request,
            sender_mac: MAC_PEER,
            sender_ip: ip(10, 0, 0, 2),
            target_mac: EthernetAddress::ZERO,
            target_ip: ip(10, 0, 0, 1),
        }),
    }
}

pub fn other_ethertype(ethertype: u16) -> Parsed {
    Parsed { dst_mac: MAC_US, src_mac: MAC_PEER, ethertype: EtherType(ethertype), network: Network::Other }
}

/// Outgoing header bytes: Ethernet + IPv4 (no checksum needed) + the
/// first bytes of the transport header.
pub fn ipv4_headers(src_mac: EthernetAddress, src: Ipv4Address, dst: Ipv4Address, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&MAC_PEER.0);
    frame.extend_from_slice(&src_mac.0);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&[0x45, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 64, protocol, 0, 0]);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(l4);
    frame
}

pub fn tcp_header(src_port: u16, dst_port: u16, flags: u8) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&src_port.to_be_bytes());
    header.extend_from_slice(&dst_port.to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    header
}

pub fn udp_header(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&src_port.to_be_bytes());
    header.extend_from_slice(&dst_port.to_be_bytes());
    header.extend_from_slice(&[0, 100, 0, 0]);
    header
}

pub fn arp_frame(src_mac: EthernetAddress, sender_mac: EthernetAddress, sender_ip: Ipv4Address) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&EthernetAddress::BROADCAST.0);
    frame.extend_from_slice(&src_mac.0);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    frame.extend_from_slice(&sender_mac.0);
    frame.extend_from_slice(&sender_ip.0);
    frame.extend_from_slice(&MAC_PEER.0);
    frame.extend_from_slice(&ip(10, 0, 0, 2).0);
    frame
}
