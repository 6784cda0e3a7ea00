//! The README quick start: `conveyor up` registers and builds the examples and serves them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

pub(crate) struct Up(pub(crate) Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("server reachable");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// Starts `conveyor up` on a free port; returns the guard, the URL's host:port and what it
/// printed up to "Press Ctrl-C".
fn start_up() -> (Up, String, Vec<String>) {
    start_up_with(&common::temp_dir("up"), None)
}

/// `conveyor up` on `data`, registering `examples` (the repository's examples when `None`).
pub(crate) fn start_up_with(
    data: &std::path::Path,
    examples: Option<&std::path::Path>,
) -> (Up, String, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
    if let Some(dir) = examples {
        cmd.arg("up").arg("--examples").arg(dir);
    } else {
        cmd.arg("up");
    }
    let child = cmd
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "t0ken-for-up-tests",
            "--data-dir",
        ])
        .arg(data)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("conveyor up starts");
    let mut up = Up(child);
    let mut printed = Vec::new();
    let mut lines = BufReader::new(up.0.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let url = printed[0]
        .strip_prefix("conveyor is up at http://")
        .expect("the URL comes first")
        .to_string();
    (up, url, printed)
}

/// Polls the build list until `n` builds exist and none is running.
fn settled(url: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = get(url, "/api/v1/builds");
        assert_eq!(code, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        let builds = v["builds"].as_array().cloned().unwrap_or_default();
        if builds.len() == n && builds.iter().all(|b| b["status"] != "running") {
            return builds;
        }
        assert!(Instant::now() < deadline, "builds did not finish: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn conveyor_up_registers_the_examples_builds_the_demo_and_serves_it() {
    let (_up, url, printed) = start_up();
    let text = printed.join("\n");
    assert_eq!(printed[1], "  admin token: t0ken-for-up-tests");
    for p in ["demo", "demo-deploy", "ami", "ror-api-backend"] {
        assert!(text.contains(&format!("  registered {p} (")), "{text}");
    }
    assert!(text.contains("  skipped examples/seed/terraform.yml:7:9: error: trigger names unknown belt `build-ror-ami`"), "{text}");
    assert!(text.contains("  started demo build #1: "), "{text}");
    assert!(
        text.contains("  driver greeter: exec python3 'examples/drivers/greeter.py'"),
        "{text}"
    );
    assert!(text.contains("  started greetings main #1: "), "{text}");

    // The demo build fires demo-deploy; both finish on the local runners; the greetings
    // belt's driver job runs on the example driver `up` started.
    let builds = settled(&url, 3);
    let mut seen: Vec<(String, String)> = builds
        .iter()
        .map(|b| {
            (
                b["product"].as_str().unwrap().into(),
                b["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("demo".into(), "succeeded".into()),
            ("demo-deploy".into(), "succeeded".into()),
            ("greetings".into(), "succeeded".into())
        ]
    );
    let (code, page) = get(&url, "/");
    assert_eq!(code, 200);
    assert!(
        page.contains("<a href=\"/products/demo\">demo</a>"),
        "{page}"
    );
    assert!(page.contains("build #1</a>"), "{page}");
    assert!(page.contains("✓</span> succeeded"), "{page}");
}

/// Runs the `conveyor` CLI against the server.
pub(crate) fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(args)
        .env("CONVEYOR_SERVER", format!("http://{url}"))
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn trigger_builds_and_logs_drive_a_running_conveyor() {
    let (_up, url, _) = start_up();
    settled(&url, 3);
    let (code, out, err) = cli(
        &url,
        &[
            "trigger",
            "demo",
            "build",
            "--wait",
            "--token",
            "t0ken-for-up-tests",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "started demo build #2: http://{url}/api/v1/builds/"
        )),
        "{out}"
    );
    assert!(out.contains("[unit-tests] test 5 ok"), "{out}");
    assert!(out.ends_with("demo build #2: succeeded\n"), "{out}");
    let id = out
        .lines()
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let (code, out, _) = cli(&url, &["logs", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("[lint] linting 1.4."), "{out}");

    let (code, out, _) = cli(&url, &["builds", "--product", "demo"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&id) && lines[0].ends_with("demo build #2  succeeded  (5 jobs)"),
        "{out}"
    );

    let (code, _, err) = cli(&url, &["trigger", "demo", "build", "--token", "wrong"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "error: missing or wrong token: send `Authorization: Bearer <token>` (401 Unauthorized)\n"
        )
    );
    let tf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/seed/terraform.yml"
    );
    let (code, _, err) = cli(
        &url,
        &[
            "product",
            "add",
            "--file",
            tf,
            "--token",
            "t0ken-for-up-tests",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: the config has errors (422 Unprocessable Entity)\n"),
        "{err}"
    );
    assert!(
        err.contains("\nrequest:7:9: error: trigger names unknown belt `build-ror-ami`"),
        "{err}"
    );
    let fixed = common::temp_dir("add").join("p.yml");
    std::fs::write(&fixed, "product: added\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n").unwrap();
    let (code, out, _) = cli(
        &url,
        &[
            "product",
            "add",
            "--file",
            fixed.to_str().unwrap(),
            "--token",
            "t0ken-for-up-tests",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "registered added\n"));

    let (code, _, err) = cli(
        &url,
        &["trigger", "demo", "nope", "--token", "t0ken-for-up-tests"],
    );
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "error: product `demo` has no belt `nope` (404 Not Found)\n"
        )
    );
}
