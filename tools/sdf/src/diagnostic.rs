//! Error reporting: every problem found in a system description becomes a
//! [`Diagnostic`] that names the file, the line and column, what is wrong and
//! how to fix it. Parsing and validation collect all of them rather than
//! stopping at the first, so one run shows the user every mistake.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based position in a system description file.
///
/// Points at the start of the element a diagnostic is about, or at the
/// offending attribute when the problem is confined to one attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: u32,
    pub column: u32,
}

impl Loc {
    /// "No position": used for problems with the file as a whole, such as
    /// failing to read it. Displayed without line and column.
    pub const NONE: Loc = Loc { line: 0, column: 0 };

    pub const fn new(line: u32, column: u32) -> Self {
        Loc { line, column }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One error in a system description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub loc: Loc,
    /// What is wrong, naming the elements involved.
    pub message: String,
    /// How to fix it. May be empty when there is nothing useful to add.
    pub hint: String,
}

impl Diagnostic {
    pub fn new(file: &Path, loc: Loc, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Diagnostic { file: file.to_path_buf(), loc, message: message.into(), hint: hint.into() }
    }
}

/// `microkit.system:12:5: error: <message>` followed, when there is a hint,
/// by an indented `hint: <hint>` line: the format editors and terminals
/// recognise as a clickable location.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.loc == Loc::NONE {
            write!(f, "{}: error: {}", self.file.display(), self.message)?;
        } else {
            write!(f, "{}:{}: error: {}", self.file.display(), self.loc, self.message)?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// All errors found in one system description, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One block per diagnostic, separated by blank lines.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics for one file while parsing and validating it.
pub(crate) struct Sink<'f> {
    file: &'f Path,
    diagnostics: Vec<Diagnostic>,
}

impl<'f> Sink<'f> {
    pub(crate) fn new(file: &'f Path) -> Self {
        Sink { file, diagnostics: Vec::new() }
    }

    pub(crate) fn error(&mut self, loc: Loc, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(self.file, loc, message, hint));
    }

    /// The collected diagnostics in file order, or `None` if there are none.
    /// The sort is stable, so problems at one position keep the order in
    /// which they were found.
    pub(crate) fn finish(mut self) -> Option<Diagnostics> {
        if self.diagnostics.is_empty() {
            return None;
        }
        self.diagnostics.sort_by_key(|d| d.loc);
        Some(Diagnostics(self.diagnostics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_compiler_convention() {
        let d = Diagnostic::new(Path::new("microkit.system"), Loc::new(12, 5), "bad", "fix it");
        assert_eq!(d.to_string(), "microkit.system:12:5: error: bad\n  hint: fix it");
        let d = Diagnostic::new(Path::new("a.system"), Loc::NONE, "unreadable", "");
        assert_eq!(d.to_string(), "a.system: error: unreadable");
    }

    #[test]
    fn diagnostics_are_separated_by_blank_lines() {
        let file = Path::new("s");
        let all = Diagnostics(vec![
            Diagnostic::new(file, Loc::new(1, 1), "one", ""),
            Diagnostic::new(file, Loc::new(2, 1), "two", "h"),
        ]);
        assert_eq!(all.to_string(), "s:1:1: error: one\n\ns:2:1: error: two\n  hint: h");
    }
}
