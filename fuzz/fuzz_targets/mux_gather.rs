//! The demultiplexer's transmit path (`net-mux-core`, crate docs,
//! "Transmit"): a client's gather lists on its `tx_active` — descriptors in
//! its windows `Headers` (`tx_data`), `Rx` (`rx_data`), `Files` (the
//! `send_from` region) and `Payload`, offload descriptors, any `TX_MORE`
//! chaining — assembled into frames, checked segment by segment
//! (`Client::gather`), copied into a `tx_payload` slot, validated, and
//! handed to the driver; the descriptors given back to the client. The
//! `ipc` target decodes the descriptors and drives `FrameAssembler` alone;
//! this one drives the whole `Mux` between a simulated driver and two
//! simulated clients over host memory, as the crate's tests do.
//!
//! Input: the driver's offloads, then operations: a client writes bytes
//! (raw, or a frame it may send, then altered) into `tx_data` or
//! `rx_data`; a client queues a gather list (windows, offsets near what it
//! wrote or anywhere, lengths, an offload descriptor, well chained or with
//! fuzzed `TX_MORE` bits; once or many times over, enough to take every
//! slot or fill a queue); the client takes back what is on its
//! `tx_free`; the driver returns frames it was given, or a descriptor
//! that names no frame in flight. The demultiplexer handles after each.
//! Client 0 (TCP port 80) may send from a `send_from` region; client 1
//! (UDP port 5353) may not.
//!
//! Checks:
//! - **frames to the driver** are published whole, in one `tx_payload`
//!   slot not already in flight, each descriptor with the slot as cookie
//!   and `TX_MORE` on all but the last; their pieces lie inside that slot
//!   (window `Payload`) or inside the sending client's `send_from` region
//!   (window `Files`, the client's descriptor unchanged), an offload
//!   descriptor only first and well formed; at least `MIN_FRAME_LEN` and
//!   at most `MAX_FRAME_LEN` bytes (`MAX_TSO_FRAME_LEN` with TSO), at most
//!   `MAX_FRAME_LEN` of them copied; and each is exactly one of the
//!   clients' frames: its bytes the client's bytes, its in-place pieces the
//!   client's, in order;
//! - **verdicts**: the frames are those the documented assembly gives
//!   (ending at a descriptor without `TX_MORE`, cut at `MAX_TX_SEGMENTS`
//!   with the rest discarded); each is counted once, allowed or refused; a
//!   frame with a bad segment (out of the transmit space or its window,
//!   empty, too many, too long or short, in `Payload`, in `Files` without
//!   the grant or out of bounds, an offload descriptor not first or
//!   malformed) is never sent, and is refused for one of the faults it
//!   has; a frame without one is refused only for the later reasons
//!   (headers not all copied before in-place bytes, an offload the driver
//!   lacks or that does not fit, transmit validation), never "not an
//!   answer" (no client here has an answer policy);
//! - **what is allowed**: its copied headers parse, from the node's MAC
//!   and IPv4 address; with in-place pieces the copied bytes before the
//!   first hold the whole Ethernet, IPv4 and TCP/UDP headers; an offload
//!   request is one the driver has and matches those headers;
//! - **descriptors back**: every descriptor the client queued comes back
//!   on its `tx_free` exactly once, and those of a frame sent in place only
//!   after the driver returned the frame (the NIC reads the client's bytes
//!   until then); slots come free as the driver returns frames, and a
//!   descriptor naming no frame in flight is counted as an error and frees
//!   nothing;
//! - no panic and no arithmetic overflow.

#![no_main]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use fuzz::Input;
use lib_net_protocol::{
    split_tx_offset, tx_offset, TxOffload, TxWindow, CLIENT_RX_DATA_SIZE, CLIENT_RX_QUEUE_CAPACITY, MAX_FRAME_LEN,
    MAX_TSO_FRAME_LEN, MAX_TX_SEGMENTS, MIN_FRAME_LEN, OFFLOAD_ALL, RX_DATA_SIZE, RX_QUEUE_CAPACITY, TX_MORE,
    TX_PAYLOAD_SIZE, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_queue::{BufferDesc, QueueError, ReceiverQueues, SenderQueues};
use libfuzzer_sys::fuzz_target;
use net_config::{Claim, ClientConfig, Ipv4Address, NetConfig, NodeAddress, MAX_CLIENTS, TX_DATA_SIZE};
use net_filter::{Filter, FilterKind, TxRefused};
use net_mux_core::{ClientPort, DriverPort, Mux, SharedMemory, TxDrop, TX_HEADER_COPY, TX_SLOTS, TX_SLOT_SIZE};
use net_packet::{classify_headers, EthernetAddress};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const PEER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const US: [u8; 4] = [10, 0, 2, 15];
const PEER: [u8; 4] = [10, 0, 2, 2];
/// Bytes of client 0's `send_from` region.
const FILES: u64 = 0x10000;
const CLIENTS: usize = 2;

// --- Memory ---------------------------------------------------------------

const PAGE: usize = 4096;

/// A data region standing in for memory two PDs map: `len` bytes, zero
/// until written. The bytes outlive the input: each region's buffer comes
/// from a pool kept by the thread, and goes back to it when the last
/// handle is dropped, with the pages written zeroed again (only those:
/// the six regions are 6 MiB, most of it never touched). Allocating them
/// for each input, or keeping them as maps of pages, was most of the
/// target's time.
#[derive(Clone)]
struct Region {
    len: usize,
    memory: Rc<Memory>,
}

/// A region's bytes and the pages written since they were last zero.
struct Memory {
    bytes: RefCell<Vec<u8>>,
    /// A bit per page.
    dirty: RefCell<Vec<u64>>,
}

thread_local! {
    /// Zeroed buffers of the sizes the regions have.
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

impl Region {
    fn new(len: usize) -> Self {
        let reused = POOL.with_borrow_mut(|pool| pool.iter().position(|b| b.len() == len).map(|i| pool.swap_remove(i)));
        let bytes = reused.unwrap_or_else(|| vec![0; len]);
        let dirty = vec![0; len.div_ceil(PAGE).div_ceil(64)];
        Region { len, memory: Rc::new(Memory { bytes: RefCell::new(bytes), dirty: RefCell::new(dirty) }) }
    }

    /// Appends the `len` bytes at `offset` to `to` (no copy of its own:
    /// the checks read every frame's bytes, hundreds an input).
    fn append_to(&self, offset: usize, len: usize, to: &mut Vec<u8>) {
        assert!(self.inside(offset, len), "{offset:#x}+{len} outside a region of {:#x}", self.len);
        to.extend_from_slice(&self.memory.bytes.borrow()[offset..offset + len]);
    }

    /// Appends the `len` bytes at `offset` to the last of `pieces` if it
    /// is copied bytes, else as a new piece.
    fn append_piece(&self, offset: usize, len: usize, pieces: &mut Vec<Piece>) {
        if !matches!(pieces.last(), Some(Piece::Copied(_))) {
            pieces.push(Piece::Copied(Vec::new()));
        }
        let Some(Piece::Copied(bytes)) = pieces.last_mut() else { unreachable!() };
        self.append_to(offset, len, bytes);
    }

    fn inside(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(self.bytes.get_mut());
        for (word, &bits) in self.dirty.get_mut().iter().enumerate() {
            for bit in (0..64).filter(|b| bits >> b & 1 != 0) {
                let page = (word * 64 + bit) * PAGE;
                let end = (page + PAGE).min(bytes.len());
                bytes[page..end].fill(0);
            }
        }
        POOL.with_borrow_mut(|pool| pool.push(bytes));
    }
}

impl SharedMemory for Region {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        if !self.inside(offset, dst.len()) {
            return false;
        }
        dst.copy_from_slice(&self.memory.bytes.borrow()[offset..offset + dst.len()]);
        true
    }

    fn write(&self, offset: usize, src: &[u8]) -> bool {
        if !self.inside(offset, src.len()) {
            return false;
        }
        if !src.is_empty() {
            let mut dirty = self.memory.dirty.borrow_mut();
            for page in offset / PAGE..=(offset + src.len() - 1) / PAGE {
                dirty[page / 64] |= 1 << (page % 64);
            }
        }
        self.memory.bytes.borrow_mut()[offset..offset + src.len()].copy_from_slice(src);
        true
    }

    fn view<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        // In place: the demultiplexer writes no region while it views one.
        self.inside(offset, len).then(|| f(&self.memory.bytes.borrow()[offset..offset + len]))
    }
}

/// A queue region: page-aligned, large enough for every queue here. The
/// regions are made once per process and zeroed for each input.
struct QueueMemory(*mut u8);

thread_local! {
    static MEMORY: RefCell<Vec<QueueMemory>> = const { RefCell::new(Vec::new()) };
}

impl QueueMemory {
    const SIZE: usize = lib_queue::region_size(CLIENT_RX_QUEUE_CAPACITY);
    const LAYOUT: std::alloc::Layout = match std::alloc::Layout::from_size_align(Self::SIZE, PAGE) {
        Ok(l) => l,
        Err(_) => panic!("layout"),
    };

    fn new() -> Self {
        const _: () = assert!(lib_queue::region_size(TX_QUEUE_CAPACITY) <= QueueMemory::SIZE);
        const _: () = assert!(lib_queue::region_size(RX_QUEUE_CAPACITY) <= QueueMemory::SIZE);
        // SAFETY: a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(Self::LAYOUT) };
        assert!(!p.is_null());
        QueueMemory(p)
    }
}

impl Drop for QueueMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.0, Self::LAYOUT) }
    }
}

// --- The node ---------------------------------------------------------------

fn filter(text: &str) -> Filter {
    Filter::parse(text).unwrap()
}

fn config() -> NetConfig {
    let mut web = ClientConfig::new("web");
    web.add_grant(filter("tcp dst 80"));
    web.add_claim(Claim { filter: filter("tcp dst 80"), kind: FilterKind::Exclusive });
    web.send_from_size = FILES;
    let mut dns = ClientConfig::new("dns");
    dns.add_grant(filter("udp dst 5353"));
    dns.add_claim(Claim { filter: filter("udp dst 5353"), kind: FilterKind::Exclusive });
    let mut clients = [ClientConfig::new(""); MAX_CLIENTS];
    clients[..CLIENTS].copy_from_slice(&[web, dns]);
    NetConfig {
        node: NodeAddress { ipv4: Ipv4Address(US), prefix_len: 24, gateway: Some(Ipv4Address(PEER)) },
        me: None,
        arpd: None,
        clients,
        client_count: CLIENTS as u8,
    }
}

/// A client's side of its transmit queues, and what the target knows of
/// what it queued.
struct SimClient {
    tx: SenderQueues<'static, TX_QUEUE_CAPACITY>,
    rx_data: Region,
    tx_data: Region,
    /// Queued on `tx_active`, not yet taken by the demultiplexer.
    queued: std::collections::VecDeque<BufferDesc>,
    /// The frame being assembled (the documented assembly) and whether
    /// the rest of a cut frame is being discarded.
    pending: Vec<(BufferDesc, bool)>,
    discarding: bool,
    /// Descriptors queued and not yet back, and of those, the ones held
    /// with a frame the driver has not returned.
    outstanding: BTreeMap<(u64, u32, u32), usize>,
    held: BTreeMap<(u64, u32, u32), usize>,
    /// Where the last bytes were written: (window, offset, length).
    last_write: (TxWindow, u32, u32),
}

/// What the documented assembly makes of a client's descriptors.
#[derive(Clone, Debug)]
struct ModelFrame {
    client: usize,
    descs: Vec<BufferDesc>,
    too_many: bool,
    out_of_bounds: bool,
}

/// A frame's content as the driver sees it: copied bytes (consecutive
/// copied segments together) and in-place ranges (offset, length).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Copied(Vec<u8>),
    InPlace(u64, u32),
}

/// A frame the model expects may be allowed: its pieces and what checks
/// after gathering look at.
#[derive(Clone, Debug)]
struct Candidate {
    client: usize,
    descs: Vec<BufferDesc>,
    offload: Option<TxOffload>,
    pieces: Vec<Piece>,
    /// The copied bytes before the first in-place piece.
    checked: Vec<u8>,
    in_place: bool,
}

/// A frame the driver was given.
struct DriverFrame {
    slot: usize,
    /// The client and its descriptors, for a frame with in-place pieces.
    held: Option<(usize, Vec<BufferDesc>)>,
    descs: Vec<BufferDesc>,
    offload: Option<TxOffload>,
    pieces: Vec<Piece>,
}

/// A hash of the shape of what a frame carries (piece lengths, in-place
/// ranges), to find the client frame it may be.
fn content_hash(offload: Option<TxOffload>, pieces: &[Piece]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    offload.map(|o| (o.csum_start, o.csum_offset, o.hdr_len, o.flags, o.mss)).hash(&mut h);
    for p in pieces {
        match p {
            Piece::Copied(bytes) => (0u64, bytes.len() as u64).hash(&mut h),
            Piece::InPlace(offset, len) => (*offset, u64::from(*len)).hash(&mut h),
        }
    }
    h.finish()
}

fn key(d: &BufferDesc) -> (u64, u32, u32) {
    (d.offset, d.len, d.cookie)
}

fn add(map: &mut BTreeMap<(u64, u32, u32), usize>, d: &BufferDesc) {
    *map.entry(key(d)).or_default() += 1;
}

fn take(map: &mut BTreeMap<(u64, u32, u32), usize>, d: &BufferDesc) -> bool {
    match map.get_mut(&key(d)) {
        Some(n) if *n > 0 => {
            *n -= 1;
            if *n == 0 {
                map.remove(&key(d));
            }
            true
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    // The queue regions, zeroed for each input; made once and kept, so
    // they outlive every handle made on them.
    let memory = MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_empty() {
            m.extend((0..4 * (1 + CLIENTS)).map(|_| QueueMemory::new()));
        }
        for region in m.iter() {
            // SAFETY: each region is `QueueMemory::SIZE` bytes, and no
            // handle on it is left from the last input.
            unsafe { region.0.write_bytes(0, QueueMemory::SIZE) };
        }
        m.iter().map(|r| r.0).collect::<Vec<_>>()
    });
    let q = |i: usize| memory[i];
    let rx_data = Region::new(RX_DATA_SIZE);
    let tx_payload = Region::new(TX_PAYLOAD_SIZE);
    // SAFETY: each queue region is fresh, page-aligned, large enough and
    // lives until the end; each gets one producer and one consumer handle.
    let (driver_port, mut driver_tx) = unsafe {
        (
            DriverPort {
                rx: ReceiverQueues::new(q(0), q(1), RX_DATA_SIZE),
                tx: SenderQueues::new(q(2), q(3), TX_SPACE_LEN),
                rx_data: rx_data.clone(),
                tx_payload: tx_payload.clone(),
            },
            ReceiverQueues::<'static, TX_QUEUE_CAPACITY>::new(q(2), q(3), TX_SPACE_LEN),
        )
    };
    let mut ports = Vec::new();
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let base = 4 * (1 + n);
        let (rx_data, tx_data) = (Region::new(CLIENT_RX_DATA_SIZE), Region::new(TX_DATA_SIZE as usize));
        // SAFETY: as for the driver's.
        unsafe {
            ports.push(ClientPort {
                rx: SenderQueues::new(q(base), q(base + 1), CLIENT_RX_DATA_SIZE),
                tx: ReceiverQueues::new(q(base + 2), q(base + 3), TX_SPACE_LEN),
                rx_data: rx_data.clone(),
                tx_data: tx_data.clone(),
            });
            clients.push(SimClient {
                tx: SenderQueues::new(q(base + 2), q(base + 3), TX_SPACE_LEN),
                rx_data,
                tx_data,
                queued: Default::default(),
                pending: Vec::new(),
                discarding: false,
                outstanding: BTreeMap::new(),
                held: BTreeMap::new(),
                last_write: (TxWindow::Headers, 0, 0),
            });
        }
    }
    let config = config();
    // On the stack: boxed, its 186 KB were mapped, faulted in and unmapped
    // for every input.
    let mut mux = Mux::new(&config, MAC, driver_port, ports, &mut |_| {}).expect("the node starts");
    let offloads = u64::from(input.u8()) & OFFLOAD_ALL;
    mux.set_offloads(offloads, &mut |_| {});
    let mut node = Node { offloads, clients, in_flight: BTreeMap::new(), returned_frames: 0, errors: 0 };
    node.handle(&mut mux, &mut driver_tx, &tx_payload);

    let mut turns = 0;
    while !input.is_empty() && turns < 64 {
        turns += 1;
        let n = usize::from(input.u8());
        let c = n % CLIENTS;
        match n / CLIENTS % 8 {
            0 | 1 => node.write(c, &mut input),
            2..=4 => node.queue(c, &mut input),
            5 => node.reclaim(c),
            6 => node.driver_returns(&mut input, &mut driver_tx),
            _ => node.driver_bogus(&mut input, &mut driver_tx),
        }
        node.handle(&mut mux, &mut driver_tx, &tx_payload);
    }
    // The end: the driver returns everything, the clients take everything
    // back; every descriptor came back but those of a frame not finished.
    for _ in 0..64 {
        let all: Vec<usize> = node.in_flight.keys().copied().collect();
        for slot in all {
            if driver_tx.free.room().unwrap() >= node.in_flight[&slot].descs.len() {
                node.give_back(slot, &mut driver_tx);
            }
        }
        node.handle(&mut mux, &mut driver_tx, &tx_payload);
        for c in 0..CLIENTS {
            node.reclaim(c);
        }
        node.handle(&mut mux, &mut driver_tx, &tx_payload);
        if node.in_flight.is_empty() && node.clients.iter().all(|c| c.queued.is_empty()) {
            break;
        }
    }
    for c in 0..CLIENTS {
        node.reclaim(c);
    }
    assert_eq!(mux.free_tx_slots(), TX_SLOTS, "every slot free again");
    for (c, client) in node.clients.iter().enumerate() {
        let mut left = client.outstanding.clone();
        for d in client.queued.iter().chain(client.pending.iter().map(|(d, _)| d)) {
            assert!(take(&mut left, d), "client {c}: {d:?} came back before it was taken");
        }
        assert!(left.is_empty(), "client {c}: descriptors never came back: {left:?}");
        assert!(client.held.is_empty());
    }
    drop(mux);
    drop(node);
    drop(driver_tx);
});

struct Node {
    offloads: u64,
    clients: Vec<SimClient>,
    /// The frames at the driver, by slot.
    in_flight: BTreeMap<usize, DriverFrame>,
    returned_frames: u64,
    /// Descriptors given back that must be counted as errors.
    errors: u64,
}

impl Node {
    /// A client writes bytes into one of its regions.
    fn write(&mut self, c: usize, input: &mut Input<'_>) {
        let client = &mut self.clients[c];
        let rx = input.bool();
        let region = if rx { &client.rx_data } else { &client.tx_data };
        let offset = match input.u8() % 3 {
            0 => u32::from(input.u16()),
            1 => (region.len as u32).saturating_sub(u32::from(input.u16())),
            _ => u32::from(input.u8()) * 64,
        };
        let bytes = if input.bool() {
            let mut frame = template(c, input);
            for _ in 0..input.u8() % 4 {
                let at = input.below(frame.len());
                frame[at] = input.u8();
            }
            frame
        } else {
            input.piece().to_vec()
        };
        let fits = (region.len as u32).saturating_sub(offset).min(bytes.len() as u32) as usize;
        region.write(offset as usize, &bytes[..fits]);
        client.last_write = (if rx { TxWindow::Rx } else { TxWindow::Headers }, offset, fits as u32);
    }

    /// A client queues a gather list on its `tx_active`.
    fn queue(&mut self, c: usize, input: &mut Input<'_>) {
        let client = &mut self.clients[c];
        let mode = input.u8();
        let count = 1 + usize::from(mode & 0x1f) % 20;
        // The same list queued again and again (until tx_active is full):
        // enough frames to take every slot, or fill the client's tx_free.
        let times = if mode & 0x20 != 0 { 1 + usize::from(input.u8() % 32) } else { 1 };
        let chaining_fuzzed = mode & 0x80 != 0;
        let mut descs = Vec::new();
        let (last_window, last_offset, last_len) = client.last_write;
        let mut used = 0u32;
        if mode & 0x40 != 0 {
            let o = match input.u8() % 3 {
                0 => TxOffload::checksum(input.u8(), input.u8(), input.bool()),
                1 => TxOffload::tso4(input.u8(), input.u8(), input.u16()),
                _ => TxOffload {
                    csum_start: input.u8(),
                    csum_offset: input.u8(),
                    hdr_len: input.u8(),
                    flags: input.u8(),
                    mss: input.u16(),
                },
            };
            descs.push(o.to_desc(0));
        }
        for _ in 0..count {
            let choice = input.u8();
            let window = match choice % 8 {
                0..=2 => last_window,
                3 => TxWindow::Headers,
                4 => TxWindow::Rx,
                5 => TxWindow::Files,
                6 => TxWindow::Payload,
                _ => TxWindow::Offload,
            };
            let offset = match choice / 8 % 4 {
                0 => last_offset.wrapping_add(used),
                1 => input.u32(),
                2 => u32::from(input.u16()),
                _ => last_offset.wrapping_add(u32::from(input.u16())),
            };
            let len = match choice / 32 % 4 {
                0 => last_len.saturating_sub(used).min(1 + u32::from(input.u16() % 2048)),
                1 => u32::from(input.u8()),
                2 => u32::from(input.u16()),
                _ => input.u32(),
            };
            used = used.saturating_add(len);
            let raw = choice & 0x80 != 0 && input.bool();
            let offset = if raw { input.u64() } else { tx_offset(window, offset) };
            descs.push(BufferDesc { offset, len, cookie: u32::from(input.u8()) });
        }
        let n = descs.len();
        for (i, d) in descs.iter_mut().enumerate() {
            let more = if chaining_fuzzed { input.bool() } else { i + 1 < n };
            d.cookie = (d.cookie & !TX_MORE) | if more { TX_MORE } else { 0 };
        }
        for _ in 0..times {
            let Ok(room) = client.tx.active.room() else { panic!("the client's tx_active is corrupt") };
            let n = n.min(room);
            assert_eq!(client.tx.active.enqueue_batch(&descs[..n]), Ok(n));
            for d in &descs[..n] {
                client.queued.push_back(*d);
                add(&mut client.outstanding, d);
            }
        }
    }

    /// A client takes back what is on its `tx_free`.
    fn reclaim(&mut self, c: usize) {
        let client = &mut self.clients[c];
        loop {
            let d = match client.tx.free.dequeue() {
                Ok(Some(d)) => d,
                Ok(None) => return,
                // A bad descriptor comes back as it was sent.
                Err(QueueError::OutOfBounds(d)) => d,
                Err(e) => panic!("client {c}'s tx_free: {e:?}"),
            };
            let held = client.held.get(&key(&d)).copied().unwrap_or(0);
            let out = client.outstanding.get(&key(&d)).copied().unwrap_or(0);
            assert!(
                out > held,
                "client {c}: {d:?} back {}",
                if out > 0 { "while the driver still reads it" } else { "but never queued, or twice" }
            );
            take(&mut client.outstanding, &d);
        }
    }

    /// The driver returns some of the frames it was given.
    fn driver_returns(&mut self, input: &mut Input<'_>, driver: &mut ReceiverQueues<'static, TX_QUEUE_CAPACITY>) {
        let count = input.u8() % 8;
        for _ in 0..count {
            if self.in_flight.is_empty() {
                return;
            }
            let slot = *self.in_flight.keys().nth(input.below(self.in_flight.len())).unwrap();
            self.give_back(slot, driver);
        }
    }

    fn give_back(&mut self, slot: usize, driver: &mut ReceiverQueues<'static, TX_QUEUE_CAPACITY>) {
        if driver.free.room().unwrap() < self.in_flight[&slot].descs.len() {
            return;
        }
        let frame = self.in_flight.remove(&slot).unwrap();
        assert_eq!(driver.free.enqueue_batch(&frame.descs), Ok(frame.descs.len()));
        self.returned_frames += 1;
        // The NIC no longer reads the client's bytes: its descriptors may
        // come back.
        if let Some((c, descs)) = frame.held {
            for d in &descs {
                assert!(take(&mut self.clients[c].held, d));
            }
        }
    }

    /// The driver gives back a descriptor of no frame in flight (one that
    /// names a slot in flight has `TX_MORE`, so frees nothing).
    fn driver_bogus(&mut self, input: &mut Input<'_>, driver: &mut ReceiverQueues<'static, TX_QUEUE_CAPACITY>) {
        let mut d = BufferDesc { offset: input.u64(), len: input.u32(), cookie: input.u32() };
        if input.bool() {
            d.offset = tx_offset(TxWindow::Payload, input.u32() % TX_PAYLOAD_SIZE as u32);
            d.len %= 2048;
        }
        let slot = (d.cookie & !TX_MORE) as usize;
        let in_flight = self.in_flight.contains_key(&slot);
        if in_flight {
            d.cookie |= TX_MORE;
        }
        let in_range = d.is_within(TX_SPACE_LEN)
            && match split_tx_offset(d.offset) {
                Some((TxWindow::Payload, o)) => {
                    (slot * TX_SLOT_SIZE..(slot + 1) * TX_SLOT_SIZE).contains(&(o as usize))
                }
                Some((TxWindow::Files | TxWindow::Offload, _)) => true,
                _ => false,
            };
        if driver.free.enqueue(d).is_ok() && !(in_flight && in_range) {
            self.errors += 1;
        }
    }

    /// One wake-up of the demultiplexer, and everything it did checked.
    fn handle(
        &mut self,
        mux: &mut Mux<'static, Region>,
        driver: &mut ReceiverQueues<'static, TX_QUEUE_CAPACITY>,
        tx_payload: &Region,
    ) {
        // Arrays, not vectors: this runs a hundred times an input or more,
        // and each allocation costs AddressSanitizer a stack trace.
        let before: [_; CLIENTS] = std::array::from_fn(|c| mux.client_counters(c).unwrap());
        let driver_before = mux.driver_counters();
        let queued: [usize; CLIENTS] = std::array::from_fn(|c| self.clients[c].tx.active.len().unwrap());
        mux.handle();
        let driver_after = mux.driver_counters();
        assert_eq!(driver_after.errors - driver_before.errors, self.errors, "errors counted for bad returns");
        self.errors = 0;
        // What each client's taken descriptors make, by the documented assembly.
        let mut frames: Vec<ModelFrame> = Vec::new();
        for (c, client) in self.clients.iter_mut().enumerate() {
            let taken = queued[c] - client.tx.active.len().unwrap();
            for _ in 0..taken {
                let d = client.queued.pop_front().unwrap();
                let last = d.cookie & TX_MORE == 0;
                if client.discarding {
                    client.discarding = !last;
                    continue;
                }
                client.pending.push((d, !d.is_within(TX_SPACE_LEN)));
                if !last && client.pending.len() < MAX_TX_SEGMENTS {
                    continue;
                }
                if !last {
                    client.discarding = true;
                }
                let pending = std::mem::take(&mut client.pending);
                frames.push(ModelFrame {
                    client: c,
                    out_of_bounds: pending.iter().any(|(_, oob)| *oob),
                    descs: pending.into_iter().map(|(d, _)| d).collect(),
                    too_many: !last,
                });
            }
        }
        // Each frame counted once; those with a fault never allowed.
        let mut candidates: Vec<Option<Candidate>> = Vec::new();
        for c in 0..CLIENTS {
            let after = mux.client_counters(c).unwrap();
            let allowed = after.tx_allowed - before[c].tx_allowed;
            let refused: [u64; TxDrop::COUNT] = std::array::from_fn(|i| after.tx_refused[i] - before[c].tx_refused[i]);
            let mine: Vec<&ModelFrame> = frames.iter().filter(|f| f.client == c).collect();
            assert_eq!(
                allowed + refused.iter().sum::<u64>(),
                mine.len() as u64,
                "client {c}: every frame counted once"
            );
            for i in [TxDrop::NotAnAnswer.index(), TxDrop::AnswerRateLimited.index()] {
                assert_eq!(refused[i], 0, "client {c}: {} without an answer policy", TxDrop::name_of(i));
            }
            let mut faultless = 0;
            for f in &mine {
                let (faults, candidate) = self.model_gather(f);
                if faults.is_empty() {
                    faultless += 1;
                    candidates.push(Some(candidate));
                }
                if mine.len() == 1 {
                    let reason = refused.iter().position(|&n| n == 1);
                    match reason {
                        None => assert!(faults.is_empty(), "client {c}: allowed despite {faults:?}: {f:?}"),
                        Some(i) if !faults.is_empty() => assert!(
                            faults.iter().any(|d| d.index() == i),
                            "client {c}: refused as {} but its faults are {faults:?}: {f:?}",
                            TxDrop::name_of(i)
                        ),
                        Some(i) => {
                            let later = [TxDrop::InPlaceHeaders, TxDrop::OffloadUnavailable, TxDrop::OffloadMismatch];
                            assert!(
                                i < TxRefused::COUNT || later.iter().any(|d| d.index() == i),
                                "client {c}: a frame without a bad segment refused as {}: {f:?}",
                                TxDrop::name_of(i)
                            );
                            let offload = f.descs.first().and_then(TxOffload::from_desc);
                            if i == TxDrop::OffloadUnavailable.index() {
                                assert!(offload.is_some_and(|o| o.needs() & !self.offloads != 0));
                            }
                        }
                    }
                }
            }
            assert!(allowed <= faultless, "client {c}: {allowed} allowed of {faultless} frames without a fault");
        }
        // The frames the driver was given: whole, in their slot, and each
        // one of the candidates.
        let mut by_content: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, c) in candidates.iter().enumerate().rev() {
            let c = c.as_ref().unwrap();
            by_content.entry(content_hash(c.offload, &c.pieces)).or_default().push(i);
        }
        let mut sent = 0;
        loop {
            let Some(frame) = self.take_frame(driver, tx_payload) else { break };
            sent += 1;
            let same = by_content.get_mut(&content_hash(frame.offload, &frame.pieces));
            let at = same
                .and_then(|same| {
                    let k = same.iter().rposition(|&i| {
                        candidates[i].as_ref().is_some_and(|c| c.offload == frame.offload && c.pieces == frame.pieces)
                    })?;
                    Some(same.remove(k))
                })
                .unwrap_or_else(|| panic!("a frame no client sent: {:?}", frame.pieces));
            let candidate = candidates[at].take().unwrap();
            self.check_allowed(&candidate);
            let mut frame = frame;
            if candidate.in_place {
                for d in &candidate.descs {
                    add(&mut self.clients[candidate.client].held, d);
                }
                frame.held = Some((candidate.client, candidate.descs));
            }
            assert!(self.in_flight.insert(frame.slot, frame).is_none());
        }
        assert_eq!(sent, driver_after.tx_frames - driver_before.tx_frames);
        let in_flight = driver_after.tx_frames - self.returned_frames;
        assert_eq!(mux.free_tx_slots() as u64, TX_SLOTS as u64 - in_flight, "slots free as frames come back");
        assert_eq!(in_flight, self.in_flight.len() as u64);
    }

    /// Takes one frame off the driver's `tx_active` and checks its form.
    fn take_frame(
        &mut self,
        driver: &mut ReceiverQueues<'static, TX_QUEUE_CAPACITY>,
        tx_payload: &Region,
    ) -> Option<DriverFrame> {
        let mut frame = DriverFrame {
            slot: 0,
            held: None,
            descs: Vec::with_capacity(MAX_TX_SEGMENTS),
            offload: None,
            pieces: Vec::with_capacity(MAX_TX_SEGMENTS),
        };
        let (mut copied, mut total) = (0usize, 0usize);
        loop {
            let d = match driver.active.dequeue() {
                Ok(Some(d)) => d,
                Ok(None) => {
                    assert!(frame.descs.is_empty(), "a frame published in part: {:?}", frame.descs);
                    return None;
                }
                Err(e) => panic!("the driver's tx_active: {e:?}"),
            };
            let slot = (d.cookie & !TX_MORE) as usize;
            if frame.descs.is_empty() {
                assert!(slot < TX_SLOTS && !self.in_flight.contains_key(&slot), "slot {slot} already in flight");
                frame.slot = slot;
            }
            assert_eq!(slot, frame.slot, "one slot per frame");
            let (window, offset) = split_tx_offset(d.offset).expect("a descriptor in the transmit space");
            match window {
                TxWindow::Offload => {
                    assert!(frame.descs.is_empty(), "the offload descriptor comes first");
                    frame.offload = Some(TxOffload::from_desc(&d).expect("a well-formed offload descriptor"));
                }
                TxWindow::Payload => {
                    let start = slot * TX_SLOT_SIZE;
                    let o = offset as usize;
                    assert!(d.len > 0 && o == start + copied, "copied pieces one after the other in the slot");
                    assert!(o + d.len as usize <= start + TX_SLOT_SIZE, "a piece beyond its slot");
                    tx_payload.append_piece(o, d.len as usize, &mut frame.pieces);
                    copied += d.len as usize;
                    total += d.len as usize;
                }
                TxWindow::Files => {
                    assert!(d.len > 0 && u64::from(offset) + u64::from(d.len) <= FILES, "outside send_from");
                    frame.pieces.push(Piece::InPlace(d.offset, d.len));
                    total += d.len as usize;
                }
                other => panic!("the demultiplexer sends from tx_payload and send_from only, not {other:?}"),
            }
            frame.descs.push(d);
            if d.cookie & TX_MORE == 0 {
                break;
            }
            assert!(frame.descs.len() < MAX_TX_SEGMENTS, "more descriptors than a frame has");
        }
        let max = if frame.offload.is_some_and(|o| o.tso()) { MAX_TSO_FRAME_LEN } else { MAX_FRAME_LEN };
        assert!((MIN_FRAME_LEN..=max).contains(&total) && copied <= MAX_FRAME_LEN, "{total} bytes, {copied} copied");
        Some(frame)
    }

    /// The faults the crate documents for a frame's segments (every one
    /// found, not just the first), and the frame the driver should get if
    /// it has none.
    fn model_gather(&self, f: &ModelFrame) -> (Vec<TxDrop>, Candidate) {
        let client = &self.clients[f.client];
        let granted = f.client == 0;
        let mut faults = Vec::new();
        if f.too_many {
            faults.push(TxDrop::TooManySegments);
        }
        if f.out_of_bounds {
            faults.push(TxDrop::BadDescriptor);
        }
        let mut c = Candidate {
            client: f.client,
            descs: f.descs.clone(),
            offload: None,
            pieces: Vec::with_capacity(f.descs.len()),
            checked: Vec::new(),
            in_place: false,
        };
        let mut max = MAX_FRAME_LEN;
        let (mut total, mut copied) = (0usize, 0usize);
        for (i, d) in f.descs.iter().enumerate() {
            let Some((window, offset)) = split_tx_offset(d.offset) else {
                faults.push(TxDrop::BadDescriptor);
                continue;
            };
            if window == TxWindow::Offload {
                match TxOffload::from_desc(d).filter(|_| i == 0) {
                    Some(o) => {
                        if o.tso() {
                            max = MAX_TSO_FRAME_LEN;
                        }
                        c.offload = Some(o);
                    }
                    None => faults.push(TxDrop::OffloadMismatch),
                }
                continue;
            }
            let len = d.len as usize;
            if len == 0 {
                faults.push(TxDrop::BadDescriptor);
            }
            total += len;
            if total > max {
                faults.push(TxDrop::BadLength);
            }
            let region = match window {
                TxWindow::Headers => &client.tx_data,
                TxWindow::Rx => &client.rx_data,
                TxWindow::Payload => {
                    faults.push(TxDrop::PayloadWindow);
                    continue;
                }
                TxWindow::Offload => unreachable!(),
                TxWindow::Files => {
                    if !granted {
                        faults.push(TxDrop::InPlaceNotGranted);
                    } else if u64::from(offset) + u64::from(d.len) > FILES {
                        faults.push(TxDrop::InPlaceOutOfBounds);
                    }
                    c.pieces.push(Piece::InPlace(d.offset, d.len));
                    c.in_place = true;
                    continue;
                }
            };
            copied += len;
            if copied > MAX_FRAME_LEN {
                faults.push(TxDrop::BadLength);
                continue;
            }
            if !region.inside(offset as usize, len) {
                faults.push(TxDrop::BadDescriptor);
                continue;
            }
            if !c.in_place {
                region.append_to(offset as usize, len, &mut c.checked);
            }
            region.append_piece(offset as usize, len, &mut c.pieces);
        }
        if total < MIN_FRAME_LEN {
            faults.push(TxDrop::BadLength);
        }
        (faults, c)
    }

    /// What an allowed frame must be: its headers the node's, whole before
    /// any in-place byte, its offload request one the driver has and
    /// fitting those headers.
    fn check_allowed(&self, c: &Candidate) {
        let headers = &c.checked[..c.checked.len().min(TX_HEADER_COPY)];
        let parsed = classify_headers(headers).expect("an allowed frame's headers parse");
        assert_eq!(parsed.src_mac, EthernetAddress(MAC), "sent from the node's MAC");
        if let Some(ip) = parsed.ipv4() {
            assert_eq!(ip.src.0, US, "sent from the node's address");
        }
        let end = transport_end(&c.checked);
        if c.in_place {
            assert!(end.is_some_and(|(end, _, _)| end <= c.checked.len()), "in-place bytes inside the headers");
        }
        if let Some(o) = c.offload {
            assert_eq!(o.needs() & !self.offloads, 0, "an offload the driver lacks");
            let (end, start, tcp) = end.expect("an offloaded frame is TCP or UDP over IPv4");
            assert!(end <= c.checked.len(), "offloaded headers not all copied");
            assert_eq!((o.csum_start as usize, o.hdr_len as usize), (start, end), "{o:?}");
            assert_eq!(o.csum_offset, if tcp { 16 } else { 6 });
            assert!(!o.tso() || (tcp && end + o.mss as usize <= MAX_FRAME_LEN), "{o:?}");
        }
    }
}

/// For TCP or UDP over IPv4: where the transport header ends and starts,
/// and whether it is TCP (read from the fields, as far as there are
/// bytes).
fn transport_end(b: &[u8]) -> Option<(usize, usize, bool)> {
    if b.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let start = 14 + 4 * usize::from(b.get(14)? & 0xf);
    match *b.get(23)? {
        6 => Some((start + 4 * usize::from(b.get(start + 12)? >> 4), start, true)),
        17 => Some((start + 8, start, false)),
        _ => None,
    }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|p| u32::from(p[0]) << 8 | u32::from(*p.get(1).unwrap_or(&0))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame client `c` may send: TCP from port 80 (client 0) or UDP from
/// port 5353 (client 1), from the node to the peer, with a fuzzed payload
/// length.
fn template(c: usize, input: &mut Input<'_>) -> Vec<u8> {
    let payload = usize::from(input.u16()) % 1461;
    let transport = if c == 0 {
        let mut t = vec![0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0];
        t.resize(20 + payload, b'x');
        t
    } else {
        let len = (8 + payload) as u16;
        let mut t = [&5353u16.to_be_bytes()[..], &5353u16.to_be_bytes(), &len.to_be_bytes(), &[0, 0]].concat();
        t.resize(8 + payload, b'y');
        t
    };
    let total = (20 + transport.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, if c == 0 { 6 } else { 17 }, 0, 0]);
    ip.extend_from_slice(&US);
    ip.extend_from_slice(&PEER);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    [&PEER_MAC[..], &MAC, &[0x08, 0x00], &ip, &transport].concat()
}
