//! Finding the virtio structures of a modern virtio PCI device (virtio 1.x
//! spec, 4.1.4) in a **read-only snapshot** of its configuration space.
//!
//! A virtio 1.x device describes where its register blocks live with
//! vendor-specific capabilities (`cap_vndr` = 0x09) in the PCI capability
//! list, each `struct virtio_pci_cap`:
//!
//! | offset | field      |                                    |
//! |--------|------------|------------------------------------|
//! | 0      | `cap_vndr` | 0x09                               |
//! | 1      | `cap_next` | next capability, 0 at the end       |
//! | 2      | `cap_len`  | length of this capability           |
//! | 3      | `cfg_type` | common 1, notify 2, ISR 3, device 4 |
//! | 4      | `bar`      | BAR holding the structure           |
//! | 8      | `offset`   | offset of the structure in the BAR  |
//! | 12     | `length`   | length of the structure             |
//! | 16     | `notify_off_multiplier` (notify capability only) |
//!
//! Only reads are needed: the initialiser already enabled memory decoding
//! and bus mastering, and mapped the BAR.

/// `cap_vndr` of a vendor-specific capability.
const PCI_CAP_ID_VNDR: u8 = 0x09;
/// Capabilities-list bit in the status register (offset 6).
const PCI_STATUS_CAP_LIST: u16 = 1 << 4;
/// Offset of the capabilities pointer.
const PCI_CAPABILITY_LIST: usize = 0x34;
/// `VIRTIO_PCI_CAP_*_CFG`.
const CAP_COMMON_CFG: u8 = 1;
const CAP_NOTIFY_CFG: u8 = 2;
const CAP_ISR_CFG: u8 = 3;
const CAP_DEVICE_CFG: u8 = 4;
/// At most 48 capabilities fit in the 192 bytes after the header: a longer
/// walk means a loop in the list.
const MAX_CAPABILITIES: usize = 48;

/// Read access to (a snapshot of) a function's configuration space.
pub trait ConfigSpace {
    /// The byte at `offset`, or `None` if out of the snapshot.
    fn read_u8(&self, offset: usize) -> Option<u8>;

    fn read_u16(&self, offset: usize) -> Option<u16> {
        Some(u16::from_le_bytes([self.read_u8(offset)?, self.read_u8(offset + 1)?]))
    }

    fn read_u32(&self, offset: usize) -> Option<u32> {
        Some(u32::from(self.read_u16(offset)?) | u32::from(self.read_u16(offset + 2)?) << 16)
    }
}

impl ConfigSpace for [u8] {
    fn read_u8(&self, offset: usize) -> Option<u8> {
        self.get(offset).copied()
    }
}

/// A structure inside a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarRange {
    pub bar: u8,
    pub offset: u32,
    pub length: u32,
}

impl BarRange {
    /// Whether the structure lies in the first `mapped` bytes of BAR `bar`.
    pub fn within(&self, bar: u8, mapped: usize) -> bool {
        self.bar == bar && u64::from(self.offset) + u64::from(self.length) <= mapped as u64
    }
}

/// Where a device's virtio structures are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioCaps {
    pub common: BarRange,
    pub notify: BarRange,
    /// Queue `q`'s notify register is at `notify.offset + queue_notify_off(q) * notify_off_multiplier`.
    pub notify_off_multiplier: u32,
    pub isr: BarRange,
    pub device: Option<BarRange>,
}

/// Why the capabilities could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsError {
    /// The function has no capability list.
    NoCapabilityList,
    /// The list leaves the snapshot or loops.
    BrokenList,
    /// A required structure (common, notify or ISR) is missing.
    Missing(&'static str),
}

/// Walks the capability list and returns the first capability of each
/// virtio type (4.1.4: "the driver SHOULD use the first instance of each
/// virtio structure type it can support").
pub fn find_virtio_caps(config: &(impl ConfigSpace + ?Sized)) -> Result<VirtioCaps, CapsError> {
    let status = config.read_u16(6).ok_or(CapsError::BrokenList)?;
    if status & PCI_STATUS_CAP_LIST == 0 {
        return Err(CapsError::NoCapabilityList);
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut multiplier = 0;
    // The low two bits of capability pointers are reserved (PCI 3.0, 6.7).
    let mut ptr = usize::from(config.read_u8(PCI_CAPABILITY_LIST).ok_or(CapsError::BrokenList)? & !3);
    let mut seen = 0;
    while ptr != 0 {
        seen += 1;
        if seen > MAX_CAPABILITIES {
            return Err(CapsError::BrokenList);
        }
        let read = |off: usize| config.read_u8(ptr + off).ok_or(CapsError::BrokenList);
        let (id, next, len, cfg_type) = (read(0)?, read(1)?, read(2)?, read(3)?);
        if id == PCI_CAP_ID_VNDR && len >= 16 {
            let range = BarRange {
                bar: read(4)?,
                offset: config.read_u32(ptr + 8).ok_or(CapsError::BrokenList)?,
                length: config.read_u32(ptr + 12).ok_or(CapsError::BrokenList)?,
            };
            match cfg_type {
                CAP_COMMON_CFG if common.is_none() => common = Some(range),
                CAP_NOTIFY_CFG if notify.is_none() && len >= 20 => {
                    notify = Some(range);
                    multiplier = config.read_u32(ptr + 16).ok_or(CapsError::BrokenList)?;
                }
                CAP_ISR_CFG if isr.is_none() => isr = Some(range),
                CAP_DEVICE_CFG if device.is_none() => device = Some(range),
                _ => {}
            }
        }
        ptr = usize::from(next & !3);
    }
    Ok(VirtioCaps {
        common: common.ok_or(CapsError::Missing("common configuration"))?,
        notify: notify.ok_or(CapsError::Missing("notification"))?,
        notify_off_multiplier: multiplier,
        isr: isr.ok_or(CapsError::Missing("ISR status"))?,
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration space laid out like QEMU's `virtio-net-pci,disable-legacy=on`:
    /// MSI-X first, then the virtio capabilities in BAR 4, then one the
    /// driver does not use.
    fn qemu_virtio_net() -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0..4].copy_from_slice(&[0xf4, 0x1a, 0x41, 0x10]);
        c[6] = 0x10; // capability list
        c[0x34] = 0xa0;
        c[0xa0..0xa4].copy_from_slice(&[0x11, 0x40, 0x02, 0x00]); // MSI-X, not vendor-specific
        let caps: [(usize, u8, u8, u8, u32); 5] = [
            (0x40, 0x54, 0x10, 1, 0x0000), // common
            (0x54, 0x64, 0x10, 3, 0x1000), // ISR
            (0x64, 0x74, 0x10, 4, 0x2000), // device
            (0x74, 0x88, 0x14, 2, 0x3000), // notify
            (0x88, 0x00, 0x14, 5, 0),      // PCI configuration access: ignored
        ];
        for (at, next, len, ty, off) in caps {
            c[at..at + 4].copy_from_slice(&[0x09, next, len, ty]);
            c[at + 4] = 4;
            c[at + 8..at + 12].copy_from_slice(&off.to_le_bytes());
            c[at + 12..at + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        }
        c[0x74 + 16..0x74 + 20].copy_from_slice(&4u32.to_le_bytes()); // notify_off_multiplier
        c
    }

    #[test]
    fn finds_qemu_layout() {
        let caps = find_virtio_caps(qemu_virtio_net().as_slice()).unwrap();
        assert_eq!(caps.common, BarRange { bar: 4, offset: 0, length: 0x1000 });
        assert_eq!(caps.isr, BarRange { bar: 4, offset: 0x1000, length: 0x1000 });
        assert_eq!(caps.device, Some(BarRange { bar: 4, offset: 0x2000, length: 0x1000 }));
        assert_eq!(caps.notify, BarRange { bar: 4, offset: 0x3000, length: 0x1000 });
        assert_eq!(caps.notify_off_multiplier, 4);
        assert!(caps.notify.within(4, 0x4000));
        assert!(!caps.notify.within(4, 0x3fff));
    }

    #[test]
    fn broken_lists_are_refused() {
        let mut c = qemu_virtio_net();
        c[0x89] = 0x40; // loop back to the common capability
        assert_eq!(find_virtio_caps(c.as_slice()), Err(CapsError::BrokenList));
        let mut c = qemu_virtio_net();
        c[0x41] = 0; // list ends after the common capability
        assert_eq!(find_virtio_caps(c.as_slice()), Err(CapsError::Missing("notification")));
        let mut c = qemu_virtio_net();
        c[6] = 0;
        assert_eq!(find_virtio_caps(c.as_slice()), Err(CapsError::NoCapabilityList));
        assert_eq!(find_virtio_caps(&qemu_virtio_net()[..0x80]), Err(CapsError::BrokenList));
    }
}
