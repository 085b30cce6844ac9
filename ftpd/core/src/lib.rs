//! The FTP protocol logic of the FTP server PD (issue 13), apart from the
//! network and the disk: a read-only, anonymous, passive-only server of the
//! site image httpd serves. Everything here runs (and is tested) on the
//! host, allocates nothing, holds only fixed-size state, and every parse is
//! total: hostile bytes give a reply, never a panic. It is *sans-I/O*: the
//! PD feeds it the control connection's bytes and the time, and does what
//! it answers.
//!
//! - [`command`]: the control connection's bytes into lines
//!   ([`LineReader`]: any chunking, Telnet commands removed, a length
//!   limit) and lines into [`Command`]s (RFC 959 §4.1, §5.3).
//! - [`session`]: one control connection's state machine ([`Session`]):
//!   login, current directory, TYPE, REST, the passive listener, the
//!   transfer, the limits and timeouts; its output is a [`Reply`] and an
//!   [`Action`] for the PD.
//! - [`reply`]: reply lines (RFC 959 §4.2), single and multi-line, in a
//!   fixed buffer.
//! - [`path`]: pathname arguments resolved against the site's root, never
//!   outside it.
//! - [`listing`]: LIST, NLST and MLSD (RFC 3659 §7) of a directory implied
//!   by the image's sorted paths, written in pieces by a resumable
//!   [`ListCursor`].
//! - [`ascii`]: TYPE A conversion of file data in chunks, with REST.
//! - [`time`]: `YYYYMMDDHHMMSS` (RFC 3659 §2.3) and `ls -l` dates.
//! - [`server`]: all of the above on net-serve's engine ([`server::Ftp`],
//!   its `Service`): control and data connections, passive listeners,
//!   replies queued in pieces, file data sent in place from the cache
//!   ([`server::FtpStore`]). The PD gives it the link and the store.
//!
//! # Replies
//!
//! | code | when |
//! | --- | --- |
//! | 125 / 150 | a transfer starts, data connection already up / about to be |
//! | 200 | TYPE, MODE S, STRU F, NOOP, `EPSV ALL`, `OPTS UTF8 ON`, `OPTS MLST` |
//! | 202 | ALLO, ACCT: superfluous |
//! | 211 | FEAT (RFC 2389), STAT |
//! | 213 | SIZE, MDTM (RFC 3659 §3, §4) |
//! | 214 | HELP |
//! | 215 | SYST: `UNIX Type: L8` (clients then expect `ls -l` listings) |
//! | 220 | greeting |
//! | 221 | QUIT |
//! | 225 | ABOR with no transfer |
//! | 226 | transfer complete; after 426 on ABOR |
//! | 227 / 229 | PASV / EPSV (RFC 2428) |
//! | 230 | PASS after `USER anonymous` or `ftp` |
//! | 250 | CWD, CDUP, MLST (RFC 3659 §7) |
//! | 257 | PWD (the path quoted, `"` doubled) |
//! | 331 | USER anonymous |
//! | 350 | REST (RFC 3659 §5) |
//! | 421 | timeouts, rate limit, too many errors, failed logins or unused listeners: then closes; a full server |
//! | 425 | no PASV/EPSV before a transfer, no listener free, no data connection within 30 s |
//! | 426 | the data connection broke; ABOR (then 226); QUIT during a transfer |
//! | 451 | a local error during a transfer (e.g. a file failed verification) |
//! | 500 | unknown command, line too long |
//! | 501 | bad argument, control bytes in the line, unknown OPTS, MLSD of a file |
//! | 502 | PORT, EPRT (active mode not offered, RFC 2577), SITE, REIN, SMNT |
//! | 503 | PASS before USER, RNTO, PASV after `EPSV ALL`, a command during a transfer |
//! | 504 | unsupported TYPE, MODE, STRU; STAT with a path |
//! | 522 | EPSV with a protocol other than 1 (IPv4) |
//! | 530 | not logged in; a user other than anonymous |
//! | 550 | missing file or directory; RETR/SIZE/MDTM of a directory; CWD to a file; SIZE in TYPE A; every write command |
//! | 554 | RETR after REST past the end (RFC 3659 §5.4) |
//!
//! See [`session`] for the reasons, with the RFC rule behind each.
//!
//! # Memory
//!
//! Per control connection the PD keeps a [`Session`] (1120 bytes: the
//! current directory is a path buffer of `fs_format::path::MAX_PATH_LEN`),
//! a [`LineReader`] (1048 bytes) and, while a listing is sent, a
//! [`ListCursor`] (40 bytes; it is inside [`Action::Transfer`]). A
//! [`Reply`] (4104 bytes) is needed only until its bytes are queued on the
//! connection; [`server`] keeps one per session all the same, since a
//! reply may wait for room in the connection's stream (a session's entry
//! there is 6352 bytes). Sizes on x86-64, pinned by tests.
//!
//! # What the PD does
//!
//! [`server`] does what follows on net-serve's engine; a PD on another
//! stack would do it itself. On a new control connection: [`Session::new`] with its address and the
//! peer's, send [`Session::greeting`] (or [`refuse_busy`] when it has no
//! session free). For each chunk of received bytes: [`LineReader::feed`]
//! until the chunk is used up, each [`Input`] to [`Session::input`], send
//! the reply, do the [`Action`]. Arm a timer for [`Session::deadline`] and
//! call [`Session::poll`]. For passive mode: open a listener on a port of
//! its range, report it ([`Session::passive_opened`]), ask
//! [`Session::data_connection`] before accepting a connection on it. For a
//! transfer: the file's bytes from the cache (through the
//! [`AsciiEncoder`] in TYPE A) or [`ListCursor::fill`] into the data
//! connection's buffer; then [`Session::transfer_done`].
#![no_std]
#![forbid(unsafe_code)]

pub mod ascii;
pub mod cache;
pub mod command;
pub mod listing;
pub mod path;
pub mod reply;
pub mod server;
pub mod session;
pub mod time;

pub use ascii::AsciiEncoder;
pub use command::{parse, Command, Input, LineReader, MAX_LINE};
pub use listing::{Facts, Format, ListCursor};
pub use path::SitePath;
pub use reply::{Reply, REPLY_CAPACITY};
pub use session::{refuse_busy, Action, Config, Outcome, Session, Transfer};

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;
