//! The demultiplexer's protected calls, defined once for both ends.
//!
//! A network PD (a `<client>` of the `<network>`) has a channel to the
//! demultiplexer `net-mux` (id `net_config::CLIENT_MUX_CHANNEL`) on which it
//! may call:
//!
//! | request label | arguments | reply label | reply registers |
//! |---|---|---|---|
//! | [`label::STATS`] | none | [`OK`] | MR0–MR8: the caller's and the node's counters ([`MuxStats::to_words`], the field order of [`MuxStats`]) |
//! | [`label::INSTALL`] | MR0–MR2: the filter ([`Filter::to_words`]); MR3: its kind (0 exclusive, 1 copy) | [`OK`] | MR0: the filter's id ([`FilterId::to_raw`]) |
//! | [`label::REMOVE`] | MR0: the filter's id ([`FilterId::to_raw`], at most 32 bits) | [`OK`] | none |
//! | [`label::NODE`] | none | [`OK`] | MR0: the node's MAC ([`mac_to_word`]); MR1: its IPv4 address (`Ipv4Address::to_u32`); MR2: the on-link prefix length (0–32); MR3: the gateway (`to_u32`, 0 if none); MR4: the driver's offloads ([`NodeInfo::offloads`]: the bits [`OFFLOAD_TX_CSUM`], [`OFFLOAD_TSO4`], [`OFFLOAD_RX_CSUM`], 0 if none) |
//! | [`label::ATTACH`] | none | [`OK`] | as [`label::NODE`] |
//!
//! **Attach** is a client's first call, before it makes its queue handles
//! (`lib-queue`, "Starting over"), at boot and after the monitor restarted
//! it: the demultiplexer forgets the caller's previous life. On every
//! Attach after the first it
//!
//! - removes every filter the caller holds and installs its boot claims
//!   (the description's) again: the caller installs its own again, as at
//!   boot;
//! - resets the caller's four queues to empty (`rx_free`, `rx_active`,
//!   `tx_active`, `tx_free`): the frames queued to it are dropped, the
//!   receive buffers it had lent are forgotten (it lends them all again),
//!   and so are its frames not yet taken;
//! - forgets its frames at the driver that hold descriptors (frames sent
//!   in place): their `tx_payload` slots come back from the driver as
//!   usual, but their descriptors are not returned to the caller, which
//!   no longer knows them. The NIC may still read the caller's `send_from`
//!   bytes of those frames until the driver returns them; a restarted
//!   caller that rewrites that region at once may put changed bytes on
//!   the wire in frames of connections it has forgotten anyway;
//! - logs one line saying what it dropped. Counters are kept.
//!
//! The first Attach changes nothing (the queues are fresh and the boot
//! claims just installed). Attach answers like Node.
//!
//! Install and Remove are refused with the filter table's error code
//! ([`FilterError::code`], 1–8; 8 is the per-client quota,
//! [`MAX_FILTERS_PER_CLIENT`]) as the reply label and no registers, except
//! [`FilterError::Overlaps`], whose MR0 is the id of the installed filter
//! the claim overlaps. A request with an unknown label, missing arguments
//! (fewer registers than the table lists), a filter that does not decode
//! ([`Filter::from_words`]), a kind other than 0 or 1, an id above 32 bits,
//! or from a PD that is not a client of the demultiplexer, is answered
//! [`ERR_BAD_REQUEST`] with no registers. Registers beyond the arguments
//! are ignored. The demultiplexer also logs its filter table and counters
//! on Stats.
//!
//! [`Mux`] is the client (used by `net-client`'s `NetClient`). The
//! demultiplexer decodes with [`Request::decode`] (or
//! [`Request::from_registers`]) and answers with [`encode_reply`] (or
//! [`reply_message`], which also writes the registers); the client decodes
//! with [`Request::decode_reply`]. The tests here check both directions.
//!
//! [`ERR_BAD_REQUEST`], [`BadRequest`], [`Message`] and the MAC's layout
//! ([`mac_to_word`]) are those every call of the network shares; they are
//! defined in `lib-net-protocol` and re-exported here.
#![no_std]

#[cfg(test)]
extern crate std;

use core::fmt;

pub use lib_net_protocol::{
    mac_from_word, mac_to_word, BadRequest, Message, ERR_BAD_REQUEST, OFFLOAD_RX_CSUM, OFFLOAD_TSO4, OFFLOAD_TX_CSUM,
    OK,
};
pub use net_config::NodeAddress;
pub use net_filter::{Filter, FilterError, FilterId, FilterKind};

use net_config::Ipv4Address;
use pds_boot_spec::monitor_protocol::{LABEL_SERVER_RESTARTED, LABEL_SERVER_STOPPED};
use pds_runtime::{Channel, MessageInfo};

/// Labels of the requests.
pub mod label {
    /// The caller's and the node's counters.
    pub const STATS: u64 = 1;
    /// Install a filter for the caller.
    pub const INSTALL: u64 = 2;
    /// Remove one of the caller's filters.
    pub const REMOVE: u64 = 3;
    /// The node's MAC, IPv4 configuration and offloads.
    pub const NODE: u64 = 4;
    /// The caller starts (or starts again): a clean slate, then as NODE.
    pub const ATTACH: u64 = 5;
}

/// Most filters one client may hold at once (its boot claims and watches
/// and those it installs), across kinds: Install beyond it is refused with
/// [`FilterError::QuotaExceeded`]. With `net_config::MAX_CLIENTS` clients
/// of [`MAX_FILTERS_PER_CLIENT`] each the demultiplexer's table (its
/// `FILTER_SLOTS`, which it checks at compile time) never fills: no client
/// can take the slots another needs.
pub const MAX_FILTERS_PER_CLIENT: usize = 8;

/// Most registers of a request.
pub const REQUEST_WORDS: usize = 4;
/// Most registers of a reply.
pub const REPLY_WORDS: usize = MuxStats::WORDS;

/// A request as a message.
pub type RequestMessage = Message<REQUEST_WORDS>;
/// A reply as a message.
pub type ReplyMessage = Message<REPLY_WORDS>;

/// A call to the demultiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Install `filter` for the caller, inside its grant.
    Install { filter: Filter, kind: FilterKind },
    /// Remove the caller's filter with this id.
    Remove(FilterId),
    /// The caller's and the node's counters (the demultiplexer also logs
    /// its table).
    Stats,
    /// The node's MAC, address and offloads.
    Node,
    /// The caller starts: forget its previous life (crate docs), then as
    /// [`Request::Node`].
    Attach,
}

/// What the demultiplexer answers to a [`Request`] that succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// To [`Request::Install`]: the new filter's id.
    Installed(FilterId),
    /// To [`Request::Remove`].
    Removed,
    /// To [`Request::Stats`].
    Stats(MuxStats),
    /// To [`Request::Node`].
    Node(NodeInfo),
}

/// The node, as [`Request::Node`] returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The NIC's MAC address.
    pub mac: [u8; 6],
    /// The node's IPv4 configuration (from the description).
    pub address: NodeAddress,
    /// The offloads the NIC's driver negotiated (`lib_net_protocol`'s
    /// "Offloads"): [`OFFLOAD_TX_CSUM`] and [`OFFLOAD_TSO4`] say what a
    /// frame's offload descriptor may ask, [`OFFLOAD_RX_CSUM`] that
    /// received frames may carry `RX_CSUM_VALID`; 0 if none.
    pub offloads: u64,
}

/// Why a call to the demultiplexer did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuxError {
    /// The request was malformed, or the caller is no client
    /// ([`ERR_BAD_REQUEST`]).
    BadRequest,
    /// The filter table refused the install or remove.
    Filter(FilterError),
    /// A reply this protocol does not define: its label and register count
    /// (the demultiplexer never sends one).
    Unexpected { label: u64, words: usize },
    /// The demultiplexer was restarted while it handled the call
    /// (`pds_boot_spec::monitor_protocol::LABEL_SERVER_RESTARTED`): the
    /// call may or may not have taken effect.
    ServerRestarted,
    /// The demultiplexer is stopped for good
    /// (`pds_boot_spec::monitor_protocol::LABEL_SERVER_STOPPED`): the call
    /// did not take effect, and no later call will.
    ServerStopped,
}

impl MuxError {
    /// The reply label that carries this error.
    pub const fn label(self) -> u64 {
        match self {
            MuxError::BadRequest => ERR_BAD_REQUEST,
            MuxError::Filter(e) => e.code() as u64,
            MuxError::Unexpected { label, .. } => label,
            MuxError::ServerRestarted => LABEL_SERVER_RESTARTED,
            MuxError::ServerStopped => LABEL_SERVER_STOPPED,
        }
    }
}

impl From<FilterError> for MuxError {
    fn from(e: FilterError) -> Self {
        MuxError::Filter(e)
    }
}

impl From<BadRequest> for MuxError {
    fn from(_: BadRequest) -> Self {
        MuxError::BadRequest
    }
}

impl fmt::Display for MuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuxError::BadRequest => write!(f, "bad request (error {ERR_BAD_REQUEST})"),
            MuxError::Filter(e) => write!(f, "{e:?} (error {})", e.code()),
            MuxError::Unexpected { label, words } => write!(f, "unexpected reply {label} with {words} registers"),
            MuxError::ServerRestarted => write!(f, "the demultiplexer restarted during the call"),
            MuxError::ServerStopped => write!(f, "the demultiplexer is stopped for good"),
        }
    }
}

/// Every filter error, for decoding a code (`Overlaps` with a placeholder
/// id).
const FILTER_ERRORS: [FilterError; 8] = [
    FilterError::Inconsistent,
    FilterError::OutOfGrant,
    FilterError::CopyNotPrivileged,
    FilterError::Overlaps { with: FilterId::from_raw(0) },
    FilterError::Full,
    FilterError::NoSuchFilter,
    FilterError::NotOwner,
    FilterError::QuotaExceeded,
];

/// The filter error a reply with `label` and registers `words` carries.
fn filter_error(label: u64, words: &[u64]) -> Option<FilterError> {
    let error = FILTER_ERRORS.into_iter().find(|e| u64::from(e.code()) == label)?;
    Some(match error {
        FilterError::Overlaps { .. } => {
            FilterError::Overlaps { with: FilterId::from_raw(u32::try_from(*words.first()?).ok()?) }
        }
        error => error,
    })
}

/// The kind register of Install.
fn kind_to_word(kind: FilterKind) -> u64 {
    match kind {
        FilterKind::Exclusive => 0,
        FilterKind::Copy => 1,
    }
}

/// The inverse of [`kind_to_word`]; `None` for any other word.
fn kind_from_word(word: u64) -> Option<FilterKind> {
    match word {
        0 => Some(FilterKind::Exclusive),
        1 => Some(FilterKind::Copy),
        _ => None,
    }
}

impl Request {
    /// The request's label.
    pub const fn label(&self) -> u64 {
        match self {
            Request::Install { .. } => label::INSTALL,
            Request::Remove(_) => label::REMOVE,
            Request::Stats => label::STATS,
            Request::Node => label::NODE,
            Request::Attach => label::ATTACH,
        }
    }

    /// The request as a message.
    pub fn encode(&self) -> RequestMessage {
        match self {
            Request::Install { filter, kind } => {
                let [w0, w1, w2] = filter.to_words();
                Message::with_words(self.label(), &[w0, w1, w2, kind_to_word(*kind)])
            }
            Request::Remove(id) => Message::with_words(self.label(), &[u64::from(id.to_raw())]),
            Request::Stats | Request::Node | Request::Attach => Message::new(self.label()),
        }
    }

    /// The request a message with `label` and registers `words` makes.
    pub fn decode(label: u64, words: &[u64]) -> Result<Request, BadRequest> {
        match label {
            label::STATS => Ok(Request::Stats),
            label::NODE => Ok(Request::Node),
            label::ATTACH => Ok(Request::Attach),
            label::INSTALL => {
                let &[w0, w1, w2, kind, ..] = words else { return Err(BadRequest) };
                let filter = Filter::from_words([w0, w1, w2]).ok_or(BadRequest)?;
                let kind = kind_from_word(kind).ok_or(BadRequest)?;
                Ok(Request::Install { filter, kind })
            }
            label::REMOVE => {
                let raw = words.first().and_then(|&w| u32::try_from(w).ok()).ok_or(BadRequest)?;
                Ok(Request::Remove(FilterId::from_raw(raw)))
            }
            _ => Err(BadRequest),
        }
    }

    /// The request that just arrived, described by `info` (its registers
    /// read from the IPC buffer).
    pub fn from_registers(info: MessageInfo) -> Result<Request, BadRequest> {
        let message = RequestMessage::from_registers(info);
        Request::decode(message.label(), message.words())
    }

    /// The demultiplexer's answer to this request, from its reply message.
    pub fn decode_reply<const N: usize>(&self, reply: &Message<N>) -> Result<Reply, MuxError> {
        let words = reply.words();
        let unexpected = MuxError::Unexpected { label: reply.label(), words: words.len() };
        match reply.label() {
            OK => {}
            ERR_BAD_REQUEST => return Err(MuxError::BadRequest),
            LABEL_SERVER_RESTARTED => return Err(MuxError::ServerRestarted),
            LABEL_SERVER_STOPPED => return Err(MuxError::ServerStopped),
            code => {
                return match self {
                    Request::Install { .. } | Request::Remove(_) => {
                        filter_error(code, words).map(MuxError::Filter).ok_or(unexpected).and_then(Err)
                    }
                    Request::Stats | Request::Node | Request::Attach => Err(unexpected),
                }
            }
        }
        match self {
            Request::Install { .. } => {
                let raw = words.first().and_then(|&w| u32::try_from(w).ok()).ok_or(unexpected)?;
                Ok(Reply::Installed(FilterId::from_raw(raw)))
            }
            Request::Remove(_) => Ok(Reply::Removed),
            Request::Stats => {
                let words: [u64; MuxStats::WORDS] =
                    words.get(..MuxStats::WORDS).and_then(|w| w.try_into().ok()).ok_or(unexpected)?;
                Ok(Reply::Stats(MuxStats::from_words(words)))
            }
            Request::Node | Request::Attach => {
                let &[mac, ipv4, prefix_len, gateway, offloads, ..] = words else { return Err(unexpected) };
                let ipv4 = u32::try_from(ipv4).map_err(|_| unexpected)?;
                let prefix_len = u8::try_from(prefix_len).ok().filter(|&p| p <= 32).ok_or(unexpected)?;
                let gateway = u32::try_from(gateway).map_err(|_| unexpected)?;
                Ok(Reply::Node(NodeInfo {
                    mac: mac_from_word(mac),
                    address: NodeAddress {
                        ipv4: Ipv4Address::from_u32(ipv4),
                        prefix_len,
                        gateway: (gateway != 0).then(|| Ipv4Address::from_u32(gateway)),
                    },
                    offloads,
                }))
            }
        }
    }
}

/// The reply message for `result`.
pub fn encode_reply(result: &Result<Reply, MuxError>) -> ReplyMessage {
    match result {
        Ok(Reply::Installed(id)) => Message::with_words(OK, &[u64::from(id.to_raw())]),
        Ok(Reply::Removed) => Message::new(OK),
        Ok(Reply::Stats(stats)) => Message::with_words(OK, &stats.to_words()),
        Ok(Reply::Node(node)) => {
            let address = &node.address;
            Message::with_words(
                OK,
                &[
                    mac_to_word(node.mac),
                    u64::from(address.ipv4.to_u32()),
                    u64::from(address.prefix_len),
                    address.gateway.map_or(0, |g| u64::from(g.to_u32())),
                    node.offloads,
                ],
            )
        }
        Err(MuxError::Filter(FilterError::Overlaps { with })) => Message::with_words(
            MuxError::Filter(FilterError::Overlaps { with: *with }).label(),
            &[u64::from(with.to_raw())],
        ),
        Err(e) => Message::new(e.label()),
    }
}

/// The demultiplexer's reply for `result`, written into the registers:
/// what `Handler::protected` returns.
pub fn reply_message(result: &Result<Reply, MuxError>) -> MessageInfo {
    encode_reply(result).to_registers()
}

/// The demultiplexer seen from a client, through the client's channel to
/// it.
#[derive(Clone, Copy, Debug)]
pub struct Mux(Channel);

impl Mux {
    pub const fn new(channel: Channel) -> Self {
        Mux(channel)
    }

    /// The channel to the demultiplexer (notified both ways about the
    /// queues).
    pub fn channel(self) -> Channel {
        self.0
    }

    /// Makes `request` and decodes the answer.
    pub fn call(self, request: &Request) -> Result<Reply, MuxError> {
        let reply: ReplyMessage = request.encode().call(self.0);
        request.decode_reply(&reply)
    }

    /// Installs `filter` of `kind` for this PD; its id.
    pub fn install(self, filter: &Filter, kind: FilterKind) -> Result<FilterId, MuxError> {
        match self.call(&Request::Install { filter: *filter, kind })? {
            Reply::Installed(id) => Ok(id),
            other => Err(mismatch(&other)),
        }
    }

    /// Removes this PD's filter `id`.
    pub fn remove(self, id: FilterId) -> Result<(), MuxError> {
        match self.call(&Request::Remove(id))? {
            Reply::Removed => Ok(()),
            other => Err(mismatch(&other)),
        }
    }

    /// This PD's and the node's counters (the demultiplexer also logs its
    /// table).
    pub fn stats(self) -> Result<MuxStats, MuxError> {
        match self.call(&Request::Stats)? {
            Reply::Stats(stats) => Ok(stats),
            other => Err(mismatch(&other)),
        }
    }

    /// The node's MAC, address and offloads.
    pub fn node(self) -> Result<NodeInfo, MuxError> {
        match self.call(&Request::Node)? {
            Reply::Node(node) => Ok(node),
            other => Err(mismatch(&other)),
        }
    }

    /// Starts this PD's life as a client (crate docs, Attach): call it
    /// before making the queue handles. The node's MAC, address and
    /// offloads.
    pub fn attach(self) -> Result<NodeInfo, MuxError> {
        match self.call(&Request::Attach)? {
            Reply::Node(node) => Ok(node),
            other => Err(mismatch(&other)),
        }
    }
}

/// A reply of another request than the one made ([`Request::decode_reply`]
/// never gives one; for completeness).
fn mismatch(reply: &Reply) -> MuxError {
    let message = encode_reply(&Ok(*reply));
    MuxError::Unexpected { label: message.label(), words: message.words().len() }
}

/// Counters the demultiplexer returns for [`Request::Stats`]: the caller's
/// own, then the node's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Frames copied into the caller's receive queue.
    pub rx_delivered: u64,
    /// Frames for the caller dropped because its queue had no free buffer.
    pub rx_no_buffer: u64,
    /// Frames the caller sent that passed transmit validation.
    pub tx_allowed: u64,
    /// Frames the caller sent that were refused (any reason).
    pub tx_refused: u64,
    /// Filter claims of the caller that were refused.
    pub claims_refused: u64,
    /// Malformed frames dropped, all reasons.
    pub malformed: u64,
    /// Valid frames no PD received.
    pub no_match: u64,
    /// Frames sent to the unclaimed-IPv4 owner.
    pub unclaimed_ipv4: u64,
    /// Bytes the caller sent in place from its `send_from` region (by
    /// reference: the NIC read them where they are), in allowed frames.
    pub tx_in_place_bytes: u64,
}

impl MuxStats {
    /// Registers a Stats reply carries.
    pub const WORDS: usize = 9;

    /// The counters in register order (the field order above).
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        [
            self.rx_delivered,
            self.rx_no_buffer,
            self.tx_allowed,
            self.tx_refused,
            self.claims_refused,
            self.malformed,
            self.no_match,
            self.unclaimed_ipv4,
            self.tx_in_place_bytes,
        ]
    }

    /// The inverse of [`to_words`](Self::to_words).
    pub fn from_words(w: [u64; Self::WORDS]) -> Self {
        MuxStats {
            rx_delivered: w[0],
            rx_no_buffer: w[1],
            tx_allowed: w[2],
            tx_refused: w[3],
            claims_refused: w[4],
            malformed: w[5],
            no_match: w[6],
            unclaimed_ipv4: w[7],
            tx_in_place_bytes: w[8],
        }
    }
}

impl fmt::Display for MuxStats {
    /// `key=value` pairs, the form tests parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx_delivered={} rx_no_buffer={} tx_allowed={} tx_refused={} claims_refused={} malformed={} no_match={} unclaimed_ipv4={} tx_in_place_bytes={}",
            self.rx_delivered,
            self.rx_no_buffer,
            self.tx_allowed,
            self.tx_refused,
            self.claims_refused,
            self.malformed,
            self.no_match,
            self.unclaimed_ipv4,
            self.tx_in_place_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn filter(text: &str) -> Filter {
        Filter::parse(text).unwrap()
    }

    fn stats() -> MuxStats {
        MuxStats::from_words([1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    fn node(gateway: Option<Ipv4Address>) -> NodeInfo {
        NodeInfo {
            mac: MAC,
            address: NodeAddress { ipv4: Ipv4Address::new(10, 0, 2, 15), prefix_len: 24, gateway },
            offloads: 0,
        }
    }

    const ALL_OFFLOADS: u64 = OFFLOAD_TX_CSUM | OFFLOAD_TSO4 | OFFLOAD_RX_CSUM;

    fn requests() -> [Request; 6] {
        [
            Request::Install { filter: filter("tcp dst 80"), kind: FilterKind::Exclusive },
            Request::Install { filter: filter("icmp"), kind: FilterKind::Copy },
            Request::Remove(FilterId::from_raw(0x0003_0002)),
            Request::Remove(FilterId::from_raw(u32::MAX)),
            Request::Stats,
            Request::Node,
        ]
    }

    #[test]
    fn every_request_survives_its_encoding() {
        for request in requests() {
            let message = request.encode();
            assert_eq!(message.label(), request.label());
            assert_eq!(Request::decode(message.label(), message.words()), Ok(request), "{request:?}");
        }
    }

    #[test]
    fn requests_have_the_documented_layout() {
        let f = filter("udp dst 7000");
        let [w0, w1, w2] = f.to_words();
        let install = Request::Install { filter: f, kind: FilterKind::Copy }.encode();
        assert_eq!((install.label(), install.words()), (label::INSTALL, &[w0, w1, w2, 1][..]));
        let remove = Request::Remove(FilterId::from_raw(0x10_0007)).encode();
        assert_eq!((remove.label(), remove.words()), (label::REMOVE, &[0x10_0007][..]));
        assert_eq!((Request::Stats.encode().label(), Request::Stats.encode().words().len()), (label::STATS, 0));
        assert_eq!((Request::Node.encode().label(), Request::Node.encode().words().len()), (label::NODE, 0));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let [w0, w1, w2] = filter("tcp dst 8082").to_words();
        let bad: [(u64, &[u64], &str); 7] = [
            (label::INSTALL, &[u64::MAX, 0, 0, 0], "a filter that does not decode"),
            (label::INSTALL, &[w0, w1, w2, 2], "an unknown kind"),
            (label::INSTALL, &[w0, w1, w2], "no kind"),
            (label::REMOVE, &[], "no id"),
            (label::REMOVE, &[1 << 40], "an id above 32 bits"),
            (0, &[], "label 0"),
            (99, &[], "an unknown label"),
        ];
        for (label, words, what) in bad {
            assert_eq!(Request::decode(label, words), Err(BadRequest), "{what}");
        }
        // Registers beyond the arguments are ignored.
        assert_eq!(Request::decode(label::STATS, &[1, 2]), Ok(Request::Stats));
        assert_eq!(
            Request::decode(label::REMOVE, &[5, 6]),
            Ok(Request::Remove(FilterId::from_raw(5))),
            "extra registers"
        );
    }

    #[test]
    fn every_reply_survives_its_encoding() {
        let [install, _, remove, _, stats_request, node_request] = requests();
        let cases: [(Request, Result<Reply, MuxError>); 16] = [
            (install, Ok(Reply::Installed(FilterId::from_raw(0x0001_0004)))),
            (remove, Ok(Reply::Removed)),
            (stats_request, Ok(Reply::Stats(stats()))),
            (node_request, Ok(Reply::Node(node(Some(Ipv4Address::new(10, 0, 2, 2)))))),
            (node_request, Ok(Reply::Node(node(None)))),
            (node_request, Ok(Reply::Node(NodeInfo { offloads: ALL_OFFLOADS, ..node(None) }))),
            (node_request, Ok(Reply::Node(NodeInfo { offloads: OFFLOAD_RX_CSUM, ..node(None) }))),
            (install, Err(MuxError::Filter(FilterError::Inconsistent))),
            (install, Err(MuxError::Filter(FilterError::OutOfGrant))),
            (install, Err(MuxError::Filter(FilterError::CopyNotPrivileged))),
            (install, Err(MuxError::Filter(FilterError::Overlaps { with: FilterId::from_raw(0x0002_0001) }))),
            (install, Err(MuxError::Filter(FilterError::Full))),
            (remove, Err(MuxError::Filter(FilterError::NoSuchFilter))),
            (remove, Err(MuxError::Filter(FilterError::NotOwner))),
            (stats_request, Err(MuxError::BadRequest)),
            (install, Err(MuxError::BadRequest)),
        ];
        for (request, result) in cases {
            let reply = encode_reply(&result);
            assert_eq!(request.decode_reply(&reply), result, "{request:?}");
        }
    }

    #[test]
    fn replies_have_the_documented_layout() {
        let reply = encode_reply(&Ok(Reply::Node(node(Some(Ipv4Address::new(10, 0, 2, 2))))));
        assert_eq!((reply.label(), reply.words()), (OK, &[0x5634_1200_5452, 0x0a00_020f, 24, 0x0a00_0202, 0][..]));
        let reply = encode_reply(&Ok(Reply::Node(node(None))));
        assert_eq!(reply.words()[3], 0, "no gateway");
        let reply = encode_reply(&Ok(Reply::Node(NodeInfo { offloads: OFFLOAD_TX_CSUM | OFFLOAD_TSO4, ..node(None) })));
        assert_eq!(reply.words()[4], 0b011, "the offload bits in MR4");
        let reply = encode_reply(&Ok(Reply::Node(NodeInfo { offloads: ALL_OFFLOADS, ..node(None) })));
        assert_eq!(reply.words()[4], 0b111, "every offload");
        let reply = encode_reply(&Ok(Reply::Stats(stats())));
        assert_eq!((reply.label(), reply.words()), (OK, &[1, 2, 3, 4, 5, 6, 7, 8, 9][..]));
        let reply = encode_reply(&Ok(Reply::Installed(FilterId::from_raw(0x0001_0004))));
        assert_eq!((reply.label(), reply.words()), (OK, &[0x0001_0004][..]));
        let reply = encode_reply(&Ok(Reply::Removed));
        assert_eq!((reply.label(), reply.words().len()), (OK, 0));
        let reply = encode_reply(&Err(MuxError::Filter(FilterError::OutOfGrant)));
        assert_eq!((reply.label(), reply.words().len()), (2, 0));
        let reply = encode_reply(&Err(MuxError::Filter(FilterError::Overlaps { with: FilterId::from_raw(7) })));
        assert_eq!((reply.label(), reply.words()), (4, &[7][..]));
        let reply = encode_reply(&Err(MuxError::BadRequest));
        assert_eq!((reply.label(), reply.words().len()), (ERR_BAD_REQUEST, 0));
    }

    #[test]
    fn filter_error_codes_are_distinct_and_not_the_other_labels() {
        for (i, a) in FILTER_ERRORS.iter().enumerate() {
            let code = u64::from(a.code());
            assert!(code != OK && code != ERR_BAD_REQUEST, "{a:?}");
            assert!(FILTER_ERRORS[i + 1..].iter().all(|b| b.code() != a.code()), "{a:?}");
        }
    }

    #[test]
    fn short_or_foreign_replies_are_unexpected() {
        let [install, _, remove, _, stats_request, node_request] = requests();
        let unexpected = |label, words| Err(MuxError::Unexpected { label, words });
        assert_eq!(stats_request.decode_reply(&ReplyMessage::with_words(OK, &[1, 2])), unexpected(OK, 2));
        assert_eq!(node_request.decode_reply(&ReplyMessage::with_words(OK, &[1, 2, 3])), unexpected(OK, 3));
        // The four registers of a Node reply without the offloads.
        assert_eq!(node_request.decode_reply(&ReplyMessage::with_words(OK, &[1, 2, 24, 0])), unexpected(OK, 4));
        assert_eq!(node_request.decode_reply(&ReplyMessage::with_words(OK, &[1, 2, 33, 0, 0])), unexpected(OK, 5));
        assert_eq!(
            node_request.decode_reply(&ReplyMessage::with_words(OK, &[1, 1 << 32, 24, 0, 0])),
            unexpected(OK, 5)
        );
        assert_eq!(install.decode_reply(&ReplyMessage::new(OK)), unexpected(OK, 0));
        assert_eq!(install.decode_reply(&ReplyMessage::with_words(OK, &[1 << 32])), unexpected(OK, 1));
        // Overlaps without the other filter's id.
        assert_eq!(install.decode_reply(&ReplyMessage::new(4)), unexpected(4, 0));
        // Filter codes answer only Install and Remove; unknown codes nothing.
        assert_eq!(stats_request.decode_reply(&ReplyMessage::new(2)), unexpected(2, 0));
        assert_eq!(remove.decode_reply(&ReplyMessage::new(9)), unexpected(9, 0));
        // The runtime's answer to a PD that serves no calls.
        let refused = u64::from(u32::MAX);
        assert_eq!(node_request.decode_reply(&ReplyMessage::new(refused)), unexpected(refused, 0));
    }

    #[test]
    fn stats_words_keep_the_field_order() {
        let s = stats();
        assert_eq!(MuxStats::from_words(s.to_words()), s);
        assert_eq!(s.rx_delivered, 1);
        assert_eq!(s.tx_in_place_bytes, 9);
    }

    #[test]
    fn stats_display_names_every_counter() {
        let s = MuxStats { tx_in_place_bytes: 1000, unclaimed_ipv4: 3, ..MuxStats::default() };
        let text = std::format!("{s}");
        assert!(text.ends_with(" unclaimed_ipv4=3 tx_in_place_bytes=1000"), "{text}");
        assert_eq!(text.split(' ').count(), MuxStats::WORDS);
    }

    #[test]
    fn errors_read_with_their_codes() {
        assert_eq!(std::format!("{}", MuxError::Filter(FilterError::OutOfGrant)), "OutOfGrant (error 2)");
        assert_eq!(std::format!("{}", MuxError::BadRequest), "bad request (error 100)");
    }
}

#[cfg(test)]
mod attach_tests {
    use super::*;

    #[test]
    fn attach_is_label_5_without_registers_and_answers_like_node() {
        let message = Request::Attach.encode();
        assert_eq!((message.label(), message.words().len()), (label::ATTACH, 0));
        assert_eq!(Request::decode(label::ATTACH, &[]), Ok(Request::Attach));
        let node = NodeInfo {
            mac: [2, 0, 0, 0, 0, 1],
            address: NodeAddress { ipv4: Ipv4Address::new(10, 0, 2, 15), prefix_len: 24, gateway: None },
            offloads: OFFLOAD_TSO4,
        };
        let reply = encode_reply(&Ok(Reply::Node(node)));
        assert_eq!(Request::Attach.decode_reply(&reply), Ok(Reply::Node(node)));
    }

    #[test]
    fn a_restarted_demultiplexers_error_reply_is_its_own_error_for_every_call() {
        let reply: ReplyMessage = Message::new(LABEL_SERVER_RESTARTED);
        for request in [Request::Stats, Request::Node, Request::Attach, Request::Remove(FilterId::from_raw(1))] {
            assert_eq!(request.decode_reply(&reply), Err(MuxError::ServerRestarted), "{request:?}");
        }
        assert_eq!(encode_reply(&Err(MuxError::ServerRestarted)).label(), LABEL_SERVER_RESTARTED);
    }

    #[test]
    fn a_stopped_demultiplexers_answer_is_its_own_error_for_every_call() {
        let reply: ReplyMessage = Message::new(LABEL_SERVER_STOPPED);
        for request in [Request::Stats, Request::Node, Request::Attach, Request::Remove(FilterId::from_raw(1))] {
            assert_eq!(request.decode_reply(&reply), Err(MuxError::ServerStopped), "{request:?}");
        }
        assert_eq!(encode_reply(&Err(MuxError::ServerStopped)).label(), LABEL_SERVER_STOPPED);
    }
}
