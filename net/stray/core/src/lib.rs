//! The stray-packet daemon's logic: what `stray` answers to the IPv4
//! traffic no other PD claims (the demultiplexer's unclaimed-IPv4 owner),
//! without the runtime (the PD in `main.rs` is glue), so that it runs on
//! the host with a fake clock.
//!
//! | received, to the node's address and MAC | answer |
//! |---|---|
//! | ICMP echo request | echo reply (RFC 792) |
//! | UDP | ICMP port unreachable (RFC 1122 §3.2.2.1), quoting the IPv4 header and 8 bytes |
//! | TCP without RST | reset (RFC 9293 §3.10.7.1): with ACK set `<SEQ=SEG.ACK><CTL=RST>`, else `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` |
//! | another protocol | ICMP protocol unreachable (RFC 1122 §3.2.2.1) |
//! | anything else | nothing |
//!
//! Only the kinds its policy allows (`net_config::AnswerPolicy`, from the
//! description's `<network>`: the unclaimed-IPv4 client gets every kind)
//! are sent; the others are counted (`not_allowed`). The demultiplexer
//! enforces the same policy on what the PD sends (`net-mux`, "Answers"):
//! each answer must be the one this table prescribes for a frame it
//! delivered to the PD, once, within the same rate limit, so a
//! compromised daemon can send nothing else.
//!
//! Never answered (RFC 1122 §3.2.2, RFC 9293): frames with a bad IPv4 or
//! transport checksum; datagrams to another address, to a broadcast or
//! multicast address, or sent as a link-layer broadcast; datagrams from
//! a source that is not a single host; ICMP errors; resets. The frame
//! builders of `net_packet::reply` enforce all of this, and write every answer
//! from the node's MAC and address to the frame's source MAC (no ARP
//! needed), so that it passes the demultiplexer's transmit check.
//!
//! # Rate limit
//!
//! Answers are limited by a token bucket of [`BURST`] tokens refilled at
//! [`RATE_PER_SECOND`] per second (RFC 1812 §4.3.2.8 and RFC 1122 §3.2.2
//! ask for ICMP error rate limits; the same bucket covers echo replies and
//! resets, so that no stream of unclaimed packets makes the node send more
//! than that). 100 a second is BSD's `icmplim` order of magnitude, ample
//! for diagnostics (ping, traceroute to a closed port, a refused
//! connection), and bounds what a spoofed flood can reflect at a victim to
//! about 100 × 1514 bytes a second; a burst of 50 lets a `ping -f` start or
//! a short port scan through unharmed. Only a packet that would be answered
//! takes a token; one that finds the bucket empty is counted as
//! rate-limited. Time is the timer PD's clock, read once per batch.
#![no_std]

#[cfg(test)]
extern crate std;

use core::fmt;
use net_packet::reply::{self, Local, ReplyError};
use net_packet::{classify, Transport};

/// Nanoseconds in a second.
pub const SECOND_NS: u64 = 1_000_000_000;
/// Answers a second, sustained, by default (the PD takes its limit from
/// its configuration, `net_config::AnswerPolicy`, which the demultiplexer
/// enforces too: the unclaimed-IPv4 client's is
/// `AnswerPolicy::UNCLAIMED_IPV4`, these numbers).
pub const RATE_PER_SECOND: u64 = net_config::AnswerPolicy::UNCLAIMED_IPV4.rate_per_second as u64;
/// Answers in a burst, after a quiet time, by default.
pub const BURST: u64 = net_config::AnswerPolicy::UNCLAIMED_IPV4.burst as u64;

/// A token bucket: `burst` tokens, refilled at `rate` a second, in
/// nanosecond time. Starts full.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    /// Tokens, in units of 1/[`SECOND_NS`] token (one nanosecond's refill
    /// at one token a second), so refills need no division.
    units: u64,
    last_ns: Option<u64>,
    rate: u64,
    burst_units: u64,
}

impl TokenBucket {
    pub const fn new(rate_per_second: u64, burst: u64) -> Self {
        let burst_units = burst.saturating_mul(SECOND_NS);
        TokenBucket { units: burst_units, last_ns: None, rate: rate_per_second, burst_units }
    }

    /// Takes a token at `now_ns` if there is one. A clock that goes back
    /// refills nothing.
    pub fn try_take(&mut self, now_ns: u64) -> bool {
        if let Some(last) = self.last_ns {
            let elapsed = now_ns.saturating_sub(last);
            self.units = self.units.saturating_add(elapsed.saturating_mul(self.rate)).min(self.burst_units);
        }
        if self.last_ns.is_none_or(|last| now_ns > last) {
            self.last_ns = Some(now_ns);
        }
        if self.units >= SECOND_NS {
            self.units -= SECOND_NS;
            true
        } else {
            false
        }
    }
}

/// The kinds of answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    EchoReply,
    PortUnreachable,
    ProtocolUnreachable,
    Reset,
}

impl Answer {
    /// Its bit in `net_config::AnswerPolicy::kinds`.
    pub const fn kind_bit(self) -> u8 {
        match self {
            Answer::EchoReply => net_config::ANSWER_ECHO_REPLY,
            Answer::PortUnreachable => net_config::ANSWER_PORT_UNREACHABLE,
            Answer::ProtocolUnreachable => net_config::ANSWER_PROTOCOL_UNREACHABLE,
            Answer::Reset => net_config::ANSWER_RESET,
        }
    }
}

/// What became of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It would have been answered, but its policy does not allow this
    /// kind (the demultiplexer would refuse it).
    NotAllowed(Answer),
    /// Send the first `len` bytes of the output buffer.
    Send { answer: Answer, len: usize },
    /// It would have been answered, but the bucket is empty.
    RateLimited(Answer),
    /// Not answered: malformed, or must not be answered.
    Ignored(ReplyError),
}

/// The daemon's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub echo_replies: u64,
    pub port_unreachable: u64,
    pub protocol_unreachable: u64,
    pub resets: u64,
    /// Answers not sent for the rate limit.
    pub rate_limited: u64,
    /// Answers not sent because the policy does not allow their kind.
    pub not_allowed: u64,
    /// Valid frames that must not be answered (see the crate docs).
    pub ignored: u64,
    /// Frames with a bad header, length or checksum.
    pub malformed: u64,
    /// Answers that did not fit the output buffer (never with a buffer of
    /// the largest frame).
    pub too_large: u64,
}

impl fmt::Display for Counters {
    /// `key=value` pairs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "echo_replies={} port_unreachable={} protocol_unreachable={} resets={} rate_limited={} not_allowed={} ignored={} malformed={} too_large={}",
            self.echo_replies,
            self.port_unreachable,
            self.protocol_unreachable,
            self.resets,
            self.rate_limited,
            self.not_allowed,
            self.ignored,
            self.malformed,
            self.too_large
        )
    }
}

/// The stray-packet daemon of one node.
#[derive(Clone, Debug)]
pub struct Stray {
    local: Local,
    bucket: TokenBucket,
    /// The kinds it may send (`net_config::ANSWER_*` bits).
    kinds: u8,
    counters: Counters,
}

impl Stray {
    /// The daemon answering for `local` with every kind, with the default
    /// rate limit.
    pub fn new(local: Local) -> Self {
        Self::with_limit(local, TokenBucket::new(RATE_PER_SECOND, BURST))
    }

    /// The daemon answering for `local` with every kind, rate-limited by
    /// `bucket`.
    pub fn with_limit(local: Local, bucket: TokenBucket) -> Self {
        Stray { local, bucket, kinds: net_config::ANSWER_ALL, counters: Counters::default() }
    }

    /// This daemon, answering only the kinds in `kinds` (its policy's
    /// `net_config::ANSWER_*` bits; the demultiplexer refuses the others).
    pub fn answering(self, kinds: u8) -> Self {
        Stray { kinds, ..self }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Handles the frame `frame`, received at `now_ns`: writes the answer,
    /// if any, into `out`.
    pub fn handle(&mut self, now_ns: u64, frame: &[u8], out: &mut [u8]) -> Outcome {
        let outcome = self.answer(now_ns, frame, out);
        let c = &mut self.counters;
        match outcome {
            Outcome::Send { answer, .. } => match answer {
                Answer::EchoReply => c.echo_replies += 1,
                Answer::PortUnreachable => c.port_unreachable += 1,
                Answer::ProtocolUnreachable => c.protocol_unreachable += 1,
                Answer::Reset => c.resets += 1,
            },
            Outcome::RateLimited(_) => c.rate_limited += 1,
            Outcome::NotAllowed(_) => c.not_allowed += 1,
            Outcome::Ignored(ReplyError::Malformed(_)) => c.malformed += 1,
            Outcome::Ignored(ReplyError::NotAnswerable(_)) => c.ignored += 1,
            Outcome::Ignored(ReplyError::BufferTooSmall) => c.too_large += 1,
        }
        outcome
    }

    fn answer(&mut self, now_ns: u64, frame: &[u8], out: &mut [u8]) -> Outcome {
        // A quick look picks the answer; its builder validates everything
        // (strictly, checksums included) before writing.
        let transport = match classify(frame) {
            Ok(parsed) => parsed.ipv4().map(|ip| ip.transport),
            Err(reason) => return Outcome::Ignored(ReplyError::Malformed(reason)),
        };
        let (answer, built) = match transport {
            Some(Transport::Icmp { .. }) => (Answer::EchoReply, reply::echo_reply(frame, self.local, out)),
            Some(Transport::Udp { .. }) => (Answer::PortUnreachable, reply::port_unreachable(frame, self.local, out)),
            Some(Transport::Tcp { .. }) => (Answer::Reset, reply::tcp_reset(frame, self.local, out)),
            Some(Transport::Other) => {
                (Answer::ProtocolUnreachable, reply::protocol_unreachable(frame, self.local, out))
            }
            // ARP, IPv6, ...: not IPv4, which is all this daemon receives.
            None => return Outcome::Ignored(ReplyError::NotAnswerable(reply::NotAnswerable::WrongKind)),
        };
        match built {
            Ok(_) if self.kinds & answer.kind_bit() == 0 => Outcome::NotAllowed(answer),
            Ok(len) if self.bucket.try_take(now_ns) => Outcome::Send { answer, len },
            Ok(_) => Outcome::RateLimited(answer),
            Err(e) => Outcome::Ignored(e),
        }
    }
}

#[cfg(test)]
mod tests;
