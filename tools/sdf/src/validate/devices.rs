//! x86 devices: IOAPIC interrupts and I/O port ranges, which are claimed
//! system-wide.

use std::collections::HashMap;

use super::{free_id_hint, Validator};
use crate::diagnostic::Loc;
use crate::limits::{IOPORT_SPACE, MAX_IOPORT_ID, MAX_IRQ_VECTOR};
use crate::model::{IoPort, Irq};

impl Validator<'_, '_, '_> {
    /// IOAPIC interrupts, system-wide:
    /// - an (ioapic, pin) line is delivered to one PD only;
    /// - each has its own CPU vector, since the kernel identifies the
    ///   interrupt by vector.
    pub(super) fn irqs(&mut self) {
        let mut irqs: Vec<(&str, &Irq)> = self
            .system()
            .all_pds()
            .into_iter()
            .flat_map(|pd| pd.irqs.iter().map(move |irq| (pd.name.as_str(), irq)))
            .collect();
        irqs.sort_by_key(|(_, irq)| irq.loc);
        let vectors: Vec<u32> = irqs.iter().map(|(_, irq)| irq.vector).collect();

        let mut lines: HashMap<(u32, u32), (&str, Loc)> = HashMap::new();
        let mut by_vector: HashMap<u32, (&str, &Irq)> = HashMap::new();
        for &(pd, irq) in &irqs {
            let line = (irq.ioapic, irq.pin);
            if let Some(&(first_pd, first)) = lines.get(&line) {
                self.error(
                    irq.loc,
                    format!(
                        "IOAPIC {} pin {} of `{pd}` is already claimed by `{first_pd}` at line {}",
                        irq.ioapic, irq.pin, first.line
                    ),
                    "an interrupt line is delivered to a single protection domain",
                );
            } else {
                lines.insert(line, (pd, irq.loc));
            }

            if let Some(&(first_pd, first)) = by_vector.get(&irq.vector) {
                let free = (0..=MAX_IRQ_VECTOR)
                    .find(|v| !vectors.contains(v))
                    .map(|v| format!(", e.g. vector=\"{v}\""))
                    .unwrap_or_default();
                self.error(
                    irq.loc,
                    format!(
                        "irq vector {} of `{pd}` (IOAPIC {} pin {}) is already used by `{first_pd}`'s irq (IOAPIC {} pin {}) at line {}",
                        irq.vector, irq.ioapic, irq.pin, first.ioapic, first.pin, first.loc.line
                    ),
                    format!("each interrupt needs its own vector, which defaults to the pin number: set a free one{free}"),
                );
            } else {
                by_vector.insert(irq.vector, (pd, irq));
            }
        }
    }

    /// I/O port ranges:
    /// - fit in the 64 Ki port space;
    /// - ids are unique per PD (the id selects the PD's port capability);
    /// - ranges do not overlap anywhere in the system: a device's ports
    ///   belong to one driver.
    pub(super) fn ioports(&mut self) {
        for pd in self.system().all_pds() {
            let mut ids: HashMap<u8, Loc> = HashMap::new();
            let used: Vec<u8> = pd.ioports.iter().map(|p| p.id).collect();
            for port in &pd.ioports {
                if let Some(first) = ids.get(&port.id) {
                    self.error(
                        port.loc,
                        format!(
                            "ioport id {} of protection domain `{}` is already used at line {}",
                            port.id, pd.name, first.line
                        ),
                        format!(
                            "I/O port ids 0..={MAX_IOPORT_ID} are per protection domain: pick an unused one{}",
                            free_id_hint(&used, MAX_IOPORT_ID)
                        ),
                    );
                } else {
                    ids.insert(port.id, port.loc);
                }
                if port.end() > IOPORT_SPACE {
                    self.error(
                        port.loc,
                        format!(
                            "I/O ports {} of `{}` run past the last port, 0xffff",
                            port_range(port),
                            pd.name
                        ),
                        format!(
                            "with addr {:#x}, size can be at most {:#x}",
                            port.addr,
                            IOPORT_SPACE - u32::from(port.addr)
                        ),
                    );
                }
            }
        }

        let mut ports: Vec<(&str, &IoPort)> = self
            .system()
            .all_pds()
            .into_iter()
            .flat_map(|pd| pd.ioports.iter().map(move |port| (pd.name.as_str(), port)))
            .collect();
        ports.sort_by_key(|(_, port)| port.loc);
        for (i, &(pd, port)) in ports.iter().enumerate() {
            if let Some(&(first_pd, first)) =
                ports[..i].iter().find(|(_, first)| overlaps(first, port))
            {
                self.error(
                    port.loc,
                    format!(
                        "I/O ports {} of `{pd}` (id {}) overlap ports {} of `{first_pd}` (id {}) at line {}",
                        port_range(port),
                        port.id,
                        port_range(first),
                        first.id,
                        first.loc.line
                    ),
                    "an I/O port belongs to a single protection domain and range: make the ranges disjoint",
                );
            }
        }
    }
}

fn overlaps(a: &IoPort, b: &IoPort) -> bool {
    u32::from(a.addr) < b.end() && u32::from(b.addr) < a.end()
}

/// `0x3f8..=0x3ff`: the ports of a range, inclusive, as in datasheets.
fn port_range(port: &IoPort) -> String {
    format!("{:#x}..={:#x}", port.addr, port.end() - 1)
}
