//! TYPE A (RFC 959 §3.1.1.1): file data sent as NVT-ASCII lines.
//!
//! The site's files are stored as they are; in TYPE A each end of line
//! is sent as CRLF (RFC 959 §3.1.1.1: "the `<CRLF>` sequence should be used
//! where necessary to denote the end of a line"). [`AsciiEncoder`]
//! converts a file streamed in chunks of any size, its state carried from
//! one chunk to the next:
//!
//! - a LF not preceded by CR becomes CRLF;
//! - a CRLF already in the file stays CRLF (not CR CR LF);
//! - a bare CR is sent unchanged. (RFC 854 would have it sent as CR NUL;
//!   no client today removes the NUL again, so it would corrupt the file
//!   for the reader; servers such as vsftpd leave it too.)
//! - other bytes, 8-bit ones included, pass unchanged: the server does not
//!   know a file's character set (RFC 2640 asks for UTF-8 on the control
//!   connection only).
//!
//! Restart (REST, RFC 3659 §5.3): in stream mode the restart marker
//! counts bytes *of the transferred representation*. The encoder is made
//! with that count and drops as many converted bytes before writing any;
//! the PD then reads the file from its start. (A TYPE A restart thus
//! reads the skipped part again; TYPE I reads from the offset.)
//!
//! SIZE in TYPE A: the converted size depends on the data, which the
//! session does not have, so SIZE answers 550 in TYPE A (RFC 3659 §4 lets
//! a server refuse rather than give a size that does not match the
//! transfer); [`converted_len`] gives the size for a PD that has the data.

/// Converts a file's bytes to TYPE A; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsciiEncoder {
    /// Converted bytes still to drop (REST).
    skip: u64,
    /// The last input byte was CR.
    after_cr: bool,
    /// A LF still to write (its CR went out, the buffer then filled).
    pending_lf: bool,
}

impl AsciiEncoder {
    /// An encoder that drops the first `skip` converted bytes.
    pub const fn new(skip: u64) -> AsciiEncoder {
        AsciiEncoder { skip, after_cr: false, pending_lf: false }
    }

    /// Converts from `input` into `out`; returns `(consumed, written)`.
    /// Stops when `input` is used up or `out` is full; call again with the
    /// unconsumed rest. Progress is guaranteed while `out` is not empty.
    /// After the file's last byte, call it with empty `input` until
    /// [`AsciiEncoder::is_flushed`]: a LF may still be owed.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let mut written = 0;
        let mut consumed = 0;
        loop {
            if self.pending_lf {
                if !self.emit(b'\n', out, &mut written) {
                    return (consumed, written);
                }
                self.pending_lf = false;
            }
            let Some(&b) = input.get(consumed) else {
                return (consumed, written);
            };
            if b == b'\n' && !self.after_cr {
                // Room for the CR is checked by emit; the LF follows.
                if !self.emit(b'\r', out, &mut written) {
                    return (consumed, written);
                }
                self.pending_lf = true;
            } else if !self.emit(b, out, &mut written) {
                return (consumed, written);
            }
            self.after_cr = b == b'\r';
            consumed += 1;
        }
    }

    /// Whether nothing converted is still owed to the output.
    pub fn is_flushed(&self) -> bool {
        !self.pending_lf
    }

    /// Writes (or skips) one converted byte; false if `out` is full.
    fn emit(&mut self, b: u8, out: &mut [u8], written: &mut usize) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        match out.get_mut(*written) {
            Some(slot) => {
                *slot = b;
                *written += 1;
                true
            }
            None => false,
        }
    }
}

/// The TYPE A size of data given in chunks: bytes plus one per bare LF.
pub fn converted_len<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> u64 {
    let mut after_cr = false;
    let mut n = 0u64;
    for chunk in chunks {
        for &b in chunk {
            n += 1 + u64::from(b == b'\n' && !after_cr);
            after_cr = b == b'\r';
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;
    use std::vec::Vec;

    fn convert(data: &[u8], skip: u64, in_chunk: usize, out_chunk: usize) -> Vec<u8> {
        let mut enc = AsciiEncoder::new(skip);
        let mut out = Vec::new();
        let mut buf = std::vec![0u8; out_chunk];
        for chunk in data.chunks(in_chunk.max(1)) {
            let mut rest = chunk;
            loop {
                let (used, n) = enc.encode(rest, &mut buf);
                out.extend_from_slice(&buf[..n]);
                rest = &rest[used..];
                if rest.is_empty() && n < buf.len() {
                    break;
                }
            }
        }
        // Flush a pending LF.
        loop {
            let (_, n) = enc.encode(&[], &mut buf);
            out.extend_from_slice(&buf[..n]);
            if n == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn lf_becomes_crlf_crlf_stays_bare_cr_stays() {
        // RFC 959 §3.1.1.1.
        assert_eq!(convert(b"a\nb\r\nc\rd\n\n", 0, 100, 100), b"a\r\nb\r\nc\rd\r\n\r\n");
        assert_eq!(converted_len([&b"a\nb\r\nc\rd\n\n"[..]]), 13);
    }

    #[test]
    fn chunking_and_restart_do_not_change_the_stream() {
        // Property: any input/output chunk sizes give the same stream, and
        // REST n gives that stream from byte n (RFC 3659 §5.3).
        let mut rng = Rng(0xa5c11);
        for _ in 0..300 {
            let data: Vec<u8> = (0..rng.below(300))
                .map(|_| match rng.below(5) {
                    0 => b'\n',
                    1 => b'\r',
                    _ => b'x',
                })
                .collect();
            let whole = convert(&data, 0, data.len() + 1, 1000);
            assert_eq!(whole.len() as u64, converted_len(data.chunks(7)));
            let chunked = convert(&data, 0, 1 + rng.below(9), 1 + rng.below(5));
            assert_eq!(whole, chunked);
            let skip = rng.below(whole.len() + 2);
            let restarted = convert(&data, skip as u64, 1 + rng.below(9), 1 + rng.below(5));
            assert_eq!(restarted, whole.get(skip..).unwrap_or(&[]));
        }
    }
}
