//! Why a frame was refused.

/// The reason a frame is malformed or not acceptable to the demultiplexer.
///
/// Every variant is a distinct drop counter: [`Malformed::index`] numbers
/// them `0..Malformed::COUNT` for a counter array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// The frame ends before a header it announces (Ethernet header, fixed
    /// IPv4 header, ARP packet, or the fixed part of an ICMP, UDP or TCP
    /// header inside the IPv4 payload).
    Truncated,
    /// IPv4 EtherType but the version field is not 4 (RFC 791 §3.1).
    BadIpVersion,
    /// IHL below 5 words, or more header than the frame holds (RFC 791 §3.1:
    /// "the minimum value for a correct header is 5").
    BadIhl,
    /// IPv4 total length shorter than the header or longer than the frame.
    BadTotalLength,
    /// The IPv4 header checksum does not verify (RFC 791 §3.1).
    BadIpChecksum,
    /// A fragment: More Fragments set or a non-zero fragment offset. Its
    /// ports are absent or untrustworthy, so it cannot be classified.
    Fragment,
    /// IPv4 options present (IHL above 5).
    Options,
    /// The UDP length field is below 8 or differs from the IPv4 payload
    /// length (RFC 768).
    BadL4Length,
    /// TCP data offset below 5 words or beyond the segment (RFC 9293 §3.1).
    BadTcpDataOffset,
    /// An ICMP, UDP or TCP checksum does not verify (checked only by
    /// [`crate::classify_strict`]).
    BadL4Checksum,
    /// ARP for a hardware or protocol type other than Ethernet/IPv4, or an
    /// operation other than request or reply (RFC 826).
    UnsupportedArp,
}

impl Malformed {
    /// Every reason, in [`Malformed::index`] order.
    pub const ALL: [Malformed; 11] = [
        Malformed::Truncated,
        Malformed::BadIpVersion,
        Malformed::BadIhl,
        Malformed::BadTotalLength,
        Malformed::BadIpChecksum,
        Malformed::Fragment,
        Malformed::Options,
        Malformed::BadL4Length,
        Malformed::BadTcpDataOffset,
        Malformed::BadL4Checksum,
        Malformed::UnsupportedArp,
    ];

    /// How many reasons there are: the size of a per-reason counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// This reason's position in [`Malformed::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short name for logs and statistics.
    pub const fn name(self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::BadIpVersion => "bad-ip-version",
            Malformed::BadIhl => "bad-ihl",
            Malformed::BadTotalLength => "bad-total-length",
            Malformed::BadIpChecksum => "bad-ip-checksum",
            Malformed::Fragment => "fragment",
            Malformed::Options => "ip-options",
            Malformed::BadL4Length => "bad-l4-length",
            Malformed::BadTcpDataOffset => "bad-tcp-data-offset",
            Malformed::BadL4Checksum => "bad-l4-checksum",
            Malformed::UnsupportedArp => "unsupported-arp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, reason) in Malformed::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }
}
