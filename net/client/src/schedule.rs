//! Time bookkeeping: one pending timeout for the earliest deadline, and
//! counter reports that only appear when something changed.

/// How often, at most, a daemon logs its counters.
pub const REPORT_PERIOD_NS: u64 = 10 * crate::SECOND_NS;

/// What to ask of the timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmAction {
    /// The pending timeout (if any) already wakes the PD in time.
    Nothing,
    /// Set a timeout at this deadline.
    Set(u64),
    /// Cancel the pending timeout and set one at this deadline.
    Replace(u64),
}

/// The one timeout a daemon keeps pending at the timer.
///
/// The timer allows a few pending timeouts per client and notifies once
/// for any number; a daemon with many deadlines (retries, ageing, reports)
/// keeps exactly one pending, for its earliest deadline: a later deadline
/// needs no new timeout (the earlier wake-up re-plans), an earlier one
/// replaces it. A wake-up before a deadline is harmless: the daemon
/// re-reads the time and does what is due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alarm {
    armed: Option<u64>,
}

impl Alarm {
    pub const fn new() -> Self {
        Alarm { armed: None }
    }

    /// The deadline of the pending timeout, as far as this side knows.
    pub fn armed(&self) -> Option<u64> {
        self.armed
    }

    /// The timer notified and the time is `now`: a timeout at or before
    /// `now` is no longer pending.
    pub fn fired(&mut self, now: u64) {
        if self.armed.is_some_and(|at| at <= now) {
            self.armed = None;
        }
    }

    /// The daemon's earliest deadline is `deadline`: what to ask of the
    /// timer. The caller must do it (and call [`Alarm::failed`] if the
    /// timer refuses).
    pub fn plan(&mut self, deadline: Option<u64>) -> AlarmAction {
        match (self.armed, deadline) {
            (_, None) => AlarmAction::Nothing,
            (None, Some(at)) => {
                self.armed = Some(at);
                AlarmAction::Set(at)
            }
            (Some(armed), Some(at)) if at < armed => {
                self.armed = Some(at);
                AlarmAction::Replace(at)
            }
            (Some(_), Some(_)) => AlarmAction::Nothing,
        }
    }

    /// The timer refused the timeout: nothing is pending.
    pub fn failed(&mut self) {
        self.armed = None;
    }
}

/// Decides when to log a set of counters: at most every
/// [`REPORT_PERIOD_NS`], and only if they differ from the last report.
#[derive(Clone, Copy, Debug)]
pub struct ChangeReport<T> {
    reported: T,
    due: Option<u64>,
}

impl<T: Copy + PartialEq> ChangeReport<T> {
    /// Nothing reported yet; `initial` counts as reported.
    pub const fn new(initial: T) -> Self {
        ChangeReport { reported: initial, due: None }
    }

    /// Counters may have changed at `now`: if they did and no report is
    /// due, one falls due a period from now.
    pub fn note(&mut self, now: u64, current: &T) {
        if self.due.is_none() && *current != self.reported {
            self.due = Some(now.saturating_add(REPORT_PERIOD_NS));
        }
    }

    /// When the next report falls due, if one does.
    pub fn deadline(&self) -> Option<u64> {
        self.due
    }

    /// At a wake-up at `now`: whether to log `current` now.
    pub fn poll(&mut self, now: u64, current: &T) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                if *current != self.reported {
                    self.reported = *current;
                    return true;
                }
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timeout_for_the_earliest_deadline() {
        let mut alarm = Alarm::new();
        assert_eq!(alarm.plan(None), AlarmAction::Nothing);
        assert_eq!(alarm.plan(Some(100)), AlarmAction::Set(100));
        assert_eq!(alarm.plan(Some(150)), AlarmAction::Nothing, "the earlier wake-up re-plans");
        assert_eq!(alarm.plan(Some(100)), AlarmAction::Nothing);
        assert_eq!(alarm.plan(Some(40)), AlarmAction::Replace(40));
        alarm.fired(39);
        assert_eq!(alarm.armed(), Some(40), "an early wake-up leaves it pending");
        alarm.fired(40);
        assert_eq!(alarm.armed(), None);
        assert_eq!(alarm.plan(Some(150)), AlarmAction::Set(150));
        alarm.failed();
        assert_eq!(alarm.plan(Some(150)), AlarmAction::Set(150));
    }

    #[test]
    fn reports_only_changes_at_most_once_a_period() {
        let mut report = ChangeReport::new(0u64);
        report.note(5, &0);
        assert_eq!(report.deadline(), None, "nothing changed");
        report.note(5, &1);
        assert_eq!(report.deadline(), Some(5 + REPORT_PERIOD_NS));
        report.note(7, &2);
        assert_eq!(report.deadline(), Some(5 + REPORT_PERIOD_NS), "one report pending");
        assert!(!report.poll(6, &2), "not yet");
        assert!(report.poll(5 + REPORT_PERIOD_NS, &3));
        assert_eq!(report.deadline(), None);
        report.note(20 + REPORT_PERIOD_NS, &3);
        assert_eq!(report.deadline(), None, "3 was reported");
        // A change that was undone by the time the report falls due.
        report.note(30 + REPORT_PERIOD_NS, &4);
        assert!(!report.poll(30 + 2 * REPORT_PERIOD_NS, &3));
    }
}
