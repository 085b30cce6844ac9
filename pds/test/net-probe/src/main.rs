//! net-probe: a network PD that tests the demultiplexer's rules from the
//! inside, and a UDP service the integration test talks to from outside.
//!
//! The description grants it `udp dst 7000-7009` and claims `udp dst 7000`
//! for it. At `init` it:
//!
//! 1. makes claims the demultiplexer must refuse, each with its own error
//!    code (outside the grant, overlapping its own claim, a copy filter
//!    without the privilege), and one it must accept, removes it, and
//!    removes it again (no such filter);
//! 2. sends frames the demultiplexer must refuse (a forged source IPv4
//!    address, a source port it does not own) and checks the refusals in
//!    the demultiplexer's counters;
//! 3. asks arpd for the gateway's MAC and logs it when arpd notifies;
//! 4. fills its `send_from` region `probe_payload` with [`pattern`] and
//!    sends a frame with an in-place range past the region's end, which
//!    the demultiplexer must refuse (and count).
//!
//! Each step logs one line ending in `ok` or `FAILED`, which the test
//! checks. Then it answers UDP datagrams to port 7000 with the same
//! payload (an echo), except the payload `stats`, answered with the
//! demultiplexer's counters, which are logged too, and the payloads
//! `in-place` and `in-place-max`, answered to port [`IN_PLACE_PORT`] with
//! a datagram sent partly in place ([`SINGLE`], [`MOST`]): its payload is
//! [`IN_PLACE_PREFIX`], then each range of the region (read by the NIC
//! where it is) followed by a copied [`separator`], the last by
//! [`IN_PLACE_TRAILER`] instead. In the transmit buffer, the bytes the
//! ranges replace are [`POISON`]: a frame that took them from there would
//! be wrong. The payload `in-place-csum` is answered like `in-place`, but
//! with checksum offload (`net-protocol`, "Offloads") if the driver has
//! it: the UDP checksum field holds only the pseudo-header sum, and the
//! device (QEMU, or the host behind a TAP with virtio headers) completes
//! it.
#![no_std]
#![no_main]

use arpd_api::{Arpd, Resolution};
use net_client::{InPlace, InPlaceList, MuxError, NetClient, SendError, TxOffload, OFFLOAD_TX_CSUM};
use net_config::CLIENT_ARPD_CHANNEL;
use net_filter::{Dotted, Filter, FilterError, FilterId, FilterKind};
use net_packet::checksum::Checksum;
use net_packet::{
    classify, udp, EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Repr, Network, Transport,
};
use pds_runtime::{log, Channel, ChannelSet, Handler, MemoryRegion};

const ARPD: Channel = Channel::new(CLIENT_ARPD_CHANNEL);
/// The port of the echo service (claimed in the description).
const ECHO_PORT: u16 = 7000;
/// A port inside the grant that no one claims at boot.
const SPARE_PORT: u16 = 7001;

/// Where the in-place datagrams go on the host that asked for them.
const IN_PLACE_PORT: u16 = 7009;
/// Copied after the UDP header, before the first in-place range.
const IN_PLACE_PREFIX: &[u8; 16] = b"in-place follows";
/// Copied after the last in-place range.
const IN_PLACE_TRAILER: &[u8; 8] = b"-the end";
/// The in-place ranges (offset in `probe_payload`, bytes) of the answer to
/// `in-place`: 1000 bytes between a copied prefix and trailer.
const SINGLE: [(u32, usize); 1] = [(0x234, 1000)];
/// Of the answer to `in-place-max`: as many ranges as a frame may have
/// (`net_client::MAX_IN_PLACE`), at odd offsets, each between copied
/// pieces: 15 descriptors, a chain of 16 at the driver.
const MOST: [(u32, usize); net_client::MAX_IN_PLACE] =
    [(0x001, 120), (0x101, 120), (0x201, 120), (0x301, 120), (0x401, 120), (0x501, 120), (0x601, 120)];
/// What the transmit buffer holds where in-place bytes go.
const POISON: u8 = 0xee;

/// The copied piece after in-place range `i` (but the last).
fn separator(i: usize) -> [u8; 8] {
    [b'|', b'p', b'i', b'e', b'c', b'e', b'-', b'0' + i as u8]
}

// The send_from region, mapped read-write: this PD writes what the NIC reads.
pds_runtime::setvar!(probe_payload);
pds_runtime::setvar!(probe_payload_size);

/// Byte `i` of `probe_payload` (the integration test knows it too).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

struct Probe {
    net: NetClient,
    /// The `send_from` region, filled with [`pattern`]; `None` if the
    /// description did not map it (said so in the log).
    payload: Option<MemoryRegion>,
    /// Waiting for arpd to resolve this address.
    resolving: Option<Ipv4Address>,
    echoed: u64,
}

/// Maps `probe_payload` and fills it with [`pattern`].
fn fill_payload() -> Option<MemoryRegion> {
    let size = pds_runtime::require_setvar!(probe_payload_size)? as usize;
    // SAFETY: the description maps the region `probe_payload` read-write at
    // `probe_payload`, `probe_payload_size` bytes, for the PD's life. Only
    // this PD writes it; the NIC reads it by DMA.
    let region = unsafe { MemoryRegion::from_var(&probe_payload, size) }?;
    for i in 0..size {
        region.write(i, pattern(i));
    }
    Some(region)
}

/// Where an in-place datagram goes and which ranges of the region it
/// carries.
struct InPlaceDatagram<'a> {
    dst_mac: EthernetAddress,
    dst: Ipv4Address,
    dst_port: u16,
    /// (offset in the region, bytes), in payload order; even lengths.
    ranges: &'a [(u32, usize)],
    /// Ask the device for the UDP checksum.
    offload: bool,
}

/// Sends a UDP datagram from [`ECHO_PORT`]: the prefix, each range of
/// `region` in place followed by its separator (the last by the trailer),
/// with a UDP checksum over the datagram as the NIC will read it (the
/// ranges as the region holds them; zeros for bytes outside it, a range
/// the demultiplexer must refuse); with `offload`, only the pseudo-header
/// sum, for the device to complete (virtio 1.x spec 5.1.6.2).
fn send_in_place(net: &mut NetClient, region: &MemoryRegion, to: &InPlaceDatagram) -> Result<bool, SendError> {
    const UDP_AT: usize = 14 + 20;
    let in_place: usize = to.ranges.iter().map(|&(_, len)| len).sum();
    let udp_len =
        8 + IN_PLACE_PREFIX.len() + in_place + 8 * (to.ranges.len().saturating_sub(1)) + IN_PLACE_TRAILER.len();
    let len = UDP_AT + udp_len;
    let src = net.node().ipv4;
    let src_mac = EthernetAddress(net.mac);
    let offload = to.offload.then_some(TxOffload::checksum(UDP_AT as u8, (UDP_AT + 8) as u8, false));
    net.send_offloaded(len, offload, |frame| {
        EthernetRepr { dst: to.dst_mac, src: src_mac, ethertype: EtherType::IPV4 }.emit(frame)?;
        let ip = Ipv4Repr {
            src,
            dst: to.dst,
            protocol: IpProtocol::UDP,
            payload_len: udp_len as u16,
            ttl: Ipv4Repr::DEFAULT_TTL,
        };
        ip.emit(&mut frame[14..])?;
        let datagram = frame.get_mut(UDP_AT..)?;
        datagram[0..2].copy_from_slice(&ECHO_PORT.to_be_bytes());
        datagram[2..4].copy_from_slice(&to.dst_port.to_be_bytes());
        datagram[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        datagram[6..8].copy_from_slice(&[0, 0]);
        let mut at = 8;
        datagram[at..at + IN_PLACE_PREFIX.len()].copy_from_slice(IN_PLACE_PREFIX);
        at += IN_PLACE_PREFIX.len();
        // The datagram as the NIC reads it, for the checksum only.
        let mut wire = [0u8; net_client::MAX_FRAME_LEN];
        let mut ranges = InPlaceList::new();
        for (i, &(offset, range_len)) in to.ranges.iter().enumerate() {
            datagram.get_mut(at..at + range_len)?.fill(POISON);
            let _ = region.copy_out(offset as usize, &mut wire[at..at + range_len]);
            ranges.push(InPlace { at: UDP_AT + at, len: range_len, offset }).ok()?;
            at += range_len;
            let after = if i + 1 < to.ranges.len() { separator(i) } else { *IN_PLACE_TRAILER };
            datagram[at..at + 8].copy_from_slice(&after);
            at += 8;
        }
        for (i, byte) in datagram.iter().enumerate() {
            if !ranges.as_slice().iter().any(|r| (r.at - UDP_AT..r.at - UDP_AT + r.len).contains(&i)) {
                wire[i] = *byte;
            }
        }
        let mut sum = Checksum::new();
        sum.add_pseudo_header(src, to.dst, IpProtocol::UDP, udp_len as u16);
        let checksum = if to.offload {
            sum.sum()
        } else {
            sum.add_bytes(&wire[..udp_len]);
            match sum.finish() {
                0 => 0xffff,
                value => value,
            }
        };
        datagram[6..8].copy_from_slice(&checksum.to_be_bytes());
        Some(ranges)
    })
}

/// Writes an Ethernet/IPv4/UDP frame into `out`; its length.
#[allow(clippy::too_many_arguments)]
fn udp_frame(
    dst_mac: EthernetAddress,
    src_mac: EthernetAddress,
    src: Ipv4Address,
    dst: Ipv4Address,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    const HEADERS: usize = 14 + 20 + 8;
    let len = HEADERS + payload.len();
    let frame = out.get_mut(..len)?;
    EthernetRepr { dst: dst_mac, src: src_mac, ethertype: EtherType::IPV4 }.emit(frame)?;
    let udp_len = (8 + payload.len()) as u16;
    Ipv4Repr { src, dst, protocol: IpProtocol::UDP, payload_len: udp_len, ttl: Ipv4Repr::DEFAULT_TTL }
        .emit(&mut frame[14..])?;
    let datagram = &mut frame[34..];
    datagram[0..2].copy_from_slice(&src_port.to_be_bytes());
    datagram[2..4].copy_from_slice(&dst_port.to_be_bytes());
    datagram[4..6].copy_from_slice(&udp_len.to_be_bytes());
    datagram[6..8].copy_from_slice(&[0, 0]);
    datagram[8..].copy_from_slice(payload);
    let sum = udp::checksum(src, dst, datagram);
    datagram[6..8].copy_from_slice(&sum.to_be_bytes());
    Some(len)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

impl Probe {
    /// Answers every datagram waiting, then arms the queues' signals.
    fn serve(&mut self) {
        let (echoed, payload) = (&mut self.echoed, self.payload.as_ref());
        self.net.poll(|net, frame| on_frame(net, payload, echoed, frame));
    }

    /// Step 1: claims, each expected to give one result.
    fn claims(&self) {
        let tries: [(&str, FilterKind, Result<(), FilterError>); 3] = [
            ("udp dst 8000", FilterKind::Exclusive, Err(FilterError::OutOfGrant)),
            (
                "udp dst 7000",
                FilterKind::Exclusive,
                Err(FilterError::Overlaps { with: net_filter::FilterId::from_raw(0) }),
            ),
            ("udp dst 7002", FilterKind::Copy, Err(FilterError::CopyNotPrivileged)),
        ];
        for (text, kind, expected) in tries {
            let Ok(filter) = Filter::parse(text) else { continue };
            let got = self.net.install(&filter, kind);
            // Overlaps names the filter overlapped: only the kind of error is compared.
            let code = |r: Result<FilterId, MuxError>| r.err().map(|e| e.label());
            let ok = code(got) == expected.err().map(|e| MuxError::Filter(e).label());
            log!("claim {kind:?} \"{filter}\": {got:?}, expected {expected:?}: {}", verdict(ok));
        }
        let spare = Filter::udp_dst_port(SPARE_PORT);
        let installed = self.net.install(&spare, FilterKind::Exclusive);
        let removed = installed.map(|id| (self.net.remove(id), self.net.remove(id)));
        let ok = removed == Ok((Ok(()), Err(MuxError::Filter(FilterError::NoSuchFilter))));
        log!(
            "claim \"{spare}\" inside the grant: installed {installed:?}, removed then removed again {removed:?}: {}",
            verdict(ok)
        );
    }

    /// Step 2: frames the demultiplexer must refuse.
    fn forged_sends(&mut self) {
        let before = self.net.stats().map(|s| s.tx_refused).unwrap_or(0);
        let node = *self.net.node();
        let gateway = node.gateway.unwrap_or(node.ipv4);
        let mac = EthernetAddress(self.net.mac);
        let mut frame = [0u8; 128];
        let forged: [(&str, Ipv4Address, u16); 2] = [
            ("forged source address", Ipv4Address::new(10, 0, 2, 99), ECHO_PORT),
            ("source port not owned", node.ipv4, 9999),
        ];
        for (what, src, src_port) in forged {
            if let Some(len) =
                udp_frame(EthernetAddress::BROADCAST, mac, src, gateway, src_port, 9, what.as_bytes(), &mut frame)
            {
                if let Err(e) = self.net.send(&frame[..len]) {
                    log!("error: could not queue the {what} frame: {e:?}");
                }
            }
        }
        // The demultiplexer runs at a higher priority: it has handled the
        // frames once notified, before this call returns.
        self.net.flush();
        let after = self.net.stats().map(|s| s.tx_refused).unwrap_or(0);
        log!("forged sends refused: tx_refused {before} -> {after}: {}", verdict(after == before + 2));
    }

    /// Step 4: an in-place range past the end of the `send_from` region,
    /// which the demultiplexer must refuse. `NetClient` checks ranges
    /// against the region's size in the configuration, so for this one
    /// frame the probe pretends its region is twice as large, as a buggy
    /// or hostile client could: the demultiplexer knows the real size.
    fn in_place_out_of_bounds(&mut self) {
        let Some(region) = self.payload else { return };
        let before = self.net.stats().unwrap_or_default();
        let me = self.net.my_index();
        let real = self.net.config.clients[me].send_from_size;
        self.net.config.clients[me].send_from_size = 2 * real;
        let node = *self.net.node();
        let past_the_end = [((real - 500) as u32, 1000)];
        let to = InPlaceDatagram {
            dst_mac: EthernetAddress::BROADCAST,
            dst: node.gateway.unwrap_or(node.ipv4),
            dst_port: IN_PLACE_PORT,
            ranges: &past_the_end,
            offload: false,
        };
        let queued = send_in_place(&mut self.net, &region, &to);
        self.net.config.clients[me].send_from_size = real;
        self.net.flush();
        let after = self.net.stats().unwrap_or_default();
        let ok = queued == Ok(true)
            && after.tx_refused == before.tx_refused + 1
            && after.tx_in_place_bytes == before.tx_in_place_bytes;
        log!(
            "in-place range past the end of send_from refused: queued {queued:?}, tx_refused {} -> {}, in place {} -> {} bytes: {}",
            before.tx_refused,
            after.tx_refused,
            before.tx_in_place_bytes,
            after.tx_in_place_bytes,
            verdict(ok)
        );
    }

    /// Step 3 and its completion: the gateway's MAC from arpd.
    fn resolve(&mut self) {
        let Some(address) = self.resolving else { return };
        match Arpd::new(ARPD).resolve(address) {
            Resolution::Known(mac) => {
                let [a, b, c, d, e, f] = mac.0;
                log!("resolved {} is-at {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}: ok", Dotted(address));
                self.resolving = None;
            }
            Resolution::Pending => log!("resolving {}: pending", Dotted(address)),
            other => {
                log!("resolving {}: arpd answered {other:?}: FAILED", Dotted(address));
                self.resolving = None;
            }
        }
    }
}

/// The UDP service: echo, counters for `stats`, a datagram sent in place
/// for `in-place`.
fn on_frame(net: &mut NetClient, payload_region: Option<&MemoryRegion>, echoed: &mut u64, frame: &[u8]) {
    let Ok(parsed) = classify(frame) else { return };
    let Network::Ipv4(ip) = parsed.network else { return };
    let Transport::Udp { src_port, dst_port } = ip.transport else { return };
    if dst_port != ECHO_PORT || ip.dst != net.node().ipv4 {
        return;
    }
    let Some(payload) = net_packet::Ipv4Packet::parse(&frame[14..])
        .ok()
        .and_then(|p| udp::UdpDatagram::parse(p.payload()).ok())
        .map(|d| d.payload())
    else {
        return;
    };
    let ranges: Option<(&[(u32, usize)], bool)> = match payload {
        b"in-place" => Some((&SINGLE, false)),
        b"in-place-max" => Some((&MOST, false)),
        b"in-place-csum" => Some((&SINGLE, net.offloads & OFFLOAD_TX_CSUM != 0)),
        _ => None,
    };
    if let Some((ranges, offload)) = ranges {
        let Some(region) = payload_region else { return };
        let to = InPlaceDatagram { dst_mac: parsed.src_mac, dst: ip.src, dst_port: IN_PLACE_PORT, ranges, offload };
        match send_in_place(net, region, &to) {
            Ok(_) => log!(
                "sent {} bytes in place in {} ranges to {}:{IN_PLACE_PORT}, checksum by {}",
                ranges.iter().map(|&(_, len)| len).sum::<usize>(),
                ranges.len(),
                Dotted(ip.src),
                if offload { "the device" } else { "the probe" }
            ),
            Err(e) => log!("error: in-place datagram not sent: {e:?}"),
        }
        return;
    }
    let mut text = [0u8; 256];
    let answer: &[u8] = if payload == b"stats" {
        match net.stats() {
            Ok(stats) => {
                log!("stats: {stats}");
                let mut w = Writer { buf: &mut text, len: 0 };
                let _ = core::fmt::write(&mut w, format_args!("{stats}\n"));
                let len = w.len;
                &text[..len]
            }
            Err(e) => {
                log!("stats call refused: {e}");
                return;
            }
        }
    } else {
        payload
    };
    let mut out = [0u8; net_client::MAX_FRAME_LEN];
    let dst_mac = parsed.src_mac;
    let mac = EthernetAddress(net.mac);
    if let Some(len) = udp_frame(dst_mac, mac, ip.dst, ip.src, ECHO_PORT, src_port, answer, &mut out) {
        match net.send(&out[..len]) {
            Ok(()) => *echoed += 1,
            Err(e) => log!("error: echo not sent: {e:?}"),
        }
    }
}

/// `core::fmt::Write` into a byte buffer, truncating.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Handler for Probe {
    fn init() -> Self {
        let net = match NetClient::new() {
            Ok(net) => net,
            Err(e) => panic!("{e}"),
        };
        let node = *net.node();
        let mut probe = Probe { net, payload: fill_payload(), resolving: node.gateway, echoed: 0 };
        log!("up: {} on a /{}", Dotted(node.ipv4), node.prefix_len);
        probe.claims();
        probe.forged_sends();
        probe.in_place_out_of_bounds();
        probe.resolve();
        // Datagrams that arrived during the checks above are answered now,
        // not dropped: a peer may start as soon as the port is claimed.
        probe.serve();
        log!("driver offloads (from the demultiplexer): {:#x}", probe.net.offloads);
        log!("ready: echoing UDP port {ECHO_PORT}");
        probe
    }

    fn notified(&mut self, channels: ChannelSet) {
        if channels.contains(ARPD) {
            self.resolve();
        }
        self.serve();
    }
}

pds_runtime::protection_domain!(Probe);
