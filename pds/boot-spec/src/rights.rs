//! Least privilege, as a rule over the boot spec: which capability each
//! slot of a PD's CSpace may hold, from which object, with which rights
//! and badge. The builder checks its plan with [`check`] before it writes
//! the image, and the initialiser checks the spec again before it mints a
//! single capability, so a plan that breaks a rule never boots.
//!
//! The rights, per role of a slot ([`SlotRole`]), are the least seL4 5.0
//! (non-MCS) accepts for the job:
//!
//! | slot | holds | rights | why |
//! |---|---|---|---|
//! | [`cspace::INPUT`] | the PD's own endpoint (if it accepts calls or has children) or its own notification | `R--` | `seL4_Recv` / `ReplyRecv` need only Read (`handleRecv`: `capCanReceive`); the reply goes through the reply capability the kernel keeps in the TCB |
//! | [`cspace::FAULT_EP`] | the monitor's fault endpoint, or the parent's endpoint for a child, badged with the PD | `-WG` | `sendFaultIPC` delivers a fault only through an endpoint capability with `capCanSend` and `capCanGrant`; without Read a PD cannot receive other PDs' faults |
//! | [`cspace::NOTIFICATION`] | the PD's own notification | `R--` | receiving only; no PD signals itself through it |
//! | `OUTPUT_NOTIFICATION_BASE + id` | the peer's notification, badged with the peer's end | `-W-` | `seL4_Signal` needs `capNtfnCanSend` only |
//! | `PROTECTED_CALL_BASE + id` | the callee's endpoint, badged as a protected call | `-WG` | `seL4_Call` needs `capCanSend`, and `capCanGrant` for the kernel to make the reply capability (`sendIPC` → `setupCallerCap` only if the sender can grant; seL4 5.0 has no GrantReply right) |
//! | `IRQ_BASE + id` | the handler of an interrupt delivered to this PD's own notification | none | IRQ handler capabilities have no rights bits |
//! | `IOPORT_BASE + id` | an I/O port range no other PD holds, never the PCI configuration ports | none | I/O port capabilities have no rights bits |
//! | `CHILD_TCB_BASE + id` | the TCB of a child of this PD | none | TCB capabilities have no rights bits |
//!
//! Nothing else: no capability to the PD's own TCB (slot 4 stays empty),
//! CNode, address space or frames, and no slot outside these ranges.
//!
//! Grant on a call or fault capability also lets the sender pass
//! capabilities along with the message; they arrive only where the
//! receiver names a receive slot, and neither the PD runtime nor the
//! monitor ever does.

use crate::{badge, cspace, CapInstall, CapSource, ObjId, ObjectKind, Rights, Spec};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The I/O ports of PCI configuration space (`0xcf8..=0xcff`): the
/// initialiser's, which reads configuration space for every driver; a PD
/// holding them could reprogram any device's BARs and bus mastering.
pub const PCI_CONFIG_PORTS: (u16, u16) = (0xcf8, 0xcff);

/// What a slot of a PD's CSpace is for, by the layout of [`cspace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRole {
    /// [`cspace::INPUT`]: what the PD waits on.
    Input,
    /// [`cspace::FAULT_EP`]: where the kernel sends the PD's faults.
    FaultEndpoint,
    /// [`cspace::NOTIFICATION`]: the PD's own notification.
    OwnNotification,
    /// A peer's notification, to signal channel `id`.
    Notify(u64),
    /// A callee's endpoint, for protected calls on channel `id`.
    Call(u64),
    /// The handler of irq `id`.
    Irq(u64),
    /// I/O port range `id`.
    IoPort(u64),
    /// The TCB of child `id`.
    ChildTcb(u64),
}

impl SlotRole {
    /// The role of `slot`; `None` for a slot the layout leaves empty
    /// (slot 0, slot 4 where the PD's own TCB once was, the gaps and the
    /// slots from [`cspace::END`] on).
    pub fn of(slot: u64) -> Option<SlotRole> {
        use cspace::*;
        Some(match slot {
            INPUT => SlotRole::Input,
            FAULT_EP => SlotRole::FaultEndpoint,
            NOTIFICATION => SlotRole::OwnNotification,
            s if (OUTPUT_NOTIFICATION_BASE..PROTECTED_CALL_BASE).contains(&s) => {
                SlotRole::Notify(s - OUTPUT_NOTIFICATION_BASE)
            }
            s if (PROTECTED_CALL_BASE..IRQ_BASE).contains(&s) => SlotRole::Call(s - PROTECTED_CALL_BASE),
            s if (IRQ_BASE..IOPORT_BASE).contains(&s) => SlotRole::Irq(s - IRQ_BASE),
            s if (IOPORT_BASE..CHILD_TCB_BASE).contains(&s) => SlotRole::IoPort(s - IOPORT_BASE),
            s if (CHILD_TCB_BASE..END).contains(&s) => SlotRole::ChildTcb(s - CHILD_TCB_BASE),
            _ => return None,
        })
    }

    /// The rights a capability in this slot is minted with: exactly these
    /// (the table in the module documentation).
    pub fn rights(self) -> Rights {
        match self {
            SlotRole::Input | SlotRole::OwnNotification => Rights::READ,
            SlotRole::FaultEndpoint | SlotRole::Call(_) => Rights::WRITE_GRANT,
            SlotRole::Notify(_) => Rights::WRITE,
            SlotRole::Irq(_) | SlotRole::IoPort(_) | SlotRole::ChildTcb(_) => Rights::NONE,
        }
    }

    /// Whether the capability's kind has rights bits at all (endpoints and
    /// notifications); the report writes `n/a` for the others.
    pub fn has_rights(self) -> bool {
        !matches!(self, SlotRole::Irq(_) | SlotRole::IoPort(_) | SlotRole::ChildTcb(_))
    }
}

/// What [`check`] found: the spec follows every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Capabilities installed into PD CSpaces.
    pub caps: usize,
    /// PDs (threads) whose CSpace was checked.
    pub pds: usize,
}

/// A capability (or a missing one) that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The PD's name (`?` for a CNode no PD uses).
    pub pd: String,
    /// The slot in its CSpace.
    pub slot: u64,
    pub problem: Problem,
}

/// Which rule a capability breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Installed into a CNode that is no PD's CSpace.
    NotAPdCSpace,
    /// A second capability for the same slot.
    Duplicate,
    /// A slot the layout leaves empty (the own-TCB slot among them).
    NoSuchSlot,
    /// The object is not of the kind the slot holds.
    WrongKind { expected: &'static str, found: &'static str },
    /// More (or other) rights than the slot's role needs.
    WrongRights { expected: Rights, found: Rights },
    /// The badge does not say what the slot's role needs.
    WrongBadge { expected: &'static str, found: u64 },
    /// The own-notification, input or IRQ capability names an object that
    /// is not this PD's own notification.
    NotOwnNotification,
    /// The fault endpoint is not the monitor's (top-level PD) or the
    /// parent's endpoint (child PD).
    WrongFaultHandler,
    /// A protected call to an endpoint that is no other PD's input.
    NotAServer,
    /// A notify capability to a notification that is no PD's own.
    NotAPeerNotification,
    /// The TCB of a PD that is not this PD's child.
    NotAChild,
    /// Read on an object another PD also receives on.
    ReadShared { other: String },
    /// An IRQ handler also held by another PD.
    IrqShared { other: String },
    /// I/O ports that another PD also holds.
    IoPortsShared { other: String },
    /// The PCI configuration ports.
    IoPortsReserved,
    /// A slot every PD has (input, fault endpoint, own notification) is
    /// empty.
    Missing,
    /// The thread's fault endpoint CPtr is not [`cspace::FAULT_EP`].
    FaultCPtr(u64),
    /// The notification bound to the thread is not the one in its
    /// own-notification slot, or a PD that waits on its notification has
    /// one bound.
    WrongBinding,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PD `{}` slot {}", self.pd, self.slot)?;
        if let Some(role) = SlotRole::of(self.slot) {
            write!(f, " ({})", describe(role))?;
        }
        write!(f, ": ")?;
        match &self.problem {
            Problem::NotAPdCSpace => write!(f, "installed into a CNode that is no PD's CSpace"),
            Problem::Duplicate => write!(f, "a second capability for the slot"),
            Problem::NoSuchSlot => {
                write!(f, "the CSpace layout leaves this slot empty (no own TCB, nothing unplanned)")
            }
            Problem::WrongKind { expected, found } => write!(f, "holds {found}, the slot is for {expected}"),
            Problem::WrongRights { expected, found } => {
                write!(f, "rights {found}, the least the job needs are {expected}")
            }
            Problem::WrongBadge { expected, found } => write!(f, "badge {found:#x}, must be {expected}"),
            Problem::NotOwnNotification => write!(f, "not the PD's own notification"),
            Problem::WrongFaultHandler => {
                write!(f, "not the monitor's fault endpoint (top-level PD) or the parent's endpoint (child)")
            }
            Problem::NotAServer => write!(f, "calls an endpoint that is no other PD's input"),
            Problem::NotAPeerNotification => write!(f, "signals a notification that is no PD's own"),
            Problem::NotAChild => write!(f, "the TCB of a PD that is not its child"),
            Problem::ReadShared { other } => write!(f, "receives on an object `{other}` receives on too"),
            Problem::IrqShared { other } => write!(f, "an IRQ handler `{other}` holds too"),
            Problem::IoPortsShared { other } => write!(f, "I/O ports `{other}` holds too"),
            Problem::IoPortsReserved => write!(
                f,
                "I/O ports {:#x}..={:#x} are PCI configuration space, the initialiser's",
                PCI_CONFIG_PORTS.0, PCI_CONFIG_PORTS.1
            ),
            Problem::Missing => write!(f, "missing: every PD has its input, fault endpoint and own notification"),
            Problem::FaultCPtr(cptr) => write!(f, "the thread's fault endpoint CPtr is {cptr}, not this slot"),
            Problem::WrongBinding => {
                write!(f, "the notification bound to the thread is not the PD's own, or bound while it waits on it")
            }
        }
    }
}

/// How a report or a violation names a slot's role.
pub fn describe(role: SlotRole) -> &'static str {
    match role {
        SlotRole::Input => "input",
        SlotRole::FaultEndpoint => "fault endpoint",
        SlotRole::OwnNotification => "own notification",
        SlotRole::Notify(_) => "notify",
        SlotRole::Call(_) => "protected call",
        SlotRole::Irq(_) => "IRQ handler",
        SlotRole::IoPort(_) => "I/O ports",
        SlotRole::ChildTcb(_) => "child TCB",
    }
}

fn kind_name(kind: Option<ObjectKind>) -> &'static str {
    match kind {
        Some(ObjectKind::Tcb) => "a TCB",
        Some(ObjectKind::Endpoint) => "an endpoint",
        Some(ObjectKind::Notification) => "a notification",
        Some(ObjectKind::CNode { .. }) => "a CNode",
        Some(ObjectKind::VSpace | ObjectKind::Pdpt | ObjectKind::PageDirectory | ObjectKind::PageTable) => {
            "a paging structure"
        }
        Some(ObjectKind::Frame { .. } | ObjectKind::PciBar { .. }) => "a frame",
        None => "no object",
    }
}

/// The spec, indexed for the rules.
struct Index<'a> {
    spec: &'a Spec,
    /// Each PD's caps by slot, PDs by index in `spec.pds`.
    caps: BTreeMap<u32, BTreeMap<u64, &'a CapInstall>>,
    violations: Vec<Violation>,
}

impl Index<'_> {
    fn name(&self, pd: u32) -> String {
        self.spec.pds.get(pd as usize).map_or_else(|| String::from("?"), |p| p.name.clone())
    }

    fn violation(&mut self, pd: u32, slot: u64, problem: Problem) {
        let pd = self.name(pd);
        self.violations.push(Violation { pd, slot, problem });
    }

    /// The object a PD holds at `slot`, if it holds an object there.
    fn object_at(&self, pd: u32, slot: u64) -> Option<ObjId> {
        match self.caps.get(&pd)?.get(&slot)?.source {
            CapSource::Object(id) => Some(id),
            _ => None,
        }
    }

    fn kind(&self, id: ObjId) -> Option<ObjectKind> {
        self.spec.locate(id).map(|(o, _)| o.kind)
    }

    /// The PD whose own notification `id` is.
    fn notification_owner(&self, id: ObjId) -> Option<u32> {
        self.caps.keys().copied().find(|&pd| self.object_at(pd, cspace::NOTIFICATION) == Some(id))
    }

    /// The PD that receives on endpoint `id` (its input).
    fn endpoint_owner(&self, id: ObjId) -> Option<u32> {
        self.caps
            .keys()
            .copied()
            .find(|&pd| self.object_at(pd, cspace::INPUT) == Some(id) && self.kind(id) == Some(ObjectKind::Endpoint))
    }
}

/// Checks every capability the spec installs against the rules above.
/// Returns what was checked, or every violation (in PD and slot order).
pub fn check(spec: &Spec) -> Result<Checked, Vec<Violation>> {
    let mut x = Index { spec, caps: BTreeMap::new(), violations: Vec::new() };
    let pd_of_cnode: BTreeMap<ObjId, u32> = spec.threads.iter().map(|t| (t.cspace, t.pd)).collect();
    for t in &spec.threads {
        x.caps.entry(t.pd).or_default();
    }
    for cap in &spec.caps {
        match pd_of_cnode.get(&cap.cnode) {
            None => {
                x.violations.push(Violation { pd: String::from("?"), slot: cap.slot, problem: Problem::NotAPdCSpace })
            }
            Some(&pd) => {
                if x.caps.entry(pd).or_default().insert(cap.slot, cap).is_some() {
                    x.violation(pd, cap.slot, Problem::Duplicate);
                }
            }
        }
    }
    let pds: Vec<u32> = x.caps.keys().copied().collect();
    for &pd in &pds {
        check_threads_own_slots(&mut x, pd);
        let caps: Vec<&CapInstall> = x.caps[&pd].values().copied().collect();
        for cap in caps {
            check_cap(&mut x, pd, cap);
        }
    }
    check_exclusive(&mut x);
    if x.violations.is_empty() {
        Ok(Checked { caps: spec.caps.len(), pds: spec.threads.len() })
    } else {
        x.violations.sort_by(|a, b| (&a.pd, a.slot).cmp(&(&b.pd, b.slot)));
        Err(x.violations)
    }
}

/// The slots every PD has, its thread's fault CPtr and bound notification.
fn check_threads_own_slots(x: &mut Index, pd: u32) {
    for slot in [cspace::INPUT, cspace::FAULT_EP, cspace::NOTIFICATION] {
        if !x.caps[&pd].contains_key(&slot) {
            x.violation(pd, slot, Problem::Missing);
        }
    }
    let Some(thread) = x.spec.threads.iter().find(|t| t.pd == pd) else { return };
    if thread.fault_ep != cspace::FAULT_EP {
        x.violation(pd, cspace::FAULT_EP, Problem::FaultCPtr(thread.fault_ep));
    }
    let own = x.object_at(pd, cspace::NOTIFICATION);
    let input = x.object_at(pd, cspace::INPUT);
    let binding_ok = match input.and_then(|i| x.kind(i)) {
        // A PD that receives on its endpoint gets its notifications
        // through the binding.
        Some(ObjectKind::Endpoint) => thread.bound_notification.is_some() && thread.bound_notification == own,
        // A PD that waits on its notification must have nothing bound.
        _ => thread.bound_notification.is_none(),
    };
    if !binding_ok {
        x.violation(pd, cspace::NOTIFICATION, Problem::WrongBinding);
    }
}

fn check_cap(x: &mut Index, pd: u32, cap: &CapInstall) {
    let Some(role) = SlotRole::of(cap.slot) else {
        x.violation(pd, cap.slot, Problem::NoSuchSlot);
        return;
    };
    if cap.rights != role.rights() {
        x.violation(pd, cap.slot, Problem::WrongRights { expected: role.rights(), found: cap.rights });
    }
    let object = match cap.source {
        CapSource::Object(id) => Some(id),
        _ => None,
    };
    let kind = object.and_then(|id| x.kind(id));
    let expect_kind = |x: &mut Index, expected: &'static str, ok: bool| {
        if !ok {
            let found = match cap.source {
                CapSource::Object(_) => kind_name(kind),
                CapSource::Irq(_) => "an IRQ handler",
                CapSource::IoPort(_) => "I/O ports",
            };
            x.violation(pd, cap.slot, Problem::WrongKind { expected, found });
        }
        ok
    };
    let expect_badge = |x: &mut Index, expected: &'static str, ok: bool| {
        if !ok {
            x.violation(pd, cap.slot, Problem::WrongBadge { expected, found: cap.badge });
        }
    };
    let own_notification = x.object_at(pd, cspace::NOTIFICATION);
    match role {
        SlotRole::Input => {
            let ok = matches!(kind, Some(ObjectKind::Endpoint | ObjectKind::Notification));
            if expect_kind(x, "the PD's own endpoint or notification", ok) {
                expect_badge(x, "none", cap.badge == 0);
                if object == Some(x.spec.fault_endpoint) {
                    x.violation(pd, cap.slot, Problem::WrongFaultHandler);
                }
                if kind == Some(ObjectKind::Notification) && object != own_notification {
                    x.violation(pd, cap.slot, Problem::NotOwnNotification);
                }
            }
        }
        SlotRole::FaultEndpoint => {
            if expect_kind(x, "an endpoint", kind == Some(ObjectKind::Endpoint)) {
                expect_badge(x, "the PD's (non-zero)", cap.badge != 0);
                let handler = match x.spec.pds.get(pd as usize).and_then(|p| p.parent) {
                    None => Some(x.spec.fault_endpoint),
                    Some(parent) => x.object_at(parent, cspace::INPUT),
                };
                if object != handler {
                    x.violation(pd, cap.slot, Problem::WrongFaultHandler);
                }
            }
        }
        SlotRole::OwnNotification => {
            if expect_kind(x, "the PD's own notification", kind == Some(ObjectKind::Notification)) {
                expect_badge(x, "none", cap.badge == 0);
            }
        }
        SlotRole::Notify(_) => {
            if expect_kind(x, "a peer's notification", kind == Some(ObjectKind::Notification)) {
                expect_badge(x, "the channel's bit (non-zero)", cap.badge != 0 && cap.badge <= badge::MAX);
                if object.and_then(|id| x.notification_owner(id)).is_none() {
                    x.violation(pd, cap.slot, Problem::NotAPeerNotification);
                }
            }
        }
        SlotRole::Call(_) => {
            if expect_kind(x, "a server's endpoint", kind == Some(ObjectKind::Endpoint)) {
                expect_badge(x, "a protected-call badge", cap.badge & badge::PROTECTED_CALL != 0);
                match object.and_then(|id| x.endpoint_owner(id)) {
                    Some(server) if server != pd => {}
                    _ => x.violation(pd, cap.slot, Problem::NotAServer),
                }
            }
        }
        SlotRole::Irq(_) => {
            if let CapSource::Irq(i) = cap.source {
                let to = x.spec.irqs.get(i as usize).map(|irq| irq.notification);
                if to.is_none() || to != own_notification {
                    x.violation(pd, cap.slot, Problem::NotOwnNotification);
                }
            } else {
                expect_kind(x, "an IRQ handler", false);
            }
        }
        SlotRole::IoPort(_) => {
            if let CapSource::IoPort(i) = cap.source {
                let range = x.spec.ioports.get(i as usize);
                if range.is_some_and(|r| r.first <= PCI_CONFIG_PORTS.1 && PCI_CONFIG_PORTS.0 <= r.last) {
                    x.violation(pd, cap.slot, Problem::IoPortsReserved);
                }
            } else {
                expect_kind(x, "I/O ports", false);
            }
        }
        SlotRole::ChildTcb(_) => {
            if expect_kind(x, "a child's TCB", kind == Some(ObjectKind::Tcb)) {
                let child = x.spec.threads.iter().find(|t| Some(t.tcb) == object).map(|t| t.pd);
                let parent = child.and_then(|c| x.spec.pds.get(c as usize)).and_then(|p| p.parent);
                if parent != Some(pd) {
                    x.violation(pd, cap.slot, Problem::NotAChild);
                }
            }
        }
    }
}

/// Objects one PD may hold alone: Read on an endpoint or notification (its
/// input), an IRQ handler, an I/O port.
fn check_exclusive(x: &mut Index) {
    let mut readers: BTreeMap<ObjId, u32> = BTreeMap::new();
    let mut irqs: BTreeMap<u32, u32> = BTreeMap::new();
    let mut ports: Vec<(u16, u16, u32)> = Vec::new();
    let mut found = Vec::new();
    for (&pd, caps) in &x.caps {
        for (&slot, cap) in caps {
            match cap.source {
                CapSource::Object(id) if cap.rights.read => {
                    if let Some(&other) = readers.get(&id).filter(|&&other| other != pd) {
                        found.push((pd, slot, Problem::ReadShared { other: x.name(other) }));
                    }
                    readers.entry(id).or_insert(pd);
                }
                CapSource::Irq(i) => {
                    if let Some(&other) = irqs.get(&i) {
                        found.push((pd, slot, Problem::IrqShared { other: x.name(other) }));
                    }
                    irqs.entry(i).or_insert(pd);
                }
                CapSource::IoPort(i) => {
                    if let Some(r) = x.spec.ioports.get(i as usize) {
                        if let Some(&(_, _, other)) = ports.iter().find(|p| p.0 <= r.last && r.first <= p.1) {
                            found.push((pd, slot, Problem::IoPortsShared { other: x.name(other) }));
                        }
                        ports.push((r.first, r.last, pd));
                    }
                }
                CapSource::Object(_) => {}
            }
        }
    }
    for (pd, slot, problem) in found {
        x.violation(pd, slot, problem);
    }
}

#[cfg(test)]
mod tests;
