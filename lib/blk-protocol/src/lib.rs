//! The contract between a block device driver PD and its client PD: which
//! regions they share, what a request and a response are, how they travel,
//! and which status a request may end with.
//!
//! # Regions
//!
//! | region         | driver  | client | holds                                              |
//! |----------------|---------|--------|----------------------------------------------------|
//! | `blk_request`  | rw      | rw     | queue of [`Request`]s, client → driver             |
//! | `blk_response` | rw      | rw     | queue of [`Response`]s, driver → client            |
//! | `blk_info`     | rw      | r      | [`Info`]: capacity, read-only flag, largest request |
//! | `blk_data`     | DMA only| rw     | the client's buffers, [`DATA_REGION_SIZE`] bytes    |
//!
//! The driver never reads or writes `blk_data` itself: it learns the region's
//! physical base (`<setvar symbol="blk_data_paddr" region_paddr="blk_data"/>`)
//! and, when it is not [`DATA_REGION_SIZE`] bytes, its size
//! (`<setvar symbol="blk_data_size" region_size="blk_data"/>`, e.g. for a
//! file cache)
//! and hands the device physical addresses inside it, so the device moves
//! data straight between the disk and the client's buffers. The region must
//! be physically contiguous, as every memory region of a system description
//! is. The client that owns it may be a file cache that maps it elsewhere too.
//!
//! # Requests and responses
//!
//! A [`Request`] names an operation ([`Op`]), a run of `count` sectors of
//! [`SECTOR_SIZE`] bytes starting at `sector`, the byte `offset` in
//! `blk_data` of the buffer that receives (read) or supplies (write) the
//! `count * SECTOR_SIZE` bytes, and an `id` of the client's choosing. The
//! driver answers every request it dequeues with exactly one [`Response`]
//! carrying the same `id` and a [`Status`]. Requests are serviced
//! concurrently and **responses may come in any order**: the client matches
//! them by `id`. A flush ignores `sector`, `count` and `offset`; its response
//! means that every write *answered* before the flush was submitted is on
//! stable storage (as `VIRTIO_BLK_T_FLUSH`).
//!
//! While a read or write is outstanding (dequeued by the driver and not yet
//! answered) its buffer belongs to the device: the client must not touch it.
//!
//! The driver checks every request before the device sees it; one that is
//! malformed gets an error [`Status`] and never reaches the device:
//!
//! - an unknown `op`: [`Status::BadOp`];
//! - `count` zero or above [`Info::max_request_sectors`], or a buffer not
//!   entirely inside `blk_data`: [`Status::BadBuffer`];
//! - sectors past the end of the disk: [`Status::OutOfRange`];
//! - sectors outside the client's window ([`Window`], below):
//!   [`Status::OutsideWindow`];
//! - a write to a read-only disk: [`Status::ReadOnly`].
//!
//! # The client's window
//!
//! A client may read and write only the sectors of its **window**, a run
//! of sectors the system description gives the driver (`<setvar
//! symbol="client_sectors" sectors="FIRST-LAST"/>`, both inclusive): a
//! partition of the disk, e.g. the site image a web server serves, and
//! nothing else on the disk. The driver publishes the window in [`Info`]
//! ([`Info::window`]) with the disk's other parameters, and answers any
//! request that touches a sector outside it (and inside the disk) with
//! [`Status::OutsideWindow`]; such a request never reaches the device.
//! Sector numbers stay the disk's: the window does not renumber them.
//!
//! # Queues and signalling
//!
//! Both queues are `shared-queue` rings (`lib/queue`: single-producer
//! single-consumer, in shared memory, with its layout, memory ordering,
//! sleep/wake protocol and hostile-peer checks) whose entries are
//! [`Request`]s and [`Response`]s rather than buffer descriptors; their
//! shared-memory forms are in [`queue`].
//!
//! - Each side notifies the other only if the other asked
//!   (`signal_requested`), and once per batch: the driver handles everything
//!   pending on each wake-up, then signals once.
//! - The client keeps at most [`QUEUE_CAPACITY`] requests *outstanding*
//!   (enqueued and not yet answered), so the response queue always has room
//!   for every answer. The driver enforces this from its side: it takes a
//!   request only when the response queue has room for it and for every
//!   request in flight, so a client that breaks the rule only stalls itself.
//!
//! # Start-up
//!
//! The driver fills in [`Info`] once its device is ready, sets
//! [`Info::ready`] last, and then notifies the client. A client that finds
//! `ready` unset in its `init` waits for that notification.
//!
//! # Starting over
//!
//! Either side may be restarted by the monitor (its memory reset to its
//! image; the shared regions keep what they held). The queues keep
//! working across a restart (each side's handles carry on from the
//! indices in the regions, `lib-queue`), so what must be settled is which
//! requests and responses belong to which life, and when the device has
//! stopped writing into buffers a previous life asked it to fill.
//!
//! - [`Op::Sync`] is a barrier: the driver answers it (`Ok`, its `id`)
//!   only once every request it took before it has been answered, and
//!   takes no request after it until then. Once its answer arrives the
//!   device writes into no buffer of an earlier request.
//! - `epoch` in [`Info`] counts the driver's lives: 1 at boot, one more at
//!   each restart. A restarted driver resets the device (which drops what
//!   was in flight: no more DMA, no answers), then takes no request but a
//!   Sync whose `id` ends in its `epoch` (low 16 bits, [`sync_id`]):
//!   everything before it in the request queue belongs to the client's
//!   previous view of the driver and is dropped unanswered.
//! - A client syncs ([`ClientSync`]) when it starts (at boot, and after its
//!   own restart) and whenever it sees `epoch` change: it enqueues a Sync
//!   with an `id` from [`sync_id`] (its own life in the high bits, so a
//!   Sync of its previous life cannot be taken for its own) and discards
//!   every response until the Sync's. When the driver restarted, the
//!   client first answers its own requests in flight as failed (they
//!   are lost), and may send them again.
//!
//! A client restarted while its predecessor had requests in flight thus
//! never mistakes their answers for its own, and never hands out a buffer
//! the device still fills; a client of a restarted driver gets no answer
//! to a lost request, and knows which were lost. A client that never
//! syncs works as before with a driver that is never restarted (the first
//! life of a driver takes requests without a Sync).
#![no_std]

pub mod queue;
mod sync;
#[cfg(test)]
mod tests;

pub use sync::{is_sync_for, sync_id, ClientSync, SyncPoll, SYNC_MARK};

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bytes in a sector: the unit of `sector` and `count` in a [`Request`].
pub const SECTOR_SIZE: usize = 512;

/// Bytes of the `blk_data` region.
pub const DATA_REGION_SIZE: usize = 0x20_0000;

/// Capacity of both queues, in entries.
pub const QUEUE_CAPACITY: usize = 64;

/// Bytes of the `blk_request` and `blk_response` regions (each one page).
pub const QUEUE_REGION_SIZE: usize = 0x1000;
/// Bytes of the `blk_info` region.
pub const INFO_REGION_SIZE: usize = 0x1000;

const _: () = {
    assert!(queue::region_size_for::<Request>(QUEUE_CAPACITY) <= QUEUE_REGION_SIZE);
    assert!(queue::region_size_for::<Response>(QUEUE_CAPACITY) <= QUEUE_REGION_SIZE);
    assert!(core::mem::size_of::<Info>() <= INFO_REGION_SIZE);
};

/// The request queue as seen by the client.
pub type RequestProducer<'a> = lib_queue::Producer<'a, QUEUE_CAPACITY, Request>;
/// The request queue as seen by the driver (made with `new(region, ())`:
/// the queue does not check requests, the driver does).
pub type RequestConsumer<'a> = lib_queue::Consumer<'a, QUEUE_CAPACITY, Request>;
/// The response queue as seen by the driver.
pub type ResponseProducer<'a> = lib_queue::Producer<'a, QUEUE_CAPACITY, Response>;
/// The response queue as seen by the client (made with `new(region, ())`).
pub type ResponseConsumer<'a> = lib_queue::Consumer<'a, QUEUE_CAPACITY, Response>;

/// What a request asks for. In shared memory it is a `u32`; values other
/// than these are answered with [`Status::BadOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// Device → buffer.
    Read = 0,
    /// Buffer → device.
    Write = 1,
    /// Make every completed write durable.
    Flush = 2,
    /// A barrier ("Starting over" in the crate docs): answered `Ok` once
    /// every request taken before it has been answered; ignores `sector`,
    /// `count` and `offset`.
    Sync = 3,
}

impl Op {
    /// The operation with this code, if any.
    pub fn from_code(code: u32) -> Option<Op> {
        match code {
            0 => Some(Op::Read),
            1 => Some(Op::Write),
            2 => Some(Op::Flush),
            3 => Some(Op::Sync),
            _ => None,
        }
    }
}

/// A request from the client, as it travels in the request queue.
///
/// The fields are raw: `op` may be any `u32` and the numbers anything; the
/// driver validates them (see the crate docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// An [`Op`] code.
    pub op: u32,
    /// Number of sectors to transfer (ignored by a flush).
    pub count: u32,
    /// First sector on the disk (ignored by a flush).
    pub sector: u64,
    /// Start of the buffer, in bytes from the start of `blk_data` (ignored by
    /// a flush).
    pub offset: u64,
    /// The client's name for the request, returned in its [`Response`].
    pub id: u32,
}

impl Request {
    /// Reads `count` sectors from `sector` into `blk_data[offset..]`.
    pub const fn read(id: u32, sector: u64, count: u32, offset: u64) -> Request {
        Request { op: Op::Read as u32, count, sector, offset, id }
    }

    /// Writes `count` sectors at `sector` from `blk_data[offset..]`.
    pub const fn write(id: u32, sector: u64, count: u32, offset: u64) -> Request {
        Request { op: Op::Write as u32, count, sector, offset, id }
    }

    /// Makes every write answered so far durable.
    pub const fn flush(id: u32) -> Request {
        Request { op: Op::Flush as u32, count: 0, sector: 0, offset: 0, id }
    }

    /// A barrier: answered once everything taken before it is.
    pub const fn sync(id: u32) -> Request {
        Request { op: Op::Sync as u32, count: 0, sector: 0, offset: 0, id }
    }

    /// Bytes the request transfers.
    pub const fn bytes(&self) -> u64 {
        self.count as u64 * SECTOR_SIZE as u64
    }
}

/// How a request ended. In shared memory it is a `u32`; a client should
/// treat unknown values as errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// The device reported an I/O error (`VIRTIO_BLK_S_IOERR`).
    IoError = 1,
    /// The device does not support the operation (`VIRTIO_BLK_S_UNSUPP`).
    Unsupported = 2,
    /// `op` is not an [`Op`].
    BadOp = 3,
    /// The sectors run past the end of the disk.
    OutOfRange = 4,
    /// `count` is zero or too large, or the buffer is not inside `blk_data`.
    BadBuffer = 5,
    /// A write to a read-only disk.
    ReadOnly = 6,
    /// The sectors are on the disk but not all inside the client's
    /// [`Window`].
    OutsideWindow = 7,
}

impl Status {
    /// The status with this code, if any.
    pub fn from_code(code: u32) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::IoError,
            2 => Status::Unsupported,
            3 => Status::BadOp,
            4 => Status::OutOfRange,
            5 => Status::BadBuffer,
            6 => Status::ReadOnly,
            7 => Status::OutsideWindow,
            _ => return None,
        })
    }
}

/// The driver's answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's `id`.
    pub id: u32,
    /// A [`Status`] code.
    pub status: u32,
}

impl Response {
    /// The answer to request `id`, ending with `status` (its code in
    /// shared memory).
    pub const fn new(id: u32, status: Status) -> Response {
        Response { id, status: status as u32 }
    }

    /// The status, or `None` for a code this crate does not know.
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.status)
    }
}

/// What the driver tells its client about the disk, in the `blk_info`
/// region. Written by the driver before it sets `ready`; read-only for the
/// client.
///
/// | offset | size | field                 |
/// |--------|------|-----------------------|
/// | 0      | 4    | `ready` (0 or 1)      |
/// | 4      | 4    | `read_only` (0 or 1)  |
/// | 8      | 8    | `capacity` (sectors)  |
/// | 16     | 4    | `max_request_sectors` |
/// | 24     | 8    | `window_start` (first sector of the [`Window`]) |
/// | 32     | 8    | `window_end` (one past its last sector) |
/// | 40     | 4    | `epoch`: the driver's life, 1 at boot, one more at each restart |
#[repr(C)]
pub struct Info {
    ready: AtomicU32,
    read_only: AtomicU32,
    capacity: AtomicU64,
    max_request_sectors: AtomicU32,
    window_start: AtomicU64,
    window_end: AtomicU64,
    epoch: AtomicU32,
}

/// The sectors a client may read and write: `start..end` (`end`
/// exclusive), in the disk's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First sector inside.
    pub start: u64,
    /// One past the last sector inside; `start <= end`.
    pub end: u64,
}

impl Window {
    /// The window `first..=last` (as the description writes it); `None`
    /// if `last` is before `first` or is the last `u64` (the end would
    /// not be representable).
    pub fn from_inclusive(first: u64, last: u64) -> Option<Window> {
        (first <= last).then_some(())?;
        Some(Window { start: first, end: last.checked_add(1)? })
    }

    /// The window clipped to a disk of `capacity` sectors.
    pub fn clip(self, capacity: u64) -> Window {
        let end = self.end.min(capacity);
        Window { start: self.start.min(end), end }
    }

    /// Sectors inside.
    pub const fn sectors(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the `count` sectors from `sector` are all inside (checked
    /// without overflow; an empty run is inside if it starts inside or at
    /// the end).
    pub fn contains(&self, sector: u64, count: u64) -> bool {
        sector >= self.start && sector.checked_add(count).is_some_and(|end| end <= self.end)
    }
}

/// A copy of [`Info`]'s fields, read once the driver is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// Size of the disk in sectors.
    pub capacity: u64,
    /// Writes are refused with [`Status::ReadOnly`].
    pub read_only: bool,
    /// Most sectors one request may transfer.
    pub max_request_sectors: u32,
}

impl Info {
    /// The `Info` in the `blk_info` region at `region`.
    ///
    /// # Safety
    ///
    /// `region` must be valid for reads (and writes, if [`Info::publish`] is
    /// called) of `size_of::<Info>()` bytes, 8-byte aligned, for `'a`, and
    /// accessed in this address space only atomically meanwhile. The peer
    /// may write any bytes there at any time.
    pub unsafe fn at<'a>(region: *mut u8) -> &'a Info {
        // SAFETY: the caller's contract; `Info` is made of atomics only, for
        // which every bit pattern is valid and concurrent writes are allowed.
        unsafe { &*region.cast::<Info>() }
    }

    /// Driver: writes the fields and the client's window, then sets
    /// `ready` (with `Release`, so a client that sees `ready` sees the
    /// fields).
    pub fn publish(&self, disk: DiskInfo, window: Window, epoch: u32) {
        self.epoch.store(epoch, Ordering::Relaxed);
        self.capacity.store(disk.capacity, Ordering::Relaxed);
        self.read_only.store(u32::from(disk.read_only), Ordering::Relaxed);
        self.max_request_sectors.store(disk.max_request_sectors, Ordering::Relaxed);
        self.window_start.store(window.start, Ordering::Relaxed);
        self.window_end.store(window.end, Ordering::Relaxed);
        self.ready.store(1, Ordering::Release);
    }

    /// The driver's life (`epoch`) as the region holds it: a driver reads
    /// its predecessor's at start and publishes one more.
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Client: the sectors it may read and write, or `None` until the
    /// driver is ready. A window the peer wrote inconsistently
    /// (`end < start`) reads as empty.
    pub fn window(&self) -> Option<Window> {
        if self.ready.load(Ordering::Acquire) == 0 {
            return None;
        }
        let start = self.window_start.load(Ordering::Relaxed);
        let end = self.window_end.load(Ordering::Relaxed);
        Some(Window { start, end: end.max(start) })
    }

    /// Client: the disk's parameters, or `None` until the driver is ready.
    pub fn get(&self) -> Option<DiskInfo> {
        if self.ready.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(DiskInfo {
            capacity: self.capacity.load(Ordering::Relaxed),
            read_only: self.read_only.load(Ordering::Relaxed) != 0,
            max_request_sectors: self.max_request_sectors.load(Ordering::Relaxed),
        })
    }
}

/// Where a request's buffer lies in `blk_data`: `None` if it does not fit
/// entirely inside a region of `data_len` bytes (checked without overflow).
pub fn buffer_range(request: &Request, data_len: usize) -> Option<core::ops::Range<u64>> {
    let end = request.offset.checked_add(request.bytes())?;
    (end <= data_len as u64).then_some(request.offset..end)
}
