//! Reassembling transmitted frames from `tx_active`: the consumer's half of
//! the gather-list rule (see the crate documentation, "Transmit").
//!
//! A frame is one to [`MAX_TX_SEGMENTS`] consecutive descriptors, every one
//! but the last with [`TX_MORE`] in its cookie. The producer is another PD,
//! so the consumer must cope with anything: a descriptor out of bounds
//! marks its frame bad (it is still collected, so that every descriptor
//! goes back); a frame that is still going on after [`MAX_TX_SEGMENTS`]
//! descriptors is cut there and marked, and the rest of it, up to its last
//! descriptor, is handed back one by one without being held.

use lib_queue::BufferDesc;

use crate::{split_tx_offset, TxWindow, MAX_TX_SEGMENTS, TX_MORE};

/// The descriptors of one frame, as they came off `tx_active`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxFrame {
    descs: [BufferDesc; MAX_TX_SEGMENTS],
    count: usize,
    /// A descriptor lay outside the transmit address space.
    pub out_of_bounds: bool,
    /// The frame had more than [`MAX_TX_SEGMENTS`] descriptors; these are
    /// its first ones.
    pub too_many: bool,
}

impl TxFrame {
    /// The descriptors, in order.
    pub fn descs(&self) -> &[BufferDesc] {
        &self.descs[..self.count]
    }

    /// Whether the frame must be refused as it stands.
    pub fn is_bad(&self) -> bool {
        self.out_of_bounds || self.too_many
    }

    /// Total bytes of its segments: the frame's length (an offload
    /// descriptor, [`TxWindow::Offload`], names no bytes).
    pub fn len(&self) -> usize {
        self.descs()
            .iter()
            .filter(|d| !matches!(split_tx_offset(d.offset), Some((TxWindow::Offload, _))))
            .map(|d| d.len as usize)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What became of a descriptor given to [`FrameAssembler::push`].
// The frame is handed over by value, once per frame: nothing is allocated.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Held: the frame goes on.
    Held,
    /// The frame is complete (check [`TxFrame::is_bad`]).
    Frame(TxFrame),
    /// The descriptor belongs to a frame already cut: give it back now.
    Discard(BufferDesc),
}

/// Collects `tx_active` descriptors into frames.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameAssembler {
    pending: TxFrame,
    discarding: bool,
}

impl FrameAssembler {
    /// Descriptors held for the frame still arriving: a consumer keeps room
    /// on `tx_free` for them, since they all go back together.
    pub fn held(&self) -> usize {
        self.pending.count
    }

    /// Takes the next descriptor; `out_of_bounds` if the queue refused it
    /// (`QueueError::OutOfBounds`).
    pub fn push(&mut self, desc: BufferDesc, out_of_bounds: bool) -> Step {
        let last = desc.cookie & TX_MORE == 0;
        if self.discarding {
            self.discarding = !last;
            return Step::Discard(desc);
        }
        let pending = &mut self.pending;
        pending.descs[pending.count] = desc;
        pending.count += 1;
        pending.out_of_bounds |= out_of_bounds;
        if !last && pending.count < MAX_TX_SEGMENTS {
            return Step::Held;
        }
        if !last {
            pending.too_many = true;
            self.discarding = true;
        }
        Step::Frame(core::mem::take(pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(n: u64, more: bool) -> BufferDesc {
        BufferDesc { offset: n * 64, len: 10, cookie: if more { TX_MORE | n as u32 } else { n as u32 } }
    }

    #[test]
    fn frames_end_at_the_descriptor_without_more() {
        let mut a = FrameAssembler::default();
        let Step::Frame(single) = a.push(desc(0, false), false) else { panic!("frame expected") };
        assert_eq!(single.descs(), [desc(0, false)]);
        assert!(!single.is_bad());
        assert_eq!(a.push(desc(1, true), false), Step::Held);
        assert_eq!(a.held(), 1);
        let Step::Frame(frame) = a.push(desc(2, false), true) else { panic!("frame expected") };
        assert_eq!(frame.descs(), [desc(1, true), desc(2, false)]);
        assert_eq!(frame.len(), 20);
        assert!(frame.out_of_bounds && !frame.too_many && frame.is_bad());
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn too_long_frames_are_cut_and_their_rest_discarded() {
        let mut a = FrameAssembler::default();
        for n in 0..MAX_TX_SEGMENTS as u64 - 1 {
            assert_eq!(a.push(desc(n, true), false), Step::Held);
        }
        let cut = MAX_TX_SEGMENTS as u64 + 10;
        let Step::Frame(frame) = a.push(desc(cut, true), false) else { panic!("cut frame expected") };
        assert!(frame.too_many && frame.descs().len() == MAX_TX_SEGMENTS);
        assert_eq!(a.push(desc(cut + 1, true), false), Step::Discard(desc(cut + 1, true)));
        assert_eq!(a.push(desc(cut + 2, false), false), Step::Discard(desc(cut + 2, false)));
        // The next frame is collected again.
        assert!(matches!(a.push(desc(cut + 3, false), false), Step::Frame(f) if !f.is_bad()));
    }

    #[test]
    fn a_frame_of_the_most_segments_is_whole() {
        let mut a = FrameAssembler::default();
        let last = MAX_TX_SEGMENTS as u64 - 1;
        for n in 0..last {
            assert_eq!(a.push(desc(n, true), false), Step::Held);
        }
        assert_eq!(a.held(), MAX_TX_SEGMENTS - 1);
        let Step::Frame(frame) = a.push(desc(last, false), false) else { panic!("frame expected") };
        assert!(!frame.is_bad());
        assert_eq!(frame.descs().len(), MAX_TX_SEGMENTS);
        assert_eq!(frame.len(), 10 * MAX_TX_SEGMENTS);
    }
}
