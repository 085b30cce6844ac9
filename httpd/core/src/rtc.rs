//! The PC's CMOS real-time clock, read once at start for the `Date`
//! header: the timer PD counts nanoseconds since boot, not the date.
//!
//! The PD reads the registers through I/O ports 0x70 (index) and 0x71
//! (data) (`<ioport addr="0x70" size="2">`): seconds (0x00), minutes
//! (0x02), hours (0x04), day of month (0x07), month (0x08), year in the
//! century (0x09), and status register B (0x0b), whose bit 2 says the
//! values are binary rather than BCD and bit 1 that hours are 24-hour
//! (else bit 7 of the hour means PM). It waits while status register A's
//! bit 7 says an update is in progress, and reads twice until two reads
//! agree. Years are taken as 2000–2099 (QEMU's clock is the host's).

use http_core::date::days_from_civil;

/// The registers as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub day: u8,
    pub month: u8,
    pub year: u8,
    pub status_b: u8,
}

/// Register indices, in the order of [`Registers`]' date fields.
pub const SECONDS: u8 = 0x00;
pub const MINUTES: u8 = 0x02;
pub const HOURS: u8 = 0x04;
pub const DAY: u8 = 0x07;
pub const MONTH: u8 = 0x08;
pub const YEAR: u8 = 0x09;
pub const STATUS_A: u8 = 0x0a;
pub const STATUS_B: u8 = 0x0b;
/// Status A: an update is in progress.
pub const UPDATE_IN_PROGRESS: u8 = 0x80;

fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

impl Registers {
    /// Unix seconds, or `None` if the values are not a date (a clock that
    /// is absent or was never set).
    pub fn unix_seconds(&self) -> Option<u64> {
        let binary = self.status_b & 0x04 != 0;
        let h24 = self.status_b & 0x02 != 0;
        let decode = |v: u8| if binary { v } else { from_bcd(v) };
        let pm = !h24 && self.hours & 0x80 != 0;
        let mut hours = decode(self.hours & 0x7f);
        if !h24 {
            // 12-hour clock: 12 AM is 0, 12 PM is 12.
            hours %= 12;
            if pm {
                hours += 12;
            }
        }
        let (seconds, minutes) = (decode(self.seconds), decode(self.minutes));
        let (day, month, year) = (decode(self.day), decode(self.month), decode(self.year));
        if seconds > 59
            || minutes > 59
            || hours > 23
            || !(1..=31).contains(&day)
            || !(1..=12).contains(&month)
            || year > 99
        {
            return None;
        }
        let days = days_from_civil(2000 + u64::from(year), u64::from(month), u64::from(day));
        Some(days * 86_400 + u64::from(hours) * 3600 + u64::from(minutes) * 60 + u64::from(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_24_hour() {
        // 2023-11-14 22:13:20 UTC
        let r =
            Registers { seconds: 0x20, minutes: 0x13, hours: 0x22, day: 0x14, month: 0x11, year: 0x23, status_b: 0x02 };
        assert_eq!(r.unix_seconds(), Some(1_700_000_000));
    }

    #[test]
    fn binary_12_hour() {
        let r = Registers { seconds: 20, minutes: 13, hours: 0x80 | 10, day: 14, month: 11, year: 23, status_b: 0x04 };
        assert_eq!(r.unix_seconds(), Some(1_700_000_000));
        let midnight = Registers { hours: 12, ..r };
        assert_eq!(midnight.unix_seconds(), Some(1_700_000_000 - 22 * 3600));
    }

    #[test]
    fn leap_day_and_garbage() {
        // 2024-02-29 00:00:00
        let r = Registers { seconds: 0, minutes: 0, hours: 0, day: 0x29, month: 0x02, year: 0x24, status_b: 0x02 };
        assert_eq!(r.unix_seconds(), Some(1_709_164_800));
        let absent =
            Registers { seconds: 0xff, minutes: 0xff, hours: 0xff, day: 0xff, month: 0xff, year: 0xff, status_b: 0xff };
        assert_eq!(absent.unix_seconds(), None);
    }
}
