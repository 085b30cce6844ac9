//! The baseline HTTP server PD's logic, host-tested: smoltcp as the TCP/IP
//! stack on the demultiplexer's queues ([`device`]), a fixed pool of
//! connections carved from a region the description sizes ([`arena`],
//! [`server`], each connection a [`slot`]), HTTP/1.x from `http-core`, and the site image it serves
//! through the file cache ([`site`]), whose bytes go to the wire in place
//! ([`inplace`]: smoltcp's segments mapped back to file ranges, found by
//! their peer in [`endpoints`]). The PD (`src/main.rs`) is the glue to the runtime: the
//! demultiplexer's queues (`net_client::NetClient`), arpd's table and
//! calls, and the timer (monotonic time, and the wall clock at boot for the
//! `Date` header).
#![no_std]

#[cfg(test)]
extern crate std;

pub mod cheetah;
pub mod device;
pub mod endpoints;
pub mod inplace;
pub mod server;
pub mod site;
pub mod slot;

pub use net_serve::{arena, slotset};

/// The port httpd serves: the description's boot claim (`tcp dst 80`).
pub const PORT: u16 = 80;

#[cfg(test)]
mod builtin;

#[cfg(test)]
mod tests;
