//! The receive path: driver `rx_active` → private copy → classification →
//! the receivers' `rx_active`.

use net_protocol::{MAX_FRAME_LEN, MIN_FRAME_LEN, RX_BUFFER_SIZE, RX_DATA_SIZE};
use shared_queue::{BufferDesc, QueueError};

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
            let copied = (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len)
                && self.driver.port.rx_data.read(desc.offset as usize, &mut self.frame[..len]);
            // The frame is ours now (or unusable): the buffer goes back.
            let back = BufferDesc { offset: desc.offset, len: RX_BUFFER_SIZE as u32, cookie: desc.cookie };
            if self.driver.port.rx.free.enqueue(back).is_err() {
                // Cannot happen while the driver's indices are sane: we
                // hold at most every buffer, and rx_free fits them all.
                self.driver.counters.errors += 1;
            }
            self.driver.produced = true;
            if !copied {
                self.driver.counters.errors += 1;
                continue;
            }
            self.driver.counters.rx_frames += 1;
            let frame = &self.frame[..len];
            // A malformed frame is counted by the table, under its reason.
            let Ok(decision) = self.table.classify_frame(frame) else { continue };
            if let Some(owner) = decision.exclusive {
                if let Some(Some(client)) = self.clients.get_mut(owner.index()) {
                    client.deliver(frame);
                }
            }
            if !decision.copies.is_empty() {
                for owner in decision.copies.iter() {
                    if let Some(Some(client)) = self.clients.get_mut(owner.index()) {
                        client.deliver(frame);
                    }
                }
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
