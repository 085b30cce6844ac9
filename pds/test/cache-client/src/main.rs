//! cache-client: a server PD's side of the file cache PD
//! (`lib-cache-protocol`), spoken directly, in phases, each logged for the
//! integration test to check:
//!
//! 1. **hello**: starts over with its life and ignores every answer until
//!    the cache's `Hello` with it; then waits until the cache publishes
//!    its `Info` (the head verified) and parses the index from the
//!    read-only cache region;
//! 2. **files**: opens every file of the index at once (answers come in any
//!    order), hashes each file's bytes where the cache says they are
//!    (SHA-256, logged with the path for the host to compare with the
//!    source) and releases each pin;
//! 3. **quota**: pins the largest file, opens it again (a second pin of
//!    the same blocks, which the description's quota does not allow:
//!    `OverQuota`), releases the first and opens it again (`Ready`);
//! 4. **hostile**: an unknown operation (`BadRequest`), a stale release,
//!    a forged one, an open of a file that does not exist (`NoSuchFile`),
//!    then an ordinary open, which must still succeed.
#![no_std]
#![no_main]

use fs_format::Image;
use lib_cache_protocol::region::{CacheRegion, MappedRegion};
use lib_cache_protocol::{Info, Kind, Request, RequestProducer, Response, ResponseConsumer, QUEUE_CAPACITY};
use pds_runtime::{log, ChannelSet, Handler};
use sha2::{Digest, Sha256};

pds_runtime::setvar!(cache_request, rw);
pds_runtime::setvar!(cache_response, rw);
pds_runtime::setvar!(cache_info, r);
pds_runtime::setvar!(cache_data, r);
pds_runtime::setvar!(cache_data_size, size);

// The file cache PD (`setvar_id="cache"`).
pds_runtime::channel!(CACHE = "cache");

/// Tags of the phases' opens (files use their index position).
const QUOTA_FIRST: u32 = 0x1000;
const QUOTA_SECOND: u32 = 0x1001;
const QUOTA_AGAIN: u32 = 0x1002;
const BAD_OP: u32 = 0x2000;
const NO_FILE: u32 = 0x2001;
const AFTER: u32 = 0x2002;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Hello,
    WaitInfo,
    Files { left: u32 },
    Quota,
    Hostile { left: u32 },
    Done,
}

struct Client {
    requests: RequestProducer<'static>,
    responses: ResponseConsumer<'static>,
    info: &'static Info,
    data: MappedRegion,
    life: u32,
    phase: Phase,
    image: Option<Image<'static>>,
    quota_blocks: u32,
    /// The largest file, and the pin the quota phase holds on it.
    largest: u32,
    held: Option<u32>,
    second: Option<Kind>,
    /// The hostile phase's answers: unknown op, missing file, the last open.
    hostile: [Option<Kind>; 3],
}

/// A kind's name for the log.
fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Ready => "Ready",
        Kind::Corrupt => "Corrupt",
        Kind::IoError => "IoError",
        Kind::TooLarge => "TooLarge",
        Kind::NoSuchFile => "NoSuchFile",
        Kind::OverQuota => "OverQuota",
        Kind::BadRequest => "BadRequest",
        Kind::Hello => "Hello",
    }
}

/// Lower-case hex of a SHA-256.
struct Hex([u8; 32]);

impl core::fmt::Display for Hex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Client {
    fn send(&mut self, request: Request) {
        if self.requests.enqueue(request).is_err() {
            log!("error: the request queue is full ({request:?} not sent)");
        }
    }

    /// Takes every answer, moves the phases on, and signals the cache if
    /// something was sent (or is still queued: the cache may have stopped
    /// reading for lack of room for answers).
    fn run(&mut self) {
        loop {
            if self.phase == Phase::WaitInfo {
                self.start_files();
            }
            loop {
                match self.responses.dequeue() {
                    Ok(Some(r)) => self.answer(r),
                    Ok(None) => break,
                    Err(e) => {
                        log!("error: the response queue is corrupt ({e})");
                        return;
                    }
                }
            }
            let queued = !self.requests.is_empty().unwrap_or(true);
            if self.requests.should_signal() || queued {
                CACHE.get().notify();
            }
            match self.responses.request_signal_if_empty() {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => {
                    log!("error: the response queue is corrupt ({e})");
                    return;
                }
            }
        }
    }

    /// Once the cache is ready: parses the index and opens every file.
    fn start_files(&mut self) {
        let Some(info) = self.info.read() else { return };
        let Some(head) = self.data.head(info.head_len as usize) else {
            log!("error: the head ({} bytes) is longer than the region", info.head_len);
            self.phase = Phase::Done;
            return;
        };
        let image = match Image::parse(head) {
            Ok(image) => image,
            Err(e) => {
                log!("error: the head does not parse: {e}");
                self.phase = Phase::Done;
                return;
            }
        };
        let files = image.len().min(QUEUE_CAPACITY as u32);
        log!(
            "ready: the cache's life {}, head {} bytes, quota {} blocks, {} files",
            info.epoch,
            info.head_len,
            info.quota_blocks,
            image.len()
        );
        self.quota_blocks = info.quota_blocks;
        self.largest = (0..image.len()).max_by_key(|&i| image.record(i).map_or(0, |r| r.size)).unwrap_or(0);
        self.image = Some(image);
        for i in 0..files {
            self.send(Request::open(i, i));
        }
        self.phase = Phase::Files { left: files };
    }

    /// The bytes and path of file `i` at `offset` in the region.
    fn file(&self, i: u32, offset: u64) -> Option<(&'static str, &[u8])> {
        let record = self.image.as_ref()?.record(i)?;
        let start = usize::try_from(offset).ok()?;
        Some((record.path, self.data.bytes().get(start..start.checked_add(record.size as usize)?)?))
    }

    fn answer(&mut self, r: Response) {
        let kind = r.kind();
        match self.phase {
            Phase::Hello => {
                if kind == Kind::Hello && r.tag == self.life {
                    log!("hello: answered for life {}", self.life);
                    self.phase = Phase::WaitInfo;
                }
                // Anything else is of an earlier life: ignored.
            }
            Phase::Files { left } if r.tag < QUOTA_FIRST => {
                let Some(path) = self.image.as_ref().and_then(|im| im.record(r.tag)).map(|rec| rec.path) else {
                    log!("error: an answer for no file: {r:?}");
                    return;
                };
                if kind == Kind::Ready {
                    match self.file(r.tag, r.offset) {
                        Some((_, bytes)) => {
                            log!("file {path} {} sha256 {}", bytes.len(), Hex(Sha256::digest(bytes).into()))
                        }
                        None => log!("error: file {path} at {:#x} lies outside the region", r.offset),
                    }
                    self.send(Request::release(r.pin));
                } else {
                    log!("file {path}: {}", name(kind));
                }
                let left = left - 1;
                self.phase = Phase::Files { left };
                if left == 0 {
                    log!("files: all answered");
                    self.phase = Phase::Quota;
                    self.send(Request::open(self.largest, QUOTA_FIRST));
                }
            }
            Phase::Quota => match (r.tag, kind) {
                (QUOTA_FIRST, Kind::Ready) => {
                    self.held = Some(r.pin);
                    self.send(Request::open(self.largest, QUOTA_SECOND));
                }
                (QUOTA_SECOND, k) => {
                    self.second = Some(k);
                    if k == Kind::Ready {
                        self.send(Request::release(r.pin));
                    }
                    if let Some(pin) = self.held {
                        self.send(Request::release(pin));
                    }
                    self.send(Request::open(self.largest, QUOTA_AGAIN));
                }
                (QUOTA_AGAIN, k) => {
                    let path = self.image.as_ref().and_then(|im| im.record(self.largest)).map_or("?", |rec| rec.path);
                    log!(
                        "quota: {path} pinned; a second pin of it {}; after the first's release, {} (quota {} blocks)",
                        self.second.map_or("?", name),
                        name(k),
                        self.quota_blocks
                    );
                    if k == Kind::Ready {
                        self.send(Request::release(r.pin));
                    }
                    // Hostile requests: an unknown operation, a stale and a
                    // forged release (no answers), a missing file, then an
                    // ordinary open.
                    self.send(Request { op: 99, arg: 0, tag: BAD_OP });
                    if let Some(pin) = self.held.take() {
                        self.send(Request::release(pin));
                    }
                    self.send(Request::release(0xdead_beef));
                    self.send(Request::open(u32::MAX, NO_FILE));
                    self.send(Request::open(0, AFTER));
                    self.phase = Phase::Hostile { left: 3 };
                }
                _ => log!("unexpected in the quota phase: {r:?}"),
            },
            Phase::Hostile { left } => {
                let slot = match r.tag {
                    BAD_OP => 0,
                    NO_FILE => 1,
                    AFTER => 2,
                    _ => {
                        log!("unexpected in the hostile phase: {r:?}");
                        return;
                    }
                };
                self.hostile[slot] = Some(kind);
                if r.tag == AFTER && kind == Kind::Ready {
                    self.send(Request::release(r.pin));
                }
                self.phase = Phase::Hostile { left: left - 1 };
                if left == 1 {
                    let [bad, missing, after] = self.hostile.map(|k| k.map_or("?", name));
                    log!(
                        "hostile: unknown operation {bad}; file {} {missing}; stale and forged releases ignored; then file 0 {after}",
                        u32::MAX
                    );
                    log!("done");
                    self.phase = Phase::Done;
                }
            }
            _ => log!("unexpected: {r:?} in {:?}", self.phase),
        }
    }
}

impl Handler for Client {
    fn init() -> Self {
        let vars =
            (cache_request.get(), cache_response.get(), cache_info.get(), cache_data.get(), cache_data_size.get());
        let (Some(request), Some(response), Some(info), Some(base), Some(size)) = vars else {
            panic!("cache_request, cache_response, cache_info and cache_data must be mapped");
        };
        // SAFETY: the queue regions are pages mapped read-write for the PD's
        // life and used only through these handles; `cache_info` is a page
        // mapped readable, only read here (atomically); `cache_data` is
        // `size` bytes mapped readable for the PD's life, which the cache
        // does not change while a pin on the bytes read is held.
        let (requests, responses, info, data) = unsafe {
            (
                RequestProducer::new(request as *mut u8),
                ResponseConsumer::new(response as *mut u8, ()),
                Info::at(info as *mut u8),
                MappedRegion::new(base as usize, size as usize),
            )
        };
        let life = pds_runtime::restarts() as u32;
        let mut client = Client {
            requests,
            responses,
            info,
            data,
            life,
            phase: Phase::Hello,
            image: None,
            quota_blocks: 0,
            largest: 0,
            held: None,
            second: None,
            hostile: [None; 3],
        };
        client.send(Request::hello(life));
        client.run();
        client
    }

    fn notified(&mut self, _channels: ChannelSet) {
        self.run();
    }
}

pds_runtime::protection_domain!(Client);
