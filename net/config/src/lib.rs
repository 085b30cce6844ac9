//! The network node as the system description declares it, and the
//! interface between the packet demultiplexer and its clients.
//!
//! # The node
//!
//! ```text
//!   NIC ── virtio-net ──(net-protocol)── net-mux ──(net-protocol)── arpd
//!          driver PD                      demux PD  ├──────────────── stray
//!                                                   └──────────────── servers ...
//! ```
//!
//! The demultiplexer (`net-mux`) is the driver's one client and, towards
//! each network PD, plays the driver's part of the same contract
//! (`lib/net-protocol`): a client sees `rx_data`, `rx_free`, `rx_active`,
//! `tx_free`, `tx_active` and a transmit region exactly as if it sat on the
//! driver, so a PD written for one works behind the other. What differs is
//! what the demultiplexer does in between: it copies each received frame
//! into the receive buffer of the one client its filters choose (the one
//! copy of the receive path), and it copies each outgoing frame out of the
//! client's memory into its own before checking its headers and handing it
//! to the driver (see `net_filter::tx`).
//!
//! # In the system description
//!
//! ```xml
//! <network demux="net-mux" arpd="arpd" ipv4="10.0.2.15/24" gateway="10.0.2.2">
//!     <client pd="arpd"><grant filter="arp" /><claim filter="arp" /></client>
//!     <client pd="stray" unclaimed_ipv4="true" />
//!     <client pd="web" arp="true"><grant filter="tcp dst 80" /><claim filter="tcp dst 80" /></client>
//!     <client pd="watch" may_copy="true"><grant filter="icmp" /><watch filter="icmp" /></client>
//! </network>
//! ```
//!
//! `<client>` takes `pd`, `arp`, `may_copy` and `unclaimed_ipv4`
//! (booleans, default `false`), optionally `send_from` (below), and holds
//! `<grant>`s (what it may claim, at boot and at run time), `<claim>`s
//! (exclusive filters it holds from boot) and `<watch>`es (copy filters it
//! holds from boot), each with a `filter` in the syntax of
//! [`net_filter::text`].
//!
//! # Sending in place: `send_from`
//!
//! `<client pd="httpd" send_from="site_cache">` names a `<memory_region>`
//! the client may send from *in place*: segments of its frames in the
//! transmit window [`lib_net_protocol::TxWindow::Files`] are offsets into that
//! region, and the NIC reads those bytes by DMA where they are (a web
//! server's file cache: file data goes from the disk's DMA to the wire
//! without a copy). The demultiplexer does not map the region; it learns
//! its size from the configuration ([`ClientConfig::send_from_size`]),
//! checks each such segment against it, and passes it through to the
//! driver unchanged, behind the headers it copied and checked (see
//! `net/mux`). The client maps the region as it likes (the web server:
//! read-only).
//!
//! The driver has one such window, so at most one distinct region may be
//! named across the `<network>` (several clients may name the same one).
//! The demultiplexer's driver (the PD at the other end of its channel
//! [`MUX_DRIVER_CHANNEL`]) must be told the region with two setvars,
//! [`DRIVER_SEND_FROM_PADDR`] (`region_paddr`) and
//! [`DRIVER_SEND_FROM_SIZE`] (`region_size`); the description checks
//! enforce this when that channel is written out. The region must be
//! physically contiguous, as every region a device reads is.
//!
//! The builder expands each `<client>` (the `n`-th, from 0) into ordinary
//! regions, maps and channels, all at the addresses and ids below (cached,
//! no `setvar_vaddr`: the PDs take the addresses from this crate):
//!
//! - six regions `net_<pd>_<part>` for the parts of [`ClientRegion`],
//!   mapped into the client at [`ClientRegion::client_vaddr`] (read-write,
//!   but `rx_data` read-only) and into the demultiplexer at
//!   [`ClientRegion::mux_vaddr`]`(n)` (read-write);
//! - a channel: id [`CLIENT_MUX_CHANNEL`] in the client,
//!   [`mux_client_channel`]`(n)` in the demultiplexer, which the client may
//!   call (`net_mux_api`: the call protocol is defined there);
//! - with `arp="true"`, a channel: id [`CLIENT_ARPD_CHANNEL`] in the
//!   client, [`arpd_client_channel`]`(n)` in arpd, which the client may
//!   call (`arpd_api`); arpd notifies it when an entry it asked for
//!   appears;
//! - the ARP table region `net_arp_table`, mapped read-write into arpd and
//!   read-only into every client with `arp="true"`, at [`ARP_TABLE_VADDR`].
//!
//! and writes the [`NetConfig`] into the symbol [`CONFIG_SYMBOL`] of the
//! demultiplexer and of every client that has it, with [`NetConfig::me`]
//! set to the PD's own client index. The symbol is required in the
//! demultiplexer and optional in clients; its size must be
//! [`CONFIG_BYTES`]. The driver's side (its regions and the channel with id
//! [`MUX_DRIVER_CHANNEL`] in the demultiplexer) is written out in the
//! description, as for any driver.
//!
//! The generated items are checked with the written ones, so a PD's own
//! maps and channels must keep clear of them: a client's channel ids start
//! at [`FIRST_FREE_CLIENT_CHANNEL`], and its maps avoid
//! [`CLIENT_BASE`]`..`[`ARP_TABLE_VADDR`]` + `[`ARP_TABLE_SIZE`] (the
//! demultiplexer's avoid [`MUX_CLIENT_BASE`] onwards, one
//! [`MUX_CLIENT_STRIDE`] per client). As protected calls go only to PDs with
//! `pp="true"` of strictly higher priority, the demultiplexer needs
//! `pp="true"` and a priority above every client, and arpd (with clients
//! that have `arp="true"`) `pp="true"` and a priority above each of them.
//!
//! The description is also refused, with the position of the offending
//! attribute or element, unless:
//!
//! - there is at most one `<network>`; `demux` names a PD; `ipv4` is
//!   `A.B.C.D/LEN`, a unicast address that is neither the network nor the
//!   broadcast address of its prefix (up to /30, which have both);
//!   `gateway`, if given, is another host address on the link;
//! - there are at most [`MAX_CLIENTS`] clients, each a different PD and
//!   none the demultiplexer; `arpd`, if given, is one of them;
//! - a client has at most [`MAX_GRANT_FILTERS`] `<grant>`s and at most
//!   [`MAX_CLAIMS`] `<claim>`s and `<watch>`es together; each claim and
//!   watch lies within one of its granted filters ([`net_filter::Grant::permits`]);
//!   `<watch>` needs `may_copy="true"`;
//! - exclusive claims do not [overlap](Filter::overlaps), whether of one
//!   client or of two (copy filters may overlap anything);
//! - at most one client has `unclaimed_ipv4="true"`; `arp="true"` needs
//!   `arpd`, and arpd itself takes no `arp="true"` (it owns the table);
//! - `send_from` names a memory region of at most 4 GiB (one transmit
//!   window), at most one distinct region is named, and the
//!   demultiplexer's driver, if its channel is written out, has the two
//!   setvars for that region.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod blob;

pub use blob::{ConfigError, CONFIG_BYTES, CONFIG_MAGIC, CONFIG_VERSION};
pub use net_filter::{Filter, FilterKind};
pub use net_packet::Ipv4Address;

use net_filter::Ipv4Prefix;

/// The symbol that receives the encoded [`NetConfig`]
/// (`[u8; CONFIG_BYTES]`).
pub const CONFIG_SYMBOL: &str = "__net_config";

/// Most clients of one demultiplexer.
pub const MAX_CLIENTS: usize = 8;
/// Most filters in one client's grant.
pub const MAX_GRANT_FILTERS: usize = 4;
/// Most filters one client claims from the description.
pub const MAX_CLAIMS: usize = 4;
/// Bytes of a client's name kept in the configuration (for logs).
pub const NAME_LEN: usize = 16;

// --- Layout -------------------------------------------------------------

/// One of the six regions between the demultiplexer and a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientRegion {
    /// Receive buffers: the demultiplexer copies frames in; the client
    /// maps it read-only.
    RxData,
    /// The client's transmit buffers: it writes frames here; the
    /// demultiplexer copies them out.
    TxData,
    /// Queue of empty receive buffers, client → demultiplexer.
    RxFree,
    /// Queue of received frames, demultiplexer → client.
    RxActive,
    /// Queue of transmitted descriptors coming back, demultiplexer → client.
    TxFree,
    /// Queue of frames to send, client → demultiplexer.
    TxActive,
}

/// Base of the client regions in a client's address space.
pub const CLIENT_BASE: u64 = 0x5000_0000;
/// Base of client 0's regions in the demultiplexer's address space.
pub const MUX_CLIENT_BASE: u64 = 0x6000_0000;
/// Distance between two clients' regions in the demultiplexer.
pub const MUX_CLIENT_STRIDE: u64 = 0x100_0000;
/// Where the ARP table is mapped in arpd and in clients with `arp="true"`.
pub const ARP_TABLE_VADDR: u64 = 0x5100_0000;
/// Bytes of the ARP table region.
pub const ARP_TABLE_SIZE: u64 = 0x1000;
/// Name of the ARP table region.
pub const ARP_TABLE_REGION: &str = "net_arp_table";

/// Bytes of a client's transmit region: [`TX_BUFFERS`] buffers of
/// [`lib_net_protocol::RX_BUFFER_SIZE`] bytes.
pub const TX_DATA_SIZE: u64 = 0x20000;
/// Transmit buffers of [`lib_net_protocol::RX_BUFFER_SIZE`] bytes in a
/// client's transmit region.
pub const TX_BUFFERS: usize = TX_DATA_SIZE as usize / 2048;

impl ClientRegion {
    pub const ALL: [ClientRegion; 6] = [
        ClientRegion::RxData,
        ClientRegion::TxData,
        ClientRegion::RxFree,
        ClientRegion::RxActive,
        ClientRegion::TxFree,
        ClientRegion::TxActive,
    ];

    /// The part of the region's name after `net_<pd>_`.
    pub const fn part(self) -> &'static str {
        match self {
            ClientRegion::RxData => "rx_data",
            ClientRegion::TxData => "tx_data",
            ClientRegion::RxFree => "rx_free",
            ClientRegion::RxActive => "rx_active",
            ClientRegion::TxFree => "tx_free",
            ClientRegion::TxActive => "tx_active",
        }
    }

    /// Bytes of the region.
    pub const fn size(self) -> u64 {
        match self {
            ClientRegion::RxData => lib_net_protocol::CLIENT_RX_DATA_SIZE as u64,
            ClientRegion::TxData => TX_DATA_SIZE,
            ClientRegion::RxFree | ClientRegion::RxActive => 0x8000,
            ClientRegion::TxFree | ClientRegion::TxActive => 0x3000,
        }
    }

    /// Offset of the region from a client's base.
    const fn offset(self) -> u64 {
        match self {
            ClientRegion::RxData => 0,
            ClientRegion::TxData => 0x20_0000,
            ClientRegion::RxFree => 0x30_0000,
            ClientRegion::RxActive => 0x30_8000,
            ClientRegion::TxFree => 0x31_0000,
            ClientRegion::TxActive => 0x31_4000,
        }
    }

    /// Where the client maps it.
    pub const fn client_vaddr(self) -> u64 {
        CLIENT_BASE + self.offset()
    }

    /// Where the demultiplexer maps client `n`'s.
    pub const fn mux_vaddr(self, n: usize) -> u64 {
        MUX_CLIENT_BASE + n as u64 * MUX_CLIENT_STRIDE + self.offset()
    }

    /// Whether the region is made of 2 MiB pages: the receive buffers
    /// (2 MiB, at 2 MiB-aligned addresses in the client and the
    /// demultiplexer), which in 4 KiB pages would be 512 frames and 1,024
    /// mappings per client for the initialiser to make at boot.
    pub const fn large_pages(self) -> bool {
        matches!(self, ClientRegion::RxData)
    }

    /// Whether the client may write it (all but the receive buffers, which
    /// only the demultiplexer fills).
    pub const fn client_writes(self) -> bool {
        !matches!(self, ClientRegion::RxData)
    }
}

// --- Channels -----------------------------------------------------------

/// The client's channel to the demultiplexer.
pub const CLIENT_MUX_CHANNEL: u8 = 0;
/// The client's channel to arpd (with `arp="true"`).
pub const CLIENT_ARPD_CHANNEL: u8 = 1;
/// The demultiplexer's channel to the driver.
pub const MUX_DRIVER_CHANNEL: u8 = 0;
/// The driver's symbol for the physical base of the `send_from` region
/// (`<setvar symbol="send_from_paddr" region_paddr="...">`).
pub const DRIVER_SEND_FROM_PADDR: &str = "send_from_paddr";
/// Largest `send_from` region: one transmit window (segments in it are
/// 32-bit offsets).
pub const MAX_SEND_FROM_SIZE: u64 = 1 << lib_net_protocol::TX_WINDOW_SHIFT;
/// The driver's symbol for the size of the `send_from` region
/// (`<setvar symbol="send_from_size" region_size="...">`).
pub const DRIVER_SEND_FROM_SIZE: &str = "send_from_size";
/// Lowest channel id the network expansion does not use in a client.
pub const FIRST_FREE_CLIENT_CHANNEL: u8 = 2;

/// The demultiplexer's channel to client `n`.
pub const fn mux_client_channel(n: usize) -> u8 {
    1 + n as u8
}

/// arpd's channel to client `n` (arpd's own channel to the demultiplexer
/// is [`CLIENT_MUX_CHANNEL`], as for any client).
pub const fn arpd_client_channel(n: usize) -> u8 {
    1 + n as u8
}

// --- Configuration ------------------------------------------------------

/// The node's IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    pub ipv4: Ipv4Address,
    /// Length of the on-link prefix, 0..=32.
    pub prefix_len: u8,
    /// Where traffic for other networks goes; must be on the link.
    pub gateway: Option<Ipv4Address>,
}

impl NodeAddress {
    /// The on-link prefix.
    pub fn prefix(&self) -> Ipv4Prefix {
        Ipv4Prefix::new(self.ipv4, self.prefix_len.min(32)).unwrap_or(Ipv4Prefix::ANY)
    }

    /// Whether `address` is on the link (inside the prefix).
    pub fn is_on_link(&self, address: Ipv4Address) -> bool {
        self.prefix().contains_address(address)
    }

    /// The directed broadcast address of the link.
    pub fn broadcast(&self) -> Ipv4Address {
        let host_bits = u32::MAX.checked_shr(u32::from(self.prefix_len)).unwrap_or(0);
        Ipv4Address::from_u32(self.ipv4.to_u32() | host_bits)
    }

    /// The address whose MAC a frame to `destination` goes to: the
    /// destination itself on the link, else the gateway (`None` without one).
    pub fn next_hop(&self, destination: Ipv4Address) -> Option<Ipv4Address> {
        if self.is_on_link(destination) {
            Some(destination)
        } else {
            self.gateway
        }
    }
}

/// What a client may send *in answer* to a frame it received, beyond the
/// traffic its own filters give it (`net_filter::tx`): the stray-packet
/// daemon's whole transmit right. The demultiplexer enforces it (`net-mux`,
/// "Answers"): each answer must be the one its kind prescribes for a frame
/// the demultiplexer delivered to the client, at most once per frame, and
/// at most `rate_per_second` a second in bursts of `burst`; the client
/// reads the same limit from here, so the two never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerPolicy {
    /// The kinds allowed: the `ANSWER_*` bits.
    pub kinds: u8,
    /// Answers a second, sustained.
    pub rate_per_second: u16,
    /// Answers in a burst after a quiet time.
    pub burst: u16,
}

/// An ICMP echo reply (type 0) to an echo request (RFC 792).
pub const ANSWER_ECHO_REPLY: u8 = 1;
/// ICMP destination unreachable, port unreachable (type 3 code 3), to a
/// UDP datagram (RFC 1122 §3.2.2.1), quoting it (RFC 792).
pub const ANSWER_PORT_UNREACHABLE: u8 = 2;
/// ICMP destination unreachable, protocol unreachable (type 3 code 2), to
/// a datagram of a protocol other than ICMP, TCP and UDP.
pub const ANSWER_PROTOCOL_UNREACHABLE: u8 = 4;
/// A TCP reset to a segment without RST, in RFC 9293 §3.10.7.1's form.
pub const ANSWER_RESET: u8 = 8;
/// Every kind.
pub const ANSWER_ALL: u8 = 15;

impl AnswerPolicy {
    /// No answers.
    pub const NONE: AnswerPolicy = AnswerPolicy { kinds: 0, rate_per_second: 0, burst: 0 };
    /// The unclaimed-IPv4 client's (the stray-packet daemon's): every
    /// kind, 100 a second in bursts of 50 (BSD's `icmplim` order of
    /// magnitude; see `net-stray-core`, "Rate limit").
    pub const UNCLAIMED_IPV4: AnswerPolicy = AnswerPolicy { kinds: ANSWER_ALL, rate_per_second: 100, burst: 50 };

    /// Whether answers of `kind` (an `ANSWER_*` bit) are allowed.
    pub const fn allows(&self, kind: u8) -> bool {
        self.kinds & kind != 0
    }

    /// Whether any answer is allowed.
    pub const fn any(&self) -> bool {
        self.kinds != 0
    }
}

/// A filter a client holds from boot: claimed from the description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub filter: Filter,
    pub kind: FilterKind,
}

/// One client of the demultiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The PD's name, NUL-padded (truncated to [`NAME_LEN`] bytes).
    pub name: [u8; NAME_LEN],
    /// What the client may claim, at boot and at run time.
    pub grant: [Filter; MAX_GRANT_FILTERS],
    pub grant_len: u8,
    /// What it holds from boot.
    pub claims: [Claim; MAX_CLAIMS],
    pub claims_len: u8,
    /// May hold copy filters.
    pub may_copy: bool,
    /// Receives the IPv4 frames no filter claims, and may answer them (the
    /// stray-packet daemon). At most one client.
    pub unclaimed_ipv4: bool,
    /// Has a channel to arpd and the ARP table mapped.
    pub arp: bool,
    /// Bytes of the region the client may send from in place
    /// (`send_from`, window [`lib_net_protocol::TxWindow::Files`]); 0: none.
    /// At most 4 GiB, the window's size.
    pub send_from_size: u64,
    /// What it may send in answer to frames it received (the builder gives
    /// the unclaimed-IPv4 client [`AnswerPolicy::UNCLAIMED_IPV4`], every
    /// other client none).
    pub answers: AnswerPolicy,
}

impl ClientConfig {
    /// A client called `name` with nothing granted.
    pub fn new(name: &str) -> Self {
        let mut n = [0; NAME_LEN];
        let len = name.len().min(NAME_LEN);
        n[..len].copy_from_slice(&name.as_bytes()[..len]);
        ClientConfig {
            name: n,
            grant: [Filter::ANY; MAX_GRANT_FILTERS],
            grant_len: 0,
            claims: [Claim { filter: Filter::ANY, kind: FilterKind::Exclusive }; MAX_CLAIMS],
            claims_len: 0,
            may_copy: false,
            unclaimed_ipv4: false,
            arp: false,
            send_from_size: 0,
            answers: AnswerPolicy::NONE,
        }
    }

    /// Whether the client may send from a `send_from` region in place.
    pub fn sends_in_place(&self) -> bool {
        self.send_from_size > 0
    }

    /// The name, up to its first NUL (`"?"` if not UTF-8).
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    pub fn grant(&self) -> &[Filter] {
        &self.grant[..usize::from(self.grant_len).min(MAX_GRANT_FILTERS)]
    }

    pub fn claims(&self) -> &[Claim] {
        &self.claims[..usize::from(self.claims_len).min(MAX_CLAIMS)]
    }

    /// Adds a granted filter; `false` if the grant is full.
    pub fn add_grant(&mut self, filter: Filter) -> bool {
        let n = usize::from(self.grant_len);
        if n == MAX_GRANT_FILTERS {
            return false;
        }
        self.grant[n] = filter;
        self.grant_len += 1;
        true
    }

    /// Adds a boot-time claim; `false` if the list is full.
    pub fn add_claim(&mut self, claim: Claim) -> bool {
        let n = usize::from(self.claims_len);
        if n == MAX_CLAIMS {
            return false;
        }
        self.claims[n] = claim;
        self.claims_len += 1;
        true
    }
}

/// Everything the description says about the network, as each network PD
/// receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub node: NodeAddress,
    /// The receiving PD's client index; `None` in the demultiplexer.
    pub me: Option<u8>,
    /// Client index of arpd, if the description names one.
    pub arpd: Option<u8>,
    pub clients: [ClientConfig; MAX_CLIENTS],
    pub client_count: u8,
}

impl NetConfig {
    /// The clients, in index order.
    pub fn clients(&self) -> &[ClientConfig] {
        &self.clients[..usize::from(self.client_count).min(MAX_CLIENTS)]
    }

    /// The receiving PD's own client entry.
    pub fn my_client(&self) -> Option<&ClientConfig> {
        self.clients().get(usize::from(self.me?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_fit_their_queues_and_do_not_overlap() {
        use lib_queue::region_size;
        assert!(region_size(lib_net_protocol::CLIENT_RX_QUEUE_CAPACITY) as u64 <= ClientRegion::RxFree.size());
        assert!(region_size(lib_net_protocol::TX_QUEUE_CAPACITY) as u64 <= ClientRegion::TxFree.size());
        assert_eq!(ClientRegion::RxData.size(), lib_net_protocol::CLIENT_RX_DATA_SIZE as u64);
        const LARGE: u64 = 0x20_0000;
        for r in ClientRegion::ALL.into_iter().filter(|r| r.large_pages()) {
            assert_eq!(r.size() % LARGE, 0, "{r:?}");
            assert_eq!(r.client_vaddr() % LARGE, 0, "{r:?}");
            assert!((0..MAX_CLIENTS).all(|n| r.mux_vaddr(n) % LARGE == 0), "{r:?}");
        }
        let mut spans: std::vec::Vec<(u64, u64)> =
            ClientRegion::ALL.iter().map(|r| (r.client_vaddr(), r.client_vaddr() + r.size())).collect();
        spans.push((ARP_TABLE_VADDR, ARP_TABLE_VADDR + ARP_TABLE_SIZE));
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{pair:x?}");
        }
        for r in ClientRegion::ALL {
            assert_eq!(r.client_vaddr() % 0x1000, 0);
            assert!(
                r.mux_vaddr(MAX_CLIENTS - 1) + r.size() <= MUX_CLIENT_BASE + MAX_CLIENTS as u64 * MUX_CLIENT_STRIDE
            );
        }
    }

    #[test]
    fn next_hop_and_broadcast() {
        let node = NodeAddress {
            ipv4: Ipv4Address::new(10, 0, 2, 15),
            prefix_len: 24,
            gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
        };
        assert_eq!(node.next_hop(Ipv4Address::new(10, 0, 2, 1)), Some(Ipv4Address::new(10, 0, 2, 1)));
        assert_eq!(node.next_hop(Ipv4Address::new(8, 8, 8, 8)), Some(Ipv4Address::new(10, 0, 2, 2)));
        assert_eq!(node.broadcast(), Ipv4Address::new(10, 0, 2, 255));
        let isolated = NodeAddress { gateway: None, prefix_len: 32, ..node };
        assert_eq!(isolated.next_hop(Ipv4Address::new(10, 0, 2, 1)), None);
        assert_eq!(isolated.broadcast(), node.ipv4);
        assert_eq!(NodeAddress { prefix_len: 0, ..node }.broadcast(), Ipv4Address::BROADCAST);
    }
}
