//! serial: the system console. Drives the 16550 UART on COM1 through I/O
//! ports and prints what the other PDs write into their console rings (the
//! convention is in the runtime's `console` module), so that a release
//! kernel, which prints nothing itself, still has a console.
//!
//! Description: COM1's ports and ISA IRQ 4 (IOAPIC pin 4, edge, active
//! high); client `i` (0..CLIENTS) maps its console region here with
//! `setvar_vaddr="console_client_<i>"` and has its channel 25 connected to
//! this PD's channel `i`. Each client may print 32 KiB a second (about:
//! `drivers_serial_core`'s budget); the rest is dropped and counted, so no
//! PD can flood the console the others share. Optionally, `console_input`
//! maps a ring into which received bytes are written, signalled on the
//! channel named `input` (if any).
//!
//! Restartable (`on_fault="restart-backoff"` in `microkit.system`): a
//! restarted serial PD programs the UART again and resumes every client's
//! ring where its last life left it, since a ring's read position lives in
//! the ring's region (`lib-console-ring`), not in this PD's memory; lines
//! the clients wrote meanwhile are printed then.
//!
//! The UART logic lives in the `drivers_serial_core` crate; this is the glue.
#![no_std]
#![no_main]

use drivers_serial_core::{Budget, PortIo, Uart, BUDGET_BYTES};
use lib_console_ring::{ConsoleRegion, Reader, Writer};
use pds_boot_spec::cspace;
use pds_runtime::{log, setvar, ChannelSet, Handler, Var};

/// COM1's first I/O port.
const COM1: u16 = 0x3f8;
/// `<ioport id="0">`: COM1's eight ports.
const COM1_PORTS: sel4::X86IoPort = sel4::X86IoPort(cspace::IOPORT_BASE);
const BAUD: u32 = 115_200;

// The UART's interrupt (`<irq ... setvar_id="uart">`).
pds_runtime::channel!(UART_IRQ = "uart", irq);
// The client that receives input bytes, if the description names one
// (`setvar_id="input"`).
pds_runtime::channel!(INPUT_CLIENT = "input", optional);

setvar!(console_client_0);
setvar!(console_client_1);
setvar!(console_client_2);
setvar!(console_client_3);
setvar!(console_client_4);
setvar!(console_client_5);
setvar!(console_client_6);
setvar!(console_client_7);
setvar!(console_client_8);
setvar!(console_client_9);
setvar!(console_client_10);
setvar!(console_client_11);
setvar!(console_client_12);
setvar!(console_client_13);
setvar!(console_client_14);
setvar!(console_client_15);
setvar!(console_input);

/// The most clients: rings `console_client_0` to `console_client_15`.
const CLIENTS: usize = 16;

/// Client `i`'s ring address, patched by the builder; its channel is `i`.
static CLIENT_RINGS: [&Var; CLIENTS] = [
    &console_client_0,
    &console_client_1,
    &console_client_2,
    &console_client_3,
    &console_client_4,
    &console_client_5,
    &console_client_6,
    &console_client_7,
    &console_client_8,
    &console_client_9,
    &console_client_10,
    &console_client_11,
    &console_client_12,
    &console_client_13,
    &console_client_14,
    &console_client_15,
];

/// COM1's registers through the I/O port capability.
struct Com1;

impl PortIo for Com1 {
    fn read(&mut self, offset: u8) -> u8 {
        // An error means the description lacks the ioport: read as "no UART".
        COM1_PORTS.in8(COM1 + u16::from(offset)).unwrap_or(0xff)
    }
    fn write(&mut self, offset: u8, value: u8) {
        let _ = COM1_PORTS.out8(u64::from(COM1 + u16::from(offset)), u64::from(value));
    }
}

/// A handle on the UART. It is stateless apart from its transmit-room
/// count, which a fresh handle re-reads from the UART, so that this PD's
/// own log lines and the clients' bytes can each take one.
fn uart() -> Uart<Com1> {
    Uart::new(Com1)
}

/// Where this PD's own log lines (and panic message) go: the UART.
fn print_own(bytes: &[u8]) {
    uart().write_text(bytes);
}

/// Maps the ring whose address the builder patched into `var`, if any.
fn ring_at(var: &Var) -> Option<&'static ConsoleRegion> {
    // SAFETY: the builder patches the variable with the address of a 4 KiB
    // read-write mapping of a console region, mapped for the PD's lifetime.
    var.get().map(|vaddr| unsafe { ConsoleRegion::at(vaddr as usize) })
}

struct Client {
    ring: Reader<'static>,
    /// The client's dropped-byte count when we last reported it.
    reported_dropped: u32,
    /// Its share of the console: what it writes over budget is dropped.
    budget: Budget,
}

/// The time-stamp counter: the budgets' clock.
fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter, which seL4 leaves
    // readable at user level.
    unsafe { core::arch::x86_64::_rdtsc() }
}

struct Serial {
    clients: [Option<Client>; CLIENTS],
    input: Option<Writer<'static>>,
}

impl Serial {
    /// Prints what every client has written, one ring at a time so that
    /// lines stay whole, each within its budget (`drivers_serial_core`'s
    /// `budget`: what a client writes beyond it is dropped and the count
    /// logged when its window ends). Any wake-up drains all rings: a signal
    /// only says "something may be there", and draining is cheap when empty.
    fn drain_clients(&mut self) {
        let mut buf = [0u8; 256];
        for (i, client) in self.clients.iter_mut().enumerate() {
            let Some(client) = client else { continue };
            if let Some(over) = client.budget.take_report(rdtsc()) {
                log!("client {i} wrote {over} bytes over its console budget ({BUDGET_BYTES} bytes a second): dropped");
            }
            loop {
                let n = client.ring.read(&mut buf);
                if n == 0 {
                    break;
                }
                let printed = client.budget.admit(rdtsc(), &buf[..n]);
                uart().write_text(&buf[printed]);
            }
            let dropped = client.ring.dropped();
            if dropped != client.reported_dropped {
                log!(
                    "client {i} dropped {} bytes: its console ring was full",
                    dropped.wrapping_sub(client.reported_dropped)
                );
                client.reported_dropped = dropped;
            }
        }
    }

    /// Moves received bytes into the input ring (or drops them if there is
    /// none); the input client is signalled once per wake-up.
    fn receive(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            let n = uart().read(&mut buf);
            if n == 0 {
                break;
            }
            if let Some(input) = &mut self.input {
                input.write(&buf[..n]);
                if let Some(client) = INPUT_CLIENT.get_optional() {
                    client.deferred_notify();
                }
            }
        }
    }
}

impl Handler for Serial {
    fn init() -> Self {
        if let Err(e) = Uart::init(Com1, BAUD) {
            panic!("COM1 at {COM1:#x}: {e:?}");
        }
        // After a restart the UART's interrupt may still be unacknowledged
        // from the last life (the line stays masked until it is): ack it,
        // and read whatever is waiting below. At first boot it is a no-op.
        UART_IRQ.get().irq_ack();
        pds_runtime::console::set_output(print_own);
        // Start on a fresh line: the firmware may have left one unfinished.
        uart().write(b"\r\n");
        let clients = core::array::from_fn(|i| {
            ring_at(CLIENT_RINGS[i]).map(|region| {
                let ring = Reader::new(region);
                Client { reported_dropped: ring.dropped(), ring, budget: Budget::default() }
            })
        });
        let input = ring_at(&console_input).map(Writer::new);
        let mut serial = Serial { clients, input };
        let count = serial.clients.iter().flatten().count();
        log!(
            "COM1 at {BAUD} baud, 8N1; {count} client console(s){}",
            if serial.input.is_some() { ", input ring" } else { "" }
        );
        serial.receive();
        serial.drain_clients();
        serial
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(UART_IRQ.get()) {
            // Acknowledge before reading: a byte that arrives after the last
            // read raises a new edge, which must find the line unmasked.
            UART_IRQ.get().irq_ack();
            self.receive();
        }
        self.drain_clients();
    }
}

pds_runtime::protection_domain!(Serial);
