//! The transmit slots of a client's `tx_data`: which are in flight.

use net_config::TX_BUFFERS;

/// A set of [`TX_BUFFERS`] slots, each free or in flight (handed to the
/// demultiplexer on `tx_active` and not yet back on `tx_free`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxSlots {
    /// Bit `i` set: slot `i` is in flight.
    in_flight: u64,
}

const _: () = assert!(TX_BUFFERS <= 64, "one bit per slot");

impl TxSlots {
    /// Every slot free.
    pub const fn new() -> Self {
        TxSlots { in_flight: 0 }
    }

    /// Takes the lowest free slot.
    pub fn alloc(&mut self) -> Option<usize> {
        let free = !self.in_flight & Self::all();
        if free == 0 {
            return None;
        }
        let slot = free.trailing_zeros() as usize;
        self.in_flight |= 1 << slot;
        Some(slot)
    }

    /// Frees `slot`; `false` if it is not a slot or not in flight (a
    /// descriptor the demultiplexer returned twice, or made up).
    pub fn release(&mut self, slot: usize) -> bool {
        if slot >= TX_BUFFERS || self.in_flight & (1 << slot) == 0 {
            return false;
        }
        self.in_flight &= !(1 << slot);
        true
    }

    /// Slots in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.count_ones() as usize
    }

    fn all() -> u64 {
        u64::MAX >> (64 - TX_BUFFERS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_once_then_none() {
        let mut slots = TxSlots::new();
        for i in 0..TX_BUFFERS {
            assert_eq!(slots.alloc(), Some(i));
        }
        assert_eq!(slots.alloc(), None);
        assert_eq!(slots.in_flight(), TX_BUFFERS);
        assert!(slots.release(17));
        assert_eq!(slots.alloc(), Some(17));
    }

    #[test]
    fn bogus_releases_are_refused() {
        let mut slots = TxSlots::new();
        assert!(!slots.release(0), "not in flight");
        assert!(!slots.release(TX_BUFFERS), "not a slot");
        assert!(!slots.release(usize::MAX));
        let slot = slots.alloc().unwrap();
        assert!(slots.release(slot));
        assert!(!slots.release(slot), "returned twice");
        assert_eq!(slots.in_flight(), 0);
    }
}
