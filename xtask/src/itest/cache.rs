//! The file cache PD (`fs/cache`) and a server's side of its protocol
//! (`tests/systems/file-cache.system`: the block driver, the cache and the
//! `cache-client` test PD), judged against the site's source directory.

use super::{boot_with_and_check, build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::{qemu, site};
use anyhow::{ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const SYSTEM: &str = "tests/systems/file-cache.system";

pub fn tests() -> Vec<Test> {
    vec![(
        "file-cache: a server reads every file of the site through the cache PD, byte for byte (SHA-256 of the source); its quota refuses a second pin of the largest file until the first is released; an unknown operation, stale and forged releases and a missing file get their answers and change nothing",
        serves_a_server,
    )]
}

/// Boots the cache between the driver and the test client with the site
/// image as its disk; the client's hash of each file, read where the cache
/// said it is, must be the source's, and its quota and hostile phases must
/// get the answers the protocol gives.
fn serves_a_server(ws: &Path) -> Result<()> {
    let root = ws.join("images/site");
    let image = site::default_image(ws);
    site::build(&root, &image)?;
    let mut expected = BTreeMap::new();
    for (path, file) in site::files(&root)? {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        expected.insert(path, format!("{} sha256 {hash}", bytes.len()));
    }
    let built = build(ws, SYSTEM, KERNEL_CONSOLE)?;
    let args = qemu::blk_drive(&image, true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    boot_with_and_check(&built, &args, |s| {
        let (line, _) = s.expect("[file-cache] site image: ", LINE_TIMEOUT)?;
        ensure!(line.contains(&format!("{} files", expected.len())), "not the site's {} files: {line}", expected.len());
        s.expect("[file-cache] server 0: quota 1536 blocks", LINE_TIMEOUT)?;
        s.expect("[cache-client] hello: answered for life 0", LINE_TIMEOUT)?;
        let (line, _) = s.expect("[cache-client] ready: ", LINE_TIMEOUT)?;
        ensure!(line.contains("life 1") && line.contains("quota 1536 blocks"), "the published Info: {line}");
        s.expect("[cache-client] files: all answered", LINE_TIMEOUT)?;
        let mut seen = BTreeMap::new();
        for line in &s.transcript {
            if let Some(rest) = line.split("[cache-client] file ").nth(1) {
                let (path, what) = rest.split_once(' ').context("a file line without its hash")?;
                ensure!(seen.insert(path.to_string(), what.to_string()).is_none(), "{path} answered twice");
            }
        }
        for (path, want) in &expected {
            let got = seen.get(path).with_context(|| format!("no answer for {path}"))?;
            ensure!(got == want, "{path}: the client read {got}, the source is {want}");
        }
        ensure!(seen.len() == expected.len(), "answers for files the site does not have: {seen:?}");
        println!("   {} files byte for byte through the cache PD", seen.len());
        let (line, _) = s.expect("[cache-client] quota: ", LINE_TIMEOUT)?;
        ensure!(
            line.contains("a second pin of it OverQuota; after the first's release, Ready"),
            "the quota was not enforced as the protocol says: {line}"
        );
        println!("   {}", line.split("] ").nth(1).unwrap_or(&line));
        let (line, _) = s.expect("[cache-client] hostile: ", LINE_TIMEOUT)?;
        ensure!(
            line.contains("unknown operation BadRequest")
                && line.contains(&format!("file {} NoSuchFile", u32::MAX))
                && line.contains("then file 0 Ready"),
            "bad requests got the wrong answers: {line}"
        );
        s.expect("[cache-client] done", LINE_TIMEOUT)?;
        ensure!(s.position("error").is_none(), "an error was logged");
        ensure!(s.position("fault").is_none(), "a PD faulted");
        Ok(())
    })
}
