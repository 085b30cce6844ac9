//! A split virtqueue (virtio 1.x spec, 2.7): the driver's side.
//!
//! Three areas in memory the device reaches by DMA, laid out by
//! [`Layout`]:
//!
//! - the **descriptor table**, `N` × 16 bytes (`addr`, `len`, `flags`,
//!   `next`), written only by the driver;
//! - the **available ring** (driver area): `flags`, `idx`, `ring[N]`,
//!   `used_event`, written only by the driver;
//! - the **used ring** (device area): `flags`, `idx`, `ring[N]` of `{id,
//!   len}`, `avail_event`, written only by the device.
//!
//! A buffer is a chain of descriptors linked by `next` (flag `NEXT`);
//! device-writable ones (flag `WRITE`) follow the device-readable ones
//! (2.7.4.2). The driver puts a chain's head in the available ring and
//! publishes it by storing `avail.idx` (after a write barrier, 2.7.13.3);
//! the device returns it in the used ring with the number of bytes it wrote.
//!
//! The driver keeps its own shadow of everything it needs (free list, chain
//! lengths, indices) and never reads back what it wrote for the device,
//! nor trusts what the device wrote beyond bounds checks.
//!
//! # Suppression (2.7.7, 2.7.10)
//!
//! With `VIRTIO_F_EVENT_IDX` the driver writes `used_event`: "interrupt me
//! when the used index passes this", and reads `avail_event`: "notify me
//! when the available index passes this". Without it, the one-bit flags
//! `VIRTQ_AVAIL_F_NO_INTERRUPT` and `VIRTQ_USED_F_NO_NOTIFY` are used. Both
//! need a full barrier between publishing and reading the peer's wish, as
//! either side may be about to go to sleep.

use core::sync::atomic::{fence, AtomicU16, Ordering};

/// `VIRTQ_DESC_F_NEXT`: the chain continues at `next`.
const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the device writes this buffer (else reads it).
const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver needs no interrupt.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device needs no notification.
const USED_F_NO_NOTIFY: u16 = 1;

/// Where the three areas of a queue of `N` entries lie in its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub avail: usize,
    pub used: usize,
    /// Bytes of the whole queue memory.
    pub size: usize,
}

impl Layout {
    /// Areas packed with the alignments of 2.7: descriptor table at 0
    /// (16-byte aligned), available ring right after it (2), used ring on the
    /// next 4-byte boundary.
    pub const fn new(n: usize) -> Layout {
        let avail = 16 * n;
        let used = (avail + 6 + 2 * n + 3) & !3;
        Layout { avail, used, size: used + 6 + 8 * n }
    }
}

/// One element of a chain, as the device sees it: a physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub len: u32,
    /// The device writes this buffer (receive) rather than reads it.
    pub device_writes: bool,
}

/// A chain the device has finished with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    /// Head descriptor, as returned by [`SplitQueue::push_chain`].
    pub head: u16,
    /// Bytes the device wrote into the chain's writable part.
    pub len: u32,
}

/// Why [`SplitQueue::pop_used`] refused a used-ring entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsedError {
    /// The device returned an id that is not the head of a chain in flight.
    BadId(u32),
}

/// The `vring_need_event` rule (2.7.10): whether moving an index from `old`
/// to `new` crosses `event`, the index the other side asked to hear about.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// The driver's side of a split virtqueue of `N` entries.
///
/// Fixed capacity; nothing allocated. `N` is a power of two of at most
/// 32768 (2.7: "Queue Size ... a power of 2").
pub struct SplitQueue<const N: usize> {
    base: *mut u8,
    paddr: u64,
    layout: Layout,
    event_idx: bool,
    /// Head of the private free-descriptor list; `N` when empty.
    free_head: u16,
    num_free: u16,
    /// Private links: free list for free descriptors, chain order for
    /// descriptors in flight.
    link: [u16; N],
    /// Descriptors in the chain headed here; 0 if no chain is in flight here.
    chain_len: [u16; N],
    /// Available index as written (published or not yet).
    avail_idx: u16,
    /// Available index as last published to the device.
    published_idx: u16,
    /// Available index at the last notification (event-index rule).
    notified_idx: u16,
    /// Next used-ring entry to look at.
    last_used: u16,
}

impl<const N: usize> SplitQueue<N> {
    /// Bytes of memory the queue needs.
    pub const LAYOUT: Layout = Layout::new(N);

    /// Makes an empty queue in `LAYOUT.size` bytes of memory at `base`, whose
    /// physical address is `paddr`, and zeroes it. `event_idx`: whether
    /// `VIRTIO_F_EVENT_IDX` was negotiated.
    ///
    /// # Safety
    ///
    /// `base` must be 16-byte aligned and valid for reads and writes of
    /// `LAYOUT.size` bytes for the queue's life, reachable by the device at
    /// `paddr` (DMA-coherent), and used by nothing else but the device.
    pub unsafe fn new(base: *mut u8, paddr: u64, event_idx: bool) -> Self {
        const { assert!(N.is_power_of_two() && N <= 32768, "queue size must be a power of two, at most 32768") };
        debug_assert!((base as usize).is_multiple_of(16) && paddr.is_multiple_of(16));
        // SAFETY: valid for LAYOUT.size bytes (caller's contract); the device
        // does not use the memory before the queue is enabled.
        unsafe { core::ptr::write_bytes(base, 0, Self::LAYOUT.size) };
        let mut link = [0; N];
        for (i, l) in link.iter_mut().enumerate() {
            *l = (i + 1) as u16; // N - 1 links to N: the end of the list
        }
        SplitQueue {
            base,
            paddr,
            layout: Self::LAYOUT,
            event_idx,
            free_head: 0,
            num_free: N as u16,
            link,
            chain_len: [0; N],
            avail_idx: 0,
            published_idx: 0,
            notified_idx: 0,
            last_used: 0,
        }
    }

    /// Physical addresses of the descriptor table, driver area and device
    /// area, for the transport's queue registers.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.paddr, self.paddr + self.layout.avail as u64, self.paddr + self.layout.used as u64)
    }

    /// Descriptors not in use.
    pub fn num_free(&self) -> usize {
        usize::from(self.num_free)
    }

    fn u16_at(&self, offset: usize) -> &AtomicU16 {
        debug_assert!(offset + 2 <= self.layout.size && offset.is_multiple_of(2));
        // SAFETY: in bounds and 2-byte aligned in memory valid for the
        // queue's life (constructor contract). AtomicU16 has u16's layout,
        // and the device's concurrent accesses through DMA are what atomics
        // are for.
        unsafe { &*self.base.add(offset).cast::<AtomicU16>() }
    }

    fn write_desc(&mut self, index: u16, seg: Segment, next: Option<u16>) {
        let flags = if seg.device_writes { DESC_F_WRITE } else { 0 } | if next.is_some() { DESC_F_NEXT } else { 0 };
        let p = usize::from(index) * 16;
        // SAFETY: index < N, so the 16 bytes at `p` are one descriptor in the
        // table; the device only reads the table, and only entries it was
        // given, which this one is not yet.
        unsafe {
            let d = self.base.add(p);
            d.cast::<u64>().write_volatile(seg.paddr);
            d.add(8).cast::<u32>().write_volatile(seg.len);
            d.add(12).cast::<u16>().write_volatile(flags);
            d.add(14).cast::<u16>().write_volatile(next.unwrap_or(0));
        }
    }

    /// Adds a chain of `segments` (device-readable ones first) to the
    /// available ring, unpublished; returns its head, or `None` if there are
    /// not enough free descriptors (nothing is changed then).
    ///
    /// Publish a batch with [`publish`](Self::publish).
    pub fn push_chain(&mut self, segments: &[Segment]) -> Option<u16> {
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
            self.write_desc(index, *seg, (i + 1 < n).then_some(next));
            if i + 1 < n {
                index = next;
            } else {
                self.free_head = next;
            }
        }
        self.num_free -= n as u16;
        self.chain_len[usize::from(head)] = n as u16;
        let slot = self.layout.avail + 4 + 2 * (usize::from(self.avail_idx) % N);
        self.u16_at(slot).store(head, Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Some(head)
    }

    /// Makes the chains pushed since the last call visible to the device:
    /// one store of `avail.idx`, after a barrier (2.7.13.3). Returns whether
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
    /// since the last one (2.7.13.4): with event index, if `avail_event` was
    /// crossed; otherwise unless `VIRTQ_USED_F_NO_NOTIFY` is set. Call after
    /// [`publish`](Self::publish), once per batch.
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
            let avail_event = self.u16_at(self.layout.used + 4 + 8 * N).load(Ordering::Relaxed);
            need_event(avail_event, self.published_idx, old)
        } else {
            self.u16_at(self.layout.used).load(Ordering::Relaxed) & USED_F_NO_NOTIFY == 0
        }
    }

    /// Whether the used ring holds entries not yet popped.
    pub fn has_used(&self) -> bool {
        self.u16_at(self.layout.used + 2).load(Ordering::Acquire) != self.last_used
    }

    /// Takes the next chain the device has finished with, and frees its
    /// descriptors. `Ok(None)` when there is none.
    pub fn pop_used(&mut self) -> Result<Option<Used>, UsedError> {
        // Acquire: the entry (and the data the device wrote) is read after
        // the index that covers it.
        let used_idx = self.u16_at(self.layout.used + 2).load(Ordering::Acquire);
        if used_idx == self.last_used {
            return Ok(None);
        }
        let entry = self.layout.used + 4 + 8 * (usize::from(self.last_used) % N);
        // SAFETY: the 8-byte entry lies within the used ring (in bounds,
        // 4-byte aligned); the device wrote it before publishing `used_idx`.
        let (id, len) = unsafe {
            let p = self.base.add(entry);
            (p.cast::<u32>().read_volatile(), p.add(4).cast::<u32>().read_volatile())
        };
        self.last_used = self.last_used.wrapping_add(1);
        let Some(head) = u16::try_from(id).ok().filter(|&h| usize::from(h) < N && self.chain_len[usize::from(h)] != 0)
        else {
            return Err(UsedError::BadId(id));
        };
        self.free_chain(head);
        Ok(Some(Used { head, len }))
    }

    fn free_chain(&mut self, head: u16) {
        let n = core::mem::take(&mut self.chain_len[usize::from(head)]);
        let mut last = head;
        for _ in 1..n {
            last = self.link[usize::from(last)];
        }
        // The chain's private links are still in order: splice it in whole.
        self.link[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.num_free += n;
    }

    /// Asks for an interrupt at the next used entry (2.7.10: `used_event`
    /// = the next index to be used; without event index, clears
    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`). Returns whether used entries arrived
    /// meanwhile: then the caller must pop them rather than wait, as the
    /// device may have looked at the old wish.
    pub fn enable_interrupts(&mut self) -> bool {
        if self.event_idx {
            self.u16_at(self.layout.avail + 4 + 2 * N).store(self.last_used, Ordering::Relaxed);
        } else {
            self.u16_at(self.layout.avail).store(0, Ordering::Relaxed);
        }
        // The wish must be visible before the used index is read again.
        fence(Ordering::SeqCst);
        self.has_used()
    }

    /// Asks for no interrupts, as far as the device honours it (2.7.7.1:
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

    const N: usize = 8;

    /// Queue memory on the host, 16-byte aligned, with "physical" address =
    /// virtual address.
    struct Mem(Vec<u128>);

    impl Mem {
        fn new() -> Self {
            Mem(vec![0; SplitQueue::<N>::LAYOUT.size.div_ceil(16)])
        }
        fn queue(&mut self, event_idx: bool) -> SplitQueue<N> {
            let p = self.0.as_mut_ptr().cast::<u8>();
            // SAFETY: the vector outlives the queue in every test and is big enough.
            unsafe { SplitQueue::new(p, p as u64, event_idx) }
        }
    }

    /// A simulated device reading and writing the rings.
    struct Device {
        base: *mut u8,
        layout: Layout,
        last_avail: u16,
        used_idx: u16,
    }

    impl Device {
        fn new(q: &SplitQueue<N>) -> Self {
            Device { base: q.base, layout: q.layout, last_avail: 0, used_idx: 0 }
        }
        fn r16(&self, off: usize) -> u16 {
            unsafe { self.base.add(off).cast::<u16>().read_volatile() }
        }
        fn w16(&self, off: usize, v: u16) {
            unsafe { self.base.add(off).cast::<u16>().write_volatile(v) }
        }
        fn desc(&self, i: u16) -> (u64, u32, u16, u16) {
            let d = unsafe { self.base.add(16 * usize::from(i)) };
            unsafe {
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
            let head = self.r16(self.layout.avail + 4 + 2 * (usize::from(self.last_avail) % N));
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut segs = Vec::new();
            let mut i = head;
            loop {
                let (addr, len, flags, next) = self.desc(i);
                segs.push(Segment { paddr: addr, len, device_writes: flags & DESC_F_WRITE != 0 });
                if flags & DESC_F_NEXT == 0 {
                    break;
                }
                i = next;
            }
            Some((head, segs))
        }
        fn complete(&mut self, head: u16, len: u32) {
            let e = self.layout.used + 4 + 8 * (usize::from(self.used_idx) % N);
            unsafe {
                self.base.add(e).cast::<u32>().write_volatile(u32::from(head));
                self.base.add(e + 4).cast::<u32>().write_volatile(len);
            }
            self.used_idx = self.used_idx.wrapping_add(1);
            self.w16(self.layout.used + 2, self.used_idx);
        }
        fn used_event(&self) -> u16 {
            self.r16(self.layout.avail + 4 + 2 * N)
        }
        fn set_avail_event(&self, v: u16) {
            self.w16(self.layout.used + 4 + 8 * N, v)
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
    fn chains_go_out_in_order_and_are_published_once() {
        let mut mem = Mem::new();
        let mut q = mem.queue(false);
        let mut dev = Device::new(&q);
        let a = q.push_chain(&[seg(0x1000, 12, false), seg(0x2000, 100, false)]).unwrap();
        let b = q.push_chain(&[seg(0x3000, 12, true), seg(0x4000, 2048, true)]).unwrap();
        assert_eq!(q.num_free(), N - 4);
        assert!(dev.take().is_none(), "nothing visible before publish");
        assert!(q.publish());
        assert!(!q.publish(), "nothing new");
        let (h, segs) = dev.take().unwrap();
        assert_eq!(h, a);
        assert_eq!(segs, vec![seg(0x1000, 12, false), seg(0x2000, 100, false)]);
        let (h, segs) = dev.take().unwrap();
        assert_eq!(h, b);
        assert_eq!(segs, vec![seg(0x3000, 12, true), seg(0x4000, 2048, true)]);
        dev.complete(b, 80);
        dev.complete(a, 0);
        assert_eq!(q.pop_used(), Ok(Some(Used { head: b, len: 80 })));
        assert_eq!(q.pop_used(), Ok(Some(Used { head: a, len: 0 })));
        assert_eq!(q.pop_used(), Ok(None));
        assert_eq!(q.num_free(), N);
    }

    #[test]
    fn a_full_queue_refuses_without_change_and_recycles_across_wraps() {
        let mut mem = Mem::new();
        let mut q = mem.queue(true);
        let mut dev = Device::new(&q);
        for round in 0..100u64 {
            let mut heads = Vec::new();
            while let Some(h) = q.push_chain(&[seg(round, 1, false), seg(round, 2, false), seg(round, 3, true)]) {
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
                dev.complete(h, 3);
            }
            while let Some(u) = q.pop_used().unwrap() {
                assert_eq!(u.len, 3);
            }
            assert_eq!(q.num_free(), N);
        }
    }

    #[test]
    fn a_bogus_used_id_is_refused() {
        let mut mem = Mem::new();
        let mut q = mem.queue(false);
        let mut dev = Device::new(&q);
        let h = q.push_chain(&[seg(1, 1, false)]).unwrap();
        q.publish();
        dev.take();
        dev.complete(h + 1, 0); // never handed out
        assert_eq!(q.pop_used(), Err(UsedError::BadId(u32::from(h) + 1)));
        dev.complete(h, 0);
        assert_eq!(q.pop_used(), Ok(Some(Used { head: h, len: 0 })));
        dev.complete(h, 0); // already returned
        assert!(q.pop_used().is_err());
        assert_eq!(q.num_free(), N);
    }

    #[test]
    fn event_index_rules() {
        assert!(need_event(0, 1, 0));
        assert!(!need_event(1, 1, 0), "the device asked to hear when passing 1, not reaching it");
        assert!(need_event(1, 2, 0));
        assert!(need_event(0xffff, 0, 0xfffe), "wraps");
        let mut mem = Mem::new();
        let mut q = mem.queue(true);
        let mut dev = Device::new(&q);
        // The device wants a notification once avail passes index 0.
        dev.set_avail_event(0);
        q.push_chain(&[seg(1, 1, false)]);
        q.publish();
        assert!(q.needs_notify());
        assert!(!q.needs_notify(), "nothing published since");
        // The device is busy and asks to hear only after index 3.
        dev.set_avail_event(3);
        q.push_chain(&[seg(2, 1, false)]);
        q.publish();
        assert!(!q.needs_notify(), "avail 1 -> 2 does not pass 3");
        q.push_chain(&[seg(3, 1, false)]);
        q.push_chain(&[seg(4, 1, false)]);
        q.publish();
        assert!(q.needs_notify(), "avail 2 -> 4 passes 3");
        // Interrupt wish: used_event follows what the driver has consumed.
        for _ in 0..4 {
            let (h, _) = dev.take().unwrap();
            dev.complete(h, 0);
        }
        assert!(q.enable_interrupts(), "entries are waiting: do not sleep");
        assert_eq!(dev.used_event(), 0);
        while q.pop_used().unwrap().is_some() {}
        assert!(!q.enable_interrupts());
        assert_eq!(dev.used_event(), 4);
    }

    #[test]
    fn flag_suppression_without_event_index() {
        let mut mem = Mem::new();
        let mut q = mem.queue(false);
        let dev = Device::new(&q);
        q.push_chain(&[seg(1, 1, false)]);
        q.publish();
        assert!(q.needs_notify());
        dev.w16(dev.layout.used, USED_F_NO_NOTIFY);
        q.push_chain(&[seg(1, 1, false)]);
        q.publish();
        assert!(!q.needs_notify());
        q.disable_interrupts();
        assert_eq!(dev.r16(dev.layout.avail), AVAIL_F_NO_INTERRUPT);
        q.enable_interrupts();
        assert_eq!(dev.r16(dev.layout.avail), 0);
    }
}
