//! The job's commands in its log: a `kind=command` line as each starts, bash's messages about
//! `run.sh` told against the user's file, and the failure named by its command and line.
//!
//! The wrapper (see [`super::script`]) gives bash a DEBUG trap that, before a command on a
//! line past every line reached so far, writes a marker — `\x1e` NONCE ` C ` LINE TIME — to a
//! copy of its stdout, and an ERR trap that writes `\x1e` NONCE ` E ` STATUS LINE. The stdout
//! reader takes the markers out of the output (see [`Commands::marker`]), so they keep their
//! order with what the commands print. A section opens at the first line of a command reached
//! for the first time: a loop's later rounds open none (see `docs/language.md`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use conveyor_core::protocol::{JobSpec, ScriptSource};
use conveyor_core::script::commands::{self, LineKind};

use super::Log;

/// What one job's markers and messages are read against.
pub(crate) struct Commands {
    /// `\x1e` and the job's nonce, then a space: where a marker starts.
    prefix: Vec<u8>,
    /// How bash starts a message about a line of the wrapper: `/…/run.sh: line `.
    run_sh: String,
    /// Lines of the wrapper before the script's first.
    offset: usize,
    file: Option<String>,
    /// The script's source line of each of its lines, when known.
    source_lines: Vec<u32>,
    /// The script as written, by line, and how each line begins.
    text: Vec<String>,
    kinds: Vec<LineKind>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The first line (of the script) of the command whose section is open.
    section: usize,
    /// The status and script line of the last command that failed (the ERR trap's).
    failed: Option<(i32, usize)>,
}

impl Commands {
    pub fn new(spec: &JobSpec, nonce: &str, run_sh: &str, offset: usize) -> Self {
        let (file, text, source_lines) = match &spec.script_source {
            Some(ScriptSource { file, text, lines }) => {
                (Some(file.clone()), text.as_str(), lines.clone())
            }
            None => (None, spec.script.as_str(), Vec::new()),
        };
        Self {
            prefix: format!("\x1e{nonce} ").into_bytes(),
            run_sh: format!("{run_sh}: line "),
            offset,
            file,
            source_lines,
            text: text.split('\n').map(str::to_string).collect(),
            kinds: commands::line_kinds(text),
            state: Mutex::default(),
        }
    }

    /// Where a marker starts in `line`, if it holds one.
    pub fn find_marker(&self, line: &[u8]) -> Option<usize> {
        line.iter()
            .enumerate()
            .filter(|(_, b)| **b == 0x1e)
            .map(|(i, _)| i)
            .find(|&i| line[i..].starts_with(&self.prefix))
    }

    /// Acts on the marker at the start of `marker`: a command's line, or a failure.
    pub fn marker(&self, marker: &[u8], log: &Log) {
        let body = String::from_utf8_lossy(&marker[self.prefix.len()..]);
        let mut words = body.split(' ');
        let (kind, a, b) = (words.next(), words.next(), words.next());
        match (kind, a.and_then(|a| a.parse::<i64>().ok())) {
            (Some("C"), Some(line)) => self.started(line, b.and_then(epoch_ms), log),
            (Some("E"), Some(status)) => {
                if let Some(line) = b.and_then(|b| b.parse::<usize>().ok()) {
                    self.lock().failed = self.script_line(line).map(|n| (status as i32, n));
                }
            }
            _ => {}
        }
    }

    /// Bash's report that `run.sh` line `line` is about to run: a command line if it opens
    /// a new section.
    fn started(&self, line: i64, at: Option<i64>, log: &Log) {
        let Some(n) = usize::try_from(line).ok().and_then(|l| self.script_line(l)) else {
            return;
        };
        let Some((first, text)) = self.command(n) else {
            return;
        };
        {
            let mut state = self.lock();
            if first <= state.section {
                return;
            }
            state.section = first;
        }
        let mut labels = BTreeMap::from([("kind".to_string(), "command".to_string())]);
        if let Some(source) = self.source(first) {
            labels.insert("source".to_string(), source);
        }
        log.command(format!("$ {text}"), labels, at);
    }

    /// The script line of `run.sh` line `line`, if it is one.
    fn script_line(&self, line: usize) -> Option<usize> {
        line.checked_sub(self.offset)
            .filter(|n| (1..=self.text.len()).contains(n))
    }

    fn command(&self, n: usize) -> Option<(usize, String)> {
        let lines: Vec<&str> = self.text.iter().map(String::as_str).collect();
        commands::command_at(&lines, &self.kinds, n)
    }

    /// `FILE:LINE` of script line `n`.
    fn source(&self, n: usize) -> Option<String> {
        let line = self.source_lines.get(n.checked_sub(1)?)?;
        Some(format!("{}:{line}", self.file.as_deref()?))
    }

    /// Bash's message about a line of `run.sh` told against the user's file:
    /// `…/run.sh: line 5: x: command not found` → `.conveyor.yml:14: x: command not found`.
    pub fn rewrite(&self, line: &[u8]) -> Option<String> {
        let rest = line.strip_prefix(self.run_sh.as_bytes())?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let message = rest[digits..].strip_prefix(b":")?;
        let n: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        let source = self.source(self.script_line(n)?)?;
        Some(format!("{source}:{}", String::from_utf8_lossy(message)))
    }

    /// The line that says the script failed — `what` it did (`failed with exit status 2`),
    /// with `status` when it exited: its text and labels.
    pub fn failure(&self, what: &str, status: Option<i32>) -> (String, BTreeMap<String, String>) {
        let state = self.lock();
        let line = match state.failed {
            Some((failed, n)) if Some(failed) == status => Some(n),
            _ => (state.section > 0).then_some(state.section),
        };
        drop(state);
        let mut labels = BTreeMap::from([("kind".to_string(), "error".to_string())]);
        let Some((first, text)) = line.and_then(|n| self.command(n)) else {
            return (format!("✗ the script {what}"), labels);
        };
        let text = match self.source(first) {
            Some(source) => {
                let said = format!("✗ `{text}` {what} ({source})");
                labels.insert("source".to_string(), source);
                said
            }
            None => format!("✗ `{text}` {what}"),
        };
        (text, labels)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the epoch from bash's `$EPOCHREALTIME` (`1700000000.123456`, with the
/// locale's decimal point); `None` when bash is too old to have it.
fn epoch_ms(text: &str) -> Option<i64> {
    let text = text.trim_end();
    let (secs, frac) = text.split_once(['.', ',']).unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let millis: String = frac.chars().chain("000".chars()).take(3).collect();
    Some(secs * 1000 + millis.parse::<i64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_times_read_as_milliseconds() {
        assert_eq!(epoch_ms("1700000000.123456"), Some(1_700_000_000_123));
        assert_eq!(epoch_ms("1700000000,5\n"), Some(1_700_000_000_500));
        assert_eq!(epoch_ms(""), None);
    }
}
