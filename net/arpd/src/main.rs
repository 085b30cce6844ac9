//! arpd: the ARP daemon protection domain. Glue between the runtime and
//! the [`arpd`] library, which holds the protocol.
//!
//! A client of the demultiplexer like any other (its regions at
//! `net_config::ClientRegion::client_vaddr`, its boot claim `arp`), plus:
//!
//! - the ARP table region, read-write, at `net_config::ARP_TABLE_VADDR`;
//! - channel `CLIENT_MUX_CHANNEL` to the demultiplexer, which it calls
//!   once at start for the node's MAC (`MuxCall::Node`);
//! - channel [`TIMER_CHANNEL`] to the timer PD (`NOW`, `SET_TIMEOUT`);
//! - channel `arpd_client_channel(n)` to each client `n` with `arp="true"`,
//!   which calls [`ArpdCall::Resolve`] and is notified when an entry it
//!   waits for appears or fails.
//!
//! arpd is called by clients and calls the demultiplexer and the timer, so
//! its priority must lie between theirs; its state (one slot per table
//! entry) wants `stack_size="0x10000"`.
#![no_std]
#![no_main]

use arp_table::{Table, TableWriter};
use arpd::{Arpd, Clients, Counters, Event, Link, Resolution, ANNOUNCEMENTS, MAX_REQUESTS};
use filter::Dotted;
use microkit::{log, Channel, ChannelSet, Handler, MemoryRegion, MessageInfo};
use net_client::{Alarm, AlarmAction, ChangeReport, ClientQueues, Colons, IoCounters, TIMER_CHANNEL};
use net_client::pd::MUX;
use net_config::{arpd_client_channel, mac_to_word, ArpdCall, NetConfig, ARP_TABLE_VADDR, ERR_BAD_REQUEST, MAX_CLIENTS};
use packet::Ipv4Address;
use timer_api::Timer;

const TIMER: Timer = Timer::new(Channel::new(TIMER_CHANNEL));

/// Bytes of a received frame arpd looks at: Ethernet and ARP headers (42)
/// and the padding to 60; a longer frame's trailer is not needed.
const FRAME_COPY: usize = 64;

microkit::setvar_bytes!(__net_config, net_config::CONFIG_BYTES);

/// The PD's side of [`Link`]: frames to the demultiplexer, notifications
/// to clients, events to the log.
struct PdLink<'a> {
    io: &'a mut ClientQueues<MemoryRegion>,
    /// The clients that may call arpd (the others have no channel).
    arp_clients: Clients,
}

impl Link for PdLink<'_> {
    fn send(&mut self, frame: &[u8]) -> bool {
        self.io.send(frame)
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
                log!("announced {} is-at {} ({number} of {ANNOUNCEMENTS})", Dotted(ip), Colons(mac))
            }
            Event::Conflict { ip, mac } => {
                log!("address conflict: {} claimed by {}; defending it", Dotted(ip), Colons(mac))
            }
            Event::Unreachable { ip } => log!("{} did not answer {MAX_REQUESTS} requests", Dotted(ip)),
        }
    }
}

struct Running {
    arpd: Arpd<'static>,
    io: ClientQueues<MemoryRegion>,
    arp_clients: Clients,
    alarm: Alarm,
    report: ChangeReport<(Counters, IoCounters)>,
    /// A buffer for the copy of each received frame.
    frame: [u8; FRAME_COPY],
}

/// The PD: running, or (`None`) stopped at start for a reason it logged.
struct ArpdPd(Option<Running>);

impl Running {
    fn start() -> Option<Running> {
        let config = match NetConfig::from_bytes(&__net_config.get()) {
            Ok(config) => config,
            Err(e) => {
                log!("error: {e}");
                return None;
            }
        };
        if config.me.is_none() || config.me != config.arpd {
            log!("error: the network configuration does not name this PD as arpd (me {:?}, arpd {:?})", config.me, config.arpd);
            return None;
        }
        let mac = net_client::pd::node_mac(&config)?;
        let arp_clients = config
            .clients()
            .iter()
            .enumerate()
            .filter(|(_, client)| client.arp)
            .fold(0, |set, (n, _)| set | 1 << n);
        // SAFETY: the builder maps the ARP table region (ARP_TABLE_SIZE,
        // page-aligned) read-write at ARP_TABLE_VADDR in arpd, the one
        // writer, for the PD's life; nothing else here touches it.
        let table = unsafe { Table::from_addr(ARP_TABLE_VADDR as usize) };
        // SAFETY: as a client in the description's <network>, this PD has
        // its six regions mapped at the client addresses, for its life.
        let io = unsafe { ClientQueues::at_client_addresses() };
        let node = config.node;
        let mut running = Running {
            arpd: Arpd::new(mac, node, TableWriter::new(table)),
            io,
            arp_clients,
            alarm: Alarm::new(),
            report: ChangeReport::new((Counters::default(), IoCounters::default())),
            frame: [0; FRAME_COPY],
        };
        running.io.lend_receive_buffers();
        MUX.notify();
        log!(
            "ready: {}/{} at {}; {} of {} clients resolve through arpd",
            Dotted(node.ipv4),
            node.prefix_len,
            Colons(mac),
            arp_clients.count_ones(),
            config.clients().len()
        );
        let now = TIMER.now();
        running.arpd.start(now, &mut PdLink { io: &mut running.io, arp_clients });
        running.settle(now);
        Some(running)
    }

    /// Receives every waiting frame, then asks to be woken for more.
    fn receive_all(&mut self, now: u64) {
        loop {
            while let Some(received) = self.io.receive(&mut self.frame) {
                let frame = &self.frame[..received.copied];
                self.arpd.receive(now, frame, &mut PdLink { io: &mut self.io, arp_clients: self.arp_clients });
            }
            if self.io.should_notify_mux() {
                MUX.notify();
            }
            if self.io.ready_to_wait() {
                break;
            }
        }
    }

    /// After any work: notifies the demultiplexer if it asked, logs the
    /// counters when due, and keeps a timeout pending for what comes next.
    fn settle(&mut self, now: u64) {
        if self.io.should_notify_mux() {
            MUX.notify();
        }
        let counters = (*self.arpd.counters(), *self.io.counters());
        if self.report.poll(now, &counters) {
            log!("counters: {} {}", counters.0, counters.1);
        }
        self.report.note(now, &counters);
        let deadline = match (self.arpd.next_deadline(), self.report.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let result = match self.alarm.plan(deadline) {
            AlarmAction::Nothing => Ok(()),
            AlarmAction::Set(at) => TIMER.set_timeout(at),
            AlarmAction::Replace(at) => {
                TIMER.cancel_all();
                TIMER.set_timeout(at)
            }
        };
        if let Err(e) = result {
            self.alarm.failed();
            log!("error: the timer refused a timeout: {e:?}");
        }
    }

    fn resolve(&mut self, client: usize, msg: MessageInfo) -> MessageInfo {
        let word = microkit::get_mr(0);
        let valid = msg.label() == ArpdCall::Resolve as u64
            && msg.length() >= 1
            && client < MAX_CLIENTS
            && self.arp_clients & (1 << client) != 0;
        let Some(ip) = u32::try_from(word).ok().filter(|_| valid).map(Ipv4Address::from_u32) else {
            return microkit::msginfo(ERR_BAD_REQUEST, 0);
        };
        let now = TIMER.now();
        let resolution = self.arpd.resolve(now, client, ip, &mut PdLink { io: &mut self.io, arp_clients: self.arp_clients });
        self.settle(now);
        match resolution {
            Resolution::Known(mac) => {
                microkit::set_mr(0, mac_to_word(mac.0));
                microkit::msginfo(resolution.label(), 1)
            }
            _ => microkit::msginfo(resolution.label(), 0),
        }
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
        running.arpd.tick(now, &mut PdLink { io: &mut running.io, arp_clients: running.arp_clients });
        running.settle(now);
    }

    fn protected(&mut self, channel: Channel, msg: MessageInfo) -> MessageInfo {
        let Some(running) = &mut self.0 else {
            return microkit::msginfo(ERR_BAD_REQUEST, 0);
        };
        // Client n calls on arpd_client_channel(n) = n + 1.
        match usize::from(channel.id()).checked_sub(usize::from(arpd_client_channel(0))) {
            Some(client) => running.resolve(client, msg),
            None => microkit::msginfo(ERR_BAD_REQUEST, 0),
        }
    }
}

microkit::protection_domain!(ArpdPd);
