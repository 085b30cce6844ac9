//! The cache serving several server PDs (`lib-cache-protocol`, whose crate
//! docs are the contract): each server's requests answered from one
//! [`Cache`], its pins kept in its own [`PinTable`] under its quota, opens
//! that must wait for a load kept until it completes.
//!
//! Sans-I/O like the rest of the crate: the cache PD dequeues a server's
//! requests and hands each to [`Servers::request`], passes every block
//! completion to [`Servers::completed`], and enqueues the [`Response`]s
//! these give to its `answer` callback (server index, response) on that
//! server's response queue.
//!
//! # Waiting opens
//!
//! An open whose file is loading ([`Open::Loading`]) or that finds no room
//! now ([`Open::Busy`]) waits in a table of `WAITS` entries. One waiting
//! for a load is opened again when that load completes (or fails), and
//! only then: each open of a loading group counts as one more waiter of
//! it, whom a failed load owes an [`Open::IoError`]. One that found no
//! room is opened again after every completed load and every release.
//! Each is answered when the open's answer is final. A server may
//! have at most [`QUEUE_CAPACITY`] opens waiting, so the table (sized
//! `SERVERS × QUEUE_CAPACITY`) never overflows and a server that floods
//! requests only waits for its own answers.
//!
//! # Taking requests
//!
//! The PD takes a server's requests only while [`Servers::may_take`] says
//! so: while its response queue has room for one more answer beside the
//! answers owed to its waiting opens, or while it has
//! [`QUEUE_CAPACITY`] opens waiting. In that second case a server that
//! keeps the protocol's rule (at most a queue of opens outstanding) has
//! only releases and hellos queued, which need no room, and taking them
//! is what may end the waits: opens that found no room may be waiting
//! for this very server's pins to go back. An open (or unknown request)
//! taken then breaks the rule: it is dropped unanswered and counted
//! ([`ServerStats::overruns`]), and only that server waits for it.

use crate::cache::{Cache, Completion, Open, Pin, Ticket};
use lib_cache_protocol::pins::PinTable;
use lib_cache_protocol::{Kind, Op, Request, Response, PINS_PER_SERVER, QUEUE_CAPACITY};

/// An open not answered yet.
#[derive(Clone, Copy, Debug)]
struct Wait {
    server: u8,
    tag: u32,
    file: u32,
    /// The load it waits for (`None`: it found no room).
    ticket: Option<Ticket>,
}

/// Counters of one server, for the cache PD's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub opens: u64,
    pub ready: u64,
    pub over_quota: u64,
    pub failed: u64,
    pub releases: u64,
    pub bad_requests: u64,
    pub hellos: u64,
    /// Opens and unknown requests taken while the server already had
    /// [`QUEUE_CAPACITY`] opens waiting (it broke the protocol's rule):
    /// dropped, never answered (module docs, "Taking requests").
    pub overruns: u64,
}

/// The servers of one cache. Large (a pin table per server): the PD keeps
/// it in a static, tests in a box.
pub struct Servers<const SERVERS: usize, const WAITS: usize> {
    pins: [PinTable<Pin, PINS_PER_SERVER>; SERVERS],
    waits: [Option<Wait>; WAITS],
    waiting: [usize; SERVERS],
    stats: [ServerStats; SERVERS],
    /// A file found corrupt by the last opens, for the PD to log once.
    newly_corrupt: Option<u32>,
}

impl<const SERVERS: usize, const WAITS: usize> Servers<SERVERS, WAITS> {
    const FITS: () = assert!(
        WAITS >= SERVERS * QUEUE_CAPACITY && SERVERS <= 256,
        "every server's outstanding opens must fit the wait table"
    );

    /// Servers with these quotas (blocks), none holding anything.
    pub fn new(quota_blocks: [u64; SERVERS]) -> Self {
        let () = Self::FITS;
        Servers {
            pins: quota_blocks.map(PinTable::new),
            waits: [None; WAITS],
            waiting: [0; SERVERS],
            stats: [ServerStats::default(); SERVERS],
            newly_corrupt: None,
        }
    }

    /// Whether the PD may take another request from `server` now (its
    /// waiting opens are below [`QUEUE_CAPACITY`]).
    pub fn can_take(&self, server: usize) -> bool {
        self.waiting.get(server).is_some_and(|&w| w < QUEUE_CAPACITY)
    }

    /// Whether the PD may take `server`'s next request now, its response
    /// queue having `room` free entries (module docs, "Taking requests").
    pub fn may_take(&self, server: usize, room: usize) -> bool {
        let waiting = self.waiting(server);
        server < SERVERS && (room > waiting || waiting >= QUEUE_CAPACITY)
    }

    /// Opens of `server` waiting in the cache: each will be answered, so
    /// its response queue must keep room for them (the PD takes a request
    /// only while the room exceeds this).
    pub fn waiting(&self, server: usize) -> usize {
        self.waiting.get(server).copied().unwrap_or(0)
    }

    pub fn stats(&self, server: usize) -> ServerStats {
        self.stats[server]
    }

    /// Pins `server` holds, and their blocks.
    pub fn held(&self, server: usize) -> (usize, u64) {
        (self.pins[server].len(), self.pins[server].blocks())
    }

    /// A file (its position) an open found corrupt since the last call:
    /// the PD logs its path (each load's corruption is found once).
    pub fn take_newly_corrupt(&mut self) -> Option<u32> {
        self.newly_corrupt.take()
    }

    /// Releases of pins `server` did not hold.
    pub fn bad_releases(&self, server: usize) -> u64 {
        self.pins[server].bad_releases()
    }

    /// One request of `server` (`< SERVERS`). `arena` is the cache's arena
    /// (as for [`Cache::open`]).
    pub fn request<const G: usize, const I: usize, const F: usize>(
        &mut self,
        cache: &mut Cache<'_, G, I, F>,
        arena: &[u8],
        server: usize,
        request: Request,
        answer: &mut impl FnMut(usize, Response),
    ) {
        let full = self.waiting[server] >= QUEUE_CAPACITY;
        if full && !matches!(request.op(), Some(Op::Release | Op::Hello)) {
            self.stats[server].overruns += 1;
            return;
        }
        match request.op() {
            Some(Op::Open) => {
                self.stats[server].opens += 1;
                let wait = Wait { server: server as u8, tag: request.tag, file: request.arg, ticket: None };
                if let Some(wait) = self.try_open(cache, arena, wait, answer) {
                    self.park(wait);
                }
            }
            Some(Op::Release) => {
                self.stats[server].releases += 1;
                if let Some(pin) = self.pins[server].release(request.arg) {
                    cache.release(pin);
                    self.retry(cache, arena, None, answer);
                }
            }
            Some(Op::Hello) => {
                self.stats[server].hellos += 1;
                for pin in self.pins[server].drain() {
                    cache.release(pin);
                }
                for slot in self.waits.iter_mut() {
                    if let Some(w) = slot.filter(|w| usize::from(w.server) == server) {
                        if let Some(ticket) = w.ticket {
                            cache.abandon(ticket);
                        }
                        *slot = None;
                    }
                }
                self.waiting[server] = 0;
                answer(server, Response::other(request.tag, Kind::Hello));
                self.retry(cache, arena, None, answer);
            }
            None => {
                self.stats[server].bad_requests += 1;
                answer(server, Response::other(request.tag, Kind::BadRequest));
            }
        }
    }

    /// What a block response did ([`Cache::complete`]): when a load is
    /// done or failed, the opens waiting for it, and those that found no
    /// room, have their answer now (or wait again).
    pub fn completed<const G: usize, const I: usize, const F: usize>(
        &mut self,
        cache: &mut Cache<'_, G, I, F>,
        arena: &[u8],
        completion: Completion,
        answer: &mut impl FnMut(usize, Response),
    ) {
        if let Completion::Loaded(ticket) | Completion::Failed(ticket) = completion {
            self.retry(cache, arena, Some(ticket), answer);
        }
    }

    fn park(&mut self, wait: Wait) {
        let server = usize::from(wait.server);
        // `can_take` kept the server below its share, and the table holds
        // every server's share (`FITS`): there is a free entry.
        if let Some(slot) = self.waits.iter_mut().find(|w| w.is_none()) {
            *slot = Some(wait);
            self.waiting[server] += 1;
        }
    }

    /// Opens again the waits for load `done` and those without room.
    fn retry<const G: usize, const I: usize, const F: usize>(
        &mut self,
        cache: &mut Cache<'_, G, I, F>,
        arena: &[u8],
        done: Option<Ticket>,
        answer: &mut impl FnMut(usize, Response),
    ) {
        for i in 0..WAITS {
            let Some(wait) = self.waits[i] else { continue };
            if wait.ticket.is_some() && wait.ticket != done {
                continue;
            }
            self.waits[i] = self.try_open(cache, arena, wait, answer);
            if self.waits[i].is_none() {
                self.waiting[usize::from(wait.server)] -= 1;
            }
        }
    }

    /// Opens `wait`'s file: answers and returns `None` when the answer is
    /// final, or returns the wait to keep.
    fn try_open<const G: usize, const I: usize, const F: usize>(
        &mut self,
        cache: &mut Cache<'_, G, I, F>,
        arena: &[u8],
        mut wait: Wait,
        answer: &mut impl FnMut(usize, Response),
    ) -> Option<Wait> {
        let server = usize::from(wait.server);
        let stats = &mut self.stats[server];
        let kind = match cache.file(wait.file) {
            None => Kind::NoSuchFile,
            Some(file) => match cache.open(&file, arena) {
                Open::Ready(ready) => {
                    let blocks = cache.pinned_blocks(&ready.pin);
                    match self.pins[server].take(ready.pin, blocks) {
                        Ok(number) => {
                            stats.ready += 1;
                            answer(server, Response::ready(wait.tag, number, ready.offset as u64));
                            return None;
                        }
                        // Past the quota or the pin count: both are `OverQuota`
                        // to the server (release something, open again).
                        Err((_, pin)) => {
                            cache.release(pin);
                            stats.over_quota += 1;
                            answer(server, Response::other(wait.tag, Kind::OverQuota));
                            return None;
                        }
                    }
                }
                Open::Loading(ticket) => {
                    wait.ticket = Some(ticket);
                    return Some(wait);
                }
                Open::Busy => {
                    wait.ticket = None;
                    return Some(wait);
                }
                Open::Corrupt { detected_now } => {
                    if detected_now {
                        self.newly_corrupt = Some(wait.file);
                    }
                    Kind::Corrupt
                }
                Open::IoError { .. } => Kind::IoError,
                Open::TooLarge => Kind::TooLarge,
            },
        };
        stats.failed += 1;
        answer(server, Response::other(wait.tag, kind));
        None
    }
}
