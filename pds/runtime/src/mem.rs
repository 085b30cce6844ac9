//! The memory functions the compiler emits calls to (`memcpy` and friends).
//!
//! They are exported under their C names only by [`bare_metal_support!`]
//! (which [`protection_domain!`] expands), in the program crate: a library
//! that uses the runtime can then be tested on the host, where libc's
//! functions must not be replaced.
//!
//! Programs are linked without libc, and `compiler_builtins` does not provide
//! these for the `x86_64-unknown-linux-gnu` target. They are written with
//! string instructions in `asm!`, so that the compiler cannot turn their loops
//! back into calls to themselves, and they move **eight bytes per
//! iteration** (`rep movsq`/`rep stosq`, then the last `n % 8` bytes with
//! `movsb`/`stosb`): under QEMU's TCG every iteration of a `rep` instruction is
//! a translated block of its own (measured 2026-12-07: byte-wise `rep movsb`
//! was 14 % of the web node's CPU time in close mode, the demultiplexer's
//! frame and descriptor copies most of it), and on hardware `rep movsq` is as
//! fast as ERMS's `rep movsb` for these sizes, without depending on ERMS
//! (the QEMU CPU model, Nehalem, does not have it).
//!
//! `memcmp` compares eight bytes at a time the same way (`repe cmpsq`, then
//! bytes from the first differing word).

use core::arch::asm;

/// Bytes per word of the string instructions.
const WORD: usize = 8;

/// # Safety
/// As C `memcpy`: `dst` and `src` valid for `n` bytes, not overlapping.
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller upholds memcpy's contract; `rep movsq` copies the
    // n / 8 words forward and leaves rdi/rsi after them, where `rep movsb`
    // copies the remaining n % 8 bytes: exactly n bytes in all.
    unsafe {
        asm!("rep movsq", "mov rcx, {tail}", "rep movsb",
             tail = in(reg) n % WORD,
             inout("rcx") n / WORD => _, inout("rdi") dst => _, inout("rsi") src => _,
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
    // dst lies above src inside the copy: backwards (direction flag set),
    // the last n % 8 bytes first, then the words from the top down; the
    // direction flag is cleared again as the ABI requires. After the byte
    // copy rdi/rsi point at the last byte of the word part, so they move
    // back 7 to its last word.
    // SAFETY: every byte read or written lies in [src, src + n) or
    // [dst, dst + n), which the caller guarantees valid (n > 0 here: a
    // zero-length move takes the forward branch).
    unsafe {
        asm!("std", "rep movsb", "sub rdi, 7", "sub rsi, 7", "mov rcx, {words}", "rep movsq", "cld",
             words = in(reg) n / WORD,
             inout("rcx") n % WORD => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// # Safety
/// As C `memset`: `dst` valid for `n` bytes.
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    let word = u64::from(value as u8) * 0x0101_0101_0101_0101;
    // SAFETY: the caller upholds memset's contract; as `memcpy`, n / 8 words
    // then n % 8 bytes, all of the byte `value` (al is word's low byte).
    unsafe {
        asm!("rep stosq", "mov rcx, {tail}", "rep stosb",
             tail = in(reg) n % WORD,
             inout("rcx") n / WORD => _, inout("rdi") dst => _, in("rax") word,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C `memcmp`: both pointers valid for `n` bytes.
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let words = n / WORD;
    let (left, unequal): (usize, u8);
    // SAFETY: `repe cmpsq` reads at most n / 8 words of each, inside both
    // ranges; it stops after the first unequal word (ZF clear), with rcx
    // counting the words not compared. `cmp` sets ZF for n / 8 = 0.
    unsafe {
        asm!("cmp rcx, rcx", "repe cmpsq", "setne {unequal}",
             unequal = out(reg_byte) unequal,
             inout("rcx") words => left, inout("rsi") a => _, inout("rdi") b => _,
             options(nostack, readonly));
    }
    // Bytes from the word that differed (the last one compared), or the tail.
    let start = if unequal != 0 { (words - left - 1) * WORD } else { words * WORD };
    for i in start..n {
        // SAFETY: i < n and both are valid for n bytes. Volatile, so that
        // the loop is not turned into a call to memcmp itself.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use lib_test_rng::Rng;
    use std::vec;

    /// Lengths around every word boundary, and offsets that misalign both.
    fn cases(rng: &mut Rng) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..40usize).chain([63, 64, 65, 1500, 4096]).flat_map(move |n| {
            let (a, b) = (rng.below(8), rng.below(8));
            [(n, 0, 0), (n, a, b)]
        })
    }

    #[test]
    fn memcpy_and_memset_write_exactly_their_bytes() {
        let mut rng = Rng(7);
        for (n, s, d) in cases(&mut Rng(1)) {
            let mut src = vec![0u8; n + 16];
            rng.fill(&mut src);
            let mut dst = vec![0xeeu8; n + 16];
            let before = dst.clone();
            // SAFETY: both buffers hold n bytes from their offsets (< 8).
            let r = unsafe { memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(s), n) };
            assert_eq!(r, dst.as_mut_ptr().wrapping_add(d));
            assert_eq!(&dst[d..d + n], &src[s..s + n], "memcpy n={n} s={s} d={d}");
            assert_eq!((&dst[..d], &dst[d + n..]), (&before[..d], &before[d + n..]), "memcpy wrote outside");

            let value = rng.next() as u8;
            // SAFETY: dst holds n bytes from d.
            unsafe { memset(dst.as_mut_ptr().add(d), i32::from(value) | 0x7f00, n) };
            assert!(dst[d..d + n].iter().all(|&x| x == value), "memset n={n} d={d}");
            assert_eq!((&dst[..d], &dst[d + n..]), (&before[..d], &before[d + n..]), "memset wrote outside");
        }
    }

    #[test]
    fn memmove_copies_overlapping_ranges_both_ways() {
        let mut rng = Rng(3);
        for (n, s, d) in cases(&mut Rng(2)) {
            for shift in [0, 1, 7, 8, 9, n / 2] {
                let mut buf = vec![0u8; n + n / 2 + 40];
                rng.fill(&mut buf);
                for (from, to) in [(s, s + shift), (s + shift, s)] {
                    let mut got = buf.clone();
                    let mut want = buf.clone();
                    want.copy_within(from..from + n, to + d);
                    // SAFETY: from + n and to + d + n lie inside buf.
                    unsafe { memmove(got.as_mut_ptr().add(to + d), got.as_ptr().add(from), n) };
                    assert_eq!(got, want, "memmove n={n} from={from} to={}", to + d);
                }
            }
        }
    }

    #[test]
    fn memcmp_orders_by_the_first_differing_byte() {
        let mut rng = Rng(5);
        for (n, s, d) in cases(&mut Rng(4)) {
            let mut a = vec![0u8; n + 8];
            rng.fill(&mut a);
            let mut b = vec![0u8; n + 8];
            b[d..d + n].copy_from_slice(&a[s..s + n]);
            // SAFETY: both hold n bytes from their offsets.
            let cmp = |b: &[u8]| unsafe { memcmp(a.as_ptr().add(s), b.as_ptr().add(d), n) };
            assert_eq!(cmp(&b), 0, "equal n={n}");
            for at in (0..n).filter(|&at| at == 0 || at == n / 2 || at % WORD == WORD - 1 || at == n - 1) {
                for delta in [1u8, 0x80] {
                    let mut c = b.clone();
                    c[d + at] = c[d + at].wrapping_add(delta);
                    let want = i32::from(a[s + at]) - i32::from(c[d + at]);
                    assert_eq!(cmp(&c), want, "n={n} at={at}");
                    // A later difference does not change the answer.
                    if at + 1 < n {
                        c[d + n - 1] ^= 0xff;
                        assert_eq!(cmp(&c), want, "n={n} at={at}, with a later difference");
                    }
                }
            }
        }
    }
}
