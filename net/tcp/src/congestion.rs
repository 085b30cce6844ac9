//! Congestion control: NewReno (RFC 5681 with the RFC 6582 fast-recovery
//! modifications), counted in bytes with the sender's maximum segment size
//! SMSS fixed when the connection is made.
//!
//! The connection classifies every ACK with [`classify_ack`] and reports
//! it: [`NewReno::on_ack`] for one that acknowledges new data,
//! [`NewReno::on_dup_ack`] for a duplicate; [`NewReno::on_timeout`] when
//! the retransmission timer fires; [`NewReno::on_send`] before sending.
//! It may have at most [`NewReno::window`] bytes (less the peer's
//! window, whichever is smaller) unacknowledged, and it retransmits the
//! first unacknowledged segment when told [`Action::RetransmitFirstUnacked`].
//!
//! **Duplicate ACKs (RFC 5681 §2).** An ACK is a duplicate when (a) data
//! is outstanding, (b) it carries no data, (c) SYN and FIN are off, (d)
//! its acknowledgment number equals SND.UNA, and (e) it advertises the
//! same window as the last ACK. Anything else at SND.UNA (a window update,
//! a data segment) does not count: [`classify_ack`].
//!
//! **Initial window.** IW = min(10·SMSS, max(2·SMSS, 14600)) bytes, RFC
//! 6928 §2, rather than RFC 5681 §3.1's min(4·SMSS, max(2·SMSS, 4380)):
//! see [`IW_SEGMENTS`]. ssthresh starts "arbitrarily high" (§3.1).
//!
//! **Slow start (RFC 5681 §3.1)**, while cwnd < ssthresh: each ACK of N
//! new bytes adds min(N, L) with Appropriate Byte Counting (RFC 3465
//! §2.2) and L = 2·SMSS ([`ABC_LIMIT_SEGMENTS`]); in the slow start that
//! follows a retransmission timeout L = 1·SMSS (RFC 3465 §2.3), since an
//! ACK then may cover data that left the network long ago.
//!
//! **Congestion avoidance (RFC 5681 §3.1, RFC 3465 §2.1)**, while cwnd ≥
//! ssthresh: byte counting, the form §3.1 prefers to SMSS·SMSS/cwnd per
//! ACK (exact in integers, and it never rounds to zero): newly acked
//! bytes accumulate in `bytes_acked`; when it reaches cwnd, cwnd is
//! subtracted from it and cwnd grows by one SMSS — one SMSS per window
//! acknowledged, i.e. per RTT.
//!
//! **Fast retransmit and fast recovery (RFC 5681 §3.2, RFC 6582 §3.2).**
//! The variable `recover` starts at SND.UNA when the connection is made
//! (RFC 6582 step 1 sets it to the ISS; SND.UNA = ISS + 1 is the same
//! bound). On the third duplicate ACK, outside recovery:
//!
//! - only if the ACK covers more than `recover` (RFC 6582 step 2) — else
//!   the duplicates are echoes of a loss already dealt with, and nothing
//!   happens; `recover` is kept here as one past the highest sequence
//!   number sent (SND.MAX), so "covers more than" is `ack >= recover`;
//! - `recover` = SND.MAX, ssthresh = max(FlightSize/2, 2·SMSS) (RFC 5681
//!   eq. 4), the first unacknowledged segment is retransmitted, and cwnd =
//!   ssthresh + 3·SMSS (§3.2 steps 2-3).
//!
//! In recovery each further duplicate inflates cwnd by SMSS (§3.2 step 4).
//! An ACK of new data that does not reach `recover` is a *partial ACK*
//! (RFC 6582 step 3): the next hole is retransmitted at once, cwnd is
//! deflated by the bytes acknowledged and SMSS added back if at least SMSS
//! was acknowledged (never below one SMSS), and recovery goes on. An ACK
//! that reaches `recover` is a *full ACK*: recovery ends with cwnd =
//! min(ssthresh, max(FlightSize, SMSS) + SMSS) — RFC 6582's first option,
//! which, unlike cwnd = ssthresh, cannot release a burst when little is
//! left in flight. RFC 6582 §4 also asks that the retransmission timer be
//! reset on (at least the first) partial ACK; the connection does so by
//! reporting every partial ACK to `Rto::on_ack` like any ACK of new data
//! (RFC 6298 §5.3), the "Slow-but-Steady" variant.
//!
//! **Retransmission timeout (RFC 5681 §3.1, RFC 6582 step 4).** ssthresh
//! = max(FlightSize/2, 2·SMSS) — unless the timer fires again for a
//! segment it already retransmitted, when ssthresh is held (§3.1: only
//! when the segment "has not yet been resent by way of the retransmission
//! timer") — and cwnd = the loss window, one SMSS. Recovery ends and
//! `recover` = SND.MAX.
//!
//! **Restart after idle (RFC 5681 §4.1).** If nothing is outstanding and
//! nothing was sent for longer than RTO, the ACK clock is gone, and cwnd
//! is cut to the restart window RW = min(IW, cwnd) before sending (with
//! this module's IW, as Linux's `tcp_cwnd_restart` does). ssthresh is
//! kept, so slow start climbs back to it. For a web server this is the
//! common case: a keep-alive connection idles between requests.
//!
//! Not done here: limited transmit (RFC 3042), SACK-based recovery (RFC
//! 6675), and RFC 6582 §4's heuristics after a timeout.
//!
//! FlightSize, everywhere, is SND.MAX − SND.UNA: the bytes sent and not
//! cumulatively acknowledged (RFC 5681 §2).

use crate::seq::Seq;

/// Duplicate ACKs that signal a loss: 3 (RFC 5681 §3.2, "DupThresh").
/// Fewer may come from reordering alone.
pub const DUP_ACK_THRESHOLD: u32 = 3;

/// The initial window in segments: 10 (RFC 6928 §2, Linux's default since
/// 2.6.39), instead of RFC 5681's at most 4. A web response is a burst
/// of a known size that the server can send at once; most responses fit
/// in 10 segments, which then leave in the first RTT rather than after
/// two or three rounds of slow start. On the LAN and datacentre paths this
/// server is for, buffers are deep relative to 15 kB and RTTs short, so
/// the larger burst is harmless; over the Internet it is what every
/// major server has sent for a decade.
pub const IW_SEGMENTS: u32 = 10;

/// The byte term of RFC 6928's IW = min(10·SMSS, max(2·SMSS, 14600)):
/// ten Ethernet-sized (1460-byte) segments, so that small SMSSes do not
/// send a larger count of segments and large ones still get two.
pub const IW_BYTES: u32 = 14_600;

/// Appropriate Byte Counting's limit L in slow start, in segments: 2
/// (RFC 3465 §2.2, its largest allowed value). Clients commonly ACK every
/// second segment (delayed ACKs, RFC 1122 §4.2.3.2); counting bytes with
/// L = 2·SMSS lets cwnd double per RTT as slow start intends, where
/// RFC 5681 eq. 2's min(N, SMSS) would grow it only by half.
///
/// **Segmentation offload.** A "segment" here is what this sender hands
/// to the device at once: with TSO ([`NewReno::on_burst`]) up to 64 KiB
/// that the device cuts into SMSS-sized packets back to back. Receivers
/// see such a burst arrive together and often acknowledge it with one ACK
/// (Linux's GRO merges it; a delayed ACK covers it). With L = 2·SMSS
/// slow start would then grow by two SMSS per burst, linearly rather than
/// doubling per RTT. So L is two of the largest bursts sent so far, never
/// less than 2·SMSS: the ACK of a burst may add what it acknowledges, as
/// the ACKs of its packets one by one would have. (RFC 3465 §2.2's reason
/// for L, bursts released by ACK division or stretch ACKs, is kept: one
/// ACK never adds more than two bursts, and bursts of that size already
/// leave at once. Linux's `tcp_slow_start` has no per-ACK limit at all.)
pub const ABC_LIMIT_SEGMENTS: u32 = 2;

/// The initial (and restart) window for a given SMSS: min(10·SMSS,
/// max(2·SMSS, 14600)) (RFC 6928 §2).
pub const fn initial_window(smss: u32) -> u32 {
    let floor = if smss.saturating_mul(2) > IW_BYTES { smss.saturating_mul(2) } else { IW_BYTES };
    let segments = smss.saturating_mul(IW_SEGMENTS);
    if segments < floor {
        segments
    } else {
        floor
    }
}

/// What the connection must do after reporting an ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond sending what the window now allows.
    None,
    /// Retransmit the first unacknowledged segment now: fast retransmit on
    /// the third duplicate ACK, or the next hole on a partial ACK.
    RetransmitFirstUnacked,
}

/// The fields of a received segment that classify its ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckSegment {
    /// SEG.ACK.
    pub ack: Seq,
    /// Payload bytes (SEG.LEN without SYN and FIN).
    pub len: u32,
    pub syn: bool,
    pub fin: bool,
    /// The advertised window as received (unscaled field, or scaled:
    /// whichever the caller also keeps for the last ACK).
    pub window: u32,
}

/// What an ACK means to the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// It acknowledges `acked` new bytes: SND.UNA < SEG.ACK <= SND.MAX.
    New { acked: u32 },
    /// A duplicate ACK in the sense of RFC 5681 §2.
    Duplicate,
    /// SEG.ACK = SND.UNA but not a duplicate (it carries data, a SYN or a
    /// FIN, changes the window, or nothing is outstanding).
    Same,
    /// SEG.ACK < SND.UNA: an old ACK, which "can be ignored" (RFC 9293
    /// §3.10.7.4).
    Old,
    /// SEG.ACK > SND.MAX: it acknowledges something not yet sent; RFC 9293
    /// §3.10.7.4 says to send an ACK and drop the segment.
    AcksUnsent,
}

/// Classifies the ACK of `seg` for a sender with SND.UNA = `snd_una`,
/// SND.MAX (one past the highest sequence number sent) = `snd_max`, and
/// `last_window` the window advertised by the last ACK (RFC 5681 §2,
/// DUPLICATE ACKNOWLEDGMENT, conditions (a)-(e)).
pub fn classify_ack(snd_una: Seq, snd_max: Seq, last_window: u32, seg: &AckSegment) -> AckKind {
    if seg.ack.gt(snd_max) {
        AckKind::AcksUnsent
    } else if seg.ack.gt(snd_una) {
        AckKind::New { acked: seg.ack - snd_una }
    } else if seg.ack.lt(snd_una) {
        AckKind::Old
    } else if snd_max != snd_una // (a) outstanding data
        && seg.len == 0 // (b) no data
        && !seg.syn
        && !seg.fin // (c)
        // (d) holds: SEG.ACK = SND.UNA
        && seg.window == last_window
    // (e)
    {
        AckKind::Duplicate
    } else {
        AckKind::Same
    }
}

/// NewReno congestion state for one connection (RFC 5681, RFC 6582).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewReno {
    /// The sender's maximum segment size, bytes.
    smss: u32,
    /// The congestion window, bytes; never below `smss`.
    cwnd: u32,
    /// The slow-start threshold, bytes.
    ssthresh: u32,
    /// Consecutive duplicate ACKs outside recovery.
    dup_acks: u32,
    /// Whether fast recovery is in progress.
    in_recovery: bool,
    /// RFC 6582's `recover`, as one past the highest sequence number sent
    /// when recovery (or the last timeout) began.
    recover: Seq,
    /// Bytes acknowledged in congestion avoidance towards the next SMSS of
    /// growth (RFC 3465 §2.1).
    bytes_acked: u32,
    /// Slow start after a timeout: ABC's L is one SMSS (RFC 3465 §2.3).
    after_timeout: bool,
    /// SND.UNA when the retransmission timer last fired, while no ACK has
    /// moved it since: a second expiry at the same SND.UNA holds ssthresh.
    timed_out_at: Option<Seq>,
    /// When data was last sent, nanoseconds since boot.
    last_send: Option<u64>,
    /// The largest burst handed to the device at once (at least SMSS):
    /// ABC's segment ([`ABC_LIMIT_SEGMENTS`]).
    burst: u32,
}

impl NewReno {
    /// The state of a connection just made, with SND.UNA = `snd_una` (the
    /// ISS + 1) and a sender MSS of `smss` bytes: cwnd = IW, ssthresh
    /// arbitrarily high (RFC 5681 §3.1), `recover` = SND.UNA. `smss` is
    /// taken within 1..=65535, the range of the MSS option (RFC 9293
    /// §3.7.1), which keeps every multiple of it here far from overflow.
    pub const fn new(smss: u32, snd_una: Seq) -> NewReno {
        let smss = if smss == 0 {
            1
        } else if smss > u16::MAX as u32 {
            u16::MAX as u32
        } else {
            smss
        };
        NewReno {
            smss,
            cwnd: initial_window(smss),
            ssthresh: u32::MAX,
            dup_acks: 0,
            in_recovery: false,
            recover: snd_una,
            bytes_acked: 0,
            after_timeout: false,
            timed_out_at: None,
            last_send: None,
            burst: smss,
        }
    }

    /// The bytes the connection may have unacknowledged (before taking the
    /// peer's window into account): cwnd.
    pub const fn window(&self) -> u32 {
        self.cwnd
    }

    pub const fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    pub const fn smss(&self) -> u32 {
        self.smss
    }

    pub const fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// RFC 6582's `recover`, as one past the highest sequence number sent
    /// at the last loss event.
    pub const fn recover(&self) -> Seq {
        self.recover
    }

    /// Duplicate ACKs counted since the last ACK of new data, outside
    /// recovery.
    pub const fn dup_acks(&self) -> u32 {
        self.dup_acks
    }

    /// The connection is about to send data at `now`, with `flight` bytes
    /// outstanding and the current RTO `rto` (nanoseconds): after an idle
    /// period longer than RTO, cwnd is cut to RW = min(IW, cwnd) (RFC 5681
    /// §4.1).
    pub fn on_send(&mut self, now: u64, rto: u64, flight: u32) {
        if let Some(last) = self.last_send {
            if flight == 0 && now.saturating_sub(last) > rto {
                self.cwnd = self.cwnd.min(initial_window(self.smss));
            }
        }
        self.last_send = Some(now);
    }

    /// `bytes` of data are about to leave as one burst (one TSO segment
    /// the device cuts into SMSS-sized packets): ABC's L grows to two of
    /// the largest ([`ABC_LIMIT_SEGMENTS`]).
    pub fn on_burst(&mut self, bytes: u32) {
        self.burst = self.burst.max(bytes);
    }

    /// An ACK moved SND.UNA forward to `ack`, acknowledging `acked` new
    /// bytes and leaving `flight` bytes outstanding.
    pub fn on_ack(&mut self, ack: Seq, acked: u32, flight: u32) -> Action {
        self.dup_acks = 0;
        self.timed_out_at = None;
        if self.in_recovery {
            if ack.ge(self.recover) {
                // RFC 6582 step 3, full ACK: exit with
                // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
                self.in_recovery = false;
                self.bytes_acked = 0;
                let cwnd = flight.max(self.smss).saturating_add(self.smss);
                self.cwnd = self.ssthresh.min(cwnd).max(self.smss);
                return Action::None;
            }
            // RFC 6582 step 3, partial ACK: deflate by the bytes acked, add
            // back one SMSS if at least one SMSS left, retransmit the hole.
            let mut cwnd = self.cwnd.saturating_sub(acked);
            if acked >= self.smss {
                cwnd = cwnd.saturating_add(self.smss);
            }
            self.cwnd = cwnd.max(self.smss);
            return Action::RetransmitFirstUnacked;
        }
        if self.cwnd < self.ssthresh {
            // Slow start (RFC 5681 eq. 2 with ABC, RFC 3465 §2.2-2.3).
            let limit = if self.after_timeout { self.smss } else { ABC_LIMIT_SEGMENTS.saturating_mul(self.burst) };
            self.cwnd = self.cwnd.saturating_add(acked.min(limit));
        } else {
            // Congestion avoidance by byte counting (RFC 3465 §2.1).
            self.after_timeout = false;
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.smss);
            }
        }
        Action::None
    }

    /// A duplicate ACK (see [`classify_ack`]) at SND.UNA = `ack`, with
    /// `flight` bytes outstanding.
    pub fn on_dup_ack(&mut self, ack: Seq, flight: u32) -> Action {
        if self.in_recovery {
            // RFC 5681 §3.2 step 4: another segment has left the network.
            self.cwnd = self.cwnd.saturating_add(self.smss);
            return Action::None;
        }
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.dup_acks != DUP_ACK_THRESHOLD || ack.lt(self.recover) {
            // RFC 6582 step 2: an ACK that does not cover `recover` starts
            // no fast retransmit and leaves ssthresh alone.
            return Action::None;
        }
        // RFC 5681 §3.2 steps 2-3, RFC 6582 step 2.
        self.recover = ack + flight;
        self.ssthresh = self.loss_ssthresh(flight);
        self.cwnd = self.ssthresh.saturating_add(3 * self.smss);
        self.in_recovery = true;
        self.after_timeout = false;
        self.bytes_acked = 0;
        Action::RetransmitFirstUnacked
    }

    /// The retransmission timer fired with SND.UNA = `snd_una` and `flight`
    /// bytes outstanding; the connection retransmits the first
    /// unacknowledged segment (RFC 6298 §5.4).
    pub fn on_timeout(&mut self, snd_una: Seq, flight: u32) {
        if self.timed_out_at != Some(snd_una) {
            // RFC 5681 eq. 4, only for the first expiry on this segment.
            self.ssthresh = self.loss_ssthresh(flight);
        }
        self.timed_out_at = Some(snd_una);
        // RFC 5681 §3.1: cwnd = LW = 1·SMSS. RFC 6582 step 4.
        self.cwnd = self.smss;
        self.recover = snd_una + flight;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.bytes_acked = 0;
        self.after_timeout = true;
    }

    /// max(FlightSize/2, 2·SMSS) (RFC 5681 eq. 4).
    fn loss_ssthresh(&self, flight: u32) -> u32 {
        (flight / 2).max(2 * self.smss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rto::{Rto, Sample, MAX_RTO, MIN_RTO};
    use lib_test_rng::Rng;

    const MSS: u32 = 1460;
    const ISS1: Seq = Seq(0xffff_f000); // SND.UNA at creation, near the wrap

    fn seg(ack: Seq) -> AckSegment {
        AckSegment { ack, len: 0, syn: false, fin: false, window: 65535 }
    }

    /// A sender in congestion avoidance with cwnd = 20 segments, 20
    /// segments in flight from `una`.
    fn steady(una: Seq) -> NewReno {
        let mut cc = NewReno::new(MSS, una);
        cc.cwnd = 20 * MSS;
        cc.ssthresh = 20 * MSS;
        cc
    }

    #[test]
    fn dup_ack_classification_follows_rfc5681_definition() {
        let una = ISS1 + 100;
        let max = una + 5000;
        let base = seg(una);
        // (a)-(e) all hold.
        assert_eq!(classify_ack(una, max, 65535, &base), AckKind::Duplicate);
        // (a) nothing outstanding.
        assert_eq!(classify_ack(una, una, 65535, &base), AckKind::Same);
        // (b) carries data.
        let data = AckSegment { len: 1, ..base };
        assert_eq!(classify_ack(una, max, 65535, &data), AckKind::Same);
        // (c) SYN or FIN.
        let fin = AckSegment { fin: true, ..base };
        assert_eq!(classify_ack(una, max, 65535, &fin), AckKind::Same);
        let syn = AckSegment { syn: true, ..base };
        assert_eq!(classify_ack(una, max, 65535, &syn), AckKind::Same);
        // (d) a different acknowledgment number.
        assert_eq!(classify_ack(una, max, 65535, &seg(una + 10)), AckKind::New { acked: 10 });
        assert_eq!(classify_ack(una, max, 65535, &seg(una + 5000)), AckKind::New { acked: 5000 });
        assert_eq!(classify_ack(una, max, 65535, &seg(Seq(una.0 - 1))), AckKind::Old);
        assert_eq!(classify_ack(una, max, 65535, &seg(max + 1)), AckKind::AcksUnsent);
        // (e) a window update.
        assert_eq!(classify_ack(una, max, 65534, &base), AckKind::Same);
    }

    #[test]
    fn initial_window_is_rfc6928s_ten_segments_capped_at_14600_bytes() {
        // RFC 6928 §2: min(10·MSS, max(2·MSS, 14600)).
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5_360);
        assert_eq!(initial_window(1000), 10_000);
        assert_eq!(initial_window(8960), 17_920, "jumbo: two segments");
        assert_eq!(initial_window(4000), 14_600);
        let cc = NewReno::new(MSS, ISS1);
        assert_eq!(cc.window(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX, "RFC 5681 §3.1: arbitrarily high");
    }

    #[test]
    fn slow_start_grows_by_bytes_acked_up_to_two_smss_per_ack() {
        // RFC 5681 §3.1 with ABC, RFC 3465 §2.2 (L = 2·SMSS).
        let mut cc = NewReno::new(MSS, ISS1);
        let w = cc.window();
        assert_eq!(cc.on_ack(ISS1 + 100, 100, 0), Action::None);
        assert_eq!(cc.window(), w + 100);
        cc.on_ack(ISS1 + 100 + 2 * MSS, 2 * MSS, 0);
        assert_eq!(cc.window(), w + 100 + 2 * MSS);
        cc.on_ack(ISS1 + 100 + 7 * MSS, 5 * MSS, 0);
        assert_eq!(cc.window(), w + 100 + 4 * MSS, "capped at L");
    }

    #[test]
    fn slow_start_counts_a_tso_burst_acked_at_once_as_its_packets() {
        // ABC_LIMIT_SEGMENTS: L is two of the largest bursts.
        let mut cc = NewReno::new(MSS, ISS1);
        let w = cc.window();
        cc.on_burst(10 * MSS);
        cc.on_ack(ISS1 + 10 * MSS, 10 * MSS, 0);
        assert_eq!(cc.window(), w + 10 * MSS, "a burst's ACK adds what it acknowledges");
        cc.on_ack(ISS1 + 35 * MSS, 25 * MSS, 0);
        assert_eq!(cc.window(), w + 30 * MSS, "capped at two bursts");
        cc.on_burst(4 * MSS);
        cc.on_ack(ISS1 + 60 * MSS, 25 * MSS, 0);
        assert_eq!(cc.window(), w + 50 * MSS, "the largest burst counts");
    }

    #[test]
    fn slow_start_after_timeout_counts_at_most_one_smss_per_ack() {
        // RFC 3465 §2.3: L = 1·SMSS in the slow start after an RTO.
        let mut cc = steady(ISS1);
        cc.on_timeout(ISS1, 20 * MSS);
        assert_eq!(cc.window(), MSS);
        cc.on_ack(ISS1 + 2 * MSS, 2 * MSS, 18 * MSS);
        assert_eq!(cc.window(), 2 * MSS);
    }

    #[test]
    fn congestion_avoidance_adds_one_smss_per_window_acked() {
        // RFC 5681 §3.1 / RFC 3465 §2.1: byte counting, one SMSS per cwnd.
        let mut cc = steady(ISS1);
        let mut una = ISS1;
        for i in 1..=19 {
            una += MSS;
            cc.on_ack(una, MSS, 20 * MSS);
            assert_eq!(cc.window(), 20 * MSS, "after {i} segments");
        }
        una += MSS;
        cc.on_ack(una, MSS, 20 * MSS);
        assert_eq!(cc.window(), 21 * MSS);
        assert_eq!(cc.bytes_acked, 0);
    }

    #[test]
    fn congestion_avoidance_carries_the_byte_count_remainder() {
        // RFC 3465 §2.1: "bytes_acked is reduced by the value of cwnd", not
        // cleared, so ACKs that straddle a window still count in full.
        let mut cc = steady(ISS1);
        let mut una = ISS1;
        let step = MSS + MSS / 2;
        for _ in 0..14 {
            una += step;
            cc.on_ack(una, step, 20 * MSS);
        }
        // 21 SMSS acked: one SMSS of growth, one SMSS carried over.
        assert_eq!(cc.window(), 21 * MSS);
        assert_eq!(cc.bytes_acked, MSS);
        // 20 more SMSS complete the 21-SMSS window.
        for _ in 0..20 {
            una += MSS;
            cc.on_ack(una, MSS, 20 * MSS);
        }
        assert_eq!(cc.window(), 22 * MSS);
    }

    #[test]
    fn newreno_third_dup_ack_fast_retransmits_and_halves() {
        // RFC 5681 §3.2 steps 2-3: ssthresh = max(FlightSize/2, 2·SMSS),
        // cwnd = ssthresh + 3·SMSS; RFC 6582 step 2: recover = SND.MAX.
        let mut cc = steady(ISS1);
        let flight = 20 * MSS;
        assert_eq!(cc.on_dup_ack(ISS1, flight), Action::None);
        assert_eq!(cc.on_dup_ack(ISS1, flight), Action::None);
        assert_eq!(cc.window(), 20 * MSS, "no change before DupThresh");
        assert_eq!(cc.on_dup_ack(ISS1, flight), Action::RetransmitFirstUnacked);
        assert!(cc.in_recovery());
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.window(), 13 * MSS);
        assert_eq!(cc.recover(), ISS1 + flight);
    }

    #[test]
    fn newreno_loss_ssthresh_is_at_least_two_smss() {
        // RFC 5681 eq. 4 with a small flight.
        let mut cc = steady(ISS1);
        for _ in 0..3 {
            cc.on_dup_ack(ISS1, 3 * MSS);
        }
        assert_eq!(cc.ssthresh(), 2 * MSS);
        let mut cc = steady(ISS1);
        cc.on_timeout(ISS1, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    #[test]
    fn newreno_dup_acks_in_recovery_inflate_by_one_smss() {
        // RFC 5681 §3.2 step 4.
        let mut cc = steady(ISS1);
        for _ in 0..3 {
            cc.on_dup_ack(ISS1, 20 * MSS);
        }
        for k in 1..=5 {
            assert_eq!(cc.on_dup_ack(ISS1, 20 * MSS), Action::None);
            assert_eq!(cc.window(), (13 + k) * MSS);
        }
    }

    #[test]
    fn newreno_partial_ack_retransmits_next_hole() {
        // RFC 6582 §3.2 step 3, partial ACK: retransmit, deflate by the
        // bytes acked, add back SMSS when at least SMSS was acked, stay.
        let mut cc = steady(ISS1);
        for _ in 0..5 {
            cc.on_dup_ack(ISS1, 20 * MSS);
        }
        assert_eq!(cc.window(), 15 * MSS);
        let una = ISS1 + 4 * MSS;
        assert_eq!(cc.on_ack(una, 4 * MSS, 16 * MSS), Action::RetransmitFirstUnacked);
        assert!(cc.in_recovery());
        assert_eq!(cc.window(), 15 * MSS - 4 * MSS + MSS);
        // Less than one SMSS acked: deflate only.
        assert_eq!(cc.on_ack(una + 100, 100, 16 * MSS - 100), Action::RetransmitFirstUnacked);
        assert_eq!(cc.window(), 12 * MSS - 100);
        // Duplicates after a partial ACK still inflate (step 4).
        cc.on_dup_ack(una + 100, 16 * MSS - 100);
        assert_eq!(cc.window(), 13 * MSS - 100);
    }

    #[test]
    fn newreno_full_ack_exits_recovery_without_a_burst() {
        // RFC 6582 §3.2 step 3, full ACK, first option:
        // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        let mut cc = steady(ISS1);
        for _ in 0..3 {
            cc.on_dup_ack(ISS1, 20 * MSS);
        }
        let recover = cc.recover();
        // New data sent in recovery stays in flight: 2 segments.
        assert_eq!(cc.on_ack(recover, 20 * MSS, 2 * MSS), Action::None);
        assert!(!cc.in_recovery());
        assert_eq!(cc.window(), 3 * MSS);
        // With much in flight, cwnd = ssthresh.
        let mut cc = steady(ISS1);
        for _ in 0..3 {
            cc.on_dup_ack(ISS1, 20 * MSS);
        }
        cc.on_ack(cc.recover(), 20 * MSS, 15 * MSS);
        assert_eq!(cc.window(), 10 * MSS);
    }

    #[test]
    fn newreno_dup_acks_below_recover_start_no_fast_retransmit() {
        // RFC 6582 step 2: after a timeout, duplicates for data sent before
        // it (ack < recover) must not trigger another reduction.
        let mut cc = steady(ISS1);
        cc.on_timeout(ISS1, 20 * MSS);
        let ssthresh = cc.ssthresh();
        let una = ISS1 + MSS;
        cc.on_ack(una, MSS, 19 * MSS);
        for _ in 0..5 {
            assert_eq!(cc.on_dup_ack(una, 19 * MSS), Action::None);
        }
        assert!(!cc.in_recovery());
        assert_eq!(cc.ssthresh(), ssthresh);
        // Once SND.UNA reaches `recover`, a new loss is a new loss.
        let una = ISS1 + 20 * MSS;
        cc.on_ack(una, 19 * MSS, 4 * MSS);
        for _ in 0..2 {
            cc.on_dup_ack(una, 4 * MSS);
        }
        assert_eq!(cc.on_dup_ack(una, 4 * MSS), Action::RetransmitFirstUnacked);
    }

    #[test]
    fn newreno_timeout_sets_loss_window_and_halves_once() {
        // RFC 5681 §3.1: ssthresh = max(FlightSize/2, 2·SMSS) and cwnd =
        // LW = 1·SMSS; ssthresh held when the same segment times out again.
        let mut cc = steady(ISS1);
        cc.on_timeout(ISS1, 20 * MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 10 * MSS));
        // The second expiry is held even when the flight reported differs
        // (a caller counting from a SND.NXT pulled back to SND.UNA would
        // otherwise drive ssthresh to 2·SMSS).
        cc.on_timeout(ISS1, MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 10 * MSS));
        // A new segment's timeout halves again.
        cc.on_ack(ISS1 + MSS, MSS, 8 * MSS);
        cc.on_timeout(ISS1 + MSS, 8 * MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 4 * MSS));
    }

    #[test]
    fn newreno_timeout_ends_recovery() {
        // RFC 6582 step 4.
        let mut cc = steady(ISS1);
        for _ in 0..3 {
            cc.on_dup_ack(ISS1, 20 * MSS);
        }
        cc.on_timeout(ISS1, 22 * MSS);
        assert!(!cc.in_recovery());
        assert_eq!(cc.recover(), ISS1 + 22 * MSS);
        assert_eq!(cc.window(), MSS);
    }

    #[test]
    fn restart_after_idle_cuts_cwnd_to_the_restart_window() {
        // RFC 5681 §4.1: idle longer than RTO with nothing outstanding:
        // cwnd = min(IW, cwnd).
        let mut cc = steady(ISS1);
        cc.on_send(0, MIN_RTO, 0);
        cc.on_send(MIN_RTO, MIN_RTO, 0);
        assert_eq!(cc.window(), 20 * MSS, "not longer than RTO");
        cc.on_send(2 * MIN_RTO + 1, MIN_RTO, 3 * MSS);
        assert_eq!(cc.window(), 20 * MSS, "data outstanding: the RTO rules");
        cc.on_send(3 * MIN_RTO + 2, MIN_RTO, 0);
        assert_eq!(cc.window(), initial_window(MSS));
        assert_eq!(cc.ssthresh(), 20 * MSS, "ssthresh kept");
        // A smaller cwnd is not raised.
        let mut cc = steady(ISS1);
        cc.on_timeout(ISS1, 20 * MSS);
        cc.on_send(0, MIN_RTO, 0);
        cc.on_send(SEC, MIN_RTO, 0);
        assert_eq!(cc.window(), MSS);
    }

    const SEC: u64 = 1_000_000_000;

    /// A simulated sender drives NewReno and the retransmission timer with
    /// random sends, ACKs (new, partial, duplicate, with random RTTs and
    /// retransmission flags), expiries and idle gaps. After every event:
    /// cwnd ≥ 1·SMSS; ssthresh ≥ 2·SMSS once there has been a loss; in
    /// recovery cwnd is exactly what RFC 5681 §3.2 and RFC 6582 allow
    /// (entry ssthresh + 3·SMSS, +SMSS per duplicate, partial ACKs deflate
    /// and never raise it), and a full ACK leaves cwnd ≤ ssthresh; outside
    /// recovery an ACK raises cwnd by at most L = 2·SMSS; RTO stays within
    /// [MIN_RTO, MAX_RTO].
    #[test]
    fn newreno_random_ack_and_loss_sequences_keep_the_invariants() {
        let mut rng = Rng(0x5681);
        // Fast retransmits, partial ACKs, full ACKs, timeouts: the run must
        // reach every path it checks.
        let mut seen = [0u32; 4];
        for run in 0..300 {
            let smss = [536, 1220, 1460, 8960][run % 4];
            let mut una = Seq(rng.next() as u32);
            let mut max = una;
            let mut cc = NewReno::new(smss, una);
            let mut rto = Rto::new();
            let mut now = 0u64;
            let mut window = 65535u32;
            let mut lost = false;
            for _ in 0..2000 {
                now += rng.next() % (SEC / 10);
                let flight = max - una;
                let before = cc;
                match rng.below(10) {
                    0..=2 => {
                        // Send up to cwnd, a few segments at a time.
                        for _ in 0..rng.below(8) {
                            let flight = max - una;
                            cc.on_send(now, rto.rto(), flight);
                            if flight + smss > cc.window() {
                                break;
                            }
                            max += smss;
                            rto.on_send(now);
                        }
                    }
                    3..=5 if flight > 0 => {
                        let acked = 1 + rng.below(flight as usize) as u32;
                        let acked = if rng.below(2) == 0 {
                            acked.div_ceil(smss).saturating_mul(smss).min(flight)
                        } else {
                            acked
                        };
                        let kind = classify_ack(una, max, window, &seg_w(una + acked, window));
                        assert_eq!(kind, AckKind::New { acked });
                        una += acked;
                        let left = max - una;
                        let action = cc.on_ack(una, acked, left);
                        let sample = Sample { rtt: rng.next() % (3 * SEC), retransmitted: rng.below(3) == 0 };
                        rto.on_ack(now, left == 0, Some(sample));
                        if before.in_recovery {
                            if una.ge(before.recover) {
                                seen[2] += 1;
                                assert_eq!(action, Action::None);
                                assert!(!cc.in_recovery);
                                assert!(cc.cwnd <= cc.ssthresh.max(smss), "full ACK");
                            } else {
                                seen[1] += 1;
                                assert_eq!(action, Action::RetransmitFirstUnacked);
                                assert!(cc.in_recovery);
                                assert!(cc.cwnd <= before.cwnd, "partial ACK raised cwnd");
                                let mut want = before.cwnd.saturating_sub(acked);
                                if acked >= smss {
                                    want += smss;
                                }
                                assert_eq!(cc.cwnd, want.max(smss));
                            }
                        } else {
                            assert_eq!(action, Action::None);
                            assert!(cc.cwnd <= before.cwnd + 2 * smss);
                            assert_eq!(cc.ssthresh, before.ssthresh);
                        }
                    }
                    6..=7 if flight > 0 => {
                        let s = seg_w(una, window);
                        assert_eq!(classify_ack(una, max, window, &s), AckKind::Duplicate);
                        let action = cc.on_dup_ack(una, flight);
                        if before.in_recovery {
                            assert_eq!(action, Action::None);
                            assert_eq!(cc.cwnd, before.cwnd + smss, "step 4");
                        } else if action == Action::RetransmitFirstUnacked {
                            lost = true;
                            seen[0] += 1;
                            assert_eq!(before.dup_acks + 1, DUP_ACK_THRESHOLD);
                            assert!(una.ge(before.recover));
                            assert_eq!(cc.ssthresh, (flight / 2).max(2 * smss));
                            assert_eq!(cc.cwnd, cc.ssthresh + 3 * smss);
                            assert_eq!(cc.recover, max);
                        } else {
                            assert_eq!((cc.cwnd, cc.ssthresh), (before.cwnd, before.ssthresh));
                        }
                    }
                    8 if flight > 0 => {
                        // Let the timer fire.
                        let deadline = rto.deadline().expect("data outstanding arms the timer");
                        now = now.max(deadline);
                        assert!(rto.expired(now));
                        rto.on_timeout(now);
                        cc.on_timeout(una, flight);
                        lost = true;
                        seen[3] += 1;
                        assert_eq!(cc.cwnd, smss, "loss window");
                        assert!(!cc.in_recovery);
                    }
                    9 => {
                        // A window update (not a duplicate) or an idle gap.
                        window = window.wrapping_add(1);
                        now += rng.next() % (3 * SEC);
                    }
                    _ => {}
                }
                assert!(cc.cwnd >= smss, "cwnd {} < SMSS", cc.cwnd);
                if lost {
                    assert!(cc.ssthresh >= 2 * smss);
                }
                if cc.in_recovery && before.in_recovery {
                    assert!(cc.cwnd <= before.cwnd + smss);
                }
                assert!((MIN_RTO..=MAX_RTO).contains(&rto.rto()));
            }
        }
        assert!(seen.iter().all(|&n| n > 100), "paths reached: {seen:?}");
    }

    fn seg_w(ack: Seq, window: u32) -> AckSegment {
        AckSegment { window, ..seg(ack) }
    }
}
