extern crate std;

use super::*;
use std::collections::VecDeque;
use std::vec::Vec;

/// A simulated 16550: records every access, has a receive queue, and can
/// report its transmitter busy for a number of `LSR` reads.
#[derive(Default)]
struct FakeUart {
    log: Vec<(char, u8, u8)>,
    scratch: u8,
    absent: bool,
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    busy_polls: u32,
    stuck: bool,
}

impl PortIo for &mut FakeUart {
    fn read(&mut self, offset: u8) -> u8 {
        let v = match offset {
            _ if self.absent => 0xff,
            reg::SCRATCH => self.scratch,
            reg::LSR => {
                let mut lsr = 0;
                if !self.rx.is_empty() {
                    lsr |= bits::LSR_DATA_READY;
                }
                if self.busy_polls > 0 {
                    self.busy_polls -= 1;
                } else if !self.stuck {
                    lsr |= bits::LSR_THR_EMPTY;
                }
                lsr
            }
            reg::DATA => self.rx.pop_front().unwrap_or(0),
            _ => 0,
        };
        self.log.push(('r', offset, v));
        v
    }
    fn write(&mut self, offset: u8, value: u8) {
        match offset {
            reg::SCRATCH => self.scratch = value,
            reg::DATA => self.tx.push(value),
            _ => {}
        }
        self.log.push(('w', offset, value));
    }
}

#[test]
fn init_programs_baud_8n1_fifo_and_rx_interrupt_in_order() {
    let mut fake = FakeUart::default();
    Uart::init(&mut fake, 115_200).unwrap();
    let writes: Vec<(u8, u8)> = fake.log.iter().filter(|a| a.0 == 'w').map(|a| (a.1, a.2)).collect();
    assert_eq!(
        writes,
        [
            (reg::SCRATCH, 0x5a),
            (reg::IER, 0),
            (reg::LCR, 0x80),
            (reg::DLL, 1),
            (reg::DLM, 0),
            (reg::LCR, 0x03),
            (reg::IIR_FCR, 0x07),
            (reg::MCR, 0x0b),
            (reg::IER, 0x01),
        ]
    );
}

#[test]
fn init_fails_without_a_uart_and_for_impossible_bauds() {
    let mut fake = FakeUart { absent: true, ..Default::default() };
    assert_eq!(Uart::init(&mut fake, 115_200).err(), Some(Error::NotPresent));
    assert_eq!(divisor(9600), Ok(12));
    assert_eq!(divisor(50), Ok(2304));
    assert_eq!(divisor(7), Err(Error::BadBaud));
    assert_eq!(divisor(0), Err(Error::BadBaud));
}

#[test]
fn transmit_checks_lsr_once_per_fifo_load() {
    let mut fake = FakeUart { busy_polls: 3, ..Default::default() };
    let text = [b'a'; 40];
    assert_eq!(Uart::new(&mut fake).write(&text), 40);
    assert_eq!(fake.tx, text);
    let lsr_reads = fake.log.iter().filter(|a| *a == &('r', reg::LSR, 0)).count();
    let ready = fake.log.iter().filter(|a| a.0 == 'r' && a.1 == reg::LSR && a.2 & bits::LSR_THR_EMPTY != 0).count();
    assert_eq!((lsr_reads, ready), (3, 3), "3 busy polls, then one ready poll per 16 bytes");
}

#[test]
fn a_stuck_transmitter_is_given_up_on() {
    let mut fake = FakeUart { stuck: true, ..Default::default() };
    let mut uart = Uart::new(&mut fake);
    assert_eq!(uart.write(b"hello"), 0);
}

#[test]
fn text_gets_carriage_returns() {
    let mut fake = FakeUart::default();
    Uart::new(&mut fake).write_text(b"one\ntwo\n\nthree");
    assert_eq!(fake.tx, b"one\r\ntwo\r\n\r\nthree");
}

#[test]
fn receive_drains_until_empty_or_full() {
    let mut fake = FakeUart { rx: b"hello".iter().copied().collect(), ..Default::default() };
    let mut uart = Uart::new(&mut fake);
    let mut buf = [0; 3];
    assert_eq!(uart.read(&mut buf), 3);
    assert_eq!(&buf, b"hel");
    let mut buf = [0; 8];
    assert_eq!(uart.read(&mut buf), 2);
    assert_eq!(&buf[..2], b"lo");
    assert_eq!(uart.read(&mut buf), 0);
}
