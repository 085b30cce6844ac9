//! [`FtpStore`] over fs-cache-store's [`CacheStore`]: the site image
//! through the file cache PD, as the PD serves it. A failed open (corrupt,
//! unreadable, too large, over ftpd's quota of the cache) is
//! [`Opened::Fail`]: the transfer ends with `451` and the data connection
//! is reset (`crate::server`, "Data connection").

use crate::server::{FtpStore, Opened};
use fs_cache_store::{CachePin, CacheRegion, CacheStore, Open};
use fs_format::Image;
use lib_cache_protocol::client::WaitToken;

impl<'h, R: CacheRegion<'h>> FtpStore for CacheStore<'h, R> {
    fn image(&self) -> Option<&Image<'_>> {
        CacheStore::image(self)
    }

    fn open(&mut self, position: u32) -> Opened<CachePin<'h>, WaitToken> {
        match CacheStore::open(self, position) {
            Open::Ready(pin) => Opened::Ready(pin),
            Open::Wait(token) => Opened::Wait(token),
            Open::Fail(_) => Opened::Fail,
        }
    }
}
