//! Rewritten scripts run by a real bash: a referenced value arrives as the same bytes,
//! in every quoting context, and is never executed.

use std::process::Command;

use conveyor_core::compile::compile;

/// A hostile value: command substitutions, backticks, quotes, a tab, a newline, a glob.
const HOSTILE: &str =
    "$(touch PWNED) `touch PWNED2` 'single' \"double\"\ttab\nline2 * \\ $HOME ${X}";

/// Compiles a job `use` whose commands are `body`, with job `make` declaring `V`.
fn script_for(body: &str) -> (String, Vec<String>) {
    let indented: String = body.lines().map(|l| format!("          {l}\n")).collect();
    let yaml = format!(
        "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: make\n        commands: V=1\n        outputs: [V]\n      - name: use\n        commands: |\n{indented}"
    );
    let c = compile("t.yml", &yaml);
    let p = c.product.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    let job = p.belt("b").and_then(|b| b.job("use")).expect("job").clone();
    (job.script, job.refs.iter().map(|r| r.env.clone()).collect())
}

/// Runs the script in a fresh directory with every reference bound to `value`.
fn run(script: &str, envs: &[String], value: &str) -> (Vec<u8>, bool) {
    let dir = std::env::temp_dir().join(format!(
        "conveyor-refs-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cmd = Command::new("bash");
    cmd.arg("-eo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(&dir);
    for e in envs {
        cmd.env(e, value);
    }
    let out = cmd.output().expect("bash runs");
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pwned = dir.join("PWNED").exists() || dir.join("PWNED2").exists();
    std::fs::remove_dir_all(&dir).ok();
    (out.stdout, pwned)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[test]
fn a_hostile_value_arrives_as_the_same_bytes_in_every_quoting_context() {
    let bodies = [
        "printf '%s' ${make.V}",
        "printf '%s' \"${make.V}\"",
        "printf '%s' '${make.V}'",
        "printf '%s' {{ make.V }}",
        "v=\"pre-{{make.V}}\"; printf '%s' \"${v#pre-}\"",
        "x=${make.V}; printf '%s' \"$x\"",
        "printf '%s' \"$(printf '%s' ${make.V})\"",
    ];
    for body in bodies {
        let (script, envs) = script_for(body);
        assert_eq!(envs, vec!["CONVEYOR_REF_1".to_string()], "{body}");
        let (stdout, pwned) = run(&script, &envs, HOSTILE);
        assert!(!pwned, "the value was executed by: {body}");
        assert_eq!(
            String::from_utf8_lossy(&stdout),
            HOSTILE,
            "script: {script}"
        );
    }
}

#[test]
fn an_unquoted_heredoc_expands_the_value_without_executing_it() {
    let (script, envs) = script_for("cat <<EOF\n${make.V}\nEOF");
    let (stdout, pwned) = run(&script, &envs, HOSTILE);
    assert!(!pwned);
    assert_eq!(String::from_utf8_lossy(&stdout), format!("{HOSTILE}\n"));
}

#[test]
fn plain_shell_beside_references_behaves_as_before() {
    let body = "a=(x y z); N=2; printf '%s|' \"${#a[@]}\" \"$((N+1))\" \"${UNSET:-dflt}\" \"${N}\" ${make.V}";
    let (script, envs) = script_for(body);
    let (stdout, _) = run(&script, &envs, "v");
    assert_eq!(String::from_utf8_lossy(&stdout), "3|3|dflt|2|v|");
}
