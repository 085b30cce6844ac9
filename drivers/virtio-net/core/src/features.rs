//! Feature negotiation (virtio 1.x spec, 2.2 and 5.1.3).
//!
//! The driver accepts only what it implements: the 1.x interface itself,
//! the MAC address in configuration space, and event-index suppression.
//! No checksum or segmentation offload, no mergeable receive buffers, no
//! control queue: frames are plain Ethernet frames of at most 1514 bytes.

/// `VIRTIO_NET_F_MAC`: the device has a MAC address in its configuration.
pub const NET_F_MAC: u64 = 1 << 5;
/// `VIRTIO_F_RING_EVENT_IDX`: `used_event` / `avail_event` suppression.
pub const RING_F_EVENT_IDX: u64 = lib_virtio::features::RING_EVENT_IDX;
/// `VIRTIO_F_VERSION_1`: the device complies with virtio 1.x.
pub const F_VERSION_1: u64 = lib_virtio::features::VERSION_1;

/// Features the driver cannot work without.
pub const REQUIRED: u64 = F_VERSION_1;
/// Features the driver uses when offered.
pub const OPTIONAL: u64 = NET_F_MAC | RING_F_EVENT_IDX;

pub use lib_virtio::features::Missing;

/// The features to accept from those `offered`: every required one (or
/// [`Missing`]), and the optional ones the device has (what
/// `Transport::negotiate(REQUIRED, OPTIONAL)` accepts).
pub fn negotiate(offered: u64) -> Result<u64, Missing> {
    lib_virtio::features::select(offered, REQUIRED, OPTIONAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_what_is_offered_and_known() {
        // What QEMU 7.2's virtio-net-pci offers with default settings
        // (checksums, GSO, mergeable buffers, control queue, ...).
        let qemu: u64 = 0x0000_0001_7959_ffe7 | RING_F_EVENT_IDX;
        let accepted = negotiate(qemu).unwrap();
        assert_eq!(accepted, F_VERSION_1 | NET_F_MAC | RING_F_EVENT_IDX);
        assert_eq!(negotiate(F_VERSION_1), Ok(F_VERSION_1));
    }

    #[test]
    fn refuses_a_legacy_device() {
        assert_eq!(negotiate(NET_F_MAC | RING_F_EVENT_IDX), Err(Missing(F_VERSION_1)));
    }
}
