-- 0018 — no planner statistics for columns no query filters or joins on.
--
-- ANALYZE samples up to 30,000 rows of a table and computes, for every
-- column, its most common values, histogram and distinct count — the
-- sorting and comparing of the sampled values is most of its cost, and
-- for a jsonb or a long text that cost is largest.  The planner reads a
-- column's statistics only when a condition or a join names that column;
-- no query of p25 names these (the payloads, stored answers, free text
-- and evidence below are read whole by id, never searched), so their
-- statistics were computed and never read.
--
-- Why it matters: autovacuum analyzes a table again after every 10 % of
-- growth, and the write-heavy tables (requests, audit_log, jobs) grow with
-- every submit.  On the bench cluster (180,000 requests), one ANALYZE of
-- requests, jobs and audit_log together took 610–810 ms; without these
-- columns' statistics, 310–380 ms (requests 170–270 → 110–140 ms, jobs
-- 125–180 → 50–85 ms, audit_log 320–360 → 150–160 ms).  That work runs on
-- the database's machine beside the submits, in a burst whenever
-- autovacuum wakes: on the 2-CPU bench machine, each such round was a
-- 50–120 ms spike in the submit latency.  (docs/DESIGN-NOTES.md)
--
-- The columns keep their default target (-1) for storage and every
-- other purpose; only the statistics are not collected.  A future query
-- that filters on one of them must set its target back.

ALTER TABLE requests
    ALTER COLUMN description SET STATISTICS 0,
    ALTER COLUMN sender_domains SET STATISTICS 0,
    ALTER COLUMN contact_email SET STATISTICS 0;
ALTER TABLE audit_log
    ALTER COLUMN details SET STATISTICS 0;
ALTER TABLE jobs
    ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0;
ALTER TABLE idempotency_keys
    ALTER COLUMN body SET STATISTICS 0,
    ALTER COLUMN headers SET STATISTICS 0;
ALTER TABLE checks
    ALTER COLUMN evidence SET STATISTICS 0;
ALTER TABLE decisions
    ALTER COLUMN message SET STATISTICS 0,
    ALTER COLUMN scope SET STATISTICS 0;
ALTER TABLE messages
    ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE abuse_reports
    ALTER COLUMN evidence SET STATISTICS 0;
ALTER TABLE webhook_deliveries
    ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0;
