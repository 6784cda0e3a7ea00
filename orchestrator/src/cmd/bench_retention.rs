//! `conveyor bench --history N --days D --keep-days K`: retention at scale on a simulated
//! clock. Each simulated day writes N builds (with job runs, edges and logs, through the
//! seeding helper) an hour's worth at a time, and after each hour the retention sweep runs in
//! its upkeep batches until nothing more is due, as every node's upkeep would during that
//! hour. The database's size is printed after every day: past day K it should stay flat
//! (SQLite reuses the pages deletes free; Postgres reuses the space VACUUM reclaims, run
//! when autovacuum's rule says: see [`AUTOVACUUM_THRESHOLD`]).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::bench_stats::Fresh;
use crate::services::maintenance::SWEEP_BATCH;
use crate::store::seed::SeedPlan;
use crate::store::{Retention, Store};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// Postgres' autovacuum rule for `builds` as migration 0016 sets it: a table is vacuumed once
/// its dead rows pass threshold + scale factor × its rows. The simulation counts the builds
/// the sweeps deleted (job runs and edges go in proportion) and vacuums when the rule is met,
/// as autovacuum would: its statistics lag behind a simulated hour that lasts a second.
const AUTOVACUUM_THRESHOLD: u64 = 200;
const AUTOVACUUM_SCALE: f64 = 0.02;

pub struct RetentionBench {
    pub per_day: u64,
    pub days: u32,
    pub keep_days: u32,
    pub backend: String,
    pub database_url: Option<String>,
    pub json: bool,
}

pub async fn run(r: RetentionBench) -> ExitCode {
    let dir = std::env::temp_dir().join(format!(
        "conveyor-bench-retention-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let result = match std::fs::create_dir_all(&dir) {
        Ok(()) => measure(&r, &dir).await,
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(v) if r.json => println!("{v}"),
        Ok(v) => print!("{}", text(&v)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn measure(r: &RetentionBench, dir: &std::path::Path) -> Result<Value, String> {
    let db = Fresh::create(&r.backend, r.database_url.as_deref(), dir).await?;
    let result = simulate(r, &db).await;
    db.drop_database().await;
    result
}

async fn simulate(r: &RetentionBench, db: &Fresh) -> Result<Value, String> {
    let (store, products) = super::bench_history::open_seeded(&db.url).await?;
    let retention = Retention {
        max_age_ms: Some(i64::from(r.keep_days) * DAY),
        keep_last: None,
    };
    let start = crate::clock::now_ms() - i64::from(r.days) * DAY;
    let per_hour = r.per_day.div_ceil(24).max(1);
    let mut days = Vec::new();
    let (mut deleted, mut dead, mut vacuums) = (0, 0, 0u32);
    for day in 0..i64::from(r.days) {
        for hour in 0..24 {
            let at = start + day * DAY + hour * HOUR;
            let plan = SeedPlan {
                builds: per_hour,
                start_ms: at,
                spacing_ms: HOUR / per_hour as i64,
                log_every: 50,
                log_lines: 20,
                seed: (day * 24 + hour + 1) as u64,
            };
            store
                .seed_builds(&products, &plan)
                .await
                .map_err(|e| e.to_string())?;
            let swept = sweep(&*store, &retention, at + HOUR).await?;
            (deleted, dead) = (deleted + swept, dead + swept);
            if dead
                > AUTOVACUUM_THRESHOLD
                    + (AUTOVACUUM_SCALE * (per_hour * 24 * u64::from(r.keep_days)) as f64) as u64
            {
                vacuums += u32::from(db.vacuum().await?);
                dead = 0;
            }
        }
        days.push(json!({ "day": day + 1, "size_mb": mb(db.size().await?),
            "builds": db.builds().await?, "deleted": deleted, "vacuums": vacuums, "free_pages": db.free_pages().await? }));
    }
    let at = |d: usize| {
        days.get(d.wrapping_sub(1))
            .and_then(|v| v["size_mb"].as_f64())
            .unwrap_or(0.0)
    };
    let (kept, last) = (at(r.keep_days as usize), at(r.days as usize));
    Ok(
        json!({ "backend": r.backend, "per_day": per_hour * 24, "days": r.days, "keep_days": r.keep_days,
        "size_mb_after_keep_days": kept, "size_mb_at_end": last,
        "growth": if kept > 0.0 { (last / kept * 1000.0).round() / 1000.0 } else { 0.0 }, "by_day": days }),
    )
}

/// Sweeps in upkeep-sized batches until nothing is due at `now`; how many builds went.
async fn sweep(store: &dyn Store, retention: &Retention, now: i64) -> Result<u64, String> {
    let mut total = 0;
    loop {
        let swept = store
            .sweep(retention, now, SWEEP_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        total += swept.builds;
        if swept.builds == 0 {
            return Ok(total);
        }
    }
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 104_857.6).round() / 10.0
}

fn text(v: &Value) -> String {
    let mut out = format!(
        "retention: {} builds a day for {} days on {}, keeping {} days\n",
        v["per_day"],
        v["days"],
        v["backend"].as_str().unwrap_or(""),
        v["keep_days"]
    );
    for d in v["by_day"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  day {:3}  {:8} MB  {:7} builds  {:7} deleted so far  {} vacuums  {} free pages\n",
            d["day"], d["size_mb"], d["builds"], d["deleted"], d["vacuums"], d["free_pages"]
        ));
    }
    out.push_str(&format!(
        "size after day {}: {} MB; at the end: {} MB ({}x)\n",
        v["keep_days"], v["size_mb_after_keep_days"], v["size_mb_at_end"], v["growth"]
    ));
    out
}
