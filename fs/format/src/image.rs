//! Superblock, index and file records: decoding with validation (the
//! reader) and encoding (for the builder), both without allocation.

use crate::http::{self, check_header, STATUS_LINE};
use crate::path::{check_path, PathFault};
use crate::sums::{self, piece_count, SumError, PIECE};
use net_packet::checksum::Checksum;
use sha2::{Digest, Sha256};

/// Size of a block: the unit of placement and of the image's length.
pub const BLOCK_SIZE: usize = 4096;
/// The superblock's first eight bytes.
pub const MAGIC: [u8; 8] = *b"CHEETAFS";
/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of the superblock covered by its own checksum.
pub const SUPERBLOCK_SUMMED: usize = 72;
/// Bytes of the superblock in use; the rest of block 0 is zero.
pub const SUPERBLOCK_LEN: usize = SUPERBLOCK_SUMMED + 32;
/// Size of one index entry.
pub const ENTRY_SIZE: usize = 96;
/// The most blocks an image may have (block numbers are `u32`).
pub const MAX_BLOCKS: u64 = u32::MAX as u64;
/// The longest index, in bytes (its length is a `u32`).
pub const MAX_INDEX_LEN: u64 = u32::MAX as u64;

/// Record flag: an HTML page, followed in the image by the objects it
/// references; its span covers them.
pub const FLAG_PAGE: u32 = 1;
/// Record flag: an object placed after the first page that references it;
/// its span is that page's.
pub const FLAG_INLINED: u32 = 2;

/// Why an image (or part of it) is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than a block for the superblock.
    ShortSuperblock,
    /// Not a Cheetah image.
    BadMagic,
    /// A version this reader does not know.
    UnsupportedVersion(u32),
    /// A block size other than 4096.
    BadBlockSize(u32),
    /// The superblock's checksum does not match its contents.
    SuperblockChecksum,
    /// A reserved superblock byte is not zero.
    SuperblockReserved,
    /// Index or data area do not fit the image as the superblock says.
    BadGeometry,
    /// Fewer bytes given than the superblock and index take.
    ShortIndex {
        /// Bytes needed from the start of the image.
        needed: u64,
    },
    /// The index's checksum does not match.
    IndexChecksum,
    /// A file record is invalid.
    Record {
        /// Its position in the index.
        index: u32,
        /// What is wrong with it.
        fault: RecordFault,
    },
}

/// What is wrong with a file record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFault {
    /// A reserved field is not zero, or the flags are unknown or contradict.
    Reserved,
    /// The path lies outside the index's string area.
    PathOutOfRange,
    /// The path breaks the rules of [`crate::path`].
    BadPath(PathFault),
    /// The path is not greater than the previous record's (paths are sorted
    /// and unique).
    NotSorted,
    /// The header lies outside the index's string area.
    HeaderOutOfRange,
    /// The header is not a stored 200 header for this size.
    BadHeader,
    /// The piece sums lie outside the index.
    SumsOutOfRange,
    /// The data blocks lie outside the data area.
    DataOutOfRange,
    /// The span does not lie in the data area or does not hold the data.
    BadSpan,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::ShortSuperblock => f.write_str("superblock: fewer than 4096 bytes"),
            FormatError::BadMagic => f.write_str("superblock: not a Cheetah image (bad magic)"),
            FormatError::UnsupportedVersion(v) => {
                write!(f, "superblock: unsupported version {v} (this reader knows {VERSION})")
            }
            FormatError::BadBlockSize(s) => write!(f, "superblock: block size {s}, not 4096"),
            FormatError::SuperblockChecksum => f.write_str("superblock: checksum mismatch (corrupted)"),
            FormatError::SuperblockReserved => f.write_str("superblock: reserved bytes are not zero"),
            FormatError::BadGeometry => f.write_str("superblock: index or data area outside the image"),
            FormatError::ShortIndex { needed } => write!(f, "index: {needed} bytes needed from the image start"),
            FormatError::IndexChecksum => f.write_str("index: checksum mismatch (corrupted)"),
            FormatError::Record { index, fault } => write!(f, "index: record {index}: {fault}"),
        }
    }
}

impl core::fmt::Display for RecordFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordFault::Reserved => f.write_str("reserved field or flags invalid"),
            RecordFault::PathOutOfRange => f.write_str("path outside the index"),
            RecordFault::BadPath(p) => write!(f, "bad path: {p}"),
            RecordFault::NotSorted => f.write_str("paths not sorted or not unique"),
            RecordFault::HeaderOutOfRange => f.write_str("header outside the index"),
            RecordFault::BadHeader => f.write_str("header is not a 200 header for this size"),
            RecordFault::SumsOutOfRange => f.write_str("piece checksums outside the index"),
            RecordFault::DataOutOfRange => f.write_str("data blocks outside the data area"),
            RecordFault::BadSpan => f.write_str("span does not hold the data or lies outside the data area"),
        }
    }
}

/// The superblock's values (block 0 of the image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Blocks in the image, block 0 included.
    pub block_count: u32,
    /// Length of the index in bytes; it starts at block 1.
    pub index_len: u32,
    /// Number of file records.
    pub file_count: u32,
    /// First block of the data area, right after the index's blocks.
    pub data_first_block: u32,
    /// SHA-256 of the index's `index_len` bytes.
    pub index_sha256: [u8; 32],
}

/// The index's first block.
pub const INDEX_FIRST_BLOCK: u32 = 1;

fn le32(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn le16(b: &[u8], at: usize) -> u16 {
    let mut w = [0; 2];
    if let Some(s) = b.get(at..at + 2) {
        w.copy_from_slice(s);
    }
    u16::from_le_bytes(w)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    if let Some(s) = b.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Blocks needed for `bytes`.
pub const fn blocks_for(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK_SIZE as u64)
}

impl Superblock {
    /// Decodes and validates block 0: magic, version, block size, its own
    /// checksum, zero reserved bytes, and that the index (from block 1) and
    /// the data area (right after it) fit in `block_count` blocks.
    pub fn parse(block: &[u8]) -> Result<Superblock, FormatError> {
        let block = block.get(..BLOCK_SIZE).ok_or(FormatError::ShortSuperblock)?;
        if block[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = le32(block, 8);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let block_size = le32(block, 12);
        if block_size as usize != BLOCK_SIZE {
            return Err(FormatError::BadBlockSize(block_size));
        }
        if block[SUPERBLOCK_SUMMED..SUPERBLOCK_LEN] != sha256(&block[..SUPERBLOCK_SUMMED]) {
            return Err(FormatError::SuperblockChecksum);
        }
        // Reserved bytes zero: or-ed together without a branch a byte (the
        // loop vectorises; a byte-wise `any` is one compare a byte, which
        // fuzzing instrumentation makes the superblock's main cost).
        if le32(block, 36) != 0 || block[SUPERBLOCK_LEN..].iter().fold(0, |acc, &b| acc | b) != 0 {
            return Err(FormatError::SuperblockReserved);
        }
        let mut index_sha256 = [0; 32];
        index_sha256.copy_from_slice(&block[40..72]);
        let sb = Superblock {
            block_count: le32(block, 16),
            index_len: le32(block, 24),
            file_count: le32(block, 28),
            data_first_block: le32(block, 32),
            index_sha256,
        };
        let index_end_block = u64::from(INDEX_FIRST_BLOCK) + blocks_for(u64::from(sb.index_len));
        if le32(block, 20) != INDEX_FIRST_BLOCK
            || u64::from(sb.data_first_block) != index_end_block
            || sb.data_first_block > sb.block_count
            || u64::from(sb.file_count) * ENTRY_SIZE as u64 > u64::from(sb.index_len)
        {
            return Err(FormatError::BadGeometry);
        }
        Ok(sb)
    }

    /// Bytes from the start of the image that [`Image::parse`] needs: the
    /// superblock and the index.
    pub fn head_len(&self) -> u64 {
        u64::from(INDEX_FIRST_BLOCK) * BLOCK_SIZE as u64 + u64::from(self.index_len)
    }

    /// Writes block 0 for these values (with the magic, version, block size
    /// and the superblock's checksum).
    pub fn encode(&self) -> [u8; BLOCK_SIZE] {
        let mut b = [0u8; BLOCK_SIZE];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
        b[16..20].copy_from_slice(&self.block_count.to_le_bytes());
        b[20..24].copy_from_slice(&INDEX_FIRST_BLOCK.to_le_bytes());
        b[24..28].copy_from_slice(&self.index_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.file_count.to_le_bytes());
        b[32..36].copy_from_slice(&self.data_first_block.to_le_bytes());
        b[40..72].copy_from_slice(&self.index_sha256);
        let own = sha256(&b[..SUPERBLOCK_SUMMED]);
        b[SUPERBLOCK_SUMMED..SUPERBLOCK_LEN].copy_from_slice(&own);
        b
    }
}

/// One index entry as stored (offsets are into the index).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Offset and length of the path.
    pub path_off: u32,
    /// Length of the path in bytes.
    pub path_len: u16,
    /// Length of the status line (with CRLF) at the start of the header.
    pub status_len: u16,
    /// Offset of the header.
    pub header_off: u32,
    /// Length of the header.
    pub header_len: u32,
    /// Offset of the piece sums (big-endian `u16`s).
    pub sums_off: u32,
    /// [`FLAG_PAGE`], [`FLAG_INLINED`].
    pub flags: u32,
    /// File size in bytes.
    pub size: u64,
    /// First data block.
    pub first_block: u32,
    /// First block of the span (page and inlined objects) holding the file.
    pub span_first: u32,
    /// Blocks in the span.
    pub span_blocks: u32,
    /// Last-Modified, seconds since 1970-01-01 UTC.
    pub last_modified: u64,
    /// SHA-256 of the data.
    pub sha256: [u8; 32],
}

impl Entry {
    /// The entry's [`ENTRY_SIZE`] bytes.
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..4].copy_from_slice(&self.path_off.to_le_bytes());
        b[4..6].copy_from_slice(&self.path_len.to_le_bytes());
        b[6..8].copy_from_slice(&self.status_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.header_off.to_le_bytes());
        b[12..16].copy_from_slice(&self.header_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.sums_off.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
        b[24..32].copy_from_slice(&self.size.to_le_bytes());
        b[32..36].copy_from_slice(&self.first_block.to_le_bytes());
        b[36..40].copy_from_slice(&self.span_first.to_le_bytes());
        b[40..44].copy_from_slice(&self.span_blocks.to_le_bytes());
        b[48..56].copy_from_slice(&self.last_modified.to_le_bytes());
        b[56..88].copy_from_slice(&self.sha256);
        b
    }

    fn decode(b: &[u8]) -> (Entry, bool) {
        let mut sha256 = [0; 32];
        if let Some(s) = b.get(56..88) {
            sha256.copy_from_slice(s);
        }
        let reserved_zero = le32(b, 44) == 0 && b.get(88..ENTRY_SIZE).is_some_and(|r| r.iter().all(|&x| x == 0));
        let e = Entry {
            path_off: le32(b, 0),
            path_len: le16(b, 4),
            status_len: le16(b, 6),
            header_off: le32(b, 8),
            header_len: le32(b, 12),
            sums_off: le32(b, 16),
            flags: le32(b, 20),
            size: le64(b, 24),
            first_block: le32(b, 32),
            span_first: le32(b, 36),
            span_blocks: le32(b, 40),
            last_modified: le64(b, 48),
            sha256,
        };
        (e, reserved_zero)
    }
}

/// A validated image: the superblock and the index, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    superblock: Superblock,
    index: &'a [u8],
}

/// A file as the index describes it. Every field was validated when the
/// image was parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRecord<'a> {
    /// Its URL path, e.g. `/img/logo.png`.
    pub path: &'a str,
    /// The stored response header (see [`crate::http`]).
    pub header: &'a [u8],
    /// Length of the status line at the start of `header`.
    pub status_len: usize,
    /// Size in bytes.
    pub size: u64,
    /// First data block (the data is contiguous, zero-padded to a block).
    pub first_block: u32,
    /// First block of the span holding the file (see the crate documentation, "Layout").
    pub span_first: u32,
    /// Blocks of that span.
    pub span_blocks: u32,
    /// Last-Modified, seconds since 1970-01-01 UTC.
    pub last_modified: u64,
    /// SHA-256 of the data.
    pub sha256: &'a [u8; 32],
    /// The piece sums, big-endian `u16`s, one per [`PIECE`] bytes.
    pub sums: &'a [u8],
    /// [`FLAG_PAGE`], [`FLAG_INLINED`].
    pub flags: u32,
}

/// What [`Image::decode`] checks of a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Everything the format requires ([`Image::parse`]).
    All,
    /// Offsets and lengths against the index, UTF-8 and the status line's
    /// length only: for a record that `parse` checked in full.
    Bounds,
}

impl<'a> Image<'a> {
    /// Validates an image's head: the superblock (block 0) and the index
    /// that follows it (`head` may be longer, e.g. the whole image). Checks
    /// the superblock, the index's SHA-256, then every record, so that
    /// lookups afterwards cannot meet a bad one.
    pub fn parse(head: &'a [u8]) -> Result<Image<'a>, FormatError> {
        let superblock = Superblock::parse(head)?;
        let start = INDEX_FIRST_BLOCK as usize * BLOCK_SIZE;
        let needed = superblock.head_len();
        let index = head.get(start..start + superblock.index_len as usize).ok_or(FormatError::ShortIndex { needed })?;
        if sha256(index) != superblock.index_sha256 {
            return Err(FormatError::IndexChecksum);
        }
        let image = Image { superblock, index };
        let mut previous: Option<&str> = None;
        for i in 0..superblock.file_count {
            let record = image.decode(i, Checks::All).map_err(|fault| FormatError::Record { index: i, fault })?;
            if previous.is_some_and(|p| p.as_bytes() >= record.path.as_bytes()) {
                return Err(FormatError::Record { index: i, fault: RecordFault::NotSorted });
            }
            previous = Some(record.path);
        }
        Ok(image)
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// Number of files.
    pub fn len(&self) -> u32 {
        self.superblock.file_count
    }

    /// Whether the image holds no file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record at position `i` of the index (paths in byte order).
    ///
    /// [`Image::parse`] checked every record of this (immutable) index, so
    /// this decodes without the scans whose answers cannot have changed
    /// (the path's names, the header's lines: [`Checks::Bounds`]); every
    /// offset is still checked against the index. A server asks for a
    /// record twice per request, so the scans were a measurable share of
    /// its work.
    pub fn record(&self, i: u32) -> Option<FileRecord<'a>> {
        if i >= self.len() {
            return None;
        }
        self.decode(i, Checks::Bounds).ok()
    }

    fn decode(&self, i: u32, checks: Checks) -> Result<FileRecord<'a>, RecordFault> {
        let at = i as usize * ENTRY_SIZE;
        let raw = self.index.get(at..at + ENTRY_SIZE).ok_or(RecordFault::Reserved)?;
        let (e, reserved_zero) = Entry::decode(raw);
        let flags_ok = e.flags & !(FLAG_PAGE | FLAG_INLINED) == 0 && e.flags != FLAG_PAGE | FLAG_INLINED;
        if !reserved_zero || !flags_ok {
            return Err(RecordFault::Reserved);
        }
        // Variable parts lie after the entry table.
        let table_end = self.len() as u64 * ENTRY_SIZE as u64;
        let area = |off: u32, len: u64| -> Option<&'a [u8]> {
            let off = u64::from(off);
            let end = off.checked_add(len)?;
            if off < table_end || end > self.index.len() as u64 {
                return None;
            }
            self.index.get(off as usize..end as usize)
        };
        let path = area(e.path_off, e.path_len.into()).ok_or(RecordFault::PathOutOfRange)?;
        let path = match checks {
            Checks::All => check_path(path).map_err(RecordFault::BadPath)?,
            Checks::Bounds => core::str::from_utf8(path).map_err(|_| RecordFault::BadPath(PathFault::NotUtf8))?,
        };
        let header = area(e.header_off, e.header_len.into()).ok_or(RecordFault::HeaderOutOfRange)?;
        if usize::from(e.status_len) != STATUS_LINE.len() || (checks == Checks::All && !check_header(header, e.size)) {
            return Err(RecordFault::BadHeader);
        }
        let sums_len = piece_count(e.size).checked_mul(2).ok_or(RecordFault::SumsOutOfRange)?;
        let sums = area(e.sums_off, sums_len).ok_or(RecordFault::SumsOutOfRange)?;
        let data_first = u64::from(self.superblock.data_first_block);
        let block_count = u64::from(self.superblock.block_count);
        let first = u64::from(e.first_block);
        let data_end = first + blocks_for(e.size);
        if first < data_first || data_end > block_count {
            return Err(RecordFault::DataOutOfRange);
        }
        let span_first = u64::from(e.span_first);
        let span_end = span_first + u64::from(e.span_blocks);
        if span_first < data_first || span_end > block_count || first < span_first || data_end > span_end {
            return Err(RecordFault::BadSpan);
        }
        let sha256 = raw.get(56..88).and_then(|s| s.try_into().ok()).ok_or(RecordFault::Reserved)?;
        Ok(FileRecord {
            path,
            header,
            status_len: usize::from(e.status_len),
            size: e.size,
            first_block: e.first_block,
            span_first: e.span_first,
            span_blocks: e.span_blocks,
            last_modified: e.last_modified,
            sha256,
            sums,
            flags: e.flags,
        })
    }

    /// The path of record `i`, compared during the search: read straight
    /// from the entry (validated by `parse`), without decoding the rest.
    fn path_at(&self, i: u32) -> &'a [u8] {
        let at = i as usize * ENTRY_SIZE;
        let off = le32(self.index, at) as usize;
        let len = usize::from(le16(self.index, at + 4));
        self.index.get(off..off + len).unwrap_or(&[])
    }

    /// Index of the first record whose path is not less than `key`
    /// (binary search: `O(log n)` comparisons, no allocation).
    fn lower_bound(&self, key: &[u8]) -> u32 {
        let (mut lo, mut hi) = (0u32, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.path_at(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The file stored at exactly `path` (already percent-decoded and
    /// free of dot segments).
    pub fn lookup(&self, path: &[u8]) -> Option<FileRecord<'a>> {
        self.position(path).and_then(|i| self.record(i))
    }

    /// The position in the index of the file stored at exactly `path`: a
    /// number in `0..len()` that names the file for as long as the image
    /// is in use (a cache keys per-file state by it).
    pub fn position(&self, path: &[u8]) -> Option<u32> {
        let i = self.lower_bound(path);
        (i < self.len() && self.path_at(i) == path).then_some(i)
    }

    /// Whether `path` (with or without a trailing `/`) is a directory:
    /// some stored path starts with it followed by `/`. Directories are
    /// not stored; this is how the server tells `/docs` (redirect to
    /// `/docs/`) from a missing path.
    pub fn is_directory(&self, path: &[u8]) -> bool {
        if path == b"/" {
            return !self.is_empty();
        }
        if !path.starts_with(b"/") {
            return false;
        }
        let path = path.strip_suffix(b"/").unwrap_or(path);
        // Paths under `path/` sort right after `path/`, so the first path
        // not less than `path/` tells.
        let i = self.lower_bound_dir(path);
        self.record(i).is_some_and(|r| {
            let p = r.path.as_bytes();
            p.len() > path.len() && p.starts_with(path) && p[path.len()] == b'/'
        })
    }

    fn lower_bound_dir(&self, dir: &[u8]) -> u32 {
        // Compare against `dir` + `/` without building it.
        let (mut lo, mut hi) = (0u32, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if less_than_dir(self.path_at(mid), dir) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Every file, in path order.
    pub fn files(&self) -> impl Iterator<Item = FileRecord<'a>> + '_ {
        (0..self.len()).filter_map(|i| self.record(i))
    }

    /// Every HTML page with its span, in path order.
    pub fn pages(&self) -> impl Iterator<Item = FileRecord<'a>> + '_ {
        self.files().filter(FileRecord::is_page)
    }
}

/// Whether `path < dir + "/"` in byte order.
fn less_than_dir(path: &[u8], dir: &[u8]) -> bool {
    let n = path.len().min(dir.len());
    match path[..n].cmp(&dir[..n]) {
        core::cmp::Ordering::Less => true,
        core::cmp::Ordering::Greater => false,
        core::cmp::Ordering::Equal => {
            if path.len() <= dir.len() {
                // A proper prefix of `dir/` (or `dir` itself) is smaller.
                true
            } else {
                path[dir.len()] < b'/'
            }
        }
    }
}

impl<'a> FileRecord<'a> {
    /// Blocks the data takes.
    pub fn block_count(&self) -> u64 {
        blocks_for(self.size)
    }

    /// Byte offset of the data in the image.
    pub fn data_offset(&self) -> u64 {
        u64::from(self.first_block) * BLOCK_SIZE as u64
    }

    /// The header fields without the status line.
    pub fn fields(&self) -> &'a [u8] {
        self.header.get(self.status_len..).unwrap_or(&[])
    }

    /// The `Content-Type` stored in the header.
    pub fn content_type(&self) -> &'static str {
        http::content_type(self.path)
    }

    /// The strong entity tag, as in the header.
    pub fn etag(&self) -> [u8; http::ETAG_LEN] {
        http::etag(self.sha256)
    }

    /// Whether this is an HTML page placed in front of its objects.
    pub fn is_page(&self) -> bool {
        self.flags & FLAG_PAGE != 0
    }

    /// Whether this object was placed after a page that references it.
    pub fn is_inlined(&self) -> bool {
        self.flags & FLAG_INLINED != 0
    }

    /// The stored sum of piece `i` (bytes `i * PIECE ..`).
    pub fn piece_sum(&self, i: u64) -> Option<u16> {
        let at = usize::try_from(i).ok()?.checked_mul(2)?;
        let s = self.sums.get(at..at + 2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }

    /// The sum of `len` bytes at `offset`; see [`sums::segment_sum`].
    pub fn segment_sum<'d>(
        &self,
        offset: u64,
        len: u64,
        read: impl FnMut(u64, usize) -> Option<&'d [u8]>,
    ) -> Result<u16, SumError> {
        sums::segment_sum(self.size, self.sums, offset, len, read)
    }

    /// Whether `data` is this file's content: its length, SHA-256 and
    /// piece sums match the record.
    pub fn verify(&self, data: &[u8]) -> bool {
        let mut v = FileVerifier::new(self);
        v.update(data);
        v.finish()
    }
}

/// Checks a file's data as it arrives in chunks of any size (e.g. block by
/// block as a cache loads it): length, SHA-256 and every piece sum.
pub struct FileVerifier<'a> {
    record: FileRecord<'a>,
    hash: Sha256,
    seen: u64,
    piece: Checksum,
    sums_ok: bool,
}

impl<'a> FileVerifier<'a> {
    /// A verifier for `record`'s data.
    pub fn new(record: &FileRecord<'a>) -> Self {
        FileVerifier { record: *record, hash: Sha256::new(), seen: 0, piece: Checksum::new(), sums_ok: true }
    }

    /// The next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        self.hash.update(data);
        while !data.is_empty() {
            let in_piece = (self.seen % PIECE as u64) as usize;
            let take = data.len().min(PIECE - in_piece);
            let alone = sums::sum_of(&data[..take]);
            self.piece.add_word(if in_piece.is_multiple_of(2) { alone } else { alone.swap_bytes() });
            self.seen += take as u64;
            data = &data[take..];
            if in_piece + take == PIECE {
                self.close_piece();
            }
        }
    }

    fn close_piece(&mut self) {
        let index = (self.seen - 1) / PIECE as u64;
        if self.record.piece_sum(index) != Some(self.piece.sum()) {
            self.sums_ok = false;
        }
        self.piece = Checksum::new();
    }

    /// Whether everything seen is exactly the file.
    pub fn finish(mut self) -> bool {
        if !self.seen.is_multiple_of(PIECE as u64) {
            self.close_piece();
        }
        let hash: [u8; 32] = self.hash.finalize().into();
        self.sums_ok && self.seen == self.record.size && &hash == self.record.sha256
    }
}
