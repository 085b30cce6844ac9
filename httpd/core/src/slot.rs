//! One connection of the pool: its HTTP state ([`Slot`]) and serving it
//! (`serve`, once per round of the server's poll).
//!
//! # Serving
//!
//! Each round of [`Server::poll`](crate::server::Server::poll), a
//! connection takes the bytes received into its request buffer, sends what is pending of the
//! current response (the head, then the file range), and only when all of
//! it is queued takes the next pipelined request.
//!
//! A response with a body first opens its file in the [`Store`]: nothing
//! of it is sent until the store answers `Ready`. On `Wait` the response
//! is held back and the open repeated on a later poll once the store says
//! it may have another answer (a load completed, a pin was released); the
//! PD polls on every notification of the block driver. On `Fail` the
//! response is replaced by that error status (a closing error response;
//! counted in `file_errors`) before a byte of it is sent.
//!
//! The body goes **in place** when the store keeps file data in the
//! region the NIC may send from (the site image's cache): its bytes are
//! only reserved in the socket, the pin moves into the connection's
//! [`Outgoing`] stream, and each segment carrying them is sent from the
//! cache ([`crate::inplace`]); the pin goes back once the peer has
//! acknowledged the body (or the connection ended) and no frame in flight
//! can still reference it. A body longer than one checksummed piece
//! starts once its head has been sent, so its segments line up with the
//! image's precomputed piece sums. A store without such a region (the
//! host tests' copying mode) has the body copied into the socket's buffer,
//! and the pin goes back when the last byte is queued.
//!
//! # Timeouts
//!
//! - A connection with nothing received or sent for the idle timeout: if
//!   part of a request had arrived it gets `408` and is closed, else it is
//!   closed quietly (http-core's [`Connection::timeout`]). If the server
//!   was sending and nothing moved for that long, the peer has stopped
//!   reading: the connection is aborted.
//! - After the server closes its side, it reads and discards what the peer
//!   still sends (so that the peer's late data does not make the stack
//!   reset the connection and destroy the response, RFC 9112 §9.6) until
//!   the peer closes too, for at most the close timeout; then it aborts.

use crate::endpoints::{Endpoints, Peer};
use crate::inplace::{Outgoing, PIECE};
use crate::server::{Counters, Settings, HEAD_BUFFER, REQUEST_BUFFER};
use crate::site::{Fetch, Store};
use http_core::{write_closing_error, Body, Connection, DateCache, Poll};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::IpAddress;

/// Rounds of "receive, send, next request" for one connection in one
/// round of the server's poll.
const MAX_SERVE_ROUNDS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// The socket listens (or is handshaking): the slot is free.
    Listening,
    /// A connection is being served.
    Open,
    /// The server closed its side at `since`.
    Closing { since: u64 },
}

/// One connection's HTTP state (see the module docs).
pub struct Slot<H, P, W> {
    pub(crate) socket: SocketHandle,
    pub(crate) state: SlotState,
    conn: Connection<REQUEST_BUFFER>,
    out: [u8; HEAD_BUFFER],
    /// `out[head_sent..head_len]` is still to be queued.
    head_sent: usize,
    head_len: usize,
    /// The rest of the file range to send after the head.
    body: Option<Body<H>>,
    /// The store's hold on the body's file, once opened.
    pin: Option<P>,
    /// Why the body's file could not be opened yet.
    wait: Option<W>,
    /// Close once the current response is queued.
    close_after: bool,
    /// The response being sent answers a HEAD.
    head: bool,
    /// When bytes last moved either way, ns.
    pub(crate) last_activity: u64,
    /// The connection's stream: what of it is file data sent in place.
    pub(crate) outgoing: Outgoing<P>,
    /// The peer, while the slot serves a connection.
    pub(crate) peer: Option<Peer>,
}

impl<H: Copy, P, W> Slot<H, P, W> {
    pub(crate) fn new(socket: SocketHandle) -> Self {
        Slot {
            socket,
            state: SlotState::Listening,
            conn: Connection::new(),
            out: [0; HEAD_BUFFER],
            head_sent: 0,
            head_len: 0,
            body: None,
            pin: None,
            wait: None,
            close_after: false,
            head: false,
            last_activity: 0,
            outgoing: Outgoing::new(),
            peer: None,
        }
    }

    /// Whether the current response holds a pin of the store.
    pub(crate) fn holds_pin(&self) -> bool {
        self.pin.is_some()
    }

    /// Ends the current response's hold on the store: the pin goes back,
    /// the body and any wait are dropped. Called when the body is sent and
    /// whenever the connection ends, so no pin outlives its connection.
    pub(crate) fn drop_body<S: Store<Pin = P, Wait = W>>(&mut self, store: &mut S) {
        if let Some(pin) = self.pin.take() {
            store.release(pin);
        }
        if let Some(wait) = self.wait.take() {
            store.abandon(wait);
        }
        self.body = None;
    }

    fn pending(&self) -> bool {
        self.head_sent < self.head_len || self.body.is_some()
    }

    /// Makes the slot ready for a new connection.
    fn open(&mut self, now: u64, peer: Option<Peer>) {
        self.conn = Connection::new();
        self.outgoing.restart();
        self.peer = peer;
        self.state = SlotState::Open;
        self.head_sent = 0;
        self.head_len = 0;
        self.body = None;
        self.close_after = false;
        self.last_activity = now;
    }
}

/// The peer of a connected socket, if IPv4.
fn peer_of(socket: &tcp::Socket<'_>) -> Option<Peer> {
    match socket.remote_endpoint()? {
        smoltcp::wire::IpEndpoint { addr: IpAddress::Ipv4(ip), port } => Some(Peer { ip: u32::from(ip), port }),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Moves received bytes into the request buffer; whether any moved.
fn receive<H: Copy, P, W>(slot: &mut Slot<H, P, W>, socket: &mut tcp::Socket<'_>, now: u64) -> bool {
    let mut moved = false;
    while socket.can_recv() {
        let taken = socket.recv(|data| {
            let n = slot.conn.receive(data);
            (n, n)
        });
        match taken {
            Ok(n) if n > 0 => {
                moved = true;
                slot.last_activity = now;
            }
            _ => break,
        }
    }
    moved
}

/// What sending the pending response did.
#[derive(PartialEq, Eq)]
enum Flush {
    /// All of it is queued.
    Done,
    /// The socket's buffer is full (or the socket cannot send).
    Blocked,
    /// The site could not give the data: abort.
    FileError,
}

/// What serving a slot needs of the server besides the slot.
pub(crate) struct Ctx<'a> {
    pub(crate) date: &'a DateCache,
    pub(crate) now: u64,
    pub(crate) settings: &'a Settings,
    pub(crate) accepting: bool,
    pub(crate) counters: &'a mut Counters,
    pub(crate) endpoints: &'a mut Endpoints,
}

/// Queues as much of the pending response as the socket takes. A body's
/// file is opened in the store before the head goes (see "Serving" in the
/// module docs).
fn flush<S: Store>(
    slot: &mut Slot<S::Handle, S::Pin, S::Wait>,
    socket: &mut tcp::Socket<'_>,
    site: &mut S,
    ctx: &mut Ctx<'_>,
    moved: &mut bool,
) -> Flush {
    if let (Some(body), None, false) = (slot.body, &slot.pin, slot.outgoing.reserving()) {
        if slot.wait.as_ref().is_some_and(|w| !site.may_retry(w)) {
            return Flush::Blocked;
        }
        match site.open(body.file) {
            Fetch::Ready(pin) => {
                slot.pin = Some(pin);
                slot.wait = None;
            }
            Fetch::Wait(wait) => {
                if slot.wait.is_none() {
                    ctx.counters.file_waits += 1;
                }
                slot.wait = Some(wait);
                return Flush::Blocked;
            }
            Fetch::Fail(status) => {
                // Nothing of the response was sent (the head waits for the
                // open): answer the error instead, and close. The open
                // answered the wait, so there is none to abandon.
                slot.wait = None;
                slot.drop_body(site);
                ctx.counters.file_errors += 1;
                ctx.counters.errors += 1;
                match write_closing_error(&mut slot.out, status, ctx.date, slot.head) {
                    Ok(len) => {
                        slot.head_sent = 0;
                        slot.head_len = len;
                    }
                    Err(_) => return Flush::FileError,
                }
                slot.close_after = true;
                *moved = true;
            }
        }
    }
    while slot.head_sent < slot.head_len {
        match socket.send_slice(&slot.out[slot.head_sent..slot.head_len]) {
            Ok(n) if n > 0 => {
                slot.outgoing.queue_real(n);
                slot.head_sent += n;
                slot.last_activity = ctx.now;
                *moved = true;
            }
            _ => return Flush::Blocked,
        }
    }
    while let Some(body) = slot.body {
        if body.len == 0 {
            slot.drop_body(site);
            break;
        }
        if slot.outgoing.reserving() {
            // In place: reserve the body's bytes in the socket without
            // writing them (see `inplace`).
            let outgoing = &mut slot.outgoing;
            match socket.send(|buf| {
                let n = outgoing.reservable(buf.len());
                (n, n)
            }) {
                Ok(n) if n > 0 => {
                    slot.outgoing.queue_reserved(n);
                    slot.last_activity = ctx.now;
                    *moved = true;
                }
                _ => return Flush::Blocked,
            }
            if !slot.outgoing.reserving() {
                slot.body = None;
            }
            continue;
        }
        let Some(pin) = &slot.pin else { return Flush::FileError };
        if let Some(region_offset) =
            site.region_offset(pin).filter(|_| ctx.settings.send_in_place && slot.peer.is_some())
        {
            // A body longer than a piece waits until everything before it
            // was sent, so that its segments start on piece boundaries and
            // their checksums are the precomputed ones.
            if !slot.outgoing.has_room() || (body.len > PIECE && !slot.outgoing.all_sent()) {
                return Flush::Blocked;
            }
            let Some(pin) = slot.pin.take() else { return Flush::FileError };
            if let Err(pin) = slot.outgoing.begin(pin, body.offset, body.len, region_offset) {
                slot.pin = Some(pin);
                return Flush::Blocked;
            }
            continue;
        }
        let store: &S = site;
        let sent = socket.send(|buf| {
            let want = (buf.len() as u64).min(body.len) as usize;
            let n = store.read(pin, body.offset, &mut buf[..want]);
            (n, (n, want))
        });
        match sent {
            Ok((0, 0)) | Err(_) => return Flush::Blocked,
            Ok((0, _)) => return Flush::FileError,
            Ok((n, _)) => {
                slot.outgoing.queue_real(n);
                ctx.counters.copied_bytes += n as u64;
                slot.body = Some(Body { file: body.file, offset: body.offset + n as u64, len: body.len - n as u64 });
                slot.last_activity = ctx.now;
                *moved = true;
            }
        }
    }
    Flush::Done
}

/// Serves one slot (see the module docs); whether anything moved.
pub(crate) fn serve<S: Store>(
    slot: &mut Slot<S::Handle, S::Pin, S::Wait>,
    index: usize,
    socket: &mut tcp::Socket<'_>,
    site: &mut S,
    ctx: &mut Ctx<'_>,
) -> bool {
    let mut moved = false;
    let state = socket.state();
    match slot.state {
        SlotState::Listening => match state {
            State::Listen | State::SynReceived => return false,
            State::Closed if !ctx.accepting => return false,
            State::Closed => {
                // A listener that was reset: listen again.
                return socket.listen(ctx.settings.port).is_ok();
            }
            _ => {
                // The planner finds the connection's segments by its peer:
                // without one, bodies are copied (`flush`).
                let peer = peer_of(socket).filter(|&p| ctx.endpoints.insert(p, index));
                slot.open(ctx.now, peer);
                ctx.counters.accepted += 1;
                moved = true;
            }
        },
        SlotState::Open | SlotState::Closing { .. } if state == State::Closed => {
            slot.drop_body(site);
            slot.state = SlotState::Listening;
            if ctx.accepting {
                let _ = socket.listen(ctx.settings.port);
            }
            return true;
        }
        _ => {}
    }

    if let SlotState::Closing { since } = slot.state {
        // Read and discard until the peer closes too.
        while socket.can_recv() {
            match socket.recv(|data| (data.len(), data.len())) {
                Ok(n) if n > 0 => moved = true,
                _ => break,
            }
        }
        if ctx.now.saturating_sub(since) >= ctx.settings.close_timeout_ns {
            socket.abort();
            ctx.counters.aborted += 1;
            moved = true;
        }
        return moved;
    }

    // Open. The idle timeout first: it may produce a 408 to send below.
    if ctx.now.saturating_sub(slot.last_activity) >= ctx.settings.idle_timeout_ns && !socket.can_recv() {
        if slot.pending() {
            // Nothing moved while sending (or waiting for the store that
            // long): the peer stopped reading, or the store is stuck.
            socket.abort();
            slot.drop_body(site);
            ctx.counters.aborted += 1;
            slot.state = SlotState::Closing { since: ctx.now };
            return true;
        }
        match slot.conn.timeout(ctx.date, &mut slot.out) {
            Ok(Some(len)) => {
                slot.head_sent = 0;
                slot.head_len = len;
                slot.close_after = true;
                ctx.counters.timeouts_408 += 1;
            }
            _ => {
                socket.close();
                ctx.counters.idle_closed += 1;
                slot.state = SlotState::Closing { since: ctx.now };
                return true;
            }
        }
    }

    // Bounded: each round either answers a request or takes bytes.
    for _ in 0..MAX_SERVE_ROUNDS {
        let received = receive(slot, socket, ctx.now);
        moved |= received;
        match flush(slot, socket, site, ctx, &mut moved) {
            Flush::Done => {}
            Flush::Blocked => break,
            Flush::FileError => {
                socket.abort();
                slot.drop_body(site);
                ctx.counters.file_errors += 1;
                slot.state = SlotState::Closing { since: ctx.now };
                return true;
            }
        }
        if slot.close_after {
            socket.close();
            slot.state = SlotState::Closing { since: ctx.now };
            return true;
        }
        match slot.conn.poll(&*site, ctx.date, &mut slot.out) {
            Ok(Poll::Respond(r)) => {
                slot.head_sent = 0;
                slot.head_len = r.head_len;
                slot.body = r.body;
                slot.head = r.head;
                slot.close_after = r.close;
                ctx.counters.responses += 1;
                if r.status.code() >= 400 {
                    ctx.counters.errors += 1;
                }
                moved = true;
            }
            Ok(Poll::NeedMore) => {
                // Polling made room: more bytes may wait in the socket.
                if socket.can_recv() {
                    continue;
                }
                if !socket.may_recv() && !socket.can_recv() {
                    // The peer closed and every request is answered.
                    socket.close();
                    slot.state = SlotState::Closing { since: ctx.now };
                    moved = true;
                }
                break;
            }
            Ok(Poll::Closed) | Err(_) => {
                socket.close();
                slot.state = SlotState::Closing { since: ctx.now };
                moved = true;
                break;
            }
        }
    }
    moved
}
