//! The server: smoltcp's interface and TCP sockets, a fixed pool of
//! connections, and HTTP on each.
//!
//! # The pool
//!
//! Every connection has the same storage, carved once at start out of the
//! region the description gives the PD ([`Arena`]): a smoltcp socket, its
//! receive ([`SOCKET_RX_BUFFER`]) and transmit ([`SOCKET_TX_BUFFER`])
//! buffers, and a [`Slot`] (the request buffer of http-core's
//! [`Connection`](http_core::Connection), the response head, the send position). Each connection
//! is budgeted [`CONNECTION_BYTES`], so a region of `size` bytes holds
//! `size / CONNECTION_BYTES` connections ([`pool_size`]): the description
//! sizes the pool by sizing the region.
//!
//! A free slot's socket listens on the port; smoltcp hands each SYN to a
//! listening socket, so every free slot can accept at once. When every
//! slot is busy no socket listens, and smoltcp answers a SYN with a reset:
//! the new connection is refused at once while the others go on. A slot is
//! free again when its socket is closed; one waiting in TIME-WAIT after the
//! server closed is reclaimed (aborted) only when no slot is free.
//!
//! A round of serving looks only at the slots that have something to do
//! (serving or closing a connection, or handshaking: a [`SlotSet`]), not
//! the whole pool: a listening socket changes only when a SYN or a reset
//! arrives, which the device reports, and the round after such a segment
//! looks at every slot.
//!
//! No socket listens until [`Server::accept`] is called: the PD calls it
//! once its file store is serving, so until then (and for good if the
//! site image is refused) every connection is refused at once with a
//! reset.
//!
//! # Serving
//!
//! [`Server::poll`] runs smoltcp, then serves the connections that have
//! something to do ([`crate::slot`]: requests, responses, bodies in place,
//! timeouts). It repeats while anything moves, and returns when it next
//! needs to run.

use crate::arena::Arena;
use crate::device::{EthDevice, Link, Neighbours};
use crate::endpoints::{Endpoints, Peer};
use crate::inplace::{Copied, PlanError, Planned, Planner};
use crate::site::Store;
use crate::slot::{serve, Ctx, Slot, SlotState};
use crate::slotset::SlotSet;
use http_core::DateCache;
use smoltcp::iface::{Config as IfaceConfig, Interface, PollResult, SocketSet, SocketStorage};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address as SmolIpv4};

/// Bytes of a connection's request buffer: a request line and header
/// section must fit (http-core answers `414`/`431` beyond).
pub const REQUEST_BUFFER: usize = 4096;
/// Bytes for a response head (header, or an error's small body); at least
/// http-core's `MIN_OUT`.
pub const HEAD_BUFFER: usize = 1024;
/// Bytes of a socket's receive buffer (the TCP window it offers).
pub const SOCKET_RX_BUFFER: usize = 4096;
/// Bytes of a socket's transmit buffer: what may be in flight unacknowledged.
pub const SOCKET_TX_BUFFER: usize = 16384;
/// Bytes the pool budgets per connection: socket, buffers and slot, with
/// room for alignment. [`pool_size`] divides the region by this.
pub const CONNECTION_BYTES: usize = 32 * 1024;
/// Most connections whatever the region's size.
pub const MAX_CONNECTIONS: usize = 4096;
/// Rounds of "run the stack, serve" one [`Server::poll`] makes at most
/// before yielding.
const MAX_ROUNDS: usize = 32;

const _: () = assert!(HEAD_BUFFER >= http_core::conn::MIN_OUT);

/// Connections a region of `region_bytes` holds.
pub fn pool_size(region_bytes: usize) -> usize {
    (region_bytes / CONNECTION_BYTES).min(MAX_CONNECTIONS)
}

/// Nanoseconds in a second and a millisecond.
pub const SECOND_NS: u64 = 1_000_000_000;
const MS_NS: u64 = 1_000_000;

/// The server's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The TCP port to listen on.
    pub port: u16,
    /// See "Timeouts" in the module docs.
    pub idle_timeout_ns: u64,
    /// See "Timeouts" in the module docs.
    pub close_timeout_ns: u64,
    /// Unix time (seconds) when the clock read 0: the `Date` header is
    /// `boot_epoch + now`.
    pub boot_epoch: u64,
    /// Seed of smoltcp's initial sequence numbers and ports.
    pub random_seed: u64,
    /// Whether the NIC may send from the store's region (the
    /// description's `send_from` names it): bodies then go in place
    /// ([`crate::inplace`]); otherwise they are copied into the socket.
    pub send_in_place: bool,
}

impl Settings {
    pub const DEFAULT_IDLE_TIMEOUT_NS: u64 = 15 * SECOND_NS;
    pub const DEFAULT_CLOSE_TIMEOUT_NS: u64 = 5 * SECOND_NS;
}

/// What the server did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: u64,
    /// Responses produced (any status).
    pub responses: u64,
    /// Of those, `4xx` and `5xx`.
    pub errors: u64,
    /// `408` sent on idle connections with part of a request.
    pub timeouts_408: u64,
    /// Idle connections between requests closed quietly.
    pub idle_closed: u64,
    /// Connections aborted: the peer stopped reading, or did not close
    /// after the server did, within the timeouts.
    pub aborted: u64,
    /// Responses replaced by an error because the store could not give the
    /// file's data (corrupt, unreadable, too large), and connections
    /// aborted because it gave less than it had announced.
    pub file_errors: u64,
    /// Times a response waited for the store (a load, or room).
    pub file_waits: u64,
    /// Times the pool became full (every slot busy: new connections are
    /// refused until one frees).
    pub pool_full: u64,
    /// TIME-WAIT connections reclaimed for a new connection.
    pub reclaimed: u64,
    /// File bytes copied into the stack: bodies from a store that keeps
    /// no data in the `send_from` region (0 with the site image, whose
    /// bodies go in place).
    pub copied_bytes: u64,
}

/// Why the server could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The region holds no connection.
    NoConnections,
    /// The region is smaller than its connections need: the budget
    /// [`CONNECTION_BYTES`] is wrong for this build.
    RegionTooSmall,
    /// smoltcp refused to listen on the port.
    Listen,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::NoConnections => {
                write!(f, "the connection region holds no connection of {CONNECTION_BYTES} bytes")
            }
            StartError::RegionTooSmall => {
                write!(f, "the connections do not fit their region ({CONNECTION_BYTES} bytes each is too little)")
            }
            StartError::Listen => write!(f, "cannot listen on the port"),
        }
    }
}

/// The server (see the module docs).
pub struct Server<L, N, H: Copy + 'static, P: 'static, W: 'static> {
    pub device: EthDevice<L, N>,
    iface: Interface,
    sockets: SocketSet<'static>,
    slots: &'static mut [Slot<H, P, W>],
    /// The slot serving each peer, for the planner of outgoing segments.
    endpoints: Endpoints,
    /// Slots whose stream holds pins: the ones [`Server::retire`] looks at.
    pinned: SlotSet,
    /// Slots a round of [`Server::serve_all`] looks at: serving a
    /// connection or closing one, or handshaking. The others listen and
    /// have nothing to do until a SYN (or a reset) arrives, which makes
    /// the next round look at every slot.
    active: SlotSet,
    /// Slots serving or closing a connection.
    busy: usize,
    settings: Settings,
    date: DateCache,
    pub counters: Counters,
    /// Whether every slot was busy after the last poll.
    full: bool,
    /// Whether free slots listen ([`Server::accept`]).
    accepting: bool,
}

/// smoltcp's clock from the timer's nanoseconds.
fn instant(ns: u64) -> Instant {
    Instant::from_micros((ns / 1000) as i64)
}

fn smol_ipv4(a: net_config::Ipv4Address) -> SmolIpv4 {
    SmolIpv4::from(a.to_u32())
}

impl<L: Link, N: Neighbours, H: Copy + 'static, P: 'static, W: 'static> Server<L, N, H, P, W> {
    /// Sets up the interface on the device's node address and a pool of
    /// [`pool_size`]`(arena.remaining())` connections out of `arena`, none
    /// listening yet ([`Server::accept`]).
    pub fn new(
        mut device: EthDevice<L, N>,
        arena: &mut Arena,
        settings: Settings,
        now_ns: u64,
    ) -> Result<Self, StartError> {
        let count = pool_size(arena.remaining());
        if count == 0 {
            return Err(StartError::NoConnections);
        }
        let mut config = IfaceConfig::new(HardwareAddress::Ip);
        config.random_seed = settings.random_seed;
        let mut iface = Interface::new(config, &mut device.with_planner(&mut Copied), instant(now_ns));
        let node = device.node;
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(smol_ipv4(node.ipv4)), node.prefix_len.min(32)));
        });
        if let Some(gateway) = node.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(smol_ipv4(gateway));
        }
        let storage = arena.array(count, |_| SocketStorage::EMPTY).ok_or(StartError::RegionTooSmall)?;
        let mut sockets = SocketSet::new(&mut storage[..]);
        let mut first_handle = None;
        for _ in 0..count {
            let rx = arena.bytes(SOCKET_RX_BUFFER).ok_or(StartError::RegionTooSmall)?;
            let tx = arena.bytes(SOCKET_TX_BUFFER).ok_or(StartError::RegionTooSmall)?;
            let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
            socket.set_nagle_enabled(false);
            let handle = sockets.add(socket);
            first_handle.get_or_insert(handle);
        }
        // Slot i serves the i-th socket.
        let slots = {
            let mut handles = sockets.iter().map(|(h, _)| h);
            let mut missing = false;
            let slots = arena.array(count, |_| match handles.next() {
                Some(h) => Slot::new(h),
                None => {
                    missing = true;
                    Slot::new(first_handle.unwrap_or_else(|| unreachable!("count > 0")))
                }
            });
            match slots {
                Some(slots) if !missing => slots,
                _ => return Err(StartError::RegionTooSmall),
            }
        };
        let endpoints = Endpoints::new(arena, count).ok_or(StartError::RegionTooSmall)?;
        let pinned = SlotSet::new(arena, count).ok_or(StartError::RegionTooSmall)?;
        let active = SlotSet::new(arena, count).ok_or(StartError::RegionTooSmall)?;
        let date = DateCache::new(settings.boot_epoch + now_ns / SECOND_NS);
        Ok(Server {
            device,
            iface,
            sockets,
            slots,
            endpoints,
            pinned,
            active,
            busy: 0,
            settings,
            date,
            counters: Counters::default(),
            full: false,
            accepting: false,
        })
    }

    /// Starts accepting connections: every free slot listens on the port.
    pub fn accept(&mut self) -> Result<(), StartError> {
        self.accepting = true;
        self.device.listeners_may_change = true;
        for slot in self.slots.iter() {
            let socket = self.sockets.get_mut::<tcp::Socket>(slot.socket);
            if slot.state == SlotState::Listening && !socket.is_listening() {
                socket.listen(self.settings.port).map_err(|_| StartError::Listen)?;
            }
        }
        Ok(())
    }

    /// Whether connections are accepted.
    pub fn accepting(&self) -> bool {
        self.accepting
    }

    /// Connections in the pool.
    pub fn pool_size(&self) -> usize {
        self.slots.len()
    }

    /// Slots serving a connection (or closing one).
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// The `Date` cache (its text is the current `Date` value).
    pub fn date(&self) -> &DateCache {
        &self.date
    }

    /// Runs the stack and serves every connection at time `now_ns`
    /// (see the module docs). Returns when to run again at the latest
    /// (ns), if anything waits for time.
    pub fn poll<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, now_ns: u64, site: &mut S) -> Option<u64> {
        self.date.update(self.settings.boot_epoch + now_ns / SECOND_NS);
        let now = instant(now_ns);
        let mut exhausted = true;
        for _ in 0..MAX_ROUNDS {
            let frames = self.device.counters.tx_frames;
            let mut planner = SlotPlanner { slots: &mut *self.slots, endpoints: &self.endpoints, store: &*site };
            let changed = self.iface.poll(now, &mut self.device.with_planner(&mut planner), &mut self.sockets)
                == PollResult::SocketStateChanged;
            // Frames sent may unblock a body waiting for its head to go
            // (see `flush`).
            let changed = changed || self.device.counters.tx_frames != frames;
            self.device.link.flush();
            self.retire(site);
            let served = self.serve_all(now_ns, site);
            if !changed && !served {
                exhausted = false;
                break;
            }
        }
        if exhausted {
            // More to do: come back at once, after others had their turn.
            return Some(now_ns);
        }
        self.deadline(now_ns)
    }

    /// Releases the pins of file data no frame can reference any more:
    /// extents the peer acknowledged, or whose connection ended, once the
    /// transmit buffers in flight at that moment have come back
    /// ([`crate::inplace`], "Pins").
    fn retire<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, site: &mut S) {
        // Returns first, then what is in flight: a buffer that comes back
        // after this reading is reported by the next one.
        let returned = self.device.link.take_tx_returned();
        let in_flight = self.device.link.tx_in_flight();
        let release = &mut |pin| site.release(pin);
        let mut next = self.pinned.first_from(0);
        while let Some(i) = next {
            next = self.pinned.first_from(i + 1);
            let Some(slot) = self.slots.get_mut(i) else { continue };
            if returned != 0 {
                slot.outgoing.returned(returned, release);
            }
            if slot.state != SlotState::Listening {
                let socket = self.sockets.get::<tcp::Socket>(slot.socket);
                let acked = slot.outgoing.queued.saturating_sub(socket.send_queue() as u64);
                slot.outgoing.retire_acked(acked, in_flight, release);
            }
            if !slot.outgoing.holds_pins() {
                self.pinned.remove(i);
            }
        }
    }

    /// The store's pins are void (the file cache PD restarted): every
    /// connection whose response reads from a pin is aborted with a reset
    /// and its pin given back. How many.
    pub fn abort_transfers<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, site: &mut S) -> usize {
        let mut aborted = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.state == SlotState::Listening || !(slot.holds_pin() || slot.outgoing.holds_pins()) {
                continue;
            }
            self.sockets.get_mut::<tcp::Socket>(slot.socket).abort();
            slot.drop_body(site);
            self.active.insert(i);
            aborted += 1;
        }
        self.counters.aborted += aborted as u64;
        aborted
    }

    /// Serves the active slots once (every slot after a SYN or reset
    /// arrived); whether anything moved.
    fn serve_all<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, now: u64, site: &mut S) -> bool {
        let mut moved = false;
        let mut in_flight = None;
        let every = core::mem::take(&mut self.device.listeners_may_change);
        let next_of = |active: &SlotSet, from: usize| if every { Some(from) } else { active.first_from(from) };
        let mut next = next_of(&self.active, 0);
        while let Some(i) = next {
            next = next_of(&self.active, i + 1);
            let Some(slot) = self.slots.get_mut(i) else { break };
            let socket = self.sockets.get_mut::<tcp::Socket>(slot.socket);
            let before = slot.state;
            if before == SlotState::Listening {
                match socket.state() {
                    // Nothing to do until a SYN arrives.
                    State::Listen => {
                        self.active.remove(i);
                        continue;
                    }
                    // Watched until the handshake ends.
                    State::SynReceived => {
                        self.active.insert(i);
                        continue;
                    }
                    _ => {}
                }
            }
            let mut ctx = Ctx {
                date: &self.date,
                now,
                settings: &self.settings,
                accepting: self.accepting,
                counters: &mut self.counters,
                endpoints: &mut self.endpoints,
            };
            moved |= serve(slot, i, socket, site, &mut ctx);
            if slot.outgoing.holds_pins() {
                self.pinned.insert(i);
            }
            match (before, slot.state) {
                (SlotState::Listening, SlotState::Listening) => {}
                (SlotState::Listening, _) => self.busy += 1,
                (_, SlotState::Listening) => {
                    self.busy -= 1;
                    let in_flight = *in_flight.get_or_insert_with(|| self.device.link.tx_in_flight());
                    end_connection(slot, i, &mut self.endpoints, site, in_flight);
                }
                _ => {}
            }
            if slot.state == SlotState::Listening {
                self.active.remove(i);
            } else {
                self.active.insert(i);
            }
        }
        if self.busy == self.slots.len() {
            moved |= self.reclaim_time_wait(site);
        }
        let full = self.busy == self.slots.len();
        if full && !self.full {
            self.counters.pool_full += 1;
        }
        self.full = full;
        moved
    }

    /// With every slot busy: frees one whose connection only waits out
    /// TIME-WAIT (the server closed it and the peer acknowledged).
    fn reclaim_time_wait<S: Store<Handle = H, Pin = P, Wait = W>>(&mut self, site: &mut S) -> bool {
        let mut next = self.active.first_from(0);
        while let Some(i) = next {
            next = self.active.first_from(i + 1);
            let Some(slot) = self.slots.get_mut(i) else { break };
            let socket = self.sockets.get_mut::<tcp::Socket>(slot.socket);
            if slot.state != SlotState::Listening && socket.state() == State::TimeWait && self.accepting {
                socket.abort();
                if socket.listen(self.settings.port).is_ok() {
                    slot.state = SlotState::Listening;
                    slot.drop_body(site);
                    end_connection(slot, i, &mut self.endpoints, site, self.device.link.tx_in_flight());
                    self.busy -= 1;
                    self.active.remove(i);
                    self.counters.reclaimed += 1;
                    return true;
                }
            }
        }
        false
    }

    /// The earliest time something is due: smoltcp's timers, idle and close
    /// timeouts.
    fn deadline(&mut self, now_ns: u64) -> Option<u64> {
        let stack = self
            .iface
            .poll_delay(instant(now_ns), &self.sockets)
            .map(|d| now_ns.saturating_add(d.total_micros().saturating_mul(1000)));
        let mut earliest = stack;
        let mut next = self.active.first_from(0);
        while let Some(i) = next {
            next = self.active.first_from(i + 1);
            let due = self.slots.get(i).and_then(|s| match s.state {
                SlotState::Listening => None,
                SlotState::Open => Some(s.last_activity.saturating_add(self.settings.idle_timeout_ns)),
                SlotState::Closing { since } => Some(since.saturating_add(self.settings.close_timeout_ns)),
            });
            earliest = earliest.into_iter().chain(due).min();
        }
        // No finer than a millisecond: smoltcp's clock is in microseconds.
        earliest.map(|at| at.max(now_ns + MS_NS / 1000))
    }
}

/// A connection ended (its socket is closed): its extents retire (their
/// pins go back once the frames in flight, `in_flight`, have come back)
/// and its peer no longer names the slot.
fn end_connection<S: Store>(
    slot: &mut Slot<S::Handle, S::Pin, S::Wait>,
    index: usize,
    endpoints: &mut Endpoints,
    site: &mut S,
    in_flight: u64,
) {
    slot.outgoing.retire_all(in_flight, &mut |pin| site.release(pin));
    if let Some(peer) = slot.peer.take() {
        // Unless a newer connection from the same peer took it over.
        if endpoints.get(peer) == Some(index) {
            endpoints.remove(peer);
        }
    }
}

/// The [`Planner`] of the server's segments: the connection's
/// [`Outgoing`] stream, found by the peer; segments to no connection (a
/// reset to a refused SYN) carry no file data.
struct SlotPlanner<'a, H, P, W, S> {
    slots: &'a mut [Slot<H, P, W>],
    endpoints: &'a Endpoints,
    store: &'a S,
}

impl<H, P, W, S: Store<Pin = P>> Planner for SlotPlanner<'_, H, P, W, S> {
    fn plan(&mut self, peer: Peer, seq: u32, payload: &[u8]) -> Result<Planned, PlanError> {
        match self.endpoints.get(peer).and_then(|i| self.slots.get_mut(i)) {
            Some(slot) => slot.outgoing.plan(seq, payload, self.store),
            None => Copied.plan(peer, seq, payload),
        }
    }
}
