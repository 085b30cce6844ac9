//! `fs-format` and `fs-cache-core`: the site image reader (superblock, path
//! index, stored headers, piece sums) and the file cache that boots from a
//! disk holding such an image and loads files from it.
//!
//! Input: a mode byte, then either the raw image (mode bit 0 clear), or
//! the parts of one the harness assembles (set): the block count's
//! slack, the file count, the index bytes and the data area, with the
//! index's and the superblock's SHA-256 computed here so that the fuzzer
//! reaches the records behind them. A piece of operations for the cache
//! comes before either.
//!
//! Checks on an image that parses: the superblock encodes back to block 0
//! byte for byte; every record the index holds decodes, lies inside the
//! index and the data area as `fs/FORMAT.md` requires (path, header and
//! sums in the string area, data inside its span, span inside the data
//! area, stored header a 200 header with this size), and encodes back to
//! its 96 bytes; paths are sorted and unique, each is found by `lookup`
//! and `position` at its place, and each of its parent directories is a
//! directory; `segment_sum` refuses exactly the segments past the end.
//!
//! The cache then boots from the disk through its block protocol
//! (responses in fuzzed order, some failing), and every request it makes
//! stays inside the region and the disk; it boots exactly when the image
//! parses and fits; an `Open::Ready` file is always its record's data
//! (length and SHA-256, checked here again).

#![no_main]

use fs_cache_core::{
    Boot, BootStatus, Cache, CacheError, Config, DiskInfo, Open, Request, Response, Status, SECTOR_SIZE,
};
use fs_format::sums::piece_count;
use fs_format::{
    blocks_for, path::check_path, Entry, FileRecord, Image, Superblock, BLOCK_SIZE, ENTRY_SIZE, INDEX_FIRST_BLOCK,
};
use fuzz::Input;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Largest image the harness assembles: 64 blocks.
const MAX_DISK: usize = 64 * BLOCK_SIZE;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    let ops = input.piece();
    let disk = if mode & 1 == 0 { input.rest().to_vec() } else { assemble(&mut input) };
    let image = Image::parse(&disk);
    if let Ok(image) = &image {
        check_image(image, &disk);
    }
    REGION.with_borrow_mut(|region| boot_and_load(&disk, image.is_ok(), mode, ops, region));
});

thread_local! {
    /// The cache's region, kept from one input to the next (zeroed to the
    /// input's size each time): a fresh allocation of up to 65 blocks per
    /// input was a tenth of the target's time (mapped, faulted in, zeroed,
    /// unmapped).
    static REGION: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An image from fuzzed parts, with correct geometry and hashes (unless the
/// fuzzer asks to break them).
fn assemble(input: &mut Input<'_>) -> Vec<u8> {
    let slack = input.u8();
    let file_count = u32::from(input.u16());
    let index = input.long_piece(16 * BLOCK_SIZE).to_vec();
    let data = input.take(MAX_DISK);
    let index_blocks = blocks_for(index.len() as u64) as u32;
    let data_first_block = INDEX_FIRST_BLOCK + index_blocks;
    let data_blocks = blocks_for(data.len() as u64) as u32;
    let sb = Superblock {
        block_count: data_first_block + data_blocks + u32::from(slack & 3),
        index_len: index.len() as u32,
        // Mostly as many as the index can hold.
        file_count: if slack & 0x80 == 0 { file_count % (index.len() / ENTRY_SIZE + 1) as u32 } else { file_count },
        data_first_block,
        index_sha256: Sha256::digest(&index).into(),
    };
    let mut disk = sb.encode().to_vec();
    disk.extend_from_slice(&index);
    disk.resize(data_first_block as usize * BLOCK_SIZE, 0);
    disk.extend_from_slice(data);
    disk.resize(sb.block_count as usize * BLOCK_SIZE, 0);
    disk
}

fn check_image(image: &Image<'_>, disk: &[u8]) {
    let sb = *image.superblock();
    assert_eq!(Superblock::parse(disk), Ok(sb));
    assert_eq!(sb.encode()[..], disk[..BLOCK_SIZE], "the superblock encodes back to block 0");
    let index_start = INDEX_FIRST_BLOCK as usize * BLOCK_SIZE;
    let index = &disk[index_start..index_start + sb.index_len as usize];
    let table_end = sb.file_count as usize * ENTRY_SIZE;
    let offset_in_index = |part: &[u8]| -> u32 {
        let at = (part.as_ptr() as usize).wrapping_sub(index.as_ptr() as usize);
        assert!(at >= table_end && at + part.len() <= index.len(), "a record's part lies in the index's string area");
        at as u32
    };
    let mut previous: Option<&str> = None;
    assert_eq!(image.files().count(), image.len() as usize, "every record decodes");
    for (i, record) in image.files().enumerate() {
        let i = i as u32;
        assert_eq!(check_path(record.path.as_bytes()), Ok(record.path));
        assert!(previous.is_none_or(|p| p < record.path), "paths sorted and unique");
        previous = Some(record.path);
        assert!(fs_format::http::check_header(record.header, record.size));
        assert_eq!(record.sums.len() as u64, piece_count(record.size) * 2);
        let data_end = u64::from(record.first_block) + blocks_for(record.size);
        let span_end = u64::from(record.span_first) + u64::from(record.span_blocks);
        assert!(record.first_block >= sb.data_first_block && data_end <= u64::from(sb.block_count));
        assert!(record.span_first <= record.first_block && data_end <= span_end);
        assert!(span_end <= u64::from(sb.block_count));
        // The record encodes back to its entry.
        let entry = Entry {
            path_off: offset_in_index(record.path.as_bytes()),
            path_len: record.path.len() as u16,
            status_len: record.status_len as u16,
            header_off: offset_in_index(record.header),
            header_len: record.header.len() as u32,
            sums_off: offset_in_index(record.sums),
            flags: record.flags,
            size: record.size,
            first_block: record.first_block,
            span_first: record.span_first,
            span_blocks: record.span_blocks,
            last_modified: record.last_modified,
            sha256: *record.sha256,
        };
        let at = i as usize * ENTRY_SIZE;
        assert_eq!(entry.encode()[..], index[at..at + ENTRY_SIZE], "record {i} encodes back to its entry");
        // Found where it is.
        assert_eq!(image.position(record.path.as_bytes()), Some(i));
        assert_eq!(image.lookup(record.path.as_bytes()), Some(record));
        let path = record.path.as_bytes();
        for (slash, _) in path.iter().enumerate().filter(|&(at, &b)| b == b'/' && at > 0) {
            assert!(image.is_directory(&path[..slash]), "a parent of {} is a directory", record.path);
        }
        assert!(image.is_directory(b"/"));
        segment_sums(&record);
    }
    // Lookups of paths that are not stored find nothing.
    for probe in [&b"/"[..], b"", b"/nonexistent", b"//", b"/index.html/"] {
        if let Some(found) = image.lookup(probe) {
            assert_eq!(found.path.as_bytes(), probe);
        }
    }
}

/// `segment_sum` gives a sum exactly for segments inside the file.
fn segment_sums(record: &FileRecord<'_>) {
    let zeros = [0u8; 4096];
    for (offset, len) in [(0, record.size), (1, record.size), (record.size / 2, 3), (record.size, 1), (0, 1461)] {
        let inside = offset.checked_add(len).is_some_and(|end| end <= record.size);
        let read = |_: u64, max: usize| Some(&zeros[..max.min(zeros.len())]);
        let result = record.segment_sum(offset, len, read);
        assert_eq!(result.is_ok(), inside, "segment {offset}+{len} of {}", record.size);
    }
}

/// A region of the cache's size, assembled from what the disk sent.
struct Disk<'d> {
    bytes: &'d [u8],
    capacity: u64,
}

impl Disk<'_> {
    /// Carries out a read request into `region`; its status.
    fn read(&self, request: &Request, region: &mut [u8], fail: bool) -> Status {
        assert_eq!(request.op, 0, "the cache only reads");
        assert!(request.count > 0, "a read of no sector");
        let end = request.sector.checked_add(u64::from(request.count)).expect("sector overflow");
        assert!(end <= self.capacity, "a read past the end of the disk");
        let offset = request.offset as usize;
        let len = request.bytes() as usize;
        let target = region.get_mut(offset..offset + len).expect("a read outside the region");
        if fail {
            return Status::IoError;
        }
        // The disk's bytes, zero past the image's end (the disk may be a
        // little larger than the image).
        let from = (request.sector as usize * SECTOR_SIZE).min(self.bytes.len());
        let stored = &self.bytes[from..(from + len).min(self.bytes.len())];
        let (head, tail) = target.split_at_mut(stored.len());
        head.copy_from_slice(stored);
        tail.fill(0);
        Status::Ok
    }
}

fn boot_and_load(disk: &[u8], parses: bool, mode: u8, ops: &[u8], region: &mut Vec<u8>) {
    let mut ops = Input::new(ops);
    let region_size = BLOCK_SIZE * (2 + usize::from(ops.u8() % 64));
    let max_request_sectors = u32::from(ops.u8() % 17);
    let capacity = blocks_for(disk.len() as u64) * 8 + u64::from(mode >> 6);
    let config = Config { region_size, disk: DiskInfo { capacity, read_only: true, max_request_sectors } };
    let disk = Disk { bytes: disk, capacity };
    let mut boot = match Boot::new(config) {
        Ok(boot) => boot,
        Err(e) => {
            assert!(max_request_sectors == 0 || capacity < 8, "a boot refused with a region of {region_size}: {e:?}");
            return;
        }
    };
    region.clear();
    region.resize(region_size, 0);
    let region = &mut region[..];
    let fail_boot = mode & 2 != 0;
    let mut failed = false;
    // Answer in the order the requests came, or last first.
    let reverse = mode & 4 != 0;
    let status = loop {
        let mut batch = Vec::new();
        while let Some(request) = boot.next_request() {
            batch.push(request);
        }
        if reverse {
            batch.reverse();
        }
        if batch.is_empty() {
            break Err(None);
        }
        let mut result = Ok(BootStatus::Pending);
        for (n, request) in batch.iter().enumerate() {
            assert!(
                request.offset + request.bytes() <= region_size as u64 / 2,
                "the head goes in the first half of the region"
            );
            let fail = fail_boot && n == batch.len() - 1;
            let status = disk.read(request, region, fail);
            failed |= fail;
            result = boot.complete(Response::new(request.id, status), region);
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(BootStatus::Ready) => break Ok(()),
            Ok(BootStatus::Pending) => {}
            Err(e) => break Err(Some(e)),
        }
    };
    match status {
        Ok(()) => {}
        Err(Some(CacheError::Io { .. })) => return assert!(failed),
        Err(Some(CacheError::CorruptImage(_))) => return assert!(!parses || Superblock::parse(disk.bytes).is_err()),
        Err(Some(_)) => return,
        Err(None) => panic!("the boot stopped asking without an answer"),
    }
    let head_area = boot.head_area().expect("a ready boot knows its head");
    assert!(head_area <= region_size / 2);
    let (head, arena) = region.split_at_mut(head_area);
    let cache = boot.finish::<8, 4, 64>(head);
    let mut cache = match cache {
        Ok(cache) => cache,
        Err(CacheError::CorruptImage(_)) => return assert!(!parses, "the cache refused an image that parses"),
        Err(CacheError::TooManyFiles { .. }) => return,
        Err(e) => panic!("boot finished with {e:?}"),
    };
    assert!(parses, "the cache booted from an image that does not parse");
    load_files(&mut cache, &disk, arena, &mut ops);
}

/// Opens files the operations name, serving the cache's reads, and checks
/// every file it says is ready.
fn load_files(cache: &mut Cache<'_, 8, 4, 64>, disk: &Disk<'_>, arena: &mut [u8], ops: &mut Input<'_>) {
    let files = cache.image().len();
    if files == 0 {
        return;
    }
    let arena_start = cache.arena_start();
    let mut pins = Vec::new();
    let mut turns = 0;
    while !ops.is_empty() && turns < 64 {
        turns += 1;
        let op = ops.u8();
        let file = cache.file(u32::from(op) % files).expect("every position names a file");
        match cache.open(&file, arena) {
            Open::Ready(ready) => {
                let data = cache.data(&ready, arena);
                assert_eq!(data.len() as u64, file.record().size);
                assert_eq!(ready.offset + ready.len, ready.offset + data.len());
                let hash: [u8; 32] = Sha256::digest(data).into();
                assert_eq!(&hash, file.record().sha256, "a ready file is its record's data");
                pins.push(ready.pin);
            }
            Open::Loading(_) | Open::Busy | Open::Corrupt { .. } | Open::IoError { .. } | Open::TooLarge => {}
        }
        if op & 0x80 != 0 {
            if let Some(pin) = pins.pop() {
                cache.release(pin);
            }
        }
        // Serve what the cache asks, answering in order; fail some.
        while let Some(request) = cache.next_request() {
            let offset = request.offset as usize;
            assert!(offset >= arena_start, "a load below the arena");
            let mut into = vec![0u8; request.bytes() as usize];
            let moved = Request { offset: 0, ..request };
            let status = disk.read(&moved, &mut into, op & 0x40 != 0 && ops.bool());
            let at = offset - arena_start;
            arena.get_mut(at..at + into.len()).expect("a load outside the arena").copy_from_slice(&into);
            let _ = cache.complete(Response::new(request.id, status));
        }
    }
    for pin in pins {
        cache.release(pin);
    }
}
