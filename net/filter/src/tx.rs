//! Transmit validation: the reverse packet filter that Xok lacked.
//!
//! A PD may put a frame on the wire only if it could have received the
//! answer: the frame's source MAC is the PD's, its source IPv4 address is
//! one of the PD's, and the *reversed* frame (source and destination
//! addresses and ports exchanged) is matched by one of the PD's installed
//! exclusive filters. A PD holding "TCP dst 80" may send TCP from port 80
//! to anyone; one holding "UDP dst 53 from 10.0.0.0/8" may send UDP from
//! port 53 only to 10.0.0.0/8. Copy filters give no right to send.
//!
//! The stray-packet daemon owns no filters; it receives what no one claims
//! ([`Table::new`]'s unclaimed-IPv4 owner). With
//! [`TxPolicy::answers_unclaimed`] it may send, whenever the reverse is
//! claimed by no exclusive filter, only what its job makes ([`answer_shape`]):
//!
//! - ICMP echo reply, type 0 code 0 (RFC 792);
//! - ICMP destination unreachable, type 3, code 2 (protocol) or 3 (port)
//!   (RFC 1122 §3.2.2.1);
//! - a TCP reset in one of RFC 9293 §3.10.7.1's two forms: flags exactly
//!   RST (`<SEQ=SEG.ACK><CTL=RST>`), or exactly RST and ACK with sequence
//!   number zero (`<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`).
//!
//! No other ICMP type or code (no redirect, no "fragmentation needed", no
//! echo request), no segment with SYN, FIN, PSH or URG: it can answer
//! stray traffic but neither speak for a port someone owns, nor send
//! data, nor originate anything. That these headers answer a frame it
//! really received (the sequence numbers, the quoted datagram, the echo
//! identifier) needs state this stateless check has not: the demultiplexer
//! checks it (`net-mux`, "Answers").
//!
//! # Check a copy, send the copy
//!
//! The PD writes its headers in memory it can still write while the
//! demultiplexer looks at them. Checking them in place would be a
//! time-of-check-to-time-of-use race: the PD could change the source
//! address after the check and before the device reads it. So the
//! demultiplexer copies the headers into its own memory ([`TxHeaders`]),
//! checks the copy, and hands the *copy* to the driver as the frame's first
//! segment; only bytes after the copy (payload, which nothing here trusts)
//! are sent from the PD's memory. [`TxPolicy::check`] takes a [`TxHeaders`]
//! rather than a `&[u8]` so that it cannot be given the PD's memory by
//! mistake.

use net_packet::icmp::{self, IcmpType};
use net_packet::{classify_headers, EthernetAddress, Ipv4Address, Malformed, Network, Parsed, Transport};

use crate::{Owner, Table};

/// The fewest header bytes a copy needs for a TCP frame to be checkable:
/// Ethernet (14), IPv4 without options (20), TCP up to its flags (14).
/// UDP needs 14 + 20 + 8, ARP 14 + 28.
pub const MIN_TCP_HEADER_COPY: usize = 14 + 20 + 14;

/// The first bytes of an outgoing frame, copied out of the sender's memory.
#[derive(Clone, Debug)]
pub struct TxHeaders<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> TxHeaders<N> {
    /// Copies the first `min(N, frame_start.len())` bytes of `frame_start`.
    pub fn copy_from(frame_start: &[u8]) -> Self {
        let len = frame_start.len().min(N);
        let mut bytes = [0; N];
        bytes[..len].copy_from_slice(&frame_start[..len]);
        TxHeaders { bytes, len }
    }

    /// The copied bytes: what is checked, and what must be sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// How many bytes were copied; the frame's remaining bytes start this
    /// far into the PD's frame.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Why a frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxRefused {
    /// The headers do not parse (see [`net_packet::classify_headers`]).
    Malformed(Malformed),
    /// The Ethernet source is not the PD's MAC.
    ForgedSourceMac,
    /// The IPv4 source is not one of the PD's addresses.
    ForgedSourceIp,
    /// An ARP sender hardware or protocol address that is not the PD's
    /// (an all-zero sender IPv4 address, an RFC 5227 probe, is allowed).
    ForgedArpSender,
    /// None of the PD's exclusive filters admits this EtherType and IPv4
    /// protocol at all.
    ProtocolNotOwned,
    /// The PD owns traffic of this protocol, but not to this source port
    /// (and address) from this destination.
    EndpointNotOwned,
}

impl TxRefused {
    /// How many counters [`TxRefused::index`] numbers.
    pub const COUNT: usize = 6;

    /// A counter index for this reason; all malformed reasons share one.
    pub const fn index(self) -> usize {
        match self {
            TxRefused::Malformed(_) => 0,
            TxRefused::ForgedSourceMac => 1,
            TxRefused::ForgedSourceIp => 2,
            TxRefused::ForgedArpSender => 3,
            TxRefused::ProtocolNotOwned => 4,
            TxRefused::EndpointNotOwned => 5,
        }
    }
}

/// Transmit counters of one PD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxCounters {
    pub allowed: u64,
    /// Refused frames, by [`TxRefused::index`].
    pub refused: [u64; TxRefused::COUNT],
}

/// What one PD may send, and its transmit counters.
#[derive(Clone, Debug)]
pub struct TxPolicy<'a> {
    /// The PD, as it owns filters in the [`Table`].
    pub owner: Owner,
    /// The only Ethernet source address it may use.
    pub mac: EthernetAddress,
    /// The IPv4 source addresses it may use.
    pub addresses: &'a [Ipv4Address],
    /// Whether it may answer unclaimed traffic with ICMP and TCP resets
    /// (the stray-packet daemon).
    pub answers_unclaimed: bool,
    counters: TxCounters,
}

impl<'a> TxPolicy<'a> {
    /// A policy with zeroed counters that does not answer unclaimed traffic.
    pub const fn new(owner: Owner, mac: EthernetAddress, addresses: &'a [Ipv4Address]) -> Self {
        TxPolicy {
            owner,
            mac,
            addresses,
            answers_unclaimed: false,
            counters: TxCounters { allowed: 0, refused: [0; TxRefused::COUNT] },
        }
    }

    /// This policy, also allowed to answer unclaimed traffic.
    pub const fn answering_unclaimed(self) -> Self {
        TxPolicy { answers_unclaimed: true, ..self }
    }

    /// Checks the copied headers of a frame this PD wants to send against
    /// its addresses and its exclusive filters in `table`, and counts the
    /// outcome.
    pub fn check<const N: usize, const H: usize>(
        &mut self,
        table: &Table<N>,
        headers: &TxHeaders<H>,
    ) -> Result<(), TxRefused> {
        let verdict = self.verdict(table, headers.as_bytes());
        match verdict {
            Ok(()) => self.counters.allowed = self.counters.allowed.wrapping_add(1),
            Err(reason) => {
                let counter = &mut self.counters.refused[reason.index()];
                *counter = counter.wrapping_add(1);
            }
        }
        verdict
    }

    /// The counters.
    pub fn counters(&self) -> &TxCounters {
        &self.counters
    }

    fn verdict<const N: usize>(&self, table: &Table<N>, headers: &[u8]) -> Result<(), TxRefused> {
        let parsed = classify_headers(headers).map_err(TxRefused::Malformed)?;
        if parsed.src_mac != self.mac {
            return Err(TxRefused::ForgedSourceMac);
        }
        match parsed.network {
            Network::Arp(arp) => {
                let own_ip = arp.sender_ip.is_unspecified() || self.addresses.contains(&arp.sender_ip);
                if arp.sender_mac != self.mac || !own_ip {
                    return Err(TxRefused::ForgedArpSender);
                }
            }
            Network::Ipv4(ip) if !self.addresses.contains(&ip.src) => {
                return Err(TxRefused::ForgedSourceIp);
            }
            _ => {}
        }
        let reply = parsed.reversed();
        let mut own_filters = table.exclusive_filters_of(self.owner);
        if own_filters.any(|filter| filter.matches(&reply)) {
            return Ok(());
        }
        let stray_answer = self.answers_unclaimed && is_answer_to_stray(&parsed);
        if stray_answer && table.exclusive_owner(&reply).is_none() {
            return Ok(());
        }
        let owns_protocol = table.exclusive_filters_of(self.owner).any(|filter| filter.matches_protocol(&reply));
        if owns_protocol || stray_answer {
            Err(TxRefused::EndpointNotOwned)
        } else {
            Err(TxRefused::ProtocolNotOwned)
        }
    }
}

/// The kinds of answer to stray traffic ([`answer_shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerShape {
    /// ICMP type 0 code 0.
    EchoReply,
    /// ICMP type 3 code 3.
    PortUnreachable,
    /// ICMP type 3 code 2.
    ProtocolUnreachable,
    /// TCP with flags exactly RST.
    Reset,
    /// TCP with flags exactly RST and ACK, sequence number 0.
    ResetAck,
}

/// The kind of answer to stray traffic `parsed` is, if it has the shape of
/// one (see the module documentation): the headers the stray-packet daemon
/// may send, and nothing else.
pub fn answer_shape(parsed: &Parsed) -> Option<AnswerShape> {
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    match parsed.ipv4()?.transport {
        Transport::Icmp { icmp_type, code: 0 } if icmp_type == IcmpType::ECHO_REPLY => Some(AnswerShape::EchoReply),
        Transport::Icmp { icmp_type, code } if icmp_type == IcmpType::DESTINATION_UNREACHABLE => match code {
            icmp::unreachable::PORT => Some(AnswerShape::PortUnreachable),
            icmp::unreachable::PROTOCOL => Some(AnswerShape::ProtocolUnreachable),
            _ => None,
        },
        Transport::Tcp { flags, .. } if flags.0 == RST => Some(AnswerShape::Reset),
        Transport::Tcp { flags, seq: 0, .. } if flags.0 == RST | ACK => Some(AnswerShape::ResetAck),
        _ => None,
    }
}

/// Whether `parsed` is something the stray-packet daemon sends.
fn is_answer_to_stray(parsed: &Parsed) -> bool {
    answer_shape(parsed).is_some()
}
