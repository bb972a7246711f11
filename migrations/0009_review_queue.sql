-- 0009 — the review queue reads in order from its index (issue 6, benchmark).
--
-- Row-level security: the policy of requests, checks and request_addresses
-- called p25_visible(tenant_id) for every row.  That SQL function is
-- inlined, and the planner then sees
--     current_setting('p25.role') IN ('staff', 'system') OR (tenant_id = ...)
-- as a filter it cannot evaluate at plan time and guesses keeps about 1 % of
-- the rows.  Believing that a walk of requests_review in (updated_at, id)
-- order would have to read almost the whole queue to fill one page, it read
-- every open request through a bitmap scan and sorted them instead (and ran
-- the outcome filter's EXISTS for each of them).
--
-- The staff test does not depend on the row: as an uncorrelated scalar
-- subquery it becomes an InitPlan, evaluated once per statement, and the
-- planner treats its result as a parameter of neutral selectivity.  Staff
-- and system then pay nothing per row, and the ordered index scan with an
-- early stop wins.  The tenant branch is unchanged: a tenant (p25.role =
-- 'tenant') still sees only rows whose tenant_id is p25.tenant, and a
-- transaction that set neither sees nothing (tests/integration/isolation).
-- WITH CHECK is left as it was (p25_visible).
CREATE FUNCTION p25_is_staff() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('p25.role', true) IN ('staff', 'system')
$$;
GRANT EXECUTE ON FUNCTION p25_is_staff() TO p25_service;

ALTER POLICY tenant_rows ON requests
    USING ((SELECT p25_is_staff())
           OR (current_setting('p25.role', true) = 'tenant'
               AND tenant_id = current_setting('p25.tenant', true)));
ALTER POLICY tenant_rows ON checks
    USING ((SELECT p25_is_staff())
           OR (current_setting('p25.role', true) = 'tenant'
               AND tenant_id = current_setting('p25.tenant', true)));
ALTER POLICY tenant_rows ON request_addresses
    USING ((SELECT p25_is_staff())
           OR (current_setting('p25.role', true) = 'tenant'
               AND tenant_id = current_setting('p25.tenant', true)));

-- The queue's outcome filter asks "has the current round a check with this
-- outcome?" once per request it walks: one index probe instead of reading
-- the round's checks.  Its leading columns are checks_request's, which it
-- replaces.
CREATE INDEX checks_request_outcome ON checks (request_id, round, outcome);
DROP INDEX checks_request;
