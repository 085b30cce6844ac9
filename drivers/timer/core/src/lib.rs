//! The timer driver's logic, free of system calls so that it can be tested
//! on the host.
//!
//! - Time is the TSC, converted to nanoseconds with a factor measured at
//!   boot against the PIT, whose input clock is a fixed 1.193182 MHz on
//!   every PC ([`calibrate`], [`Clock`]).
//! - Interrupts come from PIT channel 0 in mode 0 ("interrupt on terminal
//!   count"): a one-shot of at most 65535 ticks (54.9 ms), programmed for
//!   the nearest deadline and re-armed until a later one is reached
//!   ([`pit_count_for`]).
//! - Pending timeouts are a fixed table, a few per client
//!   ([`Timeouts`]).
//! - The date comes from the CMOS real-time clock, read once at boot
//!   ([`rtc`]): clients ask for the Unix time at which the clock read 0.
//! - Both outlive a restart of the timer ([`saved`]): its clients keep
//!   reading the TSC with the first life's scale.
#![no_std]
#![forbid(unsafe_code)]

mod clock;
pub mod rtc;
pub mod saved;
mod timeouts;

pub use clock::*;
pub use timeouts::*;

#[cfg(test)]
mod tests;
