//! A simulated device's side of virtio, for drivers' host tests (feature
//! `sim`; always built for this crate's own tests).
//!
//! - [`SimMemory`]: host memory standing in for physical memory, as regions
//!   at fake physical addresses, which the device side reads and writes by
//!   physical address and the driver is handed as [`DmaRegion`]s or raw
//!   pointers.
//! - [`SimBar`]: a BAR of plain memory behind a [`Transport`]: registers
//!   read back what was last written, which is enough for a device that
//!   accepts every feature it offers and every queue set-up.
//! - [`DeviceQueue`]: the device's side of a split virtqueue in that
//!   memory: takes chains from the available ring, returns them on the used
//!   ring, and keeps both suppression mechanisms (§2.7.7, §2.7.10).
//!
//! Everything here panics on what a real device would call a driver bug
//! (a chain that loops or leaves the descriptor table, an address outside
//! every region), so a driver test fails at the first such step.

extern crate std;

use crate::dma::DmaRegion;
use crate::pci::{BarRange, VirtioCaps};
use crate::queue::{need_event, Layout, Segment};
use crate::transport::{Mmio, Transport};
use core::sync::atomic::{fence, AtomicU16, AtomicU32, Ordering};
use std::vec;
use std::vec::Vec;

#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Page([u8; 4096]);

/// Regions of zeroed host memory, page-aligned, each at a fake physical
/// address. Region memory never moves, so pointers into it stay valid for
/// the life of the `SimMemory`.
#[derive(Default)]
pub struct SimMemory {
    /// `(paddr, len, base, pages)`; `base` is taken once from `pages`.
    regions: Vec<(u64, usize, *mut u8, Vec<Page>)>,
}

impl SimMemory {
    /// Adds a region of `len` zeroed bytes at physical `paddr` (page
    /// aligned) and returns its host address. Panics if it overlaps one
    /// already added.
    pub fn add(&mut self, paddr: u64, len: usize) -> *mut u8 {
        assert!(paddr.is_multiple_of(4096), "regions are page aligned");
        let end = paddr + len as u64;
        assert!(self.regions.iter().all(|&(p, l, _, _)| end <= p || p + l as u64 <= paddr), "regions overlap");
        let mut pages = vec![Page([0; 4096]); len.div_ceil(4096)];
        let base = pages.as_mut_ptr().cast::<u8>();
        self.regions.push((paddr, len, base, pages));
        base
    }

    /// A [`DmaRegion`] over all of the region added at `paddr`.
    pub fn dma(&self, paddr: u64) -> DmaRegion {
        let &(_, len, base, _) = self.regions.iter().find(|r| r.0 == paddr).expect("no region at that address");
        // SAFETY: the region is `len` bytes of host memory that lives as
        // long as `self`; tests keep the memory alive longer than any
        // driver using the handle, and touch it otherwise only through raw
        // pointers between driver calls.
        unsafe { DmaRegion::new(base as usize, paddr, len) }
    }

    /// The host address of physical `[paddr, paddr + len)`. Panics unless
    /// it lies inside one region: the device would be told to DMA to
    /// memory it must not touch.
    pub fn ptr(&self, paddr: u64, len: usize) -> *mut u8 {
        let &(start, _, base, _) = self
            .regions
            .iter()
            .find(|&&(p, l, _, _)| paddr >= p && paddr.saturating_add(len as u64) <= p + l as u64)
            .unwrap_or_else(|| panic!("DMA to [{paddr:#x}, +{len:#x}) outside every region"));
        base.wrapping_add((paddr - start) as usize)
    }

    /// Copies `len` bytes out of physical memory at `paddr`.
    pub fn read(&self, paddr: u64, len: usize) -> Vec<u8> {
        let p = self.ptr(paddr, len);
        let mut out = vec![0; len];
        // SAFETY: `ptr` checked that the range is inside a live region; the
        // driver does not run while the test reads.
        unsafe { core::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), len) };
        out
    }

    /// Copies `data` into physical memory at `paddr`.
    pub fn write(&self, paddr: u64, data: &[u8]) {
        let p = self.ptr(paddr, data.len());
        // SAFETY: as for `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    }
}

/// Offsets in `struct virtio_pci_common_cfg` (§4.1.4.3) that a device
/// sets up.
mod common {
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const NUM_QUEUES: usize = 0x12;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
}

/// Where [`SimBar`] puts the virtio structures in its BAR (BAR 4).
const COMMON: u32 = 0;
const ISR: u32 = 0x1000;
const DEVICE: u32 = 0x2000;
const NOTIFY: u32 = 0x3000;
const BAR_LEN: usize = 0x4000;
/// The value [`SimBar::take_notification`] leaves in the notification
/// register: no queue has this index.
const NO_NOTIFICATION: u16 = 0xffff;

/// A BAR of plain memory holding the four virtio structures, for a
/// [`Transport`]. Every queue shares one notification register (notify
/// offset 0), which holds the index of the queue notified last.
pub struct SimBar {
    /// Taken once from `_memory`, whose heap buffer never moves.
    base: *mut u8,
    _memory: Vec<u64>,
}

impl SimBar {
    /// A device offering `features` with `queues` queues of at most
    /// `queue_size` entries and `config` as its device configuration.
    ///
    /// Plain memory shows one word whichever half of the features is
    /// selected, so the device offers `features | features << 32` for a
    /// 32-bit `features` (bit 0 therefore also offers `VERSION_1`).
    pub fn new(features: u32, queues: u16, queue_size: u16, config: &[u8]) -> SimBar {
        let mut memory = vec![0u64; BAR_LEN / 8];
        let bar = SimBar { base: memory.as_mut_ptr().cast(), _memory: memory };
        let mmio = bar.mmio();
        mmio.write(COMMON as usize + common::DEVICE_FEATURE, features);
        mmio.write(COMMON as usize + common::NUM_QUEUES, queues);
        mmio.write(COMMON as usize + common::QUEUE_SIZE, queue_size);
        mmio.write(COMMON as usize + common::QUEUE_NOTIFY_OFF, 0u16);
        for (i, &b) in config.iter().enumerate() {
            mmio.write(DEVICE as usize + i, b);
        }
        mmio.write(NOTIFY as usize, NO_NOTIFICATION);
        bar
    }

    fn mmio(&self) -> Mmio {
        // SAFETY: the vector is plain memory of BAR_LEN bytes that lives as
        // long as `self`, which tests keep alive longer than the transport;
        // it is only accessed through `Mmio` handles (volatile accesses).
        unsafe { Mmio::new(self.base, BAR_LEN) }
    }

    /// The transport over this BAR.
    pub fn transport(&self) -> Transport {
        let s = |offset, length| BarRange { bar: 4, offset, length };
        let caps = VirtioCaps {
            common: s(COMMON, 0x1000),
            notify: s(NOTIFY, 0x1000),
            notify_off_multiplier: 2,
            isr: s(ISR, 0x1000),
            device: Some(s(DEVICE, 0x1000)),
        };
        Transport::new(self.mmio(), 4, &caps).expect("the simulated BAR holds every structure")
    }

    /// The index of the queue notified last since the previous call, if
    /// any; clears the register.
    pub fn take_notification(&self) -> Option<u16> {
        let mmio = self.mmio();
        let q: u16 = mmio.read(NOTIFY as usize);
        mmio.write(NOTIFY as usize, NO_NOTIFICATION);
        (q != NO_NOTIFICATION).then_some(q)
    }

    /// The device status byte (§2.1).
    pub fn status(&self) -> u8 {
        self.mmio().read(COMMON as usize + 0x14)
    }
}

/// One descriptor of a chain, as the device found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimDesc {
    pub paddr: u64,
    pub len: u32,
    pub device_writes: bool,
}

impl From<SimDesc> for Segment {
    fn from(d: SimDesc) -> Segment {
        Segment { paddr: d.paddr, len: d.len, device_writes: d.device_writes }
    }
}

/// A chain taken from the available ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimChain {
    /// The head descriptor's index: the id to return it with.
    pub head: u16,
    pub descs: Vec<SimDesc>,
}

/// The device's side of a split virtqueue of `size` entries whose memory
/// starts at a host address.
///
/// Suppression is the device's own wish, kept up to date: with event index
/// it sets `avail_event` to the next chain it has not taken whenever it
/// stops taking ([`DeviceQueue::pop_avail`] returning `None`), which asks
/// for a notification for anything published after that; without it,
/// `VIRTQ_USED_F_NO_NOTIFY` is clear. [`DeviceQueue::publish_used`] tells
/// whether the driver asked for an interrupt.
pub struct DeviceQueue {
    base: *mut u8,
    size: u16,
    layout: Layout,
    event_idx: bool,
    last_avail: u16,
    used_idx: u16,
    /// `used.idx` as last published.
    published_used: u16,
}

impl DeviceQueue {
    /// The device's side of the queue at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the host address of the queue's memory (at least
    /// `Layout::new(size).size` bytes, 16-byte aligned), live as long as
    /// the `DeviceQueue`.
    pub unsafe fn new(base: *mut u8, size: u16, event_idx: bool) -> DeviceQueue {
        DeviceQueue {
            base,
            size,
            layout: Layout::new(usize::from(size)),
            event_idx,
            last_avail: 0,
            used_idx: 0,
            published_used: 0,
        }
    }

    fn u16_at(&self, offset: usize) -> &AtomicU16 {
        assert!(offset + 2 <= self.layout.size);
        // SAFETY: in bounds of the queue memory (constructor contract) and
        // 2-byte aligned (every offset used is); the driver accesses it
        // through atomics too.
        unsafe { &*self.base.add(offset).cast::<AtomicU16>() }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.layout.size);
        // SAFETY: as for `u16_at`, 4-byte aligned.
        unsafe { &*self.base.add(offset).cast::<AtomicU32>() }
    }

    fn desc(&self, index: u16) -> (SimDesc, Option<u16>) {
        assert!(index < self.size, "descriptor index {index} beyond the table");
        let at = 16 * usize::from(index);
        let lo = u64::from(self.u32_at(at).load(Ordering::Relaxed));
        let hi = u64::from(self.u32_at(at + 4).load(Ordering::Relaxed));
        let len = self.u32_at(at + 8).load(Ordering::Relaxed);
        let flags = self.u16_at(at + 12).load(Ordering::Relaxed);
        let next = self.u16_at(at + 14).load(Ordering::Relaxed);
        let d = SimDesc { paddr: lo | hi << 32, len, device_writes: flags & 2 != 0 };
        (d, (flags & 1 != 0).then_some(next))
    }

    /// The available index the driver published.
    pub fn avail_idx(&self) -> u16 {
        self.u16_at(self.layout.avail + 2).load(Ordering::Acquire)
    }

    /// Chains published and not yet taken.
    pub fn pending(&self) -> u16 {
        self.avail_idx().wrapping_sub(self.last_avail)
    }

    /// Takes the next published chain, walking its descriptors. Panics if
    /// the chain loops, leaves the table, or has a device-readable
    /// descriptor after a device-writable one (§2.7.4.2). When there is
    /// none, re-arms notifications and returns `None`.
    pub fn pop_avail(&mut self) -> Option<SimChain> {
        if self.pending() == 0 {
            self.arm_notify();
            return None;
        }
        assert!(self.pending() <= self.size, "avail.idx ran more than the queue size ahead");
        let slot = self.layout.avail + 4 + 2 * usize::from(self.last_avail % self.size);
        let head = self.u16_at(slot).load(Ordering::Relaxed);
        self.last_avail = self.last_avail.wrapping_add(1);
        let mut descs = Vec::new();
        let mut index = head;
        loop {
            let (d, next) = self.desc(index);
            assert!(
                d.device_writes || descs.last().is_none_or(|p: &SimDesc| !p.device_writes),
                "readable descriptor after a writable one"
            );
            descs.push(d);
            assert!(descs.len() <= usize::from(self.size), "descriptor chain loops");
            match next {
                Some(n) => index = n,
                None => break,
            }
        }
        Some(SimChain { head, descs })
    }

    /// Asks the driver for a notification of anything published from now.
    fn arm_notify(&self) {
        if self.event_idx {
            self.u16_at(self.layout.used + 4 + 8 * usize::from(self.size)).store(self.last_avail, Ordering::Relaxed);
        } else {
            self.u16_at(self.layout.used).store(0, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
    }

    /// Asks the driver not to notify: without event index sets
    /// `VIRTQ_USED_F_NO_NOTIFY`; with it, sets `avail_event` to `event`.
    pub fn suppress_notify(&self, event: u16) {
        if self.event_idx {
            self.u16_at(self.layout.used + 4 + 8 * usize::from(self.size)).store(event, Ordering::Relaxed);
        } else {
            self.u16_at(self.layout.used).store(1, Ordering::Relaxed);
        }
    }

    /// Writes used element `{id, len}` at the next used slot, unpublished.
    pub fn push_used(&mut self, id: u32, len: u32) {
        let at = self.layout.used + 4 + 8 * usize::from(self.used_idx % self.size);
        self.u32_at(at).store(id, Ordering::Relaxed);
        self.u32_at(at + 4).store(len, Ordering::Relaxed);
        self.used_idx = self.used_idx.wrapping_add(1);
    }

    /// Publishes the used elements pushed since the last call; returns
    /// whether the driver asked for an interrupt for them (`used_event`
    /// crossed, or `VIRTQ_AVAIL_F_NO_INTERRUPT` clear).
    pub fn publish_used(&mut self) -> bool {
        if self.used_idx == self.published_used {
            return false;
        }
        self.u16_at(self.layout.used + 2).store(self.used_idx, Ordering::Release);
        fence(Ordering::SeqCst);
        let old = self.published_used;
        self.published_used = self.used_idx;
        if self.event_idx {
            let used_event = self.u16_at(self.layout.avail + 4 + 2 * usize::from(self.size)).load(Ordering::Relaxed);
            need_event(used_event, self.used_idx, old)
        } else {
            self.u16_at(self.layout.avail).load(Ordering::Relaxed) & 1 == 0
        }
    }

    /// Sets `used.idx` to `idx` as a broken device might, and carries on
    /// from there.
    pub fn force_used_idx(&mut self, idx: u16) {
        self.used_idx = idx;
        self.published_used = idx;
        self.u16_at(self.layout.used + 2).store(idx, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::SplitQueue;

    #[test]
    fn the_device_side_sees_what_the_driver_side_wrote() {
        let mut mem = SimMemory::default();
        let base = mem.add(0x10_0000, Layout::new(8).size);
        let mut q: SplitQueue<u8, 8> = SplitQueue::new(mem.dma(0x10_0000), 8, true).unwrap();
        // SAFETY: the queue memory lives in `mem` for the whole test.
        let mut dev = unsafe { DeviceQueue::new(base, 8, true) };
        assert!(dev.pop_avail().is_none());
        let chain = [Segment::readable(0x2000, 12), Segment::writable(0x1_0000_3000, 100)];
        q.push(&chain, 7).unwrap();
        assert!(q.publish_and_check(), "the idle device asked for a notification");
        let got = dev.pop_avail().unwrap();
        assert_eq!(got.descs.iter().map(|&d| Segment::from(d)).collect::<Vec<_>>(), chain);
        assert!(!q.enable_interrupts());
        dev.push_used(u32::from(got.head), 50);
        assert!(dev.publish_used(), "interrupts were asked for");
        assert_eq!(q.pop_used().map(|u| (u.token, u.len)), Some((7, 50)));
        mem.add(0x20_0000, 16);
        mem.write(0x20_0000, &[1, 2, 3]);
        assert_eq!(mem.read(0x20_0001, 2), [2, 3]);
    }

    #[test]
    #[should_panic(expected = "outside every region")]
    fn dma_outside_memory_is_a_driver_bug() {
        let mut mem = SimMemory::default();
        mem.add(0x1000, 0x1000);
        mem.read(0x1ff0, 0x20);
    }
}
