//! Channels by name: the program of a PD refers to its channels and
//! interrupts by the names the description gives them (`setvar_id` on an
//! `<end>` or `<irq>`, `setvar_irq` on a `<pci_device>`), never by number.
//!
//! A program declares each name it uses with the runtime's `channel!`: a
//! `u64` symbol `__microkit_id_<name>` whose placeholder says what the
//! program does with it ([`ChannelUse`]). Before planning, [`bind`] checks
//! every PD's program against its description, and fails with the
//! description's file:line:column and a fix when they disagree:
//!
//! - the program uses a name that no end, irq or device of the PD has
//!   (unless it declared the name optional);
//! - the description names a channel that the program does not declare;
//! - one name is given to two ends of the same PD;
//! - the use does not match: a call on an end that may not make protected
//!   calls, a served channel whose other end may not call, an interrupt name
//!   on a channel, or a channel name on an interrupt.
//!
//! Then it writes each id over its placeholder. Renumbering a channel in the
//! description therefore changes no program: the builder writes the new id.

use crate::elf::Program;
use pds_boot_spec::channel_names::{ChannelUse, SYMBOL_PREFIX};
use std::collections::BTreeMap;
use tools_sdf::{Diagnostic, Diagnostics, Loc, ProtectionDomain, SystemDescription};

/// What the description says one name of a PD is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Binding {
    id: u8,
    /// `None` for an interrupt; for a channel, whether this end may call the
    /// other and whether the other may call this one.
    channel: Option<(bool, bool)>,
    loc: Loc,
    /// How an error names the element (`<end>` of the channel to `timer`).
    what: String,
}

/// The names a PD's description gives its channels and interrupts, or the
/// diagnostics for names given twice.
fn bindings(sys: &SystemDescription, pd: &ProtectionDomain, errors: &mut Vec<Diagnostic>) -> BTreeMap<String, Binding> {
    let mut out: BTreeMap<String, Binding> = BTreeMap::new();
    let mut add = |name: &String, b: Binding, errors: &mut Vec<Diagnostic>| {
        if let Some(first) = out.get(name) {
            errors.push(Diagnostic::new(
                &sys.file,
                b.loc,
                format!(
                    "`{}` names two channels `{name}`: {} and {} (line {})",
                    pd.name, b.what, first.what, first.loc.line
                ),
                "give each channel end and interrupt of a PD its own setvar_id",
            ));
        } else {
            out.insert(name.clone(), b);
        }
    };
    for ch in &sys.channels {
        for (i, end) in ch.ends.iter().enumerate() {
            let other = &ch.ends[1 - i];
            if end.pd != pd.name {
                continue;
            }
            if let Some(name) = &end.setvar_id {
                let what = format!("the <end> of the channel to `{}` (id {})", other.pd, end.id);
                add(name, Binding { id: end.id, channel: Some((end.pp, other.pp)), loc: end.loc, what }, errors);
            }
        }
    }
    for irq in &pd.irqs {
        if let Some(name) = &irq.setvar_id {
            let what = format!("the <irq> on pin {} (id {})", irq.pin, irq.id);
            add(name, Binding { id: irq.id, channel: None, loc: irq.loc, what }, errors);
        }
    }
    for dev in &pd.pci_devices {
        if let (Some(name), Some(id)) = (&dev.setvar_irq, dev.irq) {
            let what = format!("the interrupt of <pci_device> {:04x}:{:04x} (id {id})", dev.vendor, dev.device);
            add(name, Binding { id, channel: None, loc: dev.loc, what }, errors);
        }
    }
    out
}

/// The names a program declares, with what it does with each and whether
/// the name is optional.
fn declared(program: &Program) -> BTreeMap<String, Option<(ChannelUse, bool)>> {
    program
        .symbol_names()
        .filter_map(|s| s.strip_prefix(SYMBOL_PREFIX).map(|n| (n.to_string(), s.to_string())))
        .map(|(name, symbol)| {
            let usage = program.read_u64(&symbol).and_then(ChannelUse::from_placeholder);
            (name, usage)
        })
        .collect()
}

/// Why a binding does not suit the use, if it does not.
fn mismatch(usage: ChannelUse, b: &Binding) -> Option<(&'static str, &'static str)> {
    match (usage, b.channel) {
        (ChannelUse::Irq, Some(_)) => {
            Some(("an interrupt", "name the <irq> (setvar_id) or the <pci_device> (setvar_irq)"))
        }
        (ChannelUse::Irq, None) => None,
        (_, None) => Some(("a channel", "name the <end> of the channel it means, not an interrupt")),
        (ChannelUse::Call, Some((may_call, _))) if !may_call => Some((
            "a channel it makes protected calls on",
            "set pp=\"true\" on this end (the other PD must have pp=\"true\" and a higher priority)",
        )),
        (ChannelUse::Serve, Some((_, other_calls))) if !other_calls => {
            Some(("a channel whose other end makes protected calls", "set pp=\"true\" on the other end"))
        }
        _ => None,
    }
}

/// Checks every PD's program against its description and writes the ids of
/// its named channels. `programs[i]` is the program of `sys.all_pds()[i]`.
pub fn bind(sys: &SystemDescription, programs: &mut [Program]) -> Result<(), Diagnostics> {
    let mut errors = Vec::new();
    for (pd, program) in sys.all_pds().into_iter().zip(programs.iter_mut()) {
        let bound = bindings(sys, pd, &mut errors);
        let declared = declared(program);
        let program_name = pd.program_image.file_name().unwrap_or_default().to_string_lossy();
        for (name, usage) in &declared {
            let Some((usage, optional)) = *usage else {
                errors.push(Diagnostic::new(
                    &sys.file,
                    pd.program_image_loc,
                    format!("program `{program_name}` has a symbol `{SYMBOL_PREFIX}{name}` that is not a channel name"),
                    "declare named channels only with pds_runtime::channel!",
                ));
                continue;
            };
            match bound.get(name) {
                None if optional => {}
                None => errors.push(Diagnostic::new(
                    &sys.file,
                    pd.loc,
                    format!(
                        "program `{program_name}` of `{}` uses the channel `{name}` ({}), but no channel end or interrupt of `{}` is named `{name}`",
                        pd.name,
                        usage.describe(),
                        pd.name
                    ),
                    format!("add setvar_id=\"{name}\" to the <end pd=\"{}\"> (or <irq>) it means", pd.name),
                )),
                Some(b) => match mismatch(usage, b) {
                    Some((wants, fix)) => errors.push(Diagnostic::new(
                        &sys.file,
                        b.loc,
                        format!(
                            "program `{program_name}` of `{}` uses `{name}` as {wants}, but `{name}` is {}",
                            pd.name, b.what
                        ),
                        fix,
                    )),
                    None => {
                        if let Err(e) = program.patch(&format!("{SYMBOL_PREFIX}{name}"), &u64::from(b.id).to_le_bytes()) {
                            errors.push(Diagnostic::new(&sys.file, pd.program_image_loc, e, "rebuild the program"));
                        }
                    }
                },
            }
        }
        for (name, b) in &bound {
            if !declared.contains_key(name) {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                errors.push(Diagnostic::new(
                    &sys.file,
                    b.loc,
                    format!(
                        "{} is named `{name}`, but program `{program_name}` of `{}` has no channel `{name}` (it names: {})",
                        b.what,
                        pd.name,
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                    "fix the name, or drop setvar_id if the program does not refer to this channel by name",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(errors))
    }
}
