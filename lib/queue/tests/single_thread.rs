//! One thread plays both sides: capacity, order, index wraparound, the
//! signal flag and the documented layout, for buffer descriptors and for
//! other entry types (the generic path).

mod common;

use common::{slot, wide_slot, Region, Small, Wide, HEAD, SIGNAL_REQUESTED, TAIL};
use lib_queue::{region_size, region_size_for, BufferDesc, Consumer, Producer, QueueError, DESC_SIZE, HEADER_SIZE};

const DATA_LEN: usize = 1 << 20;

fn desc(i: u32) -> BufferDesc {
    BufferDesc { offset: u64::from(i) * 64, len: i % 64, cookie: i }
}

#[test]
fn fills_to_capacity_then_full_and_drains_in_order() {
    let region = Region::new(region_size(8));
    let mut tx = region.producer::<8>();
    let mut rx = region.consumer::<8>(DATA_LEN);

    assert_eq!(rx.len(), Ok(0));
    assert_eq!(rx.is_empty(), Ok(true));
    assert_eq!(rx.dequeue(), Ok(None));
    for i in 0..8 {
        assert_eq!(tx.len(), Ok(i as usize));
        tx.enqueue(desc(i)).unwrap();
        assert_eq!(rx.len(), Ok(i as usize + 1));
    }
    assert_eq!(tx.is_full(), Ok(true));
    assert_eq!(tx.enqueue(desc(8)), Err(QueueError::Full));
    assert_eq!(tx.enqueue_batch(&[desc(8)]), Ok(0));
    assert_eq!(rx.len(), Ok(8));

    for i in 0..8 {
        assert_eq!(rx.dequeue(), Ok(Some(desc(i))));
        assert_eq!(tx.len(), Ok(7 - i as usize));
    }
    assert_eq!(rx.dequeue(), Ok(None));
    assert_eq!(rx.is_empty(), Ok(true));
    assert_eq!(tx.is_empty(), Ok(true));
    assert_eq!(tx.is_full(), Ok(false));
}

#[test]
fn batch_enqueues_what_fits_and_publishes_it() {
    let region = Region::new(region_size(4));
    let mut tx = region.producer::<4>();
    let mut rx = region.consumer::<4>(DATA_LEN);

    let batch: Vec<_> = (0..6).map(desc).collect();
    assert_eq!(tx.enqueue_batch(&batch), Ok(4));
    assert_eq!(region.read_u32(TAIL), 4, "one publication of the whole batch");
    assert_eq!(tx.enqueue_batch(&batch[4..]), Ok(0));
    assert_eq!(rx.dequeue(), Ok(Some(desc(0))));
    assert_eq!(rx.dequeue(), Ok(Some(desc(1))));
    assert_eq!(tx.enqueue_batch(&batch[4..]), Ok(2));
    assert_eq!(tx.enqueue_batch(&[]), Ok(0));
    for i in 2..6 {
        assert_eq!(rx.dequeue(), Ok(Some(desc(i))));
    }
    assert_eq!(rx.dequeue(), Ok(None));
}

#[test]
fn free_running_indices_wrap_around_u32() {
    const N: usize = 16;
    let region = Region::new(region_size(N));
    // Both sides resume from the indices found in the region.
    let start = u32::MAX - 40;
    region.write_u32(TAIL, start);
    region.write_u32(HEAD, start);
    let mut tx = region.producer::<N>();
    let mut rx = region.consumer::<N>(DATA_LEN);

    let (mut sent, mut received) = (0u32, 0u32);
    for round in 0..50u32 {
        let burst = round % (N as u32 + 1); // 0..=N, so the queue gets full too
        for _ in 0..burst {
            tx.enqueue(desc(sent)).unwrap();
            sent += 1;
        }
        assert_eq!(rx.len(), Ok(burst as usize));
        while let Some(d) = rx.dequeue().unwrap() {
            assert_eq!(d, desc(received));
            received += 1;
        }
        assert_eq!(region.read_u32(TAIL), start.wrapping_add(sent));
        assert_eq!(region.read_u32(HEAD), start.wrapping_add(received));
    }
    assert_eq!(sent, received);
    assert!(start.checked_add(sent).is_none(), "the indices wrapped");
}

#[test]
fn full_across_the_wrap() {
    const N: usize = 4;
    let region = Region::new(region_size(N));
    region.write_u32(TAIL, u32::MAX - 1);
    region.write_u32(HEAD, u32::MAX - 1);
    let mut tx = region.producer::<N>();
    let mut rx = region.consumer::<N>(DATA_LEN);
    for i in 0..4 {
        tx.enqueue(desc(i)).unwrap();
    }
    assert_eq!(region.read_u32(TAIL), 2);
    assert_eq!(tx.enqueue(desc(4)), Err(QueueError::Full));
    assert_eq!(rx.len(), Ok(4));
    for i in 0..4 {
        assert_eq!(rx.dequeue(), Ok(Some(desc(i))));
    }
    assert_eq!(rx.dequeue(), Ok(None));
}

#[test]
fn handles_resume_from_the_shared_indices() {
    let region = Region::new(region_size(8));
    {
        let mut tx = region.producer::<8>();
        tx.enqueue_batch(&[desc(1), desc(2), desc(3)]).unwrap();
        let mut rx = region.consumer::<8>(DATA_LEN);
        assert_eq!(rx.dequeue(), Ok(Some(desc(1))));
    }
    // A restarted PD carries on where the previous handles stopped.
    let mut tx = region.producer::<8>();
    let mut rx = region.consumer::<8>(DATA_LEN);
    tx.enqueue(desc(4)).unwrap();
    for i in 2..=4 {
        assert_eq!(rx.dequeue(), Ok(Some(desc(i))));
    }
    assert_eq!(rx.dequeue(), Ok(None));
}

#[test]
fn signal_is_requested_cancelled_and_consumed_once() {
    let region = Region::new(region_size(4));
    let mut tx = region.producer::<4>();
    let mut rx = region.consumer::<4>(DATA_LEN);

    // Nobody asked: no notification.
    tx.enqueue(desc(0)).unwrap();
    assert!(!tx.should_signal());

    // Not empty: the consumer must not sleep, and withdraws its request.
    assert_eq!(rx.request_signal_if_empty(), Ok(false));
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 0);
    rx.dequeue().unwrap();

    // Empty: request stands, the next publication notifies exactly once.
    assert_eq!(rx.request_signal_if_empty(), Ok(true));
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 1);
    tx.enqueue(desc(1)).unwrap();
    assert!(tx.should_signal());
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 0);
    assert!(!tx.should_signal());

    // Explicit request and cancel.
    rx.request_signal();
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 1);
    rx.cancel_signal();
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 0);
    assert!(!tx.should_signal());
}

#[test]
fn layout_matches_the_documentation() {
    assert_eq!(HEADER_SIZE, 128);
    assert_eq!(DESC_SIZE, 16);
    assert_eq!(region_size(512), 128 + 512 * 16);
    assert_eq!(lib_queue::Producer::<512>::REGION_SIZE, region_size(512));
    assert_eq!(lib_queue::Consumer::<1>::REGION_SIZE, 144);

    let region = Region::new(region_size(4));
    let mut tx = region.producer::<4>();
    let mut rx = region.consumer::<4>(u64::MAX as usize);
    for i in 0..6u32 {
        let d = BufferDesc { offset: 0x1122_3344_5566_7700 + u64::from(i), len: 0xa0 + i, cookie: 0xc0 + i };
        tx.enqueue(d).unwrap();
        let s = i as usize % 4;
        assert_eq!(region.read_u64(slot(s)), d.offset);
        assert_eq!(region.read_u32(slot(s) + 8), d.len);
        assert_eq!(region.read_u32(slot(s) + 12), d.cookie);
        assert_eq!(region.read_u32(TAIL), i + 1);
        assert_eq!(rx.dequeue(), Ok(Some(d)));
        assert_eq!(region.read_u32(HEAD), i + 1);
    }
}

#[test]
fn descriptor_bounds() {
    let inside = |offset: u64, len: u32| BufferDesc { offset, len, cookie: 0 }.is_within(4096);
    assert!(inside(0, 4096));
    assert!(inside(4095, 1));
    assert!(inside(4096, 0));
    assert!(!inside(4096, 1));
    assert!(!inside(0, 4097));
    assert!(!inside(u64::MAX, 1), "offset + len overflows");
    assert!(!inside(u64::MAX - 10, u32::MAX));
    assert_eq!(BufferDesc { offset: 100, len: 28, cookie: 9 }.range(), 100..128);
}

#[test]
fn wide_entries_fill_wrap_and_drain_in_order() {
    const N: usize = 16;
    let region = Region::new(region_size_for::<Wide>(N));
    let start = u32::MAX - 40;
    region.write_u32(TAIL, start);
    region.write_u32(HEAD, start);
    let mut tx = region.producer_of::<N, Wide>();
    let mut rx = region.consumer_of::<N, Wide>(u64::MAX);
    assert_eq!(rx.dequeue(), Ok(None));

    let (mut sent, mut received) = (0u64, 0u64);
    for round in 0..50u64 {
        let burst = round % (N as u64 + 1);
        for _ in 0..burst {
            tx.enqueue(Wide::numbered(sent)).unwrap();
            sent += 1;
        }
        assert_eq!(tx.room(), Ok(N - burst as usize));
        if burst == N as u64 {
            assert_eq!(tx.is_full(), Ok(true));
            assert_eq!(tx.enqueue(Wide::numbered(sent)), Err(QueueError::Full));
        }
        assert_eq!(rx.len(), Ok(burst as usize));
        while let Some(w) = rx.dequeue().unwrap() {
            assert_eq!(w, Wide::numbered(received));
            received += 1;
        }
        assert_eq!(tx.is_empty(), Ok(true));
    }
    assert_eq!(sent, received);
    assert!(start.checked_add(sent as u32).is_none(), "the indices wrapped");

    // Batches: what fits, in one publication.
    let batch: Vec<_> = (0..N as u64 + 3).map(Wide::numbered).collect();
    let tail = region.read_u32(TAIL);
    assert_eq!(tx.enqueue_batch(&batch), Ok(N));
    assert_eq!(region.read_u32(TAIL), tail.wrapping_add(N as u32));
    assert_eq!(tx.enqueue_batch(&batch), Ok(0));
    for w in &batch[..N] {
        assert_eq!(rx.dequeue(), Ok(Some(*w)));
    }
}

#[test]
fn wide_layout_and_check() {
    assert_eq!(region_size_for::<Wide>(64), 128 + 64 * 32);
    assert_eq!(Producer::<64, Wide>::REGION_SIZE, 128 + 64 * 32);
    assert_eq!(Consumer::<4, Small>::REGION_SIZE, 128 + 4 * 8);
    assert_eq!(region_size_for::<BufferDesc>(8), region_size(8));

    const N: usize = 4;
    let region = Region::new(region_size_for::<Wide>(N));
    let mut tx = region.producer_of::<N, Wide>();
    let mut rx = region.consumer_of::<N, Wide>(1000);
    for i in 0..6u64 {
        let w = Wide::numbered(0x1122_3344_5566_7700 % 1000 + i);
        tx.enqueue(w).unwrap();
        let s = i as usize % N;
        assert_eq!(region.read_u64(wide_slot(s)), w.seq);
        assert_eq!(region.read_u64(wide_slot(s) + 8), w.key);
        assert_eq!(region.read_u64(wide_slot(s) + 16), w.extra);
        assert_eq!(region.read_u32(wide_slot(s) + 24), w.tag);
        assert_eq!(region.read_u32(wide_slot(s) + 28), w.cookie);
        assert_eq!(region.read_u32(TAIL), i as u32 + 1);
        assert_eq!(rx.dequeue(), Ok(Some(w)));
        assert_eq!(region.read_u32(HEAD), i as u32 + 1);
    }

    // The consumer's check: a bound, and consistency between fields.
    let beyond = Wide::numbered(1000);
    let mut torn = Wide::numbered(5);
    torn.key = Wide::key_of(6);
    for bad in [beyond, torn] {
        tx.enqueue(bad).unwrap();
        tx.enqueue(Wide::numbered(7)).unwrap();
        assert_eq!(rx.dequeue(), Err(QueueError::OutOfBounds(bad)));
        assert_eq!(rx.dequeue(), Ok(Some(Wide::numbered(7))), "the bad entry was consumed");
    }
    assert_eq!(
        QueueError::OutOfBounds(Small { id: 0x2a, status: 1 }).to_string(),
        "entry out of bounds: Small { id: 2a, status: 1 }"
    );
}

#[test]
fn small_unchecked_entries_and_the_signal_flag() {
    const N: usize = 64;
    let region = Region::new(region_size_for::<Small>(N));
    let mut tx = region.producer_of::<N, Small>();
    let mut rx = region.consumer_of::<N, Small>(());

    tx.enqueue(Small { id: 1, status: u32::MAX }).unwrap();
    assert!(!tx.should_signal(), "nobody asked");
    assert_eq!(rx.request_signal_if_empty(), Ok(false), "not empty");
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 0, "request withdrawn");
    assert_eq!(rx.dequeue(), Ok(Some(Small { id: 1, status: u32::MAX })));
    assert_eq!(rx.request_signal_if_empty(), Ok(true));
    assert_eq!(region.read_u32(SIGNAL_REQUESTED), 1);
    tx.enqueue(Small { id: 2, status: 0 }).unwrap();
    assert!(tx.should_signal());
    assert!(!tx.should_signal(), "one notification per request");

    // Any bit pattern is an entry: no check, nothing rejected.
    tx.enqueue(Small { id: 3, status: 3 }).unwrap();
    region.write_u64(128 + 2 * 8, u64::MAX);
    assert_eq!(rx.dequeue(), Ok(Some(Small { id: 2, status: 0 })));
    assert_eq!(rx.dequeue(), Ok(Some(Small { id: u32::MAX, status: u32::MAX })));
    assert_eq!(rx.dequeue(), Ok(None));
}

/// "Starting over": the surviving side resets its handle while the
/// restarted side holds none; the new side's handle then starts from an
/// empty queue, whatever the old indices and entries were.
#[test]
fn a_reset_empties_the_queue_for_a_new_peer_from_either_side() {
    for reset_by_producer in [true, false] {
        let region = Region::new(region_size(8));
        let mut tx = region.producer::<8>();
        let mut old_rx = region.consumer::<8>(DATA_LEN);
        for i in 0..11 {
            tx.enqueue(desc(i)).unwrap();
            if i < 6 {
                assert_eq!(old_rx.dequeue(), Ok(Some(desc(i))));
            }
        }
        old_rx.request_signal();
        assert_eq!((region.read_u32(TAIL), region.read_u32(HEAD)), (11, 6));
        if reset_by_producer {
            tx.reset();
        } else {
            old_rx.reset();
        }
        assert_eq!((region.read_u32(TAIL), region.read_u32(HEAD), region.read_u32(SIGNAL_REQUESTED)), (0, 0, 0));
        if reset_by_producer {
            // The restarted consumer starts from the zeros.
            let mut rx = region.consumer::<8>(DATA_LEN);
            assert_eq!(rx.dequeue(), Ok(None));
            tx.enqueue(desc(20)).unwrap();
            assert_eq!(rx.dequeue(), Ok(Some(desc(20))));
            assert_eq!(tx.len(), Ok(0));
        } else {
            // The restarted producer starts from the zeros, and all 8
            // slots are free again.
            let mut tx = region.producer::<8>();
            assert_eq!(old_rx.dequeue(), Ok(None));
            for i in 0..8 {
                tx.enqueue(desc(30 + i)).unwrap();
            }
            assert_eq!(tx.is_full(), Ok(true));
            assert_eq!(old_rx.dequeue(), Ok(Some(desc(30))));
        }
    }
}
