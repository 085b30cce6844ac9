//! Single-producer single-consumer queues of fixed-size entries in shared
//! memory, in the style of the seL4 Device Driver Framework (sDDF): buffer
//! descriptors by default, or any [`Entry`] type (e.g. block requests).
//!
//! # Model
//!
//! Two protection domains (PDs) that exchange data share:
//!
//! - a **data region**, mapped by both, holding the buffers (packets,
//!   blocks);
//! - per direction of data flow, two **queue regions**: `active` carries
//!   filled buffers from the sender of data to its receiver, `free` carries
//!   empty buffers back (see [`SenderQueues`], [`ReceiverQueues`]);
//! - notifications, to wake each other up.
//!
//! A queue carries [`BufferDesc`]s (`offset` and `len` of a buffer in the data
//! region, plus an opaque `cookie`) from its [`Producer`] to its [`Consumer`].
//! A queue region has one producer and one consumer, in different PDs. The
//! data itself never goes through a queue.
//!
//! # Other entries
//!
//! [`Producer`], [`Consumer`], [`SenderQueues`] and [`ReceiverQueues`] take
//! the entry type as a last generic parameter, [`BufferDesc`] by default:
//! `Producer<'a, N>` is `Producer<'a, N, BufferDesc>`. Any type implementing
//! [`Entry`] can travel instead (a block request of 32 bytes, a response of
//! 8), with the same layout, ordering, signalling and hostile-peer checks.
//! An entry names its shared-memory form ([`Entry::Slot`], a `#[repr(C)]`
//! struct of atomics), how it is copied in and out of a slot, and the check
//! a consumer applies to each copy ([`Entry::check`] against
//! [`Entry::Bounds`], given to [`Consumer::new`]): for a [`BufferDesc`] the
//! size of the data region; `()` and no check for an entry whose user
//! validates it field by field.
//!
//! # Layout of a queue region
//!
//! Fields are in the platform's byte order (little-endian on x86_64 and
//! aarch64), the region is at least [`REGION_ALIGN`]-aligned (seL4 maps it
//! page-aligned), and its size is [`region_size_for`]`::<T>(N)` =
//! [`HEADER_SIZE`] + `N` × `S` bytes, where `S` is the size of the entry's
//! [`Entry::Slot`]; slot `i` is at `128 + S·i`. For [`BufferDesc`] entries
//! `S` is [`DESC_SIZE`] and the size [`region_size`]`(N)`:
//!
//! | offset       | size | field              | written by                  |
//! |--------------|------|--------------------|-----------------------------|
//! | 0            | 4    | `tail`             | producer                    |
//! | 4            | 60   | (padding)          | nobody                      |
//! | 64           | 4    | `head`             | consumer                    |
//! | 68           | 4    | `signal_requested` | consumer sets, producer clears |
//! | 72           | 56   | (padding)          | nobody                      |
//! | 128 + 16·i   | 8    | slot `i`: `offset` | producer                    |
//! | 136 + 16·i   | 4    | slot `i`: `len`    | producer                    |
//! | 140 + 16·i   | 4    | slot `i`: `cookie` | producer                    |
//!
//! `tail` and `head` are on separate 64-byte cache lines so that the two
//! sides do not write the same line on every operation. `signal_requested`
//! shares the consumer's line: the producer reads that line anyway (`head`,
//! to see free space) and writes it only when it is about to notify.
//!
//! # Indices
//!
//! `head` and `tail` are free-running `u32` counters: the producer writes
//! slot `tail % N` then increments `tail`; the consumer reads slot `head % N`
//! then increments `head`. The number of entries is `tail - head` (wrapping),
//! always in `0..=N`. The capacity `N` is a power of two, so that `index % N`
//! stays continuous when the counters wrap at 2³², and at most 2³¹.
//!
//! `N` is a const generic: each side knows it privately, from its own code
//! or system description, and never reads it from shared memory. Each side
//! also keeps its own index privately: it reads the shared copy once, when
//! its handle is made (so that a restarted PD resumes where it was), and from
//! then on only writes it.
//!
//! # Memory ordering
//!
//! - The producer writes a slot, then stores `tail` with `Release`; the
//!   consumer loads `tail` with `Acquire` before reading slots below it. The
//!   descriptor, and the buffer contents the producer wrote before
//!   enqueueing, are visible to the consumer.
//! - The consumer reads a slot, then stores `head` with `Release`; the
//!   producer loads `head` with `Acquire` before writing slots below it
//!   (modulo `N`). The consumer's read of a slot is finished before the
//!   producer reuses it, and so are its accesses to the buffer it returned.
//!
//! Slots are atomics accessed with `Relaxed`: the peer may write them at any
//! time, and this is how such memory is accessed without a data race in
//! Rust's memory model. They compile to plain loads and stores.
//!
//! # Sleeping without losing a wake-up
//!
//! A consumer that finds its queue empty blocks on its notification; the
//! producer should notify only when the consumer asked for it, not after
//! every enqueue (sDDF's `require_signal` / `cancel_signal` protocol).
//!
//! Consumer, on finding the queue empty
//! ([`Consumer::request_signal_if_empty`] does C1–C3):
//!
//! ```text
//! C1  signal_requested := 1                         (Relaxed)
//! C2  fence(SeqCst)
//! C3  t := tail                                     (Acquire)
//!     if t != head: signal_requested := 0; go back to dequeueing
//! C4  wait on the notification
//! ```
//!
//! Producer, after enqueueing one entry or a batch
//! ([`Producer::enqueue`] does P1, [`Producer::should_signal`] P2–P3):
//!
//! ```text
//! P1  tail := t'                                    (Release)
//! P2  fence(SeqCst)
//! P3  if signal_requested != 0:                     (Relaxed)
//!         if swap(signal_requested, 0) != 0:        (Relaxed)
//!             notify the consumer
//! ```
//!
//! **Claim.** If the producer publishes an entry `e` at P1 and the consumer
//! checks the queue at C3 after requesting a signal at C1, then the consumer
//! either sees `e` at C3 or is notified after C1.
//!
//! **Proof sketch.** The two `SeqCst` fences C2 and P2 are totally ordered
//! (the single total order S of C++20 \[atomics.order\], which Rust uses).
//!
//! - *P2 precedes C2 in S.* P1 is sequenced before P2 and C2 before C3, so by
//!   the fence rule of \[atomics.order\] (a store sequenced before fence X,
//!   fence Y sequenced before a load, X before Y in S: the load sees the store
//!   or a later one) C3 reads `tail` = `t'` or later: the consumer sees `e`
//!   and does not block.
//! - *C2 precedes P2 in S.* By the same rule with the roles swapped, P3 reads
//!   the 1 written at C1 or a later value of the flag. The consumer writes the
//!   flag again only after it has stopped waiting. So either P3 reads 1, and
//!   then the swap takes C1's 1 (the producer notifies) or a 0 that the
//!   producer itself wrote after C1; or P3 reads such a 0. Every 0 the
//!   producer writes is followed by a notification, so in every case the
//!   producer notifies after C1.
//!
//! A PD that both consumes one queue and produces to another (every user of
//! a [`SenderQueues`] or [`ReceiverQueues`]) must also call `should_signal`
//! on what it produced before it waits, else both sides may wait on each
//! other with entries unannounced.
//!
//! The notification may arrive between C3 and C4, before the consumer
//! waits: it is not lost because seL4 notifications are sticky (a signal
//! sent to a notification nobody waits on stays pending, and the next wait
//! returns at once). A spurious wake-up (the consumer cancelled the request
//! at C3, or finds nothing) costs one empty pass through the dequeue loop.
//!
//! Both fences are needed: they order a store before a later load of a
//! *different* location, which `Release`/`Acquire` never does. Without them
//! the classic store-buffering outcome is allowed (and happens on x86): C3
//! reads the old `tail` while C1 sits in the consumer core's store buffer,
//! and P3 reads the old flag while P1 sits in the producer's; the consumer
//! sleeps on a non-empty queue that nobody will signal.
//!
//! # Starting over
//!
//! When one side's PD is restarted (its memory reset to its program image
//! by the monitor), the queues it shared still hold the old indices and
//! entries, which the new side knows nothing about. The two sides then
//! start over with empty queues:
//!
//! 1. the restarted side, before it makes any handle, asks its peer to
//!    reset (a protected call to the peer, e.g. `net-mux-api`'s Attach);
//! 2. the peer, while that call blocks the restarted side (so it neither
//!    runs nor holds a handle), calls `reset` on its handles of every
//!    shared queue: each region's `head` and `tail` become 0, with the
//!    peer's own indices, and no signal is requested. What the queues
//!    held is dropped: each protocol says what becomes of the buffers
//!    those entries named (e.g. the peer takes back the ones it had lent);
//! 3. the restarted side then makes its handles, which read the zeros
//!    ("carrying on from" the indices found there), and starts as at boot.
//!
//! `reset` only writes the header: a side that calls it while the peer
//! runs loses entries and may see [`QueueError::Corrupt`], never worse
//! (the hostile-peer rules below still hold).
//!
//! # A hostile peer
//!
//! The peer PD may write any value to any byte of the queue region at any
//! time. It cannot make this side misbehave:
//!
//! - Every access to the region is atomic, the slots' included (an
//!   [`Entry::Slot`] is made of atomics only), so a peer's writes cannot
//!   cause undefined behaviour here; the ring is indexed with `index % N` where
//!   `N` is this side's own constant, so never out of bounds.
//! - The peer's index is read once per operation, and `tail - head` (with
//!   this side's own index) is checked against `N`: more than `N` entries is
//!   [`QueueError::Corrupt`], and nothing is read or written.
//! - An entry is copied out of its slot (each field read once), then
//!   checked ([`Entry::check`]; for a descriptor, against the size of the
//!   data region given at construction: `offset + len`, without overflow):
//!   the copy that was checked is the one handed out, and an entry that fails
//!   the check is consumed and returned as [`QueueError::OutOfBounds`],
//!   never as an entry.
//! - Nothing loops: every operation does a bounded amount of work.
//!
//! What a peer *can* do is hurt itself or stall the flow: lie about `head`
//! so that the producer overwrites entries the consumer had not read, put
//! the same buffer in the queue twice, or never notify. Whether the buffers
//! it hands over are its to give is for the user of the queue to check, as in
//! sDDF (e.g. a receiver keeping track of which buffers it lent).
//!
//! # Example
//!
//! The receiving side of a data flow (e.g. a network client's RX), in a PD
//! whose queue regions and data region are mapped at addresses given by the
//! system description:
//!
//! ```ignore
//! const N: usize = 512;
//! // SAFETY: the system description maps both queue regions
//! // (`region_size(N)` bytes each, page-aligned) and the data region
//! // (DATA_LEN bytes) in this PD for its whole life, and this PD accesses
//! // them only through these handles.
//! let mut rx = unsafe { ReceiverQueues::<N>::new(FREE_VADDR, ACTIVE_VADDR, DATA_LEN) };
//!
//! // in the notification handler:
//! loop {
//!     while let Some(buf) = rx.active.dequeue()? {
//!         consume(&data[buf.range()]);
//!         rx.free.enqueue(BufferDesc { len: BUF_SIZE, ..buf })?;
//!     }
//!     if rx.free.should_signal() { SENDER.notify() }
//!     if rx.active.request_signal_if_empty()? { break } // return to the event loop: wait
//! }
//! ```
//!
//! An entry of another type, here 16 bytes carrying a request whose `id`
//! the consumer insists be below a limit:
//!
//! ```
//! use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
//! use lib_queue::{Consumer, Entry, Producer, QueueError};
//!
//! #[derive(Clone, Copy, Debug, PartialEq)]
//! struct Job { id: u32, arg: u64 }
//!
//! #[repr(C)]
//! struct JobSlot { id: AtomicU32, _reserved: AtomicU32, arg: AtomicU64 }
//!
//! // SAFETY: atomics only, 16 bytes without padding, aligned to 8.
//! unsafe impl Entry for Job {
//!     type Slot = JobSlot;
//!     type Bounds = u32; // ids must be below this
//!     fn load(s: &JobSlot) -> Job {
//!         Job { id: s.id.load(Relaxed), arg: s.arg.load(Relaxed) }
//!     }
//!     fn store(&self, s: &JobSlot) {
//!         s.id.store(self.id, Relaxed);
//!         s._reserved.store(0, Relaxed);
//!         s.arg.store(self.arg, Relaxed);
//!     }
//!     fn check(&self, max_id: &u32) -> bool {
//!         self.id < *max_id
//!     }
//! }
//!
//! #[repr(C, align(4096))]
//! struct Page([u8; 4096]);
//! let mut page = Box::new(Page([0; 4096]));
//! let region = page.0.as_mut_ptr();
//! assert!(Producer::<8, Job>::REGION_SIZE <= 4096);
//! // SAFETY: the page is aligned, large enough, outlives both handles and
//! // is accessed only through them.
//! let (mut tx, mut rx) =
//!     unsafe { (Producer::<8, Job>::new(region), Consumer::<8, Job>::new(region, 100)) };
//! tx.enqueue(Job { id: 7, arg: 42 })?;
//! tx.enqueue(Job { id: 700, arg: 0 })?;
//! assert_eq!(rx.dequeue(), Ok(Some(Job { id: 7, arg: 42 })));
//! assert_eq!(rx.dequeue(), Err(QueueError::OutOfBounds(Job { id: 700, arg: 0 })));
//! # Ok::<(), QueueError<Job>>(())
//! ```
#![no_std]

use core::fmt;
use core::ops::Range;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Bytes of a queue region's header, before the ring of slots.
pub const HEADER_SIZE: usize = 128;
/// Bytes of one [`BufferDesc`] slot in the ring.
pub const DESC_SIZE: usize = 16;
/// Minimum alignment of a queue region (one cache line).
pub const REGION_ALIGN: usize = 64;

/// Bytes of a queue region holding `capacity` [`BufferDesc`]s, to check the
/// sizes of the memory regions in a system description.
#[inline]
pub const fn region_size(capacity: usize) -> usize {
    region_size_for::<BufferDesc>(capacity)
}

/// Bytes of a queue region holding `capacity` entries of type `T`.
#[inline]
pub const fn region_size_for<T: Entry>(capacity: usize) -> usize {
    HEADER_SIZE + capacity * core::mem::size_of::<T::Slot>()
}

/// A value that travels in a queue: copied into a slot by the producer,
/// copied out and checked by the consumer.
///
/// # Safety
///
/// [`Slot`](Entry::Slot) is laid over memory that the peer may write at any
/// time, through a shared reference. It must therefore be made of atomic
/// integers only (`AtomicU8` to `AtomicU64`, or `#[repr(C)]` structs and
/// arrays of them) with no padding bytes, so that every bit pattern is valid
/// and every byte is inside an `UnsafeCell`. Its alignment must be at most
/// [`REGION_ALIGN`] and divide [`HEADER_SIZE`], and its size must not be
/// zero (both checked at compile time).
pub unsafe trait Entry: Copy {
    /// The entry's form in shared memory (see the trait's safety contract).
    type Slot: Sync;
    /// What a consumer checks each entry against, given to
    /// [`Consumer::new`]: e.g. the size of a data region; `()` if the user
    /// of the queue validates entries itself.
    type Bounds: Copy + fmt::Debug;

    /// Copies the entry out of a slot, reading each field once: the consumer
    /// checks and hands out this copy, whatever the peer writes meanwhile.
    fn load(slot: &Self::Slot) -> Self;
    /// Writes the entry into a slot (every field, reserved ones included).
    fn store(&self, slot: &Self::Slot);
    /// Whether a consumer may hand out this entry; `false` makes
    /// [`Consumer::dequeue`] return [`QueueError::OutOfBounds`].
    fn check(&self, bounds: &Self::Bounds) -> bool;
}

/// A buffer in the data region: bytes `offset .. offset + len`.
///
/// On an `active` queue, `len` is the length of the data in the buffer; on a
/// `free` queue, it is the capacity of the (empty) buffer, so that the
/// receiving side knows how much it may write and the queue can check it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct BufferDesc {
    /// Start of the buffer, in bytes from the start of the data region.
    pub offset: u64,
    /// Length of the buffer in bytes.
    pub len: u32,
    /// Not interpreted by the queue; carried unchanged (e.g. a request id, or
    /// a buffer index private to the side that owns the buffers).
    pub cookie: u32,
}

impl BufferDesc {
    /// Whether the buffer lies within a data region of `data_len` bytes.
    #[inline]
    pub fn is_within(&self, data_len: usize) -> bool {
        match self.offset.checked_add(u64::from(self.len)) {
            Some(end) => end <= data_len as u64,
            None => false,
        }
    }

    /// The buffer's bytes as a range of indices into the data region.
    ///
    /// Descriptors returned by [`Consumer::dequeue`] are within the data
    /// region, so this range is exact and can index a slice of it.
    #[inline]
    pub fn range(&self) -> Range<usize> {
        let start = self.offset as usize;
        start..start.wrapping_add(self.len as usize)
    }
}

/// One descriptor slot of the ring, the shared-memory form of [`BufferDesc`].
#[repr(C)]
pub struct DescSlot {
    offset: AtomicU64,
    len: AtomicU32,
    cookie: AtomicU32,
}

// SAFETY: `DescSlot` is three atomics, 16 bytes without padding (asserted
// below), aligned to 8.
unsafe impl Entry for BufferDesc {
    type Slot = DescSlot;
    /// The size of the data region, in bytes.
    type Bounds = usize;

    #[inline]
    fn load(slot: &DescSlot) -> Self {
        BufferDesc {
            offset: slot.offset.load(Ordering::Relaxed),
            len: slot.len.load(Ordering::Relaxed),
            cookie: slot.cookie.load(Ordering::Relaxed),
        }
    }

    #[inline]
    fn store(&self, slot: &DescSlot) {
        slot.offset.store(self.offset, Ordering::Relaxed);
        slot.len.store(self.len, Ordering::Relaxed);
        slot.cookie.store(self.cookie, Ordering::Relaxed);
    }

    #[inline]
    fn check(&self, data_len: &usize) -> bool {
        self.is_within(*data_len)
    }
}

/// What a queue operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError<T = BufferDesc> {
    /// The queue holds `N` entries ([`Producer::enqueue`] only).
    Full,
    /// The indices in shared memory imply more than `N` entries: the peer
    /// wrote a bogus index. Nothing was read or written; the operation can be
    /// retried (in case the peer repairs it) or the peer treated as failed.
    Corrupt,
    /// The entry at the head of the queue fails its [`Entry::check`] (a
    /// descriptor lies outside the data region; [`Consumer::dequeue`] only).
    /// It has been consumed: the next `dequeue` looks at the next entry.
    OutOfBounds(T),
}

impl<T: fmt::Debug> fmt::Display for QueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Full => f.write_str("queue full"),
            QueueError::Corrupt => f.write_str("queue indices corrupt (more entries than capacity)"),
            QueueError::OutOfBounds(entry) => write!(f, "entry out of bounds: {entry:x?}"),
        }
    }
}

/// The header of a queue region (see the layout in the crate docs).
///
/// Even the padding is made of atomics: the peer may write any byte of the
/// region, and every byte a shared reference covers outside an `UnsafeCell`
/// must stay unchanged in Rust's memory model.
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
    assert!(core::mem::align_of::<Header>() == REGION_ALIGN);
    assert!(core::mem::offset_of!(Header, tail) == 0);
    assert!(core::mem::offset_of!(Header, head) == 64);
    assert!(core::mem::offset_of!(Header, signal_requested) == 68);
    assert!(core::mem::size_of::<DescSlot>() == DESC_SIZE);
    assert!(core::mem::size_of::<BufferDesc>() == DESC_SIZE);
    assert!(core::mem::offset_of!(DescSlot, offset) == 0);
    assert!(core::mem::offset_of!(DescSlot, len) == 8);
    assert!(core::mem::offset_of!(DescSlot, cookie) == 12);
};

/// A view of one queue region: its header and its ring of `N` slots.
struct Ring<'a, const N: usize, T: Entry> {
    header: &'a Header,
    slots: &'a [T::Slot; N],
}

impl<'a, const N: usize, T: Entry> Ring<'a, N, T> {
    /// # Safety
    ///
    /// As for [`Producer::new`].
    unsafe fn new(region: *mut u8) -> Self {
        const {
            assert!(N.is_power_of_two(), "queue capacity must be a power of two");
            assert!(N <= 1 << 31, "queue capacity must fit free-running u32 indices");
            let (size, align) = (core::mem::size_of::<T::Slot>(), core::mem::align_of::<T::Slot>());
            assert!(size > 0, "an entry's slot must not be empty");
            assert!(
                align <= REGION_ALIGN && HEADER_SIZE.is_multiple_of(align),
                "an entry's slot must be aligned to at most 64 bytes"
            );
            assert!(!core::mem::needs_drop::<T::Slot>());
        }
        debug_assert!(!region.is_null() && (region as usize).is_multiple_of(REGION_ALIGN));
        // SAFETY: the caller guarantees that `region` is valid for reads and
        // writes of `region_size_for::<T>(N)` bytes for 'a,
        // `REGION_ALIGN`-aligned, and accessed by this address space only
        // atomically while 'a lasts. The header is the first HEADER_SIZE
        // bytes and the slots the `N * size_of::<T::Slot>()` bytes after it;
        // both types are made of atomics only (`Entry`'s safety contract for
        // the slots), for which any bit pattern is valid and concurrent
        // writes (by the peer, through its own mapping) are allowed.
        // HEADER_SIZE is a multiple of the slots' alignment, which is at most
        // the region's (checked above).
        unsafe { Ring { header: &*region.cast::<Header>(), slots: &*region.add(HEADER_SIZE).cast::<[T::Slot; N]>() } }
    }

    /// Both shared indices to 0 and no signal requested: an empty queue,
    /// as in a fresh region ("Starting over" in the crate docs).
    fn reset(&self) {
        self.header.head.store(0, Ordering::Relaxed);
        self.header.tail.store(0, Ordering::Relaxed);
        self.header.signal_requested.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    fn slot(&self, index: u32) -> &T::Slot {
        // `N` is a power of two no larger than 2^31, so `N - 1` fits in a u32
        // and the mask is `index % N`: always in bounds.
        &self.slots[index as usize & (N - 1)]
    }
}

/// Number of entries between `head` and `tail` in a queue of capacity `N`,
/// or `Corrupt` if more than `N`.
fn count<const N: usize, T>(head: u32, tail: u32) -> Result<usize, QueueError<T>> {
    let count = tail.wrapping_sub(head) as usize;
    if count > N {
        Err(QueueError::Corrupt)
    } else {
        Ok(count)
    }
}

/// The producing end of a queue of `N` entries of type `T`: the only one
/// that writes slots and `tail`.
pub struct Producer<'a, const N: usize, T: Entry = BufferDesc> {
    ring: Ring<'a, N, T>,
    /// The authoritative tail; the shared copy is only written.
    tail: u32,
}

impl<'a, const N: usize, T: Entry> Producer<'a, N, T> {
    /// Bytes of the queue region, [`region_size_for`]`::<T>(N)`.
    pub const REGION_SIZE: usize = region_size_for::<T>(N);

    /// Makes the producing end of the queue in `region`, carrying on from the
    /// `tail` found there (0 in a fresh, zeroed region).
    ///
    /// `N` must be a power of two, at most 2³¹ (checked at compile time).
    ///
    /// # Safety
    ///
    /// For all of `'a`, `region` must be valid for reads and writes of
    /// [`Self::REGION_SIZE`] bytes, aligned to [`REGION_ALIGN`], and accessed
    /// in this address space only through the handles of this crate (or other
    /// atomic accesses). Another address space (the peer) may write it
    /// arbitrarily. The contents may be any bytes.
    ///
    /// Only one producer and one consumer should use a region: that is
    /// needed for the queue to work, not for memory safety.
    pub unsafe fn new(region: *mut u8) -> Self {
        // SAFETY: same contract, passed on by the caller.
        let ring = unsafe { Ring::new(region) };
        let tail = ring.header.tail.load(Ordering::Relaxed);
        Producer { ring, tail }
    }

    /// The queue's capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Empties the queue for both sides, dropping what it held: the shared
    /// `tail` and `head` and this side's index become 0, and no signal is
    /// requested ("Starting over" in the crate docs).
    pub fn reset(&mut self) {
        self.ring.reset();
        self.tail = 0;
    }

    /// Number of entries not yet consumed, as far as the consumer has told.
    pub fn len(&self) -> Result<usize, QueueError<T>> {
        let head = self.ring.header.head.load(Ordering::Acquire);
        count::<N, T>(head, self.tail)
    }

    /// Whether the consumer has taken every entry.
    pub fn is_empty(&self) -> Result<bool, QueueError<T>> {
        Ok(self.len()? == 0)
    }

    /// Whether the queue holds `N` entries.
    pub fn is_full(&self) -> Result<bool, QueueError<T>> {
        Ok(self.len()? == N)
    }

    /// Number of entries that can be enqueued now, `N - len`.
    pub fn room(&self) -> Result<usize, QueueError<T>> {
        Ok(N - self.len()?)
    }

    /// Appends `entry` and publishes it to the consumer. Then call
    /// [`should_signal`](Self::should_signal) (once per batch is enough).
    pub fn enqueue(&mut self, entry: T) -> Result<(), QueueError<T>> {
        match self.enqueue_batch(core::slice::from_ref(&entry))? {
            0 => Err(QueueError::Full),
            _ => Ok(()),
        }
    }

    /// Appends as many of `entries` as fit, in order, publishes them with a
    /// single store of `tail`, and returns how many were appended (fewer
    /// than `entries.len()` if the queue became full).
    pub fn enqueue_batch(&mut self, entries: &[T]) -> Result<usize, QueueError<T>> {
        // Acquire: the consumer's reads of the slots below `head` are done
        // before this side overwrites them.
        let head = self.ring.header.head.load(Ordering::Acquire);
        let room = N - count::<N, T>(head, self.tail)?;
        let n = room.min(entries.len());
        for entry in &entries[..n] {
            entry.store(self.ring.slot(self.tail));
            self.tail = self.tail.wrapping_add(1);
        }
        if n > 0 {
            // Release: the slots (and the buffers' contents) are visible to
            // a consumer that sees this tail. This is P1 of the protocol.
            self.ring.header.tail.store(self.tail, Ordering::Release);
        }
        Ok(n)
    }

    /// Whether the consumer asked to be notified; if so, clears the request,
    /// and the caller must notify the consumer. Call after publishing
    /// entries (P2–P3 of the protocol in the crate docs).
    pub fn should_signal(&self) -> bool {
        let flag = &self.ring.header.signal_requested;
        // P2: orders the tail store (P1) before the flag load (P3).
        fence(Ordering::SeqCst);
        // The load keeps the common case (no request) free of writes to the
        // consumer's cache line; the swap makes one notification per request.
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0
    }
}

/// The consuming end of a queue of `N` entries of type `T`: the only one
/// that writes `head` and `signal_requested` = 1.
pub struct Consumer<'a, const N: usize, T: Entry = BufferDesc> {
    ring: Ring<'a, N, T>,
    /// The authoritative head; the shared copy is only written.
    head: u32,
    /// What each entry is checked against (for descriptors, the size of the
    /// data region they point into).
    bounds: T::Bounds,
}

impl<'a, const N: usize, T: Entry> Consumer<'a, N, T> {
    /// Bytes of the queue region, [`region_size_for`]`::<T>(N)`.
    pub const REGION_SIZE: usize = region_size_for::<T>(N);

    /// Makes the consuming end of the queue in `region`, carrying on from the
    /// `head` found there (0 in a fresh, zeroed region). Entries must pass
    /// [`Entry::check`] against `bounds`: for [`BufferDesc`]s, the size in
    /// bytes of the data region they must lie within; `()` for entries
    /// without a check.
    ///
    /// `N` must be a power of two, at most 2³¹ (checked at compile time).
    ///
    /// # Safety
    ///
    /// As for [`Producer::new`].
    pub unsafe fn new(region: *mut u8, bounds: T::Bounds) -> Self {
        // SAFETY: same contract, passed on by the caller.
        let ring = unsafe { Ring::new(region) };
        let head = ring.header.head.load(Ordering::Relaxed);
        Consumer { ring, head, bounds }
    }

    /// The queue's capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Empties the queue for both sides, dropping what it held, as
    /// [`Producer::reset`].
    pub fn reset(&mut self) {
        self.ring.reset();
        self.head = 0;
    }

    /// Number of entries waiting.
    pub fn len(&self) -> Result<usize, QueueError<T>> {
        let tail = self.ring.header.tail.load(Ordering::Acquire);
        count::<N, T>(self.head, tail)
    }

    /// Whether no entry is waiting.
    pub fn is_empty(&self) -> Result<bool, QueueError<T>> {
        Ok(self.len()? == 0)
    }

    /// Takes the oldest entry: `Ok(None)` if the queue is empty.
    ///
    /// The entry is copied out of shared memory, then checked
    /// ([`Entry::check`]; for a descriptor, against the data region); one
    /// that fails the check is consumed and returned as
    /// [`QueueError::OutOfBounds`].
    pub fn dequeue(&mut self) -> Result<Option<T>, QueueError<T>> {
        // Acquire: the slots below `tail` (and their buffers' contents) are
        // those the producer wrote before publishing it.
        let tail = self.ring.header.tail.load(Ordering::Acquire);
        if count::<N, T>(self.head, tail)? == 0 {
            return Ok(None);
        }
        // The copy, not the slot, is checked and handed out.
        let entry = T::load(self.ring.slot(self.head));
        self.head = self.head.wrapping_add(1);
        // Release: the slot has been read before the producer may reuse it.
        self.ring.header.head.store(self.head, Ordering::Release);
        if entry.check(&self.bounds) {
            Ok(Some(entry))
        } else {
            Err(QueueError::OutOfBounds(entry))
        }
    }

    /// Asks the producer to notify this side after its next enqueue (C1–C2
    /// of the protocol in the crate docs). The caller must check the queue
    /// again before waiting: prefer
    /// [`request_signal_if_empty`](Self::request_signal_if_empty).
    pub fn request_signal(&self) {
        self.ring.header.signal_requested.store(1, Ordering::Relaxed);
        // C2: orders the flag store (C1) before the next tail load (C3).
        fence(Ordering::SeqCst);
    }

    /// Withdraws a request for a notification.
    pub fn cancel_signal(&self) {
        self.ring.header.signal_requested.store(0, Ordering::Relaxed);
    }

    /// Prepares to wait for the producer: requests a notification, then
    /// checks the queue again (C1–C3).
    ///
    /// `Ok(true)`: the queue is empty and the producer will notify after its
    /// next enqueue, so the caller may wait on its notification. `Ok(false)`:
    /// entries arrived meanwhile; the request is withdrawn, dequeue them.
    /// On `Err(Corrupt)` the request is withdrawn too.
    pub fn request_signal_if_empty(&self) -> Result<bool, QueueError<T>> {
        self.request_signal();
        let empty = self.is_empty();
        if !matches!(empty, Ok(true)) {
            self.cancel_signal();
        }
        empty
    }
}

impl<const N: usize, T: Entry> fmt::Debug for Producer<'_, N, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("capacity", &N).field("tail", &self.tail).finish()
    }
}

impl<const N: usize, T: Entry> fmt::Debug for Consumer<'_, N, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &N)
            .field("head", &self.head)
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// The two queues of one direction of data flow, as seen by the side that
/// **sends** data (e.g. a network driver for received packets, a client for
/// packets to transmit): it takes empty buffers from `free`, fills them and
/// hands them to `active`.
#[derive(Debug)]
pub struct SenderQueues<'a, const N: usize, T: Entry = BufferDesc> {
    /// Empty buffers coming back from the receiver.
    pub free: Consumer<'a, N, T>,
    /// Filled buffers going to the receiver.
    pub active: Producer<'a, N, T>,
}

impl<'a, const N: usize, T: Entry> SenderQueues<'a, N, T> {
    /// Makes the sender's ends of the `free` and `active` queues, whose
    /// entries are checked against `bounds` (for descriptors, the size in
    /// bytes of the data region they point into).
    ///
    /// # Safety
    ///
    /// `free_region` and `active_region` each as for [`Producer::new`], and
    /// distinct.
    pub unsafe fn new(free_region: *mut u8, active_region: *mut u8, bounds: T::Bounds) -> Self {
        // SAFETY: the caller's contract covers both regions.
        unsafe { SenderQueues { free: Consumer::new(free_region, bounds), active: Producer::new(active_region) } }
    }

    /// Empties both queues ([`Producer::reset`]).
    pub fn reset(&mut self) {
        self.free.reset();
        self.active.reset();
    }
}

/// The two queues of one direction of data flow, as seen by the side that
/// **receives** data (e.g. a client for received packets, a network driver
/// for packets to transmit): it takes filled buffers from `active`, uses them
/// and returns them to `free`.
#[derive(Debug)]
pub struct ReceiverQueues<'a, const N: usize, T: Entry = BufferDesc> {
    /// Filled buffers coming from the sender.
    pub active: Consumer<'a, N, T>,
    /// Empty buffers going back to the sender.
    pub free: Producer<'a, N, T>,
}

impl<'a, const N: usize, T: Entry> ReceiverQueues<'a, N, T> {
    /// Makes the receiver's ends of the `free` and `active` queues, whose
    /// entries are checked against `bounds` (for descriptors, the size in
    /// bytes of the data region they point into).
    ///
    /// # Safety
    ///
    /// `free_region` and `active_region` each as for [`Producer::new`], and
    /// distinct.
    pub unsafe fn new(free_region: *mut u8, active_region: *mut u8, bounds: T::Bounds) -> Self {
        // SAFETY: the caller's contract covers both regions.
        unsafe { ReceiverQueues { active: Consumer::new(active_region, bounds), free: Producer::new(free_region) } }
    }

    /// Empties both queues ([`Producer::reset`]).
    pub fn reset(&mut self) {
        self.active.reset();
        self.free.reset();
    }
}
