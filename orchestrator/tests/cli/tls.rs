//! TLS everywhere, with certificates made by the test: `conveyor serve` over HTTPS on
//! Postgres with `sslmode=require` and a Redis speaking only TLS, a `conveyor-runner` and the
//! CLI trusting the CA through `--ca-cert` or `SSL_CERT_FILE`; clients that do not trust it
//! refused at once, with the flag that fixes it; `conveyor up` over HTTPS with a `Secure`
//! session cookie.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conveyor_runner::tls::Trust;
use conveyor_runner::tls::testing::{Pki, TlsRedis};
use serde_json::Value;

use crate::common::{self, Proc, bin};

const ADMIN: &str = "tls-admin-token-0001";
const RUNNER: &str = "tls-runner-token-0001";
const HINT: &str = "pass the CA's certificate (PEM) with --ca-cert";

/// An HTTPS orchestrator on TLS Postgres and TLS Redis.
struct Node {
    url: String,
    redis: TlsRedis,
    pki: Pki,
    dir: PathBuf,
    serve: Proc,
}

/// An HTTP client trusting `ca`.
fn trusting(ca: &Path) -> reqwest::Client {
    conveyor_runner::tls::install_crypto_provider();
    let trust = Trust::with_ca_file(Some(ca)).unwrap();
    trust.http().unwrap().build().unwrap()
}

async fn https_node() -> Node {
    let dir = common::temp_dir("tls");
    let pki = Pki::generate(&dir.join("pki"));
    let redis = TlsRedis::start(&pki);
    let db = format!("{}?sslmode=require", common::fresh_pg_url().await);
    let port = common::free_port();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let child = Command::new(bin("conveyor"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db, "--redis-url", &redis.url()])
        .args(["--admin-token", ADMIN, "--runner-token", RUNNER])
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .arg("--ca-cert")
        .arg(&pki.ca)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("SSL_CERT_FILE")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let serve = Proc(child);
    let url = format!("https://127.0.0.1:{port}");
    let http = trusting(&pki.ca);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{url}/health")).send().await.is_err() {
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
        assert!(Instant::now() < deadline, "serve did not answer: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Node {
        url,
        redis,
        pki,
        dir,
        serve,
    }
}

/// What a finished command did.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `conveyor ARGS` against `node` with `env` (and no `SSL_CERT_FILE` of the machine's);
/// it must end within a minute.
async fn conveyor(args: &[&str], env: &[(&str, &Path)]) -> Ran {
    let mut cmd = tokio::process::Command::new(bin("conveyor"));
    cmd.args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("CONVEYOR_CA_CERT")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("conveyor {args:?} hung"))
        .unwrap();
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn runner(node: &Node, redis_url: &str, ca: Option<&Path>) -> Command {
    let mut cmd = Command::new(bin("conveyor-runner"));
    cmd.args(["--server", &node.url, "--redis-url", redis_url])
        .args(["--token", RUNNER, "--name", "tls-r1"])
        .arg("--work-dir")
        .arg(node.dir.join("work"))
        .env_remove("SSL_CERT_FILE")
        .stdout(Stdio::null());
    if let Some(ca) = ca {
        cmd.arg("--ca-cert").arg(ca);
    }
    cmd
}

const HELLO: &str = "product: hello
belts:
  - name: ci
    jobs:
      - name: greet
        commands: echo hello over tls
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_and_the_cli_trusting_the_ca_build_on_an_https_orchestrator() {
    let node = https_node().await;
    let log = std::fs::File::create(node.dir.join("runner.log")).unwrap();
    let _runner = Proc(
        runner(&node, &node.redis.url(), Some(&node.pki.ca))
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let file = node.dir.join("hello.yml");
    std::fs::write(&file, HELLO).unwrap();
    let ca = node.pki.ca.to_str().unwrap();
    let api = ["--server", &node.url, "--token", ADMIN, "--ca-cert", ca];
    let file = file.to_str().unwrap();
    let added = conveyor(
        &[&["product", "add", "--file", file], &api[..]].concat(),
        &[],
    )
    .await;
    assert!(added.ok, "{}", added.stderr);
    let run = conveyor(
        &[&["trigger", "hello", "ci", "--wait"], &api[..]].concat(),
        &[],
    )
    .await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("[greet] hello over tls"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("hello ci #1: succeeded"),
        "{}",
        run.stdout
    );

    // SSL_CERT_FILE names the roots instead of --ca-cert.
    let api = ["--server", &node.url, "--token", ADMIN, "--json"];
    let listed = conveyor(
        &[&["builds"], &api[..]].concat(),
        &[("SSL_CERT_FILE", &node.pki.ca)],
    )
    .await;
    assert!(listed.ok, "{}", listed.stderr);
    let builds: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(builds["builds"][0]["status"], "succeeded", "{builds}");

    // Ctrl-C still stops an HTTPS node.
    stops_on_sigint(node.serve).await;
}

/// Sends SIGINT; the process must exit 0 within a few seconds.
async fn stops_on_sigint(mut serve: Proc) {
    let pid = serve.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGINT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_trust_the_ca_are_refused_at_once_and_told_about_ca_cert() {
    let node = https_node().await;
    let other = node.pki.other_ca.clone();
    for env in [vec![], vec![("CONVEYOR_CA_CERT", other.as_path())]] {
        let started = Instant::now();
        let ran = conveyor(&["builds", "--server", &node.url, "--token", ADMIN], &env).await;
        assert!(!ran.ok && started.elapsed() < Duration::from_secs(10));
        let prefix = format!("error: cannot reach {}: ", node.url);
        assert!(
            ran.stderr.starts_with(&prefix)
                && ran
                    .stderr
                    .contains("invalid peer certificate: UnknownIssuer")
                && ran.stderr.contains(HINT),
            "{}",
            ran.stderr
        );
    }
    // A runner gives up registering at once (its Redis is trusted: the shared plain one).
    let started = Instant::now();
    let out = runner(&node, "redis://127.0.0.1:6379", None)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr.contains("error: cannot register with the orchestrator: runners/register: ")
            && stderr.contains(HINT),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_whose_postgres_certificate_is_not_trusted_stops_with_what_to_check() {
    let dir = common::temp_dir("tls-pg");
    let pki = Pki::generate(&dir);
    let db = format!("{}?sslmode=verify-full", common::fresh_pg_url().await);
    let ca = pki.ca.to_str().unwrap();
    let args = ["serve", "--listen", "127.0.0.1:0", "--database-url", &db];
    let rest = [
        "--redis-url",
        "redis://127.0.0.1:6379",
        "--admin-token",
        ADMIN,
    ];
    let ran = conveyor(&[&args[..], &rest, &["--ca-cert", ca]].concat(), &[]).await;
    assert!(!ran.ok);
    assert!(
        ran.stderr
            .contains("error: cannot open the database postgres://")
            && ran
                .stderr
                .contains(": database error: TLS with the database failed: ")
            && ran.stderr.contains("invalid peer certificate")
            && ran.stderr.contains("sslrootcert=FILE (or --ca-cert)"),
        "{}",
        ran.stderr
    );
}

/// `conveyor up` over HTTPS: what it printed up to "Press Ctrl-C", and its URL.
fn start_up(pki: &Pki, data: &Path) -> (Proc, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["up", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        .arg("--data-dir")
        .arg(data)
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = Proc(child);
    let mut lines = BufReader::new(up.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Press Ctrl-C") {
            break;
        }
    }
    let url = first
        .strip_prefix("conveyor is up at ")
        .unwrap()
        .to_string();
    (up, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conveyor_up_with_a_certificate_serves_https_builds_and_sets_a_secure_cookie() {
    let dir = common::temp_dir("tls-up");
    let pki = Pki::generate(&dir.join("pki"));
    let (_up, url) = start_up(&pki, &dir.join("data"));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let http = trusting(&pki.ca);
    // The demo and its downstream build run: the local runners' protocol calls stay in the
    // process, the demo's file goes up and down over TLS (their client pins the served
    // certificate); the example driver reaches the server over TLS, trusting its CA.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = http
            .get(format!("{url}/api/v1/builds"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let builds = v["builds"].as_array().cloned().unwrap_or_default();
        if builds.len() == 3 && builds.iter().all(|b| b["status"] == "succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "the demo did not succeed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let no_redirects = Trust::with_ca_file(Some(&pki.ca)).unwrap().http().unwrap();
    let no_redirects = no_redirects
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = no_redirects
        .post(format!("{url}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}"))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("conveyor_session="), "{cookie}");
    assert!(
        cookie.ends_with("; Secure") && cookie.contains("; HttpOnly"),
        "{cookie}"
    );
}
