//! The human-readable report: per PD its address space, capabilities and
//! channels, then the memory plan.

use crate::memory::MemoryPlan;
use crate::plan::Plan;
use crate::Options;
use sdf::SystemDescription;
use std::fmt::Write;

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub fn render(sys: &SystemDescription, plan: &Plan, mem: &MemoryPlan, opts: &Options) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "System report for {}", sys.file.display());
    let _ = writeln!(r, "kernel: {}; target: x86_64 pc99, {} RAM", opts.kernel, size(mem.ram));
    let _ = writeln!(
        r,
        "{} protection domains, {} memory regions, {} channels, {} kernel objects",
        plan.pds.len(),
        sys.memory_regions.len(),
        sys.channels.len(),
        plan.spec.instance_count()
    );

    for pd in &plan.pds {
        let _ = writeln!(r, "\n== PD {} ==", pd.name);
        let _ = writeln!(
            r,
            "priority {}, pp {}, passive {}, stack {}{}",
            pd.priority,
            if pd.pp { "yes" } else { "no" },
            if pd.passive { "yes" } else { "no" },
            size(pd.stack_size),
            pd.parent.as_ref().map(|p| format!(", child of {p}")).unwrap_or_default()
        );
        let _ = writeln!(r, "program image: {} (entry {:#x})", pd.program.display(), pd.entry);
        let _ = writeln!(r, "address space:");
        for v in &pd.ranges {
            let _ = writeln!(r, "  {:#014x}..{:#014x}  {}  {:>9}  {}", v.start, v.end, v.perms, size(v.end - v.start), v.what);
        }
        let _ = writeln!(r, "capabilities (CSpace of {} slots):", 1u64 << boot_spec::cspace::RADIX_BITS);
        for (slot, what) in &pd.caps {
            let _ = writeln!(r, "  slot {slot:>3}  {what}");
        }
        if !pd.channels.is_empty() {
            let _ = writeln!(r, "channels:");
            for c in &pd.channels {
                let _ = writeln!(r, "  {c}");
            }
        }
    }

    let _ = writeln!(r, "\n== Memory regions ==");
    for mr in &sys.memory_regions {
        let users: Vec<String> = sys
            .all_pds()
            .iter()
            .flat_map(|pd| pd.maps.iter().filter(|m| m.mr == mr.name).map(|m| format!("{} at {:#x} ({})", pd.name, m.vaddr, m.perms)))
            .collect();
        let _ = writeln!(
            r,
            "  {}: {} in {} pages of {}{}; mapped by {}",
            mr.name,
            size(mr.size),
            mr.page_count(),
            size(mr.page_size.bytes()),
            mr.phys_addr.map(|p| format!(" at physical {p:#x}")).unwrap_or_default(),
            if users.is_empty() { "nobody".to_string() } else { users.join(", ") }
        );
    }

    let _ = writeln!(r, "\n== Physical memory plan ==");
    let _ = writeln!(r, "  {:<16} {:>8} {:>12}", "object", "count", "bytes");
    for (kind, count, bytes) in &mem.by_kind {
        let _ = writeln!(r, "  {kind:<16} {count:>8} {:>12}", size(*bytes));
    }
    for (name, paddr, bytes) in &mem.fixed {
        let _ = writeln!(r, "  fixed: {name} at {paddr:#x}..{:#x}", paddr + bytes);
    }
    let _ = writeln!(
        r,
        "  total {} of about {} free after kernel and root task ({:.1}%); largest contiguous block {}",
        size(mem.total),
        size(mem.available),
        100.0 * mem.total as f64 / mem.available.max(1) as f64,
        size(mem.largest_block)
    );
    let _ = writeln!(r, "  root task image {} (initialiser, boot spec, PD images)", size(mem.image_bytes));
    let _ = writeln!(r, "  initialiser CNode slots needed: {} of 65536", mem.slots_needed);
    let _ = writeln!(
        r,
        "  Physical addresses are chosen at boot from the untyped memory the kernel reports; \
         frames of one region are always physically contiguous."
    );
    r
}
