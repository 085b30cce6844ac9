//! The demultiplexer's filter table: who owns which traffic.
//!
//! # Precedence: there is none to decide
//!
//! Exclusive filters never overlap: [`Table::install`] refuses a claim that
//! some packet would match together with an installed exclusive filter
//! (of any owner, the claimant's own included). So at most one exclusive
//! filter matches a frame, and its owner receives it; installation order
//! and specificity never matter.
//!
//! The alternative, "most specific filter wins", would let a PD whose grant
//! allows "TCP 80 from 10.0.0.0/8" silently take part of another PD's "TCP
//! 80" — the claim the design wants refused with a clear error. Without
//! overlaps there is also exactly one PD entitled to send from an address
//! and port (see [`crate::TxPolicy`]), and the classification result does
//! not depend on the order filters were installed or removed in.
//!
//! After the exclusive filters:
//!
//! 1. an IPv4 frame no exclusive filter claims goes to the *unclaimed-IPv4
//!    owner* if there is one (the stray-packet daemon, which answers with
//!    ICMP errors and TCP resets); it is counted in
//!    [`Counters::unclaimed_ipv4`];
//! 2. any other unclaimed frame is dropped and counted in
//!    [`Counters::no_match`]. ARP is not special here: `arpd` claims it with
//!    an exclusive "EtherType ARP" filter from its grant.
//!
//! Copy filters may overlap anything. Every owner of a matching copy filter
//! receives a copy, except the frame's exclusive receiver, which already
//! has it: each PD gets a frame at most once.

use net_packet::{Malformed, Parsed};

use crate::{Filter, Grant, Owner, OwnerSet};

/// Whether a filter takes traffic or watches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// The owner receives matching frames, and no one else may claim them.
    Exclusive,
    /// The owner receives a copy of matching frames (monitoring); needs
    /// [`Grant::may_copy`].
    Copy,
}

/// Names an installed filter. It carries the slot's generation, so an id
/// kept after its filter was removed never names a later filter in the
/// same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FilterId {
    slot: u16,
    generation: u16,
}

impl FilterId {
    /// The id as one word, for a protected call's message register.
    pub const fn to_raw(self) -> u32 {
        (self.generation as u32) << 16 | self.slot as u32
    }

    /// The id from [`FilterId::to_raw`]; any word is accepted, and a word
    /// naming no installed filter is refused by the table.
    pub const fn from_raw(raw: u32) -> Self {
        FilterId { slot: raw as u16, generation: (raw >> 16) as u16 }
    }
}

/// Why a filter was not installed or removed. Each has its own error code
/// ([`FilterError::code`]) for the protected call's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterError {
    /// The filter's fields contradict each other and it would match
    /// nothing ([`Filter::is_consistent`]).
    Inconsistent,
    /// The filter is not inside the claimant's grant.
    OutOfGrant,
    /// A copy filter from a PD without the copy privilege.
    CopyNotPrivileged,
    /// Some packet would match both this exclusive filter and the installed
    /// exclusive filter `with`.
    Overlaps { with: FilterId },
    /// Every slot is in use.
    Full,
    /// No installed filter has this id.
    NoSuchFilter,
    /// The filter belongs to another owner.
    NotOwner,
    /// The claimant already holds as many filters as it may (the
    /// demultiplexer's per-client quota, `net_mux_api::MAX_FILTERS_PER_CLIENT`):
    /// one PD cannot fill the table for the others.
    QuotaExceeded,
}

impl FilterError {
    /// A distinct non-zero code per error (0 is success in the protected
    /// call's reply).
    pub const fn code(self) -> u32 {
        match self {
            FilterError::Inconsistent => 1,
            FilterError::OutOfGrant => 2,
            FilterError::CopyNotPrivileged => 3,
            FilterError::Overlaps { .. } => 4,
            FilterError::Full => 5,
            FilterError::NoSuchFilter => 6,
            FilterError::NotOwner => 7,
            FilterError::QuotaExceeded => 8,
        }
    }
}

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The PD that receives the frame: the owner of the matching exclusive
    /// filter, else the unclaimed-IPv4 owner for IPv4, else none.
    pub exclusive: Option<Owner>,
    /// The matching exclusive filter, if a filter (not the unclaimed-IPv4
    /// rule) chose `exclusive`.
    pub filter: Option<FilterId>,
    /// PDs that receive a copy, never including `exclusive`.
    pub copies: OwnerSet,
}

impl Decision {
    /// Whether no PD receives the frame.
    pub fn is_drop(&self) -> bool {
        self.exclusive.is_none() && self.copies.is_empty()
    }
}

/// Frame counters kept by the table. They wrap rather than saturate or
/// panic; at 2^64 they will not in practice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Malformed frames dropped, by [`Malformed::index`].
    pub malformed: [u64; Malformed::COUNT],
    /// Frames no exclusive filter claimed, sent to the unclaimed-IPv4 owner.
    pub unclaimed_ipv4: u64,
    /// Valid frames with no exclusive receiver (copies may still have been
    /// made).
    pub no_match: u64,
}

impl Counters {
    /// All malformed frames, whatever the reason.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().fold(0, |sum, n| sum.wrapping_add(*n))
    }
}

/// An installed filter, as listed by [`Table::filters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    pub id: FilterId,
    pub owner: Owner,
    pub filter: Filter,
    pub kind: FilterKind,
    /// Frames this filter matched.
    pub hits: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u16,
    entry: Option<Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    owner: Owner,
    filter: Filter,
    kind: FilterKind,
    hits: u64,
}

/// A table of at most `N` filters (`N` ≤ 65536).
#[derive(Clone, Debug)]
pub struct Table<const N: usize> {
    slots: [Slot; N],
    unclaimed_ipv4: Option<Owner>,
    counters: Counters,
}

impl<const N: usize> Table<N> {
    /// An empty table. IPv4 frames no filter claims go to `unclaimed_ipv4`
    /// (the stray-packet daemon) if given, else are dropped.
    pub const fn new(unclaimed_ipv4: Option<Owner>) -> Self {
        const { assert!(N <= 1 << 16, "slot numbers are 16 bits") };
        Table {
            slots: [Slot { generation: 0, entry: None }; N],
            unclaimed_ipv4,
            counters: Counters { malformed: [0; Malformed::COUNT], unclaimed_ipv4: 0, no_match: 0 },
        }
    }

    /// Installs `filter` for `owner`, whose grant is `grant`. Checks, in
    /// order: the filter is consistent; a copy filter needs the copy
    /// privilege; the filter is inside the grant; an exclusive filter
    /// overlaps no installed exclusive filter; a slot is free.
    pub fn install(
        &mut self,
        owner: Owner,
        grant: &Grant<'_>,
        filter: Filter,
        kind: FilterKind,
    ) -> Result<FilterId, FilterError> {
        if !filter.is_consistent() {
            return Err(FilterError::Inconsistent);
        }
        if kind == FilterKind::Copy && !grant.may_copy {
            return Err(FilterError::CopyNotPrivileged);
        }
        if !grant.permits(&filter) {
            return Err(FilterError::OutOfGrant);
        }
        if kind == FilterKind::Exclusive {
            if let Some(with) = self.exclusive_overlapping(&filter) {
                return Err(FilterError::Overlaps { with });
            }
        }
        let (index, slot) =
            self.slots.iter_mut().enumerate().find(|(_, slot)| slot.entry.is_none()).ok_or(FilterError::Full)?;
        slot.entry = Some(Entry { owner, filter, kind, hits: 0 });
        Ok(FilterId { slot: index as u16, generation: slot.generation })
    }

    /// Removes `owner`'s filter `id`. A PD may remove only its own filters.
    pub fn remove(&mut self, owner: Owner, id: FilterId) -> Result<(), FilterError> {
        let slot = self.slots.get_mut(usize::from(id.slot)).ok_or(FilterError::NoSuchFilter)?;
        match slot.entry {
            Some(entry) if slot.generation == id.generation => {
                if entry.owner != owner {
                    return Err(FilterError::NotOwner);
                }
                slot.entry = None;
                slot.generation = slot.generation.wrapping_add(1);
                Ok(())
            }
            _ => Err(FilterError::NoSuchFilter),
        }
    }

    /// Removes every filter of `owner` (when it stops or restarts) and
    /// returns how many there were.
    pub fn remove_all(&mut self, owner: Owner) -> usize {
        let mut removed = 0;
        for slot in &mut self.slots {
            if slot.entry.is_some_and(|entry| entry.owner == owner) {
                slot.entry = None;
                slot.generation = slot.generation.wrapping_add(1);
                removed += 1;
            }
        }
        removed
    }

    /// Decides where a valid frame goes (see the module documentation for
    /// the rules) and counts it: one hit for every matching filter, and
    /// [`Counters::unclaimed_ipv4`] or [`Counters::no_match`] when no
    /// exclusive filter matched.
    pub fn classify(&mut self, parsed: &Parsed) -> Decision {
        let mut decision = Decision { exclusive: None, filter: None, copies: OwnerSet::EMPTY };
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(entry) = slot.entry.as_mut().filter(|entry| entry.filter.matches(parsed)) else {
                continue;
            };
            entry.hits = entry.hits.wrapping_add(1);
            match entry.kind {
                FilterKind::Exclusive if decision.exclusive.is_none() => {
                    decision.exclusive = Some(entry.owner);
                    decision.filter = Some(FilterId { slot: index as u16, generation: slot.generation });
                }
                // Unreachable while no two exclusive filters overlap.
                FilterKind::Exclusive => {}
                FilterKind::Copy => decision.copies.insert(entry.owner),
            }
        }
        if decision.exclusive.is_none() {
            match self.unclaimed_ipv4.filter(|_| parsed.ipv4().is_some()) {
                Some(owner) => {
                    decision.exclusive = Some(owner);
                    self.counters.unclaimed_ipv4 = self.counters.unclaimed_ipv4.wrapping_add(1);
                }
                None => self.counters.no_match = self.counters.no_match.wrapping_add(1),
            }
        }
        if let Some(owner) = decision.exclusive {
            decision.copies.remove(owner);
        }
        decision
    }

    /// Validates `frame` with [`net_packet::classify`] and decides where it
    /// goes; a malformed frame is counted under its reason and the reason
    /// returned.
    pub fn classify_frame(&mut self, frame: &[u8]) -> Result<Decision, Malformed> {
        match net_packet::classify(frame) {
            Ok(parsed) => Ok(self.classify(&parsed)),
            Err(reason) => {
                self.count_malformed(reason);
                Err(reason)
            }
        }
    }

    /// Counts a frame dropped as malformed elsewhere (for example by a
    /// stricter check than [`net_packet::classify`]).
    pub fn count_malformed(&mut self, reason: Malformed) {
        let counter = &mut self.counters.malformed[reason.index()];
        *counter = counter.wrapping_add(1);
    }

    /// The frame counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Frames the installed filter `id` has matched.
    pub fn hits(&self, id: FilterId) -> Option<u64> {
        self.entry(id).map(|entry| entry.hits)
    }

    /// The installed filters, in slot order.
    pub fn filters(&self) -> impl Iterator<Item = Installed> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let entry = slot.entry?;
            Some(Installed {
                id: FilterId { slot: index as u16, generation: slot.generation },
                owner: entry.owner,
                filter: entry.filter,
                kind: entry.kind,
                hits: entry.hits,
            })
        })
    }

    /// How many filters (exclusive and copy) `owner` holds.
    pub fn count_of(&self, owner: Owner) -> usize {
        self.slots.iter().filter(|slot| slot.entry.is_some_and(|entry| entry.owner == owner)).count()
    }

    /// The owner whose exclusive filter matches `parsed`, if any, without
    /// counting.
    pub fn exclusive_owner(&self, parsed: &Parsed) -> Option<Owner> {
        self.exclusive_entries().find(|(_, entry)| entry.filter.matches(parsed)).map(|(_, entry)| entry.owner)
    }

    /// The exclusive filters of `owner`.
    pub fn exclusive_filters_of(&self, owner: Owner) -> impl Iterator<Item = &Filter> + '_ {
        self.exclusive_entries().filter(move |(_, entry)| entry.owner == owner).map(|(_, entry)| &entry.filter)
    }

    /// The unclaimed-IPv4 owner given to [`Table::new`].
    pub fn unclaimed_ipv4_owner(&self) -> Option<Owner> {
        self.unclaimed_ipv4
    }

    fn entry(&self, id: FilterId) -> Option<&Entry> {
        let slot = self.slots.get(usize::from(id.slot))?;
        slot.entry.as_ref().filter(|_| slot.generation == id.generation)
    }

    fn exclusive_entries(&self) -> impl Iterator<Item = (FilterId, &Entry)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let entry = slot.entry.as_ref()?;
            let id = FilterId { slot: index as u16, generation: slot.generation };
            (entry.kind == FilterKind::Exclusive).then_some((id, entry))
        })
    }

    fn exclusive_overlapping(&self, filter: &Filter) -> Option<FilterId> {
        self.exclusive_entries().find(|(_, entry)| entry.filter.overlaps(filter)).map(|(id, _)| id)
    }
}
