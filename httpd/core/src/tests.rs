//! Host tests: the server's device on queues in memory, talking to a
//! second smoltcp interface (the client) through Ethernet frames.

use crate::builtin::{pattern_byte, BuiltinSite, PATTERN_LEN};
use crate::device::{strip_ethernet, DeviceCounters, EthDevice, Resolution};
use crate::server::{pool_size, Server, Settings, CONNECTION_BYTES, SECOND_NS};
use net_config::NodeAddress;
pub(crate) use net_serve::testing::*;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::rc::Rc;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// When the built-in site's files were "modified" (unix seconds).
pub(crate) const STARTED: u64 = 1_700_000_000;

/// A server, a client interface, and the clock.
pub(crate) struct Net {
    pub(crate) server: Server<FakeLink, FakeNeighbours, usize, usize, u64>,
    pub(crate) site: BuiltinSite,
    pub(crate) arp: Shared<ArpState>,
    pub(crate) client: Interface,
    pub(crate) client_dev: ClientDevice,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) now: u64,
    pub(crate) next_port: u16,
}

impl Net {
    /// A server with a region for `connections` connections.
    fn new(connections: usize) -> Net {
        let wire: Shared<Wire> = Rc::default();
        let arp: Shared<ArpState> = Rc::default();
        arp.borrow_mut().table.push((CLIENT_IP, CLIENT_MAC));
        let node = NodeAddress { ipv4: SERVER_IP, prefix_len: 24, gateway: Some(CLIENT_IP) };
        let device = EthDevice::new(
            FakeLink { wire: wire.clone(), tx_capacity: 64, offloads: 0 },
            FakeNeighbours(arp.clone()),
            node,
            SERVER_MAC,
        );
        let mut arena = crate::arena::leaked(connections * CONNECTION_BYTES);
        let settings = Settings {
            port: 80,
            idle_timeout_ns: 5 * SECOND_NS,
            close_timeout_ns: 2 * SECOND_NS,
            boot_epoch: STARTED,
            random_seed: 1,
            send_in_place: true,
        };
        let mut server = Server::new(device, &mut arena, settings, 0).expect("server starts");
        server.accept().expect("listens");
        let site = BuiltinSite::new(STARTED);
        let mut client_dev = ClientDevice { wire, region: site.region.clone(), bad_frames: 0 };
        let mut client = Interface::new(Config::new(HardwareAddress::Ip), &mut client_dev, Instant::from_micros(0));
        client.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::Ipv4(smol(CLIENT_IP)), 24)).unwrap());
        Net { server, site, arp, client, client_dev, sockets: SocketSet::new(vec![]), now: 0, next_port: 40000 }
    }

    /// Sends `request` on `h` and collects `want` bytes of response.
    fn exchange(&mut self, h: SocketHandle, request: &[u8], want: usize) -> Vec<u8> {
        self.send(h, request);
        let mut got = Vec::new();
        self.run_until(20_000, |n| {
            n.take(h, &mut got);
            got.len() >= want
        });
        got
    }
}

impl ClientSide for Net {
    fn client_parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>, &mut u16) {
        (&mut self.client, &mut self.sockets, &mut self.next_port)
    }

    fn step(&mut self) {
        self.server.poll(self.now, &mut self.site);
        self.client.poll(Instant::from_micros((self.now / 1000) as i64), &mut self.client_dev, &mut self.sockets);
        self.now += 1_000_000;
    }
}

/// The length of a response whose head is at the start of `bytes`.
pub(crate) fn response_len(bytes: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text.find("\r\n\r\n")? + 4;
    let len: usize = text[..head_end].lines().find_map(|l| l.strip_prefix("Content-Length: "))?.trim().parse().ok()?;
    Some(head_end + len)
}

#[test]
fn ethernet_is_checked_and_stripped() {
    let mut c = DeviceCounters::default();
    let mut frame = vec![0u8; 60];
    frame[0..6].copy_from_slice(&SERVER_MAC);
    frame[12..14].copy_from_slice(&[8, 0]);
    frame[14] = 0x45;
    assert_eq!(strip_ethernet(&frame, &SERVER_MAC, &mut c).map(|p| p.len()), Some(46));
    frame[0..6].copy_from_slice(&[0xff; 6]);
    assert!(strip_ethernet(&frame, &SERVER_MAC, &mut c).is_some(), "broadcast");
    frame[0..6].copy_from_slice(&CLIENT_MAC);
    assert!(strip_ethernet(&frame, &SERVER_MAC, &mut c).is_none(), "another station");
    frame[0..6].copy_from_slice(&SERVER_MAC);
    frame[12..14].copy_from_slice(&[8, 6]);
    assert!(strip_ethernet(&frame, &SERVER_MAC, &mut c).is_none(), "ARP");
    assert!(strip_ethernet(&frame[..13], &SERVER_MAC, &mut c).is_none(), "runt");
    assert_eq!(c, DeviceCounters { rx_packets: 2, rx_not_ipv4: 2, rx_not_for_us: 1, ..Default::default() });
}

#[test]
fn serves_a_page_with_ethernet_framing_both_ways() {
    let mut net = Net::new(4);
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    let got = net.exchange(h, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    let mut got = got;
    net.run_until(1000, |n| {
        n.take(h, &mut got);
        response_len(&got) == Some(got.len())
    });
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Date: Tue, 14 Nov 2023 22:13:"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello from the seL4 web node\n"), "{text}");
    assert_eq!(net.client_dev.bad_frames, 0, "every frame went to the client's MAC from the node's");
    let c = net.server.device.counters;
    assert!(c.rx_packets > 0 && c.tx_frames > 0 && c.tx_arp_miss == 0, "{c:?}");
    assert_eq!(net.server.counters.accepted, 1);
    assert_eq!(net.server.counters.responses, 1);
}

#[test]
fn pipelined_requests_and_a_megabyte() {
    let mut net = Net::new(2);
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    let request = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /big.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /big.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    net.send(h, request);
    let mut got = Vec::new();
    let mut responses = Vec::new();
    net.run_until(200_000, |n| {
        n.take(h, &mut got);
        while let Some(len) = response_len(&got) {
            // HEAD: no body although Content-Length says so.
            let len =
                if responses.len() == 1 { String::from_utf8_lossy(&got).find("\r\n\r\n").unwrap() + 4 } else { len };
            if got.len() < len {
                break;
            }
            responses.push(got.drain(..len).collect::<Vec<u8>>());
        }
        responses.len() == 4
    });
    let heads: Vec<String> =
        responses.iter().map(|r| String::from_utf8_lossy(&r[..r.len().min(16)]).into_owned()).collect();
    assert_eq!(heads, ["HTTP/1.1 200 OK\r", "HTTP/1.1 200 OK\r", "HTTP/1.1 200 OK\r", "HTTP/1.1 404 Not"]);
    let big = &responses[2];
    let body = &big[big.len() - PATTERN_LEN as usize..];
    assert!(body.iter().enumerate().all(|(i, &b)| b == pattern_byte(i as u64)), "the megabyte arrived intact");
    assert_eq!(net.server.counters.responses, 4);
    assert_eq!(net.server.counters.errors, 1);
    // Every body byte went in place (retransmissions may add more).
    let bodies = PATTERN_LEN + HELLO_LEN;
    assert_eq!(net.server.counters.copied_bytes, 0);
    assert!(
        net.client_dev.wire.borrow().in_place_bytes as u64 >= bodies,
        "{} < {bodies}",
        net.client_dev.wire.borrow().in_place_bytes
    );
    assert_eq!(net.server.device.counters.tx_in_place_bytes, net.client_dev.wire.borrow().in_place_bytes as u64);
    assert_eq!(net.server.device.counters.tx_unplanned, 0);
    net.run_until(1000, |n| n.site.released == n.site.pins);
}

/// Bytes of `/hello.txt`.
const HELLO_LEN: u64 = 29;

#[test]
fn a_store_without_a_send_from_region_has_its_bodies_copied() {
    let mut net = Net::new(1);
    net.site.in_place = false;
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    let head_len = {
        let got = net.exchange(h, b"HEAD /big.txt HTTP/1.1\r\nHost: x\r\n\r\n", 1);
        let mut got = got;
        net.run_until(1000, |n| {
            n.take(h, &mut got);
            got.ends_with(b"\r\n\r\n")
        });
        got.len()
    };
    let got = net.exchange(h, b"GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n", head_len + PATTERN_LEN as usize);
    let body = &got[got.len() - PATTERN_LEN as usize..];
    assert!(body.iter().enumerate().all(|(i, &b)| b == pattern_byte(i as u64)));
    assert_eq!(net.server.counters.copied_bytes, PATTERN_LEN);
    assert_eq!(net.client_dev.wire.borrow().in_place_bytes, 0);
}

#[test]
fn many_small_pipelined_responses_share_segments_in_place() {
    let mut net = Net::new(1);
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    // 40 small bodies back to back: more than a connection's extents, so
    // later responses wait for acknowledgements to free them.
    let mut request = Vec::new();
    for i in 0..40 {
        let path = ["/hello.txt", "/style.css"][i % 2];
        request.extend_from_slice(std::format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    net.send(h, &request);
    let mut got = Vec::new();
    let mut bodies = 0;
    net.run_until(20_000, |n| {
        n.take(h, &mut got);
        while let Some(len) = response_len(&got).filter(|&len| got.len() >= len) {
            let response: Vec<u8> = got.drain(..len).collect();
            let want: &[u8] =
                if bodies % 2 == 0 { b"hello from the seL4 web node\n" } else { b"h1 { color: #336; }\n" };
            assert!(response.ends_with(want), "response {bodies}: {:?}", String::from_utf8_lossy(&response));
            bodies += 1;
        }
        bodies == 40
    });
    assert_eq!(net.server.counters.copied_bytes, 0);
    assert_eq!(net.client_dev.bad_frames, 0);
    net.run_until(1000, |n| n.site.released == 40);
}

#[test]
fn a_full_pool_refuses_new_connections_and_slots_are_reused() {
    let mut net = Net::new(2);
    assert_eq!(net.server.pool_size(), 2);
    let a = net.connect();
    let b = net.connect();
    net.run_until(1000, |n| n.established(a) && n.established(b) && n.server.busy() == 2);
    // A third: no socket listens, smoltcp resets it.
    let c = net.connect();
    net.run_until(1000, |n| n.socket(c).state() == tcp::State::Closed);
    assert_eq!(net.server.counters.pool_full, 1);
    // The two keep working.
    for h in [a, b] {
        let got = net.exchange(h, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 10);
        assert!(got.starts_with(b"HTTP/1.1 200 OK"));
    }
    // The client closes one: its slot listens again and takes a newcomer.
    net.socket(a).close();
    net.run_until(1000, |n| n.server.busy() == 1);
    let d = net.connect();
    net.run_until(1000, |n| n.established(d));
    let got = net.exchange(d, b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n", 10);
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
    assert_eq!(net.server.counters.accepted, 3);
    assert_eq!(pool_size(2 * CONNECTION_BYTES + CONNECTION_BYTES - 1), 2);
}

#[test]
fn an_arp_miss_drops_the_frame_asks_arpd_and_tcp_recovers() {
    let mut net = Net::new(1);
    net.arp.borrow_mut().table.clear();
    let h = net.connect();
    net.run_until(200, |n| !n.arp.borrow().resolves.is_empty());
    assert_eq!(net.arp.borrow().resolves[0], CLIENT_IP);
    assert!(net.server.device.counters.tx_arp_miss >= 1);
    assert!(!net.established(h), "the SYN-ACK was dropped");
    // arpd learns the address: the retransmitted SYN-ACK goes out.
    net.arp.borrow_mut().table.push((CLIENT_IP, CLIENT_MAC));
    net.run_until(10_000, |n| n.established(h));
    // A stale entry: not in the table, but arpd answers at once.
    net.arp.borrow_mut().table.clear();
    net.arp.borrow_mut().answer = Some(Resolution::Known(net_packet::EthernetAddress(CLIENT_MAC)));
    let misses = net.server.device.counters.tx_arp_miss;
    let got = net.exchange(h, b"GET /hello.txt HTTP/1.0\r\n\r\n", 10);
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
    assert_eq!(net.server.device.counters.tx_arp_miss, misses);
    assert_eq!(net.client_dev.bad_frames, 0);
}

#[test]
fn an_idle_partial_request_gets_408_and_an_idle_connection_is_closed() {
    let mut net = Net::new(2);
    let a = net.connect();
    let b = net.connect();
    net.run_until(1000, |n| n.established(a) && n.established(b));
    net.send(a, b"GET /hello.txt HTTP/1.1\r\nHo");
    let mut got = Vec::new();
    // 5 s idle timeout; the steps are 1 ms.
    net.run_until(7000, |n| {
        n.take(a, &mut got);
        !n.socket(a).may_recv() && !n.socket(b).may_recv()
    });
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"));
    let mut quiet = Vec::new();
    net.take(b, &mut quiet);
    assert!(quiet.is_empty(), "no 408 between requests");
    assert_eq!(net.server.counters.timeouts_408, 1);
    assert_eq!(net.server.counters.idle_closed, 1);
    // Both close their side too: the slots are free again.
    net.socket(a).close();
    net.socket(b).close();
    net.run_until(20_000, |n| n.server.busy() == 0);
}

#[test]
fn nothing_is_accepted_before_accept() {
    let mut net = Net::new(2);
    // A fresh server that was never told to accept.
    let wire: Shared<Wire> = Rc::default();
    let node = NodeAddress { ipv4: SERVER_IP, prefix_len: 24, gateway: Some(CLIENT_IP) };
    let device = EthDevice::new(
        FakeLink { wire: wire.clone(), tx_capacity: 64, offloads: 0 },
        FakeNeighbours(net.arp.clone()),
        node,
        SERVER_MAC,
    );
    let mut arena = crate::arena::leaked(2 * CONNECTION_BYTES);
    let settings = Settings {
        port: 80,
        idle_timeout_ns: SECOND_NS,
        close_timeout_ns: SECOND_NS,
        boot_epoch: STARTED,
        random_seed: 2,
        send_in_place: true,
    };
    net.server = Server::new(device, &mut arena, settings, 0).expect("server starts");
    net.client_dev.wire = wire;
    assert!(!net.server.accepting());
    let a = net.connect();
    net.run_until(1000, |n| n.socket(a).state() == tcp::State::Closed);
    assert_eq!(net.server.counters.accepted, 0, "refused with a reset");
    net.server.accept().unwrap();
    let b = net.connect();
    net.run_until(1000, |n| n.established(b));
    let got = net.exchange(b, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 10);
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
}

#[test]
fn a_response_waits_for_its_file_without_starting_and_resumes() {
    let mut net = Net::new(2);
    net.site.gate = Some(Ok(()));
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    net.send(h, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    for _ in 0..200 {
        net.step();
        net.take(h, &mut got);
    }
    assert!(
        got.is_empty(),
        "nothing of the response is sent while the file waits: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(net.server.counters.file_waits, 1);
    assert_eq!(net.site.pins, 0);
    // The load "completes".
    net.site.gate = None;
    net.site.events += 1;
    net.run_until(1000, |n| {
        n.take(h, &mut got);
        String::from_utf8_lossy(&got).matches("HTTP/1.1 200 OK").count() == 2 && got.ends_with(b"h1 { color: #336; }\n")
    });
    assert!(String::from_utf8_lossy(&got).contains("\r\n\r\nhello from the seL4 web node\n"));
    // Each pin goes back once the client has acknowledged the body.
    net.run_until(1000, |n| n.site.released == 2);
    assert_eq!(net.site.pins, 2);
    assert!(net.established(h), "keep-alive goes on");
}

#[test]
fn a_file_the_store_cannot_give_gets_500_and_none_of_its_bytes() {
    let mut net = Net::new(2);
    net.site.gate = Some(Err(http_core::Status::InternalServerError));
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    net.send(h, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    net.run_until(1000, |n| {
        n.take(h, &mut got);
        response_len(&got).is_some_and(|len| got.len() >= len) && !n.socket(h).may_recv()
    });
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(!text.contains("hello from") && !text.contains("ETag"), "{text}");
    assert_eq!(net.server.counters.file_errors, 1);
    // A new connection is served once the store can give the file.
    net.site.gate = None;
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    let got = net.exchange(h, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 10);
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
}

/// A connection of `net` in the middle of `/big.txt`'s body (its pin held).
fn mid_body(net: &mut Net) -> SocketHandle {
    let h = net.connect();
    net.run_until(1000, |n| n.established(h));
    net.send(h, b"GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    net.run_until(1000, |n| {
        n.take(h, &mut got);
        got.len() > 10_000
    });
    h
}

#[test]
fn a_pin_is_released_when_the_connection_is_aborted_mid_body() {
    let mut net = Net::new(2);
    let h = mid_body(&mut net);
    assert_eq!((net.site.pins, net.site.released), (1, 0), "pinned while sending");
    net.socket(h).abort();
    net.run_until(1000, |n| n.site.released == 1 && n.server.busy() == 0);
}

/// The store's pins became void (the file cache PD restarted): the server
/// resets the connection that sends from one and gives its pin back; the
/// client sees the reset, and a new connection is served.
#[test]
fn abort_transfers_resets_the_connections_that_send_from_pins() {
    let mut net = Net::new(2);
    let h = mid_body(&mut net);
    assert_eq!(net.server.abort_transfers(&mut net.site), 1);
    net.run_until(1000, |n| n.site.released == n.site.pins && !n.socket(h).is_open());
    let h2 = net.connect();
    net.run_until(1000, |n| n.established(h2));
    let mut got = net.exchange(h2, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    net.run_until(1000, |n| {
        n.take(h2, &mut got);
        response_len(&got) == Some(got.len())
    });
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
}
