//! Artifacts and caches through the API: uploads fenced by the lease (409, nothing stored),
//! checked against their SHA-256; files handed on byte for byte to a dependent job on
//! another runner with its own work directory and to a downstream product's job, on the
//! filesystem and on S3-compatible storage (moto), and fetched by `conveyor artifacts`;
//! caches restored from the runner's copy and never written by a pull request's build.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor::blobs::Blobs;
use conveyor::http::AppState;
use conveyor::services::Services;
use conveyor_core::protocol::{JobSpec, LEASE_HEADERS, Lease, SHA256_HEADER};
use conveyor_runner::client::{Client, hex};
use conveyor_runner::executor::ExecConfig;
use conveyor_runner::queue::{LocalQueue, Queue};
use conveyor_runner::worker::{Stop, Worker};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::common::moto::S3;
use crate::{ADMIN, CLAIM, FENCED, RUNNER, claim_of, common};

/// An orchestrator over SQLite and `blobs`, with runner `ra` on fleet `a` and `rb` on `b`
/// (each in a work directory of its own) when `runners` is set.
struct Cluster {
    base: String,
    services: Arc<Services>,
    queue: Arc<LocalQueue>,
    work: PathBuf,
    http: reqwest::Client,
    _stops: Vec<watch::Sender<Option<Stop>>>,
}

async fn cluster(blobs: Blobs, runners: bool) -> Cluster {
    let queue = Arc::new(LocalQueue::new());
    let mut services = Services::new(common::sqlite().await, queue.clone());
    services.blobs = blobs;
    let services = Arc::new(services);
    let state = AppState::with_services(services.clone(), ADMIN.into(), RUNNER.into());
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let work = common::temp_dir("files-work");
    let mut stops = Vec::new();
    for (name, fleet) in [("ra", "a"), ("rb", "b")].into_iter().filter(|_| runners) {
        let token = common::register_runner(&http, &base, RUNNER, name, &[fleet]).await;
        let client = Client::with_http(vec![base.clone()], token, http.clone());
        let worker = Arc::new(Worker {
            name: name.into(),
            fleets: vec![fleet.into()],
            concurrency: 2,
            client: Arc::new(client),
            queue: queue.clone(),
            exec: ExecConfig::new(work.join(name)),
        });
        let (stop, rx) = watch::channel(None);
        tokio::spawn(worker.run(rx));
        stops.push(stop);
    }
    Cluster {
        base,
        services,
        queue,
        work,
        http,
        _stops: stops,
    }
}

impl Cluster {
    async fn register(&self, yaml: &str) {
        let res = self
            .http
            .post(format!("{}/api/v1/products", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "yaml": yaml }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    }

    async fn start(&self, product: &str, belt: &str, git_ref: Option<&str>) -> String {
        let res = self
            .http
            .post(format!(
                "{}/api/v1/products/{product}/belts/{belt}/builds",
                self.base
            ))
            .bearer_auth(ADMIN)
            .json(&json!({ "ref": git_ref }))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().expect("a build id").to_string()
    }

    /// The build once it has finished.
    async fn finished(&self, id: &str) -> conveyor_store::BuildView {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let b = self.services.store.build(id).await.unwrap().unwrap();
            if b.finished_at.is_some() {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "build {id} did not finish: {b:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The log of a job of a build, one line per line.
    async fn log(&self, build: &conveyor_store::BuildView, job: &str) -> String {
        let run = build.jobs.iter().find(|j| j.name == job).unwrap();
        let rows = self.services.store.logs(&run.id, 0, 10_000).await.unwrap();
        rows.iter().map(|r| format!("{}\n", r.text)).collect()
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }
}

const MAKER: &str = "product: maker
belts:
  - name: b
    jobs:
      - name: make
        fleet: a
        commands: |
          mkdir -p out/deep
          head -c 3000000 /dev/urandom > big.bin
          echo hi > 'out/deep/a file.txt'
          sha256sum big.bin 'out/deep/a file.txt' > sums
        artifacts: [big.bin, out/, sums]
      - name: check
        fleet: b
        needs: [make]
        commands: sha256sum -c sums && echo \"on $CONVEYOR_JOB\"
";

const TAKER: &str = "product: taker
triggers:
  - upstream-build:
      upstream-product: maker
belts:
  - name: t
    jobs:
      - name: take
        fleet: b
        inputs: [maker.make]
        commands: sha256sum -c sums
";

/// One build of `maker` and the `taker` build it fires: the files arrive whole on the other
/// runner and downstream, are listed with their SHA-256 and download as they were.
async fn files_travel_between_runners_and_products(c: &Cluster) {
    c.register(MAKER).await;
    c.register(TAKER).await;
    let id = c.start("maker", "b", None).await;
    let b = c.finished(&id).await;
    assert_eq!(b.status, "succeeded", "{}", c.log(&b, "check").await);
    let runners: Vec<_> = b.jobs.iter().map(|j| j.runner.clone().unwrap()).collect();
    assert_eq!(runners, ["ra", "rb"], "two runners, two work directories");
    assert!(c.log(&b, "check").await.contains("big.bin: OK"));
    let fired = c.services.store.downstream_builds(&id).await.unwrap();
    let down = c.finished(&fired[0]).await;
    assert_eq!(down.status, "succeeded", "{}", c.log(&down, "take").await);
    let (status, body) = c.get(&format!("/api/v1/builds/{id}/artifacts")).await;
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_slice(&body).unwrap();
    let items = listed["artifacts"].as_array().unwrap();
    let paths: Vec<&str> = items.iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["big.bin", "out/deep/a file.txt", "sums"]);
    for a in items {
        assert_eq!(a["job"], "make");
        let (status, bytes) = c
            .get(&format!("/api/v1/artifacts/{}", a["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 200);
        assert_eq!(bytes.len() as u64, a["size"].as_u64().unwrap());
        assert_eq!(hex(&Sha256::digest(&bytes)), a["sha256"].as_str().unwrap());
    }
    let out = common::temp_dir("artifacts-cli");
    fetch_with_the_cli(c, &id, &out).await;
    let sums = std::fs::read_to_string(out.join("make/sums")).unwrap();
    let big = std::fs::read(out.join("make/big.bin")).unwrap();
    let want = sums
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(hex(&Sha256::digest(&big)), want, "byte for byte");
    assert_eq!(
        std::fs::read_to_string(out.join("make/out/deep/a file.txt")).unwrap(),
        "hi\n"
    );
}

async fn fetch_with_the_cli(c: &Cluster, build: &str, out: &Path) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["artifacts", build, "-o"])
        .arg(out)
        .args(["--server", &c.base])
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(said.lines().count(), 3, "{said}");
}

#[tokio::test]
async fn files_travel_between_runners_and_to_a_downstream_product_on_the_filesystem() {
    let objects = common::temp_dir("objects");
    let c = cluster(Blobs::filesystem(&objects).unwrap(), true).await;
    files_travel_between_runners_and_products(&c).await;
    let stored = walk(&objects.join("artifacts"));
    assert_eq!(stored.len(), 3, "one object per file: {stored:?}");
    let _ = std::fs::remove_dir_all(&c.work);
}

#[tokio::test]
async fn files_travel_between_runners_and_to_a_downstream_product_on_s3() {
    let s3 = S3::start().await;
    let c = cluster(s3.blobs(), true).await;
    files_travel_between_runners_and_products(&c).await;
    let _ = std::fs::remove_dir_all(&c.work);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

const ONE_JOB: &str = "product: one
belts:
  - name: b
    jobs:
      - name: j
        commands: 'true'
        artifacts: [x]
";

/// Uploads `bytes` as `path` under `lease` with runner token `token`; the status.
async fn upload(
    c: &Cluster,
    token: &str,
    lease: &Lease,
    path: &str,
    bytes: &[u8],
    sha: &str,
) -> u16 {
    let [run, attempt, lease_token] = LEASE_HEADERS;
    c.http
        .put(format!("{}/api/v1/runner/artifacts?path={path}", c.base))
        .bearer_auth(token)
        .header(run, &lease.job_run_id)
        .header(attempt, lease.attempt.to_string())
        .header(lease_token, &lease.lease_token)
        .header(SHA256_HEADER, sha)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_upload_under_a_lease_not_live_or_not_yours_answers_409_and_stores_nothing() {
    let objects = common::temp_dir("objects");
    let c = cluster(Blobs::filesystem(&objects).unwrap(), false).await;
    c.register(ONE_JOB).await;
    let build = c.start("one", "b", None).await;
    let r1 = common::register_runner(&c.http, &c.base, RUNNER, "r1", &["default"]).await;
    let r2 = common::register_runner(&c.http, &c.base, RUNNER, "r2", &["default"]).await;
    let d = c.queue.pop(&["default".into()], "r1").await.unwrap();
    let res = c
        .http
        .post(format!("{}{CLAIM}", c.base))
        .bearer_auth(&r1)
        .json(&claim_of(&d));
    let spec: JobSpec = res.send().await.unwrap().json().await.unwrap();
    let sha = hex(&Sha256::digest(b"abc"));
    let forged = Lease {
        lease_token: "forged".into(),
        ..spec.lease.clone()
    };
    assert_eq!(upload(&c, &r1, &forged, "x", b"abc", &sha).await, 409);
    assert_eq!(
        upload(&c, &r2, &spec.lease, "x", b"abc", &sha).await,
        409,
        "not r2's lease"
    );
    assert_eq!(
        upload(&c, &r1, &spec.lease, "x", b"abd", &sha).await,
        400,
        "sha differs"
    );
    assert_eq!(
        upload(&c, &r1, &spec.lease, "../x", b"abc", &sha).await,
        400
    );
    assert!(
        walk(&objects).is_empty(),
        "nothing stored: {:?}",
        walk(&objects)
    );
    assert_eq!(upload(&c, &r1, &spec.lease, "x", b"abc", &sha).await, 201);
    after_the_lease(&c, &r1, &spec.lease, &build, &objects).await;
}

/// Once the job run is complete its lease takes no file; the one stored stays listed.
async fn after_the_lease(c: &Cluster, r1: &str, lease: &Lease, build: &str, objects: &Path) {
    let sha = hex(&Sha256::digest(b"abc"));
    let complete = json!({"lease": lease, "outcome": "succeeded", "exit_code": 0, "outputs": {}, "error": null});
    let res = c
        .http
        .post(format!("{}/api/v1/runner/complete", c.base))
        .bearer_auth(r1);
    assert_eq!(
        res.json(&complete).send().await.unwrap().status().as_u16(),
        204
    );
    assert_eq!(
        upload(c, r1, lease, "y", b"abc", &sha).await,
        409,
        "{FENCED}"
    );
    let (_, listed) = c.get(&format!("/api/v1/builds/{build}/artifacts")).await;
    let listed: Value = serde_json::from_slice(&listed).unwrap();
    assert_eq!(listed["artifacts"].as_array().unwrap().len(), 1);
    assert_eq!(walk(objects).len(), 1);
    let (status, body) = c.get("/api/v1/artifacts/nope").await;
    assert_eq!(
        (
            status,
            String::from_utf8_lossy(&body).contains("no artifact")
        ),
        (404, true)
    );
}

const CACHED: &str = "product: cached
belts:
  - name: b
    jobs:
      - name: j
        fleet: a
        cache: {name: deps, key: [deps.lock], paths: [deps]}
        commands: |
          if [ -f deps/built ]; then echo \"warm from $(cat deps/built)\"; else
          echo cold; mkdir -p deps; echo \"$CONVEYOR_BUILD_NUMBER\" > deps/built; fi
";

/// Builds `cached` on `git_ref` and returns the job's log.
async fn cached_build(c: &Cluster, product: &str, git_ref: Option<&str>) -> String {
    let id = c.start(product, "b", git_ref).await;
    let b = c.finished(&id).await;
    let log = c.log(&b, "j").await;
    assert_eq!(b.status, "succeeded", "{log}");
    log
}

#[tokio::test]
async fn a_cache_is_restored_from_the_runners_copy_and_a_pull_request_never_writes_one() {
    let objects = common::temp_dir("objects");
    let c = cluster(Blobs::filesystem(&objects).unwrap(), true).await;
    c.register(CACHED).await;
    let first = cached_build(&c, "cached", None).await;
    assert!(
        first.contains("no cache `deps` yet") && first.contains("cold"),
        "{first}"
    );
    assert!(first.contains("saved cache deps-"), "{first}");
    let second = cached_build(&c, "cached", None).await;
    assert!(
        second.contains("restored cache deps-") && second.contains("warm from 1"),
        "{second}"
    );
    assert!(
        !second.contains("saved cache"),
        "an exact hit is not saved again: {second}"
    );
    // The stored archive is gone: only the runner's own copy can restore it now.
    std::fs::remove_dir_all(objects.join("caches")).unwrap();
    let third = cached_build(&c, "cached", None).await;
    assert!(
        third.contains("warm from 1"),
        "restored with no transfer: {third}"
    );
    let topic = cached_build(&c, "cached", Some("refs/heads/topic")).await;
    assert!(
        topic.contains("warm from 1"),
        "a branch reads the default branch's: {topic}"
    );
    c.register(&CACHED.replace("product: cached", "product: pr"))
        .await;
    let pr = cached_build(&c, "pr", Some("refs/pull/7/head")).await;
    assert!(pr.contains("cold"), "{pr}");
    assert!(
        pr.contains("not saved: a pull request's build never writes caches"),
        "{pr}"
    );
    let after = cached_build(&c, "pr", None).await;
    assert!(
        after.contains("no cache `deps` yet"),
        "the pull request wrote none: {after}"
    );
    let _ = std::fs::remove_dir_all(&c.work);
}

#[tokio::test]
async fn a_failed_jobs_files_are_kept_with_when_always_and_not_without() {
    let c = cluster(Blobs::memory(), true).await;
    c.register(
        "product: reports
belts:
  - name: b
    jobs:
      - name: always
        fleet: a
        commands: echo 'FAIL x' > report.txt && exit 3
        artifacts: {paths: [report.txt], when: always}
      - name: on-success
        fleet: b
        commands: echo 'FAIL y' > report.txt && exit 3
        artifacts: [report.txt]
",
    )
    .await;
    let id = c.start("reports", "b", None).await;
    let b = c.finished(&id).await;
    assert_eq!(b.status, "failed");
    let listed = c.services.store.build_artifacts(&id).await.unwrap();
    let kept: Vec<(&str, &str)> = listed
        .iter()
        .map(|a| (a.job.as_str(), a.path.as_str()))
        .collect();
    assert_eq!(kept, [("always", "report.txt")]);
}
