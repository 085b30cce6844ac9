//! Ethernet II frames (IEEE 802.3 clause 3.2.6, "Length/Type" ≥ 0x0600 is a
//! type): destination, source, EtherType, payload. The FCS is not part of
//! the frame as drivers hand it over.

use crate::Malformed;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// 00:00:00:00:00:00, the "unknown" target hardware address of an ARP
    /// request (RFC 826).
    pub const ZERO: EthernetAddress = EthernetAddress([0; 6]);

    /// The address in `bytes[..6]`, or `None` if there are fewer.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(EthernetAddress(bytes.get(..6)?.try_into().ok()?))
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit (least significant bit of the first octet) is
    /// set: multicast, including broadcast.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address other than zero.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::ZERO
    }
}

/// The EtherType field of an Ethernet II frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    /// Internet Protocol version 4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// Address Resolution Protocol (RFC 826).
    pub const ARP: EtherType = EtherType(0x0806);
    /// IPv6 (not parsed; classified as "other").
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// IEEE 802.1Q VLAN tag (not parsed; classified as "other").
    pub const VLAN: EtherType = EtherType(0x8100);
}

/// Bytes of an Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Shortest frame on the wire without FCS (IEEE 802.3: 64 bytes with FCS).
/// Builders pad shorter frames with zeros to this length.
pub const MIN_FRAME_LEN: usize = 60;

/// A read-only view of an Ethernet II frame whose header is present.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<'a> {
    bytes: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// A view of `bytes`, which must hold at least the 14-byte header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(EthernetFrame { bytes })
    }

    /// The destination address.
    pub fn dst(&self) -> EthernetAddress {
        EthernetAddress(read_array(self.bytes, 0))
    }

    /// The source address.
    pub fn src(&self) -> EthernetAddress {
        EthernetAddress(read_array(self.bytes, 6))
    }

    /// The EtherType.
    pub fn ethertype(&self) -> EtherType {
        EtherType(u16::from_be_bytes(read_array(self.bytes, 12)))
    }

    /// Everything after the header, including any padding up to the
    /// 60-byte minimum.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// The fields of an Ethernet II header, for writing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: EthernetAddress,
    pub src: EthernetAddress,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Writes the header into `buf[..14]`; `None` if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> Option<()> {
        let header = buf.get_mut(..HEADER_LEN)?;
        header[0..6].copy_from_slice(&self.dst.0);
        header[6..12].copy_from_slice(&self.src.0);
        header[12..14].copy_from_slice(&self.ethertype.0.to_be_bytes());
        Some(())
    }
}

/// `N` bytes of `bytes` at `at`. Callers check the length first; a short
/// slice yields zeros rather than a panic.
pub(crate) fn read_array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(src) = bytes.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_in_network_order() {
        let mut frame = [0u8; 20];
        frame[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
        frame[12..14].copy_from_slice(&[0x08, 0x06]);
        let view = EthernetFrame::parse(&frame).unwrap();
        assert_eq!(view.dst(), EthernetAddress([1, 2, 3, 4, 5, 6]));
        assert_eq!(view.src(), EthernetAddress([2, 0, 0, 0, 0, 9]));
        assert_eq!(view.ethertype(), EtherType::ARP);
        assert_eq!(view.payload().len(), 6);
    }

    #[test]
    fn short_frames_are_truncated() {
        assert_eq!(EthernetFrame::parse(&[0; 13]).unwrap_err(), Malformed::Truncated);
        assert!(EthernetFrame::parse(&[0; 14]).is_ok());
    }

    #[test]
    fn emit_round_trips() {
        let repr = EthernetRepr {
            dst: EthernetAddress::BROADCAST,
            src: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EtherType::IPV4,
        };
        let mut buf = [0u8; 14];
        repr.emit(&mut buf).unwrap();
        let view = EthernetFrame::parse(&buf).unwrap();
        assert_eq!((view.dst(), view.src(), view.ethertype()), (repr.dst, repr.src, repr.ethertype));
        assert!(repr.emit(&mut [0u8; 13]).is_none());
    }

    #[test]
    fn address_kinds() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(EthernetAddress([0x02, 0, 0, 0, 0, 1]).is_unicast());
        assert!(!EthernetAddress::ZERO.is_unicast());
    }
}
