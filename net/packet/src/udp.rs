//! UDP datagrams (RFC 768).
//!
//! ```text
//! |     Source Port     |   Destination Port  |
//! |       Length        |      Checksum       |
//! ```

use crate::checksum::Checksum;
use crate::ethernet::read_array;
use crate::ipv4::{IpProtocol, Ipv4Address};
use crate::Malformed;

/// Bytes of a UDP header.
pub const HEADER_LEN: usize = 8;

/// A read-only view of a UDP datagram (header and data).
#[derive(Clone, Copy, Debug)]
pub struct UdpDatagram<'a> {
    bytes: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// The datagram that is the whole of `ip_payload`. RFC 768: "Length is
    /// the length in octets of this user datagram including this header and
    /// the data. (This means the minimum value of the length is eight.)"
    ///
    /// The length field must equal the IPv4 payload length exactly
    /// ([`Malformed::BadL4Length`]): bytes between the UDP length and the
    /// IPv4 length would belong to no one, so a disagreement is refused
    /// rather than resolved.
    pub fn parse(ip_payload: &'a [u8]) -> Result<Self, Malformed> {
        let datagram = Self::parse_header(ip_payload)?;
        if usize::from(datagram.length()) != ip_payload.len() {
            return Err(Malformed::BadL4Length);
        }
        Ok(datagram)
    }

    /// Only checks that the 8-byte header is present, for a copy of
    /// outgoing headers whose payload is elsewhere.
    pub fn parse_header(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(UdpDatagram { bytes })
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 0))
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 2))
    }

    /// The length field.
    pub fn length(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 4))
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 6))
    }

    /// The data after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// Whether the checksum verifies over the pseudo-header, header and
    /// data. RFC 768: "An all zero transmitted checksum value means that
    /// the transmitter generated no checksum", which verifies.
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let Ok(length) = u16::try_from(self.bytes.len()) else {
            return false;
        };
        let mut sum = Checksum::new();
        sum.add_pseudo_header(src, dst, IpProtocol::UDP, length);
        sum.add_bytes(self.bytes);
        sum.is_valid()
    }
}

/// The UDP checksum of `datagram` (header with a zero checksum field, then
/// data). RFC 768: "If the computed checksum is zero, it is transmitted as
/// all ones", so this never returns 0.
pub fn checksum(src: Ipv4Address, dst: Ipv4Address, datagram: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_pseudo_header(src, dst, IpProtocol::UDP, datagram.len() as u16);
    sum.add_bytes(datagram);
    match sum.finish() {
        0 => 0xffff,
        value => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    /// 10.0.0.1:1234 → 10.0.0.2:53, data "hi". Checksum by hand:
    /// pseudo-header 0a00+0001+0a00+0002+0011+000a = 0x141e, header
    /// 04d2+0035+000a = 0x0511, data 0x6869: total 0x8198 → !0x8198 = 0x7e67.
    const DATAGRAM: [u8; 10] = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0a, 0x7e, 0x67, b'h', b'i'];

    #[test]
    fn known_good_datagram() {
        let datagram = UdpDatagram::parse(&DATAGRAM).unwrap();
        assert_eq!((datagram.src_port(), datagram.dst_port()), (1234, 53));
        assert_eq!(datagram.length(), 10);
        assert_eq!(datagram.payload(), b"hi");
        assert!(datagram.verify_checksum(SRC, DST));
        assert!(!datagram.verify_checksum(SRC, Ipv4Address::new(10, 0, 0, 3)));
        let mut zeroed = DATAGRAM;
        zeroed[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(checksum(SRC, DST, &zeroed), 0x7e67);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut bytes = DATAGRAM;
        bytes[6..8].copy_from_slice(&[0, 0]);
        bytes[9] = b'o';
        assert!(UdpDatagram::parse(&bytes).unwrap().verify_checksum(SRC, DST));
    }

    #[test]
    fn length_must_match_the_ip_payload() {
        assert_eq!(UdpDatagram::parse(&DATAGRAM[..7]).unwrap_err(), Malformed::Truncated);
        for length in [0u16, 7, 9, 11] {
            let mut bytes = DATAGRAM;
            bytes[4..6].copy_from_slice(&length.to_be_bytes());
            assert_eq!(UdpDatagram::parse(&bytes).unwrap_err(), Malformed::BadL4Length, "{length}");
        }
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Pick data so the sum is 0xffff: pseudo + header (with length 10)
        // then a data word that completes it.
        let mut bytes = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0a, 0, 0, 0, 0];
        let partial = {
            let mut sum = Checksum::new();
            sum.add_pseudo_header(SRC, DST, IpProtocol::UDP, 10);
            sum.add_bytes(&bytes);
            sum.sum()
        };
        bytes[8..10].copy_from_slice(&(!partial).to_be_bytes());
        assert_eq!(checksum(SRC, DST, &bytes), 0xffff);
    }
}
