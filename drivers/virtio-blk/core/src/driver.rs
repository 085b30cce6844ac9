//! The block device: bring-up of a virtio-blk device (virtio 1.1 §5.2),
//! and the service loop that turns client requests into virtio requests and
//! completions into responses.

use crate::slots::{Buffer, Completion, RequestQueue, MAX_SLOTS};
use lib_blk_protocol::{
    buffer_range, is_sync_for, DiskInfo, Op, Request, RequestConsumer, Response, ResponseProducer, Status, Window,
    SECTOR_SIZE,
};
use lib_virtio::dma::DmaRegion;
use lib_virtio::features::VERSION_1 as F_VERSION_1;
use lib_virtio::transport::{Notifier, Transport, TransportError};

/// virtio-blk feature bits the driver uses (§5.2.3).
pub mod feature {
    /// `size_max` bounds the bytes of one data descriptor.
    pub const SIZE_MAX: u64 = 1 << 1;
    /// The disk is read-only.
    pub const RO: u64 = 1 << 5;
    /// The device has a write-back cache and takes `VIRTIO_BLK_T_FLUSH`.
    pub const FLUSH: u64 = 1 << 9;
}

/// virtio-blk request types (§5.2.6).
mod kind {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
}

/// virtio-blk status bytes (§5.2.6).
mod device_status {
    pub const OK: u8 = 0;
    pub const UNSUPP: u8 = 2;
}

/// Offsets in the virtio-blk device configuration (§5.2.4).
mod config {
    pub const CAPACITY: usize = 0;
    pub const SIZE_MAX: usize = 8;
}

/// The request queue's index: virtio-blk without `VIRTIO_BLK_F_MQ` has one.
pub const REQUEST_QUEUE: u16 = 0;
/// The queue size asked for (the device's maximum if smaller). With three
/// descriptors per request it has room for [`MAX_SLOTS`].
pub const QUEUE_SIZE: u16 = 128;
/// Bytes of DMA memory the driver needs for its queue.
pub const QUEUE_MEMORY: usize = crate::slots::MEMORY;
/// Largest request the driver accepts, unless the device's `size_max` is
/// smaller: 256 KiB.
pub const MAX_REQUEST_SECTORS: u32 = 512;

/// Why bring-up failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    Transport(TransportError),
    /// The device's queue is too small for one request, or the queue's
    /// memory too small for the queue.
    QueueLayout {
        size: u16,
        memory: usize,
    },
    /// The device configuration is too short to hold the capacity.
    NoCapacity,
}

impl From<TransportError> for InitError {
    fn from(e: TransportError) -> Self {
        InitError::Transport(e)
    }
}

/// Checks a client request against the disk, the client's window and the
/// data region (the rules in `lib_blk_protocol`'s docs) and says what to do
/// with it. Sectors past the end of the disk are [`Status::OutOfRange`];
/// sectors on the disk outside `window` are [`Status::OutsideWindow`].
pub fn validate(request: &Request, disk: &DiskInfo, window: &Window, data_len: usize) -> Result<Op, Status> {
    let op = Op::from_code(request.op).ok_or(Status::BadOp)?;
    if op == Op::Flush || op == Op::Sync {
        return Ok(op);
    }
    if request.count == 0 || request.count > disk.max_request_sectors || buffer_range(request, data_len).is_none() {
        return Err(Status::BadBuffer);
    }
    match request.sector.checked_add(u64::from(request.count)) {
        Some(end) if end <= disk.capacity => {}
        _ => return Err(Status::OutOfRange),
    }
    if !window.contains(request.sector, u64::from(request.count)) {
        return Err(Status::OutsideWindow);
    }
    if op == Op::Write && disk.read_only {
        return Err(Status::ReadOnly);
    }
    Ok(op)
}

/// What the PD must do after [`BlkDevice::service`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Notify the device: requests were published and it wants to know.
    pub notify_device: bool,
    /// Notify the client: responses were published and it asked.
    pub signal_client: bool,
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests taken from the client.
    pub requests: u64,
    /// Requests refused without reaching the device (all reasons).
    pub rejected: u64,
    /// Of those, requests for sectors outside the client's window.
    pub outside_window: u64,
    /// Requests the device completed with an error.
    pub device_errors: u64,
    /// Used elements the device returned that named no request in flight.
    pub bogus_completions: u64,
    /// Responses that found the response queue full or corrupt (only a
    /// client that breaks the protocol causes these).
    pub lost_responses: u64,
    /// Times a queue's shared indices were found corrupt.
    pub corrupt_queue: u64,
    /// Requests dropped unanswered by a restarted driver before the
    /// client's Sync (`lib_blk_protocol`, "Starting over").
    pub dropped_after_restart: u64,
}

/// Whether the driver logs refusals of a kind when their count went from
/// `before` to `now` (one batch may refuse several): if the 1st, 2nd, 4th,
/// 8th, ... refusal is among them. A client that keeps asking for what it
/// may not have cannot flood the console (at most 64 lines over any number
/// of refusals), while the first one, and the count, are always seen.
pub fn log_refusals(before: u64, now: u64) -> bool {
    match (before, now) {
        (_, 0) => false,
        (0, _) => true,
        _ => now.ilog2() > before.ilog2(),
    }
}

/// A virtio-blk device and the requests in flight on it.
pub struct BlkDevice {
    queue: RequestQueue,
    disk: DiskInfo,
    /// The sectors the client may use (clipped to the disk).
    window: Window,
    /// The last request refused for lying outside the window.
    pub last_outside_window: Option<Request>,
    /// Responses enqueued so far (the client is signalled only after some).
    responded: u64,
    /// The device has a write-back cache (`VIRTIO_BLK_F_FLUSH`).
    flush: bool,
    /// The client's data region: physical base and length.
    data_paddr: u64,
    data_len: usize,
    /// The client's id of the request in each slot.
    ids: [u32; MAX_SLOTS],
    /// A Sync taken while requests were in flight: answered (and requests
    /// taken again) once none is.
    sync_pending: Option<u32>,
    /// A restarted driver's life (`Info`'s epoch): until the client's Sync
    /// for it arrives, requests are dropped unanswered.
    awaiting_sync: Option<u32>,
    pub stats: Stats,
}

impl BlkDevice {
    /// Brings the device up (§3.1.1): negotiates features, reads the
    /// capacity, lays out the request queue in `queue_memory` and hands it
    /// to the device, and sets `DRIVER_OK`. Requests will move data to and
    /// from the client's region at physical `data_paddr`, `data_len` bytes,
    /// and only sectors inside `window` (clipped to the disk).
    pub fn init(
        transport: &Transport,
        queue_memory: DmaRegion,
        data_paddr: u64,
        data_len: usize,
        window: Window,
    ) -> Result<(BlkDevice, Notifier), InitError> {
        let result = Self::try_init(transport, queue_memory, data_paddr, data_len, window);
        if result.is_err() {
            transport.fail();
        }
        result
    }

    fn try_init(
        transport: &Transport,
        queue_memory: DmaRegion,
        data_paddr: u64,
        data_len: usize,
        window: Window,
    ) -> Result<(BlkDevice, Notifier), InitError> {
        let features = transport.negotiate(F_VERSION_1, feature::SIZE_MAX | feature::RO | feature::FLUSH)?;
        let (capacity, size_max) = transport.read_device_config(|c| (c.u64(config::CAPACITY), c.u32(config::SIZE_MAX)));
        let mut max_request_sectors = MAX_REQUEST_SECTORS;
        if features & feature::SIZE_MAX != 0 {
            let by_device = size_max.unwrap_or(0) / SECTOR_SIZE as u32;
            max_request_sectors = max_request_sectors.min(by_device.max(1));
        }
        let capacity = capacity.ok_or(InitError::NoCapacity)?;
        let disk = DiskInfo { capacity, read_only: features & feature::RO != 0, max_request_sectors };

        let max = transport.queue_max_size(REQUEST_QUEUE);
        if max == 0 {
            return Err(TransportError::NoSuchQueue(REQUEST_QUEUE).into());
        }
        // Split queue sizes are powers of two (§2.6): round the maximum down.
        let size = QUEUE_SIZE.min(1 << max.ilog2());
        let memory = queue_memory.len();
        let queue = RequestQueue::new(queue_memory, size).ok_or(InitError::QueueLayout { size, memory })?;
        let notifier = transport.setup_queue(REQUEST_QUEUE, size, queue.areas())?;
        transport.driver_ok();
        let flush = features & feature::FLUSH != 0;
        Ok((Self::with_queue(queue, disk, window, flush, data_paddr, data_len), notifier))
    }

    /// The driver's state for a device whose queue is set up (bring-up's
    /// end; the host tests start here).
    pub(crate) fn with_queue(
        queue: RequestQueue,
        disk: DiskInfo,
        window: Window,
        flush: bool,
        data_paddr: u64,
        data_len: usize,
    ) -> BlkDevice {
        BlkDevice {
            queue,
            disk,
            window: window.clip(disk.capacity),
            last_outside_window: None,
            responded: 0,
            flush,
            data_paddr,
            data_len,
            ids: [0; MAX_SLOTS],
            sync_pending: None,
            awaiting_sync: None,
            stats: Stats::default(),
        }
    }

    /// This is a restarted driver in its life `epoch` (`lib_blk_protocol`,
    /// "Starting over"): the device was reset, so nothing the client asked
    /// before is in flight any more; every request up to the client's
    /// Sync for `epoch` is dropped unanswered.
    pub fn restarted(&mut self, epoch: u32) {
        self.awaiting_sync = Some(epoch);
    }

    /// Not waiting for a restarted driver's Sync.
    pub fn synced(&self) -> bool {
        self.awaiting_sync.is_none()
    }

    /// What the client is told about the disk.
    pub fn disk(&self) -> DiskInfo {
        self.disk
    }

    /// The sectors the client may use, clipped to the disk: what it is
    /// told ([`lib_blk_protocol::Info::publish`]) and what is enforced.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Requests the device may have in flight at once.
    pub fn slots(&self) -> u16 {
        self.queue.slots()
    }

    /// Does everything pending, in one batch: answers the requests the
    /// device completed, takes new requests while the device has free slots
    /// (answering bad ones at once), publishes them, and, if the request
    /// queue is empty, asks the client to signal its next request.
    pub fn service(&mut self, requests: &mut RequestConsumer, responses: &mut ResponseProducer) -> Work {
        let before = self.responded;
        loop {
            self.complete(responses);
            if let Some(id) = self.sync_pending.filter(|_| self.queue.in_flight() == 0) {
                self.sync_pending = None;
                self.respond(responses, id, Status::Ok);
            }
            if !self.accept(requests, responses) {
                break;
            }
            // The request queue was empty: ask for a signal, unless a request
            // arrived meanwhile (then go round again).
            match requests.request_signal_if_empty() {
                Ok(false) => continue,
                Ok(true) => break,
                Err(_) => {
                    self.stats.corrupt_queue += 1;
                    break;
                }
            }
        }
        // The client is signalled only after responses were enqueued
        // (lib-queue's P2-P3): its standing request for a signal is no
        // reason to wake it, and waking it for nothing made it notify the
        // driver back for nothing, round and round, a host core spent on
        // an idle node.
        let responded = self.responded != before;
        Work { notify_device: self.queue.publish(), signal_client: responded && responses.should_signal() }
    }

    /// Turns every completion in the used ring into a response.
    fn complete(&mut self, responses: &mut ResponseProducer) {
        while let Some(Completion { slot, status }) = self.queue.pop_used() {
            let status = match status {
                device_status::OK => Status::Ok,
                device_status::UNSUPP => Status::Unsupported,
                // IOERR, or a status the device never wrote.
                _ => Status::IoError,
            };
            if status != Status::Ok {
                self.stats.device_errors += 1;
            }
            self.respond(responses, self.ids[usize::from(slot)], status);
        }
        // Used elements that named no request in flight, skipped by the queue.
        self.stats.bogus_completions = self.queue.bogus_completions();
    }

    /// Takes requests while a slot is free and the response queue has room
    /// for the answer to every request in flight and to this one. Returns
    /// whether it stopped because the request queue is empty.
    fn accept(&mut self, requests: &mut RequestConsumer, responses: &mut ResponseProducer) -> bool {
        loop {
            if self.sync_pending.is_some() {
                return false;
            }
            let Some(slot) = self.queue.free_slot() else { return false };
            match responses.room() {
                Ok(room) if room > self.queue.in_flight() => {}
                Ok(_) => return false,
                Err(_) => {
                    self.stats.corrupt_queue += 1;
                    return false;
                }
            }
            let request = match requests.dequeue() {
                Ok(Some(request)) => request,
                Ok(None) => return true,
                Err(_) => {
                    self.stats.corrupt_queue += 1;
                    return false;
                }
            };
            if let Some(epoch) = self.awaiting_sync {
                if request.op == Op::Sync as u32 && is_sync_for(request.id, epoch) {
                    self.awaiting_sync = None;
                } else {
                    self.stats.dropped_after_restart += 1;
                    continue;
                }
            }
            self.stats.requests += 1;
            match validate(&request, &self.disk, &self.window, self.data_len) {
                Err(status) => {
                    self.stats.rejected += 1;
                    if status == Status::OutsideWindow {
                        self.stats.outside_window += 1;
                        self.last_outside_window = Some(request);
                    }
                    self.respond(responses, request.id, status);
                }
                // Without a write-back cache every completed write is already
                // durable (§5.2.5): a flush has nothing to wait for.
                Ok(Op::Flush) if !self.flush => self.respond(responses, request.id, Status::Ok),
                // A barrier: answered once nothing taken before it is in
                // flight; nothing is taken after it until then.
                Ok(Op::Sync) if self.queue.in_flight() == 0 => self.respond(responses, request.id, Status::Ok),
                Ok(Op::Sync) => self.sync_pending = Some(request.id),
                Ok(op) => {
                    let data = (op != Op::Flush).then(|| Buffer {
                        paddr: self.data_paddr + request.offset,
                        len: request.bytes() as u32,
                        device_writes: op == Op::Read,
                    });
                    let kind = match op {
                        Op::Read => kind::IN,
                        Op::Write => kind::OUT,
                        Op::Flush | Op::Sync => kind::FLUSH,
                    };
                    self.ids[usize::from(slot)] = request.id;
                    self.queue.submit(slot, kind, request.sector, data);
                }
            }
        }
    }

    fn respond(&mut self, responses: &mut ResponseProducer, id: u32, status: Status) {
        if responses.enqueue(Response::new(id, status)).is_err() {
            self.stats.lost_responses += 1;
        }
        self.responded += 1;
    }
}
