//! The devices' IOSpaces (Intel VT-d on seL4 5.0): who a device is to the
//! IOMMU, which translation domain it gets, and what the initialiser maps.
//!
//! The rule: a PCI function may reach by DMA exactly the memory regions
//! whose physical addresses its driver is given (the spec's
//! `PciDevice::dma`, planned by the builder), read and write, at I/O
//! virtual addresses equal to their physical addresses, so a driver
//! computes device addresses as it would without an IOMMU. Every other
//! address faults in the IOMMU: the device's write does not land, its read
//! returns nothing, and the debug kernel logs `IOMMU: DMA ... page fault`.
//!
//! How seL4 5.0 does it (`src/arch/x86/object/iospace.c`):
//! - the root task holds the master IOSpace capability (`seL4_CapIOSpace`)
//!   when the kernel found a DMAR table; boot info's `numIOPTLevels` is the
//!   number of IO page-table levels (3 under QEMU: 39-bit addresses), and
//!   0 without an IOMMU;
//! - `CNode_Mint` of the master capability with the data word
//!   [`iospace_cap_data`] gives a device's IOSpace: its PCI request id and
//!   a domain id (1 ..= 2^bits - 1, one per device, see [`domain_id`]);
//! - `X86IOPageTable_Map(iospace, ioaddr)` installs an IO page table at the
//!   first level that is missing on the way to `ioaddr` (the first one a
//!   device gets becomes its root), and `X86Page_MapIO(iospace, rights,
//!   ioaddr)` maps a 4 KiB frame; it fails with `FailedLookup` while a
//!   level is missing, which is when the initialiser adds a table (at
//!   most one per level for one frame: the first frame of a device needs
//!   its root and each level below).
//!
//! Without an IOMMU (no DMAR table, as on QEMU's `pc` machine) nothing is
//! mapped and a device reaches all of memory, as before; the monitor says
//! so at boot.

use crate::pci::Address;

/// The PCI request id (source id) the IOMMU knows a function by:
/// bus in bits 8..16, device in 3..8, function in 0..3.
pub fn request_id(a: Address) -> u16 {
    u16::from(a.bus) << 8 | u16::from(a.device & 0x1f) << 3 | u16::from(a.function & 0x7)
}

/// The data word that mints a device's IOSpace from the master one: the
/// kernel's `io_space_capdata` block (x86_64 `structures.bf`): domain id
/// in bits 16..32, PCI request id in bits 0..16.
pub fn iospace_cap_data(domain: u16, a: Address) -> u64 {
    u64::from(domain) << 16 | u64::from(request_id(a))
}

/// The VT-d domain id of the spec's `index`-th PCI device: `index + 1`.
/// Each device gets its own (the IOTLB is tagged by domain, and two
/// devices sharing one could use each other's cached translations); the
/// kernel refuses 0 and ids past its 16 domain-id bits (QEMU's VT-d has
/// 16), and reserves ids for devices with firmware-reserved (RMRR) memory
/// from 1 up (none under QEMU), so a refused mint is reported, not guessed
/// around.
pub fn domain_id(index: usize) -> Option<u16> {
    u16::try_from(index.checked_add(1)?).ok()
}

/// What the IOMMU's presence means, from boot info's `numIOPTLevels`
/// (a word: 0 without an IOMMU; all ones if the kernel was built without
/// IOMMU support).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// VT-d translates every device's DMA; the number of IO page-table
    /// levels.
    Iommu { levels: u64 },
    /// Devices reach all memory (no DMAR table, or a kernel without
    /// IOMMU support).
    None,
}

impl Platform {
    pub fn from_bootinfo(num_io_pt_levels: u64) -> Platform {
        match num_io_pt_levels {
            // seL4 supports 2 to 6 levels (`vtd_init`); anything else is
            // "no IOMMU" (0) or a kernel built without it (-1).
            levels @ 2..=6 => Platform::Iommu { levels },
            _ => Platform::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_and_cap_data_follow_the_kernel_layout() {
        let a = Address { bus: 0, device: 3, function: 0 };
        assert_eq!(request_id(a), 0x18);
        let b = Address { bus: 2, device: 0x1f, function: 7 };
        assert_eq!(request_id(b), 0x2ff);
        // io_space_capdata: padding 32, domainID 16, PCIDevice 16.
        assert_eq!(iospace_cap_data(1, a), 0x1_0018);
        assert_eq!(iospace_cap_data(0xabcd, b), 0xabcd_02ff);
    }

    #[test]
    fn each_device_gets_its_own_nonzero_domain() {
        assert_eq!(domain_id(0), Some(1));
        assert_eq!(domain_id(1), Some(2));
        assert_eq!(domain_id(0xfffe), Some(0xffff), "the largest 16-bit id");
        assert_eq!(domain_id(0xffff), None, "past 16 bits");
        assert_eq!(domain_id(usize::MAX), None);
    }

    #[test]
    fn platform_from_bootinfo() {
        assert_eq!(Platform::from_bootinfo(3), Platform::Iommu { levels: 3 });
        assert_eq!(Platform::from_bootinfo(0), Platform::None);
        assert_eq!(Platform::from_bootinfo(u64::MAX), Platform::None);
        assert_eq!(Platform::from_bootinfo(7), Platform::None);
    }
}
