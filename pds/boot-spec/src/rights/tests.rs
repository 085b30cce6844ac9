//! The rules on a small hand-written spec: a server that accepts calls and
//! a client that calls it, notifies it, and drives a device (an IRQ and
//! I/O ports). The spec passes; each mutation of it that grants more than
//! the job needs is refused with its rule.

use super::*;
use crate::{IoPortRange, Irq, Object, PdInfo, Thread};
use alloc::vec;

const READ_WRITE: Rights = Rights { read: true, write: true, grant: false };
const FAULT_EP: ObjId = 0;
const SERVER_TCB: ObjId = 1;
const SERVER_CNODE: ObjId = 2;
const SERVER_NTFN: ObjId = 4;
const SERVER_EP: ObjId = 5;
const CLIENT_TCB: ObjId = 6;
const CLIENT_CNODE: ObjId = 7;
const CLIENT_NTFN: ObjId = 9;

fn cap(cnode: ObjId, slot: u64, source: CapSource, rights: Rights, badge: u64) -> CapInstall {
    CapInstall { cnode, slot, source, rights, badge }
}

fn object(kind: ObjectKind) -> Object {
    Object { kind, count: 1 }
}

fn thread(pd: u32, tcb: ObjId, bound_notification: Option<ObjId>) -> Thread {
    Thread {
        pd,
        tcb,
        cspace: tcb + 1,
        vspace: tcb + 2,
        ipc_buffer: 0,
        ipc_buffer_vaddr: 0,
        priority: 100,
        fault_ep: cspace::FAULT_EP,
        entry: 0,
        stack_top: 0,
        bound_notification,
    }
}

fn spec() -> Spec {
    use CapSource::Object as O;
    let pd_objects = |with_endpoint: bool| {
        let mut v = vec![
            object(ObjectKind::Tcb),
            object(ObjectKind::CNode { radix_bits: cspace::RADIX_BITS }),
            object(ObjectKind::VSpace),
            object(ObjectKind::Notification),
        ];
        if with_endpoint {
            v.push(object(ObjectKind::Endpoint));
        }
        v
    };
    let mut objects = vec![object(ObjectKind::Endpoint)];
    objects.extend(pd_objects(true));
    objects.extend(pd_objects(false));
    Spec {
        objects,
        irqs: vec![Irq {
            ioapic: 0,
            pin: 2,
            pci_device: None,
            level_triggered: false,
            active_low: false,
            vector: 34,
            notification: CLIENT_NTFN,
            badge: 1 << 7,
        }],
        ioports: vec![IoPortRange { first: 0x40, last: 0x43 }],
        caps: vec![
            cap(SERVER_CNODE, cspace::INPUT, O(SERVER_EP), Rights::READ, 0),
            cap(SERVER_CNODE, cspace::FAULT_EP, O(FAULT_EP), Rights::WRITE_GRANT, 1),
            cap(SERVER_CNODE, cspace::NOTIFICATION, O(SERVER_NTFN), Rights::READ, 0),
            cap(SERVER_CNODE, cspace::OUTPUT_NOTIFICATION_BASE + 3, O(CLIENT_NTFN), Rights::WRITE, 1 << 5),
            cap(CLIENT_CNODE, cspace::INPUT, O(CLIENT_NTFN), Rights::READ, 0),
            cap(CLIENT_CNODE, cspace::FAULT_EP, O(FAULT_EP), Rights::WRITE_GRANT, 2),
            cap(CLIENT_CNODE, cspace::NOTIFICATION, O(CLIENT_NTFN), Rights::READ, 0),
            cap(CLIENT_CNODE, cspace::OUTPUT_NOTIFICATION_BASE + 5, O(SERVER_NTFN), Rights::WRITE, 1 << 3),
            cap(
                CLIENT_CNODE,
                cspace::PROTECTED_CALL_BASE + 5,
                O(SERVER_EP),
                Rights::WRITE_GRANT,
                badge::PROTECTED_CALL | 3,
            ),
            cap(CLIENT_CNODE, cspace::IRQ_BASE + 7, CapSource::Irq(0), Rights::NONE, 0),
            cap(CLIENT_CNODE, cspace::IOPORT_BASE + 1, CapSource::IoPort(0), Rights::NONE, 0),
        ],
        threads: vec![thread(0, SERVER_TCB, Some(SERVER_NTFN)), thread(1, CLIENT_TCB, None)],
        pds: vec![
            PdInfo { name: "server".into(), parent: None, ..Default::default() },
            PdInfo { name: "client".into(), parent: None, ..Default::default() },
        ],
        fault_endpoint: FAULT_EP,
        ..Default::default()
    }
}

/// The problems `check` finds, as (PD, slot, problem).
fn problems(spec: &Spec) -> Vec<(String, u64, Problem)> {
    match check(spec) {
        Ok(_) => Vec::new(),
        Err(v) => v.into_iter().map(|v| (v.pd, v.slot, v.problem)).collect(),
    }
}

fn find(spec: &Spec, cnode: ObjId, slot: u64) -> usize {
    spec.caps.iter().position(|c| c.cnode == cnode && c.slot == slot).expect("a planned cap")
}

#[test]
fn the_least_privilege_spec_passes() {
    assert_eq!(check(&spec()), Ok(Checked { caps: 11, pds: 2 }));
}

#[test]
fn every_slot_role_has_the_documented_rights() {
    use cspace::*;
    let table = [
        (INPUT, "R--"),
        (FAULT_EP, "-WG"),
        (NOTIFICATION, "R--"),
        (OUTPUT_NOTIFICATION_BASE + 25, "-W-"),
        (PROTECTED_CALL_BASE, "-WG"),
        (IRQ_BASE + 3, "---"),
        (IOPORT_BASE, "---"),
        (CHILD_TCB_BASE + 25, "---"),
    ];
    for (slot, rights) in table {
        let role = SlotRole::of(slot).expect("a slot of the layout");
        assert_eq!(alloc::format!("{}", role.rights()), rights, "slot {slot}");
    }
    for empty in [0, 4, 5, 63, END, (1 << RADIX_BITS) - 1] {
        assert_eq!(SlotRole::of(empty), None, "slot {empty}");
    }
}

#[test]
fn a_caller_with_read_on_the_servers_endpoint_is_refused() {
    let mut s = spec();
    let i = find(&s, CLIENT_CNODE, cspace::PROTECTED_CALL_BASE + 5);
    s.caps[i].rights = Rights::ALL;
    let found = problems(&s);
    let slot = cspace::PROTECTED_CALL_BASE + 5;
    assert!(
        found.contains(&(
            "client".into(),
            slot,
            Problem::WrongRights { expected: Rights::WRITE_GRANT, found: Rights::ALL }
        )),
        "{found:?}"
    );
    // Read on the server's endpoint is also Read on another PD's input.
    assert!(found.contains(&("client".into(), slot, Problem::ReadShared { other: "server".into() })), "{found:?}");
}

#[test]
fn a_fault_endpoint_with_read_or_without_grant_is_refused() {
    for rights in [Rights::ALL, Rights::WRITE, Rights { read: true, write: true, grant: false }] {
        let mut s = spec();
        let i = find(&s, CLIENT_CNODE, cspace::FAULT_EP);
        s.caps[i].rights = rights;
        assert_eq!(
            problems(&s),
            [(
                "client".into(),
                cspace::FAULT_EP,
                Problem::WrongRights { expected: Rights::WRITE_GRANT, found: rights }
            )]
        );
    }
}

#[test]
fn a_peer_notification_with_read_and_an_own_notification_with_write_are_refused() {
    let mut s = spec();
    let i = find(&s, SERVER_CNODE, cspace::OUTPUT_NOTIFICATION_BASE + 3);
    s.caps[i].rights = READ_WRITE;
    let found = problems(&s);
    assert!(found.iter().any(|p| p.1 == cspace::OUTPUT_NOTIFICATION_BASE + 3
        && p.2 == Problem::WrongRights { expected: Rights::WRITE, found: READ_WRITE }));
    assert!(found.iter().any(|p| p.2 == Problem::ReadShared { other: "server".into() }), "{found:?}");

    let mut s = spec();
    let i = find(&s, CLIENT_CNODE, cspace::NOTIFICATION);
    s.caps[i].rights = Rights::ALL;
    assert_eq!(
        problems(&s),
        [("client".into(), cspace::NOTIFICATION, Problem::WrongRights { expected: Rights::READ, found: Rights::ALL })]
    );
}

#[test]
fn a_pd_holding_its_own_tcb_or_its_cnode_is_refused() {
    let mut s = spec();
    s.caps.push(cap(CLIENT_CNODE, 4, CapSource::Object(CLIENT_TCB), Rights::NONE, 0));
    assert_eq!(problems(&s), [("client".into(), 4, Problem::NoSuchSlot)]);

    let mut s = spec();
    s.caps.push(cap(CLIENT_CNODE, cspace::CHILD_TCB_BASE, CapSource::Object(SERVER_TCB), Rights::NONE, 0));
    assert_eq!(problems(&s), [("client".into(), cspace::CHILD_TCB_BASE, Problem::NotAChild)]);

    let mut s = spec();
    s.caps.push(cap(CLIENT_CNODE, cspace::OUTPUT_NOTIFICATION_BASE, CapSource::Object(CLIENT_CNODE), Rights::WRITE, 1));
    assert_eq!(
        problems(&s),
        [(
            "client".into(),
            cspace::OUTPUT_NOTIFICATION_BASE,
            Problem::WrongKind { expected: "a peer's notification", found: "a CNode" }
        )]
    );
}

#[test]
fn irqs_and_io_ports_stay_with_the_pd_that_owns_the_device() {
    // The IRQ handler in the server's CSpace: delivered to the client.
    let mut s = spec();
    s.caps.push(cap(SERVER_CNODE, cspace::IRQ_BASE + 7, CapSource::Irq(0), Rights::NONE, 0));
    let found = problems(&s);
    assert!(found.contains(&("server".into(), cspace::IRQ_BASE + 7, Problem::NotOwnNotification)), "{found:?}");
    assert!(found.iter().any(|p| matches!(&p.2, Problem::IrqShared { .. })), "{found:?}");

    // The same ports in the server's CSpace too.
    let mut s = spec();
    s.ioports.push(IoPortRange { first: 0x42, last: 0x42 });
    s.caps.push(cap(SERVER_CNODE, cspace::IOPORT_BASE, CapSource::IoPort(1), Rights::NONE, 0));
    let found = problems(&s);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(matches!(&found[0].2, Problem::IoPortsShared { .. }), "{found:?}");

    // PCI configuration space is the initialiser's.
    let mut s = spec();
    s.ioports[0] = IoPortRange { first: 0xcfc, last: 0xcff };
    assert_eq!(problems(&s), [("client".into(), cspace::IOPORT_BASE + 1, Problem::IoPortsReserved)]);
}

#[test]
fn a_pd_receiving_on_anothers_input_or_a_wrong_fault_handler_is_refused() {
    let mut s = spec();
    let i = find(&s, CLIENT_CNODE, cspace::FAULT_EP);
    s.caps[i].source = CapSource::Object(SERVER_EP);
    assert!(problems(&s).contains(&("client".into(), cspace::FAULT_EP, Problem::WrongFaultHandler)));

    let mut s = spec();
    let i = find(&s, CLIENT_CNODE, cspace::INPUT);
    s.caps[i].source = CapSource::Object(FAULT_EP);
    let found = problems(&s);
    assert!(found.contains(&("client".into(), cspace::INPUT, Problem::WrongFaultHandler)), "{found:?}");
    // It waits on an endpoint with no notification bound.
    assert!(found.contains(&("client".into(), cspace::NOTIFICATION, Problem::WrongBinding)), "{found:?}");
}

#[test]
fn missing_slots_badges_and_duplicates_are_refused() {
    let mut s = spec();
    let i = find(&s, SERVER_CNODE, cspace::FAULT_EP);
    s.caps.remove(i);
    assert_eq!(problems(&s), [("server".into(), cspace::FAULT_EP, Problem::Missing)]);

    let mut s = spec();
    let i = find(&s, CLIENT_CNODE, cspace::PROTECTED_CALL_BASE + 5);
    s.caps[i].badge = 3;
    assert!(problems(&s).iter().any(|p| matches!(p.2, Problem::WrongBadge { found: 3, .. })));

    let mut s = spec();
    let dup = s.caps[0].clone();
    s.caps.push(dup);
    assert!(problems(&s).contains(&("server".into(), cspace::INPUT, Problem::Duplicate)));
}

#[test]
fn violations_read_as_sentences() {
    let v = Violation {
        pd: "httpd".into(),
        slot: cspace::PROTECTED_CALL_BASE,
        problem: Problem::WrongRights { expected: Rights::WRITE_GRANT, found: Rights::ALL },
    };
    assert_eq!(
        alloc::format!("{v}"),
        "PD `httpd` slot 128 (protected call): rights RWG, the least the job needs are -WG"
    );
}
