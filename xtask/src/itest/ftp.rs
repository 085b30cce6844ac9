//! The FTP server of the deployed node (`microkit.system`: the network
//! node, the virtio-blk driver, the file cache, httpd and the FTP server
//! PD `ftpd`, both serving the generated site image, [`super::web_site`];
//! release kernel, the serial PD's console), judged from
//! outside with real clients in a network namespace on a TAP device, as
//! the web tests do ([`super::web`]): `curl` (listings and downloads over
//! FTP, and over HTTP beside it), `lftp` (a mirror of the whole site) and
//! Python's `ftplib` ([`CHECK`], `ftp_check.py`: every command ftpd
//! documents in `ftpd/core/src/session.rs`, and the attacks of its
//! `--hostile` mode). Needs root.
//!
//! ftpd: anonymous, read-only, passive only, on [`NODE_IP`]; its control
//! port and passive range are read from the description's claims
//! (`harness::system::served`), as ftpd reads them.
//!
//! `ftp_check.py` passes, unchanged (strict), against a host driver of
//! ftpd-core's `Session` on loopback, and with `--lenient` against vsftpd
//! 3.0.3 and pyftpdlib 1.5.7 (its header lists the replies that differ).

use super::node::{no_faults, run, Netns, NODE_IP, TAP, TOOLS};
use super::web::{generated_site, no_error_lines, Site, CURL, SERVING as HTTP_SERVING};
use super::web_site::{self, SiteFile};
use super::{build, Test, LINE_TIMEOUT};
use crate::harness::deps::{self, Package};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::Session;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub fn tests() -> Vec<Test> {
    vec![
        ("ftp: curl lists the root and a directory (LIST, NLST) as the site has them and downloads a sample of files, the empty and the 10 MB one among them, byte for byte", curl_listing_and_files),
        ("ftp: lftp mirrors the whole site (1,023 files, 0 B to 10 MB): the tree equals the site byte for byte", lftp_mirror),
        ("ftp: Python's ftplib exercises every command ftpd documents (ftp_check.py): replies, listings, SIZE, MDTM, TYPE A, REST, ABOR, refusals", ftplib_checks),
        ("ftp: the 10 MB file over HTTP and over FTP at once: both byte for byte", http_and_ftp_at_once),
        ("ftp: hostile clients (overlong lines, commands out of order, PASV floods, a data connection from another address, sessions beyond the limit) are refused and a fresh session is served after each; HTTP and FTP still serve", hostile_clients),
    ]
}

/// The system: the deployed node, ftpd beside httpd.
const SYSTEM: &str = "microkit.system";
/// The kernel [`SYSTEM`] boots: the deployment's (the serial PD prints
/// every PD's log).
const CONFIG: KernelConfig = KernelConfig::Release;
/// ftpd's line once it listens.
const SERVING: &str = "[ftpd] serving ftp://";
/// ftpd's control port and passive range, from [`SYSTEM`]'s claims.
fn ports(ws: &Path) -> Result<(u16, u16, u16)> {
    crate::harness::system::served(&ws.join(SYSTEM))?.ftp.context("no ftpd with a control port and a passive range")
}
/// Another address of the namespace, for a data connection from elsewhere.
const SECOND: &str = "10.0.2.3";
/// The ftplib checks: `ftp_check.py HOST PORT SITE_DIR [--hostile ...]`.
const CHECK: &str = include_str!("ftp_check.py");
/// How long one run of the checks may take before it counts as a hang.
const CHECK_TIMEOUT_S: u64 = 1200;

const LFTP: Package = Package { name: "lftp", probe: "lftp" };
/// The clients (besides [`TOOLS`], the namespace's own).
const CLIENTS: &[Package] = &[CURL, LFTP, Package { name: "python3", probe: "/usr/bin/python3" }];

/// The generated site's files on the host (what [`generated_site`] wrote).
fn site_root(ws: &Path) -> PathBuf {
    ws.join("target").join("web-test").join("site")
}

/// Boots the FTP system with the site image in a fresh namespace, waits
/// until ftpd and httpd serve, runs `check`; whatever it did, no PD may
/// have faulted or logged an error.
fn with_ftp(ws: &Path, check: impl FnOnce(&Netns, &mut Session, &Site) -> Result<()>) -> Result<()> {
    with_ftp_line(ws, |ns, s, site, _| check(ns, s, site))
}

/// [`with_ftp`], `check` also given ftpd's serving line.
fn with_ftp_line(ws: &Path, check: impl FnOnce(&Netns, &mut Session, &Site, &str) -> Result<()>) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    deps::ensure_packages(CLIENTS)?;
    let site = generated_site(ws)?;
    let built = build(ws, SYSTEM, CONFIG)?;
    let ns = Netns::new()?;
    let mut s = ns.boot_with(&built, &crate::harness::site::drive(&built, &site.image)?)?;
    let result = s
        .seen_or_expect(SERVING, LINE_TIMEOUT)
        .inspect(|line| println!("   {line}"))
        .and_then(|line| s.seen_or_expect(HTTP_SERVING, LINE_TIMEOUT).map(|_| line))
        .and_then(|line| check(&ns, &mut s, &site, &line))
        .and_then(|()| {
            s.drain(Duration::from_millis(300), Duration::from_secs(2));
            no_faults(&s)
        })
        .and_then(|()| no_error_lines(&s));
    if result.is_err() {
        s.print_transcript();
    }
    drop(s);
    drop(ns);
    result
}

/// `curl` in the namespace with `args`; its stdout.
fn curl(ns: &Netns, args: &[&str]) -> Result<String> {
    run(ns.command("curl").args(["-sS", "-m", "300"]).args(args))
}

/// The URL of `path` (`/a/b`) on ftpd.
fn ftp_url(path: &str) -> String {
    format!("ftp://{NODE_IP}{path}")
}

/// Names in the site directory `dir` (relative to the root), sorted.
fn site_names(root: &Path, dir: &str) -> Result<Vec<String>> {
    let path = root.join(dir.trim_start_matches('/'));
    let mut names = std::fs::read_dir(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// The names of an `ls -l` listing (the ninth field on: a name may hold
/// spaces), sorted.
fn listed_names(listing: &str) -> Vec<String> {
    let mut names: Vec<String> = listing
        .lines()
        .filter_map(|l| {
            let mut rest = l.trim_end_matches('\r');
            for _ in 0..8 {
                rest = rest.trim_start().split_once(' ')?.1;
            }
            Some(rest.trim_start().to_string())
        })
        .collect();
    names.sort();
    names
}

/// Checks that `got` holds the bytes of `file`.
fn same_as(file: &SiteFile, got: &[u8], how: &str) -> Result<()> {
    let want = std::fs::read(&file.path)?;
    ensure!(got.len() == want.len(), "{how} {}: {} bytes, the file has {}", file.url, got.len(), want.len());
    if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
        bail!("{how} {}: differs from the file at byte {at}", file.url);
    }
    Ok(())
}

/// A sample of the site: the empty file, the 10 MB one, every 40th other.
fn sample(files: &[SiteFile]) -> Vec<&SiteFile> {
    let mut sample: Vec<&SiteFile> = files.iter().step_by(40).collect();
    for f in files {
        if (f.len == 0 || f.len == web_site::LARGE) && !sample.iter().any(|s| s.url == f.url) {
            sample.push(f);
        }
    }
    sample
}

/// (a) curl: LIST of the root and of a directory, NLST (`-l`), and a
/// sample of files, each by its own curl (a new session each: curl's
/// commands for one file, USER PASS PWD CWD.. EPSV TYPE SIZE RETR, stay
/// well within ftpd's rate limit).
fn curl_listing_and_files(ws: &Path) -> Result<()> {
    with_ftp(ws, |ns, _s, site| {
        let root = site_root(ws);
        for dir in ["/", "/d07/", "/d07/s1/"] {
            let listing = curl(ns, &[&ftp_url(dir)])?;
            let names = listed_names(&listing);
            let want = site_names(&root, dir)?;
            ensure!(names == want, "curl {dir} (LIST): names {names:?}, the site has {want:?}\n{listing}");
            let mut nlst: Vec<String> = curl(ns, &["-l", &ftp_url(dir)])?.lines().map(|l| l.to_string()).collect();
            nlst.sort();
            ensure!(nlst == want, "curl -l {dir} (NLST): {nlst:?}, the site has {want:?}");
            println!("   {dir}: LIST and NLST give its {} names", want.len());
        }
        let out = std::env::temp_dir().join(format!("{}-ftp-curl.bin", std::process::id()));
        let files = sample(&site.files);
        let started = Instant::now();
        let mut bytes = 0;
        for file in &files {
            let _ = std::fs::remove_file(&out);
            curl(ns, &["-o", &out.to_string_lossy(), &ftp_url(&file.url)])?;
            // (curl may create no file for an empty body.)
            let got = match std::fs::read(&out) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.len == 0 => Vec::new(),
                got => got.with_context(|| format!("curl wrote nothing for {}", file.url))?,
            };
            same_as(file, &got, "curl")?;
            bytes += got.len();
        }
        let _ = std::fs::remove_file(&out);
        println!(
            "   {} files ({bytes} bytes, the empty and the 10 MB one among them) equal to the site, in {:.1} s",
            files.len(),
            started.elapsed().as_secs_f64()
        );
        // A missing file: curl's "file not found" (78, from the 550).
        let status = ns
            .command("curl")
            .args(["-sS", "-m", "60", "-o", "/dev/null", &ftp_url("/no-such-file")])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        ensure!(status.code() == Some(78), "curl of a missing file: {status}, expected 78 (RETR 550)");
        println!("   a missing file: curl exit 78 (550)");
        Ok(())
    })
}

/// Every file under `dir` by its path relative to it.
fn tree(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    Ok(crate::harness::site::files(dir)?.into_iter().collect())
}

/// (b) lftp mirrors the site; the copy must equal it. lftp retries
/// nothing (`net:max-retries 1`): a session the server closes (its rate
/// limit, a timeout) fails the test instead of being papered over.
///
/// lftp sends commands as fast as the replies come: FEAT, OPTS, MLSD of
/// each directory, then `MDTM dir` for each directory entry (MLSD gives
/// directories no `modify` fact; 550 each), then PASV and RETR per file:
/// about 2,500 commands for the site, 2,500 a second on loopback. With the
/// rate limit `ftpd/core/src/session.rs` documents (20 a second, bursts of
/// 40, then 421 and close) lftp is closed dozens of times: on a host
/// driver of ftpd-core over loopback, 48 times in one mirror, which then
/// failed after 4 min 18 s with 991 of the 1,023 files. With the limit
/// lifted the same mirror was complete and equal to the site.
fn lftp_mirror(ws: &Path) -> Result<()> {
    with_ftp(ws, |ns, _s, _site| {
        let dir = std::env::temp_dir().join(format!("{}-ftp-mirror", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script = format!(
            "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 60; set xfer:log no; \
             mirror --verbose=1 / {}; quit",
            dir.display()
        );
        let started = Instant::now();
        let out = ns
            .command("timeout")
            .args(["900", "lftp", "-e", &script, &ftp_url("")])
            .stdin(Stdio::null())
            .output()
            .context("running lftp")?;
        let took = started.elapsed();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        ensure!(out.status.success(), "lftp mirror failed ({}) after {took:?}:\n{said}", out.status);
        let want = tree(&site_root(ws))?;
        let got = tree(&dir)?;
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        ensure!(missing.is_empty() && extra.is_empty(), "the mirror lacks {missing:?} and has more: {extra:?}");
        let mut bytes = 0;
        for (url, path) in &want {
            let (a, b) = (std::fs::read(path)?, std::fs::read(&got[url])?);
            ensure!(a == b, "{url}: the mirror's copy ({} bytes) differs from the site's ({} bytes)", b.len(), a.len());
            bytes += a.len();
        }
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "   lftp mirrored {} files, {bytes} bytes, in {:.1} s: equal to the site",
            want.len(),
            took.as_secs_f64()
        );
        Ok(())
    })
}

/// Runs `ftp_check.py` in the namespace with `args` after the address,
/// port and site; prints its lines; fails with its failure.
fn run_check(ns: &Netns, ws: &Path, args: &[&str]) -> Result<()> {
    let root = site_root(ws);
    // Last-Modified is the files' mtime unless SOURCE_DATE_EPOCH overrides
    // it for the whole image (`harness::site::build`).
    let mtime = if std::env::var_os("SOURCE_DATE_EPOCH").is_some() { "any" } else { "local" };
    let (port, first, last) = ports(ws)?;
    let out = ns
        .command("timeout")
        .args([&CHECK_TIMEOUT_S.to_string(), "/usr/bin/python3", "-c", CHECK, NODE_IP, &port.to_string()])
        .arg(&root)
        .args(["--mtime", mtime, "--pasv-min", &first.to_string(), "--pasv-max", &last.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ftp_check.py")?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        println!("   {line}");
    }
    if !out.status.success() {
        let failure = text.lines().find(|l| l.starts_with("FAIL")).unwrap_or("no FAIL line");
        bail!(
            "ftp_check.py {} exited with {}: {failure}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// (c) The ftplib checks, normal mode.
fn ftplib_checks(ws: &Path) -> Result<()> {
    with_ftp(ws, |ns, _s, _site| run_check(ns, ws, &[]))
}

/// (d) The 10 MB file by HTTP and by FTP at the same time.
fn http_and_ftp_at_once(ws: &Path) -> Result<()> {
    with_ftp(ws, |ns, _s, site| {
        let large = site.files.iter().find(|f| f.len == web_site::LARGE).context("no large file")?;
        let dir = std::env::temp_dir().join(format!("{}-ftp-both", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (http_out, ftp_out) = (dir.join("http.bin"), dir.join("ftp.bin"));
        let spawn = |out: &Path, url: &str| -> Result<std::process::Child> {
            ns.command("curl")
                .args(["-sS", "-m", "600", "-w", "%{time_total}", "-o"])
                .arg(out)
                .arg(url)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting curl")
        };
        let http = spawn(&http_out, &format!("http://{NODE_IP}{}", large.url))?;
        let ftp = spawn(&ftp_out, &ftp_url(&large.url))?;
        let mut times = Vec::new();
        for (what, child) in [("HTTP", http), ("FTP", ftp)] {
            let out = child.wait_with_output()?;
            ensure!(out.status.success(), "{what} download failed: {}", String::from_utf8_lossy(&out.stderr));
            times.push(format!("{what} {} s", String::from_utf8_lossy(&out.stdout).trim()));
        }
        same_as(large, &std::fs::read(&http_out)?, "HTTP")?;
        same_as(large, &std::fs::read(&ftp_out)?, "FTP")?;
        let _ = std::fs::remove_dir_all(&dir);
        println!("   {} ({} bytes) at once: {}; both equal to the site", large.url, large.len, times.join(", "));
        Ok(())
    })
}

/// ftpd's session limit from its serving line (`..., passive ports
/// 50000-50031, 64 sessions, ...`).
fn sessions(serving: &str) -> Option<usize> {
    let (before, _) = serving.split_once(" sessions")?;
    before.rsplit([' ', ',']).next()?.parse().ok()
}

/// (e) The hostile checks (from [`SECOND`] too; as many sessions as ftpd
/// says it holds, then 8 more, which must be refused with 421), then HTTP
/// and FTP still serve.
fn hostile_clients(ws: &Path) -> Result<()> {
    with_ftp_line(ws, |ns, _s, site, serving| {
        run(ns.command("ip").args(["addr", "add", &format!("{SECOND}/24"), "dev", TAP]))?;
        let max = sessions(serving).with_context(|| format!("no session count in {serving:?}"))?.to_string();
        run_check(ns, ws, &["--hostile", "--second", SECOND, "--max-sessions", &max])?;
        // Both servers still serve: a page and a mid-sized file by each.
        let mid = site.files.iter().filter(|f| f.len > 100_000 && f.len < 400_000).nth(3).context("no mid file")?;
        let out = std::env::temp_dir().join(format!("{}-ftp-after.bin", std::process::id()));
        for url in [format!("http://{NODE_IP}{}", mid.url), ftp_url(&mid.url)] {
            let _ = std::fs::remove_file(&out);
            curl(ns, &["-o", &out.to_string_lossy(), &url])?;
            same_as(mid, &std::fs::read(&out)?, &url)?;
        }
        let _ = std::fs::remove_file(&out);
        let listing = curl(ns, &[&ftp_url("/")])?;
        ensure!(listed_names(&listing) == site_names(&site_root(ws), "/")?, "LIST / after the attacks: {listing}");
        println!("   after the attacks: {} by HTTP and by FTP intact, LIST / whole", mid.url);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_names_keep_spaces() {
        let listing = "-r--r--r--    1 ftp      ftp              12 Dec 07 18:10 a b.txt\r\n\
                       dr-xr-xr-x    2 ftp      ftp               0 Jan  1  2020 d00\r\n";
        assert_eq!(listed_names(listing), ["a b.txt", "d00"]);
    }

    #[test]
    fn the_session_limit_is_read_from_the_serving_line() {
        let line = "[ftpd] serving ftp://10.0.2.15:21/ (site image, anonymous, read-only): passive ports \
                    50000-50031, 64 sessions, segmentation offload off";
        assert_eq!(sessions(line), Some(64));
        assert_eq!(sessions("[ftpd] serving ftp://10.0.2.15:21/"), None);
    }
}
