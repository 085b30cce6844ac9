//! Directory listings sent on the data connection: LIST, NLST (RFC 959
//! §4.1.3) and MLSD (RFC 3659 §7), written in pieces into the caller's
//! buffers by a resumable [`ListCursor`].
//!
//! # Directories
//!
//! The image stores files only, sorted by path; a directory is implied by
//! the paths under it (a file `/docs/a/b.txt` implies `/docs` and
//! `/docs/a`). The entries of directory `D` are the records whose paths
//! start with `D/`: one contiguous range of the index, found by binary
//! search (`D/` ≤ path < `D0`, `0` being the byte after `/`). A record
//! `D/name` is a file entry; records `D/name/...` make one directory entry
//! `name`, emitted at the first of them, after which the cursor jumps past
//! the rest of them by another binary search, so a listing costs
//! `O(entries · log n)`, not `O(files under D)`. Entries come in index
//! order, which is byte order of the paths (`a.txt` before the directory
//! `a` when both exist, `.` sorting before `/`).
//!
//! # Formats
//!
//! - **LIST**: RFC 959 leaves the format to the server; the one every
//!   client parses (curl, lftp, Python's ftplib, browsers) is Unix `ls -l`:
//!   `-r--r--r--    1 ftp      ftp      <size> <date> <name>` for a file,
//!   `dr-xr-xr-x` and size 0 for a directory; `<size>` right-aligned in 12
//!   columns, `<date>` as [`crate::time::ls_date`] at the wall-clock time
//!   the cursor first fills (kept for the whole listing, so every piece
//!   renders the same). A directory has no stored time: its date is the
//!   Last-Modified of the first file under it in path order.
//! - **NLST**: the names alone (RFC 959 §4.1.3: "a list of file names"),
//!   directories included, as `ls` shows them.
//! - **MLSD / MLST**: facts then a space and the name (RFC 3659 §7.2,
//!   §7.5): `type=file;size=<n>;modify=<YYYYMMDDHHMMSS>; name` and
//!   `type=dir; name` (no `size` or `modify`: a directory has neither
//!   stored; facts are optional per entry, §7.5). Only the facts selected
//!   with `OPTS MLST` ([`Facts`]) are written; all three by default.
//!   `cdir`/`pdir` entries are not sent (optional, §7.5.1).
//!
//! Every line ends in CRLF (RFC 959 §4.1.3 for LIST/NLST, RFC 3659 §7.2
//! for MLSD). Names are the stored UTF-8 (RFC 2640, announced as `UTF8`).

use crate::path::SitePath;
use crate::time::{ls_date, mdtm};
use core::fmt::{self, Write};
use fs_format::path::MAX_PATH_LEN;
use fs_format::{FileRecord, Image};

/// The longest entry line: a name ([`MAX_PATH_LEN`] at most) and 128
/// bytes for the rest of a LIST or MLSD line.
pub const MAX_ENTRY: usize = MAX_PATH_LEN + 128;

/// Which listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// LIST: `ls -l` lines.
    List,
    /// NLST: names.
    Nlst,
    /// MLSD: RFC 3659 facts.
    Mlsd,
}

/// The MLSx facts written (RFC 3659 §7.9, `OPTS MLST`): a set of
/// [`Facts::TYPE`], [`Facts::SIZE`], [`Facts::MODIFY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts(pub u8);

impl Facts {
    /// `type`.
    pub const TYPE: u8 = 1;
    /// `size`.
    pub const SIZE: u8 = 2;
    /// `modify`.
    pub const MODIFY: u8 = 4;
    /// All three, the default.
    pub const ALL: Facts = Facts(Self::TYPE | Self::SIZE | Self::MODIFY);

    /// The facts named in an `OPTS MLST` argument (`type;size;`): known
    /// names, case-insensitive (RFC 3659 §7.9); unknown names are ignored.
    pub fn parse(list: &[u8]) -> Facts {
        let mut bits = 0;
        for name in list.split(|&b| b == b';') {
            if name.eq_ignore_ascii_case(b"type") {
                bits |= Self::TYPE;
            } else if name.eq_ignore_ascii_case(b"size") {
                bits |= Self::SIZE;
            } else if name.eq_ignore_ascii_case(b"modify") {
                bits |= Self::MODIFY;
            }
        }
        Facts(bits)
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The facts as FEAT and `OPTS MLST` show them: each name followed by
    /// `*` if selected, then `;` (RFC 3659 §7.8).
    pub fn feat(self, f: &mut impl Write) -> fmt::Result {
        for (bit, name) in [(Self::TYPE, "type"), (Self::SIZE, "size"), (Self::MODIFY, "modify")] {
            f.write_str(name)?;
            if self.has(bit) {
                f.write_str("*")?;
            }
            f.write_str(";")?;
        }
        Ok(())
    }

    /// The selected facts' names, each followed by `;` (the `OPTS MLST`
    /// reply, RFC 3659 §7.9).
    pub fn selected(self, f: &mut impl Write) -> fmt::Result {
        for (bit, name) in [(Self::TYPE, "type"), (Self::SIZE, "size"), (Self::MODIFY, "modify")] {
            if self.has(bit) {
                write!(f, "{name};")?;
            }
        }
        Ok(())
    }
}

/// What a listed name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A file of the given size and Last-Modified (Unix seconds).
    File { size: u64, modified: u64 },
    /// A directory; `modified` is the first file's under it (LIST only).
    Dir { modified: u64 },
}

/// Writes MLSx facts for `kind`, then the space before the pathname
/// (RFC 3659 §7.2 `facts SP pathname`).
pub fn write_facts(f: &mut impl Write, kind: Kind, facts: Facts) -> fmt::Result {
    match kind {
        Kind::File { size, modified } => {
            if facts.has(Facts::TYPE) {
                f.write_str("type=file;")?;
            }
            if facts.has(Facts::SIZE) {
                write!(f, "size={size};")?;
            }
            if facts.has(Facts::MODIFY) {
                let m = mdtm(modified);
                write!(f, "modify={};", core::str::from_utf8(&m).unwrap_or("19700101000000"))?;
            }
        }
        Kind::Dir { modified } => {
            if facts.has(Facts::TYPE) {
                f.write_str("type=dir;")?;
            }
            // The date LIST shows (the image has no directory dates):
            // without it, clients such as lftp's mirror ask MDTM of each
            // directory, which is 550.
            if facts.has(Facts::MODIFY) && modified != 0 {
                let m = mdtm(modified);
                write!(f, "modify={};", core::str::from_utf8(&m).unwrap_or("19700101000000"))?;
            }
        }
    }
    f.write_str(" ")
}

/// Writes one entry line of `format` (with CRLF) for `name`.
fn write_entry(f: &mut impl Write, format: Format, facts: Facts, kind: Kind, name: &str, now: u64) -> fmt::Result {
    match format {
        Format::Nlst => {}
        Format::Mlsd => write_facts(f, kind, facts)?,
        Format::List => {
            let (mode, links, size, modified) = match kind {
                Kind::File { size, modified } => ("-r--r--r--", 1, size, modified),
                Kind::Dir { modified } => ("dr-xr-xr-x", 2, 0, modified),
            };
            let date = ls_date(modified, now);
            let date = core::str::from_utf8(&date).unwrap_or("Jan  1  1970");
            write!(f, "{mode} {links:>4} ftp      ftp      {size:>12} {date} ")?;
        }
    }
    f.write_str(name)?;
    f.write_str("\r\n")
}

/// Index of the first record whose path is not less than `prefix` followed
/// by the byte `last`.
fn lower_bound(image: &Image<'_>, prefix: &[u8], last: u8) -> u32 {
    let less = |path: &[u8]| {
        let n = path.len().min(prefix.len());
        match path[..n].cmp(&prefix[..n]) {
            core::cmp::Ordering::Less => true,
            core::cmp::Ordering::Greater => false,
            core::cmp::Ordering::Equal if path.len() <= prefix.len() => true,
            core::cmp::Ordering::Equal => path[prefix.len()] < last,
        }
    };
    let (mut lo, mut hi) = (0u32, image.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if image.record(mid).is_some_and(|r| less(r.path.as_bytes())) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The index range of the records under directory `dir` (paths starting
/// with `dir/`); empty if there are none.
pub fn children(image: &Image<'_>, dir: &SitePath) -> core::ops::Range<u32> {
    if dir.is_root() {
        return 0..image.len();
    }
    let d = dir.as_bytes();
    lower_bound(image, d, b'/')..lower_bound(image, d, b'/' + 1)
}

/// A writer into a byte slice that fails when it is full.
pub(crate) struct SliceWriter<'b> {
    pub buf: &'b mut [u8],
    pub len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A listing in progress: which record comes next, and how much of the
/// current entry's line was already given out. Small and `Copy`; it holds
/// no reference, so the PD keeps it beside the connection and passes the
/// same image to every [`ListCursor::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListCursor {
    next: u32,
    end: u32,
    /// Bytes of a path before an entry's name (the directory and its `/`).
    prefix_len: u32,
    /// Where the text written for an entry starts in its path: at the
    /// name (`prefix_len`), or before it for NLST of a named directory
    /// ([`ListCursor::naming_from`]).
    name_from: u32,
    format: Format,
    facts: Facts,
    /// Bytes of the current entry's line already written.
    sent: u32,
    /// The wall-clock time of the first fill, for LIST's dates.
    now: Option<u64>,
}

impl ListCursor {
    /// The entries of directory `dir` (which the caller checked exists, or
    /// is `/`).
    pub fn directory(image: &Image<'_>, dir: &SitePath, format: Format, facts: Facts) -> ListCursor {
        let range = children(image, dir);
        let prefix_len = if dir.is_root() { 1 } else { dir.as_bytes().len() + 1 };
        ListCursor {
            next: range.start,
            end: range.end,
            prefix_len: prefix_len as u32,
            name_from: prefix_len as u32,
            format,
            facts,
            sent: 0,
            now: None,
        }
    }

    /// Entries named from byte `from` of their paths instead of by their
    /// names alone: NLST of a named directory lists `DIR/name`, as `ls
    /// DIR` does with a relative `DIR` and vsftpd does, so that a client
    /// that retrieves each name it got (`mget DIR`) finds the file. `from`
    /// 0 names entries by their absolute paths; a `from` past the name's
    /// start is taken as the name's start.
    pub fn naming_from(mut self, from: u32) -> ListCursor {
        self.name_from = from.min(self.prefix_len);
        self
    }

    /// The one entry of the file at index position `position` (LIST of a
    /// file shows that file, as `ls` does).
    pub fn file(image: &Image<'_>, position: u32, format: Format, facts: Facts) -> ListCursor {
        let prefix_len = image.record(position).map_or(1, |r| r.path.rfind('/').map_or(1, |i| i + 1));
        ListCursor {
            next: position,
            end: position.saturating_add(1).min(image.len()),
            prefix_len: prefix_len as u32,
            name_from: prefix_len as u32,
            format,
            facts,
            sent: 0,
            now: None,
        }
    }

    /// An empty listing.
    pub fn empty(format: Format) -> ListCursor {
        ListCursor { next: 0, end: 0, prefix_len: 1, name_from: 1, format, facts: Facts::ALL, sent: 0, now: None }
    }

    /// Whether every entry was written.
    pub fn is_done(&self) -> bool {
        self.next >= self.end
    }

    /// The listing's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes the next bytes of the listing into `out` and returns how
    /// many; 0 only when the listing is done (or `out` is empty). `now` is
    /// the wall-clock time (Unix seconds); the first call's is kept. Lines
    /// may be split across calls: the concatenation of every piece is the
    /// listing, whatever the sizes of `out`.
    pub fn fill(&mut self, image: &Image<'_>, now: u64, out: &mut [u8]) -> usize {
        let now = *self.now.get_or_insert(now);
        let mut written = 0;
        while written < out.len() && !self.is_done() {
            let Some(record) = image.record(self.next) else {
                // The image is immutable and `end` came from it: cannot
                // happen; end the listing rather than loop.
                self.next = self.end;
                break;
            };
            let mut line = [0u8; MAX_ENTRY];
            let (len, skip_to) = self.render(image, &record, now, &mut line);
            let from = (self.sent as usize).min(len);
            let take = (len - from).min(out.len() - written);
            out[written..written + take].copy_from_slice(&line[from..from + take]);
            written += take;
            if from + take == len {
                self.sent = 0;
                self.next = skip_to;
            } else {
                self.sent = (from + take) as u32;
            }
        }
        written
    }

    /// The line for the entry at `record` and the index after the entry.
    fn render(&self, image: &Image<'_>, record: &FileRecord<'_>, now: u64, line: &mut [u8]) -> (usize, u32) {
        let path = record.path;
        let rel = path.get(self.prefix_len as usize..).unwrap_or("");
        let (name_len, kind, skip_to) = match rel.find('/') {
            None => (rel.len(), Kind::File { size: record.size, modified: record.last_modified }, self.next + 1),
            Some(i) => {
                let dir_end = self.prefix_len as usize + i;
                let after = lower_bound(image, &path.as_bytes()[..dir_end], b'/' + 1);
                (i, Kind::Dir { modified: record.last_modified }, after.max(self.next + 1))
            }
        };
        let end = (self.prefix_len as usize + name_len).min(path.len());
        let name = path.get(self.name_from as usize..end).unwrap_or(&rel[..name_len]);
        let mut w = SliceWriter { buf: line, len: 0 };
        if write_entry(&mut w, self.format, self.facts, kind, name, now).is_err() {
            // Cannot happen: MAX_ENTRY holds the longest line. Send the
            // name alone rather than a cut line.
            w.len = 0;
            let _ = write!(w, "{}\r\n", name.get(..MAX_ENTRY - 2).unwrap_or(""));
        }
        (w.len, skip_to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{site, SiteFile};
    use lib_test_rng::Rng;
    use std::string::String;
    use std::vec::Vec;

    fn one_shot(image: &Image<'_>, dir: &str, format: Format) -> String {
        let dir = SitePath::root().resolve(dir.as_bytes()).unwrap();
        let mut c = ListCursor::directory(image, &dir, format, Facts::ALL);
        let mut out = std::vec![0u8; 1 << 20];
        let n = c.fill(image, 1_700_000_000, &mut out);
        assert!(c.is_done());
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn immediate_children_only_each_directory_once() {
        let files = [
            SiteFile::new("/a.txt", b"aaa"),
            SiteFile::new("/docs/a/b.txt", b"b"),
            SiteFile::new("/docs/a/c.txt", b"c"),
            SiteFile::new("/docs/a/d/e.txt", b"e"),
            SiteFile::new("/docs/intro.html", b"<p>"),
            SiteFile::new("/docs.txt", b"x"),
            SiteFile::new("/z", b""),
        ];
        let head = site(&files);
        let image = Image::parse(&head).unwrap();
        assert_eq!(one_shot(&image, "/", Format::Nlst), "a.txt\r\ndocs.txt\r\ndocs\r\nz\r\n");
        assert_eq!(one_shot(&image, "/docs", Format::Nlst), "a\r\nintro.html\r\n");
        assert_eq!(one_shot(&image, "/docs/a", Format::Nlst), "b.txt\r\nc.txt\r\nd\r\n");
        assert_eq!(one_shot(&image, "/nothing", Format::Nlst), "");
    }

    #[test]
    fn list_and_mlsd_lines() {
        // LIST: the ls -l form clients parse; MLSD: RFC 3659 §7.2 facts.
        let files = [SiteFile::new("/docs/a/b.txt", b"b"), SiteFile::new("/f.bin", &[0; 1234])];
        let head = site(&files);
        let image = Image::parse(&head).unwrap();
        assert_eq!(
            one_shot(&image, "/", Format::List),
            "dr-xr-xr-x    2 ftp      ftp                 0 Nov 14 22:13 docs\r\n\
             -r--r--r--    1 ftp      ftp              1234 Nov 14 22:13 f.bin\r\n"
        );
        assert_eq!(
            one_shot(&image, "/", Format::Mlsd),
            "type=dir;modify=20231114221320; docs\r\ntype=file;size=1234;modify=20231114221320; f.bin\r\n"
        );
        let mut c = ListCursor::file(&image, 1, Format::Mlsd, Facts(Facts::SIZE));
        let mut out = [0u8; 100];
        let n = c.fill(&image, 0, &mut out);
        assert_eq!(&out[..n], b"size=1234; f.bin\r\n");
        assert_eq!(Facts::parse(b"Type;SIZE;bogus;"), Facts(Facts::TYPE | Facts::SIZE));
    }

    #[test]
    fn chunks_of_random_sizes_concatenate_to_the_one_shot_listing() {
        // Property: the cursor resumes exactly where it stopped.
        let mut rng = Rng(0x1157);
        let mut files = Vec::new();
        let names: Vec<String> = (0..600)
            .map(|i| match i % 5 {
                0 => std::format!("/d{}/sub{}/f{i}", i % 7, i % 3),
                1 => std::format!("/d{}/a long name with spaces {i}.txt", i % 7),
                _ => std::format!("/d{}/f{i}", i % 7),
            })
            .collect();
        for n in &names {
            files.push(SiteFile::new(n, b"data"));
        }
        let head = site(&files);
        let image = Image::parse(&head).unwrap();
        for dir in ["/", "/d3", "/d3/sub1", "/missing"] {
            for format in [Format::List, Format::Nlst, Format::Mlsd] {
                let whole = one_shot(&image, dir, format);
                let d = SitePath::root().resolve(dir.as_bytes()).unwrap();
                let mut c = ListCursor::directory(&image, &d, format, Facts::ALL);
                let mut got = Vec::new();
                let mut guard = 0;
                while !c.is_done() {
                    let mut buf = std::vec![0u8; 1 + rng.below(300)];
                    let n = c.fill(&image, 1_700_000_000 + guard, &mut buf);
                    assert!(n > 0);
                    got.extend_from_slice(&buf[..n]);
                    guard += 1;
                    assert!(guard < 1_000_000);
                }
                assert_eq!(String::from_utf8(got).unwrap(), whole, "{dir} {format:?}");
            }
        }
    }
}
