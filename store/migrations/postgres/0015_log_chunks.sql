-- Job logs in chunks: one row per stored batch (split at 1,000 lines or 256 KiB), its lines
-- numbered 1, 2, 3 … across the job run's attempts. `body` holds the lines as JSON, one
-- object a line: `t` the text, `s` the stream (absent: stdout), `at` the time in ms (or `d`
-- the time since the previous line's, absent: 0), `l` the labels (absent: none). `bytes` is
-- the lines' text bytes, as the per-attempt cap counts them (`log_sizes`).
CREATE TABLE log_chunks (
    job_run_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    first_line BIGINT NOT NULL,
    line_count BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_run_id, first_line)
);
-- A batch sent twice is found by its seq.
CREATE INDEX log_chunks_by_batch ON log_chunks (job_run_id, attempt, seq);

-- The lines stored so far, numbered in their order across attempts, each run of a batch's
-- consecutive lines (at most 1,000 of them) one chunk.
INSERT INTO log_chunks
    (job_run_id, attempt, seq, first_line, line_count, bytes, first_at, last_at, body)
SELECT job_run_id, attempt, seq, MIN(n), COUNT(*), SUM(octet_length(text)),
       MIN(at), MAX(at),
       string_agg(json_build_object('s', stream, 't', text, 'at', at, 'l', labels::json)::text,
                  E'\n' ORDER BY n)
FROM (SELECT job_run_id, attempt, seq, stream, text, at, labels,
             ROW_NUMBER() OVER (PARTITION BY job_run_id ORDER BY id) AS n,
             ROW_NUMBER() OVER (PARTITION BY job_run_id, attempt, seq ORDER BY id) AS k
      FROM log_lines) numbered
GROUP BY job_run_id, attempt, seq, n - k, (k - 1) / 1000;

DROP TABLE log_lines;
