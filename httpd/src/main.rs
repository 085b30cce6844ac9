//! httpd: the baseline HTTP server protection domain. Glue between the
//! runtime and the [`httpd`] library.
//!
//! A client of the demultiplexer (`<client pd="httpd" arp="true">`, boot
//! claim `tcp dst 80`) with:
//!
//! - the connection region, mapped read-write with `setvar_vaddr=
//!   "httpd_connections"` and `setvar_size="httpd_connections_size"`: the
//!   pool holds `size / CONNECTION_BYTES` connections
//!   (`httpd::server::pool_size`);
//! - channel [`TIMER_CHANNEL`] to the timer PD (`NOW`, `SET_TIMEOUT`),
//!   `pp="true"` on httpd's end: smoltcp's clock and timers, idle timeouts;
//! - arpd's table (read-only) and channel, from `arp="true"`;
//! - `<ioport id="0" addr="0x70" size="2">`: the CMOS clock, read once for
//!   the `Date` header (without it, dates start at the epoch).
//!
//! It calls the demultiplexer, arpd and the timer, so its priority must be
//! below all three. The site is the built-in placeholder
//! (`httpd::site::BuiltinSite`) until the file cache exists.
#![no_std]
#![no_main]

use arp_table::{Table, TableReader};
use boot_spec::cspace;
use filter::Dotted;
use httpd::arena::Arena;
use httpd::device::{EthDevice, Link, Neighbours, NoBuffer, Resolution, MAX_FRAME};
use httpd::rtc::{self, Registers};
use httpd::server::{Counters, Server, Settings, CONNECTION_BYTES};
use httpd::site::BuiltinSite;
use microkit::{get_mr, log, msginfo, set_mr, Channel, ChannelSet, Handler};
use net_client::{Alarm, AlarmAction, ChangeReport, NetClient, TIMER_CHANNEL};
use net_config::{mac_from_word, ArpdCall, Ipv4Address, ARP_KNOWN, ARP_PENDING, ARP_TABLE_VADDR, CLIENT_ARPD_CHANNEL};
use timer_api::Timer;

microkit::setvar!(httpd_connections);
microkit::setvar!(httpd_connections_size);

const TIMER: Timer = Timer::new(Channel::new(TIMER_CHANNEL));
const ARPD: Channel = Channel::new(CLIENT_ARPD_CHANNEL);
/// `<ioport id="0">`: CMOS index (0x70) and data (0x71) ports.
const CMOS: sel4::X86IoPort = sel4::X86IoPort(cspace::IOPORT_BASE);
const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;
/// The port the description's boot claim gives this PD.
const PORT: u16 = 80;

/// The demultiplexer's queues through [`NetClient`].
struct PdLink(NetClient);

impl Link for PdLink {
    fn recv(&mut self, frame: &mut [u8; MAX_FRAME]) -> Option<usize> {
        self.0.recv(frame)
    }
    fn can_send(&mut self) -> bool {
        self.0.free_tx_buffers() > 0
    }
    fn send_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> bool) -> Result<bool, NoBuffer> {
        self.0.send_with(len, fill).map_err(|_| NoBuffer)
    }
    fn flush(&mut self) {
        self.0.flush();
    }
}

/// arpd's table, read-only, and arpd's `Resolve` call.
struct PdNeighbours(TableReader<'static>);

impl Neighbours for PdNeighbours {
    fn lookup(&self, ip: Ipv4Address) -> Option<[u8; 6]> {
        self.0.lookup(ip)
    }
    fn resolve(&mut self, ip: Ipv4Address) -> Resolution {
        set_mr(0, u64::from(ip.to_u32()));
        match ARPD.pp_call(msginfo(ArpdCall::Resolve as u64, 1)).label() {
            ARP_KNOWN => Resolution::Known(mac_from_word(get_mr(0))),
            ARP_PENDING => Resolution::Pending,
            _ => Resolution::Failed,
        }
    }
}

/// One CMOS register.
fn cmos(index: u8) -> u8 {
    let _ = CMOS.out8(u64::from(CMOS_INDEX), u64::from(index));
    CMOS.in8(CMOS_DATA).unwrap_or(0xff)
}

/// The CMOS clock's registers, read between updates (see `httpd::rtc`).
fn read_cmos() -> Registers {
    let read = || {
        for _ in 0..100_000 {
            if cmos(rtc::STATUS_A) & rtc::UPDATE_IN_PROGRESS == 0 {
                break;
            }
        }
        Registers {
            seconds: cmos(rtc::SECONDS),
            minutes: cmos(rtc::MINUTES),
            hours: cmos(rtc::HOURS),
            day: cmos(rtc::DAY),
            month: cmos(rtc::MONTH),
            year: cmos(rtc::YEAR),
            status_b: cmos(rtc::STATUS_B),
        }
    };
    let mut last = read();
    for _ in 0..4 {
        let again = read();
        if again == last {
            break;
        }
        last = again;
    }
    last
}

struct Httpd {
    server: Server<PdLink, PdNeighbours, usize>,
    site: BuiltinSite,
    alarm: Alarm,
    report: ChangeReport<Counters>,
}

impl Httpd {
    /// Serves until nothing is left to do, then arms the timer and the
    /// queues' signals.
    fn run(&mut self) {
        loop {
            let now = TIMER.now();
            let due = self.server.poll(now, &self.site);
            self.report.note(now, &self.server.counters);
            if self.report.poll(now, &self.server.counters) {
                let c = self.server.counters;
                let d = self.server.device.counters;
                log!(
                    "accepted={} responses={} errors={} timeouts_408={} idle_closed={} aborted={} file_errors={} pool_full={} reclaimed={} busy={}/{}; rx={} rx_not_ipv4={} rx_not_for_us={} tx={} tx_arp_miss={} tx_no_route={} tx_no_buffer={}",
                    c.accepted, c.responses, c.errors, c.timeouts_408, c.idle_closed, c.aborted, c.file_errors, c.pool_full, c.reclaimed,
                    self.server.busy(), self.server.pool_size(),
                    d.rx_packets, d.rx_not_ipv4, d.rx_not_for_us, d.tx_frames, d.tx_arp_miss, d.tx_no_route, d.tx_no_buffer
                );
            }
            if due.is_some_and(|at| at <= now) {
                continue;
            }
            if !self.server.device.link.0.ready_to_wait() {
                continue;
            }
            let deadline = [due, self.report.deadline()].into_iter().flatten().min();
            let armed = match self.alarm.plan(deadline) {
                AlarmAction::Nothing => Ok(()),
                AlarmAction::Set(at) => TIMER.set_timeout(at),
                AlarmAction::Replace(at) => {
                    TIMER.cancel_all();
                    TIMER.set_timeout(at)
                }
            };
            if armed.is_err() {
                self.alarm.failed();
            }
            return;
        }
    }
}

impl Handler for Httpd {
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
        let (Some(base), Some(size)) = (httpd_connections.get(), httpd_connections_size.get()) else {
            panic!("the description maps no connection region (setvar_vaddr httpd_connections, setvar_size httpd_connections_size)");
        };
        // SAFETY: the description maps the region `httpd_connections`
        // read-write at `base` with `size` bytes for the PD's life, into this
        // PD only (web.system); nothing else in the PD uses it.
        let mut arena = unsafe { Arena::new(base as usize, size as usize) };
        let now = TIMER.now();
        let registers = read_cmos();
        let wall = registers.unix_seconds();
        if wall.is_none() {
            log!("warning: the CMOS clock reads {registers:?}, not a date: dates start at 1970");
        }
        let boot_epoch = wall.unwrap_or(0).saturating_sub(now / httpd::server::SECOND_NS);
        let settings = Settings {
            port: PORT,
            idle_timeout_ns: Settings::DEFAULT_IDLE_TIMEOUT_NS,
            close_timeout_ns: Settings::DEFAULT_CLOSE_TIMEOUT_NS,
            boot_epoch,
            random_seed: now ^ boot_epoch.rotate_left(32),
        };
        let device = EthDevice::new(PdLink(net), PdNeighbours(TableReader::new(table)), node, mac);
        let server = match Server::new(device, &mut arena, settings, now) {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        };
        log!(
            "serving http://{}:{PORT}/ (built-in test site): {} connections of {CONNECTION_BYTES} bytes in a {size:#x}-byte region",
            Dotted(node.ipv4),
            server.pool_size()
        );
        let mut httpd = Httpd { server, site: BuiltinSite::new(boot_epoch), alarm: Alarm::new(), report: ChangeReport::new(Counters::default()) };
        httpd.run();
        httpd
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(TIMER.channel()) {
            self.alarm.fired(TIMER.now());
        }
        // Frames, returned buffers, arpd's answer, the timer: all of it is
        // one more poll.
        self.run();
    }
}

microkit::protection_domain!(Httpd);
