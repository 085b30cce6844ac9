//! Host tests of the FTP server: real FTP conversations, a smoltcp client
//! over net-serve's fake link (`net_serve::testing`), the site an image
//! built in memory whose file data lives in a "cache region" the fake NIC
//! sends from while a file is pinned (evicted, overwritten, when its last
//! pin goes back: a frame sent from it then would fail the client's
//! checksum).

use super::*;
use crate::tests::{site, SiteFile};
use lib_test_rng::Rng;
use net_config::{Ipv4Address, NodeAddress};
use net_packet::tcp::{TcpFlags, TcpHeader};
use net_packet::{IpProtocol, Ipv4Packet, TcpSegment};
use net_serve::testing::{
    smol, ArpState, ClientDevice, ClientSide, FakeLink, FakeNeighbours, Shared, Wire as Link2, CLIENT_IP, CLIENT_MAC,
    SERVER_IP, SERVER_MAC,
};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::boxed::Box;
use std::rc::Rc;
use std::string::String;
use std::vec;
use std::vec::Vec;

const MS: u64 = 1_000_000;
const STARTED: u64 = 1_700_000_000;
/// Another host on the link, not the control connection's peer.
const OTHER_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 3);
/// Bytes of the region per file.
const REGION_SLOT: usize = 1 << 20;
/// What a file's region bytes hold while it is not pinned.
const EVICTED: u8 = 0xdd;

/// Byte `i` of the generated files: lines of 64 bytes.
fn pattern(i: u64) -> u8 {
    if i % 64 == 63 {
        b'\n'
    } else {
        b'a' + ((i / 64 + i % 64) % 26) as u8
    }
}

fn big(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern).collect()
}

/// The test site in memory.
struct TestStore {
    image: Image<'static>,
    /// File data by index position.
    data: Vec<Vec<u8>>,
    region: Shared<Vec<u8>>,
    held: Vec<u32>,
    /// `None`: opens are served; `Some(true)`: `Wait`; `Some(false)`: fail.
    gate: Option<bool>,
    /// Whether the index is there (the cache has published it).
    serving: bool,
    events: u64,
    in_place: bool,
    opens: u64,
    released: u64,
    /// Bytes summed for segments that do not cover one whole piece of
    /// the image (its precomputed sums do not serve them).
    partial_sums: core::cell::Cell<u64>,
}

impl TestStore {
    fn new(files: &[(&str, Vec<u8>)]) -> TestStore {
        let list: Vec<SiteFile<'_>> = files.iter().map(|(p, d)| SiteFile::new(p, d)).collect();
        let head: &'static [u8] = Box::leak(site(&list).into_boxed_slice());
        let image = Image::parse(head).unwrap();
        let data: Vec<Vec<u8>> = (0..image.len())
            .map(|i| {
                let path = image.record(i).unwrap().path;
                files.iter().find(|(p, _)| *p == path).unwrap().1.clone()
            })
            .collect();
        let n = data.len();
        TestStore {
            image,
            data,
            region: Rc::new(core::cell::RefCell::new(vec![EVICTED; REGION_SLOT * n])),
            held: vec![0; n],
            gate: None,
            serving: true,
            events: 0,
            in_place: true,
            opens: 0,
            released: 0,
            partial_sums: core::cell::Cell::new(0),
        }
    }

    fn pins(&self) -> u32 {
        self.held.iter().sum()
    }
}

impl Pins for TestStore {
    type Pin = usize;

    fn region_offset(&self, &file: &usize) -> Option<usize> {
        self.in_place.then_some(REGION_SLOT * file)
    }

    fn sum(&self, &file: &usize, offset: u64, len: usize) -> Option<u16> {
        let data = self.data.get(file)?;
        let bytes = data.get(offset as usize..offset as usize + len)?;
        let whole = offset.is_multiple_of(PIECE) && (len as u64 == PIECE || offset as usize + len == data.len());
        if !whole {
            self.partial_sums.set(self.partial_sums.get() + len as u64);
        }
        let mut sum = net_packet::checksum::Checksum::new();
        sum.add_bytes(bytes);
        Some(sum.sum())
    }

    fn release(&mut self, file: usize) {
        self.released += 1;
        self.held[file] -= 1;
        if self.held[file] == 0 {
            self.region.borrow_mut()[REGION_SLOT * file..][..REGION_SLOT].fill(EVICTED);
        }
    }
}

impl Files for TestStore {
    type Wait = u64;

    fn may_retry(&self, wait: &u64) -> bool {
        *wait != self.events
    }

    fn read(&self, &file: &usize, offset: u64, buf: &mut [u8]) -> usize {
        let d = &self.data[file];
        let from = (offset as usize).min(d.len());
        let n = (d.len() - from).min(buf.len());
        buf[..n].copy_from_slice(&d[from..from + n]);
        n
    }
}

impl FtpStore for TestStore {
    fn image(&self) -> Option<&Image<'_>> {
        self.serving.then_some(&self.image)
    }

    fn open(&mut self, position: u32) -> Opened<usize, u64> {
        let file = position as usize;
        match self.gate {
            None => {
                self.opens += 1;
                if self.held[file] == 0 {
                    let d = &self.data[file];
                    self.region.borrow_mut()[REGION_SLOT * file..][..d.len()].copy_from_slice(d);
                }
                self.held[file] += 1;
                Opened::Ready(file)
            }
            Some(true) => Opened::Wait(self.events),
            Some(false) => Opened::Fail,
        }
    }
}

struct Net {
    server: Server<FakeLink, FakeNeighbours, TestStore>,
    store: TestStore,
    wire: Shared<Link2>,
    client: Interface,
    client_dev: ClientDevice,
    sockets: SocketSet<'static>,
    now: u64,
    next_port: u16,
    /// Loss and reordering on the link: a generator and percent lost.
    loss: Option<(Rng, usize)>,
}

impl ClientSide for Net {
    fn client_parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>, &mut u16) {
        (&mut self.client, &mut self.sockets, &mut self.next_port)
    }

    fn step(&mut self) {
        self.server.poll(self.now, &mut self.store);
        self.disturb();
        self.client.poll(Instant::from_micros((self.now / 1000) as i64), &mut self.client_dev, &mut self.sockets);
        self.disturb();
        self.now += MS;
    }
}

fn settings() -> Settings {
    let mut s = Settings::new(SERVER_IP.0, STARTED, [7; 16], true);
    s.passive_count = 8;
    s.sessions = 4;
    s
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("/hello.txt", b"hello\nworld\r\nbare\rcr\n".to_vec()),
        ("/pub/big.bin", big(300_000)),
        ("/pub/huge.bin", big(1 << 20)),
        ("/pub/notes.txt", big(10_000)),
        ("/empty", Vec::new()),
    ]
}

impl Net {
    fn new(settings: Settings, store: TestStore) -> Net {
        let wire: Shared<Link2> = Rc::default();
        let arp: Shared<ArpState> = Rc::default();
        arp.borrow_mut().table.push((CLIENT_IP, CLIENT_MAC));
        arp.borrow_mut().table.push((OTHER_IP, CLIENT_MAC));
        let node = NodeAddress { ipv4: SERVER_IP, prefix_len: 24, gateway: Some(CLIENT_IP) };
        let side = Wire::new(
            FakeLink { wire: wire.clone(), tx_capacity: 64, offloads: 0 },
            FakeNeighbours(arp),
            node,
            SERVER_MAC,
        );
        let mut arena = net_serve::arena::leaked(4 << 20);
        let mut server = server(side, &mut arena, settings, 0).expect("server starts");
        server.accept();
        let mut client_dev = ClientDevice { wire: wire.clone(), region: store.region.clone(), bad_frames: 0 };
        let mut client =
            Interface::new(IfaceConfig::new(HardwareAddress::Ip), &mut client_dev, Instant::from_micros(0));
        client.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::Ipv4(smol(CLIENT_IP)), 24)).unwrap());
        Net {
            server,
            store,
            wire,
            client,
            client_dev,
            sockets: SocketSet::new(vec![]),
            now: 0,
            next_port: 40000,
            loss: None,
        }
    }

    fn disturb(&mut self) {
        if let Some((rng, percent)) = self.loss.as_mut() {
            self.wire.borrow_mut().disturb(rng, *percent);
        }
    }

    fn default() -> Net {
        Net::new(settings(), TestStore::new(&files()))
    }

    /// A data connection socket with a small receive buffer (so that a
    /// client that stops reading stalls the transfer).
    fn connect_small(&mut self, port: u16) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0; 8192]);
        let tx = tcp::SocketBuffer::new(vec![0; 1024]);
        let mut socket = tcp::Socket::new(rx, tx);
        self.next_port += 1;
        socket.connect(self.client.context(), (IpAddress::Ipv4(smol(SERVER_IP)), port), self.next_port).unwrap();
        self.sockets.add(socket)
    }
}

/// A control connection: the socket and what it received not yet read as
/// replies.
struct Control {
    h: SocketHandle,
    pending: Vec<u8>,
}

/// The first complete reply (RFC 959 §4.2, one or more lines) at the start
/// of `bytes`: its length.
fn reply_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut code: Option<&[u8]> = None;
    while let Some(end) = bytes[at..].windows(2).position(|w| w == b"\r\n") {
        let line = &bytes[at..at + end];
        at += end + 2;
        match code {
            None if line.len() >= 4 && line[3] == b' ' => return Some(at),
            None if line.len() >= 4 && line[3] == b'-' => code = Some(&line[..3]),
            None => panic!("not a reply: {:?}", String::from_utf8_lossy(line)),
            Some(c) if line.len() >= 4 && &line[..3] == c && line[3] == b' ' => return Some(at),
            Some(_) => {}
        }
    }
    None
}

impl Control {
    fn open(net: &mut Net) -> Control {
        let h = net.connect_to(CONTROL_PORT);
        let mut c = Control { h, pending: Vec::new() };
        let greeting = c.reply(net);
        assert!(greeting.starts_with("220 "), "{greeting}");
        c
    }

    /// The next reply.
    fn reply(&mut self, net: &mut Net) -> String {
        let mut done = None;
        net.run_until(20_000, |n| {
            n.take(self.h, &mut self.pending);
            done = reply_len(&self.pending);
            done.is_some()
        });
        let len = done.unwrap();
        String::from_utf8(self.pending.drain(..len).collect()).unwrap()
    }

    /// Sends `line` and returns the reply.
    fn command(&mut self, net: &mut Net, line: &str) -> String {
        self.send(net, line);
        self.reply(net)
    }

    fn send(&mut self, net: &mut Net, line: &str) {
        // Commands well within the rate limit (20 a second).
        net.now += 50 * MS;
        net.send(self.h, std::format!("{line}\r\n").as_bytes());
    }

    fn login(&mut self, net: &mut Net) {
        assert!(self.command(net, "USER anonymous").starts_with("331 "));
        assert!(self.command(net, "PASS guest@").starts_with("230 "));
    }

    /// PASV: the port of the 227.
    fn pasv(&mut self, net: &mut Net) -> u16 {
        let r = self.command(net, "PASV");
        assert!(r.starts_with("227 Entering Passive Mode (10,0,2,15,"), "{r}");
        let inner = &r[r.find('(').unwrap() + 1..r.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
        n[4] * 256 + n[5]
    }

    /// EPSV: the port of the 229.
    fn epsv(&mut self, net: &mut Net) -> u16 {
        let r = self.command(net, "EPSV");
        assert!(r.starts_with("229 "), "{r}");
        r[r.find("(|||").unwrap() + 4..r.find("|)").unwrap()].parse().unwrap()
    }
}

/// Everything the data connection `h` carries until the server closes it
/// (then the client closes too).
fn receive_all(net: &mut Net, h: SocketHandle) -> Vec<u8> {
    let mut got = Vec::new();
    net.run_until(20_000, |n| n.socket(h).state() != tcp::State::SynSent);
    net.run_until(200_000, |n| {
        n.take(h, &mut got);
        !n.socket(h).may_recv() && !n.socket(h).can_recv()
    });
    net.socket(h).close();
    got
}

/// `command` on a fresh passive data connection, made after the command
/// (the 150 case; [`transfer_connected`] the 125 one): the preliminary
/// reply, the data, the final reply.
fn transfer(net: &mut Net, c: &mut Control, command: &str) -> (String, Vec<u8>, String) {
    let port = c.pasv(net);
    let first = c.command(net, command);
    assert!(first.starts_with("150 "), "{first}");
    let d = net.connect_to(port);
    let data = receive_all(net, d);
    let last = c.reply(net);
    (first, data, last)
}

/// [`transfer`] with the data connection made before the command.
fn transfer_connected(net: &mut Net, c: &mut Control, command: &str) -> (String, Vec<u8>, String) {
    let port = c.pasv(net);
    let d = net.connect_to(port);
    net.run_until(20_000, |n| n.established(d));
    let first = c.command(net, command);
    assert!(first.starts_with("125 "), "{first}");
    let data = receive_all(net, d);
    let last = c.reply(net);
    (first, data, last)
}

#[test]
fn greeting_login_pwd_syst_and_quit() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    assert_eq!(c.command(&mut net, "PWD"), "530 Please login with USER and PASS.\r\n");
    c.login(&mut net);
    assert_eq!(c.command(&mut net, "PWD"), "257 \"/\" is the current directory.\r\n");
    assert_eq!(c.command(&mut net, "SYST"), "215 UNIX Type: L8\r\n");
    let feat = c.command(&mut net, "FEAT");
    assert!(feat.starts_with("211-Features:\r\n") && feat.ends_with("211 End\r\n"), "{feat}");
    assert_eq!(c.command(&mut net, "CWD /pub"), "250 Directory successfully changed.\r\n");
    assert_eq!(c.command(&mut net, "QUIT"), "221 Goodbye.\r\n");
    // The server closes the control connection after its 221.
    let h = c.h;
    net.run_until(1000, |n| !n.socket(h).may_recv());
    net.socket(h).close();
    net.run_until(2000, |n| n.server.connections() == 0);
    assert_eq!(net.server.service.sessions_in_use(), 0);
    assert_eq!(net.server.service.counters.sessions, 1);
    assert_eq!(net.client_dev.bad_frames, 0);
}

#[test]
fn pasv_and_list() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    let (_, data, last) = transfer(&mut net, &mut c, "LIST");
    assert_eq!(last, "226 Transfer complete.\r\n");
    let text = String::from_utf8(data).unwrap();
    assert!(text.contains(" hello.txt\r\n") && text.contains(" pub\r\n") && text.contains(" empty\r\n"), "{text}");
    assert!(text.lines().all(|l| l.starts_with('-') || l.starts_with('d')), "{text}");
    // NLST of a directory, on EPSV.
    let port = c.epsv(&mut net);
    let d = net.connect_to(port);
    net.run_until(1000, |n| n.established(d));
    // Connected before the command: 125.
    let first = c.command(&mut net, "NLST /pub");
    assert!(first.starts_with("125 "), "{first}");
    let data = receive_all(&mut net, d);
    assert_eq!(c.reply(&mut net), "226 Transfer complete.\r\n");
    // A named directory's entries by path (as `ls /pub` and vsftpd), so
    // that a client retrieving each name finds the file.
    assert_eq!(String::from_utf8(data).unwrap(), "/pub/big.bin\r\n/pub/huge.bin\r\n/pub/notes.txt\r\n");
    assert_eq!(net.server.service.counters.complete, 2);
    assert_eq!(net.server.service.listeners(), 0);
}

#[test]
fn retr_binary_is_sent_in_place() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    assert!(c.command(&mut net, "TYPE I").starts_with("200 "));
    let (first, data, last) = transfer(&mut net, &mut c, "RETR /pub/big.bin");
    assert_eq!(first, "150 Opening data connection for BINARY transfer of /pub/big.bin (300000 bytes).\r\n");
    assert_eq!(last, "226 Transfer complete.\r\n");
    assert!(data == big(300_000), "{} bytes", data.len());
    let counters = net.server.service.counters;
    assert_eq!(counters.bytes_in_place, 300_000);
    assert_eq!(net.store.partial_sums.get(), 0, "segments cover whole pieces");
    assert!(net.server.wire.counters.tx_in_place_bytes >= 300_000);
    assert_eq!(net.client_dev.bad_frames, 0);
    // The pin goes back once everything is acknowledged.
    net.run_until(2000, |n| n.store.pins() == 0);
    // An empty file: nothing, then 226.
    let (_, data, last) = transfer_connected(&mut net, &mut c, "RETR /empty");
    assert!(data.is_empty());
    assert_eq!(last, "226 Transfer complete.\r\n");
}

#[test]
fn retr_in_type_a_converts_line_ends() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    // TYPE A is the default (RFC 959 §3.1.1.1).
    let (_, data, last) = transfer(&mut net, &mut c, "RETR hello.txt");
    assert_eq!(last, "226 Transfer complete.\r\n");
    assert_eq!(data, b"hello\r\nworld\r\nbare\rcr\r\n");
    // Over many ring pieces.
    let (_, data, _) = transfer_connected(&mut net, &mut c, "RETR /pub/notes.txt");
    let want: Vec<u8> =
        big(10_000).iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
    assert!(data == want, "{} bytes, want {}", data.len(), want.len());
    // REST counts converted bytes in TYPE A (RFC 3659 §5.3).
    assert!(c.command(&mut net, "REST 7").starts_with("350 "));
    let (_, data, _) = transfer(&mut net, &mut c, "RETR hello.txt");
    assert_eq!(data, b"world\r\nbare\rcr\r\n");
    assert_eq!(net.server.service.counters.bytes_in_place, 0);
}

#[test]
fn rest_resumes_a_binary_retr() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    assert!(c.command(&mut net, "TYPE I").starts_with("200 "));
    assert_eq!(c.command(&mut net, "REST 100001"), "350 Restarting at 100001. Send RETR to resume.\r\n");
    let (_, data, last) = transfer(&mut net, &mut c, "RETR /pub/big.bin");
    assert_eq!(last, "226 Transfer complete.\r\n");
    assert!(data[..] == big(300_000)[100_001..], "{} bytes", data.len());
    assert_eq!(net.client_dev.bad_frames, 0);
    // The bytes up to the next piece boundary (69 × 1460) are copied, the
    // rest sent in place in whole pieces with the image's sums.
    let counters = net.server.service.counters;
    assert_eq!((counters.bytes_copied, counters.bytes_in_place), (100_740 - 100_001, 300_000 - 100_740));
    assert_eq!(net.store.partial_sums.get(), 0);
    // REST past the end: 554 (RFC 3659 §5.4), and no transfer.
    assert!(c.command(&mut net, "REST 300001").starts_with("350 "));
    let port = c.pasv(&mut net);
    let _ = port;
    assert!(c.command(&mut net, "RETR /pub/big.bin").starts_with("554 "));
}

/// A logged-in session retrieving `/pub/huge.bin` in TYPE I over a data
/// connection with a small receive buffer, connected before the RETR
/// (`125`): the control connection and the data connection.
fn huge_retr_started(net: &mut Net) -> (Control, SocketHandle) {
    let mut c = Control::open(net);
    c.login(net);
    assert!(c.command(net, "TYPE I").starts_with("200 "));
    let port = c.pasv(net);
    let d = net.connect_small(port);
    net.run_until(1000, |n| n.established(d));
    assert!(c.command(net, "RETR /pub/huge.bin").starts_with("125 "));
    (c, d)
}

#[test]
fn abor_during_a_transfer_resets_the_data_connection() {
    let mut net = Net::default();
    let (mut c, d) = huge_retr_started(&mut net);
    // The client reads nothing: the transfer stalls with its window full.
    for _ in 0..200 {
        net.step();
    }
    assert_eq!(net.store.pins(), 1);
    // RFC 959 §4.1.3: 426 for the aborted transfer, then 226.
    c.send(&mut net, "ABOR");
    assert_eq!(c.reply(&mut net), "426 Connection closed; transfer aborted.\r\n");
    assert_eq!(c.reply(&mut net), "226 Closing data connection.\r\n");
    assert!(net.server.counters.aborted >= 1, "reset");
    // The client, which reads nothing, takes the reset: it comes at the
    // edge of its closed window (net-tcp's `reset_seq`), not past the
    // window probe's byte.
    net.run_until(1000, |n| n.socket(d).state() == tcp::State::Closed);
    net.run_until(2000, |n| n.store.pins() == 0 && n.server.connections() == 1);
    assert_eq!(net.server.service.counters.aborted, 1);
    assert_eq!(net.server.service.counters.complete, 0);
    // The session goes on.
    let (_, data, last) = transfer(&mut net, &mut c, "RETR /hello.txt");
    assert_eq!((data.len(), last.as_str()), (21, "226 Transfer complete.\r\n"));
}

#[test]
fn a_client_that_resets_the_data_connection_gets_426() {
    let mut net = Net::default();
    let (mut c, d) = huge_retr_started(&mut net);
    for _ in 0..100 {
        net.step();
    }
    net.socket(d).abort();
    assert_eq!(c.reply(&mut net), "426 Connection closed; transfer aborted.\r\n");
    assert_eq!(net.server.service.counters.lost, 1);
    net.run_until(2000, |n| n.store.pins() == 0);
}

#[test]
fn a_file_the_store_cannot_give_is_451_and_a_wait_is_waited_for() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    assert!(c.command(&mut net, "TYPE I").starts_with("200 "));
    net.store.gate = Some(false);
    let port = c.pasv(&mut net);
    let d = net.connect_to(port);
    net.run_until(1000, |n| n.established(d));
    assert!(c.command(&mut net, "RETR /pub/big.bin").starts_with("125 "));
    assert_eq!(c.reply(&mut net), "451 Requested action aborted: local error in processing.\r\n");
    // Reset, not closed: the client cannot take a truncated file for a
    // whole one.
    net.run_until(1000, |n| n.socket(d).state() == tcp::State::Closed);
    let mut got = Vec::new();
    net.take(d, &mut got);
    assert!(got.is_empty());
    // A store that makes the transfer wait: nothing is sent until it
    // answers.
    net.store.gate = Some(true);
    let port = c.pasv(&mut net);
    let d = net.connect_to(port);
    net.run_until(1000, |n| n.established(d));
    assert!(c.command(&mut net, "RETR /pub/big.bin").starts_with("125 "));
    for _ in 0..100 {
        net.step();
    }
    assert_eq!(net.server.service.counters.file_waits, 1);
    net.store.gate = None;
    net.store.events += 1;
    let data = receive_all(&mut net, d);
    assert!(data == big(300_000));
    assert_eq!(c.reply(&mut net), "226 Transfer complete.\r\n");
}

#[test]
fn without_the_region_file_data_is_copied() {
    let mut store = TestStore::new(&files());
    store.in_place = false;
    let mut net = Net::new(settings(), store);
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    assert!(c.command(&mut net, "TYPE I").starts_with("200 "));
    let (_, data, last) = transfer(&mut net, &mut c, "RETR /pub/big.bin");
    assert_eq!(last, "226 Transfer complete.\r\n");
    assert!(data == big(300_000));
    assert_eq!(net.server.service.counters.bytes_in_place, 0);
}

/// A raw SYN from `src` to the server's `port`; the flags of the server's
/// answer to `src`.
fn raw_syn(net: &mut Net, src: Ipv4Address, port: u16) -> Option<TcpFlags> {
    let h = TcpHeader {
        src_port: 33333,
        dst_port: port,
        seq: 1000,
        ack: 0,
        flags: TcpFlags::SYN,
        window: 65535,
        mss: Some(1460),
        window_scale: None,
    };
    let eth = net_serve::link::ETHERNET_HEADER;
    let mut frame = vec![0u8; eth + 20 + h.len()];
    frame[0..6].copy_from_slice(&SERVER_MAC);
    frame[6..12].copy_from_slice(&CLIENT_MAC);
    frame[12..14].copy_from_slice(&[8, 0]);
    net_packet::ipv4::Ipv4Repr { src, dst: SERVER_IP, protocol: IpProtocol::TCP, payload_len: h.len() as u16, ttl: 64 }
        .emit(&mut frame[eth..])
        .unwrap();
    let seg = &mut frame[eth + 20..];
    h.emit(seg).unwrap();
    let sum = net_packet::tcp::checksum(src, SERVER_IP, seg);
    net_packet::tcp::set_checksum(seg, sum).unwrap();
    net.wire.borrow_mut().to_server.push_back(frame);
    net.server.poll(net.now, &mut net.store);
    // Take the answer off the wire before the client sees it.
    let mut wire = net.wire.borrow_mut();
    let mut answer = None;
    let mut kept = std::collections::VecDeque::new();
    while let Some(q) = wire.from_server.pop_front() {
        let ip = Ipv4Packet::parse(&q.frame[eth..]).unwrap();
        let seg = TcpSegment::parse(ip.payload()).unwrap();
        if ip.dst() == src && seg.dst_port() == 33333 {
            answer = Some(seg.flags());
            wire.in_flight &= !(1 << q.buffer);
            wire.returned |= 1 << q.buffer;
        } else {
            kept.push_back(q);
        }
    }
    wire.from_server = kept;
    answer
}

#[test]
fn a_data_connection_from_another_address_is_reset() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    let port = c.pasv(&mut net);
    // RFC 2577 §5: another host connecting to the passive port gets a
    // reset, no SYN-ACK.
    let answer = raw_syn(&mut net, OTHER_IP, port).expect("an answer");
    assert!(answer.rst() && !answer.syn(), "{answer:?}");
    // A port nobody listens on: reset too, even from the peer.
    let other_port = if port == 50_000 { 50_001 } else { 50_000 };
    assert!(raw_syn(&mut net, CLIENT_IP, other_port).unwrap().rst());
    // The peer itself gets a SYN-ACK.
    let answer = raw_syn(&mut net, CLIENT_IP, port).expect("an answer");
    assert!(answer.syn() && answer.ack(), "{answer:?}");
    // And the client's real connection is served.
    let d = net.connect_to(port);
    net.run_until(1000, |n| n.established(d));
    assert!(c.command(&mut net, "NLST").starts_with("125 "));
    let data = receive_all(&mut net, d);
    assert_eq!(String::from_utf8(data).unwrap(), "empty\r\nhello.txt\r\npub\r\n");
    assert_eq!(c.reply(&mut net), "226 Transfer complete.\r\n");
    // One connection per PASV: the listener is gone.
    assert_eq!(net.server.service.listeners(), 0);
    assert!(raw_syn(&mut net, CLIENT_IP, port).unwrap().rst());
}

#[test]
fn thousands_of_pasv_hold_one_listener() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    let mut ports = std::collections::BTreeSet::new();
    for k in 0..2000 {
        // A transfer every 20 PASV (more than 20 unused in a row end the
        // session: `MAX_UNUSED_PASSIVE`).
        if k % 20 == 19 {
            let (_, data, last) = transfer(&mut net, &mut c, "NLST /pub");
            assert_eq!(data.len(), 45);
            assert_eq!(last, "226 Transfer complete.\r\n");
            continue;
        }
        ports.insert(c.pasv(&mut net));
        assert_eq!(net.server.service.listeners(), 1, "after PASV {k}");
    }
    assert_eq!(ports.len(), 8, "round robin over the range");
    assert_eq!(net.server.service.sessions_in_use(), 1);
}

#[test]
fn two_sessions_at_once_and_a_third_too_many() {
    let mut s = settings();
    s.sessions = 2;
    let mut net = Net::new(s, TestStore::new(&files()));
    let mut a = Control::open(&mut net);
    let mut b = Control::open(&mut net);
    a.login(&mut net);
    b.login(&mut net);
    assert!(a.command(&mut net, "TYPE I").starts_with("200 "));
    let pa = a.pasv(&mut net);
    let pb = b.pasv(&mut net);
    assert_ne!(pa, pb);
    let da = net.connect_to(pa);
    let db = net.connect_to(pb);
    net.run_until(1000, |n| n.established(da) && n.established(db));
    assert!(a.command(&mut net, "RETR /pub/huge.bin").starts_with("125 "));
    assert!(b.command(&mut net, "RETR /pub/notes.txt").starts_with("125 "));
    // Both transfers run at once.
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    net.run_until(200_000, |n| {
        n.take(da, &mut got_a);
        n.take(db, &mut got_b);
        !n.socket(da).may_recv() && !n.socket(db).may_recv()
    });
    net.socket(da).close();
    net.socket(db).close();
    assert!(got_a == big(1 << 20), "{} bytes", got_a.len());
    let want_b: Vec<u8> =
        big(10_000).iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
    assert!(got_b == want_b);
    assert_eq!(a.reply(&mut net), "226 Transfer complete.\r\n");
    assert_eq!(b.reply(&mut net), "226 Transfer complete.\r\n");
    // A third control connection: 421 (RFC 959 §5.4), then closed.
    let h = net.connect_to(CONTROL_PORT);
    let mut got = Vec::new();
    net.run_until(2000, |n| {
        n.take(h, &mut got);
        !got.is_empty() && !n.socket(h).may_recv()
    });
    assert_eq!(got, b"421 Too many connections; try again later.\r\n");
    assert_eq!(net.server.service.counters.refused_busy, 1);
    // The first two are still served.
    assert!(a.command(&mut net, "NOOP").starts_with("200 "));
    assert!(b.command(&mut net, "NOOP").starts_with("200 "));
}

#[test]
fn a_long_reply_goes_out_in_pieces_and_commands_wait_for_it() {
    // A path of about 1000 bytes: MLST names it twice (over 2 KiB of
    // reply, more than the ring's two pieces of 1024).
    let component = "c".repeat(250);
    let dir = std::format!("/long/{component}/{component}/{component}");
    let path = std::format!("{dir}/{component}.txt");
    let mut all = files();
    all.push((Box::leak(path.clone().into_boxed_str()), b"x".to_vec()));
    let mut net = Net::new(settings(), TestStore::new(&all));
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    // HELP, STAT, MLST, PWD and NOOP sent at once: every reply comes
    // whole, in order.
    net.now += 100 * MS;
    let pipeline = std::format!("HELP\r\nSTAT\r\nMLST {path}\r\nCWD {dir}\r\nPWD\r\nNOOP\r\n");
    net.send(c.h, pipeline.as_bytes());
    assert!(c.reply(&mut net).starts_with("214-"));
    assert!(c.reply(&mut net).starts_with("211-"));
    let mlst = c.reply(&mut net);
    assert!(mlst.len() > 2048, "{}", mlst.len());
    assert!(mlst.starts_with(&std::format!("250-Listing {path}\r\n")), "{mlst}");
    assert!(mlst.ends_with(&std::format!("; {path}\r\n250 End\r\n")), "{mlst}");
    assert!(c.reply(&mut net).starts_with("250 "));
    assert_eq!(c.reply(&mut net), std::format!("257 \"{dir}\" is the current directory.\r\n"));
    assert!(c.reply(&mut net).starts_with("200 "));
    assert_eq!(net.server.service.counters.commands, 8);
}

#[test]
fn the_login_timeout_closes_the_session() {
    let mut net = Net::default();
    let c = Control::open(&mut net);
    let mut c = c;
    // 60 s without a login (RFC 959 lets the server close with 421).
    net.now += 61 * 1_000_000_000;
    let r = c.reply(&mut net);
    assert_eq!(r, "421 Login timeout; closing control connection.\r\n");
    let h = c.h;
    net.run_until(2000, |n| !n.socket(h).may_recv());
    net.socket(h).close();
    net.run_until(2000, |n| n.server.service.sessions_in_use() == 0);
}

#[test]
fn memory() {
    let entry = core::mem::size_of::<Entry>();
    let conn = core::mem::size_of::<FtpConn>();
    let work = work_bytes::<TestStore>();
    std::println!("session {entry} bytes, connection state {conn}, work context {work}");
    assert!(entry <= 6600, "{entry}");
    assert!(conn <= 8, "{conn}");
    let s = settings();
    let l = layout::<TestStore>(4 << 20, &s);
    let net = Net::new(s, TestStore::new(&files()));
    assert_eq!((net.server.capacity(), net.server.works()), (l.connections, l.works));
}

#[test]
fn a_passive_range_past_65535_is_cut() {
    let mut s = settings();
    s.passive_first = 65_530;
    s.passive_count = 100;
    let net = Net::new(s, TestStore::new(&files()));
    let mut net = net;
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    for _ in 0..10 {
        let port = c.pasv(&mut net);
        assert!(port >= 65_530, "{port}");
    }
}

#[test]
fn transfers_arrive_whole_over_a_lossy_reordering_link() {
    // Handshakes included: a lost last ACK is recovered by the SYN-ACK
    // sent again (`Service::speaks_first`).
    for seed in 0..6 {
        let mut net = Net::default();
        net.loss = Some((Rng(3000 + seed), 3));
        let mut c = Control::open(&mut net);
        c.login(&mut net);
        let (_, data, last) = transfer(&mut net, &mut c, "RETR /pub/notes.txt");
        let want: Vec<u8> =
            big(10_000).iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        assert!(data == want, "seed {seed}: {} bytes", data.len());
        assert_eq!(last, "226 Transfer complete.\r\n");
        assert!(c.command(&mut net, "TYPE I").starts_with("200 "));
        let (_, data, last) = transfer(&mut net, &mut c, "RETR /pub/big.bin");
        assert!(data == big(300_000), "seed {seed}: {} bytes", data.len());
        assert_eq!(last, "226 Transfer complete.\r\n");
        let (_, data, _) = transfer_connected(&mut net, &mut c, "NLST /pub");
        assert_eq!(data, b"/pub/big.bin\r\n/pub/huge.bin\r\n/pub/notes.txt\r\n");
        assert_eq!(net.client_dev.bad_frames, 0);
        net.loss = None;
        net.run_until(5000, |n| n.store.pins() == 0);
    }
}

#[test]
fn a_transfer_without_its_data_connection_is_425_after_30_s() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    let _port = c.pasv(&mut net);
    assert!(c.command(&mut net, "LIST").starts_with("150 "));
    // The client never connects: 425 (RFC 959 §4.2) after 30 s, and the
    // listener is closed.
    net.now += 31_000_000_000;
    assert_eq!(c.reply(&mut net), "425 Failed to establish data connection.\r\n");
    assert_eq!(net.server.service.listeners(), 0);
    assert!(c.command(&mut net, "NOOP").starts_with("200 "));
}

#[test]
fn quit_or_a_lost_control_connection_during_a_transfer_resets_the_data_connection() {
    for quit in [true, false] {
        let mut net = Net::default();
        let (mut c, d) = huge_retr_started(&mut net);
        for _ in 0..100 {
            net.step();
        }
        if quit {
            // QUIT during a transfer: 426 for it, then 221 (the client
            // asked to go), and the control connection closes.
            c.send(&mut net, "QUIT");
            assert_eq!(c.reply(&mut net), "426 Connection closed; transfer aborted.\r\n");
            assert_eq!(c.reply(&mut net), "221 Goodbye.\r\n");
            let h = c.h;
            net.run_until(1000, |n| !n.socket(h).may_recv());
            net.socket(h).close();
        } else {
            net.socket(c.h).abort();
        }
        // Either way the data connection is reset, its pin goes back and
        // the session is free.
        net.run_until(1000, |n| n.socket(d).state() == tcp::State::Closed);
        net.run_until(3000, |n| {
            n.store.pins() == 0 && n.server.service.sessions_in_use() == 0 && n.server.connections() == 0
        });
        assert_eq!(net.server.service.counters.aborted, 1, "quit {quit}");
        assert_eq!(net.server.service.listeners(), 0);
    }
}

/// Connects to `port`, losing the client's last ACK of the handshake.
fn connect_losing_the_last_ack(net: &mut Net, port: u16) -> SocketHandle {
    let h = net.connect_to(port);
    net.run_until(100, |n| n.established(h));
    // The client's ACK is on the wire, not yet at the server: lost.
    let lost = net.wire.borrow_mut().to_server.drain(..).count();
    assert_eq!(lost, 1);
    h
}

#[test]
fn a_lost_last_ack_of_a_handshake_is_recovered_by_the_syn_ack_sent_again() {
    let mut net = Net::default();
    // The control connection: the greeting comes all the same, once the
    // SYN-ACK sent again after 1 s has made the client ACK again.
    let h = connect_losing_the_last_ack(&mut net, CONTROL_PORT);
    let start = net.now;
    let mut c = Control { h, pending: Vec::new() };
    assert!(c.reply(&mut net).starts_with("220 "));
    assert!(net.now - start >= 1_000 * MS, "after the SYN-ACK's timeout");
    assert_eq!(net.server.counters.syn_acks_again, 1);
    c.login(&mut net);
    // A data connection, both ways round.
    let port = c.pasv(&mut net);
    let d = connect_losing_the_last_ack(&mut net, port);
    assert!(c.command(&mut net, "NLST /pub").starts_with("150 "));
    assert_eq!(receive_all(&mut net, d), b"/pub/big.bin\r\n/pub/huge.bin\r\n/pub/notes.txt\r\n");
    assert_eq!(c.reply(&mut net), "226 Transfer complete.\r\n");
    assert_eq!(net.server.counters.syn_acks_again, 2);
    // A made connection's SYN-ACK is not sent again.
    for _ in 0..5000 {
        net.step();
    }
    assert_eq!(net.server.counters.syn_acks_again, 2);
}

#[test]
fn without_the_index_a_command_gets_421_and_the_connection_closes() {
    let mut store = TestStore::new(&files());
    store.serving = false;
    let mut net = Net::new(settings(), store);
    let mut c = Control::open(&mut net);
    assert_eq!(c.command(&mut net, "USER anonymous"), "421 Service not available; closing control connection.\r\n");
    let h = c.h;
    net.run_until(1000, |n| !n.socket(h).may_recv());
    net.socket(h).close();
    net.run_until(2000, |n| n.server.service.sessions_in_use() == 0);
}

#[test]
fn abor_or_a_new_pasv_drops_an_idle_data_connection() {
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    for command in ["ABOR", "PASV"] {
        let port = c.pasv(&mut net);
        let d = net.connect_to(port);
        net.run_until(1000, |n| n.established(d));
        let r = c.command(&mut net, command);
        assert!(r.starts_with(if command == "ABOR" { "225 " } else { "227 " }), "{r}");
        // The connection of the listener closed (ABOR) or replaced (PASV)
        // is reset: one connection per PASV, for its transfer only.
        net.run_until(1000, |n| n.socket(d).state() == tcp::State::Closed);
    }
    assert_eq!(net.server.service.listeners(), 1, "the last PASV's");
    let (_, data, _) = transfer(&mut net, &mut c, "NLST /pub");
    assert_eq!(data, b"/pub/big.bin\r\n/pub/huge.bin\r\n/pub/notes.txt\r\n");
}

/// A client faster than the rate limit is slowed, not closed: a burst and
/// two seconds' worth of NOOPs sent at once all get their `200`, the
/// burst at once and the rest at the rate, so the last comes after about
/// 2 s; no `421`. (Closing broke `lftp mirror`, which sends thousands of
/// quick commands.) Fails if the server feeds commands while the session
/// is throttled.
#[test]
fn a_client_over_the_command_rate_is_slowed_not_closed() {
    use crate::session::{RATE_BURST, RATE_PER_SECOND};
    let mut net = Net::default();
    let mut c = Control::open(&mut net);
    c.login(&mut net);
    // A fresh burst.
    net.now += 5_000 * MS;
    let start = net.now;
    let count = RATE_BURST + 2 * RATE_PER_SECOND;
    let mut pipeline = std::string::String::new();
    for _ in 0..count {
        pipeline.push_str("NOOP\r\n");
    }
    net.send(c.h, pipeline.as_bytes());
    let mut burst_done = None;
    for n in 0..count {
        let mut reply = std::string::String::new();
        net.run_until(20_000, |net| {
            net.take(c.h, &mut c.pending);
            if let Some(len) = reply_len(&c.pending) {
                reply = std::string::String::from_utf8(c.pending.drain(..len).collect()).unwrap();
                return true;
            }
            false
        });
        assert!(reply.starts_with("200 "), "reply {n}: {reply}");
        if n + 1 == RATE_BURST {
            burst_done = Some(net.now - start);
        }
    }
    let took = net.now - start;
    let burst = burst_done.unwrap();
    assert!(burst < 1_000 * MS, "the burst at once: {} ms", burst / MS);
    // The rest at the rate: 2 s, less what the burst's own time refilled.
    assert!((1_500 * MS..3_000 * MS).contains(&took), "{count} commands in {} ms", took / MS);
    assert!(net.server.service.counters.throttled > 0);
    assert!(c.command(&mut net, "NOOP").starts_with("200 "), "the session goes on");
}
