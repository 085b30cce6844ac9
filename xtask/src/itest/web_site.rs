//! A generated web site for the tests: over a thousand files of many
//! types and sizes in nested directories, among them an empty file, a
//! 10 MB file, and pages that inline images, stylesheets and scripts, so
//! that the image builder lays out page groups. Deterministic: the same
//! seed gives the same bytes.

use anyhow::{Context, Result};
use lib_test_rng::Rng;
use std::fs;
use std::path::{Path, PathBuf};

/// Files the generated site holds (besides its index pages).
pub const FILES: usize = 1000;
/// The size of its largest file.
pub const LARGE: usize = 10 * 1000 * 1000;

/// A file of the site: its URL path and where it is on the host.
#[derive(Clone, Debug)]
pub struct SiteFile {
    pub url: String,
    pub path: PathBuf,
    pub len: usize,
}

/// Deterministic bytes: the same seed, the same site.
fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    rng.fill(&mut out);
    out
}

/// Writes the site into `root` (which must not exist) and lists its files.
pub fn generate(root: &Path) -> Result<Vec<SiteFile>> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut rng = Rng(0x005e_ed0f_5173);
    let mut files = Vec::new();
    let mut write = |url: String, bytes: &[u8]| -> Result<()> {
        let path = root.join(url.trim_start_matches('/'));
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(SiteFile { url, path, len: bytes.len() });
        Ok(())
    };
    const EXTENSIONS: [&str; 7] = ["txt", "css", "js", "png", "json", "bin", "svg"];
    for i in 0..FILES {
        let dir = format!("/d{:02}/s{}", i % 20, i % 3);
        let ext = EXTENSIONS[i % EXTENSIONS.len()];
        // Mostly small, some around the MSS and block sizes, a few larger.
        let len = match i % 10 {
            0 => (rng.next() % 64) as usize,
            1..=6 => (rng.next() % 8192) as usize,
            7 => 1460 * (1 + (rng.next() % 4) as usize) + (rng.next() % 3) as usize,
            8 => 4096 * (1 + (rng.next() % 3) as usize),
            _ => (rng.next() % 300_000) as usize,
        };
        let data = bytes(&mut rng, len);
        write(format!("{dir}/f{i:04}.{ext}"), &data)?;
    }
    write("/empty.txt".into(), b"")?;
    write("/large.bin".into(), &bytes(&mut rng, LARGE))?;
    // Pages that inline some of the files above, and directory indexes.
    for d in 0..20 {
        let mut page = format!("<!doctype html>\n<html><head><title>d{d:02}</title>\n");
        page += &format!("<link rel=\"stylesheet\" href=\"s{}/f{:04}.css\">\n", d % 3, d + 20 * ((1 + d) % 3));
        page += "</head><body>\n";
        for k in 0..3 {
            let i = d + 20 * k * 7 % FILES;
            page += &format!("<img src=\"/d{:02}/s{}/f{i:04}.png\" alt=\"\">\n", i % 20, i % 3);
        }
        page += "</body></html>\n";
        write(format!("/d{d:02}/index.html"), page.as_bytes())?;
    }
    write(
        "/index.html".into(),
        b"<!doctype html>\n<html><body><h1>generated</h1><a href=\"/d00/\">d00</a></body></html>\n",
    )?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_has_what_the_issue_asks_for() {
        let root = std::env::temp_dir().join(format!("web-site-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let files = generate(&root).unwrap();
        assert!(files.len() > 1000);
        assert!(files.iter().any(|f| f.len == 0));
        assert!(files.iter().any(|f| f.len == LARGE));
        for f in &files {
            assert_eq!(fs::metadata(&f.path).unwrap().len() as usize, f.len, "{}", f.url);
        }
        // Deterministic.
        let again = root.join("again");
        let second = generate(&again).unwrap();
        assert_eq!(fs::read(&files[5].path).unwrap(), fs::read(&second[5].path).unwrap());
        fs::remove_dir_all(&root).unwrap();
    }
}
