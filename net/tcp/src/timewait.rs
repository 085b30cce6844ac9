//! Compact TIME-WAIT (RFC 9293 §3.6, §3.10.7.4): when a connection that
//! the server closed first is done, its buffers and slot are freed at once
//! and only a [`Record`] remains: the 4-tuple, the server's `snd_nxt`, the
//! peer's `rcv_nxt` and the time it expires — 24 bytes. It answers the
//! segments that the old connection can still draw for [`TIME_WAIT_MS`].
//!
//! # The table
//!
//! A [`TimeWaitTable<N>`] holds up to `N` records (`N < 65535`; the
//! caller picks it: at 32 bytes per record, 10 000 records take 320 KB).
//! Each record costs 32 bytes in all: the 24-byte record, three 16-bit
//! links (its neighbours in expiry order and the next record in its hash
//! bucket) and one 16-bit bucket head. Nothing is allocated.
//!
//! - **Expiry order is insertion order.** Every record lives the same
//!   [`TIME_WAIT_MS`], so the records, kept in a list in the order they
//!   were inserted (or had their timer restarted), are in the order they
//!   expire. [`TimeWaitTable::expire`] takes records off the front while
//!   they are due: each record is taken off once, so expiry costs O(1)
//!   per insertion, amortised, and never scans the table.
//! - **Lookup is by a keyed hash** of the 4-tuple (SipHash-1-3 under the
//!   caller's seed) into `N` buckets with chains through the records: an
//!   attacker who cannot guess the key cannot aim many 4-tuples at one
//!   chain.
//! - **When the table is full, the record that expires first goes** — the
//!   front of the list. That shortens its TIME-WAIT, which RFC 1122
//!   §4.2.2.13 allows a server to do (it may even reopen straight from
//!   TIME-WAIT), and which is the other hosts' protection anyway: the
//!   peer, not this server, is the side that must not reuse the 4-tuple
//!   while old duplicates live, and a record evicted early is the one
//!   closest to its natural end. (Linux, too, skips TIME-WAIT once
//!   `tcp_max_tw_buckets` records exist.)
//!
//! # What a segment that hits a record gets
//!
//! [`TimeWaitTable::on_segment`] returns a [`Decision`], checked in this
//! order:
//!
//! 1. **RST: [`Decision::Drop`].** RFC 1337 §3 remedy (F1), "ignore RST
//!    segments in TIME-WAIT state": an old duplicate or forged RST would
//!    otherwise cut TIME-WAIT short ("TIME-WAIT assassination") and let an
//!    old duplicate into a new incarnation. (RFC 9293 §3.10.7.4 has RST
//!    close TIME-WAIT; this is the deliberate exception RFC 1337 argues.)
//! 2. **SYN without ACK, `SEG.SEQ > rcv_nxt`: [`Decision::Reopen`]**, and
//!    the record is gone: RFC 1122 §4.2.2.13 lets a new SYN reopen the
//!    connection from TIME-WAIT, and without timestamps (RFC 6191 needs
//!    them for anything finer) the test is that the new ISN is beyond
//!    every sequence number of the old incarnation, so no old duplicate of
//!    the peer's can fall in the new connection's window. The caller then
//!    treats the SYN as in LISTEN: it answers with a SYN cookie. The other
//!    half of §4.2.2.13 — the server's own new ISN above its old `snd_nxt`
//!    — cannot be promised by a cookie (a keyed hash, see
//!    [`crate::cookie`]); an old duplicate of the server's falls in the
//!    peer's new window with probability about window/2^32.
//! 3. **Any other SYN: [`Decision::AckAgain`]**, the challenge ACK of RFC
//!    9293 §3.10.7.4 ("fourth, check the SYN bit": RFC 5961 §4.2): a
//!    peer that really reconnects learns its SYN was old and resets or
//!    retries; one that never sent it ignores it.
//! 4. **The peer's FIN again (`FIN`, ending at `rcv_nxt`): [`Decision::AckAgain`]**
//!    and the record's timer restarts: RFC 9293 §3.10.7.4, TIME-WAIT, "the
//!    only thing that can arrive in this state is a retransmission of the
//!    remote FIN. Acknowledge it, and restart the 2 MSL timeout." (Our
//!    last ACK was lost; without the record, the peer would get a RST.)
//! 5. **An empty segment at `rcv_nxt`: [`Decision::Drop`].** It is
//!    acceptable (the receive window is closed: RFC 9293 §3.10.7.4's
//!    acceptability test with RCV.WND = 0) and there is nothing to do.
//! 6. **Anything else: [`Decision::AckAgain`]**: not acceptable (old data,
//!    or data after the peer's FIN), and "if an incoming segment is not
//!    acceptable, an acknowledgment should be sent in reply (unless the RST
//!    bit is set)" (RFC 9293 §3.10.7.4, first check). The caller should
//!    rate-limit these ACKs (RFC 5961 §7).
//!
//! A segment for a 4-tuple with no live record gets `None`: the caller
//! handles it as LISTEN would.
//!
//! Times are the caller's monotonic clock in milliseconds; records keep
//! their expiry in whole seconds (rounded up, so a record lives at least
//! [`TIME_WAIT_MS`] and less than a second more).

use crate::cookie::FourTuple;
use crate::seq::Seq;
use core::hash::Hasher;
use siphasher::sip::SipHasher13;

/// How long a record lives: 60 s, twice a Maximum Segment Lifetime of
/// 30 s (4.4BSD's MSL, and Linux's `TCP_TIMEWAIT_LEN` of 60 s). RFC 9293
/// §3.4.2 took MSL = 2 minutes "for engineering purposes"; no segment
/// survives that long on today's paths (IPv4 TTLs of 64 hops and router
/// queues of milliseconds bound a segment's life to seconds), and
/// decades of Linux and BSD at 60 s have shown it sufficient. A shorter
/// TIME-WAIT halves the table a given rate of closes needs: at 1 000
/// closes per second, 60 000 records (1.9 MB) rather than 120 000.
pub const TIME_WAIT_MS: u64 = 60_000;

/// The most records a table can hold: slots are named by 16-bit indices
/// and one value means "none".
pub const MAX_CAPACITY: usize = NIL as usize;

const NIL: u16 = u16::MAX;

/// What remains of a closed connection: 24 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Record {
    pub tuple: FourTuple,
    /// The server's next sequence number (its FIN counted): the `seq` of
    /// every ACK sent again.
    pub snd_nxt: Seq,
    /// The peer's next sequence number (its FIN counted): the `ack` of
    /// every ACK sent again, and the bound a reopening SYN must pass.
    pub rcv_nxt: Seq,
    /// When the record expires, in whole seconds of the caller's clock.
    expiry_s: u32,
}

impl Record {
    /// When the record expires, in milliseconds of the caller's clock.
    pub fn expires_at_ms(&self) -> u64 {
        u64::from(self.expiry_s) * 1000
    }

    fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms()
    }
}

/// The parts of an arriving segment that TIME-WAIT looks at.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Arrival {
    pub seq: Seq,
    /// Payload bytes (SYN and FIN not counted).
    pub len: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// What to do with a segment that hit a TIME-WAIT record (module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Send an empty ACK with these sequence and acknowledgment numbers
    /// (the record's `snd_nxt` and `rcv_nxt`).
    AckAgain { seq: Seq, ack: Seq },
    /// Do nothing.
    Drop,
    /// The record is gone: handle the SYN as a new connection (LISTEN).
    Reopen,
}

#[derive(Clone, Copy)]
struct Links {
    /// Neighbours in expiry order (`next` also chains the free slots).
    prev: u16,
    next: u16,
    /// The next record in the same hash bucket.
    hnext: u16,
}

const UNLINKED: Links = Links { prev: NIL, next: NIL, hnext: NIL };

/// Up to `N` TIME-WAIT records (module docs).
pub struct TimeWaitTable<const N: usize> {
    records: [Record; N],
    links: [Links; N],
    buckets: [u16; N],
    /// The oldest record (the first to expire) and the newest.
    head: u16,
    tail: u16,
    /// The first free slot.
    free: u16,
    len: usize,
    key: [u8; 16],
}

impl<const N: usize> TimeWaitTable<N> {
    const CAPACITY_FITS: () = assert!(N > 0 && N <= MAX_CAPACITY, "1..=65534 records");

    /// An empty table whose bucket hash is keyed by `seed` (16 bytes from
    /// the caller's entropy source).
    pub const fn new(seed: [u8; 16]) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_FITS;
        let mut links = [UNLINKED; N];
        let mut i = 0;
        while i + 1 < N {
            links[i].next = (i + 1) as u16;
            i += 1;
        }
        TimeWaitTable {
            records: [Record {
                tuple: FourTuple { local_addr: [0; 4], local_port: 0, remote_addr: [0; 4], remote_port: 0 },
                snd_nxt: Seq(0),
                rcv_nxt: Seq(0),
                expiry_s: 0,
            }; N],
            links,
            buckets: [NIL; N],
            head: NIL,
            tail: NIL,
            free: 0,
            len: 0,
            key: seed,
        }
    }

    /// The records held, expired ones not yet taken off included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Records that a connection closed at `now_ms` is in TIME-WAIT, with
    /// its final `snd_nxt` and `rcv_nxt`. Expired records are taken off
    /// first; a record for the same 4-tuple is replaced; if the table is
    /// still full, the record that expires first is evicted and returned
    /// (module docs: why that is safe).
    pub fn insert(&mut self, tuple: FourTuple, snd_nxt: Seq, rcv_nxt: Seq, now_ms: u64) -> Option<Record> {
        self.expire(now_ms);
        self.remove(&tuple);
        let evicted = if self.len == N {
            let head = self.head;
            let old = self.records[usize::from(head)];
            self.unlink(head);
            Some(old)
        } else {
            None
        };
        let i = self.free;
        self.free = self.links[usize::from(i)].next;
        self.records[usize::from(i)] = Record { tuple, snd_nxt, rcv_nxt, expiry_s: 0 };
        let b = self.bucket(&tuple);
        self.links[usize::from(i)].hnext = self.buckets[b];
        self.buckets[b] = i;
        self.len += 1;
        self.push_back(i, now_ms);
        evicted
    }

    /// The live record for `tuple`, if any.
    pub fn lookup(&self, tuple: &FourTuple, now_ms: u64) -> Option<&Record> {
        let r = &self.records[usize::from(self.find(tuple)?)];
        r.is_live(now_ms).then_some(r)
    }

    /// Takes off the records that have expired by `now_ms` and says how
    /// many. Only expired records are visited (they are at the front).
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut n = 0;
        while self.head != NIL && !self.records[usize::from(self.head)].is_live(now_ms) {
            self.unlink(self.head);
            n += 1;
        }
        n
    }

    /// Takes off the record for `tuple`, live or expired.
    pub fn remove(&mut self, tuple: &FourTuple) -> Option<Record> {
        let i = self.find(tuple)?;
        let r = self.records[usize::from(i)];
        self.unlink(i);
        Some(r)
    }

    /// What to do with a segment for `tuple` that arrived at `now_ms`:
    /// `None` when no live record holds the 4-tuple, else the decision of
    /// the module docs (a reopening SYN takes the record off; the peer's
    /// FIN again restarts its timer).
    pub fn on_segment(&mut self, tuple: &FourTuple, seg: &Arrival, now_ms: u64) -> Option<Decision> {
        let i = self.find(tuple)?;
        let r = self.records[usize::from(i)];
        if !r.is_live(now_ms) {
            return None;
        }
        let ack_again = Decision::AckAgain { seq: r.snd_nxt, ack: r.rcv_nxt };
        Some(if seg.rst {
            Decision::Drop
        } else if seg.syn {
            if !seg.ack && seg.seq.gt(r.rcv_nxt) {
                self.unlink(i);
                Decision::Reopen
            } else {
                ack_again
            }
        } else if seg.fin && seg.seq + seg.len + 1 == r.rcv_nxt {
            self.detach(i);
            self.push_back(i, now_ms);
            ack_again
        } else if !seg.fin && seg.len == 0 && seg.seq == r.rcv_nxt {
            Decision::Drop
        } else {
            ack_again
        })
    }

    fn bucket(&self, tuple: &FourTuple) -> usize {
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write(&tuple.bytes());
        // Multiply-shift onto 0..N: uniform for a uniform 32-bit hash.
        (((h.finish() >> 32) * N as u64) >> 32) as usize
    }

    fn find(&self, tuple: &FourTuple) -> Option<u16> {
        let mut i = self.buckets[self.bucket(tuple)];
        while i != NIL {
            if self.records[usize::from(i)].tuple == *tuple {
                return Some(i);
            }
            i = self.links[usize::from(i)].hnext;
        }
        None
    }

    /// Appends slot `i` to the expiry list with a fresh TIME-WAIT from
    /// `now_ms`. The expiry is never earlier than the current last one, so
    /// the list stays in expiry order even if the clock were to step back.
    fn push_back(&mut self, i: u16, now_ms: u64) {
        let due_s = (now_ms + TIME_WAIT_MS).div_ceil(1000);
        let mut expiry_s = due_s.min(u64::from(u32::MAX)) as u32;
        if self.tail != NIL {
            expiry_s = expiry_s.max(self.records[usize::from(self.tail)].expiry_s);
        }
        self.records[usize::from(i)].expiry_s = expiry_s;
        self.links[usize::from(i)].prev = self.tail;
        self.links[usize::from(i)].next = NIL;
        match self.tail {
            NIL => self.head = i,
            t => self.links[usize::from(t)].next = i,
        }
        self.tail = i;
    }

    /// Takes slot `i` out of the expiry list (it stays in its bucket).
    fn detach(&mut self, i: u16) {
        let Links { prev, next, .. } = self.links[usize::from(i)];
        match prev {
            NIL => self.head = next,
            p => self.links[usize::from(p)].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.links[usize::from(n)].prev = prev,
        }
    }

    /// Takes slot `i` out of the expiry list and its bucket, and frees it.
    fn unlink(&mut self, i: u16) {
        self.detach(i);
        let b = self.bucket(&self.records[usize::from(i)].tuple);
        let hnext = self.links[usize::from(i)].hnext;
        if self.buckets[b] == i {
            self.buckets[b] = hnext;
        } else {
            let mut j = self.buckets[b];
            while self.links[usize::from(j)].hnext != i {
                j = self.links[usize::from(j)].hnext;
            }
            self.links[usize::from(j)].hnext = hnext;
        }
        self.links[usize::from(i)] = Links { next: self.free, ..UNLINKED };
        self.free = i;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;
    use std::boxed::Box;
    use std::collections::HashMap;

    fn tuple(n: u16) -> FourTuple {
        FourTuple {
            local_addr: [10, 0, 0, 1],
            local_port: 80,
            remote_addr: [192, 168, (n >> 8) as u8, n as u8],
            remote_port: 40_000 + n % 7,
        }
    }

    #[test]
    fn a_record_is_24_bytes_and_costs_32_in_the_table() {
        assert_eq!(core::mem::size_of::<Record>(), 24);
        let per = core::mem::size_of::<TimeWaitTable<10_000>>() as f64 / 10_000.0;
        assert!(per <= 32.01, "{per} bytes per record");
    }

    #[test]
    fn a_record_lives_time_wait_and_less_than_a_second_more() {
        let mut rng = Rng(0x2751);
        let mut t = TimeWaitTable::<64>::new([1; 16]);
        let mut now = 0;
        for n in 0..1000 {
            now += rng.next() % 5000;
            let k = tuple(n);
            t.insert(k, Seq(1), Seq(2), now);
            assert!(t.lookup(&k, now + TIME_WAIT_MS - 1).is_some());
            assert!(t.lookup(&k, now + TIME_WAIT_MS + 999).is_none());
            let r = t.lookup(&k, now).unwrap();
            assert!((now + TIME_WAIT_MS..now + TIME_WAIT_MS + 1000).contains(&r.expires_at_ms()));
        }
    }

    fn open(t: &mut TimeWaitTable<8>) -> (FourTuple, Record) {
        let k = tuple(3);
        t.insert(k, Seq(5000), Seq(9000), 1_000);
        (k, *t.lookup(&k, 1_000).unwrap())
    }

    fn seg(seq: u32) -> Arrival {
        Arrival { seq: Seq(seq), ack: true, ..Arrival::default() }
    }

    const AGAIN: Decision = Decision::AckAgain { seq: Seq(5000), ack: Seq(9000) };

    #[test]
    fn the_peers_fin_again_is_acked_again_and_restarts_the_timer() {
        let mut t = TimeWaitTable::<8>::new([2; 16]);
        let (k, r) = open(&mut t);
        let fin = Arrival { fin: true, ..seg(8999) };
        let later = 30_000;
        assert_eq!(t.on_segment(&k, &fin, later), Some(AGAIN));
        let restarted = t.lookup(&k, later).unwrap();
        assert_eq!(restarted.expires_at_ms(), later + TIME_WAIT_MS);
        assert!(restarted.expires_at_ms() > r.expires_at_ms());
        // With data before it, too.
        let fin_data = Arrival { fin: true, len: 100, ..seg(8899) };
        assert_eq!(t.on_segment(&k, &fin_data, later + 1), Some(AGAIN));
    }

    #[test]
    fn a_rst_is_ignored() {
        let mut t = TimeWaitTable::<8>::new([3; 16]);
        let (k, r) = open(&mut t);
        for s in [8999, 9000, 9001, 1] {
            for ack in [false, true] {
                let rst = Arrival { rst: true, ack, ..seg(s) };
                assert_eq!(t.on_segment(&k, &rst, 2_000), Some(Decision::Drop));
            }
        }
        let rst_syn = Arrival { rst: true, syn: true, ..seg(9_500) };
        assert_eq!(t.on_segment(&k, &rst_syn, 2_000), Some(Decision::Drop));
        assert_eq!(t.lookup(&k, 2_000), Some(&r), "the record is untouched");
    }

    #[test]
    fn a_syn_beyond_rcv_nxt_reopens_and_takes_the_record_off() {
        let mut t = TimeWaitTable::<8>::new([4; 16]);
        let (k, _) = open(&mut t);
        let syn = Arrival { syn: true, ack: false, ..seg(9001) };
        assert_eq!(t.on_segment(&k, &syn, 2_000), Some(Decision::Reopen));
        assert_eq!(t.lookup(&k, 2_000), None);
        assert_eq!(t.on_segment(&k, &syn, 2_000), None);
        assert!(t.is_empty());

        // Far ahead (but less than 2^31) counts, across the wrap too.
        let (k, _) = open(&mut t);
        let syn = Arrival { syn: true, ack: false, ..seg(9000u32.wrapping_add(0x7fff_ffff)) };
        assert_eq!(t.on_segment(&k, &syn, 2_000), Some(Decision::Reopen));
    }

    #[test]
    fn a_syn_not_beyond_rcv_nxt_gets_a_challenge_ack() {
        let mut t = TimeWaitTable::<8>::new([5; 16]);
        let (k, r) = open(&mut t);
        for s in [9000, 8999, 1, 9000u32.wrapping_add(0x8000_0001)] {
            let syn = Arrival { syn: true, ack: false, ..seg(s) };
            assert_eq!(t.on_segment(&k, &syn, 2_000), Some(AGAIN), "seq {s}");
        }
        let syn_ack = Arrival { syn: true, ..seg(9001) };
        assert_eq!(t.on_segment(&k, &syn_ack, 2_000), Some(AGAIN), "SYN-ACK");
        assert_eq!(t.lookup(&k, 2_000), Some(&r), "the record stays, unrestarted");
    }

    #[test]
    fn an_empty_segment_at_rcv_nxt_is_dropped_and_anything_else_acked() {
        let mut t = TimeWaitTable::<8>::new([6; 16]);
        let (k, r) = open(&mut t);
        assert_eq!(t.on_segment(&k, &seg(9000), 2_000), Some(Decision::Drop));
        let bare = Arrival { ack: false, ..seg(9000) };
        assert_eq!(t.on_segment(&k, &bare, 2_000), Some(Decision::Drop));
        let old = Arrival { len: 10, ..seg(8000) };
        assert_eq!(t.on_segment(&k, &old, 2_000), Some(AGAIN), "old data");
        let after = Arrival { len: 10, ..seg(9000) };
        assert_eq!(t.on_segment(&k, &after, 2_000), Some(AGAIN), "data after the FIN");
        assert_eq!(t.on_segment(&k, &seg(8999), 2_000), Some(AGAIN), "old ACK");
        let other_fin = Arrival { fin: true, ..seg(9000) };
        assert_eq!(t.on_segment(&k, &other_fin, 2_000), Some(AGAIN), "a FIN beyond");
        assert_eq!(t.lookup(&k, 2_000), Some(&r), "none of them restarts the timer");
    }

    #[test]
    fn segments_for_other_tuples_or_after_expiry_find_no_record() {
        let mut t = TimeWaitTable::<8>::new([7; 16]);
        let (k, r) = open(&mut t);
        assert_eq!(t.on_segment(&tuple(4), &seg(9000), 2_000), None);
        let fin = Arrival { fin: true, ..seg(8999) };
        assert_eq!(t.on_segment(&k, &fin, r.expires_at_ms()), None);
        assert_eq!(t.expire(r.expires_at_ms()), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_table_evicts_the_record_that_expires_first() {
        let mut t = TimeWaitTable::<4>::new([8; 16]);
        for n in 0..4 {
            assert_eq!(t.insert(tuple(n), Seq(1), Seq(2), u64::from(n) * 1000), None);
        }
        // Restarting 0's timer makes 1 the first to expire.
        let fin = Arrival { fin: true, ..seg(1) };
        assert!(t.on_segment(&tuple(0), &fin, 4_000).is_some());
        let out = t.insert(tuple(9), Seq(1), Seq(2), 5_000).unwrap();
        assert_eq!(out.tuple, tuple(1));
        assert_eq!(t.len(), 4);
        assert!(t.lookup(&tuple(0), 5_000).is_some());
        assert!(t.lookup(&tuple(9), 5_000).is_some());
        // Re-inserting a 4-tuple replaces it rather than evicting another.
        assert_eq!(t.insert(tuple(9), Seq(7), Seq(8), 6_000), None);
        assert_eq!(t.lookup(&tuple(9), 6_000).unwrap().snd_nxt, Seq(7));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn a_clock_that_steps_back_leaves_no_expired_record_behind_a_live_one() {
        // expire() stops at the first live record, so the list must stay in
        // expiry order even if the caller's clock goes backwards: a record
        // inserted "earlier" lives as long as the last one.
        let mut t = TimeWaitTable::<8>::new([10; 16]);
        t.insert(tuple(1), Seq(1), Seq(1), 100_000);
        t.insert(tuple(2), Seq(2), Seq(2), 0);
        let now = TIME_WAIT_MS + 1_000;
        t.expire(now);
        for n in [1, 2] {
            assert!(t.lookup(&tuple(n), now).is_some(), "record {n} held but expired");
        }
        assert_eq!(t.expire(100_000 + TIME_WAIT_MS), 2);
    }

    /// The model: a map from 4-tuple to (record, expiry in ms, order of
    /// insertion or restart), the first to expire evicted when full.
    #[derive(Default)]
    struct Model {
        map: HashMap<FourTuple, (Seq, Seq, u64, u64)>,
        order: u64,
    }

    impl Model {
        fn expiry(now: u64) -> u64 {
            (now + TIME_WAIT_MS).div_ceil(1000) * 1000
        }
        fn expire(&mut self, now: u64) -> usize {
            let before = self.map.len();
            self.map.retain(|_, v| now < v.2);
            before - self.map.len()
        }
        fn insert(&mut self, cap: usize, k: FourTuple, s: Seq, r: Seq, now: u64) -> Option<FourTuple> {
            self.expire(now);
            self.map.remove(&k);
            let evicted = if self.map.len() == cap {
                let (&first, _) = self.map.iter().min_by_key(|(_, v)| (v.2, v.3)).unwrap();
                self.map.remove(&first);
                Some(first)
            } else {
                None
            };
            self.order += 1;
            self.map.insert(k, (s, r, Self::expiry(now), self.order));
            evicted
        }
        fn live(&self, k: &FourTuple, now: u64) -> Option<(Seq, Seq)> {
            let v = self.map.get(k)?;
            (now < v.2).then_some((v.0, v.1))
        }
    }

    fn against_the_model<const N: usize>(seed: u64, steps: usize, pool: u16) {
        let mut rng = Rng(seed);
        let mut t = Box::new(TimeWaitTable::<N>::new([seed as u8; 16]));
        let mut m = Model::default();
        let mut now = 0u64;
        for step in 0..steps {
            let k = tuple(rng.below(usize::from(pool)) as u16);
            match rng.below(10) {
                0..=3 => {
                    let (s, r) = (Seq(rng.next() as u32), Seq(rng.next() as u32));
                    let got = t.insert(k, s, r, now).map(|r| r.tuple);
                    assert_eq!(got, m.insert(N, k, s, r, now), "step {step}: eviction");
                }
                4 => {
                    now += rng.next() % if rng.below(4) == 0 { 40_000 } else { 2_000 };
                }
                5 => assert_eq!(t.expire(now), m.expire(now), "step {step}: expired"),
                6 => {
                    let want = m.live(&k, now).map(|(s, r)| Decision::AckAgain { seq: s, ack: r });
                    let (fin_seq, restart) = match m.live(&k, now) {
                        Some((_, r)) => (r + u32::MAX, true),
                        None => (Seq(rng.next() as u32), false),
                    };
                    let fin = Arrival { fin: true, ack: true, seq: fin_seq, ..Arrival::default() };
                    assert_eq!(t.on_segment(&k, &fin, now), want, "step {step}: FIN again");
                    if restart {
                        m.order += 1;
                        let v = m.map.get_mut(&k).unwrap();
                        (v.2, v.3) = (Model::expiry(now), m.order);
                    }
                }
                7 => {
                    let seq = match m.live(&k, now) {
                        Some((_, r)) => r + 1 + (rng.next() as u32 >> 2),
                        None => Seq(rng.next() as u32),
                    };
                    let want = m.live(&k, now).map(|_| Decision::Reopen);
                    let syn = Arrival { syn: true, seq, ..Arrival::default() };
                    assert_eq!(t.on_segment(&k, &syn, now), want, "step {step}: reopen");
                    if want.is_some() {
                        m.map.remove(&k);
                    }
                }
                8 => {
                    let got = t.remove(&k).map(|r| (r.snd_nxt, r.rcv_nxt));
                    assert_eq!(got, m.map.remove(&k).map(|v| (v.0, v.1)), "step {step}: remove");
                }
                _ => {}
            }
            assert_eq!(t.len(), m.map.len(), "step {step}: len");
            let got = t.lookup(&k, now).map(|r| (r.snd_nxt, r.rcv_nxt));
            assert_eq!(got, m.live(&k, now), "step {step}: lookup");
            if step % 97 == 0 {
                for n in 0..pool {
                    let k = tuple(n);
                    let got = t.lookup(&k, now).map(|r| (r.snd_nxt, r.rcv_nxt));
                    assert_eq!(got, m.live(&k, now), "step {step}: lookup {n}");
                }
            }
        }
    }

    #[test]
    fn the_table_behaves_as_a_map_with_expiry_under_random_operations() {
        against_the_model::<1>(0x7a1, 20_000, 4);
        against_the_model::<8>(0x7a2, 50_000, 24);
        against_the_model::<64>(0x7a3, 50_000, 96);
        against_the_model::<1000>(0x7a4, 100_000, 1500);
    }

    #[test]
    fn thousands_of_records_expire_in_order_without_loss() {
        let mut t = Box::new(TimeWaitTable::<20_000>::new([9; 16]));
        for n in 0..20_000u32 {
            let k = FourTuple { remote_addr: n.to_be_bytes(), ..tuple(0) };
            assert_eq!(t.insert(k, Seq(n), Seq(!n), u64::from(n)), None);
        }
        assert_eq!(t.len(), 20_000);
        let k = FourTuple { remote_addr: 12_345u32.to_be_bytes(), ..tuple(0) };
        assert_eq!(t.lookup(&k, 20_000).unwrap().snd_nxt, Seq(12_345));
        // Inserted at 0..20 s, they expire at 60..80 s (whole seconds up).
        assert_eq!(t.expire(TIME_WAIT_MS), 1);
        assert_eq!(t.expire(TIME_WAIT_MS + 10_000), 10_000);
        assert_eq!(t.expire(TIME_WAIT_MS + 20_000), 9_999);
        assert!(t.is_empty());
    }
}
