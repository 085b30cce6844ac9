//! The capability plan, pinned: which capabilities each PD's CSpace
//! receives, from which object, with which rights and badge.

use super::*;
use crate::elf::{write_executable, Segment};
use std::path::Path;

/// A synthetic program for `pd`: a page of code and a data segment holding
/// every symbol the description patches (so the planner's patching steps
/// succeed without a bare-metal build).
fn program_for(sys: &SystemDescription, pd: &ProtectionDomain) -> Program {
    let mut symbols: Vec<(String, u64)> = vec![
        (PD_NAME_SYMBOL.into(), PD_NAME_LEN as u64),
        (PD_CHANNELS_SYMBOL.into(), 32),
        (PD_CHILD_ENTRIES_SYMBOL.into(), (badge::MAX_CHILD_ID + 1) * 8),
    ];
    if sys.network.as_ref().is_some_and(|n| network::role(n, &pd.name).is_some()) {
        symbols.push((CONFIG_SYMBOL.into(), CONFIG_BYTES as u64));
    }
    for map in &pd.maps {
        symbols.extend(map.setvar_vaddr.iter().chain(&map.setvar_size).map(|s| (s.clone(), 8)));
    }
    // A window of sectors is two u64s (`pds_runtime::SectorsVar`).
    symbols.extend(pd.setvars.iter().map(|s| {
        let len = if matches!(s.value, tools_sdf::SetVarValue::Sectors { .. }) { 16 } else { 8 };
        (s.symbol.clone(), len)
    }));
    for dev in &pd.pci_devices {
        symbols.extend(dev.bars.iter().filter_map(|b| b.setvar_vaddr.clone()).map(|s| (s, 8)));
        symbols.extend(dev.setvar_config.iter().map(|s| (s.clone(), 8)));
    }
    const TEXT: u64 = 0x40_0000;
    const DATA: u64 = 0x40_1000;
    let size = page_up(symbols.iter().map(|s| (s.1 + 7) & !7).sum::<u64>().max(1));
    let text =
        Segment { vaddr: TEXT, mem_size: PAGE, data: vec![0xc3; PAGE as usize], writable: false, executable: true };
    let data =
        Segment { vaddr: DATA, mem_size: size, data: vec![0xff; size as usize], writable: true, executable: false };
    let path = pd.program_image.clone();
    let mut program = Program::parse(&path, &write_executable(TEXT, &[text, data])).expect("a valid ELF");
    let mut at = DATA;
    for (name, len) in symbols {
        program.add_symbol(&name, at, len);
        at += (len + 7) & !7;
    }
    program
}

pub(crate) fn plan_system(sys: &SystemDescription) -> Plan {
    let programs = sys.all_pds().into_iter().map(|pd| program_for(sys, pd)).collect();
    match super::plan(sys, programs) {
        Ok(plan) => plan,
        Err(e) => panic!("the plan failed: {e}"),
    }
}

fn parse(text: &str) -> SystemDescription {
    match tools_sdf::parse_str(Path::new("t.system"), text) {
        Ok(sys) => sys,
        Err(e) => panic!("invalid description: {e}"),
    }
}

pub(crate) fn microkit_system() -> SystemDescription {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../microkit.system");
    match tools_sdf::parse_file(&path) {
        Ok(sys) => sys,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// `RWG` letters, or `n/a` for a slot whose kind has no rights bits.
fn rights(slot: u64, r: Rights) -> String {
    match SlotRole::of(slot) {
        Some(role) if !role.has_rights() => "n/a".into(),
        _ => r.to_string(),
    }
}

/// Every capability the plan installs, per PD (by name), as readable lines
/// `slot N: WHAT, rights RWG, badge 0x..`, in slot order (rights `n/a`
/// for kinds without rights bits).
fn cap_table(plan: &Plan) -> BTreeMap<String, Vec<String>> {
    // Name of each single object, by id.
    let mut names = HashMap::new();
    let mut id = 0;
    for (object, name) in plan.spec.objects.iter().zip(&plan.object_names) {
        if object.count == 1 {
            names.insert(id, name.clone());
        }
        id += object.count;
    }
    let pd_of_cnode: HashMap<ObjId, &str> =
        plan.spec.threads.iter().map(|t| (t.cspace, plan.spec.pds[t.pd as usize].name.as_str())).collect();
    let mut table: BTreeMap<String, Vec<(u64, String)>> =
        plan.spec.pds.iter().map(|pd| (pd.name.clone(), Vec::new())).collect();
    for cap in &plan.spec.caps {
        let what = match cap.source {
            CapSource::Object(id) => names.get(&id).cloned().unwrap_or_else(|| format!("object {id}")),
            CapSource::Irq(i) => {
                let irq = &plan.spec.irqs[i as usize];
                let source = match irq.pci_device {
                    Some(d) => {
                        let dev = &plan.spec.pci_devices[d as usize];
                        format!("PCI {:04x}:{:04x}", dev.vendor, dev.device)
                    }
                    None => format!("IOAPIC {} pin {}", irq.ioapic, irq.pin),
                };
                let to = names.get(&irq.notification).cloned().unwrap_or_default();
                format!("IRQ handler of {source}, delivered to {to} (badge {:#x})", irq.badge)
            }
            CapSource::IoPort(i) => {
                let range = &plan.spec.ioports[i as usize];
                format!("I/O ports {:#x}..={:#x}", range.first, range.last)
            }
        };
        let line =
            format!("slot {}: {what}, rights {}, badge {:#x}", cap.slot, rights(cap.slot, cap.rights), cap.badge);
        table.get_mut(pd_of_cnode[&cap.cnode]).expect("a PD").push((cap.slot, line));
    }
    table
        .into_iter()
        .map(|(pd, mut caps)| {
            caps.sort();
            (pd, caps.into_iter().map(|c| c.1).collect())
        })
        .collect()
}

/// The cap lines of one PD.
fn caps_of(plan: &Plan, pd: &str) -> Vec<String> {
    cap_table(plan).remove(pd).unwrap_or_else(|| panic!("no PD `{pd}`"))
}

/// Every shared or device page run a PD maps (memory regions, PCI BARs,
/// configuration snapshots; not its image, stack or IPC buffer), per PD,
/// as `NAME at 0x..: rw|r-[, uncached]`.
fn map_table(plan: &Plan) -> BTreeMap<String, Vec<String>> {
    let mut runs = Vec::new();
    let mut id = 0;
    for (object, name) in plan.spec.objects.iter().zip(&plan.object_names) {
        runs.push((id, id + object.count, name.as_str()));
        id += object.count;
    }
    let run_of = |object: ObjId| runs.iter().find(|r| r.0 <= object && object < r.1).expect("an object run").2;
    let pd_of_vspace: HashMap<ObjId, &str> =
        plan.spec.threads.iter().map(|t| (t.vspace, plan.spec.pds[t.pd as usize].name.as_str())).collect();
    // (PD, run) -> (lowest vaddr, (writable, cached) of every page).
    type Access = (u64, BTreeSet<(bool, bool)>);
    let mut seen: BTreeMap<(String, String), Access> = BTreeMap::new();
    for m in &plan.spec.mappings {
        let MapKind::Frame { writable, cached } = m.kind else { continue };
        let run = run_of(m.object);
        if ["program image", "stack of", "IPC buffer"].iter().any(|p| run.starts_with(p)) {
            continue;
        }
        let entry =
            seen.entry((pd_of_vspace[&m.vspace].to_string(), run.to_string())).or_insert((u64::MAX, BTreeSet::new()));
        entry.0 = entry.0.min(m.vaddr);
        entry.1.insert((writable, cached));
    }
    let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((pd, run), (vaddr, access)) in seen {
        let access: Vec<String> = access
            .into_iter()
            .map(|(w, c)| format!("{}{}", if w { "rw" } else { "r-" }, if c { "" } else { ", uncached" }))
            .collect();
        let run = run.strip_suffix(&format!(" for {pd}")).unwrap_or(&run).to_string();
        table.entry(pd).or_default().push(format!("{run} at {vaddr:#x}: {}", access.join(" and ")));
    }
    table
}

/// Fails with the lines missing from and the lines added to each PD's
/// table, so a change in the plan reads as a difference.
fn assert_table(what: &str, actual: &BTreeMap<String, Vec<String>>, expected: &[(&str, &[&str])]) {
    let diff = table_diff(actual, expected);
    assert!(diff.is_empty(), "the {what} differ from the pinned table (- expected, + planned):\n{diff}");
}

/// The lines missing from (`-`) and added to (`+`) each PD's table.
fn table_diff(actual: &BTreeMap<String, Vec<String>>, expected: &[(&str, &[&str])]) -> String {
    let expected: BTreeMap<String, Vec<String>> =
        expected.iter().map(|(pd, lines)| (pd.to_string(), lines.iter().map(|l| l.to_string()).collect())).collect();
    let mut diff = String::new();
    for pd in actual.keys().chain(expected.keys()).collect::<BTreeSet<_>>() {
        let (a, e) = (actual.get(pd).cloned().unwrap_or_default(), expected.get(pd).cloned().unwrap_or_default());
        for line in e.iter().filter(|l| !a.contains(l)) {
            diff += &format!("  {pd}: - {line}\n");
        }
        for line in a.iter().filter(|l| !e.contains(l)) {
            diff += &format!("  {pd}: + {line}\n");
        }
    }
    diff
}

const PP_SYSTEM: &str = r#"<system>
  <protection_domain name="server" priority="200" pp="true"><program_image path="server" /></protection_domain>
  <protection_domain name="client" priority="100"><program_image path="client" /></protection_domain>
  <protection_domain name="peer" priority="100"><program_image path="peer" /></protection_domain>
  <channel><end pd="server" id="3" /><end pd="client" id="5" pp="true" /></channel>
  <channel><end pd="client" id="6" /><end pd="peer" id="1" /></channel>
</system>"#;

#[test]
fn a_pp_pd_receives_on_its_endpoint_and_others_on_their_notification() {
    let plan = plan_system(&parse(PP_SYSTEM));
    let server = caps_of(&plan, "server");
    assert_eq!(server[0], "slot 1: endpoint of server, rights R--, badge 0x0");
    assert_eq!(caps_of(&plan, "client")[0], "slot 1: notification of client, rights R--, badge 0x0");
    assert_eq!(caps_of(&plan, "peer")[0], "slot 1: notification of peer, rights R--, badge 0x0");
    // Only the pp PD has an endpoint, with its notification bound.
    let bound: Vec<bool> = plan.spec.threads.iter().map(|t| t.bound_notification.is_some()).collect();
    assert_eq!(bound, [true, false, false]);
}

#[test]
fn the_caller_of_a_pp_channel_gets_the_endpoint_badged_with_the_callee_end() {
    let plan = plan_system(&parse(PP_SYSTEM));
    let client = caps_of(&plan, "client");
    let slot = cspace::PROTECTED_CALL_BASE + 5;
    assert!(
        client
            .contains(&format!("slot {slot}: endpoint of server, rights -WG, badge {:#x}", badge::PROTECTED_CALL | 3)),
        "{client:#?}"
    );
    // The callee cannot call back, and no one else may call.
    let calls =
        |caps: &[String]| caps.iter().filter(|c| c.contains("endpoint of") && !c.starts_with("slot 1:")).count();
    assert_eq!(calls(&caps_of(&plan, "server")), 0);
    assert_eq!(calls(&caps_of(&plan, "peer")), 0);
    assert_eq!(calls(&client), 1);
}

#[test]
fn notifying_ends_get_a_write_only_notification_badged_with_the_other_end() {
    let plan = plan_system(&parse(PP_SYSTEM));
    let base = cspace::OUTPUT_NOTIFICATION_BASE;
    assert!(
        caps_of(&plan, "client").contains(&format!("slot {}: notification of peer, rights -W-, badge 0x2", base + 6))
    );
    assert!(
        caps_of(&plan, "peer").contains(&format!("slot {}: notification of client, rights -W-, badge 0x40", base + 1))
    );
    assert!(caps_of(&plan, "server")
        .contains(&format!("slot {}: notification of client, rights -W-, badge 0x20", base + 3)));
}

#[test]
fn map_perms_decide_whether_pages_are_writable() {
    let sys = parse(
        r#"<system>
  <memory_region name="shared" size="0x2000" />
  <memory_region name="dev" size="0x1000" />
  <protection_domain name="writer" priority="100"><program_image path="writer" />
    <map mr="shared" vaddr="0x20000000" perms="rw" />
    <map mr="dev" vaddr="0x30000000" perms="rw" cached="false" />
  </protection_domain>
  <protection_domain name="reader" priority="100"><program_image path="reader" />
    <map mr="shared" vaddr="0x20000000" perms="r" />
  </protection_domain>
</system>"#,
    );
    let plan = plan_system(&sys);
    assert_table(
        "mappings",
        &map_table(&plan),
        &[
            (
                "writer",
                &["memory region `dev` at 0x30000000: rw, uncached", "memory region `shared` at 0x20000000: rw"],
            ),
            ("reader", &["memory region `shared` at 0x20000000: r-"]),
        ],
    );
    // Both pages of the region, in both PDs.
    let shared: Vec<_> =
        plan.spec.mappings.iter().filter(|m| m.vaddr >= 0x2000_0000 && m.vaddr < 0x2000_2000).collect();
    assert_eq!(shared.iter().filter(|m| matches!(m.kind, MapKind::Frame { .. })).count(), 4);
}

const DEVICE_SYSTEM: &str = r#"<system>
  <protection_domain name="plain" priority="100"><program_image path="plain" /></protection_domain>
  <protection_domain name="clock" priority="200"><program_image path="clock" />
    <ioport id="1" addr="0x40" size="4" />
    <irq id="7" pin="2" trigger="edge" polarity="high" />
  </protection_domain>
</system>"#;

#[test]
fn io_ports_and_irqs_go_only_to_the_pd_that_declares_them() {
    let plan = plan_system(&parse(DEVICE_SYSTEM));
    let clock = caps_of(&plan, "clock");
    assert!(clock.contains(&format!("slot {}: I/O ports 0x40..=0x43, rights n/a, badge 0x0", cspace::IOPORT_BASE + 1)));
    let vector = plan.spec.irqs[0].vector;
    assert_eq!(plan.spec.irqs.len(), 1);
    assert!(
        clock.contains(&format!(
            "slot {}: IRQ handler of IOAPIC 0 pin 2, delivered to notification of clock (badge 0x80), rights n/a, badge 0x0",
            cspace::IRQ_BASE + 7
        )),
        "{clock:#?} (vector {vector})"
    );
    let plain = caps_of(&plan, "plain");
    assert!(!plain.iter().any(|c| c.contains("IRQ") || c.contains("I/O ports")), "{plain:#?}");
    // Only the own objects: input, fault endpoint, notification (no TCB).
    assert_eq!(plain.len(), 3, "{plain:#?}");
    assert_eq!(plan.spec.ioports, [IoPortRange { first: 0x40, last: 0x43 }]);
}

#[test]
fn children_are_controlled_by_their_parent_and_fault_to_it() {
    let sys = parse(
        r#"<system>
  <protection_domain name="supervisor" priority="100"><program_image path="supervisor" />
    <protection_domain name="worker" id="2" priority="90"><program_image path="worker" /></protection_domain>
  </protection_domain>
  <protection_domain name="loner" priority="80"><program_image path="loner" /></protection_domain>
</system>"#,
    );
    let plan = plan_system(&sys);
    assert_table(
        "capabilities",
        &cap_table(&plan),
        &[
            (
                "supervisor",
                &[
                    // A parent has an endpoint, for its children's faults.
                    "slot 1: endpoint of supervisor, rights R--, badge 0x0",
                    "slot 2: monitor fault endpoint, rights -WG, badge 0x1",
                    "slot 3: notification of supervisor, rights R--, badge 0x0",
                    "slot 322: TCB of worker, rights n/a, badge 0x0",
                ],
            ),
            (
                "worker",
                &[
                    "slot 1: notification of worker, rights R--, badge 0x0",
                    "slot 2: endpoint of supervisor, rights -WG, badge 0x4000002",
                    "slot 3: notification of worker, rights R--, badge 0x0",
                ],
            ),
            (
                "loner",
                &[
                    "slot 1: notification of loner, rights R--, badge 0x0",
                    "slot 2: monitor fault endpoint, rights -WG, badge 0x3",
                    "slot 3: notification of loner, rights R--, badge 0x0",
                ],
            ),
        ],
    );
    assert_eq!(badge::CHILD_FAULT | 2, 0x400_0002);
    let parents: Vec<Option<u32>> = plan.spec.pds.iter().map(|pd| pd.parent).collect();
    assert_eq!(parents, [None, Some(0), None]);
    assert!(plan.spec.threads.iter().all(|t| t.fault_ep == cspace::FAULT_EP));
}

/// The plan of the real system, pinned: every capability of every PD and
/// every shared or device mapping. A change in what the builder grants
/// fails here with the difference, line by line.
#[test]
fn microkit_system_plan_is_pinned() {
    let plan = plan_system(&microkit_system());
    assert_table("capabilities", &cap_table(&plan), MICROKIT_CAPS);
    assert_table("mappings", &map_table(&plan), MICROKIT_MAPS);
}

/// Every capability of every PD of `microkit.system`: `slot N: object,
/// rights` (R receive, W send, G grant; `n/a` for IRQ handlers, I/O ports
/// and TCBs, which have no rights bits)`, badge`.
const MICROKIT_CAPS: &[(&str, &[&str])] = &[
    (
        "arpd",
        &[
            "slot 1: endpoint of arpd, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x4",
            "slot 3: notification of arpd, rights R--, badge 0x0",
            "slot 64: notification of net-mux, rights -W-, badge 0x2",
            "slot 67: notification of httpd, rights -W-, badge 0x2",
            "slot 68: notification of ftpd, rights -W-, badge 0x2",
            "slot 74: notification of timer, rights -W-, badge 0x1",
            "slot 89: notification of serial, rights -W-, badge 0x8",
            "slot 128: endpoint of net-mux, rights -WG, badge 0x8000001",
            "slot 138: endpoint of timer, rights -WG, badge 0x8000000",
        ],
    ),
    (
        "file-cache",
        &[
            "slot 1: notification of file-cache, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x7",
            "slot 3: notification of file-cache, rights R--, badge 0x0",
            "slot 64: notification of virtio-blk, rights -W-, badge 0x1",
            "slot 65: notification of httpd, rights -W-, badge 0x4",
            "slot 66: notification of ftpd, rights -W-, badge 0x4",
            "slot 89: notification of serial, rights -W-, badge 0x80",
        ],
    ),
    (
        "ftpd",
        &[
            "slot 1: notification of ftpd, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x9",
            "slot 3: notification of ftpd, rights R--, badge 0x0",
            "slot 64: notification of net-mux, rights -W-, badge 0x10",
            "slot 65: notification of arpd, rights -W-, badge 0x10",
            "slot 66: notification of file-cache, rights -W-, badge 0x4",
            "slot 74: notification of timer, rights -W-, badge 0x20",
            "slot 89: notification of serial, rights -W-, badge 0x100",
            "slot 128: endpoint of net-mux, rights -WG, badge 0x8000004",
            "slot 129: endpoint of arpd, rights -WG, badge 0x8000004",
            "slot 138: endpoint of timer, rights -WG, badge 0x8000005",
        ],
    ),
    (
        "httpd",
        &[
            "slot 1: notification of httpd, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x8",
            "slot 3: notification of httpd, rights R--, badge 0x0",
            "slot 64: notification of net-mux, rights -W-, badge 0x8",
            "slot 65: notification of arpd, rights -W-, badge 0x8",
            "slot 66: notification of file-cache, rights -W-, badge 0x2",
            "slot 74: notification of timer, rights -W-, badge 0x4",
            "slot 89: notification of serial, rights -W-, badge 0x40",
            "slot 128: endpoint of net-mux, rights -WG, badge 0x8000003",
            "slot 129: endpoint of arpd, rights -WG, badge 0x8000003",
            "slot 138: endpoint of timer, rights -WG, badge 0x8000002",
        ],
    ),
    (
        "idle",
        &[
            "slot 1: notification of idle, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0xb",
            "slot 3: notification of idle, rights R--, badge 0x0",
            "slot 64: notification of virtio-net, rights -W-, badge 0x800",
        ],
    ),
    (
        "net-mux",
        &[
            "slot 1: endpoint of net-mux, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x3",
            "slot 3: notification of net-mux, rights R--, badge 0x0",
            "slot 64: notification of virtio-net, rights -W-, badge 0x2",
            "slot 65: notification of arpd, rights -W-, badge 0x1",
            "slot 66: notification of stray, rights -W-, badge 0x1",
            "slot 67: notification of httpd, rights -W-, badge 0x1",
            "slot 68: notification of ftpd, rights -W-, badge 0x1",
            "slot 84: notification of timer, rights -W-, badge 0x8",
            "slot 89: notification of serial, rights -W-, badge 0x4",
            "slot 128: endpoint of virtio-net, rights -WG, badge 0x8000001",
            "slot 148: endpoint of timer, rights -WG, badge 0x8000003",
        ],
    ),
    (
        "serial",
        &[
            "slot 1: notification of serial, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0xa",
            "slot 3: notification of serial, rights R--, badge 0x0",
            "slot 64: notification of timer, rights -W-, badge 0x2000000",
            "slot 65: notification of virtio-net, rights -W-, badge 0x2000000",
            "slot 66: notification of net-mux, rights -W-, badge 0x2000000",
            "slot 67: notification of arpd, rights -W-, badge 0x2000000",
            "slot 68: notification of stray, rights -W-, badge 0x2000000",
            "slot 69: notification of virtio-blk, rights -W-, badge 0x2000000",
            "slot 70: notification of httpd, rights -W-, badge 0x2000000",
            "slot 71: notification of file-cache, rights -W-, badge 0x2000000",
            "slot 72: notification of ftpd, rights -W-, badge 0x2000000",
            "slot 216: IRQ handler of IOAPIC 0 pin 4, delivered to notification of serial (badge 0x1000000), rights n/a, badge 0x0",
            "slot 256: I/O ports 0x3f8..=0x3ff, rights n/a, badge 0x0",
        ],
    ),
    (
        "stray",
        &[
            "slot 1: notification of stray, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x5",
            "slot 3: notification of stray, rights R--, badge 0x0",
            "slot 64: notification of net-mux, rights -W-, badge 0x4",
            "slot 74: notification of timer, rights -W-, badge 0x2",
            "slot 89: notification of serial, rights -W-, badge 0x10",
            "slot 128: endpoint of net-mux, rights -WG, badge 0x8000002",
            "slot 138: endpoint of timer, rights -WG, badge 0x8000001",
        ],
    ),
    (
        "timer",
        &[
            "slot 1: endpoint of timer, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x1",
            "slot 3: notification of timer, rights R--, badge 0x0",
            "slot 64: notification of arpd, rights -W-, badge 0x400",
            "slot 65: notification of stray, rights -W-, badge 0x400",
            "slot 66: notification of httpd, rights -W-, badge 0x400",
            "slot 67: notification of net-mux, rights -W-, badge 0x100000",
            "slot 68: notification of virtio-net, rights -W-, badge 0x400",
            "slot 69: notification of ftpd, rights -W-, badge 0x400",
            "slot 89: notification of serial, rights -W-, badge 0x1",
            "slot 216: IRQ handler of IOAPIC 0 pin 2, delivered to notification of timer (badge 0x1000000), rights n/a, badge 0x0",
            "slot 256: I/O ports 0x40..=0x43, rights n/a, badge 0x0",
            "slot 257: I/O ports 0x70..=0x71, rights n/a, badge 0x0",
        ],
    ),
    (
        "virtio-blk",
        &[
            "slot 1: notification of virtio-blk, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x6",
            "slot 3: notification of virtio-blk, rights R--, badge 0x0",
            "slot 64: notification of file-cache, rights -W-, badge 0x1",
            "slot 89: notification of serial, rights -W-, badge 0x20",
            "slot 193: IRQ handler of PCI 1af4:1042, delivered to notification of virtio-blk (badge 0x2), rights n/a, badge 0x0",
        ],
    ),
    (
        "virtio-net",
        &[
            "slot 1: endpoint of virtio-net, rights R--, badge 0x0",
            "slot 2: monitor fault endpoint, rights -WG, badge 0x2",
            "slot 3: notification of virtio-net, rights R--, badge 0x0",
            "slot 65: notification of net-mux, rights -W-, badge 0x1",
            "slot 74: notification of timer, rights -W-, badge 0x10",
            "slot 75: notification of idle, rights -W-, badge 0x1",
            "slot 89: notification of serial, rights -W-, badge 0x2",
            "slot 138: endpoint of timer, rights -WG, badge 0x8000004",
            "slot 192: IRQ handler of PCI 1af4:1041, delivered to notification of virtio-net (badge 0x1), rights n/a, badge 0x0",
        ],
    ),
];
/// Every memory region, BAR and configuration page each PD of
/// `microkit.system` maps (the timer maps none).
const MICROKIT_MAPS: &[(&str, &[&str])] = &[
    (
        "arpd",
        &[
            "memory region `console_arpd` at 0x5000000: rw",
            "memory region `net_arp_table` at 0x51000000: rw",
            "memory region `net_arpd_rx_active` at 0x50308000: rw",
            "memory region `net_arpd_rx_data` at 0x50000000: r-",
            "memory region `net_arpd_rx_free` at 0x50300000: rw",
            "memory region `net_arpd_tx_active` at 0x50314000: rw",
            "memory region `net_arpd_tx_data` at 0x50200000: rw",
            "memory region `net_arpd_tx_free` at 0x50310000: rw",
        ],
    ),
    (
        "file-cache",
        &[
            "memory region `blk_info` at 0x30002000: r-",
            "memory region `blk_request` at 0x30000000: rw",
            "memory region `blk_response` at 0x30001000: rw",
            "memory region `console_file_cache` at 0x5000000: rw",
            "memory region `ftpd_cache_info` at 0x31005000: rw",
            "memory region `ftpd_cache_request` at 0x31003000: rw",
            "memory region `ftpd_cache_response` at 0x31004000: rw",
            "memory region `httpd_cache_info` at 0x31002000: rw",
            "memory region `httpd_cache_request` at 0x31000000: rw",
            "memory region `httpd_cache_response` at 0x31001000: rw",
            "memory region `site_cache` at 0x40000000: r-",
        ],
    ),
    (
        "ftpd",
        &[
            "memory region `console_ftpd` at 0x5000000: rw",
            "memory region `ftpd_cache_info` at 0x30002000: r-",
            "memory region `ftpd_cache_request` at 0x30000000: rw",
            "memory region `ftpd_cache_response` at 0x30001000: rw",
            "memory region `ftpd_connections` at 0x20000000: rw",
            "memory region `net_arp_table` at 0x51000000: r-",
            "memory region `net_ftpd_rx_active` at 0x50308000: rw",
            "memory region `net_ftpd_rx_data` at 0x50000000: r-",
            "memory region `net_ftpd_rx_free` at 0x50300000: rw",
            "memory region `net_ftpd_tx_active` at 0x50314000: rw",
            "memory region `net_ftpd_tx_data` at 0x50200000: rw",
            "memory region `net_ftpd_tx_free` at 0x50310000: rw",
            "memory region `site_cache` at 0x40000000: r-",
        ],
    ),
    (
        "httpd",
        &[
            "memory region `console_httpd` at 0x5000000: rw",
            "memory region `httpd_cache_info` at 0x30002000: r-",
            "memory region `httpd_cache_request` at 0x30000000: rw",
            "memory region `httpd_cache_response` at 0x30001000: rw",
            "memory region `httpd_connections` at 0x20000000: rw",
            "memory region `net_arp_table` at 0x51000000: r-",
            "memory region `net_httpd_rx_active` at 0x50308000: rw",
            "memory region `net_httpd_rx_data` at 0x50000000: r-",
            "memory region `net_httpd_rx_free` at 0x50300000: rw",
            "memory region `net_httpd_tx_active` at 0x50314000: rw",
            "memory region `net_httpd_tx_data` at 0x50200000: rw",
            "memory region `net_httpd_tx_free` at 0x50310000: rw",
            "memory region `site_cache` at 0x40000000: r-",
        ],
    ),
    (
        "net-mux",
        &[
            "memory region `console_net_mux` at 0x5000000: rw",
            "memory region `net_arpd_rx_active` at 0x60308000: rw",
            "memory region `net_arpd_rx_data` at 0x60000000: rw",
            "memory region `net_arpd_rx_free` at 0x60300000: rw",
            "memory region `net_arpd_tx_active` at 0x60314000: rw",
            "memory region `net_arpd_tx_data` at 0x60200000: rw",
            "memory region `net_arpd_tx_free` at 0x60310000: rw",
            "memory region `net_ftpd_rx_active` at 0x63308000: rw",
            "memory region `net_ftpd_rx_data` at 0x63000000: rw",
            "memory region `net_ftpd_rx_free` at 0x63300000: rw",
            "memory region `net_ftpd_tx_active` at 0x63314000: rw",
            "memory region `net_ftpd_tx_data` at 0x63200000: rw",
            "memory region `net_ftpd_tx_free` at 0x63310000: rw",
            "memory region `net_httpd_rx_active` at 0x62308000: rw",
            "memory region `net_httpd_rx_data` at 0x62000000: rw",
            "memory region `net_httpd_rx_free` at 0x62300000: rw",
            "memory region `net_httpd_tx_active` at 0x62314000: rw",
            "memory region `net_httpd_tx_data` at 0x62200000: rw",
            "memory region `net_httpd_tx_free` at 0x62310000: rw",
            "memory region `net_rx_active` at 0x30002000: rw",
            "memory region `net_rx_data` at 0x40000000: r-",
            "memory region `net_rx_free` at 0x30000000: rw",
            "memory region `net_stray_rx_active` at 0x61308000: rw",
            "memory region `net_stray_rx_data` at 0x61000000: rw",
            "memory region `net_stray_rx_free` at 0x61300000: rw",
            "memory region `net_stray_tx_active` at 0x61314000: rw",
            "memory region `net_stray_tx_data` at 0x61200000: rw",
            "memory region `net_stray_tx_free` at 0x61310000: rw",
            "memory region `net_tx_active` at 0x30008000: rw",
            "memory region `net_tx_free` at 0x30004000: rw",
            "memory region `net_tx_headers` at 0x40100000: rw",
            "memory region `net_tx_payload` at 0x40200000: rw",
        ],
    ),
    (
        "serial",
        &[
            "memory region `console_arpd` at 0x5003000: rw",
            "memory region `console_file_cache` at 0x5007000: rw",
            "memory region `console_ftpd` at 0x5008000: rw",
            "memory region `console_httpd` at 0x5006000: rw",
            "memory region `console_net_mux` at 0x5002000: rw",
            "memory region `console_stray` at 0x5004000: rw",
            "memory region `console_timer` at 0x5000000: rw",
            "memory region `console_virtio_blk` at 0x5005000: rw",
            "memory region `console_virtio_net` at 0x5001000: rw",
        ],
    ),
    (
        "stray",
        &[
            "memory region `console_stray` at 0x5000000: rw",
            "memory region `net_stray_rx_active` at 0x50308000: rw",
            "memory region `net_stray_rx_data` at 0x50000000: r-",
            "memory region `net_stray_rx_free` at 0x50300000: rw",
            "memory region `net_stray_tx_active` at 0x50314000: rw",
            "memory region `net_stray_tx_data` at 0x50200000: rw",
            "memory region `net_stray_tx_free` at 0x50310000: rw",
        ],
    ),
    ("timer", &["memory region `console_timer` at 0x5000000: rw", "memory region `timer_state` at 0x5001000: rw"]),
    (
        "virtio-blk",
        &[
            "BAR 4 of PCI 1af4:1042#0 at 0x10100000: rw, uncached",
            "configuration space of PCI 1af4:1042#0 at 0x10000000: r-",
            "memory region `blk_info` at 0x4002000: rw",
            "memory region `blk_request` at 0x4000000: rw",
            "memory region `blk_response` at 0x4001000: rw",
            "memory region `blk_virtio` at 0x10200000: rw",
            "memory region `console_virtio_blk` at 0x5000000: rw",
        ],
    ),
    (
        "virtio-net",
        &[
            "BAR 4 of PCI 1af4:1041#0 at 0x10100000: rw, uncached",
            "configuration space of PCI 1af4:1041#0 at 0x10000000: r-",
            "memory region `console_virtio_net` at 0x5000000: rw",
            "memory region `net_rx_active` at 0x30002000: rw",
            "memory region `net_rx_free` at 0x30000000: rw",
            "memory region `net_tx_active` at 0x30008000: rw",
            "memory region `net_tx_free` at 0x30004000: rw",
            "memory region `net_virtio` at 0x20000000: rw",
        ],
    ),
];

/// The least-privilege properties, checked on a plan independently of
/// `rights::check` (which the planner runs): only the owner of an endpoint
/// or notification receives on it, and never on the monitor's fault
/// endpoint; callers and fault senders hold Write and Grant, notifiers
/// Write; no PD holds its own TCB, only a parent its children's; an IRQ
/// handler only in the PD whose notification the interrupt is delivered
/// to. Returns each PD's I/O port ranges, for the caller to pin.
fn assert_least_privilege(plan: &Plan) -> BTreeMap<String, Vec<(u16, u16)>> {
    let spec = &plan.spec;
    let kind = |id: ObjId| spec.locate(id).map(|(o, _)| o.kind);
    let thread_of_cnode: HashMap<ObjId, &Thread> = spec.threads.iter().map(|t| (t.cspace, t)).collect();
    let name = |t: &Thread| spec.pds[t.pd as usize].name.clone();
    let own_notification =
        |t: &Thread| spec.caps.iter().find(|c| c.cnode == t.cspace && c.slot == cspace::NOTIFICATION).map(|c| c.source);
    let mut readers: BTreeMap<ObjId, BTreeSet<String>> = BTreeMap::new();
    let mut ports: BTreeMap<String, Vec<(u16, u16)>> = BTreeMap::new();
    for cap in &spec.caps {
        let t = thread_of_cnode[&cap.cnode];
        let pd = name(t);
        let at = format!("{pd} slot {}", cap.slot);
        match cap.source {
            CapSource::Object(id) => match kind(id) {
                Some(ObjectKind::Endpoint | ObjectKind::Notification) => {
                    if cap.rights.read {
                        assert!(
                            [cspace::INPUT, cspace::NOTIFICATION].contains(&cap.slot),
                            "{at}: Read outside its own slots"
                        );
                        assert_ne!(id, spec.fault_endpoint, "{at}: Read on the monitor's fault endpoint");
                        assert!(!cap.rights.write && !cap.rights.grant, "{at}: its own object, to receive only");
                        readers.entry(id).or_default().insert(pd.clone());
                    } else if kind(id) == Some(ObjectKind::Endpoint) {
                        assert_eq!(cap.rights, Rights::WRITE_GRANT, "{at}: a call or fault endpoint");
                    } else {
                        assert_eq!(cap.rights, Rights::WRITE, "{at}: a peer's notification");
                    }
                }
                Some(ObjectKind::Tcb) => {
                    assert_ne!(id, t.tcb, "{at}: the PD's own TCB");
                    let child = spec.threads.iter().find(|c| c.tcb == id).expect("a PD's TCB");
                    assert_eq!(spec.pds[child.pd as usize].parent, Some(t.pd), "{at}: the TCB of a PD not its child");
                }
                other => panic!("{at}: a PD holds {other:?}"),
            },
            CapSource::Irq(i) => {
                let to = spec.irqs[i as usize].notification;
                assert_eq!(own_notification(t), Some(CapSource::Object(to)), "{at}: an IRQ delivered to another PD");
            }
            CapSource::IoPort(i) => {
                let r = &spec.ioports[i as usize];
                ports.entry(pd).or_default().push((r.first, r.last));
            }
        }
    }
    for (id, pds) in readers {
        assert_eq!(pds.len(), 1, "object {id} is received on by {pds:?}");
    }
    let all: Vec<(u16, u16)> = ports.values().flatten().copied().collect();
    for (i, a) in all.iter().enumerate() {
        assert!(all[..i].iter().all(|b| a.1 < b.0 || b.1 < a.0), "I/O ports {a:x?} held twice");
        assert!(a.1 < 0xcf8 || 0xcff < a.0, "PCI configuration ports {a:x?} given to a PD");
    }
    ports
}

#[test]
fn microkit_system_grants_least_privilege() {
    let plan = plan_system(&microkit_system());
    let ports = assert_least_privilege(&plan);
    // The PIT and the CMOS real-time clock (0x70-0x71, the wall clock it
    // hands out) are the timer's; COM1 is the serial console's. httpd holds
    // no I/O port.
    let expected: BTreeMap<String, Vec<(u16, u16)>> =
        [("serial".to_string(), vec![(0x3f8, 0x3ff)]), ("timer".to_string(), vec![(0x40, 0x43), (0x70, 0x71)])].into();
    assert_eq!(ports, expected);
    // The interrupts: the timer's PIT line and each virtio device's.
    let holders: Vec<String> = cap_table(&plan)
        .into_iter()
        .filter(|(_, caps)| caps.iter().any(|c| c.contains("IRQ handler")))
        .map(|(pd, _)| pd)
        .collect();
    assert_eq!(holders, ["serial", "timer", "virtio-blk", "virtio-net"]);
}

#[test]
fn every_shipped_description_grants_least_privilege() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("microkit.system")];
    let mut tests: Vec<_> = std::fs::read_dir(root.join("tests/systems"))
        .expect("tests/systems")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "system"))
        .collect();
    tests.sort();
    files.extend(tests);
    assert!(files.len() > 5, "{files:?}");
    for path in files {
        let sys = tools_sdf::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // `plan` itself refuses a plan that breaks `rights::check`.
        let plan = plan_system(&sys);
        assert_least_privilege(&plan);
        let checked = rights::check(&plan.spec).expect("checked by the planner");
        assert_eq!(checked.pds, plan.pds.len(), "{}", path.display());
    }
}

/// What `rights::check` says about `spec` once `mutate` has changed the
/// capability at `slot` of PD `pd`.
fn mutated(plan: &Plan, pd: &str, slot: u64, mutate: impl FnOnce(&mut CapInstall)) -> Vec<rights::Violation> {
    let mut spec = plan.spec.clone();
    let index = spec.pds.iter().position(|p| p.name == pd).expect("a PD") as u32;
    let cnode = spec.threads.iter().find(|t| t.pd == index).expect("its thread").cspace;
    let cap = spec.caps.iter_mut().find(|c| c.cnode == cnode && c.slot == slot).expect("a planned cap");
    mutate(cap);
    rights::check(&spec).err().unwrap_or_default()
}

#[test]
fn a_plan_granting_more_fails_the_rules_and_the_pin() {
    let plan = plan_system(&microkit_system());
    let call = cspace::PROTECTED_CALL_BASE;
    // httpd calling net-mux with Read again, as before least privilege.
    let v = mutated(&plan, "httpd", call, |c| c.rights = Rights::ALL);
    assert!(
        v.iter().any(|v| v.pd == "httpd"
            && v.slot == call
            && v.problem == rights::Problem::WrongRights { expected: Rights::WRITE_GRANT, found: Rights::ALL }),
        "{v:#?}"
    );
    let mut spec = plan.spec.clone();
    spec.caps.iter_mut().filter(|c| c.slot == call).for_each(|c| c.rights = Rights::ALL);
    let loose = Plan { spec, data: Vec::new(), object_names: plan.object_names.clone(), pds: Vec::new() };
    let diff = table_diff(&cap_table(&loose), MICROKIT_CAPS);
    assert!(diff.contains("httpd: + slot 128: endpoint of net-mux, rights RWG"), "{diff}");

    // The monitor's fault endpoint with Read.
    let v = mutated(&plan, "arpd", cspace::FAULT_EP, |c| c.rights = Rights::ALL);
    assert!(v.iter().any(|v| v.pd == "arpd" && matches!(v.problem, rights::Problem::WrongRights { .. })), "{v:#?}");
    // A peer's notification with Read.
    let v = mutated(&plan, "net-mux", cspace::OUTPUT_NOTIFICATION_BASE + 3, |c| c.rights = Rights::ALL);
    assert!(v.iter().any(|v| matches!(v.problem, rights::Problem::ReadShared { .. })), "{v:#?}");
    // httpd's own notification replaced by the NIC driver's IRQ handler.
    let irq = plan.spec.caps.iter().find(|c| matches!(c.source, CapSource::Irq(_))).expect("an IRQ").source;
    let v = mutated(&plan, "httpd", cspace::NOTIFICATION, |c| {
        c.slot = cspace::IRQ_BASE;
        c.source = irq;
        c.rights = Rights::NONE;
    });
    assert!(v.iter().any(|v| v.pd == "httpd" && v.problem == rights::Problem::NotOwnNotification), "{v:#?}");
    // A PD's own TCB back in slot 4.
    let mut spec = plan.spec.clone();
    let stray = spec.pds.iter().position(|p| p.name == "stray").expect("stray") as u32;
    let t = spec.threads.iter().find(|t| t.pd == stray).expect("its thread").clone();
    spec.caps.push(CapInstall {
        cnode: t.cspace,
        slot: 4,
        source: CapSource::Object(t.tcb),
        rights: Rights::ALL,
        badge: 0,
    });
    let v = rights::check(&spec).expect_err("an own TCB");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].pd.as_str(), v[0].slot, &v[0].problem), ("stray", 4, &rights::Problem::NoSuchSlot));
}

#[test]
fn the_description_and_the_boot_check_reserve_the_same_pci_configuration_ports() {
    assert_eq!(tools_sdf::limits::PCI_CONFIG_PORTS, rights::PCI_CONFIG_PORTS);
}

/// The fault policies of `microkit.system` (README, "Recovery"), pinned;
/// no PD of it may make others fault; and every PD's reset frames are its
/// writable image pages and its whole stack, never a memory region.
#[test]
fn microkit_system_fault_policies_and_reset_frames() {
    let plan = plan_system(&microkit_system());
    let policies: Vec<String> = plan.spec.pds.iter().map(|pd| format!("{}: {}", pd.name, pd.on_fault.name())).collect();
    assert_eq!(
        policies,
        [
            "timer: restart-backoff",
            "virtio-net: restart-backoff",
            "net-mux: stop",
            "arpd: restart-backoff",
            "stray: restart-backoff",
            "virtio-blk: restart-backoff",
            "file-cache: restart-backoff",
            "httpd: restart-backoff",
            "ftpd: restart-backoff",
            "serial: restart-backoff",
            "idle: restart-backoff",
        ]
    );
    assert!(plan.spec.pds.iter().all(|pd| !pd.fault_injector), "a deployed system injects no faults");
    let sys = microkit_system();
    // `object_names` has one name per run of objects.
    let run_of = |id: u32| {
        let mut first = 0;
        for (run, object) in plan.spec.objects.iter().enumerate() {
            if id < first + object.count {
                return run;
            }
            first += object.count;
        }
        panic!("no object {id}")
    };
    for (info, pd) in plan.spec.pds.iter().zip(sys.all_pds()) {
        let frames: u32 = info.reset_frames.iter().map(|run| run.count).sum();
        assert!(u64::from(frames) > pd.stack_size / 4096, "{}: its stack and a data page at least", info.name);
        for run in &info.reset_frames {
            for id in run.first..run.first + run.count {
                let name = &plan.object_names[run_of(id)];
                assert!(
                    name.starts_with("program image of") || name.starts_with("stack of"),
                    "{}: resets {name}",
                    info.name
                );
            }
        }
    }
}

/// The PDs of `microkit.system` whose callers the monitor answers
/// `LABEL_SERVER_STOPPED` when they are stopped for good: those that
/// receive on an endpoint (every PD some channel end calls with `pp`).
#[test]
fn microkit_system_servers_that_accept_calls() {
    let plan = plan_system(&microkit_system());
    let servers: Vec<&str> = (0..plan.spec.pds.len() as u32)
        .filter(|&pd| plan.spec.accepts_calls(pd))
        .map(|pd| plan.spec.pds[pd as usize].name.as_str())
        .collect();
    assert_eq!(servers, ["timer", "virtio-net", "net-mux", "arpd"]);
    assert!(!plan.spec.accepts_calls(plan.spec.pds.len() as u32), "no such PD");
}

#[test]
fn a_fault_injector_is_marked_in_the_spec() {
    let sys = parse(
        r#"<system>
  <protection_domain name="victim" on_fault="restart"><program_image path="a" /></protection_domain>
  <protection_domain name="killer" inject_faults="true"><program_image path="b" /></protection_domain>
</system>"#,
    );
    let plan = plan_system(&sys);
    let marked: Vec<(&str, bool, &str)> =
        plan.spec.pds.iter().map(|pd| (pd.name.as_str(), pd.fault_injector, pd.on_fault.name())).collect();
    assert_eq!(marked, [("victim", false, "restart"), ("killer", true, "stop")]);
}

/// Each device's DMA windows, as `owner: region (frames, access)` lines.
fn dma_of(plan: &Plan) -> Vec<String> {
    plan.spec
        .pci_devices
        .iter()
        .flat_map(|d| {
            d.dma.iter().map(move |w| format!("{}: {} ({} frames, {})", d.owner, w.region, w.frames.count, w.access()))
        })
        .collect()
}

#[test]
fn a_device_may_dma_to_exactly_the_regions_its_driver_learns_the_address_of() {
    let plan = plan_system(&microkit_system());
    assert_eq!(
        dma_of(&plan),
        [
            // The rings both ways; received frames written; what is sent
            // (headers, payload, the file cache in place) only read.
            "virtio-net: net_virtio (16 frames, rw)",
            "virtio-net: net_rx_data (128 frames, w)",
            "virtio-net: net_tx_headers (4 frames, r)",
            "virtio-net: net_tx_payload (256 frames, r)",
            "virtio-net: site_cache (16384 frames, r)",
            // The queue both ways; the file cache only filled (the disk
            // is read-only).
            "virtio-blk: blk_virtio (4 frames, rw)",
            "virtio-blk: site_cache (16384 frames, w)",
        ]
    );
    // The windows are the regions' own frames, 4 KiB each.
    for d in &plan.spec.pci_devices {
        for w in &d.dma {
            let (object, index) = plan.spec.locate(w.frames.first).expect("a planned object");
            assert_eq!(index, 0, "{}: a window starts at its region's first frame", w.region);
            assert_eq!(object.count, w.frames.count, "{}: the whole region", w.region);
            assert!(matches!(object.kind, ObjectKind::Frame { size_bits: 12, .. }), "{}", w.region);
        }
    }
    // Nothing the driver is not given: no queue shared with a client, no
    // console ring, no region of another PD.
    let virtio_net: Vec<&str> = plan.spec.pci_devices[0].dma.iter().map(|w| w.region.as_str()).collect();
    assert!(!virtio_net.iter().any(|r| r.starts_with("net_rx_free") || r.starts_with("console")));
}

const DMA_SYSTEM: &str = r#"<?xml version="1.0"?>
<system>
  <memory_region name="ring" size="0x2000" />
  <memory_region name="big" size="0x400000" page_size="0x200000" />
  <memory_region name="private" size="0x1000" />
  <protection_domain name="drv" priority="100">
    <program_image path="drv" />
    <pci_device id="0" vendor="0x1af4" device="0x1041" irq="1">
      <bar index="4" vaddr="0x10100000" size="0x4000" />
    </pci_device>
    <map mr="private" vaddr="0x20000000" perms="rw" />
    <setvar symbol="ring_paddr" region_paddr="ring" dma="r" />
    <setvar symbol="ring_paddr_again" region_paddr="ring" RING_AGAIN />
    BIG
  </protection_domain>
</system>"#;

#[test]
fn dma_regions_are_listed_once_and_mapped_regions_are_not_dma_regions() {
    let system = |again: &str| DMA_SYSTEM.replace("BIG", "").replace("RING_AGAIN", again);
    // Two setvars of one region: one window, with what either allows
    // (the default is rw).
    let plan = plan_system(&parse(&system("")));
    assert_eq!(dma_of(&plan), ["drv: ring (2 frames, rw)"]);
    assert_eq!(plan.pds[0].dma, ["PCI 1af4:1041#0: memory region `ring` (8 KiB), rw: read and write"]);
    let plan = plan_system(&parse(&system(r#"dma="r""#)));
    assert_eq!(dma_of(&plan), ["drv: ring (2 frames, r)"]);
    assert_eq!(plan.pds[0].dma, ["PCI 1af4:1041#0: memory region `ring` (8 KiB), r: the device reads it"]);
    let plan = plan_system(&parse(&system(r#"dma="w""#)));
    assert_eq!(dma_of(&plan), ["drv: ring (2 frames, rw)"]);
    let w = &plan.spec.pci_devices[0].dma[0];
    assert!(w.device_reads && w.device_writes);
}

#[test]
fn a_dma_region_of_2_mib_pages_is_refused() {
    let sys = parse(
        &DMA_SYSTEM.replace("BIG", r#"<setvar symbol="big_paddr" region_paddr="big" />"#).replace("RING_AGAIN", ""),
    );
    let programs = sys.all_pds().into_iter().map(|pd| program_for(&sys, pd)).collect();
    let Err(e) = super::plan(&sys, programs) else { panic!("a 2 MiB-page DMA region was accepted") };
    let message = e.to_string();
    assert!(
        message.contains("memory region `big` is a DMA region of PCI 1af4:1041#0")
            && message.contains("seL4 5.0 maps only 4 KiB frames into a device's IOSpace"),
        "{message}"
    );
}
