//! The **server's end** of the protocol: what httpd (and ftpd) embed to
//! open files of the cache PD, share their pins, keep hot ones, and start
//! over. `no_std`, no allocation, fixed capacity; sans-I/O apart from the
//! two queues and `cache_info` it is given.
//!
//! A [`Client`] of `FILES` entries names each file it tracks (pinned,
//! being opened, or owing a failure to its waiters) by one entry. The
//! owner opens files by their index position ([`Client::open`]), gets a
//! [`Handle`] and the file's offset in `cache_data`, and gives the handle
//! back ([`Client::release`]) when it is done sending; it calls
//! [`Client::poll`] when the cache notifies it (and at start), and
//! [`Client::should_signal`] before it waits.
//!
//! # Rules
//!
//! **Starting.** The client's first request is [`Request::hello`] with the
//! owner's life, sent once the cache is ready. Every response before the
//! [`Kind::Hello`] answer carrying that life is discarded (it answers a
//! request of an earlier life of the server, whose tags may equal this
//! life's) and counted ([`ClientStats::stale`]); those waiting when the
//! hello is sent are taken first, so that the cache finds room to answer
//! it. Until that answer every open waits ([`Opened::Wait`]).
//!
//! **The cache's lives.** The client reads [`Info`] at every call that
//! may send or answer. While the cache is not ready, or its epoch is not
//! the one the client greeted, opens wait and nothing is sent; while it is
//! not ready, [`poll`](Client::poll) does not even take responses. When
//! `poll` sees the epoch change, every pin the client holds is void: it
//! forgets them all **without releasing them** (the new life holds none;
//! a release could name one of the new life's pins), forgets its
//! outstanding opens, the releases it owed and the failures it kept, and
//! says hello again; `poll` reports it ([`Polled::epoch_changed`]) so that
//! the owner ends every transfer that reads from the old pins. Handles
//! carry a generation: a handle of the old life is stale, and releasing it
//! is counted ([`ClientStats::stale_handles`]) and changes nothing. The
//! second hello makes the new life drop the pins it gave to opens the old
//! life had not taken (their answers, with forgotten tags, are ignored).
//!
//! **One pin per file, shared.** If the client holds the file's pin, an
//! open counts one more local user and is answered
//! [`Opened::Ready`] at once: a hot file costs no message. If an open of
//! the file is outstanding, the open waits for it (opens are coalesced).
//! Otherwise the client sends [`Request::open`] and the open waits. Tags
//! are `sequence << 16 | entry`, the sequence one more for each open sent,
//! so an answer names its entry and a stale answer (an earlier sequence;
//! the sequence wraps only after 2¹⁶ opens, far more than the queues
//! hold) names nothing.
//!
//! **Outstanding opens.** At most [`QUEUE_CAPACITY`] opens are outstanding
//! (sent, not answered), as the crate docs require; an open past that, or
//! that finds the request queue full, is sent later by `poll` (entries in
//! turn, so none waits forever), after every release owed.
//!
//! **Answers.** [`Kind::Ready`] records the pin, its offset and no local
//! user: each waiter becomes a user when it opens again. A failure is
//! kept for the waiters of the file: each that opens again (or abandons)
//! takes one, opens get [`Opened::Fail`] while any is owed, and once none
//! is owed the entry is forgotten, so a later open tries again (an
//! [`Kind::IoError`] is transient). [`Kind::OverQuota`]: the client
//! releases its least recently used kept pin and sends the open again; if
//! it keeps none, the open fails with `OverQuota`. An answer whose tag
//! names no outstanding open, an unexpected hello, a `Ready` naming a pin
//! the client already holds: counted ([`ClientStats::unexpected`]) and
//! ignored; unknown kinds are [`Kind::BadRequest`] failures. No response
//! content makes the client panic.
//!
//! **Keeping pins.** When a file's last user releases it and no waiter is
//! about to claim it, its pin is **kept** (hot) while the client keeps at
//! most [`Config::keep`] such pins; past that, the least recently used
//! kept pin is released. Kept pins are also released, least recently used
//! first, when the cache answers `OverQuota` and when the table needs an
//! entry. So the quota bounds what is kept without the client knowing
//! files' sizes. A release that finds the request queue full (or the cache
//! not ready) is owed, its entry held, and sent first by a later `poll`.
//!
//! **Waiting.** [`Opened::Wait`] gives a [`WaitToken`]: the owner opens
//! the file again when [`Client::may_retry`] says the answer may have
//! changed (after a `poll`), or gives the token up with
//! [`Client::abandon`] (the connection ended), so that a failure is not
//! kept for it and an open not yet sent is not sent. When every entry is
//! taken (by files in use, opens under way, failures owed, releases owed)
//! and no kept pin can give its entry up, an open waits for an entry.
//!
//! **Signalling.** Requests are enqueued as calls go; the owner calls
//! [`Client::should_signal`] once per batch, before it waits, and
//! notifies the cache if it says so (`lib-queue`'s protocol: it asks
//! only if something was enqueued since), and also whenever `poll` took
//! answers while requests of its own were still queued: the cache may
//! have stopped taking them for lack of room for its answers, and it
//! waits for no signal on a queue that is not empty (crate docs, "Queues
//! and signalling"). [`Client::request_signal_if_empty`] asks the cache to
//! notify when it answers.
//!
//! # Use
//!
//! ```ignore
//! let mut cache = Client::<1024>::new(requests, responses, info, life, Config { keep: 256 });
//! // at start, and on each notification from the cache:
//! if cache.poll().epoch_changed {
//!     reset_every_connection_sending_from_the_cache();
//! }
//! for conn in waiting_connections() {
//!     if cache.may_retry(&conn.wait) {
//!         match cache.open(conn.file) {
//!             Opened::Ready { handle, offset } => conn.send_from(handle, offset),
//!             Opened::Wait(token) => conn.wait = token,
//!             Opened::Fail(kind) => conn.answer_error(kind),
//!         }
//!     }
//! }
//! // a connection done with a file: cache.release(handle);
//! // a connection closed while waiting: cache.abandon(token);
//! if cache.should_signal() {
//!     CACHE_CHANNEL.notify();
//! }
//! ```

use crate::{Info, Kind, Request, RequestProducer, Response, ResponseConsumer, QUEUE_CAPACITY};

/// The owner's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most pins kept with no user (hot files).
    pub keep: usize,
}

/// One user's hold on an open file, given by [`Client::open`] and given
/// back to [`Client::release`]. Neither `Copy` nor `Clone`: each
/// `Ready` counts one user, released once.
#[derive(Debug, PartialEq, Eq)]
pub struct Handle {
    slot: u32,
    generation: u32,
}

/// What a waiting open waits for; see [`Client::may_retry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitToken(Wait);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// The hello's answer, or a ready cache of the greeted epoch.
    Start,
    /// The answer to the open of the file in `slot`.
    File { slot: u32, generation: u32 },
    /// A free entry (the table was full): any entry freed since `frees`.
    Room { frees: u64 },
}

/// The answer to [`Client::open`].
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// The file's bytes are at `offset..offset + size` in `cache_data`
    /// until `handle` is released (or the epoch changes). The owner checks
    /// the range against the region before it reads (the offset is the
    /// cache's word).
    Ready { handle: Handle, offset: u64 },
    /// Not now: open again once [`Client::may_retry`] says so, or
    /// [`Client::abandon`] the token.
    Wait(WaitToken),
    /// The cache's answer for this open (never `Ready` or `Hello`).
    Fail(Kind),
}

/// What a [`Client::poll`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Responses taken (some waits may retry).
    pub answers: usize,
    /// The cache started a new life: every handle is stale, and every
    /// transfer reading from the old pins must end (crate docs,
    /// "Starting over").
    pub epoch_changed: bool,
}

/// Counters, for the owner's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Calls of [`Client::open`].
    pub opens: u64,
    /// Opens answered `Ready` from a pin already held, without a message
    /// (a waiter claiming its answer, a hot file).
    pub hits: u64,
    /// Open requests sent (re-sent ones included).
    pub sent: u64,
    /// `Ready` answers taken.
    pub ready: u64,
    /// Failure answers taken (`OverQuota` counted when final).
    pub failed: u64,
    /// Opens sent again after an `OverQuota` released a kept pin.
    pub over_quota_retries: u64,
    /// Release requests sent.
    pub releases: u64,
    /// Responses discarded while waiting for the hello's answer.
    pub stale: u64,
    /// Responses that named no outstanding open, or were otherwise wrong.
    pub unexpected: u64,
    /// Releases of handles the client no longer holds.
    pub stale_handles: u64,
    /// Epoch changes seen.
    pub epoch_changes: u64,
    /// Queue operations that found a corrupt queue.
    pub corrupt_queue: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The hello is to be sent.
    Hello,
    /// The hello is sent; its answer is awaited.
    Greeting,
    /// Answered: opens go.
    Live,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    /// An open to send.
    Wanted,
    /// An open sent with this tag.
    Opening {
        tag: u32,
    },
    /// The file's pin.
    Pinned {
        pin: u32,
        offset: u64,
    },
    /// A failure owed to `waiters`.
    Failed {
        kind: Kind,
    },
    /// A pin to release (the entry names no file any more).
    Releasing {
        pin: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: State,
    file: u32,
    /// One more each time the entry is given to a file.
    generation: u32,
    /// Handles out.
    users: u32,
    /// Opens answered `Wait` on this entry and not yet opened again or
    /// abandoned.
    waiters: u32,
    /// Where the entry is listed (kept in step with `state`, `users` and
    /// `waiters` by `Client::update`): in its file's hash chain (it names
    /// a file), in the list of kept pins (evictable), on the free stack.
    indexed: bool,
    kept: bool,
    stacked: bool,
    /// The next entry of its hash chain, and its neighbours in the list
    /// of kept pins, as `slot + 1` (0: none).
    chain: u16,
    older: u16,
    newer: u16,
}

const FREE: Entry = Entry {
    state: State::Free,
    file: 0,
    generation: 0,
    users: 0,
    waiters: 0,
    indexed: false,
    kept: false,
    stacked: false,
    chain: NONE,
    older: NONE,
    newer: NONE,
};

/// No entry, in a link (links are `slot + 1`).
const NONE: u16 = 0;

fn link(slot: usize) -> u16 {
    // `FILES < 2^16` (`Client::FITS`): `slot + 1` fits.
    (slot + 1) as u16
}

fn slot_of(link: u16) -> Option<usize> {
    usize::from(link).checked_sub(1)
}

/// A server's client of the file cache PD (module docs).
///
/// Every operation on a file is O(1) (a hash chain by file number, a list
/// of kept pins in the order they were kept, a stack of free entries),
/// apart from a `Ready` answer, which checks the pin against every entry,
/// and sending owed releases and opens, which scans the table once.
pub struct Client<'q, const FILES: usize> {
    requests: RequestProducer<'q>,
    responses: ResponseConsumer<'q>,
    info: &'q Info,
    life: u32,
    config: Config,
    phase: Phase,
    /// The epoch greeted (meaningful once the hello is sent).
    epoch: u32,
    entries: [Entry; FILES],
    /// Hash chains of the entries naming a file, by file number.
    buckets: [u16; FILES],
    /// Free entries: `free[..free_len]`.
    free: [u16; FILES],
    free_len: usize,
    /// The kept pins, oldest first, and how many.
    oldest: u16,
    newest: u16,
    kept: usize,
    /// Entries `Opening` (opens outstanding), `Wanted` and `Releasing`
    /// (releases owed).
    in_flight: usize,
    wanted: usize,
    owed: usize,
    /// Where the next scan for opens to send starts (each in turn).
    cursor: usize,
    /// Entries freed, or pins kept, so far (for `Room` waits).
    frees: u64,
    sequence: u16,
    unsignalled: bool,
    /// Answers were taken while requests were queued: notify the cache
    /// whether or not it asked.
    nudge: bool,
    stats: ClientStats,
}

impl<'q, const FILES: usize> Client<'q, FILES> {
    const FITS: () = assert!(FILES >= 1 && FILES < 1 << 16, "a tag carries its entry in 16 bits");

    /// A client over its two queues and `cache_info`, for the owner's
    /// `life` (`pds_runtime::restarts`; each life of the server must
    /// differ). Sends nothing yet: the owner calls [`poll`](Self::poll).
    pub fn new(
        requests: RequestProducer<'q>,
        responses: ResponseConsumer<'q>,
        info: &'q Info,
        life: u32,
        config: Config,
    ) -> Self {
        let () = Self::FITS;
        let mut client = Client {
            requests,
            responses,
            info,
            life,
            config,
            phase: Phase::Hello,
            epoch: 0,
            entries: [FREE; FILES],
            buckets: [NONE; FILES],
            free: [0; FILES],
            free_len: 0,
            oldest: NONE,
            newest: NONE,
            kept: 0,
            in_flight: 0,
            wanted: 0,
            owed: 0,
            cursor: 0,
            frees: 0,
            sequence: 0,
            unsignalled: false,
            nudge: false,
            stats: ClientStats::default(),
        };
        client.forget_all();
        client
    }

    /// Whether opens go now: the hello is answered and the cache is ready
    /// in the greeted epoch.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live && self.current()
    }

    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Pins held (kept ones included, owed releases not). Counts them.
    pub fn pins(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.state, State::Pinned { .. })).count()
    }

    /// Pins kept with no user and no waiter.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Opens sent and not answered.
    pub fn outstanding(&self) -> usize {
        self.in_flight
    }

    /// Whether `handle` still holds its file (not released, not of an
    /// earlier epoch).
    pub fn holds(&self, handle: &Handle) -> bool {
        self.entry_of(handle).is_some()
    }

    /// The offset of `handle`'s file in `cache_data`, if it still holds it.
    pub fn offset(&self, handle: &Handle) -> Option<u64> {
        match self.entry_of(handle)?.state {
            State::Pinned { offset, .. } => Some(offset),
            _ => None,
        }
    }

    /// Asks for file `file` (its position in the index); see the module
    /// docs, "One pin per file".
    pub fn open(&mut self, file: u32) -> Opened {
        self.stats.opens += 1;
        if !self.is_live() {
            return Opened::Wait(WaitToken(Wait::Start));
        }
        if let Some(slot) = self.find(file) {
            let e = &mut self.entries[slot];
            let wait = WaitToken(Wait::File { slot: slot as u32, generation: e.generation });
            let opened = match e.state {
                State::Pinned { offset, .. } => match e.users.checked_add(1) {
                    Some(users) => {
                        e.users = users;
                        e.waiters = e.waiters.saturating_sub(1);
                        self.stats.hits += 1;
                        Opened::Ready { handle: Handle { slot: slot as u32, generation: e.generation }, offset }
                    }
                    None => Opened::Wait(wait),
                },
                State::Failed { kind } => {
                    e.waiters = e.waiters.saturating_sub(1);
                    if e.waiters == 0 {
                        e.state = State::Free;
                    }
                    Opened::Fail(kind)
                }
                // Wanted or Opening (`find` returns only entries naming a
                // file).
                _ => {
                    e.waiters = e.waiters.saturating_add(1);
                    Opened::Wait(wait)
                }
            };
            self.update(slot);
            return opened;
        }
        let Some(slot) = self.allocate() else { return Opened::Wait(WaitToken(Wait::Room { frees: self.frees })) };
        let e = &mut self.entries[slot];
        let generation = e.generation.wrapping_add(1);
        *e = Entry { state: State::Wanted, file, generation, users: 0, waiters: 1, ..FREE };
        self.update(slot);
        self.wanted += 1;
        if self.wanted == 1 && self.owed == 0 {
            self.send_open(slot);
        } else {
            self.pump();
        }
        Opened::Wait(WaitToken(Wait::File { slot: slot as u32, generation }))
    }

    /// Whether an open answered `Wait(token)` may now have another answer.
    pub fn may_retry(&self, token: &WaitToken) -> bool {
        match token.0 {
            Wait::Start => self.is_live(),
            Wait::File { slot, generation } => self.entries.get(slot as usize).is_none_or(|e| {
                e.generation != generation || !matches!(e.state, State::Wanted | State::Opening { .. })
            }),
            Wait::Room { frees } => self.frees != frees,
        }
    }

    /// Gives up a wait (its connection ended before it opened again).
    pub fn abandon(&mut self, token: WaitToken) {
        let Wait::File { slot, generation } = token.0 else { return };
        let slot = slot as usize;
        let Some(e) = self.entries.get_mut(slot) else { return };
        if e.generation != generation || e.waiters == 0 || !e.indexed {
            return;
        }
        e.waiters -= 1;
        if e.waiters == 0 && e.users == 0 {
            match e.state {
                State::Wanted => {
                    e.state = State::Free;
                    self.wanted -= 1;
                }
                State::Failed { .. } => e.state = State::Free,
                _ => {}
            }
        }
        self.update(slot);
        self.trim();
    }

    /// Gives back one user's hold. The pin is kept or released (module
    /// docs, "Keeping pins"); a stale handle is counted and changes nothing.
    pub fn release(&mut self, handle: Handle) {
        if self.entry_of(&handle).is_none() {
            self.stats.stale_handles += 1;
            return;
        }
        let slot = handle.slot as usize;
        self.entries[slot].users -= 1;
        self.update(slot);
        self.trim();
    }

    /// Takes the cache's answers, notices a new epoch, says hello, and
    /// sends what is owed (module docs). Call at start and whenever the
    /// cache notifies.
    pub fn poll(&mut self) -> Polled {
        let mut polled = Polled::default();
        let Some(info) = self.info.read() else { return polled };
        if self.phase != Phase::Hello && info.epoch != self.epoch {
            self.forget_all();
            self.phase = Phase::Hello;
            self.stats.epoch_changes += 1;
            polled.epoch_changed = true;
        }
        // Answers first: a queue full of an earlier life's answers is
        // emptied before the hello goes, so the cache has room to answer it.
        loop {
            match self.responses.dequeue() {
                Ok(Some(response)) => {
                    polled.answers += 1;
                    self.take(response);
                }
                Ok(None) => break,
                Err(_) => {
                    self.stats.corrupt_queue += 1;
                    break;
                }
            }
        }
        if polled.answers > 0 && !self.requests.is_empty().unwrap_or(true) {
            self.nudge = true;
        }
        if self.phase == Phase::Hello && self.enqueue(Request::hello(self.life)) {
            self.phase = Phase::Greeting;
            self.epoch = info.epoch;
        }
        self.pump();
        polled
    }

    /// Whether the owner must notify the cache now: call once per batch of
    /// calls, before waiting.
    pub fn should_signal(&mut self) -> bool {
        let nudge = core::mem::take(&mut self.nudge);
        let asked = core::mem::take(&mut self.unsignalled) && self.requests.should_signal();
        asked || nudge
    }

    /// Asks the cache to notify when it answers; `true` if the response
    /// queue is empty (the owner may wait), `false` if answers arrived
    /// meanwhile (poll again). A corrupt queue counts as empty: nothing
    /// can be taken from it.
    pub fn request_signal_if_empty(&mut self) -> bool {
        self.responses.request_signal_if_empty().unwrap_or_else(|_| {
            self.stats.corrupt_queue += 1;
            true
        })
    }

    // ----------------------------------------------------------- inside

    fn current(&self) -> bool {
        self.phase != Phase::Hello && self.info.read().is_some_and(|i| i.epoch == self.epoch)
    }

    fn names_file(e: &Entry) -> bool {
        matches!(e.state, State::Wanted | State::Opening { .. } | State::Pinned { .. } | State::Failed { .. })
    }

    fn evictable(e: &Entry) -> bool {
        matches!(e.state, State::Pinned { .. }) && e.users == 0 && e.waiters == 0
    }

    fn entry_of(&self, handle: &Handle) -> Option<&Entry> {
        self.entries
            .get(handle.slot as usize)
            .filter(|e| e.generation == handle.generation && matches!(e.state, State::Pinned { .. }) && e.users > 0)
    }

    fn bucket(file: u32) -> usize {
        // The high bits of a multiplicative hash, scaled to the table.
        ((u64::from(file.wrapping_mul(0x9e37_79b1)) * FILES as u64) >> 32) as usize
    }

    /// The entry naming `file`.
    fn find(&self, file: u32) -> Option<usize> {
        let mut at = self.buckets[Self::bucket(file)];
        // A chain holds at most every entry once: bounded even if broken.
        for _ in 0..FILES {
            let slot = slot_of(at)?;
            let e = &self.entries[slot];
            if e.file == file {
                return Some(slot);
            }
            at = e.chain;
        }
        None
    }

    /// Brings entry `slot`'s listings in step with its state, after any
    /// change to its state, users or waiters.
    fn update(&mut self, slot: usize) {
        let e = self.entries[slot];
        let (named, evictable) = (Self::names_file(&e), Self::evictable(&e));
        if named != e.indexed {
            if named {
                let bucket = Self::bucket(e.file);
                self.entries[slot].chain = self.buckets[bucket];
                self.buckets[bucket] = link(slot);
            } else {
                self.unchain(slot);
            }
            self.entries[slot].indexed = named;
        }
        if evictable != e.kept {
            if evictable {
                self.entries[slot].older = self.newest;
                self.entries[slot].newer = NONE;
                match slot_of(self.newest) {
                    Some(newest) => self.entries[newest].newer = link(slot),
                    None => self.oldest = link(slot),
                }
                self.newest = link(slot);
                self.kept += 1;
                // Its entry may be taken for another file.
                self.frees += 1;
            } else {
                let (older, newer) = (e.older, e.newer);
                match slot_of(older) {
                    Some(o) => self.entries[o].newer = newer,
                    None => self.oldest = newer,
                }
                match slot_of(newer) {
                    Some(n) => self.entries[n].older = older,
                    None => self.newest = older,
                }
                self.entries[slot].older = NONE;
                self.entries[slot].newer = NONE;
                self.kept -= 1;
            }
            self.entries[slot].kept = evictable;
        }
        if e.state == State::Free && !e.stacked {
            self.free[self.free_len] = slot as u16;
            self.free_len += 1;
            self.entries[slot].stacked = true;
            self.frees += 1;
        }
    }

    /// Takes entry `slot` out of its hash chain.
    fn unchain(&mut self, slot: usize) {
        let bucket = Self::bucket(self.entries[slot].file);
        let next = self.entries[slot].chain;
        self.entries[slot].chain = NONE;
        if self.buckets[bucket] == link(slot) {
            self.buckets[bucket] = next;
            return;
        }
        let mut at = self.buckets[bucket];
        for _ in 0..FILES {
            let Some(prev) = slot_of(at) else { return };
            if self.entries[prev].chain == link(slot) {
                self.entries[prev].chain = next;
                return;
            }
            at = self.entries[prev].chain;
        }
    }

    /// Every entry free and unlisted (generations kept: handles and waits
    /// of before stay stale).
    fn forget_all(&mut self) {
        for e in self.entries.iter_mut() {
            *e = Entry { generation: e.generation, ..FREE };
        }
        self.buckets = [NONE; FILES];
        self.free_len = 0;
        (self.oldest, self.newest, self.kept) = (NONE, NONE, 0);
        (self.in_flight, self.wanted, self.owed) = (0, 0, 0);
        // Slot 0 on top of the stack.
        for slot in (0..FILES).rev() {
            self.update(slot);
        }
    }

    fn enqueue(&mut self, request: Request) -> bool {
        match self.requests.enqueue(request) {
            Ok(()) => {
                self.unsignalled = true;
                true
            }
            Err(crate::queue::QueueError::Corrupt) => {
                self.stats.corrupt_queue += 1;
                false
            }
            Err(_) => false,
        }
    }

    fn pop_free(&mut self) -> Option<usize> {
        while self.free_len > 0 {
            self.free_len -= 1;
            let slot = usize::from(self.free[self.free_len]);
            self.entries[slot].stacked = false;
            if self.entries[slot].state == State::Free {
                return Some(slot);
            }
        }
        None
    }

    /// A free entry, releasing the least recently kept pin for one if none
    /// is free and no release is owed already.
    fn allocate(&mut self) -> Option<usize> {
        if let Some(slot) = self.pop_free() {
            return Some(slot);
        }
        if self.owed > 0 {
            return None;
        }
        self.evict(slot_of(self.oldest)?);
        self.pop_free()
    }

    /// Releases the pin of entry `slot` (kept: no user, no waiter): now if
    /// the queue takes it, else owed.
    fn evict(&mut self, slot: usize) {
        let State::Pinned { pin, .. } = self.entries[slot].state else { return };
        if self.owed == 0 && self.current() && self.enqueue(Request::release(pin)) {
            self.stats.releases += 1;
            self.entries[slot].state = State::Free;
        } else {
            self.entries[slot].state = State::Releasing { pin };
            self.owed += 1;
        }
        self.update(slot);
    }

    /// Releases kept pins, the least recently kept first, down to `keep`.
    fn trim(&mut self) {
        while self.kept > self.config.keep {
            let Some(oldest) = slot_of(self.oldest) else { return };
            self.evict(oldest);
        }
    }

    fn send_open(&mut self, slot: usize) -> bool {
        if self.in_flight >= QUEUE_CAPACITY || !self.current() {
            return false;
        }
        let sequence = self.sequence.wrapping_add(1);
        let tag = u32::from(sequence) << 16 | slot as u32;
        if !self.enqueue(Request::open(self.entries[slot].file, tag)) {
            return false;
        }
        self.sequence = sequence;
        self.entries[slot].state = State::Opening { tag };
        self.wanted -= 1;
        self.in_flight += 1;
        self.stats.sent += 1;
        true
    }

    /// Sends the releases owed, then the opens wanted (each entry in
    /// turn), while the queue has room and the cache is current.
    fn pump(&mut self) {
        if self.phase != Phase::Live || !self.current() {
            return;
        }
        for slot in 0..FILES {
            if self.owed == 0 {
                break;
            }
            if let State::Releasing { pin } = self.entries[slot].state {
                if !self.enqueue(Request::release(pin)) {
                    return;
                }
                self.stats.releases += 1;
                self.owed -= 1;
                self.entries[slot].state = State::Free;
                self.update(slot);
            }
        }
        // Every release owed is sent (a failed one returned above).
        let start = self.cursor;
        for k in 0..FILES {
            if self.wanted == 0 || self.in_flight >= QUEUE_CAPACITY {
                return;
            }
            let slot = (start + k) % FILES;
            if self.entries[slot].state == State::Wanted {
                if !self.send_open(slot) {
                    return;
                }
                self.cursor = (slot + 1) % FILES;
            }
        }
    }

    /// One response.
    fn take(&mut self, response: Response) {
        if self.phase != Phase::Live {
            if response.kind == Kind::Hello as u32 && response.tag == self.life && self.phase == Phase::Greeting {
                self.phase = Phase::Live;
            } else {
                self.stats.stale += 1;
            }
            return;
        }
        let slot = (response.tag & 0xffff) as usize;
        let outstanding = self.entries.get(slot).is_some_and(|e| e.state == State::Opening { tag: response.tag });
        if !outstanding || response.kind == Kind::Hello as u32 {
            self.stats.unexpected += 1;
            return;
        }
        self.in_flight -= 1;
        match response.kind() {
            Kind::Ready => {
                let pin = response.pin;
                let held = self
                    .entries
                    .iter()
                    .any(|e| matches!(e.state, State::Pinned { pin: p, .. } | State::Releasing { pin: p } if p == pin));
                if held {
                    // Two files cannot share a pin: the cache is wrong.
                    self.stats.unexpected += 1;
                    self.fail(slot, Kind::BadRequest);
                    return;
                }
                self.stats.ready += 1;
                self.entries[slot].state = State::Pinned { pin, offset: response.offset };
                self.update(slot);
                self.trim();
            }
            // Nobody waits for it any more: no pin is worth releasing.
            Kind::OverQuota if self.entries[slot].waiters == 0 => self.fail(slot, Kind::OverQuota),
            Kind::OverQuota => match slot_of(self.oldest) {
                Some(victim) => {
                    self.evict(victim);
                    self.entries[slot].state = State::Wanted;
                    self.update(slot);
                    self.wanted += 1;
                    self.stats.over_quota_retries += 1;
                }
                None => self.fail(slot, Kind::OverQuota),
            },
            kind => self.fail(slot, kind),
        }
    }

    fn fail(&mut self, slot: usize, kind: Kind) {
        self.stats.failed += 1;
        self.entries[slot].state = if self.entries[slot].waiters == 0 { State::Free } else { State::Failed { kind } };
        self.update(slot);
    }

    /// Checks every listing against the entries (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut chained = 0;
        for (bucket, &first) in self.buckets.iter().enumerate() {
            let mut at = first;
            while let Some(slot) = slot_of(at) {
                let e = &self.entries[slot];
                assert!(e.indexed && Self::bucket(e.file) == bucket, "entry {slot} in the wrong chain");
                chained += 1;
                assert!(chained <= FILES, "a chain loops");
                at = e.chain;
            }
        }
        let named: usize = self.entries.iter().filter(|e| Self::names_file(e)).count();
        assert_eq!(chained, named);
        for (slot, e) in self.entries.iter().enumerate() {
            assert_eq!(e.indexed, Self::names_file(e), "entry {slot}");
            assert_eq!(e.kept, Self::evictable(e), "entry {slot}");
            assert_eq!(e.stacked, e.state == State::Free, "entry {slot}");
            if Self::names_file(e) {
                assert_eq!(self.find(e.file), Some(slot), "entry {slot}: one entry per file");
            }
        }
        let (mut at, mut previous, mut kept) = (self.oldest, NONE, 0);
        while let Some(slot) = slot_of(at) {
            assert!(self.entries[slot].kept && self.entries[slot].older == previous);
            kept += 1;
            assert!(kept <= FILES, "the kept list loops");
            (previous, at) = (at, self.entries[slot].newer);
        }
        assert_eq!((previous, kept), (self.newest, self.kept));
        assert!(self.kept <= self.config.keep);
        assert_eq!(self.free_len, self.entries.iter().filter(|e| e.state == State::Free).count());
        let count = |f: fn(&State) -> bool| self.entries.iter().filter(|e| f(&e.state)).count();
        assert_eq!(self.in_flight, count(|s| matches!(s, State::Opening { .. })));
        assert_eq!(self.wanted, count(|s| *s == State::Wanted));
        assert_eq!(self.owed, count(|s| matches!(s, State::Releasing { .. })));
    }
}

#[cfg(test)]
mod tests;
