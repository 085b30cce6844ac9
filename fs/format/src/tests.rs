//! Whole-image tests: images assembled with [`crate::build::plan`] from
//! files in memory, read back, and corrupted.

use crate::build::{plan, PlanError, Planned};
use crate::path::PathFault;
use crate::sums::{sum_of, PIECE};
use crate::*;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use lib_test_rng::Rng;
use sha2::{Digest, Sha256};

fn planned(path: &str, data: &[u8], flags: u32, leader: usize) -> Planned {
    let mut sums = Vec::new();
    for piece in data.chunks(PIECE) {
        sums.extend_from_slice(&sum_of(piece).to_be_bytes());
    }
    Planned {
        path: path.to_string(),
        size: data.len() as u64,
        last_modified: 1_700_000_000,
        sha256: Sha256::digest(data).into(),
        sums,
        flags,
        span_leader: leader,
    }
}

/// A whole image: head plus data at the planned blocks.
fn image_of(files: &[(&str, Vec<u8>, u32, usize)]) -> Vec<u8> {
    let planned: Vec<Planned> = files.iter().map(|(p, d, f, l)| planned(p, d, *f, *l)).collect();
    let plan = plan(&planned, MAX_BLOCKS).unwrap();
    let mut image = plan.head.clone();
    image.resize(plan.block_count as usize * BLOCK_SIZE, 0);
    for ((_, data, _, _), first) in files.iter().zip(&plan.first_blocks) {
        let at = *first as usize * BLOCK_SIZE;
        image[at..at + data.len()].copy_from_slice(data);
    }
    image
}

fn data_of<'a>(image: &'a [u8], r: &FileRecord) -> &'a [u8] {
    let at = r.data_offset() as usize;
    &image[at..at + r.size as usize]
}

fn sample() -> Vec<u8> {
    let mut rng = Rng(7);
    let big: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
    image_of(&[
        ("/index.html", b"<img src=a.png>".to_vec(), FLAG_PAGE, 0),
        ("/a.png", alloc::vec![1, 2, 3], FLAG_INLINED, 0),
        ("/docs/intro.html", b"<p>intro</p>".to_vec(), FLAG_PAGE, 2),
        ("/big.bin", big, 0, 3),
        ("/empty", Vec::new(), 0, 4),
        ("/docs/z/deep.txt", b"deep".to_vec(), 0, 5),
    ])
}

#[test]
fn round_trip() {
    let image = sample();
    let img = Image::parse(&image).unwrap();
    assert_eq!(img.len(), 6);
    let paths: Vec<&str> = img.files().map(|r| r.path).collect();
    assert_eq!(paths, ["/a.png", "/big.bin", "/docs/intro.html", "/docs/z/deep.txt", "/empty", "/index.html"]);
    for (i, r) in img.files().enumerate() {
        assert!(r.verify(data_of(&image, &r)), "{}", r.path);
        assert_eq!(img.lookup(r.path.as_bytes()), Some(r));
        assert_eq!(img.position(r.path.as_bytes()), Some(i as u32));
    }
    assert_eq!(img.position(b"/a.pn"), None);
    assert_eq!(img.position(b"/zzz"), None);
    let index = img.lookup(b"/index.html").unwrap();
    let a = img.lookup(b"/a.png").unwrap();
    assert!(index.is_page() && a.is_inlined());
    assert_eq!(a.first_block, index.first_block + 1, "the object follows its page");
    assert_eq!((index.span_first, index.span_blocks), (index.first_block, 2));
    assert_eq!((a.span_first, a.span_blocks), (index.span_first, 2));
    let big = img.lookup(b"/big.bin").unwrap();
    assert_eq!((big.span_first, big.span_blocks), (big.first_block, 25));
    assert_eq!(big.sums.len(), 2 * 100_000usize.div_ceil(PIECE));
    let empty = img.lookup(b"/empty").unwrap();
    assert_eq!((empty.size, empty.block_count(), empty.sums.len()), (0, 0, 0));
    assert!(empty.verify(&[]));
    assert!(!empty.verify(&[0]));
    assert_eq!(img.pages().count(), 2);
    assert!(core::str::from_utf8(big.header).unwrap().contains("Content-Length: 100000\r\n"));
    assert!(core::str::from_utf8(index.header).unwrap().contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(big.fields().starts_with(b"Content-Type: application/octet-stream\r\n"));
    assert_eq!(img.superblock().block_count as usize * BLOCK_SIZE, image.len());
}

#[test]
fn lookups_and_directories() {
    let image = sample();
    let img = Image::parse(&image).unwrap();
    for missing in [&b""[..], b"/", b"/docs", b"/docs/", b"/index.htm", b"/index.html/", b"/zzz", b"/a.pn"] {
        assert_eq!(img.lookup(missing), None, "{missing:?}");
    }
    for dir in [&b"/"[..], b"/docs", b"/docs/", b"/docs/z", b"/docs/z/"] {
        assert!(img.is_directory(dir), "{dir:?}");
    }
    for not_dir in [&b"/doc"[..], b"/index.html", b"/docs/intro.html", b"/d", b"/docs/zz", b"/e", b""] {
        assert!(!img.is_directory(not_dir), "{not_dir:?}");
    }
}

#[test]
fn verification_catches_changed_data() {
    let image = sample();
    let img = Image::parse(&image).unwrap();
    let big = img.lookup(b"/big.bin").unwrap();
    let mut data = data_of(&image, &big).to_vec();
    data[5000] ^= 0x40;
    assert!(!big.verify(&data));
    assert!(!big.verify(&data[..99_999]));
    // Chunked verification agrees with the one-shot one, at any chunking.
    let good = data_of(&image, &big);
    for chunk in [1, 7, 1460, 4096, 99_999] {
        let mut v = FileVerifier::new(&big);
        for c in good.chunks(chunk) {
            v.update(c);
        }
        assert!(v.finish(), "chunk {chunk}");
    }
}

#[test]
fn segment_sums_from_records() {
    let image = sample();
    let img = Image::parse(&image).unwrap();
    let big = img.lookup(b"/big.bin").unwrap();
    let data = data_of(&image, &big);
    for mss in [536u64, 1400, 1448, 1460, 8960] {
        let mut off = 0;
        while off < big.size {
            for start in [off, off + 1, off + 3] {
                let start = start.min(big.size);
                let len = mss.min(big.size - start);
                let got = big.segment_sum(start, len, |o, max| Some(&data[o as usize..o as usize + max]));
                assert_eq!(got, Ok(sum_of(&data[start as usize..(start + len) as usize])));
            }
            off += mss;
        }
    }
}

#[test]
fn empty_site() {
    let image = image_of(&[]);
    let img = Image::parse(&image).unwrap();
    assert!(img.is_empty());
    assert_eq!(img.lookup(b"/index.html"), None);
    assert!(!img.is_directory(b"/"));
}

#[test]
fn plan_errors() {
    let ok = planned("/a", b"x", 0, 0);
    let bad = planned("/a?b", b"x", 0, 0);
    assert_eq!(
        plan(&[bad], MAX_BLOCKS).unwrap_err(),
        PlanError::BadPath { path: "/a?b".into(), fault: PathFault::QueryOrFragment }
    );
    let mut dup = ok.clone();
    dup.span_leader = 1;
    assert_eq!(plan(&[ok.clone(), dup], MAX_BLOCKS).unwrap_err(), PlanError::Duplicate("/a".into()));
    // Superblock + one index block + one data block.
    assert!(plan(core::slice::from_ref(&ok), 3).is_ok());
    assert_eq!(plan(core::slice::from_ref(&ok), 2).unwrap_err(), PlanError::TooManyBlocks { needed: 3, max: 2 });
    let mut wrong_sums = ok.clone();
    wrong_sums.sums.clear();
    assert!(matches!(plan(&[wrong_sums], MAX_BLOCKS), Err(PlanError::Inconsistent(_))));
    let mut forward = ok;
    forward.span_leader = 1;
    assert!(matches!(plan(&[forward], MAX_BLOCKS), Err(PlanError::Inconsistent(_))));
}

/// Re-seals a superblock after a field was changed, so the test reaches
/// the checks behind the checksum.
fn reseal_superblock(image: &mut [u8]) {
    let sum: [u8; 32] = Sha256::digest(&image[..72]).into();
    image[72..104].copy_from_slice(&sum);
}

/// Re-seals the index's hash (and the superblock) after an index change.
fn reseal_index(image: &mut [u8]) {
    let sb = Superblock::parse(image).unwrap();
    let index = &image[BLOCK_SIZE..BLOCK_SIZE + sb.index_len as usize];
    let sum: [u8; 32] = Sha256::digest(index).into();
    image[40..72].copy_from_slice(&sum);
    reseal_superblock(image);
}

#[test]
#[allow(clippy::type_complexity)]
fn superblock_errors() {
    let good = sample();
    let cases: &[(fn(&mut Vec<u8>), FormatError)] = &[
        (|i| i[0] = b'X', FormatError::BadMagic),
        (|i| i[8] = 2, FormatError::UnsupportedVersion(2)),
        (|i| i[13] = 0x20, FormatError::BadBlockSize(0x2000)),
        (|i| i[16] ^= 1, FormatError::SuperblockChecksum),
        (|i| i[100] ^= 1, FormatError::SuperblockChecksum),
        (|i| i[4000] = 1, FormatError::SuperblockReserved),
        (
            |i| {
                i[36] = 1;
                reseal_superblock(i)
            },
            FormatError::SuperblockReserved,
        ),
        (
            |i| {
                i[32] += 1;
                reseal_superblock(i)
            },
            FormatError::BadGeometry,
        ),
        (
            |i| {
                i[16..20].copy_from_slice(&1u32.to_le_bytes());
                reseal_superblock(i)
            },
            FormatError::BadGeometry,
        ),
        (
            |i| {
                i[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
                reseal_superblock(i)
            },
            FormatError::BadGeometry,
        ),
        (|i| i[BLOCK_SIZE + 10] ^= 1, FormatError::IndexChecksum),
        (|i| i.truncate(BLOCK_SIZE + 10), FormatError::ShortIndex { needed: 0 }),
        (|i| i.truncate(100), FormatError::ShortSuperblock),
    ];
    for (i, (corrupt, want)) in cases.iter().enumerate() {
        let mut image = good.clone();
        corrupt(&mut image);
        let got = Image::parse(&image).unwrap_err();
        match (got, want) {
            (FormatError::ShortIndex { .. }, FormatError::ShortIndex { .. }) => {}
            _ => assert_eq!(got, *want, "case {i}"),
        }
    }
}

/// Records made invalid behind a correct index hash are still refused,
/// each with its reason.
#[test]
#[allow(clippy::type_complexity)]
fn record_errors() {
    let good = sample();
    let sb = Superblock::parse(&good).unwrap();
    let entry = |i: usize, field: usize| BLOCK_SIZE + i * ENTRY_SIZE + field;
    let index_len = sb.index_len;
    let block_count = sb.block_count;
    let mut cases: Vec<(String, Box<dyn Fn(&mut Vec<u8>)>, RecordFault)> = Vec::new();
    let put32 = |at: usize, v: u32| move |i: &mut Vec<u8>| i[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |at: usize, v: u64| move |i: &mut Vec<u8>| i[at..at + 8].copy_from_slice(&v.to_le_bytes());
    cases.push(("path offset in the table".into(), Box::new(put32(entry(1, 0), 0)), RecordFault::PathOutOfRange));
    cases.push((
        "path past the index".into(),
        Box::new(put32(entry(1, 0), index_len - 2)),
        RecordFault::PathOutOfRange,
    ));
    cases.push(("flags".into(), Box::new(put32(entry(1, 20), 4)), RecordFault::Reserved));
    cases.push(("both flags".into(), Box::new(put32(entry(1, 20), 3)), RecordFault::Reserved));
    cases.push(("reserved".into(), Box::new(put32(entry(1, 44), 1)), RecordFault::Reserved));
    cases.push(("reserved tail".into(), Box::new(put32(entry(1, 90), 1)), RecordFault::Reserved));
    cases.push(("header range".into(), Box::new(put32(entry(1, 12), u32::MAX)), RecordFault::HeaderOutOfRange));
    cases.push(("size vs header".into(), Box::new(put64(entry(1, 24), 99_999)), RecordFault::BadHeader));
    cases.push(("status len".into(), Box::new(|i: &mut Vec<u8>| i[entry(1, 6)] = 3), RecordFault::BadHeader));
    cases.push(("sums range".into(), Box::new(put32(entry(1, 16), index_len - 10)), RecordFault::SumsOutOfRange));
    cases.push(("data past end".into(), Box::new(put32(entry(1, 32), block_count - 1)), RecordFault::DataOutOfRange));
    cases.push(("data in index".into(), Box::new(put32(entry(1, 32), 1)), RecordFault::DataOutOfRange));
    cases.push(("span too short".into(), Box::new(put32(entry(1, 40), 1)), RecordFault::BadSpan));
    cases.push(("span past end".into(), Box::new(put32(entry(1, 40), u32::MAX)), RecordFault::BadSpan));
    cases.push((
        "path order".into(),
        Box::new(|i: &mut Vec<u8>| {
            // Record 1's path becomes record 0's: not strictly increasing.
            let p0 = i[entry(0, 0)..entry(0, 6)].to_vec();
            i[entry(1, 0)..entry(1, 6)].copy_from_slice(&p0);
        }),
        RecordFault::NotSorted,
    ));
    cases.push((
        "path bytes".into(),
        Box::new(move |i: &mut Vec<u8>| {
            let off = u32::from_le_bytes(i[entry(1, 0)..entry(1, 4)].try_into().unwrap()) as usize;
            i[BLOCK_SIZE + off] = b'x';
        }),
        RecordFault::BadPath(PathFault::NotAbsolute),
    ));
    for (name, corrupt, fault) in &cases {
        let mut image = good.clone();
        corrupt(&mut image);
        reseal_index(&mut image);
        assert_eq!(Image::parse(&image).unwrap_err(), FormatError::Record { index: 1, fault: *fault }, "{name}");
    }
}

/// Random corruption of the head, sealed or not: never a panic; whatever
/// parses still answers lookups without panicking.
#[test]
fn random_corruption_never_panics() {
    let good = sample();
    let sb = Superblock::parse(&good).unwrap();
    let head_len = sb.head_len() as usize;
    let mut rng = Rng(0x1234_5678);
    let mut refused = 0;
    for round in 0..20_000 {
        let mut image = good.clone();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            // Mostly the superblock's fields and the index.
            let at = if rng.below(4) == 0 {
                rng.below(SUPERBLOCK_LEN)
            } else {
                BLOCK_SIZE + rng.below(head_len - BLOCK_SIZE)
            };
            image[at] = rng.next() as u8;
        }
        let sealed = round % 2 == 0;
        if sealed {
            if Superblock::parse(&image).is_ok() {
                reseal_index(&mut image);
            } else {
                reseal_superblock(&mut image);
            }
        }
        match Image::parse(&image) {
            Ok(img) => {
                for r in img.files() {
                    let _ = img.lookup(r.path.as_bytes());
                    let _ = img.is_directory(r.path.as_bytes());
                    let at = r.data_offset() as usize;
                    let _ = image.get(at..at + r.size as usize).map(|d| r.verify(d));
                    let _ = r.segment_sum(0, r.size.min(3000), |_, _| None);
                }
            }
            Err(_) => refused += 1,
        }
        if !sealed {
            assert!(
                Image::parse(&image).is_err() || image[..head_len] == good[..head_len],
                "unsealed corruption must be refused"
            );
        }
    }
    assert!(refused > 10_000, "{refused}");
    // Arbitrary bytes as an image.
    for len in [0usize, 1, 100, 4096, 8192, 20_000] {
        for _ in 0..200 {
            let mut junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 8 && rng.below(2) == 0 {
                junk[..8].copy_from_slice(&MAGIC);
            }
            assert!(Image::parse(&junk).is_err());
        }
    }
}
