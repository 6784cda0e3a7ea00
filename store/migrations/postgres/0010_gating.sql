-- Gating: a build's context (event, branch, tag, the paths its change touched) for
-- conditions, groups and downstream gates; why a job run was skipped or declined and who
-- decided; what a waiting job run waits for; and concurrency groups with their members in
-- order (a build for a belt's or product's group, a job run for a job's).
ALTER TABLE builds ADD COLUMN context TEXT;
ALTER TABLE job_runs ADD COLUMN reason TEXT;
ALTER TABLE job_runs ADD COLUMN decided_by TEXT;
ALTER TABLE job_runs ADD COLUMN waiting_for TEXT;

-- One row per group: the row every entrant and leaver locks, and the order's counter.
CREATE TABLE concurrency_groups (
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    next_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (product, name)
);

-- A group's members: the one that holds it runs, the others wait in `seq` order.
CREATE TABLE concurrency_members (
    member TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    build_id TEXT NOT NULL,
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    seq BIGINT NOT NULL,
    holds BOOLEAN NOT NULL DEFAULT FALSE,
    started BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX concurrency_members_by_group ON concurrency_members (product, name, seq);
CREATE INDEX concurrency_members_holding ON concurrency_members (holds, started);
