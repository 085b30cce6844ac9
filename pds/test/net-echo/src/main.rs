//! net-echo: a client of the network driver that sends every frame it
//! receives back, unchanged, without copying its payload.
//!
//! Each frame goes out as two segments (`net-protocol` gather): its first
//! 14 bytes (the Ethernet header) copied into a slot of `tx_headers`, and
//! the rest sent in place from the receive buffer. The receive buffer goes
//! back to the driver only when its transmission is complete, i.e. when the
//! payload descriptor returns on `tx_free`.
//!
//! A frame with EtherType [`CONTROL_ETHERTYPE`] whose payload starts with
//! [`STATS_REQUEST`] is not echoed: it makes this PD fetch the driver's
//! statistics (which the driver logs) and log its own.
//!
//! Channel 0 is the driver.
#![no_std]
#![no_main]

use lib_net_protocol::{
    tx_offset, Driver, TxWindow, RX_BUFFERS, RX_BUFFER_SIZE, RX_DATA_SIZE, RX_QUEUE_CAPACITY, TX_HEADERS_SIZE, TX_MORE,
    TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_queue::{BufferDesc, ReceiverQueues, SenderQueues};
use pds_runtime::{log, ChannelSet, Handler, MemoryRegion};

// The NIC driver (`setvar_id="driver"`).
pds_runtime::channel!(DRIVER = "driver");

/// EtherType of control frames (IEEE 802 local experimental 1).
const CONTROL_ETHERTYPE: u16 = 0x88b5;
/// Payload of a control frame asking for statistics.
const STATS_REQUEST: &[u8] = b"net-echo stats";

/// Bytes of an Ethernet header: the part copied.
const HEADER_LEN: usize = 14;
/// Bytes per slot of `tx_headers` (a cache line).
const HEADER_SLOT: usize = 64;
const HEADER_SLOTS: usize = TX_HEADERS_SIZE / HEADER_SLOT;
const _: () = assert!(HEADER_SLOTS >= RX_BUFFERS, "every received buffer can be in flight at once");

pds_runtime::setvar!(rx_data);
pds_runtime::setvar!(rx_free);
pds_runtime::setvar!(rx_active);
pds_runtime::setvar!(tx_headers);
pds_runtime::setvar!(tx_free);
pds_runtime::setvar!(tx_active);

struct Echo {
    /// Frames come in on `active`; buffers go back on `free`.
    rx: ReceiverQueues<'static, RX_QUEUE_CAPACITY>,
    /// Frames go out on `active`; sent descriptors come back on `free`.
    tx: SenderQueues<'static, TX_QUEUE_CAPACITY>,
    rx_data: MemoryRegion,
    headers: MemoryRegion,
    /// Stack of free header slots.
    free_slots: [u16; HEADER_SLOTS],
    free_count: usize,
    /// Frames sent whose descriptors have not come back.
    in_flight: usize,
    echoed_frames: u64,
    echoed_bytes: u64,
}

impl Echo {
    /// Returns a receive buffer to the driver.
    fn return_buffer(&mut self, offset: u64) {
        let desc = BufferDesc { offset, len: RX_BUFFER_SIZE as u32, cookie: 0 };
        // rx_free holds every buffer: it cannot be full.
        if self.rx.free.enqueue(desc).is_err() {
            log!("error: rx_free refused buffer {offset:#x}");
        }
    }

    /// Takes back sent frames' descriptors: header slots and receive buffers.
    fn reclaim(&mut self) {
        while let Ok(Some(desc)) = self.tx.free.dequeue() {
            match lib_net_protocol::split_tx_offset(desc.offset) {
                Some((TxWindow::Headers, offset)) => {
                    self.free_slots[self.free_count] = (offset as usize / HEADER_SLOT) as u16;
                    self.free_count += 1;
                }
                Some((TxWindow::Rx, _)) => {
                    // The payload's cookie is its receive buffer's index.
                    self.return_buffer(u64::from(desc.cookie) * RX_BUFFER_SIZE as u64);
                    self.in_flight -= 1;
                }
                _ => log!("error: unexpected descriptor back on tx_free: {desc:?}"),
            }
        }
    }

    /// Whether another frame could be echoed now.
    fn can_echo(&self) -> bool {
        let queued = self.tx.active.len().unwrap_or(TX_QUEUE_CAPACITY);
        self.free_count > 0 && queued + 2 <= TX_QUEUE_CAPACITY
    }

    /// Sends received frames back.
    fn echo(&mut self) {
        while self.can_echo() {
            let frame = match self.rx.active.dequeue() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    log!("error: rx_active: {e}");
                    break;
                }
            };
            let mut header = [0u8; HEADER_LEN];
            self.rx_data.copy_out(frame.offset as usize, &mut header);
            if u16::from_be_bytes([header[12], header[13]]) == CONTROL_ETHERTYPE {
                self.control(frame);
                continue;
            }
            if (frame.len as usize) <= HEADER_LEN {
                self.return_buffer(frame.offset);
                continue;
            }
            self.free_count -= 1;
            let slot = usize::from(self.free_slots[self.free_count]);
            self.headers.copy_in(slot * HEADER_SLOT, &header);
            let descs = [
                BufferDesc {
                    offset: tx_offset(TxWindow::Headers, (slot * HEADER_SLOT) as u32),
                    len: HEADER_LEN as u32,
                    cookie: TX_MORE | slot as u32,
                },
                BufferDesc {
                    offset: tx_offset(TxWindow::Rx, frame.offset as u32 + HEADER_LEN as u32),
                    len: frame.len - HEADER_LEN as u32,
                    cookie: (frame.offset / RX_BUFFER_SIZE as u64) as u32,
                },
            ];
            // Both in one batch: the driver sees the whole frame at once.
            match self.tx.active.enqueue_batch(&descs) {
                Ok(2) => {
                    self.in_flight += 1;
                    self.echoed_frames += 1;
                    self.echoed_bytes += u64::from(frame.len);
                }
                other => log!("error: tx_active refused a frame ({other:?})"),
            }
        }
    }

    /// Handles a control frame, then returns its buffer.
    fn control(&mut self, frame: BufferDesc) {
        let mut payload = [0u8; STATS_REQUEST.len()];
        self.rx_data.copy_out(frame.offset as usize + HEADER_LEN, &mut payload);
        if payload == STATS_REQUEST {
            let stats = Driver::new(DRIVER.get()).stats().unwrap_or_else(|e| {
                log!("error: the driver refused the stats call ({e:?})");
                Default::default()
            });
            log!(
                "stats: echoed {} frames, {} bytes; {} in flight; driver rx {} tx {}",
                self.echoed_frames,
                self.echoed_bytes,
                self.in_flight,
                stats.rx_frames,
                stats.tx_frames
            );
        }
        self.return_buffer(frame.offset);
    }

    /// Everything pending, then arm the signal requests and wait.
    fn run(&mut self) {
        loop {
            self.reclaim();
            self.echo();
            // Evaluate both: each clears its request when it reports one.
            if self.tx.active.should_signal() | self.rx.free.should_signal() {
                DRIVER.get().notify();
            }
            let frames_waiting = self.can_echo() && self.rx.active.request_signal_if_empty() == Ok(false);
            let sent_waiting = self.in_flight > 0 && self.tx.free.request_signal_if_empty() == Ok(false);
            if !frames_waiting && !sent_waiting {
                break;
            }
        }
    }
}

impl Handler for Echo {
    fn init() -> Self {
        // SAFETY: the description maps each queue region (region_size bytes,
        // page-aligned, read-write) for the PD's life, and rx_data (read)
        // and tx_headers (read-write) at their sizes in net-protocol; this PD
        // touches them only through these handles.
        let (rx, tx, rx_data_region, headers) = unsafe {
            let addr = |v: &pds_runtime::Var, name: &str| {
                v.get().unwrap_or_else(|| panic!("`{name}` is not set in the system description")) as *mut u8
            };
            (
                ReceiverQueues::new(addr(&rx_free, "rx_free"), addr(&rx_active, "rx_active"), RX_DATA_SIZE),
                SenderQueues::new(addr(&tx_free, "tx_free"), addr(&tx_active, "tx_active"), TX_SPACE_LEN),
                MemoryRegion::new(addr(&rx_data, "rx_data") as usize, RX_DATA_SIZE),
                MemoryRegion::new(addr(&tx_headers, "tx_headers") as usize, TX_HEADERS_SIZE),
            )
        };
        let mut echo = Echo {
            rx,
            tx,
            rx_data: rx_data_region,
            headers,
            free_slots: core::array::from_fn(|i| i as u16),
            free_count: HEADER_SLOTS,
            in_flight: 0,
            echoed_frames: 0,
            echoed_bytes: 0,
        };
        // The client owns every receive buffer at the start: lend them all.
        for i in 0..RX_BUFFERS {
            echo.return_buffer((i * RX_BUFFER_SIZE) as u64);
        }
        echo.run();
        log!("ready: {} receive buffers lent to the driver", RX_BUFFERS);
        echo
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(DRIVER.get()) {
            self.run();
        }
    }
}

pds_runtime::protection_domain!(Echo);
