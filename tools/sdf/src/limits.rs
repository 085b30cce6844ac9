//! Limits imposed by the kernel, the boot protocol and x86-64.

/// Most protection domains one system may have. Each PD owns a slot range in
/// the initialiser's tables (see `boot-spec`), as in Microkit.
pub const MAX_PDS: usize = 63;

/// Highest channel (and irq) id. seL4 5.0's `CNode_Mint` carries a 28-bit
/// badge: bits 0..=25 are notification channels, bit 26 marks a child's
/// fault and bit 27 a protected call, so only 26 ids fit.
pub const MAX_CHANNEL_ID: u8 = 25;

/// Highest child PD id: child ids are carried in the low bits of a
/// child-fault badge, like channel ids.
pub const MAX_CHILD_ID: u8 = 25;

/// Highest PD priority. 255 is reserved for the monitor, as in Microkit.
pub const MAX_PRIORITY: u8 = 254;

/// Longest PD name in bytes: the name is stored NUL-terminated in a 64-byte
/// field of the PD's runtime data.
pub const PD_NAME_MAX: usize = 63;

/// The I/O ports of PCI configuration space (`0xcf8..=0xcff`, inclusive):
/// the initialiser's alone (pds-boot-spec `rights::PCI_CONFIG_PORTS`, which
/// the boot-time check uses).
pub const PCI_CONFIG_PORTS: (u16, u16) = (0xcf8, 0xcff);

/// Highest I/O port range id. Port ranges have their own id space.
pub const MAX_IOPORT_ID: u8 = 63;

/// First address user mappings may not reach: the top of the x86-64 lower
/// canonical half, less the guard page.
pub const USER_TOP: u64 = 0x7fff_ffff_f000;

/// Smallest PD stack.
pub const MIN_STACK: u64 = 0x1000;

/// Largest PD stack.
pub const MAX_STACK: u64 = 16 << 20;

/// Highest IOAPIC pin: an x86 IOAPIC has 24 redirection entries.
pub const MAX_IOAPIC_PIN: u32 = 23;

/// Highest interrupt vector user level may ask for: seL4 on x86 offers
/// vectors `IRQ_INT_OFFSET + 0 ..= 107` to user IRQs on this kernel.
pub const MAX_IRQ_VECTOR: u32 = 107;

/// Size of the x86 I/O port space.
pub const IOPORT_SPACE: u32 = 0x1_0000;

/// Highest PCI device id in a PD.
pub const MAX_PCI_ID: u8 = 7;
