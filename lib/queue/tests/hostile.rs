//! The peer writes whatever it likes into the queue region: this side
//! reports it and never reads or writes out of bounds, hands out a bad
//! descriptor or loops.

mod common;

use common::{with_timeout, Region, Rng, HEAD, SIGNAL_REQUESTED, TAIL};
use shared_queue::{region_size, BufferDesc, QueueError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

const N: usize = 8;
const DATA_LEN: usize = 4096;

fn desc(i: u32) -> BufferDesc {
    BufferDesc {
        offset: u64::from(i) * 16,
        len: 16,
        cookie: i,
    }
}

#[test]
fn consumer_reports_a_tail_beyond_capacity() {
    let region = Region::new(region_size(N));
    let mut tx = region.producer::<N>();
    let mut rx = region.consumer::<N>(DATA_LEN);
    tx.enqueue(desc(0)).unwrap();
    assert_eq!(rx.dequeue(), Ok(Some(desc(0))));
    let head = region.read_u32(HEAD);

    // tail - head > N, including "negative" counts.
    for bogus in [
        head + N as u32 + 1,
        head + 1000,
        head.wrapping_sub(1),
        u32::MAX,
        head + (1 << 31),
    ] {
        region.write_u32(TAIL, bogus);
        assert_eq!(rx.dequeue(), Err(QueueError::Corrupt), "tail {bogus}");
        assert_eq!(rx.len(), Err(QueueError::Corrupt));
        assert_eq!(rx.is_empty(), Err(QueueError::Corrupt));
        // Not a reason to sleep, and the request is withdrawn.
        assert_eq!(rx.request_signal_if_empty(), Err(QueueError::Corrupt));
        assert_eq!(region.read_u32(SIGNAL_REQUESTED), 0);
        assert_eq!(region.read_u32(HEAD), head, "nothing consumed");
    }

    // Exactly N entries is legal: whatever is in the slots gets validated.
    region.write_u32(TAIL, head + N as u32);
    assert_eq!(rx.len(), Ok(N));
    for _ in 0..N {
        assert!(matches!(rx.dequeue(), Ok(Some(_))));
    }
    assert_eq!(rx.dequeue(), Ok(None));
}

#[test]
fn producer_reports_a_head_beyond_capacity() {
    let region = Region::new(region_size(N));
    let mut tx = region.producer::<N>();
    tx.enqueue_batch(&[desc(0), desc(1), desc(2)]).unwrap();
    let tail = region.read_u32(TAIL);

    for bogus in [
        tail + 1,
        tail.wrapping_sub(N as u32 + 1),
        tail + (1 << 31),
        tail.wrapping_sub(1000),
    ] {
        region.write_u32(HEAD, bogus);
        assert_eq!(
            tx.enqueue(desc(9)),
            Err(QueueError::Corrupt),
            "head {bogus}"
        );
        assert_eq!(tx.enqueue_batch(&[desc(9)]), Err(QueueError::Corrupt));
        assert_eq!(tx.len(), Err(QueueError::Corrupt));
        assert_eq!(region.read_u32(TAIL), tail, "nothing published");
    }
    // A head claiming nothing was consumed: full.
    region.write_u32(HEAD, tail.wrapping_sub(N as u32));
    assert_eq!(tx.enqueue(desc(9)), Err(QueueError::Full));
}

#[test]
fn each_side_ignores_scribbles_on_its_own_index() {
    let region = Region::new(region_size(N));
    let mut tx = region.producer::<N>();
    let mut rx = region.consumer::<N>(DATA_LEN);
    tx.enqueue_batch(&[desc(0), desc(1), desc(2)]).unwrap();

    // The peer rewrites the consumer's head: the consumer goes on from its
    // own copy and republishes it.
    region.write_u32(HEAD, 12345);
    assert_eq!(rx.dequeue(), Ok(Some(desc(0))));
    assert_eq!(region.read_u32(HEAD), 1);

    // The peer rewrites the producer's tail: the producer's next publication
    // restores it (the consumer meanwhile sees whatever was written).
    region.write_u32(TAIL, 1);
    assert_eq!(rx.dequeue(), Ok(None));
    tx.enqueue(desc(3)).unwrap();
    assert_eq!(region.read_u32(TAIL), 4);
    for i in 1..=3 {
        assert_eq!(rx.dequeue(), Ok(Some(desc(i))));
    }
}

#[test]
fn descriptors_outside_the_data_region_are_consumed_and_reported() {
    let region = Region::new(region_size(N));
    let mut tx = region.producer::<N>();
    let mut rx = region.consumer::<N>(DATA_LEN);
    let bad = [
        BufferDesc {
            offset: DATA_LEN as u64,
            len: 1,
            cookie: 0,
        },
        BufferDesc {
            offset: 0,
            len: DATA_LEN as u32 + 1,
            cookie: 0,
        },
        BufferDesc {
            offset: u64::MAX,
            len: 2,
            cookie: 0,
        }, // offset + len overflows
        BufferDesc {
            offset: u64::MAX - 4095,
            len: 4096,
            cookie: 0,
        },
    ];
    let good = BufferDesc {
        offset: DATA_LEN as u64 - 1,
        len: 1,
        cookie: 7,
    };
    for b in bad {
        tx.enqueue(b).unwrap();
        tx.enqueue(good).unwrap();
        assert_eq!(rx.dequeue(), Err(QueueError::OutOfBounds(b)));
        assert_eq!(rx.dequeue(), Ok(Some(good)), "the bad entry was skipped");
        assert_eq!(rx.dequeue(), Ok(None));
    }

    // Written behind the producer's back, directly into the slot.
    tx.enqueue(good).unwrap();
    let s = (region.read_u32(TAIL) as usize - 1) % N;
    region.write_slot(s, 4000, 97, 0);
    assert_eq!(
        rx.dequeue(),
        Err(QueueError::OutOfBounds(BufferDesc {
            offset: 4000,
            len: 97,
            cookie: 0
        }))
    );
}

/// A peer thread rewrites `tail` and the slots at random, as fast as it
/// can, while this side dequeues. Every result must be one of the allowed
/// outcomes, and every descriptor handed out within the data region.
#[test]
fn consumer_with_tail_and_slots_flipping() {
    with_timeout(120, || {
        const ROUNDS: usize = 300_000;
        let queue = Region::new(region_size(N));
        let stop = AtomicBool::new(false);
        let (mut handed_out, mut corrupt, mut out_of_bounds, mut empty) = (0, 0, 0, 0);
        thread::scope(|s| {
            s.spawn(|| {
                let mut rng = Rng(0x1234_5678_9abc_def1);
                while !stop.load(Ordering::Relaxed) {
                    let r = rng.next();
                    let i = (r >> 8) as usize % N;
                    match r % 8 {
                        // Mostly plausible tails (up to N + 2 entries past
                        // the consumer's published head), some random ones.
                        0..=2 => {
                            let count = (r >> 32) as u32 % (N as u32 + 3);
                            queue.write_u32(TAIL, queue.read_u32(HEAD).wrapping_add(count))
                        }
                        3 => queue.write_u32(TAIL, (r >> 16) as u32),
                        // Two in-bounds descriptors whose halves together are
                        // out of bounds: a torn read must not pass the check.
                        4 => queue.write_slot(i, 0, DATA_LEN as u32, 1),
                        5 => queue.write_slot(i, DATA_LEN as u64, 0, 2),
                        6 => queue.write_slot(i, r >> 52, (r >> 20) as u32 % 64, 3),
                        _ => queue.write_slot(i, r >> 20, (r >> 3) as u32, 4),
                    }
                }
            });

            let mut rx = queue.consumer::<N>(DATA_LEN);
            for _ in 0..ROUNDS {
                match rx.dequeue() {
                    Ok(Some(d)) => {
                        assert!(d.is_within(DATA_LEN), "handed out {d:?}");
                        assert!(d.range().end <= DATA_LEN);
                        handed_out += 1;
                    }
                    Ok(None) => empty += 1,
                    Err(QueueError::Corrupt) => corrupt += 1,
                    Err(QueueError::OutOfBounds(d)) => {
                        assert!(!d.is_within(DATA_LEN));
                        out_of_bounds += 1;
                    }
                    Err(e) => panic!("dequeue cannot fail with {e:?}"),
                }
                if let Ok(len) = rx.len() {
                    assert!(len <= N);
                }
                let _ = rx.request_signal_if_empty();
            }
            stop.store(true, Ordering::Relaxed);
        });
        eprintln!(
            "hostile producer: {handed_out} handed out, {out_of_bounds} out of bounds, {corrupt} corrupt, {empty} empty"
        );
        assert!(
            handed_out > 0 && out_of_bounds > 0 && corrupt > 0,
            "all outcomes exercised"
        );
    });
}

/// A peer thread rewrites `head` and the signal flag at random while this
/// side enqueues: only `Ok`, `Full` (as `Ok(0)`) or `Corrupt`.
#[test]
fn producer_with_head_and_flag_flipping() {
    with_timeout(120, || {
        const ROUNDS: usize = 300_000;
        let queue = Region::new(region_size(N));
        let stop = AtomicBool::new(false);
        let (mut sent, mut full, mut corrupt, mut signals) = (0, 0, 0, 0);
        thread::scope(|s| {
            s.spawn(|| {
                let mut rng = Rng(0x0fed_cba9_8765_4321);
                while !stop.load(Ordering::Relaxed) {
                    let r = rng.next();
                    match r % 8 {
                        0..=4 => {
                            let count = (r >> 32) as u32 % (N as u32 + 3);
                            queue.write_u32(HEAD, queue.read_u32(TAIL).wrapping_sub(count))
                        }
                        5 => queue.write_u32(HEAD, (r >> 16) as u32),
                        _ => queue.write_u32(SIGNAL_REQUESTED, (r >> 40) as u32 & 3),
                    }
                }
            });

            let mut tx = queue.producer::<N>();
            for round in 0..ROUNDS {
                match tx.enqueue_batch(&[desc(round as u32 % 256); 3]) {
                    Ok(0) => full += 1,
                    Ok(n) => {
                        assert!(n <= 3);
                        sent += n;
                    }
                    Err(e) => {
                        assert_eq!(e, QueueError::Corrupt);
                        corrupt += 1;
                    }
                }
                if let Ok(len) = tx.len() {
                    assert!(len <= N);
                }
                if tx.should_signal() {
                    signals += 1;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        eprintln!(
            "hostile consumer: {sent} sent, {full} full, {corrupt} corrupt, {signals} signals"
        );
        assert!(
            sent > 0 && full > 0 && corrupt > 0 && signals > 0,
            "all outcomes exercised"
        );
    });
}
