use crate::target::{normalize, Target, TargetError};
use std::string::String;

fn norm(t: &str) -> Result<(String, Option<String>), TargetError> {
    let mut out = [0u8; 256];
    let Target { path_len, query } = normalize(t.as_bytes(), &mut out)?;
    Ok((String::from_utf8_lossy(&out[..path_len]).into_owned(), query.map(|q| String::from_utf8(q.to_vec()).unwrap())))
}

fn path(t: &str) -> String {
    norm(t).unwrap_or_else(|e| panic!("{t}: {e:?}")).0
}

#[test]
fn origin_form_paths() {
    assert_eq!(path("/"), "/");
    assert_eq!(path("/a.txt"), "/a.txt");
    assert_eq!(path("/dir/"), "/dir/");
    assert_eq!(path("/dir/sub/file"), "/dir/sub/file");
    assert_eq!(norm("/a.txt?x=1&y=%2F").unwrap(), ("/a.txt".into(), Some("x=1&y=%2F".into())));
    assert_eq!(norm("/?").unwrap(), ("/".into(), Some("".into())));
}

#[test]
fn dot_segments_per_rfc3986() {
    // RFC 3986 §5.2.4 examples and more.
    assert_eq!(path("/a/b/c/./../../g"), "/a/g");
    assert_eq!(path("/mid/content=5/../6"), "/mid/6");
    assert_eq!(path("/a/b/.."), "/a/");
    assert_eq!(path("/a/b/."), "/a/b/");
    assert_eq!(path("/a/./b"), "/a/b");
    assert_eq!(path("/a/.b"), "/a/.b");
    assert_eq!(path("/a/..b"), "/a/..b");
    assert_eq!(path("/a/b../c"), "/a/b../c");
    assert_eq!(path("/."), "/");
    assert_eq!(path("/.."), "/");
}

#[test]
fn traversal_never_leaves_the_root() {
    for t in [
        "/../etc/passwd",
        "/../../../../etc/passwd",
        "/a/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2e%2E/etc/passwd",
        "/.%2e/etc/passwd",
        "/a/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/./../etc/./passwd",
        "http://h/../etc/passwd",
    ] {
        assert_eq!(path(t), "/etc/passwd", "{t}");
    }
    // Merged slashes.
    assert_eq!(path("//a//b///c"), "/a/b/c");
    assert_eq!(path("/a//"), "/a/");
    assert_eq!(path("///"), "/");
}

#[test]
fn refused_bytes_and_escapes() {
    for t in [
        "/%00",
        "/a%00.txt",
        "/%0a",
        "/%7f",
        "/%",
        "/%2",
        "/%zz",
        "/%g0",
        "/a%2Fb",
        "/a%2fb",
        "/..%2f..%2fetc/passwd",
        "/%2e%2e%2f",
        "/a\\b",
        "/..\\..\\etc\\passwd",
        "/%5c..%5cetc",
        "/%5C",
        "/a#frag",
        "*",
        "a.txt",
        "",
        "example.com:80",
        "ftp://h/a",
        "http://",
        "http://user@h/a",
    ] {
        assert_eq!(norm(t), Err(TargetError::BadRequest), "{t}");
    }
}

#[test]
fn decoding() {
    assert_eq!(path("/sp%20ace.txt"), "/sp ace.txt");
    assert_eq!(path("/caf%C3%A9.txt"), "/caf\u{e9}.txt");
    assert_eq!(path("/%41%62c"), "/Abc");
    // Decoding happens once: %25 is a literal '%'.
    assert_eq!(path("/%252e%252e/x"), "/%2e%2e/x");
}

#[test]
fn absolute_form() {
    assert_eq!(path("http://example.com/a.txt"), "/a.txt");
    assert_eq!(path("HTTP://example.com:8080/dir/"), "/dir/");
    assert_eq!(path("http://example.com"), "/");
    assert_eq!(norm("http://example.com?q").unwrap().0, "/");
    assert_eq!(norm("https://example.com/x"), Err(TargetError::BadRequest));
}

#[test]
fn too_long_for_the_buffer() {
    let mut out = [0u8; 8];
    assert_eq!(normalize(b"/abcdefgh", &mut out), Err(TargetError::TooLong));
    assert!(normalize(b"/abcdefg", &mut out).is_ok());
    // A trailing '/' needs a byte too.
    assert_eq!(normalize(b"/abcdef/.", &mut out).map(|t| t.path_len), Ok(8));
    assert_eq!(normalize(b"/abcdefg/.", &mut out), Err(TargetError::TooLong));
    // Dot segments do not need room in the output once removed.
    assert_eq!(normalize(b"/aaaaaaaaaaaaaaaaaaaaa/../b", &mut out), Err(TargetError::TooLong));
    assert_eq!(normalize(b"/a/../b", &mut out).map(|t| t.path_len), Ok(2));
    assert_eq!(normalize(b"/", &mut []), Err(TargetError::TooLong));
}
