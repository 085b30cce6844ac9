//! The packet demultiplexer (`net-mux`): the virtio-net driver's one
//! client, and the driver of every network PD (`net_config`'s "clients"),
//! as pure logic. The PD in `main.rs` maps the regions, builds the queue
//! handles and calls [`Mux::handle`] on every wake-up and [`Mux::call`] on
//! every protected call.
//!
//! ```text
//!   driver ──rx_active──▶ copy ─▶ classify ─▶ copy ──rx_active──▶ client n
//!          ◀──rx_free──── (buffer back at once)     ◀──rx_free──── (its empty buffers)
//!          ◀──tx_active── copy in tx_payload ◀─ check ◀─ gather ◀──tx_active── client n
//!                         + in-place pieces passed through
//!          ───tx_free───▶ (slot free again)          ───tx_free───▶ (descriptors back)
//! ```
//!
//! # Receive
//!
//! The demultiplexer owns the driver's `rx_data` buffers, and lends them
//! all on the driver's `rx_free` at start ([`Mux::new`]). For each frame
//! on the driver's `rx_active` it
//!
//! 1. drops a frame not addressed to the node, counted per reason
//!    ([`RxRefused`], [`DriverCounters::rx_refused`]): the NIC receives
//!    every frame on the link (QEMU's virtio-net, like a promiscuous
//!    NIC, filters nothing), so the Ethernet destination must be the
//!    node's MAC or broadcast (multicast: no PD can subscribe, so none),
//!    and an IPv4 destination the node's address or a broadcast of its
//!    link (RFC 1122 §3.3.4.2: a host that does not forward discards the
//!    rest). No other PD sees such a frame, and the stray daemon never
//!    answers one;
//! 2. classifies the frame in place with [`net_filter::Table::classify_frame`]
//!    (the driver handed the buffer over and neither it nor the device
//!    writes it until it is returned): a malformed frame is counted there,
//!    under its reason, and dropped;
//! 3. copies it into a free receive buffer of the exclusive receiver and
//!    of every copy receiver, and enqueues it on that client's `rx_active`:
//!    the one copy of the receive path;
//! 4. returns the buffer to the driver on its `rx_free`.
//!
//! Towards a client the demultiplexer plays the driver's part of
//! `net-protocol`: the client lends its `rx_data` buffers on `rx_free`, and
//! the demultiplexer takes one from there only when a frame for the client
//! arrives. None free (or `rx_active` full) drops the frame for that client
//! and counts it in [`ClientCounters::rx_no_buffer`]: one slow PD never
//! holds up the others. The descriptor on `rx_active` is the lent one with
//! `len` set to the frame's length and `cookie` its checksum state
//! (`net-protocol`, "Offloads"): `RX_CSUM_VALID` if the device verified
//! the checksum, or if it was partial (a frame from the host's own stack,
//! virtio `NEEDS_CSUM`) and the demultiplexer completed it in the copy;
//! 0 otherwise. A
//! lent descriptor whose offset is not the start of a buffer is dropped and
//! counted in [`ClientCounters::queue_errors`].
//!
//! # Transmit
//!
//! A client's frame is a gather list on its `tx_active` (`net-protocol`):
//! one to [`MAX_TX_SEGMENTS`] descriptors, chained with [`TX_MORE`], in its
//! windows [`TxWindow::Headers`] (the client's `tx_data` region,
//! [`net_config::TX_DATA_SIZE`] bytes), [`TxWindow::Rx`] (its `rx_data`)
//! and, for a client the description lets send in place (`send_from`),
//! [`TxWindow::Files`] (its `send_from` region, which the demultiplexer
//! does not map: it knows the size, [`ClientConfig::send_from_size`]).
//! [`TxWindow::Payload`] is refused ([`TxDrop::PayloadWindow`]). The
//! demultiplexer
//!
//! 1. checks each descriptor against its window and copies the segments in
//!    `tx_data` and `rx_data` into its own memory, one after the other;
//!    an in-place segment is only checked to lie inside the `send_from`
//!    region (refusing bad descriptors, too many segments, bad lengths of
//!    the whole frame, at most [`MAX_FRAME_LEN`] bytes, and in-place
//!    segments not granted or out of bounds: [`TxDrop`]);
//! 2. checks the *copy* with the client's [`net_filter::TxPolicy`] (source MAC
//!    and IPv4 address, owned protocol and endpoint; see `net_filter::tx`). In
//!    a frame with in-place segments, only the bytes copied before the
//!    first of them are checked, and they must hold the whole headers
//!    (Ethernet, IPv4, and the TCP header by its data offset or the UDP
//!    header), in TCP or UDP over IPv4 ([`TxDrop::InPlaceHeaders`]): bytes
//!    the NIC reads from the client's memory could change after any check,
//!    so they may only be payload;
//!
//!    A frame may begin with an offload descriptor (`net-protocol`'s
//!    `TxOffload`: the device computes the TCP/UDP checksum, and may cut a
//!    TCP segment of up to `MAX_TSO_FRAME_LEN` bytes into MSS-sized
//!    packets). The headers are checked as above, the checksum field is
//!    not (it holds the pseudo-header sum), and the request is refused if
//!    the driver lacks the offload ([`TxDrop::OffloadUnavailable`]; the
//!    driver's offloads are given by [`Mux::set_offloads`] and told to
//!    clients by the `Node` call, `NodeInfo::offloads`) or if its fields
//!    are not what the copied headers say ([`TxDrop::OffloadMismatch`]). The copied bytes are at
//!    most [`MAX_FRAME_LEN`] even then: a longer TSO frame's rest is
//!    in place;
//! 3. writes the copied bytes into one free slot of the driver's
//!    `tx_payload` region (the driver's window [`TxWindow::Payload`], which
//!    only the demultiplexer writes) and enqueues the frame on the driver's
//!    `tx_active` as its pieces in frame order, published together: slot
//!    sub-ranges and the in-place segments as the client gave them (window
//!    [`TxWindow::Files`], same offsets), consecutive copied segments
//!    making one piece, after the offload descriptor as checked if the
//!    frame had one. Each descriptor's `cookie` is the slot number, with
//!    [`TX_MORE`] on all but the last.
//!
//! The client's descriptors of a frame without in-place segments go back
//! on its `tx_free` as soon as the frame has been copied, whatever the
//! verdict: the client's bytes are no longer needed, so it may reuse them
//! at once. Those of an allowed frame with in-place segments are held with
//! its slot and go back when the driver returns the frame: until then the
//! NIC may still read the client's `send_from` bytes, and the descriptors'
//! return is how the client learns it may change them (a web server
//! unpins file blocks). A refused frame is counted per client and per
//! reason; the bytes sent in place are counted
//! ([`ClientCounters::tx_in_place_bytes`]). A slot becomes free again when
//! the driver returns the last descriptor of its frame on `tx_free`.
//!
//! Frames are taken from the clients in rounds of at most [`TX_BATCH`]
//! frames each, so that a busy client does not starve the others of slots;
//! a round starts with the client whose turn the driver cut short in the
//! previous one (or the next client, if that one had sent in its turn),
//! not with client 0, so the slots the driver frees go round the busy
//! clients in turn. Frames are taken only while the driver can take a
//! frame of the most pieces: a free slot and room for [`MAX_TX_SEGMENTS`]
//! descriptors on its `tx_active`.
//! Otherwise the frames wait in the clients' queues until the driver
//! returns some. A descriptor is taken from a client's `tx_active` only
//! while its `tx_free` has room for it and for every descriptor of the
//! client held (of its frame still arriving and of its in-place frames at
//! the driver), so that queue never overflows even if the client does not
//! reclaim; a frame split over wake-ups is assembled across them.
//!
//! # Signalling
//!
//! Per `shared-queue`: after producing on a queue, [`Mux::handle`] reports
//! whether its consumer asked for a signal ([`Notify`]: once per peer per
//! wake-up). Before it returns, it asks for a signal on everything it waits
//! on and looks once more ("request signal, then re-check"): the driver's
//! `rx_active` always; each client's `tx_active`; and the driver's
//! `tx_free` only while the driver can take no frame (every `tx_payload`
//! slot in flight, or its `tx_active` too full; otherwise slots are
//! reclaimed on the next wake-up, whatever causes it). The
//! clients' `rx_free` is never waited on: a frame finding no buffer is
//! dropped, not held. A client whose `tx_free` is full gets a request on
//! its `tx_active` without the re-check (there is nothing to take until it
//! reclaims): once it has reclaimed, its next `should_signal` on
//! `tx_active` wakes the demultiplexer.
//!
//! # Protected calls
//!
//! [`Mux::call`] answers the calls of `net_mux_api` ([`net_mux_api::Request`])
//! from client `n` (on channel [`net_config::mux_client_channel`]`(n)`; see
//! [`client_of_channel`]), and [`Mux::answer`] the same calls as they
//! arrive in message registers, installing and removing filters inside the
//! client's grant only. The PD runs [`Mux::handle`] before each call, so
//! that a call sees the effect of every frame queued before it (a client
//! that sent frames and then asks for its counters finds them counted).
//! Attach ([`net_mux_api::Request::Attach`]) gives a restarted client a
//! clean slate (its filters, queues and frames in flight; the protocol is
//! in `net-mux-api`). What a client's calls log is limited to [`LOG_LINES_PER_SECOND`] lines
//! a second per client, the rest counted and summarized
//! ([`Mux::log_lines_suppressed`]): Stats and refused Installs cannot
//! flood the console the PDs share.
//!
//! Fixed capacities, no allocation, and no `unsafe`: shared memory is
//! reached through [`SharedMemory`] and the queue handles the caller made.
#![cfg_attr(not(test), no_std)]
// The tests make queue handles over host memory, which takes `unsafe`.
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

mod answers;
mod calls;
mod rx;
mod tx;

#[cfg(test)]
mod tests;

use core::fmt;

use lib_net_protocol::{
    FrameAssembler, TxFrame, CLIENT_RX_DATA_SIZE, CLIENT_RX_QUEUE_CAPACITY, MAX_FRAME_LEN, MAX_TX_SEGMENTS,
    OFFLOAD_ALL, OFFLOAD_RX_CSUM, OFFLOAD_TSO4, OFFLOAD_TX_CSUM, RX_BUFFERS, RX_BUFFER_SIZE, RX_DATA_SIZE,
    RX_QUEUE_CAPACITY, TX_PAYLOAD_SIZE, TX_QUEUE_CAPACITY,
};
#[cfg(doc)]
use lib_net_protocol::{TxWindow, TX_MORE};
use lib_queue::{BufferDesc, ReceiverQueues, SenderQueues};
use net_config::{ClientConfig, NetConfig, NodeAddress, MAX_CLIENTS};
use net_filter::{Owner, Table};
use net_packet::EthernetAddress;

pub use answers::TICKETS;
pub use calls::LOG_LINES_PER_SECOND;
pub use rx::RxRefused;
pub use tx::TxDrop;

/// Slots of the filter table (boot claims and run-time installs of every
/// client together).
pub const FILTER_SLOTS: usize = 64;
/// Bytes of one slot of the driver's `tx_payload` region: one frame.
pub const TX_SLOT_SIZE: usize = RX_BUFFER_SIZE;
/// Slots in `tx_payload`: frames in flight at the driver at most.
pub const TX_SLOTS: usize = TX_PAYLOAD_SIZE / TX_SLOT_SIZE;
/// Bytes of a frame's start copied for transmit validation: Ethernet, IPv4
/// without options (which validation refuses) and TCP with the longest
/// header fit.
pub const TX_HEADER_COPY: usize = 128;
/// Most frames taken from one client before the next client's turn.
pub const TX_BATCH: usize = 32;

const _: () = {
    // Room on the driver's tx_active is checked before each frame, for a
    // frame of the most pieces (`Driver::can_submit`): a queue too small
    // for one would stall transmit for good; more slots than it holds
    // descriptors could never all be in flight.
    assert!(MAX_TX_SEGMENTS <= TX_QUEUE_CAPACITY, "a frame of the most pieces fits in the driver's tx_active");
    assert!(TX_SLOTS <= TX_QUEUE_CAPACITY, "every slot can be in flight");
    assert!(TX_SLOTS <= u16::MAX as usize && TX_SLOTS.is_multiple_of(64));
    assert!(MAX_FRAME_LEN <= TX_SLOT_SIZE);
    assert!(TX_HEADER_COPY >= 14 + 20 + 60);
    assert!(MAX_CLIENTS <= 16 && MAX_CLIENTS <= net_filter::MAX_OWNERS);
    // Quotas: no client can fill the table for another.
    assert!(MAX_CLIENTS * net_mux_api::MAX_FILTERS_PER_CLIENT <= FILTER_SLOTS);
    assert!(net_config::MAX_CLAIMS <= net_mux_api::MAX_FILTERS_PER_CLIENT);
    assert!(RX_QUEUE_CAPACITY >= RX_BUFFERS, "every driver buffer fits in its rx_free");
};

/// Byte access to a region shared with another PD (the PD implements it
/// over `pds_runtime::MemoryRegion`, the tests over host memory). Accesses are
/// bounds-checked against [`len`](SharedMemory::len) and copy: nothing here
/// ever holds a reference into memory a peer may write.
pub trait SharedMemory {
    /// Bytes of the region.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `dst.len()` bytes from `offset`; `false` (and nothing
    /// copied) if that is not inside the region.
    fn read(&self, offset: usize, dst: &mut [u8]) -> bool;
    /// Copies `src` to `offset`; `false` (and nothing written) if that is
    /// not inside the region.
    fn write(&self, offset: usize, src: &[u8]) -> bool;
    /// Runs `f` on the `len` bytes at `offset`, in place; `None` (and `f`
    /// not run) if they are not inside the region. Only for bytes the
    /// other side has handed over and will not write while `f` runs: a
    /// received frame between the driver's `rx_active` and the return of
    /// its buffer on `rx_free` (`net-protocol`).
    fn view<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R>;
}

/// The demultiplexer's side of the driver's regions and queues
/// (`net-protocol`, as the driver's client).
pub struct DriverPort<'a, M> {
    /// `active`: received frames (a consumer bounded by
    /// [`RX_DATA_SIZE`]); `free`: empty buffers going back.
    pub rx: ReceiverQueues<'a, RX_QUEUE_CAPACITY>,
    /// `active`: frames to send; `free`: sent descriptors coming back (a
    /// consumer bounded by [`lib_net_protocol::TX_SPACE_LEN`]).
    pub tx: SenderQueues<'a, TX_QUEUE_CAPACITY>,
    /// The driver's `rx_data`, [`RX_DATA_SIZE`] bytes (read).
    pub rx_data: M,
    /// The driver's `tx_payload`, [`TX_PAYLOAD_SIZE`] bytes (written).
    pub tx_payload: M,
}

/// The demultiplexer's side of one client's regions and queues (it plays
/// the driver there).
pub struct ClientPort<'a, M> {
    /// `free`: buffers the client lends (a consumer bounded by
    /// [`CLIENT_RX_DATA_SIZE`]); `active`: frames for the client.
    pub rx: SenderQueues<'a, CLIENT_RX_QUEUE_CAPACITY>,
    /// `active`: the client's frames to send (a consumer bounded by
    /// [`lib_net_protocol::TX_SPACE_LEN`]); `free`: their descriptors back.
    pub tx: ReceiverQueues<'a, TX_QUEUE_CAPACITY>,
    /// The client's `rx_data`, [`CLIENT_RX_DATA_SIZE`] bytes (written; also its
    /// transmit window [`TxWindow::Rx`]).
    pub rx_data: M,
    /// The client's `tx_data`, [`net_config::TX_DATA_SIZE`] bytes (read:
    /// its transmit window [`TxWindow::Headers`]).
    pub tx_data: M,
}

/// Why [`Mux::new`] refused to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The configuration is a client's (`me` is set), not the
    /// demultiplexer's.
    NotDemultiplexer,
    /// Fewer client ports than the configuration has clients.
    MissingClientPort(usize),
    /// A region is smaller than `net-protocol` or `net-config` says
    /// (`client` `None`: the driver's).
    RegionTooSmall { region: &'static str, client: Option<usize> },
    /// The driver's `rx_free` did not take every receive buffer (its
    /// indices are corrupt).
    DriverQueue,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NotDemultiplexer => write!(f, "the network configuration is a client's (`me` is set)"),
            SetupError::MissingClientPort(n) => write!(f, "no regions for client {n}"),
            SetupError::RegionTooSmall { region, client: None } => {
                write!(f, "the driver's {region} region is too small")
            }
            SetupError::RegionTooSmall { region, client: Some(n) } => {
                write!(f, "client {n}'s {region} region is too small")
            }
            SetupError::DriverQueue => write!(f, "the driver's rx_free queue is corrupt"),
        }
    }
}

/// Whom to notify after [`Mux::handle`]: the peers that asked for a signal
/// on a queue the demultiplexer produced to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub driver: bool,
    /// The driver was restarted: the PD makes the driver's Attach call
    /// (`net-protocol`, "Starting over"), then [`Mux::driver_attached`],
    /// then handles again.
    pub driver_restarted: bool,
    /// Bit `n`: client `n`.
    clients: u16,
}

impl Notify {
    /// Whether client `n` is to be notified.
    pub fn client(&self, n: usize) -> bool {
        n < MAX_CLIENTS && self.clients & (1 << n) != 0
    }

    /// The clients to notify, in index order.
    pub fn clients(&self) -> impl Iterator<Item = usize> {
        let bits = self.clients;
        (0..MAX_CLIENTS).filter(move |n| bits & (1 << n) != 0)
    }
}

/// Where log lines go: the PD passes `pds_runtime::log!`, tests a buffer.
pub type LogSink<'l> = dyn FnMut(fmt::Arguments<'_>) + 'l;

/// The channel a protected call or notification from client `n` arrives
/// on is [`net_config::mux_client_channel`]`(n)`: the client, or `None`
/// for any other channel (the driver's among them).
pub fn client_of_channel(channel: u8) -> Option<usize> {
    (0..MAX_CLIENTS).find(|&n| net_config::mux_client_channel(n) == channel)
}

/// Counters of one client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Frames copied into its receive queue.
    pub rx_delivered: u64,
    /// Frames for it dropped: no buffer lent (or `rx_active` full).
    pub rx_no_buffer: u64,
    /// Frames it sent that passed validation and went to the driver.
    pub tx_allowed: u64,
    /// Bytes of those frames sent in place from its `send_from` region
    /// (read by the NIC where they are; never copied).
    pub tx_in_place_bytes: u64,
    /// Frames it sent that were refused, by [`TxDrop::index`].
    pub tx_refused: [u64; TxDrop::COUNT],
    /// Filter claims refused (at boot and by [`net_mux_api::Request::Install`]).
    pub claims_refused: u64,
    /// Bad entries in its queues: descriptors outside their region,
    /// receive buffers not at a buffer's start, corrupt indices.
    pub queue_errors: u64,
}

impl ClientCounters {
    /// Refused frames, all reasons.
    pub fn tx_refused_total(&self) -> u64 {
        self.tx_refused.iter().fold(0, |sum, n| sum.wrapping_add(*n))
    }
}

/// Counters of the driver side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Frames taken from the driver's `rx_active`.
    pub rx_frames: u64,
    /// Frames handed to the driver's `tx_active`.
    pub tx_frames: u64,
    /// Bad entries from the driver: lengths or offsets outside
    /// `net-protocol`, unknown transmit slots, corrupt indices.
    pub errors: u64,
    /// Received frames not addressed to the node, dropped before
    /// classification, by [`RxRefused::index`].
    pub rx_refused: [u64; RxRefused::COUNT],
}

/// The driver side: its queues and the `tx_payload` slots.
struct Driver<'a, M> {
    port: DriverPort<'a, M>,
    /// Stack of free `tx_payload` slots (`free_slots[..free_count]`).
    free_slots: [u16; TX_SLOTS],
    free_count: usize,
    /// Bit per slot: handed to the driver and not yet back.
    in_flight: [u64; TX_SLOTS / 64],
    /// Per slot in flight with in-place pieces: the client (its index) and
    /// its frame's descriptors, returned to it with the slot.
    held: [Option<(u8, TxFrame)>; TX_SLOTS],
    /// Something was enqueued for the driver during this wake-up.
    produced: bool,
    /// Sent descriptors were taken back from its `tx_free` during this
    /// wake-up.
    reclaimed: bool,
    /// Its restart marker was found on `rx_active` (`net-protocol`,
    /// "Starting over"): nothing goes to it until it has attached again.
    restarted: bool,
    /// Notify it after the next wake-up whatever it asked: its queues were
    /// reset, signal requests with them.
    force_notify: bool,
    counters: DriverCounters,
}

/// One client: its queues, configuration, transmit state and counters.
struct Client<'a, M> {
    port: ClientPort<'a, M>,
    config: ClientConfig,
    owner: Owner,
    /// Collects the client's `tx_active` descriptors into frames.
    assembler: FrameAssembler,
    /// Its descriptors held with in-place frames at the driver.
    in_place_held: usize,
    /// It made its first Attach call (`net-mux-api`): the next one is a
    /// restarted client's.
    attached: bool,
    /// Something was enqueued for the client during this wake-up.
    produced: bool,
    counters: ClientCounters,
}

/// The demultiplexer.
pub struct Mux<'a, M> {
    node: NodeAddress,
    mac: EthernetAddress,
    table: Table<FILTER_SLOTS>,
    driver: Driver<'a, M>,
    clients: [Option<Client<'a, M>>; MAX_CLIENTS],
    client_count: usize,
    /// The frame being handled: a private copy, the only bytes classified,
    /// checked, and copied on.
    frame: [u8; MAX_FRAME_LEN],
    /// The driver's offloads (`net-protocol` `OFFLOAD_*` bits): what
    /// clients may ask of it, and what the `Node` call tells them.
    offloads: u64,
    /// The client whose transmit turn comes first in the next round.
    tx_next: usize,
    /// The tickets and rate limits of the clients' answers (`answers`).
    answers: answers::Answers,
    /// Monotonic time in nanoseconds (the timer PD's `NOW`), if the PD
    /// has a clock: answer rate limits and log rate limits need it.
    clock: Option<fn() -> u64>,
    /// What each client's calls may still log (`calls`).
    log_budgets: [calls::LogBudget; MAX_CLIENTS],
}

impl<'a, M: SharedMemory> Mux<'a, M> {
    /// Starts the demultiplexer of the node `config` describes, with the
    /// driver's MAC address `mac`: checks the regions, installs every
    /// client's boot claims inside its grant (a refused claim is logged and
    /// counted), logs the node and its clients, and lends every buffer of
    /// the driver's `rx_data` on its `rx_free`. Then call
    /// [`handle`](Self::handle) once, to arm the signal requests.
    ///
    /// `clients` gives the ports of clients `0..client_count`, in order.
    pub fn new(
        config: &NetConfig,
        mac: [u8; 6],
        driver: DriverPort<'a, M>,
        clients: impl IntoIterator<Item = ClientPort<'a, M>>,
        log: &mut LogSink<'_>,
    ) -> Result<Self, SetupError> {
        if config.me.is_some() {
            return Err(SetupError::NotDemultiplexer);
        }
        let too_small = |region, client| Err(SetupError::RegionTooSmall { region, client });
        if driver.rx_data.len() < RX_DATA_SIZE {
            return too_small("rx_data", None);
        }
        if driver.tx_payload.len() < TX_PAYLOAD_SIZE {
            return too_small("tx_payload", None);
        }
        let unclaimed = config.clients().iter().position(|c| c.unclaimed_ipv4);
        let mut mux = Mux {
            node: config.node,
            mac: EthernetAddress(mac),
            table: Table::new(unclaimed.and_then(Owner::new)),
            driver: Driver {
                port: driver,
                free_slots: core::array::from_fn(|i| (TX_SLOTS - 1 - i) as u16),
                free_count: TX_SLOTS,
                in_flight: [0; TX_SLOTS / 64],
                held: [None; TX_SLOTS],
                produced: false,
                reclaimed: false,
                restarted: false,
                force_notify: false,
                counters: DriverCounters::default(),
            },
            clients: core::array::from_fn(|_| None),
            client_count: config.clients().len(),
            frame: [0; MAX_FRAME_LEN],
            offloads: 0,
            tx_next: 0,
            answers: answers::Answers::new(),
            clock: None,
            log_budgets: [calls::LogBudget::default(); MAX_CLIENTS],
        };
        let mut ports = clients.into_iter();
        for (n, client_config) in config.clients().iter().enumerate() {
            let port = ports.next().ok_or(SetupError::MissingClientPort(n))?;
            if port.rx_data.len() < CLIENT_RX_DATA_SIZE {
                return too_small("rx_data", Some(n));
            }
            if port.tx_data.len() < net_config::TX_DATA_SIZE as usize {
                return too_small("tx_data", Some(n));
            }
            mux.clients[n] = Some(Client {
                port,
                config: *client_config,
                owner: Owner::new(n).ok_or(SetupError::MissingClientPort(n))?,
                assembler: FrameAssembler::default(),
                in_place_held: 0,
                attached: false,
                produced: false,
                counters: ClientCounters::default(),
            });
        }
        for n in 0..mux.client_count {
            mux.install_boot_claims(n, log);
        }
        mux.log_node(log);
        for i in 0..RX_BUFFERS {
            let desc = BufferDesc { offset: (i * RX_BUFFER_SIZE) as u64, len: RX_BUFFER_SIZE as u32, cookie: 0 };
            if mux.driver.port.rx.free.enqueue(desc).is_err() {
                return Err(SetupError::DriverQueue);
            }
        }
        mux.driver.produced = true;
        Ok(mux)
    }

    /// The driver attached again after its restart (the PD made the call
    /// [`Notify::driver_restarted`] asked for; `net-protocol`, "Starting
    /// over"): empties this side of the driver's four queues, takes back
    /// every transmit slot it had at the driver (the reset device sends
    /// none of them; a client's in-place descriptors go back to it, since
    /// the NIC no longer reads those bytes), lends every receive buffer
    /// again, and logs what it did. The driver is notified after the next
    /// [`handle`](Self::handle).
    pub fn driver_attached(&mut self, log: &mut LogSink<'_>) {
        let Mux { driver, clients, .. } = self;
        driver.port.rx.reset();
        driver.port.tx.reset();
        let mut dropped = 0;
        for slot in 0..TX_SLOTS {
            let bit = 1u64 << (slot % 64);
            if driver.in_flight[slot / 64] & bit == 0 {
                continue;
            }
            driver.in_flight[slot / 64] &= !bit;
            driver.free_slots[driver.free_count] = slot as u16;
            driver.free_count += 1;
            dropped += 1;
            if let Some((n, frame)) = driver.held[slot].take() {
                if let Some(Some(client)) = clients.get_mut(usize::from(n)) {
                    client.in_place_held -= frame.descs().len();
                    client.give_back(frame.descs());
                }
            }
        }
        for i in 0..RX_BUFFERS {
            let desc = BufferDesc { offset: (i * RX_BUFFER_SIZE) as u64, len: RX_BUFFER_SIZE as u32, cookie: 0 };
            if driver.port.rx.free.enqueue(desc).is_err() {
                driver.counters.errors += 1;
            }
        }
        driver.produced = true;
        driver.force_notify = true;
        driver.restarted = false;
        log(format_args!(
            "the driver attached again (restarted): its queues emptied, {RX_BUFFERS} receive buffers lent again, {dropped} frames it had not sent dropped"
        ));
    }

    /// Records the offloads the driver has (its `Driver::offloads` answer;
    /// none until this is called) and logs them.
    pub fn set_offloads(&mut self, offloads: u64, log: &mut LogSink<'_>) {
        self.offloads = offloads & OFFLOAD_ALL;
        let on = |bit| if self.offloads & bit != 0 { "yes" } else { "no" };
        log(format_args!(
            "driver offloads: tx checksum {}, tso4 {}, rx checksum {}",
            on(OFFLOAD_TX_CSUM),
            on(OFFLOAD_TSO4),
            on(OFFLOAD_RX_CSUM)
        ));
    }

    /// Gives the demultiplexer a clock: monotonic nanoseconds (the PD
    /// passes the timer PD's `NOW`). It is read only when a rate limit
    /// must decide (an answer bucket with no whole token left, a log line
    /// over its budget). Without one, answers are not rate-limited here
    /// and the log budget never refills.
    pub fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = Some(clock);
    }

    /// The driver's offloads, as [`set_offloads`](Self::set_offloads) recorded them.
    pub fn offloads(&self) -> u64 {
        self.offloads
    }

    /// Does everything pending (see the crate documentation): returned
    /// transmit slots, received frames, the clients' frames to send, in
    /// rounds until nothing is left and every signal request is armed.
    /// Returns whom to notify.
    pub fn handle(&mut self) -> Notify {
        let mut notify = Notify::default();
        loop {
            self.reclaim_slots();
            self.receive();
            if self.driver.restarted {
                self.collect_signals(&mut notify);
                notify.driver = false;
                notify.driver_restarted = true;
                return notify;
            }
            let blocked = self.transmit();
            self.collect_signals(&mut notify);
            if self.ready_to_sleep(blocked) {
                break;
            }
        }
        notify
    }

    /// Adds the peers that asked for a signal on the queues produced to
    /// since the last call (P2–P3 of the `shared-queue` protocol).
    fn collect_signals(&mut self, notify: &mut Notify) {
        let driver = &mut self.driver;
        notify.driver |= core::mem::take(&mut driver.force_notify);
        if core::mem::take(&mut driver.produced) {
            // Non-short-circuit `|`: each clears the request it reports.
            notify.driver |= driver.port.rx.free.should_signal() | driver.port.tx.active.should_signal();
        }
        // The driver takes frames only while our `tx_free` has room for
        // their return: having emptied it, wake a driver that waits with
        // frames still queued (it cannot know we consumed; nothing else
        // would tell it until we send again).
        if core::mem::take(&mut driver.reclaimed) && driver.port.tx.active.is_empty() == Ok(false) {
            notify.driver |= driver.port.tx.active.should_signal();
        }
        for (n, client) in self.clients.iter_mut().enumerate() {
            let Some(client) = client else { continue };
            if core::mem::take(&mut client.produced)
                && (client.port.rx.active.should_signal() | client.port.tx.free.should_signal())
            {
                notify.clients |= 1 << n;
            }
        }
    }

    /// Arms a signal request on every queue there is reason to wait on,
    /// then looks again (C1–C3 of the `shared-queue` protocol); `true` if
    /// nothing arrived meanwhile, so the PD may wait. `blocked`: the driver
    /// can take no frame (every transmit slot in flight, or its `tx_active`
    /// too full).
    fn ready_to_sleep(&mut self, blocked: bool) -> bool {
        let mut work = self.driver.port.rx.active.request_signal_if_empty() == Ok(false);
        if blocked {
            // The clients' frames wait for the driver: wake up when it
            // returns some (every descriptor on its tx_active comes back
            // on tx_free once sent).
            work |= self.driver.port.tx.free.request_signal_if_empty() == Ok(false);
        } else {
            for client in self.clients.iter().flatten() {
                if client.can_take_tx() {
                    work |= client.port.tx.active.request_signal_if_empty() == Ok(false);
                } else {
                    // Its tx_free is full: its next frame (after it has
                    // reclaimed some) wakes us, and we look again.
                    client.port.tx.active.request_signal();
                }
            }
        }
        !work
    }

    /// The driver side's counters.
    pub fn driver_counters(&self) -> DriverCounters {
        self.driver.counters
    }

    /// Client `n`'s counters.
    pub fn client_counters(&self, n: usize) -> Option<ClientCounters> {
        Some(self.clients.get(n)?.as_ref()?.counters)
    }

    /// The filter table (filters, hits, malformed and unmatched counters).
    pub fn table(&self) -> &Table<FILTER_SLOTS> {
        &self.table
    }

    /// Free slots of `tx_payload`.
    pub fn free_tx_slots(&self) -> usize {
        self.driver.free_count
    }

    fn client_name(&self, owner: Owner) -> &str {
        match self.clients.get(owner.index()) {
            Some(Some(client)) => client.config.name(),
            _ => "?",
        }
    }
}
