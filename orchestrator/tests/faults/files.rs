//! Artifacts through a runner killed mid-job, with real processes: `conveyor serve` keeping
//! them in an S3 bucket (moto), `conveyor-runner`s each in a work directory of their own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use conveyor_runner::client::hex;
use sha2::{Digest, Sha256};

use crate::common::moto::S3;
use crate::{Cluster, SERIAL, job};

const FILES: &str = "product: files
belts:
  - name: b
    jobs:
      - name: make
        commands: |
          head -c 5000000 /dev/urandom > big.bin
          sha256sum big.bin > big.sum
          echo \"$CONVEYOR_ATTEMPT\" > attempt
          if [ \"$CONVEYOR_ATTEMPT\" = 1 ]; then sleep 60; fi
        artifacts: [big.bin, big.sum, attempt]
      - name: check
        fleet: far
        needs: [make]
        commands: sha256sum -c big.sum && test \"$(cat attempt)\" = 2
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_the_attempt_that_finished_reach_another_runner_through_s3() {
    let _serial = SERIAL.lock().await;
    let s3 = S3::start().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let port = crate::common::free_port();
    let store = format!("s3://{}", s3.bucket);
    let _serve = c
        .serve_with(port, &["--artifact-store", &store], &s3.settings())
        .await;
    let url = format!("http://127.0.0.1:{port}");
    c.product(&url, FILES).await;
    let mut doomed = c.runner("doomed", &[&url]);
    let _far = c.runner_on("far", &[&url], "far");
    let id = c.build(&url, "files", "b").await;
    c.until("the first attempt runs", || async {
        c.get_build(&url, &id)
            .await
            .is_some_and(|b| job(&b, "make")["status"] == "running")
    })
    .await;
    doomed.0.kill().unwrap();
    let _ = doomed.0.wait();
    let _survivor = c.runner("survivor", &[&url]);
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(job(&b, "check")["runner"], "far");
    let listed: serde_json::Value = c
        .http
        .get(format!("{url}/api/v1/builds/{id}/artifacts"))
        .bearer_auth(crate::ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = listed["artifacts"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{listed}");
    for a in items {
        let bytes = c
            .http
            .get(format!(
                "{url}/api/v1/artifacts/{}",
                a["id"].as_str().unwrap()
            ))
            .bearer_auth(crate::ADMIN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(hex(&Sha256::digest(&bytes)), a["sha256"].as_str().unwrap());
        if a["path"] == "attempt" {
            assert_eq!(&bytes[..], b"2\n", "the attempt that finished");
        }
    }
}
