//! Which received segments a synchronized connection accepts, and how it
//! answers the others: the checks of RFC 9293 §3.10.7.4 ("SEGMENT
//! ARRIVES", states SYN-RECEIVED and later), hardened by RFC 5961 against
//! blind injection.
//!
//! Without timestamps there is no PAWS (RFC 7323 §5); what keeps old
//! duplicates and blind attackers out is then the window itself, made
//! strict as RFC 5961 asks:
//!
//! - **Sequence (RFC 9293 §3.10.7.4, first check).** A segment is
//!   acceptable when some of it falls in the receive window
//!   `[RCV.NXT, RCV.NXT + RCV.WND)`: the four cases of the table, including
//!   a zero-length segment at `RCV.NXT` when the window is closed. An
//!   unacceptable segment is answered with an ACK (unless it carries RST)
//!   and dropped.
//! - **RST (RFC 5961 §3.2).** Accepted only when its sequence number is
//!   exactly `RCV.NXT`; anywhere else in the window it gets a *challenge
//!   ACK* (the true peer, which really reset, answers it with an exact RST);
//!   outside the window it is dropped silently. A blind attacker must then
//!   guess one number in 2^32, not one in 2^32/RCV.WND.
//! - **SYN (RFC 5961 §4.2).** A SYN on a synchronized connection, wherever
//!   its sequence number falls, gets a challenge ACK and is dropped (never a
//!   reset of the connection, which RFC 793 allowed in-window).
//! - **ACK (RFC 5961 §5.2).** `SEG.ACK` is acceptable in
//!   `[SND.UNA - MAX.SND.WND, SND.NXT]`; below that (too old to be a
//!   delayed duplicate) it gets a challenge ACK and the segment is dropped;
//!   above `SND.NXT` (acknowledging what was never sent) it gets an ACK and
//!   is dropped (RFC 9293 §3.10.7.4, fifth check).
//! - **Challenge ACKs are rate-limited (RFC 5961 §7)** by the caller, so
//!   that they cannot be used to amplify a flood (see
//!   [`ChallengeLimiter`]).

use crate::seq::Seq;

/// The receive side's view needed to judge a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receive {
    /// RCV.NXT: the next sequence number expected.
    pub nxt: Seq,
    /// RCV.WND: the window offered, in bytes (already scaled).
    pub wnd: u32,
}

/// The send side's view needed to judge an acknowledgment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Send {
    /// SND.UNA: the oldest unacknowledged sequence number.
    pub una: Seq,
    /// SND.NXT: the next sequence number to send (the highest sent, for a
    /// connection that has retransmitted: `SND.MAX`).
    pub nxt: Seq,
    /// MAX.SND.WND (RFC 5961 §5.1): the largest window the peer has
    /// offered.
    pub max_wnd: u32,
}

/// The parts of a received segment these checks look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrived {
    pub seq: Seq,
    /// SEG.LEN: data bytes plus one for SYN and one for FIN.
    pub len: u32,
    pub syn: bool,
    pub rst: bool,
    /// `Some(SEG.ACK)` when the ACK bit is set.
    pub ack: Option<Seq>,
}

/// What to do with a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on processing it (its data, ACK, FIN).
    Accept,
    /// The peer reset the connection (an exact RST): close it, send
    /// nothing.
    Reset,
    /// Drop it and answer with an ACK of the current state (RFC 9293's
    /// answer to an unacceptable segment).
    DropAndAck,
    /// Drop it and answer with a challenge ACK (RFC 5961), subject to the
    /// rate limit.
    Challenge,
    /// Drop it silently.
    Drop,
}

/// RFC 9293 §3.10.7.4, first check: whether any of the segment falls in the
/// receive window (the table of four cases).
pub fn in_window(rcv: Receive, seq: Seq, len: u32) -> bool {
    let end = rcv.nxt + rcv.wnd;
    match (len, rcv.wnd) {
        (0, 0) => seq == rcv.nxt,
        (0, _) => seq.in_range(rcv.nxt, end),
        (_, 0) => false,
        (_, _) => seq.in_range(rcv.nxt, end) || (seq + (len - 1)).in_range(rcv.nxt, end),
    }
}

/// Judges a segment on a synchronized connection: the RST, SYN, sequence
/// and ACK checks above, in RFC 9293's order (sequence, RST, SYN, ACK).
pub fn judge(rcv: Receive, snd: Send, seg: Arrived) -> Verdict {
    let acceptable = in_window(rcv, seg.seq, seg.len);
    if seg.rst {
        // RFC 5961 §3.2: exact match resets, in-window challenges, else drop.
        return if seg.seq == rcv.nxt {
            Verdict::Reset
        } else if acceptable {
            Verdict::Challenge
        } else {
            Verdict::Drop
        };
    }
    if seg.syn {
        // RFC 5961 §4.2: any SYN on a synchronized connection.
        return Verdict::Challenge;
    }
    if !acceptable {
        return Verdict::DropAndAck;
    }
    let Some(ack) = seg.ack else {
        // RFC 9293 §3.10.7.4, fifth check: "if the ACK bit is off, drop the
        // segment and return".
        return Verdict::Drop;
    };
    // RFC 5961 §5.2: the acceptable range of SEG.ACK.
    let oldest = Seq(snd.una.0.wrapping_sub(snd.max_wnd));
    if ack.lt(oldest) {
        return Verdict::Challenge;
    }
    if ack.gt(snd.nxt) {
        return Verdict::DropAndAck;
    }
    Verdict::Accept
}

/// RFC 5961 §7: at most `limit` challenge ACKs per `period_ns`, for all
/// connections together (a global budget: a flood of forged segments on
/// many connections cannot multiply the answers).
#[derive(Clone, Copy, Debug)]
pub struct ChallengeLimiter {
    limit: u32,
    period_ns: u64,
    window_start: u64,
    sent: u32,
}

/// RFC 5961 §7 suggests a limit "of 10 challenge ACKs in 5 seconds" as a
/// conservative default; Linux allows 1000 per second. A web server that
/// serves many clients at once needs more than 10 for its honest peers
/// (a challenge ACK is also how a peer that restarted learns the old
/// connection is gone), so this is Linux's figure.
pub const CHALLENGE_ACKS_PER_SECOND: u32 = 1000;

impl ChallengeLimiter {
    pub const fn new(limit: u32, period_ns: u64) -> Self {
        ChallengeLimiter { limit, period_ns, window_start: 0, sent: 0 }
    }

    /// [`CHALLENGE_ACKS_PER_SECOND`] per second.
    pub const fn per_second() -> Self {
        Self::new(CHALLENGE_ACKS_PER_SECOND, 1_000_000_000)
    }

    /// Whether a challenge ACK may be sent at `now` (and counts it if so).
    pub fn allow(&mut self, now: u64) -> bool {
        if now.saturating_sub(self.window_start) >= self.period_ns {
            self.window_start = now;
            self.sent = 0;
        }
        if self.sent < self.limit {
            self.sent += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;

    const RCV: Receive = Receive { nxt: Seq(1000), wnd: 4000 };
    const SND: Send = Send { una: Seq(50_000), nxt: Seq(60_000), max_wnd: 20_000 };

    fn seg(seq: u32, len: u32) -> Arrived {
        Arrived { seq: Seq(seq), len, syn: false, rst: false, ack: Some(SND.una) }
    }

    #[test]
    fn the_four_cases_of_the_acceptability_table() {
        // Zero length, zero window: only exactly RCV.NXT.
        let closed = Receive { wnd: 0, ..RCV };
        assert!(in_window(closed, Seq(1000), 0));
        assert!(!in_window(closed, Seq(1001), 0));
        // Zero length, open window: RCV.NXT <= SEG.SEQ < RCV.NXT + RCV.WND.
        assert!(in_window(RCV, Seq(1000), 0) && in_window(RCV, Seq(4999), 0));
        assert!(!in_window(RCV, Seq(999), 0) && !in_window(RCV, Seq(5000), 0));
        // Data, zero window: never.
        assert!(!in_window(closed, Seq(1000), 1));
        // Data, open window: its first or its last byte inside.
        assert!(in_window(RCV, Seq(900), 101), "the last byte is RCV.NXT");
        assert!(!in_window(RCV, Seq(900), 100), "entirely old");
        assert!(in_window(RCV, Seq(4999), 500), "the first byte is the window's last");
        assert!(!in_window(RCV, Seq(5000), 1));
    }

    #[test]
    fn rfc5961_rst_resets_only_at_exactly_rcv_nxt() {
        let rst = |seq| Arrived { rst: true, ..seg(seq, 0) };
        assert_eq!(judge(RCV, SND, rst(1000)), Verdict::Reset);
        assert_eq!(judge(RCV, SND, rst(1001)), Verdict::Challenge, "in window, not exact");
        assert_eq!(judge(RCV, SND, rst(4999)), Verdict::Challenge);
        assert_eq!(judge(RCV, SND, rst(5000)), Verdict::Drop, "outside the window");
        assert_eq!(judge(RCV, SND, rst(999)), Verdict::Drop);
    }

    #[test]
    fn rfc5961_any_syn_on_a_synchronized_connection_is_challenged() {
        for seq in [1000, 2000, 999, 5000, 0x8000_0000] {
            let syn = Arrived { syn: true, len: 1, ..seg(seq, 1) };
            assert_eq!(judge(RCV, SND, syn), Verdict::Challenge, "seq {seq}");
        }
    }

    #[test]
    fn rfc5961_ack_range_is_from_una_minus_max_window_to_nxt() {
        let with_ack = |ack| Arrived { ack: Some(Seq(ack)), ..seg(1000, 10) };
        assert_eq!(judge(RCV, SND, with_ack(60_000)), Verdict::Accept, "SND.NXT");
        assert_eq!(judge(RCV, SND, with_ack(30_000)), Verdict::Accept, "SND.UNA - MAX.SND.WND: an old duplicate");
        assert_eq!(judge(RCV, SND, with_ack(29_999)), Verdict::Challenge, "too old");
        assert_eq!(judge(RCV, SND, with_ack(60_001)), Verdict::DropAndAck, "acknowledges what was never sent");
        let no_ack = Arrived { ack: None, ..seg(1000, 10) };
        assert_eq!(judge(RCV, SND, no_ack), Verdict::Drop);
    }

    #[test]
    fn unacceptable_data_is_answered_with_an_ack() {
        assert_eq!(judge(RCV, SND, seg(5000, 10)), Verdict::DropAndAck);
        assert_eq!(judge(RCV, SND, seg(1000, 10)), Verdict::Accept);
    }

    /// A blind attacker who knows the 4-tuple but not the sequence numbers
    /// resets the connection only by hitting RCV.NXT exactly; a million
    /// random RSTs with a 4000-byte window never do, while about one in
    /// 2^32/4000 draws a challenge ACK.
    #[test]
    fn random_blind_resets_do_not_reset() {
        let mut rng = Rng(0x5961);
        let (mut resets, mut challenges) = (0, 0);
        for _ in 0..1_000_000 {
            let seq = rng.next() as u32;
            match judge(RCV, SND, Arrived { rst: true, ..seg(seq, 0) }) {
                Verdict::Reset => resets += 1,
                Verdict::Challenge => challenges += 1,
                _ => {}
            }
        }
        assert_eq!(resets, 0);
        assert!(challenges < 20, "{challenges} challenges (expected about 1)");
    }

    #[test]
    fn challenge_acks_are_limited_per_period() {
        let mut limiter = ChallengeLimiter::new(3, 1000);
        assert!((0..3).all(|_| limiter.allow(10)));
        assert!(!limiter.allow(500), "the budget of the period is spent");
        assert!(limiter.allow(1010), "a new period");
    }
}
