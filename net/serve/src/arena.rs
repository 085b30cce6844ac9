//! Carving typed, initialised arrays out of a memory region, once, at
//! start: the connection pool's storage comes from the `httpd_connections`
//! region, whose size the system description chooses.

use core::mem::{align_of, size_of};

/// A region handed out front to back; nothing is ever given back.
pub struct Arena {
    next: usize,
    end: usize,
}

impl Arena {
    /// An arena over `len` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `[base, base + len)` must be readable and writable memory that
    /// nothing else in this program or any other accesses for the rest of
    /// the program (a region mapped only into this PD, or memory leaked to
    /// it), and it must stay mapped.
    pub unsafe fn new(base: usize, len: usize) -> Arena {
        Arena { next: base, end: base.saturating_add(len) }
    }

    /// Bytes left (before alignment).
    pub fn remaining(&self) -> usize {
        self.end - self.next
    }

    /// An array of `n` values, element `i` being `init(i)`; `None` if the
    /// rest of the region is too small.
    pub fn array<T>(&mut self, n: usize, mut init: impl FnMut(usize) -> T) -> Option<&'static mut [T]> {
        let start = self.next.checked_next_multiple_of(align_of::<T>())?;
        let bytes = size_of::<T>().checked_mul(n)?;
        let end = start.checked_add(bytes)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        let ptr = start as *mut T;
        for i in 0..n {
            // SAFETY: `ptr.add(i)` is aligned and inside `[start, end)`,
            // which lies in the arena's memory (constructor contract) and
            // was handed out to no one before; writing does not drop the old
            // bytes (which are not a `T`).
            unsafe { ptr.add(i).write(init(i)) };
        }
        // SAFETY: the `n` elements were just initialised; the memory is
        // this program's alone for its whole life (constructor contract)
        // and the arena never hands these bytes out again.
        Some(unsafe { core::slice::from_raw_parts_mut(ptr, n) })
    }

    /// `n` zeroed bytes, as one slice.
    pub fn bytes(&mut self, n: usize) -> Option<&'static mut [u8]> {
        self.array(n, |_| 0u8)
    }
}

/// An arena over `len` bytes of leaked memory (filled with `0xa5`, so
/// that nothing relies on zeroed memory), for host tests (feature
/// `host-tests`).
#[cfg(any(test, feature = "host-tests"))]
pub fn leaked(len: usize) -> Arena {
    extern crate std;
    let memory: &'static mut [u8] = std::boxed::Box::leak(std::vec![0xa5u8; len].into_boxed_slice());
    // SAFETY: leaked memory is the test's alone, forever.
    unsafe { Arena::new(memory.as_mut_ptr() as usize, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(len: usize) -> Arena {
        leaked(len)
    }

    #[test]
    fn arrays_are_aligned_initialised_and_disjoint() {
        let mut a = arena(256);
        let bytes = a.bytes(3).unwrap();
        assert_eq!(bytes, &[0, 0, 0]);
        let words = a.array(4, |i| i as u64 * 10).unwrap();
        assert_eq!(words.as_ptr() as usize % 8, 0);
        assert_eq!(words, &[0, 10, 20, 30]);
        assert!(words.as_ptr() as usize >= bytes.as_ptr() as usize + 3);
        bytes[2] = 7;
        assert_eq!(words[0], 0);
    }

    #[test]
    fn too_large_is_refused_and_takes_nothing() {
        let mut a = arena(64);
        assert!(a.array(9, |_| 0u64).is_none());
        assert_eq!(a.remaining(), 64);
        assert!(a.array(usize::MAX / 4, |_| 0u64).is_none(), "no overflow");
        assert!(a.bytes(64).is_some());
        assert!(a.bytes(1).is_none());
    }
}
