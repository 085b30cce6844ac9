//! A diagram of PDs, channels and shared regions in Graphviz DOT, rendered
//! to SVG when `dot` is installed.

use crate::Error;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tools_sdf::SystemDescription;

/// A DOT string literal; line breaks become DOT's centred `\n`.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// PDs are boxes (with priority), memory regions are folders, channels are
/// solid edges labelled with both ids (arrow heads point at the ends that
/// may be notified; "pp" names the direction of protected calls), mappings
/// are dashed edges labelled with permissions.
pub fn render(sys: &SystemDescription) -> String {
    let mut d = String::new();
    let _ = writeln!(d, "digraph system {{");
    let _ = writeln!(d, "  rankdir=LR; node [fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\", fontsize=10];");
    for pd in sys.all_pds() {
        let mut label = format!("{}\nprio {}", pd.name, pd.priority);
        if pd.pp {
            label += ", pp";
        }
        if !pd.irqs.is_empty() {
            label += &format!("\nirqs: {}", pd.irqs.iter().map(|i| i.pin.to_string()).collect::<Vec<_>>().join(","));
        }
        let _ = writeln!(
            d,
            "  {} [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe9f6\", label={}];",
            quote(&pd.name),
            quote(&label)
        );
        for child in &pd.children {
            let _ = writeln!(
                d,
                "  {} -> {} [style=dotted, label=\"child {}\"];",
                quote(&pd.name),
                quote(&child.name),
                child.child_id.unwrap_or(0)
            );
        }
    }
    for mr in &sys.memory_regions {
        let label = format!("{}\n{:#x} bytes", mr.name, mr.size);
        let _ = writeln!(
            d,
            "  {} [shape=folder, style=filled, fillcolor=\"#f6ecd0\", label={}];",
            quote(&format!("mr:{}", mr.name)),
            quote(&label)
        );
    }
    for ch in &sys.channels {
        let [a, b] = &ch.ends;
        let dir = match (a.notify, b.notify) {
            (true, true) => "both",
            (true, false) => "forward",
            (false, true) => "back",
            (false, false) => "none",
        };
        let mut label = format!("{} : {}", a.id, b.id);
        if a.pp {
            label += &format!("\n{} calls {}", a.pd, b.pd);
        }
        if b.pp {
            label += &format!("\n{} calls {}", b.pd, a.pd);
        }
        let _ =
            writeln!(d, "  {} -> {} [dir={dir}, label={}, penwidth=1.5];", quote(&a.pd), quote(&b.pd), quote(&label));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagram_shows_pds_regions_channels_and_maps() {
        let text = r#"<system>
            <memory_region name="buf" size="0x1000" />
            <protection_domain name="a" priority="10"><program_image path="a" />
                <map mr="buf" vaddr="0x1000000" perms="rw" /></protection_domain>
            <protection_domain name="b" priority="20" pp="true"><program_image path="b" /></protection_domain>
            <channel><end pd="a" id="0" /><end pd="b" id="3" notify="false" /></channel>
        </system>"#;
        let sys = tools_sdf::parse_str(Path::new("t.system"), text).expect("valid");
        let dot = render(&sys);
        assert!(dot.contains(r#""a" [shape=box"#) && dot.contains(r#"label="a\nprio 10""#), "{dot}");
        assert!(dot.contains(r#"label="b\nprio 20, pp""#), "{dot}");
        assert!(dot.contains(r#""mr:buf" [shape=folder"#), "{dot}");
        // Only a may notify b, and a calls b.
        assert!(dot.contains(r#""a" -> "b" [dir=forward, label="0 : 3\na calls b""#), "{dot}");
        assert!(dot.contains(r#""a" -> "mr:buf" [style=dashed, arrowhead=none, label="rw @ 0x1000000"]"#), "{dot}");
    }

    #[test]
    fn generated_network_regions_appear_like_written_ones() {
        let text = r#"<system>
            <protection_domain name="mux" priority="200" pp="true"><program_image path="mux" /></protection_domain>
            <protection_domain name="web" priority="100"><program_image path="web" /></protection_domain>
            <network demux="mux" ipv4="10.0.2.15/24"><client pd="web" /></network>
        </system>"#;
        let sys = tools_sdf::parse_str(Path::new("t.system"), text).expect("valid");
        let dot = render(&sys);
        assert!(dot.contains(r#""mr:net_web_rx_data" [shape=folder"#), "{dot}");
        assert!(
            dot.contains(r#""web" -> "mr:net_web_rx_data" [style=dashed, arrowhead=none, label="r @ 0x50000000"]"#),
            "{dot}"
        );
        assert!(
            dot.contains(r#""mux" -> "mr:net_web_rx_data" [style=dashed, arrowhead=none, label="rw @ 0x60000000"]"#),
            "{dot}"
        );
        assert!(dot.contains(r#""web" -> "mux" [dir=both, label="0 : 1\nweb calls mux""#), "{dot}");
    }
}
