//! A succeeded run's outputs: the declared ones the wrapper's trap wrote to `outputs.bin`,
//! then the `KEY=VALUE` lines of `$CONVEYOR_OUTPUT` (which may add and override), then
//! `STDOUT`, the tail of the job's stdout.

use std::collections::BTreeMap;
use std::io;

use conveyor_core::protocol::JobSpec;

use super::ExecError;
use super::workspace::Workspace;

pub(crate) const STDOUT: &str = "STDOUT";

pub(crate) struct Collected {
    pub values: BTreeMap<String, String>,
    /// Outputs were declared but the trap never wrote them: the script set its own EXIT trap.
    pub trap_replaced: bool,
}

pub(crate) async fn collect(
    spec: &JobSpec,
    ws: &Workspace,
    stdout_tail: &[u8],
) -> Result<Collected, ExecError> {
    let owner = ws.user.as_ref().map(|u| u.uid);
    let (bin, env) = (ws.outputs_bin(), ws.output_env());
    // Both files in one trip off the runtime: each trip wakes a thread, which costs a quick
    // job more than the reads.
    let read = tokio::task::spawn_blocking(move || {
        let declared = read_job_file(&bin, owner, "the declared outputs' file")?;
        // The job may have deleted it; that only loses its own lines.
        let env_file = read_job_file(&env, owner, "$CONVEYOR_OUTPUT")?;
        Ok((declared, env_file))
    })
    .await
    .unwrap_or_else(|e| {
        Err(ExecError::Io {
            what: "reading the job's outputs",
            source: io::Error::other(e.to_string()),
        })
    });
    let (declared, env_file) = read?;
    let mut values = BTreeMap::new();
    let trap_replaced = declared.is_none() && !spec.outputs.is_empty();
    values.extend(nul_pairs(&declared.unwrap_or_default()));
    values.extend(env_lines(&env_file.unwrap_or_default()));
    values.insert(STDOUT.to_string(), stdout_value(stdout_tail));
    Ok(Collected {
        values,
        trap_replaced,
    })
}

/// A file the job wrote, `None` if it is not there. The job may have put anything at that
/// path, and the runner reads with its own rights: a symbolic link to
/// `/proc/<runner>/environ` would hand the job the runner's credentials as outputs, a fifo
/// would hang the runner. So only a plain file (of the job user, when there is one) is read.
fn read_job_file(
    path: &std::path::Path,
    owner: Option<u32>,
    what: &'static str,
) -> Result<Option<Vec<u8>>, ExecError> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let io = |source| ExecError::Io {
        what: "reading the job's outputs",
        source,
    };
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW's answer to a symbolic link.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(ExecError::OutputFile { what });
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() || owner.is_some_and(|uid| meta.uid() != uid) {
        return Err(ExecError::OutputFile { what });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(Some(bytes))
}

/// `NAME\0VALUE\0` pairs; an unfinished pair at the end is dropped.
pub(crate) fn nul_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let complete = bytes.iter().rposition(|&b| b == 0).unwrap_or(0);
    let mut fields = bytes[..complete].split(|&b| b == 0);
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if name.is_empty() {
            break;
        }
        pairs.push((lossy(name), lossy(value)));
    }
    pairs
}

/// `KEY=VALUE` lines, split at the first `=`; lines whose key is not a variable name are
/// ignored. Later lines come later, so they win when collected into a map.
pub(crate) fn env_lines(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let eq = line.iter().position(|&b| b == b'=')?;
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            is_var_name(key).then(|| (lossy(key), lossy(value)))
        })
        .collect()
}

/// The tail as text: started at a character boundary, one trailing newline trimmed.
pub(crate) fn stdout_value(tail: &[u8]) -> String {
    let start = tail
        .iter()
        .take(3)
        .take_while(|&&b| b & 0b1100_0000 == 0b1000_0000)
        .count();
    let text = &tail[start..];
    lossy(text.strip_suffix(b"\n").unwrap_or(text))
}

fn is_var_name(key: &[u8]) -> bool {
    key.first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last `cap` bytes written to a stream.
pub(crate) struct Tail {
    cap: usize,
    buf: Vec<u8>,
}

impl Tail {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buf: Vec::new(),
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.cap == 0 {
            return;
        }
        self.buf.extend_from_slice(bytes);
        // Trim only when twice over, so trimming costs O(1) per byte written.
        if self.buf.len() > self.cap.saturating_mul(2) {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        let excess = self.buf.len().saturating_sub(self.cap);
        self.buf.drain(..excess);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nul_pairs_keep_every_byte_but_nul() {
        let bytes = b"A\0line one\nline two\t'\"$(x)`y`\0B\0\0C\0unfinished";
        assert_eq!(
            nul_pairs(bytes),
            pairs(&[("A", "line one\nline two\t'\"$(x)`y`"), ("B", "")])
        );
    }

    #[test]
    fn env_lines_split_at_the_first_equals_and_skip_bad_keys() {
        let bytes = b"A=1\nB=x=y\n1X=no\nbad-key=no\n=no\nnoequals\n_c9=\nA=2";
        assert_eq!(
            env_lines(bytes),
            pairs(&[("A", "1"), ("B", "x=y"), ("_c9", ""), ("A", "2")])
        );
    }

    #[test]
    fn the_stdout_value_starts_at_a_character_and_loses_one_newline() {
        assert_eq!(stdout_value(b"done\n\n"), "done\n");
        assert_eq!(stdout_value("\u{fc}ber\n".as_bytes()), "\u{fc}ber");
        assert_eq!(stdout_value(&"\u{fc}ber\n".as_bytes()[1..]), "ber");
        assert_eq!(stdout_value(&"\u{1f600}!".as_bytes()[1..]), "!");
        assert_eq!(stdout_value(b""), "");
    }

    #[test]
    fn a_tail_keeps_the_last_bytes() {
        let mut tail = Tail::new(4);
        for chunk in [&b"abc"[..], b"defgh", b"ij", b"k"] {
            tail.push(chunk);
        }
        assert_eq!(tail.into_bytes(), b"hijk");
        let mut none = Tail::new(0);
        none.push(b"abc");
        assert!(none.into_bytes().is_empty());
    }
}
