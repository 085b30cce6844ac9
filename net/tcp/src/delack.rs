//! Delayed acknowledgments (RFC 1122 §4.2.3.2, RFC 5681 §4.2), one per
//! connection.
//!
//! A server mostly receives requests and answers them. If the ACK for a
//! request waits a little, it leaves on the response's first segment
//! (every segment after the handshake carries ACK = RCV.NXT), and the pure
//! ACK never goes out at all: delayed ACKs *merged with data*. The rules
//! that bound the wait:
//!
//! - an ACK for at least every second full-sized segment (RFC 1122
//!   §4.2.3.2 SHOULD, RFC 5681 §4.2 SHOULD): the second unacknowledged
//!   full-sized segment is acknowledged at once;
//! - an ACK within [`DELAY`] of the arrival of the *first*
//!   unacknowledged segment (RFC 5681 §4.2: "within 500 ms of the arrival
//!   of the first unacknowledged packet"; RFC 1122: "MUST be less than 0.5
//!   seconds"); later segments do not push the deadline back;
//! - an immediate ACK for an out-of-order segment, to give the sender its
//!   duplicate ACKs for fast retransmit (RFC 5681 §4.2 SHOULD, RFC 9293
//!   §3.10.7.4 for a segment wholly below RCV.NXT), and for a segment that
//!   fills all or part of a gap, to tell the sender at once how far
//!   recovery got (RFC 5681 §4.2 SHOULD).
//!
//! The connection reports each segment that carries data with
//! [`DelayedAck::on_segment`] and does what it answers; it sends a pure ACK
//! when [`DelayedAck::due`], and calls [`DelayedAck::on_ack_sent`] whenever
//! any segment leaves carrying the current RCV.NXT — a response, a FIN, a
//! pure ACK — since each of them is the ACK that was owed.
//!
//! A segment is *full-sized* when its payload is at least the MSS the
//! peer sends with (the MSS this end advertised, or the largest segment
//! seen, as the caller judges); a request is usually one small segment,
//! so it waits for the response, while the segments of an upload are full
//! and get every second one acknowledged, keeping the peer's ACK clock.

/// The longest an ACK waits: 40 ms, Linux's `TCP_DELACK_MIN`, well under
/// RFC 1122's 500 ms MUST and Linux's 200 ms maximum. The wait is there
/// only so that the ACK can ride on the response: a response from the
/// file cache is ready in microseconds, and one that needs the disk in a
/// few milliseconds, so 40 ms catches nearly every response that will come
/// soon at all; past that a pure ACK is cheap. Waiting longer would cost
/// the client: a client that writes a request in two pieces under Nagle's
/// algorithm (RFC 896) holds the second until the first is ACKed, so the
/// delay is added to its request as is; and a client's retransmission
/// timer (at least 200 ms on Linux, 1 s by RFC 6298) must never fire
/// because this end sat on an ACK, which 40 ms keeps far from.
pub const DELAY: u64 = 40_000_000;

/// Where a received data segment falls in the receive sequence space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// It starts at RCV.NXT and nothing is queued beyond it.
    InOrder,
    /// It starts at RCV.NXT and out-of-order data was queued beyond it: it
    /// fills all or part of a gap (RFC 5681 §4.2).
    FillsGap,
    /// It starts beyond RCV.NXT (a gap before it), or lies wholly below
    /// RCV.NXT (an old duplicate).
    OutOfOrder,
}

/// What to do about the ACK for a segment just received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckDecision {
    /// Send an ACK now (on data, if there is data to send at once).
    AckNow,
    /// The ACK may wait until this deadline (nanoseconds since boot) for a
    /// segment to ride on.
    Delay(u64),
}

/// The delayed-ACK state of one connection: whether an ACK is owed, since
/// when, and for how many full-sized segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DelayedAck {
    /// When the owed ACK must go: the first unacknowledged segment's
    /// arrival + [`DELAY`]. `None`: nothing is owed.
    deadline: Option<u64>,
    /// Full-sized segments received since the last ACK sent.
    full: u32,
}

impl DelayedAck {
    /// Nothing owed.
    pub const fn new() -> DelayedAck {
        DelayedAck { deadline: None, full: 0 }
    }

    /// A segment carrying data arrived at `now`. `order`: where it falls;
    /// `full_sized`: its payload is a full segment. On [`AckDecision::AckNow`]
    /// the owed ACK is taken as sent (the connection must send it now).
    pub fn on_segment(&mut self, now: u64, order: Order, full_sized: bool) -> AckDecision {
        let second_full = full_sized && self.full >= 1;
        if order != Order::InOrder || second_full {
            self.on_ack_sent();
            return AckDecision::AckNow;
        }
        if full_sized {
            self.full += 1;
        }
        let deadline = *self.deadline.get_or_insert(now.saturating_add(DELAY));
        AckDecision::Delay(deadline)
    }

    /// A segment carrying ACK = RCV.NXT left (data, FIN, or a pure ACK):
    /// nothing is owed any more.
    pub fn on_ack_sent(&mut self) {
        self.deadline = None;
        self.full = 0;
    }

    /// Whether an ACK is owed and its deadline has come: the connection
    /// sends a pure ACK (and calls [`DelayedAck::on_ack_sent`]).
    pub fn due(&self, now: u64) -> bool {
        matches!(self.deadline, Some(d) if now >= d)
    }

    /// When the owed ACK must go, if one is owed: for the connection's
    /// timer.
    pub const fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Whether an ACK is owed.
    pub const fn pending(&self) -> bool {
        self.deadline.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;

    const MS: u64 = 1_000_000;

    #[test]
    fn delack_deadline_is_within_rfc1122_half_second() {
        // RFC 1122 §4.2.3.2: "the delay MUST be less than 0.5 seconds".
        const _: () = assert!(DELAY < 500 * MS);
        let mut d = DelayedAck::new();
        assert_eq!(d.on_segment(7, Order::InOrder, false), AckDecision::Delay(7 + DELAY));
        assert!(!d.due(6 + DELAY));
        assert!(d.due(7 + DELAY));
    }

    #[test]
    fn delack_request_ack_merges_with_the_response() {
        // The point of the delay: the response carries the ACK, and no
        // pure ACK is ever due.
        let mut d = DelayedAck::new();
        assert!(matches!(d.on_segment(0, Order::InOrder, false), AckDecision::Delay(_)));
        assert!(d.pending());
        d.on_ack_sent(); // the response left
        assert!(!d.pending());
        assert!(!d.due(u64::MAX));
    }

    #[test]
    fn delack_every_second_full_sized_segment_is_acked_at_once() {
        // RFC 1122 §4.2.3.2, RFC 5681 §4.2: an ACK for at least every
        // second full-sized segment.
        let mut d = DelayedAck::new();
        for i in 0..10u64 {
            assert!(matches!(d.on_segment(i, Order::InOrder, true), AckDecision::Delay(_)));
            assert_eq!(d.on_segment(i, Order::InOrder, true), AckDecision::AckNow);
            assert!(!d.pending());
        }
    }

    #[test]
    fn delack_small_segments_wait_for_the_deadline() {
        // RFC 5681 §4.2 counts full-sized segments; small ones wait, but
        // not past the deadline.
        let mut d = DelayedAck::new();
        for i in 0..5 {
            assert_eq!(d.on_segment(i, Order::InOrder, false), AckDecision::Delay(DELAY));
        }
        assert_eq!(d.on_segment(5, Order::InOrder, true), AckDecision::Delay(DELAY));
        assert_eq!(d.on_segment(6, Order::InOrder, true), AckDecision::AckNow);
    }

    #[test]
    fn delack_deadline_counts_from_the_first_unacked_segment() {
        // RFC 5681 §4.2: "within 500 ms of the arrival of the first
        // unacknowledged packet"; later segments do not extend it.
        let mut d = DelayedAck::new();
        d.on_segment(100, Order::InOrder, false);
        assert_eq!(d.on_segment(100 + DELAY - 1, Order::InOrder, false), AckDecision::Delay(100 + DELAY));
        assert_eq!(d.deadline(), Some(100 + DELAY));
    }

    #[test]
    fn delack_out_of_order_segment_is_acked_at_once() {
        // RFC 5681 §4.2: out-of-order data SHOULD be acknowledged
        // immediately (the sender's duplicate ACKs).
        let mut d = DelayedAck::new();
        assert_eq!(d.on_segment(0, Order::OutOfOrder, false), AckDecision::AckNow);
        d.on_segment(1, Order::InOrder, false);
        assert_eq!(d.on_segment(2, Order::OutOfOrder, true), AckDecision::AckNow);
        assert!(!d.pending(), "the immediate ACK covers what was owed");
    }

    #[test]
    fn delack_segment_filling_a_gap_is_acked_at_once() {
        // RFC 5681 §4.2: a segment that fills all or part of a gap SHOULD
        // be acknowledged immediately.
        let mut d = DelayedAck::new();
        assert_eq!(d.on_segment(0, Order::FillsGap, false), AckDecision::AckNow);
        assert_eq!(d.on_segment(0, Order::FillsGap, true), AckDecision::AckNow);
    }

    #[test]
    fn delack_sent_ack_resets_the_full_segment_count() {
        // The count is of segments since the last ACK: one full segment
        // after an ACK went out waits again.
        let mut d = DelayedAck::new();
        d.on_segment(0, Order::InOrder, true);
        d.on_ack_sent();
        assert!(matches!(d.on_segment(1, Order::InOrder, true), AckDecision::Delay(_)));
    }

    /// Random segments (in order or not, full or small), sends and time
    /// against a model of the receiver: no two full-sized segments are ever
    /// left unacknowledged; no ACK is owed past the first unacknowledged
    /// segment's arrival + DELAY; out-of-order and gap-filling segments are
    /// always acknowledged at once; `due` is exactly "owed and late".
    #[test]
    fn delack_random_arrivals_keep_the_rfc5681_bounds() {
        let mut rng = Rng(0x1122);
        let mut d = DelayedAck::new();
        let mut now = 0u64;
        // The model: arrival of the first unacked segment, unacked full ones.
        let mut first: Option<u64> = None;
        let mut full = 0u32;
        let mut acks_now = 0u32;
        for _ in 0..200_000 {
            now += rng.next() % (30 * MS);
            match rng.below(8) {
                0..=4 => {
                    let order = match rng.below(6) {
                        0 => Order::OutOfOrder,
                        1 => Order::FillsGap,
                        _ => Order::InOrder,
                    };
                    let full_sized = rng.below(2) == 0;
                    let decision = d.on_segment(now, order, full_sized);
                    if order != Order::InOrder {
                        assert_eq!(decision, AckDecision::AckNow);
                    }
                    match decision {
                        AckDecision::AckNow => {
                            acks_now += 1;
                            first = None;
                            full = 0;
                        }
                        AckDecision::Delay(deadline) => {
                            let f = *first.get_or_insert(now);
                            assert_eq!(deadline, f + DELAY);
                            full += u32::from(full_sized);
                            assert!(full < 2, "two full-sized segments unacked");
                        }
                    }
                }
                5 => {
                    d.on_ack_sent();
                    first = None;
                    full = 0;
                }
                _ => {
                    if d.due(now) {
                        d.on_ack_sent();
                        first = None;
                        full = 0;
                    }
                }
            }
            assert_eq!(d.pending(), first.is_some());
            assert_eq!(d.due(now), first.is_some_and(|f| now >= f + DELAY));
        }
        assert!(acks_now > 1000);
    }
}
