//! Calls every network PD makes at start (with the `microkit` feature).

use crate::Colons;
use filter::Dotted;
use microkit::{log, Channel};
use net_config::{mac_from_word, MuxCall, NetConfig, CLIENT_MUX_CHANNEL};
use packet::{EthernetAddress, Ipv4Address};

/// The channel to the demultiplexer.
pub const MUX: Channel = Channel::new(CLIENT_MUX_CHANNEL);

/// The node's MAC, from the demultiplexer ([`MuxCall::Node`]); `None`
/// after logging why not. Warns if its address differs from `config`'s.
pub fn node_mac(config: &NetConfig) -> Option<EthernetAddress> {
    let reply = MUX.pp_call(microkit::msginfo(MuxCall::Node as u64, 0));
    if reply.label() != 0 || reply.length() < 2 {
        log!("error: the demultiplexer refused the node call (label {})", reply.label());
        return None;
    }
    let mac = EthernetAddress(mac_from_word(microkit::get_mr(0)));
    let ip = Ipv4Address::from_u32(microkit::get_mr(1) as u32);
    if !mac.is_unicast() {
        log!("error: the demultiplexer gave {} as the node's MAC", Colons(mac));
        return None;
    }
    if ip != config.node.ipv4 {
        log!("warning: the demultiplexer says the node is {}, the configuration {}", Dotted(ip), Dotted(config.node.ipv4));
    }
    Some(mac)
}
