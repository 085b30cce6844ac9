//! Memory the device reads and writes: a mapped, physically contiguous
//! region whose physical base the driver was given.
//!
//! The device accesses it concurrently with the driver (x86 DMA is cache
//! coherent, so the mapping is cached), so the driver only ever touches it
//! through atomics: plain loads and stores that the compiler may neither
//! elide nor cache, and no data race in Rust's memory model. The device is
//! told about it only by physical address ([`DmaRegion::paddr`]).

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

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

    /// Whether byte 0 is `align`-aligned both virtually and physically.
    pub fn is_aligned(&self, align: usize) -> bool {
        self.vaddr.is_multiple_of(align) && self.paddr.is_multiple_of(align as u64)
    }

    /// Splits the region in two at `offset`: `[0, offset)` and the rest.
    /// `None` if `offset` is beyond the end.
    pub fn split_at(self, offset: usize) -> Option<(DmaRegion, DmaRegion)> {
        (offset <= self.len).then(|| {
            let head = DmaRegion { vaddr: self.vaddr, paddr: self.paddr, len: offset };
            let tail =
                DmaRegion { vaddr: self.vaddr + offset, paddr: self.paddr + offset as u64, len: self.len - offset };
            (head, tail)
        })
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
        let mut offset = 0;
        while offset < self.len {
            if (self.vaddr + offset).is_multiple_of(8) && offset + 8 <= self.len {
                self.at::<AtomicU64>(offset).store(0, Ordering::Relaxed);
                offset += 8;
            } else {
                self.at::<AtomicU8>(offset).store(0, Ordering::Relaxed);
                offset += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn split_zero_and_addresses() {
        let mut mem = vec![u64::MAX; 8];
        let base = mem.as_mut_ptr() as usize;
        // SAFETY: the vector outlives the region and is only used through it.
        let region = unsafe { DmaRegion::new(base, 0x10_0000, 64) };
        assert!(region.is_aligned(8));
        let (a, b) = region.split_at(13).unwrap();
        assert_eq!((a.len(), b.len()), (13, 51));
        assert_eq!(b.paddr(0), 0x10_000d);
        assert_eq!(b.paddr(51), 0x10_0040);
        b.zero();
        assert_eq!(a.at::<AtomicU8>(12).load(Ordering::Relaxed), 0xff);
        assert_eq!(b.at::<AtomicU8>(0).load(Ordering::Relaxed), 0);
        assert_eq!(mem[1], 0x0000_00ff_ffff_ffff, "bytes 8..13 kept, 13..16 zeroed");
        assert!(mem[2..].iter().all(|&w| w == 0));
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn out_of_bounds_is_a_driver_bug() {
        let mut mem = vec![0u64; 2];
        // SAFETY: as above.
        let region = unsafe { DmaRegion::new(mem.as_mut_ptr() as usize, 0, 16) };
        region.at::<AtomicU32>(14);
    }
}
