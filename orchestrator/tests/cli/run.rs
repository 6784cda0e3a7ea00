//! `conveyor run` as a user runs it: real store, queue, protocol and executor, one process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;

fn conveyor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("conveyor runs")
}

/// Runs with `--json` and returns the exit code and the builds.
pub(crate) fn run_json(files: &[&str], belt: &str) -> (i32, Vec<Value>, String) {
    let mut args = vec!["run", "--json", "--belt", belt];
    args.extend_from_slice(files);
    let out = conveyor(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        json["builds"].as_array().cloned().unwrap_or_default(),
        stderr,
    )
}

pub(crate) fn job<'a>(build: &'a Value, name: &str) -> &'a Value {
    build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name}"))
}

/// Writes a product file into a fresh directory and returns its path.
pub(crate) fn write(dir: &Path, name: &str, yaml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

#[test]
fn the_demo_runs_with_its_downstream_product_and_outputs_flow_between_them() {
    let (code, builds, stderr) = run_json(
        &["examples/demo/demo.yml", "examples/demo/demo-deploy.yml"],
        "build",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(builds.len(), 2);
    let (demo, deploy) = (&builds[0], &builds[1]);
    assert_eq!(
        (
            demo["product"].as_str(),
            demo["belt"].as_str(),
            demo["number"].as_u64(),
            demo["status"].as_str()
        ),
        (Some("demo"), Some("build"), Some(1), Some("succeeded"))
    );
    let version = job(demo, "version")["outputs"]["VERSION"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(version.starts_with("1.4."), "{version}");
    assert_eq!(
        job(demo, "package")["outputs"]["ARTIFACT"],
        format!("demo-{version}.txt")
    );
    assert_eq!(job(demo, "docs")["outputs"]["PAGES"], "1");
    assert_eq!(
        job(demo, "package")["outputs"]["CHECKSUM"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    assert_eq!(
        (deploy["product"].as_str(), deploy["status"].as_str()),
        (Some("demo-deploy"), Some("succeeded"))
    );
    assert_eq!(deploy["trigger"]["kind"], "upstream");
    assert_eq!(
        job(deploy, "deploy")["outputs"]["URL"],
        "https://staging.example.test/demo"
    );
    assert!(
        stderr.contains(&format!(
            "[demo-deploy/deploy] deploying demo-{version}.txt"
        )),
        "{stderr}"
    );
    for j in demo["jobs"].as_array().unwrap() {
        assert_eq!(
            (
                j["status"].as_str(),
                j["attempts"].as_u64(),
                j["exit_code"].as_i64()
            ),
            (Some("succeeded"), Some(1), Some(0))
        );
    }
}

#[test]
fn the_seed_chain_passes_outputs_across_three_products() {
    let files = [
        "orchestrator/tests/fixtures/seed-gem.yml",
        "orchestrator/tests/fixtures/seed-ami.yml",
        "orchestrator/tests/fixtures/seed-terraform.yml",
    ];
    let (code, builds, stderr) = run_json(&files, "build-gem");
    assert_eq!(code, 0, "{stderr}");
    let products: Vec<&str> = builds
        .iter()
        .map(|b| b["product"].as_str().unwrap())
        .collect();
    assert_eq!(products, ["gem", "ami", "terraform"]);
    assert_eq!(
        job(&builds[0], "build-gem")["outputs"]["GEM_VERSION"],
        "2.4.1"
    );
    assert_eq!(
        job(&builds[0], "build-gem")["outputs"]["PACKER_FILE"],
        "ror_ami.json"
    );
    assert_eq!(
        job(&builds[1], "execute-packer")["outputs"]["AMI_ID"],
        "ami-241"
    );
    assert_eq!(job(&builds[2], "apply")["outputs"]["PLAN"], "ami=ami-241");
    assert!(
        stderr.contains("[terraform/apply] terraform apply -var ami=ami-241 (ror_ami.json)"),
        "{stderr}"
    );
}

pub(crate) const HOSTILE: &str =
    "$(touch PWNED) `touch PWNED2` 'single' \"double\"\ttab\nline2 * ${HOME}";

#[test]
fn an_output_with_shell_metacharacters_arrives_as_the_same_bytes_and_is_never_executed() {
    let dir = common::temp_dir("hostile");
    let value_file = dir.join("value");
    std::fs::write(&value_file, HOSTILE).unwrap();
    let up = format!(
        "product: up\nbelts:\n  - name: b\n    jobs:\n      - name: make\n        env: {{SRC: '{src}'}}\n        commands: |\n          V=\"$(cat \"$SRC\")\"\n        outputs: [V]\n      - name: same-belt\n        env: {{DEST: '{dest}'}}\n        commands: |\n          cd \"$DEST\"\n          printf '%s' ${{make.V}} > same-belt.out\n          X=plain; printf '%s|%s' \"$X\" \"${{X}}\" > plain.out\n        downstreams:\n          - downstream-product: down\n",
        src = value_file.display(),
        dest = dir.display()
    );
    let down = format!(
        "product: down\nbelts:\n  - name: b\n    jobs:\n      - name: read\n        env: {{DEST: '{dest}'}}\n        commands: |\n          cd \"$DEST\"\n          printf '%s' \"{{{{ up.make.V }}}}\" > across.out\n          printf '%s' '${{up.make.V}}' > single.out\n",
        dest = dir.display()
    );
    let (f1, f2) = (write(&dir, "up.yml", &up), write(&dir, "down.yml", &down));
    let (code, builds, stderr) = run_json(&[&f1, &f2], "b");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(builds.len(), 2);
    assert_eq!(job(&builds[0], "make")["outputs"]["V"], HOSTILE);
    for f in ["same-belt.out", "across.out", "single.out"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(f)).unwrap(),
            HOSTILE,
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("plain.out")).unwrap(),
        "plain|plain"
    );
    assert!(
        !dir.join("PWNED").exists() && !dir.join("PWNED2").exists(),
        "the value was executed"
    );
}

#[test]
fn a_failing_job_fails_the_build_skips_its_dependents_and_lets_independent_jobs_finish() {
    let dir = common::temp_dir("failing");
    let yaml = "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: broken\n        commands: |\n          echo about to fail\n          exit 3\n      - name: after\n        needs: [broken]\n        commands: 'true'\n      - name: independent\n        commands: sleep 0.2; echo done\n";
    let f = write(&dir, "p.yml", yaml);
    let (code, builds, stderr) = run_json(&[&f], "b");
    assert_eq!(code, 1, "{stderr}");
    let b = &builds[0];
    assert_eq!(b["status"], "failed");
    assert_eq!(
        (
            job(b, "broken")["status"].as_str(),
            job(b, "broken")["exit_code"].as_i64()
        ),
        (Some("failed"), Some(3))
    );
    assert_eq!(job(b, "after")["status"], "skipped");
    assert_eq!(job(b, "independent")["status"], "succeeded");
    assert!(stderr.contains("[p/broken] about to fail"), "{stderr}");
}

#[test]
fn a_job_with_retries_runs_again_and_a_timeout_kills_a_slow_job() {
    let dir = common::temp_dir("retries");
    let yaml = format!(
        "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: flaky\n        retries: 2\n        env: {{COUNT: '{count}'}}\n        commands: |\n          n=$(cat \"$COUNT\" 2>/dev/null || echo 0)\n          echo $((n+1)) > \"$COUNT\"\n          test \"$n\" -ge 1\n      - name: slow\n        timeout: 1s\n        commands: sleep 30\n",
        count = dir.join("count").display()
    );
    let f = write(&dir, "p.yml", &yaml);
    let started = std::time::Instant::now();
    let (code, builds, stderr) = run_json(&[&f], "b");
    assert!(
        started.elapsed().as_secs() < 20,
        "the timeout did not stop the job"
    );
    assert_eq!(code, 1, "{stderr}");
    let b = &builds[0];
    assert_eq!(
        (
            job(b, "flaky")["status"].as_str(),
            job(b, "flaky")["attempts"].as_u64()
        ),
        (Some("succeeded"), Some(2))
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("count")).unwrap().trim(),
        "2"
    );
    assert_eq!(
        (
            job(b, "slow")["status"].as_str(),
            job(b, "slow")["error"].as_str()
        ),
        (Some("failed"), Some("timed out"))
    );
}

#[test]
fn an_invalid_config_runs_nothing_and_exits_one_with_located_errors() {
    let dir = common::temp_dir("invalid");
    let f = write(
        &dir,
        "p.yml",
        "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        needs: [nope]\n        commands: 'true'\n",
    );
    let out = conveyor(&["run", "--belt", "b", &f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{f}:6:17: error: unknown job `nope` in `needs` of job `j`\nnot running: 1 error(s) in the config\n"
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_belt_or_product_is_named_with_a_suggestion() {
    let out = conveyor(&["run", "--belt", "biuld", "examples/demo/demo.yml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with("\nerror: product `demo` has no belt `biuld` (did you mean `build`?)\n"),
        "{stderr}"
    );
    let out = conveyor(&[
        "run",
        "--belt",
        "build",
        "--product",
        "dmeo",
        "examples/demo/demo.yml",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .ends_with("\nerror: no product `dmeo` among the files given (did you mean `demo`?)\n"),
        "{stderr}"
    );
}

#[test]
fn the_embedded_store_takes_its_pool_limits_from_the_environment() {
    let dir = common::temp_dir("pool-limits");
    let yaml = "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: one\n        commands: echo one\n";
    let f = write(&dir, "p.yml", yaml);
    let run = |connections: &str, cache: &str| {
        Command::new(env!("CARGO_BIN_EXE_conveyor"))
            .args(["run", "--belt", "b", &f])
            .env("CONVEYOR_DB_CONNECTIONS", connections)
            .env("CONVEYOR_SQLITE_CACHE_KIB", cache)
            .output()
            .expect("conveyor runs")
    };
    let small = run("2", "128");
    let stderr = String::from_utf8_lossy(&small.stderr);
    assert_eq!(small.status.code(), Some(0), "{stderr}");
    let bad = run("2", "12");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_ne!(bad.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("CONVEYOR_SQLITE_CACHE_KIB=12: give a whole number from 64 to 1048576"),
        "{stderr}"
    );
    let bad = run("none", "128");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("CONVEYOR_DB_CONNECTIONS=none"), "{stderr}");
}
