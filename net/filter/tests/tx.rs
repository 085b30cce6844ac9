//! Transmit validation: forged addresses, unowned protocols and ports,
//! the stray-packet daemon's answers, counters.

mod common;

use common::*;
use net_filter::{Filter, FilterKind, Grant, Table, TxHeaders, TxPolicy, TxRefused};
use net_packet::{EtherType, EthernetAddress, Ipv4Address, Malformed};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const SYN: u8 = 0x02;

const ADDRESSES: [Ipv4Address; 2] = [Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 9)];

fn us() -> Ipv4Address {
    ADDRESSES[0]
}

fn peer() -> Ipv4Address {
    ip(10, 1, 2, 3)
}

/// arpd (0), stray (1), httpd (2) owning TCP 80, dns (3) owning UDP 53
/// from 10.0.0.0/8 only.
fn table() -> Table<8> {
    let mut table = Table::new(Some(owner(1)));
    let any = [Filter::ANY];
    let grant = Grant::new(&any);
    table.install(owner(0), &grant, Filter::ethertype(EtherType::ARP), FilterKind::Exclusive).unwrap();
    table.install(owner(2), &grant, Filter::tcp_dst_port(80), FilterKind::Exclusive).unwrap();
    let dns = Filter::udp_dst_port(53).from_addr(prefix(10, 0, 0, 0, 8));
    table.install(owner(3), &grant, dns, FilterKind::Exclusive).unwrap();
    table.install(owner(4), &Grant::privileged(&any), Filter::ANY, FilterKind::Copy).unwrap();
    table
}

fn check(policy: &mut TxPolicy<'_>, table: &Table<8>, headers: &[u8]) -> Result<(), TxRefused> {
    policy.check(table, &TxHeaders::<128>::copy_from(headers))
}

fn tcp_out(src_mac: EthernetAddress, src: Ipv4Address, src_port: u16, flags: u8) -> Vec<u8> {
    ipv4_headers(src_mac, src, peer(), TCP, &tcp_header(src_port, 40000, flags))
}

#[test]
fn owner_of_a_port_may_send_from_it() {
    let table = table();
    let mut httpd = TxPolicy::new(owner(2), MAC_US, &ADDRESSES);
    assert_eq!(check(&mut httpd, &table, &tcp_out(MAC_US, us(), 80, SYN | ACK)), Ok(()));
    assert_eq!(check(&mut httpd, &table, &tcp_out(MAC_US, ADDRESSES[1], 80, ACK)), Ok(()));
}

#[test]
fn forged_source_mac_ip_and_port_are_refused() {
    let table = table();
    let mut httpd = TxPolicy::new(owner(2), MAC_US, &ADDRESSES);
    let forged_mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x66]);
    assert_eq!(check(&mut httpd, &table, &tcp_out(forged_mac, us(), 80, ACK)), Err(TxRefused::ForgedSourceMac));
    assert_eq!(check(&mut httpd, &table, &tcp_out(MAC_US, ip(10, 0, 0, 2), 80, ACK)), Err(TxRefused::ForgedSourceIp));
    assert_eq!(check(&mut httpd, &table, &tcp_out(MAC_US, us(), 81, ACK)), Err(TxRefused::EndpointNotOwned));
    // Port 80 of UDP is not TCP port 80: wrong protocol.
    let udp = ipv4_headers(MAC_US, us(), peer(), UDP, &udp_header(80, 40000));
    assert_eq!(check(&mut httpd, &table, &udp), Err(TxRefused::ProtocolNotOwned));
    let icmp = ipv4_headers(MAC_US, us(), peer(), ICMP, &[0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(check(&mut httpd, &table, &icmp), Err(TxRefused::ProtocolNotOwned));
    let other = {
        let mut frame = tcp_out(MAC_US, us(), 80, ACK);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        frame
    };
    assert_eq!(check(&mut httpd, &table, &other), Err(TxRefused::ProtocolNotOwned));

    let counters = httpd.counters();
    assert_eq!(counters.allowed, 0);
    assert_eq!(counters.refused[TxRefused::ForgedSourceMac.index()], 1);
    assert_eq!(counters.refused[TxRefused::ForgedSourceIp.index()], 1);
    assert_eq!(counters.refused[TxRefused::EndpointNotOwned.index()], 1);
    assert_eq!(counters.refused[TxRefused::ProtocolNotOwned.index()], 3);
}

#[test]
fn a_source_prefix_in_the_filter_limits_destinations() {
    let table = table();
    let mut dns = TxPolicy::new(owner(3), MAC_US, &ADDRESSES);
    let to = |dst| ipv4_headers(MAC_US, us(), dst, UDP, &udp_header(53, 5353));
    assert_eq!(check(&mut dns, &table, &to(ip(10, 200, 0, 1))), Ok(()));
    assert_eq!(check(&mut dns, &table, &to(ip(192, 168, 0, 1))), Err(TxRefused::EndpointNotOwned));
}

#[test]
fn copy_filters_give_no_right_to_send() {
    let table = table();
    let mut monitor = TxPolicy::new(owner(4), MAC_US, &ADDRESSES);
    assert_eq!(check(&mut monitor, &table, &tcp_out(MAC_US, us(), 80, ACK)), Err(TxRefused::ProtocolNotOwned));
}

#[test]
fn malformed_or_short_headers_are_refused() {
    let table = table();
    let mut httpd = TxPolicy::new(owner(2), MAC_US, &ADDRESSES);
    let frame = tcp_out(MAC_US, us(), 80, ACK);
    assert_eq!(check(&mut httpd, &table, &frame[..14 + 20 + 13]), Err(TxRefused::Malformed(Malformed::Truncated)));
    let mut fragment = frame.clone();
    fragment[20] = 0x20; // More Fragments
    assert_eq!(check(&mut httpd, &table, &fragment), Err(TxRefused::Malformed(Malformed::Fragment)));
    let mut options = frame.clone();
    options[14] = 0x46;
    assert_eq!(check(&mut httpd, &table, &options), Err(TxRefused::Malformed(Malformed::Options)));
    // A copy shorter than the ports: the copy capacity itself truncates.
    let short_copy = TxHeaders::<40>::copy_from(&frame);
    assert_eq!(short_copy.len(), 40);
    assert_eq!(httpd.check(&table, &short_copy), Err(TxRefused::Malformed(Malformed::Truncated)));
    assert_eq!(httpd.counters().refused[TxRefused::Malformed(Malformed::Truncated).index()], 4);
}

#[test]
fn the_check_sees_only_the_copy() {
    let table = table();
    let mut httpd = TxPolicy::new(owner(2), MAC_US, &ADDRESSES);
    let mut pd_memory = tcp_out(MAC_US, us(), 80, ACK);
    let copy = TxHeaders::<128>::copy_from(&pd_memory);
    // The PD rewrites its source port after the copy was taken: the check,
    // and the bytes that will be sent, are the copy's.
    pd_memory[34..36].copy_from_slice(&22u16.to_be_bytes());
    assert_eq!(httpd.check(&table, &copy), Ok(()));
    assert_eq!(&copy.as_bytes()[34..36], &80u16.to_be_bytes());
    assert_eq!(TxHeaders::<128>::copy_from(&pd_memory).as_bytes()[34..36], 22u16.to_be_bytes());
}

#[test]
fn arpd_sends_arp_as_itself() {
    let table = table();
    let mut arpd = TxPolicy::new(owner(0), MAC_US, &ADDRESSES);
    assert_eq!(check(&mut arpd, &table, &arp_frame(MAC_US, MAC_US, us())), Ok(()));
    assert_eq!(
        check(&mut arpd, &table, &arp_frame(MAC_US, MAC_US, Ipv4Address::UNSPECIFIED)),
        Ok(()),
        "RFC 5227 probe"
    );
    assert_eq!(check(&mut arpd, &table, &arp_frame(MAC_US, MAC_PEER, us())), Err(TxRefused::ForgedArpSender));
    assert_eq!(check(&mut arpd, &table, &arp_frame(MAC_US, MAC_US, ip(10, 0, 0, 2))), Err(TxRefused::ForgedArpSender));
    assert_eq!(check(&mut arpd, &table, &arp_frame(MAC_PEER, MAC_US, us())), Err(TxRefused::ForgedSourceMac));
    let mut httpd = TxPolicy::new(owner(2), MAC_US, &ADDRESSES);
    assert_eq!(check(&mut httpd, &table, &arp_frame(MAC_US, MAC_US, us())), Err(TxRefused::ProtocolNotOwned));
}

/// A reset from `src_port` with sequence number `seq` and `flags`.
fn reset_out(src_port: u16, seq: u32, flags: u8) -> Vec<u8> {
    let mut tcp = tcp_header(src_port, 40000, flags);
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    ipv4_headers(MAC_US, us(), peer(), TCP, &tcp)
}

fn icmp_out(icmp_type: u8, code: u8) -> Vec<u8> {
    ipv4_headers(MAC_US, us(), peer(), ICMP, &[icmp_type, code, 0, 0, 0, 0, 0, 0])
}

#[test]
fn stray_daemon_answers_only_unclaimed_traffic_with_its_answers() {
    let table = table();
    let mut stray = TxPolicy::new(owner(1), MAC_US, &ADDRESSES).answering_unclaimed();
    // Echo reply; port and protocol unreachable; the two reset forms.
    for allowed in [icmp_out(0, 0), icmp_out(3, 3), icmp_out(3, 2), reset_out(22, 7, RST), reset_out(22, 0, RST | ACK)]
    {
        assert_eq!(check(&mut stray, &table, &allowed), Ok(()), "{allowed:x?}");
    }
    // Any other ICMP: an echo request, a redirect, "fragmentation needed",
    // host unreachable, an echo reply with a code.
    for (icmp_type, code) in [(8, 0), (5, 1), (3, 4), (3, 1), (0, 1), (11, 0)] {
        assert_eq!(
            check(&mut stray, &table, &icmp_out(icmp_type, code)),
            Err(TxRefused::ProtocolNotOwned),
            "type {icmp_type} code {code}"
        );
    }
    // Resets with other flags, or RST+ACK with a sequence number.
    for (seq, flags) in [(0, RST | SYN), (0, RST | ACK | 0x01), (0, RST | 0x08), (5, RST | ACK), (0, ACK)] {
        assert_eq!(
            check(&mut stray, &table, &reset_out(22, seq, flags)),
            Err(TxRefused::ProtocolNotOwned),
            "seq {seq} flags {flags:#x}"
        );
    }
    // Not from a port someone owns; not UDP.
    assert_eq!(check(&mut stray, &table, &reset_out(80, 1, RST)), Err(TxRefused::EndpointNotOwned));
    let udp = ipv4_headers(MAC_US, us(), peer(), UDP, &udp_header(9999, 5353));
    assert_eq!(check(&mut stray, &table, &udp), Err(TxRefused::ProtocolNotOwned));
    // Its addresses are still checked.
    assert_eq!(check(&mut stray, &table, &tcp_out(MAC_US, ip(10, 0, 0, 3), 22, RST)), Err(TxRefused::ForgedSourceIp));
    // Without the flag, a PD with no filters may send nothing.
    let mut plain = TxPolicy::new(owner(1), MAC_US, &ADDRESSES);
    assert_eq!(check(&mut plain, &table, &icmp_out(0, 0)), Err(TxRefused::ProtocolNotOwned));
    assert_eq!(stray.counters().allowed, 5);
}

#[test]
fn random_headers_never_panic() {
    let table = table();
    let mut policy = TxPolicy::new(owner(2), MAC_US, &ADDRESSES).answering_unclaimed();
    let mut state = 0x1234_5678_9abc_def0u64;
    let seed = tcp_out(MAC_US, us(), 80, ACK);
    for _ in 0..5000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut frame = seed.clone();
        frame[(state % seed.len() as u64) as usize] = (state >> 32) as u8;
        let len = ((state >> 16) % (seed.len() as u64 + 1)) as usize;
        let _ = check(&mut policy, &table, &frame[..len]);
    }
    let counters = policy.counters();
    let refused: u64 = counters.refused.iter().sum();
    assert_eq!(counters.allowed + refused, 5000);
}
