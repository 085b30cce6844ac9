//! arpd's protected call, defined once for both ends.
//!
//! A network PD with `arp="true"` has a channel to arpd (the network's
//! expansion gives it the id `net_config::CLIENT_ARPD_CHANNEL`) on which it
//! may call:
//!
//! | request label | arguments | reply label | reply registers |
//! |---|---|---|---|
//! | [`RESOLVE`] | MR0: the IPv4 address (`Ipv4Address::to_u32`) | [`Resolution::label`] | MR0: the MAC if `Known` ([`mac_to_word`]) |
//!
//! Any other label, a missing argument, an argument above 32 bits or a
//! caller without `arp="true"` is answered [`ERR_BAD_REQUEST`] with no
//! registers. A `Pending` caller is notified on the same channel when the
//! table changes; it then reads arpd's table (`net-arp-table`) or calls
//! again.
//!
//! [`Arpd`] is the client; arpd decodes with [`decode_request`] and
//! encodes with [`Resolution::reply`]; both sides use the same encoding,
//! which the tests here check in both directions.
#![no_std]

use net_packet::{EthernetAddress, Ipv4Address};
use pds_runtime::{get_mr, msginfo, set_mr, Channel, MessageInfo};

/// Label of the resolve request.
pub const RESOLVE: u64 = 1;
/// Reply label of a malformed request, and the error decoding one gives
/// (the network's calls share them: `lib-net-protocol`).
pub use lib_net_protocol::{BadRequest, ERR_BAD_REQUEST};

/// arpd's answer to a resolve call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// In the table: the neighbour's MAC.
    Known(EthernetAddress),
    /// Requests are out; the caller is notified when the entry appears or
    /// resolution fails.
    Pending,
    /// Not a neighbour's address: outside the on-link prefix, or not a
    /// single host (unspecified, broadcast, multicast, loopback, the
    /// link's broadcast or network address), or the node's own.
    NotOnLink,
    /// Recent requests went unanswered, or the table is full of
    /// resolutions in progress.
    Failed,
}

impl Resolution {
    /// The reply's label.
    pub const fn label(self) -> u64 {
        match self {
            Resolution::Known(_) => 0,
            Resolution::Pending => 1,
            Resolution::NotOnLink => 2,
            Resolution::Failed => 3,
        }
    }

    /// The reply: its label and the words of its message registers.
    pub fn reply(self) -> (u64, Option<u64>) {
        match self {
            Resolution::Known(mac) => (self.label(), Some(mac_to_word(mac))),
            _ => (self.label(), None),
        }
    }

    /// The answer a reply carries; `None` for a label that is no
    /// resolution (for example [`ERR_BAD_REQUEST`]).
    pub fn from_reply(label: u64, mr0: u64) -> Option<Resolution> {
        Some(match label {
            0 => Resolution::Known(mac_from_word(mr0)),
            1 => Resolution::Pending,
            2 => Resolution::NotOnLink,
            3 => Resolution::Failed,
            _ => return None,
        })
    }
}

/// The address a request asks for: `label`, the number of message
/// registers it carries and the first of them.
pub fn decode_request(label: u64, count: u64, mr0: u64) -> Result<Ipv4Address, BadRequest> {
    if label != RESOLVE || count < 1 {
        return Err(BadRequest);
    }
    u32::try_from(mr0).map(Ipv4Address::from_u32).map_err(|_| BadRequest)
}

/// A MAC in one message register: the bytes in the low 48 bits, the first
/// byte lowest (`lib_net_protocol::mac_to_word`, the layout of every
/// network call: the demultiplexer's `Node`, the driver's MAC).
pub fn mac_to_word(mac: EthernetAddress) -> u64 {
    lib_net_protocol::mac_to_word(mac.0)
}

/// The inverse of [`mac_to_word`] (the high 16 bits are ignored).
pub fn mac_from_word(word: u64) -> EthernetAddress {
    EthernetAddress(lib_net_protocol::mac_from_word(word))
}

/// arpd seen from a client, through the client's channel to it.
#[derive(Clone, Copy, Debug)]
pub struct Arpd(Channel);

impl Arpd {
    pub const fn new(channel: Channel) -> Self {
        Arpd(channel)
    }

    /// The channel arpd notifies when a pending resolution is settled.
    pub fn channel(self) -> Channel {
        self.0
    }

    /// Asks arpd for `ip`'s MAC. A refused call (which a client with
    /// `arp="true"` never gets) reads as [`Resolution::Failed`], and so
    /// does the answer of an arpd restarted during the call
    /// (`pds_boot_spec::monitor_protocol::LABEL_SERVER_RESTARTED`): the
    /// caller retries later, as after any failure, and the restarted arpd
    /// resolves afresh. An arpd stopped for good answers every call
    /// `LABEL_SERVER_STOPPED`, which reads as [`Resolution::Failed`] too.
    pub fn resolve(self, ip: Ipv4Address) -> Resolution {
        set_mr(0, u64::from(ip.to_u32()));
        let reply = self.0.pp_call(msginfo(RESOLVE, 1));
        Resolution::from_reply(reply.label(), get_mr(0)).unwrap_or(Resolution::Failed)
    }
}

/// The server's reply to a malformed request ([`ERR_BAD_REQUEST`], no
/// registers).
pub fn bad_request() -> MessageInfo {
    msginfo(ERR_BAD_REQUEST, 0)
}

/// The server's reply message for `resolution` (sets the registers).
pub fn reply_message(resolution: Resolution) -> MessageInfo {
    match resolution.reply() {
        (label, Some(word)) => {
            set_mr(0, word);
            msginfo(label, 1)
        }
        (label, None) => msginfo(label, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    #[test]
    fn every_resolution_survives_its_reply_encoding() {
        for r in [Resolution::Known(MAC), Resolution::Pending, Resolution::NotOnLink, Resolution::Failed] {
            let (label, word) = r.reply();
            assert_eq!(Resolution::from_reply(label, word.unwrap_or(0xdead)), Some(r));
        }
    }

    #[test]
    fn labels_are_distinct_and_not_the_error() {
        let labels = [Resolution::Known(MAC), Resolution::Pending, Resolution::NotOnLink, Resolution::Failed]
            .map(Resolution::label);
        for (i, a) in labels.iter().enumerate() {
            assert_ne!(*a, ERR_BAD_REQUEST);
            assert!(labels[i + 1..].iter().all(|b| b != a));
        }
        assert_eq!(Resolution::from_reply(ERR_BAD_REQUEST, 0), None);
        // A restarted arpd's answer to the call its predecessor died in.
        assert_eq!(Resolution::from_reply(0xF_FFF0, 0), None);
    }

    #[test]
    fn a_request_is_the_resolve_label_and_a_32_bit_address() {
        let ip = Ipv4Address::new(10, 0, 2, 2);
        assert_eq!(decode_request(RESOLVE, 1, u64::from(ip.to_u32())), Ok(ip));
        assert_eq!(decode_request(RESOLVE, 0, u64::from(ip.to_u32())), Err(BadRequest), "no argument");
        assert_eq!(decode_request(2, 1, u64::from(ip.to_u32())), Err(BadRequest), "unknown label");
        assert_eq!(decode_request(RESOLVE, 1, 1 << 32), Err(BadRequest), "above 32 bits");
    }

    #[test]
    fn a_mac_word_keeps_the_byte_order_and_ignores_the_high_bits() {
        assert_eq!(mac_to_word(MAC), 0x5634_1200_5452);
        assert_eq!(mac_from_word(mac_to_word(MAC) | 0xffff << 48), MAC);
    }
}
