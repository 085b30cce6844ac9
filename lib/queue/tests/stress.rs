//! Two threads, one on each side of shared regions, as two PDs on two
//! cores: nothing lost, duplicated or reordered, and (with notifications)
//! no lost wake-up; with buffer descriptors and with other entry types.

mod common;

use common::{with_timeout, Notification, Region, Small, Wide, HEAD, TAIL};
use lib_queue::{region_size, region_size_for, BufferDesc, Consumer, Entry, Producer, ReceiverQueues, SenderQueues};
use std::fmt::Debug;
use std::hint::spin_loop;
use std::thread;
use std::time::Instant;

const MESSAGES: u64 = 1_000_000;
const TIMEOUT_S: u64 = 300;

/// Waits a little, giving the core away now and then (the two threads may
/// share one core with other work).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if (*spins).is_multiple_of(64) {
        thread::yield_now();
    } else {
        spin_loop();
    }
}

/// The descriptor carrying sequence number `seq`, in every field.
fn numbered(seq: u64) -> BufferDesc {
    BufferDesc { offset: seq, len: (seq as u32).wrapping_mul(0x9e37_79b9) >> 8, cookie: !(seq as u32) }
}

#[test]
fn busy_polling_one_million_descriptors() {
    with_timeout(TIMEOUT_S, || busy_polling(numbered, usize::MAX));
}

#[test]
fn busy_polling_one_million_wide_entries() {
    with_timeout(TIMEOUT_S, || busy_polling(Wide::numbered, u64::MAX));
}

/// One thread enqueues `numbered(0..MESSAGES)`, singly and in batches, the
/// other dequeues and checks them; both spin when they cannot go on.
fn busy_polling<T>(numbered: fn(u64) -> T, bounds: T::Bounds)
where
    T: Entry + PartialEq + Debug + Send,
    T::Bounds: Send,
{
    const N: usize = 64;
    let region = Region::new(region_size_for::<T>(N));
    // Start near the top so that the indices wrap during the run.
    let start = u32::MAX - 300_000;
    region.write_u32(TAIL, start);
    region.write_u32(HEAD, start);
    let mut tx = region.producer_of::<N, T>();
    let mut rx = region.consumer_of::<N, T>(bounds);

    let began = Instant::now();
    thread::scope(|s| {
        s.spawn(move || {
            let mut seq = 0;
            let mut spins = 0;
            let mut batch = Vec::with_capacity(8);
            while seq < MESSAGES {
                // Single enqueues and batches of up to 8, alternately.
                batch.clear();
                let size = if seq % 3 == 0 { 1 } else { (seq % 8 + 1).min(MESSAGES - seq) };
                batch.extend((seq..seq + size).map(numbered));
                let sent = tx.enqueue_batch(&batch).unwrap();
                if sent == 0 {
                    backoff(&mut spins);
                }
                seq += sent as u64;
            }
        });
        s.spawn(move || {
            let mut expected = 0;
            let mut spins = 0;
            while expected < MESSAGES {
                match rx.dequeue().unwrap() {
                    Some(d) => {
                        assert_eq!(d, numbered(expected), "lost, duplicated or reordered");
                        expected += 1;
                    }
                    None => backoff(&mut spins),
                }
            }
            assert_eq!(rx.dequeue(), Ok(None), "nothing more than was sent");
        });
    });
    assert_eq!(region.read_u32(HEAD), start.wrapping_add(MESSAGES as u32));
    eprintln!("busy polling: {MESSAGES} entries of {} bytes in {:?}", size_of::<T::Slot>(), began.elapsed());
}

/// A full sDDF-style data flow: the receiver lends `N` buffers through
/// `free`; the sender writes a sequence number into each buffer it takes and
/// passes it on through `active`; the receiver checks the buffer and gives
/// it back. Both block on a notification when their input queue is empty,
/// using the signal-request protocol: a lost wake-up leaves both blocked and
/// the timeout fails the test.
fn notified_flow<const N: usize>(messages: u64) {
    const BUF: usize = 64;
    let data = Region::new(N * BUF);
    let free = Region::new(region_size(N));
    let active = Region::new(region_size(N));
    // SAFETY: the regions are page-aligned, large enough, outlive the
    // handles (dropped at the end of the scope below) and are otherwise
    // accessed atomically.
    let mut tx = unsafe { SenderQueues::<N>::new(free.ptr(), active.ptr(), data.len()) };
    // SAFETY: as above.
    let mut rx = unsafe { ReceiverQueues::<N>::new(free.ptr(), active.ptr(), data.len()) };
    let (sender_wakeup, receiver_wakeup) = (Notification::default(), Notification::default());

    for i in 0..N {
        let buf = BufferDesc { offset: (i * BUF) as u64, len: BUF as u32, cookie: i as u32 };
        rx.free.enqueue(buf).unwrap();
    }

    let began = Instant::now();
    let (sender_waits, receiver_waits) = thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut waits = 0u64;
            let mut seq = 0;
            while seq < messages {
                match tx.free.dequeue().unwrap() {
                    Some(buf) => {
                        assert_eq!(buf.len as usize, BUF);
                        let bytes = data.ptr().wrapping_add(buf.offset as usize).cast::<u64>();
                        // SAFETY: `buf` is within the data region (checked by
                        // `dequeue`) and 8-aligned; this thread owns it until
                        // it enqueues it on `active` (Release).
                        unsafe { bytes.write(seq) };
                        tx.active.enqueue(BufferDesc { len: 8, cookie: seq as u32, ..buf }).unwrap();
                        seq += 1;
                        if tx.active.should_signal() {
                            receiver_wakeup.signal();
                        }
                    }
                    None => {
                        if tx.free.request_signal_if_empty().unwrap() {
                            sender_wakeup.wait();
                            waits += 1;
                        }
                    }
                }
            }
            waits
        });
        let receiver = s.spawn(|| {
            let mut waits = 0u64;
            let mut expected = 0;
            while expected < messages {
                match rx.active.dequeue().unwrap() {
                    Some(buf) => {
                        assert_eq!((buf.len, buf.cookie), (8, expected as u32));
                        let bytes = data.ptr().wrapping_add(buf.offset as usize).cast::<u64>();
                        // SAFETY: as for the sender; this thread owns the
                        // buffer from its dequeue (Acquire) to its enqueue.
                        assert_eq!(unsafe { bytes.read() }, expected, "buffer contents");
                        expected += 1;
                        rx.free.enqueue(BufferDesc { len: BUF as u32, ..buf }).unwrap();
                        // Signal per batch of 8 returned buffers; always
                        // before going to sleep (below).
                        if expected.is_multiple_of(8) && rx.free.should_signal() {
                            sender_wakeup.signal();
                        }
                    }
                    None => {
                        if rx.free.should_signal() {
                            sender_wakeup.signal();
                        }
                        if rx.active.request_signal_if_empty().unwrap() {
                            receiver_wakeup.wait();
                            waits += 1;
                        }
                    }
                }
            }
            assert_eq!(rx.active.dequeue(), Ok(None), "nothing more than was sent");
            waits
        });
        (sender.join().unwrap(), receiver.join().unwrap())
    });
    eprintln!(
        "notified flow, N = {N}: {messages} buffers in {:?}; the sender slept {sender_waits} times, the receiver {receiver_waits} times",
        began.elapsed()
    );
}

#[test]
fn notified_flow_one_million_buffers() {
    with_timeout(TIMEOUT_S, || notified_flow::<64>(MESSAGES));
}

#[test]
fn notified_flow_tiny_queues_sleep_often() {
    with_timeout(TIMEOUT_S, || notified_flow::<2>(200_000));
}

/// A block-style flow on the generic path: a client sends [`Wide`] requests,
/// keeping at most `N` outstanding (so the response queue always has room),
/// and a server answers each with a [`Small`] response carrying its
/// sequence number. Both sleep on a notification when their input queue is
/// empty, with the signal-request protocol; a lost wake-up stalls both and
/// the timeout fails the test.
fn notified_request_response<const N: usize>(messages: u64) {
    let requests = Region::new(region_size_for::<Wide>(N));
    let responses = Region::new(region_size_for::<Small>(N));
    let (client_wakeup, server_wakeup) = (Notification::default(), Notification::default());
    let mut client_tx: Producer<'_, N, Wide> = requests.producer_of();
    let mut server_rx: Consumer<'_, N, Wide> = requests.consumer_of(messages);
    let mut server_tx: Producer<'_, N, Small> = responses.producer_of();
    let mut client_rx: Consumer<'_, N, Small> = responses.consumer_of(());

    let began = Instant::now();
    let (client_waits, server_waits) = thread::scope(|s| {
        let client = s.spawn(|| {
            let (mut waits, mut sent, mut answered) = (0u64, 0u64, 0u64);
            while answered < messages {
                // Send while fewer than N requests are outstanding.
                while sent < messages && sent - answered < N as u64 {
                    client_tx.enqueue(Wide::numbered(sent)).unwrap();
                    sent += 1;
                }
                if client_tx.should_signal() {
                    server_wakeup.signal();
                }
                match client_rx.dequeue().unwrap() {
                    Some(r) => {
                        assert_eq!(r, Small { id: answered as u32, status: Wide::tag_of(answered) });
                        answered += 1;
                    }
                    None => {
                        if client_rx.request_signal_if_empty().unwrap() {
                            client_wakeup.wait();
                            waits += 1;
                        }
                    }
                }
            }
            assert_eq!(client_rx.dequeue(), Ok(None), "one response per request");
            waits
        });
        let server = s.spawn(|| {
            let (mut waits, mut served) = (0u64, 0u64);
            while served < messages {
                match server_rx.dequeue().unwrap() {
                    Some(w) => {
                        assert_eq!(w, Wide::numbered(served), "lost, duplicated or reordered");
                        server_tx.enqueue(Small { id: w.cookie, status: w.tag }).unwrap();
                        served += 1;
                        // Signal per batch of 4 answers; always before sleeping.
                        if served.is_multiple_of(4) && server_tx.should_signal() {
                            client_wakeup.signal();
                        }
                    }
                    None => {
                        if server_tx.should_signal() {
                            client_wakeup.signal();
                        }
                        if server_rx.request_signal_if_empty().unwrap() {
                            server_wakeup.wait();
                            waits += 1;
                        }
                    }
                }
            }
            if server_tx.should_signal() {
                client_wakeup.signal();
            }
            waits
        });
        (client.join().unwrap(), server.join().unwrap())
    });
    eprintln!(
        "notified requests and responses, N = {N}: {messages} in {:?}; the client slept {client_waits} times, the server {server_waits} times",
        began.elapsed()
    );
}

#[test]
fn notified_requests_and_responses_one_million() {
    with_timeout(TIMEOUT_S, || notified_request_response::<64>(MESSAGES));
}

#[test]
fn notified_requests_and_responses_tiny_queues_sleep_often() {
    with_timeout(TIMEOUT_S, || notified_request_response::<2>(200_000));
}
