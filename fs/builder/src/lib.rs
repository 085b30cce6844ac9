//! Builds a Cheetah site image (`site-format`) from a document root, the
//! way a user points nginx at a directory.
//!
//! # What is stored
//!
//! - Every regular file under the root, at the URL path of its place in the
//!   tree: `ROOT/img/a.png` is `/img/a.png`. Directories are not stored; a
//!   server finds them from the paths under them (`Image::is_directory`)
//!   and serves `DIR/index.html` for `DIR/`.
//! - Hidden names (starting with `.`) are skipped, files and directories
//!   alike, like `.git` or `.htaccess`, with one exception: a
//!   `.well-known` directory at the root (RFC 8615) is stored. Skipped
//!   paths are listed in the [`Report`].
//! - A symbolic link to a regular file inside the root is stored as that
//!   file's content under the link's own path. A symbolic link leading
//!   outside the root, to a directory (loops, double listings) or nowhere
//!   is an error, as is any special file (FIFO, socket, device).
//! - Names that cannot be served are errors, with the path and the reason:
//!   not UTF-8, control characters, `?` or `#`, `\`, or a URL path longer
//!   than 1024 bytes (`fs_format::path`).
//! - Last-Modified is each file's modification time (whole seconds), or
//!   [`Options::last_modified`] for all files (e.g. `SOURCE_DATE_EPOCH`).
//!   The image is a function of the files' paths, contents and these times:
//!   the same tree gives the same bytes.
//!
//! # Layout
//!
//! As the format's documentation says: each HTML page, followed by the local objects it inlines (`src=`, `<link href=>`; see
//! [`html`]) that are not pages, not already placed and at most
//! [`INLINE_LIMIT`] bytes (a large video a page embeds would make the
//! span, which a cache keeps together, too large); then every other file
//! in path order. Pages come in order of depth, then path: `/index.html`
//! (the landing page) first, then the pages one directory down, and so on.
//!
//! # Failure
//!
//! The image is written to a temporary file beside the output and renamed
//! over it only when complete, so an error never leaves a half-written
//! image. A file that changes while the image is built (its content no
//! longer matches the hash taken in the first pass) is an error too.

pub mod html;

use fs_format::build::{plan, PlanError, Planned};
use fs_format::http::{content_type, is_html};
use fs_format::path::{check_name, PathFault, MAX_PATH_LEN};
use fs_format::sums::{sum_of, PIECE};
use fs_format::{blocks_for, BLOCK_SIZE, FLAG_INLINED, FLAG_PAGE, MAX_BLOCKS};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Objects larger than this are not placed after the page that
/// references them but with the other files.
pub const INLINE_LIMIT: u64 = 1 << 20;

/// How to build.
#[derive(Clone, Debug)]
pub struct Options {
    /// The most blocks the image may have ([`MAX_BLOCKS`] by default; the
    /// format allows no more).
    pub max_blocks: u64,
    /// Last-Modified of every file, in seconds since 1970-01-01 UTC,
    /// instead of the files' modification times.
    pub last_modified: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_blocks: MAX_BLOCKS, last_modified: None }
    }
}

/// Why no image was written.
#[derive(Debug)]
pub enum Error {
    /// The document root is missing or not a directory.
    Root { path: PathBuf, reason: String },
    /// A file or directory could not be read.
    Unreadable { path: PathBuf, source: io::Error },
    /// A name that cannot be served.
    BadName { path: PathBuf, fault: PathFault },
    /// Something that is not stored by policy (see the crate documentation).
    NotServable { path: PathBuf, reason: &'static str },
    /// A file changed while the image was being built.
    Changed { path: PathBuf },
    /// The site does not fit the format or the limit.
    Format(PlanError),
    /// The image could not be written.
    Output { path: PathBuf, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Root { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Unreadable { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            Error::BadName { path, fault } => write!(f, "{}: cannot be served: {fault}", path.display()),
            Error::NotServable { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Changed { path } => write!(f, "{}: changed while the image was being built", path.display()),
            Error::Format(e) => write!(f, "{e}"),
            Error::Output { path, source } => write!(f, "{}: cannot write the image: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// Where a file went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// An HTML page, followed by its inlined objects; its span's blocks.
    Page { span_blocks: u32 },
    /// Placed after this page, which references it.
    InlinedIn(String),
    /// With the other files.
    Alone,
}

/// One stored file.
#[derive(Clone, Debug)]
pub struct Stored {
    pub path: String,
    pub size: u64,
    pub content_type: &'static str,
    pub first_block: u32,
    pub blocks: u64,
    pub placement: Placement,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Report {
    /// The image.
    pub image: PathBuf,
    /// The files, in the order of their data in the image.
    pub files: Vec<Stored>,
    /// Hidden paths (relative to the root) that were skipped.
    pub skipped: Vec<String>,
    /// Blocks in the image.
    pub block_count: u32,
    /// Bytes of the index.
    pub index_len: u32,
    /// First data block.
    pub data_first_block: u32,
}

/// A file found by the walk.
struct Found {
    fs_path: PathBuf,
    url: String,
    mtime: u64,
}

/// Builds the image of the tree at `root` into `out`.
pub fn build(root: &Path, out: &Path, options: &Options) -> Result<Report, Error> {
    let canonical_root =
        fs::canonicalize(root).map_err(|e| Error::Root { path: root.into(), reason: e.to_string() })?;
    if !canonical_root.is_dir() {
        return Err(Error::Root { path: root.into(), reason: "not a directory".into() });
    }
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    walk(root, "", &canonical_root, &mut found, &mut skipped)?;
    found.sort_by(|a, b| a.url.cmp(&b.url));

    // First pass: hash and checksum every file; keep the pages' bytes.
    let mut planned = Vec::with_capacity(found.len());
    let mut pages = HashMap::new();
    for (i, f) in found.iter().enumerate() {
        let keep = is_html(&f.url);
        let (summary, bytes) = summarize(&f.fs_path, keep)?;
        if keep {
            pages.insert(i, bytes);
        }
        planned.push(Planned {
            path: f.url.clone(),
            size: summary.size,
            last_modified: options.last_modified.unwrap_or(f.mtime),
            sha256: summary.sha256,
            sums: summary.sums,
            flags: 0,
            span_leader: 0,
        });
    }

    // Placement order: pages with their objects, then the rest.
    let by_path: HashMap<&str, usize> = found.iter().enumerate().map(|(i, f)| (f.url.as_str(), i)).collect();
    let mut placed = vec![false; found.len()];
    let mut order: Vec<(usize, Placement)> = Vec::with_capacity(found.len());
    let mut ordered = Vec::with_capacity(found.len());
    let mut page_order: Vec<usize> = pages.keys().copied().collect();
    page_order.sort_by_key(|&i| (found[i].url.matches('/').count(), found[i].url.as_str()));
    for i in page_order {
        let f = &found[i];
        let bytes = &pages[&i];
        let leader = ordered.len();
        placed[i] = true;
        let mut p = planned[i].clone();
        p.flags = FLAG_PAGE;
        p.span_leader = leader;
        ordered.push(p);
        order.push((i, Placement::Page { span_blocks: 0 }));
        for reference in html::references(bytes) {
            let Some(target) = html::resolve(&f.url, &reference) else { continue };
            let Some(&j) = by_path.get(target.as_str()) else { continue };
            if placed[j] || is_html(&found[j].url) || planned[j].size > INLINE_LIMIT {
                continue;
            }
            placed[j] = true;
            let mut p = planned[j].clone();
            p.flags = FLAG_INLINED;
            p.span_leader = leader;
            ordered.push(p);
            order.push((j, Placement::InlinedIn(f.url.clone())));
        }
    }
    for i in 0..found.len() {
        if !placed[i] {
            let mut p = planned[i].clone();
            p.span_leader = ordered.len();
            ordered.push(p);
            order.push((i, Placement::Alone));
        }
    }
    let plan = plan(&ordered, options.max_blocks).map_err(Error::Format)?;

    // Second pass: write to a temporary file, then rename.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| Error::Output { path: dir.into(), source })?;
    }
    let temp = Temp::new(out);
    let output = |source| Error::Output { path: temp.path.clone(), source };
    let file = File::create(&temp.path).map_err(output)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&plan.head).map_err(output)?;
    let mut buf = vec![0u8; 1 << 16];
    for ((i, _), p) in order.iter().zip(&ordered) {
        let path = &found[*i].fs_path;
        let mut src = File::open(path).map_err(|source| Error::Unreadable { path: path.clone(), source })?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(Error::Unreadable { path: path.clone(), source }),
            };
            size += n as u64;
            if size > p.size {
                return Err(Error::Changed { path: path.clone() });
            }
            hash.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(output)?;
        }
        if size != p.size || <[u8; 32]>::from(hash.finalize()) != p.sha256 {
            return Err(Error::Changed { path: path.clone() });
        }
        let pad = (blocks_for(size) * BLOCK_SIZE as u64 - size) as usize;
        w.write_all(&vec![0; pad]).map_err(output)?;
    }
    let file = w.into_inner().map_err(|e| output(e.into_error()))?;
    file.sync_all().map_err(output)?;
    drop(file);
    temp.commit(out)?;

    let mut files = Vec::with_capacity(order.len());
    for (k, ((i, placement), first)) in order.iter().zip(&plan.first_blocks).enumerate() {
        let placement = match placement {
            Placement::Page { .. } => {
                let end = (k + 1..order.len())
                    .take_while(|&m| matches!(order[m].1, Placement::InlinedIn(_)))
                    .last()
                    .map_or(first + blocks_for(ordered[k].size) as u32, |m| {
                        plan.first_blocks[m] + blocks_for(ordered[m].size) as u32
                    });
                Placement::Page { span_blocks: end - first }
            }
            other => other.clone(),
        };
        files.push(Stored {
            path: found[*i].url.clone(),
            size: ordered[k].size,
            content_type: content_type(&found[*i].url),
            first_block: *first,
            blocks: blocks_for(ordered[k].size),
            placement,
        });
    }
    Ok(Report {
        image: out.into(),
        files,
        skipped,
        block_count: plan.block_count,
        index_len: plan.superblock.index_len,
        data_first_block: plan.superblock.data_first_block,
    })
}

/// A temporary file beside the output, removed unless committed.
struct Temp {
    path: PathBuf,
    committed: bool,
}

impl Temp {
    fn new(out: &Path) -> Temp {
        let name = out.file_name().map_or("site.img".into(), |n| n.to_string_lossy().into_owned());
        let path = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        Temp { path, committed: false }
    }

    fn commit(mut self, out: &Path) -> Result<(), Error> {
        fs::rename(&self.path, out).map_err(|source| Error::Output { path: out.into(), source })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn walk(dir: &Path, url: &str, root: &Path, found: &mut Vec<Found>, skipped: &mut Vec<String>) -> Result<(), Error> {
    let unreadable = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Unreadable { path, source }
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(unreadable(dir))? {
        entries.push(entry.map_err(unreadable(dir))?);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::BadName { path, fault: PathFault::NotUtf8 });
        };
        if name.starts_with('.') && !(url.is_empty() && name == ".well-known") {
            skipped.push(format!("{url}/{name}"));
            continue;
        }
        check_name(name).map_err(|fault| Error::BadName { path: path.clone(), fault })?;
        let child = format!("{url}/{name}");
        if child.len() > MAX_PATH_LEN {
            return Err(Error::BadName { path, fault: PathFault::TooLong });
        }
        let kind = entry.file_type().map_err(unreadable(&path))?;
        let meta = if kind.is_symlink() {
            let target = fs::canonicalize(&path).map_err(unreadable(&path))?;
            if !target.starts_with(root) {
                return Err(Error::NotServable { path, reason: "symbolic link leading outside the document root" });
            }
            let meta = fs::metadata(&target).map_err(unreadable(&path))?;
            if meta.is_dir() {
                return Err(Error::NotServable { path, reason: "symbolic link to a directory (not followed)" });
            }
            meta
        } else if kind.is_dir() {
            walk(&path, &child, root, found, skipped)?;
            continue;
        } else {
            entry.metadata().map_err(unreadable(&path))?
        };
        if !meta.is_file() {
            return Err(Error::NotServable { path, reason: "not a regular file (FIFO, socket or device)" });
        }
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        found.push(Found { fs_path: path, url: child, mtime });
    }
    Ok(())
}

struct Summary {
    size: u64,
    sha256: [u8; 32],
    sums: Vec<u8>,
}

/// Size, SHA-256 and piece sums of a file, read once; its bytes too if
/// `keep`.
fn summarize(path: &Path, keep: bool) -> Result<(Summary, Vec<u8>), Error> {
    let err = |source| Error::Unreadable { path: path.into(), source };
    let mut file = File::open(path).map_err(err)?;
    let mut hash = Sha256::new();
    let mut sums = Vec::new();
    let mut kept = Vec::new();
    let mut size = 0u64;
    // Whole pieces per read, so each piece is summed in one go.
    let mut buf = vec![0u8; PIECE * 45];
    loop {
        let n = fill(&mut file, &mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        for piece in buf[..n].chunks(PIECE) {
            sums.extend_from_slice(&sum_of(piece).to_be_bytes());
        }
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
        size += n as u64;
        if n < buf.len() {
            break;
        }
    }
    Ok((Summary { size, sha256: hash.finalize().into(), sums }, kept))
}

/// Reads until `buf` is full or the file ends.
fn fill(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
