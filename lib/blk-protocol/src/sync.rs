//! The client's side of "Starting over" (crate docs): [`ClientSync`].

use crate::{Info, Request, RequestProducer, Response, ResponseConsumer};
use lib_queue::QueueError;

/// High bits of every Sync's `id`; a client gives no other request an id
/// with all of them set.
pub const SYNC_MARK: u32 = 0xF000_0000;

/// The `id` of the Sync a client in its life `client_life` (its restart
/// count) sends to a driver in its life `epoch`: [`SYNC_MARK`], the
/// client's life in bits 16..28, the driver's in bits 0..16.
pub const fn sync_id(client_life: u32, epoch: u32) -> u32 {
    SYNC_MARK | (client_life & 0xFFF) << 16 | (epoch & 0xFFFF)
}

/// Whether a Sync with `id` is the one a driver in its life `epoch`
/// waits for after its restart.
pub const fn is_sync_for(id: u32, epoch: u32) -> bool {
    id & SYNC_MARK == SYNC_MARK && id & 0xFFFF == epoch & 0xFFFF
}

/// Where a client stands with its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No Sync sent in this view of the driver.
    Unsynced,
    /// Sync `id` sent to the driver's life `epoch`; responses are
    /// discarded until its own.
    Syncing { id: u32, epoch: u32 },
    /// The queues are the client's; the driver is in its life `epoch`.
    Synced { epoch: u32 },
}

/// What [`ClientSync::poll`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPoll {
    /// Not synced yet: wait for the driver's next notification (`sent`:
    /// a Sync was just enqueued, notify the driver if it asked).
    Pending { sent: bool },
    /// The queues are the client's: send and take as usual.
    Synced,
    /// The driver was restarted since the last poll: every request in
    /// flight is lost (never answered). The caller fails or forgets them,
    /// then polls again (which syncs with the new driver).
    DriverRestarted,
}

/// A block client's sync with its driver ("Starting over" in the crate
/// docs). Poll it before every use of the queues.
#[derive(Clone, Copy, Debug)]
pub struct ClientSync {
    life: u32,
    state: State,
    /// Responses discarded while syncing (answers to a previous life's
    /// requests).
    pub discarded: u64,
}

impl ClientSync {
    /// The sync of a client in its life `life` (0 at boot, then its
    /// restart count).
    pub const fn new(life: u32) -> Self {
        ClientSync { life, state: State::Unsynced, discarded: 0 }
    }

    /// Syncs if needed: `info` is the driver's (nothing happens until it
    /// is ready).
    pub fn poll(
        &mut self,
        info: &Info,
        requests: &mut RequestProducer<'_>,
        responses: &mut ResponseConsumer<'_>,
    ) -> Result<SyncPoll, QueueError<Response>> {
        if info.get().is_none() {
            return Ok(SyncPoll::Pending { sent: false });
        }
        let epoch = info.epoch();
        let mut sent = false;
        loop {
            match self.state {
                State::Synced { epoch: synced } if synced == epoch => return Ok(SyncPoll::Synced),
                State::Synced { .. } => {
                    self.state = State::Unsynced;
                    return Ok(SyncPoll::DriverRestarted);
                }
                State::Unsynced => {
                    let id = sync_id(self.life, epoch);
                    match requests.enqueue(Request::sync(id)) {
                        Ok(()) => {
                            sent = true;
                            self.state = State::Syncing { id, epoch };
                        }
                        // Full of a previous life's requests: the driver
                        // makes room as it answers them.
                        Err(_) => return Ok(SyncPoll::Pending { sent }),
                    }
                }
                State::Syncing { id, epoch: syncing } => {
                    if syncing != epoch {
                        // Restarted again meanwhile: that Sync is lost.
                        self.state = State::Unsynced;
                        continue;
                    }
                    loop {
                        match responses.dequeue()? {
                            Some(r) if r.id == id => {
                                self.state = State::Synced { epoch };
                                break;
                            }
                            Some(_) => self.discarded += 1,
                            None => return Ok(SyncPoll::Pending { sent }),
                        }
                    }
                }
            }
        }
    }
}
