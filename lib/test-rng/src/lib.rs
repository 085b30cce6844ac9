//! A deterministic pseudo-random generator for tests: xorshift64*
//! (Vigna, "An experimental exploration of Marsaglia's xorshift
//! generators", 2016). Not for anything but tests: the point is that a
//! seed names a sequence, so a property test that fails on the host fails
//! again with the same seed.
#![no_std]

/// xorshift64* with a 64-bit state. The state must not be zero (a zero
/// state stays zero); every seed used in this workspace is a non-zero
/// literal.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 bits. (An inherent method rather than `Iterator`: the
    /// sequence never ends, and callers only ever want one number.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Fills `out` with pseudo-random bytes, eight from each step.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_names_a_sequence() {
        let (mut a, mut b) = (Rng(42), Rng(42));
        let first: [u64; 4] = core::array::from_fn(|_| a.next());
        assert_eq!(first, core::array::from_fn(|_| b.next()));
        assert_ne!(first[0], first[1]);
        assert_ne!(Rng(43).next(), first[0]);
    }

    #[test]
    fn below_stays_below_and_fill_fills() {
        let mut r = Rng(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
        let mut bytes = [0u8; 13];
        r.fill(&mut bytes);
        assert!(bytes.iter().any(|&b| b != 0));
    }
}
