//! Secrets: masked in every log line and in `STDOUT` however they are printed, refused in
//! outputs; the job's environment holds nothing but its own variables and conveyor's; output
//! files are read only when they are plain files.

use std::collections::BTreeMap;

use conveyor_core::protocol::{JobSpec, LogLine, Outcome, Stream};

use crate::{TestDir, env, output, run, spec, texts};

const TOKEN: &str = "tok-7Hq2ZpL9vXe4RmB1";
const KEY: &str = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n\
                   BKcwggSjAgEAAoIBAQC7\n-----END TEST KEY-----\n";

/// `spec` with `TOKEN` and `KEY` as secrets, and a variable that is not one.
fn with_secrets(script: &str) -> JobSpec {
    let mut s = spec(script);
    s.env = env(&[("TOKEN", TOKEN), ("KEY", KEY), ("PLAIN", "visible-value")]);
    s.secrets = vec!["TOKEN".into(), "KEY".into()];
    s
}

/// Any 8 bytes in a row of a secret (or a line of one), wherever they stand in `text`.
fn leaks(text: &str) -> Option<&'static str> {
    let parts = std::iter::once(TOKEN).chain(KEY.lines());
    parts
        .flat_map(|p| (0..=p.len().saturating_sub(8)).map(move |i| &p[i..i + 8]))
        .find(|window| text.contains(window))
}

fn assert_no_leak(lines: &[LogLine], outputs: &BTreeMap<String, String>) {
    for line in lines {
        assert_eq!(
            leaks(&line.text),
            None,
            "a log line shows a secret: {line:?}"
        );
    }
    for (name, value) in outputs {
        assert_eq!(
            leaks(value),
            None,
            "output {name} shows a secret: {value:?}"
        );
    }
}

#[tokio::test]
async fn secrets_are_masked_whole_split_across_writes_inside_lines_and_line_by_line() {
    let dir = TestDir::new("masking");
    // A line over 64 KiB is shipped in pieces: the token sits across the first cut, and
    // the rest of the line comes only after a pause.
    let script = r#"printf '%65530s' '' | tr ' ' x
printf '%s' "$TOKEN"
sleep 0.3
printf '%70000s\n' '' | tr ' ' y
printf '%s\n' "$TOKEN"
printf '%s' "${TOKEN:0:7}"; sleep 0.3; printf '%s\n' "${TOKEN:7}"
echo "curl -H 'Authorization: Bearer $TOKEN' -d plain=$PLAIN"
printf '%s' "$KEY"
echo "to stderr: $TOKEN" >&2
printf 'last: %s' "$TOKEN""#;
    let (result, lines) = run(&with_secrets(script), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{lines:?}");
    assert_no_leak(&lines, &result.outputs);
    let stdout = texts(&lines, Stream::Stdout);
    assert_eq!(stdout[0], format!("{}***", "x".repeat(65530)));
    assert!(stdout[1].bytes().all(|b| b == b'y'), "{}", &stdout[1][..20]);
    let short: Vec<&str> = stdout.iter().filter(|l| l.len() < 100).copied().collect();
    assert_eq!(
        short,
        [
            "***",
            "***",
            "curl -H 'Authorization: Bearer ***' -d plain=visible-value",
            "***",
            "***",
            "***",
            "***",
            "last: ***",
        ]
    );
    assert_eq!(texts(&lines, Stream::Stderr), ["to stderr: ***"]);
    assert!(
        result.outputs["STDOUT"].ends_with("***\n***\n***\n***\nlast: ***"),
        "{:?}",
        &result.outputs["STDOUT"][result.outputs["STDOUT"].len() - 200..]
    );
}

#[tokio::test]
async fn the_stdout_output_never_starts_inside_a_secret() {
    let dir = TestDir::new("masked-tail");
    let mut cfg = dir.config();
    // The last 6 bytes of the raw output would be the token's end.
    cfg.stdout_tail_bytes = 6;
    let (result, lines) = run(&with_secrets(r#"printf 'a%s' "$TOKEN""#), &cfg).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_no_leak(&lines, &result.outputs);
    assert_eq!(result.outputs["STDOUT"], "a***");
}

#[tokio::test]
async fn a_value_too_short_to_mask_is_shown_and_the_log_says_so() {
    let dir = TestDir::new("short-secret");
    let mut s = spec(r#"echo "pin=$PIN""#);
    s.env = env(&[("PIN", "123")]);
    s.secrets = vec!["PIN".into()];
    let (result, lines) = run(&s, &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(texts(&lines, Stream::Stdout), ["pin=123"]);
    assert_eq!(
        texts(&lines, Stream::System),
        [
            "secret `PIN` is not masked: its value (or a line of it) is shorter than 4 characters, \
             which would star out ordinary text"
        ]
    );
}

#[tokio::test]
async fn an_output_carrying_a_secret_fails_the_job_and_no_output_is_reported() {
    let dir = TestDir::new("secret-output");
    let cases = [
        ("TOKEN_COPY=\"prefix-$TOKEN\"", "TOKEN_COPY", "TOKEN"),
        (
            "echo \"FROM_FILE=$TOKEN\" >> \"$CONVEYOR_OUTPUT\"",
            "FROM_FILE",
            "TOKEN",
        ),
        ("KEY_LINE=$(sed -n 2p <<< \"$KEY\")", "KEY_LINE", "KEY"),
    ];
    for (line, leaked, secret) in cases {
        let mut s = with_secrets(&format!("OK=fine\n{line}\necho done"));
        s.outputs = vec![output("OK", None), output("TOKEN_COPY", None)];
        s.outputs.push(output("KEY_LINE", None));
        let (result, lines) = run(&s, &dir.config()).await;
        let error = format!(
            "output `{leaked}` contains the value of secret `{secret}`: outputs are shown to \
             everyone and passed on, so they never carry secrets"
        );
        assert_eq!(result.outcome, Outcome::Failed, "{line}");
        assert_eq!(result.exit_code, Some(0), "the script itself succeeded");
        assert_eq!(result.outputs, BTreeMap::new(), "{line}");
        assert_eq!(result.error.as_deref(), Some(error.as_str()));
        assert_eq!(texts(&lines, Stream::System), [error.as_str()]);
        assert_no_leak(&lines, &result.outputs);
    }
}

#[tokio::test]
async fn a_job_environment_holds_its_variables_and_conveyors_and_nothing_of_the_runners() {
    let dir = TestDir::new("clean-env");
    let (result, lines) = run(&with_secrets("compgen -e"), &dir.config()).await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    let mut expected = vec![
        "CONVEYOR_JOB_COOKIE",
        "CONVEYOR_OUTPUT",
        "CONVEYOR_WORKSPACE",
        "HOME",
        "KEY",
        "PATH",
        "PLAIN",
        "PWD",
        "SHELL",
        "SHLVL",
        "TOKEN",
    ];
    // The locale, kept so tools write UTF-8 (see process.rs).
    if std::env::var_os("LANG").is_some() {
        expected.push("LANG");
    }
    expected.sort();
    let mut names = texts(&lines, Stream::Stdout);
    names.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn output_files_that_are_links_or_fifos_are_refused_not_followed() {
    let dir = TestDir::new("output-link");
    // The runner reading its own environment through the link would hand it to the job.
    for (make, what) in [
        (
            "ln -s /proc/$PPID/environ \"$CONVEYOR_OUTPUT\"",
            "$CONVEYOR_OUTPUT",
        ),
        ("mkfifo \"$CONVEYOR_OUTPUT\"", "$CONVEYOR_OUTPUT"),
        ("mkdir \"$CONVEYOR_OUTPUT\"", "$CONVEYOR_OUTPUT"),
    ] {
        let (result, lines) = run(&spec(make), &dir.config()).await;
        let error = format!(
            "{what} is not a plain file the job wrote (it is a symbolic link, a fifo, a \
             directory or another user's file): outputs are read from plain files only"
        );
        assert_eq!(result.outcome, Outcome::Failed, "{make}: {lines:?}");
        assert_eq!(result.error.as_deref(), Some(error.as_str()), "{make}");
        assert_eq!(result.outputs, BTreeMap::new());
    }
}
