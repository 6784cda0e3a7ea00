-- Dashboard sessions, so that signing out ends one on every orchestrator: the SHA-256 of
-- each live session's id (the cookie holds the id), until it is signed out or expires.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- How many bytes of log each attempt of a job run has stored, and whether it reached the
-- cap (`serve --max-log-mib`): past it, lines are dropped after one marker line.
CREATE TABLE log_sizes (
    job_run_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    truncated BOOLEAN NOT NULL,
    PRIMARY KEY (job_run_id, attempt)
);
