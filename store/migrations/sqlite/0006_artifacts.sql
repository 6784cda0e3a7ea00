-- Artifacts: one row per file a job run's attempt uploaded; the bytes live in the
-- orchestrator's object storage under `object` (artifacts/BUILD/JOB_RUN/ATTEMPT/PATH, so a
-- build's files can be deleted by prefix). A build lists the rows of each job run's current
-- attempt.
CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    build_id TEXT NOT NULL,
    job_run_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    object TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (job_run_id, attempt, path)
);
CREATE INDEX artifacts_by_build ON artifacts (build_id);

-- Caches: an archive per product, scope (the branch that wrote it) and key; `used_at` orders
-- the least recently used for eviction.
CREATE TABLE caches (
    id TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    object TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT NOT NULL,
    UNIQUE (product, scope, cache_key)
);
CREATE INDEX caches_by_use ON caches (product, used_at);
