//! The built-in test site of the host tests: a few files compiled in
//! (`/`, `/style.css`, `/hello.txt`, `/docs/`, and `/big.txt`, 1 MiB
//! generated from its offsets), served through [`Store`] with a gate that
//! makes opens wait or fail, to exercise the server's handling of a file
//! store that is loading or broken without a disk.
//!
//! Like the image's cache, it keeps file data in a region the fake NIC
//! sends from ([`BuiltinSite::region`]), so the server sends bodies in
//! place (unless [`BuiltinSite::in_place`] is off). A file's bytes are in
//! the region only while it is pinned: when its last pin goes back they are
//! overwritten, as a cache reusing the blocks would, so a frame sent from
//! them after that carries garbage and fails the client's checksum.

use crate::inplace::{Files, Pins};
use crate::site::{Fetch, Store};
use http_core::date::{format_imf_fixdate, IMF_FIXDATE_LEN};
use http_core::{FileInfo, Lookup, Site, Status};
use std::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

/// Bytes of [`BuiltinSite`]'s generated file: 1 MiB.
pub const PATTERN_LEN: u64 = 1 << 20;

/// Byte `offset` of the generated file: 64-byte lines, line `k` being `k`
/// in 8 hex digits, a space, 54 letters starting at letter `k + 9` of the
/// alphabet (cycling), and a newline. Cheap to check from outside.
pub fn pattern_byte(offset: u64) -> u8 {
    let line = offset / 64;
    let column = offset % 64;
    match column {
        0..=7 => b"0123456789abcdef"[((line >> (4 * (7 - column))) & 15) as usize],
        8 => b' ',
        63 => b'\n',
        _ => b'a' + ((line + column) % 26) as u8,
    }
}

/// Where a built-in file's bytes come from.
#[derive(Clone, Copy, Debug)]
enum Data {
    Static(&'static [u8]),
    /// [`pattern_byte`] for `0..len`.
    Pattern(u64),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Static(bytes) => bytes.len() as u64,
            Data::Pattern(len) => *len,
        }
    }
}

const INDEX_HTML: &[u8] = b"<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>seL4 web node</title>
<link rel=\"stylesheet\" href=\"/style.css\"></head>
<body><h1>Served by httpd on seL4</h1>
<p>This page comes from the server's built-in test site, a placeholder
until the file cache serves the site image.</p>
<ul><li><a href=\"/hello.txt\">hello.txt</a></li>
<li><a href=\"/docs/\">docs/</a></li>
<li><a href=\"/big.txt\">big.txt</a> (1 MiB, generated)</li></ul>
</body></html>
";
const STYLE_CSS: &[u8] = b"body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }\nh1 { color: #336; }\n";
const HELLO_TXT: &[u8] = b"hello from the seL4 web node\n";
const DOCS_INDEX: &[u8] =
    b"<!DOCTYPE html>\n<html><head><title>docs</title></head><body><p>The docs directory's index.</p></body></html>\n";

/// The built-in files: path, content type, data. `/docs` is a directory.
const FILES: [(&str, &str, Data); 5] = [
    ("/index.html", "text/html; charset=utf-8", Data::Static(INDEX_HTML)),
    ("/style.css", "text/css", Data::Static(STYLE_CSS)),
    ("/hello.txt", "text/plain; charset=utf-8", Data::Static(HELLO_TXT)),
    ("/docs/index.html", "text/html; charset=utf-8", Data::Static(DOCS_INDEX)),
    ("/big.txt", "text/plain; charset=utf-8", Data::Pattern(PATTERN_LEN)),
];
const DIRECTORIES: [&str; 1] = ["/docs"];

/// Room for one precomputed header.
const HEADER_ROOM: usize = 192;
/// Room for an entity tag.
const ETAG_ROOM: usize = 24;

/// One built-in file with its precomputed `200` header fields.
struct Builtin {
    path: &'static str,
    data: Data,
    header: [u8; HEADER_ROOM],
    header_len: usize,
    etag: [u8; ETAG_ROOM],
    etag_len: usize,
}

/// The placeholder site (see the module docs). Its files were "modified"
/// when the server started (`started`, unix seconds); their entity tags
/// are `"<length hex>-<started hex>"`.
pub struct BuiltinSite {
    files: [Builtin; FILES.len()],
    pub last_modified: u64,
    /// How opens are answered: `None` serves, `Some(Ok(()))` answers
    /// `Wait`, `Some(Err(status))` fails with `status`.
    pub gate: Option<Result<(), Status>>,
    /// Bumped when the gate opens (what a completed load is to the cache).
    pub events: u64,
    /// Opens answered `Ready` and pins given back.
    pub pins: u64,
    pub released: u64,
    /// Whether bodies are sent in place from [`region`](Self::region).
    pub in_place: bool,
    /// The "cache region" the fake NIC sends from: file `i` at
    /// `REGION_SLOT * i`, present while pinned.
    pub region: Rc<RefCell<Vec<u8>>>,
    /// Pins held per file.
    held: [u32; FILES.len()],
    /// Bytes summed for segments, and of those the bytes of ranges that are
    /// not whole 1460-byte pieces (the image's precomputed sums cover only
    /// whole pieces: the rest must be read to sum them).
    pub summed: std::cell::Cell<u64>,
    pub summed_partial: std::cell::Cell<u64>,
}

/// Bytes of the region per file (the largest file rounded up).
pub const REGION_SLOT: usize = PATTERN_LEN as usize;
/// What a file's region bytes hold while it is not pinned.
pub const EVICTED: u8 = 0xdd;

/// `core::fmt::Write` into a fixed buffer.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let dst = self.buf.get_mut(self.len..self.len + s.len()).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

impl BuiltinSite {
    /// The site with its headers written for modification time `started`.
    pub fn new(started: u64) -> BuiltinSite {
        let date: [u8; IMF_FIXDATE_LEN] = format_imf_fixdate(started);
        let date = core::str::from_utf8(&date).unwrap_or("Thu, 01 Jan 1970 00:00:00 GMT");
        let files = FILES.map(|(path, content_type, data)| {
            let mut file =
                Builtin { path, data, header: [0; HEADER_ROOM], header_len: 0, etag: [0; ETAG_ROOM], etag_len: 0 };
            let mut etag = Cursor { buf: &mut file.etag, len: 0 };
            // The buffers are sized for the longest values: a u64 in hex
            // twice, and these content types.
            let _ = core::fmt::write(&mut etag, format_args!("\"{:x}-{:x}\"", data.len(), started));
            file.etag_len = etag.len;
            let etag = core::str::from_utf8(&file.etag[..file.etag_len]).unwrap_or("\"\"");
            let mut header = Cursor { buf: &mut file.header, len: 0 };
            let _ = core::fmt::write(
                &mut header,
                format_args!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\nLast-Modified: {date}\r\nETag: {etag}\r\n",
                    data.len()
                ),
            );
            file.header_len = header.len;
            file
        });
        let region = Rc::new(RefCell::new(std::vec![EVICTED; REGION_SLOT * FILES.len()]));
        BuiltinSite {
            files,
            last_modified: started,
            gate: None,
            events: 0,
            pins: 0,
            released: 0,
            in_place: true,
            region,
            held: [0; FILES.len()],
            summed: std::cell::Cell::new(0),
            summed_partial: std::cell::Cell::new(0),
        }
    }

    /// File `file`'s byte `offset`.
    fn byte(&self, file: usize, offset: u64) -> u8 {
        match self.files[file].data {
            Data::Static(bytes) => bytes[offset as usize],
            Data::Pattern(_) => pattern_byte(offset),
        }
    }
}

impl Site for BuiltinSite {
    type Handle = usize;

    fn lookup(&self, path: &str) -> Lookup<'_, usize> {
        if let Some(i) = self.files.iter().position(|f| f.path == path) {
            let f = &self.files[i];
            let info = FileInfo {
                len: f.data.len(),
                last_modified: self.last_modified,
                etag: &f.etag[..f.etag_len],
                header: &f.header[..f.header_len],
            };
            return Lookup::File(info, i);
        }
        if DIRECTORIES.contains(&path) {
            return Lookup::Directory;
        }
        Lookup::NotFound
    }
}

impl Pins for BuiltinSite {
    /// The file's index.
    type Pin = usize;

    fn region_offset(&self, &file: &usize) -> Option<usize> {
        self.in_place.then_some(REGION_SLOT * file)
    }

    fn sum(&self, &file: &usize, offset: u64, len: usize) -> Option<u16> {
        let f = self.files.get(file)?;
        if offset.checked_add(len as u64)? > f.data.len() {
            return None;
        }
        let piece = crate::inplace::PIECE;
        let whole = offset.is_multiple_of(piece) && (len as u64 == piece || offset + len as u64 == f.data.len());
        self.summed.set(self.summed.get() + len as u64);
        if !whole {
            self.summed_partial.set(self.summed_partial.get() + len as u64);
        }
        let bytes: Vec<u8> = (offset..offset + len as u64).map(|i| self.byte(file, i)).collect();
        let mut sum = net_packet::checksum::Checksum::new();
        sum.add_bytes(&bytes);
        Some(sum.sum())
    }

    fn release(&mut self, file: usize) {
        self.released += 1;
        self.held[file] -= 1;
        if self.held[file] == 0 {
            // "Evicted": the blocks are reused.
            self.region.borrow_mut()[REGION_SLOT * file..][..REGION_SLOT].fill(EVICTED);
        }
    }
}

impl Files for BuiltinSite {
    /// The `events` count when the open was refused.
    type Wait = u64;

    fn may_retry(&self, wait: &u64) -> bool {
        self.events != *wait
    }

    fn read(&self, &file: &usize, offset: u64, buf: &mut [u8]) -> usize {
        let Some(f) = self.files.get(file) else { return 0 };
        let len = f.data.len();
        if offset >= len {
            return 0;
        }
        let n = (len - offset).min(buf.len() as u64) as usize;
        match f.data {
            Data::Static(bytes) => buf[..n].copy_from_slice(&bytes[offset as usize..offset as usize + n]),
            Data::Pattern(_) => {
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = pattern_byte(offset + i as u64);
                }
            }
        }
        n
    }
}

impl Store for BuiltinSite {
    fn open(&mut self, file: usize) -> Fetch<usize, u64> {
        match self.gate {
            None => {
                self.pins += 1;
                if self.held[file] == 0 {
                    // "Loaded" into the region.
                    let len = self.files[file].data.len() as usize;
                    let data: Vec<u8> = (0..len as u64).map(|i| self.byte(file, i)).collect();
                    self.region.borrow_mut()[REGION_SLOT * file..][..len].copy_from_slice(&data);
                }
                self.held[file] += 1;
                Fetch::Ready(file)
            }
            Some(Ok(())) => Fetch::Wait(self.events),
            Some(Err(status)) => Fetch::Fail(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn headers_fit_and_say_the_length() {
        let site = BuiltinSite::new(1_700_000_000);
        for (path, _, data) in FILES {
            let Lookup::File(info, _) = site.lookup(path) else { panic!("{path}") };
            let header = String::from_utf8(info.header.to_vec()).unwrap();
            assert!(header.contains(&std::format!("Content-Length: {}\r\n", data.len())), "{header}");
            assert!(header.contains("Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"), "{header}");
            assert!(header.ends_with(&std::format!("ETag: {}\r\n", String::from_utf8(info.etag.to_vec()).unwrap())));
        }
        assert_eq!(site.lookup("/docs"), Lookup::Directory);
        assert_eq!(site.lookup("/nope"), Lookup::NotFound);
    }

    #[test]
    fn reads_are_exact_at_the_end() {
        let site = BuiltinSite::new(0);
        let mut buf = [0u8; 8];
        assert_eq!(site.read(&2, 0, &mut buf), 8);
        assert_eq!(&buf, b"hello fr");
        let len = HELLO_TXT.len() as u64;
        assert_eq!(site.read(&2, len - 3, &mut buf), 3);
        assert_eq!(&buf[..3], b"de\n");
        assert_eq!(site.read(&2, len, &mut buf), 0);
        assert_eq!(site.read(&99, 0, &mut buf), 0, "no such file");
    }

    #[test]
    fn the_pattern_is_lines_of_64() {
        let line = |k: u64| -> String { (0..64).map(|c| pattern_byte(k * 64 + c) as char).collect() };
        assert_eq!(
            line(0),
            std::format!(
                "00000000 {}\n",
                &"jklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"[..54]
            )
        );
        assert!(line(0x1234).starts_with("00001234 "));
        let site = BuiltinSite::new(0);
        let mut buf = [0u8; 100];
        assert_eq!(site.read(&4, PATTERN_LEN - 10, &mut buf), 10);
        assert_eq!(buf[9], b'\n');
    }
}
