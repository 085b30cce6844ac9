//! The glue every server PD shares (httpd, httpd-smoltcp, ftpd): the
//! runtime, the demultiplexer's queues, arpd, the timer and the file cache
//! PD, around the program's [`Server`]. A PD names its server and does
//! `pds_runtime::protection_domain!(net_serve_pd::ServerPd<MyServer>)`;
//! everything else is here, so every server PD has one shape.
//!
//! What the description gives such a PD (`docs/ADDING-A-DOMAIN.md` walks
//! through it with ftpd):
//!
//! - a client of the demultiplexer (`<client pd="..." arp="true"
//!   send_from="site_cache">` with its boot claims: the server's ports);
//! - the connection region, mapped read-write with `setvar_vaddr=
//!   "connections"` and `setvar_size="connections_size"`: the server
//!   carves its connections from it (net-serve's `layout`);
//! - the channel named `timer` to the timer PD (`NOW`, `SET_TIMEOUT`),
//!   `pp="true"` on the server's end: timeouts, and `BOOT_EPOCH`, the wall
//!   clock at boot (the timer holds the CMOS clock; without one, dates
//!   start at the epoch);
//! - arpd's table (read-only) and channel, from `arp="true"`;
//! - its end of the file cache PD's protocol (`lib-cache-protocol`):
//!   `cache_request`, `cache_response` (rw) and `cache_info` (r), with
//!   `setvar_vaddr` of the same names, and the channel named `cache` to
//!   the file cache PD (`fs/cache`), whose server slot (`server_N` there)
//!   and quota (`cache_quota_blocks_N`) are this PD's;
//! - the cache region `site_cache`, mapped read-only with `setvar_vaddr=
//!   "site_cache"` and `setvar_size="site_cache_size"`: the file cache
//!   PD's region, into which the disk DMAs file blocks, and the PD's
//!   `send_from` region in `<network>`, so the NIC reads file bytes from it
//!   in place (net-serve's `inplace`, fs-cache-store's `CacheStore`).
//!   Without that grant file bytes are copied (logged at start).
//!
//! It calls the demultiplexer, arpd and the timer, so its priority must be
//! below all three (and the file cache's, which answers its requests).
//!
//! At start it says hello to the file cache, waits until the cache has
//! verified the image head, parses the index from the region, and only
//! then accepts connections. If the cache refuses the image (corrupt
//! superblock or index, a disk that cannot be read...: the cache's log
//! says why), the server never accepts: every connection is refused at
//! once with a reset, and not a byte of the image is served. When the
//! cache restarts, every connection sending from it is reset (its bytes
//! may be gone) and the others go on.
#![no_std]

use drivers_timer_api::{LocalClock, Timer};
use fs_cache_store::{Availability, CacheStore};
use lib_cache_protocol::region::MappedRegion;
use lib_cache_protocol::{Info, RequestProducer, ResponseConsumer};
use net_arp_table::{Table, TableReader};
use net_client::{Alarm, ChangeReport, MuxError, MuxStats, NetClient, TxOffload};
use net_config::{Ipv4Address, NodeAddress, ARP_TABLE_VADDR, CLIENT_ARPD_CHANNEL};
use net_serve::arena::Arena;
use net_serve::inplace::InPlaceList;
use net_serve::link::{DeviceCounters, Link, Neighbours, NoBuffer, Received, Resolution, MAX_FRAME};
use pds_runtime::{log, Channel, ChannelSet, Handler};

pds_runtime::setvar!(connections, rw);
pds_runtime::setvar!(connections_size, size);
pds_runtime::setvar!(cache_request, rw);
pds_runtime::setvar!(cache_response, rw);
pds_runtime::setvar!(cache_info, r);
pds_runtime::setvar!(site_cache, r);
pds_runtime::setvar!(site_cache_size, size);

// The file cache PD, by the name of this PD's channel end in the description.
pds_runtime::channel!(CACHE = "cache");

// The timer, by the name of this PD's channel end in the description.
pds_runtime::channel!(TIMER_CHANNEL = "timer", call);
pub static TIMER: Timer = Timer::named(&TIMER_CHANNEL);
const ARPD: arpd_api::Arpd = arpd_api::Arpd::new(Channel::new(CLIENT_ARPD_CHANNEL));

/// The demultiplexer's queues through [`NetClient`].
pub struct PdLink(pub NetClient);

impl Link for PdLink {
    fn recv(&mut self, frame: &mut [u8; MAX_FRAME]) -> Option<Received> {
        self.0.recv_checked(frame).map(|(len, checksum_verified)| Received { len, checksum_verified })
    }
    fn can_send(&mut self) -> bool {
        self.0.free_tx_buffers() > 0
    }
    fn send_offloaded(
        &mut self,
        len: usize,
        offload: Option<TxOffload>,
        fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>,
    ) -> Result<bool, NoBuffer> {
        self.0.send_offloaded(len, offload, fill).map_err(|_| NoBuffer)
    }
    fn offloads(&self) -> u64 {
        self.0.offloads
    }
    fn tx_in_flight(&mut self) -> u64 {
        self.0.tx_in_flight()
    }
    fn take_tx_returned(&mut self) -> u64 {
        self.0.take_tx_returned()
    }
    fn flush(&mut self) {
        self.0.flush();
    }
}

/// arpd's table, read-only, and arpd's `Resolve` call.
pub struct PdNeighbours(TableReader<'static>);

impl Neighbours for PdNeighbours {
    fn lookup(&self, ip: Ipv4Address) -> Option<[u8; 6]> {
        self.0.lookup(ip)
    }
    fn resolve(&mut self, ip: Ipv4Address) -> Resolution {
        ARPD.resolve(ip)
    }
}

/// The store the servers serve.
pub type Store = CacheStore<'static, MappedRegion>;

/// What a server starts with: the link and arpd, the node's address, the
/// clock, and whether bodies may go in place.
pub struct Start {
    pub link: PdLink,
    pub neighbours: PdNeighbours,
    pub node: NodeAddress,
    pub mac: [u8; 6],
    pub now: u64,
    pub boot_epoch: u64,
    pub send_in_place: bool,
}

/// The part of the counter line both servers log the same way: the
/// device's counters, what the demultiplexer counted for the PD (frames it
/// delivered, frames it dropped because the PD's receive queue had no free
/// buffer: [`DeviceAndCache::mux`]) and the file cache's. Tests and the
/// benchmark read these fields.
pub struct DeviceAndCache<'a>(pub &'a DeviceCounters, pub &'a Store, pub Result<MuxStats, MuxError>);

impl DeviceAndCache<'_> {
    /// The demultiplexer's counters for this PD: one protected call, made
    /// before the line is formatted (the demultiplexer logs during the
    /// call, and a half-written line would be printed around its lines).
    pub fn mux() -> Result<MuxStats, MuxError> {
        net_client::MUX.stats()
    }
}

impl core::fmt::Display for DeviceAndCache<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (d, store) = (self.0, self.1);
        let s = store.counters();
        write!(
            f,
            "rx={} rx_not_ipv4={} rx_not_for_us={} tx={} tx_arp_miss={} tx_no_route={} tx_no_buffer={} tx_unplanned={} tx_in_place_bytes={} sum_read_bytes={}; ",
            d.rx_packets, d.rx_not_ipv4, d.rx_not_for_us, d.tx_frames, d.tx_arp_miss, d.tx_no_route, d.tx_no_buffer, d.tx_unplanned, d.tx_in_place_bytes, store.sum_read_bytes(),
        )?;
        match &self.2 {
            Ok(m) => write!(
                f,
                "mux rx_delivered={} rx_no_buffer={} tx_refused={}; ",
                m.rx_delivered, m.rx_no_buffer, m.tx_refused
            )?,
            Err(e) => write!(f, "mux stats refused: {e}; ")?,
        }
        let c = store.client_stats();
        let fail = store.failures;
        write!(
            f,
            "client opens={} hits={} sent={} stale_handles={} unexpected={} failed={}/{}/{}/{}/{}; cache hits={} loads={} loaded={} failed={} evictions={} busy={} verified={} corrupt={} pins={} blocks={} bad_releases={}",
            c.opens, c.hits, c.sent, c.stale_handles, c.unexpected, fail.corrupt, fail.io_error, fail.too_large, fail.over_quota, fail.other,
            s.hits, s.loads, s.loaded, s.failed_loads, s.evictions, s.busy, s.verified, s.corrupt, s.pins, s.blocks, s.bad_releases
        )
    }
}

/// What the PD needs of its server (the program chooses which).
pub trait Server: Sized {
    type Counters: Copy + PartialEq + Default;
    /// Starts the server on the link, carving its connections from `arena`.
    fn start(start: Start, arena: &mut Arena) -> Self;
    fn poll(&mut self, now: u64, store: &mut Store) -> Option<u64>;
    /// Starts accepting connections (logs why not).
    fn accept(&mut self);
    fn accepting(&self) -> bool;
    fn counters(&self) -> Self::Counters;
    fn log_counters(&self, store: &Store);
    fn ready_to_wait(&mut self) -> bool;
    /// Logs what the pool holds.
    fn log_pool(&self, region: u64, cache: u64);
    /// Logs that it serves.
    fn log_serving(&self, node: &NodeAddress);
    /// Resets every connection that sends from the cache (its pins are
    /// void); how many.
    fn abort_transfers(&mut self, store: &mut Store) -> usize;
}

pub struct ServerPd<W: Server> {
    server: W,
    store: Store,
    /// The index was parsed and the server told to accept.
    started: bool,
    /// The cache's refusal was logged.
    refused: bool,
    node: net_config::NodeAddress,
    alarm: Alarm,
    report: ChangeReport<W::Counters>,
    /// The timer's clock read here (`drivers-timer-api`'s `LocalClock`):
    /// one reading per turn of the loop, without a call each.
    clock: Option<LocalClock>,
}

impl<W: Server> ServerPd<W> {
    /// Serves until nothing is left to do, then arms the timer and the
    /// queues' signals.
    fn run(&mut self) {
        loop {
            self.pump_cache();
            let events = self.store.events();
            let now = self.now();
            let due = self.server.poll(now, &mut self.store);
            // Opens the polls made go out now; answers that arrived
            // meanwhile wake the connections that wait for them.
            self.pump_cache();
            if self.store.events() != events && self.server.accepting() {
                continue;
            }
            let counters = self.server.counters();
            self.report.note(now, &counters);
            if self.report.poll(now, &counters) {
                self.server.log_counters(&self.store);
            }
            if due.is_some_and(|at| at <= now) {
                continue;
            }
            if !self.server.ready_to_wait() {
                continue;
            }
            let deadline = [due, self.report.deadline()].into_iter().flatten().min();
            // A refused timeout leaves nothing pending; the next wake-up
            // plans again.
            let _ = self.alarm.arm(deadline, now, TIMER);
            return;
        }
    }
}

impl<W: Server> ServerPd<W> {
    /// Nanoseconds since boot, in the timer's clock.
    fn now(&mut self) -> u64 {
        match &mut self.clock {
            Some(clock) => clock.now(),
            None => TIMER.now(),
        }
    }

    /// Takes the file cache's answers and sends the requests owed until
    /// its response queue is empty with a signal requested; starts
    /// accepting once the index is parsed, never if the cache refused the
    /// image; resets the transfers of a cache that restarted.
    fn pump_cache(&mut self) {
        loop {
            let polled = self.store.poll();
            if polled.epoch_changed {
                let aborted = self.server.abort_transfers(&mut self.store);
                log!("the file cache restarted: {aborted} connections sending from it reset");
            }
            match self.store.availability() {
                Availability::Serving if !self.started => self.booted(),
                Availability::Refused if !self.refused => {
                    self.refused = true;
                    if self.store.bad_head {
                        log!("error: the file cache published an index that does not parse");
                    }
                    log!("not serving: the file cache refused the site image (its log says why); every connection is refused");
                    // Up as it can be: the monitor may count it back.
                    pds_runtime::serving();
                }
                _ => {}
            }
            if self.store.should_signal() {
                CACHE.get().notify();
            }
            if self.store.request_signal_if_empty() {
                return;
            }
        }
    }

    fn booted(&mut self) {
        let Some(image) = self.store.image() else { return };
        self.started = true;
        log!("site image: {} files in {} blocks, from the file cache", image.len(), image.superblock().block_count);
        self.server.accept();
        if self.server.accepting() {
            self.server.log_serving(&self.node);
        }
        pds_runtime::serving();
    }
}

impl<W: Server> Handler for ServerPd<W> {
    /// The PD serves once it has read and checked the site image, later
    /// than `init` (`booted`).
    const SERVING_AFTER_INIT: bool = false;

    fn init() -> Self {
        let net = match NetClient::new() {
            Ok(net) => net,
            Err(e) => panic!("{e}"),
        };
        let node = *net.node();
        let mac = net.mac;
        // SAFETY: `arp="true"` maps the ARP table read-only at
        // ARP_TABLE_VADDR (64-byte aligned, TABLE_BYTES long) for the PD's
        // life; only this reader touches it here.
        let table = unsafe { Table::from_addr(ARP_TABLE_VADDR as usize) };
        let (Some(base), Some(size)) = (connections.get(), connections_size.get()) else {
            panic!(
                "the description maps no connection region (setvar_vaddr connections, setvar_size connections_size)"
            );
        };
        // SAFETY: the description maps the PD's connection region
        // read-write at `base` with `size` bytes for the PD's life, into this
        // PD only; nothing else in the PD uses it.
        let mut arena = unsafe { Arena::new(base as usize, size as usize) };
        let now = TIMER.now();
        let boot_epoch = TIMER.boot_epoch().unwrap_or_else(|| {
            log!("warning: the timer has no wall clock: dates start at 1970");
            0
        });
        let vars =
            (cache_request.get(), cache_response.get(), cache_info.get(), site_cache.get(), site_cache_size.get());
        let (Some(request), Some(response), Some(info), Some(cache_base), Some(cache_size)) = vars else {
            panic!("the description must map cache_request, cache_response, cache_info and site_cache (setvar_vaddr, and setvar_size for site_cache)");
        };
        // Bodies go in place if the description lets the NIC send from the
        // cache: `send_from="site_cache"` (a region of the cache's size).
        let send_from = net.config.my_client().map_or(0, |c| c.send_from_size);
        let send_in_place = send_from == cache_size;
        if !send_in_place {
            log!("file bodies are copied: the description names no send_from region of the cache's size ({send_from} bytes, the cache {cache_size})");
        }
        let neighbours = PdNeighbours(TableReader::new(table));
        let start = Start { link: PdLink(net), neighbours, node, mac, now, boot_epoch, send_in_place };
        let server = W::start(start, &mut arena);
        // SAFETY: the queue regions are pages mapped read-write for the
        // PD's life and used only through these handles; `cache_info` is a
        // page mapped readable, only read here (atomically).
        let (requests, responses, info) = unsafe {
            (
                RequestProducer::new(request as *mut u8),
                ResponseConsumer::new(response as *mut u8, ()),
                Info::at(info as *mut u8),
            )
        };
        server.log_pool(size, cache_size);
        // SAFETY: the description maps `site_cache`, `cache_size` bytes,
        // readable at `cache_base` for the PD's life; the PD reads only the
        // head the cache published and the files it pins, which the
        // device does not write.
        let region = unsafe { MappedRegion::new(cache_base as usize, cache_size as usize) };
        let store = CacheStore::new(requests, responses, info, pds_runtime::restarts() as u32, region);
        let clock = TIMER.local_clock();
        if clock.is_none() {
            log!("warning: the timer does not give its TSC scale: every reading of the clock is a call");
        }
        let mut pd = ServerPd {
            server,
            store,
            started: false,
            refused: false,
            node,
            alarm: Alarm::new(),
            report: ChangeReport::new(W::Counters::default()),
            clock,
        };
        pd.run();
        pd
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(TIMER.channel()) {
            let now = self.now();
            self.alarm.fired(now);
        }
        // Frames, returned buffers, arpd's answer, the timer: all of it is
        // one more poll.
        self.run();
    }
}
