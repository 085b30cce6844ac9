extern crate std;

use crate::queue::{region_size_for, QueueError, HEADER_SIZE};
use crate::*;
use std::boxed::Box;

/// A zeroed, page-aligned queue region on the host.
#[repr(C, align(4096))]
struct Region([u8; QUEUE_REGION_SIZE]);

fn region() -> Box<Region> {
    Box::new(Region([0; QUEUE_REGION_SIZE]))
}

#[test]
fn requests_travel_in_order_across_index_wrap() {
    let mut mem = region();
    let base = mem.0.as_mut_ptr();
    // SAFETY: `mem` outlives both handles and is accessed only through them.
    let (mut tx, mut rx) = unsafe { (RequestProducer::new(base), RequestConsumer::new(base, ())) };
    for round in 0..5u32 {
        for i in 0..QUEUE_CAPACITY as u32 {
            tx.enqueue(Request::read(round * 1000 + i, u64::from(i), 8, u64::from(i) * 4096)).unwrap();
        }
        assert_eq!(tx.enqueue(Request::flush(0)), Err(QueueError::Full));
        for i in 0..QUEUE_CAPACITY as u32 {
            let r = rx.dequeue().unwrap().unwrap();
            assert_eq!(r, Request::read(round * 1000 + i, u64::from(i), 8, u64::from(i) * 4096));
        }
        assert_eq!(rx.dequeue(), Ok(None));
    }
}

#[test]
fn signal_only_when_requested_and_once() {
    let mut mem = region();
    let base = mem.0.as_mut_ptr();
    // SAFETY: as above.
    let (mut tx, mut rx) = unsafe { (ResponseProducer::new(base), ResponseConsumer::new(base, ())) };
    tx.enqueue(Response { id: 1, status: 0 }).unwrap();
    assert!(!tx.should_signal(), "nobody asked");
    assert_eq!(rx.request_signal_if_empty(), Ok(false), "not empty: request withdrawn");
    assert!(!tx.should_signal());
    assert_eq!(rx.dequeue().unwrap().unwrap().status(), Some(Status::Ok));
    assert_eq!(rx.request_signal_if_empty(), Ok(true));
    tx.enqueue(Response { id: 2, status: 5 }).unwrap();
    assert!(tx.should_signal());
    assert!(!tx.should_signal(), "one notification per request");
}

#[test]
fn bogus_peer_index_is_corrupt_not_a_crash() {
    let mut mem = region();
    let base = mem.0.as_mut_ptr();
    // The peer claims a tail far ahead of our head.
    mem.0[..4].copy_from_slice(&1000u32.to_le_bytes());
    // SAFETY: as above.
    let mut rx = unsafe { RequestConsumer::new(base, ()) };
    assert_eq!(rx.dequeue(), Err(QueueError::Corrupt));
    assert_eq!(rx.request_signal_if_empty(), Err(QueueError::Corrupt));
}

#[test]
fn region_sizes_fit_a_page() {
    assert_eq!(region_size_for::<Request>(QUEUE_CAPACITY), HEADER_SIZE + 32 * QUEUE_CAPACITY);
    assert_eq!(region_size_for::<Response>(QUEUE_CAPACITY), HEADER_SIZE + 8 * QUEUE_CAPACITY);
}

#[test]
fn buffer_range_checks_bounds_without_overflow() {
    let len = DATA_REGION_SIZE;
    assert_eq!(buffer_range(&Request::read(0, 0, 8, 0), len), Some(0..4096));
    let last = (len - SECTOR_SIZE) as u64;
    assert_eq!(buffer_range(&Request::read(0, 0, 1, last), len), Some(last..len as u64));
    assert_eq!(buffer_range(&Request::read(0, 0, 2, last), len), None);
    assert_eq!(buffer_range(&Request::read(0, 0, u32::MAX, u64::MAX - 10), len), None);
}

#[test]
fn info_is_invisible_until_published() {
    let mut mem = region();
    // SAFETY: the region is aligned, outlives the reference and is accessed only through it.
    let info = unsafe { Info::at(mem.0.as_mut_ptr()) };
    assert_eq!(info.get(), None);
    assert_eq!(info.window(), None);
    let disk = DiskInfo { capacity: 16384, read_only: false, max_request_sectors: 256 };
    let window = Window { start: 2048, end: 8192 };
    info.publish(disk, window, 1);
    assert_eq!(info.epoch(), 1);
    assert_eq!(info.get(), Some(disk));
    assert_eq!(info.window(), Some(window));
}

#[test]
fn a_window_holds_exactly_its_sectors() {
    let w = Window::from_inclusive(100, 199).unwrap();
    assert_eq!((w.start, w.end, w.sectors()), (100, 200, 100));
    assert!(w.contains(100, 100));
    assert!(w.contains(150, 1));
    assert!(w.contains(199, 1));
    assert!(!w.contains(99, 1), "the sector before");
    assert!(!w.contains(99, 2), "a run that starts before");
    assert!(!w.contains(200, 1), "the sector after");
    assert!(!w.contains(199, 2), "a run that ends after");
    assert!(!w.contains(150, u64::MAX), "an end that overflows");
    assert_eq!(Window::from_inclusive(5, 5), Some(Window { start: 5, end: 6 }));
    assert_eq!(Window::from_inclusive(6, 5), None);
    assert_eq!(Window::from_inclusive(0, u64::MAX), None);
}

#[test]
fn a_window_is_clipped_to_the_disk() {
    let w = Window { start: 100, end: 200 };
    assert_eq!(w.clip(1000), w);
    assert_eq!(w.clip(150), Window { start: 100, end: 150 });
    assert_eq!(w.clip(50), Window { start: 50, end: 50 });
    assert_eq!(w.clip(50).sectors(), 0);
}

#[test]
fn codes_round_trip() {
    for op in [Op::Read, Op::Write, Op::Flush, Op::Sync] {
        assert_eq!(Op::from_code(op as u32), Some(op));
    }
    assert_eq!(Op::from_code(4), None);
    for code in 0..8 {
        assert_eq!(Status::from_code(code).map(|s| s as u32), Some(code));
    }
    assert_eq!(Status::from_code(8), None);
}

#[test]
fn responses_carry_every_status_by_its_code() {
    let all = [
        Status::Ok,
        Status::IoError,
        Status::Unsupported,
        Status::BadOp,
        Status::OutOfRange,
        Status::BadBuffer,
        Status::ReadOnly,
        Status::OutsideWindow,
    ];
    for (code, status) in all.into_iter().enumerate() {
        let response = Response::new(7, status);
        assert_eq!((response.id, response.status), (7, code as u32));
        assert_eq!(response.status(), Some(status));
    }
    assert_eq!(Response { id: 7, status: all.len() as u32 }.status(), None);
}

// --- Starting over -----------------------------------------------------------

/// A client's queues and the driver's ends of them, over host memory.
struct Link {
    _mem: [Box<Region>; 3],
    info: &'static Info,
    client_requests: RequestProducer<'static>,
    client_responses: ResponseConsumer<'static>,
    driver_requests: RequestConsumer<'static>,
    driver_responses: ResponseProducer<'static>,
}

fn link() -> Link {
    let mut mem = [region(), region(), region()];
    let (req, resp, info) = (mem[0].0.as_mut_ptr(), mem[1].0.as_mut_ptr(), mem[2].0.as_mut_ptr());
    // SAFETY: the boxes live in the Link as long as the handles (their
    // contents never move), and each region has one handle per side.
    unsafe {
        Link {
            info: &*(Info::at(info) as *const Info),
            client_requests: RequestProducer::new(req),
            client_responses: ResponseConsumer::new(resp, ()),
            driver_requests: RequestConsumer::new(req, ()),
            driver_responses: ResponseProducer::new(resp),
            _mem: mem,
        }
    }
}

const DISK: DiskInfo = DiskInfo { capacity: 1 << 20, read_only: true, max_request_sectors: 256 };
const WHOLE: Window = Window { start: 0, end: 1 << 20 };

#[test]
fn sync_ids_carry_both_lives_and_only_match_their_epoch() {
    assert_eq!(sync_id(3, 2), 0xF003_0002);
    assert!(is_sync_for(sync_id(3, 2), 2));
    assert!(is_sync_for(sync_id(0, 0x1_0002), 2), "16 bits of the epoch");
    assert!(!is_sync_for(sync_id(3, 2), 3));
    assert!(!is_sync_for(2, 2), "not a sync id");
}

#[test]
fn a_restarted_client_discards_its_predecessors_answers_until_its_sync() {
    let mut l = link();
    let mut sync = ClientSync::new(1);
    // Not ready: nothing sent.
    assert_eq!(
        sync.poll(l.info, &mut l.client_requests, &mut l.client_responses),
        Ok(SyncPoll::Pending { sent: false })
    );
    l.info.publish(DISK, WHOLE, 1);
    // The predecessor's requests 7 and 8 are in flight at the driver.
    l.client_requests.enqueue(Request::read(7, 0, 8, 0)).unwrap();
    l.client_requests.enqueue(Request::read(8, 8, 8, 4096)).unwrap();
    assert_eq!(
        sync.poll(l.info, &mut l.client_requests, &mut l.client_responses),
        Ok(SyncPoll::Pending { sent: true })
    );
    // The driver answers 8, then 7, then the Sync (after both, as it must).
    let taken: std::vec::Vec<Request> = core::iter::from_fn(|| l.driver_requests.dequeue().unwrap()).collect();
    assert_eq!(taken.len(), 3);
    assert_eq!(taken[2], Request::sync(sync_id(1, 1)));
    l.driver_responses.enqueue(Response::new(8, Status::Ok)).unwrap();
    assert_eq!(
        sync.poll(l.info, &mut l.client_requests, &mut l.client_responses),
        Ok(SyncPoll::Pending { sent: false })
    );
    l.driver_responses.enqueue(Response::new(7, Status::Ok)).unwrap();
    l.driver_responses.enqueue(Response::new(sync_id(1, 1), Status::Ok)).unwrap();
    l.driver_responses.enqueue(Response::new(1, Status::Ok)).unwrap();
    assert_eq!(sync.poll(l.info, &mut l.client_requests, &mut l.client_responses), Ok(SyncPoll::Synced));
    assert_eq!(sync.discarded, 2);
    // What follows the Sync's answer is the client's own.
    assert_eq!(l.client_responses.dequeue(), Ok(Some(Response::new(1, Status::Ok))));
    assert_eq!(sync.poll(l.info, &mut l.client_requests, &mut l.client_responses), Ok(SyncPoll::Synced));
}

#[test]
fn a_restarted_driver_is_noticed_once_then_synced_with() {
    let mut l = link();
    let mut sync = ClientSync::new(0);
    l.info.publish(DISK, WHOLE, 1);
    sync.poll(l.info, &mut l.client_requests, &mut l.client_responses).unwrap();
    assert_eq!(l.driver_requests.dequeue(), Ok(Some(Request::sync(sync_id(0, 1)))));
    l.driver_responses.enqueue(Response::new(sync_id(0, 1), Status::Ok)).unwrap();
    assert_eq!(sync.poll(l.info, &mut l.client_requests, &mut l.client_responses), Ok(SyncPoll::Synced));
    l.client_requests.enqueue(Request::read(5, 0, 8, 0)).unwrap();
    // The driver restarts: request 5 is lost.
    l.info.publish(DISK, WHOLE, 2);
    assert_eq!(sync.poll(l.info, &mut l.client_requests, &mut l.client_responses), Ok(SyncPoll::DriverRestarted));
    assert_eq!(
        sync.poll(l.info, &mut l.client_requests, &mut l.client_responses),
        Ok(SyncPoll::Pending { sent: true })
    );
    // The new driver drops everything before its Sync.
    assert_eq!(l.driver_requests.dequeue(), Ok(Some(Request::read(5, 0, 8, 0))));
    let s = l.driver_requests.dequeue().unwrap().unwrap();
    assert!(s.op == Op::Sync as u32 && is_sync_for(s.id, 2));
    l.driver_responses.enqueue(Response::new(s.id, Status::Ok)).unwrap();
    assert_eq!(sync.poll(l.info, &mut l.client_requests, &mut l.client_responses), Ok(SyncPoll::Synced));
}

#[test]
fn a_full_request_queue_delays_the_sync() {
    let mut l = link();
    let mut sync = ClientSync::new(2);
    l.info.publish(DISK, WHOLE, 1);
    for i in 0..QUEUE_CAPACITY as u32 {
        l.client_requests.enqueue(Request::read(i, 0, 1, 0)).unwrap();
    }
    assert_eq!(
        sync.poll(l.info, &mut l.client_requests, &mut l.client_responses),
        Ok(SyncPoll::Pending { sent: false })
    );
    l.driver_requests.dequeue().unwrap();
    assert_eq!(
        sync.poll(l.info, &mut l.client_requests, &mut l.client_responses),
        Ok(SyncPoll::Pending { sent: true })
    );
}
