//! httpd-smoltcp: the web server PD with the smoltcp server
//! (`httpd_core::server`: one smoltcp socket per 32 KiB slot), kept as the
//! variant to compare the Cheetah server (`httpd`) against. The glue is
//! net-serve-pd's; `tests/systems/web-smoltcp.system` runs it.
#![no_std]
#![no_main]

use httpd_core::arena::Arena;
use httpd_core::device::EthDevice;
use httpd_core::server::{Counters, Server, Settings, CONNECTION_BYTES};
use httpd_core::PORT;
use net_config::NodeAddress;
use net_filter::Dotted;
use net_serve_pd::{DeviceAndCache, PdLink, PdNeighbours, Server as Web, Start, Store};
use pds_runtime::log;

struct Smoltcp(
    Server<PdLink, PdNeighbours, u32, fs_cache_store::CachePin<'static>, lib_cache_protocol::client::WaitToken>,
);

impl Web for Smoltcp {
    type Counters = Counters;

    fn start(start: Start, arena: &mut Arena) -> Self {
        let Start { link, neighbours, node, mac, now, boot_epoch, send_in_place } = start;
        let settings = Settings {
            port: PORT,
            idle_timeout_ns: Settings::DEFAULT_IDLE_TIMEOUT_NS,
            close_timeout_ns: Settings::DEFAULT_CLOSE_TIMEOUT_NS,
            boot_epoch,
            random_seed: u64::from_le_bytes(lib_entropy::seed::<8>(now ^ boot_epoch).bytes),
            send_in_place,
        };
        let device = EthDevice::new(link, neighbours, node, mac);
        match Server::new(device, arena, settings, now) {
            Ok(server) => Smoltcp(server),
            Err(e) => panic!("{e}"),
        }
    }

    fn poll(&mut self, now: u64, store: &mut Store) -> Option<u64> {
        self.0.poll(now, store)
    }

    fn accept(&mut self) {
        if let Err(e) = self.0.accept() {
            log!("error: {e}");
        }
    }

    fn accepting(&self) -> bool {
        self.0.accepting()
    }

    fn counters(&self) -> Counters {
        self.0.counters
    }

    fn log_counters(&self, store: &Store) {
        let mux = DeviceAndCache::mux();
        let c = self.0.counters;
        let d = self.0.device.counters;
        log!(
            "accepted={} responses={} errors={} timeouts_408={} idle_closed={} aborted={} file_errors={} file_waits={} pool_full={} reclaimed={} busy={}/{} copied_bytes={}; {}",
            c.accepted, c.responses, c.errors, c.timeouts_408, c.idle_closed, c.aborted, c.file_errors, c.file_waits, c.pool_full, c.reclaimed,
            self.0.busy(), self.0.pool_size(), c.copied_bytes,
            DeviceAndCache(&d, store, mux)
        );
    }

    fn ready_to_wait(&mut self) -> bool {
        self.0.device.link.0.ready_to_wait()
    }

    fn log_pool(&self, region: u64, cache: u64) {
        log!(
            "{} connections of {CONNECTION_BYTES} bytes in a {region:#x}-byte region; file cache {} KiB; reading the site image",
            self.0.pool_size(),
            cache / 1024
        );
    }

    fn abort_transfers(&mut self, store: &mut Store) -> usize {
        self.0.abort_transfers(store)
    }

    fn log_serving(&self, node: &NodeAddress) {
        log!(
            "serving http://{}:{PORT}/ (site image): {} connections of {CONNECTION_BYTES} bytes",
            Dotted(node.ipv4),
            self.0.pool_size()
        );
    }
}

type Pd = net_serve_pd::ServerPd<Smoltcp>;
pds_runtime::protection_domain!(Pd);
