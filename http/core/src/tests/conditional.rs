use crate::conditional::{evaluate_range, if_none_match, if_range_etag_matches, NoneMatch, RangeRequest};

#[test]
fn if_none_match_weak_comparison_and_lists() {
    use NoneMatch::*;
    let cur = b"\"abc\"";
    assert_eq!(if_none_match(b"\"abc\"", cur), Matches);
    assert_eq!(if_none_match(b"W/\"abc\"", cur), Matches);
    assert_eq!(if_none_match(b"W/\"abc\"", b"W/\"abc\""), Matches);
    assert_eq!(if_none_match(b"*", cur), Matches);
    assert_eq!(if_none_match(b" * ", cur), Matches);
    assert_eq!(if_none_match(b"\"x\", \"abc\"", cur), Matches);
    assert_eq!(if_none_match(b"\"x\",W/\"abc\" , \"y\"", cur), Matches);
    assert_eq!(if_none_match(b", ,\"abc\",", cur), Matches);
    assert_eq!(if_none_match(b"\"a,b\", \"abc\"", cur), Matches);
    assert_eq!(if_none_match(b"\"abcd\"", cur), NoMatch);
    assert_eq!(if_none_match(b"\"ABC\"", cur), NoMatch);
    assert_eq!(if_none_match(b"\"x\", \"y\"", cur), NoMatch);
    assert_eq!(if_none_match(b"\"a,b\"", b"\"a\""), NoMatch);
    for bad in
        [&b""[..], b"abc", b"\"abc", b"w/\"abc\"", b"\"abc\" x", b"*, \"abc\"", b"\"a\"b\"", b",", b"\"a\" \"abc\""]
    {
        assert_eq!(if_none_match(bad, cur), Invalid, "{}", std::string::String::from_utf8_lossy(bad));
    }
}

#[test]
fn if_range_needs_strong_equality() {
    assert!(if_range_etag_matches(b"\"abc\"", b"\"abc\""));
    assert!(!if_range_etag_matches(b"W/\"abc\"", b"\"abc\""));
    assert!(!if_range_etag_matches(b"\"abc\"", b"W/\"abc\""));
    assert!(!if_range_etag_matches(b"\"abd\"", b"\"abc\""));
    assert!(!if_range_etag_matches(b"abc", b"abc"));
}

#[test]
fn byte_ranges() {
    use RangeRequest::*;
    let r = |v: &str, len| evaluate_range(v.as_bytes(), len);
    assert_eq!(r("bytes=0-0", 10), Partial { first: 0, last: 0 });
    assert_eq!(r("bytes=2-5", 10), Partial { first: 2, last: 5 });
    assert_eq!(r("bytes=2-50", 10), Partial { first: 2, last: 9 });
    assert_eq!(r("bytes=9-", 10), Partial { first: 9, last: 9 });
    assert_eq!(r("bytes=0-", 10), Partial { first: 0, last: 9 });
    assert_eq!(r("bytes=-3", 10), Partial { first: 7, last: 9 });
    assert_eq!(r("bytes=-30", 10), Partial { first: 0, last: 9 });
    assert_eq!(r("Bytes = 1-2", 10), Partial { first: 1, last: 2 });
    assert_eq!(r("bytes=0-18446744073709551615", 10), Partial { first: 0, last: 9 });
    // Unsatisfiable.
    assert_eq!(r("bytes=10-", 10), Unsatisfiable);
    assert_eq!(r("bytes=10-20", 10), Unsatisfiable);
    assert_eq!(r("bytes=-0", 10), Unsatisfiable);
    assert_eq!(r("bytes=0-", 0), Unsatisfiable);
    assert_eq!(r("bytes=-0", 0), Unsatisfiable);
    // Empty representation, suffix range: served whole.
    assert_eq!(r("bytes=-5", 0), Full);
    // Invalid or multiple or other units: ignored (200).
    for v in [
        "bytes=5-2",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=1-2,4-5",
        "bytes=0-0,-1",
        "items=0-1",
        "bytes 0-1",
        "0-1",
        "bytes=18446744073709551616-",
        "bytes=--1",
        "bytes=1--2",
        "bytes=+1-2",
        "",
    ] {
        assert_eq!(r(v, 10), Full, "{v}");
    }
}
