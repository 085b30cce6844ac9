//! Sending file data in place: which bytes of a connection's TCP stream
//! are file data that the NIC reads straight from the file cache, and the
//! checksums of the segments that carry them.
//!
//! # The idea
//!
//! smoltcp owns the connection (sequence numbers, windows, retransmission)
//! and keeps what it may still (re)send in its transmit buffer. For a
//! response body the server does not write the file's bytes into that
//! buffer: it *reserves* as many bytes there ([`Outgoing::queue_reserved`],
//! smoltcp's `send` with a closure that writes nothing) and records an
//! [`Extent`]: stream bytes `start..start + len` are file bytes
//! `file_offset..` of a pinned file. When smoltcp builds a segment, it
//! copies whatever the reserved bytes hold (stale bytes, never sent); the
//! device then asks [`Outgoing::plan`] which ranges of the segment's
//! payload are file data and sends those ranges *from the cache region*
//! (`send_from`), by reference: the demultiplexer passes them through
//! after checking the copied headers, and the NIC reads them by DMA. So
//! the cache, not smoltcp's buffer, is the retransmission pool (Cheetah),
//! and file data is never copied between disk and wire.
//!
//! # Stream offsets and sequence numbers
//!
//! The device sees segments, which carry sequence numbers; extents are in
//! stream offsets (bytes handed to smoltcp, from 0). smoltcp's first
//! segment with payload always starts at the first stream byte (nothing was
//! sent before it), so its sequence number is recorded as the stream's
//! base ([`Outgoing::base_seq`]); every later segment's stream offset is its
//! sequence number minus the base, taken within the window of bytes
//! smoltcp can still hold. A segment outside that window is inconsistent
//! and is not sent ([`PlanError`]), never sent with placeholder bytes.
//!
//! # Checksums
//!
//! smoltcp is told not to checksum outgoing TCP (its reserved bytes are
//! not the data sent): [`segment_checksum`] does it, from the headers, the
//! real payload bytes, and for file ranges the store's sums
//! ([`FileSums::sum`]), which are the image's precomputed piece
//! sums wherever the range covers whole 1460-byte pieces. To make that the
//! common case, a body longer than a piece is reserved only once
//! everything before it has been sent at least once
//! ([`Outgoing::all_sent`]): its segments then start at the body's first
//! byte and at multiples of the MSS after it (1460 on Ethernet).
//!
//! # Pins
//!
//! An extent holds its file's pin until the peer has acknowledged all of it
//! ([`Outgoing::retire_acked`]) or the connection ends
//! ([`Outgoing::retire_all`]). Even then a frame that references the bytes
//! may still be queued for the NIC (a retransmission, or a frame queued
//! just before an abort): the pin is released only once every transmit
//! buffer that was in flight at that moment has come back
//! ([`Outgoing::returned`]), so the cache cannot reuse the blocks under a
//! frame the device has yet to read.

pub use lib_net_protocol::{InPlace, InPlaceList};
use net_packet::tcp;

/// Extents one connection holds at once (live or waiting for their frames
/// to come back). A segment can meet at most this many, so a frame has at
/// most this many in-place ranges: what the demultiplexer takes.
pub const MAX_EXTENTS: usize = lib_net_protocol::MAX_IN_PLACE;

/// Bytes of a checksummed piece in the image.
pub const PIECE: u64 = fs_format::sums::PIECE as u64;

/// Stream bytes that are file data.
#[derive(Debug)]
pub struct Extent<P> {
    /// Stream offset of its first byte.
    pub start: u64,
    /// Bytes reserved in the stack so far.
    pub queued: u64,
    /// Bytes in all (the body's length).
    pub len: u64,
    /// File offset of its first byte.
    pub file_offset: u64,
    /// Region offset of the file's first byte (`send_from`).
    pub region_offset: usize,
    pub pin: P,
}

#[derive(Debug)]
enum Entry<P> {
    Free,
    Live(Extent<P>),
    /// Acknowledged or abandoned; released once the transmit buffers in
    /// `waiting` (a bit per buffer) have come back.
    Retiring {
        pin: P,
        waiting: u64,
    },
}

/// One connection's outgoing stream (see the module docs).
#[derive(Debug)]
pub struct Outgoing<P> {
    /// Sequence number of stream offset 0, once a segment with payload has
    /// been built.
    pub base_seq: Option<u32>,
    /// Stream bytes handed to the stack (real or reserved).
    pub queued: u64,
    /// Stream bytes sent at least once (the highest end of a segment).
    pub sent: u64,
    entries: [Entry<P>; MAX_EXTENTS],
}

/// Why a segment cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// Its sequence numbers do not fall inside the stream's bytes the
    /// stack may still hold.
    OutOfStream,
    /// A file range could not be located or summed (a store bug).
    Store,
}

/// What the device needs of the store to send a file range in place.
pub trait FileSums<P> {
    /// The Internet sum (RFC 1071, folded, not complemented, as if the
    /// range started on an even byte) of `len` bytes of the pinned file at
    /// `offset`; `None` if the range is not the file's.
    fn sum(&self, pin: &P, offset: u64, len: usize) -> Option<u16>;
}

/// A store of pinned files the NIC may send from (the file cache): what a
/// server needs to send a pinned file's bytes in place and to give the pin
/// back. Every such store gives [`FileSums`].
pub trait Pins {
    /// Keeps a file's data in place while the server sends it.
    type Pin;
    /// Where the pinned file's first byte lies in the region the NIC may
    /// send from (the description's `send_from`), if the store keeps file
    /// data there: the server then sends the file's bytes in place instead
    /// of copying them.
    fn region_offset(&self, _pin: &Self::Pin) -> Option<usize> {
        None
    }
    /// The Internet sum (RFC 1071: folded, not complemented, as if the
    /// range started on an even byte) of `len` bytes of the pinned file at
    /// `offset`, for a segment that carries them in place; `None` if the
    /// range is not the file's.
    fn sum(&self, _pin: &Self::Pin, _offset: u64, _len: usize) -> Option<u16> {
        None
    }
    /// Gives a pin back.
    fn release(&mut self, pin: Self::Pin);
}

/// A store whose opens may have to wait, and whose pinned bytes can also
/// be copied: what every service needs of its store besides [`Pins`]
/// (each protocol adds its own `open`: HTTP's answers a status, FTP's a
/// local error).
pub trait Files: Pins {
    /// What a connection waiting for an open remembers, to know when to
    /// open again.
    type Wait: Copy;

    /// Whether an open answered "wait" (`wait`) may now have another
    /// answer.
    fn may_retry(&self, wait: &Self::Wait) -> bool;
    /// Copies bytes of the pinned file from `offset` into `buf`; returns
    /// how many: fewer than `buf.len()` only at the end of the file, 0
    /// past it (for a file the NIC cannot send in place:
    /// [`Pins::region_offset`] is `None`).
    fn read(&self, pin: &Self::Pin, offset: u64, buf: &mut [u8]) -> usize;
    /// Forgets a wait whose connection ended before it opened again.
    fn abandon(&mut self, _wait: Self::Wait) {}
}

impl<S: Pins> FileSums<S::Pin> for S {
    fn sum(&self, pin: &S::Pin, offset: u64, len: usize) -> Option<u16> {
        Pins::sum(self, pin, offset, len)
    }
}

/// A segment's payload, as the device planned it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Planned {
    /// The ranges sent from the region, with `at` relative to the payload.
    pub in_place: InPlaceList,
    /// The sum of the payload (real bytes and file ranges), in the
    /// payload's own alignment.
    pub payload_sum: u16,
}

impl<P> Default for Outgoing<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Outgoing<P> {
    pub const fn new() -> Self {
        Outgoing { base_seq: None, queued: 0, sent: 0, entries: [const { Entry::Free }; MAX_EXTENTS] }
    }

    /// A new connection on this slot. Extents still retiring from the last
    /// one stay until their frames come back; there are no live ones (the
    /// last connection's end retired them).
    pub fn restart(&mut self) {
        debug_assert!(!self.entries.iter().any(|e| matches!(e, Entry::Live(_))));
        self.base_seq = None;
        self.queued = 0;
        self.sent = 0;
    }

    /// Whether a new extent can be started.
    pub fn has_room(&self) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Free))
    }

    /// Whether every byte queued has been sent at least once.
    pub fn all_sent(&self) -> bool {
        self.sent >= self.queued
    }

    /// Whether extents hold pins (live or retiring).
    pub fn holds_pins(&self) -> bool {
        !self.entries.iter().all(|e| matches!(e, Entry::Free))
    }

    /// Records `n` real bytes handed to the stack.
    pub fn queue_real(&mut self, n: usize) {
        self.queued += n as u64;
    }

    /// Starts an extent of `len` bytes of the pinned file from
    /// `file_offset` (at `region_offset` of the region) at the current end
    /// of the stream. `Err(pin)` if there is no room ([`has_room`](Self::has_room)).
    pub fn begin(&mut self, pin: P, file_offset: u64, len: u64, region_offset: usize) -> Result<(), P> {
        let Some(free) = self.entries.iter_mut().find(|e| matches!(e, Entry::Free)) else { return Err(pin) };
        *free = Entry::Live(Extent { start: self.queued, queued: 0, len, file_offset, region_offset, pin });
        Ok(())
    }

    /// The live extent still being reserved (the stream's last one, not
    /// fully queued).
    fn current(&self) -> Option<&Extent<P>> {
        self.entries.iter().find_map(|e| match e {
            Entry::Live(x) if x.queued < x.len && x.start + x.queued == self.queued => Some(x),
            _ => None,
        })
    }

    fn current_mut(&mut self) -> Option<&mut Extent<P>> {
        let queued = self.queued;
        self.entries.iter_mut().find_map(|e| match e {
            Entry::Live(x) if x.queued < x.len && x.start + x.queued == queued => Some(x),
            _ => None,
        })
    }

    /// Bytes of the current extent still to reserve.
    pub fn to_reserve(&self) -> u64 {
        self.current().map_or(0, |x| x.len - x.queued)
    }

    /// Whether a body is being reserved (its pin is in an extent, and not
    /// all its bytes are in the stack yet).
    pub fn reserving(&self) -> bool {
        self.to_reserve() > 0
    }

    /// How many bytes of the current extent to reserve when the stack has
    /// room for `room`: all the rest if it fits, else as many as end on a
    /// piece boundary of the file (possibly none: wait for more room). The
    /// stack sends what it has as soon as it may (no Nagle), so a
    /// reservation that ended mid-piece would become a short segment and
    /// shift every later segment off the precomputed pieces.
    pub fn reservable(&self, room: usize) -> usize {
        let Some(x) = self.current() else { return 0 };
        let rest = x.len - x.queued;
        if room as u64 >= rest {
            return rest as usize;
        }
        let from = x.file_offset + x.queued;
        let end = (from + room as u64) / PIECE * PIECE;
        end.saturating_sub(from) as usize
    }

    /// Records `n` bytes of the current extent reserved in the stack.
    pub fn queue_reserved(&mut self, n: usize) {
        if let Some(x) = self.current_mut() {
            let n = (n as u64).min(x.len - x.queued);
            x.queued += n;
            self.queued += n;
        }
    }

    /// Retires the extents the peer has acknowledged (`acked` stream bytes):
    /// their pins go back once the buffers in flight now (`in_flight`) have
    /// come back, at once if none is.
    pub fn retire_acked(&mut self, acked: u64, in_flight: u64, release: &mut impl FnMut(P)) {
        self.retire(|x| x.queued == x.len && x.start + x.len <= acked, in_flight, release);
    }

    /// Retires every live extent (the connection ended).
    pub fn retire_all(&mut self, in_flight: u64, release: &mut impl FnMut(P)) {
        self.retire(|_| true, in_flight, release);
    }

    fn retire(&mut self, done: impl Fn(&Extent<P>) -> bool, in_flight: u64, release: &mut impl FnMut(P)) {
        for entry in self.entries.iter_mut() {
            if !matches!(entry, Entry::Live(x) if done(x)) {
                continue;
            }
            let Entry::Live(x) = core::mem::replace(entry, Entry::Free) else { continue };
            if in_flight == 0 {
                release(x.pin);
            } else {
                *entry = Entry::Retiring { pin: x.pin, waiting: in_flight };
            }
        }
    }

    /// Transmit buffers in `mask` came back: pins no frame can reference
    /// any more are released.
    pub fn returned(&mut self, mask: u64, release: &mut impl FnMut(P)) {
        for entry in self.entries.iter_mut() {
            if let Entry::Retiring { waiting, .. } = entry {
                *waiting &= !mask;
                if *waiting == 0 {
                    if let Entry::Retiring { pin, .. } = core::mem::replace(entry, Entry::Free) {
                        release(pin);
                    }
                }
            }
        }
    }

    /// The file bytes from stream offset `start` on that lie in one run of
    /// the region: the region offset of the first and how many, or `None`
    /// if `start` is not in an extent's queued bytes. A segment the device
    /// cuts (TSO) names such a run as its one in-place range.
    pub fn in_place_run(&self, start: u64) -> Option<(u32, u64)> {
        self.entries.iter().find_map(|e| match e {
            Entry::Live(x) if x.start <= start && start < x.start + x.queued => {
                let offset = x.region_offset as u64 + x.file_offset + (start - x.start);
                Some((u32::try_from(offset).ok()?, x.start + x.queued - start))
            }
            _ => None,
        })
    }

    /// Plans a segment with sequence number `seq` whose payload is
    /// `payload` (as the stack wrote it): records what it says about the
    /// stream, and returns its in-place ranges and payload sum.
    pub fn plan(&mut self, seq: u32, payload: &[u8], sums: &impl FileSums<P>) -> Result<Planned, PlanError> {
        let mut planned = Planned::default();
        if payload.is_empty() {
            return Ok(planned);
        }
        let base = *self.base_seq.get_or_insert(seq);
        // Stream offset of the payload: its distance back from the end of
        // the stream, which is small (the stack's buffer), taken mod 2^32.
        let behind = (self.queued as u32).wrapping_sub(seq.wrapping_sub(base));
        let start = self.queued.checked_sub(u64::from(behind)).ok_or(PlanError::OutOfStream)?;
        let end = start + payload.len() as u64;
        if end > self.queued {
            return Err(PlanError::OutOfStream);
        }
        self.sent = self.sent.max(end);
        // The extents inside the segment, in stream order.
        let mut hits: [Option<&Extent<P>>; MAX_EXTENTS] = [None; MAX_EXTENTS];
        let mut count = 0;
        for entry in self.entries.iter() {
            if let Entry::Live(x) = entry {
                if x.start < end && start < x.start + x.queued {
                    hits[count] = Some(x);
                    count += 1;
                }
            }
        }
        let hits = &mut hits[..count];
        hits.sort_unstable_by_key(|x| x.map_or(u64::MAX, |x| x.start));
        let mut sum = PayloadSum::default();
        let mut pos = start;
        for x in hits.iter().flatten() {
            let from = x.start.max(start);
            let to = (x.start + x.queued).min(end);
            sum.add_bytes(&payload[(pos - start) as usize..(from - start) as usize], (pos - start) as usize);
            let file_offset = x.file_offset + (from - x.start);
            let len = (to - from) as usize;
            let file_sum = sums.sum(&x.pin, file_offset, len).ok_or(PlanError::Store)?;
            sum.add_sum(file_sum, (from - start) as usize);
            let offset = u32::try_from(x.region_offset as u64 + file_offset).map_err(|_| PlanError::Store)?;
            // At most MAX_EXTENTS extents are live: the list has room.
            planned
                .in_place
                .push(InPlace { at: (from - start) as usize, len, offset })
                .map_err(|_| PlanError::Store)?;
            pos = to;
        }
        sum.add_bytes(&payload[(pos - start) as usize..], (pos - start) as usize);
        planned.payload_sum = sum.0.sum();
        Ok(planned)
    }
}

/// A 1's complement sum built from parts at any byte position (RFC 1071
/// §2(B): a part starting at an odd position has its own sum
/// byte-swapped).
#[derive(Clone, Copy, Debug, Default)]
pub struct PayloadSum(pub net_packet::checksum::Checksum);

impl PayloadSum {
    pub fn add_sum(&mut self, part: u16, at: usize) {
        self.0.add_word(if at % 2 == 1 { part.swap_bytes() } else { part });
    }

    pub fn add_bytes(&mut self, bytes: &[u8], at: usize) {
        if !bytes.is_empty() {
            let mut part = net_packet::checksum::Checksum::new();
            part.add_bytes(bytes);
            self.add_sum(part.sum(), at);
        }
    }
}

/// The TCP checksum of a segment (`segment`: the TCP header and payload,
/// checksum field as the stack left it) between `src` and `dst`, given the
/// payload's sum.
pub fn segment_checksum(src: [u8; 4], dst: [u8; 4], segment: &[u8], header_len: usize, payload_sum: u16) -> u16 {
    let mut sum = net_packet::checksum::Checksum::new();
    sum.add_pseudo_header(
        net_packet::ipv4::Ipv4Address(src),
        net_packet::ipv4::Ipv4Address(dst),
        net_packet::ipv4::IpProtocol::TCP,
        segment.len() as u16,
    );
    // The header without its checksum field.
    sum.add_bytes(&segment[..tcp::CHECKSUM_FIELD.start]);
    sum.add_bytes(&segment[tcp::CHECKSUM_FIELD.end..header_len]);
    // The header is a whole number of 32-bit words: the payload starts on
    // an even byte.
    sum.add_word(payload_sum);
    sum.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Files in memory: pin = the file's bytes' index in `files`.
    struct Files(Vec<Vec<u8>>);

    impl FileSums<usize> for Files {
        fn sum(&self, &pin: &usize, offset: u64, len: usize) -> Option<u16> {
            let data = self.0.get(pin)?.get(offset as usize..offset as usize + len)?;
            let mut s = net_packet::checksum::Checksum::new();
            s.add_bytes(data);
            Some(s.sum())
        }
    }

    fn files() -> Files {
        Files(std::vec![
            (0..5000u32).map(|i| (i * 7 + 3) as u8).collect(),
            (0..300u32).map(|i| (i * 13) as u8).collect()
        ])
    }

    /// What the wire would carry: the payload with the in-place ranges
    /// read from the files (region offsets: file 0 at 0, file 1 at 8192).
    fn wire(payload: &[u8], planned: &Planned, f: &Files) -> Vec<u8> {
        let mut out = payload.to_vec();
        for r in planned.in_place.as_slice() {
            let (file, base) = if r.offset >= 8192 { (1, 8192) } else { (0, 0) };
            let off = (r.offset - base) as usize;
            out[r.at..r.at + r.len].copy_from_slice(&f.0[file][off..off + r.len]);
        }
        out
    }

    fn sum_of(bytes: &[u8]) -> u16 {
        let mut s = net_packet::checksum::Checksum::new();
        s.add_bytes(bytes);
        s.sum()
    }

    #[test]
    fn file_ranges_are_found_by_sequence_number_and_summed() {
        let f = files();
        let mut out = Outgoing::<usize>::new();
        // Stream: head "H" * 101, file 0 bytes 10..4010, head "G" * 50, file 1 whole.
        let mut stream = Vec::new();
        stream.extend(std::iter::repeat_n(b'H', 101));
        out.queue_real(101);
        out.begin(0, 10, 4000, 0).unwrap();
        while out.to_reserve() > 0 {
            out.queue_reserved(1000);
        }
        stream.extend_from_slice(&f.0[0][10..4010]);
        stream.extend(std::iter::repeat_n(b'G', 50));
        out.queue_real(50);
        out.begin(1, 0, 300, 8192).unwrap();
        out.queue_reserved(300);
        stream.extend_from_slice(&f.0[1]);
        assert_eq!(out.queued, stream.len() as u64);
        // Segments of 1460 from sequence number 0xffff_f000 (wrapping),
        // then "retransmissions" of 1333 from the odd offset 701.
        let base = 0xffff_f000u32;
        let first = stream.chunks(1460).enumerate().map(|(i, c)| (i * 1460, c));
        let again = stream[701..].chunks(1333).enumerate().map(|(i, c)| (701 + i * 1333, c));
        for (at, chunk) in first.chain(again) {
            let seq = base.wrapping_add(at as u32);
            let planned = out.plan(seq, chunk, &f).unwrap();
            // The file ranges' bytes in the payload are never read: stale
            // bytes there give the same plan.
            let mut stale = chunk.to_vec();
            for r in planned.in_place.as_slice() {
                stale[r.at..r.at + r.len].fill(0xee);
            }
            assert_eq!(out.plan(seq, &stale, &f).unwrap(), planned, "segment at {at}");
            assert_eq!(wire(&stale, &planned, &f), chunk, "segment at {at}");
            assert_eq!(planned.payload_sum, sum_of(chunk), "segment at {at}");
        }
        assert_eq!(out.sent, stream.len() as u64);
        assert!(out.all_sent());
    }

    #[test]
    fn segments_outside_the_stream_are_refused() {
        let f = files();
        let mut out = Outgoing::<usize>::new();
        out.queue_real(100);
        assert!(out.plan(1000, &[0; 100], &f).is_ok());
        assert_eq!(out.base_seq, Some(1000));
        assert_eq!(out.plan(1050, &[0; 51], &f), Err(PlanError::OutOfStream), "past the end");
        assert_eq!(out.plan(990, &[0; 5], &f), Err(PlanError::OutOfStream), "before the start");
        assert_eq!(out.plan(1090, &[], &f), Ok(Planned::default()), "no payload: nothing to check");
    }

    #[test]
    fn pins_wait_for_acks_and_for_frames_in_flight() {
        let mut out = Outgoing::<usize>::new();
        let mut released = Vec::new();
        out.queue_real(10);
        out.begin(7, 0, 100, 0).unwrap();
        out.queue_reserved(100);
        out.begin(8, 0, 50, 0).unwrap();
        out.queue_reserved(20);
        out.retire_acked(109, 0b1, &mut |p| released.push(p));
        assert!(released.is_empty(), "not all acknowledged");
        out.retire_acked(110, 0b101, &mut |p| released.push(p));
        assert!(released.is_empty(), "frames in flight");
        out.returned(0b1, &mut |p| released.push(p));
        assert!(released.is_empty());
        out.returned(0b100, &mut |p| released.push(p));
        assert_eq!(released, [7]);
        out.retire_acked(1000, 0, &mut |p| released.push(p));
        assert_eq!(released, [7], "extent 8 is not fully queued");
        out.retire_all(0, &mut |p| released.push(p));
        assert_eq!(released, [7, 8]);
        assert!(!out.holds_pins());
    }

    #[test]
    fn reservations_end_on_piece_boundaries() {
        let mut out = Outgoing::<usize>::new();
        out.queue_real(200);
        // A range from file offset 100.
        out.begin(0, 100, 10_000, 0).unwrap();
        assert_eq!(out.reservable(20_000), 10_000, "all of it fits");
        assert_eq!(out.reservable(5000), 4280, "up to the piece boundary at 4380");
        assert_eq!(out.reservable(1000), 0, "no boundary within reach: wait");
        out.queue_reserved(4280);
        assert_eq!(out.reservable(3000), 2920);
        out.queue_reserved(2920);
        assert_eq!(out.reservable(2900), 2800, "the rest fits");
    }

    #[test]
    fn extents_are_bounded() {
        let mut out = Outgoing::<usize>::new();
        for i in 0..MAX_EXTENTS {
            assert!(out.has_room());
            out.begin(i, 0, 1, 0).unwrap();
            out.queue_reserved(1);
        }
        assert!(!out.has_room());
        assert_eq!(out.begin(99, 0, 1, 0), Err(99));
    }

    /// Random streams of real bytes and file extents (files 0 and 1 of
    /// [`files`]), cut into random segments, some sent again: every
    /// segment's wire bytes are the stream's, its sum theirs, and no
    /// in-place range covers a real byte.
    #[test]
    fn random_streams_and_segmentations() {
        let f = files();
        let mut rng = lib_test_rng::Rng(11);
        for _ in 0..200 {
            let mut out = Outgoing::<usize>::new();
            let mut stream = Vec::new();
            let mut real = Vec::new(); // per stream byte: true if real
            while out.has_room() && stream.len() < 20_000 {
                let n = rng.below(300);
                stream.extend((0..n).map(|i| (i * 31 + 7) as u8));
                real.extend(std::iter::repeat_n(true, n));
                out.queue_real(n);
                let file = rng.below(2);
                let size = f.0[file].len();
                let from = rng.below(size);
                let len = 1 + rng.below(size - from);
                out.begin(file, from as u64, len as u64, [0, 8192][file]).unwrap();
                while out.to_reserve() > 0 {
                    let room = 1 + rng.below(5000);
                    let n = out.reservable(room).max(out.to_reserve().min(room as u64) as usize);
                    out.queue_reserved(n);
                }
                stream.extend_from_slice(&f.0[file][from..from + len]);
                real.extend(std::iter::repeat_n(false, len));
            }
            let base = rng.next() as u32;
            let mut at = 0;
            while at < stream.len() {
                let len = (1 + rng.below(1460)).min(stream.len() - at);
                for again in [at, at.saturating_sub(rng.below(3000))] {
                    let end = (again + len).min(stream.len());
                    let chunk = &stream[again..end];
                    let mut stale = chunk.to_vec();
                    let planned = out.plan(base.wrapping_add(again as u32), &stale, &f).unwrap();
                    for r in planned.in_place.as_slice() {
                        assert!(
                            real[again + r.at..again + r.at + r.len].iter().all(|&x| !x),
                            "a real byte sent from the region"
                        );
                        stale[r.at..r.at + r.len].fill(0xee);
                    }
                    assert_eq!(wire(&stale, &planned, &f), chunk);
                    assert_eq!(planned.payload_sum, sum_of(chunk));
                }
                at += len;
            }
        }
    }

    #[test]
    fn checksums_match_a_plain_computation() {
        let mut segment = std::vec![0u8; 20 + 33];
        segment[12] = 5 << 4;
        for (i, b) in segment[20..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31);
        }
        segment[16] = 0xab;
        let csum = segment_checksum([10, 0, 2, 15], [10, 0, 2, 2], &segment, 20, sum_of(&segment[20..]));
        segment[16..18].copy_from_slice(&csum.to_be_bytes());
        let mut check = net_packet::checksum::Checksum::new();
        check.add_pseudo_header(
            net_packet::ipv4::Ipv4Address([10, 0, 2, 15]),
            net_packet::ipv4::Ipv4Address([10, 0, 2, 2]),
            net_packet::ipv4::IpProtocol::TCP,
            segment.len() as u16,
        );
        check.add_bytes(&segment);
        assert!(check.is_valid());
    }
}
