//! Checksum and segmentation offload: what a sender asks of the device per
//! frame, what a receiver learns of a frame's checksum, and which offloads
//! the device has (see the crate documentation, "Offloads").

use crate::{tx_offset, TxWindow, MAX_FRAME_LEN};
use lib_queue::BufferDesc;

/// The device has transmit checksum offload (virtio `VIRTIO_NET_F_CSUM`,
/// virtio 1.x spec 5.1.3 and 5.1.6.2): a frame may ask for
/// [`TxOffload::csum`].
pub const OFFLOAD_TX_CSUM: u64 = 1 << 0;
/// The device segments IPv4 TCP (`VIRTIO_NET_F_HOST_TSO4`, 5.1.6.2): a
/// frame may ask for [`TxOffload::mss`] and be up to
/// [`MAX_TSO_FRAME_LEN`] bytes.
pub const OFFLOAD_TSO4: u64 = 1 << 1;
/// The device verifies received checksums (`VIRTIO_NET_F_GUEST_CSUM`,
/// 5.1.6.4): received frames may carry [`RX_CSUM_VALID`].
pub const OFFLOAD_RX_CSUM: u64 = 1 << 2;
/// Every offload bit.
pub const OFFLOAD_ALL: u64 = OFFLOAD_TX_CSUM | OFFLOAD_TSO4 | OFFLOAD_RX_CSUM;

/// Largest frame with segmentation offload: an Ethernet header and an IPv4
/// packet of the most bytes its total length can say (65535).
pub const MAX_TSO_FRAME_LEN: usize = 14 + 65535;
const _: () = assert!(MAX_TSO_FRAME_LEN > MAX_FRAME_LEN);

/// Cookie bit of a received frame's descriptor on `rx_active`: the device
/// verified its TCP or UDP checksum (virtio `VIRTIO_NET_HDR_F_DATA_VALID`,
/// 5.1.6.4), or its checksum was completed by the one who delivered it; the
/// receiver need not verify it.
pub const RX_CSUM_VALID: u32 = 1 << 0;
/// Cookie bit of a received frame's descriptor on the *driver's*
/// `rx_active` only: the frame's checksum field holds only the
/// pseudo-header sum (virtio `VIRTIO_NET_HDR_F_NEEDS_CSUM` on receive,
/// 5.1.6.4: a frame from the host's own stack, not corrupted on any
/// wire). The checksum covers the bytes from [`rx_csum_start`] to the end
/// and goes at [`rx_csum_start`] + [`rx_csum_offset`]: the demultiplexer
/// completes it in each copy it delivers, which then carries
/// [`RX_CSUM_VALID`].
pub const RX_CSUM_PARTIAL: u32 = 1 << 1;

/// The received-frame cookie for a partial checksum at `start`, `offset`.
pub const fn rx_partial_cookie(start: u8, offset: u8) -> u32 {
    RX_CSUM_PARTIAL | (start as u32) << 8 | (offset as u32) << 16
}

/// Where a partial checksum's coverage starts (cookie bits 8..16).
pub const fn rx_csum_start(cookie: u32) -> usize {
    (cookie >> 8) as u8 as usize
}

/// Where, from [`rx_csum_start`], the partial checksum goes (bits 16..24).
pub const fn rx_csum_offset(cookie: u32) -> usize {
    (cookie >> 16) as u8 as usize
}

/// What a frame asks of the device, carried by its *offload descriptor*.
///
/// Layout of that descriptor (the first of its frame, window
/// [`TxWindow::Offload`], naming no bytes):
///
/// | field    | bits    | meaning |
/// |----------|---------|---------|
/// | `offset` | 32..    | [`TxWindow::Offload`] |
/// | `offset` | 0..8    | `csum_start`: where the checksummed bytes start (the TCP or UDP header) |
/// | `offset` | 8..16   | `csum_offset`: where the checksum field is, from `csum_start` (16 TCP, 6 UDP) |
/// | `offset` | 16..24  | `hdr_len`: bytes of the Ethernet, IP and TCP/UDP headers |
/// | `offset` | 24      | [`TxOffload::CSUM`]: the device computes the checksum |
/// | `offset` | 25      | [`TxOffload::TSO4`]: the device cuts the TCP segment into `mss`-byte ones |
/// | `offset` | 26..32  | zero |
/// | `len`    |         | `mss` with `TSO4` (at least 1), 0 without |
/// | `cookie` |         | as any descriptor's: the client's bits and [`crate::TX_MORE`] (a frame follows) |
///
/// These are the fields of `struct virtio_net_hdr` (virtio 1.x spec
/// 5.1.6) the driver fills: `flags = NEEDS_CSUM`, `csum_start`,
/// `csum_offset`, and with TSO `gso_type = TCPV4`, `gso_size = mss`,
/// `hdr_len`. With `CSUM`, the checksum field of the frame must hold the
/// pseudo-header sum (RFC 793/768 pseudo-header, not complemented), as
/// 5.1.6.2 requires; with `TSO4`, also `CSUM`, and the IPv4 total length
/// and TCP header are those of the whole segment (the device rewrites
/// them per packet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    pub csum_start: u8,
    pub csum_offset: u8,
    pub hdr_len: u8,
    /// Bits [`TxOffload::CSUM`] and [`TxOffload::TSO4`].
    pub flags: u8,
    /// Bytes of TCP payload per segment with `TSO4`; 0 without.
    pub mss: u16,
}

impl TxOffload {
    /// The device computes the TCP or UDP checksum.
    pub const CSUM: u8 = 1 << 0;
    /// The device segments the TCP segment (IPv4).
    pub const TSO4: u8 = 1 << 1;

    /// Checksum offload for a TCP (`tcp`) or UDP segment whose transport
    /// header starts at `csum_start` and ends at `hdr_len`.
    pub const fn checksum(csum_start: u8, hdr_len: u8, tcp: bool) -> Self {
        TxOffload { csum_start, csum_offset: if tcp { 16 } else { 6 }, hdr_len, flags: Self::CSUM, mss: 0 }
    }

    /// Checksum and segmentation offload for a TCP segment, cut into
    /// `mss`-byte segments.
    pub const fn tso4(csum_start: u8, hdr_len: u8, mss: u16) -> Self {
        TxOffload { csum_start, csum_offset: 16, hdr_len, flags: Self::CSUM | Self::TSO4, mss }
    }

    pub const fn csum(&self) -> bool {
        self.flags & Self::CSUM != 0
    }

    pub const fn tso(&self) -> bool {
        self.flags & Self::TSO4 != 0
    }

    /// The offload bits ([`OFFLOAD_TX_CSUM`], [`OFFLOAD_TSO4`]) the request
    /// needs.
    pub const fn needs(&self) -> u64 {
        (if self.csum() { OFFLOAD_TX_CSUM } else { 0 }) | if self.tso() { OFFLOAD_TSO4 } else { 0 }
    }

    /// The frame's offload descriptor, with `cookie`.
    pub const fn to_desc(&self, cookie: u32) -> BufferDesc {
        let word = self.csum_start as u32
            | (self.csum_offset as u32) << 8
            | (self.hdr_len as u32) << 16
            | (self.flags as u32) << 24;
        BufferDesc { offset: tx_offset(TxWindow::Offload, word), len: self.mss as u32, cookie }
    }

    /// The request an offload descriptor carries; `None` if it is not one
    /// or does not follow the layout (unknown flags, `TSO4` without `CSUM`
    /// or without an MSS, an MSS without `TSO4`, no flag at all).
    pub fn from_desc(desc: &BufferDesc) -> Option<Self> {
        let (TxWindow::Offload, word) = crate::split_tx_offset(desc.offset)? else { return None };
        let flags = (word >> 24) as u8;
        let o = TxOffload {
            csum_start: word as u8,
            csum_offset: (word >> 8) as u8,
            hdr_len: (word >> 16) as u8,
            flags,
            mss: u16::try_from(desc.len).ok()?,
        };
        let known = flags & !(Self::CSUM | Self::TSO4) == 0;
        let consistent = o.csum() && (o.tso() == (o.mss > 0));
        (known && consistent).then_some(o)
    }

    /// Whether a frame of `len` bytes is more than one segment: with
    /// `TSO4`, the device is asked to segment it only then.
    pub const fn segments(&self, len: usize) -> bool {
        self.tso() && len > self.hdr_len as usize + self.mss as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TX_MORE;

    #[test]
    fn offload_descriptors_round_trip() {
        for o in [TxOffload::checksum(34, 42, false), TxOffload::checksum(34, 54, true), TxOffload::tso4(34, 66, 1448)]
        {
            let d = o.to_desc(7 | TX_MORE);
            assert_eq!(d.cookie, 7 | TX_MORE);
            assert_eq!(TxOffload::from_desc(&d), Some(o));
            assert!(d.offset + u64::from(d.len) <= crate::TX_SPACE_LEN as u64, "within the transmit space");
        }
        assert_eq!(TxOffload::tso4(34, 66, 1448).needs(), OFFLOAD_TX_CSUM | OFFLOAD_TSO4);
        assert_eq!(TxOffload::checksum(34, 42, false).needs(), OFFLOAD_TX_CSUM);
    }

    #[test]
    fn malformed_offload_descriptors_are_refused() {
        let good = TxOffload::tso4(34, 54, 1460).to_desc(0);
        let mut d = good;
        d.offset |= 1 << 26;
        assert_eq!(TxOffload::from_desc(&d), None, "unknown flag");
        d = good;
        d.len = 0;
        assert_eq!(TxOffload::from_desc(&d), None, "TSO without an MSS");
        d = TxOffload::checksum(34, 42, false).to_desc(0);
        d.len = 100;
        assert_eq!(TxOffload::from_desc(&d), None, "an MSS without TSO");
        let no_csum = TxOffload { flags: TxOffload::TSO4, ..TxOffload::tso4(34, 54, 1460) };
        assert_eq!(TxOffload::from_desc(&no_csum.to_desc(0)), None, "TSO without checksum");
        assert_eq!(TxOffload::from_desc(&TxOffload::default().to_desc(0)), None, "nothing asked");
        let data = BufferDesc { offset: tx_offset(TxWindow::Headers, 0x0100_0022), len: 0, cookie: 0 };
        assert_eq!(TxOffload::from_desc(&data), None, "another window");
    }

    #[test]
    fn partial_checksum_cookies() {
        let c = rx_partial_cookie(34, 6);
        assert!(c & RX_CSUM_PARTIAL != 0 && c & RX_CSUM_VALID == 0);
        assert_eq!((rx_csum_start(c), rx_csum_offset(c)), (34, 6));
    }

    #[test]
    fn segmenting_is_asked_only_beyond_one_segment() {
        let o = TxOffload::tso4(34, 54, 1460);
        assert!(!o.segments(54 + 1460));
        assert!(o.segments(54 + 1461));
        assert!(!TxOffload::checksum(34, 42, false).segments(60000));
    }
}
