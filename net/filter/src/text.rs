//! Filters as text (for the system description and logs) and as words (for
//! protected calls and the configuration blob).
//!
//! # Text
//!
//! A filter is a list of space-separated terms, each narrowing the set:
//!
//! | term                   | field                              |
//! |------------------------|------------------------------------|
//! | `any`                  | nothing (every frame)              |
//! | `arp`, `ipv4`          | EtherType 0x0806, 0x0800           |
//! | `ethertype 0x88b5`     | EtherType                          |
//! | `tcp`, `udp`, `icmp`   | IPv4 protocol 6, 17, 1             |
//! | `proto 47`             | IPv4 protocol                      |
//! | `from 10.0.0.0/8`      | source prefix (a bare address: /32)|
//! | `to 10.0.2.15`         | destination prefix                 |
//! | `src 1024-65535`       | source port or range               |
//! | `dst 80`               | destination port or range          |
//!
//! For example `tcp dst 80`, `udp dst 7000-7009 from 10.0.2.0/24`, `arp`.
//! A field given twice is an error, as is an [inconsistent](Filter::is_consistent)
//! filter (`arp dst 80`, `icmp dst 7`). [`Filter`]'s `Display` writes this
//! syntax back in canonical order, so a logged filter can be pasted into a
//! description.
//!
//! # Words
//!
//! [`Filter::to_words`] packs a filter into three `u64`s:
//!
//! - word 0: bits 0–15 EtherType, 16–23 protocol, 24–29 which fields are
//!   present (EtherType, protocol, source prefix, destination prefix,
//!   source ports, destination ports), 32–37 source prefix length, 40–45
//!   destination prefix length;
//! - word 1: source network (high 32 bits), destination network (low);
//! - word 2: source first and last port (bits 48–63, 32–47), destination
//!   first and last port (16–31, 0–15).
//!
//! [`Filter::from_words`] accepts any words and refuses those that encode
//! no filter (unknown bits, prefix longer than 32, empty port range).

use core::fmt;

use net_packet::{EtherType, IpProtocol, Ipv4Address};

use crate::{Filter, Ipv4Prefix, PortRange};

/// Why a filter's text was refused, with the offending term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// No terms at all.
    Empty,
    /// A word that starts no term.
    UnknownTerm(&'a str),
    /// A term that needs a value (`dst`, `from`, ...) came last.
    MissingValue(&'a str),
    /// The value after a term does not parse: the term and the value.
    BadValue(&'a str, &'a str),
    /// The same field set twice (`tcp udp`, `dst 1 dst 2`).
    Repeated(&'a str),
    /// The fields contradict each other and would match nothing.
    Inconsistent,
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "empty filter"),
            ParseError::UnknownTerm(t) => write!(f, "unknown term `{t}`"),
            ParseError::MissingValue(t) => write!(f, "`{t}` needs a value"),
            ParseError::BadValue(t, v) => write!(f, "bad value `{v}` after `{t}`"),
            ParseError::Repeated(t) => write!(f, "`{t}` sets a field that is already set"),
            ParseError::Inconsistent => {
                write!(f, "the terms contradict each other (ports need tcp or udp; ipv4 fields need ipv4)")
            }
        }
    }
}

/// The terms a filter may contain, for error hints.
pub const SYNTAX: &str =
    "terms: any | arp | ipv4 | ethertype 0xHHHH | tcp | udp | icmp | proto N | from A.B.C.D[/LEN] | to A.B.C.D[/LEN] | src PORT[-PORT] | dst PORT[-PORT]";

fn set<'a, T>(field: &mut Option<T>, value: T, term: &'a str) -> Result<(), ParseError<'a>> {
    if field.is_some() {
        return Err(ParseError::Repeated(term));
    }
    *field = Some(value);
    Ok(())
}

/// Parses a dotted-quad IPv4 address.
pub fn parse_ipv4(text: &str) -> Option<Ipv4Address> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        // No signs, no leading zeros beyond "0" itself (they read as octal elsewhere).
        if part.is_empty()
            || part.len() > 3
            || !part.bytes().all(|b| b.is_ascii_digit())
            || part.len() > 1 && part.starts_with('0')
        {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Address(octets))
}

/// Parses `A.B.C.D/LEN` or `A.B.C.D` (a /32). Host bits must be zero, so
/// that `10.0.2.15/24` (probably meant as an address) is not silently read
/// as `10.0.2.0/24`.
pub fn parse_prefix(text: &str) -> Option<Ipv4Prefix> {
    let (address, len) = match text.split_once('/') {
        Some((a, l)) if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => (a, l.parse().ok()?),
        Some(_) => return None,
        None => (text, 32),
    };
    let address = parse_ipv4(address)?;
    let prefix = Ipv4Prefix::new(address, len)?;
    (prefix.network() == address).then_some(prefix)
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_ports(text: &str) -> Option<PortRange> {
    match text.split_once('-') {
        Some((first, last)) => PortRange::new(parse_port(first)?, parse_port(last)?),
        None => Some(PortRange::single(parse_port(text)?)),
    }
}

fn parse_number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

impl Filter {
    /// Parses the text syntax (see the [module documentation](self)).
    pub fn parse(text: &str) -> Result<Filter, ParseError<'_>> {
        let mut filter = Filter::ANY;
        let mut terms = text.split_ascii_whitespace();
        let mut any_term = false;
        while let Some(term) = terms.next() {
            any_term = true;
            let mut value = || terms.next().ok_or(ParseError::MissingValue(term));
            match term {
                "any" => {}
                "arp" => set(&mut filter.ethertype, EtherType::ARP, term)?,
                "ipv4" => set(&mut filter.ethertype, EtherType::IPV4, term)?,
                "ethertype" => {
                    let v = value()?;
                    let n = parse_number(v).and_then(|n| u16::try_from(n).ok()).ok_or(ParseError::BadValue(term, v))?;
                    set(&mut filter.ethertype, EtherType(n), term)?
                }
                "tcp" => set(&mut filter.protocol, IpProtocol::TCP, term)?,
                "udp" => set(&mut filter.protocol, IpProtocol::UDP, term)?,
                "icmp" => set(&mut filter.protocol, IpProtocol::ICMP, term)?,
                "proto" => {
                    let v = value()?;
                    let n = parse_number(v).and_then(|n| u8::try_from(n).ok()).ok_or(ParseError::BadValue(term, v))?;
                    set(&mut filter.protocol, IpProtocol(n), term)?
                }
                "from" | "to" => {
                    let v = value()?;
                    let prefix = parse_prefix(v).ok_or(ParseError::BadValue(term, v))?;
                    let field = if term == "from" { &mut filter.src_addr } else { &mut filter.dst_addr };
                    set(field, prefix, term)?
                }
                "src" | "dst" => {
                    let v = value()?;
                    let range = parse_ports(v).ok_or(ParseError::BadValue(term, v))?;
                    let field = if term == "src" { &mut filter.src_port } else { &mut filter.dst_port };
                    set(field, range, term)?
                }
                other => return Err(ParseError::UnknownTerm(other)),
            }
        }
        if !any_term {
            return Err(ParseError::Empty);
        }
        if !filter.is_consistent() {
            return Err(ParseError::Inconsistent);
        }
        Ok(filter)
    }

    /// Words in a protected call or configuration blob.
    pub const WORDS: usize = 3;

    /// The filter as [`Filter::WORDS`] words (layout in the [module
    /// documentation](self)).
    pub fn to_words(&self) -> [u64; Filter::WORDS] {
        let mut w0 = 0u64;
        let mut present = 0u64;
        if let Some(e) = self.ethertype {
            w0 |= e.0 as u64;
            present |= 1;
        }
        if let Some(p) = self.protocol {
            w0 |= (p.0 as u64) << 16;
            present |= 2;
        }
        let (mut w1, mut w2) = (0u64, 0u64);
        if let Some(src) = self.src_addr {
            present |= 4;
            w0 |= (src.prefix_len() as u64) << 32;
            w1 |= (src.network().to_u32() as u64) << 32;
        }
        if let Some(dst) = self.dst_addr {
            present |= 8;
            w0 |= (dst.prefix_len() as u64) << 40;
            w1 |= dst.network().to_u32() as u64;
        }
        if let Some(src) = self.src_port {
            present |= 16;
            w2 |= (src.first() as u64) << 48 | (src.last() as u64) << 32;
        }
        if let Some(dst) = self.dst_port {
            present |= 32;
            w2 |= (dst.first() as u64) << 16 | dst.last() as u64;
        }
        [w0 | present << 24, w1, w2]
    }

    /// The filter `words` encode, or `None` if they encode none.
    pub fn from_words(words: [u64; Filter::WORDS]) -> Option<Filter> {
        let [w0, w1, w2] = words;
        const KNOWN: u64 = 0xffff | 0xff << 16 | 0x3f << 24 | 0x3f << 32 | 0x3f << 40;
        if w0 & !KNOWN != 0 {
            return None;
        }
        let present = (w0 >> 24) & 0x3f;
        let has = |bit: u64| present & bit != 0;
        let src_len = ((w0 >> 32) & 0x3f) as u8;
        let dst_len = ((w0 >> 40) & 0x3f) as u8;
        // Fields that are absent must be zero: one filter, one encoding.
        let unused = (!has(1) && w0 & 0xffff != 0)
            || (!has(2) && (w0 >> 16) & 0xff != 0)
            || (!has(4) && (src_len != 0 || w1 >> 32 != 0))
            || (!has(8) && (dst_len != 0 || w1 as u32 != 0))
            || (!has(16) && w2 >> 32 != 0)
            || (!has(32) && w2 as u32 != 0);
        if unused {
            return None;
        }
        let prefix = |network: u32, len: u8| {
            let p = Ipv4Prefix::new(Ipv4Address::from_u32(network), len)?;
            (p.network().to_u32() == network).then_some(p)
        };
        let range = |bits: u64| PortRange::new((bits >> 16) as u16, bits as u16);
        Some(Filter {
            ethertype: has(1).then_some(EtherType(w0 as u16)),
            protocol: has(2).then_some(IpProtocol((w0 >> 16) as u8)),
            src_addr: if has(4) { Some(prefix((w1 >> 32) as u32, src_len)?) } else { None },
            dst_addr: if has(8) { Some(prefix(w1 as u32, dst_len)?) } else { None },
            src_port: if has(16) { Some(range(w2 >> 32)?) } else { None },
            dst_port: if has(32) { Some(range(w2 & 0xffff_ffff)?) } else { None },
        })
    }
}

/// Dotted-quad, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dotted(pub Ipv4Address);

impl fmt::Display for Dotted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0 .0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Dotted(self.network()))?;
        if self.prefix_len() != 32 {
            write!(f, "/{}", self.prefix_len())?;
        }
        Ok(())
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first() == self.last() {
            write!(f, "{}", self.first())
        } else {
            write!(f, "{}-{}", self.first(), self.last())
        }
    }
}

impl fmt::Display for Filter {
    /// The text syntax, terms in a fixed order; `any` for the empty filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut term = |f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>| {
            let r = write!(f, "{sep}{args}");
            sep = " ";
            r
        };
        match self.ethertype {
            None => {}
            Some(EtherType::ARP) => term(f, format_args!("arp"))?,
            Some(EtherType::IPV4) => term(f, format_args!("ipv4"))?,
            Some(EtherType(n)) => term(f, format_args!("ethertype {n:#06x}"))?,
        }
        match self.protocol {
            None => {}
            Some(IpProtocol::TCP) => term(f, format_args!("tcp"))?,
            Some(IpProtocol::UDP) => term(f, format_args!("udp"))?,
            Some(IpProtocol::ICMP) => term(f, format_args!("icmp"))?,
            Some(IpProtocol(n)) => term(f, format_args!("proto {n}"))?,
        }
        if let Some(p) = self.src_addr {
            term(f, format_args!("from {p}"))?;
        }
        if let Some(p) = self.dst_addr {
            term(f, format_args!("to {p}"))?;
        }
        if let Some(r) = self.src_port {
            term(f, format_args!("src {r}"))?;
        }
        if let Some(r) = self.dst_port {
            term(f, format_args!("dst {r}"))?;
        }
        if sep.is_empty() {
            write!(f, "any")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::ToString;

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(Filter::parse("tcp dst 80"), Ok(Filter::tcp_dst_port(80)));
        assert_eq!(Filter::parse("arp"), Ok(Filter::ethertype(EtherType::ARP)));
        let f = Filter::parse("udp dst 7000-7009 from 10.0.2.0/24").unwrap();
        assert_eq!(f.dst_port, PortRange::new(7000, 7009));
        assert_eq!(f.src_addr, Ipv4Prefix::new(Ipv4Address::new(10, 0, 2, 0), 24));
        assert_eq!(Filter::parse("  any "), Ok(Filter::ANY));
        assert_eq!(
            Filter::parse("to 10.0.2.15").unwrap().dst_addr,
            Some(Ipv4Prefix::host(Ipv4Address::new(10, 0, 2, 15)))
        );
        assert_eq!(Filter::parse("ethertype 0x88b5").unwrap().ethertype, Some(EtherType(0x88b5)));
        assert_eq!(Filter::parse("proto 47").unwrap().protocol, Some(IpProtocol(47)));
    }

    #[test]
    fn refuses_bad_text_with_the_offending_term() {
        assert_eq!(Filter::parse(""), Err(ParseError::Empty));
        assert_eq!(Filter::parse("tcp port 80"), Err(ParseError::UnknownTerm("port")));
        assert_eq!(Filter::parse("tcp dst"), Err(ParseError::MissingValue("dst")));
        assert_eq!(Filter::parse("tcp dst 65536"), Err(ParseError::BadValue("dst", "65536")));
        assert_eq!(Filter::parse("tcp dst 90-80"), Err(ParseError::BadValue("dst", "90-80")));
        assert_eq!(Filter::parse("from 10.0.2.15/24"), Err(ParseError::BadValue("from", "10.0.2.15/24")));
        assert_eq!(Filter::parse("from 10.0.2.256"), Err(ParseError::BadValue("from", "10.0.2.256")));
        assert_eq!(Filter::parse("from 10.0.2.0/33"), Err(ParseError::BadValue("from", "10.0.2.0/33")));
        assert_eq!(Filter::parse("from 010.0.2.0/24"), Err(ParseError::BadValue("from", "010.0.2.0/24")));
        assert_eq!(Filter::parse("tcp udp"), Err(ParseError::Repeated("udp")));
        assert_eq!(Filter::parse("dst 1 dst 2"), Err(ParseError::Repeated("dst")));
        assert_eq!(Filter::parse("arp dst 80"), Err(ParseError::Inconsistent));
        assert_eq!(Filter::parse("icmp dst 7"), Err(ParseError::Inconsistent));
        assert_eq!(Filter::parse("ethertype 0x10000"), Err(ParseError::BadValue("ethertype", "0x10000")));
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for text in [
            "any",
            "arp",
            "ipv4",
            "ethertype 0x88b5",
            "tcp dst 80",
            "udp from 10.0.0.0/8 to 10.0.2.15 src 53 dst 1024-65535",
            "proto 47 from 192.168.1.1",
            "dst 7",
        ] {
            let f = Filter::parse(text).unwrap();
            assert_eq!(f.to_string(), text);
            assert_eq!(Filter::parse(&f.to_string()), Ok(f));
        }
        assert_eq!(Filter::parse("dst 80 tcp").unwrap().to_string(), "tcp dst 80");
        assert_eq!(format!("{}", Dotted(Ipv4Address::new(10, 0, 2, 15))), "10.0.2.15");
    }

    #[test]
    fn words_round_trip() {
        for text in [
            "any",
            "arp",
            "tcp dst 80",
            "udp from 10.0.0.0/8 to 10.0.2.15 src 53 dst 1024-65535",
            "from 0.0.0.0/0",
            "dst 0-65535",
        ] {
            let f = Filter::parse(text).unwrap();
            assert_eq!(Filter::from_words(f.to_words()), Some(f), "{text}");
        }
    }

    #[test]
    fn words_that_encode_no_filter_are_refused() {
        let good = Filter::parse("udp from 10.0.0.0/8 dst 7000-7009").unwrap().to_words();
        // Unknown bits, host bits in a prefix, a length over 32, an empty range,
        // a value in an absent field.
        assert_eq!(Filter::from_words([good[0] | 1 << 63, good[1], good[2]]), None);
        assert_eq!(Filter::from_words([good[0], good[1] | 1 << 32, good[2]]), None);
        assert_eq!(Filter::from_words([(good[0] & !(0x3f << 32)) | 33 << 32, good[1], good[2]]), None);
        assert_eq!(Filter::from_words([good[0], good[1], (9000 << 16) | 7000]), None);
        assert_eq!(Filter::from_words([good[0], good[1] | 5, good[2]]), None);
    }

    /// Random words, most of them a valid encoding built field by field
    /// (random present fields, values, prefix lengths and ranges), some with
    /// one random bit flipped: a valid encoding decodes to a filter that
    /// encodes back to the same words, and no words make it panic.
    #[test]
    fn random_words_round_trip() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const ROUNDS: usize = 10_000;
        let (mut round_trips, mut text_round_trips, mut refused, mut flipped) = (0, 0, 0, 0);
        for _ in 0..ROUNDS {
            let present = next() & 0x3f;
            let has = |bit: u64| present & bit != 0;
            let (mut w0, mut w1, mut w2) = (present << 24, 0u64, 0u64);
            if has(1) {
                w0 |= next() & 0xffff;
            }
            if has(2) {
                w0 |= (next() & 0xff) << 16;
            }
            // A prefix: a length 0..=32 and a network without host bits.
            let mut prefix = || {
                let len = (next() % 33) as u32;
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                (u64::from(len), u64::from(next() as u32 & mask))
            };
            if has(4) {
                let (len, network) = prefix();
                w0 |= len << 32;
                w1 |= network << 32;
            }
            if has(8) {
                let (len, network) = prefix();
                w0 |= len << 40;
                w1 |= network;
            }
            // A range: first <= last.
            let mut range = || {
                let (a, b) = (next() as u16, next() as u16);
                let (first, last) = (a.min(b), a.max(b));
                u64::from(first) << 16 | u64::from(last)
            };
            if has(16) {
                w2 |= range() << 32;
            }
            if has(32) {
                w2 |= range();
            }
            let mut words = [w0, w1, w2];
            let flip = next();
            if flip % 8 == 0 {
                // One bit flipped anywhere: mostly not an encoding any more.
                words[(flip >> 8) as usize % 3] ^= 1 << ((flip >> 16) % 64);
                flipped += 1;
                match Filter::from_words(words) {
                    Some(f) => assert_eq!(f.to_words(), words, "{words:#x?} decoded to {f}"),
                    None => refused += 1,
                }
            } else {
                let f = Filter::from_words(words).unwrap_or_else(|| panic!("{words:#x?} refused"));
                assert_eq!(f.to_words(), words, "{words:#x?} decoded to {f}");
                round_trips += 1;
                if f.is_consistent() {
                    assert_eq!(Filter::parse(&f.to_string()), Ok(f), "{f}");
                    text_round_trips += 1;
                }
            }
        }
        assert!(round_trips >= ROUNDS * 8 / 10, "{round_trips} round trips checked of {ROUNDS}");
        assert!(text_round_trips >= ROUNDS / 4, "{text_round_trips} text round trips checked of {ROUNDS}");
        assert!(refused >= flipped / 4 && refused > 0, "{refused} of {flipped} flipped words refused");
    }
}
