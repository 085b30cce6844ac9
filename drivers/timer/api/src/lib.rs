//! How PDs talk to the timer PD, and the calls they make.
//!
//! The timer accepts protected calls (`pp="true"`, at a higher priority
//! than its clients) on a channel per client:
//!
//! | label | arguments | reply |
//! |---|---|---|
//! | [`label::NOW`] | none | MR0: nanoseconds since boot |
//! | [`label::SET_TIMEOUT`] | MR0: absolute deadline, ns since boot | label [`status::OK`] or [`status::FULL`] |
//! | [`label::CANCEL_ALL`] | none | label [`status::OK`] |
//! | [`label::BOOT_EPOCH`] | none | label [`status::OK`], MR0: the Unix time (seconds) at which `NOW` read 0; or label [`status::NO_CLOCK`] |
//! | [`label::TSC_SCALE`] | none | label [`status::OK`], MR0: the [`TscScale`] `NOW` is computed with |
//!
//! Deadlines are absolute, in the clock `NOW` reads: a client that wants a
//! period adds it to its last deadline and never drifts. Each client may
//! have [`TIMEOUTS_PER_CLIENT`] timeouts pending. When one or more of them
//! have passed, the timer notifies the client's channel once; the client
//! reads `NOW` and compares with its own deadlines to see which.
//! A deadline already past is notified at once.
//!
//! A notification later than [`LATE_NS`] after its deadline was lost: the
//! PIT's interrupt is an edge, which the interrupt controller drops while
//! the line is masked. A client that sees its timeout that late sets it
//! again; the timer, on any call, gives up a shot whose interrupt is
//! overdue, unmasks the line and programs a new one. So a lost interrupt
//! delays timeouts until some client's next call, never for ever.
//!
//! The wall clock: the timer reads the CMOS real-time clock once at boot
//! (it alone holds its ports) and answers `BOOT_EPOCH` with the Unix time
//! at which `NOW` read 0, so that a client's wall-clock time is
//! `boot_epoch + now / 10^9` seconds, in the same clock as its timeouts.
//! Without the clock's ports in its description, or with a clock that does
//! not hold a date, the timer answers [`status::NO_CLOCK`].
//!
//! Reading the clock without a call: `NOW` is the time-stamp counter
//! scaled by the factor the timer calibrated at boot ([`TscScale`]), and
//! the TSC is readable at user level. A client that asks for the factor
//! once (`TSC_SCALE`) computes the same time locally with a
//! [`LocalClock`], in the clock its deadlines are compared with: a busy
//! server saves two context switches per reading (under QEMU's TCG, where
//! each switch of address space flushes the emulated TLB, that is tens of
//! microseconds per wake-up).
//!
//! A restarted timer (README, "Recovery") keeps its clock and wall clock
//! (the same `NOW`, the same [`TscScale`]) but not the pending timeouts:
//! it notifies every client once, and a client whose deadline has not
//! passed sets its timeout again. A call it died in is made again.
#![no_std]

use pds_boot_spec::monitor_protocol::LABEL_SERVER_RESTARTED;
use pds_runtime::{get_mr, msginfo, set_mr, Channel, MessageInfo, NamedChannel};

/// Message labels of the calls.
pub mod label {
    pub const NOW: u64 = 1;
    pub const SET_TIMEOUT: u64 = 2;
    pub const CANCEL_ALL: u64 = 3;
    pub const BOOT_EPOCH: u64 = 4;
    pub const TSC_SCALE: u64 = 5;
}

/// Reply labels.
pub mod status {
    pub const OK: u64 = 0;
    /// The client already has [`TIMEOUTS_PER_CLIENT`](super::TIMEOUTS_PER_CLIENT) pending.
    pub const FULL: u64 = 1;
    /// Unknown label, or a channel that is not a client's.
    pub const REFUSED: u64 = 2;
    /// `BOOT_EPOCH`: the timer has no wall clock (no CMOS ports, or the
    /// clock does not hold a date).
    pub const NO_CLOCK: u64 = 3;
}

/// How the timer turns the time-stamp counter into nanoseconds:
/// nanoseconds per TSC tick as a 32.32 fixed-point number, so that
/// `ns = tsc * scale >> 32`, counted from the TSC's zero (the machine's
/// reset, as close to boot as can be told). One formula for the timer and
/// its clients, so that both read the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscScale(pub u64);

impl TscScale {
    /// Nanoseconds at TSC value `tsc`; monotonic in `tsc`.
    pub const fn ns(self, tsc: u64) -> u64 {
        ((tsc as u128 * self.0 as u128) >> 32) as u64
    }
}

/// The timer's clock, read in this PD: [`TscScale`] applied to the TSC,
/// never going backwards (the timer's `NOW` is also the largest time it
/// has handed out, so the two agree to within one reading).
#[derive(Clone, Copy, Debug)]
pub struct LocalClock {
    scale: TscScale,
    last: u64,
}

impl LocalClock {
    pub const fn new(scale: TscScale) -> Self {
        LocalClock { scale, last: 0 }
    }

    /// Nanoseconds since boot, as [`Timer::now`] would answer.
    pub fn now(&mut self) -> u64 {
        self.last = self.last.max(self.scale.ns(rdtsc()));
        self.last
    }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter; seL4 leaves it
    // available at user level (CR4.TSD clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// How late after its deadline a timeout's notification counts as lost
/// (see the module's docs): more than the timer waits for a shot's
/// interrupt before giving it up (`drivers-timer-core`'s `SHOT_LOST_NS`),
/// so that the call the client makes then finds the shot given up.
pub const LATE_NS: u64 = 50_000_000;

/// Timeouts one client may have pending at once.
pub const TIMEOUTS_PER_CLIENT: usize = 8;

/// Why a timeout was not armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Too many pending timeouts for this client.
    Full,
    /// The timer refused the call (reply label).
    Refused(u64),
}

/// The timer PD, seen from a client through its channel, which the client
/// knows by name:
///
/// ```ignore
/// pds_runtime::channel!(TIMER_CHANNEL = "timer", call); // <end ... setvar_id="timer"/>
/// static TIMER: Timer = Timer::named(&TIMER_CHANNEL);
/// let now = TIMER.now();
/// ```
#[derive(Clone, Copy)]
pub struct Timer(&'static NamedChannel);

impl Timer {
    pub const fn named(channel: &'static NamedChannel) -> Self {
        Timer(channel)
    }

    /// The channel the timer notifies when a timeout expires.
    pub fn channel(self) -> Channel {
        self.0.get()
    }

    /// Calls with `label` and the message registers `args`; a call the
    /// timer died in (answered `LABEL_SERVER_RESTARTED` by its next life)
    /// is made again, once: every call is one the new life can answer.
    fn call(self, label: u64, args: &[u64]) -> MessageInfo {
        let send = || {
            for (i, &a) in args.iter().enumerate() {
                set_mr(i, a);
            }
            self.channel().pp_call(msginfo(label, args.len() as u64))
        };
        match send() {
            reply if reply.label() == LABEL_SERVER_RESTARTED => send(),
            reply => reply,
        }
    }

    /// Nanoseconds since boot; never goes backwards.
    ///
    /// # Panics
    /// If the timer does not answer with a time: a timer stopped for good
    /// answers `LABEL_SERVER_STOPPED`, and the caller cannot go on without
    /// a clock (its fault policy decides what happens to it).
    pub fn now(self) -> u64 {
        let reply = self.call(label::NOW, &[]);
        assert!(
            reply.label() == status::OK && reply.length() == 1,
            "the timer answered NOW with label {:#x}",
            reply.label()
        );
        get_mr(0)
    }

    /// Asks for a notification once the clock reaches `deadline_ns`.
    pub fn set_timeout(self, deadline_ns: u64) -> Result<(), Error> {
        match self.call(label::SET_TIMEOUT, &[deadline_ns]).label() {
            status::OK => Ok(()),
            status::FULL => Err(Error::Full),
            other => Err(Error::Refused(other)),
        }
    }

    /// Asks for a notification `ns` from now; returns the deadline.
    pub fn set_timeout_after(self, ns: u64) -> Result<u64, Error> {
        let deadline = self.now().saturating_add(ns);
        self.set_timeout(deadline).map(|()| deadline)
    }

    /// The Unix time, in seconds, at which [`Timer::now`] read 0 (the wall
    /// clock at boot, read once by the timer), or `None` if the timer has
    /// no wall clock.
    pub fn boot_epoch(self) -> Option<u64> {
        match self.call(label::BOOT_EPOCH, &[]).label() {
            status::OK => Some(get_mr(0)),
            _ => None,
        }
    }

    /// The scale `NOW` is computed with, for a [`LocalClock`]; `None` if
    /// the timer does not say.
    pub fn tsc_scale(self) -> Option<TscScale> {
        match self.call(label::TSC_SCALE, &[]).label() {
            status::OK => Some(TscScale(get_mr(0))),
            _ => None,
        }
    }

    /// A clock read in this PD without calls, in the time [`now`](Self::now)
    /// reads; the call itself when the timer does not give its scale.
    pub fn local_clock(self) -> Option<LocalClock> {
        self.tsc_scale().map(LocalClock::new)
    }

    /// Drops all of this client's pending timeouts.
    pub fn cancel_all(self) {
        self.call(label::CANCEL_ALL, &[]);
    }
}
