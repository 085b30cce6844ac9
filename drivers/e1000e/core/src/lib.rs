//! A driver for the Intel 82574L Gigabit Ethernet controller (QEMU's
//! `-device e1000e`) for a protection domain: the device logic as a
//! library, host-tested against a model of the device; the PD
//! (`drivers/e1000e/src/main.rs`, package `drivers-e1000e`) is glue, as
//! `drivers/virtio-net/src/main.rs` is for `drivers-virtio-net-core`.
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
//! The *Intel 82574 GbE Controller Family Datasheet* (revision 3.4, June
//! 2014). Two sections cited by number were checked against its text:
//! 7.1.8 (the receive descriptor ring: head equal to tail is an empty
//! ring; the transmit ring follows the same rule) and 7.4.5 (how
//! interrupt causes are cleared: on read, by writing ones, automatically).
//! The rest is cited by the datasheet's own titles and names, whose
//! section numbers were not checked here: the "Software Initialization
//! Sequence" and its steps, the "Legacy Receive Descriptor Format" and
//! "Legacy Transmit Descriptor Format", and each register by its name
//! (`CTRL`, `RCTL`, ...) as in the register descriptions. Where QEMU's
//! model (`hw/net/e1000e_core.c`) is what the driver actually meets, the
//! docs say so.
//!
//! # What is not done
//!
//! No offloads (checksum, TSO: context descriptors), no MSI or MSI-X (the
//! PD uses the legacy INTx line, as virtio-net does), no PHY access
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
