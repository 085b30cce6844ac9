//! dma-canary: the memory a rogue driver aims its device at
//! (`tests/systems/dma.system`). At start it fills its region `canary`
//! with [`CANARY_BYTE`] and tells the rogue the region's physical address
//! through the region `mailbox` (the rogue learns it only this way: its
//! description gives it no `region_paddr` of the canary, so the canary is
//! not in its device's IOSpace). When the rogue notifies it (its attack is
//! over), it checks every byte and logs `canary intact` or `canary
//! OVERWRITTEN`, which the integration test reads.
#![no_std]
#![no_main]

use pds_runtime::{log, ChannelSet, Handler};

pds_runtime::setvar!(canary, rw);
pds_runtime::setvar!(canary_paddr, paddr);
pds_runtime::setvar!(mailbox, rw);

// The rogue's channel (`setvar_id="rogue"`): it notifies when done.
pds_runtime::channel!(ROGUE = "rogue");

/// Bytes of the `canary` region, and the byte it holds.
const CANARY_SIZE: usize = 0x1000;
const CANARY_BYTE: u8 = 0xc5;

struct Canary {
    /// The region, mapped read-write for the PD's life.
    bytes: &'static [u8],
}

impl Handler for Canary {
    fn init() -> Self {
        let (Some(vaddr), Some(paddr), Some(mailbox_vaddr)) = (
            pds_runtime::require_setvar!(canary),
            pds_runtime::require_setvar!(canary_paddr),
            pds_runtime::require_setvar!(mailbox),
        ) else {
            return Canary { bytes: &[] };
        };
        // SAFETY: the description maps `canary` (CANARY_SIZE bytes)
        // read-write at `canary` for the PD's life; only this PD maps it.
        let bytes = unsafe { core::slice::from_raw_parts_mut(vaddr as *mut u8, CANARY_SIZE) };
        bytes.fill(CANARY_BYTE);
        // SAFETY: `mailbox` is a page mapped read-write here (read-only in
        // the rogue); the first word is the canary's physical address.
        unsafe { core::ptr::write_volatile(mailbox_vaddr as *mut u64, paddr) };
        log!("canary at physical {paddr:#x}: {CANARY_SIZE} bytes of {CANARY_BYTE:#04x}; address in the mailbox");
        Canary { bytes }
    }

    fn notified(&mut self, channels: ChannelSet) {
        if !channels.contains(ROGUE.get()) {
            return;
        }
        // Volatile: the bytes may have changed behind the compiler's back
        // (that is the question).
        let changed = self
            .bytes
            .iter()
            // SAFETY: each pointer is into the mapped region.
            .filter(|b| unsafe { core::ptr::read_volatile(*b) } != CANARY_BYTE)
            .count();
        if changed == 0 {
            log!("canary intact: {} bytes of {CANARY_BYTE:#04x}", self.bytes.len());
        } else {
            let head = &self.bytes[..16];
            log!("canary OVERWRITTEN: {changed} of {} bytes changed; first bytes {head:02x?}", self.bytes.len());
        }
    }
}

pds_runtime::protection_domain!(Canary);
