//! The monitor's console. A debug kernel prints for it; a release kernel has
//! no console, and the serial PD only carries PD output, so the monitor
//! writes its (rare) lines, boot failures and fault reports, straight to the
//! 16550 UART on COM1 through its IO port capability. A line from the serial
//! PD and one from the monitor can then interleave; none is lost.

use core::fmt::{self, Write};
use sel4::{init_caps, X86IoPort};

const COM1: u16 = 0x3f8;
/// Line status register; bit 5: the transmit holding register is empty.
const LSR: u16 = COM1 + 5;
const THR_EMPTY: u32 = 1 << 5;
/// Polls of LSR before giving up on a byte (a missing or stuck UART must
/// not hang the monitor).
const MAX_POLLS: u32 = 100_000;

fn uart_put(b: u8) {
    let port = X86IoPort(init_caps::IO_PORT);
    for _ in 0..MAX_POLLS {
        match port.in8(LSR) {
            Ok(lsr) if u32::from(lsr) & THR_EMPTY != 0 => break,
            Ok(_) => continue,
            Err(_) => return,
        }
    }
    let _ = port.out8(u64::from(COM1), u64::from(b));
}

fn put_bytes(bytes: &[u8]) {
    for &b in bytes {
        if sel4::PRINTING {
            sel4::debug_put_char(b);
        } else {
            if b == b'\n' {
                uart_put(b'\r');
            }
            uart_put(b);
        }
    }
}

/// Formats a whole line before writing it.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                put_bytes(&self.buf);
                self.len = 0;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Writes `[monitor] message\n`.
pub fn print(args: fmt::Arguments) {
    let mut line = Line { buf: [0; 256], len: 0 };
    let _ = writeln!(line, "[monitor] {args}");
    put_bytes(&line.buf[..line.len]);
}
