extern crate std;

use super::*;
use pds_boot_spec::badge;
use std::string::{String, ToString};
use std::vec::Vec;

fn pds() -> Vec<PdInfo> {
    ["timer", "net-mux", "httpd"]
        .iter()
        .map(|n| PdInfo { name: n.to_string(), parent: None, ..Default::default() })
        .collect()
}

fn line(pds: &[PdInfo], badge: u64, fault: Fault) -> String {
    FaultReport::new(pds, badge, fault).to_string()
}

const VM_FAULT: Fault = Fault::VmFault { ip: 0x20_1234, addr: 0x10, prefetch_fault: false, fsr: 6 };

fn panic_at(ip: u64) -> Fault {
    Fault::UnknownSyscall { fault_ip: ip, rsp: 0x7fff_ff7f_f000, flags: 0, syscall: PANIC_SYSCALL, rax: 0 }
}

#[test]
fn the_badge_is_the_pd_index_plus_one() {
    assert_eq!(pd_index(1, 3), Some(0));
    assert_eq!(pd_index(3, 3), Some(2));
    // 0 is "no badge", and past the last PD names none.
    assert_eq!(pd_index(0, 3), None);
    assert_eq!(pd_index(4, 3), None);
    assert_eq!(pd_index(u64::MAX, 3), None);
    assert_eq!(pd_index(1, 0), None);
    // A child's fault badge never reaches the monitor; if it did, it names
    // no PD.
    assert_eq!(pd_index(badge::CHILD_FAULT | 1, 3), None);
}

#[test]
fn a_vm_fault_names_the_pd_its_address_and_ip() {
    let pds = pds();
    let report = FaultReport::new(&pds, 2, VM_FAULT);
    assert_eq!(report.pd, Some(1));
    assert_eq!(report.name, "net-mux");
    assert_eq!(report.what, What::Faulted { kind: "VM fault", addr: Some(0x10), ip: Some(0x20_1234) });
    assert_eq!(report.action, Action::LeaveStopped);
    assert_eq!(
        report.to_string(),
        "PD 'net-mux' faulted: VM fault at address 0x10 ip 0x201234; it is stopped, the others go on"
    );
}

#[test]
fn a_panic_is_reported_as_a_panic() {
    let pds = pds();
    let report = FaultReport::new(&pds, 3, panic_at(0x40_0abc));
    assert_eq!(report.what, What::Panicked { ip: 0x40_0abc });
    assert_eq!(report.action, Action::LeaveStopped);
    assert_eq!(report.to_string(), "PD 'httpd' panicked (ip 0x400abc); it is stopped, the others go on");
    assert!(is_panic(&panic_at(0)));
}

#[test]
fn another_unknown_syscall_is_a_fault_not_a_panic() {
    let pds = pds();
    let fault = Fault::UnknownSyscall { fault_ip: 0x1000, rsp: 0, flags: 0, syscall: PANIC_SYSCALL + 1, rax: 0 };
    assert!(!is_panic(&fault));
    assert_eq!(
        line(&pds, 1, fault),
        "PD 'timer' faulted: unknown syscall at address - ip 0x1000; it is stopped, the others go on"
    );
}

#[test]
fn every_kind_of_fault_is_named_with_what_it_carries() {
    let pds = pds();
    let cases = [
        (
            Fault::CapFault { ip: 0x2000, addr: 0x41, in_recv_phase: false, lookup_failure_type: 1, bits_left: 0 },
            "cap fault at address 0x41 ip 0x2000",
        ),
        (
            Fault::UserException { fault_ip: 0x3000, stack: 0, flags: 0, number: 0, code: 0 },
            "user exception at address - ip 0x3000",
        ),
        (VM_FAULT, "VM fault at address 0x10 ip 0x201234"),
        (Fault::Null, "null fault at address - ip -"),
        (Fault::Unknown(42), "unknown fault at address - ip -"),
    ];
    for (fault, says) in cases {
        let report = FaultReport::new(&pds, 1, fault);
        assert!(matches!(report.what, What::Faulted { .. }), "{fault:?}");
        assert_eq!(report.action, Action::LeaveStopped);
        assert_eq!(report.to_string(), std::format!("PD 'timer' faulted: {says}; it is stopped, the others go on"));
    }
}

#[test]
fn a_badge_naming_no_pd_is_reported_as_unknown() {
    let pds = pds();
    for badge in [0, 4, 1000] {
        let report = FaultReport::new(&pds, badge, VM_FAULT);
        assert_eq!((report.pd, report.name), (None, UNKNOWN_PD), "badge {badge}");
        assert_eq!(report.action, Action::LeaveStopped);
        assert!(report.to_string().starts_with("PD '?' faulted: VM fault"), "{report}");
    }
    assert_eq!(line(&[], 1, panic_at(0x10)), "PD '?' panicked (ip 0x10); it is stopped, the others go on");
}

#[test]
fn the_decision_ends_the_line() {
    use crate::restart::Decision;
    let pds = pds();
    let mut report = FaultReport::new(&pds, 2, VM_FAULT);
    report.decide(Decision::Restart { restart: 3, delay_ns: 0 });
    assert_eq!(report.action, Action::Restart { restart: 3, delay_ns: 0 });
    assert!(report.to_string().ends_with("; restarting it (restart 3)"), "{report}");
    report.decide(Decision::Restart { restart: 4, delay_ns: 20_000_000 });
    assert!(report.to_string().ends_with("; restarting it in 20 ms (restart 4)"), "{report}");
    report.decide(Decision::GiveUp { faults: 6 });
    assert!(report.to_string().ends_with("; 6 faults in a row: it is stopped for good, the others go on"), "{report}");
    report.decide(Decision::Stop);
    assert!(report.to_string().ends_with("; it is stopped, the others go on"), "{report}");
}
