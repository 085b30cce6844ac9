//! The web node (`tests/systems/web.system`: the network node, the
//! virtio-blk driver and the HTTP server PD `httpd` serving a site image
//! through its file cache), judged from outside with `curl`, the test
//! HTTP client ([`super::http_client`], from threads moved into the
//! namespace) and small Python clients, in a network namespace on a TAP
//! device as the node tests do ([`super::node`]). The disk is the image of
//! the generated site ([`super::web_site`]: 1,003 files, 0 B to 10 MB,
//! about 30 MiB, more than the description's 24 MiB cache). Needs root.

use super::http_client::Client;
use super::node::{no_faults, run, Netns, NODE_IP, TAP, TOOLS};
use super::web_http::{wrk_command, WrkRun};
use super::web_site::{self, SiteFile};
use super::{build, Test, KERNEL_CONSOLE, LINE_TIMEOUT};
use crate::harness::deps::{self, Package};
use crate::harness::qemu::Session;
use crate::harness::site;
use crate::harness::system::Built;
use anyhow::{bail, ensure, Context, Result};
use fs_format::Image;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

/// The test `$f` on both variants of httpd, named after them: variant 0 is
/// the Cheetah server (`httpd`, the default), 1 the smoltcp one
/// (`httpd-smoltcp`).
macro_rules! both {
    ($name:literal, $f:ident) => {
        [
            (concat!("web [Cheetah]: ", $name), $f::<0> as fn(&Path) -> Result<()>),
            (concat!("web [smoltcp]: ", $name), $f::<1>),
        ]
    };
}
pub(crate) use both;

pub fn tests() -> Vec<Test> {
    let mut tests = Vec::new();
    tests.extend(both!("every file of a generated 1,003-file site (0 B to 10 MB, larger than the cache) is served byte for byte on parallel keep-alive connections; directories redirect and serve index.html", every_file));
    tests.extend(both!(
        "curl gets a page, a redirect, a range and the 10 MB file intact; 50 parallel curls all succeed",
        pages_and_parallel
    ));
    tests.push(("web [Cheetah]: 1,024 connections from one address are held, the source's limit: one more gets no answer until one closes (its cookie still valid), then it is served", source_limit));
    tests.push(("web [e1000e]: every file of the generated 1,003-file site (0 B to 10 MB, larger than the cache) is served byte for byte on parallel keep-alive connections through the e1000e NIC; directories redirect and serve index.html", every_file::<E1000E>));
    tests.push(("web [e1000e]: the web node on the Intel 82574L (QEMU e1000e) and its driver PD: link up, the node-only receive filter (200 frames to another MAC and a multicast group reach no PD); curl gets /, a redirect, a range and the 10 MB file byte for byte, 50 parallel curls all succeed, cut-off downloads beside complete ones", e1000e_pages_and_parallel));
    tests.push(("web [smoltcp]: connections beyond the pool are refused at once while open ones keep working; a freed slot is reused", pool_limit));
    tests.push(("web [Cheetah]: the NIC passes only the node's frames: 200 frames to another MAC and to a multicast group reach no PD (the demultiplexer counts none not for the node), and the node serves", receive_filter));
    tests.extend(both!("a file whose data was corrupted on disk is answered 500 (GET and HEAD) and logged, never served; the others are", corrupt_file));
    tests.extend(both!(
        "an image with a corrupt superblock or index is refused: logged, and every connection refused",
        corrupt_head
    ));
    tests
}

/// The systems of the variants (see [`both`]).
/// Variant 2 (`E1000E`) is the Cheetah node with the e1000e NIC and its
/// driver in virtio-net's place.
const SYSTEMS: [&str; 3] =
    ["tests/systems/web.system", "tests/systems/web-smoltcp.system", "tests/systems/web-e1000e.system"];
/// The variant of the node on the e1000e NIC.
const E1000E: usize = 2;
/// The smoltcp server's pool as `web-smoltcp.system` sizes it: an 8 MiB
/// region of 32 KiB connections.
const POOL: usize = 256;
pub(super) const CURL: Package = Package { name: "curl", probe: "curl" };
/// httpd's line once it listens.
pub(super) const SERVING: &str = "[httpd] serving";
/// Parallel keep-alive connections of the byte-for-byte check.
const THREADS: usize = 8;

/// The generated site and its image, made once per test run.
pub(super) struct Site {
    pub(super) files: Vec<SiteFile>,
    pub(super) image: PathBuf,
}

pub(super) fn generated_site(ws: &Path) -> Result<Site> {
    static MADE: Mutex<Option<(Vec<SiteFile>, PathBuf)>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((files, image)) = made.as_ref() {
        return Ok(Site { files: files.clone(), image: image.clone() });
    }
    let dir = ws.join("target").join("web-test");
    let root = dir.join("site");
    let _ = std::fs::remove_dir_all(&root);
    let files = web_site::generate(&root)?;
    let image = dir.join("site.img");
    crate::harness::site::build(&root, &image)?;
    *made = Some((files.clone(), image.clone()));
    Ok(Site { files, image })
}

/// Boots the web node with `image` as its disk in a fresh namespace, waits
/// for `ready` on the console, runs `check`.
/// For the bench: boots `built` with the site image `image` on a TAP
/// device in a fresh namespace (no QEMU user networking between wrk and
/// the node) and runs wrk inside the namespace on each `(path,
/// connections)` for `seconds`.
pub(crate) fn wrk_on_tap(built: &Built, image: &Path, runs: &[(&str, usize)], seconds: u64) -> Result<Vec<WrkRun>> {
    deps::ensure_packages(TOOLS)?;
    let ns = Netns::new()?;
    let mut s = ns.boot_with(built, &site::drive(built, image)?)?;
    s.expect(SERVING, LINE_TIMEOUT)?;
    runs.iter()
        .map(|&(path, connections)| {
            wrk_command(ns.command("wrk"), &format!("http://{NODE_IP}{path}"), connections, seconds)
        })
        .collect()
}

fn with_web(
    ws: &Path,
    variant: usize,
    image: &Path,
    ready: &str,
    check: impl FnOnce(&Netns, &mut Session) -> Result<()>,
) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    deps::ensure_packages(&[CURL])?;
    // On the NIC its driver needs (`Built::nic`).
    let built = build(ws, SYSTEMS[variant], KERNEL_CONSOLE)?;
    let ns = Netns::new()?;
    let mut s = ns.boot_with(&built, &site::drive(&built, image)?)?;
    let result = s
        .expect(ready, LINE_TIMEOUT)
        .map(|(line, _)| println!("   {line}"))
        .and_then(|()| check(&ns, &mut s))
        .and_then(|()| no_error_lines(&s));
    if result.is_err() {
        s.print_transcript();
    }
    drop(s);
    drop(ns);
    result
}

/// Whatever a test did to the node, no PD may have logged an `error:`
/// line: those name broken invariants (a queue, a descriptor, a device),
/// which a client would not notice until much later.
pub(super) fn no_error_lines(s: &Session) -> Result<()> {
    let errors: Vec<&String> = s.transcript.iter().filter(|l| l.contains("] error: ")).collect();
    ensure!(errors.is_empty(), "{} error line(s) on the console, the first: {}", errors.len(), errors[0]);
    Ok(())
}

/// `curl` in the namespace with `args`; its stdout.
fn curl(ns: &Netns, args: &[&str]) -> Result<String> {
    run(ns.command("curl").args(["-sS", "-m", "120"]).args(args))
}

/// A keep-alive client to the node, from a thread in the namespace.
fn connect(ns: &Netns) -> Result<Client> {
    ns.enter()?;
    Client::connect(&format!("{NODE_IP}:80"))
}

/// GETs every file in `files` on [`THREADS`] keep-alive connections in
/// parallel and compares each body with the source file; reconnects when
/// the server closes. Returns how many bytes were checked.
pub(super) fn check_files(ns: &Netns, files: &[&SiteFile]) -> Result<u64> {
    let chunks: Vec<Vec<&SiteFile>> =
        (0..THREADS).map(|t| files.iter().skip(t).step_by(THREADS).copied().collect()).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                scope.spawn(move || -> Result<u64> {
                    let mut client = connect(ns)?;
                    let mut bytes = 0;
                    for file in chunk {
                        let response = client.get(&file.url).with_context(|| format!("GET {}", file.url))?;
                        let want = std::fs::read(&file.path)?;
                        ensure!(response.status == 200, "GET {}: status {}", file.url, response.status);
                        ensure!(
                            response.body.len() == want.len(),
                            "GET {}: {} bytes, the file has {}",
                            file.url,
                            response.body.len(),
                            want.len()
                        );
                        if let Some(at) = response.body.iter().zip(&want).position(|(a, b)| a != b) {
                            bail!("GET {}: differs from the file at byte {at}", file.url);
                        }
                        bytes += want.len() as u64;
                        if response.header("connection") == Some("close") {
                            client = connect(ns)?;
                        }
                    }
                    Ok(bytes)
                })
            })
            .collect();
        let mut total = 0;
        for w in workers {
            total += w.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(total)
    })
}

fn every_file<const V: usize>(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    with_web(ws, V, &site.image, SERVING, |ns, s| {
        let files: Vec<&SiteFile> = site.files.iter().collect();
        ensure!(
            files.len() > 1000 && files.iter().any(|f| f.len == 0) && files.iter().any(|f| f.len == web_site::LARGE)
        );
        let started = std::time::Instant::now();
        let bytes = check_files(ns, &files)?;
        println!(
            "   {} files, {bytes} bytes, each equal to its source, in {:.1} s",
            files.len(),
            started.elapsed().as_secs_f64()
        );
        // Directories: without the slash a redirect, with it index.html.
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<()> {
                    let mut client = connect(ns)?;
                    let redirect = client.get("/d05")?;
                    ensure!(redirect.status == 301, "GET /d05: {}", redirect.status);
                    let location = redirect.header("location").unwrap_or("");
                    ensure!(location.ends_with("/d05/"), "GET /d05: Location {location:?}");
                    let index = client.get("/d05/")?;
                    let want = std::fs::read(ws.join("target/web-test/site/d05/index.html"))?;
                    ensure!(
                        index.status == 200 && index.body == want,
                        "GET /d05/: {} with {} bytes",
                        index.status,
                        index.body.len()
                    );
                    let root = client.get("/")?;
                    let want = std::fs::read(ws.join("target/web-test/site/index.html"))?;
                    ensure!(root.status == 200 && root.body == want, "GET /: {}", root.status);
                    println!("   /d05 -> 301 {location}; /d05/ and / serve their index.html");
                    Ok(())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
        })?;
        // The counters (logged when they changed, at most every few
        // seconds): the site is larger than the cache, so groups were
        // evicted; every body byte went to the wire in place from the
        // cache, none was copied.
        // A counter missing from the line (renamed, dropped) is an error,
        // never a 0 that passes.
        let counter = |line: &str, name: &str| -> Result<u64> {
            let (_, v) = line.split_once(&format!(" {name}=")).with_context(|| format!("no {name} in {line:?}"))?;
            let v = v.split([' ', ';']).next().unwrap_or("");
            v.parse().with_context(|| format!("{name}={v:?} in {line:?}"))
        };
        let mut line = String::new();
        for _ in 0..10 {
            // A report may predate the downloads; the next comes within 10 s.
            line = s.expect("[httpd] accepted=", LINE_TIMEOUT)?.0;
            if counter(&line, "evictions")? > 0 && counter(&line, "tx_in_place_bytes")? >= bytes {
                break;
            }
        }
        ensure!(counter(&line, "evictions")? > 0, "the 24 MiB cache served a 30 MiB site without evicting: {line}");
        println!("   cache: {}", line.split_once("cache ").map_or("", |(_, c)| c));
        let (in_place, copied, summed) =
            (counter(&line, "tx_in_place_bytes")?, counter(&line, "copied_bytes")?, counter(&line, "sum_read_bytes")?);
        ensure!(
            copied == 0 && in_place >= bytes,
            "{bytes} body bytes served, {in_place} sent in place, {copied} copied: {line}"
        );
        // Segments start on the image's 1460-byte pieces (a body longer
        // than one waits for its head to go): their checksums are the
        // precomputed ones, and data is read only for the odd segment
        // (window-limited, retransmitted).
        ensure!(summed * 10 <= in_place, "{summed} of {in_place} bytes in place were read to checksum them: {line}");
        println!(
            "   {in_place} bytes sent in place from the cache, 0 copied; {summed} read for checksums ({:.2} %)",
            summed as f64 * 100.0 / in_place as f64
        );
        no_faults(s)
    })
}

fn pages_and_parallel<const V: usize>(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    with_web(ws, V, &site.image, SERVING, |ns, s| pages_and_parallel_on(ns, s, &site))
}

/// What [`pages_and_parallel`] checks, on a booted web node serving the
/// generated `site`: `/`, a redirect, a range and the 10 MB file, 50
/// parallel downloads, cut-off downloads beside complete ones.
fn pages_and_parallel_on(ns: &Netns, s: &mut Session, site: &Site) -> Result<()> {
    let url = format!("http://{NODE_IP}/");
    get_root(ns)?;
    let redirect = curl(ns, &["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", &format!("{url}d01")])?;
    ensure!(redirect == format!("301 {url}d01/"), "GET /d01: {redirect}");
    let (large, want) = large_file(site)?;
    let file = std::env::temp_dir().join(format!("{}-large.bin", std::process::id()));
    let head = curl(
        ns,
        &["-D", "-", "-o", &file.to_string_lossy(), "-H", "Range: bytes=64-72", &format!("{url}{}", &large.url[1..])],
    )?;
    ensure!(head.starts_with("HTTP/1.1 206"), "range: {head:?}");
    let body = std::fs::read(&file).context("reading the downloaded range")?;
    let _ = std::fs::remove_file(&file);
    ensure!(body == want[64..73], "range body {body:?}, the file has {:?}", &want[64..73]);
    get_large(ns, large, &want)?;
    parallel_downloads(ns, site)?;
    cut_downloads(ns, s, large, &want)?;
    no_faults(s)
}

/// `curl` gets `/`: 200 and the generated site's index page.
fn get_root(ns: &Netns) -> Result<()> {
    let page = curl(ns, &["-i", &format!("http://{NODE_IP}/")])?;
    ensure!(page.starts_with("HTTP/1.1 200 OK"), "GET /: {page}");
    ensure!(page.contains("<h1>generated</h1>"), "GET /: {page}");
    println!("   GET /: {}", page.lines().next().unwrap_or(""));
    Ok(())
}

/// The site's 10 MB file and its bytes.
fn large_file(site: &Site) -> Result<(&SiteFile, Vec<u8>)> {
    let large = site.files.iter().find(|f| f.len == web_site::LARGE).context("no large file")?;
    Ok((large, std::fs::read(&large.path)?))
}

/// `curl` gets the 10 MB file `large`, equal to `want` byte for byte.
fn get_large(ns: &Netns, large: &SiteFile, want: &[u8]) -> Result<()> {
    let file = std::env::temp_dir().join(format!("{}-large.bin", std::process::id()));
    curl(ns, &["-o", &file.to_string_lossy(), &format!("http://{NODE_IP}/{}", &large.url[1..])])?;
    let body = std::fs::read(&file).context("reading the downloaded file")?;
    let _ = std::fs::remove_file(&file);
    ensure!(body == want, "{}: {} bytes, differs from the source", large.url, body.len());
    println!("   {}: {} bytes, equal to the source", large.url, body.len());
    Ok(())
}

/// A file of a few hundred KB, 50 times at once with `curl`: every
/// download 200 and complete.
fn parallel_downloads(ns: &Netns, site: &Site) -> Result<()> {
    let url = format!("http://{NODE_IP}/");
    let mid = site.files.iter().filter(|f| f.len < 400_000).max_by_key(|f| f.len).context("no mid-sized file")?;
    let parallel = format!(
        "seq 50 | xargs -P 50 -I{{}} curl -s -m 120 -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' {url}{}",
        &mid.url[1..]
    );
    let out = ns.command("sh").args(["-c", &parallel]).stdin(Stdio::null()).output()?;
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = lines.lines().filter(|l| *l == format!("200 {}", mid.len)).count();
    ensure!(ok == 50, "50 parallel downloads of {}: {ok} complete:\n{lines}", mid.url);
    println!("   50 parallel downloads of {} ({} bytes): all 200 and complete", mid.url, mid.len);
    Ok(())
}

/// Downloads of the 10 MB file `large` (whose bytes are `want`) cut off
/// mid-body (the client goes away with frames in flight) beside complete
/// ones: the complete ones arrive intact, and the cut ones' pins all go
/// back (httpd's counter line on `s`).
fn cut_downloads(ns: &Netns, s: &mut Session, large: &SiteFile, want: &[u8]) -> Result<()> {
    let large_url = format!("http://{NODE_IP}/{}", &large.url[1..]);
    let cut = ns
        .command("sh")
        .args([
            "-c",
            &format!(
                "seq 12 | xargs -P 12 -I{{}} curl -s -m 0.4 --limit-rate 4M -o /dev/null -w '%{{exitcode}} %{{size_download}}\\n' {large_url}"
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let dir = std::env::temp_dir().join(format!("{}-full", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let full = format!("for i in 1 2 3; do curl -s -m 120 -o {}/$i {large_url} & done; wait", dir.display());
    ns.command("sh").args(["-c", &full]).stdin(Stdio::null()).status()?;
    let cut = cut.wait_with_output()?;
    // Each timed download either stopped short of the file (curl's exit
    // 28: the time limit) or, on a fast server, completed in time with
    // every byte (exit 0); most were cut, at least one mid-body. The
    // clients read at most 4 MB/s (the 10 MB file takes them 2.5 s), so
    // that they are cut however fast the server is: with TSO, 1,024
    // receive buffers and interrupt moderation all twelve once finished
    // within the 0.4 s.
    let cut = String::from_utf8_lossy(&cut.stdout).into_owned();
    let mut received = Vec::new();
    for line in cut.lines() {
        let (code, bytes) = line.split_once(' ').with_context(|| format!("curl printed {line:?}"))?;
        let bytes: usize = bytes.parse().with_context(|| format!("curl printed {line:?}"))?;
        let cut_short = code == "28" && bytes < large.len;
        let completed = code == "0" && bytes == large.len;
        ensure!(
            cut_short || completed,
            "a download limited to 0.4 s ended with {code} after {bytes} of {} bytes:\n{cut}",
            large.len
        );
        received.push((cut_short, bytes));
    }
    ensure!(received.len() == 12, "12 timed downloads, {} reported:\n{cut}", received.len());
    let cut_count = received.iter().filter(|(c, _)| *c).count();
    ensure!(cut_count >= 6, "only {cut_count} of 12 downloads were cut off:\n{cut}");
    ensure!(received.iter().any(|&(c, b)| c && b > 0), "no cut-off download received any of the body:\n{cut}");
    for i in 1..=3 {
        let body = std::fs::read(dir.join(i.to_string())).context("reading a complete download")?;
        ensure!(body == want, "{}: complete download {i} has {} bytes, differs from the source", large.url, body.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let idle = |line: &str| {
        let server_busy = line.split_once(" busy=").and_then(|(_, v)| v.split('/').next()) == Some("0");
        let cache = line.split_once("; cache ").map_or("", |(_, c)| c);
        server_busy && cache.contains(" busy=0 ") && cache.ends_with("bad_releases=0")
    };
    let mut line = String::new();
    for _ in 0..10 {
        line = s.expect("[httpd] accepted=", LINE_TIMEOUT)?.0;
        if idle(&line) {
            break;
        }
    }
    ensure!(idle(&line), "after cut-off downloads the server should be idle with every pin back: {line}");
    println!(
        "   12 downloads of {} cut off mid-body ({:?} bytes of {}) beside 3 complete ones: those intact, every pin back",
        large.url, received, large.len
    );
    Ok(())
}

/// `web-e1000e.system`, booted with QEMU's e1000e (`Built::nic`): the
/// driver brings the device up with its MAC, the link comes up (at
/// bring-up or with a later link change) and the receive filter read back
/// from the device is the node's address and broadcasts only, and 200
/// frames to another MAC and a multicast group reach no PD
/// ([`foreign_frames_dropped`], as `receive_filter` checks virtio-net); then what
/// [`pages_and_parallel`] checks: `/`, a redirect, a range, the 10 MB file
/// byte for byte, 50 parallel downloads, and downloads cut off mid-body
/// (transmit buffers given back while the client is gone) beside complete
/// ones.
fn e1000e_pages_and_parallel(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    with_web(ws, E1000E, &site.image, SERVING, |ns, s| {
        // The monitor found the device at the address QEMU was given.
        let pci = s.seen_or_expect("[monitor] PCI 00:03.0 8086:10d3 -> PD 'e1000e'", LINE_TIMEOUT)?;
        println!("   {pci}");
        // (The description puts the driver above the block driver, so that
        // the debug console does not cut these lines with that PD's.)
        let up = s.seen_or_expect("[e1000e] e1000e 8086:10d3 up: mac 52:54:00:12:34:56", LINE_TIMEOUT)?;
        println!("   {up}");
        // The link's state: its line at bring-up, then one per change; the
        // last one must say up (or a later one, if the link comes up late).
        let link = |l: &String| l.contains("[e1000e] link up") || l.contains("[e1000e] link down");
        let last = s.transcript.iter().rev().find(|l| link(l)).cloned().unwrap_or_default();
        let line = if last.contains("[e1000e] link up") { last } else { s.expect("[e1000e] link up", LINE_TIMEOUT)?.0 };
        println!("   {line}");
        let filter = s.seen_or_expect("[e1000e] receive filter: promiscuous mode off", LINE_TIMEOUT)?;
        println!("   {filter}");
        foreign_frames_dropped(ns, s)?;
        let at = s.position("[e1000e] link up").unwrap_or(0);
        pages_and_parallel_on(ns, s, &site)?;
        if let Some(down) = s.transcript[at..].iter().find(|l| l.contains("[e1000e] link down")) {
            bail!("the link went down while serving: {down}");
        }
        no_faults(s)
    })
}

/// A copy of `image` with the byte at `offset` inverted.
fn corrupted_copy(image: &Path, name: &str, offset: u64) -> Result<PathBuf> {
    let mut bytes = std::fs::read(image)?;
    let at = usize::try_from(offset)?;
    ensure!(at < bytes.len(), "offset {offset} is past the image");
    bytes[at] ^= 0xff;
    let out = image.with_file_name(name);
    std::fs::write(&out, bytes)?;
    Ok(out)
}

fn corrupt_file<const V: usize>(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    // A file of some size in /d03/, whose other files are checked after.
    let victim = site.files.iter().find(|f| f.url.starts_with("/d03/") && f.len > 5000).context("no victim")?;
    let bytes = std::fs::read(&site.image)?;
    let image = Image::parse(&bytes).map_err(|e| anyhow::anyhow!("the image does not parse: {e}"))?;
    let record = image.lookup(victim.url.as_bytes()).context("the victim is not in the image")?;
    let offset = record.data_offset() + record.size / 2;
    let corrupted = corrupted_copy(&site.image, "corrupt-file.img", offset)?;
    println!("   flipped byte {} of {} ({} bytes)", record.size / 2, victim.url, victim.len);
    with_web(ws, V, &corrupted, SERVING, |ns, s| {
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<()> {
                    for round in 0..2 {
                        let mut client = connect(ns)?;
                        let response = client.get(&victim.url)?;
                        ensure!(response.status == 500, "GET {} (round {round}): {}", victim.url, response.status);
                        let text = String::from_utf8_lossy(&response.body);
                        ensure!(text.contains("500 Internal Server Error"), "500 body: {text}");
                        ensure!(response.header("connection") == Some("close"), "500 without Connection: close");
                        ensure!(client.is_closed(Duration::from_secs(5))?, "the connection stays open after the 500");
                    }
                    // HEAD is GET without the content: the same 500, no body.
                    let mut client = connect(ns)?;
                    client.send(format!("HEAD {} HTTP/1.1\r\nHost: node\r\n\r\n", victim.url).as_bytes())?;
                    let response = client.response(true)?;
                    ensure!(response.status == 500, "HEAD {}: {}", victim.url, response.status);
                    ensure!(client.is_closed(Duration::from_secs(5))?, "HEAD: no body may follow the 500 head");
                    Ok(())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
        })?;
        let (line, _) = s.expect(&format!("[file-cache] corrupt file {}", victim.url), LINE_TIMEOUT)?;
        println!("   {line}");
        // Everything else in its directory (its group and others) is served.
        let others: Vec<&SiteFile> =
            site.files.iter().filter(|f| f.url.starts_with("/d03/") && f.url != victim.url).collect();
        let bytes = check_files(ns, &others)?;
        println!("   the {} other files of /d03/ ({bytes} bytes) served intact", others.len());
        s.drain(Duration::from_millis(200), Duration::from_secs(1));
        let logged = s.transcript.iter().filter(|l| l.contains("[file-cache] corrupt file")).count();
        ensure!(logged == 1, "the corrupt file was logged {logged} times");
        no_faults(s)
    })
}

fn corrupt_head<const V: usize>(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    let bytes = std::fs::read(&site.image)?;
    let image = Image::parse(&bytes).map_err(|e| anyhow::anyhow!("the image does not parse: {e}"))?;
    let index_len = u64::from(image.superblock().index_len);
    ensure!(index_len > 0, "the image has no index");
    // A byte of the superblock, then one in the middle of the index (which
    // starts at block 1).
    for (name, offset) in [("corrupt-superblock.img", 20), ("corrupt-index.img", 4096 + index_len / 2)] {
        let corrupted = corrupted_copy(&site.image, name, offset)?;
        with_web(ws, V, &corrupted, "[file-cache] corrupt site image, refusing to serve", |ns, s| {
            s.expect("[httpd] not serving", LINE_TIMEOUT)?;
            let refused = std::thread::scope(|scope| {
                scope
                    .spawn(|| -> Result<std::io::ErrorKind> {
                        ns.enter()?;
                        match std::net::TcpStream::connect_timeout(
                            &format!("{NODE_IP}:80").parse()?,
                            Duration::from_secs(10),
                        ) {
                            Ok(_) => bail!("a connection was accepted"),
                            Err(e) => Ok(e.kind()),
                        }
                    })
                    .join()
                    .map_err(|_| anyhow::anyhow!("the client thread panicked"))?
            })?;
            ensure!(refused == std::io::ErrorKind::ConnectionRefused, "connecting: {refused:?}, not refused");
            let line = s.transcript.iter().find(|l| l.contains("corrupt site image")).cloned().unwrap_or_default();
            println!("   byte {offset} flipped ({name}): {line}; connections refused");
            no_faults(s)
        })?;
    }
    Ok(())
}

/// Fills the pool with connections, each answered once (so the server
/// holds every one, established), then checks that one more is refused
/// (and prints how long the refusal took), that pooled connections still
/// get answers, and that closing one frees a slot for a newcomer (waited
/// for by retrying with a deadline).
const POOL_FILLER: &str = r#"
import socket, sys, time
host, pool = sys.argv[1], int(sys.argv[2])
def get(s):
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: n\r\n\r\n")
    data = b""
    while not data.endswith(b"</body></html>\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed early: %r" % data)
        data += chunk
    return data.split(b"\r\n")[0].decode()
held = []
for i in range(pool):
    s = socket.create_connection((host, 80), timeout=10)
    held.append(s)
# Every connection answered: the server holds them all.
for s in held:
    status = get(s)
    if status != "HTTP/1.1 200 OK":
        sys.exit("a pooled connection got %r" % status)
extra = socket.socket()
extra.settimeout(10)
t = time.monotonic()
try:
    extra.connect((host, 80))
    sys.exit("connection %d was accepted with a pool of %d" % (pool + 1, pool))
except ConnectionRefusedError:
    print("refused after %d ms" % ((time.monotonic() - t) * 1000))
print("pooled connections answer:", get(held[0]), "/", get(held[-1]))
held.pop().close()
# The slot is free once the server has seen the close: retry until then.
deadline = time.monotonic() + 10
while True:
    try:
        newcomer = socket.create_connection((host, 80), timeout=10)
        break
    except ConnectionRefusedError:
        if time.monotonic() > deadline:
            sys.exit("no slot freed 10 s after a pooled connection closed")
        time.sleep(0.05)
print("after one closed, a newcomer gets:", get(newcomer))
"#;

fn pool_limit(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    with_web(ws, 1, &site.image, SERVING, |ns, s| {
        let out = ns.python(POOL_FILLER, &[NODE_IP, &POOL.to_string()])?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            println!("   {line}");
        }
        // "At once": the first SYN was answered with a reset. Linux sends
        // the first retransmission after 1 s, so a refusal any later means
        // a SYN went unanswered (dropped, or queued until a timeout).
        let ms: u64 = text
            .split_once("refused after ")
            .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
            .with_context(|| format!("connection {} was not refused: {text}", POOL + 1))?;
        ensure!(ms < 1000, "connection {} refused only after {ms} ms, not at once", POOL + 1);
        ensure!(text.contains("answer: HTTP/1.1 200 OK / HTTP/1.1 200 OK"), "{text}");
        ensure!(text.contains("newcomer gets: HTTP/1.1 200 OK"), "{text}");
        no_faults(s)
    })
}

/// Opens `limit` connections from this address (Cheetah's per-source
/// limit), has each answered, then one more: its handshake completes (the
/// SYN-ACK is a cookie, no state) but its request is not answered while
/// the source is at its limit; once one closes, the request sent again
/// opens it.
const SOURCE_FILLER: &str = r#"
import resource, socket, sys, time
host, limit = sys.argv[1], int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit + 256, limit + 256))
def get(s):
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: n\r\n\r\n")
    return read(s)
def read(s):
    data = b""
    while not data.endswith(b"</body></html>\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed early: %r" % data)
        data += chunk
    return data.split(b"\r\n")[0].decode()
held = []
t = time.monotonic()
for i in range(limit):
    held.append(socket.create_connection((host, 80), timeout=30))
print("%d connections held in %d ms" % (limit, (time.monotonic() - t) * 1000))
extra = socket.create_connection((host, 80), timeout=3)
extra.sendall(b"GET /index.html HTTP/1.1\r\nHost: n\r\n\r\n")
try:
    extra.recv(4096)
    sys.exit("connection %d was served beyond the limit" % (limit + 1))
except socket.timeout:
    print("over the limit: not answered")
held.pop(0).close()
extra.settimeout(60)
print("after one closed, the waiting one gets:", read(extra))
print("a held connection answers:", get(held[-1]))
"#;

/// Sends `argv[2]` IPv4/UDP frames to the node's address from the TAP
/// device (`argv[1]`) to each of two Ethernet destinations that are not
/// the node's: another unicast MAC and a multicast group.
const FOREIGN_FRAMES: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
payload = b"x" * 20
udp = struct.pack("!HHHH", 5000, 9, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([10, 0, 2, 2]), bytes([10, 0, 2, 15]))
total = sum((ip[i] << 8) | ip[i + 1] for i in range(0, 20, 2))
while total >> 16:
    total = (total & 0xffff) + (total >> 16)
ip = ip[:10] + struct.pack("!H", ~total & 0xffff) + ip[12:]
n = int(sys.argv[2])
for dst in ("020000000099", "01005e000001"):
    for _ in range(n):
        s.send(bytes.fromhex(dst) + bytes.fromhex("020000000001") + b"\x08\x00" + ip + udp)
print("sent", 2 * n)
"#;

/// virtio-net turns the device's promiscuous mode off (its control queue,
/// `drivers/virtio-net` `control`): frames to another unicast MAC or to a
/// multicast group never reach the driver, so the demultiplexer, which
/// would count each as not for the node (`not-our-mac`, `multicast`),
/// counts none. Without the command it counts all 200.
fn receive_filter(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    with_web(ws, 0, &site.image, SERVING, |ns, s| {
        let said = "[virtio-net] receive filter: promiscuous mode off";
        ensure!(s.position(said).is_some(), "no {said:?} on the console");
        foreign_frames_dropped(ns, s)?;
        no_faults(s)
    })
}

/// 200 frames to another MAC and to a multicast group, sent from the
/// host's side of the TAP: the demultiplexer counts none not for the node
/// (its `rx` line on `s`, logged after a request), so the NIC dropped them.
fn foreign_frames_dropped(ns: &Netns, s: &mut Session) -> Result<()> {
    let out = ns.python(FOREIGN_FRAMES, &[TAP, "100"])?;
    println!("   {}", String::from_utf8_lossy(&out.stdout).trim());
    // A request changes httpd's counters: its next counter line asks
    // the demultiplexer for its counters, which it logs.
    let page = curl(ns, &["-o", "/dev/null", "-w", "%{http_code}", &format!("http://{NODE_IP}/")])?;
    ensure!(page == "200" || page == "404", "GET / answered {page:?}");
    let (line, _) = s.expect("[net-mux] rx ", Duration::from_secs(30))?;
    println!("   {}", line.trim_start_matches("[net-mux] "));
    let refused = line
        .split_once("not for the node ")
        .and_then(|(_, rest)| rest.split(':').next())
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("no count of frames not for the node in {line:?}"))?;
    ensure!(refused == 0, "the demultiplexer saw {refused} frames not for the node: the NIC let them through");
    Ok(())
}

fn source_limit(ws: &Path) -> Result<()> {
    let site = generated_site(ws)?;
    with_web(ws, 0, &site.image, SERVING, |ns, s| {
        let out = ns.python(SOURCE_FILLER, &[NODE_IP, "1024"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            println!("   {line}");
        }
        ensure!(text.contains("over the limit: not answered"), "{text}");
        ensure!(text.contains("the waiting one gets: HTTP/1.1 200 OK"), "{text}");
        ensure!(text.contains("a held connection answers: HTTP/1.1 200 OK"), "{text}");
        no_faults(s)
    })
}
