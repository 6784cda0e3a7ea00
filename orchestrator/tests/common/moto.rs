//! A local S3-compatible server for the object-storage tests: moto's (PyPI `moto[server]`),
//! started on a free port for one test and killed with it.

use std::time::{Duration, Instant};

use conveyor::blobs::Blobs;

use super::Proc;

/// Where `.ci/run` installs moto.
const CI_VENV: &str = ".cache/conveyor-ci/moto/bin/moto_server";

/// `moto_server`: `CONVEYOR_MOTO_SERVER`, else the one `.ci/run` installs, else on `PATH`.
fn moto_server() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("CONVEYOR_MOTO_SERVER") {
        return p.into();
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    if let Some(p) = home.map(|h| h.join(CI_VENV)).filter(|p| p.exists()) {
        return p;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server is missing: the S3 tests need it. Install it with \
             `python3 -m venv ~/.cache/conveyor-ci/moto && ~/.cache/conveyor-ci/moto/bin/pip install 'moto[server]'` \
             (.ci/run does this), or point CONVEYOR_MOTO_SERVER at one"
        )
    })
}

/// A running moto server with one empty bucket, and object storage in that bucket.
pub struct S3 {
    _server: Proc,
    pub endpoint: String,
    pub bucket: String,
}

impl S3 {
    pub async fn start() -> S3 {
        let port = super::free_port();
        let child = std::process::Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = Proc(child);
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = super::http();
        let bucket = format!("conveyor-{}", uuid::Uuid::now_v7().simple());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // moto takes unsigned requests: make the bucket directly.
            let made = http.put(format!("{endpoint}/{bucket}")).send().await;
            if made.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {endpoint}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        S3 {
            _server: server,
            endpoint,
            bucket,
        }
    }

    /// The `AWS_*` settings that reach this server.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn blobs(&self) -> Blobs {
        Blobs::s3(&format!("s3://{}", self.bucket), self.settings()).expect("the bucket")
    }
}
