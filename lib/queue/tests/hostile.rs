//! The peer writes whatever it likes into the queue region: this side
//! reports it and never reads or writes out of bounds, hands out a bad
//! descriptor (or, on the generic path, an entry failing its check) or loops.

mod common;

use common::{with_timeout, Region, Rng, Wide, HEAD, SIGNAL_REQUESTED, TAIL};
use lib_queue::{region_size, region_size_for, BufferDesc, Entry, QueueError};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const N: usize = 8;
const DATA_LEN: usize = 4096;
/// How long a hostile test goes on, past its rounds, waiting to see every outcome
/// (the peer thread may hardly run on a loaded machine; `with_timeout` allows 120 s).
const PATIENCE: Duration = Duration::from_secs(60);

fn desc(i: u32) -> BufferDesc {
    BufferDesc { offset: u64::from(i) * 16, len: 16, cookie: i }
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
    for bogus in [head + N as u32 + 1, head + 1000, head.wrapping_sub(1), u32::MAX, head + (1 << 31)] {
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

    for bogus in [tail + 1, tail.wrapping_sub(N as u32 + 1), tail + (1 << 31), tail.wrapping_sub(1000)] {
        region.write_u32(HEAD, bogus);
        assert_eq!(tx.enqueue(desc(9)), Err(QueueError::Corrupt), "head {bogus}");
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
        BufferDesc { offset: DATA_LEN as u64, len: 1, cookie: 0 },
        BufferDesc { offset: 0, len: DATA_LEN as u32 + 1, cookie: 0 },
        BufferDesc { offset: u64::MAX, len: 2, cookie: 0 }, // offset + len overflows
        BufferDesc { offset: u64::MAX - 4095, len: 4096, cookie: 0 },
    ];
    let good = BufferDesc { offset: DATA_LEN as u64 - 1, len: 1, cookie: 7 };
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
    assert_eq!(rx.dequeue(), Err(QueueError::OutOfBounds(BufferDesc { offset: 4000, len: 97, cookie: 0 })));
}

/// A peer thread rewrites `tail` and the slots at random, as fast as it
/// can, while this side dequeues. Every result must be one of the allowed
/// outcomes; every entry handed out must be `good` (an oracle for the
/// entry's check) and every entry rejected not.
///
/// `write_slot(region, i, r)` writes slot `i` from the random number `r`,
/// field by field, so that the consumer may copy out a mix of old and new
/// fields: the copy that passed the check must be the one handed out.
fn consumer_with_tail_and_slots_flipping<T>(
    seed: u64,
    bounds: T::Bounds,
    write_slot: impl Fn(&Region, usize, u64) + Sync,
    good: impl Fn(&T) -> bool,
) where
    T: Entry + Debug,
{
    const ROUNDS: usize = 300_000;
    let queue = Region::new(region_size_for::<T>(N));
    let stop = AtomicBool::new(false);
    let (mut handed_out, mut corrupt, mut out_of_bounds, mut empty) = (0, 0, 0, 0);
    thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(seed);
            while !stop.load(Ordering::Relaxed) {
                let r = rng.next();
                match r % 8 {
                    // Mostly plausible tails (up to N + 2 entries past the
                    // consumer's published head), some random ones.
                    0..=2 => {
                        let count = (r >> 32) as u32 % (N as u32 + 3);
                        queue.write_u32(TAIL, queue.read_u32(HEAD).wrapping_add(count))
                    }
                    3 => queue.write_u32(TAIL, (r >> 16) as u32),
                    _ => write_slot(&queue, (r >> 8) as usize % N, r),
                }
            }
        });

        // A failed assertion below must stop the peer too, or the scope
        // waits for it until `with_timeout` gives up.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop_peer = StopOnDrop(&stop);
        let mut rx = queue.consumer_of::<N, T>(bounds);
        // At least ROUNDS, and on until every outcome was seen: how the two
        // threads interleave depends on the machine's load.
        let start = Instant::now();
        for round in 0usize.. {
            let seen_all = handed_out > 0 && out_of_bounds > 0 && corrupt > 0;
            if round >= ROUNDS && (seen_all || start.elapsed() > PATIENCE) {
                break;
            }
            if round % 1024 == 0 {
                // On a loaded machine, give the peer a chance to run.
                thread::yield_now();
            }
            match rx.dequeue() {
                Ok(Some(e)) => {
                    assert!(good(&e), "handed out {e:?}");
                    handed_out += 1;
                }
                Ok(None) => empty += 1,
                Err(QueueError::Corrupt) => corrupt += 1,
                Err(QueueError::OutOfBounds(e)) => {
                    assert!(!good(&e), "rejected {e:?}");
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
        "hostile producer of {}: {handed_out} handed out, {out_of_bounds} out of bounds, {corrupt} corrupt, {empty} empty",
        std::any::type_name::<T>()
    );
    assert!(handed_out > 0 && out_of_bounds > 0 && corrupt > 0, "all outcomes exercised");
}

#[test]
fn consumer_with_tail_and_descriptors_flipping() {
    let write_slot = |queue: &Region, i: usize, r: u64| match r % 4 {
        // Two in-bounds descriptors whose halves together are out of
        // bounds: a torn read must not pass the check.
        0 => queue.write_slot(i, 0, DATA_LEN as u32, 1),
        1 => queue.write_slot(i, DATA_LEN as u64, 0, 2),
        // Ending just before, at or just past the end of the region: an
        // off-by-one in the check hands one out or rejects one.
        2 if r & 0x10 != 0 => queue.write_slot(i, DATA_LEN as u64 - 8 + (r >> 61), (r >> 20) as u32 % 16, 3),
        2 => queue.write_slot(i, r >> 52, (r >> 20) as u32 % 64, 3),
        _ => queue.write_slot(i, r >> 20, (r >> 3) as u32, 4),
    };
    // Independent of the code under test: the end in a type that cannot
    // overflow, compared with the region's size.
    let good = |d: &BufferDesc| u128::from(d.offset) + u128::from(d.len) <= DATA_LEN as u128;
    with_timeout(120, move || consumer_with_tail_and_slots_flipping(0x1234_5678_9abc_def1, DATA_LEN, write_slot, good));
}

/// The generic path: 32-byte entries written whole are consistent, but a
/// copy taken while one is half rewritten mixes two of them and fails
/// [`Wide`]'s check.
#[test]
fn consumer_with_tail_and_wide_entries_flipping() {
    const MAX_SEQ: u64 = 1 << 40;
    let write_slot = |queue: &Region, i: usize, r: u64| match r % 4 {
        // Consistent and in bounds: alternating between two makes torn
        // copies likely.
        0 | 1 => queue.write_wide_slot(i, Wide::numbered(r >> 63)),
        // Consistent but beyond the bound.
        2 => queue.write_wide_slot(i, Wide::numbered(MAX_SEQ + (r >> 40))),
        // Garbage.
        _ => queue.write_wide_slot(i, Wide { seq: r >> 30, key: r, extra: !r, tag: r as u32, cookie: 0 }),
    };
    let good = |w: &Wide| w.seq < MAX_SEQ && w.key == Wide::key_of(w.seq) && w.tag == Wide::tag_of(w.seq);
    with_timeout(120, move || consumer_with_tail_and_slots_flipping(0x2468_ace0_1357_9bdf, MAX_SEQ, write_slot, good));
}

/// A peer thread rewrites `head` and the signal flag at random while this
/// side enqueues `make(round)`: only `Ok`, `Full` (as `Ok(0)`) or `Corrupt`.
fn producer_with_head_and_flag_flipping<T: Entry + Debug + PartialEq>(seed: u64, make: fn(u64) -> T) {
    const ROUNDS: usize = 300_000;
    let queue = Region::new(region_size_for::<T>(N));
    let stop = AtomicBool::new(false);
    let (mut sent, mut full, mut corrupt, mut signals) = (0, 0, 0, 0);
    thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(seed);
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

        let mut tx = queue.producer_of::<N, T>();
        // At least ROUNDS, and on until every outcome was seen (see above).
        let start = Instant::now();
        for round in 0.. {
            let seen_all = sent > 0 && full > 0 && corrupt > 0 && signals > 0;
            if round >= ROUNDS as u64 && (seen_all || start.elapsed() > PATIENCE) {
                break;
            }
            if round % 1024 == 0 {
                thread::yield_now();
            }
            match tx.enqueue_batch(&[make(round); 3]) {
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
        "hostile consumer of {}: {sent} sent, {full} full, {corrupt} corrupt, {signals} signals",
        std::any::type_name::<T>()
    );
    assert!(sent > 0 && full > 0 && corrupt > 0 && signals > 0, "all outcomes exercised");
}

#[test]
fn producer_of_descriptors_with_head_and_flag_flipping() {
    with_timeout(120, || producer_with_head_and_flag_flipping(0x0fed_cba9_8765_4321, |round| desc(round as u32 % 256)));
}

#[test]
fn producer_of_wide_entries_with_head_and_flag_flipping() {
    with_timeout(120, || producer_with_head_and_flag_flipping(0x1357_9bdf_2468_ace0, Wide::numbered));
}

#[test]
fn wide_entries_bogus_indices_are_corrupt() {
    let region = Region::new(region_size_for::<Wide>(N));
    let mut tx = region.producer_of::<N, Wide>();
    let mut rx = region.consumer_of::<N, Wide>(u64::MAX);
    tx.enqueue_batch(&[Wide::numbered(0), Wide::numbered(1)]).unwrap();
    assert_eq!(rx.dequeue(), Ok(Some(Wide::numbered(0))));
    let (head, tail) = (region.read_u32(HEAD), region.read_u32(TAIL));

    for bogus in [head + N as u32 + 1, head.wrapping_sub(1), head + (1 << 31)] {
        region.write_u32(TAIL, bogus);
        assert_eq!(rx.dequeue(), Err(QueueError::Corrupt), "tail {bogus}");
        assert_eq!(rx.request_signal_if_empty(), Err(QueueError::Corrupt));
        assert_eq!(region.read_u32(SIGNAL_REQUESTED), 0);
        assert_eq!(region.read_u32(HEAD), head, "nothing consumed");
    }
    region.write_u32(TAIL, tail);
    for bogus in [tail + 1, tail.wrapping_sub(N as u32 + 1), tail + (1 << 31)] {
        region.write_u32(HEAD, bogus);
        assert_eq!(tx.enqueue(Wide::numbered(9)), Err(QueueError::Corrupt), "head {bogus}");
        assert_eq!(tx.enqueue_batch(&[Wide::numbered(9)]), Err(QueueError::Corrupt));
        assert_eq!(tx.room(), Err(QueueError::Corrupt));
        assert_eq!(region.read_u32(TAIL), tail, "nothing published");
    }
    // A repaired head: the queue goes on.
    region.write_u32(HEAD, head);
    tx.enqueue(Wide::numbered(2)).unwrap();
    assert_eq!(rx.dequeue(), Ok(Some(Wide::numbered(1))));
    assert_eq!(rx.dequeue(), Ok(Some(Wide::numbered(2))));
}
