-- 0012 — the review queue's per-request probes of checks read the index
-- alone (issue 6, bench/REVIEW.md).
--
-- For every request the queue walks it asks checks two things, both through
-- checks_request_outcome (request_id, round, outcome) from 0009: does the
-- current round have a check with the outcome filtered on (EXISTS), and how
-- many checks of each outcome has it ('outcomes').  Row-level security adds
-- its policy to both, and the policy names tenant_id: that column was not
-- in the index, so every probe read the check rows themselves from the heap
-- (six per request for the counts, a bitmap heap scan and a sort), which
-- was half the statement's time at limit=100.  With tenant_id carried in
-- the index (INCLUDE: not a key, no effect on order or uniqueness) both are
-- index-only scans, and the counts come out in outcome order, grouped
-- without a sort.  The policy itself is unchanged (0009: staff
-- short-circuit; a tenant sees only its own rows).
--
-- The new index replaces the old one under the same name, so it costs no
-- more per check written than before.
CREATE INDEX checks_request_outcome_cover ON checks (request_id, round, outcome)
    INCLUDE (tenant_id);
DROP INDEX checks_request_outcome;
ALTER INDEX checks_request_outcome_cover RENAME TO checks_request_outcome;
