//! x86 devices: IOAPIC interrupts and I/O port ranges, which are claimed
//! system-wide.

use std::collections::HashMap;

use super::{free_id_hint, Validator};
use crate::diagnostic::Loc;
use crate::limits::{IOPORT_SPACE, MAX_IOPORT_ID, MAX_IRQ_VECTOR, PCI_CONFIG_PORTS};
use crate::model::{IoPort, Irq, PciDevice};

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
    ///   belong to one driver;
    /// - none reaches the PCI configuration ports ([`PCI_CONFIG_PORTS`]),
    ///   which are the initialiser's: a PD holding them could reprogram
    ///   every device (its BARs, its bus mastering).
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
                let (first, last) = PCI_CONFIG_PORTS;
                if u32::from(port.addr) <= u32::from(last) && u32::from(first) < port.end() {
                    self.error(
                        port.loc,
                        format!(
                            "I/O ports {} of `{}` reach the PCI configuration ports {first:#x}..={last:#x}",
                            port_range(port),
                            pd.name
                        ),
                        "configuration space is the initialiser's: declare the device with <pci_device> and \
                         read its configuration from the snapshot the initialiser maps (config_vaddr)",
                    );
                }
                if port.end() > IOPORT_SPACE {
                    self.error(
                        port.loc,
                        format!("I/O ports {} of `{}` run past the last port, 0xffff", port_range(port), pd.name),
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
            if let Some(&(first_pd, first)) = ports[..i].iter().find(|(_, first)| overlaps(first, port)) {
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

impl Validator<'_, '_, '_> {
    /// PCI devices: each function is driven by one PD only, ids are unique in
    /// a PD, BARs are described once and map whole pages.
    pub(super) fn pci_devices(&mut self) {
        let system = self.system();
        let mut claimed: Vec<(&str, &PciDevice)> = Vec::new();
        for pd in system.all_pds() {
            for (i, dev) in pd.pci_devices.iter().enumerate() {
                if let Some(first) = pd.pci_devices[..i].iter().find(|d| d.id == dev.id) {
                    self.error(
                        dev.loc,
                        format!("PCI device id {} of `{}` is already used at line {}", dev.id, pd.name, first.loc.line),
                        "give each <pci_device> of a protection domain its own id (0..=7)",
                    );
                }
                if let Some((owner, first)) = claimed
                    .iter()
                    .find(|(_, d)| (d.vendor, d.device, d.instance) == (dev.vendor, dev.device, dev.instance))
                {
                    self.error(
                        dev.loc,
                        format!(
                            "PCI device {:04x}:{:04x} instance {} is already given to `{owner}` at line {}",
                            dev.vendor, dev.device, dev.instance, first.loc.line
                        ),
                        "a device is driven by exactly one protection domain; use `instance` to pick another function of the same type",
                    );
                }
                claimed.push((&pd.name, dev));
                for (j, bar) in dev.bars.iter().enumerate() {
                    if dev.bars[..j].iter().any(|b| b.index == bar.index) {
                        self.error(
                            bar.loc,
                            format!("BAR {} of this PCI device is described twice", bar.index),
                            "describe each BAR once",
                        );
                    }
                    if bar.vaddr % 0x1000 != 0 || bar.size % 0x1000 != 0 {
                        self.error(
                            bar.loc,
                            format!(
                                "BAR {} mapping at {:#x} of {:#x} bytes is not page aligned",
                                bar.index, bar.vaddr, bar.size
                            ),
                            "vaddr and size must be multiples of 0x1000",
                        );
                    }
                }
                if dev.config_vaddr.is_some_and(|v| v % 0x1000 != 0) {
                    self.error(dev.loc, "config_vaddr is not page aligned", "use a multiple of 0x1000");
                }
            }
        }
    }
}
