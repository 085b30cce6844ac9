//! [`NetConfig`] as bytes: what the system builder writes into a PD's
//! [`CONFIG_SYMBOL`](crate::CONFIG_SYMBOL).
//!
//! Little-endian, fixed size ([`CONFIG_BYTES`]):
//!
//! | offset | bytes | field |
//! |--------|-------|-------|
//! | 0      | 8     | [`CONFIG_MAGIC`] |
//! | 8      | 4     | [`CONFIG_VERSION`] |
//! | 12     | 1     | `me` (0xff: the demultiplexer) |
//! | 13     | 1     | `arpd` (0xff: none) |
//! | 14     | 1     | client count |
//! | 15     | 1     | prefix length |
//! | 16     | 4     | IPv4 address (network order) |
//! | 20     | 4     | gateway (network order; 0.0.0.0: none) |
//! | 64 + 256·n | 256 | client `n` |
//!
//! A client (offsets from its start):
//!
//! | offset | bytes | field |
//! |--------|-------|-------|
//! | 0      | 1     | flags: bit 0 may_copy, 1 unclaimed_ipv4, 2 arp |
//! | 1      | 1     | grant length |
//! | 2      | 1     | claim count |
//! | 3      | 1     | answer kinds ([`AnswerPolicy::kinds`](crate::AnswerPolicy), bits 0–3) |
//! | 4      | [`NAME_LEN`] | the name |
//! | 20     | 96    | [`MAX_GRANT_FILTERS`] filters, each its three words ([`Filter::to_words`]) |
//! | 116    | 128   | [`MAX_CLAIMS`] claims, each its filter's three words and its kind as one word (0 exclusive, 1 copy) |
//! | 244    | 2     | answers a second ([`AnswerPolicy::rate_per_second`](crate::AnswerPolicy)) |
//! | 246    | 2     | answers in a burst ([`AnswerPolicy::burst`](crate::AnswerPolicy)) |
//! | 248    | 8     | `send_from_size`: bytes of the region it sends from in place, at most 4 GiB (0: none) |
//!
//! Version 2 added `send_from_size` (version 1 left those bytes zero);
//! version 3 the answer policy (byte 3 and 244–247, zero before).

use crate::{
    AnswerPolicy, Claim, ClientConfig, Filter, FilterKind, Ipv4Address, NetConfig, NodeAddress, ANSWER_ALL, MAX_CLAIMS,
    MAX_CLIENTS, MAX_GRANT_FILTERS, MAX_SEND_FROM_SIZE, NAME_LEN,
};

/// First bytes of an encoded configuration.
pub const CONFIG_MAGIC: [u8; 8] = *b"NETCFG\0\x01";
/// Layout version; bumped with any change to the table above.
pub const CONFIG_VERSION: u32 = 3;

const HEADER: usize = 64;
const CLIENT: usize = 256;
const CLIENT_FILTERS: usize = 4 + NAME_LEN;
/// Offset of `send_from_size` in a client.
const CLIENT_SEND_FROM: usize = 248;
/// Offset of the answer rate and burst in a client.
const CLIENT_ANSWERS: usize = 244;
/// Bytes of an encoded configuration.
pub const CONFIG_BYTES: usize = HEADER + MAX_CLIENTS * CLIENT;

const _: () = assert!(CLIENT_FILTERS + (MAX_GRANT_FILTERS * 3 + MAX_CLAIMS * 4) * 8 <= CLIENT_ANSWERS);
const _: () = assert!(CLIENT_ANSWERS + 4 <= CLIENT_SEND_FROM);
const _: () = assert!(CLIENT_SEND_FROM + 8 <= CLIENT);

/// Why bytes are not a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No magic: the builder did not write this symbol (the PD is not in
    /// the description's `<network>`).
    Unset,
    /// Written by a builder with another layout version.
    Version(u32),
    /// A field out of range: counts, indices, filters.
    Invalid,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Unset => write!(f, "no network configuration: is this PD in the description's <network>?"),
            ConfigError::Version(v) => {
                write!(f, "network configuration of layout version {v}, expected {CONFIG_VERSION}: rebuild the image")
            }
            ConfigError::Invalid => write!(f, "corrupt network configuration"),
        }
    }
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

fn filter_at(bytes: &[u8], at: usize) -> Result<Filter, ConfigError> {
    Filter::from_words([word(bytes, at), word(bytes, at + 8), word(bytes, at + 16)]).ok_or(ConfigError::Invalid)
}

fn index(byte: u8, count: usize) -> Result<Option<u8>, ConfigError> {
    match byte {
        0xff => Ok(None),
        i if usize::from(i) < count => Ok(Some(i)),
        _ => Err(ConfigError::Invalid),
    }
}

impl NetConfig {
    /// The encoded configuration.
    pub fn to_bytes(&self) -> [u8; CONFIG_BYTES] {
        let mut out = [0u8; CONFIG_BYTES];
        put(&mut out, 0, &CONFIG_MAGIC);
        put(&mut out, 8, &CONFIG_VERSION.to_le_bytes());
        out[12] = self.me.unwrap_or(0xff);
        out[13] = self.arpd.unwrap_or(0xff);
        out[14] = self.client_count;
        out[15] = self.node.prefix_len;
        put(&mut out, 16, &self.node.ipv4.0);
        put(&mut out, 20, &self.node.gateway.unwrap_or(Ipv4Address::UNSPECIFIED).0);
        for (n, client) in self.clients().iter().enumerate() {
            let base = HEADER + n * CLIENT;
            out[base] = u8::from(client.may_copy) | u8::from(client.unclaimed_ipv4) << 1 | u8::from(client.arp) << 2;
            out[base + 1] = client.grant_len;
            out[base + 2] = client.claims_len;
            out[base + 3] = client.answers.kinds;
            put(&mut out, base + CLIENT_ANSWERS, &client.answers.rate_per_second.to_le_bytes());
            put(&mut out, base + CLIENT_ANSWERS + 2, &client.answers.burst.to_le_bytes());
            put(&mut out, base + 4, &client.name);
            let mut at = base + CLIENT_FILTERS;
            for filter in &client.grant {
                for w in filter.to_words() {
                    put(&mut out, at, &w.to_le_bytes());
                    at += 8;
                }
            }
            for claim in &client.claims {
                for w in claim.filter.to_words() {
                    put(&mut out, at, &w.to_le_bytes());
                    at += 8;
                }
                let kind: u64 = match claim.kind {
                    FilterKind::Exclusive => 0,
                    FilterKind::Copy => 1,
                };
                put(&mut out, at, &kind.to_le_bytes());
                at += 8;
            }
            put(&mut out, base + CLIENT_SEND_FROM, &client.send_from_size.to_le_bytes());
        }
        out
    }

    /// Decodes and checks a configuration.
    pub fn from_bytes(bytes: &[u8; CONFIG_BYTES]) -> Result<NetConfig, ConfigError> {
        if bytes[..8] != CONFIG_MAGIC {
            return Err(ConfigError::Unset);
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != CONFIG_VERSION {
            return Err(ConfigError::Version(version));
        }
        let count = usize::from(bytes[14]);
        if count > MAX_CLIENTS || bytes[15] > 32 {
            return Err(ConfigError::Invalid);
        }
        let address = |at: usize| Ipv4Address([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let gateway = address(20);
        let mut config = NetConfig {
            node: NodeAddress {
                ipv4: address(16),
                prefix_len: bytes[15],
                gateway: (!gateway.is_unspecified()).then_some(gateway),
            },
            me: index(bytes[12], count)?,
            arpd: index(bytes[13], count)?,
            clients: [ClientConfig::new(""); MAX_CLIENTS],
            client_count: count as u8,
        };
        for (n, client) in config.clients.iter_mut().take(count).enumerate() {
            let base = HEADER + n * CLIENT;
            let flags = bytes[base];
            if flags & !7 != 0
                || usize::from(bytes[base + 1]) > MAX_GRANT_FILTERS
                || usize::from(bytes[base + 2]) > MAX_CLAIMS
                || bytes[base + 3] & !ANSWER_ALL != 0
            {
                return Err(ConfigError::Invalid);
            }
            client.may_copy = flags & 1 != 0;
            client.unclaimed_ipv4 = flags & 2 != 0;
            client.arp = flags & 4 != 0;
            client.grant_len = bytes[base + 1];
            client.claims_len = bytes[base + 2];
            let half = |at: usize| u16::from_le_bytes([bytes[base + at], bytes[base + at + 1]]);
            client.answers = AnswerPolicy {
                kinds: bytes[base + 3],
                rate_per_second: half(CLIENT_ANSWERS),
                burst: half(CLIENT_ANSWERS + 2),
            };
            client.name.copy_from_slice(&bytes[base + 4..base + 4 + NAME_LEN]);
            let mut at = base + CLIENT_FILTERS;
            for filter in &mut client.grant {
                *filter = filter_at(bytes, at)?;
                at += 24;
            }
            for claim in &mut client.claims {
                let filter = filter_at(bytes, at)?;
                let kind = match word(bytes, at + 24) {
                    0 => FilterKind::Exclusive,
                    1 => FilterKind::Copy,
                    _ => return Err(ConfigError::Invalid),
                };
                *claim = Claim { filter, kind };
                at += 32;
            }
            let send_from_size = word(bytes, base + CLIENT_SEND_FROM);
            if send_from_size > MAX_SEND_FROM_SIZE {
                return Err(ConfigError::Invalid);
            }
            client.send_from_size = send_from_size;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> NetConfig {
        let mut arpd = ClientConfig::new("arpd");
        let arp = Filter::parse("arp").unwrap();
        arpd.add_grant(arp);
        arpd.add_claim(Claim { filter: arp, kind: FilterKind::Exclusive });
        let mut stray = ClientConfig::new("stray");
        stray.unclaimed_ipv4 = true;
        stray.answers = crate::AnswerPolicy {
            kinds: crate::ANSWER_ECHO_REPLY | crate::ANSWER_RESET,
            rate_per_second: 300,
            burst: 7,
        };
        let mut watch = ClientConfig::new("a-very-long-name-indeed");
        watch.may_copy = true;
        watch.arp = true;
        watch.add_grant(Filter::parse("icmp").unwrap());
        watch.add_grant(Filter::parse("udp dst 7000-7009 from 10.0.2.0/24").unwrap());
        watch.add_claim(Claim { filter: Filter::parse("icmp").unwrap(), kind: FilterKind::Copy });
        watch.send_from_size = 0x400_0000;
        let mut clients = [ClientConfig::new(""); MAX_CLIENTS];
        clients[..3].copy_from_slice(&[arpd, stray, watch]);
        NetConfig {
            node: NodeAddress {
                ipv4: Ipv4Address::new(10, 0, 2, 15),
                prefix_len: 24,
                gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
            },
            me: Some(2),
            arpd: Some(0),
            clients,
            client_count: 3,
        }
    }

    #[test]
    fn round_trip() {
        let config = example();
        let decoded = NetConfig::from_bytes(&config.to_bytes()).unwrap();
        assert_eq!(decoded, config);
        assert_eq!(decoded.my_client().unwrap().name(), "a-very-long-name");
        assert_eq!(decoded.clients()[2].grant().len(), 2);
        assert_eq!(decoded.clients()[0].claims()[0].filter, Filter::parse("arp").unwrap());
        assert_eq!((decoded.clients()[0].send_from_size, decoded.clients()[2].send_from_size), (0, 0x400_0000));
        assert!(decoded.clients()[2].sends_in_place() && !decoded.clients()[1].sends_in_place());
        let answers = decoded.clients()[1].answers;
        assert_eq!((answers.kinds, answers.rate_per_second, answers.burst), (9, 300, 7));
        assert!(!decoded.clients()[0].answers.any());
        let none = NetConfig { me: None, node: NodeAddress { gateway: None, ..config.node }, ..config };
        assert_eq!(NetConfig::from_bytes(&none.to_bytes()), Ok(none));
    }

    #[test]
    fn unset_other_versions_and_corruption_are_refused() {
        assert_eq!(NetConfig::from_bytes(&[0xff; CONFIG_BYTES]), Err(ConfigError::Unset));
        let mut bytes = example().to_bytes();
        bytes[8] = 1;
        assert_eq!(NetConfig::from_bytes(&bytes), Err(ConfigError::Version(1)));
        for (at, value) in [
            (12, 3),
            (13, 7),
            (14, 9),
            (15, 33),
            (HEADER, 8),
            (HEADER + 1, 5),
            (HEADER + 2, 5),
            (HEADER + CLIENT + 3, 0x10),
            (HEADER + CLIENT_FILTERS + 7, 0xff),
            (HEADER + 2 * CLIENT + CLIENT_SEND_FROM + 4, 2),
        ] {
            let mut bytes = example().to_bytes();
            bytes[at] = value;
            assert_eq!(NetConfig::from_bytes(&bytes), Err(ConfigError::Invalid), "byte {at} = {value}");
        }
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let good = example().to_bytes();
        for _ in 0..2000 {
            let mut bytes = good;
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes[(x as usize) % CONFIG_BYTES] = (x >> 32) as u8;
            }
            let _ = NetConfig::from_bytes(&bytes);
        }
    }
}
