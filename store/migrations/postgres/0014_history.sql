-- History at scale: the trigger's kind as a column lists filter by, and an index for
-- every hot filter of a build list (newest first) and for a build's edges.
ALTER TABLE builds ADD COLUMN trigger_kind TEXT
    GENERATED ALWAYS AS (("trigger"::jsonb) ->> 'kind') STORED;
CREATE INDEX builds_by_time ON builds (created_at, id);
CREATE INDEX builds_by_product ON builds (product, created_at, id);
CREATE INDEX builds_by_belt ON builds (product, belt, created_at, id);
CREATE INDEX builds_by_belt_status ON builds (product, belt, status, created_at, id);
CREATE INDEX builds_by_status_time ON builds (status, created_at, id);
CREATE INDEX builds_by_ref ON builds (git_ref, created_at, id);
CREATE INDEX builds_by_trigger ON builds (trigger_kind, created_at, id);
CREATE INDEX builds_unfinished ON builds (created_at) WHERE finished_at IS NULL;
CREATE INDEX job_edges_by_build ON job_edges (build_id);
-- A product's repository as webhooks look it up: trimmed, no trailing `/` or `.git`,
-- lower case (as `git::repo_key` makes the delivery's URLs).
ALTER TABLE products ADD COLUMN repo_key TEXT
    GENERATED ALWAYS AS (lower(CASE WHEN substr(rtrim(trim(repo), '/'), length(rtrim(trim(repo), '/')) - 3) = '.git' THEN substr(rtrim(trim(repo), '/'), 1, length(rtrim(trim(repo), '/')) - 4) ELSE rtrim(trim(repo), '/') END)) STORED;
CREATE INDEX products_by_repo ON products (repo_key);
