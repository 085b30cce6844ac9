//! Console output with a per-PD prefix.
//!
//! A message is formatted into a fixed line buffer first and then written out
//! in one go, so that lines from different PDs interleave only at line
//! boundaries in the common case. With a debug kernel the bytes go out through
//! the kernel's serial console (`seL4_DebugPutChar`); a release kernel has no
//! console of its own, and a serial driver PD takes over.

use core::fmt::{self, Write};

/// Longest line written in one piece; longer messages are split.
const LINE: usize = 256;

/// Formats into a stack buffer, flushing whenever it fills.
pub struct LineWriter {
    buf: [u8; LINE],
    len: usize,
}

impl LineWriter {
    pub const fn new() -> Self {
        LineWriter { buf: [0; LINE], len: 0 }
    }

    pub fn flush(&mut self) {
        put_bytes(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Default for LineWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Writes raw bytes to the console.
pub fn put_bytes(bytes: &[u8]) {
    for &b in bytes {
        sel4::debug_put_char(b);
    }
}

/// Writes `[prefix] message\n` as one line.
pub fn print_prefixed(prefix: &str, args: fmt::Arguments) {
    let mut w = LineWriter::new();
    let _ = write!(w, "[{prefix}] ");
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}
