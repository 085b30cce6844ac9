//! The driver's protected calls, defined once for both ends, and the
//! pieces every network protocol's calls share.
//!
//! The driver's client (the demultiplexer, or a test PD sitting on the
//! driver) may call the driver on its channel; any network driver (virtio-net
//! today, e1000e tomorrow) serves the same calls:
//!
//! | request label | arguments | reply label | reply registers |
//! |---|---|---|---|
//! | [`CALL_STATS`] | none | [`OK`] | MR0–MR9: [`Stats::to_words`] (the field order of [`Stats`]) |
//! | [`CALL_MAC`] | none | [`OK`] | MR0: the device's MAC ([`mac_to_word`]) |
//! | | | [`ERR_NO_MAC`] | none: the driver does not know the address (the device is not up, or did not offer one) |
//! | [`CALL_OFFLOADS`] | none | [`OK`] | MR0: the offloads negotiated, bits [`OFFLOAD_TX_CSUM`](crate::OFFLOAD_TX_CSUM), [`OFFLOAD_TSO4`](crate::OFFLOAD_TSO4), [`OFFLOAD_RX_CSUM`](crate::OFFLOAD_RX_CSUM) (0: none, or the device is not up) |
//! | [`CALL_ATTACH`] | none | [`OK`] | none: the driver emptied its ends of the four queues (crate docs, "Starting over") |
//!
//! Registers a request carries beyond its arguments are ignored. Any other
//! label is answered [`ERR_BAD_REQUEST`] with no registers. A driver logs
//! its counters when asked for them.
//!
//! [`Driver`] is the client. A driver decodes with
//! [`DriverRequest::decode`] (or [`DriverRequest::from_registers`]) and
//! answers with [`encode_driver_reply`] (or [`driver_reply`], which also
//! writes the registers); the client decodes with
//! [`DriverRequest::decode_reply`]. The tests here check the encoding in
//! both directions.
//!
//! # Shared by the network's protocols
//!
//! [`Message`] (a label and a bounded number of register words),
//! [`ERR_BAD_REQUEST`] with [`BadRequest`], and the MAC's one-word layout
//! ([`mac_to_word`]) are also those of the demultiplexer's calls
//! (`net-mux-api`) and arpd's (`arpd-api`), which re-export them: one
//! definition for every call of the network.

use pds_runtime::{get_mr, msginfo, set_mr, Channel, MessageInfo};

use crate::Stats;

/// Reply label of a call that succeeded.
pub const OK: u64 = 0;

/// Reply label of a malformed request: an unknown label, missing or
/// out-of-range arguments, or a caller the server does not serve. The
/// value every call of the network answers with (the driver's, the
/// demultiplexer's, arpd's); distinct from every other reply label of
/// those protocols.
pub const ERR_BAD_REQUEST: u64 = 100;

/// A malformed request (answered [`ERR_BAD_REQUEST`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRequest;

/// Label of the protected call that returns (and logs) the driver's
/// [`Stats`].
pub const CALL_STATS: u64 = 1;

/// Label of the protected call that returns the device's MAC address.
pub const CALL_MAC: u64 = 2;

/// Label of the protected call that returns the offloads the driver
/// negotiated (crate documentation, "Offloads"): reply [`OK`], MR0 the bits
/// [`OFFLOAD_TX_CSUM`](crate::OFFLOAD_TX_CSUM), [`OFFLOAD_TSO4`](crate::OFFLOAD_TSO4), [`OFFLOAD_RX_CSUM`](crate::OFFLOAD_RX_CSUM) (0: none, or
/// the device is not up).
pub const CALL_OFFLOADS: u64 = 3;

/// Label of the protected call with which the client answers a restarted
/// driver's restart marker (crate docs, "Starting over"): the driver
/// resets its ends of the four queues and serves them again. Reply [`OK`],
/// no registers.
pub const CALL_ATTACH: u64 = 4;

/// Reply label of [`CALL_MAC`] when the driver does not know the address
/// (the device is not up, or did not offer `VIRTIO_NET_F_MAC`).
pub const ERR_NO_MAC: u64 = 1;

/// A MAC address in one message register: byte `i` in bits `8i..8i+8`
/// (the first byte lowest), the high 16 bits zero.
pub fn mac_to_word(mac: [u8; 6]) -> u64 {
    let mut bytes = [0; 8];
    bytes[..6].copy_from_slice(&mac);
    u64::from_le_bytes(bytes)
}

/// The inverse of [`mac_to_word`] (the high 16 bits are ignored).
pub fn mac_from_word(word: u64) -> [u8; 6] {
    let b = word.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// A protected call's message as the network's protocols encode it: a
/// label and at most `N` message-register words, on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<const N: usize> {
    label: u64,
    words: [u64; N],
    len: usize,
}

impl<const N: usize> Message<N> {
    /// A message with `label` and no registers.
    pub const fn new(label: u64) -> Self {
        Message { label, words: [0; N], len: 0 }
    }

    /// A message with `label` and the registers `words`, of which only the
    /// first `N` are kept (an encoder never passes more).
    pub fn with_words(label: u64, words: &[u64]) -> Self {
        debug_assert!(words.len() <= N, "{} words in a message of at most {N}", words.len());
        let mut message = Message::new(label);
        message.len = words.len().min(N);
        message.words[..message.len].copy_from_slice(&words[..message.len]);
        message
    }

    /// The label.
    pub const fn label(&self) -> u64 {
        self.label
    }

    /// The registers, from MR0.
    pub fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// The message that just arrived, described by `info`: its label and
    /// its first `N` registers at most (read from the IPC buffer).
    pub fn from_registers(info: MessageInfo) -> Self {
        let mut message = Message::new(info.label());
        message.len = usize::try_from(info.length()).unwrap_or(N).min(N);
        for (i, word) in message.words[..message.len].iter_mut().enumerate() {
            *word = get_mr(i);
        }
        message
    }

    /// Writes the registers into the IPC buffer and returns the message
    /// info that sends them (as a call or as a reply).
    pub fn to_registers(&self) -> MessageInfo {
        for (i, &word) in self.words().iter().enumerate() {
            set_mr(i, word);
        }
        msginfo(self.label, self.len as u64)
    }

    /// Calls the PD at the other end of `channel` with this message and
    /// returns its reply (at most `R` registers of it).
    pub fn call<const R: usize>(&self, channel: Channel) -> Message<R> {
        Message::from_registers(channel.pp_call(self.to_registers()))
    }
}

/// A call to the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverRequest {
    /// [`CALL_STATS`]: the driver's counters.
    Stats,
    /// [`CALL_MAC`]: the device's MAC address.
    Mac,
    /// [`CALL_OFFLOADS`]: the offloads the driver negotiated.
    Offloads,
    /// [`CALL_ATTACH`]: start over on the queues after a restart.
    Attach,
}

/// What the driver answers to a [`DriverRequest`] that succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverReply {
    /// To [`DriverRequest::Stats`].
    Stats(Stats),
    /// To [`DriverRequest::Mac`].
    Mac([u8; 6]),
    /// To [`DriverRequest::Offloads`]: the offload bits
    /// ([`OFFLOAD_TX_CSUM`](crate::OFFLOAD_TX_CSUM), [`OFFLOAD_TSO4`](crate::OFFLOAD_TSO4), [`OFFLOAD_RX_CSUM`](crate::OFFLOAD_RX_CSUM)).
    Offloads(u64),
    /// To [`DriverRequest::Attach`].
    Attached,
}

impl DriverReply {
    /// This reply as the error of a call that expected another kind (a
    /// decoder never gives one: its label and register count).
    fn unexpected(self) -> DriverError {
        let words = match self {
            DriverReply::Stats(_) => Stats::WORDS,
            DriverReply::Mac(_) | DriverReply::Offloads(_) => 1,
            DriverReply::Attached => 0,
        };
        DriverError::Unexpected { label: OK, words }
    }
}

/// Why a call to the driver did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// The request was malformed ([`ERR_BAD_REQUEST`]).
    BadRequest,
    /// The driver does not know the MAC address ([`ERR_NO_MAC`]).
    NoMac,
    /// A reply this protocol does not define: its label and register
    /// count (a PD that is no network driver, or too few registers).
    Unexpected { label: u64, words: usize },
}

impl From<BadRequest> for DriverError {
    fn from(_: BadRequest) -> Self {
        DriverError::BadRequest
    }
}

/// Most registers of a driver's reply.
pub const DRIVER_REPLY_WORDS: usize = Stats::WORDS;

/// A driver's reply as a message.
pub type DriverReplyMessage = Message<DRIVER_REPLY_WORDS>;

impl DriverRequest {
    /// The request's label.
    pub const fn label(self) -> u64 {
        match self {
            DriverRequest::Stats => CALL_STATS,
            DriverRequest::Mac => CALL_MAC,
            DriverRequest::Offloads => CALL_OFFLOADS,
            DriverRequest::Attach => CALL_ATTACH,
        }
    }

    /// The request as a message (no registers).
    pub const fn encode(self) -> Message<0> {
        Message::new(self.label())
    }

    /// The request a message with `label` and registers `words` makes;
    /// registers are ignored (no request has arguments).
    pub fn decode(label: u64, _words: &[u64]) -> Result<DriverRequest, BadRequest> {
        match label {
            CALL_STATS => Ok(DriverRequest::Stats),
            CALL_MAC => Ok(DriverRequest::Mac),
            CALL_OFFLOADS => Ok(DriverRequest::Offloads),
            CALL_ATTACH => Ok(DriverRequest::Attach),
            _ => Err(BadRequest),
        }
    }

    /// The request that just arrived, described by `info`.
    pub fn from_registers(info: MessageInfo) -> Result<DriverRequest, BadRequest> {
        DriverRequest::decode(info.label(), &[])
    }

    /// The driver's answer to this request, from its reply message.
    pub fn decode_reply<const N: usize>(self, reply: &Message<N>) -> Result<DriverReply, DriverError> {
        let words = reply.words();
        let unexpected = DriverError::Unexpected { label: reply.label(), words: words.len() };
        match (reply.label(), self) {
            (OK, DriverRequest::Stats) => {
                let words: [u64; Stats::WORDS] =
                    words.get(..Stats::WORDS).and_then(|w| w.try_into().ok()).ok_or(unexpected)?;
                Ok(DriverReply::Stats(Stats::from_words(words)))
            }
            (OK, DriverRequest::Mac) => words.first().map(|&w| DriverReply::Mac(mac_from_word(w))).ok_or(unexpected),
            (OK, DriverRequest::Offloads) => words.first().map(|&w| DriverReply::Offloads(w)).ok_or(unexpected),
            (OK, DriverRequest::Attach) => Ok(DriverReply::Attached),
            (ERR_NO_MAC, DriverRequest::Mac) => Err(DriverError::NoMac),
            (ERR_BAD_REQUEST, _) => Err(DriverError::BadRequest),
            _ => Err(unexpected),
        }
    }
}

/// The reply message for `result` (a driver never answers
/// [`DriverError::Unexpected`]; if given one, its label goes back with no
/// registers).
pub fn encode_driver_reply(result: &Result<DriverReply, DriverError>) -> DriverReplyMessage {
    match result {
        Ok(DriverReply::Stats(stats)) => Message::with_words(OK, &stats.to_words()),
        Ok(DriverReply::Mac(mac)) => Message::with_words(OK, &[mac_to_word(*mac)]),
        Ok(DriverReply::Offloads(bits)) => Message::with_words(OK, &[*bits]),
        Ok(DriverReply::Attached) => Message::new(OK),
        Err(DriverError::BadRequest) => Message::new(ERR_BAD_REQUEST),
        Err(DriverError::NoMac) => Message::new(ERR_NO_MAC),
        Err(DriverError::Unexpected { label, .. }) => Message::new(*label),
    }
}

/// The driver's reply for `result`, written into the registers: what
/// `Handler::protected` returns.
pub fn driver_reply(result: &Result<DriverReply, DriverError>) -> MessageInfo {
    encode_driver_reply(result).to_registers()
}

/// The driver seen from its client, through the client's channel to it.
#[derive(Clone, Copy, Debug)]
pub struct Driver(Channel);

impl Driver {
    pub const fn new(channel: Channel) -> Self {
        Driver(channel)
    }

    /// The channel to the driver (which it notifies, and which is
    /// notified, about the queues).
    pub fn channel(self) -> Channel {
        self.0
    }

    fn call(self, request: DriverRequest) -> Result<DriverReply, DriverError> {
        let reply: DriverReplyMessage = request.encode().call(self.0);
        request.decode_reply(&reply)
    }

    /// The driver's counters (it also logs them).
    pub fn stats(self) -> Result<Stats, DriverError> {
        match self.call(DriverRequest::Stats)? {
            DriverReply::Stats(stats) => Ok(stats),
            other => Err(other.unexpected()),
        }
    }

    /// The device's MAC address.
    pub fn mac(self) -> Result<[u8; 6], DriverError> {
        match self.call(DriverRequest::Mac)? {
            DriverReply::Mac(mac) => Ok(mac),
            other => Err(other.unexpected()),
        }
    }

    /// The offloads the driver negotiated: bits [`OFFLOAD_TX_CSUM`](crate::OFFLOAD_TX_CSUM),
    /// [`OFFLOAD_TSO4`](crate::OFFLOAD_TSO4), [`OFFLOAD_RX_CSUM`](crate::OFFLOAD_RX_CSUM) (0: none, or the device is not
    /// up).
    pub fn offloads(self) -> Result<u64, DriverError> {
        match self.call(DriverRequest::Offloads)? {
            DriverReply::Offloads(bits) => Ok(bits),
            other => Err(other.unexpected()),
        }
    }

    /// Answers a restarted driver's restart marker: the driver empties its
    /// ends of the queues (crate docs, "Starting over"); the caller then
    /// empties its own.
    pub fn attach(self) -> Result<(), DriverError> {
        match self.call(DriverRequest::Attach)? {
            DriverReply::Attached => Ok(()),
            other => Err(other.unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OFFLOAD_RX_CSUM, OFFLOAD_TSO4, OFFLOAD_TX_CSUM};

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn stats() -> Stats {
        Stats::from_words([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }

    #[test]
    fn every_request_survives_its_encoding() {
        for request in [DriverRequest::Stats, DriverRequest::Mac, DriverRequest::Offloads, DriverRequest::Attach] {
            let message = request.encode();
            assert_eq!(DriverRequest::decode(message.label(), message.words()), Ok(request));
        }
        assert_eq!(DriverRequest::decode(CALL_STATS, &[7, 8]), Ok(DriverRequest::Stats), "extra registers ignored");
        assert_eq!(DriverRequest::Offloads.label(), 3, "the label h9's drivers answer");
        assert_eq!(DriverRequest::decode(CALL_OFFLOADS, &[1]), Ok(DriverRequest::Offloads), "extra registers ignored");
        assert_eq!(DriverRequest::Attach.label(), 4);
        for label in [0, 5, ERR_BAD_REQUEST, u64::from(u32::MAX)] {
            assert_eq!(DriverRequest::decode(label, &[]), Err(BadRequest), "label {label}");
        }
    }

    #[test]
    fn every_reply_survives_its_encoding() {
        let cases = [
            (DriverRequest::Stats, Ok(DriverReply::Stats(stats()))),
            (DriverRequest::Mac, Ok(DriverReply::Mac(MAC))),
            (DriverRequest::Mac, Err(DriverError::NoMac)),
            (DriverRequest::Stats, Err(DriverError::BadRequest)),
            (DriverRequest::Mac, Err(DriverError::BadRequest)),
            (DriverRequest::Offloads, Ok(DriverReply::Offloads(0))),
            (DriverRequest::Offloads, Ok(DriverReply::Offloads(OFFLOAD_TX_CSUM | OFFLOAD_TSO4 | OFFLOAD_RX_CSUM))),
            (DriverRequest::Offloads, Err(DriverError::BadRequest)),
            (DriverRequest::Attach, Ok(DriverReply::Attached)),
            (DriverRequest::Attach, Err(DriverError::BadRequest)),
        ];
        for (request, result) in cases {
            let reply = encode_driver_reply(&result);
            assert_eq!(request.decode_reply(&reply), result, "{request:?}");
        }
    }

    #[test]
    fn replies_have_the_documented_layout() {
        let reply = encode_driver_reply(&Ok(DriverReply::Stats(stats())));
        assert_eq!((reply.label(), reply.words()), (OK, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10][..]));
        let reply = encode_driver_reply(&Ok(DriverReply::Mac(MAC)));
        assert_eq!((reply.label(), reply.words()), (OK, &[0x5634_1200_5452][..]));
        let reply = encode_driver_reply(&Ok(DriverReply::Offloads(OFFLOAD_TX_CSUM | OFFLOAD_RX_CSUM)));
        assert_eq!((reply.label(), reply.words()), (OK, &[0b101][..]));
        let reply = encode_driver_reply(&Err(DriverError::NoMac));
        assert_eq!((reply.label(), reply.words().len()), (ERR_NO_MAC, 0));
        let reply = encode_driver_reply(&Err(DriverError::BadRequest));
        assert_eq!((reply.label(), reply.words().len()), (ERR_BAD_REQUEST, 0));
    }

    #[test]
    fn short_or_foreign_replies_are_unexpected() {
        let short: Message<10> = Message::with_words(OK, &[1, 2, 3]);
        assert_eq!(DriverRequest::Stats.decode_reply(&short), Err(DriverError::Unexpected { label: OK, words: 3 }));
        let empty: Message<10> = Message::new(OK);
        assert_eq!(DriverRequest::Mac.decode_reply(&empty), Err(DriverError::Unexpected { label: OK, words: 0 }));
        assert_eq!(DriverRequest::Offloads.decode_reply(&empty), Err(DriverError::Unexpected { label: OK, words: 0 }));
        // ERR_NO_MAC answers only the MAC call.
        for request in [DriverRequest::Stats, DriverRequest::Offloads] {
            assert_eq!(
                request.decode_reply(&Message::<10>::new(ERR_NO_MAC)),
                Err(DriverError::Unexpected { label: ERR_NO_MAC, words: 0 }),
                "{request:?}"
            );
        }
        // The runtime's answer to a PD that serves no calls.
        let refused = u64::from(u32::MAX);
        assert_eq!(
            DriverRequest::Mac.decode_reply(&Message::<10>::new(refused)),
            Err(DriverError::Unexpected { label: refused, words: 0 })
        );
    }

    #[test]
    fn a_message_keeps_at_most_its_capacity() {
        let message: Message<2> = Message::with_words(5, &[1, 2]);
        assert_eq!((message.label(), message.words()), (5, &[1, 2][..]));
        assert_eq!(Message::<2>::new(3).words(), &[] as &[u64]);
    }

    #[test]
    fn a_mac_word_keeps_the_byte_order_and_ignores_the_high_bits() {
        assert_eq!(mac_to_word(MAC), 0x5634_1200_5452);
        assert_eq!(mac_to_word(MAC) >> 48, 0);
        assert_eq!(mac_from_word(mac_to_word(MAC) | 0xffff << 48), MAC);
    }

    #[test]
    fn error_labels_are_distinct() {
        let labels = [OK, ERR_NO_MAC, ERR_BAD_REQUEST];
        for (i, a) in labels.iter().enumerate() {
            assert!(labels[i + 1..].iter().all(|b| b != a));
        }
    }
}
