//! What every network PD behind the demultiplexer (`net-mux`) does the same
//! way: its end of the `lib/net-protocol` contract at the fixed addresses of
//! `net_config::ClientRegion`, and the bookkeeping of time.
//!
//! - [`ClientQueues`]: lends every receive buffer, copies received frames
//!   out of `rx_data` into the PD's own memory, sends frames from the
//!   [`TX_BUFFERS`](net_config::TX_BUFFERS) slots of `tx_data`, and checks
//!   everything the demultiplexer hands back (it is another PD: a bad
//!   descriptor is counted, never trusted).
//! - [`TxSlots`]: which transmit slots are in flight.
//! - [`Alarm`]: keeps at most one timeout pending at the timer for the
//!   earliest deadline the PD has.
//! - [`ChangeReport`]: logs counters at most every [`REPORT_PERIOD_NS`], and
//!   only when they changed.
//!
//! The PD's channels: [`net_config::CLIENT_MUX_CHANNEL`] to the
//! demultiplexer, [`TIMER_CHANNEL`] to the timer PD.
#![no_std]

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_written_with_colons() {
        let mac = packet::EthernetAddress([0x52, 0x54, 0, 0x12, 0xab, 0x0f]);
        assert_eq!(std::format!("{}", Colons(mac)), "52:54:00:12:ab:0f");
    }
}

#[cfg(feature = "microkit")]
pub mod pd;
mod queues;
mod schedule;
mod slots;

pub use queues::{ClientQueues, DataRegion, IoCounters, Received, Regions};
pub use schedule::{Alarm, AlarmAction, ChangeReport, REPORT_PERIOD_NS};
pub use slots::TxSlots;

/// The network PDs' channel id to the timer PD (`drivers/timer`), which
/// they call for `NOW` and `SET_TIMEOUT` and which notifies them when a
/// timeout expires.
pub const TIMER_CHANNEL: u8 = 10;

/// Nanoseconds in a second, for the daemons' intervals.
pub const SECOND_NS: u64 = 1_000_000_000;

/// A MAC as `52:54:00:12:34:56`, for logs.
pub struct Colons(pub packet::EthernetAddress);

impl core::fmt::Display for Colons {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0 .0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

const _: () = assert!(TIMER_CHANNEL >= net_config::FIRST_FREE_CLIENT_CHANNEL);
