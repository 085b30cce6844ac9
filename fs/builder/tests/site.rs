//! Builds images from generated trees and reads every file back through
//! the reader; every kind of bad input is refused with no image left.

use fs_builder::{build, Error, Options, Placement};
use fs_format::path::PathFault;
use fs_format::sums::sum_of;
use fs_format::{Image, BLOCK_SIZE};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("site-builder-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).unwrap();
        Scratch(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    fn out(&self) -> PathBuf {
        self.0.join("out").join("site.img")
    }
    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every file under `root` with its URL path, by a walk independent of the
/// builder's (hidden names skipped).
fn tree(root: &Path, url: &str, out: &mut Vec<(String, PathBuf)>) {
    for e in fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_str().unwrap().to_string();
        if name.starts_with('.') {
            continue;
        }
        let child = format!("{url}/{name}");
        if e.file_type().unwrap().is_dir() {
            tree(&e.path(), &child, out);
        } else {
            out.push((child, e.path()));
        }
    }
}

#[test]
fn large_generated_site_reads_back() {
    let s = Scratch::new("large");
    let mut n = 0;
    for d in 0..20 {
        for f in 0..50 {
            let len = match f % 10 {
                0 => 0,
                1 => 1,
                2 => 1460,
                3 => 4096,
                4 => 4097,
                _ => ((d * 50 + f) * 977) % 30_000,
            };
            s.write(&format!("d{d:02}/f{f:03}.bin"), &bytes((d * 50 + f) as u64, len));
            n += 1;
        }
    }
    for p in 0..30 {
        let html = format!(
            "<html><head><link rel=stylesheet href=\"../shared.css\"><script src='/js/p{p}.js'></script></head>\
             <body><img src=\"img/p{p}.png\"><img src=\"../d00/f005.bin\"><a href=\"other.html\">x</a></body></html>"
        );
        s.write(&format!("pages/p{p:02}.html"), html.as_bytes());
        s.write(&format!("pages/img/p{p}.png"), &bytes(1000 + p, 3000 + p as usize * 17));
        s.write(&format!("js/p{p}.js"), format!("console.log({p});").as_bytes());
        n += 3;
    }
    s.write("shared.css", b"body { color: black }");
    s.write("big/ten-mb.dat", &bytes(42, 10 << 20));
    s.write("empty", b"");
    n += 3;
    assert!(n >= 1000);

    let report =
        build(&s.root(), &s.out(), &Options { last_modified: Some(1_700_000_000), ..Options::default() }).unwrap();
    assert_eq!(report.files.len(), n);
    let image = fs::read(s.out()).unwrap();
    assert_eq!(image.len(), report.block_count as usize * BLOCK_SIZE);
    let img = Image::parse(&image).unwrap();
    assert_eq!(img.len() as usize, n);

    let mut files = Vec::new();
    tree(&s.root(), "", &mut files);
    assert_eq!(files.len(), n);
    for (url, path) in &files {
        let data = fs::read(path).unwrap();
        let r = img.lookup(url.as_bytes()).unwrap_or_else(|| panic!("{url} missing"));
        let at = r.data_offset() as usize;
        let stored = &image[at..at + r.size as usize];
        assert_eq!(stored, &data[..], "{url}");
        assert!(r.verify(stored), "{url}");
        // Padding to the block end is zero.
        let end = at + r.block_count() as usize * BLOCK_SIZE;
        assert!(image[at + data.len()..end].iter().all(|&b| b == 0));
        // Stored piece sums are the sums of the pieces.
        for (i, piece) in data.chunks(1460).enumerate() {
            assert_eq!(r.piece_sum(i as u64), Some(sum_of(piece)), "{url} piece {i}");
        }
        assert!(std::str::from_utf8(r.header).unwrap().contains(&format!("Content-Length: {}\r\n", data.len())));
    }
    // Segment sums of the 10 MB file for the usual MSS values.
    let big = img.lookup(b"/big/ten-mb.dat").unwrap();
    let at = big.data_offset() as usize;
    let data = &image[at..at + big.size as usize];
    for mss in [536u64, 1400, 1448, 1460, 8960] {
        for k in [0u64, 1, 2, 1000, 7000] {
            let off = (k * mss).min(big.size);
            for start in [off, (off + 1).min(big.size)] {
                let len = mss.min(big.size - start);
                let got = big.segment_sum(start, len, |o, max| Some(&data[o as usize..o as usize + max]));
                assert_eq!(got, Ok(sum_of(&data[start as usize..(start + len) as usize])));
            }
        }
    }

    // Layout: each page is followed by its objects, each object once.
    let p00 = img.lookup(b"/pages/p00.html").unwrap();
    assert!(p00.is_page());
    let followers = ["/shared.css", "/js/p0.js", "/pages/img/p0.png", "/d00/f005.bin"];
    let mut next = p00.first_block + p00.block_count() as u32;
    for f in followers {
        let r = img.lookup(f.as_bytes()).unwrap();
        assert!(r.is_inlined(), "{f}");
        assert_eq!(r.first_block, next, "{f} follows p00");
        assert_eq!((r.span_first, r.span_blocks), (p00.span_first, p00.span_blocks));
        next += r.block_count() as u32;
    }
    assert_eq!(p00.span_first + p00.span_blocks, next);
    // p01 shares the stylesheet with p00: it is stored once, after p00.
    let p01 = img.lookup(b"/pages/p01.html").unwrap();
    let js1 = img.lookup(b"/js/p1.js").unwrap();
    assert_eq!(js1.first_block, p01.first_block + 1);
    assert_eq!(p01.span_blocks, 3, "p01, its script and its image");
    let placement = |p: &str| report.files.iter().find(|f| f.path == p).unwrap().placement.clone();
    assert_eq!(placement("/shared.css"), Placement::InlinedIn("/pages/p00.html".into()));
    assert_eq!(placement("/pages/p00.html"), Placement::Page { span_blocks: p00.span_blocks });
    assert_eq!(placement("/big/ten-mb.dat"), Placement::Alone);
    assert!(
        report.files.iter().position(|f| f.path == "/pages/p29.html").unwrap()
            < report.files.iter().position(|f| f.path == "/big/ten-mb.dat").unwrap()
    );

    // Deterministic: the same tree gives the same bytes.
    let again = s.0.join("again.img");
    build(&s.root(), &again, &Options { last_modified: Some(1_700_000_000), ..Options::default() }).unwrap();
    assert!(fs::read(&again).unwrap() == image);
}

#[test]
fn hidden_files_symlinks_and_mtimes() {
    let s = Scratch::new("policy");
    s.write("index.html", b"<img src=a.png><video src=video.webm></video>");
    s.write("a.png", b"png");
    // Too large to keep in the page's span.
    s.write("video.webm", &vec![0; fs_builder::INLINE_LIMIT as usize + 1]);
    s.write("docs/a.html", b"<link rel=stylesheet href=../b.css><img src=../a.png>");
    s.write("b.css", b"css");
    s.write(".git/config", b"secret");
    s.write(".htaccess", b"secret");
    s.write("sub/.hidden", b"secret");
    s.write(".well-known/security.txt", b"Contact: x");
    s.write("sub/.well-known/x", b"not at the root");
    std::os::unix::fs::symlink("a.png", s.root().join("link.png")).unwrap();
    let t = 1_000_000_000;
    let file = fs::File::options().write(true).open(s.root().join("a.png")).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)).unwrap();
    drop(file);

    let report = build(&s.root(), &s.out(), &Options::default()).unwrap();
    let mut paths: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/.well-known/security.txt", "/a.png", "/b.css", "/docs/a.html", "/index.html", "/link.png", "/video.webm"]
    );
    // The landing page comes first although `/docs/a.html` sorts before it;
    // `/a.png` stays with it, `/b.css` goes after the page that needs it.
    let order: Vec<(&str, &Placement)> = report.files.iter().map(|f| (f.path.as_str(), &f.placement)).collect();
    assert_eq!(
        order,
        [
            ("/index.html", &Placement::Page { span_blocks: 2 }),
            ("/a.png", &Placement::InlinedIn("/index.html".into())),
            ("/docs/a.html", &Placement::Page { span_blocks: 2 }),
            ("/b.css", &Placement::InlinedIn("/docs/a.html".into())),
            ("/.well-known/security.txt", &Placement::Alone),
            ("/link.png", &Placement::Alone),
            ("/video.webm", &Placement::Alone),
        ]
    );
    let mut skipped = report.skipped.clone();
    skipped.sort();
    assert_eq!(skipped, ["/.git", "/.htaccess", "/sub/.hidden", "/sub/.well-known"]);
    let image = fs::read(s.out()).unwrap();
    let img = Image::parse(&image).unwrap();
    let link = img.lookup(b"/link.png").unwrap();
    assert_eq!(&image[link.data_offset() as usize..][..3], b"png");
    let a = img.lookup(b"/a.png").unwrap();
    assert_eq!(a.last_modified, t);
    assert!(std::str::from_utf8(a.header).unwrap().contains("Last-Modified: Sun, 09 Sep 2001 01:46:40 GMT\r\n"));
    assert_eq!(a.etag(), link.etag(), "same content, same strong tag");
    assert!(img.is_directory(b"/.well-known"));
}

/// Builds `s` expecting an error; checks that no image and no temporary
/// file was left, and that an image already there was not touched.
fn refused(s: &Scratch, options: &Options) -> Error {
    let out = s.out();
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    fs::write(&out, b"previous image").unwrap();
    let err = build(&s.root(), &out, options).unwrap_err();
    assert_eq!(fs::read(&out).unwrap(), b"previous image");
    let left: Vec<_> = fs::read_dir(out.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("site.img")], "no temporary file left");
    err
}

#[test]
fn bad_names_are_refused() {
    let cases: &[(&[u8], PathFault)] = &[
        (b"bad\xffname", PathFault::NotUtf8),
        (b"tab\there", PathFault::ControlCharacter),
        (b"what?", PathFault::QueryOrFragment),
        (b"anchor#1", PathFault::QueryOrFragment),
        (b"back\\slash", PathFault::Backslash),
    ];
    for (name, fault) in cases {
        let s = Scratch::new("names");
        s.write("ok.txt", b"fine");
        let path = s.root().join(std::ffi::OsStr::from_bytes(name));
        fs::write(&path, b"x").unwrap();
        match refused(&s, &Options::default()) {
            Error::BadName { path: p, fault: f } => {
                assert_eq!((p, f), (path.clone(), *fault));
                let msg = Error::BadName { path: path.clone(), fault: *fault }.to_string();
                assert!(msg.contains("cannot be served"), "{msg}");
            }
            other => panic!("{name:?}: {other}"),
        }
    }
}

#[test]
fn too_long_paths_are_refused() {
    let s = Scratch::new("long");
    let dir = "d".repeat(200);
    let rel = format!("{dir}/{dir}/{dir}/{dir}/{dir}/{}", "f".repeat(30));
    s.write(&rel, b"x");
    match refused(&s, &Options::default()) {
        Error::BadName { fault: PathFault::TooLong, path } => assert!(path.to_str().unwrap().ends_with("fffff")),
        other => panic!("{other}"),
    }
}

#[test]
fn links_and_special_files_are_refused() {
    let s = Scratch::new("dangling");
    std::os::unix::fs::symlink("nowhere", s.root().join("dangling")).unwrap();
    match refused(&s, &Options::default()) {
        Error::Unreadable { path, .. } => assert!(path.ends_with("dangling")),
        other => panic!("{other}"),
    }

    let s = Scratch::new("outside");
    fs::write(s.0.join("secret"), b"x").unwrap();
    std::os::unix::fs::symlink(s.0.join("secret"), s.root().join("escape")).unwrap();
    match refused(&s, &Options::default()) {
        Error::NotServable { path, reason } => {
            assert!(path.ends_with("escape"));
            assert!(reason.contains("outside the document root"));
        }
        other => panic!("{other}"),
    }

    let s = Scratch::new("dirlink");
    s.write("sub/a", b"x");
    std::os::unix::fs::symlink("sub", s.root().join("loop")).unwrap();
    match refused(&s, &Options::default()) {
        Error::NotServable { reason, .. } => assert!(reason.contains("directory")),
        other => panic!("{other}"),
    }

    let s = Scratch::new("fifo");
    let status = std::process::Command::new("mkfifo").arg(s.root().join("pipe")).status().unwrap();
    assert!(status.success());
    match refused(&s, &Options::default()) {
        Error::NotServable { path, reason } => {
            assert!(path.ends_with("pipe"));
            assert!(reason.contains("not a regular file"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn missing_or_non_directory_root_is_refused() {
    let s = Scratch::new("root");
    s.write("sub/a", b"x");
    let missing = s.0.join("missing");
    match build(&missing, &s.out(), &Options::default()).unwrap_err() {
        Error::Root { path, .. } => assert_eq!(path, missing),
        other => panic!("{other}"),
    }
    match build(&s.root().join("sub/a"), &s.out(), &Options::default()).unwrap_err() {
        Error::Root { reason, .. } => assert_eq!(reason, "not a directory"),
        other => panic!("{other}"),
    }
    assert!(!s.out().exists());
}

#[test]
fn site_larger_than_allowed_is_refused() {
    let s = Scratch::new("toolarge");
    s.write("a.bin", &bytes(1, 3 * BLOCK_SIZE));
    s.write("b.bin", &bytes(2, 10));
    // Superblock, one index block, 3 + 1 data blocks.
    build(&s.root(), &s.0.join("fits.img"), &Options { max_blocks: 6, ..Options::default() }).unwrap();
    match refused(&s, &Options { max_blocks: 5, ..Options::default() }) {
        Error::Format(e) => {
            let msg = e.to_string();
            assert!(msg.contains("needs 6 blocks") && msg.contains("at most 5"), "{msg}");
        }
        other => panic!("{other}"),
    }
}

/// The demo site of `images/site` builds, and every file reads back.
#[test]
fn demo_site_builds() {
    let s = Scratch::new("demo");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/site");
    let report = build(&root, &s.out(), &Options::default()).unwrap();
    let image = fs::read(s.out()).unwrap();
    let img = Image::parse(&image).unwrap();
    let mut files = Vec::new();
    tree(&root, "", &mut files);
    assert_eq!(files.len(), report.files.len());
    for (url, path) in &files {
        let r = img.lookup(url.as_bytes()).unwrap();
        let at = r.data_offset() as usize;
        assert_eq!(&image[at..at + r.size as usize], &fs::read(path).unwrap()[..], "{url}");
    }
    assert_eq!(report.files[0].path, "/index.html");
    assert!(img.lookup(b"/style.css").unwrap().is_inlined());
    assert!(img.lookup(b"/data/squares.txt").unwrap().size > 4 << 20);
    assert!(img.is_directory(b"/docs"));
}
