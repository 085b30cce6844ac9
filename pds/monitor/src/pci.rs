//! Finding the PCI functions the spec names, through PCI configuration
//! mechanism #1 (IO ports 0xCF8/0xCFC), which only the root task may use.
//!
//! Firmware assigns BAR addresses and interrupt lines at boot, so the builder
//! cannot know them: it names devices by vendor, device and instance, and the
//! initialiser resolves them here, sizes the BARs, and turns on memory
//! decoding and bus mastering before handing the device to its driver PD.
//! What the registers mean is decided in `pds_monitor_core::pci`; this
//! module does the port I/O.

use crate::fail;
use alloc::vec::Vec;
use pds_boot_spec::PciDevice;
use pds_monitor_core::pci::{
    bar_base_and_size, bar_fits, config_address, driver_command, find, ids, is_absent, secondary_bus, sizing_command,
    BarKind, Header, BAR0, COMMAND, HEADER_TYPE, INTERRUPT_LINE, SECONDARY_BUS,
};
use sel4::{init_caps, X86IoPort};

pub use pds_monitor_core::pci::Address;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

fn port() -> X86IoPort {
    X86IoPort(init_caps::IO_PORT)
}

/// Points CONFIG_ADDRESS at a register of a function. (seL4 5.0's XML gives
/// `In32` a 16-bit port and `Out32` a word-sized one.)
fn select(a: Address, offset: u8) {
    let addr = config_address(a, offset);
    port()
        .out32(CONFIG_ADDRESS.into(), addr.into())
        .unwrap_or_else(|e| fail(format_args!("PCI config address: {e:?}")));
}

pub fn read32(a: Address, offset: u8) -> u32 {
    select(a, offset);
    port().in32(CONFIG_DATA).unwrap_or_else(|e| fail(format_args!("PCI config read: {e:?}")))
}

pub fn write32(a: Address, offset: u8, value: u32) {
    select(a, offset);
    port().out32(CONFIG_DATA.into(), value.into()).unwrap_or_else(|e| fail(format_args!("PCI config write: {e:?}")));
}

/// Every present function, in bus order, following PCI-to-PCI bridges.
pub fn enumerate() -> Vec<(Address, u16, u16)> {
    let mut found = Vec::new();
    let mut buses = Vec::from([0u8]);
    while let Some(bus) = buses.pop() {
        for device in 0..32 {
            for function in 0..8 {
                let a = Address { bus, device, function };
                let id = read32(a, 0);
                if is_absent(id) {
                    if function == 0 {
                        break;
                    }
                    continue;
                }
                let (vendor, device) = ids(id);
                found.push((a, vendor, device));
                let header = Header::from_register(read32(a, HEADER_TYPE));
                if header.bridge {
                    let secondary = secondary_bus(read32(a, SECONDARY_BUS));
                    if secondary > bus {
                        buses.push(secondary);
                    }
                }
                if function == 0 && !header.multi_function {
                    break; // single-function device
                }
            }
        }
    }
    found.sort_by_key(|(a, _, _)| (a.bus, a.device, a.function));
    found
}

/// A resolved device: where it is, where its BARs are, its interrupt line.
pub struct Resolved {
    pub address: Address,
    /// (BAR index, base address, size) for the BARs the spec uses.
    pub bars: Vec<(u8, u64, u64)>,
    pub interrupt_line: u8,
}

impl Resolved {
    pub fn bar_base(&self, bar: u8) -> u64 {
        self.bars.iter().find(|b| b.0 == bar).map_or(0, |b| b.1)
    }
}

/// Base and size of a memory BAR. Sizing writes all ones and reads back
/// which address bits stick; memory decoding must be off meanwhile.
fn size_bar(a: Address, index: u8) -> (u64, u64) {
    let off = BAR0 + 4 * index;
    let low = read32(a, off);
    let kind = BarKind::from_register(low);
    if kind == BarKind::Io {
        fail(format_args!("PCI {a} BAR {index} is an IO BAR; only memory BARs can be mapped"));
    }
    write32(a, off, u32::MAX);
    let mask_low = read32(a, off);
    write32(a, off, low);
    let (high, mask_high) = if kind == BarKind::Memory64 {
        let high = read32(a, off + 4);
        write32(a, off + 4, u32::MAX);
        let mask_high = read32(a, off + 4);
        write32(a, off + 4, high);
        (Some(high), Some(mask_high))
    } else {
        (None, None)
    };
    bar_base_and_size(low, high, mask_low, mask_high)
}

/// Finds every device of the spec and prepares it for its driver.
pub fn resolve(devices: &[PciDevice]) -> Vec<Resolved> {
    if devices.is_empty() {
        return Vec::new();
    }
    let present = enumerate();
    devices
        .iter()
        .map(|want| {
            let Some(address) = find(&present, want.vendor, want.device, want.instance) else {
                fail(format_args!(
                    "PCI device {:04x}:{:04x} instance {} for PD '{}' is not present (is the QEMU -device missing?)",
                    want.vendor, want.device, want.instance, want.owner
                ));
            };
            let command = read32(address, COMMAND) & 0xffff;
            write32(address, COMMAND, sizing_command(command));
            let bars = want
                .bars
                .iter()
                .map(|&(index, need)| {
                    let (base, size) = size_bar(address, index);
                    if !bar_fits(base, size, need) {
                        fail(format_args!(
                            "PCI {address} BAR {index} is {size:#x} bytes at {base:#x}; PD '{}' maps {need:#x}",
                            want.owner
                        ));
                    }
                    (index, base, size)
                })
                .collect();
            write32(address, COMMAND, driver_command(command));
            let interrupt_line = read32(address, INTERRUPT_LINE) as u8;
            crate::log!(
                "PCI {address} {:04x}:{:04x} -> PD '{}' (interrupt line {interrupt_line})",
                want.vendor,
                want.device,
                want.owner
            );
            Resolved { address, bars, interrupt_line }
        })
        .collect()
}

/// The first 256 bytes of a function's configuration space.
pub fn snapshot(a: Address, out: &mut [u8]) {
    for (i, chunk) in out.chunks_exact_mut(4).take(64).enumerate() {
        chunk.copy_from_slice(&read32(a, (i * 4) as u8).to_le_bytes());
    }
}
