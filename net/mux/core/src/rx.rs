//! The receive path: driver `rx_active` → classification in place → one
//! copy into each receiver's buffer → the driver's `rx_free`.

use lib_net_protocol::{MAX_FRAME_LEN, MIN_FRAME_LEN, RX_BUFFER_SIZE, RX_DATA_SIZE};
use lib_queue::{BufferDesc, QueueError};

use crate::{Client, Mux, SharedMemory};

impl<M: SharedMemory> Mux<'_, M> {
    /// Takes every frame the driver has received, hands each buffer back at
    /// once, and delivers the frames.
    pub(crate) fn receive(&mut self) {
        loop {
            let desc = match self.driver.port.rx.active.dequeue() {
                Ok(Some(desc)) => desc,
                Ok(None) => break,
                // Consumed: look at the next one.
                Err(QueueError::OutOfBounds(_)) => {
                    self.driver.counters.errors += 1;
                    continue;
                }
                Err(_) => {
                    self.driver.counters.errors += 1;
                    break;
                }
            };
            if desc.offset % RX_BUFFER_SIZE as u64 != 0 {
                // Names no buffer: nothing to give back.
                self.driver.counters.errors += 1;
                continue;
            }
            let len = desc.len as usize;
            let Mux { driver, table, clients, .. } = self;
            // Classified and delivered in place: the buffer is ours until
            // it goes back below.
            let delivered = (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len)
                && driver
                    .port
                    .rx_data
                    .view(desc.offset as usize, len, |frame| {
                        // A malformed frame is counted by the table, under its reason.
                        let Ok(decision) = table.classify_frame(frame) else { return };
                        let receivers = decision.exclusive.into_iter().chain(decision.copies.iter());
                        for owner in receivers {
                            if let Some(Some(client)) = clients.get_mut(owner.index()) {
                                client.deliver(frame);
                            }
                        }
                    })
                    .is_some();
            let back = BufferDesc { offset: desc.offset, len: RX_BUFFER_SIZE as u32, cookie: desc.cookie };
            if driver.port.rx.free.enqueue(back).is_err() {
                // Cannot happen while the driver's indices are sane: we
                // hold at most every buffer, and rx_free fits them all.
                driver.counters.errors += 1;
            }
            driver.produced = true;
            if delivered {
                driver.counters.rx_frames += 1;
            } else {
                driver.counters.errors += 1;
            }
        }
    }
}

impl<M: SharedMemory> Client<'_, M> {
    /// Copies `frame` into a buffer the client lent and queues it on the
    /// client's `rx_active`; with no buffer (or no room) the frame is
    /// dropped and counted.
    fn deliver(&mut self, frame: &[u8]) {
        // Room first: a buffer taken from rx_free must not be lost.
        if !matches!(self.port.rx.active.room(), Ok(room) if room > 0) {
            self.counters.rx_no_buffer += 1;
            return;
        }
        // Bounded: each turn consumes one entry of rx_free.
        loop {
            let buffer = match self.port.rx.free.dequeue() {
                Ok(Some(buffer)) => buffer,
                Ok(None) => {
                    self.counters.rx_no_buffer += 1;
                    return;
                }
                Err(QueueError::OutOfBounds(_)) => {
                    self.counters.queue_errors += 1;
                    continue;
                }
                Err(_) => {
                    self.counters.queue_errors += 1;
                    self.counters.rx_no_buffer += 1;
                    return;
                }
            };
            let start = buffer.offset as usize;
            let is_buffer = buffer.offset % RX_BUFFER_SIZE as u64 == 0 && start < RX_DATA_SIZE;
            if !is_buffer || !self.port.rx_data.write(start, frame) {
                self.counters.queue_errors += 1;
                continue;
            }
            let filled = BufferDesc { offset: buffer.offset, len: frame.len() as u32, cookie: buffer.cookie };
            if self.port.rx.active.enqueue(filled).is_err() {
                // Room was checked; only corrupt indices get here.
                self.counters.queue_errors += 1;
                self.counters.rx_no_buffer += 1;
                return;
            }
            self.produced = true;
            self.counters.rx_delivered += 1;
            return;
        }
    }
}
