//! arpd: the ARP daemon protection domain. Glue between the runtime and
//! the [`arpd`] library, which holds the protocol.
//!
//! A client of the demultiplexer like any other ([`NetClient`]: its
//! regions at `net_config::ClientRegion::client_vaddr`, its boot claim
//! `arp`, the node's MAC from the demultiplexer), plus:
//!
//! - the ARP table region, read-write, at `net_config::ARP_TABLE_VADDR`;
//! - channel the channel named `timer` to the timer PD (`NOW`, `SET_TIMEOUT`),
//!   `pp="true"` on arpd's end;
//! - channel `arpd_client_channel(n)` to each client `n` with `arp="true"`,
//!   which calls [`arpd_api::RESOLVE`] and is notified when an entry it
//!   waits for appears or fails.
//!
//! arpd is called by clients and calls the demultiplexer and the timer, so
//! its priority must lie between theirs. Its state (one slot per table
//! entry, the network configuration) wants `stack_size="0x10000"`.
#![no_std]
#![no_main]

use arpd_core::{Arpd, Clients, Counters, Event, Link, ANNOUNCEMENTS, MAX_REQUESTS};
use drivers_timer_api::Timer;
use net_arp_table::{Table, TableWriter};
use net_client::{Alarm, ChangeReport, Colons, NetClient};
use net_config::{arpd_client_channel, ARP_TABLE_VADDR, MAX_CLIENTS};
use net_filter::Dotted;
use net_packet::EthernetAddress;
use pds_runtime::{log, Channel, ChannelSet, Handler, MessageInfo};

// The timer, by the name of this PD's channel end in the description.
pds_runtime::channel!(TIMER_CHANNEL = "timer", call);
static TIMER: Timer = Timer::named(&TIMER_CHANNEL);

/// The PD's side of [`Link`]: frames to the demultiplexer, notifications
/// to clients, events to the log.
struct PdLink<'a> {
    net: &'a mut NetClient,
    /// The clients that may call arpd (the others have no channel).
    arp_clients: Clients,
}

impl Link for PdLink<'_> {
    fn send(&mut self, frame: &[u8]) -> bool {
        // Queued here; the demultiplexer is notified by `poll` or `flush`.
        self.net.send(frame).is_ok()
    }

    fn notify(&mut self, clients: Clients) {
        let mut bits = clients & self.arp_clients;
        while bits != 0 {
            let n = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Channel::new(arpd_client_channel(n)).notify();
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Announced { ip, mac, number } => {
                log!("announced {} is-at {} ({number} of {ANNOUNCEMENTS})", Dotted(ip), Colons(mac.0))
            }
            Event::Conflict { ip, mac } => {
                log!("address conflict: {} claimed by {}; defending it", Dotted(ip), Colons(mac.0))
            }
            Event::Unreachable { ip } => log!("{} did not answer {MAX_REQUESTS} requests", Dotted(ip)),
            Event::ChangeRefused { ip, claimed, owner } => log!(
                "refused {} is-at {}: {} answered at its known MAC (conflict or spoof)",
                Dotted(ip),
                Colons(claimed.0),
                Colons(owner.0)
            ),
            Event::Changed { ip, mac } => log!("{} moved to {} (its old MAC stayed silent)", Dotted(ip), Colons(mac.0)),
        }
    }
}

struct Running {
    arpd: Arpd<'static>,
    net: NetClient,
    arp_clients: Clients,
    alarm: Alarm,
    report: ChangeReport<Counters>,
}

/// The PD: running, or (`None`) stopped at start for a reason it logged.
struct ArpdPd(Option<Running>);

impl Running {
    fn start() -> Option<Running> {
        let net = match NetClient::new() {
            Ok(net) => net,
            Err(e) => {
                log!("error: {e}");
                return None;
            }
        };
        let config = &net.config;
        if config.me != config.arpd {
            log!(
                "error: the network configuration names client {:?} as arpd, not this PD ({:?})",
                config.arpd,
                config.me
            );
            return None;
        }
        let mac = EthernetAddress(net.mac);
        if !mac.is_unicast() {
            log!("error: no usable MAC for the node ({})", Colons(net.mac));
            return None;
        }
        let arp_clients =
            config.clients().iter().enumerate().filter(|(_, client)| client.arp).fold(0, |set, (n, _)| set | 1 << n);
        let (node, clients) = (config.node, config.clients().len());
        // SAFETY: the builder maps the ARP table region (ARP_TABLE_SIZE,
        // page-aligned) read-write at ARP_TABLE_VADDR in arpd, the one
        // writer, for the PD's life; nothing else here touches it.
        let table = unsafe { Table::from_addr(ARP_TABLE_VADDR as usize) };
        let mut running = Running {
            arpd: Arpd::new(mac, node, TableWriter::new(table)),
            net,
            arp_clients,
            alarm: Alarm::new(),
            report: ChangeReport::new(Counters::default()),
        };
        log!(
            "ready: {}/{} at {}; {} of {clients} clients resolve through arpd",
            Dotted(node.ipv4),
            node.prefix_len,
            Colons(mac.0),
            arp_clients.count_ones(),
        );
        let now = TIMER.now();
        running.arpd.start(now, &mut PdLink { net: &mut running.net, arp_clients });
        running.receive_all(now);
        running.settle(now);
        Some(running)
    }

    /// Handles every waiting frame; leaves the queues armed for the next.
    fn receive_all(&mut self, now: u64) {
        let (arpd, arp_clients) = (&mut self.arpd, self.arp_clients);
        self.net.poll(|net, frame| arpd.receive(now, frame, &mut PdLink { net, arp_clients }));
    }

    /// After any work: tells the demultiplexer of queued frames, logs the
    /// counters when due, and keeps a timeout pending for what comes next.
    fn settle(&mut self, now: u64) {
        self.net.flush();
        let counters = *self.arpd.counters();
        if self.report.poll(now, &counters) {
            log!("counters: {counters}");
        }
        self.report.note(now, &counters);
        let deadline = match (self.arpd.next_deadline(), self.report.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Err(e) = self.alarm.arm(deadline, now, TIMER) {
            log!("error: the timer refused a timeout: {e:?}");
        }
    }

    /// [`arpd_api::RESOLVE`] from client `client`.
    fn resolve(&mut self, client: usize, msg: MessageInfo) -> MessageInfo {
        let allowed = client < MAX_CLIENTS && self.arp_clients & (1 << client) != 0;
        let request = arpd_api::decode_request(msg.label(), msg.length(), pds_runtime::get_mr(0));
        let (true, Ok(ip)) = (allowed, request) else {
            return arpd_api::bad_request();
        };
        let now = TIMER.now();
        let arp_clients = self.arp_clients;
        let resolution = self.arpd.resolve(now, client, ip, &mut PdLink { net: &mut self.net, arp_clients });
        self.settle(now);
        arpd_api::reply_message(resolution)
    }
}

impl Handler for ArpdPd {
    fn init() -> Self {
        let running = Running::start();
        if running.is_none() {
            log!("stopped: not answering ARP");
        }
        ArpdPd(running)
    }

    fn notified(&mut self, channels: ChannelSet) {
        let Some(running) = &mut self.0 else { return };
        let now = TIMER.now();
        if channels.contains(TIMER.channel()) {
            running.alarm.fired(now);
        }
        running.receive_all(now);
        let arp_clients = running.arp_clients;
        running.arpd.tick(now, &mut PdLink { net: &mut running.net, arp_clients });
        running.settle(now);
    }

    fn protected(&mut self, channel: Channel, msg: MessageInfo) -> MessageInfo {
        let Some(running) = &mut self.0 else {
            return arpd_api::bad_request();
        };
        // Client n calls on arpd_client_channel(n) = n + 1.
        match usize::from(channel.id()).checked_sub(usize::from(arpd_client_channel(0))) {
            Some(client) => running.resolve(client, msg),
            None => arpd_api::bad_request(),
        }
    }
}

pds_runtime::protection_domain!(ArpdPd);
