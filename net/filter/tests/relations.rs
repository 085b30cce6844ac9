//! Matching, overlap and containment of filters, with their edge cases:
//! prefix containment, port ranges, wildcard and implied fields.

mod common;

use common::*;
use net_filter::{Filter, Grant, Ipv4Prefix, PortRange};
use net_packet::{EtherType, IpProtocol};

const TCP_80: Filter = Filter::tcp_dst_port(80);

fn range(first: u16, last: u16) -> PortRange {
    PortRange::new(first, last).unwrap()
}

#[test]
fn matching_fields() {
    let peer = ip(10, 1, 2, 3);
    let us = ip(192, 168, 0, 1);
    assert!(TCP_80.matches(&tcp(peer, 40000, us, 80)));
    assert!(!TCP_80.matches(&tcp(peer, 40000, us, 81)));
    assert!(!TCP_80.matches(&udp(peer, 40000, us, 80)));
    assert!(!TCP_80.matches(&arp()));

    let from_ten = TCP_80.from_addr(prefix(10, 0, 0, 0, 8));
    assert!(from_ten.matches(&tcp(peer, 1, us, 80)));
    assert!(!from_ten.matches(&tcp(ip(11, 0, 0, 1), 1, us, 80)));

    let to_us = Filter::ANY.to_addr(Ipv4Prefix::host(us));
    assert!(to_us.matches(&icmp(peer, us)));
    assert!(!to_us.matches(&icmp(peer, ip(192, 168, 0, 2))));

    let high_sources = Filter::protocol(IpProtocol::UDP).from_ports(range(1024, 65535));
    assert!(high_sources.matches(&udp(peer, 1024, us, 53)));
    assert!(!high_sources.matches(&udp(peer, 1023, us, 53)));
}

#[test]
fn wildcards_and_implied_fields() {
    let peer = ip(10, 1, 2, 3);
    let us = ip(10, 0, 0, 1);
    // Every frame.
    assert!(Filter::ANY.matches(&arp()));
    assert!(Filter::ANY.matches(&other_ethertype(0x88b5)));
    // A port alone implies TCP or UDP, and a port implies IPv4.
    let port_53 = Filter::ANY.to_ports(PortRange::single(53));
    assert!(port_53.matches(&udp(peer, 1, us, 53)));
    assert!(port_53.matches(&tcp(peer, 1, us, 53)));
    assert!(!port_53.matches(&icmp(peer, us)));
    assert!(!port_53.matches(&other_ip(peer, us, 132)));
    // A prefix alone implies IPv4.
    let from_ten = Filter::ANY.from_addr(prefix(10, 0, 0, 0, 8));
    assert!(!from_ten.matches(&arp()));
    assert!(from_ten.matches(&other_ip(peer, us, 47)));
    // EtherType alone.
    assert!(Filter::ethertype(EtherType::ARP).matches(&arp()));
    assert!(!Filter::ethertype(EtherType::ARP).matches(&icmp(peer, us)));
}

#[test]
fn inconsistent_filters_match_nothing() {
    let arp_with_protocol = Filter { protocol: Some(IpProtocol::TCP), ..Filter::ethertype(EtherType::ARP) };
    let icmp_with_port = Filter::protocol(IpProtocol::ICMP).to_ports(PortRange::single(1));
    for filter in [arp_with_protocol, icmp_with_port] {
        assert!(!filter.is_consistent());
        assert!(!filter.matches(&arp()));
        assert!(!filter.matches(&icmp(ip(1, 1, 1, 1), ip(2, 2, 2, 2))));
        assert!(!filter.overlaps(&Filter::ANY));
        assert!(!filter.is_within(&Filter::ANY));
    }
    let ipv4_with_port = Filter { ethertype: Some(EtherType::IPV4), ..TCP_80 };
    assert!(ipv4_with_port.is_consistent());
}

#[test]
fn overlap_examples() {
    // The examples.
    assert!(TCP_80.overlaps(&TCP_80.from_addr(prefix(10, 0, 0, 0, 8))));
    assert!(!TCP_80.overlaps(&Filter::udp_dst_port(80)));
    // Symmetric.
    assert!(TCP_80.from_addr(prefix(10, 0, 0, 0, 8)).overlaps(&TCP_80));
    // Identical.
    assert!(TCP_80.overlaps(&TCP_80));
    // Different ports of one protocol.
    assert!(!TCP_80.overlaps(&Filter::tcp_dst_port(443)));
    // Disjoint source prefixes; nested ones.
    let from = |p| TCP_80.from_addr(p);
    assert!(!from(prefix(10, 0, 0, 0, 8)).overlaps(&from(prefix(11, 0, 0, 0, 8))));
    assert!(from(prefix(10, 0, 0, 0, 8)).overlaps(&from(prefix(10, 9, 0, 0, 16))));
    assert!(!from(prefix(10, 0, 0, 0, 9)).overlaps(&from(prefix(10, 128, 0, 0, 9))));
    // Constraints on different fields intersect: dst 80 from 10/8 and
    // src port 1234 (any source address) share 10.0.0.1:1234 → :80.
    let by_src_port = Filter::protocol(IpProtocol::TCP).from_ports(PortRange::single(1234));
    assert!(from(prefix(10, 0, 0, 0, 8)).overlaps(&by_src_port));
}

#[test]
fn overlap_with_implied_fields() {
    // "port 80" (TCP or UDP) overlaps "TCP port 80" and "UDP" but not ICMP.
    let port_80 = Filter::ANY.to_ports(PortRange::single(80));
    assert!(port_80.overlaps(&TCP_80));
    assert!(port_80.overlaps(&Filter::protocol(IpProtocol::UDP)));
    assert!(!port_80.overlaps(&Filter::protocol(IpProtocol::ICMP)));
    // Anything IPv4 is disjoint from ARP; the match-all filter overlaps all.
    assert!(!TCP_80.overlaps(&Filter::ethertype(EtherType::ARP)));
    assert!(!Filter::ANY.from_addr(prefix(0, 0, 0, 0, 0)).overlaps(&Filter::ethertype(EtherType::ARP)));
    assert!(Filter::ANY.overlaps(&Filter::ethertype(EtherType::ARP)));
    assert!(Filter::ANY.overlaps(&TCP_80));
    assert!(Filter::ethertype(EtherType::IPV4).overlaps(&TCP_80));
}

#[test]
fn port_range_overlap_edges() {
    let tcp_ports = |first, last| Filter::protocol(IpProtocol::TCP).to_ports(range(first, last));
    assert!(tcp_ports(8000, 8009).overlaps(&tcp_ports(8009, 8019)), "shared end point");
    assert!(!tcp_ports(8000, 8009).overlaps(&tcp_ports(8010, 8019)), "adjacent");
    assert!(tcp_ports(0, 65535).overlaps(&tcp_ports(65535, 65535)));
    assert!(tcp_ports(1, 1).overlaps(&Filter::tcp_dst_port(1)));
    assert!(PortRange::new(2, 1).is_none());
}

#[test]
fn containment() {
    let from_ten = TCP_80.from_addr(prefix(10, 0, 0, 0, 8));
    assert!(from_ten.is_within(&TCP_80));
    assert!(!TCP_80.is_within(&from_ten));
    assert!(TCP_80.is_within(&TCP_80));
    assert!(TCP_80.is_within(&Filter::ANY));
    assert!(!Filter::ANY.is_within(&TCP_80));
    // Prefixes.
    let within = |inner, outer| TCP_80.from_addr(inner).is_within(&TCP_80.from_addr(outer));
    assert!(within(prefix(10, 1, 0, 0, 16), prefix(10, 0, 0, 0, 8)));
    assert!(!within(prefix(10, 0, 0, 0, 8), prefix(10, 1, 0, 0, 16)));
    assert!(!within(prefix(11, 0, 0, 0, 16), prefix(10, 0, 0, 0, 8)));
    assert!(within(prefix(10, 0, 0, 7, 32), prefix(10, 0, 0, 0, 24)));
    // A wildcard address is within only a /0.
    assert!(TCP_80.is_within(&TCP_80.from_addr(prefix(0, 0, 0, 0, 0))));
    assert!(!TCP_80.is_within(&TCP_80.from_addr(prefix(0, 0, 0, 0, 1))));
}

#[test]
fn containment_with_port_ranges_and_implied_protocols() {
    let tcp_ports = |first, last| Filter::protocol(IpProtocol::TCP).to_ports(range(first, last));
    assert!(tcp_ports(8080, 8089).is_within(&tcp_ports(8000, 8999)));
    assert!(!tcp_ports(7999, 8089).is_within(&tcp_ports(8000, 8999)));
    // "any port" (a range 0–65535) grants all of TCP and UDP, but not ICMP.
    let ports_any = Filter::ANY.to_ports(PortRange::ANY);
    assert!(Filter::protocol(IpProtocol::TCP).is_within(&ports_any));
    assert!(Filter::protocol(IpProtocol::UDP).is_within(&ports_any));
    assert!(!Filter::protocol(IpProtocol::ICMP).is_within(&ports_any));
    assert!(!Filter::ethertype(EtherType::IPV4).is_within(&ports_any));
    // "TCP" alone (any port) is not within "port 80 of TCP or UDP".
    let port_80 = Filter::ANY.to_ports(PortRange::single(80));
    assert!(TCP_80.is_within(&port_80));
    assert!(!Filter::protocol(IpProtocol::TCP).is_within(&port_80));
    // EtherTypes.
    assert!(TCP_80.is_within(&Filter::ethertype(EtherType::IPV4)));
    assert!(!Filter::ethertype(EtherType::ARP).is_within(&Filter::ethertype(EtherType::IPV4)));
    assert!(!Filter::ANY.is_within(&Filter::ethertype(EtherType::IPV4)));
}

#[test]
fn grants_permit_claims_within_one_entry() {
    let granted = [
        TCP_80,
        Filter::protocol(IpProtocol::TCP).to_ports(range(8000, 8009)),
        Filter::protocol(IpProtocol::TCP).to_ports(range(8010, 8019)),
    ];
    let grant = Grant::new(&granted);
    assert!(grant.permits(&TCP_80.from_addr(prefix(10, 0, 0, 0, 8))));
    assert!(grant.permits(&Filter::tcp_dst_port(8015)));
    assert!(!grant.permits(&Filter::udp_dst_port(80)));
    // Documented limitation: a claim spanning two entries is refused.
    assert!(!grant.permits(&Filter::protocol(IpProtocol::TCP).to_ports(range(8005, 8015))));
    assert!(!Grant::new(&[]).permits(&TCP_80));
}

/// Overlap and containment agree with matching on a grid of packets: if a
/// packet matches both filters they overlap, and a filter within another
/// never matches a packet the other does not.
#[test]
fn relations_agree_with_matching() {
    let filters = [
        Filter::ANY,
        TCP_80,
        Filter::udp_dst_port(80),
        Filter::ANY.to_ports(PortRange::single(80)),
        Filter::protocol(IpProtocol::TCP),
        Filter::protocol(IpProtocol::ICMP),
        Filter::ethertype(EtherType::ARP),
        Filter::ethertype(EtherType::IPV4),
        TCP_80.from_addr(prefix(10, 0, 0, 0, 8)),
        TCP_80.from_addr(prefix(10, 0, 0, 0, 24)),
        Filter::ANY.from_addr(prefix(10, 0, 0, 0, 8)),
        Filter::ANY.to_addr(prefix(192, 168, 0, 0, 16)),
        Filter::protocol(IpProtocol::TCP).to_ports(range(70, 90)),
        Filter::ANY.from_ports(range(1000, 2000)),
    ];
    let mut packets = vec![arp(), other_ethertype(0x88b5)];
    for src in [ip(10, 0, 0, 5), ip(10, 9, 0, 5), ip(172, 16, 0, 1)] {
        for dst in [ip(192, 168, 1, 1), ip(8, 8, 8, 8)] {
            packets.push(icmp(src, dst));
            packets.push(other_ip(src, dst, 47));
            for (sport, dport) in [(1500, 80), (40000, 80), (1500, 75), (40000, 443)] {
                packets.push(tcp(src, sport, dst, dport));
                packets.push(udp(src, sport, dst, dport));
            }
        }
    }
    for a in &filters {
        for b in &filters {
            let shared = packets.iter().any(|p| a.matches(p) && b.matches(p));
            if shared {
                assert!(a.overlaps(b), "{a:?} and {b:?} share a packet");
            }
            if a.is_within(b) {
                assert!(packets.iter().all(|p| !a.matches(p) || b.matches(p)), "{a:?} within {b:?}");
            }
        }
    }
}
