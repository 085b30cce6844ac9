//! The client's queues against a test demultiplexer on the other ends,
//! in host memory.

use super::*;
use shared_queue::{Consumer, Producer};
use std::alloc::{alloc_zeroed, Layout};
use std::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

/// A data region both sides of the test see.
#[derive(Clone)]
struct Mem(Rc<RefCell<Vec<u8>>>);

impl Mem {
    fn new(len: usize) -> Self {
        Mem(Rc::new(RefCell::new(std::vec![0; len])))
    }
}

impl DataRegion for Mem {
    fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        match self.0.borrow().get(offset..offset + dst.len()) {
            Some(src) => {
                dst.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
    fn copy_in(&self, offset: usize, src: &[u8]) -> bool {
        match self.0.borrow_mut().get_mut(offset..offset + src.len()) {
            Some(dst) => {
                dst.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// A leaked, zeroed, page-aligned region of `size` bytes.
fn region(size: usize) -> usize {
    let layout = Layout::from_size_align(size, 4096).unwrap();
    // SAFETY: non-zero size; leaked, so valid for the rest of the test run.
    let ptr = unsafe { alloc_zeroed(layout) };
    assert!(!ptr.is_null());
    ptr as usize
}

/// The demultiplexer's ends of one client's queues.
struct Mux {
    rx_data: Mem,
    tx_data: Mem,
    rx_free: Consumer<'static, RX_QUEUE_CAPACITY>,
    rx_active: Producer<'static, RX_QUEUE_CAPACITY>,
    tx_active: Consumer<'static, TX_QUEUE_CAPACITY>,
    tx_free: Producer<'static, TX_QUEUE_CAPACITY>,
}

impl Mux {
    fn write_rx(&self, offset: usize, bytes: &[u8]) {
        assert!(self.rx_data.copy_in(offset, bytes));
    }

    fn read_tx(&self, offset: usize, len: usize) -> Vec<u8> {
        let mut out = std::vec![0u8; len];
        assert!(self.tx_data.copy_out(offset, &mut out));
        out
    }

    fn deliver(&mut self, offset: u64, len: u32) {
        self.rx_active.enqueue(BufferDesc { offset, len, cookie: 0 }).unwrap();
    }

    fn returned_buffers(&mut self) -> Vec<u64> {
        let mut out = std::vec::Vec::new();
        while let Ok(Some(desc)) = self.rx_free.dequeue() {
            assert_eq!(desc.len as usize, RX_BUFFER_SIZE);
            out.push(desc.offset);
        }
        out
    }
}

fn setup() -> (ClientQueues<Mem>, Mux) {
    let (rx_data, tx_data) = (Mem::new(RX_DATA_SIZE), Mem::new(TX_DATA_SIZE as usize));
    let regions = Regions {
        rx_data: 0,
        tx_data: 0,
        rx_free: region(ClientRegion::RxFree.size() as usize),
        rx_active: region(ClientRegion::RxActive.size() as usize),
        tx_free: region(ClientRegion::TxFree.size() as usize),
        tx_active: region(ClientRegion::TxActive.size() as usize),
    };
    // SAFETY: each region is leaked, zeroed, page-aligned and of its size;
    // the client's and the test demultiplexer's handles are the only users.
    unsafe {
        let mux = Mux {
            rx_data: rx_data.clone(),
            tx_data: tx_data.clone(),
            rx_free: Consumer::new(regions.rx_free as *mut u8, RX_DATA_SIZE),
            rx_active: Producer::new(regions.rx_active as *mut u8),
            tx_active: Consumer::new(regions.tx_active as *mut u8, TX_SPACE_LEN),
            tx_free: Producer::new(regions.tx_free as *mut u8),
        };
        (ClientQueues::new(regions, rx_data, tx_data), mux)
    }
}

#[test]
fn every_receive_buffer_is_lent_once() {
    let (mut client, mut mux) = setup();
    client.lend_receive_buffers();
    let lent = mux.returned_buffers();
    assert_eq!(lent.len(), RX_BUFFERS);
    assert!(lent.iter().enumerate().all(|(i, &o)| o == (i * RX_BUFFER_SIZE) as u64));
}

#[test]
fn a_frame_is_copied_out_and_its_buffer_returned() {
    let (mut client, mut mux) = setup();
    let frame: Vec<u8> = (0..100u8).collect();
    mux.write_rx(5 * RX_BUFFER_SIZE, &frame);
    mux.deliver(5 * RX_BUFFER_SIZE as u64, 100);
    let mut buf = [0u8; 64];
    assert_eq!(client.receive(&mut buf), Some(Received { len: 100, copied: 64 }));
    assert_eq!(&buf[..], &frame[..64]);
    assert_eq!(mux.returned_buffers(), [5 * RX_BUFFER_SIZE as u64]);
    assert_eq!(client.receive(&mut buf), None);
    assert_eq!(client.counters().rx_frames, 1);
}

#[test]
fn bad_receive_descriptors_are_counted_not_trusted() {
    let (mut client, mut mux) = setup();
    mux.deliver(100, 60); // not a buffer's start: dropped, not returned
    mux.deliver(RX_BUFFER_SIZE as u64, 5); // shorter than a frame: returned
    mux.deliver(2 * RX_BUFFER_SIZE as u64, 2000); // longer than a frame: returned
    mux.deliver(RX_DATA_SIZE as u64, 60); // outside rx_data: dropped
    mux.deliver(u64::MAX - 10, 60);
    mux.write_rx(3 * RX_BUFFER_SIZE, &[7; 60]);
    mux.deliver(3 * RX_BUFFER_SIZE as u64, 60);
    let mut buf = [0u8; 1514];
    assert_eq!(client.receive(&mut buf), Some(Received { len: 60, copied: 60 }));
    assert_eq!(&buf[..60], &[7; 60]);
    assert_eq!(client.counters().rx_bad_descriptors, 5);
    assert_eq!(mux.returned_buffers(), [RX_BUFFER_SIZE as u64, 2 * RX_BUFFER_SIZE as u64, 3 * RX_BUFFER_SIZE as u64]);
}

#[test]
fn frames_go_out_from_slots_that_come_back() {
    let (mut client, mut mux) = setup();
    let frame = [0xabu8; 60];
    assert!(client.send(&frame));
    let desc = mux.tx_active.dequeue().unwrap().unwrap();
    assert_eq!(desc, BufferDesc { offset: tx_offset(TxWindow::Headers, 0), len: 60, cookie: 0 });
    assert_eq!(mux.read_tx(0, 60), frame);
    for _ in 1..TX_BUFFERS {
        assert!(client.send(&frame));
    }
    assert!(!client.send(&frame), "every slot in flight");
    assert_eq!(client.counters().tx_dropped, 1);
    // The demultiplexer returns the first slot, then one twice and some made up.
    mux.tx_free.enqueue(desc).unwrap();
    mux.tx_free.enqueue(desc).unwrap();
    mux.tx_free.enqueue(BufferDesc { offset: tx_offset(TxWindow::Rx, 0), ..desc }).unwrap();
    mux.tx_free.enqueue(BufferDesc { offset: tx_offset(TxWindow::Headers, 7), ..desc }).unwrap();
    mux.tx_free.enqueue(BufferDesc { offset: tx_offset(TxWindow::Headers, TX_DATA_SIZE as u32), ..desc }).unwrap();
    mux.tx_free.enqueue(BufferDesc { offset: u64::MAX, ..desc }).unwrap();
    assert!(client.send(&[1u8; 70]));
    assert_eq!(client.counters().tx_bad_returns, 5);
    assert_eq!(client.in_flight(), TX_BUFFERS);
    let mut last = None;
    while let Ok(Some(d)) = mux.tx_active.dequeue() {
        last = Some(d);
    }
    let last = last.unwrap();
    assert_eq!((last.offset, last.len), (tx_offset(TxWindow::Headers, 0), 70), "slot 0 reused");
    assert_eq!(mux.read_tx(0, 70), [1u8; 70]);
    assert!(!client.send(&[0u8; 13]), "shorter than a frame");
    assert!(!client.send(&[0u8; 1515]), "longer than a frame");
}

#[test]
fn the_mux_is_notified_only_when_it_asked() {
    let (mut client, mut mux) = setup();
    client.send(&[0u8; 60]);
    assert!(!client.should_notify_mux());
    mux.tx_active.dequeue().unwrap();
    assert_eq!(mux.tx_active.request_signal_if_empty(), Ok(true));
    client.send(&[0u8; 60]);
    assert!(client.should_notify_mux());
    assert!(!client.should_notify_mux(), "once per request");
    // The client may wait only on an empty rx_active, after asking.
    assert!(client.ready_to_wait());
    mux.deliver(0, 60);
    assert!(mux.rx_active.should_signal());
    assert!(!client.ready_to_wait());
}
