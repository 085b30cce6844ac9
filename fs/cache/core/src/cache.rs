//! The cache proper: groups, the arena log, in-flight requests, verdicts.
//! The policies are described in the crate documentation.

use crate::SECTORS_PER_BLOCK;
use fs_format::{FileRecord, Image, BLOCK_SIZE};
use lib_blk_protocol::{Request, Response, Status, QUEUE_CAPACITY, SECTOR_SIZE};

/// The slot number of a pin that holds no group (an empty file).
const NO_SLOT: u16 = u16::MAX;
/// Low bits of a request id: the in-flight table index.
const FLIGHT_BITS: u32 = 8;
/// The rest: the index's generation, so that stale ids are recognised;
/// 20 bits, which keeps every id below `lib_blk_protocol::SYNC_MARK` (the
/// ids of a client's Syncs).
const GEN_MASK: u32 = u32::MAX >> (FLIGHT_BITS + 4);
const _: () = assert!((GEN_MASK << FLIGHT_BITS | ((1 << FLIGHT_BITS) - 1)) < lib_blk_protocol::SYNC_MARK);
/// Mark of an empty file whose record does not match empty content.
const EMPTY_CORRUPT: u64 = u64::MAX;

/// A file of the image: its record and its position in the index (the key
/// of its per-file state). Made by [`Cache::lookup`] and [`Cache::file`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File<'h> {
    id: u32,
    record: FileRecord<'h>,
}

impl<'h> File<'h> {
    /// The file's record (path, stored header, size, times, sums...).
    pub fn record(&self) -> &FileRecord<'h> {
        &self.record
    }

    /// Its position in the index.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// Names one load of one group: given with [`Open::Loading`] and again in
/// the [`Completion`] that ends the load. A caller may keep waiters per
/// ticket, or simply retry every waiting open on any completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    slot: u16,
    seq: u64,
}

/// A hold on a loaded group: until it is given back with
/// [`Cache::release`] the group stays where it is, unchanged. Not `Copy`
/// or `Clone`, so it is released at most once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a pin keeps its group in the cache until it is released"]
pub struct Pin {
    slot: u16,
    seq: u64,
}

/// A verified file in the region.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the pin must be released"]
pub struct Ready {
    /// Byte offset of the file's data in the cache region.
    pub offset: usize,
    /// Bytes of data (the file's size).
    pub len: usize,
    /// Keeps the bytes in place; give it back with [`Cache::release`].
    pub pin: Pin,
}

/// The answer to [`Cache::open`].
#[derive(Debug, PartialEq, Eq)]
pub enum Open {
    /// In the region and verified; pinned.
    Ready(Ready),
    /// Being read: requests are queued ([`Cache::next_request`]); open
    /// again after the ticket's [`Completion`].
    Loading(Ticket),
    /// No room now: everything that could make room is pinned or loading,
    /// or the table of groups is full of such. Try again after a release or
    /// a completion.
    Busy,
    /// The loaded data does not match the record (SHA-256, piece sums or
    /// length): never served. `detected_now` is set on the open that found
    /// it, for the caller to log the path once.
    Corrupt { detected_now: bool },
    /// Reading the file's group failed with this block status code; the
    /// next open after every waiter has been told tries the disk again.
    IoError { status: u32 },
    /// Larger than half the arena ([`Cache::max_group_blocks`]): this
    /// cache can never hold it.
    TooLarge,
}

/// What a response did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// One request of a load finished; the load is not complete.
    Progress,
    /// The load is complete: its files can be opened (and are verified on
    /// their first open).
    Loaded(Ticket),
    /// The load failed (a request ended with an error status).
    Failed(Ticket),
    /// The id was not outstanding (stale, duplicated or invented): ignored
    /// and counted.
    Unexpected,
}

/// Counters, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Opens answered `Ready`.
    pub hits: u64,
    /// Loads started.
    pub loads: u64,
    /// Loads completed.
    pub loaded: u64,
    /// Loads that failed.
    pub failed_loads: u64,
    /// Groups evicted to make room.
    pub evictions: u64,
    /// Opens answered `Busy`.
    pub busy: u64,
    /// Files that passed verification.
    pub verified: u64,
    /// Files that failed it.
    pub corrupt: u64,
    /// Requests handed out.
    pub requests: u64,
    /// Responses with an id that was not outstanding.
    pub unexpected: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The slot holds nothing.
    Free,
    /// Requests for it are queued or outstanding: its arena blocks belong
    /// to the device.
    Loading,
    /// In the arena, readable.
    Loaded,
    /// Its load failed; it holds no arena space. Kept until `waiters`
    /// opens have been told, then a new open loads again.
    Failed,
}

/// A run of disk blocks loaded as one unit.
#[derive(Clone, Copy, Debug)]
struct Group {
    state: State,
    /// First disk block and number of blocks (the group's key).
    disk_first: u32,
    blocks: u32,
    /// First arena block (`Loading` and `Loaded`).
    arena: u32,
    /// The load's number, unique over the cache's life (never 0).
    seq: u64,
    /// Pins held.
    pins: u32,
    /// Opened since the hand last passed (second chance).
    referenced: bool,
    /// Sectors requested so far, and requests outstanding.
    sent: u64,
    outstanding: u32,
    /// Status code of the first failed request.
    failed: Option<u32>,
    /// Opens answered `Loading` (and, once failed, not yet told).
    waiters: u32,
}

impl Group {
    const FREE: Group = Group {
        state: State::Free,
        disk_first: 0,
        blocks: 0,
        arena: 0,
        seq: 0,
        pins: 0,
        referenced: false,
        sent: 0,
        outstanding: 0,
        failed: None,
        waiters: 0,
    };

    fn arena_end(&self) -> u64 {
        u64::from(self.arena) + u64::from(self.blocks)
    }

    fn sectors(&self) -> u64 {
        u64::from(self.blocks) * SECTORS_PER_BLOCK
    }

    fn ticket(&self, slot: usize) -> Ticket {
        Ticket { slot: slot as u16, seq: self.seq }
    }
}

/// One entry of the in-flight table.
#[derive(Clone, Copy, Debug)]
struct Flight {
    active: bool,
    gen: u32,
    slot: u16,
}

/// The file cache over one region (see the crate documentation).
///
/// - `GROUPS`: groups tracked at once (resident, loading, or failed and
///   not yet told); at most 65535;
/// - `INFLIGHT`: block requests outstanding at once; at most the block
///   queue's capacity ([`QUEUE_CAPACITY`]), so the caller's enqueue always
///   has room if the cache is the queue's only user;
/// - `FILES`: files the image may have (one 8-byte verdict each).
///
/// Its size is about `58 * GROUPS + 8 * FILES + 12 * INFLIGHT` bytes
/// (187 KiB for 1024 groups, 64 requests and 16384 files): the stack of the
/// PD that holds it must have room for it (`stack_size` in the system
/// description), or the PD keeps it in a static.
pub struct Cache<'h, const GROUPS: usize, const INFLIGHT: usize, const FILES: usize> {
    image: Image<'h>,
    /// Region offset of arena block 0.
    arena_start: usize,
    arena_blocks: u32,
    max_request_sectors: u32,
    groups: [Group; GROUPS],
    /// Slots of the groups that hold arena space (`Loading`, `Loaded`),
    /// sorted by arena position (they do not overlap).
    order: [u16; GROUPS],
    resident: usize,
    /// The log's hand: the arena block where the next placement looks first.
    hand: u32,
    /// Where the round-robin over groups with requests to send resumes,
    /// and how many such groups there are.
    send_cursor: usize,
    sending: usize,
    flights: [Flight; INFLIGHT],
    in_flight: usize,
    /// Per file: `seq << 1 | corrupt` of the load it was verified in, 0 if
    /// never, [`EMPTY_CORRUPT`] for a bad empty file.
    marks: [u64; FILES],
    next_seq: u64,
    stats: Stats,
}

impl<'h, const GROUPS: usize, const INFLIGHT: usize, const FILES: usize> Cache<'h, GROUPS, INFLIGHT, FILES> {
    const CAPACITIES_OK: () = {
        assert!(GROUPS > 0 && GROUPS < NO_SLOT as usize, "GROUPS must be in 1..65535");
        assert!(
            INFLIGHT > 0 && INFLIGHT <= QUEUE_CAPACITY && INFLIGHT <= 1 << FLIGHT_BITS,
            "INFLIGHT must be in 1..=QUEUE_CAPACITY"
        );
    };

    /// A cache over the region of `region_size` bytes whose first
    /// `head_area` bytes hold `image`'s head.
    pub(crate) fn new(image: Image<'h>, head_area: usize, region_size: usize, max_request_sectors: u32) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITIES_OK;
        Cache {
            image,
            arena_start: head_area,
            arena_blocks: ((region_size.saturating_sub(head_area)) / BLOCK_SIZE) as u32,
            max_request_sectors,
            groups: [Group::FREE; GROUPS],
            order: [0; GROUPS],
            resident: 0,
            hand: 0,
            send_cursor: 0,
            sending: 0,
            flights: [Flight { active: false, gen: 0, slot: 0 }; INFLIGHT],
            in_flight: 0,
            marks: [0; FILES],
            next_seq: 1,
            stats: Stats::default(),
        }
    }

    /// The parsed image (for [`Image::is_directory`], listings, ...).
    pub fn image(&self) -> &Image<'h> {
        &self.image
    }

    /// Region offset where the arena starts (behind the head). Methods that
    /// read file data take the region's bytes from here on.
    pub fn arena_start(&self) -> usize {
        self.arena_start
    }

    /// Bytes of the arena.
    pub fn arena_len(&self) -> usize {
        self.arena_blocks as usize * BLOCK_SIZE
    }

    /// The largest group, in blocks: half the arena. Larger spans are
    /// loaded file by file; larger files are [`Open::TooLarge`].
    pub fn max_group_blocks(&self) -> u32 {
        (self.arena_blocks / 2).max(1)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests handed out and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether no load is in progress (nothing to send, nothing outstanding).
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.sending == 0
    }

    /// The file at exactly `path` (percent-decoded, without dot segments).
    pub fn lookup(&self, path: &[u8]) -> Option<File<'h>> {
        let id = self.image.position(path)?;
        self.file(id)
    }

    /// The file at position `id` of the index.
    pub fn file(&self, id: u32) -> Option<File<'h>> {
        Some(File { id, record: self.image.record(id)? })
    }

    /// The group a file is loaded with: its span, or its own blocks if the
    /// span exceeds the group limit; `None` if even those do.
    fn group_key(&self, record: &FileRecord<'_>) -> Option<(u32, u32)> {
        let max = self.max_group_blocks();
        if record.span_blocks <= max {
            return Some((record.span_first, record.span_blocks));
        }
        let blocks = record.block_count();
        (blocks <= u64::from(max)).then_some((record.first_block, blocks as u32))
    }

    fn find_group(&self, disk_first: u32, blocks: u32) -> Option<usize> {
        self.groups.iter().position(|g| g.state != State::Free && g.disk_first == disk_first && g.blocks == blocks)
    }

    /// Asks for a file's data. `arena` is the region from
    /// [`Cache::arena_start`] on (verification reads the file from it; the
    /// cache reads only groups that are loaded, never bytes the device may
    /// be writing).
    ///
    /// `Ready` when the file's group is loaded and the file verified (now
    /// or earlier in this load): the range is pinned until released. A
    /// group not in the cache is placed (maybe evicting others) and its
    /// requests queued: `Loading`.
    pub fn open(&mut self, file: &File<'h>, arena: &[u8]) -> Open {
        let record = file.record;
        if record.size == 0 {
            return self.open_empty(file);
        }
        let Some((disk_first, blocks)) = self.group_key(&record) else {
            return Open::TooLarge;
        };
        match self.find_group(disk_first, blocks) {
            None => self.start_load(disk_first, blocks),
            Some(slot) => {
                let group = &mut self.groups[slot];
                match group.state {
                    State::Loading => {
                        group.waiters = group.waiters.saturating_add(1);
                        group.referenced = true;
                        Open::Loading(group.ticket(slot))
                    }
                    State::Failed if group.waiters > 0 => {
                        group.waiters -= 1;
                        Open::IoError { status: group.failed.unwrap_or(Status::IoError as u32) }
                    }
                    State::Failed | State::Free => {
                        self.groups[slot] = Group::FREE;
                        self.start_load(disk_first, blocks)
                    }
                    State::Loaded => self.open_loaded(slot, file, arena),
                }
            }
        }
    }

    /// An empty file needs no block; its record must still describe empty
    /// content (a crafted image could claim otherwise).
    fn open_empty(&mut self, file: &File<'h>) -> Open {
        if file.record.verify(&[]) {
            return Open::Ready(Ready { offset: self.arena_start, len: 0, pin: Pin { slot: NO_SLOT, seq: 0 } });
        }
        let detected_now = match self.marks.get_mut(file.id as usize) {
            Some(mark) => core::mem::replace(mark, EMPTY_CORRUPT) != EMPTY_CORRUPT,
            None => true,
        };
        if detected_now {
            self.stats.corrupt += 1;
        }
        Open::Corrupt { detected_now }
    }

    fn open_loaded(&mut self, slot: usize, file: &File<'h>, arena: &[u8]) -> Open {
        let record = &file.record;
        let group = self.groups[slot];
        // The key came from this record, so the file lies inside the group.
        let start = (group.arena as usize + (record.first_block - group.disk_first) as usize) * BLOCK_SIZE;
        let len = record.size as usize;
        let tag = group.seq << 1;
        let Some(mark) = self.marks.get_mut(file.id as usize) else {
            return Open::Corrupt { detected_now: true };
        };
        if *mark & !1 != tag {
            let ok = arena.get(start..start + len).is_some_and(|data| record.verify(data));
            *mark = tag | u64::from(!ok);
            if ok {
                self.stats.verified += 1;
            } else {
                self.stats.corrupt += 1;
                return Open::Corrupt { detected_now: true };
            }
        } else if *mark & 1 != 0 {
            return Open::Corrupt { detected_now: false };
        }
        let group = &mut self.groups[slot];
        group.pins += 1;
        group.referenced = true;
        self.stats.hits += 1;
        Open::Ready(Ready { offset: self.arena_start + start, len, pin: Pin { slot: slot as u16, seq: group.seq } })
    }

    /// Places a new group and queues its requests.
    fn start_load(&mut self, disk_first: u32, blocks: u32) -> Open {
        let Some(slot) = self.free_slot() else {
            self.stats.busy += 1;
            return Open::Busy;
        };
        let Some(arena) = self.place(blocks, slot) else {
            self.stats.busy += 1;
            return Open::Busy;
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.groups[slot] = Group { state: State::Loading, disk_first, blocks, arena, seq, waiters: 1, ..Group::FREE };
        self.sending += 1;
        self.stats.loads += 1;
        Open::Loading(Ticket { slot: slot as u16, seq })
    }

    /// A slot for a new group: a free one, else a failed group's (its
    /// waiters will load again), else one freed by evicting the next
    /// evictable group after the hand (second chance applies).
    fn free_slot(&mut self) -> Option<usize> {
        if let Some(slot) = self.groups.iter().position(|g| g.state == State::Free) {
            return Some(slot);
        }
        if let Some(slot) = self.groups.iter().position(|g| g.state == State::Failed) {
            self.groups[slot] = Group::FREE;
            return Some(slot);
        }
        let n = self.resident;
        if n == 0 {
            return None;
        }
        let mut k = self.first_ending_after(self.hand) % n;
        // Two rounds: the first may only clear reference bits.
        for _ in 0..2 * n + 1 {
            let slot = usize::from(self.order[k]);
            let group = &mut self.groups[slot];
            if group.state == State::Loaded && group.pins == 0 {
                if !group.referenced {
                    self.remove_resident(k, k + 1, slot as u16, false);
                    self.groups[slot] = Group::FREE;
                    self.stats.evictions += 1;
                    return Some(slot);
                }
                group.referenced = false;
            }
            k = (k + 1) % n;
        }
        None
    }

    /// Index in `order` of the first resident group ending after `block`.
    fn first_ending_after(&self, block: u32) -> usize {
        let groups = &self.groups;
        self.order[..self.resident].partition_point(|&s| groups[usize::from(s)].arena_end() <= u64::from(block))
    }

    /// Finds `blocks` contiguous arena blocks for `slot` by sweeping the
    /// hand (crate documentation, "Replacement"), evicts the groups there,
    /// and records `slot` as resident there. `None` if the hand went round
    /// three times without finding room.
    fn place(&mut self, blocks: u32, slot: usize) -> Option<u32> {
        let arena = u64::from(self.arena_blocks);
        let n = u64::from(blocks);
        if n == 0 || n > arena {
            return None;
        }
        let mut p = u64::from(self.hand);
        let mut i = self.first_ending_after(self.hand);
        let mut wraps = 0;
        loop {
            if p + n > arena {
                wraps += 1;
                if wraps > 2 {
                    return None;
                }
                p = 0;
                i = 0;
            }
            // Groups order[i..j] lie in [p, p + n) and can be evicted.
            let mut j = i;
            let mut blocker = None;
            while j < self.resident {
                let group = &mut self.groups[usize::from(self.order[j])];
                if u64::from(group.arena) >= p + n {
                    break;
                }
                if group.state != State::Loaded || group.pins > 0 {
                    blocker = Some(j);
                    break;
                }
                if group.referenced {
                    group.referenced = false;
                    blocker = Some(j);
                    break;
                }
                j += 1;
            }
            match blocker {
                Some(b) => {
                    p = self.groups[usize::from(self.order[b])].arena_end();
                    i = b + 1;
                }
                None => {
                    for k in i..j {
                        let victim = usize::from(self.order[k]);
                        self.groups[victim] = Group::FREE;
                        self.stats.evictions += 1;
                    }
                    self.remove_resident(i, j, slot as u16, true);
                    let end = p + n;
                    self.hand = if end >= arena { 0 } else { end as u32 };
                    return Some(p as u32);
                }
            }
        }
    }

    /// Replaces `order[from..to]` with `slot` (if `insert`) or with nothing.
    fn remove_resident(&mut self, from: usize, to: usize, slot: u16, insert: bool) {
        let len = self.resident;
        let new_to = from + usize::from(insert);
        self.order.copy_within(to..len, new_to);
        if insert {
            self.order[from] = slot;
        }
        self.resident = len - (to - from) + usize::from(insert);
    }

    /// Drops a group's arena space (a failed load).
    fn unplace(&mut self, slot: usize) {
        if let Some(k) = self.order[..self.resident].iter().position(|&s| usize::from(s) == slot) {
            self.remove_resident(k, k + 1, 0, false);
        }
    }

    /// Gives back the place of a caller that got [`Open::Loading`] and will
    /// not open the file again (its connection ended): a load that fails
    /// answers each of its waiters' next open with [`Open::IoError`], and
    /// without this the next *unrelated* open would get the failure meant
    /// for the caller that left, instead of a new attempt at the disk.
    pub fn abandon(&mut self, ticket: Ticket) {
        if let Some(group) = self.groups.get_mut(usize::from(ticket.slot)) {
            if group.seq == ticket.seq && matches!(group.state, State::Loading | State::Failed) {
                group.waiters = group.waiters.saturating_sub(1);
            }
        }
    }

    /// Gives a pin back. `false` if it names no pinned group (it came from
    /// another cache).
    pub fn release(&mut self, pin: Pin) -> bool {
        if pin.slot == NO_SLOT {
            return true;
        }
        match self.groups.get_mut(usize::from(pin.slot)) {
            Some(group) if group.seq == pin.seq && group.state == State::Loaded && group.pins > 0 => {
                group.pins -= 1;
                true
            }
            _ => false,
        }
    }

    /// Blocks of the group `pin` holds in place (what a server's quota
    /// counts, `lib-cache-protocol`); 0 for an empty file's pin or a pin
    /// of another cache.
    pub fn pinned_blocks(&self, pin: &Pin) -> u32 {
        match self.groups.get(usize::from(pin.slot)) {
            Some(group) if group.seq == pin.seq && group.state == State::Loaded => group.blocks,
            _ => 0,
        }
    }

    /// The bytes of a ready file, from `arena` (the region from
    /// [`Cache::arena_start`] on).
    pub fn data<'a>(&self, ready: &Ready, arena: &'a [u8]) -> &'a [u8] {
        let start = ready.offset - self.arena_start;
        arena.get(start..start + ready.len).unwrap_or(&[])
    }

    /// The next block request to enqueue, if any may be sent: loads take
    /// turns, one request each, and at most `INFLIGHT` are outstanding. A
    /// request covers as many of its group's sectors as the driver allows.
    pub fn next_request(&mut self) -> Option<Request> {
        if self.sending == 0 || self.in_flight == INFLIGHT {
            return None;
        }
        let flight = self.flights.iter().position(|f| !f.active)?;
        for step in 0..GROUPS {
            let slot = (self.send_cursor + step) % GROUPS;
            let group = &mut self.groups[slot];
            if group.state != State::Loading || group.failed.is_some() || group.sent >= group.sectors() {
                continue;
            }
            let count = (group.sectors() - group.sent).min(u64::from(self.max_request_sectors));
            let sector = u64::from(group.disk_first) * SECTORS_PER_BLOCK + group.sent;
            let offset =
                (self.arena_start + group.arena as usize * BLOCK_SIZE) as u64 + group.sent * SECTOR_SIZE as u64;
            group.sent += count;
            group.outstanding += 1;
            if group.sent == group.sectors() {
                self.sending -= 1;
            }
            let f = &mut self.flights[flight];
            f.gen = (f.gen + 1) & GEN_MASK;
            f.active = true;
            f.slot = slot as u16;
            let id = f.gen << FLIGHT_BITS | flight as u32;
            self.in_flight += 1;
            self.send_cursor = (slot + 1) % GROUPS;
            self.stats.requests += 1;
            return Some(Request::read(id, sector, count as u32, offset));
        }
        None
    }

    /// Answers every request in flight as failed ([`Status::IoError`]),
    /// through [`complete`](Self::complete), calling `on` with each
    /// completion: for requests the driver will never answer because it
    /// was restarted (`lib_blk_protocol`, "Starting over"). The loads they
    /// belong to fail (their waiters get the error, their arena space is
    /// freed) and load again at the next open. Returns how many.
    pub fn fail_in_flight(&mut self, mut on: impl FnMut(Completion)) -> usize {
        let mut failed = 0;
        for index in 0..INFLIGHT {
            let flight = self.flights[index];
            if flight.active {
                let id = flight.gen << FLIGHT_BITS | index as u32;
                on(self.complete(Response::new(id, Status::IoError)));
                failed += 1;
            }
        }
        failed
    }

    /// Takes the driver's answer to a request (in any order). When the
    /// last request of a load is answered the load is complete: `Loaded`,
    /// or `Failed` if any of its requests failed (the group's arena space
    /// is freed then; nothing of it is ever served).
    pub fn complete(&mut self, response: Response) -> Completion {
        let index = (response.id & ((1 << FLIGHT_BITS) - 1)) as usize;
        let gen = response.id >> FLIGHT_BITS;
        let Some(flight) = self.flights.get_mut(index).filter(|f| f.active && f.gen == gen) else {
            self.stats.unexpected += 1;
            return Completion::Unexpected;
        };
        flight.active = false;
        self.in_flight -= 1;
        let slot = usize::from(flight.slot);
        let group = &mut self.groups[slot];
        group.outstanding -= 1;
        if response.status() != Some(Status::Ok) && group.failed.is_none() {
            group.failed = Some(response.status);
            if group.sent < group.sectors() {
                // It will send no more.
                self.sending -= 1;
            }
        }
        if group.outstanding > 0 || (group.failed.is_none() && group.sent < group.sectors()) {
            return Completion::Progress;
        }
        let ticket = group.ticket(slot);
        if group.failed.is_some() {
            group.state = State::Failed;
            group.pins = 0;
            self.stats.failed_loads += 1;
            self.unplace(slot);
            Completion::Failed(ticket)
        } else {
            group.state = State::Loaded;
            // The waiters have not opened it yet: a second chance for them.
            group.referenced = true;
            self.stats.loaded += 1;
            Completion::Loaded(ticket)
        }
    }
}
