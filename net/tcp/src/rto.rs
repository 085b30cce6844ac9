//! The retransmission timer (RFC 6298), one per connection.
//!
//! Time is the caller's: `u64` nanoseconds since boot, passed into every
//! call; the timer keeps no clock and never reads one.
//!
//! **Estimator (§2).** Until the first round-trip sample RTO is
//! [`INITIAL_RTO`] (§2.1). The first sample R sets SRTT = R and
//! RTTVAR = R/2 (§2.2); each later one sets, in this order,
//! RTTVAR = (1 − β)·RTTVAR + β·|SRTT − R| and SRTT = (1 − α)·SRTT + α·R
//! with α = 1/8, β = 1/4 (§2.3). Both are kept in integer fixed point,
//! scaled by 1/α and 1/β (`srtt8` = 8·SRTT, `rttvar4` = 4·RTTVAR, in
//! nanoseconds), so the two updates are a subtraction and a shift each
//! (Jacobson's form, as in BSD and Linux); nanoseconds leave the
//! truncations far below any clock that matters. After each sample
//! RTO = SRTT + max(G, 4·RTTVAR) (§2.2-2.3, G = [`GRANULARITY`]), then
//! clamped to [[`MIN_RTO`], [`MAX_RTO`]] (§2.4, §2.5).
//!
//! **Karn's algorithm (§3).** A segment that was retransmitted gives no
//! sample: the ACK cannot say which transmission it answers. The caller
//! says whether the timed segment was retransmitted ([`Sample`]); such a
//! sample is dropped, and the backed-off RTO stays until an ACK for a
//! segment that was not retransmitted yields a real sample.
//!
//! **Timer rules (§5), as the state [`Rto::deadline`]:**
//!
//! - (5.1) every send of data (first or again) arms the timer at
//!   now + RTO, unless it is already running: [`Rto::on_send`];
//! - (5.2) when all outstanding data is acknowledged the timer stops, and
//!   (5.3) an ACK of new data otherwise restarts it at now + RTO:
//!   [`Rto::on_ack`];
//! - (5.4) on expiry ([`Rto::expired`]) the connection retransmits the
//!   earliest unacknowledged segment; (5.5) RTO doubles, up to the maximum
//!   ("back off the timer"), and (5.6) the timer restarts at now + RTO:
//!   [`Rto::on_timeout`]. The backoff collapses at the next valid sample,
//!   which recomputes RTO from SRTT and RTTVAR.
//! - (5.7) says that if the timer expired while waiting for the ACK of a
//!   SYN, RTO is reset to 3 s when data transfer begins. It never applies
//!   here: this server keeps no state for a SYN (its SYN-ACK carries a SYN
//!   cookie, RFC 4987 §3.6), so it never times or retransmits a SYN-ACK —
//!   a lost SYN-ACK is recovered by the *client* retransmitting its SYN,
//!   which the server answers afresh. A connection, and this timer, exist
//!   only from the handshake's final ACK, and start at [`INITIAL_RTO`].
//!
//! §5's note that an implementation MAY clear SRTT and RTTVAR after
//! several backoffs is not taken: the next valid sample recomputes RTO
//! anyway, and the minimum RTO bounds what a stale estimate can do.
//! [`Rto::backoffs`] counts consecutive expiries so that the connection can
//! give up (RFC 9293 §3.8.3, R2).

/// Nanoseconds in a millisecond.
const MS: u64 = 1_000_000;

/// Nanoseconds in a second.
const SEC: u64 = 1_000 * MS;

/// RTO before any round-trip sample: 1 s (RFC 6298 §2.1, which lowered
/// RFC 1122's 3 s). A server meets its first data segment's ACK only after
/// the handshake, whose RTT it does not measure (it kept no SYN state), so
/// this value rules the first flight of every connection.
pub const INITIAL_RTO: u64 = SEC;

/// The lower bound on RTO: 200 ms, Linux's `TCP_RTO_MIN`, rather than
/// RFC 6298 §2.4's 1 s (a SHOULD). This server is meant for LANs and
/// datacentres, where RTTs are well under a millisecond and a short web
/// response often ends in a tail loss that no duplicate ACK can reveal —
/// RTO is then the only recovery, and a 1 s floor would make it cost a
/// thousand RTTs. The floor cannot go much lower because the peer may
/// delay its ACK (RFC 1122 §4.2.3.2): clients delay by up to 200 ms in
/// practice (Linux's `TCP_DELACK_MAX`, Windows' default), so a floor below
/// that would retransmit a lone segment spuriously each time a client
/// sat on its ACK. §2.4's conservatism was about coarse (500 ms) timer
/// ticks; this clock is nanoseconds.
pub const MIN_RTO: u64 = 200 * MS;

/// The upper bound on RTO, which also caps the backoff: 60 s, the least
/// RFC 6298 §2.5 allows ("at least 60 seconds"). A server gains nothing
/// from waiting longer than that to retry a client that is gone (Linux
/// uses 120 s); the connection gives up after a number of backoffs.
pub const MAX_RTO: u64 = 60 * SEC;

/// The clock granularity G of §2.2-2.3: 1 ms, the resolution at which the
/// server's timers are polled. It keeps RTO above SRTT when RTTVAR decays
/// towards zero; with [`MIN_RTO`] at 200 ms it matters only if that floor
/// is ever lowered.
pub const GRANULARITY: u64 = MS;

/// The largest round-trip sample taken as is: samples are clamped to
/// [`MAX_RTO`] (a longer RTT would give RTO = [`MAX_RTO`] anyway), which
/// keeps `8·SRTT` and `4·RTTVAR` far from `u64` overflow.
const MAX_SAMPLE: u64 = MAX_RTO;

/// One round-trip measurement, from the sending of a segment to the ACK
/// that first covered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The measured round-trip time, nanoseconds.
    pub rtt: u64,
    /// Whether the timed segment was sent more than once; such a sample is
    /// ambiguous and is dropped (Karn's algorithm, RFC 6298 §3).
    pub retransmitted: bool,
}

/// The retransmission timer of one connection: the RTT estimator, the
/// current (possibly backed-off) RTO, and the deadline when armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rto {
    /// 8·SRTT in nanoseconds; meaningful only when `measured`.
    srtt8: u64,
    /// 4·RTTVAR in nanoseconds; meaningful only when `measured`.
    rttvar4: u64,
    /// Whether a valid sample has been taken (§2.2 vs §2.3).
    measured: bool,
    /// The current RTO, backoff included, within [MIN_RTO, MAX_RTO].
    rto: u64,
    /// Consecutive expiries since the last valid sample.
    backoffs: u32,
    /// When the timer fires, if it is running.
    deadline: Option<u64>,
}

impl Default for Rto {
    fn default() -> Self {
        Self::new()
    }
}

impl Rto {
    /// A timer for a new connection: no sample, RTO = [`INITIAL_RTO`]
    /// (§2.1), not running.
    pub const fn new() -> Rto {
        Rto { srtt8: 0, rttvar4: 0, measured: false, rto: INITIAL_RTO, backoffs: 0, deadline: None }
    }

    /// The current RTO in nanoseconds, backoff included.
    pub const fn rto(&self) -> u64 {
        self.rto
    }

    /// SRTT in nanoseconds, once there has been a valid sample.
    pub const fn srtt(&self) -> Option<u64> {
        if self.measured {
            Some(self.srtt8 / 8)
        } else {
            None
        }
    }

    /// RTTVAR in nanoseconds, once there has been a valid sample.
    pub const fn rttvar(&self) -> Option<u64> {
        if self.measured {
            Some(self.rttvar4 / 4)
        } else {
            None
        }
    }

    /// When the timer fires, if it is running.
    pub const fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Expiries since the last valid sample: the connection compares this
    /// with its limit to give up (RFC 9293 §3.8.3).
    pub const fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// A segment carrying data (new or retransmitted) was sent at `now`:
    /// start the timer if it is not running (§5.1).
    pub fn on_send(&mut self, now: u64) {
        if self.deadline.is_none() {
            self.deadline = Some(now.saturating_add(self.rto));
        }
    }

    /// An ACK of new data arrived at `now`. `all_acked`: nothing is
    /// outstanding any more. `sample`: the round trip of the segment the
    /// connection was timing, if this ACK covered it.
    ///
    /// A valid sample (one not from a retransmitted segment, §3) updates
    /// SRTT and RTTVAR (§2.2-2.3) and recomputes RTO, ending any backoff.
    /// Then the timer stops if all is acknowledged (§5.2) or restarts at
    /// now + RTO (§5.3). Duplicate ACKs acknowledge nothing new and must
    /// not be reported here.
    pub fn on_ack(&mut self, now: u64, all_acked: bool, sample: Option<Sample>) {
        if let Some(s) = sample {
            if !s.retransmitted {
                self.take_sample(s.rtt);
            }
        }
        self.deadline = if all_acked { None } else { Some(now.saturating_add(self.rto)) };
    }

    /// Whether the timer is running and its deadline has come.
    pub fn expired(&self, now: u64) -> bool {
        matches!(self.deadline, Some(d) if now >= d)
    }

    /// The timer expired and the connection retransmitted the earliest
    /// unacknowledged segment (§5.4): back off, RTO = min(2·RTO, max)
    /// (§5.5), and restart the timer at now + RTO (§5.6).
    pub fn on_timeout(&mut self, now: u64) {
        self.rto = self.rto.saturating_mul(2).min(MAX_RTO);
        self.backoffs = self.backoffs.saturating_add(1);
        self.deadline = Some(now.saturating_add(self.rto));
    }

    /// An ACK of new data arrived without a valid sample (the segments it
    /// covers were all sent more than once): the backoff ends and RTO is
    /// computed again from the last estimate (or is [`INITIAL_RTO`] without
    /// one).
    ///
    /// A deliberate departure from §5.5, which keeps the backed-off RTO
    /// until a valid sample: after a timeout this TCP sends everything from
    /// SND.UNA again (go-back-N, without SACK or timestamps), and Karn's
    /// rule (§3) gives no sample until SND.UNA passes SND.MAX. With a
    /// backed-off RTO every further loss in that stretch would cost the
    /// whole backed-off interval (up to a minute). The backoff is there to
    /// stop hammering a path that delivers nothing; an ACK of new data shows
    /// this one delivers. (RFC 8961 §4 lets time-based loss detection adapt
    /// so.)
    pub fn on_progress(&mut self) {
        if self.backoffs == 0 {
            return;
        }
        self.backoffs = 0;
        self.rto = if self.measured {
            (self.srtt8 / 8 + GRANULARITY.max(self.rttvar4)).clamp(MIN_RTO, MAX_RTO)
        } else {
            INITIAL_RTO
        };
    }

    /// Feeds one valid round-trip sample `r` (§2.2 for the first, §2.3
    /// after) and recomputes RTO from the estimate, dropping any backoff.
    fn take_sample(&mut self, r: u64) {
        let r = r.min(MAX_SAMPLE);
        if self.measured {
            // §2.3, RTTVAR first (it uses the SRTT before this sample):
            // 4·RTTVAR' = 4·RTTVAR − RTTVAR + |SRTT − R|, i.e. β = 1/4.
            let srtt = self.srtt8 / 8;
            let err = srtt.abs_diff(r);
            self.rttvar4 = self.rttvar4 - self.rttvar4 / 4 + err;
            // 8·SRTT' = 8·SRTT − SRTT + R, i.e. α = 1/8.
            self.srtt8 = self.srtt8 - srtt + r;
        } else {
            // §2.2: SRTT = R, RTTVAR = R/2.
            self.srtt8 = 8 * r;
            self.rttvar4 = 2 * r;
            self.measured = true;
        }
        // RTO = SRTT + max(G, 4·RTTVAR), within [MIN_RTO, MAX_RTO] (§2.4-2.5).
        let rto = self.srtt8 / 8 + GRANULARITY.max(self.rttvar4);
        self.rto = rto.clamp(MIN_RTO, MAX_RTO);
        self.backoffs = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;

    fn valid(rtt: u64) -> Option<Sample> {
        Some(Sample { rtt, retransmitted: false })
    }

    #[test]
    fn rto_initial_is_one_second_and_the_timer_is_stopped() {
        // RFC 6298 §2.1.
        let t = Rto::new();
        assert_eq!(t.rto(), SEC);
        assert_eq!(t.srtt(), None);
        assert_eq!(t.deadline(), None);
        assert!(!t.expired(u64::MAX));
    }

    #[test]
    fn rto_first_sample_sets_srtt_and_half_rttvar() {
        // RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR.
        let mut t = Rto::new();
        t.on_send(0);
        t.on_ack(300 * MS, true, valid(300 * MS));
        assert_eq!(t.srtt(), Some(300 * MS));
        assert_eq!(t.rttvar(), Some(150 * MS));
        assert_eq!(t.rto(), 300 * MS + 600 * MS);
    }

    #[test]
    fn rto_second_sample_updates_with_alpha_eighth_and_beta_quarter() {
        // RFC 6298 §2.3, RTTVAR from the old SRTT:
        // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5 ms,
        // SRTT = 7/8·100 + 1/8·200 = 112.5 ms, RTO = 112.5 + 4·62.5 = 362.5 ms.
        let mut t = Rto::new();
        t.on_ack(0, false, valid(100 * MS));
        t.on_ack(0, false, valid(200 * MS));
        assert_eq!(t.rttvar(), Some(62_500_000));
        assert_eq!(t.srtt(), Some(112_500_000));
        assert_eq!(t.rto(), 362_500_000);
        // A third sample below SRTT: RTTVAR = 3/4·62.5 + 1/4·|112.5 − 50|.
        t.on_ack(0, false, valid(50 * MS));
        assert_eq!(t.rttvar(), Some(62_500_000));
        assert_eq!(t.srtt(), Some(104_687_500));
    }

    #[test]
    fn rto_is_never_below_the_minimum() {
        // RFC 6298 §2.4 (with this server's 200 ms floor): a LAN RTT of
        // 50 µs would give RTO = 150 µs.
        let mut t = Rto::new();
        for _ in 0..100 {
            t.on_ack(0, false, valid(50_000));
        }
        assert_eq!(t.srtt(), Some(50_000));
        assert_eq!(t.rto(), MIN_RTO);
    }

    #[test]
    fn rto_granularity_bounds_the_variance_term() {
        // RFC 6298 §2.3: RTO = SRTT + max(G, 4·RTTVAR). A steady 2 s RTT
        // drives RTTVAR to 0, so RTO tends to SRTT + G.
        let mut t = Rto::new();
        for _ in 0..200 {
            t.on_ack(0, false, valid(2 * SEC));
        }
        assert_eq!(t.rttvar(), Some(0));
        assert_eq!(t.rto(), 2 * SEC + GRANULARITY);
    }

    #[test]
    fn rto_is_never_above_the_maximum() {
        // RFC 6298 §2.5: a maximum of at least 60 s, for samples and backoff.
        let mut t = Rto::new();
        t.on_ack(0, false, valid(50 * SEC));
        assert_eq!(t.rto(), MAX_RTO);
        t.on_ack(0, false, valid(u64::MAX));
        assert_eq!(t.rto(), MAX_RTO);
        for i in 0..100 {
            t.on_timeout(i);
            assert_eq!(t.rto(), MAX_RTO);
        }
    }

    #[test]
    fn rto_karn_no_sample_from_retransmission() {
        // RFC 6298 §3: an ACK for a retransmitted segment is ambiguous, so
        // it neither moves the estimate nor undoes the backoff.
        let mut t = Rto::new();
        t.on_ack(0, false, valid(100 * MS));
        let before = t;
        t.on_timeout(10 * SEC);
        let backed_off = t.rto();
        assert_eq!(backed_off, 2 * before.rto());
        t.on_ack(11 * SEC, false, Some(Sample { rtt: 5 * MS, retransmitted: true }));
        assert_eq!(t.srtt(), before.srtt());
        assert_eq!(t.rttvar(), before.rttvar());
        assert_eq!(t.rto(), backed_off, "the backed-off RTO is kept");
        assert_eq!(t.backoffs(), 1);
    }

    #[test]
    fn rto_backoff_doubles_on_expiry_and_restarts_the_timer() {
        // RFC 6298 §5.5 (RTO = 2·RTO) and §5.6 (restart at now + RTO).
        let mut t = Rto::new();
        t.on_send(0);
        assert!(!t.expired(SEC - 1));
        assert!(t.expired(SEC));
        t.on_timeout(SEC);
        assert_eq!(t.rto(), 2 * SEC);
        assert_eq!(t.deadline(), Some(3 * SEC));
        t.on_timeout(3 * SEC);
        assert_eq!(t.rto(), 4 * SEC);
        assert_eq!(t.deadline(), Some(7 * SEC));
        assert_eq!(t.backoffs(), 2);
    }

    #[test]
    fn rto_backoff_collapses_after_a_new_sample() {
        // RFC 6298 §5 and §3: a valid sample recomputes RTO from SRTT and
        // RTTVAR, so the doubled value goes.
        let mut t = Rto::new();
        t.on_ack(0, false, valid(100 * MS));
        let rto = t.rto();
        for i in 1..5 {
            t.on_timeout(i * SEC);
        }
        assert_eq!(t.rto(), 16 * rto);
        t.on_ack(10 * SEC, false, valid(100 * MS));
        assert_eq!(t.backoffs(), 0);
        assert!(t.rto() < 2 * rto, "the backoff collapsed: {}", t.rto());
    }

    #[test]
    fn rto_send_arms_only_a_stopped_timer() {
        // RFC 6298 §5.1: "if the timer is not running, start it".
        let mut t = Rto::new();
        t.on_send(5);
        t.on_send(500 * MS);
        assert_eq!(t.deadline(), Some(5 + SEC));
    }

    #[test]
    fn rto_all_acked_stops_the_timer() {
        // RFC 6298 §5.2.
        let mut t = Rto::new();
        t.on_send(0);
        t.on_ack(10 * MS, true, None);
        assert_eq!(t.deadline(), None);
        assert!(!t.expired(u64::MAX));
    }

    #[test]
    fn rto_ack_of_new_data_restarts_the_timer() {
        // RFC 6298 §5.3: restart at now + RTO (the current RTO).
        let mut t = Rto::new();
        t.on_send(0);
        t.on_ack(700 * MS, false, None);
        assert_eq!(t.deadline(), Some(700 * MS + SEC));
        t.on_ack(800 * MS, false, valid(800 * MS));
        assert_eq!(t.deadline(), Some(800 * MS + t.rto()));
    }

    /// Random sends, ACKs (valid, retransmitted, or no sample) and expiries
    /// against the rules: RTO within [MIN_RTO, MAX_RTO]; a running timer's
    /// deadline within now + MAX_RTO; SRTT within the range of the valid
    /// samples; after a valid sample no backoff and RTO = SRTT +
    /// max(G, 4·RTTVAR) clamped, with SRTT and RTTVAR within a few ns of
    /// the §2.2-2.3 formulas computed exactly; a retransmitted sample
    /// changes nothing but the deadline.
    #[test]
    fn rto_random_events_keep_the_rfc6298_invariants() {
        let mut rng = Rng(0x6298);
        for _ in 0..200 {
            let mut t = Rto::new();
            let mut now = 0u64;
            let (mut lo, mut hi) = (u64::MAX, 0u64);
            // The RFC's formulas in exact arithmetic (α and β are binary
            // fractions), scaled by 2^16: (SRTT, RTTVAR).
            let mut exact: Option<(u128, u128)> = None;
            for _ in 0..500 {
                now += rng.next() % (2 * SEC);
                match rng.below(5) {
                    0 => {
                        let armed = t.deadline();
                        t.on_send(now);
                        if armed.is_some() {
                            assert_eq!(t.deadline(), armed, "5.1: running timer kept");
                        }
                    }
                    1 | 2 => {
                        // Log-uniform RTTs from 1 µs to ~100 s.
                        let rtt = 1_000u64 << rng.below(27);
                        let rtt = rtt + rng.next() % rtt;
                        let retransmitted = rng.below(4) == 0;
                        let all = rng.below(2) == 0;
                        let before = t;
                        let sample = if rng.below(5) == 0 { None } else { Some(Sample { rtt, retransmitted }) };
                        t.on_ack(now, all, sample);
                        match sample {
                            Some(s) if !s.retransmitted => {
                                let r = s.rtt.min(MAX_SAMPLE);
                                lo = lo.min(r);
                                hi = hi.max(r);
                                let r16 = u128::from(r) << 16;
                                exact = Some(match exact {
                                    None => (r16, r16 / 2),
                                    Some((srtt, var)) => ((7 * srtt + r16) / 8, (3 * var + srtt.abs_diff(r16)) / 4),
                                });
                                let (srtt, var) = exact.unwrap();
                                let near = |got: u64, want: u128| (u128::from(got) << 16).abs_diff(want) <= 16 << 16;
                                assert!(near(t.srtt().unwrap(), srtt), "SRTT drifted from §2.3");
                                assert!(near(t.rttvar().unwrap(), var), "RTTVAR drifted from §2.3");
                                assert_eq!(t.backoffs(), 0);
                                let want = t.srtt().unwrap() + GRANULARITY.max(t.rttvar4);
                                assert_eq!(t.rto(), want.clamp(MIN_RTO, MAX_RTO));
                            }
                            _ => {
                                assert_eq!((t.srtt(), t.rttvar()), (before.srtt(), before.rttvar()));
                                assert_eq!(t.rto(), before.rto());
                                assert_eq!(t.backoffs(), before.backoffs());
                            }
                        }
                        assert_eq!(t.deadline().is_none(), all, "5.2/5.3");
                    }
                    3 => {
                        if t.expired(now) {
                            let before = t.rto();
                            t.on_timeout(now);
                            assert_eq!(t.rto(), (2 * before).min(MAX_RTO), "5.5");
                            assert_eq!(t.deadline(), Some(now + t.rto()), "5.6");
                        }
                    }
                    _ => {
                        t.on_timeout(now);
                    }
                }
                assert!((MIN_RTO..=MAX_RTO).contains(&t.rto()), "rto {}", t.rto());
                if let Some(d) = t.deadline() {
                    assert!(d <= now + MAX_RTO);
                }
                if let Some(s) = t.srtt() {
                    // Truncation may put SRTT a few ns under the least sample.
                    assert!(s + 8 >= lo && s <= hi, "srtt {s} outside [{lo}, {hi}]");
                }
            }
        }
    }
}
