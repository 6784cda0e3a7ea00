//! The wrapper `run.sh`: the job waiting to be moved into its cgroup, an EXIT trap that
//! records the declared outputs, then the user's script verbatim.
//!
//! The trap runs only on success (status 0) and writes `NAME\0VALUE\0` pairs: bash values
//! cannot hold NUL, so every other byte — newlines, quotes, `$(…)` — arrives as it was. Values
//! are expanded once, inside double quotes, and never evaluated; only a configured `word` is
//! shell syntax, because the job's author wrote it as such.

use std::path::Path;
use std::process::Stdio;

use conveyor_core::model::Output;
use conveyor_core::protocol::JobSpec;
use tokio::process::Command;

use super::ExecError;
use super::workspace::Workspace;

/// Writes `run.sh`, after checking that the trap parses. With `in_cgroup`, the job is
/// moved into its cgroup before anything runs. Returns how many of its lines come before
/// the user's script.
pub(crate) async fn write(
    spec: &JobSpec,
    ws: &Workspace,
    in_cgroup: bool,
    nonce: &str,
) -> Result<usize, ExecError> {
    let trap = trap(&spec.outputs, &ws.outputs_bin())?;
    check_syntax(&trap, &spec.outputs).await?;
    let wait = if in_cgroup { WAIT_FOR_CGROUP } else { "" };
    let head = format!("{wait}{trap}");
    let (text, offset) = wrap(&head, &spec.script, nonce);
    let io = |what| move |source| ExecError::Io { what, source };
    overwrite(&ws.run_script(), text.as_bytes()).map_err(io("writing the job's wrapper script"))?;
    Ok(offset)
}

/// Writes `bytes` over the file at `path` (made if missing) in place, on the runtime's own
/// thread. The slot's `run.sh` is rewritten for every run: truncating it to nothing frees
/// its block and the write takes a new one, and sending the write to a blocking thread
/// wakes that thread; on the 2-core machine of `docs/benchmarks.md` the two made this write
/// cost 0.3 ms of a quick job's 4. Written over and cut to length, a script of the size the
/// last one had keeps its block, and the write is a few microseconds of page cache.
fn overwrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_len(bytes.len() as u64)
}

/// `head`, the command markers (see [`super::commands`]) and `script`; and the number of
/// lines before the script's first. Only the script's own top level reports: bash runs no
/// DEBUG trap in functions or sourced files, and under `set -T`, which makes it, the marker
/// function returns unless it was called from the top level.
fn wrap(head: &str, script: &str, nonce: &str) -> (String, usize) {
    let offset = head.matches('\n').count() + 3;
    let debug = if mentions_xtrace(script) {
        // `set -x` would trace the check before every command: it goes to /dev/null.
        "{ ((LINENO<=__conveyor_l))||__conveyor_c $LINENO; } 2>/dev/null"
    } else {
        "((LINENO<=__conveyor_l))||__conveyor_c $LINENO"
    };
    let text = format!(
        "{head}command exec {fd}>&1; __conveyor_l={offset}\n\
         __conveyor_c() {{ (( ${{#FUNCNAME[@]}} == 2 )) || return 0; __conveyor_l=$1; builtin printf '\\036{nonce} C %s %s\\n' \"$1\" \"${{EPOCHREALTIME-}}\" >&{fd} || :; }} 2>/dev/null\n\
         builtin trap '{{ builtin printf \"\\036{nonce} E %s %s\\n\" \"$?\" \"$LINENO\" >&{fd} || :; }} 2>/dev/null' ERR; builtin trap '{debug}' DEBUG\n\
         {script}\n",
        fd = MARKER_FD,
    );
    (text, offset)
}

/// The descriptor the job's bash writes its command markers to: a copy of its stdout made
/// before the script runs, so a script that sends its output elsewhere (`exec >file`) still
/// reports its commands, in order with what it prints. High, to stay out of a script's way.
pub(crate) const MARKER_FD: u32 = 62;

/// Whether the script may turn on `set -x` (`set -x`, `set -ex`, `set -o xtrace`).
fn mentions_xtrace(script: &str) -> bool {
    script.contains("xtrace")
        || script.match_indices("set ").any(|(i, _)| {
            script[i + 4..]
                .trim_start()
                .split(|c: char| c.is_whitespace() || c == ';')
                .next()
                .is_some_and(|flags| {
                    (flags.starts_with('-') || flags.starts_with('+')) && flags.contains('x')
                })
        })
}

/// The job's bash waits, before it runs a single command, for the runner to move it into
/// the job's cgroup and say so with a line on its stdin; so nothing it starts is ever
/// outside (the runner cannot move it between fork and exec without unsafe code, and
/// moving it while it runs would race the script's first fork). Then its stdin is
/// `/dev/null`, as a job's always is. End of file instead of the line means the runner died
/// before it could contain the job: the job does not run. It shares the first line with
/// what follows, so the user's line numbers stay as they were.
const WAIT_FOR_CGROUP: &str =
    "builtin read -r __conveyor_go || builtin exit 125; command exec </dev/null; ";

/// The trap function and its installation, ending in a newline.
///
/// It saves `$?` first, then turns off the options that could make it exit early or noisily
/// (`-e`, `-u`, `-x`, `pipefail`) and writes with `>|` in case the script set `noclobber`;
/// `builtin` keeps the script's own functions from standing in for printf, trap or exit.
pub(crate) fn trap(outputs: &[Output], outputs_bin: &Path) -> Result<String, ExecError> {
    // Nothing to record: no trap, and no file (every inode a job creates costs at scale).
    if outputs.is_empty() {
        return Ok(String::new());
    }
    let mut body = String::new();
    for Output { name, word } in outputs {
        if !is_var_name(name) {
            return Err(ExecError::Output {
                name: name.clone(),
                reason: "its name is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"
                    .to_string(),
            });
        }
        match word {
            None => body.push_str(&format!(
                "builtin printf '%s\\0' '{name}' \"${{{name}-}}\"\n"
            )),
            Some(word) => {
                if word.contains(['\n', '\r', '\0']) {
                    return Err(ExecError::Output {
                        name: name.clone(),
                        reason: format!("its word `{word}` spans lines; write it on one line"),
                    });
                }
                // The blank line ends the assignment even if the word ends in a backslash.
                body.push_str(&format!(
                    "__conveyor_w={word}\n\nbuiltin printf '%s\\0' '{name}' \"$__conveyor_w\"\n"
                ));
            }
        }
    }
    if body.is_empty() {
        // An empty `{ }` is a syntax error; the file is still written, as proof the trap ran.
        body.push_str("builtin :\n");
    }
    let path = single_quote(&outputs_bin.to_string_lossy());
    Ok(format!(
        "__conveyor_exit() {{\n\
         __conveyor_status=$?\n\
         {{ builtin set +eux +o pipefail; }} 2>/dev/null\n\
         builtin trap - EXIT ERR\n\
         if (( __conveyor_status == 0 )); then\n\
         {{\n{body}}} >| {path}\n\
         fi\n\
         builtin exit \"$__conveyor_status\"\n\
         }}\n\
         builtin trap __conveyor_exit EXIT\n"
    ))
}

/// A word with unbalanced quotes would otherwise make bash reject the whole wrapper with a
/// message about a line of a file the author never wrote. Bare names cannot break it.
async fn check_syntax(trap: &str, outputs: &[Output]) -> Result<(), ExecError> {
    if outputs.iter().all(|o| o.word.is_none()) || parse_error(trap).await?.is_none() {
        return Ok(());
    }
    for Output { name, word } in outputs {
        let Some(word) = word else { continue };
        if let Some(detail) = parse_error(&format!("__conveyor_w={word}\n\n")).await? {
            return Err(ExecError::Output {
                name: name.clone(),
                reason: format!("its word `{word}` is not valid shell ({detail})"),
            });
        }
    }
    Ok(())
}

/// Bash's first complaint about `text`, if it does not parse.
async fn parse_error(text: &str) -> Result<Option<String>, ExecError> {
    // Parsed, never run; still, nothing of the runner's environment is for it.
    let output = Command::new(super::process::bash())
        // So its messages start `bash: -c:`, as `parse_error` expects.
        .arg0("bash")
        .args(["-n", "-c", text])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ExecError::BashMissing,
            _ => ExecError::Spawn(e),
        })?;
    if output.status.success() {
        return Ok(None);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or("bash rejected it");
    let first = first.strip_prefix("bash: -c: ").unwrap_or(first);
    let first = match first.split_once(": ") {
        Some((line, rest)) if line.starts_with("line ") => rest,
        _ => first,
    };
    Ok(Some(first.to_string()))
}

fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(name: &str, word: Option<&str>) -> Output {
        Output {
            name: name.to_string(),
            word: word.map(str::to_string),
        }
    }

    #[test]
    fn the_trap_prints_bare_names_and_assigns_words() {
        let text = trap(
            &[out("A", None), out("B", Some("$V"))],
            Path::new("/w/it's/outputs.bin"),
        )
        .unwrap();
        assert!(text.contains("builtin printf '%s\\0' 'A' \"${A-}\"\n"));
        assert!(text.contains("__conveyor_w=$V\n\nbuiltin printf '%s\\0' 'B' \"$__conveyor_w\"\n"));
        assert!(text.contains("} >| '/w/it'\\''s/outputs.bin'\n"));
        assert!(text.ends_with("builtin trap __conveyor_exit EXIT\n"));
    }

    #[test]
    fn an_output_name_that_is_not_a_variable_is_refused() {
        let err = trap(&[out("a-b", None)], Path::new("/o")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "output `a-b` cannot be recorded: its name is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"
        );
    }

    #[test]
    fn a_word_spanning_lines_is_refused() {
        let err = trap(&[out("A", Some("a\nb"))], Path::new("/o")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "output `A` cannot be recorded: its word `a\nb` spans lines; write it on one line"
        );
    }
}
