//! The packet demultiplexer's policy, as pure logic: which PD receives a
//! frame, which PD may claim which traffic, and which frames a PD may send.
//!
//! - [`Filter`]: a set of frames by EtherType, IPv4 protocol, source and
//!   destination prefix, source and destination port range, with exact
//!   [overlap](Filter::overlaps) and [containment](Filter::is_within).
//! - [`Grant`]: the filters a PD may claim, from the system description.
//! - [`Table`]: installed exclusive and copy filters with their owners;
//!   install/remove with distinct errors, per-filter hit counters, drop
//!   counters, and [`Table::classify`] deciding each frame's receivers
//!   (rules in the [`table`] module).
//! - [`text`]: the filter syntax of the system description and logs, and
//!   the word encoding of protected calls.
//! - [`TxPolicy`]: transmit validation on a copy of a frame's headers
//!   (rules and the reason for the copy in the [`tx`] module).
//!
//! Fixed capacities (const generics), no allocation, no `unsafe`, no
//! panics on any input.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod filter;
mod grant;
mod owner;
pub mod table;
pub mod text;
pub mod tx;

pub use filter::{Filter, Ipv4Prefix, PortRange};
pub use grant::Grant;
pub use owner::{Owner, OwnerSet, MAX_OWNERS};
pub use table::{Counters, Decision, FilterError, FilterId, FilterKind, Installed, Table};
pub use text::{parse_ipv4, parse_prefix, Dotted, ParseError};
pub use tx::{answer_shape, AnswerShape, TxCounters, TxHeaders, TxPolicy, TxRefused};
