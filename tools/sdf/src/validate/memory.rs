//! Memory regions, the mappings of them into PDs, and the symbols patched
//! with their addresses.

use std::collections::HashMap;

use super::{hex_range, Validator};
use crate::diagnostic::Loc;
use crate::limits::USER_TOP;
use crate::model::{Map, MemoryRegion, Origin, ProtectionDomain, SetVarValue};
use crate::suggest;
use net_config::{ClientRegion, ARP_TABLE_VADDR, MUX_CLIENT_BASE, MUX_CLIENT_STRIDE};

impl<'p> Validator<'p, '_, '_> {
    /// Looks up the region a `<map>` or `<setvar>` at `loc` refers to,
    /// reporting it if there is no such region.
    pub(super) fn region_reference(&mut self, name: &str, loc: Loc, what: &str) -> Option<&'p MemoryRegion> {
        let system = self.system();
        if let Some(region) = system.region(name) {
            return Some(region);
        }
        if !self.parsed.dropped_regions.contains(name) {
            let names = system.memory_regions.iter().map(|mr| mr.name.as_str());
            let hint = suggest::hint(name, "memory regions", names);
            self.error(loc, format!("{what} names unknown memory region `{name}`"), hint);
        }
        None
    }

    /// Memory regions: unique names; a whole number of pages; a fixed
    /// physical address aligned to the page size, since the region is built
    /// from pages of that size.
    pub(super) fn memory_regions(&mut self) {
        let mut seen: HashMap<&str, &MemoryRegion> = HashMap::new();
        for mr in &self.system().memory_regions {
            if let Some(first) = seen.get(mr.name.as_str()) {
                let message = format!(
                    "duplicate memory region name `{}`{}; it is first used at line {}{}",
                    mr.name,
                    mr.origin.note(),
                    first.loc.line,
                    first.origin.note()
                );
                let mut hint = "memory region names must be unique: rename one of them".to_string();
                if mr.origin != first.origin {
                    hint += "; <network> names each client's regions net_<pd>_<part> and the ARP table net_arp_table, so rename the written one";
                }
                self.error(mr.loc, message, hint);
            } else {
                seen.insert(&mr.name, mr);
            }

            let page = mr.page_size.bytes();
            if mr.size % page != 0 {
                self.error(
                    mr.loc,
                    format!(
                        "memory region `{}`: size {:#x} is not a multiple of its page size {page:#x}",
                        mr.name, mr.size
                    ),
                    format!("regions are made of whole pages: round size up to {:#x}", round_up(mr.size, page)),
                );
            }
            if let Some(phys_addr) = mr.phys_addr {
                if phys_addr % page != 0 {
                    self.error(
                        mr.loc,
                        format!(
                            "memory region `{}`: phys_addr {phys_addr:#x} is not aligned to its page size {page:#x}",
                            mr.name
                        ),
                        format!("use a phys_addr that is a multiple of {page:#x}, or a smaller page_size"),
                    );
                }
                if phys_addr.checked_add(mr.size).is_none() {
                    self.error(
                        mr.loc,
                        format!("memory region `{}` runs past the end of the physical address space", mr.name),
                        "check phys_addr and size",
                    );
                }
            }
        }
    }

    /// Mappings, per PD:
    /// - the region exists;
    /// - `vaddr` is aligned to the region's page size (it is mapped with
    ///   pages of that size);
    /// - the page at address 0 stays unmapped, so null pointers fault;
    /// - the mapping ends at or below [`USER_TOP`], the end of the user half
    ///   of the x86-64 address space;
    /// - mappings do not overlap: one virtual address maps one frame.
    pub(super) fn maps(&mut self) {
        for pd in self.system().all_pds() {
            // Mappings of this PD checked so far, with their address ranges.
            let mut placed: Vec<(&Map, u64, u64)> = Vec::new();
            for map in &pd.maps {
                let what = format!("<map> in protection domain `{}`", pd.name);
                let Some(region) = self.region_reference(&map.mr, map.loc, &what) else {
                    continue;
                };
                let page = region.page_size.bytes();
                let subject = format!("map of `{}` in `{}`{}", map.mr, pd.name, map.origin.note());
                if map.vaddr % page != 0 {
                    self.error(
                        map.loc,
                        format!("{subject}: vaddr {:#x} is not aligned to the region's page size {page:#x}", map.vaddr),
                        format!(
                            "use a vaddr that is a multiple of {page:#x}, e.g. {:#x}",
                            round_up(map.vaddr, page).max(page)
                        ),
                    );
                    continue;
                }
                if map.vaddr == 0 {
                    self.error(
                        map.loc,
                        format!("{subject}: maps the page at address 0"),
                        format!(
                            "the page at address 0 stays unmapped so that null pointer accesses fault; use a vaddr of at least {page:#x}"
                        ),
                    );
                    continue;
                }
                let end = match map.vaddr.checked_add(region.size) {
                    Some(end) if end <= USER_TOP => end,
                    _ => {
                        self.error(
                            map.loc,
                            format!(
                                "{subject}: {:#x} bytes at vaddr {:#x} go past the end of user address space ({USER_TOP:#x})",
                                region.size, map.vaddr
                            ),
                            format!("use a vaddr of at most {:#x}", USER_TOP.saturating_sub(region.size)),
                        );
                        continue;
                    }
                };
                if let Some((first, start, first_end)) =
                    placed.iter().find(|&&(_, start, first_end)| map.vaddr < first_end && start < end)
                {
                    let mut hint =
                        format!("move one of them: the first free address after `{}` is {first_end:#x}", first.mr);
                    if map.origin != Origin::Written || first.origin != Origin::Written {
                        hint += &format!(
                            "; <network> maps each client's regions at {:#x}..{:#x} in the client, the ARP table at {ARP_TABLE_VADDR:#x}, \
                             and client n's regions from {MUX_CLIENT_BASE:#x} + n * {MUX_CLIENT_STRIDE:#x} in the demultiplexer: move the written map",
                            ClientRegion::RxData.client_vaddr(),
                            ClientRegion::TxActive.client_vaddr() + ClientRegion::TxActive.size(),
                        );
                    }
                    self.error(
                        map.loc,
                        format!(
                            "{subject} at {} overlaps the map of `{}`{} at {} (line {})",
                            hex_range(map.vaddr, end),
                            first.mr,
                            first.origin.note(),
                            hex_range(*start, *first_end),
                            first.loc.line
                        ),
                        hint,
                    );
                }
                placed.push((map, map.vaddr, end));
            }
        }
    }

    /// A `<setvar>`'s region must exist: its physical address is what the
    /// symbol is set to. (A window of sectors and a number name no region.)
    pub(super) fn setvars(&mut self) {
        for pd in self.system().all_pds() {
            for setvar in &pd.setvars {
                if matches!(setvar.value, SetVarValue::Sectors { .. } | SetVarValue::Number(_)) {
                    continue;
                }
                let what = format!("<setvar symbol=\"{}\"> in protection domain `{}`", setvar.symbol, pd.name);
                self.region_reference(&setvar.region, setvar.loc, &what);
            }
        }
    }

    /// Each symbol of a PD's image is patched at most once, whether by a
    /// `<setvar>`, a `<map setvar_vaddr>` or a `<map setvar_size>`: two values for one variable
    /// would silently overwrite each other.
    pub(super) fn symbols(&mut self) {
        for pd in self.system().all_pds() {
            let mut uses = symbol_uses(pd);
            uses.sort_by_key(|&(_, loc, _)| loc);
            let mut seen: HashMap<&str, (Loc, &str)> = HashMap::new();
            for (symbol, loc, how) in uses {
                if let Some(&(first, first_how)) = seen.get(symbol) {
                    self.error(
                        loc,
                        format!(
                            "symbol `{symbol}` of protection domain `{}` is already set by the {first_how} at line {}",
                            pd.name, first.line
                        ),
                        "a variable can be patched with only one value: rename one of the symbols",
                    );
                } else {
                    seen.insert(symbol, (loc, how));
                }
            }
        }
    }
}

/// Every symbol `pd` patches, where, and by which kind of element.
fn symbol_uses(pd: &ProtectionDomain) -> Vec<(&str, Loc, &'static str)> {
    let by_maps = pd.maps.iter().filter_map(|m| Some((m.setvar_vaddr.as_deref()?, m.loc, "<map setvar_vaddr>")));
    let by_map_sizes = pd.maps.iter().filter_map(|m| Some((m.setvar_size.as_deref()?, m.loc, "<map setvar_size>")));
    let by_setvars = pd.setvars.iter().map(|s| (s.symbol.as_str(), s.loc, "<setvar>"));
    by_maps.chain(by_map_sizes).chain(by_setvars).collect()
}

/// `value` rounded up to a multiple of `align` (saturating at the top).
fn round_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align).saturating_mul(align)
}
