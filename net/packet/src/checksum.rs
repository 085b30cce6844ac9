//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! RFC 1071 §1: "Adjacent octets to be checksummed are paired to form 16-bit
//! integers, and the 1's complement sum of these 16-bit integers is formed";
//! the checksum field holds the 1's complement of that sum, so a received
//! header that includes its checksum field sums to `0xffff`.
//!
//! A sum is accumulated in a `u32` and folded (end-around carry) at the end;
//! [`Checksum`] does this for several pieces such as the TCP/UDP
//! pseudo-header (RFC 793 §3.1, RFC 768) followed by the segment.

use crate::ipv4::{IpProtocol, Ipv4Address};

/// A running 1's complement sum of 16-bit big-endian words.
///
/// Pieces are added in order. A piece of odd length is padded with a zero
/// byte *at its end* (RFC 1071 §4.1), so only the last piece may have an odd
/// length; every other piece must be a whole number of words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u32,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0 }
    }

    /// Adds `data` as big-endian 16-bit words (a trailing odd byte is the
    /// high byte of a word whose low byte is zero).
    pub fn add_bytes(&mut self, data: &[u8]) {
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            self.add_word(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            self.add_word(u16::from_be_bytes([*last, 0]));
        }
    }

    /// Adds one 16-bit word.
    pub fn add_word(&mut self, word: u16) {
        // Folding on every add keeps the sum below 2^17: no overflow however
        // long the data.
        self.sum = fold_once(self.sum + u32::from(word));
    }

    /// Adds the IPv4 pseudo-header that TCP (RFC 793 §3.1) and UDP (RFC 768)
    /// prefix to their checksum: source address, destination address, zero,
    /// protocol, and the TCP/UDP length (header plus data).
    pub fn add_pseudo_header(&mut self, src: Ipv4Address, dst: Ipv4Address, protocol: IpProtocol, length: u16) {
        self.add_bytes(&src.0);
        self.add_bytes(&dst.0);
        self.add_word(u16::from(protocol.0));
        self.add_word(length);
    }

    /// The folded 1's complement sum (not complemented).
    pub fn sum(&self) -> u16 {
        // `sum` is always folded already; see `add_word`.
        self.sum as u16
    }

    /// The value to store in a checksum field: the complement of the sum.
    pub fn finish(&self) -> u16 {
        !self.sum()
    }

    /// Whether data that includes its own checksum field verifies: its sum
    /// is `0xffff` (all ones, "negative zero").
    pub fn is_valid(&self) -> bool {
        self.sum() == 0xffff
    }
}

fn fold_once(sum: u32) -> u32 {
    (sum & 0xffff) + (sum >> 16)
}

/// The Internet checksum of `data`: the value to store in a checksum field
/// that was zero while summing.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_bytes(data);
    sum.finish()
}

/// Whether `data`, which includes its checksum field, has a valid Internet
/// checksum.
pub fn verify(data: &[u8]) -> bool {
    let mut sum = Checksum::new();
    sum.add_bytes(data);
    sum.is_valid()
}

/// The new checksum after one 16-bit word covered by `old_checksum` changes
/// from `old_word` to `new_word`, by RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`.
///
/// Unlike eqn. 2 of RFC 1141 this never yields `0x0000` (positive zero) for
/// a header whose checksum must be `0xffff`; RFC 1624 §3 shows why, for
/// data that is never all zero, such as an IPv4 header. When every word
/// covered is zero after the change, it gives `0x0000` where the checksum
/// must be `0xffff` (the sum of all-zero words is +0, not -0): a checksum
/// over data that can be all zero is recomputed instead.
pub fn update_word(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let mut sum = Checksum::new();
    sum.add_word(!old_checksum);
    sum.add_word(!old_word);
    sum.add_word(new_word);
    sum.finish()
}

/// [`update_word`] for a 32-bit field (such as an IPv4 address), which is
/// two 16-bit words.
pub fn update_u32(old_checksum: u16, old_value: u32, new_value: u32) -> u16 {
    let high = update_word(old_checksum, (old_value >> 16) as u16, (new_value >> 16) as u16);
    update_word(high, old_value as u16, new_value as u16)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    /// RFC 1071 §3's worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to
    /// ddf2 (one's complement, folded).
    #[test]
    fn rfc1071_example() {
        let mut sum = Checksum::new();
        sum.add_bytes(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(sum.sum(), 0xddf2);
        assert_eq!(sum.finish(), !0xddf2);
    }

    #[test]
    fn odd_length_pads_the_last_byte_low() {
        assert_eq!(checksum(&[0x12]), !0x1200);
        assert_eq!(checksum(&[0x12, 0x34, 0x56]), !(0x1234u16 + 0x5600));
    }

    #[test]
    fn empty_data_checksums_to_all_ones() {
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn data_including_its_checksum_verifies() {
        let mut data = [0x45, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x00, 0x00, 0x12, 0x34];
        let c = checksum(&data);
        data[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        data[0] ^= 1;
        assert!(!verify(&data));
    }

    /// The 1's complement sum of `data` by plain arithmetic in a `u64`
    /// (no overflow below 2^48 bytes), folded at the end.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut sum: u64 = data.chunks(2).map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// A `u32` that only folded at the end would overflow after 65,538
    /// words of `0xffff` (131,076 bytes): runs of ones and of large words
    /// well past that, in one piece and in many, must sum exactly.
    #[test]
    fn long_runs_of_ones_do_not_overflow() {
        assert_eq!(Checksum { sum: 0 }.sum(), 0);
        for len in [131_074, 131_076, 131_077, 140_000, 1 << 20] {
            let ones = std::vec![0xffu8; len];
            let want = reference_sum(&ones);
            assert_eq!(checksum(&ones), !want, "{len} bytes of 0xff");
            assert_eq!(checksum(&ones[..len & !1]), 0x0000, "{len} bytes of 0xff");
            let large: std::vec::Vec<u8> = (0..len).map(|i| if i % 2 == 0 { 0xff } else { 0xf0 | i as u8 }).collect();
            let want = reference_sum(&large);
            assert_eq!(checksum(&large), !want, "{len} bytes of large words");
            // The same data in 1460-byte pieces (even, so the padding rule holds).
            let mut pieces = Checksum::new();
            for piece in large.chunks(1460) {
                pieces.add_bytes(piece);
            }
            assert_eq!(pieces.sum(), want, "{len} bytes in pieces");
            let mut pieces = Checksum::new();
            for _ in 0..len / 2 {
                pieces.add_word(0xffff);
            }
            assert!(pieces.is_valid(), "{} words of 0xffff", len / 2);
        }
    }

    #[test]
    fn incremental_update_matches_recomputation() {
        let mut data = [0u8; 20];
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        data[10..12].copy_from_slice(&[0, 0]);
        let old = checksum(&data);
        for new_word in [0x0000u16, 0x1234, 0xffff, 0x8000] {
            let mut changed = data;
            let old_word = u16::from_be_bytes([changed[4], changed[5]]);
            changed[4..6].copy_from_slice(&new_word.to_be_bytes());
            assert_eq!(update_word(old, old_word, new_word), checksum(&changed), "{new_word:#x}");
        }
        let mut changed = data;
        let old_value = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
        changed[12..16].copy_from_slice(&0x0a00_0001u32.to_be_bytes());
        assert_eq!(update_u32(old, old_value, 0x0a00_0001), checksum(&changed));
    }

    /// The limit [`update_word`] documents: data that becomes all zero.
    #[test]
    fn incremental_update_to_all_zero_data_gives_positive_zero() {
        let data = [0x08, 0x00, 0, 0];
        let old = checksum(&data);
        assert_eq!(update_word(old, 0x0800, 0x0000), 0x0000);
        assert_eq!(checksum(&[0; 4]), 0xffff);
        assert!(!verify(&[0, 0, 0, 0]), "0x0000 over all-zero data does not verify");
    }

    /// RFC 1624 §4's example: a header whose checksum is 0x0000 after the
    /// change (sum 0xffff) keeps 0x0000 — not the 0xffff of RFC 1141.
    #[test]
    fn rfc1624_example_gives_negative_zero_sum() {
        // HC = 0xdd2f, m = 0x5555, m' = 0x3285 → HC' = 0x0000.
        assert_eq!(update_word(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
