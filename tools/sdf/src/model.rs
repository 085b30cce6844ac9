//! The validated system description.
//!
//! A [`SystemDescription`] returned by [`crate::parse_str`] or
//! [`crate::parse_file`] satisfies every rule the crate checks:
//! names resolve, ids are in range and unique, mappings fit and do not
//! overlap. The system builder relies on that and does not re-check.

use std::fmt;
use std::path::PathBuf;

use net_config::NodeAddress;
use net_filter::{Filter, FilterKind};

use crate::diagnostic::Loc;

/// A whole `microkit.system` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemDescription {
    /// The file it was read from (as given to the parser).
    pub file: PathBuf,
    /// Top-level protection domains; children are nested in their parents.
    pub protection_domains: Vec<ProtectionDomain>,
    pub memory_regions: Vec<MemoryRegion>,
    pub channels: Vec<Channel>,
    /// The `<network>` element. Its regions, maps and channels are already
    /// among the others, with [`Origin::Network`].
    pub network: Option<Network>,
}

impl SystemDescription {
    /// Every protection domain, depth-first with parents before their
    /// children: the same order as their start tags in the file. A PD's index
    /// in this list is its global index.
    pub fn all_pds(&self) -> Vec<&ProtectionDomain> {
        fn visit<'a>(pd: &'a ProtectionDomain, out: &mut Vec<&'a ProtectionDomain>) {
            out.push(pd);
            for child in &pd.children {
                visit(child, out);
            }
        }
        let mut out = Vec::new();
        for pd in &self.protection_domains {
            visit(pd, &mut out);
        }
        out
    }

    /// The protection domain called `name`, at any depth.
    pub fn pd(&self, name: &str) -> Option<&ProtectionDomain> {
        self.all_pds().into_iter().find(|pd| pd.name == name)
    }

    /// The protection domain called `name`, at any depth, to change.
    pub(crate) fn pd_mut(&mut self, name: &str) -> Option<&mut ProtectionDomain> {
        fn find<'a>(pds: &'a mut [ProtectionDomain], name: &str) -> Option<&'a mut ProtectionDomain> {
            for pd in pds {
                if pd.name == name {
                    return Some(pd);
                }
                if let Some(found) = find(&mut pd.children, name) {
                    return Some(found);
                }
            }
            None
        }
        find(&mut self.protection_domains, name)
    }

    /// The memory region called `name`.
    pub fn region(&self, name: &str) -> Option<&MemoryRegion> {
        self.memory_regions.iter().find(|mr| mr.name == name)
    }
}

/// A `<protection_domain>`: one program with its own address space, CSpace
/// and thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectionDomain {
    pub name: String,
    pub priority: u8,
    /// Other PDs may make protected procedure calls to this one.
    pub pp: bool,
    /// Passive PDs give up their scheduling context after `init`.
    pub passive: bool,
    pub stack_size: u64,
    /// What the monitor does when this PD faults (`on_fault`).
    pub on_fault: OnFault,
    /// The monitor makes any PD fault on this PD's request
    /// (`inject_faults="true"`): for test systems only.
    pub inject_faults: bool,
    /// The ELF to run, resolved against the directory of the `.system` file.
    pub program_image: PathBuf,
    pub program_image_loc: Loc,
    pub maps: Vec<Map>,
    pub irqs: Vec<Irq>,
    pub ioports: Vec<IoPort>,
    pub pci_devices: Vec<PciDevice>,
    pub setvars: Vec<SetVar>,
    /// Child PDs, whose faults this PD handles.
    pub children: Vec<ProtectionDomain>,
    /// This PD's id in its parent's child id space; `Some` exactly for children.
    pub child_id: Option<u8>,
    pub loc: Loc,
}

/// A PD's fault policy, the `on_fault` attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFault {
    /// `stop` (the default): the fault is reported and the PD left stopped.
    #[default]
    Stop,
    /// `restart`: the PD is reset to its image and started again at once.
    Restart,
    /// `restart-backoff`: restarted later and later while it keeps
    /// faulting, then left stopped.
    RestartBackoff,
}

/// A `<map>`: a memory region mapped into a PD's address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// Name of the mapped [`MemoryRegion`].
    pub mr: String,
    pub vaddr: u64,
    pub perms: Perms,
    pub cached: bool,
    /// Symbol in the PD's image to patch with `vaddr`.
    pub setvar_vaddr: Option<String>,
    /// Symbol in the PD's image to patch with the region's size in bytes
    /// (a `u64`), as in Microkit 2: a PD that sizes its tables by the
    /// region it is given.
    pub setvar_size: Option<String>,
    pub loc: Loc,
    pub origin: Origin,
}

/// Access rights of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    /// The default when `perms` is not given.
    pub const READ_WRITE: Perms = Perms { read: true, write: true, execute: false };
}

/// The letters of the rights granted, as written in the `perms` attribute.
impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (granted, letter) in [(self.read, "r"), (self.write, "w"), (self.execute, "x")] {
            if granted {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// The page size a memory region is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageSize {
    /// 4 KiB.
    Small,
    /// 2 MiB.
    Large,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Small => 0x1000,
            PageSize::Large => 0x20_0000,
        }
    }
}

/// A `<memory_region>`: physical memory that PDs may map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub name: String,
    /// Size in bytes; a multiple of the page size.
    pub size: u64,
    pub page_size: PageSize,
    /// Fixed physical address (device memory), aligned to the page size;
    /// `None` lets the builder allocate RAM.
    pub phys_addr: Option<u64>,
    pub loc: Loc,
    pub origin: Origin,
}

impl MemoryRegion {
    /// Number of pages the region is made of (`size` is a whole number of
    /// pages in a validated description).
    pub fn page_count(&self) -> u64 {
        self.size.div_ceil(self.page_size.bytes())
    }
}

/// A `<channel>` between two PDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub ends: [ChannelEnd; 2],
    pub loc: Loc,
    pub origin: Origin,
}

/// One `<end>` of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEnd {
    /// Name of the PD at this end.
    pub pd: String,
    /// The id this PD uses for the channel.
    pub id: u8,
    /// This end may make protected procedure calls to the other end, either
    /// because it says `pp="true"` or, when neither end sets `pp`, because
    /// the other PD has `pp="true"`.
    pub pp: bool,
    /// This end may notify the other end.
    pub notify: bool,
    /// The name the PD's program knows this channel by (`setvar_id`): the
    /// builder writes `id` into the program's `__microkit_id_<name>`.
    pub setvar_id: Option<String>,
    pub loc: Loc,
}

/// An `<irq>`: an IOAPIC interrupt delivered to a PD as a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    /// Shares the PD's id space with its channel ends.
    pub id: u8,
    pub ioapic: u32,
    pub pin: u32,
    pub level_triggered: bool,
    pub active_low: bool,
    /// CPU vector; unique in the system. Defaults to the pin number.
    pub vector: u32,
    /// The name the PD's program knows this interrupt's channel by.
    pub setvar_id: Option<String>,
    pub loc: Loc,
}

/// An `<ioport>`: a range of x86 I/O ports a PD may access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoPort {
    /// Id in the PD's I/O port id space (separate from channel ids).
    pub id: u8,
    /// First port.
    pub addr: u16,
    /// Number of ports; `addr + size <= 0x10000`.
    pub size: u16,
    pub loc: Loc,
}

impl IoPort {
    /// One past the last port of the range.
    pub fn end(&self) -> u32 {
        u32::from(self.addr) + u32::from(self.size)
    }
}

/// A `<setvar>`: a symbol in the PD's image patched with a region's
/// physical address (`region_paddr`, as in Microkit) or its size in bytes
/// (`region_size`, an extension: a driver that hands a client's region to a
/// device must know where it ends, and the description is what sizes it),
/// or with a run of disk sectors (`sectors="FIRST-LAST"`, an extension: the
/// window of the disk a block driver lets its client use), or with a number
/// (`value="N"`, an extension: a setting, such as a client's quota).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetVar {
    pub symbol: String,
    /// Name of the memory region whose address or size is written; empty
    /// for [`SetVarValue::Sectors`] and [`SetVarValue::Number`], which name
    /// none.
    pub region: String,
    pub value: SetVarValue,
    /// For [`SetVarValue::Paddr`] in a PD that drives a PCI device: what
    /// the device may do with the region by DMA behind an IOMMU (`dma`,
    /// an extension; default [`DmaAccess::ReadWrite`]).
    pub dma: DmaAccess,
    pub loc: Loc,
}

/// What a device may do with one of its DMA regions (`dma="r"`, `"w"` or
/// `"rw"` on a `<setvar region_paddr>`): read it (memory to device, e.g.
/// frames to send), write it (device to memory, e.g. blocks read from a
/// disk), or both (queues). The region is mapped into the device's
/// IOSpace with exactly these rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaAccess {
    Read,
    Write,
    ReadWrite,
}

impl DmaAccess {
    /// Whether the device may read the region.
    pub fn device_reads(self) -> bool {
        self != DmaAccess::Write
    }

    /// Whether the device may write the region.
    pub fn device_writes(self) -> bool {
        self != DmaAccess::Read
    }

    /// The access that allows both `self` and `other`.
    pub fn union(self, other: DmaAccess) -> DmaAccess {
        if self == other {
            self
        } else {
            DmaAccess::ReadWrite
        }
    }
}

/// What a [`SetVar`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetVarValue {
    /// The region's physical address (`region_paddr`).
    Paddr,
    /// The region's size in bytes (`region_size`).
    Size,
    /// The sectors `first..=last` (`sectors="FIRST-LAST"`), written as two
    /// `u64`s: `first`, then `last + 1` (`lib_blk_protocol::Window`).
    /// `first <= last < u64::MAX` in a parsed description.
    Sectors { first: u64, last: u64 },
    /// A number (`value="N"`, an extension): a setting the description
    /// gives the PD, such as a client's quota.
    Number(u64),
}

/// A `<pci_device>` (x86 extension): a PCI function the PD drives. The
/// initialiser finds it at boot (by vendor, device and instance), since
/// firmware assigns BAR addresses and interrupt lines, and grants exactly
/// what is described here: its BARs mapped, a read-only copy of its
/// configuration space, and its legacy interrupt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// Id in the PD's PCI device space (0..=7).
    pub id: u8,
    pub vendor: u16,
    pub device: u16,
    /// Which of several matching functions, in bus order (0 = first).
    pub instance: u8,
    /// Where to map a read-only snapshot of the 256-byte configuration space.
    pub config_vaddr: Option<u64>,
    pub setvar_config: Option<String>,
    /// The channel id (shared with channels and irqs) for its interrupt.
    pub irq: Option<u8>,
    /// The name the PD's program knows that interrupt's channel by.
    pub setvar_irq: Option<String>,
    pub bars: Vec<PciBar>,
    pub loc: Loc,
}

/// A `<bar>` of a `<pci_device>`: a memory BAR mapped uncached at `vaddr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciBar {
    /// BAR number, 0..=5.
    pub index: u8,
    pub vaddr: u64,
    /// Bytes to map; the BAR must be at least this large (checked at boot).
    pub size: u64,
    pub setvar_vaddr: Option<String>,
    pub loc: Loc,
}

/// Whether an item was written in the description or generated from
/// another element (its `loc` is then that element's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// Written as such in the description.
    #[default]
    Written,
    /// Generated by the `<network>` element: for the `<client>` of the PD
    /// named here, or, with `None`, for the network as a whole (the ARP
    /// table region).
    Network { client: Option<String> },
}

impl Origin {
    /// The origin as a parenthesised note after the item's name in a
    /// message, with a leading space; empty for written items.
    pub fn note(&self) -> String {
        match self {
            Origin::Written => String::new(),
            Origin::Network { client: Some(pd) } => format!(" (generated by <network> for its client `{pd}`)"),
            Origin::Network { client: None } => " (generated by <network>)".to_string(),
        }
    }

    /// The network client this item was generated for, if any.
    pub fn network_client(&self) -> Option<&str> {
        match self {
            Origin::Network { client } => client.as_deref(),
            Origin::Written => None,
        }
    }
}

/// The `<network>` element: a packet demultiplexer (the network driver's
/// one client) and the PDs it serves. See the `net-config` crate for the
/// layout the builder generates from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The demultiplexer PD.
    pub demux: String,
    /// The ARP daemon: one of the clients, owner of the ARP table.
    pub arpd: Option<String>,
    /// The node's IPv4 address, on-link prefix and gateway.
    pub node: NodeAddress,
    /// In file order: a client's index here is its index in the
    /// demultiplexer (`net_config::ClientRegion::mux_vaddr`, channel ids).
    pub clients: Vec<NetworkClient>,
    pub loc: Loc,
    /// Where the `demux` and `arpd` attributes are (the element's `loc`
    /// when absent), for diagnostics.
    pub demux_loc: Loc,
    pub arpd_loc: Loc,
}

impl Network {
    /// The client `pd` and its index.
    pub fn client(&self, pd: &str) -> Option<(usize, &NetworkClient)> {
        self.clients.iter().enumerate().find(|(_, c)| c.pd == pd)
    }

    /// The index of arpd among the clients.
    pub fn arpd_index(&self) -> Option<usize> {
        self.client(self.arpd.as_deref()?).map(|(n, _)| n)
    }
}

/// One `<client>` of the `<network>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkClient {
    /// The client PD.
    pub pd: String,
    /// Has a channel to arpd and the ARP table mapped read-only.
    pub arp: bool,
    /// May hold copy filters (`<watch>`, and at run time).
    pub may_copy: bool,
    /// Receives the IPv4 frames no filter claims (at most one client).
    pub unclaimed_ipv4: bool,
    /// The memory region it may send from in place (`send_from`: the
    /// transmit window `lib_net_protocol::TxWindow::Files`).
    pub send_from: Option<String>,
    /// `<grant>`s: what the client may claim, at boot and at run time.
    pub grant: Vec<NetworkFilter>,
    /// `<claim>`s (exclusive) and `<watch>`es (copy), in file order: what
    /// it holds from boot.
    pub claims: Vec<NetworkClaim>,
    pub loc: Loc,
    /// Where the `pd`, `arp`, `unclaimed_ipv4` and `send_from` attributes
    /// are (the element's `loc` when absent), for diagnostics.
    pub pd_loc: Loc,
    pub arp_loc: Loc,
    pub unclaimed_ipv4_loc: Loc,
    pub send_from_loc: Loc,
}

impl NetworkClient {
    /// The granted filters.
    pub fn grant_filters(&self) -> Vec<Filter> {
        self.grant.iter().map(|g| g.filter).collect()
    }
}

/// A `<grant>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkFilter {
    pub filter: Filter,
    pub loc: Loc,
}

/// A `<claim>` ([`FilterKind::Exclusive`]) or `<watch>` ([`FilterKind::Copy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkClaim {
    pub filter: Filter,
    pub kind: FilterKind,
    pub loc: Loc,
}
