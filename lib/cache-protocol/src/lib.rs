//! The contract between the **file cache PD** and the **server PDs** it
//! serves (httpd, ftpd, the next one): which regions they share, what a
//! request and a response are, how pins and quotas work, and how either
//! side starts over. The cache PD (`fs/cache`, program `file-cache`) and
//! the servers' end, [`client::Client`], which httpd and ftpd embed (its
//! module docs state its rules), are built on it (README, "The file cache
//! as its own PD").
//!
//! # Why a PD of its own, and why queues
//!
//! Inside a server, the cache would make a second server need a second
//! copy of the disk path, and the two could not share what is cached.
//! As its own PD the cache alone talks to the disk driver and
//! verifies files (`fs-cache-core`'s SHA-256 and piece sums); each server maps
//! the cache region **read-only** and may send from it in place (the NIC
//! reads it: the servers' `send_from`), so zero copy stays zero copy, and
//! a compromised server can neither change a file nor see another
//! server's requests.
//!
//! Requests travel in `lib-queue` rings, not protected calls: a server's
//! event loop never blocks on the cache, many opens and releases go in one
//! wake-up each way, and the cache answers an open when its data is loaded
//! (a call would have to return "wait" and be repeated). A server keeps
//! the pins of files it serves often (its own choice, within its quota),
//! so a request for a hot file costs no round trip to the cache at all.
//!
//! # Regions
//!
//! | region                 | cache PD | server | holds |
//! |------------------------|----------|--------|-------|
//! | `cache_data`           | rw (and the disk's DMA) | r | the cache: the image's head (superblock and index) at offset 0, file groups after it (`fs-cache-core`'s layout) |
//! | `cache_info`           | rw       | r      | [`Info`]: ready, the cache's life, the head's length, the server's quota |
//! | `cache_request` (one per server)  | rw | rw | queue of [`Request`]s, server → cache |
//! | `cache_response` (one per server) | rw | rw | queue of [`Response`]s, cache → server |
//!
//! A server finds files itself: it parses the head in `cache_data`
//! (`fs_format::Image::parse`, once, at start) and looks paths up in it,
//! so a lookup is no message. It names a file by its **position** in the
//! index (`Image::position`).
//!
//! # Requests and responses
//!
//! - [`Request::open`]`(file, tag)`: the server wants file number `file`'s
//!   data. The cache answers exactly once, with the same `tag`: [`Kind::Ready`]
//!   (the data is loaded and verified, at `offset` in `cache_data`, held by
//!   pin `pin` until the server releases it), or a failure ([`Kind::Corrupt`],
//!   [`Kind::IoError`], [`Kind::TooLarge`], [`Kind::NoSuchFile`],
//!   [`Kind::OverQuota`], [`Kind::BadRequest`]). An open may wait in the
//!   cache for as long as the load takes; opens are answered in any order.
//! - [`Request::release`]`(pin)`: the server is done with a pin. No
//!   answer. A pin the server does not hold (never given, already
//!   released, from an earlier life) is counted and ignored: it cannot
//!   release another server's pin, whose numbers are another table's.
//!
//! While a server holds a pin, the cache never evicts or overwrites the
//! file's group: the server (and the NIC, for it) may read the file's
//! bytes at `offset..offset + size` for as long as it holds it.
//!
//! # Quotas
//!
//! Each server may pin at most its **quota** of the cache, in blocks of
//! `fs_format::BLOCK_SIZE` (`<setvar symbol="cache_quota_blocks" .../>` in
//! the description, published in [`Info`]). A pin counts the blocks of the
//! group it holds in place (a page and the objects it inlines are one
//! group); an open that would take a server past its quota is answered
//! [`Kind::OverQuota`], and the server must release something first. So
//! one server cannot pin the whole cache and starve another, and the
//! cache's own replacement works in what the quotas leave. Pins are also
//! bounded in number: [`PINS_PER_SERVER`].
//!
//! # Queues and signalling
//!
//! Both queues are `lib-queue` rings with its layout, ordering,
//! sleep/wake protocol and hostile-peer checks; the entries' shared forms
//! are in [`queue`]. Each side notifies the other only if it asked, once
//! per batch. A server keeps at most [`QUEUE_CAPACITY`] opens outstanding
//! (enqueued and not yet answered) so that the response queue always has
//! room; the cache takes a request only when the response queue has room
//! for it and every open it holds, or when the server has a queue of opens
//! waiting (then only releases and hellos can follow, and they may be what
//! the waits need; an open taken then is dropped unanswered), so a server
//! that breaks the rule only stalls itself. A cache that stops taking requests for lack of that room
//! does not wait for a signal on the request queue (it is not empty): so
//! a server that has read answers while requests of its own are still
//! queued notifies the cache, whether or not the queue asks for it.
//!
//! # Starting over
//!
//! - A restarted **server** first enqueues [`Request::hello`] with its
//!   life (`pds_runtime::restarts`) before anything else: the cache then
//!   releases every pin the server held and drops its waiting opens (their
//!   answers would name tags of the dead life). Answers already in the
//!   response queue carry tags of the old life; a server discards every
//!   response until the [`Kind::Hello`] answer with its life.
//! - A restarted **cache** counts its lives in [`Info`]'s epoch. A server
//!   that sees the epoch change forgets all its pins (the new life has
//!   none, and may load other files where they were), releasing none of
//!   them, and ends every transfer that reads from them: a TCP connection
//!   whose unacknowledged bytes were in the cache is reset, since their
//!   retransmission would send whatever the new life placed there. It
//!   then enqueues its hello again, so that the new life drops the pins
//!   it gave for opens the old life had not taken (the server forgot
//!   their tags), and discards responses until its answer.
#![no_std]

pub mod client;
pub mod pins;
pub mod queue;
pub mod region;
#[cfg(test)]
mod tests;

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Capacity of both queues of a server, in entries.
pub const QUEUE_CAPACITY: usize = 64;
/// Pins one server may hold at once (one per file it is sending, plus the
/// hot files it keeps).
pub const PINS_PER_SERVER: usize = 1024;
/// Bytes of each queue region (one page).
pub const QUEUE_REGION_SIZE: usize = 0x1000;
/// Bytes of the `cache_info` region.
pub const INFO_REGION_SIZE: usize = 0x1000;

const _: () = {
    assert!(queue::region_size_for::<Request>(QUEUE_CAPACITY) <= QUEUE_REGION_SIZE);
    assert!(queue::region_size_for::<Response>(QUEUE_CAPACITY) <= QUEUE_REGION_SIZE);
    assert!(core::mem::size_of::<Info>() <= INFO_REGION_SIZE);
    assert!(PINS_PER_SERVER <= 1 << 16, "a pin number carries its slot in 16 bits");
};

/// The request queue as the server sees it.
pub type RequestProducer<'a> = lib_queue::Producer<'a, QUEUE_CAPACITY, Request>;
/// The request queue as the cache sees it (`new(region, ())`: the cache
/// validates each request itself).
pub type RequestConsumer<'a> = lib_queue::Consumer<'a, QUEUE_CAPACITY, Request>;
/// The response queue as the cache sees it.
pub type ResponseProducer<'a> = lib_queue::Producer<'a, QUEUE_CAPACITY, Response>;
/// The response queue as the server sees it.
pub type ResponseConsumer<'a> = lib_queue::Consumer<'a, QUEUE_CAPACITY, Response>;

/// What a request asks. In shared memory a `u32`; other values are
/// answered [`Kind::BadRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// `arg` = file position in the index, `tag` = the server's name for
    /// the open.
    Open = 0,
    /// `arg` = a pin number from a [`Kind::Ready`] answer.
    Release = 1,
    /// `arg` = the server's life: forget every pin and open of its
    /// earlier lives (crate docs, "Starting over").
    Hello = 2,
}

/// A request from a server, raw: the cache validates it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// An [`Op`] code.
    pub op: u32,
    /// The operation's argument (see [`Op`]).
    pub arg: u32,
    /// The server's name for an open, returned in its [`Response`].
    pub tag: u32,
}

impl Request {
    pub const fn open(file: u32, tag: u32) -> Request {
        Request { op: Op::Open as u32, arg: file, tag }
    }

    pub const fn release(pin: u32) -> Request {
        Request { op: Op::Release as u32, arg: pin, tag: 0 }
    }

    pub const fn hello(life: u32) -> Request {
        Request { op: Op::Hello as u32, arg: life, tag: life }
    }

    /// The operation, or `None` for an unknown code.
    pub fn op(&self) -> Option<Op> {
        [Op::Open, Op::Release, Op::Hello].into_iter().find(|&op| op as u32 == self.op)
    }
}

/// How an open (or a hello) was answered. In shared memory a `u32`; a
/// server treats unknown values as [`Kind::BadRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// Loaded and verified: `offset` and `pin` are valid.
    Ready = 0,
    /// The file's bytes do not match the image's SHA-256 or piece sums
    /// (`fs-cache-core` verification); never sent.
    Corrupt = 1,
    /// The disk failed the read; a later open tries again.
    IoError = 2,
    /// Larger than half the cache: never servable from it.
    TooLarge = 3,
    /// No file has this position in the index.
    NoSuchFile = 4,
    /// The pin would take the server past its quota (or its
    /// [`PINS_PER_SERVER`]): release one and open again.
    OverQuota = 5,
    /// An unknown operation.
    BadRequest = 6,
    /// The answer to [`Request::hello`]: everything of earlier lives is
    /// forgotten; `tag` is the life.
    Hello = 7,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Ready,
        Kind::Corrupt,
        Kind::IoError,
        Kind::TooLarge,
        Kind::NoSuchFile,
        Kind::OverQuota,
        Kind::BadRequest,
        Kind::Hello,
    ];

    /// The kind whose code (its discriminant) is `code`.
    pub fn from_code(code: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|&k| k as u32 == code)
    }
}

/// The cache's answer to an open or a hello.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// A [`Kind`] code.
    pub kind: u32,
    /// The request's `tag`.
    pub tag: u32,
    /// With [`Kind::Ready`]: the pin to release.
    pub pin: u32,
    /// With [`Kind::Ready`]: the file's first byte in `cache_data`.
    pub offset: u64,
}

impl Response {
    pub const fn ready(tag: u32, pin: u32, offset: u64) -> Response {
        Response { kind: Kind::Ready as u32, tag, pin, offset }
    }

    /// A failed open (or a hello's answer): no pin.
    pub const fn other(tag: u32, kind: Kind) -> Response {
        Response { kind: kind as u32, tag, pin: 0, offset: 0 }
    }

    /// The kind, unknown codes as [`Kind::BadRequest`].
    pub fn kind(&self) -> Kind {
        Kind::from_code(self.kind).unwrap_or(Kind::BadRequest)
    }
}

/// What the cache tells every server, in `cache_info`; read-only for them.
///
/// | offset | size | field |
/// |--------|------|-------|
/// | 0      | 4    | `ready`: 0 while the cache starts, 1 once the head is loaded and verified, 2 if it refused the image (for good: nothing will be served) |
/// | 4      | 4    | `epoch`: the cache's life, 1 at boot, one more at each restart |
/// | 8      | 4    | `head_len`: bytes of the head at offset 0 of `cache_data` |
/// | 12     | 4    | `quota_blocks`: this server's quota |
/// | 16     | 88   | [`Counters`], eleven `u64`s in its field order, for the server's log |
#[repr(C)]
pub struct Info {
    ready: AtomicU32,
    epoch: AtomicU32,
    head_len: AtomicU32,
    quota_blocks: AtomicU32,
    counters: [AtomicU64; COUNTERS],
}

const COUNTERS: usize = 11;

/// The cache's counters as it last published them in a server's
/// [`Info`] (after each batch of work), for the server's log: the cache
/// has no clock of its own to report them by. The cache's are the whole
/// cache's; the last three are this server's. Each field is read
/// atomically, the whole not: a snapshot may mix two publications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Opens answered from data in memory.
    pub hits: u64,
    /// Loads started, completed, failed.
    pub loads: u64,
    pub loaded: u64,
    pub failed_loads: u64,
    /// Groups evicted to make room.
    pub evictions: u64,
    /// Opens that found no room at once.
    pub busy: u64,
    /// Files that passed verification, and that failed it.
    pub verified: u64,
    pub corrupt: u64,
    /// This server's pins and their blocks.
    pub pins: u64,
    pub blocks: u64,
    /// This server's releases of pins it did not hold.
    pub bad_releases: u64,
}

impl Counters {
    fn to_array(self) -> [u64; COUNTERS] {
        let Counters {
            hits,
            loads,
            loaded,
            failed_loads,
            evictions,
            busy,
            verified,
            corrupt,
            pins,
            blocks,
            bad_releases,
        } = self;
        [hits, loads, loaded, failed_loads, evictions, busy, verified, corrupt, pins, blocks, bad_releases]
    }

    fn from_array(a: [u64; COUNTERS]) -> Counters {
        let [hits, loads, loaded, failed_loads, evictions, busy, verified, corrupt, pins, blocks, bad_releases] = a;
        Counters { hits, loads, loaded, failed_loads, evictions, busy, verified, corrupt, pins, blocks, bad_releases }
    }
}

/// `ready`'s values.
const STARTING: u32 = 0;
const READY: u32 = 1;
const REFUSED: u32 = 2;

/// A server's view of [`Info`] at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoSnapshot {
    pub epoch: u32,
    pub head_len: u32,
    pub quota_blocks: u32,
}

impl Info {
    /// The `Info` in a `cache_info` region at `region`.
    ///
    /// # Safety
    ///
    /// `region` must be valid for reads (and writes, in the cache PD, which
    /// publishes) of `size_of::<Info>()` bytes, 4-byte aligned, for `'a`,
    /// and accessed in this address space only atomically meanwhile. The
    /// peer may write any bytes there at any time.
    pub unsafe fn at<'a>(region: *mut u8) -> &'a Info {
        // SAFETY: the caller's contract; `Info` is made of atomics only, for
        // which every bit pattern is valid and concurrent writes are allowed.
        unsafe { &*region.cast::<Info>() }
    }

    /// Publishes the cache's state: everything first, `ready` last
    /// (`Release`), so a server that sees `ready` sees the rest.
    pub fn publish(&self, epoch: u32, head_len: u32, quota_blocks: u32) {
        self.epoch.store(epoch, Ordering::Relaxed);
        self.head_len.store(head_len, Ordering::Relaxed);
        self.quota_blocks.store(quota_blocks, Ordering::Relaxed);
        self.ready.store(READY, Ordering::Release);
    }

    /// Withdraws `ready` (a restarted cache, before it reloads the head).
    pub fn withdraw(&self) {
        self.ready.store(STARTING, Ordering::Release);
    }

    /// Says the image was refused: the cache will never be ready.
    pub fn refuse(&self) {
        self.ready.store(REFUSED, Ordering::Release);
    }

    /// Whether the cache refused the image (its log says why).
    pub fn refused(&self) -> bool {
        self.ready.load(Ordering::Acquire) == REFUSED
    }

    /// Publishes the counters (cache PD).
    pub fn publish_counters(&self, counters: &Counters) {
        for (field, value) in self.counters.iter().zip(counters.to_array()) {
            field.store(value, Ordering::Relaxed);
        }
    }

    /// The counters as last published (zero before).
    pub fn counters(&self) -> Counters {
        Counters::from_array(core::array::from_fn(|i| self.counters[i].load(Ordering::Relaxed)))
    }

    /// The state, if the cache is ready.
    pub fn read(&self) -> Option<InfoSnapshot> {
        (self.ready.load(Ordering::Acquire) == READY).then(|| InfoSnapshot {
            epoch: self.epoch.load(Ordering::Relaxed),
            head_len: self.head_len.load(Ordering::Relaxed),
            quota_blocks: self.quota_blocks.load(Ordering::Relaxed),
        })
    }
}
