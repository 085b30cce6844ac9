//! TCP segments (RFC 9293 §3.1).
//!
//! ```text
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! ```
//!
//! Writing: a stack that leaves the checksum to the device (as the web
//! server's does, whose payload bytes are partly elsewhere) sums the header
//! around [`CHECKSUM_FIELD`] and stores the result with [`set_checksum`].

use crate::checksum::Checksum;
use crate::ethernet::read_array;
use crate::ipv4::{IpProtocol, Ipv4Address};
use crate::Malformed;

/// Bytes of a TCP header without options (data offset 5).
pub const HEADER_LEN: usize = 20;
/// Where the Checksum field lies in the header: bytes 16 and 17 (RFC 9293
/// §3.1), big-endian.
pub const CHECKSUM_FIELD: core::ops::Range<usize> = 16..18;

/// The eight control bits of RFC 9293 §3.1 (CWR and ECE from RFC 3168).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every flag of `other` is set here.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of both.
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
}

/// A read-only view of a TCP segment (header, options and data).
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    bytes: &'a [u8],
}

impl<'a> TcpSegment<'a> {
    /// The segment that is the whole of `ip_payload`. RFC 9293 §3.1: "Data
    /// Offset (DOffset): 4 bits. The number of 32-bit words in the TCP
    /// header"; it is at least 5 and the header must fit in the segment
    /// ([`Malformed::BadTcpDataOffset`]).
    pub fn parse(ip_payload: &'a [u8]) -> Result<Self, Malformed> {
        if ip_payload.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        let segment = TcpSegment { bytes: ip_payload };
        if segment.data_offset() < 5 || segment.header_len() > ip_payload.len() {
            return Err(Malformed::BadTcpDataOffset);
        }
        Ok(segment)
    }

    /// Only checks that the fixed 20-byte header is present, for a copy of
    /// outgoing headers whose options or payload may be elsewhere.
    pub fn parse_header(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(TcpSegment { bytes })
    }

    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 0))
    }

    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 2))
    }

    /// The sequence number (SEG.SEQ).
    pub fn seq(&self) -> u32 {
        u32::from_be_bytes(read_array(self.bytes, 4))
    }

    /// The acknowledgment number (SEG.ACK), meaningful if ACK is set.
    pub fn ack(&self) -> u32 {
        u32::from_be_bytes(read_array(self.bytes, 8))
    }

    /// The data offset in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.bytes[12] >> 4
    }

    /// The header length in bytes, options included: where the data
    /// ([`TcpSegment::payload`]) starts in the segment.
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.bytes[13])
    }

    /// The window (SEG.WND).
    pub fn window(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 14))
    }

    /// The Checksum field ([`CHECKSUM_FIELD`]).
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, CHECKSUM_FIELD.start))
    }

    pub fn urgent_pointer(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 18))
    }

    /// The options (between the fixed header and the data).
    pub fn options(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..self.header_len()).unwrap_or(&[])
    }

    /// The data after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(self.header_len()..).unwrap_or(&[])
    }

    /// SEG.LEN (RFC 9293 §3.4): "the number of octets occupied by the data
    /// in the segment (counting SYN and FIN)".
    pub fn segment_len(&self) -> u32 {
        let flags = self.flags();
        self.payload().len() as u32 + u32::from(flags.syn()) + u32::from(flags.fin())
    }

    /// Whether the checksum verifies over the pseudo-header (RFC 9293
    /// §3.1: source, destination, zero, protocol, TCP length), header and
    /// data. Unlike UDP, zero is not "no checksum".
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        let Ok(length) = u16::try_from(self.bytes.len()) else {
            return false;
        };
        let mut sum = Checksum::new();
        sum.add_pseudo_header(src, dst, IpProtocol::TCP, length);
        sum.add_bytes(self.bytes);
        sum.is_valid()
    }
}

/// Writes `checksum` into the Checksum field ([`CHECKSUM_FIELD`]) of the
/// TCP header at the start of `segment`, big-endian; nothing else changes.
/// `None` if `segment` is shorter than the fixed 20-byte header.
pub fn set_checksum(segment: &mut [u8], checksum: u16) -> Option<()> {
    if segment.len() < HEADER_LEN {
        return None;
    }
    segment[CHECKSUM_FIELD].copy_from_slice(&checksum.to_be_bytes());
    Some(())
}

/// The TCP checksum of `segment` (header with a zero checksum field, then
/// data).
pub fn checksum(src: Ipv4Address, dst: Ipv4Address, segment: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_pseudo_header(src, dst, IpProtocol::TCP, segment.len() as u16);
    sum.add_bytes(segment);
    sum.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Address = Ipv4Address::new(192, 168, 1, 2);
    const DST: Ipv4Address = Ipv4Address::new(192, 168, 1, 1);

    /// A SYN 192.168.1.2:40000 → 192.168.1.1:80, seq 1, window 1024, one
    /// MSS option (1460). Checksum by hand: pseudo-header
    /// c0a8+0102+c0a8+0101+0006+0018 = 0x18371 → 0x8372; header words
    /// 9c40+0050+0000+0001+0000+0000+6002+0400+0000+0000 = 0x10093 → 0x0094;
    /// option 0204+05b4 = 0x07b8; total 0x8372+0x0094+0x07b8 = 0x8bbe →
    /// checksum !0x8bbe = 0x7441.
    const SYN: [u8; 24] = [
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0x04, 0x00, 0x74, 0x41, 0, 0, 0x02, 0x04, 0x05,
        0xb4,
    ];

    #[test]
    fn known_good_segment() {
        let segment = TcpSegment::parse(&SYN).unwrap();
        assert_eq!((segment.src_port(), segment.dst_port()), (40000, 80));
        assert_eq!(segment.seq(), 1);
        assert_eq!(segment.data_offset(), 6);
        assert_eq!(segment.flags(), TcpFlags::SYN);
        assert_eq!(segment.window(), 1024);
        assert_eq!(segment.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert!(segment.payload().is_empty());
        assert_eq!(segment.segment_len(), 1);
        assert!(segment.verify_checksum(SRC, DST));
        assert!(!segment.verify_checksum(DST, Ipv4Address::new(192, 168, 1, 3)));
        let mut zeroed = SYN;
        zeroed[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(checksum(SRC, DST, &zeroed), 0x7441);
    }

    #[test]
    fn set_checksum_writes_only_the_checksum_field() {
        let mut bytes = SYN;
        bytes[CHECKSUM_FIELD].copy_from_slice(&[0, 0]);
        let sum = checksum(SRC, DST, &bytes);
        set_checksum(&mut bytes, sum).unwrap();
        assert_eq!(bytes, SYN);
        let segment = TcpSegment::parse(&bytes).unwrap();
        assert_eq!(segment.checksum(), 0x7441);
        assert!(segment.verify_checksum(SRC, DST));
        set_checksum(&mut bytes, 0xbeef).unwrap();
        assert_eq!(TcpSegment::parse(&bytes).unwrap().checksum(), 0xbeef);
        assert_eq!(bytes[..16], SYN[..16]);
        assert_eq!(bytes[18..], SYN[18..]);
    }

    #[test]
    fn set_checksum_needs_the_fixed_header() {
        let mut short = [0u8; HEADER_LEN - 1];
        assert!(set_checksum(&mut short, 0x1234).is_none());
        assert_eq!(short, [0u8; HEADER_LEN - 1]);
        assert!(set_checksum(&mut [0u8; HEADER_LEN], 0x1234).is_some());
    }

    #[test]
    fn checksum_field_is_the_one_the_view_reads() {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[CHECKSUM_FIELD].copy_from_slice(&[0xab, 0xcd]);
        assert_eq!(TcpSegment::parse_header(&bytes).unwrap().checksum(), 0xabcd);
    }

    #[test]
    fn payload_starts_at_the_header_length() {
        let mut bytes = [0u8; 32];
        bytes[12] = 6 << 4;
        bytes[24..].copy_from_slice(b"payload!");
        let segment = TcpSegment::parse(&bytes).unwrap();
        assert_eq!(segment.header_len(), 24);
        assert_eq!(segment.payload(), b"payload!");
    }

    #[test]
    fn data_offset_is_checked() {
        assert_eq!(TcpSegment::parse(&SYN[..19]).unwrap_err(), Malformed::Truncated);
        for offset in [0u8, 4, 7, 15] {
            let mut bytes = SYN;
            bytes[12] = offset << 4;
            assert_eq!(TcpSegment::parse(&bytes).unwrap_err(), Malformed::BadTcpDataOffset, "{offset}");
        }
    }

    #[test]
    fn segment_length_counts_syn_and_fin() {
        let mut bytes = [0u8; 23];
        bytes[12] = 0x50;
        bytes[13] = TcpFlags::SYN.union(TcpFlags::FIN).0;
        assert_eq!(TcpSegment::parse(&bytes).unwrap().segment_len(), 5);
        bytes[13] = TcpFlags::ACK.0;
        assert_eq!(TcpSegment::parse(&bytes).unwrap().segment_len(), 3);
    }
}
