//! Feature negotiation (virtio 1.x spec, 2.2 and 5.1.3).
//!
//! The driver accepts only what it implements: the 1.x interface itself,
//! the MAC address in configuration space, event-index suppression, and
//! the offloads of 5.1.6.2 and 5.1.6.4 that `net-protocol` carries:
//! transmit checksum (`CSUM`), IPv4 TCP segmentation (`HOST_TSO4`, which
//! 5.1.3.1 lets the driver accept only with `CSUM`) and receive checksum
//! (`GUEST_CSUM`). No mergeable receive buffers, no receive-side
//! segmentation (`GUEST_TSO*`: received frames stay at most 1514 bytes, so
//! the 1526-byte receive chains suffice), and the control queue only to
//! turn promiscuous mode off (`CTRL_VQ` and `CTRL_RX`, 5.1.6.5.1).

/// `VIRTIO_NET_F_CSUM` (5.1.3): the device completes partial checksums of
/// frames the driver sends.
pub const NET_F_CSUM: u64 = 1 << 0;
/// `VIRTIO_NET_F_GUEST_CSUM` (5.1.3): the driver handles frames with
/// partial checksums, and the device reports checksums it validated.
pub const NET_F_GUEST_CSUM: u64 = 1 << 1;
/// `VIRTIO_NET_F_HOST_TSO4` (5.1.3): the device segments IPv4 TCP; needs
/// `CSUM` (5.1.3.1).
pub const NET_F_HOST_TSO4: u64 = 1 << 11;
/// `VIRTIO_NET_F_CTRL_VQ` (5.1.3): the device has a control virtqueue.
pub const NET_F_CTRL_VQ: u64 = 1 << 17;
/// `VIRTIO_NET_F_CTRL_RX` (5.1.3): the control queue takes receive-mode
/// commands (promiscuous, all-multicast); needs `CTRL_VQ` (5.1.3.1).
pub const NET_F_CTRL_RX: u64 = 1 << 18;
/// `VIRTIO_NET_F_MAC`: the device has a MAC address in its configuration.
pub const NET_F_MAC: u64 = 1 << 5;
/// `VIRTIO_F_RING_EVENT_IDX`: `used_event` / `avail_event` suppression.
pub const RING_F_EVENT_IDX: u64 = lib_virtio::features::RING_EVENT_IDX;
/// `VIRTIO_F_VERSION_1`: the device complies with virtio 1.x.
pub const F_VERSION_1: u64 = lib_virtio::features::VERSION_1;

/// Features the driver cannot work without.
pub const REQUIRED: u64 = F_VERSION_1;
/// Features the driver uses when offered.
pub const OPTIONAL: u64 =
    NET_F_MAC | RING_F_EVENT_IDX | NET_F_CSUM | NET_F_GUEST_CSUM | NET_F_HOST_TSO4 | NET_F_CTRL_VQ | NET_F_CTRL_RX;

pub use lib_virtio::features::Missing;

/// The features to accept from those `offered`: every required one (or
/// [`Missing`]), and the optional ones the device has (what
/// `Transport::negotiate_with(REQUIRED, wanted)` accepts), without
/// `HOST_TSO4` if `CSUM` is not offered (5.1.3.1).
pub fn negotiate(offered: u64) -> Result<u64, Missing> {
    lib_virtio::features::select(offered, REQUIRED, wanted(offered))
}

/// The optional features to accept from those `offered`.
pub const fn wanted(offered: u64) -> u64 {
    OPTIONAL & offerable(offered)
}

/// The optional features the driver may accept from `offered`: those it
/// knows, less any whose prerequisite is not offered (5.1.3.1:
/// `HOST_TSO4` needs `CSUM`, `CTRL_RX` needs `CTRL_VQ`).
pub const fn offerable(offered: u64) -> u64 {
    let tso = if offered & NET_F_CSUM == 0 { !NET_F_HOST_TSO4 } else { !0 };
    let ctrl_rx = if offered & NET_F_CTRL_VQ == 0 { !NET_F_CTRL_RX } else { !0 };
    tso & ctrl_rx
}

/// The `net-protocol` offload bits of the `accepted` features.
pub const fn offloads(accepted: u64) -> u64 {
    use lib_net_protocol::{OFFLOAD_RX_CSUM, OFFLOAD_TSO4, OFFLOAD_TX_CSUM};
    let csum = accepted & NET_F_CSUM != 0;
    (if csum { OFFLOAD_TX_CSUM } else { 0 })
        | (if csum && accepted & NET_F_HOST_TSO4 != 0 { OFFLOAD_TSO4 } else { 0 })
        | if accepted & NET_F_GUEST_CSUM != 0 { OFFLOAD_RX_CSUM } else { 0 }
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
        let offload = NET_F_CSUM | NET_F_GUEST_CSUM | NET_F_HOST_TSO4;
        assert_eq!(accepted, F_VERSION_1 | NET_F_MAC | RING_F_EVENT_IDX | offload);
        assert_eq!(offloads(accepted), lib_net_protocol::OFFLOAD_ALL);
        assert_eq!(negotiate(F_VERSION_1), Ok(F_VERSION_1));
        assert_eq!(offloads(F_VERSION_1), 0);
        // What QEMU 7.2 offered on a TAP device (the driver's log line):
        // the control queue with receive-mode commands too.
        let tap: u64 = 0x101_30bf_ffa7;
        let control = NET_F_CTRL_VQ | NET_F_CTRL_RX;
        assert_eq!(negotiate(tap).unwrap(), F_VERSION_1 | NET_F_MAC | RING_F_EVENT_IDX | offload | control);
    }

    #[test]
    fn offloads_without_the_features() {
        use lib_net_protocol::{OFFLOAD_RX_CSUM, OFFLOAD_TX_CSUM};
        // Without CSUM, HOST_TSO4 is not accepted even if offered (5.1.3.1).
        let offered = F_VERSION_1 | NET_F_HOST_TSO4 | NET_F_GUEST_CSUM;
        let accepted = negotiate(offered).unwrap();
        assert_eq!(accepted, F_VERSION_1 | NET_F_GUEST_CSUM);
        assert_eq!(offloads(accepted), OFFLOAD_RX_CSUM);
        // CSUM alone: checksums, no segmentation.
        let accepted = negotiate(F_VERSION_1 | NET_F_CSUM).unwrap();
        assert_eq!(accepted, F_VERSION_1 | NET_F_CSUM);
        assert_eq!(offloads(accepted), OFFLOAD_TX_CSUM);
        // Offloads the driver does not do (GUEST_TSO4, MRG_RXBUF, MQ) are never accepted.
        let others = (1 << 7) | (1 << 15) | (1 << 22);
        assert_eq!(negotiate(F_VERSION_1 | others), Ok(F_VERSION_1));
        // CTRL_RX needs CTRL_VQ (5.1.3.1).
        assert_eq!(negotiate(F_VERSION_1 | NET_F_CTRL_RX), Ok(F_VERSION_1));
    }

    #[test]
    fn refuses_a_legacy_device() {
        assert_eq!(negotiate(NET_F_MAC | RING_F_EVENT_IDX), Err(Missing(F_VERSION_1)));
    }
}
