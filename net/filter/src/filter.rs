//! Filters over the header fields of the IP suite, and the two relations
//! the table needs between them: *overlap* (some packet matches both) and
//! *containment* (every packet one matches, the other matches too).
//!
//! # What a filter matches
//!
//! A [`Filter`] has optional fields; an absent field is a wildcard. A
//! filter matches a frame when every present field matches, where fields
//! that only exist in some frames imply their protocol:
//!
//! - any IPv4 field (protocol, addresses, ports) implies EtherType IPv4;
//! - a port field implies a protocol with ports: TCP or UDP. "Destination
//!   port 53" alone matches TCP and UDP to port 53, never ICMP.
//!
//! A filter whose explicit fields contradict these implications (EtherType
//! ARP with a protocol, protocol ICMP with a port) matches nothing and is
//! [inconsistent](Filter::is_consistent); the table refuses it.
//!
//! # Relations
//!
//! Because of the implications, a consistent filter is a product of one set
//! per dimension — EtherType, protocol, source prefix, destination prefix,
//! source ports, destination ports — with an absent field being the whole
//! dimension (a prefix of length 0, the port range 0–65535). So:
//!
//! - two filters [overlap](Filter::overlaps) exactly when their sets
//!   intersect in every dimension: "TCP dst 80" and "TCP dst 80 from
//!   10.0.0.0/8" overlap (a packet from 10.1.2.3 matches both); "TCP dst 80"
//!   and "UDP dst 80" do not (no packet is both TCP and UDP);
//! - a filter [is within](Filter::is_within) another exactly when its set
//!   is a subset in every dimension.
//!
//! Both are exact for consistent filters, not approximations.

use net_packet::{EtherType, IpProtocol, Ipv4Address, Parsed};

/// An IPv4 address prefix such as `10.0.0.0/8`. Host bits are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    network: Ipv4Address,
    len: u8,
}

impl Ipv4Prefix {
    /// Every address: `0.0.0.0/0`.
    pub const ANY: Ipv4Prefix = Ipv4Prefix { network: Ipv4Address::UNSPECIFIED, len: 0 };

    /// The prefix of the first `len` bits of `address` (host bits are
    /// cleared); `None` if `len` exceeds 32.
    pub fn new(address: Ipv4Address, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        let network = Ipv4Address::from_u32(address.to_u32() & mask(len));
        Some(Ipv4Prefix { network, len })
    }

    /// The one-address prefix `address/32`.
    pub fn host(address: Ipv4Address) -> Self {
        Ipv4Prefix { network: address, len: 32 }
    }

    /// The first address of the prefix.
    pub fn network(&self) -> Ipv4Address {
        self.network
    }

    /// The prefix length in bits, 0–32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn contains_address(&self, address: Ipv4Address) -> bool {
        address.to_u32() & mask(self.len) == self.network.to_u32()
    }

    /// Whether every address of `other` is in this prefix: this one is no
    /// longer and `other`'s network lies in it.
    pub fn contains_prefix(&self, other: &Ipv4Prefix) -> bool {
        self.len <= other.len && self.contains_address(other.network)
    }

    /// Whether some address is in both. Prefixes are nested or disjoint,
    /// so they intersect exactly when one contains the other.
    pub fn intersects(&self, other: &Ipv4Prefix) -> bool {
        self.contains_prefix(other) || other.contains_prefix(self)
    }
}

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// An inclusive range of ports, `first..=last`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// Every port, 0–65535.
    pub const ANY: PortRange = PortRange { first: 0, last: u16::MAX };

    /// `first..=last`; `None` if `first > last`.
    pub const fn new(first: u16, last: u16) -> Option<Self> {
        if first > last {
            return None;
        }
        Some(PortRange { first, last })
    }

    /// The one port `port`.
    pub const fn single(port: u16) -> Self {
        PortRange { first: port, last: port }
    }

    pub fn first(&self) -> u16 {
        self.first
    }

    pub fn last(&self) -> u16 {
        self.last
    }

    pub fn contains_port(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    pub fn contains_range(&self, other: &PortRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }

    pub fn intersects(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// A set of frames, by header fields; `None` fields are wildcards. See the
/// [module documentation](self) for the exact meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub ethertype: Option<EtherType>,
    pub protocol: Option<IpProtocol>,
    pub src_addr: Option<Ipv4Prefix>,
    pub dst_addr: Option<Ipv4Prefix>,
    pub src_port: Option<PortRange>,
    pub dst_port: Option<PortRange>,
}

/// The protocols a filter admits, once its implications are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProtocolSet {
    Any,
    TcpOrUdp,
    Only(IpProtocol),
}

impl ProtocolSet {
    fn contains(self, protocol: IpProtocol) -> bool {
        match self {
            ProtocolSet::Any => true,
            ProtocolSet::TcpOrUdp => protocol.has_ports(),
            ProtocolSet::Only(only) => only == protocol,
        }
    }

    fn intersects(self, other: ProtocolSet) -> bool {
        match (self, other) {
            (ProtocolSet::Only(p), set) | (set, ProtocolSet::Only(p)) => set.contains(p),
            _ => true,
        }
    }

    fn is_superset_of(self, other: ProtocolSet) -> bool {
        match (self, other) {
            (ProtocolSet::Any, _) => true,
            (ProtocolSet::TcpOrUdp, ProtocolSet::Any) => false,
            (ProtocolSet::TcpOrUdp, ProtocolSet::TcpOrUdp) => true,
            (set, ProtocolSet::Only(p)) => set.contains(p),
            (ProtocolSet::Only(_), _) => false,
        }
    }
}

impl Filter {
    /// Every frame.
    pub const ANY: Filter =
        Filter { ethertype: None, protocol: None, src_addr: None, dst_addr: None, src_port: None, dst_port: None };

    /// Frames of one EtherType, such as ARP.
    pub const fn ethertype(ethertype: EtherType) -> Filter {
        Filter { ethertype: Some(ethertype), ..Filter::ANY }
    }

    /// IPv4 packets of one protocol.
    pub const fn protocol(protocol: IpProtocol) -> Filter {
        Filter { protocol: Some(protocol), ..Filter::ANY }
    }

    /// TCP to one destination port, such as "TCP port 80".
    pub const fn tcp_dst_port(port: u16) -> Filter {
        Filter { dst_port: Some(PortRange::single(port)), ..Filter::protocol(IpProtocol::TCP) }
    }

    /// UDP to one destination port.
    pub const fn udp_dst_port(port: u16) -> Filter {
        Filter { dst_port: Some(PortRange::single(port)), ..Filter::protocol(IpProtocol::UDP) }
    }

    /// This filter restricted to sources in `prefix`.
    pub const fn from_addr(self, prefix: Ipv4Prefix) -> Filter {
        Filter { src_addr: Some(prefix), ..self }
    }

    /// This filter restricted to destinations in `prefix`.
    pub const fn to_addr(self, prefix: Ipv4Prefix) -> Filter {
        Filter { dst_addr: Some(prefix), ..self }
    }

    /// This filter restricted to source ports in `range`.
    pub const fn from_ports(self, range: PortRange) -> Filter {
        Filter { src_port: Some(range), ..self }
    }

    /// This filter restricted to destination ports in `range`.
    pub const fn to_ports(self, range: PortRange) -> Filter {
        Filter { dst_port: Some(range), ..self }
    }

    fn has_port_fields(&self) -> bool {
        self.src_port.is_some() || self.dst_port.is_some()
    }

    fn has_ipv4_fields(&self) -> bool {
        self.protocol.is_some() || self.src_addr.is_some() || self.dst_addr.is_some() || self.has_port_fields()
    }

    /// Whether the explicit fields agree with the implied ones: no IPv4
    /// field with a non-IPv4 EtherType, no port with a protocol other than
    /// TCP or UDP. An inconsistent filter matches nothing.
    pub fn is_consistent(&self) -> bool {
        let ethertype_ok = !self.has_ipv4_fields() || self.ethertype.is_none_or(|e| e == EtherType::IPV4);
        let protocol_ok = !self.has_port_fields() || self.protocol.is_none_or(IpProtocol::has_ports);
        ethertype_ok && protocol_ok
    }

    /// The EtherType matched, with implications: `None` for any.
    fn effective_ethertype(&self) -> Option<EtherType> {
        match self.ethertype {
            Some(ethertype) => Some(ethertype),
            None if self.has_ipv4_fields() => Some(EtherType::IPV4),
            None => None,
        }
    }

    fn protocols(&self) -> ProtocolSet {
        match (self.protocol, self.has_port_fields()) {
            (Some(protocol), _) => ProtocolSet::Only(protocol),
            (None, true) => ProtocolSet::TcpOrUdp,
            (None, false) => ProtocolSet::Any,
        }
    }

    /// Whether the frame summarised by `parsed` matches.
    pub fn matches(&self, parsed: &Parsed) -> bool {
        if !self.is_consistent() {
            return false;
        }
        if self.effective_ethertype().is_some_and(|e| e != parsed.ethertype) {
            return false;
        }
        if !self.has_ipv4_fields() {
            return true;
        }
        let Some(ip) = parsed.ipv4() else {
            return false;
        };
        let addresses_match = self.src_addr.is_none_or(|p| p.contains_address(ip.src))
            && self.dst_addr.is_none_or(|p| p.contains_address(ip.dst));
        if !self.protocols().contains(ip.protocol) || !addresses_match {
            return false;
        }
        if !self.has_port_fields() {
            return true;
        }
        let Some((src_port, dst_port)) = parsed.ports() else {
            return false;
        };
        self.src_port.is_none_or(|r| r.contains_port(src_port))
            && self.dst_port.is_none_or(|r| r.contains_port(dst_port))
    }

    /// Whether the EtherType and IPv4 protocol of `parsed` are ones this
    /// filter admits, whatever the addresses and ports.
    pub fn matches_protocol(&self, parsed: &Parsed) -> bool {
        if !self.is_consistent() || self.effective_ethertype().is_some_and(|e| e != parsed.ethertype) {
            return false;
        }
        !self.has_ipv4_fields() || parsed.ip_protocol().is_some_and(|p| self.protocols().contains(p))
    }

    /// Whether some frame matches both filters (both must be consistent).
    pub fn overlaps(&self, other: &Filter) -> bool {
        if !self.is_consistent() || !other.is_consistent() {
            return false;
        }
        let ethertypes = match (self.effective_ethertype(), other.effective_ethertype()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        ethertypes
            && self.protocols().intersects(other.protocols())
            && prefixes(self.src_addr).intersects(&prefixes(other.src_addr))
            && prefixes(self.dst_addr).intersects(&prefixes(other.dst_addr))
            && ports(self.src_port).intersects(&ports(other.src_port))
            && ports(self.dst_port).intersects(&ports(other.dst_port))
    }

    /// Whether every frame this filter matches is matched by `outer` too
    /// (both must be consistent).
    pub fn is_within(&self, outer: &Filter) -> bool {
        if !self.is_consistent() || !outer.is_consistent() {
            return false;
        }
        let ethertype = match (outer.effective_ethertype(), self.effective_ethertype()) {
            (None, _) => true,
            (Some(o), Some(s)) => o == s,
            (Some(_), None) => false,
        };
        ethertype
            && outer.protocols().is_superset_of(self.protocols())
            && prefixes(outer.src_addr).contains_prefix(&prefixes(self.src_addr))
            && prefixes(outer.dst_addr).contains_prefix(&prefixes(self.dst_addr))
            && ports(outer.src_port).contains_range(&ports(self.src_port))
            && ports(outer.dst_port).contains_range(&ports(self.dst_port))
    }
}

fn prefixes(field: Option<Ipv4Prefix>) -> Ipv4Prefix {
    field.unwrap_or(Ipv4Prefix::ANY)
}

fn ports(field: Option<PortRange>) -> PortRange {
    field.unwrap_or(PortRange::ANY)
}
