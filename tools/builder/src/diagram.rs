//! A diagram of PDs, channels and shared regions in Graphviz DOT, rendered
//! to SVG when `dot` is installed.

use crate::Error;
use sdf::SystemDescription;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// PDs are boxes (with priority), memory regions are folders, channels are
/// solid edges labelled with both ids (an arrow head marks the direction of
/// protected calls), mappings are dashed edges labelled with permissions.
pub fn render(sys: &SystemDescription) -> String {
    let mut d = String::new();
    let _ = writeln!(d, "digraph system {{");
    let _ = writeln!(d, "  rankdir=LR; node [fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\", fontsize=10];");
    for pd in sys.all_pds() {
        let mut label = format!("{}\\nprio {}", pd.name, pd.priority);
        if pd.pp {
            label += ", pp";
        }
        if !pd.irqs.is_empty() {
            label += &format!("\\nirqs: {}", pd.irqs.iter().map(|i| i.pin.to_string()).collect::<Vec<_>>().join(","));
        }
        let _ = writeln!(d, "  {} [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe9f6\", label={}];", quote(&pd.name), quote(&label));
        for child in &pd.children {
            let _ = writeln!(d, "  {} -> {} [style=dotted, label=\"child {}\"];", quote(&pd.name), quote(&child.name), child.child_id.unwrap_or(0));
        }
    }
    for mr in &sys.memory_regions {
        let label = format!("{}\\n{:#x} bytes", mr.name, mr.size);
        let _ = writeln!(d, "  {} [shape=folder, style=filled, fillcolor=\"#f6ecd0\", label={}];", quote(&format!("mr:{}", mr.name)), quote(&label));
    }
    for ch in &sys.channels {
        let [a, b] = &ch.ends;
        let dir = match (a.pp, b.pp) {
            (true, false) => "forward",
            (false, true) => "back",
            _ => "none",
        };
        let mut label = format!("{} : {}", a.id, b.id);
        if a.pp || b.pp {
            label += " (pp)";
        }
        let _ = writeln!(d, "  {} -> {} [dir={dir}, label={}, penwidth=1.5];", quote(&a.pd), quote(&b.pd), quote(&label));
    }
    for pd in sys.all_pds() {
        for m in &pd.maps {
            let _ = writeln!(
                d,
                "  {} -> {} [style=dashed, arrowhead=none, label={}];",
                quote(&pd.name),
                quote(&format!("mr:{}", m.mr)),
                quote(&format!("{} @ {:#x}", m.perms, m.vaddr))
            );
        }
    }
    let _ = writeln!(d, "}}");
    d
}

/// Renders the DOT file to SVG beside it; `None` if `dot` is not installed.
pub fn to_svg(dot: &Path) -> Result<Option<PathBuf>, Error> {
    let svg = dot.with_extension("svg");
    match Command::new("dot").arg("-Tsvg").arg(dot).arg("-o").arg(&svg).status() {
        Ok(s) if s.success() => Ok(Some(svg)),
        Ok(s) => Err(Error::other(format!("dot -Tsvg {} failed ({s})", dot.display()))),
        Err(_) => Ok(None),
    }
}
