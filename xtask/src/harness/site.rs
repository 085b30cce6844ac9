//! `cargo xtask site DIR [--out FILE]`: builds the Cheetah image of a
//! document root (`fs/builder`) and prints what it stored.
//!
//! Last-Modified is each file's modification time, or `SOURCE_DATE_EPOCH`
//! for every file when that is set (reproducible images).

use anyhow::{bail, Context, Result};
use fs_builder::{Options, Placement, Report};
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
