//! Memory the device reads and writes: a mapped, physically contiguous
//! region whose physical base the driver knows.
//!
//! The device accesses it concurrently with the driver (x86 DMA is cache
//! coherent, so the mapping is cached), so the driver only ever touches it
//! through atomics: plain loads and stores that the compiler may neither
//! elide nor cache, and no data race in Rust's memory model.

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};

/// An atomic integer type that may overlay DMA memory.
pub trait Atomic: Sync + sealed::Sealed {}
mod sealed {
    pub trait Sealed {}
}
macro_rules! atomics {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Atomic for $t {})* };
}
atomics!(AtomicU8, AtomicU16, AtomicU32, AtomicU64);

/// A DMA region: `len` bytes mapped at `vaddr`, at physical `paddr`.
#[derive(Debug)]
pub struct DmaRegion {
    vaddr: usize,
    paddr: u64,
    len: usize,
}

impl DmaRegion {
    /// # Safety
    ///
    /// `[vaddr, vaddr + len)` must be mapped readable and writable for the
    /// life of the handle (and of every reference it hands out), be the
    /// physically contiguous memory at `paddr`, and be accessed in this
    /// address space only through this handle.
    pub unsafe fn new(vaddr: usize, paddr: u64, len: usize) -> Self {
        DmaRegion { vaddr, paddr, len }
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The physical address of byte `offset`, for the device.
    ///
    /// # Panics
    /// If `offset` is beyond the region: a driver bug.
    pub fn paddr(&self, offset: usize) -> u64 {
        assert!(offset <= self.len, "DMA offset {offset:#x} beyond region");
        self.paddr + offset as u64
    }

    /// The atomic integer at `offset`.
    ///
    /// # Panics
    /// If it is out of bounds or misaligned: offsets come from the driver's
    /// own layout, never from a peer, so this is a driver bug.
    pub fn at<T: Atomic>(&self, offset: usize) -> &T {
        let size = core::mem::size_of::<T>();
        assert!(offset.checked_add(size).is_some_and(|end| end <= self.len), "DMA access out of bounds");
        let addr = self.vaddr + offset;
        assert!(addr.is_multiple_of(core::mem::align_of::<T>()), "misaligned DMA access");
        // SAFETY: in bounds and aligned in memory mapped for the handle's
        // life (constructor contract); `T` is an atomic integer, valid for
        // any bit pattern, and the device writing it concurrently is allowed.
        unsafe { &*(addr as *const T) }
    }

    /// Zeroes the whole region.
    pub fn zero(&self) {
        for offset in (0..self.len & !7).step_by(8) {
            self.at::<AtomicU64>(offset).store(0, core::sync::atomic::Ordering::Relaxed);
        }
    }
}
