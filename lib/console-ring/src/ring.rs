//! The shared region's layout and the two ends of the ring. The protocol is
//! described in the `console-ring` crate documentation.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Size of the shared region both sides map: one 4 KiB page.
pub const REGION_SIZE: usize = 4096;
/// Bytes before the data area: the indices, padded to a cache line so the
/// data never shares one with the hot indices' neighbours.
pub const HEADER_SIZE: usize = 64;
/// Bytes the ring holds: the largest power of two that fits in the region
/// after the header. Both sides derive it from [`REGION_SIZE`]; it is never
/// taken from shared memory.
pub const CAPACITY: usize = largest_power_of_two_at_most(REGION_SIZE - HEADER_SIZE);

const fn largest_power_of_two_at_most(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// The indices, first in the region.
#[repr(C)]
struct Header {
    /// Bytes ever written; published by the writer.
    head: AtomicU32,
    /// Bytes ever read; published by the reader.
    tail: AtomicU32,
    /// Bytes the writer dropped because the ring was full.
    dropped: AtomicU32,
    _reserved: [AtomicU32; 13],
}

/// The shared region, exactly as laid out in memory. Every field is atomic,
/// so a shared reference to it is sound even while the peer writes.
#[repr(C, align(64))]
pub struct ConsoleRegion {
    header: Header,
    data: [AtomicU8; CAPACITY],
    _unused: [AtomicU8; REGION_SIZE - HEADER_SIZE - CAPACITY],
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(core::mem::size_of::<ConsoleRegion>() == REGION_SIZE);
const _: () = assert!(CAPACITY.is_power_of_two() && CAPACITY <= u32::MAX as usize);

impl ConsoleRegion {
    /// An empty ring (what a zeroed region is), for rings not in shared
    /// memory, such as in tests.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ConsoleRegion {
            header: Header {
                head: AtomicU32::new(0),
                tail: AtomicU32::new(0),
                dropped: AtomicU32::new(0),
                _reserved: [const { AtomicU32::new(0) }; 13],
            },
            data: [const { AtomicU8::new(0) }; CAPACITY],
            _unused: [const { AtomicU8::new(0) }; REGION_SIZE - HEADER_SIZE - CAPACITY],
        }
    }

    /// The region mapped at `vaddr`.
    ///
    /// # Safety
    /// `vaddr` must be the start of a mapping of at least [`REGION_SIZE`]
    /// readable and writable bytes, 64-byte aligned (a page is), that stays
    /// mapped for the rest of the program. The peer may write it at any time.
    pub unsafe fn at(vaddr: usize) -> &'static ConsoleRegion {
        // SAFETY: mapped, aligned and live forever (caller's contract); all
        // fields are atomics, for which every bit pattern is valid and
        // concurrent writes by the peer are not a data race.
        unsafe { &*(vaddr as *const ConsoleRegion) }
    }

    /// The shared `head`, `tail` and `dropped`, for tests that play a
    /// misbehaving peer.
    #[cfg(test)]
    pub(crate) fn indices(&self) -> (&AtomicU32, &AtomicU32, &AtomicU32) {
        (&self.header.head, &self.header.tail, &self.header.dropped)
    }

    fn slot(&self, index: u32) -> &AtomicU8 {
        // The modulo keeps any index, however corrupt, inside the data area.
        &self.data[index as usize % CAPACITY]
    }
}

/// The producing end. There must be only one per region.
pub struct Writer<'a> {
    region: &'a ConsoleRegion,
    /// Our position; the shared `head` is only a copy for the reader.
    head: u32,
    dropped: u32,
}

impl<'a> Writer<'a> {
    /// Takes over writing from the current shared `head` (0 in a fresh
    /// region; a restarted writer carries on where it stopped).
    pub fn new(region: &'a ConsoleRegion) -> Self {
        let h = &region.header;
        Writer { region, head: h.head.load(Ordering::Relaxed), dropped: h.dropped.load(Ordering::Relaxed) }
    }

    /// Bytes written but not yet read, per the reader's published `tail`;
    /// `None` if that `tail` is impossible (the reader broke the protocol).
    fn used(&self) -> Option<usize> {
        let tail = self.region.header.tail.load(Ordering::Acquire);
        let used = self.head.wrapping_sub(tail) as usize;
        (used <= CAPACITY).then_some(used)
    }

    /// Bytes that can be written now without dropping any.
    pub fn free(&self) -> usize {
        self.used().map_or(0, |used| CAPACITY - used)
    }

    /// Bytes written that the reader has not taken yet.
    pub fn pending(&self) -> usize {
        self.used().unwrap_or(0)
    }

    /// Writes as much of `bytes` as fits; the rest is dropped and added to
    /// the shared `dropped` count. Returns the number of bytes written.
    /// Never waits.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        let n = self.free().min(bytes.len());
        for (i, &b) in bytes[..n].iter().enumerate() {
            self.region.slot(self.head.wrapping_add(i as u32)).store(b, Ordering::Relaxed);
        }
        self.head = self.head.wrapping_add(n as u32);
        // Release: the bytes above are visible to whoever sees this head.
        self.region.header.head.store(self.head, Ordering::Release);
        let lost = bytes.len() - n;
        if lost > 0 {
            self.dropped = self.dropped.wrapping_add(lost as u32);
            self.region.header.dropped.store(self.dropped, Ordering::Relaxed);
        }
        n
    }

    /// Bytes this writer has dropped since the region was fresh.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

/// The consuming end. There must be only one per region.
pub struct Reader<'a> {
    region: &'a ConsoleRegion,
    /// Our position; the shared `tail` is only a copy for the writer.
    tail: u32,
    resyncs: u32,
}

impl<'a> Reader<'a> {
    /// Takes over reading from the current shared `tail`.
    pub fn new(region: &'a ConsoleRegion) -> Self {
        Reader { region, tail: region.header.tail.load(Ordering::Relaxed), resyncs: 0 }
    }

    /// Copies up to `buf.len()` bytes out of the ring and frees their slots;
    /// returns how many. If the writer's `head` is impossible, skips to it
    /// (losing whatever was in between), counts a resync and returns 0.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        // Acquire: pairs with the writer's Release store of `head`.
        let head = self.region.header.head.load(Ordering::Acquire);
        let available = head.wrapping_sub(self.tail) as usize;
        let n = if available > CAPACITY {
            self.tail = head;
            self.resyncs = self.resyncs.wrapping_add(1);
            0
        } else {
            let n = available.min(buf.len());
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = self.region.slot(self.tail.wrapping_add(i as u32)).load(Ordering::Relaxed);
            }
            self.tail = self.tail.wrapping_add(n as u32);
            n
        };
        // Release: our loads of the slots happen before the writer reuses them.
        self.region.header.tail.store(self.tail, Ordering::Release);
        n
    }

    /// Whether there is nothing to read (or the writer's `head` is corrupt).
    pub fn is_empty(&self) -> bool {
        self.region.header.head.load(Ordering::Acquire) == self.tail
    }

    /// The writer's count of dropped bytes (as the writer reports it).
    pub fn dropped(&self) -> u32 {
        self.region.header.dropped.load(Ordering::Relaxed)
    }

    /// How often the writer's `head` was impossible and we skipped to it.
    pub fn resyncs(&self) -> u32 {
        self.resyncs
    }
}
