use crate::{civil_from_days, days_from_civil, format_imf_fixdate, parse_http_date, DateCache, MAX_TIME};
use std::string::String;

/// Sun, 06 Nov 1994 08:49:37 GMT
const LM: u64 = 784_111_777;
/// Tue, 14 Nov 2023 22:13:20 GMT
const NOW: u64 = 1_700_000_000;

fn fmt(secs: u64) -> String {
    String::from_utf8(format_imf_fixdate(secs).to_vec()).unwrap()
}

#[test]
fn formats_imf_fixdate() {
    assert_eq!(fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(fmt(LM), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(fmt(NOW), "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_eq!(fmt(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(fmt(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
    assert_eq!(fmt(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
    assert_eq!(fmt(MAX_TIME), "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_eq!(fmt(u64::MAX), fmt(MAX_TIME));
}

#[test]
fn parses_the_three_formats() {
    assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", NOW), Some(LM));
    assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", NOW), Some(LM));
    assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994", NOW), Some(LM));
    assert_eq!(parse_http_date(b"Thu Nov 16 08:49:37 1994", NOW), Some(LM + 10 * 86_400));
    assert_eq!(parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT ", NOW), Some(LM));
    assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT", NOW), Some(0));
    assert_eq!(parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT", NOW), Some(951_782_400));
    // A leap second is in the grammar.
    assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:60 GMT", NOW), Some(LM + 23));
}

#[test]
fn round_trips() {
    let mut t = 0u64;
    while t < 5_000_000_000 {
        assert_eq!(parse_http_date(&format_imf_fixdate(t), NOW), Some(t), "{t}");
        t += 86_399 * 7 + 12_345;
    }
}

#[test]
fn rfc850_two_digit_years_follow_the_50_year_rule() {
    // Now is 2023: "73" is 2073 (50 years ahead, not more), "74" is 1974.
    let y2073 = parse_http_date(b"Sunday, 01-Jan-73 00:00:00 GMT", NOW).unwrap();
    assert_eq!(fmt(y2073), "Sun, 01 Jan 2073 00:00:00 GMT");
    let y1974 = parse_http_date(b"Tuesday, 01-Jan-74 00:00:00 GMT", NOW).unwrap();
    assert_eq!(fmt(y1974), "Tue, 01 Jan 1974 00:00:00 GMT");
    let y2000 = parse_http_date(b"Saturday, 01-Jan-00 00:00:00 GMT", NOW).unwrap();
    assert_eq!(fmt(y2000), "Sat, 01 Jan 2000 00:00:00 GMT");
    // Before 1970: not representable.
    assert_eq!(parse_http_date(b"Monday, 01-Jan-69 00:00:00 GMT", 0), None);
}

#[test]
fn rejects_invalid_dates() {
    for bad in [
        &b""[..],
        b"yesterday",
        b"Sun, 06 Nov 1994 08:49:37 UTC",
        b"Sun, 06 Nov 1994 08:49:37 gmt",
        b"Sun, 31 Nov 1994 08:49:37 GMT",
        b"Sun, 29 Feb 1900 08:49:37 GMT",
        b"Sun, 00 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nox 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 24:00:00 GMT",
        b"Sun, 06 Nov 1994 08:60:00 GMT",
        b"Sun, 06 Nov 1994 08:49:61 GMT",
        b"Xyz, 06 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1969 08:49:37 GMT",
        b"Sun, 6 Nov 1994 08:49:37 GMT",
        b"Sun,  6 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        b"Sun, +6 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 8:49:37  GMT",
        b"Sun, 06-Nov-94 08:49:37 GMT",
        b"Sunday, 06 Nov 1994 08:49:37 GMT",
        b"Sunny, 06-Nov-94 08:49:37 GMT",
        b"Sunday, 06-Nov-1994 08:49:37 GMT",
        b"Sun Nov 31 08:49:37 1994",
        b"Sun Nov 6 08:49:37 1994",
        b"Sun Nov  6 08:49:37 94",
        b"Sun Nov  6 08:49:37 1994 GMT",
        b"\xff\xfe, 06 Nov 1994 08:49:37 GMT",
    ] {
        assert_eq!(parse_http_date(bad, NOW), None, "{}", std::string::String::from_utf8_lossy(bad));
    }
}

#[test]
fn date_cache_formats_once_per_second() {
    let mut d = DateCache::new(NOW);
    assert_eq!(d.text(), b"Tue, 14 Nov 2023 22:13:20 GMT");
    for _ in 0..1000 {
        d.update(NOW);
    }
    assert_eq!(d.formats(), 1);
    d.update(NOW + 1);
    assert_eq!(d.text(), b"Tue, 14 Nov 2023 22:13:21 GMT");
    assert_eq!(d.formats(), 2);
    assert_eq!(d.now(), NOW + 1);
}

/// Day by day from 1970 to 2400 the calendar advances one day, with the
/// Gregorian leap years, and `days_from_civil` inverts `civil_from_days`.
#[test]
fn calendar_is_continuous_and_round_trips() {
    let mut prev = civil_from_days(0);
    assert_eq!(prev, (1970, 1, 1));
    for d in 1..157_000 {
        let (y, m, day) = civil_from_days(d);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let (py, pm, pd) = prev;
        if pd < month_len[(pm - 1) as usize] {
            assert_eq!((y, m, day), (py, pm, pd + 1));
        } else if pm < 12 {
            assert_eq!((y, m, day), (py, pm + 1, 1));
        } else {
            assert_eq!((y, m, day), (py + 1, 1, 1));
        }
        assert_eq!(days_from_civil(y, m, day), d);
        prev = (y, m, day);
    }
}
