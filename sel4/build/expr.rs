//! A tiny evaluator for the C preprocessor / enum-initialiser expressions the
//! kernel's interface files use: `defined(X)`, `defined X`, `!`, unary `-`,
//! `* / + - << >> < > <= >= == != & | && ||`, parentheses and integers.
//!
//! Identifiers are looked up in a symbol table; like the C preprocessor, an
//! unknown identifier evaluates to 0.

use std::collections::HashMap;

/// Symbols visible to an expression: config `#define`s and enum constants.
pub type Symbols = HashMap<String, i64>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 21] =
    ["&&", "||", "<<", ">>", "<=", ">=", "==", "!=", "(", ")", "!", "-", "+", "*", "/", "<", ">", "&", "|", "~", "%"];

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    'outer: while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i] as char).is_ascii_alphanumeric() {
                i += 1;
            }
            let lit = s[start..i].trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(hex) = lit.strip_prefix("0x").or(lit.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16)
            } else {
                lit.parse()
            };
            out.push(Tok::Num(v.map_err(|e| format!("bad number {lit:?}: {e}"))?));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_string()));
        } else {
            for op in OPS {
                if s[i..].starts_with(op) {
                    out.push(Tok::Op(op));
                    i += op.len();
                    continue 'outer;
                }
            }
            return Err(format!("unexpected character {c:?} in expression {s:?}"));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    syms: &'a Symbols,
}

fn binding_power(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Result<Tok, String> {
        let t = self.toks.get(self.pos).cloned().ok_or("unexpected end of expression")?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        match self.next()? {
            Tok::Op(o) if o == op => Ok(()),
            t => Err(format!("expected {op:?}, found {t:?}")),
        }
    }

    fn primary(&mut self) -> Result<i64, String> {
        match self.next()? {
            Tok::Num(n) => Ok(n),
            Tok::Op("(") => {
                let v = self.expr(0)?;
                self.expect(")")?;
                Ok(v)
            }
            Tok::Op("!") => Ok((self.primary()? == 0) as i64),
            Tok::Op("-") => Ok(-self.primary()?),
            Tok::Op("~") => Ok(!self.primary()?),
            Tok::Ident(id) if id == "defined" => {
                let parens = self.peek() == Some(&Tok::Op("("));
                if parens {
                    self.next()?;
                }
                let name = match self.next()? {
                    Tok::Ident(n) => n,
                    t => return Err(format!("defined() of non-identifier {t:?}")),
                };
                if parens {
                    self.expect(")")?;
                }
                Ok(self.syms.contains_key(&name) as i64)
            }
            Tok::Ident(id) => Ok(self.syms.get(&id).copied().unwrap_or(0)),
            t => Err(format!("unexpected token {t:?}")),
        }
    }

    /// Precedence climbing over the binary operators.
    fn expr(&mut self, min_bp: u8) -> Result<i64, String> {
        let mut lhs = self.primary()?;
        while let Some(Tok::Op(op)) = self.peek().cloned() {
            let Some(bp) = binding_power(op) else { break };
            if bp <= min_bp {
                break;
            }
            self.next()?;
            let rhs = self.expr(bp)?;
            lhs = match op {
                "||" => (lhs != 0 || rhs != 0) as i64,
                "&&" => (lhs != 0 && rhs != 0) as i64,
                "|" => lhs | rhs,
                "&" => lhs & rhs,
                "==" => (lhs == rhs) as i64,
                "!=" => (lhs != rhs) as i64,
                "<" => (lhs < rhs) as i64,
                ">" => (lhs > rhs) as i64,
                "<=" => (lhs <= rhs) as i64,
                ">=" => (lhs >= rhs) as i64,
                "<<" => lhs << rhs,
                ">>" => lhs >> rhs,
                "+" => lhs + rhs,
                "-" => lhs - rhs,
                "*" => lhs * rhs,
                "/" => lhs.checked_div(rhs).ok_or("division by zero")?,
                "%" => lhs.checked_rem(rhs).ok_or("division by zero")?,
                _ => unreachable!(),
            };
        }
        Ok(lhs)
    }
}

/// Evaluate `expr` against `syms`.
pub fn eval(expr: &str, syms: &Symbols) -> Result<i64, String> {
    let mut p = Parser { toks: tokenize(expr)?, pos: 0, syms };
    let v = p.expr(0)?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing tokens in expression {expr:?}"));
    }
    Ok(v)
}

/// Evaluate a condition (empty means "always").
pub fn holds(cond: &str, syms: &Symbols) -> bool {
    let cond = cond.trim();
    cond.is_empty() || eval(cond, syms).unwrap_or_else(|e| panic!("condition {cond:?}: {e}")) != 0
}
