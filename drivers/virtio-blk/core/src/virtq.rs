//! One split virtqueue (virtio 1.1 §2.6), shaped for virtio-blk requests.
//!
//! # Chains
//!
//! Every request is a chain of descriptors (§5.2.6):
//!
//! 1. a 16-byte header the device reads (`type`, `reserved`, `sector`),
//! 2. the data buffer: written by the device for a read, read by it for a
//!    write; absent for a flush,
//! 3. one status byte the device writes.
//!
//! The queue is cut into `slots` **request slots**; slot `s` owns
//! descriptors `3s`, `3s + 1` and `3s + 2`, its own header and its own
//! status byte, permanently. So there is no descriptor free list: a request
//! takes a free slot, and the head of its chain, `3s`, which comes back in
//! the used ring, names the slot. A slot is in flight from [`Virtqueue::submit`]
//! until its head comes back in the used ring; the device may return heads
//! in any order.
//!
//! # Memory
//!
//! All of it is in one DMA region of the driver's ([`QueueLayout`]):
//!
//! | part              | size        | alignment (§2.6) | written by |
//! |-------------------|-------------|------------------|------------|
//! | descriptor table  | 16 × size   | 16               | driver     |
//! | available ring    | 6 + 2 × size| 2                | driver     |
//! | used ring         | 6 + 8 × size| 4                | device     |
//! | request headers   | 16 × slots  | 16               | driver     |
//! | status bytes      | slots       | 1                | device     |
//!
//! # Ordering and notifications
//!
//! - The driver writes descriptors and available-ring entries, then
//!   publishes them with one store of `avail.idx` (`Release`: "the driver
//!   MUST perform a suitable memory barrier before the idx update",
//!   §2.6.13.3), once per batch ([`Virtqueue::publish`]).
//! - It then decides whether to notify the device: not if the device set
//!   `VIRTQ_USED_F_NO_NOTIFY` in `used.flags`, read after a full fence
//!   (§2.6.13.4: "the driver MUST perform a suitable memory barrier before
//!   reading flags").
//! - It reads `used.idx` with `Acquire` before the used elements and the
//!   status bytes below it (§2.6.14).
//! - `VIRTIO_F_EVENT_IDX` is not negotiated: `avail.flags` stays 0, so the
//!   device interrupts after every batch it uses.
//!
//! The device is trusted to DMA only where it is told, but not to return
//! sensible used elements: an index jump beyond the queue size, or a head
//! that is not a slot in flight, is reported and skipped.

use crate::dma::DmaRegion;
use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Most request slots (requests in flight at the device).
pub const MAX_SLOTS: usize = 32;
/// Descriptors per request slot.
const DESCS_PER_SLOT: u16 = 3;

/// Descriptor flags (§2.6.5).
const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;
/// `used.flags`: the device does not need notifications (§2.6.10).
const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// Bytes of a virtio-blk request header (`struct virtio_blk_req` up to the
/// data).
pub const HEADER_SIZE: usize = 16;
/// The status byte's value until the device writes one: not a valid
/// status, so a chain the device returns without writing it reads as an
/// error.
const STATUS_UNWRITTEN: u8 = 0xff;

const fn align_up(x: usize, align: usize) -> usize {
    (x + align - 1) & !(align - 1)
}

/// Where each part of a queue of `size` entries with `slots` request slots
/// lies in the DMA region, in bytes from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    pub size: u16,
    pub slots: u16,
    pub desc: usize,
    pub avail: usize,
    pub used: usize,
    pub headers: usize,
    pub status: usize,
    /// Bytes of DMA memory needed.
    pub total: usize,
}

impl QueueLayout {
    /// The layout for a queue of `size` entries (a power of two).
    pub const fn new(size: u16) -> QueueLayout {
        let n = size as usize;
        let slots = if n / DESCS_PER_SLOT as usize > MAX_SLOTS { MAX_SLOTS } else { n / DESCS_PER_SLOT as usize };
        let desc = 0;
        let avail = desc + 16 * n;
        let used = align_up(avail + 6 + 2 * n, 4);
        let headers = align_up(used + 6 + 8 * n, 16);
        let status = headers + HEADER_SIZE * slots;
        QueueLayout { size, slots: slots as u16, desc, avail, used, headers, status, total: status + slots }
    }
}

/// A data buffer for a request: `len` bytes at physical `paddr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub paddr: u64,
    pub len: u32,
    /// The device writes the buffer (a read), rather than reads it.
    pub device_writes: bool,
}

/// A request the device has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub slot: u16,
    /// The status byte the device wrote (`VIRTIO_BLK_S_*`).
    pub status: u8,
}

/// What was wrong with a used element the device returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsedError {
    /// `used.idx` ran more than the queue size ahead: every element in
    /// between is skipped.
    IndexJump { from: u16, to: u16 },
    /// The element's id is not the head of a chain in flight.
    UnknownHead(u32),
}

/// A split virtqueue with fixed per-slot chains (see the module docs).
pub struct Virtqueue {
    mem: DmaRegion,
    layout: QueueLayout,
    /// The next available-ring index to fill (private copy of `avail.idx`).
    avail_idx: u16,
    /// `avail.idx` as last published.
    published: u16,
    /// The next used-ring index to read.
    used_idx: u16,
    /// Bit `s` set: slot `s` is in flight.
    in_flight: u64,
}

const _: () = assert!(MAX_SLOTS <= 64);

impl Virtqueue {
    /// Lays out a queue of `size` entries in `mem`, zeroed, with every slot's
    /// header and status descriptors filled in. `None` if `size` is not a
    /// power of two, has room for no slot, or the layout does not fit `mem`.
    pub fn new(mem: DmaRegion, size: u16) -> Option<Virtqueue> {
        let layout = QueueLayout::new(size);
        if !size.is_power_of_two() || layout.slots == 0 || layout.total > mem.len() {
            return None;
        }
        mem.zero();
        let queue = Virtqueue { mem, layout, avail_idx: 0, published: 0, used_idx: 0, in_flight: 0 };
        for slot in 0..layout.slots {
            let header = queue.mem.paddr(queue.header_offset(slot));
            let status = queue.mem.paddr(layout.status + usize::from(slot));
            let head = slot * DESCS_PER_SLOT;
            queue.write_desc(head, header, HEADER_SIZE as u32, VIRTQ_DESC_F_NEXT, head + 1);
            queue.write_desc(head + 2, status, 1, VIRTQ_DESC_F_WRITE, 0);
        }
        Some(queue)
    }

    /// The queue's layout: its size, slots, and the offsets of its parts.
    pub fn layout(&self) -> &QueueLayout {
        &self.layout
    }

    /// Physical addresses of the descriptor table, the available ring (the
    /// driver area) and the used ring (the device area).
    pub fn areas(&self) -> (u64, u64, u64) {
        (self.mem.paddr(self.layout.desc), self.mem.paddr(self.layout.avail), self.mem.paddr(self.layout.used))
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.count_ones() as usize
    }

    /// A slot that is not in flight, if any.
    pub fn free_slot(&self) -> Option<u16> {
        let free = !self.in_flight & ((1u64 << self.layout.slots) - 1);
        (free != 0).then(|| free.trailing_zeros() as u16)
    }

    fn header_offset(&self, slot: u16) -> usize {
        self.layout.headers + HEADER_SIZE * usize::from(slot)
    }

    fn write_desc(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = self.layout.desc + 16 * usize::from(index);
        self.mem.at::<AtomicU64>(at).store(addr, Ordering::Relaxed);
        self.mem.at::<AtomicU32>(at + 8).store(len, Ordering::Relaxed);
        self.mem.at::<AtomicU16>(at + 12).store(flags, Ordering::Relaxed);
        self.mem.at::<AtomicU16>(at + 14).store(next, Ordering::Relaxed);
    }

    /// Fills free slot `slot` with a request of virtio-blk `kind` at
    /// `sector` and puts its chain in the available ring; the device sees it
    /// after [`publish`](Self::publish).
    ///
    /// # Panics
    /// If `slot` is not free: a driver bug.
    pub fn submit(&mut self, slot: u16, kind: u32, sector: u64, data: Option<Buffer>) {
        assert!(slot < self.layout.slots && self.in_flight & (1 << slot) == 0, "slot {slot} is not free");
        let header = self.header_offset(slot);
        self.mem.at::<AtomicU32>(header).store(kind, Ordering::Relaxed);
        self.mem.at::<AtomicU32>(header + 4).store(0, Ordering::Relaxed);
        self.mem.at::<AtomicU64>(header + 8).store(sector, Ordering::Relaxed);
        self.mem.at::<AtomicU8>(self.layout.status + usize::from(slot)).store(STATUS_UNWRITTEN, Ordering::Relaxed);

        let head = slot * DESCS_PER_SLOT;
        let header_paddr = self.mem.paddr(header);
        match data {
            Some(buf) => {
                let write = if buf.device_writes { VIRTQ_DESC_F_WRITE } else { 0 };
                self.write_desc(head, header_paddr, HEADER_SIZE as u32, VIRTQ_DESC_F_NEXT, head + 1);
                self.write_desc(head + 1, buf.paddr, buf.len, VIRTQ_DESC_F_NEXT | write, head + 2);
            }
            // Header straight to status.
            None => self.write_desc(head, header_paddr, HEADER_SIZE as u32, VIRTQ_DESC_F_NEXT, head + 2),
        }

        let entry = self.layout.avail + 4 + 2 * usize::from(self.avail_idx % self.layout.size);
        self.mem.at::<AtomicU16>(entry).store(head, Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.in_flight |= 1 << slot;
    }

    /// Publishes the chains submitted since the last call with one store of
    /// `avail.idx`; returns whether the device wants a notification.
    pub fn publish(&mut self) -> bool {
        if self.avail_idx == self.published {
            return false;
        }
        // Release: descriptors and ring entries before the index (§2.6.13.3).
        self.mem.at::<AtomicU16>(self.layout.avail + 2).store(self.avail_idx, Ordering::Release);
        self.published = self.avail_idx;
        // The index store before the flags load (§2.6.13.4).
        fence(Ordering::SeqCst);
        self.mem.at::<AtomicU16>(self.layout.used).load(Ordering::Relaxed) & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// Takes the next element of the used ring: `None` when the device has
    /// returned nothing more.
    pub fn pop_used(&mut self) -> Option<Result<Completion, UsedError>> {
        // Acquire: the elements and status bytes below it are the device's.
        let device_idx = self.mem.at::<AtomicU16>(self.layout.used + 2).load(Ordering::Acquire);
        let pending = device_idx.wrapping_sub(self.used_idx);
        if pending == 0 {
            return None;
        }
        if pending > self.layout.size {
            let from = self.used_idx;
            self.used_idx = device_idx;
            return Some(Err(UsedError::IndexJump { from, to: device_idx }));
        }
        let elem = self.layout.used + 4 + 8 * usize::from(self.used_idx % self.layout.size);
        let id = self.mem.at::<AtomicU32>(elem).load(Ordering::Relaxed);
        self.used_idx = self.used_idx.wrapping_add(1);
        let slot = id / u32::from(DESCS_PER_SLOT);
        if !id.is_multiple_of(u32::from(DESCS_PER_SLOT)) || slot >= u32::from(self.layout.slots) || self.in_flight & (1 << slot) == 0 {
            return Some(Err(UsedError::UnknownHead(id)));
        }
        let slot = slot as u16;
        self.in_flight &= !(1 << slot);
        let status = self.mem.at::<AtomicU8>(self.layout.status + usize::from(slot)).load(Ordering::Relaxed);
        Some(Ok(Completion { slot, status }))
    }
}
