//! pci-probe: checks what the initialiser grants a PCI driver: the
//! configuration space snapshot (identity, capability list) and a BAR mapped
//! uncached, through which it reads the virtio common configuration.
#![no_std]
#![no_main]

use pds_runtime::{log, Handler, MemoryRegion};

pds_runtime::setvar!(pci_config);
pds_runtime::setvar!(virtio_bar);

const BAR_SIZE: usize = 0x4000;
/// virtio 1.x vendor-specific capability types (virtio spec 4.1.4).
const VIRTIO_PCI_CAP_COMMON_CFG: u8 = 1;
/// `num_queues` in the common configuration structure.
const COMMON_NUM_QUEUES: usize = 0x12;

struct Probe;

impl Handler for Probe {
    fn init() -> Self {
        // SAFETY: the description maps the 4 KiB snapshot and 16 KiB of BAR 4 there.
        let (config, bar) =
            unsafe { (MemoryRegion::from_var(&pci_config, 0x1000), MemoryRegion::from_var(&virtio_bar, BAR_SIZE)) };
        let (Some(config), Some(bar)) = (config, bar) else {
            log!("pci_config or virtio_bar not set");
            return Probe;
        };
        let vendor = config.read::<u16>(0).unwrap_or(0);
        let device = config.read::<u16>(2).unwrap_or(0);
        log!("config space: vendor {vendor:#06x} device {device:#06x}");
        // Walk the capability list for the virtio common configuration.
        let mut ptr = usize::from(config.read::<u8>(0x34).unwrap_or(0));
        let mut hops = 0;
        while ptr != 0 && hops < 48 {
            let id = config.read::<u8>(ptr).unwrap_or(0);
            let next = usize::from(config.read::<u8>(ptr + 1).unwrap_or(0));
            if id == 0x09 && config.read::<u8>(ptr + 3) == Some(VIRTIO_PCI_CAP_COMMON_CFG) {
                let bar_index = config.read::<u8>(ptr + 4).unwrap_or(0);
                let offset = config.read::<u32>(ptr + 8).unwrap_or(0) as usize;
                let queues = bar.read::<u16>(offset + COMMON_NUM_QUEUES);
                log!("virtio common config in BAR {bar_index} at {offset:#x}: num_queues {}", queues.unwrap_or(0));
            }
            ptr = next;
            hops += 1;
        }
        Probe
    }
}

pds_runtime::protection_domain!(Probe);
