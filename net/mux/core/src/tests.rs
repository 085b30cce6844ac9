//! The demultiplexer between a simulated driver and simulated clients, all
//! over host memory: the same queue code on both sides of every queue.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use lib_net_protocol::{
    rx_partial_cookie, split_tx_offset, tx_offset, TxOffload, TxWindow, CLIENT_RX_BUFFERS, CLIENT_RX_DATA_SIZE,
    CLIENT_RX_QUEUE_CAPACITY, MAX_TSO_FRAME_LEN, MAX_TX_SEGMENTS, OFFLOAD_ALL, OFFLOAD_RX_CSUM, OFFLOAD_TX_CSUM,
    RX_BUFFERS, RX_BUFFER_SIZE, RX_CSUM_VALID, RX_DATA_SIZE, RX_QUEUE_CAPACITY, RX_RESTART_OFFSET, TX_MORE,
    TX_PAYLOAD_SIZE, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_queue::{BufferDesc, QueueError, ReceiverQueues, SenderQueues};
use net_config::{Claim, ClientConfig, Ipv4Address, NetConfig, NodeAddress, MAX_CLIENTS};
use net_filter::{Filter, FilterError, FilterKind, PortRange, TxRefused};
use net_mux_api::{label, FilterId, MuxError, MuxStats, NodeInfo, Reply, Request, ERR_BAD_REQUEST, OK};
use net_packet::{EtherType, Malformed};

use crate::*;

// --- Memory ---------------------------------------------------------------

/// A data region standing in for memory mapped by two PDs.
#[derive(Clone)]
struct Region(Rc<RefCell<Vec<u8>>>);

impl Region {
    fn new(len: usize) -> Self {
        Region(Rc::new(RefCell::new(vec![0; len])))
    }

    fn bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        self.0.borrow()[offset..offset + len].to_vec()
    }

    fn put(&self, offset: usize, bytes: &[u8]) {
        self.0.borrow_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

impl SharedMemory for Region {
    fn len(&self) -> usize {
        self.0.borrow().len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        let mem = self.0.borrow();
        match offset.checked_add(dst.len()).and_then(|end| mem.get(offset..end)) {
            Some(src) => {
                dst.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn view<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let mem = self.0.borrow();
        offset.checked_add(len).and_then(|end| mem.get(offset..end)).map(f)
    }

    fn write(&self, offset: usize, src: &[u8]) -> bool {
        let mut mem = self.0.borrow_mut();
        match offset.checked_add(src.len()).and_then(|end| mem.get_mut(offset..end)) {
            Some(dst) => {
                dst.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// A queue region: zeroed, page-aligned, large enough for either queue
/// capacity, and leaked so that both sides' handles may be `'static`.
fn queue_region() -> *mut u8 {
    #[repr(C, align(4096))]
    struct Page([u8; 0x8000]);
    const _: () = assert!(lib_queue::region_size(TX_QUEUE_CAPACITY) <= 0x8000);
    const _: () = assert!(lib_queue::region_size(CLIENT_RX_QUEUE_CAPACITY) <= 0x8000);
    Box::leak(Box::new(Page([0; 0x8000]))).0.as_mut_ptr()
}

/// The offsets of a queue region's header (`shared-queue` layout).
const TAIL: usize = 0;

// --- Frames ---------------------------------------------------------------

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const PEER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const US: [u8; 4] = [10, 0, 2, 15];
const PEER: [u8; 4] = [10, 0, 2, 2];
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|p| u32::from(p[0]) << 8 | u32::from(*p.get(1).unwrap_or(&0))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src, &ethertype.to_be_bytes(), payload].concat()
}

fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut header = vec![0x45, 0];
    header.extend_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    header.extend_from_slice(&src);
    header.extend_from_slice(&dst);
    let sum = checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    [header, payload.to_vec()].concat()
}

fn tcp(src_port: u16, dst_port: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut segment = Vec::new();
    segment.extend_from_slice(&src_port.to_be_bytes());
    segment.extend_from_slice(&dst_port.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0x20, 0, 0, 0, 0, 0]);
    segment.extend_from_slice(data);
    segment
}

fn udp(src_port: u16, dst_port: u16, data: &[u8]) -> Vec<u8> {
    let len = (8 + data.len()) as u16;
    [&src_port.to_be_bytes()[..], &dst_port.to_be_bytes(), &len.to_be_bytes(), &[0, 0], data].concat()
}

fn icmp_echo() -> Vec<u8> {
    let mut message = vec![8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'];
    let sum = checksum(&message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

fn arp(operation: u16, sender_mac: [u8; 6], sender_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    let arp =
        [&[0, 1, 8, 0, 6, 4][..], &operation.to_be_bytes(), &sender_mac, &sender_ip, &[0; 6], &target_ip].concat();
    let dst = if operation == 1 { [0xff; 6] } else { PEER_MAC };
    ethernet(dst, sender_mac, 0x0806, &arp)
}

/// From the peer to us.
fn inbound(protocol: u8, transport: &[u8]) -> Vec<u8> {
    ethernet(MAC, PEER_MAC, 0x0800, &ipv4(PEER, US, protocol, transport))
}

/// From us to the peer.
fn outbound(protocol: u8, transport: &[u8]) -> Vec<u8> {
    ethernet(PEER_MAC, MAC, 0x0800, &ipv4(US, PEER, protocol, transport))
}

// --- The simulated driver and clients -------------------------------------

/// The driver's side of the driver's queues.
struct SimDriver {
    rx: SenderQueues<'static, RX_QUEUE_CAPACITY>,
    tx: ReceiverQueues<'static, TX_QUEUE_CAPACITY>,
    rx_data: Region,
    tx_payload: Region,
    /// The `send_from` region (web's), which the device reads in place.
    files: Region,
}

/// A frame the demultiplexer gave the driver.
#[derive(Clone, Debug)]
struct Sent {
    /// Its descriptors, as they came.
    descs: Vec<BufferDesc>,
    /// Its bytes, as the device reads them.
    bytes: Vec<u8>,
    /// What its offload descriptor (first, if any) asks.
    offload: Option<TxOffload>,
}

impl Sent {
    /// The `tx_payload` slot its cookies name.
    fn slot(&self) -> usize {
        (self.descs[0].cookie & !TX_MORE) as usize
    }
}

impl SimDriver {
    /// Puts a received frame in a buffer the demultiplexer lent; `false`
    /// if it lent none.
    fn receive(&mut self, frame: &[u8]) -> bool {
        self.receive_with(frame, 0)
    }

    /// [`receive`](Self::receive) with `cookie`, the checksum state.
    fn receive_with(&mut self, frame: &[u8], cookie: u32) -> bool {
        let Ok(Some(buffer)) = self.rx.free.dequeue() else { return false };
        assert_eq!(buffer.offset % RX_BUFFER_SIZE as u64, 0);
        self.rx_data.put(buffer.offset as usize, frame);
        self.rx.active.enqueue(BufferDesc { offset: buffer.offset, len: frame.len() as u32, cookie }).unwrap();
        true
    }

    /// Buffers lent and not yet used.
    fn lent(&self) -> usize {
        self.rx.free.len().unwrap()
    }

    /// The frames the demultiplexer gave to send, without giving their
    /// descriptors back. Each is published whole, every descriptor with
    /// its slot as cookie and TX_MORE on all but the last.
    fn take_sent(&mut self) -> Vec<Sent> {
        let mut sent = Vec::new();
        let mut frame = Sent { descs: Vec::new(), bytes: Vec::new(), offload: None };
        while let Some(desc) = self.tx.active.dequeue().unwrap() {
            let (window, offset) = split_tx_offset(desc.offset).unwrap();
            let region = match window {
                TxWindow::Payload => Some(&self.tx_payload),
                TxWindow::Files => Some(&self.files),
                TxWindow::Offload => {
                    assert!(frame.descs.is_empty(), "the offload descriptor comes first");
                    frame.offload = Some(TxOffload::from_desc(&desc).expect("a well-formed offload descriptor"));
                    None
                }
                other => panic!("the demultiplexer sends from tx_payload and send_from only, not {other:?}"),
            };
            if let Some(region) = region {
                frame.bytes.extend(region.bytes(offset as usize, desc.len as usize));
            }
            frame.descs.push(desc);
            assert_eq!(desc.cookie & !TX_MORE, frame.descs[0].cookie & !TX_MORE, "one slot per frame");
            if desc.cookie & TX_MORE == 0 {
                sent.push(core::mem::replace(&mut frame, Sent { descs: Vec::new(), bytes: Vec::new(), offload: None }));
            }
        }
        assert!(frame.descs.is_empty(), "a frame published in part: {frame:?}");
        sent
    }

    /// Gives a frame's descriptors back, as sent.
    fn give_back(&mut self, sent: &Sent) {
        assert_eq!(self.tx.free.enqueue_batch(&sent.descs), Ok(sent.descs.len()));
    }

    /// The frames sent, their descriptors given back.
    fn sent(&mut self) -> Vec<Vec<u8>> {
        let sent = self.take_sent();
        for frame in &sent {
            self.give_back(frame);
        }
        sent.into_iter().map(|frame| frame.bytes).collect()
    }
}

/// A client's side of its queues.
struct SimClient {
    rx: ReceiverQueues<'static, CLIENT_RX_QUEUE_CAPACITY>,
    tx: SenderQueues<'static, TX_QUEUE_CAPACITY>,
    rx_data: Region,
    tx_data: Region,
    tx_active_region: *mut u8,
    /// rx_free, rx_active, tx_free, tx_active.
    queue_regions: [*mut u8; 4],
}

impl SimClient {
    /// New handles over the same regions, as a restarted client makes
    /// them (reading the indices the regions hold).
    fn reopen(&mut self) {
        let [rx_free, rx_active, tx_free, tx_active] = self.queue_regions;
        // SAFETY: as in `client_pair`; the old handles are replaced, so
        // each region still has one handle on this side.
        unsafe {
            self.rx = ReceiverQueues::new(rx_free, rx_active, CLIENT_RX_DATA_SIZE);
            self.tx = SenderQueues::new(tx_free, tx_active, TX_SPACE_LEN);
        }
    }

    /// Lends receive buffers `first..first + count`.
    fn lend(&mut self, first: usize, count: usize) {
        for i in first..first + count {
            let desc = BufferDesc { offset: (i * RX_BUFFER_SIZE) as u64, len: RX_BUFFER_SIZE as u32, cookie: i as u32 };
            self.rx.free.enqueue(desc).unwrap();
        }
    }

    /// The frames received (their buffers kept).
    fn received(&mut self) -> Vec<Vec<u8>> {
        self.received_with_cookies().into_iter().map(|(frame, _)| frame).collect()
    }

    /// The frames received with their cookies (their checksum state).
    fn received_with_cookies(&mut self) -> Vec<(Vec<u8>, u32)> {
        let mut frames = Vec::new();
        while let Some(desc) = self.rx.active.dequeue().unwrap() {
            assert_eq!(desc.offset % RX_BUFFER_SIZE as u64, 0);
            assert!(desc.cookie == 0 || desc.cookie == RX_CSUM_VALID, "the cookie is the checksum state");
            frames.push((self.rx_data.bytes(desc.offset as usize, desc.len as usize), desc.cookie));
        }
        frames
    }

    /// Queues a frame of the given segments, chained with TX_MORE.
    fn send_descs(&mut self, descs: &[BufferDesc]) {
        let n = descs.len();
        let chained: Vec<BufferDesc> = descs
            .iter()
            .enumerate()
            .map(|(i, d)| BufferDesc { cookie: d.cookie | if i + 1 < n { TX_MORE } else { 0 }, ..*d })
            .collect();
        assert_eq!(self.tx.active.enqueue_batch(&chained), Ok(n));
    }

    /// Writes `frame` at `offset` of tx_data and queues it as one segment.
    fn send(&mut self, offset: usize, frame: &[u8]) {
        self.tx_data.put(offset, frame);
        self.send_descs(&[header_desc(offset, frame.len(), offset as u32)]);
    }

    /// Descriptors given back on tx_free.
    fn returned(&mut self) -> Vec<BufferDesc> {
        let mut descs = Vec::new();
        loop {
            match self.tx.free.dequeue() {
                Ok(Some(desc)) => descs.push(desc),
                Ok(None) => return descs,
                // A bad descriptor comes back as it was sent.
                Err(QueueError::OutOfBounds(desc)) => descs.push(desc),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

fn header_desc(offset: usize, len: usize, cookie: u32) -> BufferDesc {
    BufferDesc { offset: tx_offset(TxWindow::Headers, offset as u32), len: len as u32, cookie }
}

fn rx_desc(offset: usize, len: usize, cookie: u32) -> BufferDesc {
    BufferDesc { offset: tx_offset(TxWindow::Rx, offset as u32), len: len as u32, cookie }
}

fn files_desc(offset: u32, len: usize, cookie: u32) -> BufferDesc {
    BufferDesc { offset: tx_offset(TxWindow::Files, offset), len: len as u32, cookie }
}

/// Bytes of web's `send_from` region.
const FILES_SIZE: u64 = 0x10000;

fn filter(text: &str) -> Filter {
    Filter::parse(text).unwrap()
}

/// arpd (0) claims ARP; stray (1) takes unclaimed IPv4; web (2) claims TCP
/// 80 and may claim 8080–8089; watch (3) watches ICMP.
fn config() -> NetConfig {
    let mut arpd = ClientConfig::new("arpd");
    arpd.add_grant(filter("arp"));
    arpd.add_claim(Claim { filter: filter("arp"), kind: FilterKind::Exclusive });
    arpd.arp = true;
    let mut stray = ClientConfig::new("stray");
    stray.unclaimed_ipv4 = true;
    stray.answers = net_config::AnswerPolicy::UNCLAIMED_IPV4;
    let mut web = ClientConfig::new("web");
    web.add_grant(filter("tcp dst 80"));
    web.add_grant(filter("tcp dst 8080-8089"));
    web.add_claim(Claim { filter: filter("tcp dst 80"), kind: FilterKind::Exclusive });
    web.send_from_size = FILES_SIZE;
    let mut watch = ClientConfig::new("watch");
    watch.may_copy = true;
    watch.add_grant(filter("icmp"));
    watch.add_grant(filter("tcp"));
    watch.add_claim(Claim { filter: filter("icmp"), kind: FilterKind::Copy });
    let mut clients = [ClientConfig::new(""); MAX_CLIENTS];
    clients[..4].copy_from_slice(&[arpd, stray, web, watch]);
    NetConfig {
        node: NodeAddress { ipv4: Ipv4Address(US), prefix_len: 24, gateway: Some(Ipv4Address(PEER)) },
        me: None,
        arpd: Some(0),
        clients,
        client_count: 4,
    }
}

const ARPD: usize = 0;
const STRAY: usize = 1;
const WEB: usize = 2;
const WATCH: usize = 3;

/// The demultiplexer, the simulated driver and clients, and the log.
struct Node {
    mux: Mux<'static, Region>,
    driver: SimDriver,
    clients: Vec<SimClient>,
    log: Vec<String>,
}

fn driver_pair() -> (DriverPort<'static, Region>, SimDriver) {
    let (rx_free, rx_active, tx_free, tx_active) = (queue_region(), queue_region(), queue_region(), queue_region());
    let (rx_data, tx_payload) = (Region::new(RX_DATA_SIZE), Region::new(TX_PAYLOAD_SIZE));
    let files = Region::new(FILES_SIZE as usize);
    // SAFETY: each queue region is fresh, page-aligned, large enough and
    // leaked; each gets one producer and one consumer handle.
    unsafe {
        (
            DriverPort {
                rx: ReceiverQueues::new(rx_free, rx_active, RX_DATA_SIZE),
                tx: SenderQueues::new(tx_free, tx_active, TX_SPACE_LEN),
                rx_data: rx_data.clone(),
                tx_payload: tx_payload.clone(),
            },
            SimDriver {
                rx: SenderQueues::new(rx_free, rx_active, RX_DATA_SIZE),
                tx: ReceiverQueues::new(tx_free, tx_active, TX_SPACE_LEN),
                rx_data,
                tx_payload,
                files,
            },
        )
    }
}

fn client_pair() -> (ClientPort<'static, Region>, SimClient) {
    let (rx_free, rx_active, tx_free, tx_active) = (queue_region(), queue_region(), queue_region(), queue_region());
    let (rx_data, tx_data) = (Region::new(CLIENT_RX_DATA_SIZE), Region::new(net_config::TX_DATA_SIZE as usize));
    // SAFETY: as in `driver_pair`.
    unsafe {
        (
            ClientPort {
                rx: SenderQueues::new(rx_free, rx_active, CLIENT_RX_DATA_SIZE),
                tx: ReceiverQueues::new(tx_free, tx_active, TX_SPACE_LEN),
                rx_data: rx_data.clone(),
                tx_data: tx_data.clone(),
            },
            SimClient {
                rx: ReceiverQueues::new(rx_free, rx_active, CLIENT_RX_DATA_SIZE),
                tx: SenderQueues::new(tx_free, tx_active, TX_SPACE_LEN),
                rx_data,
                tx_data,
                tx_active_region: tx_active,
                queue_regions: [rx_free, rx_active, tx_free, tx_active],
            },
        )
    }
}

impl Node {
    /// The node of [`config`]; every client lends 16 buffers.
    fn new() -> Node {
        Node::with(&config())
    }

    fn with(config: &NetConfig) -> Node {
        let (driver_port, driver) = driver_pair();
        let (ports, clients): (Vec<_>, Vec<_>) = (0..config.clients().len()).map(|_| client_pair()).unzip();
        let mut log = Vec::new();
        let mux = Mux::new(config, MAC, driver_port, ports, &mut |args| log.push(args.to_string()))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut node = Node { mux, driver, clients, log };
        for client in &mut node.clients {
            client.lend(0, 16);
        }
        node.handle();
        node
    }

    fn handle(&mut self) -> Notify {
        self.mux.handle()
    }

    /// Receives `frames` from the wire, and handles them.
    fn wire(&mut self, frames: &[&[u8]]) -> Notify {
        for frame in frames {
            assert!(self.driver.receive(frame));
        }
        self.handle()
    }

    fn call(&mut self, client: usize, request: Request) -> Result<Reply, MuxError> {
        let log = &mut self.log;
        self.mux.call(client, &request, &mut |a| log.push(a.to_string()))
    }

    /// The call as the PD gets it: a label and registers.
    fn answer(&mut self, client: usize, label: u64, words: &[u64]) -> net_mux_api::ReplyMessage {
        let log = &mut self.log;
        self.mux.answer(client, label, words, &mut |a| log.push(a.to_string()))
    }

    fn stats(&mut self, client: usize) -> MuxStats {
        match self.call(client, Request::Stats) {
            Ok(Reply::Stats(stats)) => stats,
            other => panic!("stats: {other:?}"),
        }
    }

    fn remove(&mut self, client: usize, id: FilterId) -> Result<Reply, MuxError> {
        self.call(client, Request::Remove(id))
    }

    fn counters(&self, client: usize) -> ClientCounters {
        self.mux.client_counters(client).unwrap()
    }

    fn install(&mut self, client: usize, text: &str, kind: FilterKind) -> Result<FilterId, MuxError> {
        match self.call(client, Request::Install { filter: filter(text), kind })? {
            Reply::Installed(id) => Ok(id),
            other => panic!("install: {other:?}"),
        }
    }

    /// Handles and lets the driver send and give back everything, until
    /// nothing more comes; the frames sent.
    fn drive(&mut self) -> usize {
        let mut sent = 0;
        loop {
            self.handle();
            let n = self.driver.sent().len();
            if n == 0 {
                return sent;
            }
            sent += n;
        }
    }

    fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }
}

// --- Start ------------------------------------------------------------------

#[test]
fn start_installs_boot_claims_and_logs_the_clients() {
    let node = Node::new();
    for line in [
        "client 0 arpd: arp",
        "client 1 stray: unclaimed ipv4",
        "client 2 web: tcp dst 80",
        "client 3 watch: icmp (copy)",
    ] {
        assert!(node.logged(line), "{line:?} not in {:#?}", node.log);
    }
    assert!(node.logged("node 10.0.2.15/24 gateway 10.0.2.2 mac 52:54:00:12:34:56, 4 clients"), "{:#?}", node.log);
    assert_eq!(node.mux.table().filters().count(), 3);
    // Every driver buffer is lent, none used yet.
    assert_eq!(node.driver.lent(), RX_BUFFERS);
}

#[test]
fn refused_boot_claims_are_logged_and_counted() {
    let mut config = config();
    // web claims what it was not granted, and what arpd holds.
    config.clients[WEB].add_claim(Claim { filter: filter("udp dst 53"), kind: FilterKind::Exclusive });
    config.clients[WEB].add_grant(filter("arp"));
    config.clients[WEB].add_claim(Claim { filter: filter("arp"), kind: FilterKind::Exclusive });
    let node = Node::with(&config);
    assert_eq!(node.counters(WEB).claims_refused, 2);
    assert!(
        node.logged("refused web's claim `udp dst 53` (exclusive): outside its grant (error 2)"),
        "{:#?}",
        node.log
    );
    assert!(node.logged("refused web's claim `arp` (exclusive): overlaps arpd's `arp`"), "{:#?}", node.log);
}

#[test]
fn setup_errors() {
    let (driver, _sim) = driver_pair();
    let client_config = NetConfig { me: Some(0), ..config() };
    let refused = Mux::new(&client_config, MAC, driver, Vec::new(), &mut |_| {});
    assert_eq!(refused.err(), Some(SetupError::NotDemultiplexer));
    let (driver, _sim) = driver_pair();
    let (ports, _sims): (Vec<_>, Vec<_>) = (0..3).map(|_| client_pair()).unzip();
    let refused = Mux::new(&config(), MAC, driver, ports, &mut |_| {});
    assert_eq!(refused.err(), Some(SetupError::MissingClientPort(3)));
    let (mut driver, _sim) = driver_pair();
    driver.tx_payload = Region::new(TX_PAYLOAD_SIZE - 1);
    let refused = Mux::new(&config(), MAC, driver, Vec::new(), &mut |_| {});
    assert_eq!(refused.err(), Some(SetupError::RegionTooSmall { region: "tx_payload", client: None }));
}

// --- Receive ----------------------------------------------------------------

#[test]
fn frames_go_to_their_owner_only() {
    let mut node = Node::new();
    let request = arp(1, PEER_MAC, PEER, US);
    let http = inbound(6, &tcp(40000, 80, SYN, b""));
    let dns = inbound(17, &udp(5353, 53, b"query"));
    node.wire(&[&request, &http, &dns]);
    assert_eq!(node.clients[ARPD].received(), [request]);
    assert_eq!(node.clients[WEB].received(), [http]);
    // UDP 53 is nobody's: the stray-packet daemon's.
    assert_eq!(node.clients[STRAY].received(), [dns]);
    assert!(node.clients[WATCH].received().is_empty());
    // Every driver buffer came back at once.
    assert_eq!(node.driver.lent(), RX_BUFFERS);
    assert_eq!(node.counters(WEB).rx_delivered, 1);
    assert_eq!(node.mux.driver_counters().rx_frames, 3);
    assert_eq!(node.mux.table().counters().unclaimed_ipv4, 1);
    // Frames with no receiver at all: not IPv4, not claimed.
    let other = ethernet(MAC, PEER_MAC, 0x88b5, b"experimental");
    node.wire(&[&other]);
    assert!(node.clients.iter_mut().all(|c| c.received().is_empty()));
    assert_eq!(node.mux.table().counters().no_match, 1);
}

#[test]
fn copy_filters_see_copies_and_the_owner_still_gets_the_frame() {
    let mut node = Node::new();
    let ping = inbound(1, &icmp_echo());
    node.wire(&[&ping]);
    assert_eq!(node.clients[STRAY].received(), [ping.as_slice()]);
    assert_eq!(node.clients[WATCH].received(), [ping]);
    // watch may also watch TCP (its grant), web keeps its traffic.
    assert!(node.install(WATCH, "tcp", FilterKind::Copy).is_ok());
    let http = inbound(6, &tcp(40000, 80, SYN, b""));
    node.wire(&[&http]);
    assert_eq!(node.clients[WEB].received(), [http.as_slice()]);
    assert_eq!(node.clients[WATCH].received(), [http]);
    assert_eq!(node.counters(WATCH).rx_delivered, 2);
}

#[test]
fn a_client_without_buffers_loses_its_frames_and_nobody_else_does() {
    let mut node = Node::new();
    let frames: Vec<Vec<u8>> = (0..20u8).map(|i| inbound(6, &tcp(40000, 80, ACK, &[i; 10]))).collect();
    let arp_request = arp(1, PEER_MAC, PEER, US);
    let mut all: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    all.push(&arp_request);
    node.wire(&all);
    // web lent 16 buffers.
    assert_eq!(node.clients[WEB].received(), frames[..16]);
    assert_eq!(node.counters(WEB).rx_no_buffer, 4);
    assert_eq!(node.counters(WEB).rx_delivered, 16);
    assert_eq!(node.clients[ARPD].received(), [arp_request]);
    assert_eq!(node.counters(ARPD).rx_no_buffer, 0);
    assert_eq!(node.driver.lent(), RX_BUFFERS);
    // Buffers lent again are used again.
    node.clients[WEB].lend(0, 1);
    node.wire(&[&frames[0]]);
    assert_eq!(node.clients[WEB].received(), [frames[0].clone()]);
    let stats = node.stats(WEB);
    assert_eq!((stats.rx_delivered, stats.rx_no_buffer), (17, 4));
}

#[test]
fn a_client_queue_holds_every_buffer_it_lends_more_than_the_driver_has() {
    // A server that lends all its buffers and does not run while frames
    // arrive (it runs below the demultiplexer) gets CLIENT_RX_BUFFERS of
    // them, four times what the driver's ring holds, before any is lost.
    let mut node = Node::new();
    node.clients[WEB].lend(16, CLIENT_RX_BUFFERS - 16);
    let frame = inbound(6, &tcp(40000, 80, ACK, b"x"));
    for _ in 0..CLIENT_RX_BUFFERS / RX_BUFFERS + 1 {
        node.wire(&vec![frame.as_slice(); RX_BUFFERS]);
    }
    assert_eq!(node.counters(WEB).rx_delivered, CLIENT_RX_BUFFERS as u64);
    assert_eq!(node.counters(WEB).rx_no_buffer, RX_BUFFERS as u64);
    assert_eq!(node.counters(WEB).queue_errors, 0);
    assert_eq!(node.clients[WEB].received().len(), CLIENT_RX_BUFFERS);
}

#[test]
fn lent_descriptors_that_are_not_buffers_are_skipped() {
    let mut node = Node::new();
    let web = &mut node.clients[WEB];
    web.received();
    // Drain the 16 good buffers, then lend a misaligned one and a good one.
    let mut drained = 0;
    while web.rx.free.len().unwrap() > 0 {
        let frame = inbound(6, &tcp(40000, 80, ACK, b""));
        node.driver.receive(&frame);
        node.mux.handle();
        drained += 1;
        assert!(drained <= 16);
    }
    let web = &mut node.clients[WEB];
    web.received();
    web.rx.free.enqueue(BufferDesc { offset: 100, len: 10, cookie: 0 }).unwrap();
    web.lend(5, 1);
    let frame = inbound(6, &tcp(40000, 80, ACK, b"x"));
    node.wire(&[&frame]);
    assert_eq!(node.clients[WEB].received(), [frame]);
    assert_eq!(node.counters(WEB).queue_errors, 1);
}

#[test]
fn malformed_frames_are_dropped_and_counted_by_reason() {
    let mut node = Node::new();
    let good = inbound(6, &tcp(40000, 80, SYN, b""));
    let truncated = good[..30].to_vec();
    let mut bad_checksum = good.clone();
    bad_checksum[14 + 10] ^= 0xff;
    let mut fragment = good.clone();
    fragment[14 + 6] = 0x20; // More Fragments
    fragment[14 + 10..14 + 12].fill(0);
    let sum = checksum(&fragment[14..34]);
    fragment[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
    node.wire(&[&truncated, &bad_checksum, &fragment]);
    assert!(node.clients.iter_mut().all(|c| c.received().is_empty()));
    let malformed = node.mux.table().counters().malformed;
    assert_eq!(malformed[Malformed::Truncated.index()], 1);
    assert_eq!(malformed[Malformed::BadIpChecksum.index()], 1);
    assert_eq!(malformed[Malformed::Fragment.index()], 1);
    assert_eq!(node.driver.lent(), RX_BUFFERS);
    let stats = node.stats(STRAY);
    assert_eq!(stats.malformed, 3);
    assert!(node.logged("malformed 3: truncated 1, bad-ip-checksum 1, fragment 1"), "{:#?}", node.log);
}

#[test]
fn bad_driver_descriptors_are_counted_and_skipped() {
    let mut node = Node::new();
    let sim = &mut node.driver;
    let buffer = sim.rx.free.dequeue().unwrap().unwrap();
    // Too short, then misaligned, then a good frame.
    sim.rx.active.enqueue(BufferDesc { offset: buffer.offset, len: 5, cookie: 0 }).unwrap();
    sim.rx.active.enqueue(BufferDesc { offset: 7, len: 60, cookie: 0 }).unwrap();
    let frame = arp(1, PEER_MAC, PEER, US);
    assert!(sim.receive(&frame));
    node.handle();
    assert_eq!(node.clients[ARPD].received(), [frame]);
    assert_eq!(node.mux.driver_counters().errors, 2);
    // The short frame's buffer came back; the misaligned one named none.
    assert_eq!(node.driver.lent(), RX_BUFFERS);
}

// --- Transmit ---------------------------------------------------------------

#[test]
fn allowed_frames_reach_the_driver_as_copies_and_descriptors_come_back_at_once() {
    let mut node = Node::new();
    let reply = outbound(6, &tcp(80, 40000, SYN | ACK, b"hello"));
    let web = &mut node.clients[WEB];
    // Header from tx_data, the rest from a received buffer (window Rx):
    // the client's rx_data is the demultiplexer's to write, but a client
    // may send from it in place.
    web.tx_data.put(64, &reply[..20]);
    web.rx_data.put(3 * RX_BUFFER_SIZE, &reply[20..]);
    let descs = [
        header_desc(64, 20, 7),
        BufferDesc {
            offset: tx_offset(TxWindow::Rx, (3 * RX_BUFFER_SIZE) as u32),
            len: (reply.len() - 20) as u32,
            cookie: 8,
        },
    ];
    web.send_descs(&descs);
    // Both wait for what the demultiplexer produces.
    assert_eq!(web.tx.free.request_signal_if_empty(), Ok(true));
    assert_eq!(node.driver.tx.active.request_signal_if_empty(), Ok(true));
    let notify = node.handle();
    assert!(notify.client(WEB) && notify.driver);
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes, reply);
    // One piece: the copied segments are consecutive in the slot.
    assert_eq!(sent[0].descs.len(), 1);
    // Returned unchanged (TX_MORE included) as soon as they were copied.
    let returned = node.clients[WEB].returned();
    assert_eq!(returned, [BufferDesc { cookie: 7 | TX_MORE, ..descs[0] }, descs[1]]);
    // The client rewriting its memory now changes nothing sent.
    node.clients[WEB].tx_data.put(64, &[0xee; 20]);
    assert_eq!(
        node.driver.tx_payload.bytes(split_tx_offset(sent[0].descs[0].offset).unwrap().1 as usize, reply.len()),
        reply
    );
    assert_eq!(node.counters(WEB).tx_allowed, 1);
    // The slot is free once the driver gives the descriptor back.
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS - 1);
    node.driver.give_back(&sent[0]);
    node.handle();
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS);
}

#[test]
fn forged_or_unowned_frames_are_refused_and_counted_by_reason() {
    let mut node = Node::new();
    let good = outbound(6, &tcp(80, 40000, ACK, b"data"));
    let mut forged_mac = good.clone();
    forged_mac[6..12].copy_from_slice(&PEER_MAC);
    let forged_ip = ethernet(PEER_MAC, MAC, 0x0800, &ipv4([10, 0, 2, 99], PEER, 6, &tcp(80, 40000, ACK, b"")));
    let other_port = outbound(6, &tcp(81, 40000, ACK, b""));
    let udp_frame = outbound(17, &udp(80, 40000, b""));
    let truncated_ip = good[..30].to_vec();
    let web = &mut node.clients[WEB];
    for (i, frame) in [&good, &forged_mac, &forged_ip, &other_port, &udp_frame, &truncated_ip].into_iter().enumerate() {
        web.send(i * 2048, frame);
    }
    node.handle();
    assert_eq!(node.driver.sent(), [good]);
    let c = node.counters(WEB);
    assert_eq!(c.tx_allowed, 1);
    let refused = |r: TxRefused| c.tx_refused[TxDrop::Refused(r).index()];
    assert_eq!(refused(TxRefused::ForgedSourceMac), 1);
    assert_eq!(refused(TxRefused::ForgedSourceIp), 1);
    assert_eq!(refused(TxRefused::EndpointNotOwned), 1);
    assert_eq!(refused(TxRefused::ProtocolNotOwned), 1);
    assert_eq!(refused(TxRefused::Malformed(Malformed::Truncated)), 1);
    assert_eq!(c.tx_refused_total(), 5);
    // Every descriptor came back, refused or not.
    assert_eq!(node.clients[WEB].returned().len(), 6);
    let stats = node.stats(WEB);
    assert_eq!((stats.tx_allowed, stats.tx_refused), (1, 5));
    assert!(
        node.logged("web: rx delivered 0 no buffer 0; tx allowed 1 refused 5 (malformed 1, forged-source-mac 1, forged-source-ip 1, protocol-not-owned 1, endpoint-not-owned 1)"),
        "{:#?}",
        node.log
    );
}

#[test]
fn bad_descriptors_are_refused_never_trusted() {
    let mut node = Node::new();
    let good = outbound(6, &tcp(80, 40000, ACK, b"data"));
    let tx_data_size = net_config::TX_DATA_SIZE as usize;
    let web = &mut node.clients[WEB];
    web.tx_data.put(0, &good);
    let len = good.len();
    let cases: Vec<(Vec<BufferDesc>, TxDrop)> = vec![
        // Past the end of tx_data (but inside its 4 GiB window).
        (vec![header_desc(tx_data_size - 10, len, 0)], TxDrop::BadDescriptor),
        // Outside the transmit address space: the queue refuses it.
        (vec![BufferDesc { offset: TX_SPACE_LEN as u64, len: 20, cookie: 0 }], TxDrop::BadDescriptor),
        (vec![header_desc(0, 0, 0), header_desc(0, len, 0)], TxDrop::BadDescriptor),
        (vec![header_desc(0, 10, 0)], TxDrop::BadLength),
        (vec![header_desc(0, 1000, 0), header_desc(0, 1000, 0)], TxDrop::BadLength),
        (
            vec![BufferDesc { offset: tx_offset(TxWindow::Payload, 0), len: len as u32, cookie: 0 }],
            TxDrop::PayloadWindow,
        ),
        ((0..=MAX_TX_SEGMENTS).map(|i| header_desc(i * 4, 4, 0)).collect(), TxDrop::TooManySegments),
    ];
    let mut descs = 0;
    for (frame, _) in &cases {
        web.send_descs(frame);
        descs += frame.len();
    }
    // A good frame after them all still goes out.
    web.send(0, &good);
    node.handle();
    assert_eq!(node.driver.sent(), [good]);
    let c = node.counters(WEB);
    for (_, reason) in &cases {
        let expected = cases.iter().filter(|(_, r)| r == reason).count() as u64;
        assert_eq!(c.tx_refused[reason.index()], expected, "{reason:?}");
    }
    assert_eq!(c.tx_refused_total(), cases.len() as u64);
    assert_eq!(node.clients[WEB].returned().len(), descs + 1);
}

#[test]
fn a_frame_split_over_wake_ups_is_assembled() {
    let mut node = Node::new();
    let reply = outbound(6, &tcp(80, 40000, ACK, b"split"));
    let web = &mut node.clients[WEB];
    web.tx_data.put(0, &reply);
    web.tx.active.enqueue(header_desc(0, 30, TX_MORE)).unwrap();
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    node.clients[WEB].tx.active.enqueue(header_desc(30, reply.len() - 30, 0)).unwrap();
    node.handle();
    assert_eq!(node.driver.sent(), [reply]);
    assert_eq!(node.clients[WEB].returned().len(), 2);
}

fn icmp_echo_seq(seq: u16) -> Vec<u8> {
    let mut message = icmp_echo();
    message[6..8].copy_from_slice(&seq.to_be_bytes());
    message[2..4].fill(0);
    let sum = checksum(&message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

/// A TCP header with sequence and acknowledgment numbers.
fn tcp_seq(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let mut segment = tcp(src_port, dst_port, flags, b"");
    segment[4..8].copy_from_slice(&seq.to_be_bytes());
    segment[8..12].copy_from_slice(&ack.to_be_bytes());
    segment
}

fn local() -> net_packet::reply::Local {
    net_packet::reply::Local { mac: net_packet::EthernetAddress(MAC), ip: net_packet::Ipv4Address(US) }
}

/// One of `net_packet::reply`'s answer builders.
type Builder = fn(&[u8], net_packet::reply::Local, &mut [u8]) -> Result<usize, net_packet::reply::ReplyError>;

/// The stray daemon's answer to `frame`, as `build` writes it.
fn answer(frame: &[u8], build: Builder) -> Vec<u8> {
    let mut out = [0; 1514];
    let len = build(frame, local(), &mut out).unwrap();
    out[..len].to_vec()
}

fn refused_for(node: &Node, client: usize, reason: TxDrop) -> u64 {
    node.counters(client).tx_refused[reason.index()]
}

#[test]
fn the_stray_daemon_answers_unclaimed_traffic_only() {
    let mut node = Node::new();
    let reset_for_web = outbound(6, &tcp_seq(80, 40000, 0, 1, RST | ACK));
    let data_unowned = outbound(6, &tcp(9999, 40000, ACK, b"data"));
    let stray = &mut node.clients[STRAY];
    for (i, frame) in [&reset_for_web, &data_unowned].into_iter().enumerate() {
        stray.send(i * 2048, frame);
    }
    node.handle();
    assert!(node.driver.sent().is_empty());
    let c = node.counters(STRAY);
    // A reset from web's port; data, which is no answer to stray traffic.
    assert_eq!(c.tx_refused[TxDrop::Refused(TxRefused::EndpointNotOwned).index()], 1);
    assert_eq!(c.tx_refused[TxDrop::Refused(TxRefused::ProtocolNotOwned).index()], 1);
}

#[test]
fn the_stray_daemon_answers_each_frame_it_received_once_and_nothing_else() {
    let mut node = Node::new();
    let echo = inbound(1, &icmp_echo());
    let datagram = inbound(17, &udp(5353, 9999, b"hello"));
    let syn = inbound(6, &tcp_seq(40000, 9999, 100, 0, SYN));
    let ack = inbound(6, &tcp_seq(40001, 9999, 5, 777, ACK));
    node.wire(&[&echo, &datagram, &syn, &ack]);
    assert_eq!(node.clients[STRAY].received().len(), 4);
    let reply = answer(&echo, net_packet::reply::echo_reply);
    let unreachable = answer(&datagram, net_packet::reply::port_unreachable);
    // RFC 9293 §3.10.7.1, by hand: no ACK -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    let reset_to_syn = outbound(6, &tcp_seq(9999, 40000, 0, 101, RST | ACK));
    // ACK -> <SEQ=SEG.ACK><CTL=RST>.
    let reset_to_ack = outbound(6, &tcp_seq(9999, 40001, 777, 0, RST));
    let good = [&reply, &unreachable, &reset_to_syn, &reset_to_ack];
    // Right shapes, but no frame received asks for them: another echo
    // identifier; an unreachable quoting a segment of web's connection (it
    // would make the peer abort it); resets with the wrong numbers; a
    // reset to a port that sent nothing.
    let mut other_echo = reply.clone();
    other_echo[14 + 20 + 5] ^= 1;
    let forged_segment = inbound(6, &tcp_seq(40000, 80, 1, 1, ACK));
    let forged_quote = answer(&datagram, net_packet::reply::port_unreachable);
    let mut forged_quote = forged_quote;
    let quoted_at = 14 + 20 + 8;
    forged_quote[quoted_at..quoted_at + 28].copy_from_slice(&forged_segment[14..14 + 28]);
    let wrong_ack = outbound(6, &tcp_seq(9999, 40000, 0, 100, RST | ACK));
    let wrong_seq = outbound(6, &tcp_seq(9999, 40001, 778, 0, RST));
    let wrong_port = outbound(6, &tcp_seq(9998, 40000, 0, 101, RST | ACK));
    let bad = [&other_echo, &forged_quote, &wrong_ack, &wrong_seq, &wrong_port];
    for (i, frame) in bad.iter().chain(&good).chain(&good).enumerate() {
        node.clients[STRAY].send(i * 2048, frame);
    }
    node.handle();
    let sent = node.driver.sent();
    assert_eq!(sent, good.map(|f| f.clone()), "each good answer once, nothing else");
    assert_eq!(refused_for(&node, STRAY, TxDrop::NotAnAnswer), (bad.len() + good.len()) as u64);
}

static NOW_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn fake_now() -> u64 {
    NOW_NS.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn answers_are_rate_limited_by_the_policy_on_the_clock() {
    let mut config = config();
    config.clients[STRAY].answers =
        net_config::AnswerPolicy { burst: 2, rate_per_second: 1, ..config.clients[STRAY].answers };
    let mut node = Node::with(&config);
    node.mux.set_clock(fake_now);
    NOW_NS.store(5_000_000_000, std::sync::atomic::Ordering::Relaxed);
    let requests: Vec<Vec<u8>> = (1..=4).map(|seq| inbound(1, &icmp_echo_seq(seq))).collect();
    node.wire(&requests.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let replies: Vec<Vec<u8>> = requests.iter().map(|r| answer(r, net_packet::reply::echo_reply)).collect();
    for (i, reply) in replies[..3].iter().enumerate() {
        node.clients[STRAY].send(i * 2048, reply);
    }
    node.handle();
    // The burst of 2, then the bucket is empty.
    assert_eq!(node.driver.sent(), replies[..2]);
    assert_eq!(refused_for(&node, STRAY, TxDrop::AnswerRateLimited), 1);
    // A second later, one more token: the third (still ticketed) goes, the
    // fourth must wait again.
    NOW_NS.store(6_000_000_000, std::sync::atomic::Ordering::Relaxed);
    node.clients[STRAY].send(0, &replies[2]);
    node.clients[STRAY].send(2048, &replies[3]);
    node.handle();
    assert_eq!(node.driver.sent(), replies[2..3]);
    assert_eq!(refused_for(&node, STRAY, TxDrop::AnswerRateLimited), 2);
    // Long after the burst was spent, the bucket is full again: the next
    // answers go at once, up to the burst.
    NOW_NS.store(60_000_000_000, std::sync::atomic::Ordering::Relaxed);
    let later: Vec<Vec<u8>> = (10..13).map(|seq| inbound(1, &icmp_echo_seq(seq))).collect();
    node.wire(&later.iter().map(Vec::as_slice).collect::<Vec<_>>());
    for (i, request) in later.iter().enumerate() {
        node.clients[STRAY].send(i * 2048, &answer(request, net_packet::reply::echo_reply));
    }
    node.handle();
    assert_eq!(node.driver.sent().len(), 2);
    assert_eq!(refused_for(&node, STRAY, TxDrop::AnswerRateLimited), 3);
    // A bucket is full from its first answer on: a burst spent at once is
    // refilled by the time of the next answer, however late.
    let mut node = Node::with(&config);
    node.mux.set_clock(fake_now);
    NOW_NS.store(100_000_000_000, std::sync::atomic::Ordering::Relaxed);
    let requests: Vec<Vec<u8>> = (20..23).map(|seq| inbound(1, &icmp_echo_seq(seq))).collect();
    node.wire(&requests.iter().map(Vec::as_slice).collect::<Vec<_>>());
    for (i, request) in requests[..2].iter().enumerate() {
        node.clients[STRAY].send(i * 2048, &answer(request, net_packet::reply::echo_reply));
    }
    node.handle();
    assert_eq!(node.driver.sent().len(), 2);
    NOW_NS.store(110_000_000_000, std::sync::atomic::Ordering::Relaxed);
    node.clients[STRAY].send(0, &answer(&requests[2], net_packet::reply::echo_reply));
    node.handle();
    assert_eq!(node.driver.sent().len(), 1, "ten seconds later");
}

#[test]
fn arpd_may_send_arp_as_the_node_only() {
    let mut node = Node::new();
    let reply = arp(2, MAC, US, PEER);
    let forged = arp(2, MAC, [10, 0, 2, 77], PEER);
    node.clients[ARPD].send(0, &reply);
    node.clients[ARPD].send(2048, &forged);
    node.handle();
    assert_eq!(node.driver.sent(), [reply]);
    assert_eq!(node.counters(ARPD).tx_refused[TxDrop::Refused(TxRefused::ForgedArpSender).index()], 1);
    // And nobody else may send ARP.
    node.clients[WEB].send(0, &arp(2, MAC, US, PEER));
    node.handle();
    assert!(node.driver.sent().is_empty());
    assert_eq!(node.counters(WEB).tx_refused[TxDrop::Refused(TxRefused::ProtocolNotOwned).index()], 1);
}

#[test]
fn when_every_slot_is_in_flight_frames_wait_for_the_driver() {
    let mut node = Node::new();
    let reply = outbound(6, &tcp(80, 40000, ACK, b"x"));
    let total = TX_SLOTS + 10;
    let mut queued = 0;
    let mut sent = Vec::new();
    // The client can queue TX_QUEUE_CAPACITY descriptors at a time.
    while queued < total {
        let web = &mut node.clients[WEB];
        web.returned();
        let batch = (total - queued).min(web.tx.active.room().unwrap());
        for _ in 0..batch {
            web.send(0, &reply);
        }
        queued += batch;
        node.handle();
        sent.extend(node.driver.take_sent());
    }
    // The driver holds every slot: the rest wait in the client's queue,
    // and the demultiplexer asked the driver to signal returns.
    assert_eq!(sent.len(), TX_SLOTS);
    assert_eq!(node.mux.free_tx_slots(), 0);
    assert_eq!(node.clients[WEB].tx.active.len(), Ok(10));
    for frame in sent.drain(..5) {
        node.driver.give_back(&frame);
    }
    assert!(node.driver.tx.free.should_signal(), "the demultiplexer waits for slots");
    node.handle();
    assert_eq!(node.driver.take_sent().len(), 5);
    assert_eq!(node.clients[WEB].tx.active.len(), Ok(5));
    assert_eq!(node.counters(WEB).tx_allowed, TX_SLOTS as u64 + 5);
}

#[test]
fn the_client_tx_free_queue_never_overflows() {
    let mut node = Node::new();
    let reply = outbound(6, &tcp(80, 40000, ACK, b"x"));
    // The client fills tx_active and never reclaims tx_free.
    for _ in 0..TX_QUEUE_CAPACITY {
        node.clients[WEB].send(0, &reply);
    }
    assert_eq!(node.drive(), TX_QUEUE_CAPACITY);
    for _ in 0..TX_QUEUE_CAPACITY {
        node.clients[WEB].send(0, &reply);
    }
    assert_eq!(node.drive(), 0);
    // tx_free is full: nothing more was taken, nothing lost.
    assert_eq!(node.clients[WEB].tx.free.len(), Ok(TX_QUEUE_CAPACITY));
    assert_eq!(node.clients[WEB].tx.active.len(), Ok(TX_QUEUE_CAPACITY));
    assert_eq!(node.counters(WEB).queue_errors, 0);
    // Once it reclaims, the demultiplexer goes on.
    assert_eq!(node.clients[WEB].returned().len(), TX_QUEUE_CAPACITY);
    assert_eq!(node.drive(), TX_QUEUE_CAPACITY);
    assert_eq!(node.counters(WEB).tx_allowed, 2 * TX_QUEUE_CAPACITY as u64);
}

// --- Signalling -------------------------------------------------------------

#[test]
fn no_wake_up_is_lost() {
    let mut node = Node::new();
    // After handle, the demultiplexer waits on the driver's rx_active and
    // every client's tx_active: a producer there sees the request.
    let frame = arp(1, PEER_MAC, PEER, US);
    assert!(node.driver.receive(&frame));
    assert!(node.driver.rx.active.should_signal());
    node.clients[WEB].send(0, &outbound(6, &tcp(80, 40000, ACK, b"")));
    assert!(node.clients[WEB].tx.active.should_signal());
    // A client that waits for frames is notified once per batch.
    assert_eq!(node.clients[ARPD].rx.active.request_signal_if_empty(), Ok(true));
    // As a driver whose device could take more buffers does.
    node.driver.rx.free.request_signal();
    assert!(node.driver.receive(&frame));
    let notify = node.handle();
    assert!(notify.client(ARPD));
    assert!(!notify.client(STRAY) && !notify.client(WATCH));
    assert!(notify.driver, "the driver asked for its buffers");
    assert_eq!(node.clients[ARPD].received().len(), 2);
    // Nothing asked, nothing pending: no notification.
    let notify = node.handle();
    assert_eq!(notify, Notify::default());
}

#[test]
fn corrupt_client_queues_stall_only_that_client() {
    let mut node = Node::new();
    // web writes a tail far beyond its head: more entries than capacity.
    let tail = node.clients[WEB].tx_active_region.cast::<u32>();
    // SAFETY: the leaked queue region; its tail word, written as the peer
    // PD could.
    unsafe { tail.add(TAIL).write_volatile(0x8000_0000) };
    let http = inbound(6, &tcp(40000, 80, SYN, b""));
    let request = arp(1, PEER_MAC, PEER, US);
    node.wire(&[&http, &request]);
    assert!(node.counters(WEB).queue_errors > 0);
    assert_eq!(node.clients[ARPD].received(), [request]);
    // Receive towards web still works: its other queues are sane.
    assert_eq!(node.clients[WEB].received(), [http]);
    node.clients[ARPD].send(0, &arp(2, MAC, US, PEER));
    node.handle();
    assert_eq!(node.driver.sent().len(), 1);
}

// --- Protected calls ----------------------------------------------------------

/// A call the filter table refused.
fn refused<T>(e: FilterError) -> Result<T, MuxError> {
    Err(MuxError::Filter(e))
}

#[test]
fn install_and_remove_with_distinct_errors() {
    let mut node = Node::new();
    // Inside the grant: installed; web now receives TCP 8080.
    let id = node.install(WEB, "tcp dst 8080", FilterKind::Exclusive).unwrap();
    let alt = inbound(6, &tcp(40000, 8080, SYN, b""));
    node.wire(&[&alt]);
    assert_eq!(node.clients[WEB].received(), [alt.as_slice()]);
    // Errors, each its own, an overlap naming the filter it overlaps.
    assert_eq!(
        node.install(WEB, "tcp dst 8080-8081", FilterKind::Exclusive),
        refused(FilterError::Overlaps { with: id })
    );
    assert_eq!(node.install(WEB, "udp dst 53", FilterKind::Exclusive), refused(FilterError::OutOfGrant));
    assert_eq!(node.install(WEB, "tcp dst 80", FilterKind::Copy), refused(FilterError::CopyNotPrivileged));
    let inconsistent = Filter::ethertype(EtherType::ARP).to_ports(PortRange::single(80));
    assert_eq!(
        node.call(WEB, Request::Install { filter: inconsistent, kind: FilterKind::Exclusive }),
        refused(FilterError::Inconsistent)
    );
    assert_eq!(node.counters(WEB).claims_refused, 4);
    assert!(
        node.logged("refused web's claim `udp dst 53` (exclusive): outside its grant (error 2)"),
        "{:#?}",
        node.log
    );
    assert!(
        node.logged("refused web's claim `tcp dst 8080-8081` (exclusive): overlaps web's `tcp dst 8080`"),
        "{:#?}",
        node.log
    );
    // Only the owner removes, and only what exists.
    let other = FilterId::from_raw(id.to_raw() + 1);
    assert_eq!(node.remove(STRAY, id), refused(FilterError::NotOwner));
    assert_eq!(node.remove(WEB, other), refused(FilterError::NoSuchFilter));
    assert_eq!(node.remove(WEB, id), Ok(Reply::Removed));
    assert_eq!(node.remove(WEB, id), refused(FilterError::NoSuchFilter));
    // Unclaimed again: the stray daemon's.
    node.wire(&[&alt]);
    assert!(node.clients[WEB].received().is_empty());
    assert_eq!(node.clients[STRAY].received(), [alt]);
    let stats = node.stats(WEB);
    assert_eq!(stats.claims_refused, 4);
}

#[test]
fn calls_in_registers_are_decoded_answered_and_encoded() {
    let mut node = Node::new();
    // What a client's registers carry, and what goes back.
    let [w0, w1, w2] = filter("tcp dst 8080").to_words();
    let installed = node.answer(WEB, label::INSTALL, &[w0, w1, w2, 0]);
    assert_eq!((installed.label(), installed.words().len()), (OK, 1));
    let id = installed.words()[0];
    let overlap = node.answer(WEB, label::INSTALL, &[w0, w1, w2, 0]);
    assert_eq!(
        (overlap.label(), overlap.words()),
        (u64::from(FilterError::Overlaps { with: FilterId::from_raw(0) }.code()), &[id][..])
    );
    let out_of_grant = node.answer(WEB, label::INSTALL, &{
        let [w0, w1, w2] = filter("udp dst 53").to_words();
        [w0, w1, w2, 0]
    });
    assert_eq!((out_of_grant.label(), out_of_grant.words().len()), (u64::from(FilterError::OutOfGrant.code()), 0));
    // Malformed requests: refused before the table sees them (not counted).
    let malformed: [(u64, &[u64]); 7] = [
        (label::INSTALL, &[u64::MAX, 0, 0, 0]),
        (label::INSTALL, &[w0, w1, w2, 2]),
        (label::INSTALL, &[w0, w1, w2]),
        (label::REMOVE, &[]),
        (label::REMOVE, &[1 << 40]),
        (0, &[]),
        (99, &[]),
    ];
    for (label, words) in malformed {
        let reply = node.answer(WEB, label, words);
        assert_eq!((reply.label(), reply.words().len()), (ERR_BAD_REQUEST, 0), "{label} {words:?}");
    }
    assert_eq!(node.counters(WEB).claims_refused, 2);
    let removed = node.answer(WEB, label::REMOVE, &[id]);
    assert_eq!((removed.label(), removed.words().len()), (OK, 0));
    let stats = node.answer(WEB, label::STATS, &[]);
    assert_eq!((stats.label(), stats.words().len()), (OK, MuxStats::WORDS));
    assert_eq!(stats.words()[4], 2, "claims refused");
}

#[test]
fn a_client_may_send_only_what_it_currently_owns() {
    let mut node = Node::new();
    let from_8080 = outbound(6, &tcp(8080, 40000, ACK, b""));
    node.clients[WEB].send(0, &from_8080);
    node.handle();
    assert!(node.driver.sent().is_empty());
    let id = node.install(WEB, "tcp dst 8080", FilterKind::Exclusive).unwrap();
    node.clients[WEB].send(0, &from_8080);
    node.handle();
    assert_eq!(node.driver.sent(), [from_8080.as_slice()]);
    assert_eq!(node.remove(WEB, id), Ok(Reply::Removed));
    node.clients[WEB].send(0, &from_8080);
    node.handle();
    assert!(node.driver.sent().is_empty());
}

#[test]
fn node_stats_and_unknown_calls() {
    let mut node = Node::new();
    let address = NodeAddress { ipv4: Ipv4Address(US), prefix_len: 24, gateway: Some(Ipv4Address(PEER)) };
    assert_eq!(node.call(ARPD, Request::Node), Ok(Reply::Node(NodeInfo { mac: MAC, address, offloads: 0 })));
    // In registers, as the API documents.
    let reply = node.answer(ARPD, label::NODE, &[]);
    assert_eq!(
        (reply.label(), reply.words()),
        (
            OK,
            &[
                net_mux_api::mac_to_word(MAC),
                u64::from(Ipv4Address(US).to_u32()),
                24,
                u64::from(Ipv4Address(PEER).to_u32()),
                0
            ][..]
        )
    );
    // The driver's offloads, masked to the known bits, in the fifth register.
    node.mux.set_offloads(OFFLOAD_TX_CSUM | OFFLOAD_RX_CSUM | 1 << 40, &mut |_| {});
    assert_eq!(
        node.call(ARPD, Request::Node),
        Ok(Reply::Node(NodeInfo { mac: MAC, address, offloads: OFFLOAD_TX_CSUM | OFFLOAD_RX_CSUM }))
    );
    assert_eq!(node.answer(ARPD, label::NODE, &[]).words()[4], OFFLOAD_TX_CSUM | OFFLOAD_RX_CSUM, "the fifth word");
    assert!(matches!(node.call(ARPD, Request::Stats), Ok(Reply::Stats(_))));
    assert!(node.logged("filter 0x0 arpd: arp (exclusive) hits 0"), "{:#?}", node.log);
    assert!(node.logged("filter 0x2 watch: icmp (copy) hits 0"), "{:#?}", node.log);
    // A client index with no client is refused, whatever the call.
    assert_eq!(node.call(4, Request::Node), Err(MuxError::BadRequest));
    assert_eq!(node.answer(4, label::NODE, &[]).label(), ERR_BAD_REQUEST);
    // Channels: the driver's names no client.
    assert_eq!(client_of_channel(net_config::MUX_DRIVER_CHANNEL), None);
    assert_eq!(client_of_channel(net_config::mux_client_channel(2)), Some(2));
    assert_eq!(client_of_channel(25), None);
}

#[test]
fn notify_lists_clients() {
    let notify = Notify { driver: false, driver_restarted: false, clients: 0b1010 };
    assert_eq!(notify.clients().collect::<Vec<_>>(), [1, 3]);
    assert!(notify.client(3) && !notify.client(0) && !notify.client(MAX_CLIENTS));
}

// --- Transmit in place --------------------------------------------------------

/// An outbound TCP segment from port 80 carrying `len` bytes of data.
fn web_reply(len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    outbound(6, &tcp(80, 40000, ACK, &data))
}

/// Ethernet + IPv4 + TCP without options.
const TCP_HEADERS: usize = 14 + 20 + 20;

#[test]
fn an_in_place_frame_goes_out_as_a_slot_piece_and_a_files_reference() {
    let mut node = Node::new();
    let reply = web_reply(1000);
    let data = reply.len() - TCP_HEADERS;
    let web = &mut node.clients[WEB];
    web.tx_data.put(0, &reply[..TCP_HEADERS]);
    node.driver.files.put(0x1234, &reply[TCP_HEADERS..]);
    let descs = [header_desc(0, TCP_HEADERS, 7), files_desc(0x1234, data, 8)];
    web.send_descs(&descs);
    node.handle();
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1);
    let frame = &sent[0];
    assert_eq!(frame.bytes, reply);
    let slot = frame.slot();
    // The checked headers, copied into the slot; the data by reference,
    // where the client said, with the slot's cookie.
    let base = slot * TX_SLOT_SIZE;
    assert_eq!(
        frame.descs,
        [
            BufferDesc {
                offset: tx_offset(TxWindow::Payload, base as u32),
                len: TCP_HEADERS as u32,
                cookie: slot as u32 | TX_MORE
            },
            BufferDesc { cookie: slot as u32, ..descs[1] },
        ]
    );
    assert_eq!(node.driver.tx_payload.bytes(base, TCP_HEADERS), reply[..TCP_HEADERS]);
    let c = node.counters(WEB);
    assert_eq!((c.tx_allowed, c.tx_in_place_bytes, c.tx_refused_total()), (1, data as u64, 0));
    // The NIC may still read the client's bytes: its descriptors wait.
    assert!(node.clients[WEB].returned().is_empty());
    // Rewriting its headers now changes nothing sent.
    node.clients[WEB].tx_data.put(0, &[0xee; TCP_HEADERS]);
    assert_eq!(node.driver.tx_payload.bytes(base, TCP_HEADERS), reply[..TCP_HEADERS]);
    // Sent: the slot is free and the client gets its descriptors back,
    // unchanged.
    node.driver.give_back(frame);
    node.handle();
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS);
    assert_eq!(node.clients[WEB].returned(), [BufferDesc { cookie: 7 | TX_MORE, ..descs[0] }, descs[1]]);
    let stats = node.stats(WEB);
    assert_eq!((stats.tx_allowed, stats.tx_in_place_bytes), (1, data as u64));
    assert!(
        node.logged(&format!("web: rx delivered 0 no buffer 0; tx allowed 1 refused 0 (none); in place {data} bytes;")),
        "{:#?}",
        node.log
    );
}

#[test]
fn in_place_frames_that_cannot_be_checked_or_are_not_granted_are_refused() {
    let mut node = Node::new();
    let reply = web_reply(200);
    let data = reply.len() - TCP_HEADERS;
    let mut with_options = reply.clone();
    with_options[14 + 20 + 12] = 8 << 4; // a 32-byte TCP header
    let ping = outbound(1, &icmp_echo());
    let web = &mut node.clients[WEB];
    web.tx_data.put(0, &reply);
    web.tx_data.put(2048, &with_options[..TCP_HEADERS]);
    web.tx_data.put(4096, &ping[..34]);
    let files_end = FILES_SIZE as u32;
    let cases: Vec<(Vec<BufferDesc>, TxDrop)> = vec![
        // Out of the region, partly or wholly.
        (vec![header_desc(0, TCP_HEADERS, 0), files_desc(files_end - 10, data, 0)], TxDrop::InPlaceOutOfBounds),
        (vec![header_desc(0, TCP_HEADERS, 0), files_desc(files_end, data, 0)], TxDrop::InPlaceOutOfBounds),
        // Past the window (into the offload window's part of the transmit
        // address space, which the queue accepts): out of the region.
        (vec![header_desc(0, TCP_HEADERS, 0), files_desc(u32::MAX, data, 0)], TxDrop::InPlaceOutOfBounds),
        (vec![header_desc(0, TCP_HEADERS, 0), files_desc(0, 0, 0), files_desc(0, data, 0)], TxDrop::BadDescriptor),
        // An in-place segment where the headers are.
        (vec![header_desc(0, 40, 0), files_desc(0, reply.len() - 40, 0)], TxDrop::InPlaceHeaders),
        (vec![files_desc(0, reply.len(), 0)], TxDrop::InPlaceHeaders),
        (vec![header_desc(2048, TCP_HEADERS, 0), files_desc(0, data, 0)], TxDrop::InPlaceHeaders),
        // Not TCP or UDP.
        (vec![header_desc(4096, 34, 0), files_desc(0, ping.len() - 34, 0)], TxDrop::InPlaceHeaders),
        // Too long as a whole.
        (vec![header_desc(0, TCP_HEADERS, 0), files_desc(0, 1500, 0)], TxDrop::BadLength),
    ];
    let mut descs = 0;
    for (frame, _) in &cases {
        web.send_descs(frame);
        descs += frame.len();
    }
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    let c = node.counters(WEB);
    for (_, reason) in &cases {
        let expected = cases.iter().filter(|(_, r)| r == reason).count() as u64;
        assert_eq!(c.tx_refused[reason.index()], expected, "{reason:?}");
    }
    assert_eq!((c.tx_refused_total(), c.tx_in_place_bytes), (cases.len() as u64, 0));
    // Refused frames' descriptors come back at once.
    assert_eq!(node.clients[WEB].returned().len(), descs);
    assert!(matches!(node.call(WEB, Request::Stats), Ok(Reply::Stats(_))));
    assert!(node.logged("in-place-out-of-bounds 3, in-place-headers 4"), "{:#?}", node.log);

    // A client the description lets send from no region.
    let mut config = config();
    config.clients[WEB].send_from_size = 0;
    let mut node = Node::with(&config);
    node.clients[WEB].tx_data.put(0, &reply);
    node.clients[WEB].send_descs(&[header_desc(0, TCP_HEADERS, 0), files_desc(0, data, 0)]);
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    assert_eq!(node.counters(WEB).tx_refused[TxDrop::InPlaceNotGranted.index()], 1);
    // Transmit validation still applies to what is checked.
    let mut node = Node::new();
    let forged = ethernet(PEER_MAC, MAC, 0x0800, &ipv4([10, 0, 2, 99], PEER, 6, &tcp(80, 40000, ACK, &[0; 100])));
    node.clients[WEB].tx_data.put(0, &forged[..TCP_HEADERS]);
    node.clients[WEB].send_descs(&[header_desc(0, TCP_HEADERS, 0), files_desc(0, 100, 0)]);
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    assert_eq!(node.counters(WEB).tx_refused[TxDrop::Refused(TxRefused::ForgedSourceIp).index()], 1);
}

#[test]
fn interleaved_pieces_go_out_in_frame_order() {
    let mut node = Node::new();
    let reply = web_reply(900);
    // copied (headers and 10 bytes, from two windows), in place (300),
    // copied (20), in place (400), copied (the rest).
    let cuts = [0, TCP_HEADERS, TCP_HEADERS + 10, TCP_HEADERS + 310, TCP_HEADERS + 330, TCP_HEADERS + 730, reply.len()];
    let part = |i: usize| &reply[cuts[i]..cuts[i + 1]];
    let web = &mut node.clients[WEB];
    web.tx_data.put(0, part(0));
    web.rx_data.put(2 * RX_BUFFER_SIZE, part(1));
    node.driver.files.put(0x100, part(2));
    web.tx_data.put(2048, part(3));
    node.driver.files.put(0x8000, part(4));
    web.tx_data.put(4096, part(5));
    web.send_descs(&[
        header_desc(0, part(0).len(), 1),
        rx_desc(2 * RX_BUFFER_SIZE, part(1).len(), 2),
        files_desc(0x100, part(2).len(), 3),
        header_desc(2048, part(3).len(), 4),
        files_desc(0x8000, part(4).len(), 5),
        header_desc(4096, part(5).len(), 6),
    ]);
    node.handle();
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes, reply);
    let slot = sent[0].slot();
    let base = (slot * TX_SLOT_SIZE) as u32;
    let more = slot as u32 | TX_MORE;
    let payload = |at: usize, len: usize| BufferDesc {
        offset: tx_offset(TxWindow::Payload, base + at as u32),
        len: len as u32,
        cookie: more,
    };
    let copied_first = part(0).len() + part(1).len();
    let mut expected = vec![
        payload(0, copied_first),
        files_desc(0x100, part(2).len(), more),
        payload(copied_first, part(3).len()),
        files_desc(0x8000, part(4).len(), more),
        payload(copied_first + part(3).len(), part(5).len()),
    ];
    expected[4].cookie = slot as u32;
    assert_eq!(sent[0].descs, expected);
    assert_eq!(node.counters(WEB).tx_in_place_bytes, (part(2).len() + part(4).len()) as u64);
    node.driver.give_back(&sent[0]);
    node.handle();
    assert_eq!(node.clients[WEB].returned().len(), 6);
}

#[test]
fn the_slot_is_free_when_the_last_descriptor_comes_back() {
    let mut node = Node::new();
    let reply = web_reply(500);
    node.clients[WEB].tx_data.put(0, &reply[..TCP_HEADERS]);
    node.clients[WEB].send_descs(&[header_desc(0, TCP_HEADERS, 0), files_desc(0, reply.len() - TCP_HEADERS, 1)]);
    node.handle();
    let sent = node.driver.take_sent().remove(0);
    // The first descriptor alone: still in flight.
    node.driver.tx.free.enqueue(sent.descs[0]).unwrap();
    node.handle();
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS - 1);
    assert!(node.clients[WEB].returned().is_empty());
    // The last: the slot is free and the client's descriptors are back.
    node.driver.tx.free.enqueue(sent.descs[1]).unwrap();
    node.handle();
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS);
    assert_eq!(node.clients[WEB].returned().len(), 2);
    assert_eq!(node.mux.driver_counters().errors, 0);
    // Returned twice, or naming a slot not in flight: counted, ignored.
    node.driver.tx.free.enqueue(sent.descs[1]).unwrap();
    node.driver.tx.free.enqueue(sent.descs[0]).unwrap();
    let outside = BufferDesc { offset: tx_offset(TxWindow::Payload, 0), len: 60, cookie: 3 };
    node.driver.tx.free.enqueue(outside).unwrap();
    node.handle();
    assert_eq!(node.mux.driver_counters().errors, 3);
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS);
    assert!(node.clients[WEB].returned().is_empty());
}

#[test]
fn a_frame_waits_while_the_driver_queue_is_nearly_full() {
    let mut node = Node::new();
    let small = outbound(6, &tcp(80, 40000, ACK, b"x"));
    let reply = web_reply(300);
    // Copied frames until the driver's tx_active has room for fewer than
    // a frame of the most pieces.
    let fill = TX_QUEUE_CAPACITY - MAX_TX_SEGMENTS + 1;
    for _ in 0..fill {
        node.clients[WEB].send(0, &small);
    }
    node.handle();
    assert_eq!(node.driver.tx.active.len(), Ok(fill));
    node.clients[WEB].returned();
    node.clients[WEB].tx_data.put(2048, &reply[..TCP_HEADERS]);
    node.driver.files.put(0, &reply[TCP_HEADERS..]);
    node.clients[WEB].send_descs(&[header_desc(2048, TCP_HEADERS, 0), files_desc(0, reply.len() - TCP_HEADERS, 0)]);
    node.handle();
    // Not taken: it waits in the client's queue, and the demultiplexer
    // waits for the driver to return frames.
    assert_eq!(node.clients[WEB].tx.active.len(), Ok(2));
    assert!(node.driver.tx.free.should_signal(), "the demultiplexer waits for the driver");
    let first = node.driver.take_sent();
    assert_eq!(first.len(), fill);
    for frame in &first {
        node.driver.give_back(frame);
    }
    node.handle();
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes, reply);
    assert_eq!(node.counters(WEB).tx_allowed, fill as u64 + 1);
    assert_eq!(node.counters(WEB).tx_refused_total(), 0);
}

#[test]
fn held_in_place_descriptors_keep_their_room_on_tx_free() {
    let mut node = Node::new();
    let reply = web_reply(100);
    node.clients[WEB].tx_data.put(0, &reply[..TCP_HEADERS]);
    node.driver.files.put(0, &reply[TCP_HEADERS..]);
    let frame = [header_desc(0, TCP_HEADERS, 0), files_desc(0, reply.len() - TCP_HEADERS, 0)];
    // The client fills tx_active with in-place frames and never reclaims.
    for _ in 0..TX_QUEUE_CAPACITY / 2 {
        node.clients[WEB].send_descs(&frame);
    }
    assert_eq!(node.drive(), TX_QUEUE_CAPACITY / 2);
    assert_eq!(node.clients[WEB].tx.free.len(), Ok(TX_QUEUE_CAPACITY));
    // More frames: none is taken while their descriptors could not go back.
    for _ in 0..4 {
        node.clients[WEB].send_descs(&frame);
    }
    assert_eq!(node.drive(), 0);
    assert_eq!(node.clients[WEB].tx.active.len(), Ok(8));
    assert_eq!(node.counters(WEB).queue_errors, 0);
    assert_eq!(node.clients[WEB].returned().len(), TX_QUEUE_CAPACITY);
    assert_eq!(node.drive(), 4);
    assert_eq!(
        node.counters(WEB).tx_in_place_bytes,
        (TX_QUEUE_CAPACITY / 2 + 4) as u64 * (reply.len() - TCP_HEADERS) as u64
    );
}

// --- Offloads ---------------------------------------------------------------

/// The pseudo-header sum (RFC 793, RFC 768) of a `length`-byte TCP or UDP
/// segment from us to the peer, folded and not complemented: what a
/// checksum field holds for the device to complete (virtio 5.1.6.2).
fn pseudo_sum(src: [u8; 4], dst: [u8; 4], protocol: u8, length: usize) -> u16 {
    let pseudo = [&src[..], &dst, &[0, protocol], &(length as u16).to_be_bytes()].concat();
    !checksum(&pseudo)
}

/// Whether the TCP or UDP checksum of `frame` (Ethernet, IPv4 without
/// options) verifies.
fn l4_checksum_ok(frame: &[u8]) -> bool {
    let ip = &frame[14..];
    let pseudo = [&ip[12..20], &[0, ip[9]], &((ip.len() - 20) as u16).to_be_bytes()].concat();
    checksum(&[pseudo, ip[20..].to_vec()].concat()) == 0
}

/// `frame` with the TCP checksum field holding only the pseudo-header sum.
fn with_pseudo_sum(mut frame: Vec<u8>, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let sum = pseudo_sum(src, dst, 6, frame.len() - 34);
    frame[34 + 16..34 + 18].copy_from_slice(&sum.to_be_bytes());
    frame
}

fn tx_refusals(node: &Node, client: usize, reason: TxDrop) -> u64 {
    node.counters(client).tx_refused[reason.index()]
}

#[test]
fn a_checksum_offloaded_frame_is_checked_and_passed_on_with_its_request() {
    let mut node = Node::new();
    node.mux.set_offloads(OFFLOAD_ALL, &mut |_| {});
    let reply = with_pseudo_sum(web_reply(300), US, PEER);
    assert!(!l4_checksum_ok(&reply), "only the pseudo-header sum");
    let asked = TxOffload::checksum(34, TCP_HEADERS as u8, true);
    node.clients[WEB].tx_data.put(0, &reply);
    node.clients[WEB].send_descs(&[asked.to_desc(5), header_desc(0, reply.len(), 6)]);
    node.handle();
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes, reply, "the checksum field is left for the device");
    assert_eq!(sent[0].offload, Some(asked));
    assert_eq!(sent[0].descs[0], asked.to_desc(sent[0].slot() as u32 | TX_MORE));
    node.driver.give_back(&sent[0]);
    node.handle();
    // Without in-place pieces the client's descriptors came back at once,
    // the offload descriptor with them.
    let back = node.clients[WEB].returned();
    assert_eq!(back, [asked.to_desc(5 | TX_MORE), header_desc(0, reply.len(), 6)]);
    assert_eq!(node.counters(WEB).tx_allowed, 1);
    assert_eq!(node.mux.free_tx_slots(), TX_SLOTS);
}

#[test]
fn offloaded_frames_still_have_their_headers_checked() {
    let mut node = Node::new();
    node.mux.set_offloads(OFFLOAD_ALL, &mut |_| {});
    let asked = TxOffload::checksum(34, TCP_HEADERS as u8, true);
    // A forged source address, and a port web does not own.
    let forged = with_pseudo_sum(
        ethernet(PEER_MAC, MAC, 0x0800, &ipv4([10, 0, 2, 99], PEER, 6, &tcp(80, 1, ACK, b"x"))),
        [10, 0, 2, 99],
        PEER,
    );
    let unowned = with_pseudo_sum(outbound(6, &tcp(22, 40000, ACK, b"x")), US, PEER);
    let web = &mut node.clients[WEB];
    web.tx_data.put(0, &forged);
    web.tx_data.put(2048, &unowned);
    web.send_descs(&[asked.to_desc(0), header_desc(0, forged.len(), 0)]);
    web.send_descs(&[asked.to_desc(0), header_desc(2048, unowned.len(), 0)]);
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    assert_eq!(tx_refusals(&node, WEB, TxDrop::Refused(TxRefused::ForgedSourceIp)), 1);
    assert_eq!(tx_refusals(&node, WEB, TxDrop::Refused(TxRefused::EndpointNotOwned)), 1);
}

#[test]
fn offload_requests_are_refused_without_the_driver_s_feature_or_when_they_do_not_fit() {
    let mut node = Node::new();
    let reply = with_pseudo_sum(web_reply(100), US, PEER);
    let csum = TxOffload::checksum(34, TCP_HEADERS as u8, true);
    let tso = TxOffload::tso4(34, TCP_HEADERS as u8, 1460);
    node.clients[WEB].tx_data.put(0, &reply);
    let frame = |offload: TxOffload| [offload.to_desc(0), header_desc(0, reply.len(), 0)];
    // No offload at the driver (the default until `set_offloads`).
    node.clients[WEB].send_descs(&frame(csum));
    node.handle();
    assert_eq!(tx_refusals(&node, WEB, TxDrop::OffloadUnavailable), 1);
    // Checksum, not TSO.
    node.mux.set_offloads(OFFLOAD_TX_CSUM | OFFLOAD_RX_CSUM, &mut |_| {});
    node.clients[WEB].send_descs(&frame(tso));
    node.handle();
    assert_eq!(tx_refusals(&node, WEB, TxDrop::OffloadUnavailable), 2);
    node.mux.set_offloads(OFFLOAD_ALL, &mut |_| {});
    let udp_frame = outbound(17, &udp(80, 40000, b"hello"));
    node.clients[WEB].tx_data.put(4096, &udp_frame);
    let mismatches: Vec<Vec<BufferDesc>> = vec![
        // Fields other than the headers say.
        frame(TxOffload::checksum(34, TCP_HEADERS as u8, false)).to_vec(),
        frame(TxOffload::checksum(38, TCP_HEADERS as u8, true)).to_vec(),
        frame(TxOffload::checksum(34, TCP_HEADERS as u8 + 4, true)).to_vec(),
        // Packets longer than an MTU.
        frame(TxOffload::tso4(34, TCP_HEADERS as u8, 1500)).to_vec(),
        // TSO on UDP.
        vec![TxOffload::tso4(34, 42, 1000).to_desc(0), header_desc(4096, udp_frame.len(), 0)],
        // Not first.
        vec![header_desc(0, reply.len(), 0), csum.to_desc(0)],
        // Malformed: TSO without an MSS.
        vec![TxOffload { mss: 0, ..tso }.to_desc(0), header_desc(0, reply.len(), 0)],
        // Headers not all copied.
        vec![csum.to_desc(0), header_desc(0, 40, 0)],
    ];
    for descs in &mismatches {
        node.clients[WEB].send_descs(descs);
    }
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    let c = node.counters(WEB);
    assert_eq!(tx_refusals(&node, WEB, TxDrop::OffloadMismatch), mismatches.len() as u64, "{:?}", c.tx_refused);
    assert_eq!(c.tx_refused_total(), 2 + mismatches.len() as u64);
    let report = &mut Vec::new();
    node.mux.report(&mut |a| report.push(a.to_string()));
    assert!(
        report.iter().any(|l| l.contains("offload-unavailable 2") && l.contains("offload-mismatch 8")),
        "{report:#?}"
    );
}

#[test]
fn a_64_kib_tso_frame_is_a_copied_header_and_seven_in_place_ranges() {
    let mut node = Node::new();
    node.mux.set_offloads(OFFLOAD_ALL, &mut |_| {});
    // 7 ranges of 9000 bytes of web's send_from region: 63054 bytes.
    let data = 7 * 9000;
    let reply = with_pseudo_sum(web_reply(data), US, PEER);
    assert!(reply.len() > MAX_FRAME_LEN && reply.len() <= MAX_TSO_FRAME_LEN);
    node.clients[WEB].tx_data.put(0, &reply[..TCP_HEADERS]);
    let mut descs = vec![TxOffload::tso4(34, TCP_HEADERS as u8, 1460).to_desc(0), header_desc(0, TCP_HEADERS, 1)];
    for i in 0..7 {
        let at = 0x100 + i * 9000;
        node.driver.files.put(at, &reply[TCP_HEADERS + i * 9000..TCP_HEADERS + (i + 1) * 9000]);
        descs.push(files_desc(at as u32, 9000, 2 + i as u32));
    }
    assert_eq!(descs.len(), 9);
    node.clients[WEB].send_descs(&descs);
    node.handle();
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes, reply);
    assert_eq!(sent[0].offload, Some(TxOffload::tso4(34, TCP_HEADERS as u8, 1460)));
    assert_eq!(node.counters(WEB).tx_in_place_bytes, data as u64);
    // The same frame without TSO is too long.
    descs[0] = TxOffload::checksum(34, TCP_HEADERS as u8, true).to_desc(0);
    node.clients[WEB].send_descs(&descs);
    descs.remove(0);
    node.clients[WEB].send_descs(&descs);
    node.handle();
    assert!(node.driver.take_sent().is_empty());
    assert_eq!(tx_refusals(&node, WEB, TxDrop::BadLength), 2);
    // The most in-place ranges with an offload descriptor: 1 + 15 descriptors.
    let mut most = vec![TxOffload::tso4(34, TCP_HEADERS as u8, 1460).to_desc(0), header_desc(0, TCP_HEADERS, 0)];
    for i in 0..7 {
        most.push(files_desc((0x100 + i * 9000) as u32, 9000, 0));
        most.push(header_desc(0, 1, 0));
    }
    assert_eq!(most.len(), MAX_TX_SEGMENTS);
    node.clients[WEB].send_descs(&most);
    node.handle();
    let sent = node.driver.take_sent();
    assert_eq!(sent.len(), 1, "a frame of the most descriptors passes (its checksum is the device's)");
    assert_eq!(sent[0].descs.len(), MAX_TX_SEGMENTS);
}

#[test]
fn received_checksum_states_reach_the_clients_and_partial_ones_are_completed() {
    let mut node = Node::new();
    let request = inbound(6, &tcp(40000, 80, ACK, b"GET / HTTP/1.0\r\n\r\n"));
    let partial = with_pseudo_sum(request.clone(), PEER, US);
    assert!(!l4_checksum_ok(&partial));
    assert!(node.driver.receive_with(&request, RX_CSUM_VALID));
    assert!(node.driver.receive_with(&partial, rx_partial_cookie(34, 16)));
    assert!(node.driver.receive(&request));
    // A partial checksum whose field is past the frame: delivered as is, unvouched.
    assert!(node.driver.receive_with(&partial, rx_partial_cookie(34, 250)));
    node.handle();
    let got = node.clients[WEB].received_with_cookies();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], (request.clone(), RX_CSUM_VALID));
    assert_eq!(got[1].1, RX_CSUM_VALID);
    assert!(l4_checksum_ok(&got[1].0), "completed in the copy");
    assert_eq!((&got[1].0[..50], &got[1].0[52..]), (&partial[..50], &partial[52..]), "only the checksum differs");
    assert_eq!(got[2], (request.clone(), 0));
    assert_eq!(got[3], (partial, 0));
}

// --- Least privilege: quotas, fairness ---------------------------------------

#[test]
fn a_client_holds_at_most_its_quota_of_filters_and_others_still_install() {
    let mut node = Node::new();
    // watch holds its boot watch `icmp`; it may hold MAX_FILTERS_PER_CLIENT.
    let quota = net_mux_api::MAX_FILTERS_PER_CLIENT;
    let mut ids = Vec::new();
    for port in 1..quota {
        ids.push(node.install(WATCH, &std::format!("tcp dst {port}"), FilterKind::Copy).unwrap());
    }
    assert_eq!(node.mux.table().count_of(net_filter::Owner::new(WATCH).unwrap()), quota);
    assert_eq!(node.install(WATCH, "tcp dst 999", FilterKind::Copy), refused(FilterError::QuotaExceeded));
    assert_eq!(node.counters(WATCH).claims_refused, 1);
    assert!(node.logged("refused watch's claim `tcp dst 999` (copy): holds 8 filters already (its quota) (error 8)"));
    // The table is not full: another client installs.
    assert!(node.install(WEB, "tcp dst 8080", FilterKind::Exclusive).is_ok());
    // A removal makes room again.
    assert_eq!(node.remove(WATCH, ids[0]), Ok(Reply::Removed));
    assert!(node.install(WATCH, "tcp dst 999", FilterKind::Copy).is_ok());
}

#[test]
fn two_busy_clients_both_progress_when_the_driver_frees_few_slots() {
    let mut node = Node::new();
    node.install(WATCH, "tcp dst 443", FilterKind::Exclusive).unwrap();
    let from_web = outbound(6, &tcp(80, 40000, ACK, b"w"));
    let from_watch = outbound(6, &tcp(443, 40000, ACK, b"x"));
    for (client, frame) in [(WEB, &from_web), (WATCH, &from_watch)] {
        node.clients[client].tx_data.put(0, frame);
        for _ in 0..TX_QUEUE_CAPACITY {
            node.clients[client].send_descs(&[header_desc(0, frame.len(), 0)]);
        }
    }
    node.handle();
    // Every slot in flight; then the driver returns 8 frames per wake-up.
    let mut in_flight = node.driver.take_sent();
    assert!(in_flight.len() > TX_SLOTS - MAX_TX_SEGMENTS);
    let (mut web, mut watch) = (0, 0);
    for _ in 0..16 {
        for frame in in_flight.drain(..8) {
            node.driver.give_back(&frame);
        }
        node.clients[WEB].returned();
        node.clients[WATCH].returned();
        node.handle();
        let sent = node.driver.take_sent();
        web += sent.iter().filter(|f| f.bytes == from_web).count();
        watch += sent.iter().filter(|f| f.bytes == from_watch).count();
        in_flight.extend(sent);
    }
    // Turns alternate: neither client takes every freed slot (with rounds
    // that always began at client 0, web took all of them).
    assert!(web + watch >= 16 * 8);
    assert!(web.abs_diff(watch) <= 16, "web {web}, watch {watch}");
}

#[test]
fn frames_not_addressed_to_the_node_reach_no_client_and_are_counted_by_reason() {
    let mut node = Node::new();
    let other_mac = [0x52, 0x54, 0x00, 0x99, 0x99, 0x99];
    let web = ipv4(PEER, US, 6, &tcp(40000, 80, SYN, b""));
    let to_other_station = ethernet(other_mac, PEER_MAC, 0x0800, &web);
    let to_multicast = ethernet([0x01, 0x00, 0x5e, 0, 0, 1], PEER_MAC, 0x0800, &web);
    let to_other_host = ethernet(MAC, PEER_MAC, 0x0800, &ipv4(PEER, [10, 0, 2, 99], 6, &tcp(40000, 80, SYN, b"")));
    let arp_for_another = {
        let mut frame = arp(2, PEER_MAC, PEER, US);
        frame[..6].copy_from_slice(&other_mac);
        frame
    };
    node.wire(&[&to_other_station, &to_multicast, &to_other_host, &arp_for_another]);
    for client in &mut node.clients {
        assert!(client.received().is_empty());
    }
    let refused = node.mux.driver_counters().rx_refused;
    assert_eq!(refused[RxRefused::NotOurMac.index()], 2);
    assert_eq!(refused[RxRefused::Multicast.index()], 1);
    assert_eq!(refused[RxRefused::NotOurIp.index()], 1);
    assert_eq!(node.mux.table().counters().unclaimed_ipv4, 0, "not classified");
    // What is the node's still arrives: to its MAC, and IPv4 broadcasts in
    // a link-layer broadcast (to the stray daemon, which will not answer).
    let broadcast_udp = ethernet([0xff; 6], PEER_MAC, 0x0800, &ipv4(PEER, [10, 0, 2, 255], 17, &udp(68, 67, b"")));
    let limited = ethernet([0xff; 6], PEER_MAC, 0x0800, &ipv4(PEER, [255; 4], 17, &udp(68, 67, b"")));
    let syn = ethernet(MAC, PEER_MAC, 0x0800, &web);
    node.wire(&[&broadcast_udp, &limited, &syn, &arp(1, PEER_MAC, PEER, US)]);
    assert_eq!(node.clients[WEB].received(), [syn]);
    assert_eq!(node.clients[STRAY].received(), [broadcast_udp, limited]);
    assert_eq!(node.clients[ARPD].received().len(), 1);
    node.stats(WEB);
    assert!(node.logged("not for the node 4: not-our-mac 2, multicast 1, not-our-ip 1"), "{:#?}", node.log);
}

static LOG_NOW_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn log_now() -> u64 {
    LOG_NOW_NS.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn a_client_s_calls_log_at_most_their_budget_a_second_and_the_rest_is_summarized() {
    let mut node = Node::new();
    node.mux.set_clock(log_now);
    LOG_NOW_NS.store(10_000_000_000, std::sync::atomic::Ordering::Relaxed);
    let budget = LOG_LINES_PER_SECOND as usize;
    node.log.clear();
    // Refused installs, one line each, far more than the budget.
    for _ in 0..3 * budget {
        assert!(node.install(WEB, "udp dst 53", FilterKind::Exclusive).is_err());
    }
    assert_eq!(node.log.len(), budget);
    assert_eq!(node.mux.log_lines_suppressed(WEB), 2 * budget as u64);
    assert_eq!(node.counters(WEB).claims_refused, 3 * budget as u64, "every refusal still counted");
    // Another client's budget is its own.
    node.log.clear();
    node.stats(ARPD);
    assert!(node.logged("arpd: rx delivered"), "{:#?}", node.log);
    // A second later: one summary line, then the line.
    LOG_NOW_NS.store(11_000_000_000, std::sync::atomic::Ordering::Relaxed);
    node.log.clear();
    assert!(node.install(WEB, "udp dst 53", FilterKind::Exclusive).is_err());
    assert_eq!(node.log.len(), 2, "{:#?}", node.log);
    assert!(node.log[0].contains(&std::format!("web: {} log lines of its calls suppressed", 2 * budget)));
    assert!(node.log[1].contains("refused web's claim `udp dst 53`"));
}

#[test]
fn an_unreachable_quoting_a_datagram_whose_partial_checksum_was_completed_is_an_answer() {
    let mut node = Node::new();
    let mut datagram = inbound(17, &udp(5353, 9, b"from the host's own stack"));
    let sum = pseudo_sum(PEER, US, 17, datagram.len() - 34);
    datagram[34 + 6..34 + 8].copy_from_slice(&sum.to_be_bytes());
    assert!(node.driver.receive_with(&datagram, rx_partial_cookie(34, 6)));
    node.handle();
    // stray quotes its copy, whose checksum the demultiplexer completed.
    let copy = node.clients[STRAY].received().remove(0);
    assert_ne!(copy, datagram);
    let unreachable = answer(&copy, net_packet::reply::port_unreachable);
    node.clients[STRAY].send(0, &unreachable);
    node.handle();
    assert_eq!(node.driver.sent(), [unreachable]);
}

// --- Attach (a restarted client) ---------------------------------------------

/// A client's first Attach (at boot) changes nothing; a later one (after
/// a restart) removes its run-time filters and keeps its boot claims,
/// empties its four queues (queued frames and lent buffers dropped,
/// frames not taken dropped), forgets its in-place frames at the driver
/// (their slots still come back, their descriptors not), logs what it
/// did, and leaves the other clients alone.
#[test]
fn a_restarted_client_attaches_again_to_a_clean_slate() {
    let mut node = Node::new();
    let ok = |r: Result<Reply, MuxError>| assert!(matches!(r, Ok(Reply::Node(_))), "{r:?}");
    for client in 0..4 {
        ok(node.call(client, Request::Attach));
    }
    assert!(!node.logged("attached again"));
    assert_eq!(node.mux.table().filters().count(), 3);

    // Web's past life: an extra filter, an in-place frame at the driver, a
    // frame queued for it, and a frame it queued that is not taken yet.
    node.install(WEB, "tcp dst 8080", FilterKind::Exclusive).unwrap();
    let reply = web_reply(1000);
    let data = reply.len() - TCP_HEADERS;
    node.clients[WEB].tx_data.put(0, &reply[..TCP_HEADERS]);
    node.clients[WEB].send_descs(&[header_desc(0, TCP_HEADERS, 7), files_desc(0x1234, data, 8)]);
    node.handle();
    let in_place = node.driver.take_sent();
    assert_eq!(in_place.len(), 1);
    node.wire(&[&inbound(6, &tcp(40000, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n"))]);
    node.clients[WEB].send(0, &reply[..TCP_HEADERS]);
    let free_slots = node.mux.free_tx_slots();

    ok(node.call(WEB, Request::Attach));
    assert!(node.logged(
        "client 2 web attached again (restarted): its queues emptied, 2 filters removed and its boot claims installed again, 1 of its frames at the driver forgotten"
    ));
    let web_filters: Vec<Filter> =
        node.mux.table().filters().filter(|f| f.owner.index() == WEB).map(|f| f.filter).collect();
    assert_eq!(web_filters, [filter("tcp dst 80")]);

    // The restarted client's fresh handles see empty queues.
    let web = &mut node.clients[WEB];
    web.reopen();
    assert!(web.rx.active.dequeue().unwrap().is_none(), "the frame queued for it is dropped");
    assert!(web.tx.free.dequeue().unwrap().is_none());
    node.handle();
    assert!(node.driver.take_sent().is_empty(), "the frame it had not had taken is dropped");
    // The driver returns the in-place frame: the slot is free again, and
    // nothing goes to the client.
    node.driver.give_back(&in_place[0]);
    node.handle();
    assert_eq!(node.mux.free_tx_slots(), free_slots + 1);
    assert!(node.clients[WEB].returned().is_empty());

    // It starts over as at boot: lends buffers, receives, sends.
    node.clients[WEB].lend(0, 16);
    node.wire(&[&inbound(6, &tcp(40000, 80, 0x18, b"again"))]);
    assert_eq!(node.clients[WEB].received().len(), 1);
    node.clients[WEB].send(0, &reply[..TCP_HEADERS]);
    assert_eq!(node.drive(), 1);
    // The others were not touched: arpd still gets ARP.
    node.wire(&[&arp(1, PEER_MAC, PEER, US)]);
    assert_eq!(node.clients[ARPD].received().len(), 1);
}

// --- A restarted driver (net-protocol, "Starting over") ----------------------

/// The driver dies with buffers posted and frames in flight (one copied,
/// one web sent in place); its successor puts the restart marker on
/// `rx_active`. The demultiplexer stops there and asks for the Attach
/// call; once attached it takes back every slot (web gets its in-place
/// descriptors back), lends every buffer again, notifies the driver, and
/// traffic flows both ways as before.
#[test]
fn a_restarted_driver_is_attached_again_and_gets_every_buffer_back() {
    let mut node = Node::new();
    let full = node.mux.free_tx_slots();
    // One frame from the wire took a buffer; arpd sends a copied frame and
    // web an in-place one, and neither comes back.
    node.wire(&[&arp(1, PEER_MAC, PEER, US)]);
    assert_eq!(node.clients[ARPD].received().len(), 1);
    node.clients[ARPD].send(0, &arp(2, MAC, US, PEER));
    let reply = web_reply(1000);
    let data = reply.len() - TCP_HEADERS;
    node.clients[WEB].tx_data.put(0, &reply[..TCP_HEADERS]);
    node.clients[WEB].send_descs(&[header_desc(0, TCP_HEADERS, 7), files_desc(0x1234, data, 8)]);
    node.handle();
    assert_eq!(node.driver.take_sent().len(), 2);
    assert_eq!(node.mux.free_tx_slots(), full - 2);
    assert!(node.clients[ARPD].returned().len() == 1 && node.clients[WEB].returned().is_empty());

    // The driver restarts: a frame the old one received, then the marker.
    assert!(node.driver.receive(&arp(1, PEER_MAC, PEER, US)));
    node.driver.rx.active.enqueue(BufferDesc { offset: RX_RESTART_OFFSET, len: 0, cookie: 0 }).unwrap();
    let notify = node.handle();
    assert!(notify.driver_restarted && !notify.driver);
    assert_eq!(node.clients[ARPD].received().len(), 1, "the old driver's frame is delivered");
    // Nothing goes to the driver until it attached.
    node.clients[ARPD].send(0, &arp(2, MAC, US, PEER));
    assert!(node.handle().driver_restarted);
    assert!(node.driver.take_sent().is_empty());

    // The Attach call: the driver empties its side, then the
    // demultiplexer its own.
    node.driver.rx.reset();
    node.driver.tx.reset();
    let log = &mut node.log;
    node.mux.driver_attached(&mut |a| log.push(a.to_string()));
    assert!(node.logged(&format!(
        "the driver attached again (restarted): its queues emptied, {RX_BUFFERS} receive buffers lent again, 2 frames it had not sent dropped"
    )));
    assert_eq!(node.mux.free_tx_slots(), full);
    let returned = node.clients[WEB].returned();
    assert_eq!(returned.len(), 2, "web's in-place descriptors come back: the NIC reads them no more");
    let notify = node.handle();
    assert!(notify.driver && !notify.driver_restarted, "its signal requests were reset: notified anyway");
    assert_eq!(node.driver.lent(), RX_BUFFERS);
    // arpd's frame queued meanwhile goes out now, and frames come in.
    assert_eq!(node.driver.sent().len(), 1);
    node.wire(&[&arp(1, PEER_MAC, PEER, US)]);
    assert_eq!(node.clients[ARPD].received().len(), 1);
}

// --- Profile -----------------------------------------------------------------

/// Frames each way the per-frame profile runs.
const PROFILED_FRAMES: usize = 2000;

/// Not a check: the demultiplexer's work per frame, for `valgrind
/// --tool=callgrind` (as httpd-core's `profile_keep_alive_requests_and_syns`;
/// run this test binary with `--ignored --exact tests::profile_frames_each_way`
/// and read `Mux::handle`'s inclusive count). Each round: a request from
/// the wire for web (checksum verified by the device), which web takes and
/// lends back, then web's response (headers from `tx_data`, 1,000 bytes in
/// place), which the driver sends and gives back.
#[test]
#[ignore = "a profile, run under callgrind"]
fn profile_frames_each_way() {
    let mut node = Node::new();
    let request = inbound(6, &tcp(40000, 80, ACK, b"GET /index.html HTTP/1.1\r\nHost: node\r\n\r\n"));
    let reply = web_reply(1000);
    node.driver.files.put(0x1234, &reply[TCP_HEADERS..]);
    node.clients[WEB].tx_data.put(0, &reply[..TCP_HEADERS]);
    let descs = [header_desc(0, TCP_HEADERS, 7), files_desc(0x1234, reply.len() - TCP_HEADERS, 8)];
    for _ in 0..PROFILED_FRAMES {
        assert!(node.driver.receive_with(&request, RX_CSUM_VALID));
        node.handle();
        let web = &mut node.clients[WEB];
        let desc = web.rx.active.dequeue().unwrap().expect("the request delivered");
        web.lend(desc.offset as usize / RX_BUFFER_SIZE, 1);
        web.send_descs(&descs);
        node.handle();
        let sent = node.driver.take_sent();
        assert_eq!(sent.len(), 1);
        node.driver.give_back(&sent[0]);
        node.handle();
        assert_eq!(node.clients[WEB].returned().len(), 2);
    }
}
