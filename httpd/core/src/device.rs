//! The PD's network device for smoltcp: IP packets in Ethernet frames,
//! over the demultiplexer's queues.
//!
//! smoltcp runs with `Medium::Ip`: ARP is arpd's job, not the stack's. So
//! the device does the link layer itself:
//!
//! - **Receive.** Each frame is copied once out of the shared receive
//!   buffer (which goes back to the demultiplexer at once: the copy is what
//!   smoltcp parses, so the demultiplexer's later writes to a reused buffer
//!   cannot change it mid-parse) into the device's one receive buffer. A
//!   frame is passed on, without its Ethernet header, only if its EtherType
//!   is IPv4 and its destination is the node's MAC or broadcast; others are
//!   counted and dropped (the demultiplexer only delivers what this PD
//!   claimed, so these mean a misbehaving peer or demultiplexer).
//! - **Transmit.** smoltcp writes the IP packet straight into a transmit
//!   buffer of the demultiplexer's queue, after room for the Ethernet
//!   header. For TCP the device then asks the server's [`Planner`] which
//!   ranges of the payload are file data to send in place from the file
//!   cache ([`crate::inplace`]) and writes the TCP checksum (smoltcp is
//!   told to leave it to the device). Then it reads the packet's
//!   destination, takes the next hop ([`NodeAddress::next_hop`]: the
//!   destination on the link, else the gateway) and looks its MAC up in
//!   arpd's table. On a miss it asks arpd ([`Neighbours::resolve`]); if
//!   arpd does not know the MAC yet, the frame is dropped and counted: TCP
//!   retransmits, and arpd notifies the PD when the entry appears. With no
//!   free transmit buffer the device offers no transmit token, so smoltcp
//!   keeps the data queued until buffers return.
//!
//! Nothing is allocated per frame: one receive buffer and one scratch
//! transmit buffer (used only if a token cannot get a real buffer, which
//! smoltcp's contract forces the device to run the closure anyway).

use crate::inplace::{finish_packet, Planner};
use net_config::{Ipv4Address, NodeAddress};
use net_packet::{IpProtocol, Ipv4Packet, TcpSegment};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The link, arpd and the framing the device stands on (net-serve's, which
/// the Cheetah server shares).
pub use net_serve::link::*;

/// Whether an IPv4 packet is a TCP segment with SYN or RST set (one that
/// may change a listening socket). Malformed packets say `false`: smoltcp
/// drops them.
fn opens_or_resets(packet: &[u8]) -> bool {
    let Ok(ip) = Ipv4Packet::parse_header(packet) else {
        return false;
    };
    ip.protocol() == IpProtocol::TCP
        && TcpSegment::parse_header(ip.payload()).is_ok_and(|tcp| {
            let flags = tcp.flags();
            flags.syn() || flags.rst()
        })
}

/// The destination of an IPv4 packet, if it is one.
fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Address> {
    Ipv4Packet::parse_header(packet).ok().map(|ip| ip.dst())
}

/// Decides the destination MAC of an outgoing IPv4 packet and counts a
/// failure: table first, then arpd.
fn destination_mac(
    packet: &[u8],
    node: &NodeAddress,
    neighbours: &mut impl Neighbours,
    counters: &mut DeviceCounters,
) -> Option<[u8; 6]> {
    let Some(hop) = ipv4_destination(packet).and_then(|dst| node.next_hop(dst)) else {
        counters.tx_no_route += 1;
        return None;
    };
    if let Some(mac) = neighbours.lookup(hop) {
        return Some(mac);
    }
    match neighbours.resolve(hop) {
        Resolution::Known(mac) => Some(mac.0),
        Resolution::Pending => {
            counters.tx_arp_miss += 1;
            None
        }
        Resolution::Failed | Resolution::NotOnLink => {
            counters.tx_no_route += 1;
            None
        }
    }
}

/// The device's state: the link, arpd, and its buffers. smoltcp drives it
/// through a [`Transmitter`], which adds the server's [`Planner`].
pub struct EthDevice<L, N> {
    pub link: L,
    pub neighbours: N,
    pub node: NodeAddress,
    pub mac: [u8; 6],
    pub counters: DeviceCounters,
    /// A TCP segment with SYN or RST arrived: a listening socket may have
    /// started (or dropped) a handshake. The server looks at every slot
    /// then, and only at its busy ones otherwise.
    pub listeners_may_change: bool,
    rx_frame: [u8; MAX_FRAME],
    tx_scratch: [u8; MAX_FRAME],
}

impl<L: Link, N: Neighbours> EthDevice<L, N> {
    pub fn new(link: L, neighbours: N, node: NodeAddress, mac: [u8; 6]) -> Self {
        EthDevice {
            link,
            neighbours,
            node,
            mac,
            counters: DeviceCounters::default(),
            listeners_may_change: false,
            rx_frame: [0; MAX_FRAME],
            tx_scratch: [0; MAX_FRAME],
        }
    }

    /// The smoltcp device for one poll, planning TCP payloads with `planner`.
    pub fn with_planner<'a, P: Planner>(&'a mut self, planner: &'a mut P) -> Transmitter<'a, L, N, P> {
        Transmitter { device: self, planner }
    }
}

/// The smoltcp device (see the module docs): the device's state and the
/// planner of outgoing TCP payloads.
pub struct Transmitter<'a, L, N, P> {
    device: &'a mut EthDevice<L, N>,
    planner: &'a mut P,
}

/// A received IPv4 packet, already copied out of the shared buffer.
pub struct RxToken<'a> {
    packet: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.packet)
    }
}

/// Room for one IPv4 packet in a transmit buffer.
pub struct TxToken<'a, L, N, P> {
    link: &'a mut L,
    neighbours: &'a mut N,
    node: &'a NodeAddress,
    mac: [u8; 6],
    counters: &'a mut DeviceCounters,
    scratch: &'a mut [u8; MAX_FRAME],
    planner: &'a mut P,
}

impl<L: Link, N: Neighbours, P: Planner> phy::TxToken for TxToken<'_, L, N, P> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let TxToken { link, neighbours, node, mac, counters, scratch, planner } = self;
        let mut result = None;
        let mut f = Some(f);
        let sent = link.send_gather(ETHERNET_HEADER + len, |frame| {
            let f = f.take()?;
            let (header, packet) = frame.split_at_mut(ETHERNET_HEADER);
            result = Some(f(packet));
            // Planned even if the frame is dropped below: what the stack
            // built tells the connection's stream where it stands.
            let Ok(in_place) = finish_packet(packet, ETHERNET_HEADER, planner) else {
                counters.tx_unplanned += 1;
                return None;
            };
            let dst = destination_mac(packet, node, neighbours, counters)?;
            write_ethernet(header, dst, mac)?;
            counters.tx_in_place_bytes += in_place.as_slice().iter().map(|r| r.len as u64).sum::<u64>();
            Some(in_place)
        });
        match sent {
            Ok(true) => counters.tx_frames += 1,
            Ok(false) => {}
            Err(NoBuffer) => counters.tx_no_buffer += 1,
        }
        match (result, f) {
            (Some(r), _) => r,
            // No buffer (or a length no frame has): smoltcp still needs its
            // closure run; the packet goes nowhere and TCP retransmits.
            (None, Some(f)) => {
                let packet = &mut scratch[..len.min(MTU)];
                let r = f(packet);
                let _ = finish_packet(packet, ETHERNET_HEADER, planner);
                r
            }
            (None, None) => unreachable!("the closure ran and produced a result"),
        }
    }
}

impl<'d, L: Link, N: Neighbours, P: Planner> phy::Device for Transmitter<'d, L, N, P> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, L, N, P>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_, L, N, P>)> {
        let device = &mut *self.device;
        if !device.link.can_send() {
            // smoltcp may answer a packet at once (an ACK); without a
            // transmit buffer the packet waits in the queue.
            return None;
        }
        loop {
            let len = device.link.recv(&mut device.rx_frame)?.len;
            let start = match strip_ethernet(&device.rx_frame[..len], &device.mac, &mut device.counters) {
                Some(packet) => {
                    device.listeners_may_change |= opens_or_resets(packet);
                    ETHERNET_HEADER
                }
                None => continue,
            };
            let EthDevice { link, neighbours, node, mac, counters, rx_frame, tx_scratch, .. } = device;
            let rx = RxToken { packet: &rx_frame[start..len] };
            let tx = TxToken {
                link,
                neighbours,
                node,
                mac: *mac,
                counters,
                scratch: tx_scratch,
                planner: &mut *self.planner,
            };
            return Some((rx, tx));
        }
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, L, N, P>> {
        let device = &mut *self.device;
        if !device.link.can_send() {
            return None;
        }
        let EthDevice { link, neighbours, node, mac, counters, tx_scratch, .. } = device;
        Some(TxToken { link, neighbours, node, mac: *mac, counters, scratch: tx_scratch, planner: &mut *self.planner })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        // The device checksums outgoing TCP itself (`finish_packet`): file
        // data sent in place is not in the buffer smoltcp writes.
        caps.checksum.tcp = phy::Checksum::Rx;
        caps
    }
}
