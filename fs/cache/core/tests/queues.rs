//! Boot and loads through real `blk-protocol` queues in memory, with a
//! driver stand-in that answers in reverse order.

use fs_cache_core::queues::{send_requests, take_boot_responses, take_responses};
use fs_cache_core::{Boot, BootStatus, Cache, Completion, Config, DiskInfo, Open, Response, Status, SECTOR_SIZE};
use lib_blk_protocol::{RequestConsumer, RequestProducer, ResponseConsumer, ResponseProducer, QUEUE_REGION_SIZE};
use std::fs;

#[repr(C, align(4096))]
struct Region([u8; QUEUE_REGION_SIZE]);

fn region() -> Box<Region> {
    Box::new(Region([0; QUEUE_REGION_SIZE]))
}

/// Answers everything in the request queue, last first, copying from `image`.
fn drive(rx: &mut RequestConsumer, tx: &mut ResponseProducer, image: &[u8], data: &mut [u8], base: usize) -> usize {
    let mut batch = Vec::new();
    while let Some(r) = rx.dequeue().unwrap() {
        batch.push(r);
    }
    for r in batch.iter().rev() {
        let src = r.sector as usize * SECTOR_SIZE;
        let len = r.count as usize * SECTOR_SIZE;
        let at = r.offset as usize - base;
        data[at..at + len].copy_from_slice(&image[src..src + len]);
        tx.enqueue(Response { id: r.id, status: Status::Ok as u32 }).unwrap();
    }
    batch.len()
}

#[test]
fn boot_and_load_through_the_queues() {
    let dir = std::env::temp_dir().join(format!("site-cache-queues-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("root/img")).unwrap();
    fs::write(dir.join("root/index.html"), b"<img src=\"img/a.png\"><img src=img/b.png>").unwrap();
    fs::write(dir.join("root/img/a.png"), vec![7u8; 70_000]).unwrap();
    fs::write(dir.join("root/img/b.png"), vec![9u8; 5_000]).unwrap();
    fs_builder::build(&dir.join("root"), &dir.join("site.img"), &fs_builder::Options::default()).unwrap();
    let image = fs::read(dir.join("site.img")).unwrap();
    let _ = fs::remove_dir_all(&dir);

    let (mut qreq, mut qresp) = (region(), region());
    // SAFETY: both regions outlive the handles and are used only through
    // them, one producer and one consumer each.
    let (mut req_tx, mut req_rx, mut resp_tx, mut resp_rx) = unsafe {
        (
            RequestProducer::new(qreq.0.as_mut_ptr()),
            RequestConsumer::new(qreq.0.as_mut_ptr(), ()),
            ResponseProducer::new(qresp.0.as_mut_ptr()),
            ResponseConsumer::new(qresp.0.as_mut_ptr(), ()),
        )
    };
    let region_size = 1 << 20;
    let mut data = vec![0u8; region_size];
    let disk = DiskInfo { capacity: (image.len() / SECTOR_SIZE) as u64, read_only: true, max_request_sectors: 8 };
    let mut boot = Boot::new(Config { region_size, disk }).unwrap();
    loop {
        send_requests(&mut boot, &mut req_tx);
        assert!(drive(&mut req_rx, &mut resp_tx, &image, &mut data, 0) > 0, "boot stalled");
        if take_boot_responses(&mut boot, &mut resp_rx, &data).unwrap() == BootStatus::Ready {
            break;
        }
    }
    let head_area = boot.head_area().unwrap();
    let (head, arena) = data.split_at_mut(head_area);
    let mut cache: Cache<16, 8, 16> = boot.finish(head).unwrap();
    let page = cache.lookup(b"/index.html").unwrap();
    let Open::Loading(ticket) = cache.open(&page, arena) else { panic!() };
    let mut loaded = Vec::new();
    while loaded.is_empty() {
        // One group (1 + 18 + 2 blocks), one block per request, 8 at a time.
        assert!(send_requests(&mut cache, &mut req_tx) <= 8);
        drive(&mut req_rx, &mut resp_tx, &image, arena, head_area);
        take_responses(&mut cache, &mut resp_rx, |c| loaded.push(c)).unwrap();
        loaded.retain(|c| *c != Completion::Progress);
    }
    assert_eq!(loaded, [Completion::Loaded(ticket)]);
    assert_eq!(page.record().span_blocks, 21);
    assert_eq!(cache.stats().requests, 21);
    for (path, byte, len) in [("/img/a.png", 7u8, 70_000), ("/img/b.png", 9, 5_000)] {
        let Open::Ready(r) = cache.open(&cache.lookup(path.as_bytes()).unwrap(), arena) else { panic!("{path}") };
        assert_eq!(cache.data(&r, arena), &vec![byte; len][..]);
        assert!(cache.release(r.pin));
    }
}

#[test]
fn footprint_is_as_documented() {
    // `Cache` documents about 58 * GROUPS + 8 * FILES + 12 * INFLIGHT
    // bytes: what a PD's stack must hold.
    let size = std::mem::size_of::<Cache<'static, 1024, 64, 16384>>();
    eprintln!("Cache<1024, 64, 16384>: {size} bytes");
    assert!(size <= 64 * 1024 + 8 * 16384 + 2048, "{size}");
    assert!(size >= 56 * 1024 + 8 * 16384, "{size}");
}
