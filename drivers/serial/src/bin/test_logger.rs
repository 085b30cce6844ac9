//! serial-test-logger: a PD for the integration tests. In `init` it logs a
//! burst of numbered lines, more than its console ring holds, so that the
//! ring fills and the runtime has to let the serial driver drain it; then
//! one line per notification it receives.
#![no_std]
#![no_main]

use pds_runtime::{log, ChannelSet, Handler};

/// Lines in the burst: about 5 KiB, well over the ring's 2 KiB.
const BURST: u32 = 100;

struct Logger;

impl Handler for Logger {
    fn init() -> Self {
        for i in 1..=BURST {
            log!("burst line {i:03} of {BURST}: the quick brown fox jumps over the lazy dog");
        }
        log!("burst done");
        Logger
    }

    fn notified(&mut self, channels: ChannelSet) {
        log!("notified on {channels:?}");
    }
}

pds_runtime::protection_domain!(Logger);
