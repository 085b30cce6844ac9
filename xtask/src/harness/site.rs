//! `cargo xtask site DIR [--out FILE]`: builds the Cheetah image of a
//! document root (`fs/builder`) and prints what it stored.
//!
//! Last-Modified is each file's modification time, or `SOURCE_DATE_EPOCH`
//! for every file when that is set (reproducible images).

use crate::harness::qemu;
use crate::harness::system::Built;
use anyhow::{bail, Context, Result};
use fs_builder::{Options, Placement, Report};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where the image goes without `--out`.
pub fn default_image(workspace: &Path) -> PathBuf {
    workspace.join("target").join("site").join("site.img")
}

pub fn run(workspace: &Path, args: &[String], usage: &str) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let mut dir = None;
    let mut out = default_image(workspace);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => out = cwd.join(it.next().with_context(|| format!("--out needs a value\n\n{usage}"))?),
            other if other.starts_with("--") => bail!("unknown option {other:?}\n\n{usage}"),
            other if dir.is_none() => dir = Some(cwd.join(other)),
            other => bail!("one directory only (got {other:?} too)\n\n{usage}"),
        }
    }
    let Some(dir) = dir else { bail!("site needs the directory to build from\n\n{usage}") };
    let report = build(&dir, &out)?;
    print_report(&report);
    Ok(())
}

/// Every file under the document root `dir`: its URL path (`/a/b.html`)
/// and where it is, in path order.
pub fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(dir)?.to_string_lossy().into_owned();
                files.push((format!("/{rel}"), path));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Builds the image of `dir` into `out`.
pub fn build(dir: &Path, out: &Path) -> Result<Report> {
    let mut options = Options::default();
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        options.last_modified = Some(epoch.trim().parse().context("SOURCE_DATE_EPOCH must be seconds since 1970")?);
    }
    fs_builder::build(dir, out, &options).with_context(|| format!("building the site image of {}", dir.display()))
}

pub fn print_report(report: &Report) {
    let width = report.files.iter().map(|f| f.path.len()).max().unwrap_or(4).max(4);
    println!("{:<width$} {:>10}  {:<32} {:>8} {:>6}  placement", "path", "bytes", "content type", "first", "blocks");
    let mut bytes = 0;
    let mut pages = 0;
    for f in &report.files {
        let placement = match &f.placement {
            Placement::Page { span_blocks } => {
                pages += 1;
                format!("page, span of {span_blocks} block{}", if *span_blocks == 1 { "" } else { "s" })
            }
            Placement::InlinedIn(page) => format!("after {page}"),
            Placement::Alone => String::new(),
        };
        println!(
            "{:<width$} {:>10}  {:<32} {:>8} {:>6}  {placement}",
            f.path, f.size, f.content_type, f.first_block, f.blocks
        );
        bytes += f.size;
    }
    let image_bytes = u64::from(report.block_count) * fs_format::BLOCK_SIZE as u64;
    println!(
        "{} files ({} pages), {} bytes of data; index {} bytes; {} blocks of 4096 ({:.1} MiB)",
        report.files.len(),
        pages,
        bytes,
        report.index_len,
        report.block_count,
        image_bytes as f64 / (1 << 20) as f64
    );
    if !report.skipped.is_empty() {
        println!("skipped (hidden): {}", report.skipped.join(", "));
    }
    println!("image: {}", report.image.display());
}

/// The block client's window a description gives its block driver
/// (`<setvar symbol="client_sectors" sectors="FIRST-LAST"/>` in the PD
/// running `virtio-blk`), as `first..=last`; `None` if it has no block
/// driver.
pub fn disk_window(system: &Path) -> Result<Option<(u64, u64)>> {
    let sys = tools_sdf::parse_file(system).map_err(|e| anyhow::anyhow!("{e}"))?;
    let window = sys
        .all_pds()
        .into_iter()
        .filter(|pd| pd.program_image.file_name().is_some_and(|f| f == "virtio-blk"))
        .flat_map(|pd| &pd.setvars)
        .find_map(|s| match s.value {
            tools_sdf::SetVarValue::Sectors { first, last } => Some((first, last)),
            _ => None,
        });
    Ok(window)
}

/// Checks that the site image `image` fits the disk window `system`
/// gives the web server: the file cache reads the image from the
/// window's first sector on (its superblock there), so the window must
/// hold every sector of the image, or the server could not read its end.
pub fn check_fits_window(system: &Path, image: &Path) -> Result<()> {
    let Some((first, last)) = disk_window(system)? else { return Ok(()) };
    let len = std::fs::metadata(image).with_context(|| format!("reading {}", image.display()))?.len();
    let sectors = len.div_ceil(lib_blk_protocol::SECTOR_SIZE as u64);
    anyhow::ensure!(
        sectors <= last - first + 1,
        "the site image {} ({len} bytes, {sectors} sectors) does not fit the web server's window of the disk in {} \
         (sectors {first:#x}-{last:#x}, {} sectors): widen client_sectors there",
        image.display(),
        system.display(),
        last - first + 1
    );
    Ok(())
}

/// The disk `system` expects its site image on: `image` itself when the
/// description's window starts at sector 0 (or it has no block driver);
/// otherwise a copy of `image` placed at the window's first sector (the
/// site partition of the deployed layout, `harness::image`), in a sparse
/// file beside it (`NAME.at-FIRST.disk`), rewritten each time.
pub fn disk_for(system: &Path, image: &Path) -> Result<PathBuf> {
    let Some((first, _)) = disk_window(system)? else { return Ok(image.to_path_buf()) };
    if first == 0 {
        return Ok(image.to_path_buf());
    }
    let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let disk = image.with_file_name(format!("{name}.at-{first:#x}.disk"));
    let offset = first * lib_blk_protocol::SECTOR_SIZE as u64;
    let mut from = std::fs::File::open(image).with_context(|| format!("reading {}", image.display()))?;
    let mut to = std::fs::File::create(&disk).with_context(|| format!("creating {}", disk.display()))?;
    to.set_len(offset)?;
    to.seek(SeekFrom::Start(offset))?;
    std::io::copy(&mut from, &mut to).with_context(|| format!("writing {}", disk.display()))?;
    Ok(disk)
}

/// QEMU arguments attaching the site image `image` as the read-only disk
/// of `built` (virtio-blk at PCI 00:05.0, [`qemu::blk_drive`]), placed
/// where its description's window starts ([`disk_for`]).
pub fn drive(built: &Built, image: &Path) -> Result<Vec<String>> {
    Ok(qemu::blk_drive(&disk_for(&built.system, image)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_node_gives_httpd_the_site_partition() {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        // The deployed layout's site partition: 1 MiB in, 128 MiB long.
        assert_eq!(disk_window(&ws.join("microkit.system")).unwrap(), Some((0x800, 0x407ff)));
        assert_eq!(disk_window(&ws.join("tests/systems/web.system")).unwrap(), Some((0, 0x3ffff)));
        assert_eq!(disk_window(&ws.join("tests/systems/blk.system")).unwrap(), Some((0x800, 0x107ff)));
        assert_eq!(disk_window(&ws.join("tests/systems/demo.system")).unwrap(), None);
        let dir = ws.join("target/site-window-test");
        std::fs::create_dir_all(&dir).unwrap();
        let (small, large) = (dir.join("small.img"), dir.join("large.img"));
        std::fs::write(&small, vec![7u8; 4096]).unwrap();
        std::fs::File::create(&large).unwrap().set_len((0x40000 * 512) + 1).unwrap();
        check_fits_window(&ws.join("microkit.system"), &small).unwrap();
        let e = check_fits_window(&ws.join("microkit.system"), &large).unwrap_err().to_string();
        assert!(e.contains("does not fit") && e.contains("client_sectors"), "{e}");
        // The block test's window is 32 MiB long: the large image does not fit.
        check_fits_window(&ws.join("tests/systems/blk.system"), &small).unwrap();
        assert!(check_fits_window(&ws.join("tests/systems/blk.system"), &large).is_err());

        // Placed where the window starts: the image itself for a window at
        // sector 0, else a copy at the window's first sector.
        assert_eq!(disk_for(&ws.join("tests/systems/web.system"), &small).unwrap(), small);
        let disk = disk_for(&ws.join("microkit.system"), &small).unwrap();
        let bytes = std::fs::read(&disk).unwrap();
        assert_eq!(bytes.len(), 0x800 * 512 + 4096);
        assert!(bytes[..0x800 * 512].iter().all(|&b| b == 0) && bytes[0x800 * 512..].iter().all(|&b| b == 7));
    }
}
