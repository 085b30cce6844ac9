//! The HTTP/1.x logic of the web server PD, apart from the network and the
//! disk: everything here runs (and is tested) on the host, allocates
//! nothing, and holds only fixed-size state.
//!
//! - [`conn`]: one connection's request bytes (split anywhere, pipelined)
//!   parsed with `httparse` into requests, limits, keep-alive, and the
//!   response to each request.
//! - [`target`]: the request target to a site path: percent-decoding and
//!   dot-segment removal that cannot leave the site root.
//! - [`conditional`]: `If-None-Match` lists and `Range` values.
//! - [`date`]: HTTP dates, and the `Date` value formatted once a second.
//! - [`response`]: status codes and the header writer.
//! - [`site`]: the [`site::Site`] trait the file store implements, and an
//!   in-memory site.
//!
//! # Status codes
//!
//! | code | when |
//! | --- | --- |
//! | 200 | GET/HEAD of a file (also when `Range` is ignored) |
//! | 206 | GET with one satisfiable byte range |
//! | 301 | `/dir` names a directory: `Location: /dir/` |
//! | 304 | `If-None-Match` matches, or not modified since `If-Modified-Since` |
//! | 400 | unparsable request, bad target, missing/duplicate `Host`, bad `Content-Length`, a transfer coding other than final `chunked`; closes |
//! | 404 | no such file, or a directory without `index.html` |
//! | 405 | a method RFC 9110 defines other than GET/HEAD (`Allow: GET, HEAD`) |
//! | 408 | idle timeout during a request ([`conn::Connection::timeout`]); closes |
//! | 414 | request line larger than the buffer, or target over [`conn::MAX_TARGET`]; closes |
//! | 416 | byte range not satisfiable (`Content-Range: bytes */len`) |
//! | 431 | header section larger than the buffer or over [`conn::MAX_HEADERS`] fields; closes |
//! | 500 | the site's precomputed header does not fit the output buffer; closes |
//! | 501 | unknown method, or `Transfer-Encoding: chunked` in a request; closes for the latter |
//! | 505 | an `HTTP/x.y` version other than 1.0 and 1.1; closes |
//!
//! 405 vs 501 (RFC 9110 §15.5.6, §15.6.2): 405 is for a method the server
//! knows but the resource does not allow; 501 for one the server does not
//! recognise. The known ones are those RFC 9110 defines plus PATCH.
//!
//! HTTP versions: RFC 9112 §2.3 would have a server treat `HTTP/1.2` and
//! later minors as 1.1; no such version exists and `httparse` refuses them,
//! so they get 505 like every version other than 1.0 and 1.1.
#![no_std]

pub mod conditional;
pub mod conn;
pub use http_date as date;
pub mod response;
pub mod site;
pub mod target;

pub use conn::{write_closing_error, Connection, Poll, Response};
pub use date::DateCache;
pub use response::{Body, Status};
pub use site::{FileInfo, Lookup, MemEntry, MemSite, Site};

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;
