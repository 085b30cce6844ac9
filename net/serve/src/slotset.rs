//! A set of slot numbers, a bit each, carved at start: the server keeps
//! the slots it must look at in such sets, so that a round of work costs
//! what the busy connections need, not the whole pool.

use crate::arena::Arena;

/// Slots `0..len`, each in the set or not: a bit per slot, and a summary
/// bit per word of slots that says whether the word has any member, so
/// that walking a sparse set of thousands of slots skips empty words 64 at
/// a time (the server walks its sets on every poll; with 11,706 slots a
/// walk read 183 words, most of them empty, before the summary).
pub struct SlotSet {
    words: &'static mut [u64],
    /// Bit `w % 64` of word `w / 64`: `words[w]` is not zero.
    summary: &'static mut [u64],
}

impl SlotSet {
    /// An empty set for `len` slots out of `arena`; `None` if it does not
    /// fit.
    pub fn new(arena: &mut Arena, len: usize) -> Option<Self> {
        let words = len.div_ceil(64);
        Some(SlotSet { words: arena.array(words, |_| 0u64)?, summary: arena.array(words.div_ceil(64), |_| 0u64)? })
    }

    pub fn insert(&mut self, slot: usize) {
        let w = slot / 64;
        if let Some(word) = self.words.get_mut(w) {
            *word |= 1 << (slot % 64);
            self.summary[w / 64] |= 1 << (w % 64);
        }
    }

    pub fn remove(&mut self, slot: usize) {
        let w = slot / 64;
        if let Some(word) = self.words.get_mut(w) {
            *word &= !(1 << (slot % 64));
            if *word == 0 {
                self.summary[w / 64] &= !(1 << (w % 64));
            }
        }
    }

    pub fn contains(&self, slot: usize) -> bool {
        self.words.get(slot / 64).is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// The first member not below `from`. Walking a set with
    /// `first_from(i + 1)` after `i` visits each member once even if the
    /// set changes on the way (members added behind the walk are not seen).
    pub fn first_from(&self, from: usize) -> Option<usize> {
        let w = from / 64;
        let bits = *self.words.get(w)? & (u64::MAX << (from % 64));
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
        let w = self.first_word_from(w + 1)?;
        Some(w * 64 + self.words[w].trailing_zeros() as usize)
    }

    /// The first non-empty word not below `from`, by the summary.
    fn first_word_from(&self, from: usize) -> Option<usize> {
        let mut s = from / 64;
        let mut bits = *self.summary.get(s)? & (u64::MAX.checked_shl((from % 64) as u32).unwrap_or(0));
        loop {
            if bits != 0 {
                return Some(s * 64 + bits.trailing_zeros() as usize);
            }
            s += 1;
            bits = *self.summary.get(s)?;
        }
    }

    /// Members, counted.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.summary.iter().all(|&w| w == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::leaked;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    /// Random inserts and removes against a model, for sets of one
    /// summary word and of several (sparse: most words empty, so a walk
    /// must go through the summary); a summary bit left set or cleared
    /// wrongly fails it.
    #[test]
    fn matches_a_btree_set() {
        let mut rng = lib_test_rng::Rng(3);
        for len in [200, 4100, 9000] {
            let mut set = SlotSet::new(&mut leaked(4096), len).unwrap();
            let mut model = BTreeSet::new();
            for _ in 0..5000 {
                // Slots crowd a few places, so words empty and fill again.
                let slot = (rng.below(8) * len / 8 + rng.below(70)).min(len - 1);
                if rng.next().is_multiple_of(2) {
                    set.insert(slot);
                    model.insert(slot);
                } else {
                    set.remove(slot);
                    model.remove(&slot);
                }
                let from = rng.below(len + 10);
                assert_eq!(set.first_from(from), model.range(from..).next().copied(), "len {len} from {from}");
                assert_eq!(set.len(), model.len());
                assert_eq!(set.is_empty(), model.is_empty());
                assert_eq!(set.contains(slot), model.contains(&slot));
            }
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
