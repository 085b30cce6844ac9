extern crate std;

use crate::pins::{PinTable, Refused};
use crate::*;
use lib_test_rng::Rng;
use std::boxed::Box;
use std::collections::BTreeMap;
use std::vec::Vec;

/// A zeroed, page-aligned queue region on the host.
#[repr(C, align(4096))]
struct Region([u8; QUEUE_REGION_SIZE]);

fn region() -> Box<Region> {
    Box::new(Region([0; QUEUE_REGION_SIZE]))
}

#[test]
fn requests_and_responses_cross_their_queues_unchanged() {
    let mut mem = region();
    let base = mem.0.as_mut_ptr();
    // SAFETY: `mem` outlives both handles and is accessed only through them.
    let (mut tx, mut rx) = unsafe { (RequestProducer::new(base), RequestConsumer::new(base, ())) };
    let requests = [
        Request::open(7, 0xdead_beef),
        Request::release(0x0003_0002),
        Request::hello(4),
        Request { op: 99, arg: 1, tag: 2 },
    ];
    for round in 0..40 {
        for r in requests {
            tx.enqueue(Request { tag: r.tag ^ round, ..r }).unwrap();
        }
        for r in requests {
            assert_eq!(rx.dequeue(), Ok(Some(Request { tag: r.tag ^ round, ..r })));
        }
    }
    let ops: Vec<Option<Op>> = requests.iter().map(Request::op).collect();
    assert_eq!(ops, [Some(Op::Open), Some(Op::Release), Some(Op::Hello), None]);

    let mut mem = region();
    let base = mem.0.as_mut_ptr();
    // SAFETY: as above.
    let (mut tx, mut rx) = unsafe { (ResponseProducer::new(base), ResponseConsumer::new(base, ())) };
    let responses = [
        Response::ready(1, 0x0001_0000, 0x1234_5678_9abc),
        Response::other(2, Kind::OverQuota),
        Response { kind: 42, tag: 3, pin: 0, offset: 0 },
    ];
    for r in responses {
        tx.enqueue(r).unwrap();
    }
    let got: Vec<Response> = core::iter::from_fn(|| rx.dequeue().unwrap()).collect();
    assert_eq!(got, responses);
    assert_eq!(got[0].kind(), Kind::Ready);
    assert_eq!(got[1].kind(), Kind::OverQuota);
    assert_eq!(got[2].kind(), Kind::BadRequest, "an unknown kind is an error, not a pin");
}

#[test]
fn every_kind_round_trips_through_its_code() {
    let known: Vec<u32> = (0..16).filter(|&code| Kind::from_code(code).is_some_and(|k| k as u32 == code)).collect();
    assert_eq!(known, (0..=Kind::Hello as u32).collect::<Vec<_>>(), "every kind, and nothing else, decodes");
}

#[test]
fn info_is_read_only_once_ready() {
    // SAFETY: an all-zero `Info` is valid (atomics of zero).
    let info: Info = unsafe { core::mem::zeroed() };
    assert_eq!(info.read(), None, "not ready at first");
    info.publish(1, 8192, 4096);
    assert_eq!(info.read(), Some(InfoSnapshot { epoch: 1, head_len: 8192, quota_blocks: 4096 }));
    info.withdraw();
    assert_eq!(info.read(), None, "a restarted cache withdraws it");
    info.publish(2, 8192, 4096);
    assert_eq!(info.read().map(|i| i.epoch), Some(2));
}

#[test]
fn a_refused_image_is_never_ready_and_counters_read_back_field_by_field() {
    // SAFETY: an all-zero `Info` is valid (atomics of zero).
    let info: Info = unsafe { core::mem::zeroed() };
    assert!(!info.refused());
    info.refuse();
    assert!(info.refused());
    assert_eq!(info.read(), None, "refused is not ready");
    assert_eq!(info.counters(), Counters::default());
    let c = Counters {
        hits: 1,
        loads: 2,
        loaded: 3,
        failed_loads: 4,
        evictions: 5,
        busy: 6,
        verified: 7,
        corrupt: 8,
        pins: 9,
        blocks: 10,
        bad_releases: 11,
    };
    info.publish_counters(&c);
    assert_eq!(info.counters(), c, "each field in its place");
    assert_eq!(core::mem::size_of::<Info>(), 16 + 11 * 8, "the layout the docs give");
}

/// A pin of the cache, as `fs-cache-core` would give it: not `Copy`, so the
/// table can only hand it back once.
#[derive(Debug, PartialEq, Eq)]
struct CachePin(u32);

#[test]
fn a_pin_is_released_once_by_its_number_and_never_by_a_stale_one() {
    let mut t: PinTable<CachePin, 4> = PinTable::new(100);
    let a = t.take(CachePin(1), 10).unwrap();
    let b = t.take(CachePin(2), 20).unwrap();
    assert_ne!(a, b);
    assert_eq!((t.len(), t.blocks()), (2, 30));
    assert_eq!(t.release(a), Some(CachePin(1)));
    assert_eq!(t.release(a), None, "released twice");
    // The slot is given out again, with another generation: the old
    // number still releases nothing.
    let c = t.take(CachePin(3), 5).unwrap();
    assert_eq!(c & 0xffff, a & 0xffff, "the freed slot is reused");
    assert_ne!(c, a);
    assert_eq!(t.release(a), None, "a stale number");
    assert_eq!(t.release(0), None, "generation 0 is never given");
    assert_eq!(t.release(0xffff_ffff), None, "a slot past the table");
    assert_eq!(t.bad_releases(), 4);
    assert_eq!(t.release(c), Some(CachePin(3)));
    assert_eq!(t.release(b), Some(CachePin(2)));
    assert!(t.is_empty());
    assert_eq!(t.blocks(), 0);
}

#[test]
fn the_quota_and_the_table_size_refuse_and_give_the_pin_back() {
    let mut t: PinTable<CachePin, 2> = PinTable::new(30);
    let a = t.take(CachePin(1), 20).unwrap();
    assert_eq!(t.admits(11), Err(Refused::OverQuota));
    assert_eq!(t.take(CachePin(2), 11), Err((Refused::OverQuota, CachePin(2))));
    let _b = t.take(CachePin(3), 10).unwrap();
    assert_eq!(t.blocks(), 30, "exactly the quota is allowed");
    assert_eq!(t.take(CachePin(4), 0), Err((Refused::Full, CachePin(4))));
    t.release(a).unwrap();
    assert_eq!(t.admits(20), Ok(()));
}

#[test]
fn a_hello_drains_every_pin_and_frees_the_quota() {
    let mut t: PinTable<CachePin, 8> = PinTable::new(1000);
    let numbers: Vec<u32> = (0..6).map(|i| t.take(CachePin(i), 10).unwrap()).collect();
    t.release(numbers[2]).unwrap();
    let mut drained: Vec<u32> = t.drain().map(|p| p.0).collect();
    drained.sort_unstable();
    assert_eq!(drained, [0, 1, 3, 4, 5]);
    assert_eq!((t.len(), t.blocks()), (0, 0));
    for n in numbers {
        assert_eq!(t.release(n), None, "numbers of the earlier life release nothing");
    }
    // All eight slots are free again.
    for i in 0..8 {
        t.take(CachePin(i), 1).unwrap();
    }
}

/// Random takes, releases (held, stale and invented numbers) and drains
/// against a model: every held pin comes back exactly once by its number,
/// nothing else releases anything, the blocks held are the model's sum and
/// never pass the quota.
#[test]
fn the_table_agrees_with_a_model_under_random_use() {
    const N: usize = 16;
    const QUOTA: u64 = 200;
    for seed in 1..=50u64 {
        let mut rng = Rng(seed);
        let mut t: PinTable<CachePin, N> = PinTable::new(QUOTA);
        let mut model: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        let mut ever: Vec<u32> = Vec::new();
        let mut next = 0u32;
        let mut bad = 0u64;
        for _ in 0..2_000 {
            match rng.below(10) {
                0..=4 => {
                    let blocks = rng.below(40) as u32;
                    let held: u64 = model.values().map(|&(_, b)| u64::from(b)).sum();
                    let expect = if model.len() == N {
                        Err(Refused::Full)
                    } else if held + u64::from(blocks) > QUOTA {
                        Err(Refused::OverQuota)
                    } else {
                        Ok(())
                    };
                    next += 1;
                    match t.take(CachePin(next), blocks) {
                        Ok(number) => {
                            assert_eq!(expect, Ok(()), "seed {seed}");
                            assert!(model.insert(number, (next, blocks)).is_none(), "seed {seed}: number in use");
                            ever.push(number);
                        }
                        Err((why, pin)) => {
                            assert_eq!(Err(why), expect, "seed {seed}");
                            assert_eq!(pin, CachePin(next));
                        }
                    }
                }
                5..=7 => {
                    // A number held, one seen before, or an invented one.
                    let number = match rng.below(3) {
                        0 if !model.is_empty() => *model.keys().nth(rng.below(model.len())).unwrap(),
                        1 if !ever.is_empty() => ever[rng.below(ever.len())],
                        _ => rng.next() as u32,
                    };
                    let expect = model.remove(&number).map(|(id, _)| CachePin(id));
                    if expect.is_none() {
                        bad += 1;
                    }
                    assert_eq!(t.release(number), expect, "seed {seed}");
                }
                8 if rng.below(20) == 0 => {
                    let mut got: Vec<u32> = t.drain().map(|p| p.0).collect();
                    got.sort_unstable();
                    let mut want: Vec<u32> = model.values().map(|&(id, _)| id).collect();
                    want.sort_unstable();
                    assert_eq!(got, want, "seed {seed}");
                    model.clear();
                }
                _ => {}
            }
            let held: u64 = model.values().map(|&(_, b)| u64::from(b)).sum();
            assert_eq!((t.len(), t.blocks()), (model.len(), held), "seed {seed}");
            assert!(t.blocks() <= QUOTA);
            assert_eq!(t.bad_releases(), bad, "seed {seed}");
        }
    }
}
