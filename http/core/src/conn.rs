//! One connection: the request bytes as they arrive, and the response to
//! each complete request, in order.
//!
//! # Use
//!
//! The server copies received bytes with [`Connection::receive`] (or reads
//! into [`Connection::space`] and calls [`Connection::filled`]), then calls
//! [`Connection::poll`] until it returns [`Poll::NeedMore`]. Each
//! [`Poll::Respond`] is one response: send `out[..head_len]`, then the
//! [`Body`] (a range of a file) if there is one, then poll again. Requests
//! that arrived together (pipelining, RFC 9112 §9.3.2) are answered one per
//! call, so responses go out in the order of the requests. The server may
//! stop polling while its send buffer is full: unread requests stay in the
//! connection's buffer.
//!
//! After a response with `close` set, the server sends it and then closes
//! the connection (RFC 9112 §9.6: a half-close of its sending side first,
//! then reading and discarding for a moment before closing, avoids a reset
//! that could destroy the response). Later polls return [`Poll::Closed`].
//!
//! # Limits
//!
//! - The buffer holds `N` bytes: a request line and header section must fit.
//!   A request line that does not fit, or a target longer than
//!   [`MAX_TARGET`], gets `414`; a method token that fills the buffer gets
//!   `501` (no method we know is that long); a header section that does not fit,
//!   or more than [`MAX_HEADERS`] fields, gets `431`. All of these close the
//!   connection, since the rest of the request is not read.
//! - A request that does not parse gets `400` and the connection closes.
//! - Bodies: a request with a valid `Content-Length` has its body read and
//!   discarded (it means nothing to GET or HEAD, RFC 9110 §9.3.1); its
//!   response is produced without waiting for it. An invalid
//!   `Content-Length` (not digits, several different values) gets `400`
//!   and closes (RFC 9112 §6.3 item 5). With `Expect: 100-continue` and a
//!   body, the connection is closed after the response: the client may
//!   then never send the body, and skipping it could eat the next request.
//! - `Transfer-Encoding` in a request: this server does not decode request
//!   bodies. If `chunked` is the final coding, the body length is known to
//!   the client but this server does not implement the coding: `501`
//!   (RFC 9112 §6.1: a server SHOULD answer 501 to a transfer coding it
//!   does not understand). Otherwise the length cannot be determined:
//!   `400` (RFC 9112 §6.3 item 4, MUST). Either way the connection closes,
//!   as RFC 9112 §6.3 requires when the body is not read.
//!
//! # Idle timeout (`408`)
//!
//! The server decides when a connection has been idle too long (no bytes
//! received for its timeout while it was not itself sending). It then calls
//! [`Connection::timeout`], which follows RFC 9110 §15.5.9 and RFC 9112
//! §9.5: if part of a request had arrived, the `408` response is written and
//! must be sent before closing; if the connection was idle between
//! requests, nothing is written and the server just closes it (a `408` sent
//! there could cross a request the client is sending on the persistent
//! connection and be taken as its answer).

use crate::conditional::{evaluate_range, if_none_match, if_range_etag_matches, NoneMatch, RangeRequest};
use crate::date::{parse_http_date, DateCache};
use crate::response::{
    copy_fields, error_body_len, put_error_body, start, Body, Overflow, Persistence, Status, Writer,
};
use crate::site::{FileInfo, Lookup, Site};
use crate::target::{normalize, TargetError};

/// Most header fields in one request (`431` beyond).
pub const MAX_HEADERS: usize = 32;
/// Longest request target (`414` beyond).
pub const MAX_TARGET: usize = 1024;
/// Smallest `out` buffer that always has room for an error response.
pub const MIN_OUT: usize = 512;

const INDEX: &[u8] = b"index.html";

/// Methods defined by RFC 9110 (and PATCH, RFC 5789) that this server
/// knows but does not allow on its resources: `405` with `Allow: GET, HEAD`
/// (RFC 9110 §15.5.6). Any other method is not recognised: `501`
/// (RFC 9110 §15.6.2, §9.1). Methods are case-sensitive.
const KNOWN_METHODS: [&str; 7] = ["POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// The response to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<H> {
    pub status: Status,
    /// Bytes at the start of `out` to send first: the header, and the small
    /// body of an error or redirect.
    pub head_len: usize,
    /// File data to send after the head (never for 304 and errors). For a
    /// HEAD of a file it is the file with `len` 0: no byte of it is sent,
    /// but the server opens it as for a GET, so that a file its store
    /// cannot serve (corrupt, unreadable) gets the same error status
    /// either way (RFC 9110 §9.3.2: HEAD is GET without the content).
    pub body: Option<Body<H>>,
    /// Close the connection after sending this response.
    pub close: bool,
    /// The request was HEAD: whatever replaces this response must carry
    /// no content either ([`write_closing_error`]).
    pub head: bool,
}

/// What [`Connection::poll`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll<H> {
    /// No complete request is buffered: receive more bytes.
    NeedMore,
    /// Send this response, then poll again.
    Respond(Response<H>),
    /// A response that closes the connection was produced: nothing more.
    Closed,
}

/// The per-connection state over a buffer of `N` bytes.
pub struct Connection<const N: usize> {
    buf: [u8; N],
    /// Unprocessed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of a request body still to be discarded.
    skip: u64,
    closed: bool,
    /// The decoded, normalised path of the request being answered, with
    /// room for `index.html`.
    path: [u8; MAX_TARGET + INDEX.len()],
}

impl<const N: usize> Default for Connection<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The effect of one request on the connection, applied only once its
/// response has been written.
struct Outcome {
    status: Status,
    head_len: usize,
    file_range: Option<(u64, u64)>,
    close: bool,
    head: bool,
    consumed: usize,
    skip: u64,
}

impl<const N: usize> Connection<N> {
    pub fn new() -> Self {
        Connection { buf: [0; N], start: 0, end: 0, skip: 0, closed: false, path: [0; MAX_TARGET + INDEX.len()] }
    }

    /// True once a closing response was produced.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True if no part of a request is waiting (between requests).
    pub fn is_idle(&self) -> bool {
        self.start == self.end && self.skip == 0
    }

    /// Free space to read into (after moving unprocessed bytes to the
    /// front). Empty only while a complete request waits to be polled.
    pub fn space(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.end..]
    }

    /// How long [`Self::space`] would be: the buffer less the unprocessed
    /// bytes.
    pub fn room(&self) -> usize {
        N - (self.end - self.start)
    }

    /// Records that `n` bytes were written at the start of [`Self::space`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(N);
    }

    /// Copies as much of `data` as fits; returns how many bytes were taken.
    /// After the connection closed, everything is taken and dropped.
    pub fn receive(&mut self, data: &[u8]) -> usize {
        if self.closed {
            return data.len();
        }
        let space = self.space();
        let n = space.len().min(data.len());
        space[..n].copy_from_slice(&data[..n]);
        self.filled(n);
        n
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The idle timeout struck (see the module docs): returns the length of
    /// the `408` response written into `out` if one must be sent before
    /// closing, `None` if the connection is just closed.
    pub fn timeout(&mut self, date: &DateCache, out: &mut [u8]) -> Result<Option<usize>, Overflow> {
        if self.closed {
            return Ok(None);
        }
        let partial = !self.is_idle();
        let written = if partial {
            Some(write_error(out, Status::RequestTimeout, date, Persistence::Close, false, |_| {})?)
        } else {
            None
        };
        self.closed = true;
        Ok(written)
    }

    /// Processes the next buffered request, if complete, writing its
    /// response head into `out` (see the module docs). `Err(Overflow)` if
    /// `out` is too small even for an error response (at least [`MIN_OUT`]
    /// bytes always suffice); the request is then left unprocessed.
    pub fn poll<S: Site>(&mut self, site: &S, date: &DateCache, out: &mut [u8]) -> Result<Poll<S::Handle>, Overflow> {
        if self.closed {
            return Ok(Poll::Closed);
        }
        // Discard what is left of the previous request's body.
        let n = self.skip.min((self.end - self.start) as u64);
        self.start += n as usize;
        self.skip -= n;
        // RFC 9112 §2.2: ignore empty lines before a request line.
        while self.start < self.end {
            match &self.buf[self.start..self.end] {
                [b'\n', ..] => self.start += 1,
                [b'\r', b'\n', ..] => self.start += 2,
                _ => break,
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.skip > 0 || self.start == self.end {
            return Ok(Poll::NeedMore);
        }
        let buffer_full = self.start == 0 && self.end == N;
        let data = &self.buf[self.start..self.end];
        let outcome = match evaluate(data, buffer_full, &mut self.path, site, date, out)? {
            Evaluated::NeedMore => {
                self.compact();
                return Ok(Poll::NeedMore);
            }
            Evaluated::Done(outcome, file) => (outcome, file),
        };
        let (o, file) = outcome;
        self.start += o.consumed;
        self.skip = o.skip;
        self.closed = o.close;
        if self.closed {
            self.start = 0;
            self.end = 0;
        }
        let body = match (o.file_range, file) {
            (Some((offset, len)), Some(file)) => Some(Body { file, offset, len }),
            _ => None,
        };
        Ok(Poll::Respond(Response { status: o.status, head_len: o.head_len, body, close: o.close, head: o.head }))
    }
}

enum Evaluated<H> {
    NeedMore,
    Done(Outcome, Option<H>),
}

/// An error response that ends the connection, for a request that could
/// not be read whole.
fn fatal<H>(out: &mut [u8], status: Status, date: &DateCache) -> Result<Evaluated<H>, Overflow> {
    let head_len = write_error(out, status, date, Persistence::Close, false, |_| {})?;
    Ok(Evaluated::Done(
        Outcome { status, head_len, file_range: None, close: true, head: false, consumed: 0, skip: 0 },
        None,
    ))
}

/// Writes an error (or redirect) response with its small HTML body (not for
/// HEAD); `extra` adds header fields.
fn write_error(
    out: &mut [u8],
    status: Status,
    date: &DateCache,
    persistence: Persistence,
    head: bool,
    extra: impl Fn(&mut Writer<'_>),
) -> Result<usize, Overflow> {
    let mut w = Writer::new(out);
    start(&mut w, status, date, persistence);
    w.put(b"Content-Type: text/html; charset=utf-8\r\nContent-Length: ");
    w.put_u64(error_body_len(status));
    w.put(b"\r\n");
    extra(&mut w);
    w.put(b"\r\n");
    if !head {
        put_error_body(&mut w, status);
    }
    w.finish()
}

/// `Accept-Ranges: bytes`, unless the stored header fields already carry
/// an `Accept-Ranges` field (the site image's stored headers do): the
/// field is sent once.
fn put_accept_ranges(w: &mut Writer<'_>, header: &[u8]) {
    // The site image's builder writes the field last (`fs_format::http`):
    // found without a scan of every line.
    let stored = header.ends_with(b"\r\nAccept-Ranges: bytes\r\n")
        || header.split(|&b| b == b'\n').any(|line| {
            line.iter()
                .position(|&b| b == b':')
                .is_some_and(|colon| line[..colon].eq_ignore_ascii_case(b"accept-ranges"))
        });
    if !stored {
        w.put(b"Accept-Ranges: bytes\r\n");
    }
}

/// An error response that closes the connection, with its small body
/// unless it answers a HEAD (`head`: [`Response::head`]), for a server
/// that must answer a request differently from what [`Connection::poll`]
/// produced before any of that response was sent (e.g. `500` when the
/// file store finds a file's data corrupt or unreadable);
/// `Connection: close` tells the client that nothing more comes on this
/// connection.
pub fn write_closing_error(out: &mut [u8], status: Status, date: &DateCache, head: bool) -> Result<usize, Overflow> {
    write_error(out, status, date, Persistence::Close, head, |_| {})
}

/// After httparse refused the version: once the request line is complete,
/// `505` if it is `method SP target SP HTTP/x.y` with a version other than
/// 1.0/1.1, `400` otherwise (RFC 9112 §2.3: `HTTP-version = "HTTP/" DIGIT
/// "." DIGIT`). Until the line is complete, the answer waits, so that it
/// does not depend on how the line was split.
fn version_error<H>(
    data: &[u8],
    buffer_full: bool,
    out: &mut [u8],
    date: &DateCache,
) -> Result<Evaluated<H>, Overflow> {
    let Some(line_end) = data.iter().position(|&b| b == b'\n') else {
        if buffer_full {
            return fatal(out, Status::BadRequest, date);
        }
        return Ok(Evaluated::NeedMore);
    };
    let line = &data[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let version = parts.nth(2);
    let well_formed = parts.next().is_none()
        && matches!(version, Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit());
    fatal(out, if well_formed { Status::VersionNotSupported } else { Status::BadRequest }, date)
}

fn header_is(name: &str, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted)
}

/// Iterates over the comma-separated, trimmed, non-empty elements of a
/// list-valued field (RFC 9110 §5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim).filter(|e| !e.is_empty())
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

fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Parses and answers the request at the start of `data`.
fn evaluate<S: Site>(
    data: &[u8],
    buffer_full: bool,
    path_buf: &mut [u8; MAX_TARGET + INDEX.len()],
    site: &S,
    date: &DateCache,
    out: &mut [u8],
) -> Result<Evaluated<S::Handle>, Overflow> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if req.path.is_some_and(|p| p.len() > MAX_TARGET) {
                return fatal(out, Status::UriTooLong, date);
            }
            if !data.contains(&b'\n') {
                // Still in the request line.
                let method_len = data.iter().position(|&b| b == b' ').unwrap_or(data.len());
                if method_len == data.len() {
                    // A method token that fills the buffer is none we know.
                    if buffer_full {
                        return fatal(out, Status::NotImplemented, date);
                    }
                    return Ok(Evaluated::NeedMore);
                }
                // The target is already longer than allowed, or the line
                // cannot grow to its end.
                if (req.path.is_none() && data.len() - method_len - 1 > MAX_TARGET) || buffer_full {
                    return fatal(out, Status::UriTooLong, date);
                }
                return Ok(Evaluated::NeedMore);
            }
            if buffer_full {
                return fatal(out, Status::HeaderFieldsTooLarge, date);
            }
            return Ok(Evaluated::NeedMore);
        }
        Err(httparse::Error::TooManyHeaders) => return fatal(out, Status::HeaderFieldsTooLarge, date),
        Err(httparse::Error::Version) => return version_error(data, buffer_full, out, date),
        Err(_) => return fatal(out, Status::BadRequest, date),
    };
    // httparse fills these for a complete request.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return fatal(out, Status::BadRequest, date);
    };
    if target.len() > MAX_TARGET {
        return fatal(out, Status::UriTooLong, date);
    }
    let headers: &[httparse::Header<'_>] = req.headers;

    // Persistence (RFC 9112 §9.3).
    let mut close_token = false;
    let mut keep_alive_token = false;
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut bad_length = false;
    let mut transfer_encoding: Option<&[u8]> = None;
    let mut expect = false;
    for h in headers {
        if header_is(h.name, "connection") {
            for token in list_elements(h.value) {
                close_token |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if header_is(h.name, "host") {
            hosts += 1;
        } else if header_is(h.name, "content-length") {
            match (parse_content_length(h.value), content_length) {
                (Some(v), None) => content_length = Some(v),
                (Some(v), Some(prev)) if v == prev => {}
                _ => bad_length = true,
            }
        } else if header_is(h.name, "transfer-encoding") {
            // The last field's last coding is the final coding.
            if let Some(last) = list_elements(h.value).last() {
                transfer_encoding = Some(last);
            } else {
                transfer_encoding = Some(b"");
            }
        } else if header_is(h.name, "expect") {
            expect = true;
        }
    }
    let persistence = match (minor, close_token, keep_alive_token) {
        (_, true, _) => Persistence::Close,
        (1, false, _) => Persistence::KeepAlive11,
        (_, false, true) => Persistence::KeepAlive10,
        _ => Persistence::Close,
    };

    // A response to HEAD has no body, even an error (RFC 9110 §9.3.2).
    let fail = |status: Status, out: &mut [u8]| -> Result<Evaluated<S::Handle>, Overflow> {
        let head_len = write_error(out, status, date, Persistence::Close, method == "HEAD", |_| {})?;
        let outcome =
            Outcome { status, head_len, file_range: None, close: true, head: method == "HEAD", consumed: 0, skip: 0 };
        Ok(Evaluated::Done(outcome, None))
    };
    // Message framing (RFC 9112 §6).
    if let Some(coding) = transfer_encoding {
        let status = if coding.eq_ignore_ascii_case(b"chunked") { Status::NotImplemented } else { Status::BadRequest };
        return fail(status, out);
    }
    if bad_length {
        return fail(Status::BadRequest, out);
    }
    // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, or any
    // request with several.
    if hosts > 1 || (minor == 1 && hosts == 0) {
        return fail(Status::BadRequest, out);
    }
    let skip = content_length.unwrap_or(0);
    let close = persistence == Persistence::Close || (expect && skip > 0);
    let persistence = if close { Persistence::Close } else { persistence };
    let request = Request { method, target, headers, persistence };
    let answer = answer(&request, path_buf, site, date, out)?;
    let (file_range, file) = match answer.body {
        Some((offset, len, file)) => (Some((offset, len)), Some(file)),
        None => (None, None),
    };
    let outcome = Outcome {
        status: answer.status,
        head_len: answer.head_len,
        file_range,
        close: close || answer.close,
        head: method == "HEAD",
        consumed: head_len,
        skip,
    };
    Ok(Evaluated::Done(outcome, file))
}

/// A complete request whose framing was accepted.
struct Request<'r, 'h> {
    method: &'r str,
    target: &'r str,
    headers: &'r [httparse::Header<'h>],
    persistence: Persistence,
}

/// A response written into `out`.
struct Answer<H> {
    status: Status,
    head_len: usize,
    /// (offset, len, file) of the data to send.
    body: Option<(u64, u64, H)>,
    /// The response closes the connection whatever the request asked.
    close: bool,
}

impl<H> Answer<H> {
    fn head(status: Status, head_len: usize) -> Self {
        Answer { status, head_len, body: None, close: false }
    }
}

/// Method, target, lookup, conditions, range: the response to a request
/// whose framing is known.
fn answer<S: Site>(
    req: &Request<'_, '_>,
    path_buf: &mut [u8; MAX_TARGET + INDEX.len()],
    site: &S,
    date: &DateCache,
    out: &mut [u8],
) -> Result<Answer<S::Handle>, Overflow> {
    let persistence = req.persistence;
    let is_head = req.method == "HEAD";
    if req.method != "GET" && !is_head {
        let (status, allow): (Status, &[u8]) = if KNOWN_METHODS.contains(&req.method) {
            (Status::MethodNotAllowed, b"Allow: GET, HEAD\r\n")
        } else {
            (Status::NotImplemented, b"")
        };
        let len = write_error(out, status, date, persistence, false, |w| w.put(allow))?;
        return Ok(Answer::head(status, len));
    }
    let error = |status: Status, out: &mut [u8]| -> Result<Answer<S::Handle>, Overflow> {
        let len = write_error(out, status, date, persistence, is_head, |_| {})?;
        Ok(Answer::head(status, len))
    };
    let closing_error = |status: Status, out: &mut [u8]| -> Result<Answer<S::Handle>, Overflow> {
        let len = write_error(out, status, date, Persistence::Close, is_head, |_| {})?;
        Ok(Answer { status, head_len: len, body: None, close: true })
    };

    // The target.
    let normalized = match normalize(req.target.as_bytes(), &mut path_buf[..MAX_TARGET]) {
        Ok(t) => t,
        Err(TargetError::BadRequest) => return closing_error(Status::BadRequest, out),
        Err(TargetError::TooLong) => return closing_error(Status::UriTooLong, out),
    };
    let mut path_len = normalized.path_len;
    let directory_path = path_buf[path_len - 1] == b'/';
    if directory_path {
        path_buf[path_len..path_len + INDEX.len()].copy_from_slice(INDEX);
        path_len += INDEX.len();
    }
    let Ok(path) = core::str::from_utf8(&path_buf[..path_len]) else {
        // Names are UTF-8: nothing can be found under this path.
        return error(Status::NotFound, out);
    };
    let (info, file) = match site.lookup(path) {
        Lookup::File(info, file) => (info, file),
        Lookup::Directory if !directory_path => {
            // RFC 9110 §15.4.2: the directory's URI ends with '/'.
            let status = Status::MovedPermanently;
            let query = normalized.query;
            let len = write_error(out, status, date, persistence, is_head, |w| {
                w.put(b"Location: ");
                put_encoded_path(w, path.as_bytes());
                w.put(b"/");
                if let Some(q) = query {
                    w.put(b"?");
                    w.put(q);
                }
                w.put(b"\r\n");
            })?;
            return Ok(Answer::head(status, len));
        }
        Lookup::Directory | Lookup::NotFound => return error(Status::NotFound, out),
    };

    let mut w = Writer::new(out);
    let (status, range) = match select(req.headers, &info, is_head, date.now()) {
        Selected::NotModified => {
            start(&mut w, Status::NotModified, date, persistence);
            copy_fields(&mut w, info.header, |name| {
                name.eq_ignore_ascii_case(b"etag") || name.eq_ignore_ascii_case(b"last-modified")
            });
            w.put(b"\r\n");
            (Status::NotModified, None)
        }
        Selected::Unsatisfiable => {
            let status = Status::RangeNotSatisfiable;
            let len = write_error(out, status, date, persistence, is_head, |w| {
                w.put(b"Content-Range: bytes */");
                w.put_u64(info.len);
                w.put(b"\r\n");
            })?;
            return Ok(Answer::head(status, len));
        }
        Selected::Full => {
            start(&mut w, Status::Ok, date, persistence);
            put_accept_ranges(&mut w, info.header);
            w.put(info.header);
            w.put(b"\r\n");
            (Status::Ok, Some((0, info.len)))
        }
        Selected::Partial { first, last } => {
            start(&mut w, Status::PartialContent, date, persistence);
            put_accept_ranges(&mut w, info.header);
            copy_fields(&mut w, info.header, |name| !name.eq_ignore_ascii_case(b"content-length"));
            w.put(b"Content-Range: bytes ");
            w.put_u64(first);
            w.put(b"-");
            w.put_u64(last);
            w.put(b"/");
            w.put_u64(info.len);
            w.put(b"\r\nContent-Length: ");
            w.put_u64(last - first + 1);
            w.put(b"\r\n\r\n");
            (Status::PartialContent, Some((first, last - first + 1)))
        }
    };
    match w.finish() {
        Ok(len) => Ok(Answer {
            status,
            head_len: len,
            body: range.map(|(offset, n)| (offset, if is_head { 0 } else { n }, file)),
            close: false,
        }),
        // The site's precomputed header does not fit `out`: a server error.
        Err(Overflow) => {
            let len = write_error(out, Status::InternalServerError, date, Persistence::Close, is_head, |_| {})?;
            Ok(Answer { status: Status::InternalServerError, head_len: len, body: None, close: true })
        }
    }
}

/// Which response the conditions and the range select for a file.
enum Selected {
    Full,
    NotModified,
    Partial { first: u64, last: u64 },
    Unsatisfiable,
}

/// Evaluates preconditions and the range in the order of RFC 9110 §13.2.2
/// (this server has no If-Match / If-Unmodified-Since handling, steps 1-2,
/// as it serves no unsafe methods; those fields are ignored):
///
/// 3. `If-None-Match` present: `304` if it matches (weak comparison, `*`
///    matches since the file exists). Fields that are not valid lists are
///    ignored.
/// 4. Otherwise `If-Modified-Since`: `304` if the file was not modified
///    after the date. Ignored if it is not a valid HTTP-date or appears
///    more than once (RFC 9110 §13.1.3).
/// 5. `Range` (GET only, RFC 9110 §14.2; several `Range` fields make it
///    invalid, hence ignored): with `If-Range`, only if its validator
///    matches: an entity tag by strong comparison, or a date equal to
///    Last-Modified (a date validator is only used if it is strong, i.e.
///    at least a second before the response's Date, RFC 9110 §8.8.2.2).
fn select(headers: &[httparse::Header<'_>], info: &FileInfo<'_>, is_head: bool, now: u64) -> Selected {
    let mut none_match_present = false;
    let mut none_match = false;
    let mut modified_since: Option<&[u8]> = None;
    let mut modified_since_count = 0;
    let mut range: Option<&[u8]> = None;
    let mut range_count = 0;
    let mut if_range: Option<&[u8]> = None;
    let mut if_range_count = 0;
    for h in headers {
        if header_is(h.name, "if-none-match") {
            none_match_present = true;
            none_match |= if_none_match(h.value, info.etag) == NoneMatch::Matches;
        } else if header_is(h.name, "if-modified-since") {
            modified_since = Some(h.value);
            modified_since_count += 1;
        } else if header_is(h.name, "range") {
            range = Some(h.value);
            range_count += 1;
        } else if header_is(h.name, "if-range") {
            if_range = Some(h.value);
            if_range_count += 1;
        }
    }
    if none_match_present {
        if none_match {
            return Selected::NotModified;
        }
    } else if let (Some(v), 1) = (modified_since, modified_since_count) {
        if let Some(since) = parse_http_date(v, now) {
            if info.last_modified <= since {
                return Selected::NotModified;
            }
        }
    }
    let (Some(range), 1, false) = (range, range_count, is_head) else {
        return Selected::Full;
    };
    if let Some(validator) = if_range {
        let validator = trim(validator);
        let is_etag = validator.first() == Some(&b'"') || validator.starts_with(b"W/");
        let validator_matches = if is_etag {
            if_range_etag_matches(validator, info.etag)
        } else {
            parse_http_date(validator, now) == Some(info.last_modified) && info.last_modified < now
        };
        let matches = if_range_count == 1 && validator_matches;
        if !matches {
            return Selected::Full;
        }
    }
    match evaluate_range(range, info.len) {
        RangeRequest::Full => Selected::Full,
        RangeRequest::Unsatisfiable => Selected::Unsatisfiable,
        RangeRequest::Partial { first, last } => Selected::Partial { first, last },
    }
}

/// Writes a normalised path for a `Location` field: bytes that may appear
/// in a path as they are (RFC 3986 §3.3: unreserved, sub-delims, ':', '@',
/// '/'), every other byte percent-encoded.
fn put_encoded_path(w: &mut Writer<'_>, path: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in path {
        let plain = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if plain {
            w.put(&[b]);
        } else {
            w.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}
