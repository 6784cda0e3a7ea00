//! `conveyor run` with artifacts and caches: files reach dependent jobs and a downstream
//! product's job byte for byte, and a second run restores its cache (under the user's cache
//! directory) and is measurably faster than the first.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common;

/// `conveyor run --json --belt BELT FILES…` with `XDG_CACHE_HOME=cache`: exit code, builds,
/// stderr (the jobs' logs).
fn run(files: &[&Path], belt: &str, cache: &Path) -> (i32, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["run", "--json", "--belt", belt])
        .args(files)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("conveyor runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let builds = json["builds"].as_array().cloned().unwrap_or_default();
    (out.status.code().unwrap_or(-1), builds, stderr)
}

const UP: &str = "product: up
belts:
  - name: b
    jobs:
      - name: make
        commands: |
          mkdir -p dist
          head -c 2000000 /dev/urandom > dist/app.bin
          sha256sum dist/app.bin > app.sum
        artifacts: [dist/*.bin, app.sum]
      - name: use
        commands: sha256sum -c app.sum && echo \"got ${make.STDOUT}\"
";

const DOWN: &str = "product: down
triggers:
  - upstream-build:
      upstream-product: up
belts:
  - name: d
    jobs:
      - name: take
        inputs: [up]
        commands: sha256sum -c app.sum
";

#[test]
fn conveyor_run_hands_files_to_dependent_jobs_and_to_a_downstream_products_job() {
    let dir = common::temp_dir("run-files");
    let (up, down) = (dir.join("up.yml"), dir.join("down.yml"));
    std::fs::write(&up, UP).unwrap();
    std::fs::write(&down, DOWN).unwrap();
    let (code, builds, stderr) = run(&[&up, &down], "b", &dir.join("cache"));
    assert_eq!(code, 0, "{stderr}");
    let statuses: Vec<&str> = builds
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded"], "{stderr}");
    assert!(stderr.contains("[up/use] dist/app.bin: OK"), "{stderr}");
    assert!(stderr.contains("[down/take] dist/app.bin: OK"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A generated C library whose first build compiles it and whose later builds find it in
/// the cache.
const SLOW: &str = "product: slow
belts:
  - name: b
    jobs:
      - name: build
        inputs: [source]
        cache: {name: lib, key: [deps.lock], paths: [deps]}
        commands: |
          if [ ! -f deps/libgen.a ]; then
            mkdir -p deps/src
            for i in $(seq 1 $(cat deps.lock)); do
              printf 'int f%d(int x){int s=0;for(int k=0;k<x;k++)s+=k*%d;return s;}\\n' $i $i > deps/src/f$i.c
            done
            (cd deps && cc -O2 -c src/*.c && ar rcs libgen.a ./*.o)
          fi
          test -f deps/libgen.a
";

fn took_ms(build: &Value) -> i64 {
    let job = &build["jobs"][0];
    job["finished_at"].as_i64().unwrap() - job["started_at"].as_i64().unwrap()
}

#[test]
fn a_second_conveyor_run_restores_its_cache_and_is_measurably_faster() {
    let dir = common::temp_dir("run-cache");
    let file = dir.join("slow.yml");
    std::fs::write(&file, SLOW).unwrap();
    std::fs::write(dir.join("deps.lock"), "80\n").unwrap();
    let cache = dir.join("cache");
    let (code, cold, stderr) = run(&[&file], "b", &cache);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("no cache `lib` yet") && stderr.contains("saved cache lib-"),
        "{stderr}"
    );
    let (code, warm, stderr) = run(&[&file], "b", &cache);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("restored cache lib-"), "{stderr}");
    let (cold_ms, warm_ms) = (took_ms(&cold[0]), took_ms(&warm[0]));
    assert!(
        warm_ms * 2 < cold_ms,
        "cold {cold_ms} ms, warm {warm_ms} ms"
    );
    assert!(
        cache.join("conveyor/caches/slow").is_dir(),
        "kept under XDG_CACHE_HOME"
    );
    // A new key (the lock file changed) falls back to the newest cache of the name.
    std::fs::write(dir.join("deps.lock"), "81\n").unwrap();
    let (code, _, stderr) = run(&[&file], "b", &cache);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("restored cache lib-") && stderr.contains("saved cache lib-"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_artifact_path_that_matches_nothing_fails_the_job_with_a_clear_error() {
    let dir = common::temp_dir("run-missing");
    let file = dir.join("p.yml");
    let yaml = "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: mkdir -p dist\n        artifacts: [dist/*.bin]\n";
    std::fs::write(&file, yaml).unwrap();
    let (code, builds, stderr) = run(&[&file], "b", &dir.join("cache"));
    assert_eq!(code, 1, "{stderr}");
    let job = &builds[0]["jobs"][0];
    assert_eq!(job["status"], "failed");
    assert_eq!(
        job["error"],
        "artifact path `dist/*.bin` matched no file: the job did not write it (check the path, relative to the workspace)"
    );
    let _ = std::fs::remove_dir_all(dir);
}
