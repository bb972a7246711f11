#!/usr/bin/env bash
# submit-sql.sh — what a submit costs PostgreSQL, without HTTP.
#
#   bash bench/submit-sql.sh
#
# One pgbench client calls p25_submit_group (the statement p25-api sends for
# a group of submits) with groups of BENCH_GROUP submits of distinct tenants,
# as the service role (row-level security applies), with the service's
# default rate limit and open-request cap.  Its floor, in the same run and
# alternating with it round by round, is one pgbench client running
# bench/pgbench-insert.sql (one INSERT of a request-shaped row a
# transaction).  Both with synchronous_commit off: this measures the work a
# submit makes the database do, not the disk's flush.  With one client the
# wall time is the backend's time.
#
# stdout, like bench/run.sh:
#   sql.insert_us     µs a floor transaction (median over rounds)
#   sql.submit_us     µs a submit inside a group (median over rounds)
#   sql.submit.ratio  sql.submit_us / sql.insert_us: a submit's cost in
#                     floor inserts (lower is better; no goal, a diagnostic)
#   sql.submit.refused  submits p25_submit_group did not file (must be 0;
#                     their reasons follow as comments)
#
# Environment: P25_BUILD_DIR (p25ctl from there instead of building the
# release preset), BENCH_GROUP (16), BENCH_DURATION (8 s a measurement),
# BENCH_ROUNDS (3), BENCH_TENANTS (16000), BENCH_KEEP=1 (keep the folder).
# Used for migrations/0019's figures (docs/DESIGN-NOTES.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
for v in $(compgen -e); do
	case "$v" in
	P25_BUILD_DIR) ;;
	P25_*) unset "$v" ;;
	esac
done

group=${BENCH_GROUP:-16}
dur=${BENCH_DURATION:-8}
rounds=${BENCH_ROUNDS:-3}
ntenants=${BENCH_TENANTS:-16000}
PGBIN=/usr/lib/postgresql/15/bin
for n in "$group" "$dur" "$rounds" "$ntenants"; do
	case "$n" in '' | *[!0-9]*) echo "submit-sql.sh: settings must be whole numbers" >&2; exit 64 ;; esac
done
if [ "$group" -lt 1 ] || [ "$ntenants" -lt $((group * 2)) ]; then
	echo "submit-sql.sh: BENCH_GROUP must be 1 or more, BENCH_TENANTS at least twice it" >&2
	exit 64
fi

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"	# median VALUES...
command -v psql >/dev/null || die "psql is missing (Debian package postgresql-client-15)"
[ -x "$PGBIN/pgbench" ] || die "$PGBIN/pgbench is missing (Debian package postgresql-15)"

if [ -n "${P25_BUILD_DIR:-}" ]; then
	build=$(realpath "$P25_BUILD_DIR")
else
	say "building the release preset (p25ctl)"
	cmake --preset release >&2
	cmake --build --preset release -j 2 --target p25ctl >&2
	build=$root/build/release
fi
[ -x "$build/p25ctl" ] || die "$build/p25ctl is missing"

work=$(mktemp -d "${TMPDIR:-/tmp}/p25-sqlbench.XXXXXX")
cleanup() {
	set +e
	[ -f "$work/pg/data/PG_VERSION" ] && bash scripts/testpg.sh stop "$work/pg"
	if [ -n "${BENCH_KEEP:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting PostgreSQL in $work/pg"
pgenv=$(bash scripts/testpg.sh start "$work/pg" --durable)
while IFS='=' read -r k v; do
	[ -n "$k" ] && export "$k=$v"
done <<<"$pgenv"
pghost=$P25_PGHOST
"$build/p25ctl" migrate >&2

say "creating $ntenants tenants, each holding a /24 and 8 past requests"
psql_owner() { psql -X -q -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" "$@"; }
psql_owner -v n="$ntenants" -f bench/tenants.sql
psql_owner -v n="$ntenants" <<'SQL'
-- a history, so the indexes a submit writes and reads are not empty: two
-- requests of eight still open, each with an address, a job and an audit row
INSERT INTO requests (tenant_id, status, use_case, created_at, updated_at)
SELECT 'bt' || (1 + i % :n), CASE WHEN i / :n < 2 THEN 'pending' ELSE 'withdrawn' END,
       'other', now() - interval '2 hours', now() - interval '2 hours'
FROM generate_series(0, 8 * :n - 1) i;
INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
SELECT r.id, r.tenant_id, set_masklen(a.prefix, 32)::cidr, 1
FROM requests r JOIN tenant_addresses a USING (tenant_id);
INSERT INTO jobs (kind, payload, state, finished_at)
SELECT 'vet', jsonb_build_object('request', id, 'round', 1), 'done', now() FROM requests;
INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id)
SELECT 'bench', 'request.submit', 'request', id::text, tenant_id FROM requests;
-- the group items p25-api would send (api/requests.c, sub_prepare), one a
-- tenant, in a shuffled order: rows g*G .. g*G+G-1 are group g
CREATE TABLE bench_items AS
SELECT (row_number() OVER (ORDER BY random()) - 1)::integer AS i,
       jsonb_build_object('rls_tenant', t.id, 'rls_role', 'tenant', 'tenant', t.id,
                          'actor', 'bench-user', 'use_case', 'transactional',
                          'description', 'bench', 'domains', '["example.com"]'::jsonb,
                          'email', 'ops@example.com',
                          'cidrs', '{' || host(a.prefix + 1) || '/32}',
                          'details', jsonb_build_object('use_case', 'transactional',
                                                        'addresses', jsonb_build_array(host(a.prefix + 1))),
                          'volume', 5000) AS item
FROM tenants t JOIN tenant_addresses a ON a.tenant_id = t.id;
CREATE UNIQUE INDEX ON bench_items (i);
GRANT SELECT ON bench_items TO p25_service;
-- what p25_submit_group answered other than 'created' (none expected)
CREATE TABLE bench_refusals (kind text, message text);
GRANT INSERT ON bench_refusals TO p25_service;
SQL
psql -X -q -h "$pghost" -U postgres -d p25 -c "VACUUM ANALYZE" -c CHECKPOINT

# the service's defaults (include/p25/config.h: P25_RATE_LIMIT, P25_MAX_OPEN_REQUESTS)
cat >"$work/group.sql" <<SQL
\set g random(0, $((ntenants / group - 1)))
WITH g AS (SELECT * FROM p25_submit_group((SELECT jsonb_agg(item ORDER BY i) FROM bench_items
    WHERE i BETWEEN :g * $group AND :g * $group + $((group - 1))), 60, 20))
INSERT INTO bench_refusals SELECT o_kind, o_message FROM g WHERE o_kind <> 'created';
SQL

# pgbench NAME USER ARGS...: one client, $dur s; prints the transactions
pgb() {
	local name=$1 user=$2 out=$work/pgbench.$1.txt
	shift 2
	PGOPTIONS="-c synchronous_commit=off" "$PGBIN/pgbench" -h "$pghost" -U "$user" -n \
		-M prepared -c 1 -j 1 -T "$dur" "$@" p25 >"$out" 2>&1 ||
		{ cat "$out" >&2; die "pgbench $name failed"; }
	awk '/number of transactions actually processed/ { print $NF }' "$out"
}

ins_l=() sub_l=()
for r in $(seq "$rounds"); do
	say "round $r/$rounds: floor (pgbench insert), then $group-submit groups, ${dur} s each"
	n=$(pgb insert p25_owner -D ntenants="$ntenants" -f bench/pgbench-insert.sql)
	ins_l+=("$(awk -v n="$n" -v d="$dur" 'BEGIN { printf "%.1f", d * 1e6 / n }')")
	n=$(pgb group p25_app -f "$work/group.sql")
	sub_l+=("$(awk -v n="$n" -v d="$dur" -v g="$group" 'BEGIN { printf "%.1f", d * 1e6 / (n * g) }')")
done

echo "# p25 submit SQL benchmark $(date -u +%FT%TZ) on $(hostname), $(nproc) CPUs; git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# one pgbench client each, synchronous_commit off, $dur s a measurement, $rounds round(s), $ntenants tenants, groups of $group"
echo "# rounds (µs): insert ${ins_l[*]}; submit ${sub_l[*]}"
ins=$(median "${ins_l[@]}")
sub=$(median "${sub_l[@]}")
echo "sql.insert_us $ins us"
echo "sql.submit_us $sub us"
echo "sql.submit.ratio $(awk -v s="$sub" -v i="$ins" 'BEGIN { printf "%.2f", s / i }')"
echo "# a submit's cost in floor inserts (one INSERT of a request-shaped row a transaction)"
refused=$(psql -X -At -h "$pghost" -U postgres -d p25 -c "SELECT count(*) FROM bench_refusals")
echo "sql.submit.refused $refused count"
[ "$refused" = 0 ] || psql -X -At -h "$pghost" -U postgres -d p25 \
	-c "SELECT '# refused: ' || kind || ' ' || coalesce(message, '') || ' x' || count(*) FROM bench_refusals GROUP BY kind, message"
