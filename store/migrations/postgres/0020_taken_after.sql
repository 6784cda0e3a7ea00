-- The lease token of the completion that took this job run for its runner (a completion
-- asking to `take_next`), NULL for a job run claimed from the queue: a replay of that
-- completion, whose answer was lost, is answered with the same job run instead of leaving
-- it to wait out its lease.
ALTER TABLE job_runs ADD COLUMN taken_after TEXT;
