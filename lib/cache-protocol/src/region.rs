//! The cache region (`cache_data`) as a PD reads it: the cache PD (its
//! head and each loaded file, to verify it) and every server (the head,
//! to parse the index, and the files it pins). The disk writes into the
//! region by DMA (the blocks of loads in progress) while it is in use,
//! so the bytes are asked for anew for each use and only what the cache
//! says is loaded, or the head once published, is read.

/// The region, as a reader sees it; tests implement it over a buffer.
pub trait CacheRegion<'h> {
    /// The whole region, for one use.
    fn bytes(&self) -> &[u8];
    /// Its first `len` bytes, for good: the image head, which nothing
    /// writes again once the cache has verified it. `None` if the region
    /// is shorter.
    fn head(&self, len: usize) -> Option<&'h [u8]>;
}

/// The region as the description maps it into a PD, read-only.
pub struct MappedRegion {
    base: usize,
    size: usize,
}

impl MappedRegion {
    /// The region mapped at `base`, `size` bytes.
    ///
    /// # Safety
    ///
    /// `base..base + size` must be mapped readable for the PD's life (the
    /// description's `<map perms="r" setvar_vaddr setvar_size>`), and
    /// written only by the device, only in the blocks of loads in
    /// progress, which the PD never reads: the head once the cache has
    /// published it, and a file while the PD holds its pin (or, in the
    /// cache PD, once its load completed), do not change while read.
    pub unsafe fn new(base: usize, size: usize) -> MappedRegion {
        MappedRegion { base, size }
    }
}

impl CacheRegion<'static> for MappedRegion {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `new`'s contract: mapped readable for the PD's life, and
        // the bytes the PD reads through this slice do not change while
        // it is used.
        unsafe { core::slice::from_raw_parts(self.base as *const u8, self.size) }
    }

    fn head(&self, len: usize) -> Option<&'static [u8]> {
        if len > self.size {
            return None;
        }
        // SAFETY: as in `bytes`; the head is written by the device only
        // during the cache's boot, which is over when it is asked for.
        Some(unsafe { core::slice::from_raw_parts(self.base as *const u8, len) })
    }
}
