//! A client's queues and buffers, checked.
//!
//! # Receive
//!
//! At start the client lends every buffer of `rx_data` on `rx_free`. Each
//! frame on `rx_active` must name the start of a buffer (a multiple of
//! [`RX_BUFFER_SIZE`]) with a length in
//! [`MIN_FRAME_LEN`]`..=`[`MAX_FRAME_LEN`]; its bytes are copied into the
//! PD's own memory (the daemons parse a private copy, never the shared
//! buffer) and the buffer goes straight back on `rx_free`. A descriptor that
//! names no buffer is counted and dropped (returning it could hand the
//! demultiplexer a buffer twice); one with a bad length is counted and its
//! buffer returned.
//!
//! # Transmit
//!
//! `tx_data` holds [`TX_BUFFERS`] slots of [`RX_BUFFER_SIZE`] bytes. A frame
//! is copied into a free slot and sent as one descriptor on `tx_active`:
//! offset `tx_offset(TxWindow::Headers, slot × 2048)` (the client's
//! `tx_data` is its headers window), the frame's length, cookie = slot.
//! Descriptors come back on `tx_free`; one that names no slot in flight is
//! counted and ignored.
//!
//! The daemons send little and never wait to send: when no slot is free the
//! frame is dropped and counted. So they never ask for a `tx_free` signal;
//! they take back returned slots before each send.
//!
//! # Signalling
//!
//! Per `net-protocol`: the client asks for a signal on `rx_active` before
//! it waits ([`ClientQueues::ready_to_wait`]) and notifies the
//! demultiplexer only when it asked, on `tx_active` or `rx_free`
//! ([`ClientQueues::should_notify_mux`]).

use net_config::{ClientRegion, TX_BUFFERS, TX_DATA_SIZE};
use net_protocol::{
    split_tx_offset, tx_offset, TxWindow, MAX_FRAME_LEN, MIN_FRAME_LEN, RX_BUFFERS, RX_BUFFER_SIZE, RX_DATA_SIZE,
    RX_QUEUE_CAPACITY, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use shared_queue::{BufferDesc, QueueError, ReceiverQueues, SenderQueues};

use crate::TxSlots;

/// Byte access to a data region another PD shares (`rx_data`,
/// `tx_data`): bounds-checked copies, never a Rust reference into it.
pub trait DataRegion {
    /// Copies `dst.len()` bytes from `offset`; `false` if out of bounds.
    fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool;
    /// Copies `src` to `offset`; `false` if out of bounds.
    fn copy_in(&self, offset: usize, src: &[u8]) -> bool;
}

#[cfg(feature = "microkit")]
impl DataRegion for microkit::MemoryRegion {
    fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        microkit::MemoryRegion::copy_out(self, offset, dst)
    }
    fn copy_in(&self, offset: usize, src: &[u8]) -> bool {
        microkit::MemoryRegion::copy_in(self, offset, src)
    }
}

/// Counters of the client's side of the queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Frames received and copied out.
    pub rx_frames: u64,
    /// Receive descriptors refused: outside `rx_data`, not at a buffer's
    /// start, or with a length no frame has.
    pub rx_bad_descriptors: u64,
    /// Frames handed to the demultiplexer.
    pub tx_frames: u64,
    /// Frames dropped: no transmit slot free, or not a frame's length.
    pub tx_dropped: u64,
    /// Descriptors on `tx_free` that name no slot in flight.
    pub tx_bad_returns: u64,
    /// Queue operations that found corrupt indices (the demultiplexer wrote
    /// nonsense), or a full queue that cannot be full.
    pub queue_errors: u64,
}

impl core::fmt::Display for IoCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "rx_frames={} rx_bad_descriptors={} tx_frames={} tx_dropped={} tx_bad_returns={} queue_errors={}",
            self.rx_frames, self.rx_bad_descriptors, self.tx_frames, self.tx_dropped, self.tx_bad_returns, self.queue_errors
        )
    }
}

/// Where the six client regions are mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regions {
    pub rx_data: usize,
    pub tx_data: usize,
    pub rx_free: usize,
    pub rx_active: usize,
    pub tx_free: usize,
    pub tx_active: usize,
}

impl Regions {
    /// The addresses the builder maps every client's regions at.
    pub const fn client() -> Regions {
        Regions {
            rx_data: ClientRegion::RxData.client_vaddr() as usize,
            tx_data: ClientRegion::TxData.client_vaddr() as usize,
            rx_free: ClientRegion::RxFree.client_vaddr() as usize,
            rx_active: ClientRegion::RxActive.client_vaddr() as usize,
            tx_free: ClientRegion::TxFree.client_vaddr() as usize,
            tx_active: ClientRegion::TxActive.client_vaddr() as usize,
        }
    }
}

/// A frame taken off `rx_active`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The frame's length.
    pub len: usize,
    /// Bytes copied into the caller's buffer: `min(len, buffer length)`.
    pub copied: usize,
}

/// The client's end of its queues with the demultiplexer; `R` reads and
/// writes the data regions.
pub struct ClientQueues<R> {
    rx: ReceiverQueues<'static, RX_QUEUE_CAPACITY>,
    tx: SenderQueues<'static, TX_QUEUE_CAPACITY>,
    rx_data: R,
    tx_data: R,
    slots: TxSlots,
    counters: IoCounters,
}

#[cfg(feature = "microkit")]
impl ClientQueues<microkit::MemoryRegion> {
    /// The queues at [`Regions::client`], where the system builder maps
    /// them in every client of the demultiplexer.
    ///
    /// # Safety
    ///
    /// As for [`ClientQueues::new`] with those addresses: the PD must be a
    /// client in the description's `<network>`.
    pub unsafe fn at_client_addresses() -> Self {
        let regions = Regions::client();
        // SAFETY: forwarded to the caller, who guarantees the data regions
        // are mapped at these addresses with these sizes.
        unsafe {
            Self::new(
                regions,
                microkit::MemoryRegion::new(regions.rx_data, RX_DATA_SIZE),
                microkit::MemoryRegion::new(regions.tx_data, TX_DATA_SIZE as usize),
            )
        }
    }
}

impl<R: DataRegion> ClientQueues<R> {
    /// The queues in the regions at `regions`, whose data regions `rx_data`
    /// and `tx_data` access.
    ///
    /// # Safety
    ///
    /// For the rest of the program, each queue address in `regions` must be
    /// mapped read-write with the size of its `net_config::ClientRegion`,
    /// page-aligned, and be touched in this address space only through the
    /// returned value. The demultiplexer may write them at any time.
    pub unsafe fn new(regions: Regions, rx_data: R, tx_data: R) -> Self {
        // SAFETY: the caller's contract; queue regions are distinct and of
        // their region sizes, which hold the queues (net-config tests).
        unsafe {
            ClientQueues {
                rx: ReceiverQueues::new(regions.rx_free as *mut u8, regions.rx_active as *mut u8, RX_DATA_SIZE),
                tx: SenderQueues::new(regions.tx_free as *mut u8, regions.tx_active as *mut u8, TX_SPACE_LEN),
                rx_data,
                tx_data,
                slots: TxSlots::new(),
                counters: IoCounters::default(),
            }
        }
    }

    pub fn counters(&self) -> &IoCounters {
        &self.counters
    }

    /// Lends every receive buffer to the demultiplexer (once, at start).
    pub fn lend_receive_buffers(&mut self) {
        for i in 0..RX_BUFFERS {
            self.return_buffer((i * RX_BUFFER_SIZE) as u64);
        }
    }

    /// Takes the next frame off `rx_active`, copies its first bytes into
    /// `buf`, and returns its buffer. `None` when no frame is waiting (or
    /// the queue is corrupt, which is counted).
    pub fn receive(&mut self, buf: &mut [u8]) -> Option<Received> {
        loop {
            let desc = match self.rx.active.dequeue() {
                Ok(Some(desc)) => desc,
                Ok(None) => return None,
                Err(QueueError::OutOfBounds(_)) => {
                    self.counters.rx_bad_descriptors += 1;
                    continue;
                }
                Err(_) => {
                    self.counters.queue_errors += 1;
                    return None;
                }
            };
            if !desc.offset.is_multiple_of(RX_BUFFER_SIZE as u64) {
                self.counters.rx_bad_descriptors += 1;
                continue;
            }
            let len = desc.len as usize;
            if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
                self.counters.rx_bad_descriptors += 1;
                self.return_buffer(desc.offset);
                continue;
            }
            let copied = len.min(buf.len());
            // In bounds: the queue checked offset + len against rx_data.
            let ok = self.rx_data.copy_out(desc.offset as usize, &mut buf[..copied]);
            self.return_buffer(desc.offset);
            if !ok {
                self.counters.rx_bad_descriptors += 1;
                continue;
            }
            self.counters.rx_frames += 1;
            return Some(Received { len, copied });
        }
    }

    /// Sends `frame` (copied into a transmit slot); `false` if it was
    /// dropped (counted).
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame.len()) {
            self.counters.tx_dropped += 1;
            return false;
        }
        self.reclaim();
        let Some(slot) = self.slots.alloc() else {
            self.counters.tx_dropped += 1;
            return false;
        };
        let offset = slot * RX_BUFFER_SIZE;
        if !self.tx_data.copy_in(offset, frame) {
            // A slot lies within tx_data; only a short region gets here.
            self.slots.release(slot);
            self.counters.tx_dropped += 1;
            return false;
        }
        let desc = BufferDesc {
            offset: tx_offset(TxWindow::Headers, offset as u32),
            len: frame.len() as u32,
            cookie: slot as u32,
        };
        match self.tx.active.enqueue(desc) {
            Ok(()) => {
                self.counters.tx_frames += 1;
                true
            }
            Err(_) => {
                // At most TX_BUFFERS descriptors are ever queued, far below
                // the capacity: the demultiplexer corrupted the indices.
                self.slots.release(slot);
                self.counters.queue_errors += 1;
                self.counters.tx_dropped += 1;
                false
            }
        }
    }

    /// Takes back the slots of sent frames.
    pub fn reclaim(&mut self) {
        loop {
            let desc = match self.tx.free.dequeue() {
                Ok(Some(desc)) => desc,
                Ok(None) => return,
                Err(QueueError::OutOfBounds(_)) => {
                    self.counters.tx_bad_returns += 1;
                    continue;
                }
                Err(_) => {
                    self.counters.queue_errors += 1;
                    return;
                }
            };
            let slot = match split_tx_offset(desc.offset) {
                Some((TxWindow::Headers, offset)) if (offset as usize).is_multiple_of(RX_BUFFER_SIZE) => {
                    offset as usize / RX_BUFFER_SIZE
                }
                _ => TX_BUFFERS,
            };
            if !self.slots.release(slot) {
                self.counters.tx_bad_returns += 1;
            }
        }
    }

    /// Frames sent whose slots have not come back.
    pub fn in_flight(&self) -> usize {
        self.slots.in_flight()
    }

    /// Whether the demultiplexer asked to be notified of new frames on
    /// `tx_active` or buffers on `rx_free` (each request is cleared when
    /// reported): if so the caller notifies it.
    pub fn should_notify_mux(&self) -> bool {
        // Both are evaluated: each clears its own request.
        self.tx.active.should_signal() | self.rx.free.should_signal()
    }

    /// Asks for a notification on `rx_active` if it is empty: `true` if the
    /// PD may wait, `false` if frames arrived meanwhile (receive them). A
    /// corrupt queue counts and lets the PD wait, rather than spin.
    pub fn ready_to_wait(&mut self) -> bool {
        match self.rx.active.request_signal_if_empty() {
            Ok(empty) => empty,
            Err(_) => {
                self.counters.queue_errors += 1;
                true
            }
        }
    }

    fn return_buffer(&mut self, offset: u64) {
        let desc = BufferDesc { offset, len: RX_BUFFER_SIZE as u32, cookie: 0 };
        // rx_free holds every buffer: Full or Corrupt means the
        // demultiplexer wrote bogus indices.
        if self.rx.free.enqueue(desc).is_err() {
            self.counters.queue_errors += 1;
        }
    }
}

#[cfg(test)]
mod tests;
