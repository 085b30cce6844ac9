//! Requests and responses in their queues: `lib-queue` rings (whose crate
//! docs give the layout, ordering, sleep/wake protocol and hostile-peer
//! checks) of [`Request`] and [`Response`] entries, whose shared-memory
//! forms are below. Neither has a bounds check in the queue (`Bounds =
//! ()`): the cache validates each request to answer it right, and a server
//! matches tags with its own records.

use crate::{Request, Response};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
pub use lib_queue::{region_size_for, Entry, QueueError, HEADER_SIZE};

/// [`Request`] in shared memory (16 bytes): `op` at 0, `arg` at 4, `tag`
/// at 8, zero at 12.
#[repr(C)]
pub struct RequestSlot {
    op: AtomicU32,
    arg: AtomicU32,
    tag: AtomicU32,
    _reserved: AtomicU32,
}

/// [`Response`] in shared memory (24 bytes): `kind` at 0, `tag` at 4,
/// `pin` at 8, zero at 12, `offset` at 16.
#[repr(C)]
pub struct ResponseSlot {
    kind: AtomicU32,
    tag: AtomicU32,
    pin: AtomicU32,
    _reserved: AtomicU32,
    offset: AtomicU64,
}

const _: () = {
    assert!(core::mem::size_of::<RequestSlot>() == 16);
    assert!(core::mem::size_of::<ResponseSlot>() == 24);
    assert!(core::mem::offset_of!(ResponseSlot, offset) == 16);
};

// SAFETY: four atomics, 16 bytes without padding (asserted above), aligned to 4.
unsafe impl Entry for Request {
    type Slot = RequestSlot;
    type Bounds = ();

    fn load(slot: &RequestSlot) -> Self {
        Request {
            op: slot.op.load(Ordering::Relaxed),
            arg: slot.arg.load(Ordering::Relaxed),
            tag: slot.tag.load(Ordering::Relaxed),
        }
    }

    fn store(&self, slot: &RequestSlot) {
        slot.op.store(self.op, Ordering::Relaxed);
        slot.arg.store(self.arg, Ordering::Relaxed);
        slot.tag.store(self.tag, Ordering::Relaxed);
        slot._reserved.store(0, Ordering::Relaxed);
    }

    /// The cache validates each request itself.
    fn check(&self, (): &()) -> bool {
        true
    }
}

// SAFETY: five atomics, 24 bytes without padding (asserted above), aligned to 8.
unsafe impl Entry for Response {
    type Slot = ResponseSlot;
    type Bounds = ();

    fn load(slot: &ResponseSlot) -> Self {
        Response {
            kind: slot.kind.load(Ordering::Relaxed),
            tag: slot.tag.load(Ordering::Relaxed),
            pin: slot.pin.load(Ordering::Relaxed),
            offset: slot.offset.load(Ordering::Relaxed),
        }
    }

    fn store(&self, slot: &ResponseSlot) {
        slot.kind.store(self.kind, Ordering::Relaxed);
        slot.tag.store(self.tag, Ordering::Relaxed);
        slot.pin.store(self.pin, Ordering::Relaxed);
        slot._reserved.store(0, Ordering::Relaxed);
        slot.offset.store(self.offset, Ordering::Relaxed);
    }

    /// The server matches the tag with its own records.
    fn check(&self, (): &()) -> bool {
        true
    }
}
