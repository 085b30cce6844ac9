//! Enum constants from libsel4's C headers (object types, errors, initial
//! caps, fault message-register positions, VM attributes, ...).

use crate::cpp::{self, Config};
use crate::expr::{self, Symbols};

/// One C `enum`, in declaration order.
pub struct CEnum {
    /// The `typedef` name after the closing brace, or the tag name.
    pub name: String,
    pub entries: Vec<(String, i64)>,
}

/// Everything read from a set of headers: enums, and all integer constants
/// (enum entries and `#define`s) by name.
#[derive(Default)]
pub struct Headers {
    pub enums: Vec<CEnum>,
    pub constants: Symbols,
}

impl Headers {
    /// Read `files` in order (later files may refer to earlier constants,
    /// as `seL4_X86_4K = seL4_ModeObjectTypeCount` does).
    pub fn read(files: &[std::path::PathBuf], config: &Config) -> Headers {
        let mut h = Headers::default();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let lines = cpp::preprocess(&text, config, &mut h.constants);
            h.parse_enums(&lines.join("\n"), config);
        }
        h
    }

    fn parse_enums(&mut self, text: &str, config: &Config) {
        let mut rest = text;
        while let Some(i) = find_word(rest, "enum") {
            let after = &rest[i + 4..];
            let (Some(open), Some(close)) = (after.find('{'), after.find('}')) else { break };
            if after[..open].contains(';') {
                rest = after; // `enum x y;` declaration, not a definition
                continue;
            }
            let tag = after[..open].trim().to_string();
            let body = &after[open + 1..close];
            let tail = &after[close + 1..];
            let typedef_name = tail[..tail.find(';').unwrap_or(0)].trim().to_string();
            let mut next = 0i64;
            let mut entries = Vec::new();
            for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if item.starts_with("SEL4_FORCE_LONG_ENUM") {
                    continue;
                }
                let (name, value) = match item.split_once('=') {
                    Some((n, v)) => {
                        let mut syms = config.symbols.clone();
                        syms.extend(self.constants.iter().map(|(k, v)| (k.clone(), *v)));
                        let v = expr::eval(v, &syms).unwrap_or_else(|e| panic!("enum {item}: {e}"));
                        (n.trim(), v)
                    }
                    None => (item, next),
                };
                self.constants.insert(name.to_string(), value);
                entries.push((name.to_string(), value));
                next = value + 1;
            }
            let name = if typedef_name.is_empty() { tag } else { typedef_name };
            self.enums.push(CEnum { name, entries });
            rest = &after[close + 1..];
        }
    }

    /// The value of a constant the generator cannot do without.
    pub fn get(&self, name: &str) -> i64 {
        *self.constants.get(name).unwrap_or_else(|| panic!("constant {name} not found in libsel4 headers"))
    }

    /// The enum that contains `entry`.
    pub fn enum_containing(&self, entry: &str) -> &CEnum {
        self.enums
            .iter()
            .find(|e| e.entries.iter().any(|(n, _)| n == entry))
            .unwrap_or_else(|| panic!("no enum in libsel4 headers defines {entry}"))
    }
}

fn find_word(s: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(word) {
        let at = from + i;
        let before_ok = at == 0 || !s.as_bytes()[at - 1].is_ascii_alphanumeric() && s.as_bytes()[at - 1] != b'_';
        let end = at + word.len();
        let after_ok = end >= s.len() || !s.as_bytes()[end].is_ascii_alphanumeric() && s.as_bytes()[end] != b'_';
        if before_ok && after_ok {
            return Some(at);
        }
        from = end;
    }
    None
}
