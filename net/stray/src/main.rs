//! stray: the stray-packet daemon protection domain. Glue between the
//! runtime and the [`stray`] library, which decides the answers.
//!
//! A client of the demultiplexer like any other (its regions at
//! `net_config::ClientRegion::client_vaddr`), named `unclaimed_ipv4` in
//! the description's `<network>`: it receives the IPv4 frames no filter
//! claims, and may answer them with ICMP and TCP resets. Channels:
//! `CLIENT_MUX_CHANNEL` to the demultiplexer (one `MuxCall::Node` call at
//! start, for the node's MAC), [`TIMER_CHANNEL`] to the timer PD (`NOW` for
//! the rate limit, `SET_TIMEOUT` for the counter report).
//!
//! Its two frame buffers want `stack_size="0x10000"`.
#![no_std]
#![no_main]

use filter::Dotted;
use microkit::{log, Channel, ChannelSet, Handler, MemoryRegion};
use net_client::pd::MUX;
use net_client::{Alarm, AlarmAction, ChangeReport, ClientQueues, Colons, IoCounters, TIMER_CHANNEL};
use net_config::NetConfig;
use net_protocol::MAX_FRAME_LEN;
use packet::reply::Local;
use stray::{Counters, Outcome, Stray, BURST, RATE_PER_SECOND};
use timer_api::Timer;

const TIMER: Timer = Timer::new(Channel::new(TIMER_CHANNEL));

microkit::setvar_bytes!(__net_config, net_config::CONFIG_BYTES);

struct Running {
    stray: Stray,
    io: ClientQueues<MemoryRegion>,
    alarm: Alarm,
    report: ChangeReport<(Counters, IoCounters)>,
    /// The copy of a received frame, and the answer being written.
    frame: [u8; MAX_FRAME_LEN],
    answer: [u8; MAX_FRAME_LEN],
}

/// The PD: running, or (`None`) stopped at start for a reason it logged.
struct StrayPd(Option<Running>);

impl Running {
    fn start() -> Option<Running> {
        let config = match NetConfig::from_bytes(&__net_config.get()) {
            Ok(config) => config,
            Err(e) => {
                log!("error: {e}");
                return None;
            }
        };
        let Some(me) = config.my_client() else {
            log!("error: the network configuration has no client entry for this PD");
            return None;
        };
        if !me.unclaimed_ipv4 {
            log!("warning: not the unclaimed-IPv4 client: it will receive nothing, and its answers will be refused");
        }
        let mac = net_client::pd::node_mac(&config)?;
        let ip = config.node.ipv4;
        // SAFETY: as a client in the description's <network>, this PD has
        // its six regions mapped at the client addresses, for its life.
        let io = unsafe { ClientQueues::at_client_addresses() };
        let mut running = Running {
            stray: Stray::new(Local { mac, ip }),
            io,
            alarm: Alarm::new(),
            report: ChangeReport::new((Counters::default(), IoCounters::default())),
            frame: [0; MAX_FRAME_LEN],
            answer: [0; MAX_FRAME_LEN],
        };
        running.io.lend_receive_buffers();
        MUX.notify();
        log!(
            "ready: answering stray IPv4 to {} at {}, at most {RATE_PER_SECOND} answers/s in bursts of {BURST}",
            Dotted(ip),
            Colons(mac)
        );
        running.receive_all(TIMER.now());
        Some(running)
    }

    /// Answers every waiting frame, then asks to be woken for more.
    fn receive_all(&mut self, now: u64) {
        loop {
            while let Some(received) = self.io.receive(&mut self.frame) {
                // `frame` holds the largest frame: `copied` is all of it.
                let frame = &self.frame[..received.copied];
                if let Outcome::Send { len, .. } = self.stray.handle(now, frame, &mut self.answer) {
                    // A frame that finds no transmit slot is counted there.
                    self.io.send(&self.answer[..len]);
                }
            }
            if self.io.should_notify_mux() {
                MUX.notify();
            }
            if self.io.ready_to_wait() {
                break;
            }
        }
    }

    /// Logs the counters when due, and keeps a timeout pending for the
    /// next report.
    fn settle(&mut self, now: u64) {
        let counters = (*self.stray.counters(), *self.io.counters());
        if self.report.poll(now, &counters) {
            log!("counters: {} {}", counters.0, counters.1);
        }
        self.report.note(now, &counters);
        let result = match self.alarm.plan(self.report.deadline()) {
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
}

impl Handler for StrayPd {
    fn init() -> Self {
        let running = Running::start();
        if running.is_none() {
            log!("stopped: not answering stray packets");
        }
        StrayPd(running)
    }

    fn notified(&mut self, channels: ChannelSet) {
        let Some(running) = &mut self.0 else { return };
        let now = TIMER.now();
        if channels.contains(TIMER.channel()) {
            running.alarm.fired(now);
        }
        running.receive_all(now);
        running.settle(now);
    }
}

microkit::protection_domain!(StrayPd);
