-- 0002 — job queue housekeeping (see workers/README.md).
--
-- Done jobs are kept for a day (who ran what, when) and then deleted by the
-- workers in bounded batches, oldest first.  This partial index lets that
-- cleanup find them without scanning the queue, and stays small: it holds
-- only done rows.
CREATE INDEX jobs_done ON jobs (finished_at) WHERE state = 'done';
