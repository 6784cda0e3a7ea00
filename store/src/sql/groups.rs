//! Concurrency groups: at most one member of a group (a build, for a belt's or product's
//! group; a job run, for a job's) holds it and runs, the others wait in the order they
//! entered. Entering and leaving take the group's row lock (`UPDATE concurrency_groups`),
//! so two orchestrators can never both see a group free; a member promoted on leaving is
//! started after commit, in a transaction of its own that takes its build's lock first
//! (`start`), and the maintenance tick starts any promoted member a crash left unstarted.

use conveyor_core::context::{BuildContext, render_group};
use conveyor_core::model::{Belt, Job};
use conveyor_core::protocol::QueueMessage;

use super::builds::{make_ready, settle};
use super::conn::{Conn, sql};
use super::{Work, from_json};
use crate::error::Result;
use crate::types::Dispatch;

/// A step after commit that takes another build's lock.
pub(crate) enum FollowUp {
    /// A build a newer one of its concurrency group superseded.
    CancelBuild(String),
    /// A job run a newer one of its concurrency group superseded.
    CancelJobRun(String),
    /// A group member promoted to hold its group.
    Start(String),
}

/// What a member is: a whole build, or one job run.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Build,
    Job,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Job => "job",
        }
    }
}

/// A member entering its group.
pub(crate) struct Entrant<'a> {
    pub kind: Kind,
    pub member: &'a str,
    pub build_id: &'a str,
    pub product: &'a str,
    pub group: &'a str,
    pub cancel_superseded: bool,
}

/// Whether a new build may start now: it has no concurrency group, or it holds its group
/// (else it waits, its free jobs pending, until the group's holder leaves).
pub(crate) async fn enter_build<C: Conn>(
    conn: &mut C,
    product: &str,
    belt: &Belt,
    build_id: &str,
    ctx: &BuildContext,
    work: &mut Work,
) -> Result<bool> {
    let Some(c) = &belt.concurrency else {
        return Ok(true);
    };
    let group = render_group(&c.group, ctx);
    let entrant = Entrant {
        kind: Kind::Build,
        member: build_id,
        build_id,
        product,
        group: &group,
        cancel_superseded: c.cancel_superseded,
    };
    enter(conn, &entrant, work).await
}

/// Whether a job run ready to queue may: its job has no concurrency group, or the job
/// run holds it (else it waits for the group).
pub(crate) async fn enter_job<C: Conn>(
    conn: &mut C,
    build_id: &str,
    run_id: &str,
    job: &Job,
    work: &mut Work,
) -> Result<bool> {
    let Some(c) = &job.concurrency else {
        return Ok(true);
    };
    let ctx = super::values::context_of(conn, build_id).await?;
    let (product,): (String,) = conn
        .one(sql("SELECT product FROM builds WHERE id = $1").bind(build_id))
        .await?;
    let group = render_group(&c.group, &ctx);
    let entrant = Entrant {
        kind: Kind::Job,
        member: run_id,
        build_id,
        product: &product,
        group: &group,
        cancel_superseded: c.cancel_superseded,
    };
    enter(conn, &entrant, work).await
}

/// Takes the group's row lock (creating the row), and the next place in its order.
async fn lock_group<C: Conn>(conn: &mut C, product: &str, group: &str) -> Result<i64> {
    conn.exec(
        sql(
            "INSERT INTO concurrency_groups (product, name, next_seq) VALUES ($1, $2, 0) \
             ON CONFLICT (product, name) DO NOTHING",
        )
        .bind(product)
        .bind(group),
    )
    .await?;
    let (seq,): (i64,) = conn
        .one(
            sql("UPDATE concurrency_groups SET next_seq = next_seq + 1 \
                 WHERE product = $1 AND name = $2 RETURNING next_seq")
            .bind(product)
            .bind(group),
        )
        .await?;
    Ok(seq)
}

/// Enters a member; whether it holds the group at once (and may run). With
/// `cancel_superseded`, every older member is cancelled after commit.
pub(crate) async fn enter<C: Conn>(conn: &mut C, e: &Entrant<'_>, work: &mut Work) -> Result<bool> {
    let seq = lock_group(conn, e.product, e.group).await?;
    let older: Vec<(String, String, String)> = conn
        .all(
            sql("SELECT member, kind, build_id FROM concurrency_members \
                 WHERE product = $1 AND name = $2 ORDER BY seq")
            .bind(e.product)
            .bind(e.group),
        )
        .await?;
    let holds = older.is_empty();
    conn.exec(
        sql("INSERT INTO concurrency_members \
             (member, kind, build_id, product, name, seq, holds, started) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
        .bind(e.member)
        .bind(e.kind.name())
        .bind(e.build_id)
        .bind(e.product)
        .bind(e.group)
        .bind(seq)
        .bind(holds),
    )
    .await?;
    if e.cancel_superseded {
        for (member, kind, build_id) in older {
            work.follow.push(match kind.as_str() {
                "build" => FollowUp::CancelBuild(build_id),
                _ => FollowUp::CancelJobRun(member),
            });
        }
    }
    Ok(holds)
}

/// A member that finished leaves its group; the next in order, if it held it, is
/// promoted and started after commit. Nothing happens for a job run or build that is no
/// member.
pub(crate) async fn leave<C: Conn>(conn: &mut C, member: &str, work: &mut Work) -> Result<()> {
    let row: Option<(String, String, bool)> = conn
        .opt(
            sql("SELECT product, name, holds FROM concurrency_members WHERE member = $1")
                .bind(member),
        )
        .await?;
    let Some((product, group, holds)) = row else {
        return Ok(());
    };
    lock_group(conn, &product, &group).await?;
    conn.exec(sql("DELETE FROM concurrency_members WHERE member = $1").bind(member))
        .await?;
    if !holds {
        return Ok(());
    }
    let next: Option<(String,)> = conn
        .opt(
            sql(
                "SELECT member FROM concurrency_members WHERE product = $1 AND name = $2 \
                 ORDER BY seq LIMIT 1",
            )
            .bind(&product)
            .bind(&group),
        )
        .await?;
    if let Some((next,)) = next {
        conn.exec(sql("UPDATE concurrency_members SET holds = TRUE WHERE member = $1").bind(&next))
            .await?;
        work.follow.push(FollowUp::Start(next));
    }
    Ok(())
}

/// Starts a member that holds its group and has not started: a build's free jobs are
/// readied, a job run is queued. Idempotent.
pub(crate) async fn start<C: Conn>(
    conn: &mut C,
    member: &str,
    now: i64,
    work: &mut Work,
) -> Result<()> {
    let row: Option<(String, String)> = conn
        .opt(
            sql("SELECT kind, build_id FROM concurrency_members \
                 WHERE member = $1 AND holds AND NOT started")
            .bind(member),
        )
        .await?;
    let Some((kind, build_id)) = row else {
        return Ok(());
    };
    conn.opt::<(String,)>(sql(C::LOCK_BUILD).bind(&build_id))
        .await?;
    let marked = conn
        .exec(
            sql("UPDATE concurrency_members SET started = TRUE \
                 WHERE member = $1 AND holds AND NOT started")
            .bind(member),
        )
        .await?;
    if marked == 0 {
        return Ok(());
    }
    if kind == "build" {
        return start_build(conn, &build_id, now, work).await;
    }
    queue_job_run(conn, member, now, work).await
}

/// A build promoted to hold its group: its free jobs are readied.
async fn start_build<C: Conn>(
    conn: &mut C,
    build_id: &str,
    now: i64,
    work: &mut Work,
) -> Result<()> {
    let free: Vec<(String, String)> = conn
        .all(
            sql(
                // By the build's index, not the status index (see `builds::unblock`).
                "SELECT id, spec FROM job_runs WHERE build_id = $1 \
                 AND (status = 'pending') IS TRUE AND pending_deps = 0 ORDER BY idx",
            )
            .bind(build_id),
        )
        .await?;
    let mut settled = Vec::new();
    for (run, spec) in free {
        let job: Job = from_json(&spec)?;
        make_ready(conn, build_id, &run, &job, now, work, &mut settled).await?;
    }
    settle(conn, build_id, settled, now, work).await
}

/// A job run promoted to hold its group: queued and dispatched.
async fn queue_job_run<C: Conn>(conn: &mut C, id: &str, now: i64, work: &mut Work) -> Result<()> {
    let queued: Option<(String, i64)> = conn
        .opt(
            sql(
                "UPDATE job_runs SET status = 'queued', waiting_for = NULL, queued_at = $2 \
                 WHERE id = $1 AND status = 'waiting' AND waiting_for = 'concurrency' \
                 RETURNING fleet, attempt",
            )
            .bind(id)
            .bind(now),
        )
        .await?;
    if let Some((fleet, attempt)) = queued {
        work.effects.dispatch.push(Dispatch {
            fleet,
            msg: QueueMessage {
                job_run_id: id.to_string(),
                attempt: attempt as u32,
            },
        });
    }
    Ok(())
}

/// Members that hold their group but were never started (a crash between the commit that
/// promoted them and the one that starts them).
pub(crate) async fn unstarted<C: Conn>(conn: &mut C) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = conn
        .all(sql(
            "SELECT member FROM concurrency_members WHERE holds AND NOT started ORDER BY seq",
        ))
        .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

/// What a member that does not hold its group waits for, in words; `None` if it is no
/// waiting member.
pub(crate) async fn waiting_for<C: Conn>(conn: &mut C, member: &str) -> Result<Option<String>> {
    let row: Option<(String, String, bool)> = conn
        .opt(
            sql("SELECT product, name, holds FROM concurrency_members WHERE member = $1")
                .bind(member),
        )
        .await?;
    let Some((product, group, false)) = row else {
        return Ok(None);
    };
    let holder: Option<(i64, String)> = conn
        .opt(
            sql("SELECT b.number, m.kind FROM concurrency_members m \
                 JOIN builds b ON b.id = m.build_id \
                 WHERE m.product = $1 AND m.name = $2 AND m.holds")
            .bind(&product)
            .bind(&group),
        )
        .await?;
    let by = match holder {
        Some((n, _)) => format!(", held by build #{n}"),
        None => String::new(),
    };
    Ok(Some(format!("concurrency group `{group}`{by}")))
}
