//! Host tests: request validation, and the service loop against a fake
//! virtio-blk device that executes chains from the real queue memory and
//! completes them out of order. (The capability walk, transport and
//! virtqueue are tested in the `lib_virtio` crate.)

extern crate std;

use crate::driver::{log_refusals, validate, BlkDevice, Stats};
use crate::slots::{RequestQueue, MAX_SLOTS, MEMORY};
use lib_blk_protocol::{
    sync_id, DiskInfo, Request, RequestConsumer, RequestProducer, Response, ResponseConsumer, ResponseProducer, Status,
    Window, QUEUE_CAPACITY, QUEUE_REGION_SIZE, SECTOR_SIZE,
};
use lib_virtio::dma::DmaRegion;
use lib_virtio::queue::Layout;
use std::vec;
use std::vec::Vec;

// ---- request validation ----

const DISK: DiskInfo = DiskInfo { capacity: 1024, read_only: false, max_request_sectors: 64 };
/// The whole of [`DISK`].
const ALL: Window = Window { start: 0, end: 1024 };

#[test]
fn validation_follows_the_protocol_rules() {
    let data = 64 * 1024;
    assert!(validate(&Request::read(1, 0, 8, 0), &DISK, &ALL, data).is_ok());
    assert!(validate(&Request::write(1, 1016, 8, 60 * 1024), &DISK, &ALL, data).is_ok());
    assert!(validate(&Request::flush(1), &DISK, &ALL, data).is_ok());
    let bad = |r: Request| validate(&r, &DISK, &ALL, data).unwrap_err();
    assert_eq!(bad(Request { op: 9, ..Request::read(1, 0, 1, 0) }), Status::BadOp);
    assert_eq!(bad(Request::read(1, 1020, 8, 0)), Status::OutOfRange);
    assert_eq!(bad(Request::read(1, u64::MAX, 1, 0)), Status::OutOfRange);
    assert_eq!(bad(Request::read(1, 0, 0, 0)), Status::BadBuffer);
    assert_eq!(bad(Request::read(1, 0, 65, 0)), Status::BadBuffer);
    assert_eq!(bad(Request::read(1, 0, 8, 61 * 1024)), Status::BadBuffer);
    assert_eq!(bad(Request::read(1, 0, 8, u64::MAX - 100)), Status::BadBuffer);
    let ro = DiskInfo { read_only: true, ..DISK };
    assert_eq!(validate(&Request::write(1, 0, 1, 0), &ro, &ALL, data), Err(Status::ReadOnly));
}

#[test]
fn validation_refuses_sectors_outside_the_window() {
    let data = 64 * 1024;
    let window = Window { start: 100, end: 200 };
    let check = |r: Request| validate(&r, &DISK, &window, data);
    assert!(check(Request::read(1, 100, 8, 0)).is_ok(), "the first sectors");
    assert!(check(Request::write(1, 192, 8, 0)).is_ok(), "the last sectors");
    assert!(check(Request::flush(1)).is_ok(), "a flush names no sector");
    for (sector, count, what) in [
        (0, 1, "the disk's first sector"),
        (99, 1, "the sector before"),
        (96, 8, "a run across the start"),
        (200, 1, "the sector after"),
        (196, 8, "a run across the end"),
        (1016, 8, "the disk's last sectors"),
    ] {
        assert_eq!(check(Request::read(1, sector, count, 0)), Err(Status::OutsideWindow), "read: {what}");
        assert_eq!(check(Request::write(1, sector, count, 0)), Err(Status::OutsideWindow), "write: {what}");
    }
    // Past the end of the disk is still that, whatever the window.
    assert_eq!(check(Request::read(1, 1020, 8, 0)), Err(Status::OutOfRange));
    // A malformed request is refused for that before its sectors are looked at.
    assert_eq!(check(Request::read(1, 0, 0, 0)), Err(Status::BadBuffer));
    // On a read-only disk, a write inside the window is refused as a write.
    let ro = DiskInfo { read_only: true, ..DISK };
    assert_eq!(validate(&Request::write(1, 150, 1, 0), &ro, &window, data), Err(Status::ReadOnly));
    assert_eq!(validate(&Request::write(1, 50, 1, 0), &ro, &window, data), Err(Status::OutsideWindow));
}

#[test]
fn refusals_are_logged_at_a_falling_rate() {
    // One at a time: the 1st, 2nd, 4th, ... are logged.
    let logged: Vec<u64> = (1..=1000).filter(|&n| log_refusals(n - 1, n)).collect();
    assert_eq!(logged, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    // Several in one batch: logged if a power of two is among them.
    assert!(log_refusals(0, 3));
    assert!(log_refusals(3, 5), "the 4th");
    assert!(!log_refusals(4, 7));
    assert!(log_refusals(7, 8));
    assert!(!log_refusals(5, 5), "none new");
    assert!(!log_refusals(0, 0));
    assert!(log_refusals(1, u64::MAX));
    assert!(!log_refusals(1 << 63, u64::MAX));
}

// ---- the service loop against a fake device ----

const QUEUE_PADDR: u64 = 0x1000_0000;
const DATA_PADDR: u64 = 0x2000_0000;
const DATA_LEN: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Page([u8; QUEUE_REGION_SIZE]);

/// Host memory standing in for physical memory: the queue region and the
/// client's data region, each at a fake physical address.
struct Memory {
    /// 16-byte aligned, as the virtqueue needs.
    queue: Vec<u128>,
    data: Vec<u8>,
}

impl Memory {
    fn new(queue_len: usize) -> Memory {
        Memory { queue: vec![0; queue_len.div_ceil(16)], data: vec![0; DATA_LEN] }
    }

    fn queue_region(&mut self) -> DmaRegion {
        // SAFETY: the vector outlives the test's use of the region; the fake
        // device reads and writes it only between driver calls.
        unsafe { DmaRegion::new(self.queue.as_mut_ptr() as usize, QUEUE_PADDR, self.queue.len() * 16) }
    }

    fn queue_ptr(&mut self, paddr: u64) -> *mut u8 {
        assert!(paddr >= QUEUE_PADDR && paddr < QUEUE_PADDR + self.queue.len() as u64 * 16);
        // SAFETY: in bounds (checked).
        unsafe { (self.queue.as_mut_ptr() as *mut u8).add((paddr - QUEUE_PADDR) as usize) }
    }
}

fn rd<T: Copy>(p: *mut u8) -> T {
    // SAFETY: the tests pass pointers into their own live buffers.
    unsafe { p.cast::<T>().read_unaligned() }
}

fn wr<T>(p: *mut u8, v: T) {
    // SAFETY: as for `rd`.
    unsafe { p.cast::<T>().write_unaligned(v) }
}

/// A virtio-blk device over a RAM disk: takes every chain made available
/// since last time, executes it, and returns the chains in reverse order.
struct FakeDevice {
    size: u16,
    layout: Layout,
    disk: Vec<u8>,
    last_avail: u16,
    used_idx: u16,
    flushes: usize,
}

impl FakeDevice {
    fn run(&mut self, mem: &mut Memory) -> usize {
        let avail = QUEUE_PADDR + self.layout.avail as u64;
        let avail_idx: u16 = rd(mem.queue_ptr(avail + 2));
        let mut done = Vec::new();
        while self.last_avail != avail_idx {
            let slot = u64::from(self.last_avail % self.size);
            let head: u16 = rd(mem.queue_ptr(avail + 4 + 2 * slot));
            self.last_avail = self.last_avail.wrapping_add(1);
            // Walk the chain.
            let mut chain = Vec::new();
            let mut index = head;
            loop {
                let d = mem.queue_ptr(QUEUE_PADDR + 16 * u64::from(index));
                let (addr, len, flags, next): (u64, u32, u16, u16) =
                    (rd(d), rd(d.wrapping_add(8)), rd(d.wrapping_add(12)), rd(d.wrapping_add(14)));
                chain.push((addr, len, flags));
                if flags & 1 == 0 {
                    break;
                }
                index = next;
            }
            let header = mem.queue_ptr(chain[0].0);
            let (kind, sector): (u32, u64) = (rd(header), rd(header.wrapping_add(8)));
            let status_desc = *chain.last().unwrap();
            assert_eq!((status_desc.1, status_desc.2), (1, 2), "status: one device-writable byte");
            let status = match (kind, chain.len()) {
                (0 | 1, 3) => {
                    let (addr, len, flags) = chain[1];
                    assert_eq!(flags & 2 != 0, kind == 0, "reads are device-writable");
                    let at = (addr - DATA_PADDR) as usize;
                    let disk_at = sector as usize * SECTOR_SIZE;
                    let n = len as usize;
                    if kind == 0 {
                        mem.data[at..at + n].copy_from_slice(&self.disk[disk_at..disk_at + n]);
                    } else {
                        self.disk[disk_at..disk_at + n].copy_from_slice(&mem.data[at..at + n]);
                    }
                    0
                }
                (4, 2) => {
                    self.flushes += 1;
                    0
                }
                _ => 2,
            };
            wr(mem.queue_ptr(status_desc.0), status as u8);
            done.push(u32::from(head));
        }
        let n = done.len();
        let used = QUEUE_PADDR + self.layout.used as u64;
        for head in done.into_iter().rev() {
            let elem = mem.queue_ptr(used + 4 + 8 * u64::from(self.used_idx % self.size));
            wr(elem, head);
            wr(elem.wrapping_add(4), 0u32);
            self.used_idx = self.used_idx.wrapping_add(1);
        }
        wr(mem.queue_ptr(used + 2), self.used_idx);
        n
    }
}

/// A driver with a fake device, as the PD sets it up, minus the transport.
struct Rig {
    mem: Memory,
    device: FakeDevice,
    driver: BlkDevice,
    _requests: std::boxed::Box<Page>,
    _responses: std::boxed::Box<Page>,
    client_tx: RequestProducer<'static>,
    driver_rx: RequestConsumer<'static>,
    driver_tx: ResponseProducer<'static>,
    client_rx: ResponseConsumer<'static>,
}

fn rig(queue_size: u16) -> Rig {
    rig_with_window(queue_size, Window { start: 0, end: 256 })
}

/// A rig whose client may use the sectors of `window` of the 256-sector disk.
fn rig_with_window(queue_size: u16, window: Window) -> Rig {
    let layout = Layout::new(usize::from(queue_size));
    let mut mem = Memory::new(MEMORY);
    let queue = RequestQueue::new(mem.queue_region(), queue_size).unwrap();
    let disk_info = DiskInfo { capacity: 256, read_only: false, max_request_sectors: 64 };
    let driver = BlkDevice::with_queue(queue, disk_info, window, true, DATA_PADDR, DATA_LEN);
    let disk = (0..256 * SECTOR_SIZE).map(|i| (i * 7 + i / SECTOR_SIZE) as u8).collect();
    let mut requests = std::boxed::Box::new(Page([0; QUEUE_REGION_SIZE]));
    let mut responses = std::boxed::Box::new(Page([0; QUEUE_REGION_SIZE]));
    let (rq, rs) = (requests.0.as_mut_ptr(), responses.0.as_mut_ptr());
    // SAFETY: the boxes live in the rig as long as the handles and are
    // accessed only through them.
    let (client_tx, driver_rx, driver_tx, client_rx) = unsafe {
        (
            RequestProducer::new(rq),
            RequestConsumer::new(rq, ()),
            ResponseProducer::new(rs),
            ResponseConsumer::new(rs, ()),
        )
    };
    Rig {
        mem,
        device: FakeDevice { size: queue_size, layout, disk, last_avail: 0, used_idx: 0, flushes: 0 },
        driver,
        _requests: requests,
        _responses: responses,
        client_tx,
        driver_rx,
        driver_tx,
        client_rx,
    }
}

impl Rig {
    fn service(&mut self) -> crate::driver::Work {
        self.driver.service(&mut self.driver_rx, &mut self.driver_tx)
    }

    fn responses(&mut self) -> Vec<Response> {
        core::iter::from_fn(|| self.client_rx.dequeue().unwrap()).collect()
    }
}

#[test]
fn reads_land_in_the_data_region_and_complete_out_of_order() {
    let mut r = rig(128);
    for i in 0..8u32 {
        r.client_tx.enqueue(Request::read(100 + i, u64::from(i) * 8, 8, u64::from(i) * 4096)).unwrap();
    }
    let work = r.service();
    assert!(work.notify_device);
    assert!(!work.signal_client, "the client did not ask");
    assert_eq!(r.device.run(&mut r.mem), 8);
    assert_eq!(r.client_rx.request_signal_if_empty(), Ok(true));
    let work = r.service();
    assert!(work.signal_client);
    assert!(!work.notify_device, "nothing new for the device");
    let ids: Vec<u32> = r
        .responses()
        .iter()
        .map(|resp| {
            assert_eq!(resp.status(), Some(Status::Ok));
            resp.id
        })
        .collect();
    assert_eq!(ids, (100..108).rev().collect::<Vec<_>>(), "answered in the device's (reverse) order");
    assert_eq!(&r.mem.data[..8 * 4096], &r.device.disk[..8 * 4096]);
}

#[test]
fn a_waiting_client_is_signalled_only_when_responses_were_enqueued() {
    // A client that asked for a signal and a wake-up that brought nothing
    // new: no signal (else client and driver woke each other for ever).
    let mut r = rig(128);
    assert_eq!(r.client_rx.request_signal_if_empty(), Ok(true));
    for _ in 0..3 {
        let work = r.service();
        assert!(!work.signal_client && !work.notify_device, "nothing happened");
    }
    // The request stands: the first response signals.
    r.client_tx.enqueue(Request::read(7, 0, 8, 0)).unwrap();
    assert!(!r.service().signal_client, "no response yet");
    assert_eq!(r.device.run(&mut r.mem), 1);
    assert!(r.service().signal_client);
    assert_eq!(r.responses().len(), 1);
}

#[test]
fn writes_and_flush_reach_the_disk() {
    let mut r = rig(128);
    r.mem.data[..1024].fill(0xab);
    r.client_tx.enqueue(Request::write(1, 10, 2, 0)).unwrap();
    r.client_tx.enqueue(Request::flush(2)).unwrap();
    r.service();
    r.device.run(&mut r.mem);
    r.service();
    let mut resp = r.responses();
    resp.sort_by_key(|x| x.id);
    assert_eq!(resp, [Response::new(1, Status::Ok), Response::new(2, Status::Ok)]);
    assert!(r.device.disk[10 * 512..12 * 512].iter().all(|&b| b == 0xab));
    assert_eq!(r.device.flushes, 1);
}

#[test]
fn bad_requests_are_answered_without_reaching_the_device() {
    let mut r = rig(128);
    r.client_tx.enqueue(Request::read(1, 255, 2, 0)).unwrap();
    r.client_tx.enqueue(Request::read(2, 0, 1, DATA_LEN as u64)).unwrap();
    r.client_tx.enqueue(Request { op: 77, ..Request::flush(3) }).unwrap();
    let work = r.service();
    assert!(!work.notify_device);
    assert_eq!(r.device.run(&mut r.mem), 0);
    let statuses: Vec<_> = r.responses().iter().map(|x| (x.id, x.status())).collect();
    assert_eq!(statuses, [(1, Some(Status::OutOfRange)), (2, Some(Status::BadBuffer)), (3, Some(Status::BadOp))]);
    assert_eq!(r.driver.stats, Stats { requests: 3, rejected: 3, ..Stats::default() });
}

#[test]
fn requests_outside_the_window_are_refused_counted_and_never_reach_the_device() {
    let mut r = rig_with_window(128, Window { start: 16, end: 128 });
    assert_eq!(r.driver.window(), Window { start: 16, end: 128 });
    r.mem.data[..512].fill(0xee);
    r.client_tx.enqueue(Request::read(1, 16, 8, 0)).unwrap();
    r.client_tx.enqueue(Request::read(2, 0, 1, 4096)).unwrap();
    r.client_tx.enqueue(Request::write(3, 15, 2, 0)).unwrap();
    r.client_tx.enqueue(Request::read(4, 127, 1, 8192)).unwrap();
    r.client_tx.enqueue(Request::write(5, 128, 1, 0)).unwrap();
    r.client_tx.enqueue(Request::read(6, 250, 8, 0)).unwrap();
    r.service();
    assert_eq!(r.device.run(&mut r.mem), 2, "only the two requests inside the window reach the device");
    r.service();
    let mut statuses: Vec<_> = r.responses().iter().map(|x| (x.id, x.status())).collect();
    statuses.sort_by_key(|s| s.0);
    assert_eq!(
        statuses,
        [
            (1, Some(Status::Ok)),
            (2, Some(Status::OutsideWindow)),
            (3, Some(Status::OutsideWindow)),
            (4, Some(Status::Ok)),
            (5, Some(Status::OutsideWindow)),
            (6, Some(Status::OutOfRange)),
        ]
    );
    assert_eq!(r.driver.stats, Stats { requests: 6, rejected: 4, outside_window: 3, ..Stats::default() });
    assert_eq!(r.driver.last_outside_window, Some(Request::write(5, 128, 1, 0)));
    // Nothing outside the window was read into the buffer or written.
    assert!(r.mem.data[4096..4096 + 512].iter().all(|&b| b == 0));
    let original: Vec<u8> = (0..256 * SECTOR_SIZE).map(|i| (i * 7 + i / SECTOR_SIZE) as u8).collect();
    assert_eq!(r.device.disk, original, "the refused writes changed the disk");
    assert_eq!(&r.mem.data[..8 * 512], &r.device.disk[16 * 512..24 * 512]);
}

#[test]
fn a_window_past_the_disk_is_clipped() {
    let r = rig_with_window(128, Window { start: 200, end: 1000 });
    assert_eq!(r.driver.window(), Window { start: 200, end: 256 });
}

#[test]
fn more_requests_than_slots_wait_in_the_queue() {
    let mut r = rig(128);
    let n = QUEUE_CAPACITY as u32;
    for i in 0..n {
        r.client_tx.enqueue(Request::read(i, u64::from(i % 32) * 8, 1, u64::from(i) * 512)).unwrap();
    }
    r.service();
    assert_eq!(r.driver.slots() as usize, MAX_SLOTS);
    let mut answered = Vec::new();
    for _ in 0..10 {
        r.device.run(&mut r.mem);
        r.service();
        answered.extend(r.responses().into_iter().map(|x| x.id));
    }
    answered.sort();
    assert_eq!(answered, (0..n).collect::<Vec<_>>());
}

#[test]
fn a_small_device_queue_limits_slots() {
    let mut r = rig(8);
    assert_eq!(r.driver.slots(), 2);
    for i in 0..5 {
        r.client_tx.enqueue(Request::read(i, 0, 1, 0)).unwrap();
    }
    r.service();
    assert_eq!(r.device.run(&mut r.mem), 2);
}

#[test]
fn bogus_used_elements_are_counted_and_skipped() {
    let mut r = rig(128);
    r.client_tx.enqueue(Request::read(1, 0, 1, 0)).unwrap();
    r.service();
    r.device.run(&mut r.mem);
    // The device returns the same head again, and a non-head descriptor.
    let used = QUEUE_PADDR + r.device.layout.used as u64;
    for (i, id) in [(1u64, 0u32), (2, 4)] {
        wr(r.mem.queue_ptr(used + 4 + 8 * i), id);
    }
    wr(r.mem.queue_ptr(used + 2), 3u16);
    r.service();
    assert_eq!(r.responses().len(), 1);
    assert_eq!(r.driver.stats.bogus_completions, 2);
}

#[test]
fn queue_memory_is_checked() {
    let mut mem = Memory::new(MEMORY - 16);
    assert!(RequestQueue::new(mem.queue_region(), 128).is_none(), "too small a region");
    let mut mem = Memory::new(MEMORY);
    assert!(RequestQueue::new(mem.queue_region(), 96).is_none(), "not a power of two");
    assert!(RequestQueue::new(mem.queue_region(), 2).is_none(), "no room for a request");
    assert!(RequestQueue::new(mem.queue_region(), 256).is_none(), "beyond the queue size asked for");
    assert_eq!(RequestQueue::new(mem.queue_region(), 4).map(|q| q.slots()), Some(1));
}

// --- Starting over (lib_blk_protocol) ------------------------------------------

#[test]
fn a_sync_is_answered_only_after_everything_before_it_and_holds_back_what_follows() {
    let mut r = rig(128);
    r.client_tx.enqueue(Request::read(1, 0, 8, 0)).unwrap();
    r.client_tx.enqueue(Request::read(2, 8, 8, 4096)).unwrap();
    r.client_tx.enqueue(Request::sync(sync_id(1, 1))).unwrap();
    r.client_tx.enqueue(Request::read(3, 16, 8, 8192)).unwrap();
    r.service();
    assert!(r.responses().is_empty(), "two reads in flight: the sync waits");
    // Only the two reads reached the device; the third waits behind the sync.
    assert_eq!(r.device.run(&mut r.mem), 2);
    r.service();
    let ids: Vec<u32> = r.responses().iter().map(|resp| resp.id).collect();
    assert_eq!(ids, [2, 1, sync_id(1, 1)], "the sync after both reads");
    assert_eq!(r.device.run(&mut r.mem), 1, "then what followed it");
    r.service();
    assert_eq!(r.responses(), [Response::new(3, Status::Ok)]);
    // With nothing in flight a sync is answered at once.
    r.client_tx.enqueue(Request::sync(sync_id(1, 1))).unwrap();
    r.service();
    assert_eq!(r.responses(), [Response::new(sync_id(1, 1), Status::Ok)]);
}

#[test]
fn a_restarted_driver_drops_requests_until_the_sync_for_its_epoch() {
    let mut r = rig(128);
    r.driver.restarted(2);
    r.client_tx.enqueue(Request::read(1, 0, 8, 0)).unwrap();
    r.client_tx.enqueue(Request::sync(sync_id(0, 1))).unwrap();
    r.client_tx.enqueue(Request::sync(sync_id(0, 2))).unwrap();
    r.client_tx.enqueue(Request::read(4, 8, 8, 4096)).unwrap();
    r.service();
    assert_eq!(r.driver.stats.dropped_after_restart, 2, "the old read and the sync for the old epoch");
    assert_eq!(r.responses(), [Response::new(sync_id(0, 2), Status::Ok)]);
    assert_eq!(r.device.run(&mut r.mem), 1);
    r.service();
    assert_eq!(r.responses(), [Response::new(4, Status::Ok)]);
}
