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
    info.publish(disk, window);
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
    for op in [Op::Read, Op::Write, Op::Flush] {
        assert_eq!(Op::from_code(op as u32), Some(op));
    }
    assert_eq!(Op::from_code(3), None);
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
