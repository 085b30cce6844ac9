//! Which URL paths an image may hold.
//!
//! A stored path is what a request's path becomes after percent-decoding and
//! dot-segment removal, so the server looks it up byte for byte. The rules
//! keep every stored path servable and unambiguous:
//!
//! - it starts with `/`, has at most [`MAX_PATH_LEN`] bytes and is UTF-8;
//! - its components (between `/`) are not empty, `.` or `..`, so it has no
//!   `//` and no trailing `/` (directories are not stored, see
//!   [`crate::Image::is_directory`]);
//! - it has no control character (C0, DEL, C1), no `?` or `#` (they end the
//!   path part of a URL, so such a name could never be requested) and no
//!   `\` (some clients turn it into `/`).

/// The longest stored path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Why a path cannot be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathFault {
    /// Not valid UTF-8.
    NotUtf8,
    /// Does not start with `/`.
    NotAbsolute,
    /// Longer than [`MAX_PATH_LEN`] bytes.
    TooLong,
    /// An empty component (`//` or a trailing `/`).
    EmptyComponent,
    /// A `.` or `..` component.
    DotComponent,
    /// A control character (U+0000..U+001F, U+007F..U+009F).
    ControlCharacter,
    /// `?` or `#`, which end the path part of a URL.
    QueryOrFragment,
    /// `\`, which some clients treat as `/`.
    Backslash,
}

impl core::fmt::Display for PathFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PathFault::NotUtf8 => "name is not valid UTF-8",
            PathFault::NotAbsolute => "path does not start with /",
            PathFault::TooLong => "path is longer than 1024 bytes",
            PathFault::EmptyComponent => "path has an empty component",
            PathFault::DotComponent => "path has a . or .. component",
            PathFault::ControlCharacter => "name contains a control character",
            PathFault::QueryOrFragment => "name contains ? or #, which end a URL's path",
            PathFault::Backslash => "name contains \\, which some clients read as /",
        })
    }
}

/// Checks one name (a path component) by the rules above.
pub fn check_name(name: &str) -> Result<(), PathFault> {
    if name.is_empty() {
        return Err(PathFault::EmptyComponent);
    }
    if name == "." || name == ".." {
        return Err(PathFault::DotComponent);
    }
    for c in name.chars() {
        match c {
            '/' => return Err(PathFault::EmptyComponent),
            '?' | '#' => return Err(PathFault::QueryOrFragment),
            '\\' => return Err(PathFault::Backslash),
            c if c.is_control() => return Err(PathFault::ControlCharacter),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a whole stored path by the rules above.
pub fn check_path(path: &[u8]) -> Result<&str, PathFault> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathFault::TooLong);
    }
    let path = core::str::from_utf8(path).map_err(|_| PathFault::NotUtf8)?;
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathFault::NotAbsolute);
    };
    for name in rest.split('/') {
        check_name(name)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths() {
        for p in ["/index.html", "/img/a b.png", "/é/ü.txt", "/a%20b", "/.well-known/x", "/a..b"] {
            assert_eq!(check_path(p.as_bytes()), Ok(p), "{p}");
        }
    }

    #[test]
    fn bad_paths() {
        let cases: &[(&[u8], PathFault)] = &[
            (b"index.html", PathFault::NotAbsolute),
            (b"", PathFault::NotAbsolute),
            (b"/", PathFault::EmptyComponent),
            (b"/a//b", PathFault::EmptyComponent),
            (b"/a/", PathFault::EmptyComponent),
            (b"/a/../b", PathFault::DotComponent),
            (b"/./b", PathFault::DotComponent),
            (b"/a\nb", PathFault::ControlCharacter),
            (b"/a\x7fb", PathFault::ControlCharacter),
            ("/a\u{85}b".as_bytes(), PathFault::ControlCharacter),
            (b"/a?b", PathFault::QueryOrFragment),
            (b"/a#b", PathFault::QueryOrFragment),
            (b"/a\\b", PathFault::Backslash),
            (b"/a\xffb", PathFault::NotUtf8),
        ];
        for (p, fault) in cases {
            assert_eq!(check_path(p), Err(*fault), "{p:?}");
        }
        let mut long = [b'a'; MAX_PATH_LEN + 1];
        long[0] = b'/';
        assert_eq!(check_path(&long), Err(PathFault::TooLong));
        assert!(check_path(&long[..MAX_PATH_LEN]).is_ok());
    }
}
