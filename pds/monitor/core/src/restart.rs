//! When the monitor starts a faulted PD again: the fault policy of each PD
//! (`on_fault` in the description, [`FaultPolicy`]) and the backoff rule.
//!
//! - `stop`: never; the PD stays stopped (the default).
//! - `restart`: at once, after every fault. A PD that faults at every
//!   start is restarted at every fault: a crash loop the console shows.
//! - `restart-backoff`: the first fault of a *streak* restarts the PD at
//!   once; each further fault of the streak waits twice as long as the
//!   one before, from [`FIRST_DELAY_NS`] (10 ms) up to [`MAX_DELAY_NS`]
//!   (1 s); the fault after [`MAX_RESTARTS_IN_STREAK`] restarts leaves
//!   the PD stopped for good. A streak is faults less than
//!   [`STREAK_GAP_NS`] (60 s) apart: a PD that ran a minute without
//!   faulting starts a new one (the count and the delay start over).
//!
//! The delay is counted from the fault. Delays protect the rest of the
//! node from a PD that faults at once whenever it starts (its restart
//! work, zeroing its memory, its `init` and its console lines, would
//! otherwise run back to back), and the limit stops a PD that cannot
//! work; a PD that faults now and then is restarted at once each time.
//! This is systemd's `Restart=` with `RestartSec=` growing and
//! `StartLimitBurst=` / `StartLimitIntervalSec=`, in one rule.

use pds_boot_spec::FaultPolicy;

/// Delay before the second restart of a streak (the first is at once).
pub const FIRST_DELAY_NS: u64 = 10_000_000;
/// The longest delay before a restart.
pub const MAX_DELAY_NS: u64 = 1_000_000_000;
/// Restarts in one streak; the next fault leaves the PD stopped.
pub const MAX_RESTARTS_IN_STREAK: u32 = 5;
/// Faults at least this far apart belong to different streaks.
pub const STREAK_GAP_NS: u64 = 60_000_000_000;

/// What to do with a PD that just faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Leave it stopped: its policy is `stop`.
    Stop,
    /// Leave it stopped: it faulted again after the streak's last allowed
    /// restart (`restart-backoff`).
    GiveUp { faults: u32 },
    /// Start it again once `delay_ns` have passed since the fault
    /// (0: at once). `restart` is its number among the PD's restarts,
    /// from 1.
    Restart { restart: u32, delay_ns: u64 },
}

/// The restart history of one PD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Restarts so far, all streaks.
    pub restarts: u32,
    /// Faults in the current streak.
    streak: u32,
    /// When the last fault was, in monotonic nanoseconds.
    last_fault_ns: Option<u64>,
}

impl History {
    /// Decides about a fault at `now_ns` of a PD with `policy`, and
    /// records it.
    pub fn on_fault(&mut self, policy: FaultPolicy, now_ns: u64) -> Decision {
        let new_streak = self.last_fault_ns.is_none_or(|last| now_ns.saturating_sub(last) >= STREAK_GAP_NS);
        self.last_fault_ns = Some(now_ns);
        self.streak = if new_streak { 1 } else { self.streak.saturating_add(1) };
        let delay_ns = match policy {
            FaultPolicy::Stop => return Decision::Stop,
            FaultPolicy::Restart => 0,
            FaultPolicy::RestartBackoff => {
                if self.streak > MAX_RESTARTS_IN_STREAK {
                    return Decision::GiveUp { faults: self.streak };
                }
                backoff_delay(self.streak)
            }
        };
        self.restarts = self.restarts.saturating_add(1);
        Decision::Restart { restart: self.restarts, delay_ns }
    }
}

/// The delay before the restart that follows the `n`-th fault of a
/// streak (from 1): none for the first, then [`FIRST_DELAY_NS`] doubling
/// up to [`MAX_DELAY_NS`].
pub fn backoff_delay(n: u32) -> u64 {
    match n {
        0 | 1 => 0,
        // 10 ms << 31 still fits a u64; any longer shift is past the cap.
        n if n - 2 < 32 => (FIRST_DELAY_NS << (n - 2)).min(MAX_DELAY_NS),
        _ => MAX_DELAY_NS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn stop_never_restarts() {
        let mut h = History::default();
        assert_eq!(h.on_fault(FaultPolicy::Stop, 0), Decision::Stop);
        assert_eq!(h.on_fault(FaultPolicy::Stop, 100 * STREAK_GAP_NS), Decision::Stop);
        assert_eq!(h.restarts, 0);
    }

    #[test]
    fn restart_is_immediate_every_time() {
        let mut h = History::default();
        for i in 1..=20 {
            assert_eq!(
                h.on_fault(FaultPolicy::Restart, u64::from(i) * MS),
                Decision::Restart { restart: i, delay_ns: 0 }
            );
        }
    }

    #[test]
    fn backoff_delays_double_from_the_second_fault_and_are_capped() {
        assert_eq!(backoff_delay(1), 0);
        assert_eq!(backoff_delay(2), 10 * MS);
        assert_eq!(backoff_delay(3), 20 * MS);
        assert_eq!(backoff_delay(4), 40 * MS);
        assert_eq!(backoff_delay(8), 640 * MS);
        assert_eq!(backoff_delay(9), MAX_DELAY_NS);
        assert_eq!(backoff_delay(64), MAX_DELAY_NS);
        assert_eq!(backoff_delay(u32::MAX), MAX_DELAY_NS);
    }

    #[test]
    fn a_streak_of_faults_restarts_later_and_later_then_gives_up() {
        let mut h = History::default();
        let p = FaultPolicy::RestartBackoff;
        assert_eq!(h.on_fault(p, 1_000 * MS), Decision::Restart { restart: 1, delay_ns: 0 });
        assert_eq!(h.on_fault(p, 1_100 * MS), Decision::Restart { restart: 2, delay_ns: 10 * MS });
        assert_eq!(h.on_fault(p, 1_200 * MS), Decision::Restart { restart: 3, delay_ns: 20 * MS });
        assert_eq!(h.on_fault(p, 1_300 * MS), Decision::Restart { restart: 4, delay_ns: 40 * MS });
        assert_eq!(h.on_fault(p, 1_400 * MS), Decision::Restart { restart: 5, delay_ns: 80 * MS });
        assert_eq!(h.on_fault(p, 1_500 * MS), Decision::GiveUp { faults: 6 });
    }

    #[test]
    fn a_quiet_minute_starts_a_new_streak() {
        let mut h = History::default();
        let p = FaultPolicy::RestartBackoff;
        assert_eq!(h.on_fault(p, 0), Decision::Restart { restart: 1, delay_ns: 0 });
        assert_eq!(h.on_fault(p, STREAK_GAP_NS - 1), Decision::Restart { restart: 2, delay_ns: 10 * MS });
        // Measured from the last fault, not the first.
        let later = STREAK_GAP_NS - 1 + STREAK_GAP_NS;
        assert_eq!(h.on_fault(p, later), Decision::Restart { restart: 3, delay_ns: 0 });
        assert_eq!(h.on_fault(p, later + 1), Decision::Restart { restart: 4, delay_ns: 10 * MS });
    }

    #[test]
    fn a_clock_going_backwards_continues_the_streak() {
        let mut h = History::default();
        let p = FaultPolicy::RestartBackoff;
        assert_eq!(h.on_fault(p, 5 * STREAK_GAP_NS), Decision::Restart { restart: 1, delay_ns: 0 });
        assert_eq!(h.on_fault(p, 0), Decision::Restart { restart: 2, delay_ns: 10 * MS });
    }
}
