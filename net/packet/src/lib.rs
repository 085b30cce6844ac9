//! Zero-copy views, validation and builders for the headers of the IP
//! suite as this system uses them: Ethernet II, ARP (Ethernet/IPv4),
//! IPv4, ICMP, UDP and TCP.
//!
//! - Each protocol module has a view over `&[u8]` (`parse` checks what the
//!   RFC requires before any accessor is used; accessors never panic) and,
//!   where this system writes that header, a `Repr` or builder.
//! - [`classify`] validates a received frame in one pass and returns the
//!   [`Parsed`] summary the packet demultiplexer filters on, or the
//!   [`Malformed`] reason to count and drop it. [`classify_headers`] does
//!   the same for a copy of outgoing headers, for transmit validation.
//! - [`checksum`] is the Internet checksum (RFC 1071) with incremental
//!   update (RFC 1624); [`reply`] builds the stray-packet daemon's answers
//!   and [`arp::ArpRepr`] the ARP daemon's frames.
//!
//! No allocation, no `unsafe`, no dependencies. Every function is total on
//! arbitrary input: malformed bytes give an error, never a panic.
#![no_std]
#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
mod classify;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
mod malformed;
pub mod reply;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use classify::{classify, classify_headers, classify_strict, ArpSummary, Ipv4Summary, Network, Parsed, Transport};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmp::{IcmpMessage, IcmpType};
pub use ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
pub use malformed::Malformed;
pub use tcp::{TcpFlags, TcpSegment};
pub use udp::UdpDatagram;
