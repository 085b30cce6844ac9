//! The web node (`tests/systems/web.system`: the network node plus the
//! HTTP server PD `httpd`), judged from outside with `curl` and small
//! Python clients, in a network namespace on a TAP device as the node
//! tests do ([`super::node`]). Needs root.

use super::node::{no_faults, run, Netns, NODE_IP, TOOLS};
use super::{build, Test, LINE_TIMEOUT};
use crate::deps::{self, Package};
use crate::kernel::KernelConfig;
use crate::qemu::Session;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        ("web: curl gets the page, a redirect, a range and the 1 MiB file intact; 50 parallel curls all succeed", pages_and_parallel),
        ("web: connections beyond the pool are refused at once while open ones keep working; a freed slot is reused", pool_limit),
    ]
}

const SYSTEM: &str = "tests/systems/web.system";
/// The pool the description sizes: a 2 MiB region of 32 KiB connections.
const POOL: usize = 64;
const CURL: Package = Package { name: "curl", probe: "curl" };

/// Boots the web node in a fresh namespace, waits for httpd, runs `check`.
fn with_web(ws: &Path, check: impl FnOnce(&Netns, &mut Session) -> Result<()>) -> Result<()> {
    deps::ensure_packages(TOOLS)?;
    deps::ensure_packages(&[CURL])?;
    let built = build(ws, SYSTEM, KernelConfig::Debug)?;
    let ns = Netns::new()?;
    let mut s = ns.boot(&built)?;
    let result = s
        .expect("[httpd] serving", LINE_TIMEOUT)
        .map(|(line, _)| println!("   {line}"))
        .and_then(|()| check(&ns, &mut s));
    if result.is_err() {
        s.drain(Duration::from_millis(500), Duration::from_secs(2));
        println!("   serial output:\n{}", s.transcript.iter().map(|l| format!("   | {l}")).collect::<Vec<_>>().join("\n"));
    }
    drop(s);
    drop(ns);
    result
}

/// `curl` in the namespace with `args`; its stdout.
fn curl(ns: &Netns, args: &[&str]) -> Result<String> {
    run(ns.command("curl").args(["-sS", "-m", "60"]).args(args))
}

/// Byte `i` of the built-in site's generated `/big.txt`
/// (`httpd::site::pattern_byte`).
fn pattern_byte(i: u64) -> u8 {
    let (line, column) = (i / 64, i % 64);
    match column {
        0..=7 => b"0123456789abcdef"[((line >> (4 * (7 - column))) & 15) as usize],
        8 => b' ',
        63 => b'\n',
        _ => b'a' + ((line + column) % 26) as u8,
    }
}

fn pages_and_parallel(ws: &Path) -> Result<()> {
    with_web(ws, |ns, s| {
        let url = format!("http://{NODE_IP}/");
        let page = curl(ns, &["-i", &url])?;
        ensure!(page.starts_with("HTTP/1.1 200 OK"), "GET /: {page}");
        ensure!(page.contains("Served by httpd on seL4"), "GET /: {page}");
        println!("   GET /: {}", page.lines().next().unwrap_or(""));

        let redirect = curl(ns, &["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", &format!("{url}docs")])?;
        ensure!(redirect == format!("301 {url}docs/"), "GET /docs: {redirect}");
        let range = curl(ns, &["-i", "-H", "Range: bytes=64-72", &format!("{url}big.txt")])?;
        ensure!(range.starts_with("HTTP/1.1 206") && range.ends_with("\r\n\r\n00000001 "), "range: {range:?}");

        let file = std::env::temp_dir().join(format!("{}-big.txt", std::process::id()));
        curl(ns, &["-o", &file.to_string_lossy(), &format!("{url}big.txt")])?;
        let body = std::fs::read(&file).context("reading the downloaded file")?;
        let _ = std::fs::remove_file(&file);
        ensure!(body.len() == 1 << 20, "big.txt: {} bytes", body.len());
        let bad = body.iter().enumerate().position(|(i, &b)| b != pattern_byte(i as u64));
        ensure!(bad.is_none(), "big.txt differs at byte {bad:?}");
        println!("   big.txt: {} bytes, all as generated", body.len());

        let parallel = format!(
            "seq 50 | xargs -P 50 -I{{}} curl -s -m 60 -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' {url}big.txt"
        );
        let out = ns.command("sh").args(["-c", &parallel]).stdin(Stdio::null()).output()?;
        let lines = String::from_utf8_lossy(&out.stdout).into_owned();
        let ok = lines.lines().filter(|l| *l == "200 1048576").count();
        ensure!(ok == 50, "50 parallel downloads of big.txt: {ok} complete:\n{lines}");
        println!("   50 parallel downloads of 1 MiB: all 200 and complete");
        no_faults(s)
    })
}

/// Fills the pool with idle connections, then checks that one more is
/// refused at once, that a pooled connection still gets answers, and that
/// closing one frees a slot for a newcomer.
const POOL_FILLER: &str = r#"
import socket, sys, time
host, pool = sys.argv[1], int(sys.argv[2])
held = []
for i in range(pool):
    s = socket.create_connection((host, 80), timeout=10)
    held.append(s)
time.sleep(1)  # the server has seen every handshake complete
extra = socket.socket()
extra.settimeout(10)
t = time.time()
try:
    extra.connect((host, 80))
    sys.exit("connection %d was accepted with a pool of %d" % (pool + 1, pool))
except ConnectionRefusedError:
    print("refused after %.0f ms" % ((time.time() - t) * 1000))
def get(s):
    s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: n\r\n\r\n")
    data = b""
    while not data.endswith(b"hello from the seL4 web node\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed early: %r" % data)
        data += chunk
    return data.split(b"\r\n")[0].decode()
print("pooled connections answer:", get(held[0]), "/", get(held[-1]))
held.pop().close()
time.sleep(1)
newcomer = socket.create_connection((host, 80), timeout=10)
print("after one closed, a newcomer gets:", get(newcomer))
"#;

fn pool_limit(ws: &Path) -> Result<()> {
    with_web(ws, |ns, s| {
        let out = ns.python(POOL_FILLER, &[NODE_IP, &POOL.to_string()])?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            println!("   {line}");
        }
        ensure!(text.contains("refused after"), "{text}");
        ensure!(text.contains("answer: HTTP/1.1 200 OK / HTTP/1.1 200 OK"), "{text}");
        ensure!(text.contains("newcomer gets: HTTP/1.1 200 OK"), "{text}");
        no_faults(s)
    })
}
