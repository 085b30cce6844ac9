//! The cache over the block driver's queues: the boot (superblock and
//! index), then the loads, as one object its PD pumps (httpd's store
//! today; the file cache PD's, `serve`, next). It owns what both need: the
//! cache region, the boot in progress or the booted [`Cache`], the image's
//! refusal, and the count of requests sent (so that the PD notifies the
//! driver only when there is something new).
//!
//! [`BlockClient`] is the PD's end of the driver's queues, with the sync
//! that makes them the client's across restarts of either side
//! (`lib_blk_protocol`, "Starting over"); [`DiskCache::run`] moves all the
//! traffic between them until there is nothing left to do.
//!
//! **Where the image lies.** The image starts at the first sector of the
//! client's window (`lib_blk_protocol::Window`, which the driver publishes
//! beside the disk): the window is the site partition, wherever the disk's
//! layout puts it (sector 0 on a disk that is only the image; 1 MiB in on
//! the deployed layout, after the partition table and the boot loader).
//! The boot and the cache number sectors from the image's start, over a
//! disk of the window's length; the requests they send are moved by the
//! window's first sector here, as they are enqueued ([`Shifted`]), since
//! the driver numbers sectors as the disk does.

use crate::queues::{send_requests, take_boot_responses, take_responses, BootQueueError, Requester};
use crate::{Boot, BootStatus, Cache, CacheError, Completion, Config};
use lib_blk_protocol::queue::QueueError;
use lib_blk_protocol::{
    ClientSync, DiskInfo, Info, Request, RequestProducer, Response, ResponseConsumer, SyncPoll, Window,
};
pub use lib_cache_protocol::region::CacheRegion;

/// What a [`DiskCache::pump`] changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pumped {
    /// Nothing the PD must act on.
    Nothing,
    /// The image head was read and verified: start serving.
    Booted,
    /// The image was refused (see [`CacheError`]'s message).
    Refused(CacheError),
}

/// The cache of the image on the driver's disk, booting or booted.
pub struct DiskCache<'h, R, const GROUPS: usize, const INFLIGHT: usize, const FILES: usize> {
    region: R,
    boot: Option<Boot>,
    cache: Option<Cache<'h, GROUPS, INFLIGHT, FILES>>,
    refused: Option<CacheError>,
    /// Block requests enqueued so far: the driver is notified only after
    /// some were (a notification with nothing new woke it for nothing, and
    /// its answer woke the PD for nothing, round and round).
    requests_sent: u64,
    /// The disk's sector where the image starts: the window's first,
    /// taken when the boot starts.
    first_sector: u64,
}

/// The sectors of the image: the window, the disk's part the client may
/// read (`window`, clipped to the disk by the driver and here again), seen
/// as a disk of its own, and the disk's sector where it starts. An empty
/// window is a disk of no sectors, which the boot refuses.
pub fn image_disk(disk: DiskInfo, window: Window) -> (DiskInfo, u64) {
    let window = window.clip(disk.capacity);
    (DiskInfo { capacity: window.sectors(), ..disk }, window.start)
}

/// A [`Requester`] whose requests are moved `by` sectors: the image's
/// sector numbers (from its start) made the disk's.
struct Shifted<'r, T> {
    inner: &'r mut T,
    by: u64,
}

impl<T: Requester> Requester for Shifted<'_, T> {
    fn next_request(&mut self) -> Option<Request> {
        let mut request = self.inner.next_request()?;
        match request.sector.checked_add(self.by) {
            Some(sector) => request.sector = sector,
            // Past the end of any disk: answered as an I/O error.
            None => {
                self.inner.unsent(request);
                return None;
            }
        }
        Some(request)
    }

    fn unsent(&mut self, mut request: Request) {
        request.sector = request.sector.saturating_sub(self.by);
        self.inner.unsent(request);
    }
}

impl<'h, R: CacheRegion<'h>, const GROUPS: usize, const INFLIGHT: usize, const FILES: usize>
    DiskCache<'h, R, GROUPS, INFLIGHT, FILES>
{
    /// A cache over `region`, waiting for the disk.
    pub fn new(region: R) -> Self {
        DiskCache { region, boot: None, cache: None, refused: None, requests_sent: 0, first_sector: 0 }
    }

    /// The cache, once booted.
    pub fn cache(&self) -> Option<&Cache<'h, GROUPS, INFLIGHT, FILES>> {
        self.cache.as_ref()
    }

    /// The booted cache and the region, to open files (`Cache::open` reads
    /// the arena from the region).
    pub fn parts(&mut self) -> Option<(&mut Cache<'h, GROUPS, INFLIGHT, FILES>, &R)> {
        Some((self.cache.as_mut()?, &self.region))
    }

    fn refuse(&mut self, e: CacheError) -> Pumped {
        self.boot = None;
        self.refused = Some(e);
        Pumped::Refused(e)
    }

    /// Moves the block traffic: starts the boot once the driver has
    /// published the disk and the client's window (`disk`), on the
    /// window's sectors ([`image_disk`]); sends every request the boot or the
    /// cache may send and takes every response, telling `on` of each
    /// completion of a load. The caller then signals the driver if the
    /// request queue asks for it, and calls again while the response
    /// queue is not empty.
    ///
    /// `Err` if the response queue is corrupt (the driver wrote bogus
    /// indices): during the boot the image is refused; afterwards the
    /// loads in flight may never complete, which the caller logs.
    fn pump(
        &mut self,
        disk: Option<(DiskInfo, Window)>,
        requests: &mut RequestProducer<'_>,
        responses: &mut ResponseConsumer<'_>,
        mut on: impl FnMut(Completion),
    ) -> Result<Pumped, QueueError<Response>> {
        if self.refused.is_some() {
            return Ok(Pumped::Nothing);
        }
        if self.cache.is_none() && self.boot.is_none() {
            let Some((disk, window)) = disk else { return Ok(Pumped::Nothing) };
            let (disk, first_sector) = image_disk(disk, window);
            self.first_sector = first_sector;
            match Boot::new(Config { region_size: self.region.bytes().len(), disk }) {
                Ok(boot) => self.boot = Some(boot),
                Err(e) => return Ok(self.refuse(e)),
            }
        }
        let mut pumped = Pumped::Nothing;
        if let Some(boot) = &mut self.boot {
            loop {
                match take_boot_responses(boot, responses, self.region.bytes()) {
                    Ok(BootStatus::Pending) => {}
                    Ok(BootStatus::Ready) => break,
                    Err(BootQueueError::Boot(e)) => return Ok(self.refuse(e)),
                    Err(BootQueueError::Queue(q)) => {
                        self.refuse(CacheError::Io { status: lib_blk_protocol::Status::IoError as u32 });
                        return Err(q);
                    }
                }
                let sent = send_requests(&mut Shifted { inner: boot, by: self.first_sector }, requests);
                self.requests_sent += sent as u64;
                if sent == 0 {
                    return Ok(Pumped::Nothing);
                }
            }
            let Some(boot) = self.boot.take() else { return Ok(Pumped::Nothing) };
            let Some(head) = boot.head_area().and_then(|len| self.region.head(len)) else {
                return Ok(self.refuse(CacheError::BootIncomplete));
            };
            match boot.finish(head) {
                Ok(cache) => self.cache = Some(cache),
                Err(e) => return Ok(self.refuse(e)),
            }
            pumped = Pumped::Booted;
        }
        let Some(cache) = &mut self.cache else { return Ok(pumped) };
        loop {
            take_responses(cache, responses, &mut on)?;
            let sent = send_requests(&mut Shifted { inner: cache, by: self.first_sector }, requests);
            self.requests_sent += sent as u64;
            if sent == 0 {
                return Ok(pumped);
            }
        }
    }

    /// The block driver was restarted (`lib_blk_protocol`, "Starting
    /// over"): what was in flight will never be answered. A boot in
    /// progress starts again (its requests are sent anew once the client
    /// has synced); in a booted cache the loads in flight fail
    /// ([`Cache::fail_in_flight`]: their waiters get the error, the next
    /// open reads again), each told to `on`. Returns how many requests
    /// were lost.
    fn driver_restarted(&mut self, on: impl FnMut(Completion)) -> usize {
        if self.boot.take().is_some() {
            return 0;
        }
        let Some(cache) = &mut self.cache else { return 0 };
        cache.fail_in_flight(on)
    }
}

/// The block driver's queues and published disk, as a client PD holds them.
pub struct BlockClient<'q> {
    pub requests: RequestProducer<'q>,
    pub responses: ResponseConsumer<'q>,
    pub info: &'q Info,
    /// Whose the queues are, across restarts of either side.
    sync: ClientSync,
    /// The response queue was found corrupt: no more disk traffic.
    broken: bool,
}

/// What [`DiskCache::run`] tells its PD, to log or act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockEvent {
    /// The image head was read and verified: start serving.
    Booted,
    /// The image was refused (its error says why): nothing will be served.
    Refused(CacheError),
    /// The driver was restarted: `lost` requests in flight were never
    /// answered (their loads failed); the queues are synced again.
    DriverRestarted { lost: usize },
    /// The response queue is corrupt (the driver wrote bogus indices): no
    /// more disk reads. Told once.
    Broken(QueueError<Response>),
}

impl<'q> BlockClient<'q> {
    /// The client end of the queues, for the client's life `life` (its
    /// restart count: `pds_runtime::restarts`).
    pub fn new(requests: RequestProducer<'q>, responses: ResponseConsumer<'q>, info: &'q Info, life: u32) -> Self {
        BlockClient { requests, responses, info, sync: ClientSync::new(life), broken: false }
    }

    /// Whether the response queue was found corrupt.
    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

impl<'h, R: CacheRegion<'h>, const GROUPS: usize, const INFLIGHT: usize, const FILES: usize>
    DiskCache<'h, R, GROUPS, INFLIGHT, FILES>
{
    /// Moves the block traffic until the response queue is empty with a
    /// signal requested: syncs the queues with the driver (again after it
    /// restarted), boots, sends and takes ([`DiskCache::pump`]). Each
    /// completed or failed load goes to `on`, each [`BlockEvent`] to
    /// `event`; `notify` is called when the driver should be signalled
    /// (only after something was enqueued, and only if it asked:
    /// lib-queue's P2-P3, else the driver would be woken for nothing, and
    /// so on back and forth).
    pub fn run(
        &mut self,
        blk: &mut BlockClient<'_>,
        mut on: impl FnMut(Completion),
        mut event: impl FnMut(BlockEvent),
        mut notify: impl FnMut(),
    ) {
        if blk.broken {
            return;
        }
        if let Err(e) = self.run_until_quiet(blk, &mut on, &mut event, &mut notify) {
            blk.broken = true;
            event(BlockEvent::Broken(e));
        }
    }

    /// [`DiskCache::run`]'s loop; `Err` when the response queue is corrupt.
    fn run_until_quiet(
        &mut self,
        blk: &mut BlockClient<'_>,
        on: &mut impl FnMut(Completion),
        event: &mut impl FnMut(BlockEvent),
        notify: &mut impl FnMut(),
    ) -> Result<(), QueueError<Response>> {
        loop {
            match blk.sync.poll(blk.info, &mut blk.requests, &mut blk.responses)? {
                SyncPoll::Synced => {
                    let sent = self.requests_sent;
                    let disk = blk.info.get().zip(blk.info.window());
                    match self.pump(disk, &mut blk.requests, &mut blk.responses, &mut *on)? {
                        Pumped::Nothing => {}
                        Pumped::Booted => event(BlockEvent::Booted),
                        Pumped::Refused(e) => event(BlockEvent::Refused(e)),
                    }
                    if self.requests_sent != sent && blk.requests.should_signal() {
                        notify();
                    }
                }
                SyncPoll::DriverRestarted => {
                    let lost = self.driver_restarted(&mut *on);
                    event(BlockEvent::DriverRestarted { lost });
                    continue;
                }
                SyncPoll::Pending { sent } => {
                    if sent && blk.requests.should_signal() {
                        notify();
                    }
                }
            }
            if blk.responses.request_signal_if_empty()? {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out fixed requests; records what came back unsent.
    struct Fixed {
        requests: [Option<Request>; 2],
        unsent: Option<Request>,
    }

    impl Requester for Fixed {
        fn next_request(&mut self) -> Option<Request> {
            self.requests.iter_mut().find_map(Option::take)
        }

        fn unsent(&mut self, request: Request) {
            self.unsent = Some(request);
        }
    }

    #[test]
    fn the_image_is_the_window_seen_as_a_disk() {
        let disk = DiskInfo { capacity: 0x10000, read_only: true, max_request_sectors: 512 };
        let (image, first) = image_disk(disk, Window { start: 0x800, end: 0x40800 });
        assert_eq!((image.capacity, first), (0x10000 - 0x800, 0x800), "clipped to the disk");
        assert_eq!((image.read_only, image.max_request_sectors), (true, 512));
        let (image, first) = image_disk(disk, Window { start: 0, end: 0x4000 });
        assert_eq!((image.capacity, first), (0x4000, 0));
        let (image, _) = image_disk(disk, Window { start: 0x20000, end: 0x30000 });
        assert_eq!(image.capacity, 0, "a window past the disk is no disk");
    }

    #[test]
    fn requests_move_to_the_window_and_come_back_unsent_as_they_were() {
        let mut inner =
            Fixed { requests: [Some(Request::read(1, 0, 8, 0)), Some(Request::read(2, 16, 8, 4096))], unsent: None };
        let mut shifted = Shifted { inner: &mut inner, by: 0x800 };
        assert_eq!(shifted.next_request().map(|r| (r.id, r.sector)), Some((1, 0x800)));
        let second = shifted.next_request().unwrap();
        assert_eq!((second.id, second.sector, second.count, second.offset), (2, 0x810, 8, 4096));
        shifted.unsent(second);
        assert_eq!(inner.unsent.map(|r| (r.id, r.sector)), Some((2, 16)));
        // A sector past any disk is not sent: answered at once.
        let mut inner = Fixed { requests: [Some(Request::read(3, u64::MAX, 1, 0)), None], unsent: None };
        assert!(Shifted { inner: &mut inner, by: 1 }.next_request().is_none());
        assert_eq!(inner.unsent.map(|r| r.id), Some(3));
    }
}
