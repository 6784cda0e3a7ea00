//! The Redis fleet queue against the real Redis at 127.0.0.1:6379: delivery per fleet, waking
//! a blocked runner, reclaiming a dead runner's message, depth, duplicates and recovery;
//! errors that never show the password of a Redis URL; and over `rediss://` against a
//! private Redis speaking only TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conveyor_core::protocol::QueueMessage;
use conveyor_runner::queue::{Queue, RedisQueue};
use conveyor_runner::tls::Trust;
use conveyor_runner::tls::testing::{Pki, TlsRedis};

const URL: &str = "redis://127.0.0.1:6379";

/// A key prefix of the test's own; its keys are deleted when the test ends, even on panic.
struct Keys(String);

impl Keys {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(format!("conveyor-test-{}-{nanos}-{n}", std::process::id()))
    }

    fn stream(&self, fleet: &str) -> String {
        format!("{}:{{fleet:{fleet}}}:stream", self.0)
    }

    async fn queue(&self) -> RedisQueue {
        RedisQueue::connect(URL, &self.0).await.expect("Redis runs")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(URL).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{}:*", self.0))
            .clone()
            .iter(&mut conn)
            .map(|it| it.filter_map(Result::ok).collect())
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis runs")
}

/// Waits until the queue with this key prefix has a read blocked in Redis.
async fn blocked(keys: &Keys) {
    let mut conn = redis().await;
    let name = format!("name={}:reader ", keys.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        let reading = clients
            .lines()
            .filter(|l| l.contains(&name) && l.contains(" cmd=xreadgroup "))
            .any(|l| {
                l.split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('b'))
            });
        if reading {
            return;
        }
        assert!(Instant::now() < deadline, "the pop never blocked");
        tokio::task::yield_now().await;
    }
}

fn msg(id: &str) -> QueueMessage {
    QueueMessage {
        job_run_id: id.into(),
        attempt: 1,
    }
}

fn fleets(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn a_pushed_message_is_popped_with_its_fleet() {
    let keys = Keys::new();
    let q = keys.queue().await;
    q.push("gpu", &msg("a")).await.unwrap();
    let d = q.pop(&fleets(&["default", "gpu"]), "r1").await.unwrap();
    assert_eq!((d.fleet.as_str(), d.msg), ("gpu", msg("a")));
    assert!(d.id.contains('-'), "a stream entry id, got {:?}", d.id);
}

#[tokio::test]
async fn messages_of_another_fleet_are_not_delivered() {
    let keys = Keys::new();
    let q = keys.queue().await.with_block(Duration::from_millis(100));
    q.push("default", &msg("other")).await.unwrap();
    let gpu = fleets(&["gpu"]);
    let early = tokio::time::timeout(Duration::from_millis(400), q.pop(&gpu, "r1")).await;
    assert!(
        early.is_err(),
        "delivered another fleet's message: {early:?}"
    );
    q.push("gpu", &msg("mine")).await.unwrap();
    let d = q.pop(&gpu, "r1").await.unwrap();
    assert_eq!((d.fleet.as_str(), d.msg), ("gpu", msg("mine")));
    assert_eq!(q.depth("default").await.unwrap(), 1);
}

#[tokio::test]
async fn a_blocked_pop_wakes_up_promptly_when_a_message_is_pushed() {
    let keys = Keys::new();
    let q = Arc::new(keys.queue().await);
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.pop(&fleets(&["gpu"]), "sleeper").await })
    };
    blocked(&keys).await;
    let pushed = Instant::now();
    q.push("gpu", &msg("wake")).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("woken well before the 5 s block ends")
        .unwrap()
        .unwrap();
    assert_eq!(d.msg, msg("wake"));
    assert!(pushed.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_delivery_a_dead_consumer_never_acked_is_reclaimed_after_the_idle_time() {
    let keys = Keys::new();
    let idle = Duration::from_millis(200);
    let q = keys
        .queue()
        .await
        .with_reclaim_idle(idle)
        .with_block(Duration::from_millis(50));
    let gpu = fleets(&["gpu"]);
    q.push("gpu", &msg("orphan")).await.unwrap();
    let lost = q.pop(&gpu, "dies").await.unwrap();
    let taken = Instant::now();
    let again = q.pop(&gpu, "lives").await.unwrap();
    assert!(
        taken.elapsed() >= idle,
        "reclaimed after {:?}",
        taken.elapsed()
    );
    assert_eq!(
        (again.id.as_str(), &again.msg),
        (lost.id.as_str(), &msg("orphan"))
    );
    q.ack(&again).await.unwrap();
    assert_eq!(q.depth("gpu").await.unwrap(), 0);
}

#[tokio::test]
async fn acked_messages_are_gone_and_depth_counts_the_unacked_ones() {
    let keys = Keys::new();
    let q = keys.queue().await;
    let gpu = fleets(&["gpu"]);
    for id in ["1", "2", "3"] {
        q.push("gpu", &msg(id)).await.unwrap();
    }
    assert_eq!(q.depth("gpu").await.unwrap(), 3);
    let first = q.pop(&gpu, "r1").await.unwrap();
    let second = q.pop(&gpu, "r1").await.unwrap();
    q.ack(&first).await.unwrap();
    // One waiting and one in flight.
    assert_eq!(q.depth("gpu").await.unwrap(), 2);
    q.ack(&second).await.unwrap();
    let third = q.pop(&gpu, "r1").await.unwrap();
    assert_eq!(third.msg, msg("3"));
    q.ack(&third).await.unwrap();
    assert_eq!(q.depth("gpu").await.unwrap(), 0);
}

/// The queue does not deduplicate: the database's claim fences the second delivery.
#[tokio::test]
async fn a_duplicate_push_yields_two_deliveries() {
    let keys = Keys::new();
    let q = keys.queue().await;
    let gpu = fleets(&["gpu"]);
    q.push("gpu", &msg("twice")).await.unwrap();
    q.push("gpu", &msg("twice")).await.unwrap();
    let a = q.pop(&gpu, "r1").await.unwrap();
    let b = q.pop(&gpu, "r2").await.unwrap();
    assert_eq!((&a.msg, &b.msg), (&msg("twice"), &msg("twice")));
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn a_malformed_entry_is_dropped_and_the_next_message_delivered() {
    let keys = Keys::new();
    let q = keys.queue().await;
    let mut conn = redis().await;
    let _: String = redis::cmd("XADD")
        .arg(keys.stream("gpu"))
        .arg("*")
        .arg("job_run_id")
        .arg("no-attempt")
        .query_async(&mut conn)
        .await
        .unwrap();
    q.push("gpu", &msg("good")).await.unwrap();
    let d = q.pop(&fleets(&["gpu"]), "r1").await.unwrap();
    assert_eq!(d.msg, msg("good"));
    assert_eq!(
        q.depth("gpu").await.unwrap(),
        1,
        "only the good one is left"
    );
}

/// Deleting the stream is what a Redis restarted without persistence looks like.
#[tokio::test]
async fn the_queue_keeps_working_after_its_stream_vanished() {
    let keys = Keys::new();
    let q = keys.queue().await;
    let gpu = fleets(&["gpu"]);
    q.push("gpu", &msg("before")).await.unwrap();
    let d = q.pop(&gpu, "r1").await.unwrap();
    let mut conn = redis().await;
    let _: () = redis::cmd("DEL")
        .arg(keys.stream("gpu"))
        .query_async(&mut conn)
        .await
        .unwrap();
    q.ack(&d).await.unwrap();
    q.push("gpu", &msg("after")).await.unwrap();
    assert_eq!(q.pop(&gpu, "r1").await.unwrap().msg, msg("after"));
}

#[tokio::test]
async fn a_pop_blocked_on_a_stream_that_vanishes_keeps_waiting() {
    let keys = Keys::new();
    let q = Arc::new(keys.queue().await);
    let gpu = fleets(&["gpu"]);
    q.push("gpu", &msg("first")).await.unwrap();
    q.pop(&gpu, "r1").await.unwrap();
    let waiter = {
        let (q, gpu) = (q.clone(), gpu.clone());
        tokio::spawn(async move { q.pop(&gpu, "r2").await })
    };
    blocked(&keys).await;
    // Redis answers a read blocked on a deleted stream with an UNBLOCKED error.
    let _: () = redis::cmd("DEL")
        .arg(keys.stream("gpu"))
        .query_async(&mut redis().await)
        .await
        .unwrap();
    q.push("gpu", &msg("after")).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(3), waiter)
        .await
        .expect("woken by the push")
        .unwrap()
        .unwrap();
    assert_eq!(d.msg, msg("after"));
}

#[tokio::test]
async fn a_connection_error_names_the_url_without_its_password() {
    for (url, shown) in [
        ("redis://:hunter22@127.0.0.1:1", "redis://:***@127.0.0.1:1"),
        (
            "redis://me:hunter22@127.0.0.1:1/0",
            "redis://me:***@127.0.0.1:1/0",
        ),
        ("redis://hunter22@127.0.0.1:1", "redis://***@127.0.0.1:1"),
        ("redis://127.0.0.1:1", "redis://127.0.0.1:1"),
    ] {
        let Err(e) = RedisQueue::connect(url, "unused").await else {
            panic!("nothing listens on port 1, yet {url} connected");
        };
        let text = e.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.contains(&format!("at {shown}:")), "{text}");
    }
}

/// Certificates made for this test, and a private Redis speaking only TLS with them.
fn tls_redis() -> (Pki, TlsRedis) {
    let dir = std::env::temp_dir().join(format!("conveyor-rediss-{}", Keys::new().0));
    let pki = Pki::generate(&dir);
    let redis = TlsRedis::start(&pki);
    (pki, redis)
}

#[tokio::test]
async fn over_rediss_a_queue_trusting_the_ca_pushes_and_another_pops_and_acknowledges() {
    let (pki, redis) = tls_redis();
    let trust = Trust::with_ca_file(Some(&pki.ca)).unwrap();
    let orchestrator = RedisQueue::connect_trusting(&redis.url(), "conveyor", &trust)
        .await
        .unwrap();
    let runner = RedisQueue::connect_trusting(&redis.url(), "conveyor", &trust)
        .await
        .unwrap();
    orchestrator.push("default", &msg("tls")).await.unwrap();
    let d = runner.pop(&fleets(&["default"]), "r1").await.unwrap();
    assert_eq!((d.fleet.as_str(), d.msg.clone()), ("default", msg("tls")));
    runner.ack(&d).await.unwrap();
}

#[tokio::test]
async fn over_rediss_a_queue_not_trusting_the_ca_is_refused_and_told_why() {
    let (pki, redis) = tls_redis();
    let url = redis.url();
    let other = Trust::with_ca_file(Some(&pki.other_ca)).unwrap();
    for trust in [Trust::system(), other] {
        let err = match RedisQueue::connect_trusting(&url, "conveyor", &trust).await {
            Ok(_) => panic!("connected to {url} trusting {trust:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with(&format!(
                "queue error: could not connect to Redis at {url}: "
            )) && err.contains("invalid peer certificate")
                && err.contains("pass the CA's certificate (PEM) with --ca-cert"),
            "{err}"
        );
    }
    // Skipping the check is not on offer.
    let trusting = Trust::with_ca_file(Some(&pki.ca)).unwrap();
    let insecure = format!("{url}/#insecure");
    let err = match RedisQueue::connect_trusting(&insecure, "conveyor", &trusting).await {
        Ok(_) => panic!("connected to {insecure} without checking the certificate"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("Cannot create insecure client without tls-rustls-insecure feature"),
        "{err}"
    );
}
