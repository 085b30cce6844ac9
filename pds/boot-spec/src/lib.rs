//! The boot specification: the contract between the host-side system builder
//! and the root task (initialiser and monitor).
//!
//! The builder does all the thinking: it lays out every kernel object, every
//! capability, every mapping and every byte of every PD image, and writes the
//! result here. The initialiser only executes it, in order, so that what the
//! builder's report says is exactly what the running system holds. This is the
//! capDL idea in miniature.
//!
//! The spec travels inside the root task image (seL4 on x86 loads exactly one
//! boot module): the builder appends one extra loadable segment holding
//! [`ImageHeader`], the postcard-encoded [`Spec`] and a data blob with the PD
//! images, and patches the root task's [`SPEC_LOCATION_SYMBOL`] to point at it.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod untyped;

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Magic number at the start of the embedded spec segment.
pub const MAGIC: [u8; 8] = *b"SEL4SYS\0";
/// Bumped whenever the encoding of [`Spec`] changes.
pub const VERSION: u32 = 1;

/// Symbol in the root task: `[u64; 2]` = (vaddr, length) of the spec segment.
pub const SPEC_LOCATION_SYMBOL: &str = "__boot_spec_location";
/// Symbol in every PD: `[u8; PD_NAME_LEN]`, NUL-padded name of the PD.
pub const PD_NAME_SYMBOL: &str = "__microkit_pd_name";
/// Longest PD name, in bytes (as in Microkit).
pub const PD_NAME_LEN: usize = 64;
/// Symbol in every PD: `[u64; 4]` = masks of channel ids that may be
/// notified, protected-called, IRQ-acked, and child ids (see [`ChannelMasks`]).
pub const PD_CHANNELS_SYMBOL: &str = "__microkit_channels";

/// Where each capability sits in a PD's own CSpace. Shared by the builder,
/// which puts them there, and the PD runtime, which invokes them.
pub mod cspace {
    /// A PD's CNode has 2^RADIX_BITS slots.
    pub const RADIX_BITS: u8 = 9;
    /// The guard makes every 64-bit CPtr resolve in a single-level CSpace.
    pub const GUARD_SIZE: u8 = 64 - RADIX_BITS;
    /// What the PD waits on: its endpoint if it accepts protected calls or
    /// has children (notification bound to the TCB), else its notification.
    pub const INPUT: u64 = 1;
    /// Badged endpoint of its fault handler (monitor, or parent PD); the
    /// kernel looks this CPtr up in the PD's own CSpace on a fault.
    pub const FAULT_EP: u64 = 2;
    /// The PD's own notification object.
    pub const NOTIFICATION: u64 = 3;
    /// The PD's own TCB.
    pub const TCB: u64 = 4;
    /// Notification cap for channel `id`: `OUTPUT_NOTIFICATION_BASE + id`.
    pub const OUTPUT_NOTIFICATION_BASE: u64 = 64;
    /// Endpoint cap for a protected call on channel `id`.
    pub const PROTECTED_CALL_BASE: u64 = 128;
    /// IRQ handler cap for irq `id` (irq ids share the channel id space).
    pub const IRQ_BASE: u64 = 192;
    /// IO port range cap for ioport `id`.
    pub const IOPORT_BASE: u64 = 256;
    /// TCB cap of child PD `id`.
    pub const CHILD_TCB_BASE: u64 = 320;
    /// One past the last slot used.
    pub const END: u64 = 384;
}

/// How badges encode events. seL4 5.0's `CNode_Mint` carries a 28-bit badge
/// (`seL4_CapData` Badge field), so Microkit's 63 channel ids (bit 63 for
/// protected calls) do not fit: here ids are 0..=MAX_CHANNEL_ID, bit 26 marks
/// a fault from a child PD and bit 27 marks a protected call.
pub mod badge {
    /// Highest channel or irq id a PD may use.
    pub const MAX_CHANNEL_ID: u64 = 25;
    /// Highest child PD id.
    pub const MAX_CHILD_ID: u64 = 25;
    /// Set in the badge of an endpoint cap used for a child's faults.
    pub const CHILD_FAULT: u64 = 1 << 26;
    /// Set in the badge of an endpoint cap used for protected calls.
    pub const PROTECTED_CALL: u64 = 1 << 27;
    /// Low bits of a protected-call or child-fault badge: the id.
    pub const ID_MASK: u64 = 0xff;
    /// Largest badge `CNode_Mint` accepts on this kernel.
    pub const MAX: u64 = (1 << 28) - 1;
}

/// Syscall number (in `rdx`) that the PD runtime's panic handler uses: the
/// kernel does not know it, so it sends the monitor an UnknownSyscall fault,
/// which the monitor reports as a panic of that PD.
pub const PANIC_SYSCALL: u64 = 0x5041_4e49_43; // "PANIC"

/// Index of one kernel object instance in [`Spec::objects`] order, counting
/// every instance of a run separately.
pub type ObjId = u32;

/// The whole boot specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Spec {
    /// Objects to create. A run of `count` instances gets consecutive ids and,
    /// for frames, consecutive physical addresses.
    pub objects: Vec<Object>,
    /// IRQ handler caps to obtain and bind to notifications.
    pub irqs: Vec<Irq>,
    /// IO port range caps to issue.
    pub ioports: Vec<IoPortRange>,
    /// Paging structures and frames to map, parents before children.
    pub mappings: Vec<Mapping>,
    /// Bytes to copy from the data blob into frames.
    pub fills: Vec<Fill>,
    /// Physical addresses to write into PD memory (`setvar region_paddr`).
    pub paddr_patches: Vec<PaddrPatch>,
    /// Capabilities to put into PD CSpaces.
    pub caps: Vec<CapInstall>,
    /// Threads to configure and start, one per PD.
    pub threads: Vec<Thread>,
    /// Names and relations of the PDs, indexed as `Thread::pd`.
    pub pds: Vec<PdInfo>,
    /// The monitor's fault endpoint (an object in `objects`).
    pub fault_endpoint: ObjId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub kind: ObjectKind,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    Tcb,
    Endpoint,
    Notification,
    /// A CNode of 2^radix_bits slots.
    CNode { radix_bits: u8 },
    /// Top-level paging structure (x86_64 PML4).
    VSpace,
    Pdpt,
    PageDirectory,
    PageTable,
    /// Frames of 2^size_bits bytes (12 or 21). With `paddr`, the run starts at
    /// that physical address (device memory or a fixed RAM address).
    Frame { size_bits: u8, paddr: Option<u64> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Irq {
    pub ioapic: u32,
    pub pin: u32,
    pub level_triggered: bool,
    pub active_low: bool,
    pub vector: u32,
    pub notification: ObjId,
    pub badge: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoPortRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub vspace: ObjId,
    pub vaddr: u64,
    pub object: ObjId,
    pub kind: MapKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapKind {
    Pdpt,
    PageDirectory,
    PageTable,
    Frame { writable: bool, cached: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub frame: ObjId,
    pub frame_offset: u32,
    pub data_offset: u64,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaddrPatch {
    /// Frame that holds the symbol, and the symbol's offset in it.
    pub frame: ObjId,
    pub offset: u32,
    /// First frame of the region whose physical address is written.
    pub region: ObjId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapSource {
    Object(ObjId),
    /// Index into [`Spec::irqs`].
    Irq(u32),
    /// Index into [`Spec::ioports`].
    IoPort(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    pub read: bool,
    pub write: bool,
    pub grant: bool,
}

impl Rights {
    pub const ALL: Rights = Rights { read: true, write: true, grant: true };
    pub const READ_WRITE: Rights = Rights { read: true, write: true, grant: false };
    /// Enough to signal a notification or call an endpoint.
    pub const WRITE: Rights = Rights { read: false, write: true, grant: false };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapInstall {
    /// The CNode (an object) receiving the cap.
    pub cnode: ObjId,
    pub slot: u64,
    pub source: CapSource,
    pub rights: Rights,
    /// 0 for none.
    pub badge: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    pub pd: u32,
    pub tcb: ObjId,
    pub cspace: ObjId,
    pub vspace: ObjId,
    pub ipc_buffer: ObjId,
    pub ipc_buffer_vaddr: u64,
    pub priority: u8,
    /// Fault endpoint CPtr, resolved in the thread's own CSpace.
    pub fault_ep: u64,
    pub entry: u64,
    pub stack_top: u64,
    pub bound_notification: Option<ObjId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdInfo {
    pub name: String,
    /// Index of the parent PD, for child PDs (their faults go to the parent).
    pub parent: Option<u32>,
}

/// Fixed-size header at the start of the spec segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub magic: [u8; 8],
    pub version: u32,
    /// Bytes of postcard-encoded [`Spec`] right after the header.
    pub spec_len: u32,
    /// Offset of the data blob from the segment start (page aligned).
    pub data_offset: u64,
    pub data_len: u64,
}

impl ImageHeader {
    pub const SIZE: usize = 32;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.spec_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.data_len.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, SpecError> {
        if b.len() < Self::SIZE {
            return Err(SpecError::Truncated);
        }
        let word = |r: core::ops::Range<usize>| {
            let mut w = [0u8; 8];
            w[..r.len()].copy_from_slice(&b[r]);
            u64::from_le_bytes(w)
        };
        let h = ImageHeader {
            magic: b[0..8].try_into().unwrap_or_default(),
            version: word(8..12) as u32,
            spec_len: word(12..16) as u32,
            data_offset: word(16..24),
            data_len: word(24..32),
        };
        if h.magic != MAGIC {
            return Err(SpecError::BadMagic);
        }
        if h.version != VERSION {
            return Err(SpecError::WrongVersion(h.version));
        }
        Ok(h)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecError {
    Truncated,
    BadMagic,
    WrongVersion(u32),
    Decode,
}

impl Spec {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("spec encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Spec, SpecError> {
        postcard::from_bytes(bytes).map_err(|_| SpecError::Decode)
    }

    /// Total number of object instances (each needs one slot in the monitor).
    pub fn instance_count(&self) -> u32 {
        self.objects.iter().map(|o| o.count).sum()
    }

    /// The run an instance belongs to and its index within the run.
    pub fn locate(&self, id: ObjId) -> Option<(&Object, u32)> {
        let mut first = 0u32;
        for o in &self.objects {
            if id < first + o.count {
                return Some((o, id - first));
            }
            first += o.count;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let h = ImageHeader { magic: MAGIC, version: VERSION, spec_len: 77, data_offset: 4096, data_len: 12345 };
        assert_eq!(ImageHeader::from_bytes(&h.to_bytes()), Ok(h));
        let mut bad = h.to_bytes();
        bad[0] = b'X';
        assert_eq!(ImageHeader::from_bytes(&bad), Err(SpecError::BadMagic));
        let mut old = h.to_bytes();
        old[8] = 99;
        assert_eq!(ImageHeader::from_bytes(&old), Err(SpecError::WrongVersion(99)));
        assert_eq!(ImageHeader::from_bytes(&h.to_bytes()[..10]), Err(SpecError::Truncated));
    }

    #[test]
    fn spec_round_trips_and_locates_runs() {
        let spec = Spec {
            objects: vec![
                Object { kind: ObjectKind::Tcb, count: 1 },
                Object { kind: ObjectKind::Frame { size_bits: 12, paddr: None }, count: 3 },
                Object { kind: ObjectKind::CNode { radix_bits: 9 }, count: 1 },
            ],
            pds: vec![PdInfo { name: "a".into(), parent: None }],
            ..Default::default()
        };
        let bytes = spec.encode();
        assert_eq!(Spec::decode(&bytes).unwrap(), spec);
        assert_eq!(spec.instance_count(), 5);
        assert_eq!(spec.locate(0).unwrap().0.kind, ObjectKind::Tcb);
        assert_eq!(spec.locate(3).unwrap().1, 2);
        assert_eq!(spec.locate(4).unwrap().0.kind, ObjectKind::CNode { radix_bits: 9 });
        assert!(spec.locate(5).is_none());
        assert_eq!(Spec::decode(&bytes[..bytes.len() - 1]), Err(SpecError::Decode));
    }

    #[test]
    fn badges_fit_the_kernel_mint_field() {
        assert!(badge::PROTECTED_CALL | badge::MAX_CHANNEL_ID <= badge::MAX);
        assert!(badge::CHILD_FAULT | badge::MAX_CHILD_ID <= badge::MAX);
        assert!((1u64 << badge::MAX_CHANNEL_ID) < badge::CHILD_FAULT);
        assert!(cspace::CHILD_TCB_BASE + badge::MAX_CHILD_ID < cspace::END);
        assert!(cspace::END <= 1 << cspace::RADIX_BITS);
    }
}
