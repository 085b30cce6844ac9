//! Requests and responses in their queues: `shared-queue` rings
//! (`lib/queue`, whose crate docs give the layout, the memory ordering, the
//! sleep/wake protocol and the checks against a hostile peer) of [`Request`]
//! and [`Response`] entries, whose shared-memory forms are below.
//!
//! Neither entry has a bounds check in the queue (`Bounds = ()`): the driver
//! validates every field of a request itself, to answer a bad one with the
//! right [`Status`](crate::Status), and the client matches response ids with
//! its own records.

use crate::{Request, Response};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
pub use lib_queue::{region_size_for, Entry, QueueError, HEADER_SIZE};

/// [`Request`] in shared memory (32 bytes).
///
/// | offset | size | field    |
/// |--------|------|----------|
/// | 0      | 4    | `op`     |
/// | 4      | 4    | `count`  |
/// | 8      | 8    | `sector` |
/// | 16     | 8    | `offset` |
/// | 24     | 4    | `id`     |
/// | 28     | 4    | (zero)   |
#[repr(C)]
pub struct RequestSlot {
    op: AtomicU32,
    count: AtomicU32,
    sector: AtomicU64,
    offset: AtomicU64,
    id: AtomicU32,
    _reserved: AtomicU32,
}

/// [`Response`] in shared memory (8 bytes): `id` at 0, `status` at 4.
#[repr(C)]
pub struct ResponseSlot {
    id: AtomicU32,
    status: AtomicU32,
}

const _: () = {
    assert!(core::mem::size_of::<RequestSlot>() == 32);
    assert!(core::mem::offset_of!(RequestSlot, id) == 24);
    assert!(core::mem::size_of::<ResponseSlot>() == 8);
};

// SAFETY: six atomics, 32 bytes without padding (asserted above), aligned to 8.
unsafe impl Entry for Request {
    type Slot = RequestSlot;
    type Bounds = ();

    fn load(slot: &RequestSlot) -> Self {
        Request {
            op: slot.op.load(Ordering::Relaxed),
            count: slot.count.load(Ordering::Relaxed),
            sector: slot.sector.load(Ordering::Relaxed),
            offset: slot.offset.load(Ordering::Relaxed),
            id: slot.id.load(Ordering::Relaxed),
        }
    }

    fn store(&self, slot: &RequestSlot) {
        slot.op.store(self.op, Ordering::Relaxed);
        slot.count.store(self.count, Ordering::Relaxed);
        slot.sector.store(self.sector, Ordering::Relaxed);
        slot.offset.store(self.offset, Ordering::Relaxed);
        slot.id.store(self.id, Ordering::Relaxed);
        slot._reserved.store(0, Ordering::Relaxed);
    }

    /// The driver validates the copy itself (`validate` in the driver).
    fn check(&self, (): &()) -> bool {
        true
    }
}

// SAFETY: two atomics, 8 bytes without padding (asserted above), aligned to 4.
unsafe impl Entry for Response {
    type Slot = ResponseSlot;
    type Bounds = ();

    fn load(slot: &ResponseSlot) -> Self {
        Response { id: slot.id.load(Ordering::Relaxed), status: slot.status.load(Ordering::Relaxed) }
    }

    fn store(&self, slot: &ResponseSlot) {
        slot.id.store(self.id, Ordering::Relaxed);
        slot.status.store(self.status, Ordering::Relaxed);
    }

    /// The client matches the id with its own records.
    fn check(&self, (): &()) -> bool {
        true
    }
}
