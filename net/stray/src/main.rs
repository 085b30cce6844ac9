//! stray: the stray-packet daemon protection domain. Glue between the
//! runtime and the [`net_stray_core`] library, which decides the answers.
//!
//! A client of the demultiplexer like any other ([`NetClient`]), named
//! `unclaimed_ipv4` in the description's `<network>`: it receives the IPv4
//! frames no filter claims, and may answer them with ICMP and TCP resets.
//! Its other channel is the channel named `timer` to the timer PD, `pp="true"` on
//! stray's end (`NOW` for the rate limit, `SET_TIMEOUT` for the counter
//! report). Its buffers and the network configuration want
//! `stack_size="0x10000"`.
#![no_std]
#![no_main]

use drivers_timer_api::Timer;
use net_client::{Alarm, ChangeReport, Colons, NetClient, MAX_FRAME_LEN};
use net_config::AnswerPolicy;
use net_filter::Dotted;
use net_packet::reply::Local;
use net_packet::EthernetAddress;
use net_stray_core::{Counters, Outcome, Stray, TokenBucket};
use pds_runtime::{log, ChannelSet, Handler};

// The timer, by the name of this PD's channel end in the description.
pds_runtime::channel!(TIMER_CHANNEL = "timer", call);
static TIMER: Timer = Timer::named(&TIMER_CHANNEL);

struct Running {
    stray: Stray,
    net: NetClient,
    alarm: Alarm,
    report: ChangeReport<(Counters, u64)>,
    /// Answers that found no transmit buffer.
    not_sent: u64,
    /// The answer being written.
    answer: [u8; MAX_FRAME_LEN],
}

/// The PD: running, or (`None`) stopped at start for a reason it logged.
struct StrayPd(Option<Running>);

impl Running {
    fn start() -> Option<Running> {
        let net = match NetClient::new() {
            Ok(net) => net,
            Err(e) => {
                log!("error: {e}");
                return None;
            }
        };
        if !net.config.my_client().is_some_and(|me| me.unclaimed_ipv4) {
            log!("warning: not the unclaimed-IPv4 client: it will receive nothing, and its answers will be refused");
        }
        // The limit the demultiplexer enforces too, from the same
        // configuration (net-config's AnswerPolicy).
        let policy = net.config.my_client().map_or(AnswerPolicy::NONE, |me| me.answers);
        let mac = EthernetAddress(net.mac);
        if !mac.is_unicast() {
            log!("error: no usable MAC for the node ({})", Colons(net.mac));
            return None;
        }
        let ip = net.config.node.ipv4;
        let mut running = Running {
            stray: Stray::with_limit(
                Local { mac, ip },
                TokenBucket::new(u64::from(policy.rate_per_second), u64::from(policy.burst)),
            )
            .answering(policy.kinds),
            net,
            alarm: Alarm::new(),
            report: ChangeReport::new((Counters::default(), 0)),
            not_sent: 0,
            answer: [0; MAX_FRAME_LEN],
        };
        log!(
            "ready: answering stray IPv4 to {} at {}, at most {} answers/s in bursts of {} (kinds {:#x})",
            Dotted(ip),
            Colons(mac.0),
            policy.rate_per_second,
            policy.burst,
            policy.kinds
        );
        let now = TIMER.now();
        running.receive_all(now);
        running.settle(now);
        Some(running)
    }

    /// Answers every waiting frame; leaves the queues armed for the next.
    fn receive_all(&mut self, now: u64) {
        let (stray, answer, not_sent) = (&mut self.stray, &mut self.answer, &mut self.not_sent);
        self.net.poll(|net, frame| {
            if let Outcome::Send { len, .. } = stray.handle(now, frame, answer) {
                if net.send(&answer[..len]).is_err() {
                    *not_sent += 1;
                }
            }
        });
    }

    /// Logs the counters when due, and keeps a timeout pending for the
    /// next report.
    fn settle(&mut self, now: u64) {
        let counters = (*self.stray.counters(), self.not_sent);
        if self.report.poll(now, &counters) {
            log!("counters: {} not_sent={}", counters.0, counters.1);
        }
        self.report.note(now, &counters);
        if let Err(e) = self.alarm.arm(self.report.deadline(), now, TIMER) {
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

pds_runtime::protection_domain!(StrayPd);
