//! A driver for the Intel 82574L Gigabit Ethernet controller (QEMU's
//! `-device e1000e`) for a protection domain: the device logic as a
//! library, host-tested against a model of the device; the PD (not written
//! yet) will be glue, as `drivers/virtio-net/src/main.rs` is for
//! `drivers-virtio-net-core`.
//!
//! - [`regs`]: the device's registers (BAR 0, memory mapped) behind the
//!   [`Regs`] trait, their offsets and bits.
//! - [`driver`]: bring-up and the two descriptor rings between the device
//!   and a client's `shared-queue` queues, per the `net-protocol`
//!   contract, with the same client-facing methods as virtio-net's
//!   `Driver` (`handle_at`, `mac`, `stats`, `offloads`, `receive_filter`,
//!   `restarted`, `attach`).
//!
//! # References
//!
//! Section numbers and register names are those of the *Intel 82574 GbE
//! Controller Family Datasheet* (revision 3.4, June 2014): 4.6 (software
//! initialisation sequence), 7.1 (receive, with 7.1.8 the receive
//! descriptor ring), 7.2 (transmit), 7.4 (interrupts; 7.4.5 how causes are
//! cleared), and chapter 10 (register descriptions, by register name). The
//! descriptor layouts are the *legacy* receive and transmit descriptors of
//! 7.1 and 7.2. Where QEMU's model (`hw/net/e1000e_core.c`) is what the
//! driver actually meets, the docs say so.
//!
//! # What is not done
//!
//! No offloads (checksum, TSO: context descriptors), no MSI or MSI-X (the
//! PD will use the legacy INTx line, as virtio-net does), no PHY access
//! (MDIC) or EEPROM reads beyond what the reset loads into RAL0/RAH0, and
//! none of the real silicon's errata work-arounds (the 82574's
//! `TXDCTL`/`GCR` settings in Linux's e1000e): the target is QEMU's model.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod driver;
pub mod regs;

pub use regs::Regs;

#[cfg(test)]
mod tests;
