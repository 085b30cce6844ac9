//! A 16550-compatible UART (the PC's COM ports), driven through a
//! [`PortIo`] trait so that the register sequences can be tested on the host.
//!
//! The eight registers sit at consecutive I/O ports from the base (COM1:
//! 0x3f8). Offsets 0 and 1 are the divisor latch while `LCR.DLAB` is set,
//! and the data/interrupt-enable registers otherwise.
#![no_std]
#![forbid(unsafe_code)]

mod budget;

pub use budget::{Budget, BUDGET_BYTES, WINDOW_CYCLES};

/// Access to the UART's eight registers, by offset from its base port.
pub trait PortIo {
    fn read(&mut self, offset: u8) -> u8;
    fn write(&mut self, offset: u8, value: u8);
}

/// Register offsets.
pub mod reg {
    /// Receive buffer (read) / transmit holding register (write).
    pub const DATA: u8 = 0;
    /// Interrupt enable.
    pub const IER: u8 = 1;
    /// Divisor latch low byte (while `LCR.DLAB`).
    pub const DLL: u8 = 0;
    /// Divisor latch high byte (while `LCR.DLAB`).
    pub const DLM: u8 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR_FCR: u8 = 2;
    /// Line control.
    pub const LCR: u8 = 3;
    /// Modem control.
    pub const MCR: u8 = 4;
    /// Line status.
    pub const LSR: u8 = 5;
    /// Modem status.
    pub const MSR: u8 = 6;
    /// Scratch: plain storage, used to detect that a UART is present.
    pub const SCRATCH: u8 = 7;
}

/// Register bits.
pub mod bits {
    /// `IER`: interrupt when received data is available.
    pub const IER_RX_AVAILABLE: u8 = 1 << 0;
    /// `FCR`: enable the FIFOs, clear both, receive trigger at 1 byte.
    pub const FCR_ENABLE_AND_CLEAR: u8 = 0b0000_0111;
    /// `LCR`: 8 data bits, no parity, 1 stop bit.
    pub const LCR_8N1: u8 = 0b0000_0011;
    /// `LCR`: divisor latch access.
    pub const LCR_DLAB: u8 = 1 << 7;
    /// `MCR`: DTR and RTS asserted, and OUT2, which on a PC connects the
    /// UART's interrupt output to the interrupt controller.
    pub const MCR_DTR_RTS_OUT2: u8 = 0b0000_1011;
    /// `LSR`: a received byte is waiting.
    pub const LSR_DATA_READY: u8 = 1 << 0;
    /// `LSR`: the transmit holding register (and FIFO) is empty.
    pub const LSR_THR_EMPTY: u8 = 1 << 5;
}

/// Depth of the 16550A transmit FIFO: once `LSR_THR_EMPTY` is seen, this
/// many bytes may be written without checking again.
pub const TX_FIFO_DEPTH: usize = 16;

/// The UART's input clock divided by 16: the fastest baud rate (divisor 1).
pub const BASE_BAUD: u32 = 115_200;

/// How many `LSR` polls to wait for room in the transmit FIFO before giving
/// up on a byte: a UART that never drains must not hang its driver.
pub const TX_SPIN_LIMIT: u32 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The scratch register does not hold what was written: no UART here.
    NotPresent,
    /// `baud` does not divide [`BASE_BAUD`] into a 16-bit divisor.
    BadBaud,
}

/// A 16550 UART.
pub struct Uart<P: PortIo> {
    io: P,
    /// Bytes that may still be written before `LSR` must be checked again.
    tx_room: usize,
}

impl<P: PortIo> Uart<P> {
    /// Wraps the registers without touching them (for a UART that is
    /// already set up).
    pub fn new(io: P) -> Self {
        Uart { io, tx_room: 0 }
    }

    /// Checks that a UART answers, then programs it: `baud`, 8N1, FIFOs on
    /// and cleared, received-data interrupt on. Reading the status registers
    /// at the end clears whatever the firmware left pending.
    pub fn init(io: P, baud: u32) -> Result<Self, Error> {
        let divisor = divisor(baud)?;
        let mut uart = Uart::new(io);
        let io = &mut uart.io;
        io.write(reg::SCRATCH, 0x5a);
        if io.read(reg::SCRATCH) != 0x5a {
            return Err(Error::NotPresent);
        }
        io.write(reg::IER, 0);
        io.write(reg::LCR, bits::LCR_DLAB);
        io.write(reg::DLL, divisor as u8);
        io.write(reg::DLM, (divisor >> 8) as u8);
        io.write(reg::LCR, bits::LCR_8N1);
        io.write(reg::IIR_FCR, bits::FCR_ENABLE_AND_CLEAR);
        io.write(reg::MCR, bits::MCR_DTR_RTS_OUT2);
        for r in [reg::LSR, reg::DATA, reg::IIR_FCR, reg::MSR] {
            io.read(r);
        }
        io.write(reg::IER, bits::IER_RX_AVAILABLE);
        Ok(uart)
    }

    /// Transmits `bytes`, waiting for room in the FIFO as needed (at most
    /// [`TX_SPIN_LIMIT`] polls each time). Returns how many were sent.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            if self.tx_room == 0 && !self.wait_tx_empty() {
                return i;
            }
            self.io.write(reg::DATA, b);
            self.tx_room -= 1;
        }
        bytes.len()
    }

    /// Like [`write`](Self::write), turning `\n` into `\r\n` for terminals.
    pub fn write_text(&mut self, text: &[u8]) {
        for line in text.split_inclusive(|&b| b == b'\n') {
            match line.split_last() {
                Some((b'\n', body)) => {
                    self.write(body);
                    self.write(b"\r\n");
                }
                _ => {
                    self.write(line);
                }
            }
        }
    }

    fn wait_tx_empty(&mut self) -> bool {
        for _ in 0..TX_SPIN_LIMIT {
            if self.io.read(reg::LSR) & bits::LSR_THR_EMPTY != 0 {
                self.tx_room = TX_FIFO_DEPTH;
                return true;
            }
        }
        false
    }

    /// Moves received bytes into `buf` until the UART has no more or `buf`
    /// is full; returns how many. Bytes that do not fit stay in the UART.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && self.io.read(reg::LSR) & bits::LSR_DATA_READY != 0 {
            buf[n] = self.io.read(reg::DATA);
            n += 1;
        }
        n
    }

    /// The registers, for the caller to release.
    pub fn into_inner(self) -> P {
        self.io
    }
}

/// The divisor latch value for `baud`.
pub fn divisor(baud: u32) -> Result<u16, Error> {
    if baud == 0 || !BASE_BAUD.is_multiple_of(baud) {
        return Err(Error::BadBaud);
    }
    u16::try_from(BASE_BAUD / baud).map_err(|_| Error::BadBaud)
}

#[cfg(test)]
mod tests;
