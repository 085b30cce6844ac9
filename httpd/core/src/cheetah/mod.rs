//! The Cheetah server: HTTP on net-tcp, the server-only TCP made for
//! serving files, instead of smoltcp ([`crate::server`] is kept as the
//! other variant).
//!
//! # Per received frame
//!
//! Each frame is parsed with net-packet: Ethernet (to the node's MAC or
//! broadcast, IPv4), IPv4 (header checksum, no fragments, to the node's
//! address), TCP (its checksum verified unless the frame says the device
//! or the demultiplexer did: [`crate::device::Received::checksum_verified`]).
//! Then, for the server's port, in this order:
//!
//! 1. **A known connection** (the [`table`]'s 4-tuple index): the segment
//!    goes to net-tcp's [`Conn::on_segment`] (RFC 9293 §3.10.7.4 with RFC
//!    5961's checks), its data into the request buffer.
//! 2. **A TIME-WAIT record** ([`TimeWaitTable::on_segment`]): the ACK
//!    sent again (rate-limited, RFC 5961 §7), nothing, or — a new SYN
//!    beyond the old sequence space (RFC 1122 §4.2.2.13) — on to LISTEN.
//! 3. **A SYN** (no ACK): a SYN-ACK whose sequence number is a SYN cookie
//!    (RFC 4987 §3.6, [`CookieJar::encode`]) carrying the peer's MSS and
//!    window scale, offering MSS 1460 and window scaling if the peer did
//!    (RFC 7323 §1.3). **No state is kept**, so no rate of SYNs from any
//!    number of addresses fills anything.
//! 4. **An ACK with a valid cookie** (the handshake's last segment, or the
//!    first data segment carrying the same acknowledgment): a connection in
//!    the table, and the segment is processed on it. If the table is full,
//!    or the source already has [`Settings::max_per_source`] connections,
//!    the segment is dropped (counted); the cookie stays valid for its
//!    lifetime (60–120 s), so the client's retransmission may succeed.
//! 5. **A bare ACK without a valid cookie** (no data, no FIN): dropped.
//!    RFC 9293 §3.10.7.2 answers any ACK in LISTEN with a reset, but a
//!    stateless server is "in LISTEN" for every handshake in flight, and
//!    the cookie is checked against the peer's ISN, which only the
//!    handshake's last ACK and the first data segment show
//!    (`SEG.SEQ - 1`): a later bare ACK of an established peer (a
//!    duplicate SYN-ACK's acknowledgment, overtaking the request it
//!    follows on a reordering path) would be reset. Seen on the bad link
//!    (`xtask/src/itest/badlink.rs`): one wrk connection in ~13,000 reset.
//!    A bare ACK carries nothing to lose; data and FINs of dead
//!    connections still get the reset below.
//! 6. **Anything else without a RST**: a reset (RFC 9293 §3.10.7.1: `<SEQ=SEG.ACK><CTL=RST>`
//!    if the ACK bit is on, else `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`),
//!    at most [`RSTS_PER_SECOND`] per second (as `stray`) — unless its
//!    acknowledgment is a cookie made for an ISN up to ten segments before
//!    it ([`CookieJar::acknowledges_earlier`]): a later segment of a
//!    request whose first segment (and the handshake's last ACK) was lost
//!    or overtaken. It is dropped; the peer retransmits its first segment,
//!    which opens the connection. A reset killed it before: seen once in
//!    CI on the bad link, as `Connection reset by peer` in the error
//!    checks, whose 5 KB and 16 KB requests span several segments. The check runs only within the
//!    reset budget, so it costs at most [`RSTS_PER_SECOND`] × 50 cookie
//!    checks a second.
//!
//! # Per connection
//!
//! HTTP is http-core's, as the smoltcp server's [`crate::slot`] does it:
//! keep-alive, pipelining, GET/HEAD, errors, `304`, ranges, the store's
//! `Ready`/`Wait`/`Fail` before a response's first byte, `Date`. The
//! connection's output is a stream ([`stream`]): response heads in a head
//! ring kept until acknowledged, file ranges sent in place from the cache
//! (the smoltcp server's [`Outgoing`](crate::inplace::Outgoing) extents,
//! pins and piece sums). A body longer than one checksummed piece is
//! appended once everything before it has been sent, so its segments start
//! on piece boundaries and their sums are the image's. Each
//! [`Transmit`] becomes one frame through [`Link::send_gather`]: Ethernet
//! (next hop from [`Neighbours`]), IPv4, TCP ([`TcpHeader::emit`]), head
//! bytes copied, file bytes named in place, the checksum from the sums.
//!
//! # Segmentation offload
//!
//! When the driver has TCP segmentation and checksum offload (virtio
//! `HOST_TSO4` and `CSUM`, told by the demultiplexer's `Node` reply) and
//! [`Settings::offload`] is on, file data goes in *bursts*: net-tcp's
//! [`Conn::poll_with`] may send up to [`MAX_BURST`] bytes that lie in one
//! in-place run of the cache ([`Outgoing::in_place_run`](crate::inplace::Outgoing::in_place_run)),
//! a whole number of SMSS-sized packets (but for the stream's last). The
//! frame is the 54 bytes of headers in the transmit buffer and the run
//! named in place, with an offload request (`TxOffload::tso4`): the
//! device cuts it into packets and computes each checksum, so the TCP
//! checksum field holds only the pseudo-header sum over the whole segment
//! (as Linux's `__tcp_v4_send_check` leaves it) and no piece sum is read.
//! One frame through the demultiplexer and the driver then carries up to
//! 44 packets; that per-frame cost, not bytes, is what QEMU's TCG and the
//! PDs pay. Heads and the first piece of a body (which shares a segment
//! with the head) go as ordinary segments with the image's sums.
//!
//! When a connection reaches TIME-WAIT it becomes a 24-byte record in the
//! TIME-WAIT table and its slot and work context are freed at once (pins
//! still referenced by frames in the NIC wait for them to come back);
//! CLOSED frees the slot.
//!
//! # Memory
//!
//! A connection slot ([`table::Slot`]: net-tcp's connection, the 4-tuple,
//! timestamps) costs [`connection_bytes`] with its index entries. The
//! request buffer, the head ring and the extents are a *work context*
//! ([`stream::Work`]) taken from a pool only while the connection has work:
//! part of a request received, a response pending or unacknowledged. An
//! idle keep-alive connection holds none. [`Layout`] carves the region:
//! the TIME-WAIT table, half of the rest for work contexts (at most
//! [`MAX_WORKS`]), and the remainder for slots.
//!
//! # Hostile clients
//!
//! - **Header deadline** ([`Settings::header_timeout_ns`], default
//!   [`HEADER_TIMEOUT_NS`]): a request must arrive whole within this time
//!   of its first byte, however often bytes trickle in; else `408` and
//!   close (a connection that sent nothing of a request is closed quietly
//!   by the idle timeout).
//! - **Idle keep-alive** ([`Settings::idle_timeout_ns`], default
//!   [`IDLE_TIMEOUT_NS`]): a connection with nothing pending and nothing
//!   received for this long is closed (FIN).
//! - **Per source** ([`Settings::max_per_source`], default
//!   [`MAX_PER_SOURCE`]): connections from one address (see
//!   [`table`]: counted exactly per address, never shared); and the work
//!   contexts (request buffers) their requests hold: once no more than a
//!   share of them is free (a quarter, [`WORK_SHARE_PER_SOURCE`], or
//!   [`Settings::max_works_per_source`] if fewer), a source that holds
//!   that share or more gets no more, so one address that trickles a
//!   thousand requests (slowloris) leaves a quarter of the buffers to the
//!   others, while one busy client (a benchmark, a NAT) may use all it
//!   needs as long as they are plentiful. Data of a connection refused so
//!   is not taken (counted in `source_works_refused`); the peer sends it
//!   again.
//! - **Slow reader.** A peer that stops reading (zero window) keeps its
//!   pins while net-tcp probes the window; net-tcp gives up with a RST
//!   at the first expiry of the retransmission timer after
//!   [`net_tcp::conn::MAX_RETRIES`] (8) expiries in a row without progress
//!   (a probe answered with a zero window is no progress). The timer
//!   starts at the RTO (at least 200 ms, RFC 6298) and doubles up to 60 s,
//!   so the worst case from the last progress is 0.2 + 0.4 + ... + 51.2 s
//!   = 102 s when the RTO was at its minimum (the test
//!   `a_reader_with_a_closed_window_is_given_up_and_its_pins_go_back`
//!   measures it), and at most 9 × 60 s = 9 minutes for a peer whose
//!   measured round trip made the RTO 60 s. Its pins are released when the
//!   frames that may read them (the RST's included) come back.
//! - **FIN-WAIT-2** lasts at most net-tcp's 60 s.
//!
//! Nothing here allocates; every table is carved at start.

pub mod stream;
pub mod table;

#[cfg(test)]
mod tests;

use crate::arena::Arena;
use crate::device::{
    strip_ethernet, write_ethernet, DeviceCounters, Link, Neighbours, Resolution, Unanswered, MAX_FRAME,
};
use crate::inplace::{segment_checksum, InPlace, InPlaceList, Planned, PIECE};
use crate::site::{Fetch, Store};
use crate::slotset::SlotSet;
use http_core::{write_closing_error, DateCache, Poll, Status};
use lib_net_protocol::{TxOffload, OFFLOAD_TSO4, OFFLOAD_TX_CSUM};
use net_config::{Ipv4Address, NodeAddress};
use net_packet::tcp::{TcpFlags, TcpHeader, TcpOptions};
use net_packet::{tcp, IpProtocol, Ipv4Packet, TcpSegment};
use net_tcp::accept::ChallengeLimiter;
use net_tcp::conn::{Config, Conn, Incoming, State, Transmit};
use net_tcp::cookie::{CookieJar, FourTuple};
use net_tcp::seq::Seq;
use net_tcp::timewait::{Arrival, Decision, TimeWaitTable};
use stream::{Work, MAX_HEAD, REQUEST_BUFFER};
use table::{Slot, SourceCount, Table};

/// Nanoseconds in a second and a millisecond.
pub const SECOND_NS: u64 = 1_000_000_000;
const MS_NS: u64 = 1_000_000;

/// A request must be received whole within 10 s of its first byte.
pub const HEADER_TIMEOUT_NS: u64 = 10 * SECOND_NS;
/// An idle keep-alive connection is closed after 15 s (as the smoltcp
/// server's idle timeout).
pub const IDLE_TIMEOUT_NS: u64 = 15 * SECOND_NS;
/// Connections one source address may hold. Behind a NAT (QEMU's user
/// network, a carrier's) many clients share an address, so this is far
/// above one browser's handful; it keeps one address from taking the
/// whole table.
pub const MAX_PER_SOURCE: u16 = 1024;
/// When no more than 1/4 of the work contexts are free, a source holding
/// 1/4 or more of them gets no more (module docs, "Per source").
pub const WORK_SHARE_PER_SOURCE: usize = 4;
/// Resets to segments for no connection, and ACKs from TIME-WAIT records,
/// per second (as `stray`'s 100/s).
pub const RSTS_PER_SECOND: u32 = 100;
/// TIME-WAIT records (32 bytes each with their links: 128 KiB). When full
/// the oldest goes first (net-tcp's `timewait` module docs: why that is
/// safe).
pub const TIME_WAIT_RECORDS: usize = 4096;
/// Most work contexts whatever the region.
pub const MAX_WORKS: usize = 1024;
/// Most connection slots whatever the region.
pub const MAX_CONNECTIONS: usize = 1 << 20;
/// Frames taken from the link per poll before the server yields.
const MAX_FRAMES_PER_POLL: usize = 256;
/// Most payload bytes in one burst the device segments: an IPv4 packet's
/// most (65535) less the IPv4 and TCP headers.
pub const MAX_BURST: u64 = 65_535 - 40;
/// Rounds of "serve, send" per connection visit.
const MAX_SERVE_ROUNDS: usize = 64;

/// The server's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The TCP port served.
    pub port: u16,
    pub idle_timeout_ns: u64,
    pub header_timeout_ns: u64,
    pub max_per_source: u16,
    /// The share of the work contexts kept for the other sources when few
    /// are free, if fewer than [`WORK_SHARE_PER_SOURCE`]'s (module docs,
    /// "Per source").
    pub max_works_per_source: u16,
    /// Unix time (seconds) when the clock read 0 (`Date`).
    pub boot_epoch: u64,
    /// Secret seed of the SYN cookies and the hash tables (16 bytes from
    /// the caller's entropy). The cookie secret is rotated every
    /// `net_tcp::cookie::SECRET_ROTATION_MS` to keys derived from it
    /// (SipHash as a PRF: one leaked key does not give the others).
    pub seed: [u8; 16],
    /// Whether the NIC may send from the store's region. Cheetah sends
    /// bodies only in place: without it, responses with a body are `500`.
    pub send_in_place: bool,
    /// Use the device's TCP segmentation and checksum offload when it has
    /// both (module docs, "Segmentation offload").
    pub offload: bool,
}

impl Settings {
    /// The defaults for `port`, `boot_epoch` and `seed`.
    pub fn new(port: u16, boot_epoch: u64, seed: [u8; 16], send_in_place: bool) -> Settings {
        Settings {
            port,
            idle_timeout_ns: IDLE_TIMEOUT_NS,
            header_timeout_ns: HEADER_TIMEOUT_NS,
            max_per_source: MAX_PER_SOURCE,
            max_works_per_source: u16::MAX,
            boot_epoch,
            seed,
            send_in_place,
            offload: true,
        }
    }
}

/// What the server did since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// SYN-ACKs sent (cookies).
    pub syn_acks: u64,
    /// Connections made from valid cookies.
    pub accepted: u64,
    /// Valid cookies dropped: the table was full.
    pub table_full: u64,
    /// Valid cookies dropped: the source had its limit.
    pub per_source_refused: u64,
    /// Resets sent to segments for no connection.
    pub resets: u64,
    /// Resets not sent (over the rate).
    pub resets_limited: u64,
    /// Bare ACKs for no connection whose cookie did not validate, dropped
    /// (module docs, "Per received frame" 5).
    pub bare_acks_dropped: u64,
    /// Segments with data or a FIN for no connection that acknowledge a
    /// cookie sent a few segments before them, dropped (module docs, "Per
    /// received frame" 6).
    pub early_segments_dropped: u64,
    /// Segments with a bad TCP checksum, or malformed.
    pub rx_bad: u64,
    pub responses: u64,
    pub errors: u64,
    /// `408` for a request not received within the header deadline.
    pub timeouts_408: u64,
    /// Idle keep-alive connections closed.
    pub idle_closed: u64,
    /// Connections that ended (reset by the peer, or given up by TCP with a
    /// RST) before the peer had acknowledged the whole stream.
    pub aborted: u64,
    /// Connections that ended in a TIME-WAIT record.
    pub time_wait: u64,
    pub file_errors: u64,
    pub file_waits: u64,
    /// Data segments that found no free work context (dropped; the peer
    /// retransmits).
    pub no_work: u64,
    /// Data not taken because its source holds its share of the work
    /// contexts (module docs, "Per source").
    pub source_works_refused: u64,
}

/// How a region is carved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub connections: usize,
    pub works: usize,
}

/// Bytes a connection slot costs with its share of the index and the
/// per-source counters and sets (buckets are a power of two, at most
/// twice the slots).
pub fn connection_bytes() -> usize {
    // Up to two buckets and four per-source entries per slot (each table
    // rounds up to a power of two), and the bit sets.
    core::mem::size_of::<Slot>() + 2 * 4 + 4 * core::mem::size_of::<SourceCount>() + 1
}

/// Bytes of one work context.
pub fn work_bytes<H, P, W>() -> usize {
    core::mem::size_of::<Work<H, P, W>>()
}

/// Bytes of the TIME-WAIT table.
pub fn time_wait_bytes() -> usize {
    core::mem::size_of::<TimeWaitTable<TIME_WAIT_RECORDS>>()
}

/// What a region of `bytes` holds (module docs, "Memory").
pub fn layout<H, P, W>(bytes: usize) -> Layout {
    // Alignment and the small fixed arrays.
    let fixed = time_wait_bytes() + MAX_FRAME + 4096;
    let rest = bytes.saturating_sub(fixed);
    let works = (rest / 2 / work_bytes::<H, P, W>()).clamp(1, MAX_WORKS);
    let left = rest.saturating_sub(works * (work_bytes::<H, P, W>() + 1));
    Layout { connections: (left / connection_bytes()).min(MAX_CONNECTIONS), works }
}

/// Why the server could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    RegionTooSmall,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the connection region is too small for the Cheetah server")
    }
}

/// The link side of the server: the queues, arpd, the node.
pub struct Wire<L, N> {
    pub link: L,
    pub neighbours: N,
    pub node: NodeAddress,
    pub mac: [u8; 6],
    pub counters: DeviceCounters,
    /// Next hops arpd lately could not resolve.
    unanswered: Unanswered,
    /// The time of the poll in progress.
    now: u64,
}

impl<L, N> Wire<L, N> {
    pub fn new(link: L, neighbours: N, node: NodeAddress, mac: [u8; 6]) -> Self {
        Wire {
            link,
            neighbours,
            node,
            mac,
            counters: DeviceCounters::default(),
            unanswered: Unanswered::default(),
            now: 0,
        }
    }
}

/// The server (module docs).
pub struct Server<L, N, H: Copy + 'static, P: 'static, W: Copy + 'static> {
    pub wire: Wire<L, N>,
    table: Table,
    works: &'static mut [Work<H, P, W>],
    free_work: Option<u32>,
    /// Work contexts in use (owned or orphaned).
    busy_works: SlotSet,
    /// Slots in use, slots to visit, slots waiting for the store.
    used: SlotSet,
    dirty: SlotSet,
    waiting: SlotSet,
    timewait: &'static mut TimeWaitTable<TIME_WAIT_RECORDS>,
    jar: CookieJar,
    rotations: u64,
    config: Config,
    challenges: ChallengeLimiter,
    resets: ChallengeLimiter,
    settings: Settings,
    date: DateCache,
    pub counters: Counters,
    next_sweep: u64,
    accepting: bool,
    rx: Option<&'static mut [u8; MAX_FRAME]>,
    scratch: [u8; MAX_HEAD],
    /// Something could not be sent for want of a buffer: poll again soon.
    starved: bool,
    /// File data goes in bursts the device cuts ([`Settings::offload`]
    /// and the driver has TSO and checksum offload).
    tso: bool,
    /// The connection visited first: the one after the connection whose
    /// visit used the last transmit buffer in an earlier round.
    turn: usize,
}

/// A key derived from the seed for one use.
fn derive(seed: &[u8; 16], what: u64) -> [u8; 16] {
    use core::hash::Hasher;
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = siphasher::sip::SipHasher13::new_with_key(seed);
        h.write_u64(what);
        h.write_u64(i as u64);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Everything one visit of a connection needs besides the slot.
struct Parts<'a, L, N, H, P, W> {
    wire: &'a mut Wire<L, N>,
    works: &'a mut [Work<H, P, W>],
    settings: &'a Settings,
    date: &'a DateCache,
    counters: &'a mut Counters,
    scratch: &'a mut [u8; MAX_HEAD],
    tso: bool,
}

impl<L: Link, N: Neighbours, H: Copy + 'static, P: 'static, W: Copy + 'static> Server<L, N, H, P, W> {
    /// A server on `wire` with its tables out of `arena` (module docs,
    /// "Memory"), not accepting yet ([`Server::accept`]).
    pub fn new(wire: Wire<L, N>, arena: &mut Arena, settings: Settings, now: u64) -> Result<Self, StartError> {
        let Layout { connections, works } = layout::<H, P, W>(arena.remaining());
        if connections == 0 {
            return Err(StartError::RegionTooSmall);
        }
        let tw_seed = derive(&settings.seed, 1);
        let timewait = &mut arena.array(1, |_| TimeWaitTable::new(tw_seed)).ok_or(StartError::RegionTooSmall)?[0];
        let rx = &mut arena.array(1, |_| [0u8; MAX_FRAME]).ok_or(StartError::RegionTooSmall)?[0];
        let work_slice = arena.array(works, |i| {
            let mut w = Work::new();
            w.next_free = (i + 1 < works).then_some((i + 1) as u32);
            w
        });
        let works_arr = work_slice.ok_or(StartError::RegionTooSmall)?;
        let busy_works = SlotSet::new(arena, works).ok_or(StartError::RegionTooSmall)?;
        let buckets_len = connections.next_power_of_two();
        let slots = arena.array(connections, |_| Table::empty_slot()).ok_or(StartError::RegionTooSmall)?;
        let buckets = arena.array(buckets_len, |_| table::NIL).ok_or(StartError::RegionTooSmall)?;
        let per_source = arena
            .array(SourceCount::entries_for(connections), |_| SourceCount::EMPTY)
            .ok_or(StartError::RegionTooSmall)?;
        let used = SlotSet::new(arena, connections).ok_or(StartError::RegionTooSmall)?;
        let dirty = SlotSet::new(arena, connections).ok_or(StartError::RegionTooSmall)?;
        let waiting = SlotSet::new(arena, connections).ok_or(StartError::RegionTooSmall)?;
        let table = Table::new(slots, buckets, per_source, derive(&settings.seed, 2));
        let both = OFFLOAD_TSO4 | OFFLOAD_TX_CSUM;
        let tso = settings.offload && settings.send_in_place && wire.link.offloads() & both == both;
        Ok(Server {
            wire,
            table,
            works: works_arr,
            free_work: Some(0),
            busy_works,
            used,
            dirty,
            waiting,
            timewait,
            jar: CookieJar::new(derive(&settings.seed, 3), now / MS_NS),
            rotations: 0,
            config: Config::default(),
            challenges: ChallengeLimiter::per_second(),
            resets: ChallengeLimiter::new(RSTS_PER_SECOND, SECOND_NS),
            settings,
            date: DateCache::new(settings.boot_epoch + now / SECOND_NS),
            counters: Counters::default(),
            next_sweep: u64::MAX,
            accepting: false,
            rx: Some(rx),
            scratch: [0; MAX_HEAD],
            starved: false,
            tso,
            turn: 0,
        })
    }

    /// Starts answering SYNs (until then every SYN gets a reset).
    pub fn accept(&mut self) {
        self.accepting = true;
    }

    pub fn accepting(&self) -> bool {
        self.accepting
    }

    /// Whether file data goes in bursts the device segments (TSO).
    pub fn segmentation_offload(&self) -> bool {
        self.tso
    }

    /// Connection slots.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Work contexts.
    pub fn works(&self) -> usize {
        self.works.len()
    }

    /// Connections in the table.
    pub fn connections(&self) -> usize {
        self.table.len
    }

    /// Work contexts in use (owned or orphaned).
    pub fn works_in_use(&self) -> usize {
        self.busy_works.len()
    }

    /// TIME-WAIT records held.
    pub fn time_wait_records(&self) -> usize {
        self.timewait.len()
    }

    pub fn date(&self) -> &DateCache {
        &self.date
    }

    /// Receives, serves and sends at `now` (ns); returns when to run
    /// again at the latest.
    pub fn poll<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, now: u64, site: &mut S) -> Option<u64> {
        self.date.update(self.settings.boot_epoch + now / SECOND_NS);
        self.wire.now = now;
        let now_ms = now / MS_NS;
        if self.jar.rotation_due(now_ms) {
            self.rotations += 1;
            self.jar.rotate(derive(&self.settings.seed, 1000 + self.rotations), now_ms);
        }
        self.timewait.expire(now_ms);
        self.starved = false;
        self.retire(site);
        let mut more = false;
        for n in 0..=MAX_FRAMES_PER_POLL {
            if !self.wire.link.can_send() {
                // Answers need buffers: leave the frames queued.
                self.starved = true;
                break;
            }
            if n == MAX_FRAMES_PER_POLL {
                more = true;
                break;
            }
            let Some(rx) = self.rx.take() else { break };
            let got = self.wire.link.recv(rx);
            if let Some(r) = got {
                self.on_frame(&rx[..r.len], r.checksum_verified, now, site);
            }
            self.rx = Some(rx);
            if got.is_none() {
                break;
            }
        }
        // Slots waiting for the store look again when it may answer.
        let mut next = self.waiting.first_from(0);
        while let Some(i) = next {
            next = self.waiting.first_from(i + 1);
            self.dirty.insert(i);
        }
        if now >= self.next_sweep {
            self.next_sweep = u64::MAX;
            let mut next = self.used.first_from(0);
            while let Some(i) = next {
                next = self.used.first_from(i + 1);
                self.dirty.insert(i);
            }
        }
        // Connections are visited from `turn` round to it again. When
        // transmit buffers run out during a visit, the next round starts
        // after that connection: the ones that found none go first then
        // (round robin; from slot 0 every time, the lowest slots would take
        // every buffer that comes back and the others stall).
        let turn = self.turn;
        let mut first_starved = None;
        for (from, to) in [(turn, usize::MAX), (0, turn)] {
            let mut next = self.dirty.first_from(from);
            while let Some(i) = next.filter(|&i| i < to) {
                next = self.dirty.first_from(i + 1);
                self.dirty.remove(i);
                self.visit(i, now, site);
                if self.starved && first_starved.is_none() {
                    first_starved = Some(i);
                }
            }
        }
        if let Some(i) = first_starved {
            self.turn = if i + 1 < self.table.capacity() { i + 1 } else { 0 };
        }
        self.wire.link.flush();
        // Starved of transmit buffers, the PD waits for them to come back
        // (it asks to be notified: `NetClient::ready_to_wait`).
        if more {
            return Some(now);
        }
        (self.next_sweep != u64::MAX).then_some(self.next_sweep.max(now + MS_NS / 10))
    }

    /// Pins whose frames came back are released; orphaned contexts free.
    fn retire<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, site: &mut S) {
        let returned = self.wire.link.take_tx_returned();
        if returned == 0 {
            return;
        }
        let mut next = self.busy_works.first_from(0);
        while let Some(w) = next {
            next = self.busy_works.first_from(w + 1);
            let work = &mut self.works[w];
            work.outgoing.returned(returned, &mut |p| site.release(p));
            match work.owner {
                None if !work.outgoing.holds_pins() => self.free_work_context(w),
                Some(owner) => self.dirty.insert(owner as usize),
                None => {}
            }
        }
    }

    fn free_work_context(&mut self, w: usize) {
        self.works[w].owner = None;
        self.works[w].next_free = self.free_work;
        self.free_work = Some(w as u32);
        self.busy_works.remove(w);
    }

    fn take_work(&mut self, owner: usize) -> Option<u32> {
        let source = self.table.slots[owner].tuple.remote_addr;
        let share = (self.works.len() / WORK_SHARE_PER_SOURCE).max(1);
        let limit = share.min(usize::from(self.settings.max_works_per_source));
        let free = self.works.len() - self.works_in_use();
        if free <= limit && usize::from(self.table.works_of_source(source)) >= limit {
            self.counters.source_works_refused += 1;
            return None;
        }
        let w = self.free_work?;
        self.table.source_work(source, true);
        let work = &mut self.works[w as usize];
        self.free_work = work.next_free;
        work.restart(self.table.slots[owner].written);
        work.owner = Some(owner as u32);
        self.busy_works.insert(w as usize);
        Some(w)
    }

    fn on_frame<S: Store<Handle = H, Pin = P, Wait = W>>(
        &mut self,
        frame: &[u8],
        checksum_verified: bool,
        now: u64,
        site: &mut S,
    ) {
        let Some(packet) = strip_ethernet(frame, &self.wire.mac, &mut self.wire.counters) else { return };
        let Ok(ip) = Ipv4Packet::parse(packet) else {
            self.counters.rx_bad += 1;
            return;
        };
        if ip.protocol() != IpProtocol::TCP || ip.is_fragment() || ip.dst() != self.wire.node.ipv4 {
            return;
        }
        let total = usize::from(ip.total_len()).min(ip.packet().len());
        let Some(segment) = ip.packet().get(ip.header_len()..total) else { return };
        let Ok(seg) = TcpSegment::parse(segment) else {
            self.counters.rx_bad += 1;
            return;
        };
        if !checksum_verified && !seg.verify_checksum(ip.src(), ip.dst()) {
            self.counters.rx_bad += 1;
            return;
        }
        if seg.dst_port() != self.settings.port {
            return;
        }
        let tuple = FourTuple {
            local_addr: ip.dst().0,
            local_port: seg.dst_port(),
            remote_addr: ip.src().0,
            remote_port: seg.src_port(),
        };
        let flags = seg.flags();
        let incoming = Incoming {
            seq: Seq(seg.seq()),
            ack: flags.ack().then_some(Seq(seg.ack())),
            syn: flags.syn(),
            fin: flags.fin(),
            rst: flags.rst(),
            window: seg.window(),
            payload: seg.payload(),
        };
        if let Some(i) = self.table.find(&tuple) {
            self.on_segment(i, &incoming, now, site);
            return;
        }
        let now_ms = now / MS_NS;
        let arrival = Arrival {
            seq: incoming.seq,
            len: incoming.payload.len() as u32,
            syn: incoming.syn,
            ack: incoming.ack.is_some(),
            fin: incoming.fin,
            rst: incoming.rst,
        };
        match self.timewait.on_segment(&tuple, &arrival, now_ms) {
            Some(Decision::AckAgain { seq, ack }) => {
                if self.resets.allow(now) {
                    let h = header(&tuple, seq, ack, TcpFlags::ACK, 0);
                    send::<L, N, H, P, W, S>(&mut self.wire, &tuple, h, None, site, None);
                }
                return;
            }
            Some(Decision::Drop) => return,
            Some(Decision::Reopen) | None => {}
        }
        if incoming.rst {
            return;
        }
        if incoming.syn && incoming.ack.is_none() && self.accepting {
            let options = TcpOptions::parse(seg.options());
            let iss = self.jar.encode(&tuple, incoming.seq, options.mss, options.window_scale, now_ms);
            let mut h =
                header(&tuple, iss, incoming.seq + 1, TcpFlags::SYN.union(TcpFlags::ACK), REQUEST_BUFFER as u16);
            h.mss = Some(self.config.mss);
            h.window_scale = options.window_scale.map(|_| self.config.rcv_wscale);
            send::<L, N, H, P, W, S>(&mut self.wire, &tuple, h, None, site, None);
            self.counters.syn_acks += 1;
            return;
        }
        if let (Some(ack), false, true) = (incoming.ack, incoming.syn, self.accepting) {
            if let Some(negotiated) = self.jar.validate(&tuple, incoming.seq, ack, now_ms) {
                if self.table.from_source(tuple.remote_addr) >= self.settings.max_per_source {
                    self.counters.per_source_refused += 1;
                    return;
                }
                let iss = ack + u32::MAX;
                let irs = incoming.seq + u32::MAX;
                let conn = Conn::accept(self.config, iss, irs, negotiated.mss, negotiated.peer_wscale);
                match self.table.insert(tuple, conn, now) {
                    Some(i) => {
                        self.used.insert(i);
                        self.counters.accepted += 1;
                        self.on_segment(i, &incoming, now, site);
                    }
                    None => self.counters.table_full += 1,
                }
                return;
            }
        }
        // A bare ACK that no cookie validates: dropped (module docs, 5).
        if incoming.ack.is_some() && incoming.payload.is_empty() && !incoming.fin && !incoming.syn {
            self.counters.bare_acks_dropped += 1;
            return;
        }
        // RFC 9293 §3.10.7.1: no connection.
        if !self.resets.allow(now) {
            self.counters.resets_limited += 1;
            return;
        }
        // A later segment of a handshake in flight: dropped (module docs, 6).
        if let (Some(ack), false, true) = (incoming.ack, incoming.syn, self.accepting) {
            let len = incoming.payload.len() as u32;
            if self.jar.acknowledges_earlier(&tuple, incoming.seq, ack, len, now_ms) {
                self.counters.early_segments_dropped += 1;
                return;
            }
        }
        let h = match incoming.ack {
            Some(ack) => header(&tuple, ack, Seq(0), TcpFlags::RST, 0),
            None => {
                let len = incoming.payload.len() as u32 + u32::from(incoming.syn) + u32::from(incoming.fin);
                header(&tuple, Seq(0), incoming.seq + len, TcpFlags::RST.union(TcpFlags::ACK), 0)
            }
        };
        send::<L, N, H, P, W, S>(&mut self.wire, &tuple, h, None, site, None);
        self.counters.resets += 1;
    }

    /// A segment of connection `i`.
    fn on_segment<S: Store<Handle = H, Pin = P, Wait = W>>(
        &mut self,
        i: usize,
        seg: &Incoming<'_>,
        now: u64,
        site: &mut S,
    ) {
        let slot = &self.table.slots[i];
        if !seg.payload.is_empty() && slot.work.is_none() && !slot.closing {
            match self.take_work(i) {
                Some(w) => self.table.slots[i].work = Some(w),
                None => self.counters.no_work += 1,
            }
        }
        let slot = &mut self.table.slots[i];
        // Without a context for its data, none is taken (the peer sends it
        // again).
        let room =
            if !seg.payload.is_empty() && slot.work.is_none() && !slot.closing { 0 } else { room(slot, self.works) };
        let Some(conn) = slot.tcp.as_mut() else { return };
        let before = conn.acked();
        let got = conn.on_segment(now, seg, room, &mut self.challenges);
        let data = seg.payload.get(got.data.clone()).unwrap_or(&[]);
        if !data.is_empty() {
            slot.last_activity = now;
            if let (Some(w), false) = (slot.work, slot.closing) {
                let work = &mut self.works[w as usize];
                if work.http.is_idle() && slot.request_started.is_none() {
                    slot.request_started = Some(now);
                }
                work.http.receive(data);
            }
        }
        if got.peer_closed {
            slot.peer_closed = true;
        }
        if got.acked > before {
            slot.last_activity = now;
        }
        if let Some(w) = slot.work {
            let in_flight = self.wire.link.tx_in_flight();
            self.works[w as usize].acked(got.acked, in_flight, &mut |p| site.release(p));
        }
        self.dirty.insert(i);
    }

    /// Visits connection `i`: timers, HTTP, sending, and its end.
    fn visit<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, i: usize, now: u64, site: &mut S) {
        let Some(slot) = self.table.slots.get_mut(i) else { return };
        let Some(conn) = slot.tcp.as_mut() else { return };
        conn.on_timer(now);
        let mut parts = Parts {
            wire: &mut self.wire,
            works: self.works,
            settings: &self.settings,
            date: &self.date,
            counters: &mut self.counters,
            scratch: &mut self.scratch,
            tso: self.tso,
        };
        for _ in 0..3 {
            let served = serve(slot, &mut parts, now, site);
            let sent = transmit(slot, &mut parts, now, site, &mut self.starved);
            if !served && !sent {
                break;
            }
        }
        if self.starved {
            // Out of transmit buffers: look again once they come back.
            self.dirty.insert(i);
        }
        let waiting = slot.work.is_some_and(|w| self.works[w as usize].pending.wait.is_some());
        if waiting {
            self.waiting.insert(i);
        } else {
            self.waiting.remove(i);
        }
        let Some(conn) = slot.tcp.as_ref() else { return };
        match conn.state() {
            // Out of transmit buffers, its last segment (the ACK of the
            // peer's FIN, or a RST) may not have gone: the connection ends
            // on a later visit, once it has. (Turned into a TIME-WAIT
            // record now, the ACK would be lost and the peer would resend
            // its FIN into the record's rate-limited answers.)
            State::TimeWait | State::Closed if self.starved => {}
            State::TimeWait => {
                let (snd, rcv) = conn.next_numbers();
                self.timewait.insert(slot.tuple, snd, rcv, now / MS_NS);
                self.counters.time_wait += 1;
                self.end(i, site);
            }
            State::Closed => {
                self.end(i, site);
            }
            _ => {
                let acked = conn.acked();
                if let Some(w) = slot.work {
                    if self.works[w as usize].is_idle(acked) || (slot.closing && acked >= slot.written) {
                        let work = &mut self.works[w as usize];
                        if !work.outgoing.holds_pins() && work.pending.pin.is_none() && work.pending.wait.is_none() {
                            slot.work = None;
                            let source = slot.tuple.remote_addr;
                            self.free_work_context(w as usize);
                            self.table.source_work(source, false);
                        }
                    }
                }
                let slot = &self.table.slots[i];
                if let Some(d) = deadline(slot, &self.settings) {
                    self.next_sweep = self.next_sweep.min(d);
                }
            }
        }
    }

    /// The store's pins are void (the file cache PD restarted: what they
    /// named may be overwritten): every connection whose response reads
    /// from a pin, in flight or about to be sent, is reset (net-tcp's
    /// [`Conn::abort`]), since a retransmission could send other bytes
    /// than the ones promised. Waiting responses open again. How many.
    pub fn abort_transfers(&mut self) -> usize {
        let mut aborted = 0;
        let mut next = self.used.first_from(0);
        while let Some(i) = next {
            next = self.used.first_from(i + 1);
            let slot = &mut self.table.slots[i];
            let Some(w) = slot.work else { continue };
            let work = &self.works[w as usize];
            if work.pending.pin.is_none() && !work.outgoing.holds_pins() {
                continue;
            }
            if let Some(conn) = slot.tcp.as_mut() {
                conn.abort();
                aborted += 1;
                self.dirty.insert(i);
            }
        }
        aborted
    }

    /// Connection `i` is over: its work context retires (orphaned until
    /// the NIC gave back the frames that may read its pins), its slot is
    /// free.
    fn end<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, i: usize, site: &mut S) {
        let slot = &self.table.slots[i];
        if slot.tcp.as_ref().is_some_and(|c| c.state() == State::Closed && c.acked() < slot.written) {
            // Reset, or given up, before the peer had the whole stream.
            self.counters.aborted += 1;
        }
        if let Some(w) = self.table.slots[i].work.take() {
            self.table.source_work(self.table.slots[i].tuple.remote_addr, false);
            let in_flight = self.wire.link.tx_in_flight();
            let work = &mut self.works[w as usize];
            if let Some(pin) = work.pending.pin.take() {
                site.release(pin);
            }
            if let Some(wait) = work.pending.wait.take() {
                site.abandon(wait);
            }
            work.pending.body = None;
            work.outgoing.retire_all(in_flight, &mut |p| site.release(p));
            work.owner = None;
            if !work.outgoing.holds_pins() {
                self.free_work_context(w as usize);
            }
        }
        self.table.remove(i);
        self.used.remove(i);
        self.dirty.remove(i);
        self.waiting.remove(i);
    }
}

/// The window room of a connection: its request buffer's free space, or a
/// whole buffer when it has none (one is taken when data arrives) or is
/// closing (what arrives is discarded).
fn room<H, P, W>(slot: &mut Slot, works: &mut [Work<H, P, W>]) -> u32 {
    match (slot.work, slot.closing) {
        (Some(w), false) => works[w as usize].http.space().len() as u32,
        _ => REQUEST_BUFFER as u32,
    }
}

/// When connection `slot` must be visited next.
fn deadline(slot: &Slot, settings: &Settings) -> Option<u64> {
    let conn = slot.tcp.as_ref()?;
    let mut due = conn.deadline();
    if !slot.closing {
        if let Some(start) = slot.request_started {
            due = Some(due.map_or(u64::MAX, |d| d).min(start.saturating_add(settings.header_timeout_ns)));
        }
        if slot.work.is_none() {
            due = Some(due.map_or(u64::MAX, |d| d).min(slot.last_activity.saturating_add(settings.idle_timeout_ns)));
        }
    }
    due
}

/// The server closes its side of `slot` (a FIN follows the stream).
fn close(slot: &mut Slot) {
    if !slot.closing {
        slot.closing = true;
        slot.request_started = None;
        if let Some(conn) = slot.tcp.as_mut() {
            conn.close();
        }
    }
}

/// HTTP on one connection (module docs); whether anything moved.
fn serve<L, N, H: Copy, S: Store<Handle = H>>(
    slot: &mut Slot,
    parts: &mut Parts<'_, L, N, H, S::Pin, S::Wait>,
    now: u64,
    site: &mut S,
) -> bool {
    if slot.closing || slot.tcp.is_none() {
        return false;
    }
    let Some(w) = slot.work else {
        // Idle between requests.
        if slot.peer_closed {
            close(slot);
            return true;
        }
        if now.saturating_sub(slot.last_activity) >= parts.settings.idle_timeout_ns {
            parts.counters.idle_closed += 1;
            close(slot);
            return true;
        }
        return false;
    };
    let work = &mut parts.works[w as usize];
    let mut moved = false;
    // The header deadline: a request not whole in time.
    if let Some(start) = slot.request_started {
        let nothing_pending = work.pending.head.is_none() && work.pending.body.is_none();
        if nothing_pending && now.saturating_sub(start) >= parts.settings.header_timeout_ns {
            slot.request_started = None;
            match work.http.timeout(parts.date, &mut parts.scratch[..]) {
                Ok(Some(len)) => {
                    parts.counters.timeouts_408 += 1;
                    parts.counters.responses += 1;
                    parts.counters.errors += 1;
                    work.hold_head(&parts.scratch[..len]);
                    slot.written = work.commit_head();
                    if let Some(conn) = slot.tcp.as_mut() {
                        conn.extend(slot.written);
                    }
                }
                _ => parts.counters.idle_closed += 1,
            }
            close(slot);
            return true;
        }
    }
    let mut close_after = false;
    for _ in 0..MAX_SERVE_ROUNDS {
        // The response in progress: open its file, then commit its head.
        if work.pending.head.is_some() {
            if let (Some(body), None) = (work.pending.body, &work.pending.pin) {
                if work.pending.wait.as_ref().is_some_and(|wait| !site.may_retry(wait)) {
                    return moved;
                }
                let fetched = if parts.settings.send_in_place {
                    site.open(body.file)
                } else {
                    Fetch::Fail(Status::InternalServerError)
                };
                match fetched {
                    Fetch::Ready(pin) => {
                        if site.region_offset(&pin).is_none() && body.len > 0 {
                            site.release(pin);
                            replace_with_error(
                                work,
                                parts.counters,
                                parts.scratch,
                                parts.date,
                                Status::InternalServerError,
                            );
                            work.pending.head_request = false;
                        } else {
                            work.pending.pin = Some(pin);
                        }
                        work.pending.wait = None;
                    }
                    Fetch::Wait(wait) => {
                        if work.pending.wait.is_none() {
                            parts.counters.file_waits += 1;
                        }
                        work.pending.wait = Some(wait);
                        return moved;
                    }
                    Fetch::Fail(status) => {
                        work.pending.wait = None;
                        replace_with_error(work, parts.counters, parts.scratch, parts.date, status);
                    }
                }
            }
            slot.written = work.commit_head();
            if let Some(conn) = slot.tcp.as_mut() {
                conn.extend(slot.written);
            }
            moved = true;
            if work.pending.body.is_some_and(|b| b.len == 0) {
                if let Some(pin) = work.pending.pin.take() {
                    site.release(pin);
                }
                work.pending.body = None;
            }
        }
        // The body: appended to the stream once it may start.
        if let Some(body) = work.pending.body {
            let Some(pin) = work.pending.pin.take() else {
                work.pending.body = None;
                continue;
            };
            let region = site.region_offset(&pin);
            let may_start = work.outgoing.has_room() && (body.len <= PIECE || slot.sent >= slot.written);
            match (region, may_start) {
                (Some(region), true) => match work.outgoing.begin(pin, body.offset, body.len, region) {
                    Ok(()) => {
                        work.outgoing.queue_reserved(body.len as usize);
                        slot.written = work.stream_len();
                        if let Some(conn) = slot.tcp.as_mut() {
                            conn.extend(slot.written);
                        }
                        work.pending.body = None;
                        moved = true;
                    }
                    Err(pin) => {
                        work.pending.pin = Some(pin);
                        return moved;
                    }
                },
                _ => {
                    work.pending.pin = Some(pin);
                    return moved;
                }
            }
        }
        if work.pending.close_after || close_after {
            close(slot);
            return true;
        }
        if !work.head_room() {
            return moved;
        }
        match work.http.poll(&*site, parts.date, &mut parts.scratch[..]) {
            Ok(Poll::Respond(r)) => {
                parts.counters.responses += 1;
                if r.status.code() >= 400 {
                    parts.counters.errors += 1;
                }
                work.hold_head(&parts.scratch[..r.head_len]);
                work.pending.body = r.body;
                work.pending.head_request = r.head;
                work.pending.close_after = r.close;
                close_after = r.close;
                slot.request_started = if work.http.is_idle() { None } else { Some(now) };
                moved = true;
            }
            Ok(Poll::NeedMore) => {
                if work.http.is_idle() {
                    slot.request_started = None;
                }
                if slot.peer_closed {
                    close(slot);
                    return true;
                }
                return moved;
            }
            Ok(Poll::Closed) | Err(_) => {
                close(slot);
                return true;
            }
        }
    }
    moved
}

/// The held response is replaced by a closing error `status` before any
/// of it was sent.
fn replace_with_error<H, P, W>(
    work: &mut Work<H, P, W>,
    counters: &mut Counters,
    scratch: &mut [u8; MAX_HEAD],
    date: &DateCache,
    status: Status,
) {
    work.drop_head();
    work.pending.body = None;
    counters.file_errors += 1;
    counters.errors += 1;
    if let Ok(len) = write_closing_error(&mut scratch[..], status, date, work.pending.head_request) {
        work.hold_head(&scratch[..len]);
    }
    work.pending.close_after = true;
}

/// Sends what net-tcp asks of connection `slot`; whether anything went.
fn transmit<L: Link, N: Neighbours, H, S: Store>(
    slot: &mut Slot,
    parts: &mut Parts<'_, L, N, H, S::Pin, S::Wait>,
    now: u64,
    site: &S,
    starved: &mut bool,
) -> bool {
    let room = room(slot, parts.works);
    let tuple = slot.tuple;
    let Some(conn) = slot.tcp.as_mut() else { return false };
    let mut sent = false;
    loop {
        if !parts.wire.link.can_send() {
            *starved = true;
            break;
        }
        // With TSO, file data goes in bursts of one in-place run.
        let works = &*parts.works;
        let burst = |offset| match (parts.tso, slot.work) {
            (true, Some(w)) => works[w as usize].outgoing.in_place_run(offset).map_or(0, |(_, len)| len.min(MAX_BURST)),
            _ => 0,
        } as u32;
        let Some(t) = conn.poll_with(now, room, burst) else { break };
        let mss = (t.len > conn.smss()).then_some(conn.smss() as u16);
        let work = slot.work.and_then(|w| parts.works.get_mut(w as usize));
        send_transmit(parts.wire, &tuple, &t, work, site, mss);
        slot.sent = slot.sent.max(t.offset + u64::from(t.len));
        sent = true;
    }
    sent
}

/// The TCP header of a segment of `tuple` (from the server's side).
fn header(tuple: &FourTuple, seq: Seq, ack: Seq, flags: TcpFlags, window: u16) -> TcpHeader {
    TcpHeader {
        src_port: tuple.local_port,
        dst_port: tuple.remote_port,
        seq: seq.0,
        ack: ack.0,
        flags,
        window,
        mss: None,
        window_scale: None,
    }
}

/// Sends `t`; `tso`: a burst the device cuts into packets of that many
/// payload bytes.
fn send_transmit<L: Link, N: Neighbours, H, P, W, S: crate::inplace::FileSums<P>>(
    wire: &mut Wire<L, N>,
    tuple: &FourTuple,
    t: &Transmit,
    work: Option<&mut Work<H, P, W>>,
    sums: &S,
    tso: Option<u16>,
) {
    let mut flags = TcpFlags::ACK;
    if t.fin {
        flags = flags.union(TcpFlags::FIN);
    }
    if t.rst {
        flags = flags.union(TcpFlags::RST);
    }
    if t.psh {
        flags = flags.union(TcpFlags::PSH);
    }
    let h = header(tuple, t.seq, t.ack, flags, t.window);
    let payload = (t.len > 0).then_some(()).and(work).map(|w| (t.offset, t.len as usize, w));
    send(wire, tuple, h, payload, sums, tso);
}

/// Builds and queues one frame: Ethernet to the next hop, IPv4, `h`, and
/// the stream bytes `payload` names (offset, length, the stream). With
/// `tso` (the packets' payload size) the frame is a burst of file data in
/// one in-place run for the device to cut and checksum (module docs,
/// "Segmentation offload").
fn send<L: Link, N: Neighbours, H, P, W, S: crate::inplace::FileSums<P>>(
    wire: &mut Wire<L, N>,
    tuple: &FourTuple,
    h: TcpHeader,
    payload: Option<(u64, usize, &mut Work<H, P, W>)>,
    sums: &S,
    tso: Option<u16>,
) {
    let dst = Ipv4Address(tuple.remote_addr);
    let src = Ipv4Address(tuple.local_addr);
    let Some(hop) = wire.node.next_hop(dst) else {
        wire.counters.tx_no_route += 1;
        return;
    };
    // The next hop's MAC from arpd's table; else arpd is asked, unless it
    // could not resolve the hop lately (`device::Unanswered`).
    let mac = match wire.neighbours.lookup(hop) {
        Some(mac) => mac,
        None => {
            let recent = wire.unanswered.recent(hop, wire.now);
            let resolution = match recent {
                Some(false) => Resolution::Pending,
                Some(true) => Resolution::Failed,
                None => wire.neighbours.resolve(hop),
            };
            let failed = match resolution {
                Resolution::Known(mac) => Ok(mac.0),
                Resolution::Pending => Err(false),
                Resolution::Failed | Resolution::NotOnLink => Err(true),
            };
            match failed {
                Ok(mac) => mac,
                Err(failed) => {
                    if failed {
                        wire.counters.tx_no_route += 1;
                    } else {
                        wire.counters.tx_arp_miss += 1;
                    }
                    if recent.is_none() {
                        wire.unanswered.note(hop, wire.now, failed);
                    }
                    return;
                }
            }
        }
    };
    let eth = crate::device::ETHERNET_HEADER;
    let ip_len = net_packet::ipv4::HEADER_LEN;
    let tcp_len = h.len();
    let data_len = payload.as_ref().map_or(0, |p| p.1);
    let total = eth + ip_len + tcp_len + data_len;
    let own = wire.mac;
    let mut unplanned = false;
    let mut in_place_bytes = 0;
    let offload = tso.map(|mss| TxOffload::tso4((eth + ip_len) as u8, (eth + ip_len + tcp_len) as u8, mss));
    let sent = wire.link.send_offloaded(total, offload, |frame| {
        write_ethernet(&mut frame[..eth], mac, own)?;
        net_packet::ipv4::Ipv4Repr {
            src,
            dst,
            protocol: IpProtocol::TCP,
            payload_len: (tcp_len + data_len) as u16,
            ttl: net_packet::ipv4::Ipv4Repr::DEFAULT_TTL,
        }
        .emit(&mut frame[eth..])?;
        let segment = &mut frame[eth + ip_len..];
        h.emit(segment)?;
        if tso.is_some() {
            // The device completes the checksum from the pseudo-header sum
            // over the whole segment (`TxOffload`'s docs).
            let (offset, len, work) = payload?;
            let run = work.outgoing.in_place_run(offset).filter(|&(_, run)| run >= len as u64);
            let Some((region, _)) = run else {
                unplanned = true;
                return None;
            };
            let mut sum = net_packet::checksum::Checksum::new();
            sum.add_pseudo_header(src, dst, IpProtocol::TCP, (tcp_len + len) as u16);
            tcp::set_checksum(segment, sum.sum())?;
            in_place_bytes += len as u64;
            let mut ranges = InPlaceList::new();
            ranges.push(InPlace { at: eth + ip_len + tcp_len, len, offset: region }).ok()?;
            return Some(ranges);
        }
        let planned = match payload {
            Some((offset, _, work)) => match work.resolve(offset, &mut segment[tcp_len..], sums) {
                Ok(p) => p,
                Err(_) => {
                    unplanned = true;
                    return None;
                }
            },
            None => Planned::default(),
        };
        let sum = segment_checksum(src.0, dst.0, segment, tcp_len, planned.payload_sum);
        tcp::set_checksum(segment, sum)?;
        let mut ranges = InPlaceList::new();
        for r in planned.in_place.as_slice() {
            ranges.push(InPlace { at: eth + ip_len + tcp_len + r.at, ..*r }).ok()?;
            in_place_bytes += r.len as u64;
        }
        Some(ranges)
    });
    match sent {
        Ok(true) => {
            wire.counters.tx_frames += 1;
            wire.counters.tx_in_place_bytes += in_place_bytes;
        }
        Ok(false) if unplanned => wire.counters.tx_unplanned += 1,
        Ok(false) => {}
        Err(_) => wire.counters.tx_no_buffer += 1,
    }
}
