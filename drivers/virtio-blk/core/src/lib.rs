//! The logic of the virtio-blk driver PD, apart from the PD glue: everything
//! here runs (and is tested) on the host too.
//!
//! The virtio parts every device shares (PCI capability walk, modern
//! transport, split virtqueue, DMA regions) are the [`lib_virtio`] crate; this
//! one holds what is particular to virtio-blk:
//!
//! - [`slots`]: request slots on the shared split virtqueue, each with its
//!   header and status byte, and the chain of each request (§5.2.6).
//! - [`driver`]: the block device proper: bring-up, validates each client
//!   request ([`lib_blk_protocol`]), turns it into a virtio-blk request, and
//!   turns completions (in any order) back into responses.
//!
//! # Why not the `virtio-drivers` crate
//!
//! `virtio-drivers` 0.13 (rcore-os) was evaluated first. Its `VirtIOBlk` does
//! have non-blocking requests (`read_blocks_nb` / `complete_read_blocks`,
//! `peek_used`), and its `Hal::share` could return physical addresses inside
//! our shared data region. The reasons it does not fit that are shared with
//! virtio-net (write access to configuration space to size BARs, Rust
//! references to memory the device and the client change, `Hal` as global
//! state) are in the [`lib_virtio`] crate's docs. Particular to virtio-blk:
//!
//! - **Requests in flight.** `VirtIOBlk`'s queue size is a private constant,
//!   16. A request takes three descriptors, so at most five are in flight,
//!   unless indirect descriptors are used, which need its `alloc` feature
//!   and a heap allocation per request, on the data path.
//!
//! The request slots here are about as much code as an adapter to that
//! crate would be.
#![no_std]

pub mod driver;
pub mod slots;

#[cfg(test)]
mod tests;
