//! virtio 1.x building blocks shared by the driver PDs (`virtio-net`,
//! `virtio-blk`): everything that is the same for every device type.
//!
//! - [`pci`]: finds the virtio structures (common configuration,
//!   notification, ISR, device configuration) through the vendor-specific
//!   capabilities of a **read-only snapshot** of the device's PCI
//!   configuration space (virtio 1.x §4.1.4).
//! - [`transport`]: the modern virtio PCI transport over the mapped BAR,
//!   with volatile register accesses of the registers' own widths: reset,
//!   feature negotiation, queue set-up, notification, ISR, device
//!   configuration (§3.1, §4.1.4.3–§4.1.4.5, §4.1.5).
//! - [`dma`]: a physically contiguous region the device reaches, touched by
//!   the driver only through atomics, and named to the device by physical
//!   address.
//! - [`queue`]: the driver's side of a split virtqueue (§2.7): descriptor
//!   chains of any length with a caller-chosen token per chain in flight,
//!   batched publication, event-index or flag suppression both ways, and
//!   hostile-device checks on the used ring.
//! - `sim` (feature `sim`, for drivers' host tests): a simulated device's
//!   side of all this: physical memory, a plain-memory BAR, and the
//!   device's side of a split virtqueue.
//!
//! What stays in each driver is what the device type needs: which features,
//! which queues, what a chain carries (virtio-net: a header slot and a client
//! buffer; virtio-blk: request header, data, status byte), and what to do
//! with completions.
//!
//! Nothing here allocates; every size is fixed at compile time or bounded by
//! a const generic. The crate is `no_std` and runs its tests on the host
//! against simulated devices that read and write the real queue memory.
//!
//! # Why not the `virtio-drivers` crate
//!
//! `virtio-drivers` (rcore-os, evaluated at 0.13) was considered for both
//! drivers and is not used. The reasons common to both:
//!
//! 1. **Its PCI transport needs write access to configuration space.**
//!    `PciTransport::new` takes a `PciRoot` and finds each structure's BAR
//!    with `PciRoot::bar_info`, which sizes the BAR by writing all-ones to it
//!    through `ConfigurationAccess::write_word` (and turns memory decoding
//!    off meanwhile). A driver PD has only a read-only snapshot of its
//!    configuration space; the initialiser owns the real one and has
//!    already sized and mapped the BAR. A `ConfigurationAccess` over the
//!    snapshot that faked the writes would silently get the sizes wrong.
//!    (Its `Transport` trait could be implemented anew, but that is most of
//!    [`transport`] anyway.)
//! 2. **Its memory model is Rust references to shared memory.** Buffers are
//!    passed as `&[u8]` / `&mut [u8]` (and virtio-blk's request header and
//!    status as `&mut BlkReq` / `&mut BlkResp`) that the device writes while
//!    they are "borrowed", and translated with `Hal::share`. Our buffers live
//!    in regions shared with a client PD that may write them at any time:
//!    Rust references to such memory are unsound. Translating virtual to
//!    physical addresses per buffer is also needless when the client names
//!    buffers by (region, offset) and the driver knows each region's
//!    physical base; here chains are built from physical addresses
//!    ([`queue::Segment`]). `Hal` is a set of static functions, so the DMA
//!    region would be global state.
//! 3. **Its bookkeeping is not ours.** `VirtQueue::pop_used` wants the same
//!    slices passed back, duplicating what the driver tracks anyway (which
//!    client buffers a chain carried, which request it answers); here each
//!    chain carries a caller-chosen token instead.
//! 4. **Batching.** `VirtQueue::add` publishes `avail.idx` on each call; the
//!    drivers here publish once per wake-up ([`queue::SplitQueue::publish`]).
//!
//! Device-specific reasons are in each driver's crate docs. What is left to
//! write is small: the split virtqueue and the transport registers.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod dma;
pub mod pci;
pub mod queue;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod transport;

/// Device-independent feature bits (§6).
pub mod features {
    /// `VIRTIO_F_RING_EVENT_IDX`: `used_event` / `avail_event` suppression
    /// (§2.7.7, §2.7.10).
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    /// `VIRTIO_F_VERSION_1`: the device complies with virtio 1.x (is not
    /// legacy).
    pub const VERSION_1: u64 = 1 << 32;
    /// `VIRTIO_F_ACCESS_PLATFORM`: the device reaches memory through the
    /// platform's address translation (an IOMMU), so the addresses the
    /// driver gives it are bus addresses, not physical ones (§6). A driver
    /// SHOULD accept it when offered (§6.1), and a device behind an IOMMU
    /// may refuse `FEATURES_OK` without it: QEMU's `iommu_platform=on`
    /// devices do. The transport always accepts it when offered
    /// ([`crate::transport::Transport::negotiate_with`]); the system maps
    /// each device's DMA regions at their physical addresses (IOVA equals
    /// physical address), so the drivers' addresses stay the same.
    pub const ACCESS_PLATFORM: u64 = 1 << 33;

    /// The device lacks required features (the missing bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Missing(pub u64);

    /// The features to accept from those `offered`: every `required` one
    /// (or [`Missing`]), and those of `wanted` the device has. A driver must
    /// not accept a feature the device did not offer (§2.2.1).
    pub const fn select(offered: u64, required: u64, wanted: u64) -> Result<u64, Missing> {
        let missing = required & !offered;
        if missing != 0 {
            return Err(Missing(missing));
        }
        Ok(offered & (required | wanted))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn selects_only_what_is_offered_and_wanted() {
            assert_eq!(
                select(VERSION_1 | RING_EVENT_IDX | 1, VERSION_1, RING_EVENT_IDX),
                Ok(VERSION_1 | RING_EVENT_IDX)
            );
            assert_eq!(select(VERSION_1, VERSION_1, RING_EVENT_IDX), Ok(VERSION_1));
            assert_eq!(select(RING_EVENT_IDX, VERSION_1, RING_EVENT_IDX), Err(Missing(VERSION_1)));
        }
    }
}
