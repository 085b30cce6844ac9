//! A server PD's view of the file cache PD (`fs/cache`): [`CacheStore`],
//! the site image (`fs/FORMAT.md`) whose region the server maps read-only
//! and whose protocol is `lib-cache-protocol`'s. httpd and ftpd serve
//! through it; each implements its protocol's store trait over
//! [`CacheStore::open`] (httpd-core's `Store`, ftpd-core's `FtpStore`).
//!
//! # The contract
//!
//! The image's index is in the region once the cache has booted;
//! [`CacheStore::poll`] parses it ([`CacheStore::image`]) and lookups
//! answer from it (for HTTP: [`http_core::Site`]). A file's *data* may
//! not be in memory: before the server sends the first byte of a file it
//! asks [`CacheStore::open`]:
//!
//! - [`Open::Ready`]: the data is in memory and verified; the pin keeps it
//!   there until [`Pins::release`]. The server holds it while it sends
//!   and gives it back when the data is sent or the connection ends.
//! - [`Open::Wait`]: not now (being read from the disk, or no room until
//!   a pin is released). The open is repeated once
//!   [`Files::may_retry`] says something happened that may change
//!   the answer.
//! - [`Open::Fail`]: the data cannot be served ([`Failure`]: corrupt,
//!   unreadable, too large for the cache, over this server's quota): not
//!   a byte of the file is sent. Counted in [`CacheStore::failures`]; the
//!   cache PD logs the file.
//!
//! The pin's bytes go to the wire in place (the region is the NIC's
//! `send_from` window, [`Pins::region_offset`]) with the image's
//! precomputed piece sums ([`Pins::sum`]).
#![no_std]

#[cfg(test)]
extern crate std;

use core::cell::Cell;
use fs_format::Image;
use http_core::{FileInfo, Lookup, Site};
use lib_cache_protocol::client::{Client, Config, Handle, Opened, Polled, WaitToken};
pub use lib_cache_protocol::region::CacheRegion;
use lib_cache_protocol::{Counters, Info, Kind};
use net_serve::inplace::{Files, Pins};

/// The answer to [`CacheStore::open`] (see the module docs).
#[derive(Debug, PartialEq, Eq)]
pub enum Open<P, W> {
    Ready(P),
    Wait(W),
    Fail(Failure),
}

/// Why a file cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Its data does not match the image's hash.
    Corrupt,
    /// The disk failed to read it.
    IoError,
    /// Larger than the cache.
    TooLarge,
    /// This server holds its share of the cache (`microkit.system`'s
    /// quota): it may succeed once pins go back.
    OverQuota,
    /// Not a file of the index, or an answer that makes no sense.
    Other,
}

/// Files the client tracks at once (pinned, being opened, or owing a
/// failure): one entry each (`lib_cache_protocol::client`).
pub const CLIENT_FILES: usize = 1024;
/// Pins kept with no user (hot files: a request for one costs no message
/// to the cache); the cache's quota bounds them too.
pub const KEEP_PINS: usize = 256;

/// [`CacheStore`]'s hold on a file: the client's handle, where the file
/// lies in the region, and its piece sums from the index (which stays in
/// the region for good), taken once at open rather than per segment.
#[derive(Debug, PartialEq, Eq)]
pub struct CachePin<'h> {
    handle: Handle,
    offset: usize,
    len: usize,
    sums: &'h [u8],
}

/// Where the store stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Waiting for the cache PD (its boot, the hello's answer).
    Starting,
    /// The index is parsed and opens go: lookups and opens are answered.
    Serving,
    /// The cache refused the image (its log says why): nothing will be
    /// served.
    Refused,
}

/// The site image through the file cache PD: lookups in the index, which
/// the server parses from the region once the cache publishes it; file
/// data by the client's opens, pins shared and kept (module docs of
/// `lib_cache_protocol::client`).
pub struct CacheStore<'h, R> {
    client: Client<'h, CLIENT_FILES>,
    info: &'h Info,
    region: R,
    image: Option<Image<'h>>,
    /// Answers taken so far: a change may wake waiting connections.
    events: u64,
    /// Opens the cache failed, by what it said, for the log.
    pub failures: Failures,
    /// The index did not parse (the cache said it was verified: logged
    /// once, nothing served).
    pub bad_head: bool,
    /// File bytes read to checksum segments that do not cover whole
    /// pieces (the precomputed sums cover the rest).
    sum_read_bytes: Cell<u64>,
}

/// Opens the cache failed, by kind (the cache PD logs each file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    pub corrupt: u64,
    pub io_error: u64,
    pub too_large: u64,
    pub over_quota: u64,
    /// Answers that make no sense for an open (`NoSuchFile` for a file of
    /// the index, `BadRequest`), and Ready answers outside the region.
    pub other: u64,
}

impl<'h, R: CacheRegion<'h>> CacheStore<'h, R> {
    /// A store over the cache PD's queues and `info`, for this PD's `life`
    /// (`pds_runtime::restarts`), reading files from `region`.
    pub fn new(
        requests: lib_cache_protocol::RequestProducer<'h>,
        responses: lib_cache_protocol::ResponseConsumer<'h>,
        info: &'h Info,
        life: u32,
        region: R,
    ) -> Self {
        CacheStore {
            client: Client::new(requests, responses, info, life, Config { keep: KEEP_PINS }),
            info,
            region,
            image: None,
            events: 0,
            failures: Failures::default(),
            bad_head: false,
            sum_read_bytes: Cell::new(0),
        }
    }

    /// Takes the cache's answers and sends what is owed
    /// ([`Client::poll`]); parses the index once the client is live. When
    /// `epoch_changed`, every pin is void: the caller ends every transfer
    /// that reads from the cache.
    pub fn poll(&mut self) -> Polled {
        let polled = self.client.poll();
        self.events += polled.answers as u64;
        if polled.epoch_changed {
            self.events += 1;
        }
        if self.image.is_none() && !self.bad_head && self.client.is_live() {
            let head = self.info.read().and_then(|i| self.region.head(i.head_len as usize));
            match head.map(Image::parse) {
                Some(Ok(image)) => self.image = Some(image),
                _ => self.bad_head = true,
            }
        }
        polled
    }

    /// Where the store stands.
    pub fn availability(&self) -> Availability {
        if self.info.refused() || self.bad_head {
            Availability::Refused
        } else if self.image.is_some() && self.client.is_live() {
            Availability::Serving
        } else {
            Availability::Starting
        }
    }

    /// The index, once parsed.
    pub fn image(&self) -> Option<&Image<'h>> {
        self.image.as_ref()
    }

    /// Answers taken and epoch changes so far: a change may wake waiting
    /// connections.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Whether the cache must be notified now (requests were queued since
    /// the last time it was, and it asked; or answers were read while
    /// requests are still queued: `lib-cache-protocol`, "Queues and
    /// signalling").
    pub fn should_signal(&mut self) -> bool {
        self.client.should_signal()
    }

    /// Asks the cache to notify when it answers; `true` if nothing is
    /// waiting to be taken (the PD may sleep).
    pub fn request_signal_if_empty(&mut self) -> bool {
        self.client.request_signal_if_empty()
    }

    /// The client's counters.
    pub fn client_stats(&self) -> lib_cache_protocol::client::ClientStats {
        self.client.stats()
    }

    /// The cache PD's counters as it last published them.
    pub fn counters(&self) -> Counters {
        self.info.counters()
    }

    /// File bytes read to checksum segments (see [`Pins::sum`]).
    pub fn sum_read_bytes(&self) -> u64 {
        self.sum_read_bytes.get()
    }

    /// Asks for the data of the file at `position` in the index (module
    /// docs).
    pub fn open(&mut self, position: u32) -> Open<CachePin<'h>, WaitToken> {
        let Some(record) = self.image.as_ref().and_then(|im| im.record(position)) else {
            return Open::Fail(Failure::Other);
        };
        match self.client.open(position) {
            Opened::Ready { handle, offset } => {
                let region_len = self.region.bytes().len() as u64;
                let fits = offset.checked_add(record.size).is_some_and(|end| end <= region_len);
                match (usize::try_from(offset), usize::try_from(record.size), fits) {
                    (Ok(offset), Ok(len), true) => Open::Ready(CachePin { handle, offset, len, sums: record.sums }),
                    _ => {
                        // The cache's word, not to be trusted: a range
                        // outside the region is never read.
                        self.client.release(handle);
                        self.failures.other += 1;
                        Open::Fail(Failure::Other)
                    }
                }
            }
            Opened::Wait(token) => Open::Wait(token),
            Opened::Fail(kind) => {
                let f = &mut self.failures;
                let (count, failure) = match kind {
                    Kind::Corrupt => (&mut f.corrupt, Failure::Corrupt),
                    Kind::IoError => (&mut f.io_error, Failure::IoError),
                    Kind::TooLarge => (&mut f.too_large, Failure::TooLarge),
                    Kind::OverQuota => (&mut f.over_quota, Failure::OverQuota),
                    _ => (&mut f.other, Failure::Other),
                };
                *count += 1;
                Open::Fail(failure)
            }
        }
    }

    /// The pinned file's bytes in the region.
    fn data(&self, pin: &CachePin<'h>) -> Option<&[u8]> {
        self.region.bytes().get(pin.offset..pin.offset.checked_add(pin.len)?)
    }
}

/// The value of the `ETag` field in stored header fields.
fn etag_of(fields: &[u8]) -> &[u8] {
    fields
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"ETag: "))
        .map_or(&[][..], |v| v.strip_suffix(b"\r").unwrap_or(v))
}

impl<'h, R: CacheRegion<'h>> Site for CacheStore<'h, R> {
    /// The file's position in the index.
    type Handle = u32;

    fn lookup(&self, path: &str) -> Lookup<'_, u32> {
        let Some(image) = &self.image else { return Lookup::NotFound };
        if let Some(position) = image.position(path.as_bytes()) {
            let Some(record) = image.record(position) else { return Lookup::NotFound };
            let fields = record.fields();
            let info = FileInfo {
                len: record.size,
                last_modified: record.last_modified,
                etag: etag_of(fields),
                header: fields,
            };
            return Lookup::File(info, position);
        }
        if image.is_directory(path.as_bytes()) {
            return Lookup::Directory;
        }
        Lookup::NotFound
    }
}

impl<'h, R: CacheRegion<'h>> Files for CacheStore<'h, R> {
    type Wait = WaitToken;

    fn may_retry(&self, wait: &WaitToken) -> bool {
        self.client.may_retry(wait)
    }

    fn read(&self, pin: &CachePin<'h>, offset: u64, buf: &mut [u8]) -> usize {
        let Some(data) = self.data(pin) else { return 0 };
        let Ok(offset) = usize::try_from(offset) else { return 0 };
        let Some(rest) = data.get(offset..) else { return 0 };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        n
    }

    fn abandon(&mut self, wait: WaitToken) {
        self.client.abandon(wait);
    }
}

impl<'h, R: CacheRegion<'h>> Pins for CacheStore<'h, R> {
    type Pin = CachePin<'h>;

    /// The cache region is the NIC's `send_from` window: file data is sent
    /// where the disk put it.
    fn region_offset(&self, pin: &CachePin<'h>) -> Option<usize> {
        Some(pin.offset)
    }

    /// The image's precomputed piece sums where the range covers whole
    /// pieces (`fs_format::sums::segment_sum`), the loaded (verified)
    /// data for the partial pieces at its ends.
    fn sum(&self, pin: &CachePin<'h>, offset: u64, len: usize) -> Option<u16> {
        let data = self.data(pin)?;
        let read = |at: u64, max: usize| {
            let at = usize::try_from(at).ok()?;
            let bytes = data.get(at..at.checked_add(max)?.min(data.len()))?;
            self.sum_read_bytes.set(self.sum_read_bytes.get() + bytes.len() as u64);
            Some(bytes)
        };
        fs_format::sums::segment_sum(pin.len as u64, pin.sums, offset, len as u64, read).ok()
    }

    fn release(&mut self, pin: CachePin<'h>) {
        self.client.release(pin.handle);
        self.events += 1;
    }
}

#[cfg(test)]
mod tests {
    //! [`CacheStore`] against a small fake of the file cache PD over real
    //! queues: the site image itself is the region, and the fake answers
    //! an open with the file's place in the image, or with the failure the
    //! test gives that file.

    use super::*;
    use lib_cache_protocol::{
        Op, RequestConsumer, RequestProducer, Response, ResponseConsumer, ResponseProducer, QUEUE_REGION_SIZE,
    };
    use std::boxed::Box;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    #[repr(C, align(4096))]
    struct Page([u8; QUEUE_REGION_SIZE]);

    fn page() -> *mut u8 {
        Box::leak(Box::new(Page([0; QUEUE_REGION_SIZE]))).0.as_mut_ptr()
    }

    /// The image as the region.
    struct Bytes(&'static [u8]);

    impl CacheRegion<'static> for Bytes {
        fn bytes(&self) -> &[u8] {
            self.0
        }
        fn head(&self, len: usize) -> Option<&'static [u8]> {
            self.0.get(..len)
        }
    }

    struct Fake {
        requests: RequestConsumer<'static>,
        responses: ResponseProducer<'static>,
        /// What each open of a file position gets (default: `Ready` at its
        /// place in the image).
        answers: BTreeMap<u32, Kind>,
        /// Files whose `Ready` points past the region.
        outside: Vec<u32>,
        places: Vec<u64>,
        released: Vec<u32>,
        next_pin: u32,
    }

    impl Fake {
        /// Answers every request queued.
        fn serve(&mut self) {
            while let Some(r) = self.requests.dequeue().unwrap() {
                let answer = match r.op() {
                    Some(Op::Hello) => Response::other(r.tag, Kind::Hello),
                    Some(Op::Release) => {
                        self.released.push(r.arg);
                        continue;
                    }
                    Some(Op::Open) => match self.answers.get(&r.arg) {
                        Some(&kind) => Response::other(r.tag, kind),
                        None => {
                            self.next_pin += 1;
                            let place =
                                if self.outside.contains(&r.arg) { 1 << 40 } else { self.places[r.arg as usize] };
                            Response::ready(r.tag, self.next_pin, place)
                        }
                    },
                    None => Response::other(r.tag, Kind::BadRequest),
                };
                self.responses.enqueue(answer).unwrap();
            }
        }
    }

    /// A two-file site, its image, and a store over a fake cache of it.
    fn setup(name: &str) -> (CacheStore<'static, Bytes>, Fake, &'static Info, Vec<u8>, Vec<u8>) {
        let root = std::env::temp_dir().join(std::format!("fs-cache-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let index = b"<html><body>hello</body></html>\n".to_vec();
        let big: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        std::fs::write(root.join("index.html"), &index).unwrap();
        std::fs::write(root.join("big.bin"), &big).unwrap();
        let out = root.join("site.img");
        fs_builder::build(&root, &out, &fs_builder::Options::default()).unwrap();
        let image: &'static [u8] = Box::leak(std::fs::read(&out).unwrap().into_boxed_slice());
        let _ = std::fs::remove_dir_all(&root);
        let parsed = Image::parse(image).unwrap();
        let places = (0..parsed.len()).map(|i| parsed.record(i).unwrap().data_offset()).collect();
        // SAFETY: an all-zero `Info` is valid (atomics of zero).
        let info: &'static Info = Box::leak(Box::new(unsafe { core::mem::zeroed::<Info>() }));
        let (rq, rs) = (page(), page());
        // SAFETY: each page is aligned, large enough, lives for the process
        // and is used only through these handles.
        let (tx, rx, ctx, crx) = unsafe {
            (
                RequestProducer::new(rq),
                RequestConsumer::new(rq, ()),
                ResponseProducer::new(rs),
                ResponseConsumer::new(rs, ()),
            )
        };
        let fake = Fake {
            requests: rx,
            responses: ctx,
            answers: BTreeMap::new(),
            outside: Vec::new(),
            places,
            released: Vec::new(),
            next_pin: 0,
        };
        let store = CacheStore::new(tx, crx, info, 0, Bytes(image));
        (store, fake, info, index, big)
    }

    /// Polls and lets the fake answer until the store serves.
    fn start(store: &mut CacheStore<'static, Bytes>, fake: &mut Fake, info: &Info) {
        assert_eq!(store.availability(), Availability::Starting);
        assert!(matches!(store.lookup("/index.html"), Lookup::NotFound), "no index before the cache is ready");
        let head_len = Image::parse(store.region.bytes()).unwrap().superblock().head_len() as u32;
        info.publish(1, head_len, 100);
        for _ in 0..3 {
            store.poll();
            fake.serve();
        }
        store.poll();
        assert_eq!(store.availability(), Availability::Serving);
    }

    /// Opens `file` until the answer is final.
    fn open(store: &mut CacheStore<'static, Bytes>, fake: &mut Fake, file: u32) -> Open<CachePin<'static>, WaitToken> {
        for _ in 0..4 {
            match store.open(file) {
                Open::Wait(token) => {
                    fake.serve();
                    store.poll();
                    assert!(store.may_retry(&token));
                }
                other => return other,
            }
        }
        panic!("file {file} never answered");
    }

    fn position(store: &CacheStore<'static, Bytes>, path: &str) -> u32 {
        match store.lookup(path) {
            Lookup::File(_, position) => position,
            _ => panic!("{path} is not a file"),
        }
    }

    #[test]
    fn files_are_read_and_summed_where_the_cache_put_them_and_a_hot_one_needs_no_message() {
        let (mut store, mut fake, info, index, big) = setup("ready");
        start(&mut store, &mut fake, info);
        assert!(matches!(store.lookup("/"), Lookup::Directory));
        assert!(matches!(store.lookup("/nope"), Lookup::NotFound));
        let Lookup::File(file_info, _) = store.lookup("/big.bin") else { panic!() };
        assert_eq!(file_info.len, big.len() as u64);
        for (path, want) in [("/index.html", &index), ("/big.bin", &big)] {
            let file = position(&store, path);
            let Open::Ready(pin) = open(&mut store, &mut fake, file) else { panic!("{path}") };
            let mut got = std::vec![0u8; want.len() + 10];
            assert_eq!(store.read(&pin, 0, &mut got), want.len());
            assert_eq!(&got[..want.len()], &want[..], "{path}");
            assert_eq!(store.read(&pin, want.len() as u64, &mut got), 0, "past the end");
            let sum = !net_packet::checksum::checksum(want);
            assert_eq!(Pins::sum(&store, &pin, 0, want.len()), Some(sum), "{path}: the precomputed sums");
            if let Some(tail) = want.get(1461..) {
                let sum = !net_packet::checksum::checksum(tail);
                assert_eq!(Pins::sum(&store, &pin, 1461, tail.len()), Some(sum), "{path}: an odd start");
            }
            store.release(pin);
        }
        // Kept: opening again costs no message, and nothing was released.
        let sent = store.client_stats().sent;
        let file = position(&store, "/big.bin");
        assert!(matches!(store.open(file), Open::Ready(_)));
        assert_eq!(store.client_stats().sent, sent);
        assert!(fake.released.is_empty());
    }

    #[test]
    fn failures_are_counted_by_kind_and_an_offset_outside_the_region_is_never_read() {
        let (mut store, mut fake, info, _, _) = setup("fail");
        start(&mut store, &mut fake, info);
        let (index, big) = (position(&store, "/index.html"), position(&store, "/big.bin"));
        fake.answers.insert(index, Kind::Corrupt);
        assert!(matches!(open(&mut store, &mut fake, index), Open::Fail(Failure::Corrupt)));
        assert_eq!(store.failures.corrupt, 1);
        fake.answers.insert(index, Kind::OverQuota);
        assert!(matches!(open(&mut store, &mut fake, index), Open::Fail(Failure::OverQuota)));
        assert_eq!(store.failures.over_quota, 1);
        fake.answers.clear();
        fake.outside.push(big);
        assert!(matches!(open(&mut store, &mut fake, big), Open::Fail(Failure::Other)));
        assert_eq!(store.failures.other, 1);
        // The client still holds that pin (kept: its file is answered
        // from it without a message), and the store refuses it again
        // rather than read outside the region.
        let sent = store.client_stats().sent;
        assert!(matches!(store.open(big), Open::Fail(Failure::Other)));
        assert_eq!((store.failures.other, store.client_stats().sent), (2, sent));
    }

    #[test]
    fn a_refused_image_is_refused_and_a_head_that_does_not_parse_too() {
        let (mut store, _fake, info, _, _) = setup("refused");
        info.refuse();
        store.poll();
        assert_eq!(store.availability(), Availability::Refused);
        let (mut store, mut fake, info, _, _) = setup("bad-head");
        // The cache says ready with a head of 100 bytes: not an index.
        info.publish(1, 100, 10);
        for _ in 0..3 {
            store.poll();
            fake.serve();
        }
        store.poll();
        assert!(store.bad_head);
        assert_eq!(store.availability(), Availability::Refused);
        assert!(matches!(store.lookup("/index.html"), Lookup::NotFound));
    }
}
