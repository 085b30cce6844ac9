//! Entity-tag lists (RFC 9110 §8.8.3, §13.1.2) and byte ranges
//! (RFC 9110 §14.1.2).

/// Splits an entity tag `W/"x"` or `"x"` into (weak, opaque-tag with
/// quotes). `None` if it is not a valid entity-tag.
fn split_etag(tag: &[u8]) -> Option<(bool, &[u8])> {
    let (weak, opaque) = match tag {
        [b'W', b'/', rest @ ..] => (true, rest),
        _ => (false, tag),
    };
    match opaque {
        [b'"', inner @ .., b'"'] if inner.iter().all(|&c| c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80) => {
            Some((weak, opaque))
        }
        _ => None,
    }
}

/// Result of evaluating an `If-None-Match` field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoneMatch {
    /// `*`, or a listed tag matches by weak comparison: the condition is
    /// false (`304` for GET/HEAD).
    Matches,
    /// No listed tag matches: the condition is true.
    NoMatch,
    /// Not a valid `*` or list of entity-tags: the field is ignored.
    Invalid,
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Evaluates one `If-None-Match` field value against the resource's
/// current entity tag `current` (RFC 9110 §13.1.2): `*` matches any
/// existing representation; otherwise the field is a comma-separated list
/// of entity-tags (empty elements are allowed by the list rule, §5.6.1) and
/// matches if any of them is equal to `current` by the *weak* comparison
/// (opaque-tags equal, `W/` ignored on either side), which the RFC
/// requires for `If-None-Match`.
pub fn if_none_match(value: &[u8], current: &[u8]) -> NoneMatch {
    let value = trim(value);
    if value == b"*" {
        return NoneMatch::Matches;
    }
    let Some((_, current_opaque)) = split_etag(current) else {
        return NoneMatch::Invalid;
    };
    let mut matched = false;
    let mut any = false;
    // ',' is a valid etagc: each tag is read up to its closing quote, the
    // list is not split on commas.
    let mut rest = value;
    loop {
        rest = trim(rest);
        while let [b',', r @ ..] = rest {
            rest = trim(r);
        }
        if rest.is_empty() {
            break;
        }
        // One entity-tag: optional W/, then a quoted string.
        let prefix = if rest.starts_with(b"W/") { 2 } else { 0 };
        if rest.get(prefix) != Some(&b'"') {
            return NoneMatch::Invalid;
        }
        let Some(close) = rest[prefix + 1..].iter().position(|&b| b == b'"') else {
            return NoneMatch::Invalid;
        };
        let end = prefix + 1 + close + 1;
        let Some((_, opaque)) = split_etag(&rest[..end]) else {
            return NoneMatch::Invalid;
        };
        any = true;
        matched |= opaque == current_opaque;
        rest = trim(&rest[end..]);
        match rest {
            [] => break,
            [b',', ..] => {}
            _ => return NoneMatch::Invalid,
        }
    }
    match (any, matched) {
        (false, _) => NoneMatch::Invalid,
        (true, true) => NoneMatch::Matches,
        (true, false) => NoneMatch::NoMatch,
    }
}

/// `If-Range` with an entity tag (RFC 9110 §13.1.5): true if it equals the
/// current tag by the *strong* comparison (neither weak, same opaque-tag).
pub fn if_range_etag_matches(value: &[u8], current: &[u8]) -> bool {
    match (split_etag(trim(value)), split_etag(current)) {
        (Some((false, a)), Some((false, b))) => a == b,
        _ => false,
    }
}

/// What a `Range` field asks for, once the representation's length is
/// known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve bytes `first..=last` with `206`.
    Partial { first: u64, last: u64 },
    /// No range of the set is satisfiable: `416` with
    /// `Content-Range: bytes */len`.
    Unsatisfiable,
    /// Serve the whole representation with `200`: the field is invalid, not
    /// in bytes, asks for several ranges (which this server does not serve
    /// as multipart; RFC 9110 §14.2 lets a server ignore `Range`), or is a
    /// suffix range of an empty representation.
    Full,
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Evaluates a `Range` field value for a representation of `len` bytes
/// (RFC 9110 §14.1.2, §14.1.1):
///
/// - `bytes=a-b`: bytes a through b (b clipped to `len - 1`); satisfiable
///   if `a < len`; `a > b` makes the field invalid;
/// - `bytes=a-`: from a to the end; satisfiable if `a < len`;
/// - `bytes=-n`: the last n bytes (all of them if `n >= len`); satisfiable
///   if `n > 0`.
///
/// The unit name is case-insensitive. A numeric overflow makes the field
/// invalid.
pub fn evaluate_range(value: &[u8], len: u64) -> RangeRequest {
    let value = trim(value);
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return RangeRequest::Full;
    };
    if !trim(&value[..eq]).eq_ignore_ascii_case(b"bytes") {
        return RangeRequest::Full;
    }
    let set = trim(&value[eq + 1..]);
    if set.contains(&b',') {
        return RangeRequest::Full;
    }
    let Some(dash) = set.iter().position(|&b| b == b'-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (&set[..dash], &set[dash + 1..]);
    if a.is_empty() {
        let Some(n) = parse_u64(b) else { return RangeRequest::Full };
        if n == 0 {
            return RangeRequest::Unsatisfiable;
        }
        if len == 0 {
            return RangeRequest::Full;
        }
        return RangeRequest::Partial { first: len - n.min(len), last: len - 1 };
    }
    let Some(first) = parse_u64(a) else { return RangeRequest::Full };
    let last = if b.is_empty() {
        u64::MAX
    } else {
        match parse_u64(b) {
            Some(last) if last >= first => last,
            _ => return RangeRequest::Full,
        }
    };
    if first >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial { first, last: last.min(len - 1) }
}
