//! `ftpd-core`: the FTP control connection as the FTP server PD will run
//! it: bytes from the client through the [`LineReader`] (Telnet removed,
//! the line length limit) into the [`Session`], whose [`Action`]s are
//! played as the PD would with fuzzed outcomes (a listener that opens or
//! fails, a data connection from the peer or a stranger, a transfer that
//! completes, is lost or fails), and the clock moved by fuzzed steps.
//!
//! Input: a sequence of operations, each an opcode byte and its bytes:
//! feed a chunk of the stream (its length and bytes), move the clock and
//! poll, or end the stream there.
//!
//! Checks: every reply is well formed (`ftpd_core::reply::well_formed`:
//! three digits, space or hyphen, CRLF, multi-line replies closed); a
//! line gets a reply unless it asked for a listener or the session has
//! closed; an overlong line gets 500; a closed session stays closed and
//! says nothing more; a listing always ends, each fill making progress
//! and staying in its buffer; a RETR names a file of the image and a
//! range inside it; the lines the reader gives do not depend on how the
//! stream was split (RFC 959's control connection is a byte stream).

#![no_main]

use fs_format::build::{plan, Planned};
use fs_format::Image;
use ftpd_core::command::{Input as Line, LineReader};
use ftpd_core::reply::{well_formed, Reply};
use ftpd_core::session::{Action, Config, Outcome, Session, Transfer};
use fuzz::Input;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SERVER: [u8; 4] = [192, 0, 2, 1];
const PEER: [u8; 4] = [198, 51, 100, 7];
const SEC: u64 = 1_000_000_000;

/// A small site's head: files at the root and two levels down, an empty
/// file, a name that looks like an escape.
fn head() -> &'static [u8] {
    static HEAD: OnceLock<Vec<u8>> = OnceLock::new();
    HEAD.get_or_init(|| {
        let files: &[(&str, u64)] = &[
            ("/%2e%2e", 19),
            ("/docs/a/deep.txt", 4),
            ("/docs/intro.txt", 18),
            ("/empty.txt", 0),
            ("/index.html", 12),
            ("/old.bin", 5000),
        ];
        let planned: Vec<Planned> = files
            .iter()
            .enumerate()
            .map(|(i, &(path, size))| Planned {
                path: path.to_string(),
                size,
                last_modified: 784_111_777 + i as u64 * 86_400 * 400,
                sha256: [0; 32],
                sums: vec![0; fs_format::sums::piece_count(size) as usize * 2],
                flags: 0,
                span_leader: i,
            })
            .collect();
        plan(&planned, fs_format::MAX_BLOCKS).expect("the sample site plans").head
    })
}

fuzz_target!(|data: &[u8]| {
    let image = Image::parse(head()).expect("the sample site parses");
    let mut input = Input::new(data);
    let mut session = Session::new(Config { server: SERVER, peer: PEER }, 0);
    let mut reply = Reply::new();
    session.greeting(&mut reply);
    assert!(well_formed(reply.as_bytes()));
    let mut reader = LineReader::new();
    let mut now = 0u64;
    let mut stream = Vec::new();
    let mut lines = Vec::new();
    while !input.is_empty() {
        match input.u8() % 4 {
            0 | 1 => {
                let len = usize::from(input.u8()) + 1;
                let chunk = input.take(len);
                stream.extend_from_slice(chunk);
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (used, line) = reader.feed(rest);
                    assert!(used <= rest.len());
                    rest = &rest[used..];
                    let Some(line) = line else {
                        assert!(used > 0, "no progress without a line");
                        continue;
                    };
                    lines.push(record(&line));
                    now += u64::from(input.u16()) * 1_000_000;
                    let was_closed = session.is_closed();
                    reply.clear();
                    let action = session.input(line, now, &image, &mut reply);
                    if was_closed {
                        assert!(reply.is_empty(), "a closed session replied: {reply:?}");
                        assert_eq!(action, Action::None);
                        continue;
                    }
                    if matches!(line, Line::TooLong) {
                        assert!(
                            reply.as_bytes().starts_with(b"500") || reply.as_bytes().starts_with(b"421"),
                            "{reply:?}"
                        );
                    }
                    if action != Action::OpenPassive {
                        assert!(!reply.is_empty(), "{line:?} got no reply");
                    }
                    play(&mut session, action, &image, &mut input, now, &mut reply);
                    assert!(reply.is_empty() || well_formed(reply.as_bytes()), "{line:?}: {reply:?}");
                }
            }
            2 => {
                now += u64::from(input.u16()) * SEC / 8;
                let was_closed = session.is_closed();
                reply.clear();
                let action = session.poll(now, &mut reply);
                if was_closed {
                    assert!(reply.is_empty() && action == Action::None);
                }
                play(&mut session, action, &image, &mut input, now, &mut reply);
                assert!(reply.is_empty() || well_formed(reply.as_bytes()), "poll: {reply:?}");
            }
            _ => break,
        }
    }
    // The same stream whole gives the same lines.
    let mut whole = LineReader::new();
    let mut rest = &stream[..];
    let mut again = Vec::new();
    while !rest.is_empty() {
        let (used, line) = whole.feed(rest);
        rest = &rest[used..];
        if let Some(line) = line {
            again.push(record(&line));
        }
    }
    assert_eq!(again, lines, "the lines depend on how the stream was split");
});

fn record(line: &Line<'_>) -> Option<Vec<u8>> {
    match line {
        Line::Line(bytes) => Some(bytes.to_vec()),
        Line::TooLong => None,
    }
}

/// What the PD does with `action`, its outcomes fuzzed.
fn play(s: &mut Session, action: Action, image: &Image<'_>, input: &mut Input, now: u64, reply: &mut Reply) {
    match action {
        Action::OpenPassive => {
            if input.u8() % 5 == 0 {
                s.passive_failed(reply);
            } else {
                let _ = s.passive_opened(input.u16(), now, reply);
                if input.bool() {
                    s.data_connection(if input.bool() { PEER } else { [10, 0, 0, 9] });
                }
            }
        }
        Action::Transfer(Transfer::Listing(mut cursor)) => {
            let mut buf = [0u8; 1400];
            let mut fills = 0;
            while !cursor.is_done() {
                let len = 1 + usize::from(input.u8()) * 5;
                let n = cursor.fill(image, now / SEC, &mut buf[..len]);
                assert!(n > 0 && n <= len, "a fill of {len} bytes gave {n}");
                fills += 1;
                assert!(fills < 1_000_000, "the listing never ends");
            }
            finish(s, input, now, reply);
        }
        Action::Transfer(Transfer::Retr { position, start, len, .. }) => {
            let record = image.record(position).expect("RETR of a file of the image");
            assert!(start.checked_add(len).is_some_and(|end| end <= record.size), "{start}+{len} of {}", record.size);
            finish(s, input, now, reply);
        }
        Action::None | Action::ClosePassive | Action::Abort | Action::Close => {}
    }
}

fn finish(s: &mut Session, input: &mut Input, now: u64, reply: &mut Reply) {
    // Sometimes the transfer still runs when the next command comes.
    match input.u8() % 4 {
        0 => {}
        1 => s.transfer_done(Outcome::Complete, now, reply),
        2 => s.transfer_done(Outcome::ConnectionLost, now, reply),
        _ => s.transfer_done(Outcome::LocalError, now, reply),
    }
}
