//! The kernel's one-word bitfield types, laid out from the `.bf` files.

use crate::layout::*;
use crate::Word;

/// `seL4_MessageInfo_t`: label, unwrapped-caps mask, extra caps and length.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo(pub Word);

impl MessageInfo {
    pub const fn new(label: Word, caps_unwrapped: Word, extra_caps: Word, length: Word) -> Self {
        let w = MESSAGE_INFO_LABEL.set(0, label);
        let w = MESSAGE_INFO_CAPS_UNWRAPPED.set(w, caps_unwrapped);
        let w = MESSAGE_INFO_EXTRA_CAPS.set(w, extra_caps);
        MessageInfo(MESSAGE_INFO_LENGTH.set(w, length))
    }
    pub const fn label(self) -> Word {
        MESSAGE_INFO_LABEL.get(self.0)
    }
    pub const fn caps_unwrapped(self) -> Word {
        MESSAGE_INFO_CAPS_UNWRAPPED.get(self.0)
    }
    pub const fn extra_caps(self) -> Word {
        MESSAGE_INFO_EXTRA_CAPS.get(self.0)
    }
    pub const fn length(self) -> Word {
        MESSAGE_INFO_LENGTH.get(self.0)
    }
}

/// `seL4_CapRights_t`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CapRights(pub Word);

impl CapRights {
    pub const fn new(grant: bool, read: bool, write: bool) -> Self {
        let w = CAP_RIGHTS_CAP_ALLOW_GRANT.set(0, grant as Word);
        let w = CAP_RIGHTS_CAP_ALLOW_READ.set(w, read as Word);
        CapRights(CAP_RIGHTS_CAP_ALLOW_WRITE.set(w, write as Word))
    }
    pub const ALL: CapRights = CapRights::new(true, true, true);
    pub const READ_WRITE: CapRights = CapRights::new(false, true, true);
    pub const READ_ONLY: CapRights = CapRights::new(false, true, false);
    pub const WRITE_ONLY: CapRights = CapRights::new(false, false, true);
    pub const NONE: CapRights = CapRights::new(false, false, false);
}

/// `seL4_CapData_t`: a badge or a guard, told apart by the `CapDataType` tag.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CapData(pub Word);

impl CapData {
    /// A badge (truncated to the kernel's badge width).
    pub const fn badge(b: Word) -> Self {
        let w = BADGE_CAP_DATA_TYPE.set(0, CAP_DATA_TAG_BADGE);
        CapData(BADGE_BADGE.set(w, b))
    }
    /// A CNode guard of `guard_size` bits with value `guard`.
    pub const fn guard(guard: Word, guard_size: Word) -> Self {
        let w = GUARD_CAP_DATA_TYPE.set(0, CAP_DATA_TAG_GUARD);
        let w = GUARD_GUARD_BITS.set(w, guard);
        CapData(GUARD_GUARD_SIZE.set(w, guard_size))
    }
    /// The IO port range `first..=last` for minting a narrower IO port cap.
    /// seL4 5.0 has no IOPortControl: the root task holds one cap to every
    /// port and derives ranges from it with `CNode_Mint`. The layout is the
    /// kernel's `io_port_capdata` block (x86_64 `structures.bf`): first port
    /// in bits 16..32, last port in bits 0..16.
    pub const fn io_ports(first: u16, last: u16) -> Self {
        CapData(((first as Word) << 16) | last as Word)
    }
    /// No badge / no guard change: the all-zero word.
    pub const NONE: CapData = CapData(0);
}

/// `seL4_PrioProps_t`: priority and maximum controlled priority.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PrioProps(pub Word);

impl PrioProps {
    pub const fn new(mcp: Word, prio: Word) -> Self {
        PrioProps(PRIO_PROPS_PRIO.set(PRIO_PROPS_MCP.set(0, mcp), prio))
    }
}
