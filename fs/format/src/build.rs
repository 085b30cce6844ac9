//! Assembling an image's head (superblock and index) from planned files:
//! the writer's half of the format, used by the host-side builder
//! (`alloc` feature).

use crate::http::{content_type, write_header, STATUS_LINE};
use crate::image::{
    blocks_for, Entry, Superblock, BLOCK_SIZE, ENTRY_SIZE, INDEX_FIRST_BLOCK, MAX_BLOCKS, MAX_INDEX_LEN,
};
use crate::path::{check_path, PathFault};
use crate::sums::piece_count;
use alloc::string::String;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// A file to store, with what the builder computed from its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// URL path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last-Modified, seconds since 1970-01-01 UTC.
    pub last_modified: u64,
    /// SHA-256 of the data.
    pub sha256: [u8; 32],
    /// Piece sums, big-endian `u16`s ([`piece_count`] of them).
    pub sums: Vec<u8>,
    /// [`crate::FLAG_PAGE`], [`crate::FLAG_INLINED`].
    pub flags: u32,
    /// Position (in the placement order) of the first file of this file's
    /// span: itself for a page or a file on its own, the page for an
    /// inlined object. Files of one span must be consecutive.
    pub span_leader: usize,
}

/// The assembled head and where each file's data goes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Block 0 and the index, padded to whole blocks: the image's first
    /// `data_first_block` blocks.
    pub head: Vec<u8>,
    /// First data block of each file, in placement order.
    pub first_blocks: Vec<u32>,
    /// Blocks in the whole image.
    pub block_count: u32,
    /// The superblock written.
    pub superblock: Superblock,
}

/// Why a set of files cannot be made into an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// A path breaks the rules of [`crate::path`].
    BadPath {
        /// The path.
        path: String,
        /// Why.
        fault: PathFault,
    },
    /// Two files have the same path.
    Duplicate(String),
    /// The image would need more blocks than allowed.
    TooManyBlocks {
        /// Blocks needed.
        needed: u64,
        /// Blocks allowed.
        max: u64,
    },
    /// The index would be longer than the format allows.
    IndexTooLarge {
        /// Bytes needed.
        needed: u64,
    },
    /// A file's sums do not match its size, or its span leader is not
    /// before it in one consecutive run.
    Inconsistent(String),
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlanError::BadPath { path, fault } => write!(f, "{path}: {fault}"),
            PlanError::Duplicate(p) => write!(f, "{p}: two files map to this path"),
            PlanError::TooManyBlocks { needed, max } => write!(
                f,
                "the site needs {needed} blocks of 4096 bytes ({} MiB); at most {max} are allowed",
                (needed * BLOCK_SIZE as u64) >> 20
            ),
            PlanError::IndexTooLarge { needed } => {
                write!(f, "the index would take {needed} bytes; the format allows {MAX_INDEX_LEN}")
            }
            PlanError::Inconsistent(p) => write!(f, "{p}: inconsistent plan (builder bug)"),
        }
    }
}

/// Lays out `files` (in placement order) from the first block after the
/// index, each at a block boundary, and assembles the superblock and index
/// (entries sorted by path). `max_blocks` (at most [`MAX_BLOCKS`]) bounds
/// the image.
pub fn plan(files: &[Planned], max_blocks: u64) -> Result<Plan, PlanError> {
    let max_blocks = max_blocks.min(MAX_BLOCKS);
    for f in files {
        check_path(f.path.as_bytes()).map_err(|fault| PlanError::BadPath { path: f.path.clone(), fault })?;
        if f.sums.len() as u64 != piece_count(f.size) * 2 {
            return Err(PlanError::Inconsistent(f.path.clone()));
        }
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| files[a].path.cmp(&files[b].path));
    for w in order.windows(2) {
        if files[w[0]].path == files[w[1]].path {
            return Err(PlanError::Duplicate(files[w[0]].path.clone()));
        }
    }

    // Index: entry table, then paths and headers, then sums (2-aligned).
    let mut headers = Vec::with_capacity(files.len());
    let mut buf = [0u8; 512];
    for f in files {
        let len = write_header(&mut buf, content_type(&f.path), f.size, f.last_modified, &f.sha256)
            .ok_or_else(|| PlanError::Inconsistent(f.path.clone()))?;
        headers.push(buf[..len].to_vec());
    }
    let table = files.len() as u64 * ENTRY_SIZE as u64;
    let strings: u64 = files.iter().zip(&headers).map(|(f, h)| (f.path.len() + h.len()) as u64).sum();
    let sums_start = (table + strings).next_multiple_of(2);
    let index_len = sums_start + files.iter().map(|f| f.sums.len() as u64).sum::<u64>();
    if index_len > MAX_INDEX_LEN {
        return Err(PlanError::IndexTooLarge { needed: index_len });
    }
    let data_first = u64::from(INDEX_FIRST_BLOCK) + blocks_for(index_len);
    let mut first_blocks = Vec::with_capacity(files.len());
    let mut next = data_first;
    for f in files {
        first_blocks.push(next);
        next += blocks_for(f.size);
    }
    if next > max_blocks {
        return Err(PlanError::TooManyBlocks { needed: next, max: max_blocks });
    }
    // Spans: from the leader's first block to the end of the last file
    // led by it.
    let mut span_end = first_blocks.clone();
    for (i, f) in files.iter().enumerate() {
        let leader = f.span_leader;
        if leader > i || files[leader].span_leader != leader || (leader < i && files[i - 1].span_leader != leader) {
            return Err(PlanError::Inconsistent(f.path.clone()));
        }
        span_end[leader] = first_blocks[i] + blocks_for(f.size);
    }

    let mut index = alloc::vec![0u8; index_len as usize];
    let mut string_at = table as usize;
    let mut sums_at = sums_start as usize;
    for (slot, &i) in order.iter().enumerate() {
        let f = &files[i];
        let header = &headers[i];
        let path_off = string_at;
        index[string_at..string_at + f.path.len()].copy_from_slice(f.path.as_bytes());
        string_at += f.path.len();
        let header_off = string_at;
        index[string_at..string_at + header.len()].copy_from_slice(header);
        string_at += header.len();
        let sums_off = sums_at;
        index[sums_at..sums_at + f.sums.len()].copy_from_slice(&f.sums);
        sums_at += f.sums.len();
        let leader = f.span_leader;
        let entry = Entry {
            path_off: path_off as u32,
            path_len: f.path.len() as u16,
            status_len: STATUS_LINE.len() as u16,
            header_off: header_off as u32,
            header_len: header.len() as u32,
            sums_off: sums_off as u32,
            flags: f.flags,
            size: f.size,
            first_block: first_blocks[i] as u32,
            span_first: first_blocks[leader] as u32,
            span_blocks: (span_end[leader] - first_blocks[leader]) as u32,
            last_modified: f.last_modified,
            sha256: f.sha256,
        };
        index[slot * ENTRY_SIZE..(slot + 1) * ENTRY_SIZE].copy_from_slice(&entry.encode());
    }
    let superblock = Superblock {
        block_count: next as u32,
        index_len: index_len as u32,
        file_count: files.len() as u32,
        data_first_block: data_first as u32,
        index_sha256: Sha256::digest(&index).into(),
    };
    let mut head = Vec::with_capacity((data_first as usize) * BLOCK_SIZE);
    head.extend_from_slice(&superblock.encode());
    head.extend_from_slice(&index);
    head.resize(data_first as usize * BLOCK_SIZE, 0);
    Ok(Plan {
        head,
        first_blocks: first_blocks.iter().map(|&b| b as u32).collect(),
        block_count: next as u32,
        superblock,
    })
}
