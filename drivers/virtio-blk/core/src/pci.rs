//! Locating the virtio structures of a modern virtio PCI device from its
//! configuration space (virtio 1.1 §4.1.4).
//!
//! Each structure is described by a vendor-specific PCI capability
//! (`cap_vndr` 0x09) in the capability list:
//!
//! | offset | size | field                                      |
//! |--------|------|--------------------------------------------|
//! | 0      | 1    | `cap_vndr` = 0x09                          |
//! | 1      | 1    | `cap_next`                                 |
//! | 2      | 1    | `cap_len`                                  |
//! | 3      | 1    | `cfg_type` (1 common, 2 notify, 3 ISR, 4 device) |
//! | 4      | 1    | `bar`                                      |
//! | 8      | 4    | `offset` within the BAR                    |
//! | 12     | 4    | `length`                                   |
//! | 16     | 4    | `notify_off_multiplier` (notify only)      |
//!
//! The driver must use the first capability of each type it can use
//! (§4.1.4.1: "the driver SHOULD use the first one"); later ones are
//! alternatives.

/// PCI configuration space offsets.
const STATUS: usize = 0x06;
const STATUS_CAPABILITIES: u16 = 1 << 4;
const CAPABILITIES_POINTER: usize = 0x34;
/// Capability id of a vendor-specific capability.
const CAP_ID_VENDOR: u8 = 0x09;

/// virtio structure types (`cfg_type`).
const COMMON_CFG: u8 = 1;
const NOTIFY_CFG: u8 = 2;
const ISR_CFG: u8 = 3;
const DEVICE_CFG: u8 = 4;

/// Sizes the driver relies on, checked against each capability's `length`.
pub const COMMON_CFG_LEN: u32 = 0x38;
const ISR_CFG_LEN: u32 = 1;
const NOTIFY_CFG_LEN: u32 = 2;

/// Most capabilities followed: the list lives in 192 bytes of 4-byte
/// aligned entries, so a longer walk is a loop.
const MAX_CAPABILITIES: usize = 48;

/// Where one virtio structure lives: `length` bytes at `offset` in BAR `bar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Structure {
    pub bar: u8,
    pub offset: u32,
    pub length: u32,
}

/// The virtio structures of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub common: Structure,
    pub notify: Structure,
    /// Queue `q`'s notification address is `notify.offset +
    /// queue_notify_off(q) * notify_off_multiplier` (§4.1.4.4).
    pub notify_off_multiplier: u32,
    pub isr: Structure,
    pub device: Structure,
}

/// Why the configuration space does not describe a usable virtio device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The device has no capability list.
    NoCapabilities,
    /// A capability pointer leads outside the configuration space, or the
    /// list does not end.
    BadCapabilityList,
    /// No usable capability of this `cfg_type`.
    Missing(u8),
}

fn read_u8(config: &[u8], at: usize) -> Option<u8> {
    config.get(at).copied()
}

fn read_u16(config: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(config.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(config: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(config.get(at..at + 4)?.try_into().ok()?))
}

impl Layout {
    /// Walks the capability list of `config`, a copy of the device's
    /// configuration space (at least its first 256 bytes).
    pub fn parse(config: &[u8]) -> Result<Layout, LayoutError> {
        let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
        let mut multiplier = 0;
        let status = read_u16(config, STATUS).ok_or(LayoutError::NoCapabilities)?;
        if status & STATUS_CAPABILITIES == 0 {
            return Err(LayoutError::NoCapabilities);
        }
        // The bottom two bits of a capability pointer are reserved (PCI 3.0 §6.7).
        let mut at = usize::from(read_u8(config, CAPABILITIES_POINTER).ok_or(LayoutError::NoCapabilities)? & !3);
        let mut walked = 0;
        while at != 0 {
            walked += 1;
            if walked > MAX_CAPABILITIES || at < 0x40 {
                return Err(LayoutError::BadCapabilityList);
            }
            let bad = LayoutError::BadCapabilityList;
            let id = read_u8(config, at).ok_or(bad)?;
            let next = read_u8(config, at + 1).ok_or(bad)?;
            if id == CAP_ID_VENDOR {
                let cap_len = read_u8(config, at + 2).ok_or(bad)?;
                let cfg_type = read_u8(config, at + 3).ok_or(bad)?;
                if cap_len >= 16 {
                    let structure = Structure {
                        bar: read_u8(config, at + 4).ok_or(bad)?,
                        offset: read_u32(config, at + 8).ok_or(bad)?,
                        length: read_u32(config, at + 12).ok_or(bad)?,
                    };
                    let first = |slot: &mut Option<Structure>, min_len: u32| {
                        if slot.is_none() && structure.length >= min_len {
                            *slot = Some(structure);
                        }
                    };
                    match cfg_type {
                        COMMON_CFG => first(&mut common, COMMON_CFG_LEN),
                        NOTIFY_CFG if cap_len >= 20 && notify.is_none() && structure.length >= NOTIFY_CFG_LEN => {
                            notify = Some(structure);
                            multiplier = read_u32(config, at + 16).ok_or(bad)?;
                        }
                        ISR_CFG => first(&mut isr, ISR_CFG_LEN),
                        DEVICE_CFG => first(&mut device, 1),
                        _ => {}
                    }
                }
            }
            at = usize::from(next & !3);
        }
        Ok(Layout {
            common: common.ok_or(LayoutError::Missing(COMMON_CFG))?,
            notify: notify.ok_or(LayoutError::Missing(NOTIFY_CFG))?,
            notify_off_multiplier: multiplier,
            isr: isr.ok_or(LayoutError::Missing(ISR_CFG))?,
            device: device.ok_or(LayoutError::Missing(DEVICE_CFG))?,
        })
    }
}
