//! Sessions over small images built with `fs_format::build`: scripted
//! dialogues (each step naming the rule it checks) and seeded property
//! tests that hostile input never panics and always gets well-formed
//! replies.

use crate::command::{Input, LineReader};
use crate::listing::{Facts, Format, ListCursor};
use crate::reply::{well_formed, Reply};
use crate::session::*;
use fs_format::build::{plan, Planned};
use fs_format::{Image, MAX_BLOCKS};
use lib_test_rng::Rng;
use std::string::{String, ToString};
use std::vec::Vec;

/// A file of a test site.
pub struct SiteFile<'a> {
    pub path: &'a str,
    pub data: &'a [u8],
    pub modified: u64,
}

impl<'a> SiteFile<'a> {
    /// `path` with `data`, Last-Modified 2023-11-14 22:13:20 UTC.
    pub fn new(path: &'a str, data: &'a [u8]) -> SiteFile<'a> {
        SiteFile { path, data, modified: 1_700_000_000 }
    }
}

/// An image's head for `files` (the session reads only the index; data
/// hashes and piece sums are not checked by `Image::parse`, so they are
/// left zero).
pub fn site(files: &[SiteFile<'_>]) -> Vec<u8> {
    let planned: Vec<Planned> = files
        .iter()
        .enumerate()
        .map(|(i, f)| Planned {
            path: f.path.to_string(),
            size: f.data.len() as u64,
            last_modified: f.modified,
            sha256: [0; 32],
            sums: std::vec![0; fs_format::sums::piece_count(f.data.len() as u64) as usize * 2],
            flags: 0,
            span_leader: i,
        })
        .collect();
    plan(&planned, MAX_BLOCKS).unwrap().head
}

const SERVER: [u8; 4] = [192, 0, 2, 1];
const PEER: [u8; 4] = [198, 51, 100, 7];
const SEC: u64 = 1_000_000_000;

fn sample_site() -> Vec<u8> {
    site(&[
        SiteFile::new("/index.html", b"<h1>hi</h1>\n"),
        SiteFile::new("/docs/intro.txt", b"line one\nline two\n"),
        SiteFile::new("/docs/a/deep.txt", b"deep"),
        SiteFile::new("/%2e%2e", b"a file named %2e%2e"),
        SiteFile { path: "/old.bin", data: &[7; 5000], modified: 784_111_777 },
    ])
}

/// A session and its clock; `send` plays one command line.
struct Client<'i> {
    session: Session,
    image: Image<'i>,
    now: u64,
    reply: Reply,
}

impl<'i> Client<'i> {
    fn new(image: Image<'i>) -> Client<'i> {
        let session = Session::new(Config { server: SERVER, peer: PEER }, 0);
        let mut reply = Reply::new();
        session.greeting(&mut reply);
        assert_eq!(text(&reply), "220 Cheetah FTP server ready (anonymous, read-only).\r\n");
        Client { session, image, now: 0, reply }
    }

    fn send(&mut self, line: &str) -> (String, Action) {
        // A command every 100 ms: well within the rate limit.
        self.now += SEC / 10;
        self.reply.clear();
        let action = self.session.input(Input::Line(line.as_bytes()), self.now, &self.image, &mut self.reply);
        let t = text(&self.reply);
        assert!(t.is_empty() || well_formed(self.reply.as_bytes()), "{line}: {t:?}");
        (t, action)
    }

    /// The reply's code(s) only.
    fn code(&mut self, line: &str) -> String {
        let (t, _) = self.send(line);
        codes(&t)
    }

    fn login(&mut self) {
        assert_eq!(self.code("USER anonymous"), "331");
        assert_eq!(self.code("PASS guest@"), "230");
    }

    /// PASV, the PD opening port 50000, the client connecting.
    fn pasv(&mut self) -> String {
        let (t, action) = self.send("PASV");
        assert_eq!((t.as_str(), action), ("", Action::OpenPassive));
        self.reply.clear();
        assert_eq!(self.session.passive_opened(50_000, self.now, &mut self.reply), Action::None);
        assert!(self.session.data_connection(PEER));
        text(&self.reply)
    }

    fn done(&mut self, outcome: Outcome) -> String {
        self.reply.clear();
        self.session.transfer_done(outcome, self.now, &mut self.reply);
        text(&self.reply)
    }
}

fn text(reply: &Reply) -> String {
    String::from_utf8(reply.as_bytes().to_vec()).unwrap()
}

/// The codes of the final lines of the replies in `t`, space-separated.
fn codes(t: &str) -> String {
    t.lines().filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ').map(|l| &l[..3]).collect::<Vec<_>>().join(" ")
}

fn listing(image: &Image<'_>, action: Action) -> String {
    let Action::Transfer(Transfer::Listing(mut c)) = action else { panic!("not a listing: {action:?}") };
    let mut out = std::vec![0u8; 65536];
    let n = c.fill(image, 1_700_000_000, &mut out);
    assert!(c.is_done());
    String::from_utf8(out[..n].to_vec()).unwrap()
}

#[test]
fn scripted_session() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    // RFC 959 §4.1.1: nothing but login-free commands before login.
    assert_eq!(c.code("PWD"), "530");
    assert_eq!(c.code("RETR /index.html"), "530");
    assert_eq!(c.code("LIST"), "530");
    assert_eq!(c.code("FEAT"), "211"); // RFC 2389 §3: FEAT before login
    assert_eq!(c.code("PASS x"), "503"); // PASS before USER: sequence
    c.login();
    assert_eq!(c.send("SYST").0, "215 UNIX Type: L8\r\n");
    assert_eq!(c.send("PWD").0, "257 \"/\" is the current directory.\r\n");
    assert_eq!(c.code("CWD docs"), "250");
    assert_eq!(c.send("XPWD").0, "257 \"/docs\" is the current directory.\r\n");
    assert_eq!(c.code("CWD a"), "250");
    assert_eq!(c.code("CDUP"), "250"); // RFC 959 §4.1.1: CDUP answers as CWD
    assert_eq!(c.send("PWD").0, "257 \"/docs\" is the current directory.\r\n");
    assert_eq!(c.code("CWD intro.txt"), "550"); // not a directory
    assert_eq!(c.code("CWD /nope"), "550");
    assert_eq!(c.code("TYPE I"), "200");
    assert_eq!(c.code("MODE S"), "200");
    assert_eq!(c.code("STRU F"), "200");
    // RFC 959 §4.1.2: PASV reply with h1..h4,p1,p2; 50000 = 195*256+80.
    assert_eq!(c.pasv(), "227 Entering Passive Mode (192,0,2,1,195,80).\r\n");
    let (t, action) = c.send("LIST");
    assert_eq!(t, "125 Data connection already open; transfer starting for directory listing.\r\n");
    assert_eq!(
        listing(&c.image, action),
        "dr-xr-xr-x    2 ftp      ftp                 0 Nov 14 22:13 a\r\n\
         -r--r--r--    1 ftp      ftp                18 Nov 14 22:13 intro.txt\r\n"
    );
    assert_eq!(c.code("NOOP"), "200"); // allowed during a transfer
    assert_eq!(c.code("CWD /"), "503"); // not during a transfer
    assert_eq!(c.done(Outcome::Complete), "226 Transfer complete.\r\n");
    // RFC 3659 §5: REST then RETR starts at byte n.
    assert_eq!(c.send("REST 5").0, "350 Restarting at 5. Send RETR to resume.\r\n");
    c.pasv();
    let (t, action) = c.send("RETR intro.txt");
    assert_eq!(codes(&t), "125");
    let position = c.image.position(b"/docs/intro.txt").unwrap();
    assert_eq!(action, Action::Transfer(Transfer::Retr { position, start: 5, len: 13, ascii: None }));
    // RFC 959 §4.1.3: ABOR during a transfer: 426 then 226.
    let (t, action) = c.send("ABOR");
    assert_eq!(t, "426 Connection closed; transfer aborted.\r\n226 Closing data connection.\r\n");
    assert_eq!(action, Action::Abort);
    assert_eq!(c.done(Outcome::Complete), "", "a late report after ABOR is ignored");
    // The REST was used up: the next RETR starts at 0.
    c.pasv();
    let (_, action) = c.send("RETR /docs/intro.txt");
    assert_eq!(action, Action::Transfer(Transfer::Retr { position, start: 0, len: 18, ascii: None }));
    assert_eq!(c.done(Outcome::ConnectionLost), "426 Connection closed; transfer aborted.\r\n");
    let (t, action) = c.send("QUIT");
    assert_eq!((t.as_str(), action), ("221 Goodbye.\r\n", Action::Close));
    assert!(c.session.is_closed());
    assert_eq!(c.send("NOOP"), (String::new(), Action::None));
}

#[test]
fn path_escapes_stay_inside_the_site() {
    // Paths resolve against the site's `/` and never leave it (crate::path).
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    assert_eq!(c.code("CWD docs/a"), "250");
    assert_eq!(c.code("CWD ../../.."), "250");
    assert_eq!(c.send("PWD").0, "257 \"/\" is the current directory.\r\n");
    c.pasv();
    assert_eq!(c.code("RETR /../etc/passwd"), "550");
    assert_eq!(c.code("RETR ../../../../etc/passwd"), "550");
    assert_eq!(c.code("SIZE /../index.html"), "550"); // TYPE A: SIZE refused
    assert_eq!(c.code("TYPE I"), "200");
    assert_eq!(c.send("SIZE /../../index.html").0, "213 12\r\n");
    // `%2e%2e` is a name of six bytes, not `..`.
    assert_eq!(c.code("CWD %2e%2e"), "550");
    assert_eq!(c.send("SIZE %2e%2e").0, "213 19\r\n");
    // Control bytes and NUL never reach a lookup (501).
    assert_eq!(c.code("RETR index.html\0.txt"), "501");
    // The listener survived the failed attempts.
    assert_eq!(codes(&c.send("RETR ./docs/../index.html").0), "125");
}

#[test]
fn writes_and_active_mode_are_refused() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    assert_eq!(c.code("STOR x"), "530", "before login, 530 comes first");
    c.login();
    for write in [
        "STOR x",
        "STOU",
        "APPE index.html",
        "DELE index.html",
        "RMD docs",
        "XRMD docs",
        "MKD new",
        "XMKD new",
        "RNFR index.html",
    ] {
        assert_eq!(c.send(write).0, "550 Permission denied: this server is read-only.\r\n", "{write}");
    }
    assert_eq!(c.code("RNTO y"), "503"); // RFC 959: RNTO needs an accepted RNFR
    assert_eq!(c.code("SITE CHMOD 777 index.html"), "502");
    assert_eq!(c.code("REIN"), "502");
    assert_eq!(c.code("SMNT /"), "502");
    assert_eq!(c.code("ALLO 100"), "202"); // RFC 959 §4.1.3: superfluous
    assert_eq!(c.code("ACCT x"), "202");
    // RFC 2577 §3 (bounce): no active mode.
    assert_eq!(c.code("PORT 127,0,0,1,0,22"), "502");
    assert_eq!(c.code("EPRT |1|127.0.0.1|22|"), "502");
}

#[test]
fn file_commands() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    // RFC 3659 §3: MDTM as YYYYMMDDHHMMSS UTC.
    assert_eq!(c.send("MDTM old.bin").0, "213 19941106084937\r\n");
    assert_eq!(c.code("MDTM docs"), "550");
    // RFC 3659 §4: SIZE refused in TYPE A (the default), bytes in TYPE I.
    assert_eq!(c.code("SIZE old.bin"), "550");
    assert_eq!(c.code("TYPE I"), "200");
    assert_eq!(c.send("SIZE old.bin").0, "213 5000\r\n");
    assert_eq!(c.code("SIZE docs"), "550");
    assert_eq!(c.code("SIZE /"), "550");
    c.pasv();
    assert_eq!(c.send("RETR docs").0, "550 Not a plain file.\r\n");
    assert_eq!(c.send("RETR missing").0, "550 No such file.\r\n");
    // RFC 3659 §5.4: REST past the end: 554.
    assert_eq!(c.code("REST 5001"), "350");
    assert_eq!(c.code("RETR old.bin"), "554");
    // REST at the end: an empty transfer.
    assert_eq!(c.code("REST 5000"), "350");
    let (_, action) = c.send("RETR old.bin");
    let position = c.image.position(b"/old.bin").unwrap();
    assert_eq!(action, Action::Transfer(Transfer::Retr { position, start: 5000, len: 0, ascii: None }));
    assert_eq!(c.done(Outcome::LocalError), "451 Requested action aborted: local error in processing.\r\n");
    // TYPE A: the encoder drops the REST bytes; the file is read from 0.
    assert_eq!(c.code("TYPE A"), "200");
    c.pasv();
    assert_eq!(c.code("REST 3"), "350");
    let (t, action) = c.send("RETR docs/intro.txt");
    assert_eq!(
        t,
        "125 Data connection already open; transfer starting for ASCII transfer of /docs/intro.txt (18 bytes).\r\n"
    );
    let Action::Transfer(Transfer::Retr { start: 0, len: 18, ascii: Some(mut enc), .. }) = action else {
        panic!("{action:?}")
    };
    let mut out = [0u8; 64];
    let (used, n) = enc.encode(b"line one\nline two\n", &mut out);
    assert_eq!((used, &out[..n]), (18, &b"e one\r\nline two\r\n"[..]));
    assert_eq!(c.code("TYPE E"), "503", "during the transfer");
    c.done(Outcome::Complete);
    assert_eq!(c.code("TYPE E"), "504");
    assert_eq!(c.code("TYPE L 8"), "200");
    assert_eq!(c.code("MODE B"), "504");
    assert_eq!(c.code("STRU R"), "504");
}

#[test]
fn listings_and_mlst() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    c.pasv();
    assert_eq!(c.code("LIST -la /nothing"), "550");
    let (_, action) = c.send("NLST -a");
    assert_eq!(listing(&c.image, action), "%2e%2e\r\ndocs\r\nindex.html\r\nold.bin\r\n");
    c.done(Outcome::Complete);
    c.pasv();
    // LIST of a file lists that file, as ls does.
    let (_, action) = c.send("LIST docs/intro.txt");
    assert_eq!(listing(&c.image, action), "-r--r--r--    1 ftp      ftp                18 Nov 14 22:13 intro.txt\r\n");
    c.done(Outcome::Complete);
    c.pasv();
    assert_eq!(c.code("MLSD index.html"), "501"); // RFC 3659 §7.2.1: a directory
    let (_, action) = c.send("MLSD /docs");
    assert_eq!(
        listing(&c.image, action),
        "type=dir;modify=20231114221320; a\r\ntype=file;size=18;modify=20231114221320; intro.txt\r\n"
    );
    c.done(Outcome::Complete);
    // NLST of a named directory names its entries by path, relative when
    // the argument is (as `ls DIR`), so that each name can be retrieved.
    for (command, want) in [
        ("NLST docs", "docs/a\r\ndocs/intro.txt\r\n"),
        ("NLST /docs", "/docs/a\r\n/docs/intro.txt\r\n"),
        ("NLST docs/a/..", "docs/a\r\ndocs/intro.txt\r\n"),
    ] {
        c.pasv();
        let (_, action) = c.send(command);
        assert_eq!(listing(&c.image, action), want, "{command}");
        c.done(Outcome::Complete);
    }
    assert_eq!(c.code("CWD /docs/a"), "250");
    c.pasv();
    // Out of the current directory: absolute paths.
    let (_, action) = c.send("NLST ..");
    assert_eq!(listing(&c.image, action), "/docs/a\r\n/docs/intro.txt\r\n");
    c.done(Outcome::Complete);
    assert_eq!(c.code("CWD /"), "250");
    // RFC 3659 §7.2: MLST over the control connection.
    assert_eq!(
        c.send("MLST docs/intro.txt").0,
        "250-Listing /docs/intro.txt\r\n type=file;size=18;modify=20231114221320; /docs/intro.txt\r\n250 End\r\n"
    );
    assert_eq!(c.send("MLST").0, "250-Listing /\r\n type=dir;modify=20231114221320; /\r\n250 End\r\n");
    assert_eq!(c.code("MLST nope"), "550");
    // RFC 3659 §7.9: OPTS MLST selects facts; FEAT marks them with `*`.
    assert_eq!(c.send("OPTS MLST size;modify;").0, "200 MLST OPTS size;modify;\r\n");
    assert_eq!(
        c.send("FEAT").0,
        "211-Features:\r\n EPSV\r\n MDTM\r\n MLST type;size*;modify*;\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n"
    );
    assert_eq!(
        c.send("MLST index.html").0,
        "250-Listing /index.html\r\n size=12;modify=20231114221320; /index.html\r\n250 End\r\n"
    );
    assert_eq!(c.send("OPTS UTF8 ON").0, "200 Always in UTF8 mode.\r\n");
    assert_eq!(c.code("OPTS FOO"), "501");
    // A transfer without a listener: 425.
    assert_eq!(c.code("LIST"), "425");
    // The empty site still has a root.
    let empty = site(&[]);
    let mut e = Client::new(Image::parse(&empty).unwrap());
    e.login();
    assert_eq!(e.code("CWD /"), "250");
    e.pasv();
    let (_, action) = e.send("LIST");
    assert_eq!(listing(&e.image, action), "");
}

#[test]
fn epsv_and_pasv_rules() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    // RFC 2428 §3.
    let (_, action) = c.send("EPSV");
    assert_eq!(action, Action::OpenPassive);
    c.reply.clear();
    c.session.passive_opened(40_001, c.now, &mut c.reply);
    assert_eq!(text(&c.reply), "229 Entering Extended Passive Mode (|||40001|)\r\n");
    assert_eq!(c.send("EPSV 2").0, "522 Network protocol not supported, use (1)\r\n");
    // RFC 2577 §5: only the control connection's peer, once.
    assert!(!c.session.data_connection([203, 0, 113, 9]));
    assert!(c.session.data_connection(PEER));
    assert!(!c.session.data_connection(PEER));
    // RFC 2428 §4: after EPSV ALL, PASV is refused.
    assert_eq!(c.code("EPSV ALL"), "200");
    assert_eq!(c.code("PASV"), "503");
    assert_eq!(c.send("EPSV").1, Action::OpenPassive);
    // The PD found no free port.
    c.reply.clear();
    c.session.passive_failed(&mut c.reply);
    assert_eq!(codes(&text(&c.reply)), "425");
    // A late listener nobody waits for is closed.
    c.reply.clear();
    assert_eq!(c.session.passive_opened(1, c.now, &mut c.reply), Action::ClosePassive);
    assert!(c.reply.is_empty());
    // ABOR with a listener and no transfer: 225, listener closed.
    c.send("EPSV");
    c.session.passive_opened(40_002, c.now, &mut c.reply);
    assert_eq!(
        c.send("ABOR"),
        ("225 No transfer to abort; data connection closed.\r\n".to_string(), Action::ClosePassive)
    );
    assert_eq!(c.send("ABOR"), ("225 No transfer to abort.\r\n".to_string(), Action::None));
}

#[test]
fn thousands_of_pasv_hold_one_listener_then_close() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    let mut opened = 0;
    for i in 0..5000 {
        let (t, action) = c.send("PASV");
        if action == Action::Close {
            assert_eq!(codes(&t), "421");
            break;
        }
        assert_eq!(action, Action::OpenPassive, "each PASV replaces the last listener");
        c.reply.clear();
        c.session.passive_opened(50_000 + i, c.now, &mut c.reply);
        opened += 1;
    }
    assert_eq!(opened, MAX_UNUSED_PASSIVE + 1);
    assert!(c.session.is_closed());
}

#[test]
fn timeouts() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut reply = Reply::new();
    // Login timeout: 60 s from the greeting.
    let mut s = Session::new(Config { server: SERVER, peer: PEER }, 0);
    assert_eq!(s.deadline(), Some(LOGIN_TIMEOUT_NS));
    assert_eq!(s.poll(LOGIN_TIMEOUT_NS - 1, &mut reply), Action::None);
    assert!(reply.is_empty());
    assert_eq!(s.poll(LOGIN_TIMEOUT_NS, &mut reply), Action::Close);
    assert_eq!(codes(&text(&reply)), "421");

    // Idle: 300 s after the last command.
    let mut c = Client::new(image);
    c.login();
    let last = c.now;
    assert_eq!(c.session.deadline(), Some(last + IDLE_TIMEOUT_NS));
    c.reply.clear();
    assert_eq!(c.session.poll(last + IDLE_TIMEOUT_NS, &mut c.reply), Action::Close);
    assert_eq!(text(&c.reply), "421 Timeout; closing control connection.\r\n");

    // Data connection: a listener nobody connects to is closed at 30 s; a
    // transfer waiting for one gets 425.
    let mut c = Client::new(image);
    c.login();
    c.send("PASV");
    c.session.passive_opened(50_000, c.now, &mut c.reply);
    let at = c.now;
    assert_eq!(c.session.deadline(), Some(at + DATA_CONNECT_TIMEOUT_NS));
    c.reply.clear();
    assert_eq!(c.session.poll(at + DATA_CONNECT_TIMEOUT_NS, &mut c.reply), Action::ClosePassive);
    assert!(c.reply.is_empty());
    c.now = at + DATA_CONNECT_TIMEOUT_NS;
    c.send("PASV");
    c.session.passive_opened(50_000, c.now, &mut c.reply);
    assert_eq!(codes(&c.send("RETR index.html").0), "150");
    let at = c.now;
    c.reply.clear();
    assert_eq!(c.session.poll(at + DATA_CONNECT_TIMEOUT_NS - 1, &mut c.reply), Action::None);
    assert_eq!(c.session.poll(at + DATA_CONNECT_TIMEOUT_NS, &mut c.reply), Action::Abort);
    assert_eq!(text(&c.reply), "425 Failed to establish data connection.\r\n");
    assert!(!c.session.transferring());
    // A running transfer is not idle: no idle deadline while connected.
    c.pasv();
    c.send("RETR index.html");
    assert_eq!(c.session.deadline(), None);
}

#[test]
fn rate_limit_closes_a_flood_but_not_a_steady_client() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut reply = Reply::new();
    let mut s = Session::new(Config { server: SERVER, peer: PEER }, 0);
    // A steady RATE_PER_SECOND commands a second for 100 s.
    for i in 0..2000u64 {
        reply.clear();
        let a = s.command(crate::Command::Noop, i * (SEC / RATE_PER_SECOND), &image, &mut reply);
        assert_eq!((a, codes(&text(&reply)).as_str()), (Action::None, "200"), "{i}");
    }
    // A burst: RATE_BURST commands at once pass, the next one closes.
    let t = 3000 * SEC;
    for _ in 0..RATE_BURST {
        reply.clear();
        assert_eq!(s.command(crate::Command::Noop, t, &image, &mut reply), Action::None);
    }
    reply.clear();
    assert_eq!(s.command(crate::Command::Noop, t, &image, &mut reply), Action::Close);
    assert_eq!(text(&reply), "421 Too many commands; closing control connection.\r\n");
}

#[test]
fn too_many_errors_or_failed_logins_close() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    for _ in 0..MAX_BAD_COMMANDS {
        assert_eq!(c.send("BOGUS").1, Action::None);
    }
    let (t, action) = c.send("BOGUS");
    assert_eq!((codes(&t).as_str(), action), ("500 421", Action::Close));

    let mut c = Client::new(image);
    assert_eq!(c.code("USER root"), "530");
    assert_eq!(c.code("USER admin"), "530");
    let (t, action) = c.send("USER bob");
    assert_eq!((codes(&t).as_str(), action), ("421", Action::Close));

    // An overlong line is 500 and counts too.
    let mut c = Client::new(image);
    c.reply.clear();
    assert_eq!(c.session.input(Input::TooLong, 1, &c.image, &mut c.reply), Action::None);
    assert_eq!(text(&c.reply), "500 Command line too long.\r\n");
}

#[test]
fn quit_during_a_transfer_aborts_it() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    c.pasv();
    c.send("RETR index.html");
    let (t, action) = c.send("QUIT");
    assert_eq!((codes(&t).as_str(), action), ("426 221", Action::Close));
    assert_eq!(c.done(Outcome::Complete), "");
}

#[test]
fn stat_and_help_are_multi_line() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    let (t, _) = c.send("HELP");
    assert!(t.starts_with("214-") && t.ends_with("214 Help OK.\r\n"), "{t}");
    c.login();
    c.pasv();
    c.send("LIST");
    let (t, _) = c.send("STAT");
    assert_eq!(
        t,
        "211-FTP server status:\r\n Connected from 198.51.100.7\r\n Logged in as anonymous\r\n TYPE: ASCII\r\n Transfer in progress\r\n211 End of status\r\n"
    );
    assert_eq!(c.code("STAT /"), "503", "STAT with a path is not a transfer-time command");
}

/// Random lines: a known verb (any case) or garbage, with arguments made
/// of path pieces, control bytes and Telnet bytes.
fn random_line(rng: &mut Rng) -> Vec<u8> {
    const VERBS: &[&str] = &[
        "USER anonymous",
        "USER",
        "PASS",
        "ACCT",
        "SYST",
        "FEAT",
        "OPTS",
        "PWD",
        "XPWD",
        "CWD",
        "XCWD",
        "CDUP",
        "XCUP",
        "TYPE",
        "MODE",
        "STRU",
        "PASV",
        "EPSV",
        "PORT",
        "EPRT",
        "LIST",
        "NLST",
        "MLSD",
        "MLST",
        "SIZE",
        "MDTM",
        "REST",
        "RETR",
        "NOOP",
        "QUIT",
        "ABOR",
        "STAT",
        "HELP",
        "STOR",
        "STOU",
        "APPE",
        "DELE",
        "RMD",
        "MKD",
        "RNFR",
        "RNTO",
        "SITE",
        "ALLO",
        "REIN",
        "SMNT",
        "XX",
        "AUTH",
    ];
    const PIECES: &[&[u8]] = &[
        b"/",
        b"..",
        b".",
        b"docs",
        b"a",
        b"index.html",
        b"intro.txt",
        b"%2e%2e",
        b" ",
        b"-la",
        b"A",
        b"I",
        b"L 8",
        b"ALL",
        b"1",
        b"2",
        b"0",
        b"5000",
        b"99999999999999999999",
        b"UTF8 ON",
        b"MLST type;",
        b"\0",
        b"\r",
        b"\xff",
        b"\xc3\xa9",
        b"\"",
    ];
    let mut line = Vec::new();
    if rng.below(10) == 0 {
        for _ in 0..rng.below(40) {
            line.push(rng.next() as u8);
        }
        return line;
    }
    for b in VERBS[rng.below(VERBS.len())].bytes() {
        line.push(if rng.below(2) == 0 { b.to_ascii_lowercase() } else { b });
    }
    if rng.below(4) != 0 {
        line.push(b' ');
        for _ in 0..rng.below(8) {
            line.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
    }
    line
}

#[test]
fn random_input_never_panics_and_replies_are_well_formed() {
    // Property (seeded): random command lines and random bytes, through the
    // line reader and the session, with the PD's callbacks played at
    // random, always give well-formed replies (three digits, space or
    // hyphen, CRLF); every command gets a reply unless it asked for a
    // listener or the session is closed; a listing always ends.
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut rng = Rng(0xf7d0_5eed);
    let mut replies = 0u64;
    for _ in 0..300 {
        let mut session = Session::new(Config { server: SERVER, peer: PEER }, 0);
        let mut reader = LineReader::new();
        let mut reply = Reply::new();
        let mut now = 0u64;
        let mut stream = Vec::new();
        for _ in 0..rng.below(60) {
            if rng.below(3) == 0 {
                stream.extend_from_slice(b"USER anonymous\r\nPASS x\r\n");
            }
            stream.extend_from_slice(&random_line(&mut rng));
            stream.extend_from_slice(if rng.below(4) == 0 { b"\n" } else { b"\r\n" });
        }
        let mut rest = &stream[..];
        while !rest.is_empty() && !session.is_closed() {
            let n = 1 + rng.below(rest.len().min(200));
            let mut chunk = &rest[..n];
            rest = &rest[n..];
            while !chunk.is_empty() {
                let (used, input) = reader.feed(chunk);
                chunk = &chunk[used..];
                let Some(input) = input else { continue };
                now += rng.below(200_000_000) as u64;
                reply.clear();
                let was_closed = session.is_closed();
                let action = session.input(input, now, &image, &mut reply);
                if !was_closed && action != Action::OpenPassive {
                    assert!(!reply.is_empty(), "{input:?} got no reply");
                }
                play(&mut session, action, &image, &mut rng, now, &mut reply);
                if !reply.is_empty() {
                    assert!(well_formed(reply.as_bytes()), "{input:?}: {reply:?}");
                    replies += 1;
                }
                if rng.below(8) == 0 {
                    now += rng.below(40) as u64 * SEC;
                    reply.clear();
                    let action = session.poll(now, &mut reply);
                    play(&mut session, action, &image, &mut rng, now, &mut reply);
                    assert!(reply.is_empty() || well_formed(reply.as_bytes()), "{reply:?}");
                }
            }
        }
    }
    assert!(replies > 3000, "the test exercised little: {replies} replies");
}

/// What a PD would do with `action`, with random outcomes; replies are
/// appended to `reply`.
fn play(s: &mut Session, action: Action, image: &Image<'_>, rng: &mut Rng, now: u64, reply: &mut Reply) {
    match action {
        Action::OpenPassive => {
            if rng.below(5) == 0 {
                s.passive_failed(reply);
            } else {
                s.passive_opened(rng.next() as u16, now, reply);
                if rng.below(3) != 0 {
                    s.data_connection(if rng.below(4) == 0 { [1, 2, 3, 4] } else { PEER });
                }
            }
        }
        Action::Transfer(Transfer::Listing(mut c)) => {
            let mut buf = [0u8; 700];
            let mut rounds = 0;
            while !c.is_done() {
                assert!(c.fill(image, now / SEC, &mut buf[..1 + rng.below(700)]) > 0);
                rounds += 1;
                assert!(rounds < 10_000);
            }
            finish(s, rng, now, reply);
        }
        Action::Transfer(Transfer::Retr { position, start, len, .. }) => {
            let r = image.record(position).unwrap();
            assert!(start + len == r.size || start == 0);
            finish(s, rng, now, reply);
        }
        Action::None | Action::ClosePassive | Action::Abort | Action::Close => {}
    }
}

fn finish(s: &mut Session, rng: &mut Rng, now: u64, reply: &mut Reply) {
    // Sometimes the transfer is still running when the next command comes.
    if rng.below(4) != 0 {
        let outcome = [Outcome::Complete, Outcome::ConnectionLost, Outcome::LocalError][rng.below(3)];
        s.transfer_done(outcome, now, reply);
    }
}

#[test]
fn cursor_for_a_file_and_empty() {
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = ListCursor::empty(Format::List);
    assert!(c.is_done());
    assert_eq!(c.fill(&image, 0, &mut [0; 10]), 0);
    let p = image.position(b"/old.bin").unwrap();
    let mut c = ListCursor::file(&image, p, Format::Nlst, Facts::ALL);
    let mut out = [0u8; 3];
    let mut got = Vec::new();
    while !c.is_done() {
        let n = c.fill(&image, 0, &mut out);
        got.extend_from_slice(&out[..n]);
    }
    assert_eq!(got, b"old.bin\r\n");
}

#[test]
fn the_longest_paths_fit_every_reply() {
    // A stored path of MAX_PATH_LEN bytes full of `"`: PWD doubles each
    // (RFC 959 Appendix II), MLST names it twice (RFC 3659 §7.2); both
    // must fit a Reply whole, and the line holding RETR of it must fit
    // the line reader.
    let max = fs_format::path::MAX_PATH_LEN;
    let dir = std::format!("/{}", "\"".repeat(max - 3));
    let file = std::format!("{dir}/f");
    assert_eq!(file.len(), max);
    let head = site(&[SiteFile::new(&file, b"x")]);
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    c.login();
    assert_eq!(c.code(&std::format!("CWD {dir}")), "250");
    let (t, _) = c.send("PWD");
    let quoted = dir.replace('"', "\"\"");
    assert_eq!(t, std::format!("257 \"{quoted}\" is the current directory.\r\n"));
    let (t, _) = c.send(&std::format!("MLST {file}"));
    assert_eq!(t, std::format!("250-Listing {file}\r\n type=file;size=1;modify=20231114221320; {file}\r\n250 End\r\n"));
    let line = std::format!("RETR {file}\r\n");
    let mut reader = LineReader::new();
    let (used, input) = reader.feed(line.as_bytes());
    assert_eq!((used, input), (line.len(), Some(Input::Line(&line.as_bytes()[..line.len() - 2]))));
    // One byte more than any stored path: 550, not a panic or a cut path.
    assert_eq!(c.code(&std::format!("RETR {file}x")), "550");
    assert_eq!(c.code(&std::format!("CWD {dir}/{}", "y".repeat(10))), "550");
}

#[test]
fn sizes_of_the_state_a_pd_keeps() {
    // What the PD holds per control connection (documented in lib.rs).
    std::println!(
        "Session {} LineReader {} ListCursor {} Reply {} Action {}",
        core::mem::size_of::<Session>(),
        core::mem::size_of::<LineReader>(),
        core::mem::size_of::<ListCursor>(),
        core::mem::size_of::<Reply>(),
        core::mem::size_of::<Action>()
    );
    assert!(core::mem::size_of::<Session>() <= 1200);
    assert!(core::mem::size_of::<LineReader>() <= 1100);
    assert!(core::mem::size_of::<ListCursor>() <= 48);
    assert!(core::mem::size_of::<Action>() <= 64);
}

#[test]
fn every_other_command_needs_login() {
    // RFC 959 §4.1.1: access control; only the documented commands are
    // served before login.
    let head = sample_site();
    let image = Image::parse(&head).unwrap();
    let mut c = Client::new(image);
    for line in [
        "PWD",
        "CWD /",
        "CDUP",
        "TYPE I",
        "MODE S",
        "STRU F",
        "PASV",
        "EPSV",
        "PORT 1,2,3,4,5,6",
        "LIST",
        "NLST",
        "MLSD",
        "MLST",
        "SIZE /index.html",
        "MDTM /index.html",
        "REST 1",
        "RETR /index.html",
        "STAT",
        "STOR x",
        "DELE x",
        "RNTO x",
        "SITE x",
        "ALLO 1",
        "ACCT x",
        "REIN",
        "SMNT x",
    ] {
        assert_eq!(c.code(line), "530", "{line}");
        c.now += SEC; // stay clear of the rate limit
        c.session = Session::new(Config { server: SERVER, peer: PEER }, c.now); // and of the error limit
    }
    for (line, code) in [("SYST", "215"), ("NOOP", "200"), ("HELP", "214"), ("OPTS UTF8 ON", "200"), ("ABOR", "225")] {
        assert_eq!(c.code(line), code, "{line}");
    }
}
