//! The host tests' network (feature `host-tests`), shared by the servers
//! on the engine and on smoltcp (httpd-core's, ftpd-core's): the
//! demultiplexer's queues in memory ([`FakeLink`], one [`Wire`] both ways),
//! arpd's table ([`FakeNeighbours`]), and a smoltcp interface for the
//! clients ([`ClientDevice`], [`ClientSide`]) whose device is also the
//! server's NIC: it reads a frame's in-place ranges from the store's region
//! when it takes the frame off the wire, and completes the offloads a frame
//! asks for ([`offloaded`]).

use crate::link::{Link, Neighbours, NoBuffer, Received, Resolution, ETHERNET_HEADER, MAX_FRAME};
use lib_net_protocol::{InPlace, InPlaceList, TxOffload, MAX_TSO_FRAME_LEN};
use lib_test_rng::Rng;
use net_config::Ipv4Address;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, Ipv4Address as SmolIpv4};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

pub const SERVER_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
pub const CLIENT_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0, 2, 2];
pub const SERVER_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// Transmit buffers of the fake link (as net-client's).
pub const TX_BUFFERS: usize = 64;

/// A frame the server queued: its buffer's bytes, the ranges to take from
/// the region instead, and the buffer it holds until "sent".
pub struct Queued {
    pub frame: Vec<u8>,
    pub in_place: Vec<InPlace>,
    pub buffer: usize,
    /// What the frame asked of the device.
    pub offload: Option<TxOffload>,
}

/// Frames in flight both ways.
#[derive(Default)]
pub struct Wire {
    pub to_server: VecDeque<Vec<u8>>,
    pub from_server: VecDeque<Queued>,
    /// Buffers in flight and come back, a bit each.
    pub in_flight: u64,
    pub returned: u64,
    /// Bytes the "NIC" took from the region.
    pub in_place_bytes: usize,
    /// Packets the "NIC" cut from a TSO frame, not yet delivered.
    pub cut: VecDeque<Vec<u8>>,
    /// Frames that asked for TSO, and packets cut from them.
    pub tso_frames: usize,
    pub tso_packets: usize,
    /// The "device" verified the checksums of the frames it delivers.
    pub checksum_verified: bool,
}

impl Wire {
    /// Loses `percent` of the frames in flight each way and now and then
    /// swaps two neighbours (a lossy, reordering link). A lost frame of
    /// the server's gives its transmit buffer back: the NIC sent it, the
    /// network lost it.
    pub fn disturb(&mut self, rng: &mut Rng, percent: usize) {
        let mut kept = VecDeque::new();
        while let Some(q) = self.from_server.pop_front() {
            if rng.below(100) < percent {
                self.in_flight &= !(1 << q.buffer);
                self.returned |= 1 << q.buffer;
            } else {
                kept.push_back(q);
            }
        }
        if kept.len() >= 2 && rng.below(4) == 0 {
            let i = rng.below(kept.len() - 1);
            kept.swap(i, i + 1);
        }
        self.from_server = kept;
        let mut kept = VecDeque::new();
        while let Some(f) = self.to_server.pop_front() {
            if rng.below(100) >= percent {
                kept.push_back(f);
            }
        }
        if kept.len() >= 2 && rng.below(4) == 0 {
            let i = rng.below(kept.len() - 1);
            kept.swap(i, i + 1);
        }
        self.to_server = kept;
    }
}

/// What a virtio-net device does with a frame's offload request (virtio
/// 1.x spec 5.1.6.2, Linux's `tcp_gso_segment`): completes the TCP
/// checksum, whose field must hold the pseudo-header sum over the whole
/// segment's length (checked: a wrong sum fails the test), and with TSO
/// cuts the segment into packets of `mss` payload bytes, each with its
/// own IPv4 total length, identification and header checksum, sequence
/// number, FIN and PSH on the last only, and checksum.
pub fn offloaded(frame: Vec<u8>, offload: TxOffload) -> Vec<Vec<u8>> {
    use net_packet::checksum::{checksum, Checksum};
    let start = usize::from(offload.csum_start);
    let hdr = usize::from(offload.hdr_len);
    assert_eq!(offload.csum_offset, 16, "TCP only");
    let field = start + 16;
    let pseudo = |packet: &[u8], tcp_len: usize| {
        let mut sum = Checksum::new();
        sum.add_bytes(&packet[ETHERNET_HEADER + 12..ETHERNET_HEADER + 20]);
        sum.add_word(6);
        sum.add_word(tcp_len as u16);
        sum.sum()
    };
    assert_eq!(
        u16::from_be_bytes([frame[field], frame[field + 1]]),
        pseudo(&frame, frame.len() - start),
        "the checksum field holds the pseudo-header sum of the whole segment"
    );
    let complete = |mut packet: Vec<u8>| {
        let tcp_len = packet.len() - start;
        let sum = pseudo(&packet, tcp_len);
        packet[field..field + 2].copy_from_slice(&[0, 0]);
        let mut all = Checksum::new();
        all.add_word(sum);
        all.add_bytes(&packet[start..]);
        packet[field..field + 2].copy_from_slice(&all.finish().to_be_bytes());
        packet
    };
    if !offload.tso() || frame.len() - hdr <= usize::from(offload.mss) {
        return vec![complete(frame)];
    }
    let chunks: Vec<&[u8]> = frame[hdr..].chunks(usize::from(offload.mss)).collect();
    let seq = u32::from_be_bytes(frame[start + 4..start + 8].try_into().unwrap());
    let id = u16::from_be_bytes([frame[ETHERNET_HEADER + 4], frame[ETHERNET_HEADER + 5]]);
    let flags = frame[start + 13];
    let mut packets = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut p = frame[..hdr].to_vec();
        p.extend_from_slice(chunk);
        let ip = ETHERNET_HEADER;
        let total = (p.len() - ip) as u16;
        p[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
        p[ip + 4..ip + 6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
        p[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let sum = checksum(&p[ip..start]);
        p[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        let offset = (i * usize::from(offload.mss)) as u32;
        p[start + 4..start + 8].copy_from_slice(&seq.wrapping_add(offset).to_be_bytes());
        if i + 1 < chunks.len() {
            // FIN and PSH belong to the last packet.
            p[start + 13] = flags & !(0x01 | 0x08);
        }
        // The pseudo-header sum of this packet, as the device rewrites it.
        let sum = pseudo(&p, p.len() - start);
        p[field..field + 2].copy_from_slice(&sum.to_be_bytes());
        packets.push(complete(p));
    }
    packets
}

pub type Shared<T> = Rc<RefCell<T>>;

/// The demultiplexer's queues, in memory.
pub struct FakeLink {
    pub wire: Shared<Wire>,
    /// Transmit buffers the server may fill before the "demultiplexer"
    /// takes them.
    pub tx_capacity: usize,
    /// The "driver's" offloads (`OFFLOAD_*`), done by the client's device
    /// ([`offloaded`]).
    pub offloads: u64,
}

impl Link for FakeLink {
    fn recv(&mut self, frame: &mut [u8; MAX_FRAME]) -> Option<Received> {
        let mut wire = self.wire.borrow_mut();
        let f = wire.to_server.pop_front()?;
        frame[..f.len()].copy_from_slice(&f);
        Some(Received { len: f.len(), checksum_verified: wire.checksum_verified })
    }
    fn can_send(&mut self) -> bool {
        (self.wire.borrow().in_flight.count_ones() as usize) < self.tx_capacity.min(TX_BUFFERS)
    }
    fn send_offloaded(
        &mut self,
        len: usize,
        offload: Option<TxOffload>,
        fill: impl FnOnce(&mut [u8]) -> Option<InPlaceList>,
    ) -> Result<bool, NoBuffer> {
        let tso = offload.is_some_and(|o| o.tso());
        let max = if tso { MAX_TSO_FRAME_LEN } else { MAX_FRAME };
        if !self.can_send() || len > max {
            return Err(NoBuffer);
        }
        assert!(offload.is_none_or(|o| o.needs() & !self.offloads == 0), "an offload the driver lacks: {offload:?}");
        // Stale bytes, as a reused transmit buffer would have; a long
        // (TSO) frame's buffer holds only its first MAX_FRAME bytes, as
        // net-client's.
        let mut frame = vec![0xee; len];
        let Some(in_place) = fill(&mut frame[..len.min(MAX_FRAME)]) else { return Ok(false) };
        let mut end = 0;
        for r in in_place.as_slice() {
            assert!(
                r.at >= end && r.at + r.len <= len && r.len > 0,
                "in-place ranges sorted, inside the frame: {in_place:?}"
            );
            assert!(r.at <= MAX_FRAME || r.at == end, "a copied piece past the buffer: {in_place:?}");
            end = r.at + r.len;
        }
        assert!(end == len || len <= MAX_FRAME, "a copied tail past the buffer: {in_place:?}");
        let mut wire = self.wire.borrow_mut();
        let buffer = (!wire.in_flight).trailing_zeros() as usize;
        wire.in_flight |= 1 << buffer;
        wire.from_server.push_back(Queued { frame, in_place: in_place.as_slice().to_vec(), buffer, offload });
        Ok(true)
    }
    fn offloads(&self) -> u64 {
        self.offloads
    }
    fn tx_in_flight(&mut self) -> u64 {
        self.wire.borrow().in_flight
    }
    fn take_tx_returned(&mut self) -> u64 {
        core::mem::take(&mut self.wire.borrow_mut().returned)
    }
    fn flush(&mut self) {}
}

/// arpd's table and arpd, in memory.
#[derive(Default)]
pub struct ArpState {
    pub table: Vec<(Ipv4Address, [u8; 6])>,
    /// What arpd answers to a resolve.
    pub answer: Option<Resolution>,
    pub resolves: Vec<Ipv4Address>,
}

pub struct FakeNeighbours(pub Shared<ArpState>);

impl Neighbours for FakeNeighbours {
    fn lookup(&self, ip: Ipv4Address) -> Option<[u8; 6]> {
        self.0.borrow().table.iter().find(|(a, _)| *a == ip).map(|(_, m)| *m)
    }
    fn resolve(&mut self, ip: Ipv4Address) -> Resolution {
        let mut s = self.0.borrow_mut();
        s.resolves.push(ip);
        s.answer.unwrap_or(Resolution::Pending)
    }
}

/// The client's device: IP packets in Ethernet frames on the same wire;
/// it checks the server's framing of every frame it receives. It is also
/// the server's NIC: a frame's in-place ranges are read from the store's
/// region when the frame is taken off the wire (the DMA), and its transmit
/// buffer comes back then.
pub struct ClientDevice {
    pub wire: Shared<Wire>,
    pub region: Shared<Vec<u8>>,
    pub bad_frames: usize,
}

pub struct ClientRx(Vec<u8>);
impl phy::RxToken for ClientRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}
pub struct ClientTx(pub Shared<Wire>);
impl phy::TxToken for ClientTx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; ETHERNET_HEADER + len];
        frame[0..6].copy_from_slice(&SERVER_MAC);
        frame[6..12].copy_from_slice(&CLIENT_MAC);
        frame[12..14].copy_from_slice(&[8, 0]);
        let r = f(&mut frame[ETHERNET_HEADER..]);
        self.0.borrow_mut().to_server.push_back(frame);
        r
    }
}

impl phy::Device for ClientDevice {
    type RxToken<'a> = ClientRx;
    type TxToken<'a> = ClientTx;
    fn receive(&mut self, _: Instant) -> Option<(ClientRx, ClientTx)> {
        loop {
            let mut wire = self.wire.borrow_mut();
            let frame = match wire.cut.pop_front() {
                Some(packet) => packet,
                None => {
                    let Queued { mut frame, in_place, buffer, offload } = wire.from_server.pop_front()?;
                    let region = self.region.borrow();
                    for r in &in_place {
                        frame[r.at..r.at + r.len].copy_from_slice(&region[r.offset as usize..][..r.len]);
                        wire.in_place_bytes += r.len;
                    }
                    wire.in_flight &= !(1 << buffer);
                    wire.returned |= 1 << buffer;
                    match offload {
                        Some(o) => {
                            let mut packets = offloaded(frame, o);
                            if packets.len() > 1 {
                                wire.tso_frames += 1;
                                wire.tso_packets += packets.len();
                            }
                            let first = packets.remove(0);
                            wire.cut.extend(packets);
                            first
                        }
                        None => frame,
                    }
                }
            };
            drop(wire);
            if frame[0..6] != CLIENT_MAC || frame[6..12] != SERVER_MAC || frame[12..14] != [8, 0] {
                self.bad_frames += 1;
                continue;
            }
            return Some((ClientRx(frame[ETHERNET_HEADER..].to_vec()), ClientTx(self.wire.clone())));
        }
    }
    fn transmit(&mut self, _: Instant) -> Option<ClientTx> {
        Some(ClientTx(self.wire.clone()))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

pub fn smol(a: Ipv4Address) -> SmolIpv4 {
    SmolIpv4::from(a.to_u32())
}

/// The smoltcp clients' side of a test network, written once for the
/// harnesses of both servers: a network gives access to its client
/// interface, sockets and next port, and steps itself.
pub trait ClientSide {
    fn client_parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>, &mut u16);
    /// One step of the server and the clients, then 1 ms passes.
    fn step(&mut self);

    /// Steps until `done` holds; panics after `max` steps.
    fn run_until(&mut self, max: usize, mut done: impl FnMut(&mut Self) -> bool)
    where
        Self: Sized,
    {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!("not done after {max} steps");
    }

    /// A new client connection to the server's port 80 (HTTP's).
    fn connect(&mut self) -> SocketHandle {
        self.connect_to(80)
    }

    /// A new client connection to the server's `port`.
    fn connect_to(&mut self, port: u16) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0; 1 << 16]);
        let tx = tcp::SocketBuffer::new(vec![0; 1 << 14]);
        let mut socket = tcp::Socket::new(rx, tx);
        let (client, sockets, next_port) = self.client_parts();
        *next_port += 1;
        socket.connect(client.context(), (IpAddress::Ipv4(smol(SERVER_IP)), port), *next_port).unwrap();
        sockets.add(socket)
    }

    fn socket(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.client_parts().1.get_mut::<tcp::Socket>(h)
    }

    fn established(&mut self, h: SocketHandle) -> bool {
        self.socket(h).state() == tcp::State::Established
    }

    fn send(&mut self, h: SocketHandle, data: &[u8]) {
        assert_eq!(self.socket(h).send_slice(data), Ok(data.len()));
    }

    /// Everything the client socket has received so far.
    fn take(&mut self, h: SocketHandle, into: &mut Vec<u8>) {
        let s = self.socket(h);
        while s.can_recv() {
            s.recv(|d| {
                into.extend_from_slice(d);
                (d.len(), ())
            })
            .unwrap();
        }
    }
}
