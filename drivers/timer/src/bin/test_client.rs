//! timer-test-client: a PD for the integration tests. Sets timeouts in
//! shuffled order, one longer than a PIT shot, and logs each expiry with
//! the time read from the timer, so that a test can check their order and
//! lateness from the console. It also logs the timer's wall clock (the
//! boot epoch and `now()`), which the test compares with the host's.
#![no_std]
#![no_main]

use drivers_timer_api::Timer;
use pds_runtime::{log, ChannelSet, Handler};

// The timer, by the name of this PD's channel end in the description.
pds_runtime::channel!(TIMER_CHANNEL = "timer", call);
static TIMER: Timer = Timer::named(&TIMER_CHANNEL);
/// Timeouts, in the order they are set (120 ms needs three PIT shots).
const DELAYS_MS: [u64; 5] = [30, 10, 50, 20, 120];
/// `now()` reads checked for monotonicity at start.
const MONOTONIC_READS: u32 = 1000;

struct Client {
    deadlines: [u64; DELAYS_MS.len()],
    expired: [bool; DELAYS_MS.len()],
    last_now: u64,
}

impl Handler for Client {
    fn init() -> Self {
        let mut last = TIMER.now();
        let first = last;
        for _ in 0..MONOTONIC_READS {
            let now = TIMER.now();
            if now < last {
                log!("error: now() went backwards: {last} then {now}");
            }
            last = now;
        }
        log!(
            "now() read {MONOTONIC_READS} times: {} us apart on average",
            (last - first) / 1000 / u64::from(MONOTONIC_READS)
        );
        // The clock read locally is the timer's: each call's answer lies
        // between a local reading before and one after it.
        match TIMER.local_clock() {
            Some(mut local) => {
                let mut disagreements = 0;
                for _ in 0..MONOTONIC_READS {
                    let (before, now, after) = (local.now(), TIMER.now(), local.now());
                    if !(before <= now && now <= after) {
                        disagreements += 1;
                        if disagreements == 1 {
                            log!("error: the local clock disagrees with now(): {before} <= {now} <= {after} does not hold");
                        }
                    }
                }
                log!("local clock read against now() {MONOTONIC_READS} times: {disagreements} disagreements");
            }
            None => log!("error: the timer gives no TSC scale for a local clock"),
        }
        match TIMER.boot_epoch() {
            Some(epoch) => log!("wall clock: boot epoch {epoch} s; now {} ns", TIMER.now()),
            None => log!("error: the timer has no wall clock"),
        }
        let start = TIMER.now();
        let deadlines = DELAYS_MS.map(|ms| start + ms * 1_000_000);
        for (ms, &deadline) in DELAYS_MS.iter().zip(&deadlines) {
            match TIMER.set_timeout(deadline) {
                Ok(()) => log!("set {ms} ms timeout: deadline {deadline} ns"),
                Err(e) => log!("error: set {ms} ms timeout: {e:?}"),
            }
        }
        Client { deadlines, expired: [false; DELAYS_MS.len()], last_now: start }
    }

    fn notified(&mut self, channels: ChannelSet) {
        if !channels.contains(TIMER.channel()) {
            return;
        }
        let now = TIMER.now();
        if now < self.last_now {
            log!("error: now() went backwards: {} then {now}", self.last_now);
        }
        self.last_now = now;
        // Several timeouts may be due at one wake-up (this PD can run late
        // on a busy machine): report them by deadline, so that the log shows
        // the order in which they fell due, which the test checks.
        let was_done = self.expired.iter().all(|&e| e);
        let mut order: [usize; DELAYS_MS.len()] = core::array::from_fn(|i| i);
        order.sort_unstable_by_key(|&i| self.deadlines[i]);
        for i in order {
            if !self.expired[i] && self.deadlines[i] <= now {
                self.expired[i] = true;
                let late_us = (now - self.deadlines[i]) / 1000;
                log!(
                    "expired: {} ms timeout; deadline {} ns; now {now} ns; late {late_us} us",
                    DELAYS_MS[i],
                    self.deadlines[i]
                );
            }
        }
        // A notification may find nothing due: when this PD ran late, one
        // wake-up already handled a later timeout whose own notification
        // was still on its way. Spurious wake-ups are part of the contract.
        if !was_done && self.expired.iter().all(|&e| e) {
            log!("all {} timeouts expired", DELAYS_MS.len());
        }
    }
}

pds_runtime::protection_domain!(Client);
