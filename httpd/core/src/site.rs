//! Where the server gets its files: the [`Store`] trait, and
//! [`ImageStore`], the site image (`fs/FORMAT.md`) served through the file
//! cache (`site-cache`) from the block driver's disk.
//!
//! # The store's contract with the server
//!
//! [`http_core::Site`] answers lookups (the stored header fields, the
//! entity tag) from the image's index, which is in memory once the cache
//! has booted. A file's *data* may not be: before the server sends the
//! first byte of a response with a body it asks [`Store::open`]:
//!
//! - [`Fetch::Ready`]: the data is in memory and verified; the pin keeps it
//!   there until [`Store::release`]. The server holds it while it sends
//!   and gives it back when the body is sent or the connection ends.
//! - [`Fetch::Wait`]: not now (being read from the disk, or no room until
//!   a pin is released). The response is held back, not started, and the
//!   open is repeated once [`Store::may_retry`] says something happened
//!   that may change the answer.
//! - [`Fetch::Fail`]: the data cannot be served (corrupt, unreadable, too
//!   large for the cache): the server answers with that status instead
//!   and closes. Not a byte of the file is sent.

use crate::inplace::FileSums;
use core::cell::Cell;
use fs_cache_core::disk::DiskCache;
pub use fs_cache_core::disk::{Availability, BlockClient, BlockEvent, CacheRegion};
use fs_cache_core::{Completion, Open, Ready, Stats, Ticket};
use http_core::{FileInfo, Lookup, Site, Status};

/// The answer to [`Store::open`] (see the module docs).
#[derive(Debug, PartialEq, Eq)]
pub enum Fetch<P, W> {
    Ready(P),
    Wait(W),
    Fail(Status),
}

/// A site whose file data the server may have to wait for.
pub trait Store: Site {
    /// Keeps a file's data in place while the server sends it.
    type Pin;
    /// What a waiting connection remembers to know when to open again.
    type Wait: Copy;

    /// Asks for the data of `file` (a handle from a lookup).
    fn open(&mut self, file: Self::Handle) -> Fetch<Self::Pin, Self::Wait>;
    /// Whether an open answered `Wait(wait)` may now have another answer.
    fn may_retry(&self, wait: &Self::Wait) -> bool;
    /// Copies bytes of the pinned file from `offset` into `buf`; returns
    /// how many: fewer than `buf.len()` only at the end of the file, 0
    /// past it.
    fn read(&self, pin: &Self::Pin, offset: u64, buf: &mut [u8]) -> usize;
    /// Where the pinned file's first byte lies in the region the NIC may
    /// send from (the description's `send_from`), if the store keeps file
    /// data there: the server then sends the file's bytes in place
    /// ([`crate::inplace`]) instead of copying them with [`read`](Self::read).
    fn region_offset(&self, _pin: &Self::Pin) -> Option<usize> {
        None
    }
    /// The Internet sum (RFC 1071: folded, not complemented, as if the
    /// range started on an even byte) of `len` bytes of the pinned file at
    /// `offset`, for a segment that carries them in place; `None` if the
    /// range is not the file's.
    fn sum(&self, _pin: &Self::Pin, _offset: u64, _len: usize) -> Option<u16> {
        None
    }
    /// Gives a pin back.
    fn release(&mut self, pin: Self::Pin);
    /// Forgets a wait whose connection ended before it opened again.
    fn abandon(&mut self, _wait: Self::Wait) {}
}

impl<S: Store> FileSums<S::Pin> for S {
    fn sum(&self, pin: &S::Pin, offset: u64, len: usize) -> Option<u16> {
        Store::sum(self, pin, offset, len)
    }
}

/// [`ImageStore`]'s hold on a file: the cache's pin, and the file's piece
/// sums from the index (which stays in memory for good), taken once at
/// open rather than per segment.
#[derive(Debug, PartialEq, Eq)]
pub struct ImagePin<'h> {
    pub ready: Ready,
    pub sums: &'h [u8],
}

pub use fs_cache_core::{SiteCache, CACHE_FILES, CACHE_GROUPS, CACHE_INFLIGHT};

/// Completed loads remembered for waiting connections; a connection that
/// waited longer than this many completions simply opens again.
const DONE_RING: usize = 64;
/// Notices held for the PD to log between polls; more are counted.
const NOTICES: usize = 16;

/// Something the PD should log about a file, by its index position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Its data failed verification (logged once per load).
    Corrupt { file: u32 },
    /// Reading it failed with this block status.
    IoError { file: u32, status: u32 },
    /// Larger than the cache can ever hold.
    TooLarge { file: u32 },
}

/// Why a waiting connection waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageWait {
    /// For this load, which had not completed when `done` loads had.
    Load { ticket: Ticket, done: u64 },
    /// For room: after the `events`-th release or completion.
    Room { events: u64 },
}

/// The site image through the file cache (see the module docs and
/// `site-cache`'s crate docs).
pub struct ImageStore<'h, R> {
    disk: DiskCache<'h, R, CACHE_GROUPS, CACHE_INFLIGHT, CACHE_FILES>,
    /// Tickets of the last completed (loaded or failed) loads, the
    /// `done`-th at `done % DONE_RING`.
    completed: [Option<Ticket>; DONE_RING],
    done: u64,
    /// Completions and releases so far.
    events: u64,
    notices: [Option<Notice>; NOTICES],
    /// Notices not held because the buffer was full.
    pub notices_dropped: u64,
    /// Pins the cache did not recognise on release (a bug if non-zero).
    pub bad_releases: u64,
    /// File bytes read to checksum segments that do not cover whole
    /// pieces (the precomputed sums cover the rest).
    sum_read_bytes: Cell<u64>,
}

impl<'h, R: CacheRegion<'h>> ImageStore<'h, R> {
    /// A store over the cache region, waiting for the disk.
    pub fn new(region: R) -> Self {
        ImageStore {
            disk: DiskCache::new(region),
            completed: [None; DONE_RING],
            done: 0,
            events: 0,
            notices: [None; NOTICES],
            notices_dropped: 0,
            bad_releases: 0,
            sum_read_bytes: Cell::new(0),
        }
    }

    /// Where the store stands.
    pub fn availability(&self) -> Availability {
        self.disk.availability()
    }

    /// Completions and releases so far: a change may wake waiting
    /// connections.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Block requests enqueued so far.
    pub fn requests_sent(&self) -> u64 {
        self.disk.requests_sent()
    }

    /// The cache, once booted.
    pub fn cache(&self) -> Option<&SiteCache<'h>> {
        self.disk.cache()
    }

    /// File bytes read to checksum segments (see `Store::sum`).
    pub fn sum_read_bytes(&self) -> u64 {
        self.sum_read_bytes.get()
    }

    /// The cache's counters (zero before it boots).
    pub fn stats(&self) -> Stats {
        self.disk.cache().map(|c| *c.stats()).unwrap_or_default()
    }

    /// The path of the file at index position `file`.
    pub fn path(&self, file: u32) -> &'h str {
        self.disk.cache().and_then(|c| c.file(file)).map_or("?", |f| f.record().path)
    }

    /// The oldest notice not yet taken.
    pub fn take_notice(&mut self) -> Option<Notice> {
        let first = self.notices.iter().position(Option::is_some)?;
        let notice = self.notices[first].take();
        self.notices[first..].rotate_left(1);
        notice
    }

    fn notice(&mut self, notice: Notice) {
        match self.notices.iter_mut().find(|n| n.is_none()) {
            Some(free) => *free = Some(notice),
            None => self.notices_dropped += 1,
        }
    }

    /// Moves all the block traffic ([`DiskCache::run`]: the sync with the
    /// driver, the boot, the loads), remembering each completed load for
    /// the connections waiting for it.
    pub fn run(&mut self, blk: &mut BlockClient<'_>, event: impl FnMut(BlockEvent), notify: impl FnMut()) {
        let mut done = Done { completed: &mut self.completed, done: &mut self.done, events: &mut self.events };
        self.disk.run(blk, |c| done.note(c), event, notify)
    }
}

/// The store's record of completed loads, borrowed while the cache is.
struct Done<'a> {
    completed: &'a mut [Option<Ticket>; DONE_RING],
    done: &'a mut u64,
    events: &'a mut u64,
}

impl Done<'_> {
    /// Remembers a finished load (loaded or failed) for the connections
    /// waiting for it.
    fn note(&mut self, c: Completion) {
        if let Completion::Loaded(ticket) | Completion::Failed(ticket) = c {
            self.completed[(*self.done % DONE_RING as u64) as usize] = Some(ticket);
            *self.done += 1;
            *self.events += 1;
        }
    }
}

/// The value of the `ETag` field in stored header fields.
fn etag_of(fields: &[u8]) -> &[u8] {
    fields
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"ETag: "))
        .map_or(&[][..], |v| v.strip_suffix(b"\r").unwrap_or(v))
}

impl<'h, R: CacheRegion<'h>> Site for ImageStore<'h, R> {
    /// The file's position in the index.
    type Handle = u32;

    fn lookup(&self, path: &str) -> Lookup<'_, u32> {
        let Some(cache) = self.disk.cache() else { return Lookup::NotFound };
        if let Some(file) = cache.lookup(path.as_bytes()) {
            let record = file.record();
            let fields = record.fields();
            let info = FileInfo {
                len: record.size,
                last_modified: record.last_modified,
                etag: etag_of(fields),
                header: fields,
            };
            return Lookup::File(info, file.id());
        }
        if cache.image().is_directory(path.as_bytes()) {
            return Lookup::Directory;
        }
        Lookup::NotFound
    }
}

impl<'h, R: CacheRegion<'h>> Store for ImageStore<'h, R> {
    type Pin = ImagePin<'h>;
    type Wait = ImageWait;

    /// `Corrupt`, `IoError` and `TooLarge` are `500` and a [`Notice`]
    /// (`Corrupt` once per load of the file).
    fn open(&mut self, id: u32) -> Fetch<ImagePin<'h>, ImageWait> {
        let Some((cache, region)) = self.disk.parts() else { return Fetch::Fail(Status::InternalServerError) };
        let Some(file) = cache.file(id) else { return Fetch::Fail(Status::InternalServerError) };
        let region = region.bytes();
        let arena = region.get(cache.arena_start()..).unwrap_or(&[]);
        let notice = match cache.open(&file, arena) {
            Open::Ready(ready) => return Fetch::Ready(ImagePin { ready, sums: file.record().sums }),
            Open::Loading(ticket) => return Fetch::Wait(ImageWait::Load { ticket, done: self.done }),
            Open::Busy => return Fetch::Wait(ImageWait::Room { events: self.events }),
            Open::Corrupt { detected_now: true } => Some(Notice::Corrupt { file: id }),
            Open::Corrupt { detected_now: false } => None,
            Open::IoError { status } => Some(Notice::IoError { file: id, status }),
            Open::TooLarge => Some(Notice::TooLarge { file: id }),
        };
        if let Some(notice) = notice {
            self.notice(notice);
        }
        Fetch::Fail(Status::InternalServerError)
    }

    fn may_retry(&self, wait: &ImageWait) -> bool {
        match *wait {
            ImageWait::Room { events } => self.events != events,
            ImageWait::Load { ticket, done } => {
                if self.done.saturating_sub(done) >= DONE_RING as u64 {
                    return true;
                }
                (done..self.done).any(|n| self.completed[(n % DONE_RING as u64) as usize] == Some(ticket))
            }
        }
    }

    fn read(&self, pin: &ImagePin<'h>, offset: u64, buf: &mut [u8]) -> usize {
        let ready = &pin.ready;
        let Ok(offset) = usize::try_from(offset) else { return 0 };
        if offset >= ready.len {
            return 0;
        }
        let n = (ready.len - offset).min(buf.len());
        let start = ready.offset + offset;
        match self.disk.region().bytes().get(start..start + n) {
            Some(data) => {
                buf[..n].copy_from_slice(data);
                n
            }
            None => 0,
        }
    }

    /// The cache region is the block client's data region and the NIC's
    /// `send_from` window: file data is sent where the disk put it.
    fn region_offset(&self, pin: &ImagePin<'h>) -> Option<usize> {
        Some(pin.ready.offset)
    }

    /// The image's precomputed piece sums where the range covers whole
    /// pieces (`fs_format::sums::segment_sum`), the loaded (verified)
    /// data for the partial pieces at its ends.
    fn sum(&self, pin: &ImagePin<'h>, offset: u64, len: usize) -> Option<u16> {
        let data = self.disk.region().bytes().get(pin.ready.offset..pin.ready.offset + pin.ready.len)?;
        let read = |at: u64, max: usize| {
            let at = usize::try_from(at).ok()?;
            let bytes = data.get(at..at.checked_add(max)?.min(data.len()))?;
            self.sum_read_bytes.set(self.sum_read_bytes.get() + bytes.len() as u64);
            Some(bytes)
        };
        fs_format::sums::segment_sum(pin.ready.len as u64, pin.sums, offset, len as u64, read).ok()
    }

    fn release(&mut self, pin: ImagePin<'h>) {
        if let Some((cache, _)) = self.disk.parts() {
            if !cache.release(pin.ready.pin) {
                self.bad_releases += 1;
            }
            self.events += 1;
        }
    }

    fn abandon(&mut self, wait: ImageWait) {
        if let (Some((cache, _)), ImageWait::Load { ticket, .. }) = (self.disk.parts(), wait) {
            cache.abandon(ticket);
        }
    }
}
