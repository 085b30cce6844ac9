//! The ARP daemon's logic: what `arpd` does with each ARP frame, each
//! resolve call and each tick of the clock, without the runtime (the PD in
//! `main.rs` is glue), so that it runs on the host with a fake clock.
//!
//! arpd is the one PD that receives ARP (its boot claim `arp`) and the only
//! writer of the ARP table region (`net_arp_table`), which the other network PDs
//! read. It:
//!
//! - **answers** requests for the node's address (RFC 826), from its own
//!   MAC and the node's address (the demultiplexer's transmit check refuses
//!   any other ARP sender);
//! - **learns** by RFC 826's merge rule: a sender already in the table is
//!   updated from any ARP packet; a sender not in the table is added only
//!   from a packet whose target is the node (it is about to talk to us).
//!   Gratuitous ARP about addresses we never asked for is not learnt.
//!   Senders that are not a unicast host on the link are never learnt;
//! - **confirms a changed MAC** before it replaces a live translation
//!   (reachable, stale or probing; the gateway's too). RFC 826's merge
//!   rule would overwrite it at once, which lets any station on the link
//!   take over a neighbour's traffic with one forged packet. Instead, a
//!   packet that gives a live entry's address another MAC starts a check:
//!   a unicast request goes to the *old* MAC (RFC 1122 §2.3.2.1's unicast
//!   poll; RFC 5227 §2.1.1's probe-and-wait in the other direction), and
//!   the entry keeps its old MAC meanwhile. If the old owner answers within
//!   [`CHANGE_CONFIRM_NS`], the change is refused and counted
//!   ([`Counters::changes_refused`], [`Event::ChangeRefused`]): two hosts
//!   claim the address, and the one we have been talking to wins. If it
//!   stays silent, the new MAC is taken when the time is up (a host that
//!   really moved, RFC 5227 §3's "address reuse"). Further claims while a
//!   check runs start nothing (at most one poll per entry per check);
//! - **keeps live entries through floods**: the table is bounded
//!   ([`net_arp_table::CAPACITY`]); a new entry takes a free slot, else an
//!   expired failure, else the oldest stale entry, else (for a resolution
//!   only) the oldest failure, else the oldest reachable entry, but never
//!   one *in use*: the gateway's (the description's static next hop, so it
//!   counts as always used), or one a client resolved within
//!   [`IN_USE_NS`]. With none to take, learning from an unsolicited
//!   packet is refused and a resolution fails ([`Counters::table_full`]):
//!   a flood of new senders cannot push out the addresses the node talks
//!   to;
//! - **resolves** for clients ([`Arpd::resolve`], the `arpd_api::RESOLVE`
//!   call): known → [`Resolution::Known`]; unknown → a broadcast request,
//!   repeated [`MAX_REQUESTS`] times [`REQUEST_INTERVAL_NS`] apart (RFC 1122
//!   §2.3.2.1: at most one request a second per address), and
//!   [`Resolution::Pending`]; every waiting client is notified when the
//!   entry appears, or when resolution fails (it then calls again and
//!   gets [`Resolution::Failed`] for [`FAILED_HOLD_NS`]);
//! - **ages** entries: reachable for [`REACHABLE_NS`] after the neighbour
//!   last proved its address, then stale. Readers do not use a stale entry
//!   without asking arpd; a resolve of a stale entry answers at once and
//!   re-validates it with unicast requests (usable meanwhile as
//!   `Probing`), dropping it if they go unanswered. A stale entry no one
//!   asks for is dropped [`STALE_DROP_NS`] after its last confirmation;
//! - **announces** the node's address at start with [`ANNOUNCEMENTS`]
//!   gratuitous ARP requests [`ANNOUNCE_INTERVAL_NS`] apart (RFC 5227 §2.3),
//!   and **defends** it (RFC 5227 §2.4 (b)): a packet from another MAC
//!   whose sender address is ours is a conflict, reported, and answered
//!   with one announcement if the last defence is [`DEFEND_INTERVAL_NS`]
//!   old.
//!
//! # Slots
//!
//! The daemon's private state has one slot per table entry, by index: the
//! table shows slot `i`'s translation in entry `i` while it has one
//! (reachable, probing, stale), and an empty entry otherwise (free, being
//! resolved, failed). A slot keeps its address until it is freed, so the
//! table never moves a translation.
#![no_std]

#[cfg(test)]
extern crate std;

use core::fmt;
use net_arp_table::{Entry as TableEntry, State as TableState, TableWriter, CAPACITY};
use net_config::NodeAddress;
use net_packet::{classify, ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Ipv4Address, Network};

/// Nanoseconds in a second.
pub const SECOND_NS: u64 = 1_000_000_000;
/// Between two requests for one address.
pub const REQUEST_INTERVAL_NS: u64 = SECOND_NS;
/// Requests sent for one address before giving up.
pub const MAX_REQUESTS: u8 = 3;
/// How long a failed resolution is remembered: resolves meanwhile fail at
/// once instead of sending more requests to an absent host.
pub const FAILED_HOLD_NS: u64 = 10 * SECOND_NS;
/// How long a translation stays reachable after the neighbour proved it.
pub const REACHABLE_NS: u64 = 60 * SECOND_NS;
/// When a stale translation that no one asked for is dropped, after the
/// neighbour last proved it.
pub const STALE_DROP_NS: u64 = 300 * SECOND_NS;
/// Gratuitous announcements at start (RFC 5227 `ANNOUNCE_NUM`).
pub const ANNOUNCEMENTS: u8 = 2;
/// Between two announcements (RFC 5227 `ANNOUNCE_INTERVAL`).
pub const ANNOUNCE_INTERVAL_NS: u64 = 2 * SECOND_NS;
/// Least time between two defences of the address (RFC 5227
/// `DEFEND_INTERVAL`).
pub const DEFEND_INTERVAL_NS: u64 = 10 * SECOND_NS;
/// How long the old owner of a live translation has to answer before a
/// changed MAC replaces it (RFC 5227's `PROBE_WAIT` order: a host that is
/// up answers a unicast request within milliseconds).
pub const CHANGE_CONFIRM_NS: u64 = SECOND_NS;
/// An entry a client resolved this recently is in use: never evicted for
/// a new one.
pub const IN_USE_NS: u64 = REACHABLE_NS;

/// A set of clients, bit `n` for client `n` (`net_config::MAX_CLIENTS` ≤ 32).
pub type Clients = u32;

const _: () = assert!(net_config::MAX_CLIENTS <= Clients::BITS as usize);

/// The answer to a resolve call (the protocol's own type).
pub use arpd_api::Resolution;

/// Something the PD should log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Announcement `number` of [`ANNOUNCEMENTS`] went out.
    Announced { ip: Ipv4Address, mac: EthernetAddress, number: u8 },
    /// Another host (at `mac`) claims our address `ip`; we defended it
    /// with an announcement. Reported, like defences, at most once per
    /// [`DEFEND_INTERVAL_NS`]; every claim is counted.
    Conflict { ip: Ipv4Address, mac: EthernetAddress },
    /// No answer to [`MAX_REQUESTS`] requests.
    Unreachable { ip: Ipv4Address },
    /// A packet said `ip` is at `claimed`, but the host we knew at `owner`
    /// answered the check: the translation stays.
    ChangeRefused { ip: Ipv4Address, claimed: EthernetAddress, owner: EthernetAddress },
    /// Nobody answered at the old MAC: `ip` is now at `mac`.
    Changed { ip: Ipv4Address, mac: EthernetAddress },
}

/// What the daemon needs from its PD.
pub trait Link {
    /// Sends a frame; `false` if it was dropped.
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Notifies these clients that an entry they wait for appeared or failed.
    fn notify(&mut self, clients: Clients);
    /// Reports an event.
    fn event(&mut self, event: Event);
}

/// The daemon's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub frames: u64,
    /// Frames that are not well-formed Ethernet/IPv4 ARP.
    pub malformed: u64,
    /// Valid ARP that neither taught nor asked anything: for other hosts,
    /// from unusable senders, our own.
    pub ignored: u64,
    /// Requests for our address answered.
    pub requests_answered: u64,
    /// Requests sent (resolutions, re-validations).
    pub requests_sent: u64,
    /// Announcements sent (start and defences).
    pub announcements: u64,
    /// Entries added from packets addressed to us.
    pub learned: u64,
    /// Entries updated by the merge rule (including resolutions completed).
    pub updated: u64,
    /// Changes of an entry's MAC, taken after the old MAC stayed silent.
    pub mac_changes: u64,
    /// Changes of a live entry's MAC that started a check.
    pub changes_checked: u64,
    /// Changes refused: the old owner answered the check (a conflict or
    /// a spoof).
    pub changes_refused: u64,
    /// Packets claiming our address from another MAC.
    pub conflicts: u64,
    /// Resolve calls.
    pub resolve_calls: u64,
    /// Resolutions completed by an answer.
    pub resolved: u64,
    /// Resolutions that got no answer.
    pub failed: u64,
    /// Stale entries re-validated by an answer.
    pub revalidated: u64,
    /// Entries dropped: stale and unused, or re-validation unanswered.
    pub expired: u64,
    /// Entries that found no slot (every slot resolving, re-validating or
    /// in use).
    pub table_full: u64,
    /// Frames the PD could not send.
    pub tx_dropped: u64,
}

impl fmt::Display for Counters {
    /// `key=value` pairs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frames={} malformed={} ignored={} requests_answered={} requests_sent={} announcements={} learned={} updated={} mac_changes={} changes_checked={} changes_refused={} conflicts={} resolve_calls={} resolved={} failed={} revalidated={} expired={} table_full={} tx_dropped={}",
            self.frames,
            self.malformed,
            self.ignored,
            self.requests_answered,
            self.requests_sent,
            self.announcements,
            self.learned,
            self.updated,
            self.mac_changes,
            self.changes_checked,
            self.changes_refused,
            self.conflicts,
            self.resolve_calls,
            self.resolved,
            self.failed,
            self.revalidated,
            self.expired,
            self.table_full,
            self.tx_dropped
        )
    }
}

/// Where a slot is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Free,
    /// Broadcast requests out; `waiters` are notified at the end.
    Incomplete {
        requests: u8,
        next_ns: u64,
        waiters: Clients,
    },
    /// No answer; resolves fail until `until_ns`.
    Failed {
        until_ns: u64,
    },
    Reachable,
    Stale,
    /// Stale and asked for: unicast requests out; usable meanwhile.
    Probing {
        requests: u8,
        next_ns: u64,
    },
}

/// A claimed change of a live entry's MAC, being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Change {
    mac: EthernetAddress,
    /// When the old MAC has had its chance.
    until_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    ip: Ipv4Address,
    /// Meaningful in Reachable, Stale and Probing.
    mac: EthernetAddress,
    /// When the neighbour last proved `mac`.
    confirmed_ns: u64,
    /// When a client last resolved it (0: never).
    used_ns: u64,
    /// A change of `mac` being checked.
    change: Option<Change>,
    phase: Phase,
}

impl Slot {
    const FREE: Slot = Slot {
        ip: Ipv4Address::UNSPECIFIED,
        mac: EthernetAddress::ZERO,
        confirmed_ns: 0,
        used_ns: 0,
        change: None,
        phase: Phase::Free,
    };

    /// What the table shows for this slot.
    fn published(&self) -> Option<TableEntry> {
        let state = match self.phase {
            Phase::Reachable => TableState::Reachable,
            Phase::Probing { .. } => TableState::Probing,
            Phase::Stale => TableState::Stale,
            Phase::Free | Phase::Incomplete { .. } | Phase::Failed { .. } => return None,
        };
        Some(TableEntry { ip: self.ip, mac: self.mac, state, confirmed_ns: self.confirmed_ns })
    }

    /// The next time something is due for this slot.
    fn deadline(&self) -> Option<u64> {
        let phase = self.phase_deadline();
        match self.change {
            Some(change) => Some(phase.map_or(change.until_ns, |due| due.min(change.until_ns))),
            None => phase,
        }
    }

    fn phase_deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Free => None,
            Phase::Incomplete { next_ns, .. } | Phase::Probing { next_ns, .. } => Some(next_ns),
            Phase::Failed { until_ns } => Some(until_ns),
            Phase::Reachable => Some(self.confirmed_ns.saturating_add(REACHABLE_NS)),
            Phase::Stale => Some(self.confirmed_ns.saturating_add(STALE_DROP_NS)),
        }
    }
}

/// The ARP daemon of one node.
pub struct Arpd<'t> {
    mac: EthernetAddress,
    node: NodeAddress,
    table: TableWriter<'t>,
    slots: [Slot; CAPACITY],
    /// Announcements sent so far at start, and when the next is due.
    announced: u8,
    next_announcement: Option<u64>,
    /// When we last defended our address (RFC 5227 §2.4 (b)).
    last_defence: Option<u64>,
    counters: Counters,
}

impl<'t> Arpd<'t> {
    /// The daemon of the node at `mac` and `node`, writing `table`.
    pub fn new(mac: EthernetAddress, node: NodeAddress, table: TableWriter<'t>) -> Self {
        Arpd {
            mac,
            node,
            table,
            slots: [Slot::FREE; CAPACITY],
            announced: 0,
            next_announcement: None,
            last_defence: None,
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Starts the announcements (the first goes out now).
    pub fn start(&mut self, now: u64, link: &mut impl Link) {
        self.next_announcement = Some(now);
        self.tick(now, link);
    }

    /// The earliest time [`Arpd::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        self.slots.iter().filter_map(Slot::deadline).chain(self.next_announcement).min()
    }

    /// Whether `ip` is a single neighbour on the link (not the node).
    pub fn is_neighbour(&self, ip: Ipv4Address) -> bool {
        let node = &self.node;
        let host_bits = u32::MAX.checked_shr(u32::from(node.prefix_len)).unwrap_or(0);
        // RFC 3021: a /31 has no broadcast or network address.
        let special = node.prefix_len < 31 && (ip == node.broadcast() || ip.to_u32() & host_bits == 0);
        ip.is_unicast() && node.is_on_link(ip) && ip != node.ipv4 && !special
    }

    /// Handles a received frame.
    pub fn receive(&mut self, now: u64, frame: &[u8], link: &mut impl Link) {
        self.counters.frames += 1;
        let parsed = match classify(frame) {
            Ok(parsed) => parsed,
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        let Network::Arp(arp) = parsed.network else {
            self.counters.malformed += 1;
            return;
        };
        let to_us = parsed.dst_mac.is_broadcast() || parsed.dst_mac == self.mac;
        if !to_us || arp.sender_mac == self.mac {
            // Unicast to another station, or our own frame seen again.
            self.counters.ignored += 1;
            return;
        }
        if arp.sender_ip == self.node.ipv4 {
            self.conflict(now, arp.sender_mac, link);
            return;
        }
        // RFC 826: "If the pair <protocol type, sender protocol address> is
        // already in my translation table, update the sender hardware
        // address field of the entry with the new information".
        let sender_usable = self.is_neighbour(arp.sender_ip) && arp.sender_mac.is_unicast();
        let merged = match self.find(arp.sender_ip) {
            Some(index) if sender_usable => {
                self.confirm(index, arp.sender_mac, now, link);
                true
            }
            _ => false,
        };
        // "?Am I the target protocol address?"
        if arp.target_ip != self.node.ipv4 {
            if !merged {
                self.counters.ignored += 1;
            }
            return;
        }
        // "If Merge_flag is false, add the triplet".
        if sender_usable && !merged {
            self.learn(now, arp.sender_ip, arp.sender_mac);
        }
        // "?Is the opcode ares_op$REQUEST? Yes: swap ... send the packet".
        // A probe (sender 0.0.0.0, RFC 5227) is answered too: that is how
        // its sender learns the address is taken.
        if arp.operation == ArpOperation::Request {
            if !arp.sender_mac.is_unicast() {
                self.counters.ignored += 1;
                return;
            }
            let reply = frame
                .get(net_packet::ethernet::HEADER_LEN..)
                .and_then(|bytes| ArpPacket::parse(bytes).ok())
                .and_then(|request| ArpRepr::reply_to(&request, self.mac));
            if let Some(reply) = reply {
                if self.send(&reply, link) {
                    self.counters.requests_answered += 1;
                }
            }
        }
    }

    /// A resolve call from client `client` for `ip`.
    pub fn resolve(&mut self, now: u64, client: usize, ip: Ipv4Address, link: &mut impl Link) -> Resolution {
        self.counters.resolve_calls += 1;
        if !self.is_neighbour(ip) {
            return Resolution::NotOnLink;
        }
        let waiter = u32::try_from(client).ok().and_then(|c| 1u32.checked_shl(c)).unwrap_or(0);
        let Some(index) = self.find(ip) else {
            return self.start_resolution(now, None, ip, waiter, link);
        };
        let slot = self.slots[index];
        self.slots[index].used_ns = now;
        match slot.phase {
            Phase::Reachable | Phase::Probing { .. } => Resolution::Known(slot.mac),
            Phase::Stale => {
                self.slots[index].phase =
                    Phase::Probing { requests: 1, next_ns: now.saturating_add(REQUEST_INTERVAL_NS) };
                self.publish(index);
                self.request(ip, Some(slot.mac), link);
                Resolution::Known(slot.mac)
            }
            Phase::Incomplete { requests, next_ns, waiters } => {
                self.slots[index].phase = Phase::Incomplete { requests, next_ns, waiters: waiters | waiter };
                Resolution::Pending
            }
            Phase::Failed { until_ns } if now < until_ns => Resolution::Failed,
            Phase::Failed { .. } | Phase::Free => self.start_resolution(now, Some(index), ip, waiter, link),
        }
    }

    /// Does what is due at `now`: requests again or gives up, ages entries,
    /// announces.
    pub fn tick(&mut self, now: u64, link: &mut impl Link) {
        for index in 0..CAPACITY {
            let slot = self.slots[index];
            if slot.deadline().is_none_or(|due| due > now) {
                continue;
            }
            if let Some(change) = slot.change.filter(|change| change.until_ns <= now) {
                // The old MAC stayed silent: the host moved.
                self.counters.mac_changes += 1;
                self.slots[index] =
                    Slot { mac: change.mac, confirmed_ns: now, change: None, phase: Phase::Reachable, ..slot };
                self.publish(index);
                link.event(Event::Changed { ip: slot.ip, mac: change.mac });
                continue;
            }
            if slot.phase_deadline().is_none_or(|due| due > now) {
                continue;
            }
            match slot.phase {
                Phase::Free => {}
                Phase::Incomplete { requests, waiters, .. } if requests < MAX_REQUESTS => {
                    let next_ns = now.saturating_add(REQUEST_INTERVAL_NS);
                    self.slots[index].phase = Phase::Incomplete { requests: requests + 1, next_ns, waiters };
                    self.request(slot.ip, None, link);
                }
                Phase::Incomplete { waiters, .. } => {
                    self.slots[index].phase = Phase::Failed { until_ns: now.saturating_add(FAILED_HOLD_NS) };
                    self.counters.failed += 1;
                    link.event(Event::Unreachable { ip: slot.ip });
                    if waiters != 0 {
                        link.notify(waiters);
                    }
                }
                Phase::Probing { requests, .. } if requests < MAX_REQUESTS => {
                    let next_ns = now.saturating_add(REQUEST_INTERVAL_NS);
                    self.slots[index].phase = Phase::Probing { requests: requests + 1, next_ns };
                    self.request(slot.ip, Some(slot.mac), link);
                }
                Phase::Probing { .. } | Phase::Stale => {
                    self.free(index);
                    self.counters.expired += 1;
                }
                Phase::Failed { .. } => self.free(index),
                Phase::Reachable => {
                    self.slots[index].phase = Phase::Stale;
                    self.publish(index);
                }
            }
        }
        if self.next_announcement.is_some_and(|due| due <= now) {
            self.announce(now, link);
        }
    }

    /// The translation for `ip` as the daemon knows it (tests, logs).
    pub fn known(&self, ip: Ipv4Address) -> Option<EthernetAddress> {
        let slot = &self.slots[self.find(ip)?];
        slot.published().map(|entry| entry.mac)
    }

    fn find(&self, ip: Ipv4Address) -> Option<usize> {
        self.slots.iter().position(|slot| slot.phase != Phase::Free && slot.ip == ip)
    }

    /// Whether slot `slot` is in use (see the crate docs): the gateway's,
    /// or resolved by a client within [`IN_USE_NS`].
    fn in_use(&self, slot: &Slot, now: u64) -> bool {
        Some(slot.ip) == self.node.gateway || (slot.used_ns != 0 && now.saturating_sub(slot.used_ns) < IN_USE_NS)
    }

    /// A slot for a new entry: a free one, else one whose failure is no
    /// longer held, else the oldest stale, else the oldest failure, else
    /// the oldest reachable. Never one being resolved or re-validated,
    /// nor one in use ([`Arpd::in_use`]).
    fn alloc(&mut self, now: u64) -> Option<usize> {
        let free = self.slots.iter().position(|slot| match slot.phase {
            Phase::Free => true,
            Phase::Failed { until_ns } => until_ns <= now,
            _ => false,
        });
        let oldest = |want: fn(&Phase) -> bool, key: fn(&Slot) -> u64| {
            (0..CAPACITY)
                .filter(|&i| want(&self.slots[i].phase) && !self.in_use(&self.slots[i], now))
                .min_by_key(|&i| key(&self.slots[i]))
        };
        let index = free
            .or_else(|| oldest(|p| *p == Phase::Stale, |s| s.confirmed_ns))
            .or_else(|| {
                oldest(
                    |p| matches!(p, Phase::Failed { .. }),
                    |s| match s.phase {
                        Phase::Failed { until_ns } => until_ns,
                        _ => u64::MAX,
                    },
                )
            })
            .or_else(|| oldest(|p| *p == Phase::Reachable, |s| s.confirmed_ns));
        match index {
            Some(index) => {
                self.free(index);
                Some(index)
            }
            None => {
                self.counters.table_full += 1;
                None
            }
        }
    }

    fn free(&mut self, index: usize) {
        let was_published = self.slots[index].published().is_some();
        self.slots[index] = Slot::FREE;
        if was_published {
            self.table.clear(index);
        }
    }

    fn publish(&mut self, index: usize) {
        match self.slots[index].published() {
            Some(entry) => self.table.publish(index, &entry),
            None => self.table.clear(index),
        };
    }

    /// Starts resolving `ip` (in slot `index`, or a new one) for `waiter`.
    fn start_resolution(
        &mut self,
        now: u64,
        index: Option<usize>,
        ip: Ipv4Address,
        waiter: Clients,
        link: &mut impl Link,
    ) -> Resolution {
        let Some(index) = index.or_else(|| self.alloc(now)) else {
            return Resolution::Failed;
        };
        self.free(index);
        self.slots[index] = Slot {
            ip,
            phase: Phase::Incomplete { requests: 1, next_ns: now.saturating_add(REQUEST_INTERVAL_NS), waiters: waiter },
            ..Slot::FREE
        };
        self.request(ip, None, link);
        Resolution::Pending
    }

    /// A packet says the neighbour of slot `index` is at `mac` at `now`:
    /// it confirms the entry, or (another MAC for a live entry) starts or
    /// settles the check of the change (see the crate docs).
    fn confirm(&mut self, index: usize, mac: EthernetAddress, now: u64, link: &mut impl Link) {
        let slot = self.slots[index];
        if slot.published().is_some() {
            if slot.mac != mac {
                if slot.change.is_none() {
                    self.counters.changes_checked += 1;
                    self.slots[index].change = Some(Change { mac, until_ns: now.saturating_add(CHANGE_CONFIRM_NS) });
                    self.request(slot.ip, Some(slot.mac), link);
                }
                // The entry keeps its MAC until the check is over.
                return;
            }
            if let Some(change) = slot.change {
                // The host we knew answered: the change is refused.
                self.counters.changes_refused += 1;
                self.slots[index].change = None;
                link.event(Event::ChangeRefused { ip: slot.ip, claimed: change.mac, owner: mac });
            }
        }
        let slot = self.slots[index];
        match slot.phase {
            Phase::Incomplete { waiters, .. } => {
                self.counters.resolved += 1;
                if waiters != 0 {
                    link.notify(waiters);
                    self.slots[index].used_ns = now;
                }
            }
            Phase::Probing { .. } => self.counters.revalidated += 1,
            _ => {}
        }
        self.counters.updated += 1;
        let slot = self.slots[index];
        self.slots[index] = Slot { mac, confirmed_ns: now, phase: Phase::Reachable, ..slot };
        self.publish(index);
    }

    /// Adds a translation learnt from a packet addressed to us.
    fn learn(&mut self, now: u64, ip: Ipv4Address, mac: EthernetAddress) {
        let Some(index) = self.alloc(now) else { return };
        self.slots[index] = Slot { ip, mac, confirmed_ns: now, phase: Phase::Reachable, ..Slot::FREE };
        self.counters.learned += 1;
        self.publish(index);
    }

    /// Another host says it has our address.
    fn conflict(&mut self, now: u64, mac: EthernetAddress, link: &mut impl Link) {
        self.counters.conflicts += 1;
        if self.last_defence.is_some_and(|last| now.saturating_sub(last) < DEFEND_INTERVAL_NS) {
            return;
        }
        self.last_defence = Some(now);
        link.event(Event::Conflict { ip: self.node.ipv4, mac });
        let announcement = ArpRepr::gratuitous(self.mac, self.node.ipv4);
        if self.send(&announcement, link) {
            self.counters.announcements += 1;
        }
    }

    /// The next start-up announcement.
    fn announce(&mut self, now: u64, link: &mut impl Link) {
        let announcement = ArpRepr::gratuitous(self.mac, self.node.ipv4);
        if !self.send(&announcement, link) {
            // Try again shortly: the first announcement is what tells the
            // link's caches who we are.
            self.next_announcement = Some(now.saturating_add(REQUEST_INTERVAL_NS));
            return;
        }
        self.counters.announcements += 1;
        self.announced += 1;
        link.event(Event::Announced { ip: self.node.ipv4, mac: self.mac, number: self.announced });
        self.next_announcement = (self.announced < ANNOUNCEMENTS).then(|| now.saturating_add(ANNOUNCE_INTERVAL_NS));
    }

    /// Sends a request for `ip`: broadcast, or unicast to `known` when
    /// re-validating (RFC 1122 §2.3.2.1 suggests unicast polls).
    fn request(&mut self, ip: Ipv4Address, known: Option<EthernetAddress>, link: &mut impl Link) {
        let request = ArpRepr::request(self.mac, self.node.ipv4, ip);
        let mut frame = [0u8; net_packet::ethernet::MIN_FRAME_LEN];
        let Some(len) = request.emit_frame(&mut frame) else { return };
        if let Some(mac) = known {
            frame[..6].copy_from_slice(&mac.0);
        }
        if link.send(&frame[..len]) {
            self.counters.requests_sent += 1;
        } else {
            self.counters.tx_dropped += 1;
        }
    }

    fn send(&mut self, packet: &ArpRepr, link: &mut impl Link) -> bool {
        let mut frame = [0u8; net_packet::ethernet::MIN_FRAME_LEN];
        let sent = packet.emit_frame(&mut frame).is_some_and(|len| link.send(&frame[..len]));
        if !sent {
            self.counters.tx_dropped += 1;
        }
        sent
    }
}

#[cfg(test)]
mod tests;
