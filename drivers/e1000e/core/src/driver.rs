//! The driver proper: brings the 82574 up and moves frames between its two
//! legacy descriptor rings and the client's queues (the `net-protocol`
//! contract), in batches.
//!
//! One call to [`Driver::handle`] per wake-up (device interrupt, client
//! notification, or both) does everything pending, in rounds until nothing
//! is left, as virtio-net's driver does:
//!
//! 1. on an interrupt, `ICR` is read and written back (7.4.5: read-to-clear
//!    without MSI-X, write-1-to-clear always), which lowers the line; a
//!    link status change (`LSC`) reads `STATUS.LU` again;
//! 2. received frames (descriptors with `DD`) go to `rx_active`, sent
//!    frames' descriptors (`DD` on their last descriptor) to `tx_free`;
//! 3. empty buffers from `rx_free` are written into the receive ring and
//!    frames from `tx_active` into the transmit ring;
//! 4. each ring's tail (`RDT`, `TDT`) is written once, if it moved;
//! 5. before sleeping, the client queues the driver waits on get
//!    `signal_requested`, then everything is checked once more, so that no
//!    wake-up is lost.
//!
//! The client is notified at most once per call, and only if it asked.
//!
//! # Rings
//!
//! Each ring is [`RX_RING`] or [`TX_RING`] 16-byte descriptors in the
//! driver's private DMA memory ([`private`]). The device owns the
//! descriptors from head to tail; head equal to tail is an empty ring
//! (7.1.8), so at most `size - 1` descriptors are ever handed over: a
//! tail written one step further would read as empty and lose them all.
//!
//! - **Receive**: each descriptor holds one client buffer of
//!   [`RX_BUFFER_SIZE`] bytes (`RCTL.BSIZE` = 2048). The frame arrives
//!   without its CRC (`RCTL.SECRC`) at the buffer's first byte, as
//!   `net-protocol` wants. Long packets are off (`RCTL.LPE`), so a frame
//!   always fits one descriptor; one that does not (no `EOP`) is dropped
//!   with the rest of it, and so is one with any error bit.
//! - **Transmit**: a client frame of one to [`MAX_TX_SEGMENTS`]
//!   descriptors becomes as many legacy descriptors, each with `IFCS`, the
//!   last with `EOP` and `RS`: the device writes `DD` back on that last one
//!   only, and everything before it in the ring is done by then (the ring
//!   is processed in order).
//!
//! # Interrupt moderation
//!
//! The device does it: `ITR` keeps interrupts at least [`ITR_INTERVAL_NS`]
//! apart (`ITR`), and a lone frame after a quiet spell still interrupts at
//! once. [`Driver::handle_at`] takes the same arguments as virtio-net's,
//! so that the PD glue has the same shape, but never asks for a poll.
//!
//! Everything is fixed-size: the driver holds at most a ring's worth of
//! buffers per direction, and takes from a client queue only what it can
//! always give back (so its enqueues on `rx_active` and `tx_free` never
//! find them full).

use crate::regs::{self, int, rctl, rxd, tctl, txd, Regs};
use core::sync::atomic::{fence, AtomicU16, AtomicU64, AtomicU8, Ordering};
use lib_net_protocol::{
    split_tx_offset, FrameAssembler, Stats, Step, TxFrame, TxWindow, MAX_FRAME_LEN, MAX_TX_SEGMENTS, MIN_FRAME_LEN,
    RX_BUFFERS, RX_BUFFER_SIZE, RX_QUEUE_CAPACITY, RX_RESTART_OFFSET, TX_QUEUE_CAPACITY,
};
/// The client's regions and transmit windows, as every NIC driver takes
/// them (`lib-net-protocol`).
pub use lib_net_protocol::{tx_windows, ClientRegions, DmaWindow};
use lib_queue::{BufferDesc, Consumer, QueueError, ReceiverQueues, SenderQueues};
use lib_virtio::dma::DmaRegion;

/// Descriptors in the receive ring: one per client buffer (`RDLEN` must be
/// a multiple of 128 bytes, 8 descriptors).
pub const RX_RING: usize = 256;
/// Descriptors in the transmit ring.
pub const TX_RING: usize = 256;
const _: () = assert!((RX_RING * rxd::SIZE).is_multiple_of(128) && (TX_RING * txd::SIZE).is_multiple_of(128));
const _: () = assert!(RX_RING <= RX_BUFFERS + 1, "no more descriptors posted than the client has buffers");
const _: () = assert!(TX_RING > MAX_TX_SEGMENTS, "a frame of the most segments fits the ring");
const _: () = assert!(RX_BUFFER_SIZE == 2048, "RCTL.BSIZE is programmed for 2048-byte buffers");

/// Receive buffers posted below which returned buffers wake the driver (a
/// quarter of the ring); above it the next frame's interrupt reposts what
/// came back, as virtio-net's `RX_REFILL_BELOW`.
pub const RX_REFILL_BELOW: usize = RX_RING / 4;

/// The least interval between two interrupts (`ITR`), the gap virtio-net's
/// moderation starts polling at: 5,000 interrupts a second.
pub const ITR_INTERVAL_NS: u64 = 200_000;
/// `ITR` counts in 256 ns units.
const ITR_VALUE: u32 = (ITR_INTERVAL_NS / 256) as u32;

/// Reads of `CTRL` waiting for `CTRL.RST` to clear before bring-up gives
/// up. QEMU clears it at once, the 82574 within microseconds, and
/// each uncached read takes about one.
pub const RESET_POLLS: u32 = 100_000;

/// The interrupt causes the driver enables (`IMS`).
pub const IMS_CAUSES: u32 = int::RXT0 | int::TXDW | int::LSC | int::RXO;

/// Layout of the driver's private DMA memory: the two rings.
pub mod private {
    use super::{RX_RING, TX_RING};
    use crate::regs::{rxd, txd};
    pub const RX_RING_AT: usize = 0;
    pub const TX_RING_AT: usize = 0x1000;
    /// Bytes of the region.
    pub const SIZE: usize = 0x2000;
    const _: () = assert!(RX_RING * rxd::SIZE <= TX_RING_AT && TX_RING_AT + TX_RING * txd::SIZE <= SIZE);
}

/// What [`Driver::handle_at`] asks of its PD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// Notify the client (it asked, and there is news for it).
    pub notify_client: bool,
    /// Always `None`: the device moderates its own interrupts (`ITR`);
    /// there for the PD glue's sake (virtio-net's has the same field).
    pub poll_at: Option<u64>,
}

/// What the device's receive filter lets through, as read back from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveFilter {
    /// Frames to the node's MAC address (`RAL0`/`RAH0` valid) and
    /// broadcasts (`RCTL.BAM`); not promiscuous (`RCTL.UPE`, `MPE` clear,
    /// the multicast table empty).
    NodeOnly,
    /// The registers say otherwise (this `RCTL`): the demultiplexer still
    /// drops frames not for the node.
    Other { rctl: u32 },
}

/// Why the device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `CTRL.RST` was still set after [`RESET_POLLS`] reads.
    ResetTimeout,
    /// `RAL0`/`RAH0` after the reset hold no usable station address (all
    /// zero, or a multicast one): the EEPROM is blank or corrupt.
    BadMac([u8; 6]),
    /// The private region is too small, or not 4 KiB aligned.
    PrivateMemory,
}

/// Counters particular to this device, beside `net-protocol`'s [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceEvents {
    /// Link status changes seen (`LSC`).
    pub link_changes: u64,
    /// Receiver overruns (`RXO`): frames were lost for want of descriptors.
    pub rx_overruns: u64,
}

/// The driver's state: the device, its two rings and the client queues.
pub struct Driver<'a, R: Regs> {
    regs: R,
    /// The two rings (`private`).
    rings: DmaRegion,
    /// Received frames go out on `active`; empty buffers come in on `free`.
    rx_client: SenderQueues<'a, RX_QUEUE_CAPACITY>,
    /// Frames to send come in on `active`; sent descriptors go out on `free`.
    tx_client: ReceiverQueues<'a, TX_QUEUE_CAPACITY>,
    regions: ClientRegions,
    /// The client buffer (offset in `rx_data`) in each receive descriptor.
    rx_buffers: [u32; RX_RING],
    /// The next receive descriptor the device completes (its head, as far
    /// as the driver has seen), and the next one the driver fills (the
    /// tail); `rx_tail_written` is the tail the device was last told.
    rx_next: usize,
    rx_tail: usize,
    rx_tail_written: usize,
    /// Inside a frame that spans descriptors: dropping up to its `EOP`.
    rx_discarding: bool,
    /// The client descriptor behind each transmit descriptor.
    tx_descs: [BufferDesc; TX_RING],
    /// At a frame's first transmit descriptor: how many it has.
    tx_frame_len: [u8; TX_RING],
    /// The oldest transmit descriptor not yet reclaimed, the next one to
    /// fill, and the tail the device was last told.
    tx_clean: usize,
    tx_tail: usize,
    tx_tail_written: usize,
    /// Client transmit descriptors the driver holds (in the ring or in the
    /// assembler).
    tx_held: usize,
    /// Collects `tx_active` descriptors into frames.
    assembler: FrameAssembler,
    mac: [u8; 6],
    link_up: bool,
    /// The link changed since [`Driver::take_link_change`] last looked.
    link_changed: bool,
    stats: Stats,
    events: DeviceEvents,
    /// A restarted driver that sent its restart marker and waits for the
    /// client's Attach (`net-protocol`, "Starting over").
    awaiting_attach: bool,
    /// The restart marker is on `rx_active`.
    marker_sent: bool,
}

/// The station address in `RAL0`/`RAH0` (bytes in wire order: `RAL0` low
/// byte first).
fn mac_from(ral: u32, rah: u32) -> [u8; 6] {
    let (l, h) = (ral.to_le_bytes(), rah.to_le_bytes());
    [l[0], l[1], l[2], l[3], h[0], h[1]]
}

/// Whether `mac` can be the node's address: not all zero, not multicast
/// (the I/G bit, bit 0 of the first byte; broadcast is multicast too).
fn usable_mac(mac: &[u8; 6]) -> bool {
    mac.iter().any(|&b| b != 0) && mac[0] & 1 == 0
}

impl<'a, R: Regs> Driver<'a, R> {
    /// Brings the device up, in the order of the datasheet's software
    /// initialisation sequence ("Software Initialization Sequence"):
    ///
    /// 1. interrupts masked (`IMC`, "Interrupts During Initialization"),
    ///    global reset (`CTRL.RST`), waited for, at most [`RESET_POLLS`] reads; interrupts
    ///    masked again and `ICR` cleared;
    /// 2. the MAC address the reset loaded from the EEPROM into
    ///    `RAL0`/`RAH0`, refused if all zero or multicast;
    /// 3. the receive filter: `RAL0`/`RAH0` with `AV`, the other 15
    ///    entries invalid, the multicast table (`MTA`) clear;
    /// 4. link up (`CTRL.SLU`, "Link Setup");
    /// 5. the receive ring and `RCTL`: enabled, broadcasts accepted, no
    ///    promiscuous mode, 2048-byte buffers, CRC stripped, legacy
    ///    descriptors, no checksum offload, no receive delay ("Receive
    ///    Initialization");
    /// 6. the transmit ring, `TIPG` and `TCTL`: enabled, short packets
    ///    padded, `CT` 0x0F, `COLD` 0x3F ("Transmit Initialization");
    /// 7. `ITR`, then `IMS`: `RXT0`, `TXDW`, `LSC`, `RXO`.
    ///
    /// Both rings start empty; the client's buffers are posted on the
    /// first [`handle`](Self::handle).
    ///
    /// # Safety
    ///
    /// `private` must be [`private::SIZE`] bytes, 4 KiB aligned and
    /// DMA-coherent, used by nothing else. The client regions must be as
    /// `net-protocol` says, at the physical addresses given: the device
    /// will write and read them.
    pub unsafe fn new(
        mut regs: R,
        private: DmaRegion,
        regions: ClientRegions,
        rx_client: SenderQueues<'a, RX_QUEUE_CAPACITY>,
        tx_client: ReceiverQueues<'a, TX_QUEUE_CAPACITY>,
    ) -> Result<Self, InitError> {
        if private.len() < private::SIZE || !private.is_aligned(4096) {
            return Err(InitError::PrivateMemory);
        }
        // 1. Reset, interrupts masked before and after.
        regs.write(regs::IMC, int::ALL);
        let ctrl = regs.read(regs::CTRL);
        regs.write(regs::CTRL, ctrl | regs::CTRL_RST);
        if !(0..RESET_POLLS).any(|_| regs.read(regs::CTRL) & regs::CTRL_RST == 0) {
            return Err(InitError::ResetTimeout);
        }
        regs.write(regs::IMC, int::ALL);
        let _ = regs.read(regs::ICR);
        // 2. The station address.
        let (ral, rah) = (regs.read(regs::RAL0), regs.read(regs::RAH0));
        let mac = mac_from(ral, rah);
        if !usable_mac(&mac) {
            return Err(InitError::BadMac(mac));
        }
        // 3. The filter: the node's address, broadcasts (RCTL below), no
        // multicast.
        regs.write(regs::RAL0, ral);
        regs.write(regs::RAH0, (rah & 0xffff) | regs::RAH_AV);
        for n in 1..regs::RAR_ENTRIES {
            regs.write(regs::rah(n), 0);
            regs.write(regs::ral(n), 0);
        }
        for i in 0..regs::MTA_ENTRIES {
            regs.write(regs::MTA + 4 * i, 0);
        }
        // 4. Link.
        let ctrl = regs.read(regs::CTRL);
        regs.write(regs::CTRL, ctrl | regs::CTRL_SLU);
        // 5. Receive.
        private.zero();
        let rx_ring = private.paddr(private::RX_RING_AT);
        program_ring(
            &mut regs,
            [regs::RDBAL, regs::RDBAH, regs::RDLEN, regs::RDH, regs::RDT],
            rx_ring,
            RX_RING * rxd::SIZE,
        );
        regs.write(regs::RDTR, 0);
        regs.write(regs::RADV, 0);
        regs.write(regs::RXCSUM, 0);
        regs.write(regs::RFCTL, 0);
        regs.write(regs::RCTL, rctl::EN | rctl::BAM | rctl::SECRC | rctl::BSIZE_2048);
        // 6. Transmit.
        let tx_ring = private.paddr(private::TX_RING_AT);
        program_ring(
            &mut regs,
            [regs::TDBAL, regs::TDBAH, regs::TDLEN, regs::TDH, regs::TDT],
            tx_ring,
            TX_RING * txd::SIZE,
        );
        regs.write(regs::TIDV, 0);
        regs.write(regs::TADV, 0);
        regs.write(regs::TIPG, regs::TIPG_VALUE);
        regs.write(
            regs::TCTL,
            tctl::EN | tctl::PSP | tctl::RTLC | tctl::CT << tctl::CT_SHIFT | tctl::COLD << tctl::COLD_SHIFT,
        );
        // 7. Interrupts.
        regs.write(regs::ITR, ITR_VALUE);
        let _ = regs.read(regs::ICR);
        regs.write(regs::IMS, IMS_CAUSES);
        let link_up = regs.read(regs::STATUS) & regs::STATUS_LU != 0;
        Ok(Driver {
            regs,
            rings: private,
            rx_client,
            tx_client,
            regions,
            rx_buffers: [0; RX_RING],
            rx_next: 0,
            rx_tail: 0,
            rx_tail_written: 0,
            rx_discarding: false,
            tx_descs: [BufferDesc::default(); TX_RING],
            tx_frame_len: [0; TX_RING],
            tx_clean: 0,
            tx_tail: 0,
            tx_tail_written: 0,
            tx_held: 0,
            assembler: FrameAssembler::default(),
            mac,
            link_up,
            link_changed: false,
            stats: Stats::default(),
            events: DeviceEvents::default(),
            awaiting_attach: false,
            marker_sent: false,
        })
    }

    /// The MAC address (always known once up; an `Option` as virtio-net's).
    pub fn mac(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }

    /// The offloads negotiated (`net-protocol`'s `OFFLOAD_*` bits): none yet.
    pub fn offloads(&self) -> u64 {
        0
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Link changes and receiver overruns.
    pub fn events(&self) -> DeviceEvents {
        self.events
    }

    /// Whether the link is up (`STATUS.LU`, read at bring-up and on every
    /// `LSC` interrupt).
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// The link state, if it changed since the last call (for the log).
    pub fn take_link_change(&mut self) -> Option<bool> {
        core::mem::take(&mut self.link_changed).then_some(self.link_up)
    }

    /// The receive filter, read back from the device (`RCTL`, `RAH0`).
    pub fn receive_filter(&self) -> ReceiveFilter {
        let rctl = self.regs.read(regs::RCTL);
        let valid = self.regs.read(regs::RAH0) & regs::RAH_AV != 0;
        let open = rctl & (rctl::UPE | rctl::MPE) != 0;
        if valid && !open && rctl & rctl::BAM != 0 {
            ReceiveFilter::NodeOnly
        } else {
            ReceiveFilter::Other { rctl }
        }
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
    /// out now. On a full `rx_active` it asks for a signal on `rx_free`,
    /// where the client returns the old driver's buffers: the next wake-up
    /// tries again.
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

    /// Does everything pending; `irq`: the device interrupted. Returns
    /// whether to notify the client (it asked and there is news for it).
    ///
    /// On an interrupt `ICR` is read and written back first: that clears
    /// the causes and lowers the line, so the caller then acknowledges the
    /// IRQ at the interrupt controller.
    pub fn handle(&mut self, irq: bool) -> bool {
        self.handle_work(irq)
    }

    /// [`handle`](Self::handle) with virtio-net's arguments: `poll` and
    /// `now` are accepted and not needed (the device moderates its own
    /// interrupts, "Interrupt moderation" above).
    pub fn handle_at(&mut self, irq: bool, _poll: bool, _now: Option<u64>) -> Handled {
        Handled { notify_client: self.handle_work(irq), poll_at: None }
    }

    fn handle_work(&mut self, irq: bool) -> bool {
        if irq {
            self.stats.irqs += 1;
            let icr = self.regs.read(regs::ICR);
            if icr != 0 {
                self.regs.write(regs::ICR, icr);
            }
            if icr & int::LSC != 0 {
                self.events.link_changes += 1;
                let up = self.regs.read(regs::STATUS) & regs::STATUS_LU != 0;
                self.link_changed |= up != self.link_up;
                self.link_up = up;
            }
            if icr & int::RXO != 0 {
                self.events.rx_overruns += 1;
            }
        }
        if self.awaiting_attach {
            return self.send_marker() && self.rx_client.active.should_signal();
        }
        let mut notify_client = false;
        loop {
            self.complete_rx();
            self.complete_tx();
            self.refill_rx();
            self.transmit();
            self.kick();
            // Evaluate both: each clears its request when it reports one.
            notify_client |= self.rx_client.active.should_signal() | self.tx_client.free.should_signal();
            if self.ready_to_sleep() {
                break;
            }
        }
        if notify_client {
            self.stats.client_notifies += 1;
        }
        notify_client
    }

    /// Writes each ring's tail once, if it moved. The descriptors are
    /// written before (the fence: no store of theirs passes the register
    /// write that hands them over).
    fn kick(&mut self) {
        if self.rx_tail != self.rx_tail_written || self.tx_tail != self.tx_tail_written {
            fence(Ordering::SeqCst);
        }
        if self.rx_tail != self.rx_tail_written {
            self.regs.write(regs::RDT, self.rx_tail as u32);
            self.rx_tail_written = self.rx_tail;
            self.stats.device_notifies += 1;
        }
        if self.tx_tail != self.tx_tail_written {
            self.regs.write(regs::TDT, self.tx_tail as u32);
            self.tx_tail_written = self.tx_tail;
            self.stats.device_notifies += 1;
        }
    }

    /// Arms the signal requests; `true` if nothing arrived meanwhile, so
    /// the PD may wait. The device needs no re-arming: its interrupts stay
    /// enabled, and a descriptor it completes after the look below raises
    /// `ICR` and the line again. The client queues are waited on as
    /// virtio-net's driver waits on them (see its `ready_to_sleep`).
    fn ready_to_sleep(&mut self) -> bool {
        let done = self.rx_done() || self.tx_done();
        let tx_pending =
            self.tx_ring_free() >= MAX_TX_SEGMENTS && Self::wait_on(&self.tx_client.active, || self.can_take_tx());
        let rx_low = self.rx_posted() < RX_REFILL_BELOW;
        let rx_pending = rx_low && Self::wait_on(&self.rx_client.free, || self.can_take_rx());
        !(done || tx_pending || rx_pending)
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

    /// Receive descriptors handed to the device (each holds a client buffer).
    fn rx_posted(&self) -> usize {
        (self.rx_tail + RX_RING - self.rx_next) % RX_RING
    }

    /// Transmit descriptors not yet reclaimed.
    fn tx_in_ring(&self) -> usize {
        (self.tx_tail + TX_RING - self.tx_clean) % TX_RING
    }

    /// Transmit descriptors the driver may still fill: one always stays
    /// empty (head equal to tail is an empty ring, 7.1.8; the same for transmit).
    fn tx_ring_free(&self) -> usize {
        TX_RING - 1 - self.tx_in_ring()
    }

    /// Whether the ring has room for a buffer and the client's `rx_active`
    /// room for the frame it will become.
    fn can_take_rx(&self) -> bool {
        let queued = self.rx_client.active.len().unwrap_or(RX_QUEUE_CAPACITY);
        let posted = self.rx_posted();
        posted < RX_RING - 1 && posted + queued < RX_QUEUE_CAPACITY
    }

    /// Whether the ring has room for a frame of the most segments, and the
    /// client's `tx_free` room for one more descriptor besides every one
    /// held (virtio-net's `can_take_tx` says why per descriptor).
    fn can_take_tx(&self) -> bool {
        let queued = self.tx_client.free.len().unwrap_or(TX_QUEUE_CAPACITY);
        self.tx_ring_free() >= MAX_TX_SEGMENTS && self.tx_held + queued < TX_QUEUE_CAPACITY
    }

    /// The receive descriptor at `index`'s byte offset in the rings.
    fn rx_desc(index: usize) -> usize {
        private::RX_RING_AT + index * rxd::SIZE
    }

    /// The transmit descriptor at `index`'s byte offset in the rings.
    fn tx_desc(index: usize) -> usize {
        private::TX_RING_AT + index * txd::SIZE
    }

    /// Whether the device completed the next receive descriptor.
    fn rx_done(&self) -> bool {
        self.rx_posted() > 0
            && self.rings.at::<AtomicU8>(Self::rx_desc(self.rx_next) + rxd::STATUS).load(Ordering::Acquire) & rxd::DD
                != 0
    }

    /// Whether the device completed the oldest frame in the transmit ring
    /// (`DD` on its last descriptor, the one with `RS`).
    fn tx_done(&self) -> bool {
        self.tx_in_ring() > 0 && self.tx_status(self.tx_last(self.tx_clean)) & txd::DD != 0
    }

    /// The last descriptor of the frame that starts at `first`.
    fn tx_last(&self, first: usize) -> usize {
        (first + usize::from(self.tx_frame_len[first]).max(1) - 1) % TX_RING
    }

    fn tx_status(&self, index: usize) -> u8 {
        self.rings.at::<AtomicU8>(Self::tx_desc(index) + txd::STA).load(Ordering::Acquire)
    }

    /// Hands received frames to the client: each descriptor with `DD`, in
    /// ring order. One without `EOP` (a frame longer than a buffer), any
    /// that follow it up to the `EOP`, and one with an error bit
    /// (`RXERRORS`) or a length outside `MIN_FRAME_LEN..=MAX_FRAME_LEN`
    /// are dropped, once per frame, and their buffers posted again.
    fn complete_rx(&mut self) {
        while self.rx_done() {
            let at = Self::rx_desc(self.rx_next);
            let status = self.rings.at::<AtomicU8>(at + rxd::STATUS).load(Ordering::Acquire);
            let errors = self.rings.at::<AtomicU8>(at + rxd::ERRORS).load(Ordering::Relaxed);
            let len = usize::from(u16::from_le(self.rings.at::<AtomicU16>(at + rxd::LENGTH).load(Ordering::Relaxed)));
            let offset = self.rx_buffers[self.rx_next];
            self.rx_next = (self.rx_next + 1) % RX_RING;
            let eop = status & rxd::EOP != 0;
            let bad = !eop || errors & rxd::RXERRORS != 0 || !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len);
            if self.rx_discarding || bad {
                if !self.rx_discarding {
                    self.stats.rx_dropped += 1;
                }
                self.rx_discarding = !eop;
                self.post_rx(offset);
                continue;
            }
            let desc = BufferDesc { offset: u64::from(offset), len: len as u32, cookie: 0 };
            match self.rx_client.active.enqueue(desc) {
                Ok(()) => {
                    self.stats.rx_frames += 1;
                    self.stats.rx_bytes += len as u64;
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

    /// Writes client buffer `offset` into the next receive descriptor:
    /// its address, and the written-back half cleared (no `DD`).
    fn post_rx(&mut self, offset: u32) {
        // Callers check for room first; a dropped frame's buffer goes into
        // the descriptor its frame just freed.
        assert!(self.rx_posted() < RX_RING - 1, "receive ring full");
        let at = Self::rx_desc(self.rx_tail);
        let paddr = self.regions.rx_data + u64::from(offset);
        self.rings.at::<AtomicU64>(at + rxd::ADDR).store(paddr.to_le(), Ordering::Relaxed);
        self.rings.at::<AtomicU64>(at + rxd::LENGTH).store(0, Ordering::Relaxed);
        self.rx_buffers[self.rx_tail] = offset;
        self.rx_tail = (self.rx_tail + 1) % RX_RING;
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

    /// Returns sent frames' descriptors to the client, oldest first, each
    /// frame once the device wrote `DD` into its last descriptor.
    fn complete_tx(&mut self) {
        while self.tx_done() {
            let first = self.tx_clean;
            let count = usize::from(self.tx_frame_len[first]).max(1);
            let status = self.tx_status(self.tx_last(first));
            let mut descs = [BufferDesc::default(); MAX_TX_SEGMENTS];
            let mut bytes = 0u64;
            for (i, d) in descs.iter_mut().enumerate().take(count) {
                *d = self.tx_descs[(first + i) % TX_RING];
                bytes += u64::from(d.len);
            }
            self.tx_clean = (first + count) % TX_RING;
            // Excess or late collisions (half duplex): not sent.
            if status & (txd::EC | txd::LC) != 0 {
                self.stats.tx_dropped += 1;
            } else {
                self.stats.tx_frames += 1;
                self.stats.tx_bytes += bytes;
            }
            self.give_back(&descs[..count]);
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

    /// Takes frames from `tx_active` and writes them into the ring.
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

    /// Writes a complete frame into the ring, or refuses it and gives its
    /// descriptors back. A frame is refused if a descriptor is bad (out of
    /// its window, empty, an offload descriptor: none are negotiated) or
    /// its length is outside `MIN_FRAME_LEN..=MAX_FRAME_LEN`.
    fn submit(&mut self, frame: TxFrame) {
        let descs = frame.descs();
        let mut ok = !frame.is_bad() && !descs.is_empty() && descs.len() <= self.tx_ring_free();
        let mut paddrs = [0u64; MAX_TX_SEGMENTS];
        let mut total = 0usize;
        for (p, desc) in paddrs.iter_mut().zip(descs) {
            match self.resolve(desc) {
                Some(paddr) => *p = paddr,
                None => ok = false,
            }
            total = total.saturating_add(desc.len as usize);
        }
        ok &= (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&total);
        if !ok {
            self.stats.tx_dropped += 1;
            self.give_back(descs);
            return;
        }
        let first = self.tx_tail;
        for (i, (desc, &paddr)) in descs.iter().zip(&paddrs).enumerate() {
            let last = i + 1 == descs.len();
            let cmd = txd::IFCS | if last { txd::EOP | txd::RS } else { 0 };
            let at = Self::tx_desc(self.tx_tail);
            // Length (bits 15:0, at most MAX_FRAME_LEN here), CSO 0, CMD,
            // STA 0 (no DD), CSS 0, special 0.
            let upper = u64::from(desc.len) | u64::from(cmd) << 24;
            self.rings.at::<AtomicU64>(at + txd::ADDR).store(paddr.to_le(), Ordering::Relaxed);
            self.rings.at::<AtomicU64>(at + txd::LENGTH).store(upper.to_le(), Ordering::Relaxed);
            self.tx_descs[self.tx_tail] = *desc;
            self.tx_frame_len[self.tx_tail] = 0;
            self.tx_tail = (self.tx_tail + 1) % TX_RING;
        }
        self.tx_frame_len[first] = descs.len() as u8;
    }

    /// The physical address of a transmit segment, if it lies within one of
    /// the client's windows and is not empty.
    fn resolve(&self, desc: &BufferDesc) -> Option<u64> {
        let (window, offset) = split_tx_offset(desc.offset)?;
        if window == TxWindow::Offload {
            return None;
        }
        let region = self.regions.tx_windows[window.index()]?;
        let end = (offset as usize).checked_add(desc.len as usize)?;
        (desc.len > 0 && end <= region.len).then_some(region.paddr + u64::from(offset))
    }
}

/// Points a descriptor ring's registers (`[base low, base high, length,
/// head, tail]`, the same five for receive and transmit) at `len` bytes at
/// `paddr`, empty: head and tail 0.
fn program_ring(regs: &mut impl Regs, [bal, bah, dlen, head, tail]: [u32; 5], paddr: u64, len: usize) {
    regs.write(bal, paddr as u32);
    regs.write(bah, (paddr >> 32) as u32);
    regs.write(dlen, len as u32);
    regs.write(head, 0);
    regs.write(tail, 0);
}
