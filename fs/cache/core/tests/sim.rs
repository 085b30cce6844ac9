//! The cache against a simulated disk: images built by `site-builder` from
//! generated trees, a fake block device that answers requests in random
//! order and can corrupt data or fail reads, and checks that every byte the
//! cache hands out is the source file's, that pinned bytes never change,
//! and that no request leaves the region or touches the head or a pinned
//! range.

use fs_builder::{build, Options, Placement};
use fs_cache_core::{
    Boot, BootStatus, Cache, CacheError, Completion, Config, DiskInfo, File, Open, Ready, Request, Response, Status,
    BLOCK_SIZE, QUEUE_CAPACITY, SECTOR_SIZE,
};
use fs_format::{FormatError, Superblock};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

// ---------------------------------------------------------------- helpers

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..len).map(|_| (r.next() >> 24) as u8).collect()
}

/// A generated document root and its image.
struct Site {
    dir: PathBuf,
    image: Vec<u8>,
    /// URL path -> content.
    files: BTreeMap<String, Vec<u8>>,
    /// URL path -> placement in the image.
    placement: HashMap<String, Placement>,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Builds a site from `files` (URL path without the leading `/`, content).
fn site(name: &str, files: Vec<(String, Vec<u8>)>) -> Site {
    let dir = std::env::temp_dir().join(format!("site-cache-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let root = dir.join("root");
    let mut map = BTreeMap::new();
    for (rel, data) in files {
        let p = root.join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &data).unwrap();
        map.insert(format!("/{rel}"), data);
    }
    let out = dir.join("site.img");
    let report = build(&root, &out, &Options { last_modified: Some(1_700_000_000), ..Options::default() }).unwrap();
    let placement = report.files.iter().map(|f| (f.path.clone(), f.placement.clone())).collect();
    Site { image: fs::read(&out).unwrap(), files: map, placement, dir }
}

/// `pages` pages under a few directories, each inlining `objects` objects
/// of up to `object_max` bytes plus a shared stylesheet; `alone` other
/// files of up to `alone_max` bytes; and three empty files.
fn generated(
    name: &str,
    seed: u64,
    pages: usize,
    objects: usize,
    object_max: usize,
    alone: usize,
    alone_max: usize,
) -> Site {
    let mut rng = Rng(seed | 1);
    let mut files = Vec::new();
    files.push(("css/site.css".to_string(), b"body { margin: 0 }\n".repeat(40)));
    for p in 0..pages {
        let dir = ["", "docs/", "blog/2026/"][p % 3];
        let mut html = format!("<!doctype html><title>page {p}</title><link rel=stylesheet href=\"/css/site.css\">\n");
        for o in 0..objects {
            let obj = format!("{dir}img/p{p}_{o}.png");
            html.push_str(&format!("<img src=\"img/p{p}_{o}.png\">\n"));
            let len = 1 + rng.below(object_max);
            files.push((obj, bytes(rng.next(), len)));
        }
        html.push_str(&"<p>filler text for the page body</p>\n".repeat(rng.below(200)));
        files.push((format!("{dir}page{p}.html"), html.into_bytes()));
    }
    for a in 0..alone {
        let len = rng.below(alone_max);
        files.push((format!("data/file{a}.bin"), bytes(rng.next(), len)));
    }
    for e in 0..3 {
        files.push((format!("empty{e}.txt"), Vec::new()));
    }
    site(name, files)
}

/// Total bytes of data blocks in the image.
fn data_bytes(site: &Site) -> usize {
    site.files.values().map(|d| d.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE).sum()
}

// ------------------------------------------------------------ fake device

/// What the fake device does wrong.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Per mille of reads that flip one byte of their buffer.
    corrupt: u64,
    /// Per mille of reads that end with an I/O error.
    fail: u64,
}

/// A block device over the image bytes, answering outstanding requests in
/// random order, checking every request against the contract.
struct Disk<'s> {
    image: &'s [u8],
    info: DiskInfo,
    region_size: usize,
    pending: Vec<Request>,
    rng: Rng,
    faults: Faults,
    requests: u64,
}

impl<'s> Disk<'s> {
    fn new(image: &'s [u8], max_request_sectors: u32, region_size: usize, seed: u64) -> Self {
        let info = DiskInfo { capacity: (image.len() / SECTOR_SIZE) as u64, read_only: true, max_request_sectors };
        Disk {
            image,
            info,
            region_size,
            pending: Vec::new(),
            rng: Rng(seed | 1),
            faults: Faults::default(),
            requests: 0,
        }
    }

    /// Checks a request as the driver would, and more: never outside the
    /// region, never longer than allowed, never overlapping another
    /// outstanding buffer; below `floor` (the head, once booted) never.
    fn submit(&mut self, r: Request, floor: usize) {
        assert_eq!(r.op, 0, "the cache only reads");
        assert!(r.count > 0 && r.count <= self.info.max_request_sectors, "bad count {r:?}");
        let range = blk_range(&r);
        assert!(range.end <= self.region_size, "request outside the region: {r:?} (region {})", self.region_size);
        assert!(range.start >= floor, "request into the head area: {r:?}");
        assert!(r.sector + u64::from(r.count) <= self.info.capacity, "request past the disk: {r:?}");
        for p in &self.pending {
            assert_ne!(p.id, r.id, "two outstanding requests with one id");
            let q = blk_range(p);
            assert!(q.end <= range.start || range.end <= q.start, "overlapping buffers {p:?} {r:?}");
        }
        assert!(self.pending.len() < QUEUE_CAPACITY, "more requests outstanding than the queue holds");
        self.requests += 1;
        self.pending.push(r);
    }

    /// Answers one outstanding request (chosen at random), writing into
    /// `region` whose byte 0 is region offset `base`.
    fn answer(&mut self, region: &mut [u8], base: usize) -> Option<Response> {
        if self.pending.is_empty() {
            return None;
        }
        let r = self.pending.swap_remove(self.rng.below(self.pending.len()));
        if self.rng.chance(self.faults.fail) {
            return Some(Response { id: r.id, status: Status::IoError as u32 });
        }
        let src = r.sector as usize * SECTOR_SIZE;
        let range = blk_range(&r);
        let dst = &mut region[range.start - base..range.end - base];
        dst.copy_from_slice(&self.image[src..src + dst.len()]);
        if self.rng.chance(self.faults.corrupt) {
            let at = self.rng.below(dst.len());
            dst[at] ^= 0x20;
        }
        Some(Response { id: r.id, status: Status::Ok as u32 })
    }
}

fn blk_range(r: &Request) -> std::ops::Range<usize> {
    r.offset as usize..r.offset as usize + r.count as usize * SECTOR_SIZE
}

// ------------------------------------------------------------ boot helpers

/// Boots over `region` from `disk`: the cache's error, or the head area.
fn boot(region: &mut [u8], disk: &mut Disk) -> Result<(Boot, usize), CacheError> {
    let mut boot = Boot::new(Config { region_size: region.len(), disk: disk.info })?;
    loop {
        while let Some(r) = boot.next_request() {
            disk.submit(r, 0);
        }
        let response = disk.answer(region, 0).expect("boot stalled: nothing outstanding");
        if boot.complete(response, region)? == BootStatus::Ready {
            let head = boot.head_area().unwrap();
            return Ok((boot, head));
        }
    }
}

type TestCache<'h> = Cache<'h, 256, 32, 4096>;

/// A booted cache with its arena and disk.
struct Sim<'h, 's> {
    cache: TestCache<'h>,
    arena: &'h mut [u8],
    disk: Disk<'s>,
    /// Completions seen, by kind.
    loaded: u64,
    failed: u64,
}

impl<'h, 's> Sim<'h, 's> {
    fn new(region: &'h mut [u8], mut disk: Disk<'s>) -> Self {
        let (boot, head_area) = boot(region, &mut disk).unwrap();
        let (head, arena) = region.split_at_mut(head_area);
        let cache = boot.finish(head).unwrap();
        assert_eq!(cache.arena_start(), head_area);
        Sim { cache, arena, disk, loaded: 0, failed: 0 }
    }

    fn pump(&mut self) {
        while let Some(r) = self.cache.next_request() {
            self.disk.submit(r, self.cache.arena_start());
        }
    }

    /// Answers one request; `false` if none was outstanding.
    fn step(&mut self) -> bool {
        self.pump();
        let base = self.cache.arena_start();
        let Some(response) = self.disk.answer(self.arena, base) else { return false };
        match self.cache.complete(response) {
            Completion::Loaded(_) => self.loaded += 1,
            Completion::Failed(_) => self.failed += 1,
            Completion::Progress => {}
            Completion::Unexpected => panic!("the cache did not recognise its own request {}", response.id),
        }
        self.pump();
        true
    }

    fn file(&self, path: &str) -> File<'h> {
        self.cache.lookup(path.as_bytes()).unwrap_or_else(|| panic!("{path} not in the image"))
    }

    /// Opens until the answer is final (not Loading or Busy).
    fn open_wait(&mut self, path: &str) -> Open {
        let file = self.file(path);
        loop {
            match self.cache.open(&file, self.arena) {
                Open::Loading(_) | Open::Busy => assert!(self.step(), "{path}: waiting, but nothing outstanding"),
                other => return other,
            }
        }
    }

    fn bytes(&self, ready: &Ready) -> &[u8] {
        self.cache.data(ready, self.arena)
    }
}

fn region_of(size: usize) -> Vec<u8> {
    vec![0xEE; size]
}

// ------------------------------------------------------------------ tests

#[test]
fn every_file_loads_verifies_and_matches_its_source() {
    let s = generated("all", 1, 9, 4, 30_000, 30, 120_000);
    let mut region = region_of(16 << 20);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 64, 16 << 20, 7));
    for (path, data) in &s.files {
        match sim.open_wait(path) {
            Open::Ready(ready) => {
                assert_eq!(sim.bytes(&ready), &data[..], "{path}");
                assert_eq!(ready.len, data.len());
                assert!(ready.offset >= sim.cache.arena_start() && ready.offset + ready.len <= 16 << 20);
                assert!(sim.cache.release(ready.pin));
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let st = *sim.cache.stats();
    assert_eq!(st.verified as usize, s.files.values().filter(|d| !d.is_empty()).count());
    assert_eq!((st.corrupt, st.failed_loads, st.unexpected, st.evictions), (0, 0, 0, 0));
    assert!(sim.cache.is_idle());
    // A second round is served from the cache: no new load.
    let loads = st.loads;
    for path in s.files.keys() {
        let Open::Ready(ready) = sim.cache.open(&sim.file(path), sim.arena) else { panic!("{path} not cached") };
        assert!(sim.cache.release(ready.pin));
    }
    assert_eq!(sim.cache.stats().loads, loads);
}

#[test]
fn a_page_and_its_objects_are_one_load() {
    let s = generated("group", 2, 6, 5, 20_000, 4, 10_000);
    let mut region = region_of(8 << 20);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 512, 8 << 20, 3));
    let page = "/docs/page1.html";
    let objects: Vec<&String> =
        s.placement.iter().filter(|(_, p)| **p == Placement::InlinedIn(page.to_string())).map(|(k, _)| k).collect();
    assert_eq!(objects.len(), 5, "the builder placed the page's images after it");
    let Open::Ready(r) = sim.open_wait(page) else { panic!() };
    assert!(sim.cache.release(r.pin));
    let loads = sim.cache.stats().loads;
    assert_eq!(loads, 1);
    for o in &objects {
        let Open::Ready(r) = sim.cache.open(&sim.file(o), sim.arena) else { panic!("{o} not loaded with its page") };
        assert_eq!(sim.bytes(&r), &s.files[*o][..]);
        assert!(sim.cache.release(r.pin));
    }
    assert_eq!(sim.cache.stats().loads, 1);
    // The other way round: an object first brings its page.
    let page2 = "/blog/2026/page2.html";
    let obj2 = s.placement.iter().find(|(_, p)| **p == Placement::InlinedIn(page2.to_string())).unwrap().0.clone();
    let Open::Ready(r) = sim.open_wait(&obj2) else { panic!() };
    assert!(sim.cache.release(r.pin));
    let Open::Ready(r) = sim.cache.open(&sim.file(page2), sim.arena) else { panic!("page not loaded with its object") };
    assert_eq!(sim.bytes(&r), &s.files[page2][..]);
    assert!(sim.cache.release(r.pin));
    assert_eq!(sim.cache.stats().loads, 2);
}

#[test]
fn a_group_is_read_with_the_fewest_requests() {
    // One file of 300 blocks, alone in its span: 2400 sectors.
    let s = site("fewest", vec![("big.bin".into(), bytes(5, 300 * BLOCK_SIZE))]);
    for (max, expect) in [(2400, 1), (512, 5), (8, 300), (7, 343)] {
        let mut region = region_of(4 << 20);
        let mut sim = Sim::new(&mut region, Disk::new(&s.image, max, 4 << 20, 1));
        let before = sim.disk.requests;
        let Open::Ready(r) = sim.open_wait("/big.bin") else { panic!() };
        assert_eq!(sim.disk.requests - before, expect, "max {max} sectors per request");
        assert_eq!(sim.bytes(&r), &s.files["/big.bin"][..]);
        assert!(sim.cache.release(r.pin));
    }
}

#[test]
fn corrupted_data_is_refused_and_reloaded_clean_later() {
    let s = generated("corrupt", 3, 3, 2, 10_000, 40, 60_000);
    let region_size = 1 << 20;
    let mut region = region_of(region_size);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 512, region_size, 9));
    sim.disk.faults.corrupt = 1000;
    let path = "/data/file7.bin";
    assert!(!s.files[path].is_empty());
    assert_eq!(sim.open_wait(path), Open::Corrupt { detected_now: true });
    assert_eq!(
        sim.cache.open(&sim.file(path), sim.arena),
        Open::Corrupt { detected_now: false },
        "logged once, refused always"
    );
    assert_eq!(sim.cache.stats().corrupt, 1);
    // Load the rest of the site through a clean device: the corrupt load
    // is evicted in time and the file then loads and verifies.
    sim.disk.faults.corrupt = 0;
    let mut served = false;
    for round in 0..4 {
        for p in s.files.keys() {
            match sim.open_wait(p) {
                Open::Ready(r) => {
                    assert_eq!(sim.bytes(&r), &s.files[p][..], "{p}");
                    served |= p == path;
                    assert!(sim.cache.release(r.pin));
                }
                Open::Corrupt { .. } => assert!(p == path && round == 0, "{p} corrupt in round {round}"),
                other => panic!("{p}: {other:?}"),
            }
        }
    }
    assert!(served, "the file was never reloaded");
    assert!(sim.cache.stats().evictions > 0);
}

#[test]
fn failed_reads_tell_the_waiters_then_retry() {
    let s = generated("fail", 4, 2, 2, 10_000, 5, 50_000);
    let mut region = region_of(4 << 20);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 16, 4 << 20, 11));
    sim.disk.faults.fail = 1000;
    let file = sim.file("/data/file1.bin");
    let Open::Loading(t1) = sim.cache.open(&file, sim.arena) else { panic!() };
    let Open::Loading(t2) = sim.cache.open(&file, sim.arena) else { panic!() };
    assert_eq!(t1, t2, "one load for both");
    while sim.step() {}
    assert_eq!(sim.failed, 1);
    assert!(sim.cache.is_idle(), "a failed load sends nothing more and waits for all its answers");
    assert!(matches!(sim.cache.open(&file, sim.arena), Open::IoError { status: 1 }));
    assert!(matches!(sim.cache.open(&file, sim.arena), Open::IoError { status: 1 }));
    // Both waiters told: the next open reads again.
    sim.disk.faults.fail = 0;
    let Open::Ready(r) = sim.open_wait("/data/file1.bin") else { panic!() };
    assert_eq!(sim.bytes(&r), &s.files["/data/file1.bin"][..]);
    assert!(sim.cache.release(r.pin));
    assert_eq!(sim.cache.stats().failed_loads, 1);
}

/// A restarted block driver never answers what was in flight: the cache
/// fails those loads itself, once each, tells their waiters, and the next
/// open reads the file again.
#[test]
fn requests_lost_with_a_restarted_driver_fail_their_loads_then_retry() {
    let s = generated("lost", 4, 2, 2, 10_000, 5, 50_000);
    let mut region = region_of(4 << 20);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 16, 4 << 20, 11));
    let file = sim.file("/data/file1.bin");
    let Open::Loading(ticket) = sim.cache.open(&file, sim.arena) else { panic!() };
    sim.pump();
    let lost = sim.disk.pending.len();
    assert!(lost > 0);
    assert_eq!(sim.cache.in_flight(), lost);
    // The driver restarts: its requests are gone.
    sim.disk.pending.clear();
    let mut failed = Vec::new();
    assert_eq!(sim.cache.fail_in_flight(|c| failed.push(c)), lost);
    assert_eq!(failed.iter().filter(|c| **c == Completion::Failed(ticket)).count(), 1, "the load fails once");
    assert!(sim.cache.is_idle());
    assert_eq!(sim.cache.fail_in_flight(|_| panic!("nothing left")), 0);
    assert!(matches!(sim.cache.open(&file, sim.arena), Open::IoError { status: 1 }));
    let Open::Ready(r) = sim.open_wait("/data/file1.bin") else { panic!("a new open must read again") };
    assert_eq!(sim.bytes(&r), &s.files["/data/file1.bin"][..]);
    assert!(sim.cache.release(r.pin));
}

#[test]
fn a_waiter_that_left_is_not_told_of_the_failure_meant_for_it() {
    let s = generated("abandon", 4, 2, 2, 10_000, 5, 50_000);
    let mut region = region_of(4 << 20);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 16, 4 << 20, 11));
    sim.disk.faults.fail = 1000;
    let file = sim.file("/data/file1.bin");
    let Open::Loading(stays) = sim.cache.open(&file, sim.arena) else { panic!() };
    let Open::Loading(leaves) = sim.cache.open(&file, sim.arena) else { panic!() };
    sim.cache.abandon(leaves);
    while sim.step() {}
    assert_eq!(sim.failed, 1);
    // The waiter that stayed is told once; the next open reads again.
    assert!(matches!(sim.cache.open(&file, sim.arena), Open::IoError { status: 1 }));
    sim.disk.faults.fail = 0;
    let Open::Ready(r) = sim.open_wait("/data/file1.bin") else { panic!("a new open must retry the disk") };
    assert_eq!(sim.bytes(&r), &s.files["/data/file1.bin"][..]);
    assert!(sim.cache.release(r.pin));
    // Abandoning a ticket of a finished load changes nothing.
    sim.cache.abandon(stays);
    let Open::Ready(r) = sim.cache.open(&file, sim.arena) else { panic!() };
    assert!(sim.cache.release(r.pin));
}

#[test]
fn stale_and_invented_ids_are_counted_not_trusted() {
    let s = generated("ids", 5, 2, 1, 5_000, 3, 40_000);
    let mut region = region_of(2 << 20);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 8, 2 << 20, 5));
    let file = sim.file("/data/file2.bin");
    assert!(matches!(sim.cache.open(&file, sim.arena), Open::Loading(_)));
    sim.pump();
    let real = sim.disk.pending[0];
    for id in [real.id ^ 0x100, real.id | 0xff, u32::MAX, 0] {
        if id != real.id {
            assert_eq!(sim.cache.complete(Response { id, status: 0 }), Completion::Unexpected);
        }
    }
    while sim.step() {}
    // The real id again, after it was answered: stale.
    assert_eq!(sim.cache.complete(Response { id: real.id, status: 0 }), Completion::Unexpected);
    assert!(sim.cache.stats().unexpected >= 4);
    let Open::Ready(r) = sim.cache.open(&file, sim.arena) else { panic!() };
    assert_eq!(sim.bytes(&r), &s.files["/data/file2.bin"][..]);
    assert!(sim.cache.release(r.pin));
}

#[test]
fn empty_files_too_large_files_and_busy() {
    let s = site(
        "limits",
        vec![
            ("empty.txt".into(), Vec::new()),
            ("huge.bin".into(), bytes(1, 200 * BLOCK_SIZE)),
            ("a.bin".into(), bytes(2, 100 * BLOCK_SIZE)),
            ("b.bin".into(), bytes(3, 100 * BLOCK_SIZE)),
            ("c.bin".into(), bytes(4, 60 * BLOCK_SIZE)),
        ],
    );
    // Head: superblock + 1 index block; arena: 256 blocks; groups up to 128.
    let region_size = 258 * BLOCK_SIZE;
    let mut region = region_of(region_size);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 512, region_size, 2));
    assert_eq!(sim.cache.max_group_blocks(), 128);
    let Open::Ready(e) = sim.open_wait("/empty.txt") else { panic!() };
    assert_eq!(e.len, 0);
    assert!(sim.bytes(&e).is_empty());
    assert!(sim.cache.release(e.pin));
    assert_eq!(sim.open_wait("/huge.bin"), Open::TooLarge);
    // Pin a and b (200 of 256 blocks): c (60) has no room until one goes.
    let Open::Ready(a) = sim.open_wait("/a.bin") else { panic!() };
    let Open::Ready(b) = sim.open_wait("/b.bin") else { panic!() };
    let c = sim.file("/c.bin");
    assert_eq!(sim.cache.open(&c, sim.arena), Open::Busy);
    assert_eq!(sim.cache.open(&c, sim.arena), Open::Busy);
    assert!(sim.cache.release(a.pin));
    // a was opened since the hand passed: a second chance, then evicted.
    let Open::Ready(cr) = sim.open_wait("/c.bin") else { panic!() };
    assert_eq!(sim.bytes(&cr), &s.files["/c.bin"][..]);
    assert_eq!(sim.bytes(&b), &s.files["/b.bin"][..], "the pinned file is untouched");
    assert!(sim.cache.release(b.pin));
    assert!(sim.cache.release(cr.pin));
    assert_eq!(sim.cache.stats().evictions, 1);
}

/// A site several times larger than the arena, many clients each opening
/// random files and holding them pinned for a while, the device answering
/// in random order (and, with `faults`, corrupting and failing reads).
fn stress(
    name: &str,
    seed: u64,
    faults: Faults,
    opens: usize,
    clients: usize,
    hold: usize,
) -> (TestStats, fs_cache_core::Stats) {
    let s = generated(name, seed, 30, 5, 24_000, 120, 90_000);
    let data = data_bytes(&s);
    // The arena: a quarter of the data.
    let head_area = Superblock::parse(&s.image).unwrap().data_first_block as usize * BLOCK_SIZE;
    let region_size = head_area + (data / 4) / BLOCK_SIZE * BLOCK_SIZE;
    let mut region = region_of(region_size);
    let mut sim = Sim::new(&mut region, Disk::new(&s.image, 64, region_size, seed));
    assert_eq!(sim.cache.arena_start(), head_area);
    assert!(data >= 4 * sim.cache.arena_len(), "site {data} bytes, arena {}", sim.cache.arena_len());
    sim.disk.faults = faults;
    let paths: Vec<&String> = s.files.keys().collect();
    let mut rng = Rng(seed.wrapping_mul(31) | 1);
    // Per client: the file it wants, or the pinned file it is sending and
    // for how many more steps.
    let mut want: Vec<Option<usize>> = (0..clients).map(|_| Some(rng.below(paths.len()))).collect();
    let mut sending: Vec<Option<(Ready, usize, u32)>> = (0..clients).map(|_| None).collect();
    let mut t = TestStats::default();
    let mut served = HashSet::new();
    let mut idle_rounds = 0;
    while t.finished < opens {
        let mut progress = false;
        for c in 0..clients {
            if let Some((ready, i, left)) = &mut sending[c] {
                // Pinned bytes never change while held.
                assert_eq!(sim.bytes(ready), &s.files[paths[*i]][..], "{} changed while pinned", paths[*i]);
                if *left == 0 {
                    let (ready, _, _) = sending[c].take().unwrap();
                    assert!(sim.cache.release(ready.pin));
                    want[c] = Some(rng.below(paths.len()));
                    progress = true;
                } else {
                    *left -= 1;
                }
                continue;
            }
            let Some(i) = want[c] else { continue };
            let path = paths[i];
            match sim.cache.open(&sim.file(path), sim.arena) {
                Open::Ready(ready) => {
                    assert_eq!(sim.bytes(&ready), &s.files[path][..], "{path} served wrong bytes");
                    assert!(ready.offset >= head_area && ready.offset + ready.len <= region_size);
                    served.insert(i);
                    t.ready += 1;
                    t.finished += 1;
                    want[c] = None;
                    sending[c] = Some((ready, i, rng.below(hold) as u32));
                    progress = true;
                }
                Open::Loading(_) => {}
                Open::Busy => t.busy += 1,
                Open::Corrupt { .. } => {
                    assert!(faults.corrupt > 0, "{path} corrupt with a clean device");
                    t.corrupt += 1;
                    t.finished += 1;
                    want[c] = Some(rng.below(paths.len()));
                    progress = true;
                }
                Open::IoError { .. } => {
                    assert!(faults.fail > 0, "{path} failed with a clean device");
                    t.io_errors += 1;
                    t.finished += 1;
                    want[c] = Some(rng.below(paths.len()));
                    progress = true;
                }
                Open::TooLarge => panic!("{path} too large"),
            }
        }
        // Answer a few requests, in random order.
        for _ in 0..1 + rng.below(4) {
            progress |= sim.step();
        }
        idle_rounds = if progress { 0 } else { idle_rounds + 1 };
        assert!(idle_rounds < 50, "no progress: clients {want:?}, stats {:?}", sim.cache.stats());
    }
    for slot in sending.iter_mut() {
        if let Some((ready, _, _)) = slot.take() {
            assert!(sim.cache.release(ready.pin));
        }
    }
    t.distinct = served.len();
    t.files = paths.len();
    (t, *sim.cache.stats())
}

#[derive(Debug, Default)]
struct TestStats {
    finished: usize,
    ready: usize,
    busy: usize,
    corrupt: usize,
    io_errors: usize,
    distinct: usize,
    files: usize,
}

#[test]
fn a_site_four_times_the_cache_serves_every_file_correctly() {
    let (t, st) = stress("stress", 21, Faults::default(), 6000, 12, 6);
    eprintln!("{t:?}\n{st:?}");
    assert_eq!(t.ready, t.finished);
    assert_eq!(t.distinct, t.files, "every file served at least once");
    assert!(st.evictions > 100, "the cache was under pressure");
    assert_eq!((st.corrupt, st.failed_loads, st.unexpected), (0, 0, 0));
}

#[test]
fn many_long_pins_make_opens_wait_but_never_wrong() {
    let (t, st) = stress("pins", 23, Faults::default(), 3000, 48, 60);
    eprintln!("{t:?}\n{st:?}");
    assert_eq!(t.ready, t.finished);
    assert!(t.busy > 0 && st.busy > 0, "the pins filled the cache at times");
    assert_eq!(t.distinct, t.files);
}

#[test]
fn a_faulty_disk_never_gets_a_wrong_byte_served() {
    let (t, st) = stress("faulty", 22, Faults { corrupt: 30, fail: 20 }, 4000, 12, 6);
    eprintln!("{t:?}\n{st:?}");
    assert!(t.corrupt > 0 && t.io_errors > 0, "faults were injected and seen");
    assert!(t.ready > t.finished / 2, "most opens still served");
    assert!(st.corrupt > 0 && t.corrupt >= st.corrupt as usize, "each detection was an open answered Corrupt");
    assert!(st.failed_loads > 0);
}

#[test]
fn corrupt_images_are_refused_with_the_reason() {
    let s = generated("image", 6, 2, 2, 5_000, 3, 10_000);
    let try_boot = |image: &[u8], region_size: usize| -> Result<(), CacheError> {
        let mut region = region_of(region_size);
        let mut disk = Disk::new(image, 64, region_size, 1);
        let (boot, head_area) = boot(&mut region, &mut disk)?;
        boot.finish::<16, 8, 64>(&region[..head_area]).map(|_| ())
    };
    assert_eq!(try_boot(&s.image, 1 << 20), Ok(()));
    let mut bad = s.image.clone();
    bad[50] ^= 1; // inside the superblock's checksummed bytes
    assert_eq!(try_boot(&bad, 1 << 20), Err(CacheError::CorruptImage(FormatError::SuperblockChecksum)));
    let mut bad = s.image.clone();
    bad[0] = b'X';
    assert_eq!(try_boot(&bad, 1 << 20), Err(CacheError::CorruptImage(FormatError::BadMagic)));
    let mut bad = s.image.clone();
    bad[BLOCK_SIZE + 100] ^= 1; // inside the index
    let e = try_boot(&bad, 1 << 20).unwrap_err();
    assert_eq!(e, CacheError::CorruptImage(FormatError::IndexChecksum));
    assert!(e.to_string().contains("corrupt site image, refusing to serve"), "{e}");
    // A disk shorter than the image says.
    let short = &s.image[..s.image.len() - BLOCK_SIZE];
    assert!(matches!(try_boot(short, 1 << 20), Err(CacheError::ImageLargerThanDisk { .. })));
    // A region too small for the index.
    assert!(matches!(try_boot(&s.image, 2 * BLOCK_SIZE), Err(CacheError::IndexTooLarge { .. })));
    // More files than the cache has room for.
    let mut region = region_of(1 << 20);
    let mut disk = Disk::new(&s.image, 64, 1 << 20, 1);
    let (boot, head_area) = boot(&mut region, &mut disk).unwrap();
    let r = boot.finish::<16, 8, 4>(&region[..head_area]);
    assert!(matches!(r, Err(CacheError::TooManyFiles { capacity: 4, .. })));
    // A failed read of the head.
    let mut region = region_of(1 << 20);
    let mut disk = Disk::new(&s.image, 64, 1 << 20, 1);
    disk.faults.fail = 1000;
    assert_eq!(boot_err(&mut region, &mut disk), CacheError::Io { status: Status::IoError as u32 });
    // Nonsense configuration.
    let disk = DiskInfo { capacity: 100, read_only: true, max_request_sectors: 0 };
    assert_eq!(Boot::new(Config { region_size: 1 << 20, disk }).unwrap_err(), CacheError::NoRequestSize);
    let disk = DiskInfo { capacity: 100, read_only: true, max_request_sectors: 8 };
    assert!(matches!(Boot::new(Config { region_size: 4096, disk }), Err(CacheError::RegionTooSmall { .. })));
}

fn boot_err(region: &mut [u8], disk: &mut Disk) -> CacheError {
    match boot(region, disk) {
        Err(e) => e,
        Ok(_) => panic!("boot succeeded"),
    }
}

#[test]
fn boot_reads_the_index_in_several_requests_in_any_order() {
    // Enough files for an index of several blocks.
    let files = (0..400).map(|i| (format!("dir{}/f{i}.txt", i % 7), bytes(i, (i as usize * 37) % 3000))).collect();
    let s = site("bigindex", files);
    let region_size = 8 << 20;
    let mut region = region_of(region_size);
    let mut disk = Disk::new(&s.image, 8, region_size, 4);
    let (boot, head_area) = boot(&mut region, &mut disk).unwrap();
    assert!(head_area > 8 * BLOCK_SIZE);
    assert_eq!(disk.requests as usize, head_area / BLOCK_SIZE, "block 0, then one request per index block");
    assert_eq!(boot.unexpected(), 0);
    let (head, arena) = region.split_at_mut(head_area);
    let mut cache: TestCache = boot.finish(head).unwrap();
    assert_eq!(cache.image().len(), 400);
    let mut sim_disk = disk;
    // Serve a few files through this cache, as Sim does.
    for path in ["/dir0/f7.txt", "/dir3/f3.txt", "/dir6/f6.txt", "/dir0/f399.txt"] {
        let file = cache.lookup(path.as_bytes()).unwrap();
        let ready = loop {
            match cache.open(&file, arena) {
                Open::Ready(r) => break r,
                Open::Loading(_) => {
                    while let Some(r) = cache.next_request() {
                        sim_disk.submit(r, head_area);
                    }
                    let response = sim_disk.answer(arena, head_area).unwrap();
                    cache.complete(response);
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(cache.data(&ready, arena), &s.files[path][..]);
        assert!(cache.release(ready.pin));
    }
}

// ------------------------------------- serving server PDs (`serve`)

use fs_cache_core::serve::Servers;
use lib_cache_protocol::{Kind, Request as CacheRequest, Response as CacheResponse};

/// The cache PD with two servers: requests in, responses out, the disk
/// answered in random order.
struct Node<'h, 's> {
    sim: Sim<'h, 's>,
    servers: Box<Servers<2, 128>>,
    answers: Vec<(usize, CacheResponse)>,
}

impl<'h, 's> Node<'h, 's> {
    fn new(sim: Sim<'h, 's>, quotas: [u64; 2]) -> Self {
        Node { sim, servers: Box::new(Servers::new(quotas)), answers: Vec::new() }
    }

    fn request(&mut self, server: usize, r: CacheRequest) {
        assert!(self.servers.can_take(server), "server {server} past its outstanding opens");
        let answers = &mut self.answers;
        self.servers.request(&mut self.sim.cache, self.sim.arena, server, r, &mut |s, a| answers.push((s, a)));
        self.sim.pump();
    }

    /// Answers one block request and hands its completion on; `false` if
    /// none was outstanding.
    fn step(&mut self) -> bool {
        self.sim.pump();
        let base = self.sim.cache.arena_start();
        let Some(response) = self.sim.disk.answer(self.sim.arena, base) else { return false };
        let completion = self.sim.cache.complete(response);
        let answers = &mut self.answers;
        self.servers.completed(&mut self.sim.cache, self.sim.arena, completion, &mut |s, a| answers.push((s, a)));
        self.sim.pump();
        true
    }

    fn settle(&mut self) {
        while self.step() {}
    }

    fn position(&self, path: &str) -> u32 {
        self.sim.file(path).id()
    }

    /// The answer to `server`'s open `tag`, taken out of the answers.
    fn answer(&mut self, server: usize, tag: u32) -> Option<CacheResponse> {
        let i = self.answers.iter().position(|&(s, a)| s == server && a.tag == tag)?;
        Some(self.answers.remove(i).1)
    }
}

fn served_bytes<'a>(node: &'a Node, a: &CacheResponse, len: usize) -> &'a [u8] {
    let start = a.offset as usize - node.sim.cache.arena_start();
    &node.sim.arena[start..start + len]
}

#[test]
fn two_servers_get_every_file_through_the_protocol_byte_for_byte() {
    let s = generated("serve", 11, 6, 4, 20_000, 20, 60_000);
    let mut region = region_of(8 << 20);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 64, 8 << 20, 5)), [u64::MAX, u64::MAX]);
    let paths: Vec<&String> = s.files.keys().collect();
    for chunk in paths.chunks(16) {
        // Both servers ask for the same files at once: one load each, two pins.
        for (tag, path) in chunk.iter().enumerate() {
            let file = node.position(path);
            node.request(0, CacheRequest::open(file, tag as u32));
            node.request(1, CacheRequest::open(file, 100 + tag as u32));
        }
        node.settle();
        for (tag, path) in chunk.iter().enumerate() {
            let data = &s.files[*path];
            for (server, tag) in [(0, tag as u32), (1, 100 + tag as u32)] {
                let a = node.answer(server, tag).unwrap_or_else(|| panic!("{path}: server {server} unanswered"));
                assert_eq!(a.kind(), Kind::Ready, "{path}");
                assert_eq!(served_bytes(&node, &a, data.len()), &data[..], "{path}");
                node.request(server, CacheRequest::release(a.pin));
            }
        }
        assert!(node.answers.is_empty(), "{:?}", node.answers);
    }
    for server in 0..2 {
        assert_eq!(node.servers.held(server), (0, 0));
        assert_eq!(node.servers.stats(server).ready, s.files.len() as u64);
        assert_eq!(node.servers.bad_releases(server), 0);
    }
    assert!(node.sim.cache.is_idle());
}

#[test]
fn a_server_past_its_quota_is_refused_and_the_other_is_served() {
    let s = generated("quota", 12, 0, 0, 1, 8, 40_000);
    let mut region = region_of(8 << 20);
    let quota = 12; // blocks: two or three of the files
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 64, 8 << 20, 6)), [quota, u64::MAX]);
    let files: Vec<(u32, usize)> = s
        .files
        .iter()
        .filter(|(p, d)| p.starts_with("/data/") && d.len() > 4096)
        .map(|(p, d)| (node.position(p), d.len()))
        .collect();
    assert!(files.len() >= 5);
    let mut pins = Vec::new();
    let mut refused = 0;
    for (tag, &(file, _)) in files.iter().enumerate() {
        node.request(0, CacheRequest::open(file, tag as u32));
        node.settle();
        let a = node.answer(0, tag as u32).unwrap();
        match a.kind() {
            Kind::Ready => pins.push(a.pin),
            Kind::OverQuota => refused += 1,
            other => panic!("{other:?}"),
        }
        assert!(node.servers.held(0).1 <= quota, "held past the quota");
        // The other server gets every file meanwhile.
        node.request(1, CacheRequest::open(file, 1000 + tag as u32));
        node.settle();
        assert_eq!(node.answer(1, 1000 + tag as u32).unwrap().kind(), Kind::Ready);
    }
    assert!(refused > 0 && !pins.is_empty(), "quota never reached: {refused} refused, {} pinned", pins.len());
    assert_eq!(node.servers.stats(0).over_quota, refused);
    // Releasing makes room again.
    for pin in pins {
        node.request(0, CacheRequest::release(pin));
    }
    node.request(0, CacheRequest::open(files[files.len() - 1].0, 77));
    node.settle();
    assert_eq!(node.answer(0, 77).unwrap().kind(), Kind::Ready);
}

#[test]
fn a_hello_frees_a_servers_pins_and_waits_and_old_numbers_release_nothing() {
    let s = generated("hello", 13, 3, 2, 10_000, 6, 30_000);
    let mut region = region_of(8 << 20);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 64, 8 << 20, 8)), [u64::MAX, u64::MAX]);
    let paths: Vec<&String> = s.files.keys().filter(|p| !s.files[*p].is_empty()).collect();
    let first = node.position(paths[0]);
    node.request(0, CacheRequest::open(first, 1));
    node.request(1, CacheRequest::open(first, 1));
    node.settle();
    let old = node.answer(0, 1).unwrap();
    let kept = node.answer(1, 1).unwrap();
    assert_eq!((old.kind(), kept.kind()), (Kind::Ready, Kind::Ready));
    // Server 0 has an open waiting for a load when it restarts.
    node.request(0, CacheRequest::open(node.position(paths[paths.len() - 1]), 2));
    node.request(0, CacheRequest::hello(1));
    assert_eq!(node.answer(0, 1).map(|a| a.kind()), Some(Kind::Hello), "the hello's answer carries the life");
    assert_eq!(node.servers.held(0), (0, 0));
    node.settle();
    assert_eq!(node.answer(0, 2), None, "the open of the dead life is never answered");
    node.request(0, CacheRequest::release(old.pin));
    assert_eq!(node.servers.bad_releases(0), 1, "a number of the earlier life");
    // Server 1's pin is untouched: its bytes are still the file's.
    let data = &s.files[paths[0]];
    assert_eq!(served_bytes(&node, &kept, data.len()), &data[..]);
    assert_eq!(node.servers.held(1).0, 1);
    assert!(node.sim.cache.is_idle());
}

#[test]
fn failed_and_corrupt_loads_answer_each_waiting_open_once() {
    let s = generated("faults", 14, 4, 3, 15_000, 12, 50_000);
    let mut region = region_of(8 << 20);
    let mut disk = Disk::new(&s.image, 16, 8 << 20, 9);
    let mut sim = Sim::new(&mut region, {
        disk.faults = Faults { corrupt: 0, fail: 0 };
        disk
    });
    sim.disk.faults = Faults { corrupt: 150, fail: 150 };
    let mut node = Node::new(sim, [u64::MAX, u64::MAX]);
    let paths: Vec<&String> = s.files.keys().collect();
    let mut kinds = BTreeMap::new();
    for round in 0..3u32 {
        for (i, path) in paths.iter().enumerate() {
            let file = node.position(path);
            let tag = round * 1000 + i as u32;
            node.request((i + round as usize) % 2, CacheRequest::open(file, tag));
            if i % 8 == 7 {
                node.settle();
            }
        }
        node.settle();
        for (i, path) in paths.iter().enumerate() {
            let server = (i + round as usize) % 2;
            let tag = round * 1000 + i as u32;
            let a = node.answer(server, tag).unwrap_or_else(|| panic!("{path}: unanswered"));
            *kinds.entry(format!("{:?}", a.kind())).or_insert(0) += 1;
            match a.kind() {
                Kind::Ready => {
                    let data = &s.files[*path];
                    assert_eq!(served_bytes(&node, &a, data.len()), &data[..], "{path}: a corrupt byte was served");
                    node.request(server, CacheRequest::release(a.pin));
                }
                Kind::IoError | Kind::Corrupt => {}
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(node.answers.is_empty(), "answered twice: {:?}", node.answers);
    }
    assert!(kinds.contains_key("Ready") && kinds.contains_key("IoError"), "{kinds:?}");
    assert!(node.sim.cache.is_idle());
}

#[test]
fn unknown_requests_and_files_are_answered_as_errors() {
    let s = generated("bad", 15, 1, 1, 1_000, 1, 1_000);
    let mut region = region_of(4 << 20);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 64, 4 << 20, 10)), [u64::MAX, u64::MAX]);
    node.request(0, CacheRequest { op: 77, arg: 0, tag: 5 });
    node.request(1, CacheRequest::open(u32::MAX, 6));
    assert_eq!(node.answer(0, 5).map(|a| a.kind()), Some(Kind::BadRequest));
    assert_eq!(node.answer(1, 6).map(|a| a.kind()), Some(Kind::NoSuchFile));
    node.request(1, CacheRequest::release(0x0001_0000));
    assert_eq!(node.servers.bad_releases(1), 1);
}

#[test]
fn a_server_may_have_at_most_a_queue_of_opens_waiting() {
    let s = generated("flood", 16, 0, 0, 1, 80, 9_000);
    let mut region = region_of(4 << 20);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 8, 4 << 20, 11)), [u64::MAX, u64::MAX]);
    let files: Vec<u32> = s.files.keys().filter(|p| p.starts_with("/data/")).map(|p| node.position(p)).collect();
    let mut sent = 0;
    for (tag, &file) in files.iter().enumerate() {
        if !node.servers.can_take(0) {
            break;
        }
        node.request(0, CacheRequest::open(file, tag as u32));
        sent += 1;
    }
    let answered_at_once = node.answers.len();
    assert_eq!(
        sent - answered_at_once,
        lib_cache_protocol::QUEUE_CAPACITY,
        "waiting opens stop at the queue's capacity"
    );
    assert!(node.servers.can_take(1), "the other server is not held up");
    node.settle();
    assert_eq!(node.answers.len(), sent);
}

/// With a queue of opens waiting, the server's next requests are still
/// taken (`may_take`): a release goes through (it may be what the waits
/// need), while one more open breaks the rule and is dropped unanswered
/// and counted, and the waits are all answered in the end.
#[test]
fn with_a_queue_of_opens_waiting_releases_are_still_taken() {
    let s = generated("full-waits", 17, 0, 0, 1, 80, 9_000);
    let mut region = region_of(4 << 20);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 8, 4 << 20, 12)), [u64::MAX, u64::MAX]);
    let files: Vec<u32> = s.files.keys().filter(|p| p.starts_with("/data/")).map(|p| node.position(p)).collect();
    // A pin first, to release later.
    node.request(0, CacheRequest::open(files[0], 1000));
    node.settle();
    let held = node.answer(0, 1000).expect("answered");
    assert_eq!(held.kind(), Kind::Ready);
    let (pins, _) = node.servers.held(0);
    let room = lib_cache_protocol::QUEUE_CAPACITY;
    let mut tag = 0;
    while node.servers.can_take(0) {
        node.request(0, CacheRequest::open(files[1 + tag as usize], tag));
        tag += 1;
    }
    assert_eq!(node.servers.waiting(0), lib_cache_protocol::QUEUE_CAPACITY);
    assert!(node.servers.may_take(0, room), "a full queue of waits still lets releases in");
    let answers = &mut node.answers;
    node.servers.request(&mut node.sim.cache, node.sim.arena, 0, CacheRequest::release(held.pin), &mut |s, a| {
        answers.push((s, a))
    });
    assert_eq!(node.servers.held(0).0, pins - 1, "the release was taken");
    let before = node.answers.len();
    let answers = &mut node.answers;
    node.servers.request(&mut node.sim.cache, node.sim.arena, 0, CacheRequest::open(files[70], 9999), &mut |s, a| {
        answers.push((s, a))
    });
    assert_eq!(node.servers.stats(0).overruns, 1);
    assert_eq!(node.answers.len(), before, "the extra open is not answered");
    node.settle();
    assert_eq!(node.servers.waiting(0), 0);
    assert!((0..tag).all(|t| node.answer(0, t).is_some()), "every waiting open answered");
    assert!(node.answer(0, 9999).is_none());
}

/// An open waiting for one load is opened again only when *that* load
/// ends: each open of a loading group is one more waiter the cache owes an
/// error if the load fails, so an open repeated on another load's
/// completion would leave a debt that fails a later, unrelated open.
#[test]
fn a_failed_load_owes_each_waiting_open_one_error_and_then_loads_again() {
    let s = generated("debt", 17, 0, 0, 1, 8, 30_000);
    let mut region = region_of(4 << 20);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 8, 4 << 20, 12)), [u64::MAX, u64::MAX]);
    let files: Vec<u32> = s
        .files
        .iter()
        .filter(|(p, d)| p.starts_with("/data/") && d.len() > 8192)
        .map(|(p, _)| node.position(p))
        .take(3)
        .collect();
    assert_eq!(files.len(), 3);
    node.sim.disk.faults = Faults { corrupt: 0, fail: 1000 };
    for (i, &file) in files.iter().enumerate() {
        node.request(i % 2, CacheRequest::open(file, i as u32));
    }
    node.settle();
    for i in 0..files.len() {
        assert_eq!(node.answer(i % 2, i as u32).map(|a| a.kind()), Some(Kind::IoError), "open {i}");
    }
    assert!(node.answers.is_empty(), "one answer each: {:?}", node.answers);
    // The disk works again: every file loads afresh.
    node.sim.disk.faults = Faults::default();
    for (i, &file) in files.iter().enumerate() {
        node.request(0, CacheRequest::open(file, 10 + i as u32));
    }
    node.settle();
    for i in 0..files.len() {
        let a = node.answer(0, 10 + i as u32).unwrap();
        assert_eq!(a.kind(), Kind::Ready, "file {i} after the disk recovered");
        node.request(0, CacheRequest::release(a.pin));
    }
    // A server that restarts (hello) while its open waits gives its place
    // back: the failed load owes it nothing, and the next open loads.
    let other =
        s.files.iter().find(|(p, d)| p.starts_with("/data/") && d.len() > 8192 && !files.contains(&node.position(p)));
    let file = node.position(other.expect("a fourth file").0);
    node.sim.disk.faults = Faults { corrupt: 0, fail: 1000 };
    node.request(1, CacheRequest::open(file, 20));
    node.request(1, CacheRequest::hello(2));
    node.settle();
    assert_eq!(node.answer(1, 2).map(|a| a.kind()), Some(Kind::Hello));
    assert!(node.answers.is_empty(), "{:?}", node.answers);
    node.sim.disk.faults = Faults::default();
    node.request(0, CacheRequest::open(file, 21));
    node.settle();
    assert_eq!(node.answer(0, 21).map(|a| a.kind()), Some(Kind::Ready), "a debt left by the restarted server");
}

// ------------------- servers' clients (`lib_cache_protocol::client`)

use lib_cache_protocol::client::{Client, ClientStats, Config as ClientConfig, Handle, Opened, WaitToken};
use lib_cache_protocol::{
    Info, RequestConsumer, RequestProducer, ResponseConsumer, ResponseProducer, QUEUE_REGION_SIZE,
};
use std::collections::VecDeque;

#[repr(C, align(4096))]
struct QueuePage([u8; QUEUE_REGION_SIZE]);

/// A zeroed queue region for the rest of the process.
fn queue_page() -> *mut u8 {
    Box::leak(Box::new(QueuePage([0; QUEUE_REGION_SIZE]))).0.as_mut_ptr()
}

/// The cache PD's ends of one server's queues.
struct Port {
    requests: RequestConsumer<'static>,
    responses: ResponseProducer<'static>,
}

/// One server PD: its client of the cache and what it is doing with it.
struct ServerPd {
    client: Client<'static, 256>,
    /// Files (indices into the test's list) still to serve.
    todo: VecDeque<usize>,
    waits: Vec<(WaitToken, usize)>,
    /// Handles being "sent from", and for how many more rounds.
    sending: Vec<(Handle, usize, usize)>,
    served: usize,
    over_quota: usize,
    /// Epoch changes seen: every transfer from the cache was reset.
    resets: usize,
}

/// The regions a server shares with the cache PD.
#[derive(Clone, Copy)]
struct Regions {
    info: &'static Info,
    requests: *mut u8,
    responses: *mut u8,
}

/// Connects a server (quota `quota` blocks) to the cache PD, whose head is
/// `head_len` bytes.
fn connect(head_len: usize, quota: u64) -> (Port, Regions) {
    // SAFETY: an all-zero `Info` is valid (atomics of zero).
    let info: &'static Info = Box::leak(Box::new(unsafe { std::mem::zeroed::<Info>() }));
    info.publish(1, head_len as u32, quota as u32);
    let regions = Regions { info, requests: queue_page(), responses: queue_page() };
    (port(regions), regions)
}

/// The cache PD's ends of a server's queues, carrying on from their
/// indices (as a restarted cache PD's are).
fn port(regions: Regions) -> Port {
    // SAFETY: both regions are page-aligned, a page long, live for the
    // rest of the process and are accessed only through the handles of
    // one cache PD and one server at a time.
    unsafe {
        Port {
            requests: RequestConsumer::new(regions.requests, ()),
            responses: ResponseProducer::new(regions.responses),
        }
    }
}

/// A server PD in its life `life`, keeping `keep` pins: its client's
/// handles carry on from the queues' indices, as after a restart.
fn server(regions: Regions, keep: usize, life: u32) -> ServerPd {
    // SAFETY: as in `connect`; the server's previous handles are gone.
    let (tx, rx) = unsafe { (RequestProducer::new(regions.requests), ResponseConsumer::new(regions.responses, ())) };
    let client = Client::new(tx, rx, regions.info, life, ClientConfig { keep });
    ServerPd {
        client,
        todo: VecDeque::new(),
        waits: Vec::new(),
        sending: Vec::new(),
        served: 0,
        over_quota: 0,
        resets: 0,
    }
}

/// The cache PD's turn: takes each server's requests while it may, lets
/// the disk answer a few block requests, and enqueues the answers (the
/// response queue must have room: the clients keep at most a queue of
/// opens outstanding).
fn cache_pd_round(node: &mut Node, ports: &mut [Port; 2], steps: usize) {
    for (server, port) in ports.iter_mut().enumerate() {
        while node.servers.can_take(server) {
            let Some(r) = port.requests.dequeue().unwrap() else { break };
            node.request(server, r);
        }
    }
    for _ in 0..steps {
        if !node.step() {
            break;
        }
    }
    for (server, answer) in node.answers.drain(..) {
        ports[server].responses.enqueue(answer).expect("a response queue overflowed");
    }
}

/// A server's turn: takes answers, sends from what it holds and releases
/// it after a while, retries waits, and opens more files, checking every
/// byte of every file it is given against the source.
fn server_round(pd: &mut ServerPd, node: &Node, files: &[(String, u32, Vec<u8>)], rng: &mut Rng) {
    const WINDOW: usize = 24;
    if pd.client.poll().epoch_changed {
        // Every transfer reading from the cache ends; the handles are
        // stale (releasing one would change nothing).
        pd.sending.clear();
        pd.resets += 1;
    }
    let mut i = 0;
    while i < pd.sending.len() {
        if pd.sending[i].2 == 0 {
            let (handle, _, _) = pd.sending.swap_remove(i);
            pd.client.release(handle);
        } else {
            pd.sending[i].2 -= 1;
            i += 1;
        }
    }
    let mut opens: Vec<usize> = Vec::new();
    pd.waits.retain(|(token, f)| {
        let retry = pd.client.may_retry(token);
        if retry {
            opens.push(*f);
        }
        !retry
    });
    while pd.waits.len() + pd.sending.len() + opens.len() < WINDOW {
        let Some(f) = pd.todo.pop_front() else { break };
        opens.push(f);
    }
    for f in opens {
        let (path, position, data) = &files[f];
        match pd.client.open(*position) {
            Opened::Ready { handle, offset } => {
                let start = offset as usize - node.sim.cache.arena_start();
                assert_eq!(&node.sim.arena[start..start + data.len()], &data[..], "{path}: wrong bytes served");
                pd.sending.push((handle, f, rng.below(3)));
                pd.served += 1;
            }
            Opened::Wait(token) => pd.waits.push((token, f)),
            // Nothing kept to release: try again later.
            Opened::Fail(lib_cache_protocol::Kind::OverQuota) => {
                pd.over_quota += 1;
                pd.todo.push_back(f);
            }
            Opened::Fail(kind) => panic!("{path}: {kind:?}"),
        }
    }
    let _ = pd.client.should_signal();
}

/// Two servers' clients and the cache PD's `Servers` over real queues:
/// every file of a site larger than the cache, twice each (the second
/// time often from a kept pin), byte for byte. Server 0's quota is a
/// little more than the largest group, so opens are refused past it and
/// the client releases its least recently used kept pins and opens again.
#[test]
fn two_clients_get_every_file_through_the_queues_byte_for_byte() {
    let s = generated("clients", 21, 10, 4, 20_000, 40, 60_000);
    let region_size = 1 << 20;
    assert!(data_bytes(&s) > region_size, "the site must not fit the cache");
    let mut region = region_of(region_size);
    let largest_group = s
        .placement
        .iter()
        .map(|(path, p)| match p {
            Placement::Page { span_blocks } => *span_blocks as usize,
            _ => s.files[path].len().div_ceil(BLOCK_SIZE),
        })
        .max()
        .unwrap() as u64;
    let quotas = [largest_group + 2, 4 * largest_group];
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 16, region_size, 21)), quotas);
    let files: Vec<(String, u32, Vec<u8>)> =
        s.files.iter().map(|(path, data)| (path.clone(), node.position(path), data.clone())).collect();
    let head_len = node.sim.cache.arena_start();
    let (p0, r0) = connect(head_len, quotas[0]);
    let (p1, r1) = connect(head_len, quotas[1]);
    let (mut pd0, mut pd1) = (server(r0, 16, 1), server(r1, 8, 1));
    let mut ports = [p0, p1];
    let mut rng = Rng(21);
    for pd in [&mut pd0, &mut pd1] {
        let mut order: Vec<usize> = (0..files.len()).chain(0..files.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        pd.todo = order.into();
    }
    let total = 2 * files.len();
    for round in 0.. {
        assert!(round < 20_000, "stalled: served {} and {} of {total}", pd0.served, pd1.served);
        server_round(&mut pd0, &node, &files, &mut rng);
        server_round(&mut pd1, &node, &files, &mut rng);
        cache_pd_round(&mut node, &mut ports, 1 + rng.below(4));
        assert!(node.servers.held(0).1 <= quotas[0], "server 0 past its quota");
        if round == 40 {
            // Server 1 restarts: what it held and waited for is dropped,
            // and it serves everything again in its next life.
            assert!(!pd1.waits.is_empty() && pd1.client.pins() > 0, "restart with nothing under way");
            let mut todo = pd1.todo;
            todo.extend(pd1.waits.iter().map(|&(_, f)| f));
            pd1 = ServerPd { todo, served: pd1.served, ..server(r1, 8, 2) };
        }
        if pd0.served == total && pd1.served == total && pd0.sending.is_empty() && pd1.sending.is_empty() {
            break;
        }
    }
    // Settle: every release reaches the cache.
    for _ in 0..4 {
        server_round(&mut pd0, &node, &files, &mut rng);
        server_round(&mut pd1, &node, &files, &mut rng);
        cache_pd_round(&mut node, &mut ports, usize::MAX);
    }
    let stats: [ClientStats; 2] = [pd0.client.stats(), pd1.client.stats()];
    for (server, pd) in [&pd0, &pd1].into_iter().enumerate() {
        assert!(pd.waits.is_empty() && pd.todo.is_empty());
        assert_eq!(node.servers.held(server).0, pd.client.pins(), "server {server}: the cache and the client disagree");
        assert_eq!(node.servers.bad_releases(server), 0, "server {server}");
        let st = stats[server];
        assert_eq!((st.unexpected, st.stale_handles), (0, 0), "server {server}: {st:?}");
        assert!(st.hits > st.ready, "server {server}: no answer served two opens: {st:?}");
    }
    assert!(stats[0].over_quota_retries > 0, "server 0 never went past its quota: {:?}", stats[0]);
    assert_eq!((pd0.resets, pd1.resets), (0, 0));
    assert_eq!(node.servers.stats(1).hellos, 2);
    assert!(stats[1].stale > 0, "no answer of server 1's first life was left to discard");
    assert!(node.servers.stats(0).over_quota > 0);
    // The site is larger than the cache: files were loaded again.
    assert!(node.sim.disk.requests > files.len() as u64, "{} block requests", node.sim.disk.requests);
}

/// Serves `pds`' files until every one is served and nothing is held, for
/// at most `limit` rounds; whether they were.
fn serve_all(
    node: &mut Node,
    ports: &mut [Port; 2],
    pds: &mut [ServerPd; 2],
    files: &[(String, u32, Vec<u8>)],
    rng: &mut Rng,
    limit: usize,
) -> bool {
    for _ in 0..limit {
        for pd in pds.iter_mut() {
            server_round(pd, node, files, rng);
        }
        cache_pd_round(node, ports, 1 + rng.below(4));
        if pds.iter().all(|pd| pd.todo.is_empty() && pd.waits.is_empty() && pd.sending.is_empty()) {
            return true;
        }
    }
    false
}

/// The cache PD restarts while both servers are sending from it and
/// waiting for it: the old life takes what was queued and answers what it
/// can, then the new life boots on the same region and queues. Both
/// clients notice the new epoch, reset their transfers, release nothing
/// of the old life, say hello again, discard the old life's answers, and
/// get every remaining file, byte for byte, from the new life.
#[test]
fn a_restarted_cache_pd_serves_both_clients_again_after_their_hellos() {
    let s = generated("restart", 22, 6, 3, 20_000, 20, 60_000);
    let region_size = 1 << 20;
    let mut region = region_of(region_size);
    let quotas = [64, 64];
    let mut rng = Rng(22);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 16, region_size, 22)), quotas);
    let files: Vec<(String, u32, Vec<u8>)> =
        s.files.iter().map(|(path, data)| (path.clone(), node.position(path), data.clone())).collect();
    let head_len = node.sim.cache.arena_start();
    let (p0, r0) = connect(head_len, quotas[0]);
    let (p1, r1) = connect(head_len, quotas[1]);
    let mut ports = [p0, p1];
    let mut pds = [server(r0, 8, 1), server(r1, 8, 1)];
    for pd in pds.iter_mut() {
        let mut order: Vec<usize> = (0..files.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        pd.todo = order.into();
    }
    assert!(!serve_all(&mut node, &mut ports, &mut pds, &files, &mut rng, 12), "done before the restart");
    assert!(pds.iter().all(|pd| !pd.waits.is_empty() && pd.client.pins() > 0), "a restart with nothing under way");
    // The old life takes what is queued and answers what it can (its
    // answers stay in the queues), then dies.
    cache_pd_round(&mut node, &mut ports, 16);
    for r in [r0, r1] {
        r.info.withdraw();
    }
    drop(node);
    let mut node = Node::new(Sim::new(&mut region, Disk::new(&s.image, 16, region_size, 23)), quotas);
    // The new life's ends of the queues (the old life's are unused from here).
    let mut ports = [port(r0), port(r1)];
    // Booting: the servers wait, and send nothing.
    for pd in pds.iter_mut() {
        let before = pd.client.stats().sent;
        server_round(pd, &node, &files, &mut rng);
        assert_eq!((pd.client.stats().sent, pd.resets), (before, 0));
    }
    for (r, quota) in [r0, r1].into_iter().zip(quotas) {
        r.info.publish(2, head_len as u32, quota as u32);
    }
    assert!(serve_all(&mut node, &mut ports, &mut pds, &files, &mut rng, 10_000), "stalled after the restart");
    for _ in 0..3 {
        for pd in pds.iter_mut() {
            server_round(pd, &node, &files, &mut rng);
        }
        cache_pd_round(&mut node, &mut ports, usize::MAX);
    }
    for (server, pd) in pds.iter().enumerate() {
        let st = pd.client.stats();
        assert_eq!((pd.resets, st.epoch_changes), (1, 1), "server {server}");
        assert_eq!(pd.served, files.len(), "server {server}");
        assert_eq!(node.servers.stats(server).hellos, 1, "server {server}: the hello of the new epoch");
        assert_eq!(node.servers.bad_releases(server), 0, "server {server}: a release of the old life's pins");
        assert_eq!(node.servers.held(server).0, pd.client.pins(), "server {server}");
        assert_eq!(st.unexpected, 0, "server {server}: {st:?}");
    }
    assert!(pds.iter().any(|pd| pd.client.stats().stale > 0), "no answer of the old life was left to discard");
}
