-- When a manual job run was approved or declined (ms since the epoch), beside who did it.
ALTER TABLE job_runs ADD COLUMN decided_at INTEGER;
