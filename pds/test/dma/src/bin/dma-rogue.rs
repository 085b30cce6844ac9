//! dma-rogue: a compromised block driver that aims its device outside its
//! DMA regions (`tests/systems/dma.system`, README "Security: least
//! privilege", the IOMMU).
//!
//! It owns a virtio-blk device and one DMA region, `rogue_dma` (its
//! queue, the request header and status byte, and a data buffer). It
//! learns the physical address of another PD's memory, `dma-canary`'s
//! region, from the `mailbox` the canary writes, and then:
//!
//! 1. control: reads sector 0 into its own buffer (inside its region),
//!    and logs the completion's status and the first bytes read;
//! 2. reads sector 0 into `rogue_ro`, a DMA region its device may only
//!    read (`dma="r"`), which it filled with [`RO_BYTE`], and logs
//!    whether the region is intact;
//! 3. attack: reads sector 0 into the canary's physical address (outside
//!    its regions), and logs whether and how the request completed within
//!    [`WAIT_CYCLES`] and the device status;
//! 4. notifies the canary, which checks its bytes.
//!
//! Behind an IOMMU the device's writes to the read-only region and to the
//! canary fault (the debug kernel logs `IOMMU: DMA write page fault`) and
//! both stay intact; without one both are overwritten. It polls the used ring; the device's
//! interrupt is not routed to it.
#![no_std]
#![no_main]

use lib_virtio::dma::DmaRegion;
use lib_virtio::features::VERSION_1;
use lib_virtio::pci::VirtioCaps;
use lib_virtio::queue::{Segment, SplitQueue};
use lib_virtio::transport::{Mmio, Notifier, Transport};
use pds_runtime::{log, Handler};

pds_runtime::setvar!(pci_config, r);
pds_runtime::setvar!(virtio_bar, rw);
pds_runtime::setvar!(rogue_dma, rw);
pds_runtime::setvar!(rogue_dma_paddr, paddr);
pds_runtime::setvar!(mailbox, r);
pds_runtime::setvar!(rogue_ro, rw);
pds_runtime::setvar!(rogue_ro_paddr, paddr);

// The canary's channel (`setvar_id="canary"`).
pds_runtime::channel!(CANARY = "canary");

const BAR_INDEX: u8 = 4;
const BAR_SIZE: usize = 0x4000;
const CONFIG_SIZE: usize = 0x1000;
/// Layout of `rogue_dma` (16 KiB): the queue, the request header and the
/// status byte, the data buffer.
const QUEUE_AT: usize = 0;
const QUEUE_BYTES: usize = 0x1000;
const HEADER_AT: usize = 0x1000;
const STATUS_AT: usize = 0x1010;
const DATA_AT: usize = 0x2000;
const SECTOR: u32 = 512;
const QUEUE_SIZE: u16 = 16;
/// `VIRTIO_BLK_T_IN`: read sectors from the disk (§5.2.6).
const T_IN: u32 = 0;
/// How long (TSC cycles) a request may take before it counts as never
/// completed: 2 s at 3 GHz, more on a slower clock (QEMU's TSC runs at
/// the host's, about 2.2 GHz here). The PD has no timer; this is a bound,
/// not a measurement.
const WAIT_CYCLES: u64 = 6_000_000_000;
/// What `rogue_ro` holds (one page).
const RO_BYTE: u8 = 0x5a;
const RO_SIZE: usize = 0x1000;
/// A status byte no device writes (`S_OK` 0, `S_IOERR` 1, `S_UNSUPP` 2).
const NO_STATUS: u8 = 0xff;

type Queue = SplitQueue<u8, 16>;

struct Rogue;

/// The time-stamp counter (for the attack's deadline only).
fn tsc() -> u64 {
    // SAFETY: rdtsc reads a counter and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

struct Device {
    transport: Transport,
    queue: Queue,
    notifier: Notifier,
    /// `rogue_dma`: virtual and physical base.
    vaddr: usize,
    paddr: u64,
}

impl Device {
    fn bring_up() -> Option<Device> {
        let config = pds_runtime::require_setvar!(pci_config)?;
        let bar = pds_runtime::require_setvar!(virtio_bar)?;
        let vaddr = pds_runtime::require_setvar!(rogue_dma)? as usize;
        let paddr = pds_runtime::require_setvar!(rogue_dma_paddr)?;
        // SAFETY: the initialiser maps a read-only snapshot of the
        // configuration space, CONFIG_SIZE bytes, at `pci_config`.
        let config = unsafe { core::slice::from_raw_parts(config as *const u8, CONFIG_SIZE) };
        let caps = VirtioCaps::find(config).inspect_err(|e| log!("error: not a modern virtio device: {e:?}")).ok()?;
        // SAFETY: BAR_SIZE bytes of BAR 4 are mapped uncached at `virtio_bar`.
        let bar = unsafe { Mmio::new(bar as *mut u8, BAR_SIZE) };
        let transport = Transport::new(bar, BAR_INDEX, &caps).inspect_err(|e| log!("error: {e:?}")).ok()?;
        let features = transport.negotiate(VERSION_1, 0).inspect_err(|e| log!("error: {e:?}")).ok()?;
        log!("features accepted {features:#x}");
        // SAFETY: `rogue_dma` is mapped read-write at `vaddr` for the PD's
        // life, physically contiguous at `paddr`; the queue's page is used
        // only through this handle.
        let memory = unsafe { DmaRegion::new(vaddr + QUEUE_AT, paddr + QUEUE_AT as u64, QUEUE_BYTES) };
        let queue = Queue::new(memory, QUEUE_SIZE, false)?;
        let notifier =
            transport.setup_queue(0, QUEUE_SIZE, queue.areas()).inspect_err(|e| log!("error: {e:?}")).ok()?;
        transport.driver_ok();
        Some(Device { transport, queue, notifier, vaddr, paddr })
    }

    /// Reads sector 0 into `buffer` (a physical address); returns the
    /// status byte if the request completes within [`WAIT_CYCLES`].
    fn read_sector_0(&mut self, buffer: u64) -> Option<u8> {
        let header = self.vaddr + HEADER_AT;
        let status = (self.vaddr + STATUS_AT) as *mut u8;
        // SAFETY: the header (16 bytes) and status byte lie in `rogue_dma`,
        // mapped read-write; the device reads or writes them only while
        // the request is in flight, which starts below.
        unsafe {
            core::ptr::write_volatile(header as *mut u32, T_IN);
            core::ptr::write_volatile((header + 4) as *mut u32, 0);
            core::ptr::write_volatile((header + 8) as *mut u64, 0);
            core::ptr::write_volatile(status, NO_STATUS);
        }
        let chain = [
            Segment::readable(self.paddr + HEADER_AT as u64, 16),
            Segment::writable(buffer, SECTOR),
            Segment::writable(self.paddr + STATUS_AT as u64, 1),
        ];
        self.queue.push(&chain, 0)?;
        self.queue.publish();
        self.notifier.notify();
        let deadline = tsc() + WAIT_CYCLES;
        while tsc() < deadline {
            if self.queue.pop_used().is_some() {
                // SAFETY: as above; the device is done with the chain.
                return Some(unsafe { core::ptr::read_volatile(status) });
            }
            core::hint::spin_loop();
        }
        None
    }

    /// The first bytes of the data buffer, as text.
    fn data_head(&self) -> [u8; 17] {
        let mut head = [0u8; 17];
        for (i, b) in head.iter_mut().enumerate() {
            // SAFETY: the data buffer lies in `rogue_dma`, mapped read-write.
            *b = unsafe { core::ptr::read_volatile((self.vaddr + DATA_AT + i) as *const u8) };
        }
        head
    }
}

/// Step 2: the device writes a region it may only read.
fn read_only_region(device: &mut Device) {
    let (Some(vaddr), Some(paddr)) =
        (pds_runtime::require_setvar!(rogue_ro), pds_runtime::require_setvar!(rogue_ro_paddr))
    else {
        return;
    };
    // SAFETY: `rogue_ro` is a page mapped read-write at `vaddr` for the
    // PD's life; only this PD maps it, and the device writes it (if at
    // all) only while the request below is in flight.
    let bytes = unsafe { core::slice::from_raw_parts_mut(vaddr as *mut u8, RO_SIZE) };
    bytes.fill(RO_BYTE);
    let status = device.read_sector_0(paddr);
    // SAFETY: each pointer is into the mapped page; volatile, as the device
    // may have written it.
    let changed = bytes.iter().filter(|b| unsafe { core::ptr::read_volatile(*b) } != RO_BYTE).count();
    let status = Completion(status);
    if changed == 0 {
        log!("read-only region: sector 0 into {paddr:#x} (the device may only read it): {status}; intact: {RO_SIZE} bytes of {RO_BYTE:#04x}");
    } else {
        log!("read-only region: sector 0 into {paddr:#x} (the device may only read it): {status}; OVERWRITTEN: {changed} bytes changed");
    }
}

/// A request's outcome: `completed, status N` or `no completion`.
struct Completion(Option<u8>);

impl core::fmt::Display for Completion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(status) => write!(f, "completed, status {status}"),
            None => f.write_str("no completion"),
        }
    }
}

impl Handler for Rogue {
    fn init() -> Self {
        let Some(mailbox_vaddr) = pds_runtime::require_setvar!(mailbox) else { return Rogue };
        // SAFETY: `mailbox` is a page mapped read-only; the canary (higher
        // priority, started first) wrote its region's address there.
        let target = unsafe { core::ptr::read_volatile(mailbox_vaddr as *const u64) };
        let Some(mut device) = Device::bring_up() else {
            log!("error: device bring-up failed");
            return Rogue;
        };
        let own = device.paddr + DATA_AT as u64;
        match device.read_sector_0(own) {
            Some(status) => {
                let head = device.data_head();
                let text = core::str::from_utf8(&head).unwrap_or("(not text)");
                log!("control: sector 0 into its own region at {own:#x}: status {status}, data '{text}'");
            }
            None => log!("control: sector 0 into its own region at {own:#x}: no completion"),
        }
        read_only_region(&mut device);
        if target == 0 {
            log!("error: the mailbox holds no address");
        } else {
            match device.read_sector_0(target) {
                Some(status) => log!("attack: sector 0 into {target:#x} (not its region): completed, status {status}"),
                None => log!(
                    "attack: sector 0 into {target:#x} (not its region): no completion, device status {:#04x}",
                    device.transport.status()
                ),
            }
        }
        CANARY.get().notify();
        Rogue
    }
}

pds_runtime::protection_domain!(Rogue);
