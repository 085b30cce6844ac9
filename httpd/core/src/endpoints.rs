//! Which connection an outgoing segment belongs to: the peer's address and
//! port to the slot serving it, in a fixed table carved at start.
//!
//! Every connection is to the server's one address and port, so the peer's
//! endpoint names it. Open addressing with linear probing; removal shifts
//! the following entries back (no tombstones), so lookups stay short
//! however long the server runs. The table has at least twice as many
//! places as there are slots, so it is never more than half full.

use crate::arena::Arena;

/// A peer: IPv4 address and TCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub ip: u32,
    pub port: u16,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    peer: Peer,
    slot: u16,
}

/// Peers to slots.
pub struct Endpoints {
    entries: &'static mut [Option<Entry>],
}

impl Endpoints {
    /// A table for `slots` connections out of `arena`; `None` if it does
    /// not fit (or `slots` exceeds `u16`).
    pub fn new(arena: &mut Arena, slots: usize) -> Option<Self> {
        u16::try_from(slots).ok()?;
        let places = (2 * slots).max(2).checked_next_power_of_two()?;
        Some(Endpoints { entries: arena.array(places, |_| None)? })
    }

    fn home(&self, peer: Peer) -> usize {
        // Fibonacci hashing of address and port.
        let key = u64::from(peer.ip) << 16 | u64::from(peer.port);
        let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (hash >> 32) as usize & (self.entries.len() - 1)
    }

    /// The slot serving `peer`.
    pub fn get(&self, peer: Peer) -> Option<usize> {
        let mask = self.entries.len() - 1;
        let mut i = self.home(peer);
        loop {
            match self.entries[i] {
                None => return None,
                Some(e) if e.peer == peer => return Some(usize::from(e.slot)),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// Records that `slot` serves `peer` (replacing an older record of the
    /// peer). `false` if the table is full, which cannot happen while each
    /// slot has at most one record.
    pub fn insert(&mut self, peer: Peer, slot: usize) -> bool {
        let Ok(slot) = u16::try_from(slot) else { return false };
        let mask = self.entries.len() - 1;
        let mut i = self.home(peer);
        for _ in 0..self.entries.len() {
            match &mut self.entries[i] {
                Some(e) if e.peer == peer => {
                    e.slot = slot;
                    return true;
                }
                Some(_) => i = (i + 1) & mask,
                free @ None => {
                    *free = Some(Entry { peer, slot });
                    return true;
                }
            }
        }
        false
    }

    /// Forgets `peer`.
    pub fn remove(&mut self, peer: Peer) {
        let mask = self.entries.len() - 1;
        let mut i = self.home(peer);
        loop {
            match self.entries[i] {
                None => return,
                Some(e) if e.peer == peer => break,
                Some(_) => i = (i + 1) & mask,
            }
        }
        self.entries[i] = None;
        // Shift back every following entry that would not be found from
        // its home with the hole in between (Knuth's algorithm R).
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(e) = self.entries[j] else { return };
            let home = self.home(e.peer);
            // `e` may move to the hole unless its home lies cyclically in
            // (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.entries[hole] = Some(e);
                self.entries[j] = None;
                hole = j;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::leaked as arena;
    use std::collections::HashMap;

    #[test]
    fn matches_a_hash_map_under_churn() {
        let mut rng = lib_test_rng::Rng(7);
        let slots = 64;
        let mut table = Endpoints::new(&mut arena(1 << 16), slots).unwrap();
        let mut model: HashMap<(u32, u16), usize> = HashMap::new();
        for _ in 0..20_000 {
            // Few distinct peers, so that probes collide and removals shift.
            let peer = Peer { ip: 0x0a00_0200 | (rng.next() % 4) as u32, port: 40000 + (rng.next() % 40) as u16 };
            if rng.next().is_multiple_of(3) || model.len() >= slots {
                table.remove(peer);
                model.remove(&(peer.ip, peer.port));
            } else {
                let slot = (rng.next() % slots as u64) as usize;
                assert!(table.insert(peer, slot));
                model.insert((peer.ip, peer.port), slot);
            }
            for ip in 0x0a00_0200..0x0a00_0204 {
                for port in 40000..40040 {
                    assert_eq!(table.get(Peer { ip, port }), model.get(&(ip, port)).copied());
                }
            }
        }
    }

    #[test]
    fn too_many_slots_or_too_small_an_arena() {
        assert!(Endpoints::new(&mut arena(1 << 16), 70_000).is_none());
        assert!(Endpoints::new(&mut arena(64), 64).is_none());
    }
}
