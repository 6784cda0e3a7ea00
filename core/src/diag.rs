//! Diagnostics: located errors and warnings, printed as `FILE:LINE:COL: error: MESSAGE`.

use std::fmt;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One message about a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.pos.line, self.pos.col, level, self.message
        )
    }
}

/// Collects diagnostics for one file while it is compiled.
#[derive(Debug, Default)]
pub struct Diagnostics {
    file: String,
    items: Vec<Diagnostic>,
    /// The source's lines, to locate things inside multi-line scalars.
    lines: Vec<String>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>) -> Self {
        Diagnostics {
            file: file.into(),
            items: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Diagnostics that can locate positions inside the scalars of `source`.
    pub fn with_source(file: impl Into<String>, source: &str) -> Self {
        Diagnostics {
            lines: source.lines().map(str::to_string).collect(),
            ..Self::new(file)
        }
    }

    /// The file these diagnostics are about.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The position of byte `offset` of a scalar's value that starts at `node`.
    /// Exact for block scalars (`|`, `>`) and single-line scalars; otherwise the node's.
    pub fn pos_in_scalar(&self, node: Pos, value: &str, offset: usize) -> Pos {
        let before = &value[..offset.min(value.len())];
        let line_in_value = before.matches('\n').count();
        let col_in_line = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
        let Some(first) = (node.line as usize)
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
        else {
            return node;
        };
        let at = first
            .get((node.col as usize).saturating_sub(1)..)
            .unwrap_or("");
        if at.starts_with('|') || at.starts_with('>') {
            let content = self
                .lines
                .iter()
                .skip(node.line as usize)
                .find(|l| !l.trim().is_empty());
            let indent = content.map_or(0, |l| l.len() - l.trim_start().len());
            let col = u32::try_from(indent + col_in_line + 1).unwrap_or(node.col);
            return Pos::new(node.line + 1 + line_in_value as u32, col);
        }
        let first_value_line = value.split('\n').next().unwrap_or("");
        if line_in_value == 0 && at.contains(first_value_line) {
            let quote = u32::from(at.starts_with('"') || at.starts_with('\''));
            return Pos::new(node.line, node.col + quote + col_in_line as u32);
        }
        // A block scalar located at its first content line: every line shares its indent.
        let indent = first.len() - first.trim_start().len();
        let opener = node
            .line
            .checked_sub(2)
            .and_then(|i| self.lines.get(i as usize));
        let is_block = opener.is_some_and(|l| {
            let l = l
                .trim_end()
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
            l.ends_with('|') || l.ends_with('>')
        });
        if is_block && indent + 1 == node.col as usize {
            return Pos::new(
                node.line + line_in_value as u32,
                node.col + col_in_line as u32,
            );
        }
        node
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Error, message.into());
    }

    pub fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Warning, message.into());
    }

    fn push(&mut self, pos: Pos, severity: Severity, message: String) {
        self.items.push(Diagnostic {
            file: self.file.clone(),
            pos,
            severity,
            message,
        });
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics in file order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        sort(&mut self.items);
        self.items
    }
}

/// Sorts diagnostics by file, then position, errors before warnings at one position.
pub fn sort(items: &mut [Diagnostic]) {
    items.sort_by(|a, b| {
        (&a.file, a.pos, a.severity, &a.message).cmp(&(&b.file, b.pos, b.severity, &b.message))
    });
}
