//! The script: outputs from variables, words, `$CONVEYOR_OUTPUT` and stdout; its
//! environment; exit statuses, signals, timeout and cancel; logs in order.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use conveyor_core::protocol::{Outcome, Stream};
use conveyor_runner::executor::execute;
use tokio::sync::{mpsc, watch};

use crate::{TestDir, assert_gone_soon, env, map, output, run, spec, texts};

#[tokio::test]
async fn outputs_come_from_variables_words_the_output_file_and_stdout() {
    let dir = TestDir::new("outputs");
    let mut s = spec(
        r#"NOT_EXPORTED="plain value"
export GEM_VERSION=1.2.3
OVERRIDDEN=declared
echo "EXTRA=from file" >> "$CONVEYOR_OUTPUT"
echo "OVERRIDDEN=from file" >> "$CONVEYOR_OUTPUT"
echo "LATER=1" >> "$CONVEYOR_OUTPUT"
echo "LATER=2=two" >> "$CONVEYOR_OUTPUT"
echo "not-a-key=ignored" >> "$CONVEYOR_OUTPUT"
echo first
echo done"#,
    );
    s.outputs = vec![
        output("NOT_EXPORTED", None),
        output("VERSION", Some("$GEM_VERSION")),
        output("AMI", Some("ror_ami.json")),
        output("UNSET", None),
        output("OVERRIDDEN", None),
    ];
    let (result, _) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.error, None);
    assert_eq!(
        result.outputs,
        map(&[
            ("NOT_EXPORTED", "plain value"),
            ("VERSION", "1.2.3"),
            ("AMI", "ror_ami.json"),
            ("UNSET", ""),
            ("OVERRIDDEN", "from file"),
            ("EXTRA", "from file"),
            ("LATER", "2=two"),
            ("STDOUT", "first\ndone"),
        ])
    );
}

#[tokio::test]
async fn the_stdout_output_is_the_tail_cut_at_a_character_boundary() {
    let dir = TestDir::new("tail");
    let mut cfg = dir.config();
    cfg.stdout_tail_bytes = 5;
    // "über\n" is 6 bytes; the last 5 start inside the "ü".
    let (result, _) = run(&spec("printf 'zzz\\n\\303\\274ber\\n'"), &cfg).await;
    assert_eq!(result.outputs, map(&[("STDOUT", "ber")]));
    cfg.stdout_tail_bytes = 6;
    let (result, _) = run(&spec("printf 'zzz\\n\\303\\274ber\\n'"), &cfg).await;
    assert_eq!(result.outputs, map(&[("STDOUT", "\u{fc}ber")]));
}

#[tokio::test]
async fn a_hostile_value_arrives_byte_exact_and_nothing_in_it_runs() {
    let dir = TestDir::new("hostile");
    let pwned = dir.path("PWNED");
    let pwned2 = dir.path("PWNED2");
    let hostile = format!(
        "a $(touch {}) `touch {}` 'single' \"double\"\ttab\nnew line \\ end $HOME",
        pwned.display(),
        pwned2.display()
    );
    let mut s = spec(r#"ECHOED="$(printf '%s' "$HOSTILE")""#);
    s.env = env(&[("HOSTILE", &hostile)]);
    s.outputs = vec![output("ECHOED", None), output("WORD", Some("$HOSTILE"))];
    let (result, _) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(result.outputs["ECHOED"], hostile);
    assert_eq!(result.outputs["WORD"], hostile);
    assert!(!pwned.exists() && !pwned2.exists());
}

#[tokio::test]
async fn the_spec_environment_reaches_the_script_with_conveyor_variables() {
    let dir = TestDir::new("env");
    let mut s = spec(
        r#"echo "greeting=$GREETING"
echo "other=$OTHER"
echo "cargo=${CARGO_PKG_NAME-unset}"
test ! -e "$CONVEYOR_OUTPUT" && test -d "$(dirname "$CONVEYOR_OUTPUT")" && echo "output file is created on first write"
case "$CONVEYOR_OUTPUT" in "$CONVEYOR_WORKSPACE"/*) echo "output inside workspace" ;; esac
test "$(pwd)" = "$CONVEYOR_WORKSPACE" && echo "cwd is the workspace"
test -n "$PATH" && echo "path is set""#,
    );
    s.env = env(&[("GREETING", "hello"), ("OTHER", "x"), ("GREETING", "hi")]);
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(
        texts(&lines, Stream::Stdout),
        [
            "greeting=hi",
            "other=x",
            "cargo=unset",
            "output file is created on first write",
            "cwd is the workspace",
            "path is set",
        ]
    );
}

#[tokio::test]
async fn a_failing_command_fails_the_run_with_its_exit_code_and_no_outputs() {
    let dir = TestDir::new("failing");
    let mut s = spec(
        "VALUE=1\necho \"EXTRA=1\" >> \"$CONVEYOR_OUTPUT\"\necho before\n(exit 7)\necho after",
    );
    s.outputs = vec![output("VALUE", None)];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.exit_code, Some(7));
    assert_eq!(result.outputs, BTreeMap::new());
    assert_eq!(result.error, None);
    assert_eq!(texts(&lines, Stream::Stdout), ["before"]);
    let failure = lines.last().expect("a failure line");
    assert_eq!(failure.text, "✗ `(exit 7)` failed with exit status 7");
    assert_eq!(
        failure.labels.get("kind").map(String::as_str),
        Some("error")
    );
}

#[tokio::test]
async fn a_failure_on_the_left_of_a_pipe_fails_the_run() {
    let dir = TestDir::new("pipefail");
    let (result, _) = run(&spec("false | true\necho unreachable"), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.exit_code, Some(1));
}

#[tokio::test]
async fn a_script_killed_by_a_signal_fails_without_an_exit_code() {
    let dir = TestDir::new("signal");
    let (result, lines) = run(&spec("kill -TERM $$"), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.exit_code, None);
    let failure = lines.last().expect("a failure line");
    assert_eq!(
        failure.text,
        "✗ `kill -TERM $$` was killed by signal SIGTERM"
    );
    assert_eq!(
        failure.labels.get("kind").map(String::as_str),
        Some("error")
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group_promptly() {
    let dir = TestDir::new("timeout");
    let pid_file = dir.path("bg.pid");
    let mut s = spec("sleep 30 &\necho $! > \"$PID_FILE\"\nsleep 30");
    s.env = env(&[("PID_FILE", &pid_file.to_string_lossy())]);
    s.timeout_secs = Some(1);
    let started = Instant::now();
    let (result, lines) = run(&s, &dir.config()).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(result.outcome, Outcome::TimedOut);
    assert_eq!(result.exit_code, None);
    assert_eq!(texts(&lines, Stream::System), ["timed out after 1s"]);
    assert_gone_soon(std::fs::read_to_string(&pid_file).unwrap().trim());
}

#[tokio::test]
async fn cancelling_kills_the_whole_process_group_promptly() {
    let dir = TestDir::new("cancel");
    let pid_file = dir.path("bg.pid");
    let mut s = spec("sleep 30 &\necho $! > \"$PID_FILE\"\necho started\nsleep 30");
    s.env = env(&[("PID_FILE", &pid_file.to_string_lossy())]);
    let cfg = dir.config();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let started = Instant::now();
    let job = tokio::spawn(async move { execute(&s, &cfg, tx, cancel_rx).await });
    let mut lines = Vec::new();
    while let Some(line) = rx.recv().await {
        let go = line.text == "started";
        lines.push(line);
        if go {
            cancel_tx.send(true).unwrap();
        }
    }
    let result = job.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert_eq!(result.exit_code, None);
    assert_eq!(texts(&lines, Stream::System), ["cancelled"]);
    assert_gone_soon(std::fs::read_to_string(&pid_file).unwrap().trim());
}

#[tokio::test]
async fn logs_arrive_in_order_on_their_streams() {
    let dir = TestDir::new("logs");
    let script = "echo one\necho 'two  with  spaces' >&2\necho three\necho four >&2\nprintf 'last without newline'";
    let (result, lines) = run(&spec(script), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(
        texts(&lines, Stream::Stdout),
        ["one", "three", "last without newline"]
    );
    assert_eq!(texts(&lines, Stream::Stderr), ["two  with  spaces", "four"]);
    assert!(
        texts(&lines, Stream::System).is_empty(),
        "a success adds no system line"
    );
}

#[tokio::test]
async fn an_output_word_that_does_not_parse_is_reported_before_the_script_runs() {
    let dir = TestDir::new("bad-word");
    let mut s = spec("echo ran");
    s.outputs = vec![output("OK", None), output("BAD", Some("\"unclosed"))];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(
        result.error.as_deref(),
        Some(
            "output `BAD` cannot be recorded: its word `\"unclosed` is not valid shell (unexpected EOF while looking for matching `\"')"
        )
    );
    assert!(texts(&lines, Stream::Stdout).is_empty());
}

#[tokio::test]
async fn a_script_that_replaces_the_exit_trap_is_told_its_outputs_were_lost() {
    let dir = TestDir::new("trap");
    let mut s = spec("trap 'echo bye' EXIT\nVALUE=1");
    s.outputs = vec![output("VALUE", None)];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(result.outputs, map(&[("STDOUT", "bye")]));
    assert_eq!(
        texts(&lines, Stream::System),
        [
            "the declared outputs were not recorded: the script replaced conveyor's EXIT trap; \
             append them to $CONVEYOR_OUTPUT instead",
        ]
    );
}

#[tokio::test]
async fn the_bash_that_runs_a_job_is_the_runners_even_when_the_job_empties_path() {
    let dir = TestDir::new("no-bash");
    let mut s = spec("echo ran; echo \"path=$PATH\"");
    s.env = env(&[("PATH", &dir.path("empty").to_string_lossy())]);
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    let path = format!("path={}", dir.path("empty").to_string_lossy());
    assert_eq!(texts(&lines, Stream::Stdout), ["ran", path.as_str()]);
}

#[tokio::test]
async fn a_process_that_left_the_group_cannot_hold_the_run_open() {
    let dir = TestDir::new("setsid");
    let pid_file = dir.path("escaped.pid");
    // The escapee writes its pid only once it is in its own session, and the script waits.
    let mut s = spec(
        "setsid bash -c 'echo $$ > \"$PID_FILE\"; exec sleep 30' &\n\
         until test -s \"$PID_FILE\"; do sleep 0.01; done\n\
         echo left",
    );
    s.env = env(&[("PID_FILE", &pid_file.to_string_lossy())]);
    let started = Instant::now();
    let (result, lines) = run(&s, &dir.config()).await;
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let _ = Command::new("kill").arg(pid.trim()).status();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(texts(&lines, Stream::Stdout), ["left"]);
}
