use super::{get, one, run, run_chunked, site, Resp, A_TXT, BIG, LM, NOW};
use crate::conn::{Connection, Poll, MAX_HEADERS, MAX_TARGET};
use crate::date::DateCache;
use crate::response::Body;
use std::format;
use std::string::String;
use std::vec::Vec;

const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
const LM_TEXT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn codes(r: &[Resp]) -> Vec<u16> {
    r.iter().map(|r| r.code).collect()
}

fn assert_error(r: &Resp, code: u16, close: bool) {
    assert_eq!(r.code, code, "{r:#?}");
    assert_eq!(r.close, close, "{r:#?}");
    assert_eq!(r.field("Connection"), close.then_some("close"), "{r:#?}");
    assert!(r.body.is_none());
    assert_eq!(r.field("Content-Type"), Some("text/html; charset=utf-8"));
    let len: usize = r.field("Content-Length").unwrap().parse().unwrap();
    assert_eq!(r.inline_body().len(), len, "{r:#?}");
    assert!(r.inline_body().contains(&format!("<h1>{code} ")), "{r:#?}");
}

#[test]
fn get_a_file() {
    let r = one(&get("/a.txt", ""));
    assert_eq!(r.code, 200);
    assert!(r.head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(r.field("Date"), Some(DATE));
    assert_eq!(r.field("Content-Type"), Some("text/plain"));
    assert_eq!(r.field("Content-Length"), Some("11"));
    assert_eq!(r.field("Last-Modified"), Some(LM_TEXT));
    assert_eq!(r.field("ETag"), Some("\"a1\""));
    assert_eq!(r.field("Accept-Ranges"), Some("bytes"));
    assert_eq!(r.field("Connection"), None);
    assert!(r.head.ends_with("\r\n\r\n"));
    assert_eq!(r.body, Some(Body { file: A_TXT, offset: 0, len: 11 }));
    assert!(!r.close);
}

#[test]
fn head_has_the_same_header_and_no_body() {
    let g = one(&get("/a.txt", ""));
    let h = one(b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.code, 200);
    assert_eq!(h.head, g.head);
    // The file, for the server to open (and refuse if it cannot serve
    // it), but none of its bytes.
    assert_eq!(h.body, Some(Body { file: A_TXT, offset: 0, len: 0 }));
    // HEAD of an error: the Content-Length of the body, no body.
    let h = one(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.code, 404);
    assert!(h.field("Content-Length").unwrap().parse::<usize>().unwrap() > 0);
    assert_eq!(h.inline_body(), "");
}

#[test]
fn zero_length_file() {
    let r = one(&get("/zero.txt", ""));
    assert_eq!(r.code, 200);
    assert_eq!(r.field("Content-Length"), Some("0"));
    assert_eq!(r.body.unwrap().len, 0);
}

#[test]
fn directories_index_and_redirect() {
    let r = one(&get("/", ""));
    assert_eq!(r.code, 200);
    assert_eq!(r.field("ETag"), Some("\"home\""));
    let r = one(&get("/dir/", ""));
    assert_eq!(r.code, 200);
    assert_eq!(r.field("ETag"), Some("\"dir\""));
    assert_eq!(r.body.unwrap().file, 3);
    let r = one(&get("/dir", ""));
    assert_error(&r, 301, false);
    assert_eq!(r.field("Location"), Some("/dir/"));
    let r = one(&get("/dir?x=1", ""));
    assert_eq!(r.field("Location"), Some("/dir/?x=1"));
    let r = one(&get("/a/../dir", ""));
    assert_eq!(r.field("Location"), Some("/dir/"));
    // The Location is percent-encoded again.
    let r = one(&get("/sp%20ace", ""));
    assert_eq!(r.code, 301);
    assert_eq!(r.field("Location"), Some("/sp%20ace/"));
    // A directory without index.html.
    assert_error(&one(&get("/empty/", "")), 404, false);
    assert_eq!(one(&get("/empty", "")).code, 301);
    // A file with a trailing slash is not a directory.
    assert_eq!(one(&get("/a.txt/", "")).code, 404);
}

#[test]
fn not_found() {
    assert_error(&one(&get("/missing.html", "")), 404, false);
    // Query ignored for lookup.
    assert_eq!(one(&get("/a.txt?download=1", "")).code, 200);
    // Decoded names.
    assert_eq!(one(&get("/sp%20ace.txt", "")).code, 200);
    assert_eq!(one(&get("/caf%C3%A9.txt", "")).code, 200);
    // Not UTF-8 once decoded: no such name.
    assert_error(&one(&get("/caf%E9.txt", "")), 404, false);
}

#[test]
fn traversal_attempts() {
    for (target, code) in [
        ("/../a.txt", 200),
        ("/../../../../a.txt", 200),
        ("/%2e%2e/a.txt", 200),
        ("/dir/%2E%2E/%2e%2e/a.txt", 200),
        ("//a.txt", 200),
        ("/./dir/../a.txt", 200),
        ("/../etc/passwd", 404),
        ("/%2e%2e%2fetc/passwd", 400),
        ("/..%2F..%2Fetc/passwd", 400),
        ("/..\\..\\etc\\passwd", 400),
        ("/%5c..%5cetc%5cpasswd", 400),
        ("/a.txt%00.html", 400),
        ("/%00", 400),
        ("/%zz", 400),
        ("/%", 400),
    ] {
        let r = one(&get(target, ""));
        assert_eq!(r.code, code, "{target}: {r:#?}");
        if code == 400 {
            assert_error(&r, 400, true);
        }
    }
}

#[test]
fn target_forms() {
    assert_eq!(one(b"GET http://example.com/a.txt HTTP/1.1\r\nHost: other\r\n\r\n").code, 200);
    assert_error(&one(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"), 405, false);
    assert_error(&one(b"GET * HTTP/1.1\r\nHost: t\r\n\r\n"), 400, true);
    assert_error(&one(b"GET a.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 400, true);
    assert_error(&one(b"GET example.com:80 HTTP/1.1\r\nHost: t\r\n\r\n"), 400, true);
    let long = format!("/{}", "a".repeat(MAX_TARGET));
    assert_error(&one(&get(&long, "")), 414, true);
    let fits = format!("/{}", "a".repeat(MAX_TARGET - 1));
    assert_eq!(one(&get(&fits, "")).code, 404);
    // Long but mostly dot segments: fits once normalised? The raw target
    // is what is limited.
    let dots = format!("{}/a.txt", "/.".repeat(MAX_TARGET / 2));
    assert_eq!(one(&get(&dots, "")).code, 414);
}

#[test]
fn methods() {
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT"] {
        let r = one(format!("{m} /a.txt HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_error(&r, 405, false);
        assert_eq!(r.field("Allow"), Some("GET, HEAD"), "{m}");
    }
    for m in ["BREW", "get", "Head", "PROPFIND", "X"] {
        let r = one(format!("{m} /a.txt HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_error(&r, 501, false);
        assert_eq!(r.field("Allow"), None);
    }
    // A body on a refused method is skipped; the next request is answered.
    let r = run(
        b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nGET /xGET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(codes(&r), [405, 200]);
}

#[test]
fn versions() {
    let r = one(b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(r.code, 200);
    assert!(r.close);
    assert_eq!(r.field("Connection"), Some("close"));
    for v in ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/9.9"] {
        let r = one(format!("GET /a.txt {v}\r\nHost: t\r\n\r\n").as_bytes());
        assert_error(&r, 505, true);
    }
    for v in ["http/1.1", "HTTP/x", "HTCPCP/1.0", "HTTP/1.1x", "HTTP/", "HTTP/3", "HTTP/2.0 x", "HTTP/22.0"] {
        let r = one(format!("GET /a.txt {v}\r\nHost: t\r\n\r\n").as_bytes());
        assert_error(&r, 400, true);
    }
    // HEAD: no body even for a closing error.
    let r = one(b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!((r.code, r.close, r.inline_body()), (400, true, ""));
    // HTTP/0.9 request line (no version).
    assert_error(&one(b"GET /a.txt\r\n\r\n"), 400, true);
}

#[test]
fn host_header_rules() {
    assert_error(&one(b"GET /a.txt HTTP/1.1\r\n\r\n"), 400, true);
    assert_error(&one(b"GET /a.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, true);
    assert_eq!(one(b"GET /a.txt HTTP/1.0\r\n\r\n").code, 200);
    assert_eq!(one(b"GET /a.txt HTTP/1.1\r\nhOsT: a\r\n\r\n").code, 200);
}

#[test]
fn malformed_requests() {
    for bad in [
        &b"GET  /a.txt HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /a.txt  HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a txt HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a.txt HTTP/1.1\r\nHost : t\r\n\r\n",
        b"GET /a.txt HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
        b"GET /a.txt HTTP/1.1\r\nNo colon\r\n\r\n",
        b"GET /a.txt HTTP/1.1\r\nHost: t\x00\r\n\r\n",
        b"GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"G\x7fT / HTTP/1.1\r\n\r\n",
        b" GET / HTTP/1.1\r\n\r\n",
    ] {
        let r = run(bad);
        assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(bad));
        assert_error(&r[0], 400, true);
    }
}

#[test]
fn leading_empty_lines_are_ignored() {
    assert_eq!(codes(&run(b"\r\n\r\n\nGET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")), [200]);
    // Bare LF line endings are accepted by httparse.
    assert_eq!(codes(&run(b"GET /a.txt HTTP/1.1\nHost: t\n\n")), [200]);
    // Endless empty lines never fill the buffer.
    let many = "\r\n".repeat(10_000);
    assert_eq!(run_chunked::<64>(many.as_bytes(), 7).len(), 0);
}

#[test]
fn keep_alive_rules() {
    // 1.1: persistent unless close.
    let r = one(&get("/a.txt", ""));
    assert!(!r.close);
    let r = one(&get("/a.txt", "Connection: close\r\n"));
    assert!(r.close);
    assert_eq!(r.field("Connection"), Some("close"));
    let r = one(&get("/a.txt", "Connection: Upgrade, CLOSE\r\n"));
    assert!(r.close);
    let r = one(&get("/a.txt", "Connection: keep-alive\r\nConnection: close\r\n"));
    assert!(r.close);
    // 1.0: closes unless keep-alive, then says so.
    let r = one(b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert!(r.close);
    let r = one(b"GET /a.txt HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(!r.close);
    assert_eq!(r.field("Connection"), Some("keep-alive"));
    let r = one(b"GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.code, 404);
    assert!(!r.close);
    assert_eq!(r.field("Connection"), Some("keep-alive"));
    let r = one(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(r.close);
    // Nothing is answered after a closing response.
    let r = run(b"GET /a.txt HTTP/1.0\r\n\r\nGET /a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(codes(&r), [200]);
    let r = run(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(codes(&r), [200]);
}

#[test]
fn closed_connection_stays_closed() {
    let mut conn = Connection::<256>::new();
    let date = DateCache::new(NOW);
    let mut out = [0u8; 1024];
    conn.receive(b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert!(matches!(conn.poll(&site(), &date, &mut out), Ok(Poll::Respond(_))));
    assert!(conn.is_closed());
    let req = get("/a.txt", "");
    assert_eq!(conn.receive(&req), req.len());
    assert_eq!(conn.poll(&site(), &date, &mut out), Ok(Poll::Closed));
}

pub fn pipeline() -> Vec<u8> {
    let mut input = Vec::new();
    input.extend(get("/a.txt", ""));
    input.extend(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    input.extend(get("/missing", ""));
    input.extend(get("/big.bin", "Range: bytes=10-19\r\nContent-Length: 4\r\n"));
    input.extend(b"GET ");
    input.extend(get("/dir", ""));
    input.extend(get("/a.txt", "If-None-Match: \"a1\"\r\n"));
    input.extend(b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n");
    input.extend(get("/", "Connection: close\r\n"));
    input.extend(get("/a.txt", ""));
    input
}

#[test]
fn pipelined_requests_answered_in_order() {
    let r = run(&pipeline());
    assert_eq!(codes(&r), [200, 200, 404, 206, 301, 304, 501, 200]);
    assert_eq!(r[3].body, Some(Body { file: BIG, offset: 10, len: 10 }));
    assert!(r[7].close);
    assert!(r[..7].iter().all(|r| !r.close));
}

#[test]
fn any_split_gives_the_same_responses() {
    let input = pipeline();
    let whole = run(&input);
    for chunk in 1..=input.len() {
        let split = run_chunked::<4096>(&input, chunk);
        assert_eq!(codes(&split), codes(&whole), "chunk {chunk}");
        for (a, b) in split.iter().zip(&whole) {
            assert_eq!(a.head, b.head);
            assert_eq!(a.body, b.body);
            assert_eq!(a.close, b.close);
        }
    }
    // A small buffer (each request fits) gives the same answers too.
    for chunk in [1, 3, 17, 64, 200] {
        assert_eq!(codes(&run_chunked::<128>(&input, chunk)), codes(&whole), "chunk {chunk}");
    }
}

#[test]
fn a_split_between_two_reads_anywhere() {
    let input = pipeline();
    let whole = run(&input);
    for cut in 0..input.len() {
        let mut conn = Connection::<4096>::new();
        let date = DateCache::new(NOW);
        let mut out = Vec::new();
        conn.receive(&input[..cut]);
        super::drain(&mut conn, &date, &mut out);
        conn.receive(&input[cut..]);
        super::drain(&mut conn, &date, &mut out);
        assert_eq!(codes(&out), codes(&whole), "cut {cut}");
    }
}

#[test]
fn request_bodies_are_skipped() {
    let body = "x".repeat(10_000);
    let input = format!(
        "GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n",
        body.len()
    );
    for chunk in [1, 5, 100, 4096, input.len()] {
        let r = run_chunked::<256>(input.as_bytes(), chunk);
        assert_eq!(codes(&r), [200, 200], "chunk {chunk}");
        assert_eq!(r[1].body.unwrap().file, BIG);
    }
    // A body that looks like a request is not taken for one.
    let r =
        run(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 33\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(codes(&r), [200]);
    // Repeated identical Content-Length is accepted.
    let r = run(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nxGET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(codes(&r), [200, 200]);
}

#[test]
fn bad_content_length_and_transfer_encoding() {
    for extra in [
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 1, 1\r\n",
        "Content-Length: 1\r\nContent-Length: 2\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length:\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding:\r\n",
        "Transfer-Encoding: identity\r\n",
    ] {
        let r = run(&get("/a.txt", extra));
        assert_eq!(r.len(), 1);
        assert_error(&r[0], 400, true);
    }
    for extra in ["Transfer-Encoding: chunked\r\n", "Transfer-Encoding: gzip, Chunked\r\nContent-Length: 3\r\n"] {
        let r = run(&get("/a.txt", extra));
        assert_eq!(r.len(), 1);
        assert_error(&r[0], 501, true);
    }
}

#[test]
fn expect_continue_with_a_body_closes() {
    let r = one(&get("/a.txt", "Expect: 100-continue\r\nContent-Length: 10\r\n"));
    assert_eq!(r.code, 200);
    assert!(r.close);
    let r = one(&get("/a.txt", "Expect: 100-continue\r\n"));
    assert!(!r.close);
}

#[test]
fn limits_414_431_501() {
    // Request line that does not fit the buffer.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(300));
    for chunk in [1, 10, 1000] {
        let r = run_chunked::<256>(long.as_bytes(), chunk);
        assert_eq!(r.len(), 1);
        assert_error(&r[0], 414, true);
    }
    // A giant method is not a method.
    let method = format!("{} / HTTP/1.1\r\n\r\n", "X".repeat(300));
    let r = run_chunked::<256>(method.as_bytes(), 50);
    assert_error(&r[0], 501, true);
    // Header section that does not fit.
    let big = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "b".repeat(300));
    for chunk in [1, 10, 1000] {
        let r = run_chunked::<256>(big.as_bytes(), chunk);
        assert_eq!(r.len(), 1);
        assert_error(&r[0], 431, true);
    }
    // Too many fields.
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_error(&one(&get("/a.txt", &many)), 431, true);
    let fine: String = (0..MAX_HEADERS - 1).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(one(&get("/a.txt", &fine)).code, 200);
    // Exactly filling the buffer is fine.
    let req = get("/a.txt", "");
    let pad = 128 - req.len() - "X: \r\n".len();
    let exact = get("/a.txt", &format!("X: {}\r\n", "p".repeat(pad)));
    assert_eq!(exact.len(), 128);
    assert_eq!(codes(&run_chunked::<128>(&exact, 1)), [200]);
    let over = get("/a.txt", &format!("X: {}\r\n", "p".repeat(pad + 1)));
    assert_eq!(codes(&run_chunked::<128>(&over, 1)), [431]);
}

#[test]
fn conditional_get() {
    let lm = LM_TEXT;
    // If-None-Match.
    let r = one(&get("/a.txt", "If-None-Match: \"a1\"\r\n"));
    assert_eq!(r.code, 304);
    assert!(r.head.starts_with("HTTP/1.1 304 Not Modified\r\n"));
    assert_eq!(r.field("ETag"), Some("\"a1\""));
    assert_eq!(r.field("Last-Modified"), Some(lm));
    assert_eq!(r.field("Date"), Some(DATE));
    assert_eq!(r.field("Content-Length"), None);
    assert_eq!(r.field("Content-Type"), None);
    assert_eq!(r.inline_body(), "");
    assert_eq!(r.body, None);
    assert!(!r.close);
    assert_eq!(one(&get("/a.txt", "If-None-Match: W/\"a1\"\r\n")).code, 304);
    assert_eq!(one(&get("/a.txt", "If-None-Match: \"x\", \"a1\"\r\n")).code, 304);
    assert_eq!(one(&get("/a.txt", "If-None-Match: \"x\"\r\nIf-None-Match: \"a1\"\r\n")).code, 304);
    assert_eq!(one(&get("/a.txt", "If-None-Match: *\r\n")).code, 304);
    assert_eq!(one(&get("/a.txt", "If-None-Match: \"b\"\r\n")).code, 200);
    assert_eq!(one(&get("/a.txt", "If-None-Match: garbage\r\n")).code, 200);
    assert_eq!(one(&get("/nope", "If-None-Match: *\r\n")).code, 404);
    assert_eq!(one(b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"a1\"\r\n\r\n").code, 304);
    // If-Modified-Since, in the three formats.
    for date in [lm, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Mon, 07 Nov 1994 00:00:00 GMT"] {
        let r = one(&get("/a.txt", &format!("If-Modified-Since: {date}\r\n")));
        assert_eq!(r.code, 304, "{date}");
        assert_eq!(r.field("ETag"), Some("\"a1\""));
    }
    for date in ["Sun, 06 Nov 1994 08:49:36 GMT", "garbage", "Sun, 06 Nov 1994 08:49:37 GMT, x"] {
        assert_eq!(one(&get("/a.txt", &format!("If-Modified-Since: {date}\r\n"))).code, 200, "{date}");
    }
    // Two IMS fields: ignored.
    assert_eq!(one(&get("/a.txt", &format!("If-Modified-Since: {lm}\r\nIf-Modified-Since: {lm}\r\n"))).code, 200);
    // If-None-Match present (even not matching) takes precedence over IMS.
    assert_eq!(one(&get("/a.txt", &format!("If-None-Match: \"b\"\r\nIf-Modified-Since: {lm}\r\n"))).code, 200);
    assert_eq!(one(&get("/a.txt", "If-None-Match: \"a1\"\r\nIf-Modified-Since: garbage\r\n")).code, 304);
    // 304 keeps HTTP/1.0 keep-alive.
    let r = one(format!("GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\nIf-Modified-Since: {lm}\r\n\r\n").as_bytes());
    assert_eq!(r.code, 304);
    assert_eq!(r.field("Connection"), Some("keep-alive"));
}

#[test]
fn ranges() {
    let r = one(&get("/big.bin", "Range: bytes=100-199\r\n"));
    assert_eq!(r.code, 206);
    assert!(r.head.starts_with("HTTP/1.1 206 Partial Content\r\n"));
    assert_eq!(r.field("Content-Range"), Some("bytes 100-199/1000"));
    assert_eq!(r.field("Content-Length"), Some("100"));
    assert_eq!(r.head.matches("Content-Length").count(), 1);
    assert_eq!(r.field("Content-Type"), Some("application/octet-stream"));
    assert_eq!(r.field("ETag"), Some("\"big\""));
    assert_eq!(r.field("Last-Modified"), Some(LM_TEXT));
    assert_eq!(r.body, Some(Body { file: BIG, offset: 100, len: 100 }));
    let r = one(&get("/big.bin", "Range: bytes=990-\r\n"));
    assert_eq!((r.code, r.field("Content-Range")), (206, Some("bytes 990-999/1000")));
    assert_eq!(r.body.unwrap().len, 10);
    let r = one(&get("/big.bin", "Range: bytes=-1\r\n"));
    assert_eq!(r.field("Content-Range"), Some("bytes 999-999/1000"));
    assert_eq!(r.body, Some(Body { file: BIG, offset: 999, len: 1 }));
    let r = one(&get("/big.bin", "Range: bytes=0-5000\r\n"));
    assert_eq!(r.field("Content-Range"), Some("bytes 0-999/1000"));
    // Unsatisfiable.
    for v in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let r = one(&get("/big.bin", &format!("Range: {v}\r\n")));
        assert_error(&r, 416, false);
        assert_eq!(r.field("Content-Range"), Some("bytes */1000"));
    }
    let r = one(&get("/zero.txt", "Range: bytes=0-\r\n"));
    assert_eq!((r.code, r.field("Content-Range")), (416, Some("bytes */0")));
    // Multiple ranges, bad syntax, other units, several fields: full 200.
    for extra in [
        "Range: bytes=0-1,5-6\r\n",
        "Range: bytes=5-1\r\n",
        "Range: pages=1-2\r\n",
        "Range: bytes=0-1\r\nRange: bytes=0-1\r\n",
    ] {
        let r = one(&get("/big.bin", extra));
        assert_eq!(r.code, 200, "{extra}");
        assert_eq!(r.body, Some(Body { file: BIG, offset: 0, len: 1000 }));
    }
    // HEAD ignores Range.
    let r = one(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n");
    assert_eq!((r.code, r.body), (200, Some(Body { file: BIG, offset: 0, len: 0 })));
    // A matching If-None-Match wins over Range.
    assert_eq!(one(&get("/big.bin", "Range: bytes=0-1\r\nIf-None-Match: \"big\"\r\n")).code, 304);
}

#[test]
fn if_range() {
    let ok = |extra: &str| one(&get("/big.bin", &format!("Range: bytes=0-9\r\n{extra}"))).code;
    assert_eq!(ok("If-Range: \"big\"\r\n"), 206);
    assert_eq!(ok("If-Range: W/\"big\"\r\n"), 200);
    assert_eq!(ok("If-Range: \"old\"\r\n"), 200);
    assert_eq!(ok(&format!("If-Range: {LM_TEXT}\r\n")), 206);
    assert_eq!(ok("If-Range: Sun, 06 Nov 1994 08:49:38 GMT\r\n"), 200);
    assert_eq!(ok("If-Range: nonsense\r\n"), 200);
    assert_eq!(ok("If-Range: \"big\"\r\nIf-Range: \"big\"\r\n"), 200);
    // A stale If-Range with an unsatisfiable range: the full file.
    assert_eq!(one(&get("/big.bin", "Range: bytes=5000-\r\nIf-Range: \"old\"\r\n")).code, 200);
}

#[test]
fn idle_timeout_408() {
    let date = DateCache::new(NOW);
    let mut out = [0u8; 1024];
    // Part of a request arrived: 408, then close.
    let mut conn = Connection::<256>::new();
    conn.receive(b"GET /a.txt HTTP/1.1\r\nHo");
    assert_eq!(conn.poll(&site(), &date, &mut out), Ok(Poll::NeedMore));
    assert!(!conn.is_idle());
    let n = conn.timeout(&date, &mut out).unwrap().expect("408 to send");
    let text = String::from_utf8(out[..n].to_vec()).unwrap();
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"));
    assert!(text.contains(&format!("\r\nDate: {DATE}\r\n")));
    assert!(text.ends_with("</html>\n"));
    assert!(conn.is_closed());
    assert_eq!(conn.poll(&site(), &date, &mut out), Ok(Poll::Closed));
    assert_eq!(conn.timeout(&date, &mut out), Ok(None));
    // Waiting for a body: also mid-request.
    let mut conn = Connection::<256>::new();
    conn.receive(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab");
    assert!(matches!(conn.poll(&site(), &date, &mut out), Ok(Poll::Respond(_))));
    assert_eq!(conn.poll(&site(), &date, &mut out), Ok(Poll::NeedMore));
    assert!(conn.timeout(&date, &mut out).unwrap().is_some());
    // Idle between requests: just close.
    let mut conn = Connection::<256>::new();
    conn.receive(&get("/a.txt", ""));
    assert!(matches!(conn.poll(&site(), &date, &mut out), Ok(Poll::Respond(_))));
    assert_eq!(conn.poll(&site(), &date, &mut out), Ok(Poll::NeedMore));
    assert!(conn.is_idle());
    assert_eq!(conn.timeout(&date, &mut out), Ok(None));
    assert!(conn.is_closed());
}

#[test]
fn date_header_follows_the_cache() {
    let mut conn = Connection::<256>::new();
    let mut date = DateCache::new(NOW);
    let mut out = [0u8; 1024];
    let req = get("/a.txt", "");
    for i in 0..3 {
        date.update(NOW + i);
        conn.receive(&req);
        let Ok(Poll::Respond(r)) = conn.poll(&site(), &date, &mut out) else { panic!() };
        let text = String::from_utf8(out[..r.head_len].to_vec()).unwrap();
        assert!(text.contains(&format!("Date: Tue, 14 Nov 2023 22:13:2{i} GMT\r\n")), "{text}");
    }
}

#[test]
fn output_buffer_too_small() {
    let date = DateCache::new(NOW);
    let mut conn = Connection::<256>::new();
    conn.receive(&get("/a.txt", ""));
    // Too small for anything: nothing consumed, retry works.
    let mut tiny = [0u8; 16];
    assert!(conn.poll(&site(), &date, &mut tiny).is_err());
    let mut out = [0u8; 1024];
    assert!(matches!(conn.poll(&site(), &date, &mut out), Ok(Poll::Respond(r)) if r.status.code() == 200));
    // Too small for the file's header but enough for an error: 500, close.
    conn.receive(&get("/huge-header", ""));
    let Ok(Poll::Respond(r)) = conn.poll(&site(), &date, &mut out) else { panic!() };
    assert_eq!((r.status.code(), r.close, r.body), (500, true, None));
}

#[test]
fn every_status_code_is_produced() {
    let mut seen: Vec<u16> = Vec::new();
    for input in [
        get("/a.txt", ""),
        get("/big.bin", "Range: bytes=0-0\r\n"),
        get("/dir", ""),
        get("/a.txt", "If-None-Match: *\r\n"),
        get("/%zz", ""),
        get("/nope", ""),
        b"PUT / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        get(&format!("/{}", "a".repeat(MAX_TARGET)), ""),
        get("/big.bin", "Range: bytes=2000-\r\n"),
        get("/", &(0..40).map(|i| format!("X-{i}: v\r\n")).collect::<String>()),
        b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        b"GET / HTTP/2.0\r\n\r\n".to_vec(),
    ] {
        seen.push(one(&input).code);
    }
    assert_eq!(seen, [200, 206, 301, 304, 400, 404, 405, 414, 416, 431, 501, 505]);
    // 408: idle_timeout_408; 500: output_buffer_too_small.
}

#[test]
fn lm_is_what_the_site_says() {
    // The header comes from the site; LM is in it.
    assert_eq!(one(&get("/a.txt", "")).field("Last-Modified"), Some(LM_TEXT));
    let _ = LM;
}

#[test]
fn a_stored_accept_ranges_field_is_not_repeated() {
    use crate::site::{FileInfo, MemEntry, MemSite};
    let header = b"Content-Type: text/plain\r\nContent-Length: 4\r\nETag: \"s\"\r\nAccept-Ranges: bytes\r\n";
    let entries =
        [MemEntry { path: "/s.txt", file: Some(FileInfo { len: 4, last_modified: 0, etag: b"\"s\"", header }) }];
    let site = MemSite { entries: &entries };
    let date = DateCache::new(super::NOW);
    for (request, code) in [
        (&b"GET /s.txt HTTP/1.1\r\nHost: t\r\n\r\n"[..], 200),
        (&b"GET /s.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=1-2\r\n\r\n"[..], 206),
    ] {
        let mut conn = Connection::<1024>::new();
        conn.receive(request);
        let mut out = [0u8; 1024];
        let Ok(Poll::Respond(r)) = conn.poll(&site, &date, &mut out) else { panic!("no response") };
        assert_eq!(r.status.code(), code);
        let head = String::from_utf8_lossy(&out[..r.head_len]);
        assert_eq!(head.matches("Accept-Ranges").count(), 1, "{head}");
    }
}

#[test]
fn a_closing_error_replaces_a_response() {
    let date = DateCache::new(super::NOW);
    let mut out = [0u8; 512];
    let len = crate::write_closing_error(&mut out, crate::Status::InternalServerError, &date, false).unwrap();
    let text = String::from_utf8_lossy(&out[..len]);
    assert!(text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Content-Length: {}", body.len())), "{text}");
    assert!(body.contains("<h1>500 Internal Server Error</h1>"));
    assert!(crate::write_closing_error(&mut out[..20], crate::Status::InternalServerError, &date, false).is_err());
}
