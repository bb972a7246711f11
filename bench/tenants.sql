-- bench/tenants.sql — the benchmarks' tenants and the insert floor's table,
-- for bench/run.sh and bench/submit-sql.sh (psql -v n=TENANTS, as the owner).
INSERT INTO tenants (id, name, account_created_at, verified, standing)
SELECT 'bt' || n, 'Bench tenant ' || n, now() - interval '400 days', true, 'good'
FROM generate_series(1, :n) n;
-- tenant btN holds 81.(2 + (N-1)/256).((N-1)%256).0/24
INSERT INTO tenant_addresses (tenant_id, prefix)
SELECT 'bt' || n, format('81.%s.%s.0/24', 2 + (n - 1) / 256, (n - 1) % 256)::cidr
FROM generate_series(1, :n) n;
-- the pgbench insert floor's table: the columns, types, defaults, checks and
-- indexes of requests, and its foreign key to tenants
CREATE TABLE bench_requests (LIKE requests INCLUDING ALL);
ALTER TABLE bench_requests ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
