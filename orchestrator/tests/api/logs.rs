//! A job run's log over the API: ranges by line number both ways with the total, a search
//! continued by `next`, and the errors that name the bad parameter.

use conveyor_core::protocol::{LogBatch, Stream};
use serde_json::{Value, json};

use super::{line, spawn_app};

/// The line numbers and texts of a range's lines.
fn lines(v: &Value) -> Vec<(i64, String)> {
    v["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {v}"))
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["text"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn numbered(ns: std::ops::RangeInclusive<i64>) -> Vec<(i64, String)> {
    ns.map(|n| (n, format!("line {n}"))).collect()
}

#[tokio::test]
async fn a_log_reads_by_line_number_both_ways_and_searches_a_stretch_at_a_time() {
    let app = spawn_app().await;
    app.shop_build().await;
    let spec = app.take_and_claim().await;
    let id = spec.lease.job_run_id.clone();
    for (seq, from) in [(0, 1), (1, 1501)] {
        let mut texts: Vec<_> = (from..from + 1500)
            .map(|n| line(Stream::Stdout, &format!("line {n}")))
            .collect();
        if seq == 1 {
            texts[0].labels.insert("kind".into(), "command".into());
        }
        let batch = json!(LogBatch {
            lease: spec.lease.clone(),
            seq,
            lines: texts,
        });
        assert_eq!(app.runner("/api/v1/runner/logs", &batch).await.0, 204);
    }
    let logs = format!("/api/v1/job-runs/{id}/logs");
    let (status, first) = app.get(&logs).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!((lines(&first).len(), &first["total"]), (1000, &json!(3000)));
    let (_, across) = app.get(&format!("{logs}?after=998&limit=4")).await;
    assert_eq!(lines(&across), numbered(999..=1002));
    let (_, tail) = app.get(&format!("{logs}?before=99999&limit=2")).await;
    assert_eq!(
        lines(&tail),
        numbered(2999..=3000),
        "past the end: the tail"
    );
    let (_, older) = app.get(&format!("{logs}?before=1501&limit=3")).await;
    assert_eq!(lines(&older), numbered(1498..=1500));
    let (_, between) = app.get(&format!("{logs}?after=10&before=14")).await;
    assert_eq!(lines(&between), numbered(11..=13));

    let search = format!("/api/v1/job-runs/{id}/logs/search");
    let (status, found) = app.get(&format!("{search}?q=LINE%20150&limit=3")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found,
        json!({ "matches": [{ "id": 150, "text": "line 150" },
            { "id": 1500, "text": "line 1500" }, { "id": 1501, "text": "line 1501" }],
            "next": 1501 })
    );
    let (_, rest) = app.get(&format!("{search}?q=line%20150&after=1501")).await;
    let ids: Vec<_> = rest["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids.len(), 8, "1502 … 1509: {rest}");
    assert_eq!(rest["next"], Value::Null);
    let (_, commands) = app.get(&format!("{search}?kind=command")).await;
    assert_eq!(
        commands["matches"],
        json!([{ "id": 1501, "text": "line 1501" }])
    );
}

#[tokio::test]
async fn a_bad_range_or_search_names_its_parameter_and_an_unknown_job_run_is_a_404() {
    let app = spawn_app().await;
    app.shop_build().await;
    let spec = app.take_and_claim().await;
    let logs = format!("/api/v1/job-runs/{}/logs", spec.lease.job_run_id);
    let search = format!("{logs}/search");
    for (path, field) in [
        (format!("{logs}?after=-1"), "after"),
        (format!("{logs}?before=x"), "before"),
        (format!("{logs}?limit=0"), "limit"),
        (format!("{logs}?limit=10001"), "limit"),
        (search.clone(), "q"),
        (format!("{search}?q=x&limit=1001"), "limit"),
        (format!("{search}?q=a%00b"), "q"),
        (format!("{search}?kind=x&after=y"), "after"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    let (status, body) = app.get(&format!("{logs}?limit=10000")).await;
    assert_eq!((status, &body["total"]), (200, &json!(0)));
    for path in [
        "/api/v1/job-runs/nope/logs",
        "/api/v1/job-runs/nope/logs/search?q=x",
    ] {
        assert_eq!(app.get(path).await.0, 404, "{path}");
    }
}
