//! A set of slot numbers, a bit each, carved at start: the server keeps
//! the slots it must look at in such sets, so that a round of work costs
//! what the busy connections need, not the whole pool.

use crate::arena::Arena;

/// Slots `0..len`, each in the set or not.
pub struct SlotSet {
    words: &'static mut [u64],
}

impl SlotSet {
    /// An empty set for `len` slots out of `arena`; `None` if it does not
    /// fit.
    pub fn new(arena: &mut Arena, len: usize) -> Option<Self> {
        Some(SlotSet { words: arena.array(len.div_ceil(64), |_| 0u64)? })
    }

    pub fn insert(&mut self, slot: usize) {
        if let Some(word) = self.words.get_mut(slot / 64) {
            *word |= 1 << (slot % 64);
        }
    }

    pub fn remove(&mut self, slot: usize) {
        if let Some(word) = self.words.get_mut(slot / 64) {
            *word &= !(1 << (slot % 64));
        }
    }

    pub fn contains(&self, slot: usize) -> bool {
        self.words.get(slot / 64).is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// The first member not below `from`. Walking a set with
    /// `first_from(i + 1)` after `i` visits each member once even if the
    /// set changes on the way (members added behind the walk are not seen).
    pub fn first_from(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut bits = *self.words.get(w)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
            w += 1;
            bits = *self.words.get(w)?;
        }
    }

    /// Members, counted.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::leaked;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    #[test]
    fn matches_a_btree_set() {
        let mut rng = lib_test_rng::Rng(3);
        let len = 200;
        let mut set = SlotSet::new(&mut leaked(1024), len).unwrap();
        let mut model = BTreeSet::new();
        for _ in 0..5000 {
            let slot = rng.below(len);
            if rng.next().is_multiple_of(2) {
                set.insert(slot);
                model.insert(slot);
            } else {
                set.remove(slot);
                model.remove(&slot);
            }
            let from = rng.below(len + 10);
            assert_eq!(set.first_from(from), model.range(from..).next().copied());
            assert_eq!(set.len(), model.len());
            assert_eq!(set.contains(slot), model.contains(&slot));
        }
    }

    #[test]
    fn a_walk_survives_removals() {
        let mut set = SlotSet::new(&mut leaked(64), 130).unwrap();
        for slot in [0, 5, 63, 64, 127, 129] {
            set.insert(slot);
        }
        let mut seen = Vec::new();
        let mut next = set.first_from(0);
        while let Some(i) = next {
            seen.push(i);
            set.remove(i);
            next = set.first_from(i + 1);
        }
        assert_eq!(seen, [0, 5, 63, 64, 127, 129]);
        assert!(set.is_empty());
        assert_eq!(set.first_from(1000), None);
    }
}
