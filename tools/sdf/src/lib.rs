//! Parser and validator for `microkit.system` files.
//!
//! The format is the seL4 Microkit System Description Format — `<system>`
//! holding `<memory_region>`, `<protection_domain>` and `<channel>` elements
//! — with x86 additions: IOAPIC interrupts (`<irq pin=".." ioapic=".."
//! vector="..">`), I/O port ranges (`<ioport addr=".." size="..">`) and PCI
//! devices (`<pci_device>`), and the network node (`<network>`, specified
//! in the `net-config` crate), which is expanded into ordinary regions,
//! maps and channels ([`Origin::Network`]).
//!
//! [`parse_file`] and [`parse_str`] either return a [`SystemDescription`]
//! that satisfies every rule, or [`Diagnostics`] listing every problem found,
//! each with file, line and column, a message and a hint:
//!
//! ```text
//! microkit.system:12:5: error: channel <end> names unknown protection domain `pnog`
//!   hint: did you mean `pong`? protection domains: `ping`, `pong`
//! ```
//!
//! Checking happens in two stages. The parser (`parse.rs`) reads the XML
//! and checks each attribute on its own: known elements and attributes,
//! required attributes present, numbers, booleans and keywords well-formed
//! and in range. Validation (`validate/`) then checks the rules that relate
//! several values, as Microkit does: unique names, resolvable references,
//! aligned and non-overlapping mappings, per-PD channel/irq id space,
//! protected calls only to strictly higher priorities, system-wide
//! uniqueness of IOAPIC lines, vectors and I/O ports. The network's own
//! rules (PD references, grants, overlapping claims) are checked first,
//! then it is expanded, so that the generated items go through the rules
//! above like written ones.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

mod diagnostic;
pub mod limits;
mod model;
mod network;
mod parse;
mod suggest;
mod validate;
mod value;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics, Loc};
pub use model::{
    Channel, ChannelEnd, DmaAccess, IoPort, Irq, Map, MemoryRegion, Network, NetworkClaim, NetworkClient,
    NetworkFilter, OnFault, Origin, PageSize, PciBar, PciDevice, Perms, ProtectionDomain, SetVar, SetVarValue,
    SystemDescription,
};
pub use network::client_region_name;

/// Reads and checks the system description at `path`.
///
/// # Errors
///
/// Every problem found: the file cannot be read, is not well-formed XML, or
/// breaks a rule of the format.
pub fn parse_file(path: &Path) -> Result<SystemDescription, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(path, &text),
        Err(error) => Err(Diagnostics(vec![Diagnostic::new(
            path,
            Loc::NONE,
            format!("cannot read the system description: {error}"),
            "",
        )])),
    }
}

/// Checks the system description `text`. `file` is only used to name it in
/// diagnostics and as the base for relative `<program_image path>`s.
///
/// # Errors
///
/// Every problem found, in file order; see the crate documentation.
pub fn parse_str(file: &Path, text: &str) -> Result<SystemDescription, Diagnostics> {
    let mut sink = diagnostic::Sink::new(file);
    if let Some(mut parsed) = parse::parse(file, text, &mut sink) {
        validate::validate(&mut parsed, &mut sink);
        if let Some(diagnostics) = sink.finish() {
            return Err(diagnostics);
        }
        return Ok(parsed.system);
    }
    // No tree: the parser has reported why.
    Err(sink.finish().unwrap_or_default())
}
