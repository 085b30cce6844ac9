//! TSC to nanoseconds, and PIT arithmetic.

pub use drivers_timer_api::TscScale;

/// The PIT's input clock, the same on every PC (a third of the NTSC colour
/// burst frequency, 14.31818 MHz / 12).
pub const PIT_HZ: u64 = 1_193_182;
pub const NS_PER_SEC: u64 = 1_000_000_000;
/// Largest PIT count: a one-shot lasts at most this many ticks (54.9 ms).
pub const PIT_MAX_COUNT: u16 = u16::MAX;
/// PIT ticks measured for calibration: about 41.9 ms, within one count
/// down from [`PIT_MAX_COUNT`], so the counter never wraps meanwhile.
pub const CALIBRATION_TICKS: u16 = 50_000;
/// Counter reads after which a PIT that does not count is given up on.
pub const CALIBRATION_READ_LIMIT: u32 = 10_000_000;

/// Monotonic time from the TSC: nanoseconds since the TSC was zero (the
/// machine's reset, which is as close to boot as we can tell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Nanoseconds per TSC tick.
    scale: TscScale,
    tsc_hz: u64,
}

impl Clock {
    /// The clock for a TSC that advanced `tsc_ticks` while the PIT counted
    /// `pit_ticks`; `None` if either is zero or the TSC is implausibly slow
    /// (below 1 MHz).
    pub fn from_measurement(tsc_ticks: u64, pit_ticks: u64) -> Option<Clock> {
        if pit_ticks == 0 {
            return None;
        }
        let tsc_hz = u128::from(tsc_ticks) * u128::from(PIT_HZ) / u128::from(pit_ticks);
        if tsc_hz < 1_000_000 {
            return None;
        }
        // (1e9 << 32) * pit / (tsc * PIT_HZ): below 2^42 for a TSC of 1 MHz
        // or more, so it fits.
        let fp = (u128::from(NS_PER_SEC) << 32) * u128::from(pit_ticks) / (u128::from(tsc_ticks) * u128::from(PIT_HZ));
        Some(Clock { scale: TscScale(fp as u64), tsc_hz: tsc_hz as u64 })
    }

    /// A clock another life of the timer measured (`saved`): `None` if the
    /// frequency is below 1 MHz or the scale is zero.
    pub fn from_parts(scale: TscScale, tsc_hz: u64) -> Option<Clock> {
        (tsc_hz >= 1_000_000 && scale.0 != 0).then_some(Clock { scale, tsc_hz })
    }

    /// The measured TSC frequency.
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz
    }

    /// Nanoseconds at TSC value `tsc`. Monotonic in `tsc`.
    pub fn ns(&self, tsc: u64) -> u64 {
        self.scale.ns(tsc)
    }

    /// The scale [`ns`](Self::ns) applies, which clients read the clock
    /// with ([`TscScale`]).
    pub fn scale(&self) -> TscScale {
        self.scale
    }
}

/// The PIT count for a one-shot that ends no earlier than `ns` from now,
/// or as late as the PIT can if that is further: rounded up, and at least 1
/// (a count of 0 would mean 65536).
pub fn pit_count_for(ns: u64) -> u16 {
    let ticks = (u128::from(ns) * u128::from(PIT_HZ)).div_ceil(u128::from(NS_PER_SEC));
    ticks.clamp(1, u128::from(PIT_MAX_COUNT)) as u16
}

/// Nanoseconds a one-shot of `count` ticks lasts, rounded up.
pub fn pit_ns_for(count: u16) -> u64 {
    (u64::from(count) * NS_PER_SEC).div_ceil(PIT_HZ)
}

/// How long after a shot's end its interrupt may still be on its way (the
/// kernel's delivery, then this PD's turn to run, under a host that may
/// deschedule the guest for milliseconds) before [`Shot::lost`] gives it up.
pub const SHOT_LOST_NS: u64 = 20_000_000;
const _: () = assert!(SHOT_LOST_NS < drivers_timer_api::LATE_NS, "a client's late call must find the shot given up");

/// The PIT one-shot in flight, so that a deadline the shot already covers
/// does not reprogram the PIT.
///
/// Every reprogramming is port writes, each a system call and, under QEMU,
/// an emulated device access under its global lock (measured 2026-12-07:
/// with the NIC driver polling every 500 µs during a SYN flood, the timer
/// PD drew 24 % of the samples, reprogramming on every `SET_TIMEOUT` and
/// every interrupt). A shot that ends no later than the nearest deadline
/// is left alone: its interrupt comes in time, and the service it causes
/// programs the next shot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shot {
    /// When the shot in flight ends (ns), if one is.
    ends: Option<u64>,
}

impl Shot {
    /// The count to program at `now` for the nearest deadline `next`, or
    /// `None` if the shot in flight ends after `now` and no later than
    /// `next`.
    pub fn plan(&mut self, now: u64, next: u64) -> Option<u16> {
        if self.ends.is_some_and(|end| now < end && end <= next) {
            return None;
        }
        let count = pit_count_for(next.saturating_sub(now));
        self.ends = Some(now.saturating_add(pit_ns_for(count)));
        Some(count)
    }

    /// The shot's interrupt came: no shot is in flight.
    pub fn fired(&mut self) {
        self.ends = None;
    }

    /// Whether the shot in flight ended [`SHOT_LOST_NS`] or more before
    /// `now` and its interrupt was not seen. An edge-triggered line drops
    /// an edge that comes while it is masked (82093AA IOAPIC: "edge
    /// requests are ignored while the pin is masked"), and a PD that waits
    /// for a lost interrupt waits for ever: the timer's clients with it.
    /// A caller that finds a shot lost acknowledges the line (in case it
    /// stayed masked) and calls [`fired`](Self::fired), so that the next
    /// [`plan`](Self::plan) programs a new one.
    pub fn lost(&self, now: u64) -> bool {
        self.ends.is_some_and(|end| now >= end.saturating_add(SHOT_LOST_NS))
    }
}

/// PIT channel 0 as calibration needs it.
pub trait PitCounter {
    /// Starts counting down from `count` (mode 0).
    fn start(&mut self, count: u16);
    /// The current count (latched, so both bytes are from one instant).
    fn count(&mut self) -> u16;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalibrationError {
    /// The PIT's count did not move.
    PitStuck,
    /// The TSC did not advance plausibly.
    TscImplausible,
}

/// Measures the TSC against [`CALIBRATION_TICKS`] of the PIT. Each
/// endpoint pairs a counter read with the TSC read right after it, so the
/// error is about one counter read (a few microseconds) in 41.9 ms.
pub fn calibrate(pit: &mut impl PitCounter, mut tsc: impl FnMut() -> u64) -> Result<Clock, CalibrationError> {
    pit.start(PIT_MAX_COUNT);
    let first = pit.count();
    let tsc0 = tsc();
    for _ in 0..CALIBRATION_READ_LIMIT {
        let now = pit.count();
        let tsc1 = tsc();
        let elapsed = first.wrapping_sub(now);
        if (CALIBRATION_TICKS..PIT_MAX_COUNT).contains(&elapsed) {
            return Clock::from_measurement(tsc1.wrapping_sub(tsc0), u64::from(elapsed))
                .ok_or(CalibrationError::TscImplausible);
        }
    }
    Err(CalibrationError::PitStuck)
}
