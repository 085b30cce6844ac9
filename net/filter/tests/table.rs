//! Installing, removing and classifying: errors, precedence, counters.

mod common;

use common::*;
use net_filter::{Filter, FilterError, FilterId, FilterKind, Grant, OwnerSet, PortRange, Table};
use net_packet::{EtherType, IpProtocol, Malformed};

const TCP_80: Filter = Filter::tcp_dst_port(80);
const US: fn() -> net_packet::Ipv4Address = || ip(10, 0, 0, 1);

fn peer() -> net_packet::Ipv4Address {
    ip(10, 1, 2, 3)
}

#[test]
fn install_checks_in_order_with_distinct_errors() {
    let httpd = owner(1);
    let other = owner(2);
    let web = [Filter::protocol(IpProtocol::TCP).to_ports(PortRange::new(80, 8080).unwrap())];
    let grant = Grant::new(&web);
    let mut table: Table<2> = Table::new(None);

    let inconsistent = Filter::protocol(IpProtocol::ICMP).to_ports(PortRange::single(1));
    assert_eq!(table.install(httpd, &grant, inconsistent, FilterKind::Exclusive), Err(FilterError::Inconsistent));
    assert_eq!(table.install(httpd, &grant, TCP_80, FilterKind::Copy), Err(FilterError::CopyNotPrivileged));
    assert_eq!(
        table.install(httpd, &grant, Filter::udp_dst_port(80), FilterKind::Exclusive),
        Err(FilterError::OutOfGrant)
    );

    let id = table.install(httpd, &grant, TCP_80, FilterKind::Exclusive).unwrap();
    // Overlap with another owner's filter, and with one's own.
    let narrower = TCP_80.from_addr(prefix(10, 0, 0, 0, 8));
    assert_eq!(table.install(other, &grant, narrower, FilterKind::Exclusive), Err(FilterError::Overlaps { with: id }));
    assert_eq!(table.install(httpd, &grant, narrower, FilterKind::Exclusive), Err(FilterError::Overlaps { with: id }));

    table.install(httpd, &grant, Filter::tcp_dst_port(443), FilterKind::Exclusive).unwrap();
    assert_eq!((table.count_of(httpd), table.count_of(other)), (2, 0));
    assert_eq!(table.install(httpd, &grant, Filter::tcp_dst_port(8080), FilterKind::Exclusive), Err(FilterError::Full));

    let codes = [
        FilterError::Inconsistent,
        FilterError::OutOfGrant,
        FilterError::CopyNotPrivileged,
        FilterError::Overlaps { with: id },
        FilterError::Full,
        FilterError::NoSuchFilter,
        FilterError::NotOwner,
        FilterError::QuotaExceeded,
    ]
    .map(FilterError::code);
    for (i, code) in codes.iter().enumerate() {
        assert_ne!(*code, 0);
        assert!(!codes[..i].contains(code), "codes are distinct");
    }
}

#[test]
fn remove_only_your_own_and_ids_do_not_come_back() {
    let (a, b) = (owner(1), owner(2));
    let any = [Filter::ANY];
    let grant = Grant::new(&any);
    let mut table: Table<4> = Table::new(None);
    let id = table.install(a, &grant, TCP_80, FilterKind::Exclusive).unwrap();
    assert_eq!(table.remove(b, id), Err(FilterError::NotOwner));
    assert_eq!(table.remove(a, id), Ok(()));
    assert_eq!(table.remove(a, id), Err(FilterError::NoSuchFilter));
    // The slot is reused with a new generation: the old id is stale.
    let again = table.install(a, &grant, TCP_80, FilterKind::Exclusive).unwrap();
    assert_ne!(again, id);
    assert_eq!(table.remove(a, id), Err(FilterError::NoSuchFilter));
    assert_eq!(FilterId::from_raw(again.to_raw()), again);
    assert_eq!(table.remove(a, FilterId::from_raw(0xffff_ffff)), Err(FilterError::NoSuchFilter));
    // Removal makes room for the previously overlapping claim.
    assert_eq!(table.remove(a, again), Ok(()));
    table.install(b, &grant, TCP_80.from_addr(prefix(10, 0, 0, 0, 8)), FilterKind::Exclusive).unwrap();
}

#[test]
fn remove_all_when_a_pd_restarts() {
    let any = [Filter::ANY];
    let grant = Grant::new(&any);
    let mut table: Table<4> = Table::new(None);
    table.install(owner(1), &grant, TCP_80, FilterKind::Exclusive).unwrap();
    table.install(owner(1), &grant, Filter::tcp_dst_port(443), FilterKind::Exclusive).unwrap();
    let kept = table.install(owner(2), &grant, Filter::udp_dst_port(53), FilterKind::Exclusive).unwrap();
    assert_eq!(table.remove_all(owner(1)), 2);
    assert_eq!(table.filters().map(|f| f.id).collect::<Vec<_>>(), [kept]);
}

#[test]
fn one_exclusive_owner_then_unclaimed_ipv4_then_drop() {
    let (arpd, stray, httpd) = (owner(0), owner(1), owner(2));
    let mut table: Table<8> = Table::new(Some(stray));
    let arp_grant = [Filter::ethertype(EtherType::ARP)];
    let web_grant = [TCP_80];
    table.install(arpd, &Grant::new(&arp_grant), Filter::ethertype(EtherType::ARP), FilterKind::Exclusive).unwrap();
    let web = table.install(httpd, &Grant::new(&web_grant), TCP_80, FilterKind::Exclusive).unwrap();

    let to_web = table.classify(&tcp(peer(), 40000, US(), 80));
    assert_eq!((to_web.exclusive, to_web.filter), (Some(httpd), Some(web)));
    assert!(to_web.copies.is_empty());
    assert_eq!(table.classify(&arp()).exclusive, Some(arpd));
    let stray_tcp = table.classify(&tcp(peer(), 40000, US(), 81));
    assert_eq!((stray_tcp.exclusive, stray_tcp.filter), (Some(stray), None));
    assert_eq!(table.classify(&icmp(peer(), US())).exclusive, Some(stray));
    let unknown = table.classify(&other_ethertype(0x88b5));
    assert!(unknown.is_drop());

    assert_eq!(table.counters().unclaimed_ipv4, 2);
    assert_eq!(table.counters().no_match, 1);
    assert_eq!(table.hits(web), Some(1));
}

#[test]
fn without_a_default_owner_unclaimed_ipv4_is_dropped() {
    let mut table: Table<1> = Table::new(None);
    assert!(table.classify(&icmp(peer(), US())).is_drop());
    assert_eq!(table.counters().no_match, 1);
}

#[test]
fn copy_filters_see_copies_once_per_pd() {
    let (monitor, httpd, stray) = (owner(5), owner(2), owner(1));
    let everything = [Filter::ANY];
    let privileged = Grant::privileged(&everything);
    let mut table: Table<8> = Table::new(Some(stray));
    table.install(httpd, &Grant::new(&everything), TCP_80, FilterKind::Exclusive).unwrap();
    let watch_web = table.install(monitor, &privileged, Filter::protocol(IpProtocol::TCP), FilterKind::Copy).unwrap();
    // Copies may overlap anything, including each other and exclusive ones.
    table.install(monitor, &privileged, TCP_80, FilterKind::Copy).unwrap();
    table.install(httpd, &privileged, Filter::ANY, FilterKind::Copy).unwrap();

    let decision = table.classify(&tcp(peer(), 1, US(), 80));
    assert_eq!(decision.exclusive, Some(httpd));
    let mut expected = OwnerSet::EMPTY;
    expected.insert(monitor);
    assert_eq!(decision.copies, expected, "the monitor once; httpd not again");

    let unclaimed = table.classify(&tcp(peer(), 1, US(), 22));
    assert_eq!(unclaimed.exclusive, Some(stray));
    assert!(unclaimed.copies.contains(monitor) && unclaimed.copies.contains(httpd));

    // A copy-only match of non-IPv4 traffic: no exclusive receiver.
    let arp_decision = table.classify(&arp());
    assert_eq!(arp_decision.exclusive, None);
    assert!(!arp_decision.is_drop());
    assert_eq!(table.counters().no_match, 1);
    assert_eq!(table.hits(watch_web), Some(2));
}

#[test]
fn malformed_frames_are_counted_by_reason() {
    let mut table: Table<1> = Table::new(Some(owner(1)));
    assert_eq!(table.classify_frame(&[0; 10]), Err(Malformed::Truncated));
    let mut bad_version = [0u8; 60];
    bad_version[12..15].copy_from_slice(&[0x08, 0x00, 0x65]);
    assert_eq!(table.classify_frame(&bad_version), Err(Malformed::BadIpVersion));
    assert_eq!(table.classify_frame(&bad_version), Err(Malformed::BadIpVersion));
    table.count_malformed(Malformed::BadL4Checksum);
    let counters = table.counters();
    assert_eq!(counters.malformed[Malformed::Truncated.index()], 1);
    assert_eq!(counters.malformed[Malformed::BadIpVersion.index()], 2);
    assert_eq!(counters.malformed[Malformed::BadL4Checksum.index()], 1);
    assert_eq!(counters.malformed_total(), 4);
    assert_eq!(counters.no_match + counters.unclaimed_ipv4, 0);

    let mut other = [0u8; 60];
    other[12..14].copy_from_slice(&[0x88, 0xb5]);
    assert!(table.classify_frame(&other).unwrap().is_drop());
}

#[test]
fn filter_listing_reports_hits() {
    let any = [Filter::ANY];
    let mut table: Table<3> = Table::new(None);
    let web = table.install(owner(2), &Grant::new(&any), TCP_80, FilterKind::Exclusive).unwrap();
    for _ in 0..3 {
        table.classify(&tcp(peer(), 1, US(), 80));
    }
    table.classify(&tcp(peer(), 1, US(), 81));
    let listed: Vec<_> = table.filters().collect();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].owner, listed[0].hits), (web, owner(2), 3));
    assert_eq!(listed[0].filter, TCP_80);
}
