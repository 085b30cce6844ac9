//! Attribute value syntax: numbers, booleans, permissions and the like.
//!
//! Each function turns the text of one attribute into a value or an
//! [`Invalid`] saying why it cannot; the parser adds which attribute of
//! which element it was and where.

use std::ops::RangeInclusive;

use net_config::{Ipv4Address, NodeAddress};
use net_filter::{Dotted, Filter, ParseError};

use crate::limits::{MAX_STACK, MIN_STACK};
use crate::model::{OnFault, PageSize, Perms};

/// Why an attribute value was rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// Completes `invalid attr="value" on <element>: ...`.
    pub reason: String,
    pub hint: String,
}

impl Invalid {
    pub(crate) fn new(reason: impl Into<String>, hint: impl Into<String>) -> Self {
        Invalid { reason: reason.into(), hint: hint.into() }
    }
}

const NUMBER_HINT: &str =
    "write numbers in decimal (4096) or in hexadecimal with a 0x prefix (0x1000); `_` may separate digits (0x20_0000)";

/// Unsigned integer types attributes are parsed into.
pub(crate) trait Number: Copy + Into<u64> + TryFrom<u64> {
    const MAX: Self;
}

impl Number for u8 {
    const MAX: Self = u8::MAX;
}
impl Number for u16 {
    const MAX: Self = u16::MAX;
}
impl Number for u32 {
    const MAX: Self = u32::MAX;
}
impl Number for u64 {
    const MAX: Self = u64::MAX;
}

/// A decimal or `0x`-hexadecimal number, with optional `_` between digits,
/// that fits in `T`.
pub(crate) fn number<T: Number>(text: &str) -> Result<T, Invalid> {
    let text = text.trim();
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && digits.chars().all(|c| c == '_' || c.is_digit(radix));
    if !well_formed {
        let what = if radix == 16 { "not a hexadecimal number" } else { "not a number" };
        return Err(Invalid::new(what, NUMBER_HINT));
    }
    let too_large = || Invalid::new(format!("too large (the maximum is {:#x})", T::MAX.into()), "");
    let mut value: u64 = 0;
    for digit in digits.chars().filter_map(|c| c.to_digit(radix)) {
        value =
            value.checked_mul(u64::from(radix)).and_then(|v| v.checked_add(u64::from(digit))).ok_or_else(too_large)?;
    }
    T::try_from(value).map_err(|_| too_large())
}

/// A number in `range`; `why` explains the range in the hint.
pub(crate) fn number_in<T: Number + PartialOrd + std::fmt::Display>(
    range: RangeInclusive<T>,
    why: &'static str,
) -> impl Fn(&str) -> Result<T, Invalid> {
    move |text| {
        let out_of_range = || Invalid::new(format!("must be in {}..={}", range.start(), range.end()), why);
        // Parse wide first, so that "300" for a u8 reads as out of range
        // rather than as too large for the type.
        let wide = number::<u64>(text).map_err(|e| Invalid { hint: why.to_string(), ..e })?;
        let value = T::try_from(wide).map_err(|_| out_of_range())?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(out_of_range())
        }
    }
}

/// A number other than zero; `why` explains in the hint.
pub(crate) fn nonzero<T: Number>(why: &'static str) -> impl Fn(&str) -> Result<T, Invalid> {
    move |text| {
        let value = number::<T>(text)?;
        if value.into() == 0 {
            Err(Invalid::new("must not be zero", why))
        } else {
            Ok(value)
        }
    }
}

/// A PD stack size: whole 4 KiB pages, from [`MIN_STACK`] to [`MAX_STACK`].
/// The stack is mapped page by page with a guard page below it.
pub(crate) fn stack_size(text: &str) -> Result<u64, Invalid> {
    const HINT: &str = "stack_size is a multiple of 0x1000 from 0x1000 to 0x100_0000 (16 MiB); the default is 0x2000";
    let size = number::<u64>(text).map_err(|e| Invalid { hint: HINT.into(), ..e })?;
    if !(MIN_STACK..=MAX_STACK).contains(&size) {
        Err(Invalid::new(format!("must be in {MIN_STACK:#x}..={MAX_STACK:#x}"), HINT))
    } else if size % PageSize::Small.bytes() != 0 {
        Err(Invalid::new("not a multiple of the page size (0x1000)", HINT))
    } else {
        Ok(size)
    }
}

/// `true` or `false`, exactly, as in Microkit.
/// A run of disk sectors `FIRST-LAST`, both inclusive (numbers as
/// [`number`] reads them): `last` is not before `first`, and is not the
/// last `u64` (its successor ends the window).
pub(crate) fn sectors(text: &str) -> Result<(u64, u64), Invalid> {
    const HINT: &str = "write sectors=\"FIRST-LAST\": the first and last sector (512 bytes each) the client may use, both inclusive, e.g. sectors=\"0-0x3ffff\" for the first 128 MiB";
    let Some((first, last)) = text.split_once('-') else {
        return Err(Invalid::new("not a run of sectors FIRST-LAST", HINT));
    };
    let first = number::<u64>(first).map_err(|e| Invalid { hint: HINT.into(), ..e })?;
    let last = number::<u64>(last).map_err(|e| Invalid { hint: HINT.into(), ..e })?;
    if last < first {
        return Err(Invalid::new(format!("the last sector {last:#x} is before the first {first:#x}"), HINT));
    }
    if last == u64::MAX {
        return Err(Invalid::new("the last sector must be below 2^64 - 1 (the window ends after it)", HINT));
    }
    Ok((first, last))
}

pub(crate) fn boolean(text: &str) -> Result<bool, Invalid> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Invalid::new("expected `true` or `false`", "")),
    }
}

/// `on_fault`: what the monitor does when the PD faults.
pub(crate) fn on_fault(text: &str) -> Result<OnFault, Invalid> {
    const HINT: &str = "on_fault is `stop` (report the fault, leave the PD stopped; the default), `restart` (reset the PD to its image and start it again at once) or `restart-backoff` (restart, later and later when it keeps faulting, then stop)";
    match text {
        "stop" => Ok(OnFault::Stop),
        "restart" => Ok(OnFault::Restart),
        "restart-backoff" => Ok(OnFault::RestartBackoff),
        _ => {
            let close = crate::suggest::closest(text, ["stop", "restart", "restart-backoff"]);
            let reason = match close {
                Some(c) => format!("not a fault policy (did you mean `{c}`?)"),
                None => "not a fault policy".to_string(),
            };
            Err(Invalid::new(reason, HINT))
        }
    }
}

/// Access rights: any combination of `r`, `w` and `x`.
///
/// Read must be among them: x86 page tables have no way to express a page
/// that is writable or executable but not readable.
pub(crate) fn perms(text: &str) -> Result<Perms, Invalid> {
    let mut perms = Perms { read: false, write: false, execute: false };
    for c in text.chars() {
        let granted = match c {
            'r' => &mut perms.read,
            'w' => &mut perms.write,
            'x' => &mut perms.execute,
            _ => {
                return Err(Invalid::new(
                    format!("`{c}` is not a permission"),
                    "perms is a combination of `r` (read), `w` (write) and `x` (execute), e.g. \"rw\" or \"rx\"",
                ))
            }
        };
        *granted = true;
    }
    if !perms.read {
        return Err(Invalid::new(
            "mappings must be readable",
            "x86 page tables cannot express write-only or execute-only pages; add `r`",
        ));
    }
    Ok(perms)
}

/// `0x1000` or `0x200000`: the page sizes x86-64 offers (1 GiB pages are
/// not supported for memory regions).
pub(crate) fn page_size(text: &str) -> Result<PageSize, Invalid> {
    const HINT: &str = "page_size is 0x1000 (4 KiB, the default) or 0x200000 (2 MiB)";
    match number::<u64>(text).map_err(|e| Invalid { hint: HINT.into(), ..e })? {
        0x1000 => Ok(PageSize::Small),
        0x20_0000 => Ok(PageSize::Large),
        _ => Err(Invalid::new("not a supported page size", HINT)),
    }
}

/// A name: not empty and at most `max` bytes.
pub(crate) fn name(max: usize, why: &'static str) -> impl Fn(&str) -> Result<String, Invalid> {
    move |text| {
        if text.is_empty() {
            Err(Invalid::new("names must not be empty", ""))
        } else if text.len() > max {
            Err(Invalid::new(format!("{} bytes long, longer than {max}", text.len()), why))
        } else {
            Ok(text.to_string())
        }
    }
}

/// A non-empty string, such as a symbol or a path.
pub(crate) fn non_empty(text: &str) -> Result<String, Invalid> {
    name(usize::MAX, "")(text)
}

/// One of a fixed set of keywords, mapped to a value.
pub(crate) fn keyword<T: Copy>(choices: &'static [(&'static str, T)]) -> impl Fn(&str) -> Result<T, Invalid> {
    move |text| {
        choices.iter().find(|(word, _)| *word == text).map(|&(_, value)| value).ok_or_else(|| {
            let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
            Invalid::new(format!("expected one of {}", crate::suggest::list(words)), "")
        })
    }
}

/// A dotted-quad IPv4 address.
pub(crate) fn ipv4_address(text: &str) -> Result<Ipv4Address, Invalid> {
    net_filter::parse_ipv4(text).ok_or_else(|| {
        Invalid::new(
            "not an IPv4 address",
            "write four decimal numbers 0..=255 separated by dots, without leading zeros, e.g. 10.0.2.2",
        )
    })
}

/// The node's address and the length of its on-link prefix,
/// `A.B.C.D/LEN`: a unicast address that is neither the network nor the
/// broadcast address of its prefix (for prefixes of up to 30 bits, which
/// have both).
pub(crate) fn ipv4_interface(text: &str) -> Result<NodeAddress, Invalid> {
    const HINT: &str =
        "write the node's address and the length of the on-link prefix, e.g. ipv4=\"10.0.2.15/24\" (QEMU's user network)";
    let Some((address, len)) = text.split_once('/') else {
        return Err(Invalid::new("the prefix length is missing", HINT));
    };
    let ipv4 = net_filter::parse_ipv4(address)
        .ok_or_else(|| Invalid::new(format!("`{address}` is not an IPv4 address"), HINT))?;
    let prefix_len = match len.parse::<u8>() {
        Ok(n) if n <= 32 && !len.starts_with('+') => n,
        _ => return Err(Invalid::new(format!("`{len}` is not a prefix length 0..=32"), HINT)),
    };
    let node = NodeAddress { ipv4, prefix_len, gateway: None };
    if !ipv4.is_unicast() || ipv4.is_broadcast() {
        return Err(Invalid::new(
            format!("{address} is not a unicast address"),
            "the node's address cannot be 0.0.0.0, loopback (127.0.0.0/8), multicast or reserved (224.0.0.0 and above)",
        ));
    }
    if prefix_len <= 30 {
        let prefix = node.prefix();
        if ipv4 == prefix.network() || ipv4 == node.broadcast() {
            let which = if ipv4 == prefix.network() { "network" } else { "broadcast" };
            return Err(Invalid::new(
                format!("{address} is the {which} address of {prefix}, not a host's"),
                format!(
                    "give the node an address inside {prefix} other than its first and last, e.g. {}",
                    Dotted(Ipv4Address::from_u32(prefix.network().to_u32() + 1))
                ),
            ));
        }
    }
    Ok(node)
}

/// Terms a filter may start with, for "did you mean".
const FILTER_TERMS: &[&str] =
    &["any", "arp", "ipv4", "ethertype", "tcp", "udp", "icmp", "proto", "from", "to", "src", "dst"];

/// A filter in the syntax of [`net_filter::text`].
pub(crate) fn filter(text: &str) -> Result<Filter, Invalid> {
    Filter::parse(text).map_err(|error| {
        let guess = match error {
            ParseError::UnknownTerm(term) => crate::suggest::closest(term, FILTER_TERMS.iter().copied())
                .map(|best| format!("did you mean `{best}`? "))
                .unwrap_or_default(),
            _ => String::new(),
        };
        Invalid::new(
            error.to_string(),
            format!("{guess}a filter is space-separated terms, e.g. \"tcp dst 80\"; {}", net_filter::text::SYNTAX),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number::<u64>("4096"), Ok(4096));
        assert_eq!(number::<u64>("0x1000"), Ok(0x1000));
        assert_eq!(number::<u64>("0X20_0000"), Ok(0x20_0000));
        assert_eq!(number::<u64>("1_000"), Ok(1000));
        assert_eq!(number::<u64>(" 7 "), Ok(7));
        assert_eq!(number::<u64>("0xffff_ffff_ffff_ffff"), Ok(u64::MAX));
        for bad in ["", "0x", "-1", "12a", "0x1g", "_1", "1_", "0x_1", "1e3", "+5"] {
            assert!(number::<u64>(bad).is_err(), "{bad:?} accepted");
        }
        assert!(number::<u64>("0x1_0000_0000_0000_0000").is_err());
        assert!(number::<u8>("256").is_err());
        assert_eq!(number::<u16>("0xffff"), Ok(0xffff));
    }

    #[test]
    fn ranges() {
        let priority = number_in(0..=254u8, "");
        assert_eq!(priority("254"), Ok(254));
        assert_eq!(priority("255").map_err(|e| e.reason), Err("must be in 0..=254".to_string()));
        assert!(priority("300").is_err());
    }

    #[test]
    fn permissions() {
        assert_eq!(perms("rw"), Ok(Perms::READ_WRITE));
        assert_eq!(perms("xr"), Ok(Perms { read: true, write: false, execute: true }));
        assert!(perms("w").is_err());
        assert!(perms("").is_err());
        assert!(perms("rq").is_err());
    }

    #[test]
    fn fault_policies() {
        assert_eq!(on_fault("stop"), Ok(OnFault::Stop));
        assert_eq!(on_fault("restart"), Ok(OnFault::Restart));
        assert_eq!(on_fault("restart-backoff"), Ok(OnFault::RestartBackoff));
        let wrong = on_fault("restrat").unwrap_err();
        assert!(wrong.reason.contains("did you mean `restart`"), "{wrong:?}");
        assert!(wrong.hint.contains("restart-backoff"));
        assert!(on_fault("Restart").is_err());
        assert!(on_fault("").is_err());
    }

    #[test]
    fn stack_sizes() {
        assert_eq!(stack_size("0x2000"), Ok(0x2000));
        assert_eq!(stack_size("0x1000000"), Ok(16 << 20));
        assert!(stack_size("0").is_err());
        assert!(stack_size("0x1800").is_err());
        assert!(stack_size("0x1001000").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size("0x1000"), Ok(PageSize::Small));
        assert_eq!(page_size("0x200000"), Ok(PageSize::Large));
        assert!(page_size("0x40000000").is_err());
    }

    #[test]
    fn addresses_and_filters() {
        assert_eq!(ipv4_address("10.0.2.2"), Ok(Ipv4Address::new(10, 0, 2, 2)));
        assert!(ipv4_address("10.0.2").is_err());
        let node = ipv4_interface("10.0.2.15/24").unwrap();
        assert_eq!((node.ipv4, node.prefix_len, node.gateway), (Ipv4Address::new(10, 0, 2, 15), 24, None));
        assert_eq!(ipv4_interface("10.0.2.15/32").unwrap().prefix_len, 32);
        assert_eq!(ipv4_interface("10.0.2.0/31").unwrap().prefix_len, 31);
        for bad in [
            "10.0.2.15",
            "10.0.2.15/33",
            "10.0.2.15/",
            "10.0.2.15/+8",
            "10.0.2/24",
            "10.0.2.0/24",
            "10.0.2.255/24",
            "127.0.0.1/8",
            "0.0.0.0/0",
            "224.0.0.1/4",
        ] {
            assert!(ipv4_interface(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            ipv4_interface("10.0.2.0/24").unwrap_err().reason,
            "10.0.2.0 is the network address of 10.0.2.0/24, not a host's"
        );
        assert_eq!(filter("tcp dst 80"), Ok(Filter::tcp_dst_port(80)));
        let bad = filter("tcp dts 80").unwrap_err();
        assert_eq!(bad.reason, "unknown term `dts`");
        assert!(bad.hint.starts_with("did you mean `dst`? "), "{}", bad.hint);
        assert!(bad.hint.contains(net_filter::text::SYNTAX));
        assert!(filter("").is_err());
    }
}
