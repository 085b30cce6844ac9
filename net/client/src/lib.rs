//! A network PD's end of the packet demultiplexer, for PDs that handle
//! small frames one at a time (arpd, the stray-packet daemon, test PDs).
//!
//! [`NetClient::new`] attaches to the demultiplexer (`Mux::attach`, which
//! gives a restarted PD a clean slate and tells the node's MAC), finds
//! the regions and queues at the addresses the builder maps them
//! ([`net_config::ClientRegion::client_vaddr`]), reads the configuration
//! the builder wrote ([`net_config::CONFIG_SYMBOL`]) and lends every
//! receive buffer to the demultiplexer. Then:
//!
//! - [`NetClient::poll`] hands each received frame to a closure as a copy on
//!   the stack (the receive buffer goes back at once), sends what the
//!   closure queued, reclaims sent buffers, and arms the signal requests
//!   following the `shared-queue` protocol, so the PD may wait afterwards
//!   without losing a wake-up. Call it from `init` and from `notified`.
//! - [`NetClient::send`] copies a frame into a transmit buffer and queues it.
//! - For a PD that moves bulk data (the web server's TCP/IP stack):
//!   [`NetClient::recv`] takes one frame, [`NetClient::send_with`] writes
//!   one straight into a transmit buffer, and [`NetClient::ready_to_wait`]
//!   arms the signal requests before the PD waits.
//! - For a PD the description lets send in place (`<client
//!   send_from="...">`, `net_config`): [`NetClient::send_gather`] is
//!   `send_with` where ranges of the frame ([`InPlace`]) are sent from
//!   the `send_from` region instead of the buffer, read by the NIC where
//!   they are. Those bytes must not change until the frame is back:
//!   [`NetClient::tx_in_flight`] and [`NetClient::take_tx_returned`] say
//!   which transmit buffers are out, and which came back.
//! - [`NetClient::install`], [`NetClient::remove`], [`NetClient::stats`]
//!   are the demultiplexer's protected calls, made through [`MUX`]
//!   (`net_mux_api::Mux`, which defines them).
//!
//! Frames are copied once more than strictly needed (shared buffer to
//! stack), which these PDs can afford: the copy is what they parse, so the
//! demultiplexer's later writes to a reused buffer cannot change it
//! mid-parse. A server that moves bulk data copies each received frame
//! once, into its own buffer (`recv`), and writes frames in place
//! (`send_with`).
//!
//! What a daemon also needs, host-tested:
//!
//! - [`TxSlots`]: which transmit buffers are in flight, and which came
//!   back;
//! - [`InPlace`] and [`InPlaceList`]: the in-place ranges of a frame, and
//!   the gather list they make (checked);
//! - [`Alarm`]: one pending timeout at the timer (a `drivers_timer_api::Timer`) for
//!   the daemon's earliest deadline;
//! - [`ChangeReport`]: counters logged at most every [`REPORT_PERIOD_NS`],
//!   and only when they changed;
//! - [`Colons`]: a MAC as `52:54:00:12:34:56` in logs.
#![no_std]

#[cfg(test)]
extern crate std;

mod gather;
mod schedule;
mod slots;

pub use lib_net_protocol::{InPlace, InPlaceList, MAX_FRAME_DESCS, MAX_IN_PLACE};
pub use lib_net_protocol::{TxOffload, OFFLOAD_RX_CSUM, OFFLOAD_TSO4, OFFLOAD_TX_CSUM};
pub use schedule::{Alarm, AlarmAction, ChangeReport, REPORT_PERIOD_NS};
pub use slots::TxSlots;

impl Alarm {
    /// Plans for the daemon's earliest `deadline` at `now` ([`Alarm::plan`])
    /// and asks `timer` for it; if the timer refuses, nothing is pending
    /// any more ([`Alarm::failed`]) and the error is returned for the
    /// caller to log.
    pub fn arm(
        &mut self,
        deadline: Option<u64>,
        now: u64,
        timer: drivers_timer_api::Timer,
    ) -> Result<(), drivers_timer_api::Error> {
        let result = match self.plan(deadline, now) {
            AlarmAction::Nothing => Ok(()),
            AlarmAction::Set(at) => timer.set_timeout(at),
            AlarmAction::Replace(at) => {
                timer.cancel_all();
                timer.set_timeout(at)
            }
        };
        if result.is_err() {
            self.failed();
        }
        result
    }
}

use lib_net_protocol::{
    CLIENT_RX_BUFFERS, CLIENT_RX_DATA_SIZE, CLIENT_RX_QUEUE_CAPACITY, RX_BUFFER_SIZE, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_queue::{BufferDesc, ReceiverQueues, SenderQueues};
use net_config::{ClientRegion, NetConfig, NodeAddress, CLIENT_MUX_CHANNEL, CONFIG_BYTES, TX_BUFFERS};
use net_filter::{Filter, FilterId, FilterKind};
use pds_runtime::{log, Channel, MemoryRegion};

pub use net_mux_api::{Mux, MuxError, MuxStats};

pub use lib_net_protocol::{MAX_FRAME_LEN, MAX_TSO_FRAME_LEN};

/// Nanoseconds in a second.
pub const SECOND_NS: u64 = 1_000_000_000;

/// A MAC as `52:54:00:12:34:56`, for logs.
pub struct Colons(pub [u8; 6]);

impl core::fmt::Display for Colons {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

pds_runtime::setvar_bytes!(__net_config, CONFIG_BYTES);

/// The demultiplexer, on the client's channel to it.
pub const MUX: Mux = Mux::new(Channel::new(CLIENT_MUX_CHANNEL));

/// Bytes of one transmit buffer.
const TX_BUFFER_SIZE: usize = lib_net_protocol::RX_BUFFER_SIZE;

/// Why a frame was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Longer than [`MAX_FRAME_LEN`] or shorter than an Ethernet header.
    BadLength,
    /// Every transmit buffer is in flight, or the queue to the
    /// demultiplexer has no room for a frame of the most descriptors
    /// ([`MAX_FRAME_DESCS`]): try again once some came back.
    NoBuffer,
    /// In-place ranges that are not at most [`MAX_IN_PLACE`], non-empty,
    /// sorted, disjoint, inside the frame and inside the `send_from`
    /// region (or the PD has none); or an offload request the driver
    /// cannot honour.
    BadLayout,
    /// The demultiplexer corrupted the queue indices.
    Queue,
}

/// Why the client could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    Config(net_config::ConfigError),
    /// The configuration is the demultiplexer's, not a client's.
    NotAClient,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Config(e) => write!(f, "{e}"),
            InitError::NotAClient => write!(f, "the network configuration names this PD as the demultiplexer"),
        }
    }
}

/// This PD's end of the demultiplexer.
pub struct NetClient {
    rx: ReceiverQueues<'static, CLIENT_RX_QUEUE_CAPACITY>,
    tx: SenderQueues<'static, TX_QUEUE_CAPACITY>,
    rx_data: MemoryRegion,
    tx_data: MemoryRegion,
    /// Transmit buffers in flight: a buffer the demultiplexer returns
    /// twice, or never had, is refused.
    tx_slots: TxSlots,
    /// The description's network configuration; `config.me` is this PD.
    pub config: NetConfig,
    /// The node's MAC, from the demultiplexer.
    pub mac: [u8; 6],
    /// The driver's offloads (`net-protocol` `OFFLOAD_*` bits), from the
    /// demultiplexer (`NodeInfo::offloads` of [`Mux::node`]).
    pub offloads: u64,
}

/// The address of client region `r` as a pointer.
fn region(r: ClientRegion) -> *mut u8 {
    r.client_vaddr() as usize as *mut u8
}

impl NetClient {
    /// Opens the queues, lends every receive buffer and learns the MAC.
    pub fn new() -> Result<Self, InitError> {
        let config = NetConfig::from_bytes(&__net_config.get()).map_err(InitError::Config)?;
        if config.me.is_none() {
            return Err(InitError::NotAClient);
        }
        // Attach first, before any queue handle reads the shared indices:
        // after a restart the demultiplexer empties the queues in this
        // call (`net-mux-api`, Attach; `lib-queue`, "Starting over").
        let node = MUX.attach();
        // SAFETY: the builder maps every client region at its
        // `client_vaddr` with its `size` for the PD's life (the `<network>`
        // expansion): the queues read-write, rx_data read-only and tx_data
        // read-write. This PD touches them only through these handles.
        let (rx, tx, rx_data, tx_data) = unsafe {
            (
                ReceiverQueues::new(region(ClientRegion::RxFree), region(ClientRegion::RxActive), CLIENT_RX_DATA_SIZE),
                SenderQueues::new(region(ClientRegion::TxFree), region(ClientRegion::TxActive), TX_SPACE_LEN),
                MemoryRegion::new(ClientRegion::RxData.client_vaddr() as usize, CLIENT_RX_DATA_SIZE),
                MemoryRegion::new(ClientRegion::TxData.client_vaddr() as usize, ClientRegion::TxData.size() as usize),
            )
        };
        let mut client =
            NetClient { rx, tx, rx_data, tx_data, tx_slots: TxSlots::new(), config, mac: [0; 6], offloads: 0 };
        for i in 0..CLIENT_RX_BUFFERS {
            client.return_rx_buffer((i * RX_BUFFER_SIZE) as u64);
        }
        MUX.channel().notify();
        match node {
            Ok(node) => {
                client.mac = node.mac;
                client.offloads = node.offloads;
            }
            Err(e) => log!("error: the demultiplexer refused the attach call: {e}"),
        }
        Ok(client)
    }

    /// The node's IPv4 configuration.
    pub fn node(&self) -> &NodeAddress {
        &self.config.node
    }

    /// This PD's name in the network configuration.
    pub fn my_index(&self) -> usize {
        usize::from(self.config.me.unwrap_or(0))
    }

    fn return_rx_buffer(&mut self, offset: u64) {
        let desc = BufferDesc { offset, len: RX_BUFFER_SIZE as u32, cookie: 0 };
        // rx_free holds every buffer, so it cannot be full unless corrupt.
        if let Err(e) = self.rx.free.enqueue(desc) {
            log!("error: rx_free: {e}");
        }
    }

    /// Takes back transmit buffers the demultiplexer is done with. A
    /// frame's descriptors carry its buffer's number as cookie: the last
    /// one (without [`TX_MORE`](lib_net_protocol::TX_MORE)) frees the buffer, which must be in
    /// flight; the others (pieces of the buffer, in-place ranges, the
    /// offload descriptor) need nothing (`gather::returned`). Anything
    /// else is logged.
    fn reclaim(&mut self) {
        loop {
            match self.tx.free.dequeue() {
                Ok(Some(desc)) => match gather::returned(&desc) {
                    Some((slot, true)) if self.tx_slots.release(slot) => {}
                    Some((_, false)) => {}
                    _ => log!("error: unexpected descriptor on tx_free: {desc:?}"),
                },
                Ok(None) => break,
                Err(e) => {
                    log!("error: tx_free: {e}");
                    break;
                }
            }
        }
    }

    /// Transmit buffers not in flight.
    pub fn free_tx_buffers(&mut self) -> usize {
        self.reclaim();
        TX_BUFFERS - self.tx_slots.in_flight()
    }

    /// The transmit buffers in flight: bit `i` set for buffer `i`, queued
    /// to the demultiplexer and not back yet (or being filled).
    pub fn tx_in_flight(&self) -> u64 {
        self.tx_slots.in_flight_mask()
    }

    /// The transmit buffers that came back since the last call (bit `i`:
    /// buffer `i`), after taking back what the demultiplexer returned.
    /// A buffer reported here is free, so every frame ever sent from it is
    /// done, in-place ranges included: the NIC no longer reads the bytes
    /// they named (see [`TxSlots`]). A buffer that came back and was used
    /// again before this call is reported once its new frame is back.
    pub fn take_tx_returned(&mut self) -> u64 {
        self.reclaim();
        self.tx_slots.take_returned()
    }

    /// Fills a transmit buffer in place and queues it: `fill` gets the
    /// buffer's first `len` bytes (their old contents unspecified) and
    /// returns whether to send them. The checks of [`send`](Self::send)
    /// apply: `len` must be a frame length, and a buffer must be free.
    /// `Ok(false)`: `fill` decided not to send and the buffer is free
    /// again. The demultiplexer is notified as for `send`.
    ///
    /// [`send_gather`](Self::send_gather) with no in-place range.
    pub fn send_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> bool) -> Result<bool, SendError> {
        self.send_gather(len, |buf| fill(buf).then(InPlaceList::new))
    }

    /// Like [`send_with`](Self::send_with), but `fill` may also return
    /// in-place ranges (sorted, non-overlapping, inside the frame and the
    /// `send_from` region, at most [`MAX_IN_PLACE`]): those bytes of the
    /// buffer are not sent; the region's are, read by the NIC where they
    /// are. `None` from `fill`: do not send (`Ok(false)`); an empty list:
    /// the whole frame from the buffer. A bad list is
    /// [`SendError::BadLayout`] (nothing sent, the buffer free again).
    ///
    /// The frame goes to the demultiplexer as one gather list (`net-protocol`,
    /// published together): the buffer's pieces between the ranges (window
    /// [`TxWindow::Headers`](lib_net_protocol::TxWindow::Headers), at their frame positions in the buffer) and
    /// the ranges (window [`TxWindow::Files`](lib_net_protocol::TxWindow::Files)), in frame order, each with
    /// the buffer's number as cookie and [`TX_MORE`](lib_net_protocol::TX_MORE) on all but the last.
    /// The demultiplexer checks the headers it copies out of the buffer, so
    /// the ranges must come after the whole TCP or UDP header. The region's
    /// bytes must not change until the buffer is reported back
    /// ([`take_tx_returned`](Self::take_tx_returned)).
    ///
    /// Needs a free buffer and room on `tx_active` for a frame of
    /// [`MAX_FRAME_DESCS`] descriptors ([`SendError::NoBuffer`]), checked
    /// before `fill` runs, so that a filled frame is never lost for want of
    /// room.
    pub fn send_gather(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>,
    ) -> Result<bool, SendError> {
        self.send_offloaded(len, None, fill)
    }

    /// [`send_gather`](Self::send_gather) with an offload request
    /// (`net-protocol`, "Offloads": e.g. `TxOffload::checksum`, the
    /// checksum field holding the pseudo-header sum), which the driver must
    /// have (the field [`offloads`](Self::offloads); else [`SendError::BadLayout`],
    /// nothing sent).
    ///
    /// With TSO (`TxOffload::tso4`) the frame may be up to
    /// [`MAX_TSO_FRAME_LEN`] bytes. The buffer still holds the frame's
    /// layout, but only its first [`MAX_FRAME_LEN`] bytes: `fill` gets
    /// those (the headers, which the demultiplexer copies and checks), and
    /// every byte of the frame beyond them must be in an in-place range
    /// (else [`SendError::BadLayout`]). A TSO frame is typically the
    /// headers and one range of a cached file.
    pub fn send_offloaded(
        &mut self,
        len: usize,
        offload: Option<TxOffload>,
        fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>,
    ) -> Result<bool, SendError> {
        let max = if offload.is_some_and(|o| o.tso()) { MAX_TSO_FRAME_LEN } else { MAX_FRAME_LEN };
        if !(lib_net_protocol::MIN_FRAME_LEN..=max).contains(&len) {
            return Err(SendError::BadLength);
        }
        if offload.is_some_and(|o| o.needs() & !self.offloads != 0) {
            return Err(SendError::BadLayout);
        }
        if self.tx_slots.in_flight() == TX_BUFFERS {
            self.reclaim();
        }
        // Only this PD adds to tx_active: the room found stays.
        if !matches!(self.tx.active.room(), Ok(room) if room > MAX_FRAME_DESCS) {
            return Err(SendError::NoBuffer);
        }
        let Some(slot) = self.tx_slots.alloc() else {
            return Err(SendError::NoBuffer);
        };
        let offset = slot * TX_BUFFER_SIZE;
        let buffered = len.min(MAX_FRAME_LEN);
        // SAFETY: `offset + buffered <= TX_DATA_SIZE` (slot < TX_BUFFERS,
        // buffered <= MAX_FRAME_LEN <= TX_BUFFER_SIZE), inside the read-write mapping of
        // tx_data (see `new`). The slot was free: no descriptor for it is
        // on tx_active, so the demultiplexer, which only reads a transmit
        // buffer after it is queued and until it comes back on tx_free,
        // does not touch these bytes while the slice lives, and this PD
        // holds no other reference to them. The slice ends before the
        // descriptors are published.
        let buf = unsafe { core::slice::from_raw_parts_mut((self.tx_data.base() + offset) as *mut u8, buffered) };
        let Some(in_place) = fill(buf) else {
            self.tx_slots.release(slot);
            return Ok(false);
        };
        let send_from_size = self.config.my_client().map_or(0, |c| c.send_from_size);
        let descs = match gather::frame_descs(slot, len, in_place.as_slice(), send_from_size) {
            Ok(descs) => match offload {
                Some(offload) => descs.with_offload(offload),
                None => descs,
            },
            Err(e) => {
                self.tx_slots.release(slot);
                return Err(e);
            }
        };
        let descs = descs.as_slice();
        if self.tx.active.enqueue_batch(descs) != Ok(descs.len()) {
            self.tx_slots.release(slot);
            return Err(SendError::Queue);
        }
        Ok(true)
    }

    /// Takes the next received frame: copies it into `frame` (the receive
    /// buffer goes back to the demultiplexer at once) and returns its
    /// length, or `None` if none is waiting. Descriptors that name no
    /// receive buffer are logged and skipped.
    pub fn recv(&mut self, frame: &mut [u8; MAX_FRAME_LEN]) -> Option<usize> {
        self.recv_checked(frame).map(|(len, _)| len)
    }

    /// [`recv`](Self::recv), and whether the frame's TCP/UDP checksum was
    /// verified before it got here (`RX_CSUM_VALID`: by the device, or
    /// completed by the demultiplexer), so need not be checked again.
    pub fn recv_checked(&mut self, frame: &mut [u8; MAX_FRAME_LEN]) -> Option<(usize, bool)> {
        loop {
            match self.rx.active.dequeue() {
                // Not a buffer's start: returning it (rounded) could lend
                // a buffer twice.
                Ok(Some(desc)) if !desc.offset.is_multiple_of(RX_BUFFER_SIZE as u64) => {
                    log!("error: rx_active: not a receive buffer: {desc:?}");
                }
                Ok(Some(desc)) => {
                    let len = (desc.len as usize).min(MAX_FRAME_LEN);
                    let copied = self.rx_data.copy_out(desc.offset as usize, &mut frame[..len]);
                    self.return_rx_buffer(desc.offset);
                    if copied {
                        return Some((len, desc.cookie & lib_net_protocol::RX_CSUM_VALID != 0));
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    log!("error: rx_active: {e}");
                    return None;
                }
            }
        }
    }

    /// Before waiting: reclaims sent buffers, notifies the demultiplexer of
    /// what was queued and returned, and asks to be notified of the next
    /// frame (and of returned transmit buffers while some are in flight).
    /// `true` if the PD may wait; `false` if a frame or buffer arrived
    /// meanwhile (shared-queue C1–C3), so handle it and ask again.
    pub fn ready_to_wait(&mut self) -> bool {
        self.reclaim();
        self.flush();
        let rx_idle = self.rx.active.request_signal_if_empty() != Ok(false);
        let in_flight = self.tx_slots.in_flight() > 0;
        let tx_idle = !in_flight || self.tx.free.request_signal_if_empty() != Ok(false);
        rx_idle && tx_idle
    }

    /// Copies `frame` into a transmit buffer and queues it. The
    /// demultiplexer is notified at the end of the next [`poll`](Self::poll),
    /// or by [`flush`](Self::flush).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.send_with(frame.len(), |buf| {
            buf.copy_from_slice(frame);
            true
        })
        .map(|_| ())
    }

    /// Notifies the demultiplexer of queued frames and returned buffers if
    /// it asked to be.
    pub fn flush(&mut self) {
        // Evaluate both: each clears the request it reports.
        let signal = self.tx.active.should_signal() | self.rx.free.should_signal();
        if signal {
            MUX.channel().notify();
        }
    }

    /// Handles everything pending: each received frame goes to `on_frame`
    /// (with this client, to reply), then queued frames are signalled and
    /// the signal requests armed. Returns the number of frames handled.
    pub fn poll(&mut self, mut on_frame: impl FnMut(&mut Self, &[u8])) -> usize {
        let mut handled = 0;
        let mut frame = [0u8; MAX_FRAME_LEN];
        loop {
            self.reclaim();
            while let Some(len) = self.recv(&mut frame) {
                on_frame(self, &frame[..len]);
                handled += 1;
            }
            if self.ready_to_wait() {
                return handled;
            }
        }
    }

    /// Installs a filter for this PD, inside its grant ([`Mux::install`]).
    pub fn install(&self, filter: &Filter, kind: FilterKind) -> Result<FilterId, MuxError> {
        MUX.install(filter, kind)
    }

    /// Removes a filter of this PD ([`Mux::remove`]).
    pub fn remove(&self, id: FilterId) -> Result<(), MuxError> {
        MUX.remove(id)
    }

    /// This PD's and the node's counters; the demultiplexer also logs its
    /// table ([`Mux::stats`]).
    pub fn stats(&self) -> Result<MuxStats, MuxError> {
        MUX.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_written_with_colons() {
        assert_eq!(std::format!("{}", Colons([0x52, 0x54, 0, 0x12, 0xab, 0x0f])), "52:54:00:12:ab:0f");
    }
}
