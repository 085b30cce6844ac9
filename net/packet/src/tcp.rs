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

/// The options a server acts on (RFC 9293 §3.2; RFC 7323 §2-3; RFC 2018
/// §2), as far as they could be read. Unknown options are skipped by their
/// length; a malformed option (a length below 2 or past the end) ends the
/// list, keeping what came before it, as RFC 9293 §3.2 asks a receiver to
/// be robust ("MUST be prepared to handle an illegal option length ...
/// without crashing"; the rest of the options is then ignored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum Segment Size (kind 2, length 4; only meaningful on a SYN).
    pub mss: Option<u16>,
    /// Window Scale shift (kind 3, length 3; RFC 7323 §2.3: a shift above
    /// 14 is used as 14).
    pub window_scale: Option<u8>,
    /// SACK-Permitted (kind 4, length 2).
    pub sack_permitted: bool,
    /// Timestamps (kind 8, length 10): TSval and TSecr.
    pub timestamps: Option<(u32, u32)>,
}

/// Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
pub mod option_kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const TIMESTAMPS: u8 = 8;
}

/// RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt
/// value larger than 14, the TCP SHOULD log the error but MUST use 14".
pub const MAX_WINDOW_SCALE: u8 = 14;

impl TcpOptions {
    /// Reads the options of a segment ([`TcpSegment::options`]).
    pub fn parse(mut options: &[u8]) -> TcpOptions {
        let mut out = TcpOptions::default();
        while let [kind, rest @ ..] = options {
            match *kind {
                option_kind::END => break,
                option_kind::NOP => {
                    options = rest;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = rest.first() else { break };
            let len = usize::from(len);
            if len < 2 || len > options.len() {
                break;
            }
            let body = &options[2..len];
            match (*kind, body) {
                (option_kind::MSS, &[a, b]) => out.mss = Some(u16::from_be_bytes([a, b])),
                (option_kind::WINDOW_SCALE, &[shift]) => out.window_scale = Some(shift.min(MAX_WINDOW_SCALE)),
                (option_kind::SACK_PERMITTED, &[]) => out.sack_permitted = true,
                (option_kind::TIMESTAMPS, &[a, b, c, d, e, f, g, h]) => {
                    out.timestamps = Some((u32::from_be_bytes([a, b, c, d]), u32::from_be_bytes([e, f, g, h])))
                }
                _ => {}
            }
            options = &options[len..];
        }
        out
    }
}

/// A TCP header to write: the fixed fields and the options a server sends
/// (MSS and Window Scale on a SYN-ACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
}

impl TcpHeader {
    /// Bytes the header takes: 20, plus 4 for MSS, plus 4 for Window
    /// Scale (a NOP and the 3-byte option, keeping 32-bit alignment).
    pub const fn len(&self) -> usize {
        HEADER_LEN + if self.mss.is_some() { 4 } else { 0 } + if self.window_scale.is_some() { 4 } else { 0 }
    }

    /// Always false: a header has at least its fixed 20 bytes.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header at the start of `out` with a zero checksum and
    /// urgent pointer; returns its length, or `None` if `out` is too short.
    pub fn emit(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.len();
        let out = out.get_mut(..len)?;
        out[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        out[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..12].copy_from_slice(&self.ack.to_be_bytes());
        out[12] = ((len / 4) as u8) << 4;
        out[13] = self.flags.0;
        out[14..16].copy_from_slice(&self.window.to_be_bytes());
        out[16..20].fill(0);
        let mut at = HEADER_LEN;
        if let Some(mss) = self.mss {
            let [a, b] = mss.to_be_bytes();
            out[at..at + 4].copy_from_slice(&[option_kind::MSS, 4, a, b]);
            at += 4;
        }
        if let Some(shift) = self.window_scale {
            out[at..at + 4].copy_from_slice(&[option_kind::NOP, option_kind::WINDOW_SCALE, 3, shift]);
        }
        Some(len)
    }
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

    #[test]
    fn options_are_read_with_nops_and_unknown_kinds_skipped() {
        // MSS 1460, NOP, WS 7, SACK-permitted, an unknown kind 30 of 4 bytes, timestamps.
        let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 30, 4, 9, 9, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6];
        let o = TcpOptions::parse(&opts);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.window_scale, Some(7));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamps, Some((5, 6)));
    }

    #[test]
    fn a_window_scale_above_14_is_used_as_14() {
        assert_eq!(TcpOptions::parse(&[3, 3, 15]).window_scale, Some(14));
    }

    #[test]
    fn a_malformed_option_ends_the_list_and_keeps_what_came_before() {
        // MSS, then a zero length (would loop forever if not refused), then WS.
        assert_eq!(TcpOptions::parse(&[2, 4, 0x02, 0x18, 5, 0, 3, 3, 2]).mss, Some(536));
        assert_eq!(TcpOptions::parse(&[2, 4, 0x02, 0x18, 5, 0, 3, 3, 2]).window_scale, None);
        // A length past the end, an END, and a cut-off kind.
        assert_eq!(TcpOptions::parse(&[3, 9, 2]), TcpOptions::default());
        assert_eq!(TcpOptions::parse(&[0, 2, 4, 1, 1]).mss, None);
        assert_eq!(TcpOptions::parse(&[2]), TcpOptions::default());
        // A known kind with the wrong length is skipped, not misread.
        assert_eq!(TcpOptions::parse(&[2, 3, 1, 3, 3, 4]), TcpOptions { window_scale: Some(4), ..Default::default() });
    }

    #[test]
    fn random_option_bytes_never_panic() {
        let mut rng = lib_test_rng::Rng(0x0b7);
        let mut buf = [0u8; 40];
        for _ in 0..100_000 {
            let n = rng.below(41);
            rng.fill(&mut buf[..n]);
            let _ = TcpOptions::parse(&buf[..n]);
        }
    }

    #[test]
    fn an_emitted_header_reads_back_with_its_options() {
        let h = TcpHeader {
            src_port: 80,
            dst_port: 40000,
            seq: 0xdead_beef,
            ack: 7,
            flags: TcpFlags::SYN.union(TcpFlags::ACK),
            window: 65535,
            mss: Some(1460),
            window_scale: Some(7),
        };
        let mut buf = [0xaa; 40];
        assert_eq!(h.emit(&mut buf), Some(28));
        let s = TcpSegment::parse(&buf[..28]).unwrap();
        assert_eq!((s.src_port(), s.dst_port(), s.seq(), s.ack(), s.window()), (80, 40000, 0xdead_beef, 7, 65535));
        assert_eq!(s.flags(), h.flags);
        assert_eq!(s.header_len(), 28);
        assert_eq!(s.checksum(), 0);
        let o = TcpOptions::parse(s.options());
        assert_eq!((o.mss, o.window_scale), (Some(1460), Some(7)));
        let plain = TcpHeader { mss: None, window_scale: None, ..h };
        assert_eq!(plain.emit(&mut buf), Some(20));
        assert_eq!(plain.emit(&mut buf[..19]), None);
    }
}
