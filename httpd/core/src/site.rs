//! Where the server gets its files: the [`Store`] trait, and its
//! implementation over fs-cache-store's [`CacheStore`], the site image
//! (`fs/FORMAT.md`) served through the file cache PD (`fs/cache`).
//!
//! # The store's contract with the server
//!
//! [`http_core::Site`] answers lookups (the stored header fields, the
//! entity tag) from the image's index, which is in memory once the cache
//! has booted. A file's *data* may not be: before the server sends the
//! first byte of a response with a body it asks [`Store::open`]:
//!
//! - [`Fetch::Ready`]: the data is in memory and verified; the pin keeps it
//!   there until [`Pins::release`]. The server holds it while it sends
//!   and gives it back when the body is sent or the connection ends.
//! - [`Fetch::Wait`]: not now (being read from the disk, or no room until
//!   a pin is released). The response is held back, not started, and the
//!   open is repeated once [`Files::may_retry`] says something happened
//!   that may change the answer.
//! - [`Fetch::Fail`]: the data cannot be served (corrupt, unreadable, too
//!   large for the cache): the server answers with that status instead
//!   and closes. Not a byte of the file is sent.

use crate::inplace::Files;
pub use fs_cache_store::{Availability, CachePin, CacheRegion, CacheStore, Failure, Failures, Open};
use http_core::{Site, Status};
use lib_cache_protocol::client::WaitToken;

/// The answer to [`Store::open`] (see the module docs).
#[derive(Debug, PartialEq, Eq)]
pub enum Fetch<P, W> {
    Ready(P),
    Wait(W),
    Fail(Status),
}

/// A site whose file data the server may have to wait for.
pub trait Store: Site + Files {
    /// Asks for the data of `file` (a handle from a lookup).
    fn open(&mut self, file: Self::Handle) -> Fetch<Self::Pin, Self::Wait>;
}

impl<'h, R: CacheRegion<'h>> Store for CacheStore<'h, R> {
    /// A failure is `500` (`503` over the quota: the server holds too much
    /// of the cache for now).
    fn open(&mut self, id: u32) -> Fetch<CachePin<'h>, WaitToken> {
        match CacheStore::open(self, id) {
            Open::Ready(pin) => Fetch::Ready(pin),
            Open::Wait(token) => Fetch::Wait(token),
            Open::Fail(Failure::OverQuota) => Fetch::Fail(Status::ServiceUnavailable),
            Open::Fail(_) => Fetch::Fail(Status::InternalServerError),
        }
    }
}
