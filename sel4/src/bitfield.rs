//! Access to one field of a one-word kernel bitfield; the offsets and
//! widths come from the `.bf` specifications (see [`crate::layout`]).

use crate::Word;

/// A field `width` bits wide starting at bit `offset` of a word.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BitField {
    pub offset: u32,
    pub width: u32,
}

impl BitField {
    pub const fn new(offset: u32, width: u32) -> Self {
        BitField { offset, width }
    }

    const fn mask(self) -> Word {
        if self.width >= Word::BITS {
            Word::MAX
        } else {
            (1 << self.width) - 1
        }
    }

    /// The field's value in `word`.
    pub const fn get(self, word: Word) -> Word {
        (word >> self.offset) & self.mask()
    }

    /// `word` with the field set to `value`, truncated to the field's width
    /// (as the kernel's generated `_new` functions do).
    pub const fn set(self, word: Word, value: Word) -> Word {
        (word & !(self.mask() << self.offset)) | ((value & self.mask()) << self.offset)
    }
}
