-- Retention deletes a day's builds every day: autovacuum should reclaim their rows well
-- before a tenth of a table is dead (its default waits for a fifth), so the database stays
-- within 10% of its size once the retention window is full (docs/benchmarks.md).
ALTER TABLE builds SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
ALTER TABLE job_runs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 500);
ALTER TABLE job_edges SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 500);
