//! The `<network>` element: parsing into the model, expansion into
//! regions, maps and channels at `net-config`'s addresses and ids, and one
//! test per rule it adds, each checking the exact position, the message and
//! the hint.
//!
//! Fixtures are [`PDS`] (lines 1–6) followed by the network, whose first
//! line is line 7.

use std::path::Path;

use net_config::{
    arpd_client_channel, mux_client_channel, ClientRegion, Ipv4Address, ARP_TABLE_REGION, ARP_TABLE_SIZE,
    ARP_TABLE_VADDR, CLIENT_ARPD_CHANNEL, CLIENT_MUX_CHANNEL,
};
use net_filter::{Filter, FilterKind};
use tools_sdf::{client_region_name, Diagnostic, Diagnostics, Loc, Origin, Perms, SystemDescription};

/// Five PDs whose priorities and `pp` suit a network with `mux` as the
/// demultiplexer and `arpd` as arpd.
const PDS: &str = r#"<system>
  <protection_domain name="mux" priority="200" pp="true"><program_image path="mux" /></protection_domain>
  <protection_domain name="arpd" priority="150" pp="true"><program_image path="arpd" /></protection_domain>
  <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
  <protection_domain name="dns" priority="100"><program_image path="dns" /></protection_domain>
  <protection_domain name="watch" priority="100"><program_image path="watch" /></protection_domain>
"#;

/// [`PDS`], then `rest` from line 7.
fn with_pds(rest: &str) -> String {
    format!("{PDS}{rest}\n</system>")
}

fn parse(text: &str) -> SystemDescription {
    match tools_sdf::parse_str(Path::new("net.system"), text) {
        Ok(system) => system,
        Err(diagnostics) => panic!("rejected:\n{diagnostics}"),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match tools_sdf::parse_str(Path::new("net.system"), text) {
        Ok(_) => panic!("accepted an invalid description:\n{text}"),
        Err(Diagnostics(all)) => all,
    }
}

/// The only diagnostic for `text`: no follow-on errors.
fn single(text: &str) -> Diagnostic {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got:\n{}", Diagnostics(all.clone()));
    all.remove(0)
}

#[track_caller]
fn check(d: &Diagnostic, line: u32, column: u32, message: &[&str], hint: &[&str]) {
    assert_eq!((d.loc.line, d.loc.column), (line, column), "wrong location for:\n{d}");
    for part in message {
        assert!(d.message.contains(part), "message lacks {part:?}:\n{d}");
    }
    for part in hint {
        assert!(d.hint.contains(part), "hint lacks {part:?}:\n{d}");
    }
}

/// The example of `net-config`'s documentation, with `watch` for its
/// `watch` PD.
const EXAMPLE: &str = r#"  <network demux="mux" arpd="arpd" ipv4="10.0.2.15/24" gateway="10.0.2.2">
    <client pd="arpd"><grant filter="arp" /><claim filter="arp" /></client>
    <client pd="dns" unclaimed_ipv4="true" />
    <client pd="web" arp="true"><grant filter="tcp dst 80" /><claim filter="tcp dst 80" /></client>
    <client pd="watch" may_copy="true"><grant filter="icmp" /><watch filter="icmp" /></client>
  </network>"#;

const RW: Perms = Perms::READ_WRITE;
const R: Perms = Perms { read: true, write: false, execute: false };

// --- Parsing and expansion ----------------------------------------------

#[test]
fn the_documented_example_parses_into_the_model() {
    let system = parse(&with_pds(EXAMPLE));
    let network = system.network.as_ref().expect("a network");
    assert_eq!(network.demux, "mux");
    assert_eq!(network.arpd.as_deref(), Some("arpd"));
    assert_eq!(network.node.ipv4, Ipv4Address::new(10, 0, 2, 15));
    assert_eq!(network.node.prefix_len, 24);
    assert_eq!(network.node.gateway, Some(Ipv4Address::new(10, 0, 2, 2)));
    assert_eq!(network.loc, Loc::new(7, 3));
    assert_eq!(network.demux_loc, Loc::new(7, 12));
    let names: Vec<&str> = network.clients.iter().map(|c| c.pd.as_str()).collect();
    assert_eq!(names, ["arpd", "dns", "web", "watch"]);
    assert_eq!(network.arpd_index(), Some(0));
    assert_eq!(network.client("web").map(|(n, _)| n), Some(2));

    let arpd = &network.clients[0];
    assert_eq!(arpd.grant_filters(), [Filter::parse("arp").unwrap()]);
    assert_eq!(arpd.claims.len(), 1);
    assert_eq!((arpd.claims[0].filter, arpd.claims[0].kind), (Filter::parse("arp").unwrap(), FilterKind::Exclusive));
    assert_eq!(arpd.loc, Loc::new(8, 5));
    assert_eq!(arpd.claims[0].loc, Loc::new(8, 45));
    assert!(!arpd.arp && !arpd.may_copy && !arpd.unclaimed_ipv4);

    let dns = &network.clients[1];
    assert!(dns.unclaimed_ipv4 && dns.grant.is_empty() && dns.claims.is_empty());
    let web = &network.clients[2];
    assert!(web.arp && !web.may_copy);
    assert_eq!(web.claims[0].filter, Filter::tcp_dst_port(80));
    let watch = &network.clients[3];
    assert!(watch.may_copy);
    assert_eq!((watch.claims[0].filter, watch.claims[0].kind), (Filter::parse("icmp").unwrap(), FilterKind::Copy));
}

#[test]
fn each_client_gets_six_regions_mapped_into_it_and_the_demultiplexer() {
    let system = parse(&with_pds(EXAMPLE));
    let network = system.network.as_ref().unwrap();
    let mux = system.pd("mux").unwrap();
    for (n, client) in network.clients.iter().enumerate() {
        let pd = system.pd(&client.pd).unwrap();
        let origin = Origin::Network { client: Some(client.pd.clone()) };
        for part in ClientRegion::ALL {
            let name = client_region_name(&client.pd, part);
            assert_eq!(name, format!("net_{}_{}", client.pd, part.part()));
            let region = system.region(&name).unwrap_or_else(|| panic!("no region {name}"));
            assert_eq!((region.size, region.phys_addr), (part.size(), None));
            assert_eq!((region.loc, &region.origin), (client.loc, &origin));

            let in_client: Vec<_> = pd.maps.iter().filter(|m| m.mr == name).collect();
            assert_eq!(in_client.len(), 1, "{name} in {}", client.pd);
            let perms = if part == ClientRegion::RxData { R } else { RW };
            assert_eq!(
                (in_client[0].vaddr, in_client[0].perms, in_client[0].cached),
                (part.client_vaddr(), perms, true),
                "{name}"
            );
            assert_eq!(
                (in_client[0].loc, &in_client[0].origin, &in_client[0].setvar_vaddr),
                (client.loc, &origin, &None)
            );

            let in_mux: Vec<_> = mux.maps.iter().filter(|m| m.mr == name).collect();
            assert_eq!(in_mux.len(), 1, "{name} in mux");
            assert_eq!((in_mux[0].vaddr, in_mux[0].perms, in_mux[0].cached), (part.mux_vaddr(n), RW, true), "{name}");
        }
    }
    assert_eq!(mux.maps.len(), 6 * network.clients.len());
    assert_eq!(system.memory_regions.len(), 6 * network.clients.len() + 1);
}

#[test]
fn channels_to_the_demultiplexer_and_arpd() {
    let system = parse(&with_pds(EXAMPLE));
    let network = system.network.as_ref().unwrap();
    let channel = |a: &str, b: &str| {
        let found: Vec<_> = system.channels.iter().filter(|c| c.ends[0].pd == a && c.ends[1].pd == b).collect();
        assert_eq!(found.len(), 1, "channels {a} -> {b}");
        found[0].clone()
    };
    for (n, client) in network.clients.iter().enumerate() {
        let c = channel(&client.pd, "mux");
        let [caller, callee] = &c.ends;
        assert_eq!((caller.id, caller.pp, caller.notify), (CLIENT_MUX_CHANNEL, true, true), "{}", client.pd);
        assert_eq!((callee.id, callee.pp, callee.notify), (mux_client_channel(n), false, true), "{}", client.pd);
        assert_eq!((c.loc, caller.loc, callee.loc), (client.loc, client.loc, client.loc));
        assert_eq!(c.origin, Origin::Network { client: Some(client.pd.clone()) });
    }
    // Only web has arp="true".
    let arp: Vec<_> = system.channels.iter().filter(|c| c.ends[1].pd == "arpd").collect();
    assert_eq!(arp.len(), 1);
    let [caller, callee] = &arp[0].ends;
    assert_eq!((caller.pd.as_str(), caller.id, caller.pp), ("web", CLIENT_ARPD_CHANNEL, true));
    assert_eq!((callee.id, callee.pp), (arpd_client_channel(2), false));
    assert_eq!(system.channels.len(), network.clients.len() + 1);
}

#[test]
fn the_arp_table_is_arpds_and_read_only_for_arp_clients() {
    let system = parse(&with_pds(EXAMPLE));
    let table = system.region(ARP_TABLE_REGION).expect("the ARP table region");
    assert_eq!(
        (table.size, table.loc, &table.origin),
        (ARP_TABLE_SIZE, Loc::new(7, 3), &Origin::Network { client: None })
    );
    let map_of =
        |pd: &str| system.pd(pd).unwrap().maps.iter().find(|m| m.mr == ARP_TABLE_REGION).map(|m| (m.vaddr, m.perms));
    assert_eq!(map_of("arpd"), Some((ARP_TABLE_VADDR, RW)));
    assert_eq!(map_of("web"), Some((ARP_TABLE_VADDR, R)));
    assert_eq!(map_of("dns"), None);
    assert_eq!(map_of("watch"), None);
    assert_eq!(map_of("mux"), None);
}

#[test]
fn without_arpd_there_is_no_arp_table() {
    let system = parse(&with_pds(
        r#"  <network demux="mux" ipv4="192.168.1.2/16">
    <client pd="web"><grant filter="tcp dst 80" /><claim filter="tcp dst 80" /></client>
  </network>"#,
    ));
    let network = system.network.as_ref().unwrap();
    assert_eq!((network.arpd.as_deref(), network.node.gateway, network.node.prefix_len), (None, None, 16));
    assert!(system.region(ARP_TABLE_REGION).is_none());
    assert_eq!(system.memory_regions.len(), 6);
    assert_eq!(system.channels.len(), 1);
}

#[test]
fn children_can_be_clients_and_written_items_are_kept() {
    let system = parse(
        r#"<system>
  <memory_region name="mine" size="0x1000" />
  <protection_domain name="mux" priority="200" pp="true"><program_image path="mux" />
    <map mr="mine" vaddr="0x40000000" />
    <protection_domain name="kid" id="0" priority="100"><program_image path="kid" /></protection_domain>
  </protection_domain>
  <network demux="mux" ipv4="10.0.0.1/8"><client pd="kid" /></network>
</system>"#,
    );
    let kid = system.pd("kid").unwrap();
    assert_eq!(kid.maps.len(), 6);
    let mux = system.pd("mux").unwrap();
    assert_eq!(mux.maps.len(), 7);
    assert_eq!((mux.maps[0].mr.as_str(), &mux.maps[0].origin), ("mine", &Origin::Written));
    assert_eq!(system.memory_regions[0].origin, Origin::Written);
}

// --- Errors of one element -----------------------------------------------

#[test]
fn bad_filter_syntax_suggests_the_term_and_shows_the_syntax() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web"><grant filter="tcp dts 80" /></client>
  </network>"#,
    ));
    check(
        &d,
        8,
        29,
        &["invalid filter=\"tcp dts 80\" on <grant>", "unknown term `dts`"],
        &["did you mean `dst`?", net_filter::text::SYNTAX],
    );

    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web"><grant filter="tcp" /><claim filter="arp dst 80" /></client>
  </network>"#,
    ));
    check(&d, 8, 51, &["filter=\"arp dst 80\"", "contradict"], &["terms:"]);
}

#[test]
fn unknown_attributes_and_elements() {
    let all = errors(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24" gatway="10.0.2.2">
    <client pd="web" may_cpy="true"><grnat filter="tcp" /></client>
    <claim filter="tcp" />
  </network>"#,
    ));
    assert_eq!(all.len(), 4, "{}", Diagnostics(all.clone()));
    check(&all[0], 7, 44, &["unknown attribute `gatway` on <network demux=\"mux\">"], &["did you mean `gateway`?"]);
    check(&all[1], 8, 22, &["unknown attribute `may_cpy` on <client pd=\"web\">"], &["did you mean `may_copy`?"]);
    check(&all[2], 8, 37, &["unknown element <grnat> in <client pd=\"web\">"], &["did you mean `grant`?"]);
    check(&all[3], 9, 5, &["<claim> is not allowed in <network demux=\"mux\">"], &["<claim> belongs inside <client>"]);
}

#[test]
fn required_attributes() {
    let all = errors(&with_pds(
        r#"  <network ipv4="10.0.2.15/24"><client /></network>
  <network demux="mux" />"#,
    ));
    assert_eq!(all.len(), 4, "{}", Diagnostics(all.clone()));
    check(&all[0], 7, 3, &["<network> is missing the required attribute `demux`"], &["add demux=\"...\""]);
    check(&all[1], 7, 32, &["<client> is missing the required attribute `pd`"], &[]);
    check(&all[2], 8, 3, &["missing the required attribute `ipv4`"], &[]);
    check(&all[3], 8, 3, &["a second <network>; the first is at line 7"], &["merge"]);
}

#[test]
fn bad_node_address() {
    for (ipv4, message, hint) in [
        ("10.0.2.15", "the prefix length is missing", "ipv4=\"10.0.2.15/24\""),
        ("10.0.2.15/40", "`40` is not a prefix length 0..=32", ""),
        ("10.0.2.0/24", "10.0.2.0 is the network address of 10.0.2.0/24", "e.g. 10.0.2.1"),
        ("10.0.2.255/24", "broadcast address", ""),
        ("127.0.0.1/8", "not a unicast address", "loopback"),
    ] {
        let d = single(&with_pds(&format!(r#"  <network demux="mux" ipv4="{ipv4}" />"#)));
        check(&d, 7, 24, &[&format!("invalid ipv4=\"{ipv4}\" on <network demux=\"mux\">"), message], &[hint]);
    }
}

#[test]
fn gateway_off_link_or_the_nodes_own() {
    let d = single(&with_pds(r#"  <network demux="mux" ipv4="10.0.2.15/24" gateway="10.0.3.1" />"#));
    check(
        &d,
        7,
        44,
        &["the gateway 10.0.3.1 is not on the link 10.0.2.0/24"],
        &["inside 10.0.2.0/24 other than 10.0.2.15"],
    );
    let d = single(&with_pds(r#"  <network demux="mux" ipv4="10.0.2.15/24" gateway="10.0.2.15" />"#));
    check(&d, 7, 44, &["the gateway 10.0.2.15 is the node's own address"], &[]);
    let d = single(&with_pds(r#"  <network demux="mux" ipv4="10.0.2.15/24" gateway="10.0.2.255" />"#));
    check(&d, 7, 44, &["network or broadcast address of 10.0.2.0/24"], &[]);
    let d = single(&with_pds(r#"  <network demux="mux" ipv4="10.0.2.15/24" gateway="10.0.2" />"#));
    check(&d, 7, 44, &["invalid gateway=\"10.0.2\"", "not an IPv4 address"], &[]);
}

#[test]
fn watch_needs_may_copy() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="watch"><grant filter="icmp" /><watch filter="icmp" /></client>
  </network>"#,
    ));
    check(
        &d,
        8,
        47,
        &["<watch> needs the copy privilege", "network client `watch` does not have may_copy=\"true\""],
        &["add may_copy=\"true\" to <client pd=\"watch\">"],
    );
}

#[test]
fn room_for_grants_claims_and_clients() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web">
      <grant filter="tcp dst 1" /><grant filter="tcp dst 2" /><grant filter="tcp dst 3" /><grant filter="tcp dst 4" />
      <grant filter="tcp dst 5" />
    </client>
  </network>"#,
    ));
    check(&d, 10, 7, &["network client `web` has more than 4 <grant> filters"], &["MAX_GRANT_FILTERS"]);

    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web" may_copy="true"><grant filter="tcp" />
      <claim filter="tcp dst 1" /><claim filter="tcp dst 2" /><watch filter="tcp dst 3" /><claim filter="tcp dst 4" />
      <watch filter="tcp dst 5" />
    </client>
  </network>"#,
    ));
    check(&d, 10, 7, &["more than 4 <claim> and <watch> filters"], &["MAX_CLAIMS", "at run time"]);

    let clients: String = (0..9).map(|i| format!("\n    <client pd=\"c{i}\" />")).collect();
    let d = errors(&with_pds(&format!(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">{clients}
  </network>"#
    )));
    // The ninth client is too many; the network is dropped, so the unknown
    // PDs c0..c8 are not reported.
    assert_eq!(d.len(), 1, "{}", Diagnostics(d.clone()));
    check(&d[0], 16, 5, &["too many network clients: this is number 9", "at most 8"], &["MAX_CLIENTS"]);
}

// --- Errors between elements ---------------------------------------------

#[test]
fn unknown_demultiplexer_client_and_arpd() {
    let all = errors(&with_pds(
        r#"  <network demux="muxx" arpd="arp" ipv4="10.0.2.15/24">
    <client pd="arpd"><grant filter="arp" /><claim filter="arp" /></client>
    <client pd="wbe" />
  </network>"#,
    ));
    assert_eq!(all.len(), 3, "{}", Diagnostics(all.clone()));
    check(&all[0], 7, 12, &["<network demux> names unknown protection domain `muxx`"], &["did you mean `mux`?"]);
    check(
        &all[1],
        7,
        25,
        &["arpd `arp` is not one of the network's clients"],
        &["did you mean `arpd`?", "<client pd=\"arp\">"],
    );
    check(&all[2], 9, 13, &["network <client> names unknown protection domain `wbe`"], &["did you mean `web`?"]);
}

#[test]
fn the_demultiplexer_is_no_client_and_a_pd_is_a_client_once() {
    let all = errors(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="mux" />
    <client pd="web" />
    <client pd="web" />
  </network>"#,
    ));
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(&all[0], 8, 13, &["the demultiplexer `mux` cannot be a client of itself"], &["remove this <client>"]);
    check(&all[1], 10, 13, &["`web` is a network client twice; the first <client> is at line 9"], &["merge"]);
}

#[test]
fn one_client_receives_unclaimed_ipv4() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="dns" unclaimed_ipv4="true" />
    <client pd="web" unclaimed_ipv4="true" />
  </network>"#,
    ));
    check(
        &d,
        9,
        22,
        &["network clients `dns` (line 8) and `web` both set unclaimed_ipv4=\"true\""],
        &["keep unclaimed_ipv4=\"true\" on one client"],
    );
}

#[test]
fn arp_needs_arpd_and_arpd_needs_no_arp() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web" arp="true" />
  </network>"#,
    ));
    check(
        &d,
        8,
        22,
        &["network client `web` has arp=\"true\", but the <network> names no arpd"],
        &["add arpd=\"...\""],
    );
    let d = single(&with_pds(
        r#"  <network demux="mux" arpd="arpd" ipv4="10.0.2.15/24">
    <client pd="arpd" arp="true"><grant filter="arp" /><claim filter="arp" /></client>
  </network>"#,
    ));
    check(&d, 8, 23, &["arpd `arpd` has arp=\"true\""], &["remove arp=\"true\""]);
}

#[test]
fn claims_and_watches_must_be_within_the_grant() {
    let all = errors(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web"><grant filter="tcp dst 80" /><grant filter="tcp dst 443" /><claim filter="tcp dst 80-443" /></client>
    <client pd="dns"><claim filter="udp dst 53" /></client>
    <client pd="watch" may_copy="true"><grant filter="icmp" /><watch filter="ipv4" /></client>
  </network>"#,
    ));
    assert_eq!(all.len(), 3, "{}", Diagnostics(all.clone()));
    check(
        &all[0],
        8,
        81,
        &["<claim> `tcp dst 80-443` of network client `web` is outside its grant"],
        &["within one granted filter", "`tcp dst 80`, `tcp dst 443`"],
    );
    check(
        &all[1],
        9,
        22,
        &["<claim> `udp dst 53` of network client `dns` is outside its grant"],
        &["`dns` is granted nothing", "<grant filter=\"udp dst 53\" />"],
    );
    check(&all[2], 10, 63, &["<watch> `ipv4` of network client `watch` is outside its grant"], &[]);
}

#[test]
fn exclusive_claims_must_not_overlap() {
    let all = errors(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="dns"><grant filter="udp" /><claim filter="udp dst 53" /></client>
    <client pd="web"><grant filter="udp" /><claim filter="udp dst 1-100 from 10.0.0.0/8" /></client>
    <client pd="watch" may_copy="true"><grant filter="udp" /><watch filter="udp" /><claim filter="udp dst 7" /><claim filter="udp dst 200" /></client>
  </network>"#,
    ));
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(
        &all[0],
        9,
        44,
        &["exclusive claim `udp from 10.0.0.0/8 dst 1-100` of network client `web` overlaps the claim `udp dst 53` of `dns` at line 8"],
        &["must not overlap", "<watch>"],
    );
    // A watch overlaps anything; udp dst 7 overlaps web's dst 1-100 first.
    check(
        &all[1],
        10,
        84,
        &["`udp dst 7` of network client `watch` overlaps the claim `udp from 10.0.0.0/8 dst 1-100` of `web`"],
        &[],
    );

    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web"><grant filter="tcp" /><claim filter="tcp dst 80" /><claim filter="tcp from 10.0.0.0/8" /></client>
  </network>"#,
    ));
    check(&d, 8, 73, &["overlaps its own claim `tcp dst 80` at line 8"], &[]);
}

#[test]
fn a_broken_client_causes_no_follow_on_errors() {
    // arpd's grant is misspelt: arpd is left out of the network, which is
    // not then reported as missing, nor is web's arp="true".
    let d = single(&with_pds(
        r#"  <network demux="mux" arpd="arpd" ipv4="10.0.2.15/24">
    <client pd="arpd"><grant filter="apr" /></client>
    <client pd="web" arp="true" />
  </network>"#,
    ));
    check(&d, 8, 30, &["unknown term `apr`"], &["did you mean `arp`?"]);
}

// --- Generated items checked by the ordinary rules -----------------------

#[test]
fn the_demultiplexer_must_outrank_its_clients() {
    let d = single(
        r#"<system>
  <protection_domain name="mux" priority="100" pp="true"><program_image path="mux" /></protection_domain>
  <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
  <network demux="mux" ipv4="10.0.2.15/24"><client pd="web" /></network>
</system>"#,
    );
    check(
        &d,
        4,
        44,
        &[
            "network client `web` (priority 100) calls the demultiplexer `mux` (priority 100)",
            "strictly higher priority",
        ],
        &["every network client calls the demultiplexer", "raise `mux` above 100 or lower `web` below 100"],
    );
}

#[test]
fn the_demultiplexer_and_arpd_must_accept_calls() {
    let all = errors(
        r#"<system>
  <protection_domain name="mux" priority="200"><program_image path="mux" /></protection_domain>
  <protection_domain name="arpd" priority="100"><program_image path="arpd" /></protection_domain>
  <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
  <network demux="mux" arpd="arpd" ipv4="10.0.2.15/24">
    <client pd="arpd"><grant filter="arp" /><claim filter="arp" /></client>
    <client pd="web" arp="true" />
  </network>
</system>"#,
    );
    assert_eq!(all.len(), 4, "{}", Diagnostics(all.clone()));
    check(
        &all[0],
        6,
        5,
        &["network client `arpd` calls the demultiplexer `mux`, but `mux` does not accept protected calls"],
        &["add pp=\"true\" to <protection_domain name=\"mux\">"],
    );
    check(&all[1], 7, 5, &["`web` calls the demultiplexer `mux`, but `mux` does not accept"], &[]);
    check(
        &all[2],
        7,
        5,
        &["network client `web` calls arpd `arpd`, but `arpd` does not accept protected calls"],
        &["arp=\"true\" calls arpd", "add pp=\"true\" to <protection_domain name=\"arpd\">"],
    );
    check(
        &all[3],
        7,
        5,
        &["network client `web` (priority 100) calls arpd `arpd` (priority 100)"],
        &["raise `arpd` above 100"],
    );
}

#[test]
fn written_channel_ids_clash_with_generated_ones() {
    let d = single(&with_pds(
        r#"  <channel><end pd="web" id="0" /><end pd="dns" id="5" /></channel>
  <network demux="mux" ipv4="10.0.2.15/24"><client pd="web" /></network>"#,
    ));
    check(
        &d,
        8,
        44,
        &["id 0 of protection domain `web` for the channel to `mux` (generated by <network> for its client `web`) is already used by the channel to `dns` at line 7"],
        &["e.g. 2", "a client's are 0 to the demultiplexer and 1 to arpd", "renumber the written channel"],
    );
    // The demultiplexer's id for client 1 is 2.
    let d = single(&with_pds(
        r#"  <channel><end pd="mux" id="0" /><end pd="dns" id="0" /></channel>
  <channel><end pd="mux" id="2" /><end pd="watch" id="0" /></channel>
  <network demux="mux" ipv4="10.0.2.15/24"><client pd="arpd" /><client pd="web" /></network>"#,
    ));
    check(&d, 9, 64, &["id 2 of protection domain `mux` for the channel to `web` (generated by <network> for its client `web`) is already used by the channel to `watch` at line 8"], &["e.g. 3"]);
}

#[test]
fn written_maps_and_regions_clash_with_generated_ones() {
    let all = errors(
        r#"<system>
  <memory_region name="buf" size="0x1000" />
  <memory_region name="net_web_tx_data" size="0x1000" />
  <protection_domain name="mux" priority="200" pp="true"><program_image path="mux" />
    <map mr="buf" vaddr="0x60200000" />
  </protection_domain>
  <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
  <network demux="mux" ipv4="10.0.2.15/24"><client pd="web" /></network>
</system>"#,
    );
    assert_eq!(all.len(), 2, "{}", Diagnostics(all.clone()));
    check(
        &all[0],
        8,
        44,
        &["duplicate memory region name `net_web_tx_data` (generated by <network> for its client `web`); it is first used at line 3"],
        &["net_<pd>_<part>", "rename the written one"],
    );
    check(
        &all[1],
        8,
        44,
        &[
            "map of `net_web_tx_data` in `mux` (generated by <network> for its client `web`) at 0x60200000",
            "overlaps the map of `buf` at 0x60200000..0x60201000 (line 5)",
        ],
        &["from 0x60000000 + n * 0x1000000 in the demultiplexer", "move the written map"],
    );
}

// --- The workspace's description files -----------------------------------

fn workspace() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_node_descriptions_are_valid() {
    for file in ["microkit.system", "tests/systems/node.system"] {
        let path = workspace().join(file);
        let system = tools_sdf::parse_file(&path).unwrap_or_else(|d| panic!("{d}"));
        let network = system.network.expect("a network");
        assert_eq!(network.demux, "net-mux");
        assert_eq!(network.arpd_index(), Some(0));
    }
}

/// The `tests/invalid/network-*` files the description checks refuse
/// (`cargo xtask test` runs them all through the builder, with the PD
/// programs built; a few errors only the builder can find).
#[test]
fn invalid_network_descriptions_fail_where_they_say() {
    let dir = workspace().join("tests/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/invalid") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        if !name.starts_with("network-") || !name.ends_with(".system") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let expect = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("<!-- expect ")?.strip_suffix("-->"))
            .unwrap_or_else(|| panic!("{name} has no expect line"))
            .trim();
        let (at, message) = expect.split_once(": ").expect("L:C: message");
        let Err(diagnostics) = tools_sdf::parse_file(&path) else {
            continue; // Found by the builder.
        };
        let text = diagnostics.to_string();
        assert!(
            text.contains(&format!("{}:{at}: error", path.display())) && text.contains(message),
            "{name}: expected `{at}: ... {message}`, got:\n{text}"
        );
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} network descriptions checked");
}

// --- send_from ----------------------------------------------------------------

/// A network whose `web` sends from `files`, its driver `nic` (the other
/// end of the demultiplexer's channel 0) with the setvars `driver_setvars`.
fn send_from_system(client_attributes: &str, driver_setvars: &str) -> String {
    with_pds(&format!(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web"{client_attributes} />
    <client pd="dns" />
  </network>
  <memory_region name="files" size="0x200000" page_size="0x200000" />
  <memory_region name="other" size="0x1000" />
  <protection_domain name="nic" priority="250" pp="true"><program_image path="nic" />{driver_setvars}
  </protection_domain>
  <channel><end pd="nic" id="1" /><end pd="mux" id="0" pp="true" /></channel>"#
    ))
}

const DRIVER_TOLD: &str = r#"
    <setvar symbol="send_from_paddr" region_paddr="files" /><setvar symbol="send_from_size" region_size="files" />"#;

#[test]
fn send_from_names_a_region_the_driver_is_told() {
    let system = parse(&send_from_system(r#" send_from="files""#, DRIVER_TOLD));
    let network = system.network.as_ref().unwrap();
    let web = &network.clients[0];
    assert_eq!(web.send_from.as_deref(), Some("files"));
    assert_eq!(web.send_from_loc, Loc::new(8, 22));
    assert_eq!(network.clients[1].send_from, None);
    // Nothing is mapped for it: the client maps the region as it likes.
    assert!(system.pd("web").unwrap().maps.iter().all(|m| m.mr != "files"));
    assert!(system.pd("mux").unwrap().maps.iter().all(|m| m.mr != "files"));
    // Without the driver's channel there is no driver to check.
    parse(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24"><client pd="web" send_from="files" /></network>
  <memory_region name="files" size="0x1000" />"#,
    ));
}

#[test]
fn send_from_an_unknown_region() {
    let d = single(&send_from_system(r#" send_from="fiels""#, DRIVER_TOLD));
    check(
        &d,
        8,
        22,
        &["send_from of network client `web` names unknown memory region `fiels`"],
        &["did you mean `files`?"],
    );
}

#[test]
fn the_driver_must_be_told_the_send_from_region() {
    let d = single(&send_from_system(r#" send_from="files""#, ""));
    check(
        &d,
        8,
        22,
        &["network client `web` sends from `files`, but the demultiplexer's driver `nic` is not told where that region is"],
        &[
            r#"add <setvar symbol="send_from_paddr" region_paddr="files" /> and <setvar symbol="send_from_size" region_size="files" /> to <protection_domain name="nic"> (line 13)"#,
        ],
    );
    // Told about another region, or only half of it.
    let d = single(&send_from_system(
        r#" send_from="files""#,
        r#"
    <setvar symbol="send_from_paddr" region_paddr="other" /><setvar symbol="send_from_size" region_size="files" />"#,
    ));
    check(
        &d,
        8,
        22,
        &["driver `nic` is not told"],
        &[r#"add <setvar symbol="send_from_paddr" region_paddr="files" /> to"#],
    );
}

#[test]
fn one_send_from_region_per_network() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24">
    <client pd="web" send_from="files" />
    <client pd="dns" send_from="files" />
    <client pd="watch" send_from="other" />
  </network>
  <memory_region name="files" size="0x1000" />
  <memory_region name="other" size="0x1000" />"#,
    ));
    check(
        &d,
        10,
        24,
        &["network clients `web` (line 8) and `watch` send from different regions, `files` and `other`"],
        &["one window for in-place sends", "send_from=\"files\""],
    );
}

#[test]
fn a_send_from_region_fits_one_transmit_window() {
    let d = single(&with_pds(
        r#"  <network demux="mux" ipv4="10.0.2.15/24"><client pd="web" send_from="huge" /></network>
  <memory_region name="huge" size="0x100200000" page_size="0x200000" />"#,
    ));
    check(&d, 7, 61, &["memory region `huge` that network client `web` sends from has 0x100200000 bytes, more than a transmit window's 4 GiB"], &["at most 4 GiB"]);
}
