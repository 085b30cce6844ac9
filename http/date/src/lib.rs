//! HTTP dates (RFC 9110 §5.6.7), shared by the server (`http-core`) and
//! the site image (`site-format`, which stores `Last-Modified`): formatting IMF-fixdate, parsing the three
//! formats a recipient must accept, and the once-a-second `Date` cache.
//!
//! Times are unix seconds (`u64`, UTC, no leap seconds). Dates before 1970
//! cannot be represented and are refused by the parser (`None`): a
//! condition carrying one is then ignored, which is what RFC 9110 asks of
//! an invalid date.
#![no_std]

#[cfg(test)]
extern crate std;
#[cfg(test)]
mod tests;

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const LONG_DAY_NAMES: [&[u8]; 7] =
    [b"Monday", b"Tuesday", b"Wednesday", b"Thursday", b"Friday", b"Saturday", b"Sunday"];
const MONTH_NAMES: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Largest year formatted and parsed: keeps every computation far from
/// overflow. IMF-fixdate has a four-digit year anyway.
const MAX_YEAR: u64 = 9999;

/// Days since 1970-01-01 of the given civil date (proleptic Gregorian),
/// for `year >= 1970` (Hinnant's `days_from_civil`, restricted to
/// non-negative results).
pub fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Years start in March so the leap day is the last day of a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // 719468 = days from 0000-03-01 to 1970-01-01.
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of a day count since
/// 1970-01-01 (Hinnant's `civil_from_days`).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Largest unix time that formats with a four-digit year.
pub const MAX_TIME: u64 = 253_402_300_799; // 9999-12-31 23:59:59

/// Formats `secs` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
/// Times past year 9999 are formatted as [`MAX_TIME`].
pub fn format_imf_fixdate(secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    let secs = secs.min(MAX_TIME);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAY_NAMES[(days % 7) as usize]);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    put2(&mut out[12..14], year / 100);
    put2(&mut out[14..16], year % 100);
    put2(&mut out[17..19], rem / 3600);
    put2(&mut out[20..22], rem / 60 % 60);
    put2(&mut out[23..25], rem % 60);
    out
}

fn put2(out: &mut [u8], v: u64) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// The `Date` header value, reformatted only when the second changes
/// (RFC 9110 §6.6.1: an origin server with a clock must send `Date`; one
/// formatting per second is enough for any number of responses).
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: u64,
    text: [u8; IMF_FIXDATE_LEN],
    formats: u64,
}

impl DateCache {
    /// A cache holding `now` (unix seconds).
    pub fn new(now: u64) -> Self {
        DateCache { secs: now, text: format_imf_fixdate(now), formats: 1 }
    }

    /// Sets the current time; reformats only if the second changed.
    pub fn update(&mut self, now: u64) {
        if now != self.secs {
            self.secs = now;
            self.text = format_imf_fixdate(now);
            self.formats += 1;
        }
    }

    /// The current time in unix seconds.
    pub fn now(&self) -> u64 {
        self.secs
    }

    /// The current time as an IMF-fixdate.
    pub fn text(&self) -> &[u8; IMF_FIXDATE_LEN] {
        &self.text
    }

    /// How many times the date was formatted (for tests and statistics).
    pub fn formats(&self) -> u64 {
        self.formats
    }
}

/// Parses an HTTP-date in any of the three formats of RFC 9110 §5.6.7:
///
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` (the one senders use),
/// - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`,
/// - obsolete asctime: `Sun Nov  6 08:49:37 1994`.
///
/// RFC 850's two-digit year is read as the RFC says: a year that would be
/// more than 50 years after `now` is taken as the most recent past year
/// with the same last two digits. Day names must be valid but are not
/// checked against the date; the fields must be in range (a second of 60 is
/// accepted, as the grammar allows a leap second). Leading and trailing
/// whitespace is ignored; anything else makes the date invalid (`None`).
pub fn parse_http_date(value: &[u8], now: u64) -> Option<u64> {
    let v = trim_ows(value);
    if v.len() == IMF_FIXDATE_LEN && v.get(3) == Some(&b',') {
        parse_imf_fixdate(v)
    } else if v.len() == 24 && v.get(3) == Some(&b' ') {
        parse_asctime(v)
    } else {
        parse_rfc850(v, now)
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

fn month_of(name: &[u8]) -> Option<u64> {
    MONTH_NAMES.iter().position(|m| &m[..] == name).map(|i| i as u64 + 1)
}

fn is_day_name(name: &[u8]) -> bool {
    DAY_NAMES.iter().any(|d| &d[..] == name)
}

/// `HH:MM:SS` → seconds in the day.
fn time_of_day(v: &[u8]) -> Option<u64> {
    if v.len() != 8 || v[2] != b':' || v[5] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&v[0..2])?, digits(&v[3..5])?, digits(&v[6..8])?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

fn assemble(year: u64, month: u64, day: u64, tod: u64) -> Option<u64> {
    if !(1970..=MAX_YEAR).contains(&year) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + tod)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(v: &[u8]) -> Option<u64> {
    if !is_day_name(&v[0..3])
        || &v[3..5] != b", "
        || v[7] != b' '
        || v[11] != b' '
        || v[16] != b' '
        || &v[25..] != b" GMT"
    {
        return None;
    }
    let day = digits(&v[5..7])?;
    let month = month_of(&v[8..11])?;
    let year = digits(&v[12..16])?;
    assemble(year, month, day, time_of_day(&v[17..25])?)
}

/// `Sun Nov  6 08:49:37 1994` (the day is space-padded, or two digits)
fn parse_asctime(v: &[u8]) -> Option<u64> {
    if !is_day_name(&v[0..3]) || v[3] != b' ' || v[7] != b' ' || v[10] != b' ' || v[19] != b' ' {
        return None;
    }
    let month = month_of(&v[4..7])?;
    let day = match v[8] {
        b' ' => digits(&v[9..10])?,
        _ => digits(&v[8..10])?,
    };
    let year = digits(&v[20..24])?;
    assemble(year, month, day, time_of_day(&v[11..19])?)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn parse_rfc850(v: &[u8], now: u64) -> Option<u64> {
    let comma = v.iter().position(|&b| b == b',')?;
    if !LONG_DAY_NAMES.iter().any(|d| *d == &v[..comma]) {
        return None;
    }
    let rest = &v[comma..];
    // ", DD-Mon-YY HH:MM:SS GMT"
    if rest.len() != 24
        || &rest[0..2] != b", "
        || rest[4] != b'-'
        || rest[8] != b'-'
        || rest[11] != b' '
        || &rest[20..] != b" GMT"
    {
        return None;
    }
    let day = digits(&rest[2..4])?;
    let month = month_of(&rest[5..8])?;
    let yy = digits(&rest[9..11])?;
    let (this_year, _, _) = civil_from_days(now.min(MAX_TIME) / 86_400);
    // The year with these last two digits in this century; if that is
    // more than 50 years ahead, the one a century earlier.
    let mut year = this_year - this_year % 100 + yy;
    if year > this_year + 50 {
        year -= 100;
    }
    assemble(year, month, day, time_of_day(&rest[12..20])?)
}
