//! One control connection's state machine: the library decides, the PD
//! moves bytes.
//!
//! The PD feeds [`Session::input`] each [`Input`] its [`LineReader`]
//! finds, with the monotonic time in nanoseconds and the site [`Image`];
//! the session writes the reply into a [`Reply`] and returns an [`Action`]
//! for the PD. The PD reports back what happened on the data side
//! ([`Session::passive_opened`], [`Session::passive_failed`],
//! [`Session::data_connection`], [`Session::transfer_done`]) and calls
//! [`Session::poll`] at [`Session::deadline`] for the timeouts.
//!
//! [`LineReader`]: crate::command::LineReader
//!
//! # Login (RFC 959 §4.1.1)
//!
//! Anonymous only (RFC 1635): `USER anonymous` or `USER ftp` (any case)
//! gets 331, then any `PASS` 230. Another user name gets 530 and counts as
//! a failed login; after [`MAX_LOGIN_FAILURES`] the session ends with
//! 421. PASS without USER is 503 (RFC 959 §5.4, sequencing). After login,
//! USER is 530 (the anonymous user cannot become another) and PASS 230.
//! Before login only USER, PASS, QUIT, FEAT and OPTS (RFC 2389 §3: FEAT
//! should work before login), SYST, NOOP, HELP and ABOR are served;
//! anything else is 530.
//!
//! # Data connections: passive only
//!
//! PASV (RFC 959 §4.1.2) and EPSV (RFC 2428 §3) return
//! [`Action::OpenPassive`]: the PD closes the session's previous listener
//! if any (each PASV **replaces** the last one: a client asking thousands
//! of times holds one listener), opens one on a port of its configured
//! range, and calls [`Session::passive_opened`], which answers `227
//! Entering Passive Mode (h1,h2,h3,h4,p1,p2).` or `229 Entering Extended
//! Passive Mode (|||port|)` (or [`Session::passive_failed`]: 425). A
//! connection to the listener is accepted only from the control
//! connection's peer address ([`Session::data_connection`]; RFC 2577 §5
//! "port stealing"), one per PASV.
//!
//! PORT and EPRT are 502: **active mode is not offered**. With it the
//! server connects wherever the client says, the FTP bounce attack (RFC
//! 2577 §3), and needs outgoing connections through the node's filters.
//! `EPSV ALL` (RFC 2428 §4) is accepted (200); PASV after it is 503.
//! `EPSV 2` (IPv6) or another protocol is `522 Network protocol not
//! supported, use (1)` (RFC 2428 §3).
//!
//! A transfer command (RETR, LIST, NLST, MLSD) checks its argument first
//! (550 and the listener stays for the next try), then needs a listener
//! (else 425); it answers 150 (125 if the data connection is already up,
//! RFC 959 §4.2) and returns [`Action::Transfer`]. The PD sends the data
//! once the data connection is up, closes it (stream mode ends a file by
//! closing, RFC 959 §3.4.1), and calls [`Session::transfer_done`]: 226
//! when complete, 426 if the client broke the connection, 451 on a local
//! error (a file that failed verification). One transfer per PASV.
//!
//! # Paths
//!
//! Resolved against the site's `/` and normalised as [`crate::path`]
//! describes: never outside the root. CWD into a file or nothing is 550;
//! CDUP is CWD `..` (250: RFC 959 §4.1.1 says its replies are CWD's).
//! NLST of a named directory names its entries by path (RFC 959 leaves
//! the form to the server): relative to the current directory when the
//! argument is relative and the directory lies under it (`NLST docs` gives
//! `docs/a`, as `ls docs` does), absolute otherwise, so that a client that
//! retrieves each name it got (`mget docs`) finds the file; NLST without an
//! argument gives bare names. MLSD and MLST give a directory the date LIST
//! shows (its first file's) as its `modify` fact, so that a mirroring
//! client need not ask MDTM of it (which is 550).
//! RETR, SIZE and MDTM of a directory or a missing file are 550. LIST and
//! NLST of a file list that file; MLSD of a file is 501 (RFC 3659 §7.2.1:
//! its argument must be a directory). LIST and NLST skip leading words
//! starting with `-` (`LIST -la`, sent by many clients; as vsftpd does, a
//! name starting with `-` can therefore only be listed by a path such as
//! `./-x`). There is no globbing (RFC 959 leaves it to the server): `*`
//! is a byte of a name like any other.
//!
//! # TYPE, MODE, STRU, REST, SIZE
//!
//! TYPE A (and `A N`) and I (and `L 8`) are served; other types 504 (RFC
//! 959 §4.1.2). MODE S and STRU F only; others 504. REST n (RFC 3659 §5)
//! answers 350 and applies to the next RETR; LIST, NLST and MLSD discard
//! it. In TYPE I, RETR reads from byte n; n past the file's size is `554
//! Requested action not taken: invalid REST parameter` (RFC 3659 §5.4).
//! In TYPE A the marker counts converted bytes (RFC 3659 §5.3), see
//! [`crate::ascii`]; only a marker beyond twice the size (more than any
//! conversion gives) is 554 there, a smaller one past the converted end
//! sends nothing. SIZE answers the byte count in TYPE I, and 550 in TYPE
//! A, where the count depends on data the session does not read (RFC 3659
//! §4: the size must be that of the transfer; ProFTPD also refuses;
//! vsftpd's binary size in TYPE A would be wrong for text files).
//! MDTM (RFC 3659 §3) answers `213 YYYYMMDDHHMMSS`, the record's
//! Last-Modified in UTC.
//!
//! # Writes and other verbs
//!
//! STOR, STOU, APPE, DELE, RMD, MKD, RNFR are `550 Permission denied`: the
//! commands exist and the site is read-only, which is what 550 says (RFC
//! 959 §4.2: "file unavailable (e.g., ... no access)"); 502 would tell a
//! client the verb is unknown. RNTO is 503 (RFC 959 §4.1.3: it must follow
//! an accepted RNFR, and none is ever accepted). ALLO and ACCT are 202
//! ("superfluous at this site": RFC 959 §4.1.3 says so of ALLO; no account
//! is needed). SITE, REIN and SMNT are 502. Any other verb is 500.
//!
//! # During a transfer
//!
//! ABOR (RFC 959 §4.1.3): `426` for the aborted transfer then `226`, and
//! [`Action::Abort`]; with no transfer, 225 (and the listener, if any, is
//! closed). STAT answers the status, NOOP 200. QUIT aborts the transfer
//! (426) then says 221 and closes: the client asked to go. Any other
//! command is 503 until the transfer's reply (a client sends its next
//! command after the 226; RFC 959 §5.4 sequencing).
//!
//! # Limits and timeouts
//!
//! | limit | value | on breach |
//! | --- | --- | --- |
//! | [`LOGIN_TIMEOUT_NS`] | 60 s from the greeting | 421, close |
//! | [`IDLE_TIMEOUT_NS`] | 300 s without a command, no transfer running | 421, close |
//! | [`DATA_CONNECT_TIMEOUT_NS`] | 30 s from the 227/229 (or from the transfer command) to the data connection | listener closed; with a transfer waiting, 425 |
//! | [`RATE_PER_SECOND`], [`RATE_BURST`] | 100 commands a second, bursts of 200 | the next command waits ([`Session::throttled_until`]); fed anyway, 421 and close |
//! | [`MAX_BAD_COMMANDS`] | more than 20 replies 500–504 or 530 | 421, close |
//! | [`MAX_LOGIN_FAILURES`] | the 3rd refused user name | 421 (instead of 530), close |
//! | [`MAX_UNUSED_PASSIVE`] | more than 20 listeners in a row replaced or expired unused (a transfer resets the count) | 421, close |
//!
//! Only complete lines are activity: a client trickling bytes without a
//! line end (or the tail of an overlong line) is closed by the idle or
//! login timeout like a silent one.
//!
//! The rate limit delays rather than closes: the server reads no further
//! command until [`Session::throttled_until`] has passed, so its input
//! buffer fills and the window closes, and a client that sends commands
//! faster than 100 a second (after a burst of 200) is slowed to that pace.
//! Closing instead broke real clients: `lftp`'s `mirror` of the 1,023-file
//! test site sends about 2,500 commands in a second on a fast link (each
//! waits for its reply, but replies are quick), and was cut off 48 times.
//! A slowed client holds one session and one input buffer, as an idle one
//! does, and the idle timeout still applies. A caller that feeds a command
//! while the session is throttled gets 421 and the session closes. 550
//! (not found) is not a bad command: a mirror asks for many missing files,
//! and the rate limit bounds the cost of each (a binary search).

use crate::ascii::AsciiEncoder;
use crate::command::{parse, Command, DataType, EpsvArg, Input};
use crate::listing::{write_facts, Facts, Format, Kind, ListCursor};
use crate::path::SitePath;
use crate::reply::{Quoted, Reply};
use crate::time::mdtm;
use fs_format::Image;

/// Time allowed from the greeting to a successful login: 60 s.
pub const LOGIN_TIMEOUT_NS: u64 = 60_000_000_000;
/// Time allowed between commands while no transfer runs: 300 s.
pub const IDLE_TIMEOUT_NS: u64 = 300_000_000_000;
/// Time allowed for the client to connect to a passive listener: 30 s.
pub const DATA_CONNECT_TIMEOUT_NS: u64 = 30_000_000_000;
/// Sustained commands a second.
pub const RATE_PER_SECOND: u64 = 100;
/// Commands allowed in a burst.
pub const RATE_BURST: u64 = 200;
/// Replies 500–504 and 530 before the session is closed.
pub const MAX_BAD_COMMANDS: u32 = 20;
/// Refused user names before the session is closed.
pub const MAX_LOGIN_FAILURES: u32 = 3;
/// Passive listeners replaced or expired without a transfer before the
/// session is closed.
pub const MAX_UNUSED_PASSIVE: u32 = 20;

/// The time one command costs in the rate limit.
const COMMAND_COST_NS: u64 = 1_000_000_000 / RATE_PER_SECOND;

/// What the PD does after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond sending the reply.
    None,
    /// Close this session's passive listener if it has one, open a new
    /// one and call [`Session::passive_opened`] or
    /// [`Session::passive_failed`].
    OpenPassive,
    /// Close the passive listener (nothing was transferred).
    ClosePassive,
    /// Send this on the data connection once it is up (it may already be),
    /// close it, and call [`Session::transfer_done`].
    Transfer(Transfer),
    /// Stop the transfer, close the data connection and the listener; do
    /// not call [`Session::transfer_done`].
    Abort,
    /// Send the reply, then close the control connection and everything of
    /// this session.
    Close,
}

/// What to send on the data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// `len` bytes of the file at index `position`, from byte `start`. With
    /// `ascii`, pass them through the encoder (`start` is then 0: the
    /// encoder drops the REST bytes itself) and flush it at the end.
    Retr { position: u32, start: u64, len: u64, ascii: Option<AsciiEncoder> },
    /// A listing: [`ListCursor::fill`] until it is done.
    Listing(ListCursor),
}

/// How a transfer ended, as the PD saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was sent and the data connection closed: 226.
    Complete,
    /// The client closed or reset the data connection first: 426.
    ConnectionLost,
    /// A local failure (the file failed verification, the cache failed):
    /// 451.
    LocalError,
}

/// Addresses the session needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The server's IPv4 address, sent in 227.
    pub server: [u8; 4],
    /// The control connection's peer: the only address a data connection
    /// is accepted from.
    pub peer: [u8; 4],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Login {
    Start,
    UserOk,
    In,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Data {
    None,
    /// [`Action::OpenPassive`] given; the PD has not answered.
    Opening {
        extended: bool,
    },
    /// 227/229 sent at `since`.
    Listening {
        since: u64,
        connected: bool,
    },
    /// A transfer command answered 150/125 at `since`.
    Transfer {
        since: u64,
        connected: bool,
    },
}

/// One control connection.
#[derive(Clone, Debug)]
pub struct Session {
    config: Config,
    login: Login,
    cwd: SitePath,
    ascii: bool,
    rest: u64,
    epsv_all: bool,
    facts: Facts,
    data: Data,
    started: u64,
    last_command: u64,
    /// Rate-limit credit in nanoseconds of allowed commands.
    credit_ns: u64,
    credit_at: u64,
    bad_commands: u32,
    login_failures: u32,
    unused_passive: u32,
    closed: bool,
}

/// The 421 a PD sends when it has no session free (RFC 959 §5.4: 421 may
/// answer the connection itself).
pub fn refuse_busy(reply: &mut Reply) {
    reply.line(421, "Too many connections; try again later.");
}

impl Session {
    /// A session for a new control connection at time `now` (ns); write
    /// the greeting with [`Session::greeting`].
    pub fn new(config: Config, now: u64) -> Session {
        Session {
            config,
            login: Login::Start,
            cwd: SitePath::root(),
            ascii: true,
            rest: 0,
            epsv_all: false,
            facts: Facts::ALL,
            data: Data::None,
            started: now,
            last_command: now,
            credit_ns: RATE_BURST * COMMAND_COST_NS,
            credit_at: now,
            bad_commands: 0,
            login_failures: 0,
            unused_passive: 0,
            closed: false,
        }
    }

    /// The greeting (RFC 959 §5.4: 220 on connection).
    pub fn greeting(&self, reply: &mut Reply) {
        reply.line(220, "Cheetah FTP server ready (anonymous, read-only).");
    }

    /// Whether the session ended ([`Action::Close`] was returned).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a user is logged in.
    pub fn logged_in(&self) -> bool {
        self.login == Login::In
    }

    /// The current directory.
    pub fn cwd(&self) -> &SitePath {
        &self.cwd
    }

    /// Whether a transfer is in progress.
    pub fn transferring(&self) -> bool {
        matches!(self.data, Data::Transfer { .. })
    }

    /// The next time [`Session::poll`] has something to do.
    pub fn deadline(&self) -> Option<u64> {
        if self.closed {
            return None;
        }
        let mut d = match self.data {
            Data::Listening { since, connected: false } | Data::Transfer { since, connected: false } => {
                Some(since.saturating_add(DATA_CONNECT_TIMEOUT_NS))
            }
            _ => None,
        };
        let mut earliest = |t: u64| d = Some(d.map_or(t, |d: u64| d.min(t)));
        if self.login != Login::In {
            earliest(self.started.saturating_add(LOGIN_TIMEOUT_NS));
        }
        if !self.transferring() {
            earliest(self.last_command.saturating_add(IDLE_TIMEOUT_NS));
        }
        d
    }

    /// Applies the timeouts due at `now`; see the module docs.
    pub fn poll(&mut self, now: u64, reply: &mut Reply) -> Action {
        if self.closed {
            return Action::None;
        }
        if self.login != Login::In && now >= self.started.saturating_add(LOGIN_TIMEOUT_NS) {
            reply.line(421, "Login timeout; closing control connection.");
            return self.close();
        }
        if !self.transferring() && now >= self.last_command.saturating_add(IDLE_TIMEOUT_NS) {
            reply.line(421, "Timeout; closing control connection.");
            return self.close();
        }
        match self.data {
            Data::Transfer { since, connected: false } if now >= since.saturating_add(DATA_CONNECT_TIMEOUT_NS) => {
                self.data = Data::None;
                reply.line(425, "Failed to establish data connection.");
                self.last_command = now;
                Action::Abort
            }
            Data::Listening { since, connected: false } if now >= since.saturating_add(DATA_CONNECT_TIMEOUT_NS) => {
                self.data = Data::None;
                self.unused_passive(reply).unwrap_or(Action::ClosePassive)
            }
            _ => Action::None,
        }
    }

    /// Counts a listener that went unused; 421 and close past the limit.
    fn unused_passive(&mut self, reply: &mut Reply) -> Option<Action> {
        self.unused_passive += 1;
        if self.unused_passive > MAX_UNUSED_PASSIVE {
            reply.line(421, "Too many unused passive connections; closing control connection.");
            return Some(self.close());
        }
        None
    }

    fn close(&mut self) -> Action {
        self.closed = true;
        self.data = Data::None;
        Action::Close
    }

    /// The PD opened the listener [`Action::OpenPassive`] asked for, on
    /// `port`: answers 227 or 229. If the session no longer wants it
    /// (the PD answered late), returns [`Action::ClosePassive`] and writes
    /// nothing.
    pub fn passive_opened(&mut self, port: u16, now: u64, reply: &mut Reply) -> Action {
        let Data::Opening { extended } = self.data else {
            return Action::ClosePassive;
        };
        if self.closed {
            return Action::ClosePassive;
        }
        if extended {
            reply.line_fmt(229, format_args!("Entering Extended Passive Mode (|||{port}|)"));
        } else {
            let [a, b, c, d] = self.config.server;
            let (p1, p2) = (port >> 8, port & 0xff);
            reply.line_fmt(227, format_args!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2})."));
        }
        self.data = Data::Listening { since: now, connected: false };
        Action::None
    }

    /// The PD could not open a listener (no port free): 425.
    pub fn passive_failed(&mut self, reply: &mut Reply) {
        if let Data::Opening { .. } = self.data {
            self.data = Data::None;
            reply.line(425, "Cannot open passive connection; try again.");
        }
    }

    /// A connection arrived on the listener from `peer`: whether to accept
    /// it. Only the control connection's peer, and only one per PASV; the
    /// PD resets a refused one and keeps listening.
    pub fn data_connection(&mut self, peer: [u8; 4]) -> bool {
        if self.closed || peer != self.config.peer {
            return false;
        }
        match &mut self.data {
            Data::Listening { connected, .. } | Data::Transfer { connected, .. } if !*connected => {
                *connected = true;
                true
            }
            _ => false,
        }
    }

    /// The transfer [`Action::Transfer`] started has ended: 226, 426 or
    /// 451. Ignored (nothing written) if no transfer is in progress (it
    /// was aborted).
    pub fn transfer_done(&mut self, outcome: Outcome, now: u64, reply: &mut Reply) {
        if !self.transferring() || self.closed {
            return;
        }
        self.data = Data::None;
        self.last_command = now;
        match outcome {
            Outcome::Complete => reply.line(226, "Transfer complete."),
            Outcome::ConnectionLost => reply.line(426, "Connection closed; transfer aborted."),
            Outcome::LocalError => reply.line(451, "Requested action aborted: local error in processing."),
        }
    }

    /// One input from the line reader: a too-long line is 500, a line is
    /// parsed and served.
    pub fn input(&mut self, input: Input<'_>, now: u64, image: &Image<'_>, reply: &mut Reply) -> Action {
        match input {
            Input::Line(line) => self.command(parse(line), now, image, reply),
            Input::TooLong => {
                if self.closed {
                    return Action::None;
                }
                if let Some(action) = self.rate_limit(now, reply) {
                    return action;
                }
                self.last_command = now;
                reply.line(500, "Command line too long.");
                self.count_bad(500, reply).unwrap_or(Action::None)
            }
        }
    }

    /// When the next command may be served, if not at `now`: the rate
    /// limit's credit refills at [`RATE_PER_SECOND`] commands a second up
    /// to [`RATE_BURST`] (module docs, "Limits and timeouts").
    pub fn throttled_until(&self, now: u64) -> Option<u64> {
        let elapsed = now.saturating_sub(self.credit_at);
        let credit = self.credit_ns.saturating_add(elapsed).min(RATE_BURST * COMMAND_COST_NS);
        (credit < COMMAND_COST_NS).then(|| now + (COMMAND_COST_NS - credit))
    }

    /// Takes one command's cost from the credit; 421 and close if there
    /// is not enough (the caller did not wait for
    /// [`Session::throttled_until`]).
    fn rate_limit(&mut self, now: u64, reply: &mut Reply) -> Option<Action> {
        let elapsed = now.saturating_sub(self.credit_at);
        self.credit_at = self.credit_at.max(now);
        self.credit_ns = self.credit_ns.saturating_add(elapsed).min(RATE_BURST * COMMAND_COST_NS);
        if self.credit_ns < COMMAND_COST_NS {
            reply.line(421, "Too many commands; closing control connection.");
            return Some(self.close());
        }
        self.credit_ns -= COMMAND_COST_NS;
        None
    }

    /// Counts a reply of `code` against [`MAX_BAD_COMMANDS`].
    fn count_bad(&mut self, code: u16, reply: &mut Reply) -> Option<Action> {
        if (500..=504).contains(&code) || code == 530 {
            self.bad_commands += 1;
            if self.bad_commands > MAX_BAD_COMMANDS {
                reply.line(421, "Too many errors; closing control connection.");
                return Some(self.close());
            }
        }
        None
    }

    /// Serves one command at `now`; see the module docs.
    pub fn command(&mut self, cmd: Command<'_>, now: u64, image: &Image<'_>, reply: &mut Reply) -> Action {
        if self.closed {
            return Action::None;
        }
        if let Some(action) = self.rate_limit(now, reply) {
            return action;
        }
        self.last_command = now;
        let before = reply.as_bytes().len();
        let action = self.dispatch(cmd, now, image, reply);
        if self.closed {
            return action;
        }
        let code = if reply.as_bytes().len() > before { reply.last_code() } else { None };
        // A 5xx comes with no data action, so closing loses nothing.
        code.and_then(|c| self.count_bad(c, reply)).unwrap_or(action)
    }

    fn dispatch(&mut self, cmd: Command<'_>, now: u64, image: &Image<'_>, reply: &mut Reply) -> Action {
        if self.transferring() && !matches!(cmd, Command::Abor | Command::Quit | Command::Stat(None) | Command::Noop) {
            reply.line(503, "A transfer is in progress; wait for its reply or send ABOR.");
            return Action::None;
        }
        if self.login != Login::In && !cmd.allowed_before_login() {
            reply.line(530, "Please login with USER and PASS.");
            return Action::None;
        }
        match cmd {
            Command::User(name) => {
                if self.login == Login::In {
                    reply.line(530, "Already logged in; cannot change user.");
                } else if name.eq_ignore_ascii_case(b"anonymous") || name.eq_ignore_ascii_case(b"ftp") {
                    self.login = Login::UserOk;
                    reply.line(331, "Anonymous login ok; send any password.");
                } else {
                    self.login = Login::Start;
                    self.login_failures += 1;
                    if self.login_failures >= MAX_LOGIN_FAILURES {
                        reply.line(421, "Too many failed logins; closing control connection.");
                        return self.close();
                    }
                    reply.line(530, "This server accepts anonymous logins only.");
                }
                Action::None
            }
            Command::Pass => {
                match self.login {
                    Login::Start => reply.line(503, "Login with USER first."),
                    Login::UserOk => {
                        self.login = Login::In;
                        reply.line(230, "Login successful.");
                    }
                    Login::In => reply.line(230, "Already logged in."),
                }
                Action::None
            }
            Command::Acct | Command::Allo => {
                reply.line(202, "Command not implemented, superfluous at this site.");
                Action::None
            }
            Command::Syst => {
                reply.line(215, "UNIX Type: L8");
                Action::None
            }
            Command::Feat => {
                // RFC 2389 §3.2; each feature's RFC: EPSV (2428), MDTM,
                // MLST, REST STREAM, SIZE, TVFS (3659), UTF8 (2640).
                reply.first_fmt(211, format_args!("Features:"));
                reply.inner("EPSV");
                reply.inner("MDTM");
                let mut facts = FactsText::default();
                let _ = self.facts.feat(&mut facts);
                reply.inner_fmt(format_args!("MLST {}", facts.as_str()));
                reply.inner("REST STREAM");
                reply.inner("SIZE");
                reply.inner("TVFS");
                reply.inner("UTF8");
                reply.line(211, "End");
                Action::None
            }
            Command::Opts(arg) => {
                self.opts(arg, reply);
                Action::None
            }
            Command::Pwd => {
                reply.line_fmt(257, format_args!("{} is the current directory.", Quoted(self.cwd.as_str_lossy())));
                Action::None
            }
            Command::Cwd(arg) => {
                self.change_dir(arg, image, reply);
                Action::None
            }
            Command::Cdup => {
                self.change_dir(b"..", image, reply);
                Action::None
            }
            Command::Type(t) => {
                match t {
                    DataType::Ascii => {
                        self.ascii = true;
                        reply.line(200, "Switching to ASCII mode.");
                    }
                    DataType::Image => {
                        self.ascii = false;
                        reply.line(200, "Switching to Binary mode.");
                    }
                    DataType::Unsupported => reply.line(504, "Only TYPE A and TYPE I are served."),
                }
                Action::None
            }
            Command::Mode(stream) => {
                if stream {
                    reply.line(200, "Mode set to S.");
                } else {
                    reply.line(504, "Only MODE S is served.");
                }
                Action::None
            }
            Command::Stru(file) => {
                if file {
                    reply.line(200, "Structure set to F.");
                } else {
                    reply.line(504, "Only STRU F is served.");
                }
                Action::None
            }
            Command::Pasv if self.epsv_all => {
                reply.line(503, "EPSV ALL is in effect; use EPSV.");
                Action::None
            }
            Command::Pasv => self.open_passive(false, reply),
            Command::Epsv(EpsvArg::Ipv4) => self.open_passive(true, reply),
            Command::Epsv(EpsvArg::All) => {
                self.epsv_all = true;
                reply.line(200, "EPSV ALL ok.");
                Action::None
            }
            Command::Epsv(EpsvArg::Other) => {
                reply.line(522, "Network protocol not supported, use (1)");
                Action::None
            }
            Command::Port | Command::Eprt => {
                reply.line(502, "Active mode is not offered; use PASV or EPSV.");
                Action::None
            }
            Command::List(arg) => self.list(skip_options(arg), Format::List, now, image, reply),
            Command::Nlst(arg) => self.list(skip_options(arg), Format::Nlst, now, image, reply),
            Command::Mlsd(arg) => self.list(arg.unwrap_or(b""), Format::Mlsd, now, image, reply),
            Command::Mlst(arg) => {
                self.mlst(arg.unwrap_or(b""), image, reply);
                Action::None
            }
            Command::Size(arg) => {
                match self.file(arg, image) {
                    Err(why) => reply.line(550, why),
                    Ok(_) if self.ascii => {
                        reply.line(550, "SIZE is not given in ASCII mode; use TYPE I.");
                    }
                    Ok((_, size, _)) => reply.line_fmt(213, format_args!("{size}")),
                }
                Action::None
            }
            Command::Mdtm(arg) => {
                match self.file(arg, image) {
                    Err(why) => reply.line(550, why),
                    Ok((_, _, modified)) => {
                        let m = mdtm(modified);
                        reply.line(213, core::str::from_utf8(&m).unwrap_or("19700101000000"));
                    }
                }
                Action::None
            }
            Command::Rest(n) => {
                self.rest = n;
                reply.line_fmt(350, format_args!("Restarting at {n}. Send RETR to resume."));
                Action::None
            }
            Command::Retr(arg) => self.retr(arg, now, image, reply),
            Command::Noop => {
                reply.line(200, "NOOP ok.");
                Action::None
            }
            Command::Quit => {
                if self.transferring() {
                    reply.line(426, "Connection closed; transfer aborted.");
                }
                reply.line(221, "Goodbye.");
                self.close()
            }
            Command::Abor => match self.data {
                Data::Transfer { .. } => {
                    self.data = Data::None;
                    reply.line(426, "Connection closed; transfer aborted.");
                    reply.line(226, "Closing data connection.");
                    Action::Abort
                }
                Data::Listening { .. } | Data::Opening { .. } => {
                    self.data = Data::None;
                    reply.line(225, "No transfer to abort; data connection closed.");
                    Action::ClosePassive
                }
                Data::None => {
                    reply.line(225, "No transfer to abort.");
                    Action::None
                }
            },
            Command::Stat(None) => {
                self.stat(reply);
                Action::None
            }
            Command::Stat(Some(_)) => {
                reply.line(504, "STAT with a pathname is not served; use LIST.");
                Action::None
            }
            Command::Help => {
                reply.first_fmt(214, format_args!("The following commands are recognized."));
                reply.inner("ABOR CDUP CWD  EPSV FEAT HELP LIST MDTM MLSD MLST MODE NLST NOOP");
                reply.inner("OPTS PASS PASV PWD  QUIT REST RETR SIZE STAT STRU SYST TYPE USER");
                reply.inner("XCUP XCWD XPWD");
                reply.line(214, "Help OK.");
                Action::None
            }
            Command::Write(_) => {
                reply.line(550, "Permission denied: this server is read-only.");
                Action::None
            }
            Command::Rnto => {
                reply.line(503, "RNFR required first.");
                Action::None
            }
            Command::Site | Command::Rein | Command::Smnt => {
                reply.line(502, "Command not implemented.");
                Action::None
            }
            Command::Syntax => {
                reply.line(501, "Syntax error in parameters or arguments.");
                Action::None
            }
            Command::Unknown => {
                reply.line(500, "Unknown command.");
                Action::None
            }
        }
    }

    fn opts(&mut self, arg: &[u8], reply: &mut Reply) {
        let (name, value) = match arg.iter().position(|&b| b == b' ') {
            Some(sp) => (&arg[..sp], &arg[sp + 1..]),
            None => (arg, &b""[..]),
        };
        if name.eq_ignore_ascii_case(b"UTF8") && (value.is_empty() || value.eq_ignore_ascii_case(b"ON")) {
            // RFC 2640 §3.2 (and the common `OPTS UTF8 ON`): names are
            // always UTF-8 here.
            reply.line(200, "Always in UTF8 mode.");
        } else if name.eq_ignore_ascii_case(b"MLST") {
            // RFC 3659 §7.9: select facts; the reply lists those selected.
            self.facts = Facts::parse(value);
            let mut text = FactsText::default();
            let _ = self.facts.selected(&mut text);
            let sp = if text.as_str().is_empty() { "" } else { " " };
            reply.line_fmt(200, format_args!("MLST OPTS{sp}{}", text.as_str()));
        } else {
            reply.line(501, "Option not understood.");
        }
    }

    fn change_dir(&mut self, arg: &[u8], image: &Image<'_>, reply: &mut Reply) {
        match self.cwd.resolve(arg) {
            Ok(dir) if dir.is_root() || image.is_directory(dir.as_bytes()) => {
                self.cwd = dir;
                reply.line(250, "Directory successfully changed.");
            }
            Ok(dir) if image.position(dir.as_bytes()).is_some() => reply.line(550, "Not a directory."),
            _ => reply.line(550, "No such directory."),
        }
    }

    /// The file `arg` names: its index position, size and Last-Modified,
    /// or the text of the 550.
    fn file(&self, arg: &[u8], image: &Image<'_>) -> Result<(u32, u64, u64), &'static str> {
        let path = self.cwd.resolve(arg).map_err(|_| "No such file.")?;
        if let Some(position) = image.position(path.as_bytes()) {
            if let Some(r) = image.record(position) {
                return Ok((position, r.size, r.last_modified));
            }
        }
        if path.is_root() || image.is_directory(path.as_bytes()) {
            Err("Not a plain file.")
        } else {
            Err("No such file.")
        }
    }

    fn open_passive(&mut self, extended: bool, reply: &mut Reply) -> Action {
        if let Data::Listening { .. } = self.data {
            if let Some(close) = self.unused_passive(reply) {
                return close;
            }
        }
        self.data = Data::Opening { extended };
        Action::OpenPassive
    }

    /// The listener for a transfer, or 425.
    fn start(&mut self, what: &str, transfer: Transfer, now: u64, reply: &mut Reply) -> Action {
        let Data::Listening { connected, .. } = self.data else {
            reply.line(425, "Use PASV or EPSV first.");
            return Action::None;
        };
        let (code, how) = if connected {
            (125, "Data connection already open; transfer starting")
        } else {
            (150, "Opening data connection")
        };
        reply.line_fmt(code, format_args!("{how} for {what}."));
        self.data = Data::Transfer { since: now, connected };
        self.unused_passive = 0;
        Action::Transfer(transfer)
    }

    fn retr(&mut self, arg: &[u8], now: u64, image: &Image<'_>, reply: &mut Reply) -> Action {
        let rest = core::mem::take(&mut self.rest);
        let (position, size, _) = match self.file(arg, image) {
            Ok(f) => f,
            Err(why) => {
                reply.line(550, why);
                return Action::None;
            }
        };
        let limit = if self.ascii { size.saturating_mul(2) } else { size };
        if rest > limit {
            reply.line(554, "Requested action not taken: invalid REST parameter.");
            return Action::None;
        }
        let transfer = if self.ascii {
            Transfer::Retr { position, start: 0, len: size, ascii: Some(AsciiEncoder::new(rest)) }
        } else {
            Transfer::Retr { position, start: rest, len: size - rest, ascii: None }
        };
        let path = self.cwd.resolve(arg).unwrap_or_default();
        let mode = if self.ascii { "ASCII" } else { "BINARY" };
        let mut what = FactsText::default();
        let _ = core::fmt::Write::write_fmt(
            &mut what,
            format_args!("{mode} transfer of {} ({size} bytes)", path.as_str_lossy()),
        );
        self.start(what.as_str(), transfer, now, reply)
    }

    fn list(&mut self, arg: &[u8], format: Format, now: u64, image: &Image<'_>, reply: &mut Reply) -> Action {
        self.rest = 0;
        let Ok(path) = self.cwd.resolve(arg) else {
            reply.line(550, "No such file or directory.");
            return Action::None;
        };
        let cursor = if path.is_root() || image.is_directory(path.as_bytes()) {
            let cursor = ListCursor::directory(image, &path, format, self.facts);
            match (format, arg.is_empty()) {
                (Format::Nlst, false) => cursor.naming_from(self.names_from(arg, &path)),
                _ => cursor,
            }
        } else if let Some(position) = image.position(path.as_bytes()) {
            if format == Format::Mlsd {
                reply.line(501, "MLSD needs a directory.");
                return Action::None;
            }
            ListCursor::file(image, position, format, self.facts)
        } else {
            reply.line(550, "No such file or directory.");
            return Action::None;
        };
        let what = match format {
            Format::List => "directory listing",
            Format::Nlst => "name list",
            Format::Mlsd => "MLSD listing",
        };
        self.start(what, Transfer::Listing(cursor), now, reply)
    }

    /// Where NLST's names of the entries under the directory named by
    /// `arg` start in their absolute paths: at 0 (absolute paths) for an
    /// absolute `arg`, else after the current directory and its `/`
    /// (paths relative to it) when the directory lies under it; absolute
    /// otherwise (`..` led out of it).
    fn names_from(&self, arg: &[u8], dir: &SitePath) -> u32 {
        if arg.first() == Some(&b'/') {
            return 0;
        }
        if self.cwd.is_root() {
            return 1;
        }
        let (cwd, dir) = (self.cwd.as_bytes(), dir.as_bytes());
        let under = dir.strip_prefix(cwd).is_some_and(|rest| rest.is_empty() || rest[0] == b'/');
        if under {
            cwd.len() as u32 + 1
        } else {
            0
        }
    }

    fn mlst(&mut self, arg: &[u8], image: &Image<'_>, reply: &mut Reply) {
        let Ok(path) = self.cwd.resolve(arg) else {
            reply.line(550, "No such file or directory.");
            return;
        };
        let kind = if let Some(r) = image.lookup(path.as_bytes()) {
            Kind::File { size: r.size, modified: r.last_modified }
        } else if path.is_root() || image.is_directory(path.as_bytes()) {
            // LIST's date of a directory: its first file's.
            let first = crate::listing::children(image, &path).start;
            Kind::Dir { modified: image.record(first).map_or(0, |r| r.last_modified) }
        } else {
            reply.line(550, "No such file or directory.");
            return;
        };
        // RFC 3659 §7.2: 250-, the entry line starting with a space, 250.
        reply.first_fmt(250, format_args!("Listing {}", path.as_str_lossy()));
        let mut facts = FactsText::default();
        let _ = write_facts(&mut facts, kind, self.facts);
        reply.inner_fmt(format_args!("{}{}", facts.as_str(), path.as_str_lossy()));
        reply.line(250, "End");
    }

    fn stat(&self, reply: &mut Reply) {
        // RFC 959 §4.1.3: STAT without argument gives the status (211).
        reply.first_fmt(211, format_args!("FTP server status:"));
        let [a, b, c, d] = self.config.peer;
        reply.inner_fmt(format_args!("Connected from {a}.{b}.{c}.{d}"));
        reply.inner(if self.login == Login::In { "Logged in as anonymous" } else { "Not logged in" });
        reply.inner(if self.ascii { "TYPE: ASCII" } else { "TYPE: BINARY" });
        reply.inner(match self.data {
            Data::None => "No data connection",
            Data::Opening { .. } | Data::Listening { .. } => "Passive listener open",
            Data::Transfer { .. } => "Transfer in progress",
        });
        reply.line(211, "End of status");
    }
}

/// LIST and NLST arguments without leading `-options` words.
fn skip_options(arg: Option<&[u8]>) -> &[u8] {
    let mut rest = arg.unwrap_or(b"");
    while rest.first() == Some(&b'-') {
        rest = match rest.iter().position(|&b| b == b' ') {
            Some(sp) => &rest[sp + 1..],
            None => b"",
        };
    }
    rest
}

/// A short text built on the stack (facts, transfer descriptions).
struct FactsText {
    buf: [u8; fs_format::path::MAX_PATH_LEN + 128],
    len: usize,
}

impl Default for FactsText {
    fn default() -> Self {
        FactsText { buf: [0; fs_format::path::MAX_PATH_LEN + 128], len: 0 }
    }
}

impl FactsText {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for FactsText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let slot = self.buf.get_mut(self.len..self.len + s.len()).ok_or(core::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}
