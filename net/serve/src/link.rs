//! The node's link as a server sees it: the demultiplexer's queues
//! ([`Link`]: frames in, frames out with in-place ranges and offloads),
//! arpd ([`Neighbours`]: its table, read-only, and its `Resolve` call),
//! and the Ethernet framing around IPv4 (the node's MAC in, the next hop's
//! out). The PDs implement the traits over `net_client::NetClient` and
//! `arpd_api`; the tests over queues in memory.

use lib_net_protocol::{InPlaceList, TxOffload};
use net_config::Ipv4Address;
use net_packet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};

/// Bytes of an Ethernet header.
pub const ETHERNET_HEADER: usize = net_packet::ethernet::HEADER_LEN;
/// Largest Ethernet frame (no FCS, no VLAN tag).
pub const MAX_FRAME: usize = 1514;
/// Largest IP packet: the Ethernet MTU.
pub const MTU: usize = MAX_FRAME - ETHERNET_HEADER;

/// A frame [`Link::recv`] copied in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    /// The frame's TCP/UDP checksum was verified before it got here
    /// (`lib_net_protocol::RX_CSUM_VALID`: by the device, or completed by
    /// the demultiplexer): the receiver need not sum the segment again.
    pub checksum_verified: bool,
}

/// The demultiplexer's queues as the device needs them (`NetClient` in the
/// PD, queues in memory in tests).
pub trait Link {
    /// Copies the next received frame into `frame`; its length and whether
    /// its checksum was verified, or `None`.
    fn recv(&mut self, frame: &mut [u8; MAX_FRAME]) -> Option<Received>;
    /// Whether a transmit buffer is free.
    fn can_send(&mut self) -> bool;
    /// Gives `fill` the first `len` bytes of a free transmit buffer and
    /// queues the frame if it returns the frame's in-place ranges (sent
    /// from the `send_from` region instead of the buffer; an empty list
    /// sends the buffer alone). `Err(NoBuffer)` if no buffer could be had
    /// or the queue refused it (`fill` may not have run).
    fn send_gather(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>,
    ) -> Result<bool, NoBuffer> {
        self.send_offloaded(len, None, fill)
    }
    /// [`send_gather`](Link::send_gather) with an offload request for the
    /// device (`net-protocol`, "Offloads"). With TSO the frame may be up to
    /// [`MAX_TSO_FRAME_LEN`](lib_net_protocol::MAX_TSO_FRAME_LEN) bytes:
    /// `fill` gets its first [`MAX_FRAME`] (the headers) and the rest must
    /// be in place.
    fn send_offloaded(
        &mut self,
        len: usize,
        offload: Option<TxOffload>,
        fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>,
    ) -> Result<bool, NoBuffer>;
    /// The offloads the driver has (`net-protocol` `OFFLOAD_*` bits).
    fn offloads(&self) -> u64;
    /// Transmit buffers in flight, a bit each.
    fn tx_in_flight(&mut self) -> u64;
    /// Transmit buffers that came back since the last call, a bit each.
    fn take_tx_returned(&mut self) -> u64;
    /// Tells the demultiplexer about queued frames (and returned buffers)
    /// now, so that it sends them and returns the buffers while the PD
    /// goes on.
    fn flush(&mut self);
}

/// A frame could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoBuffer;

/// What arpd said about an address (its protocol's own type).
pub use arpd_api::Resolution;

/// IPv4-to-MAC translations: arpd's table (read-only) and arpd itself.
pub trait Neighbours {
    /// The MAC of `ip` if the table has a usable entry (no call).
    fn lookup(&self, ip: Ipv4Address) -> Option<[u8; 6]>;
    /// Asks arpd (`arpd_api::Arpd::resolve`).
    fn resolve(&mut self, ip: Ipv4Address) -> Resolution;
}

/// How long a next hop arpd could not resolve is not asked about again:
/// frames to it are dropped meanwhile (counted as before: `tx_arp_miss`
/// while arpd was still asking, `tx_no_route` once it gave up). arpd
/// notifies the PD when the entry appears, and the table is read first,
/// so a neighbour that answers is used at once.
pub const ASK_AGAIN_NS: u64 = 200_000_000;
/// Next hops [`Unanswered`] remembers (direct-mapped): a /24's worth.
pub const UNANSWERED_SLOTS: usize = 256;

/// Next hops arpd lately could not resolve, so that a flood of segments
/// from a silent or forged address costs one call to arpd per
/// [`ASK_AGAIN_NS`], not one per segment (each is a protected call, two
/// context switches and arpd's work, for an answer known in advance).
/// Direct-mapped by address: a colliding address only costs a call.
pub struct Unanswered {
    /// (address, until when, whether arpd had given up), or until = 0.
    slots: [(Ipv4Address, u64, bool); UNANSWERED_SLOTS],
}

impl Default for Unanswered {
    fn default() -> Self {
        Unanswered { slots: [(Ipv4Address([0; 4]), 0, false); UNANSWERED_SLOTS] }
    }
}

impl Unanswered {
    fn slot(ip: Ipv4Address) -> usize {
        (u32::from_be_bytes(ip.0).wrapping_mul(0x9e37_79b1) >> 24) as usize % UNANSWERED_SLOTS
    }

    /// Whether `ip` went unanswered less than [`ASK_AGAIN_NS`] before
    /// `now`: `Some(failed)` (arpd had given up), or `None` (ask arpd).
    pub fn recent(&self, ip: Ipv4Address, now: u64) -> Option<bool> {
        let (at, until, failed) = self.slots[Self::slot(ip)];
        (at == ip && now < until).then_some(failed)
    }

    /// arpd did not resolve `ip` at `now` (`failed`: it gave up).
    pub fn note(&mut self, ip: Ipv4Address, now: u64, failed: bool) {
        self.slots[Self::slot(ip)] = (ip, now.saturating_add(ASK_AGAIN_NS), failed);
    }
}

/// Frames the device passed on or dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// IPv4 packets passed on to the stack.
    pub rx_packets: u64,
    /// Frames shorter than an Ethernet header, or not IPv4.
    pub rx_not_ipv4: u64,
    /// Frames for another station.
    pub rx_not_for_us: u64,
    /// Frames queued to the demultiplexer.
    pub tx_frames: u64,
    /// Packets dropped because the next hop's MAC was not in the table
    /// (arpd was asked).
    pub tx_arp_miss: u64,
    /// Packets dropped because the next hop could not be resolved at all
    /// (no route, arpd failed), or the packet was not IPv4.
    pub tx_no_route: u64,
    /// Packets dropped for want of a transmit buffer at the last moment.
    pub tx_no_buffer: u64,
    /// TCP segments not sent because their sequence numbers did not fit
    /// the connection's stream ([`crate::inplace::PlanError`]).
    pub tx_unplanned: u64,
    /// Payload bytes sent in place from the `send_from` region.
    pub tx_in_place_bytes: u64,
}

/// Checks a received frame's Ethernet header: the IPv4 packet it carries,
/// or why it is dropped.
pub fn strip_ethernet<'f>(frame: &'f [u8], own_mac: &[u8; 6], counters: &mut DeviceCounters) -> Option<&'f [u8]> {
    let Some(frame) = EthernetFrame::parse(frame).ok().filter(|f| f.ethertype() == EtherType::IPV4) else {
        counters.rx_not_ipv4 += 1;
        return None;
    };
    let dst = frame.dst();
    if dst.0 != *own_mac && !dst.is_broadcast() {
        counters.rx_not_for_us += 1;
        return None;
    }
    counters.rx_packets += 1;
    Some(frame.payload())
}

/// Writes the Ethernet header of an IPv4 frame from `src` to `dst` (the
/// next hop) at the start of `frame`; `None` if `frame` is shorter than a
/// header.
pub fn write_ethernet(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) -> Option<()> {
    EthernetRepr { dst: EthernetAddress(dst), src: EthernetAddress(src), ethertype: EtherType::IPV4 }.emit(frame)
}
