//! Where a script's commands start and how each reads on one line: what the runner shows for
//! the command bash is running (`$ make test`), found from the line bash reports for it.
//!
//! Bash reports a command by one of its lines — the first for most, the last for a quoted
//! string or a `$(…)` spanning lines — so each line is classed by how it begins: at a fresh
//! command, continuing one (inside quotes or parentheses, after a `\`, `&&`, `||` or `|`), or
//! in a here-document's body. A command is its starting line and the lines that continue it.
//! The classing is lexical, like the rest of this module: it decides only what the log shows,
//! never what runs.

/// How a line of a script begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// At a fresh command (or a blank line, a comment, a keyword).
    Start,
    /// Inside a command begun on an earlier line.
    Continued,
    /// In the body of a here-document.
    Heredoc,
}

/// The longest command text shown, in characters; a longer one ends in `…`.
pub const MAX_SHOWN: usize = 300;

/// The kind of each line of `script` (split on `\n`).
pub fn line_kinds(script: &str) -> Vec<LineKind> {
    let mut lexer = Lexer::default();
    let mut kinds = Vec::new();
    let mut next = LineKind::Start;
    let mut docs: Vec<(String, bool)> = Vec::new();
    for line in script.split('\n') {
        if let Some((delim, strip)) = docs.first() {
            kinds.push(LineKind::Heredoc);
            let bare = if *strip {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if bare == delim {
                docs.remove(0);
            }
            continue;
        }
        kinds.push(next);
        docs.extend(lexer.line(line));
        next = if lexer.open() {
            LineKind::Continued
        } else {
            LineKind::Start
        };
    }
    kinds
}

/// The command line `n` (1-based) belongs to: its first line (1-based) and its text on one
/// line — its lines trimmed and joined by spaces, without continuing backslashes or
/// here-document bodies.
pub fn command_at(lines: &[&str], kinds: &[LineKind], n: usize) -> Option<(usize, String)> {
    let last = n.checked_sub(1).filter(|&i| i < lines.len())?;
    let first = (0..=last)
        .rev()
        .find(|&i| kinds.get(i) == Some(&LineKind::Start))
        .unwrap_or(0);
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate().skip(first) {
        match kinds.get(i) {
            Some(LineKind::Start) if i > first => break,
            Some(LineKind::Heredoc) => continue,
            _ => {}
        }
        let piece = line.trim();
        let piece = piece.strip_suffix('\\').map_or(piece, str::trim_end);
        if piece.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(piece);
        if text.chars().count() > MAX_SHOWN {
            break;
        }
    }
    if text.chars().count() > MAX_SHOWN {
        text = text.chars().take(MAX_SHOWN).collect::<String>() + "…";
    }
    Some((first + 1, text))
}

#[derive(Debug, Default)]
struct Lexer {
    quote: Option<u8>,
    depth: u32,
    /// The line ended in a `\` outside single quotes.
    escaped_newline: bool,
    /// The line's last two significant bytes outside quotes and comments.
    tail: [u8; 2],
}

impl Lexer {
    /// Whether a command begun so far goes on past the end of the line just read.
    fn open(&self) -> bool {
        self.quote.is_some()
            || self.depth > 0
            || self.escaped_newline
            || self.tail[1] == b'|'
            || self.tail == *b"&&"
    }

    /// Reads one line; returns the here-documents it opens (delimiter, strips tabs).
    fn line(&mut self, line: &str) -> Vec<(String, bool)> {
        let b = line.as_bytes();
        let mut docs = Vec::new();
        self.escaped_newline = false;
        if self.quote.is_none() {
            self.tail = [0; 2];
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match self.quote {
                Some(b'\'') if c == b'\'' => self.quote = None,
                Some(b'\'') => {}
                Some(_) if c == b'\\' => i += 1,
                Some(q) if c == q => self.quote = None,
                Some(_) => {}
                None => match c {
                    b'\\' if i + 1 == b.len() => self.escaped_newline = true,
                    b'\\' => i += 1,
                    b'\'' | b'"' => self.quote = Some(c),
                    b'#' if i == 0 || b" \t;&|()".contains(&b[i - 1]) => break,
                    b'(' => self.depth += 1,
                    b')' => self.depth = self.depth.saturating_sub(1),
                    b'<' if self.depth == 0 && line[i..].starts_with("<<") => {
                        i += 1;
                        if let Some((doc, len)) = heredoc(&line[i + 1..]) {
                            docs.push(doc);
                            i += len;
                        }
                    }
                    _ => {}
                },
            }
            if self.quote.is_none() && !c.is_ascii_whitespace() {
                self.tail = [self.tail[1], c];
            }
            i += 1;
        }
        if self.quote == Some(b'\'') || self.quote == Some(b'"') {
            self.tail = [0; 2];
        }
        docs
    }
}

/// After `<<`: `-`, blanks and a delimiter, quoted or not; `None` for `<<<`.
fn heredoc(s: &str) -> Option<((String, bool), usize)> {
    if s.starts_with('<') {
        return None;
    }
    let strip = s.starts_with('-');
    let rest = &s[usize::from(strip)..];
    let word = rest.trim_start_matches([' ', '\t']);
    let skipped = s.len() - word.len();
    let end = word
        .find(|c: char| c.is_ascii_whitespace() || ";&|()<>".contains(c))
        .unwrap_or(word.len());
    let delim: String = word[..end]
        .chars()
        .filter(|c| !"'\"\\".contains(*c))
        .collect();
    (!delim.is_empty()).then_some(((delim, strip), skipped + end))
}

#[cfg(test)]
mod tests {
    use super::LineKind::{Continued as C, Heredoc as H, Start as S};
    use super::*;

    fn commands(script: &str) -> Vec<Option<(usize, String)>> {
        let lines: Vec<&str> = script.split('\n').collect();
        let kinds = line_kinds(script);
        (1..=lines.len())
            .map(|n| command_at(&lines, &kinds, n))
            .collect()
    }

    #[test]
    fn lines_are_classed_by_how_they_begin() {
        let script = "echo \"a\nb\" && \\\n  c\nx=$(\n  y\n)\ncat <<-'EOF' | d\n\tbody $x\n\tEOF\ne |\n  f\n# it's a comment\ng # (not open\n";
        assert_eq!(
            line_kinds(script),
            [S, C, C, S, C, C, S, H, H, S, C, S, S, S]
        );
    }

    #[test]
    fn a_command_reads_on_one_line_from_any_of_its_lines() {
        let found = commands("make \\\n  -j4 \\\n  all\nx=$(\n  y\n)\ncat <<EOF\n${a.B}\nEOF\n");
        let make = Some((1, "make -j4 all".to_string()));
        assert_eq!(found[0], make);
        assert_eq!(found[2], make);
        assert_eq!(found[5], Some((4, "x=$( y )".to_string())));
        assert_eq!(found[7], Some((7, "cat <<EOF".to_string())));
        assert_eq!(commands("a")[0], Some((1, "a".to_string())));
        assert_eq!(commands("a").get(1), None);
    }

    #[test]
    fn a_long_command_is_cut() {
        let long = "x".repeat(MAX_SHOWN + 10);
        let (_, text) = commands(&long)[0].clone().unwrap();
        assert_eq!(text.chars().count(), MAX_SHOWN + 1);
        assert!(text.ends_with('…'));
    }
}
