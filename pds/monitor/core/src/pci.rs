//! PCI configuration arithmetic, for configuration mechanism #1 (I/O ports
//! 0xCF8/0xCFC): no port is touched here, the monitor's `pci` module does
//! the reads and writes and asks this module what they mean.

use core::fmt;

/// Configuration registers the monitor uses (byte offsets).
pub const COMMAND: u8 = 0x04;
pub const HEADER_TYPE: u8 = 0x0c;
pub const BAR0: u8 = 0x10;
pub const SECONDARY_BUS: u8 = 0x18;
pub const INTERRUPT_LINE: u8 = 0x3c;

/// Command register bits.
pub const COMMAND_MEMORY: u32 = 1 << 1;
pub const COMMAND_BUS_MASTER: u32 = 1 << 2;
pub const COMMAND_INTX_DISABLE: u32 = 1 << 10;

/// A function's address on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl fmt::Display for Address {
    /// `bus:device.function`, as `lspci` writes it: `00:03.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// The value written to CONFIG_ADDRESS to select the 32-bit register
/// holding byte `offset` of function `a`: enable bit, bus, device (5 bits),
/// function (3 bits), register (offset rounded down to 4).
pub fn config_address(a: Address, offset: u8) -> u32 {
    1 << 31
        | u32::from(a.bus) << 16
        | u32::from(a.device & 0x1f) << 11
        | u32::from(a.function & 0x7) << 8
        | u32::from(offset & 0xfc)
}

/// A vendor and device ID register (offset 0) read from an empty slot.
pub fn is_absent(id: u32) -> bool {
    id & 0xffff == 0xffff
}

/// Vendor and device of an ID register.
pub fn ids(id: u32) -> (u16, u16) {
    (id as u16, (id >> 16) as u16)
}

/// What the header type register (offset 0x0c, read as 32 bits) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// A PCI-to-PCI bridge (type 1): its secondary bus is to be scanned.
    pub bridge: bool,
    /// The device has functions beyond 0.
    pub multi_function: bool,
}

impl Header {
    pub fn from_register(register: u32) -> Self {
        let header = register >> 16;
        Header { bridge: header & 0x7f == 1, multi_function: header & 0x80 != 0 }
    }
}

/// The secondary bus of a bridge, from its register at 0x18.
pub fn secondary_bus(register: u32) -> u8 {
    (register >> 8) as u8
}

/// The address of the `instance`th (from 0, in bus order) function of
/// `present` with this vendor and device.
pub fn find(present: &[(Address, u16, u16)], vendor: u16, device: u16, instance: u8) -> Option<Address> {
    present.iter().filter(|(_, v, d)| (*v, *d) == (vendor, device)).nth(usize::from(instance)).map(|(a, _, _)| *a)
}

/// The kind of a BAR, from its low register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// An I/O BAR: cannot be mapped.
    Io,
    Memory32,
    /// The next BAR register holds the high 32 bits.
    Memory64,
}

impl BarKind {
    pub fn from_register(low: u32) -> Self {
        if low & 1 != 0 {
            BarKind::Io
        } else if (low >> 1) & 3 == 2 {
            BarKind::Memory64
        } else {
            BarKind::Memory32
        }
    }
}

/// Base and size of a memory BAR from its register(s) as read (`low`,
/// `high`) and as read back after writing all ones (`mask_low`,
/// `mask_high`); a 32-bit BAR has `high == mask_high == None`. The size is
/// the lowest address bit that sticks.
pub fn bar_base_and_size(low: u32, high: Option<u32>, mask_low: u32, mask_high: Option<u32>) -> (u64, u64) {
    let base = u64::from(low & !0xf) | u64::from(high.unwrap_or(0)) << 32;
    let mask = u64::from(mask_low & !0xf)
        | match mask_high {
            Some(m) => u64::from(m) << 32,
            None => 0xffff_ffff_0000_0000,
        };
    (base, (!mask).wrapping_add(1))
}

/// Whether a BAR found at `base` with `size` bytes can hold the `need`
/// bytes a PD maps (a BAR at 0 was never assigned by the firmware).
pub fn bar_fits(base: u64, size: u64, need: u64) -> bool {
    base != 0 && size >= need
}

/// The command register handed to a driver: memory decoding and bus
/// mastering on, legacy interrupts enabled, the other bits kept.
pub fn driver_command(command: u32) -> u32 {
    (command | COMMAND_MEMORY | COMMAND_BUS_MASTER) & !COMMAND_INTX_DISABLE
}

/// The command register while BARs are sized: memory decoding off.
pub fn sizing_command(command: u32) -> u32 {
    command & !COMMAND_MEMORY
}

#[cfg(test)]
mod tests;
