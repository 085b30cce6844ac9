//! The connection table: a fixed number of connection slots carved at
//! start, found by their 4-tuple through a keyed hash index, and the count
//! of connections per source address.
//!
//! - **Slots.** A slot holds one connection's TCP state (net-tcp's
//!   [`Conn`]), its 4-tuple, timestamps, whether it closes, the little
//!   state its service keeps for the connection's life (`C`: for HTTP when
//!   the request began, for FTP the session it belongs to), and the index
//!   of its work context ([`crate::server::Work`]) while it has one. Free
//!   slots are chained.
//! - **Index.** Buckets (a power of two, at least as many as slots) of
//!   chains through the slots, hashed with SipHash-1-3 under a key from the
//!   caller's seed: a peer who cannot guess the key cannot aim its
//!   4-tuples at one chain.
//! - **Per source.** An exact count of connections per *source address*:
//!   an open-addressing table ([`SourceCount`], linear probing from the
//!   address's keyed hash, deletion by backward shift, Knuth's Algorithm
//!   6.4R) of at least twice as many entries as slots, so it is never more
//!   than half full (each connection brings at most one address). A source
//!   with [`crate::server::MAX_PER_SOURCE`] connections gets no more, and no other
//!   source shares its count: colliding addresses (which a peer who learnt
//!   the key could choose) cost a longer probe, never another's limit.

use core::hash::Hasher;
use net_tcp::conn::Conn;
use net_tcp::cookie::FourTuple;
use siphasher::sip::SipHasher13;

/// "No slot" in the chains.
pub const NIL: u32 = u32::MAX;

/// One connection (module docs).
pub struct Slot<C> {
    pub tuple: FourTuple,
    pub tcp: Option<Conn>,
    /// The work context, while it has one.
    pub work: Option<u32>,
    /// When bytes last moved either way (ns): the idle timeout.
    pub last_activity: u64,
    /// The service's state for this connection.
    pub service: C,
    /// The server closed its side (a FIN follows the stream).
    pub closing: bool,
    /// The peer's FIN arrived.
    pub peer_closed: bool,
    /// The highest stream offset sent at least once.
    pub sent: u64,
    /// The stream's length (what `Conn::extend` was told).
    pub written: u64,
    /// The next slot in its bucket's chain, or in the free list.
    pub next: u32,
}

impl<C: Default> Slot<C> {
    fn empty(next: u32) -> Slot<C> {
        Slot {
            tuple: FourTuple::default(),
            tcp: None,
            work: None,
            last_activity: 0,
            service: C::default(),
            closing: false,
            peer_closed: false,
            sent: 0,
            written: 0,
            next,
        }
    }
}

impl<C> Slot<C> {
    /// The server closes its side (a FIN follows the stream).
    pub fn close(&mut self) {
        if !self.closing {
            self.closing = true;
            if let Some(conn) = self.tcp.as_mut() {
                conn.close();
            }
        }
    }

    /// The stream is now `len` bytes long: TCP may send up to there.
    pub fn extend(&mut self, len: u64) {
        self.written = len;
        if let Some(conn) = self.tcp.as_mut() {
            conn.extend(len);
        }
    }
}

/// A source address, its connections and the work contexts they hold
/// (module docs, "Per source"); `count` 0 is an empty entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceCount {
    addr: [u8; 4],
    count: u16,
    works: u16,
}

impl SourceCount {
    pub const EMPTY: SourceCount = SourceCount { addr: [0; 4], count: 0, works: 0 };

    /// Entries of the per-source table for `slots` connection slots: at
    /// least twice as many, a power of two.
    pub fn entries_for(slots: usize) -> usize {
        (2 * slots).next_power_of_two()
    }
}

/// The table (module docs).
pub struct Table<C: 'static> {
    pub slots: &'static mut [Slot<C>],
    buckets: &'static mut [u32],
    per_source: &'static mut [SourceCount],
    free: u32,
    pub len: usize,
    key: [u8; 16],
}

impl<C: Default> Table<C> {
    /// A table over `slots`, `buckets` (a power of two) and `per_source`
    /// ([`SourceCount::entries_for`] the slots).
    pub fn new(
        slots: &'static mut [Slot<C>],
        buckets: &'static mut [u32],
        per_source: &'static mut [SourceCount],
        key: [u8; 16],
    ) -> Table<C> {
        assert!(per_source.len() >= SourceCount::entries_for(slots.len()) && per_source.len().is_power_of_two());
        let n = slots.len();
        for (i, s) in slots.iter_mut().enumerate() {
            *s = Slot::empty(if i + 1 < n { (i + 1) as u32 } else { NIL });
        }
        buckets.fill(NIL);
        per_source.fill(SourceCount::EMPTY);
        Table { slots, buckets, per_source, free: if n > 0 { 0 } else { NIL }, len: 0, key }
    }

    /// An empty slot, for [`Table::new`].
    pub fn empty_slot() -> Slot<C> {
        Slot::empty(NIL)
    }

    /// The keyed hash of `bytes`, reduced to an index of a power-of-two
    /// table of `len` entries.
    fn hash(&self, bytes: &[u8], len: usize) -> usize {
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write(bytes);
        h.finish() as usize & (len - 1)
    }

    fn bucket(&self, tuple: &FourTuple) -> usize {
        self.hash(&tuple.bytes(), self.buckets.len())
    }

    /// Where `addr`'s probe starts in the per-source table.
    fn source_home(&self, addr: [u8; 4]) -> usize {
        self.hash(&addr, self.per_source.len())
    }

    /// `addr`'s entry (`Ok`), or the empty entry where it would go
    /// (`Err`). Terminates: the table is never full (module docs).
    fn source_entry(&self, addr: [u8; 4]) -> Result<usize, usize> {
        let mask = self.per_source.len() - 1;
        let mut i = self.source_home(addr);
        loop {
            let e = self.per_source[i];
            if e.count == 0 {
                return Err(i);
            }
            if e.addr == addr {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Connections from `addr`, exactly.
    pub fn from_source(&self, addr: [u8; 4]) -> u16 {
        self.source_entry(addr).map_or(0, |i| self.per_source[i].count)
    }

    fn source_added(&mut self, addr: [u8; 4]) {
        match self.source_entry(addr) {
            Ok(i) => self.per_source[i].count = self.per_source[i].count.saturating_add(1),
            Err(i) => self.per_source[i] = SourceCount { addr, count: 1, works: 0 },
        }
    }

    /// Work contexts held by the connections from `addr`.
    pub fn works_of_source(&self, addr: [u8; 4]) -> u16 {
        self.source_entry(addr).map_or(0, |i| self.per_source[i].works)
    }

    /// A connection from `addr` took a work context (`taken`) or gave its
    /// back. The source has that connection, so it has an entry.
    pub fn source_work(&mut self, addr: [u8; 4], taken: bool) {
        if let Ok(i) = self.source_entry(addr) {
            let works = &mut self.per_source[i].works;
            *works = if taken { works.saturating_add(1) } else { works.saturating_sub(1) };
        }
    }

    /// One connection from `addr` fewer; the last one empties its entry,
    /// and the entries after it that probed past it move back (Algorithm
    /// 6.4R), so that every entry stays reachable from its home.
    fn source_removed(&mut self, addr: [u8; 4]) {
        let Ok(i) = self.source_entry(addr) else { return };
        self.per_source[i].count -= 1;
        if self.per_source[i].count > 0 {
            return;
        }
        let mask = self.per_source.len() - 1;
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.per_source[j].count > 0 {
            let home = self.source_home(self.per_source[j].addr);
            // The hole lies on j's probe path (from home to j): j moves.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.per_source[hole] = self.per_source[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.per_source[hole] = SourceCount::EMPTY;
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn is_full(&self) -> bool {
        self.free == NIL
    }

    /// The slot holding `tuple`.
    pub fn find(&self, tuple: &FourTuple) -> Option<usize> {
        let mut i = self.buckets[self.bucket(tuple)];
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.tuple == *tuple {
                return Some(i as usize);
            }
            i = s.next;
        }
        None
    }

    /// Takes a free slot for `tuple` holding `conn`; `None` if full.
    pub fn insert(&mut self, tuple: FourTuple, conn: Conn, now: u64) -> Option<usize> {
        if self.free == NIL {
            return None;
        }
        let i = self.free as usize;
        self.free = self.slots[i].next;
        let b = self.bucket(&tuple);
        let mut slot = Slot::empty(self.buckets[b]);
        slot.tuple = tuple;
        slot.tcp = Some(conn);
        slot.last_activity = now;
        self.slots[i] = slot;
        self.buckets[b] = i as u32;
        self.source_added(tuple.remote_addr);
        self.len += 1;
        Some(i)
    }

    /// Frees slot `i` (its work context must have been dealt with).
    pub fn remove(&mut self, i: usize) {
        let tuple = self.slots[i].tuple;
        let b = self.bucket(&tuple);
        let mut at = self.buckets[b];
        let mut prev = NIL;
        while at != NIL && at as usize != i {
            prev = at;
            at = self.slots[at as usize].next;
        }
        if at == NIL {
            return;
        }
        let next = self.slots[i].next;
        if prev == NIL {
            self.buckets[b] = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        self.source_removed(tuple.remote_addr);
        self.slots[i] = Slot::empty(self.free);
        self.free = i as u32;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use lib_test_rng::Rng;
    use net_tcp::conn::Config;
    use net_tcp::seq::Seq;
    use std::boxed::Box;
    use std::collections::HashMap;
    use std::vec::Vec;

    fn table(slots: usize, key: [u8; 16]) -> Table<()> {
        let leak =
            |n, f: &dyn Fn() -> Slot<()>| -> &'static mut [Slot<()>] { Box::leak((0..n).map(|_| f()).collect()) };
        let buckets = Box::leak(std::vec![NIL; slots.next_power_of_two()].into_boxed_slice());
        let sources = Box::leak(std::vec![SourceCount::EMPTY; SourceCount::entries_for(slots)].into_boxed_slice());
        Table::new(leak(slots, &Table::empty_slot), buckets, sources, key)
    }

    /// Random connections come and go from a few more addresses than the
    /// per-source table has homes for, so that addresses collide, probe
    /// past each other and are shifted back; after every step each
    /// address's count is exactly the model's. Fails if deletion only
    /// empties the entry (a displaced address is then lost), or if
    /// colliding addresses shared a count as before.
    #[test]
    fn counts_per_source_are_exact_under_collisions() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed);
            let slots = 4 + rng.below(12);
            let mut t = table(slots, [seed as u8; 16]);
            let addrs: Vec<[u8; 4]> = (0..2 * slots as u32 + 3).map(|i| (0x0a00_0000 + i).to_be_bytes()).collect();
            let mut model: HashMap<[u8; 4], u16> = HashMap::new();
            let mut open: Vec<usize> = Vec::new();
            for step in 0..400u16 {
                if !open.is_empty() && (rng.below(2) == 0 || t.is_full()) {
                    let i = open.swap_remove(rng.below(open.len()));
                    *model.get_mut(&t.slots[i].tuple.remote_addr).unwrap() -= 1;
                    t.remove(i);
                } else if !t.is_full() {
                    let addr = addrs[rng.below(addrs.len())];
                    let tuple =
                        FourTuple { local_addr: [10, 0, 2, 15], local_port: 80, remote_addr: addr, remote_port: step };
                    let conn = Conn::accept(Config::default(), Seq(1), Seq(2), 1460, None);
                    open.push(t.insert(tuple, conn, 0).unwrap());
                    *model.entry(addr).or_default() += 1;
                }
                for a in &addrs {
                    let want = model.get(a).copied().unwrap_or(0);
                    assert_eq!(t.from_source(*a), want, "seed {seed} step {step}: {a:?}");
                }
                let used = t.per_source.iter().filter(|e| e.count > 0).count();
                assert_eq!(used, model.values().filter(|&&c| c > 0).count(), "seed {seed} step {step}: stale entries");
            }
        }
    }
}
