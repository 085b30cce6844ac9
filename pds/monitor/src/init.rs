//! Executing the boot spec, step by step, in the order the kernel needs:
//! objects, address-space IDs, frame contents, mappings, the devices'
//! IOSpaces (where the machine has an IOMMU), IRQs and IO ports,
//! capabilities (checked against the least-privilege rules before, and
//! against the plan with the kernel after), threads.

use crate::{fail, pci};
use alloc::vec::Vec;
use pds_boot_spec::untyped::{self, Untyped};
use pds_boot_spec::{cspace, rights, CapSource, MapKind, ObjId, ObjectKind, Spec};
use pds_monitor_core::caps;
use pds_monitor_core::iommu::{self, Platform};
use sel4::{init_caps, CNode, CPtr, CapData, CapRights, ObjectType, Word};

/// A device's DMA regions for its boot line: `a (rw), b (r)`, or `no
/// memory` (written piece by piece: the initialiser formats nothing on
/// the heap).
struct DmaList<'a>(&'a [pds_boot_spec::DmaWindow]);

impl core::fmt::Display for DmaList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no memory");
        }
        for (i, w) in self.0.iter().enumerate() {
            let comma = if i == 0 { "" } else { ", " };
            write!(f, "{comma}{} ({})", w.region, w.access())?;
        }
        Ok(())
    }
}

/// The root task's CNode, addressed with full-word CPtrs.
const ROOT: CPtr = init_caps::CNODE;
const DEPTH: u8 = 64;
/// The kernel refuses to retype more objects than this in one call.
const RETYPE_FAN_OUT: u64 = 256;
/// Where the initialiser maps a frame for a moment to fill it: a 2 MiB window
/// far from its own image, boot info and IPC buffer.
const SCRATCH_VADDR: u64 = 0x40_0000_0000;

/// Reads the time-stamp counter (boot timing only).
pub fn cycles() -> u64 {
    // SAFETY: rdtsc only reads a counter; no memory is touched.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Maps the 4 KiB frame whose (unmapped) capability is in `slot` at the
/// scratch address, runs `f` on its bytes, and unmaps it. The monitor
/// keeps each frame object's original capability unmapped (every
/// mapping into a PD uses a copy, `map_all`), so it can do this at any
/// time: the initialiser to fill frames, the monitor to reset them.
pub fn with_frame(slot: CPtr, f: impl FnOnce(&mut [u8])) -> sel4::Result<()> {
    let page = sel4::X86Page(slot);
    page.map(init_caps::VSPACE, SCRATCH_VADDR, CapRights::READ_WRITE, sel4::vm_attributes::DEFAULT)?;
    // SAFETY: the frame was just mapped read-write at SCRATCH_VADDR and
    // nothing else refers to that window while `f` runs.
    f(unsafe { core::slice::from_raw_parts_mut(SCRATCH_VADDR as *mut u8, 4096) });
    page.unmap()
}

/// What the monitor keeps of the built system: its fault endpoint, and
/// where the objects' capabilities are (object `id` at `objects + id`), so
/// that it can stop a PD's thread.
pub struct Booted {
    pub fault_ep: CPtr,
    pub objects: CPtr,
    /// TSC when the PDs were started.
    pub started: u64,
    /// How long each phase of the boot took.
    pub phases: Phases,
}

/// The initialiser's phases, in order, for the boot's time line.
#[derive(Clone, Copy, Debug)]
pub enum Phase {
    /// Kernel objects made (retypes, ASIDs).
    Objects,
    /// Program images, PCI configurations and physical addresses written.
    Fill,
    /// Every mapping into the PDs' address spaces.
    Map,
    /// The devices' IOMMU domains (VT-d) filled.
    IoSpaces,
    /// Interrupts, the rights check, capabilities installed.
    Caps,
    /// The installed CSpaces checked against the plan.
    Check,
    /// Threads configured and started.
    Start,
}

impl Phase {
    pub const ALL: [Phase; 7] =
        [Phase::Objects, Phase::Fill, Phase::Map, Phase::IoSpaces, Phase::Caps, Phase::Check, Phase::Start];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Objects => "objects",
            Phase::Fill => "images",
            Phase::Map => "mappings",
            Phase::IoSpaces => "IOMMU",
            Phase::Caps => "capabilities",
            Phase::Check => "check",
            Phase::Start => "threads",
        }
    }
}

/// TSC cycles each [`Phase`] took.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    last: u64,
    pub cycles: [u64; Phase::ALL.len()],
}

impl Phases {
    fn new() -> Self {
        Phases { last: cycles(), cycles: [0; Phase::ALL.len()] }
    }

    /// `phase` ends now.
    fn end(&mut self, phase: Phase) {
        let now = cycles();
        self.cycles[phase as usize] = now - self.last;
        self.last = now;
    }
}

impl Booted {
    /// The capability to object `id` (e.g. a thread's TCB).
    pub fn object(&self, id: ObjId) -> CPtr {
        self.objects + CPtr::from(id)
    }
}

pub struct Initialiser<'a> {
    spec: &'a Spec,
    data: &'a [u8],
    untypeds: Vec<Untyped>,
    first_untyped_slot: CPtr,
    /// Slot holding the cap of object 0; object `id` is at `objects + id`.
    objects: CPtr,
    next_slot: CPtr,
    slot_end: CPtr,
    irq_slots: Vec<CPtr>,
    pci: Vec<pci::Resolved>,
    /// Boot info's `numIOPTLevels`: whether devices are behind an IOMMU.
    platform: Platform,
}

/// Unwraps the result of a kernel invocation or stops the boot, naming the
/// step that failed.
trait OrFail<T> {
    fn or_fail(self, what: core::fmt::Arguments) -> T;
}
impl<T> OrFail<T> for sel4::Result<T> {
    fn or_fail(self, what: core::fmt::Arguments) -> T {
        self.unwrap_or_else(|e| fail(format_args!("{what}: {e:?}")))
    }
}

/// The kernel object type, the `size_bits` argument of Retype, and the
/// object's size in bytes as log2.
fn kernel_type(kind: ObjectKind) -> (ObjectType, Word, u8) {
    let fixed = |t: ObjectType| (t, 0, t.fixed_size_bits().expect("fixed-size object"));
    match kind {
        ObjectKind::Tcb => fixed(ObjectType::Tcb),
        ObjectKind::Endpoint => fixed(ObjectType::Endpoint),
        ObjectKind::Notification => fixed(ObjectType::Notification),
        ObjectKind::CNode { radix_bits } => {
            (ObjectType::CapTable, Word::from(radix_bits), radix_bits + sel4::SLOT_BITS)
        }
        ObjectKind::VSpace => fixed(ObjectType::X64_Pml4),
        ObjectKind::Pdpt => fixed(ObjectType::X86_Pdpt),
        ObjectKind::PageDirectory => fixed(ObjectType::X86_PageDirectory),
        ObjectKind::PageTable => fixed(ObjectType::X86_PageTable),
        ObjectKind::Frame { size_bits: 21, .. } => fixed(ObjectType::X86_LargePage),
        ObjectKind::Frame { .. } | ObjectKind::PciBar { .. } => fixed(ObjectType::X86_4K),
    }
}

impl<'a> Initialiser<'a> {
    pub fn new(bootinfo: &'a sel4::BootInfo, spec: &'a Spec, data: &'a [u8]) -> Self {
        let untypeds =
            bootinfo.untypeds().iter().map(|u| Untyped::new(u.paddr, u.size_bits, u.is_device != 0)).collect();
        // Copy out of the packed struct before use.
        let empty = bootinfo.empty;
        let untyped = bootinfo.untyped;
        let objects = empty.start;
        let next_slot = objects + Word::from(spec.instance_count());
        if next_slot > empty.end {
            fail(format_args!(
                "{} objects need more CNode slots than the root task has ({})",
                spec.instance_count(),
                empty.end - empty.start
            ));
        }
        Initialiser {
            spec,
            data,
            untypeds,
            first_untyped_slot: untyped.start,
            objects,
            next_slot,
            slot_end: empty.end,
            irq_slots: Vec::new(),
            pci: Vec::new(),
            platform: Platform::from_bootinfo(bootinfo.num_io_pt_levels),
        }
    }

    /// Builds the whole system and returns what the monitor needs of it.
    pub fn run(mut self) -> Booted {
        let mut phases = Phases::new();
        self.pci = pci::resolve(&self.spec.pci_devices);
        self.create_objects();
        self.assign_asids();
        self.map_scratch_tables();
        phases.end(Phase::Objects);
        self.fill_frames();
        self.fill_pci_configs();
        self.patch_paddrs();
        phases.end(Phase::Fill);
        self.map_all();
        phases.end(Phase::Map);
        self.map_iospaces();
        phases.end(Phase::IoSpaces);
        self.get_irqs();
        let rules = self.check_rights();
        self.install_caps();
        phases.end(Phase::Caps);
        self.check_installed(rules);
        phases.end(Phase::Check);
        self.start_threads();
        phases.end(Phase::Start);
        Booted { fault_ep: self.slot(self.spec.fault_endpoint), objects: self.objects, started: cycles(), phases }
    }

    fn slot(&self, id: ObjId) -> CPtr {
        self.objects + CPtr::from(id)
    }

    fn alloc_slot(&mut self) -> CPtr {
        if self.next_slot >= self.slot_end {
            fail(format_args!("out of root CNode slots"));
        }
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// Retypes `count` objects from untyped `ut` into consecutive slots.
    fn retype(&mut self, ut: usize, ty: ObjectType, size_param: Word, bits: u8, count: u64, dest: CPtr) {
        let mut done = 0;
        while done < count {
            let n = (count - done).min(RETYPE_FAN_OUT);
            sel4::Untyped(self.first_untyped_slot + ut as u64)
                .retype(ty as Word, size_param, ROOT, 0, 0, dest + done, n)
                .or_fail(format_args!("retype {n} x {ty:?} into slot {:#x}", dest + done));
            self.untypeds[ut].take(bits, n);
            done += n;
        }
    }

    /// Creates every object. Runs at fixed physical addresses come first
    /// (padding the untyped up to the address); the rest are placed largest
    /// first, which keeps alignment waste small.
    fn create_objects(&mut self) {
        let mut runs: Vec<(ObjId, ObjectKind, u32)> = Vec::with_capacity(self.spec.objects.len());
        let mut id = 0;
        for o in &self.spec.objects {
            runs.push((id, o.kind, o.count));
            id += o.count;
        }
        // Runs at fixed addresses, in address order: padding an untyped up
        // to an address only works forwards.
        let mut fixed: Vec<(u64, ObjId, ObjectKind, u32)> = runs
            .iter()
            .filter_map(|&(first, kind, count)| Some((self.fixed_paddr(kind)?, first, kind, count)))
            .collect();
        fixed.sort_by_key(|f| f.0);
        for (paddr, first, kind, count) in fixed {
            self.create_at(first, kind, count, paddr);
        }
        runs.retain(|&(_, kind, _)| self.fixed_paddr(kind).is_none());
        runs.sort_by_key(|&(_, kind, count)| core::cmp::Reverse((kernel_type(kind).2, count)));
        for (first, kind, count) in runs {
            let (ty, size_param, bits) = kernel_type(kind);
            let Some(p) = untyped::place(&self.untypeds, bits, u64::from(count)) else {
                fail(format_args!(
                    "out of memory: no untyped fits {count} x {ty:?} (2^{bits} bytes each); \
                     the builder's memory check should have caught this, give QEMU more memory (-m)"
                ));
            };
            self.retype(p.untyped, ty, size_param, bits, u64::from(count), self.slot(first));
        }
    }

    /// Where a run must start, if the spec or the hardware fixes it.
    fn fixed_paddr(&self, kind: ObjectKind) -> Option<u64> {
        match kind {
            ObjectKind::Frame { paddr, .. } => paddr,
            ObjectKind::PciBar { device, bar } => Some(self.pci[device as usize].bar_base(bar)),
            _ => None,
        }
    }

    fn create_at(&mut self, first: ObjId, kind: ObjectKind, count: u32, paddr: u64) {
        let (ty, size_param, bits) = kernel_type(kind);
        let len = u64::from(count) << bits;
        let Some(ut) = untyped::containing(&self.untypeds, paddr, len) else {
            fail(format_args!(
                "no untyped memory covers {paddr:#x}..{:#x} (phys_addr in the description)",
                paddr + len
            ));
        };
        let padding: Vec<u8> = self.untypeds[ut]
            .padding_to(paddr, bits)
            .unwrap_or_else(|| fail(format_args!("physical address {paddr:#x} is already in use")))
            .collect();
        for fill_bits in padding {
            let slot = self.alloc_slot();
            self.retype(ut, ObjectType::Untyped, Word::from(fill_bits), fill_bits, 1, slot);
        }
        self.retype(ut, ty, size_param, bits, u64::from(count), self.slot(first));
    }

    fn instances(&self, pred: impl Fn(ObjectKind) -> bool) -> Vec<ObjId> {
        let mut ids = Vec::new();
        let mut id = 0;
        for o in &self.spec.objects {
            if pred(o.kind) {
                ids.extend(id..id + o.count);
            }
            id += o.count;
        }
        ids
    }

    fn assign_asids(&mut self) {
        for id in self.instances(|k| k == ObjectKind::VSpace) {
            sel4::X86AsidPool(init_caps::ASID_POOL)
                .assign(self.slot(id))
                .or_fail(format_args!("assign an ASID to vspace object {id}"));
        }
    }

    /// Paging structures for the scratch window in the root task's own
    /// address space. A level that already exists is kept.
    fn map_scratch_tables(&mut self) {
        let attr = sel4::vm_attributes::DEFAULT;
        for ty in [ObjectType::X86_Pdpt, ObjectType::X86_PageDirectory, ObjectType::X86_PageTable] {
            let bits = ty.fixed_size_bits().expect("paging structure");
            let slot = self.alloc_slot();
            let ut = untyped::place(&self.untypeds, bits, 1)
                .unwrap_or_else(|| fail(format_args!("no memory for the scratch page tables")))
                .untyped;
            self.retype(ut, ty, 0, bits, 1, slot);
            let r = match ty {
                ObjectType::X86_Pdpt => sel4::X86Pdpt(slot).map(init_caps::VSPACE, SCRATCH_VADDR, attr),
                ObjectType::X86_PageDirectory => {
                    sel4::X86PageDirectory(slot).map(init_caps::VSPACE, SCRATCH_VADDR, attr)
                }
                _ => sel4::X86PageTable(slot).map(init_caps::VSPACE, SCRATCH_VADDR, attr),
            };
            match r {
                Ok(()) | Err(sel4::Error::DeleteFirst) => {}
                Err(e) => fail(format_args!("map scratch {ty:?}: {e:?}")),
            }
        }
    }

    /// Maps a 4 KiB frame at the scratch address, runs `f` on it, unmaps it.
    fn with_frame(&self, frame: ObjId, f: impl FnOnce(&mut [u8])) {
        with_frame(self.slot(frame), f).or_fail(format_args!("map frame object {frame} for loading"));
    }

    /// Copies PD image bytes into their frames (fresh frames are zeroed by
    /// the kernel, so `.bss` and gaps need nothing).
    fn fill_frames(&mut self) {
        let fills = &self.spec.fills;
        let mut i = 0;
        while i < fills.len() {
            let frame = fills[i].frame;
            let end = i + fills[i..].iter().take_while(|f| f.frame == frame).count();
            self.with_frame(frame, |page| {
                for fill in &fills[i..end] {
                    let src = fill.data_offset as usize..fill.data_offset as usize + fill.len as usize;
                    let dst = fill.frame_offset as usize..fill.frame_offset as usize + fill.len as usize;
                    match (self.data.get(src), page.get_mut(dst)) {
                        (Some(s), Some(d)) => d.copy_from_slice(s),
                        _ => fail(format_args!("fill of frame object {frame} is out of bounds")),
                    }
                }
            });
            i = end;
        }
    }

    /// Read-only snapshots of PCI configuration spaces for their drivers.
    fn fill_pci_configs(&mut self) {
        for fill in &self.spec.pci_config_fills {
            let address = self.pci[fill.device as usize].address;
            self.with_frame(fill.frame, |page| pci::snapshot(address, page));
        }
    }

    /// `setvar region_paddr`: write a region's physical address into a PD.
    fn patch_paddrs(&mut self) {
        for p in &self.spec.paddr_patches {
            let paddr = sel4::X86Page(self.slot(p.region))
                .get_address()
                .or_fail(format_args!("physical address of frame object {}", p.region));
            self.with_frame(p.frame, |page| {
                let at = p.offset as usize;
                match page.get_mut(at..at + 8) {
                    Some(dst) => dst.copy_from_slice(&paddr.to_le_bytes()),
                    None => fail(format_args!("setvar patch at offset {at} is out of its frame")),
                }
            });
        }
    }

    /// Copies the cap of object `id` into a fresh slot (a frame cap maps
    /// once, so every mapping of a shared region gets its own copy).
    fn copy_cap(&mut self, id: ObjId) -> CPtr {
        let dest = self.alloc_slot();
        CNode(ROOT)
            .copy(dest, DEPTH, ROOT, self.slot(id), DEPTH, CapRights::ALL)
            .or_fail(format_args!("copy cap of object {id}"));
        dest
    }

    fn map_all(&mut self) {
        let attr = sel4::vm_attributes::DEFAULT;
        for m in &self.spec.mappings {
            let vspace = self.slot(m.vspace);
            let what = format_args!("map object {} at {:#x} in vspace object {}", m.object, m.vaddr, m.vspace);
            match m.kind {
                MapKind::Pdpt => sel4::X86Pdpt(self.slot(m.object)).map(vspace, m.vaddr, attr).or_fail(what),
                MapKind::PageDirectory => {
                    sel4::X86PageDirectory(self.slot(m.object)).map(vspace, m.vaddr, attr).or_fail(what)
                }
                MapKind::PageTable => sel4::X86PageTable(self.slot(m.object)).map(vspace, m.vaddr, attr).or_fail(what),
                MapKind::Frame { writable, cached } => {
                    let rights = if writable { CapRights::READ_WRITE } else { CapRights::READ_ONLY };
                    let attr = if cached { attr } else { sel4::vm_attributes::CACHE_DISABLED };
                    let copy = self.copy_cap(m.object);
                    sel4::X86Page(copy).map(vspace, m.vaddr, rights, attr).or_fail(what)
                }
            }
        }
    }

    /// Gives each PCI device its IOSpace: its DMA regions (the spec's
    /// `PciDevice::dma`), mapped with their access (read, write or both)
    /// at I/O virtual addresses equal to their physical addresses, and
    /// nothing else
    /// (`pds_monitor_core::iommu`). Runs before any driver starts, so no
    /// device is ever programmed without its IOSpace in place.
    fn map_iospaces(&mut self) {
        let Platform::Iommu { levels } = self.platform else {
            if self.spec.pci_devices.iter().any(|d| !d.dma.is_empty()) {
                crate::log!("no IOMMU (no DMAR table): PCI devices reach all of memory by DMA");
            }
            return;
        };
        for index in 0..self.spec.pci_devices.len() {
            let address = self.pci[index].address;
            let device = &self.spec.pci_devices[index];
            let domain = iommu::domain_id(index)
                .unwrap_or_else(|| fail(format_args!("no VT-d domain id left for PCI device {index}")));
            let iospace = self.alloc_slot();
            CNode(ROOT)
                .mint(
                    iospace,
                    DEPTH,
                    ROOT,
                    init_caps::IO_SPACE,
                    DEPTH,
                    CapRights::ALL,
                    CapData(iommu::iospace_cap_data(domain, address)),
                )
                .or_fail(format_args!("mint the IOSpace of PCI {address} (domain {domain})"));
            let mut pages = 0u64;
            let mut tables = 0u64;
            for window in &device.dma {
                let rights = CapRights::new(false, window.device_reads, window.device_writes);
                for id in window.frames.first..window.frames.first + window.frames.count {
                    let paddr = sel4::X86Page(self.slot(id))
                        .get_address()
                        .or_fail(format_args!("physical address of frame object {id}"));
                    let copy = self.copy_cap(id);
                    tables += self.map_io(copy, iospace, rights, paddr, levels, address);
                    pages += 1;
                }
            }
            crate::log!(
                "IOMMU: PCI {address} ({}) may DMA to {} ({pages} pages, {tables} IO page tables, domain {domain}), nothing else",
                device.owner,
                DmaList(&device.dma)
            );
        }
    }

    /// Maps the frame capability `frame` (a copy: it maps once) into
    /// `iospace` at `ioaddr` with `rights` (Read: the device may read it,
    /// Write: write it), adding the IO page tables that are missing
    /// on the way (at most one per level). Returns how many it added.
    fn map_io(
        &mut self,
        frame: CPtr,
        iospace: CPtr,
        rights: CapRights,
        ioaddr: u64,
        levels: u64,
        address: pci::Address,
    ) -> u64 {
        let mut added = 0;
        loop {
            match sel4::X86Page(frame).map_io(iospace, rights, ioaddr) {
                Ok(()) => return added,
                Err(sel4::Error::FailedLookup) if added < levels => {
                    let ty = ObjectType::X86_IoPageTable;
                    let bits = ty.fixed_size_bits().expect("IO page table");
                    let slot = self.alloc_slot();
                    let ut = untyped::place(&self.untypeds, bits, 1)
                        .unwrap_or_else(|| fail(format_args!("no memory for an IO page table")))
                        .untyped;
                    self.retype(ut, ty, 0, bits, 1, slot);
                    sel4::X86IoPageTable(slot)
                        .map(iospace, ioaddr)
                        .or_fail(format_args!("map an IO page table for PCI {address} at {ioaddr:#x}"));
                    added += 1;
                }
                Err(e) => fail(format_args!("map frame {ioaddr:#x} into the IOSpace of PCI {address}: {e:?}")),
            }
        }
    }

    fn get_irqs(&mut self) {
        let pins: Vec<(u32, u32)> = self
            .spec
            .irqs
            .iter()
            .map(|irq| match irq.pci_device {
                Some(d) => (irq.ioapic, u32::from(self.pci[d as usize].interrupt_line)),
                None => (irq.ioapic, irq.pin),
            })
            .collect();
        for (i, pin) in pins.iter().enumerate() {
            if pins[..i].contains(pin) {
                fail(format_args!(
                    "two IRQs resolve to IOAPIC {} pin {}: a PCI interrupt line is shared; \
                     put the devices in slots with different lines (QEMU: -device ...,addr=N)",
                    pin.0, pin.1
                ));
            }
        }
        for (irq, &(_, pin)) in self.spec.irqs.iter().zip(&pins) {
            let handler = self.alloc_slot();
            sel4::IrqControl(init_caps::IRQ_CONTROL)
                .get_ioapic(
                    ROOT,
                    handler,
                    Word::from(DEPTH),
                    Word::from(irq.ioapic),
                    Word::from(pin),
                    Word::from(irq.level_triggered),
                    Word::from(irq.active_low),
                    Word::from(irq.vector),
                )
                .or_fail(format_args!("IOAPIC {} pin {pin} vector {}", irq.ioapic, irq.vector));
            let badged = self.alloc_slot();
            CNode(ROOT)
                .mint(
                    badged,
                    DEPTH,
                    ROOT,
                    self.slot(irq.notification),
                    DEPTH,
                    // The kernel only signals it (`capNtfnCanSend`).
                    CapRights::WRITE_ONLY,
                    CapData::badge(irq.badge),
                )
                .or_fail(format_args!("badge notification for irq pin {pin}"));
            sel4::IrqHandler(handler)
                .set_notification(badged)
                .or_fail(format_args!("bind irq pin {pin} to its notification"));
            // Issuing the handler unmasked the line; an interrupt that came
            // before the binding found no notification, and the kernel
            // masked the line ("Undelivered IRQ"), for good: nobody would
            // ever acknowledge it. The PIT, left periodic by the kernel's
            // boot, does that at random (every timer-driven line stopped
            // in a CI run). Unmask it now that interrupts have somewhere to
            // go; one already delivered to the notification only gets its
            // line unmasked early, which costs at most a second signal.
            sel4::IrqHandler(handler).ack().or_fail(format_args!("unmask irq pin {pin} after binding it"));
            self.irq_slots.push(handler);
        }
    }

    /// Refuses to boot a spec whose capabilities break the least-privilege
    /// rules (`pds_boot_spec::rights`), before any is minted: the rights
    /// minted are exactly the spec's, so this is what decides them.
    fn check_rights(&self) -> rights::Checked {
        rights::check(self.spec).unwrap_or_else(|violations| {
            for v in &violations {
                crate::log!("capability check FAILED: {v}");
            }
            fail(format_args!(
                "{} capabilities break the least-privilege rules: none minted, no PD started",
                violations.len()
            ))
        })
    }

    /// Asks the kernel whether every PD's CSpace holds capabilities in
    /// exactly the planned slots (`pds_monitor_core::caps`), prints the
    /// result, and stops the boot on a difference. Each question is put so
    /// that the expected answer comes from a call that succeeds, since a
    /// failing CNode call makes the debug kernel print an error: a planned
    /// slot is copied out (to a scratch slot, then deleted), an empty one
    /// receives a rightless copy of the fault endpoint, deleted at once.
    fn check_installed(&mut self, rules: rights::Checked) {
        let scratch = self.alloc_slot();
        let filler = self.slot(self.spec.fault_endpoint);
        let objects = self.objects;
        let slot_of = |id: ObjId| objects + CPtr::from(id);
        let result = caps::verify_installed(self.spec, rules, |cnode, slot, planned| {
            let pd_cnode = CNode(slot_of(cnode));
            let bits = cspace::RADIX_BITS;
            if planned {
                let copied = CNode(ROOT).copy(scratch, DEPTH, slot_of(cnode), slot, bits, CapRights::NONE);
                if copied.is_ok() {
                    CNode(ROOT).delete(scratch, DEPTH).or_fail(format_args!("delete the scratch copy of slot {slot}"));
                }
                copied.is_ok()
            } else {
                let empty = pd_cnode.copy(slot, bits, ROOT, filler, DEPTH, CapRights::NONE).is_ok();
                if empty {
                    pd_cnode.delete(slot, bits).or_fail(format_args!("delete the probe in slot {slot}"));
                }
                !empty
            }
        });
        match result {
            Ok(installed) => crate::log!("{installed}"),
            Err(mismatches) => {
                for m in &mismatches {
                    crate::log!("capability check FAILED: {m}");
                }
                fail(format_args!("{} CSpace slots differ from the plan: no PD started", mismatches.len()))
            }
        }
    }

    fn install_caps(&mut self) {
        for c in &self.spec.caps {
            let (src, data) = match c.source {
                CapSource::Object(id) => (self.slot(id), CapData::badge(c.badge)),
                CapSource::Irq(i) => (self.irq_slots[i as usize], CapData::NONE),
                // seL4 5.0 derives an IO port range from the root task's
                // cap to all ports by minting it with the range.
                CapSource::IoPort(i) => {
                    let r = &self.spec.ioports[i as usize];
                    (init_caps::IO_PORT, CapData::io_ports(r.first, r.last))
                }
            };
            let rights = CapRights::new(c.rights.grant, c.rights.read, c.rights.write);
            CNode(self.slot(c.cnode))
                .mint(c.slot, cspace::RADIX_BITS, ROOT, src, DEPTH, rights, data)
                .or_fail(format_args!("install cap into slot {} of cnode object {}", c.slot, c.cnode));
        }
    }

    fn start_threads(&mut self) {
        for t in &self.spec.threads {
            let name = self.spec.pds.get(t.pd as usize).map_or("?", |pd| pd.name.as_str());
            let tcb = sel4::Tcb(self.slot(t.tcb));
            tcb.configure(
                t.fault_ep,
                sel4::PrioProps::new(Word::from(t.priority), Word::from(t.priority)),
                self.slot(t.cspace),
                CapData::guard(0, Word::from(cspace::GUARD_SIZE)),
                self.slot(t.vspace),
                CapData(0),
                t.ipc_buffer_vaddr,
                self.slot(t.ipc_buffer),
            )
            .or_fail(format_args!("configure the thread of PD '{name}'"));
            let regs = sel4::UserContext { rip: t.entry, rsp: t.stack_top, ..Default::default() };
            let words = (core::mem::size_of::<sel4::UserContext>() / 8) as Word;
            tcb.write_registers(false, 0, words, regs).or_fail(format_args!("set the registers of PD '{name}'"));
            if let Some(ntfn) = t.bound_notification {
                tcb.bind_notification(self.slot(ntfn)).or_fail(format_args!("bind the notification of PD '{name}'"));
            }
            sel4::debug_name_thread(tcb.0, name);
        }
        for t in &self.spec.threads {
            sel4::Tcb(self.slot(t.tcb)).resume().or_fail(format_args!("start PD {}", t.pd));
        }
    }
}
