//! Laying out the system: every kernel object, mapping and capability.
//!
//! The result is a [`Plan`]: the boot [`Spec`] the initialiser executes, the
//! data blob holding PD images, and a readable account of each PD for the
//! report. Every decision about a PD's address space and CSpace is taken
//! here, on the host, where it can be checked and reported.

use crate::elf::{page_down, page_up, Program, PAGE};
use crate::network::{self, PatchError, Role};
use crate::Error;
use net_config::{CONFIG_BYTES, CONFIG_SYMBOL};
use pds_boot_spec::rights::{self, SlotRole};
use pds_boot_spec::{
    badge, cspace, CapInstall, CapSource, DmaWindow, FaultPolicy, Fill, FrameRun, IoPortRange, Irq, MapKind, Mapping,
    ObjId, Object, ObjectKind, PaddrPatch, PdInfo, Rights, Spec, Thread, PD_CHANNELS_SYMBOL, PD_CHILD_ENTRIES_SYMBOL,
    PD_NAME_LEN, PD_NAME_SYMBOL,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use tools_sdf::{
    Diagnostic, DmaAccess, MemoryRegion, OnFault, PageSize, ProtectionDomain, SetVarValue, SystemDescription,
};

pub use pds_boot_spec::layout::{IPC_BUFFER_VADDR, STACK_TOP};

const LARGE_PAGE: u64 = 2 << 20;

/// One range of a PD's address space, for the report.
#[derive(Clone, Debug)]
pub struct VirtualRange {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub what: String,
}

/// What the report says about one PD.
#[derive(Clone, Debug)]
pub struct PdPlan {
    pub name: String,
    pub priority: u8,
    pub pp: bool,
    pub passive: bool,
    /// The fault policy's name (`on_fault`).
    pub on_fault: &'static str,
    /// The monitor makes any PD fault on this PD's request (test systems).
    pub inject_faults: bool,
    pub stack_size: u64,
    pub program: PathBuf,
    pub entry: u64,
    pub parent: Option<String>,
    pub ranges: Vec<VirtualRange>,
    /// Every capability in the PD's CSpace, in slot order.
    pub caps: Vec<PdCap>,
    pub channels: Vec<String>,
    pub ioports: Vec<String>,
    pub irqs: Vec<String>,
    /// What each of its PCI devices may reach by DMA behind an IOMMU.
    pub dma: Vec<String>,
    /// The PD is in the `<network>` and the builder wrote its
    /// configuration into `__net_config` (`false`: a client that does not
    /// declare the symbol).
    pub net_config: Option<bool>,
}

/// One capability of a PD, for the report.
#[derive(Clone, Debug)]
pub struct PdCap {
    pub slot: u64,
    /// The rights it is minted with; `None` for kinds that have no rights
    /// bits (IRQ handler, I/O ports, TCB).
    pub rights: Option<Rights>,
    /// What it is: the object, the channel, the badge.
    pub what: String,
}

/// The builder's complete decision.
pub struct Plan {
    pub spec: Spec,
    pub data: Vec<u8>,
    /// Name of each object run in `spec.objects`.
    pub object_names: Vec<String>,
    pub pds: Vec<PdPlan>,
}

/// Objects created for one PD.
struct PdObjects {
    tcb: ObjId,
    cnode: ObjId,
    vspace: ObjId,
    notification: ObjId,
    endpoint: Option<ObjId>,
}

struct Planner<'a> {
    sys: &'a SystemDescription,
    /// CPU vectors taken by IRQs, so PCI interrupts get free ones.
    vectors: BTreeSet<u32>,
    spec: Spec,
    data: Vec<u8>,
    object_names: Vec<String>,
    next_id: ObjId,
    /// First frame of each memory region.
    regions: HashMap<String, ObjId>,
    errors: Vec<Diagnostic>,
}

impl Planner<'_> {
    fn add(&mut self, kind: ObjectKind, count: u32, name: String) -> ObjId {
        let id = self.next_id;
        self.spec.objects.push(Object { kind, count });
        self.object_names.push(name);
        self.next_id += count;
        id
    }

    fn error(&mut self, loc: tools_sdf::Loc, message: String, hint: &str) {
        self.errors.push(Diagnostic::new(&self.sys.file, loc, message, hint));
    }

    /// Installs a capability into `slot` of a PD's CSpace (`cnode`) and
    /// records it, with `what` it is, in the PD's part of the report.
    #[allow(clippy::too_many_arguments)]
    fn cap(
        &mut self,
        plan: &mut PdPlan,
        cnode: ObjId,
        slot: u64,
        source: CapSource,
        rights: Rights,
        badge: u64,
        what: String,
    ) {
        self.spec.caps.push(CapInstall { cnode, slot, source, rights, badge });
        let has_rights = SlotRole::of(slot).is_none_or(SlotRole::has_rights);
        plan.caps.push(PdCap { slot, rights: has_rights.then_some(rights), what });
    }
}

fn page_size_bits(p: PageSize) -> u8 {
    match p {
        PageSize::Small => 12,
        PageSize::Large => 21,
    }
}

/// Lays out the system. `programs` holds each PD's loaded image, in
/// [`SystemDescription::all_pds`] order.
pub fn plan(sys: &SystemDescription, mut programs: Vec<Program>) -> Result<Plan, Error> {
    let pds = sys.all_pds();
    let mut p = Planner {
        sys,
        vectors: pds.iter().flat_map(|pd| pd.irqs.iter().map(|i| i.vector)).collect(),
        spec: Spec::default(),
        data: Vec::new(),
        object_names: Vec::new(),
        next_id: 0,
        regions: HashMap::new(),
        errors: Vec::new(),
    };
    p.spec.fault_endpoint = p.add(ObjectKind::Endpoint, 1, "monitor fault endpoint".into());

    for mr in &sys.memory_regions {
        let kind = ObjectKind::Frame { size_bits: page_size_bits(mr.page_size), paddr: mr.phys_addr };
        let id = p.add(kind, mr.page_count() as u32, format!("memory region `{}`", mr.name));
        p.regions.insert(mr.name.clone(), id);
    }

    // Kernel objects of each PD first: protected calls and child faults need
    // the callee's endpoint before the caller's caps are planned.
    let index: HashMap<&str, usize> = pds.iter().enumerate().map(|(i, pd)| (pd.name.as_str(), i)).collect();
    let parents: Vec<Option<usize>> =
        pds.iter().map(|pd| pds.iter().position(|q| q.children.iter().any(|c| c.name == pd.name))).collect();
    let mut objects = Vec::new();
    for pd in &pds {
        let needs_endpoint = pd.pp || !pd.children.is_empty();
        objects.push(PdObjects {
            tcb: p.add(ObjectKind::Tcb, 1, format!("TCB of {}", pd.name)),
            cnode: p.add(ObjectKind::CNode { radix_bits: cspace::RADIX_BITS }, 1, format!("CNode of {}", pd.name)),
            vspace: p.add(ObjectKind::VSpace, 1, format!("VSpace of {}", pd.name)),
            notification: p.add(ObjectKind::Notification, 1, format!("notification of {}", pd.name)),
            endpoint: needs_endpoint.then(|| p.add(ObjectKind::Endpoint, 1, format!("endpoint of {}", pd.name))),
        });
        p.spec.pds.push(PdInfo {
            name: pd.name.clone(),
            parent: None,
            on_fault: match pd.on_fault {
                OnFault::Stop => FaultPolicy::Stop,
                OnFault::Restart => FaultPolicy::Restart,
                OnFault::RestartBackoff => FaultPolicy::RestartBackoff,
            },
            reset_frames: Vec::new(),
            fault_injector: pd.inject_faults,
        });
    }
    for (i, parent) in parents.iter().enumerate() {
        p.spec.pds[i].parent = parent.map(|x| x as u32);
    }

    let entries: Vec<u64> = programs.iter().map(|prog| prog.entry).collect();
    let mut plans = Vec::new();
    for (i, pd) in pds.iter().enumerate() {
        let input = PdInput { index: i, pd, objects: &objects, by_name: &index, parent: parents[i], entries: &entries };
        plans.push(plan_pd(&mut p, &input, &mut programs[i]));
    }
    if !p.errors.is_empty() {
        return Err(Error::Description(tools_sdf::Diagnostics(p.errors)));
    }
    // Least privilege: a plan that gives any PD more than its job needs is
    // a builder bug (the description cannot ask for it), and the
    // initialiser would refuse to boot it.
    if let Err(violations) = rights::check(&p.spec) {
        let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
        return Err(Error::other(format!(
            "the plan breaks the least-privilege rules (pds-boot-spec `rights`):\n{}",
            list.join("\n")
        )));
    }
    Ok(Plan { spec: p.spec, data: p.data, object_names: p.object_names, pds: plans })
}

fn rights_str(r: bool, w: bool, x: bool) -> String {
    format!("{}{}{}", if r { 'r' } else { '-' }, if w { 'w' } else { '-' }, if x { 'x' } else { '-' })
}

/// One 4 KiB or 2 MiB page mapped in a PD.
struct Page {
    frame: ObjId,
    large: bool,
    writable: bool,
    cached: bool,
}

/// What the steps of [`plan_pd`] read about the PD being planned.
struct PdInput<'a, 'd> {
    /// The PD's index in [`SystemDescription::all_pds`] order.
    index: usize,
    pd: &'d ProtectionDomain,
    /// Kernel objects of every PD, by index.
    objects: &'a [PdObjects],
    /// Index of every PD by name.
    by_name: &'a HashMap<&'d str, usize>,
    /// Index of the PD's parent, if it is a child.
    parent: Option<usize>,
    /// Entry point of every PD's program, by index.
    entries: &'a [u64],
}

impl PdInput<'_, '_> {
    /// The PD's own kernel objects.
    fn me(&self) -> &PdObjects {
        &self.objects[self.index]
    }

    /// Kernel objects of the PD called `name` (validated to exist).
    fn objects_of(&self, name: &str) -> &PdObjects {
        &self.objects[self.by_name[name]]
    }
}

/// Plans one PD, in steps: its CSpace (channels, own objects, children,
/// IRQs, I/O ports, PCI devices), the patches to its program image, its
/// address space (image, stack and IPC buffer, PCI memory, memory regions,
/// paging structures) and its thread. The steps run in this order because
/// objects, capabilities and fills are numbered in the order they are
/// added.
fn plan_pd(p: &mut Planner, input: &PdInput, program: &mut Program) -> PdPlan {
    let mut plan = new_pd_plan(p, input, program);
    // The channel masks the runtime checks: notify, protected call, IRQ,
    // child.
    let mut masks = [0u64; 4];

    plan_channels(p, input, &mut plan, &mut masks);
    plan_own_caps(p, input, &mut plan);
    let child_entries = plan_children(p, input, &mut plan, &mut masks);
    plan_irqs(p, input, &mut plan, &mut masks);
    plan_ioports(p, input, &mut plan);
    let pd = input.pd;
    let me = input.me();
    let pci: Vec<u32> =
        pd.pci_devices.iter().map(|dev| plan_pci_caps(p, pd, dev, me, &mut plan, &mut masks, program)).collect();

    patch_runtime_symbols(p, pd, program, &masks, &child_entries);
    if let Some(network) = &p.sys.network {
        plan.net_config = patch_net_config(p, pd, network, program);
    }
    patch_map_setvars(p, pd, program);
    let deferred_paddr = patch_setvars(p, pd, program);

    let mut pages: BTreeMap<u64, Page> = BTreeMap::new();
    plan_image(p, pd, program, deferred_paddr, &mut plan, &mut pages);
    let image_writable: Vec<ObjId> = pages.values().filter(|page| page.writable).map(|page| page.frame).collect();
    let (stack, ipc) = plan_stack_and_ipc_buffer(p, pd, &mut plan, &mut pages);
    p.spec.pds[input.index].reset_frames = frame_runs(image_writable.into_iter().chain(stack));
    for (dev, &index) in pd.pci_devices.iter().zip(&pci) {
        plan_pci_memory(p, pd, dev, index, &mut plan, &mut pages);
    }
    plan_maps(p, pd, &mut plan, &mut pages);
    plan.ranges.sort_by_key(|r| r.start);
    plan_paging_structures(p, pd, me, &pages);

    plan_thread(p, input, program, ipc);
    plan.caps.sort_by_key(|c| c.slot);
    plan
}

/// Consecutive frame ids as runs (`ids` ascending).
fn frame_runs(ids: impl IntoIterator<Item = ObjId>) -> Vec<FrameRun> {
    let mut runs: Vec<FrameRun> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some(run) if run.first + run.count == id => run.count += 1,
            _ => runs.push(FrameRun { first: id, count: 1 }),
        }
    }
    runs
}

/// The report's account of the PD, before its capabilities and ranges.
fn new_pd_plan(p: &Planner, input: &PdInput, program: &Program) -> PdPlan {
    let pd = input.pd;
    PdPlan {
        name: pd.name.clone(),
        priority: pd.priority,
        pp: pd.pp,
        passive: pd.passive,
        on_fault: p.spec.pds[input.index].on_fault.name(),
        inject_faults: pd.inject_faults,
        stack_size: pd.stack_size,
        program: program.path.clone(),
        entry: program.entry,
        parent: input.parent.map(|i| p.spec.pds[i].name.clone()),
        ranges: Vec::new(),
        caps: Vec::new(),
        channels: Vec::new(),
        ioports: Vec::new(),
        irqs: Vec::new(),
        dma: Vec::new(),
        net_config: None,
    }
}

/// Channels: for each end the PD holds, a notification capability (write
/// only, badged with the other end's id) if it may notify, and an endpoint
/// capability (write and grant, never read: badged as a protected call
/// with the other end's id) if it may call; and the masks the runtime
/// checks.
fn plan_channels(p: &mut Planner, input: &PdInput, plan: &mut PdPlan, masks: &mut [u64; 4]) {
    let me = input.me();
    for ch in &p.sys.channels {
        for (a, b) in [(&ch.ends[0], &ch.ends[1]), (&ch.ends[1], &ch.ends[0])] {
            if a.pd != input.pd.name {
                continue;
            }
            let other = input.objects_of(&b.pd);
            let mut how = Vec::new();
            if a.notify {
                masks[0] |= 1 << a.id;
                let slot = cspace::OUTPUT_NOTIFICATION_BASE + u64::from(a.id);
                let badge = 1 << b.id;
                let what = format!("notify channel {} -> notification of {} (badge {badge:#x})", a.id, b.pd);
                p.cap(plan, me.cnode, slot, CapSource::Object(other.notification), Rights::WRITE, badge, what);
                how.push("notifies");
            }
            if a.pp {
                masks[1] |= 1 << a.id;
                let slot = cspace::PROTECTED_CALL_BASE + u64::from(a.id);
                let badge = badge::PROTECTED_CALL | u64::from(b.id);
                let ep = other.endpoint.expect("validated: the callee has pp and so an endpoint");
                // Write to call; Grant because seL4 5.0 makes the reply
                // capability only for a sender that may grant (`sendIPC`),
                // else the caller would never be resumed. Never Read: a
                // caller that could receive on the server's endpoint could
                // take other callers' requests.
                let what = format!("protected call channel {} -> endpoint of {} (badge {badge:#x})", a.id, b.pd);
                p.cap(plan, me.cnode, slot, CapSource::Object(ep), Rights::WRITE_GRANT, badge, what);
                how.push("calls");
            }
            let how = if how.is_empty() { "receives only".to_string() } else { how.join(", ") };
            plan.channels.push(format!("id {} <-> {} id {} ({how})", a.id, b.pd, b.id));
        }
    }
}

/// The PD's own objects: its input (its endpoint if it has one, else its
/// notification) and its notification, to receive on (read only); its
/// fault endpoint (the monitor's, badged with the PD's index + 1, or its
/// parent's, badged as a child fault with its child id), to be sent on by
/// the kernel only (write and grant, which `sendFaultIPC` requires; never
/// read, or the PD could receive other PDs' faults). No capability to its
/// own TCB: no PD needs one.
fn plan_own_caps(p: &mut Planner, input: &PdInput, plan: &mut PdPlan) {
    let me = input.me();
    let pd_index = input.index;
    let in_cap = me.endpoint.unwrap_or(me.notification);
    let what = if me.endpoint.is_some() {
        "input: own endpoint (notification bound to the TCB)"
    } else {
        "input: own notification"
    };
    p.cap(plan, me.cnode, cspace::INPUT, CapSource::Object(in_cap), Rights::READ, 0, what.into());
    let (ep, badge, what) = match input.parent {
        None => {
            let badge = pd_index as u64 + 1;
            (p.spec.fault_endpoint, badge, format!("fault endpoint -> monitor (badge {badge:#x})"))
        }
        Some(parent) => {
            let badge = badge::CHILD_FAULT | u64::from(input.pd.child_id.unwrap_or(0));
            let ep = input.objects[parent].endpoint.expect("a parent has an endpoint");
            (ep, badge, format!("fault endpoint -> parent {} (badge {badge:#x})", p.spec.pds[parent].name))
        }
    };
    p.cap(plan, me.cnode, cspace::FAULT_EP, CapSource::Object(ep), Rights::WRITE_GRANT, badge, what);
    let what = "own notification".to_string();
    p.cap(plan, me.cnode, cspace::NOTIFICATION, CapSource::Object(me.notification), Rights::READ, 0, what);
}

/// Children: the TCB of each child at its child id (to restart it), the child
/// mask, and the table of the children's entry points (`u64::MAX` where
/// there is no child), which the runtime uses to restart them.
fn plan_children(
    p: &mut Planner,
    input: &PdInput,
    plan: &mut PdPlan,
    masks: &mut [u64; 4],
) -> [u64; badge::MAX_CHILD_ID as usize + 1] {
    let me = input.me();
    let mut child_entries = [u64::MAX; badge::MAX_CHILD_ID as usize + 1];
    for child in &input.pd.children {
        let id = child.child_id.unwrap_or(0);
        masks[3] |= 1 << id;
        child_entries[usize::from(id)] = input.entries[input.by_name[child.name.as_str()]];
        let slot = cspace::CHILD_TCB_BASE + u64::from(id);
        let tcb = CapSource::Object(input.objects_of(&child.name).tcb);
        p.cap(plan, me.cnode, slot, tcb, Rights::NONE, 0, format!("TCB of child {} (id {id})", child.name));
    }
    child_entries
}

/// IRQs the PD declares: a spec entry delivering to the PD's notification
/// with badge `1 << id`, and an IRQ handler capability at the id.
fn plan_irqs(p: &mut Planner, input: &PdInput, plan: &mut PdPlan, masks: &mut [u64; 4]) {
    let me = input.me();
    for irq in &input.pd.irqs {
        masks[2] |= 1 << irq.id;
        let idx = p.spec.irqs.len() as u32;
        p.spec.irqs.push(Irq {
            ioapic: irq.ioapic,
            pin: irq.pin,
            pci_device: None,
            level_triggered: irq.level_triggered,
            active_low: irq.active_low,
            vector: irq.vector,
            notification: me.notification,
            badge: 1 << irq.id,
        });
        let slot = cspace::IRQ_BASE + u64::from(irq.id);
        let desc = format!(
            "irq id {}: IOAPIC {} pin {} vector {} ({}, active {})",
            irq.id,
            irq.ioapic,
            irq.pin,
            irq.vector,
            if irq.level_triggered { "level" } else { "edge" },
            if irq.active_low { "low" } else { "high" }
        );
        p.cap(plan, me.cnode, slot, CapSource::Irq(idx), Rights::NONE, 0, format!("IRQ handler, {desc}"));
        plan.irqs.push(desc);
    }
}

/// I/O port ranges the PD declares: a spec entry and an I/O port capability
/// at the id.
fn plan_ioports(p: &mut Planner, input: &PdInput, plan: &mut PdPlan) {
    let me = input.me();
    for port in &input.pd.ioports {
        let idx = p.spec.ioports.len() as u32;
        let last = port.addr as u32 + port.size as u32 - 1;
        p.spec.ioports.push(IoPortRange { first: port.addr, last: last as u16 });
        let slot = cspace::IOPORT_BASE + u64::from(port.id);
        let desc = format!("ioport id {}: {:#x}..={:#x}", port.id, port.addr, last);
        p.cap(plan, me.cnode, slot, CapSource::IoPort(idx), Rights::NONE, 0, format!("I/O ports, {desc}"));
        plan.ioports.push(desc);
    }
}

/// Writes the PD's name, channel masks and children's entry points into
/// its program, if it declares the runtime's symbols.
fn patch_runtime_symbols(
    p: &mut Planner,
    pd: &ProtectionDomain,
    program: &mut Program,
    masks: &[u64; 4],
    child_entries: &[u64],
) {
    let mut name = [0u8; PD_NAME_LEN];
    name[..pd.name.len()].copy_from_slice(pd.name.as_bytes());
    let mut runtime_patches = vec![(PD_NAME_SYMBOL, name.to_vec())];
    runtime_patches.push((PD_CHANNELS_SYMBOL, masks.iter().flat_map(|m| m.to_le_bytes()).collect()));
    runtime_patches.push((PD_CHILD_ENTRIES_SYMBOL, child_entries.iter().flat_map(|e| e.to_le_bytes()).collect()));
    for (symbol, bytes) in runtime_patches {
        // PDs not written against our runtime simply lack these symbols.
        if program.symbol(symbol).is_some() {
            if let Err(e) = program.patch(symbol, &bytes) {
                p.error(
                    pd.program_image_loc,
                    format!("cannot patch {}: {e}", program.path.display()),
                    "build the PD with the microkit runtime crate",
                );
            }
        }
    }
}

/// Writes each `<map>`'s `setvar_vaddr` (its address) and `setvar_size`
/// (its region's size) into the program.
fn patch_map_setvars(p: &mut Planner, pd: &ProtectionDomain, program: &mut Program) {
    for map in &pd.maps {
        if let Some(symbol) = &map.setvar_vaddr {
            if let Err(e) = program.patch(symbol, &map.vaddr.to_le_bytes()) {
                p.error(
                    map.loc,
                    format!("setvar_vaddr: {e} in {}", program.path.display()),
                    &format!("declare it in the PD with `pds_runtime::setvar!({symbol});`"),
                );
            }
        }
        if let (Some(symbol), Some(region)) = (&map.setvar_size, p.sys.region(&map.mr)) {
            if let Err(e) = program.patch(symbol, &region.size.to_le_bytes()) {
                p.error(
                    map.loc,
                    format!("setvar_size: {e} in {}", program.path.display()),
                    &format!("declare it in the PD with `pds_runtime::setvar!({symbol});`"),
                );
            }
        }
    }
}

/// Writes each `<setvar>` known now (a region's size, a fixed physical
/// address) into the program; returns the (symbol address, region) pairs
/// whose physical address the initialiser writes once it has allocated
/// the region.
fn patch_setvars(p: &mut Planner, pd: &ProtectionDomain, program: &mut Program) -> Vec<(u64, ObjId)> {
    let mut deferred_paddr = Vec::new();
    for sv in &pd.setvars {
        if let SetVarValue::Sectors { first, last } = sv.value {
            // `first` and one past `last`: lib_blk_protocol::Window.
            let bytes: Vec<u8> = [first, last + 1].iter().flat_map(|v| v.to_le_bytes()).collect();
            if let Err(e) = program.patch(&sv.symbol, &bytes) {
                p.error(
                    sv.loc,
                    format!("setvar: {e} in {}", program.path.display()),
                    &format!("declare it in the PD with `pds_runtime::setvar!({}, sectors);`", sv.symbol),
                );
            }
            continue;
        }
        let known = match sv.value {
            SetVarValue::Number(n) => Some(n),
            SetVarValue::Size => p.sys.region(&sv.region).map(|r| r.size),
            SetVarValue::Paddr => p.sys.region(&sv.region).and_then(|r| r.phys_addr),
            SetVarValue::Sectors { .. } => unreachable!("handled above"),
        };
        match known {
            Some(value) => {
                if let Err(e) = program.patch(&sv.symbol, &value.to_le_bytes()) {
                    p.error(
                        sv.loc,
                        format!("setvar: {e} in {}", program.path.display()),
                        &format!("declare it in the PD with `pds_runtime::setvar!({});`", sv.symbol),
                    );
                }
            }
            // A region the description does not declare was reported by
            // the checks; nothing to write.
            None if p.sys.region(&sv.region).is_none() => {}
            None => match program.symbol(&sv.symbol) {
                // The initialiser learns the address when it allocates the
                // region and writes it in place.
                Some((addr, _)) => deferred_paddr.push((addr, p.regions[&sv.region])),
                None => p.error(
                    sv.loc,
                    format!("setvar: symbol `{}` not found in {}", sv.symbol, program.path.display()),
                    &format!("declare it in the PD with `pds_runtime::setvar!({});`", sv.symbol),
                ),
            },
        }
    }
    deferred_paddr
}

/// The program image: one fresh frame per page its segments touch
/// (writable if any segment on it is), the fills copying the file bytes
/// into them, and the deferred physical-address patches.
fn plan_image(
    p: &mut Planner,
    pd: &ProtectionDomain,
    program: &Program,
    deferred_paddr: Vec<(u64, ObjId)>,
    plan: &mut PdPlan,
    pages: &mut BTreeMap<u64, Page>,
) {
    let image_pages: BTreeSet<u64> =
        program.segments.iter().flat_map(|s| (page_down(s.vaddr)..page_up(s.end())).step_by(PAGE as usize)).collect();
    let image_frames = p.add(
        ObjectKind::Frame { size_bits: 12, paddr: None },
        image_pages.len() as u32,
        format!("program image of {}", pd.name),
    );
    let frame_of: HashMap<u64, ObjId> =
        image_pages.iter().enumerate().map(|(i, &v)| (v, image_frames + i as u32)).collect();
    for seg in &program.segments {
        for page in (page_down(seg.vaddr)..page_up(seg.end())).step_by(PAGE as usize) {
            let entry = pages.entry(page).or_insert(Page {
                frame: frame_of[&page],
                large: false,
                writable: false,
                cached: true,
            });
            entry.writable |= seg.writable;
        }
        // File bytes go to the data blob, split at page boundaries.
        let base = p.data.len() as u64;
        p.data.extend_from_slice(&seg.data);
        let mut at = seg.vaddr;
        let end = seg.vaddr + seg.data.len() as u64;
        while at < end {
            let chunk = (page_down(at) + PAGE).min(end) - at;
            p.spec.fills.push(Fill {
                frame: frame_of[&page_down(at)],
                frame_offset: (at % PAGE) as u32,
                data_offset: base + (at - seg.vaddr),
                len: chunk as u32,
            });
            at += chunk;
        }
        plan.ranges.push(VirtualRange {
            start: page_down(seg.vaddr),
            end: page_up(seg.end()),
            perms: rights_str(true, seg.writable, seg.executable),
            what: format!("program image segment ({} bytes from file)", seg.data.len()),
        });
    }
    p.spec.fills.sort_by_key(|f| (f.frame, f.frame_offset));
    for (addr, region) in deferred_paddr {
        p.spec.paddr_patches.push(PaddrPatch {
            frame: frame_of[&page_down(addr)],
            offset: (addr % PAGE) as u32,
            region,
        });
    }
}

/// The stack (read-write, below [`STACK_TOP`], with an unmapped guard page
/// below it) and the IPC buffer page (read-write); returns the stack's
/// frames and the IPC buffer's frame.
fn plan_stack_and_ipc_buffer(
    p: &mut Planner,
    pd: &ProtectionDomain,
    plan: &mut PdPlan,
    pages: &mut BTreeMap<u64, Page>,
) -> (std::ops::Range<ObjId>, ObjId) {
    let stack_pages = pd.stack_size / PAGE;
    let stack =
        p.add(ObjectKind::Frame { size_bits: 12, paddr: None }, stack_pages as u32, format!("stack of {}", pd.name));
    let stack_bottom = STACK_TOP - pd.stack_size;
    for i in 0..stack_pages {
        pages.insert(
            stack_bottom + i * PAGE,
            Page { frame: stack + i as u32, large: false, writable: true, cached: true },
        );
    }
    plan.ranges.push(VirtualRange {
        start: stack_bottom,
        end: STACK_TOP,
        perms: "rw-".into(),
        what: format!("stack ({} KiB; guard page below)", pd.stack_size / 1024),
    });
    let ipc = p.add(ObjectKind::Frame { size_bits: 12, paddr: None }, 1, format!("IPC buffer of {}", pd.name));
    pages.insert(IPC_BUFFER_VADDR, Page { frame: ipc, large: false, writable: true, cached: true });
    plan.ranges.push(VirtualRange {
        start: IPC_BUFFER_VADDR,
        end: IPC_BUFFER_VADDR + PAGE,
        perms: "rw-".into(),
        what: "IPC buffer".into(),
    });
    (stack..stack + stack_pages as u32, ipc)
}

/// Memory regions the PD maps: every page of the region at the map's
/// address, writable only if the map's perms say `w`, cached unless the map
/// says otherwise. A map overlapping what is already planned is an error.
fn plan_maps(p: &mut Planner, pd: &ProtectionDomain, plan: &mut PdPlan, pages: &mut BTreeMap<u64, Page>) {
    for map in &pd.maps {
        let Some(region) = p.sys.region(&map.mr) else { continue };
        let region: &MemoryRegion = region;
        let size = region.size;
        let (start, end) = (map.vaddr, map.vaddr + size);
        if !claim(p, &plan.ranges, start, end, map.loc, &format!("mapping of `{}`{}", map.mr, map.origin.note())) {
            continue;
        }
        let first = p.regions[&region.name];
        let large = region.page_size == PageSize::Large;
        let step = region.page_size.bytes();
        for i in 0..region.page_count() {
            pages.insert(
                start + i * step,
                Page { frame: first + i as u32, large, writable: map.perms.write, cached: map.cached },
            );
        }
        let mut what = format!("memory region `{}`{}", map.mr, if map.cached { "" } else { ", uncached" });
        if let Some(sym) = &map.setvar_vaddr {
            what += &format!(", setvar_vaddr {sym}");
        }
        if let Some(sym) = &map.setvar_size {
            what += &format!(", setvar_size {sym}");
        }
        plan.ranges.push(VirtualRange {
            start,
            end,
            perms: rights_str(map.perms.read, map.perms.write, map.perms.execute),
            what,
        });
    }
}

/// Paging structures: one PDPT per 512 GiB, one page directory per GiB
/// and one page table per 2 MiB that holds 4 KiB pages; then every page.
fn plan_paging_structures(p: &mut Planner, pd: &ProtectionDomain, me: &PdObjects, pages: &BTreeMap<u64, Page>) {
    let pdpts: BTreeSet<u64> = pages.keys().map(|v| v >> 39).collect();
    let dirs: BTreeSet<u64> = pages.keys().map(|v| v >> 30).collect();
    let tables: BTreeSet<u64> = pages.iter().filter(|(_, pg)| !pg.large).map(|(v, _)| v >> 21).collect();
    for (set, shift, kind, mk, what) in [
        (&pdpts, 39, ObjectKind::Pdpt, MapKind::Pdpt, "PDPT"),
        (&dirs, 30, ObjectKind::PageDirectory, MapKind::PageDirectory, "page directory"),
        (&tables, 21, ObjectKind::PageTable, MapKind::PageTable, "page table"),
    ] {
        if set.is_empty() {
            continue;
        }
        let first = p.add(kind, set.len() as u32, format!("{what}s of {}", pd.name));
        for (i, key) in set.iter().enumerate() {
            p.spec.mappings.push(Mapping {
                vspace: me.vspace,
                vaddr: key << shift,
                object: first + i as u32,
                kind: mk,
            });
        }
    }
    for (&vaddr, page) in pages {
        debug_assert!(!page.large || vaddr % LARGE_PAGE == 0);
        p.spec.mappings.push(Mapping {
            vspace: me.vspace,
            vaddr,
            object: page.frame,
            kind: MapKind::Frame { writable: page.writable, cached: page.cached },
        });
    }
}

/// The PD's thread: its TCB, CSpace, VSpace, IPC buffer, priority, entry
/// and stack, with its notification bound if it has an endpoint.
fn plan_thread(p: &mut Planner, input: &PdInput, program: &Program, ipc: ObjId) {
    let me = input.me();
    p.spec.threads.push(Thread {
        pd: input.index as u32,
        tcb: me.tcb,
        cspace: me.cnode,
        vspace: me.vspace,
        ipc_buffer: ipc,
        ipc_buffer_vaddr: IPC_BUFFER_VADDR,
        priority: input.pd.priority,
        fault_ep: cspace::FAULT_EP,
        entry: program.entry,
        stack_top: STACK_TOP,
        bound_notification: me.endpoint.map(|_| me.notification),
    });
}

/// Writes the network configuration into the program of `pd` if it is the
/// demultiplexer or a client: whether it was written, `None` if the PD is
/// not in the network. The demultiplexer must declare the symbol.
fn patch_net_config(
    p: &mut Planner,
    pd: &ProtectionDomain,
    network: &tools_sdf::Network,
    program: &mut Program,
) -> Option<bool> {
    let role = network::role(network, &pd.name)?;
    let config = network::config(p.sys, network, role);
    let path = program.path.display().to_string();
    let declare = format!(
        "declare it in the PD with `pds_runtime::setvar_bytes!({CONFIG_SYMBOL}, net_config::CONFIG_BYTES);` and read it with `net_config::NetConfig::from_bytes`"
    );
    match network::patch(program, &config) {
        Ok(()) => return Some(true),
        Err(PatchError::Missing) if role == Role::Demux => p.error(
            pd.program_image_loc,
            format!(
                "the network demultiplexer `{}` has no symbol `{CONFIG_SYMBOL}` in {path} to receive its configuration",
                pd.name
            ),
            &format!("the demultiplexer learns its clients and their grants from it: {declare}"),
        ),
        // Optional in clients.
        Err(PatchError::Missing) => {}
        Err(PatchError::Size(size)) => p.error(
            pd.program_image_loc,
            format!(
                "symbol `{CONFIG_SYMBOL}` in {path} has {size} bytes, but the network configuration has {CONFIG_BYTES}"
            ),
            "the PD was built against another version of net-config: rebuild it",
        ),
        Err(PatchError::Patch(e)) => {
            p.error(pd.program_image_loc, format!("cannot write the network configuration into {path}: {e}"), &declare)
        }
    }
    Some(false)
}

/// Checks that `[start, end)` is free in a PD's address space so far (the
/// stack counts with its guard page); reports an error at `loc` if not.
fn claim(p: &mut Planner, ranges: &[VirtualRange], start: u64, end: u64, loc: tools_sdf::Loc, what: &str) -> bool {
    let guard = |r: &VirtualRange| if r.end == STACK_TOP { r.start - PAGE } else { r.start };
    match ranges.iter().find(|r| start < r.end && guard(r) < end) {
        None => true,
        Some(r) => {
            p.error(
                loc,
                format!("{what} at {start:#x}..{end:#x} overlaps the PD's {} at {:#x}..{:#x}", r.what, guard(r), r.end),
                "choose a vaddr outside the program image, the stack, the IPC buffer and the other mappings (the report lists the PD's address space)",
            );
            false
        }
    }
}

/// A PCI device's spec entry, interrupt, and the variables patched with
/// its addresses. Returns its index in `Spec::pci_devices`.
fn plan_pci_caps(
    p: &mut Planner,
    pd: &ProtectionDomain,
    dev: &tools_sdf::PciDevice,
    me: &PdObjects,
    plan: &mut PdPlan,
    masks: &mut [u64; 4],
    program: &mut Program,
) -> u32 {
    let index = p.spec.pci_devices.len() as u32;
    let name = format!("PCI {:04x}:{:04x}#{}", dev.vendor, dev.device, dev.instance);
    let dma = plan_dma(p, pd, plan, &name);
    p.spec.pci_devices.push(pds_boot_spec::PciDevice {
        vendor: dev.vendor,
        device: dev.device,
        instance: dev.instance,
        bars: dev.bars.iter().map(|b| (b.index, b.size)).collect(),
        owner: pd.name.clone(),
        dma,
    });
    if let Some(id) = dev.irq {
        masks[2] |= 1 << id;
        // PCI interrupts are level-triggered; QEMU's ACPI tables mark the
        // PCI lines active high. The pin comes from the device at boot.
        let vector = (32..).find(|v| !p.vectors.contains(v)).expect("free vector");
        p.vectors.insert(vector);
        let idx = p.spec.irqs.len() as u32;
        p.spec.irqs.push(Irq {
            ioapic: 0,
            pin: 0,
            pci_device: Some(index),
            level_triggered: true,
            active_low: false,
            vector,
            notification: me.notification,
            badge: 1 << id,
        });
        let slot = cspace::IRQ_BASE + u64::from(id);
        let desc =
            format!("irq id {id}: legacy interrupt of {name} (IOAPIC pin from its interrupt line, vector {vector})");
        p.cap(plan, me.cnode, slot, CapSource::Irq(idx), Rights::NONE, 0, format!("IRQ handler, {desc}"));
        plan.irqs.push(desc);
    }
    let vars = dev
        .bars
        .iter()
        .filter_map(|b| Some((b.setvar_vaddr.as_ref()?, b.vaddr, b.loc)))
        .chain(dev.setvar_config.as_ref().zip(dev.config_vaddr).map(|(s, v)| (s, v, dev.loc)));
    for (symbol, vaddr, loc) in vars {
        if let Err(e) = program.patch(symbol, &vaddr.to_le_bytes()) {
            p.error(
                loc,
                format!("setvar: {e} in {}", program.path.display()),
                &format!("declare it in the PD with `pds_runtime::setvar!({symbol});`"),
            );
        }
    }
    index
}

/// The memory a PCI device may reach by DMA behind an IOMMU: every region
/// whose physical address its driver is given (`setvar region_paddr`), in
/// the order of the setvars, each once, with the access its `dma`
/// attributes give (read, write or both; two setvars of one region allow
/// what either does). That is the whole of what the driver can point the
/// device at (a driver learns no other physical address), so it is what
/// the device's IOSpace maps. A PD with several devices gives each the
/// same regions. seL4 5.0 maps only 4 KiB frames into an IOSpace
/// (`X86PageMapIO` refuses larger ones), so such a region must have 4 KiB
/// pages.
fn plan_dma(p: &mut Planner, pd: &ProtectionDomain, plan: &mut PdPlan, device: &str) -> Vec<DmaWindow> {
    let mut windows: Vec<(DmaWindow, DmaAccess)> = Vec::new();
    for sv in pd.setvars.iter().filter(|sv| sv.value == SetVarValue::Paddr) {
        let Some(region) = p.sys.region(&sv.region) else { continue };
        if let Some((_, access)) = windows.iter_mut().find(|(w, _)| w.region == region.name) {
            *access = access.union(sv.dma);
            continue;
        }
        if region.page_size != PageSize::Small {
            p.error(
                sv.loc,
                format!(
                    "memory region `{}` is a DMA region of {device} (its driver `{}` is given its physical address), \
                     but has 2 MiB pages: seL4 5.0 maps only 4 KiB frames into a device's IOSpace",
                    region.name, pd.name
                ),
                "give the region page_size=\"0x1000\" (the default)",
            );
            continue;
        }
        let frames = FrameRun { first: p.regions[&region.name], count: region.page_count() as u32 };
        let window = DmaWindow { region: region.name.clone(), frames, device_reads: true, device_writes: true };
        windows.push((window, sv.dma));
    }
    windows
        .into_iter()
        .map(|(mut w, access)| {
            w.device_reads = access.device_reads();
            w.device_writes = access.device_writes();
            let what = match access {
                DmaAccess::Read => "the device reads it",
                DmaAccess::Write => "the device writes it",
                DmaAccess::ReadWrite => "read and write",
            };
            let kib = u64::from(w.frames.count) * 4;
            plan.dma.push(format!("{device}: memory region `{}` ({kib} KiB), {}: {what}", w.region, w.access()));
            w
        })
        .collect()
}

/// A PCI device's BAR pages (uncached) and configuration snapshot page
/// (read-only) in the PD's address space.
fn plan_pci_memory(
    p: &mut Planner,
    pd: &ProtectionDomain,
    dev: &tools_sdf::PciDevice,
    index: u32,
    plan: &mut PdPlan,
    pages: &mut BTreeMap<u64, Page>,
) {
    let name = format!("PCI {:04x}:{:04x}#{}", dev.vendor, dev.device, dev.instance);
    for bar in &dev.bars {
        let what = format!("BAR {} of {name}", bar.index);
        if !claim(p, &plan.ranges, bar.vaddr, bar.vaddr + bar.size, bar.loc, &what) {
            continue;
        }
        let count = (bar.size / PAGE) as u32;
        let first =
            p.add(ObjectKind::PciBar { device: index, bar: bar.index }, count, format!("{what} for {}", pd.name));
        for i in 0..count {
            let vaddr = bar.vaddr + u64::from(i) * PAGE;
            pages.insert(vaddr, Page { frame: first + i, large: false, writable: true, cached: false });
        }
        plan.ranges.push(VirtualRange {
            start: bar.vaddr,
            end: bar.vaddr + bar.size,
            perms: "rw-".into(),
            what: format!("{what}, uncached"),
        });
    }
    if let Some(vaddr) = dev.config_vaddr {
        let what = format!("configuration space of {name}");
        if claim(p, &plan.ranges, vaddr, vaddr + PAGE, dev.loc, &what) {
            let frame = p.add(ObjectKind::Frame { size_bits: 12, paddr: None }, 1, format!("{what} for {}", pd.name));
            p.spec.pci_config_fills.push(pds_boot_spec::PciConfigFill { frame, device: index });
            pages.insert(vaddr, Page { frame, large: false, writable: false, cached: true });
            plan.ranges.push(VirtualRange {
                start: vaddr,
                end: vaddr + PAGE,
                perms: "r--".into(),
                what: format!("{what} (snapshot at boot)"),
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
