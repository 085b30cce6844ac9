//! What the timer keeps across its restarts.
//!
//! A restart resets the timer's program image (README, "Recovery"), but a
//! new life must not measure the TSC again: its clients turn the TSC into
//! nanoseconds themselves with the scale the first life gave them
//! ([`drivers_timer_api::LocalClock`]), and their deadlines are compared
//! with the timer's `NOW`. A second calibration gives a slightly different
//! scale (the PIT is read through emulated or slow ports), so the two
//! clocks would drift apart by the difference times the uptime. The first
//! life therefore writes its [`Clock`] and the wall clock's boot epoch
//! into a region of its own (`<map mr="timer_state" ...>`), which a
//! restart does not touch, and later lives read them back.
//!
//! The record is [`WORDS`] words: a magic number, the scale, the TSC's
//! frequency, the boot epoch (or [`NO_EPOCH`]), and a check word over the
//! others. A region that is zero (the first boot), or was cut short by a
//! fault in the middle of the write, fails the check and is measured
//! afresh.

use crate::Clock;
use drivers_timer_api::TscScale;

/// Words of the record.
pub const WORDS: usize = 5;
/// The first word of a record ("tmrstat1").
pub const MAGIC: u64 = u64::from_le_bytes(*b"tmrstat1");
/// The epoch word of a timer without a wall clock.
pub const NO_EPOCH: u64 = u64::MAX;

/// The clock and the wall clock, as a life of the timer measured them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saved {
    pub clock: Clock,
    pub boot_epoch: Option<u64>,
}

impl Saved {
    /// The record's words.
    pub fn encode(&self) -> [u64; WORDS] {
        let mut words = [MAGIC, self.clock.scale().0, self.clock.tsc_hz(), self.boot_epoch.unwrap_or(NO_EPOCH), 0];
        words[WORDS - 1] = check(&words);
        words
    }

    /// The record in `words`, if it is one.
    pub fn decode(words: &[u64; WORDS]) -> Option<Saved> {
        if words[0] != MAGIC || words[WORDS - 1] != check(words) {
            return None;
        }
        let clock = Clock::from_parts(TscScale(words[1]), words[2])?;
        let boot_epoch = (words[3] != NO_EPOCH).then_some(words[3]);
        Some(Saved { clock, boot_epoch })
    }
}

/// A check over every word but the last: each rotated by its place, then
/// mixed (a torn or shifted record does not pass it).
fn check(words: &[u64; WORDS]) -> u64 {
    words[..WORDS - 1].iter().enumerate().fold(0x9e37_79b9_7f4a_7c15, |acc, (i, &w)| {
        (acc ^ w.rotate_left(i as u32 * 13)).wrapping_mul(0xff51_afd7_ed55_8ccd)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(epoch: Option<u64>) -> Saved {
        Saved { clock: Clock::from_measurement(2_600_000, 1_193).unwrap(), boot_epoch: epoch }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        for s in [saved(Some(1_796_680_189)), saved(None)] {
            assert_eq!(Saved::decode(&s.encode()), Some(s));
        }
    }

    #[test]
    fn a_zero_region_torn_or_changed_record_is_not_taken() {
        assert_eq!(Saved::decode(&[0; WORDS]), None, "the first boot's region");
        let good = saved(Some(5)).encode();
        for i in 0..WORDS {
            for bit in [0, 17, 63] {
                let mut bad = good;
                bad[i] ^= 1 << bit;
                assert_eq!(Saved::decode(&bad), None, "word {i} bit {bit}");
            }
            // Cut short: the words from `i` on never written.
            let mut torn = good;
            torn[i..].fill(0);
            assert_eq!(Saved::decode(&torn), None, "written up to word {i}");
        }
    }

    #[test]
    fn an_implausible_clock_is_not_taken() {
        let mut words = saved(None).encode();
        words[2] = 5; // 5 Hz
        words[WORDS - 1] = check(&words);
        assert_eq!(Saved::decode(&words), None);
        let mut words = saved(None).encode();
        words[1] = 0; // a scale of zero: time would stand still
        words[WORDS - 1] = check(&words);
        assert_eq!(Saved::decode(&words), None);
    }
}
