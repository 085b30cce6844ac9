//! A virtio-net driver (virtio 1.x, modern PCI transport) for a protection
//! domain: the device logic as a library, host-tested where it does not need
//! the device; the PD in `main.rs` is glue.
//!
//! The virtio parts every device shares (PCI capability walk, modern
//! transport, split virtqueue) are the [`lib_virtio`] crate; this one holds
//! what is particular to virtio-net:
//!
//! - [`features`]: what the driver asks of the device.
//! - [`driver`]: receive and transmit between the device's two virtqueues
//!   and a client's `shared-queue` queues, per the `net-protocol` contract:
//!   receive chains, transmit gather, batching, suppression.
//!
//! # Why not the `virtio-drivers` crate
//!
//! The reasons shared with virtio-blk (write access to configuration
//! space, Rust references to shared memory, slice-based bookkeeping,
//! publishing on every `add`) are in the [`lib_virtio`] crate's docs. Particular
//! to networking: **its network devices do not do gather or in-place
//! receive into buffers we own.** `VirtIONetRaw::transmit_begin` sends one
//! contiguous buffer holding the virtio-net header and the frame;
//! `VirtIONet` allocates and copies. We need a header and payload from
//! different regions per frame, and receive buffers that the client lends.
//!
//! # Frames and the virtio-net header
//!
//! With `VIRTIO_F_VERSION_1` the header (`struct virtio_net_hdr`, 5.1.6) is
//! [`NET_HDR_LEN`] = 12 bytes, and the device makes no assumption about how
//! header and frame are split over descriptors (2.6.4, message framing). So:
//!
//! - **receive** chains are two device-writable descriptors: a 12-byte
//!   header slot in the driver's private memory, then a client buffer of
//!   [`lib_net_protocol::RX_BUFFER_SIZE`] bytes. The frame lands at the start
//!   of the client's buffer. With `VIRTIO_NET_F_GUEST_CSUM` the header's
//!   `flags` (5.1.6.4) become the frame's `rx_active` cookie:
//!   `DATA_VALID` as `RX_CSUM_VALID`, `NEEDS_CSUM` as `RX_CSUM_PARTIAL`
//!   with `csum_start` and `csum_offset`; otherwise the header is not read.
//! - **transmit** chains are one device-readable descriptor for the frame's
//!   header, in a slot of the driver's private memory per chain in flight,
//!   then the client's segments as they are. The header is all zero unless
//!   the frame's first descriptor is an offload descriptor
//!   (`lib_net_protocol::TxOffload`): then `flags = NEEDS_CSUM`,
//!   `csum_start`, `csum_offset` (5.1.6.2, `VIRTIO_NET_F_CSUM`) and, for a
//!   TCP segment of more than one MSS, `gso_type = TCPV4`, `gso_size`,
//!   `hdr_len` (`VIRTIO_NET_F_HOST_TSO4`). The offload descriptor itself
//!   names no bytes and is not part of the chain.
//!
//! No receive buffer is smaller than 1526 bytes (12 + 1514), as 5.1.6.3.1
//! asks when `VIRTIO_NET_F_MRG_RXBUF` is not negotiated.
#![cfg_attr(not(test), no_std)]

pub mod driver;
pub mod features;

/// Bytes of `struct virtio_net_hdr` with `VIRTIO_F_VERSION_1` (5.1.6: the
/// `num_buffers` field is always present).
pub const NET_HDR_LEN: usize = 12;

#[cfg(test)]
mod tests;
