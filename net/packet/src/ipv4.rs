//! IPv4 headers (RFC 791 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version|  IHL  |Type of Service|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options                    |    Padding    |
//! ```

use crate::checksum;
use crate::ethernet::read_array;
use crate::Malformed;

/// An IPv4 address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Address(pub [u8; 4]);

impl Ipv4Address {
    /// 0.0.0.0: "this host" (RFC 1122 §3.2.1.3), never a destination.
    pub const UNSPECIFIED: Ipv4Address = Ipv4Address([0; 4]);
    /// 255.255.255.255: limited broadcast.
    pub const BROADCAST: Ipv4Address = Ipv4Address([255; 4]);

    /// `a.b.c.d`.
    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Self {
        Ipv4Address([a, b, c, d])
    }

    /// The address as a host-order integer (`10.0.0.1` → `0x0a00_0001`).
    pub const fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }

    /// The address of a host-order integer.
    pub const fn from_u32(value: u32) -> Self {
        Ipv4Address(value.to_be_bytes())
    }

    /// The address in `bytes[..4]`, or `None` if there are fewer.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Ipv4Address(bytes.get(..4)?.try_into().ok()?))
    }

    /// 0.0.0.0.
    pub fn is_unspecified(&self) -> bool {
        *self == Self::UNSPECIFIED
    }

    /// 255.255.255.255.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// 224.0.0.0/4 (RFC 5771).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 224
    }

    /// 127.0.0.0/8.
    pub fn is_loopback(&self) -> bool {
        self.0[0] == 127
    }

    /// Neither unspecified, broadcast, multicast, loopback nor class E
    /// (240.0.0.0/4): an address a single remote host can have. (A subnet's
    /// directed broadcast is not recognisable without the netmask.)
    pub fn is_unicast(&self) -> bool {
        !self.is_unspecified() && !self.is_loopback() && self.0[0] < 224
    }
}

/// The Protocol field: which header follows the IPv4 header (IANA
/// "Assigned Internet Protocol Numbers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const ICMP: IpProtocol = IpProtocol(1);
    pub const TCP: IpProtocol = IpProtocol(6);
    pub const UDP: IpProtocol = IpProtocol(17);

    /// Whether the protocol carries 16-bit source and destination ports in
    /// its first four bytes (of the ones parsed here: TCP and UDP).
    pub fn has_ports(self) -> bool {
        self == Self::TCP || self == Self::UDP
    }
}

/// Bytes of an IPv4 header without options (IHL 5).
pub const HEADER_LEN: usize = 20;
/// The Don't Fragment flag in the flags/fragment-offset word.
const FLAG_DONT_FRAGMENT: u16 = 0x4000;
/// The More Fragments flag in the flags/fragment-offset word.
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
/// The fragment offset (in 8-byte units) in the flags/fragment-offset word.
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

/// A read-only view of an IPv4 packet.
///
/// [`Ipv4Packet::parse`] checks the whole packet against the frame it came
/// in; [`Ipv4Packet::parse_header`] checks only the header, for a copy of
/// outgoing headers whose payload is elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// A received packet at the start of `bytes` (the Ethernet payload,
    /// which may carry padding after the packet). Checks, in order, per RFC
    /// 791 §3.1:
    ///
    /// - the fixed 20-byte header is present ([`Malformed::Truncated`]);
    /// - "Version: 4 bits ... 4" ([`Malformed::BadIpVersion`]);
    /// - "IHL ... the minimum value for a correct header is 5", and the
    ///   header fits in `bytes` ([`Malformed::BadIhl`]);
    /// - IHL × 4 ≤ total length ≤ `bytes.len()` ([`Malformed::BadTotalLength`]);
    /// - "The checksum field is the 16 bit one's complement of the one's
    ///   complement sum of all 16 bit words in the header"
    ///   ([`Malformed::BadIpChecksum`]).
    ///
    /// Fragments and options are *valid* IPv4 and are reported by
    /// [`Ipv4Packet::is_fragment`] and [`Ipv4Packet::has_options`] for the
    /// caller's policy to decide.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Malformed> {
        let packet = Self::parse_header(bytes)?;
        let total = usize::from(packet.total_len());
        if total < packet.header_len() || total > bytes.len() {
            return Err(Malformed::BadTotalLength);
        }
        if !checksum::verify(packet.header()) {
            return Err(Malformed::BadIpChecksum);
        }
        Ok(packet)
    }

    /// Only the version and IHL checks of [`Ipv4Packet::parse`]: the header
    /// is present and well-formed; the total length and checksum are not
    /// looked at.
    pub fn parse_header(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        let packet = Ipv4Packet { bytes };
        if packet.version() != 4 {
            return Err(Malformed::BadIpVersion);
        }
        if packet.ihl() < 5 || packet.header_len() > bytes.len() {
            return Err(Malformed::BadIhl);
        }
        Ok(packet)
    }

    /// The version field (4 once parsed).
    pub fn version(&self) -> u8 {
        self.bytes[0] >> 4
    }

    /// The Internet Header Length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        self.bytes[0] & 0x0f
    }

    /// The header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The header bytes, options included.
    pub fn header(&self) -> &'a [u8] {
        &self.bytes[..self.header_len()]
    }

    /// The Type of Service octet (DSCP and ECN, RFC 2474/3168).
    pub fn dscp_ecn(&self) -> u8 {
        self.bytes[1]
    }

    /// The total length field: header and data, in bytes.
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 2))
    }

    /// The Identification field.
    pub fn identification(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 4))
    }

    fn flags_and_offset(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 6))
    }

    /// The Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.flags_and_offset() & FLAG_DONT_FRAGMENT != 0
    }

    /// The More Fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.flags_and_offset() & FLAG_MORE_FRAGMENTS != 0
    }

    /// The fragment offset in bytes.
    pub fn fragment_offset(&self) -> u16 {
        (self.flags_and_offset() & FRAGMENT_OFFSET_MASK) * 8
    }

    /// Whether this is a fragment of a larger datagram: More Fragments set
    /// or a non-zero offset (RFC 791 §3.2: an unfragmented datagram "has
    /// all zero fragmentation information").
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// Whether the header carries options (IHL above 5).
    pub fn has_options(&self) -> bool {
        self.ihl() > 5
    }

    /// Time to Live.
    pub fn ttl(&self) -> u8 {
        self.bytes[8]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.bytes[9])
    }

    /// The header checksum field.
    pub fn header_checksum(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 10))
    }

    /// The source address.
    pub fn src(&self) -> Ipv4Address {
        Ipv4Address(read_array(self.bytes, 12))
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv4Address {
        Ipv4Address(read_array(self.bytes, 16))
    }

    /// The data after the header, up to the total length (or to the end of
    /// the bytes viewed, if they are shorter, as after
    /// [`Ipv4Packet::parse_header`]).
    pub fn payload(&self) -> &'a [u8] {
        let end = usize::from(self.total_len()).min(self.bytes.len());
        self.bytes.get(self.header_len()..end).unwrap_or(&[])
    }

    /// The header and data: the packet without any Ethernet padding.
    pub fn packet(&self) -> &'a [u8] {
        let end = usize::from(self.total_len()).min(self.bytes.len());
        &self.bytes[..end.max(self.header_len())]
    }
}

/// The fields of an option-less, unfragmented IPv4 header, for writing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub protocol: IpProtocol,
    /// Bytes of data after the header.
    pub payload_len: u16,
    pub ttl: u8,
}

impl Ipv4Repr {
    /// The TTL that builders use: RFC 1700's recommended default.
    pub const DEFAULT_TTL: u8 = 64;

    /// Writes a 20-byte header with IHL 5, TOS 0, identification 0, Don't
    /// Fragment set (RFC 6864 §4.1: the ID field of an atomic datagram is
    /// meaningless) and a valid header checksum. `None` if `buf` is shorter
    /// than 20 bytes or the total length would exceed 65535.
    pub fn emit(&self, buf: &mut [u8]) -> Option<()> {
        let total = self.payload_len.checked_add(HEADER_LEN as u16)?;
        let header = buf.get_mut(..HEADER_LEN)?;
        header[0] = 0x45;
        header[1] = 0;
        header[2..4].copy_from_slice(&total.to_be_bytes());
        header[4..6].copy_from_slice(&[0, 0]);
        header[6..8].copy_from_slice(&FLAG_DONT_FRAGMENT.to_be_bytes());
        header[8] = self.ttl;
        header[9] = self.protocol.0;
        header[10..12].copy_from_slice(&[0, 0]);
        header[12..16].copy_from_slice(&self.src.0);
        header[16..20].copy_from_slice(&self.dst.0);
        let sum = checksum::checksum(header);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Wikipedia's "IPv4 header checksum": UDP,
    /// 192.168.0.1 → 192.168.0.199, checksum 0xb861 computed by hand there.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    fn packet_with_payload() -> [u8; 0x73] {
        let mut bytes = [0u8; 0x73];
        bytes[..20].copy_from_slice(&HEADER);
        bytes
    }

    #[test]
    fn known_good_header_parses() {
        let bytes = packet_with_payload();
        let packet = Ipv4Packet::parse(&bytes).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 0x73);
        assert!(packet.dont_fragment());
        assert!(!packet.is_fragment());
        assert!(!packet.has_options());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), IpProtocol::UDP);
        assert_eq!(packet.header_checksum(), 0xb861);
        assert_eq!(packet.src(), Ipv4Address::new(192, 168, 0, 1));
        assert_eq!(packet.dst(), Ipv4Address::new(192, 168, 0, 199));
        assert_eq!(packet.payload().len(), 0x73 - 20);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut bytes = [0u8; 60];
        let repr = Ipv4Repr {
            src: Ipv4Address::new(10, 0, 0, 1),
            dst: Ipv4Address::new(10, 0, 0, 2),
            protocol: IpProtocol::ICMP,
            payload_len: 8,
            ttl: 64,
        };
        repr.emit(&mut bytes).unwrap();
        let packet = Ipv4Packet::parse(&bytes).unwrap();
        assert_eq!(packet.payload().len(), 8);
        assert_eq!(packet.packet().len(), 28);
    }

    #[test]
    fn each_header_check_has_its_reason() {
        let good = packet_with_payload();
        assert_eq!(Ipv4Packet::parse(&good[..19]).unwrap_err(), Malformed::Truncated);

        let mut bad = good;
        bad[0] = 0x65;
        assert_eq!(Ipv4Packet::parse(&bad).unwrap_err(), Malformed::BadIpVersion);

        bad = good;
        bad[0] = 0x44;
        assert_eq!(Ipv4Packet::parse(&bad).unwrap_err(), Malformed::BadIhl);
        bad[0] = 0x4f; // 60 bytes of header in a 40-byte slice
        assert_eq!(Ipv4Packet::parse(&bad[..40]).unwrap_err(), Malformed::BadIhl);

        bad = good;
        bad[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Packet::parse(&bad).unwrap_err(), Malformed::BadTotalLength);
        assert_eq!(Ipv4Packet::parse(&good[..0x72]).unwrap_err(), Malformed::BadTotalLength);

        bad = good;
        bad[8] = 63; // TTL changed, checksum not updated
        assert_eq!(Ipv4Packet::parse(&bad).unwrap_err(), Malformed::BadIpChecksum);
    }

    #[test]
    fn fragments_are_reported() {
        for (flags_offset, fragment) in
            [(0x4000u16, false), (0x2000, true), (0x0001, true), (0x0000, false), (0x3fff, true)]
        {
            let mut bytes = packet_with_payload();
            bytes[6..8].copy_from_slice(&flags_offset.to_be_bytes());
            bytes[10..12].copy_from_slice(&[0, 0]);
            let sum = checksum::checksum(&bytes[..20]);
            bytes[10..12].copy_from_slice(&sum.to_be_bytes());
            let packet = Ipv4Packet::parse(&bytes).unwrap();
            assert_eq!(packet.is_fragment(), fragment, "{flags_offset:#06x}");
        }
    }

    #[test]
    fn emit_writes_a_header_that_parses_back() {
        let repr = Ipv4Repr {
            src: Ipv4Address::new(10, 1, 2, 3),
            dst: Ipv4Address::new(172, 16, 0, 9),
            protocol: IpProtocol::TCP,
            payload_len: 20,
            ttl: Ipv4Repr::DEFAULT_TTL,
        };
        let mut bytes = [0u8; 40];
        repr.emit(&mut bytes).unwrap();
        let packet = Ipv4Packet::parse(&bytes).unwrap();
        assert_eq!((packet.src(), packet.dst(), packet.protocol()), (repr.src, repr.dst, repr.protocol));
        assert_eq!(packet.total_len(), 40);
        assert!(repr.emit(&mut [0u8; 19]).is_none());
        assert!(Ipv4Repr { payload_len: u16::MAX, ..repr }.emit(&mut bytes).is_none());
    }

    #[test]
    fn address_kinds() {
        assert!(Ipv4Address::new(10, 0, 0, 1).is_unicast());
        assert!(!Ipv4Address::new(224, 0, 0, 1).is_unicast());
        assert!(Ipv4Address::new(239, 255, 255, 250).is_multicast());
        assert!(!Ipv4Address::BROADCAST.is_unicast());
        assert!(!Ipv4Address::UNSPECIFIED.is_unicast());
        assert!(!Ipv4Address::new(127, 0, 0, 1).is_unicast());
        assert_eq!(Ipv4Address::new(10, 0, 0, 1).to_u32(), 0x0a00_0001);
        assert_eq!(Ipv4Address::from_u32(0x0a00_0001), Ipv4Address::new(10, 0, 0, 1));
    }
}
