# The FTP server's checks from a real client (Python's ftplib, the standard
# library only), run by `itest::ftp` against the node and usable by hand:
#
#   ftp_check.py HOST PORT SITE_DIR            every command of ftpd, normal use
#   ftp_check.py HOST PORT SITE_DIR --hostile --second ADDR [--max-sessions N]
#                                              attacks, each followed by a fresh
#                                              normal session
#
# SITE_DIR is a local copy of the site the server serves: downloads are
# compared with it byte for byte, listings with its directories. One line
# per check ("ok ..."); the first failure prints "FAIL <check>: <why>" and
# exits 1. Every socket has a timeout: a hang is a failure, never a stuck test.
#
# The replies expected are ftpd's, as `ftpd/core/src/lib.rs` (the table) and
# `ftpd/core/src/session.rs` document them. ftpd closes a session sending
# more than 100 commands a second (bursts of 200): normal mode paces its
# commands (--pace, 15 a second by default; 0 for none); hostile mode does
# not, where the attack is the point.
#
# Validation (2026-12-07, all on loopback, the site a copy of the generated
# one's layout: 1,023 files, 0 B to 10 MB):
#   - strict (no --lenient), normal and --hostile --max-sessions 16: pass
#     against a throwaway host driver of ftpd-core itself (std sockets, a
#     thread per session, SO_OOBINLINE on the control connection as the
#     node's TCP ignores URG): the replies are ftpd's own.
#   - --lenient: pass against vsftpd 3.0.3 (anonymous, write_enable=NO,
#     port_enable=NO, max_clients=8, pasv 50000-50999: with 32 ports
#     vsftpd ran out, "500 OOPS: vsf_sysutil_bind", its passive ports in
#     TIME-WAIT) and, normal mode only, pyftpdlib 1.5.7 (which has MLSD and
#     MLST; --skip "RETR without PASV": it then connects in active mode and
#     the reply never came within the timeout).
#
# --lenient turns the checks where another server's replies differ from
# ftpd's documented ones into "diff" lines (listed again at the end) that do
# not fail. vsftpd 3.0.3 differs in:
#   - SYST before login: 530 (here 215); FEAT has no MLST, nor MLSD/MLST (500)
#   - TYPE X: 500 (here 504)
#   - SIZE in TYPE A: 213 with the stored size (here 550)
#   - RETR of a directory or nothing without PASV: 425 first (here 550: the
#     argument is checked before the listener)
#   - REST in TYPE A: RETR answers 550 (here REST counts converted bytes)
#   - REST past the end: 150, no data, 226 (here 554)
#   - ABOR while its send is blocked: no reply until the client closes the
#     data connection (here 426 then 226 at once)
#   - HELP lists no MLSD; PORT, EPRT, RNTO, SITE, PASV after EPSV ALL: 550
#     (here 502, 502, 503, 502, 503)
#   - PWD with an argument: 257 (here 501)
#   - hostile: an overlong line is "500 Input line too long." and the
#     connection closed (here 500, the rest of the line discarded, the
#     session goes on); a 2000-byte line is a command there (530) and an
#     overlong one here (limit 1032); refused user names and garbage lines
#     never close (here 421 after the 3rd and the 21st); a PASV flood is
#     answered forever (here 421 at the 21st unused listener); a foreign
#     data connection is accepted and fails the RETR with "425 Security:
#     Bad IP connecting." (here refused, the transfer waiting for the
#     control connection's peer).
# pyftpdlib 1.5.7 differs in: OPTS UTF8 ON 501; REST in TYPE A 501; PORT and
# EPRT 425 (it tries them); RNTO and SITE 550; CWD without argument 250;
# USER after login 331 (and logs out); EPSV ALL 220, then PASV 501.

import argparse
import ftplib
import os
import random
import re
import socket
import struct
import sys
import threading
import time

TIMEOUT = 60  # any single socket operation; a hang detector
LENIENT = False
DIFFS = []


class Failed(Exception):
    pass


def ok(name, detail=""):
    print("ok   %s%s" % (name, (": " + detail) if detail else ""), flush=True)


def fail(name, why):
    raise Failed("%s: %s" % (name, why))


def check(cond, name, why, known_diff=False):
    """Fails `name` unless `cond`; with --lenient, a known difference of
    the validation server is recorded and printed instead."""
    if cond:
        return True
    if known_diff and LENIENT:
        DIFFS.append("%s: %s" % (name, why))
        print("diff %s: %s" % (name, why), flush=True)
        return False
    fail(name, why)


def code(resp):
    return resp[:3]


class PacedFTP(ftplib.FTP):
    """ftplib.FTP keeping below a command rate (ftpd closes a session
    sending more than 100 a second, in bursts of 200)."""

    pace = 15.0
    _last = 0.0

    def putcmd(self, line):
        if self.pace > 0:
            wait = self._last + 1.0 / self.pace - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
        super().putcmd(line)


def cmd(ftp, line):
    """Sends `line`, returns the reply text whatever its code (ftplib's
    sendcmd raises on 4xx/5xx)."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def expect(ftp, line, want, name, known_diff=False, also=()):
    """Sends `line`; the reply's code must be `want` (or in `also`)."""
    resp = cmd(ftp, line)
    check(code(resp) == str(want) or code(resp) in also, name,
          "%r answered %r, expected %s" % (line, resp, want), known_diff)
    return resp


def connect(args, pace=None, login=True):
    ftp = PacedFTP()
    ftp.pace = args.pace if pace is None else pace
    welcome = ftp.connect(args.host, args.port, timeout=TIMEOUT)
    if code(welcome) != "220":
        fail("greeting", "expected 220, got %r" % welcome)
    if login:
        r = cmd(ftp, "USER anonymous")
        if code(r) != "331":
            fail("login", "USER anonymous: %r" % r)
        r = cmd(ftp, "PASS test@example.com")
        if code(r) != "230":
            fail("login", "PASS: %r" % r)
    return ftp


# --- the site ------------------------------------------------------------

class Site:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        if not os.path.isdir(self.root):
            fail("site", "%s is not a directory" % root)
        self.files = []  # (url, size)
        for dirpath, dirnames, filenames in os.walk(self.root):
            for f in filenames:
                p = os.path.join(dirpath, f)
                self.files.append(("/" + os.path.relpath(p, self.root), os.path.getsize(p)))
        self.files.sort()
        if not self.files:
            fail("site", "%s holds no file" % root)

    def local(self, url):
        return os.path.join(self.root, url.lstrip("/"))

    def read(self, url):
        with open(self.local(url), "rb") as f:
            return f.read()

    def entries(self, url):
        """name -> (is_dir, size) of the directory `url`."""
        d = self.local(url)
        out = {}
        for name in os.listdir(d):
            p = os.path.join(d, name)
            out[name] = (os.path.isdir(p), 0 if os.path.isdir(p) else os.path.getsize(p))
        return out

    def largest(self):
        return max(self.files, key=lambda f: f[1])

    def text_file(self):
        """A file of text lines with bare LF (an index.html of the site)."""
        for url, size in self.files:
            if url.endswith(".html") and size > 0 and b"\r" not in self.read(url) and b"\n" in self.read(url):
                return url
        fail("site", "no text file with LF line ends (an .html) in the site")

    def sample(self, n, seed=13):
        """Files of many sizes: the empty one, around 1460 and 4096
        multiples, random ones, the largest."""
        picks = []
        by_size = sorted(self.files, key=lambda f: f[1])
        picks.append(by_size[0])
        for target in (1, 1459, 1460, 1461, 2920, 4096, 8192, 65536, 300000):
            picks.append(min(self.files, key=lambda f: abs(f[1] - target)))
        rnd = random.Random(seed)
        picks.extend(rnd.sample(self.files, min(n, len(self.files))))
        picks.append(self.largest())
        seen, out = set(), []
        for p in picks:
            if p[0] not in seen:
                seen.add(p[0])
                out.append(p)
        return out


def to_ascii(data):
    """ftpd's TYPE A conversion (ftpd/core/src/ascii.rs): a LF not after a
    CR becomes CRLF; CRLF stays; a bare CR and every other byte pass."""
    out = bytearray()
    prev = None
    for b in data:
        if b == 0x0A and prev != 0x0D:
            out += b"\r\n"
        else:
            out.append(b)
        prev = b
    return bytes(out)


def mtime_str(path):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(os.path.getmtime(path))))


# --- data connections ----------------------------------------------------

def passive(ftp, args, extended=False, name="PASV"):
    """PASV or EPSV; the (host, port) to connect to (the control
    connection's peer, as ftplib does, after checking the 227's address)."""
    if extended:
        resp = cmd(ftp, "EPSV")
        check(code(resp) == "229", name, "EPSV answered %r" % resp)
        port = ftplib.parse229(resp, ftp.sock.getpeername())[1]
    else:
        resp = cmd(ftp, "PASV")
        check(code(resp) == "227", name, "PASV answered %r" % resp)
        host, port = ftplib.parse227(resp)
        check(host == ftp.sock.getpeername()[0], name,
              "227 gives address %s, the server is %s" % (host, ftp.sock.getpeername()[0]))
    check(args.pasv_min <= port <= args.pasv_max, name,
          "passive port %d outside %d-%d" % (port, args.pasv_min, args.pasv_max))
    return ftp.sock.getpeername()[0], port


def data_socket(addr, source=None, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.connect(addr)
    return s


def read_all(s):
    chunks = []
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        chunks.append(d)
    s.close()
    return b"".join(chunks)


def transfer(ftp, args, line, name, extended=False, rest=None):
    """PASV/EPSV, connect, `line` (RETR/LIST/...); the data and the final
    reply. Fails on a refusal of `line`."""
    addr = passive(ftp, args, extended, name)
    s = data_socket(addr)
    if rest is not None:
        expect(ftp, "REST %d" % rest, 350, name)
    resp = cmd(ftp, line)
    if code(resp) not in ("125", "150"):
        s.close()
        fail(name, "%r answered %r" % (line, resp))
    data = read_all(s)
    final = ftp.getmultiline()
    check(code(final) == "226", name, "after %r: %r, expected 226" % (line, final))
    return data


def same(name, got, want):
    if got == want:
        return
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    fail(name, "%d bytes, the file has %d; first difference at byte %d" % (len(got), len(want), at))


def retr(ftp, args, url, name, **kw):
    return transfer(ftp, args, "RETR " + url, name, **kw)


def lines(data):
    text = data.decode("utf-8", "surrogateescape")
    check(text == "" or text.endswith("\r\n"), "listing", "a listing not ending in CRLF: %r" % text[-40:])
    return [l for l in text.split("\r\n") if l]


LS_LINE = re.compile(r"^([d-])[rwxs-]{9}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\w{3}\s+\d+\s+[\d:]+\s(.+)$")


def parse_list(data, name):
    out = {}
    for l in lines(data):
        m = LS_LINE.match(l)
        check(m is not None, name, "not an `ls -l` line: %r" % l)
        out[m.group(3)] = (m.group(1) == "d", int(m.group(2)))
    return out


def parse_mlsd(data, name):
    out = {}
    for l in lines(data):
        facts, sep, fname = l.partition(" ")
        check(sep == " " and facts.endswith(";"), name, "not an MLSD line: %r" % l)
        f = dict(kv.split("=", 1) for kv in facts.rstrip(";").split(";"))
        f = {k.lower(): v for k, v in f.items()}
        if f.get("type") in ("cdir", "pdir"):
            continue
        out[fname] = f
    return out


# --- normal use ----------------------------------------------------------

def normal(args, site):
    # Before login: FEAT works (RFC 2389), RETR does not.
    ftp = connect(args, login=False)
    resp = expect(ftp, "FEAT", 211, "FEAT before login")
    expect(ftp, "SYST", 215, "SYST before login", known_diff=True)
    expect(ftp, "USER anonymous", 331, "USER anonymous")
    expect(ftp, "PASS guest@", 230, "PASS")
    ok("login", "anonymous: 331 then 230")

    resp = expect(ftp, "SYST", 215, "SYST")
    check(resp.startswith("215 UNIX Type: L8"), "SYST", "%r" % resp)
    ok("SYST", resp)

    feat = expect(ftp, "FEAT", 211, "FEAT")
    feats = [l.strip().upper() for l in feat.splitlines()[1:-1]]
    check(feat.splitlines()[-1].startswith("211 "), "FEAT", "not a closed multi-line reply: %r" % feat)
    for want in ("EPSV", "MDTM", "REST STREAM", "SIZE", "TVFS", "UTF8"):
        check(want in feats, "FEAT", "%s missing from %r" % (want, feats))
    mlst = [f for f in feats if f.startswith("MLST ")]
    if check(bool(mlst), "FEAT", "no MLST in %r" % feats, known_diff=True):
        for fact in ("TYPE*;", "SIZE*;", "MODIFY*;"):
            check(fact in mlst[0], "FEAT", "MLST lacks %s: %r" % (fact, mlst[0]))
    ok("FEAT", ", ".join(feats))
    expect(ftp, "OPTS UTF8 ON", 200, "OPTS UTF8 ON", known_diff=True)

    # Directories.
    resp = expect(ftp, "PWD", 257, "PWD")
    check(ftplib.parse257(resp) == "/", "PWD", "%r" % resp)
    subdirs = sorted(n for n, (d, _) in site.entries("/").items() if d)
    check(bool(subdirs), "CWD", "the site has no directory")
    top = subdirs[0]
    inner = sorted(n for n, (d, _) in site.entries("/" + top).items() if d)
    expect(ftp, "CWD " + top, 250, "CWD")
    check(ftplib.parse257(cmd(ftp, "PWD")) == "/" + top, "CWD", "PWD after CWD %s" % top)
    if inner:
        expect(ftp, "CWD " + inner[0], 250, "CWD")
        check(ftplib.parse257(cmd(ftp, "PWD")) == "/%s/%s" % (top, inner[0]), "CWD", "PWD two levels down")
        expect(ftp, "CDUP", 250, "CDUP", also=("200",))
        check(ftplib.parse257(cmd(ftp, "PWD")) == "/" + top, "CDUP", "PWD after CDUP")
    expect(ftp, "CDUP", 250, "CDUP", also=("200",))
    check(ftplib.parse257(cmd(ftp, "PWD")) == "/", "CDUP", "PWD after CDUP to the root")
    expect(ftp, "CDUP", 250, "CDUP at the root", also=("200",))
    check(ftplib.parse257(cmd(ftp, "PWD")) == "/", "CDUP at the root", "left the root")
    expect(ftp, "CWD ../../..", 250, "CWD .. at the root")
    check(ftplib.parse257(cmd(ftp, "PWD")) == "/", "CWD .. at the root", "left the root")
    expect(ftp, "CWD /no-such-directory", 550, "CWD to nothing")
    afile = next(u for u, _ in site.files if u.count("/") == 1)
    expect(ftp, "CWD " + afile, 550, "CWD to a file")
    if inner:
        expect(ftp, "CWD /%s/%s" % (top, inner[0]), 250, "CWD absolute")
        expect(ftp, "CWD /", 250, "CWD /")
    ok("PWD, CWD, CDUP", "/ -> /%s -> /%s/%s and back; .. stays at /; 550 for nothing and for a file"
       % (top, top, inner[0] if inner else ""))

    # TYPE, MODE, STRU.
    expect(ftp, "TYPE I", 200, "TYPE I")
    expect(ftp, "TYPE A", 200, "TYPE A")
    expect(ftp, "TYPE L 8", 200, "TYPE L 8")
    expect(ftp, "TYPE X", 504, "TYPE X", known_diff=True)
    expect(ftp, "MODE S", 200, "MODE S")
    expect(ftp, "MODE B", 504, "MODE B")
    expect(ftp, "STRU F", 200, "STRU F")
    expect(ftp, "STRU R", 504, "STRU R", known_diff=True)
    ok("TYPE, MODE, STRU", "A, I, L 8, S, F: 200; X, B, R: 504")

    # Listings of the root and of a directory two levels down.
    for url in ["/", "/" + top] + (["/%s/%s" % (top, inner[0])] if inner else []):
        want = site.entries(url)
        got = parse_list(transfer(ftp, args, "LIST " + url, "LIST"), "LIST")
        check(set(got) == set(want), "LIST", "%s: names %s, the site has %s"
              % (url, sorted(got)[:10], sorted(want)[:10]))
        for n, (is_dir, size) in want.items():
            check(got[n][0] == is_dir, "LIST", "%s/%s: directory? %s" % (url, n, got[n][0]))
            check(is_dir or got[n][1] == size, "LIST", "%s/%s: size %d, the file has %d" % (url, n, got[n][1], size))
        ok("LIST " + url, "%d entries, names, kinds and sizes as in the site" % len(got))
    got = parse_list(transfer(ftp, args, "LIST -la", "LIST -la"), "LIST -la")
    check(set(got) - {".", ".."} == set(site.entries("/")), "LIST -la", "names %s" % sorted(got)[:10])
    got = parse_list(transfer(ftp, args, "LIST " + afile, "LIST of a file"), "LIST of a file")
    check(len(got) == 1 and list(got)[0].endswith(afile.lstrip("/")), "LIST of a file", "%r" % got)
    ok("LIST -la, LIST of a file", "options skipped; one line for the file")

    # NLST of a named directory: its entries by path, relative when the
    # argument is (as `ls DIR`), so that each name can be retrieved.
    for url, shown in (("/", "/"), ("/" + top, "/" + top + "/"), (top, top + "/")):
        names = lines(transfer(ftp, args, "NLST " + url, "NLST"))
        want = set(shown + n for n in site.entries("/" + url.strip("/")))
        check(set(names) == want, "NLST " + url, "names %s, want %s" % (sorted(names)[:5], sorted(want)[:5]))
        ok("NLST " + url, "%d names, as %s<name>" % (len(names), shown))
    expect(ftp, "CWD /" + top, 250, "CWD")
    names = lines(transfer(ftp, args, "NLST", "NLST"))
    check(set(names) == set(site.entries("/" + top)), "NLST", "NLST in /%s: %s" % (top, sorted(names)[:5]))
    expect(ftp, "CWD /", 250, "CWD /")
    ok("NLST without argument", "the current directory's %d names" % len(names))

    # MLSD / MLST (RFC 3659).
    mlsd_ok = True
    for url in ["/", "/" + top]:
        addr = passive(ftp, args, name="MLSD")
        s = data_socket(addr)
        resp = cmd(ftp, "MLSD " + url)
        if code(resp) not in ("125", "150"):
            s.close()
            check(False, "MLSD", "%r" % resp, known_diff=True)
            mlsd_ok = False
            break
        got = parse_mlsd(read_all(s), "MLSD")
        final = ftp.getmultiline()
        check(code(final) == "226", "MLSD", "%r" % final)
        want = site.entries(url)
        check(set(got) == set(want), "MLSD", "%s: names %s, the site has %s" % (url, sorted(got)[:5], sorted(want)[:5]))
        for n, (is_dir, size) in want.items():
            f = got[n]
            check(f.get("type") == ("dir" if is_dir else "file"), "MLSD", "%s/%s: type %r" % (url, n, f.get("type")))
            if not is_dir:
                check(f.get("size") == str(size), "MLSD", "%s/%s: size %r, the file has %d" % (url, n, f.get("size"), size))
                check(re.fullmatch(r"\d{14}(\.\d+)?", f.get("modify", "")) is not None, "MLSD",
                      "%s/%s: modify %r" % (url, n, f.get("modify")))
                if args.mtime == "local":
                    want_m = mtime_str(site.local(url.rstrip("/") + "/" + n))
                    check(f["modify"][:14] == want_m, "MLSD", "%s/%s: modify %s, the file's mtime is %s"
                          % (url, n, f["modify"], want_m))
        ok("MLSD " + url, "%d entries: names, types, sizes, modify as in the site" % len(got))
    if mlsd_ok:
        expect(ftp, "MLSD " + afile, 501, "MLSD of a file")
        url, size = site.sample(1)[2]
        resp = expect(ftp, "MLST " + url, 250, "MLST")
        body = resp.splitlines()
        check(len(body) == 3 and body[1].startswith(" ") and body[2].startswith("250"), "MLST",
              "not a 250 reply with one entry: %r" % resp)
        facts = parse_mlsd((body[1][1:] + "\r\n").encode(), "MLST")
        f = list(facts.values())[0]
        check(f.get("type") == "file" and f.get("size") == str(size), "MLST", "%r for %d bytes" % (body[1], size))
        check(list(facts)[0] == url, "MLST", "names %r, not %r" % (list(facts)[0], url))
        resp = expect(ftp, "MLST /" + top, 250, "MLST of a directory")
        check("type=dir;" in resp.lower(), "MLST of a directory", "%r" % resp)
        expect(ftp, "MLST /no-such-file", 550, "MLST of nothing")
        r = expect(ftp, "OPTS MLST type;size;", 200, "OPTS MLST")
        resp = expect(ftp, "MLST " + url, 250, "MLST after OPTS MLST")
        check("modify=" not in resp.lower() and "size=%d;" % size in resp.lower(), "OPTS MLST",
              "MLST after OPTS MLST type;size; gave %r" % resp)
        expect(ftp, "OPTS MLST type;size;modify;", 200, "OPTS MLST")
        ok("MLSD of a file 501; MLST", "%s: %s; OPTS MLST selects facts" % (url, body[1].strip()))

    # SIZE and MDTM.
    expect(ftp, "TYPE I", 200, "TYPE I")
    for url, size in site.sample(8):
        resp = expect(ftp, "SIZE " + url, 213, "SIZE")
        check(resp.split()[1] == str(size), "SIZE", "%s: %r, the file has %d bytes" % (url, resp, size))
    expect(ftp, "SIZE /" + top, 550, "SIZE of a directory")
    expect(ftp, "SIZE /no-such-file", 550, "SIZE of nothing")
    ok("SIZE in TYPE I", "the sample's sizes; 550 for a directory and for nothing")
    expect(ftp, "TYPE A", 200, "TYPE A")
    expect(ftp, "SIZE " + afile, 550, "SIZE in TYPE A", known_diff=True)
    expect(ftp, "TYPE I", 200, "TYPE I")
    ok("SIZE in TYPE A", "550")
    for url, _ in site.sample(4):
        resp = expect(ftp, "MDTM " + url, 213, "MDTM")
        stamp = resp.split()[1]
        check(re.fullmatch(r"\d{14}(\.\d+)?", stamp) is not None, "MDTM", "%r" % resp)
        if args.mtime == "local":
            want = mtime_str(site.local(url))
            check(stamp[:14] == want, "MDTM", "%s: %s, the file's mtime is %s (UTC)" % (url, stamp, want))
    expect(ftp, "MDTM /" + top, 550, "MDTM of a directory")
    expect(ftp, "MDTM /no-such-file", 550, "MDTM of nothing")
    ok("MDTM", "YYYYMMDDHHMMSS%s; 550 for a directory and for nothing"
       % (", the files' mtimes" if args.mtime == "local" else ""))

    # RETR in TYPE I: the sample, the largest among them, by PASV and EPSV.
    total = 0
    for i, (url, size) in enumerate(site.sample(args.sample)):
        data = retr(ftp, args, url, "RETR", extended=(i % 2 == 1))
        same("RETR " + url, data, site.read(url))
        total += len(data)
    ok("RETR in TYPE I", "%d files (PASV and EPSV alternately), %d bytes, the largest %s (%d bytes), equal to the site"
       % (len(site.sample(args.sample)), total, site.largest()[0], site.largest()[1]))
    expect(ftp, "CWD /" + top, 250, "CWD")
    rel = next((u for u, _ in site.files if u.startswith("/%s/" % top) and u.count("/") == 2), None)
    if rel:
        same("RETR relative", retr(ftp, args, rel.rsplit("/", 1)[1], "RETR relative"), site.read(rel))
    expect(ftp, "CWD /", 250, "CWD /")
    # The argument is checked before the listener (vsftpd: 425 first).
    expect(ftp, "RETR /" + top, 550, "RETR of a directory", known_diff=True)
    expect(ftp, "RETR /no-such-file", 550, "RETR of nothing", known_diff=True)
    ok("RETR relative to the current directory; 550 for a directory and for nothing")
    # A 550 leaves the listener for the next try.
    addr = passive(ftp, args, name="RETR after a 550")
    s = data_socket(addr)
    expect(ftp, "RETR /no-such-file", 550, "RETR of nothing")
    resp = cmd(ftp, "RETR " + afile)
    check(code(resp) in ("125", "150"), "RETR after a 550", "%r" % resp)
    same("RETR after a 550", read_all(s), site.read(afile))
    final = ftp.getmultiline()
    check(code(final) == "226", "RETR after a 550", "%r" % final)
    ok("RETR after a 550", "the same listener serves the next RETR")
    if "RETR without PASV" in args.skip:
        print("skip RETR without PASV")
    else:
        resp = cmd(ftp, "RETR " + afile)
        if code(resp) in ("125", "150"):
            # An active-mode server connects to the client's default port.
            resp += " / " + ftp.getmultiline()
        check(code(resp) == "425", "RETR without PASV", "%r, expected 425" % resp, known_diff=True)
        ok("RETR without PASV", resp)

    # TYPE A: LF to CRLF.
    text = site.text_file()
    expect(ftp, "TYPE A", 200, "TYPE A")
    data = retr(ftp, args, text, "RETR in TYPE A")
    same("RETR %s in TYPE A" % text, data, to_ascii(site.read(text)))
    binary = next(u for u, s in site.files if s > 2000 and b"\r\n" in site.read(u) and b"\r" in site.read(u).replace(b"\r\n", b""))
    data = retr(ftp, args, binary, "RETR in TYPE A")
    if data != to_ascii(site.read(binary)):
        check(False, "RETR in TYPE A", "%s: %d bytes, expected %d (bare LF -> CRLF, CRLF and bare CR kept)"
              % (binary, len(data), len(to_ascii(site.read(binary)))), known_diff=True)
    # REST in TYPE A counts converted bytes (RFC 3659 §5.3).
    whole = to_ascii(site.read(text))
    n = len(whole) // 2
    addr = passive(ftp, args, name="REST in TYPE A")
    s = data_socket(addr)
    resp = expect(ftp, "REST %d" % n, 350, "REST in TYPE A", known_diff=True)
    if code(resp) == "350":
        resp = cmd(ftp, "RETR " + text)
    if check(code(resp) in ("125", "150"), "REST in TYPE A", "RETR answered %r" % resp, known_diff=True):
        same("REST %d in TYPE A" % n, read_all(s), whole[n:])
        final = ftp.getmultiline()
        check(code(final) == "226", "REST in TYPE A", "%r" % final)
    else:
        s.close()
        cmd(ftp, "ABOR")
    expect(ftp, "TYPE I", 200, "TYPE I")
    ok("TYPE A", "%s: %d bytes, LF sent as CRLF; %s (binary, CR and CRLF inside) as documented; REST counts converted bytes"
       % (text, len(whole), binary))

    # REST: part of a file, then the rest.
    url, size = site.largest()
    want = site.read(url)
    addr = passive(ftp, args, name="REST")
    s = data_socket(addr)
    resp = cmd(ftp, "RETR " + url)
    check(code(resp) in ("125", "150"), "REST", "%r" % resp)
    part = b""
    while len(part) < args.part:
        d = s.recv(min(1 << 16, args.part - len(part)))
        if not d:
            break
        part += d
    s.close()
    final = ftp.getmultiline()
    # The client closed early: 426 (or 226 if the server had already sent all).
    check(code(final) in ("426", "226"), "REST", "after closing the data connection early: %r" % final)
    check(part == want[:len(part)], "REST", "the first part differs")
    rest = transfer(ftp, args, "RETR " + url, "REST", rest=len(part))
    same("REST %d" % len(part), part + rest, want)
    rest = transfer(ftp, args, "RETR " + url, "REST at the end", rest=size)
    check(rest == b"", "REST at the end", "%d bytes after REST %d" % (len(rest), size))
    addr = passive(ftp, args, name="REST past the end")
    s = data_socket(addr)
    expect(ftp, "REST %d" % (size + 1), 350, "REST past the end")
    resp = cmd(ftp, "RETR " + url)
    if code(resp) in ("125", "150"):
        read_all(s)
        ftp.getmultiline()
        check(False, "REST past the end", "RETR answered %r, expected 554" % resp, known_diff=True)
    else:
        s.close()
        check(code(resp) == "554", "REST past the end", "RETR answered %r, expected 554" % resp)
        cmd(ftp, "ABOR")  # the listener stays after a refusal: drop it
    ok("REST", "%s: %d bytes read and the data connection closed (%s), REST %d + RETR gave the rest, equal to the file; REST at the end: nothing"
       % (url, len(part), code(final), len(part)))

    # ABOR during the transfer of the largest file.
    abort_transfer(ftp, args, site)
    expect(ftp, "NOOP", 200, "NOOP after ABOR")
    same("RETR after ABOR", retr(ftp, args, afile, "RETR after ABOR"), site.read(afile))
    resp = expect(ftp, "ABOR", 225, "ABOR without a transfer", also=("226",))
    ok("ABOR without a transfer", resp)

    # Other commands.
    expect(ftp, "NOOP", 200, "NOOP")
    resp = expect(ftp, "STAT", 211, "STAT")
    check(resp.splitlines()[-1].startswith("211 "), "STAT", "%r" % resp)
    resp = expect(ftp, "HELP", 214, "HELP")
    for verb in ("RETR", "PASV", "EPSV", "MLSD"):
        check(verb in resp, "HELP", "%s not in %r" % (verb, resp), known_diff=(verb == "MLSD"))
    expect(ftp, "ALLO 100", 202, "ALLO")
    ok("NOOP, STAT, HELP, ALLO", "200, 211, 214, 202")
    expect(ftp, "QUIT", 221, "QUIT")
    ok("QUIT", "221")
    ftp.close()

    refusals(args, site)
    epsv_all(args, site)
    # ftplib's own helpers, as a script would use them.
    ftp = PacedFTP()
    ftp.pace = args.pace
    ftp.connect(args.host, args.port, timeout=TIMEOUT)
    ftp.login()
    names = ftp.nlst()
    check(set(names) == set(site.entries("/")), "ftplib nlst", "%s" % sorted(names)[:5])
    got = []
    ftp.retrbinary("RETR " + afile, got.append)
    same("ftplib retrbinary", b"".join(got), site.read(afile))
    if mlsd_ok:
        entries = dict(ftp.mlsd("/"))
        check(set(entries) == set(site.entries("/")), "ftplib mlsd", "%s" % sorted(entries)[:5])
    # ftplib's nlst and mlsd leave the session in TYPE A (retrlines sends
    # it), where SIZE is 550 (as pyftpdlib and ProFTPD do): TYPE I first.
    ftp.voidcmd("TYPE I")
    check(ftp.size(afile) == os.path.getsize(site.local(afile)), "ftplib size", "")
    ftp.quit()
    ok("ftplib login, nlst, retrbinary, mlsd, size, quit")


def abort_transfer(ftp, args, site):
    """RETR of the largest file with a small receive buffer (the transfer
    cannot end before the ABOR), read a little, ABOR with ftp.abort()."""
    url, size = site.largest()
    addr = passive(ftp, args, name="ABOR")
    s = data_socket(addr, rcvbuf=4096)
    resp = cmd(ftp, "RETR " + url)
    check(code(resp) in ("125", "150"), "ABOR", "%r" % resp)
    got = b""
    while len(got) < 100000:
        d = s.recv(1 << 16)
        if not d:
            break
        got += d
    check(got == site.read(url)[:len(got)], "ABOR", "the data before ABOR differs from the file")
    # ftplib sends "ABOR\r\n" with MSG_OOB (the urgent byte is the LF; an
    # RFC 959 server also sees the Telnet IP/DM). It reads one reply. The
    # data connection stays open and unread: the server must answer while
    # its send is blocked. (vsftpd does not: blocked in its write, it
    # answers once the client closes the data connection, which a watchdog
    # does after 15 s; a known difference.)
    fired = []

    def close_data():
        fired.append(True)
        # A reset, so that the server's blocked write fails at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    watchdog = threading.Timer(15, close_data)
    watchdog.start()
    try:
        first = ftp.abort()
    finally:
        watchdog.cancel()
    if fired:
        check(False, "ABOR", "no reply to ABOR until the client closed the data connection", known_diff=True)
    replies = [first]
    if code(first) == "426":
        # The aborted transfer's 426, then the ABOR's own 226 (RFC 959).
        second = ftp.getmultiline()
        replies.append(second)
        check(code(second) in ("226", "225"), "ABOR", "after 426: %r, expected 226" % second)
    else:
        # The transfer ended before the ABOR arrived: its 226, then 225.
        check(code(first) in ("226", "225"), "ABOR", "ftp.abort() read %r" % first)
        if code(first) == "226":
            ftp.sock.settimeout(5)
            try:
                replies.append(ftp.getmultiline())
            except (socket.timeout, TimeoutError):
                pass
            ftp.sock.settimeout(TIMEOUT)
    rest = b""
    try:
        if fired:
            raise ConnectionResetError
        s.settimeout(10)
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            rest += d
    except (ConnectionResetError, socket.timeout, TimeoutError):
        pass
    s.close()
    check(len(got) + len(rest) < size, "ABOR", "the whole file arrived despite ABOR")
    ok("ABOR", "%s after %d bytes: %s; the data connection was closed after %d more bytes"
       % (url, len(got), " / ".join(r.splitlines()[0] for r in replies), len(rest)))


def refusals(args, site):
    """Refused commands, in a session of their own (ftpd closes a session
    after more than 20 replies 500-504 or 530)."""
    ftp = connect(args)
    afile = next(u for u, _ in site.files if u.count("/") == 1)
    expect(ftp, "PORT 127,0,0,1,200,10", 502, "PORT", known_diff=True)
    expect(ftp, "EPRT |1|127.0.0.1|51210|", 502, "EPRT", known_diff=True)
    ok("PORT, EPRT", "502: active mode is not offered")
    for line in ("STOR upload.bin", "STOU", "APPE " + afile, "DELE " + afile, "MKD newdir",
                 "RMD /d00", "RNFR " + afile, "XMKD newdir", "XRMD /d00"):
        expect(ftp, line, 550, line.split()[0], known_diff=True)
    expect(ftp, "RNTO x", 503, "RNTO", known_diff=True)
    ok("write commands", "STOR, STOU, APPE, DELE, MKD, RMD, RNFR: 550; RNTO: 503")
    expect(ftp, "SITE CHMOD 777 " + afile, 502, "SITE", known_diff=True)
    expect(ftp, "XYZZY", 500, "unknown command")
    expect(ftp, "CWD", 501, "CWD without argument", known_diff=True)
    expect(ftp, "PWD extra", 501, "PWD with an argument", known_diff=True)
    expect(ftp, "EPSV 2", 522, "EPSV 2")
    ok("SITE 502, unknown 500, missing/extra argument 501, EPSV 2 522")
    # Still serving after the refusals.
    same("RETR after refusals", retr(ftp, args, afile, "RETR after refusals"), site.read(afile))
    expect(ftp, "USER someone", 530, "USER after login", known_diff=True)
    expect(ftp, "PASS again", 230, "PASS after login", known_diff=True)
    ok("USER after login 530, PASS after login 230")
    expect(ftp, "QUIT", 221, "QUIT")
    ftp.close()
    ok("the session serves after the refusals", "%s intact; QUIT 221" % afile)


def epsv_all(args, site):
    ftp = connect(args)
    expect(ftp, "EPSV ALL", 200, "EPSV ALL", known_diff=True)
    resp = cmd(ftp, "PASV")
    check(code(resp) == "503", "PASV after EPSV ALL", "%r, expected 503" % resp, known_diff=True)
    afile = next(u for u, _ in site.files if u.count("/") == 1)
    same("EPSV after EPSV ALL", retr(ftp, args, afile, "EPSV after EPSV ALL", extended=True), site.read(afile))
    ftp.quit()
    ok("EPSV ALL", "200; PASV then 503; EPSV serves")


# --- hostile use ---------------------------------------------------------

def fresh_session(args, site, after):
    """A normal session after an attack: login, a listing, two files."""
    deadline = time.monotonic() + 30
    while True:
        try:
            ftp = connect(args)
            break
        except (OSError, Failed, ftplib.Error, EOFError) as e:
            # A session slot is freed once the server has seen the close.
            if time.monotonic() > deadline:
                fail("fresh session after " + after, "cannot log in: %s" % e)
            time.sleep(0.5)
    expect(ftp, "TYPE I", 200, "fresh session after " + after)
    names = lines(transfer(ftp, args, "NLST", "fresh session after " + after))
    check(set(names) == set(site.entries("/")), "fresh session after " + after, "NLST / gives %s" % names[:5])
    for url, _ in (site.sample(1)[3], site.files[0]):
        same("fresh session after " + after, retr(ftp, args, url, "fresh session after " + after), site.read(url))
    expect(ftp, "QUIT", 221, "fresh session after " + after)
    ftp.close()
    ok("fresh session after " + after, "login, NLST, 2 files intact, QUIT")


class Raw:
    """A control connection of bytes, for what ftplib will not send."""

    def __init__(self, args, source=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(TIMEOUT)
        if source:
            self.s.bind((source, 0))
        self.s.connect((args.host, args.port))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def reply(self, timeout=TIMEOUT):
        """The next reply (multi-line joined), '' when the server closed."""
        self.s.settimeout(timeout)
        text = []
        while True:
            while b"\n" not in self.buf:
                d = self.s.recv(4096)
                if not d:
                    return "\n".join(text) if text else ""
                self.buf += d
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            text.append(line)
            if len(text) == 1 and line[3:4] != "-":
                return line
            if len(text) > 1 and line[:3] == text[0][:3] and line[3:4] == " ":
                return "\n".join(text)

    def closed(self, timeout=10):
        """Whether the server closes the connection within `timeout` (any
        replies before the close are read and dropped)."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(4096)
                if not d:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False

    def close(self):
        self.s.close()


def overlong(args, site):
    """10,000 bytes without a line end, then QUIT: a 500 (or 421 and the
    close), then 221 and the close; never a hang."""
    for size, then in ((10000, b"\r\nQUIT\r\n"), (100000, b"\r\nQUIT\r\n"), (2000, b"\r\nQUIT\r\n")):
        r = Raw(args)
        check(code(r.reply()) == "220", "overlong line", "no greeting")
        try:
            r.send(b"A" * size)
            r.send(then)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed after the 500: its replies are still read
        seen = []
        closed = False
        while True:
            try:
                resp = r.reply(timeout=20)
            except (socket.timeout, TimeoutError):
                fail("overlong line", "%d bytes then QUIT: no answer within 20 s after %r" % (size, seen))
            except ConnectionResetError:
                closed = True
                break
            if resp == "":
                closed = True
                break
            seen.append(code(resp))
            if code(resp) == "421":
                check(r.closed(), "overlong line", "421 but the connection stays open")
                closed = True
                break
            if code(resp) == "221":
                check(r.closed(), "overlong line", "221 but the connection stays open")
                break
            check(code(resp) == "500", "overlong line", "%d bytes: %r, expected 500 or 421" % (size, resp),
                  known_diff=True)
        many = len(seen) > 2
        check(not many, "overlong line", "%d bytes: %d replies %s (one 500 and the rest discarded expected)"
              % (size, len(seen), sorted(set(seen))), known_diff=True)
        check(closed or "500" in seen, "overlong line", "%d bytes: no 500 before the QUIT's 221" % size,
              known_diff=True)
        ok("overlong line", "%d bytes without a line end, then QUIT: %s%s"
           % (size, ", ".join(seen[:4]) + (" ... (%d replies)" % len(seen) if many else ""),
              ", then closed" if closed else ""))
        r.close()
    # A command with an overlong argument, logged in.
    r = Raw(args)
    r.reply()
    r.send(b"USER anonymous\r\nPASS x\r\n")
    r.reply(), r.reply()
    r.send(b"RETR /" + b"a/" * 3000 + b"x\r\nNOOP\r\n")
    first = r.reply(timeout=20)
    check(code(first) in ("500", "550", "421"), "overlong RETR", "%r" % first)
    if code(first) != "421":
        nxt = r.reply(timeout=20)
        check(code(nxt) in ("200", "500") or nxt == "", "overlong RETR", "then %r" % nxt)
        first += " then " + (code(nxt) or "closed")
    ok("overlong RETR argument (6 KB), then NOOP", first)
    r.close()
    # Endless bytes: the server must not buffer them (send 1 MB, no LF).
    r = Raw(args)
    r.reply()
    sent = 0
    try:
        r.s.settimeout(20)
        for _ in range(64):
            r.send(b"B" * 16384)
            sent += 16384
    except (BrokenPipeError, ConnectionResetError):
        pass
    except (socket.timeout, TimeoutError):
        fail("1 MB without a line end", "the server stopped reading after %d bytes (a stalled send)" % sent)
    ok("1 MB without a line end", "%d bytes accepted or the connection closed; no stall" % sent)
    r.close()
    fresh_session(args, site, "overlong lines")


def out_of_order(args, site):
    r = Raw(args)
    check(code(r.reply()) == "220", "out of order", "no greeting")
    for line, want in ((b"RETR /index.html", "530"), (b"LIST", "530"), (b"CWD /", "530"), (b"PASV", "530"),
                       (b"PASS secret", "503"), (b"SIZE /index.html", "530")):
        r.send(line + b"\r\n")
        resp = r.reply(timeout=20)
        check(code(resp) == want, "out of order", "%r before login: %r, expected %s" % (line, resp, want),
              known_diff=(line == b"PASS secret"))
    r.send(b"USER anonymous\r\nPASS x\r\nPWD\r\n")
    got = [code(r.reply(timeout=20)) for _ in range(3)]
    check(got == ["331", "230", "257"], "out of order", "login after them: %s" % got)
    r.close()
    ok("out of order", "RETR, LIST, CWD, PASV, SIZE before login: 530; PASS before USER: 503; then login works")
    # Failed logins: the 3rd refused name closes.
    r = Raw(args)
    r.reply()
    got = []
    for i in range(5):
        try:
            r.send(b"USER mallory\r\n")
            resp = r.reply(timeout=20)
        except (BrokenPipeError, ConnectionResetError):
            resp = ""
        got.append(code(resp) or "closed")
        if resp == "" or code(resp) == "421":
            break
    check(got[:2] == ["530", "530"], "failed logins", "%s" % got, known_diff=True)
    check(got[-1] in ("421", "closed"), "failed logins", "5 refused user names, still open: %s" % got, known_diff=True)
    r.close()
    ok("failed logins", " ".join(got))
    # Garbage lines: 5xx each; ftpd closes after the 21st (421).
    r = Raw(args)
    r.reply()
    rnd = random.Random(7)
    got = []
    for i in range(40):
        line = bytes(rnd.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ \x00\x01\x7f\xff\xfe") for _ in range(rnd.randrange(1, 40)))
        try:
            r.send(line.replace(b"\n", b"") + b"\r\n")
            resp = r.reply(timeout=20)
        except (BrokenPipeError, ConnectionResetError):
            resp = ""
        got.append(code(resp) or "closed")
        if resp == "" or code(resp) == "421":
            break
        check(resp[:1] in ("5", "2", "3"), "garbage lines", "%r answered %r" % (line, resp))
    check(got[-1] in ("421", "closed"), "garbage lines", "40 garbage lines, still open", known_diff=True)
    r.close()
    ok("garbage lines", "%d answered (%s), then %s" % (len(got), ", ".join(sorted(set(got))), got[-1]))
    # Telnet IP/DM before ABOR; a command split across sends.
    r = Raw(args)
    r.reply()
    r.send(b"USER anonymous\r\nPASS x\r\n")
    r.reply(), r.reply()
    r.send(b"NO")
    time.sleep(1)
    r.send(b"OP\r\n")
    check(code(r.reply(timeout=20)) == "200", "split command", "NO + OP")
    r.send(b"\xff\xf4\xff\xf2ABOR\r\n")
    resp = r.reply(timeout=20)
    check(code(resp) in ("225", "226"), "Telnet IP DM ABOR", "%r" % resp)
    r.close()
    ok("a line in two sends; IAC IP IAC DM ABOR", code(resp))
    fresh_session(args, site, "commands out of order")


def pasv_flood(args, site, count):
    r = Raw(args)
    r.reply()
    r.send(b"USER anonymous\r\nPASS x\r\n")
    r.reply(), r.reply()
    answered, last = 0, ""
    ports = set()
    for i in range(count):
        try:
            r.send(b"PASV\r\n")
            resp = r.reply(timeout=20)
        except (BrokenPipeError, ConnectionResetError):
            resp = ""
        except (socket.timeout, TimeoutError):
            fail("PASV flood", "PASV %d: no answer within 20 s" % (i + 1))
        last = resp
        if resp == "":
            break
        if code(resp) == "421":
            check(r.closed(), "PASV flood", "421 but the connection stays open")
            break
        check(code(resp) in ("227", "425"), "PASV flood", "PASV %d: %r" % (i + 1, resp))
        if code(resp) == "227":
            ports.add(ftplib.parse227(resp)[1])
        answered += 1
    check(answered == count or code(last) == "421" or last == "", "PASV flood", "ended with %r" % last)
    check(answered < count, "PASV flood", "%d PASV answered, never closed" % count, known_diff=True)
    r.close()
    ok("PASV flood", "%d of %d answered (%d distinct ports), then %s"
       % (answered, count, len(ports), "421 and closed" if code(last) == "421" else "closed" if last == "" else "still open"))
    # EPSV too, sent without waiting for the replies.
    r = Raw(args)
    r.reply()
    r.send(b"USER anonymous\r\nPASS x\r\n")
    r.reply(), r.reply()
    try:
        r.send(b"EPSV\r\n" * count)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = {}
    while True:
        try:
            resp = r.reply(timeout=20)
        except (socket.timeout, TimeoutError):
            fail("EPSV flood", "no reply or close within 20 s after %s" % got)
        except ConnectionResetError:
            resp = ""
        if resp == "":
            break
        got[code(resp)] = got.get(code(resp), 0) + 1
        if code(resp) == "421" or sum(got.values()) == count:
            break
    r.close()
    ok("EPSV flood (pipelined)", "%d EPSV sent at once: %s" % (count, got))
    fresh_session(args, site, "the PASV flood")


def foreign_data(args, site):
    """A data connection to a passive port from another address is refused;
    the transfer goes to the control connection's peer only."""
    url, size = site.sample(1)[5]
    want = site.read(url)
    ftp = connect(args)
    expect(ftp, "TYPE I", 200, "foreign data connection")
    addr = passive(ftp, args, name="foreign data connection")

    def intrude(when):
        try:
            t = data_socket(addr, source=args.second)
        except (ConnectionRefusedError, ConnectionResetError, socket.timeout, TimeoutError) as e:
            return "refused (%s)" % type(e).__name__
        t.settimeout(5)
        got = b""
        try:
            while True:
                d = t.recv(65536)
                if not d:
                    break
                got += d
        except (ConnectionResetError, socket.timeout, TimeoutError):
            pass
        t.close()
        check(got == b"", "foreign data connection", "%d bytes of %s went to %s (%s)" % (len(got), url, args.second, when))
        return "accepted then closed with no data"

    before = intrude("before RETR")
    resp = cmd(ftp, "RETR " + url)
    if code(resp) == "425":
        check(False, "foreign data connection", "RETR answered %r: the foreign connection took the transfer's place"
              % resp, known_diff=True)
        same("foreign data connection", retr(ftp, args, url, "foreign data connection"), want)
        during = "(not tried)"
    else:
        check(code(resp) == "150", "foreign data connection", "RETR answered %r, expected 150 (no data connection yet)" % resp)
        during = intrude("during RETR")
        s = data_socket(addr)
        same("foreign data connection", read_all(s), want)
        final = ftp.getmultiline()
        check(code(final) == "226", "foreign data connection", "%r" % final)
    ftp.quit()
    ok("foreign data connection", "from %s before RETR: %s; during: %s; %s (%d bytes) went to the control peer intact"
       % (args.second, before, during, url, size))
    # A control connection from the second address cannot use the first's
    # listener either.
    other = PacedFTP()
    other.pace = args.pace
    try:
        other.source_address = (args.second, 0)
        other.connect(args.host, args.port, timeout=TIMEOUT, source_address=(args.second, 0))
        other.login()
        got = []
        other.retrbinary("RETR " + url, got.append)
        same("session from the second address", b"".join(got), want)
        other.quit()
        ok("session from the second address", "served normally")
    except (OSError, ftplib.Error) as e:
        fail("session from the second address", str(e))
    fresh_session(args, site, "the foreign data connection")


def many_sessions(args, site):
    limit = args.max_sessions
    attempts = (limit + 8) if limit else args.session_attempts
    held, refused, other = [], [], []
    for i in range(attempts):
        try:
            r = Raw(args)
        except OSError as e:
            fail("many sessions", "connection %d (%d greeted so far): %s; a full server answers 421"
                 % (i + 1, len(held), e))
        try:
            resp = r.reply(timeout=20)
        except (socket.timeout, TimeoutError):
            fail("many sessions", "connection %d: no greeting and no 421 within 20 s" % (i + 1))
        except ConnectionResetError:
            resp = ""
        if code(resp) == "220":
            held.append(r)
        elif code(resp) == "421":
            check(r.closed(), "many sessions", "connection %d: 421 but left open" % (i + 1))
            refused.append(i + 1)
            r.close()
        else:
            other.append((i + 1, resp))
            r.close()
    check(not other, "many sessions", "neither 220 nor 421: %s" % other[:3])
    if limit:
        check(len(held) == limit, "many sessions", "%d sessions greeted with a limit of %d" % (len(held), limit))
        check(len(refused) == attempts - limit, "many sessions", "%d refused" % len(refused))
    # The held ones all work at once.
    for r in held:
        r.send(b"USER anonymous\r\nPASS x\r\nNOOP\r\n")
    for n, r in enumerate(held):
        got = [code(r.reply(timeout=30)) for _ in range(3)]
        check(got == ["331", "230", "200"], "many sessions", "held session %d: %s" % (n, got))
    for r in held:
        r.send(b"QUIT\r\n")
        r.close()
    ok("many sessions", "%d connections: %d greeted and logged in, %d refused with 421 and closed%s"
       % (attempts, len(held), len(refused), (" (from connection %d)" % refused[0]) if refused else ""))
    time.sleep(1)
    fresh_session(args, site, "many sessions")


def hostile(args, site):
    if not args.second:
        fail("hostile", "--second ADDR (another local address to connect from) is needed")
    fresh_session(args, site, "nothing (baseline)")
    overlong(args, site)
    out_of_order(args, site)
    pasv_flood(args, site, args.pasv_count)
    foreign_data(args, site)
    many_sessions(args, site)


def main():
    global LENIENT
    p = argparse.ArgumentParser(description="FTP checks against ftpd's documented replies")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("site", help="a local copy of the site the server serves")
    p.add_argument("--hostile", action="store_true", help="the attacks instead of normal use")
    p.add_argument("--second", help="(hostile) another local address, for a foreign data connection")
    p.add_argument("--max-sessions", type=int, default=0,
                   help="(hostile) the server's session limit; 0: unknown, open --session-attempts and judge the refusals")
    p.add_argument("--session-attempts", type=int, default=64)
    p.add_argument("--pasv-count", type=int, default=3000)
    p.add_argument("--pasv-min", type=int, default=50000)
    p.add_argument("--pasv-max", type=int, default=50031)
    p.add_argument("--pace", type=float, default=15.0, help="commands a second at most (0: no limit)")
    p.add_argument("--sample", type=int, default=12, help="random files to RETR besides the chosen sizes")
    p.add_argument("--part", type=int, default=1000000, help="bytes of the REST check's first part")
    p.add_argument("--mtime", choices=("local", "any"), default="local",
                   help="MDTM/modify equal to the local files' mtimes, or just well formed")
    p.add_argument("--skip", action="append", default=[], help="(validation) a check not to run, by name")
    p.add_argument("--lenient", action="store_true", help="validation against another server: known differences do not fail")
    args = p.parse_args()
    LENIENT = args.lenient
    socket.setdefaulttimeout(TIMEOUT)
    started = time.monotonic()
    try:
        site = Site(args.site)
        if args.hostile:
            hostile(args, site)
        else:
            normal(args, site)
    except Failed as e:
        print("FAIL %s" % e, flush=True)
        sys.exit(1)
    except (OSError, EOFError, ftplib.Error) as e:
        print("FAIL unexpected %s: %s" % (type(e).__name__, e), flush=True)
        raise
    if DIFFS:
        print("lenient: %d known difference(s) from ftpd's documented replies:" % len(DIFFS))
        for d in DIFFS:
            print("  - " + d)
    print("all %s checks passed in %.1f s" % ("hostile" if args.hostile else "normal", time.monotonic() - started))


if __name__ == "__main__":
    main()
