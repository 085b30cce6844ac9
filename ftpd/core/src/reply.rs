//! Replies (RFC 959 §4.2) written into a fixed buffer.
//!
//! A reply is a three-digit code, then a space and a text, then CRLF
//! (RFC 959 §4.2). A multi-line reply (§4.2, "Thus the format for
//! multi-line replies") starts with the code and a hyphen (`211-Features:`),
//! ends with a line of the same code and a space (`211 End`), and its lines
//! in between start with a space here, so that none can be mistaken for
//! the last line (the RFC asks the sender to pad a line that starts with
//! digits; always padding is simpler and what FEAT (RFC 2389 §3.2) and
//! MLST (RFC 3659 §7.2) want anyway).
//!
//! [`Reply`] holds the bytes of one or more replies for the PD to send as
//! they are: ABOR during a transfer answers 426 *and* 226 (RFC 959 §4.1.3)
//! in one buffer. Its capacity, [`REPLY_CAPACITY`], holds the longest reply
//! this server makes (MLST of a [`MAX_PATH_LEN`](fs_format::path::MAX_PATH_LEN)
//! path names it twice; PWD doubles every `"` of it). Should a text still
//! not fit, it is cut, and the line still ends in CRLF: every reply stays
//! well formed. A control byte in a text (none should reach here: paths
//! and arguments are checked before) is written as `?`, so a text can
//! never end a line early or smuggle a second reply.

use core::fmt;

/// Bytes a [`Reply`] holds: 4096.
pub const REPLY_CAPACITY: usize = 4096;

/// One or more replies, ready to send.
#[derive(Clone)]
pub struct Reply {
    buf: [u8; REPLY_CAPACITY],
    len: usize,
}

impl Default for Reply {
    fn default() -> Self {
        Reply::new()
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({:?})", core::str::from_utf8(self.as_bytes()).unwrap_or("<bytes>"))
    }
}

impl Reply {
    /// An empty reply buffer.
    pub const fn new() -> Reply {
        Reply { buf: [0; REPLY_CAPACITY], len: 0 }
    }

    /// The bytes written since the last [`Reply::clear`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets what was written (after the PD queued it).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The code of the last complete reply written, if any.
    pub fn last_code(&self) -> Option<u16> {
        let bytes = self.as_bytes();
        let body = bytes.strip_suffix(b"\r\n")?;
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = &body[start..];
        if line.len() < 4 || line[3] != b' ' {
            return None;
        }
        line[..3].iter().try_fold(0u16, |n, &d| d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0')))
    }

    /// A one-line reply: `code SP text CRLF`.
    pub fn line(&mut self, code: u16, text: &str) {
        self.line_fmt(code, format_args!("{text}"));
    }

    /// A one-line reply whose text is formatted.
    pub fn line_fmt(&mut self, code: u16, text: fmt::Arguments<'_>) {
        self.start(code, b' ');
        self.text(text);
        self.end();
    }

    /// The first line of a multi-line reply: `code-text CRLF`.
    pub fn first_fmt(&mut self, code: u16, text: fmt::Arguments<'_>) {
        self.start(code, b'-');
        self.text(text);
        self.end();
    }

    /// A line inside a multi-line reply: `SP text CRLF`.
    pub fn inner_fmt(&mut self, text: fmt::Arguments<'_>) {
        self.text(format_args!(" "));
        self.text(text);
        self.end();
    }

    /// A line inside a multi-line reply, its text as it is.
    pub fn inner(&mut self, text: &str) {
        self.inner_fmt(format_args!("{text}"));
    }

    /// Room left for text on the current line, keeping two bytes for CRLF.
    fn room(&self) -> usize {
        REPLY_CAPACITY.saturating_sub(self.len + 2)
    }

    fn start(&mut self, code: u16, sep: u8) {
        let code = code.min(999);
        let digits = [b'0' + (code / 100) as u8, b'0' + (code / 10 % 10) as u8, b'0' + (code % 10) as u8, sep];
        if self.room() < digits.len() {
            // Cannot happen with the replies this crate makes; keep the
            // buffer well formed by writing nothing.
            return;
        }
        self.buf[self.len..self.len + 4].copy_from_slice(&digits);
        self.len += 4;
    }

    fn text(&mut self, text: fmt::Arguments<'_>) {
        let _ = fmt::Write::write_fmt(&mut TextSink(self), text);
    }

    fn end(&mut self) {
        if self.len + 2 <= REPLY_CAPACITY {
            self.buf[self.len..self.len + 2].copy_from_slice(b"\r\n");
            self.len += 2;
        }
    }
}

/// Writes text into a reply line: cut at the line's room, control bytes
/// as `?`.
struct TextSink<'r>(&'r mut Reply);

impl fmt::Write for TextSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.0.room() == 0 {
                return Err(fmt::Error);
            }
            self.0.buf[self.0.len] = if b < 0x20 || b == 0x7f { b'?' } else { b };
            self.0.len += 1;
        }
        Ok(())
    }
}

/// Formats a path quoted as RFC 959 Appendix II asks of a 257 reply: in
/// double quotes, each `"` inside doubled.
pub struct Quoted<'p>(pub &'p str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for (i, part) in self.0.split('"').enumerate() {
            if i > 0 {
                f.write_str("\"\"")?;
            }
            f.write_str(part)?;
        }
        f.write_str("\"")
    }
}

/// Whether `bytes` is a sequence of well-formed replies (RFC 959 §4.2):
/// every line ends in CRLF; a reply is either one line `ddd SP text`, or
/// `ddd-text`, then lines that do not start with `ddd SP` of that code,
/// then `ddd SP text`. Used by the tests, and by a PD's debug checks.
pub fn well_formed(bytes: &[u8]) -> bool {
    if !bytes.ends_with(b"\r\n") {
        return false;
    }
    let body = &bytes[..bytes.len() - 1];
    let mut open: Option<&[u8]> = None;
    for line in body.split(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\r") else {
            return false;
        };
        if line.contains(&b'\r') {
            return false;
        }
        let coded = line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && (b'1'..=b'5').contains(&line[0]);
        match open {
            None => {
                if !coded {
                    return false;
                }
                if line[3] == b'-' {
                    open = Some(&line[..3]);
                } else if line[3] != b' ' {
                    return false;
                }
            }
            Some(code) => {
                if coded && &line[..3] == code && line[3] == b' ' {
                    open = None;
                }
            }
        }
    }
    open.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_reply_is_code_space_text_crlf() {
        // RFC 959 §4.2.
        let mut r = Reply::new();
        r.line(220, "Service ready");
        assert_eq!(r.as_bytes(), b"220 Service ready\r\n");
        assert_eq!(r.last_code(), Some(220));
        assert!(well_formed(r.as_bytes()));
    }

    #[test]
    fn multi_line_reply_ends_with_code_space() {
        // RFC 959 §4.2 multi-line format; RFC 2389 §3.2 FEAT layout.
        let mut r = Reply::new();
        r.first_fmt(211, format_args!("Features:"));
        r.inner("SIZE");
        r.line(211, "End");
        assert_eq!(r.as_bytes(), b"211-Features:\r\n SIZE\r\n211 End\r\n");
        assert!(well_formed(r.as_bytes()));
        assert_eq!(r.last_code(), Some(211));
    }

    #[test]
    fn control_bytes_in_text_cannot_break_a_line() {
        let mut r = Reply::new();
        r.line(550, "a\r\n226 fake");
        assert_eq!(r.as_bytes(), b"550 a??226 fake\r\n");
        assert!(well_formed(r.as_bytes()));
    }

    #[test]
    fn overlong_text_is_cut_and_still_ends_in_crlf() {
        let mut r = Reply::new();
        let long = "x".repeat(REPLY_CAPACITY * 2);
        r.line(250, &long);
        assert_eq!(r.as_bytes().len(), REPLY_CAPACITY);
        assert!(r.as_bytes().ends_with(b"\r\n"));
        assert!(well_formed(r.as_bytes()));
    }

    #[test]
    fn quotes_in_a_257_path_are_doubled() {
        // RFC 959 Appendix II.
        let mut r = Reply::new();
        r.line_fmt(257, format_args!("{} is the current directory", Quoted("/say \"hi\"")));
        assert_eq!(r.as_bytes(), b"257 \"/say \"\"hi\"\"\" is the current directory\r\n");
    }

    #[test]
    fn well_formed_refuses_broken_replies() {
        for bad in [&b"220 ok"[..], b"22 ok\r\n", b"211-x\r\n y\r\n", b"abc ok\r\n", b"200 a\rb\r\n", b"", b"600 x\r\n"]
        {
            assert!(!well_formed(bad), "{bad:?}");
        }
        assert!(well_formed(b"426 aborted\r\n226 closed\r\n"));
    }
}
