//! The `<network>` element desugared into ordinary regions, maps and
//! channels, at the addresses and ids `net-config` fixes (its crate
//! documentation is the specification). Runs after parsing and after the
//! network's own rules ([`crate::validate`]), and before the rules for
//! maps and channels, which so check the generated items as any others:
//! overlaps with a PD's own maps, id clashes, call priorities.
//!
//! Generated items carry the `<client>` element's location (the
//! `<network>`'s for the ARP table region) and [`Origin::Network`], so
//! their diagnostics point there and say where they come from.

use net_config::{
    arpd_client_channel, mux_client_channel, ClientRegion, ARP_TABLE_REGION, ARP_TABLE_SIZE, ARP_TABLE_VADDR,
    CLIENT_ARPD_CHANNEL, CLIENT_MUX_CHANNEL,
};

use crate::diagnostic::Loc;
use crate::model::{Channel, ChannelEnd, Map, MemoryRegion, Origin, PageSize, Perms, SystemDescription};
use crate::parse::Parsed;
use crate::validate::Expansion;

/// Name of client `pd`'s region `part`: `net_<pd>_<part>`.
pub fn client_region_name(pd: &str, part: ClientRegion) -> String {
    format!("net_{pd}_{}", part.part())
}

const READ_ONLY: Perms = Perms { read: true, write: false, execute: false };

/// Adds the network's regions, maps and channels to `parsed`, for the
/// parts `expansion` allows.
pub(crate) fn expand(parsed: &mut Parsed, expansion: &Expansion) {
    let Some(network) = parsed.system.network.clone() else {
        return;
    };
    let arpd = network.arpd.as_deref().and_then(|arpd| network.client(arpd));
    for (n, (client, what)) in network.clients.iter().zip(&expansion.clients).enumerate() {
        if !what.mux {
            continue;
        }
        let origin = Origin::Network { client: Some(client.pd.clone()) };
        for part in ClientRegion::ALL {
            let name = client_region_name(&client.pd, part);
            parsed.system.memory_regions.push(MemoryRegion {
                name: name.clone(),
                size: part.size(),
                page_size: if part.large_pages() { PageSize::Large } else { PageSize::Small },
                phys_addr: None,
                loc: client.loc,
                origin: origin.clone(),
            });
            let perms = if part.client_writes() { Perms::READ_WRITE } else { READ_ONLY };
            add_map(&mut parsed.system, &client.pd, &name, part.client_vaddr(), perms, client.loc, &origin);
            add_map(
                &mut parsed.system,
                &network.demux,
                &name,
                part.mux_vaddr(n),
                Perms::READ_WRITE,
                client.loc,
                &origin,
            );
        }
        // The client calls the demultiplexer (Install, Remove, Stats, Node).
        add_channel(
            parsed,
            (&client.pd, CLIENT_MUX_CHANNEL),
            (&network.demux, mux_client_channel(n)),
            client.loc,
            &origin,
        );
        if let (true, Some((_, arpd))) = (what.arp, arpd) {
            add_map(&mut parsed.system, &client.pd, ARP_TABLE_REGION, ARP_TABLE_VADDR, READ_ONLY, client.loc, &origin);
            // The client calls arpd (Resolve); arpd notifies it.
            add_channel(
                parsed,
                (&client.pd, CLIENT_ARPD_CHANNEL),
                (&arpd.pd, arpd_client_channel(n)),
                client.loc,
                &origin,
            );
        }
    }
    if let (true, Some((_, arpd))) = (expansion.arp_table, arpd) {
        let system = &mut parsed.system;
        system.memory_regions.push(MemoryRegion {
            name: ARP_TABLE_REGION.to_string(),
            size: ARP_TABLE_SIZE,
            page_size: PageSize::Small,
            phys_addr: None,
            loc: network.loc,
            origin: Origin::Network { client: None },
        });
        let origin = Origin::Network { client: Some(arpd.pd.clone()) };
        add_map(system, &arpd.pd, ARP_TABLE_REGION, ARP_TABLE_VADDR, Perms::READ_WRITE, arpd.loc, &origin);
    }
}

/// Maps `mr` into `pd` (cached, no setvar: the PDs know the addresses
/// from `net-config`).
fn add_map(system: &mut SystemDescription, pd: &str, mr: &str, vaddr: u64, perms: Perms, loc: Loc, origin: &Origin) {
    if let Some(pd) = system.pd_mut(pd) {
        pd.maps.push(Map {
            mr: mr.to_string(),
            vaddr,
            perms,
            cached: true,
            setvar_vaddr: None,
            setvar_size: None,
            loc,
            origin: origin.clone(),
        });
    }
}

/// A channel on which `caller` makes protected calls to `callee`; both
/// ends notify.
fn add_channel(parsed: &mut Parsed, caller: (&str, u8), callee: (&str, u8), loc: Loc, origin: &Origin) {
    let end =
        |(pd, id): (&str, u8)| ChannelEnd { pd: pd.to_string(), id, pp: false, notify: true, setvar_id: None, loc };
    parsed.system.channels.push(Channel { ends: [end(caller), end(callee)], loc, origin: origin.clone() });
    // As if written `pp="true"` on the caller's end: resolved with the rest.
    parsed.explicit_pp.push([Some(true), None]);
}
