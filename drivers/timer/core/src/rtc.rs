//! The PC's CMOS real-time clock, read once at boot: the timer counts
//! nanoseconds since boot, and this gives them a date (`Timer::boot_epoch`
//! in `drivers-timer-api`: the Unix time at which `NOW` read 0).
//!
//! The timer reads the registers through I/O ports 0x70 (index) and 0x71
//! (data) (`<ioport id="1" addr="0x70" size="2">`, [`CmosPorts`]): seconds
//! (0x00), minutes (0x02), hours (0x04), day of month (0x07), month (0x08),
//! year in the century (0x09), and status register B (0x0b), whose bit 2
//! says the values are binary rather than BCD and bit 1 that hours are
//! 24-hour (else bit 7 of the hour means PM). [`read`] waits while status
//! register A's bit 7 says an update is in progress, and reads again until
//! two reads agree. Years are taken as 2000–2099 (QEMU's clock is the
//! host's).
//!
//! The ports also index the CMOS NVRAM; only the timer holds them, and it
//! only reads.

use http_date::days_from_civil;

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

/// One CMOS register by its index (the PD writes the index to port 0x70
/// and reads port 0x71; a missing port reads as `0xff`).
pub trait CmosPorts {
    fn register(&mut self, index: u8) -> u8;
}

/// Polls of status register A for the end of an update before reading
/// anyway (an update lasts under 2 ms; a clock stuck in one must not hang
/// the boot).
pub const MAX_UPDATE_POLLS: u32 = 100_000;
/// Reads after the first, until two agree.
pub const MAX_REREADS: u32 = 4;

/// The clock's registers, read between updates: each read first waits
/// (at most [`MAX_UPDATE_POLLS`] polls) until no update is in progress, and
/// reads are repeated until two in a row agree (at most [`MAX_REREADS`]
/// more), so that a rollover between two registers (23:59:59 to 00:00:00)
/// is never mixed into one date.
pub fn read(ports: &mut impl CmosPorts) -> Registers {
    let mut read_once = || {
        for _ in 0..MAX_UPDATE_POLLS {
            if ports.register(STATUS_A) & UPDATE_IN_PROGRESS == 0 {
                break;
            }
        }
        Registers {
            seconds: ports.register(SECONDS),
            minutes: ports.register(MINUTES),
            hours: ports.register(HOURS),
            day: ports.register(DAY),
            month: ports.register(MONTH),
            year: ports.register(YEAR),
            status_b: ports.register(STATUS_B),
        }
    };
    let mut last = read_once();
    for _ in 0..MAX_REREADS {
        let again = read_once();
        if again == last {
            break;
        }
        last = again;
    }
    last
}

/// The Unix time (seconds) at which a clock that reads `now_ns` since boot
/// read 0, from the wall-clock time `wall` read at `now_ns`; saturates at 0.
pub fn boot_epoch(wall: u64, now_ns: u64) -> u64 {
    wall.saturating_sub(now_ns / 1_000_000_000)
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

    /// A CMOS that counts its reads: `update` polls of status A report an
    /// update in progress, and the seconds register moves on after the
    /// `tick_after`-th register read.
    struct FakeCmos {
        regs: [u8; 16],
        update: u32,
        reads: u32,
        tick_after: u32,
    }

    impl CmosPorts for FakeCmos {
        fn register(&mut self, index: u8) -> u8 {
            self.reads += 1;
            if self.reads == self.tick_after {
                self.regs[usize::from(SECONDS)] += 1;
            }
            if index == STATUS_A && self.update > 0 {
                self.update -= 1;
                return UPDATE_IN_PROGRESS;
            }
            self.regs[usize::from(index)]
        }
    }

    fn fake(update: u32, tick_after: u32) -> FakeCmos {
        let mut regs = [0u8; 16];
        // 2023-11-14 22:13:20, BCD, 24-hour.
        for (index, value) in
            [(SECONDS, 0x20), (MINUTES, 0x13), (HOURS, 0x22), (DAY, 0x14), (MONTH, 0x11), (YEAR, 0x23)]
        {
            regs[usize::from(index)] = value;
        }
        regs[usize::from(STATUS_B)] = 0x02;
        FakeCmos { regs, update, reads: 0, tick_after }
    }

    #[test]
    fn read_waits_out_an_update_and_rereads_until_two_agree() {
        let mut cmos = fake(3, 0);
        assert_eq!(read(&mut cmos).unix_seconds(), Some(1_700_000_000));
        // Three polls in progress, then one clear poll and seven registers,
        // then a second read (a poll and seven registers) that agrees.
        assert_eq!(cmos.reads, 3 + 8 + 8);
        // The seconds move during the first read: the second read differs,
        // a third agrees with it, and the later value is the one returned.
        let mut ticking = fake(0, 3);
        assert_eq!(read(&mut ticking).unix_seconds(), Some(1_700_000_001));
        assert_eq!(ticking.reads, 3 * 8);
    }

    #[test]
    fn read_gives_up_on_a_clock_stuck_in_an_update() {
        let mut stuck = fake(u32::MAX, 0);
        assert_eq!(read(&mut stuck).unix_seconds(), Some(1_700_000_000));
        assert!(stuck.reads <= (MAX_REREADS + 1) * (MAX_UPDATE_POLLS + 7));
    }

    #[test]
    fn boot_epoch_is_the_wall_clock_minus_the_time_since_boot() {
        assert_eq!(boot_epoch(1_700_000_000, 2_500_000_000), 1_699_999_998);
        assert_eq!(boot_epoch(1, 5_000_000_000), 0);
    }
}
