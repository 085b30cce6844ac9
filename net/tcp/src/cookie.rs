//! SYN cookies (RFC 4987 §3.6): the server answers a SYN without keeping
//! any state, and the SYN-ACK's initial sequence number carries what the
//! connection needs to remember about the SYN, authenticated so that only
//! an ACK from the peer that received the SYN-ACK can open a connection.
//!
//! # The cookie
//!
//! A cookie is 32 bits, most significant first:
//!
//! | bits   | what                                                        |
//! | ------ | ----------------------------------------------------------- |
//! | 31     | the parity of the time counter `t` (in clear)               |
//! | 25..31 | the data, `mss index << 4 \| wscale index`, XOR a 6-bit mask |
//! | 0..25  | the MAC: [`MAC_BITS`] bits of the PRF over the SYN and data  |
//!
//! The PRF is SipHash-2-4, keyed by the jar's secret for `t`, over the
//! local address and port, the remote address and port, the peer's ISN
//! and `t` itself (RFC 4987 §3.6 lists the same inputs: "a hash of the
//! connection's addresses and ports, the client's initial sequence number,
//! and a secret"); `t` counts [`COOKIE_PERIOD_MS`] periods of the caller's
//! clock. The mask is the PRF of those inputs; the MAC, the PRF of those
//! inputs and the data, so the data is authenticated too (a peer that
//! flips a data bit of its cookie is refused; Linux's cookie, which adds
//! the data to its hash, would accept a different MSS index).
//!
//! Where this layout parts from RFC 4987's example (5 bits of `t`, 3 of
//! MSS, 24 of hash): only `t`'s parity is sent, because a cookie is valid
//! for the current and the previous counter only, and the parity says
//! which of the two to try, so the full counter is still authenticated
//! (it is a PRF input) while the MAC keeps one more bit. The negotiated
//! values are masked by PRF bits so that, but for the parity bit, the
//! whole ISN is unpredictable to anyone without the secret (the point of
//! RFC 6528's ISN generator: an off-path attacker cannot guess the
//! sequence numbers of a connection).
//!
//! # What a forger can do
//!
//! An ACK with a guessed acknowledgment number picks a counter with its
//! top bit and then matches the [`MAC_BITS`]-bit MAC with probability
//! 2^-25; every value of the six masked bits decodes to a valid MSS and
//! window scale, so that is the whole acceptance rate: one forged
//! connection per 2^25 ≈ 33.5 million spoofed ACKs, each of which must
//! also guess a 4-tuple whose SYN was never seen. (The test
//! `random_acks_are_accepted_no_more_often_than_the_mac_width_allows`
//! measures it.)
//!
//! # What a cookie cannot carry
//!
//! The SYN's other options are forgotten: the peer's SACK-permitted
//! (RFC 2018) and timestamps (RFC 7323 §3) could only be recorded in the
//! timestamp echo, which a server without timestamps does not have. So a
//! SYN-ACK built from a cookie offers only MSS and window scale, and a
//! cookie connection runs without SACK and without timestamps: loss
//! recovery is NewReno (RFC 6582) alone, and RTT is sampled per RFC 6298
//! (Karn's algorithm) rather than per segment. For a server of short
//! responses over mostly clean paths that is a small price; it is the
//! price Linux pays for every cookie connection without timestamps.
//!
//! Since no state exists until the final ACK, a lost final ACK is
//! recovered by the peer's first data segment, which carries the same
//! acknowledgment number and `seq = ISN + 1`. If that segment is lost too
//! and a later one arrives first, its `seq` no longer names the ISN and
//! the cookie fails. Such a segment must not get the RST that RFC 9293
//! §3.10.7.2 gives an ACK in LISTEN, which would kill a connection the
//! peer's retransmission of its first segment is about to open:
//! [`CookieJar::acknowledges_earlier`] recognises it (a bare ACK carries
//! nothing to lose and the caller may simply drop it). The server's own ISN is a cookie, not a clock-driven number,
//! so it does not grow across incarnations of a 4-tuple (RFC 1122
//! §4.2.2.13's condition for reopening from TIME-WAIT): see
//! [`crate::timewait`] for what that costs.
//!
//! # The secret
//!
//! The jar is made from a 16-byte seed the caller takes from its entropy
//! source, and should be given a fresh one every [`SECRET_ROTATION_MS`]
//! ([`CookieJar::rotation_due`] says when). A new secret signs cookies
//! from the next counter on; the one it replaces still checks cookies of
//! the counters it signed, so rotation refuses no cookie that is still
//! within its lifetime. A cookie ages out after at most two periods
//! whatever happens; a secret that leaks ages out one rotation and two
//! periods after it does.

use crate::seq::Seq;
use core::hash::Hasher;
use siphasher::sip::SipHasher24;

/// The length of one time-counter period, in milliseconds: 60 s, as
/// Linux's `tcp_cookie_time()`. A cookie made during period `t` is
/// accepted during `t` and `t + 1`, so it lives between 60 and 120 s —
/// at most [`COOKIE_MAX_AGE_MS`]. The final ACK follows the SYN-ACK by one
/// round trip (well under a second), or, if that ACK is lost, by the
/// peer's retransmission timeout (1 s, doubling: RFC 6298 §5); one minute
/// at the least is ample, and two at the most bounds how long a cookie
/// seen on the wire can be replayed.
pub const COOKIE_PERIOD_MS: u64 = 60_000;

/// The longest a cookie is accepted after it was made: two periods, 120 s
/// (one made at the very start of a period lives that long; one made at
/// its end, one period).
pub const COOKIE_MAX_AGE_MS: u64 = 2 * COOKIE_PERIOD_MS;

/// How often the caller should give the jar a fresh secret: every 10
/// minutes. The cookies themselves age out in two minutes whatever the
/// secret; rotation bounds how long a *leaked secret* (which lets anyone
/// forge cookies for any 4-tuple) stays useful. Ten minutes keeps that
/// window short while asking the entropy source for only 16 bytes per
/// ten minutes. Rotating more often than once per period refuses cookies
/// of the previous period (see [`CookieJar::rotate`]).
pub const SECRET_ROTATION_MS: u64 = 10 * 60_000;

/// The MSS values a cookie can carry (IPv4), smallest first. The same as
/// Linux's `msstab` for IPv4, chosen there from Alcock and Nelson's 2011
/// measurement "An Analysis of TCP Maximum Segment Sizes": 1460
/// (Ethernet) is the single most frequent value (30–46 % of SYNs), 1440
/// covers PPPoE's 1440/1452, 1300 catches the 15–20 % in 1300–1349 (VPNs,
/// tunnels, clamped MSS), and values between 537 and 1299 are under 1.5 %
/// and below 536 under 0.2 %. 1220 (IPv6's minimum, 1280 − 60) would serve
/// the 1300–1439 peers 6 % worse and is not an IPv4 value. A peer is given
/// the largest entry not above its MSS.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// The MSS assumed when the SYN carries no MSS option, and the smallest a
/// cookie carries (RFC 9293 §3.7.1: "SendMSS ... default 536" for IPv4).
/// A peer that announces less still gets 536: every IPv4 host must accept
/// a 576-byte datagram (RFC 1122 §3.3.2, "MUST be capable of receiving a
/// datagram of up to 576 octets"), which holds 536 bytes of payload
/// behind 40 bytes of headers. Linux does the same.
pub const DEFAULT_MSS: u16 = 536;

/// The largest window scale shift (RFC 7323 §2.3: a shift above 14 is
/// used as 14).
pub const MAX_WSCALE: u8 = 14;

/// The width of the MAC in a cookie: 25 bits, so a guessed cookie is
/// accepted with probability 2^-25 (see the module docs).
pub const MAC_BITS: u32 = 25;

/// How many segments before a later one the peer's first data segment may
/// lie for [`CookieJar::acknowledges_earlier`]: 10, RFC 6928's initial
/// window, the most a peer sends before the server's first acknowledgment.
pub const EARLY_SEGMENTS: u32 = 10;

const MAC_MASK: u32 = (1 << MAC_BITS) - 1;
/// The window scale index that says "the SYN offered no window scaling".
const NO_WSCALE: u32 = 15;
const DATA_BITS: u32 = 6;
const DATA_MASK: u32 = (1 << DATA_BITS) - 1;

/// A connection's addresses and ports (IPv4), as seen by the server:
/// `local` is the server's side.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FourTuple {
    pub local_addr: [u8; 4],
    pub local_port: u16,
    pub remote_addr: [u8; 4],
    pub remote_port: u16,
}

impl FourTuple {
    /// The 12 bytes that name the connection, in wire order.
    pub fn bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.local_addr);
        b[4..6].copy_from_slice(&self.local_port.to_be_bytes());
        b[6..10].copy_from_slice(&self.remote_addr);
        b[10..12].copy_from_slice(&self.remote_port.to_be_bytes());
        b
    }
}

/// What a valid cookie says about the SYN it answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Negotiated {
    /// The MSS to send with: an entry of [`MSS_TABLE`], the largest not
    /// above the peer's (and at least [`DEFAULT_MSS`]). The caller also
    /// caps it by its own link's.
    pub mss: u16,
    /// The peer's window scale shift (`0..=14`), or `None` when its SYN
    /// offered no window scaling (then neither side scales: RFC 7323 §1.3).
    pub peer_wscale: Option<u8>,
}

/// The index into [`MSS_TABLE`] of the largest entry not above `peer_mss`
/// (index 0 when the peer's is below every entry or absent).
pub fn mss_index(peer_mss: Option<u16>) -> usize {
    let mss = peer_mss.unwrap_or(DEFAULT_MSS);
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0)
}

/// The secret(s) that make and check cookies.
#[derive(Clone)]
pub struct CookieJar {
    /// The secret that signs counters from `since` on.
    current: [u8; 16],
    /// The secret it replaced, which signed the counters before `since`.
    previous: [u8; 16],
    since: u64,
    /// The counter at the last rotation (or creation), for `rotation_due`.
    rotated_at: u64,
}

impl CookieJar {
    /// A jar whose secret is `seed`: 16 bytes from the caller's entropy
    /// source (anyone who knows them can forge cookies).
    pub fn new(seed: [u8; 16], now_ms: u64) -> CookieJar {
        CookieJar { current: seed, previous: seed, since: 0, rotated_at: now_ms }
    }

    /// Whether [`SECRET_ROTATION_MS`] have passed since the secret was set.
    pub fn rotation_due(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.rotated_at) >= SECRET_ROTATION_MS
    }

    /// Replaces the secret with `seed` (fresh entropy) from the next
    /// counter on; the replaced secret goes on checking the cookies of
    /// the current and previous counters. Only two secrets are kept, so a
    /// second rotation within one period replaces the first one's seed
    /// (which has signed nothing yet) rather than losing the secret in use.
    pub fn rotate(&mut self, seed: [u8; 16], now_ms: u64) {
        let t = counter(now_ms);
        if self.since <= t {
            self.previous = self.current;
        }
        self.current = seed;
        self.since = t + 1;
        self.rotated_at = now_ms;
    }

    /// The ISN of a SYN-ACK answering a SYN from `tuple.remote` with
    /// sequence number `peer_isn`, MSS option `peer_mss` and window scale
    /// option `peer_wscale` (`None` for an option the SYN did not carry).
    /// The SYN-ACK must offer no SACK and no timestamps (module docs).
    pub fn encode(
        &self,
        tuple: &FourTuple,
        peer_isn: Seq,
        peer_mss: Option<u16>,
        peer_wscale: Option<u8>,
        now_ms: u64,
    ) -> Seq {
        let t = counter(now_ms);
        let prf = self.prf(t, tuple, peer_isn);
        let ws = match peer_wscale {
            Some(s) => u32::from(s.min(MAX_WSCALE)),
            None => NO_WSCALE,
        };
        let data = (mss_index(peer_mss) as u32) << 4 | ws;
        let masked = data ^ mask(&prf);
        Seq(((t & 1) as u32) << 31 | masked << MAC_BITS | mac(prf, data))
    }

    /// Checks the final ACK of a handshake this jar answered: `seg_seq`
    /// and `seg_ack` are the segment's sequence and acknowledgment numbers,
    /// so the peer's ISN is `seg_seq - 1` and the cookie `seg_ack - 1`.
    /// `Some` when the cookie was made for this 4-tuple and ISN during the
    /// current or the previous period; `None` otherwise, and the caller
    /// drops the segment without a RST (module docs: it may be a later
    /// segment of a connection whose first ones were lost).
    pub fn validate(&self, tuple: &FourTuple, seg_seq: Seq, seg_ack: Seq, now_ms: u64) -> Option<Negotiated> {
        let cookie = (seg_ack + u32::MAX).0;
        let peer_isn = seg_seq + u32::MAX;
        let now = counter(now_ms);
        let t = if u64::from(cookie >> 31) == now & 1 { now } else { now.checked_sub(1)? };
        let prf = self.prf(t, tuple, peer_isn);
        let data = (cookie >> MAC_BITS & DATA_MASK) ^ mask(&prf);
        if cookie & MAC_MASK != mac(prf, data) {
            return None;
        }
        let ws = data & 0xf;
        Some(Negotiated { mss: MSS_TABLE[(data >> 4) as usize], peer_wscale: (ws != NO_WSCALE).then_some(ws as u8) })
    }

    /// Whether `seg_ack` acknowledges a cookie this jar made for `tuple` and
    /// a peer ISN up to [`EARLY_SEGMENTS`] segments before `seg_seq`: the
    /// segment is a later one of a handshake whose final ACK and first
    /// data segment were lost or overtaken (a multi-segment request on a
    /// reordering path). [`CookieJar::validate`] refuses it, since its
    /// `seq` does not name the ISN; the caller drops it instead of
    /// answering with a reset, which would kill the connection that the
    /// peer's retransmission of its first segment is about to open.
    ///
    /// The earlier segments are taken to be `len` bytes each (the
    /// segment's own payload length: a burst's segments are full) or any
    /// entry of [`MSS_TABLE`] (the segment is a burst's short last one),
    /// so at most 5 × [`EARLY_SEGMENTS`] ISNs are tried: the caller
    /// should call this only within a rate limit (its reset budget). A
    /// `true` opens nothing, so the guesses weaken no cookie: a forger
    /// who hits one (probability about 2^-19) gets silence, not a reset.
    pub fn acknowledges_earlier(&self, tuple: &FourTuple, seg_seq: Seq, seg_ack: Seq, len: u32, now_ms: u64) -> bool {
        let mut sizes = core::iter::once(len).chain(MSS_TABLE.iter().map(|&m| u32::from(m)));
        sizes.any(|size| {
            size > 0
                && (1..=EARLY_SEGMENTS).any(|j| {
                    let first = seg_seq + j.wrapping_mul(size).wrapping_neg();
                    self.validate(tuple, first, seg_ack, now_ms).is_some()
                })
        })
    }

    /// SipHash-2-4 under the secret for counter `t`, having absorbed the
    /// 4-tuple, the peer's ISN and `t`: [`mask`] and [`mac`] finish it.
    fn prf(&self, t: u64, tuple: &FourTuple, peer_isn: Seq) -> SipHasher24 {
        let key = if t >= self.since { &self.current } else { &self.previous };
        let mut h = SipHasher24::new_with_key(key);
        h.write(&tuple.bytes());
        h.write(&peer_isn.0.to_be_bytes());
        h.write(&t.to_be_bytes());
        h
    }
}

/// The bits that hide the data field: from the PRF of the SYN alone, so
/// that the receiver of a cookie can take them off before it knows the data.
fn mask(prf: &SipHasher24) -> u32 {
    prf.clone().finish() as u32 & DATA_MASK
}

/// The MAC: the PRF of the SYN and the data field, so that a cookie whose
/// data bits were changed fails like any other forgery.
fn mac(mut prf: SipHasher24, data: u32) -> u32 {
    prf.write_u8(data as u8);
    prf.finish() as u32 & MAC_MASK
}

/// The time counter for the caller's clock reading `now_ms`.
fn counter(now_ms: u64) -> u64 {
    now_ms / COOKIE_PERIOD_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use lib_test_rng::Rng;

    fn random_tuple(rng: &mut Rng) -> FourTuple {
        let mut a = [0u8; 8];
        rng.fill(&mut a);
        FourTuple {
            local_addr: [a[0], a[1], a[2], a[3]],
            local_port: rng.next() as u16,
            remote_addr: [a[4], a[5], a[6], a[7]],
            remote_port: rng.next() as u16,
        }
    }

    fn random_seed(rng: &mut Rng) -> [u8; 16] {
        let mut s = [0u8; 16];
        rng.fill(&mut s);
        s
    }

    /// The ACK completing the handshake: seq = ISN + 1, ack = cookie + 1.
    fn check(jar: &CookieJar, t: &FourTuple, isn: Seq, cookie: Seq, now: u64) -> Option<Negotiated> {
        jar.validate(t, isn + 1, cookie + 1, now)
    }

    #[test]
    fn every_mss_and_wscale_index_survives_the_round_trip() {
        let mut rng = Rng(0xc00c1e);
        let jar = CookieJar::new(random_seed(&mut rng), 0);
        let scales = (0..=MAX_WSCALE).map(Some).chain([None]);
        for ws in scales {
            for (i, &mss) in MSS_TABLE.iter().enumerate() {
                for _ in 0..50 {
                    let tuple = random_tuple(&mut rng);
                    let isn = Seq(rng.next() as u32);
                    let now = rng.next() % (1 << 40);
                    // Any peer MSS from this entry up to the next one picks it.
                    let top = MSS_TABLE.get(i + 1).map_or(u16::MAX, |&n| n - 1);
                    let peer_mss = mss + (rng.below(usize::from(top - mss) + 1) as u16);
                    let cookie = jar.encode(&tuple, isn, Some(peer_mss), ws, now);
                    let later = now + rng.next() % (COOKIE_PERIOD_MS - now % COOKIE_PERIOD_MS);
                    assert_eq!(
                        check(&jar, &tuple, isn, cookie, later),
                        Some(Negotiated { mss, peer_wscale: ws }),
                        "mss {peer_mss} wscale {ws:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_shift_above_fourteen_is_carried_as_fourteen() {
        let jar = CookieJar::new([7; 16], 0);
        let tuple = FourTuple::default();
        for s in 15..=u8::MAX {
            let cookie = jar.encode(&tuple, Seq(1), None, Some(s), 5);
            let got = check(&jar, &tuple, Seq(1), cookie, 5).unwrap();
            assert_eq!(got, Negotiated { mss: DEFAULT_MSS, peer_wscale: Some(14) });
        }
    }

    #[test]
    fn the_mss_is_the_largest_table_entry_not_above_the_peers() {
        assert_eq!(mss_index(None), 0, "no option: 536");
        for peer in 0..=u16::MAX {
            let m = MSS_TABLE[mss_index(Some(peer))];
            if peer < MSS_TABLE[0] {
                assert_eq!(m, DEFAULT_MSS, "below the table: 536 (RFC 1122 §3.3.2)");
            } else {
                assert!(m <= peer, "{m} above the peer's {peer}");
                assert!(MSS_TABLE.iter().all(|&e| e <= m || e > peer), "a larger entry fits {peer}");
            }
        }
        assert_eq!(mss_index(Some(1459)), 2);
        assert_eq!(mss_index(Some(1460)), 3);
        assert_eq!(mss_index(Some(9000)), 3);
    }

    #[test]
    fn a_cookie_for_another_tuple_isn_or_secret_is_refused() {
        let mut rng = Rng(0xbad_c00c1e);
        for _ in 0..2000 {
            let seed = random_seed(&mut rng);
            let jar = CookieJar::new(seed, 0);
            let tuple = random_tuple(&mut rng);
            let isn = Seq(rng.next() as u32);
            let now = rng.next() % (1 << 40);
            let cookie = jar.encode(&tuple, isn, Some(1460), Some(7), now);
            assert!(check(&jar, &tuple, isn, cookie, now).is_some());

            let bit = 1u8 << rng.below(8);
            let mut other = tuple;
            other.local_addr[rng.below(4)] ^= bit;
            assert_eq!(check(&jar, &other, isn, cookie, now), None, "local address");
            let mut other = tuple;
            other.remote_addr[rng.below(4)] ^= bit;
            assert_eq!(check(&jar, &other, isn, cookie, now), None, "remote address");
            let mut other = tuple;
            other.local_port ^= 1 << rng.below(16);
            assert_eq!(check(&jar, &other, isn, cookie, now), None, "local port");
            let mut other = tuple;
            other.remote_port ^= 1 << rng.below(16);
            assert_eq!(check(&jar, &other, isn, cookie, now), None, "remote port");
            let other_isn = Seq(isn.0 ^ 1 << rng.below(32));
            assert_eq!(check(&jar, &tuple, other_isn, cookie, now), None, "ISN");
            let mut other_seed = seed;
            other_seed[rng.below(16)] ^= bit;
            let stranger = CookieJar::new(other_seed, 0);
            assert_eq!(check(&stranger, &tuple, isn, cookie, now), None, "secret");
            let other_cookie = Seq(cookie.0 ^ 1 << rng.below(32));
            assert_eq!(check(&jar, &tuple, isn, other_cookie, now), None, "a flipped bit");
        }
    }

    #[test]
    fn a_cookie_lives_through_the_next_period_and_no_longer() {
        let mut rng = Rng(0x7153);
        let jar = CookieJar::new(random_seed(&mut rng), 0);
        for _ in 0..2000 {
            let tuple = random_tuple(&mut rng);
            let isn = Seq(rng.next() as u32);
            let made = rng.next() % (1 << 40);
            let cookie = jar.encode(&tuple, isn, Some(1300), None, made);
            let end = (made / COOKIE_PERIOD_MS + 2) * COOKIE_PERIOD_MS;
            assert!(end - made <= COOKIE_MAX_AGE_MS && end - made > COOKIE_PERIOD_MS);
            let within = made + rng.next() % (end - made);
            assert!(check(&jar, &tuple, isn, cookie, within).is_some());
            assert!(check(&jar, &tuple, isn, cookie, end - 1).is_some());
            assert_eq!(check(&jar, &tuple, isn, cookie, end), None, "expired");
            for k in 0..4 {
                let after = end + k * COOKIE_PERIOD_MS + rng.next() % COOKIE_PERIOD_MS;
                assert_eq!(check(&jar, &tuple, isn, cookie, after), None, "expired at {after}");
            }
        }
    }

    /// A later segment of the first burst (full-sized, or the burst's
    /// short last one after full segments of the peer's MSS) is recognised
    /// up to [`EARLY_SEGMENTS`] segments on, though `validate` refuses it;
    /// a segment further on, another 4-tuple, an expired cookie and random
    /// acknowledgments are not.
    #[test]
    fn later_segments_of_the_first_burst_are_recognised_and_nothing_else() {
        let mut rng = Rng(0xea71);
        let jar = CookieJar::new(random_seed(&mut rng), 0);
        for _ in 0..500 {
            let tuple = random_tuple(&mut rng);
            let isn = Seq(rng.next() as u32);
            let mss = MSS_TABLE[rng.below(MSS_TABLE.len())];
            let now = rng.next() % (1 << 40);
            let ack = jar.encode(&tuple, isn, Some(mss), Some(7), now) + 1;
            let first = isn + 1;
            let full = u32::from(mss);
            let j = 1 + rng.below(EARLY_SEGMENTS as usize) as u32;
            let short = 1 + rng.below(full as usize - 1) as u32;
            let seq = first + j * full;
            assert!(jar.validate(&tuple, first, ack, now).is_some());
            assert_eq!(jar.validate(&tuple, seq, ack, now), None);
            assert!(jar.acknowledges_earlier(&tuple, seq, ack, full, now), "full segment {j}");
            assert!(jar.acknowledges_earlier(&tuple, seq, ack, short, now), "short last segment {j}");
            let beyond = first + (EARLY_SEGMENTS + 1) * full;
            assert!(!jar.acknowledges_earlier(&tuple, beyond, ack, full, now), "beyond the initial window");
            assert!(!jar.acknowledges_earlier(&tuple, seq + 1, ack, full, now), "not on a segment boundary");
            let other = FourTuple { remote_port: tuple.remote_port ^ 1, ..tuple };
            assert!(!jar.acknowledges_earlier(&other, seq, ack, full, now), "another 4-tuple");
            let expired = (now / COOKIE_PERIOD_MS + 2) * COOKIE_PERIOD_MS;
            assert!(!jar.acknowledges_earlier(&tuple, seq, ack, full, expired), "expired");
        }
        let random = (0..20_000)
            .filter(|_| {
                let (seq, ack) = (Seq(rng.next() as u32), Seq(rng.next() as u32));
                jar.acknowledges_earlier(&random_tuple(&mut rng), seq, ack, 1460, 0)
            })
            .count();
        assert_eq!(random, 0, "random acknowledgments taken for a handshake's");
    }

    #[test]
    fn random_acks_are_accepted_no_more_often_than_the_mac_width_allows() {
        // 2^20 forged ACKs for one 4-tuple and for random ones: the
        // expected number accepted is 2^20 / 2^25 = 1/32 each; a Poisson
        // count of mean 1/32 exceeds 2 with probability ~5e-6, while a MAC
        // weakened by even 8 bits would be expected to pass 8 times.
        let mut rng = Rng(0xf0f9e);
        let jar = CookieJar::new(random_seed(&mut rng), 0);
        let fixed = random_tuple(&mut rng);
        let now = 12 * COOKIE_PERIOD_MS + 5;
        let (mut one, mut any) = (0, 0);
        for _ in 0..1 << 20 {
            let (seq, ack) = (Seq(rng.next() as u32), Seq(rng.next() as u32));
            one += usize::from(jar.validate(&fixed, seq, ack, now).is_some());
            let tuple = random_tuple(&mut rng);
            any += usize::from(jar.validate(&tuple, seq, ack, now).is_some());
        }
        assert!(one <= 2, "{one} forged ACKs accepted for one 4-tuple");
        assert!(any <= 2, "{any} forged ACKs accepted for random 4-tuples");
    }

    #[test]
    fn every_bit_of_the_cookie_but_the_counters_parity_depends_on_the_secret() {
        // For one SYN and two secrets, each of bits 0..31 differs about half
        // the time: nothing but bit 31 is predictable without the secret.
        let mut rng = Rng(0x15a);
        let mut differs = [0u32; 32];
        let n = 4000;
        let tuple = random_tuple(&mut rng);
        for _ in 0..n {
            let (a, b) = (random_seed(&mut rng), random_seed(&mut rng));
            let now = rng.next() % (1 << 40);
            let ca = CookieJar::new(a, 0).encode(&tuple, Seq(9), Some(1460), Some(7), now);
            let cb = CookieJar::new(b, 0).encode(&tuple, Seq(9), Some(1460), Some(7), now);
            for (i, d) in differs.iter_mut().enumerate() {
                *d += (ca.0 ^ cb.0) >> i & 1;
            }
        }
        assert_eq!(differs[31], 0, "the parity of the counter is in clear");
        for (i, &d) in differs[..31].iter().enumerate() {
            assert!((n * 4 / 10..n * 6 / 10).contains(&d), "bit {i}: {d}/{n}");
        }
    }

    #[test]
    fn rotation_keeps_live_cookies_and_retires_the_old_secret() {
        let mut rng = Rng(0x5ec);
        let t0 = 100 * COOKIE_PERIOD_MS + 17;
        let mut jar = CookieJar::new(random_seed(&mut rng), t0);
        let tuple = random_tuple(&mut rng);
        let old = jar.encode(&tuple, Seq(1), Some(1440), Some(2), t0);
        assert!(!jar.rotation_due(t0 + SECRET_ROTATION_MS - 1));
        assert!(jar.rotation_due(t0 + SECRET_ROTATION_MS));

        jar.rotate(random_seed(&mut rng), t0 + 1);
        assert!(!jar.rotation_due(t0 + 1));
        // The cookie made before the rotation lives out its life.
        assert!(check(&jar, &tuple, Seq(1), old, t0 + 2).is_some());
        assert!(check(&jar, &tuple, Seq(1), old, t0 + COOKIE_PERIOD_MS).is_some());
        // Cookies made in the same period still use the old secret...
        let same = jar.encode(&tuple, Seq(2), None, None, t0 + 3);
        assert!(check(&jar, &tuple, Seq(2), same, t0 + COOKIE_PERIOD_MS).is_some());
        // ...and from the next period on, the new one.
        let t1 = t0 + COOKIE_PERIOD_MS;
        let new = jar.encode(&tuple, Seq(3), None, None, t1);
        assert!(check(&jar, &tuple, Seq(3), new, t1).is_some());
        let before = CookieJar::new([0; 16], 0);
        assert_ne!(new, before.encode(&tuple, Seq(3), None, None, t1));

        // A second rotation in one period keeps the secret in use.
        let mut twice = jar.clone();
        twice.rotate(random_seed(&mut rng), t1 + 5);
        twice.rotate(random_seed(&mut rng), t1 + 6);
        assert!(check(&twice, &tuple, Seq(3), new, t1 + 7).is_some());
    }
}
