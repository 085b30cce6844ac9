//! The network's configuration as each network PD receives it: a
//! [`NetConfig`] built from the description's `<network>`, encoded
//! ([`NetConfig::to_bytes`]) into the PD's [`CONFIG_SYMBOL`].
//!
//! The demultiplexer must have the symbol (it cannot run without its
//! clients' grants); a client may (a PD that needs neither its grant nor
//! the node's address need not declare it).

use crate::elf::Program;
use net_config::{Claim, ClientConfig, NetConfig, CONFIG_BYTES, CONFIG_SYMBOL, MAX_CLIENTS};
use tools_sdf::{Network, SystemDescription};

/// How a PD takes part in the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The demultiplexer.
    Demux,
    /// Client `n`.
    Client(usize),
}

/// `pd`'s role in `network`, if it has one.
pub fn role(network: &Network, pd: &str) -> Option<Role> {
    if network.demux == pd {
        return Some(Role::Demux);
    }
    network.client(pd).map(|(n, _)| Role::Client(n))
}

/// The configuration for the PD playing `role` in `system`'s `network`.
/// The description is validated, so the counts fit the configuration's
/// arrays (the excess would be dropped, never a panic) and a `send_from`
/// names a region of at most one transmit window.
pub fn config(system: &SystemDescription, network: &Network, role: Role) -> NetConfig {
    let mut clients = [ClientConfig::new(""); MAX_CLIENTS];
    for (slot, client) in clients.iter_mut().zip(&network.clients) {
        let mut c = ClientConfig::new(&client.pd);
        c.may_copy = client.may_copy;
        c.unclaimed_ipv4 = client.unclaimed_ipv4;
        if client.unclaimed_ipv4 {
            c.answers = net_config::AnswerPolicy::UNCLAIMED_IPV4;
        }
        c.arp = client.arp;
        c.send_from_size = client.send_from.as_deref().and_then(|name| system.region(name)).map_or(0, |r| r.size);
        for grant in &client.grant {
            c.add_grant(grant.filter);
        }
        for claim in &client.claims {
            c.add_claim(Claim { filter: claim.filter, kind: claim.kind });
        }
        *slot = c;
    }
    NetConfig {
        node: network.node,
        me: match role {
            Role::Demux => None,
            Role::Client(n) => Some(n as u8),
        },
        arpd: network.arpd_index().map(|n| n as u8),
        clients,
        client_count: network.clients.len().min(MAX_CLIENTS) as u8,
    }
}

/// Why the configuration could not be written into a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// The program does not declare [`CONFIG_SYMBOL`].
    Missing,
    /// It does, with another size: built against another `net-config`.
    Size(u64),
    /// The symbol is not in initialised data.
    Patch(String),
}

/// Writes `config` into `program`'s [`CONFIG_SYMBOL`].
pub fn patch(program: &mut Program, config: &NetConfig) -> Result<(), PatchError> {
    let (_, size) = program.symbol(CONFIG_SYMBOL).ok_or(PatchError::Missing)?;
    if size != CONFIG_BYTES as u64 {
        return Err(PatchError::Size(size));
    }
    program.patch(CONFIG_SYMBOL, &config.to_bytes()).map_err(PatchError::Patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{write_executable, Segment};
    use net_config::{ConfigError, Filter, FilterKind, Ipv4Address};
    use std::path::Path;

    const SYSTEM: &str = r#"<system>
  <protection_domain name="mux" priority="200" pp="true"><program_image path="mux" /></protection_domain>
  <protection_domain name="arpd" priority="150" pp="true"><program_image path="arpd" /></protection_domain>
  <protection_domain name="stray" priority="100"><program_image path="stray" /></protection_domain>
  <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
  <protection_domain name="watch" priority="100"><program_image path="watch" /></protection_domain>
  <network demux="mux" arpd="arpd" ipv4="10.0.2.15/24" gateway="10.0.2.2">
    <client pd="arpd"><grant filter="arp" /><claim filter="arp" /></client>
    <client pd="stray" unclaimed_ipv4="true" />
    <client pd="web" arp="true" send_from="files"><grant filter="tcp dst 80" /><grant filter="tcp dst 443" /><claim filter="tcp dst 80" /></client>
    <client pd="watch" may_copy="true"><grant filter="icmp" /><watch filter="icmp" /></client>
  </network>
  <memory_region name="files" size="0x200000" page_size="0x200000" />
</system>"#;

    fn system() -> SystemDescription {
        tools_sdf::parse_str(Path::new("t.system"), SYSTEM).expect("valid")
    }

    fn network() -> Network {
        system().network.expect("a network")
    }

    fn config(network: &Network, role: Role) -> NetConfig {
        super::config(&system(), network, role)
    }

    #[test]
    fn roles() {
        let network = network();
        assert_eq!(role(&network, "mux"), Some(Role::Demux));
        assert_eq!(role(&network, "web"), Some(Role::Client(2)));
        assert_eq!(role(&network, "nobody"), None);
    }

    #[test]
    fn configuration_says_what_the_description_says() {
        let network = network();
        let config = config(&network, Role::Client(2));
        assert_eq!(config.me, Some(2));
        assert_eq!(config.arpd, Some(0));
        assert_eq!(config.node.ipv4, Ipv4Address::new(10, 0, 2, 15));
        assert_eq!((config.node.prefix_len, config.node.gateway), (24, Some(Ipv4Address::new(10, 0, 2, 2))));
        let names: Vec<&str> = config.clients().iter().map(|c| c.name()).collect();
        assert_eq!(names, ["arpd", "stray", "web", "watch"]);
        let web = config.my_client().unwrap();
        assert!(web.arp && !web.may_copy && !web.unclaimed_ipv4);
        assert_eq!(web.send_from_size, 0x20_0000, "the size of the region it sends from");
        assert!(config.clients().iter().filter(|c| c.name() != "web").all(|c| c.send_from_size == 0));
        assert_eq!(web.grant(), [Filter::tcp_dst_port(80), Filter::tcp_dst_port(443)]);
        assert_eq!(web.claims(), [Claim { filter: Filter::tcp_dst_port(80), kind: FilterKind::Exclusive }]);
        assert!(config.clients()[1].unclaimed_ipv4);
        assert_eq!(config.clients()[1].answers, net_config::AnswerPolicy::UNCLAIMED_IPV4);
        assert!(!config.clients()[0].answers.any());
        let watch = &config.clients()[3];
        assert!(watch.may_copy);
        assert_eq!(watch.claims()[0].kind, FilterKind::Copy);
        assert_eq!(self::config(&network, Role::Demux).me, None);
    }

    /// A program with `__net_config` of `size` bytes in initialised data.
    fn program(size: u64) -> Program {
        let data =
            Segment { vaddr: 0x40_2000, mem_size: 0x2000, data: vec![0xff; 0x2000], writable: true, executable: false };
        let text =
            Segment { vaddr: 0x40_0000, mem_size: 0x1000, data: vec![0xc3; 0x1000], writable: false, executable: true };
        let mut program = Program::parse(Path::new("pd"), &write_executable(0x40_0000, &[text, data])).unwrap();
        program.add_symbol(CONFIG_SYMBOL, 0x40_2100, size);
        program
    }

    #[test]
    fn patched_bytes_decode_to_the_configuration() {
        let network = network();
        for role in [Role::Demux, Role::Client(0), Role::Client(3)] {
            let config = config(&network, role);
            let mut program = program(CONFIG_BYTES as u64);
            patch(&mut program, &config).unwrap();
            let data = &program.segments[1].data;
            let bytes: [u8; CONFIG_BYTES] = data[0x100..0x100 + CONFIG_BYTES].try_into().unwrap();
            assert_eq!(NetConfig::from_bytes(&bytes), Ok(config), "{role:?}");
            // Nothing else was touched.
            assert!(data[..0x100].iter().chain(&data[0x100 + CONFIG_BYTES..]).all(|&b| b == 0xff));
        }
        // Unpatched, the placeholder reads as unset.
        assert_eq!(NetConfig::from_bytes(&[0xff; CONFIG_BYTES]), Err(ConfigError::Unset));
    }

    #[test]
    fn missing_or_mis_sized_symbols_are_refused() {
        let config = config(&network(), Role::Demux);
        let mut without = program(0);
        without.remove_symbol(CONFIG_SYMBOL);
        assert_eq!(patch(&mut without, &config), Err(PatchError::Missing));
        assert_eq!(
            patch(&mut program(CONFIG_BYTES as u64 - 8), &config),
            Err(PatchError::Size(CONFIG_BYTES as u64 - 8))
        );
    }
}
