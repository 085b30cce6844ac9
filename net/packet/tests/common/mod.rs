//! Hand-built frames for the tests. Checksums are computed here by a
//! separate, deliberately naive implementation (sum all words into a u64,
//! fold at the end), not by the crate's `checksum` module.
#![allow(dead_code)]

pub const MAC_LOCAL: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const IP_LOCAL: [u8; 4] = [10, 0, 0, 1];
pub const IP_PEER: [u8; 4] = [10, 0, 0, 2];

/// The Internet checksum, naively.
pub fn internet_checksum(chunks: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = chunks.concat();
    let mut total: u64 = 0;
    for pair in bytes.chunks(2) {
        let high = u64::from(pair[0]) << 8;
        let low = pair.get(1).copied().map(u64::from).unwrap_or(0);
        total += high | low;
    }
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    !(total as u16)
}

pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], protocol: u8, len: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&src);
    bytes.extend_from_slice(&dst);
    bytes.extend_from_slice(&[0, protocol]);
    bytes.extend_from_slice(&(len as u16).to_be_bytes());
    bytes
}

pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An IPv4 header (IHL 5, DF) with a correct checksum, then `payload`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, protocol, 0, 0]);
    packet.extend_from_slice(&src);
    packet.extend_from_slice(&dst);
    let sum = internet_checksum(&[&packet]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// A UDP datagram with a correct checksum.
pub fn udp(src: [u8; 4], dst: [u8; 4], src_port: u16, dst_port: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut datagram = Vec::new();
    datagram.extend_from_slice(&src_port.to_be_bytes());
    datagram.extend_from_slice(&dst_port.to_be_bytes());
    datagram.extend_from_slice(&(len as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(data);
    let sum = internet_checksum(&[&pseudo_header(src, dst, 17, len), &datagram]);
    datagram[6..8].copy_from_slice(&sum.to_be_bytes());
    datagram
}

/// A TCP segment (data offset 5, window 8192) with a correct checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut segment = Vec::new();
    segment.extend_from_slice(&src_port.to_be_bytes());
    segment.extend_from_slice(&dst_port.to_be_bytes());
    segment.extend_from_slice(&seq.to_be_bytes());
    segment.extend_from_slice(&ack.to_be_bytes());
    segment.extend_from_slice(&[0x50, flags, 0x20, 0x00, 0, 0, 0, 0]);
    segment.extend_from_slice(data);
    let sum = internet_checksum(&[&pseudo_header(src, dst, 6, segment.len()), &segment]);
    segment[16..18].copy_from_slice(&sum.to_be_bytes());
    segment
}

/// An ICMP message with a correct checksum.
pub fn icmp(icmp_type: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut message = vec![icmp_type, code, 0, 0];
    message.extend_from_slice(&rest);
    message.extend_from_slice(data);
    let sum = internet_checksum(&[&message]);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

/// A whole frame from the peer to us: Ethernet + IPv4 + `l4`.
pub fn frame_to_local(protocol: u8, l4: &[u8]) -> Vec<u8> {
    ethernet(MAC_LOCAL, MAC_PEER, 0x0800, &ipv4(IP_PEER, IP_LOCAL, protocol, l4))
}

/// A TCP frame from the peer's port 40000 to our `dst_port`.
pub fn tcp_frame(dst_port: u16, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    frame_to_local(6, &tcp(IP_PEER, IP_LOCAL, 40000, dst_port, seq, ack, flags, data))
}

/// A UDP frame from the peer's port 5353 to our `dst_port`.
pub fn udp_frame(dst_port: u16, data: &[u8]) -> Vec<u8> {
    frame_to_local(17, &udp(IP_PEER, IP_LOCAL, 5353, dst_port, data))
}

/// Recomputes the IPv4 header checksum of `frame` after a test edited it.
pub fn fix_ip_checksum(frame: &mut [u8]) {
    let ihl = (usize::from(frame[14] & 0x0f) * 4).min(frame.len() - 14);
    frame[24..26].fill(0);
    let sum = internet_checksum(&[&frame[14..14 + ihl]]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
}
