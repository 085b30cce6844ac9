//! Readers for the kernel's interface definitions (`sel4.xml`,
//! `sel4arch.xml`) and system call list (`syscall.xml`).

use std::path::Path;

pub struct Param {
    pub name: String,
    pub ty: String,
    pub dir_in: bool,
    pub description: String,
}

pub struct Method {
    /// The invocation label name (`UntypedRetype`).
    pub id: String,
    /// The method name (`Retype`).
    pub name: String,
    pub condition: String,
    pub brief: String,
    pub params: Vec<Param>,
}

pub struct Interface {
    pub name: String,
    pub methods: Vec<Method>,
}

pub struct Struct {
    pub name: String,
    pub members: Vec<String>,
}

/// One interface XML file.
pub struct InterfaceFile {
    pub interfaces: Vec<Interface>,
    pub structs: Vec<Struct>,
    /// Every method id with its condition, in document order: exactly what
    /// the kernel's invocation_header_gen.py numbers.
    pub labels: Vec<(String, String)>,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whitespace-normalised text of an element and its descendants.
fn text_of(node: roxmltree::Node) -> String {
    let raw: String = node.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

pub fn read_interfaces(path: &Path) -> InterfaceFile {
    let text = read(path);
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap_or("").to_string();
    let structs = doc
        .descendants()
        .filter(|n| n.has_tag_name("struct"))
        .map(|s| Struct {
            name: attr(s, "name"),
            members: s.children().filter(|m| m.has_tag_name("member")).map(|m| attr(m, "name")).collect(),
        })
        .collect();
    let labels =
        doc.descendants().filter(|n| n.has_tag_name("method")).map(|m| (attr(m, "id"), attr(m, "condition"))).collect();
    let interfaces = doc
        .descendants()
        .filter(|n| n.has_tag_name("interface"))
        .map(|i| Interface {
            name: attr(i, "name"),
            methods: i
                .children()
                .filter(|m| m.has_tag_name("method"))
                .map(|m| Method {
                    id: attr(m, "id"),
                    name: attr(m, "name"),
                    condition: attr(m, "condition"),
                    brief: child(m, "brief").map(text_of).unwrap_or_default(),
                    params: m
                        .children()
                        .filter(|p| p.has_tag_name("param"))
                        .map(|p| Param {
                            name: attr(p, "name"),
                            ty: attr(p, "type"),
                            dir_in: match p.attribute("dir") {
                                Some("in") => true,
                                Some("out") => false,
                                d => panic!("param dir {d:?}"),
                            },
                            description: p
                                .attribute("description")
                                .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
                                .or_else(|| child(p, "description").map(text_of))
                                .unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    InterfaceFile { interfaces, structs, labels }
}

/// A system call: its name and the condition of its `<config>` group.
pub struct Syscall {
    pub name: String,
    pub condition: String,
    pub number: i64,
}

/// Syscalls numbered as syscall_header_gen.py does: -1, -2, ... in document
/// order over `<api>` then `<debug>`, counting disabled ones too (the
/// template's counter runs outside the `#if`s).
pub fn read_syscalls(path: &Path) -> Vec<Syscall> {
    let text = read(path);
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut number = -1;
    let mut out = Vec::new();
    for section in ["api", "debug"] {
        for config in doc
            .descendants()
            .filter(|n| n.has_tag_name(section))
            .flat_map(|s| s.children())
            .filter(|c| c.has_tag_name("config"))
        {
            let condition = config.attribute("condition").unwrap_or("").to_string();
            for sc in config.children().filter(|c| c.has_tag_name("syscall")) {
                out.push(Syscall {
                    name: sc.attribute("name").unwrap_or("").to_string(),
                    condition: condition.clone(),
                    number,
                });
                number -= 1;
            }
        }
    }
    out
}
