//! The precomputed HTTP/1.1 response header of a file, and the pieces the
//! server needs to produce the same values: the content type of an
//! extension (the date is `http-date`'s IMF-fixdate) and the strong entity
//! tag.
//!
//! A stored header is the status line followed by the header fields, each
//! line ending in CRLF, and *without* the empty line that ends a header
//! (RFC 9112 §2.1):
//!
//! ```text
//! HTTP/1.1 200 OK\r\n
//! Content-Type: text/html; charset=utf-8\r\n
//! Content-Length: 5120\r\n
//! Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n
//! ETag: "0f1e2d3c4b5a69788796a5b4c3d2e1f0"\r\n
//! Accept-Ranges: bytes\r\n
//! ```
//!
//! The server sends it as it is, then `Date: <IMF-fixdate>\r\n`, its
//! connection fields if any (`Connection: close`, `Keep-Alive`), and the
//! final `\r\n`. The record's `status_len` is the length of the status line
//! with its CRLF, so `header[status_len..]` are the fields alone, for a
//! server that writes another status line (HEAD sends the same header; a 304
//! or 206 builds its own from the record's values).

/// The status line every stored header starts with.
pub const STATUS_LINE: &[u8] = b"HTTP/1.1 200 OK\r\n";

/// Length of an entity tag with its quotes.
pub const ETAG_LEN: usize = 34;

/// The `Content-Type` of a path, from its extension (ASCII case-insensitive).
/// Text types say UTF-8; unknown extensions are `application/octet-stream`.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rfind('.') {
        Some(dot) if dot > 0 => &name[dot + 1..],
        _ => "",
    };
    const TYPES: &[(&str, &str)] = &[
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("css", "text/css; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("mjs", "text/javascript; charset=utf-8"),
        ("json", "application/json"),
        ("map", "application/json"),
        ("txt", "text/plain; charset=utf-8"),
        ("md", "text/markdown; charset=utf-8"),
        ("csv", "text/csv; charset=utf-8"),
        ("xml", "application/xml"),
        ("svg", "image/svg+xml"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
        ("ico", "image/x-icon"),
        ("woff", "font/woff"),
        ("woff2", "font/woff2"),
        ("ttf", "font/ttf"),
        ("otf", "font/otf"),
        ("pdf", "application/pdf"),
        ("wasm", "application/wasm"),
        ("zip", "application/zip"),
        ("gz", "application/gzip"),
        ("tar", "application/x-tar"),
        ("mp4", "video/mp4"),
        ("webm", "video/webm"),
        ("mp3", "audio/mpeg"),
        ("ogg", "audio/ogg"),
        ("wav", "audio/wav"),
    ];
    TYPES.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)).map_or("application/octet-stream", |(_, t)| t)
}

/// Whether a path is an HTML page (by its extension), which the layout
/// places in front of what it references.
pub fn is_html(path: &str) -> bool {
    content_type(path).starts_with("text/html")
}

/// The strong entity tag of a file (RFC 9110 §8.8.3): the first 16 bytes of
/// its SHA-256 in lowercase hex, quoted. Equal tags mean equal content.
pub fn etag(sha256: &[u8; 32]) -> [u8; ETAG_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'"'; ETAG_LEN];
    for (i, byte) in sha256[..16].iter().enumerate() {
        out[1 + 2 * i] = HEX[usize::from(byte >> 4)];
        out[2 + 2 * i] = HEX[usize::from(byte & 15)];
    }
    out
}

/// `value` in decimal, in `buf`; returns the digits.
pub fn decimal(value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut v = value;
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Writes the stored header of a file (see the module documentation) into
/// `out`. Returns its length, or `None` if `out` is too small.
pub fn write_header(
    out: &mut [u8],
    content_type: &str,
    size: u64,
    last_modified: u64,
    sha256: &[u8; 32],
) -> Option<usize> {
    let mut w = Writer { out, len: 0 };
    let mut digits = [0; 20];
    w.put(STATUS_LINE)?;
    w.put(b"Content-Type: ")?;
    w.put(content_type.as_bytes())?;
    w.put(b"\r\nContent-Length: ")?;
    w.put(decimal(size, &mut digits))?;
    w.put(b"\r\nLast-Modified: ")?;
    w.put(&http_date::format_imf_fixdate(last_modified))?;
    w.put(b"\r\nETag: ")?;
    w.put(&etag(sha256))?;
    w.put(b"\r\nAccept-Ranges: bytes\r\n")?;
    Some(w.len)
}

struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.out.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }
}

/// Whether `header` is a plausible stored header for a file of `size`
/// bytes: the status line, lines ending in CRLF, no empty line, and a
/// `Content-Length` equal to `size` (a wrong one would break the framing of
/// every later response on the connection).
pub fn check_header(header: &[u8], size: u64) -> bool {
    if !header.starts_with(STATUS_LINE) || !header.ends_with(b"\r\n") {
        return false;
    }
    let mut found_length = false;
    let mut digits = [0; 20];
    let want = decimal(size, &mut digits);
    for line in header[..header.len() - 1].split(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\r") else { return false };
        if line.is_empty() || line.iter().any(|&b| b == b'\r' || (b < 0x20 && b != b'\t') || b == 0x7f) {
            return false;
        }
        if let Some(value) = line.strip_prefix(b"Content-Length: ") {
            if found_length || value != want {
                return false;
            }
            found_length = true;
        }
    }
    found_length
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/A.PNG"), "image/png");
        assert_eq!(content_type("/x/style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/noext"), "application/octet-stream");
        assert_eq!(content_type("/.hidden"), "application/octet-stream");
        assert_eq!(content_type("/dir.d/file"), "application/octet-stream");
        assert!(is_html("/a/b.HTM"));
        assert!(!is_html("/a/html"));
    }

    #[test]
    fn etag_is_quoted_hex() {
        let mut h = [0u8; 32];
        h[0] = 0xab;
        h[15] = 0x01;
        h[16] = 0xff;
        assert_eq!(&etag(&h), b"\"ab000000000000000000000000000001\"");
    }

    #[test]
    fn header_round_trip() {
        let mut buf = [0u8; 256];
        let len = write_header(&mut buf, "image/png", 5120, 784_111_777, &[0x11; 32]).unwrap();
        let text = core::str::from_utf8(&buf[..len]).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5120\r\n\
             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             ETag: \"11111111111111111111111111111111\"\r\nAccept-Ranges: bytes\r\n"
        );
        assert!(check_header(&buf[..len], 5120));
        assert!(!check_header(&buf[..len], 512));
        assert!(!check_header(&buf[..len - 2], 5120));
        assert!(write_header(&mut buf[..len - 1], "image/png", 5120, 784_111_777, &[0x11; 32]).is_none());
        let mut doubled = [0u8; 300];
        doubled[..len].copy_from_slice(&buf[..len]);
        doubled[len..len + 2].copy_from_slice(b"\r\n");
        assert!(!check_header(&doubled[..len + 2], 5120), "an empty line inside");
    }

    #[test]
    fn decimals() {
        let mut b = [0; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(u64::MAX, &mut b), b"18446744073709551615");
    }
}
