-- The number of the last line stored for the job run, kept with the attempt's size (whose
-- row every batch locks first): a batch numbers its lines after it without reading the
-- last chunk, and stores its chunks and the new size in one statement. NULL on rows made
-- before it existed: the first batch that finds one reads the last chunk instead.
ALTER TABLE log_sizes ADD COLUMN last_line BIGINT;
