//! idle: the lowest-priority PD, which tells a driver when the machine has
//! nothing else to do.
//!
//! A driver that moderates its device's interrupts (virtio-net's
//! "Interrupt moderation") polls while frames come fast. Polling on a timer
//! alone would leave frames waiting in the device's ring while the CPU
//! idles until the next tick: a closed-loop client (keep-alive HTTP) then
//! waits for every request. So before the driver sleeps in polling mode it
//! notifies this PD; this PD runs only when every other PD is blocked (its
//! priority is the lowest in the description), and then notifies the driver
//! back, which polls at once. Under a flood the CPU never idles, this PD
//! never runs, and the driver's timer paces the polls.
//!
//! It holds one channel, named `driver`, and nothing else: no memory but
//! its own, no calls, no console.
#![no_std]
#![no_main]

use pds_runtime::{ChannelSet, Handler};

// The driver that asks (`<end pd="idle" ... setvar_id="driver"/>`).
pds_runtime::channel!(DRIVER = "driver");

struct Idle;

impl Handler for Idle {
    fn init() -> Self {
        Idle
    }

    fn notified(&mut self, channels: ChannelSet) {
        // Running at all means nothing else could: say so.
        if channels.contains(DRIVER.get()) {
            DRIVER.get().deferred_notify();
        }
    }
}

pds_runtime::protection_domain!(Idle);
