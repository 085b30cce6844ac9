//! `seL4_BootInfo`: what the kernel tells the root task (bootinfo_types.h).

use crate::{Word, MAX_NUM_BOOTINFO_UNTYPED_CAPS};

/// A range of CNode slots `[start, end)`.
#[repr(C, packed)]
#[derive(Copy, Clone, Debug)]
pub struct SlotRegion {
    pub start: Word,
    pub end: Word,
}

impl SlotRegion {
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One untyped capability given to the root task.
#[repr(C, packed)]
#[derive(Copy, Clone, Debug)]
pub struct UntypedDesc {
    pub paddr: Word,
    padding1: u8,
    padding2: u8,
    pub size_bits: u8,
    pub is_device: u8,
}

/// `seL4_BootInfo`, field for field.
#[repr(C, packed)]
pub struct BootInfo {
    pub extra_len: Word,
    pub node_id: Word,
    pub num_nodes: Word,
    pub num_io_pt_levels: Word,
    pub ipc_buffer: *mut crate::IpcBuffer,
    pub empty: SlotRegion,
    pub shared_frames: SlotRegion,
    pub user_image_frames: SlotRegion,
    pub user_image_paging: SlotRegion,
    pub io_space_caps: SlotRegion,
    pub extra_bi_pages: SlotRegion,
    pub init_thread_cnode_size_bits: u8,
    pub init_thread_domain: Word,
    pub arch_info: Word,
    pub untyped: SlotRegion,
    pub untyped_list: [UntypedDesc; MAX_NUM_BOOTINFO_UNTYPED_CAPS],
}

impl BootInfo {
    /// The valid untyped descriptors: one per cap in `untyped`, in slot order.
    pub fn untypeds(&self) -> &[UntypedDesc] {
        let n = self.untyped.len().min(MAX_NUM_BOOTINFO_UNTYPED_CAPS);
        // `UntypedDesc` is packed (alignment 1), so borrowing the array is allowed.
        let list = &self.untyped_list;
        &list[..n]
    }

    /// The slot of the cap described by `untypeds()[i]`.
    pub fn untyped_slot(&self, i: usize) -> Word {
        self.untyped.start + i as Word
    }
}
