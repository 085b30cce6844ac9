//! The FTP server's connections: [`Ftp`], net-serve's [`Service`] for FTP,
//! drives the [`Session`]s of this crate over the Cheetah engine
//! (`net_serve::server`: SYN cookies, the connection table, TIME-WAIT,
//! work contexts, file data sent in place from the cache). The engine
//! moves segments; this module decides which connections open, what each
//! one sends, and when it ends.
//!
//! # Connections
//!
//! Every connection of the engine has a role, kept in its slot
//! ([`FtpConn`], a few bytes):
//!
//! - **Control** (the session it carries). A SYN to
//!   [`Settings::control_port`] (21, RFC 959 §3.2's L) is always answered
//!   while the engine accepts. When the handshake completes, a free
//!   session of the table ([`Settings::sessions`]) is taken and its
//!   greeting written (RFC 959 §5.4: `220` on connection). With no session
//!   free the connection is still accepted, gets `421` ([`refuse_busy`]:
//!   RFC 959 §5.4 allows 421 as the answer to the connection itself), and
//!   is closed (a **busy** connection).
//! - **Data** (the session it belongs to). A SYN to a port of the passive
//!   range is answered only if a session listens on that port *and* the
//!   SYN comes from that session's control peer: RFC 2577 §5 ("port
//!   stealing": a third party connecting to a predicted passive port
//!   would receive the file), so a connection from any other address gets
//!   the engine's reset and no state. When the handshake completes,
//!   [`Session::data_connection`] decides (one connection per PASV, RFC
//!   959 §3.2); a refused one is reset. The listener then closes: its port
//!   is free for the next PASV of any session.
//!
//! The server speaks first on both (the greeting; the data), so every
//! FTP connection is one the engine sends its SYN-ACK again for until the
//! handshake completes (`Service::speaks_first`): with SYN cookies alone,
//! a lost last ACK of the handshake would leave the client waiting for a
//! greeting or data from a server that never learnt of the connection.
//!
//! Passive mode only (PASV, RFC 959 §4.1.2; EPSV, RFC 2428 §3); active
//! mode (PORT, EPRT) is refused by the session, which avoids the bounce
//! attack of RFC 2577 §3. A session holds **at most one listener**: each
//! PASV or EPSV closes the previous one before it takes a port
//! ([`Action::OpenPassive`]), so thousands of PASV leave one listener;
//! a port is never given to two sessions at once. The port is picked
//! round-robin in the range ([`Settings::passive_first`],
//! [`Settings::passive_count`]); with none free the answer is 425.
//!
//! # Control connection
//!
//! Received bytes wait in the connection's work context (at most
//! [`INPUT`] bytes: the window offered) until the session reads them:
//! [`LineReader`] (kept in the session's table entry, so a line may span
//! work contexts) makes lines, [`Session::input`] answers each with a
//! [`Reply`] and an [`Action`] that this module carries out. A reply (up
//! to [`REPLY_CAPACITY`](crate::reply::REPLY_CAPACITY) bytes) goes into the stream in pieces of at most
//! `MAX_HEAD` (1024) bytes as the ring has room; **no further command is
//! read while any of it is still to be queued**, so the input stays in the
//! buffer and the window closes: a client that pipelines commands without
//! reading the replies is slowed to the pace of its own reading. Each
//! session keeps its pending reply (its own buffer), so one slow reader
//! holds back no other session.
//!
//! The session's timeouts (login, idle, data connection: [`crate::session`]'s
//! limits) are the engine's service deadline ([`Session::deadline`]); on
//! the visit at that time [`Session::poll`] answers (`421` and close, or
//! `425`). After a `221` or `421` the control connection is closed once
//! the reply is queued (a FIN follows it). When the client closes its
//! side, the lines already received are answered, then the connection is
//! closed. When a control connection ends, its session is freed: its
//! listener closes and its data connection, if any, is reset.
//!
//! # Data connection
//!
//! A transfer ([`Action::Transfer`], after the `150`/`125`) is sent once
//! the data connection is up; stream mode marks the end of the file by
//! closing it (RFC 959 §3.4.1), so the server closes the data connection
//! after the last byte:
//!
//! - **RETR in TYPE I**: the file is opened in the store
//!   ([`FtpStore::open`]); while the store says wait, the connection waits
//!   (visited on each poll, [`Files::may_retry`]). The bytes from the
//!   restart offset (REST, RFC 3659 §5) to the end are then appended *in
//!   place*: one extent of the cache, which the NIC sends from, with the
//!   image's piece sums. As for HTTP bodies, a file longer than one
//!   checksummed piece (1460 bytes) is appended only once everything
//!   before it was sent, so that its segments start on piece boundaries.
//!   A store that keeps no file in the NIC's region (or a server told not
//!   to send in place) has the bytes copied through the ring instead.
//! - **RETR in TYPE A** (RFC 959 §3.1.1.1, end of line as CRLF) and
//!   **listings** (LIST, NLST, MLSD: RFC 959 §4.1.3, RFC 3659 §7) are
//!   made by the server: [`AsciiEncoder`] or [`ListCursor::fill`] into a
//!   scratch buffer, copied into the ring in pieces as it has room. The
//!   ring (net-serve's `HEAD_RING`, 2 KiB) keeps copied bytes until they
//!   are acknowledged, so these go at most 2 KiB per round trip: fine for
//!   listings and text files, slow for a large file in TYPE A.
//! - A **restart mid-piece** (REST in TYPE I) copies the bytes up to the
//!   file's next piece boundary through the ring and sends the rest in
//!   place, so that the in-place segments still cover whole pieces.
//!
//! When all of it is acknowledged the transfer is **complete** (`226`,
//! RFC 959 §4.2 "Closing data connection. Requested file action
//! successful"). If the connection ends before (the client reset or
//! closed it, TCP gave up) the transfer is **lost** (`426`). If the store
//! fails (the file failed verification, the cache refused it) the data
//! connection is reset, so that the client cannot take a truncated file
//! for a whole one, and the reply is `451` (a **local error**). The
//! outcome goes to [`Session::transfer_done`] and the control connection
//! is woken to send the reply. ABOR ([`Action::Abort`], RFC 959 §4.1.3:
//! `426` then `226`) resets the data connection at once.
//!
//! # Memory
//!
//! The session table is carved from the engine's region at start
//! ([`sessions_bytes`]): each entry holds a [`Session`], its
//! [`LineReader`] and its [`Reply`] (about 6.3 KiB). A connection's slot
//! keeps only its [`FtpConn`]; a work context ([`FtpWork`]) holds the
//! control input or the transfer in progress. Nothing allocates.

use crate::ascii::AsciiEncoder;
use crate::command::LineReader;
use crate::listing::ListCursor;
use crate::reply::Reply;
use crate::session::{self, refuse_busy, Action, Outcome, Session, Transfer};
use fs_format::Image;
use net_serve::arena::Arena;
use net_serve::inplace::{Files, Pins, PIECE};
use net_serve::link::{Link, Neighbours};
use net_serve::server::{self as engine, PinOf, Service, Wakes, SECOND_NS};
use net_serve::stream::{Stream, MAX_HEAD};
use net_serve::table::Slot;
use net_tcp::conn::State;
use net_tcp::cookie::FourTuple;

pub use engine::{StartError, Wire, MAX_PER_SOURCE};

/// Bytes of a control connection's input buffer: the window it offers.
pub const INPUT: usize = 1024;
/// The FTP control port (RFC 959 §3.2, RFC 1700).
pub const CONTROL_PORT: u16 = 21;
/// Rounds of "flush the reply, take the next line" per visit.
const MAX_ROUNDS: usize = 64;
/// File bytes read per round of TYPE A conversion (at most twice as many
/// come out, still within one ring piece).
const ASCII_READ: usize = MAX_HEAD / 2;

/// The FTP server on the engine, over the store `S`.
pub type Server<L, N, S> = engine::Server<L, N, Ftp<S>>;

/// Where the server gets the site: the image's index for paths and
/// listings, and file data pinned in the cache (net-serve's [`Pins`]: the
/// NIC sends from where the pin keeps it).
pub trait FtpStore: Files {
    /// The site image's index, once the store has it.
    fn image(&self) -> Option<&Image<'_>>;
    /// Asks for the data of the file at index `position` of the image (as
    /// [`Transfer::Retr`] names it).
    fn open(&mut self, position: u32) -> Opened<Self::Pin, Self::Wait>;
}

/// The answer to [`FtpStore::open`].
#[derive(Debug, PartialEq, Eq)]
pub enum Opened<P, W> {
    /// The data is in memory and verified; the pin keeps it there.
    Ready(P),
    /// Not now: ask again once [`Files::may_retry`] says so.
    Wait(W),
    /// The data cannot be served (corrupt, unreadable, too large).
    Fail,
}

/// The server's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The server's IPv4 address, sent in `227` replies.
    pub server: [u8; 4],
    /// The control port ([`CONTROL_PORT`]).
    pub control_port: u16,
    /// The first passive port and how many follow it.
    pub passive_first: u16,
    pub passive_count: u16,
    /// Sessions at once (control connections beyond get `421`).
    pub sessions: usize,
    /// Unix time (seconds) when the clock read 0 (listing dates).
    pub boot_epoch: u64,
    /// The engine's: the cookie and hash seed, per-source limits, offload,
    /// and whether the NIC may send from the store's region (else file
    /// data is copied through the ring).
    pub tcp: engine::Settings,
}

impl Settings {
    /// Port 21, passive ports 50000..50032, 64 sessions.
    pub fn new(server: [u8; 4], boot_epoch: u64, seed: [u8; 16], send_in_place: bool) -> Settings {
        Settings {
            server,
            control_port: CONTROL_PORT,
            passive_first: 50_000,
            passive_count: 32,
            sessions: 64,
            boot_epoch,
            tcp: engine::Settings::new(seed, send_in_place),
        }
    }

    fn is_passive(&self, port: u16) -> bool {
        port.wrapping_sub(self.passive_first) < self.passive_count
    }
}

/// What FTP did since the server started (the engine's own are
/// `engine::Counters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Sessions opened (control connections given a session).
    pub sessions: u64,
    /// Control connections answered `421` for want of a session.
    pub refused_busy: u64,
    /// Command lines read (too-long ones included).
    pub commands: u64,
    /// Passive listeners opened, and PASV/EPSV answered `425` for want of
    /// a free port.
    pub passive_opened: u64,
    pub passive_failed: u64,
    /// Data connections accepted, and refused after the handshake (a
    /// second connection to one PASV).
    pub data_connections: u64,
    pub data_refused: u64,
    /// Transfers started (`150`/`125`), and how they ended.
    pub transfers: u64,
    pub complete: u64,
    pub lost: u64,
    pub local_errors: u64,
    /// Transfers aborted by ABOR, QUIT or a timeout, or by the end of the
    /// session.
    pub aborted: u64,
    /// File bytes appended in place, and bytes copied through the ring
    /// (TYPE A, listings, and files outside the NIC's region).
    pub bytes_in_place: u64,
    pub bytes_copied: u64,
    /// Opens the store answered `Wait` (counted once per transfer).
    pub file_waits: u64,
    /// Visits of a control connection that found its session over the
    /// command rate (the next command waits).
    pub throttled: u64,
}

/// A connection's role, kept in its slot for its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FtpConn {
    /// Not a connection (a free slot's value).
    #[default]
    None,
    /// The control connection of session `0`.
    Control(u16),
    /// A control connection refused for want of a session: `421`, close.
    Busy { written: bool },
    /// A data connection of session `session`.
    Data { session: u16, phase: Phase },
    /// A data connection the session did not take: reset.
    Rejected,
}

/// Where a data connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No transfer yet.
    Idle,
    /// Sending.
    Running,
    /// Everything queued, the connection closing: complete once
    /// acknowledged.
    Sent,
    /// The outcome was given to the session (or the transfer aborted).
    Done,
}

/// A transfer in progress on a data connection.
#[derive(Clone, Copy, Debug)]
enum Sending {
    /// File bytes `next..end`, through `ascii` in TYPE A.
    Retr {
        position: u32,
        next: u64,
        end: u64,
        ascii: Option<AsciiEncoder>,
    },
    Listing(ListCursor),
}

/// FTP's part of a work context: the control connection's unread input,
/// or the data connection's transfer with its pin or wait.
pub struct FtpWork<P, W> {
    input: [u8; INPUT],
    input_len: usize,
    /// A control connection's reply is not all queued.
    reply_pending: bool,
    sending: Option<Sending>,
    pin: Option<P>,
    wait: Option<W>,
}

/// The data connection of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataLink {
    None,
    /// Connection `0` is up.
    Open(u32),
    /// The data connection ended before a transfer was asked for.
    Gone,
}

/// One session of the table.
struct Entry {
    session: Option<Session>,
    lines: LineReader,
    reply: Reply,
    /// Bytes of `reply` already in the stream.
    reply_queued: usize,
    /// The control connection and its peer.
    control: u32,
    peer: [u8; 4],
    /// Close the control connection once the reply is queued.
    close_after: bool,
    /// The passive port listened on.
    port: Option<u16>,
    data: DataLink,
    /// A transfer the data connection has not taken yet.
    transfer: Option<Transfer>,
    /// How the transfer ended, for the control connection to answer.
    outcome: Option<Outcome>,
    /// No command is read before this time: the session's rate limit
    /// (`Session::throttled_until`).
    throttled: Option<u64>,
}

impl Entry {
    fn empty() -> Entry {
        Entry {
            session: None,
            lines: LineReader::new(),
            reply: Reply::new(),
            reply_queued: 0,
            control: 0,
            peer: [0; 4],
            close_after: false,
            port: None,
            data: DataLink::None,
            transfer: None,
            outcome: None,
            throttled: None,
        }
    }

    fn reply_pending(&self) -> bool {
        self.reply_queued < self.reply.as_bytes().len()
    }
}

/// FTP as the engine's service (module docs).
pub struct Ftp<S> {
    settings: Settings,
    sessions: &'static mut [Entry],
    /// The session listening on each passive port.
    ports: &'static mut [Option<u16>],
    /// Where the next port search starts.
    next_port: u16,
    scratch: [u8; MAX_HEAD],
    pub counters: Counters,
    _store: core::marker::PhantomData<fn(S)>,
}

/// Bytes of the session table for `sessions` sessions and `ports`
/// passive ports (with alignment).
pub fn sessions_bytes(sessions: usize, ports: u16) -> usize {
    sessions * core::mem::size_of::<Entry>() + usize::from(ports) * core::mem::size_of::<Option<u16>>() + 64
}

/// What a region of `bytes` holds for the engine once the session table
/// of `settings` is carved from it ([`server`]).
pub fn layout<S: FtpStore>(bytes: usize, settings: &Settings) -> engine::Layout {
    let rest = bytes.saturating_sub(sessions_bytes(settings.sessions, settings.passive_count));
    engine::layout::<Ftp<S>>(rest, engine::MAX_WORKS)
}

/// Bytes a connection slot costs (with its index entries).
pub fn connection_bytes<S: FtpStore>() -> usize {
    engine::connection_bytes::<Ftp<S>>()
}

/// Bytes of one work context.
pub fn work_bytes<S: FtpStore>() -> usize {
    engine::work_bytes::<Ftp<S>>()
}

impl<S> Ftp<S> {
    /// The service with its session table out of `arena`.
    pub fn new(arena: &mut Arena, mut settings: Settings) -> Result<Ftp<S>, StartError> {
        // The range ends at port 65535 at the latest.
        let most = 65_536 - u32::from(settings.passive_first);
        settings.passive_count = u32::from(settings.passive_count).min(most) as u16;
        let sessions = arena.array(settings.sessions.min(usize::from(u16::MAX)), |_| Entry::empty());
        let sessions = sessions.ok_or(StartError::RegionTooSmall)?;
        let ports = arena.array(usize::from(settings.passive_count), |_| None).ok_or(StartError::RegionTooSmall)?;
        Ok(Ftp {
            settings,
            sessions,
            ports,
            next_port: 0,
            scratch: [0; MAX_HEAD],
            counters: Counters::default(),
            _store: core::marker::PhantomData,
        })
    }

    /// Sessions the table holds.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The control port.
    pub fn control_port(&self) -> u16 {
        self.settings.control_port
    }

    /// The passive range: its first port and how many.
    pub fn passive_ports(&self) -> (u16, u16) {
        (self.settings.passive_first, self.settings.passive_count)
    }

    /// Sessions in use.
    pub fn sessions_in_use(&self) -> usize {
        self.sessions.iter().filter(|e| e.session.is_some()).count()
    }

    /// Passive ports listened on.
    pub fn listeners(&self) -> usize {
        self.ports.iter().filter(|p| p.is_some()).count()
    }

    /// The session listening on `port`.
    fn listener(&self, port: u16) -> Option<usize> {
        if !self.settings.is_passive(port) {
            return None;
        }
        self.ports[usize::from(port - self.settings.passive_first)].map(usize::from)
    }

    /// Closes session `s`'s listener.
    fn free_port(&mut self, s: usize) {
        if let Some(port) = self.sessions[s].port.take() {
            if let Some(p) = self.ports.get_mut(usize::from(port.wrapping_sub(self.settings.passive_first))) {
                *p = None;
            }
        }
    }

    /// A free passive port for session `s`, taken.
    fn take_port(&mut self, s: usize) -> Option<u16> {
        let count = u32::from(self.settings.passive_count);
        for k in 0..count {
            let at = (u32::from(self.next_port) + k) % count;
            if self.ports[at as usize].is_none() {
                self.ports[at as usize] = Some(s as u16);
                self.next_port = ((at + 1) % count) as u16;
                let port = self.settings.passive_first.wrapping_add(at as u16);
                self.sessions[s].port = Some(port);
                return Some(port);
            }
        }
        None
    }

    /// Session `s` drops its data connection (reset on its next visit).
    fn drop_data(&mut self, s: usize, wakes: &mut Wakes<'_>) {
        let e = &mut self.sessions[s];
        e.transfer = None;
        if let DataLink::Open(j) = e.data {
            wakes.wake(j as usize);
        }
        e.data = DataLink::None;
    }

    /// Carries out `action` of session `s` (whose control connection is
    /// `i`).
    fn act(&mut self, s: usize, action: Action, now: u64, wakes: &mut Wakes<'_>) {
        match action {
            Action::None => {}
            Action::OpenPassive => {
                self.free_port(s);
                // A connection to the previous listener that carried no
                // transfer is dropped with it.
                self.drop_data(s, wakes);
                match self.take_port(s) {
                    Some(port) => {
                        self.counters.passive_opened += 1;
                        let e = &mut self.sessions[s];
                        let Some(session) = e.session.as_mut() else { return };
                        if session.passive_opened(port, now, &mut e.reply) == Action::ClosePassive {
                            self.free_port(s);
                        }
                    }
                    None => {
                        self.counters.passive_failed += 1;
                        let e = &mut self.sessions[s];
                        if let Some(session) = e.session.as_mut() {
                            session.passive_failed(&mut e.reply);
                        }
                    }
                }
            }
            Action::ClosePassive => {
                self.free_port(s);
                self.drop_data(s, wakes);
            }
            Action::Transfer(transfer) => {
                self.counters.transfers += 1;
                let e = &mut self.sessions[s];
                match e.data {
                    DataLink::Open(j) => {
                        e.transfer = Some(transfer);
                        wakes.wake(j as usize);
                    }
                    DataLink::Gone => {
                        // The client closed the data connection before
                        // asking: nothing can be sent on it.
                        e.data = DataLink::None;
                        e.outcome = Some(Outcome::ConnectionLost);
                    }
                    DataLink::None => e.transfer = Some(transfer),
                }
            }
            Action::Abort => {
                self.counters.aborted += 1;
                self.free_port(s);
                self.drop_data(s, wakes);
            }
            Action::Close => {
                let e = &mut self.sessions[s];
                e.close_after = true;
                if e.transfer.is_some() || matches!(e.data, DataLink::Open(_)) {
                    self.counters.aborted += 1;
                }
                self.free_port(s);
                self.drop_data(s, wakes);
            }
        }
    }

    /// The control connection `i` of session `s` (module docs).
    #[allow(clippy::too_many_arguments)]
    fn control(
        &mut self,
        i: usize,
        s: usize,
        slot: &mut Slot<FtpConn>,
        mut work: Option<&mut WorkOf<S>>,
        now: u64,
        store: &mut S,
        wakes: &mut Wakes<'_>,
    ) -> bool
    where
        S: FtpStore,
    {
        if slot.closing || slot.tcp.is_none() {
            return false;
        }
        let mut moved = false;
        let mut polled = false;
        for _ in 0..MAX_ROUNDS {
            // The pending reply first.
            if let Some(w) = work.as_deref_mut() {
                moved |= flush_reply(&mut self.sessions[s], &mut w.stream, slot);
            }
            let e = &mut self.sessions[s];
            if e.reply_pending() {
                if work.is_none() {
                    // A context is taken on the next visit (`wants_work`).
                    wakes.wake(i);
                }
                break;
            }
            e.reply.clear();
            e.reply_queued = 0;
            if e.close_after {
                slot.close();
                return true;
            }
            let Some(session) = e.session.as_mut() else {
                slot.close();
                return true;
            };
            // A transfer's end.
            if let Some(outcome) = e.outcome.take() {
                session.transfer_done(outcome, now, &mut e.reply);
                moved = true;
                continue;
            }
            // The timeouts.
            if !polled && session.deadline().is_some_and(|d| now >= d) {
                polled = true;
                let action = session.poll(now, &mut e.reply);
                self.act(s, action, now, wakes);
                moved = true;
                continue;
            }
            // The next line.
            let Some(w) = work.as_deref_mut() else { break };
            let input = &mut w.app;
            if input.input_len == 0 {
                if slot.peer_closed {
                    // The client closed its side: nothing more will come.
                    slot.close();
                    return true;
                }
                break;
            }
            let Some(image) = store.image() else {
                // Not serving yet (the PD accepts only once the store
                // has the index): say so and close.
                e.reply.line(421, "Service not available; closing control connection.");
                e.close_after = true;
                moved = true;
                continue;
            };
            // The rate limit: no command before its time; the input waits
            // (the window closes) and the deadline brings the next visit.
            e.throttled = session.throttled_until(now);
            if e.throttled.is_some() {
                self.counters.throttled += 1;
                break;
            }
            let (used, line) = e.lines.feed(&input.input[..input.input_len]);
            let action = match line {
                Some(line) => {
                    self.counters.commands += 1;
                    session.input(line, now, image, &mut e.reply)
                }
                None => Action::None,
            };
            input.input.copy_within(used..input.input_len, 0);
            input.input_len -= used;
            self.act(s, action, now, wakes);
            moved = true;
        }
        if let Some(w) = work {
            w.app.reply_pending = self.sessions[s].reply_pending();
            if w.app.input_len > 0 && !w.app.reply_pending && self.sessions[s].throttled.is_none() {
                // Lines left after the last round: the next visit reads on.
                wakes.wake(i);
            }
        }
        moved
    }

    /// The data connection `i` of session `s` (module docs).
    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        i: usize,
        s: usize,
        phase: Phase,
        slot: &mut Slot<FtpConn>,
        work: Option<&mut WorkOf<S>>,
        now: u64,
        store: &mut S,
        wakes: &mut Wakes<'_>,
    ) -> bool
    where
        S: FtpStore,
    {
        let Some(tcp) = slot.tcp.as_mut() else { return false };
        if phase == Phase::Done || tcp.state() == State::Closed {
            return false;
        }
        let e = &mut self.sessions[s];
        if e.session.is_none() || e.data != DataLink::Open(i as u32) {
            // Aborted (ABOR, a new PASV, the session's end): reset.
            tcp.abort();
            slot.service = FtpConn::Data { session: s as u16, phase: Phase::Done };
            return true;
        }
        if phase == Phase::Sent {
            if tcp.acked() >= slot.written {
                self.finish(s, Outcome::Complete, wakes);
                slot.service = FtpConn::Data { session: s as u16, phase: Phase::Done };
                return true;
            }
            return false;
        }
        let Some(work) = work else { return false };
        let engine::Work { stream, app, .. } = work;
        if app.sending.is_none() {
            let Some(transfer) = e.transfer.take() else { return false };
            app.sending = Some(match transfer {
                Transfer::Retr { position, start, len, ascii } => {
                    Sending::Retr { position, next: start, end: start.saturating_add(len), ascii }
                }
                Transfer::Listing(cursor) => Sending::Listing(cursor),
            });
            slot.service = FtpConn::Data { session: s as u16, phase: Phase::Running };
        }
        let result = self.send(slot, stream, app, now, store);
        match result {
            Sent::More => true,
            Sent::Stalled => false,
            Sent::All => {
                if let Some(pin) = app.pin.take() {
                    store.release(pin);
                }
                app.sending = None;
                slot.close();
                slot.service = FtpConn::Data { session: s as u16, phase: Phase::Sent };
                true
            }
            Sent::Failed => {
                if let Some(pin) = app.pin.take() {
                    store.release(pin);
                }
                if let Some(wait) = app.wait.take() {
                    store.abandon(wait);
                }
                app.sending = None;
                if let Some(tcp) = slot.tcp.as_mut() {
                    tcp.abort();
                }
                self.finish(s, Outcome::LocalError, wakes);
                slot.service = FtpConn::Data { session: s as u16, phase: Phase::Done };
                true
            }
        }
    }

    /// Session `s`'s transfer ended with `outcome`: its control connection
    /// answers.
    fn finish(&mut self, s: usize, outcome: Outcome, wakes: &mut Wakes<'_>) {
        match outcome {
            Outcome::Complete => self.counters.complete += 1,
            Outcome::ConnectionLost => self.counters.lost += 1,
            Outcome::LocalError => self.counters.local_errors += 1,
        }
        let e = &mut self.sessions[s];
        e.data = DataLink::None;
        e.transfer = None;
        e.outcome = Some(outcome);
        wakes.wake(e.control as usize);
    }

    /// Appends what it can of the transfer in `app` to `stream`.
    fn send(
        &mut self,
        slot: &mut Slot<FtpConn>,
        stream: &mut Stream<S::Pin>,
        app: &mut FtpWork<S::Pin, S::Wait>,
        now: u64,
        store: &mut S,
    ) -> Sent
    where
        S: FtpStore,
    {
        match app.sending {
            Some(Sending::Listing(ref mut cursor)) => {
                let Some(image) = store.image() else { return Sent::Failed };
                let unix = self.settings.boot_epoch + now / SECOND_NS;
                let mut moved = false;
                while !cursor.is_done() {
                    if !stream.head_room() {
                        return if moved { Sent::More } else { Sent::Stalled };
                    }
                    let n = cursor.fill(image, unix, &mut self.scratch);
                    if n == 0 {
                        break;
                    }
                    stream.hold_head(&self.scratch[..n]);
                    slot.extend(stream.commit_head());
                    self.counters.bytes_copied += n as u64;
                    moved = true;
                }
                Sent::All
            }
            Some(Sending::Retr { position, ref mut next, end, ref mut ascii }) => {
                if app.pin.is_none() && (end == 0 || (ascii.is_none() && *next >= end)) {
                    // Nothing to send: an empty file, or REST at its end.
                    return Sent::All;
                }
                if app.pin.is_none() {
                    if app.wait.as_ref().is_some_and(|w| !store.may_retry(w)) {
                        return Sent::Stalled;
                    }
                    match store.open(position) {
                        Opened::Ready(pin) => {
                            app.wait = None;
                            app.pin = Some(pin);
                        }
                        Opened::Wait(wait) => {
                            if app.wait.is_none() {
                                self.counters.file_waits += 1;
                            }
                            app.wait = Some(wait);
                            return Sent::Stalled;
                        }
                        Opened::Fail => {
                            app.wait = None;
                            return Sent::Failed;
                        }
                    }
                }
                let Some(pin) = app.pin.as_ref() else { return Sent::Stalled };
                match ascii {
                    Some(encoder) => {
                        let mut moved = false;
                        let mut input = [0u8; ASCII_READ];
                        loop {
                            if *next >= end && encoder.is_flushed() {
                                return Sent::All;
                            }
                            if !stream.head_room() {
                                return if moved { Sent::More } else { Sent::Stalled };
                            }
                            let (used, written) = if *next < end {
                                let want = (end - *next).min(ASCII_READ as u64) as usize;
                                let got = store.read(pin, *next, &mut input[..want]);
                                if got == 0 {
                                    return Sent::Failed;
                                }
                                encoder.encode(&input[..got], &mut self.scratch)
                            } else {
                                encoder.encode(&[], &mut self.scratch)
                            };
                            *next += used as u64;
                            if written > 0 {
                                stream.hold_head(&self.scratch[..written]);
                                slot.extend(stream.commit_head());
                                self.counters.bytes_copied += written as u64;
                                moved = true;
                            }
                        }
                    }
                    None => {
                        let region = if self.settings.tcp.send_in_place { store.region_offset(pin) } else { None };
                        // Bytes before the file's next piece boundary go
                        // through the ring (a restart mid-piece), so that
                        // the extent's segments cover whole pieces and
                        // take the image's sums; without the region, all.
                        let copy_to = match region {
                            None => end,
                            Some(_) if end - *next <= PIECE => *next,
                            Some(_) => next.next_multiple_of(PIECE).min(end),
                        };
                        let mut moved = false;
                        while *next < copy_to {
                            if !stream.head_room() {
                                return if moved { Sent::More } else { Sent::Stalled };
                            }
                            let want = (copy_to - *next).min(MAX_HEAD as u64) as usize;
                            let got = store.read(pin, *next, &mut self.scratch[..want]);
                            if got == 0 {
                                return Sent::Failed;
                            }
                            stream.hold_head(&self.scratch[..got]);
                            slot.extend(stream.commit_head());
                            self.counters.bytes_copied += got as u64;
                            *next += got as u64;
                            moved = true;
                        }
                        let (Some(region), true) = (region, *next < end) else { return Sent::All };
                        // In place, once it may start on a piece boundary
                        // of the stream (module docs).
                        let len = end - *next;
                        let may_start = stream.outgoing.has_room() && (len <= PIECE || slot.sent >= slot.written);
                        if !may_start {
                            return if moved { Sent::More } else { Sent::Stalled };
                        }
                        let Some(pin) = app.pin.take() else { return Sent::Stalled };
                        match stream.outgoing.begin(pin, *next, len, region) {
                            Ok(()) => {
                                stream.outgoing.queue_reserved(len as usize);
                                slot.extend(stream.stream_len());
                                self.counters.bytes_in_place += len;
                                *next = end;
                                Sent::All
                            }
                            Err(pin) => {
                                app.pin = Some(pin);
                                if moved {
                                    Sent::More
                                } else {
                                    Sent::Stalled
                                }
                            }
                        }
                    }
                }
            }
            None => Sent::Stalled,
        }
    }
}

/// A work context of the server over store `S`.
type WorkOf<S> = engine::Work<<S as Pins>::Pin, FtpWork<<S as Pins>::Pin, <S as Files>::Wait>>;

/// What [`Ftp::send`] did.
enum Sent {
    /// Appended some; more to come.
    More,
    /// Appended nothing now (no room, waiting for the store).
    Stalled,
    /// Everything is in the stream.
    All,
    /// The store failed.
    Failed,
}

/// Queues as much of `e`'s pending reply as the ring takes; whether any.
fn flush_reply<P>(e: &mut Entry, stream: &mut Stream<P>, slot: &mut Slot<FtpConn>) -> bool {
    let mut moved = false;
    while e.reply_pending() && stream.head_room() {
        let rest = &e.reply.as_bytes()[e.reply_queued..];
        let piece = &rest[..rest.len().min(MAX_HEAD)];
        stream.hold_head(piece);
        slot.extend(stream.commit_head());
        e.reply_queued += piece.len();
        moved = true;
    }
    moved
}

/// The FTP server on `wire`, its session table and the engine's tables out
/// of `arena`, not accepting yet.
pub fn server<L: Link, N: Neighbours, S: FtpStore>(
    wire: Wire<L, N>,
    arena: &mut Arena,
    settings: Settings,
    now: u64,
) -> Result<Server<L, N, S>, StartError> {
    let ftp = Ftp::new(arena, settings)?;
    engine::Server::new(wire, ftp, arena, settings.tcp, engine::MAX_WORKS, now)
}

impl<S: FtpStore> Service for Ftp<S> {
    type Store = S;
    type Conn = FtpConn;
    type Work = FtpWork<S::Pin, S::Wait>;
    const ROOM: u32 = INPUT as u32;

    fn new_work() -> Self::Work {
        FtpWork { input: [0; INPUT], input_len: 0, reply_pending: false, sending: None, pin: None, wait: None }
    }

    fn listens(&self, tuple: &FourTuple) -> bool {
        if tuple.local_port == self.settings.control_port {
            return true;
        }
        // RFC 2577 §5: only the session's own peer, and only while it
        // waits for its data connection.
        self.listener(tuple.local_port).is_some_and(|s| {
            let e = &self.sessions[s];
            e.session.is_some() && e.peer == tuple.remote_addr && !matches!(e.data, DataLink::Open(_))
        })
    }

    fn speaks_first(&self, _tuple: &FourTuple) -> bool {
        // The greeting, and the data of every transfer (module docs).
        true
    }

    fn opened(&mut self, i: usize, tuple: &FourTuple, now: u64) -> Option<FtpConn> {
        if tuple.local_port == self.settings.control_port {
            let Some(s) = self.sessions.iter().position(|e| e.session.is_none()) else {
                self.counters.refused_busy += 1;
                return Some(FtpConn::Busy { written: false });
            };
            let config = session::Config { server: self.settings.server, peer: tuple.remote_addr };
            let session = Session::new(config, now);
            let e = &mut self.sessions[s];
            *e = Entry::empty();
            session.greeting(&mut e.reply);
            e.session = Some(session);
            e.control = i as u32;
            e.peer = tuple.remote_addr;
            self.counters.sessions += 1;
            return Some(FtpConn::Control(s as u16));
        }
        let Some(s) = self.listener(tuple.local_port) else {
            // The listener closed since the SYN: reset.
            self.counters.data_refused += 1;
            return Some(FtpConn::Rejected);
        };
        let e = &mut self.sessions[s];
        let taken = !matches!(e.data, DataLink::Open(_))
            && e.session.as_mut().is_some_and(|session| session.data_connection(tuple.remote_addr));
        if !taken {
            self.counters.data_refused += 1;
            return Some(FtpConn::Rejected);
        }
        e.data = DataLink::Open(i as u32);
        // One connection per PASV: the listener's work is done.
        self.free_port(s);
        self.counters.data_connections += 1;
        Some(FtpConn::Data { session: s as u16, phase: Phase::Idle })
    }

    fn start_work(&mut self, work: &mut Self::Work) {
        work.input_len = 0;
        work.reply_pending = false;
        work.sending = None;
    }

    fn wants_work(&self, conn: &FtpConn) -> bool {
        match *conn {
            FtpConn::Control(s) => {
                let e = &self.sessions[usize::from(s)];
                e.reply_pending() || e.outcome.is_some() || e.close_after
            }
            FtpConn::Busy { written } => !written,
            FtpConn::Data { session, phase: Phase::Idle | Phase::Running } => {
                self.sessions[usize::from(session)].transfer.is_some()
            }
            _ => false,
        }
    }

    fn room(&self, work: &Self::Work) -> u32 {
        (INPUT - work.input_len) as u32
    }

    fn receive(&mut self, conn: &mut FtpConn, work: &mut Self::Work, data: &[u8], _now: u64) {
        if let FtpConn::Control(_) = conn {
            let take = data.len().min(INPUT - work.input_len);
            work.input[work.input_len..work.input_len + take].copy_from_slice(&data[..take]);
            work.input_len += take;
        }
        // Bytes on a data connection (the server only sends) and on a
        // refused one are dropped.
    }

    fn serve(
        &mut self,
        i: usize,
        slot: &mut Slot<FtpConn>,
        work: Option<&mut engine::Work<PinOf<Self>, Self::Work>>,
        now: u64,
        store: &mut S,
        wakes: &mut Wakes<'_>,
    ) -> bool {
        match slot.service {
            FtpConn::Control(s) => self.control(i, usize::from(s), slot, work, now, store, wakes),
            FtpConn::Data { session, phase } => {
                self.data(i, usize::from(session), phase, slot, work, now, store, wakes)
            }
            FtpConn::Busy { written: false } => {
                let Some(w) = work else { return false };
                if slot.closing || !w.stream.head_room() {
                    return false;
                }
                let mut reply = Reply::new();
                refuse_busy(&mut reply);
                w.stream.hold_head(reply.as_bytes());
                slot.extend(w.stream.commit_head());
                slot.close();
                slot.service = FtpConn::Busy { written: true };
                true
            }
            FtpConn::Rejected => match slot.tcp.as_mut() {
                Some(tcp) if tcp.state() != State::Closed => {
                    tcp.abort();
                    true
                }
                _ => false,
            },
            FtpConn::Busy { written: true } | FtpConn::None => {
                if slot.peer_closed && !slot.closing {
                    slot.close();
                    return true;
                }
                false
            }
        }
    }

    fn is_idle(&self, work: &Self::Work) -> bool {
        work.input_len == 0
            && !work.reply_pending
            && work.sending.is_none()
            && work.pin.is_none()
            && work.wait.is_none()
    }

    fn holds(&self, work: &Self::Work) -> bool {
        work.pin.is_some() || work.wait.is_some()
    }

    fn holds_pin(&self, work: &Self::Work) -> bool {
        work.pin.is_some()
    }

    fn waiting(&self, work: &Self::Work) -> bool {
        work.wait.is_some()
    }

    fn deadline(&self, slot: &Slot<FtpConn>, _work: Option<&Self::Work>) -> Option<u64> {
        match slot.service {
            FtpConn::Control(s) if !slot.closing => {
                let e = &self.sessions[usize::from(s)];
                match (e.session.as_ref().and_then(Session::deadline), e.throttled) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            _ => None,
        }
    }

    fn ended(
        &mut self,
        i: usize,
        slot: &Slot<FtpConn>,
        work: Option<&mut Self::Work>,
        store: &mut S,
        wakes: &mut Wakes<'_>,
    ) {
        if let Some(work) = work {
            if let Some(pin) = work.pin.take() {
                store.release(pin);
            }
            if let Some(wait) = work.wait.take() {
                store.abandon(wait);
            }
            work.sending = None;
            work.input_len = 0;
        }
        match slot.service {
            FtpConn::Control(s) => {
                let s = usize::from(s);
                if self.sessions[s].session.as_ref().is_some_and(Session::transferring) {
                    self.counters.aborted += 1;
                }
                self.free_port(s);
                self.drop_data(s, wakes);
                self.sessions[s].session = None;
            }
            FtpConn::Data { session, phase } => {
                let s = usize::from(session);
                let e = &self.sessions[s];
                if phase == Phase::Done || e.session.is_none() || e.data != DataLink::Open(i as u32) {
                    return;
                }
                let acked = slot.tcp.as_ref().map_or(0, |c| c.acked());
                match phase {
                    Phase::Sent if acked >= slot.written => self.finish(s, Outcome::Complete, wakes),
                    Phase::Idle if e.transfer.is_none() => self.sessions[s].data = DataLink::Gone,
                    _ => self.finish(s, Outcome::ConnectionLost, wakes),
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
