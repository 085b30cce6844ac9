//! Rules that relate several values: names that must resolve or be unique,
//! ids that share a space, address ranges that must fit or not overlap.
//!
//! Each check reports at the element that breaks the rule — for a clash,
//! the later of the two in the file — and names the earlier one and its
//! line, so the user can see both sides.
//!
//! Names declared by elements the parser dropped (see
//! [`crate::parse`]'s error recovery) count as known: a reference to them is
//! not reported again, and checks involving them are skipped.

mod channels;
mod devices;
mod memory;
mod network;

pub(crate) use network::Expansion;

use std::collections::HashMap;

use crate::diagnostic::{Loc, Sink};
use crate::limits::MAX_PDS;
use crate::model::{ProtectionDomain, SystemDescription};
use crate::parse::Parsed;
use crate::suggest;

/// Checks `parsed` and fills in what is derived from several elements
/// (the resolved [`crate::model::ChannelEnd::pp`]), reporting to `sink`.
pub(crate) fn validate(parsed: &mut Parsed, sink: &mut Sink<'_>) {
    // The network first: its rules, then its expansion into regions, maps
    // and channels, which the rules below check like written ones.
    let expansion = Validator { parsed, sink }.network();
    crate::network::expand(parsed, &expansion);
    channels::resolve_protected_calls(&mut parsed.system, &parsed.explicit_pp);
    let mut v = Validator { parsed, sink };
    v.pd_names();
    v.pd_count();
    v.child_ids();
    v.memory_regions();
    v.maps();
    v.setvars();
    v.symbols();
    v.channel_ends();
    v.protected_calls();
    v.notification_ids();
    v.irqs();
    v.ioports();
    v.pci_devices();
}

struct Validator<'p, 's, 'f> {
    parsed: &'p Parsed,
    sink: &'s mut Sink<'f>,
}

impl<'p> Validator<'p, '_, '_> {
    fn system(&self) -> &'p SystemDescription {
        &self.parsed.system
    }

    fn error(&mut self, loc: Loc, message: impl Into<String>, hint: impl Into<String>) {
        self.sink.error(loc, message, hint);
    }

    /// Reports `name`, referenced at `loc` as a protection domain, unless it
    /// names one. Returns whether it names a PD present in the model.
    fn check_pd_reference(&mut self, name: &str, loc: Loc, what: &str) -> bool {
        if self.system().pd(name).is_some() {
            return true;
        }
        if !self.parsed.dropped_pds.contains(name) {
            let pds = self.system().all_pds();
            let names = pds.iter().map(|pd| pd.name.as_str());
            let hint = suggest::hint(name, "protection domains", names);
            self.error(loc, format!("{what} names unknown protection domain `{name}`"), hint);
        }
        false
    }

    /// Protection domain names are unique system-wide, children included:
    /// channels and the builder's output refer to PDs by name.
    fn pd_names(&mut self) {
        let mut seen: HashMap<&str, Loc> = HashMap::new();
        for pd in self.system().all_pds() {
            if let Some(&first) = seen.get(pd.name.as_str()) {
                self.error(
                    pd.loc,
                    format!("duplicate protection domain name `{}`; it is first used at line {}", pd.name, first.line),
                    "protection domain names must be unique, children included: rename one of them",
                );
            } else {
                seen.insert(&pd.name, pd.loc);
            }
        }
    }

    /// At most [`MAX_PDS`] protection domains: the boot protocol's tables
    /// have that many slots. Reported at the first PD over the limit.
    fn pd_count(&mut self) {
        let pds = self.system().all_pds();
        if let Some(first_extra) = pds.get(MAX_PDS) {
            self.error(
                first_extra.loc,
                format!(
                    "too many protection domains: `{}` is number {}, and a system has at most {MAX_PDS}",
                    first_extra.name,
                    MAX_PDS + 1
                ),
                format!("this system has {} protection domains; merge some of them", pds.len()),
            );
        }
    }

    /// Child ids are unique among siblings: the parent tells its children
    /// apart (in fault badges and TCB slots) by id.
    fn child_ids(&mut self) {
        for parent in self.system().all_pds() {
            let mut seen: HashMap<u8, &ProtectionDomain> = HashMap::new();
            for child in &parent.children {
                let Some(id) = child.child_id else { continue };
                if let Some(first) = seen.get(&id) {
                    let used: Vec<u8> = parent.children.iter().filter_map(|c| c.child_id).collect();
                    self.error(
                        child.loc,
                        format!(
                            "child id {id} of `{}` is used by both `{}` (line {}) and `{}`",
                            parent.name, first.name, first.loc.line, child.name
                        ),
                        format!(
                            "children of one protection domain need distinct ids{}",
                            free_id_hint(&used, crate::limits::MAX_CHILD_ID)
                        ),
                    );
                } else {
                    seen.insert(id, child);
                }
            }
        }
    }
}

/// ", e.g. 3": the lowest id in `0..=max` not in `used`, if any.
fn free_id_hint(used: &[u8], max: u8) -> String {
    (0..=max).find(|id| !used.contains(id)).map(|id| format!(", e.g. {id}")).unwrap_or_default()
}

/// `0x1000..0x3000` (half-open, as Rust writes ranges).
fn hex_range(start: u64, end: u64) -> String {
    format!("{start:#x}..{end:#x}")
}
