//! Who receives traffic: protection domains numbered by the demultiplexer.

/// The most owners a table distinguishes: the width of [`OwnerSet`].
pub const MAX_OWNERS: usize = 64;

/// A protection domain that owns filters and receives frames, by its index
/// (for example its position in the system description), below
/// [`MAX_OWNERS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(u8);

impl Owner {
    /// The owner with this index, if it is below [`MAX_OWNERS`].
    pub const fn new(index: usize) -> Option<Owner> {
        if index < MAX_OWNERS {
            Some(Owner(index as u8))
        } else {
            None
        }
    }

    /// The owner's index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of owners: who receives copies of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OwnerSet(u64);

impl OwnerSet {
    /// No owners.
    pub const EMPTY: OwnerSet = OwnerSet(0);

    pub fn insert(&mut self, owner: Owner) {
        self.0 |= 1 << owner.0;
    }

    pub fn remove(&mut self, owner: Owner) {
        self.0 &= !(1 << owner.0);
    }

    pub fn contains(&self, owner: Owner) -> bool {
        self.0 & (1 << owner.0) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The members as a bitmask, bit `i` for the owner with index `i`.
    pub fn bits(&self) -> u64 {
        self.0
    }

    /// The members in increasing index order.
    pub fn iter(&self) -> impl Iterator<Item = Owner> {
        let bits = self.0;
        (0..MAX_OWNERS as u8).filter(move |i| bits & (1 << i) != 0).map(Owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_bounded() {
        assert_eq!(Owner::new(63).map(Owner::index), Some(63));
        assert_eq!(Owner::new(64), None);
    }

    #[test]
    fn set_operations() {
        let (a, b) = (Owner::new(0).unwrap(), Owner::new(63).unwrap());
        let mut set = OwnerSet::EMPTY;
        assert!(set.is_empty());
        set.insert(a);
        set.insert(b);
        set.insert(b);
        assert_eq!(set.len(), 2);
        assert!(set.contains(a) && set.contains(b));
        assert_eq!(set.iter().collect::<std::vec::Vec<_>>(), [a, b]);
        set.remove(a);
        assert!(!set.contains(a));
        assert_eq!(set.bits(), 1 << 63);
    }
}
