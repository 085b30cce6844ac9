//! The file cache of a Cheetah site image (`fs/FORMAT.md`): the part of
//! the HTTP server that decides which file blocks the disk driver DMAs into
//! the server's cache region, where, and when they may be served.
//!
//! The crate is *sans-I/O*: it never touches a queue, a region or a clock.
//! It hands the caller block [`Request`]s (`blk-protocol`) to enqueue, takes
//! the driver's [`Response`]s back, and reads the cache region only through
//! slices the caller passes in. The caller (the `httpd` PD) owns the
//! `blk_data` region and the queues; on the host the same code runs against
//! a simulated disk (`tests/`). No allocation, no `unsafe`, fixed
//! capacities (const generics), bounded work per call.
//!
//! # The region
//!
//! The cache region *is* the block client's `blk_data` region: the device
//! writes file blocks straight into it, the server sends from it, so file
//! data is never copied between disk and wire. Its size comes from the
//! caller ([`Config::region_size`]; the system description sizes it), and
//! it is laid out as
//!
//! ```text
//! 0                       head area: block 0 (superblock) and the index
//!                         blocks, mirrored at their image offsets and
//!                         pinned for good (the parsed `Image` borrows it)
//! arena_start()           the arena: whole 4096-byte blocks holding groups
//! arena_start() + arena   (region_size rounded down to a block)
//! ```
//!
//! Every request the cache makes lies inside the region (the tests check
//! it for every request).
//!
//! # Boot
//!
//! [`Boot`] reads block 0, checks the superblock, reads the index blocks
//! behind it, and [`Boot::finish`] parses the head with
//! [`Image::parse`](fs_format::Image::parse) (index SHA-256 and every
//! record) into a [`Cache`]. A bad superblock or index is
//! [`CacheError::CorruptImage`]: the server must refuse to serve and log
//! the error (its `Display` says what is wrong). The head may take at most
//! half the region ([`CacheError::IndexTooLarge`]).
//!
//! # Groups
//!
//! The unit of loading and replacement is a **group**: a run of disk
//! blocks loaded as one, contiguous in the arena, with one state, one pin
//! count and one reference bit. A file's group is its **span** (see the
//! format: an HTML page and the objects placed after it share one span, any
//! other file's span is its own blocks), so opening a page, or any of the
//! images, stylesheets and scripts it inlines, loads the page and all its
//! objects with one sequential read, and they are kept or evicted together.
//! A span larger than [`Cache::max_group_blocks`] (half the arena) is not
//! loaded whole; its files are then loaded as groups of their own blocks.
//! A file whose own blocks exceed that limit is [`Open::TooLarge`]: it can
//! never be served from this cache (a 64 MiB region serves files up to
//! about 32 MiB).
//!
//! A group is read with as few requests as possible: its blocks are
//! contiguous on disk and in the arena, so it takes
//! `ceil(sectors / max_request_sectors)` requests. At most `INFLIGHT`
//! requests (of all groups) are outstanding; waiting groups send in turn,
//! one request each, so a large file does not hold up a small page.
//! Responses may come in any order: each request id names a slot of the
//! in-flight table plus a generation, so a stale or invented id is
//! recognised and counted, never misattributed.
//!
//! # Verification
//!
//! No byte leaves the cache unverified: the first [`Cache::open`] of a file
//! after its group was loaded runs [`FileVerifier`](fs_format::FileVerifier)
//! (length, SHA-256, every piece sum) over the loaded bytes; the verdict is
//! kept (per file, tagged with the load it belongs to) until the group is
//! evicted. A file that fails is [`Open::Corrupt`] for as long as that load
//! stays in the cache (`detected_now` is set once, for the caller to log
//! the path); a later load verifies afresh. A read the driver answers with
//! an error makes the whole group fail: its arena space is freed at once,
//! the waiting callers get [`Open::IoError`] on their next open, and the
//! open after that tries the disk again.
//!
//! # Replacement: a circular log with second chance
//!
//! The arena is a circular log swept by a *hand*. To place a group of `n`
//! blocks the hand looks at the `n` blocks from its position:
//!
//! - groups there that are loaded, unpinned and not referenced since the
//!   hand last passed are evicted and the group goes there (the hand moves
//!   past it);
//! - a group there that is pinned (a connection is sending from it) or
//!   still loading (the device owns its blocks) cannot move: the hand jumps
//!   past it and tries again;
//! - a group there that was referenced (opened) since the hand last passed
//!   gets a *second chance*: its reference bit is cleared and the hand
//!   jumps past it;
//! - a run that would cross the arena's end starts again at block 0.
//!
//! This is CLOCK (an approximation of least-recently-used) over variable
//! sized groups, and it needs no compaction: the log fills in the order of
//! the sweep, so free space is always swept up. If the hand has gone round
//! three times without finding room (everything pinned or loading), the
//! open returns [`Open::Busy`] and the caller retries later (after a
//! release or a completed load). Group slots (`GROUPS`) are a second
//! resource: when all are in use the hand evicts the next evictable group
//! by the same rules.
//!
//! # Queues
//!
//! [`queues`] moves requests into the driver's request queue and responses
//! out of its response queue (no runtime needed); the caller signals.
//!
//! # Serving other PDs
//!
//! [`serve`] answers the requests of several server PDs from one cache
//! (`lib-cache-protocol`): their pins, quotas, waiting opens and restarts.
//!
//! # Pins
//!
//! [`Open::Ready`] carries a [`Pin`]: while the caller holds it the file's
//! group is never evicted or overwritten, so a connection may send from the
//! returned range for as long as it needs. [`Cache::release`] gives it back;
//! a `Pin` cannot be copied, so it cannot be released twice.
#![no_std]
#![forbid(unsafe_code)]

mod boot;
mod cache;
pub mod disk;
pub mod queues;
pub mod serve;

pub use boot::{Boot, BootStatus};
pub use cache::{Cache, Completion, File, Open, Pin, Ready, Stats, Ticket};
pub use fs_format::BLOCK_SIZE;
pub use lib_blk_protocol::{DiskInfo, Request, Response, Status, QUEUE_CAPACITY, SECTOR_SIZE};

use core::fmt;
use fs_format::FormatError;

/// Groups a site's cache tracks at once, as the PDs size it.
pub const CACHE_GROUPS: usize = 1024;
/// Block requests outstanding at once: the block queue's capacity (the
/// cache is the queue's only user, so an enqueue always has room).
pub const CACHE_INFLIGHT: usize = QUEUE_CAPACITY;
/// Most files an image may have.
pub const CACHE_FILES: usize = 16384;
/// A site's cache as the PDs size it (about 190 KiB: the PD that holds it
/// sizes its stack for it).
pub type SiteCache<'h> = Cache<'h, CACHE_GROUPS, CACHE_INFLIGHT, CACHE_FILES>;

/// Sectors in one 4096-byte block.
pub const SECTORS_PER_BLOCK: u64 = (BLOCK_SIZE / SECTOR_SIZE) as u64;

/// What the cache needs to know from the caller at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bytes of the cache region (the client's `blk_data`, as the system
    /// description sizes it); rounded down to whole blocks.
    pub region_size: usize,
    /// The disk, as the driver published it (`blk_info`).
    pub disk: DiskInfo,
}

/// Why the cache cannot serve at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// The region holds fewer than `needed` bytes.
    RegionTooSmall { region_size: usize, needed: usize },
    /// The driver published a largest request of zero sectors.
    NoRequestSize,
    /// A read of the image head failed with this status code.
    Io { status: u32 },
    /// The superblock or the index is invalid: the image must not be served.
    CorruptImage(FormatError),
    /// The superblock describes more blocks than the disk has.
    ImageLargerThanDisk { image_blocks: u32, disk_sectors: u64 },
    /// The superblock and index take more than half the region.
    IndexTooLarge { head_bytes: u64, region_size: usize },
    /// More files than the cache's per-file table holds.
    TooManyFiles { files: u32, capacity: usize },
    /// [`Boot::finish`] was called before the head was read.
    BootIncomplete,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::RegionTooSmall { region_size, needed } => {
                write!(f, "cache region of {region_size} bytes is too small ({needed} needed)")
            }
            CacheError::NoRequestSize => f.write_str("the disk driver allows requests of 0 sectors"),
            CacheError::Io { status } => write!(f, "reading the image head failed (block status {status})"),
            CacheError::CorruptImage(e) => write!(f, "corrupt site image, refusing to serve: {e}"),
            CacheError::ImageLargerThanDisk { image_blocks, disk_sectors } => {
                write!(f, "corrupt site image: {image_blocks} blocks, but the disk has {disk_sectors} sectors")
            }
            CacheError::IndexTooLarge { head_bytes, region_size } => {
                write!(f, "the image's index ({head_bytes} bytes with the superblock) takes more than half the {region_size}-byte cache region")
            }
            CacheError::TooManyFiles { files, capacity } => {
                write!(f, "the image has {files} files, the cache holds state for {capacity}")
            }
            CacheError::BootIncomplete => f.write_str("the image head has not been read yet"),
        }
    }
}
