//! Times in replies and listings, from Unix seconds (UTC, no leap
//! seconds), using the project's civil-date arithmetic
//! (`http_date::civil_from_days`).
//!
//! - [`mdtm`]: the `time-val` of RFC 3659 §2.3, `YYYYMMDDHHMMSS`, always
//!   UTC ("Time values are always represented in UTC"), used by MDTM
//!   (§3) and the `modify` fact (§7.5.3). No fraction: the image stores
//!   whole seconds.
//! - [`ls_date`]: the 12 columns of `ls -l`, which LIST imitates (RFC 959
//!   leaves LIST's format open; clients parse the Unix one): `Mon dd hh:mm`
//!   for a time within the last six months (182 days) and not in the
//!   future, else `Mon dd  yyyy`, as POSIX `ls` does.
//!
//! Years past 9999 are shown as 9999-12-31 23:59:59 (`http_date::MAX_TIME`),
//! so both forms keep their fixed width.

use http_date::{civil_from_days, MAX_TIME};

/// Length of [`mdtm`]'s result.
pub const MDTM_LEN: usize = 14;
/// Length of [`ls_date`]'s result.
pub const LS_DATE_LEN: usize = 12;
/// How old a time may be to be shown with its hour in `ls` form: 182 days.
pub const LS_RECENT_SECS: u64 = 182 * 86_400;

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// (year, month, day, hour, minute, second) of `secs`.
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let secs = secs.min(MAX_TIME);
    let (y, mo, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    (y, mo, d, rem / 3600, rem / 60 % 60, rem % 60)
}

fn digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `secs` as `YYYYMMDDHHMMSS` (RFC 3659 §2.3).
pub fn mdtm(secs: u64) -> [u8; MDTM_LEN] {
    let (y, mo, d, h, mi, s) = civil(secs);
    let mut out = [0; MDTM_LEN];
    digits(&mut out[0..4], y);
    digits(&mut out[4..6], mo);
    digits(&mut out[6..8], d);
    digits(&mut out[8..10], h);
    digits(&mut out[10..12], mi);
    digits(&mut out[12..14], s);
    out
}

/// `secs` as `ls -l` shows it at time `now`: `Mon dd hh:mm` or
/// `Mon dd  yyyy` (the day padded with a space).
pub fn ls_date(secs: u64, now: u64) -> [u8; LS_DATE_LEN] {
    let (y, mo, d, h, mi, _) = civil(secs);
    let mut out = [b' '; LS_DATE_LEN];
    out[..3].copy_from_slice(MONTHS[(mo as usize).clamp(1, 12) - 1]);
    if d >= 10 {
        digits(&mut out[4..6], d);
    } else {
        digits(&mut out[5..6], d);
    }
    if secs <= now && now - secs < LS_RECENT_SECS {
        digits(&mut out[7..9], h);
        out[9] = b':';
        digits(&mut out[10..12], mi);
    } else {
        digits(&mut out[8..12], y);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdtm_of_known_dates() {
        // RFC 3659 §2.3 time-val, UTC.
        assert_eq!(&mdtm(0), b"19700101000000");
        assert_eq!(&mdtm(784_111_777), b"19941106084937"); // RFC 9110's example date
        assert_eq!(&mdtm(951_782_400), b"20000229000000"); // leap day of a century leap year
        assert_eq!(&mdtm(1_700_000_000), b"20231114221320");
        assert_eq!(&mdtm(4_107_542_399), b"21000228235959"); // 2100 is not a leap year
        assert_eq!(&mdtm(4_107_542_400), b"21000301000000");
        assert_eq!(&mdtm(u64::MAX), b"99991231235959");
    }

    #[test]
    fn ls_date_recent_and_old() {
        let t = 1_700_000_000; // 2023-11-14 22:13:20
        assert_eq!(&ls_date(t, t + 60), b"Nov 14 22:13");
        assert_eq!(&ls_date(t, t + LS_RECENT_SECS), b"Nov 14  2023");
        assert_eq!(&ls_date(t, t - 1), b"Nov 14  2023"); // in the future
        assert_eq!(&ls_date(0, t), b"Jan  1  1970");
        assert_eq!(&ls_date(784_111_777, 784_111_777), b"Nov  6 08:49");
    }
}
