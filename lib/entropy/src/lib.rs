//! Secret seeds for PDs: SYN-cookie and hash-table keys (httpd), anything
//! an attacker must not predict.
//!
//! The system has no entropy device of its own (no virtio-rng driver), so
//! a seed comes from the CPU, in this order:
//!
//! 1. **RDSEED** (CPUID.(EAX=07H,ECX=0):EBX bit 18): the output of the
//!    hardware's conditioned entropy source itself. Intel's *Digital Random
//!    Number Generator Software Implementation Guide* §5.3: it may fail
//!    (carry clear) when the source is drained; retry with a pause.
//! 2. **RDRAND** (CPUID.01H:ECX bit 30): a CSPRNG reseeded from that
//!    source. The guide (§5.2.1) says ten failures in a row mean a broken
//!    unit; one is retried up to [`RDRAND_RETRIES`] times.
//! 3. **The clocks** (the time-stamp counter and what the caller mixes in,
//!    e.g. the wall clock): only when the CPU has neither instruction or
//!    both keep failing. Such a seed is *guessable* by someone who can
//!    estimate the boot time, and [`Source::Clocks`] says so: the caller
//!    must log it.
//!
//! Each 64-bit word of a seed comes from the best source that answers for
//! it; a [`Seed`] reports the weakest source among its words. QEMU's TCG
//! emulates RDRAND (from the host's `getrandom`) when the CPU model has
//! `+rdrand`, as the project's QEMU command line does; most x86 boards
//! since 2012 (Ivy Bridge, AMD Zen) have both instructions.
#![no_std]

/// RDRAND attempts for one word before the unit is taken as broken
/// (Intel DRNG guide §5.2.1: ten).
pub const RDRAND_RETRIES: usize = 10;
/// RDSEED attempts for one word before falling back to RDRAND (the guide,
/// §5.3.1, retries with a pause; the entropy source refills in
/// microseconds).
pub const RDSEED_RETRIES: usize = 100;

/// Where a seed's bits came from, weakest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Every word from RDSEED.
    Rdseed,
    /// At least one word from RDRAND, none from the clocks.
    Rdrand,
    /// At least one word from the clocks only: guessable.
    Clocks,
}

impl Source {
    /// The name logged (`RDSEED`, `RDRAND`, `the clocks (guessable: the CPU
    /// has no RDRAND/RDSEED)`).
    pub fn describe(self) -> &'static str {
        match self {
            Source::Rdseed => "RDSEED",
            Source::Rdrand => "RDRAND",
            Source::Clocks => "the clocks (guessable: the CPU has no working RDSEED or RDRAND)",
        }
    }
}

/// A seed of `N` bytes and the weakest source that went into it.
#[derive(Clone, Copy, Debug)]
pub struct Seed<const N: usize> {
    pub bytes: [u8; N],
    pub source: Source,
}

/// The random number instructions this CPU has (CPUID).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub rdseed: bool,
    pub rdrand: bool,
}

impl Features {
    /// Asks CPUID.
    pub fn detect() -> Features {
        use core::arch::x86_64::__cpuid_count;
        // CPUID is available on every x86_64 processor and has no side
        // effects beyond its output registers.
        let max = __cpuid_count(0, 0).eax;
        let rdrand = __cpuid_count(1, 0).ecx & (1 << 30) != 0;
        let rdseed = max >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0;
        Features { rdseed, rdrand }
    }
}

/// A seed from the best source this CPU has; `mix` (e.g. the wall clock)
/// is folded into every word with the time-stamp counter, which matters
/// only when the clocks are the source.
pub fn seed<const N: usize>(mix: u64) -> Seed<N> {
    seed_with(Features::detect(), mix, &mut Hardware)
}

/// One word from each instruction, `None` when it reported failure
/// (carry clear). A seam so that the fallback order is host-tested with
/// units that fail.
trait Unit {
    fn rdseed(&mut self) -> Option<u64>;
    fn rdrand(&mut self) -> Option<u64>;
    fn tsc(&mut self) -> u64;
}

/// The CPU's instructions; only called when [`Features`] says they exist.
struct Hardware;

impl Unit for Hardware {
    fn rdseed(&mut self) -> Option<u64> {
        let mut word = 0;
        // SAFETY: RDSEED writes only `word`; `seed_with` calls this only
        // when CPUID reports the instruction.
        let ok = unsafe { core::arch::x86_64::_rdseed64_step(&mut word) };
        (ok == 1).then_some(word)
    }

    fn rdrand(&mut self) -> Option<u64> {
        let mut word = 0;
        // SAFETY: RDRAND writes only `word`; `seed_with` calls this only
        // when CPUID reports the instruction.
        let ok = unsafe { core::arch::x86_64::_rdrand64_step(&mut word) };
        (ok == 1).then_some(word)
    }

    fn tsc(&mut self) -> u64 {
        // SAFETY: RDTSC only reads the time-stamp counter (seL4 leaves it
        // available at user level).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
}

fn seed_with<const N: usize>(features: Features, mix: u64, unit: &mut impl Unit) -> Seed<N> {
    let mut bytes = [0u8; N];
    let mut source = Source::Rdseed;
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let (word, from) = word(features, unit, mix, i as u64);
        source = source.max(from);
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    Seed { bytes, source }
}

fn word(features: Features, unit: &mut impl Unit, mix: u64, index: u64) -> (u64, Source) {
    if features.rdseed {
        for _ in 0..RDSEED_RETRIES {
            if let Some(w) = unit.rdseed() {
                return (w, Source::Rdseed);
            }
            core::hint::spin_loop();
        }
    }
    if features.rdrand {
        for _ in 0..RDRAND_RETRIES {
            if let Some(w) = unit.rdrand() {
                return (w, Source::Rdrand);
            }
        }
    }
    // The last resort: the counter's low bits vary with everything that
    // ran before; SplitMix64's finaliser spreads them over the word.
    let mut z = unit.tsc() ^ mix.rotate_left(17) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31), Source::Clocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit whose instructions fail a set number of times, then count up.
    struct Flaky {
        seed_failures: usize,
        rand_failures: usize,
        next: u64,
        calls: usize,
    }

    impl Unit for Flaky {
        fn rdseed(&mut self) -> Option<u64> {
            self.calls += 1;
            if self.seed_failures > 0 {
                self.seed_failures -= 1;
                return None;
            }
            self.next += 1;
            Some(self.next)
        }
        fn rdrand(&mut self) -> Option<u64> {
            self.calls += 1;
            if self.rand_failures > 0 {
                self.rand_failures -= 1;
                return None;
            }
            self.next += 0x100;
            Some(self.next)
        }
        fn tsc(&mut self) -> u64 {
            12345
        }
    }

    fn flaky(seed_failures: usize, rand_failures: usize) -> Flaky {
        Flaky { seed_failures, rand_failures, next: 0, calls: 0 }
    }

    const BOTH: Features = Features { rdseed: true, rdrand: true };

    #[test]
    fn rdseed_is_preferred_and_retried() {
        let mut unit = flaky(RDSEED_RETRIES - 1, 0);
        let s: Seed<16> = seed_with(BOTH, 0, &mut unit);
        assert_eq!(s.source, Source::Rdseed);
        assert_eq!(&s.bytes[..8], &1u64.to_le_bytes());
        assert_eq!(&s.bytes[8..], &2u64.to_le_bytes());
    }

    #[test]
    fn a_drained_rdseed_falls_back_to_rdrand_for_that_word_only() {
        let mut unit = flaky(RDSEED_RETRIES, 0);
        let s: Seed<16> = seed_with(BOTH, 0, &mut unit);
        assert_eq!(s.source, Source::Rdrand, "the weakest word's source");
        assert_eq!(&s.bytes[..8], &0x100u64.to_le_bytes());
        assert_eq!(&s.bytes[8..], &0x101u64.to_le_bytes(), "the second word from RDSEED again");
    }

    #[test]
    fn rdrand_alone_is_retried_ten_times_then_the_clocks_are_used_and_said() {
        let only_rdrand = Features { rdseed: false, rdrand: true };
        let mut unit = flaky(usize::MAX, RDRAND_RETRIES - 1);
        let s: Seed<8> = seed_with(only_rdrand, 0, &mut unit);
        assert_eq!(s.source, Source::Rdrand);
        assert_eq!(unit.calls, RDRAND_RETRIES, "RDSEED never tried without the feature");
        let mut unit = flaky(usize::MAX, RDRAND_RETRIES);
        let s: Seed<8> = seed_with(only_rdrand, 7, &mut unit);
        assert_eq!(s.source, Source::Clocks);
        assert!(s.source.describe().contains("guessable"));
    }

    #[test]
    fn without_the_instructions_the_clock_words_differ_per_word_and_per_mix() {
        let mut unit = flaky(0, 0);
        let a: Seed<16> = seed_with(Features::default(), 1, &mut unit);
        let b: Seed<16> = seed_with(Features::default(), 2, &mut unit);
        assert_eq!(unit.calls, 0, "no instruction is executed without its feature");
        assert_eq!(a.source, Source::Clocks);
        assert_ne!(a.bytes[..8], a.bytes[8..]);
        assert_ne!(a.bytes, b.bytes);
    }

    #[test]
    fn a_seed_whose_length_is_not_a_multiple_of_eight_is_filled() {
        let mut unit = flaky(0, 0);
        let s: Seed<12> = seed_with(BOTH, 0, &mut unit);
        assert_eq!(&s.bytes[8..], &2u64.to_le_bytes()[..4]);
    }

    /// The real instructions on the machine running the tests (skipped
    /// where the CPU has neither): two seeds differ and say their source.
    #[test]
    fn this_cpus_seeds_differ() {
        let features = Features::detect();
        let (a, b): (Seed<16>, Seed<16>) = (seed(0), seed(0));
        assert_ne!(a.bytes, b.bytes);
        let expected = if features.rdseed {
            Source::Rdseed
        } else if features.rdrand {
            Source::Rdrand
        } else {
            Source::Clocks
        };
        assert!(a.source >= expected, "{:?} from {features:?}", a.source);
    }
}
