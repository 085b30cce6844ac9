//! Pathname arguments (RFC 959 §3.2, §5.3.2 `<pathname>`) resolved to
//! paths of the site.
//!
//! RFC 959 leaves pathnames to the server ("the syntax of pathnames ...
//! should be based on the server's file system", §3.2) and has no notion of
//! a root. Here the site is the whole file system, and a pathname is
//! resolved as a Unix path against the site's `/` (RFC 3659 §6, TVFS,
//! which FEAT announces):
//!
//! 1. An argument starting with `/` is absolute; any other is relative to
//!    the current directory.
//! 2. It is split at `/`; empty components (`//`, a trailing `/`) and `.`
//!    vanish; `..` removes the previous component, and at the root stays
//!    at the root. The result therefore **cannot leave the root**: `CWD
//!    ../../..` from `/a` is `/`, `RETR /../etc/passwd` looks up
//!    `/etc/passwd` of the *site*.
//! 3. Nothing is decoded: `%2e%2e` is a name of six bytes, `\` is a byte of
//!    a name, `~` is not a home directory. (A site path can hold none of
//!    `\` or control bytes, `fs_format::path`, so such names are simply not
//!    found.) NUL and the other control bytes never get here: the command
//!    parser refuses them (501).
//! 4. The result is at most `fs_format::path::MAX_PATH_LEN` (1024) bytes,
//!    else it is refused ([`TooLong`], answered 550 like a missing file:
//!    no stored path is longer).
//!
//! The result is `/` or a path that `fs_format::path::check_path` would
//! accept if its names are UTF-8 and free of the bytes that rule refuses;
//! the tests check that property on random input.

use fs_format::path::MAX_PATH_LEN;

/// A resolved path would be longer than [`MAX_PATH_LEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

/// A normalised absolute path of the site in a fixed buffer
/// ([`MAX_PATH_LEN`] bytes): `/`, or `/` and names joined by `/`, none
/// empty, `.` or `..`, no trailing `/`.
#[derive(Clone)]
pub struct SitePath {
    buf: [u8; MAX_PATH_LEN],
    len: usize,
}

impl core::fmt::Debug for SitePath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SitePath({:?})", self.as_str_lossy())
    }
}

impl PartialEq for SitePath {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SitePath {}

impl Default for SitePath {
    fn default() -> Self {
        SitePath::root()
    }
}

impl SitePath {
    /// `/`.
    pub const fn root() -> SitePath {
        let mut buf = [0; MAX_PATH_LEN];
        buf[0] = b'/';
        SitePath { buf, len: 1 }
    }

    /// The path's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The path as text; a path that is not UTF-8 (it can then name
    /// nothing stored) shows as `?`.
    pub fn as_str_lossy(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.len == 1
    }

    /// The last name (empty for `/`).
    pub fn name(&self) -> &[u8] {
        let b = self.as_bytes();
        let slash = b.iter().rposition(|&c| c == b'/').unwrap_or(0);
        &b[slash + 1..]
    }

    /// Resolves `arg` against `self` (the current directory); see the
    /// module docs.
    pub fn resolve(&self, arg: &[u8]) -> Result<SitePath, TooLong> {
        let mut out = if arg.first() == Some(&b'/') { SitePath::root() } else { self.clone() };
        for name in arg.split(|&b| b == b'/') {
            match name {
                b"" | b"." => {}
                b".." => out.pop(),
                name => out.push(name)?,
            }
        }
        Ok(out)
    }

    /// The parent directory (`/` stays `/`).
    pub fn parent(&self) -> SitePath {
        let mut p = self.clone();
        p.pop();
        p
    }

    fn pop(&mut self) {
        let slash = self.as_bytes().iter().rposition(|&c| c == b'/').unwrap_or(0);
        self.len = slash.max(1);
    }

    fn push(&mut self, name: &[u8]) -> Result<(), TooLong> {
        let sep = usize::from(!self.is_root());
        let new_len = self.len + sep + name.len();
        if new_len > MAX_PATH_LEN {
            return Err(TooLong);
        }
        if sep == 1 {
            self.buf[self.len] = b'/';
        }
        self.buf[self.len + sep..new_len].copy_from_slice(name);
        self.len = new_len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;

    fn at(cwd: &str, arg: &str) -> SitePath {
        SitePath::root().resolve(cwd.as_bytes()).unwrap().resolve(arg.as_bytes()).unwrap()
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(at("/a", "../../..").as_bytes(), b"/");
        assert_eq!(at("/", "/../etc/passwd").as_bytes(), b"/etc/passwd");
        assert_eq!(at("/a/b", "..").as_bytes(), b"/a");
        assert_eq!(at("/a/b", "../c/./d/").as_bytes(), b"/a/c/d");
        assert_eq!(at("/a", "x/../../../y").as_bytes(), b"/y");
    }

    #[test]
    fn nothing_is_decoded() {
        assert_eq!(at("/a", "%2e%2e").as_bytes(), b"/a/%2e%2e");
        assert_eq!(at("/a", "..\\..").as_bytes(), b"/a/..\\..");
        assert_eq!(at("/", "~").as_bytes(), b"/~");
    }

    #[test]
    fn empty_components_vanish() {
        assert_eq!(at("/", "//a///b/").as_bytes(), b"/a/b");
        assert_eq!(at("/a", "").as_bytes(), b"/a");
        assert_eq!(at("/a", "/").as_bytes(), b"/");
    }

    #[test]
    fn too_long_is_refused() {
        let long = "x".repeat(MAX_PATH_LEN);
        assert_eq!(SitePath::root().resolve(long.as_bytes()), Err(TooLong));
        let fits = "x".repeat(MAX_PATH_LEN - 1);
        assert_eq!(SitePath::root().resolve(fits.as_bytes()).unwrap().as_bytes().len(), MAX_PATH_LEN);
    }

    #[test]
    fn random_arguments_resolve_to_normal_paths() {
        // Property: whatever the argument, the result starts with `/`, has
        // no empty, `.` or `..` component, and (if its bytes are allowed
        // in names) passes fs_format's check.
        let mut rng = Rng(0x9a7f);
        let pieces: [&[u8]; 8] = [b"/", b"..", b".", b"a", b"%2e", b"\xc3\xa9", b"//", b"b.c"];
        for _ in 0..5000 {
            let mut cwd = SitePath::root();
            for _ in 0..rng.below(4) {
                let mut arg = std::vec::Vec::new();
                for _ in 0..rng.below(12) {
                    arg.extend_from_slice(pieces[rng.below(pieces.len())]);
                }
                cwd = cwd.resolve(&arg).unwrap();
                let b = cwd.as_bytes();
                assert!(b.starts_with(b"/"));
                if !cwd.is_root() {
                    assert_eq!(fs_format::path::check_path(b).map(str::len), Ok(b.len()), "{cwd:?}");
                }
            }
        }
    }
}
