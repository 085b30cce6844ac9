//! The human-readable report: per PD its address space, capabilities and
//! channels, then the memory plan.

use crate::memory::MemoryPlan;
use crate::plan::{PdPlan, Plan};
use crate::Options;
use net_config::{
    arpd_client_channel, mux_client_channel, ClientRegion, FilterKind, ARP_TABLE_REGION, ARP_TABLE_VADDR,
    CLIENT_ARPD_CHANNEL, CLIENT_MUX_CHANNEL,
};
use net_filter::Dotted;
use pds_boot_spec::rights::{self, SlotRole};
use std::fmt::Write;
use tools_sdf::{Network, SystemDescription};

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
    for info in plan.spec.pds.iter().filter(|info| info.fault_injector) {
        let _ = writeln!(r, "{}", fault_injection_warning(&info.name));
    }

    for pd in &plan.pds {
        render_pd(&mut r, pd);
    }

    render_rights(&mut r, plan);

    if let Some(network) = &sys.network {
        render_network(&mut r, network, plan);
    }

    let _ = writeln!(r, "\n== Memory regions ==");
    for mr in &sys.memory_regions {
        let users: Vec<String> = sys
            .all_pds()
            .iter()
            .flat_map(|pd| {
                pd.maps
                    .iter()
                    .filter(|m| m.mr == mr.name)
                    .map(|m| format!("{} at {:#x} ({})", pd.name, m.vaddr, m.perms))
            })
            .collect();
        let _ = writeln!(
            r,
            "  {}{}: {} in {} pages of {}{}; mapped by {}",
            mr.name,
            mr.origin.note(),
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
    let _ = writeln!(r, "  initialiser CNode slots needed: {} of 131072", mem.slots_needed);
    let _ = writeln!(
        r,
        "  Physical addresses are chosen at boot from the untyped memory the kernel reports; \
         frames of one region are always physically contiguous."
    );
    r
}

/// The line the report starts with, and the builder prints, for each PD
/// that may make others fault: a test system, never a deployment.
pub fn fault_injection_warning(pd: &str) -> String {
    format!("WARNING: TEST SYSTEM: PD '{pd}' may make any PD fault (inject_faults=\"true\"): never deploy this image")
}

/// One PD: priority, program, address space, capabilities with their
/// rights, channels.
fn render_pd(r: &mut String, pd: &PdPlan) {
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
    let _ = writeln!(r, "on fault: {}", pd.on_fault);
    if pd.inject_faults {
        let _ = writeln!(r, "{}", fault_injection_warning(&pd.name));
    }
    let _ = writeln!(r, "program image: {} (entry {:#x})", pd.program.display(), pd.entry);
    let _ = writeln!(r, "address space:");
    for v in &pd.ranges {
        let _ =
            writeln!(r, "  {:#014x}..{:#014x}  {}  {:>9}  {}", v.start, v.end, v.perms, size(v.end - v.start), v.what);
    }
    let _ = writeln!(
        r,
        "capabilities ({} of {} CSpace slots; rights R receive, W send, G grant, n/a: the kind has none):",
        pd.caps.len(),
        1u64 << pds_boot_spec::cspace::RADIX_BITS
    );
    for cap in &pd.caps {
        let rights = cap.rights.map_or("n/a".to_string(), |r| r.to_string());
        let _ = writeln!(r, "  slot {:>3}  {rights:<3}  {}", cap.slot, cap.what);
    }
    if !pd.dma.is_empty() {
        let _ = writeln!(r, "DMA (the device's IOSpace, where the machine has an IOMMU; nothing else is mapped):");
        for d in &pd.dma {
            let _ = writeln!(r, "  {d}");
        }
    }
    if !pd.channels.is_empty() {
        let _ = writeln!(r, "channels:");
        for c in &pd.channels {
            let _ = writeln!(r, "  {c}");
        }
    }
}

/// The least-privilege rules every capability follows, with how many
/// capabilities of each role the system has, and the result of the check
/// the initialiser repeats at boot.
fn render_rights(r: &mut String, plan: &Plan) {
    use pds_boot_spec::cspace::*;
    let _ = writeln!(r, "\n== Capability rights ==");
    match rights::check(&plan.spec) {
        Ok(c) => {
            let _ = writeln!(
                r,
                "{} capabilities in {} PDs follow the least-privilege rules (pds-boot-spec `rights`); \
                 the initialiser checks them again before it mints any, then that every PD's CSpace \
                 holds capabilities in exactly the planned slots",
                c.caps, c.pds
            );
        }
        Err(violations) => {
            let _ = writeln!(r, "the plan breaks the least-privilege rules:");
            for v in violations {
                let _ = writeln!(r, "  {v}");
            }
        }
    }
    let rows = [
        (INPUT, "the PD's own endpoint or notification: receives only"),
        (FAULT_EP, "the monitor's (or parent's) fault endpoint: the kernel sends the PD's faults"),
        (NOTIFICATION, "the PD's own notification: receives only"),
        (OUTPUT_NOTIFICATION_BASE, "a peer's notification: signal only"),
        (PROTECTED_CALL_BASE, "a server's endpoint: seL4_Call (Grant makes the reply cap on seL4 5.0)"),
        (IRQ_BASE, "an interrupt delivered to the PD's own notification"),
        (IOPORT_BASE, "I/O ports of a device the PD alone drives"),
        (CHILD_TCB_BASE, "a child's TCB, to restart it"),
    ];
    let _ = writeln!(r, "  {:<17} {:<6} {:>5}  what", "role", "rights", "caps");
    for (slot, what) in rows {
        let role = SlotRole::of(slot).expect("a slot of the layout");
        let count = plan
            .spec
            .caps
            .iter()
            .filter(|c| SlotRole::of(c.slot).map(rights::describe) == Some(rights::describe(role)))
            .count();
        let shown = if role.has_rights() { role.rights().to_string() } else { "n/a".to_string() };
        let _ = writeln!(r, "  {:<17} {shown:<6} {count:>5}  {what}", rights::describe(role));
    }
    let _ = writeln!(r, "  no PD holds its own TCB, CNode, address space or frames");
}

/// The `<network>`: the node, and per client what it may claim, what it
/// holds from boot, its channels and where its regions are.
fn render_network(r: &mut String, network: &Network, plan: &Plan) {
    let written = |pd: &str| match plan.pds.iter().find(|p| p.name == pd).and_then(|p| p.net_config) {
        Some(true) => " (configuration written to __net_config)",
        Some(false) => " (no __net_config symbol: configuration not written)",
        None => "",
    };
    let node = &network.node;
    let _ = writeln!(r, "\n== Network ==");
    let _ = writeln!(
        r,
        "node {}/{} (link {}), gateway {}",
        Dotted(node.ipv4),
        node.prefix_len,
        node.prefix(),
        node.gateway.map_or("none".to_string(), |g| Dotted(g).to_string())
    );
    let _ = writeln!(r, "demultiplexer {}{}", network.demux, written(&network.demux));
    match (&network.arpd, network.arpd_index()) {
        (Some(arpd), Some(n)) => {
            let _ = writeln!(r, "arpd {arpd} (client {n}), ARP table `{ARP_TABLE_REGION}` at {ARP_TABLE_VADDR:#x}");
        }
        _ => {
            let _ = writeln!(r, "no arpd");
        }
    }
    for (n, client) in network.clients.iter().enumerate() {
        let mut flags = Vec::new();
        if network.arpd.as_deref() == Some(client.pd.as_str()) {
            flags.push("arpd");
        }
        if client.arp {
            flags.push("arp");
        }
        if client.may_copy {
            flags.push("may copy");
        }
        if client.unclaimed_ipv4 {
            flags.push("unclaimed IPv4");
        }
        let flags = if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(", ")) };
        let _ = writeln!(r, "client {n}: {}{flags}{}", client.pd, written(&client.pd));
        let list = |filters: Vec<String>| if filters.is_empty() { "nothing".to_string() } else { filters.join(", ") };
        let _ = writeln!(r, "  grant: {}", list(client.grant.iter().map(|g| g.filter.to_string()).collect()));
        let claims = client
            .claims
            .iter()
            .map(|c| match c.kind {
                FilterKind::Exclusive => format!("{} (exclusive)", c.filter),
                FilterKind::Copy => format!("{} (copy)", c.filter),
            })
            .collect();
        let _ = writeln!(r, "  claims: {}", list(claims));
        let _ = writeln!(
            r,
            "  channels: id {CLIENT_MUX_CHANNEL} <-> {} id {} (calls the demultiplexer)",
            network.demux,
            mux_client_channel(n)
        );
        if let (true, Some(arpd)) = (client.arp, &network.arpd) {
            let _ = writeln!(
                r,
                "            id {CLIENT_ARPD_CHANNEL} <-> {arpd} id {} (calls arpd)",
                arpd_client_channel(n)
            );
        }
        let _ = writeln!(
            r,
            "  regions: net_{}_* at {:#x}, in {} at {:#x}",
            client.pd,
            ClientRegion::RxData.client_vaddr(),
            network.demux,
            ClientRegion::RxData.mux_vaddr(n)
        );
        if let Some(region) = &client.send_from {
            let _ = writeln!(r, "  sends in place from: {region} (transmit window Files)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn each_pd_lists_its_capabilities_with_their_rights() {
        let plan = crate::plan::tests::plan_system(&crate::plan::tests::microkit_system());
        let httpd = plan.pds.iter().find(|pd| pd.name == "httpd").expect("httpd");
        let mut r = String::new();
        render_pd(&mut r, httpd);
        for line in [
            "capabilities (11 of 512 CSpace slots; rights R receive, W send, G grant, n/a: the kind has none):\n",
            "  slot   1  R--  input: own notification\n",
            "  slot   2  -WG  fault endpoint -> monitor (badge 0x8)\n",
            "  slot   3  R--  own notification\n",
            "  slot  64  -W-  notify channel 0 -> notification of net-mux (badge 0x8)\n",
            "  slot 128  -WG  protected call channel 0 -> endpoint of net-mux (badge 0x8000003)\n",
            "  slot  89  -W-  notify channel 25 -> notification of serial (badge 0x40)\n",
        ] {
            assert!(r.contains(line), "no {line:?} in:\n{r}");
        }
        assert!(!r.contains("TCB"), "{r}");
        // The CMOS clock is the timer's: httpd holds no I/O port.
        assert!(!r.contains("I/O ports"), "{r}");
    }

    #[test]
    fn the_rights_section_has_the_rules_and_their_counts() {
        let plan = crate::plan::tests::plan_system(&crate::plan::tests::microkit_system());
        let mut r = String::new();
        render_rights(&mut r, &plan);
        for line in [
            "105 capabilities in 11 PDs follow the least-privilege rules",
            "  input             R--       11  the PD's own endpoint or notification: receives only\n",
            "  fault endpoint    -WG       11  ",
            "  notify            -W-       52  a peer's notification: signal only\n",
            "  protected call    -WG       13  ",
            "  IRQ handler       n/a        4  ",
            "  I/O ports         n/a        3  ",
        ] {
            assert!(r.contains(line), "no {line:?} in:\n{r}");
        }
    }

    #[test]
    fn network_section_lists_the_node_and_each_client() {
        let text = r#"<system>
  <protection_domain name="mux" priority="200" pp="true"><program_image path="mux" /></protection_domain>
  <protection_domain name="arpd" priority="150" pp="true"><program_image path="arpd" /></protection_domain>
  <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
  <network demux="mux" arpd="arpd" ipv4="10.0.2.15/24" gateway="10.0.2.2">
    <client pd="arpd"><grant filter="arp" /><claim filter="arp" /></client>
    <client pd="web" arp="true" may_copy="true" send_from="files"><grant filter="tcp" /><claim filter="tcp dst 80" /><watch filter="tcp src 80" /></client>
  </network>
  <memory_region name="files" size="0x1000" />
</system>"#;
        let sys = tools_sdf::parse_str(Path::new("t.system"), text).expect("valid");
        let plan = Plan { spec: Default::default(), data: Vec::new(), object_names: Vec::new(), pds: Vec::new() };
        let mut r = String::new();
        render_network(&mut r, sys.network.as_ref().unwrap(), &plan);
        for line in [
            "node 10.0.2.15/24 (link 10.0.2.0/24), gateway 10.0.2.2",
            "demultiplexer mux\n",
            "arpd arpd (client 0), ARP table `net_arp_table` at 0x51000000",
            "client 0: arpd [arpd]\n  grant: arp\n  claims: arp (exclusive)\n  channels: id 0 <-> mux id 1 (calls the demultiplexer)\n",
            "client 1: web [arp, may copy]\n  grant: tcp\n  claims: tcp dst 80 (exclusive), tcp src 80 (copy)\n",
            "  channels: id 0 <-> mux id 2 (calls the demultiplexer)\n            id 1 <-> arpd id 2 (calls arpd)\n",
            "  regions: net_web_* at 0x50000000, in mux at 0x61000000\n  sends in place from: files (transmit window Files)\n",
        ] {
            assert!(r.contains(line), "no {line:?} in:\n{r}");
        }
    }
}
