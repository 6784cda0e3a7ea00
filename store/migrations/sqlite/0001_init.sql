-- conveyor schema (SQLite). Kept in step with migrations/postgres/0001_init.sql.
-- Ids are UUIDv7 text; times are Unix milliseconds; JSON is text.
CREATE TABLE products (
    name TEXT PRIMARY KEY,
    yaml TEXT NOT NULL,
    model TEXT NOT NULL,
    repo TEXT,
    branch TEXT,
    webhook_secret TEXT,
    source_path TEXT,
    next_build_number BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE builds (
    id TEXT PRIMARY KEY,
    product TEXT NOT NULL REFERENCES products (name),
    belt TEXT NOT NULL,
    number BIGINT NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    upstream_build_id TEXT REFERENCES builds (id),
    git_ref TEXT,
    sha TEXT,
    source_path TEXT,
    error TEXT,
    unfinished BIGINT NOT NULL,
    failed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (product, number)
);
CREATE INDEX builds_by_status ON builds (status);
CREATE INDEX builds_by_upstream ON builds (upstream_build_id);

CREATE TABLE job_runs (
    id TEXT PRIMARY KEY,
    build_id TEXT NOT NULL REFERENCES builds (id),
    idx BIGINT NOT NULL,
    name TEXT NOT NULL,
    fleet TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 1,
    failures BIGINT NOT NULL DEFAULT 0,
    lost BIGINT NOT NULL DEFAULT 0,
    retries BIGINT NOT NULL,
    pending_deps BIGINT NOT NULL,
    spec TEXT NOT NULL,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    exit_code BIGINT,
    outputs TEXT,
    error TEXT,
    queued_at BIGINT,
    started_at BIGINT,
    finished_at BIGINT,
    UNIQUE (build_id, name)
);
CREATE INDEX job_runs_by_build ON job_runs (build_id, idx);
CREATE INDEX job_runs_by_status ON job_runs (status, lease_expires_at);

CREATE TABLE job_edges (
    build_id TEXT NOT NULL,
    from_run TEXT NOT NULL,
    to_run TEXT NOT NULL,
    PRIMARY KEY (from_run, to_run)
);
CREATE INDEX job_edges_by_to ON job_edges (to_run);

CREATE TABLE log_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_run_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    line_no BIGINT NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    at BIGINT NOT NULL,
    UNIQUE (job_run_id, attempt, seq, line_no)
);
CREATE INDEX log_lines_by_run ON log_lines (job_run_id, id);
