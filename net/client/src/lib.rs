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

const _: () = assert!(TIMER_CHANNEL >= net_config::FIRST_FREE_CLIENT_CHANNEL);
