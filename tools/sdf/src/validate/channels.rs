//! Channels: their ends, the direction of protected procedure calls, and
//! the per-PD id space shared by channel ends and irqs.

use std::collections::HashMap;

use super::{free_id_hint, Validator};
use crate::diagnostic::Loc;
use crate::limits::MAX_CHANNEL_ID;
use crate::model::{ChannelEnd, Origin, SystemDescription};
use net_config::{CLIENT_ARPD_CHANNEL, CLIENT_MUX_CHANNEL, FIRST_FREE_CLIENT_CHANNEL};

/// Fills in [`ChannelEnd::pp`] — "this end may call the other" — from the
/// `pp` attributes as written (`explicit`, parallel to `system.channels`).
///
/// If either end sets `pp`, the attributes say it all. If neither does, the
/// direction is inferred as in earlier Microkit versions: an end calls the
/// other iff the other PD has `pp="true"`. When both PDs have
/// `pp="true"` that infers calls both ways, one of which
/// [`Validator::protected_calls`] then rejects.
pub(super) fn resolve_protected_calls(system: &mut SystemDescription, explicit: &[[Option<bool>; 2]]) {
    let accepts_calls: HashMap<String, bool> = system.all_pds().iter().map(|pd| (pd.name.clone(), pd.pp)).collect();
    let accepts = |pd: &str| accepts_calls.get(pd).copied().unwrap_or(false);
    for (channel, &[a_pp, b_pp]) in system.channels.iter_mut().zip(explicit) {
        let [a, b] = &mut channel.ends;
        (a.pp, b.pp) = match (a_pp, b_pp) {
            (None, None) => (accepts(&b.pd), accepts(&a.pd)),
            _ => (a_pp.unwrap_or(false), b_pp.unwrap_or(false)),
        };
    }
}

impl Validator<'_, '_, '_> {
    /// Each end names an existing PD, and the two ends name different PDs:
    /// a channel joins two protection domains.
    pub(super) fn channel_ends(&mut self) {
        for channel in &self.system().channels {
            let [a, b] = &channel.ends;
            for end in [a, b] {
                self.check_pd_reference(&end.pd, end.loc, "channel <end>");
            }
            if a.pd == b.pd {
                self.error(
                    b.loc,
                    format!("channel connects protection domain `{}` to itself", a.pd),
                    "a channel joins two different protection domains",
                );
            }
        }
    }

    /// Protected calls go only to PDs that accept them (`pp="true"`) and run
    /// at strictly higher priority, so that the callee runs at once and the
    /// caller blocks until it replies.
    ///
    /// No cycle check is needed: priority strictly increases along every
    /// call, so a chain of calls can never return to where it started.
    pub(super) fn protected_calls(&mut self) {
        let system = self.system();
        for (channel, explicit) in system.channels.iter().zip(&self.parsed.explicit_pp) {
            let [a, b] = &channel.ends;
            if explicit == &[Some(true), Some(true)] {
                self.error(
                    b.loc,
                    format!("both ends of the channel between `{}` and `{}` set pp=\"true\"", a.pd, b.pd),
                    "protected calls go one way, to the higher priority: keep pp=\"true\" only on the caller's end",
                );
                continue;
            }
            let inferred = explicit.iter().all(Option::is_none);
            for (caller_end, callee_end) in [(a, b), (b, a)] {
                if caller_end.pp {
                    if channel.origin == Origin::Written {
                        self.protected_call(caller_end, callee_end, inferred);
                    } else {
                        self.network_call(caller_end, callee_end);
                    }
                }
            }
        }
    }

    /// Checks that the PD at `caller_end` may call the PD at `callee_end`.
    fn protected_call(&mut self, caller_end: &ChannelEnd, callee_end: &ChannelEnd, inferred: bool) {
        let system = self.system();
        let (Some(caller), Some(callee)) = (system.pd(&caller_end.pd), system.pd(&callee_end.pd)) else {
            return; // Unknown PDs are reported by `channel_ends`.
        };
        if caller.name == callee.name {
            return; // Reported by `channel_ends`.
        }
        if !callee.pp {
            // Only reachable with an explicit pp: inference requires callee.pp.
            self.error(
                caller_end.loc,
                format!(
                    "`{}` makes protected calls to `{}` (pp=\"true\" on its end), but `{}` does not accept them",
                    caller.name, callee.name, callee.name
                ),
                format!("add pp=\"true\" to <protection_domain name=\"{}\">", callee.name),
            );
        }
        if callee.priority <= caller.priority {
            let why = if !inferred {
                String::new()
            } else if caller.pp {
                format!(
                    " (inferred: neither end sets pp and both `{}` and `{}` have pp=\"true\", so each is taken to call the other)",
                    caller.name, callee.name
                )
            } else {
                format!(" (inferred: neither end sets pp and `{}` has pp=\"true\")", callee.name)
            };
            let hint = if inferred && caller.pp {
                format!(
                    "set pp=\"true\" on the <end> of the protection domain that makes the calls; calls must go to a strictly higher priority, so `{}` can call `{}` only if its priority is above {}",
                    callee.name, caller.name, caller.priority
                )
            } else {
                format!(
                    "a protected call must go to a strictly higher priority: raise `{}` above {} or lower `{}` below {}",
                    callee.name, caller.priority, caller.name, callee.priority
                )
            };
            self.error(
                caller_end.loc,
                format!(
                    "protected call to lower or equal priority: `{}` (priority {}) calls `{}` (priority {}){why}",
                    caller.name, caller.priority, callee.name, callee.priority
                ),
                hint,
            );
        }
    }

    /// [`Validator::protected_call`] for a channel `<network>` generated:
    /// a client calling the demultiplexer, or arpd. The rule is the same;
    /// the messages say what the network needs, since there is no written
    /// `<channel>` to fix.
    fn network_call(&mut self, caller_end: &ChannelEnd, callee_end: &ChannelEnd) {
        let system = self.system();
        let (Some(caller), Some(callee)) = (system.pd(&caller_end.pd), system.pd(&callee_end.pd)) else {
            return;
        };
        let is_demux = system.network.as_ref().is_some_and(|n| n.demux == callee.name);
        let (role, why) = if is_demux {
            (
                "the demultiplexer",
                "every network client calls the demultiplexer (to claim filters, for counters and the node's address)",
            )
        } else {
            ("arpd", "every network client with arp=\"true\" calls arpd (to resolve addresses)")
        };
        if !callee.pp {
            self.error(
                caller_end.loc,
                format!(
                    "network client `{}` calls {role} `{}`, but `{}` does not accept protected calls",
                    caller.name, callee.name, callee.name
                ),
                format!("{why}: add pp=\"true\" to <protection_domain name=\"{}\">", callee.name),
            );
        }
        if callee.priority <= caller.priority {
            self.error(
                caller_end.loc,
                format!(
                    "network client `{}` (priority {}) calls {role} `{}` (priority {}), and protected calls must go to a strictly higher priority",
                    caller.name, caller.priority, callee.name, callee.priority
                ),
                format!(
                    "{why}, so {role} must have a higher priority than each such client: raise `{}` above {} or lower `{}` below {}",
                    callee.name, caller.priority, caller.name, callee.priority
                ),
            );
        }
    }

    /// A PD's channel ends and irqs share one id space, `0..=MAX_CHANNEL_ID`:
    /// the id is the bit of the notification badge that signals the event,
    /// so two events with one id could not be told apart.
    pub(super) fn notification_ids(&mut self) {
        let system = self.system();
        // Each use: id, where, what (for messages), whether <network> generated it.
        let mut uses: HashMap<&str, Vec<(u8, Loc, String, bool)>> = HashMap::new();
        for channel in &system.channels {
            let [a, b] = &channel.ends;
            let generated = channel.origin != Origin::Written;
            for (end, other) in [(a, b), (b, a)] {
                uses.entry(&end.pd).or_default().push((
                    end.id,
                    end.loc,
                    format!("the channel to `{}`{}", other.pd, channel.origin.note()),
                    generated,
                ));
            }
        }
        for pd in system.all_pds() {
            for irq in &pd.irqs {
                let what = format!("the irq on IOAPIC {} pin {}", irq.ioapic, irq.pin);
                uses.entry(&pd.name).or_default().push((irq.id, irq.loc, what, false));
            }
            for dev in &pd.pci_devices {
                if let Some(id) = dev.irq {
                    let what = format!("the interrupt of PCI device {}", dev.id);
                    uses.entry(&pd.name).or_default().push((id, dev.loc, what, false));
                }
            }
        }
        let mut pds: Vec<_> = uses.into_iter().collect();
        pds.sort_by_key(|(name, _)| *name);
        for (pd, mut uses) in pds {
            uses.sort_by_key(|&(_, loc, _, _)| loc);
            let mut used: Vec<u8> = uses.iter().map(|&(id, _, _, _)| id).collect();
            // A network client's low ids are the network's, even unused.
            if system.network.as_ref().is_some_and(|n| n.client(pd).is_some()) {
                used.extend(0..FIRST_FREE_CLIENT_CHANNEL);
            }
            let mut seen: HashMap<u8, (Loc, &str, bool)> = HashMap::new();
            for (id, loc, what, generated) in &uses {
                if let Some(&(first, first_what, first_generated)) = seen.get(id) {
                    // A generated end is at its <client>: say which end it is.
                    let which = if *generated { format!(" for {what}") } else { String::new() };
                    let network_hint = if *generated || first_generated {
                        format!(
                            "; <network> fixes the ids of its channels (a client's are {CLIENT_MUX_CHANNEL} to the demultiplexer and {CLIENT_ARPD_CHANNEL} to arpd, \
                             the demultiplexer's to client n is 1 + n, arpd's to client n is 1 + n): renumber the written channel or irq"
                        )
                    } else {
                        String::new()
                    };
                    self.error(
                        *loc,
                        format!(
                            "id {id} of protection domain `{pd}`{which} is already used by {first_what} at line {}",
                            first.line
                        ),
                        format!(
                            "channel ends and irqs of one protection domain share the ids 0..={MAX_CHANNEL_ID}: pick an unused one{}{network_hint}",
                            free_id_hint(&used, MAX_CHANNEL_ID)
                        ),
                    );
                } else {
                    seen.insert(*id, (*loc, what, *generated));
                }
            }
        }
    }
}
