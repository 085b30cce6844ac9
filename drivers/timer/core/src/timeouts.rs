//! The table of pending timeouts.

/// Why a timeout could not be armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmError {
    /// The client already has its maximum of pending timeouts.
    Full,
    /// Not a client slot.
    NoSuchClient,
}

/// Pending deadlines (nanoseconds, absolute): up to `PER_CLIENT` for each
/// of `CLIENTS` clients. Fixed capacity, so one client can only exhaust its
/// own share. Searches are linear: the table is small (a few hundred
/// entries at most), and this keeps it allocation-free and obviously right.
pub struct Timeouts<const CLIENTS: usize, const PER_CLIENT: usize> {
    deadlines: [[Option<u64>; PER_CLIENT]; CLIENTS],
}

/// The clients that had timeouts expire, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Expired(pub u64);

impl Expired {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Client numbers, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(i)
        })
    }
}

impl<const CLIENTS: usize, const PER_CLIENT: usize> Timeouts<CLIENTS, PER_CLIENT> {
    const FITS: () = assert!(CLIENTS <= 64, "Expired is a 64-bit set");

    pub const fn new() -> Self {
        let () = Self::FITS;
        Timeouts { deadlines: [[None; PER_CLIENT]; CLIENTS] }
    }

    /// Adds a deadline for `client`.
    pub fn arm(&mut self, client: usize, deadline: u64) -> Result<(), ArmError> {
        let slots = self.deadlines.get_mut(client).ok_or(ArmError::NoSuchClient)?;
        let free = slots.iter_mut().find(|d| d.is_none()).ok_or(ArmError::Full)?;
        *free = Some(deadline);
        Ok(())
    }

    /// Drops all of `client`'s pending deadlines.
    pub fn cancel_all(&mut self, client: usize) {
        if let Some(slots) = self.deadlines.get_mut(client) {
            *slots = [None; PER_CLIENT];
        }
    }

    /// Pending deadlines of `client`.
    pub fn pending(&self, client: usize) -> usize {
        self.deadlines.get(client).map_or(0, |s| s.iter().flatten().count())
    }

    /// The nearest pending deadline.
    pub fn next(&self) -> Option<u64> {
        self.deadlines.iter().flatten().flatten().copied().min()
    }

    /// Removes every deadline at or before `now`; returns whose they were.
    pub fn expire(&mut self, now: u64) -> Expired {
        let mut expired = Expired::default();
        for (client, slots) in self.deadlines.iter_mut().enumerate() {
            for slot in slots.iter_mut() {
                if slot.is_some_and(|d| d <= now) {
                    *slot = None;
                    expired.0 |= 1 << client;
                }
            }
        }
        expired
    }
}

impl<const CLIENTS: usize, const PER_CLIENT: usize> Default for Timeouts<CLIENTS, PER_CLIENT> {
    fn default() -> Self {
        Self::new()
    }
}
