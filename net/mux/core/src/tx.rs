//! The transmit path: the clients' `tx_active` → gathered private copy of
//! the copied pieces → transmit validation → one `tx_payload` slot, and
//! the in-place pieces passed through, on the driver's `tx_active`.

use lib_net_protocol::{
    split_tx_offset, tx_offset, Step, TxFrame, TxOffload, TxWindow, MAX_FRAME_LEN, MAX_TSO_FRAME_LEN, MAX_TX_SEGMENTS,
    MIN_FRAME_LEN, TX_MORE,
};
use lib_queue::{BufferDesc, QueueError};
use net_filter::{TxHeaders, TxPolicy, TxRefused};
use net_packet::{ethernet, udp, EtherType, EthernetFrame, IpProtocol, Ipv4Packet, TcpSegment};

use crate::{Client, Driver, Mux, SharedMemory, TX_BATCH, TX_HEADER_COPY, TX_SLOTS, TX_SLOT_SIZE};

/// Why a client's frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxDrop {
    /// Transmit validation refused the copy.
    Refused(TxRefused),
    /// A descriptor outside the transmit address space or its window, or
    /// of length 0.
    BadDescriptor,
    /// More than [`MAX_TX_SEGMENTS`] descriptors.
    TooManySegments,
    /// The frame is shorter than [`MIN_FRAME_LEN`] or longer than
    /// [`MAX_FRAME_LEN`].
    BadLength,
    /// A segment in the client's [`TxWindow::Payload`]: a client has no
    /// such region behind the demultiplexer (it sends from its own memory
    /// with [`TxWindow::Files`]).
    PayloadWindow,
    /// A segment in [`TxWindow::Files`] from a client the description
    /// gives no `send_from` region.
    InPlaceNotGranted,
    /// A segment in [`TxWindow::Files`] that does not lie inside the
    /// client's `send_from` region.
    InPlaceOutOfBounds,
    /// A frame with in-place segments whose copied bytes before the first
    /// of them do not hold the whole of the headers transmit validation
    /// checks (Ethernet, IPv4 with its options, and the TCP header by its
    /// data offset or the UDP header), or that is not TCP or UDP over
    /// IPv4: headers left in the client's memory could change after the
    /// check.
    InPlaceHeaders,
    /// A frame asks for an offload (checksum, TSO) the driver does not
    /// have.
    OffloadUnavailable,
    /// From a client with an answer policy, a frame its own filters do not
    /// cover that answers no frame it received (no live ticket; see
    /// `answers`).
    NotAnAnswer,
    /// An answer over the client's answer rate.
    AnswerRateLimited,
    /// A frame's offload request does not fit it: an offload descriptor
    /// not first or malformed; not TCP or UDP over IPv4 with the whole
    /// headers copied; `csum_start`, `csum_offset` or `hdr_len` other than
    /// its headers say; TSO not on TCP, or with packets (headers and MSS)
    /// larger than [`MAX_FRAME_LEN`].
    OffloadMismatch,
}

impl TxDrop {
    /// How many counters [`TxDrop::index`] numbers.
    pub const COUNT: usize = TxRefused::COUNT + 11;

    /// A counter index: [`TxRefused::index`] for refusals, then the others.
    pub const fn index(self) -> usize {
        match self {
            TxDrop::Refused(reason) => reason.index(),
            TxDrop::BadDescriptor => TxRefused::COUNT,
            TxDrop::TooManySegments => TxRefused::COUNT + 1,
            TxDrop::BadLength => TxRefused::COUNT + 2,
            TxDrop::PayloadWindow => TxRefused::COUNT + 3,
            TxDrop::InPlaceNotGranted => TxRefused::COUNT + 4,
            TxDrop::InPlaceOutOfBounds => TxRefused::COUNT + 5,
            TxDrop::InPlaceHeaders => TxRefused::COUNT + 6,
            TxDrop::OffloadUnavailable => TxRefused::COUNT + 7,
            TxDrop::OffloadMismatch => TxRefused::COUNT + 8,
            TxDrop::NotAnAnswer => TxRefused::COUNT + 9,
            TxDrop::AnswerRateLimited => TxRefused::COUNT + 10,
        }
    }

    /// The name of counter `index`, for logs.
    pub const fn name_of(index: usize) -> &'static str {
        const NAMES: [&str; TxDrop::COUNT] = [
            "malformed",
            "forged-source-mac",
            "forged-source-ip",
            "forged-arp-sender",
            "protocol-not-owned",
            "endpoint-not-owned",
            "bad-descriptor",
            "too-many-segments",
            "bad-length",
            "payload-window",
            "in-place-not-granted",
            "in-place-out-of-bounds",
            "in-place-headers",
            "offload-unavailable",
            "offload-mismatch",
            "not-an-answer",
            "answer-rate-limited",
        ];
        if index < NAMES.len() {
            NAMES[index]
        } else {
            "?"
        }
    }
}

/// One piece of an outgoing frame, in frame order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Piece {
    /// `len` bytes at `at` of the private copy, and so of the slot.
    Copied { at: usize, len: usize },
    /// The client's descriptor in [`TxWindow::Files`], passed through to
    /// the driver with its offset and length unchanged.
    InPlace(BufferDesc),
    #[default]
    None,
}

/// A client's frame, gathered: the copied pieces are consecutive in the
/// private copy; consecutive copied segments make one piece.
#[derive(Clone, Copy, Debug)]
struct Gathered {
    pieces: [Piece; MAX_TX_SEGMENTS],
    count: usize,
    /// Bytes in the private copy.
    copied: usize,
    /// Bytes passed through from the client's `send_from` region.
    in_place: usize,
    /// Copied bytes before the first in-place piece (all of them if none):
    /// the only bytes transmit validation may look at.
    checked: usize,
    /// What the frame's offload descriptor asked, if it had one.
    offload: Option<TxOffload>,
}

impl Gathered {
    fn pieces(&self) -> &[Piece] {
        &self.pieces[..self.count]
    }
}

/// The offload request that fits the headers at the start of `bytes` with
/// the flags and MSS of `asked`: `csum_start` at the TCP or UDP header,
/// `csum_offset` at its checksum field, `hdr_len` the end of the headers.
/// `None` if `bytes` does not start with the whole headers of TCP or UDP
/// over IPv4, or `asked` is TSO on UDP or makes packets longer than
/// [`MAX_FRAME_LEN`].
fn offload_for(bytes: &[u8], asked: TxOffload) -> Option<TxOffload> {
    let hdr_len = headers_len(bytes).filter(|&len| len <= bytes.len())?;
    let ip = Ipv4Packet::parse_header(EthernetFrame::parse(bytes).ok()?.payload()).ok()?;
    let tcp = ip.protocol() == IpProtocol::TCP;
    let csum_start = u8::try_from(ethernet::HEADER_LEN + ip.header_len()).ok()?;
    let hdr_len = u8::try_from(hdr_len).ok()?;
    let fits = !asked.tso() || (tcp && hdr_len as usize + asked.mss as usize <= MAX_FRAME_LEN);
    let expected = if asked.tso() {
        TxOffload::tso4(csum_start, hdr_len, asked.mss)
    } else {
        TxOffload::checksum(csum_start, hdr_len, tcp)
    };
    fits.then_some(expected)
}

/// Whether one of `owner`'s exclusive filters admits the reverse of the
/// frame starting with `headers` (the traffic of its own, for which it needs
/// no ticket).
fn owns_reverse<const N: usize>(table: &net_filter::Table<N>, owner: net_filter::Owner, headers: &[u8]) -> bool {
    let Ok(parsed) = net_packet::classify_headers(headers) else { return false };
    let reply = parsed.reversed();
    let mut own = table.exclusive_filters_of(owner);
    own.any(|filter| filter.matches(&reply))
}

/// The length of the headers transmit validation reads in a frame with
/// in-place pieces: Ethernet, IPv4 (by its IHL), then the TCP header (by
/// its data offset, at least 20 bytes) or the UDP header. `None` if
/// `bytes` is not the start of TCP or UDP over IPv4, or ends before these
/// lengths can be read.
fn headers_len(bytes: &[u8]) -> Option<usize> {
    let ethernet = EthernetFrame::parse(bytes).ok()?;
    if ethernet.ethertype() != EtherType::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::parse_header(ethernet.payload()).ok()?;
    let transport = match ip.protocol() {
        IpProtocol::TCP => {
            let tcp = TcpSegment::parse_header(ip.payload()).ok()?;
            (tcp.data_offset() >= 5).then_some(tcp.header_len())?
        }
        IpProtocol::UDP => udp::HEADER_LEN,
        _ => return None,
    };
    Some(ethernet::HEADER_LEN + ip.header_len() + transport)
}

impl<M: SharedMemory> Mux<'_, M> {
    /// Takes the clients' frames, in rounds of at most [`TX_BATCH`] each,
    /// while the driver can take one more ([`Driver::can_submit`]).
    /// Returns whether it stopped because the driver could not (every slot
    /// in flight, or its `tx_active` too full).
    ///
    /// Round robin across wake-ups: a round starts with the client whose
    /// turn the driver cut short last time ([`Mux::tx_next`]), or the one
    /// after it if it had sent in that turn, never always with client 0, so
    /// that a client that always has frames waiting cannot take every slot
    /// the driver frees while the others wait.
    pub(crate) fn transmit(&mut self) -> bool {
        let count = self.client_count.max(1);
        loop {
            let mut progress = false;
            let first = self.tx_next % count;
            for n in (first..count).chain(0..first) {
                for sent in 0..TX_BATCH {
                    if !self.driver.can_submit() {
                        // Its turn was cut short: it goes first next time,
                        // unless it had sent already (then the next one).
                        self.tx_next = if sent == 0 { n } else { (n + 1) % count };
                        return true;
                    }
                    let Some(Some(client)) = self.clients.get_mut(n) else { break };
                    let Some(frame) = client.next_frame() else { break };
                    self.send(n, frame);
                    progress = true;
                }
            }
            if !progress {
                return false;
            }
        }
    }

    /// Copies, checks and sends (or refuses) client `n`'s `frame`. Its
    /// descriptors go back to the client at once, unless the frame went to
    /// the driver with in-place pieces: then they are held with its slot
    /// until the driver returns it, since the NIC reads the client's
    /// `send_from` bytes until then.
    fn send(&mut self, n: usize, frame: TxFrame) {
        let Mux { clients, driver, table, frame: copy, node, mac, offloads, answers, clock, .. } = self;
        let Some(Some(client)) = clients.get_mut(n) else { return };
        let verdict = client.gather(&frame, copy).and_then(|gathered| {
            // Check a copy, send the copy: `copy` is private, and the
            // headers checked are its first bytes, all before any byte the
            // client could still change.
            let checked = &copy[..gathered.checked];
            if gathered.in_place > 0 && headers_len(checked).is_none_or(|len| len > checked.len()) {
                return Err(TxDrop::InPlaceHeaders);
            }
            // An offload request must be one the driver can honour and
            // must say what the checked headers say: the driver and the
            // device trust its fields. The checksum field itself is not
            // looked at (it holds the pseudo-header sum, per virtio).
            if let Some(asked) = gathered.offload {
                if asked.needs() & !*offloads != 0 {
                    return Err(TxDrop::OffloadUnavailable);
                }
                if offload_for(checked, asked) != Some(asked) {
                    return Err(TxDrop::OffloadMismatch);
                }
            }
            let headers = TxHeaders::<TX_HEADER_COPY>::copy_from(checked);
            let mut policy = TxPolicy::new(client.owner, *mac, core::slice::from_ref(&node.ipv4));
            if client.config.unclaimed_ipv4 {
                policy = policy.answering_unclaimed();
            }
            policy.check(table, &headers).map_err(TxDrop::Refused)?;
            // Beyond its own filters' traffic, a client with an answer
            // policy sends only answers to frames it received.
            if client.config.answers.any() && !owns_reverse(table, client.owner, headers.as_bytes()) {
                if gathered.in_place > 0 {
                    return Err(TxDrop::NotAnAnswer);
                }
                answers.redeem(n, &client.config.answers, &copy[..gathered.copied], *clock)?;
            }
            Ok(gathered)
        });
        let gathered = match verdict {
            Ok(gathered) => gathered,
            Err(reason) => {
                client.counters.tx_refused[reason.index()] += 1;
                client.give_back(frame.descs());
                return;
            }
        };
        let Some(slot) = driver.submit(&copy[..gathered.copied], &gathered) else {
            client.give_back(frame.descs());
            return;
        };
        client.counters.tx_allowed += 1;
        if gathered.in_place == 0 {
            client.give_back(frame.descs());
            return;
        }
        client.counters.tx_in_place_bytes += gathered.in_place as u64;
        client.in_place_held += frame.descs().len();
        driver.held[slot] = Some((n as u8, frame));
    }

    /// Frees the slots whose frames the driver has sent, and gives the
    /// descriptors of in-place frames back to their clients.
    pub(crate) fn reclaim_slots(&mut self) {
        let Mux { driver, clients, .. } = self;
        loop {
            match driver.port.tx.free.dequeue() {
                Ok(Some(desc)) => {
                    driver.reclaimed = true;
                    let Some((n, frame)) = driver.release(desc) else { continue };
                    if let Some(Some(client)) = clients.get_mut(usize::from(n)) {
                        client.in_place_held -= frame.descs().len();
                        client.give_back(frame.descs());
                    }
                }
                Ok(None) => break,
                Err(QueueError::OutOfBounds(_)) => driver.counters.errors += 1,
                Err(_) => {
                    driver.counters.errors += 1;
                    break;
                }
            }
        }
    }
}

impl<M: SharedMemory> Driver<'_, M> {
    /// Whether a frame of the most pieces can go to the driver now: a free
    /// slot, and room on its `tx_active` for [`MAX_TX_SEGMENTS`]
    /// descriptors (a frame's are published together). Corrupt indices on
    /// that queue are counted, and leave the frames waiting.
    pub(crate) fn can_submit(&mut self) -> bool {
        if self.free_count == 0 {
            return false;
        }
        match self.port.tx.active.room() {
            Ok(room) => room >= MAX_TX_SEGMENTS,
            Err(_) => {
                self.counters.errors += 1;
                false
            }
        }
    }

    /// Writes the copied bytes into a free slot of `tx_payload` and queues
    /// the frame's pieces on the driver's `tx_active`, in frame order:
    /// slot sub-ranges (window [`TxWindow::Payload`]) and in-place pieces
    /// as the client gave them (window [`TxWindow::Files`]), each with the
    /// slot number as cookie, [`TX_MORE`] on all but the last. Returns the
    /// slot, or `None` if that failed (counted).
    fn submit(&mut self, copied: &[u8], frame: &Gathered) -> Option<usize> {
        let Some(free_count) = self.free_count.checked_sub(1) else {
            self.counters.errors += 1;
            return None;
        };
        let slot = usize::from(self.free_slots[free_count]);
        let base = slot * TX_SLOT_SIZE;
        let more = slot as u32 | TX_MORE;
        let mut descs = [BufferDesc::default(); MAX_TX_SEGMENTS];
        // The offload descriptor first, as checked; the pieces after it
        // (a client's frame with one has at most MAX_TX_SEGMENTS - 1 pieces).
        let first = usize::from(frame.offload.is_some());
        if let Some(offload) = frame.offload {
            descs[0] = offload.to_desc(more);
        }
        for (desc, piece) in descs[first..].iter_mut().zip(frame.pieces()) {
            *desc = match *piece {
                Piece::Copied { at, len } => BufferDesc {
                    offset: tx_offset(TxWindow::Payload, (base + at) as u32),
                    len: len as u32,
                    cookie: more,
                },
                Piece::InPlace(client) => BufferDesc { cookie: more, ..client },
                Piece::None => BufferDesc::default(),
            };
        }
        let descs = &mut descs[..first + frame.count];
        let last = descs.last_mut()?;
        last.cookie = slot as u32;
        // `can_submit` checked the room; the enqueue fails only on corrupt
        // indices. Room first: a frame is published whole or not at all.
        let room = matches!(self.port.tx.active.room(), Ok(room) if room >= descs.len());
        if !room
            || !self.port.tx_payload.write(base, copied)
            || self.port.tx.active.enqueue_batch(descs) != Ok(descs.len())
        {
            self.counters.errors += 1;
            return None;
        }
        self.free_count = free_count;
        self.in_flight[slot / 64] |= 1 << (slot % 64);
        self.produced = true;
        self.counters.tx_frames += 1;
        Some(slot)
    }

    /// Takes a descriptor the driver returned. One with [`TX_MORE`] must
    /// belong to a slot in flight (nothing to do yet); the last one of a
    /// frame frees its slot and yields the client frame held with it, if
    /// it had in-place pieces. Anything else is counted as an error.
    fn release(&mut self, desc: BufferDesc) -> Option<(u8, TxFrame)> {
        let slot = (desc.cookie & !TX_MORE) as usize;
        let in_flight = slot < TX_SLOTS && self.in_flight[slot / 64] & (1 << (slot % 64)) != 0;
        let slot_range = (slot * TX_SLOT_SIZE) as u64..((slot + 1) * TX_SLOT_SIZE) as u64;
        let ours = in_flight
            && match split_tx_offset(desc.offset) {
                Some((TxWindow::Payload, offset)) => slot_range.contains(&u64::from(offset)),
                Some((TxWindow::Files | TxWindow::Offload, _)) => true,
                _ => false,
            };
        if !ours {
            self.counters.errors += 1;
            return None;
        }
        if desc.cookie & TX_MORE != 0 {
            return None;
        }
        self.in_flight[slot / 64] &= !(1 << (slot % 64));
        self.free_slots[self.free_count] = slot as u16;
        self.free_count += 1;
        self.held[slot].take()
    }
}

impl<M: SharedMemory> Client<'_, M> {
    /// Whether a descriptor may be taken from `tx_active`: `tx_free` has
    /// room for it and for every descriptor of this client the
    /// demultiplexer holds (of its frame still arriving, and of its
    /// in-place frames at the driver), which all go back there.
    pub(crate) fn can_take_tx(&self) -> bool {
        matches!(self.port.tx.free.room(), Ok(room) if room > self.assembler.held() + self.in_place_held)
    }

    /// The next complete frame on `tx_active`, if any. The tail of a frame
    /// with too many descriptors is handed back as it arrives.
    fn next_frame(&mut self) -> Option<TxFrame> {
        // Bounded: each turn consumes one entry.
        while self.can_take_tx() {
            let (desc, out_of_bounds) = match self.port.tx.active.dequeue() {
                Ok(Some(desc)) => (desc, false),
                Ok(None) => return None,
                Err(QueueError::OutOfBounds(desc)) => (desc, true),
                Err(_) => {
                    self.counters.queue_errors += 1;
                    return None;
                }
            };
            match self.assembler.push(desc, out_of_bounds) {
                Step::Held => {}
                Step::Discard(desc) => self.give_back(&[desc]),
                Step::Frame(frame) => return Some(frame),
            }
        }
        None
    }

    /// Checks each of the frame's segments against its window, copies the
    /// segments in [`TxWindow::Headers`] and [`TxWindow::Rx`] into `copy`,
    /// one after the other, and lists the frame's pieces.
    fn gather(&self, frame: &TxFrame, copy: &mut [u8; MAX_FRAME_LEN]) -> Result<Gathered, TxDrop> {
        if frame.too_many {
            return Err(TxDrop::TooManySegments);
        }
        if frame.out_of_bounds {
            return Err(TxDrop::BadDescriptor);
        }
        let mut g = Gathered {
            pieces: [Piece::None; MAX_TX_SEGMENTS],
            count: 0,
            copied: 0,
            in_place: 0,
            checked: 0,
            offload: None,
        };
        let mut max_len = MAX_FRAME_LEN;
        for (i, desc) in frame.descs().iter().enumerate() {
            let (window, offset) = split_tx_offset(desc.offset).ok_or(TxDrop::BadDescriptor)?;
            if window == TxWindow::Offload {
                // First, and well formed; checked against the headers later.
                let offload = TxOffload::from_desc(desc).filter(|_| i == 0).ok_or(TxDrop::OffloadMismatch)?;
                if offload.tso() {
                    max_len = MAX_TSO_FRAME_LEN;
                }
                g.offload = Some(offload);
                continue;
            }
            let segment = desc.len as usize;
            if segment == 0 {
                return Err(TxDrop::BadDescriptor);
            }
            if g.copied + g.in_place + segment > max_len {
                return Err(TxDrop::BadLength);
            }
            let region = match window {
                TxWindow::Headers => &self.port.tx_data,
                TxWindow::Rx => &self.port.rx_data,
                TxWindow::Payload => return Err(TxDrop::PayloadWindow),
                // Taken above.
                TxWindow::Offload => return Err(TxDrop::OffloadMismatch),
                TxWindow::Files => {
                    if !self.config.sends_in_place() {
                        return Err(TxDrop::InPlaceNotGranted);
                    }
                    if u64::from(offset) + desc.len as u64 > self.config.send_from_size {
                        return Err(TxDrop::InPlaceOutOfBounds);
                    }
                    g.pieces[g.count] = Piece::InPlace(*desc);
                    g.count += 1;
                    g.in_place += segment;
                    continue;
                }
            };
            let (at, end) = (g.copied, g.copied + segment);
            // The copied bytes of any frame, TSO or not, fit the private copy.
            if end > MAX_FRAME_LEN {
                return Err(TxDrop::BadLength);
            }
            // The region checks the segment against the window's size.
            if !region.read(offset as usize, &mut copy[at..end]) {
                return Err(TxDrop::BadDescriptor);
            }
            g.copied = end;
            if g.in_place == 0 {
                g.checked = end;
            }
            match g.count.checked_sub(1).map(|i| &mut g.pieces[i]) {
                // Right after the last copied bytes, in the slot as in the frame.
                Some(Piece::Copied { len, .. }) => *len += segment,
                _ => {
                    g.pieces[g.count] = Piece::Copied { at, len: segment };
                    g.count += 1;
                }
            }
        }
        if g.copied + g.in_place < MIN_FRAME_LEN {
            return Err(TxDrop::BadLength);
        }
        Ok(g)
    }

    /// Returns transmit descriptors on `tx_free`.
    pub(crate) fn give_back(&mut self, descs: &[BufferDesc]) {
        // `can_take_tx` kept room for them; only corrupt indices fail.
        if !matches!(self.port.tx.free.enqueue_batch(descs), Ok(n) if n == descs.len()) {
            self.counters.queue_errors += 1;
        }
        self.produced = true;
    }
}

#[cfg(test)]
mod tests {
    use super::headers_len;

    /// Ethernet, IPv4 with `ihl` words, `protocol`, then `transport`.
    fn frame(ihl: u8, protocol: u8, transport: &[u8]) -> std::vec::Vec<u8> {
        let mut f = std::vec![0u8; 14 + 4 * usize::from(ihl)];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x40 | ihl;
        f[16..18].copy_from_slice(&1500u16.to_be_bytes());
        f[14 + 9] = protocol;
        f.extend_from_slice(transport);
        f
    }

    #[test]
    fn headers_are_delimited_by_ihl_and_data_offset() {
        let mut tcp = [0u8; 60];
        tcp[12] = 5 << 4;
        assert_eq!(headers_len(&frame(5, 6, &tcp)), Some(14 + 20 + 20));
        tcp[12] = 8 << 4;
        assert_eq!(headers_len(&frame(5, 6, &tcp)), Some(14 + 20 + 32));
        assert_eq!(headers_len(&frame(6, 6, &tcp)), Some(14 + 24 + 32));
        assert_eq!(headers_len(&frame(5, 17, &[0; 8])), Some(14 + 20 + 8));
        // A data offset below 5 delimits nothing.
        tcp[12] = 4 << 4;
        assert_eq!(headers_len(&frame(5, 6, &tcp)), None);
        // Not TCP or UDP, not IPv4, or too short to tell.
        assert_eq!(headers_len(&frame(5, 1, &[0; 8])), None);
        let mut arp = frame(5, 17, &[0; 8]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(headers_len(&arp), None);
        assert_eq!(headers_len(&frame(5, 6, &[0; 10])), None);
        assert_eq!(headers_len(&frame(5, 17, &[0; 8])[..30]), None);
        assert_eq!(headers_len(&[]), None);
    }
}
