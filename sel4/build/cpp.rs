//! Just enough of a C preprocessor to read the kernel's headers and `.bf`
//! files under a given configuration: conditional blocks (`#if`, `#ifdef`,
//! `#ifndef`, `#elif`, `#else`, `#endif`) are evaluated, comments removed,
//! and integer-valued `#define`s collected. `#include` is ignored: callers
//! name every file they need explicitly.

use crate::expr::{self, Symbols};

/// Kernel configuration: the `#define`s of an autoconf.h.
pub struct Config {
    pub symbols: Symbols,
}

impl Config {
    pub fn parse(text: &str) -> Config {
        let mut symbols = Symbols::new();
        for line in strip_comments(text).lines() {
            if let Some((name, value)) = parse_define(line) {
                // Non-integer values (strings) still count as defined.
                let v = expr::eval(value, &symbols).unwrap_or(1);
                symbols.insert(name.to_string(), v);
            }
        }
        Config { symbols }
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.symbols.get(name).is_some_and(|v| *v != 0)
    }

    pub fn value(&self, name: &str) -> Option<i64> {
        self.symbols.get(name).copied()
    }
}

fn parse_define(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix('#')?.trim_start().strip_prefix("define")?;
    let rest = rest.trim_start();
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let (name, value) = rest.split_at(end);
    if name.is_empty() {
        return None;
    }
    let value = value.trim();
    Some((name, if value.is_empty() { "1" } else { value }))
}

/// Remove `/* */` and `//` comments (the `.bf` `--` comments are handled by
/// the bitfield parser).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find("*/").map_or(after.len(), |e| e + 2);
        // Keep line structure so that directives stay on their own lines.
        out.extend(after[..end].chars().filter(|c| *c == '\n'));
        rest = &after[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines of `text` that survive preprocessing under `config`, plus the
/// file's own integer `#define`s added to `defines`.
pub fn preprocess(text: &str, config: &Config, defines: &mut Symbols) -> Vec<String> {
    // Each stack entry: (this branch active, some branch already taken).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut out = Vec::new();
    let active = |stack: &[(bool, bool)]| stack.iter().all(|(a, _)| *a);
    let eval = |cond: &str, defines: &Symbols| {
        let mut syms = config.symbols.clone();
        syms.extend(defines.iter().map(|(k, v)| (k.clone(), *v)));
        expr::holds(cond, &syms)
    };
    for line in strip_comments(text).lines() {
        let t = line.trim();
        let Some(directive) = t.strip_prefix('#') else {
            if active(&stack) {
                out.push(line.to_string());
            }
            continue;
        };
        let directive = directive.trim_start();
        let (word, arg) = directive.split_once(char::is_whitespace).unwrap_or((directive, ""));
        let arg = arg.trim();
        match word {
            "if" => {
                let v = active(&stack) && eval(arg, defines);
                stack.push((v, v));
            }
            "ifdef" | "ifndef" => {
                let defined = config.symbols.contains_key(arg) || defines.contains_key(arg);
                let v = active(&stack) && (defined == (word == "ifdef"));
                stack.push((v, v));
            }
            "elif" => {
                let (_, taken) = stack.pop().expect("#elif without #if");
                let v = !taken && active(&stack) && eval(arg, defines);
                stack.push((v, taken || v));
            }
            "else" => {
                let (_, taken) = stack.pop().expect("#else without #if");
                let v = !taken && active(&stack);
                stack.push((v, true));
            }
            "endif" => {
                stack.pop().expect("#endif without #if");
            }
            "define" if active(&stack) => {
                if let Some((name, value)) = parse_define(t) {
                    let mut syms = config.symbols.clone();
                    syms.extend(defines.iter().map(|(k, v)| (k.clone(), *v)));
                    if let Ok(v) = expr::eval(value, &syms) {
                        defines.insert(name.to_string(), v);
                    }
                }
            }
            _ => {} // #include, #pragma, #error in inactive code, ...
        }
    }
    assert!(stack.is_empty(), "unbalanced #if in input");
    out
}
