//! Finding what an HTML page inlines: a small, forgiving tag scanner (no
//! HTML parser) and URL resolution against the page's path.
//!
//! Taken as inlined: the value of `src=` on any element (img, script,
//! iframe, source, video, audio, embed, input) and of `href=` on `<link>`
//! (stylesheets, icons, preloads). `href` on `<a>` and `<area>` is
//! navigation, not inlined. Comments are skipped, and so are the contents
//! of `<script>` and `<style>`. Attribute values may be double-quoted,
//! single-quoted or bare; names are ASCII case-insensitive. Anything the
//! scanner does not understand is skipped: a wrong guess only changes the
//! layout, never what is served.

/// The inlined references of `html`, in document order (raw attribute
/// values; entities are not decoded except `&amp;`).
pub fn references(html: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(lt) = find(html, i, b"<") {
        i = lt + 1;
        if html[i..].starts_with(b"!--") {
            i = find(html, i + 3, b"-->").map_or(html.len(), |e| e + 3);
            continue;
        }
        let name_end = i + html[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if name_end == i {
            continue; // `</x>`, `<!DOCTYPE>`, `< ` in text
        }
        let name = html[i..name_end].to_ascii_lowercase();
        i = name_end;
        // Attributes up to `>`.
        loop {
            while i < html.len() && (html[i].is_ascii_whitespace() || html[i] == b'/') {
                i += 1;
            }
            if i >= html.len() || html[i] == b'>' {
                break;
            }
            let attr_start = i;
            while i < html.len() && !html[i].is_ascii_whitespace() && !matches!(html[i], b'=' | b'>' | b'/') {
                i += 1;
            }
            if i == attr_start {
                i += 1; // a stray byte such as a lone quote
                continue;
            }
            let attr = html[attr_start..i].to_ascii_lowercase();
            while i < html.len() && html[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= html.len() || html[i] != b'=' {
                continue; // attribute without a value
            }
            i += 1;
            while i < html.len() && html[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = match html.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = find(html, i + 1, &[q]).unwrap_or(html.len());
                    let v = &html[i + 1..end];
                    i = end + 1;
                    v
                }
                _ => {
                    let start = i;
                    while i < html.len() && !html[i].is_ascii_whitespace() && html[i] != b'>' {
                        i += 1;
                    }
                    &html[start..i]
                }
            };
            let inlined = attr == b"src" || (attr == b"href" && name == b"link");
            if inlined {
                if let Ok(v) = std::str::from_utf8(value) {
                    out.push(v.trim().replace("&amp;", "&"));
                }
            }
        }
        if name == b"script" || name == b"style" {
            let mut close = b"</".to_vec();
            close.extend_from_slice(&name);
            i = find_ascii_ci(html, i, &close).unwrap_or(html.len());
        }
    }
    out
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn find_ascii_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| p + from)
}

/// The stored path a reference from the page at `page` names, if it is
/// local: no scheme (`https:`, `data:`, `mailto:`), not protocol-relative
/// (`//host/`); query and fragment dropped, percent-decoded, relative
/// references resolved against the page's directory and dot segments
/// removed (RFC 3986 §5.2), never above the root.
pub fn resolve(page: &str, reference: &str) -> Option<String> {
    let r = reference.split(['?', '#']).next().unwrap_or("");
    if r.is_empty() || r.starts_with("//") {
        return None;
    }
    let first_slash = r.find('/').unwrap_or(r.len());
    if r[..first_slash].contains(':') {
        return None;
    }
    let decoded = percent_decode(r)?;
    let joined = if decoded.starts_with('/') {
        decoded
    } else {
        let dir = &page[..page.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{decoded}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inlined_references() {
        let html = br#"<!DOCTYPE html><html><head>
            <LINK rel=stylesheet HREF="style.css"><link rel='icon' href='/favicon.ico'>
            <script src=js/app.js></script>
            <script>var s = "<img src='not-me.png'>";</script>
            <style>body { background: url(x.png) } </style>
            <!-- <img src="commented.png"> -->
            </head><body>
            <a href="other.html">a link</a>
            <img alt="x > y" src = "img/a.png" width=3/>
            <img src="data:image/png;base64,AAAA">
            <video src="v.webm" controls></video>
            <img src="a&amp;b.png">
            <p>1 < 2 and <b>bold</b></p>
            <img src="unterminated.png
        "#;
        assert_eq!(
            references(html),
            [
                "style.css",
                "/favicon.ico",
                "js/app.js",
                "img/a.png",
                "data:image/png;base64,AAAA",
                "v.webm",
                "a&b.png",
                "unterminated.png"
            ]
        );
    }

    #[test]
    fn scanner_is_total() {
        let mut x: u32 = 1;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    b"<>=\"' /srchef!-linkscript"[(x % 25) as usize]
                })
                .collect();
            let _ = references(&junk);
        }
    }

    #[test]
    fn resolution() {
        let cases = [
            ("/index.html", "style.css", Some("/style.css")),
            ("/docs/a.html", "img/x.png", Some("/docs/img/x.png")),
            ("/docs/a.html", "../style.css", Some("/style.css")),
            ("/docs/a.html", "../../../../style.css", Some("/style.css")),
            ("/docs/a.html", "/js/app.js?v=3#top", Some("/js/app.js")),
            ("/docs/a.html", "./a%20b.png", Some("/docs/a b.png")),
            ("/docs/a.html", "https://example.com/x.png", None),
            ("/docs/a.html", "//cdn.example.com/x.png", None),
            ("/docs/a.html", "data:image/png;base64,AA", None),
            ("/docs/a.html", "#top", None),
            ("/docs/a.html", "%zz", None),
            ("/docs/a.html", "..", None),
            ("/docs/a.html", "x/y:z.png", Some("/docs/x/y:z.png")),
        ];
        for (page, r, want) in cases {
            assert_eq!(resolve(page, r).as_deref(), want, "{page} {r}");
        }
    }
}
