//! The request target (RFC 9112 §3.2) turned into a path of the site.
//!
//! Steps, in order:
//!
//! 1. **Form.** origin-form (`/path?query`) is what clients send to an
//!    origin server. absolute-form (`http://host/path`) must be accepted
//!    by servers too (RFC 9112 §3.2.2); this server serves one site, so the
//!    authority is not compared with anything: the path is taken from it
//!    (an empty path is `/`). The `Host` header is then ignored, as the RFC
//!    requires. asterisk-form (`*`, only for `OPTIONS`) and authority-form
//!    (only for `CONNECT`) and anything else are refused with 400.
//! 2. **Query.** Everything from the first `?` is the query: ignored for the
//!    lookup, kept (still encoded) for a redirect's `Location`. A fragment
//!    (`#`) is not part of a request target; one is refused (400).
//! 3. **Percent-decoding** (RFC 3986 §2.1). Refused with 400: a `%` not
//!    followed by two hex digits; `%00` and every other control character
//!    (no file name has one); `%2F` (an encoded `/`: RFC 3986 §2.2 says it
//!    is *not* the separator, but no name the content tool stores may
//!    contain `/`, so it could only ever be a 404, and refusing it removes
//!    any doubt about where segments end); `\` raw or encoded (not a
//!    separator here, but some tools treat it as one, and no servable name
//!    contains it).
//! 4. **Dot-segment removal** (RFC 3986 §5.2.4) on the decoded segments, so
//!    that `%2e%2e` counts as `..` too: `.` segments vanish, `..` removes
//!    the previous segment and at the root stays at the root, so the result
//!    can never leave it. Empty segments (`//`) are merged, the way most
//!    web servers map paths to files. A path whose last segment was `.`,
//!    `..` or empty ends with `/` (it names a directory).
//!
//! The result starts with `/`, contains no empty, `.` or `..` segment, no
//! control character and no `\`. It is not necessarily UTF-8; the caller
//! treats a non-UTF-8 path as not found (names are UTF-8).

/// Why a target was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// Not origin-form nor absolute-form, bad escapes, or refused bytes: 400.
    BadRequest,
    /// The decoded path does not fit the caller's buffer: 414.
    TooLong,
}

/// A normalised target: the decoded path written into the caller's buffer
/// (`path_len` bytes) and the raw query (without `?`), if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'t> {
    pub path_len: usize,
    pub query: Option<&'t [u8]>,
}

/// Normalises `target` (as received) into `out`; see the module docs.
pub fn normalize<'t>(target: &'t [u8], out: &mut [u8]) -> Result<Target<'t>, TargetError> {
    let path_and_query = strip_form(target)?;
    if path_and_query.contains(&b'#') {
        return Err(TargetError::BadRequest);
    }
    let (path, query) = match path_and_query.iter().position(|&b| b == b'?') {
        Some(q) => (&path_and_query[..q], Some(&path_and_query[q + 1..])),
        None => (path_and_query, None),
    };
    let path_len = remove_dot_segments(path, out)?;
    Ok(Target { path_len, query })
}

/// Returns the path-and-query part of an origin-form or absolute-form
/// target.
fn strip_form(target: &[u8]) -> Result<&[u8], TargetError> {
    if target.first() == Some(&b'/') {
        return Ok(target);
    }
    // Only the scheme this server speaks; the scheme name is
    // case-insensitive (RFC 3986 §3.1).
    if !starts_with_ignore_case(target, b"http://") {
        return Err(TargetError::BadRequest);
    }
    let rest = &target[7..];
    let authority_end = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
    if authority_end == 0 || rest[..authority_end].contains(&b'@') || rest[..authority_end].contains(&b'#') {
        // No host, or userinfo (deprecated for http, RFC 9110 §4.2.4).
        return Err(TargetError::BadRequest);
    }
    match &rest[authority_end..] {
        [] => Ok(b"/"),
        [b'?', ..] => Ok(b"/"), // "http://h?q": path is empty, i.e. "/" (query dropped)
        p => Ok(p),
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one segment (no raw `/` inside) into `out`, returning its
/// length.
fn decode_segment(seg: &[u8], out: &mut [u8]) -> Result<usize, TargetError> {
    let mut i = 0;
    let mut n = 0;
    while i < seg.len() {
        let b = if seg[i] == b'%' {
            let hi = seg.get(i + 1).copied().and_then(hex).ok_or(TargetError::BadRequest)?;
            let lo = seg.get(i + 2).copied().and_then(hex).ok_or(TargetError::BadRequest)?;
            i += 3;
            let b = hi << 4 | lo;
            if b == b'/' {
                return Err(TargetError::BadRequest);
            }
            b
        } else {
            i += 1;
            seg[i - 1]
        };
        if b < 0x20 || b == 0x7f || b == b'\\' {
            return Err(TargetError::BadRequest);
        }
        *out.get_mut(n).ok_or(TargetError::TooLong)? = b;
        n += 1;
    }
    Ok(n)
}

/// RFC 3986 §5.2.4 on decoded segments, with empty segments merged.
/// `path` starts with `/`.
fn remove_dot_segments(path: &[u8], out: &mut [u8]) -> Result<usize, TargetError> {
    if out.is_empty() {
        return Err(TargetError::TooLong);
    }
    out[0] = b'/';
    // `len` is the output's length; it always ends just after a `/` or
    // after a segment's last byte.
    let mut len = 1;
    let mut ends_as_directory = true;
    for seg in path.split(|&b| b == b'/').skip(1) {
        // A dot segment is at most 6 bytes encoded (`%2e%2e`): decode short
        // segments aside first, so that one needs no room in `out`.
        let mut short = [0u8; 6];
        let dots = if seg.len() <= short.len() {
            let n = decode_segment(seg, &mut short)?;
            matches!(&short[..n], b"" | b"." | b"..").then_some(n)
        } else {
            None
        };
        match dots {
            Some(0 | 1) => ends_as_directory = true,
            Some(_) => {
                // `..`: drop the last segment of the output and the `/`
                // before it; at the root there is nothing to drop.
                while len > 1 && out[len - 1] != b'/' {
                    len -= 1;
                }
                if len > 1 {
                    len -= 1;
                }
                ends_as_directory = true;
            }
            None => {
                // A separator unless the output is the root.
                if out[len - 1] != b'/' {
                    *out.get_mut(len).ok_or(TargetError::TooLong)? = b'/';
                    len += 1;
                }
                let rest = out.get_mut(len..).ok_or(TargetError::TooLong)?;
                len += decode_segment(seg, rest)?;
                ends_as_directory = false;
            }
        }
    }
    if ends_as_directory && out[len - 1] != b'/' {
        *out.get_mut(len).ok_or(TargetError::TooLong)? = b'/';
        len += 1;
    }
    Ok(len)
}
