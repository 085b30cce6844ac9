//! Test support: a shared region standing in for memory mapped by two PDs,
//! a stand-in for an seL4 notification, and a guard that turns a hang into
//! a failure.
#![allow(dead_code)] // each test file uses a different part

use lib_queue::{Consumer, Entry, Producer};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Byte offsets of the queue region layout documented in the crate docs.
pub const TAIL: usize = 0;
pub const HEAD: usize = 64;
pub const SIGNAL_REQUESTED: usize = 68;
pub fn slot(i: usize) -> usize {
    128 + 16 * i
}
/// Byte offset of slot `i` of a ring of [`Wide`] entries.
pub fn wide_slot(i: usize) -> usize {
    128 + 32 * i
}

/// A 32-byte entry for the generic path, like a block request. It carries
/// a check that a torn copy (fields from two different entries) fails:
/// `key` and `tag` are functions of `seq`, and `seq` must be below the
/// consumer's bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wide {
    pub seq: u64,
    pub key: u64,
    pub extra: u64,
    pub tag: u32,
    pub cookie: u32,
}

/// [`Wide`] in shared memory: `seq` at 0, `key` at 8, `extra` at 16, `tag`
/// at 24, `cookie` at 28.
#[repr(C)]
pub struct WideSlot {
    seq: AtomicU64,
    key: AtomicU64,
    extra: AtomicU64,
    tag: AtomicU32,
    cookie: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<WideSlot>() == 32);

impl Wide {
    pub fn key_of(seq: u64) -> u64 {
        seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555_aaaa_5555_aaaa
    }

    pub fn tag_of(seq: u64) -> u32 {
        !(seq as u32) ^ (seq >> 32) as u32
    }

    /// The consistent entry with sequence number `seq`.
    pub fn numbered(seq: u64) -> Wide {
        Wide { seq, key: Wide::key_of(seq), extra: seq.rotate_left(17), tag: Wide::tag_of(seq), cookie: seq as u32 }
    }
}

// SAFETY: five atomics, 32 bytes without padding (asserted above), aligned to 8.
unsafe impl Entry for Wide {
    type Slot = WideSlot;
    /// `seq` must be below this.
    type Bounds = u64;

    fn load(slot: &WideSlot) -> Wide {
        Wide {
            seq: slot.seq.load(Ordering::Relaxed),
            key: slot.key.load(Ordering::Relaxed),
            extra: slot.extra.load(Ordering::Relaxed),
            tag: slot.tag.load(Ordering::Relaxed),
            cookie: slot.cookie.load(Ordering::Relaxed),
        }
    }

    fn store(&self, slot: &WideSlot) {
        slot.seq.store(self.seq, Ordering::Relaxed);
        slot.key.store(self.key, Ordering::Relaxed);
        slot.extra.store(self.extra, Ordering::Relaxed);
        slot.tag.store(self.tag, Ordering::Relaxed);
        slot.cookie.store(self.cookie, Ordering::Relaxed);
    }

    fn check(&self, max_seq: &u64) -> bool {
        self.seq < *max_seq && self.key == Wide::key_of(self.seq) && self.tag == Wide::tag_of(self.seq)
    }
}

/// An 8-byte entry without a check, like a block response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Small {
    pub id: u32,
    pub status: u32,
}

/// [`Small`] in shared memory: `id` at 0, `status` at 4.
#[repr(C)]
pub struct SmallSlot {
    id: AtomicU32,
    status: AtomicU32,
}

// SAFETY: two atomics, 8 bytes without padding, aligned to 4.
unsafe impl Entry for Small {
    type Slot = SmallSlot;
    type Bounds = ();

    fn load(slot: &SmallSlot) -> Small {
        Small { id: slot.id.load(Ordering::Relaxed), status: slot.status.load(Ordering::Relaxed) }
    }

    fn store(&self, slot: &SmallSlot) {
        slot.id.store(self.id, Ordering::Relaxed);
        slot.status.store(self.status, Ordering::Relaxed);
    }

    fn check(&self, (): &()) -> bool {
        true
    }
}

/// Zeroed, page-aligned memory, as seL4 maps a fresh memory region. Once the
/// queue handles exist it is accessed only atomically (like a hostile peer
/// in another address space, as far as this address space is concerned),
/// or, for data buffers, by the one thread that owns the buffer.
pub struct Region {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the region is plain memory; all concurrent accesses by the tests
// are atomic or ordered by the queue protocol.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    pub fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), 4096).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Region { ptr, layout }
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The producing end of the queue in this region.
    pub fn producer<const N: usize>(&self) -> Producer<'_, N> {
        assert!(self.len() >= Producer::<N>::REGION_SIZE);
        // SAFETY: the region is big enough, page-aligned, lives as long as
        // the returned borrow, and is otherwise accessed only atomically.
        unsafe { Producer::new(self.ptr) }
    }

    /// The consuming end of the queue in this region.
    pub fn consumer<const N: usize>(&self, data_len: usize) -> Consumer<'_, N> {
        assert!(self.len() >= Consumer::<N>::REGION_SIZE);
        // SAFETY: as for `producer`.
        unsafe { Consumer::new(self.ptr, data_len) }
    }

    /// The producing end of a queue of `T` entries in this region.
    pub fn producer_of<const N: usize, T: Entry>(&self) -> Producer<'_, N, T> {
        assert!(self.len() >= Producer::<N, T>::REGION_SIZE);
        // SAFETY: as for `producer`.
        unsafe { Producer::new(self.ptr) }
    }

    /// The consuming end of a queue of `T` entries in this region.
    pub fn consumer_of<const N: usize, T: Entry>(&self, bounds: T::Bounds) -> Consumer<'_, N, T> {
        assert!(self.len() >= Consumer::<N, T>::REGION_SIZE);
        // SAFETY: as for `producer`.
        unsafe { Consumer::new(self.ptr, bounds) }
    }

    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len());
        // SAFETY: in bounds and aligned (checked); the memory is only ever
        // accessed atomically while the region is shared.
        unsafe { AtomicU32::from_ptr(self.ptr.add(offset).cast()) }
    }

    fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len());
        // SAFETY: as for `atomic_u32`.
        unsafe { AtomicU64::from_ptr(self.ptr.add(offset).cast()) }
    }

    /// What the peer sees at `offset`.
    pub fn read_u32(&self, offset: usize) -> u32 {
        self.atomic_u32(offset).load(Ordering::SeqCst)
    }

    pub fn read_u64(&self, offset: usize) -> u64 {
        self.atomic_u64(offset).load(Ordering::SeqCst)
    }

    /// What a (hostile) peer may do: write anything anywhere, any time.
    pub fn write_u32(&self, offset: usize, value: u32) {
        self.atomic_u32(offset).store(value, Ordering::SeqCst)
    }

    pub fn write_u64(&self, offset: usize, value: u64) {
        self.atomic_u64(offset).store(value, Ordering::SeqCst)
    }

    /// Writes a descriptor into slot `i` of the ring, field by field.
    pub fn write_slot(&self, i: usize, offset: u64, len: u32, cookie: u32) {
        self.write_u64(slot(i), offset);
        self.write_u32(slot(i) + 8, len);
        self.write_u32(slot(i) + 12, cookie);
    }

    /// Writes a [`Wide`] entry into slot `i` of a ring of them, field by
    /// field (a concurrent reader may see a mix of old and new fields).
    pub fn write_wide_slot(&self, i: usize, w: Wide) {
        self.write_u64(wide_slot(i), w.seq);
        self.write_u64(wide_slot(i) + 8, w.key);
        self.write_u64(wide_slot(i) + 16, w.extra);
        self.write_u32(wide_slot(i) + 24, w.tag);
        self.write_u32(wide_slot(i) + 28, w.cookie);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the queue handles
        // borrow the region, so none is left.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// Stands in for an seL4 notification: `signal` sets the (single) pending
/// bit and wakes the waiter; `wait` blocks until the bit is set, then
/// clears it. A signal sent while nobody waits stays pending.
#[derive(Default)]
pub struct Notification {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Notification {
    pub fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.cond.notify_one();
    }

    pub fn wait(&self) {
        let mut pending = self.pending.lock().unwrap();
        while !*pending {
            pending = self.cond.wait(pending).unwrap();
        }
        *pending = false;
    }
}

/// Runs `f` on its own thread; fails if it has not finished after `secs`
/// seconds (rather than hanging the test run), and passes on its panic.
pub fn with_timeout(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("not finished after {secs} s: a lost wake-up, or a livelock")
        }
    }
}

/// A small deterministic PRNG, for hostile writes (not every test
/// binary that includes this module uses it).
#[allow(unused_imports)]
pub use lib_test_rng::Rng;
