//! Variables the system builder fills in (`setvar`) and typed access to the
//! memory regions they point at.

use core::cell::UnsafeCell;

/// A 64-bit variable patched by the system builder or initialiser: the
/// virtual address of a mapped region (`<map setvar_vaddr="name">`) or the
/// physical address of a region (`<setvar symbol="name" region_paddr="mr">`).
///
/// Declare one with [`setvar!`](crate::setvar). Its initial value is
/// [`Var::unset`]'s `u64::MAX`, which is non-zero so that the variable lives in `.data`
/// where the builder can patch it.
#[repr(transparent)]
pub struct Var(UnsafeCell<u64>);

// SAFETY: a PD is single-threaded and the value is written only before the
// PD starts (by the builder in the image, or by the initialiser).
unsafe impl Sync for Var {}

impl Var {
    /// A variable the description has not set (yet). A `const fn` rather
    /// than a constant: each use must be a distinct cell.
    pub const fn unset() -> Var {
        Var(UnsafeCell::new(u64::MAX))
    }

    /// The patched value, or `None` if the system description did not set it.
    pub fn get(&self) -> Option<u64> {
        // SAFETY: the cell is valid for the program's lifetime; the volatile
        // read stops the compiler from folding in the initial value, since the
        // real one was written into the image after compilation.
        let v = unsafe { self.0.get().read_volatile() };
        (v != u64::MAX).then_some(v)
    }
}

/// Declares a variable for `setvar_vaddr` or `setvar region_paddr`.
///
/// ```ignore
/// microkit::setvar!(shared_vaddr);   // <map mr="shared" ... setvar_vaddr="shared_vaddr"/>
/// let base = shared_vaddr.get().expect("shared region mapped");
/// ```
#[macro_export]
macro_rules! setvar {
    ($name:ident) => {
        #[allow(non_upper_case_globals)]
        #[no_mangle]
        #[used]
        #[link_section = ".data.microkit.setvar"]
        static $name: $crate::Var = $crate::Var::unset();
    };
}

/// Plain integers: every bit pattern is a valid value, so reading memory
/// another PD wrote can never produce an invalid `T`.
pub trait Integer: Copy + sealed::Sealed {}
mod sealed {
    pub trait Sealed {}
}
macro_rules! integers {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Integer for $t {})* };
}
integers!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// A mapped memory region, accessed with volatile, bounds-checked reads and
/// writes: another PD may change shared memory at any time, so the compiler
/// must neither cache nor elide accesses, and no Rust reference to the
/// contents is ever handed out.
#[derive(Clone, Copy, Debug)]
pub struct MemoryRegion {
    base: usize,
    len: usize,
}

impl MemoryRegion {
    /// # Safety
    /// `[base, base + len)` must be mapped (readable, and writable if written
    /// through this handle) for as long as the handle is used.
    pub const unsafe fn new(base: usize, len: usize) -> Self {
        MemoryRegion { base, len }
    }

    /// The region whose address the builder patched into `var`.
    ///
    /// # Safety
    /// `len` must not exceed the size of the region mapped at that address.
    pub unsafe fn from_var(var: &Var, len: usize) -> Option<Self> {
        // SAFETY: forwarded to the caller.
        var.get().map(|base| unsafe { Self::new(base as usize, len) })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn base(&self) -> usize {
        self.base
    }

    fn check(&self, offset: usize, n: usize) -> Option<usize> {
        (offset.checked_add(n)? <= self.len).then_some(self.base + offset)
    }

    fn check_aligned<T>(&self, offset: usize) -> Option<usize> {
        let addr = self.check(offset, core::mem::size_of::<T>())?;
        (addr % core::mem::align_of::<T>() == 0).then_some(addr)
    }

    /// Reads an integer at `offset`, or `None` if it is out of bounds or
    /// misaligned.
    pub fn read<T: Integer>(&self, offset: usize) -> Option<T> {
        let addr = self.check_aligned::<T>(offset)?;
        // SAFETY: in bounds and aligned in a mapped region (constructor
        // contract); any bit pattern is a valid integer.
        Some(unsafe { (addr as *const T).read_volatile() })
    }

    /// Writes an integer at `offset`; `false` if out of bounds or misaligned.
    pub fn write<T: Integer>(&self, offset: usize, value: T) -> bool {
        match self.check_aligned::<T>(offset) {
            // SAFETY: in bounds of a mapped, writable region.
            Some(addr) => unsafe { (addr as *mut T).write_volatile(value) },
            None => return false,
        }
        true
    }

    /// Copies bytes out of the region; `false` if out of bounds.
    ///
    /// Each byte of the region is read once, with volatile loads of eight
    /// aligned bytes where possible (bulk data such as frames: an eighth of
    /// the loads of a byte loop). If the peer writes the bytes meanwhile,
    /// `dst` holds some mix of old and new bytes: check the copy, never the
    /// region.
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        let Some(addr) = self.check(offset, dst.len()) else { return false };
        // SAFETY: `[addr, addr + dst.len())` is in bounds (checked above) of
        // a mapped region, and `dst` is a distinct private buffer.
        unsafe { volatile_copy_out(addr, dst) };
        true
    }

    /// Copies bytes into the region; `false` if out of bounds. Volatile
    /// stores, eight aligned bytes at a time where possible, as
    /// [`copy_out`](Self::copy_out).
    pub fn copy_in(&self, offset: usize, src: &[u8]) -> bool {
        let Some(addr) = self.check(offset, src.len()) else { return false };
        // SAFETY: in bounds (checked above) of a mapped, writable region;
        // `src` is a distinct private buffer.
        unsafe { volatile_copy_in(addr, src) };
        true
    }
}

/// Bytes before the first 8-byte boundary at or after `addr`, at most `len`.
fn head_len(addr: usize, len: usize) -> usize {
    (addr.wrapping_neg() % 8).min(len)
}

/// Copies `dst.len()` bytes from shared memory at `addr` into `dst`: single
/// volatile loads of the bytes before and after the 8-aligned middle,
/// volatile `u64` loads in it.
///
/// # Safety
/// `[addr, addr + dst.len())` must be mapped and readable, and not overlap `dst`.
unsafe fn volatile_copy_out(addr: usize, dst: &mut [u8]) {
    let head = head_len(addr, dst.len());
    let words = (dst.len() - head) / 8;
    let (head_dst, rest) = dst.split_at_mut(head);
    let (word_dst, tail_dst) = rest.split_at_mut(words * 8);
    for (i, b) in head_dst.iter_mut().enumerate() {
        // SAFETY: in the range the caller vouches for.
        *b = unsafe { ((addr + i) as *const u8).read_volatile() };
    }
    let base = addr + head;
    for (i, chunk) in word_dst.chunks_exact_mut(8).enumerate() {
        // SAFETY: in range, and 8-aligned (`base` is) as `read_volatile` needs.
        let word = unsafe { ((base + 8 * i) as *const u64).read_volatile() };
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let tail = base + words * 8;
    for (i, b) in tail_dst.iter_mut().enumerate() {
        // SAFETY: in range.
        *b = unsafe { ((tail + i) as *const u8).read_volatile() };
    }
}

/// Copies `src` into shared memory at `addr`, as [`volatile_copy_out`] in
/// the other direction.
///
/// # Safety
/// `[addr, addr + src.len())` must be mapped and writable, and not overlap `src`.
unsafe fn volatile_copy_in(addr: usize, src: &[u8]) {
    let head = head_len(addr, src.len());
    let words = (src.len() - head) / 8;
    let (head_src, rest) = src.split_at(head);
    let (word_src, tail_src) = rest.split_at(words * 8);
    for (i, &b) in head_src.iter().enumerate() {
        // SAFETY: in the range the caller vouches for.
        unsafe { ((addr + i) as *mut u8).write_volatile(b) };
    }
    let base = addr + head;
    for (i, chunk) in word_src.chunks_exact(8).enumerate() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        // SAFETY: in range, and 8-aligned (`base` is).
        unsafe { ((base + 8 * i) as *mut u64).write_volatile(u64::from_ne_bytes(word)) };
    }
    let tail = base + words * 8;
    for (i, &b) in tail_src.iter().enumerate() {
        // SAFETY: in range.
        unsafe { ((tail + i) as *mut u8).write_volatile(b) };
    }
}

/// A byte array the system builder writes into the image: structured
/// configuration such as the network's (`net_config::CONFIG_SYMBOL`).
///
/// Declare one with [`setvar_bytes!`](crate::setvar_bytes). Its initial
/// bytes are `0xff` (so that it lives in `.data`, where the builder can
/// patch it); the format's own magic tells whether it was written.
#[repr(transparent)]
pub struct Bytes<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: as for `Var`: written only before the PD starts.
unsafe impl<const N: usize> Sync for Bytes<N> {}

impl<const N: usize> Bytes<N> {
    pub const fn unset() -> Self {
        Bytes(UnsafeCell::new([0xff; N]))
    }

    /// A copy of the bytes as patched.
    pub fn get(&self) -> [u8; N] {
        // SAFETY: valid for the program's lifetime and never written while
        // the PD runs; volatile so that the compiler cannot fold in the
        // initial bytes, as for `Var::get`.
        unsafe { self.0.get().read_volatile() }
    }
}

/// Declares a byte array the builder fills in.
///
/// ```ignore
/// microkit::setvar_bytes!(__net_config, net_config::CONFIG_BYTES);
/// let config = net_config::NetConfig::from_bytes(&__net_config.get());
/// ```
#[macro_export]
macro_rules! setvar_bytes {
    ($name:ident, $len:expr) => {
        #[allow(non_upper_case_globals)]
        #[no_mangle]
        #[used]
        #[link_section = ".data.microkit.setvar"]
        static $name: $crate::Bytes<{ $len }> = $crate::Bytes::unset();
    };
}

#[cfg(test)]
mod tests {
    use super::MemoryRegion;

    /// Every offset and length around the 8-byte boundaries, both ways,
    /// without touching a byte outside the range.
    #[test]
    fn copies_are_exact_at_any_alignment() {
        #[repr(align(8))]
        struct Backing([u8; 64]);
        let pattern: [u8; 40] = core::array::from_fn(|i| i as u8 + 1);
        for offset in 0..17 {
            for len in 0..=pattern.len() {
                let mut mem = Backing([0; 64]);
                // SAFETY: the region is `mem`, which outlives it and is used
                // only through it meanwhile.
                let region = unsafe { MemoryRegion::new(mem.0.as_mut_ptr() as usize, 64) };
                assert!(region.copy_in(offset, &pattern[..len]));
                let mut back = [0u8; 40];
                assert!(region.copy_out(offset, &mut back[..len]));
                assert_eq!(back[..len], pattern[..len], "offset {offset} len {len}");
                assert!(mem.0[..offset].iter().all(|&b| b == 0));
                assert!(mem.0[offset + len..].iter().all(|&b| b == 0));
                assert_eq!(mem.0[offset..offset + len], pattern[..len]);
            }
        }
    }

    #[test]
    fn out_of_bounds_copies_are_refused() {
        let mut mem = [0u8; 16];
        // SAFETY: as above.
        let region = unsafe { MemoryRegion::new(mem.as_mut_ptr() as usize, 16) };
        assert!(!region.copy_in(10, &[1; 7]));
        assert!(!region.copy_out(usize::MAX, &mut [0; 2]));
        assert!(region.copy_in(10, &[1; 6]));
        assert_eq!(mem[9..], [0, 1, 1, 1, 1, 1, 1]);
    }
}
