//! ICMP messages (RFC 792): echo request and reply, destination
//! unreachable.
//!
//! ```text
//! |     Type      |     Code      |          Checksum             |
//! |   (echo) Identifier / (unreachable) unused    | Sequence No.  |
//! |     Data ...
//! ```

use crate::checksum;
use crate::ethernet::read_array;
use crate::Malformed;

/// Bytes of the ICMP header this crate reads: type, code, checksum and the
/// four bytes that follow (identifier and sequence, or unused).
pub const HEADER_LEN: usize = 8;

/// The ICMP Type field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpType(pub u8);

impl IcmpType {
    pub const ECHO_REPLY: IcmpType = IcmpType(0);
    pub const DESTINATION_UNREACHABLE: IcmpType = IcmpType(3);
    pub const SOURCE_QUENCH: IcmpType = IcmpType(4);
    pub const REDIRECT: IcmpType = IcmpType(5);
    pub const ECHO_REQUEST: IcmpType = IcmpType(8);
    pub const TIME_EXCEEDED: IcmpType = IcmpType(11);
    pub const PARAMETER_PROBLEM: IcmpType = IcmpType(12);

    /// Whether this is an error message (RFC 1122 §3.2.2: destination
    /// unreachable, source quench, redirect, time exceeded, parameter
    /// problem), to which no ICMP error may be sent in answer.
    pub fn is_error(self) -> bool {
        matches!(self.0, 3 | 4 | 5 | 11 | 12)
    }
}

/// Destination-unreachable codes (RFC 792, RFC 1122 §3.2.2.1).
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
}

/// A read-only view of an ICMP message.
#[derive(Clone, Copy, Debug)]
pub struct IcmpMessage<'a> {
    bytes: &'a [u8],
}

impl<'a> IcmpMessage<'a> {
    /// The message that is the whole of `ip_payload`; its 8-byte header
    /// must be present.
    pub fn parse(ip_payload: &'a [u8]) -> Result<Self, Malformed> {
        if ip_payload.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(IcmpMessage { bytes: ip_payload })
    }

    pub fn icmp_type(&self) -> IcmpType {
        IcmpType(self.bytes[0])
    }

    pub fn code(&self) -> u8 {
        self.bytes[1]
    }

    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 2))
    }

    /// The identifier of an echo request or reply.
    pub fn echo_identifier(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 4))
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_sequence(&self) -> u16 {
        u16::from_be_bytes(read_array(self.bytes, 6))
    }

    /// The bytes after the 8-byte header: echo data, or the quoted
    /// datagram of an error message.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// RFC 792: "The checksum is the 16-bit ones's complement of the one's
    /// complement sum of the ICMP message starting with the ICMP Type."
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request, id 0x1234, seq 1, data "abcd". Checksum by hand:
    /// 0800+0000+1234+0001+6162+6364 = 0xdefb → !0xdefb = 0x2104.
    const ECHO_REQUEST: [u8; 12] = [8, 0, 0x21, 0x04, 0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd'];

    #[test]
    fn known_good_echo_request() {
        let message = IcmpMessage::parse(&ECHO_REQUEST).unwrap();
        assert_eq!(message.icmp_type(), IcmpType::ECHO_REQUEST);
        assert_eq!(message.code(), 0);
        assert_eq!((message.echo_identifier(), message.echo_sequence()), (0x1234, 1));
        assert_eq!(message.data(), b"abcd");
        assert!(message.verify_checksum());
        let mut corrupted = ECHO_REQUEST;
        corrupted[11] = b'e';
        assert!(!IcmpMessage::parse(&corrupted).unwrap().verify_checksum());
    }

    #[test]
    fn short_messages_are_truncated() {
        assert_eq!(IcmpMessage::parse(&ECHO_REQUEST[..7]).unwrap_err(), Malformed::Truncated);
    }

    #[test]
    fn error_types() {
        assert!(IcmpType::DESTINATION_UNREACHABLE.is_error());
        assert!(IcmpType::TIME_EXCEEDED.is_error());
        assert!(!IcmpType::ECHO_REQUEST.is_error());
        assert!(!IcmpType::ECHO_REPLY.is_error());
    }
}
