-- Commit statuses: a build started by a forge's webhook reports its state back to that forge.
-- `forge_status` is NULL for builds that report nothing, else the last build status the forge
-- was told ('' before the first report); a build whose status differs is due a report.
ALTER TABLE builds ADD COLUMN forge_status TEXT;
CREATE INDEX builds_forge_due ON builds (created_at) WHERE forge_status IS NOT NULL;

-- The commit at the head of a repository product's branch, as last seen (registration or a
-- push to the branch): what downstream builds of the product check out.
ALTER TABLE products ADD COLUMN head_sha TEXT;
