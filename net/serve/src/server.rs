//! The engine of the Cheetah server: net-tcp, the server-only TCP made for
//! serving files, on the node's link, for any [`Service`] (HTTP in
//! httpd-core's `cheetah`, FTP in ftpd-core's `server`).
//!
//! # Per received frame
//!
//! Each frame is parsed with net-packet: Ethernet (to the node's MAC or
//! broadcast, IPv4), IPv4 (header checksum, no fragments, to the node's
//! address), TCP (its checksum verified unless the frame says the device
//! or the demultiplexer did: [`crate::link::Received::checksum_verified`]).
//! Then, in this order:
//!
//! 1. **A known connection** (the [`table`]'s 4-tuple index): the segment
//!    goes to net-tcp's [`Conn::on_segment`] (RFC 9293 §3.10.7.4 with RFC
//!    5961's checks), its data into the request buffer.
//! 2. **A TIME-WAIT record** ([`TimeWaitTable::on_segment`]): the ACK
//!    sent again (rate-limited, RFC 5961 §7), nothing, or — a new SYN
//!    beyond the old sequence space (RFC 1122 §4.2.2.13) — on to LISTEN.
//! 3. **A SYN** (no ACK) the service listens for ([`Service::listens`];
//!    else a reset, 6): a SYN-ACK whose sequence number is a SYN cookie
//!    (RFC 4987 §3.6, [`CookieJar::encode`]) carrying the peer's MSS and
//!    window scale, offering MSS 1460 and window scaling if the peer did
//!    (RFC 7323 §1.3). **No state is kept**, so no rate of SYNs from any
//!    number of addresses fills anything. Except, below, for a connection
//!    the server speaks first on ([`Service::speaks_first`]: FTP's
//!    greeting and data connections): if the handshake's last ACK is
//!    lost there, the client believes it is connected and waits, and a
//!    server without state never sends anything, so both wait for ever.
//!    The SYN of such a connection is remembered in a small table
//!    ([`HANDSHAKES`] entries, the oldest overwritten: a flood of SYNs
//!    only makes it plain cookies again) and the SYN-ACK sent again after
//!    1, 2 and 4 s (RFC 6298's initial RTO, doubled) until the connection
//!    is made; the client answers it with its ACK again (RFC 9293
//!    §3.10.7.4: an unacceptable segment gets an ACK), which opens the
//!    connection (4).
//! 4. **An ACK with a valid cookie** (the handshake's last segment, or the
//!    first data segment carrying the same acknowledgment): a connection in
//!    the table, and the segment is processed on it. If the table is full,
//!    the source already has [`Settings::max_per_source`] connections, or
//!    the service does not take it ([`Service::opened`]: FTP's passive
//!    port taken meanwhile), the segment is dropped (counted); the cookie stays valid for its
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
//! What a connection speaks is its [`Service`]'s: the engine hands it the
//! bytes received in order ([`Service::receive`]), visits it to produce
//! output ([`Service::serve`]), and tells it when the connection ends
//! ([`Service::ended`]). The connection's output is a stream
//! ([`crate::stream`]): bytes the service writes (HTTP heads, FTP replies
//! and listings) copied into a ring kept until acknowledged, and file
//! ranges sent in place from the cache ([`Outgoing`](crate::inplace::Outgoing) extents, pins and
//! piece sums). A service appends a body longer than one checksummed
//! piece once everything before it has been sent, so its segments start
//! on piece boundaries and their sums are the image's. Each
//! [`Transmit`] becomes one frame through [`Link::send_gather`]: Ethernet
//! (next hop from [`Neighbours`]), IPv4, TCP ([`TcpHeader::emit`]), ring
//! bytes copied, file bytes named in place, the checksum from the sums.
//!
//! Which connections open is the service's too: [`Service::listens`] for a
//! SYN (no state: HTTP's port 80, FTP's port 21 and the passive ports a
//! session listens on), [`Service::opened`] when a cookie validates.
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
//! timestamps, the service's per-connection state) costs
//! [`connection_bytes`] with its index entries. The stream (the ring and
//! the extents) and the service's working state (HTTP's request buffer)
//! are a *work context* ([`Work`]) taken from a pool only while the
//! connection has work: part of a request received, a response pending or
//! unacknowledged. An idle keep-alive connection holds none. [`Layout`] carves the region:
//! the TIME-WAIT table, half of the rest for work contexts (at most
//! [`MAX_WORKS`]), and the remainder for slots.
//!
//! # Hostile clients
//!
//! - **Per source** ([`Settings::max_per_source`], default
//!   [`MAX_PER_SOURCE`]): connections from one address (see
//!   [`table`]: counted exactly per address, never shared); and the work
//!   contexts their data holds: once no more than a share of them is free
//!   (a quarter, [`WORK_SHARE_PER_SOURCE`], or
//!   [`Settings::max_works_per_source`] if fewer), a source that holds
//!   that share or more gets no more, so one address that trickles a
//!   thousand requests (slowloris) leaves a quarter of the buffers to the
//!   others, while one busy client (a benchmark, a NAT) may use all it
//!   needs as long as they are plentiful. Orphaned contexts (a connection
//!   that ended while the NIC still had frames reading its pins) count as
//!   free here: they come back when the frames do, whatever any peer
//!   does, and counting them as used made one busy client that closes
//!   its connections (a benchmark of 1 MB bodies) refuse itself while it
//!   held far less than its share. Data of a connection refused so
//!   is not taken (counted in `source_works_refused`); the peer sends it
//!   again.
//! - **Slow reader.** A peer that stops reading (zero window) keeps its
//!   pins while net-tcp probes the window; net-tcp gives up with a RST
//!   at the first expiry of the retransmission timer after
//!   [`net_tcp::conn::MAX_RETRIES`] (8) expiries in a row without progress
//!   (a probe answered with a zero window is no progress). The timer
//!   starts at the RTO (at least 200 ms, RFC 6298) and doubles up to 60 s,
//!   so the worst case from the last progress is 0.2 + 0.4 + ... + 51.2 s
//!   = 102 s when the RTO was at its minimum (httpd-core's test
//!   `a_reader_with_a_closed_window_is_given_up_and_its_pins_go_back`
//!   measures it), and at most 9 × 60 s = 9 minutes for a peer whose
//!   measured round trip made the RTO 60 s. Its pins are released when the
//!   frames that may read them (the RST's included) come back.
//! - **FIN-WAIT-2** lasts at most net-tcp's 60 s.
//! - Timeouts of the protocol (HTTP's header deadline and idle keep-alive,
//!   FTP's idle session) are the service's: [`Service::deadline`] says
//!   when to visit.
//!
//! Nothing here allocates; every table is carved at start.

use crate::arena::Arena;
use crate::inplace::{segment_checksum, InPlace, InPlaceList, Pins, Planned};
use crate::link::{
    strip_ethernet, write_ethernet, DeviceCounters, Link, Neighbours, Resolution, Unanswered, MAX_FRAME,
};
use crate::slotset::SlotSet;
use crate::stream::Stream;
use crate::table::{Slot, SourceCount, Table};
use lib_net_protocol::{TxOffload, OFFLOAD_TSO4, OFFLOAD_TX_CSUM};
use net_config::{Ipv4Address, NodeAddress};
use net_packet::tcp::{TcpFlags, TcpHeader, TcpOptions};
use net_packet::{tcp, IpProtocol, Ipv4Packet, TcpSegment};
use net_tcp::accept::ChallengeLimiter;
use net_tcp::conn::{Config, Conn, Incoming, State, Transmit};
use net_tcp::cookie::{CookieJar, FourTuple};
use net_tcp::seq::Seq;
use net_tcp::timewait::{Arrival, Decision, TimeWaitTable};

/// Nanoseconds in a second and a millisecond.
pub const SECOND_NS: u64 = 1_000_000_000;
const MS_NS: u64 = 1_000_000;

/// Connections one source address may hold. Behind a NAT (QEMU's user
/// network, a carrier's) many clients share an address, so this is far
/// above one browser's handful; it keeps one address from taking the
/// whole table.
pub const MAX_PER_SOURCE: u16 = 1024;
/// When no more than 1/4 of the work contexts are free, a source holding
/// 1/4 or more of them gets no more (module docs, "Hostile clients").
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
/// SYNs of connections the server speaks first on, remembered to send
/// their SYN-ACK again (module docs, "Per received frame" 3).
pub const HANDSHAKES: usize = 32;
/// Times a remembered SYN-ACK is sent again.
const HANDSHAKE_RETRIES: u8 = 3;
/// Frames taken from the link per poll before the server yields.
const MAX_FRAMES_PER_POLL: usize = 256;
/// Most payload bytes in one burst the device segments: an IPv4 packet's
/// most (65535) less the IPv4 and TCP headers.
pub const MAX_BURST: u64 = 65_535 - 40;

/// The pin type of a service's store.
pub type PinOf<A> = <<A as Service>::Store as Pins>::Pin;

/// What a connection speaks: the engine moves segments, the service
/// bytes (module docs, "Per connection"). Connection `i` is its slot's
/// index, stable for the connection's life.
pub trait Service {
    /// Where file data comes from (the file cache's client).
    type Store: Pins;
    /// Kept for the connection's life, in its slot (keep it small: every
    /// slot has one).
    type Conn: Copy + Default;
    /// Kept while the connection has work, in its work context.
    type Work;
    /// The window offered when a connection has no work context (one is
    /// taken when data arrives), and in the SYN-ACK.
    const ROOM: u32;

    /// A fresh working state, for every context of the pool at start.
    fn new_work() -> Self::Work;
    /// At the start of each poll, before any frame.
    fn tick(&mut self, _now: u64) {}
    /// Whether a connection to `tuple` may open (a SYN): no state may be
    /// kept for it. `false`: the SYN gets a reset.
    fn listens(&self, tuple: &FourTuple) -> bool;
    /// Whether the server speaks first on a connection to `tuple` (FTP):
    /// its SYN-ACK is then sent again until the handshake completes
    /// (module docs, "Per received frame" 3).
    fn speaks_first(&self, _tuple: &FourTuple) -> bool {
        false
    }
    /// Connection `i` to `tuple` is made (its cookie validated): its state,
    /// or `None` to drop the segment (the peer retransmits).
    fn opened(&mut self, i: usize, tuple: &FourTuple, now: u64) -> Option<Self::Conn>;
    /// A work context was taken for a connection: make its state fresh.
    fn start_work(&mut self, work: &mut Self::Work);
    /// Whether a connection without a work context needs one to write
    /// (FTP's greeting, a reply to another connection's event): the
    /// engine then takes one before [`Service::serve`] if it can (else it
    /// tries on the next visit: [`Service::deadline`] should say when).
    fn wants_work(&self, _conn: &Self::Conn) -> bool {
        false
    }
    /// Bytes the service can take now (the window).
    fn room(&self, work: &Self::Work) -> u32;
    /// `data`, in order, arrived on a connection that has a work context
    /// and is not closing (at most [`Service::room`] bytes).
    fn receive(&mut self, conn: &mut Self::Conn, work: &mut Self::Work, data: &[u8], now: u64);
    /// Produce output for connection `i` (its work context, if it has one);
    /// whether anything moved. Called again after transmitting while
    /// something moves.
    fn serve(
        &mut self,
        i: usize,
        slot: &mut Slot<Self::Conn>,
        work: Option<&mut Work<PinOf<Self>, Self::Work>>,
        now: u64,
        store: &mut Self::Store,
        wakes: &mut Wakes<'_>,
    ) -> bool;
    /// Whether the service's part of a work context is idle: with the
    /// stream idle too, the context goes back to the pool.
    fn is_idle(&self, work: &Self::Work) -> bool;
    /// Whether the working state holds a pin or waits for the store: the
    /// context is kept, whatever else.
    fn holds(&self, work: &Self::Work) -> bool;
    /// Whether the working state holds a pin (the store restarted:
    /// [`Server::abort_transfers`]).
    fn holds_pin(&self, work: &Self::Work) -> bool;
    /// Whether the connection waits for the store (visited on each poll).
    fn waiting(&self, work: &Self::Work) -> bool;
    /// When the connection must be visited next for the service's
    /// timeouts.
    fn deadline(&self, slot: &Slot<Self::Conn>, work: Option<&Self::Work>) -> Option<u64>;
    /// Connection `i` ended: give back what its working state holds.
    fn ended(
        &mut self,
        i: usize,
        slot: &Slot<Self::Conn>,
        work: Option<&mut Self::Work>,
        store: &mut Self::Store,
        wakes: &mut Wakes<'_>,
    );
}

/// Connections a service wants visited (another connection's event
/// concerns them: FTP's transfer ended, its control connection replies).
pub struct Wakes<'a>(&'a mut SlotSet);

impl Wakes<'_> {
    /// Visits connection `i` in this poll or the next.
    pub fn wake(&mut self, i: usize) {
        self.0.insert(i);
    }
}

/// One work context: the stream the engine sends from and the service's
/// working state.
pub struct Work<P, W> {
    pub stream: Stream<P>,
    pub app: W,
    /// The connection slot that owns it, or `None` (free, or orphaned with
    /// pins retiring).
    owner: Option<u32>,
    /// Next in the free list.
    next_free: Option<u32>,
}

/// The engine's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_per_source: u16,
    /// The share of the work contexts kept for the other sources when few
    /// are free, if fewer than [`WORK_SHARE_PER_SOURCE`]'s (module docs,
    /// "Hostile clients").
    pub max_works_per_source: u16,
    /// Secret seed of the SYN cookies and the hash tables (16 bytes from
    /// the caller's entropy). The cookie secret is rotated every
    /// `net_tcp::cookie::SECRET_ROTATION_MS` to keys derived from it
    /// (SipHash as a PRF: one leaked key does not give the others).
    pub seed: [u8; 16],
    /// Use the device's TCP segmentation and checksum offload when it has
    /// both (module docs, "Segmentation offload") and the NIC may send
    /// from the store's region.
    pub offload: bool,
    pub send_in_place: bool,
}

impl Settings {
    /// The defaults for `seed`.
    pub fn new(seed: [u8; 16], send_in_place: bool) -> Settings {
        Settings { max_per_source: MAX_PER_SOURCE, max_works_per_source: u16::MAX, seed, offload: true, send_in_place }
    }
}

/// What the engine did since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// SYN-ACKs sent (cookies).
    pub syn_acks: u64,
    /// SYN-ACKs sent again for connections the server speaks first on.
    pub syn_acks_again: u64,
    /// Connections made from valid cookies.
    pub accepted: u64,
    /// Valid cookies dropped: the table was full.
    pub table_full: u64,
    /// Valid cookies dropped: the source had its limit.
    pub per_source_refused: u64,
    /// Valid cookies dropped: the service did not take the connection.
    pub service_refused: u64,
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
    /// Connections that ended (reset by the peer, or given up by TCP with a
    /// RST) before the peer had acknowledged the whole stream.
    pub aborted: u64,
    /// Connections that ended in a TIME-WAIT record.
    pub time_wait: u64,
    /// Data segments that found no free work context (dropped; the peer
    /// retransmits).
    pub no_work: u64,
    /// Data not taken because its source holds its share of the work
    /// contexts (module docs, "Hostile clients").
    pub source_works_refused: u64,
}

/// How a region is carved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub connections: usize,
    pub works: usize,
}

/// Bytes a connection slot of service `A` costs with its share of the
/// index and the per-source counters and sets (buckets are a power of
/// two, at most twice the slots).
pub fn connection_bytes<A: Service>() -> usize {
    // Up to two buckets and four per-source entries per slot (each table
    // rounds up to a power of two), and the bit sets.
    core::mem::size_of::<Slot<A::Conn>>() + 2 * 4 + 4 * core::mem::size_of::<SourceCount>() + 1
}

/// Bytes of one work context of service `A`.
pub fn work_bytes<A: Service>() -> usize {
    core::mem::size_of::<Work<PinOf<A>, A::Work>>()
}

/// Bytes of the TIME-WAIT table.
pub fn time_wait_bytes() -> usize {
    core::mem::size_of::<TimeWaitTable<TIME_WAIT_RECORDS>>()
}

/// What a region of `bytes` holds for service `A` (module docs, "Memory"):
/// half for work contexts, at most `max_works`, the rest for slots.
pub fn layout<A: Service>(bytes: usize, max_works: usize) -> Layout {
    // Alignment and the small fixed arrays.
    let fixed = time_wait_bytes() + MAX_FRAME + 4096;
    let rest = bytes.saturating_sub(fixed);
    let works = (rest / 2 / work_bytes::<A>()).clamp(1, max_works.clamp(1, MAX_WORKS));
    let left = rest.saturating_sub(works * (work_bytes::<A>() + 1));
    Layout { connections: (left / connection_bytes::<A>()).min(MAX_CONNECTIONS), works }
}

/// Why the server could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    RegionTooSmall,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the connection region is too small for the server")
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
pub struct Server<L, N, A: Service + 'static> {
    pub wire: Wire<L, N>,
    pub service: A,
    table: Table<A::Conn>,
    works: &'static mut [Work<PinOf<A>, A::Work>],
    free_work: Option<u32>,
    /// Work contexts in use (owned or orphaned).
    busy_works: SlotSet,
    /// Of those, orphaned: their connection ended while frames that read
    /// their pins were in flight; they free themselves when the frames
    /// come back, whatever any peer does.
    orphans: usize,
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
    pub counters: Counters,
    next_sweep: u64,
    accepting: bool,
    rx: Option<&'static mut [u8; MAX_FRAME]>,
    /// Something could not be sent for want of a buffer: poll again soon.
    starved: bool,
    /// File data goes in bursts the device cuts ([`Settings::offload`]
    /// and the driver has TSO and checksum offload).
    tso: bool,
    /// The connection visited first: the one after the connection whose
    /// visit used the last transmit buffer in an earlier round.
    turn: usize,
    /// SYN-ACKs to send again, and where the next one is recorded.
    handshakes: [Option<Handshake>; HANDSHAKES],
    next_handshake: usize,
}

/// A SYN-ACK sent for a connection the server speaks first on, to send
/// again until the connection is made.
#[derive(Clone, Copy, Debug)]
struct Handshake {
    tuple: FourTuple,
    /// The SYN-ACK's header (the cookie as its sequence number).
    header: TcpHeader,
    /// When to send it again (ns), and how many times it was.
    due: u64,
    tries: u8,
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

impl<L: Link, N: Neighbours, A: Service> Server<L, N, A> {
    /// A server for `service` on `wire` with its tables out of `arena`
    /// (module docs, "Memory"; at most `max_works` work contexts), not
    /// accepting yet ([`Server::accept`]).
    pub fn new(
        wire: Wire<L, N>,
        service: A,
        arena: &mut Arena,
        settings: Settings,
        max_works: usize,
        now: u64,
    ) -> Result<Self, StartError> {
        let Layout { connections, works } = layout::<A>(arena.remaining(), max_works);
        if connections == 0 {
            return Err(StartError::RegionTooSmall);
        }
        let tw_seed = derive(&settings.seed, 1);
        let timewait = &mut arena.array(1, |_| TimeWaitTable::new(tw_seed)).ok_or(StartError::RegionTooSmall)?[0];
        let rx = &mut arena.array(1, |_| [0u8; MAX_FRAME]).ok_or(StartError::RegionTooSmall)?[0];
        let work_slice = arena.array(works, |i| Work {
            stream: Stream::new(),
            app: A::new_work(),
            owner: None,
            next_free: (i + 1 < works).then_some((i + 1) as u32),
        });
        let works_arr = work_slice.ok_or(StartError::RegionTooSmall)?;
        let busy_works = SlotSet::new(arena, works).ok_or(StartError::RegionTooSmall)?;
        let buckets_len = connections.next_power_of_two();
        let slots = arena.array(connections, |_| Table::empty_slot()).ok_or(StartError::RegionTooSmall)?;
        let buckets = arena.array(buckets_len, |_| crate::table::NIL).ok_or(StartError::RegionTooSmall)?;
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
            service,
            table,
            works: works_arr,
            free_work: Some(0),
            busy_works,
            orphans: 0,
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
            counters: Counters::default(),
            next_sweep: u64::MAX,
            accepting: false,
            rx: Some(rx),
            starved: false,
            tso,
            turn: 0,
            handshakes: [None; HANDSHAKES],
            next_handshake: 0,
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

    /// Work contexts orphaned (their connection ended; they wait for the
    /// NIC to give back frames that read their pins).
    pub fn orphaned_works(&self) -> usize {
        self.orphans
    }

    /// TIME-WAIT records held.
    pub fn time_wait_records(&self) -> usize {
        self.timewait.len()
    }

    /// Connection `i`'s slot, if it is in use.
    pub fn slot(&self, i: usize) -> Option<&Slot<A::Conn>> {
        self.table.slots.get(i).filter(|s| s.tcp.is_some())
    }

    /// Receives, serves and sends at `now` (ns); returns when to run
    /// again at the latest.
    pub fn poll(&mut self, now: u64, store: &mut A::Store) -> Option<u64> {
        self.service.tick(now);
        self.wire.now = now;
        let now_ms = now / MS_NS;
        if self.jar.rotation_due(now_ms) {
            self.rotations += 1;
            self.jar.rotate(derive(&self.settings.seed, 1000 + self.rotations), now_ms);
        }
        self.timewait.expire(now_ms);
        self.starved = false;
        self.retire(store);
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
                self.on_frame(&rx[..r.len], r.checksum_verified, now, store);
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
        self.handshakes_again(now, store);
        // Connections are visited from `turn` round to it again. When
        // transmit buffers run out during a visit, the next round starts
        // after that connection: the ones that found none go first then
        // (round robin; from slot 0 every time, the lowest slots would take
        // every buffer that comes back and the others stall). A visit may
        // wake a connection before it (FTP: a transfer's end wakes its
        // control connection): a second pass visits those.
        let turn = self.turn;
        let mut first_starved = None;
        for _ in 0..2 {
            for (from, to) in [(turn, usize::MAX), (0, turn)] {
                let mut next = self.dirty.first_from(from);
                while let Some(i) = next.filter(|&i| i < to) {
                    next = self.dirty.first_from(i + 1);
                    self.dirty.remove(i);
                    self.visit(i, now, store);
                    if self.starved && first_starved.is_none() {
                        first_starved = Some(i);
                    }
                }
            }
            if self.starved || self.dirty.is_empty() {
                break;
            }
        }
        if let Some(i) = first_starved {
            self.turn = if i + 1 < self.table.capacity() { i + 1 } else { 0 };
        }
        self.wire.link.flush();
        // Starved of transmit buffers, the PD waits for them to come back
        // (it asks to be notified: `NetClient::ready_to_wait`).
        if more || (!self.starved && !self.dirty.is_empty()) {
            return Some(now);
        }
        (self.next_sweep != u64::MAX).then_some(self.next_sweep.max(now + MS_NS / 10))
    }

    /// Pins whose frames came back are released; orphaned contexts free.
    fn retire(&mut self, store: &mut A::Store) {
        let returned = self.wire.link.take_tx_returned();
        if returned == 0 {
            return;
        }
        let mut next = self.busy_works.first_from(0);
        while let Some(w) = next {
            next = self.busy_works.first_from(w + 1);
            let work = &mut self.works[w];
            work.stream.outgoing.returned(returned, &mut |p| store.release(p));
            match work.owner {
                None if !work.stream.outgoing.holds_pins() => {
                    self.orphans -= 1;
                    self.free_work_context(w);
                }
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
        // Orphaned contexts count as free: they come back without any
        // peer's help, so they are no source's to be charged for.
        let free = self.works.len() - (self.works_in_use() - self.orphans);
        if free <= limit && usize::from(self.table.works_of_source(source)) >= limit {
            self.counters.source_works_refused += 1;
            return None;
        }
        let w = self.free_work?;
        self.table.source_work(source, true);
        let work = &mut self.works[w as usize];
        self.free_work = work.next_free;
        work.stream.restart(self.table.slots[owner].written);
        self.service.start_work(&mut work.app);
        work.owner = Some(owner as u32);
        self.busy_works.insert(w as usize);
        Some(w)
    }

    /// Sends again the SYN-ACKs due of connections not made yet
    /// ([`Service::speaks_first`]); forgets those made or given up.
    fn handshakes_again(&mut self, now: u64, store: &mut A::Store) {
        for k in 0..HANDSHAKES {
            let Some(h) = self.handshakes[k] else { continue };
            if self.table.find(&h.tuple).is_some() || !self.accepting {
                self.handshakes[k] = None;
                continue;
            }
            if now >= h.due {
                if h.tries >= HANDSHAKE_RETRIES {
                    self.handshakes[k] = None;
                    continue;
                }
                if !self.wire.link.can_send() {
                    // Out of buffers: on a later poll.
                    self.starved = true;
                    self.next_sweep = self.next_sweep.min(h.due);
                    continue;
                }
                send::<L, N, PinOf<A>, A::Store>(&mut self.wire, &h.tuple, h.header, None, store, None);
                self.counters.syn_acks_again += 1;
                let tries = h.tries + 1;
                self.handshakes[k] = Some(Handshake { due: now + (SECOND_NS << tries), tries, ..h });
            }
            if let Some(h) = self.handshakes[k] {
                self.next_sweep = self.next_sweep.min(h.due);
            }
        }
    }

    /// Remembers the SYN-ACK `header` sent to `tuple` to send it again
    /// ([`Service::speaks_first`]).
    fn remember_handshake(&mut self, tuple: FourTuple, header: TcpHeader, now: u64) {
        let k = self.handshakes.iter().position(|h| h.is_some_and(|h| h.tuple == tuple)).unwrap_or_else(|| {
            let k = self.handshakes.iter().position(Option::is_none).unwrap_or(self.next_handshake);
            self.next_handshake = (k + 1) % HANDSHAKES;
            k
        });
        let due = now + SECOND_NS;
        self.handshakes[k] = Some(Handshake { tuple, header, due, tries: 0 });
        self.next_sweep = self.next_sweep.min(due);
    }

    /// Visits connection `i` in the next poll.
    pub fn wake(&mut self, i: usize) {
        if self.used.contains(i) {
            self.dirty.insert(i);
        }
    }

    fn on_frame(&mut self, frame: &[u8], checksum_verified: bool, now: u64, store: &mut A::Store) {
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
            self.on_segment(i, &incoming, now, store);
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
                    send::<L, N, PinOf<A>, A::Store>(&mut self.wire, &tuple, h, None, store, None);
                }
                return;
            }
            Some(Decision::Drop) => return,
            Some(Decision::Reopen) | None => {}
        }
        if incoming.rst {
            // The client gave up its handshake: no SYN-ACK again.
            for h in self.handshakes.iter_mut() {
                if h.is_some_and(|h| h.tuple == tuple) {
                    *h = None;
                }
            }
            return;
        }
        let listening = self.accepting && self.service.listens(&tuple);
        if incoming.syn && incoming.ack.is_none() && listening {
            let options = TcpOptions::parse(seg.options());
            let iss = self.jar.encode(&tuple, incoming.seq, options.mss, options.window_scale, now_ms);
            let window = A::ROOM.min(u32::from(u16::MAX)) as u16;
            let mut h = header(&tuple, iss, incoming.seq + 1, TcpFlags::SYN.union(TcpFlags::ACK), window);
            h.mss = Some(self.config.mss);
            h.window_scale = options.window_scale.map(|_| self.config.rcv_wscale);
            send::<L, N, PinOf<A>, A::Store>(&mut self.wire, &tuple, h, None, store, None);
            self.counters.syn_acks += 1;
            if self.service.speaks_first(&tuple) {
                self.remember_handshake(tuple, h, now);
            }
            return;
        }
        if let (Some(ack), false, true) = (incoming.ack, incoming.syn, listening) {
            if let Some(negotiated) = self.jar.validate(&tuple, incoming.seq, ack, now_ms) {
                if self.table.from_source(tuple.remote_addr) >= self.settings.max_per_source {
                    self.counters.per_source_refused += 1;
                    return;
                }
                let iss = ack + u32::MAX;
                let irs = incoming.seq + u32::MAX;
                let conn = Conn::accept(self.config, iss, irs, negotiated.mss, negotiated.peer_wscale);
                match self.table.insert(tuple, conn, now) {
                    Some(i) => match self.service.opened(i, &tuple, now) {
                        Some(state) => {
                            self.table.slots[i].service = state;
                            self.used.insert(i);
                            self.counters.accepted += 1;
                            self.on_segment(i, &incoming, now, store);
                        }
                        None => {
                            self.table.remove(i);
                            self.counters.service_refused += 1;
                        }
                    },
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
        if let (Some(ack), false, true) = (incoming.ack, incoming.syn, listening) {
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
        send::<L, N, PinOf<A>, A::Store>(&mut self.wire, &tuple, h, None, store, None);
        self.counters.resets += 1;
    }

    /// A segment of connection `i`.
    fn on_segment(&mut self, i: usize, seg: &Incoming<'_>, now: u64, store: &mut A::Store) {
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
        let room = if !seg.payload.is_empty() && slot.work.is_none() && !slot.closing {
            0
        } else {
            room(&self.service, slot, self.works)
        };
        let Some(conn) = slot.tcp.as_mut() else { return };
        let before = conn.acked();
        let got = conn.on_segment(now, seg, room, &mut self.challenges);
        let data = seg.payload.get(got.data.clone()).unwrap_or(&[]);
        if !data.is_empty() {
            slot.last_activity = now;
            if let (Some(w), false) = (slot.work, slot.closing) {
                self.service.receive(&mut slot.service, &mut self.works[w as usize].app, data, now);
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
            self.works[w as usize].stream.acked(got.acked, in_flight, &mut |p| store.release(p));
        }
        self.dirty.insert(i);
    }

    /// Visits connection `i`: timers, the service, sending, and its end.
    fn visit(&mut self, i: usize, now: u64, store: &mut A::Store) {
        let Some(slot) = self.table.slots.get_mut(i) else { return };
        let Some(conn) = slot.tcp.as_mut() else { return };
        conn.on_timer(now);
        if slot.work.is_none() && !slot.closing && self.service.wants_work(&slot.service) {
            if let Some(w) = self.take_work(i) {
                self.table.slots[i].work = Some(w);
            }
        }
        let slot = &mut self.table.slots[i];
        for _ in 0..3 {
            let work = slot.work.map(|w| &mut self.works[w as usize]);
            let served = self.service.serve(i, slot, work, now, store, &mut Wakes(&mut self.dirty));
            let sent =
                transmit(&self.service, slot, &mut self.wire, self.works, now, store, self.tso, &mut self.starved);
            if !served && !sent {
                break;
            }
        }
        if self.starved {
            // Out of transmit buffers: look again once they come back.
            self.dirty.insert(i);
        }
        let waiting = slot.work.is_some_and(|w| self.service.waiting(&self.works[w as usize].app));
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
                self.end(i, store);
            }
            State::Closed => {
                self.end(i, store);
            }
            _ => {
                let acked = conn.acked();
                if let Some(w) = slot.work {
                    let work = &self.works[w as usize];
                    let idle = work.stream.is_idle(acked) && self.service.is_idle(&work.app);
                    if (idle || (slot.closing && acked >= slot.written))
                        && !work.stream.outgoing.holds_pins()
                        && !self.service.holds(&work.app)
                    {
                        slot.work = None;
                        let source = slot.tuple.remote_addr;
                        self.free_work_context(w as usize);
                        self.table.source_work(source, false);
                    }
                }
                let slot = &self.table.slots[i];
                let work = slot.work.map(|w| &self.works[w as usize].app);
                let due = match (slot.tcp.as_ref().and_then(Conn::deadline), self.service.deadline(slot, work)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(d) = due {
                    self.next_sweep = self.next_sweep.min(d);
                }
            }
        }
    }

    /// The store's pins are void (the file cache PD restarted: what they
    /// named may be overwritten): every connection whose stream reads
    /// from a pin, in flight or about to be sent, is reset (net-tcp's
    /// [`Conn::abort`]), since a retransmission could send other bytes
    /// than the ones promised. How many.
    pub fn abort_transfers(&mut self) -> usize {
        let mut aborted = 0;
        let mut next = self.used.first_from(0);
        while let Some(i) = next {
            next = self.used.first_from(i + 1);
            let slot = &mut self.table.slots[i];
            let Some(w) = slot.work else { continue };
            let work = &self.works[w as usize];
            if !self.service.holds_pin(&work.app) && !work.stream.outgoing.holds_pins() {
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

    /// Resets connection `i` (its service gave up on it: FTP's aborted
    /// transfer); it ends on its next visit.
    pub fn abort(&mut self, i: usize) {
        if let Some(conn) = self.table.slots.get_mut(i).and_then(|s| s.tcp.as_mut()) {
            conn.abort();
            self.dirty.insert(i);
        }
    }

    /// Connection `i` is over: the service gives back what it holds, the
    /// work context retires (orphaned until the NIC gave back the frames
    /// that may read its pins), the slot is free.
    fn end(&mut self, i: usize, store: &mut A::Store) {
        let slot = &self.table.slots[i];
        if slot.tcp.as_ref().is_some_and(|c| c.state() == State::Closed && c.acked() < slot.written) {
            // Reset, or given up, before the peer had the whole stream.
            self.counters.aborted += 1;
        }
        let work = self.table.slots[i].work.take();
        let app = work.map(|w| &mut self.works[w as usize].app);
        self.service.ended(i, &self.table.slots[i], app, store, &mut Wakes(&mut self.dirty));
        if let Some(w) = work {
            self.table.source_work(self.table.slots[i].tuple.remote_addr, false);
            let in_flight = self.wire.link.tx_in_flight();
            let work = &mut self.works[w as usize];
            work.stream.outgoing.retire_all(in_flight, &mut |p| store.release(p));
            work.owner = None;
            if work.stream.outgoing.holds_pins() {
                self.orphans += 1;
            } else {
                self.free_work_context(w as usize);
            }
        }
        self.table.remove(i);
        self.used.remove(i);
        self.dirty.remove(i);
        self.waiting.remove(i);
    }
}

/// The window room of a connection: what its service can take, or
/// [`Service::ROOM`] when it has no context (one is taken when data
/// arrives) or is closing (what arrives is discarded).
fn room<A: Service, P>(service: &A, slot: &Slot<A::Conn>, works: &[Work<P, A::Work>]) -> u32 {
    match (slot.work, slot.closing) {
        (Some(w), false) => service.room(&works[w as usize].app),
        _ => A::ROOM,
    }
}

/// Sends what net-tcp asks of connection `slot`; whether anything went.
#[allow(clippy::too_many_arguments)]
fn transmit<L: Link, N: Neighbours, A: Service>(
    service: &A,
    slot: &mut Slot<A::Conn>,
    wire: &mut Wire<L, N>,
    works: &mut [Work<PinOf<A>, A::Work>],
    now: u64,
    store: &A::Store,
    tso: bool,
    starved: &mut bool,
) -> bool {
    let room = room(service, slot, works);
    let tuple = slot.tuple;
    let Some(conn) = slot.tcp.as_mut() else { return false };
    let mut sent = false;
    loop {
        if !wire.link.can_send() {
            *starved = true;
            break;
        }
        // With TSO, file data goes in bursts of one in-place run.
        let burst = |offset| match (tso, slot.work) {
            (true, Some(w)) => {
                works[w as usize].stream.outgoing.in_place_run(offset).map_or(0, |(_, len)| len.min(MAX_BURST))
            }
            _ => 0,
        } as u32;
        let Some(t) = conn.poll_with(now, room, burst) else { break };
        let mss = (t.len > conn.smss()).then_some(conn.smss() as u16);
        let stream = slot.work.and_then(|w| works.get_mut(w as usize)).map(|w| &mut w.stream);
        send_transmit(wire, &tuple, &t, stream, store, mss);
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
fn send_transmit<L: Link, N: Neighbours, P, S: crate::inplace::FileSums<P>>(
    wire: &mut Wire<L, N>,
    tuple: &FourTuple,
    t: &Transmit,
    work: Option<&mut Stream<P>>,
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
fn send<L: Link, N: Neighbours, P, S: crate::inplace::FileSums<P>>(
    wire: &mut Wire<L, N>,
    tuple: &FourTuple,
    h: TcpHeader,
    payload: Option<(u64, usize, &mut Stream<P>)>,
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
    let eth = crate::link::ETHERNET_HEADER;
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
