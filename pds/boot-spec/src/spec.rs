//! The spec types and their encoding (postcard).

use crate::{ObjId, MAGIC, VERSION};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

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
    /// PCI functions to find at boot; BAR frames, configuration snapshots
    /// and interrupts refer to them by index.
    pub pci_devices: Vec<PciDevice>,
    /// Frames to fill with a snapshot of a PCI function's configuration space.
    pub pci_config_fills: Vec<PciConfigFill>,
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
    CNode {
        radix_bits: u8,
    },
    /// Top-level paging structure (x86_64 PML4).
    VSpace,
    Pdpt,
    PageDirectory,
    PageTable,
    /// Frames of 2^size_bits bytes (12 or 21). With `paddr`, the run starts at
    /// that physical address (device memory or a fixed RAM address).
    Frame {
        size_bits: u8,
        paddr: Option<u64>,
    },
    /// 4 KiB frames of a PCI BAR, starting at the BAR's base address, which
    /// the initialiser learns at boot. `device` indexes [`Spec::pci_devices`].
    PciBar {
        device: u32,
        bar: u8,
    },
}

/// A PCI function, found at boot as the `instance`-th function (in bus
/// order) with this vendor and device id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciDevice {
    pub vendor: u16,
    pub device: u16,
    pub instance: u8,
    /// BARs used, with the bytes mapped from each (the BAR must be at least
    /// that large).
    pub bars: Vec<(u8, u64)>,
    /// Name of the PD driving it, for boot messages.
    pub owner: String,
    /// The memory the device may reach by DMA, where the platform has an
    /// IOMMU: each region whose physical address its driver is given
    /// (`setvar region_paddr`), with the access its `dma` attribute
    /// gives. The initialiser maps these frames, and no
    /// others, into the device's IOSpace at their physical addresses
    /// (I/O virtual address = physical address, so drivers compute
    /// addresses as without an IOMMU). Every frame is 4 KiB: seL4 5.0
    /// maps only 4 KiB frames into an IOSpace (`X86PageMapIO`).
    pub dma: Vec<DmaWindow>,
}

/// One memory region a device may reach by DMA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmaWindow {
    /// The region's name, for boot messages.
    pub region: String,
    /// Its frames (4 KiB each, physically contiguous).
    pub frames: FrameRun,
    /// The device may read the region (memory to device).
    pub device_reads: bool,
    /// The device may write the region (device to memory).
    pub device_writes: bool,
}

impl DmaWindow {
    /// `r`, `w` or `rw`, as the description writes it.
    pub fn access(&self) -> &'static str {
        match (self.device_reads, self.device_writes) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, true) => "w",
            (false, false) => "-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciConfigFill {
    pub frame: ObjId,
    pub device: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Irq {
    pub ioapic: u32,
    /// IOAPIC pin; for a PCI interrupt, the initialiser takes it from the
    /// function's interrupt line register instead.
    pub pin: u32,
    /// The PCI function whose legacy interrupt this is (index into
    /// [`Spec::pci_devices`]).
    pub pci_device: Option<u32>,
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

/// The rights mask a capability is minted with (`seL4_CapRights`). The
/// kernel ANDs it with the source's rights, and the initialiser mints from
/// the original capability of each object (all rights), so the installed
/// capability has exactly these. On seL4 5.0 only endpoint, notification
/// and frame capabilities have rights bits; IRQ handler, I/O port and TCB
/// capabilities are minted with [`Rights::NONE`], which the kernel ignores
/// for them. [`crate::rights`] says which rights each slot may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    /// Receive (`seL4_Recv` on an endpoint, wait or poll on a
    /// notification).
    pub read: bool,
    /// Send (`seL4_Send`, `seL4_Call` on an endpoint, signal a
    /// notification).
    pub write: bool,
    /// Send capabilities along, and (seL4 5.0) have a reply capability
    /// made for a `seL4_Call` or a fault message.
    pub grant: bool,
}

impl Rights {
    pub const ALL: Rights = Rights { read: true, write: true, grant: true };
    /// No rights: for capabilities whose kind has none (IRQ handler, I/O
    /// ports, TCB).
    pub const NONE: Rights = Rights { read: false, write: false, grant: false };
    /// Receive only: a PD's own endpoint or notification.
    pub const READ: Rights = Rights { read: true, write: false, grant: false };
    /// Signal only: a peer's notification.
    pub const WRITE: Rights = Rights { read: false, write: true, grant: false };
    /// Send with a reply: `seL4_Call` on a server's endpoint, and the
    /// kernel's fault message on a fault endpoint (seL4 5.0 has no
    /// GrantReply right: both need Grant, see [`crate::rights`]).
    pub const WRITE_GRANT: Rights = Rights { read: false, write: true, grant: true };
}

impl core::fmt::Display for Rights {
    /// `RWG` with `-` for a right not held, as in the report.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let letter = |held: bool, c: char| if held { c } else { '-' };
        write!(f, "{}{}{}", letter(self.read, 'R'), letter(self.write, 'W'), letter(self.grant, 'G'))
    }
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PdInfo {
    pub name: String,
    /// Index of the parent PD, for child PDs (their faults go to the parent).
    pub parent: Option<u32>,
    /// What the monitor does when this PD faults (`on_fault` in the
    /// description; children are their parent's business and stay
    /// [`FaultPolicy::Stop`]).
    pub on_fault: FaultPolicy,
    /// The PD's private writable memory, as runs of 4 KiB frames: the
    /// writable pages of its program image and its stack. A restart
    /// zeroes each and copies back its [`Spec::fills`] and
    /// [`Spec::paddr_patches`], which makes it what the initialiser
    /// made. Memory regions (shared or not) are not in it: a PD
    /// re-initialises what it keeps there, and a peer may rely on it.
    pub reset_frames: Vec<FrameRun>,
    /// The monitor honours this PD's fault-injection requests
    /// ([`crate::monitor_protocol::LABEL_INJECT_FAULT`]): a test PD
    /// (`inject_faults="true"`), never in a deployed system (the builder
    /// says so loudly in its report and on its output).
    pub fault_injector: bool,
}

/// `count` consecutive frame objects from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRun {
    pub first: ObjId,
    pub count: u32,
}

/// A PD's fault policy: `on_fault` of `<protection_domain>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FaultPolicy {
    /// Report the fault and leave the PD stopped (the default: as Microkit
    /// without a fault handler).
    #[default]
    Stop,
    /// Report, reset the PD's memory to its image and start it again, at
    /// once, after every fault.
    Restart,
    /// As [`FaultPolicy::Restart`], with the delays and the limit of
    /// `pds-monitor-core`'s `restart::Backoff`: a PD that keeps faulting
    /// is started again later and later, then left stopped.
    RestartBackoff,
}

impl FaultPolicy {
    /// The attribute value that names it.
    pub fn name(self) -> &'static str {
        match self {
            FaultPolicy::Stop => "stop",
            FaultPolicy::Restart => "restart",
            FaultPolicy::RestartBackoff => "restart-backoff",
        }
    }
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
    /// A decoded spec may hold any counts: a total above `u32::MAX` is
    /// `u32::MAX`, more than any slot space holds, never a wrapped small
    /// number.
    pub fn instance_count(&self) -> u32 {
        self.objects.iter().fold(0u32, |total, o| total.saturating_add(o.count))
    }

    /// Whether PD `pd` accepts protected calls (or has children): its
    /// input capability ([`crate::cspace::INPUT`]) is an endpoint, on which
    /// callers wait for it.
    pub fn accepts_calls(&self, pd: u32) -> bool {
        let Some(cnode) = self.threads.iter().find(|t| t.pd == pd).map(|t| t.cspace) else {
            return false;
        };
        self.caps.iter().filter(|c| c.cnode == cnode && c.slot == crate::cspace::INPUT).any(|c| match c.source {
            CapSource::Object(id) => self.locate(id).is_some_and(|(o, _)| o.kind == ObjectKind::Endpoint),
            _ => false,
        })
    }

    /// The run an instance belongs to and its index within the run.
    pub fn locate(&self, id: ObjId) -> Option<(&Object, u32)> {
        let mut first = 0u32;
        for o in &self.objects {
            let end = first.saturating_add(o.count);
            if id < end {
                return Some((o, id - first));
            }
            first = end;
        }
        None
    }
}
