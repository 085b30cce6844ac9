//! Single-producer single-consumer rings of fixed-size entries in shared
//! memory: the `shared-queue` design (`lib/queue`) with entries other than
//! buffer descriptors.
//!
//! # Layout of a queue region
//!
//! | offset             | size | field              | written by                     |
//! |--------------------|------|--------------------|--------------------------------|
//! | 0                  | 4    | `tail`             | producer                       |
//! | 64                 | 4    | `head`             | consumer                       |
//! | 68                 | 4    | `signal_requested` | consumer sets, producer clears |
//! | 128 + S·i          | S    | slot `i`           | producer                       |
//!
//! `S` is the size of the entry's [`Entry::Slot`]. `head` and `tail` are
//! free-running `u32` counters; the ring has `N` slots, `N` a power of two,
//! and `tail - head` (wrapping) is the number of entries, never above `N`.
//! Each side knows `N` from its own code and keeps its own index privately
//! (it only ever writes the shared copy), so the peer cannot make it index
//! out of bounds.
//!
//! # Ordering and signalling
//!
//! As in `shared-queue`, whose crate docs prove the wake-up protocol:
//!
//! - the producer writes slots, then stores `tail` with `Release`; the
//!   consumer loads `tail` with `Acquire` before reading slots below it;
//! - the consumer reads slots, then stores `head` with `Release`; the
//!   producer loads `head` with `Acquire` before reusing slots;
//! - a consumer about to sleep sets `signal_requested`, issues a `SeqCst`
//!   fence and looks at `tail` again ([`Consumer::request_signal_if_empty`]);
//!   a producer, after publishing, issues a `SeqCst` fence and notifies if it
//!   finds (and clears) the request ([`Producer::should_signal`]). Neither
//!   side can then sleep on a non-empty queue that nobody will signal.
//!
//! Every access to the region is atomic, so whatever the peer writes, when
//! it writes it, is no undefined behaviour here; a peer index implying more
//! than `N` entries is [`QueueError::Corrupt`] and nothing is read or
//! written.

use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Bytes of a queue region's header, before the slots.
pub const HEADER_SIZE: usize = 128;

/// Bytes of a queue region holding `capacity` entries of type `T`.
pub const fn region_size<T: Entry>(capacity: usize) -> usize {
    HEADER_SIZE + capacity * core::mem::size_of::<T::Slot>()
}

/// An entry that travels in a queue, by value.
pub trait Entry: Copy {
    /// Its form in shared memory: atomics only (so that any bit pattern is
    /// valid and the peer may write it at any time), `#[repr(C)]`, with an
    /// alignment that divides [`HEADER_SIZE`].
    type Slot: Sync;
    /// Copies the entry out of a slot, reading each field once.
    fn load(slot: &Self::Slot) -> Self;
    /// Writes the entry into a slot.
    fn store(&self, slot: &Self::Slot);
}

/// A queue operation's failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue holds `N` entries (enqueue only).
    Full,
    /// The shared indices imply more than `N` entries: the peer wrote a bogus
    /// index. Nothing was read or written.
    Corrupt,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueError::Full => "queue full",
            QueueError::Corrupt => "queue indices corrupt (more entries than capacity)",
        })
    }
}

/// The header of a queue region.
#[repr(C, align(64))]
struct Header {
    tail: AtomicU32,
    _producer_line: [AtomicU32; 15],
    head: AtomicU32,
    signal_requested: AtomicU32,
    _consumer_line: [AtomicU32; 14],
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == HEADER_SIZE);
    assert!(core::mem::offset_of!(Header, head) == 64);
    assert!(core::mem::offset_of!(Header, signal_requested) == 68);
};

/// A view of a queue region: its header and its `N` slots.
struct Ring<'a, T: Entry, const N: usize> {
    header: &'a Header,
    slots: &'a [T::Slot; N],
}

impl<'a, T: Entry, const N: usize> Ring<'a, T, N> {
    /// # Safety
    /// As for [`Producer::new`].
    unsafe fn new(region: *mut u8) -> Self {
        const {
            assert!(N.is_power_of_two() && N <= 1 << 31, "capacity: a power of two, at most 2^31");
            assert!(HEADER_SIZE.is_multiple_of(core::mem::align_of::<T::Slot>()));
        }
        debug_assert!((region as usize).is_multiple_of(64));
        // SAFETY: the caller guarantees `region` is valid for reads and
        // writes of `region_size::<T>(N)` bytes for 'a, 64-byte aligned, and
        // accessed in this address space only atomically. The header is the
        // first HEADER_SIZE bytes, the slots follow (HEADER_SIZE is a multiple
        // of their alignment); both are made of atomics only.
        unsafe {
            Ring { header: &*region.cast::<Header>(), slots: &*region.add(HEADER_SIZE).cast::<[T::Slot; N]>() }
        }
    }

    fn slot(&self, index: u32) -> &T::Slot {
        // N is a power of two: the mask is `index % N`, always in bounds.
        &self.slots[index as usize & (N - 1)]
    }
}

/// Entries between `head` and `tail`, or `Corrupt` if more than `N`.
fn count<const N: usize>(head: u32, tail: u32) -> Result<usize, QueueError> {
    let count = tail.wrapping_sub(head) as usize;
    if count > N {
        Err(QueueError::Corrupt)
    } else {
        Ok(count)
    }
}

/// The producing end of a queue: the only writer of slots and `tail`.
pub struct Producer<'a, T: Entry, const N: usize> {
    ring: Ring<'a, T, N>,
    /// The authoritative tail; the shared copy is only written.
    tail: u32,
    _entries: PhantomData<T>,
}

impl<'a, T: Entry, const N: usize> Producer<'a, T, N> {
    /// Makes the producing end of the queue in `region`, carrying on from the
    /// `tail` found there (0 in a fresh, zeroed region).
    ///
    /// # Safety
    ///
    /// For all of `'a`, `region` must be valid for reads and writes of
    /// [`region_size`]`::<T>(N)` bytes, 64-byte aligned, and accessed in this
    /// address space only through this module's handles (or other atomic
    /// accesses). The peer may write any bytes there at any time.
    pub unsafe fn new(region: *mut u8) -> Self {
        // SAFETY: the caller's contract is Ring::new's.
        let ring = unsafe { Ring::new(region) };
        let tail = ring.header.tail.load(Ordering::Relaxed);
        Producer { ring, tail, _entries: PhantomData }
    }

    /// Entries the consumer has not taken yet, as far as it has told.
    pub fn len(&self) -> Result<usize, QueueError> {
        count::<N>(self.ring.header.head.load(Ordering::Acquire), self.tail)
    }

    /// Whether the consumer has taken every entry.
    pub fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }

    /// Slots free for enqueueing.
    pub fn room(&self) -> Result<usize, QueueError> {
        Ok(N - self.len()?)
    }

    /// Appends `entry` and publishes it (P1 of the protocol). Call
    /// [`should_signal`](Self::should_signal) after a batch.
    pub fn enqueue(&mut self, entry: T) -> Result<(), QueueError> {
        if self.room()? == 0 {
            return Err(QueueError::Full);
        }
        entry.store(self.ring.slot(self.tail));
        self.tail = self.tail.wrapping_add(1);
        // Release: the slot is visible to a consumer that sees this tail.
        self.ring.header.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Whether the consumer asked to be notified; if so the request is
    /// cleared and the caller must notify it (P2–P3 of the protocol).
    pub fn should_signal(&self) -> bool {
        let flag = &self.ring.header.signal_requested;
        // P2: orders the tail store before the flag load.
        fence(Ordering::SeqCst);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0
    }
}

/// The consuming end of a queue: the only writer of `head`, and the only
/// one to set `signal_requested`.
pub struct Consumer<'a, T: Entry, const N: usize> {
    ring: Ring<'a, T, N>,
    /// The authoritative head; the shared copy is only written.
    head: u32,
    _entries: PhantomData<T>,
}

impl<'a, T: Entry, const N: usize> Consumer<'a, T, N> {
    /// Makes the consuming end of the queue in `region`, carrying on from
    /// the `head` found there.
    ///
    /// # Safety
    ///
    /// As for [`Producer::new`].
    pub unsafe fn new(region: *mut u8) -> Self {
        // SAFETY: the caller's contract is Ring::new's.
        let ring = unsafe { Ring::new(region) };
        let head = ring.header.head.load(Ordering::Relaxed);
        Consumer { ring, head, _entries: PhantomData }
    }

    /// Entries waiting.
    pub fn len(&self) -> Result<usize, QueueError> {
        count::<N>(self.head, self.ring.header.tail.load(Ordering::Acquire))
    }

    /// Whether no entry is waiting.
    pub fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }

    /// Takes the oldest entry, `Ok(None)` if there is none.
    pub fn dequeue(&mut self) -> Result<Option<T>, QueueError> {
        if self.len()? == 0 {
            return Ok(None);
        }
        let entry = T::load(self.ring.slot(self.head));
        self.head = self.head.wrapping_add(1);
        // Release: the slot has been read before the producer may reuse it.
        self.ring.header.head.store(self.head, Ordering::Release);
        Ok(Some(entry))
    }

    /// Prepares to wait for the producer (C1–C3 of the protocol): requests a
    /// notification and checks the queue again. `Ok(true)`: still empty, the
    /// producer will notify after its next enqueue, so wait. `Ok(false)`:
    /// entries arrived meanwhile; the request is withdrawn.
    pub fn request_signal_if_empty(&self) -> Result<bool, QueueError> {
        let flag = &self.ring.header.signal_requested;
        flag.store(1, Ordering::Relaxed);
        // C2: orders the flag store before the tail load.
        fence(Ordering::SeqCst);
        let empty = self.is_empty();
        if empty != Ok(true) {
            flag.store(0, Ordering::Relaxed);
        }
        empty
    }
}

impl<T: Entry, const N: usize> fmt::Debug for Producer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("capacity", &N).field("tail", &self.tail).finish()
    }
}

impl<T: Entry, const N: usize> fmt::Debug for Consumer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("capacity", &N).field("head", &self.head).finish()
    }
}

/// [`crate::Request`] in shared memory (32 bytes).
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

/// [`crate::Response`] in shared memory (8 bytes): `id` at 0, `status` at 4.
#[repr(C)]
pub struct ResponseSlot {
    id: AtomicU32,
    status: AtomicU32,
}

const _: () = {
    assert!(core::mem::size_of::<RequestSlot>() == 32);
    assert!(core::mem::size_of::<ResponseSlot>() == 8);
};

impl Entry for crate::Request {
    type Slot = RequestSlot;

    fn load(slot: &RequestSlot) -> Self {
        crate::Request {
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
}

impl Entry for crate::Response {
    type Slot = ResponseSlot;

    fn load(slot: &ResponseSlot) -> Self {
        crate::Response { id: slot.id.load(Ordering::Relaxed), status: slot.status.load(Ordering::Relaxed) }
    }

    fn store(&self, slot: &ResponseSlot) {
        slot.id.store(self.id, Ordering::Relaxed);
        slot.status.store(self.status, Ordering::Relaxed);
    }
}
