//! From XML text to a [`SystemDescription`], checking everything that can be
//! checked one attribute at a time.
//!
//! This stage reports malformed XML, unknown or misplaced elements, unknown
//! or missing attributes, and attribute values that are invalid on their own
//! (bad numbers, out-of-range ids, empty names, ...). Rules that relate
//! several values — alignment, overlaps, uniqueness, references between
//! elements — are checked afterwards by [`crate::validate`].
//!
//! # Error recovery
//!
//! Parsing continues after an error so that one run reports every mistake.
//! An element with an attribute error (including an unknown attribute, which
//! is likely a misspelt known one) is left out of the model, so validation
//! does not trip over a guessed default value. The names such an element
//! declared are remembered in [`Parsed::dropped_pds`] and
//! [`Parsed::dropped_regions`], so references to them are not reported as
//! unknown a second time. A network `<client>` with any error, its filters
//! included, is left out likewise ([`Parsed::dropped_clients`]), and a
//! `<network>` with an error in its own attributes altogether.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use net_config::{MAX_CLAIMS, MAX_CLIENTS, MAX_GRANT_FILTERS};
use net_filter::{Dotted, FilterKind};
use roxmltree::{Document, Node};

use crate::diagnostic::{Loc, Sink};
use crate::limits::{
    MAX_CHANNEL_ID, MAX_CHILD_ID, MAX_IOAPIC_PIN, MAX_IOPORT_ID, MAX_IRQ_VECTOR, MAX_PCI_ID, MAX_PRIORITY, PD_NAME_MAX,
};
use crate::model::{
    Channel, ChannelEnd, DmaAccess, IoPort, Irq, Map, MemoryRegion, Network, NetworkClaim, NetworkClient,
    NetworkFilter, Origin, PageSize, PciBar, PciDevice, Perms, ProtectionDomain, SetVar, SetVarValue,
    SystemDescription,
};
use crate::suggest;
use crate::value::{self, Invalid};

/// The result of parsing: the model plus what validation needs to know
/// about how it was written.
pub(crate) struct Parsed {
    pub system: SystemDescription,
    /// The `pp` attribute of each end of each channel as written (`None`
    /// when absent), in the order of `system.channels`. Validation resolves
    /// [`ChannelEnd::pp`] from it.
    pub explicit_pp: Vec<[Option<bool>; 2]>,
    /// Names of protection domains left out of the model because of errors.
    pub dropped_pds: HashSet<String>,
    /// Names of memory regions left out of the model because of errors.
    pub dropped_regions: HashSet<String>,
    /// PDs of network `<client>`s left out of the model because of errors.
    pub dropped_clients: HashSet<String>,
}

/// What may appear in one kind of element.
struct Schema {
    tag: &'static str,
    attributes: &'static [&'static str],
    children: &'static [&'static str],
    /// The attribute that best identifies an instance in messages.
    key: Option<&'static str>,
}

const SYSTEM: Schema = Schema {
    tag: "system",
    attributes: &[],
    children: &["memory_region", "protection_domain", "channel", "network"],
    key: None,
};
const MEMORY_REGION: Schema = Schema {
    tag: "memory_region",
    attributes: &["name", "size", "page_size", "phys_addr"],
    children: &[],
    key: Some("name"),
};
const PROTECTION_DOMAIN: Schema = Schema {
    tag: "protection_domain",
    attributes: &["name", "priority", "pp", "passive", "stack_size", "id", "on_fault", "inject_faults"],
    children: &["program_image", "map", "irq", "ioport", "pci_device", "setvar", "protection_domain"],
    key: Some("name"),
};
const PCI_DEVICE: Schema = Schema {
    tag: "pci_device",
    attributes: &["id", "vendor", "device", "instance", "config_vaddr", "setvar_config", "irq", "setvar_irq"],
    children: &["bar"],
    key: Some("id"),
};
const BAR: Schema =
    Schema { tag: "bar", attributes: &["index", "vaddr", "size", "setvar_vaddr"], children: &[], key: Some("index") };
const PROGRAM_IMAGE: Schema = Schema { tag: "program_image", attributes: &["path"], children: &[], key: Some("path") };
const MAP: Schema = Schema {
    tag: "map",
    attributes: &["mr", "vaddr", "perms", "cached", "setvar_vaddr", "setvar_size"],
    children: &[],
    key: Some("mr"),
};
const IRQ: Schema = Schema {
    tag: "irq",
    attributes: &["id", "pin", "ioapic", "trigger", "polarity", "vector", "setvar_id"],
    children: &[],
    key: Some("id"),
};
const IOPORT: Schema = Schema { tag: "ioport", attributes: &["id", "addr", "size"], children: &[], key: Some("id") };
const SETVAR: Schema = Schema {
    tag: "setvar",
    attributes: &["symbol", "region_paddr", "region_size", "sectors", "value", "dma"],
    children: &[],
    key: Some("symbol"),
};
const CHANNEL: Schema = Schema { tag: "channel", attributes: &[], children: &["end"], key: None };
const END: Schema =
    Schema { tag: "end", attributes: &["pd", "id", "pp", "notify", "setvar_id"], children: &[], key: Some("pd") };

const NETWORK: Schema = Schema {
    tag: "network",
    attributes: &["demux", "arpd", "ipv4", "gateway"],
    children: &["client"],
    key: Some("demux"),
};
const CLIENT: Schema = Schema {
    tag: "client",
    attributes: &["pd", "arp", "may_copy", "unclaimed_ipv4", "send_from"],
    children: &["grant", "claim", "watch"],
    key: Some("pd"),
};
const GRANT: Schema = Schema { tag: "grant", attributes: &["filter"], children: &[], key: None };
const CLAIM: Schema = Schema { tag: "claim", attributes: &["filter"], children: &[], key: None };
const WATCH: Schema = Schema { tag: "watch", attributes: &["filter"], children: &[], key: None };

const SCHEMAS: &[&Schema] = &[
    &SYSTEM,
    &MEMORY_REGION,
    &PROTECTION_DOMAIN,
    &PROGRAM_IMAGE,
    &MAP,
    &IRQ,
    &IOPORT,
    &PCI_DEVICE,
    &BAR,
    &SETVAR,
    &CHANNEL,
    &END,
    &NETWORK,
    &CLIENT,
    &GRANT,
    &CLAIM,
    &WATCH,
];

/// Why channel and irq ids stop at 25.
pub(crate) const CHANNEL_ID_WHY: &str =
    "channel and irq ids are 0..=25: seL4 5.0's CNode_Mint carries a 28-bit badge, \
     in which bits 0..=25 are notification channels, bit 26 marks child faults and bit 27 protected calls";
const CHILD_ID_WHY: &str =
    "child ids are 0..=25: the id travels in the low bits of the 28-bit fault badge, next to the child-fault bit 26";
const PRIORITY_WHY: &str = "priorities are 0..=254; 255 is reserved for the monitor";
const PD_NAME_WHY: &str = "protection domain names are at most 63 bytes: the name is stored NUL-terminated in 64 bytes";
const PIN_WHY: &str = "an IOAPIC has 24 pins, 0..=23; use `ioapic` to pick another IOAPIC";
const VECTOR_WHY: &str = "seL4 on x86 offers vectors 0..=107 to user-level IRQs";
const PCI_ID_WHY: &str = "PCI device ids are 0..=7, a space separate from channel ids";
const BAR_WHY: &str = "a PCI function has six BARs, 0..=5";
const IOPORT_ID_WHY: &str = "I/O port ids are 0..=63, a space separate from channel ids";

/// The default PD stack: two pages.
const DEFAULT_STACK_SIZE: u64 = 0x2000;

/// Parses `text`, reporting problems to `sink`. Returns `None` when there is
/// no usable tree: the XML is malformed or the root is not `<system>`.
pub(crate) fn parse(file: &Path, text: &str, sink: &mut Sink<'_>) -> Option<Parsed> {
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(error) => {
            let pos = error.pos();
            let message = error.to_string();
            // roxmltree appends " at line:column"; the location is ours to print.
            let message = message.strip_suffix(&format!(" at {pos}")).unwrap_or(&message);
            sink.error(Loc::new(pos.row, pos.col), format!("malformed XML: {message}"), "");
            return None;
        }
    };
    let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut parser = Parser {
        doc: &doc,
        lines: Lines::new(doc.input_text()),
        sink,
        base_dir,
        dropped_pds: HashSet::new(),
        dropped_regions: HashSet::new(),
        dropped_clients: HashSet::new(),
    };
    let root = doc.root_element();
    if root.tag_name().name() != SYSTEM.tag {
        parser.error_at_node(
            root,
            format!("the root element is <{}>, not <system>", root.tag_name().name()),
            "a system description is a <system> element containing <memory_region>, <protection_domain>, <channel> and <network> elements",
        );
        return None;
    }
    Some(parser.system(file, root))
}

struct Parser<'a, 'input, 's, 'f> {
    doc: &'a Document<'input>,
    /// The document's newlines, for [`Parser::loc`].
    lines: Lines,
    sink: &'s mut Sink<'f>,
    /// Directory of the .system file: program images are relative to it.
    base_dir: PathBuf,
    dropped_pds: HashSet<String>,
    dropped_regions: HashSet<String>,
    dropped_clients: HashSet<String>,
}

/// Line and column of byte offsets in a text, as roxmltree's
/// `Document::text_pos_at` gives them (line: 1 + the newlines before the
/// offset; column: 1 + the characters between the last of them and the
/// offset; an offset past the end is the end), from the newlines' offsets
/// found once. `text_pos_at` scans the text from its start at every call,
/// and every element and attribute asks for its location: that made a
/// description's parse quadratic in its length.
struct Lines {
    /// The byte offset of every `\n` of the text, in order.
    newlines: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        Lines { newlines: text.match_indices('\n').map(|(at, _)| at).collect() }
    }

    /// Where byte `pos` of `text` (the text given to [`Lines::new`]) is.
    fn loc(&self, text: &str, pos: usize) -> Loc {
        let pos = pos.min(text.len());
        let before = self.newlines.partition_point(|&at| at < pos);
        let line_start = before.checked_sub(1).map_or(0, |i| self.newlines[i] + 1);
        let column = text[line_start..pos].chars().count();
        Loc::new(before as u32 + 1, column as u32 + 1)
    }
}

/// An element being read: remembers whether any of its attributes was bad.
struct Element<'a, 'input> {
    node: Node<'a, 'input>,
    schema: &'static Schema,
    broken: bool,
}

impl<'a> Element<'a, '_> {
    /// The raw text of attribute `name`.
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.node.attribute(name)
    }

    /// `<protection_domain name="ping">`, or just the tag when the
    /// identifying attribute is absent: how messages refer to this element.
    fn describe(&self) -> String {
        describe(self.node, self.schema)
    }

    /// Reads the optional attribute `name` with `convert`. Returns `None`
    /// when it is absent or invalid; invalid values are reported and mark the
    /// element broken.
    fn optional<T>(
        &mut self,
        p: &mut Parser<'_, '_, '_, '_>,
        name: &str,
        convert: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let attribute = self.node.attributes().find(|a| a.name() == name)?;
        match convert(attribute.value()) {
            Ok(value) => Some(value),
            Err(Invalid { reason, hint }) => {
                let message = format!("invalid {name}=\"{}\" on {}: {reason}", attribute.value(), self.describe());
                p.error_at(attribute.range().start, message, hint);
                self.broken = true;
                None
            }
        }
    }

    /// Like [`Element::optional`], but a missing attribute is an error too.
    fn required<T>(
        &mut self,
        p: &mut Parser<'_, '_, '_, '_>,
        name: &str,
        convert: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        if self.raw(name).is_none() {
            let tag = self.schema.tag;
            p.error_at_node(
                self.node,
                format!("{} is missing the required attribute `{name}`", self.describe()),
                format!("add {name}=\"...\" to <{tag}>"),
            );
            self.broken = true;
        }
        self.optional(p, name, convert)
    }
}

impl<'a, 'input> Parser<'a, 'input, '_, '_> {
    fn loc(&self, pos: usize) -> Loc {
        self.lines.loc(self.doc.input_text(), pos)
    }

    fn node_loc(&self, node: Node<'_, '_>) -> Loc {
        self.loc(node.range().start)
    }

    /// Where attribute `name` of `node` is; the element's position when it
    /// is absent.
    fn attribute_loc(&self, node: Node<'_, '_>, name: &str) -> Loc {
        match node.attribute_node(name) {
            Some(attribute) => self.loc(attribute.range().start),
            None => self.node_loc(node),
        }
    }

    fn error_at(&mut self, pos: usize, message: impl Into<String>, hint: impl Into<String>) {
        let loc = self.loc(pos);
        self.sink.error(loc, message, hint);
    }

    fn error_at_node(&mut self, node: Node<'_, '_>, message: impl Into<String>, hint: impl Into<String>) {
        let loc = self.node_loc(node);
        self.sink.error(loc, message, hint);
    }

    /// Starts reading `node` as a `schema` element: reports attributes the
    /// schema does not know and, for elements that take no children, any
    /// child elements.
    fn open(&mut self, node: Node<'a, 'input>, schema: &'static Schema) -> Element<'a, 'input> {
        let mut element = Element { node, schema, broken: false };
        for attribute in node.attributes() {
            let name = attribute.name();
            if !schema.attributes.contains(&name) {
                let hint = if schema.attributes.is_empty() {
                    format!("<{}> takes no attributes", schema.tag)
                } else {
                    let kind = format!("attributes of <{}>", schema.tag);
                    suggest::hint(name, &kind, schema.attributes.iter().copied())
                };
                self.error_at(
                    attribute.range().start,
                    format!("unknown attribute `{name}` on {}", element.describe()),
                    hint,
                );
                element.broken = true;
            }
        }
        if schema.children.is_empty() {
            for child in node.children().filter(Node::is_element) {
                self.unexpected(child, schema);
            }
        }
        element
    }

    /// Reports `child`, which `parent` may not contain. An unknown element
    /// may have been meant to declare the name it carries, so that name is
    /// treated as declared-but-dropped to avoid follow-on "unknown name"
    /// errors.
    fn unexpected(&mut self, child: Node<'_, '_>, parent: &'static Schema) {
        let tag = child.tag_name().name();
        let parent_desc = describe(child.parent().unwrap_or(child), parent);
        let homes: Vec<&str> = SCHEMAS.iter().filter(|s| s.children.contains(&tag)).map(|s| s.tag).collect();
        let (message, hint) = if !homes.is_empty() {
            let homes = homes.iter().map(|h| format!("<{h}>")).collect::<Vec<_>>().join(" or ");
            (format!("<{tag}> is not allowed in {parent_desc}"), format!("<{tag}> belongs inside {homes}"))
        } else if parent.children.is_empty() {
            (format!("unknown element <{tag}> in {parent_desc}"), format!("<{}> takes no child elements", parent.tag))
        } else {
            let kind = format!("elements allowed in <{}>", parent.tag);
            (
                format!("unknown element <{tag}> in {parent_desc}"),
                suggest::hint(tag, &kind, parent.children.iter().copied()),
            )
        };
        self.error_at_node(child, message, hint);
        if let Some(name) = child.attribute("name") {
            self.dropped_pds.insert(name.to_string());
            self.dropped_regions.insert(name.to_string());
        }
    }

    fn system(mut self, file: &Path, root: Node<'a, 'input>) -> Parsed {
        self.open(root, &SYSTEM);
        let mut system = SystemDescription {
            file: file.to_path_buf(),
            protection_domains: Vec::new(),
            memory_regions: Vec::new(),
            channels: Vec::new(),
            network: None,
        };
        let mut explicit_pp = Vec::new();
        let mut first_network: Option<Loc> = None;
        for node in root.children().filter(Node::is_element) {
            match node.tag_name().name() {
                "memory_region" => system.memory_regions.extend(self.memory_region(node)),
                "protection_domain" => system.protection_domains.extend(self.protection_domain(node, false)),
                "channel" => {
                    if let Some((channel, pp)) = self.channel(node) {
                        system.channels.push(channel);
                        explicit_pp.push(pp);
                    }
                }
                "network" => {
                    // Read even a second one, to report its own mistakes too.
                    let network = self.network(node);
                    match first_network {
                        Some(first) => self.error_at_node(
                            node,
                            format!("a second <network>; the first is at line {}", first.line),
                            "a system has one network node (one demultiplexer on one driver): merge the <client>s into one <network>",
                        ),
                        None => {
                            first_network = Some(self.node_loc(node));
                            system.network = network;
                        }
                    }
                }
                _ => self.unexpected(node, &SYSTEM),
            }
        }
        Parsed {
            system,
            explicit_pp,
            dropped_pds: self.dropped_pds,
            dropped_regions: self.dropped_regions,
            dropped_clients: self.dropped_clients,
        }
    }

    fn memory_region(&mut self, node: Node<'a, 'input>) -> Option<MemoryRegion> {
        let mut el = self.open(node, &MEMORY_REGION);
        let name = el.required(self, "name", value::non_empty);
        let size = el.required(self, "size", value::nonzero::<u64>("a memory region holds at least one page"));
        let page_size = el.optional(self, "page_size", value::page_size).unwrap_or(PageSize::Small);
        let phys_addr = el.optional(self, "phys_addr", value::number::<u64>);
        let (Some(name), Some(size), false) = (name, size, el.broken) else {
            self.dropped_regions.extend(el.raw("name").map(str::to_string));
            return None;
        };
        Some(MemoryRegion { name, size, page_size, phys_addr, loc: self.node_loc(node), origin: Origin::Written })
    }

    /// A `<protection_domain>`; `is_child` when nested in another, which
    /// makes `id` required (and allowed).
    fn protection_domain(&mut self, node: Node<'a, 'input>, is_child: bool) -> Option<ProtectionDomain> {
        let mut el = self.open(node, &PROTECTION_DOMAIN);
        let name = el.required(self, "name", value::name(PD_NAME_MAX, PD_NAME_WHY));
        let priority = el.optional(self, "priority", value::number_in(0..=MAX_PRIORITY, PRIORITY_WHY));
        let pp = el.optional(self, "pp", value::boolean);
        let passive = el.optional(self, "passive", value::boolean);
        let stack_size = el.optional(self, "stack_size", value::stack_size);
        let on_fault = el.optional(self, "on_fault", value::on_fault);
        let inject_faults = el.optional(self, "inject_faults", value::boolean);
        if is_child {
            if let Some(attr) = node.attribute_node("on_fault") {
                self.error_at(
                    attr.range().start,
                    format!("{} is a child, so its faults go to its parent, not to the monitor", el.describe()),
                    "remove on_fault: a parent decides about its children's faults (the runtime's Handler::fault)",
                );
                el.broken = true;
            }
        }
        let child_id = if is_child {
            el.required(self, "id", value::number_in(0..=MAX_CHILD_ID, CHILD_ID_WHY))
        } else {
            if let Some(id) = node.attribute_node("id") {
                self.error_at(
                    id.range().start,
                    format!("{} is not a child, so it cannot have an `id`", el.describe()),
                    "only a <protection_domain> nested inside another has an id (in its parent's child id space)",
                );
                el.broken = true;
            }
            None
        };

        let mut pd = ProtectionDomain {
            name: name.unwrap_or_default(),
            priority: priority.unwrap_or(0),
            pp: pp.unwrap_or(false),
            passive: passive.unwrap_or(false),
            stack_size: stack_size.unwrap_or(DEFAULT_STACK_SIZE),
            on_fault: on_fault.unwrap_or_default(),
            inject_faults: inject_faults.unwrap_or(false),
            program_image: PathBuf::new(),
            program_image_loc: Loc::NONE,
            maps: Vec::new(),
            irqs: Vec::new(),
            ioports: Vec::new(),
            pci_devices: Vec::new(),
            setvars: Vec::new(),
            children: Vec::new(),
            child_id,
            loc: self.node_loc(node),
        };
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "program_image" => self.program_image(child, &mut pd),
                "map" => pd.maps.extend(self.map(child)),
                "irq" => pd.irqs.extend(self.irq(child)),
                "ioport" => pd.ioports.extend(self.ioport(child)),
                "pci_device" => pd.pci_devices.extend(self.pci_device(child)),
                "setvar" => pd.setvars.extend(self.setvar(child)),
                "protection_domain" => pd.children.extend(self.protection_domain(child, true)),
                _ => self.unexpected(child, &PROTECTION_DOMAIN),
            }
        }
        // Exactly one program image: the loader needs something to run.
        if pd.program_image_loc == Loc::NONE {
            self.sink.error(
                pd.loc,
                format!("{} has no <program_image>", el.describe()),
                "add <program_image path=\"program.elf\" /> inside it, naming the ELF file this PD runs",
            );
        }
        if el.broken {
            self.dropped_pds.extend(el.raw("name").map(str::to_string));
            self.drop_pd(&pd);
            return None;
        }
        Some(pd)
    }

    /// Remembers the names of `pd` and its descendants, which are being left
    /// out of the model.
    fn drop_pd(&mut self, pd: &ProtectionDomain) {
        if !pd.name.is_empty() {
            self.dropped_pds.insert(pd.name.clone());
        }
        for child in &pd.children {
            self.drop_pd(child);
        }
    }

    /// Sets `pd`'s program image from a `<program_image>`, or reports a
    /// second one: a PD runs exactly one program.
    fn program_image(&mut self, node: Node<'a, 'input>, pd: &mut ProtectionDomain) {
        let mut el = self.open(node, &PROGRAM_IMAGE);
        let path = el.required(self, "path", value::non_empty);
        let loc = self.node_loc(node);
        if pd.program_image_loc != Loc::NONE {
            let first = pd.program_image_loc.line;
            self.sink.error(
                loc,
                format!("protection domain `{}` has a second <program_image>; the first is at line {first}", pd.name),
                "a protection domain runs exactly one program: remove one of them",
            );
            return;
        }
        pd.program_image = path.map(|path| self.base_dir.join(path)).unwrap_or_default();
        pd.program_image_loc = loc;
    }

    fn map(&mut self, node: Node<'a, 'input>) -> Option<Map> {
        let mut el = self.open(node, &MAP);
        let mr = el.required(self, "mr", value::non_empty);
        let vaddr = el.required(self, "vaddr", value::number::<u64>);
        let perms = el.optional(self, "perms", value::perms).unwrap_or(Perms::READ_WRITE);
        let cached = el.optional(self, "cached", value::boolean).unwrap_or(true);
        let setvar_vaddr = el.optional(self, "setvar_vaddr", value::non_empty);
        let setvar_size = el.optional(self, "setvar_size", value::non_empty);
        let (Some(mr), Some(vaddr), false) = (mr, vaddr, el.broken) else {
            return None;
        };
        Some(Map {
            mr,
            vaddr,
            perms,
            cached,
            setvar_vaddr,
            setvar_size,
            loc: self.node_loc(node),
            origin: Origin::Written,
        })
    }

    fn irq(&mut self, node: Node<'a, 'input>) -> Option<Irq> {
        const TRIGGERS: &[(&str, bool)] = &[("edge", false), ("level", true)];
        const POLARITIES: &[(&str, bool)] = &[("high", false), ("low", true)];
        let mut el = self.open(node, &IRQ);
        let id = el.required(self, "id", value::number_in(0..=MAX_CHANNEL_ID, CHANNEL_ID_WHY));
        let pin = el.required(self, "pin", value::number_in(0..=MAX_IOAPIC_PIN, PIN_WHY));
        let ioapic = el.optional(self, "ioapic", value::number::<u32>).unwrap_or(0);
        let level_triggered = el.optional(self, "trigger", value::keyword(TRIGGERS)).unwrap_or(false);
        let active_low = el.optional(self, "polarity", value::keyword(POLARITIES)).unwrap_or(false);
        let vector = el.optional(self, "vector", value::number_in(0..=MAX_IRQ_VECTOR, VECTOR_WHY));
        let setvar_id = el.optional(self, "setvar_id", value::non_empty);
        let (Some(id), Some(pin), false) = (id, pin, el.broken) else {
            return None;
        };
        let vector = vector.unwrap_or(pin);
        Some(Irq { id, ioapic, pin, level_triggered, active_low, vector, setvar_id, loc: self.node_loc(node) })
    }

    fn ioport(&mut self, node: Node<'a, 'input>) -> Option<IoPort> {
        let mut el = self.open(node, &IOPORT);
        let id = el.required(self, "id", value::number_in(0..=MAX_IOPORT_ID, IOPORT_ID_WHY));
        let addr = el.required(self, "addr", value::number::<u16>);
        let size = el.required(self, "size", value::nonzero::<u16>("an I/O port range holds at least one port"));
        let (Some(id), Some(addr), Some(size), false) = (id, addr, size, el.broken) else {
            return None;
        };
        Some(IoPort { id, addr, size, loc: self.node_loc(node) })
    }

    fn pci_device(&mut self, node: Node<'a, 'input>) -> Option<PciDevice> {
        let mut el = self.open(node, &PCI_DEVICE);
        let id = el.required(self, "id", value::number_in(0..=MAX_PCI_ID, PCI_ID_WHY));
        let vendor = el.required(self, "vendor", value::number::<u16>);
        let device = el.required(self, "device", value::number::<u16>);
        let instance = el.optional(self, "instance", value::number::<u8>).unwrap_or(0);
        let config_vaddr = el.optional(self, "config_vaddr", value::number::<u64>);
        let setvar_config = el.optional(self, "setvar_config", value::non_empty);
        let irq = el.optional(self, "irq", value::number_in(0..=MAX_CHANNEL_ID, CHANNEL_ID_WHY));
        let setvar_irq = el.optional(self, "setvar_irq", value::non_empty);
        if setvar_irq.is_some() && irq.is_none() {
            self.sink.error(
                self.node_loc(node),
                format!("{} has `setvar_irq` but no `irq`", el.describe()),
                "add irq=\"N\" (a free channel id) so the device's interrupt is delivered",
            );
            el.broken = true;
        }
        if setvar_config.is_some() && config_vaddr.is_none() {
            self.sink.error(
                self.node_loc(node),
                format!("{} has `setvar_config` but no `config_vaddr`", el.describe()),
                "add config_vaddr=\"0x...\" (a free page-aligned address) so the configuration space is mapped",
            );
            el.broken = true;
        }
        let mut bars = Vec::new();
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "bar" => bars.extend(self.bar(child)),
                _ => self.unexpected(child, &PCI_DEVICE),
            }
        }
        let (Some(id), Some(vendor), Some(device), false) = (id, vendor, device, el.broken) else {
            return None;
        };
        Some(PciDevice {
            id,
            vendor,
            device,
            instance,
            config_vaddr,
            setvar_config,
            setvar_irq,
            irq,
            bars,
            loc: self.node_loc(node),
        })
    }

    fn bar(&mut self, node: Node<'a, 'input>) -> Option<PciBar> {
        let mut el = self.open(node, &BAR);
        let index = el.required(self, "index", value::number_in(0..=5, BAR_WHY));
        let vaddr = el.required(self, "vaddr", value::number::<u64>);
        let size = el.required(self, "size", value::nonzero::<u64>("a BAR mapping holds at least one page"));
        let setvar_vaddr = el.optional(self, "setvar_vaddr", value::non_empty);
        let (Some(index), Some(vaddr), Some(size), false) = (index, vaddr, size, el.broken) else {
            return None;
        };
        Some(PciBar { index, vaddr, size, setvar_vaddr, loc: self.node_loc(node) })
    }

    fn setvar(&mut self, node: Node<'a, 'input>) -> Option<SetVar> {
        let mut el = self.open(node, &SETVAR);
        let symbol = el.required(self, "symbol", value::non_empty);
        let paddr = el.optional(self, "region_paddr", value::non_empty);
        let size = el.optional(self, "region_size", value::non_empty);
        let sectors = el.optional(self, "sectors", value::sectors);
        let number = el.optional(self, "value", value::number::<u64>);
        let dma = el.optional(
            self,
            "dma",
            value::keyword(&[("r", DmaAccess::Read), ("w", DmaAccess::Write), ("rw", DmaAccess::ReadWrite)]),
        );
        let given = ["region_paddr", "region_size", "sectors", "value"].iter().filter(|a| el.raw(a).is_some()).count();
        let (region, value) = match (paddr, size, sectors, number) {
            (Some(region), None, None, None) => (region, SetVarValue::Paddr),
            (None, Some(region), None, None) => (region, SetVarValue::Size),
            (None, None, Some((first, last)), None) => (String::new(), SetVarValue::Sectors { first, last }),
            (None, None, None, Some(n)) => (String::new(), SetVarValue::Number(n)),
            _ => {
                if !el.broken || given > 1 {
                    let message = if given > 1 {
                        "<setvar> has more than one of region_paddr, region_size, sectors and value"
                    } else {
                        "<setvar> needs region_paddr, region_size, sectors or value"
                    };
                    self.error_at_node(
                        node,
                        message,
                        "region_paddr=\"mr\" writes the region's physical address, region_size=\"mr\" its size in bytes, sectors=\"FIRST-LAST\" a block client's window of the disk, value=\"N\" a number: one per <setvar>",
                    );
                }
                return None;
            }
        };
        if dma.is_some() && value != SetVarValue::Paddr {
            self.error_at_node(
                node,
                "dma= applies only to a <setvar region_paddr>",
                "dma=\"r\", \"w\" or \"rw\" says what the PD's device may do by DMA with the region whose physical address the setvar writes",
            );
            return None;
        }
        let (Some(symbol), false) = (symbol, el.broken) else {
            return None;
        };
        let dma = dma.unwrap_or(DmaAccess::ReadWrite);
        Some(SetVar { symbol, region, value, dma, loc: self.node_loc(node) })
    }

    /// A `<channel>` and the `pp` attributes of its ends as written.
    fn channel(&mut self, node: Node<'a, 'input>) -> Option<(Channel, [Option<bool>; 2])> {
        let el = self.open(node, &CHANNEL);
        let mut ends = Vec::new();
        let mut count = 0;
        let mut broken = el.broken;
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().name() == END.tag {
                count += 1;
                match self.end(child) {
                    Some(end) => ends.push(end),
                    None => broken = true,
                }
            } else {
                self.unexpected(child, &CHANNEL);
            }
        }
        // A channel connects exactly two PDs.
        if count != 2 {
            self.error_at_node(
                node,
                format!(
                    "<channel> has {count} <end> element{}; a channel has exactly two",
                    if count == 1 { "" } else { "s" }
                ),
                "write <channel><end pd=\"a\" id=\"0\" /><end pd=\"b\" id=\"0\" /></channel>",
            );
            return None;
        }
        if broken {
            return None;
        }
        let Ok([(a, a_pp), (b, b_pp)]) = <[(ChannelEnd, Option<bool>); 2]>::try_from(ends) else {
            return None;
        };
        Some((Channel { ends: [a, b], loc: self.node_loc(node), origin: Origin::Written }, [a_pp, b_pp]))
    }

    /// One `<end>`, with its `pp` attribute as written. The resolved
    /// [`ChannelEnd::pp`] is filled in by validation.
    fn end(&mut self, node: Node<'a, 'input>) -> Option<(ChannelEnd, Option<bool>)> {
        let mut el = self.open(node, &END);
        let pd = el.required(self, "pd", value::non_empty);
        let id = el.required(self, "id", value::number_in(0..=MAX_CHANNEL_ID, CHANNEL_ID_WHY));
        let pp = el.optional(self, "pp", value::boolean);
        let notify = el.optional(self, "notify", value::boolean).unwrap_or(true);
        let setvar_id = el.optional(self, "setvar_id", value::non_empty);
        let (Some(pd), Some(id), false) = (pd, id, el.broken) else {
            return None;
        };
        Some((ChannelEnd { pd, id, pp: pp.unwrap_or(false), notify, setvar_id, loc: self.node_loc(node) }, pp))
    }
}

impl<'a, 'input> Parser<'a, 'input, '_, '_> {
    /// The `<network>` element; `None` if it or any of its clients is
    /// broken (clients' names are remembered in `dropped_clients`).
    ///
    /// Checked here, one element at a time: the address and gateway, the
    /// filters' syntax, the counts the configuration has room for, and
    /// `<watch>` only with `may_copy`. References to PDs and relations
    /// between clients are checked by validation.
    fn network(&mut self, node: Node<'a, 'input>) -> Option<Network> {
        let mut el = self.open(node, &NETWORK);
        let demux = el.required(self, "demux", value::non_empty);
        let arpd = el.optional(self, "arpd", value::non_empty);
        let node_address = el.required(self, "ipv4", value::ipv4_interface);
        let gateway = el.optional(self, "gateway", value::ipv4_address);
        let mut node_address = node_address;
        if let (Some(address), Some(gateway)) = (node_address.as_mut(), gateway) {
            let prefix = address.prefix();
            let problem = if gateway == address.ipv4 {
                Some(format!("the gateway {} is the node's own address", Dotted(gateway)))
            } else if !address.is_on_link(gateway) {
                Some(format!("the gateway {} is not on the link {prefix}", Dotted(gateway)))
            } else if address.prefix_len <= 30 && (gateway == prefix.network() || gateway == address.broadcast()) {
                Some(format!("the gateway {} is the network or broadcast address of {prefix}", Dotted(gateway)))
            } else {
                None
            };
            match problem {
                Some(message) => {
                    let loc = self.attribute_loc(node, "gateway");
                    self.sink.error(
                        loc,
                        format!("invalid gateway on {}: {message}", el.describe()),
                        format!(
                            "the gateway is the router the node reaches directly: a host address inside {prefix} other than {}, or widen the prefix of ipv4=\"...\"",
                            Dotted(address.ipv4)
                        ),
                    );
                    // Nothing else depends on the gateway: keep the
                    // network, to check the rest of it.
                }
                None => address.gateway = Some(gateway),
            }
        }
        let mut clients = Vec::new();
        let mut count = 0;
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().name() != CLIENT.tag {
                self.unexpected(child, &NETWORK);
                continue;
            }
            count += 1;
            if count == MAX_CLIENTS + 1 {
                self.error_at_node(
                    child,
                    format!("too many network clients: this is number {count}, and a <network> has at most {MAX_CLIENTS}"),
                    format!("the demultiplexer has room for {MAX_CLIENTS} clients (net_config::MAX_CLIENTS): merge the services of some PDs"),
                );
                el.broken = true;
            }
            clients.extend(self.network_client(child));
        }
        let (Some(demux), Some(node_address), false) = (demux, node_address, el.broken) else {
            return None;
        };
        Some(Network {
            demux,
            arpd,
            node: node_address,
            clients,
            loc: self.node_loc(node),
            demux_loc: self.attribute_loc(node, "demux"),
            arpd_loc: self.attribute_loc(node, "arpd"),
        })
    }

    /// A `<client>` with its `<grant>`, `<claim>` and `<watch>` filters.
    fn network_client(&mut self, node: Node<'a, 'input>) -> Option<NetworkClient> {
        let mut el = self.open(node, &CLIENT);
        let pd = el.required(self, "pd", value::non_empty);
        let arp = el.optional(self, "arp", value::boolean).unwrap_or(false);
        let may_copy_attribute = el.optional(self, "may_copy", value::boolean);
        // An invalid may_copy is reported already: no follow-on errors.
        let may_copy_known = may_copy_attribute.is_some() || el.raw("may_copy").is_none();
        let may_copy = may_copy_attribute.unwrap_or(false);
        let unclaimed_ipv4 = el.optional(self, "unclaimed_ipv4", value::boolean).unwrap_or(false);
        let send_from = el.optional(self, "send_from", value::non_empty);
        let who = format!("network client `{}`", el.raw("pd").unwrap_or("?"));
        let mut grant = Vec::new();
        let mut claims = Vec::new();
        let (mut grants_seen, mut claims_seen) = (0, 0);
        for child in node.children().filter(Node::is_element) {
            let schema = match child.tag_name().name() {
                "grant" => &GRANT,
                "claim" => &CLAIM,
                "watch" => &WATCH,
                _ => {
                    self.unexpected(child, &CLIENT);
                    continue;
                }
            };
            let mut filter_el = self.open(child, schema);
            let filter = filter_el.required(self, "filter", value::filter);
            el.broken |= filter_el.broken;
            let loc = self.node_loc(child);
            if schema.tag == GRANT.tag {
                grants_seen += 1;
                if grants_seen == MAX_GRANT_FILTERS + 1 {
                    self.sink.error(
                        loc,
                        format!("{who} has more than {MAX_GRANT_FILTERS} <grant> filters"),
                        format!(
                            "the configuration has room for {MAX_GRANT_FILTERS} granted filters per client (net_config::MAX_GRANT_FILTERS): grant wider filters, e.g. one port range instead of several ports"
                        ),
                    );
                    el.broken = true;
                }
                grant.extend(filter.map(|filter| NetworkFilter { filter, loc }));
                continue;
            }
            claims_seen += 1;
            if claims_seen == MAX_CLAIMS + 1 {
                self.sink.error(
                    loc,
                    format!("{who} has more than {MAX_CLAIMS} <claim> and <watch> filters together"),
                    format!(
                        "the configuration has room for {MAX_CLAIMS} boot-time filters per client (net_config::MAX_CLAIMS): claim wider filters, or let the PD claim more at run time (within its grant)"
                    ),
                );
                el.broken = true;
            }
            let kind = if schema.tag == WATCH.tag { FilterKind::Copy } else { FilterKind::Exclusive };
            if kind == FilterKind::Copy && !may_copy && may_copy_known {
                self.sink.error(
                    loc,
                    format!("<watch> needs the copy privilege, and {who} does not have may_copy=\"true\""),
                    format!(
                        "a <watch> receives copies of frames other PDs own: add may_copy=\"true\" to <client pd=\"{}\"> if it should see them, or use <claim> to own the frames",
                        el.raw("pd").unwrap_or("...")
                    ),
                );
                el.broken = true;
            }
            claims.extend(filter.map(|filter| NetworkClaim { filter, kind, loc }));
        }
        let (Some(pd), false) = (pd, el.broken) else {
            self.dropped_clients.extend(el.raw("pd").map(str::to_string));
            return None;
        };
        Some(NetworkClient {
            pd,
            arp,
            may_copy,
            unclaimed_ipv4,
            send_from,
            grant,
            claims,
            loc: self.node_loc(node),
            pd_loc: self.attribute_loc(node, "pd"),
            arp_loc: self.attribute_loc(node, "arp"),
            unclaimed_ipv4_loc: self.attribute_loc(node, "unclaimed_ipv4"),
            send_from_loc: self.attribute_loc(node, "send_from"),
        })
    }
}

/// `<tag key="value">` for `node`, or `<tag>` without its key attribute.
fn describe(node: Node<'_, '_>, schema: &Schema) -> String {
    match schema.key.and_then(|key| Some((key, node.attribute(key)?))) {
        Some((key, value)) => format!("<{} {key}=\"{value}\">", schema.tag),
        None => format!("<{}>", schema.tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Lines::loc` is roxmltree's `text_pos_at` at every offset: on each
    /// character boundary, past the end, across `\r\n`, blank lines and
    /// characters of more than one byte.
    #[test]
    fn lines_give_roxmltree_s_positions() {
        let texts = [
            "",
            "<system/>",
            "\n\n<system>\r\n  <a b=\"é€\"/>\n\t<c/></system>\n",
            "<system>\n<pd name=\"x\"\n      priority=\"1\"/>\u{1F600}x\n</system>",
        ];
        for text in texts {
            let doc = Document::parse(text).unwrap_or_else(|_| Document::parse("<x/>").unwrap());
            let doc_text = doc.input_text();
            let lines = Lines::new(doc_text);
            for pos in (0..=doc_text.len() + 3).filter(|&p| p > doc_text.len() || doc_text.is_char_boundary(p)) {
                let want = doc.text_pos_at(pos);
                assert_eq!(lines.loc(doc_text, pos), Loc::new(want.row, want.col), "offset {pos} of {doc_text:?}");
            }
        }
    }
}
