//! Sequence numbers (RFC 9293 §3.4): 32-bit counters compared modulo
//! 2^32. `a < b` means `b` is ahead of `a` by less than 2^31; two numbers
//! exactly 2^31 apart are unordered, and this module orders them by the
//! sign of their 32-bit difference, as every TCP does.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgment) number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// `self < other` modulo 2^32 (RFC 9293 §3.4: "the symbol `<` means
    /// less than", on the circle of sequence space).
    pub const fn lt(self, other: Seq) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }

    pub const fn le(self, other: Seq) -> bool {
        (self.0.wrapping_sub(other.0) as i32) <= 0
    }

    pub const fn gt(self, other: Seq) -> bool {
        other.lt(self)
    }

    pub const fn ge(self, other: Seq) -> bool {
        other.le(self)
    }

    /// `low <= self < high` on the circle (an empty range holds nothing).
    pub const fn in_range(self, low: Seq, high: Seq) -> bool {
        low.le(self) && self.lt(high)
    }

    /// The later of two numbers.
    pub const fn max(self, other: Seq) -> Seq {
        if self.lt(other) {
            other
        } else {
            self
        }
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for Seq {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

/// The distance from `other` forward to `self` (`self - other`), which the
/// caller knows is less than 2^31.
impl Sub for Seq {
    type Output = u32;
    fn sub(self, other: Seq) -> u32 {
        self.0.wrapping_sub(other.0)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;

    #[test]
    fn comparisons_hold_across_the_wrap() {
        let a = Seq(u32::MAX - 5);
        let b = a + 10;
        assert_eq!(b.0, 4);
        assert!(a.lt(b) && a.le(b) && b.gt(a) && b.ge(a));
        assert!(!b.lt(a));
        assert_eq!(b - a, 10);
        assert!(Seq(u32::MAX).in_range(a, b));
        assert!(Seq(3).in_range(a, b) && !Seq(4).in_range(a, b));
        assert!(!a.in_range(a, a), "an empty range holds nothing");
        assert_eq!(a.max(b), b);
    }

    #[test]
    fn order_is_the_order_of_the_distance_for_random_pairs() {
        let mut rng = Rng(0x5e9);
        for _ in 0..100_000 {
            let a = Seq(rng.next() as u32);
            let d = (rng.next() as u32) % (1 << 31);
            let b = a + d;
            assert_eq!(a.lt(b), d != 0);
            assert!(a.le(b));
            assert_eq!(b - a, d);
        }
    }
}
