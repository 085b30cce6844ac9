//! virtio-blk: the block driver PD for a modern virtio-blk PCI device.
//!
//! It serves one client through the `blk-protocol` queues, and the device
//! moves data straight to and from the client's `blk_data` region (the
//! driver never touches the data). The device logic is in
//! `virtio-blk-core`; this is the glue: finding the regions the description
//! mapped, and the event loop's two events.
//!
//! Description (see `tests/systems/blk.system`):
//!
//! - `<pci_device vendor="0x1af4" device="0x1042" irq="1" config_vaddr=...
//!   setvar_config="pci_config">` with `<bar index="4" ...
//!   setvar_vaddr="virtio_bar"/>` of [`BAR_SIZE`] bytes;
//! - `blk_virtio`, the driver's own DMA region for its virtqueue, mapped
//!   (`setvar_vaddr="virtio_queue"`) with `<setvar symbol="virtio_queue_paddr"
//!   region_paddr="blk_virtio"/>`;
//! - `blk_request`, `blk_response`, `blk_info` mapped read-write
//!   (`setvar_vaddr` of those names) and `<setvar symbol="blk_data_paddr"
//!   region_paddr="blk_data"/>`;
//! - the client's window of the disk, `<setvar symbol="client_sectors"
//!   sectors="FIRST-LAST"/>` (required: the builder refuses a description
//!   without it): the only sectors the client may read or write. Requests
//!   outside it are answered `OutsideWindow`, counted, and logged (the
//!   1st, 2nd, 4th, 8th, ... of them);
//! - the channel named `client` to the client.
//!
//! # Interrupts
//!
//! The device's legacy INTx line is level-triggered. On an interrupt the
//! driver reads the ISR status register, which de-asserts the line
//! (virtio 1.1 §4.1.4.5), then harvests the used ring, and only then
//! acknowledges the IRQ: a completion that lands after the harvest raises
//! the line again and is delivered as a new interrupt.
#![no_std]
#![no_main]

use drivers_virtio_blk_core::driver::{log_refusals, BlkDevice, Stats, QUEUE_MEMORY};
use lib_blk_protocol::{Info, RequestConsumer, ResponseProducer, Window, DATA_REGION_SIZE, SECTOR_SIZE};
use lib_virtio::dma::DmaRegion;
use lib_virtio::pci::VirtioCaps;
use lib_virtio::transport::{isr, Mmio, Notifier, Transport};
use pds_runtime::{log, ChannelSet, Handler};

pds_runtime::setvar!(pci_config, r);
pds_runtime::setvar!(virtio_bar, rw);
pds_runtime::setvar!(virtio_queue, rw);
pds_runtime::setvar!(virtio_queue_paddr, paddr);
pds_runtime::setvar!(blk_request, rw);
pds_runtime::setvar!(blk_response, rw);
pds_runtime::setvar!(blk_info, rw);
pds_runtime::setvar!(blk_data_paddr, paddr);
// The client's region may be larger than the protocol's default: the
// description says how large (`<setvar symbol="blk_data_size" region_size="blk_data"/>`).
pds_runtime::setvar!(blk_data_size);
// The sectors the client may use (`<setvar symbol="client_sectors" sectors="FIRST-LAST"/>`).
pds_runtime::setvar!(client_sectors, sectors);

// The client's channel (`setvar_id="client"` on this PD's end).
pds_runtime::channel!(CLIENT = "client");
// The device's interrupt (`<pci_device irq="..." setvar_irq="device">`).
pds_runtime::channel!(DEVICE_IRQ = "device", irq);

/// The BAR holding the virtio structures, and how much of it is mapped.
const BAR_INDEX: u8 = 4;
const BAR_SIZE: usize = 0x4000;
/// Bytes of the configuration space snapshot.
const CONFIG_SIZE: usize = 0x1000;
/// Bytes of the `blk_virtio` region.
const QUEUE_REGION_SIZE: usize = 0x4000;
const _: () = assert!(QUEUE_MEMORY <= QUEUE_REGION_SIZE);

/// A device that is up, with the client's queues.
struct Running {
    transport: Transport,
    device: BlkDevice,
    notifier: Notifier,
    requests: RequestConsumer<'static>,
    responses: ResponseProducer<'static>,
    /// Counters as last logged.
    logged: Stats,
}

/// The PD: `None` if bring-up failed (logged), in which case the client is
/// never told that the disk is ready.
struct Driver(Option<Running>);

/// Reads a setvar the description must set.
fn start() -> Option<Running> {
    let config = pds_runtime::require_setvar!(pci_config)?;
    let bar = pds_runtime::require_setvar!(virtio_bar)?;
    let queue_vaddr = pds_runtime::require_setvar!(virtio_queue)?;
    let queue_paddr = pds_runtime::require_setvar!(virtio_queue_paddr)?;
    let request_vaddr = pds_runtime::require_setvar!(blk_request)?;
    let response_vaddr = pds_runtime::require_setvar!(blk_response)?;
    let info_vaddr = pds_runtime::require_setvar!(blk_info)?;
    let data_paddr = pds_runtime::require_setvar!(blk_data_paddr)?;
    let data_size = blk_data_size.get().map_or(DATA_REGION_SIZE, |size| size as usize);
    // The builder refuses a description without the window; an unset one
    // here (a program not built by it) gives the client nothing.
    let window = client_sectors.get().map_or(Window { start: 0, end: 0 }, |(start, end)| Window { start, end });

    // SAFETY: the initialiser maps a read-only snapshot of the device's
    // configuration space, CONFIG_SIZE bytes, at `pci_config` for the PD's
    // life, and nothing writes it.
    let config = unsafe { core::slice::from_raw_parts(config as *const u8, CONFIG_SIZE) };
    let caps = match VirtioCaps::find(config) {
        Ok(caps) => caps,
        Err(e) => {
            log!("error: not a modern virtio device: {e:?}");
            return None;
        }
    };
    // SAFETY: the description maps BAR_SIZE bytes of BAR 4, uncached, at
    // `virtio_bar`; they are the device's registers.
    let bar = unsafe { Mmio::new(bar as *mut u8, BAR_SIZE) };
    let transport = Transport::new(bar, BAR_INDEX, &caps).inspect_err(|e| log!("error: {e:?}")).ok()?;
    // SAFETY: `blk_virtio` is QUEUE_REGION_SIZE bytes, mapped read-write at
    // `virtio_queue` for the PD's life, physically contiguous at
    // `virtio_queue_paddr`, and used only through this handle.
    let queue_memory = unsafe { DmaRegion::new(queue_vaddr as usize, queue_paddr, QUEUE_REGION_SIZE) };
    let (device, notifier) = match BlkDevice::init(&transport, queue_memory, data_paddr, data_size, window) {
        Ok(up) => up,
        Err(e) => {
            log!("error: device bring-up failed: {e:?}");
            return None;
        }
    };
    // SAFETY: `blk_request` and `blk_response` are page-sized regions
    // mapped read-write for the PD's life and used only through these
    // handles; the client may write them at any time, which the queues
    // tolerate.
    let (requests, responses) = unsafe {
        (RequestConsumer::new(request_vaddr as *mut u8, ()), ResponseProducer::new(response_vaddr as *mut u8))
    };
    // SAFETY: `blk_info` is a page mapped read-write for the PD's life.
    let info = unsafe { Info::at(info_vaddr as *mut u8) };

    let disk = device.disk();
    let window = device.window();
    log!(
        "disk: {} sectors ({} KiB){}, {} requests in flight, up to {} KiB each",
        disk.capacity,
        disk.capacity * SECTOR_SIZE as u64 / 1024,
        if disk.read_only { ", read-only" } else { "" },
        device.slots(),
        disk.max_request_sectors as usize * SECTOR_SIZE / 1024
    );
    let (given_start, given_end) = client_sectors.get().unwrap_or((0, 0));
    log!(
        "client window: sectors {}..{} of the disk ({} KiB; the description gives {given_start}..{given_end}); requests outside it are refused",
        window.start,
        window.end,
        window.sectors() * SECTOR_SIZE as u64 / 1024,
    );
    // This life of the driver (lib-blk-protocol, "Starting over"): one
    // more than the last the region holds (0 in a fresh region). After a
    // restart the device was reset above (nothing of the previous life is
    // in flight) and the client's requests count from its Sync.
    let epoch = info.epoch().wrapping_add(1);
    let mut running = Running { transport, device, notifier, requests, responses, logged: Stats::default() };
    if pds_runtime::restarts() > 0 {
        running.device.restarted(epoch);
        // The previous life may have died with the interrupt taken and
        // not acknowledged: the line would stay masked.
        DEVICE_IRQ.get().irq_ack();
        log!("restarted (life {epoch}): the device was reset; requests up to the client's Sync are dropped");
    }
    // Ask for the client's first signal before telling it the disk is ready.
    running.service();
    info.publish(disk, window, epoch);
    CLIENT.get().notify();
    Some(running)
}

impl Running {
    /// One batch: everything pending on both sides, then at most one
    /// notification each way.
    fn service(&mut self) {
        let work = self.device.service(&mut self.requests, &mut self.responses);
        if work.notify_device {
            self.notifier.notify();
        }
        if work.signal_client {
            CLIENT.get().notify();
        }
        let stats = self.device.stats;
        if log_refusals(self.logged.outside_window, stats.outside_window) {
            if let Some(r) = self.device.last_outside_window {
                let window = self.device.window();
                log!(
                    "refused a request outside the client's window: sectors {}..{} (window {}..{}); {} refused so far",
                    r.sector,
                    r.sector.saturating_add(u64::from(r.count)),
                    window.start,
                    window.end,
                    stats.outside_window
                );
            }
        }
        if stats.dropped_after_restart != self.logged.dropped_after_restart && self.device.synced() {
            log!("the client synced: {} requests of its earlier view dropped", stats.dropped_after_restart);
        }
        let trouble = |s: &Stats| s.device_errors + s.bogus_completions + s.lost_responses + s.corrupt_queue;
        if trouble(&stats) != trouble(&self.logged) {
            log!("warning: {stats:?}");
        }
        self.logged = stats;
    }
}

impl Handler for Driver {
    fn init() -> Self {
        Driver(start())
    }

    fn notified(&mut self, channels: ChannelSet) {
        let Some(driver) = &mut self.0 else { return };
        let interrupt = channels.contains(DEVICE_IRQ.get());
        if interrupt && driver.transport.read_isr() & isr::CONFIG != 0 {
            log!("device configuration changed (capacity is not re-read)");
        }
        driver.service();
        if interrupt {
            DEVICE_IRQ.get().irq_ack();
        }
    }
}

pds_runtime::protection_domain!(Driver);
