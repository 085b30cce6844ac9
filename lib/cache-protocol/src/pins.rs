//! The pins one server holds, as the cache PD keeps them: what each pin
//! number stands for, and the server's quota (crate docs, "Quotas").
//!
//! A pin number is `generation << 16 | slot`: `slot` indexes the table,
//! and `generation` (1 to 0xffff, never 0, one more each time the slot is
//! given out) makes a number stale once its pin is released, so a server
//! that releases twice, or a number from its previous life, releases
//! nothing. A number the server never got is as harmless: it can only
//! name a slot of this server's own table. Numbers are the server's to
//! pass back, never trusted: every release is checked.
//!
//! Fixed capacity `N` (at most 2¹⁶); no allocation.

/// Why a pin was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its blocks would take the server past its quota.
    OverQuota,
    /// The server holds `N` pins already.
    Full,
}

/// One server's pins: `P` is the cache's own hold on a group (`fs-cache-core`'s
/// `Pin`), kept here until the server releases the number it was given.
pub struct PinTable<P, const N: usize> {
    slots: [Option<Held<P>>; N],
    generations: [u16; N],
    /// Free slots, a stack: `free[..free_len]`.
    free: [u16; N],
    free_len: usize,
    /// Blocks held, and the most the server may hold.
    blocks: u64,
    quota_blocks: u64,
    /// Releases of numbers the server does not hold (for the log).
    bad_releases: u64,
}

struct Held<P> {
    pin: P,
    blocks: u32,
}

impl<P, const N: usize> PinTable<P, N> {
    const FITS: () = assert!(N >= 1 && N <= 1 << 16, "slots are numbered in 16 bits");

    /// An empty table for a server whose quota is `quota_blocks`.
    pub fn new(quota_blocks: u64) -> Self {
        let () = Self::FITS;
        PinTable {
            slots: core::array::from_fn(|_| None),
            generations: [0; N],
            // Slot 0 on top: the first pins get the lowest slots.
            free: core::array::from_fn(|i| (N - 1 - i) as u16),
            free_len: N,
            blocks: 0,
            quota_blocks,
            bad_releases: 0,
        }
    }

    /// Whether a pin of `blocks` more would be taken now.
    pub fn admits(&self, blocks: u32) -> Result<(), Refused> {
        if self.free_len == 0 {
            Err(Refused::Full)
        } else if self.blocks + u64::from(blocks) > self.quota_blocks {
            Err(Refused::OverQuota)
        } else {
            Ok(())
        }
    }

    /// Keeps `pin`, which holds `blocks` of the cache, and returns the
    /// number the server releases it by; a refusal gives `pin` back, for
    /// the cache to release at once.
    pub fn take(&mut self, pin: P, blocks: u32) -> Result<u32, (Refused, P)> {
        if let Err(why) = self.admits(blocks) {
            return Err((why, pin));
        }
        self.free_len -= 1;
        let slot = usize::from(self.free[self.free_len]);
        let generation = match self.generations[slot] {
            u16::MAX | 0 => 1,
            g => g + 1,
        };
        self.generations[slot] = generation;
        self.slots[slot] = Some(Held { pin, blocks });
        self.blocks += u64::from(blocks);
        Ok(u32::from(generation) << 16 | slot as u32)
    }

    /// The pin the server releases by `number`, if it holds it; anything
    /// else is counted ([`bad_releases`](Self::bad_releases)) and changes
    /// nothing.
    pub fn release(&mut self, number: u32) -> Option<P> {
        let slot = (number & 0xffff) as usize;
        let generation = (number >> 16) as u16;
        let held = match self.slots.get_mut(slot) {
            Some(held @ Some(_)) if self.generations[slot] == generation => held.take(),
            _ => None,
        };
        let Some(Held { pin, blocks }) = held else {
            self.bad_releases += 1;
            return None;
        };
        self.blocks -= u64::from(blocks);
        self.free[self.free_len] = slot as u16;
        self.free_len += 1;
        Some(pin)
    }

    /// Every pin the server holds, taken out (its hello: a new life), for
    /// the cache to release; the quota is free again.
    pub fn drain(&mut self) -> impl Iterator<Item = P> + '_ {
        self.blocks = 0;
        let mut slot = 0;
        core::iter::from_fn(move || {
            while slot < N {
                let s = slot;
                slot += 1;
                if let Some(held) = self.slots[s].take() {
                    self.free[self.free_len] = s as u16;
                    self.free_len += 1;
                    return Some(held.pin);
                }
            }
            None
        })
    }

    /// Pins held.
    pub fn len(&self) -> usize {
        N - self.free_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks held by the server's pins.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    pub fn quota_blocks(&self) -> u64 {
        self.quota_blocks
    }

    /// Releases of numbers the server did not hold.
    pub fn bad_releases(&self) -> u64 {
        self.bad_releases
    }
}
