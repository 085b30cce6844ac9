//! Finding the PCI functions the spec names, through PCI configuration
//! mechanism #1 (IO ports 0xCF8/0xCFC), which only the root task may use.
//!
//! Firmware assigns BAR addresses and interrupt lines at boot, so the builder
//! cannot know them: it names devices by vendor, device and instance, and the
//! initialiser resolves them here, sizes the BARs, and turns on memory
//! decoding and bus mastering before handing the device to its driver PD.

use crate::fail;
use alloc::vec::Vec;
use pds_boot_spec::PciDevice;
use sel4::{init_caps, X86IoPort};

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

const COMMAND: u8 = 0x04;
const COMMAND_MEMORY: u32 = 1 << 1;
const COMMAND_BUS_MASTER: u32 = 1 << 2;
const COMMAND_INTX_DISABLE: u32 = 1 << 10;
const HEADER_TYPE: u8 = 0x0c;
const BAR0: u8 = 0x10;
const SECONDARY_BUS: u8 = 0x18;
const INTERRUPT_LINE: u8 = 0x3c;

/// A function's address on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl core::fmt::Display for Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

fn port() -> X86IoPort {
    X86IoPort(init_caps::IO_PORT)
}

/// Points CONFIG_ADDRESS at a register of a function. (seL4 5.0's XML gives
/// `In32` a 16-bit port and `Out32` a word-sized one.)
fn select(a: Address, offset: u8) {
    let addr = 1 << 31
        | u32::from(a.bus) << 16
        | u32::from(a.device) << 11
        | u32::from(a.function) << 8
        | u32::from(offset & 0xfc);
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
                if id & 0xffff == 0xffff {
                    if function == 0 {
                        break;
                    }
                    continue;
                }
                found.push((a, id as u16, (id >> 16) as u16));
                let header = read32(a, HEADER_TYPE) >> 16;
                if header & 0x7f == 1 {
                    let secondary = (read32(a, SECONDARY_BUS) >> 8) as u8;
                    if secondary > bus {
                        buses.push(secondary);
                    }
                }
                if function == 0 && header & 0x80 == 0 {
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
    if low & 1 != 0 {
        fail(format_args!("PCI {a} BAR {index} is an IO BAR; only memory BARs can be mapped"));
    }
    let is64 = (low >> 1) & 3 == 2;
    write32(a, off, u32::MAX);
    let mut mask = u64::from(read32(a, off) & !0xf);
    write32(a, off, low);
    let mut base = u64::from(low & !0xf);
    if is64 {
        let high = read32(a, off + 4);
        write32(a, off + 4, u32::MAX);
        mask |= u64::from(read32(a, off + 4)) << 32;
        write32(a, off + 4, high);
        base |= u64::from(high) << 32;
    } else {
        mask |= 0xffff_ffff_0000_0000;
    }
    (base, (!mask).wrapping_add(1))
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
            let Some(&(address, _, _)) = present
                .iter()
                .filter(|(_, v, d)| (*v, *d) == (want.vendor, want.device))
                .nth(usize::from(want.instance))
            else {
                fail(format_args!(
                    "PCI device {:04x}:{:04x} instance {} for PD '{}' is not present (is the QEMU -device missing?)",
                    want.vendor, want.device, want.instance, want.owner
                ));
            };
            let command = read32(address, COMMAND) & 0xffff;
            write32(address, COMMAND, command & !COMMAND_MEMORY);
            let bars = want
                .bars
                .iter()
                .map(|&(index, need)| {
                    let (base, size) = size_bar(address, index);
                    if size < need || base == 0 {
                        fail(format_args!(
                            "PCI {address} BAR {index} is {size:#x} bytes at {base:#x}; PD '{}' maps {need:#x}",
                            want.owner
                        ));
                    }
                    (index, base, size)
                })
                .collect();
            let command = (command | COMMAND_MEMORY | COMMAND_BUS_MASTER) & !COMMAND_INTX_DISABLE;
            write32(address, COMMAND, command);
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
