//! The transmit slots of a client's `tx_data`: which are in flight.

use net_config::TX_BUFFERS;

/// A set of [`TX_BUFFERS`] slots, each free or in flight (handed to the
/// demultiplexer on `tx_active` and not yet back on `tx_free`), and which
/// came back since the owner last asked.
///
/// The second set is for a PD whose frames name bytes it must keep
/// unchanged until the NIC has read them (a web server's file blocks sent
/// in place): a slot reported returned ([`TxSlots::take_returned`]) is
/// free, so every frame ever sent from it is done. A slot's return bit is
/// set whenever it becomes free and cleared when it is taken again, so it
/// is never reported while a later frame from it is in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxSlots {
    /// Bit `i` set: slot `i` is in flight.
    in_flight: u64,
    /// Bit `i` set: slot `i` became free since the last `take_returned`
    /// and has not been taken again.
    returned: u64,
}

const _: () = assert!(TX_BUFFERS <= 64, "one bit per slot");

impl TxSlots {
    /// Every slot free.
    pub const fn new() -> Self {
        TxSlots { in_flight: 0, returned: 0 }
    }

    /// Takes the lowest free slot (its return is no longer reported).
    pub fn alloc(&mut self) -> Option<usize> {
        let free = !self.in_flight & Self::all();
        if free == 0 {
            return None;
        }
        let slot = free.trailing_zeros() as usize;
        self.in_flight |= 1 << slot;
        self.returned &= !(1 << slot);
        Some(slot)
    }

    /// Frees `slot` (reported by the next [`take_returned`](Self::take_returned));
    /// `false` if it is not a slot or not in flight (a descriptor the
    /// demultiplexer returned twice, or made up).
    pub fn release(&mut self, slot: usize) -> bool {
        if slot >= TX_BUFFERS || self.in_flight & (1 << slot) == 0 {
            return false;
        }
        self.in_flight &= !(1 << slot);
        self.returned |= 1 << slot;
        true
    }

    /// Slots in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.count_ones() as usize
    }

    /// Bit `i` set: slot `i` is in flight.
    pub fn in_flight_mask(&self) -> u64 {
        self.in_flight
    }

    /// The slots that became free since the last call (bit `i`: slot
    /// `i`), none of them taken again since; clears the set.
    pub fn take_returned(&mut self) -> u64 {
        core::mem::take(&mut self.returned)
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
    fn returns_are_reported_once_and_never_for_a_slot_in_flight() {
        let mut slots = TxSlots::new();
        let (a, b, c) = (slots.alloc().unwrap(), slots.alloc().unwrap(), slots.alloc().unwrap());
        assert_eq!(slots.in_flight_mask(), 0b111);
        assert_eq!(slots.take_returned(), 0);
        assert!(slots.release(a) && slots.release(c));
        assert_eq!(slots.in_flight_mask(), 1 << b);
        assert_eq!(slots.take_returned(), 1 << a | 1 << c);
        assert_eq!(slots.take_returned(), 0, "reported once");
        // b comes back and is taken again before the owner asks: its
        // return is not reported while the new frame is in flight...
        assert!(slots.release(b));
        assert_eq!(slots.alloc(), Some(a));
        assert_eq!(slots.alloc(), Some(b));
        assert_eq!(slots.take_returned(), 0);
        // ...but once that one is back too.
        assert!(slots.release(b));
        assert_eq!(slots.take_returned(), 1 << b);
        // A refused release reports nothing.
        assert!(!slots.release(b));
        assert_eq!(slots.take_returned(), 0);
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
