//! The 82574's registers: BAR 0, 128 KiB of 32-bit registers (the
//! datasheet's register descriptions, by register name), reached through [`Regs`] so that host tests can put a model
//! of the device behind it; [`Mmio`] is the real thing for the PD.
//!
//! Only the registers and bits the driver uses are named here, each with
//! the datasheet's name.

/// The device's register file. Every register is 32 bits wide at a
/// 4-byte-aligned `offset` into BAR 0.
///
/// Reads may have effects (`ICR` is cleared by a read, 7.4.5), hence a
/// device model behind `&self` uses interior mutability.
pub trait Regs {
    fn read(&self, offset: u32) -> u32;
    fn write(&mut self, offset: u32, value: u32);
}

/// BAR 0 mapped uncached into the PD: volatile 32-bit accesses.
#[derive(Debug)]
pub struct Mmio {
    base: *mut u32,
    len: usize,
}

impl Mmio {
    /// # Safety
    ///
    /// `[base, base + len)` must be the device's BAR 0 (or its first `len`
    /// bytes), mapped uncached, readable and writable, 4-byte aligned, for
    /// the life of the handle, and accessed only through it.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        Mmio { base: base.cast(), len }
    }

    /// The register at `offset` as a pointer, if it lies in the mapping.
    ///
    /// # Panics
    /// If it does not: offsets are the driver's constants, so that is a
    /// driver bug (or a mapping too small, which the PD's bring-up would
    /// show at once).
    fn at(&self, offset: u32) -> *mut u32 {
        let offset = offset as usize;
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len, "register {offset:#x} outside BAR 0");
        self.base.wrapping_add(offset / 4)
    }
}

impl Regs for Mmio {
    fn read(&self, offset: u32) -> u32 {
        let p = self.at(offset);
        // SAFETY: `p` is an aligned register inside the mapping the
        // constructor's contract keeps alive; a volatile read is the MMIO
        // access itself.
        unsafe { p.read_volatile() }
    }

    fn write(&mut self, offset: u32, value: u32) {
        let p = self.at(offset);
        // SAFETY: as in `read`; a volatile write is the MMIO access itself.
        unsafe { p.write_volatile(value) }
    }
}

/// Bytes of BAR 0 the driver touches (the highest is `RAH[15]`); the PD
/// maps at least this much.
pub const BAR0_SIZE: usize = 0x6000;

/// Device Control Register (`CTRL`).
pub const CTRL: u32 = 0x0000;
/// `CTRL.SLU`: set link up (with the internal PHY, enables the link as
/// soon as the PHY reports one: "Link Setup" of the initialisation
/// sequence).
pub const CTRL_SLU: u32 = 1 << 6;
/// `CTRL.RST`: device reset; self-clearing when the reset is done.
pub const CTRL_RST: u32 = 1 << 26;

/// Device Status Register (`STATUS`).
pub const STATUS: u32 = 0x0008;
/// `STATUS.LU`: link up.
pub const STATUS_LU: u32 = 1 << 1;

/// Interrupt Cause Read Register (`ICR`): cleared on read without MSI-X,
/// and write-1-to-clear (7.4.5).
pub const ICR: u32 = 0x00c0;
/// Interrupt Throttling (`ITR`): the least interval between interrupts,
/// in units of 256 ns; 0 turns throttling off.
pub const ITR: u32 = 0x00c4;
/// Interrupt Mask Set/Read (`IMS`): a 1 enables that cause.
pub const IMS: u32 = 0x00d0;
/// Interrupt Mask Clear (`IMC`): a 1 disables that cause.
pub const IMC: u32 = 0x00d8;

/// Interrupt causes (`ICR`, `IMS`, `IMC` share the bits).
pub mod int {
    /// `TXDW`: a transmit descriptor with `RS` was written back.
    pub const TXDW: u32 = 1 << 0;
    /// `LSC`: the link status changed.
    pub const LSC: u32 = 1 << 2;
    /// `RXO`: receiver overrun (the packet buffer filled: no descriptors).
    pub const RXO: u32 = 1 << 6;
    /// `RXT0`: receiver timer: a frame was written back.
    pub const RXT0: u32 = 1 << 7;
    /// Every cause: what `IMC` is written to mask them all.
    pub const ALL: u32 = !0;
}

/// Receive Control Register (`RCTL`).
pub const RCTL: u32 = 0x0100;
pub mod rctl {
    /// `EN`: receiver enable.
    pub const EN: u32 = 1 << 1;
    /// `SBP`: store bad packets.
    pub const SBP: u32 = 1 << 2;
    /// `UPE`: unicast promiscuous.
    pub const UPE: u32 = 1 << 3;
    /// `MPE`: multicast promiscuous.
    pub const MPE: u32 = 1 << 4;
    /// `LPE`: long packets (beyond 1522 bytes).
    pub const LPE: u32 = 1 << 5;
    /// `LBM`: loopback mode (bits 7:6; 00 none).
    pub const LBM_MASK: u32 = 3 << 6;
    /// `DTYP`: descriptor type (bits 11:10; 00 legacy).
    pub const DTYP_MASK: u32 = 3 << 10;
    /// `BAM`: accept broadcast.
    pub const BAM: u32 = 1 << 15;
    /// `BSIZE` (bits 17:16): with `BSEX` clear, 00 is 2048 bytes.
    pub const BSIZE_MASK: u32 = 3 << 16;
    pub const BSIZE_2048: u32 = 0;
    /// `BSEX`: buffer size extension (multiplies `BSIZE` by 16).
    pub const BSEX: u32 = 1 << 25;
    /// `SECRC`: strip the Ethernet CRC from received frames.
    pub const SECRC: u32 = 1 << 26;
}

/// Transmit Control Register (`TCTL`).
pub const TCTL: u32 = 0x0400;
pub mod tctl {
    /// `EN`: transmitter enable.
    pub const EN: u32 = 1 << 1;
    /// `PSP`: pad short packets to 64 bytes.
    pub const PSP: u32 = 1 << 3;
    /// `CT` (bits 11:4): collision threshold; recommended 0x0F.
    pub const CT_SHIFT: u32 = 4;
    pub const CT_MASK: u32 = 0xff << CT_SHIFT;
    pub const CT: u32 = 0x0f;
    /// `COLD` (bits 21:12): collision distance; 0x3F (64-byte time) for
    /// full duplex.
    pub const COLD_SHIFT: u32 = 12;
    pub const COLD_MASK: u32 = 0x3ff << COLD_SHIFT;
    pub const COLD: u32 = 0x3f;
    /// `RTLC`: retransmit on late collision.
    pub const RTLC: u32 = 1 << 24;
}

/// Transmit Inter-Packet Gap (`TIPG`): IPGT 8, IPGR1 8, IPGR2 6, the
/// classic e1000 values for a copper PHY (QEMU ignores them).
pub const TIPG: u32 = 0x0410;
pub const TIPG_VALUE: u32 = 8 | 8 << 10 | 6 << 20;

/// Receive descriptor ring (7.1.8): base low/high, length in bytes (a
/// multiple of 128), head, tail; receive delay timer and absolute timer.
pub const RDBAL: u32 = 0x2800;
pub const RDBAH: u32 = 0x2804;
pub const RDLEN: u32 = 0x2808;
pub const RDH: u32 = 0x2810;
pub const RDT: u32 = 0x2818;
pub const RDTR: u32 = 0x2820;
pub const RADV: u32 = 0x282c;

/// Transmit descriptor ring (as the receive ring): base low/high, length, head, tail;
/// interrupt delay and absolute delay.
pub const TDBAL: u32 = 0x3800;
pub const TDBAH: u32 = 0x3804;
pub const TDLEN: u32 = 0x3808;
pub const TDH: u32 = 0x3810;
pub const TDT: u32 = 0x3818;
pub const TIDV: u32 = 0x3820;
pub const TADV: u32 = 0x382c;

/// Receive Checksum Control (`RXCSUM`): 0 leaves received frames'
/// checksums to the client (no `IPCS`/`TCPCS` status, no `IPE`/`TCPE`).
pub const RXCSUM: u32 = 0x5000;
/// Receive Filter Control (`RFCTL`): `EXSTEN` (bit 15) clear keeps the
/// legacy receive descriptor format.
pub const RFCTL: u32 = 0x5008;

/// Multicast Table Array (`MTA[0..128]`): 4096 hash bits, all clear so
/// that no multicast frame passes the filter.
pub const MTA: u32 = 0x5200;
pub const MTA_ENTRIES: u32 = 128;

/// Receive Address Low/High (`RAL[n]`, `RAH[n]`, n = 0..16): perfect
/// filters. The reset loads the EEPROM's MAC address into entry 0.
pub const RAL0: u32 = 0x5400;
pub const RAH0: u32 = 0x5404;
pub const RAR_ENTRIES: u32 = 16;
/// `RAH.AV`: the entry is valid.
pub const RAH_AV: u32 = 1 << 31;

/// `RAL[n]`.
pub const fn ral(n: u32) -> u32 {
    RAL0 + 8 * n
}

/// `RAH[n]`.
pub const fn rah(n: u32) -> u32 {
    RAH0 + 8 * n
}

/// The legacy receive descriptor (receive, 7.1: "Legacy Receive Descriptor
/// Format"): 16 bytes; the driver writes the buffer address, the device
/// writes back length, checksum, status, errors and VLAN tag.
pub mod rxd {
    pub const SIZE: usize = 16;
    pub const ADDR: usize = 0;
    pub const LENGTH: usize = 8;
    pub const STATUS: usize = 12;
    pub const ERRORS: usize = 13;
    /// Status `DD`: descriptor done.
    pub const DD: u8 = 1 << 0;
    /// Status `EOP`: last descriptor of a frame.
    pub const EOP: u8 = 1 << 1;
    /// Errors `CE` (CRC or alignment), `SE` (symbol), `SEQ` (sequence),
    /// `CXE` (carrier extension), `TCPE`, `IPE` (checksums, only with
    /// `RXCSUM` offload), `RXE` (data error): any of them drops the frame.
    pub const CE: u8 = 1 << 0;
    pub const SE: u8 = 1 << 1;
    pub const SEQ: u8 = 1 << 2;
    pub const CXE: u8 = 1 << 4;
    pub const TCPE: u8 = 1 << 5;
    pub const IPE: u8 = 1 << 6;
    pub const RXE: u8 = 1 << 7;
    pub const RXERRORS: u8 = CE | SE | SEQ | CXE | TCPE | IPE | RXE;
}

/// The legacy transmit descriptor ("Legacy Transmit Descriptor
/// Format"): 16 bytes: buffer address, length, `CSO`, `CMD`, `STA`,
/// `CSS`, `SPECIAL`.
pub mod txd {
    pub const SIZE: usize = 16;
    pub const ADDR: usize = 0;
    pub const LENGTH: usize = 8;
    pub const CMD: usize = 11;
    pub const STA: usize = 12;
    /// `CMD.EOP`: last descriptor of the frame.
    pub const EOP: u8 = 1 << 0;
    /// `CMD.IFCS`: insert the Ethernet CRC.
    pub const IFCS: u8 = 1 << 1;
    /// `CMD.RS`: report status (write `DD` back when done).
    pub const RS: u8 = 1 << 3;
    /// `CMD.DEXT`: not legacy (must be clear here).
    pub const DEXT: u8 = 1 << 5;
    /// `STA.DD`: descriptor done.
    pub const DD: u8 = 1 << 0;
    /// `STA.EC`, `STA.LC`: excess and late collisions (half duplex only):
    /// the frame was not sent.
    pub const EC: u8 = 1 << 1;
    pub const LC: u8 = 1 << 2;
}
