//! A virtio-net driver (virtio 1.x, modern PCI transport) for a protection
//! domain: the device logic as a library, host-tested where it does not need
//! the device; the PD in `main.rs` is glue.
//!
//! - [`pci`]: finds the virtio structures in a read-only snapshot of the
//!   configuration space.
//! - [`transport`]: the common configuration registers, notification, ISR.
//! - [`virtqueue`]: a split virtqueue with event-index (or flag) suppression.
//! - [`features`]: what the driver asks of the device.
//! - [`driver`]: receive and transmit between the device and a client's
//!   `shared-queue` queues, per the `net-protocol` contract.
//!
//! # Why not the `virtio-drivers` crate
//!
//! `virtio-drivers` (rcore-os) was evaluated for this driver and is not
//! used, for these reasons:
//!
//! 1. **Its PCI transport needs write access to configuration space.**
//!    `PciTransport::new` takes a `PciRoot` and calls `bar_info` for each
//!    structure, which sizes the BAR by writing `0xffffffff` to it (and
//!    turns memory decoding off meanwhile). This PD has only a read-only
//!    snapshot of configuration space; the initialiser owns the real one.
//!    A `ConfigurationAccess` over the snapshot would silently get the sizes
//!    wrong. (Its `Transport` trait could be implemented anew, which is
//!    most of [`transport`] anyway.)
//! 2. **Its buffers are Rust slices.** `VirtQueue::add` takes `&[&[u8]]`
//!    and `&mut [&mut [u8]]` and translates them with `Hal::share`. Our
//!    buffers live in regions shared with a client PD that may write them
//!    at any time; making Rust references to such memory is unsound, and
//!    translating virtual to physical addresses per buffer is needless when
//!    the client already names buffers by (region, offset) and the driver
//!    knows each region's physical base. `pop_used` also requires the same
//!    slices to be passed back, duplicating the bookkeeping the driver
//!    needs anyway (which client descriptors a chain carried).
//! 3. **Its network devices do not do gather or in-place receive into
//!    buffers we own.** `VirtIONetRaw::transmit_begin` sends one contiguous
//!    buffer holding the virtio-net header and the frame; `VirtIONet`
//!    allocates and copies. We need a header and payload from different
//!    regions per frame, and receive buffers that the client lends.
//! 4. **Batching.** `VirtQueue::add` publishes `avail.idx` on each call; we
//!    publish once per wake-up.
//!
//! What is left is small: a split virtqueue of ~200 lines with event-index
//! suppression, and the transport registers.
//!
//! # Frames and the virtio-net header
//!
//! With `VIRTIO_F_VERSION_1` the header (`struct virtio_net_hdr`, 5.1.6) is
//! [`NET_HDR_LEN`] = 12 bytes, and the device makes no assumption about how
//! header and frame are split over descriptors (2.6.4, message framing). So:
//!
//! - **receive** chains are two device-writable descriptors: a 12-byte
//!   header slot in the driver's private memory, then a client buffer of
//!   [`net_protocol::RX_BUFFER_SIZE`] bytes. The frame lands at the start
//!   of the client's buffer; the header (all zero, since no offload is
//!   negotiated) is never looked at.
//! - **transmit** chains are one device-readable descriptor for an all-zero
//!   header shared by every frame (no checksum or segmentation offload),
//!   then the client's segments as they are.
//!
//! No receive buffer is smaller than 1526 bytes (12 + 1514), as 5.1.6.3.1
//! asks when `VIRTIO_NET_F_MRG_RXBUF` is not negotiated.
#![cfg_attr(not(test), no_std)]

pub mod driver;
pub mod features;
pub mod pci;
pub mod transport;
pub mod virtqueue;

/// Bytes of `struct virtio_net_hdr` with `VIRTIO_F_VERSION_1` (5.1.6: the
/// `num_buffers` field is always present).
pub const NET_HDR_LEN: usize = 12;
