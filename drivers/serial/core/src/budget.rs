//! Each client's share of the console: a rate limit on what one PD's log
//! may print, so that no PD can flood the console every PD shares.
//!
//! A client may print [`BUDGET_BYTES`] bytes in each window of
//! [`WINDOW_CYCLES`] time-stamp-counter cycles, a window starting at the
//! first byte it prints after the previous one ended. What it writes beyond
//! that is dropped, counted and reported once when the window ends
//! ([`Budget::take_report`]). Cuts fall on line ends: a window's last
//! printed line is whole, and after a cut the rest of the cut line is
//! dropped too, so that the console never shows half a line.
//!
//! The serial PD has no calibrated clock (it is the highest-priority PD
//! and calls no one; the timer's frequency is measured in the timer PD), so
//! the window is a fixed number of cycles: 2^31, about one second at
//! 2.1 GHz, between 0.5 s and 2 s for processors of 1 to 4 GHz.

/// Bytes a client may print in one window: about 300 lines of 100 bytes,
/// far more than any PD logs in normal work (the demultiplexer, the
/// busiest, logs at most 80 lines a second for each client's calls).
pub const BUDGET_BYTES: usize = 32 * 1024;
/// The length of a window in TSC cycles.
pub const WINDOW_CYCLES: u64 = 1 << 31;

/// One client's budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// When the current window started; `None` before the first byte.
    window_start: Option<u64>,
    /// Bytes printed in the current window.
    used: usize,
    /// Bytes dropped in the current window, not yet reported.
    dropped: u64,
    /// A line was cut: drop up to and including its end.
    skipping: bool,
}

impl Budget {
    /// Of `chunk`, bytes the client wrote and the serial PD read at `now`
    /// (TSC cycles), the range to print; the rest is dropped and counted.
    pub fn admit(&mut self, now: u64, chunk: &[u8]) -> core::ops::Range<usize> {
        if self.window_start.is_none_or(|start| now.wrapping_sub(start) >= WINDOW_CYCLES) && self.dropped == 0 {
            self.window_start = Some(now);
            self.used = 0;
        }
        let mut start = 0;
        if self.skipping {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.skipping = false;
                    start = end + 1;
                }
                None => start = chunk.len(),
            }
            self.dropped += start as u64;
        }
        let rest = &chunk[start..];
        let room = BUDGET_BYTES - self.used;
        if rest.len() <= room {
            self.used += rest.len();
            return start..chunk.len();
        }
        // Over budget: print whole lines up to the room left, drop the rest
        // of the chunk and of its cut line.
        let cut = rest[..room].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.used = BUDGET_BYTES;
        self.dropped += (rest.len() - cut) as u64;
        self.skipping = rest.last() != Some(&b'\n');
        start..start + cut
    }

    /// Bytes dropped in a window that has ended at `now`, once; the next
    /// window then starts with the next byte admitted. `None` while the
    /// window lasts or if nothing was dropped.
    pub fn take_report(&mut self, now: u64) -> Option<u64> {
        let start = self.window_start?;
        if self.dropped == 0 || now.wrapping_sub(start) < WINDOW_CYCLES {
            return None;
        }
        self.window_start = None;
        self.used = 0;
        Some(core::mem::take(&mut self.dropped))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// `lines` lines of `len` bytes each (the last byte `\n`).
    fn lines(count: usize, len: usize) -> Vec<u8> {
        (0..count).flat_map(|_| core::iter::repeat_n(b'x', len - 1).chain([b'\n'])).collect()
    }

    #[test]
    fn a_client_under_its_budget_prints_everything() {
        let mut b = Budget::default();
        let chunk = lines(100, 64);
        assert_eq!(b.admit(0, &chunk), 0..chunk.len());
        assert_eq!(b.admit(10, &chunk), 0..chunk.len());
        assert_eq!(b.take_report(WINDOW_CYCLES), None);
    }

    #[test]
    fn a_flood_is_cut_at_a_line_end_and_counted_once_the_window_ends() {
        let mut b = Budget::default();
        let flood = lines(1000, 50);
        let printed = b.admit(0, &flood);
        assert_eq!(printed.start, 0);
        assert!(printed.end <= BUDGET_BYTES && BUDGET_BYTES - printed.end < 50);
        assert_eq!(flood[printed.end - 1], b'\n', "the last printed line is whole");
        // Still the same window: everything more is dropped.
        assert_eq!(b.admit(1000, &flood), 0..0);
        assert_eq!(b.take_report(WINDOW_CYCLES - 1), None, "reported when the window ends");
        let dropped = 2 * flood.len() - printed.end;
        assert_eq!(b.take_report(WINDOW_CYCLES), Some(dropped as u64));
        assert_eq!(b.take_report(2 * WINDOW_CYCLES), None, "once");
        // A new window: the client prints again.
        let next = lines(1, 50);
        assert_eq!(b.admit(2 * WINDOW_CYCLES, &next), 0..50);
    }

    #[test]
    fn after_a_cut_inside_a_line_its_rest_is_dropped_in_the_next_window() {
        let mut b = Budget::default();
        let mut chunk = lines(1, BUDGET_BYTES - 10);
        chunk.extend_from_slice(b"a line cut in two");
        let printed = b.admit(0, &chunk);
        assert_eq!(printed, 0..BUDGET_BYTES - 10);
        assert_eq!(b.take_report(WINDOW_CYCLES), Some(17));
        // The cut line's end arrives in the next window: dropped with it.
        let printed = b.admit(WINDOW_CYCLES, b" continues\nnext line\n");
        assert_eq!(printed, 11..21);
    }

    #[test]
    fn the_window_restarts_only_after_the_drops_are_reported() {
        let mut b = Budget::default();
        let flood = lines(1000, 50);
        b.admit(0, &flood);
        // Late, but unreported: the serial PD reports before admitting.
        assert_eq!(b.admit(WINDOW_CYCLES + 1, &flood), 0..0);
        assert!(b.take_report(WINDOW_CYCLES + 2).is_some());
        assert!(!b.admit(WINDOW_CYCLES + 3, &flood).is_empty());
    }
}
