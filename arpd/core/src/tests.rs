//! The daemon with a fake clock and link, its table read back through a
//! `TableReader` as clients read it. Frames are built by hand here, and the
//! daemon's frames are checked with `net_packet::classify`.

use super::*;
use lib_test_rng::Rng;
use net_arp_table::{Table, TableReader};
use net_packet::{ArpSummary, EtherType, Parsed};
use std::vec::Vec;

const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const GATEWAY_MAC: EthernetAddress = EthernetAddress([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
const PEER: Ipv4Address = Ipv4Address::new(10, 0, 2, 7);
const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x07]);
const OTHER_MAC: EthernetAddress = EthernetAddress([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01]);
const T0: u64 = 5 * SECOND_NS;

const REQUEST: u16 = 1;
const REPLY: u16 = 2;

#[derive(Default)]
struct FakeLink {
    sent: Vec<Vec<u8>>,
    notified: Vec<Clients>,
    events: Vec<Event>,
    refuse: bool,
}

impl Link for FakeLink {
    fn send(&mut self, frame: &[u8]) -> bool {
        if self.refuse {
            return false;
        }
        self.sent.push(frame.to_vec());
        true
    }
    fn notify(&mut self, clients: Clients) {
        self.notified.push(clients);
    }
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

impl FakeLink {
    /// The frames sent since the last call, parsed.
    fn take_sent(&mut self) -> Vec<(Parsed, ArpSummary)> {
        self.sent
            .drain(..)
            .map(|frame| {
                assert_eq!(frame.len(), 60, "padded to the Ethernet minimum");
                let parsed = net_packet::classify(&frame).expect("arpd sends valid frames");
                assert_eq!(parsed.ethertype, EtherType::ARP);
                assert_eq!(parsed.src_mac, MAC, "always from our MAC");
                let Network::Arp(arp) = parsed.network else { panic!("not ARP") };
                assert_eq!(arp.sender_mac, MAC, "the transmit check wants our MAC as sender");
                assert_eq!(arp.sender_ip, IP, "and our address");
                (parsed, arp)
            })
            .collect()
    }
}

fn node() -> NodeAddress {
    NodeAddress { ipv4: IP, prefix_len: 24, gateway: Some(GATEWAY) }
}

fn daemon(table: &Table) -> Arpd<'_> {
    Arpd::new(MAC, node(), TableWriter::new(table))
}

/// An ARP frame, byte by byte.
fn arp_frame(
    eth_dst: EthernetAddress,
    op: u16,
    sender: (EthernetAddress, Ipv4Address),
    target: (EthernetAddress, Ipv4Address),
) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&eth_dst.0);
    frame.extend_from_slice(&sender.0 .0);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(&sender.0 .0);
    frame.extend_from_slice(&sender.1 .0);
    frame.extend_from_slice(&target.0 .0);
    frame.extend_from_slice(&target.1 .0);
    frame.resize(60, 0);
    frame
}

/// `who` asks (broadcast) who has `target`.
fn request(who: (EthernetAddress, Ipv4Address), target: Ipv4Address) -> Vec<u8> {
    arp_frame(EthernetAddress::BROADCAST, REQUEST, who, (EthernetAddress::ZERO, target))
}

/// `who` answers our request.
fn reply_to_us(who: (EthernetAddress, Ipv4Address)) -> Vec<u8> {
    arp_frame(MAC, REPLY, who, (MAC, IP))
}

#[test]
fn answers_requests_for_our_address_and_learns_the_asker() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, PEER), IP), &mut link);
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    let (eth, arp) = sent[0];
    assert_eq!(eth.dst_mac, PEER_MAC, "a reply goes to the asker");
    assert_eq!(arp.operation, ArpOperation::Reply);
    assert_eq!((arp.target_mac, arp.target_ip), (PEER_MAC, PEER));
    assert_eq!(TableReader::new(&table).lookup(PEER), Some(PEER_MAC.0), "RFC 826: the target adds the sender");
    assert_eq!((arpd.counters().requests_answered, arpd.counters().learned), (1, 1));
}

#[test]
fn requests_for_other_hosts_teach_nothing_new() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, PEER), GATEWAY), &mut link);
    // Gratuitous ARP about an address we never asked for.
    arpd.receive(T0, &request((GATEWAY_MAC, GATEWAY), GATEWAY), &mut link);
    arpd.receive(
        T0,
        &arp_frame(EthernetAddress::BROADCAST, REPLY, (GATEWAY_MAC, GATEWAY), (GATEWAY_MAC, GATEWAY)),
        &mut link,
    );
    assert!(link.sent.is_empty());
    let reader = TableReader::new(&table);
    assert_eq!((reader.lookup(PEER), reader.lookup(GATEWAY)), (None, None));
    assert_eq!(arpd.counters().ignored, 3);
}

#[test]
fn a_changed_mac_is_taken_only_after_the_old_one_stays_silent() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, PEER), IP), &mut link);
    link.take_sent();
    // The peer "moves" to another MAC and says so with a gratuitous ARP:
    // the entry keeps its MAC, and a unicast request asks the old one.
    arpd.receive(T0 + SECOND_NS, &request((OTHER_MAC, PEER), PEER), &mut link);
    assert_eq!(reader.lookup(PEER), Some(PEER_MAC.0));
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    let (eth, arp) = sent[0];
    assert_eq!((eth.dst_mac, arp.operation, arp.target_ip), (PEER_MAC, ArpOperation::Request, PEER));
    // Repeating the claim starts no second check.
    arpd.receive(T0 + SECOND_NS + 1, &request((OTHER_MAC, PEER), PEER), &mut link);
    assert!(link.take_sent().is_empty());
    assert_eq!(arpd.next_deadline(), Some(T0 + SECOND_NS + CHANGE_CONFIRM_NS));
    // Nobody answers at the old MAC: the new one is taken when time is up.
    arpd.tick(T0 + SECOND_NS + CHANGE_CONFIRM_NS - 1, &mut link);
    assert_eq!(reader.lookup(PEER), Some(PEER_MAC.0));
    let done = T0 + SECOND_NS + CHANGE_CONFIRM_NS;
    arpd.tick(done, &mut link);
    assert_eq!(reader.lookup(PEER), Some(OTHER_MAC.0));
    assert_eq!(reader.lookup_entry(PEER).unwrap().confirmed_ns, done);
    assert!(link.events.contains(&Event::Changed { ip: PEER, mac: OTHER_MAC }));
    let c = arpd.counters();
    assert_eq!((c.changes_checked, c.mac_changes, c.changes_refused), (1, 1, 0));
}

#[test]
fn a_forged_gateway_mac_is_refused_when_the_gateway_answers_the_check() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    assert_eq!(arpd.resolve(T0, 0, GATEWAY, &mut link), Resolution::Pending);
    arpd.receive(T0 + 1, &reply_to_us((GATEWAY_MAC, GATEWAY)), &mut link);
    link.take_sent();
    // A forged reply: the gateway is at the attacker's MAC.
    arpd.receive(T0 + 2, &reply_to_us((OTHER_MAC, GATEWAY)), &mut link);
    assert_eq!(reader.lookup(GATEWAY), Some(GATEWAY_MAC.0), "not replaced at once");
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.dst_mac, GATEWAY_MAC, "the check goes to the old MAC");
    // The gateway answers: the change is refused, for good.
    arpd.receive(T0 + 3, &reply_to_us((GATEWAY_MAC, GATEWAY)), &mut link);
    arpd.tick(T0 + 3 + 2 * CHANGE_CONFIRM_NS, &mut link);
    assert_eq!(reader.lookup(GATEWAY), Some(GATEWAY_MAC.0));
    assert!(link.events.contains(&Event::ChangeRefused { ip: GATEWAY, claimed: OTHER_MAC, owner: GATEWAY_MAC }));
    let c = arpd.counters();
    assert_eq!((c.changes_checked, c.changes_refused, c.mac_changes), (1, 1, 0));
}

#[test]
fn senders_that_are_not_a_neighbour_are_never_learnt() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    let multicast_mac = EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]);
    for sender in [
        (multicast_mac, PEER),
        (PEER_MAC, Ipv4Address::new(192, 168, 1, 1)), // off the link
        (PEER_MAC, Ipv4Address::new(10, 0, 2, 255)),  // the link's broadcast
        (PEER_MAC, Ipv4Address::new(10, 0, 2, 0)),    // its network address
        (PEER_MAC, Ipv4Address::new(224, 0, 0, 1)),
    ] {
        arpd.receive(T0, &request(sender, IP), &mut link);
        assert!(TableReader::new(&table).lookup_entry(sender.1).is_none(), "{sender:?}");
    }
    assert_eq!(arpd.counters().learned, 0);
    // A request from a multicast MAC is not answered; the others are.
    assert_eq!(link.take_sent().len(), 4);
}

#[test]
fn a_probe_for_our_address_is_answered_and_not_learnt() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, Ipv4Address::UNSPECIFIED), IP), &mut link);
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0.dst_mac, sent[0].1.target_ip), (PEER_MAC, Ipv4Address::UNSPECIFIED));
    assert_eq!(arpd.counters().learned, 0);
    assert!(link.events.is_empty(), "a probe is no conflict");
}

#[test]
fn resolves_and_notifies_every_waiting_client() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    assert_eq!(arpd.resolve(T0, 2, GATEWAY, &mut link), Resolution::Pending);
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    let (eth, arp) = sent[0];
    assert_eq!(eth.dst_mac, EthernetAddress::BROADCAST);
    assert_eq!((arp.operation, arp.target_mac, arp.target_ip), (ArpOperation::Request, EthernetAddress::ZERO, GATEWAY));
    assert_eq!(arpd.resolve(T0 + 1000, 5, GATEWAY, &mut link), Resolution::Pending);
    assert!(link.sent.is_empty(), "one resolution, however many callers");
    assert_eq!(TableReader::new(&table).lookup_entry(GATEWAY), None, "nothing published while resolving");

    arpd.receive(T0 + 2000, &reply_to_us((GATEWAY_MAC, GATEWAY)), &mut link);
    assert_eq!(link.notified, [1 << 2 | 1 << 5]);
    assert_eq!(TableReader::new(&table).lookup(GATEWAY), Some(GATEWAY_MAC.0));
    assert_eq!(arpd.resolve(T0 + 3000, 2, GATEWAY, &mut link), Resolution::Known(GATEWAY_MAC));
    assert_eq!(arpd.resolve(T0 + 3000, 2, GATEWAY, &mut link).label(), 0);
    assert_eq!(arpd.counters().resolved, 1);
}

#[test]
fn unanswered_requests_are_repeated_then_fail_and_are_held() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    assert_eq!(arpd.resolve(T0, 1, PEER, &mut link), Resolution::Pending);
    assert_eq!(arpd.next_deadline(), Some(T0 + REQUEST_INTERVAL_NS));
    arpd.tick(T0 + REQUEST_INTERVAL_NS - 1, &mut link);
    assert_eq!(link.take_sent().len(), 1, "only the first request so far");
    arpd.tick(T0 + REQUEST_INTERVAL_NS, &mut link);
    arpd.tick(T0 + 2 * REQUEST_INTERVAL_NS, &mut link);
    assert_eq!(link.take_sent().len(), 2, "{MAX_REQUESTS} requests in all");
    assert!(link.notified.is_empty());
    arpd.tick(T0 + 3 * REQUEST_INTERVAL_NS, &mut link);
    assert!(link.sent.is_empty());
    assert_eq!(link.notified, [1 << 1], "the waiter hears of the failure");
    assert_eq!(link.events, [Event::Unreachable { ip: PEER }]);
    let failed_at = T0 + 3 * REQUEST_INTERVAL_NS;
    assert_eq!(arpd.resolve(failed_at + 1, 1, PEER, &mut link), Resolution::Failed);
    assert_eq!(arpd.resolve(failed_at + 1, 1, PEER, &mut link).label(), 3);
    assert!(link.sent.is_empty(), "no requests while the failure is held");
    assert_eq!(arpd.counters().failed, 1);
    // The hold ends: a new resolve asks again.
    assert_eq!(arpd.resolve(failed_at + FAILED_HOLD_NS, 1, PEER, &mut link), Resolution::Pending);
    assert_eq!(link.take_sent().len(), 1);
}

#[test]
fn a_failed_host_that_speaks_up_is_learnt() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.resolve(T0, 0, PEER, &mut link);
    for i in 1..=3 {
        arpd.tick(T0 + i * REQUEST_INTERVAL_NS, &mut link);
    }
    // It comes up and announces itself: it is in the table (failed), so the
    // merge rule takes it.
    arpd.receive(T0 + 4 * SECOND_NS, &request((PEER_MAC, PEER), PEER), &mut link);
    assert_eq!(arpd.resolve(T0 + 4 * SECOND_NS, 0, PEER, &mut link), Resolution::Known(PEER_MAC));
}

#[test]
fn only_neighbours_are_resolved() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    for ip in [
        Ipv4Address::new(8, 8, 8, 8),
        Ipv4Address::new(10, 0, 3, 1),
        Ipv4Address::new(10, 0, 2, 255),
        Ipv4Address::new(10, 0, 2, 0),
        IP,
        Ipv4Address::UNSPECIFIED,
        Ipv4Address::BROADCAST,
        Ipv4Address::new(224, 0, 0, 1),
        Ipv4Address::new(127, 0, 0, 1),
    ] {
        assert_eq!(arpd.resolve(T0, 0, ip, &mut link), Resolution::NotOnLink, "{ip:?}");
    }
    assert!(link.sent.is_empty());
    assert_eq!(Resolution::NotOnLink.label(), 2);
    // On a /31 both addresses are hosts (RFC 3021).
    let point_to_point = NodeAddress { ipv4: Ipv4Address::new(10, 9, 9, 0), prefix_len: 31, gateway: None };
    let table = Table::new();
    let arpd = Arpd::new(MAC, point_to_point, TableWriter::new(&table));
    assert!(arpd.is_neighbour(Ipv4Address::new(10, 9, 9, 1)));
    assert!(!arpd.is_neighbour(Ipv4Address::new(10, 9, 9, 0)));
}

#[test]
fn entries_go_stale_and_are_revalidated_when_used() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, PEER), IP), &mut link);
    link.take_sent();
    assert_eq!(arpd.next_deadline(), Some(T0 + REACHABLE_NS));
    arpd.tick(T0 + REACHABLE_NS - 1, &mut link);
    assert_eq!(reader.lookup(PEER), Some(PEER_MAC.0));
    arpd.tick(T0 + REACHABLE_NS, &mut link);
    assert_eq!(reader.lookup(PEER), None, "readers must ask arpd about a stale entry");
    assert_eq!(reader.lookup_entry(PEER).unwrap().state, TableState::Stale);

    let used = T0 + REACHABLE_NS + 5 * SECOND_NS;
    assert_eq!(arpd.resolve(used, 3, PEER, &mut link), Resolution::Known(PEER_MAC), "answered at once");
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.dst_mac, PEER_MAC, "re-validation is a unicast poll");
    assert_eq!(sent[0].1.target_ip, PEER);
    assert_eq!(reader.lookup(PEER), Some(PEER_MAC.0), "usable while probing");
    arpd.receive(used + 1000, &arp_frame(MAC, REPLY, (PEER_MAC, PEER), (MAC, IP)), &mut link);
    assert_eq!(reader.lookup_entry(PEER).unwrap().state, TableState::Reachable);
    assert_eq!(reader.lookup_entry(PEER).unwrap().confirmed_ns, used + 1000);
    assert_eq!(arpd.counters().revalidated, 1);
    assert!(link.notified.is_empty(), "nobody was waiting");
}

#[test]
fn an_unanswered_revalidation_drops_the_entry() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, PEER), IP), &mut link);
    let stale_at = T0 + REACHABLE_NS;
    arpd.tick(stale_at, &mut link);
    arpd.resolve(stale_at, 0, PEER, &mut link);
    link.take_sent();
    for i in 1..=2 {
        arpd.tick(stale_at + i * REQUEST_INTERVAL_NS, &mut link);
    }
    let polls = link.take_sent();
    assert_eq!(polls.len(), 2);
    assert!(polls.iter().all(|(eth, _)| eth.dst_mac == PEER_MAC));
    arpd.tick(stale_at + 3 * REQUEST_INTERVAL_NS, &mut link);
    assert_eq!(reader.lookup_entry(PEER), None, "dropped");
    assert_eq!(arpd.counters().expired, 1);
    assert_eq!(arpd.resolve(stale_at + 4 * SECOND_NS, 0, PEER, &mut link), Resolution::Pending, "resolved afresh");
}

#[test]
fn stale_entries_no_one_uses_are_dropped() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.receive(T0, &request((PEER_MAC, PEER), IP), &mut link);
    arpd.tick(T0 + REACHABLE_NS, &mut link);
    assert_eq!(arpd.next_deadline(), Some(T0 + STALE_DROP_NS));
    arpd.tick(T0 + STALE_DROP_NS, &mut link);
    assert_eq!(TableReader::new(&table).lookup_entry(PEER), None);
    assert_eq!(arpd.next_deadline(), None, "nothing left to do");
}

#[test]
fn announces_twice_at_start() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    arpd.start(T0, &mut link);
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1);
    let (eth, arp) = sent[0];
    assert_eq!(eth.dst_mac, EthernetAddress::BROADCAST);
    assert_eq!(
        (arp.operation, arp.target_mac, arp.target_ip),
        (ArpOperation::Request, EthernetAddress::ZERO, IP),
        "RFC 5227 announcement"
    );
    assert_eq!(link.events, [Event::Announced { ip: IP, mac: MAC, number: 1 }]);
    assert_eq!(arpd.next_deadline(), Some(T0 + ANNOUNCE_INTERVAL_NS));
    arpd.tick(T0 + ANNOUNCE_INTERVAL_NS - 1, &mut link);
    assert!(link.sent.is_empty());
    arpd.tick(T0 + ANNOUNCE_INTERVAL_NS, &mut link);
    assert_eq!(link.take_sent().len(), 1);
    assert_eq!(link.events[1], Event::Announced { ip: IP, mac: MAC, number: 2 });
    assert_eq!(arpd.next_deadline(), None);
    assert_eq!(arpd.counters().announcements, 2);
}

#[test]
fn an_announcement_that_could_not_be_sent_is_retried() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink { refuse: true, ..FakeLink::default() });
    arpd.start(T0, &mut link);
    assert!(link.events.is_empty());
    assert_eq!(arpd.counters().tx_dropped, 1);
    assert_eq!(arpd.next_deadline(), Some(T0 + SECOND_NS));
    link.refuse = false;
    arpd.tick(T0 + SECOND_NS, &mut link);
    assert_eq!(link.events, [Event::Announced { ip: IP, mac: MAC, number: 1 }]);
}

#[test]
fn a_claim_of_our_address_is_reported_and_defended_once_per_interval() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    let claim = request((OTHER_MAC, IP), IP);
    arpd.receive(T0, &claim, &mut link);
    assert_eq!(link.events, [Event::Conflict { ip: IP, mac: OTHER_MAC }]);
    let sent = link.take_sent();
    assert_eq!(sent.len(), 1, "one defending announcement");
    assert_eq!((sent[0].1.sender_ip, sent[0].1.target_ip), (IP, IP));
    arpd.receive(T0 + DEFEND_INTERVAL_NS - 1, &claim, &mut link);
    assert_eq!((link.events.len(), link.sent.len()), (1, 0), "not again within the interval");
    arpd.receive(T0 + DEFEND_INTERVAL_NS, &reply_to_us((OTHER_MAC, IP)), &mut link);
    assert_eq!((link.events.len(), link.take_sent().len()), (2, 1));
    assert_eq!(arpd.counters().conflicts, 3);
    assert_eq!(TableReader::new(&table).lookup_entry(IP), None, "our address is never an entry");
    // Our own announcement, seen again, is no conflict.
    arpd.receive(T0 + 100 * SECOND_NS, &request((MAC, IP), IP), &mut link);
    assert_eq!(arpd.counters().conflicts, 3);
}

#[test]
fn malformed_and_foreign_frames_are_counted_and_dropped() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    let good = request((PEER_MAC, PEER), IP);
    let mut bad_hardware = good.clone();
    bad_hardware[15] = 6; // hardware type 6
    let mut ipv4 = good.clone();
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    for frame in [&good[..13], &good[..41], &bad_hardware[..], &ipv4[..]] {
        arpd.receive(T0, frame, &mut link);
    }
    assert_eq!(arpd.counters().malformed, 4);
    // Unicast to another station.
    let mut elsewhere = good.clone();
    elsewhere[..6].copy_from_slice(&OTHER_MAC.0);
    arpd.receive(T0, &elsewhere, &mut link);
    assert_eq!(arpd.counters().ignored, 1);
    assert!(link.sent.is_empty());
    assert_eq!(TableReader::new(&table).lookup_entry(PEER), None);
}

#[test]
fn a_full_table_evicts_the_oldest_translation_never_a_resolution() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    let host = |i: usize| Ipv4Address::new(10, 0, 2, 20 + i as u8);
    let mac = |i: usize| EthernetAddress([0x02, 0, 0, 0, 1, i as u8]);
    for i in 0..CAPACITY {
        arpd.receive(T0 + i as u64, &request((mac(i), host(i)), IP), &mut link);
    }
    assert!(reader.lookup(host(0)).is_some());
    // One more: the oldest (host 0) makes room.
    arpd.receive(T0 + 1000, &request((PEER_MAC, PEER), IP), &mut link);
    assert_eq!(reader.lookup(PEER), Some(PEER_MAC.0));
    assert_eq!(reader.lookup_entry(host(0)), None);
    assert_eq!(reader.lookup(host(1)), Some(mac(1).0));

    // A table of resolutions in progress has no room.
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    for i in 0..CAPACITY {
        assert_eq!(arpd.resolve(T0, 0, host(i), &mut link), Resolution::Pending);
    }
    assert_eq!(arpd.resolve(T0, 0, PEER, &mut link), Resolution::Failed);
    assert_eq!(arpd.counters().table_full, 1);
}

#[test]
fn deadlines_cover_everything_pending() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    assert_eq!(arpd.next_deadline(), None);
    arpd.receive(T0, &request((PEER_MAC, PEER), IP), &mut link);
    arpd.resolve(T0 + 7, 0, GATEWAY, &mut link);
    assert_eq!(arpd.next_deadline(), Some(T0 + 7 + REQUEST_INTERVAL_NS));
}

#[test]
fn arbitrary_frames_never_panic_and_never_poison_our_address() {
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds = [request((PEER_MAC, PEER), IP), reply_to_us((GATEWAY_MAC, GATEWAY)), request((OTHER_MAC, IP), IP)];
    for round in 0..20_000u64 {
        let mut frame = seeds[(rng.next() % 3) as usize].clone();
        for _ in 0..(rng.next() % 4) {
            let at = (rng.next() % frame.len() as u64) as usize;
            frame[at] = rng.next() as u8;
        }
        frame.truncate((rng.next() % 70) as usize);
        let now = T0 + round * 10_000_000;
        arpd.receive(now, &frame, &mut link);
        if round % 7 == 0 {
            let ip = Ipv4Address::from_u32(0x0a00_0200 | (rng.next() % 256) as u32);
            arpd.resolve(now, (rng.next() % 40) as usize, ip, &mut link);
        }
        arpd.tick(now, &mut link);
        link.take_sent();
    }
    assert_eq!(TableReader::new(&table).lookup_entry(IP), None);
    let c = arpd.counters();
    assert!(c.malformed > 0 && c.learned > 0 && c.requests_answered > 0);
}

#[test]
fn a_flood_of_new_senders_never_evicts_the_gateway_or_entries_in_use() {
    let table = Table::new();
    let reader = TableReader::new(&table);
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    // The gateway, learnt at boot, and a peer a client uses.
    arpd.resolve(T0, 0, GATEWAY, &mut link);
    arpd.receive(T0 + 1, &reply_to_us((GATEWAY_MAC, GATEWAY)), &mut link);
    arpd.receive(T0 + 2, &request((PEER_MAC, PEER), IP), &mut link);
    assert_eq!(arpd.resolve(T0 + 3, 1, PEER, &mut link), Resolution::Known(PEER_MAC));
    // A flood of new senders asking for us, more than the table holds.
    let host = |i: usize| Ipv4Address::new(10, 0, 2, 20 + i as u8);
    let mac = |i: usize| EthernetAddress([0x02, 0, 0, 0, 2, i as u8]);
    for i in 0..CAPACITY + 50 {
        arpd.receive(T0 + 10 + i as u64, &request((mac(i), host(i)), IP), &mut link);
    }
    assert_eq!(reader.lookup(GATEWAY), Some(GATEWAY_MAC.0), "the gateway stays");
    assert_eq!(reader.lookup(PEER), Some(PEER_MAC.0), "an entry in use stays");
    // Flood entries took the rest, the oldest unused making room.
    assert_eq!(reader.lookup(host(CAPACITY + 49)), Some(mac(CAPACITY + 49).0));
    // Once the peer is no longer used, it may go like any other.
    let later = T0 + 3 + IN_USE_NS;
    arpd.receive(later, &request((mac(250), host(230)), IP), &mut link);
    assert_eq!(reader.lookup(PEER), None);
    assert_eq!(reader.lookup(GATEWAY), Some(GATEWAY_MAC.0), "the gateway is always in use");
    // With every slot in use, learning is refused.
    let table = Table::new();
    let (mut arpd, mut link) = (daemon(&table), FakeLink::default());
    for i in 0..CAPACITY {
        arpd.receive(T0, &request((mac(i), host(i)), IP), &mut link);
        arpd.resolve(T0, 0, host(i), &mut link);
    }
    arpd.receive(T0 + 1, &request((PEER_MAC, PEER), IP), &mut link);
    assert_eq!(TableReader::new(&table).lookup(PEER), None);
    assert_eq!(arpd.counters().table_full, 1);
}
