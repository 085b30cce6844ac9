//! The initialiser's capability self-check: what it can verify on seL4 5.0
//! that the capabilities it installed are the plan's, and the line it
//! prints.
//!
//! Two checks, because the kernel shows only part of a capability:
//!
//! 1. **Before minting**, the spec's capabilities are checked against the
//!    least-privilege rules ([`pds_boot_spec::rights::check`]): each slot's
//!    object kind, rights, badge and owner. Every capability is then minted
//!    from the object's original capability (all rights) with the spec's
//!    rights as the mask, and the kernel ANDs the two, so the installed
//!    rights are the checked ones. Rights cannot be read back: seL4 5.0 has
//!    no call that reports a capability's rights, and probing them (a
//!    receive on a capability without Read) would fault the prober.
//! 2. **After minting**, [`verify_installed`] asks the kernel, slot by
//!    slot, whether each PD's CSpace holds a capability: every planned slot
//!    must, every other slot (all 2^[`cspace::RADIX_BITS`], the old own-TCB
//!    slot among them) must be empty. The initialiser answers with CNode
//!    calls that succeed silently in the expected case (copying a planned
//!    capability out, copying a rightless placeholder into an empty slot
//!    and deleting it again), so a healthy boot prints no kernel errors.
//!
//! What neither can see: which object a capability names (there is no
//! identify call on a release kernel; the debug kernel's
//! `seL4_DebugCapIdentify` reports only the type) and its badge.
//! The objects are the ones the initialiser created for the spec, in slots
//! it computed from the same spec.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use pds_boot_spec::rights::Checked;
use pds_boot_spec::{cspace, ObjId, Spec};

/// What the kernel showed: the plan's capabilities, and nothing else, in
/// every PD's CSpace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Capabilities found where the plan put them.
    pub caps: usize,
    /// PDs whose CSpace was scanned.
    pub pds: usize,
    /// Slots asked about (planned and empty).
    pub slots: usize,
}

impl fmt::Display for Installed {
    /// The line the monitor prints at boot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capabilities checked: {} caps in {} PDs match the plan (rights: least privilege, checked before minting; \
             {} CSpace slots scanned: each planned one holds a capability, every other is empty)",
            self.caps, self.pds, self.slots
        )
    }
}

/// A slot whose state differs from the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub pd: String,
    pub slot: u64,
    /// `true`: the plan puts a capability here and the slot is empty;
    /// `false`: the plan leaves it empty and it holds one.
    pub planned: bool,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.planned {
            write!(f, "PD `{}` slot {}: the planned capability is not there", self.pd, self.slot)
        } else {
            write!(f, "PD `{}` slot {}: holds a capability the plan does not give it", self.pd, self.slot)
        }
    }
}

/// Scans every slot of every PD's CSpace with `occupied(cnode, slot,
/// planned)`, the kernel's answer to whether the slot holds a capability
/// (`planned` says which answer the plan expects, so that the caller can
/// ask the way that is silent when it holds). `rules` is what the
/// least-privilege check found before minting.
pub fn verify_installed(
    spec: &Spec,
    rules: Checked,
    mut occupied: impl FnMut(ObjId, u64, bool) -> bool,
) -> Result<Installed, Vec<Mismatch>> {
    let mut planned: BTreeMap<ObjId, Vec<u64>> = BTreeMap::new();
    for cap in &spec.caps {
        planned.entry(cap.cnode).or_default().push(cap.slot);
    }
    let mut mismatches = Vec::new();
    let mut found = 0;
    let mut slots = 0;
    for thread in &spec.threads {
        let name = spec.pds.get(thread.pd as usize).map_or("?", |pd| pd.name.as_str());
        let plan = planned.get(&thread.cspace).map_or(&[][..], Vec::as_slice);
        for slot in 0..1u64 << cspace::RADIX_BITS {
            let expected = plan.contains(&slot);
            let holds = occupied(thread.cspace, slot, expected);
            slots += 1;
            if holds == expected {
                found += usize::from(holds);
            } else {
                mismatches.push(Mismatch { pd: String::from(name), slot, planned: expected });
            }
        }
    }
    if !mismatches.is_empty() {
        return Err(mismatches);
    }
    debug_assert_eq!(found, rules.caps);
    Ok(Installed { caps: found, pds: rules.pds, slots })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;
    use pds_boot_spec::{CapInstall, CapSource, PdInfo, Rights, Thread};
    use std::collections::BTreeSet;

    fn thread(pd: u32, cspace: ObjId) -> Thread {
        Thread {
            pd,
            tcb: 0,
            cspace,
            vspace: 0,
            ipc_buffer: 0,
            ipc_buffer_vaddr: 0,
            priority: 1,
            fault_ep: cspace::FAULT_EP,
            entry: 0,
            stack_top: 0,
            bound_notification: None,
        }
    }

    /// Two PDs (CNodes 10 and 20) with three and four capabilities.
    fn spec() -> Spec {
        let cap =
            |cnode, slot| CapInstall { cnode, slot, source: CapSource::Object(1), rights: Rights::READ, badge: 0 };
        Spec {
            caps: vec![cap(10, 1), cap(10, 2), cap(10, 3), cap(20, 1), cap(20, 2), cap(20, 3), cap(20, 128)],
            threads: vec![thread(0, 10), thread(1, 20)],
            pds: vec![
                PdInfo { name: "a".into(), parent: None, ..Default::default() },
                PdInfo { name: "b".into(), parent: None, ..Default::default() },
            ],
            ..Default::default()
        }
    }

    const RULES: Checked = Checked { caps: 7, pds: 2 };

    /// The (CNode, slot) pairs a kernel's CSpaces hold.
    fn kernel(held: &[(ObjId, u64)]) -> BTreeSet<(ObjId, u64)> {
        held.iter().copied().collect()
    }

    #[test]
    fn the_planned_caps_and_nothing_else_pass_with_the_boot_line() {
        let spec = spec();
        let held = kernel(&[(10, 1), (10, 2), (10, 3), (20, 1), (20, 2), (20, 3), (20, 128)]);
        let mut asked = Vec::new();
        let installed = verify_installed(&spec, RULES, |cnode, slot, planned| {
            asked.push((cnode, slot, planned));
            held.contains(&(cnode, slot))
        });
        assert_eq!(installed, Ok(Installed { caps: 7, pds: 2, slots: 1024 }));
        // Every slot of both CSpaces asked once, with the plan's expectation.
        assert_eq!(asked.len(), 1024);
        assert!(
            asked.contains(&(20, 128, true)) && asked.contains(&(20, 129, false)) && asked.contains(&(10, 4, false))
        );
        assert_eq!(
            format!("{}", installed.unwrap()),
            "capabilities checked: 7 caps in 2 PDs match the plan (rights: least privilege, checked before minting; \
             1024 CSpace slots scanned: each planned one holds a capability, every other is empty)"
        );
    }

    #[test]
    fn a_missing_or_an_unplanned_cap_is_reported_by_pd_and_slot() {
        let spec = spec();
        // b's call capability is missing; a holds a capability in slot 4
        // (where its own TCB used to be) and one in the last slot.
        let held = kernel(&[(10, 1), (10, 2), (10, 3), (10, 4), (10, 511), (20, 1), (20, 2), (20, 3)]);
        let mismatches = verify_installed(&spec, RULES, |cnode, slot, _| held.contains(&(cnode, slot)))
            .expect_err("three mismatches");
        assert_eq!(
            mismatches,
            [
                Mismatch { pd: "a".into(), slot: 4, planned: false },
                Mismatch { pd: "a".into(), slot: 511, planned: false },
                Mismatch { pd: "b".into(), slot: 128, planned: true },
            ]
        );
        assert_eq!(format!("{}", mismatches[0]), "PD `a` slot 4: holds a capability the plan does not give it");
        assert_eq!(format!("{}", mismatches[2]), "PD `b` slot 128: the planned capability is not there");
    }
}
