//! The connection table: a fixed number of connection slots carved at
//! start, found by their 4-tuple through a keyed hash index, and the count
//! of connections per source address.
//!
//! - **Slots.** A slot holds one connection's TCP state (net-tcp's
//!   [`Conn`]), its 4-tuple and the little HTTP state that outlives a
//!   request (timestamps, whether it closes), and the index of its work
//!   context ([`super::stream`]) while it has one. Free slots are chained.
//! - **Index.** Buckets (a power of two, at least as many as slots) of
//!   chains through the slots, hashed with SipHash-1-3 under a key from the
//!   caller's seed: a peer who cannot guess the key cannot aim its
//!   4-tuples at one chain.
//! - **Per source.** A counter per bucket of the *source address* alone
//!   (same keyed hash). A source with [`super::MAX_PER_SOURCE`]
//!   connections gets no more; two sources hashing to the same counter
//!   share its limit (with the key secret, no source can choose whom it
//!   shares with).

use core::hash::Hasher;
use net_tcp::conn::Conn;
use net_tcp::cookie::FourTuple;
use siphasher::sip::SipHasher13;

/// "No slot" in the chains.
pub const NIL: u32 = u32::MAX;

/// One connection (module docs).
pub struct Slot {
    pub tuple: FourTuple,
    pub tcp: Option<Conn>,
    /// The work context, while it has one.
    pub work: Option<u32>,
    /// When bytes last moved either way (ns): the idle timeout.
    pub last_activity: u64,
    /// When the request being received began (ns): the header deadline.
    pub request_started: Option<u64>,
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

impl Slot {
    fn empty(next: u32) -> Slot {
        Slot {
            tuple: FourTuple::default(),
            tcp: None,
            work: None,
            last_activity: 0,
            request_started: None,
            closing: false,
            peer_closed: false,
            sent: 0,
            written: 0,
            next,
        }
    }
}

/// The table (module docs).
pub struct Table {
    pub slots: &'static mut [Slot],
    buckets: &'static mut [u32],
    per_source: &'static mut [u16],
    free: u32,
    pub len: usize,
    key: [u8; 16],
}

impl Table {
    /// A table over `slots`, `buckets` (a power of two) and `per_source`
    /// (as many as `buckets`).
    pub fn new(
        slots: &'static mut [Slot],
        buckets: &'static mut [u32],
        per_source: &'static mut [u16],
        key: [u8; 16],
    ) -> Table {
        let n = slots.len();
        for (i, s) in slots.iter_mut().enumerate() {
            *s = Slot::empty(if i + 1 < n { (i + 1) as u32 } else { NIL });
        }
        buckets.fill(NIL);
        per_source.fill(0);
        Table { slots, buckets, per_source, free: if n > 0 { 0 } else { NIL }, len: 0, key }
    }

    /// An empty slot, for [`Table::new`].
    pub fn empty_slot() -> Slot {
        Slot::empty(NIL)
    }

    fn hash(&self, bytes: &[u8]) -> usize {
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write(bytes);
        h.finish() as usize & (self.buckets.len() - 1)
    }

    fn bucket(&self, tuple: &FourTuple) -> usize {
        self.hash(&tuple.bytes())
    }

    fn source(&self, addr: [u8; 4]) -> usize {
        self.hash(&addr) & (self.per_source.len() - 1)
    }

    /// Connections from `addr` (or sharing its counter).
    pub fn from_source(&self, addr: [u8; 4]) -> u16 {
        self.per_source[self.source(addr)]
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
        let src = self.source(tuple.remote_addr);
        self.per_source[src] = self.per_source[src].saturating_add(1);
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
        let src = self.source(tuple.remote_addr);
        self.per_source[src] = self.per_source[src].saturating_sub(1);
        self.slots[i] = Slot::empty(self.free);
        self.free = i as u32;
        self.len -= 1;
    }
}
