//! One server-side connection, from the handshake's final ACK to its end
//! (RFC 9293 §3.3.2's states from ESTABLISHED on; a server keeps no state
//! before, see [`crate::cookie`]).
//!
//! # What the connection sends: a stream it does not hold
//!
//! The application's output is a byte *stream* numbered from 0 (the byte
//! after the SYN): a response head in its own small buffer, then ranges of
//! files pinned in the cache. The application says how far the stream goes
//! ([`Conn::extend`]) and whether a FIN follows it ([`Conn::close`]); the
//! connection never copies a byte. A segment it asks to send
//! ([`Transmit`]) names the stream range it carries, first sent or
//! retransmitted alike, and the application resolves the range to bytes
//! where they are (the head buffer, the cache with its precomputed
//! checksums). [`Received::acked`] says up to where the peer has the
//! stream, so the application may release what lies below: the cache is
//! the retransmission pool.
//!
//! # What it receives: requests, in order
//!
//! A server receives small requests, so out-of-order data is not queued:
//! a segment beyond RCV.NXT is dropped and answered at once with a
//! duplicate ACK (RFC 5681 §4.2), and the peer retransmits. In-order data is
//! handed to the application up to the room it has ([`Conn::on_segment`]'s
//! `room`); the window offered is that room, so the right edge never moves
//! left (RFC 9293 §3.8.6.2.2: a receiver should not shrink the window)
//! as long as the application's room only shrinks by what it was given.
//!
//! # Rules and where they live
//!
//! - acceptability, RST/SYN/ACK checks against blind injection:
//!   [`crate::accept`] (RFC 9293 §3.10.7.4, RFC 5961), applied first to
//!   every segment;
//! - the send window update (RFC 9293 §3.10.7.4, SND.WL1/SND.WL2), scaled
//!   by the peer's shift (RFC 7323 §2.3);
//! - retransmission timer: [`crate::rto`] (RFC 6298); on expiry everything
//!   from SND.UNA is sent again (go-back-N, RFC 5681 §3.1 allows it);
//! - congestion control: [`crate::congestion`] (RFC 5681, RFC 6582), fast
//!   retransmit of the first unacknowledged segment;
//! - delayed ACKs, merged with data: [`crate::delack`] (RFC 1122
//!   §4.2.3.2, RFC 5681 §4.2): a response sent within the delay carries the
//!   request's ACK, so a small `Connection: close` exchange costs the
//!   server three segments (SYN-ACK, response with FIN, the final ACK);
//! - the zero-window probe (RFC 9293 §3.8.6.1): with data waiting and a
//!   closed window, one byte beyond it is sent on the retransmission timer;
//! - closing (RFC 9293 §3.6): FIN-WAIT-1/2, CLOSING and TIME-WAIT when the
//!   server closes first; CLOSE-WAIT and LAST-ACK when the peer does.
//!   TIME-WAIT is not kept here: the caller turns the connection into a
//!   compact record ([`crate::timewait`]) and frees it;
//! - giving up (RFC 9293 §3.8.3, R2): after [`Config::max_retries`]
//!   expiries in a row the connection is aborted with a RST.

use crate::accept::{self, Arrived, ChallengeLimiter, Receive, Send, Verdict};
use crate::congestion::{classify_ack, AckKind, AckSegment, Action, NewReno};
use crate::delack::{AckDecision, DelayedAck, Order};
use crate::rto::{Rto, Sample};
use crate::seq::Seq;

/// Settings shared by a server's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The MSS this end accepts (advertised in the SYN-ACK; 1460 on
    /// Ethernet), which also caps what it sends.
    pub mss: u16,
    /// This end's window scale shift, advertised when the peer offered
    /// window scaling (RFC 7323 §2.2). A server that receives only
    /// requests offers small windows: 0 is enough.
    pub rcv_wscale: u8,
    /// Retransmission timer expiries in a row before the connection is
    /// aborted (RFC 9293 §3.8.3, R2).
    pub max_retries: u32,
    /// How long FIN-WAIT-2 may last before the connection is dropped, in
    /// nanoseconds (the peer acknowledged our FIN but never sends its own).
    pub fin_wait2_ns: u64,
}

/// [`Config::max_retries`] by default: 8 expiries, with RTO doubling from
/// at least 200 ms, is about 100 s of silence (Linux's `tcp_retries2` = 15
/// waits 15 minutes, far too long for a server's slots).
pub const MAX_RETRIES: u32 = 8;
/// [`Config::fin_wait2_ns`] by default: 60 s, Linux's `tcp_fin_timeout`.
pub const FIN_WAIT2_NS: u64 = 60_000_000_000;

impl Default for Config {
    fn default() -> Self {
        Config { mss: 1460, rcv_wscale: 0, max_retries: MAX_RETRIES, fin_wait2_ns: FIN_WAIT2_NS }
    }
}

/// RFC 9293 §3.3.2's states a server connection goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Established,
    /// The server closed first; its FIN is sent or waiting to be sent.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// Both sent FIN; ours is not acknowledged yet.
    Closing,
    /// Both FINs acknowledged: the caller keeps a TIME-WAIT record.
    TimeWait,
    /// The peer closed first; we may still send.
    CloseWait,
    /// We closed after the peer; waiting for the ACK of our FIN.
    LastAck,
    /// Gone: reset, timed out, or both sides closed.
    Closed,
}

/// The parts of a received TCP segment the connection reads (parsed with
/// `net-packet`; its options matter only on a SYN, which a connection never
/// accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming<'a> {
    pub seq: Seq,
    /// `Some(SEG.ACK)` when the ACK bit is set.
    pub ack: Option<Seq>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// The window field as received (not yet scaled).
    pub window: u16,
    pub payload: &'a [u8],
}

/// What a received segment meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The payload's bytes to hand to the application (in order, within
    /// the room it gave), as a range of `Incoming::payload`.
    pub data: core::ops::Range<usize>,
    /// The stream offset the peer has acknowledged everything below: the
    /// application may release it.
    pub acked: u64,
    /// The peer's FIN arrived (in order): no more data will come.
    pub peer_closed: bool,
}

/// A segment to send. The caller writes the headers (ports from the
/// connection's 4-tuple) and the payload: the stream bytes
/// `[offset, offset + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub seq: Seq,
    pub ack: Seq,
    pub fin: bool,
    pub rst: bool,
    /// PSH: the segment ends what the application made available.
    pub psh: bool,
    /// The window field (already scaled down by this end's shift).
    pub window: u16,
    /// Stream offset of the first payload byte.
    pub offset: u64,
    /// Payload bytes.
    pub len: u32,
}

/// One connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    state: State,
    config: Config,
    // Send sequence space (RFC 9293 §3.3.1).
    /// SND.UNA.
    una: Seq,
    /// SND.NXT: the next sequence number to send (moves back to SND.UNA
    /// when everything is sent again after a timeout).
    nxt: Seq,
    /// The highest sequence number sent, plus one ("SND.MAX").
    snd_max: Seq,
    /// The stream offset of SND.UNA (the stream may outgrow 2^32 bytes).
    una_offset: u64,
    /// The sequence number of stream offset 0 (ISS + 1), which numbers
    /// the FIN whatever SND.UNA has passed.
    stream_start: Seq,
    /// SND.WND in bytes (scaled), SND.WL1, SND.WL2.
    wnd: u32,
    wl1: Seq,
    wl2: Seq,
    /// MAX.SND.WND (RFC 5961 §5.1).
    max_wnd: u32,
    /// The window field of the last ACK, as received (for duplicate ACKs).
    last_window_field: u32,
    /// The peer's window scale shift (0 without scaling).
    snd_wscale: u8,
    /// The sender's MSS: the smaller of the peer's and ours.
    smss: u32,
    /// Stream bytes the application has made available.
    written: u64,
    /// The application closed: a FIN follows the stream (its sequence
    /// number is [`Conn::stream_end`]).
    closing: bool,
    // Receive sequence space.
    /// RCV.NXT.
    rcv_nxt: Seq,
    /// The peer's FIN was received.
    peer_fin: bool,
    // Timers and control.
    rto: Rto,
    cc: NewReno,
    delack: DelayedAck,
    /// An ACK must go now (out-of-order data, a FIN, a challenge, ...).
    ack_now: bool,
    /// A RST must go now (the connection gave up).
    rst_now: bool,
    /// Send the first unacknowledged segment again now (fast retransmit).
    retransmit_now: bool,
    /// The segment being timed for an RTT sample: its end sequence
    /// number, when it was sent, and whether it was sent again since.
    timing: Option<(Seq, u64, bool)>,
    /// When FIN-WAIT-2 began.
    fin_wait2_since: Option<u64>,
    /// The retransmission timer fired: a closed window may be probed.
    probe_due: bool,
    /// Expiries of the retransmission timer since SND.UNA last moved: the
    /// count RFC 9293 §3.8.3 (R2) gives up on. (The timer's own backoff
    /// count resets only on a valid RTT sample, which a connection sending
    /// again below SND.MAX cannot take for a while (Karn); progress shows the
    /// peer is there.)
    retries: u32,
}

impl Conn {
    /// The connection made by a valid handshake-completing ACK: `iss` is
    /// our SYN-ACK's sequence number (the cookie), `irs` the peer's SYN's,
    /// `peer_mss` and `peer_wscale` what the cookie recorded (`None`: no
    /// window scaling in either direction, RFC 7323 §1.3).
    pub fn accept(config: Config, iss: Seq, irs: Seq, peer_mss: u16, peer_wscale: Option<u8>) -> Conn {
        let smss = u32::from(peer_mss.min(config.mss)).max(1);
        let una = iss + 1;
        Conn {
            state: State::Established,
            config: Config { rcv_wscale: if peer_wscale.is_some() { config.rcv_wscale } else { 0 }, ..config },
            una,
            nxt: una,
            snd_max: una,
            una_offset: 0,
            stream_start: una,
            wnd: 0,
            wl1: irs,
            wl2: iss,
            max_wnd: 0,
            last_window_field: 0,
            snd_wscale: peer_wscale.unwrap_or(0),
            smss,
            written: 0,
            closing: false,
            rcv_nxt: irs + 1,
            peer_fin: false,
            rto: Rto::new(),
            cc: NewReno::new(smss, una),
            delack: DelayedAck::new(),
            ack_now: false,
            rst_now: false,
            retransmit_now: false,
            timing: None,
            fin_wait2_since: None,
            probe_due: false,
            retries: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The sender's MSS.
    pub fn smss(&self) -> u32 {
        self.smss
    }

    /// SND.NXT and RCV.NXT, for a TIME-WAIT record.
    pub fn next_numbers(&self) -> (Seq, Seq) {
        (self.snd_max, self.rcv_nxt)
    }

    /// The stream offset below which the peer has everything.
    pub fn acked(&self) -> u64 {
        self.una_offset
    }

    /// SND.UNA and SND.WND (in bytes, scaled): what bounds the sequence
    /// numbers of new data sent (`SND.UNA + SND.WND`, RFC 9293 §3.3.1),
    /// for callers and checks that watch the send window.
    pub fn send_window(&self) -> (Seq, u32) {
        (self.una, self.wnd)
    }

    /// The application made the stream longer: it now ends at `written`.
    pub fn extend(&mut self, written: u64) {
        debug_assert!(!self.closing, "the stream ended with close()");
        self.written = self.written.max(written);
    }

    /// The stream ends where it is: a FIN follows its last byte.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Ends the connection at once with a reset (RFC 9293 §3.10.6, ABORT
    /// call: "send a reset segment", everything queued is dropped): the
    /// next [`Conn::poll`] gives the RST, and the state is `Closed`. For an
    /// application that can no longer produce the stream it promised (its
    /// bytes are gone). Nothing happens once closed or in TIME-WAIT.
    pub fn abort(&mut self) {
        if !matches!(self.state, State::Closed | State::TimeWait) {
            self.state = State::Closed;
            self.rst_now = true;
        }
    }

    /// The sequence number of a reset the peer accepts: SND.MAX (RFC 9293
    /// §3.10.6, ABORT: `<SEQ=SND.NXT>`), unless that lies past the right
    /// edge of the peer's window, as after a zero-window probe whose byte
    /// the peer did not take: then the edge, `SND.UNA + SND.WND`. A
    /// receiver takes a RST only within its window, and with a closed one
    /// only at exactly RCV.NXT (RFC 9293 §3.10.7.4, RFC 5961 §3.2), so a
    /// reset one byte past it would be ignored and the peer left
    /// connected (Linux's `tcp_acceptable_seq` does the same).
    fn reset_seq(&self) -> Seq {
        let edge = self.una + self.wnd;
        if self.snd_max.gt(edge) {
            edge
        } else {
            self.snd_max
        }
    }

    /// Bytes sent and not yet acknowledged (the FIN counts one).
    fn flight(&self) -> u32 {
        self.nxt - self.una
    }

    /// The stream offset of sequence number `seq` (at or after SND.UNA).
    fn offset_of(&self, seq: Seq) -> u64 {
        self.una_offset + u64::from(seq - self.una)
    }

    /// The window field for `room` bytes of receive room.
    fn window_field(&self, room: u32) -> u16 {
        (room >> self.config.rcv_wscale).min(u32::from(u16::MAX)) as u16
    }

    /// The receive window in bytes, as the field says it (what the peer
    /// may send: the room rounded down to the scale).
    fn rcv_wnd(&self, room: u32) -> u32 {
        u32::from(self.window_field(room)) << self.config.rcv_wscale
    }

    /// Processes a segment of this connection arriving at `now`, when the
    /// application has `room` bytes of room for request data.
    pub fn on_segment(
        &mut self,
        now: u64,
        seg: &Incoming<'_>,
        room: u32,
        challenges: &mut ChallengeLimiter,
    ) -> Received {
        let mut out = Received { data: 0..0, acked: self.una_offset, peer_closed: false };
        if matches!(self.state, State::Closed | State::TimeWait) {
            return out;
        }
        let len = seg.payload.len() as u32 + u32::from(seg.syn) + u32::from(seg.fin);
        let arrived = Arrived { seq: seg.seq, len, syn: seg.syn, rst: seg.rst, ack: seg.ack };
        let rcv = Receive { nxt: self.rcv_nxt, wnd: self.rcv_wnd(room) };
        let snd = Send { una: self.una, nxt: self.snd_max, max_wnd: self.max_wnd };
        match accept::judge(rcv, snd, arrived) {
            Verdict::Accept => {}
            Verdict::Reset => {
                self.state = State::Closed;
                return out;
            }
            Verdict::DropAndAck => {
                self.ack_now = true;
                return out;
            }
            Verdict::Challenge => {
                self.ack_now |= challenges.allow(now);
                return out;
            }
            Verdict::Drop => return out,
        }
        let ack = seg.ack.expect("judge accepts only segments with ACK");
        self.on_ack(now, seg, ack);
        out.acked = self.una_offset;

        // Data and FIN: only what starts at RCV.NXT (after trimming what was
        // already received) is taken.
        let payload_len = seg.payload.len() as u32;
        let skip = if seg.seq.lt(self.rcv_nxt) { (self.rcv_nxt - seg.seq).min(payload_len) } else { 0 };
        let starts_here = seg.seq + skip == self.rcv_nxt;
        if payload_len > skip {
            if !starts_here || self.peer_fin {
                // Beyond RCV.NXT (a gap before it): not queued; a duplicate
                // ACK tells the peer what is missing (RFC 5681 §4.2).
                self.delack.on_segment(now, Order::OutOfOrder, false);
                self.ack_now = true;
                return out;
            }
            let take = (payload_len - skip).min(rcv.wnd);
            out.data = skip as usize..(skip + take) as usize;
            self.rcv_nxt += take;
            let full = take >= self.smss.min(u32::from(self.config.mss));
            match self.delack.on_segment(now, Order::InOrder, full) {
                AckDecision::AckNow => self.ack_now = true,
                AckDecision::Delay(_) => {}
            }
            if take < payload_len - skip {
                // The window cut it: what was not taken must come again.
                self.ack_now = true;
                return out;
            }
        } else if payload_len > 0 && skip == payload_len && !seg.fin {
            // Entirely old data: acknowledge so the peer stops resending.
            self.ack_now = true;
        }
        if seg.fin && !self.peer_fin && seg.seq + payload_len == self.rcv_nxt {
            self.rcv_nxt += 1;
            self.peer_fin = true;
            self.ack_now = true;
            out.peer_closed = true;
            self.state = match self.state {
                State::Established => State::CloseWait,
                State::FinWait1 if self.fin_acked() => State::TimeWait,
                State::FinWait1 => State::Closing,
                State::FinWait2 => State::TimeWait,
                other => other,
            };
        } else if seg.fin && self.peer_fin {
            // A retransmitted FIN: our ACK of it was lost.
            self.ack_now = true;
        }
        out
    }

    /// The sequence number after the stream's last byte (the FIN's, once
    /// the application closed). Counted from the stream's start, not from
    /// SND.UNA: once the FIN is acknowledged SND.UNA is past it, and a
    /// number counted from there would name a FIN one beyond ours (a
    /// second FIN in FIN-WAIT-2; the fuzz target `tcp` found it).
    fn stream_end(&self) -> Seq {
        self.stream_start + self.written as u32
    }

    /// Whether our FIN is acknowledged: every byte of the stream is, and
    /// SND.UNA is one past its end. (Stream offsets pin it: sequence
    /// numbers alone repeat every 4 GiB of stream.)
    fn fin_acked(&self) -> bool {
        self.closing && self.una_offset == self.written && self.una == self.stream_end() + 1
    }

    /// Whether our FIN has been sent: the highest sequence number sent is
    /// one past the stream's last byte, by stream offset (a stream more
    /// than 4 GiB ahead of SND.UNA has many sequence numbers equal to its
    /// end's, modulo 2^32).
    fn fin_sent(&self) -> bool {
        self.closing && self.offset_of(self.snd_max) == self.written + 1
    }

    /// The ACK and window parts of an accepted segment.
    fn on_ack(&mut self, now: u64, seg: &Incoming<'_>, ack: Seq) {
        let window_scaled = u32::from(seg.window) << self.snd_wscale;
        let kind = classify_ack(
            self.una,
            self.snd_max,
            self.last_window_field,
            &AckSegment {
                ack,
                len: seg.payload.len() as u32,
                syn: seg.syn,
                fin: seg.fin,
                window: u32::from(seg.window),
            },
        );
        match kind {
            AckKind::New { acked } => {
                let fin_now_acked = ack == self.snd_max && self.fin_sent();
                let data_acked = acked - u32::from(fin_now_acked);
                self.una_offset += u64::from(data_acked);
                self.una = ack;
                self.retries = 0;
                if self.nxt.lt(self.una) {
                    self.nxt = self.una;
                }
                let sample = match self.timing {
                    Some((end, sent, again)) if end.le(ack) => {
                        self.timing = None;
                        Some(Sample { rtt: now.saturating_sub(sent), retransmitted: again })
                    }
                    _ => None,
                };
                if sample.is_none_or(|s| s.retransmitted) {
                    self.rto.on_progress();
                }
                self.rto.on_ack(now, self.una == self.snd_max, sample);
                if self.cc.on_ack(ack, acked, self.snd_max - self.una) == Action::RetransmitFirstUnacked {
                    self.retransmit_now = true;
                }
                if fin_now_acked {
                    self.state = match self.state {
                        State::FinWait1 => {
                            self.fin_wait2_since = Some(now);
                            State::FinWait2
                        }
                        State::Closing => State::TimeWait,
                        State::LastAck => State::Closed,
                        other => other,
                    };
                }
            }
            AckKind::Duplicate => {
                if self.cc.on_dup_ack(ack, self.snd_max - self.una) == Action::RetransmitFirstUnacked {
                    self.retransmit_now = true;
                }
            }
            AckKind::Same | AckKind::Old | AckKind::AcksUnsent => {}
        }
        // RFC 9293 §3.10.7.4: update the send window from segments that are
        // not older than the last update (SND.WL1, SND.WL2).
        if self.wl1.lt(seg.seq) || (self.wl1 == seg.seq && self.wl2.le(ack)) {
            self.wnd = window_scaled;
            self.wl1 = seg.seq;
            self.wl2 = ack;
            self.max_wnd = self.max_wnd.max(window_scaled);
        }
        self.last_window_field = u32::from(seg.window);
    }

    /// The timers at `now`: the retransmission timer (resend from SND.UNA,
    /// back off, or give up), FIN-WAIT-2's limit.
    pub fn on_timer(&mut self, now: u64) {
        if matches!(self.state, State::Closed | State::TimeWait) {
            return;
        }
        if let Some(since) = self.fin_wait2_since {
            if self.state == State::FinWait2 && now.saturating_sub(since) >= self.config.fin_wait2_ns {
                self.state = State::Closed;
                return;
            }
        }
        if !self.rto.expired(now) {
            return;
        }
        if self.retries >= self.config.max_retries {
            self.state = State::Closed;
            self.rst_now = true;
            return;
        }
        self.retries += 1;
        let flight = self.flight();
        self.cc.on_timeout(self.una, flight);
        self.rto.on_timeout(now);
        // Go back: everything from SND.UNA is sent again. The segment being
        // timed, if any, gives no sample (Karn).
        self.nxt = self.una;
        if let Some(t) = &mut self.timing {
            t.2 = true;
        }
        self.probe_due = true;
    }

    /// When [`Conn::on_timer`] must run next.
    pub fn deadline(&self) -> Option<u64> {
        let fin2 = self.fin_wait2_since.map(|s| s.saturating_add(self.config.fin_wait2_ns));
        [self.rto.deadline(), self.delack.deadline(), fin2].into_iter().flatten().min()
    }

    /// The next segment to send at `now`, if any, with `room` bytes of
    /// receive room for the window it offers. Call until `None`. Segments
    /// carry at most SMSS bytes.
    pub fn poll(&mut self, now: u64, room: u32) -> Option<Transmit> {
        self.poll_with(now, room, |_| 0)
    }

    /// [`Conn::poll`] for a sender whose device segments TCP (TSO):
    /// `burst(offset)` says how many stream bytes from `offset` the caller
    /// can hand to the device as one segment that the device cuts into
    /// SMSS-sized packets (0 or at most SMSS: an ordinary segment). A
    /// segment longer than SMSS is a whole number of SMSS, unless it ends
    /// what was written, so that every packet but the stream's last is
    /// full (what the sender SWS rule asks of each). Fast retransmissions
    /// stay one SMSS; a go-back-N after a timeout may burst, within cwnd.
    /// Each burst is reported to congestion control
    /// ([`NewReno::on_burst`]): ABC counts it as one segment.
    pub fn poll_with(&mut self, now: u64, room: u32, burst: impl Fn(u64) -> u32) -> Option<Transmit> {
        let window = self.window_field(room);
        let t = Transmit {
            seq: self.nxt,
            ack: self.rcv_nxt,
            fin: false,
            rst: false,
            psh: false,
            window,
            offset: self.offset_of(self.nxt),
            len: 0,
        };
        if self.rst_now {
            self.rst_now = false;
            return Some(Transmit { rst: true, seq: self.reset_seq(), window: 0, ..t });
        }
        if matches!(self.state, State::Closed) {
            return None;
        }
        if self.state != State::TimeWait {
            if self.retransmit_now {
                self.retransmit_now = false;
                if let Some(first) = self.segment(now, self.una, true, window, 0) {
                    return Some(first);
                }
            }
            let burst = burst(self.offset_of(self.nxt));
            if let Some(next) = self.segment(now, self.nxt, false, window, burst) {
                return Some(next);
            }
        }
        if self.written > self.offset_of(self.nxt) && self.wnd == 0 && self.flight() == 0 {
            // Data waits behind a closed window: the retransmission timer
            // runs as the persist timer (RFC 9293 §3.8.6.1), and its expiry
            // lets one byte probe the window.
            self.rto.on_send(now);
        }
        if self.ack_now || self.delack.due(now) {
            self.ack_now = false;
            self.delack.on_ack_sent();
            // A pure ACK carries no stream bytes; its offset only says where
            // SND.NXT is (never past the stream's end).
            return Some(Transmit { offset: t.offset.min(self.written), ..t });
        }
        None
    }

    /// The segment starting at `seq` (SND.NXT, or SND.UNA for a fast
    /// retransmission), if the windows allow any of it; at most `burst`
    /// bytes if that is more than SMSS ([`Conn::poll_with`]).
    fn segment(&mut self, now: u64, seq: Seq, again: bool, window_field: u16, burst: u32) -> Option<Transmit> {
        let offset = self.offset_of(seq);
        let available = self.written.saturating_sub(offset);
        let in_flight = seq - self.una;
        let window = self.wnd.min(self.cc.window());
        let usable = window.saturating_sub(in_flight);
        let most = burst.max(self.smss);
        let mut len = available.min(u64::from(usable)).min(u64::from(most)) as u32;
        if len > self.smss && u64::from(len) < available {
            // Whole packets only, but for the last of what was written.
            len -= len % self.smss;
        }
        if again {
            // A fast retransmission resends one segment of what was sent
            // (never beyond SND.MAX), whatever the window.
            let fin_sent = self.fin_sent();
            let sent = (self.snd_max - seq).saturating_sub(u32::from(fin_sent));
            len = available.min(u64::from(self.smss)).min(u64::from(sent)) as u32;
        } else if len == 0 && available > 0 && self.wnd == 0 && in_flight == 0 && self.probe_due {
            // RFC 9293 §3.8.6.1: probe a closed window with one byte.
            len = 1;
        } else if len < self.smss && u64::from(len) < available && in_flight > 0 {
            // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): no short segment
            // in the middle of the stream while data is in flight; the ACKs
            // of what is in flight open room for a full one. (With nothing
            // in flight what the window allows goes, so a window below one
            // MSS cannot stall.) Full segments also keep file data on the
            // 1460-byte pieces whose sums the image holds.
            len = 0;
        }
        let ends_stream = offset + u64::from(len) == self.written;
        // The FIN goes with the segment that reaches the stream's end,
        // first sent or sent again (never beyond it: SND.NXT past the FIN
        // means it went already).
        let fin = self.closing
            && ends_stream
            && seq + len == self.stream_end()
            && !self.fin_acked()
            && (!again || self.fin_sent());
        if len == 0 && !fin {
            return None;
        }
        self.probe_due = false;
        self.cc.on_send(now, self.rto.rto(), self.flight());
        if len > self.smss {
            self.cc.on_burst(len);
        }
        let end = seq + len + u32::from(fin);
        if !again {
            self.nxt = end;
            if self.snd_max.lt(end) {
                if self.timing.is_none() {
                    self.timing = Some((end, now, false));
                }
                self.snd_max = end;
            } else if let Some(t) = &mut self.timing {
                // Sending again what was sent before (after a timeout).
                if seq.lt(t.0) {
                    t.2 = true;
                }
            }
        } else if let Some(t) = &mut self.timing {
            t.2 = true;
        }
        if fin {
            self.state = match self.state {
                State::Established => State::FinWait1,
                State::CloseWait => State::LastAck,
                other => other,
            };
        }
        self.rto.on_send(now);
        // An ACK rides on every segment.
        self.ack_now = false;
        self.delack.on_ack_sent();
        Some(Transmit {
            seq,
            ack: self.rcv_nxt,
            fin,
            rst: false,
            psh: ends_stream && len > 0,
            window: window_field,
            offset,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie::{CookieJar, FourTuple};
    use lib_test_rng::Rng;
    use std::collections::VecDeque;
    use std::vec;
    use std::vec::Vec;

    const MS: u64 = 1_000_000;
    const TUPLE: FourTuple =
        FourTuple { local_addr: [10, 0, 2, 15], local_port: 80, remote_addr: [10, 0, 2, 2], remote_port: 40000 };

    /// The stream byte at `offset` (what the application would serve).
    fn byte(offset: u64) -> u8 {
        (offset.wrapping_mul(7) ^ (offset >> 8)) as u8
    }

    /// A connection made the way a server makes them: a SYN answered with a
    /// cookie, the final ACK validated.
    fn handshake(client_isn: u32, now: u64) -> (Conn, Seq) {
        let jar = CookieJar::new([7; 16], now / MS);
        let iss = jar.encode(&TUPLE, Seq(client_isn), Some(1460), Some(7), now / MS);
        let negotiated = jar.validate(&TUPLE, Seq(client_isn) + 1, iss + 1, now / MS).expect("our own cookie");
        let conn = Conn::accept(Config::default(), iss, Seq(client_isn), negotiated.mss, negotiated.peer_wscale);
        (conn, iss)
    }

    fn ack_segment<'a>(seq: Seq, ack: Seq, window: u16, payload: &'a [u8], fin: bool) -> Incoming<'a> {
        Incoming { seq, ack: Some(ack), syn: false, fin, rst: false, window, payload }
    }

    fn drain(conn: &mut Conn, now: u64, room: u32) -> Vec<Transmit> {
        let mut out = Vec::new();
        while let Some(t) = conn.poll(now, room) {
            out.push(t);
            assert!(out.len() < 10_000, "poll never ends");
        }
        out
    }

    /// Cheetah's packet merging: a small request with `Connection: close`
    /// costs the server three segments — the SYN-ACK (the listener's), the
    /// response with its FIN and the request's ACK, and the ACK of the
    /// client's FIN — and no pure delayed ACK goes out in between.
    #[test]
    fn a_small_close_mode_exchange_is_response_with_fin_then_the_final_ack() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(1000, 0);
        // The window field of the handshake's ACK (scaled by 2^7 from now on).
        let request = [b'G'; 100];
        let got = conn.on_segment(MS, &ack_segment(Seq(1001), iss + 1, 512, &request, false), 4096, &mut limiter);
        assert_eq!(got.data, 0..100, "the request is handed over");
        assert!(conn.poll(MS, 4096).is_none(), "the ACK waits for the response");
        conn.extend(500);
        conn.close();
        let sent = drain(&mut conn, 2 * MS, 3996);
        assert_eq!(sent.len(), 1, "{sent:?}");
        let response = sent[0];
        assert_eq!((response.offset, response.len, response.fin, response.psh), (0, 500, true, true));
        assert_eq!(response.ack, Seq(1101), "the request's ACK rides on the response");
        assert_eq!(conn.state(), State::FinWait1);
        // The client acknowledges everything and closes.
        let fin_ack = ack_segment(Seq(1101), iss + 502, 512, &[], true);
        let got = conn.on_segment(3 * MS, &fin_ack, 4096, &mut limiter);
        assert!(got.peer_closed);
        assert_eq!(got.acked, 500);
        assert_eq!(conn.state(), State::TimeWait);
        let last = drain(&mut conn, 3 * MS, 4096);
        assert_eq!(last.len(), 1);
        assert_eq!((last[0].seq, last[0].ack, last[0].len, last[0].fin), (iss + 502, Seq(1102), 0, false));
        assert_eq!(conn.next_numbers(), (iss + 502, Seq(1102)), "what the TIME-WAIT record keeps");
    }

    #[test]
    fn a_lost_response_is_sent_again_from_the_same_stream_offsets() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(5, 0);
        conn.on_segment(0, &ack_segment(Seq(6), iss + 1, 65535, b"GET / HTTP/1.0\r\n\r\n", false), 4096, &mut limiter);
        conn.extend(3000);
        let first = drain(&mut conn, MS, 4096);
        assert_eq!(first.iter().map(|t| (t.offset, t.len)).collect::<Vec<_>>(), [(0, 1460), (1460, 1460), (2920, 80)]);
        let deadline = conn.deadline().expect("the retransmission timer runs");
        assert!(deadline >= MS + crate::rto::INITIAL_RTO);
        conn.on_timer(deadline);
        let again = drain(&mut conn, deadline, 4096);
        assert_eq!(again[0].offset, 0, "resent from SND.UNA: {again:?}");
        assert_eq!(again[0].seq, iss + 1);
        assert!(again.len() <= 1, "one segment after a timeout (cwnd = 1 SMSS): {again:?}");
    }

    #[test]
    fn three_duplicate_acks_resend_the_first_unacknowledged_segment() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(5, 0);
        let request = b"GET /big HTTP/1.1\r\n\r\n";
        conn.on_segment(0, &ack_segment(Seq(6), iss + 1, 65535, request, false), 4096, &mut limiter);
        conn.extend(20 * 1460);
        let sent = drain(&mut conn, MS, 4096);
        assert_eq!(sent.len(), 10, "the initial window is 10 segments");
        let rcv = Seq(6) + request.len() as u32;
        // The first segment was lost: three duplicate ACKs of SND.UNA.
        for i in 0..3 {
            conn.on_segment(2 * MS + i, &ack_segment(rcv, iss + 1, 65535, &[], false), 4096, &mut limiter);
        }
        let resent = conn.poll(3 * MS, 4096).expect("fast retransmit");
        assert_eq!((resent.seq, resent.offset, resent.len), (iss + 1, 0, 1460));
    }

    #[test]
    fn no_short_segment_goes_in_the_middle_of_the_stream_while_data_is_in_flight() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(5, 0);
        let request = b"GET /big HTTP/1.1\r\n\r\n";
        // A window of one and a half segments (scaled by 7: 17 << 7 = 2176).
        conn.on_segment(0, &ack_segment(Seq(6), iss + 1, 17, request, false), 4096, &mut limiter);
        conn.extend(5000);
        let first = drain(&mut conn, MS, 4096);
        assert_eq!(first.iter().map(|t| t.len).collect::<Vec<_>>(), [1460], "not the 716 bytes left in the window");
        let rcv = Seq(6) + request.len() as u32;
        let mut lens: Vec<u32> = Vec::new();
        for step in 0..10 {
            let sent: u32 = 1460 + lens.iter().sum::<u32>();
            conn.on_segment((2 + step) * MS, &ack_segment(rcv, iss + 1 + sent, 17, &[], false), 4096, &mut limiter);
            let more = drain(&mut conn, (2 + step) * MS, 4096);
            lens.extend(more.iter().map(|t| t.len));
            if 1460 + lens.iter().sum::<u32>() == 5000 {
                break;
            }
        }
        assert_eq!(lens, [1460, 1460, 620], "full segments, the stream's end last");
    }

    #[test]
    fn out_of_order_data_is_not_queued_and_gets_a_duplicate_ack_at_once() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        let got = conn.on_segment(0, &ack_segment(Seq(111), iss + 1, 65535, b"later", false), 4096, &mut limiter);
        assert_eq!(got.data, 0..0);
        let ack = conn.poll(0, 4096).expect("an immediate ACK");
        assert_eq!((ack.ack, ack.len), (Seq(101), 0));
    }

    #[test]
    fn a_request_larger_than_the_room_is_cut_at_the_window() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        let got = conn.on_segment(0, &ack_segment(Seq(101), iss + 1, 65535, &[b'x'; 300], false), 200, &mut limiter);
        assert_eq!(got.data, 0..200);
        let ack = conn.poll(0, 0).expect("tells the peer what was taken");
        assert_eq!((ack.ack, ack.window), (Seq(301), 0));
        // The rest, sent again, is taken once there is room.
        let got = conn.on_segment(MS, &ack_segment(Seq(101), iss + 1, 65535, &[b'x'; 300], false), 500, &mut limiter);
        assert_eq!(got.data, 200..300);
    }

    #[test]
    fn an_abort_sends_one_reset_and_nothing_after() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        conn.on_segment(0, &ack_segment(Seq(101), iss + 1, 65535, &[], false), 4096, &mut limiter);
        conn.extend(5000);
        assert!(!drain(&mut conn, 0, 4096).is_empty(), "data goes out");
        conn.abort();
        assert_eq!(conn.state(), State::Closed);
        let rst = conn.poll(0, 4096).expect("the reset");
        assert!(rst.rst, "{rst:?}");
        assert!(conn.poll(0, 4096).is_none(), "one reset, then nothing");
        // The peer's ACK after the abort changes nothing.
        conn.on_segment(MS, &ack_segment(Seq(101), iss + 1, 65535, &[], false), 4096, &mut limiter);
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.poll(MS, 4096).is_none());
    }

    #[test]
    fn blind_rst_and_syn_get_challenge_acks_and_an_exact_rst_resets() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        let rst =
            |seq| Incoming { seq: Seq(seq), ack: None, syn: false, fin: false, rst: true, window: 0, payload: &[] };
        conn.on_segment(0, &rst(150), 4096, &mut limiter);
        assert_eq!(conn.state(), State::Established);
        assert!(conn.poll(0, 4096).is_some(), "a challenge ACK");
        let syn = Incoming { syn: true, ..ack_segment(Seq(9), iss + 1, 100, &[], false) };
        conn.on_segment(0, &syn, 4096, &mut limiter);
        assert_eq!(conn.state(), State::Established);
        conn.on_segment(0, &rst(101), 4096, &mut limiter);
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.poll(0, 4096).is_none(), "nothing is sent after a reset");
    }

    #[test]
    fn a_closed_window_is_probed_and_a_silent_peer_is_given_up_with_a_reset() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        // The peer's window is zero.
        conn.on_segment(0, &ack_segment(Seq(101), iss + 1, 0, b"GET /", false), 4096, &mut limiter);
        conn.extend(1000);
        let sent = drain(&mut conn, 0, 4096);
        assert!(sent.iter().all(|t| t.len == 0), "nothing into a closed window: {sent:?}");
        // The peer never answers: probes back off, then the connection gives up.
        let mut now = 0;
        let mut probes = 0;
        while conn.state() != State::Closed {
            // A closed window with data waiting keeps the timer running.
            now = conn.deadline().unwrap_or(now + 100 * MS).max(now + MS);
            conn.on_timer(now);
            for t in drain(&mut conn, now, 4096) {
                if t.rst {
                    assert_eq!(conn.state(), State::Closed);
                } else if t.len == 1 {
                    probes += 1;
                }
            }
            assert!(now < 1_000 * 1_000 * MS, "never gave up");
        }
        assert!(probes >= 1, "the window was probed");
    }

    /// An abort after a zero-window probe: the probe's byte lies past the
    /// peer's closed window, so the reset goes at the window's edge
    /// (SND.UNA), the only number the peer accepts a RST at; at SND.MAX,
    /// one beyond, the peer ignored it and stayed connected (seen with
    /// smoltcp as the client of an FTP transfer aborted by ABOR).
    #[test]
    fn an_abort_after_a_window_probe_resets_at_the_window_edge() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        conn.on_segment(0, &ack_segment(Seq(101), iss + 1, 0, &[], false), 4096, &mut limiter);
        conn.extend(1000);
        let mut now = 0;
        let mut probed = false;
        while !probed {
            now = conn.deadline().unwrap_or(now + 100 * MS).max(now + MS);
            conn.on_timer(now);
            probed = drain(&mut conn, now, 4096).iter().any(|t| t.len == 1);
        }
        // The peer did not take the probe's byte: it acknowledges iss + 1
        // with its window still closed.
        conn.on_segment(now, &ack_segment(Seq(101), iss + 1, 0, &[], false), 4096, &mut limiter);
        conn.abort();
        let rst = conn.poll(now, 4096).expect("the reset");
        assert!(rst.rst);
        assert_eq!(rst.seq, iss + 1, "at the peer's RCV.NXT, not past it");
        // With an open window the reset goes at SND.MAX.
        let (mut conn, iss) = handshake(100, 0);
        conn.on_segment(0, &ack_segment(Seq(101), iss + 1, 65535, &[], false), 4096, &mut limiter);
        conn.extend(500);
        drain(&mut conn, 0, 4096);
        conn.abort();
        assert_eq!(conn.poll(0, 4096).expect("the reset").seq, iss + 501);
    }

    /// Found by the `tcp` fuzz target: once the peer had acknowledged our
    /// FIN (FIN-WAIT-2), the FIN's sequence number was computed from
    /// SND.UNA, which had moved past it, so the connection sent a second
    /// FIN one beyond the first (and counted it in SND.MAX, the TIME-WAIT
    /// record's `snd_nxt`).
    #[test]
    fn fin_wait_2_sends_nothing_more_and_time_wait_keeps_the_fin_s_numbers() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(1000, 0);
        conn.on_segment(MS, &ack_segment(Seq(1001), iss + 1, 512, &[b'G'; 100], false), 4096, &mut limiter);
        conn.extend(500);
        conn.close();
        let sent = drain(&mut conn, 2 * MS, 4096);
        assert_eq!((sent.len(), sent[0].fin, sent[0].seq), (1, true, iss + 1));
        // The client acknowledges the response and the FIN, and has not closed yet.
        conn.on_segment(3 * MS, &ack_segment(Seq(1101), iss + 502, 512, &[], false), 4096, &mut limiter);
        assert_eq!(conn.state(), State::FinWait2);
        assert_eq!(conn.acked(), 500);
        let after = drain(&mut conn, 3 * MS, 4096);
        assert!(after.iter().all(|t| !t.fin && t.len == 0), "a second FIN: {after:?}");
        assert_eq!(conn.next_numbers(), (iss + 502, Seq(1101)));
        assert_eq!(conn.deadline(), Some(3 * MS + FIN_WAIT2_NS), "only FIN-WAIT-2's limit runs");
        conn.on_segment(4 * MS, &ack_segment(Seq(1101), iss + 502, 512, &[], true), 4096, &mut limiter);
        assert_eq!(conn.state(), State::TimeWait);
        let last = drain(&mut conn, 4 * MS, 4096);
        assert_eq!(last.iter().map(|t| (t.seq, t.ack, t.fin)).collect::<Vec<_>>(), [(iss + 502, Seq(1102), false)]);
        assert_eq!(conn.next_numbers(), (iss + 502, Seq(1102)), "what the TIME-WAIT record keeps");
    }

    /// A stream more than 4 GiB ahead of SND.UNA has sequence numbers
    /// equal, modulo 2^32, to its FIN's: an ACK of its first bytes was
    /// taken for the ACK of the FIN (one byte short in `acked`, the FIN
    /// thought acknowledged and never sent). What the FIN is, is decided by
    /// stream offsets now.
    #[test]
    fn a_stream_longer_than_4_gib_is_not_taken_for_its_fin() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(1000, 0);
        conn.on_segment(MS, &ack_segment(Seq(1001), iss + 1, 65535, &[b'G'; 100], false), 4096, &mut limiter);
        let len = (1u64 << 32) + 100;
        conn.extend(len);
        conn.close();
        let sent = drain(&mut conn, 2 * MS, 4096);
        assert!(sent.iter().all(|t| !t.fin) && sent.len() == 10, "{sent:?}");
        // The ACK of the first 101 bytes: iss + 1 + 101 is the FIN's number modulo 2^32.
        conn.on_segment(3 * MS, &ack_segment(Seq(1101), iss + 102, 65535, &[], false), 4096, &mut limiter);
        assert_eq!((conn.state(), conn.acked()), (State::Established, 101));
        let more = drain(&mut conn, 3 * MS, 4096);
        assert!(more.iter().all(|t| !t.fin && t.offset >= 101 && t.seq - (iss + 1) == t.offset as u32), "{more:?}");
    }

    #[test]
    fn when_the_peer_closes_first_the_server_finishes_and_needs_no_time_wait() {
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(100, 0);
        // A keep-alive request and its response.
        conn.on_segment(0, &ack_segment(Seq(101), iss + 1, 100, b"GET / HTTP/1.1\r\n\r\n", false), 4096, &mut limiter);
        conn.extend(10);
        let sent = drain(&mut conn, MS, 4096);
        assert_eq!((sent.len(), sent[0].fin), (1, false));
        // The client acknowledges and closes.
        let got = conn.on_segment(2 * MS, &ack_segment(Seq(119), iss + 11, 100, &[], true), 4096, &mut limiter);
        assert!(got.peer_closed);
        assert_eq!(conn.state(), State::CloseWait);
        conn.close();
        let fin = drain(&mut conn, 2 * MS, 4096);
        assert_eq!((fin.len(), fin[0].fin, fin[0].len, fin[0].ack), (1, true, 0, Seq(120)), "{fin:?}");
        assert_eq!(conn.state(), State::LastAck);
        conn.on_segment(3 * MS, &ack_segment(Seq(120), iss + 12, 100, &[], false), 4096, &mut limiter);
        assert_eq!(conn.state(), State::Closed);
    }

    /// One direction of the simulated network: segments in flight, lost,
    /// duplicated and reordered at random.
    struct Link<T> {
        queue: VecDeque<(u64, T)>,
    }

    impl<T: Clone> Link<T> {
        fn send(&mut self, rng: &mut Rng, now: u64, item: T, loss: usize) {
            if rng.below(100) < loss {
                return;
            }
            let copies = if rng.below(100) < 3 { 2 } else { 1 };
            for _ in 0..copies {
                let delay = MS + rng.below(20) as u64 * MS;
                self.queue.push_back((now + delay, item.clone()));
            }
        }
        /// A segment due at `now`, picked at random among those due (reordering).
        fn take(&mut self, rng: &mut Rng, now: u64) -> Option<T> {
            let due: Vec<usize> = (0..self.queue.len()).filter(|&i| self.queue[i].0 <= now).collect();
            if due.is_empty() {
                return None;
            }
            let i = due[rng.below(due.len())];
            self.queue.remove(i).map(|(_, t)| t)
        }
    }

    /// What the client puts on the wire: seq, ack, window, payload, FIN.
    type ClientSegment = (Seq, Option<Seq>, u16, Vec<u8>, bool);

    /// What the server puts on the wire (with the bytes the stream range
    /// resolves to).
    #[derive(Clone, Debug)]
    struct ServerSegment {
        t: Transmit,
        bytes: Vec<u8>,
    }

    /// A client that sends a request, reads the response in order, closes
    /// after the server's FIN, and retransmits its own segments on a fixed
    /// timer: the model the connection is checked against.
    #[test]
    fn the_stream_arrives_whole_in_order_over_a_bad_network() {
        for seed in 0..100u64 {
            run_lossy_exchange(seed);
        }
    }

    fn run_lossy_exchange(seed: u64) {
        let mut rng = Rng(0x7c9 + seed * 0x9e37_79b9);
        let loss = rng.below(15);
        let response_len = [0u64, 1, 100, 1460, 1461, 20_000, 150_000][rng.below(7)];
        // The sender's bursts: none, or a TSO device (`poll_with`).
        let burst = [0u32, 3 * 1460 + 100, 64_000][rng.below(3)];
        let mut limiter = ChallengeLimiter::per_second();
        let (mut conn, iss) = handshake(rng.next() as u32, 0);
        let request_len = 1 + rng.below(600);
        let irs1 = conn.next_numbers().1;
        let mut to_server: Link<ClientSegment> = Link { queue: VecDeque::new() };
        let mut to_client: Link<ServerSegment> = Link { queue: VecDeque::new() };
        // The client's state.
        let mut received: Vec<u8> = Vec::new();
        let mut client_rcv_nxt = iss + 1;
        let mut server_fin_seen = false;
        let mut client_fin_acked = false;
        // The client's receive buffer (its window is what is free in it, so
        // the right edge never moves left: RFC 9293 §3.8.6.2.2), drained by
        // its application at random times.
        let buffer = [1024u32, 8192, 65536][rng.below(3)];
        let mut unread = 0u32;
        let window = |unread: u32| ((buffer - unread) >> 7) as u16;
        let mut client_acked = irs1; // what the server acknowledged of ours
        let mut next_client_resend = 0;
        let mut served = false;
        let mut client_fin_sent = false;
        let mut now = 0u64;
        for _step in 0..200_000 {
            now += MS;
            // Sometimes the client's application reads what arrived.
            if rng.below(50) == 0 {
                unread = 0;
            }
            let client_window = window(unread);
            // The client (re)sends what the server has not acknowledged:
            // the request, then its FIN once it saw the server's.
            if now >= next_client_resend {
                next_client_resend = now + 200 * MS;
                let request_end = irs1 + request_len as u32;
                if client_acked.lt(request_end) {
                    let from = (client_acked - irs1) as usize;
                    let payload = vec![b'r'; request_len - from];
                    to_server.send(
                        &mut rng,
                        now,
                        (client_acked, Some(client_rcv_nxt), client_window, payload, false),
                        loss,
                    );
                } else if server_fin_seen && !client_fin_acked {
                    client_fin_sent = true;
                    to_server.send(
                        &mut rng,
                        now,
                        (request_end, Some(client_rcv_nxt), client_window, Vec::new(), true),
                        loss,
                    );
                } else {
                    // A window update (or a keep-alive-like ACK).
                    to_server.send(
                        &mut rng,
                        now,
                        (client_acked, Some(client_rcv_nxt), client_window, Vec::new(), false),
                        loss,
                    );
                }
            }
            // Deliver to the server.
            while let Some((seq, ack, window, payload, fin)) = to_server.take(&mut rng, now) {
                let seg = Incoming { seq, ack, syn: false, fin, rst: false, window, payload: &payload };
                let got = conn.on_segment(now, &seg, 4096, &mut limiter);
                assert!(got.acked <= response_len);
                if !served && conn.next_numbers().1 == irs1 + request_len as u32 {
                    served = true;
                    conn.extend(response_len);
                    conn.close();
                }
            }
            conn.on_timer(now);
            while let Some(t) = conn.poll_with(now, 4096, |_| burst) {
                assert!(!t.rst, "seed {seed} (loss {loss}%, {response_len} B, buffer {buffer}): the connection gave up at {} ms: {conn:?}, received {}, unread {unread}", now / MS, received.len());
                let bytes = (t.offset..t.offset + u64::from(t.len)).map(byte).collect();
                let end = t.offset + u64::from(t.len);
                assert!(end <= response_len, "beyond the stream");
                assert!(t.len <= burst.max(conn.smss()), "seed {seed}: a burst longer than asked");
                if t.len > conn.smss() && end < response_len {
                    assert_eq!(t.len % conn.smss(), 0, "seed {seed}: a burst of whole packets");
                }
                to_client.send(&mut rng, now, ServerSegment { t, bytes }, loss);
            }
            // Deliver to the client.
            while let Some(s) = to_client.take(&mut rng, now) {
                let t = s.t;
                if t.ack.gt(client_acked) {
                    client_acked = t.ack;
                    if server_fin_seen && t.ack == irs1 + request_len as u32 + 1 {
                        client_fin_acked = true;
                    }
                }
                if t.seq == client_rcv_nxt {
                    let room = (buffer - unread) as usize;
                    let take = s.bytes.len().min(room);
                    received.extend_from_slice(&s.bytes[..take]);
                    unread += take as u32;
                    client_rcv_nxt += take as u32;
                    if t.fin && take == s.bytes.len() {
                        client_rcv_nxt += 1;
                        server_fin_seen = true;
                        next_client_resend = now; // close at once
                    }
                }
                // Acknowledge every segment (cumulatively), from the
                // client's SND.NXT.
                let seq = irs1 + request_len as u32 + u32::from(client_fin_sent);
                to_server.send(&mut rng, now, (seq, Some(client_rcv_nxt), window(unread), Vec::new(), false), loss);
            }
            if matches!(conn.state(), State::TimeWait | State::Closed) && server_fin_seen && client_fin_acked {
                break;
            }
            if now > 600_000 * MS {
                break;
            }
        }
        assert!(server_fin_seen, "seed {seed} (loss {loss}%, {response_len} B): no FIN; state {:?}, served {served}, received {}, acked {}, now {} ms, conn {conn:?}", conn.state(), received.len(), conn.acked(), now / MS);
        assert_eq!(received.len() as u64, response_len, "seed {seed}");
        assert!(received.iter().enumerate().all(|(i, &b)| b == byte(i as u64)), "seed {seed}: wrong bytes");
        assert_eq!(conn.acked(), response_len, "seed {seed}");
        assert_eq!(conn.state(), State::TimeWait, "seed {seed}");
    }
}
