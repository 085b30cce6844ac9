//! The driver's side of a split virtqueue (virtio 1.x §2.7).
//!
//! Three areas in one DMA region ([`DmaRegion`]) the device reaches, laid
//! out by [`Layout`]:
//!
//! | part                         | size          | alignment | written by |
//! |------------------------------|---------------|-----------|------------|
//! | descriptor table             | 16 × size     | 16        | driver     |
//! | available ring (driver area) | 6 + 2 × size  | 2         | driver     |
//! | used ring (device area)      | 6 + 8 × size  | 4         | device     |
//!
//! The available ring is `flags`, `idx`, `ring[size]`, `used_event`; the
//! used ring `flags`, `idx`, `ring[size]` of `{id, len}`, `avail_event`.
//!
//! A buffer is a chain of descriptors linked by `next` (flag `NEXT`), of any
//! length from 1 to the queue size; device-writable ones (flag `WRITE`)
//! follow the device-readable ones (§2.7.4.2). Descriptors come from a
//! private free list. The caller gives each chain a **token** of its own
//! choosing (which client buffer, which request) and gets it back with the
//! chain from the used ring.
//!
//! The driver keeps its own shadow of everything it needs (free list, chain
//! ends, tokens, indices) and never reads back what it
//! wrote for the device.
//!
//! # Ordering
//!
//! - Descriptors and available-ring entries are written first, then
//!   published with one `Release` store of `avail.idx` per batch
//!   ([`SplitQueue::publish`]; §2.7.13.3: "the driver MUST perform a
//!   suitable memory barrier before the idx update").
//! - `used.idx` is read with `Acquire` before the used elements, and the
//!   data the device wrote, below it (§2.7.14).
//!
//! # Suppression (§2.7.7, §2.7.10)
//!
//! With `VIRTIO_F_EVENT_IDX` the driver writes `used_event`: "interrupt me
//! when the used index passes this", and reads `avail_event`: "notify me
//! when the available index passes this". Without it, the one-bit flags
//! `VIRTQ_AVAIL_F_NO_INTERRUPT` and `VIRTQ_USED_F_NO_NOTIFY` are used. Both
//! need a full fence between publishing and reading the peer's wish, as
//! either side may be about to go to sleep.
//!
//! # A hostile device
//!
//! The device is trusted to DMA only where it is told (there is no IOMMU
//! here), but not to return sensible used elements. [`SplitQueue::pop_used`]
//! never follows what the device wrote beyond bounds checks against the
//! driver's shadow, and counts what it refuses ([`UsedErrors`]):
//!
//! - an id that is not the head of a chain in flight is skipped;
//! - a `used.idx` more than the queue size ahead skips everything up to it.
//!
//! The `len` of a used element is the device's claim: the caller checks it
//! against what it posted (the queue keeps no per-chain lengths, so that a
//! driver's state stays small enough for a PD's stack).

use crate::dma::DmaRegion;
use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, Ordering};

/// `VIRTQ_DESC_F_NEXT`: the chain continues at `next`.
const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the device writes this buffer (else reads it).
const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver needs no interrupt.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device needs no notification.
const USED_F_NO_NOTIFY: u16 = 1;
/// The private link of a chain's last descriptor while it is in flight.
const CHAIN_END: u16 = u16::MAX;

/// Where the three areas of a queue of `size` entries lie in its memory, in
/// bytes from its start (the descriptor table is at 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub avail: usize,
    pub used: usize,
    /// Bytes of the whole queue memory.
    pub size: usize,
}

impl Layout {
    /// Areas packed with the alignments of §2.7: descriptor table at 0
    /// (16-byte aligned), available ring right after it (2), used ring on
    /// the next 4-byte boundary.
    pub const fn new(size: usize) -> Layout {
        let avail = 16 * size;
        let used = (avail + 6 + 2 * size + 3) & !3;
        Layout { avail, used, size: used + 6 + 8 * size }
    }
}

/// Physical addresses of a queue's areas, for the transport's queue
/// registers (`queue_desc`, `queue_driver`, `queue_device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub desc: u64,
    pub driver: u64,
    pub device: u64,
}

/// One element of a chain, as the device sees it: a physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub len: u32,
    /// The device writes this buffer rather than reads it.
    pub device_writes: bool,
}

impl Segment {
    /// A buffer the device reads.
    pub const fn readable(paddr: u64, len: u32) -> Segment {
        Segment { paddr, len, device_writes: false }
    }

    /// A buffer the device writes.
    pub const fn writable(paddr: u64, len: u32) -> Segment {
        Segment { paddr, len, device_writes: true }
    }
}

/// A chain the device has finished with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used<T> {
    /// The token given to [`SplitQueue::push`].
    pub token: T,
    /// Bytes the device says it wrote into the chain's writable part: not
    /// checked here (see the module docs).
    pub len: u32,
}

/// Used elements refused since the queue was made (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsedErrors {
    /// Times `used.idx` ran more than the queue size ahead.
    pub index_jumps: u64,
    /// Elements whose id named no chain in flight.
    pub unknown_ids: u64,
}

impl UsedErrors {
    /// Elements skipped: they named nothing in flight.
    pub fn skipped(&self) -> u64 {
        self.index_jumps + self.unknown_ids
    }
}

/// The `vring_need_event` rule (§2.7.10): whether moving an index from
/// `old` to `new` crosses `event`, the index the other side asked to hear
/// about.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// The driver's side of a split virtqueue of up to `N` entries, whose
/// chains carry tokens of type `T`.
///
/// Fixed capacity; nothing allocated. `N` is a power of two of at most
/// 32768 (§2.7: "Queue Size ... a power of 2"); the size the device gets
/// may be smaller (a device's maximum), chosen at [`new`](Self::new).
pub struct SplitQueue<T: Copy, const N: usize> {
    mem: DmaRegion,
    size: u16,
    layout: Layout,
    event_idx: bool,
    /// Head of the private free-descriptor list; `size` when empty.
    free_head: u16,
    num_free: u16,
    /// Private links: free list for free descriptors, chain order for
    /// descriptors in flight, ending with [`CHAIN_END`].
    link: [u16; N],
    /// The token of the chain headed here; `None`: no chain is in flight
    /// here.
    tokens: [Option<T>; N],
    in_flight: u16,
    /// Available index as written (published or not yet).
    avail_idx: u16,
    /// Available index as last published to the device.
    published_idx: u16,
    /// Available index at the last notification (event-index rule).
    notified_idx: u16,
    /// Next used-ring entry to look at.
    last_used: u16,
    errors: UsedErrors,
}

impl<T: Copy, const N: usize> SplitQueue<T, N> {
    /// Bytes of memory a queue of the full `N` entries needs.
    pub const LAYOUT: Layout = Layout::new(N);

    /// Makes an empty queue of `size` entries in `mem`, zeroing it.
    /// `event_idx`: whether `VIRTIO_F_RING_EVENT_IDX` was negotiated.
    ///
    /// `None` if `size` is not a power of two, is more than `N`, or the
    /// layout does not fit `mem`, or `mem` is not 16-byte aligned.
    pub fn new(mem: DmaRegion, size: u16, event_idx: bool) -> Option<Self> {
        const { assert!(N.is_power_of_two() && N <= 32768, "queue size must be a power of two, at most 32768") };
        let layout = Layout::new(usize::from(size));
        if !size.is_power_of_two() || usize::from(size) > N || layout.size > mem.len() || !mem.is_aligned(16) {
            return None;
        }
        // The device does not use the memory before the queue is enabled.
        mem.zero();
        let mut link = [0; N];
        for (i, l) in link.iter_mut().enumerate().take(usize::from(size)) {
            *l = (i + 1) as u16; // size - 1 links to size: the end of the list
        }
        Some(SplitQueue {
            mem,
            size,
            layout,
            event_idx,
            free_head: 0,
            num_free: size,
            link,
            tokens: [None; N],
            in_flight: 0,
            avail_idx: 0,
            published_idx: 0,
            notified_idx: 0,
            last_used: 0,
            errors: UsedErrors::default(),
        })
    }

    /// Entries of the queue (what the transport is told).
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Where the areas lie in the queue's memory.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Physical addresses of the descriptor table, driver area and device
    /// area, for [`Transport::setup_queue`](crate::transport::Transport::setup_queue).
    pub fn areas(&self) -> Areas {
        Areas {
            desc: self.mem.paddr(0),
            driver: self.mem.paddr(self.layout.avail),
            device: self.mem.paddr(self.layout.used),
        }
    }

    /// Descriptors not in use.
    pub fn num_free(&self) -> usize {
        usize::from(self.num_free)
    }

    /// Chains in flight (pushed and not yet popped).
    pub fn in_flight(&self) -> usize {
        usize::from(self.in_flight)
    }

    /// Used elements refused so far.
    pub fn used_errors(&self) -> UsedErrors {
        self.errors
    }

    fn u16_at(&self, offset: usize) -> &AtomicU16 {
        self.mem.at(offset)
    }

    fn write_desc(&self, index: u16, seg: &Segment, next: Option<u16>) {
        let flags = if seg.device_writes { DESC_F_WRITE } else { 0 } | if next.is_some() { DESC_F_NEXT } else { 0 };
        let at = 16 * usize::from(index);
        self.mem.at::<AtomicU64>(at).store(seg.paddr, Ordering::Relaxed);
        self.mem.at::<AtomicU32>(at + 8).store(seg.len, Ordering::Relaxed);
        self.mem.at::<AtomicU16>(at + 12).store(flags, Ordering::Relaxed);
        self.mem.at::<AtomicU16>(at + 14).store(next.unwrap_or(0), Ordering::Relaxed);
    }

    /// Adds a chain of `segments` (device-readable ones first) carrying
    /// `token` to the available ring, unpublished; returns its head
    /// descriptor, or `None` if `segments` is empty or there are not enough
    /// free descriptors (nothing is changed then).
    ///
    /// Publish a batch with [`publish`](Self::publish).
    pub fn push(&mut self, segments: &[Segment], token: T) -> Option<u16> {
        let n = segments.len();
        if n == 0 || n > self.num_free() {
            return None;
        }
        debug_assert!(
            segments.windows(2).all(|w| !w[0].device_writes || w[1].device_writes),
            "device-writable segments come last (2.7.4.2)"
        );
        let head = self.free_head;
        let mut index = head;
        for (i, seg) in segments.iter().enumerate() {
            let next = self.link[usize::from(index)];
            let last = i + 1 == n;
            self.write_desc(index, seg, (!last).then_some(next));
            if last {
                self.free_head = next;
                self.link[usize::from(index)] = CHAIN_END;
            } else {
                index = next;
            }
        }
        let h = usize::from(head);
        self.num_free -= n as u16;
        self.tokens[h] = Some(token);
        self.in_flight += 1;
        let slot = self.layout.avail + 4 + 2 * usize::from(self.avail_idx & (self.size - 1));
        self.u16_at(slot).store(head, Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Some(head)
    }

    /// Makes the chains pushed since the last call visible to the device:
    /// one store of `avail.idx`, after a barrier (§2.7.13.3). Returns whether
    /// there was anything to publish.
    pub fn publish(&mut self) -> bool {
        if self.avail_idx == self.published_idx {
            return false;
        }
        // Release: the descriptors and ring slots are written before the
        // device can see the index that covers them.
        self.u16_at(self.layout.avail + 2).store(self.avail_idx, Ordering::Release);
        self.published_idx = self.avail_idx;
        true
    }

    /// Whether the device wants a notification for what has been published
    /// since the last one (§2.7.13.4): with event index, if `avail_event`
    /// was crossed; otherwise unless `VIRTQ_USED_F_NO_NOTIFY` is set. Call
    /// after [`publish`](Self::publish), once per batch.
    pub fn needs_notify(&mut self) -> bool {
        if self.published_idx == self.notified_idx {
            return false;
        }
        // The device may be deciding to sleep after reading the old index:
        // the index store must be globally visible before reading its wish.
        fence(Ordering::SeqCst);
        let old = self.notified_idx;
        self.notified_idx = self.published_idx;
        if self.event_idx {
            let avail_event = self.u16_at(self.layout.used + 4 + 8 * usize::from(self.size)).load(Ordering::Relaxed);
            need_event(avail_event, self.published_idx, old)
        } else {
            self.u16_at(self.layout.used).load(Ordering::Relaxed) & USED_F_NO_NOTIFY == 0
        }
    }

    /// [`publish`](Self::publish), then [`needs_notify`](Self::needs_notify):
    /// whether to notify the device now.
    pub fn publish_and_check(&mut self) -> bool {
        self.publish() && self.needs_notify()
    }

    /// Whether the used ring holds entries not yet popped.
    pub fn has_used(&self) -> bool {
        self.u16_at(self.layout.used + 2).load(Ordering::Acquire) != self.last_used
    }

    /// Takes the next chain the device has finished with, frees its
    /// descriptors and returns its token. `None` when there is none.
    /// Elements naming nothing in flight are skipped (and counted).
    pub fn pop_used(&mut self) -> Option<Used<T>> {
        loop {
            // Acquire: the entry (and the data the device wrote) is read
            // after the index that covers it.
            let used_idx = self.u16_at(self.layout.used + 2).load(Ordering::Acquire);
            let pending = used_idx.wrapping_sub(self.last_used);
            if pending == 0 {
                return None;
            }
            if pending > self.size {
                // Not an index the device can have reached: skip to it.
                self.errors.index_jumps += 1;
                self.last_used = used_idx;
                return None;
            }
            let entry = self.layout.used + 4 + 8 * usize::from(self.last_used & (self.size - 1));
            let id = self.mem.at::<AtomicU32>(entry).load(Ordering::Relaxed);
            let len = self.mem.at::<AtomicU32>(entry + 4).load(Ordering::Relaxed);
            self.last_used = self.last_used.wrapping_add(1);
            let in_flight = |h: &usize| *h < usize::from(self.size) && self.tokens[*h].is_some();
            let Some(head) = usize::try_from(id).ok().filter(in_flight) else {
                self.errors.unknown_ids += 1;
                continue;
            };
            let token = self.tokens[head].take()?;
            self.free_chain(head as u16);
            return Some(Used { token, len });
        }
    }

    fn free_chain(&mut self, head: u16) {
        let mut last = head;
        let mut n = 1;
        while self.link[usize::from(last)] != CHAIN_END {
            last = self.link[usize::from(last)];
            n += 1;
        }
        // The chain's private links are still in order: splice it in whole.
        self.link[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.num_free += n;
        self.in_flight -= 1;
    }

    /// Asks for an interrupt at the next used entry (§2.7.10: `used_event`
    /// = the next index to be used; without event index, clears
    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`). Returns whether used entries arrived
    /// meanwhile: then the caller must pop them rather than wait, as the
    /// device may have looked at the old wish.
    pub fn enable_interrupts(&mut self) -> bool {
        if self.event_idx {
            self.u16_at(self.layout.avail + 4 + 2 * usize::from(self.size)).store(self.last_used, Ordering::Relaxed);
        } else {
            self.u16_at(self.layout.avail).store(0, Ordering::Relaxed);
        }
        // The wish must be visible before the used index is read again.
        fence(Ordering::SeqCst);
        self.has_used()
    }

    /// Asks for no interrupts, as far as the device honours it (§2.7.7.1:
    /// only a hint). With event index there is nothing to write: the device
    /// interrupts once when it passes `used_event`, and not again until the
    /// driver moves it.
    pub fn disable_interrupts(&mut self) {
        if !self.event_idx {
            self.u16_at(self.layout.avail).store(AVAIL_F_NO_INTERRUPT, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const N: usize = 8;
    /// The "physical" address of the queue memory.
    const PADDR: u64 = 0x4000_0000;

    /// Queue memory on the host, 16-byte aligned.
    struct Mem(Vec<u128>);

    impl Mem {
        fn new() -> Self {
            Mem(vec![0; Layout::new(N).size.div_ceil(16)])
        }
        fn region(&mut self) -> DmaRegion {
            // SAFETY: the vector outlives the queue in every test; the
            // simulated device touches it only between queue calls.
            unsafe { DmaRegion::new(self.0.as_mut_ptr() as usize, PADDR, self.0.len() * 16) }
        }
        fn queue<T: Copy>(&mut self, size: u16, event_idx: bool) -> (SplitQueue<T, N>, Device) {
            let q = SplitQueue::new(self.region(), size, event_idx).unwrap();
            let dev = Device {
                base: self.0.as_mut_ptr().cast(),
                size: usize::from(size),
                layout: Layout::new(usize::from(size)),
                last_avail: 0,
                used_idx: 0,
            };
            (q, dev)
        }
    }

    /// A simulated device reading and writing the rings.
    struct Device {
        base: *mut u8,
        size: usize,
        layout: Layout,
        last_avail: u16,
        used_idx: u16,
    }

    impl Device {
        fn r16(&self, off: usize) -> u16 {
            // SAFETY: offsets within the test's queue memory.
            unsafe { self.base.add(off).cast::<u16>().read_volatile() }
        }
        fn w16(&self, off: usize, v: u16) {
            // SAFETY: as above.
            unsafe { self.base.add(off).cast::<u16>().write_volatile(v) }
        }
        fn w32(&self, off: usize, v: u32) {
            // SAFETY: as above.
            unsafe { self.base.add(off).cast::<u32>().write_volatile(v) }
        }
        fn desc(&self, i: u16) -> (u64, u32, u16, u16) {
            // SAFETY: as above; descriptor `i` < size.
            unsafe {
                let d = self.base.add(16 * usize::from(i));
                (
                    d.cast::<u64>().read_volatile(),
                    d.add(8).cast::<u32>().read_volatile(),
                    d.add(12).cast::<u16>().read_volatile(),
                    d.add(14).cast::<u16>().read_volatile(),
                )
            }
        }
        /// Takes the next available chain: (head, segments).
        fn take(&mut self) -> Option<(u16, Vec<Segment>)> {
            if self.r16(self.layout.avail + 2) == self.last_avail {
                return None;
            }
            let head = self.r16(self.layout.avail + 4 + 2 * (usize::from(self.last_avail) % self.size));
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut segs = Vec::new();
            let mut i = head;
            loop {
                let (addr, len, flags, next) = self.desc(i);
                segs.push(Segment { paddr: addr, len, device_writes: flags & DESC_F_WRITE != 0 });
                if flags & DESC_F_NEXT == 0 {
                    break;
                }
                assert!(segs.len() <= self.size, "chain loops");
                i = next;
            }
            Some((head, segs))
        }
        fn complete(&mut self, id: u32, len: u32) {
            let e = self.layout.used + 4 + 8 * (usize::from(self.used_idx) % self.size);
            self.w32(e, id);
            self.w32(e + 4, len);
            self.used_idx = self.used_idx.wrapping_add(1);
            self.w16(self.layout.used + 2, self.used_idx);
        }
        fn used_event(&self) -> u16 {
            self.r16(self.layout.avail + 4 + 2 * self.size)
        }
        fn set_avail_event(&self, v: u16) {
            self.w16(self.layout.used + 4 + 8 * self.size, v)
        }
    }

    fn seg(paddr: u64, len: u32, device_writes: bool) -> Segment {
        Segment { paddr, len, device_writes }
    }

    #[test]
    fn layout_matches_the_spec_alignments() {
        let l = Layout::new(256);
        assert_eq!(l.avail, 4096);
        assert_eq!(l.used % 4, 0);
        assert!(l.used >= l.avail + 6 + 512);
        assert_eq!(l.size, l.used + 6 + 8 * 256);
    }

    #[test]
    fn queue_memory_and_size_are_checked() {
        let mut mem = Mem::new();
        let small = mem.region().split_at(64).unwrap().0;
        assert!(SplitQueue::<(), N>::new(small, 8, false).is_none(), "too small a region");
        assert!(SplitQueue::<(), N>::new(mem.region(), 6, false).is_none(), "not a power of two");
        assert!(SplitQueue::<(), N>::new(mem.region(), 16, false).is_none(), "more than N");
        let misaligned = mem.region().split_at(8).unwrap().1;
        assert!(SplitQueue::<(), N>::new(misaligned, 4, false).is_none(), "not 16-byte aligned");
        let q = SplitQueue::<(), N>::new(mem.region(), 4, false).unwrap();
        let l = Layout::new(4);
        assert_eq!(q.areas(), Areas { desc: PADDR, driver: PADDR + l.avail as u64, device: PADDR + l.used as u64 });
    }

    #[test]
    fn chains_go_out_in_order_and_are_published_once() {
        let mut mem = Mem::new();
        let (mut q, mut dev) = mem.queue::<char>(8, false);
        q.push(&[seg(0x1000, 12, false), seg(0x2000, 100, false)], 'a').unwrap();
        let b = q.push(&[Segment::writable(0x3000, 12), Segment::writable(0x4000, 2048)], 'b').unwrap();
        assert_eq!((q.num_free(), q.in_flight()), (N - 4, 2));
        assert!(dev.take().is_none(), "nothing visible before publish");
        assert!(q.publish());
        assert!(!q.publish(), "nothing new");
        let (ha, segs) = dev.take().unwrap();
        assert_eq!(segs, vec![Segment::readable(0x1000, 12), Segment::readable(0x2000, 100)]);
        let (hb, segs) = dev.take().unwrap();
        assert_eq!(hb, b);
        assert_eq!(segs, vec![seg(0x3000, 12, true), seg(0x4000, 2048, true)]);
        dev.complete(u32::from(hb), 80);
        dev.complete(u32::from(ha), 0);
        assert_eq!(q.pop_used(), Some(Used { token: 'b', len: 80 }));
        assert_eq!(q.pop_used(), Some(Used { token: 'a', len: 0 }));
        assert_eq!(q.pop_used(), None);
        assert_eq!((q.num_free(), q.in_flight()), (N, 0));
        assert_eq!(q.used_errors(), UsedErrors::default());
    }

    #[test]
    fn chains_of_every_length_up_to_the_queue_size() {
        let mut mem = Mem::new();
        let (mut q, mut dev) = mem.queue::<usize>(8, true);
        for n in 1..=N {
            let segs: Vec<_> = (0..n).map(|i| seg(0x1000 * i as u64, i as u32 + 1, i + 1 == n)).collect();
            q.push(&segs, n).unwrap();
            assert!(q.push(&[seg(0, 1, false); N][..N - n + 1], 0).is_none(), "one descriptor too many");
            q.publish();
            let (h, got) = dev.take().unwrap();
            assert_eq!(got, segs);
            dev.complete(u32::from(h), n as u32);
            assert_eq!(q.pop_used(), Some(Used { token: n, len: n as u32 }));
            assert_eq!(q.num_free(), N);
        }
        assert!(q.push(&[], 0).is_none(), "empty chains are refused");
    }

    #[test]
    fn a_full_queue_refuses_without_change_and_recycles_across_wraps() {
        let mut mem = Mem::new();
        let (mut q, mut dev) = mem.queue::<u64>(8, true);
        for round in 0..100u64 {
            let mut heads = Vec::new();
            while let Some(h) = q.push(&[seg(round, 1, false), seg(round, 2, false), seg(round, 3, true)], round) {
                heads.push(h);
            }
            assert_eq!(heads.len(), N / 3);
            assert_eq!(q.num_free(), N % 3);
            q.publish();
            // Complete in reverse order: the free list must cope with any order.
            let mut taken = Vec::new();
            while let Some((h, segs)) = dev.take() {
                assert_eq!(segs.len(), 3);
                assert!(segs.iter().all(|s| s.paddr == round));
                taken.push(h);
            }
            assert_eq!(taken, heads);
            for &h in taken.iter().rev() {
                dev.complete(u32::from(h), 3);
            }
            while let Some(u) = q.pop_used() {
                assert_eq!((u.token, u.len), (round, 3));
            }
            assert_eq!(q.num_free(), N);
        }
    }

    #[test]
    fn a_smaller_device_queue_uses_its_own_size() {
        let mut mem = Mem::new();
        let (mut q, mut dev) = mem.queue::<u32>(4, false);
        for round in 0..10u32 {
            for i in 0..4 {
                q.push(&[seg(0, 1, true)], round * 4 + i).unwrap();
            }
            assert!(q.push(&[seg(0, 1, true)], 0).is_none());
            q.publish();
            while let Some((h, _)) = dev.take() {
                dev.complete(u32::from(h), 1);
            }
            let tokens: Vec<_> = core::iter::from_fn(|| q.pop_used()).map(|u| u.token).collect();
            assert_eq!(tokens, (round * 4..round * 4 + 4).collect::<Vec<_>>());
        }
    }

    #[test]
    fn used_elements_naming_nothing_in_flight_are_counted_and_skipped() {
        let mut mem = Mem::new();
        let (mut q, mut dev) = mem.queue::<&str>(8, false);
        let h = q.push(&[seg(1, 1, false), seg(2, 1, false)], "x").unwrap();
        q.publish();
        dev.take();
        dev.complete(u32::from(h) + 1, 0); // inside the chain, not its head
        dev.complete(99, 0); // beyond the queue
        dev.complete(u32::from(h), 0);
        dev.complete(u32::from(h), 0); // already returned
        assert_eq!(q.pop_used(), Some(Used { token: "x", len: 0 }));
        assert_eq!(q.pop_used(), None);
        assert_eq!(q.used_errors(), UsedErrors { unknown_ids: 3, ..UsedErrors::default() });
        assert_eq!(q.num_free(), N);
        // An index jump skips everything up to it.
        q.push(&[seg(1, 1, false)], "y").unwrap();
        q.publish();
        dev.w16(dev.layout.used + 2, dev.used_idx.wrapping_add(100));
        assert_eq!(q.pop_used(), None);
        assert_eq!(q.used_errors().index_jumps, 1);
        assert_eq!(q.used_errors().skipped(), 4);
    }

    #[test]
    fn event_index_rules() {
        assert!(need_event(0, 1, 0));
        assert!(!need_event(1, 1, 0), "the device asked to hear when passing 1, not reaching it");
        assert!(need_event(1, 2, 0));
        assert!(need_event(0xffff, 0, 0xfffe), "wraps");
        let mut mem = Mem::new();
        let (mut q, mut dev) = mem.queue::<()>(8, true);
        // The device wants a notification once avail passes index 0.
        dev.set_avail_event(0);
        q.push(&[seg(1, 1, false)], ());
        assert!(q.publish_and_check());
        assert!(!q.needs_notify(), "nothing published since");
        // The device is busy and asks to hear only after index 3.
        dev.set_avail_event(3);
        q.push(&[seg(2, 1, false)], ());
        assert!(!q.publish_and_check(), "avail 1 -> 2 does not pass 3");
        q.push(&[seg(3, 1, false)], ());
        q.push(&[seg(4, 1, false)], ());
        q.publish();
        assert!(q.needs_notify(), "avail 2 -> 4 passes 3");
        // Interrupt wish: used_event follows what the driver has consumed.
        for _ in 0..4 {
            let (h, _) = dev.take().unwrap();
            dev.complete(u32::from(h), 0);
        }
        assert!(q.enable_interrupts(), "entries are waiting: do not sleep");
        assert_eq!(dev.used_event(), 0);
        while q.pop_used().is_some() {}
        assert!(!q.enable_interrupts());
        assert_eq!(dev.used_event(), 4);
    }

    #[test]
    fn flag_suppression_without_event_index() {
        let mut mem = Mem::new();
        let (mut q, dev) = mem.queue::<()>(8, false);
        q.push(&[seg(1, 1, false)], ());
        q.publish();
        assert!(q.needs_notify());
        dev.w16(dev.layout.used, USED_F_NO_NOTIFY);
        q.push(&[seg(1, 1, false)], ());
        q.publish();
        assert!(!q.needs_notify());
        q.disable_interrupts();
        assert_eq!(dev.r16(dev.layout.avail), AVAIL_F_NO_INTERRUPT);
        q.enable_interrupts();
        assert_eq!(dev.r16(dev.layout.avail), 0);
    }
}
