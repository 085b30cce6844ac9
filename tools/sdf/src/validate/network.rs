//! The `<network>`: PDs that resolve and play one part each, grants that
//! cover the claims, and exclusive claims that do not overlap.
//!
//! These checks run before the network is expanded into regions, maps and
//! channels (see [`crate::network`]); the result says which parts can be
//! expanded without follow-on errors. The generated items are then checked
//! by the ordinary rules (overlapping maps, id clashes, call priorities).

use std::collections::HashMap;

use net_config::{DRIVER_SEND_FROM_PADDR, DRIVER_SEND_FROM_SIZE, MAX_SEND_FROM_SIZE, MUX_DRIVER_CHANNEL};
use net_filter::{FilterKind, Grant};

use super::Validator;
use crate::diagnostic::Loc;
use crate::model::{Network, NetworkClaim, NetworkClient, SetVarValue};
use crate::suggest;

/// Which parts of the network [`crate::network::expand`] generates.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    /// Parallel to the network's clients.
    pub clients: Vec<ClientExpansion>,
    /// The ARP table region and arpd's map of it.
    pub arp_table: bool,
}

/// What to generate for one client.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientExpansion {
    /// Its regions, their maps and its channel to the demultiplexer.
    pub mux: bool,
    /// Its channel to arpd and its map of the ARP table.
    pub arp: bool,
}

/// `<claim>` or `<watch>`.
fn tag(claim: &NetworkClaim) -> &'static str {
    match claim.kind {
        FilterKind::Exclusive => "claim",
        FilterKind::Copy => "watch",
    }
}

impl Validator<'_, '_, '_> {
    /// Checks the `<network>` and says what may be expanded.
    pub(super) fn network(&mut self) -> Expansion {
        let Some(network) = &self.system().network else {
            return Expansion::default();
        };
        let demux_ok = self.check_pd_reference(&network.demux, network.demux_loc, "<network demux>");
        let mut seen: HashMap<&str, Loc> = HashMap::new();
        let mut unclaimed: Option<&NetworkClient> = None;
        let mut clients = Vec::new();
        for client in &network.clients {
            let mut ok = self.check_pd_reference(&client.pd, client.pd_loc, "network <client>");
            if client.pd == network.demux {
                self.error(
                    client.pd_loc,
                    format!("the demultiplexer `{}` cannot be a client of itself", client.pd),
                    "the demultiplexer serves the clients and is the driver's client: remove this <client> (write its connection to the driver as ordinary maps and a channel)",
                );
                ok = false;
            }
            if let Some(first) = seen.get(client.pd.as_str()) {
                self.error(
                    client.pd_loc,
                    format!("protection domain `{}` is a network client twice; the first <client> is at line {}", client.pd, first.line),
                    "a PD has one set of network regions and one channel to the demultiplexer: merge the two <client> elements",
                );
                ok = false;
            } else {
                seen.insert(&client.pd, client.loc);
            }
            if client.unclaimed_ipv4 {
                match unclaimed {
                    Some(first) => self.error(
                        client.unclaimed_ipv4_loc,
                        format!(
                            "network clients `{}` (line {}) and `{}` both set unclaimed_ipv4=\"true\"",
                            first.pd, first.unclaimed_ipv4_loc.line, client.pd
                        ),
                        "the IPv4 frames no filter claims go to one PD, the stray-packet daemon: keep unclaimed_ipv4=\"true\" on one client",
                    ),
                    None => unclaimed = Some(client),
                }
            }
            self.claims_within_grant(client);
            clients.push(ClientExpansion { mux: ok && demux_ok, arp: false });
        }

        let arp_table = match &network.arpd {
            None => false,
            Some(arpd) => match network.client(arpd) {
                Some((n, _)) => clients[n].mux,
                None => {
                    if !self.parsed.dropped_clients.contains(arpd) {
                        let names = network.clients.iter().map(|c| c.pd.as_str());
                        let guess = match suggest::closest(arpd, names) {
                            Some(best) => format!("did you mean `{best}`? "),
                            None => String::new(),
                        };
                        self.error(
                            network.arpd_loc,
                            format!("arpd `{arpd}` is not one of the network's clients"),
                            format!(
                                "{guess}arpd receives ARP frames as a client: add <client pd=\"{arpd}\"><grant filter=\"arp\" /><claim filter=\"arp\" /></client>"
                            ),
                        );
                    }
                    false
                }
            },
        };
        for (client, expansion) in network.clients.iter().zip(&mut clients) {
            if !client.arp {
                continue;
            }
            match &network.arpd {
                None => self.error(
                    client.arp_loc,
                    format!("network client `{}` has arp=\"true\", but the <network> names no arpd", client.pd),
                    "arp=\"true\" gives the client a channel to the ARP daemon and its table: add arpd=\"...\" to <network>, naming a client that claims `arp`, or remove arp=\"true\"",
                ),
                Some(arpd) if *arpd == client.pd => self.error(
                    client.arp_loc,
                    format!("arpd `{arpd}` has arp=\"true\""),
                    "arpd owns the ARP table and needs no channel to itself: remove arp=\"true\"",
                ),
                Some(_) => expansion.arp = expansion.mux && arp_table,
            }
        }
        self.exclusive_claims_disjoint(network);
        self.send_from_regions(network);
        Expansion { clients, arp_table }
    }

    /// `send_from`: the NIC reaches the region through the driver's one
    /// in-place window (`lib_net_protocol::TxWindow::Files`), so each names an
    /// existing region of at most one window's size, all name the same
    /// one, and the demultiplexer's driver is told its physical base and
    /// size. The driver is the PD at the other end of the demultiplexer's
    /// channel `MUX_DRIVER_CHANNEL`; without that channel (a network
    /// described without its driver) there is no driver to check.
    fn send_from_regions(&mut self, network: &Network) {
        let mut first: Option<(&NetworkClient, &str)> = None;
        for client in &network.clients {
            let Some(name) = client.send_from.as_deref() else { continue };
            let what = format!("send_from of network client `{}`", client.pd);
            let Some(region) = self.region_reference(name, client.send_from_loc, &what) else { continue };
            if region.size > MAX_SEND_FROM_SIZE {
                self.error(
                    client.send_from_loc,
                    format!("memory region `{name}` that network client `{}` sends from has {:#x} bytes, more than a transmit window's 4 GiB", client.pd, region.size),
                    "in-place segments are 32-bit offsets into the region: send from a region of at most 4 GiB",
                );
            }
            match first {
                Some((earlier, earlier_region)) if earlier_region != name => self.error(
                    client.send_from_loc,
                    format!(
                        "network clients `{}` (line {}) and `{}` send from different regions, `{earlier_region}` and `{name}`",
                        earlier.pd, earlier.send_from_loc.line, client.pd
                    ),
                    format!(
                        "the driver has one window for in-place sends (lib_net_protocol::TxWindow::Files): name one region in every send_from, e.g. send_from=\"{earlier_region}\", or remove this one"
                    ),
                ),
                Some(_) => {}
                None => {
                    first = Some((client, name));
                    self.driver_knows_send_from(network, client, name);
                }
            }
        }
    }

    /// The demultiplexer's driver has the two setvars that give it the
    /// physical base and the size of `region`, which `client` sends from.
    fn driver_knows_send_from(&mut self, network: &Network, client: &NetworkClient, region: &str) {
        let system = self.system();
        let driver = system.channels.iter().find_map(|c| match &c.ends {
            [a, b] | [b, a] if a.pd == network.demux && a.id == MUX_DRIVER_CHANNEL => Some(b.pd.as_str()),
            _ => None,
        });
        let Some(driver) = driver.and_then(|name| system.pd(name)) else { return };
        let has = |symbol: &str, value: SetVarValue| {
            driver.setvars.iter().any(|s| s.symbol == symbol && s.value == value && s.region == region)
        };
        let missing: Vec<String> = [
            (DRIVER_SEND_FROM_PADDR, SetVarValue::Paddr, "region_paddr"),
            (DRIVER_SEND_FROM_SIZE, SetVarValue::Size, "region_size"),
        ]
        .into_iter()
        .filter(|&(symbol, value, _)| !has(symbol, value))
        .map(|(symbol, _, attribute)| format!("<setvar symbol=\"{symbol}\" {attribute}=\"{region}\" />"))
        .collect();
        if missing.is_empty() {
            return;
        }
        self.error(
            client.send_from_loc,
            format!(
                "network client `{}` sends from `{region}`, but the demultiplexer's driver `{}` is not told where that region is",
                client.pd, driver.name
            ),
            format!(
                "the driver hands the NIC physical addresses inside the region: add {} to <protection_domain name=\"{}\"> (line {})",
                missing.join(" and "),
                driver.name,
                driver.loc.line
            ),
        );
    }

    /// Every `<claim>` and `<watch>` of `client` lies within one of its
    /// granted filters: the description grants nothing by claiming it.
    fn claims_within_grant(&mut self, client: &NetworkClient) {
        let grant = client.grant_filters();
        for claim in &client.claims {
            if Grant::new(&grant).permits(&claim.filter) {
                continue;
            }
            let hint = if grant.is_empty() {
                format!(
                    "`{}` is granted nothing: add <grant filter=\"{}\" /> (or a wider filter) to the client",
                    client.pd, claim.filter
                )
            } else {
                let granted = grant.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
                format!(
                    "a <{}> must lie within one granted filter, and `{}` is granted {granted}: narrow the {}, or widen or add a <grant>",
                    tag(claim),
                    client.pd,
                    tag(claim)
                )
            };
            self.error(
                claim.loc,
                format!("<{}> `{}` of network client `{}` is outside its grant", tag(claim), claim.filter, client.pd),
                hint,
            );
        }
    }

    /// Exclusive claims, of one client or of two, match disjoint sets of
    /// frames: each frame has at most one owner. Reported at the later
    /// claim.
    fn exclusive_claims_disjoint(&mut self, network: &Network) {
        let mut earlier: Vec<(&str, &NetworkClaim)> = Vec::new();
        for client in &network.clients {
            for claim in client.claims.iter().filter(|c| c.kind == FilterKind::Exclusive) {
                if let Some((owner, other)) = earlier.iter().find(|(_, other)| other.filter.overlaps(&claim.filter)) {
                    let whose = if *owner == client.pd {
                        format!("its own claim `{}`", other.filter)
                    } else {
                        format!("the claim `{}` of `{owner}`", other.filter)
                    };
                    self.error(
                        claim.loc,
                        format!(
                            "exclusive claim `{}` of network client `{}` overlaps {whose} at line {}",
                            claim.filter, client.pd, other.loc.line
                        ),
                        "a frame goes to at most one exclusive claim, so claims must not overlap: narrow one (other ports, protocol or addresses), \
                         or receive copies with <watch> (which needs may_copy=\"true\")",
                    );
                }
                earlier.push((&client.pd, claim));
            }
        }
    }
}
