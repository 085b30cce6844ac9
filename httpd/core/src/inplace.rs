//! Sending file data in place from smoltcp's segments: net-serve's
//! [`Outgoing`] extents (its module docs: the idea, stream offsets,
//! checksums, pins) and, for the smoltcp server, the [`Planner`] the device
//! asks which ranges of each segment smoltcp built are file data.

pub use crate::endpoints::Peer;
use net_packet::{tcp, IpProtocol, Ipv4Packet, TcpSegment};
pub use net_serve::inplace::*;

/// Where an outgoing TCP segment's payload comes from: the server's
/// connections ([`Outgoing::plan`] for the connection to `peer`).
pub trait Planner {
    /// The plan of a payload to `peer` with sequence number `seq`.
    fn plan(&mut self, peer: Peer, seq: u32, payload: &[u8]) -> Result<Planned, PlanError>;
}

/// Every payload from the transmit buffer (a stack that sends no file
/// data in place).
pub struct Copied;

impl Planner for Copied {
    fn plan(&mut self, _peer: Peer, _seq: u32, payload: &[u8]) -> Result<Planned, PlanError> {
        let mut sum = PayloadSum::default();
        sum.add_bytes(payload, 0);
        Ok(Planned { in_place: InPlaceList::new(), payload_sum: sum.0.sum() })
    }
}

/// Finishes an IPv4 packet the stack built, before it goes: for TCP, asks
/// `planner` which payload ranges are sent in place and writes the
/// checksum. Returns the in-place ranges, `at` relative to the frame in
/// which the packet starts at `packet_at`. Other packets (and malformed
/// ones, which the stack does not build) go as they are.
pub fn finish_packet(
    packet: &mut [u8],
    packet_at: usize,
    planner: &mut impl Planner,
) -> Result<InPlaceList, PlanError> {
    let Ok(ip) = Ipv4Packet::parse_header(packet) else {
        return Ok(InPlaceList::new());
    };
    if ip.protocol() != IpProtocol::TCP {
        return Ok(InPlaceList::new());
    }
    // The segment: the IP payload up to the total length (or the end of
    // the buffer, if shorter).
    let segment = ip.payload();
    let Ok(tcp) = TcpSegment::parse(segment) else {
        return Ok(InPlaceList::new());
    };
    let (ip_header, tcp_header) = (ip.header_len(), tcp.header_len());
    let peer = Peer { ip: ip.dst().to_u32(), port: tcp.dst_port() };
    let planned = planner.plan(peer, tcp.seq(), tcp.payload())?;
    let checksum = segment_checksum(ip.src().0, ip.dst().0, segment, tcp_header, planned.payload_sum);
    // `parse` saw a whole TCP header there: the field is in the buffer.
    tcp::set_checksum(&mut packet[ip_header..], checksum).ok_or(PlanError::Store)?;
    let mut ranges = InPlaceList::new();
    for r in planned.in_place.as_slice() {
        ranges.push(InPlace { at: packet_at + ip_header + tcp_header + r.at, ..*r }).map_err(|_| PlanError::Store)?;
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random packets, some made to look like TCP over IPv4: never a
    /// panic, never a range (the planner copies), and a packet that is
    /// TCP as far as its lengths go leaves with a checksum that verifies.
    #[test]
    fn random_packets_are_finished_or_left_alone() {
        let mut rng = lib_test_rng::Rng(5);
        let mut checked = 0;
        for _ in 0..20_000 {
            let mut packet = std::vec![0u8; rng.below(120)];
            rng.fill(&mut packet);
            if packet.len() >= 40 && rng.next().is_multiple_of(2) {
                packet[0] = 0x45;
                packet[9] = 6;
                let total = (20 + rng.below(packet.len() - 19)) as u16;
                packet[2..4].copy_from_slice(&total.to_be_bytes());
            }
            let ranges = finish_packet(&mut packet, 14, &mut Copied).unwrap();
            assert!(ranges.is_empty());
            let total = if packet.len() >= 20 { usize::from(u16::from_be_bytes([packet[2], packet[3]])) } else { 0 };
            let tcp = packet.len() >= 40 && packet[0] == 0x45 && packet[9] == 6 && (40..=packet.len()).contains(&total);
            if tcp && (20..=total - 20).contains(&(usize::from(packet[32] >> 4) * 4)) {
                let mut sum = net_packet::checksum::Checksum::new();
                let address = |at: usize| {
                    net_packet::ipv4::Ipv4Address([packet[at], packet[at + 1], packet[at + 2], packet[at + 3]])
                };
                sum.add_pseudo_header(address(12), address(16), net_packet::ipv4::IpProtocol::TCP, (total - 20) as u16);
                sum.add_bytes(&packet[20..total]);
                assert!(sum.is_valid(), "{packet:02x?}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "only {checked} TCP packets checked");
    }
}
