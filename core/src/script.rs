//! Finding conveyor references in shell scripts and rewriting them.
//!
//! A dotted `${a.b}` is never valid bash, and `{{ a.b }}` is not shell syntax, so both are
//! conveyor's. Each is replaced by an expansion of an environment variable that holds the
//! value, quoted for the place it stands in, so the value is always data: unquoted
//! `${a.b}` becomes `"${V}"`, inside double quotes `${V}`, inside single quotes `'"${V}"'`
//! (a dotted reference is conveyor's wherever it stands, even between single quotes).
//! Everything else — `$X`, `${X:-d}`, `${#a[@]}`, `$((1+2))`, comments — is left byte for byte.

pub mod commands;

/// Where in the shell's grammar a reference stands; decides how its expansion is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Unquoted,
    Double,
    Single,
    AnsiC,
    /// Inside a here-document with a quoted delimiter, where bash expands nothing.
    QuotedHeredoc,
}

/// A reference found in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The dotted path, e.g. `build.VERSION`.
    pub path: String,
    /// Byte range of the whole reference (`${…}` or `{{ … }}`) in the script.
    pub start: usize,
    pub end: usize,
    pub context: Context,
}

/// A dotted path is `seg(.seg)+`; each segment `[A-Za-z0-9_-]+`; the last one a variable name.
pub fn is_ref_path(path: &str) -> bool {
    let segs: Vec<&str> = path.split('.').collect();
    segs.len() >= 2
        && segs.iter().all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        })
        && segs.last().is_some_and(|s| crate::names::is_var_name(s))
}

/// A reference starting at `s`: its path and byte length.
pub(crate) fn ref_at(s: &str) -> Option<(String, usize)> {
    if let Some(body) = s.strip_prefix("${") {
        let end = body.find('}')?;
        let path = &body[..end];
        return is_ref_path(path).then(|| (path.to_string(), end + 3));
    }
    let body = s.strip_prefix("{{")?;
    let end = body.find("}}")?;
    let path = body[..end].trim_matches(' ');
    is_ref_path(path).then(|| (path.to_string(), end + 4))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Frame {
    /// Top level or inside `$(…)`/`(…)`: counts open parentheses.
    Code(u32),
    /// Inside `$((…))`: like code, but `<<` is a shift and `#` no comment.
    Arith(u32),
    Backtick,
    Param,
    Double,
    Single,
    AnsiC,
}

struct Heredoc {
    delim: String,
    quoted: bool,
    strip_tabs: bool,
}

/// Finds every conveyor reference in a script, in order.
pub fn scan(script: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let b = script.as_bytes();
    let mut stack = vec![Frame::Code(0)];
    let mut pending: Vec<Heredoc> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii() {
            i += 1;
            continue;
        }
        let frame = *stack.last().unwrap_or(&Frame::Code(0));
        let rest = &script[i..];
        if let Some((path, len)) = ref_at(rest) {
            let context = match frame {
                Frame::Double => Context::Double,
                Frame::Single => Context::Single,
                Frame::AnsiC => Context::AnsiC,
                _ => Context::Unquoted,
            };
            found.push(Found {
                path,
                start: i,
                end: i + len,
                context,
            });
            i += len;
            continue;
        }
        let c = b[i];
        match frame {
            Frame::Single => {
                if c == b'\'' {
                    stack.pop();
                }
            }
            Frame::AnsiC => match c {
                b'\\' => i += 1,
                b'\'' => {
                    stack.pop();
                }
                _ => {}
            },
            Frame::Double => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'`' => stack.push(Frame::Backtick),
                b'$' => i += open_dollar(rest, &mut stack),
                _ => {}
            },
            Frame::Code(_) | Frame::Arith(_) | Frame::Backtick | Frame::Param => {
                let code = matches!(frame, Frame::Code(_) | Frame::Backtick);
                let at_word_start = i == 0 || b" \t\n;&|()".contains(&b[i - 1]);
                match c {
                    b'\\' => i += 1,
                    b'\'' => stack.push(Frame::Single),
                    b'"' => stack.push(Frame::Double),
                    b'$' => i += open_dollar(rest, &mut stack),
                    b'`' if frame == Frame::Backtick => {
                        stack.pop();
                    }
                    b'`' => stack.push(Frame::Backtick),
                    b'}' if frame == Frame::Param => {
                        stack.pop();
                    }
                    b'(' => {
                        if let Some(Frame::Code(n) | Frame::Arith(n)) = stack.last_mut() {
                            *n += 1;
                        }
                    }
                    b')' => close_paren(&mut stack),
                    b'#' if at_word_start && code => {
                        i += rest.find('\n').unwrap_or(rest.len());
                        continue;
                    }
                    b'<' if code && rest.starts_with("<<") && !rest.starts_with("<<<") => {
                        if let Some((doc, len)) = heredoc_start(&rest[2..]) {
                            pending.push(doc);
                            i += 2 + len;
                            continue;
                        }
                        i += 1;
                    }
                    b'\n' if !pending.is_empty() => {
                        i = heredoc_bodies(script, i + 1, &pending, &mut found);
                        pending.clear();
                        continue;
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    found
}

/// Handles a `$` in an expanding context; returns how many extra bytes it consumed.
fn open_dollar(rest: &str, stack: &mut Vec<Frame>) -> usize {
    match rest.as_bytes().get(1) {
        Some(b'(') if rest.as_bytes().get(2) == Some(&b'(') => {
            stack.push(Frame::Arith(2));
            2
        }
        Some(b'(') => {
            stack.push(Frame::Code(1));
            1
        }
        Some(b'{') => {
            stack.push(Frame::Param);
            1
        }
        Some(b'\'') if stack.last() != Some(&Frame::Double) => {
            stack.push(Frame::AnsiC);
            1
        }
        Some(b'$' | b'#' | b'\'' | b'"' | b'`' | b'\\') => 1,
        _ => 0,
    }
}

fn close_paren(stack: &mut Vec<Frame>) {
    if let Some(Frame::Code(n) | Frame::Arith(n)) = stack.last_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 && stack.len() > 1 {
            stack.pop();
        }
    }
}

/// After `<<`: an optional `-`, blanks, and a delimiter word, possibly quoted.
fn heredoc_start(s: &str) -> Option<(Heredoc, usize)> {
    let strip_tabs = s.starts_with('-');
    let after_dash = usize::from(strip_tabs);
    let body = s[after_dash..].trim_start_matches([' ', '\t']);
    let blanks = s.len() - after_dash - body.len();
    let (delim, quoted, len) = match body.as_bytes().first()? {
        q @ (b'\'' | b'"') => {
            let close = body[1..].find(*q as char)?;
            (body[1..=close].to_string(), true, close + 2)
        }
        _ => {
            let len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '\\'))
                .unwrap_or(body.len());
            let word = &body[..len];
            (word.replace('\\', ""), word.contains('\\'), len)
        }
    };
    (!delim.is_empty()).then_some((
        Heredoc {
            delim,
            quoted,
            strip_tabs,
        },
        after_dash + blanks + len,
    ))
}

/// Scans here-document bodies starting at `i`; returns the index after the last one.
fn heredoc_bodies(script: &str, mut i: usize, docs: &[Heredoc], found: &mut Vec<Found>) -> usize {
    for doc in docs {
        while i < script.len() {
            let line_end = script[i..].find('\n').map_or(script.len(), |n| i + n);
            let line = &script[i..line_end];
            let bare = if doc.strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            let next = (line_end + 1).min(script.len());
            if bare == doc.delim {
                i = next;
                break;
            }
            let context = if doc.quoted {
                Context::QuotedHeredoc
            } else {
                Context::Double
            };
            let mut j = 0;
            while j < line.len() {
                if !line.as_bytes()[j].is_ascii() {
                    j += 1;
                    continue;
                }
                let rest = &line[j..];
                if line.as_bytes()[j] == b'\\' && !doc.quoted {
                    j += 2;
                    continue;
                }
                if let Some((path, len)) = ref_at(rest) {
                    found.push(Found {
                        path,
                        start: i + j,
                        end: i + j + len,
                        context,
                    });
                    j += len;
                } else {
                    j += 1;
                }
            }
            i = next;
        }
    }
    i
}

/// Rewrites `script`, replacing each found reference with an expansion of the variable
/// `env_of(path)` quoted for its context.
pub fn rewrite(script: &str, found: &[Found], env_of: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(script.len() + found.len() * 16);
    let mut at = 0;
    for f in found {
        out.push_str(&script[at..f.start]);
        let var = env_of(&f.path);
        match f.context {
            Context::Unquoted => out.push_str(&format!("\"${{{var}}}\"")),
            Context::Double | Context::QuotedHeredoc => out.push_str(&format!("${{{var}}}")),
            Context::Single => out.push_str(&format!("'\"${{{var}}}\"'")),
            Context::AnsiC => out.push_str(&format!("'\"${{{var}}}\"$'")),
        }
        at = f.end;
    }
    out.push_str(&script[at..]);
    out
}

#[cfg(test)]
mod tests;
