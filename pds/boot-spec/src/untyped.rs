//! Carving kernel objects out of untyped memory.
//!
//! seL4 places each object retyped from an untyped at the untyped's free
//! index rounded up to the object's size, and moves the free index past it.
//! [`Untyped`] mirrors that arithmetic exactly, so the initialiser knows,
//! before asking the kernel, whether and where a run of objects fits, and
//! runs of frames come out physically contiguous (a DMA region must be).

/// One untyped capability as the kernel reported it at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untyped {
    pub paddr: u64,
    pub size_bits: u8,
    pub is_device: bool,
    /// Offset of the first free byte (the kernel's free index).
    pub watermark: u64,
}

/// Where a run of objects will go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Index of the untyped in the list given to [`place`].
    pub untyped: usize,
    pub paddr: u64,
}

impl Untyped {
    pub fn new(paddr: u64, size_bits: u8, is_device: bool) -> Self {
        Untyped { paddr, size_bits, is_device, watermark: 0 }
    }

    pub fn size(&self) -> u64 {
        1 << self.size_bits
    }

    pub fn free(&self) -> u64 {
        self.size() - self.watermark
    }

    /// Where `count` objects of 2^bits bytes would start, if they fit.
    pub fn fits(&self, bits: u8, count: u64) -> Option<u64> {
        let start = align_up(self.watermark, 1 << bits)?;
        let end = start.checked_add(count.checked_mul(1 << bits)?)?;
        (end <= self.size()).then_some(self.paddr + start)
    }

    /// Records that `count` objects of 2^bits bytes were retyped.
    pub fn take(&mut self, bits: u8, count: u64) -> Option<u64> {
        let paddr = self.fits(bits, count)?;
        self.watermark = paddr - self.paddr + (count << bits);
        Some(paddr)
    }

    /// The untyped objects to retype (as filler) so that the next object of
    /// 2^bits bytes lands exactly at `paddr`: each filler is the largest
    /// naturally aligned block that does not pass the target. Returns `None`
    /// if `paddr` is not in this untyped, is already passed, or misaligned.
    pub fn padding_to(&self, paddr: u64, bits: u8) -> Option<PaddingIter> {
        let target = paddr.checked_sub(self.paddr)?;
        if target < self.watermark || target >= self.size() || target % (1 << bits) != 0 {
            return None;
        }
        Some(PaddingIter { at: self.watermark, target })
    }
}

/// Filler block sizes (log2) from a watermark up to a target offset.
pub struct PaddingIter {
    at: u64,
    target: u64,
}

impl Iterator for PaddingIter {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        if self.at >= self.target {
            return None;
        }
        // Largest power of two that both aligns `at` and does not overshoot.
        let align_bits = if self.at == 0 { 63 } else { self.at.trailing_zeros() };
        let room_bits = 63 - (self.target - self.at).leading_zeros();
        // The kernel refuses untyped objects smaller than 16 bytes; offsets
        // here are always page aligned, so this never bites in practice.
        let bits = align_bits.min(room_bits).max(4) as u8;
        self.at += 1 << bits;
        Some(bits)
    }
}

fn align_up(x: u64, align: u64) -> Option<u64> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// Chooses an untyped for a run of `count` objects of 2^bits bytes: the
/// RAM untyped (not device memory) with the least free space that still fits,
/// so large untypeds stay whole for large runs.
pub fn place(untypeds: &[Untyped], bits: u8, count: u64) -> Option<Placement> {
    untypeds
        .iter()
        .enumerate()
        .filter(|(_, u)| !u.is_device)
        .filter_map(|(i, u)| u.fits(bits, count).map(|paddr| (i, u.free(), paddr)))
        .min_by_key(|&(_, free, _)| free)
        .map(|(untyped, _, paddr)| Placement { untyped, paddr })
}

/// The untyped (RAM or device) that contains `[paddr, paddr + len)`.
pub fn containing(untypeds: &[Untyped], paddr: u64, len: u64) -> Option<usize> {
    untypeds
        .iter()
        .position(|u| paddr >= u.paddr && paddr.checked_add(len).is_some_and(|end| end <= u.paddr + u.size()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn mirrors_kernel_alignment() {
        let mut u = Untyped::new(0x100000, 20, false);
        assert_eq!(u.take(4, 1), Some(0x100000));
        // A 4 KiB frame after a 16-byte endpoint is aligned up to 4 KiB.
        assert_eq!(u.take(12, 2), Some(0x101000));
        assert_eq!(u.watermark, 0x3000);
        assert_eq!(u.fits(20, 1), None, "a 1 MiB object no longer fits");
        assert_eq!(u.fits(12, 253), Some(0x103000));
        assert_eq!(u.fits(12, 254), None);
    }

    #[test]
    fn padding_reaches_the_exact_address() {
        let mut u = Untyped::new(0xfe00_0000, 24, true);
        u.take(12, 1);
        let target = 0xfe80_0000;
        let fill: Vec<u8> = u.padding_to(target, 12).unwrap().collect();
        let mut at = u.watermark;
        for bits in &fill {
            assert_eq!(at % (1 << bits), 0, "filler must be naturally aligned");
            at += 1 << bits;
        }
        assert_eq!(u.paddr + at, target);
        assert!(u.padding_to(0xfe00_0000, 12).is_none(), "already passed");
        assert!(u.padding_to(0xfe80_0800, 12).is_none(), "misaligned");
        assert!(u.padding_to(0xff00_0000, 12).is_none(), "outside");
    }

    #[test]
    fn place_prefers_tightest_ram_fit_and_skips_devices() {
        let us = [
            Untyped::new(0xc000_0000, 30, true),
            Untyped::new(0x1000_0000, 24, false),
            Untyped::new(0x2000_0000, 16, false),
        ];
        assert_eq!(place(&us, 12, 2).unwrap().untyped, 2);
        assert_eq!(place(&us, 21, 1).unwrap().untyped, 1);
        assert!(place(&us, 25, 1).is_none());
        assert_eq!(containing(&us, 0x2000_f000, 0x1000), Some(2));
        assert_eq!(containing(&us, 0x2000_f000, 0x2000), None);
    }
}
