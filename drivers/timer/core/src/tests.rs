extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;

#[test]
fn clock_converts_at_the_measured_rate() {
    // A 2 GHz TSC: 50_000 PIT ticks take 50_000 / 1_193_182 s.
    let pit = 50_000u64;
    let tsc = 2_000_000_000u128 * u128::from(pit) / u128::from(PIT_HZ);
    let clock = Clock::from_measurement(tsc as u64, pit).unwrap();
    assert!(clock.tsc_hz().abs_diff(2_000_000_000) < 100, "{}", clock.tsc_hz());
    assert!(clock.ns(2_000_000_000).abs_diff(NS_PER_SEC) < 100);
    assert_eq!(clock.ns(0), 0);
    // A day of uptime converts without overflow or drift beyond 1e-9.
    let day = 86_400 * 2_000_000_000u64;
    assert!(clock.ns(day).abs_diff(86_400 * NS_PER_SEC) < 86_400 * 2);
}

#[test]
fn clock_is_monotonic_and_rejects_nonsense() {
    let clock = Clock::from_measurement(123_456_789, 49_999).unwrap();
    let mut last = 0;
    for tsc in (0..10_000_000u64).step_by(997) {
        let ns = clock.ns(tsc);
        assert!(ns >= last);
        last = ns;
    }
    assert_eq!(Clock::from_measurement(1000, 0), None);
    assert_eq!(Clock::from_measurement(10, 50_000), None, "a 238 Hz TSC is not plausible");
}

#[test]
fn pit_counts_round_up_and_clamp() {
    assert_eq!(pit_count_for(0), 1);
    assert_eq!(pit_count_for(1), 1);
    assert_eq!(pit_count_for(1_000_000), 1194, "1 ms is 1193.182 ticks, rounded up");
    assert_eq!(pit_count_for(54_925_000), 65_535);
    assert_eq!(pit_count_for(200_000_000), PIT_MAX_COUNT);
    // Never early: the count's duration covers the request.
    for ns in [10_000u64, 838, 839, 20_000_000, 54_000_000] {
        let count = u64::from(pit_count_for(ns));
        assert!(count * NS_PER_SEC >= ns * PIT_HZ, "{ns} ns");
    }
}

/// A shot is programmed only when no shot in flight ends in time: a later
/// deadline leaves it, an earlier one replaces it, and after its interrupt
/// the next deadline programs one again. Shots are never late for the
/// deadline they were programmed for, and never reprogrammed for one they
/// cover (fails if `plan` reprograms always, or never).
#[test]
fn a_shot_in_flight_that_ends_in_time_is_left_alone() {
    let ms = 1_000_000;
    let mut shot = Shot::default();
    let first = shot.plan(0, 5 * ms).expect("nothing in flight");
    assert!(pit_ns_for(first) >= 5 * ms);
    assert_eq!(shot.plan(ms, 6 * ms), None, "a later deadline: the shot comes first");
    assert_eq!(shot.plan(2 * ms, 5 * ms + pit_ns_for(1)), None, "the same deadline");
    let earlier = shot.plan(2 * ms, 3 * ms).expect("an earlier deadline");
    assert!(2 * ms + pit_ns_for(earlier) >= 3 * ms && pit_ns_for(earlier) < 2 * ms);
    assert_eq!(shot.plan(2 * ms, 4 * ms), None);
    // The end passed before its interrupt was seen: program again.
    assert!(shot.plan(4 * ms, 9 * ms).is_some());
    shot.fired();
    assert!(shot.plan(9 * ms, 9 * ms).is_some(), "after the interrupt");
    // A deadline beyond the longest shot: the PIT's longest, and later
    // deadlines wait for its interrupt.
    shot.fired();
    assert_eq!(shot.plan(10 * ms, 500 * ms), Some(PIT_MAX_COUNT));
    assert_eq!(shot.plan(11 * ms, 400 * ms), None);
}

/// A shot whose interrupt is overdue by [`SHOT_LOST_NS`] counts as lost,
/// one still within it does not, and none is lost once its interrupt came
/// or when none is in flight (fails if `lost` ignores the grace, or forgets
/// `fired`).
#[test]
fn a_shot_whose_interrupt_never_came_is_lost() {
    let ms = 1_000_000;
    let mut shot = Shot::default();
    assert!(!shot.lost(u64::MAX), "nothing in flight");
    let count = shot.plan(0, 5 * ms).expect("nothing in flight");
    let end = pit_ns_for(count);
    assert!(!shot.lost(end));
    assert!(!shot.lost(end + SHOT_LOST_NS - 1));
    assert!(shot.lost(end + SHOT_LOST_NS));
    shot.fired();
    assert!(!shot.lost(end + SHOT_LOST_NS), "its interrupt came");
}

/// A PIT that counts `per_read` ticks between reads, and a TSC at `hz`
/// that follows it.
struct FakePit {
    count: u16,
    per_read: u16,
    elapsed_ticks: u64,
}

impl PitCounter for FakePit {
    fn start(&mut self, count: u16) {
        self.count = count;
    }
    fn count(&mut self) -> u16 {
        self.count = self.count.wrapping_sub(self.per_read);
        self.elapsed_ticks += u64::from(self.per_read);
        self.count
    }
}

#[test]
fn calibration_measures_the_tsc_against_the_pit() {
    let hz = 3_400_000_000u64;
    let pit = core::cell::RefCell::new(FakePit { count: 0, per_read: 7, elapsed_ticks: 0 });
    let tsc = || (u128::from(pit.borrow().elapsed_ticks) * u128::from(hz) / u128::from(PIT_HZ)) as u64;
    let clock = calibrate(&mut Wrapper(&pit), tsc).unwrap();
    assert!(clock.tsc_hz().abs_diff(hz) < hz / 100_000, "{}", clock.tsc_hz());

    let mut stuck = FakePit { count: 0, per_read: 0, elapsed_ticks: 0 };
    assert_eq!(calibrate(&mut stuck, || 0), Err(CalibrationError::PitStuck));
}

struct Wrapper<'a>(&'a core::cell::RefCell<FakePit>);
impl PitCounter for Wrapper<'_> {
    fn start(&mut self, count: u16) {
        self.0.borrow_mut().start(count)
    }
    fn count(&mut self) -> u16 {
        self.0.borrow_mut().count()
    }
}

#[test]
fn timeouts_expire_by_deadline_and_report_their_clients() {
    let mut t: Timeouts<4, 3> = Timeouts::new();
    assert_eq!(t.next(), None);
    for (client, deadline) in [(1, 30), (0, 10), (1, 50), (2, 20), (1, 120)] {
        t.arm(client, deadline).unwrap();
    }
    assert_eq!(t.arm(1, 7), Err(ArmError::Full));
    assert_eq!(t.arm(4, 7), Err(ArmError::NoSuchClient));
    let mut order = Vec::new();
    let mut now = 0;
    while let Some(next) = t.next() {
        assert!(next >= now);
        now = next;
        let expired = t.expire(now);
        order.push((now, expired.iter().collect::<Vec<_>>()));
    }
    assert_eq!(order, [(10, vec![0]), (20, vec![2]), (30, vec![1]), (50, vec![1]), (120, vec![1])]);
    assert!(t.expire(u64::MAX).is_empty());
}

#[test]
fn expiry_takes_everything_due_and_cancel_clears_a_client() {
    let mut t: Timeouts<3, 4> = Timeouts::new();
    t.arm(0, 5).unwrap();
    t.arm(0, 6).unwrap();
    t.arm(2, 7).unwrap();
    t.arm(2, 100).unwrap();
    assert_eq!(t.expire(4), Expired(0));
    assert_eq!(t.expire(50).iter().collect::<Vec<_>>(), [0, 2]);
    assert_eq!((t.pending(0), t.pending(2)), (0, 1));
    t.cancel_all(2);
    assert_eq!(t.next(), None);
    // Freed slots are reusable.
    for d in 0..4 {
        t.arm(1, d).unwrap();
    }
    assert_eq!(t.arm(1, 9), Err(ArmError::Full));
}
