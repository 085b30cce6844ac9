//! The console ring: how a PD hands its log bytes to the serial driver PD.
//!
//! A single-producer single-consumer byte ring in one shared 4 KiB memory
//! region ([`REGION_SIZE`]), mapped read-write into both PDs. The writer (a
//! PD's runtime, or the serial PD for received bytes) and the reader never
//! block each other and never trust each other.
//!
//! # Layout
//!
//! | offset | size | field | written by |
//! |---|---|---|---|
//! | 0 | 4 | `head`: bytes ever written (free-running `u32`) | writer |
//! | 4 | 4 | `tail`: bytes ever read (free-running `u32`) | reader |
//! | 8 | 4 | `dropped`: bytes the writer discarded because the ring was full | writer |
//! | 12 | 52 | reserved, zero | nobody |
//! | 64 | [`CAPACITY`] | data: byte `i` of the stream is at `64 + i % CAPACITY` | writer |
//!
//! A fresh (zeroed) region is an empty ring.
//!
//! # Protocol
//!
//! - The writer copies bytes into the free slots `[head, tail + CAPACITY)`,
//!   then publishes the new `head` with a *Release* store; the reader loads
//!   `head` with *Acquire*, so the bytes are visible before the index that
//!   covers them.
//! - The reader copies bytes out of `[tail, head)`, then publishes the new
//!   `tail` with *Release*; the writer loads `tail` with *Acquire* before it
//!   reuses those slots.
//! - [`CAPACITY`] is a power of two derived from [`REGION_SIZE`], a constant
//!   both sides compile in; it is never read from shared memory. Indices are
//!   reduced modulo it, so no index value can reach outside the data area.
//! - Each side keeps its own index privately and only *publishes* it: a peer
//!   that scribbles over the header cannot move our position. An impossible
//!   distance (`head - tail > CAPACITY`) means the peer broke the protocol:
//!   the writer then treats the ring as full (and counts the bytes dropped),
//!   the reader skips to the writer's `head` and counts a resync.
//! - Writing never waits: what does not fit is dropped and counted, because
//!   a logger must never hang its PD. Wake-ups are not part of the ring: the
//!   writer signals the reader through a channel (see the PD runtime's
//!   `console` module for the console convention).
//!
//! Every shared byte is accessed through atomics, so even a hostile peer
//! writing concurrently cannot cause undefined behaviour on this side, only
//! garbage bytes.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

mod ring;

pub use ring::*;

#[cfg(test)]
mod tests;
