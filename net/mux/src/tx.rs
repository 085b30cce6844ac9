//! The transmit path: the clients' `tx_active` → gathered private copy →
//! transmit validation → a `tx_payload` slot on the driver's `tx_active`.

use filter::{TxHeaders, TxPolicy, TxRefused};
use net_protocol::{
    split_tx_offset, tx_offset, Step, TxFrame, TxWindow, MAX_FRAME_LEN, MIN_FRAME_LEN,
};
use shared_queue::{BufferDesc, QueueError};

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
    /// A segment in the client's [`TxWindow::Payload`], which the
    /// demultiplexer does not map (yet).
    PayloadWindow,
}

impl TxDrop {
    /// How many counters [`TxDrop::index`] numbers.
    pub const COUNT: usize = TxRefused::COUNT + 4;

    /// A counter index: [`TxRefused::index`] for refusals, then the others.
    pub const fn index(self) -> usize {
        match self {
            TxDrop::Refused(reason) => reason.index(),
            TxDrop::BadDescriptor => TxRefused::COUNT,
            TxDrop::TooManySegments => TxRefused::COUNT + 1,
            TxDrop::BadLength => TxRefused::COUNT + 2,
            TxDrop::PayloadWindow => TxRefused::COUNT + 3,
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
        ];
        if index < NAMES.len() {
            NAMES[index]
        } else {
            "?"
        }
    }
}

impl<M: SharedMemory> Mux<'_, M> {
    /// Takes the clients' frames, in rounds of at most [`TX_BATCH`] each,
    /// while there are free slots. Returns whether it stopped for want of a
    /// slot (the driver has them all).
    pub(crate) fn transmit(&mut self) -> bool {
        loop {
            let mut progress = false;
            for n in 0..self.client_count {
                for _ in 0..TX_BATCH {
                    if self.driver.free_count == 0 {
                        return true;
                    }
                    let Some(Some(client)) = self.clients.get_mut(n) else { break };
                    let Some(frame) = client.next_frame() else { break };
                    self.send(n, &frame);
                    progress = true;
                }
            }
            if !progress {
                return false;
            }
        }
    }

    /// Copies, checks and sends (or refuses) client `n`'s `frame`, then
    /// hands its descriptors back to the client.
    fn send(&mut self, n: usize, frame: &TxFrame) {
        let Mux { clients, driver, table, frame: copy, node, mac, .. } = self;
        let Some(Some(client)) = clients.get_mut(n) else { return };
        let verdict = client.gather(frame, copy).and_then(|len| {
            // Check a copy, send the copy: `copy` is private, and the
            // headers checked are its first bytes.
            let headers = TxHeaders::<TX_HEADER_COPY>::copy_from(&copy[..len]);
            let mut policy = TxPolicy::new(client.owner, *mac, core::slice::from_ref(&node.ipv4));
            if client.config.unclaimed_ipv4 {
                policy = policy.answering_unclaimed();
            }
            policy.check(table, &headers).map_err(TxDrop::Refused)?;
            Ok(len)
        });
        match verdict {
            Ok(len) => {
                if driver.submit(&copy[..len]) {
                    client.counters.tx_allowed += 1;
                }
            }
            Err(reason) => client.counters.tx_refused[reason.index()] += 1,
        }
        client.give_back(frame.descs());
    }

    /// Frees the slots whose frames the driver has sent.
    pub(crate) fn reclaim_slots(&mut self) {
        let driver = &mut self.driver;
        loop {
            match driver.port.tx.free.dequeue() {
                Ok(Some(desc)) => {
                    driver.release(desc);
                    driver.reclaimed = true;
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
    /// Writes `frame` into a free slot of `tx_payload` and queues it on the
    /// driver's `tx_active`; `false` if that failed (counted).
    fn submit(&mut self, frame: &[u8]) -> bool {
        let Some(free_count) = self.free_count.checked_sub(1) else {
            self.counters.errors += 1;
            return false;
        };
        let slot = usize::from(self.free_slots[free_count]);
        let offset = slot * TX_SLOT_SIZE;
        let desc = BufferDesc {
            offset: tx_offset(TxWindow::Payload, offset as u32),
            len: frame.len() as u32,
            cookie: slot as u32,
        };
        // A slot per frame in flight, and tx_active holds them all: the
        // enqueue fails only on corrupt indices.
        if !self.port.tx_payload.write(offset, frame) || self.port.tx.active.enqueue(desc).is_err() {
            self.counters.errors += 1;
            return false;
        }
        self.free_count = free_count;
        self.in_flight[slot / 64] |= 1 << (slot % 64);
        self.produced = true;
        self.counters.tx_frames += 1;
        true
    }

    /// Takes back the slot of a descriptor the driver returned, if it is
    /// one we handed over.
    fn release(&mut self, desc: BufferDesc) {
        let slot = desc.cookie as usize;
        let ours = slot < TX_SLOTS
            && self.in_flight[slot / 64] & (1 << (slot % 64)) != 0
            && desc.offset == tx_offset(TxWindow::Payload, (slot * TX_SLOT_SIZE) as u32);
        if !ours {
            self.counters.errors += 1;
            return;
        }
        self.in_flight[slot / 64] &= !(1 << (slot % 64));
        self.free_slots[self.free_count] = slot as u16;
        self.free_count += 1;
    }
}

impl<M: SharedMemory> Client<'_, M> {
    /// Whether a descriptor may be taken from `tx_active`: `tx_free` has
    /// room for it and for the pending descriptors of its frame, which all
    /// go back together (or, while discarding, for it alone).
    pub(crate) fn can_take_tx(&self) -> bool {
        matches!(self.port.tx.free.room(), Ok(room) if room > self.assembler.held())
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

    /// Copies the frame's segments, each checked against its window, into
    /// `copy`; returns the frame's length.
    fn gather(&self, frame: &TxFrame, copy: &mut [u8; MAX_FRAME_LEN]) -> Result<usize, TxDrop> {
        if frame.too_many {
            return Err(TxDrop::TooManySegments);
        }
        if frame.out_of_bounds {
            return Err(TxDrop::BadDescriptor);
        }
        let mut len = 0;
        for desc in frame.descs() {
            let (window, offset) = split_tx_offset(desc.offset).ok_or(TxDrop::BadDescriptor)?;
            let region = match window {
                TxWindow::Headers => &self.port.tx_data,
                TxWindow::Rx => &self.port.rx_data,
                TxWindow::Payload => return Err(TxDrop::PayloadWindow),
            };
            let segment = desc.len as usize;
            if segment == 0 {
                return Err(TxDrop::BadDescriptor);
            }
            let end = len + segment;
            if end > MAX_FRAME_LEN {
                return Err(TxDrop::BadLength);
            }
            // The region checks the segment against the window's size.
            if !region.read(offset as usize, &mut copy[len..end]) {
                return Err(TxDrop::BadDescriptor);
            }
            len = end;
        }
        if len < MIN_FRAME_LEN {
            return Err(TxDrop::BadLength);
        }
        Ok(len)
    }

    /// Returns transmit descriptors on `tx_free`.
    fn give_back(&mut self, descs: &[BufferDesc]) {
        // `can_take_tx` kept room for them; only corrupt indices fail.
        if !matches!(self.port.tx.free.enqueue_batch(descs), Ok(n) if n == descs.len()) {
            self.counters.queue_errors += 1;
        }
        self.produced = true;
    }
}
