//! The control connection's lines (RFC 959 §4.1, §5.3) into [`Command`]s.
//!
//! # Lines ([`LineReader`])
//!
//! - **End of line.** RFC 959 §4.1 ends a command with CRLF (the Telnet
//!   end of line). A bare LF is accepted too, and a CR right before it is
//!   dropped: clients typed by hand and some scripts send LF alone, and
//!   accepting it costs nothing (no reply could be misread by it). A CR not
//!   followed by LF stays in the line, where the parser refuses it (501) as
//!   every other control byte.
//! - **Telnet.** The control connection speaks the Telnet protocol (RFC 959
//!   §4.1, RFC 854). The reader removes Telnet commands wherever they are,
//!   also across chunk boundaries: `IAC IAC` is a data byte 0xFF; `IAC`
//!   WILL/WONT/DO/DONT and the option byte are dropped (option negotiation
//!   is refused by never agreeing: RFC 1123 §4.1.2.12 allows a server to
//!   ignore it); `IAC` and any other command (IP, DM, AYT, ...) are
//!   dropped. So the `IAC IP IAC DM ABOR` that RFC 959 §4.1.3 asks a client
//!   to send reaches the parser as a plain `ABOR`. (0xFF is never part of
//!   UTF-8, so no path is lost to this.) Subnegotiation (`IAC SB ... IAC
//!   SE`) follows no negotiated option and is not expected: its `IAC`
//!   pairs are dropped and the bytes between reach the parser, which
//!   refuses what they make.
//! - **Length.** A line holds at most [`MAX_LINE`] bytes (1032: a verb, a
//!   space and the longest stored path, `fs_format::path::MAX_PATH_LEN` =
//!   1024, with room to spare), not counting its end. RFC 959 sets no
//!   limit; a fixed buffer needs one. A longer line gives
//!   [`Input::TooLong`] as soon as the limit is passed (the session answers
//!   500), and its remaining bytes up to and including the next LF are
//!   discarded.
//!
//! # Commands ([`parse`])
//!
//! A line is `verb [SP argument]` (RFC 959 §5.3.1). The verb is three or
//! four letters, case-insensitive (§5.3: "The command codes themselves are
//! alphabetic characters ... Upper and lower case alphabetic characters are
//! to be treated identically"). The argument is everything after the first
//! space, unchanged (a file name may start with a space). A line that is
//! not a verb of letters is [`Command::Unknown`] (500); so is a verb this
//! crate does not know. The argument of a known verb is checked:
//!
//! - no control byte (C0 or DEL) may appear: NUL is no part of a path and
//!   RFC 959 §5.3.2 has `<char>` exclude CR and LF; such a line is
//!   [`Command::Syntax`] (501);
//! - a verb that takes no argument (PWD, CDUP, PASV, NOOP, ...) with a
//!   non-empty one is [`Command::Syntax`] (501). An empty one (a trailing
//!   space) is accepted as none.
//! - a verb that needs one (CWD, RETR, SIZE, MDTM, REST, TYPE, ...)
//!   without it is [`Command::Syntax`] (501).
//!
//! Write and account verbs are recognised (not `Unknown`) so that they get
//! the refusal the session documents, not "unknown command".

/// The longest line, end of line not counted: 1032 bytes.
pub const MAX_LINE: usize = fs_format::path::MAX_PATH_LEN + 8;

const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// What [`LineReader::feed`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'l> {
    /// A complete line, without its end and Telnet commands.
    Line(&'l [u8]),
    /// A line passed [`MAX_LINE`] bytes; the rest of it will be discarded.
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Telnet {
    /// Data.
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes.
    Option,
}

/// Assembles lines from the control connection's bytes, split anywhere.
#[derive(Clone, Debug)]
pub struct LineReader {
    buf: [u8; MAX_LINE + 1],
    len: usize,
    telnet: Telnet,
    /// The current line passed the limit: discard up to its LF.
    discarding: bool,
    /// The last call returned a line: start a new one.
    returned: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader::new()
    }
}

impl LineReader {
    /// An empty reader.
    pub const fn new() -> LineReader {
        LineReader { buf: [0; MAX_LINE + 1], len: 0, telnet: Telnet::Data, discarding: false, returned: false }
    }

    /// Consumes bytes from `data` up to the end of one line (or the point
    /// where a line became too long) and returns how many it consumed and
    /// what it found. Call it again with the rest of `data` until that is
    /// empty:
    ///
    /// ```
    /// # use ftpd_core::command::{LineReader, Input};
    /// let mut reader = LineReader::new();
    /// let mut data: &[u8] = b"USER anonymous\r\nPA";
    /// let mut lines = 0;
    /// while !data.is_empty() {
    ///     let (used, input) = reader.feed(data);
    ///     data = &data[used..];
    ///     if let Some(Input::Line(line)) = input {
    ///         assert_eq!(line, b"USER anonymous");
    ///         lines += 1;
    ///     }
    /// }
    /// assert_eq!(lines, 1); // "PA" waits for the rest of its line
    /// ```
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Input<'_>>) {
        if self.returned {
            self.len = 0;
            self.returned = false;
        }
        for (i, &b) in data.iter().enumerate() {
            let byte = match self.telnet {
                Telnet::Data if b == IAC => {
                    self.telnet = Telnet::Iac;
                    None
                }
                Telnet::Data => Some(b),
                Telnet::Iac => {
                    self.telnet = match b {
                        WILL..=DONT => Telnet::Option,
                        _ => Telnet::Data,
                    };
                    (b == IAC).then_some(IAC)
                }
                Telnet::Option => {
                    self.telnet = Telnet::Data;
                    None
                }
            };
            let Some(byte) = byte else { continue };
            if byte == b'\n' {
                if self.discarding {
                    self.discarding = false;
                    self.len = 0;
                    continue;
                }
                let mut end = self.len;
                if end > 0 && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                self.returned = true;
                if end > MAX_LINE {
                    return (i + 1, Some(Input::TooLong));
                }
                return (i + 1, Some(Input::Line(&self.buf[..end])));
            }
            if self.discarding {
                continue;
            }
            // One byte more than MAX_LINE fits, for the CR of a line of
            // exactly MAX_LINE bytes.
            if self.len == MAX_LINE + 1 {
                self.discarding = true;
                self.len = 0;
                return (i + 1, Some(Input::TooLong));
            }
            self.buf[self.len] = byte;
            self.len += 1;
        }
        (data.len(), None)
    }
}

/// TYPE's argument (RFC 959 §3.1.1, §4.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    /// `A` or `A N`: ASCII, non-print (the default, RFC 959 §3.1.1.5).
    Ascii,
    /// `I`, or `L 8` (local byte size 8 is the image type on 8-bit hosts).
    Image,
    /// `E`, `A T`, `A C`, `L` with another size: 504.
    Unsupported,
}

/// EPSV's argument (RFC 2428 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument, or `1` (IPv4).
    Ipv4,
    /// `ALL`: only EPSV from now on (RFC 2428 §4).
    All,
    /// Another network protocol number (`2` is IPv6): 522.
    Other,
}

/// A verb that would change the site: refused, see the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteVerb {
    Stor,
    Stou,
    Appe,
    Dele,
    Rmd,
    Mkd,
    Rnfr,
}

/// One parsed command line. Arguments borrow from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'l> {
    /// USER name (RFC 959 §4.1.1).
    User(&'l [u8]),
    /// PASS (the password is not kept: any is accepted for anonymous).
    Pass,
    /// ACCT (RFC 959 §4.1.1).
    Acct,
    /// SYST (RFC 959 §4.1.3).
    Syst,
    /// FEAT (RFC 2389 §3).
    Feat,
    /// OPTS argument (RFC 2389 §4).
    Opts(&'l [u8]),
    /// PWD or XPWD (RFC 959 §4.1.3; RFC 775).
    Pwd,
    /// CWD or XCWD path (RFC 959 §4.1.1).
    Cwd(&'l [u8]),
    /// CDUP or XCUP (RFC 959 §4.1.1).
    Cdup,
    /// TYPE (RFC 959 §4.1.2).
    Type(DataType),
    /// MODE: `true` for `S` (stream), the only mode served.
    Mode(bool),
    /// STRU: `true` for `F` (file), the only structure served.
    Stru(bool),
    /// PASV (RFC 959 §4.1.2).
    Pasv,
    /// EPSV (RFC 2428 §3).
    Epsv(EpsvArg),
    /// PORT (RFC 959 §4.1.2): active mode, refused.
    Port,
    /// EPRT (RFC 2428 §2): active mode, refused.
    Eprt,
    /// LIST `[path]` (RFC 959 §4.1.3); leading `-options` are in the path.
    List(Option<&'l [u8]>),
    /// NLST `[path]` (RFC 959 §4.1.3).
    Nlst(Option<&'l [u8]>),
    /// MLSD `[path]` (RFC 3659 §7).
    Mlsd(Option<&'l [u8]>),
    /// MLST `[path]` (RFC 3659 §7).
    Mlst(Option<&'l [u8]>),
    /// SIZE path (RFC 3659 §4).
    Size(&'l [u8]),
    /// MDTM path (RFC 3659 §3).
    Mdtm(&'l [u8]),
    /// REST offset (RFC 3659 §5: a decimal byte count in stream mode).
    Rest(u64),
    /// RETR path (RFC 959 §4.1.3).
    Retr(&'l [u8]),
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
    /// ABOR (RFC 959 §4.1.3).
    Abor,
    /// STAT `[path]` (RFC 959 §4.1.3).
    Stat(Option<&'l [u8]>),
    /// HELP `[topic]`.
    Help,
    /// STOR, STOU, APPE, DELE, RMD/XRMD, MKD/XMKD, RNFR.
    Write(WriteVerb),
    /// RNTO (needs an accepted RNFR first, which never happens).
    Rnto,
    /// SITE (RFC 959 §4.1.3).
    Site,
    /// ALLO (RFC 959 §4.1.3).
    Allo,
    /// REIN (RFC 959 §4.1.1).
    Rein,
    /// SMNT (RFC 959 §4.1.1).
    Smnt,
    /// A known verb with a bad or missing argument, or a control byte in
    /// the line: 501.
    Syntax,
    /// Not a command this server knows: 500.
    Unknown,
}

impl Command<'_> {
    /// Whether the command may be used before login (RFC 959 §4.1.1 for
    /// USER/PASS/QUIT; RFC 2389 §3: FEAT "SHOULD" be available before
    /// login, and OPTS with it; SYST, NOOP, HELP and ABOR reveal nothing
    /// and some clients send them first).
    pub fn allowed_before_login(&self) -> bool {
        matches!(
            self,
            Command::User(_)
                | Command::Pass
                | Command::Quit
                | Command::Feat
                | Command::Opts(_)
                | Command::Syst
                | Command::Noop
                | Command::Help
                | Command::Abor
                | Command::Syntax
                | Command::Unknown
        )
    }
}

/// Splits `line` into verb and argument and parses it; see the module docs.
pub fn parse(line: &[u8]) -> Command<'_> {
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
        None => (line, None),
    };
    if !(3..=4).contains(&verb.len()) || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Command::Unknown;
    }
    let mut v = [0u8; 4];
    for (d, s) in v.iter_mut().zip(verb) {
        *d = s.to_ascii_uppercase();
    }
    let v = &v[..verb.len()];
    if arg.is_some_and(|a| a.iter().any(|&b| b < 0x20 || b == 0x7f)) {
        return if known(v) { Command::Syntax } else { Command::Unknown };
    }
    // An empty argument (a trailing space) counts as none.
    let arg = arg.filter(|a| !a.is_empty());
    let none = |c: Command<'static>| if arg.is_none() { c } else { Command::Syntax };
    let some = |f: &dyn Fn(&[u8]) -> Command<'_>| match arg {
        Some(a) => f(a),
        None => Command::Syntax,
    };
    match v {
        b"USER" => arg.map_or(Command::Syntax, Command::User),
        b"PASS" => Command::Pass, // the password may be empty (RFC 959 §5.3.2 allows it)
        b"ACCT" => Command::Acct,
        b"SYST" => none(Command::Syst),
        b"FEAT" => none(Command::Feat),
        b"OPTS" => arg.map_or(Command::Syntax, Command::Opts),
        b"PWD" | b"XPWD" => none(Command::Pwd),
        b"CWD" | b"XCWD" => arg.map_or(Command::Syntax, Command::Cwd),
        b"CDUP" | b"XCUP" => none(Command::Cdup),
        b"TYPE" => some(&|a| Command::Type(data_type(a))),
        b"MODE" => some(&|a| one_letter(a).map_or(Command::Syntax, |c| Command::Mode(c == b'S'))),
        b"STRU" => some(&|a| one_letter(a).map_or(Command::Syntax, |c| Command::Stru(c == b'F'))),
        b"PASV" => none(Command::Pasv),
        b"EPSV" => match arg {
            None => Command::Epsv(EpsvArg::Ipv4),
            Some(a) if a.eq_ignore_ascii_case(b"ALL") => Command::Epsv(EpsvArg::All),
            Some(b"1") => Command::Epsv(EpsvArg::Ipv4),
            Some(a) if decimal(a).is_some() => Command::Epsv(EpsvArg::Other),
            Some(_) => Command::Syntax,
        },
        b"PORT" => Command::Port,
        b"EPRT" => Command::Eprt,
        b"LIST" => Command::List(arg),
        b"NLST" => Command::Nlst(arg),
        b"MLSD" => Command::Mlsd(arg),
        b"MLST" => Command::Mlst(arg),
        b"SIZE" => arg.map_or(Command::Syntax, Command::Size),
        b"MDTM" => arg.map_or(Command::Syntax, Command::Mdtm),
        b"REST" => arg.and_then(decimal).map_or(Command::Syntax, Command::Rest),
        b"RETR" => arg.map_or(Command::Syntax, Command::Retr),
        b"NOOP" => none(Command::Noop),
        b"QUIT" => none(Command::Quit),
        b"ABOR" => none(Command::Abor),
        b"STAT" => Command::Stat(arg),
        b"HELP" => Command::Help,
        b"STOR" => Command::Write(WriteVerb::Stor),
        b"STOU" => Command::Write(WriteVerb::Stou),
        b"APPE" => Command::Write(WriteVerb::Appe),
        b"DELE" => Command::Write(WriteVerb::Dele),
        b"RMD" | b"XRMD" => Command::Write(WriteVerb::Rmd),
        b"MKD" | b"XMKD" => Command::Write(WriteVerb::Mkd),
        b"RNFR" => Command::Write(WriteVerb::Rnfr),
        b"RNTO" => Command::Rnto,
        b"SITE" => Command::Site,
        b"ALLO" => Command::Allo,
        b"REIN" => none(Command::Rein),
        b"SMNT" => Command::Smnt,
        _ => Command::Unknown,
    }
}

/// Whether `verb` (upper case) is one [`parse`] knows.
fn known(verb: &[u8]) -> bool {
    const KNOWN: &[&[u8]] = &[
        b"USER", b"PASS", b"ACCT", b"SYST", b"FEAT", b"OPTS", b"PWD", b"XPWD", b"CWD", b"XCWD", b"CDUP", b"XCUP",
        b"TYPE", b"MODE", b"STRU", b"PASV", b"EPSV", b"PORT", b"EPRT", b"LIST", b"NLST", b"MLSD", b"MLST", b"SIZE",
        b"MDTM", b"REST", b"RETR", b"NOOP", b"QUIT", b"ABOR", b"STAT", b"HELP", b"STOR", b"STOU", b"APPE", b"DELE",
        b"RMD", b"XRMD", b"MKD", b"XMKD", b"RNFR", b"RNTO", b"SITE", b"ALLO", b"REIN", b"SMNT",
    ];
    KNOWN.contains(&verb)
}

/// TYPE's argument: `A`, `A N`, `I`, `L 8`; the other forms of RFC 959
/// §4.1.2 (`E`, `A T`, `A C`, `L n`) are valid but unsupported.
fn data_type(a: &[u8]) -> DataType {
    let mut parts = a.split(|&b| b == b' ');
    let first = parts.next().unwrap_or(&[]);
    let second = parts.next();
    if parts.next().is_some() || first.len() != 1 {
        return DataType::Unsupported;
    }
    match (first[0].to_ascii_uppercase(), second) {
        (b'A', None) => DataType::Ascii,
        (b'A', Some(f)) if f.eq_ignore_ascii_case(b"N") => DataType::Ascii,
        (b'I', None) => DataType::Image,
        (b'L', Some(b"8")) => DataType::Image,
        _ => DataType::Unsupported,
    }
}

/// A single letter, upper-cased.
fn one_letter(a: &[u8]) -> Option<u8> {
    match a {
        [c] if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// A decimal number of at most 19 digits (always fits a `u64`).
fn decimal(a: &[u8]) -> Option<u64> {
    if a.is_empty() || a.len() > 19 || !a.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(a.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;
    use std::vec::Vec;

    fn lines_of(reader: &mut LineReader, mut data: &[u8], out: &mut Vec<Result<Vec<u8>, ()>>) {
        while !data.is_empty() {
            let (used, input) = reader.feed(data);
            assert!(used > 0 && used <= data.len());
            data = &data[used..];
            match input {
                Some(Input::Line(l)) => out.push(Ok(l.to_vec())),
                Some(Input::TooLong) => out.push(Err(())),
                None => {}
            }
        }
    }

    #[test]
    fn crlf_and_bare_lf_end_lines() {
        // RFC 959 §4.1 (CRLF); bare LF tolerated, as documented.
        let mut r = LineReader::new();
        let mut out = Vec::new();
        lines_of(&mut r, b"NOOP\r\nPWD\nSYST\r", &mut out);
        assert_eq!(out, [Ok(b"NOOP".to_vec()), Ok(b"PWD".to_vec())]);
        lines_of(&mut r, b"\n", &mut out);
        assert_eq!(out[2], Ok(b"SYST".to_vec()));
    }

    #[test]
    fn telnet_commands_are_removed() {
        // RFC 959 §4.1.3: IAC IP IAC DM before ABOR; RFC 854 IAC IAC is 0xFF;
        // option negotiation dropped (RFC 1123 §4.1.2.12).
        let mut r = LineReader::new();
        let mut out = Vec::new();
        lines_of(&mut r, b"\xff\xf4\xff\xf2ABOR\r\n\xff\xfb\x01NO\xff\xffOP\r\n", &mut out);
        assert_eq!(out, [Ok(b"ABOR".to_vec()), Ok(b"NO\xffOP".to_vec())]);
        // Split inside the IAC sequences.
        let mut out2 = Vec::new();
        for b in b"\xff\xf4\xff\xf2ABOR\r\n\xff\xfb\x01NO\xff\xffOP\r\n" {
            lines_of(&mut r, &[*b], &mut out2);
        }
        assert_eq!(out, out2);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_discarded_to_its_end() {
        let mut r = LineReader::new();
        let mut out = Vec::new();
        let mut data = std::vec![b'a'; MAX_LINE + 500];
        data.extend_from_slice(b"\r\nNOOP\r\n");
        lines_of(&mut r, &data, &mut out);
        assert_eq!(out, [Err(()), Ok(b"NOOP".to_vec())]);
        // Exactly MAX_LINE bytes is still a line.
        let mut exact = std::vec![b'b'; MAX_LINE];
        exact.extend_from_slice(b"\r\n");
        out.clear();
        lines_of(&mut r, &exact, &mut out);
        assert_eq!(out, [Ok(std::vec![b'b'; MAX_LINE])]);
        // One more, ended by a bare LF: too long, and nothing to discard.
        let mut over = std::vec![b'c'; MAX_LINE + 1];
        over.extend_from_slice(b"\nNOOP\n");
        out.clear();
        lines_of(&mut r, &over, &mut out);
        assert_eq!(out, [Err(()), Ok(b"NOOP".to_vec())]);
    }

    #[test]
    fn random_splits_give_the_same_lines() {
        // Property: however the bytes are split into chunks, the reader
        // yields the same lines and overflows.
        let mut rng = Rng(0x5eed_f7d0);
        for _ in 0..300 {
            let mut data = Vec::new();
            for _ in 0..rng.below(20) {
                let len = if rng.below(10) == 0 { MAX_LINE + rng.below(50) } else { rng.below(40) };
                for _ in 0..len {
                    data.push(match rng.below(20) {
                        0 => 0xff,
                        1 => b'\r',
                        2 => 0xf4,
                        _ => b'a' + rng.below(26) as u8,
                    });
                }
                data.extend_from_slice(if rng.below(3) == 0 { b"\n" } else { b"\r\n" });
            }
            let mut whole = Vec::new();
            lines_of(&mut LineReader::new(), &data, &mut whole);
            let mut split = Vec::new();
            let mut r = LineReader::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(64));
                lines_of(&mut r, &rest[..n], &mut split);
                rest = &rest[n..];
            }
            assert_eq!(whole, split);
            assert!(whole.iter().flatten().all(|l| l.len() <= MAX_LINE));
        }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        // RFC 959 §5.3.
        assert_eq!(parse(b"noop"), Command::Noop);
        assert_eq!(parse(b"XpWd"), Command::Pwd);
        assert_eq!(parse(b"retr a b"), Command::Retr(b"a b"));
        assert_eq!(parse(b"RETR  lead"), Command::Retr(b" lead"));
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(parse(b"CWD"), Command::Syntax);
        assert_eq!(parse(b"CWD "), Command::Syntax);
        assert_eq!(parse(b"PWD "), Command::Pwd);
        assert_eq!(parse(b"PWD x"), Command::Syntax);
        assert_eq!(parse(b"RETR a\0b"), Command::Syntax);
        assert_eq!(parse(b"RETR a\rb"), Command::Syntax);
        assert_eq!(parse(b"REST 100"), Command::Rest(100));
        assert_eq!(parse(b"REST -1"), Command::Syntax);
        assert_eq!(parse(b"REST 99999999999999999999"), Command::Syntax);
        assert_eq!(parse(b"FROB x\0"), Command::Unknown);
    }

    #[test]
    fn type_mode_stru_forms() {
        // RFC 959 §4.1.2.
        assert_eq!(parse(b"TYPE A"), Command::Type(DataType::Ascii));
        assert_eq!(parse(b"TYPE a n"), Command::Type(DataType::Ascii));
        assert_eq!(parse(b"TYPE I"), Command::Type(DataType::Image));
        assert_eq!(parse(b"TYPE L 8"), Command::Type(DataType::Image));
        assert_eq!(parse(b"TYPE E"), Command::Type(DataType::Unsupported));
        assert_eq!(parse(b"TYPE A T"), Command::Type(DataType::Unsupported));
        assert_eq!(parse(b"TYPE"), Command::Syntax);
        assert_eq!(parse(b"MODE s"), Command::Mode(true));
        assert_eq!(parse(b"MODE B"), Command::Mode(false));
        assert_eq!(parse(b"STRU F"), Command::Stru(true));
        assert_eq!(parse(b"STRU R"), Command::Stru(false));
        assert_eq!(parse(b"MODE SS"), Command::Syntax);
    }

    #[test]
    fn epsv_arguments() {
        // RFC 2428 §3, §4.
        assert_eq!(parse(b"EPSV"), Command::Epsv(EpsvArg::Ipv4));
        assert_eq!(parse(b"EPSV 1"), Command::Epsv(EpsvArg::Ipv4));
        assert_eq!(parse(b"EPSV 2"), Command::Epsv(EpsvArg::Other));
        assert_eq!(parse(b"epsv all"), Command::Epsv(EpsvArg::All));
        assert_eq!(parse(b"EPSV x"), Command::Syntax);
    }

    #[test]
    fn write_verbs_are_recognised_not_unknown() {
        for (line, cmd) in [
            (&b"STOR x"[..], Command::Write(WriteVerb::Stor)),
            (b"STOU", Command::Write(WriteVerb::Stou)),
            (b"APPE x", Command::Write(WriteVerb::Appe)),
            (b"DELE x", Command::Write(WriteVerb::Dele)),
            (b"XRMD x", Command::Write(WriteVerb::Rmd)),
            (b"mkd x", Command::Write(WriteVerb::Mkd)),
            (b"RNFR x", Command::Write(WriteVerb::Rnfr)),
            (b"RNTO x", Command::Rnto),
            (b"SITE CHMOD 777 x", Command::Site),
            (b"ALLO 10", Command::Allo),
            (b"ACCT x", Command::Acct),
            (b"REIN", Command::Rein),
            (b"SMNT /x", Command::Smnt),
            (b"PORT 1,2,3,4,5,6", Command::Port),
            (b"EPRT |1|1.2.3.4|5|", Command::Eprt),
        ] {
            assert_eq!(parse(line), cmd, "{line:?}");
        }
    }

    #[test]
    fn unknown_lines() {
        for line in [&b""[..], b"AB", b"ABCDE", b"12 x", b"\xff\xfe", b" NOOP", b"AUTH TLS"] {
            assert_eq!(parse(line), Command::Unknown, "{line:?}");
        }
    }
}
