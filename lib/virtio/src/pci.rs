//! Finding the virtio structures of a modern virtio PCI device (virtio 1.x
//! §4.1.4) in a **read-only snapshot** of its configuration space.
//!
//! A virtio 1.x device describes where its register blocks live with
//! vendor-specific capabilities (`cap_vndr` 0x09) in the PCI capability
//! list, each a `struct virtio_pci_cap`:
//!
//! | offset | size | field                                            |
//! |--------|------|--------------------------------------------------|
//! | 0      | 1    | `cap_vndr` = 0x09                                |
//! | 1      | 1    | `cap_next`: next capability, 0 at the end        |
//! | 2      | 1    | `cap_len`: length of this capability             |
//! | 3      | 1    | `cfg_type` (1 common, 2 notify, 3 ISR, 4 device) |
//! | 4      | 1    | `bar` holding the structure                      |
//! | 8      | 4    | `offset` of the structure within the BAR         |
//! | 12     | 4    | `length` of the structure                        |
//! | 16     | 4    | `notify_off_multiplier` (notify capability only) |
//!
//! The driver uses the first capability of each type it can use (§4.1.4.1:
//! "the driver SHOULD use the first instance of each virtio structure type
//! it can support"): one too short for what the driver touches is skipped,
//! later ones are alternatives.
//!
//! Only reads are needed: the initialiser already enabled memory decoding
//! and bus mastering, and mapped the BAR.

/// Offset of the status register; its capabilities-list bit.
const PCI_STATUS: usize = 0x06;
const PCI_STATUS_CAP_LIST: u16 = 1 << 4;
/// Offset of the capabilities pointer.
const PCI_CAPABILITY_LIST: usize = 0x34;
/// Capabilities live after the 64-byte header.
const PCI_HEADER_END: usize = 0x40;
/// `cap_vndr` of a vendor-specific capability.
const PCI_CAP_ID_VNDR: u8 = 0x09;
/// At most 48 capabilities (4-byte aligned, at least 4 bytes each) fit in
/// the 192 bytes after the header: a longer walk means a loop in the list.
const MAX_CAPABILITIES: usize = 48;

/// Bytes of `struct virtio_pci_common_cfg` the transport touches.
pub const COMMON_CFG_LEN: u32 = 0x38;

/// virtio structure types (`cfg_type`, `VIRTIO_PCI_CAP_*_CFG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CfgType {
    Common = 1,
    Notify = 2,
    Isr = 3,
    Device = 4,
}

impl CfgType {
    /// Fewest bytes of the structure the transport can use.
    const fn min_len(self) -> u32 {
        match self {
            CfgType::Common => COMMON_CFG_LEN,
            // One 16-bit notification register.
            CfgType::Notify => 2,
            CfgType::Isr | CfgType::Device => 1,
        }
    }

    fn from_u8(value: u8) -> Option<CfgType> {
        Some(match value {
            1 => CfgType::Common,
            2 => CfgType::Notify,
            3 => CfgType::Isr,
            4 => CfgType::Device,
            _ => return None,
        })
    }
}

/// Read access to (a snapshot of) a function's configuration space.
pub trait ConfigSpace {
    /// The byte at `offset`, or `None` if out of the snapshot.
    fn read_u8(&self, offset: usize) -> Option<u8>;

    /// A little-endian 16-bit field.
    fn read_u16(&self, offset: usize) -> Option<u16> {
        Some(u16::from_le_bytes([self.read_u8(offset)?, self.read_u8(offset + 1)?]))
    }

    /// A little-endian 32-bit field.
    fn read_u32(&self, offset: usize) -> Option<u32> {
        Some(u32::from(self.read_u16(offset)?) | u32::from(self.read_u16(offset + 2)?) << 16)
    }
}

impl ConfigSpace for [u8] {
    fn read_u8(&self, offset: usize) -> Option<u8> {
        self.get(offset).copied()
    }
}

/// Where one virtio structure lives: `length` bytes at `offset` in BAR `bar`.
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
    /// Queue `q`'s notification register is at `notify.offset +
    /// queue_notify_off(q) * notify_off_multiplier` (§4.1.4.4).
    pub notify_off_multiplier: u32,
    pub isr: BarRange,
    /// The device-specific configuration; not every device type has one.
    pub device: Option<BarRange>,
}

/// Why the configuration space does not describe a usable virtio device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsError {
    /// The function has no capability list.
    NoCapabilityList,
    /// The list leaves the snapshot, points into the header, or loops.
    BrokenList,
    /// No usable capability of this type (common, notify and ISR are
    /// required).
    Missing(CfgType),
}

impl VirtioCaps {
    /// Walks the capability list of `config` (at least its first 256 bytes)
    /// and returns the first usable capability of each virtio type.
    pub fn find(config: &(impl ConfigSpace + ?Sized)) -> Result<VirtioCaps, CapsError> {
        let broken = CapsError::BrokenList;
        let status = config.read_u16(PCI_STATUS).ok_or(broken)?;
        if status & PCI_STATUS_CAP_LIST == 0 {
            return Err(CapsError::NoCapabilityList);
        }
        let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
        let mut multiplier = 0;
        // The low two bits of capability pointers are reserved (PCI 3.0 §6.7).
        let mut at = usize::from(config.read_u8(PCI_CAPABILITY_LIST).ok_or(broken)? & !3);
        let mut walked = 0;
        while at != 0 {
            walked += 1;
            if walked > MAX_CAPABILITIES || at < PCI_HEADER_END {
                return Err(broken);
            }
            let read = |off: usize| config.read_u8(at + off).ok_or(broken);
            let (id, next, cap_len, cfg_type) = (read(0)?, read(1)?, read(2)?, read(3)?);
            if id == PCI_CAP_ID_VNDR && cap_len >= 16 {
                let range = BarRange {
                    bar: read(4)?,
                    offset: config.read_u32(at + 8).ok_or(broken)?,
                    length: config.read_u32(at + 12).ok_or(broken)?,
                };
                let usable = |ty: CfgType| range.length >= ty.min_len();
                match CfgType::from_u8(cfg_type) {
                    Some(ty @ CfgType::Common) if common.is_none() && usable(ty) => common = Some(range),
                    Some(ty @ CfgType::Notify) if notify.is_none() && usable(ty) && cap_len >= 20 => {
                        notify = Some(range);
                        multiplier = config.read_u32(at + 16).ok_or(broken)?;
                    }
                    Some(ty @ CfgType::Isr) if isr.is_none() && usable(ty) => isr = Some(range),
                    Some(ty @ CfgType::Device) if device.is_none() && usable(ty) => device = Some(range),
                    _ => {}
                }
            }
            at = usize::from(next & !3);
        }
        Ok(VirtioCaps {
            common: common.ok_or(CapsError::Missing(CfgType::Common))?,
            notify: notify.ok_or(CapsError::Missing(CfgType::Notify))?,
            notify_off_multiplier: multiplier,
            isr: isr.ok_or(CapsError::Missing(CfgType::Isr))?,
            device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Writes a virtio capability in BAR 4 at `at`.
    fn cap(c: &mut [u8], at: usize, next: u8, len: u8, ty: u8, offset: u32, length: u32) {
        c[at..at + 4].copy_from_slice(&[PCI_CAP_ID_VNDR, next, len, ty]);
        c[at + 4] = 4;
        c[at + 8..at + 12].copy_from_slice(&offset.to_le_bytes());
        c[at + 12..at + 16].copy_from_slice(&length.to_le_bytes());
    }

    /// A configuration space laid out like QEMU's `virtio-net-pci,disable-legacy=on`:
    /// MSI-X first, then the virtio capabilities in BAR 4, then one the
    /// driver does not use.
    fn qemu_virtio_net() -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0..4].copy_from_slice(&[0xf4, 0x1a, 0x41, 0x10]);
        c[6] = 0x10; // capability list
        c[0x34] = 0xa0;
        c[0xa0..0xa4].copy_from_slice(&[0x11, 0x40, 0x02, 0x00]); // MSI-X, not vendor-specific
        cap(&mut c, 0x40, 0x54, 0x10, 1, 0x0000, 0x1000); // common
        cap(&mut c, 0x54, 0x64, 0x10, 3, 0x1000, 0x1000); // ISR
        cap(&mut c, 0x64, 0x74, 0x10, 4, 0x2000, 0x1000); // device
        cap(&mut c, 0x74, 0x88, 0x14, 2, 0x3000, 0x1000); // notify
        cap(&mut c, 0x88, 0x00, 0x14, 5, 0, 0); // PCI configuration access: ignored
        c[0x74 + 16..0x74 + 20].copy_from_slice(&4u32.to_le_bytes()); // notify_off_multiplier
        c
    }

    /// A configuration space like QEMU's virtio-blk-pci (modern): an MSI-X
    /// capability, then the five virtio capabilities in BAR 4, in reverse.
    fn qemu_virtio_blk() -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0..4].copy_from_slice(&[0xf4, 0x1a, 0x42, 0x10]);
        c[6] = 0x10;
        c[0x34] = 0x98;
        c[0x98] = 0x11; // MSI-X at 0x98 -> 0x84
        c[0x99] = 0x84;
        cap(&mut c, 0x84, 0x70, 0x14, 5, 0, 0); // PCI cfg access: ignored
        cap(&mut c, 0x70, 0x60, 0x14, 2, 0x3000, 0x1000); // notify
        cap(&mut c, 0x60, 0x50, 0x10, 4, 0x2000, 0x1000); // device
        cap(&mut c, 0x50, 0x40, 0x10, 3, 0x1000, 0x1000); // ISR
        cap(&mut c, 0x40, 0x00, 0x10, 1, 0x0000, 0x1000); // common
        c[0x70 + 16..0x70 + 20].copy_from_slice(&4u32.to_le_bytes());
        c
    }

    #[test]
    fn finds_qemu_layouts() {
        let s = |offset| BarRange { bar: 4, offset, length: 0x1000 };
        let expected = VirtioCaps {
            common: s(0),
            notify: s(0x3000),
            notify_off_multiplier: 4,
            isr: s(0x1000),
            device: Some(s(0x2000)),
        };
        assert_eq!(VirtioCaps::find(qemu_virtio_net().as_slice()), Ok(expected));
        assert_eq!(VirtioCaps::find(qemu_virtio_blk().as_slice()), Ok(expected));
        assert!(expected.notify.within(4, 0x4000));
        assert!(!expected.notify.within(4, 0x3fff));
        assert!(!expected.notify.within(2, 0x4000));
    }

    #[test]
    fn broken_lists_are_refused() {
        let mut c = qemu_virtio_net();
        c[0x89] = 0x40; // loop back to the common capability
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::BrokenList));
        let mut c = qemu_virtio_blk();
        c[0x41] = 0x98; // common -> back to MSI-X: a loop
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::BrokenList));
        let mut c = qemu_virtio_net();
        c[0x41] = 0x10; // into the header
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::BrokenList));
        let mut c = qemu_virtio_net();
        c[6] = 0;
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::NoCapabilityList));
        assert_eq!(VirtioCaps::find(&qemu_virtio_net()[..0x80]), Err(CapsError::BrokenList));
        assert_eq!(VirtioCaps::find(&qemu_virtio_blk()[..0x20]), Err(CapsError::BrokenList));
    }

    #[test]
    fn missing_structures_are_named() {
        let mut c = qemu_virtio_net();
        c[0x41] = 0; // list ends after the common capability
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::Missing(CfgType::Notify)));
        let mut c = qemu_virtio_blk();
        c[0x34] = 0x50; // starts at ISR, ends after it
        c[0x51] = 0;
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::Missing(CfgType::Common)));
        let mut c = qemu_virtio_blk();
        c[0x61] = 0x40; // skips the ISR capability
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::Missing(CfgType::Isr)));
        let mut c = qemu_virtio_net();
        c[0x55] = 0x74; // skips the device capability: optional
        assert_eq!(VirtioCaps::find(c.as_slice()).unwrap().device, None);
    }

    #[test]
    fn too_short_structures_are_skipped_for_later_ones() {
        let mut c = qemu_virtio_net();
        c[0x40 + 12..0x40 + 16].copy_from_slice(&0x20u32.to_le_bytes()); // common shorter than 0x38
        c[0x89] = 0xb0;
        cap(&mut c, 0xb0, 0x00, 0x10, 1, 0x8000, 0x38); // a second, usable one
        assert_eq!(VirtioCaps::find(c.as_slice()).unwrap().common, BarRange { bar: 4, offset: 0x8000, length: 0x38 });
        let mut c = qemu_virtio_net();
        c[0x76] = 0x10; // notify capability without its multiplier
        assert_eq!(VirtioCaps::find(c.as_slice()), Err(CapsError::Missing(CfgType::Notify)));
    }
}
