#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use crate::sql::Backend;

/// Lets the tasks spawned on this (single-threaded) runtime run until they wait.
async fn let_others_run() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// A claim queued after a write still gets the writer first, once the transaction that
/// holds it ends.
#[tokio::test]
async fn a_claim_goes_ahead_of_the_writes_waiting_their_turn() {
    let dir = crate::testing::temp_dir("claimer");
    let url = format!("sqlite://{}/c.db", dir.display());
    let backend = Arc::new(super::backend(&url, Default::default()).await.unwrap());
    let order = Arc::new(Mutex::new(Vec::new()));
    let tx = backend.begin().await.unwrap();
    let (b, o) = (backend.clone(), order.clone());
    let write = tokio::spawn(async move {
        let _w = b.writer().await.unwrap();
        o.lock().unwrap().push("write");
    });
    let_others_run().await;
    let (b, o) = (backend.clone(), order.clone());
    let claim = tokio::spawn(async move {
        let _c = b.claimer().await.unwrap();
        o.lock().unwrap().push("claim");
    });
    let_others_run().await;
    assert!(
        order.lock().unwrap().is_empty(),
        "both wait for the transaction"
    );
    drop(tx);
    write.await.unwrap();
    claim.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["claim", "write"]);
}

/// A product whose job `two` needs `one`, and a build of it.
fn two_jobs_one_after_the_other() -> (crate::ProductRecord, crate::NewBuild) {
    let yaml = "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: one\n        \
                commands: 'true'\n      - name: two\n        needs: [one]\n        \
                commands: 'true'\n";
    let new = crate::NewBuild {
        product: "p".into(),
        belt: "b".into(),
        trigger: crate::BuildTrigger::Manual,
        git_ref: None,
        sha: None,
        model: None,
        resource: None,
        context: None,
    };
    (crate::testing::product(yaml), new)
}

/// A job run taken for a runner by a completion, whose answer could not be made, goes
/// back to its queue at the same attempt, once (the lease fences a second try), and is
/// claimed again at that attempt.
#[tokio::test]
async fn a_taken_job_run_put_back_is_queued_again_at_its_attempt_once() {
    use crate::Store;
    use conveyor_core::protocol::{ClaimRequest, Completion, Outcome};
    let dir = crate::testing::temp_dir("untake");
    let url = format!("sqlite://{}/u.db", dir.display());
    let store = crate::sql::SqlStore::new(super::backend(&url, Default::default()).await.unwrap());
    let (product, new) = two_jobs_one_after_the_other();
    store.put_product(&product, 1).await.unwrap();
    let (_, created) = store.create_build(&new, 2).await.unwrap();
    let owner = crate::Owner {
        name: "r1".into(),
        fleets: vec!["default".into()],
    };
    let req = |id: &str| ClaimRequest {
        job_run_id: id.into(),
        attempt: 1,
        runner: "r1".into(),
    };
    let one = &created.dispatch[0].msg.job_run_id;
    let claim = store
        .claim(&req(one), &owner, 30_000, 3)
        .await
        .unwrap()
        .unwrap();
    let done = Completion {
        lease: claim.spec.lease,
        outcome: Outcome::Succeeded,
        exit_code: Some(0),
        outputs: Default::default(),
        error: None,
        log: Vec::new(),
        take_next: true,
    };
    let (_, next) = store
        .complete_taking(&done, &owner, u64::MAX, 30_000, 4)
        .await
        .unwrap()
        .unwrap();
    let lease = next.unwrap().spec.lease;
    let back = store.untake(lease.clone(), "r1").await.unwrap();
    assert_eq!(
        (&back.msg.job_run_id, back.msg.attempt),
        (&lease.job_run_id, 1)
    );
    assert!(store.untake(lease.clone(), "r1").await.is_none(), "fenced");
    let again = store
        .claim(&req(&lease.job_run_id), &owner, 30_000, 5)
        .await;
    assert!(again.unwrap().is_some(), "claimable again at its attempt");
}

/// Runs `statements` in one write transaction of another connection to the database, as
/// another process would: its `BEGIN IMMEDIATE` waits (up to 10 s) for SQLite's write lock.
async fn other_process_writes(url: &str, statements: &[&'static str]) {
    use sqlx::Connection;
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(std::time::Duration::from_secs(10));
    let mut other = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let all = [&["BEGIN IMMEDIATE"], statements, &["COMMIT"]].concat();
    for statement in all {
        sqlx::query(statement).execute(&mut other).await.unwrap();
    }
}

/// A new database's backend, and its URL.
async fn fresh(tag: &str) -> (super::SqliteBackend, String) {
    let dir = crate::testing::temp_dir(tag);
    let url = format!("sqlite://{}/{tag}.db", dir.display());
    (super::backend(&url, Default::default()).await.unwrap(), url)
}

/// Puts `x` in the probe table.
fn insert(x: i64) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query("INSERT INTO probe (x) VALUES ($1)").bind(x)
}

/// The values in the probe table, read on a reader connection.
async fn probed(backend: &super::SqliteBackend) -> Vec<i64> {
    let mut conn = backend.conn().await.unwrap();
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT x FROM probe ORDER BY x")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.into_iter().map(|(x,)| x).collect()
}

/// A write transaction dropped without its commit (a fenced-out completion, a cancelled
/// request) is rolled back at once: its rows are gone, the next write is not inside it, and
/// SQLite's write lock is free for another process, with no later write needed to free it.
#[tokio::test]
async fn a_write_transaction_dropped_uncommitted_is_rolled_back_at_once() {
    let (backend, url) = fresh("dropped").await;
    let create = sqlx::query("CREATE TABLE probe (x INTEGER)");
    create
        .execute(&mut *backend.writer().await.unwrap())
        .await
        .unwrap();
    let mut tx = backend.begin().await.unwrap();
    insert(1).execute(&mut *tx).await.unwrap();
    drop(tx);
    other_process_writes(&url, &["INSERT INTO probe (x) VALUES (2)"]).await;
    insert(3)
        .execute(&mut *backend.writer().await.unwrap())
        .await
        .unwrap();
    let mut tx = backend.begin().await.unwrap();
    insert(4).execute(&mut *tx).await.unwrap();
    super::SqliteBackend::commit(tx).await.unwrap();
    assert_eq!(probed(&backend).await, [2, 3, 4]);
}

/// A transaction whose rollback could not be started when it was dropped (no runtime to
/// run it) is rolled back before the writer's next use: a claim after it is not written
/// inside it, to be lost with it.
#[test]
fn a_transaction_left_open_is_rolled_back_before_the_writers_next_use() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (backend, _) = runtime.block_on(fresh("left-open"));
    let tx = runtime.block_on(async {
        let mut w = backend.writer().await.unwrap();
        let create = sqlx::query("CREATE TABLE probe (x INTEGER)");
        create.execute(&mut *w).await.unwrap();
        drop(w);
        let mut tx = backend.begin().await.unwrap();
        insert(1).execute(&mut *tx).await.unwrap();
        tx
    });
    // Outside the runtime: no task can roll it back now.
    drop(tx);
    runtime.block_on(async {
        let mut claimer = backend.claimer().await.unwrap();
        insert(2).execute(&mut *claimer).await.unwrap();
        drop(claimer);
        assert_eq!(probed(&backend).await, [2]);
    });
}

/// A `COMMIT` that fails leaves SQLite's transaction open: it is rolled back at once, so
/// its rows are gone and the write lock is free for another process.
#[tokio::test]
async fn a_transaction_whose_commit_failed_is_rolled_back_at_once() {
    let (backend, url) = fresh("commit-failed").await;
    let mut w = backend.writer().await.unwrap();
    for ddl in [
        "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE probe (x INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
    ] {
        sqlx::query(ddl).execute(&mut *w).await.unwrap();
    }
    drop(w);
    let mut tx = backend.begin().await.unwrap();
    insert(1).execute(&mut *tx).await.unwrap();
    // The deferred foreign key fails the COMMIT, and SQLite keeps the transaction open.
    assert!(super::SqliteBackend::commit(tx).await.is_err());
    let parent_and_child = [
        "INSERT INTO parent (id) VALUES (2)",
        "INSERT INTO probe (x) VALUES (2)",
    ];
    other_process_writes(&url, &parent_and_child).await;
    assert_eq!(probed(&backend).await, [2]);
}
