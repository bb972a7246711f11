-- pgbench-insert.sql — the floor for POST /v1/requests: one INSERT of a row
-- shaped like a request row (bench/run.sh creates bench_requests LIKE
-- requests INCLUDING ALL, plus its foreign key to tenants), one transaction
-- per row, at the same client count as the HTTP run.  :ntenants is passed
-- with -D; tenant ids are bt1..btN as bench/run.sh creates them.
\set t random(1, :ntenants)
INSERT INTO bench_requests (tenant_id, use_case, description, sender_domains,
                            expected_daily_volume, contact_email, vetting_round)
VALUES ('bt' || :t, 'transactional', 'bench', '{example.com}', 5000,
        'ops@example.com', 1);
