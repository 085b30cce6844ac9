//! The contract between the network driver PD and its client PD: which
//! regions they share, how big the queues are, what a descriptor means on
//! each queue, and how statistics are read.
//!
//! # Regions
//!
//! | region         | driver | client | holds                                          |
//! |----------------|--------|--------|------------------------------------------------|
//! | `rx_data`      | rw, DMA| r      | [`RX_BUFFERS`] receive buffers of [`RX_BUFFER_SIZE`] bytes |
//! | `rx_free`      | rw     | rw     | queue: empty rx buffers, client → driver        |
//! | `rx_active`    | rw     | rw     | queue: received frames, driver → client         |
//! | `tx_headers`   | r, DMA | rw     | client's frame headers (any layout the client likes) |
//! | `tx_payload`   | r, DMA | rw     | optional: client's payload (e.g. file data)     |
//! | `send_from`    | DMA only | any  | optional: a region the client sends from in place (e.g. a web server's file cache) |
//! | `tx_active`    | rw     | rw     | queue: frames to send, client → driver          |
//! | `tx_free`      | rw     | rw     | queue: sent descriptors coming back, driver → client |
//!
//! The queues are `shared-queue` (`lib/queue`) regions of [`RX_QUEUE_CAPACITY`] and
//! [`TX_QUEUE_CAPACITY`] descriptors. The DMA regions must be physically
//! contiguous (the driver learns each one's physical base with `setvar
//! region_paddr`); the device reads and writes them directly, so the driver
//! never copies frame data.
//!
//! `send_from` ([`TxWindow::Files`]) is not mapped by the driver at all:
//! the driver knows only its physical base and size (`setvar region_paddr`
//! and `region_size`) and hands the device addresses inside it. Only the PD
//! that produces its contents needs a mapping. Behind the demultiplexer
//! (`net/config`), the region belongs to one of the demultiplexer's
//! clients: the demultiplexer knows its size, not its contents, and passes
//! segments in it through to the driver unchanged.
//!
//! # Receive
//!
//! At start the client owns every buffer of `rx_data` and lends them all to
//! the driver on `rx_free` (the driver posts as many as the device takes and
//! keeps the rest queued). The driver hands filled buffers to the client: a descriptor
//! on `rx_active` is `{offset, len, cookie}` with `offset` the start of a
//! buffer (a multiple of [`RX_BUFFER_SIZE`]), `len` the frame length (the
//! Ethernet frame without FCS, [`MIN_FRAME_LEN`]`..=`[`MAX_FRAME_LEN`]) and
//! `cookie` its checksum state ("Offloads" below; 0 without offloads). The frame starts at the buffer's first byte.
//! The client returns a buffer by enqueueing a descriptor with the same
//! `offset` on `rx_free` (`len` is ignored); until then it may read it, and
//! may transmit from it in place (window [`TxWindow::Rx`]).
//!
//! # Transmit: frames as gather lists
//!
//! A frame is one to [`MAX_TX_SEGMENTS`] consecutive descriptors on
//! `tx_active`, sent back to back: typically a header the client wrote into
//! `tx_headers` and a payload that stays where it is (a received buffer, or
//! file data). Each descriptor's `cookie` has [`TX_MORE`] set if another
//! descriptor of the same frame follows; the other 31 bits are the client's,
//! returned unchanged. A client publishes a frame's descriptors together
//! (one `enqueue_batch`), though the driver copes with a frame split across
//! wake-ups. [`FrameAssembler`] is the consumer's side of this rule, shared
//! by the driver and the demultiplexer.
//!
//! The descriptors' `offset`s are in the *transmit address space*: the
//! client's DMA-able regions, each in its own 4 GiB window
//! ([`TxWindow`], [`tx_offset`]). A driver's `tx_active` consumer is made
//! with a data length of [`TX_SPACE_LEN`]; it checks each descriptor
//! against the real size of its window, so a segment never crosses a
//! region's end.
//!
//! Once the device has sent the frame (or the driver refused it), every one
//! of its descriptors comes back on `tx_free`, unchanged: the client then
//! knows that the device no longer reads those bytes, and may reuse the
//! header slot or return the received buffer it sent from.
//!
//! # Transmit in place from `send_from`
//!
//! A segment in [`TxWindow::Files`] names bytes of the `send_from` region,
//! which the device reads by DMA where they are: nobody copies them. A
//! frame may interleave such segments with segments in the other windows
//! (e.g. a copied TCP header, then file data, then more copied bytes);
//! [`MAX_TX_SEGMENTS`] bounds the whole list. Until the segment's
//! descriptor comes back on `tx_free`, the device may still read those
//! bytes, so their producer must not change them: that is how a web
//! server knows when a cached file block may be evicted.
//!
//! # Offloads
//!
//! Where the device has them (virtio 1.x spec 5.1.3: `VIRTIO_NET_F_CSUM`,
//! `VIRTIO_NET_F_HOST_TSO4`, `VIRTIO_NET_F_GUEST_CSUM`), the driver
//! negotiates them and says which it has: the protected call
//! [`CALL_OFFLOADS`] ([`Driver::offloads`]) answers reply label 0 with
//! message register 0 the bits [`OFFLOAD_TX_CSUM`], [`OFFLOAD_TSO4`],
//! [`OFFLOAD_RX_CSUM`]. The demultiplexer asks once at boot and tells each
//! client in the fifth register of its `Node` call (`net-mux-api`'s
//! `NodeInfo::offloads`). Without them nothing changes: frames
//! carry complete checksums and are at most [`MAX_FRAME_LEN`] bytes.
//!
//! **Transmit.** A frame asks for offloads with an *offload descriptor* as
//! its first descriptor: window [`TxWindow::Offload`], which names no
//! bytes, its offset and length encoding a [`TxOffload`] (`csum_start`,
//! `csum_offset`, `hdr_len`, flags `CSUM`/`TSO4`, MSS; layout in
//! [`TxOffload`]'s docs). It comes back on `tx_free` like any other. With
//! `CSUM` the frame's TCP or UDP checksum field holds only the
//! pseudo-header sum and the device completes it; with `TSO4` the frame
//! is one IPv4 TCP segment of up to [`MAX_TSO_FRAME_LEN`] bytes that the
//! device cuts into packets of `mss` payload bytes. A driver refuses
//! (`tx_dropped`) an offload descriptor anywhere but first, a request it
//! did not negotiate, and a frame longer than [`MAX_FRAME_LEN`] without
//! `TSO4`; the demultiplexer checks more (the fields against the headers
//! it copied) and counts its refusals per reason.
//!
//! *Limits.* The offload descriptor is one of the frame's
//! [`MAX_TX_SEGMENTS`] = 16: the spare one above, so a frame with
//! [`MAX_IN_PLACE`] = 7 in-place ranges and 8 copied pieces still fits
//! (16 descriptors, a chain of 1 + 15 at the driver). Behind the
//! demultiplexer the copied pieces are at most [`MAX_FRAME_LEN`] bytes in
//! all (its private copy) and must hold the whole headers; the rest of a
//! TSO frame is in-place ranges of `send_from`. A range's length is a
//! descriptor's `u32`, bounded only by the region, so a frame of
//! [`MAX_TSO_FRAME_LEN`] bytes is a copied header and one to seven ranges:
//! the file cache (`fs/cache`) keeps each file contiguous in its arena, so
//! a 64 KiB segment of one file is a single range (14 + 20 + 20 + 65480
//! bytes, say); seven ranges would allow it to gather seven separate
//! pieces. The driver's limits agree: its transmit chains are at most
//! 1 + [`MAX_TX_SEGMENTS`] descriptors of a 256-entry ring, and its
//! length check is [`MAX_TSO_FRAME_LEN`] with `TSO4`. A client's own
//! transmit buffer (`net-client`, 2 KiB per frame) holds a TSO frame's
//! first [`MAX_FRAME_LEN`] bytes only: its copied headers; the rest is
//! in place.
//!
//! **Receive.** The cookie of a descriptor on `rx_active`:
//! [`RX_CSUM_VALID`] says the frame's TCP/UDP checksum was
//! verified by the device (virtio `DATA_VALID`), so the client need not;
//! on the driver's `rx_active` only, [`RX_CSUM_PARTIAL`] with
//! [`rx_csum_start`]/[`rx_csum_offset`] says the checksum field holds
//! only the pseudo-header sum (virtio `NEEDS_CSUM` on receive): the
//! demultiplexer completes it in each copy it delivers and marks that
//! copy [`RX_CSUM_VALID`]. Other bits are zero.
//!
//! # Starting over
//!
//! When the monitor restarts the driver (its memory reset to its image),
//! the device is reset by the new driver's bring-up: every buffer it had
//! posted and every frame it had not sent are dropped, and nothing will
//! come back for them. The queue regions still hold the old indices. The
//! two sides start over (as `lib-queue`'s "Starting over" describes):
//!
//! 1. the restarted driver enqueues one **restart marker** on `rx_active`
//!    (its own producer: [`RX_RESTART_OFFSET`], `len` 0, `cookie` 0; see
//!    [`is_restart_marker`]), notifies the client, and touches no queue
//!    until step 2;
//! 2. the client, on dequeueing the marker (a descriptor outside
//!    `rx_data`, so its consumer hands it out as out of bounds), makes the
//!    protected call [`CALL_ATTACH`]; the driver resets its ends of the
//!    four queues while the client is blocked in it;
//! 3. the client resets its ends, lends every receive buffer again, and
//!    takes back every frame it had at the driver as sent (the device will
//!    not read those bytes any more), then carries on.
//!
//! Frames received before the marker are the old driver's, and valid.
//!
//! # Signalling
//!
//! Per the `shared-queue` protocol: each side notifies the other only if
//! the other asked (`signal_requested`), once per batch. The client asks on
//! `rx_active` before waiting for frames and on `tx_free` while it has
//! frames in flight; the driver asks on `tx_active` before waiting, and on
//! `rx_free` when the device could take more receive buffers than it has.
//!
//! # Statistics and the MAC address: the driver's calls
//!
//! The client may call the driver for its [`Stats`] ([`CALL_STATS`]), the
//! device's MAC address ([`CALL_MAC`]) and the offloads it negotiated
//! ([`CALL_OFFLOADS`], above): requests, replies, their encoding in
//! message registers, the client [`Driver`] and the driver's decode and
//! reply helpers are in [`calls`] (re-exported here), with the pieces all
//! the network's calls share ([`Message`], [`ERR_BAD_REQUEST`],
//! [`mac_to_word`]).
#![no_std]

pub mod calls;
mod gather;
mod in_place;
mod offload;

pub use calls::{
    driver_reply, encode_driver_reply, mac_from_word, mac_to_word, BadRequest, Driver, DriverError, DriverReply,
    DriverReplyMessage, DriverRequest, Message, CALL_ATTACH, CALL_MAC, CALL_OFFLOADS, CALL_STATS, DRIVER_REPLY_WORDS,
    ERR_BAD_REQUEST, ERR_NO_MAC, OK,
};

pub use gather::{FrameAssembler, Step, TxFrame};
pub use in_place::{InPlace, InPlaceList, MAX_FRAME_DESCS, MAX_IN_PLACE};
pub use offload::{
    rx_csum_offset, rx_csum_start, rx_partial_cookie, TxOffload, MAX_TSO_FRAME_LEN, OFFLOAD_ALL, OFFLOAD_RX_CSUM,
    OFFLOAD_TSO4, OFFLOAD_TX_CSUM, RX_CSUM_PARTIAL, RX_CSUM_VALID,
};

/// Bytes of one receive buffer. A frame (at most [`MAX_FRAME_LEN`]) starts
/// at its first byte.
pub const RX_BUFFER_SIZE: usize = 2048;
/// Receive buffers in `rx_data`.
pub const RX_BUFFERS: usize = 256;
/// Bytes of the `rx_data` region.
pub const RX_DATA_SIZE: usize = RX_BUFFER_SIZE * RX_BUFFERS;

/// Capacity of `rx_free` and `rx_active`: every receive buffer fits in
/// either queue, so the driver never has to hold a frame back for room.
pub const RX_QUEUE_CAPACITY: usize = RX_BUFFERS;

/// Receive buffers in a client's `rx_data` (the demultiplexer plays the
/// driver there). More than the driver's [`RX_BUFFERS`]: the driver's
/// buffers come back as soon as the demultiplexer has copied a frame out,
/// but a client's wait until the client runs, and the client runs below
/// the driver and the demultiplexer. A server's queue must hold what all
/// its connections may send at once while it is busy: with 256 keep-alive
/// clients each sending a request and a few ACKs, 256 buffers overflowed
/// (the demultiplexer dropped a few hundred frames a second and each cost
/// its connection a 200 ms retransmission timeout); 1024 did not.
pub const CLIENT_RX_BUFFERS: usize = 1024;
/// Bytes of a client's `rx_data` region.
pub const CLIENT_RX_DATA_SIZE: usize = RX_BUFFER_SIZE * CLIENT_RX_BUFFERS;
/// Capacity of a client's `rx_free` and `rx_active`: every buffer fits.
pub const CLIENT_RX_QUEUE_CAPACITY: usize = CLIENT_RX_BUFFERS;
/// Capacity of `tx_free` and `tx_active`, in descriptors (not frames).
pub const TX_QUEUE_CAPACITY: usize = 512;

/// Largest frame the driver sends or receives: an untagged Ethernet frame
/// with a 1500-byte payload, without FCS (the device adds and strips it).
pub const MAX_FRAME_LEN: usize = 1514;
/// Smallest frame: an Ethernet header.
pub const MIN_FRAME_LEN: usize = 14;

/// Most descriptors one transmitted frame may have: room for a frame of up
/// to 7 in-place ranges ([`TxWindow::Files`]) interleaved with up to 8
/// copied pieces, plus one spare: the offload descriptor
/// ([`TxWindow::Offload`]) if the frame has one. A driver's chain is one virtio-net header
/// and these, so a device queue must have more than this many entries.
pub const MAX_TX_SEGMENTS: usize = 16;
/// Cookie bit of a transmit descriptor: another descriptor of the same
/// frame follows.
pub const TX_MORE: u32 = 1 << 31;

/// log2 of the size of one window of the transmit address space.
pub const TX_WINDOW_SHIFT: u32 = 32;

/// The client's regions the driver may transmit from, each a window of the
/// transmit address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TxWindow {
    /// `tx_headers`: headers the client writes.
    Headers = 0,
    /// `rx_data`: received buffers, sent in place.
    Rx = 1,
    /// `tx_payload`: client data sent in place (optional region).
    Payload = 2,
    /// `send_from`: the region the description lets the client send from
    /// in place (`<client send_from="...">`, e.g. the web server's file
    /// cache), optional. The driver knows its physical base and size only.
    Files = 3,
    /// Not a region: a frame's offload descriptor ([`TxOffload`]) lies in
    /// this window and names no bytes.
    Offload = 4,
}

impl TxWindow {
    /// Every window, in index order.
    pub const ALL: [TxWindow; 5] =
        [TxWindow::Headers, TxWindow::Rx, TxWindow::Payload, TxWindow::Files, TxWindow::Offload];

    /// The window's index (its offset's high 32 bits).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Length of the transmit address space: the data length of a driver's
/// `tx_active` consumer.
pub const TX_SPACE_LEN: usize = TxWindow::ALL.len() << TX_WINDOW_SHIFT;

/// The transmit-space offset of byte `offset` of `window`.
pub const fn tx_offset(window: TxWindow, offset: u32) -> u64 {
    (window as u64) << TX_WINDOW_SHIFT | offset as u64
}

/// Splits a transmit-space offset into its window and the offset within it;
/// `None` if it names no window.
pub fn split_tx_offset(offset: u64) -> Option<(TxWindow, u32)> {
    let window = *TxWindow::ALL.get(usize::try_from(offset >> TX_WINDOW_SHIFT).ok()?)?;
    Some((window, offset as u32))
}

/// The offset of a restarted driver's restart marker on `rx_active`
/// (crate docs, "Starting over"): no buffer's.
pub const RX_RESTART_OFFSET: u64 = u64::MAX;

/// Whether `desc` is a restarted driver's restart marker.
pub fn is_restart_marker(desc: &lib_queue::BufferDesc) -> bool {
    desc.offset == RX_RESTART_OFFSET && desc.len == 0
}

/// Bytes of the `tx_headers` region.
pub const TX_HEADERS_SIZE: usize = 0x4000;
/// Bytes of the optional `tx_payload` region.
pub const TX_PAYLOAD_SIZE: usize = 0x10_0000;

/// The driver's counters, since it started. All counts are of frames
/// unless named bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received and handed to the client.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames the device completed that the driver could not pass on
    /// (malformed length).
    pub rx_dropped: u64,
    /// Frames sent by the device.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames refused (bad descriptor, too long, too many segments); their
    /// descriptors were returned unsent.
    pub tx_dropped: u64,
    /// Device interrupts handled.
    pub irqs: u64,
    /// Queue notifications written to the device.
    pub device_notifies: u64,
    /// Notifications sent to the client.
    pub client_notifies: u64,
    /// Malformed descriptors or corrupt queue indices found in the client's
    /// queues.
    pub client_errors: u64,
}

impl Stats {
    /// Message registers a [`CALL_STATS`] reply carries.
    pub const WORDS: usize = 10;

    /// The counters in message-register order (the field order above).
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        [
            self.rx_frames,
            self.rx_bytes,
            self.rx_dropped,
            self.tx_frames,
            self.tx_bytes,
            self.tx_dropped,
            self.irqs,
            self.device_notifies,
            self.client_notifies,
            self.client_errors,
        ]
    }

    /// The inverse of [`to_words`](Self::to_words).
    pub fn from_words(w: [u64; Self::WORDS]) -> Self {
        Stats {
            rx_frames: w[0],
            rx_bytes: w[1],
            rx_dropped: w[2],
            tx_frames: w[3],
            tx_bytes: w[4],
            tx_dropped: w[5],
            irqs: w[6],
            device_notifies: w[7],
            client_notifies: w[8],
            client_errors: w[9],
        }
    }
}

impl core::fmt::Display for Stats {
    /// One line, `key=value` pairs, the form the integration test parses.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "rx_frames={} rx_bytes={} rx_dropped={} tx_frames={} tx_bytes={} tx_dropped={} irqs={} device_notifies={} client_notifies={} client_errors={}",
            self.rx_frames,
            self.rx_bytes,
            self.rx_dropped,
            self.tx_frames,
            self.tx_bytes,
            self.tx_dropped,
            self.irqs,
            self.device_notifies,
            self.client_notifies,
            self.client_errors
        )
    }
}

/// A physically contiguous region a NIC may reach by DMA.
#[derive(Clone, Copy, Debug)]
pub struct DmaWindow {
    pub paddr: u64,
    pub len: usize,
}

/// A client's regions as a NIC driver's device sees them (every NIC driver
/// takes them; the description's physical addresses).
#[derive(Clone, Copy, Debug)]
pub struct ClientRegions {
    /// `rx_data`: [`RX_BUFFERS`] buffers of [`RX_BUFFER_SIZE`] bytes.
    pub rx_data: u64,
    /// The transmit windows ([`TxWindow`] order); `None` if absent.
    pub tx_windows: [Option<DmaWindow>; TxWindow::ALL.len()],
}

/// The transmit windows for the usual regions: `tx_headers`, `rx_data`
/// (sending received buffers in place) and, if present, `tx_payload` and
/// the `send_from` region (window [`TxWindow::Files`], whose size the
/// description gives).
pub fn tx_windows(
    headers: u64,
    rx_data: u64,
    payload: Option<u64>,
    send_from: Option<DmaWindow>,
) -> [Option<DmaWindow>; TxWindow::ALL.len()] {
    let mut w = [None; TxWindow::ALL.len()];
    w[TxWindow::Headers.index()] = Some(DmaWindow { paddr: headers, len: TX_HEADERS_SIZE });
    w[TxWindow::Rx.index()] = Some(DmaWindow { paddr: rx_data, len: RX_DATA_SIZE });
    w[TxWindow::Payload.index()] = payload.map(|paddr| DmaWindow { paddr, len: TX_PAYLOAD_SIZE });
    w[TxWindow::Files.index()] = send_from;
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_in_its_place() {
        let files = DmaWindow { paddr: 0x800_0000, len: 0x400_0000 };
        let w = tx_windows(0x1000, 0x10_0000, None, Some(files));
        assert_eq!(w[TxWindow::Headers.index()].map(|d| (d.paddr, d.len)), Some((0x1000, TX_HEADERS_SIZE)));
        assert_eq!(w[TxWindow::Rx.index()].map(|d| (d.paddr, d.len)), Some((0x10_0000, RX_DATA_SIZE)));
        assert!(w[TxWindow::Payload.index()].is_none());
        assert_eq!(w[TxWindow::Files.index()].map(|d| (d.paddr, d.len)), Some((files.paddr, files.len)));
        assert!(tx_windows(0, 0, Some(0x2000), None)[TxWindow::Files.index()].is_none());
    }

    #[test]
    fn tx_offsets_round_trip() {
        for w in TxWindow::ALL {
            assert_eq!(split_tx_offset(tx_offset(w, 0x1234)), Some((w, 0x1234)));
            assert_eq!(split_tx_offset(tx_offset(w, u32::MAX)), Some((w, u32::MAX)));
        }
        assert_eq!(split_tx_offset(TX_SPACE_LEN as u64), None);
        assert_eq!(split_tx_offset(u64::MAX), None);
    }

    #[test]
    fn stats_round_trip() {
        let s = Stats {
            rx_frames: 1,
            rx_bytes: 2,
            rx_dropped: 3,
            tx_frames: 4,
            tx_bytes: 5,
            tx_dropped: 6,
            irqs: 7,
            device_notifies: 8,
            client_notifies: 9,
            client_errors: 10,
        };
        assert_eq!(Stats::from_words(s.to_words()), s);
    }

    #[test]
    fn capacities_are_consistent() {
        const {
            assert!(RX_QUEUE_CAPACITY.is_power_of_two() && TX_QUEUE_CAPACITY.is_power_of_two());
            assert!(TX_QUEUE_CAPACITY >= 2 * RX_BUFFERS, "an echo of every rx buffer (header + payload) fits");
            assert!(TX_QUEUE_CAPACITY >= MAX_TX_SEGMENTS, "a frame of the most segments fits in a transmit queue");
            assert!(MAX_FRAME_LEN <= RX_BUFFER_SIZE);
        }
    }
}
