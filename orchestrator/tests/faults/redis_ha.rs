//! Exactly once past one Redis: a build of many short jobs on a 3-master Redis Cluster while
//! the fleet's slot moves to another node, and on a Sentinel-managed master killed mid-build
//! (the Sentinel promotes its replica). Every server is private, on ports of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Proc};
use crate::{Cluster, SERIAL, lines};

/// Jobs per build.
const JOBS: usize = 24;

/// Independent chains of jobs at a time (`JOBS / CHAINS` long).
const CHAINS: usize = 4;

/// A belt of `JOBS` jobs in `CHAINS` chains that each append their run id when they finish:
/// orchestrators push the next job of a chain when one finishes, so messages are written
/// throughout the build, not only at its start.
fn many_jobs(count: &Path, secs: &str) -> String {
    let job = |i: usize| {
        let needs = match i.checked_sub(CHAINS) {
            Some(before) => format!("        needs: [j{before}]\n"),
            None => String::new(),
        };
        format!(
            "      - name: j{i}\n{needs}        env: {{COUNT: '{}'}}\n        commands: sleep {secs}; echo \"$CONVEYOR_JOB_RUN_ID\" >> \"$COUNT\"\n",
            count.display()
        )
    };
    format!(
        "product: many\nbelts:\n  - name: b\n    jobs:\n{}",
        (0..JOBS).map(job).collect::<String>()
    )
}

/// `redis-cli -p port args…`'s output; panics when it fails.
fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Like [`cli`], but `None` when the server does not answer.
fn try_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
}

fn redis_server(dir: &Path, args: &[&str]) -> Proc {
    let log =
        std::fs::File::create(dir.join(format!("redis-{}.log", args.join("_").replace('/', "_"))))
            .unwrap();
    let child = Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(log)
        .spawn()
        .expect("redis-server is installed");
    Proc(child)
}

async fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three masters, slots shared out by `redis-cli --cluster create`; their ports.
async fn start_cluster(dir: &Path) -> (Vec<Proc>, Vec<u16>) {
    let ports: Vec<u16> = (0..3).map(|_| common::free_port()).collect();
    let procs = ports
        .iter()
        .map(|p| {
            let conf = dir.join(format!("nodes-{p}.conf"));
            let conf = conf.to_str().unwrap();
            redis_server(
                dir,
                &[
                    "--port",
                    &p.to_string(),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf,
                ],
            )
        })
        .collect();
    for &p in &ports {
        until("a cluster node answers", Duration::from_secs(10), || {
            try_cli(p, &["PING"]).is_some()
        })
        .await;
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut create = vec!["--cluster", "create"];
    create.extend(nodes.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    cli(ports[0], &create);
    for &p in &ports {
        until("the cluster is ok", Duration::from_secs(20), || {
            cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
        })
        .await;
    }
    (procs, ports)
}

/// Whether the node on `port` serves `slot` (per its own `CLUSTER NODES` line).
fn owns(port: u16, slot: u16) -> bool {
    let nodes = cli(port, &["CLUSTER", "NODES"]);
    let Some(me) = nodes.lines().find(|l| l.contains("myself")) else {
        return false;
    };
    me.split_whitespace().skip(8).any(|range| {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
    })
}

/// Moves `slot` with its keys from the node that owns it to another, as `redis-cli --cluster
/// reshard` does: IMPORTING/MIGRATING, `MIGRATE` each key, then `SETSLOT … NODE` everywhere.
fn move_slot(ports: &[u16], slot: u16) -> (u16, u16) {
    let from = *ports
        .iter()
        .find(|&&p| owns(p, slot))
        .expect("a node owns the slot");
    let to = *ports.iter().find(|&&p| p != from).unwrap();
    let (from_id, to_id) = (
        cli(from, &["CLUSTER", "MYID"]),
        cli(to, &["CLUSTER", "MYID"]),
    );
    let slot_s = slot.to_string();
    cli(to, &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from_id]);
    cli(from, &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to_id]);
    loop {
        let keys = cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]);
        if keys.is_empty() {
            break;
        }
        let to_s = to.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &to_s, "", "0", "5000", "KEYS"];
        args.extend(keys.lines());
        cli(from, &args);
    }
    for &p in ports {
        cli(p, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id]);
    }
    (from, to)
}

/// The lines of the count file are the run ids of the jobs that finished: each job once.
fn assert_each_once(c: &Cluster, b: &serde_json::Value) {
    assert_eq!(b["status"], "succeeded", "{b}");
    let text = std::fs::read_to_string(c.count()).unwrap_or_default();
    let mut ids: Vec<&str> = text.lines().collect();
    assert_eq!(ids.len(), JOBS, "{JOBS} jobs, {} executions", ids.len());
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), JOBS, "every job ran exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_run_once_each_on_a_redis_cluster_while_the_fleet_slot_moves() {
    let _serial = SERIAL.lock().await;
    let dir = common::temp_dir("redis-cluster");
    let (_nodes, ports) = start_cluster(&dir).await;
    let url = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let c = Cluster::new(&url).await;
    let (_serve, api) = c.serve().await;
    c.product(&api, &many_jobs(&c.count(), "0.2")).await;
    let _runners = (c.runner("one", &[&api]), c.runner("two", &[&api]));
    let id = c.build(&api, "many", "b").await;
    c.until("a few jobs finished", || async { lines(&c.count()) >= 4 })
        .await;
    let slot: u16 = cli(ports[0], &["CLUSTER", "KEYSLOT", "{fleet:default}"])
        .parse()
        .unwrap();
    let (from, to) = move_slot(&ports, slot);
    assert!(
        owns(to, slot) && !owns(from, slot),
        "slot {slot} moved from {from} to {to}"
    );
    let b = c.finished(&api, &id).await;
    assert_each_once(&c, &b);
    // The stream lives on its new node: the runners acked (and deleted) every message there.
    let key = format!("{}:{{fleet:default}}:stream", c.prefix);
    assert_eq!(cli(to, &["XLEN", &key]), "0");
}

/// A master, its replica and one Sentinel watching them (quorum 1, 1 s to notice a death).
async fn start_sentinel(dir: &Path) -> (Proc, Proc, Proc, u16, u16, u16) {
    let (m, r, s) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let master = redis_server(dir, &["--port", &m.to_string()]);
    let replica = redis_server(
        dir,
        &[
            "--port",
            &r.to_string(),
            "--replicaof",
            "127.0.0.1",
            &m.to_string(),
        ],
    );
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!("port {s}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {m} 1\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("sentinel.log")).unwrap();
    let sentinel = Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(log)
        .spawn()
        .unwrap();
    let sentinel = Proc(sentinel);
    until("the replica is in sync", Duration::from_secs(20), || {
        try_cli(r, &["INFO", "replication"]).is_some_and(|i| i.contains("master_link_status:up"))
    })
    .await;
    until(
        "the sentinel sees the replica",
        Duration::from_secs(40),
        || {
            try_cli(s, &["SENTINEL", "REPLICAS", "mymaster"])
                .is_some_and(|i| i.contains(&r.to_string()))
        },
    )
    .await;
    (master, replica, sentinel, m, r, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_run_once_each_across_a_sentinel_failover() {
    let _serial = SERIAL.lock().await;
    let dir = common::temp_dir("redis-sentinel");
    let (mut master, _replica, _sentinel, m, r, s) = start_sentinel(&dir).await;
    let c = Cluster::new(&format!("redis+sentinel://127.0.0.1:{s}/mymaster")).await;
    let (_serve, api) = c.serve().await;
    c.product(&api, &many_jobs(&c.count(), "0.3")).await;
    let _runners = (c.runner("one", &[&api]), c.runner("two", &[&api]));
    let id = c.build(&api, "many", "b").await;
    c.until("a few jobs finished", || async { lines(&c.count()) >= 4 })
        .await;
    master.0.kill().unwrap();
    let _ = master.0.wait();
    let b = c.finished_within(&api, &id, Duration::from_secs(120)).await;
    assert_each_once(&c, &b);
    let role = cli(r, &["ROLE"]);
    assert!(
        role.starts_with("master"),
        "the replica was promoted: {role}"
    );
    let named = cli(s, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
    assert!(
        named.contains(&r.to_string()) && !named.contains(&m.to_string()),
        "{named}"
    );
}

/// A runner of two fleets whose slots are on different cluster nodes reads them in turn:
/// a message to either reaches it, within the 1 s turn per other fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_of_fleets_on_different_cluster_nodes_gets_messages_of_each() {
    use conveyor_runner::queue::{Queue, RedisQueue};
    let _serial = SERIAL.lock().await;
    let dir = common::temp_dir("redis-cluster-fleets");
    let (_nodes, ports) = start_cluster(&dir).await;
    let node_of = |fleet: &str| {
        let tag = format!("{{fleet:{fleet}}}");
        let slot: u16 = cli(ports[0], &["CLUSTER", "KEYSLOT", &tag])
            .parse()
            .unwrap();
        ports.iter().position(|&p| owns(p, slot)).unwrap()
    };
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let first = names[0].clone();
    let other = names
        .iter()
        .find(|f| node_of(f) != node_of(&first))
        .unwrap()
        .clone();
    let url = format!(
        "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
        ports[0], ports[1]
    );
    let prefix = format!("conveyor-fleets-{}", uuid::Uuid::now_v7().simple());
    let queue = RedisQueue::connect(&url, &prefix).await.unwrap();
    let fleets = vec![first.clone(), other.clone()];
    for fleet in [&other, &first, &other] {
        let msg = conveyor_core::protocol::QueueMessage {
            job_run_id: format!("run-of-{fleet}"),
            attempt: 1,
        };
        let pusher = RedisQueue::connect(&url, &prefix).await.unwrap();
        let target = fleet.clone();
        let pushed = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            pusher.push(&target, &msg).await.unwrap();
            Instant::now()
        });
        let got = tokio::time::timeout(Duration::from_secs(10), queue.pop(&fleets, "r"))
            .await
            .expect("a message of either fleet is delivered")
            .unwrap();
        let popped = Instant::now();
        let latency = popped.saturating_duration_since(pushed.await.unwrap());
        assert_eq!(
            (&got.fleet, got.msg.job_run_id.as_str()),
            (fleet, format!("run-of-{fleet}").as_str())
        );
        assert!(
            latency < Duration::from_millis(2500),
            "delivered {latency:?} after the push"
        );
        eprintln!("fleet {fleet}: delivered {latency:?} after the push");
        queue.ack(&got).await.unwrap();
    }
}
