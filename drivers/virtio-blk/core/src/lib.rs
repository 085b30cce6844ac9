//! The logic of the virtio-blk driver PD, apart from the PD glue: everything
//! here runs (and is tested) on the host too.
//!
//! - [`pci`]: finds the virtio structures (common configuration, notify,
//!   ISR, device configuration) through the capability list of the device's
//!   PCI configuration space (virtio 1.1 §4.1.4), read from the read-only
//!   snapshot the initialiser maps.
//! - [`transport`]: the modern virtio PCI transport over the mapped BAR:
//!   reset, feature negotiation, queue set-up, notifications, ISR (§3.1,
//!   §4.1.4.3–§4.1.4.5).
//! - [`virtq`]: one split virtqueue (§2.6) in a DMA region of the driver's,
//!   with a fixed three-descriptor chain per request slot.
//! - [`driver`]: the block device proper: validates each client request
//!   ([`blk_protocol`]), turns it into a virtio-blk request (§5.2.6), and
//!   turns completions (in any order) back into responses.
//!
//! # Why not the `virtio-drivers` crate
//!
//! `virtio-drivers` 0.13 (rcore-os) was evaluated first. Its `VirtIOBlk` does
//! have non-blocking requests (`read_blocks_nb` / `complete_read_blocks`,
//! `peek_used`), and its `Hal::share` could return physical addresses inside
//! our shared data region. It does not fit this system:
//!
//! - **Requests in flight.** `VirtIOBlk`'s queue size is a private constant,
//!   16. A request takes three descriptors, so at most five are in flight,
//!   unless indirect descriptors are used, which need its `alloc` feature
//!   and a heap allocation per request, on the data path.
//! - **Read-only configuration space.** `PciTransport::new` finds BARs with
//!   `PciRoot::bar_info`, which sizes each BAR by writing all-ones to it
//!   through `ConfigurationAccess::write_word`. A driver PD has only a
//!   read-only snapshot of its configuration space; the initialiser has
//!   already sized and mapped the BAR. Faking writes on a snapshot would be
//!   a lie the transport relies on.
//! - **Memory model.** The buffers are passed as `&mut [u8]` and the request
//!   header and status as `&mut BlkReq` / `&mut BlkResp` that the device
//!   writes while they are "borrowed": Rust references to memory that the
//!   device, and here also the client PD, change behind the compiler's back.
//!   `Hal` is a set of static functions, so the DMA region would be global
//!   state.
//!
//! The virtqueue here is about as much code as an adapter to that crate
//! would be: a descriptor table, two rings, and a fixed chain per slot.
#![no_std]

pub mod dma;
pub mod driver;
pub mod pci;
pub mod transport;
pub mod virtq;

#[cfg(test)]
mod tests;
