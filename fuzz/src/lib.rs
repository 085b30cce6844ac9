//! What the fuzz targets share: a reader that turns libFuzzer's bytes into
//! the choices a target makes (which operation, which numbers, which piece
//! of input), total on any input.
//!
//! Each target in `fuzz_targets/` is one `fuzz_target!`: it drives one
//! parser (or a family of decoders) with the input, and asserts what the
//! parser's documentation promises of its result, not only that it
//! returns. `tests/README.md` ("Fuzzing") lists them.

/// The fuzzer's input, read front to back. Every read succeeds: past the
/// end, numbers are zero and slices empty, so a target never has to guard
/// against a short input, and libFuzzer's shrinking keeps working.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.bytes)
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.bytes.len());
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        head
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    pub fn u16(&mut self) -> u16 {
        let mut b = [0; 2];
        let got = self.take(2);
        b[..got.len()].copy_from_slice(got);
        u16::from_le_bytes(b)
    }

    pub fn u32(&mut self) -> u32 {
        let mut b = [0; 4];
        let got = self.take(4);
        b[..got.len()].copy_from_slice(got);
        u32::from_le_bytes(b)
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0; 8];
        let got = self.take(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u16()) % n
    }

    /// A length-prefixed piece: one byte of length (0–255), then that
    /// many bytes.
    pub fn piece(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }

    /// A length-prefixed piece with a two-byte length, at most `max`.
    pub fn long_piece(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u16()).min(max);
        self.take(n)
    }
}
