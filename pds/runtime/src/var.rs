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

    /// A variable the program needs set as `need`: the builder refuses a
    /// description that does not (see `pds_boot_spec::setvar_needs`).
    pub const fn required(need: pds_boot_spec::setvar_needs::SetvarNeed) -> Var {
        Var(UnsafeCell::new(need.placeholder()))
    }

    /// The patched value, or `None` if the system description did not set it.
    pub fn get(&self) -> Option<u64> {
        // SAFETY: the cell is valid for the program's lifetime; the volatile
        // read stops the compiler from folding in the initial value, since the
        // real one was written into the image after compilation.
        let v = unsafe { self.0.get().read_volatile() };
        let unset = v == u64::MAX || pds_boot_spec::setvar_needs::SetvarNeed::from_placeholder(v).is_some();
        (!unset).then_some(v)
    }
}

/// A run of disk sectors the system builder fills in (`<setvar
/// symbol="name" sectors="FIRST-LAST"/>`): two `u64`s, the first sector and
/// one past the last. Declare one with [`setvar!`](crate::setvar)`(name,
/// sectors)`; the builder refuses a description that does not set it.
#[repr(C)]
pub struct SectorsVar(UnsafeCell<[u64; 2]>);

// SAFETY: as for `Var`: written into the image before the PD starts, only
// read afterwards by the PD's single thread.
unsafe impl Sync for SectorsVar {}

impl SectorsVar {
    /// A required run of sectors: its first word is the placeholder of
    /// [`SetvarNeed::Sectors`](pds_boot_spec::setvar_needs::SetvarNeed).
    pub const fn required() -> SectorsVar {
        SectorsVar(UnsafeCell::new([pds_boot_spec::setvar_needs::SetvarNeed::Sectors.placeholder(), u64::MAX]))
    }

    /// The sectors `start..end` (`end` exclusive), or `None` if the
    /// description did not set them (or set an empty or reversed run).
    pub fn get(&self) -> Option<(u64, u64)> {
        // SAFETY: valid for the program's lifetime; volatile because the
        // value was patched into the image after compilation.
        let [start, end] = unsafe { self.0.get().read_volatile() };
        let unset = pds_boot_spec::setvar_needs::SetvarNeed::from_placeholder(start).is_some();
        (!unset && start < end).then_some((start, end))
    }
}

/// Declares a variable for `setvar_vaddr` or `setvar region_paddr`.
///
/// ```ignore
/// pds_runtime::setvar!(shared_vaddr);   // <map mr="shared" ... setvar_vaddr="shared_vaddr"/>
/// let base = shared_vaddr.get().expect("shared region mapped");
/// ```
///
/// With what the program needs, the builder checks the description sets it
/// so, and fails the build with the description's position otherwise:
///
/// ```ignore
/// pds_runtime::setvar!(site_cache, r);        // a <map ... setvar_vaddr="site_cache"> (any rights)
/// pds_runtime::setvar!(blk_request, rw);      // ... with perms="rw"
/// pds_runtime::setvar!(blk_data_paddr, paddr); // <setvar symbol="blk_data_paddr" region_paddr="..."/>
/// pds_runtime::setvar!(blk_data_size, size);   // region_size, or a map's setvar_size
/// pds_runtime::setvar!(client_sectors, sectors); // <setvar symbol="client_sectors" sectors="0-0x3ffff"/>
/// ```
#[macro_export]
macro_rules! setvar {
    ($name:ident) => {
        $crate::setvar!(@ $name, $crate::Var::unset());
    };
    ($name:ident, r) => {
        $crate::setvar!(@ $name, $crate::Var::required($crate::SetvarNeed::Read));
    };
    ($name:ident, rw) => {
        $crate::setvar!(@ $name, $crate::Var::required($crate::SetvarNeed::Write));
    };
    ($name:ident, paddr) => {
        $crate::setvar!(@ $name, $crate::Var::required($crate::SetvarNeed::Paddr));
    };
    ($name:ident, size) => {
        $crate::setvar!(@ $name, $crate::Var::required($crate::SetvarNeed::Size));
    };
    ($name:ident, number) => {
        $crate::setvar!(@ $name, $crate::Var::required($crate::SetvarNeed::Number));
    };
    ($name:ident, sectors) => {
        #[allow(non_upper_case_globals)]
        #[no_mangle]
        #[used]
        #[link_section = ".data.microkit.setvar"]
        static $name: $crate::SectorsVar = $crate::SectorsVar::required();
    };
    (@ $name:ident, $init:expr) => {
        #[allow(non_upper_case_globals)]
        #[no_mangle]
        #[used]
        #[link_section = ".data.microkit.setvar"]
        static $name: $crate::Var = $init;
    };
}

/// A channel (or IRQ) of this PD known by the name the description gives
/// its end (`setvar_id`); declare one with [`channel!`](crate::channel). The
/// builder refuses to build a system whose description does not name it, or
/// names it for a different use, and writes its id here: renumbering a
/// channel in the description never needs a change in the program.
#[repr(transparent)]
pub struct NamedChannel(UnsafeCell<u64>);

// SAFETY: as for `Var`: written into the image before the PD starts, only
// read afterwards by the PD's single thread.
unsafe impl Sync for NamedChannel {}

impl NamedChannel {
    /// The placeholder of a channel used as `usage` (what the builder checks).
    pub const fn placeholder(usage: pds_boot_spec::channel_names::ChannelUse, optional: bool) -> NamedChannel {
        NamedChannel(UnsafeCell::new(usage.placeholder(optional)))
    }

    /// The channel's id, or `None` for an optional name the description
    /// does not give.
    #[cfg(feature = "pd")]
    pub fn get_optional(&self) -> Option<crate::Channel> {
        // SAFETY: as in `get`.
        let v = unsafe { self.0.get().read_volatile() };
        (v < 64).then(|| crate::Channel::new(v as u8))
    }

    /// The channel's id in this PD, as the builder wrote it.
    ///
    /// # Panics
    /// If the builder did not write it, which it only fails to do for a
    /// program it did not build into an image (the build fails otherwise).
    #[cfg(feature = "pd")]
    pub fn get(&self) -> crate::Channel {
        // SAFETY: valid for the program's lifetime; volatile because the value
        // was patched into the image after compilation.
        let v = unsafe { self.0.get().read_volatile() };
        assert!(v < 64, "a named channel was not patched by the system builder");
        crate::Channel::new(v as u8)
    }
}

/// Declares a channel known by its name in the description:
///
/// ```ignore
/// pds_runtime::channel!(BLK = "blk");              // <end pd="httpd" id="2" setvar_id="blk"/>
/// pds_runtime::channel!(TIMER = "timer", call);    // the other end accepts protected calls
/// pds_runtime::channel!(CLIENTS = "client", serve); // this end accepts them
/// pds_runtime::channel!(DEVICE = "device", irq);   // <irq ... setvar_id="device"/>
/// pds_runtime::channel!(INPUT = "input", optional); // may be absent: INPUT.get_optional()
/// pds_runtime::channel!(CLOCK = "timer", call, optional); // both
/// BLK.get().notify();
/// ```
///
/// The symbol's prefix is `pds_boot_spec::channel_names::SYMBOL_PREFIX`,
/// written out here because an attribute needs a literal.
#[macro_export]
macro_rules! channel {
    ($vis:vis $rust:ident = $name:literal) => {
        $crate::channel!(@ $vis $rust, $name, Notify, false);
    };
    ($vis:vis $rust:ident = $name:literal, optional) => {
        $crate::channel!(@ $vis $rust, $name, Notify, true);
    };
    ($vis:vis $rust:ident = $name:literal, call) => {
        $crate::channel!(@ $vis $rust, $name, Call, false);
    };
    ($vis:vis $rust:ident = $name:literal, call, optional) => {
        $crate::channel!(@ $vis $rust, $name, Call, true);
    };
    ($vis:vis $rust:ident = $name:literal, serve) => {
        $crate::channel!(@ $vis $rust, $name, Serve, false);
    };
    ($vis:vis $rust:ident = $name:literal, irq) => {
        $crate::channel!(@ $vis $rust, $name, Irq, false);
    };
    (@ $vis:vis $rust:ident, $name:literal, $usage:ident, $optional:expr) => {
        #[used]
        #[export_name = concat!("__microkit_id_", $name)]
        #[link_section = ".data.microkit.setvar"]
        $vis static $rust: $crate::NamedChannel =
            $crate::NamedChannel::placeholder($crate::ChannelUse::$usage, $optional);
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
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        let Some(addr) = self.check(offset, dst.len()) else { return false };
        // Byte by byte up to an 8-byte boundary of the region, then words:
        // frame copies are on the data path.
        let head = addr.wrapping_neg() % 8;
        let head = head.min(dst.len());
        let (bytes, rest) = dst.split_at_mut(head);
        for (i, b) in bytes.iter_mut().enumerate() {
            // SAFETY: in bounds (checked above).
            *b = unsafe { ((addr + i) as *const u8).read_volatile() };
        }
        let mut chunks = rest.chunks_exact_mut(8);
        let mut at = addr + head;
        for chunk in &mut chunks {
            // SAFETY: in bounds (checked above) and 8-byte aligned.
            let word = unsafe { (at as *const u64).read_volatile() };
            chunk.copy_from_slice(&word.to_ne_bytes());
            at += 8;
        }
        for b in chunks.into_remainder() {
            // SAFETY: in bounds (checked above).
            *b = unsafe { (at as *const u8).read_volatile() };
            at += 1;
        }
        true
    }

    /// Copies bytes into the region; `false` if out of bounds.
    pub fn copy_in(&self, offset: usize, src: &[u8]) -> bool {
        let Some(addr) = self.check(offset, src.len()) else { return false };
        let head = (addr.wrapping_neg() % 8).min(src.len());
        let (bytes, rest) = src.split_at(head);
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: in bounds (checked above) of a writable region.
            unsafe { ((addr + i) as *mut u8).write_volatile(b) };
        }
        let mut chunks = rest.chunks_exact(8);
        let mut at = addr + head;
        for chunk in &mut chunks {
            let word =
                u64::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]);
            // SAFETY: in bounds (checked above), 8-byte aligned, writable.
            unsafe { (at as *mut u64).write_volatile(word) };
            at += 8;
        }
        for &b in chunks.remainder() {
            // SAFETY: in bounds (checked above) of a writable region.
            unsafe { (at as *mut u8).write_volatile(b) };
            at += 1;
        }
        true
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
/// pds_runtime::setvar_bytes!(__net_config, net_config::CONFIG_BYTES);
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
