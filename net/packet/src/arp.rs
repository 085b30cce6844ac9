//! ARP for IPv4 over Ethernet (RFC 826), and the frames `arpd` sends:
//! replies, requests and gratuitous announcements (RFC 5227 §3).
//!
//! ```text
//! | hardware type (1) | protocol type (0x0800) | hlen 6 | plen 4 | operation |
//! | sender MAC | sender IPv4 | target MAC | target IPv4 |
//! ```

use crate::ethernet::{self, read_array, EtherType, EthernetAddress, EthernetRepr};
use crate::ipv4::Ipv4Address;
use crate::Malformed;

/// Bytes of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// `ar$hrd` for Ethernet.
const HARDWARE_ETHERNET: u16 = 1;

/// The ARP operation (`ar$op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
}

impl ArpOperation {
    fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A read-only view of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug)]
pub struct ArpPacket<'a> {
    bytes: &'a [u8],
}

impl<'a> ArpPacket<'a> {
    /// The packet at the start of `bytes` (the Ethernet payload). RFC 826
    /// says a receiver checks "Do I have the hardware type in ar$hrd? ...
    /// Do I speak the protocol in ar$pro?"; anything other than Ethernet
    /// (1, length 6) and IPv4 (0x0800, length 4), or an operation other than
    /// request (1) or reply (2), is [`Malformed::UnsupportedArp`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() < PACKET_LEN {
            return Err(Malformed::Truncated);
        }
        let packet = ArpPacket { bytes };
        let hardware = u16::from_be_bytes(read_array(bytes, 0));
        let protocol = EtherType(u16::from_be_bytes(read_array(bytes, 2)));
        let supported = hardware == HARDWARE_ETHERNET && protocol == EtherType::IPV4 && bytes[4] == 6 && bytes[5] == 4;
        if !supported || packet.operation().is_none() {
            return Err(Malformed::UnsupportedArp);
        }
        Ok(packet)
    }

    /// The operation; `Some` once parsed.
    pub fn operation(&self) -> Option<ArpOperation> {
        match u16::from_be_bytes(read_array(self.bytes, 6)) {
            1 => Some(ArpOperation::Request),
            2 => Some(ArpOperation::Reply),
            _ => None,
        }
    }

    pub fn sender_mac(&self) -> EthernetAddress {
        EthernetAddress(read_array(self.bytes, 8))
    }

    pub fn sender_ip(&self) -> Ipv4Address {
        Ipv4Address(read_array(self.bytes, 14))
    }

    pub fn target_mac(&self) -> EthernetAddress {
        EthernetAddress(read_array(self.bytes, 18))
    }

    pub fn target_ip(&self) -> Ipv4Address {
        Ipv4Address(read_array(self.bytes, 24))
    }
}

/// The fields of an Ethernet/IPv4 ARP packet, for writing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_mac: EthernetAddress,
    pub sender_ip: Ipv4Address,
    pub target_mac: EthernetAddress,
    pub target_ip: Ipv4Address,
}

impl ArpRepr {
    /// A request asking who has `target_ip` (RFC 826: target hardware
    /// address unknown, sent as zero; the frame goes to broadcast).
    pub fn request(mac: EthernetAddress, ip: Ipv4Address, target_ip: Ipv4Address) -> Self {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: EthernetAddress::ZERO,
            target_ip,
        }
    }

    /// A gratuitous announcement of `ip` at `mac`: RFC 5227 §3 "ARP
    /// Announcement", a request whose sender and target IP are both the
    /// announced address and whose target hardware address is zero.
    pub fn gratuitous(mac: EthernetAddress, ip: Ipv4Address) -> Self {
        Self::request(mac, ip, ip)
    }

    /// The reply to `request` from the holder of its target address, who
    /// is at `mac`. RFC 826: swap sender and target, put the local hardware
    /// address in the sender field, set the opcode to reply. `None` unless
    /// `request` is a request.
    pub fn reply_to(request: &ArpPacket<'_>, mac: EthernetAddress) -> Option<Self> {
        if request.operation()? != ArpOperation::Request {
            return None;
        }
        Some(ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: request.target_ip(),
            target_mac: request.sender_mac(),
            target_ip: request.sender_ip(),
        })
    }

    /// Where the frame carrying this packet goes: broadcast for a request,
    /// the requester for a reply.
    pub fn ethernet_dst(&self) -> EthernetAddress {
        match self.operation {
            ArpOperation::Request => EthernetAddress::BROADCAST,
            ArpOperation::Reply => self.target_mac,
        }
    }

    /// Writes the 28-byte packet into `buf[..28]`; `None` if shorter.
    pub fn emit(&self, buf: &mut [u8]) -> Option<()> {
        let packet = buf.get_mut(..PACKET_LEN)?;
        packet[0..2].copy_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        packet[2..4].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        packet[4] = 6;
        packet[5] = 4;
        packet[6..8].copy_from_slice(&self.operation.code().to_be_bytes());
        packet[8..14].copy_from_slice(&self.sender_mac.0);
        packet[14..18].copy_from_slice(&self.sender_ip.0);
        packet[18..24].copy_from_slice(&self.target_mac.0);
        packet[24..28].copy_from_slice(&self.target_ip.0);
        Some(())
    }

    /// Writes the whole frame (Ethernet header from
    /// [`ArpRepr::ethernet_dst`] and `sender_mac`, packet, zero padding to
    /// the 60-byte minimum) into `buf`; returns its length, or `None` if
    /// `buf` is shorter than 60 bytes.
    pub fn emit_frame(&self, buf: &mut [u8]) -> Option<usize> {
        let frame = buf.get_mut(..ethernet::MIN_FRAME_LEN)?;
        EthernetRepr { dst: self.ethernet_dst(), src: self.sender_mac, ethertype: EtherType::ARP }.emit(frame)?;
        self.emit(&mut frame[ethernet::HEADER_LEN..])?;
        frame[ethernet::HEADER_LEN + PACKET_LEN..].fill(0);
        Some(ethernet::MIN_FRAME_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0xa]);
    const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0xb]);
    const IP_A: Ipv4Address = Ipv4Address::new(10, 0, 0, 10);
    const IP_B: Ipv4Address = Ipv4Address::new(10, 0, 0, 11);

    /// A request from A for B, as on the wire.
    const REQUEST: [u8; 28] =
        [0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 0xa, 10, 0, 0, 10, 0, 0, 0, 0, 0, 0, 10, 0, 0, 11];

    #[test]
    fn known_good_request() {
        let packet = ArpPacket::parse(&REQUEST).unwrap();
        assert_eq!(packet.operation(), Some(ArpOperation::Request));
        assert_eq!((packet.sender_mac(), packet.sender_ip()), (MAC_A, IP_A));
        assert_eq!((packet.target_mac(), packet.target_ip()), (EthernetAddress::ZERO, IP_B));
        let mut written = [0u8; 28];
        ArpRepr::request(MAC_A, IP_A, IP_B).emit(&mut written).unwrap();
        assert_eq!(written, REQUEST);
    }

    #[test]
    fn unsupported_variants_are_refused() {
        assert_eq!(ArpPacket::parse(&REQUEST[..27]).unwrap_err(), Malformed::Truncated);
        for (at, value) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16), (7, 3), (7, 0)] {
            let mut bytes = REQUEST;
            bytes[at] = value;
            assert_eq!(ArpPacket::parse(&bytes).unwrap_err(), Malformed::UnsupportedArp, "{at}");
        }
    }

    #[test]
    fn reply_swaps_sender_and_target() {
        let request = ArpPacket::parse(&REQUEST).unwrap();
        let reply = ArpRepr::reply_to(&request, MAC_B).unwrap();
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!((reply.sender_mac, reply.sender_ip), (MAC_B, IP_B));
        assert_eq!((reply.target_mac, reply.target_ip), (MAC_A, IP_A));
        assert_eq!(reply.ethernet_dst(), MAC_A);

        let mut frame = [0xeeu8; 64];
        assert_eq!(reply.emit_frame(&mut frame), Some(60));
        let ethernet = ethernet::EthernetFrame::parse(&frame[..60]).unwrap();
        assert_eq!((ethernet.dst(), ethernet.src(), ethernet.ethertype()), (MAC_A, MAC_B, EtherType::ARP));
        assert!(frame[42..60].iter().all(|&b| b == 0));
        let parsed = ArpPacket::parse(ethernet.payload()).unwrap();
        assert_eq!(parsed.operation(), Some(ArpOperation::Reply));

        let reply_packet = {
            let mut bytes = [0u8; 28];
            reply.emit(&mut bytes).unwrap();
            bytes
        };
        assert!(ArpRepr::reply_to(&ArpPacket::parse(&reply_packet).unwrap(), MAC_A).is_none());
        assert!(reply.emit_frame(&mut [0u8; 59]).is_none());
    }

    #[test]
    fn gratuitous_announces_own_address() {
        let announcement = ArpRepr::gratuitous(MAC_A, IP_A);
        assert_eq!(announcement.operation, ArpOperation::Request);
        assert_eq!((announcement.sender_ip, announcement.target_ip), (IP_A, IP_A));
        assert_eq!(announcement.target_mac, EthernetAddress::ZERO);
        assert_eq!(announcement.ethernet_dst(), EthernetAddress::BROADCAST);
    }
}
