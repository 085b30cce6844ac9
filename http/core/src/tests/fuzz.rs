//! Property-style tests: no input makes the connection panic, hang, or
//! produce a malformed response.

use super::{pipeline_input, site, NOW};
use crate::conn::{Connection, Poll};
use crate::date::{parse_http_date, DateCache};
use crate::target::normalize;
use lib_test_rng::Rng;
use std::vec::Vec;

const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b" ",
    b":",
    b"%",
    b"%2e",
    b"%00",
    b"/..",
    b"/",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"Range: bytes=",
    b"-",
    b",",
    b"If-None-Match: ",
    b"\"",
    b"W/",
    b"*",
    b"Content-Length: 5",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b"Host: x",
    b"If-Modified-Since: ",
    b"If-Range: ",
    b"\x00",
    b"\xff",
    b"9999999999999999999999",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(input.len() + 1);
        match rng.below(5) {
            0 if !input.is_empty() => {
                let at = at.min(input.len() - 1);
                input[at] = rng.next() as u8;
            }
            1 if at < input.len() => {
                let n = rng.below(input.len() - at).min(20);
                input.drain(at..at + n);
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(at..at, piece.iter().copied());
            }
            3 if !input.is_empty() => {
                // Duplicate a slice.
                let from = rng.below(input.len());
                let n = rng.below(input.len() - from).min(40);
                let piece: Vec<u8> = input[from..from + n].to_vec();
                input.splice(at..at, piece);
            }
            _ => input.insert(at, rng.next() as u8),
        }
    }
}

/// Feeds `input` in random chunks; checks every response is well formed
/// and that the connection always makes progress.
fn exercise<const N: usize>(rng: &mut Rng, input: &[u8]) {
    let site = site();
    let date = DateCache::new(NOW);
    let mut conn = Connection::<N>::new();
    let mut out = [0u8; 1024];
    let mut rest = input;
    let mut rounds = 0;
    while !rest.is_empty() {
        rounds += 1;
        assert!(rounds < 100_000, "no progress");
        let chunk = 1 + rng.below(64);
        let n = conn.receive(&rest[..chunk.min(rest.len())]);
        rest = &rest[n..];
        loop {
            match conn.poll(&site, &date, &mut out).expect("1 KiB is enough") {
                Poll::Respond(r) => {
                    let head = &out[..r.head_len];
                    assert!(head.starts_with(b"HTTP/1.1 "));
                    assert!(head.windows(4).any(|w| w == b"\r\n\r\n"));
                    if let Some(body) = r.body {
                        let len = site.entries[body.file].file.unwrap().len;
                        assert!(body.offset + body.len <= len);
                    }
                }
                Poll::NeedMore => {
                    assert!(!conn.space().is_empty(), "buffer full while waiting for more");
                    break;
                }
                Poll::Closed => return,
            }
        }
        if rng.below(50) == 0 {
            let _ = conn.timeout(&date, &mut out);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..3000 {
        let len = rng.below(600);
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise::<256>(&mut rng, &input);
    }
}

#[test]
fn mutated_requests_never_panic() {
    let mut rng = Rng(0x0bad_cafe_f00d_d00d);
    let base = pipeline_input();
    for i in 0..20_000 {
        let mut input = base.clone();
        mutate(&mut rng, &mut input);
        if i % 2 == 0 {
            exercise::<4096>(&mut rng, &input);
        } else {
            exercise::<200>(&mut rng, &input);
        }
    }
}

#[test]
fn parsers_never_panic() {
    let mut rng = Rng(42);
    let mut out = [0u8; 64];
    for _ in 0..50_000 {
        let len = rng.below(40);
        const ALPHABET: &[u8] = b"/.%2eEfF0a\\?#\x00 -,=\"W*bytes";
        let mut v: Vec<u8> = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
        if rng.below(2) == 0 {
            v.insert(0, b'/');
        }
        if let Ok(t) = normalize(&v, &mut out) {
            let p = &out[..t.path_len];
            assert_eq!(p[0], b'/');
            assert!(!p.windows(2).any(|w| w == b"//"));
            assert!(!p.split(|&b| b == b'/').any(|s| s == b".." || s == b"."));
            assert!(!p.contains(&0) && !p.contains(&b'\\'));
        }
        let _ = parse_http_date(&v, rng.next());
        let _ = crate::conditional::evaluate_range(&v, rng.next() % 1000);
        let _ = crate::conditional::if_none_match(&v, b"\"x\"");
    }
}

/// The responses do not depend on how the bytes were split.
#[test]
fn mutated_requests_split_invariant() {
    let mut rng = Rng(0x5eed);
    let base = pipeline_input();
    for _ in 0..3000 {
        let mut input = base.clone();
        mutate(&mut rng, &mut input);
        let whole = super::run_chunked::<512>(&input, input.len());
        let chunk = 1 + rng.below(40);
        let split = super::run_chunked::<512>(&input, chunk);
        let heads = |r: &[super::Resp]| r.iter().map(|r| (r.head.clone(), r.body, r.close)).collect::<Vec<_>>();
        assert_eq!(heads(&split), heads(&whole), "chunk {chunk}: {}", std::string::String::from_utf8_lossy(&input));
    }
}
