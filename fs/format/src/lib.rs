//! The Cheetah on-disk format: a web site as one image of 4096-byte blocks
//! that a server can serve from with little work per request.
//!
//! The full specification, with byte offsets, is `fs/FORMAT.md`; this is
//! its summary and the reader (and, with the `alloc` feature, the writer of
//! the head).
//!
//! # Image
//!
//! ```text
//! block 0            superblock (magic "CHEETAFS", version, block size,
//!                    block count, index location and length, file count,
//!                    first data block, SHA-256 of the index, SHA-256 of
//!                    itself); the rest of the block is zero
//! blocks 1 ..        the index (index_len bytes, zero-padded to a block)
//! data_first_block.. file data: each file contiguous from a block
//!                    boundary, zero-padded to the end of its last block
//! ```
//!
//! All integers are little-endian except the piece sums (big-endian, as on
//! the wire).
//!
//! # Index
//!
//! An entry table of `file_count` fixed-size entries ([`ENTRY_SIZE`] bytes)
//! **sorted by path in byte order**, followed by the paths and headers and
//! then the piece sums that entries point to. A reader finds a path by
//! binary search over the table: `O(log n)` comparisons, no allocation, no
//! hash function to agree on, and the sorted order also answers "is this a
//! directory" (the first path not less than `dir/` starts with it) and lists
//! files in order. Each entry holds the file's path, size, first data
//! block, its span, Last-Modified, SHA-256, flags, and where its header and
//! piece sums are.
//!
//! # Per file
//!
//! - the precomputed HTTP/1.1 200 header, everything but `Date` and the
//!   connection fields; the server appends those and the final CRLF (see
//!   [`http`]);
//! - the SHA-256 of the data (integrity; [`FileRecord::verify`],
//!   [`FileVerifier`]); the strong ETag is its first 16 bytes in hex;
//! - the Internet checksum of each 1460-byte piece, from which the sum of
//!   any segment follows ([`sums`]).
//!
//! # Layout
//!
//! The builder places every HTML page (in order of depth, then path, so
//! `/index.html` comes first), each followed by the local
//! images, stylesheets, scripts and other objects it references (`src=` on
//! any element, `href=` on `<link>`), each object once, after the first page
//! that references it; then every other file in path order. The blocks from
//! a page's first block to the end of its last object are the page's
//! *span*, stored in the page's record and in each of its objects' records
//! (a file on its own has its own blocks as its span): one sequential read
//! of a span fetches a page and what it inlines, and a cache can keep or
//! drop a span as a whole.
//!
//! # Reading
//!
//! Read block 0 and [`Superblock::parse`] it; read [`Superblock::head_len`]
//! bytes from the image start and [`Image::parse`] them (this checks the
//! index's hash and every record); then [`Image::lookup`],
//! [`Image::is_directory`], [`Image::files`], [`Image::pages`]. Every
//! parse is total: hostile bytes give a [`FormatError`], never a panic.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

#[cfg(any(feature = "alloc", test))]
pub mod build;
pub mod http;
mod image;
pub mod path;
pub mod sums;

pub use image::{
    blocks_for, Entry, FileRecord, FileVerifier, FormatError, Image, RecordFault, Superblock, BLOCK_SIZE, ENTRY_SIZE,
    FLAG_INLINED, FLAG_PAGE, INDEX_FIRST_BLOCK, MAGIC, MAX_BLOCKS, MAX_INDEX_LEN, SUPERBLOCK_LEN, VERSION,
};

#[cfg(test)]
mod tests;
