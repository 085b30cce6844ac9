//! Host tests of the HTTP logic.

mod conditional;
mod conn;
mod fuzz;
mod target;

use crate::conn::{Connection, Poll, MIN_OUT};
use crate::date::{format_imf_fixdate, DateCache};
use crate::response::Body;
use crate::site::{FileInfo, MemEntry, MemSite};
use std::boxed::Box;
use std::format;
use std::string::String;
use std::vec::Vec;

/// Sun, 06 Nov 1994 08:49:37 GMT
pub const LM: u64 = 784_111_777;
/// Tue, 14 Nov 2023 22:13:20 GMT
pub const NOW: u64 = 1_700_000_000;

fn leak(s: String) -> &'static [u8] {
    Box::leak(s.into_bytes().into_boxed_slice())
}

fn file(path: &'static str, len: u64, ctype: &str, etag: &str) -> MemEntry<'static> {
    let lm = String::from_utf8(format_imf_fixdate(LM).to_vec()).unwrap();
    let header =
        leak(format!("Content-Type: {ctype}\r\nContent-Length: {len}\r\nLast-Modified: {lm}\r\nETag: {etag}\r\n"));
    MemEntry { path, file: Some(FileInfo { len, last_modified: LM, etag: leak(String::from(etag)), header }) }
}

/// A file whose precomputed header does not fit a 1 KiB output buffer.
fn huge_header() -> MemEntry<'static> {
    let mut e = file("/huge-header", 1, "text/plain", "\"h\"");
    let mut info = e.file.unwrap();
    let mut header = info.header.to_vec();
    header.extend(format!("X-Pad: {}\r\n", "p".repeat(1000)).into_bytes());
    info.header = Vec::leak(header);
    e.file = Some(info);
    e
}

fn dir(path: &'static str) -> MemEntry<'static> {
    MemEntry { path, file: None }
}

/// The test site; handles are indices in this table.
pub fn site() -> MemSite<'static> {
    let entries = Vec::from([
        file("/index.html", 100, "text/html", "\"home\""),
        file("/a.txt", 11, "text/plain", "\"a1\""),
        dir("/dir"),
        file("/dir/index.html", 20, "text/html", "\"dir\""),
        dir("/empty"),
        file("/zero.txt", 0, "text/plain", "\"zero\""),
        file("/big.bin", 1000, "application/octet-stream", "\"big\""),
        file("/sp ace.txt", 5, "text/plain", "\"sp\""),
        dir("/sp ace"),
        file("/caf\u{e9}.txt", 3, "text/plain", "\"cafe\""),
        huge_header(),
    ]);
    MemSite { entries: Vec::leak(entries) }
}

pub use conn::pipeline as pipeline_input;

pub const A_TXT: usize = 1;
pub const BIG: usize = 6;

/// One response as the tests see it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub code: u16,
    /// The head (header and small body) as text.
    pub head: String,
    pub body: Option<Body<usize>>,
    pub close: bool,
}

impl Resp {
    /// The value of a header field (first occurrence), case-insensitive.
    pub fn field(&self, name: &str) -> Option<&str> {
        let header = self.head.split("\r\n\r\n").next().unwrap();
        header.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// What follows the header in the head (an error's body).
    pub fn inline_body(&self) -> &str {
        self.head.split_once("\r\n\r\n").unwrap().1
    }
}

/// Polls until no response is ready; collects the responses.
pub fn drain<const N: usize>(conn: &mut Connection<N>, date: &DateCache, out: &mut Vec<Resp>) -> Poll<usize> {
    let site = site();
    let mut buf = [0u8; 2048];
    loop {
        match conn.poll(&site, date, &mut buf).expect("out buffer large enough") {
            Poll::Respond(r) => {
                assert!(r.head_len <= buf.len());
                out.push(Resp {
                    code: r.status.code(),
                    head: String::from_utf8(buf[..r.head_len].to_vec()).unwrap(),
                    body: r.body,
                    close: r.close,
                });
            }
            other => return other,
        }
    }
}

/// Feeds `input` in chunks of `chunk` bytes into a connection with an
/// `N`-byte buffer, polling after each; returns every response.
pub fn run_chunked<const N: usize>(input: &[u8], chunk: usize) -> Vec<Resp> {
    let mut conn = Connection::<N>::new();
    let date = DateCache::new(NOW);
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        let mut piece = piece;
        while !piece.is_empty() {
            let n = conn.receive(piece);
            piece = &piece[n..];
            let state = drain(&mut conn, &date, &mut out);
            if n == 0 {
                // The buffer is full of one complete request waiting for
                // poll, which drain just did; no progress means a hang.
                assert!(state != Poll::NeedMore || !conn.space().is_empty(), "no progress");
            }
        }
    }
    drain(&mut conn, &date, &mut out);
    out
}

/// All of `input` at once, with a 4 KiB buffer.
pub fn run(input: &[u8]) -> Vec<Resp> {
    run_chunked::<4096>(input, input.len())
}

/// The single response to `input`.
pub fn one(input: &[u8]) -> Resp {
    let mut r = run(input);
    assert_eq!(r.len(), 1, "responses: {r:#?}");
    r.pop().unwrap()
}

/// A GET of `target` with extra header lines.
pub fn get(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

#[test]
fn min_out_holds_every_error() {
    let date = DateCache::new(NOW);
    let mut conn = Connection::<64>::new();
    conn.receive(b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let mut out = [0u8; MIN_OUT];
    let Poll::Respond(r) = conn.poll(&site(), &date, &mut out).unwrap() else { panic!() };
    assert_eq!(r.status.code(), 414);
    // The longest reason phrase, with body.
    let mut out = [0u8; MIN_OUT];
    let mut conn = Connection::<64>::new();
    conn.receive(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1234567890123456789012345678901234567890\r\n");
    let Poll::Respond(r) = conn.poll(&site(), &date, &mut out).unwrap() else { panic!() };
    assert_eq!(r.status.code(), 431);
    assert!(r.head_len <= MIN_OUT);
}
