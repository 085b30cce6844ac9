//! A connection's outgoing stream, the part of a *work context*
//! ([`crate::server::Work`]: what a connection holds only while it has work
//! in progress, taken from a shared pool and given back as soon as the
//! connection is idle) that the engine sends from.
//!
//! # What it holds
//!
//! - the *head ring* ([`HEAD_RING`] bytes): every byte the service writes
//!   (an HTTP response head, the small body of an error, an FTP reply, a
//!   listing) is copied there and stays until the peer acknowledges it,
//!   since a retransmission is rebuilt from it;
//! - the stream's file extents ([`Outgoing`], the same machinery the
//!   smoltcp server uses: pins, retirement on acknowledgment and on the
//!   NIC's return of the frames, the piece sums).
//!
//! # The stream
//!
//! net-tcp's connection numbers the stream from 0 and asks for ranges of
//! it ([`net_tcp::conn::Transmit`]). The stream is a sequence of *runs*:
//! head bytes (in the ring, in order) and file extents (in the cache). A
//! range is resolved by copying the head runs' bytes into the frame and
//! naming the file extents' bytes as in-place ranges
//! ([`Outgoing::plan`], with stream offsets as sequence numbers: the
//! stream's base is 0).
//!
//! The ring is indexed by a running count of head bytes: head byte `k`
//! lives at `ring[k % HEAD_RING]`; a run records the stream offset of its
//! first byte and its first count. A run is dropped (its bytes free) when
//! the peer has acknowledged all of it. A new response is taken from
//! service only when [`MAX_HEAD`] bytes are free ([`Stream::head_room`]),
//! so its head always fits.
//!
//! # When it is given back
//!
//! When nothing is held, the whole stream is acknowledged and no extent
//! still holds a pin (waiting for frames to come back): [`Stream::is_idle`]
//! (and the service says its part is idle too). An idle keep-alive
//! connection therefore holds no buffer at all. A connection that ends
//! while pins wait for the NIC leaves its context *orphaned* until they
//! are released.

use crate::inplace::{FileSums, Outgoing, PlanError, Planned};

/// Bytes a service may write into the ring at once (an HTTP response
/// head: the smoltcp server's `HEAD_BUFFER`, at least http-core's
/// `MIN_OUT`).
pub const MAX_HEAD: usize = 1024;
/// Bytes of the head ring: two heads of the largest size, so a pipelined
/// response may be produced while the previous one's head is unacknowledged.
pub const HEAD_RING: usize = 2 * MAX_HEAD;
/// Head runs the ring tracks at once.
pub const RUNS: usize = 8;

/// Head bytes of the stream: `len` bytes from stream offset `start`, the
/// `count`-th head byte onwards in the ring.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    start: u64,
    count: u64,
    len: u32,
}

/// A connection's outgoing stream (module docs).
pub struct Stream<P> {
    ring: [u8; HEAD_RING],
    /// Head bytes written and freed, counted from the context's start.
    written: u64,
    freed: u64,
    runs: [Run; RUNS],
    /// Live runs are `runs[first..first + count]` (mod [`RUNS`]).
    first: usize,
    count: usize,
    pub outgoing: Outgoing<P>,
    /// Uncommitted head bytes in the ring: `(count, len)`.
    held: Option<(u64, usize)>,
}

impl<P> Stream<P> {
    pub fn new() -> Self {
        let mut outgoing = Outgoing::new();
        outgoing.base_seq = Some(0);
        Stream {
            ring: [0; HEAD_RING],
            written: 0,
            freed: 0,
            runs: [Run::default(); RUNS],
            first: 0,
            count: 0,
            outgoing,
            held: None,
        }
    }

    /// Ready for a connection whose stream is `base` bytes long so far (an
    /// idle keep-alive connection takes a context again: its stream goes
    /// on where it was). No live extents, nothing pending.
    pub fn restart(&mut self, base: u64) {
        self.written = 0;
        self.freed = 0;
        self.first = 0;
        self.count = 0;
        self.outgoing.restart();
        self.outgoing.base_seq = Some(0);
        self.outgoing.queued = base;
        self.outgoing.sent = base;
        self.held = None;
    }

    /// The stream's length.
    pub fn stream_len(&self) -> u64 {
        self.outgoing.queued
    }

    /// Whether a new response head can be taken: [`MAX_HEAD`] bytes free
    /// and a run to record it.
    pub fn head_room(&self) -> bool {
        HEAD_RING as u64 - (self.written - self.freed) >= MAX_HEAD as u64 && self.count < RUNS
    }

    /// Copies `head` into the ring, not yet part of the stream.
    pub fn hold_head(&mut self, head: &[u8]) {
        let at = self.written;
        for (i, &b) in head.iter().enumerate() {
            self.ring[((at + i as u64) % HEAD_RING as u64) as usize] = b;
        }
        self.written += head.len() as u64;
        self.held = Some((at, head.len()));
    }

    /// Whether bytes are held, not yet in the stream.
    pub fn holds_head(&self) -> bool {
        self.held.is_some()
    }

    /// Drops the held head (its response is replaced).
    pub fn drop_head(&mut self) {
        if let Some((at, _)) = self.held.take() {
            self.written = at;
        }
    }

    /// Appends the held head to the stream; the stream's new length.
    pub fn commit_head(&mut self) -> u64 {
        if let Some((at, len)) = self.held.take() {
            if len > 0 {
                let slot = (self.first + self.count) % RUNS;
                self.runs[slot] = Run { start: self.outgoing.queued, count: at, len: len as u32 };
                self.count += 1;
                self.outgoing.queue_real(len);
            }
        }
        self.outgoing.queued
    }

    /// The peer acknowledged the stream below `acked`: fully acknowledged
    /// head runs free their ring bytes; extents retire (their pins go back
    /// once the frames in `in_flight` have come back).
    pub fn acked(&mut self, acked: u64, in_flight: u64, release: &mut impl FnMut(P)) {
        while self.count > 0 {
            let run = self.runs[self.first];
            if run.start + u64::from(run.len) > acked {
                break;
            }
            self.freed = run.count + u64::from(run.len);
            self.first = (self.first + 1) % RUNS;
            self.count -= 1;
        }
        if self.count == 0 && self.held.is_none() {
            self.freed = self.written;
        }
        self.outgoing.retire_acked(acked, in_flight, release);
    }

    /// Whether the stream needs its context no more, acknowledged up to
    /// `acked`: nothing held, everything acknowledged, no pin retiring.
    pub fn is_idle(&self, acked: u64) -> bool {
        self.held.is_none() && acked >= self.outgoing.queued && !self.outgoing.holds_pins()
    }

    /// Fills `payload` with stream bytes `[offset, offset + len)`: head
    /// bytes copied from the ring; file bytes named as in-place ranges
    /// (their place in `payload` is left as it is). The payload's sum and
    /// the ranges.
    pub fn resolve(&mut self, offset: u64, payload: &mut [u8], sums: &impl FileSums<P>) -> Result<Planned, PlanError> {
        let end = offset + payload.len() as u64;
        for k in 0..self.count {
            let run = self.runs[(self.first + k) % RUNS];
            let from = run.start.max(offset);
            let to = (run.start + u64::from(run.len)).min(end);
            for s in from..to {
                let count = run.count + (s - run.start);
                payload[(s - offset) as usize] = self.ring[(count % HEAD_RING as u64) as usize];
            }
        }
        self.outgoing.plan(offset as u32, payload, sums)
    }
}

impl<P> Default for Stream<P> {
    fn default() -> Self {
        Self::new()
    }
}
