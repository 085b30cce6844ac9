//! Frames sent partly in place: which ranges of a frame come from the
//! `send_from` region instead of the transmit buffer, and the gather list
//! (`net-protocol`, "Transmit") that says so to the demultiplexer.

#[cfg(test)]
use lib_net_protocol::InPlaceList;
use lib_net_protocol::{
    split_tx_offset, tx_offset, InPlace, TxOffload, TxWindow, MAX_FRAME_LEN, MAX_IN_PLACE, MAX_TX_SEGMENTS, TX_MORE,
};
use lib_queue::BufferDesc;

use crate::{SendError, TX_BUFFER_SIZE};

/// The descriptors of one frame, in frame order.
// Used by `NetClient` (feature `pd`) and the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameDescs {
    /// `MAX_FRAME_DESCS` pieces and ranges, after an offload descriptor.
    descs: [BufferDesc; MAX_TX_SEGMENTS],
    len: usize,
}

impl FrameDescs {
    pub(crate) fn as_slice(&self) -> &[BufferDesc] {
        &self.descs[..self.len]
    }

    /// The frame's list with `offload`'s descriptor first (`net-protocol`,
    /// "Offloads"), its cookie the frame's.
    pub(crate) fn with_offload(self, offload: TxOffload) -> FrameDescs {
        let mut d = FrameDescs { descs: [BufferDesc::default(); MAX_TX_SEGMENTS], len: 0 };
        let cookie = self.as_slice().first().map_or(0, |first| first.cookie | TX_MORE);
        d.push(offload.to_desc(cookie));
        for desc in self.as_slice() {
            d.push(*desc);
        }
        d
    }

    fn push(&mut self, desc: BufferDesc) {
        // At most one buffer piece before each range and one after the
        // last: `MAX_FRAME_DESCS` (the caller checked the range count),
        // after at most one offload descriptor.
        if let Some(slot) = self.descs.get_mut(self.len) {
            *slot = desc;
            self.len += 1;
        }
    }
}

/// The gather list of a frame of `len` bytes written in transmit buffer
/// `slot`, whose `in_place` ranges come from the `send_from` region of
/// `send_from_size` bytes: the buffer's pieces between the ranges (window
/// [`TxWindow::Headers`], at their frame positions in the buffer: the
/// buffer keeps the whole frame's layout, the in-place bytes in it are just
/// not referenced) and the ranges (window [`TxWindow::Files`]), in frame
/// order; each descriptor's cookie is `slot`, with [`TX_MORE`] on all but
/// the last.
///
/// [`SendError::BadLayout`] unless the ranges are at most [`MAX_IN_PLACE`],
/// non-empty, sorted, not overlapping, inside the frame and inside the
/// region (so none without a region), and every buffer piece lies in the
/// buffer's first [`MAX_FRAME_LEN`] bytes (a longer, TSO, frame has only
/// its headers there and the rest in place).
pub(crate) fn frame_descs(
    slot: usize,
    len: usize,
    in_place: &[InPlace],
    send_from_size: u64,
) -> Result<FrameDescs, SendError> {
    if in_place.len() > MAX_IN_PLACE {
        return Err(SendError::BadLayout);
    }
    let buffer = slot * TX_BUFFER_SIZE;
    let piece = |at: usize, len: usize| {
        (at + len <= MAX_FRAME_LEN).then_some(BufferDesc {
            offset: tx_offset(TxWindow::Headers, (buffer + at) as u32),
            len: len as u32,
            cookie: slot as u32 | TX_MORE,
        })
    };
    let mut descs = FrameDescs { descs: [BufferDesc::default(); MAX_TX_SEGMENTS], len: 0 };
    let mut done = 0;
    for range in in_place {
        let end = range.at.checked_add(range.len).ok_or(SendError::BadLayout)?;
        let in_region = u64::from(range.offset) + range.len as u64 <= send_from_size;
        if range.len == 0 || range.at < done || end > len || !in_region {
            return Err(SendError::BadLayout);
        }
        if range.at > done {
            descs.push(piece(done, range.at - done).ok_or(SendError::BadLayout)?);
        }
        descs.push(BufferDesc {
            offset: tx_offset(TxWindow::Files, range.offset),
            len: range.len as u32,
            cookie: slot as u32 | TX_MORE,
        });
        done = end;
    }
    if done < len {
        descs.push(piece(done, len - done).ok_or(SendError::BadLayout)?);
    }
    if let Some(last) = descs.descs[..descs.len].last_mut() {
        last.cookie = slot as u32;
    }
    Ok(descs)
}

/// What a descriptor back on `tx_free` is, by the rules [`frame_descs`]
/// and [`FrameDescs::with_offload`] made it: a piece of transmit buffer
/// `slot`'s frame (`last`: the frame's final descriptor, which frees the
/// buffer). Any descriptor of a frame this client sent is one: a buffer
/// piece inside its buffer's bytes, an in-place range, or the frame's
/// offload descriptor (`TxWindow::Offload`, which names no bytes).
/// `None`: nothing this client sent (a confused or hostile demultiplexer).
pub(crate) fn returned(desc: &BufferDesc) -> Option<(usize, bool)> {
    let slot = (desc.cookie & !TX_MORE) as usize;
    let buffer = (slot * TX_BUFFER_SIZE) as u64..((slot + 1) * TX_BUFFER_SIZE) as u64;
    let ours = match split_tx_offset(desc.offset)? {
        (TxWindow::Headers, offset) => buffer.contains(&u64::from(offset)),
        (TxWindow::Files | TxWindow::Offload, _) => true,
        (TxWindow::Rx | TxWindow::Payload, _) => false,
    };
    ours.then_some((slot, desc.cookie & TX_MORE == 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_net_protocol::MAX_FRAME_DESCS;

    const REGION: u64 = 0x10000;

    fn at(slot: usize, frame_at: usize, len: usize, more: bool) -> BufferDesc {
        BufferDesc {
            offset: tx_offset(TxWindow::Headers, (slot * TX_BUFFER_SIZE + frame_at) as u32),
            len: len as u32,
            cookie: slot as u32 | if more { TX_MORE } else { 0 },
        }
    }

    fn files(slot: usize, offset: u32, len: usize, more: bool) -> BufferDesc {
        BufferDesc {
            offset: tx_offset(TxWindow::Files, offset),
            len: len as u32,
            cookie: slot as u32 | if more { TX_MORE } else { 0 },
        }
    }

    fn range(at: usize, len: usize, offset: u32) -> InPlace {
        InPlace { at, len, offset }
    }

    #[test]
    fn no_range_is_the_whole_buffer() {
        let d = frame_descs(3, 60, &[], 0).unwrap();
        assert_eq!(d.as_slice(), [at(3, 0, 60, false)]);
    }

    #[test]
    fn buffer_pieces_and_ranges_in_frame_order() {
        // Headers, file data, a trailer: the buffer pieces at their frame
        // positions.
        let d = frame_descs(2, 1000, &[range(54, 900, 0x4000)], REGION).unwrap();
        assert_eq!(d.as_slice(), [at(2, 0, 54, true), files(2, 0x4000, 900, true), at(2, 954, 46, false)]);
        // Ranges at the end, and back to back: no empty buffer piece.
        let d = frame_descs(5, 700, &[range(100, 300, 0), range(400, 300, 0x8000)], REGION).unwrap();
        assert_eq!(d.as_slice(), [at(5, 0, 100, true), files(5, 0, 300, true), files(5, 0x8000, 300, false)]);
        // The most ranges, each between two pieces.
        let mut list = InPlaceList::new();
        for i in 0..MAX_IN_PLACE {
            list.push(range(10 + 20 * i, 10, 100 * i as u32)).unwrap();
        }
        assert_eq!(list.push(range(500, 1, 0)), Err(range(500, 1, 0)));
        let d = frame_descs(0, 200, list.as_slice(), REGION).unwrap();
        assert_eq!(d.as_slice().len(), MAX_FRAME_DESCS);
        assert_eq!(d.as_slice().iter().filter(|d| d.cookie & TX_MORE == 0).count(), 1);
        assert_eq!(d.as_slice().iter().map(|d| d.len as usize).sum::<usize>(), 200);
        // An offload descriptor before them: the most a frame may have.
        let offload = TxOffload::checksum(34, 42, false);
        let o = d.with_offload(offload);
        assert_eq!(o.as_slice().len(), MAX_TX_SEGMENTS);
        assert_eq!(o.as_slice()[0], offload.to_desc(TX_MORE));
        assert_eq!(&o.as_slice()[1..], d.as_slice());
    }

    #[test]
    fn bad_layouts_are_refused() {
        let bad = |ranges: &[InPlace], size: u64| frame_descs(1, 1000, ranges, size);
        for ranges in [
            &[range(10, 0, 0)][..],                  // empty
            &[range(900, 200, 0)],                   // past the frame
            &[range(usize::MAX, 2, 0)],              // overflow
            &[range(100, 50, 0), range(120, 10, 0)], // overlapping
            &[range(300, 10, 0), range(100, 10, 0)], // unsorted
            &[range(100, 10, (REGION - 5) as u32)],  // past the region
            &[range(100, 10, u32::MAX)],
        ] {
            assert_eq!(bad(ranges, REGION), Err(SendError::BadLayout), "{ranges:?}");
        }
        // No region: no range.
        assert_eq!(bad(&[range(100, 10, 0)], 0), Err(SendError::BadLayout));
        let too_many = [range(0, 1, 0); MAX_IN_PLACE + 1];
        assert_eq!(bad(&too_many, REGION), Err(SendError::BadLayout));
        // The last byte of the region is fine.
        assert!(bad(&[range(100, 10, (REGION - 10) as u32)], REGION).is_ok());
    }

    #[test]
    fn a_long_frame_keeps_only_its_headers_in_the_buffer() {
        // A TSO frame: 54 bytes of headers, 64,000 bytes in place.
        let big = 0x20000;
        let d = frame_descs(4, 54 + 64_000, &[range(54, 64_000, 0x100)], big).unwrap();
        assert_eq!(d.as_slice(), [at(4, 0, 54, true), files(4, 0x100, 64_000, false)]);
        // Copied bytes past the buffer's MAX_FRAME_LEN: refused, before or
        // after the ranges.
        let tail = frame_descs(4, 54 + 64_000, &[range(54, 63_000, 0x100)], big);
        assert_eq!(tail, Err(SendError::BadLayout));
        let gap = frame_descs(4, 54 + 64_000, &[range(54, 2000, 0), range(2054 + 10, 61_990, 0x1000)], big);
        assert_eq!(gap, Err(SendError::BadLayout));
        // Up to the buffer's end is fine.
        assert!(frame_descs(4, MAX_FRAME_LEN + 10, &[range(MAX_FRAME_LEN, 10, 0)], big).is_ok());
        assert_eq!(frame_descs(4, MAX_FRAME_LEN + 1, &[], big), Err(SendError::BadLayout));
    }

    #[test]
    fn every_descriptor_of_a_sent_frame_comes_back_as_its_buffer_s() {
        // Whatever a frame was made of (buffer pieces, ranges, an offload
        // descriptor first), each of its descriptors back on tx_free names
        // its buffer, and exactly one, the last, frees it.
        let tso = TxOffload::tso4(34, 54, 1460);
        let csum = TxOffload::checksum(34, 50, false);
        let frames = [
            (7, frame_descs(7, 60, &[], 0).unwrap()),
            (2, frame_descs(2, 1000, &[range(54, 900, 0x4000)], REGION).unwrap()),
            (4, frame_descs(4, 54 + 64_000, &[range(54, 64_000, 0x100)], 0x20000).unwrap().with_offload(tso)),
            (9, frame_descs(9, 700, &[range(100, 300, 0)], REGION).unwrap().with_offload(csum)),
        ];
        for (slot, frame) in frames {
            let back: std::vec::Vec<_> = frame.as_slice().iter().map(returned).collect();
            assert!(back.iter().all(|b| b.is_some_and(|(s, _)| s == slot)), "{frame:?}: {back:?}");
            assert_eq!(back.last(), Some(&Some((slot, true))), "{frame:?}");
            assert_eq!(back.iter().filter(|b| b.is_some_and(|(_, last)| last)).count(), 1);
        }
        // Not this client's: received buffers, the payload window, another
        // buffer's bytes, a window that does not exist.
        let foreign = |offset, cookie| returned(&BufferDesc { offset, len: 10, cookie });
        assert_eq!(foreign(tx_offset(TxWindow::Rx, 0), 0), None);
        assert_eq!(foreign(tx_offset(TxWindow::Payload, 0), 0), None);
        assert_eq!(foreign(tx_offset(TxWindow::Headers, TX_BUFFER_SIZE as u32), 0), None);
        assert_eq!(foreign(5 << 32, 0), None);
    }
}
