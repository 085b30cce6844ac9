//! e1000e: the driver protection domain of the Intel 82574L (QEMU's
//! `-device e1000e`, PCI 8086:10d3). Glue between the runtime and the
//! [`drivers_e1000e_core`] library, shaped as virtio-net's PD
//! (`drivers/virtio-net/src/main.rs`): brings the device up through its
//! BAR 0 and calls [`Driver::handle_at`] on every wake-up.
//!
//! Channels: the device's interrupt (the legacy INTx line, named
//! `device`), and the client (`client`, which may also make the driver's
//! protected calls, [`DriverRequest`]: the counters, the MAC address, the
//! offloads, none here, and Attach after a restart). No timer and no idle
//! PD: the device moderates its own interrupts (`ITR`, the library's
//! "Interrupt moderation"), so the driver never polls.
#![no_std]
#![no_main]

use drivers_e1000e_core::driver::{self, ClientRegions, DmaWindow, Driver, ReceiveFilter};
use drivers_e1000e_core::regs::{Mmio, BAR0_SIZE};
use lib_net_protocol::{
    driver_reply, DriverError, DriverReply, DriverRequest, RX_QUEUE_CAPACITY, TX_QUEUE_CAPACITY, TX_SPACE_LEN,
};
use lib_queue::{region_size, ReceiverQueues, SenderQueues};
use lib_virtio::dma::DmaRegion;
use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion, MessageInfo};

// The device's interrupt (`<pci_device irq="..." setvar_irq="device">`).
pds_runtime::channel!(DEVICE_IRQ = "device", irq);
// The demultiplexer's channel (`setvar_id="client"` on this PD's end).
pds_runtime::channel!(CLIENT = "client");

pds_runtime::setvar!(pci_config, r);
// BAR 0, mapped uncached (`<bar index="0" ... setvar_vaddr="e1000e_bar">`),
// at least `BAR0_SIZE` bytes of it.
pds_runtime::setvar!(e1000e_bar, rw);
// The private DMA region: the two descriptor rings (`driver::private`).
pds_runtime::setvar!(e1000e_private, rw);
pds_runtime::setvar!(e1000e_private_paddr, paddr);
pds_runtime::setvar!(rx_free, rw);
pds_runtime::setvar!(rx_active, rw);
pds_runtime::setvar!(tx_free, rw);
pds_runtime::setvar!(tx_active, rw);
pds_runtime::setvar!(rx_data_paddr, paddr);
pds_runtime::setvar!(tx_headers_paddr, paddr);
// The payload window is optional, as for virtio-net.
pds_runtime::setvar!(tx_payload_paddr);
// The client's in-place window (lib_net_protocol::TxWindow::Files),
// optional, as for virtio-net: the driver never maps it.
pds_runtime::setvar!(send_from_paddr);
pds_runtime::setvar!(send_from_size);

type E1000e = Driver<'static, Mmio>;

struct NetDriver {
    /// `None` if the device could not be brought up (said so in the log).
    driver: Option<E1000e>,
}

fn bring_up() -> Option<E1000e> {
    // SAFETY: the description maps the 4 KiB snapshot at `pci_config`.
    let config = unsafe { MemoryRegion::from_var(&pci_config, 0x1000) }.or_else(|| {
        log!("error: `pci_config` is not set in the system description");
        None
    })?;
    let vendor_device: u32 = config.read(0).unwrap_or(0);
    let bar = pds_runtime::require_setvar!(e1000e_bar)?;
    // SAFETY: the description maps BAR0_SIZE bytes of BAR 0 at `e1000e_bar`,
    // uncached and read-write (the builder maps a `<bar>` so, and the
    // initialiser checks the BAR is that large), for the PD's life; only
    // this handle touches it.
    let regs = unsafe { Mmio::new(bar as *mut u8, BAR0_SIZE) };
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
    let private_paddr = pds_runtime::require_setvar!(e1000e_private_paddr)?;
    let private_vaddr = pds_runtime::require_setvar!(e1000e_private)?;
    // SAFETY: `e1000e_private` is a private, cached (x86 DMA is coherent),
    // physically contiguous region of private::SIZE bytes, 4 KiB aligned,
    // mapped read-write only here for the PD's life, whose physical base is
    // `e1000e_private_paddr`, and used only through this handle.
    let private = unsafe { DmaRegion::new(private_vaddr as usize, private_paddr, driver::private::SIZE) };
    // SAFETY: the private region is as above; the client regions are laid
    // out as net-protocol says, at the physical addresses the description
    // gave (and the only ones the device's IOSpace holds).
    match unsafe { Driver::new(regs, private, regions, rx_client, tx_client) } {
        Ok(d) => {
            let mac = d.mac().unwrap_or_default();
            log!(
                "e1000e {:04x}:{:04x} up: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {} rx / {} tx descriptors",
                vendor_device & 0xffff,
                vendor_device >> 16,
                mac[0],
                mac[1],
                mac[2],
                mac[3],
                mac[4],
                mac[5],
                driver::RX_RING,
                driver::TX_RING
            );
            // A line of its own, as later changes are: the debug console
            // interleaves long lines of PDs that print at once.
            log!("{}", link_state(d.link_up()));
            log!(
                "offloads: none (no checksum or segmentation offload); interrupts at least {} us apart (ITR)",
                driver::ITR_INTERVAL_NS / 1000
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

fn link_state(up: bool) -> &'static str {
    if up {
        "link up"
    } else {
        "link down"
    }
}

/// Says what the device lets through (read back from its registers).
fn log_filter(filter: ReceiveFilter) {
    match filter {
        ReceiveFilter::NodeOnly => log!("receive filter: promiscuous mode off: the device passes frames to the node's MAC and broadcasts only"),
        ReceiveFilter::Other { rctl } => log!("warning: receive filter: RCTL {rctl:#x} is not the node-only filter; the demultiplexer drops frames not for the node"),
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
            log_filter(d.receive_filter());
        }
        NetDriver { driver }
    }

    fn notified(&mut self, channels: ChannelSet) {
        let irq = channels.contains(DEVICE_IRQ.get());
        if let Some(d) = self.driver.as_mut() {
            // The device moderates itself: no poll, no clock.
            if d.handle_at(irq, false, None).notify_client {
                CLIENT.get().deferred_notify();
            }
            if let Some(up) = d.take_link_change() {
                log!("{}", link_state(up));
            }
        }
        if irq {
            // `handle_at` read ICR and wrote it back, which lowered the
            // line; let it fire again.
            DEVICE_IRQ.get().irq_ack();
        }
    }

    fn protected(&mut self, _channel: Channel, msg: MessageInfo) -> MessageInfo {
        let result = match DriverRequest::from_registers(msg) {
            Ok(DriverRequest::Mac) => {
                self.driver.as_ref().and_then(E1000e::mac).map(DriverReply::Mac).ok_or(DriverError::NoMac)
            }
            Ok(DriverRequest::Stats) => {
                let stats = self.driver.as_ref().map(E1000e::stats).unwrap_or_default();
                let events = self.driver.as_ref().map(E1000e::events).unwrap_or_default();
                log!(
                    "stats: {stats} link_changes={} rx_overruns={} wakes={}",
                    events.link_changes,
                    events.rx_overruns,
                    pds_runtime::wakes()
                );
                Ok(DriverReply::Stats(stats))
            }
            Ok(DriverRequest::Offloads) => Ok(DriverReply::Offloads(self.driver.as_ref().map_or(0, E1000e::offloads))),
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
