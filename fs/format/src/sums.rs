//! Precomputed Internet checksums of file data, in pieces.
//!
//! A file's data is cut into pieces of [`PIECE`] bytes (1460, the MSS of a
//! 1500-byte Ethernet MTU with 20-byte IPv4 and TCP headers) from offset 0;
//! the last piece may be shorter. For each piece the image stores its
//! folded 1's complement sum (RFC 1071, not complemented, big-endian `u16`),
//! as [`net_packet::checksum::Checksum::sum`] gives it for the piece alone.
//!
//! A sender whose segments start at multiples of 1460 and hold whole pieces
//! adds the stored sums to its pseudo-header and TCP header sum and never
//! reads the data. For any other segment (another MSS, a range request,
//! a retransmission of part of a segment) [`segment_sum`] adds the whole
//! pieces inside it and sums only the partial pieces at its ends from the
//! data.
//!
//! Why combining works (RFC 1071 §2): the 1's complement sum is
//! commutative and associative, so the sum of a range is the sum of the
//! sums of its parts, provided each part's bytes sit in the same halves of
//! the 16-bit words as in the whole. Pieces start at even offsets (1460 is
//! even), so their stored sums fit. A part starting at an odd file offset
//! has its bytes in the other halves: its sum, computed alone, is
//! byte-swapped (RFC 1071 §2(B), byte order independence) before it is
//! added. A segment starting at an odd offset is the same thing in reverse:
//! the sum in file word alignment is swapped at the end.

use net_packet::checksum::Checksum;

/// Length of a checksummed piece: the common TCP MSS.
pub const PIECE: usize = 1460;

/// Number of pieces (and stored sums) of a file of `size` bytes.
pub const fn piece_count(size: u64) -> u64 {
    size.div_ceil(PIECE as u64)
}

/// The folded 1's complement sum of `data` on its own (the stored value of
/// a piece).
pub fn sum_of(data: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_bytes(data);
    sum.sum()
}

/// Why [`segment_sum`] could not give a sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SumError {
    /// The segment reaches past the end of the file.
    OutOfRange,
    /// The data callback returned no bytes for an offset it was asked for.
    DataUnavailable {
        /// The file offset asked for.
        offset: u64,
    },
}

impl core::fmt::Display for SumError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SumError::OutOfRange => f.write_str("segment reaches past the end of the file"),
            SumError::DataUnavailable { offset } => write!(f, "no data at file offset {offset}"),
        }
    }
}

/// The folded 1's complement sum of the `len` bytes at `offset` of a file,
/// as [`Checksum::add_bytes`] would give for that segment alone: add it to
/// the pseudo-header and TCP header sum with [`Checksum::add_word`] (the
/// TCP header is a whole number of words, so the data starts on a word).
///
/// `size` is the file's size and `sums` its stored piece sums (big-endian
/// `u16`s, [`piece_count`] of them). `read(offset, max)` must return the
/// file's bytes starting at `offset`, at least one and at most `max` (fewer
/// is fine, e.g. up to the end of a cache block; it is called again for the
/// rest). It is only called for the partial pieces at the segment's ends, so
/// at most `2 * (PIECE - 1)` bytes are read, and not at all when the
/// segment starts at a multiple of [`PIECE`] and ends at one or at the end
/// of the file.
pub fn segment_sum<'d>(
    size: u64,
    sums: &[u8],
    offset: u64,
    len: u64,
    mut read: impl FnMut(u64, usize) -> Option<&'d [u8]>,
) -> Result<u16, SumError> {
    let end = offset.checked_add(len).ok_or(SumError::OutOfRange)?;
    if end > size {
        return Err(SumError::OutOfRange);
    }
    let piece = PIECE as u64;
    // The sum with every byte in the half of the word its file offset gives
    // it (even offsets high).
    let mut aligned = Checksum::new();
    let mut pos = offset;
    while pos < end {
        let index = pos / piece;
        let piece_end = ((index + 1) * piece).min(size);
        if pos.is_multiple_of(piece) && piece_end <= end {
            let i = index as usize * 2;
            let stored = sums.get(i..i + 2).ok_or(SumError::OutOfRange)?;
            aligned.add_word(u16::from_be_bytes([stored[0], stored[1]]));
            pos = piece_end;
            continue;
        }
        let stop = piece_end.min(end);
        while pos < stop {
            let want = (stop - pos) as usize;
            let bytes = match read(pos, want) {
                Some(b) if !b.is_empty() => &b[..b.len().min(want)],
                _ => return Err(SumError::DataUnavailable { offset: pos }),
            };
            let alone = sum_of(bytes);
            aligned.add_word(if pos.is_multiple_of(2) { alone } else { alone.swap_bytes() });
            pos += bytes.len() as u64;
        }
    }
    let sum = aligned.sum();
    Ok(if offset.is_multiple_of(2) { sum } else { sum.swap_bytes() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> [u8; 40_000] {
        let mut out = [0u8; 40_000];
        let mut x = seed | 1;
        for b in out.iter_mut().take(len) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = (x >> 7) as u8;
        }
        out
    }

    fn stored_sums(data: &[u8], out: &mut [u8]) {
        for (i, piece) in data.chunks(PIECE).enumerate() {
            out[2 * i..2 * i + 2].copy_from_slice(&sum_of(piece).to_be_bytes());
        }
    }

    /// Every (offset, len) a sender with the usual MSS values would use,
    /// plus odd offsets and lengths, against a direct sum of the bytes.
    #[test]
    fn segment_sums_match_direct_sums() {
        for (size, seed) in [(0usize, 1), (1, 2), (1459, 3), (1460, 4), (1461, 5), (29_200, 6), (39_999, 7)] {
            let file = data(size, seed);
            let file = &file[..size];
            let mut sums = [0u8; 2 * 40_000 / PIECE + 2];
            stored_sums(file, &mut sums);
            for mss in [536usize, 1400, 1448, 1460, 8960, 1, 7] {
                let mut offset = 0;
                loop {
                    for shift in [0usize, 1, 2, 3, 731] {
                        let start = (offset + shift).min(size);
                        for len in [mss, mss - 1, mss + 1, 0, 2 * mss] {
                            let len = len.min(size - start);
                            let mut calls = 0;
                            let got = segment_sum(size as u64, &sums, start as u64, len as u64, |o, max| {
                                calls += 1;
                                // Hand out at most 100 bytes at a time, as a
                                // block cache could.
                                let o = o as usize;
                                Some(&file[o..o + max.min(100)])
                            });
                            assert_eq!(got, Ok(sum_of(&file[start..start + len])), "size {size} at {start} len {len}");
                            if start % PIECE == 0 && (len % PIECE == 0 || start + len == size) {
                                assert_eq!(calls, 0, "aligned segments read nothing");
                            }
                        }
                    }
                    offset += mss;
                    if offset >= size {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn whole_pieces_are_not_read() {
        let file = data(10_000, 9);
        let mut sums = [0u8; 14];
        stored_sums(&file[..10_000], &mut sums);
        let got = segment_sum(10_000, &sums, 2920, 7080, |_, _| None);
        assert_eq!(got, Ok(sum_of(&file[2920..10_000])));
    }

    #[test]
    fn errors() {
        let sums = [0u8; 2];
        assert_eq!(segment_sum(10, &sums, 5, 6, |_, _| None), Err(SumError::OutOfRange));
        assert_eq!(segment_sum(10, &sums, u64::MAX, 2, |_, _| None), Err(SumError::OutOfRange));
        assert_eq!(segment_sum(10, &sums, 1, 3, |_, _| None), Err(SumError::DataUnavailable { offset: 1 }));
        assert_eq!(segment_sum(10, &sums, 1, 3, |_, _| Some(&[])), Err(SumError::DataUnavailable { offset: 1 }));
        // Too few stored sums for the size: refused, not a panic.
        assert_eq!(segment_sum(3000, &sums, 1460, 1460, |_, _| None), Err(SumError::OutOfRange));
        assert_eq!(segment_sum(10, &sums, 4, 0, |_, _| None), Ok(0));
    }
}
