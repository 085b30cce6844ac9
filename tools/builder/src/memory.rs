//! Checking, before boot, that the system fits the target's memory.
//!
//! The initialiser allocates every object from the untyped memory the kernel
//! hands over, which arrives as naturally aligned power-of-two blocks. The
//! check models that: it takes the target's RAM, removes what the kernel and
//! the root task keep for themselves (generously), splits the rest into
//! blocks the way the kernel does, and places every object run with the same
//! algorithm the initialiser uses (`pds_boot_spec::untyped`). A run that cannot be
//! placed here would fail at boot, so it is an error now.

use crate::plan::Plan;
use crate::Error;
use pds_boot_spec::untyped::{self, Untyped};
use pds_boot_spec::ObjectKind;
use tools_sdf::{Diagnostic, Loc, SystemDescription};

/// RAM below 1 MiB is firmware's; the kernel image, its data (with an
/// IOMMU, its VT-d root and context tables: 257 pages), the root task's own
/// objects (root CNode of 2^17 slots: 4 MiB, boot info, page tables) and
/// the IO page tables the initialiser makes for the devices' DMA regions
/// (one per 2 MiB of a region, and a few per device) come next. The
/// figure is deliberately generous.
const KERNEL_AND_ROOT_TASK: u64 = 24 << 20;
/// Slots the root task needs beyond one per object (cap copies, IRQ
/// handlers, padding), and the size of its CNode (kernel config).
const ROOT_CNODE_SLOTS: u64 = 1 << 17;
const ROOT_RESERVED_SLOTS: u64 = 1024;

/// The machine the image is built for.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub ram_bytes: u64,
}

/// What the report says about memory.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// (kind, instances, bytes)
    pub by_kind: Vec<(String, u64, u64)>,
    pub total: u64,
    pub available: u64,
    pub largest_block: u64,
    pub ram: u64,
    pub image_bytes: u64,
    pub fixed: Vec<(String, u64, u64)>,
    pub slots_needed: u64,
}

/// Root CNode slots the initialiser needs for the devices' IOSpaces, where
/// the machine has an IOMMU: per device its IOSpace capability and the
/// top IO page table, per DMA frame a copy of its capability (a frame
/// capability maps once), and the IO page tables: at most one per 2 MiB
/// of a window (and one more where it straddles a boundary) and one per
/// 1 GiB (likewise).
pub fn dma_slots(spec: &pds_boot_spec::Spec) -> u64 {
    let per_window = |count: u64| count + count.div_ceil(512) + 1 + count.div_ceil(512 * 512) + 1;
    spec.pci_devices.iter().map(|d| 2 + d.dma.iter().map(|w| per_window(u64::from(w.frames.count))).sum::<u64>()).sum()
}

/// Object size in bytes as log2.
pub fn object_bits(kind: ObjectKind) -> u8 {
    use sel4::ObjectType as T;
    let fixed = |t: T| t.fixed_size_bits().expect("fixed-size object type");
    match kind {
        ObjectKind::Tcb => fixed(T::Tcb),
        ObjectKind::Endpoint => fixed(T::Endpoint),
        ObjectKind::Notification => fixed(T::Notification),
        ObjectKind::CNode { radix_bits } => radix_bits + sel4::SLOT_BITS,
        ObjectKind::VSpace => fixed(T::X64_Pml4),
        ObjectKind::Pdpt => fixed(T::X86_Pdpt),
        ObjectKind::PageDirectory => fixed(T::X86_PageDirectory),
        ObjectKind::PageTable => fixed(T::X86_PageTable),
        ObjectKind::Frame { size_bits, .. } => size_bits,
        ObjectKind::PciBar { .. } => 12,
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Tcb => "TCB",
        ObjectKind::Endpoint => "endpoint",
        ObjectKind::Notification => "notification",
        ObjectKind::CNode { .. } => "CNode",
        ObjectKind::VSpace => "VSpace (PML4)",
        ObjectKind::Pdpt => "PDPT",
        ObjectKind::PageDirectory => "page directory",
        ObjectKind::PageTable => "page table",
        ObjectKind::Frame { size_bits: 21, .. } => "2 MiB frame",
        ObjectKind::Frame { .. } => "4 KiB frame",
        ObjectKind::PciBar { .. } => "PCI BAR page",
    }
}

/// Splits `[lo, hi)` into maximal naturally aligned power-of-two blocks.
fn blocks(mut lo: u64, hi: u64) -> Vec<Untyped> {
    let mut out = Vec::new();
    while lo < hi {
        let align_bits = lo.trailing_zeros().min(63);
        let room_bits = 63 - (hi - lo).leading_zeros();
        let bits = align_bits.min(room_bits) as u8;
        out.push(Untyped::new(lo, bits, false));
        lo += 1 << bits;
    }
    out
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

pub fn check(plan: &Plan, sys: &SystemDescription, target: Target, image_bytes: u64) -> Result<MemoryPlan, Error> {
    let reserved = (1 << 20) + KERNEL_AND_ROOT_TASK + image_bytes.next_multiple_of(1 << 20);
    let top = target.ram_bytes.saturating_sub(128 << 10);
    let mut untypeds = blocks(reserved.min(top), top);
    let available = untypeds.iter().map(|u| u.size()).sum::<u64>();
    let largest_block = untypeds.iter().map(|u| u.size()).max().unwrap_or(0);

    let mut by_kind: Vec<(String, u64, u64)> = Vec::new();
    let mut total = 0;
    let mut fixed = Vec::new();
    let mut runs = Vec::new();
    for (obj, name) in plan.spec.objects.iter().zip(&plan.object_names) {
        let bits = object_bits(obj.kind);
        let bytes = u64::from(obj.count) << bits;
        let kind = kind_name(obj.kind).to_string();
        match by_kind.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += u64::from(obj.count);
                k.2 += bytes;
            }
            None => by_kind.push((kind, u64::from(obj.count), bytes)),
        }
        match obj.kind {
            ObjectKind::Frame { paddr: Some(paddr), .. } => {
                fixed.push((name.clone(), paddr, bytes));
                continue;
            }
            // Device memory: not taken from RAM.
            ObjectKind::PciBar { .. } => continue,
            _ => {}
        }
        total += bytes;
        runs.push((bits, u64::from(obj.count), name.clone()));
    }
    // Same order as the initialiser: largest objects first.
    runs.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
    let mut errors = Vec::new();
    for (bits, count, name) in &runs {
        match untyped::place(&untypeds, *bits, *count) {
            Some(p) => {
                untypeds[p.untyped].take(*bits, *count);
            }
            None => {
                let bytes = count << bits;
                let loc = sys
                    .memory_regions
                    .iter()
                    .find(|r| name == &format!("memory region `{}`", r.name))
                    .map_or(Loc { line: 1, column: 1 }, |r| r.loc);
                errors.push(Diagnostic::new(
                    &sys.file,
                    loc,
                    format!(
                        "{name} needs {} of physically contiguous memory, which does not fit: the target has {} of RAM, \
                         about {} of it free for the system, in blocks of at most {}; all objects together need {}",
                        mib(bytes),
                        mib(target.ram_bytes),
                        mib(available),
                        mib(largest_block),
                        mib(total),
                    ),
                    "make the region smaller, or build for a machine with more memory (`cargo xtask build --ram <MiB>` and QEMU's -m)",
                ));
                break;
            }
        }
    }
    let slots_needed = u64::from(plan.spec.instance_count())
        + plan.spec.mappings.len() as u64
        + 2 * plan.spec.irqs.len() as u64
        + plan.spec.ioports.len() as u64
        + dma_slots(&plan.spec);
    if slots_needed + ROOT_RESERVED_SLOTS > ROOT_CNODE_SLOTS {
        errors.push(Diagnostic::new(
            &sys.file,
            Loc { line: 1, column: 1 },
            format!("the system needs {slots_needed} capability slots in the initialiser, more than its CNode holds ({ROOT_CNODE_SLOTS})"),
            "use page_size=\"0x200000\" for large memory regions, so they need fewer frames",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Description(tools_sdf::Diagnostics(errors)));
    }
    Ok(MemoryPlan { by_kind, total, available, largest_block, ram: target.ram_bytes, image_bytes, fixed, slots_needed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_cover_the_range() {
        let b = blocks(0x1100000, 0x20000000 - 0x20000);
        let mut at = 0x1100000;
        for u in &b {
            assert_eq!(u.paddr, at);
            assert_eq!(u.paddr % u.size(), 0);
            at += u.size();
        }
        assert_eq!(at, 0x20000000 - 0x20000);
        // The top of RAM is just below 512 MiB, so no 256 MiB block fits.
        assert_eq!(b.iter().map(|u| u.size()).max(), Some(128 << 20));
    }
}
