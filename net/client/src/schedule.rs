//! Time bookkeeping: one pending timeout for the earliest deadline, and
//! counter reports that only appear when something changed.

use drivers_timer_api::LATE_NS;

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
    /// A notification came before the pending deadline: the timer may have
    /// lost it (a restarted timer notifies every client once and holds no
    /// timeouts), so the next plan replaces it.
    doubtful: bool,
}

impl Alarm {
    pub const fn new() -> Self {
        Alarm { armed: None, doubtful: false }
    }

    /// The deadline of the pending timeout, as far as this side knows.
    pub fn armed(&self) -> Option<u64> {
        self.armed
    }

    /// The timer notified and the time is `now`: a timeout at or before
    /// `now` is no longer pending. One after `now` may be lost: the
    /// notification was for a timeout cancelled since, or came from a
    /// restarted timer, which has none; the next plan cancels and sets it
    /// again ([`AlarmAction::Replace`]), which is right in both cases.
    pub fn fired(&mut self, now: u64) {
        match self.armed {
            Some(at) if at <= now => {
                self.armed = None;
                self.doubtful = false;
            }
            Some(_) => self.doubtful = true,
            None => {}
        }
    }

    /// The daemon's earliest deadline is `deadline` and the time is `now`:
    /// what to ask of the timer. The caller must do it (and call
    /// [`Alarm::failed`] if the timer refuses).
    ///
    /// A pending timeout whose notification is [`LATE_NS`] overdue was
    /// lost (`drivers-timer-api`'s module docs): it is set again, and the
    /// call lets the timer recover the interrupt it lost.
    pub fn plan(&mut self, deadline: Option<u64>, now: u64) -> AlarmAction {
        match (self.armed, deadline) {
            (_, None) => AlarmAction::Nothing,
            (Some(armed), Some(at)) if self.doubtful || now >= armed.saturating_add(LATE_NS) => {
                self.doubtful = false;
                self.armed = Some(at);
                AlarmAction::Replace(at)
            }
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
        self.doubtful = false;
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
        assert_eq!(alarm.plan(None, 0), AlarmAction::Nothing);
        assert_eq!(alarm.plan(Some(100), 0), AlarmAction::Set(100));
        assert_eq!(alarm.plan(Some(150), 0), AlarmAction::Nothing, "the earlier wake-up re-plans");
        assert_eq!(alarm.plan(Some(100), 0), AlarmAction::Nothing);
        assert_eq!(alarm.plan(Some(40), 0), AlarmAction::Replace(40));
        alarm.fired(40);
        assert_eq!(alarm.armed(), None);
        assert_eq!(alarm.plan(Some(150), 40), AlarmAction::Set(150));
        alarm.failed();
        assert_eq!(alarm.plan(Some(150), 40), AlarmAction::Set(150));
    }

    /// A notification before the pending deadline (a restarted timer
    /// tells every client, and holds no timeouts) makes the next plan set
    /// it again, cancelling whatever the timer may still hold; a deadline
    /// that passes clears the doubt. Fails if an early notification leaves
    /// the alarm trusted (the PD would wait for a timeout nobody holds).
    /// A notification [`LATE_NS`] overdue was lost (the timer lost its
    /// interrupt): the next plan sets the timeout again, which also makes
    /// the call that lets the timer recover; one merely late is waited
    /// for. Fails if a lost notification leaves the alarm trusted (the PD
    /// would wait for ever), or if any late one is set again.
    #[test]
    fn a_notification_overdue_by_late_ns_is_set_again() {
        let mut alarm = Alarm::new();
        assert_eq!(alarm.plan(Some(100), 0), AlarmAction::Set(100));
        assert_eq!(alarm.plan(Some(200), 100 + LATE_NS - 1), AlarmAction::Nothing, "late, not lost");
        assert_eq!(alarm.plan(Some(200), 100 + LATE_NS), AlarmAction::Replace(200), "lost");
        assert_eq!(alarm.armed(), Some(200));
        assert_eq!(alarm.plan(Some(300), 100 + LATE_NS), AlarmAction::Nothing, "once");
        alarm.fired(200);
        assert_eq!(alarm.plan(Some(300), 200 + 2 * LATE_NS), AlarmAction::Set(300), "nothing pending: nothing lost");
    }

    #[test]
    fn a_notification_before_the_deadline_sets_it_again() {
        let mut alarm = Alarm::new();
        assert_eq!(alarm.plan(Some(100), 40), AlarmAction::Set(100));
        alarm.fired(60);
        assert_eq!(alarm.armed(), Some(100), "perhaps still pending");
        assert_eq!(alarm.plan(Some(100), 60), AlarmAction::Replace(100), "set again");
        assert_eq!(alarm.plan(Some(100), 60), AlarmAction::Nothing, "once");
        alarm.fired(60);
        assert_eq!(alarm.plan(None, 60), AlarmAction::Nothing, "no deadline, no timeout");
        assert_eq!(alarm.plan(Some(120), 60), AlarmAction::Replace(120), "the doubt stays until a plan acts on it");
        alarm.fired(130);
        assert_eq!(alarm.armed(), None);
        assert_eq!(alarm.plan(Some(200), 130), AlarmAction::Set(200), "passed: nothing to cancel");
        assert_eq!(alarm.plan(Some(300), 130), AlarmAction::Nothing);
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
