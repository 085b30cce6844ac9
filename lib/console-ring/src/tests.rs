extern crate std;

use super::*;
use core::sync::atomic::Ordering;
use std::boxed::Box;
use std::sync::Arc;
use std::vec::Vec;

fn region() -> Box<ConsoleRegion> {
    Box::new(ConsoleRegion::new())
}

#[test]
fn capacity_is_a_power_of_two_that_fits_the_page() {
    assert_eq!(CAPACITY, 2048);
    const { assert!(HEADER_SIZE + CAPACITY <= REGION_SIZE) };
}

#[test]
fn bytes_come_out_in_order() {
    let r = region();
    let (mut w, mut rd) = (Writer::new(&r), Reader::new(&r));
    assert!(rd.is_empty());
    assert_eq!(w.write(b"hello "), 6);
    assert_eq!(w.write(b"world"), 5);
    assert_eq!(w.pending(), 11);
    let mut buf = [0; 4];
    assert_eq!(rd.read(&mut buf), 4);
    assert_eq!(&buf, b"hell");
    let mut rest = [0; 64];
    let n = rd.read(&mut rest);
    assert_eq!(&rest[..n], b"o world");
    assert!(rd.is_empty());
    assert_eq!(w.pending(), 0);
    assert_eq!(rd.read(&mut rest), 0);
}

#[test]
fn a_full_ring_drops_and_counts_the_excess() {
    let r = region();
    let (mut w, mut rd) = (Writer::new(&r), Reader::new(&r));
    let big = [b'x'; CAPACITY + 100];
    assert_eq!(w.write(&big), CAPACITY);
    assert_eq!(w.free(), 0);
    assert_eq!(w.write(b"more"), 0);
    assert_eq!(w.dropped(), 104);
    assert_eq!(rd.dropped(), 104);
    let mut buf = [0; 10];
    assert_eq!(rd.read(&mut buf), 10);
    assert_eq!(w.free(), 10);
    assert_eq!(w.write(b"0123456789abc"), 10);
    assert_eq!(rd.dropped(), 107);
}

#[test]
fn indices_wrap_around_u32() {
    let r = region();
    let start = u32::MAX - 5;
    r.indices().0.store(start, Ordering::Relaxed);
    r.indices().1.store(start, Ordering::Relaxed);
    let (mut w, mut rd) = (Writer::new(&r), Reader::new(&r));
    let mut out = Vec::new();
    for round in 0..3u8 {
        let line: Vec<u8> = (0..1500u32).map(|i| (i as u8).wrapping_add(round)).collect();
        assert_eq!(w.write(&line), line.len());
        let mut buf = [0; 700];
        out.clear();
        loop {
            let n = rd.read(&mut buf);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, line);
    }
    assert!(r.indices().0.load(Ordering::Relaxed) < start, "head wrapped");
}

#[test]
fn a_corrupt_tail_makes_the_writer_drop_not_overwrite() {
    let r = region();
    let mut w = Writer::new(&r);
    w.write(b"abc");
    // A hostile reader claims to have read far more than was written.
    r.indices().1.store(1_000_000, Ordering::Relaxed);
    assert_eq!(w.free(), 0);
    assert_eq!(w.write(b"defg"), 0);
    assert_eq!(w.dropped(), 4);
    // ... or sets it just behind head, which is a legal (if odd) state.
    r.indices().1.store(3, Ordering::Relaxed);
    assert_eq!(w.write(b"defg"), 4);
}

#[test]
fn a_corrupt_head_makes_the_reader_resync_within_bounds() {
    let r = region();
    let (mut w, mut rd) = (Writer::new(&r), Reader::new(&r));
    w.write(b"abc");
    for bad in [u32::MAX, 0x8000_0000, CAPACITY as u32 + 1] {
        r.indices().0.store(bad, Ordering::Relaxed);
        let mut buf = [0; 16];
        assert_eq!(rd.read(&mut buf), 0, "head {bad:#x}");
        assert!(rd.is_empty());
    }
    assert_eq!(rd.resyncs(), 3);
    // A head that is merely ahead by at most CAPACITY is believed: the
    // reader reads garbage, but only from inside the data area.
    r.indices().0.store(r.indices().0.load(Ordering::Relaxed).wrapping_add(CAPACITY as u32), Ordering::Relaxed);
    let mut all = [0; CAPACITY + 8];
    assert_eq!(rd.read(&mut all), CAPACITY);
}

#[test]
fn the_writer_keeps_its_own_head() {
    let r = region();
    let (mut w, mut rd) = (Writer::new(&r), Reader::new(&r));
    w.write(b"abc");
    // A hostile reader rewinds the published head: the writer carries on
    // from its private position and republishes it.
    r.indices().0.store(0, Ordering::Relaxed);
    w.write(b"d");
    let mut buf = [0; 8];
    let n = rd.read(&mut buf);
    assert_eq!(&buf[..n], b"abcd");
}

#[test]
fn two_threads_stream_a_megabyte_without_loss_or_reordering() {
    const TOTAL: usize = 1 << 20;
    let r = Arc::new(ConsoleRegion::new());
    let writer_region = Arc::clone(&r);
    let writer = std::thread::spawn(move || {
        let mut w = Writer::new(&writer_region);
        let mut sent = 0;
        while sent < TOTAL {
            // Chunks of varying size; write only what fits so nothing drops.
            let want = (sent % 97 + 1).min(TOTAL - sent).min(w.free());
            let chunk: Vec<u8> = (sent..sent + want).map(|i| (i % 251) as u8).collect();
            assert_eq!(w.write(&chunk), want);
            sent += want;
            if want == 0 {
                std::thread::yield_now();
            }
        }
        w.dropped()
    });
    let mut rd = Reader::new(&r);
    let mut got = 0;
    let mut buf = [0; 313];
    while got < TOTAL {
        let n = rd.read(&mut buf);
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, ((got + i) % 251) as u8, "byte {} out of order", got + i);
        }
        got += n;
        if n == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(writer.join().unwrap(), 0);
    assert_eq!(rd.resyncs(), 0);
    assert!(rd.is_empty());
}
