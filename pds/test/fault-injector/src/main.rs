//! fault-injector (test systems only): asks the monitor to make PDs fault,
//! on a fixed schedule, so that a test can watch the node recover.
//!
//! The monitor honours the request only from a PD the description marks
//! `inject_faults="true"` (the builder warns loudly about it, in its
//! output and report, and the monitor at boot); from any other PD the
//! same message is a fake fault, and the sender is stopped. The request
//! is a message on this PD's own fault endpoint
//! (`pds_boot_spec::monitor_protocol::LABEL_INJECT_FAULT`, the target's
//! name in the registers); the monitor then points the target's
//! instruction pointer at an unmapped page and resumes it, so the target
//! takes a genuine VM fault through the normal path. Nothing in a
//! production PD can kill it on request.
//!
//! [`SCHEDULE`]: seconds after this PD's `init`, and the PD to fault.
//! Needs a channel named `timer` to the timer (it calls `NOW` and
//! `SET_TIMEOUT`), so its priority is below the timer's.
#![no_std]
#![no_main]

use drivers_timer_api::Timer;
use pds_boot_spec::{cspace, monitor_protocol};
use pds_runtime::{log, msginfo, ChannelSet, Handler};

pds_runtime::channel!(TIMER_CHANNEL = "timer", call);
static TIMER: Timer = Timer::named(&TIMER_CHANNEL);

/// When (ms after init) to fault which PD. `tests/systems/recovery.system`
/// and `xtask/src/itest/recovery.rs` follow it.
const SCHEDULE: &[(u64, &str)] = &[
    (6_000, "arpd"),
    (9_000, "stray"),
    (12_000, "httpd"),
    (15_000, "file-cache"),
    (18_000, "virtio-blk"),
    (21_000, "virtio-net"),
    (24_000, "ftpd"),
    (27_000, "serial"),
    (30_000, "timer"),
];

const MS: u64 = 1_000_000;

struct Injector {
    start: u64,
    next: usize,
}

impl Injector {
    fn arm(&self) {
        if let Some(&(at, _)) = SCHEDULE.get(self.next) {
            if let Err(e) = TIMER.set_timeout(self.start + at * MS) {
                log!("error: the timer refused a timeout: {e:?}");
            }
        } else {
            log!("schedule done: {} faults injected", SCHEDULE.len());
        }
    }
}

impl Handler for Injector {
    fn init() -> Self {
        let start = TIMER.now();
        log!("ready: {} faults to inject", SCHEDULE.len());
        let injector = Injector { start, next: 0 };
        injector.arm();
        injector
    }

    fn notified(&mut self, channels: ChannelSet) {
        if !channels.contains(TIMER.channel()) {
            return;
        }
        let now = TIMER.now();
        let before = self.next;
        while let Some(&(at, target)) = SCHEDULE.get(self.next) {
            if self.start + at * MS > now {
                break;
            }
            self.next += 1;
            log!("making '{target}' fault ({} of {})", self.next, SCHEDULE.len());
            for (i, word) in monitor_protocol::name_to_words(target).into_iter().enumerate() {
                pds_runtime::set_mr(i, word);
            }
            let info = msginfo(monitor_protocol::LABEL_INJECT_FAULT, monitor_protocol::NAME_WORDS as u64);
            sel4::send(cspace::FAULT_EP, info);
        }
        if self.next < SCHEDULE.len() || self.next != before {
            self.arm();
        }
    }
}

pds_runtime::protection_domain!(Injector);
