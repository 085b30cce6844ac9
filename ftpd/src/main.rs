//! ftpd: the FTP server PD. ftpd-core's server (FTP as a service of
//! net-serve's engine: SYN cookies, connections of a few hundred bytes,
//! file data sent in place from the file cache with the image's sums) in
//! the glue every server PD shares (`net-serve-pd`: the demultiplexer's
//! queues, arpd, the timer, the file cache). Anonymous, read-only,
//! passive mode only; `ftpd-core`'s docs are the specification.
//!
//! Its ports come from the description, not from this program: the
//! control port is its `<claim>` of one TCP port (21), the passive range
//! its `<claim>` of a TCP port range (e.g. `tcp dst 50000-50031`). Without
//! both it logs why and never accepts.
//!
//! The secret of the SYN cookies and hash tables is 16 bytes from
//! `lib-entropy`, as httpd's.
#![no_std]
#![no_main]

use ftpd_core::server::{self, sessions_bytes, Counters, Server, Settings, Wire};
use net_config::{ClientConfig, NodeAddress};
use net_filter::Dotted;
use net_packet::IpProtocol;
use net_serve::arena::Arena;
use net_serve::link::DeviceCounters;
use net_serve::server::Counters as TcpCounters;
use net_serve_pd::{DeviceAndCache, PdLink, PdNeighbours, Start, Store};
use pds_runtime::log;

/// The server, or why it does not serve (logged at start).
struct Ftpd(Option<Server<PdLink, PdNeighbours, Store>>);

/// The counters the PD reports (when they change).
#[derive(Clone, Copy, Default, PartialEq)]
struct Report {
    tcp: TcpCounters,
    ftp: Counters,
    device: DeviceCounters,
}

/// The control port and the passive range from the PD's claims: the TCP
/// claim of one port, and the TCP claim of a range of ports.
fn ports(me: Option<&ClientConfig>) -> Option<(u16, u16, u16)> {
    let tcp = |c: &&net_config::Claim| c.filter.protocol == Some(IpProtocol::TCP);
    let claims = me?.claims();
    let control = claims.iter().filter(tcp).find_map(|c| c.filter.dst_port.filter(|p| p.first() == p.last()))?;
    let passive = claims.iter().filter(tcp).find_map(|c| c.filter.dst_port.filter(|p| p.first() < p.last()))?;
    Some((control.first(), passive.first(), passive.last() - passive.first() + 1))
}

impl net_serve_pd::Server for Ftpd {
    type Counters = Report;

    fn start(start: Start, arena: &mut Arena) -> Self {
        let Start { link, neighbours, node, mac, now, boot_epoch, send_in_place } = start;
        let Some((control, first, count)) = ports(link.0.config.my_client()) else {
            log!("error: the description claims no control port and passive range for ftpd (<claim filter=\"tcp dst 21\"/> and e.g. <claim filter=\"tcp dst 50000-50031\"/>): not serving");
            return Ftpd(None);
        };
        let seed = lib_entropy::seed::<16>(now ^ boot_epoch);
        log!("cookie and hash secrets from {}", seed.source.describe());
        let mut settings = Settings::new(node.ipv4.0, boot_epoch, seed.bytes, send_in_place);
        settings.control_port = control;
        settings.passive_first = first;
        settings.passive_count = count;
        let wire = Wire::new(link, neighbours, node, mac);
        match server::server(wire, arena, settings, now) {
            Ok(server) => Ftpd(Some(server)),
            Err(e) => panic!("{e}"),
        }
    }

    fn poll(&mut self, now: u64, store: &mut Store) -> Option<u64> {
        self.0.as_mut()?.poll(now, store)
    }

    fn accept(&mut self) {
        if let Some(server) = &mut self.0 {
            server.accept();
        }
    }

    fn accepting(&self) -> bool {
        self.0.as_ref().is_some_and(|s| s.accepting())
    }

    fn counters(&self) -> Report {
        self.0.as_ref().map_or_else(Report::default, |s| Report {
            tcp: s.counters,
            ftp: s.service.counters,
            device: s.wire.counters,
        })
    }

    fn log_counters(&self, store: &Store) {
        let Some(s) = &self.0 else { return };
        let mux = DeviceAndCache::mux();
        let (c, f, d) = (s.counters, s.service.counters, s.wire.counters);
        log!(
            "sessions={} refused_busy={} commands={} passive_opened={} passive_failed={} data_connections={} data_refused={} transfers={} complete={} lost={} local_errors={} aborted={} bytes_in_place={} bytes_copied={} file_waits={} throttled={} sessions_in_use={} listeners={}; accepted={} aborted_connections={} time_wait={} busy={}/{} connections={}/{} syn_acks={} syn_acks_again={} table_full={} per_source_refused={} service_refused={} resets={} resets_limited={} bare_acks_dropped={} rx_bad={} no_work={}; {}",
            f.sessions, f.refused_busy, f.commands, f.passive_opened, f.passive_failed, f.data_connections, f.data_refused, f.transfers, f.complete, f.lost, f.local_errors, f.aborted, f.bytes_in_place, f.bytes_copied, f.file_waits, f.throttled,
            s.service.sessions_in_use(), s.service.listeners(),
            c.accepted, c.aborted, c.time_wait, s.works_in_use(), s.works(), s.connections(), s.capacity(),
            c.syn_acks, c.syn_acks_again, c.table_full, c.per_source_refused, c.service_refused, c.resets, c.resets_limited, c.bare_acks_dropped, c.rx_bad, c.no_work,
            DeviceAndCache(&d, store, mux)
        );
    }

    fn ready_to_wait(&mut self) -> bool {
        self.0.as_mut().is_none_or(|s| s.wire.link.0.ready_to_wait())
    }

    fn log_pool(&self, region: u64, cache: u64) {
        let Some(s) = &self.0 else { return };
        log!(
            "Cheetah TCP: {} connections and {} work contexts, {} sessions ({} bytes) in a {region:#x}-byte region; file cache {} KiB; reading the site image",
            s.capacity(),
            s.works(),
            s.service.sessions(),
            sessions_bytes(s.service.sessions(), s.service.passive_ports().1),
            cache / 1024
        );
    }

    fn abort_transfers(&mut self, _store: &mut Store) -> usize {
        self.0.as_mut().map_or(0, |s| s.abort_transfers())
    }

    fn log_serving(&self, node: &NodeAddress) {
        let Some(s) = &self.0 else { return };
        let (first, count) = s.service.passive_ports();
        log!(
            "serving ftp://{}:{}/ (site image, anonymous, read-only): passive ports {}-{}, {} sessions, segmentation offload {}",
            Dotted(node.ipv4),
            s.service.control_port(),
            first,
            first + (count - 1),
            s.service.sessions(),
            if s.segmentation_offload() { "on" } else { "off" }
        );
    }
}

type Pd = net_serve_pd::ServerPd<Ftpd>;
pds_runtime::protection_domain!(Pd);
