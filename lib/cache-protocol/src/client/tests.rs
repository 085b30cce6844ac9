//! The client against a small fake cache over real `lib-queue` rings in
//! heap memory. The fake checks the rules a cache can see (hello first,
//! one pin and one outstanding open per file, at most a queue of opens,
//! no release of a pin it does not hold, nothing but the hello after a
//! restart); the owner's side checks what the client hands out (every
//! offset is the current life's, every handle still pinned in the cache).

extern crate std;

use super::*;
use crate::pins::PinTable;
use crate::{Op, RequestConsumer, ResponseProducer, PINS_PER_SERVER, QUEUE_REGION_SIZE};
use lib_test_rng::Rng;
use std::boxed::Box;
use std::collections::BTreeMap;
use std::format;
use std::string::String;
use std::vec::Vec;

#[repr(C, align(4096))]
struct Region([u8; QUEUE_REGION_SIZE]);

/// A zeroed queue region that lives as long as the test process (a few
/// pages per test).
fn region() -> *mut u8 {
    Box::leak(Box::new(Region([0; QUEUE_REGION_SIZE]))).0.as_mut_ptr()
}

const LIFE: u32 = 7;

/// Where the fake places `file` in life `epoch`: distinct per life, so an
/// offset tells which life gave it.
fn offset_of(epoch: u32, file: u32) -> u64 {
    u64::from(epoch) << 32 | u64::from(file) << 12
}

/// Blocks of `file`'s group.
fn blocks_of(file: u32) -> u32 {
    1 + file % 4
}

struct Fake {
    requests: RequestConsumer<'static>,
    responses: ResponseProducer<'static>,
    info: &'static Info,
    epoch: u32,
    down: bool,
    /// The server's hello taken in this life.
    greeted: bool,
    pins: Box<PinTable<u32, PINS_PER_SERVER>>,
    /// Pin number -> file, of this life.
    files_pinned: BTreeMap<u32, u32>,
    /// Opens taken and not answered: (tag, file).
    pending: Vec<(u32, u32)>,
    /// Tags answered (safe to reuse in hostile answers: the client's tags
    /// never repeat within a test).
    answered: Vec<u32>,
    /// Files `0..files` exist.
    files: u32,
    /// Per mille of opens that fail with a random error.
    fail: usize,
    quota: u64,
    /// Every request taken, for the tests that look at the order.
    log: Vec<Request>,
    violations: Vec<String>,
    /// Requests of the server sent to the previous life that this one
    /// takes: not held to the rules of a greeted life.
    carried: usize,
    rng: Rng,
}

impl Fake {
    fn new(files: u32, quota: u64, seed: u64) -> (Fake, RequestProducer<'static>, ResponseConsumer<'static>) {
        let (rq, rs) = (region(), region());
        // SAFETY: an all-zero `Info` is valid (atomics of zero).
        let info: &'static Info = Box::leak(Box::new(unsafe { core::mem::zeroed::<Info>() }));
        info.publish(1, 8192, quota as u32);
        // SAFETY: each region is page-aligned, large enough, lives for the
        // whole process and is accessed only through these handles.
        let (tx, rx, ptx, prx) = unsafe {
            (
                RequestProducer::new(rq),
                RequestConsumer::new(rq, ()),
                ResponseProducer::new(rs),
                ResponseConsumer::new(rs, ()),
            )
        };
        let fake = Fake {
            requests: rx,
            responses: ptx,
            info,
            epoch: 1,
            down: false,
            greeted: false,
            pins: Box::new(PinTable::new(quota)),
            files_pinned: BTreeMap::new(),
            pending: Vec::new(),
            answered: Vec::new(),
            files,
            fail: 0,
            quota,
            log: Vec::new(),
            violations: Vec::new(),
            carried: 0,
            rng: Rng(seed | 1),
        };
        (fake, tx, prx)
    }

    fn client<const FILES: usize>(
        &self,
        tx: RequestProducer<'static>,
        rx: ResponseConsumer<'static>,
        keep: usize,
    ) -> Client<'static, FILES> {
        Client::new(tx, rx, self.info, LIFE, Config { keep })
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    fn room(&self) -> usize {
        self.responses.room().unwrap()
    }

    /// Takes requests while the response queue has room for every open
    /// held (as `Servers` does).
    fn take(&mut self) {
        if self.down {
            return;
        }
        while self.room() > self.pending.len() {
            let Some(r) = self.requests.dequeue().unwrap() else { break };
            self.log.push(r);
            let carried = self.carried > 0;
            self.carried = self.carried.saturating_sub(1);
            match r.op() {
                Some(Op::Hello) => {
                    if r.arg != LIFE {
                        self.violation(format!("hello of life {}", r.arg));
                    }
                    self.greeted = true;
                    for _ in self.pins.drain() {}
                    self.files_pinned.clear();
                    self.pending.clear();
                    self.responses.enqueue(Response::other(r.tag, Kind::Hello)).unwrap();
                }
                // Answered as any open: a pin the server never hears of,
                // until its hello.
                Some(Op::Open) if carried => self.pending.push((r.tag, r.arg)),
                Some(Op::Release) if carried => {
                    self.pins.release(r.arg);
                    self.files_pinned.remove(&r.arg);
                }
                Some(Op::Open) if !self.greeted => self.violation(format!("open {r:?} before the hello")),
                Some(Op::Open) => {
                    let file = r.arg;
                    if self.pending.iter().any(|&(_, f)| f == file) {
                        self.violation(format!("two opens of file {file} outstanding"));
                    }
                    if self.files_pinned.values().any(|&f| f == file) {
                        self.violation(format!("open of file {file} whose pin the server holds"));
                    }
                    if self.pending.len() >= QUEUE_CAPACITY {
                        self.violation(format!("more than {QUEUE_CAPACITY} opens outstanding"));
                    }
                    self.pending.push((r.tag, file));
                }
                Some(Op::Release) if !self.greeted => {
                    self.violation(format!("release of {:#x} before the hello (epoch {})", r.arg, self.epoch))
                }
                Some(Op::Release) => {
                    if self.pins.release(r.arg).is_none() {
                        self.violation(format!("release of {:#x}, not held", r.arg));
                    }
                    self.files_pinned.remove(&r.arg);
                }
                None => self.violation(format!("unknown request {r:?}")),
            }
        }
    }

    /// Answers up to `n` pending opens, in random order.
    fn answer(&mut self, n: usize) {
        for _ in 0..n {
            if self.down || self.pending.is_empty() || self.room() == 0 {
                return;
            }
            let (tag, file) = self.pending.swap_remove(self.rng.below(self.pending.len()));
            self.answered.push(tag);
            let response = if file >= self.files {
                Response::other(tag, Kind::NoSuchFile)
            } else if self.rng.below(1000) < self.fail {
                let kinds = [Kind::IoError, Kind::Corrupt, Kind::TooLarge];
                Response::other(tag, kinds[self.rng.below(kinds.len())])
            } else {
                match self.pins.take(file, blocks_of(file)) {
                    Ok(pin) => {
                        self.files_pinned.insert(pin, file);
                        Response::ready(tag, pin, offset_of(self.epoch, file))
                    }
                    Err(_) => Response::other(tag, Kind::OverQuota),
                }
            };
            self.responses.enqueue(response).unwrap();
        }
    }

    /// Takes every request and answers every open, until nothing moves.
    fn step(&mut self) {
        self.take();
        self.answer(usize::MAX);
        self.take();
    }

    /// The cache dies and a new life starts booting. The old life took
    /// (and dropped) what was in the request queue, or, with `carry`, left
    /// it for the new life; its answers already sent stay in the response
    /// queue.
    fn die(&mut self, carry: bool) {
        if carry {
            self.carried = self.requests.len().unwrap();
        } else {
            while self.requests.dequeue().unwrap().is_some() {}
        }
        self.epoch += 1;
        self.down = true;
        self.greeted = false;
        for _ in self.pins.drain() {}
        self.files_pinned.clear();
        self.pending.clear();
        self.info.withdraw();
    }

    fn come_back(&mut self) {
        self.down = false;
        self.info.publish(self.epoch, 8192, self.quota as u32);
    }

    /// An answer no honest cache would send: a kind of any code, a tag
    /// naming no outstanding open, any pin and offset.
    fn hostile(&mut self) {
        if self.room() == 0 {
            return;
        }
        let tag = match self.rng.below(3) {
            0 if !self.answered.is_empty() => self.answered[self.rng.below(self.answered.len())],
            // An entry past any table in these tests.
            1 => (self.rng.next() as u32) << 16 | 0xff00,
            _ => LIFE + 1 + self.rng.below(5) as u32,
        };
        let r = Response { kind: self.rng.below(12) as u32, tag, pin: self.rng.next() as u32, offset: self.rng.next() };
        self.responses.enqueue(r).unwrap();
    }

    fn holds_file(&self, file: u32) -> bool {
        self.files_pinned.values().any(|&f| f == file)
    }

    fn check(&self) {
        assert!(self.violations.is_empty(), "the cache saw: {:?}", self.violations);
    }
}

/// Polls the client and lets the fake answer until the client is live.
fn greet<const F: usize>(client: &mut Client<'static, F>, fake: &mut Fake) {
    for _ in 0..4 {
        client.poll();
        fake.step();
    }
    client.poll();
    assert!(client.is_live());
}

/// Opens `file` until the answer is final, letting the fake answer.
fn open_ready<const F: usize>(client: &mut Client<'static, F>, fake: &mut Fake, file: u32) -> (Handle, u64) {
    let mut opened = client.open(file);
    for _ in 0..20 {
        match opened {
            Opened::Ready { handle, offset } => {
                client.check();
                return (handle, offset);
            }
            Opened::Wait(token) => {
                client.poll();
                fake.step();
                client.poll();
                opened = if client.may_retry(&token) { client.open(file) } else { Opened::Wait(token) };
            }
            Opened::Fail(kind) => panic!("file {file}: {kind:?}"),
        }
    }
    panic!("file {file}: never ready");
}

#[test]
fn the_hello_goes_first_and_answers_before_its_answer_are_discarded() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 1);
    // Answers to the server's previous life: tags this life will use too.
    for slot in 0..4 {
        fake.responses.enqueue(Response::ready(1 << 16 | slot, 0x0001_0000 | slot, 0xbad_0000)).unwrap();
    }
    fake.responses.enqueue(Response::other(LIFE - 1, Kind::Hello)).unwrap();
    fake.responses.enqueue(Response::other(2 << 16, Kind::IoError)).unwrap();
    let mut client: Client<'_, 16> = fake.client(tx, rx, 4);
    assert_eq!(client.open(0), Opened::Wait(WaitToken(Wait::Start)), "not before the hello is even sent");
    client.poll();
    let token = match client.open(0) {
        Opened::Wait(token) => token,
        other => panic!("{other:?}"),
    };
    assert!(!client.may_retry(&token));
    client.poll();
    assert_eq!(client.open(1), Opened::Wait(WaitToken(Wait::Start)), "opens wait for the hello's answer");
    assert_eq!(client.stats().stale, 6, "every answer of the earlier life discarded");
    assert_eq!(client.stats().sent, 0);
    fake.step();
    assert_eq!(fake.log, [Request::hello(LIFE)], "the hello first, and alone");
    client.poll();
    assert!(client.is_live() && client.may_retry(&token));
    let (h, offset) = open_ready(&mut client, &mut fake, 0);
    assert_eq!(offset, offset_of(1, 0), "an answer of the earlier life was taken");
    client.release(h);
    fake.check();
}

#[test]
fn the_info_must_be_ready_before_anything_is_sent() {
    let (mut fake, tx, rx) = Fake::new(4, 1000, 2);
    fake.info.withdraw();
    let mut client: Client<'_, 4> = fake.client(tx, rx, 4);
    client.poll();
    assert_eq!(fake.requests.len().unwrap(), 0);
    assert_eq!(client.open(0), Opened::Wait(WaitToken(Wait::Start)));
    fake.info.publish(1, 8192, 1000);
    greet(&mut client, &mut fake);
    // Withdrawn again (a restart under way): opens wait, hot files too.
    let (h, _) = open_ready(&mut client, &mut fake, 1);
    fake.info.withdraw();
    assert!(matches!(client.open(1), Opened::Wait(_)));
    client.release(h);
    assert_eq!(fake.requests.len().unwrap(), 0, "nothing is sent while the cache is not ready");
    fake.info.publish(1, 8192, 1000);
    assert!(matches!(client.open(1), Opened::Ready { .. }), "the same life is back: its pin still holds");
    fake.check();
}

#[test]
fn a_hot_file_costs_no_round_trip_and_opens_of_a_file_are_coalesced() {
    let (mut fake, tx, rx) = Fake::new(8, 1000, 3);
    let mut client: Client<'_, 8> = fake.client(tx, rx, 4);
    greet(&mut client, &mut fake);
    let w1 = match client.open(3) {
        Opened::Wait(w) => w,
        other => panic!("{other:?}"),
    };
    let w2 = match client.open(3) {
        Opened::Wait(w) => w,
        other => panic!("{other:?}"),
    };
    assert_eq!(fake.requests.len().unwrap(), 1, "one open for both");
    assert_eq!(client.outstanding(), 1);
    fake.step();
    client.poll();
    assert!(client.may_retry(&w1) && client.may_retry(&w2));
    let Opened::Ready { handle: a, offset } = client.open(3) else { panic!() };
    let Opened::Ready { handle: b, offset: o2 } = client.open(3) else { panic!() };
    assert_eq!((offset, o2), (offset_of(1, 3), offset_of(1, 3)));
    assert_eq!(client.pins(), 1);
    client.release(a);
    client.release(b);
    assert_eq!(client.kept(), 1, "kept: no release sent");
    assert_eq!(fake.requests.len().unwrap(), 0);
    let before = client.stats().sent;
    let Opened::Ready { handle, offset } = client.open(3) else { panic!("a kept pin is ready at once") };
    assert_eq!(offset, offset_of(1, 3));
    assert_eq!((client.stats().sent, fake.requests.len().unwrap()), (before, 0), "no message for a hot file");
    assert_eq!(client.stats().hits, 3);
    client.release(handle);
    fake.step();
    fake.check();
    assert!(fake.holds_file(3));
}

#[test]
fn kept_pins_past_the_limit_are_released_least_recently_used_first() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 4);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 2);
    greet(&mut client, &mut fake);
    for file in 0..4 {
        let (h, _) = open_ready(&mut client, &mut fake, file);
        client.release(h);
    }
    // 0 and 1 went when 2 and 3 were kept.
    fake.step();
    assert_eq!(client.kept(), 2);
    let held: Vec<u32> = fake.files_pinned.values().copied().collect();
    assert_eq!(held, [2, 3]);
    // Reopening 2 makes 3 the oldest.
    let (h, _) = open_ready(&mut client, &mut fake, 2);
    client.release(h);
    let (h, _) = open_ready(&mut client, &mut fake, 5);
    client.release(h);
    fake.step();
    let mut held: Vec<u32> = fake.files_pinned.values().copied().collect();
    held.sort_unstable();
    assert_eq!(held, [2, 5]);
    // keep = 0: released at once.
    let (mut fake, tx, rx) = Fake::new(16, 1000, 5);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 0);
    greet(&mut client, &mut fake);
    let (h, _) = open_ready(&mut client, &mut fake, 1);
    client.release(h);
    fake.step();
    assert!(fake.files_pinned.is_empty());
    fake.check();
}

#[test]
fn an_epoch_change_voids_every_pin_without_releasing_it() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 6);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 8);
    greet(&mut client, &mut fake);
    let (used, _) = open_ready(&mut client, &mut fake, 1);
    let (kept, _) = open_ready(&mut client, &mut fake, 2);
    client.release(kept);
    // An open answered by the old life, the answer still in the queue.
    let Opened::Wait(waiting) = client.open(4) else { panic!() };
    fake.step();
    fake.die(false);
    assert!(matches!(client.open(1), Opened::Wait(_)), "the old life's pin is not handed out");
    fake.come_back();
    assert!(matches!(client.open(1), Opened::Wait(_)), "nor in the new life before the client noticed");
    client.release(used);
    assert_eq!(fake.requests.len().unwrap(), 0, "a release of the old life's pin was sent");
    let polled = client.poll();
    assert!(polled.epoch_changed);
    assert_eq!(client.pins(), 0);
    assert!(client.may_retry(&waiting));
    fake.step();
    assert_eq!(fake.log.last(), Some(&Request::hello(LIFE)), "the client says hello again");
    client.poll();
    assert!(client.is_live());
    assert_eq!(client.stats().stale, 1, "the old life's answer to the open of file 4");
    let (h, offset) = open_ready(&mut client, &mut fake, 4);
    assert_eq!(offset, offset_of(2, 4));
    let (h1, offset) = open_ready(&mut client, &mut fake, 1);
    assert_eq!(offset, offset_of(2, 1));
    client.release(h);
    client.release(h1);
    fake.step();
    fake.check();
    assert_eq!(client.stats().epoch_changes, 1);
}

/// A new life may take requests sent to the old one: an open answered
/// with a pin whose tag the client forgot. The second hello drops it.
#[test]
fn the_hello_after_an_epoch_change_drops_pins_given_for_forgotten_opens() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 17);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 4);
    greet(&mut client, &mut fake);
    let Opened::Wait(w) = client.open(3) else { panic!() };
    fake.die(true);
    fake.come_back();
    // The new life answers the open before the client notices it.
    fake.step();
    assert!(fake.holds_file(3));
    assert!(client.poll().epoch_changed);
    assert_eq!(client.stats().stale, 1, "the answer to the forgotten open");
    fake.step();
    assert!(!fake.holds_file(3), "the pin leaked");
    client.poll();
    assert!(client.is_live() && client.may_retry(&w));
    let (h, offset) = open_ready(&mut client, &mut fake, 3);
    assert_eq!(offset, offset_of(2, 3));
    client.release(h);
    assert_eq!(fake.files_pinned.len(), client.pins());
    fake.check();
}

#[test]
fn a_wait_of_an_earlier_epoch_may_retry_even_when_its_entry_is_reused() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 16);
    let mut client: Client<'_, 1> = fake.client(tx, rx, 0);
    greet(&mut client, &mut fake);
    let Opened::Wait(w) = client.open(1) else { panic!() };
    fake.die(false);
    fake.come_back();
    assert!(client.poll().epoch_changed);
    greet(&mut client, &mut fake);
    // Another file takes the one entry before the waiter opens again.
    let Opened::Wait(other) = client.open(2) else { panic!() };
    assert!(!client.may_retry(&other));
    assert!(client.may_retry(&w), "the open it waited for is gone");
    // It opens again: the table is full, so it waits for room.
    let Opened::Wait(room) = client.open(1) else { panic!() };
    assert_eq!(room, WaitToken(Wait::Room { frees: client.frees }));
    fake.check();
}

#[test]
fn a_stale_handle_releases_nothing_even_when_its_entry_is_reused() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 7);
    let mut client: Client<'_, 1> = fake.client(tx, rx, 0);
    greet(&mut client, &mut fake);
    let (a, _) = open_ready(&mut client, &mut fake, 1);
    let stale = Handle { slot: a.slot, generation: a.generation };
    client.release(a);
    let (b, _) = open_ready(&mut client, &mut fake, 2);
    assert_eq!(b.slot, stale.slot, "the one entry is reused");
    client.release(stale);
    assert_eq!(client.stats().stale_handles, 1);
    assert!(client.holds(&b));
    client.release(Handle { slot: 99, generation: 1 });
    assert_eq!(client.stats().stale_handles, 2);
    fake.step();
    assert!(fake.holds_file(2), "b's pin was released by a stale handle");
    fake.check();
}

#[test]
fn a_failure_is_owed_to_each_waiter_once_then_the_file_is_tried_again() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 8);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 4);
    greet(&mut client, &mut fake);
    let waits: Vec<WaitToken> = (0..3)
        .map(|_| match client.open(5) {
            Opened::Wait(w) => w,
            other => panic!("{other:?}"),
        })
        .collect();
    fake.fail = 1000;
    fake.step();
    client.poll();
    assert!(waits.iter().all(|w| client.may_retry(w)));
    // One waiter leaves; the two others get the failure once each.
    client.abandon(waits[0]);
    let Opened::Fail(kind) = client.open(5) else { panic!() };
    assert!(matches!(kind, Kind::IoError | Kind::Corrupt | Kind::TooLarge));
    assert_eq!(client.open(5), Opened::Fail(kind));
    // Nobody is owed it any more: a new open is sent.
    fake.fail = 0;
    let sent = client.stats().sent;
    assert!(matches!(client.open(5), Opened::Wait(_)));
    assert_eq!(client.stats().sent, sent + 1);
    let (h, _) = open_ready(&mut client, &mut fake, 5);
    client.release(h);
    // An open of a file that is not there.
    assert!(matches!(client.open(99), Opened::Wait(_)));
    fake.step();
    client.poll();
    assert_eq!(client.open(99), Opened::Fail(Kind::NoSuchFile));
    fake.check();
}

#[test]
fn an_abandoned_open_is_not_sent_and_its_answer_is_kept_or_released() {
    let (mut fake, tx, rx) = Fake::new(200, 100_000, 9);
    let mut client: Client<'_, 128> = fake.client(tx, rx, 1);
    greet(&mut client, &mut fake);
    // QUEUE_CAPACITY opens outstanding; the next one waits to be sent.
    let waits: Vec<WaitToken> = (0..QUEUE_CAPACITY as u32 + 1)
        .map(|f| match client.open(f) {
            Opened::Wait(w) => w,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(client.outstanding(), QUEUE_CAPACITY);
    client.abandon(waits[QUEUE_CAPACITY]);
    client.abandon(waits[0]);
    client.abandon(waits[1]);
    fake.step();
    client.poll();
    fake.step();
    assert!(!fake.log.iter().any(|r| r.op() == Some(Op::Open) && r.arg == QUEUE_CAPACITY as u32));
    // Files 0 and 1 were answered with nobody waiting: one kept, one released.
    let kept = [0, 1].iter().filter(|&&f| fake.holds_file(f)).count();
    assert_eq!(kept, 1);
    assert_eq!(client.kept(), 1);
    fake.check();
}

#[test]
fn over_quota_releases_kept_pins_and_opens_again_or_fails() {
    // Files 0..4 take 1, 2, 3, 4 blocks; the quota is 7.
    let (mut fake, tx, rx) = Fake::new(16, 7, 10);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 8);
    greet(&mut client, &mut fake);
    for file in [0, 1, 2] {
        let (h, _) = open_ready(&mut client, &mut fake, file);
        client.release(h);
    }
    assert_eq!(client.kept(), 3);
    // 4 blocks: 0 and 1 (the least recently used) must go.
    let (h3, offset) = open_ready(&mut client, &mut fake, 3);
    assert_eq!(offset, offset_of(1, 3));
    assert_eq!(client.stats().over_quota_retries, 2);
    assert_eq!(fake.log.iter().filter(|r| r.op() == Some(Op::Release)).count(), 2);
    let mut held: Vec<u32> = fake.files_pinned.values().copied().collect();
    held.sort_unstable();
    assert_eq!(held, [2, 3]);
    // Nothing kept is left to release while 3 and 2 are in use: fail.
    let (h2, _) = open_ready(&mut client, &mut fake, 2);
    assert!(matches!(client.open(1), Opened::Wait(_)));
    fake.step();
    client.poll();
    assert_eq!(client.open(1), Opened::Fail(Kind::OverQuota));
    client.release(h2);
    client.release(h3);
    fake.check();
}

#[test]
fn releases_owed_while_the_queue_is_full_go_first_later() {
    let (mut fake, tx, rx) = Fake::new(200, 100_000, 11);
    let mut client: Client<'_, 128> = fake.client(tx, rx, 0);
    greet(&mut client, &mut fake);
    let (h, _) = open_ready(&mut client, &mut fake, 100);
    // The cache takes nothing for a while: the queue fills with opens.
    let mut waits = Vec::new();
    for f in 0..QUEUE_CAPACITY as u32 + 3 {
        let Opened::Wait(w) = client.open(f) else { panic!() };
        waits.push((w, f));
    }
    assert_eq!(fake.requests.len().unwrap(), QUEUE_CAPACITY);
    client.release(h);
    assert!(fake.holds_file(100));
    let before = fake.log.len();
    fake.step();
    client.poll();
    fake.take();
    let after: Vec<Request> = fake.log[before + QUEUE_CAPACITY..].to_vec();
    assert_eq!(after.first().and_then(Request::op), Some(Op::Release), "the owed release goes first: {after:?}");
    assert!(!fake.holds_file(100));
    for (w, f) in waits {
        while !client.may_retry(&w) {
            fake.step();
            client.poll();
        }
        let Opened::Ready { handle, .. } = client.open(f) else { panic!("file {f}") };
        client.release(handle);
    }
    fake.check();
}

#[test]
fn a_release_owed_goes_before_any_later_open() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 14);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 0);
    greet(&mut client, &mut fake);
    let (h, _) = open_ready(&mut client, &mut fake, 1);
    // Released while the cache is not ready: owed.
    fake.info.withdraw();
    client.release(h);
    assert_eq!(fake.requests.len().unwrap(), 0);
    fake.info.publish(1, 8192, 1000);
    let before = fake.log.len();
    assert!(matches!(client.open(2), Opened::Wait(_)));
    fake.take();
    let ops: Vec<Option<Op>> = fake.log[before..].iter().map(Request::op).collect();
    assert_eq!(ops, [Some(Op::Release), Some(Op::Open)]);
    fake.check();
}

#[test]
fn at_most_a_queue_of_opens_is_outstanding() {
    let (mut fake, tx, rx) = Fake::new(200, 100_000, 15);
    let mut client: Client<'_, 128> = fake.client(tx, rx, 0);
    greet(&mut client, &mut fake);
    for f in 0..QUEUE_CAPACITY as u32 {
        assert!(matches!(client.open(f), Opened::Wait(_)));
    }
    // The cache takes every open and answers none yet.
    fake.take();
    assert_eq!(fake.pending.len(), QUEUE_CAPACITY);
    for f in QUEUE_CAPACITY as u32..QUEUE_CAPACITY as u32 + 6 {
        assert!(matches!(client.open(f), Opened::Wait(_)));
    }
    client.poll();
    assert_eq!(fake.requests.len().unwrap(), 0, "an open past the queue's worth was sent");
    assert_eq!(client.outstanding(), QUEUE_CAPACITY);
    fake.answer(2);
    client.poll();
    assert_eq!(fake.requests.len().unwrap(), 2, "one open for each answer");
    fake.check();
}

#[test]
fn a_full_table_waits_for_an_entry() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 12);
    let mut client: Client<'_, 2> = fake.client(tx, rx, 2);
    greet(&mut client, &mut fake);
    let (a, _) = open_ready(&mut client, &mut fake, 1);
    let (b, _) = open_ready(&mut client, &mut fake, 2);
    let Opened::Wait(w) = client.open(3) else { panic!() };
    assert!(!client.may_retry(&w));
    client.release(a);
    assert!(client.may_retry(&w), "a kept pin's entry may be taken");
    // A kept pin gives its entry up for a new file.
    assert!(matches!(client.open(3), Opened::Wait(_)));
    fake.step();
    client.poll();
    let (c, _) = open_ready(&mut client, &mut fake, 3);
    assert!(!fake.holds_file(1));
    client.release(b);
    client.release(c);
    fake.check();
}

#[test]
fn hostile_answers_are_counted_and_never_trusted() {
    let (mut fake, tx, rx) = Fake::new(16, 1000, 13);
    let mut client: Client<'_, 16> = fake.client(tx, rx, 4);
    greet(&mut client, &mut fake);
    let (h, _) = open_ready(&mut client, &mut fake, 1);
    let held_pin = *fake.files_pinned.keys().next().unwrap();
    // An open answered with an unknown kind: a BadRequest failure.
    let Opened::Wait(_) = client.open(2) else { panic!() };
    fake.take();
    let (tag, _) = fake.pending.pop().unwrap();
    fake.responses.enqueue(Response { kind: 99, tag, pin: 5, offset: 5 }).unwrap();
    // A second answer to it, a hello while live, unknown tags.
    fake.responses.enqueue(Response::ready(tag, 77, 0)).unwrap();
    fake.responses.enqueue(Response::other(LIFE, Kind::Hello)).unwrap();
    fake.responses.enqueue(Response::ready(0xffff_ffff, 1, 1)).unwrap();
    fake.responses.enqueue(Response::ready(5 << 16 | 3, 1, 1)).unwrap();
    client.poll();
    assert_eq!(client.open(2), Opened::Fail(Kind::BadRequest));
    assert_eq!(client.stats().unexpected, 4);
    // A Ready naming a pin the client holds for another file.
    let Opened::Wait(_) = client.open(3) else { panic!() };
    fake.take();
    let (tag, _) = fake.pending.pop().unwrap();
    fake.responses.enqueue(Response::ready(tag, held_pin, 0x1234)).unwrap();
    client.poll();
    assert_eq!(client.open(3), Opened::Fail(Kind::BadRequest));
    assert_eq!(client.stats().unexpected, 5);
    assert_eq!(client.offset(&h), Some(offset_of(1, 1)));
    // A flood of garbage.
    for _ in 0..2_000 {
        fake.hostile();
        if fake.room() == 0 {
            client.poll();
        }
    }
    client.poll();
    assert!(client.is_live());
    let (h2, offset) = open_ready(&mut client, &mut fake, 4);
    assert_eq!(offset, offset_of(1, 4));
    client.release(h);
    client.release(h2);
    fake.step();
    fake.check();
}

/// Random opens, retries, abandons and releases by an owner, against the
/// fake answering in random order, failing some opens, refusing past a
/// small quota, sending garbage, and restarting. Every step: the fake saw
/// no broken rule, every handle the owner holds is pinned in the cache at
/// the offset it was given, in the current life. At the end, with a quiet
/// cache, every wait ends and the cache holds exactly the client's pins.
#[test]
fn the_client_keeps_every_rule_under_random_use() {
    const FILES: usize = 24;
    const F: u32 = 40;
    let mut total = ClientStats::default();
    for seed in 1..=60u64 {
        let mut rng = Rng(seed);
        let (mut fake, tx, rx) = Fake::new(F, 8 + rng.below(40) as u64, seed * 31);
        fake.fail = rng.below(150);
        let keep = rng.below(10);
        let mut client: Client<'_, FILES> = fake.client(tx, rx, keep);
        let mut handles: Vec<(Handle, u32, u64)> = Vec::new();
        let mut waits: Vec<(WaitToken, u32)> = Vec::new();
        let mut stale: Vec<Handle> = Vec::new();
        let outcome = |client: &mut Client<'static, FILES>,
                       fake: &Fake,
                       opened: Opened,
                       file: u32,
                       handles: &mut Vec<(Handle, u32, u64)>,
                       waits: &mut Vec<(WaitToken, u32)>| match opened {
            Opened::Ready { handle, offset } => {
                assert_eq!(offset, offset_of(fake.epoch, file), "seed {seed}: file {file} at a wrong offset");
                assert!(fake.holds_file(file), "seed {seed}: file {file} ready but not pinned");
                assert!(client.holds(&handle));
                handles.push((handle, file, offset));
            }
            Opened::Wait(token) => waits.push((token, file)),
            Opened::Fail(kind) => {
                assert!(!matches!(kind, Kind::Ready | Kind::Hello), "seed {seed}");
                assert!(file < F || kind == Kind::NoSuchFile, "seed {seed}: {kind:?} for file {file}");
            }
        };
        for _ in 0..3_000 {
            match rng.below(20) {
                0..=4 => {
                    let file = rng.below(F as usize + 2) as u32;
                    let opened = client.open(file);
                    outcome(&mut client, &fake, opened, file, &mut handles, &mut waits);
                }
                5..=7 => {
                    if let Some(i) = (0..waits.len()).find(|&i| client.may_retry(&waits[i].0)) {
                        let (_, file) = waits.swap_remove(i);
                        let opened = client.open(file);
                        outcome(&mut client, &fake, opened, file, &mut handles, &mut waits);
                    }
                }
                8 if !waits.is_empty() => {
                    let (token, _) = waits.swap_remove(rng.below(waits.len()));
                    client.abandon(token);
                }
                9..=10 if !handles.is_empty() => {
                    let (handle, _, _) = handles.swap_remove(rng.below(handles.len()));
                    client.release(handle);
                }
                11..=13 => {
                    let polled = client.poll();
                    if polled.epoch_changed {
                        // Every transfer ends; the handles are stale.
                        stale.extend(handles.drain(..).map(|(h, _, _)| h));
                    }
                }
                14..=16 => {
                    fake.take();
                    let n = rng.below(8);
                    fake.answer(n);
                }
                17 if !stale.is_empty() => {
                    let before = client.stats().stale_handles;
                    client.release(stale.swap_remove(rng.below(stale.len())));
                    assert_eq!(client.stats().stale_handles, before + 1, "seed {seed}");
                }
                18 => fake.hostile(),
                19 if rng.below(40) == 0 => {
                    if fake.down {
                        fake.come_back();
                    } else {
                        let carry = rng.below(2) == 0;
                        fake.die(carry);
                    }
                }
                _ => {}
            }
            fake.check();
            client.check();
            assert!(client.outstanding() <= QUEUE_CAPACITY);
            if client.is_live() {
                for (h, file, offset) in &handles {
                    assert_eq!(client.offset(h), Some(*offset), "seed {seed}: file {file}");
                    assert!(fake.holds_file(*file), "seed {seed}: file {file} in use but not pinned");
                }
            }
        }
        // A quiet cache: every wait ends.
        if fake.down {
            fake.come_back();
        }
        fake.fail = 0;
        for round in 0.. {
            assert!(round < 500, "seed {seed}: {} waits never ended", waits.len());
            if client.poll().epoch_changed {
                stale.extend(handles.drain(..).map(|(h, _, _)| h));
            }
            fake.step();
            client.poll();
            let mut i = 0;
            while i < waits.len() {
                if client.may_retry(&waits[i].0) {
                    let (_, file) = waits.swap_remove(i);
                    let opened = client.open(file);
                    outcome(&mut client, &fake, opened, file, &mut handles, &mut waits);
                } else {
                    i += 1;
                }
            }
            for (handle, _, _) in handles.drain(..) {
                client.release(handle);
            }
            if waits.is_empty() {
                break;
            }
        }
        for h in stale {
            client.release(h);
        }
        for _ in 0..5 {
            client.poll();
            fake.step();
        }
        fake.check();
        client.check();
        assert_eq!(fake.files_pinned.len(), client.pins(), "seed {seed}: a pin leaked");
        assert!(client.pins() <= keep, "seed {seed}");
        assert_eq!(client.outstanding(), 0, "seed {seed}");
        let s = client.stats();
        total.hits += s.hits;
        total.ready += s.ready;
        total.failed += s.failed;
        total.over_quota_retries += s.over_quota_retries;
        total.stale += s.stale;
        total.unexpected += s.unexpected;
        total.stale_handles += s.stale_handles;
        total.epoch_changes += s.epoch_changes;
        total.releases += s.releases;
    }
    // Every path was taken, many times.
    let t = total;
    for (what, n) in [
        ("hits", t.hits),
        ("ready", t.ready),
        ("failed", t.failed),
        ("over-quota retries", t.over_quota_retries),
        ("stale answers", t.stale),
        ("unexpected answers", t.unexpected),
        ("stale handles", t.stale_handles),
        ("epoch changes", t.epoch_changes),
        ("releases", t.releases),
    ] {
        assert!(n >= 20, "{what}: only {n} ({t:?})");
    }
}

/// The cache stops taking requests when its answers would not fit, and it
/// waits for no signal on a request queue that is not empty; so a client
/// that takes answers while requests of its own are still queued must
/// notify the cache even though the cache did not ask (module docs,
/// "Signalling"). Taking answers with nothing queued asks for nothing.
#[test]
fn answers_taken_while_requests_wait_notify_the_cache() {
    let (mut fake, tx, rx) = Fake::new(8, 1000, 11);
    let mut client: Client<'_, 8> = fake.client(tx, rx, 4);
    greet(&mut client, &mut fake);
    client.should_signal();
    let _first = client.open(1);
    fake.step();
    // The answer waits in the response queue; the next open is queued
    // behind the cache's back (it does not take it).
    let _second = client.open(2);
    client.should_signal();
    assert_eq!(fake.requests.len().unwrap(), 1);
    let polled = client.poll();
    assert_eq!(polled.answers, 1);
    assert!(client.should_signal(), "answers read with a request still queued: the cache must hear of it");
    assert!(!client.should_signal(), "once");
    fake.step();
    let polled = client.poll();
    assert_eq!((polled.answers, fake.requests.len().unwrap()), (1, 0));
    assert!(!client.should_signal(), "nothing queued, nothing enqueued: no notification");
}
