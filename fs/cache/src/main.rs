//! file-cache: the file cache PD (issue 13). It alone is the disk
//! driver's client: it boots the site image (superblock and index), loads
//! files into the cache region by DMA, verifies each before it is served,
//! and answers the opens and releases of the server PDs (httpd, ftpd)
//! under their quotas. `lib-cache-protocol`'s crate docs are the contract
//! with the servers; the logic is `fs-cache-core` (`disk::DiskCache` over
//! the block queues, `serve::Servers` for the servers); this is the glue.
//!
//! Description:
//!
//! - the block driver's client regions (`lib/blk-protocol`): `blk_request`,
//!   `blk_response` (rw) and `blk_info` (r), with `setvar_vaddr` of the same
//!   names, and the channel named `blk` to the driver;
//! - the cache region, mapped read-only with `setvar_vaddr="cache_data"`
//!   and `setvar_size="cache_data_size"`: the driver's client data region
//!   (the device writes the blocks into it by DMA) and the servers'
//!   read-only view of the files; this PD only reads it (the head, and
//!   each loaded file to verify it);
//! - per server `i` (0 or 1): its request and response queues
//!   (`cache_request_<i>`, `cache_response_<i>`, rw), its `Info` page
//!   (`cache_info_<i>`, rw here, read-only in the server), its quota in
//!   blocks (`<setvar symbol="cache_quota_blocks_<i>" value="N" />`) and
//!   the channel named `server_<i>` to it. Server 0 is required; server 1
//!   is optional, all or nothing.
//!
//! It calls no one: its priority must be above the servers' (their
//! notifications are answered at once) and below the block driver's.
//!
//! Its state (the cache, ~190 KiB, and a pin table per server) is built
//! on the stack: the description gives it a 1 MiB stack.
#![no_std]
#![no_main]

use fs_cache_core::disk::{BlockClient, BlockEvent, CacheRegion, DiskCache};
use fs_cache_core::serve::Servers;
use fs_cache_core::{Completion, BLOCK_SIZE, CACHE_FILES, CACHE_GROUPS, CACHE_INFLIGHT};
use lib_cache_protocol::region::MappedRegion;
use lib_cache_protocol::{Counters, Info, RequestConsumer, Response, ResponseProducer, QUEUE_CAPACITY};
use pds_runtime::{log, setvar, ChannelSet, Handler, NamedChannel, Var};

setvar!(blk_request, rw);
setvar!(blk_response, rw);
setvar!(blk_info, r);
setvar!(cache_data, r);
setvar!(cache_data_size, size);
setvar!(cache_request_0, rw);
setvar!(cache_response_0, rw);
setvar!(cache_info_0, rw);
setvar!(cache_quota_blocks_0, number);
setvar!(cache_request_1);
setvar!(cache_response_1);
setvar!(cache_info_1);
setvar!(cache_quota_blocks_1);

// The block driver, by the name of this PD's channel end in the description.
pds_runtime::channel!(BLK = "blk");
// The servers.
pds_runtime::channel!(SERVER_0 = "server_0");
pds_runtime::channel!(SERVER_1 = "server_1", optional);

/// The most servers one cache serves.
const SERVERS: usize = 2;
/// Opens that may wait in the cache: every server's whole queue.
const WAITS: usize = SERVERS * QUEUE_CAPACITY;

/// Server `i`'s variables: request queue, response queue, info page,
/// quota; and its channel.
static SERVER_VARS: [[&Var; 4]; SERVERS] = [
    [&cache_request_0, &cache_response_0, &cache_info_0, &cache_quota_blocks_0],
    [&cache_request_1, &cache_response_1, &cache_info_1, &cache_quota_blocks_1],
];
static SERVER_CHANNELS: [&NamedChannel; SERVERS] = [&SERVER_0, &SERVER_1];

/// One server's end of the protocol, as the cache holds it.
struct Server {
    requests: RequestConsumer<'static>,
    responses: ResponseProducer<'static>,
    info: &'static Info,
    quota_blocks: u64,
    /// Responses enqueued since the server was last signalled.
    answered: bool,
    /// Responses that found its queue full or corrupt (the room rule
    /// makes a full one a bug): counted and logged, never blocking.
    lost: u64,
}

struct FileCache {
    disk: DiskCache<'static, MappedRegion, CACHE_GROUPS, CACHE_INFLIGHT, CACHE_FILES>,
    blk: BlockClient<'static>,
    servers: Servers<SERVERS, WAITS>,
    ends: [Option<Server>; SERVERS],
    /// Loads that ended during one run of the block traffic, answered
    /// after it (kept here, not built on every wake-up).
    completed: [Completion; CACHE_GROUPS],
}

impl FileCache {
    /// Moves the block traffic and the servers' requests until neither
    /// has anything left, then sleeps with every queue's signal requested.
    fn run(&mut self) {
        loop {
            let mut completed = 0;
            let mut booted = false;
            let mut refused = false;
            let event = |e| match e {
                BlockEvent::Booted => booted = true,
                BlockEvent::Refused(e) => {
                    log!("{e}");
                    log!("not serving: the servers are told the image is refused");
                    refused = true;
                }
                BlockEvent::DriverRestarted { lost } => {
                    log!("the block driver restarted: {lost} requests in flight lost (their loads failed); syncing")
                }
                BlockEvent::Broken(e) => log!("error: the block response queue is corrupt ({e}); no more disk reads"),
            };
            // Only loads that ended wake waiting opens (`Servers::completed`).
            // No load starts during a run (opens start them, after it), so
            // at most one ends per group: the list holds them all.
            let list = &mut self.completed;
            let on = |c| {
                if let (Completion::Loaded(_) | Completion::Failed(_), Some(slot)) = (c, list.get_mut(completed)) {
                    *slot = c;
                    completed += 1;
                }
            };
            self.disk.run(&mut self.blk, on, event, || BLK.get().notify());
            if booted {
                self.booted();
            }
            if refused {
                for (i, end) in self.ends.iter().enumerate() {
                    if let Some(end) = end {
                        end.info.refuse();
                        SERVER_CHANNELS[i].get().notify();
                    }
                }
                // Up as it can be: the monitor may count it back.
                pds_runtime::serving();
            }
            self.answer(completed);
            let taken = self.take_requests();
            self.log_corrupt();
            for (i, end) in self.ends.iter_mut().enumerate() {
                let Some(end) = end else { continue };
                if core::mem::take(&mut end.answered) && end.responses.should_signal() {
                    SERVER_CHANNELS[i].get().notify();
                }
            }
            // Opens (taken now, or retried as loads completed) may have
            // started loads: their block requests go to the driver now.
            if taken > 0 || completed > 0 {
                continue;
            }
            // Before the boot, requests wait (the driver's answers wake
            // this PD); after it, sleep only with every queue that may be
            // read empty and its signal requested.
            if self.disk.cache().is_none() || self.quiet() {
                self.publish_counters();
                return;
            }
        }
    }

    /// Whether every request queue this PD may read now is empty with a
    /// signal requested. A server whose response queue lacks room for
    /// more answers is not read (nor waited for): it notifies this PD when
    /// it has read its answers with requests still queued (crate docs of
    /// `lib-cache-protocol`, "Queues and signalling"). A corrupt queue is
    /// never read again.
    fn quiet(&mut self) -> bool {
        let servers = &self.servers;
        self.ends.iter().enumerate().all(|(i, end)| {
            let Some(end) = end else { return true };
            let room = end.responses.room().unwrap_or(0);
            if !servers.may_take(i, room) {
                return true;
            }
            end.requests.request_signal_if_empty().unwrap_or(true)
        })
    }

    /// Publishes the counters in every server's `Info`, for its log.
    fn publish_counters(&self) {
        let Some(cache) = self.disk.cache() else { return };
        let s = cache.stats();
        for (i, end) in self.ends.iter().enumerate() {
            let Some(end) = end else { continue };
            let (pins, blocks) = self.servers.held(i);
            end.info.publish_counters(&Counters {
                hits: s.hits,
                loads: s.loads,
                loaded: s.loaded,
                failed_loads: s.failed_loads,
                evictions: s.evictions,
                busy: s.busy,
                verified: s.verified,
                corrupt: s.corrupt,
                pins: pins as u64,
                blocks,
                bad_releases: self.servers.bad_releases(i),
            });
        }
    }

    /// Publishes the cache to every server: the head is verified.
    fn booted(&mut self) {
        let Some(cache) = self.disk.cache() else { return };
        // This life of the cache: 1 at boot, one more at each restart.
        let epoch = pds_runtime::restarts() as u32 + 1;
        let sb = cache.image().superblock();
        log!(
            "site image: {} files in {} blocks; cache region {} KiB (index {} KiB, arena {} KiB, groups up to {} blocks); life {}",
            cache.image().len(),
            sb.block_count,
            (cache.arena_start() + cache.arena_len()) / 1024,
            cache.arena_start() / 1024,
            cache.arena_len() / 1024,
            cache.max_group_blocks(),
            epoch
        );
        let head_len = cache.arena_start() as u32;
        for (i, end) in self.ends.iter().enumerate() {
            if let Some(end) = end {
                end.info.publish(epoch, head_len, end.quota_blocks as u32);
                let kib = end.quota_blocks * BLOCK_SIZE as u64 / 1024;
                log!("server {i}: quota {} blocks ({kib} KiB)", end.quota_blocks);
                SERVER_CHANNELS[i].get().notify();
            }
        }
        pds_runtime::serving();
    }

    /// Answers the opens that waited for the first `count` loads of
    /// `self.completed`.
    fn answer(&mut self, count: usize) {
        let Some((cache, region)) = self.disk.parts() else { return };
        let arena = region.bytes().get(cache.arena_start()..).unwrap_or(&[]);
        let ends = &mut self.ends;
        for &c in &self.completed[..count] {
            self.servers.completed(cache, arena, c, &mut |i, r| enqueue(ends, i, r));
        }
    }

    /// Takes each server's requests while `Servers::may_take` allows (room
    /// for the answer beside those owed, or only releases due: its module
    /// docs, "Taking requests"); how many.
    fn take_requests(&mut self) -> usize {
        let mut taken = 0;
        let Some((cache, region)) = self.disk.parts() else { return 0 };
        let arena = region.bytes().get(cache.arena_start()..).unwrap_or(&[]);
        for i in 0..SERVERS {
            while let Some(end) = self.ends[i].as_mut() {
                let room = end.responses.room().unwrap_or(0);
                if !self.servers.may_take(i, room) {
                    break;
                }
                let request = match end.requests.dequeue() {
                    Ok(Some(request)) => request,
                    Ok(None) => break,
                    Err(e) => {
                        log!("server {i}'s request queue is corrupt ({e}): not read again");
                        self.ends[i] = None;
                        break;
                    }
                };
                taken += 1;
                let hello = request.op() == Some(lib_cache_protocol::Op::Hello);
                let ends = &mut self.ends;
                self.servers.request(cache, arena, i, request, &mut |s, r| enqueue(ends, s, r));
                if hello {
                    log!("server {i} started over (life {}): its pins and waiting opens are forgotten", request.arg);
                }
            }
        }
        taken
    }

    /// Logs a file an open found corrupt (once per load).
    fn log_corrupt(&mut self) {
        while let Some(file) = self.servers.take_newly_corrupt() {
            let path = self.disk.cache().and_then(|c| c.file(file)).map_or("?", |f| f.record().path);
            log!("corrupt file {path}: its data does not match the image's record (SHA-256, piece sums); never served");
        }
    }
}

/// Enqueues response `r` for server `i`.
fn enqueue(ends: &mut [Option<Server>; SERVERS], i: usize, r: Response) {
    let Some(end) = ends.get_mut(i).and_then(Option::as_mut) else { return };
    match end.responses.enqueue(r) {
        Ok(()) => end.answered = true,
        Err(e) => {
            end.lost += 1;
            // The 1st, 2nd, 4th, ... so that a broken queue cannot flood.
            if end.lost.is_power_of_two() {
                log!("error: server {i}'s response queue took no answer ({e}): {} lost so far", end.lost);
            }
        }
    }
}

/// Server `i`'s end, if the description gives it (all of it, or none).
fn server_end(i: usize) -> Option<Server> {
    let [request, response, info, quota] = SERVER_VARS[i].map(Var::get);
    let (request, response, info) = match (request, response, info) {
        (Some(q), Some(r), Some(info)) => (q, r, info),
        (None, None, None) if quota.is_none() => return None,
        _ => panic!(
            "server {i}: the description must map all of cache_request_{i}, cache_response_{i} and cache_info_{i}, or none"
        ),
    };
    let Some(quota_blocks) = quota else {
        panic!(
            "server {i} has no quota: add <setvar symbol=\"cache_quota_blocks_{i}\" value=\"BLOCKS\" /> to file-cache"
        );
    };
    // SAFETY: the description maps each of these regions, a page, read-
    // write at these addresses for the PD's life (the builder checks the
    // mappings' rights against `setvar!`'s `rw` for server 0; server 1's
    // regions are mapped by the same lines); only these handles use them.
    let (requests, responses, info) = unsafe {
        (
            RequestConsumer::new(request as *mut u8, ()),
            ResponseProducer::new(response as *mut u8),
            Info::at(info as *mut u8),
        )
    };
    // Not ready until this life's head is verified.
    info.withdraw();
    Some(Server { requests, responses, info, quota_blocks, answered: false, lost: 0 })
}

impl Handler for FileCache {
    /// The cache serves once it has read and verified the image head.
    const SERVING_AFTER_INIT: bool = false;

    fn init() -> Self {
        let vars = (blk_request.get(), blk_response.get(), blk_info.get(), cache_data.get(), cache_data_size.get());
        let (Some(request), Some(response), Some(info), Some(base), Some(size)) = vars else {
            panic!("the description must map blk_request, blk_response, blk_info and cache_data (setvar_vaddr, and setvar_size for cache_data)");
        };
        // SAFETY: the block queue regions are pages mapped read-write for
        // the PD's life and used only through these handles; `blk_info` is
        // a page mapped readable, only read here (atomically).
        let blk = unsafe {
            BlockClient::new(
                lib_blk_protocol::RequestProducer::new(request as *mut u8),
                lib_blk_protocol::ResponseConsumer::new(response as *mut u8, ()),
                lib_blk_protocol::Info::at(info as *mut u8),
                pds_runtime::restarts() as u32,
            )
        };
        let ends: [Option<Server>; SERVERS] = core::array::from_fn(server_end);
        if ends[0].is_none() {
            panic!("the description gives server 0 no queues (cache_request_0, cache_response_0, cache_info_0)");
        }
        let quotas = core::array::from_fn(|i| ends[i].as_ref().map_or(0, |e| e.quota_blocks));
        log!("cache region {} KiB; {} server(s); reading the site image", size / 1024, ends.iter().flatten().count());
        let mut cache = FileCache {
            // SAFETY: the description maps `cache_data`, `size` bytes,
            // readable at `base` for the PD's life; the cache reads only
            // its head and loaded groups, which the device does not write.
            disk: DiskCache::new(unsafe { MappedRegion::new(base as usize, size as usize) }),
            blk,
            servers: Servers::new(quotas),
            ends,
            completed: [Completion::Unexpected; CACHE_GROUPS],
        };
        cache.run();
        cache
    }

    fn notified(&mut self, _channels: ChannelSet) {
        // The driver's answers, a server's requests: all of it is one more
        // run.
        self.run();
    }
}

pds_runtime::protection_domain!(FileCache);
