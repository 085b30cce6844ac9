//! `net-tcp` as a server drives it: a listener that keeps no state before
//! the handshake (SYN cookies), connections (`Conn`) from the cookie's ACK
//! to their end, compact TIME-WAIT records, the challenge-ACK budget; the
//! dispatch of each segment is Cheetah's (`httpd/core/src/cheetah`): a
//! known connection, else a TIME-WAIT record, else LISTEN (SYN → SYN-ACK
//! with a cookie, ACK with a valid cookie → a connection).
//!
//! Input: a configuration (this end's window scale, retries, the cookie
//! and TIME-WAIT seeds, the start of the clock), then operations: a
//! segment from one of four peers (any flags, sequence and acknowledgment
//! numbers absolute or near the ones the server uses — so in window, just
//! outside it, exact — window, SYN options, payload length); time passing
//! (by ns, ms, s, or to a connection's deadline) with the timers run; the
//! application making the stream longer, closing it, reading what it
//! was given; the server sending (with or without TSO bursts); a fresh
//! cookie secret (every `SECRET_ROTATION_MS`, as the docs ask).
//!
//! Checks, against what the crate documents:
//! - **cookies** (`cookie`): `validate` accepts exactly what the layout
//!   of the module docs (SipHash-2-4 under the secret of the counter,
//!   parity bit, masked data, 25-bit MAC), computed here independently,
//!   accepts — so a guessed ACK opens a connection only by matching that
//!   MAC — and a SYN-ACK's cookie validates, for its 4-tuple and ISN, to
//!   the peer's MSS (the largest table entry not above it) and window
//!   scale (capped at 14); a connection exists only after such an ACK;
//! - **acceptance** (`accept`, RFC 5961): an RST at exactly RCV.NXT
//!   closes; one elsewhere in the window leaves the state and draws a
//!   challenge ACK (budget allowing); one outside the window, and any
//!   segment on a closed or TIME-WAIT connection, changes nothing at all;
//!   a SYN never changes the state, RCV.NXT or what is acknowledged; an
//!   ACK of what was never sent, or a segment without ACK, takes nothing;
//! - **receiving** (`conn`): data handed over starts at RCV.NXT, fits the
//!   window offered and the payload, and RCV.NXT moves by exactly it (and
//!   the FIN); nothing after the peer's FIN; the window never shrinks its
//!   right edge while the room only shrinks by what was given (without
//!   window scaling, whose rounding may); state changes are RFC 9293's;
//! - **sending**: every segment acknowledges RCV.NXT and offers the room;
//!   its sequence number lies in `[SND.UNA, SND.MAX]` and is the stream
//!   offset's (the stream starts after the SYN); new data ends inside
//!   `SND.UNA + SND.WND` (but for the one-byte probe of a closed window);
//!   payload inside what the application wrote, at most SMSS or the burst
//!   allowed (a longer one whole packets unless it ends the stream); FIN
//!   and PSH only at the stream's end; what is acknowledged only grows;
//!   a connection that gives up sends one RST, at SND.MAX;
//! - **timers**: after the timers ran and everything due was sent, no
//!   deadline is in the past, and a connection with data or a FIN not yet
//!   acknowledged has one (it cannot stall);
//! - **TIME-WAIT** (`timewait`), against a model of the table: at most
//!   `N` records, each living `TIME_WAIT_MS` and less than a second more;
//!   the first to expire evicted when full; each segment's decision is the
//!   one the module docs' six rules give (RST ignored, RFC 1337; a SYN
//!   beyond `rcv_nxt` reopens; the peer's FIN again restarts the timer);
//! - no panic and no arithmetic overflow (fuzz builds check overflow).

#![no_main]

use core::hash::Hasher;
use fuzz::Input;
use libfuzzer_sys::fuzz_target;
use net_tcp::accept::ChallengeLimiter;
use net_tcp::conn::{Config, Conn, Incoming, State};
use net_tcp::cookie::{
    CookieJar, FourTuple, Negotiated, COOKIE_PERIOD_MS, MAC_BITS, MAX_WSCALE, MSS_TABLE, SECRET_ROTATION_MS,
};
use net_tcp::seq::Seq;
use net_tcp::timewait::{Arrival, Decision, Record, TimeWaitTable, TIME_WAIT_MS};
use siphasher::sip::SipHasher24;

const MS: u64 = 1_000_000;
/// Connections the server holds at once.
const SLOTS: usize = 2;
/// TIME-WAIT records: small, so that the oldest is evicted.
const RECORDS: usize = 2;
const PAYLOAD: [u8; 4096] = [b'r'; 4096];

fn tuple(n: usize) -> FourTuple {
    FourTuple {
        local_addr: [10, 0, 2, 15],
        local_port: 80,
        remote_addr: [10, 0, 2, 2 + (n / 2) as u8],
        remote_port: 40_000 + (n % 2) as u16,
    }
}
const PEERS: usize = 4;

/// The application's side of one connection.
struct Slot {
    peer: usize,
    conn: Conn,
    /// The SYN-ACK's sequence number: the stream's offset 0 is `iss + 1`.
    iss: Seq,
    /// This end's effective window scale.
    rcv_wscale: u8,
    /// Stream bytes made available, and whether a FIN follows them.
    written: u64,
    closed: bool,
    /// The request buffer: its size and what was given and not read.
    buffer: u32,
    unread: u32,
    /// What the peer had acknowledged, last seen.
    acked: u64,
    /// The right edge of the last window offered (RCV.NXT + RCV.WND).
    edge: Option<Seq>,
    peer_fin: bool,
}

impl Slot {
    fn room(&self) -> u32 {
        self.buffer - self.unread
    }

    /// The receive window the connection judges segments by.
    fn rcv_wnd(&self) -> u32 {
        (self.room() >> self.rcv_wscale).min(u32::from(u16::MAX)) << self.rcv_wscale
    }
}

/// What a peer last did in its handshake: its SYN's ISN and the cookie the
/// server answered with.
#[derive(Clone, Copy, Default)]
struct Handshake {
    isn: Seq,
    cookie: Seq,
}

/// A TIME-WAIT record as the model keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Model {
    tuple: FourTuple,
    snd_nxt: Seq,
    rcv_nxt: Seq,
    expires_ms: u64,
}

struct Server {
    config: Config,
    jar: CookieJar,
    /// Every secret the jar was given: (first counter it signs, seed).
    secrets: Vec<(u64, [u8; 16])>,
    last_rotation_ms: u64,
    timewait: TimeWaitTable<RECORDS>,
    model: Vec<Model>,
    challenges: ChallengeLimiter,
    slots: Vec<Slot>,
    handshakes: [Handshake; PEERS],
    now: u64,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = Config {
        mss: 1460,
        rcv_wscale: input.u8() % (MAX_WSCALE + 1),
        max_retries: u32::from(input.u8() % 10),
        fin_wait2_ns: u64::from(input.u16()) * MS,
    };
    let mut seed = [0u8; 16];
    let got = input.take(16);
    seed[..got.len()].copy_from_slice(got);
    let tw_seed = [input.u8(); 16];
    let now = u64::from(input.u32()) * MS;
    let mut s = Server {
        config,
        jar: CookieJar::new(seed, now / MS),
        secrets: vec![(0, seed)],
        last_rotation_ms: now / MS,
        timewait: TimeWaitTable::new(tw_seed),
        model: Vec::new(),
        challenges: ChallengeLimiter::new(1 + u32::from(input.u8() % 4), 1_000 * MS),
        slots: Vec::new(),
        handshakes: [Handshake::default(); PEERS],
        now,
    };
    let mut turns = 0;
    while !input.is_empty() && turns < 96 {
        turns += 1;
        match input.u8() % 8 {
            0..=2 => s.segment(&mut input),
            3 => s.advance(&mut input),
            4 => s.app(&mut input),
            5 => {
                let n = input.below(SLOTS);
                let burst = if input.bool() { u32::from(input.u16()) << 2 } else { 0 };
                if n < s.slots.len() {
                    s.drain(n, burst);
                }
            }
            6 => {
                // A fresh secret, no more often than the docs ask.
                let now_ms = s.now / MS;
                if now_ms - s.last_rotation_ms >= SECRET_ROTATION_MS {
                    assert!(s.jar.rotation_due(now_ms));
                    let seed = [input.u8(); 16];
                    s.jar.rotate(seed, now_ms);
                    s.secrets.push((now_ms / COOKIE_PERIOD_MS + 1, seed));
                    s.last_rotation_ms = now_ms;
                }
            }
            _ => {
                // Several small segments in a row (a peer's burst).
                for _ in 0..1 + input.u8() % 4 {
                    s.segment(&mut input);
                }
            }
        }
        s.reap();
        s.check_timewait_table();
    }
    // The end: time runs on until every timer has done its work.
    for _ in 0..64 {
        let Some(next) = s.slots.iter().filter_map(|slot| slot.conn.deadline()).min() else { break };
        s.now = s.now.max(next);
        s.timers();
        s.reap();
    }
});

impl Server {
    fn now_ms(&self) -> u64 {
        self.now / MS
    }

    /// One segment from a peer, dispatched as Cheetah does.
    fn segment(&mut self, input: &mut Input<'_>) {
        let peer = input.below(PEERS);
        let t = tuple(peer);
        let flags = input.u8();
        let (fin, syn, rst, ack_bit) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0, flags & 16 != 0);
        let window = input.u16();
        let len = match input.u8() % 4 {
            0 => 0,
            1 => usize::from(input.u8()),
            2 => usize::from(input.u16()) % PAYLOAD.len(),
            _ => 1460,
        };
        // The numbers the server would expect from this peer.
        let slot = self.slots.iter().position(|s| s.peer == peer);
        let record = self.model.iter().find(|m| m.tuple == t && m.expires_ms > self.now_ms()).copied();
        let (rcv_ref, snd_ref) = match (slot, record) {
            (Some(i), _) => {
                let (snd_max, rcv_nxt) = self.slots[i].conn.next_numbers();
                (rcv_nxt, snd_max)
            }
            (None, Some(r)) => (r.rcv_nxt, r.snd_nxt),
            (None, None) => (self.handshakes[peer].isn + 1, self.handshakes[peer].cookie + 1),
        };
        let seq = match input.u8() % 5 {
            0 => Seq(input.u32()),
            1 => rcv_ref + (input.u16() as i16 as i32 as u32),
            2 => rcv_ref + u32::from(input.u8()),
            3 => Seq(rcv_ref.0.wrapping_sub(u32::from(input.u8()))),
            _ => rcv_ref,
        };
        let ack = match input.u8() % 4 {
            0 => Seq(input.u32()),
            1 => Seq(snd_ref.0.wrapping_sub(u32::from(input.u16()))),
            2 => snd_ref + u32::from(input.u8()),
            _ => snd_ref,
        };
        let ack = ack_bit.then_some(ack);
        let mss = input.bool().then(|| input.u16());
        let wscale = input.bool().then(|| input.u8());
        let seg = Incoming { seq, ack, syn, fin, rst, window, payload: &PAYLOAD[..len] };

        if let Some(i) = slot {
            return self.on_conn_segment(i, &seg);
        }
        let now_ms = self.now_ms();
        let arrival = Arrival { seq, len: len as u32, syn, ack: ack.is_some(), fin, rst };
        let decision = self.timewait.on_segment(&t, &arrival, now_ms);
        assert_eq!(decision, self.timewait_model(&t, &arrival), "TIME-WAIT decision for {arrival:?}");
        match decision {
            Some(Decision::AckAgain { .. } | Decision::Drop) => return,
            Some(Decision::Reopen) | None => {}
        }
        if rst {
            return;
        }
        if syn && ack.is_none() {
            let cookie = self.jar.encode(&t, seq, mss, wscale, now_ms);
            assert_eq!(cookie, self.oracle_encode(&t, seq, mss, wscale, now_ms), "the cookie's layout");
            let negotiated = self.jar.validate(&t, seq + 1, cookie + 1, now_ms).expect("our own cookie validates");
            let mss_entry = MSS_TABLE.iter().rev().find(|&&m| m <= mss.unwrap_or(536)).copied().unwrap_or(536);
            assert_eq!(negotiated, Negotiated { mss: mss_entry, peer_wscale: wscale.map(|w| w.min(MAX_WSCALE)) });
            // What the peer may answer with (the ACK that opens the connection).
            self.handshakes[peer] = Handshake { isn: seq, cookie };
            return;
        }
        let (Some(ack), false) = (ack, syn) else { return };
        let negotiated = self.jar.validate(&t, seq, ack, now_ms);
        assert_eq!(negotiated, self.oracle_validate(&t, seq, ack, now_ms), "validate, seq {seq:?} ack {ack:?}");
        let Some(negotiated) = negotiated else { return };
        if self.slots.len() == SLOTS {
            return;
        }
        let iss = ack + u32::MAX;
        let conn = Conn::accept(self.config, iss, seq + u32::MAX, negotiated.mss, negotiated.peer_wscale);
        assert_eq!(conn.state(), State::Established);
        assert_eq!(conn.next_numbers(), (ack, seq));
        assert_eq!(conn.acked(), 0);
        assert!(conn.smss() >= 1 && conn.smss() <= u32::from(negotiated.mss.min(self.config.mss)));
        let rcv_wscale = if negotiated.peer_wscale.is_some() { self.config.rcv_wscale } else { 0 };
        let buffer = [0u32, 100, 4096, 65_535, 1 << 20][usize::from(input.u8()) % 5];
        self.slots.push(Slot {
            peer,
            conn,
            iss,
            rcv_wscale,
            written: 0,
            closed: false,
            buffer,
            unread: 0,
            acked: 0,
            edge: None,
            peer_fin: false,
        });
        self.on_conn_segment(self.slots.len() - 1, &seg);
    }

    /// A segment of connection `i`, and what it may and may not do.
    fn on_conn_segment(&mut self, i: usize, seg: &Incoming<'_>) {
        let now = self.now;
        let slot = &mut self.slots[i];
        let before = slot.conn.clone();
        let state = slot.conn.state();
        let (snd_max, rcv_nxt) = slot.conn.next_numbers();
        let acked = slot.conn.acked();
        let room = slot.room();
        let wnd = slot.rcv_wnd();
        let may_challenge = self.challenges.clone().allow(now);
        let got = slot.conn.on_segment(now, seg, room, &mut self.challenges);
        let after = slot.conn.state();
        let (snd_max2, rcv_nxt2) = slot.conn.next_numbers();
        assert_eq!(got.acked, slot.conn.acked());
        if matches!(state, State::Closed | State::TimeWait) {
            assert_eq!(slot.conn, before, "a segment changed a closed connection");
            assert_eq!((got.data.len(), got.peer_closed), (0, false));
            return;
        }
        let len = seg.payload.len() as u32 + u32::from(seg.syn) + u32::from(seg.fin);
        let in_window = match (len, wnd) {
            (0, 0) => seg.seq == rcv_nxt,
            (0, _) => seg.seq.in_range(rcv_nxt, rcv_nxt + wnd),
            (_, 0) => false,
            _ => seg.seq.in_range(rcv_nxt, rcv_nxt + wnd) || (seg.seq + (len - 1)).in_range(rcv_nxt, rcv_nxt + wnd),
        };
        assert!(got.data.start <= got.data.end && got.data.end <= seg.payload.len());
        let taken = got.data.len() as u32;
        assert!(taken <= wnd, "more than the window offered");
        if seg.rst {
            assert_eq!((taken, got.peer_closed, got.acked), (0, false, acked));
            if seg.seq == rcv_nxt {
                assert_eq!(after, State::Closed, "an exact RST resets");
                assert!(slot.conn.clone().poll(now, room).is_none(), "nothing is sent after a reset");
            } else if in_window {
                assert_eq!(after, state, "an RST inside the window, not exact, resets nothing");
                if may_challenge {
                    assert!(slot.conn.clone().poll(now, room).is_some(), "a challenge ACK");
                }
            } else {
                assert_eq!(slot.conn, before, "an RST outside the window is ignored");
            }
            return;
        }
        if seg.syn {
            assert_eq!((after, rcv_nxt2, got.acked, taken, got.peer_closed), (state, rcv_nxt, acked, 0, false));
            if may_challenge {
                assert!(slot.conn.clone().poll(now, room).is_some(), "a SYN draws a challenge ACK");
            }
            return;
        }
        let unsent = seg.ack.is_some_and(|a| a.gt(snd_max));
        if !in_window || seg.ack.is_none() || unsent {
            assert_eq!(
                (after, rcv_nxt2, got.acked, taken),
                (state, rcv_nxt, acked, 0),
                "a dropped segment took effect"
            );
            if seg.ack.is_none() && in_window {
                assert_eq!(slot.conn, before, "a segment without ACK is dropped");
            }
            return;
        }
        // Accepted: data from RCV.NXT, RCV.NXT moved by it and the FIN.
        if taken > 0 {
            assert!(!slot.peer_fin, "data after the peer's FIN");
            assert_eq!(seg.seq + got.data.start as u32, rcv_nxt, "data handed over starts at RCV.NXT");
        }
        assert_eq!(rcv_nxt2, rcv_nxt + taken + u32::from(got.peer_closed), "RCV.NXT moved by the data and FIN");
        if got.peer_closed {
            assert!(seg.fin && !slot.peer_fin);
            slot.peer_fin = true;
        }
        assert!(got.acked >= acked && got.acked <= slot.written, "acknowledged {} of {}", got.acked, slot.written);
        if got.acked > acked {
            let ack = seg.ack.unwrap();
            assert!(ack.le(snd_max));
        }
        assert_eq!(snd_max2, snd_max, "receiving sends nothing");
        let legal = after == state
            || matches!(
                (state, after),
                (State::Established, State::CloseWait)
                    | (State::FinWait1, State::FinWait2 | State::Closing | State::TimeWait)
                    | (State::FinWait2, State::TimeWait)
                    | (State::Closing, State::TimeWait)
                    | (State::LastAck, State::Closed)
            );
        assert!(legal, "{state:?} -> {after:?}");
        slot.unread += taken;
        slot.acked = got.acked;
    }

    /// Time passes; the timers run.
    fn advance(&mut self, input: &mut Input<'_>) {
        let step = match input.u8() % 5 {
            0 => u64::from(input.u16()) * 1_000,
            1 => u64::from(input.u16()) * MS,
            2 => u64::from(input.u8()) * 1_000 * MS,
            3 => {
                let n = input.below(SLOTS);
                let d = self.slots.get(n).and_then(|s| s.conn.deadline()).unwrap_or(self.now);
                d.saturating_sub(self.now).saturating_sub(u64::from(input.bool()))
            }
            _ => TIME_WAIT_MS * MS + u64::from(input.u16()) * MS,
        };
        self.now += step;
        self.timers();
    }

    /// Runs every connection's timers, sends what is due, and checks the
    /// deadlines; takes off expired TIME-WAIT records.
    fn timers(&mut self) {
        let now = self.now;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let state = slot.conn.state();
            slot.conn.on_timer(now);
            let after = slot.conn.state();
            if after != state && after == State::Closed && state != State::FinWait2 {
                // Given up: one RST, at a number the peer accepts.
                let want = reset_seq(&slot.conn);
                let t = slot.conn.poll(now, slot.room()).expect("a connection that gives up sends a RST");
                assert!(t.rst && t.seq == want && t.len == 0, "{t:?}, want SEQ {want:?}");
                assert!(slot.conn.poll(now, slot.room()).is_none(), "one RST");
                continue;
            }
            assert!(after == state || (state == State::FinWait2 && after == State::Closed), "{state:?} -> {after:?}");
            self.drain(i, 0);
            let slot = &self.slots[i];
            let state = slot.conn.state();
            if matches!(state, State::Closed | State::TimeWait) {
                continue;
            }
            let deadline = slot.conn.deadline();
            assert!(deadline.is_none_or(|d| d > now), "a deadline in the past: {deadline:?} at {now}");
            let outstanding = slot.written > slot.conn.acked()
                || (slot.closed && matches!(state, State::Established | State::CloseWait))
                || matches!(state, State::FinWait1 | State::Closing | State::LastAck);
            assert!(!outstanding || deadline.is_some(), "data or FIN outstanding and no timer: {:?}", slot.conn);
        }
        let n = self.timewait.expire(self.now_ms());
        let before = self.model.len();
        let now_ms = self.now_ms();
        self.model.retain(|m| m.expires_ms > now_ms);
        assert_eq!(n, before - self.model.len(), "expired records taken off");
    }

    /// The application of a connection: more stream, close, or read.
    fn app(&mut self, input: &mut Input<'_>) {
        let n = input.below(SLOTS);
        let op = input.u8();
        let Some(slot) = self.slots.get_mut(n) else { return };
        match op % 4 {
            0 | 1 if !slot.closed => {
                let more = match op / 4 % 4 {
                    0 => u64::from(input.u8()),
                    1 => u64::from(input.u16()),
                    2 => u64::from(input.u32()),
                    _ => 1460 * u64::from(input.u8()),
                };
                slot.written += more;
                slot.conn.extend(slot.written);
            }
            2 => {
                slot.closed = true;
                slot.conn.close();
            }
            _ => slot.unread = 0,
        }
    }

    /// Everything connection `i` sends now, each segment checked.
    fn drain(&mut self, i: usize, burst: u32) {
        let now = self.now;
        let slot = &mut self.slots[i];
        let stream_start = slot.iss + 1;
        for _ in 0..1000 {
            let state = slot.conn.state();
            let (una, wnd) = slot.conn.send_window();
            let (snd_max, rcv_nxt) = slot.conn.next_numbers();
            let reset_at = reset_seq(&slot.conn);
            let acked = slot.conn.acked();
            let room = slot.room();
            let Some(t) = slot.conn.poll_with(now, room, |_| burst) else { return };
            if t.rst {
                assert_eq!((state, t.seq), (State::Closed, reset_at), "a RST only from a connection that gave up");
                continue;
            }
            assert!(!matches!(state, State::Closed), "a segment from a closed connection: {t:?}");
            assert_eq!(t.ack, rcv_nxt, "every segment acknowledges RCV.NXT");
            let field = (room >> slot.rcv_wscale).min(u32::from(u16::MAX)) as u16;
            assert_eq!(t.window, field, "the window offered is the room");
            assert!(t.seq.ge(una) && t.seq.le(snd_max), "{t:?} outside SND.UNA {una:?} .. SND.MAX {snd_max:?}");
            let end = t.offset + u64::from(t.len);
            assert!(end <= slot.written, "{t:?} beyond the {} bytes written", slot.written);
            if t.len > 0 || t.fin {
                assert!(t.offset >= acked, "{t:?} resends what was acknowledged ({acked})");
                assert_eq!(t.seq - stream_start, t.offset as u32, "{t:?}: sequence number and stream offset disagree");
                let seg_end = t.seq + t.len;
                assert!(
                    seg_end.le(una + wnd) || seg_end.le(snd_max) || (t.len == 1 && wnd == 0),
                    "{t:?}: new data beyond SND.UNA {una:?} + SND.WND {wnd}"
                );
            }
            let smss = slot.conn.smss();
            assert!(t.len <= smss.max(burst), "{t:?}: longer than SMSS {smss} and the burst {burst}");
            if t.len > smss && end < slot.written {
                assert_eq!(t.len % smss, 0, "a burst of whole packets");
            }
            if t.fin {
                assert!(slot.closed && end == slot.written, "a FIN before the stream's end");
            }
            if t.psh {
                assert!(t.len > 0 && end == slot.written);
            }
            if slot.rcv_wscale == 0 {
                let edge = t.ack + u32::from(t.window);
                if let Some(prev) = slot.edge {
                    assert!(!edge.lt(prev), "the window's right edge moved left: {prev:?} -> {edge:?}");
                }
                slot.edge = Some(edge);
            }
            assert_eq!(slot.conn.acked(), acked, "sending acknowledges nothing");
        }
        panic!("poll never ends");
    }

    /// Closed connections go; TIME-WAIT ones become records.
    fn reap(&mut self) {
        let now_ms = self.now_ms();
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &self.slots[i];
            match slot.conn.state() {
                State::TimeWait => {
                    assert!(slot.closed && slot.peer_fin, "TIME-WAIT only after both FINs, the server's first");
                    assert_eq!(slot.conn.acked(), slot.written, "TIME-WAIT with the stream not all acknowledged");
                    let (snd, rcv) = slot.conn.next_numbers();
                    let t = tuple(slot.peer);
                    let evicted = self.timewait.insert(t, snd, rcv, now_ms);
                    // The model: expired records off, the same 4-tuple
                    // replaced, the first to expire evicted when full.
                    self.model.retain(|m| m.expires_ms > now_ms && m.tuple != t);
                    let expected = (self.model.len() == RECORDS).then(|| self.model.remove(0));
                    assert_eq!(evicted.map(view), expected, "the evicted record");
                    let due = (now_ms + TIME_WAIT_MS).div_ceil(1000) * 1000;
                    let expires_ms = self.model.last().map_or(due, |m| m.expires_ms.max(due));
                    self.model.push(Model { tuple: t, snd_nxt: snd, rcv_nxt: rcv, expires_ms });
                    let r = self.timewait.lookup(&t, now_ms).expect("the record just inserted");
                    assert!((now_ms + TIME_WAIT_MS..now_ms + TIME_WAIT_MS + 1000).contains(&r.expires_at_ms()));
                    self.slots.remove(i);
                }
                State::Closed => {
                    self.slots.remove(i);
                }
                _ => i += 1,
            }
        }
    }

    /// The table holds what the model holds.
    fn check_timewait_table(&self) {
        let now_ms = self.now_ms();
        assert!(self.timewait.len() <= RECORDS);
        assert!(self.model.windows(2).all(|w| w[0].expires_ms <= w[1].expires_ms), "expiry order");
        for peer in 0..PEERS {
            let t = tuple(peer);
            let live = self.model.iter().find(|m| m.tuple == t && m.expires_ms > now_ms).copied();
            assert_eq!(self.timewait.lookup(&t, now_ms).copied().map(view), live, "the record of {t:?}");
        }
    }

    /// The decision of `timewait`'s module docs, in their order; updates
    /// the model as the docs say the table changes.
    fn timewait_model(&mut self, t: &FourTuple, seg: &Arrival) -> Option<Decision> {
        let now_ms = self.now_ms();
        let at = self.model.iter().position(|m| m.tuple == *t && m.expires_ms > now_ms)?;
        let r = self.model[at];
        let ack_again = Decision::AckAgain { seq: r.snd_nxt, ack: r.rcv_nxt };
        Some(if seg.rst {
            Decision::Drop
        } else if seg.syn && !seg.ack && seg.seq.gt(r.rcv_nxt) {
            self.model.remove(at);
            Decision::Reopen
        } else if seg.syn {
            ack_again
        } else if seg.fin && seg.seq + seg.len + 1 == r.rcv_nxt {
            self.model.remove(at);
            let due = (now_ms + TIME_WAIT_MS).div_ceil(1000) * 1000;
            let expires_ms = self.model.last().map_or(due, |m| m.expires_ms.max(due));
            self.model.push(Model { expires_ms, ..r });
            ack_again
        } else if !seg.fin && seg.len == 0 && seg.seq == r.rcv_nxt {
            Decision::Drop
        } else {
            ack_again
        })
    }

    /// The secret that signs counter `t`: the last one given before it.
    fn secret(&self, t: u64) -> [u8; 16] {
        self.secrets.iter().rev().find(|(since, _)| *since <= t).map_or(self.secrets[0].1, |(_, s)| *s)
    }

    fn prf(&self, t: u64, tuple: &FourTuple, isn: Seq) -> SipHasher24 {
        let mut h = SipHasher24::new_with_key(&self.secret(t));
        h.write(&tuple.bytes());
        h.write(&isn.0.to_be_bytes());
        h.write(&t.to_be_bytes());
        h
    }

    /// The cookie as the module docs lay it out.
    fn oracle_encode(&self, t: &FourTuple, isn: Seq, mss: Option<u16>, ws: Option<u8>, now_ms: u64) -> Seq {
        let c = now_ms / COOKIE_PERIOD_MS;
        let prf = self.prf(c, t, isn);
        let index = MSS_TABLE.iter().rposition(|&m| m <= mss.unwrap_or(536)).unwrap_or(0) as u32;
        let data = index << 4 | ws.map_or(15, |w| u32::from(w.min(MAX_WSCALE)));
        let mask = prf.clone().finish() as u32 & 63;
        let mut mac = prf;
        mac.write_u8(data as u8);
        let mac = mac.finish() as u32 & ((1 << MAC_BITS) - 1);
        Seq(((c & 1) as u32) << 31 | (data ^ mask) << MAC_BITS | mac)
    }

    /// What a cookie ACK must validate to: the counter its parity names
    /// (now or the one before), its MAC under that counter's secret.
    fn oracle_validate(&self, t: &FourTuple, seq: Seq, ack: Seq, now_ms: u64) -> Option<Negotiated> {
        let cookie = (ack + u32::MAX).0;
        let now = now_ms / COOKIE_PERIOD_MS;
        let c = if u64::from(cookie >> 31) == now & 1 { now } else { now.checked_sub(1)? };
        let prf = self.prf(c, t, seq + u32::MAX);
        let data = (cookie >> MAC_BITS & 63) ^ (prf.clone().finish() as u32 & 63);
        let mut mac = prf;
        mac.write_u8(data as u8);
        if cookie & ((1 << MAC_BITS) - 1) != mac.finish() as u32 & ((1 << MAC_BITS) - 1) {
            return None;
        }
        let ws = data & 0xf;
        Some(Negotiated { mss: MSS_TABLE[(data >> 4) as usize], peer_wscale: (ws != 15).then_some(ws as u8) })
    }
}

fn view(r: Record) -> Model {
    Model { tuple: r.tuple, snd_nxt: r.snd_nxt, rcv_nxt: r.rcv_nxt, expires_ms: r.expires_at_ms() }
}

/// The sequence number of a connection's reset (net-tcp's `Conn::abort`):
/// SND.MAX, or the right edge of the peer's window when SND.MAX lies past
/// it (after a zero-window probe the peer did not take: RFC 5961 §3.2
/// accepts a RST there only at RCV.NXT).
fn reset_seq(conn: &Conn) -> Seq {
    let (una, wnd) = conn.send_window();
    let (snd_max, _) = conn.next_numbers();
    let edge = una + wnd;
    if snd_max.gt(edge) {
        edge
    } else {
        snd_max
    }
}
