//! A frame sent partly in place: the ranges of it that come from the
//! `send_from` region (window [`TxWindow::Files`](crate::TxWindow::Files))
//! instead of the producer's transmit buffer. A network client
//! (`net-client`) turns them into the frame's gather list; a server that
//! plans its frames (httpd) builds them.

use crate::MAX_TX_SEGMENTS;

/// A range of the frame sent from the `send_from` region instead of the
/// transmit buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InPlace {
    /// Offset of the range in the frame.
    pub at: usize,
    /// Bytes of the range (at least 1).
    pub len: usize,
    /// Offset of its bytes in the `send_from` region.
    pub offset: u32,
}

/// Most in-place ranges in one frame: with a piece of the transmit buffer
/// before, between and after them, a frame is at most
/// [`MAX_FRAME_DESCS`] descriptors.
pub const MAX_IN_PLACE: usize = (MAX_TX_SEGMENTS - 1) / 2;

/// Most descriptors of a frame with [`MAX_IN_PLACE`] ranges.
pub const MAX_FRAME_DESCS: usize = 2 * MAX_IN_PLACE + 1;

const _: () = assert!(MAX_FRAME_DESCS <= MAX_TX_SEGMENTS);

/// The in-place ranges of one frame, in frame order: at most
/// [`MAX_IN_PLACE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InPlaceList {
    ranges: [InPlace; MAX_IN_PLACE],
    len: usize,
}

impl InPlaceList {
    /// No range: the whole frame from the transmit buffer.
    pub const fn new() -> Self {
        InPlaceList { ranges: [InPlace { at: 0, len: 0, offset: 0 }; MAX_IN_PLACE], len: 0 }
    }

    /// Adds a range after the others; `Err(range)` if the list is full.
    pub fn push(&mut self, range: InPlace) -> Result<(), InPlace> {
        let slot = self.ranges.get_mut(self.len).ok_or(range)?;
        *slot = range;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[InPlace] {
        &self.ranges[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
