//! A writer of cpio archives in the "newc" format, the one the Linux kernel
//! unpacks as an initramfs (Documentation/driver-api/early-userspace/
//! buffer-format.rst).
//!
//! Written here rather than calling `cpio` because the archive needs entries
//! that a tool would copy from a real file system: files owned by root and a
//! `/dev/console` device node. Creating those on the host would need root;
//! describing them in the archive needs nothing. Times are zero, so the same
//! inputs give the same bytes.

/// An archive being written, entry by entry. Parents must come before their
/// children, as the kernel creates entries in order.
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// The name of the entry that ends every archive.
const TRAILER: &str = "TRAILER!!!";

/// One entry's header fields that vary; the rest are fixed (root-owned,
/// time zero, one link).
struct Entry<'a> {
    path: &'a str,
    mode: u32,
    data: &'a [u8],
    /// (major, minor) of a device node.
    rdev: (u32, u32),
}

impl Archive {
    pub fn new() -> Self {
        Archive { bytes: Vec::new(), next_inode: 1 }
    }

    /// A directory with permissions `perm` (e.g. 0o755).
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.push(Entry { path, mode: S_IFDIR | perm, data: &[], rdev: (0, 0) });
    }

    /// A regular file with permissions `perm`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.push(Entry { path, mode: S_IFREG | perm, data, rdev: (0, 0) });
    }

    /// A symbolic link to `target`; newc stores the target as the data.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.push(Entry { path, mode: S_IFLNK | 0o777, data: target.as_bytes(), rdev: (0, 0) });
    }

    /// A character device node.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.push(Entry { path, mode: S_IFCHR | perm, data: &[], rdev: (major, minor) });
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.next_inode = 0;
        self.push(Entry { path: TRAILER, mode: 0, data: &[], rdev: (0, 0) });
        self.bytes
    }

    fn push(&mut self, entry: Entry) {
        // Paths are relative to the archive's root, without a leading '/'.
        let name = entry.path.trim_start_matches('/');
        let inode = self.next_inode;
        self.next_inode += 1;
        let nlink = if entry.mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        let fields = [
            inode,
            entry.mode,
            0, // uid: root
            0, // gid: root
            nlink,
            0, // mtime
            u32::try_from(entry.data.len()).expect("initramfs entries are far below 4 GiB"),
            0, // major and minor of the device holding the file: none
            0,
            entry.rdev.0,
            entry.rdev.1,
            u32::try_from(name.len() + 1).expect("short path"), // with its NUL
            0,                                                  // checksum: unused by "newc" (as opposed to "crc")
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(entry.data);
        self.pad();
    }

    /// Name and data each end on a 4-byte boundary.
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the 13 hex fields of the header at `at`.
    fn header(bytes: &[u8], at: usize) -> Vec<u32> {
        assert_eq!(&bytes[at..at + 6], b"070701");
        (0..13)
            .map(|i| {
                let field = &bytes[at + 6 + 8 * i..at + 14 + 8 * i];
                u32::from_str_radix(std::str::from_utf8(field).unwrap(), 16).unwrap()
            })
            .collect()
    }

    #[test]
    fn file_entry_has_header_name_and_padded_data() {
        let mut archive = Archive::new();
        archive.file("/init", 0o755, b"#!/bin/sh\n");
        let bytes = archive.finish();

        let fields = header(&bytes, 0);
        assert_eq!(fields[1], 0o100755, "mode");
        assert_eq!((fields[2], fields[3]), (0, 0), "owned by root");
        assert_eq!(fields[6], 10, "file size");
        assert_eq!(fields[11], 5, "name size: \"init\" and its NUL");
        // 110-byte header + "init\0" = 115, padded to 116; the data follows.
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        // Data padded to 128, where the trailer starts.
        let trailer = header(&bytes, 128);
        assert_eq!(trailer[11] as usize, TRAILER.len() + 1);
        assert_eq!(&bytes[238..248], TRAILER.as_bytes());
        assert!(bytes.len().is_multiple_of(4));
    }

    #[test]
    fn device_nodes_carry_their_numbers_and_links_their_target() {
        let mut archive = Archive::new();
        archive.char_device("dev/console", 0o600, 5, 1);
        archive.symlink("bin/sh", "busybox");
        let bytes = archive.finish();

        let console = header(&bytes, 0);
        assert_eq!(console[1], 0o020600);
        assert_eq!((console[9], console[10]), (5, 1));
        // 110 + "dev/console\0" = 122, padded to 124; no data.
        let link = header(&bytes, 124);
        assert_eq!(link[1], 0o120777);
        assert_eq!(link[6], 7);
        assert_eq!(&bytes[124 + 110..124 + 117], b"bin/sh\0");
        assert_eq!(&bytes[124 + 120..124 + 127], b"busybox");
    }

    #[test]
    fn inodes_are_distinct() {
        let mut archive = Archive::new();
        archive.dir("bin", 0o755);
        archive.dir("dev", 0o755);
        let bytes = archive.finish();
        assert_eq!(header(&bytes, 0)[0], 1);
        assert_eq!(header(&bytes, 116)[0], 2);
    }
}
