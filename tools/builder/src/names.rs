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
//!
//! Variables are checked the same way: a program's `setvar!(name, r | rw |
//! paddr | size)` says what it cannot run without ([`SetvarNeed`]), and the
//! PD's description must set `name` so (a `<map>` with `setvar_vaddr` and,
//! for `rw`, write rights; `<setvar region_paddr>`; `<setvar region_size>`
//! or a map's `setvar_size`). The planner writes the values.

use crate::elf::Program;
use pds_boot_spec::channel_names::{ChannelUse, SYMBOL_PREFIX};
use pds_boot_spec::setvar_needs::SetvarNeed;
use std::collections::BTreeMap;
use tools_sdf::SetVarValue;
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

/// What the description sets a variable of a PD to.
enum SetTo {
    /// The address of a mapping, with its rights.
    Mapping {
        writable: bool,
        loc: Loc,
    },
    Paddr,
    Size,
    Sectors,
    Number,
}

/// What `pd`'s description sets the variable `name` to, if anything.
fn set_to(pd: &ProtectionDomain, name: &str) -> Option<SetTo> {
    let named = |s: &Option<String>| s.as_deref() == Some(name);
    for map in &pd.maps {
        if named(&map.setvar_vaddr) {
            return Some(SetTo::Mapping { writable: map.perms.write, loc: map.loc });
        }
        if named(&map.setvar_size) {
            return Some(SetTo::Size);
        }
    }
    for dev in &pd.pci_devices {
        if named(&dev.setvar_config) {
            return Some(SetTo::Mapping { writable: false, loc: dev.loc });
        }
        if let Some(bar) = dev.bars.iter().find(|b| named(&b.setvar_vaddr)) {
            return Some(SetTo::Mapping { writable: true, loc: bar.loc });
        }
    }
    pd.setvars.iter().find(|s| s.symbol == name).map(|s| match s.value {
        SetVarValue::Paddr => SetTo::Paddr,
        SetVarValue::Size => SetTo::Size,
        SetVarValue::Sectors { .. } => SetTo::Sectors,
        SetVarValue::Number(_) => SetTo::Number,
    })
}

/// The required variables of `program` that `pd`'s description does not set
/// as the program needs.
fn check_setvars(sys: &SystemDescription, pd: &ProtectionDomain, program: &Program, errors: &mut Vec<Diagnostic>) {
    let program_name = pd.program_image.file_name().unwrap_or_default().to_string_lossy();
    let needs = program.symbol_names().filter(|s| !s.starts_with(SYMBOL_PREFIX)).filter_map(|s| {
        let need = program.read_u64(s).and_then(SetvarNeed::from_placeholder)?;
        Some((s.to_string(), need))
    });
    let mut needs: Vec<(String, SetvarNeed)> = needs.collect();
    needs.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, need) in needs {
        let problem = match (need, set_to(pd, &name)) {
            (SetvarNeed::Read, Some(SetTo::Mapping { .. })) => None,
            (SetvarNeed::Write, Some(SetTo::Mapping { writable: true, .. })) => None,
            (SetvarNeed::Write, Some(SetTo::Mapping { writable: false, loc })) => Some((
                loc,
                format!("`{name}` is a read-only mapping, but program `{program_name}` of `{}` writes it", pd.name),
                "map it with perms=\"rw\" if the PD may write it (or fix the program)".to_string(),
            )),
            (SetvarNeed::Paddr, Some(SetTo::Paddr))
            | (SetvarNeed::Size, Some(SetTo::Size))
            | (SetvarNeed::Sectors, Some(SetTo::Sectors))
            | (SetvarNeed::Number, Some(SetTo::Number)) => None,
            (_, found) => Some((
                pd.loc,
                format!(
                    "program `{program_name}` of `{}` needs `{name}` ({}), which {}",
                    pd.name,
                    need.describe(),
                    match found {
                        None => "the description does not set",
                        Some(SetTo::Mapping { .. }) => "the description sets to a mapping's address",
                        Some(SetTo::Paddr) => "the description sets to a physical address",
                        Some(SetTo::Size) => "the description sets to a size",
                        Some(SetTo::Sectors) => "the description sets to a run of sectors",
                        Some(SetTo::Number) => "the description sets to a number",
                    }
                ),
                match need {
                    SetvarNeed::Read | SetvarNeed::Write => format!(
                        "add setvar_vaddr=\"{name}\" to the <map> of the region it means{}",
                        if need == SetvarNeed::Write { " (perms=\"rw\")" } else { "" }
                    ),
                    SetvarNeed::Paddr => {
                        format!("add <setvar symbol=\"{name}\" region_paddr=\"REGION\" /> to `{}`", pd.name)
                    }
                    SetvarNeed::Size => {
                        format!("add <setvar symbol=\"{name}\" region_size=\"REGION\" /> to `{}`", pd.name)
                    }
                    SetvarNeed::Sectors => format!(
                        "add <setvar symbol=\"{name}\" sectors=\"FIRST-LAST\" /> to `{}`: the sectors of the disk its client may use",
                        pd.name
                    ),
                    SetvarNeed::Number => format!("add <setvar symbol=\"{name}\" value=\"N\" /> to `{}`", pd.name),
                },
            )),
        };
        if let Some((loc, message, hint)) = problem {
            errors.push(Diagnostic::new(&sys.file, loc, message, hint));
        }
    }
}

/// Checks every PD's program against its description and writes the ids of
/// its named channels. `programs[i]` is the program of `sys.all_pds()[i]`.
pub fn bind(sys: &SystemDescription, programs: &mut [Program]) -> Result<(), Diagnostics> {
    let mut errors = Vec::new();
    for (pd, program) in sys.all_pds().into_iter().zip(programs.iter_mut()) {
        check_setvars(sys, pd, program, &mut errors);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{write_executable, Segment, PAGE};
    use std::path::Path;

    const DATA: u64 = 0x40_1000;

    /// A program declaring `names` as `channel!` does: a `u64` placeholder
    /// each, in initialised data.
    fn program(names: &[(&str, ChannelUse, bool)]) -> Program {
        let text =
            Segment { vaddr: 0x40_0000, mem_size: PAGE, data: vec![0xc3; 4096], writable: false, executable: true };
        let mut data = Vec::new();
        for (_, usage, optional) in names {
            data.extend_from_slice(&usage.placeholder(*optional).to_le_bytes());
        }
        data.resize(4096, 0);
        let data = Segment { vaddr: DATA, mem_size: PAGE, data, writable: true, executable: false };
        let mut p = Program::parse(Path::new("client"), &write_executable(0x40_0000, &[text, data])).expect("an ELF");
        for (i, (name, _, _)) in names.iter().enumerate() {
            p.add_symbol(&format!("{SYMBOL_PREFIX}{name}"), DATA + 8 * i as u64, 8);
        }
        p
    }

    /// A timer serving a client, with the client's end and the irq as given.
    fn system(client_end: &str, timer_end: &str, irq: &str) -> SystemDescription {
        let text = format!(
            r#"<system>
    <protection_domain name="timer" priority="200" pp="true">
        <program_image path="timer" />
        <irq id="24" pin="2" {irq} />
    </protection_domain>
    <protection_domain name="client" priority="100">
        <program_image path="client" />
    </protection_domain>
    <channel>
        <end pd="client" {client_end} />
        <end pd="timer" {timer_end} />
    </channel>
</system>"#
        );
        tools_sdf::parse_str(Path::new("t.system"), &text).expect("a valid description")
    }

    fn bind_both(sys: &SystemDescription, client: Program) -> Result<Vec<Program>, String> {
        let timer = program(&[("pit", ChannelUse::Irq, false)]);
        let mut programs = vec![timer, client];
        bind(sys, &mut programs).map(|()| programs).map_err(|e| e.to_string())
    }

    /// The diagnostics of a binding that must fail.
    fn refused(sys: &SystemDescription, client: Program) -> String {
        match bind_both(sys, client) {
            Ok(_) => panic!("bound, but must be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn bound_names_get_the_ids_of_the_description_whatever_they_are() {
        for (client_id, irq_id) in [(0, 24), (9, 25), (3, 7)] {
            let mut sys = system(&format!(r#"id="{client_id}" setvar_id="timer""#), r#"id="1""#, r#"setvar_id="pit""#);
            // The same system with the irq renumbered.
            sys.protection_domains[0].irqs[0].id = irq_id;
            let client = program(&[("timer", ChannelUse::Call, false)]);
            let programs = bind_both(&sys, client).expect("consistent");
            assert_eq!(programs[1].read_u64("__microkit_id_timer"), Some(client_id));
            assert_eq!(programs[0].read_u64("__microkit_id_pit"), Some(u64::from(irq_id)));
        }
    }

    #[test]
    fn a_name_the_description_does_not_give_fails_at_the_pd_unless_optional() {
        let sys = system(r#"id="0""#, r#"id="0""#, r#"setvar_id="pit""#);
        let err = refused(&sys, program(&[("timer", ChannelUse::Call, false)]));
        assert!(err.contains("t.system:6:5: error: program `client` of `client` uses the channel `timer`"), "{err}");
        assert!(err.contains(r#"add setvar_id="timer""#), "{err}");

        let programs = bind_both(&sys, program(&[("console", ChannelUse::Notify, true)])).expect("optional");
        let left = programs[1].read_u64("__microkit_id_console").expect("declared");
        assert_eq!(ChannelUse::from_placeholder(left), Some((ChannelUse::Notify, true)), "placeholder left");
    }

    #[test]
    fn a_name_the_program_does_not_declare_fails_at_the_end() {
        let sys = system(r#"id="0" setvar_id="timr""#, r#"id="0""#, r#"setvar_id="pit""#);
        let err = refused(&sys, program(&[("timer", ChannelUse::Call, false)]));
        assert!(
            err.contains("t.system:10:9: error: the <end> of the channel to `timer` (id 0) is named `timr`"),
            "{err}"
        );
        assert!(err.contains("(it names: timer)"), "{err}");
    }

    #[test]
    fn the_use_must_match_the_end() {
        // A call on an end that may not call.
        let sys = system(r#"id="0" pp="false" setvar_id="timer""#, r#"id="0" pp="false""#, r#"setvar_id="pit""#);
        let err = refused(&sys, program(&[("timer", ChannelUse::Call, false)]));
        assert!(err.contains("uses `timer` as a channel it makes protected calls on"), "{err}");
        // Serving a channel whose other end does not call.
        let err = refused(&sys, program(&[("timer", ChannelUse::Serve, false)]));
        assert!(err.contains("whose other end makes protected calls"), "{err}");
        // An interrupt's name on a channel, and a channel's name on an interrupt.
        let sys = system(r#"id="0" setvar_id="timer""#, r#"id="0" setvar_id="pit""#, "");
        let err = refused(&sys, program(&[("timer", ChannelUse::Call, false)]));
        assert!(err.contains("uses `pit` as an interrupt, but `pit` is the <end> of the channel to `client`"), "{err}");
        let sys = system(r#"id="0""#, r#"id="0""#, r#"setvar_id="pit""#);
        let mut programs = vec![program(&[("pit", ChannelUse::Notify, false)]), program(&[])];
        let err = bind(&sys, &mut programs).expect_err("a channel's use on an interrupt").to_string();
        assert!(err.contains("uses `pit` as a channel, but `pit` is the <irq> on pin 2 (id 24)"), "{err}");
    }

    #[test]
    fn one_name_twice_in_a_pd_is_refused() {
        let sys = system(r#"id="0" setvar_id="timer""#, r#"id="0" setvar_id="pit""#, r#"setvar_id="pit""#);
        let err = refused(&sys, program(&[("timer", ChannelUse::Call, false)]));
        assert!(err.contains("`timer` names two channels `pit`"), "{err}");
    }

    /// A program that needs `name` as `need`.
    fn needing(name: &str, need: SetvarNeed) -> Program {
        let mut p = program(&[]);
        p.patch_or_add(name, DATA, need.placeholder());
        p
    }

    fn pd_with(body: &str) -> SystemDescription {
        let text = format!(
            r#"<system>
    <memory_region name="shared" size="0x1000" />
    <protection_domain name="client" priority="100">
        <program_image path="client" />
        {body}
    </protection_domain>
</system>"#
        );
        tools_sdf::parse_str(Path::new("t.system"), &text).expect("a valid description")
    }

    fn setvar_errors(sys: &SystemDescription, program: Program) -> String {
        let mut errors = Vec::new();
        check_setvars(sys, sys.all_pds()[0], &program, &mut errors);
        Diagnostics(errors).to_string()
    }

    #[test]
    fn required_variables_must_be_set_as_the_program_needs() {
        let rw = r#"<map mr="shared" vaddr="0x4000000" perms="rw" setvar_vaddr="v" />"#;
        let r = r#"<map mr="shared" vaddr="0x4000000" perms="r" setvar_vaddr="v" />"#;
        let paddr = r#"<setvar symbol="v" region_paddr="shared" />"#;
        let size = r#"<setvar symbol="v" region_size="shared" />"#;
        let number = r#"<setvar symbol="v" value="4096" />"#;
        for (body, need, error) in [
            (rw, SetvarNeed::Write, None),
            (rw, SetvarNeed::Read, None),
            (r, SetvarNeed::Read, None),
            (r, SetvarNeed::Write, Some("t.system:5:9: error: `v` is a read-only mapping")),
            (paddr, SetvarNeed::Paddr, None),
            (size, SetvarNeed::Size, None),
            (number, SetvarNeed::Number, None),
            (size, SetvarNeed::Number, Some("needs `v` (a number), which the description sets to a size")),
            (number, SetvarNeed::Size, Some("needs `v` (a region's size), which the description sets to a number")),
            ("", SetvarNeed::Number, Some("add <setvar symbol=\"v\" value=\"N\" /> to `client`")),
            (paddr, SetvarNeed::Size, Some("needs `v` (a region's size), which the description sets to a physical address")),
            (size, SetvarNeed::Read, Some("needs `v` (the address of a mapping it reads), which the description sets to a size")),
            ("", SetvarNeed::Paddr, Some("t.system:3:5: error: program `client` of `client` needs `v` (a region's physical address), which the description does not set")),
        ] {
            let found = setvar_errors(&pd_with(body), needing("v", need));
            match error {
                None => assert!(found.is_empty(), "{body} / {need:?}: {found}"),
                Some(e) => assert!(found.contains(e), "{body} / {need:?}: {found}"),
            }
        }
        // An optional variable (`setvar!(v)`, placeholder u64::MAX) may be left unset.
        let mut optional = program(&[]);
        optional.patch_or_add("v", DATA, u64::MAX);
        assert_eq!(setvar_errors(&pd_with(""), optional), "");
    }
}
