//! What the dashboard tests stand on: a browser (`browser`), a conveyor with local runners
//! to look at, and `conveyor up` as a newcomer runs it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use browser::{Browser, PATIENCE};

pub const ADMIN: &str = "ui-admin-token";

/// A conveyor with local runners on a free port, `products` registered.
pub struct Conveyor {
    pub url: String,
    pub state: std::sync::Arc<conveyor::services::Services>,
    _engine: conveyor::startup::Embedded,
}

pub async fn conveyor(products: &[&str]) -> Conveyor {
    let opts = conveyor::startup::Options {
        data_dir: crate::common::temp_dir("ui"),
        listen: "127.0.0.1:0".parse().unwrap(),
        runners: 4,
        max_log_bytes: conveyor::services::DEFAULT_MAX_LOG_MIB << 20,
        retention: Default::default(),
        fleets: vec!["default".into()],
        admin_token: ADMIN.into(),
        job_user: None,
        statuses: Default::default(),
        tls: None,
        files: None,
        local_caches: None,
    };
    let engine = conveyor::startup::Embedded::start(opts)
        .await
        .expect("conveyor starts");
    for yaml in products {
        engine
            .services
            .store
            .put_product(&crate::common::product(yaml), conveyor::clock::now_ms())
            .await
            .unwrap();
    }
    Conveyor {
        url: engine.url.clone(),
        state: engine.services.clone(),
        _engine: engine,
    }
}

impl Conveyor {
    /// The text of the page at `path`, fetched with `cookie` (a session) when given.
    pub async fn page(&self, path: &str, cookie: Option<&str>) -> String {
        let mut req = crate::common::http().get(format!("{}{path}", self.url));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.send().await.unwrap().text().await.unwrap()
    }

    /// Starts a build by hand; its id.
    pub async fn build(&self, product: &str, belt: &str) -> String {
        let new = conveyor::store::NewBuild {
            resource: None,
            product: product.into(),
            belt: belt.into(),
            trigger: conveyor::store::BuildTrigger::Manual,
            git_ref: None,
            sha: None,
            model: None,
            context: None,
        };
        conveyor::services::builds::start(&self.state, &new)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .id
    }

    pub async fn view(&self, build: &str) -> conveyor::store::BuildView {
        self.state.store.build(build).await.unwrap().unwrap()
    }

    /// The id of a build's job run.
    pub async fn job(&self, build: &str, name: &str) -> String {
        self.view(build)
            .await
            .jobs
            .into_iter()
            .find(|j| j.name == name)
            .unwrap()
            .id
    }

    /// Waits until the build's job reaches `status`.
    pub async fn until_job(&self, build: &str, name: &str, status: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.view(build).await;
            if v.jobs.iter().any(|j| j.name == name && j.status == status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {status}: {:?}",
                v.jobs
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the build has finished; its final state.
    pub async fn until_finished(&self, build: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.view(build).await;
            if v.finished_at.is_some() {
                return v.status;
            }
            assert!(
                Instant::now() < deadline,
                "build {build} never finished: {v:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Signs the browser in through the form.
pub async fn sign_in(b: &Browser, url: &str) {
    b.goto(&format!("{url}/sign-in")).await;
    b.type_into("#token", ADMIN).await;
    b.click(".sign-in button[type=submit]").await;
    b.wait_for(
        "the signed-in header",
        "return document.querySelector('.signed-in') !== null;",
    )
    .await;
}

/// `conveyor up` as a newcomer runs it, from the repository root.
pub struct Up {
    child: Child,
    /// What it printed up to "Press Ctrl-C".
    pub printed: Vec<String>,
    pub url: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn conveyor_up(token: &str) -> Up {
    use std::io::BufRead;
    let data = crate::common::temp_dir("ui-up");
    let mut child = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            token,
            "--data-dir",
        ])
        .arg(&data)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("conveyor up starts");
    let out = child.stdout.take().unwrap();
    let mut printed = Vec::new();
    for line in std::io::BufReader::new(out).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let url = printed[0]
        .strip_prefix("conveyor is up at ")
        .expect("the URL comes first")
        .to_string();
    Up {
        child,
        printed,
        url,
    }
}

/// Four quick jobs (two take a moment, so a page sees them run) firing `ship`.
pub const QUICK: &str = "product: quick
belts:
  - name: ci
    jobs:
      - name: compile
        commands: |
          printf '\\033[1;32mcompiled\\033[0m <b>not bold</b>\\n'
          sleep 1
          VERSION=2.0
        outputs: [VERSION]
      - name: test
        commands: echo testing ${compile.VERSION}
      - name: docs
        needs: [compile]
        commands: echo docs
      - name: package
        needs: [test, docs]
        commands: sleep 2; echo packaged
        downstreams:
          - downstream-product: ship
            belts: [deploy]
";

/// A downstream product with a manual job.
pub const SHIP: &str = "product: ship
belts:
  - name: deploy
    jobs:
      - name: deploy
        commands: echo deploying ${quick.compile.VERSION}
      - name: approve
        needs: [deploy]
        manual: true
        commands: echo approved
";

/// A job that writes 60 coloured lines over 15 s.
pub const SLOW: &str = "product: slow
belts:
  - name: ci
    jobs:
      - name: prepare
        commands: echo preparing
      - name: stream
        needs: [prepare]
        commands: |
          for i in $(seq 1 60); do printf '\\033[32mline %s\\033[0m\\n' \"$i\"; sleep 0.25; done
";
