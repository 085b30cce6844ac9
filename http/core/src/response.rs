//! Writing response headers into the caller's buffer.
//!
//! Only the header (and the small body of an error or redirect) is written
//! here; a file's data is sent by the caller from where it already is, as
//! described by [`Body`].

use crate::date::DateCache;

/// Status codes this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    PartialContent,
    MovedPermanently,
    NotModified,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    UriTooLong,
    RangeNotSatisfiable,
    HeaderFieldsTooLarge,
    InternalServerError,
    NotImplemented,
    /// 503: the server cannot take the request now (RFC 9110 §15.6.4), e.g.
    /// it holds too much of the file cache to pin one more file.
    ServiceUnavailable,
    VersionNotSupported,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::PartialContent => 206,
            Status::MovedPermanently => 301,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::UriTooLong => 414,
            Status::RangeNotSatisfiable => 416,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::PartialContent => "Partial Content",
            Status::MovedPermanently => "Moved Permanently",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::UriTooLong => "URI Too Long",
            Status::RangeNotSatisfiable => "Range Not Satisfiable",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// The part of a file the caller sends after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body<H> {
    pub file: H,
    /// First byte of the file to send.
    pub offset: u64,
    /// Number of bytes to send (may be 0).
    pub len: u64,
}

/// The header did not fit the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// Appends bytes to a fixed buffer; remembers an overflow instead of
/// panicking.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0, overflow: false }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.overflow = true,
        }
    }

    pub(crate) fn put_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }

    pub(crate) fn finish(self) -> Result<usize, Overflow> {
        if self.overflow {
            Err(Overflow)
        } else {
            Ok(self.len)
        }
    }
}

/// How the connection continues after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 persistent: no `Connection` field needed.
    KeepAlive11,
    /// HTTP/1.0 client that asked for keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// `Connection: close`; the server closes after sending.
    Close,
}

/// Status line, `Date`, `Connection` (when needed).
pub(crate) fn start(w: &mut Writer<'_>, status: Status, date: &DateCache, persistence: Persistence) {
    w.put(b"HTTP/1.1 ");
    w.put_u64(u64::from(status.code()));
    w.put(b" ");
    w.put(status.reason().as_bytes());
    w.put(b"\r\nDate: ");
    w.put(date.text());
    w.put(b"\r\n");
    match persistence {
        Persistence::KeepAlive11 => {}
        Persistence::KeepAlive10 => w.put(b"Connection: keep-alive\r\n"),
        Persistence::Close => w.put(b"Connection: close\r\n"),
    }
}

/// Copies the header lines of `header` (fields ending in CRLF) for which
/// `keep(name)` holds.
pub(crate) fn copy_fields(w: &mut Writer<'_>, header: &[u8], keep: impl Fn(&[u8]) -> bool) {
    let mut rest = header;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        let name = &line[..line.iter().position(|&b| b == b':').unwrap_or(0)];
        if keep(name) {
            w.put(line);
        }
        rest = &rest[end..];
    }
}

/// The small body of an error or redirect:
/// `<!DOCTYPE html>…<h1>404 Not Found</h1>…`.
pub(crate) fn error_body_len(status: Status) -> u64 {
    // The code is three digits and a space.
    (ERROR_BODY_HEAD.len() + ERROR_BODY_MIDDLE.len() + ERROR_BODY_END.len()) as u64
        + 2 * (4 + status.reason().len() as u64)
}

const ERROR_BODY_MIDDLE: &[u8] = b"</title></head><body><h1>";
const ERROR_BODY_END: &[u8] = b"</h1></body></html>\n";
const ERROR_BODY_HEAD: &[u8] = b"<!DOCTYPE html><html><head><title>";

pub(crate) fn put_error_body(w: &mut Writer<'_>, status: Status) {
    w.put(ERROR_BODY_HEAD);
    put_code_reason(w, status);
    w.put(ERROR_BODY_MIDDLE);
    put_code_reason(w, status);
    w.put(ERROR_BODY_END);
}

fn put_code_reason(w: &mut Writer<'_>, status: Status) {
    w.put_u64(u64::from(status.code()));
    w.put(b" ");
    w.put(status.reason().as_bytes());
}
