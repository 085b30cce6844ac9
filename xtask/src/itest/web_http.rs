//! The web server's HTTP behaviour, judged from outside: the node boots
//! with QEMU's user-mode network forwarding a free port of the host's
//! loopback to its port 80, as `cargo xtask run` does (no root needed),
//! and the tests talk to it with `curl`, `wrk` and the byte-exact client
//! of [`super::http_client`] (pipelining, malformed and partial requests).
//!
//! The same suite runs a third time against the Cheetah server on a bad
//! network ([`super::badlink::BAD_LINK`]: 5 % loss, duplication, reordering
//! and 50 ms delay both ways, between a network namespace's TAP device and
//! QEMU): the checks run on a thread inside the namespace, so their
//! sockets, curl and wrk all cross the bad link (root needed).

use super::badlink::{BadLink, BAD_LINK};
use super::http_client::{Client, Response};
use super::node::{Netns, NODE_IP};
use super::web::both;
use super::{build, Test, LINE_TIMEOUT};
use crate::harness::deps::{self, Package};
use crate::harness::kernel::KernelConfig;
use crate::harness::qemu::{self, Session};
use crate::harness::{site, system};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn tests() -> Vec<Test> {
    let mut tests = Vec::new();
    tests.extend(both!(
        "GET and HEAD, HTTP/1.0 and 1.1 keep-alive, pipelining, Date once a second",
        methods_and_connections
    ));
    tests.extend(both!(
        "conditional requests (304), byte ranges (206, 416), index.html and the directory redirect",
        conditional_and_ranges
    ));
    tests.extend(both!(
        "errors 400, 404, 405 with Allow, 408, 414, 431, 501, 505 with small bodies; no escape from the root",
        errors
    ));
    tests.extend(both!("200 concurrent clients (wrk) for 10 s without an error", many_clients));
    tests.extend([
        (ON_BAD_LINK[0], methods_and_connections::<BAD_LINK_VARIANT> as fn(&Path) -> Result<()>),
        (ON_BAD_LINK[1], conditional_and_ranges::<BAD_LINK_VARIANT>),
        (ON_BAD_LINK[2], errors::<BAD_LINK_VARIANT>),
        (ON_BAD_LINK[3], many_clients::<BAD_LINK_VARIANT>),
    ]);
    tests
}

/// The variant of the Cheetah node behind the bad link.
const BAD_LINK_VARIANT: usize = 2;
const ON_BAD_LINK: [&str; 4] = [
    "web [Cheetah, bad link]: GET and HEAD, keep-alive, pipelining and Date through 5 % loss, reordering, duplication and 50 ms delay",
    "web [Cheetah, bad link]: conditional requests, byte ranges and redirects through the bad link",
    "web [Cheetah, bad link]: every error status and no escape from the root through the bad link",
    "web [Cheetah, bad link]: 200 concurrent clients (wrk) for 10 s without an error through the bad link",
];

/// The systems the behaviour tests boot, per variant
/// ([`both`]): the node as `cargo xtask run` boots it
/// (the Cheetah server), and the web test node with the smoltcp server,
/// serving `images/site`; then the first again, on the bad link
/// ([`BAD_LINK_VARIANT`]).
const SYSTEMS: [&str; 3] = ["microkit.system", "tests/systems/web-smoltcp.system", "microkit.system"];
/// The kernel configuration each of [`SYSTEMS`] boots: the web node as it
/// is deployed (the release kernel, `cargo xtask run`'s default: no kernel
/// debug calls; its PDs log through the serial PD), and the smoltcp test
/// node on the debug kernel, because it has no serial PD: its PDs log
/// through the kernel's debug console, which the test reads
/// (`[httpd] serving`).
const CONFIGS: [KernelConfig; 3] = [KernelConfig::Release, KernelConfig::Debug, KernelConfig::Release];
const CURL: Package = Package { name: "curl", probe: "curl" };
const WRK: Package = Package { name: "wrk", probe: "wrk" };

/// Paths of `images/site` the tests use.
const FILE: &str = "/style.css";
const DIRECTORY: &str = "/docs";
const LARGE: &str = "/data/squares.txt";

/// The node, booted, with its HTTP port forwarded to `addr`.
pub(crate) struct Web {
    session: Session,
    /// The host's end of the forward, `127.0.0.1:PORT`, or the node's
    /// address in [`Web::bad_link`]'s namespace.
    pub(crate) addr: String,
    /// The namespace and relay of a node on the bad link (dropped after
    /// the session: QEMU stops first).
    bad_link: Option<(BadLink, Netns)>,
}

impl Web {
    fn boot(ws: &Path, variant: usize) -> Result<Web> {
        deps::ensure_packages(&[CURL, WRK])?;
        let built = build(ws, SYSTEMS[variant], CONFIGS[variant])?;
        let image = crate::harness::site::default_image(ws);
        crate::harness::site::build(&ws.join("images/site"), &image)?;
        if variant == BAD_LINK_VARIANT {
            Web::start_on_bad_link(&built, &image)
        } else {
            Web::start(&built, &image)
        }
    }

    /// Boots `built` with `image` in a new namespace, its NIC behind the
    /// bad link's relay; the node is reached at its own address from
    /// inside the namespace.
    fn start_on_bad_link(built: &system::Built, image: &Path) -> Result<Web> {
        let ns = Netns::new()?;
        let link = BadLink::start(&ns, BAD_LINK, 0x5eed)?;
        let mut devices = link.qemu_args().to_vec();
        devices.extend(site::drive(built, image)?);
        let mut session = ns.boot_devices(built, &devices)?;
        session.expect("[httpd] serving", LINE_TIMEOUT).context("booting the web node")?;
        println!("   the link: {BAD_LINK}, both ways");
        Ok(Web { session, addr: format!("{NODE_IP}:80"), bad_link: Some((link, ns)) })
    }

    /// Boots `built` with `image` as its disk and waits until httpd serves.
    pub(crate) fn start(built: &system::Built, image: &Path) -> Result<Web> {
        let addr = qemu::free_loopback_addr()?;
        let mut devices = qemu::user_nic_forwarding(&addr);
        devices.extend(site::drive(built, image)?);
        let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
        let mut session = Session::start(qemu::command(built, system::DEFAULT_RAM_MIB, false, &devices))?;
        session.expect("[httpd] serving", LINE_TIMEOUT).context("booting the web node")?;
        if built.kernel.config == KernelConfig::Release {
            // Nothing came from the kernel: every PD line through the
            // serial PD, the monitor's own to COM1.
            ensure!(session.position("Booting all finished").is_none(), "the kernel printed: not a release kernel");
            ensure!(session.position("[monitor] all PDs started").is_some(), "the monitor's boot line is missing");
            // The Cheetah server's secrets come from the CPU's generator
            // (QEMU's `+rdrand`), never from the guessable clocks.
            ensure!(
                session.position("[httpd] cookie and hash secrets from RDRAND").is_some(),
                "httpd's secrets did not come from RDRAND"
            );
        }
        Ok(Web { session, addr, bad_link: None })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn client(&self) -> Result<Client> {
        Client::connect(&self.addr)
    }

    /// One raw request on a fresh connection; its response.
    fn raw(&self, request: &[u8]) -> Result<Response> {
        let mut c = self.client()?;
        c.send(request)?;
        c.response(request.starts_with(b"HEAD"))
    }
}

/// Runs `check` on a booted node (for the bad link, on a thread inside its
/// namespace, whose sockets and child processes are there too); prints the
/// console on failure.
fn with_web(ws: &Path, variant: usize, check: impl FnOnce(&mut Web) -> Result<()> + Send) -> Result<()> {
    let mut web = Web::boot(ws, variant)?;
    let result = match web.bad_link.take() {
        None => check(&mut web),
        Some((link, ns)) => {
            let result = std::thread::scope(|s| {
                s.spawn(|| ns.enter().and_then(|()| check(&mut web)))
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the check panicked")))
            });
            println!("   {}", link.summary());
            web.bad_link = Some((link, ns));
            result
        }
    };
    if result.is_err() {
        web.session.print_transcript();
    }
    result
}

/// The source bytes of a path of `images/site`.
fn source(ws: &Path, path: &str) -> Result<Vec<u8>> {
    let file: PathBuf = ws.join("images/site").join(path.trim_start_matches('/'));
    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))
}

fn expect_status(r: &Response, status: u16, what: &str) -> Result<()> {
    ensure!(r.status == status, "{what}: status {} (expected {status}), headers {:?}", r.status, r.headers);
    Ok(())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: node\r\n\r\n").into_bytes()
}

fn methods_and_connections<const V: usize>(ws: &Path) -> Result<()> {
    with_web(ws, V, |web| {
        let expected = source(ws, FILE)?;
        // GET and HEAD: same header, HEAD without the body.
        let mut c = web.client()?;
        c.send(&get(FILE))?;
        let got = c.response(false)?;
        expect_status(&got, 200, "GET")?;
        ensure!(got.body == expected, "GET {FILE}: body differs from images/site");
        c.send(format!("HEAD {FILE} HTTP/1.1\r\nHost: node\r\n\r\n").as_bytes())?;
        let head = c.response(true)?;
        expect_status(&head, 200, "HEAD")?;
        for field in ["content-length", "content-type", "etag", "last-modified"] {
            let value = got.header(field).with_context(|| format!("GET {FILE} without {field}: {:?}", got.headers))?;
            ensure!(head.header(field) == Some(value), "HEAD and GET differ in {field}: {:?}", head.headers);
        }
        ensure!(
            head.header("content-length") == Some(expected.len().to_string().as_str()),
            "HEAD {FILE}: Content-Length {:?}, the file has {} bytes",
            head.header("content-length"),
            expected.len()
        );
        ensure!(!c.is_closed(Duration::from_millis(300))?, "HTTP/1.1 closed the connection (keep-alive expected)");

        // Pipelining: three requests in one write, answered in order.
        c.send(&[get(FILE), get(&format!("{DIRECTORY}/")), get("/no-such-file")].concat())?;
        let statuses: Vec<u16> = (0..3).map(|_| c.response(false).map(|r| r.status)).collect::<Result<_>>()?;
        ensure!(statuses == [200, 200, 404], "pipelined responses: {statuses:?}");

        // HTTP/1.0 closes unless asked to keep the connection alive.
        let mut c10 = web.client()?;
        c10.send(format!("GET {FILE} HTTP/1.0\r\n\r\n").as_bytes())?;
        expect_status(&c10.response(false)?, 200, "HTTP/1.0 GET")?;
        ensure!(c10.is_closed(Duration::from_secs(5))?, "HTTP/1.0 without keep-alive: the connection stayed open");
        let mut ka = web.client()?;
        ka.send(format!("GET {FILE} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes())?;
        let r = ka.response(false)?;
        ensure!(
            r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "HTTP/1.0 keep-alive: {:?}",
            r.headers
        );
        ka.send(format!("GET {FILE} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes())?;
        expect_status(&ka.response(false)?, 200, "second HTTP/1.0 keep-alive request")?;

        // Date: an IMF-fixdate that moves on with the clock.
        let first = got.header("date").context("no Date header")?.to_string();
        ensure!(first.ends_with(" GMT") && first.len() == 29, "Date {first:?} is not an IMF-fixdate");
        std::thread::sleep(Duration::from_millis(2100));
        c.send(&get(FILE))?;
        let later = c.response(false)?.header("date").context("no Date header")?.to_string();
        ensure!(later != first, "Date did not change in 2 s: {first}");
        println!("   Date: {first} then {later}");
        Ok(())
    })
}

fn conditional_and_ranges<const V: usize>(ws: &Path) -> Result<()> {
    with_web(ws, V, |web| {
        let mut c = web.client()?;
        c.send(&get(FILE))?;
        let full = c.response(false)?;
        let etag = full.header("etag").context("no ETag")?.to_string();
        let modified = full.header("last-modified").context("no Last-Modified")?.to_string();
        ensure!(etag.starts_with('"'), "ETag {etag} is not strong");

        let conditional = |c: &mut Client, field: &str, value: &str| -> Result<Response> {
            c.send(format!("GET {FILE} HTTP/1.1\r\nHost: node\r\n{field}: {value}\r\n\r\n").as_bytes())?;
            c.response(false)
        };
        let r = conditional(&mut c, "If-None-Match", &etag)?;
        expect_status(&r, 304, "If-None-Match with the ETag")?;
        ensure!(r.body.is_empty() && r.header("etag") == Some(etag.as_str()), "304: {:?}", r.headers);
        expect_status(&conditional(&mut c, "If-None-Match", "\"other\"")?, 200, "If-None-Match with another tag")?;
        expect_status(&conditional(&mut c, "If-Modified-Since", &modified)?, 304, "If-Modified-Since = Last-Modified")?;
        expect_status(
            &conditional(&mut c, "If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")?,
            200,
            "If-Modified-Since long ago",
        )?;

        // Ranges of the large file.
        let large = source(ws, LARGE)?;
        let len = large.len();
        let ranged = |c: &mut Client, spec: &str| -> Result<Response> {
            c.send(format!("GET {LARGE} HTTP/1.1\r\nHost: node\r\nRange: bytes={spec}\r\n\r\n").as_bytes())?;
            c.response(false)
        };
        for (spec, start, end) in
            [("100-199", 100, 200), (&*format!("{}-", len - 10), len - 10, len), ("-5", len - 5, len)]
        {
            let r = ranged(&mut c, spec)?;
            expect_status(&r, 206, &format!("Range: bytes={spec}"))?;
            ensure!(r.body == large[start..end], "Range {spec}: wrong bytes");
            let expected = format!("bytes {start}-{}/{len}", end - 1);
            ensure!(
                r.header("content-range") == Some(expected.as_str()),
                "Range {spec}: Content-Range {:?}",
                r.header("content-range")
            );
        }
        let r = ranged(&mut c, &format!("{len}-"))?;
        expect_status(&r, 416, "unsatisfiable range")?;
        ensure!(r.header("content-range") == Some(format!("bytes */{len}").as_str()), "416: {:?}", r.headers);

        // Directories: index.html, and a redirect without the slash.
        let index = web.raw(&get(&format!("{DIRECTORY}/")))?;
        expect_status(&index, 200, "directory with its slash")?;
        ensure!(index.body == source(ws, &format!("{DIRECTORY}/index.html"))?, "{DIRECTORY}/ is not its index.html");
        let redirect = web.raw(&get(DIRECTORY))?;
        expect_status(&redirect, 301, "directory without its slash")?;
        ensure!(
            redirect.header("location").is_some_and(|l| l.ends_with(&format!("{DIRECTORY}/"))),
            "Location: {:?}",
            redirect.header("location")
        );

        // curl agrees.
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-r", "0-9", &web.url(LARGE)])
            .output()?;
        ensure!(String::from_utf8_lossy(&out.stdout) == "206", "curl -r 0-9: {}", String::from_utf8_lossy(&out.stdout));
        Ok(())
    })
}

fn errors<const V: usize>(ws: &Path) -> Result<()> {
    with_web(ws, V, |web| {
        let cases: [(&str, Vec<u8>, u16); 8] = [
            ("garbage", b"\x01\x02 nonsense\r\n\r\n".to_vec(), 400),
            ("no such file", get("/no-such-file.html"), 404),
            ("POST", format!("POST {FILE} HTTP/1.1\r\nHost: node\r\nContent-Length: 0\r\n\r\n").into_bytes(), 405),
            ("long target", get(&format!("/{}", "a".repeat(5000))), 414),
            (
                "huge header",
                format!("GET {FILE} HTTP/1.1\r\nHost: node\r\nX-Big: {}\r\n\r\n", "b".repeat(16000)).into_bytes(),
                431,
            ),
            ("unknown method", format!("BREW {FILE} HTTP/1.1\r\nHost: node\r\n\r\n").into_bytes(), 501),
            ("HTTP/3.0", format!("GET {FILE} HTTP/3.0\r\nHost: node\r\n\r\n").into_bytes(), 505),
            ("escape the root", get("/../../../etc/passwd"), 404),
        ];
        for (what, request, status) in cases {
            let r = web.raw(&request)?;
            expect_status(&r, status, what)?;
            if status != 404 || what == "no such file" {
                ensure!(
                    !r.body.is_empty() && r.body.len() < 1024,
                    "{what}: {status} should carry a small body ({} bytes)",
                    r.body.len()
                );
            }
            if status == 405 {
                ensure!(
                    r.header("allow").is_some_and(|a| a.contains("GET") && a.contains("HEAD")),
                    "405 without Allow: {:?}",
                    r.headers
                );
            }
        }
        // No escape from the root: `..` at the root stays at the root
        // (RFC 3986 §5.2.4), so climbing above it and naming a file serves
        // the root's file. Each path below names a real file of the site
        // under a broken normalisation: `..` ignored gives /docs/index.html
        // (not the root's index.html), `..` kept or encoded dots taken as
        // a name gives a 404 and a root that `..` removes a garbled path.
        for (climb, file) in [
            ("/%2e%2e/%2e%2e/%2e%2e", FILE),
            ("/../..", FILE),
            ("/docs/%2e%2e/%2e%2e/%2E%2E", "/index.html"),
            ("/docs/../../..", "/index.html"),
            ("/docs/../../docs/%2e./..", "/index.html"),
        ] {
            let path = format!("{climb}{file}");
            let r = web.raw(&get(&path))?;
            expect_status(&r, 200, &path)?;
            ensure!(r.body == source(ws, file)?, "{path} is not the root's {file} ({} bytes)", r.body.len());
        }
        ensure!(source(ws, "/index.html")? != source(ws, "/docs/index.html")?, "the two index pages are alike");
        // Dot segments resolve inside the site.
        let dotted = web.raw(&get(&format!("{DIRECTORY}/..{FILE}")))?;
        expect_status(&dotted, 200, "dot segments")?;
        ensure!(dotted.body == source(ws, FILE)?, "{DIRECTORY}/..{FILE} is not {FILE}");

        // 408: half a request, then silence.
        let mut c = web.client()?;
        c.send(b"GET / HTTP/1.1\r\nHost: no")?;
        let started = Instant::now();
        let r = c.response(false)?;
        expect_status(&r, 408, "idle partial request")?;
        println!("   408 after {:.1} s", started.elapsed().as_secs_f64());
        ensure!(c.is_closed(Duration::from_secs(5))?, "the connection stayed open after 408");
        Ok(())
    })
}

/// What one `wrk` run saw.
pub(crate) struct WrkRun {
    pub(crate) requests: u64,
    pub(crate) per_second: f64,
    /// Response bytes (heads and bodies) per second.
    pub(crate) bytes_per_second: f64,
}

/// Runs `wrk` with `connections` on `url` for `seconds`; an error if it
/// saw any socket error or a status other than 2xx/3xx (it prints those
/// lines only when there were some).
pub(crate) fn wrk(url: &str, connections: usize, seconds: u64) -> Result<WrkRun> {
    wrk_command(Command::new("wrk"), url, connections, seconds)
}

/// [`wrk`] with `command` as the wrk program (e.g. run in a namespace).
pub(crate) fn wrk_command(mut command: Command, url: &str, connections: usize, seconds: u64) -> Result<WrkRun> {
    let out = command
        .args(["-t", "2", "-c", &connections.to_string(), "-d", &format!("{seconds}s"), "--timeout", "10s", url])
        .output()
        .context("running wrk")?;
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success(), "wrk failed: {report}{}", String::from_utf8_lossy(&out.stderr));
    if report.contains("Socket errors") || report.contains("Non-2xx") {
        bail!("wrk saw errors:\n{report}");
    }
    let requests = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .with_context(|| format!("no request count in wrk's report:\n{report}"))?;
    let per_second = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's report:\n{report}"))?;
    // `Transfer/sec:    1.23MB`, in binary units.
    let bytes_per_second = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Transfer/sec:"))
        .and_then(|v| {
            let v = v.trim();
            let split = v.find(|c: char| c.is_ascii_alphabetic())?;
            let scale = match &v[split..] {
                "B" => 1.0,
                "KB" => 1024.0,
                "MB" => 1024.0 * 1024.0,
                "GB" => 1024.0 * 1024.0 * 1024.0,
                _ => return None,
            };
            Some(v[..split].parse::<f64>().ok()? * scale)
        })
        .with_context(|| format!("no Transfer/sec in wrk's report:\n{report}"))?;
    Ok(WrkRun { requests, per_second, bytes_per_second })
}

fn many_clients<const V: usize>(ws: &Path) -> Result<()> {
    with_web(ws, V, |web| {
        let run = wrk(&web.url("/index.html"), 200, 10)?;
        println!("   wrk, 200 connections, 10 s: {} requests, {:.0} requests/s", run.requests, run.per_second);
        ensure!(run.requests > 200, "too few requests: {}", run.requests);
        // And the server still answers afterwards.
        expect_status(&web.raw(&get(FILE))?, 200, "after wrk")?;
        Ok(())
    })
}
