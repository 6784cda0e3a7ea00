//! `conveyor bench --history`: end to end on a small history — seeded, served by a child
//! `conveyor serve`, loaded from a second process — printing figures for every endpoint, the
//! server's memory and webhook latency; and the retention simulation's days. Shapes only:
//! timings are for `docs/benchmarks.md`, not for assertions.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "conveyor bench {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn bench_history_prints_every_endpoints_latency_memory_and_webhook_latency() {
    let v = bench(&[
        "--history",
        "200",
        "--readers",
        "4",
        "--writers",
        "1",
        "--secs",
        "2",
        "--webhooks",
        "3",
    ]);
    assert_eq!(v["builds"], 200, "{v}");
    assert!(v["seeded"]["job_runs"].as_u64().unwrap() >= 200, "{v}");
    let endpoints = v["load"]["endpoints"].as_object().unwrap();
    for name in [
        "api_builds",
        "api_builds_filtered",
        "page_overview",
        "page_product",
        "page_build",
        "page_job",
        "metrics",
        "write",
    ] {
        let e = &endpoints[name];
        assert!(e["n"].as_u64().unwrap() > 0, "{name} was read: {v}");
        assert_eq!(e["errors"], 0, "{name} answered every request: {v}");
        assert!(
            e["p99_ms"].as_f64().unwrap() >= e["p50_ms"].as_f64().unwrap(),
            "{v}"
        );
    }
    let rss = &v["rss_mb"];
    for at in ["before", "during_max", "after", "peak"] {
        assert!(
            rss[at].as_f64().unwrap() > 0.0,
            "the server's memory {at}: {v}"
        );
    }
    assert_eq!(v["webhooks"]["n"], 3, "{v}");
    assert!(v["webhooks"]["p50_ms"].as_f64().unwrap() >= 0.0, "{v}");
}

#[test]
fn bench_history_with_days_prints_the_size_after_each_simulated_day() {
    let v = bench(&["--history", "48", "--days", "4", "--keep-days", "2"]);
    let days = v["by_day"].as_array().unwrap();
    assert_eq!(days.len(), 4, "{v}");
    let kept: Vec<u64> = days.iter().map(|d| d["builds"].as_u64().unwrap()).collect();
    assert_eq!(kept[0], 48, "nothing is due on day one: {v}");
    assert!(
        kept[3] < 4 * 48 && days[3]["deleted"].as_u64().unwrap() > 0,
        "builds older than two days were swept: {v}"
    );
    assert!(v["growth"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn bench_history_needs_a_database_url_for_postgres() {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["bench", "--history", "10", "--backend", "postgres"])
        .env_remove("CONVEYOR_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--database-url is needed"), "{stderr}");
}
