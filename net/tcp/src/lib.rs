//! A TCP made for serving files (Cheetah's server TCP), `no_std` and
//! sans-I/O: the caller hands it received segments and the time, and it
//! says what to send; nothing here allocates, and every capacity is fixed
//! when the tables are made.
//!
//! What it is for, and what follows from it:
//!
//! - **Only passive opens.** A server never connects out, so there is no
//!   SYN-SENT and no simultaneous open (RFC 9293 §3.5 is needed only in
//!   the LISTEN → SYN-RECEIVED direction).
//! - **No state before the handshake completes.** A SYN is answered with a
//!   SYN-ACK whose sequence number is a SYN cookie (RFC 4987 §3.6) carrying
//!   the peer's MSS and window scale; a connection is made only when the
//!   final ACK returns a valid cookie, so no rate of SYNs from any sources
//!   can fill a table.
//! - **Compact TIME-WAIT.** A closed connection leaves a small record
//!   (addresses, ports, sequence numbers, expiry), never its buffers; the
//!   slot and the data it pinned are free at once.
//! - **The file cache is the retransmission pool.** A connection's output
//!   is a byte stream the application describes (a response head in its own
//!   buffer, then ranges of pinned files with precomputed checksums); a
//!   segment, first sent or retransmitted, names the stream range it
//!   carries, and the application resolves it to bytes where they are.
//!
//! Modules, each citing the rules it implements:
//!
//! - [`seq`]: sequence numbers and their modular comparison (RFC 9293 §3.4).
//! - [`accept`]: which segments a synchronized connection accepts (RFC 9293
//!   §3.10.7.4, hardened by RFC 5961 against blind RST, SYN and data
//!   injection), and the challenge-ACK budget.
//! - [`congestion`]: NewReno (RFC 5681, RFC 6582) and duplicate ACKs.
//! - [`delack`]: delayed ACKs (RFC 1122 §4.2.3.2, RFC 5681 §4.2).
//! - [`rto`]: the retransmission timer (RFC 6298), with Karn and backoff.
//! - [`cookie`]: SYN cookies (RFC 4987 §3.6): MSS and window scale (RFC 7323 §2) in a MAC'd ISN.
//! - [`timewait`]: compact TIME-WAIT records and what a segment that hits one gets (RFC 9293 §3.10.7.4, RFC 1337, RFC 1122 §4.2.2.13).
#![no_std]

#[cfg(test)]
extern crate std;

pub mod accept;
pub mod congestion;
pub mod conn;
pub mod cookie;
pub mod delack;
pub mod rto;
pub mod seq;
pub mod timewait;
