//! What the HTTP logic needs from the site's store: one lookup by path.
//!
//! The on-disk format keeps, for each file, the header fields of its `200`
//! response ready to send; the HTTP logic copies them and adds only what
//! depends on the request (status line, `Date`, `Connection`, the range).

/// A file of the site, as the HTTP logic needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo<'a> {
    /// Length of the file's data in bytes.
    pub len: u64,
    /// Last modification time, unix seconds (compared with
    /// `If-Modified-Since` and `If-Range` dates).
    pub last_modified: u64,
    /// The strong entity tag with its quotes, e.g. `"5f3a-1c2"`, exactly as
    /// in the `ETag` field of `header`.
    pub etag: &'a [u8],
    /// The header fields of a `200` response, each ending in CRLF, without
    /// the final empty line: `Content-Type`, `Content-Length`,
    /// `Last-Modified` and `ETag` (and possibly more). For `206` the
    /// `Content-Length` line is replaced; for `304` only `ETag` and
    /// `Last-Modified` are kept.
    pub header: &'a [u8],
}

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a, H> {
    /// A file, with the handle the server uses to send its data.
    File(FileInfo<'a>, H),
    /// A directory: `/dir` is redirected to `/dir/`, and `/dir/` is served
    /// as `/dir/index.html`.
    Directory,
    NotFound,
}

/// The site's store.
pub trait Site {
    /// Identifies a file to the server that sends its data (an index in
    /// the file table, for example).
    type Handle: Copy;

    /// Looks up a normalised path: it starts with `/`, has no empty, `.` or
    /// `..` segment and no trailing `/` (the root is looked up as
    /// `/index.html`, never as `/`).
    fn lookup(&self, path: &str) -> Lookup<'_, Self::Handle>;
}

/// One entry of a [`MemSite`].
#[derive(Clone, Copy, Debug)]
pub struct MemEntry<'a> {
    /// Normalised path (see [`Site::lookup`]).
    pub path: &'a str,
    /// `None` for a directory.
    pub file: Option<FileInfo<'a>>,
}

/// A site held in memory: a table of entries searched in order. For tests
/// and for a server running without a disk. The handle is the entry's
/// index.
#[derive(Clone, Copy, Debug)]
pub struct MemSite<'a> {
    pub entries: &'a [MemEntry<'a>],
}

impl Site for MemSite<'_> {
    type Handle = usize;

    fn lookup(&self, path: &str) -> Lookup<'_, usize> {
        match self.entries.iter().position(|e| e.path == path) {
            Some(i) => match self.entries[i].file {
                Some(info) => Lookup::File(info, i),
                None => Lookup::Directory,
            },
            None => Lookup::NotFound,
        }
    }
}
