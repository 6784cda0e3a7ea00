//! The job's commands in its log: a `kind=command` line as each top-level command starts,
//! stamped and located in the user's `.conveyor.yml`; bash's messages and the failure told
//! against that file; references shown as written, never their values.

use conveyor_core::compile::compile;
use conveyor_core::protocol::{JobSpec, LogLine, Outcome, Stream};

use crate::{TestDir, env, output, run, spec, texts};

/// The spec of job `build` of the first belt of `yaml`, compiled as `.conveyor.yml`.
fn compiled(yaml: &str) -> JobSpec {
    let c = compile(".conveyor.yml", yaml);
    let product = c.product.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    let job = product.belts[0]
        .jobs
        .iter()
        .find(|j| j.name == "build")
        .expect("a job named build")
        .clone();
    let mut s = spec(&job.script);
    s.script_source = job.script_source;
    s.outputs = job.outputs;
    s
}

fn labelled<'a>(lines: &'a [LogLine], kind: &str) -> Vec<&'a LogLine> {
    lines
        .iter()
        .filter(|l| l.labels.get("kind").map(String::as_str) == Some(kind))
        .collect()
}

fn command_texts(lines: &[LogLine]) -> Vec<&str> {
    labelled(lines, "command")
        .into_iter()
        .map(|l| l.text.as_str())
        .collect()
}

fn shown(lines: &[&LogLine]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            let source = l.labels.get("source").cloned().unwrap_or_default();
            (l.text.clone(), source)
        })
        .collect()
}

const SEVERAL: &str = "\
product: p
belts:
  - name: main
    jobs:
      - name: build
        pre-run: echo preparing
        commands: |
          echo one
          # a comment
          sleep 0.02; echo two

          make_it() { echo made; }
          make_it \\
            --all
          echo \"a string
          over lines\"
";

#[tokio::test]
async fn each_top_level_command_is_a_stamped_line_located_in_the_yaml() {
    let dir = TestDir::new("commands");
    let (result, lines) = run(&compiled(SEVERAL), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    let commands = labelled(&lines, "command");
    assert_eq!(
        shown(&commands),
        [
            ("$ echo preparing", ".conveyor.yml:6"),
            ("$ echo one", ".conveyor.yml:8"),
            ("$ sleep 0.02; echo two", ".conveyor.yml:10"),
            ("$ make_it --all", ".conveyor.yml:13"),
            ("$ echo \"a string over lines\"", ".conveyor.yml:15"),
        ]
        .map(|(t, s)| (t.to_string(), s.to_string()))
    );
    let at: Vec<i64> = commands.iter().map(|l| l.at.expect("stamped")).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    // `sleep` runs between the third command and the fourth.
    assert!(at[3] > at[2], "{at:?}");
    assert!(lines.iter().all(|l| l.at.is_some()), "{lines:?}");
    // Each command's output follows its line.
    let order: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let pos = |t: &str| order.iter().position(|l| *l == t).expect(t);
    assert!(pos("$ echo one") < pos("one") && pos("one") < pos("$ sleep 0.02; echo two"));
    assert!(pos("two") < pos("$ make_it --all") && pos("$ make_it --all") < pos("made"));
}

#[tokio::test]
async fn a_loop_of_a_thousand_rounds_opens_its_sections_once() {
    let dir = TestDir::new("loop");
    let s = spec("for i in $(seq 1000); do\n  echo \"round $i\"\n  : \"$i\"\ndone\necho end");
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    let commands = command_texts(&lines);
    assert_eq!(
        commands,
        [
            "$ for i in $(seq 1000); do",
            "$ echo \"round $i\"",
            "$ : \"$i\"",
            "$ echo end"
        ]
    );
    assert_eq!(texts(&lines, Stream::Stdout).len(), 1001);
    // Without a source, a command line names none.
    assert!(
        labelled(&lines, "command")
            .iter()
            .all(|l| !l.labels.contains_key("source"))
    );
}

const FAILING: &str = "\
product: p
belts:
  - name: main
    jobs:
      - name: build
        commands:
          - echo fine
          - |
            for f in a b; do
              test $f = a
            done
          - nosuchcommand --flag
          - echo never
";

#[tokio::test]
async fn a_failure_is_named_by_its_command_status_and_yaml_line() {
    let dir = TestDir::new("failure");
    let mut s = compiled(FAILING);
    // A failure in the loop's second round: the line of the command that failed.
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.exit_code, Some(1));
    assert_eq!(
        shown(&labelled(&lines, "error")),
        [(
            "✗ `test $f = a` failed with exit status 1 (.conveyor.yml:10)".to_string(),
            ".conveyor.yml:10".to_string()
        )]
    );
    s.script = s.script.replace("test $f = a", "test $f");
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.exit_code, Some(127));
    let stderr = texts(&lines, Stream::Stderr);
    assert_eq!(
        stderr,
        [".conveyor.yml:12: nosuchcommand: command not found"],
        "{lines:?}"
    );
    let errors = shown(&labelled(&lines, "error"));
    assert_eq!(
        errors,
        [(
            "✗ `nosuchcommand --flag` failed with exit status 127 (.conveyor.yml:12)".to_string(),
            ".conveyor.yml:12".to_string()
        )]
    );
    // The failure is the last line, after everything the script printed.
    assert_eq!(
        lines.last().map(|l| l.text.as_str()),
        Some(errors[0].0.as_str())
    );
}

#[tokio::test]
async fn a_command_shows_its_references_as_written_never_their_values() {
    let dir = TestDir::new("refs");
    let yaml = "\
product: p
belts:
  - name: main
    jobs:
      - name: lib
        outputs: [VERSION]
        commands: VERSION=1
      - name: build
        inputs: [lib]
        secrets: [TOKEN]
        commands: |
          echo \"v=${lib.VERSION}\" {{ lib.VERSION }}
          curl_like --token \"$TOKEN\" || true
";
    let mut s = compiled(yaml);
    s.env = env(&[
        ("CONVEYOR_REF_1", "v-hidden-9876"),
        ("TOKEN", "s3cr3t-value"),
    ]);
    s.secrets = vec!["TOKEN".into()];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    let commands = command_texts(&lines);
    assert_eq!(
        commands,
        [
            "$ echo \"v=${lib.VERSION}\" {{ lib.VERSION }}",
            "$ curl_like --token \"$TOKEN\" || true"
        ]
    );
    assert_eq!(
        texts(&lines, Stream::Stdout),
        ["v=v-hidden-9876 v-hidden-9876"]
    );
    for line in labelled(&lines, "command") {
        assert!(!line.text.contains("hidden") && !line.text.contains("s3cr3t"));
    }
}

#[tokio::test]
async fn outputs_user_traps_and_xtrace_still_work() {
    let dir = TestDir::new("traps");
    let mut s = spec(
        "trap 'echo user-exit-trap' EXIT\nset -x\nVALUE=42\nprintf partial\necho rest\nset +x\nfalse || echo handled",
    );
    s.outputs = vec![output("VALUE", None)];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(
        texts(&lines, Stream::Stdout),
        ["partialrest", "handled", "user-exit-trap"]
    );
    // The trace shows the user's commands, not conveyor's.
    assert_eq!(
        texts(&lines, Stream::Stderr),
        ["+ VALUE=42", "+ printf partial", "+ echo rest", "+ set +x"]
    );
    assert_eq!(labelled(&lines, "command").len(), 7, "{lines:?}");
    // The user's EXIT trap replaced conveyor's, which says so.
    assert!(
        texts(&lines, Stream::System)
            .iter()
            .any(|t| t.contains("replaced conveyor's EXIT trap"))
    );

    let mut s = spec("set -x\nVALUE=42\necho done");
    s.outputs = vec![output("VALUE", None)];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_eq!(result.outputs.get("VALUE").map(String::as_str), Some("42"));
    // (Then bash traces the call of conveyor's EXIT trap, as it always did.)
    assert_eq!(
        texts(&lines, Stream::Stderr)[..2],
        ["+ VALUE=42", "+ echo done"]
    );
}

#[tokio::test]
async fn a_quick_silent_success_hands_its_commands_to_the_completion_and_a_slow_one_ships_them() {
    let dir = TestDir::new("silent");
    let (result, lines) = run(&spec("true\n: quiet"), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert!(lines.is_empty(), "no batch: {lines:?}");
    assert_eq!(command_texts(&result.held), ["$ true", "$ : quiet"]);
    // Still running after the hold: its command shows while it runs.
    let (result, lines) = run(&spec("sleep 1"), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    let commands = command_texts(&lines);
    assert_eq!(commands, ["$ sleep 1"]);
    assert!(result.held.is_empty(), "{:?}", result.held);
}

#[tokio::test]
async fn a_sourced_file_reports_no_commands_even_under_set_t() {
    let dir = TestDir::new("sourced");
    let s =
        spec("set -T\nprintf 'echo s%s\\n' 1 2 3 4 5 6 7 8 9 > lib.sh\nsource ./lib.sh\necho end");
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    let order: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        order,
        [
            "$ set -T",
            "$ printf 'echo s%s\\n' 1 2 3 4 5 6 7 8 9 > lib.sh",
            "$ source ./lib.sh",
            "s1",
            "s2",
            "s3",
            "s4",
            "s5",
            "s6",
            "s7",
            "s8",
            "s9",
            "$ echo end",
            "end"
        ]
    );
}
