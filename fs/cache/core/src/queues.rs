//! The thin glue between the cache (or its boot) and the block driver's
//! queues (`blk-protocol`): moving requests out and responses in. Signalling
//! the driver (`should_signal`, `request_signal_if_empty`) stays with the
//! caller, which owns the channel.

use crate::{Boot, BootStatus, Cache, CacheError, Completion};
use lib_blk_protocol::queue::QueueError;
use lib_blk_protocol::{Request, RequestProducer, Response, ResponseConsumer, Status};

/// Something that hands out block requests and takes their answers: the
/// [`Cache`] or a [`Boot`].
pub trait Requester {
    /// The next request that may be sent now.
    fn next_request(&mut self) -> Option<Request>;
    /// Takes a request back that could not be enqueued: it is answered as
    /// an I/O error, so whatever waited for it fails instead of waiting
    /// forever.
    fn unsent(&mut self, request: Request);
}

impl<const GROUPS: usize, const INFLIGHT: usize, const FILES: usize> Requester for Cache<'_, GROUPS, INFLIGHT, FILES> {
    fn next_request(&mut self) -> Option<Request> {
        Cache::next_request(self)
    }

    fn unsent(&mut self, request: Request) {
        self.complete(Response { id: request.id, status: Status::IoError as u32 });
    }
}

impl Requester for Boot {
    fn next_request(&mut self) -> Option<Request> {
        Boot::next_request(self)
    }

    fn unsent(&mut self, request: Request) {
        // The boot fails; the error is returned by the next `complete`.
        let _ = self.complete(Response { id: request.id, status: Status::IoError as u32 }, &[]);
    }
}

/// Enqueues every request `requester` may send now, as long as the queue
/// has room. Returns how many were enqueued. With `INFLIGHT` at most the
/// queue's capacity and the cache its only user, the queue always has
/// room; if it has not (or its indices are corrupt), the request that did
/// not fit is answered as an I/O error ([`Requester::unsent`]).
pub fn send_requests(requester: &mut impl Requester, queue: &mut RequestProducer<'_>) -> usize {
    let mut sent = 0;
    while let Some(request) = requester.next_request() {
        match queue.enqueue(request) {
            Ok(()) => sent += 1,
            Err(QueueError::Full | QueueError::Corrupt | QueueError::OutOfBounds(_)) => {
                requester.unsent(request);
                break;
            }
        }
    }
    sent
}

/// Takes every response in the queue into the cache, calling `on` with
/// each completion (to wake the connections waiting for a load). Stops at
/// a corrupt queue (the driver wrote bogus indices) and returns its error.
pub fn take_responses<const GROUPS: usize, const INFLIGHT: usize, const FILES: usize>(
    cache: &mut Cache<'_, GROUPS, INFLIGHT, FILES>,
    queue: &mut ResponseConsumer<'_>,
    mut on: impl FnMut(Completion),
) -> Result<(), QueueError<Response>> {
    while let Some(response) = queue.dequeue()? {
        on(cache.complete(response));
    }
    Ok(())
}

/// Takes every response in the queue into the boot, with the region's
/// bytes (the superblock is read from them). `Ready` once the head is in;
/// the boot's error if it failed.
pub fn take_boot_responses(
    boot: &mut Boot,
    queue: &mut ResponseConsumer<'_>,
    region: &[u8],
) -> Result<BootStatus, BootQueueError> {
    let mut status = BootStatus::Pending;
    while let Some(response) = queue.dequeue().map_err(BootQueueError::Queue)? {
        status = boot.complete(response, region).map_err(BootQueueError::Boot)?;
    }
    Ok(status)
}

/// Why a boot stopped while taking responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootQueueError {
    /// The image head cannot be served.
    Boot(CacheError),
    /// The response queue is corrupt.
    Queue(QueueError<Response>),
}
