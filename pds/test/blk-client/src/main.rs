//! blk-client: exercises the block driver through `blk-protocol`, in
//! phases, each logged for the integration test to check:
//!
//! 1. **hash**: reads its whole window of the disk (`Info::window`: the
//!    sectors the driver lets it use) with [`PIPELINE`] requests of
//!    [`CHUNK_SECTORS`] in flight, hashes it in disk order (SHA-256) as
//!    chunks complete (in any order), and logs the hash;
//! 2. **write**: writes [`pattern`] to [`WRITE_SECTORS`] sectors from
//!    [`WRITE_START`], all requests in flight at once, flushes, reads them
//!    back into other buffers and verifies them;
//! 3. **invalid**: sends a read past the end of the disk, one whose
//!    buffer lies outside the data region, a read of the sector before its
//!    window, a read across the window's start and a write to the disk's
//!    first sector (outside the window), and logs the statuses;
//! 4. **bench**: reads its window again without hashing, between two
//!    log lines the host times (and TSC cycles, logged): the disk is still
//!    served after the refusals.
//!
//! The data region is cut into [`PIPELINE`] buffers of one chunk each; a
//! read sweep puts chunk `i` in buffer `i % PIPELINE`, so a buffer is reused
//! only after its chunk has been consumed.
#![no_std]
#![no_main]

use core::fmt;
use lib_blk_protocol::{
    DiskInfo, Info, Request, RequestProducer, Response, ResponseConsumer, Status, Window, DATA_REGION_SIZE, SECTOR_SIZE,
};
use pds_runtime::{log, ChannelSet, Handler, MemoryRegion};
use sha2::{Digest, Sha256};

pds_runtime::setvar!(blk_request);
pds_runtime::setvar!(blk_response);
pds_runtime::setvar!(blk_info);
pds_runtime::setvar!(blk_data);

// The block driver (`setvar_id="blk"`).
pds_runtime::channel!(DRIVER = "blk");

/// Requests in flight during a read sweep.
const PIPELINE: u64 = 32;
/// Bytes of one buffer: the data region shared out among the pipeline.
const CHUNK: usize = DATA_REGION_SIZE / PIPELINE as usize;
const CHUNK_SECTORS: u64 = (CHUNK / SECTOR_SIZE) as u64;

/// The written range: 512 sectors (256 KiB) from 1 MiB into the disk, in
/// [`WRITE_REQUESTS`] requests.
pub const WRITE_START: u64 = 2048;
pub const WRITE_SECTORS: u64 = 512;
const WRITE_REQUESTS: u64 = 8;
const WRITE_REQUEST_SECTORS: u64 = WRITE_SECTORS / WRITE_REQUESTS;
/// Ids of the write phase's requests: writes, the flush, the read-backs.
const WRITE_ID: u32 = 0x1000;
const FLUSH_ID: u32 = 0x2000;
const READ_BACK_ID: u32 = 0x3000;
/// Where read-backs land: after the written buffers.
const READ_BACK_OFFSET: u64 = WRITE_SECTORS * SECTOR_SIZE as u64;
/// The invalid requests, by index (their ids are `INVALID_ID + index`).
const INVALID: [&str; 5] = [
    "read past the end",
    "buffer outside the data region",
    "read before the window",
    "read across the window's start",
    "write outside the window",
];
const INVALID_ID: u32 = 0x4000;

/// The 8-byte word `word` of sector `lba` in the written range: a tag,
/// the sector number and the word's index, so that a misplaced or torn
/// sector shows.
pub const fn pattern(lba: u64, word: u64) -> u64 {
    0xb10c_0000_0000_0000 | lba << 16 | word
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter, which seL4 leaves
    // readable at user level.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// A read of the whole disk, chunk by chunk, `PIPELINE` chunks in flight.
struct Sweep {
    chunks: u64,
    /// Next chunk to request.
    next_request: u64,
    /// Next chunk to consume (hash) in disk order.
    next_consume: u64,
    /// Bit `i % PIPELINE` set: chunk `i` (not yet consumed) has arrived.
    arrived: u64,
    /// `None` for the bench sweep.
    hasher: Option<Sha256>,
    failures: u64,
    started: u64,
}

impl Sweep {
    /// A sweep over the sectors of `window`.
    fn new(window: &Window, hash: bool) -> Sweep {
        let chunks = window.sectors().div_ceil(CHUNK_SECTORS);
        Sweep {
            chunks,
            next_request: 0,
            next_consume: 0,
            arrived: 0,
            hasher: hash.then(Sha256::new),
            failures: 0,
            started: rdtsc(),
        }
    }

    fn done(&self) -> bool {
        self.next_consume == self.chunks
    }
}

enum Phase {
    WaitReady,
    Hash(Sweep),
    Write { pending: u64 },
    Flush,
    ReadBack { pending: u64 },
    Invalid { answers: [Option<u32>; INVALID.len()] },
    Bench(Sweep),
    Done,
}

struct Client {
    requests: RequestProducer<'static>,
    responses: ResponseConsumer<'static>,
    info: &'static Info,
    data: MemoryRegion,
    disk: DiskInfo,
    /// The sectors the driver lets this client use.
    window: Window,
    phase: Phase,
    /// Requests enqueued and not yet answered.
    outstanding: u64,
    /// Most requests outstanding at once.
    peak: u64,
}

/// The invalid requests with their statuses: `what -> Status; ...`.
struct Answers<'a>(&'a [Option<u32>; INVALID.len()]);

impl fmt::Display for Answers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (what, answer)) in INVALID.iter().zip(self.0).enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            match answer.and_then(Status::from_code) {
                Some(status) => write!(f, "{sep}{what} -> {status:?}")?,
                None => write!(f, "{sep}{what} -> status {answer:?}")?,
            }
        }
        Ok(())
    }
}

/// A SHA-256 digest in hex.
struct Hex([u8; 32]);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Client {
    fn submit(&mut self, request: Request) {
        match self.requests.enqueue(request) {
            Ok(()) => {
                self.outstanding += 1;
                self.peak = self.peak.max(self.outstanding);
            }
            Err(e) => log!("error: cannot enqueue request {}: {e}", request.id),
        }
    }

    /// Requests chunks while buffers are free.
    fn pump(&mut self) {
        let window = self.window;
        let (Phase::Hash(sweep) | Phase::Bench(sweep)) = &mut self.phase else { return };
        let mut batch = [Request::default(); PIPELINE as usize];
        let mut n = 0;
        while sweep.next_request < sweep.chunks && sweep.next_request < sweep.next_consume + PIPELINE {
            let chunk = sweep.next_request;
            let sector = window.start + chunk * CHUNK_SECTORS;
            let count = CHUNK_SECTORS.min(window.end - sector) as u32;
            batch[n] = Request::read(chunk as u32, sector, count, (chunk % PIPELINE) * CHUNK as u64);
            n += 1;
            sweep.next_request += 1;
        }
        for request in &batch[..n] {
            self.submit(*request);
        }
    }

    /// Consumes the chunks that have arrived, in disk order.
    fn consume(&mut self) {
        let sectors_in_window = self.window.sectors();
        let base = self.data.base();
        let (Phase::Hash(sweep) | Phase::Bench(sweep)) = &mut self.phase else { return };
        while !sweep.done() && sweep.arrived & (1 << (sweep.next_consume % PIPELINE)) != 0 {
            let chunk = sweep.next_consume;
            sweep.arrived &= !(1 << (chunk % PIPELINE));
            if let Some(hasher) = &mut sweep.hasher {
                let sectors = CHUNK_SECTORS.min(sectors_in_window - chunk * CHUNK_SECTORS);
                let offset = (chunk % PIPELINE) as usize * CHUNK;
                // SAFETY: the buffer is inside the mapped data region, and
                // no request for it is outstanding: neither the device nor
                // anyone else writes it while the slice lives. Its contents
                // were written by the device before the driver answered, and
                // the response was dequeued with Acquire.
                let bytes = unsafe {
                    core::slice::from_raw_parts((base + offset) as *const u8, sectors as usize * SECTOR_SIZE)
                };
                hasher.update(bytes);
            }
            sweep.next_consume += 1;
        }
    }

    fn on_response(&mut self, response: Response) {
        self.outstanding = self.outstanding.saturating_sub(1);
        let status = response.status();
        match &mut self.phase {
            Phase::Hash(sweep) | Phase::Bench(sweep) => {
                let chunk = u64::from(response.id);
                if chunk >= sweep.next_request || chunk < sweep.next_consume {
                    log!("error: response for chunk {chunk}, which is not in flight");
                    return;
                }
                if status != Some(Status::Ok) {
                    log!("error: reading chunk {chunk}: {status:?}");
                    sweep.failures += 1;
                }
                sweep.arrived |= 1 << (chunk % PIPELINE);
                self.consume();
            }
            Phase::Write { pending } | Phase::ReadBack { pending } => {
                if status != Some(Status::Ok) {
                    log!("error: write-phase request {:#x}: {status:?}", response.id);
                }
                *pending -= 1;
            }
            Phase::Flush => {
                if response.id != FLUSH_ID || status != Some(Status::Ok) {
                    log!("error: flush: {status:?}");
                }
            }
            Phase::Invalid { answers } => match answers.get_mut(response.id.wrapping_sub(INVALID_ID) as usize) {
                Some(answer) => *answer = Some(response.status),
                None => log!("error: unexpected response {:#x}", response.id),
            },
            Phase::WaitReady | Phase::Done => log!("error: unexpected response {:#x}", response.id),
        }
    }

    /// Moves to the next phase when this one is complete, starting it.
    fn advance(&mut self) {
        loop {
            let next = match &mut self.phase {
                Phase::WaitReady => match (self.info.get(), self.info.window()) {
                    (Some(disk), Some(window)) => {
                        self.disk = disk;
                        self.window = window;
                        log!(
                            "disk: {} sectors, max {} per request; window: sectors {}..{}",
                            disk.capacity,
                            disk.max_request_sectors,
                            window.start,
                            window.end
                        );
                        log!("read: start ({} KiB requests, {PIPELINE} in flight)", CHUNK / 1024);
                        Phase::Hash(Sweep::new(&window, true))
                    }
                    _ => return,
                },
                Phase::Hash(sweep) if sweep.done() => {
                    let cycles = rdtsc() - sweep.started;
                    let digest = Hex(sweep.hasher.take().map(|h| h.finalize().into()).unwrap_or_default());
                    let bytes = self.window.sectors() * SECTOR_SIZE as u64;
                    let failures = sweep.failures;
                    log!("read: {bytes} bytes, sha256 {digest}, {cycles} TSC cycles, {} requests in flight at most, {failures} failed", self.peak);
                    self.start_write()
                }
                Phase::Write { pending: 0 } => {
                    self.submit(Request::flush(FLUSH_ID));
                    Phase::Flush
                }
                Phase::Flush if self.outstanding == 0 => {
                    for i in 0..WRITE_REQUESTS {
                        let sector = WRITE_START + i * WRITE_REQUEST_SECTORS;
                        let offset = READ_BACK_OFFSET + i * WRITE_REQUEST_SECTORS * SECTOR_SIZE as u64;
                        self.submit(Request::read(
                            READ_BACK_ID + i as u32,
                            sector,
                            WRITE_REQUEST_SECTORS as u32,
                            offset,
                        ));
                    }
                    Phase::ReadBack { pending: WRITE_REQUESTS }
                }
                Phase::ReadBack { pending: 0 } => {
                    let verdict = if self.verify() { "OK" } else { "MISMATCH" };
                    log!("write: {WRITE_SECTORS} sectors at {WRITE_START} in {WRITE_REQUESTS} requests in flight, flushed, read back: {verdict}");
                    let (start, id) = (self.window.start, |i: u32| INVALID_ID + i);
                    self.submit(Request::read(id(0), self.disk.capacity, 1, 0));
                    self.submit(Request::read(id(1), start, 1, DATA_REGION_SIZE as u64));
                    // The sector before the window (the disk's last one if
                    // the window starts at 0: outside it too, unless the
                    // window is the whole disk).
                    let before = start.checked_sub(1).unwrap_or(self.disk.capacity - 1);
                    self.submit(Request::read(id(2), before, 1, 0));
                    self.submit(Request::read(id(3), before, 2, 0));
                    // The first sector of the disk, overwritten with the
                    // pattern if the driver let it through.
                    let outside = if start > 0 { 0 } else { before };
                    self.submit(Request::write(id(4), outside, 1, 0));
                    Phase::Invalid { answers: [None; INVALID.len()] }
                }
                Phase::Invalid { answers } if answers.iter().all(Option::is_some) => {
                    log!("invalid: {}", Answers(answers));
                    log!("bench: start");
                    Phase::Bench(Sweep::new(&self.window, false))
                }
                Phase::Bench(sweep) if sweep.done() => {
                    let cycles = rdtsc() - sweep.started;
                    let bytes = self.window.sectors() * SECTOR_SIZE as u64;
                    log!("bench: read {bytes} bytes in {cycles} TSC cycles, {} failed", sweep.failures);
                    log!("done");
                    Phase::Done
                }
                _ => {
                    self.pump();
                    return;
                }
            };
            self.phase = next;
        }
    }

    /// Fills the write buffers with the pattern and sends every write.
    fn start_write(&mut self) -> Phase {
        if !self.window.contains(WRITE_START, WRITE_SECTORS) || self.disk.read_only {
            log!("write: skipped (outside the window or read-only)");
            return Phase::ReadBack { pending: 0 };
        }
        for i in 0..WRITE_SECTORS * SECTOR_SIZE as u64 / 8 {
            let (lba, word) = (WRITE_START + i / 64, i % 64);
            self.data.write::<u64>(i as usize * 8, pattern(lba, word));
        }
        for i in 0..WRITE_REQUESTS {
            let sector = WRITE_START + i * WRITE_REQUEST_SECTORS;
            let offset = i * WRITE_REQUEST_SECTORS * SECTOR_SIZE as u64;
            self.submit(Request::write(WRITE_ID + i as u32, sector, WRITE_REQUEST_SECTORS as u32, offset));
        }
        Phase::Write { pending: WRITE_REQUESTS }
    }

    /// Whether the read-back buffers hold the pattern.
    fn verify(&self) -> bool {
        (0..WRITE_SECTORS * SECTOR_SIZE as u64 / 8).all(|i| {
            let (lba, word) = (WRITE_START + i / 64, i % 64);
            self.data.read::<u64>(READ_BACK_OFFSET as usize + i as usize * 8) == Some(pattern(lba, word))
        })
    }

    /// Everything pending: responses, the next requests, signals.
    fn run(&mut self) {
        loop {
            loop {
                match self.responses.dequeue() {
                    Ok(Some(response)) => self.on_response(response),
                    Ok(None) => break,
                    Err(e) => {
                        log!("error: response queue: {e}");
                        return;
                    }
                }
            }
            self.advance();
            if self.requests.should_signal() {
                DRIVER.get().notify();
            }
            if matches!(self.phase, Phase::WaitReady | Phase::Done) {
                return;
            }
            match self.responses.request_signal_if_empty() {
                Ok(false) => continue,
                Ok(true) => return,
                Err(e) => {
                    log!("error: response queue: {e}");
                    return;
                }
            }
        }
    }
}

impl Handler for Client {
    fn init() -> Self {
        let vars = (blk_request.get(), blk_response.get(), blk_info.get());
        let (Some(request), Some(response), Some(info)) = vars else {
            panic!("blk_request, blk_response and blk_info must be mapped");
        };
        // SAFETY: the description maps `blk_data`, DATA_REGION_SIZE bytes,
        // read-write at `blk_data`.
        let data = unsafe { MemoryRegion::from_var(&blk_data, DATA_REGION_SIZE) }.expect("blk_data must be mapped");
        // SAFETY: the queue regions are pages mapped read-write for the PD's
        // life and used only through these handles; `blk_info` is a page
        // mapped (at least) readable, only read here.
        let (requests, responses, info) = unsafe {
            (
                RequestProducer::new(request as *mut u8),
                ResponseConsumer::new(response as *mut u8, ()),
                Info::at(info as *mut u8),
            )
        };
        let disk = DiskInfo { capacity: 0, read_only: true, max_request_sectors: 0 };
        let window = Window { start: 0, end: 0 };
        let mut client =
            Client { requests, responses, info, data, disk, window, phase: Phase::WaitReady, outstanding: 0, peak: 0 };
        // The driver may already be up; if not, it notifies when it is.
        client.run();
        client
    }

    fn notified(&mut self, _channels: ChannelSet) {
        self.run();
    }
}

pds_runtime::protection_domain!(Client);
