//! Turning kernel C identifiers into Rust ones.

/// `SetIPCBuffer` -> `set_ipc_buffer`, `GetIOAPIC` -> `get_ioapic`,
/// `bufferFrame` -> `buffer_frame`, `In8` -> `in8`.
pub fn snake(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            let prev = c[i - 1];
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(ch.to_ascii_lowercase());
    }
    out.replace("__", "_")
}

/// `IRQControl` -> `IrqControl`, `PDPT` -> `Pdpt`, `CNode` -> `CNode`.
pub fn camel(s: &str) -> String {
    snake(s)
        .split('_')
        .map(|w| {
            let mut cs = w.chars();
            cs.next().map(|f| f.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
        })
        .collect()
}

/// `DebugPutChar` -> `DEBUG_PUT_CHAR`, `CapFault_IP` -> `CAP_FAULT_IP`.
pub fn screaming(s: &str) -> String {
    s.split('_').map(snake).collect::<Vec<_>>().join("_").to_ascii_uppercase()
}

/// `seL4_X86_PageTable` -> `X86PageTable`, `seL4_TCB` -> `Tcb`.
pub fn interface_type(xml_name: &str) -> String {
    xml_name.trim_start_matches("seL4_").split('_').map(camel).collect()
}

/// A parameter name as a Rust identifier (`type` -> `ty`).
pub fn param(name: &str) -> String {
    match snake(name).as_str() {
        "type" => "ty".to_string(),
        s => ident(s),
    }
}

/// A snake_case name made safe from Rust keywords (`move` -> `move_`).
pub fn ident(s: &str) -> String {
    const KEYWORDS: &[&str] =
        &["as", "fn", "impl", "in", "loop", "match", "mod", "move", "ref", "self", "type", "use", "where"];
    if KEYWORDS.contains(&s) {
        format!("{s}_")
    } else {
        s.to_string()
    }
}
