//! One pass over a received frame: validate every header the demultiplexer
//! relies on and extract the fields its filters match.

use crate::arp::{ArpOperation, ArpPacket};
use crate::ethernet::{EtherType, EthernetAddress, EthernetFrame};
use crate::icmp::{IcmpMessage, IcmpType};
use crate::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet};
use crate::tcp::{TcpFlags, TcpSegment};
use crate::udp::UdpDatagram;
use crate::Malformed;

/// The header fields of a valid frame that demultiplexing and transmit
/// validation look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub dst_mac: EthernetAddress,
    pub src_mac: EthernetAddress,
    pub ethertype: EtherType,
    pub network: Network,
}

/// What the Ethernet frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Arp(ArpSummary),
    Ipv4(Ipv4Summary),
    /// Any other EtherType; its payload is not looked at.
    Other,
}

/// The fields of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSummary {
    pub operation: ArpOperation,
    pub sender_mac: EthernetAddress,
    pub sender_ip: Ipv4Address,
    pub target_mac: EthernetAddress,
    pub target_ip: Ipv4Address,
}

/// The fields of an unfragmented, option-less IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Summary {
    pub src: Ipv4Address,
    pub dst: Ipv4Address,
    pub protocol: IpProtocol,
    pub transport: Transport,
}

/// What the IPv4 packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    Icmp {
        icmp_type: IcmpType,
        code: u8,
    },
    /// Any other protocol; its payload is not looked at.
    Other,
}

impl Parsed {
    /// The IPv4 fields, if this is IPv4.
    pub fn ipv4(&self) -> Option<&Ipv4Summary> {
        match &self.network {
            Network::Ipv4(ip) => Some(ip),
            _ => None,
        }
    }

    pub fn ip_protocol(&self) -> Option<IpProtocol> {
        self.ipv4().map(|ip| ip.protocol)
    }

    pub fn src_ip(&self) -> Option<Ipv4Address> {
        self.ipv4().map(|ip| ip.src)
    }

    pub fn dst_ip(&self) -> Option<Ipv4Address> {
        self.ipv4().map(|ip| ip.dst)
    }

    /// `(source, destination)` ports of TCP or UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.ipv4()?.transport {
            Transport::Tcp { src_port, dst_port, .. } | Transport::Udp { src_port, dst_port } => {
                Some((src_port, dst_port))
            }
            _ => None,
        }
    }

    pub fn src_port(&self) -> Option<u16> {
        self.ports().map(|(src, _)| src)
    }

    pub fn dst_port(&self) -> Option<u16> {
        self.ports().map(|(_, dst)| dst)
    }

    pub fn tcp_flags(&self) -> Option<TcpFlags> {
        match self.ipv4()?.transport {
            Transport::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }

    /// The same summary with source and destination exchanged (MACs, IPv4
    /// addresses, ports): what an answer to this packet looks like. Transmit
    /// validation asks whether the reverse of an outgoing packet is traffic
    /// the sender owns. ARP and other payloads are kept as they are.
    pub fn reversed(&self) -> Parsed {
        let network = match self.network {
            Network::Ipv4(ip) => Network::Ipv4(Ipv4Summary {
                src: ip.dst,
                dst: ip.src,
                protocol: ip.protocol,
                transport: match ip.transport {
                    Transport::Tcp { src_port, dst_port, seq, ack, flags } => {
                        Transport::Tcp { src_port: dst_port, dst_port: src_port, seq, ack, flags }
                    }
                    Transport::Udp { src_port, dst_port } => Transport::Udp { src_port: dst_port, dst_port: src_port },
                    other => other,
                },
            }),
            other => other,
        };
        Parsed { dst_mac: self.src_mac, src_mac: self.dst_mac, ethertype: self.ethertype, network }
    }
}

/// Validates a received frame and summarises it.
///
/// Checks the Ethernet header; for IPv4 every check of
/// [`Ipv4Packet::parse`] (version, IHL, total length, header checksum), then
/// refuses fragments ([`Malformed::Fragment`]) and options
/// ([`Malformed::Options`]), then the TCP, UDP or ICMP header within the
/// IPv4 payload; for ARP, that it is Ethernet/IPv4 ARP. Other EtherTypes
/// and IP protocols are [`Network::Other`] and [`Transport::Other`].
///
/// TCP, UDP and ICMP checksums are *not* verified: the header checksum
/// already protects the addresses, protocol and lengths the demultiplexer
/// trusts, the ports cannot be confused with other fields, and the end
/// point verifies the data it consumes (RFC 1122 §4.1.3.4 puts the UDP
/// check on the receiving host). [`classify_strict`] verifies them too.
pub fn classify(frame: &[u8]) -> Result<Parsed, Malformed> {
    classify_with(frame, Checks::Received { verify_l4_checksum: false })
}

/// [`classify`], and also verifies the TCP, UDP (when not zero) and ICMP
/// checksums ([`Malformed::BadL4Checksum`]).
pub fn classify_strict(frame: &[u8]) -> Result<Parsed, Malformed> {
    classify_with(frame, Checks::Received { verify_l4_checksum: true })
}

/// Summarises a copy of the *headers* of an outgoing frame, whose payload
/// may be elsewhere (a gather list). Checks what a sender could use to
/// mislead transmit validation: header presence, IPv4 version and IHL, and
/// refuses fragments and options like [`classify`]; it does not look at
/// lengths or checksums, which cover bytes not in the copy.
pub fn classify_headers(headers: &[u8]) -> Result<Parsed, Malformed> {
    classify_with(headers, Checks::HeadersOnly)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    Received { verify_l4_checksum: bool },
    HeadersOnly,
}

fn classify_with(frame: &[u8], checks: Checks) -> Result<Parsed, Malformed> {
    let ethernet = EthernetFrame::parse(frame)?;
    let network = match ethernet.ethertype() {
        EtherType::IPV4 => Network::Ipv4(summarise_ipv4(ethernet.payload(), checks)?),
        EtherType::ARP => Network::Arp(summarise_arp(ethernet.payload())?),
        _ => Network::Other,
    };
    Ok(Parsed { dst_mac: ethernet.dst(), src_mac: ethernet.src(), ethertype: ethernet.ethertype(), network })
}

fn summarise_arp(bytes: &[u8]) -> Result<ArpSummary, Malformed> {
    let arp = ArpPacket::parse(bytes)?;
    Ok(ArpSummary {
        operation: arp.operation().ok_or(Malformed::UnsupportedArp)?,
        sender_mac: arp.sender_mac(),
        sender_ip: arp.sender_ip(),
        target_mac: arp.target_mac(),
        target_ip: arp.target_ip(),
    })
}

fn summarise_ipv4(bytes: &[u8], checks: Checks) -> Result<Ipv4Summary, Malformed> {
    let ip = match checks {
        Checks::Received { .. } => Ipv4Packet::parse(bytes)?,
        Checks::HeadersOnly => Ipv4Packet::parse_header(bytes)?,
    };
    if ip.is_fragment() {
        return Err(Malformed::Fragment);
    }
    if ip.has_options() {
        return Err(Malformed::Options);
    }
    let verify = checks == Checks::Received { verify_l4_checksum: true };
    let (src, dst, payload) = (ip.src(), ip.dst(), ip.payload());
    let transport = match ip.protocol() {
        IpProtocol::TCP => {
            let tcp = match checks {
                Checks::Received { .. } => TcpSegment::parse(payload)?,
                Checks::HeadersOnly => TcpSegment::parse_header(payload)?,
            };
            if verify && !tcp.verify_checksum(src, dst) {
                return Err(Malformed::BadL4Checksum);
            }
            Transport::Tcp {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                seq: tcp.seq(),
                ack: tcp.ack(),
                flags: tcp.flags(),
            }
        }
        IpProtocol::UDP => {
            let udp = match checks {
                Checks::Received { .. } => UdpDatagram::parse(payload)?,
                Checks::HeadersOnly => UdpDatagram::parse_header(payload)?,
            };
            if verify && !udp.verify_checksum(src, dst) {
                return Err(Malformed::BadL4Checksum);
            }
            Transport::Udp { src_port: udp.src_port(), dst_port: udp.dst_port() }
        }
        IpProtocol::ICMP => {
            let icmp = IcmpMessage::parse(payload)?;
            if verify && !icmp.verify_checksum() {
                return Err(Malformed::BadL4Checksum);
            }
            Transport::Icmp { icmp_type: icmp.icmp_type(), code: icmp.code() }
        }
        _ => Transport::Other,
    };
    Ok(Ipv4Summary { src, dst, protocol: ip.protocol(), transport })
}
