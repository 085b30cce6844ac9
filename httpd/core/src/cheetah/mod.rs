//! The Cheetah server: HTTP on net-serve's engine (net-tcp, the
//! server-only TCP made for serving files, with SYN cookies, compact
//! TIME-WAIT and bodies sent in place from the file cache: its module
//! docs), instead of smoltcp ([`crate::server`] is kept as the other
//! variant). This module is the engine's [`Service`] for HTTP.
//!
//! # Per connection
//!
//! HTTP is http-core's, as the smoltcp server's [`crate::slot`] does it:
//! keep-alive, pipelining, GET/HEAD, errors, `304`, ranges, the store's
//! `Ready`/`Wait`/`Fail` before a response's first byte, `Date`. A work
//! context holds the request buffer ([`REQUEST_BUFFER`]) and the response
//! in progress ([`Pending`]); its stream holds response heads (in the
//! ring, at most [`MAX_HEAD`] each) and file ranges (in place). A body
//! longer than one checksummed piece is appended once everything before
//! it has been sent, so its segments start on piece boundaries and their
//! sums are the image's. The server listens on [`Settings::port`] only.
//!
//! # Hostile clients
//!
//! Besides the engine's limits (per source, slow readers, FIN-WAIT-2):
//!
//! - **Header deadline** ([`Settings::header_timeout_ns`], default
//!   [`HEADER_TIMEOUT_NS`]): a request must arrive whole within this time
//!   of its first byte, however often bytes trickle in; else `408` and
//!   close (a connection that sent nothing of a request is closed quietly
//!   by the idle timeout).
//! - **Idle keep-alive** ([`Settings::idle_timeout_ns`], default
//!   [`IDLE_TIMEOUT_NS`]): a connection with nothing pending and nothing
//!   received for this long is closed (FIN).
//!
//! Nothing here allocates; every table is carved at start.

#[cfg(test)]
mod tests;

use crate::arena::Arena;
use crate::device::{Link, Neighbours};
use crate::inplace::PIECE;
use crate::site::{Fetch, Store};
use http_core::{write_closing_error, Body, Connection, DateCache, Poll, Status};
use net_serve::server::{self as engine, Service, Wakes};
use net_serve::stream::{Stream, MAX_HEAD};
use net_serve::table::Slot;
use net_tcp::cookie::FourTuple;

pub use engine::{StartError, Wire, MAX_PER_SOURCE, SECOND_NS, WORK_SHARE_PER_SOURCE};

/// A request must be received whole within 10 s of its first byte.
pub const HEADER_TIMEOUT_NS: u64 = 10 * SECOND_NS;
/// An idle keep-alive connection is closed after 15 s (as the smoltcp
/// server's idle timeout).
pub const IDLE_TIMEOUT_NS: u64 = 15 * SECOND_NS;
/// Bytes of the request buffer: a request line and header section must
/// fit (http-core answers `414`/`431` beyond), as in the smoltcp server.
pub const REQUEST_BUFFER: usize = 4096;
/// Rounds of "serve, send" per connection visit.
const MAX_SERVE_ROUNDS: usize = 64;

const _: () = assert!(MAX_HEAD >= http_core::conn::MIN_OUT);

/// The Cheetah HTTP server over the store `S`.
pub type Server<L, N, S> = engine::Server<L, N, Http<S>>;

/// The server's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The TCP port served.
    pub port: u16,
    pub idle_timeout_ns: u64,
    pub header_timeout_ns: u64,
    /// Unix time (seconds) when the clock read 0 (`Date`).
    pub boot_epoch: u64,
    /// The engine's: the cookie and hash seed, per-source limits, offload,
    /// and whether the NIC may send from the store's region (Cheetah sends
    /// bodies only in place: without it, responses with a body are `500`).
    pub tcp: engine::Settings,
}

impl Settings {
    /// The defaults for `port`, `boot_epoch` and `seed`.
    pub fn new(port: u16, boot_epoch: u64, seed: [u8; 16], send_in_place: bool) -> Settings {
        Settings {
            port,
            idle_timeout_ns: IDLE_TIMEOUT_NS,
            header_timeout_ns: HEADER_TIMEOUT_NS,
            boot_epoch,
            tcp: engine::Settings::new(seed, send_in_place),
        }
    }
}

/// What HTTP did since the server started (the engine's own are
/// [`engine::Counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub responses: u64,
    pub errors: u64,
    /// `408` for a request not received within the header deadline.
    pub timeouts_408: u64,
    /// Idle keep-alive connections closed.
    pub idle_closed: u64,
    pub file_errors: u64,
    pub file_waits: u64,
}

/// The response in progress.
pub struct Pending<H, P, W> {
    /// The file range to send after the head (its head is held in the ring
    /// but not yet in the stream until the file is opened).
    pub body: Option<Body<H>>,
    pub pin: Option<P>,
    pub wait: Option<W>,
    /// The request was HEAD.
    pub head_request: bool,
    /// Close once this response is in the stream.
    pub close_after: bool,
}

/// HTTP's part of a work context: the request buffer and the response in
/// progress.
pub struct HttpWork<H, P, W> {
    pub http: Connection<REQUEST_BUFFER>,
    pub pending: Pending<H, P, W>,
}

/// HTTP's state of a connection for its life: when the request being
/// received began (the header deadline).
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpConn {
    pub request_started: Option<u64>,
}

/// HTTP as the engine's service (module docs).
pub struct Http<S> {
    settings: Settings,
    date: DateCache,
    pub counters: Counters,
    scratch: [u8; MAX_HEAD],
    _store: core::marker::PhantomData<fn(S)>,
}

impl<S> Http<S> {
    pub fn date(&self) -> &DateCache {
        &self.date
    }
}

/// The HTTP server on `wire`, its tables out of `arena`, not accepting yet.
pub fn server<L: Link, N: Neighbours, S: Store>(
    wire: Wire<L, N>,
    arena: &mut Arena,
    settings: Settings,
    now: u64,
) -> Result<Server<L, N, S>, StartError> {
    let http = Http {
        settings,
        date: DateCache::new(settings.boot_epoch + now / SECOND_NS),
        counters: Counters::default(),
        scratch: [0; MAX_HEAD],
        _store: core::marker::PhantomData,
    };
    engine::Server::new(wire, http, arena, settings.tcp, engine::MAX_WORKS, now)
}

/// What a region of `bytes` holds for HTTP over store `S`.
pub fn layout<S: Store>(bytes: usize) -> engine::Layout {
    engine::layout::<Http<S>>(bytes, engine::MAX_WORKS)
}

/// Bytes a connection slot costs (with its index entries).
pub fn connection_bytes<S: Store>() -> usize {
    engine::connection_bytes::<Http<S>>()
}

/// Bytes of one work context.
pub fn work_bytes<S: Store>() -> usize {
    engine::work_bytes::<Http<S>>()
}

type Work<S> = engine::Work<
    <S as crate::inplace::Pins>::Pin,
    HttpWork<<S as http_core::Site>::Handle, <S as crate::inplace::Pins>::Pin, <S as crate::inplace::Files>::Wait>,
>;

impl<S: Store> Service for Http<S> {
    type Store = S;
    type Conn = HttpConn;
    type Work = HttpWork<S::Handle, S::Pin, S::Wait>;
    const ROOM: u32 = REQUEST_BUFFER as u32;

    fn new_work() -> Self::Work {
        HttpWork {
            http: Connection::new(),
            pending: Pending { body: None, pin: None, wait: None, head_request: false, close_after: false },
        }
    }

    fn tick(&mut self, now: u64) {
        self.date.update(self.settings.boot_epoch + now / SECOND_NS);
    }

    fn listens(&self, tuple: &FourTuple) -> bool {
        tuple.local_port == self.settings.port
    }

    fn opened(&mut self, _i: usize, _tuple: &FourTuple, _now: u64) -> Option<HttpConn> {
        Some(HttpConn::default())
    }

    fn start_work(&mut self, work: &mut Self::Work) {
        work.http = Connection::new();
        work.pending.body = None;
        work.pending.head_request = false;
        work.pending.close_after = false;
    }

    fn room(&self, work: &Self::Work) -> u32 {
        work.http.room() as u32
    }

    fn receive(&mut self, conn: &mut HttpConn, work: &mut Self::Work, data: &[u8], now: u64) {
        if work.http.is_idle() && conn.request_started.is_none() {
            conn.request_started = Some(now);
        }
        work.http.receive(data);
    }

    fn serve(
        &mut self,
        _i: usize,
        slot: &mut Slot<HttpConn>,
        work: Option<&mut Work<S>>,
        now: u64,
        store: &mut S,
        _wakes: &mut Wakes<'_>,
    ) -> bool {
        serve(self, slot, work, now, store)
    }

    fn is_idle(&self, work: &Self::Work) -> bool {
        work.http.is_idle()
            && !work.http.is_closed()
            && work.pending.body.is_none()
            && work.pending.pin.is_none()
            && work.pending.wait.is_none()
    }

    fn holds(&self, work: &Self::Work) -> bool {
        work.pending.pin.is_some() || work.pending.wait.is_some()
    }

    fn holds_pin(&self, work: &Self::Work) -> bool {
        work.pending.pin.is_some()
    }

    fn waiting(&self, work: &Self::Work) -> bool {
        work.pending.wait.is_some()
    }

    fn deadline(&self, slot: &Slot<HttpConn>, _work: Option<&Self::Work>) -> Option<u64> {
        if slot.closing {
            return None;
        }
        let header = slot.service.request_started.map(|start| start.saturating_add(self.settings.header_timeout_ns));
        let idle = slot.work.is_none().then(|| slot.last_activity.saturating_add(self.settings.idle_timeout_ns));
        match (header, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn ended(
        &mut self,
        _i: usize,
        _slot: &Slot<HttpConn>,
        work: Option<&mut Self::Work>,
        store: &mut S,
        _wakes: &mut Wakes<'_>,
    ) {
        let Some(work) = work else { return };
        if let Some(pin) = work.pending.pin.take() {
            store.release(pin);
        }
        if let Some(wait) = work.pending.wait.take() {
            store.abandon(wait);
        }
        work.pending.body = None;
    }
}

/// The server closes its side of `slot` (a FIN follows the stream).
fn close(slot: &mut Slot<HttpConn>) {
    slot.service.request_started = None;
    slot.close();
}

/// HTTP on one connection (module docs); whether anything moved.
fn serve<S: Store>(
    parts: &mut Http<S>,
    slot: &mut Slot<HttpConn>,
    work: Option<&mut Work<S>>,
    now: u64,
    site: &mut S,
) -> bool {
    if slot.closing || slot.tcp.is_none() {
        return false;
    }
    let Some(work) = work else {
        // Idle between requests.
        if slot.peer_closed {
            close(slot);
            return true;
        }
        if now.saturating_sub(slot.last_activity) >= parts.settings.idle_timeout_ns {
            parts.counters.idle_closed += 1;
            close(slot);
            return true;
        }
        return false;
    };
    let engine::Work { stream, app: work, .. } = work;
    let mut moved = false;
    // The header deadline: a request not whole in time.
    if let Some(start) = slot.service.request_started {
        let nothing_pending = !stream.holds_head() && work.pending.body.is_none();
        if nothing_pending && now.saturating_sub(start) >= parts.settings.header_timeout_ns {
            slot.service.request_started = None;
            match work.http.timeout(&parts.date, &mut parts.scratch[..]) {
                Ok(Some(len)) => {
                    parts.counters.timeouts_408 += 1;
                    parts.counters.responses += 1;
                    parts.counters.errors += 1;
                    stream.hold_head(&parts.scratch[..len]);
                    slot.extend(stream.commit_head());
                }
                _ => parts.counters.idle_closed += 1,
            }
            close(slot);
            return true;
        }
    }
    let mut close_after = false;
    for _ in 0..MAX_SERVE_ROUNDS {
        // The response in progress: open its file, then commit its head.
        if stream.holds_head() {
            if let (Some(body), None) = (work.pending.body, &work.pending.pin) {
                if work.pending.wait.as_ref().is_some_and(|wait| !site.may_retry(wait)) {
                    return moved;
                }
                let fetched = if parts.settings.tcp.send_in_place {
                    site.open(body.file)
                } else {
                    Fetch::Fail(Status::InternalServerError)
                };
                match fetched {
                    Fetch::Ready(pin) => {
                        if site.region_offset(&pin).is_none() && body.len > 0 {
                            site.release(pin);
                            replace_with_error(stream, work, parts, Status::InternalServerError);
                            work.pending.head_request = false;
                        } else {
                            work.pending.pin = Some(pin);
                        }
                        work.pending.wait = None;
                    }
                    Fetch::Wait(wait) => {
                        if work.pending.wait.is_none() {
                            parts.counters.file_waits += 1;
                        }
                        work.pending.wait = Some(wait);
                        return moved;
                    }
                    Fetch::Fail(status) => {
                        work.pending.wait = None;
                        replace_with_error(stream, work, parts, status);
                    }
                }
            }
            slot.extend(stream.commit_head());
            moved = true;
            if work.pending.body.is_some_and(|b| b.len == 0) {
                if let Some(pin) = work.pending.pin.take() {
                    site.release(pin);
                }
                work.pending.body = None;
            }
        }
        // The body: appended to the stream once it may start.
        if let Some(body) = work.pending.body {
            let Some(pin) = work.pending.pin.take() else {
                work.pending.body = None;
                continue;
            };
            let region = site.region_offset(&pin);
            let may_start = stream.outgoing.has_room() && (body.len <= PIECE || slot.sent >= slot.written);
            match (region, may_start) {
                (Some(region), true) => match stream.outgoing.begin(pin, body.offset, body.len, region) {
                    Ok(()) => {
                        stream.outgoing.queue_reserved(body.len as usize);
                        slot.extend(stream.stream_len());
                        work.pending.body = None;
                        moved = true;
                    }
                    Err(pin) => {
                        work.pending.pin = Some(pin);
                        return moved;
                    }
                },
                _ => {
                    work.pending.pin = Some(pin);
                    return moved;
                }
            }
        }
        if work.pending.close_after || close_after {
            close(slot);
            return true;
        }
        if !stream.head_room() {
            return moved;
        }
        match work.http.poll(&*site, &parts.date, &mut parts.scratch[..]) {
            Ok(Poll::Respond(r)) => {
                parts.counters.responses += 1;
                if r.status.code() >= 400 {
                    parts.counters.errors += 1;
                }
                stream.hold_head(&parts.scratch[..r.head_len]);
                work.pending.body = r.body;
                work.pending.head_request = r.head;
                work.pending.close_after = r.close;
                close_after = r.close;
                slot.service.request_started = if work.http.is_idle() { None } else { Some(now) };
                moved = true;
            }
            Ok(Poll::NeedMore) => {
                if work.http.is_idle() {
                    slot.service.request_started = None;
                }
                if slot.peer_closed {
                    close(slot);
                    return true;
                }
                return moved;
            }
            Ok(Poll::Closed) | Err(_) => {
                close(slot);
                return true;
            }
        }
    }
    moved
}

/// The held response is replaced by a closing error `status` before any
/// of it was sent.
fn replace_with_error<S: Store>(
    stream: &mut Stream<S::Pin>,
    work: &mut HttpWork<S::Handle, S::Pin, S::Wait>,
    http: &mut Http<S>,
    status: Status,
) {
    stream.drop_head();
    work.pending.body = None;
    http.counters.file_errors += 1;
    http.counters.errors += 1;
    if let Ok(len) = write_closing_error(&mut http.scratch[..], status, &http.date, work.pending.head_request) {
        stream.hold_head(&http.scratch[..len]);
    }
    work.pending.close_after = true;
}
