//! httpd: the web server PD with the Cheetah server
//! (`httpd_core::cheetah` on net-tcp: SYN cookies, connections of a few
//! hundred bytes, compact TIME-WAIT, bodies sent from the file cache). The
//! glue is net-serve-pd's; `httpd-smoltcp` is the smoltcp variant.
//!
//! The secret of the SYN cookies and hash tables is 16 bytes from
//! `lib-entropy` (RDSEED, else RDRAND, else the clocks, which is logged as
//! guessable).
#![no_std]
#![no_main]

use httpd_core::arena::Arena;
use httpd_core::cheetah::{connection_bytes, server, Counters, Server, Settings, Wire};
use httpd_core::device::DeviceCounters;
use httpd_core::PORT;
use net_config::NodeAddress;
use net_filter::Dotted;
use net_serve::server::Counters as TcpCounters;
use net_serve_pd::{DeviceAndCache, PdLink, PdNeighbours, Server as Web, Start, Store};
use pds_runtime::log;

struct Cheetah(Server<PdLink, PdNeighbours, Store>);

/// The counters the PD reports (when they change).
#[derive(Clone, Copy, Default, PartialEq)]
struct Report {
    tcp: TcpCounters,
    http: Counters,
    device: DeviceCounters,
}

impl Web for Cheetah {
    type Counters = Report;

    fn start(start: Start, arena: &mut Arena) -> Self {
        let Start { link, neighbours, node, mac, now, boot_epoch, send_in_place } = start;
        let seed = lib_entropy::seed::<16>(now ^ boot_epoch);
        log!("cookie and hash secrets from {}", seed.source.describe());
        let settings = Settings::new(PORT, boot_epoch, seed.bytes, send_in_place);
        let wire = Wire::new(link, neighbours, node, mac);
        match server(wire, arena, settings, now) {
            Ok(server) => Cheetah(server),
            Err(e) => panic!("{e}"),
        }
    }

    fn poll(&mut self, now: u64, store: &mut Store) -> Option<u64> {
        self.0.poll(now, store)
    }

    fn accept(&mut self) {
        self.0.accept();
    }

    fn accepting(&self) -> bool {
        self.0.accepting()
    }

    fn counters(&self) -> Report {
        Report { tcp: self.0.counters, http: self.0.service.counters, device: self.0.wire.counters }
    }

    /// `busy` counts work contexts in use (a connection with a request or
    /// response in progress, or pins waiting for the NIC); `copied_bytes`
    /// is always 0 (bodies go only in place), logged as the smoltcp
    /// variant logs it.
    fn log_counters(&self, store: &Store) {
        let mux = DeviceAndCache::mux();
        let (c, h) = (self.0.counters, self.0.service.counters);
        let d = self.0.wire.counters;
        log!(
            "accepted={} responses={} errors={} timeouts_408={} idle_closed={} aborted={} time_wait={} file_errors={} file_waits={} busy={}/{} connections={}/{} time_wait_records={} syn_acks={} table_full={} per_source_refused={} resets={} resets_limited={} bare_acks_dropped={} early_segments_dropped={} rx_bad={} no_work={} source_works_refused={} wakes={} copied_bytes=0; {}",
            c.accepted, h.responses, h.errors, h.timeouts_408, h.idle_closed, c.aborted, c.time_wait, h.file_errors, h.file_waits,
            self.0.works_in_use(), self.0.works(), self.0.connections(), self.0.capacity(), self.0.time_wait_records(),
            c.syn_acks, c.table_full, c.per_source_refused, c.resets, c.resets_limited, c.bare_acks_dropped, c.early_segments_dropped, c.rx_bad, c.no_work, c.source_works_refused,
            pds_runtime::wakes(), DeviceAndCache(&d, store, mux)
        );
    }

    fn ready_to_wait(&mut self) -> bool {
        self.0.wire.link.0.ready_to_wait()
    }

    fn log_pool(&self, region: u64, cache: u64) {
        log!(
            "Cheetah TCP: {} connections of {} bytes and {} work contexts in a {region:#x}-byte region; file cache {} KiB; reading the site image",
            self.0.capacity(),
            connection_bytes::<Store>(),
            self.0.works(),
            cache / 1024
        );
    }

    fn abort_transfers(&mut self, _store: &mut Store) -> usize {
        self.0.abort_transfers()
    }

    fn log_serving(&self, node: &NodeAddress) {
        log!(
            "serving http://{}:{PORT}/ (site image): Cheetah TCP, {} connections, segmentation offload {}",
            Dotted(node.ipv4),
            self.0.capacity(),
            if self.0.segmentation_offload() { "on" } else { "off" }
        );
    }
}

type Pd = net_serve_pd::ServerPd<Cheetah>;
pds_runtime::protection_domain!(Pd);
