//! Serving files over net-tcp on the node's link, for every server PD
//! (httpd's HTTP, ftpd's FTP): the Cheetah server's engine without the
//! protocol.
//!
//! - [`server`]: the engine ([`server::Server`]): frames in, SYN cookies
//!   (no state before the handshake completes), the connection table,
//!   TIME-WAIT records, resets, work contexts, and segments out with file
//!   bytes in place and segmentation offload. What a connection speaks is
//!   a [`server::Service`]'s.
//! - [`table`]: connection slots found by 4-tuple, counts per source.
//! - [`stream`]: a connection's outgoing stream (copied bytes in a ring,
//!   file extents in the cache).
//! - [`inplace`]: file extents, pins, and the checksums of segments that
//!   carry file bytes in place ([`inplace::Pins`]: the store).
//! - [`link`]: the demultiplexer's queues, arpd, Ethernet framing.
//! - [`arena`], [`slotset`]: fixed tables carved from a region at start.
//! - `testing` (feature `host-tests`): the fake link and smoltcp clients
//!   of other crates' host tests.
//!
//! Nothing here allocates; every table is carved at start.
#![no_std]

#[cfg(any(test, feature = "host-tests"))]
extern crate std;

pub mod arena;
pub mod inplace;
pub mod link;
pub mod server;
pub mod slotset;
pub mod stream;
pub mod table;
#[cfg(feature = "host-tests")]
pub mod testing;
