//! The memory functions the compiler emits calls to (`memcpy` and friends).
//!
//! They are exported under their C names only by [`bare_metal_support!`]
//! (which [`protection_domain!`] expands), in the program crate: a library
//! that uses the runtime can then be tested on the host, where libc's
//! functions must not be replaced.
//!
//! Programs are linked without libc, and `compiler_builtins` does not provide
//! these for the `x86_64-unknown-linux-gnu` target. They are written with
//! `rep movsb`/`rep stosb` (fast on CPUs with ERMS) so that the compiler cannot
//! turn their loops back into calls to themselves.

use core::arch::asm;

/// # Safety
/// As C `memcpy`: `dst` and `src` valid for `n` bytes, not overlapping.
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller upholds memcpy's contract; rep movsb copies exactly n bytes forward.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C `memmove`: `dst` and `src` valid for `n` bytes; they may overlap.
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // Forward copy is safe: dst is below src or the ranges do not overlap.
        // SAFETY: forwarded contract.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: copies backwards (direction flag set) from the last byte, then
    // clears the direction flag again as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// # Safety
/// As C `memset`: `dst` valid for `n` bytes.
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller upholds memset's contract.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") value as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C `memcmp`: both pointers valid for `n` bytes.
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n and both are valid for n bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// As C `bcmp`: both pointers valid for `n` bytes.
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
