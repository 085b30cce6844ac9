//! Both ends of the file cache PD's protocol (`lib-cache-protocol`, whose
//! crate docs are the contract) under arbitrary traffic from the other
//! end. The first byte chooses the end; the rest are steps.
//!
//! **The cache's end** (`fs_cache_core::serve::Servers`, two servers with
//! small quotas from the input) over a real `Cache` booted from a small
//! site image (built once per process with `fs-builder`: a page with its
//! objects, files alone, one too large for a small arena, an empty one)
//! through a simulated disk. Steps: raw `Request`s of either server (any
//! op, argument and tag: opens of any file number, releases of its own
//! pin numbers, of the other server's, of invented ones, hellos), taken
//! only while `Servers::can_take` says so, as the PD does; the disk
//! answering an outstanding read (in any order) with the image's bytes,
//! an error status or corrupted bytes; responses with invented ids; the
//! driver restarting (`Cache::fail_in_flight`). Checked after every step:
//!
//! - every answer carries the tag of an open of that server not answered
//!   yet (so no open is answered twice, none of a dead life after a
//!   hello), except the hello's own answer and `BadRequest` for an
//!   unknown op, both at once with the request's tag;
//! - a `Ready` is a pin number the server does not hold yet, at an offset
//!   inside the arena where the file's bytes are the image's (and stay so
//!   while the pin is held: no read the cache asks of the disk overlaps a
//!   held pin, the head, another outstanding read, or leaves the region
//!   or the disk); `NoSuchFile` exactly for numbers past the index;
//!   `Corrupt` only if the disk corrupted something, `IoError` only if a
//!   read failed;
//! - no server holds more blocks than its quota, and `Servers::held` and
//!   `waiting` are the model's (pins given and not released, opens not
//!   answered);
//! - a release changes only its own server's pins: one of its numbers
//!   frees exactly that pin, anything else (the other server's numbers
//!   included) is counted as a bad release and frees nothing;
//! - at the end, with every pin released and every read answered, every
//!   open has had its one answer and the cache is idle.
//!
//! **The server's end** (`lib_cache_protocol::client::Client`, 8 entries)
//! over real queues and a real `Info`. Steps: the owner's `open`s (small
//! file numbers, so they collide), its retries when `may_retry` says so,
//! `abandon`s, `release`s (stale handles too), `poll`s and signalling
//! calls; arbitrary `Response`s enqueued by the harness (any kind code,
//! tag, pin and offset; tags mostly those of opens the client sent, the
//! hello's mostly with the life); `Info` withdrawn, refused, republished
//! and moved to a new epoch; the harness taking the client's requests (or
//! leaving them queued, so the queue fills). Checked:
//!
//! - no panic; at most `QUEUE_CAPACITY` opens outstanding (the client's
//!   count, and the model's: opens taken since the last hello and not
//!   answered);
//! - `Opened::Ready` for file `f` at `offset` only if, in the current
//!   epoch, the harness sent a `Ready` with that offset answering an open
//!   request of `f` (checked once the harness has taken the requests sent
//!   before it), and a held handle's offset is still its `Ready`'s;
//! - once a `poll` has seen a new epoch, every handle of before is stale
//!   (`holds` false); kept pins never exceed `Config::keep`; every
//!   release request names a pin the harness gave.

#![no_main]

use fs_cache_core::serve::Servers;
use fs_cache_core::{Boot, BootStatus, Cache, Completion, Config, DiskInfo, Status, BLOCK_SIZE, SECTOR_SIZE};
use fuzz::Input;
use lib_blk_protocol::{Request as BlkRequest, Response as BlkResponse};
use lib_cache_protocol::client::{self, Client, Handle, Opened, WaitToken};
use lib_cache_protocol::{
    Info, Kind, Op, Request, RequestConsumer, RequestProducer, Response, ResponseConsumer, ResponseProducer,
    QUEUE_CAPACITY, QUEUE_REGION_SIZE,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Most steps of one input.
const MAX_STEPS: usize = 600;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        cache_end(&mut input);
    } else {
        server_end(&mut input);
    }
});

// ------------------------------------------------------------ the site

/// The site image, built once per process.
fn image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fuzz-cache-protocol-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        let bytes = |seed: u32, len: usize| -> Vec<u8> {
            (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
        };
        // Groups of 1 to 5 blocks with few bytes in them: verifying a
        // loaded file (its piece sums, byte by byte) is most of the time
        // of an input. `big.bin` (5 blocks) is too large for arenas under
        // 10 blocks.
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("index.html", b"<!doctype html><img src=\"a.png\"><img src=\"b.png\">\n".repeat(20)),
            ("a.png", bytes(1, 900)),
            ("b.png", bytes(2, 4_200)),
            ("c.txt", bytes(3, 100)),
            ("d.bin", bytes(4, 4_200)),
            ("e.bin", bytes(5, 8_300)),
            ("big.bin", bytes(6, 16_500)),
            ("empty.txt", Vec::new()),
        ];
        for (name, data) in &files {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
        }
        let out = dir.join("site.img");
        let options = fs_builder::Options { last_modified: Some(1_700_000_000), ..fs_builder::Options::default() };
        fs_builder::build(&root, &out, &options).unwrap();
        let image = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        image
    })
}

// ------------------------------------------------------ the cache's end

type FuzzCache<'h> = Cache<'h, 8, 8, 64>;

/// An open of a server not answered yet: (tag, file).
type Waiting = Vec<(u32, u32)>;

/// A pin a server holds: (number, region offset, length).
type Held = (u32, usize, usize);

struct Model {
    quotas: [u64; 2],
    waiting: [Waiting; 2],
    pins: [Vec<Held>; 2],
    /// Reads the disk has not answered.
    disk: Vec<BlkRequest>,
    corrupted: bool,
    failed: bool,
    head: usize,
    region_len: usize,
}

fn cache_end(input: &mut Input<'_>) {
    let image = image();
    let arena_blocks = 6 + input.below(11);
    let max_request_sectors = 1 + input.below(16) as u32;
    let quota = |b: u8| if b >= 250 { u64::MAX } else { u64::from(b % 24) };
    let quotas = [quota(input.u8()), quota(input.u8())];
    let disk = DiskInfo { capacity: (image.len() / SECTOR_SIZE) as u64, read_only: true, max_request_sectors };
    let sb = fs_format::Superblock::parse(&image[..BLOCK_SIZE]).unwrap();
    let head = sb.data_first_block as usize * BLOCK_SIZE;
    let mut region = vec![0u8; head + arena_blocks * BLOCK_SIZE];
    let boot = boot(&mut region, disk, image);
    let (head_bytes, arena) = region.split_at_mut(head);
    let mut cache: FuzzCache<'_> = boot.finish(head_bytes).unwrap();
    assert_eq!(cache.arena_start(), head);
    let mut servers: Box<Servers<2, 128>> = Box::new(Servers::new(quotas));
    let mut m = Model {
        quotas,
        waiting: [Vec::new(), Vec::new()],
        pins: [Vec::new(), Vec::new()],
        disk: Vec::new(),
        corrupted: false,
        failed: false,
        head,
        region_len: head + arena_blocks * BLOCK_SIZE,
    };
    let files = cache.image().len();
    let mut answers: Vec<(usize, Response)> = Vec::new();
    let mut steps = 0;
    while !input.is_empty() && steps < MAX_STEPS {
        steps += 1;
        match input.u8() % 8 {
            0..=3 => {
                let s = usize::from(input.u8() & 1);
                if !servers.can_take(s) {
                    continue;
                }
                let request = server_request(input, &m, s, files);
                // Tags of a server's waiting opens are its to keep apart
                // (the client's are unique): the answers are matched by tag.
                if request.op() == Some(Op::Open) && m.waiting[s].iter().any(|w| w.0 == request.tag) {
                    continue;
                }
                request_step(&mut servers, &mut cache, arena, &mut m, s, request, &mut answers);
            }
            4 | 5 => {
                if m.disk.is_empty() {
                    continue;
                }
                let i = input.below(m.disk.len());
                let how = input.u8();
                let r = m.disk.swap_remove(i);
                let status = match how % 8 {
                    5 => {
                        m.failed = true;
                        match input.u32() {
                            0 => Status::IoError as u32,
                            s => s,
                        }
                    }
                    6 => {
                        read(arena, head, image, &r);
                        let start = r.offset as usize - head;
                        let at = start + input.below(r.count as usize * SECTOR_SIZE);
                        arena[at] ^= 1 << (input.u8() % 8);
                        m.corrupted = true;
                        Status::Ok as u32
                    }
                    _ => {
                        read(arena, head, image, &r);
                        Status::Ok as u32
                    }
                };
                let completion = cache.complete(BlkResponse { id: r.id, status });
                assert_ne!(completion, Completion::Unexpected, "the cache's own read {r:?}");
                servers.completed(&mut cache, arena, completion, &mut |s, a| answers.push((s, a)));
            }
            6 => {
                let id = input.u32();
                if m.disk.iter().any(|r| r.id == id) {
                    continue;
                }
                let completion = cache.complete(BlkResponse { id, status: input.u32() });
                assert_eq!(completion, Completion::Unexpected, "an invented id {id:#x}");
            }
            _ => {
                if input.u8() % 4 != 0 {
                    continue;
                }
                // The driver restarted: nothing outstanding is answered.
                let mut completions = Vec::new();
                let lost = cache.fail_in_flight(|c| completions.push(c));
                assert_eq!(lost, m.disk.len());
                m.disk.clear();
                m.failed |= lost > 0;
                for c in completions {
                    servers.completed(&mut cache, arena, c, &mut |s, a| answers.push((s, a)));
                }
            }
        }
        pump(&mut cache, &mut m, disk);
        check_answers(&mut m, &cache, arena, image, &mut answers);
        check_servers(&m, &servers);
    }
    // Everything released and every read answered: every open has its answer.
    for _ in 0..1000 {
        for s in 0..2 {
            while let Some(&(number, _, _)) = m.pins[s].first() {
                if !servers.can_take(s) {
                    break;
                }
                request_step(&mut servers, &mut cache, arena, &mut m, s, Request::release(number), &mut answers);
            }
        }
        while let Some(r) = m.disk.pop() {
            read(arena, head, image, &r);
            let completion = cache.complete(BlkResponse { id: r.id, status: Status::Ok as u32 });
            assert_ne!(completion, Completion::Unexpected);
            servers.completed(&mut cache, arena, completion, &mut |s, a| answers.push((s, a)));
            pump(&mut cache, &mut m, disk);
            check_answers(&mut m, &cache, arena, image, &mut answers);
        }
        pump(&mut cache, &mut m, disk);
        check_answers(&mut m, &cache, arena, image, &mut answers);
        check_servers(&m, &servers);
        if m.disk.is_empty() && m.pins.iter().all(|p| p.is_empty()) && m.waiting.iter().all(|w| w.is_empty()) {
            break;
        }
    }
    assert!(m.waiting.iter().all(|w| w.is_empty()), "opens never answered: {:?}", m.waiting);
    assert!(cache.is_idle(), "loads left with nothing outstanding");
}

/// Boots the cache over `region` from the image.
fn boot(region: &mut [u8], disk: DiskInfo, image: &[u8]) -> Boot {
    let mut boot = Boot::new(Config { region_size: region.len(), disk }).unwrap();
    let mut outstanding = Vec::new();
    loop {
        while let Some(r) = boot.next_request() {
            outstanding.push(r);
        }
        let r = outstanding.pop().expect("the boot stalled");
        read(region, 0, image, &r);
        if boot.complete(BlkResponse { id: r.id, status: Status::Ok as u32 }, region).unwrap() == BootStatus::Ready {
            return boot;
        }
    }
}

/// Answers read `r` into `bytes`, whose first byte is region offset `base`.
fn read(bytes: &mut [u8], base: usize, image: &[u8], r: &BlkRequest) {
    let src = r.sector as usize * SECTOR_SIZE;
    let len = r.count as usize * SECTOR_SIZE;
    let at = r.offset as usize - base;
    bytes[at..at + len].copy_from_slice(&image[src..src + len]);
}

/// A request of server `s`: opens of small file numbers mostly, releases
/// of its own numbers, the other's and invented ones, hellos, raw ops.
fn server_request(input: &mut Input<'_>, m: &Model, s: usize, files: u32) -> Request {
    let tag = if input.bool() { u32::from(input.u8() % 16) } else { input.u32() };
    match input.u8() % 8 {
        0..=3 => {
            let file = if input.u8() % 8 != 0 { u32::from(input.u8()) % (files + 2) } else { input.u32() };
            Request::open(file, tag)
        }
        4 | 5 => {
            let other = &m.pins[1 - s];
            let number = match input.u8() % 4 {
                0 | 1 if !m.pins[s].is_empty() => m.pins[s][input.below(m.pins[s].len())].0,
                2 if !other.is_empty() => other[input.below(other.len())].0,
                _ => input.u32(),
            };
            Request::release(number)
        }
        6 => Request::hello(input.u32()),
        _ => Request { op: if input.bool() { u32::from(input.u8() % 4) } else { input.u32() }, arg: input.u32(), tag },
    }
}

fn request_step(
    servers: &mut Servers<2, 128>,
    cache: &mut FuzzCache<'_>,
    arena: &[u8],
    m: &mut Model,
    s: usize,
    request: Request,
    answers: &mut Vec<(usize, Response)>,
) {
    let bad = [servers.bad_releases(0), servers.bad_releases(1)];
    let held_other = servers.held(1 - s);
    let before = answers.len();
    servers.request(cache, arena, s, request, &mut |i, a| answers.push((i, a)));
    match request.op() {
        Some(Op::Open) => m.waiting[s].push((request.tag, request.arg)),
        Some(Op::Release) => {
            let mine = m.pins[s].iter().position(|p| p.0 == request.arg);
            match mine {
                Some(i) => {
                    m.pins[s].swap_remove(i);
                    assert_eq!(servers.bad_releases(s), bad[s], "a release of a pin held");
                }
                None => assert_eq!(servers.bad_releases(s), bad[s] + 1, "a release of a pin not held"),
            }
            assert_eq!(servers.bad_releases(1 - s), bad[1 - s]);
            assert!(servers.held(1 - s).0 >= held_other.0, "a release of server {s} freed the other's pin");
        }
        Some(Op::Hello) => {
            m.waiting[s].clear();
            m.pins[s].clear();
            let i = answers[before..]
                .iter()
                .position(|&(i, a)| i == s && a == Response::other(request.tag, Kind::Hello))
                .expect("a hello is answered at once");
            answers.remove(before + i);
        }
        None => {
            let i = answers[before..]
                .iter()
                .position(|&(i, a)| i == s && a == Response::other(request.tag, Kind::BadRequest))
                .expect("an unknown op is answered BadRequest at once");
            answers.remove(before + i);
        }
    }
}

/// Hands the cache's reads to the disk, checking each.
fn pump(cache: &mut FuzzCache<'_>, m: &mut Model, disk: DiskInfo) {
    while let Some(r) = cache.next_request() {
        assert_eq!(r.op, 0, "the cache only reads");
        assert!(r.count > 0 && r.count <= disk.max_request_sectors, "{r:?}");
        assert!(r.sector + u64::from(r.count) <= disk.capacity, "a read past the disk: {r:?}");
        let (start, end) = (r.offset as usize, r.offset as usize + r.count as usize * SECTOR_SIZE);
        assert!(start >= m.head && end <= m.region_len, "a read outside the arena: {r:?}");
        for p in &m.disk {
            assert_ne!(p.id, r.id, "two outstanding reads with one id");
            let (ps, pe) = (p.offset as usize, p.offset as usize + p.count as usize * SECTOR_SIZE);
            assert!(pe <= start || end <= ps, "overlapping reads {p:?} {r:?}");
        }
        for &(number, offset, len) in m.pins.iter().flatten() {
            assert!(len == 0 || offset + len <= start || end <= offset, "a read over pin {number:#x}: {r:?}");
        }
        m.disk.push(r);
    }
}

/// The image's bytes of file `file` (its record's blocks).
fn file_bytes<'i>(cache: &FuzzCache<'_>, image: &'i [u8], file: u32) -> Option<&'i [u8]> {
    let record = *cache.file(file)?.record();
    let start = record.first_block as usize * BLOCK_SIZE;
    image.get(start..start + record.size as usize)
}

fn check_answers(
    m: &mut Model,
    cache: &FuzzCache<'_>,
    arena: &[u8],
    image: &[u8],
    answers: &mut Vec<(usize, Response)>,
) {
    for (s, a) in answers.drain(..) {
        let kind = Kind::from_code(a.kind).unwrap_or_else(|| panic!("an unknown kind {a:?}"));
        let Some(i) = m.waiting[s].iter().position(|w| w.0 == a.tag) else {
            panic!("server {s}: answer {a:?} ({kind:?}) to no open of it waiting: {:?}", m.waiting[s]);
        };
        let (_, file) = m.waiting[s].remove(i);
        let bytes = file_bytes(cache, image, file);
        match kind {
            Kind::Ready => {
                let bytes = bytes.unwrap_or_else(|| panic!("server {s}: Ready for file {file}, not in the image"));
                let at = (a.offset as usize).checked_sub(m.head).expect("a Ready offset in the head");
                assert!(
                    arena.get(at..at + bytes.len()) == Some(bytes),
                    "server {s}: file {file}'s bytes at {a:?} are not the image's"
                );
                assert!(m.pins[s].iter().all(|p| p.0 != a.pin), "server {s}: pin {:#x} given twice", a.pin);
                m.pins[s].push((a.pin, a.offset as usize, bytes.len()));
            }
            Kind::NoSuchFile => assert!(bytes.is_none(), "file {file} is in the image"),
            Kind::Corrupt => assert!(m.corrupted, "Corrupt, but the disk corrupted nothing"),
            Kind::IoError => assert!(m.failed, "IoError, but no read failed"),
            Kind::TooLarge | Kind::OverQuota => {}
            Kind::BadRequest | Kind::Hello => panic!("an open answered {kind:?}"),
        }
        if kind != Kind::NoSuchFile {
            assert!(bytes.is_some(), "{kind:?} for file {file}, not in the image");
        }
    }
}

fn check_servers(m: &Model, servers: &Servers<2, 128>) {
    for s in 0..2 {
        let (pins, blocks) = servers.held(s);
        assert!(blocks <= m.quotas[s], "server {s} holds {blocks} blocks, quota {}", m.quotas[s]);
        assert_eq!(pins, m.pins[s].len(), "server {s}'s pins");
        assert_eq!(servers.waiting(s), m.waiting[s].len(), "server {s}'s waiting opens");
    }
}

// ----------------------------------------------------- the server's end

const LIFE: u32 = 7;
const FILES: usize = 8;

#[repr(C, align(4096))]
struct Page([u8; QUEUE_REGION_SIZE]);

/// A `Ready` the harness sent: (epoch, tag, offset).
type Sent = (u32, u32, u64);

struct ServerModel {
    epoch: u32,
    ready: bool,
    /// Open requests taken: tag -> file.
    tags: Vec<(u32, u32)>,
    /// Opens taken since the last hello and not answered.
    outstanding: Vec<u32>,
    /// Responses enqueued, not yet taken by the client.
    queued: std::collections::VecDeque<Response>,
    sent: Vec<Sent>,
    /// Pins of every `Ready` sent.
    pins_given: Vec<u32>,
    /// `Opened::Ready` claims to check: (epoch, file, offset).
    claims: Vec<(u32, u32, u64)>,
}

fn server_end(input: &mut Input<'_>) {
    let mut rq = Box::new(Page([0; QUEUE_REGION_SIZE]));
    let mut rs = Box::new(Page([0; QUEUE_REGION_SIZE]));
    // SAFETY: an all-zero `Info` is valid (atomics of zero).
    let info: Box<Info> = Box::new(unsafe { std::mem::zeroed::<Info>() });
    let (rq_ptr, rs_ptr) = (rq.0.as_mut_ptr(), rs.0.as_mut_ptr());
    // SAFETY: each page is aligned, large enough and lives until the end
    // of this function, accessed only through these queue handles.
    let (tx, mut requests, mut responses, rx) = unsafe {
        (
            RequestProducer::new(rq_ptr),
            RequestConsumer::new(rq_ptr, ()),
            ResponseProducer::new(rs_ptr),
            ResponseConsumer::new(rs_ptr, ()),
        )
    };
    let keep = input.below(4);
    let mut m = ServerModel {
        epoch: 1,
        ready: false,
        tags: Vec::new(),
        outstanding: Vec::new(),
        queued: Default::default(),
        sent: Vec::new(),
        pins_given: Vec::new(),
        claims: Vec::new(),
    };
    if input.bool() {
        info.publish(m.epoch, 8192, 64);
        m.ready = true;
    }
    let mut client: Client<'_, FILES> = Client::new(tx, rx, &info, LIFE, client::Config { keep });
    // The owner's handles: (handle, offset, epoch), and waits: (token, file).
    let mut handles: Vec<(Handle, u64, u32)> = Vec::new();
    let mut waits: Vec<(WaitToken, u32)> = Vec::new();
    let mut steps = 0;
    while !input.is_empty() && steps < MAX_STEPS {
        steps += 1;
        match input.u8() % 12 {
            0 | 1 => {
                let file = u32::from(input.u8() % 12);
                owner_open(&mut client, &mut m, &mut handles, &mut waits, file);
            }
            2 => {
                if let Some(i) = waits.iter().position(|(t, _)| client.may_retry(t)) {
                    let (_, file) = waits.swap_remove(i);
                    owner_open(&mut client, &mut m, &mut handles, &mut waits, file);
                }
            }
            3 => {
                if !waits.is_empty() {
                    let (token, _) = waits.swap_remove(input.below(waits.len()));
                    client.abandon(token);
                }
            }
            4 => {
                if !handles.is_empty() {
                    let (handle, _, _) = handles.swap_remove(input.below(handles.len()));
                    client.release(handle);
                }
            }
            5 | 6 => {
                let polled = client.poll();
                for _ in 0..polled.answers {
                    let r = m.queued.pop_front().expect("the client took a response never sent");
                    if r.kind != Kind::Hello as u32 {
                        if let Some(i) = m.outstanding.iter().position(|&t| t == r.tag) {
                            m.outstanding.swap_remove(i);
                        }
                    }
                }
                if m.ready {
                    for (handle, _, epoch) in &handles {
                        if *epoch != m.epoch {
                            assert!(!client.holds(handle), "a handle of epoch {epoch} holds in epoch {}", m.epoch);
                        }
                    }
                }
            }
            7 => {
                let n = usize::from(input.u8() % 80);
                take_requests(&mut requests, &mut m, n);
            }
            8 | 9 => {
                let r = response(input, &m);
                if responses.enqueue(r).is_ok() {
                    m.queued.push_back(r);
                    if r.kind == Kind::Ready as u32 {
                        m.sent.push((m.epoch, r.tag, r.offset));
                        m.pins_given.push(r.pin);
                    }
                }
            }
            10 => match input.u8() % 6 {
                0 => {
                    info.withdraw();
                    m.ready = false;
                }
                1 => {
                    info.refuse();
                    m.ready = false;
                }
                2 | 3 => {
                    m.epoch += 1 + u32::from(input.u8() % 3);
                    info.publish(m.epoch, 8192, 64);
                    m.ready = true;
                }
                _ => {
                    info.publish(m.epoch, 8192, 64);
                    m.ready = true;
                }
            },
            _ => {
                let _ = client.should_signal();
                let _ = client.request_signal_if_empty();
                let _ = client.stats();
            }
        }
        assert!(client.outstanding() <= QUEUE_CAPACITY, "{} opens outstanding", client.outstanding());
        assert!(m.outstanding.len() <= QUEUE_CAPACITY, "{} opens outstanding (model)", m.outstanding.len());
        assert!(client.kept() <= keep);
        for (handle, offset, _) in &handles {
            if client.holds(handle) {
                assert_eq!(client.offset(handle), Some(*offset), "a handle's offset changed");
            }
        }
    }
    take_requests(&mut requests, &mut m, usize::MAX);
    drop(client);
    drop((rq, rs));
}

/// The owner opens `file`.
fn owner_open(
    client: &mut Client<'_, FILES>,
    m: &mut ServerModel,
    handles: &mut Vec<(Handle, u64, u32)>,
    waits: &mut Vec<(WaitToken, u32)>,
    file: u32,
) {
    match client.open(file) {
        Opened::Ready { handle, offset } => {
            assert!(client.holds(&handle));
            assert_eq!(client.offset(&handle), Some(offset));
            m.claims.push((m.epoch, file, offset));
            handles.push((handle, offset, m.epoch));
        }
        Opened::Wait(token) => waits.push((token, file)),
        Opened::Fail(kind) => assert!(!matches!(kind, Kind::Ready | Kind::Hello), "Fail({kind:?})"),
    }
}

/// The harness takes up to `n` requests, then checks the claims.
fn take_requests(requests: &mut RequestConsumer<'_>, m: &mut ServerModel, n: usize) {
    let mut emptied = false;
    for _ in 0..n {
        let Some(r) = requests.dequeue().expect("the client's queue is sound") else {
            emptied = true;
            break;
        };
        match r.op() {
            Some(Op::Open) => {
                m.tags.push((r.tag, r.arg));
                m.outstanding.push(r.tag);
            }
            Some(Op::Hello) => {
                assert_eq!(r.arg, LIFE);
                m.outstanding.clear();
            }
            Some(Op::Release) => assert!(m.pins_given.contains(&r.arg), "a release of pin {:#x} never given", r.arg),
            None => panic!("the client sent an unknown op {r:?}"),
        }
    }
    // Every request sent before a claim has been taken if the queue is
    // empty now: check the claims then.
    if emptied {
        for &(epoch, file, offset) in &m.claims {
            let ok = m
                .sent
                .iter()
                .any(|&(e, tag, o)| e == epoch && o == offset && m.tags.iter().any(|&(t, f)| t == tag && f == file));
            assert!(ok, "Ready for file {file} at {offset:#x} in epoch {epoch}: no such answer to an open of it");
        }
        m.claims.clear();
    }
}

/// A response: kinds mostly known, tags mostly those of opens taken.
fn response(input: &mut Input<'_>, m: &ServerModel) -> Response {
    let kind = match input.u8() % 12 {
        k @ 0..=7 => u32::from(k),
        8..=10 => Kind::Ready as u32,
        _ => input.u32(),
    };
    let tag = match input.u8() % 4 {
        0 | 1 if !m.tags.is_empty() => {
            // Recent tags mostly.
            let back = input.below(m.tags.len().min(8));
            m.tags[m.tags.len() - 1 - back].0
        }
        _ if kind == Kind::Hello as u32 && input.u8() % 4 != 0 => LIFE,
        _ => input.u32(),
    };
    let pin = if input.bool() { u32::from(input.u8() % 4) << 16 | u32::from(input.u8() % 4) } else { input.u32() };
    let offset = if input.bool() { u64::from(input.u8()) << 12 } else { input.u64() };
    Response { kind, tag, pin, offset }
}
