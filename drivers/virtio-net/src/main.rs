//! virtio-net: the driver protection domain. Glue between the runtime and
//! the [`drivers_virtio_net_core`] library: finds the device's structures in the
//! configuration snapshot, brings it up, and calls [`Driver::handle`] on
//! every wake-up.
//!
//! Channels: irq 0 is the device's interrupt, channel 1 the client (which
//! may also make the driver's protected calls, [`DriverRequest`]: the
//! counters, the MAC address and the offloads negotiated). The channel
//! named `timer`, optional, is the timer PD: with it the driver reads the
//! clock (`LocalClock`) and moderates the device's interrupts, polling on
//! the timer's timeouts while frames come fast (the library's "Interrupt
//! moderation"); without it, one interrupt per used-ring batch as ever.
//! The channel named `idle`, optional, is the idle PD (`drivers/idle`):
//! while polling, the driver also polls whenever the machine would
//! otherwise idle, so that moderation costs no latency when the CPU has
//! time to spare.
#![no_std]
#![no_main]

use drivers_timer_api::{LocalClock, Timer, LATE_NS};
use drivers_virtio_net_core::driver::{self, ClientRegions, DmaWindow, Driver, ReceiveFilter};
use lib_net_protocol::{
    driver_reply, DriverError, DriverReply, DriverRequest, RX_QUEUE_CAPACITY, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_net_protocol::{OFFLOAD_RX_CSUM, OFFLOAD_TSO4, OFFLOAD_TX_CSUM};
use lib_queue::{region_size, ReceiverQueues, SenderQueues};
use lib_virtio::dma::DmaRegion;
use lib_virtio::pci::{ConfigSpace, VirtioCaps};
use lib_virtio::transport::{Mmio, Transport};
use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion, MessageInfo};

// The device's interrupt (`<pci_device irq="..." setvar_irq="device">`).
pds_runtime::channel!(DEVICE_IRQ = "device", irq);
// The demultiplexer's channel (`setvar_id="client"` on this PD's end).
pds_runtime::channel!(CLIENT = "client");
// The timer, if the description gives one (`setvar_id="timer"`, pp="true"
// on this end): the clock and the timeouts of interrupt moderation.
pds_runtime::channel!(TIMER_CHANNEL = "timer", call, optional);
static TIMER: Timer = Timer::named(&TIMER_CHANNEL);
// The idle PD, if the description gives one (`setvar_id="idle"`): while
// polling, the driver asks it to say when nothing else runs, and polls
// then (drivers/idle).
pds_runtime::channel!(IDLE = "idle", optional);

/// The BAR holding the virtio structures (QEMU: BAR 4), and how much of it
/// the description maps.
const VIRTIO_BAR: u8 = 4;
const VIRTIO_BAR_SIZE: usize = 0x4000;

pds_runtime::setvar!(pci_config, r);
pds_runtime::setvar!(virtio_bar, rw);
pds_runtime::setvar!(virtio_private, rw);
pds_runtime::setvar!(virtio_private_paddr, paddr);
pds_runtime::setvar!(rx_free, rw);
pds_runtime::setvar!(rx_active, rw);
pds_runtime::setvar!(tx_free, rw);
pds_runtime::setvar!(tx_active, rw);
pds_runtime::setvar!(rx_data_paddr, paddr);
pds_runtime::setvar!(tx_headers_paddr, paddr);
// The payload window is optional (the echo test gathers headers only).
pds_runtime::setvar!(tx_payload_paddr);
// The client's in-place window (lib_net_protocol::TxWindow::Files), optional:
// `<setvar symbol="send_from_paddr" region_paddr="R" />` and
// `<setvar symbol="send_from_size" region_size="R" />` for the region R
// that a network client names in `<client send_from="R">`. The driver
// never maps it; it only gives the device addresses inside it.
pds_runtime::setvar!(send_from_paddr);
pds_runtime::setvar!(send_from_size);

/// The read-only configuration snapshot the initialiser mapped.
struct Snapshot(MemoryRegion);

impl ConfigSpace for Snapshot {
    fn read_u8(&self, offset: usize) -> Option<u8> {
        self.0.read(offset)
    }
}

struct NetDriver {
    /// `None` if the device could not be brought up (said so in the log).
    driver: Option<Driver<'static>>,
    /// The timer's clock, if the description gives a timer.
    clock: Option<LocalClock>,
    /// The deadline of the poll timeout armed and not yet fired. One
    /// whose notification is `LATE_NS` overdue was lost
    /// (`drivers_timer_api`'s docs) and is set again: without it, polling
    /// would wait for the idle PD, which a busy machine never runs.
    poll_armed: Option<u64>,
}

/// The address of a mapped region, or a log line naming the missing setvar.
fn bring_up() -> Option<Driver<'static>> {
    // SAFETY: the description maps the 4 KiB snapshot at `pci_config`.
    let config = Snapshot(unsafe { MemoryRegion::from_var(&pci_config, 0x1000) }.or_else(|| {
        log!("error: `pci_config` is not set in the system description");
        None
    })?);
    let caps = match VirtioCaps::find(&config) {
        Ok(caps) => caps,
        Err(e) => {
            log!("error: no virtio structures in the configuration space: {e:?}");
            return None;
        }
    };
    let vendor_device = config.read_u32(0).unwrap_or(0);
    // SAFETY: the description maps VIRTIO_BAR_SIZE bytes of BAR 4, uncached.
    let bar = unsafe { Mmio::new(pds_runtime::require_setvar!(virtio_bar)? as *mut u8, VIRTIO_BAR_SIZE) };
    let dev = match Transport::new(bar, VIRTIO_BAR, &caps) {
        Ok(dev) => dev,
        Err(e) => {
            log!("error: {e:?}");
            return None;
        }
    };
    let rx_data = pds_runtime::require_setvar!(rx_data_paddr)?;
    let send_from = send_from_window();
    let regions = ClientRegions {
        rx_data,
        tx_windows: driver::tx_windows(
            pds_runtime::require_setvar!(tx_headers_paddr)?,
            rx_data,
            tx_payload_paddr.get(),
            send_from,
        ),
    };
    let queue = |v: &pds_runtime::Var, name| pds_runtime::setvar_required(v, name).map(|a| a as *mut u8);
    let (rxf, rxa, txf, txa) = (
        queue(&rx_free, "rx_free")?,
        queue(&rx_active, "rx_active")?,
        queue(&tx_free, "tx_free")?,
        queue(&tx_active, "tx_active")?,
    );
    const _: () = assert!(region_size(RX_QUEUE_CAPACITY) <= 0x2000 && region_size(TX_QUEUE_CAPACITY) <= 0x3000);
    // SAFETY: the description maps each queue region (at least
    // `region_size` bytes, page-aligned, read-write) for the PD's life; this
    // PD touches them only through these handles. Receive descriptors point
    // into `rx_data`; transmit descriptors into the transmit address space.
    let (rx_client, tx_client) = unsafe {
        (SenderQueues::new(rxf, rxa, lib_net_protocol::RX_DATA_SIZE), ReceiverQueues::new(txf, txa, TX_SPACE_LEN))
    };
    let private_paddr = pds_runtime::require_setvar!(virtio_private_paddr)?;
    let private_vaddr = pds_runtime::require_setvar!(virtio_private)?;
    // SAFETY: `virtio_private` is a private, cached (x86 DMA is coherent),
    // physically contiguous region of private::SIZE bytes, 4 KiB aligned,
    // mapped read-write only here for the PD's life, whose physical base is
    // `virtio_private_paddr`, and used only through this handle.
    let private = unsafe { DmaRegion::new(private_vaddr as usize, private_paddr, driver::private::SIZE) };
    // SAFETY: the private region is as above; the client regions are laid
    // out as net-protocol says, at the physical addresses the description
    // gave.
    match unsafe { Driver::new(dev, private, regions, rx_client, tx_client) } {
        Ok(d) => {
            let mac = d.mac().unwrap_or_default();
            log!(
                "virtio-net {:04x}:{:04x} up: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {} rx / {} tx descriptors",
                vendor_device & 0xffff,
                vendor_device >> 16,
                mac[0],
                mac[1],
                mac[2],
                mac[3],
                mac[4],
                mac[5],
                driver::QUEUE_SIZE,
                driver::QUEUE_SIZE
            );
            let (offered, accepted) = d.features();
            let o = d.offloads();
            log!(
                "features offered {offered:#x}, accepted {accepted:#x}: offloads tx-csum {} tso4 {} rx-csum {}",
                o & OFFLOAD_TX_CSUM != 0,
                o & OFFLOAD_TSO4 != 0,
                o & OFFLOAD_RX_CSUM != 0
            );
            if let Some(w) = send_from {
                log!("in-place transmit window (send_from): {:#x} bytes at physical {:#x}", w.len, w.paddr);
            }
            Some(d)
        }
        Err(e) => {
            log!("error: bringing the device up: {e:?}");
            None
        }
    }
}

/// The `send_from` window, if the description set both its variables; one
/// without the other (or a size that is no window) is logged and ignored,
/// so segments in that window are refused.
fn send_from_window() -> Option<DmaWindow> {
    match (send_from_paddr.get(), send_from_size.get()) {
        (None, None) => None,
        (Some(paddr), Some(size)) => match usize::try_from(size) {
            Ok(len) if len > 0 && size <= 1 << lib_net_protocol::TX_WINDOW_SHIFT => Some(DmaWindow { paddr, len }),
            _ => {
                log!("error: send_from_size {size:#x} is not a transmit window's size: no in-place transmit");
                None
            }
        },
        _ => {
            log!("error: the description sets one of send_from_paddr and send_from_size: set both (or neither)");
            None
        }
    }
}

/// Says what the device lets through.
fn log_filter(filter: ReceiveFilter) {
    match filter {
        ReceiveFilter::NodeOnly => log!("receive filter: promiscuous mode off: the device passes frames to the node's MAC and broadcasts only"),
        ReceiveFilter::Pending => {}
        ReceiveFilter::Refused(code) => log!("warning: receive filter: the device refused promiscuous off (code {code}); the demultiplexer drops frames not for the node"),
        ReceiveFilter::Unavailable => log!("receive filter: the device has no receive-mode control; it stays promiscuous and the demultiplexer drops frames not for the node"),
    }
}

impl Handler for NetDriver {
    /// After a restart the driver serves once its client attached again
    /// (`DriverRequest::Attach`).
    const SERVING_AFTER_INIT: bool = false;

    fn init() -> Self {
        let mut driver = bring_up();
        if let Some(d) = driver.as_mut() {
            if pds_runtime::restarts() > 0 {
                // net-protocol, "Starting over": the bring-up reset the
                // device; the client must start over on the queues.
                log!("restarted: the device was reset; waiting for the client to attach again");
                d.restarted();
                CLIENT.get().notify();
                // The previous life may have died with the interrupt taken
                // and not acknowledged: the line would stay masked.
                DEVICE_IRQ.get().irq_ack();
            } else if d.handle(false) {
                // Arms the signal requests: the client's first buffers wake us.
                CLIENT.get().notify();
            }
        }
        match driver.as_mut().map(|d| (d.take_filter_change(), d.receive_filter())) {
            Some((_, ReceiveFilter::Unavailable)) => log_filter(ReceiveFilter::Unavailable),
            Some((Some(ReceiveFilter::NodeOnly | ReceiveFilter::Refused(_)), filter)) => log_filter(filter),
            _ => {}
        }
        let clock = TIMER_CHANNEL.get_optional().and_then(|_| TIMER.local_clock());
        match clock {
            Some(_) => log!(
                "interrupt moderation: polling every {} us while interrupts come less than {} us apart",
                driver::POLL_NS / 1000,
                driver::BUSY_GAP_NS / 1000
            ),
            None => log!("no timer: an interrupt per batch of frames, no moderation"),
        }
        NetDriver { driver, clock, poll_armed: None }
    }

    fn notified(&mut self, channels: ChannelSet) {
        let irq = channels.contains(DEVICE_IRQ.get());
        let timer = TIMER_CHANNEL.get_optional().is_some_and(|t| channels.contains(t));
        if timer {
            self.poll_armed = None;
        }
        let poll = timer || IDLE.get_optional().is_some_and(|i| channels.contains(i));
        if let Some(d) = self.driver.as_mut() {
            let now = self.clock.as_mut().map(LocalClock::now);
            let handled = d.handle_at(irq, poll, now);
            if handled.notify_client {
                CLIENT.get().deferred_notify();
            }
            // One timeout at a time: an earlier one armed still wakes us in
            // time, and a poll that finds nothing ends polling.
            if let (Some(_), Some(idle)) = (handled.poll_at, IDLE.get_optional()) {
                idle.deferred_notify();
            }
            let lost = |armed: u64| now.is_some_and(|now| now >= armed.saturating_add(LATE_NS));
            if let Some(at) = handled.poll_at.filter(|_| self.poll_armed.is_none_or(lost)) {
                if self.poll_armed.is_some() {
                    TIMER.cancel_all();
                }
                self.poll_armed = TIMER.set_timeout(at).is_ok().then_some(at);
                // Without a poll to come, interrupts must be armed again.
                if self.poll_armed.is_none() && d.stop_polling() {
                    CLIENT.get().deferred_notify();
                }
            }
        }
        if let Some(filter) = self.driver.as_mut().and_then(Driver::take_filter_change) {
            log_filter(filter);
        }
        if irq {
            // The ISR read in `handle` lowered the line; let it fire again.
            DEVICE_IRQ.get().irq_ack();
        }
    }

    fn protected(&mut self, _channel: Channel, msg: MessageInfo) -> MessageInfo {
        let result = match DriverRequest::from_registers(msg) {
            Ok(DriverRequest::Mac) => {
                self.driver.as_ref().and_then(Driver::mac).map(DriverReply::Mac).ok_or(DriverError::NoMac)
            }
            Ok(DriverRequest::Stats) => {
                let stats = self.driver.as_ref().map(Driver::stats).unwrap_or_default();
                let (started, polls) = self.driver.as_ref().map_or((0, 0), Driver::moderation);
                log!("stats: {stats} polling_started={started} polls_with_work={polls} wakes={}", pds_runtime::wakes());
                Ok(DriverReply::Stats(stats))
            }
            Ok(DriverRequest::Offloads) => Ok(DriverReply::Offloads(self.driver.as_ref().map_or(0, Driver::offloads))),
            Ok(DriverRequest::Attach) => {
                if let Some(d) = self.driver.as_mut() {
                    d.attach();
                    log!("the client attached again: serving the queues");
                    pds_runtime::serving();
                }
                Ok(DriverReply::Attached)
            }
            Err(bad) => Err(bad.into()),
        };
        driver_reply(&result)
    }
}

pds_runtime::protection_domain!(NetDriver);
