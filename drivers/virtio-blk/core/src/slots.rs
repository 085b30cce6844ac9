//! virtio-blk requests on the shared split virtqueue ([`lib_virtio::queue`]):
//! request slots, each with its own header and status byte in the driver's
//! DMA memory.
//!
//! # Chains
//!
//! Every request is a chain of descriptors (virtio 1.1 §5.2.6):
//!
//! 1. a 16-byte header the device reads (`type`, `reserved`, `sector`),
//! 2. the data buffer: written by the device for a read, read by it for a
//!    write; absent for a flush,
//! 3. one status byte the device writes.
//!
//! The driver has `slots` **request slots** (at most [`MAX_SLOTS`], and at
//! most a third of the queue size, so that a chain always finds its
//! descriptors); slot `s` owns header `s` and status byte `s`. A request
//! takes a free slot, which is the token of its chain: it comes back with
//! the chain from the used ring, in any order. A slot is in flight from
//! [`RequestQueue::submit`] until then.
//!
//! # Memory
//!
//! One DMA region of the driver's, [`MEMORY`] bytes:
//!
//! | part              | offset      | size                      | written by |
//! |-------------------|-------------|---------------------------|------------|
//! | the virtqueue     | 0           | [`Layout`] of its size    | both       |
//! | request headers   | [`HEADERS`] | 16 × [`MAX_SLOTS`]        | driver     |
//! | status bytes      | [`STATUS`]  | [`MAX_SLOTS`]             | device     |
//!
//! `VIRTIO_F_EVENT_IDX` is not negotiated: `avail.flags` stays 0, so the
//! device interrupts after every batch it uses, and is notified unless it
//! set `VIRTQ_USED_F_NO_NOTIFY`.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use lib_virtio::dma::DmaRegion;
use lib_virtio::queue::{Areas, Layout, SplitQueue};

/// A data buffer for a request: `len` bytes at physical `paddr`, written
/// by the device for a read.
pub use lib_virtio::queue::Segment as Buffer;

/// Most request slots (requests in flight at the device).
pub const MAX_SLOTS: usize = 32;
/// Descriptors of the longest chain (header, data, status).
const MAX_CHAIN: u16 = 3;
/// Most virtqueue entries (the size asked of the device).
const MAX_SIZE: usize = crate::driver::QUEUE_SIZE as usize;

/// Bytes of a virtio-blk request header (`struct virtio_blk_req` up to the
/// data).
pub const HEADER_SIZE: usize = 16;
/// Offset of the request headers in the region: after a queue of the
/// largest size, 16-byte aligned.
pub const HEADERS: usize = (Layout::new(MAX_SIZE).size + 15) & !15;
/// Offset of the status bytes.
pub const STATUS: usize = HEADERS + HEADER_SIZE * MAX_SLOTS;
/// Bytes of DMA memory a [`RequestQueue`] needs.
pub const MEMORY: usize = STATUS + MAX_SLOTS;

/// The status byte's value until the device writes one: not a valid
/// status, so a chain the device returns without writing it reads as an
/// error.
const STATUS_UNWRITTEN: u8 = 0xff;

/// A request the device has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub slot: u16,
    /// The status byte the device wrote (`VIRTIO_BLK_S_*`).
    pub status: u8,
}

/// The request queue: a split virtqueue whose chains are requests in slots.
pub struct RequestQueue {
    /// Each chain's token is its slot (a byte, to keep the PD's stack small).
    queue: SplitQueue<u8, MAX_SIZE>,
    /// Headers and status bytes (`[HEADERS, MEMORY)` of the region).
    requests: DmaRegion,
    slots: u16,
    /// Bit `s` set: slot `s` is in flight.
    in_flight: u64,
}

const _: () = assert!(MAX_SLOTS <= 64 && MAX_SLOTS <= u8::MAX as usize);

impl RequestQueue {
    /// Lays out a queue of `size` entries, and the request slots, in `mem`
    /// ([`MEMORY`] bytes, 16-byte aligned), zeroed. `None` if `size` is not a
    /// power of two of at most [`crate::driver::QUEUE_SIZE`], has room for no
    /// request, or `mem` is too small.
    pub fn new(mem: DmaRegion, size: u16) -> Option<RequestQueue> {
        let slots = (size / MAX_CHAIN).min(MAX_SLOTS as u16);
        if slots == 0 || mem.len() < MEMORY {
            return None;
        }
        let (ring, requests) = mem.split_at(HEADERS)?;
        let queue = SplitQueue::new(ring, size, false)?;
        requests.zero();
        Some(RequestQueue { queue, requests, slots, in_flight: 0 })
    }

    /// Entries of the virtqueue.
    pub fn size(&self) -> u16 {
        self.queue.size()
    }

    /// Requests the device may have in flight at once.
    pub fn slots(&self) -> u16 {
        self.slots
    }

    /// Physical addresses of the virtqueue's areas, for the transport.
    pub fn areas(&self) -> Areas {
        self.queue.areas()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.count_ones() as usize
    }

    /// Used elements skipped since start: they named no request in flight.
    pub fn bogus_completions(&self) -> u64 {
        self.queue.used_errors().skipped()
    }

    /// A slot that is not in flight, if any.
    pub fn free_slot(&self) -> Option<u16> {
        let free = !self.in_flight & ((1u64 << self.slots) - 1);
        (free != 0).then(|| free.trailing_zeros() as u16)
    }

    fn header(&self, slot: u16) -> usize {
        HEADER_SIZE * usize::from(slot)
    }

    fn status(&self, slot: u16) -> usize {
        STATUS - HEADERS + usize::from(slot)
    }

    /// Fills free slot `slot` with a request of virtio-blk `kind` at
    /// `sector` and puts its chain in the available ring; the device sees it
    /// after [`publish`](Self::publish).
    ///
    /// # Panics
    /// If `slot` is not free: a driver bug.
    pub fn submit(&mut self, slot: u16, kind: u32, sector: u64, data: Option<Buffer>) {
        assert!(slot < self.slots && self.in_flight & (1 << slot) == 0, "slot {slot} is not free");
        let header = self.header(slot);
        self.requests.at::<AtomicU32>(header).store(kind, Ordering::Relaxed);
        self.requests.at::<AtomicU32>(header + 4).store(0, Ordering::Relaxed);
        self.requests.at::<AtomicU64>(header + 8).store(sector, Ordering::Relaxed);
        let status = self.status(slot);
        self.requests.at::<AtomicU8>(status).store(STATUS_UNWRITTEN, Ordering::Relaxed);

        let header = Buffer::readable(self.requests.paddr(header), HEADER_SIZE as u32);
        let status = Buffer::writable(self.requests.paddr(status), 1);
        // Header, data, status; or header straight to status.
        let mut chain = [header, status, status];
        let len = match data {
            Some(data) => {
                chain[1] = data;
                3
            }
            None => 2,
        };
        // Slots are at most a third of the queue: there is always room.
        self.queue.push(&chain[..len], slot as u8).expect("a free slot has its descriptors");
        self.in_flight |= 1 << slot;
    }

    /// Publishes the chains submitted since the last call with one store of
    /// `avail.idx`; returns whether the device wants a notification.
    pub fn publish(&mut self) -> bool {
        self.queue.publish_and_check()
    }

    /// Takes the next request the device finished: `None` when it has
    /// returned nothing more. Used elements naming no request in flight are
    /// skipped and counted ([`bogus_completions`](Self::bogus_completions)).
    pub fn pop_used(&mut self) -> Option<Completion> {
        let slot = u16::from(self.queue.pop_used()?.token);
        self.in_flight &= !(1 << slot);
        // Below `used.idx`, read with Acquire: the device wrote it first.
        let status = self.requests.at::<AtomicU8>(self.status(slot)).load(Ordering::Relaxed);
        Some(Completion { slot, status })
    }
}
