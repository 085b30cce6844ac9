//! The receive path: driver `rx_active` → classification in place → one
//! copy into each receiver's buffer → the driver's `rx_free`.

use lib_net_protocol::{
    is_restart_marker, rx_csum_offset, rx_csum_start, CLIENT_RX_DATA_SIZE, MAX_FRAME_LEN, MIN_FRAME_LEN,
    RX_BUFFER_SIZE, RX_CSUM_PARTIAL, RX_CSUM_VALID,
};
use lib_queue::{BufferDesc, QueueError};
use net_config::NodeAddress;
use net_packet::{ethernet, EtherType, EthernetAddress, Ipv4Address};

use crate::{Client, Mux, SharedMemory};

/// Why a received frame was not for the node (the NIC receives every frame
/// on the link; the demultiplexer delivers only the node's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxRefused {
    /// The Ethernet destination is another station's unicast address.
    NotOurMac,
    /// A multicast Ethernet destination other than broadcast: no PD can
    /// subscribe to a multicast group (there is no call for it), so none
    /// is delivered.
    Multicast,
    /// An IPv4 destination other than the node's address, the limited
    /// broadcast 255.255.255.255 or the link's directed broadcast.
    NotOurIp,
}

impl RxRefused {
    /// How many counters [`RxRefused::index`] numbers.
    pub const COUNT: usize = 3;

    pub const fn index(self) -> usize {
        match self {
            RxRefused::NotOurMac => 0,
            RxRefused::Multicast => 1,
            RxRefused::NotOurIp => 2,
        }
    }

    /// The name of counter `index`, for logs.
    pub const fn name_of(index: usize) -> &'static str {
        match index {
            0 => "not-our-mac",
            1 => "multicast",
            2 => "not-our-ip",
            _ => "?",
        }
    }
}

/// Whether `frame` is addressed to the node at `mac` and `node`: its
/// Ethernet destination is `mac` or broadcast (RFC 894 carries IPv4 to
/// the station's own address or broadcast; RFC 1122 §3.3.6 lets a host
/// drop a datagram sent to a link-layer broadcast only at the IP layer,
/// which the rule below does), and an IPv4 packet's destination is the
/// node's address or a broadcast of its link (RFC 1122 §3.3.4.2 has a host
/// without forwarding discard datagrams for other addresses; §3.2.1.3 lists
/// the broadcasts). Frames too short to carry the IPv4 destination are left
/// to classification, which drops them as malformed.
pub(crate) fn addressed_to_node(frame: &[u8], mac: EthernetAddress, node: &NodeAddress) -> Result<(), RxRefused> {
    let Some(dst) = frame.get(..6) else { return Ok(()) };
    let dst = EthernetAddress([dst[0], dst[1], dst[2], dst[3], dst[4], dst[5]]);
    if dst != mac && !dst.is_broadcast() {
        return Err(if dst.is_multicast() { RxRefused::Multicast } else { RxRefused::NotOurMac });
    }
    let ipv4 = frame.get(12..14) == Some(&EtherType::IPV4.0.to_be_bytes()[..]);
    let at = ethernet::HEADER_LEN + 16;
    match frame.get(at..at + 4) {
        Some(ip) if ipv4 => {
            let ip = Ipv4Address([ip[0], ip[1], ip[2], ip[3]]);
            if ip == node.ipv4 || ip == Ipv4Address::BROADCAST || ip == node.broadcast() {
                Ok(())
            } else {
                Err(RxRefused::NotOurIp)
            }
        }
        _ => Ok(()),
    }
}

impl<M: SharedMemory> Mux<'_, M> {
    /// Takes every frame the driver has received, hands each buffer back at
    /// once, and delivers the frames.
    pub(crate) fn receive(&mut self) {
        loop {
            let desc = match self.driver.port.rx.active.dequeue() {
                Ok(Some(desc)) => desc,
                Ok(None) => break,
                // A restarted driver's marker (net-protocol, "Starting
                // over"): nothing more from it until it attached again.
                Err(QueueError::OutOfBounds(desc)) if is_restart_marker(&desc) => {
                    self.driver.restarted = true;
                    break;
                }
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
            let Mux { driver, table, clients, mac, node, answers, .. } = self;
            // Classified and delivered in place: the buffer is ours until
            // it goes back below.
            let delivered = (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len)
                && driver
                    .port
                    .rx_data
                    .view(desc.offset as usize, len, |frame| {
                        // Not the node's: counted, never delivered, not
                        // classified (no filter hit, no stray answer).
                        if let Err(reason) = addressed_to_node(frame, *mac, node) {
                            driver.counters.rx_refused[reason.index()] += 1;
                            return;
                        }
                        // A malformed frame is counted by the table, under its reason.
                        let Ok(decision) = table.classify_frame(frame) else { return };
                        let (cookie, fix) = checksum_state(frame, desc.cookie);
                        // The one answer its receiver may send to it, if
                        // the receiver has an answer policy.
                        if let Some(owner) = decision.exclusive {
                            if let Some(Some(client)) = clients.get(owner.index()) {
                                if client.config.answers.any() {
                                    answers.record(owner.index(), &client.config.answers, *mac, node, frame, fix);
                                }
                            }
                        }
                        let receivers = decision.exclusive.into_iter().chain(decision.copies.iter());
                        for owner in receivers {
                            if let Some(Some(client)) = clients.get_mut(owner.index()) {
                                client.deliver(frame, cookie, fix);
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

/// The cookie a client's copy of `frame` carries, from the driver's
/// `cookie` (`net-protocol`, "Offloads"), and the checksum to write into
/// that copy: (offset in the frame, bytes). A valid checksum stays valid; a
/// partial one (the pseudo-header sum only, from the host's own stack) is
/// completed, as the device would have: the Internet checksum of the bytes
/// from `csum_start` to the end, stored at `csum_start + csum_offset`, 0
/// sent as 0xffff (virtio 1.x spec 5.1.6.2.1 and 5.1.6.4). Anything else,
/// or a partial checksum whose field lies outside the frame, is not vouched
/// for (cookie 0).
fn checksum_state(frame: &[u8], cookie: u32) -> (u32, Option<(usize, [u8; 2])>) {
    if cookie & RX_CSUM_VALID != 0 {
        return (RX_CSUM_VALID, None);
    }
    if cookie & RX_CSUM_PARTIAL == 0 {
        return (0, None);
    }
    let (start, at) = (rx_csum_start(cookie), rx_csum_start(cookie) + rx_csum_offset(cookie));
    if at + 2 > frame.len() || start > at {
        return (0, None);
    }
    let sum = match net_packet::checksum::checksum(&frame[start..]) {
        0 => 0xffff,
        sum => sum,
    };
    (RX_CSUM_VALID, Some((at, sum.to_be_bytes())))
}

impl<M: SharedMemory> Client<'_, M> {
    /// Copies `frame` into a buffer the client lent, with the checksum
    /// `fix` written into the copy, and queues it on the client's
    /// `rx_active` with `cookie`; with no buffer (or no room) the frame is
    /// dropped and counted.
    fn deliver(&mut self, frame: &[u8], cookie: u32, fix: Option<(usize, [u8; 2])>) {
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
            let is_buffer = buffer.offset % RX_BUFFER_SIZE as u64 == 0 && start < CLIENT_RX_DATA_SIZE;
            if !is_buffer || !self.port.rx_data.write(start, frame) {
                self.counters.queue_errors += 1;
                continue;
            }
            if let Some((at, sum)) = fix {
                // Inside the frame just written (checked by `checksum_state`).
                self.port.rx_data.write(start + at, &sum);
            }
            let filled = BufferDesc { offset: buffer.offset, len: frame.len() as u32, cookie };
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
