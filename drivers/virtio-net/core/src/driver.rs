//! The driver proper: moves frames between the device's virtqueues and the
//! client's queues (the `net-protocol` contract), in batches.
//!
//! One call to [`Driver::handle`] per wake-up (device interrupt, client
//! notification, or both) does everything pending, in rounds until nothing
//! is left:
//!
//! 1. received frames go to `rx_active`, sent frames' descriptors to
//!    `tx_free`;
//! 2. empty buffers from `rx_free` are posted to the device's receive queue,
//!    frames from `tx_active` to its transmit queue;
//! 3. each virtqueue is published once, and the device notified if its
//!    event index asks for it;
//! 4. before sleeping, interrupts are re-armed (`used_event`) and the client
//!    queues the driver waits on get `signal_requested`, then everything is
//!    checked once more, so that no wake-up is lost.
//!
//! The client is notified at most once per call, and only if it asked.
//!
//! # Interrupt moderation
//!
//! Given the time ([`Driver::handle_at`]), the driver moderates the
//! device's interrupts the way NAPI does (Mogul and Ramakrishnan's cure for
//! receive livelock): two interrupts less than [`BUSY_GAP_NS`] apart mean
//! frames come faster than the PDs behind the driver can take them one
//! wake-up at a time, so the driver stops re-arming interrupts (with
//! `VIRTIO_F_EVENT_IDX` it leaves `used_event` behind; without, it sets
//! `VIRTQ_AVAIL_F_NO_INTERRUPT`) and asks to be woken [`POLL_NS`] later
//! instead ([`Handled::poll_at`]), taking whatever arrived meanwhile in one
//! batch. A poll that finds nothing new on either used ring ends
//! polling: interrupts are re-armed and checked once more as always. While
//! polling, a wake-up by the client (frames to send) sends them but leaves
//! received frames on the used ring unless [`RX_BATCH_NS`] passed since
//! they were last taken: the client sends after every batch it handles,
//! and each of those wake-ups would otherwise hand it a batch of one or two
//! frames and wake it again (measured under a SYN flood: 0.71
//! notifications of the client per legitimate request, most of them for
//! one flood SYN). Under load those wake-ups pace the batches, and the
//! poll timer ([`POLL_NS`]) is the backstop. Under
//! a flood every PD downstream (driver, demultiplexer, server) then wakes
//! once per batch rather than once per frame, and a lightly loaded node
//! keeps one interrupt per frame and its latency. Receive buffers still
//! wait only as long as a poll: the device ring holds [`QUEUE_SIZE`] / 2
//! chains, enough for 256,000 frames a second.
//!
//! Everything is fixed-size: the driver holds at most [`QUEUE_SIZE`] chains
//! per virtqueue, and takes from a client queue only what it can always give
//! back (so its enqueues on `rx_active` and `tx_free` never find them full).

use crate::{features, NET_HDR_LEN};
use core::sync::atomic::{AtomicU16, AtomicU8, Ordering};
use lib_net_protocol::{
    rx_partial_cookie, split_tx_offset, FrameAssembler, Stats, Step, TxFrame, TxOffload, TxWindow, MAX_FRAME_LEN,
    MAX_TSO_FRAME_LEN, MAX_TX_SEGMENTS, MIN_FRAME_LEN, OFFLOAD_RX_CSUM, RX_BUFFERS, RX_BUFFER_SIZE, RX_CSUM_VALID,
    RX_QUEUE_CAPACITY, RX_RESTART_OFFSET, TX_QUEUE_CAPACITY,
};
/// The client's regions and transmit windows, as every NIC driver takes
/// them (`lib-net-protocol`).
pub use lib_net_protocol::{tx_windows, ClientRegions, DmaWindow};
use lib_queue::{BufferDesc, Consumer, QueueError, ReceiverQueues, SenderQueues};
use lib_virtio::dma::DmaRegion;
use lib_virtio::queue::{Segment, SplitQueue};
use lib_virtio::transport::{Notifier, Transport, TransportError};

/// Entries of each virtqueue (QEMU's default and maximum for virtio-net).
pub const QUEUE_SIZE: usize = 256;
// A transmit chain is the virtio-net header and up to MAX_TX_SEGMENTS
// segments; the room checks (`can_take_tx`) keep that many free.
const _: () = assert!(QUEUE_SIZE > 1 + MAX_TX_SEGMENTS);
/// Receive chains posted to the device below which returned receive
/// buffers wake the driver (a quarter of the ring's chains). Above it the
/// driver does not wait on `rx_free`: the next frame's interrupt reposts
/// whatever came back. (Woken for every batch the client returned, the
/// driver ran twice per received frame when frames came one by one, as a
/// SYN flood's do.) While at least one chain is posted, a frame always
/// brings that interrupt, so no buffer waits for ever.
pub const RX_REFILL_BELOW: usize = QUEUE_SIZE / 2 / 4;
const _: () = assert!(RX_REFILL_BELOW >= 1);
/// Two device interrupts closer than this start polling (see "Interrupt
/// moderation"): 5,000 interrupts a second, about where a wake-up per
/// frame starts to cost the emulated machine more than the frame's work.
pub const BUSY_GAP_NS: u64 = 200_000;
/// The poll timer's period: the longest a frame waits on the used ring
/// while the driver polls and nothing else wakes it. Under load the
/// client's wake-ups take received frames first ([`RX_BATCH_NS`]), and the
/// timer is only the backstop: each of its shots is an interrupt, a wake-up
/// of the timer PD and a protected call to arm the next (at 500 µs the
/// timer PD drew a quarter of the samples during a SYN flood).
pub const POLL_NS: u64 = 2_000_000;
/// While polling, a wake-up by the client (frames to send) also takes the
/// received frames if they were last taken at least this long ago; else
/// they wait, so that they reach the client in batches.
pub const RX_BATCH_NS: u64 = 500_000;

/// What [`Driver::handle_at`] asks of its PD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// Notify the client (it asked, and there is news for it).
    pub notify_client: bool,
    /// The driver polls: wake it at this time (ns, the clock given to
    /// `handle_at`) even if nothing else does. `None`: interrupts are armed.
    pub poll_at: Option<u64>,
}

/// virtio-net queue indices (5.1.2): receiveq1, transmitq1.
pub const RX_QUEUE: u16 = 0;
pub const TX_QUEUE: u16 = 1;

/// Layout of the driver's private DMA memory: the two virtqueues, the
/// receive header slots (one per client buffer), the transmit header
/// slots (one per chain in flight), and the control queue with its one
/// command.
pub mod private {
    use super::QUEUE_SIZE;
    use lib_virtio::queue::Layout;
    pub const RX_RING: usize = 0;
    pub const TX_RING: usize = 0x4000;
    pub const RX_HEADERS: usize = 0x8000;
    /// Bytes per receive header slot (12 used).
    pub const RX_HEADER_SLOT: usize = 16;
    /// The transmit header slots: [`TX_HEADER_SLOTS`] of
    /// [`TX_HEADER_SLOT`] bytes (12 used), each a chain's `virtio_net_hdr`.
    pub const TX_HEADERS: usize = RX_HEADERS + lib_net_protocol::RX_BUFFERS * RX_HEADER_SLOT;
    pub const TX_HEADER_SLOT: usize = 16;
    /// A transmit chain is at least two descriptors (header and one
    /// segment), so at most half the queue's entries are chains.
    pub const TX_HEADER_SLOTS: usize = QUEUE_SIZE / 2;
    /// The control virtqueue ([`super::control`]) and its command bytes.
    pub const CTRL_RING: usize = 0xc000;
    pub const CTRL_COMMAND: usize = 0xf000;
    /// Bytes of the region.
    pub const SIZE: usize = 0x10000;
    const _: () = assert!(Layout::new(QUEUE_SIZE).size <= TX_RING - RX_RING);
    const _: () = assert!(Layout::new(QUEUE_SIZE).size <= RX_HEADERS - TX_RING);
    const _: () = assert!(TX_HEADERS + TX_HEADER_SLOTS * TX_HEADER_SLOT <= CTRL_RING);
    const _: () = assert!(Layout::new(super::control::SIZE).size <= CTRL_COMMAND - CTRL_RING);
    const _: () = assert!(CTRL_COMMAND + super::control::COMMAND_LEN <= SIZE);
    const _: () = assert!(TX_HEADER_SLOTS <= 256, "slot numbers are u8");
}

/// The control virtqueue (5.1.6.5), used for one command: receive mode
/// "promiscuous off" (`VIRTIO_NET_CTRL_RX_PROMISC` with 0, 5.1.6.5.1), so
/// that the device passes up only frames to the node's MAC address and
/// broadcasts (its default receive mode is promiscuous, which would let
/// any frame on the wire cost the driver and the demultiplexer a
/// wake-up; all-multicast is off by default, and the MAC table empty). The
/// command goes out at bring-up; its answer is taken on a later wake-up
/// like any used buffer ([`Driver::receive_filter`]).
pub mod control {
    /// The control queue's index without `VIRTIO_NET_F_MQ` (5.1.2).
    pub const QUEUE: u16 = 2;
    /// Entries of the control queue: one command at a time.
    pub const SIZE: usize = 4;
    /// `VIRTIO_NET_CTRL_RX` and its `VIRTIO_NET_CTRL_RX_PROMISC` command.
    pub const CLASS_RX: u8 = 0;
    pub const RX_PROMISC: u8 = 0;
    /// The device's answer: `VIRTIO_NET_OK`.
    pub const OK: u8 = 0;
    /// The command's bytes in private memory: class, command, the data
    /// byte (0: off), then the device's ack.
    pub const COMMAND_LEN: usize = 4;
    pub const PROMISC_OFF: [u8; 3] = [CLASS_RX, RX_PROMISC, 0];
}

/// The device's receive filter, as far as the driver set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveFilter {
    /// The device has no control queue with receive-mode commands: it
    /// stays promiscuous (the demultiplexer still drops frames not for
    /// the node, `net-mux` "addressed_to_node").
    Unavailable,
    /// "Promiscuous off" is sent, not yet answered.
    Pending,
    /// The device passes only frames to the node's MAC and broadcasts.
    NodeOnly,
    /// The device answered with this error code (it stays promiscuous).
    Refused(u8),
}

/// The control queue, its doorbell, the command's memory and what came of
/// the command.
struct Control {
    queue: SplitQueue<(), { control::SIZE }>,
    notify: Notifier,
    command: DmaRegion,
    filter: ReceiveFilter,
    /// The filter changed since [`Driver::take_filter_change`] last looked.
    changed: bool,
}

impl Control {
    /// Writes "promiscuous off" and hands it to the device.
    fn send_promisc_off(&mut self) {
        for (i, &byte) in control::PROMISC_OFF.iter().enumerate() {
            self.command.at::<AtomicU8>(i).store(byte, Ordering::Relaxed);
        }
        // Not OK until the device says so.
        self.command.at::<AtomicU8>(3).store(0xff, Ordering::Relaxed);
        let p = |offset| self.command.paddr(offset);
        // 5.1.6.5: the header and data device-readable, the ack writable.
        let chain = [Segment::readable(p(0), 2), Segment::readable(p(2), 1), Segment::writable(p(3), 1)];
        if self.queue.push(&chain, ()).is_some() {
            self.queue.publish_and_check();
            self.notify.notify();
            self.filter = ReceiveFilter::Pending;
        } else {
            self.filter = ReceiveFilter::Refused(0xff);
        }
        self.changed = true;
    }

    /// Takes the device's answer, if it came.
    fn complete(&mut self) {
        if self.queue.pop_used().is_some() {
            let ack = self.command.at::<AtomicU8>(3).load(Ordering::Acquire);
            self.filter = if ack == control::OK { ReceiveFilter::NodeOnly } else { ReceiveFilter::Refused(ack) };
            self.changed = true;
        }
    }
}

/// Why the device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// Bring-up failed at the transport (features included).
    Transport(TransportError),
    /// The private region is too small, or not 16-byte aligned, for the queues.
    PrivateMemory,
}

impl From<TransportError> for InitError {
    fn from(e: TransportError) -> Self {
        InitError::Transport(e)
    }
}

/// What bringing the device up yields, before the driver is assembled.
struct Up {
    rx: SplitQueue<u32, QUEUE_SIZE>,
    tx: SplitQueue<(TxFrame, u8), QUEUE_SIZE>,
    rx_notify: Notifier,
    tx_notify: Notifier,
    headers: DmaRegion,
    mac: Option<[u8; 6]>,
    /// Features offered and accepted.
    features: (u64, u64),
    control: Option<Control>,
}

impl Up {
    /// Steps 1–8 of bring-up, the queues in `private`.
    fn new(dev: &Transport, private: DmaRegion) -> Result<Up, InitError> {
        let mut offered = 0;
        let accepted = dev.negotiate_with(features::REQUIRED, |o| {
            offered = o;
            features::wanted(o)
        })?;
        let event_idx = accepted & features::RING_F_EVENT_IDX != 0;
        let (rings, headers) = private.split_at(private::RX_HEADERS).ok_or(InitError::PrivateMemory)?;
        let (rx_ring, tx_ring) = rings.split_at(private::TX_RING).ok_or(InitError::PrivateMemory)?;
        let (headers, control_mem) =
            headers.split_at(private::CTRL_RING - private::RX_HEADERS).ok_or(InitError::PrivateMemory)?;
        headers.zero();
        let size = QUEUE_SIZE as u16;
        let rx = SplitQueue::new(rx_ring, size, event_idx).ok_or(InitError::PrivateMemory)?;
        let tx = SplitQueue::new(tx_ring, size, event_idx).ok_or(InitError::PrivateMemory)?;
        let rx_notify = dev.setup_queue(RX_QUEUE, size, rx.areas())?;
        let tx_notify = dev.setup_queue(TX_QUEUE, size, tx.areas())?;
        let both = features::NET_F_CTRL_VQ | features::NET_F_CTRL_RX;
        let mut control = match accepted & both == both {
            true => {
                let (ring, rest) =
                    control_mem.split_at(private::CTRL_COMMAND - private::CTRL_RING).ok_or(InitError::PrivateMemory)?;
                let command = rest.split_at(control::COMMAND_LEN).ok_or(InitError::PrivateMemory)?.0;
                let queue = SplitQueue::new(ring, control::SIZE as u16, event_idx).ok_or(InitError::PrivateMemory)?;
                let notify = dev.setup_queue(control::QUEUE, control::SIZE as u16, queue.areas())?;
                Some(Control { queue, notify, command, filter: ReceiveFilter::Pending, changed: false })
            }
            false => None,
        };
        let mac = (accepted & features::NET_F_MAC != 0).then(|| {
            dev.read_device_config(|c| {
                let mut mac = [0; 6];
                for (i, b) in mac.iter_mut().enumerate() {
                    *b = c.u8(i).unwrap_or(0);
                }
                mac
            })
        });
        dev.driver_ok();
        // Commands go to a live device (after DRIVER_OK, 3.1.1).
        if let Some(c) = control.as_mut() {
            c.send_promisc_off();
        }
        Ok(Up { rx, tx, rx_notify, tx_notify, headers, mac, features: (offered, accepted), control })
    }
}

/// The driver's state: the device, its two virtqueues and the client queues.
pub struct Driver<'a> {
    dev: Transport,
    /// Receive chains carry the client buffer (offset in `rx_data`) they fill.
    rx: SplitQueue<u32, QUEUE_SIZE>,
    /// Transmit chains carry the client descriptors of their frame and
    /// their header slot.
    tx: SplitQueue<(TxFrame, u8), QUEUE_SIZE>,
    rx_notify: Notifier,
    tx_notify: Notifier,
    /// Received frames go out on `active`; empty buffers come in on `free`.
    rx_client: SenderQueues<'a, RX_QUEUE_CAPACITY>,
    /// Frames to send come in on `active`; sent descriptors go out on `free`.
    tx_client: ReceiverQueues<'a, TX_QUEUE_CAPACITY>,
    /// The receive and transmit header slots (`private[RX_HEADERS..]`): the
    /// device writes the former, the driver the latter.
    headers: DmaRegion,
    /// Free transmit header slots: `tx_slots[..tx_slots_free]`.
    tx_slots: [u8; private::TX_HEADER_SLOTS],
    tx_slots_free: usize,
    /// `net-protocol` offload bits negotiated.
    offloads: u64,
    /// Device features offered and accepted.
    features: (u64, u64),
    regions: ClientRegions,
    /// Client receive buffers the driver holds (posted to the device).
    rx_held: usize,
    /// Client transmit descriptors the driver holds (in chains or pending).
    tx_held: usize,
    /// Collects `tx_active` descriptors into frames.
    assembler: FrameAssembler,
    mac: Option<[u8; 6]>,
    stats: Stats,
    /// A restarted driver that sent its restart marker and waits for the
    /// client's Attach (`net-protocol`, "Starting over"): the queues are
    /// not touched meanwhile.
    awaiting_attach: bool,
    /// The restart marker is on `rx_active`.
    marker_sent: bool,
    /// Interrupts are not re-armed: the PD wakes the driver every
    /// [`POLL_NS`] ("Interrupt moderation").
    polling: bool,
    /// When the last device interrupt was handled, if the PD gives time.
    last_irq: Option<u64>,
    /// When received frames were last taken (ns), if the PD gives time.
    last_rx: u64,
    /// Wake-ups spent polling and times polling started (for the log).
    polls: u64,
    polling_started: u64,
    /// The control queue, if the device has one with receive-mode commands.
    control: Option<Control>,
}

impl<'a> Driver<'a> {
    /// Brings the device up (virtio 1.x, 3.1.1): reset, features, both
    /// queues in `private` memory, DRIVER_OK. On failure the device is
    /// marked FAILED.
    ///
    /// # Safety
    ///
    /// `private` must be [`private::SIZE`] bytes, 4 KiB aligned and
    /// DMA-coherent. The client regions must be as `net-protocol` says, at
    /// the physical addresses given: the device will write and read them.
    pub unsafe fn new(
        dev: Transport,
        private: DmaRegion,
        regions: ClientRegions,
        rx_client: SenderQueues<'a, RX_QUEUE_CAPACITY>,
        tx_client: ReceiverQueues<'a, TX_QUEUE_CAPACITY>,
    ) -> Result<Self, InitError> {
        let Up { rx, tx, rx_notify, tx_notify, headers, mac, features, control } =
            Up::new(&dev, private).inspect_err(|_| dev.fail())?;
        Ok(Driver {
            dev,
            rx,
            tx,
            rx_notify,
            tx_notify,
            rx_client,
            tx_client,
            headers,
            tx_slots: core::array::from_fn(|i| i as u8),
            tx_slots_free: private::TX_HEADER_SLOTS,
            offloads: features::offloads(features.1),
            features,
            regions,
            rx_held: 0,
            tx_held: 0,
            assembler: FrameAssembler::default(),
            mac,
            stats: Stats::default(),
            awaiting_attach: false,
            marker_sent: false,
            polling: false,
            last_irq: None,
            last_rx: 0,
            polls: 0,
            polling_started: 0,
            control,
        })
    }

    /// The device's receive filter as far as the driver set it.
    pub fn receive_filter(&self) -> ReceiveFilter {
        self.control.as_ref().map_or(ReceiveFilter::Unavailable, |c| c.filter)
    }

    /// The receive filter, if it changed since the last call (for the log).
    pub fn take_filter_change(&mut self) -> Option<ReceiveFilter> {
        let c = self.control.as_mut()?;
        core::mem::take(&mut c.changed).then_some(c.filter)
    }

    /// This driver was restarted (`net-protocol`, "Starting over"): its
    /// bring-up reset the device, so nothing of the previous life is
    /// posted or in flight. Enqueues the restart marker on `rx_active` and
    /// leaves the queues alone until [`attach`](Self::attach). Returns
    /// whether to notify the client (always: it must see the marker).
    pub fn restarted(&mut self) -> bool {
        self.awaiting_attach = true;
        self.send_marker();
        true
    }

    /// Enqueues the restart marker if it is not out yet; whether it went
    /// out now. On a full `rx_active` (the client still has the old
    /// driver's frames to take) it asks for a signal on `rx_free`, where
    /// the client returns their buffers once taken: the next wake-up tries
    /// again.
    fn send_marker(&mut self) -> bool {
        if self.marker_sent {
            return false;
        }
        let marker = BufferDesc { offset: RX_RESTART_OFFSET, len: 0, cookie: 0 };
        self.marker_sent = self.rx_client.active.enqueue(marker).is_ok();
        if !self.marker_sent {
            self.rx_client.free.request_signal();
        }
        self.marker_sent
    }

    /// The client's Attach after the restart marker: empties this side of
    /// the four queues (the client is blocked in the call, and empties its
    /// side after it) and serves them again.
    pub fn attach(&mut self) {
        self.rx_client.reset();
        self.tx_client.reset();
        self.assembler = FrameAssembler::default();
        self.awaiting_attach = false;
    }

    /// The MAC address, if the device told it.
    pub fn mac(&self) -> Option<[u8; 6]> {
        self.mac
    }

    /// The offloads negotiated (`net-protocol`'s `OFFLOAD_*` bits): the
    /// answer to `DriverRequest::Offloads` (`CALL_OFFLOADS`).
    pub fn offloads(&self) -> u64 {
        self.offloads
    }

    /// The device's features: (offered, accepted), for the log.
    pub fn features(&self) -> (u64, u64) {
        self.features
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Does everything pending; `irq`: the device interrupted. Returns
    /// whether to notify the client (it asked and there is news for it).
    ///
    /// On an interrupt the ISR status is read first: that acknowledges it at
    /// the device and lowers the level-triggered line, so the caller then
    /// acknowledges the IRQ at the interrupt controller.
    pub fn handle(&mut self, irq: bool) -> bool {
        self.handle_at(irq, false, None).notify_client
    }

    /// [`handle`](Self::handle) at time `now` (ns; `None`: the PD has no
    /// clock, and interrupts are never moderated), with interrupt
    /// moderation ("Interrupt moderation" above); `poll`: the poll timeout
    /// asked for by [`Handled::poll_at`] woke the PD. Only a poll ends
    /// polling: the client's wake-ups come at any time, and one that finds
    /// the used rings empty says nothing about the device's rate.
    pub fn handle_at(&mut self, irq: bool, poll: bool, now: Option<u64>) -> Handled {
        match now {
            Some(now) if irq => {
                if self.last_irq.is_some_and(|last| now.saturating_sub(last) < BUSY_GAP_NS) && !self.polling {
                    self.polling = true;
                    self.polling_started += 1;
                }
                self.last_irq = Some(now);
            }
            // Polling, and the device brought nothing since the last look:
            // back to interrupts.
            Some(_) if self.polling && poll && !self.rx.has_used() && !self.tx.has_used() => self.polling = false,
            Some(_) if self.polling && poll => self.polls += 1,
            _ => {}
        }
        // Received frames wait for a poll, or for a client wake-up
        // RX_BATCH_NS after they were last taken, while polling (module
        // docs).
        let take_rx =
            irq || poll || !self.polling || now.is_some_and(|now| now.saturating_sub(self.last_rx) >= RX_BATCH_NS);
        if take_rx {
            self.last_rx = now.unwrap_or(0);
        }
        let notify_client = self.handle_work(irq, take_rx);
        let poll_at = match now {
            Some(now) if self.polling => Some(now + POLL_NS),
            _ => None,
        };
        Handled { notify_client, poll_at }
    }

    /// Stops polling now (the PD cannot arrange the next poll): re-arms
    /// interrupts and does whatever came meanwhile, as [`handle`](Self::handle).
    pub fn stop_polling(&mut self) -> bool {
        self.polling = false;
        self.handle_work(false, true)
    }

    /// Times polling started, and wake-ups that found the device's work
    /// while polling.
    pub fn moderation(&self) -> (u64, u64) {
        (self.polling_started, self.polls)
    }

    fn handle_work(&mut self, irq: bool, take_rx: bool) -> bool {
        if irq {
            self.stats.irqs += 1;
            // Both causes (used ring, configuration change) are handled by
            // looking at everything, so the value itself is not needed.
            let _ = self.dev.read_isr();
        }
        if let Some(c) = self.control.as_mut() {
            c.complete();
        }
        if self.awaiting_attach {
            return self.send_marker() && self.rx_client.active.should_signal();
        }
        let mut notify_client = false;
        loop {
            if take_rx {
                self.complete_rx();
            }
            self.complete_tx();
            self.refill_rx();
            self.transmit();
            self.kick();
            // Evaluate both: each clears its request when it reports one.
            notify_client |= self.rx_client.active.should_signal() | self.tx_client.free.should_signal();
            if self.ready_to_sleep(take_rx) {
                break;
            }
        }
        if notify_client {
            self.stats.client_notifies += 1;
        }
        notify_client
    }

    /// Publishes each virtqueue once and notifies the device where it asked.
    fn kick(&mut self) {
        for (needed, notifier) in
            [(self.rx.publish_and_check(), self.rx_notify), (self.tx.publish_and_check(), self.tx_notify)]
        {
            if needed {
                notifier.notify();
                self.stats.device_notifies += 1;
            }
        }
    }

    /// Re-arms interrupts and signal requests; `true` if nothing arrived
    /// meanwhile, so the PD may wait.
    ///
    /// A client queue is waited on whenever the device has room for what
    /// it would bring, even if the client's *other* queue is too full for
    /// the driver to take it now (`can_take_rx`/`can_take_tx` also count
    /// the client's unconsumed entries). The client empties that other
    /// queue before it produces again (it returns a receive buffer only
    /// after consuming its frame; it reclaims sent descriptors before it
    /// sends), so its next production is also the moment there is room.
    /// Waiting only when there is room already would lose that wake-up:
    /// with every receive buffer handed over and none posted, nothing
    /// else would ever wake the driver. `rx_free` is waited on only while
    /// fewer than [`RX_REFILL_BELOW`] chains are posted.
    fn ready_to_sleep(&mut self, take_rx: bool) -> bool {
        // Non-short-circuit `|`: both queues must be re-armed. While
        // polling they are not: the PD wakes the driver at the next poll
        // (received frames left for it are no work now).
        let used = if self.polling {
            self.rx.disable_interrupts();
            self.tx.disable_interrupts();
            (take_rx && self.rx.has_used()) || self.tx.has_used()
        } else {
            self.rx.enable_interrupts() | self.tx.enable_interrupts()
        };
        let tx_pending =
            self.tx.num_free() > MAX_TX_SEGMENTS && Self::wait_on(&self.tx_client.active, || self.can_take_tx());
        let rx_low = self.rx_held < RX_REFILL_BELOW;
        let rx_pending =
            self.rx.num_free() >= 2 && rx_low && Self::wait_on(&self.rx_client.free, || self.can_take_rx());
        !(used || tx_pending || rx_pending)
    }

    /// Asks `queue`'s producer for a signal, then looks again (shared-queue
    /// C1–C3): `true` if entries are there and `can_take` allows taking
    /// them now, so there is work instead of a wait.
    fn wait_on<const N: usize>(queue: &Consumer<'_, N>, can_take: impl FnOnce() -> bool) -> bool {
        queue.request_signal();
        let work = queue.is_empty() == Ok(false) && can_take();
        if work {
            queue.cancel_signal();
        }
        work
    }

    /// Whether the device has room for a receive chain and the client's
    /// `rx_active` room for the frame it will become.
    fn can_take_rx(&self) -> bool {
        let queued = self.rx_client.active.len().unwrap_or(RX_QUEUE_CAPACITY);
        self.rx.num_free() >= 2 && self.rx_held + queued < RX_QUEUE_CAPACITY
    }

    /// Whether the device has room for a frame of the most segments (a
    /// chain of the header and [`MAX_TX_SEGMENTS`] segments), and the
    /// client's `tx_free` room for one more descriptor besides every one
    /// held. Checked before each descriptor is taken: nothing else uses the
    /// transmit virtqueue meanwhile, so the frame those descriptors
    /// complete finds the ring's room still there; and `tx_free` only
    /// fills with descriptors the driver held, so `tx_held + queued` never
    /// exceeds its capacity and every give-back fits.
    ///
    /// The room asked of `tx_free` is per descriptor, not per frame: the
    /// driver is not woken when the client empties `tx_free` (only when it
    /// produces on `tx_active`), so a burst of up to a full `tx_active`
    /// sent at once, with `tx_free` empty, must be taken whole even if the
    /// client then reclaims and sends nothing more.
    fn can_take_tx(&self) -> bool {
        let queued = self.tx_client.free.len().unwrap_or(TX_QUEUE_CAPACITY);
        self.tx.num_free() > MAX_TX_SEGMENTS && self.tx_held + queued < TX_QUEUE_CAPACITY
    }

    /// Hands received frames to the client.
    fn complete_rx(&mut self) {
        // Used elements naming no chain in flight (a device bug) are skipped
        // by the queue; a length beyond the chain reads as 0: dropped below.
        while let Some(used) = self.rx.pop_used() {
            let offset = used.token;
            self.rx_held -= 1;
            let frame_len = (used.len as usize).wrapping_sub(NET_HDR_LEN);
            if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame_len) {
                self.stats.rx_dropped += 1;
                self.post_rx(offset);
                continue;
            }
            let Some(cookie) = self.rx_checksum(offset) else {
                self.stats.rx_dropped += 1;
                self.post_rx(offset);
                continue;
            };
            let desc = BufferDesc { offset: u64::from(offset), len: frame_len as u32, cookie };
            match self.rx_client.active.enqueue(desc) {
                Ok(()) => {
                    self.stats.rx_frames += 1;
                    self.stats.rx_bytes += frame_len as u64;
                }
                // Cannot happen while the client's indices are sane (see
                // `can_take_rx`); keep the buffer.
                Err(_) => {
                    self.stats.client_errors += 1;
                    self.stats.rx_dropped += 1;
                    self.post_rx(offset);
                }
            }
        }
    }

    /// The checksum state of the frame received into buffer `offset`, as
    /// its `rx_active` cookie: from the `flags` of its `virtio_net_hdr`
    /// (5.1.6.4) if `VIRTIO_NET_F_GUEST_CSUM` was negotiated, else 0.
    /// `DATA_VALID`: [`RX_CSUM_VALID`]; `NEEDS_CSUM`: a partial checksum,
    /// whose `csum_start` and `csum_offset` go along (`None` if they do not
    /// fit the cookie or lie beyond a frame: the frame is dropped).
    fn rx_checksum(&self, offset: u32) -> Option<u32> {
        if self.offloads & OFFLOAD_RX_CSUM == 0 {
            return Some(0);
        }
        let slot = offset as usize / RX_BUFFER_SIZE * private::RX_HEADER_SLOT;
        let flags = self.headers.at::<AtomicU8>(slot + hdr::FLAGS).load(Ordering::Relaxed);
        if flags & hdr::F_DATA_VALID != 0 {
            return Some(RX_CSUM_VALID);
        }
        if flags & hdr::F_NEEDS_CSUM == 0 {
            return Some(0);
        }
        let field = |at| u16::from_le(self.headers.at::<AtomicU16>(slot + at).load(Ordering::Relaxed));
        let (start, offset) = (u8::try_from(field(hdr::CSUM_START)).ok()?, u8::try_from(field(hdr::CSUM_OFFSET)).ok()?);
        Some(rx_partial_cookie(start, offset))
    }

    /// Posts client buffer `offset` to the device: a 12-byte header slot,
    /// then the buffer, both device-writable.
    fn post_rx(&mut self, offset: u32) {
        let index = offset as usize / RX_BUFFER_SIZE;
        let header = self.headers.paddr(index * private::RX_HEADER_SLOT);
        let chain = [
            Segment::writable(header, NET_HDR_LEN as u32),
            Segment::writable(self.regions.rx_data + u64::from(offset), RX_BUFFER_SIZE as u32),
        ];
        match self.rx.push(&chain, offset) {
            Some(_) => self.rx_held += 1,
            // Callers check for room first.
            None => unreachable!("receive queue full"),
        }
    }

    /// Posts the client's empty buffers.
    fn refill_rx(&mut self) {
        while self.can_take_rx() {
            match self.rx_client.free.dequeue() {
                Ok(Some(desc)) => {
                    let ok =
                        desc.offset % RX_BUFFER_SIZE as u64 == 0 && desc.offset < (RX_BUFFERS * RX_BUFFER_SIZE) as u64;
                    if ok {
                        self.post_rx(desc.offset as u32);
                    } else {
                        self.stats.client_errors += 1;
                    }
                }
                Ok(None) => break,
                Err(QueueError::OutOfBounds(_)) => self.stats.client_errors += 1,
                Err(_) => {
                    self.stats.client_errors += 1;
                    break;
                }
            }
        }
    }

    /// Returns sent frames' descriptors to the client.
    fn complete_tx(&mut self) {
        while let Some(used) = self.tx.pop_used() {
            let (frame, slot) = used.token;
            self.free_slot(slot);
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += frame.len() as u64;
            self.give_back(frame.descs());
        }
    }

    /// Returns client transmit descriptors on `tx_free`.
    fn give_back(&mut self, descs: &[BufferDesc]) {
        // `can_take_tx` keeps room for every descriptor held.
        let n = self.tx_client.free.enqueue_batch(descs).unwrap_or(0);
        if n < descs.len() {
            self.stats.client_errors += 1;
        }
        self.tx_held -= descs.len();
    }

    /// Takes frames from `tx_active` and posts them to the device.
    fn transmit(&mut self) {
        while self.can_take_tx() {
            let (desc, out_of_bounds) = match self.tx_client.active.dequeue() {
                Ok(Some(desc)) => (desc, false),
                Ok(None) => break,
                Err(QueueError::OutOfBounds(desc)) => {
                    self.stats.client_errors += 1;
                    (desc, true)
                }
                Err(_) => {
                    self.stats.client_errors += 1;
                    break;
                }
            };
            self.tx_held += 1;
            match self.assembler.push(desc, out_of_bounds) {
                Step::Held => {}
                // The rest of a frame already refused.
                Step::Discard(desc) => self.give_back(&[desc]),
                Step::Frame(frame) => self.submit(frame),
            }
        }
    }

    /// Posts a complete frame, or refuses it and gives its descriptors back.
    ///
    /// Its chain is a header slot holding the frame's `virtio_net_hdr`
    /// (5.1.6.2: all zero, or what its offload descriptor asks), then its
    /// data segments. A frame is refused if a descriptor is bad, it asks
    /// for an offload not negotiated, or its length is outside
    /// `MIN_FRAME_LEN..=MAX_FRAME_LEN` (`..=MAX_TSO_FRAME_LEN` with TSO).
    fn submit(&mut self, frame: TxFrame) {
        let (offload, data) = match frame.descs().split_first() {
            Some((first, rest)) if matches!(split_tx_offset(first.offset), Some((TxWindow::Offload, _))) => {
                (TxOffload::from_desc(first).ok_or(()), rest)
            }
            _ => (Ok(TxOffload::default()), frame.descs()),
        };
        let mut ok = !frame.is_bad() && !data.is_empty();
        let offload = offload.unwrap_or_else(|()| {
            ok = false;
            TxOffload::default()
        });
        ok &= offload.needs() & !self.offloads == 0;
        let Some(slot) = self.tx_slots_free.checked_sub(1).map(|n| self.tx_slots[n]) else {
            // Cannot happen: a slot per chain in flight, at most half the ring.
            self.stats.tx_dropped += 1;
            self.give_back(frame.descs());
            return;
        };
        let header = Segment::readable(self.tx_header(slot), NET_HDR_LEN as u32);
        let mut chain = [header; 1 + MAX_TX_SEGMENTS];
        let mut total = 0usize;
        for (seg, desc) in chain[1..].iter_mut().zip(data) {
            match self.resolve(desc) {
                Some(paddr) => *seg = Segment::readable(paddr, desc.len),
                None => ok = false,
            }
            total += desc.len as usize;
        }
        let max = if offload.tso() { MAX_TSO_FRAME_LEN } else { MAX_FRAME_LEN };
        ok &= (MIN_FRAME_LEN..=max).contains(&total);
        if ok {
            self.write_tx_header(slot, &offload, total);
            if self.tx.push(&chain[..1 + data.len()], (frame, slot)).is_some() {
                self.tx_slots_free -= 1;
                return;
            }
        }
        self.stats.tx_dropped += 1;
        self.give_back(frame.descs());
    }

    /// The physical address of transmit header slot `slot`.
    fn tx_header(&self, slot: u8) -> u64 {
        self.headers.paddr(private::TX_HEADERS - private::RX_HEADERS + usize::from(slot) * private::TX_HEADER_SLOT)
    }

    /// Writes the `virtio_net_hdr` (5.1.6, 5.1.6.2) of a frame of `len`
    /// bytes into slot `slot`: `flags = NEEDS_CSUM`, `csum_start` and
    /// `csum_offset` if it asks for checksum offload; `gso_type = TCPV4`,
    /// `gso_size = mss` and `hdr_len` if it asks for TSO and is more than
    /// one segment; zero otherwise.
    fn write_tx_header(&self, slot: u8, offload: &TxOffload, len: usize) {
        let at = private::TX_HEADERS - private::RX_HEADERS + usize::from(slot) * private::TX_HEADER_SLOT;
        let u8_at = |o: usize, v: u8| self.headers.at::<AtomicU8>(at + o).store(v, Ordering::Relaxed);
        let u16_at = |o: usize, v: u16| self.headers.at::<AtomicU16>(at + o).store(v.to_le(), Ordering::Relaxed);
        let csum = offload.csum();
        let gso = offload.segments(len);
        u8_at(hdr::FLAGS, if csum { hdr::F_NEEDS_CSUM } else { 0 });
        u8_at(hdr::GSO_TYPE, if gso { hdr::GSO_TCPV4 } else { hdr::GSO_NONE });
        u16_at(hdr::HDR_LEN, if gso { u16::from(offload.hdr_len) } else { 0 });
        u16_at(hdr::GSO_SIZE, if gso { offload.mss } else { 0 });
        u16_at(hdr::CSUM_START, if csum { u16::from(offload.csum_start) } else { 0 });
        u16_at(hdr::CSUM_OFFSET, if csum { u16::from(offload.csum_offset) } else { 0 });
        u16_at(hdr::NUM_BUFFERS, 0);
    }

    /// Returns a transmit header slot to the free stack.
    fn free_slot(&mut self, slot: u8) {
        self.tx_slots[self.tx_slots_free] = slot;
        self.tx_slots_free += 1;
    }

    /// The physical address of a transmit segment, if it lies within one of
    /// the client's windows and is not empty.
    fn resolve(&self, desc: &BufferDesc) -> Option<u64> {
        let (window, offset) = split_tx_offset(desc.offset)?;
        let region = self.regions.tx_windows[window.index()]?;
        let end = (offset as usize).checked_add(desc.len as usize)?;
        (desc.len > 0 && end <= region.len).then_some(region.paddr + u64::from(offset))
    }
}

/// `struct virtio_net_hdr` (virtio 1.x spec 5.1.6): field offsets and values.
pub mod hdr {
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: usize = 2;
    pub const GSO_SIZE: usize = 4;
    pub const CSUM_START: usize = 6;
    pub const CSUM_OFFSET: usize = 8;
    pub const NUM_BUFFERS: usize = 10;
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
    pub const F_NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID`.
    pub const F_DATA_VALID: u8 = 2;
    /// `VIRTIO_NET_HDR_GSO_NONE`.
    pub const GSO_NONE: u8 = 0;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`.
    pub const GSO_TCPV4: u8 = 1;
}
