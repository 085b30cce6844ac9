//! `http-core`: the request parser the web servers use
//! ([`Connection`]: request line, header fields, bodies to discard,
//! pipelining), fed as a byte stream split at fuzzed points, and the
//! parsers behind it (target normalisation, `Range`, `If-None-Match`,
//! HTTP dates).
//!
//! Input: a first byte choosing the connection's buffer (256, 1024 or
//! 4096 bytes) and, with bit 7, the direct parsers instead; a count and
//! that many chunk lengths; then the stream.
//!
//! Checks, per response: the head fits `out`, starts with `HTTP/1.1 `
//! and its status, ends its header with an empty line; the message is
//! framed as `Content-Length` says (a file's body, the error body inside
//! the head, nothing for HEAD and 304); a body lies inside its file. The
//! connection always makes progress (never waits for more with a full
//! buffer), says nothing more once it has closed, and answers the same
//! whether the stream came whole or in pieces (RFC 9112 §2.2: a message
//! is a byte stream).

#![no_main]

use fuzz::Input;
use http_core::conditional::{evaluate_range, if_none_match, RangeRequest};
use http_core::conn::{Connection, Poll, MIN_OUT};
use http_core::date::{format_imf_fixdate, parse_http_date, DateCache};
use http_core::site::{FileInfo, MemEntry, MemSite};
use http_core::target::normalize;
use libfuzzer_sys::fuzz_target;

/// Tue, 14 Nov 2023 22:13:20 GMT.
const NOW: u64 = 1_700_000_000;
/// Sun, 06 Nov 1994 08:49:37 GMT.
const LAST_MODIFIED: u64 = 784_111_777;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let which = input.u8();
    if which & 0x80 != 0 {
        return direct_parsers(&mut input);
    }
    let splits: Vec<usize> = input.piece().iter().map(|&n| usize::from(n) + 1).collect();
    let stream = input.rest();
    let site = Site::new();
    let entries = site.entries();
    let site = MemSite { entries: &entries };
    match which % 3 {
        0 => same_whole_or_split::<256>(&site, stream, &splits),
        1 => same_whole_or_split::<1024>(&site, stream, &splits),
        _ => same_whole_or_split::<4096>(&site, stream, &splits),
    }
});

/// One response as sent: the head's bytes, the body range, and close.
type Sent = (Vec<u8>, Option<(usize, u64, u64)>, bool);

fn same_whole_or_split<const N: usize>(site: &MemSite<'_>, stream: &[u8], splits: &[usize]) {
    let whole = run::<N>(site, stream, &[stream.len().max(1)]);
    if !splits.is_empty() {
        let split = run::<N>(site, stream, splits);
        assert_eq!(split, whole, "the responses depend on how the stream was split");
    }
}

/// Feeds `stream` in chunks of the lengths `splits` gives (cycled),
/// polling after each, and returns the responses.
fn run<const N: usize>(site: &MemSite<'_>, stream: &[u8], splits: &[usize]) -> Vec<Sent> {
    let date = DateCache::new(NOW);
    let mut conn = Connection::<N>::new();
    let mut sent = Vec::new();
    let mut rest = stream;
    let mut closed = false;
    for &chunk in splits.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let mut piece = &rest[..chunk.min(rest.len())];
        rest = &rest[piece.len()..];
        while !piece.is_empty() {
            let taken = conn.receive(piece);
            piece = &piece[taken..];
            let waiting = drain(site, &date, &mut conn, &mut sent, &mut closed);
            if taken == 0 {
                assert!(!waiting || !conn.space().is_empty(), "no progress: the buffer is full and it waits");
            }
        }
    }
    drain(site, &date, &mut conn, &mut sent, &mut closed);
    // The idle timeout: a 408 only for a request begun, then closed.
    let mut out = [0u8; MIN_OUT];
    let idle = conn.is_idle();
    match conn.timeout(&date, &mut out).expect("MIN_OUT holds a 408") {
        Some(len) => {
            assert!(!closed && !idle, "408 only for a request under way");
            check_head(&out[..len], None, false);
        }
        None => assert!(closed || idle),
    }
    assert!(conn.is_closed());
    sent
}

/// Polls until the connection needs more; returns whether it does (false:
/// closed).
fn drain<const N: usize>(
    site: &MemSite<'_>,
    date: &DateCache,
    conn: &mut Connection<N>,
    sent: &mut Vec<Sent>,
    closed: &mut bool,
) -> bool {
    let mut out = [0u8; 2048];
    loop {
        match conn.poll(site, date, &mut out).expect("2 KiB holds every head of this site") {
            Poll::Respond(r) => {
                assert!(!*closed, "a response after the closing one");
                assert!(r.head_len <= out.len());
                let head = &out[..r.head_len];
                let body = r.body.map(|b| {
                    let file = site.entries[b.file].file.expect("a body is a file's");
                    assert!(b.offset.checked_add(b.len).is_some_and(|end| end <= file.len), "body outside the file");
                    (b.file, b.offset, b.len)
                });
                let code = check_head(head, body.map(|(_, _, len)| len), r.head);
                assert_eq!(code, r.status.code());
                *closed |= r.close;
                sent.push((head.to_vec(), body, r.close));
            }
            Poll::NeedMore => {
                assert!(!*closed);
                return true;
            }
            Poll::Closed => {
                assert!(*closed, "closed without a closing response");
                return false;
            }
        }
    }
}

/// Checks a response head and its framing; returns its status code.
fn check_head(head: &[u8], body_len: Option<u64>, head_request: bool) -> u16 {
    assert!(head.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(head));
    let code = std::str::from_utf8(&head[9..12]).ok().and_then(|c| c.parse::<u16>().ok()).expect("a status code");
    assert!((100..600).contains(&code) && head[12] == b' ');
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").expect("an empty line ends the header") + 4;
    let header = std::str::from_utf8(&head[..end]).expect("the header is text");
    let inline = &head[end..];
    let length = header.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<u64>().expect("a length"))
    });
    if code == 304 {
        assert!(inline.is_empty() && body_len.is_none(), "304 has no content");
        return code;
    }
    let length = length.expect("every response but 304 has Content-Length");
    match (head_request, body_len) {
        (true, _) => assert!(inline.is_empty() && body_len.unwrap_or(0) == 0, "HEAD has no content"),
        (false, Some(len)) => assert!(inline.is_empty() && len == length, "the body is Content-Length bytes"),
        (false, None) => assert_eq!(inline.len() as u64, length, "the inline body is Content-Length bytes"),
    }
    code
}

/// The test site: files of several sizes, directories, a name with a
/// space and one that is not ASCII. Owns the stored headers that
/// [`Site::entries`] lends.
struct Site {
    files: Vec<(&'static str, u64, &'static str, String)>,
}

impl Site {
    fn new() -> Self {
        let date = String::from_utf8(format_imf_fixdate(LAST_MODIFIED).to_vec()).unwrap();
        let file = |path, len, etag| {
            let header = format!(
                "Content-Type: text/plain\r\nContent-Length: {len}\r\nLast-Modified: {date}\r\nETag: {etag}\r\n"
            );
            (path, len, etag, header)
        };
        let files = vec![
            file("/index.html", 100, "\"home\""),
            file("/a.txt", 11, "\"a1\""),
            file("/dir/index.html", 20, "\"dir\""),
            file("/zero.txt", 0, "\"zero\""),
            file("/big.bin", 100_000, "\"big\""),
            file("/sp ace.txt", 5, "\"sp\""),
            file("/caf\u{e9}.txt", 3, "\"cafe\""),
        ];
        Site { files }
    }

    /// The entries: the files, and the directories `/dir` and `/empty`.
    fn entries(&self) -> Vec<MemEntry<'_>> {
        let mut entries: Vec<MemEntry<'_>> = self
            .files
            .iter()
            .map(|(path, len, etag, header)| MemEntry {
                path,
                file: Some(FileInfo {
                    len: *len,
                    last_modified: LAST_MODIFIED,
                    etag: etag.as_bytes(),
                    header: header.as_bytes(),
                }),
            })
            .collect();
        entries.push(MemEntry { path: "/dir", file: None });
        entries.push(MemEntry { path: "/empty", file: None });
        entries
    }
}

/// The parsers `Connection` uses, on their own.
fn direct_parsers(input: &mut Input<'_>) {
    let len = input.u64() % 1_000_000;
    let now = input.u64();
    let value = input.rest();
    let mut out = [0u8; 1100];
    if let Ok(target) = normalize(value, &mut out) {
        let path = &out[..target.path_len];
        assert!(path.starts_with(b"/"), "a path starts at the root");
        let inner = path.strip_suffix(b"/").unwrap_or(path);
        assert!(
            inner.len() <= 1 || inner[1..].split(|&b| b == b'/').all(|s| !s.is_empty() && s != b"." && s != b".."),
            "no empty, . or .. segment: {:?}",
            String::from_utf8_lossy(path)
        );
        assert!(!path.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\'), "no control byte or backslash");
        if let Some(query) = target.query {
            assert!(value.ends_with(query), "the query is the target's tail");
        }
    }
    match evaluate_range(value, len) {
        RangeRequest::Partial { first, last } => assert!(first <= last && last < len, "a range inside the file"),
        RangeRequest::Unsatisfiable | RangeRequest::Full => {}
    }
    let _ = if_none_match(value, b"\"x\"");
    if let Some(t) = parse_http_date(value, now) {
        // A date that parsed formats and parses back to itself.
        assert_eq!(parse_http_date(&format_imf_fixdate(t), now), Some(t));
    }
}
