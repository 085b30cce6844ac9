//! Answers: what a client with an answer policy (`net_config::AnswerPolicy`,
//! the stray-packet daemon's) may send beyond its own filters' traffic.
//!
//! Transmit validation alone (`net_filter::tx`) admits any header of an
//! answer's shape: an echo reply with any identifier to any host, a
//! destination unreachable quoting any datagram (one quoting a forged
//! segment of another PD's connection would make its peer abort it, RFC
//! 1122 §4.2.3.9), a reset with any sequence number. A compromised daemon
//! could send those at will. So the demultiplexer keeps, for every frame
//! it delivers to such a client as its exclusive receiver, a *ticket*: the
//! one answer that frame may get, as [`Expect`] says, to its sender (the
//! frame's source MAC and IPv4 address), written when it is delivered:
//!
//! | received (to the node's MAC and address, from a unicast host) | kind allowed | the answer must be |
//! |---|---|---|
//! | ICMP echo request | [`ANSWER_ECHO_REPLY`] | ICMP type 0 code 0 with the request's identifier, sequence number and length (RFC 792) |
//! | UDP | [`ANSWER_PORT_UNREACHABLE`] | ICMP type 3 code 3 quoting the datagram's IPv4 header and first 8 data bytes exactly (RFC 792, RFC 1122 §3.2.2.1) |
//! | another protocol than ICMP, TCP, UDP | [`ANSWER_PROTOCOL_UNREACHABLE`] | ICMP type 3 code 2, quoting as above |
//! | TCP without RST | [`ANSWER_RESET`] | from its destination port to its source port, no options, no data; if it had ACK, flags RST and `SEQ=SEG.ACK`; else flags RST and ACK, `SEQ=0`, `ACK=SEG.SEQ+SEG.LEN` (RFC 9293 §3.10.7.1) |
//!
//! Nothing else is ticketed (ICMP errors, resets, broadcasts: RFC 1122
//! §3.2.2 and RFC 9293 forbid answering them). A frame from the client
//! that its own exclusive filters do not cover must redeem a live ticket
//! of the client; a ticket is redeemed once, so each received frame gets
//! at most one answer. [`TICKETS`] tickets are kept for all clients
//! together, the oldest overwritten: at least as many as a client can hold
//! received frames (its receive buffers) plus a frame of answers in flight
//! for each, so an answer the client writes promptly always finds its
//! ticket.
//!
//! Redeemed answers are then limited per client by a token bucket of the
//! policy's `burst` tokens refilled at `rate_per_second` (the same numbers
//! the client limits itself with, from the same configuration), on the
//! demultiplexer's clock ([`crate::Mux::set_clock`]: the timer PD's `NOW`).
//! The clock is read at a client's first answer and then only when the
//! bucket has no whole token left, so a client within its limit costs no
//! call; without a clock the rate is not enforced here (the tickets still
//! are).
//!
//! Refusals: [`TxDrop::NotAnAnswer`] (no ticket matches) and
//! [`TxDrop::AnswerRateLimited`].

use net_config::{
    AnswerPolicy, NodeAddress, ANSWER_ECHO_REPLY, ANSWER_PORT_UNREACHABLE, ANSWER_PROTOCOL_UNREACHABLE, ANSWER_RESET,
    MAX_CLIENTS,
};
use net_packet::icmp::{self, IcmpMessage, IcmpType};
use net_packet::{EthernetAddress, EthernetFrame, IpProtocol, Ipv4Address, Ipv4Packet, TcpSegment};

use crate::TxDrop;

/// Tickets kept, for all clients together.
pub const TICKETS: usize = 2 * lib_net_protocol::RX_BUFFERS;
/// Bytes of a datagram an ICMP error quotes: the IPv4 header (the
/// demultiplexer delivers no packet with options) and 8 data bytes.
const QUOTED: usize = 20 + 8;
/// Nanoseconds in a second.
const SECOND_NS: u64 = 1_000_000_000;

/// The answer a ticket admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Echo reply: the request's identifier and sequence number (bytes
    /// 4..8 of the message) and its ICMP length.
    Echo { id_seq: [u8; 4], len: usize },
    /// Destination unreachable with `code`, quoting `quoted[..len]`.
    Unreachable { code: u8, quoted: [u8; QUOTED], len: usize },
    /// A reset from `ports.0` to `ports.1` with these fields.
    Reset { ports: (u16, u16), seq: u32, ack: u32, with_ack: bool },
}

#[derive(Clone, Copy, Debug)]
struct Ticket {
    client: u8,
    peer_mac: EthernetAddress,
    peer_ip: Ipv4Address,
    expect: Expect,
}

/// A client's answer bucket: whole tokens are `SECOND_NS` units.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    units: u64,
    /// When it was last refilled; `None` before the first refill.
    refilled_ns: Option<u64>,
    started: bool,
}

/// The tickets and buckets of every client.
pub(crate) struct Answers {
    tickets: [Option<Ticket>; TICKETS],
    next: usize,
    buckets: [Bucket; MAX_CLIENTS],
}

impl Answers {
    pub(crate) const fn new() -> Self {
        Answers {
            tickets: [None; TICKETS],
            next: 0,
            buckets: [Bucket { units: 0, refilled_ns: None, started: false }; MAX_CLIENTS],
        }
    }

    /// Writes the ticket for `frame`, just delivered to `client` (whose
    /// policy is `policy`) as its exclusive receiver, if the frame may be
    /// answered with a kind the policy allows. `fix` is the checksum the
    /// client's copy got written (a partial checksum completed, at this
    /// offset of the frame): the client quotes its copy, so the ticket
    /// quotes it too.
    pub(crate) fn record(
        &mut self,
        client: usize,
        policy: &AnswerPolicy,
        mac: EthernetAddress,
        node: &NodeAddress,
        frame: &[u8],
        fix: Option<(usize, [u8; 2])>,
    ) {
        let Some(mut ticket) = ticket_for(client, policy, mac, node, frame) else { return };
        if let (Some((at, sum)), Expect::Unreachable { quoted, len, .. }) = (fix, &mut ticket.expect) {
            // The quoted datagram starts after the Ethernet header.
            for (i, byte) in sum.into_iter().enumerate() {
                if let Some(q) = (at + i).checked_sub(14).filter(|&q| q < *len) {
                    quoted[q] = byte;
                }
            }
        }
        self.tickets[self.next] = Some(ticket);
        self.next = (self.next + 1) % TICKETS;
    }

    /// Admits `frame` from `client` as an answer: redeems the ticket it
    /// matches and takes a token of the client's bucket (`clock` read
    /// only if the bucket is empty).
    pub(crate) fn redeem(
        &mut self,
        client: usize,
        policy: &AnswerPolicy,
        frame: &[u8],
        clock: Option<fn() -> u64>,
    ) -> Result<(), TxDrop> {
        let slot = self
            .tickets
            .iter()
            .position(|t| t.is_some_and(|t| usize::from(t.client) == client && answers(&t, frame)))
            .ok_or(TxDrop::NotAnAnswer)?;
        let bucket = self.buckets.get_mut(client).ok_or(TxDrop::NotAnAnswer)?;
        if !bucket.take(policy, clock) {
            return Err(TxDrop::AnswerRateLimited);
        }
        self.tickets[slot] = None;
        Ok(())
    }
}

impl Bucket {
    fn take(&mut self, policy: &AnswerPolicy, clock: Option<fn() -> u64>) -> bool {
        let burst_units = u64::from(policy.burst).saturating_mul(SECOND_NS);
        if !self.started {
            // Full at the first answer, and refilled from then on.
            self.started = true;
            self.units = burst_units;
            self.refilled_ns = clock.map(|clock| clock());
        }
        if self.units < SECOND_NS {
            let Some(clock) = clock else { return true };
            let now = clock();
            if let Some(last) = self.refilled_ns {
                let refill = now.saturating_sub(last).saturating_mul(u64::from(policy.rate_per_second));
                self.units = self.units.saturating_add(refill).min(burst_units);
            }
            if self.refilled_ns.is_none_or(|last| now > last) {
                self.refilled_ns = Some(now);
            }
        }
        if self.units >= SECOND_NS {
            self.units -= SECOND_NS;
            true
        } else {
            false
        }
    }
}

/// The ticket a received frame earns (see the module documentation).
fn ticket_for(
    client: usize,
    policy: &AnswerPolicy,
    mac: EthernetAddress,
    node: &NodeAddress,
    frame: &[u8],
) -> Option<Ticket> {
    let eth = EthernetFrame::parse(frame).ok()?;
    let ip = Ipv4Packet::parse(eth.payload()).ok()?;
    if eth.dst() != mac || !eth.src().is_unicast() || ip.dst() != node.ipv4 || !ip.src().is_unicast() {
        return None;
    }
    let quote = || {
        let packet = ip.packet();
        let len = (ip.header_len() + 8).min(packet.len()).min(QUOTED);
        let mut quoted = [0; QUOTED];
        quoted[..len].copy_from_slice(&packet[..len]);
        (quoted, len)
    };
    let expect = match ip.protocol() {
        IpProtocol::ICMP => {
            let message = IcmpMessage::parse(ip.payload()).ok()?;
            if message.icmp_type() != IcmpType::ECHO_REQUEST || !policy.allows(ANSWER_ECHO_REPLY) {
                return None;
            }
            let bytes = ip.payload();
            Expect::Echo { id_seq: [bytes[4], bytes[5], bytes[6], bytes[7]], len: bytes.len() }
        }
        IpProtocol::UDP if policy.allows(ANSWER_PORT_UNREACHABLE) => {
            let (quoted, len) = quote();
            Expect::Unreachable { code: icmp::unreachable::PORT, quoted, len }
        }
        IpProtocol::TCP if policy.allows(ANSWER_RESET) => {
            let segment = TcpSegment::parse(ip.payload()).ok()?;
            if segment.flags().rst() {
                return None;
            }
            let ports = (segment.dst_port(), segment.src_port());
            if segment.flags().ack() {
                Expect::Reset { ports, seq: segment.ack(), ack: 0, with_ack: false }
            } else {
                let ack = segment.seq().wrapping_add(segment.segment_len());
                Expect::Reset { ports, seq: 0, ack, with_ack: true }
            }
        }
        IpProtocol::UDP | IpProtocol::TCP => return None,
        _ if policy.allows(ANSWER_PROTOCOL_UNREACHABLE) => {
            let (quoted, len) = quote();
            Expect::Unreachable { code: icmp::unreachable::PROTOCOL, quoted, len }
        }
        _ => return None,
    };
    Some(Ticket { client: client as u8, peer_mac: eth.src(), peer_ip: ip.src(), expect })
}

/// Whether `frame` is the answer `ticket` admits.
fn answers(ticket: &Ticket, frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::parse(frame) else { return false };
    let Ok(ip) = Ipv4Packet::parse(eth.payload()) else { return false };
    if eth.dst() != ticket.peer_mac || ip.dst() != ticket.peer_ip || ip.header_len() != 20 {
        return false;
    }
    let payload = ip.payload();
    match ticket.expect {
        Expect::Echo { id_seq, len } => {
            ip.protocol() == IpProtocol::ICMP
                && payload.len() == len
                && payload.get(..2) == Some(&[IcmpType::ECHO_REPLY.0, 0][..])
                && payload.get(4..8) == Some(&id_seq[..])
        }
        Expect::Unreachable { code, quoted, len } => {
            ip.protocol() == IpProtocol::ICMP
                && payload.len() == icmp::HEADER_LEN + len
                && payload.get(..2) == Some(&[IcmpType::DESTINATION_UNREACHABLE.0, code][..])
                && payload.get(4..8) == Some(&[0; 4][..])
                && payload.get(icmp::HEADER_LEN..) == Some(&quoted[..len])
        }
        Expect::Reset { ports, seq, ack, with_ack } => {
            let Ok(segment) = TcpSegment::parse(payload) else { return false };
            let flags = segment.flags();
            ip.protocol() == IpProtocol::TCP
                && segment.header_len() == 20
                && segment.payload().is_empty()
                && (segment.src_port(), segment.dst_port()) == ports
                && segment.seq() == seq
                && flags.rst()
                && flags.ack() == with_ack
                && flags.0 & !(0x04 | 0x10) == 0
                && (!with_ack || segment.ack() == ack)
        }
    }
}
