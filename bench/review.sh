#!/usr/bin/env bash
# review.sh — the review benchmark (issue 6): how fast GET /v1/review/queue
# answers with 100,000 requests in the database (default and filtered
# parameters, deep pages), with the queue SQL's plan shown by EXPLAIN
# (ANALYZE), and whether exactly one of 50 parallel decisions on the same
# request wins, over 200 rounds.  See bench/REVIEW.md for what is measured
# and how to read it.
#
#   bash bench/review.sh            full run (2000 queue reads per variant, 200 race rounds)
#   bash bench/review.sh --quick    500 reads per variant, 50 rounds
#
# stdout carries only figures and comments:
#   name value unit        a measurement
#   # ...                  the goal next to each figure (met or MISSED), the
#                          settings, the query plans
# Progress goes to stderr.  A missed goal does not fail the run; the exit
# status is non-zero only when the run could not happen (or a race round
# had more or fewer than one winner: that is a bug, not a slow machine).
#
# Environment:
#   P25_BUILD_DIR        binaries from there instead of building the release preset
#   BENCH_REQUESTS       requests in the database (100000)
#   BENCH_READS          queue reads per variant (2000; 500 with --quick)
#   BENCH_CONNS          concurrent clients reading the queue (4)
#   BENCH_ROUNDS         race rounds (200; 50 with --quick)
#   BENCH_RACERS         parallel decisions per round (50)
#   BENCH_KEEP=1         keep the work folder (logs, cluster)
#
# Everything runs on loopback in a throwaway folder: a PostgreSQL 15 cluster
# (scripts/testpg.sh through tests/lib/harness.mjs, fsync off: the figures
# are about reads and about correctness under contention, not about the
# disk), p25-api with the default pool (P25_DB_POOL_SIZE 8).  Every process
# this script starts is stopped at exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: bash bench/review.sh [--quick]" >&2; exit 64 ;;
esac

# only the settings above come from the caller: a stray P25_* must not change what is measured
for v in $(compgen -e); do
	case "$v" in
	P25_BUILD_DIR) ;;
	P25_*) unset "$v" ;;
	esac
done

if [ -n "${P25_BUILD_DIR:-}" ]; then
	build=$(realpath "$P25_BUILD_DIR")
else
	echo "bench: building the release preset" >&2
	cmake --preset release >&2
	cmake --build --preset release -j 2 --target p25-api p25ctl >&2
	build=$root/build/release
fi
for b in p25-api p25ctl; do
	[ -x "$build/$b" ] || { echo "bench: $build/$b is missing" >&2; exit 1; }
done
for c in psql node; do
	command -v "$c" >/dev/null || { echo "bench: $c is missing (bash scripts/deps.sh)" >&2; exit 1; }
done

export BENCH_ROOT=$root BENCH_BUILD=$build BENCH_QUICK=$quick
exec node --input-type=module - <<'NODE'
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { pathToFileURL } from 'node:url';

const root = process.env.BENCH_ROOT;
const quick = process.env.BENCH_QUICK === '1';
process.env.P25_BUILD_DIR = process.env.BENCH_BUILD;
if (process.env.BENCH_KEEP === '1') process.env.P25_KEEP = '1';
const { startStack, run } = await import(pathToFileURL(`${root}/tests/lib/harness.mjs`).href);

const num = (name, def, lo, hi) => {
	const v = process.env[name] ?? String(def);
	if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) {
		console.error(`bench: ${name} must be a whole number from ${lo} to ${hi}`);
		process.exit(64);
	}
	return Number(v);
};
const NREQ = num('BENCH_REQUESTS', 100000, 1000, 10000000);
const READS = num('BENCH_READS', quick ? 500 : 2000, 50, 1000000);
const CONNS = num('BENCH_CONNS', 4, 1, 256);
const ROUNDS = num('BENCH_ROUNDS', quick ? 50 : 200, 1, 100000);
const RACERS = num('BENCH_RACERS', 50, 2, 1000);

const say = (m) => process.stderr.write(`bench: ${m}\n`);
const fig = (name, value, unit) => console.log(`${name} ${value}${unit ? ` ${unit}` : ''}`);
const goal = (ok, text) => console.log(`# goal: ${text} — ${ok === null ? 'not measured' : ok ? 'met' : 'MISSED'}`);
const ms = (x) => x.toFixed(2);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];

// ------------------------------------------------------------ the stack and the data

console.log(`# settings: ${NREQ} requests, ${READS} reads per variant over ${CONNS} connections, ` +
	`${ROUNDS} race rounds of ${RACERS} decisions; build ${process.env.BENCH_BUILD}`);
console.log(`# machine: ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at start`);
say('starting PostgreSQL and p25-api');
const s = await startStack({ env: { P25_LOG_LEVEL: 'error', P25_RATE_LIMIT: '0' } });
let failed = false;
try {
	const k = await s.ctl(['keys', 'generate']);
	if (k.code !== 0) throw new Error(`p25ctl keys generate: ${k.stderr}`);

	say(`writing ${NREQ} requests (most decided) with 6 checks each`);
	const t0 = Date.now();
	// as s.sql (the table owner), but with room for a loaded machine: the
	// write takes 30 s on a quiet one and more than s.sql's 60 s at load 15
	const ownerSql = async (text) => {
		const r = await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', s.env.P25_MIGRATE_DATABASE_URL],
			{ input: text, env: s.childEnv(), timeoutMs: 900000 });
		if (r.code !== 0) throw new Error(`data load failed (${r.code}): ${r.stderr.trim()}`);
	};
	await ownerSql(`BEGIN;
SELECT setseed(0.25);
INSERT INTO tenants (id, name, account_created_at, verified)
SELECT 't' || i, 'Tenant ' || i, now() - interval '400 days', true FROM generate_series(1, 200) i;
CREATE TEMP TABLE gen AS
SELECT i, 't' || (1 + i % 200) AS tenant,
  CASE WHEN r < 0.04 THEN 'needs_review' WHEN r < 0.05 THEN 'needs_info' WHEN r < 0.055 THEN 'pending'
       WHEN r < 0.75 THEN 'approved' WHEN r < 0.93 THEN 'denied' ELSE 'withdrawn' END AS status,
  random() AS r2
FROM (SELECT i, random() AS r FROM generate_series(1, ${NREQ}) i) x;
CREATE TEMP TABLE ins AS
WITH r AS (
  INSERT INTO requests (tenant_id, status, use_case, description, vetting_round, created_at, updated_at, decided_at)
  SELECT tenant, status, 'transactional', 'bench', 1,
    CASE WHEN status IN ('needs_review', 'needs_info', 'pending') THEN now() - r2 * interval '8 days'
         ELSE now() - r2 * interval '365 days' - interval '1 day' END,
    CASE WHEN status IN ('needs_review', 'needs_info', 'pending') THEN now() - r2 * interval '7 days'
         ELSE now() - r2 * interval '365 days' END,
    CASE WHEN status IN ('approved', 'denied') THEN now() - r2 * interval '365 days' END
  FROM gen ORDER BY i RETURNING id, tenant_id, status)
SELECT row_number() OVER () AS n, id, tenant_id, status FROM r;
INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
SELECT id, tenant_id, set_masklen('81.0.0.0'::inet + n, 32)::cidr, 1 FROM ins;
INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)
SELECT ins.id, ins.tenant_id, 1, c.name, 'bench',
  CASE WHEN ins.status IN ('needs_review', 'needs_info') AND random() < 0.35 THEN (ARRAY['error', 'fail', 'warn'])[1 + floor(random() * 3)::int]
       WHEN random() < 0.05 THEN 'warn' ELSE 'pass' END,
  '{"bench": true}', 'hint'
FROM ins CROSS JOIN (VALUES ('ownership'), ('dnsbl'), ('rdns'), ('account'), ('history'), ('spf')) c(name);
COMMIT;
-- VACUUM, not only ANALYZE: a database that has run for a year has its
-- visibility map set, and autovacuum would otherwise reach the 600,000 new
-- check rows in the middle of the reads (bench/REVIEW.md)
VACUUM ANALYZE tenants, requests, request_addresses, checks;`);
	const [[counts]] = [await s.sql(`SELECT json_object_agg(status, n) FROM (SELECT status, count(*) n FROM requests GROUP BY status) x`)];
	const nchecks = (await s.sql('SELECT count(*) FROM checks'))[0][0];
	say(`data written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
	console.log(`# data: requests by status ${counts[0]}; ${nchecks} checks`);

	// ------------------------------------------------------------ the queue's plan

	// the SQL exactly as p25-api sends it: read from api/review.c (review_queue)
	const src = fs.readFileSync(`${root}/api/review.c`, 'utf8');
	const at = src.indexOf('review_queue(struct api_req');
	const stmt = src.slice(src.indexOf('P25_STMT(st, 7,', at), src.indexOf('");', src.indexOf('P25_STMT(st, 7,', at)) + 2);
	const sql = [...stmt.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\"/g, '"').replace(/\\\\/g, '\\')).join('');
	if (!/FROM requests q/.test(sql)) throw new Error('could not read the queue SQL from api/review.c');

	const rev = s.token({ sub: 'bench-reviewer', roles: ['reviewer'], ttl: 86400 });
	const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
	const port = Number(new URL(s.url).port);
	const get = (path) => new Promise((resolve, reject) => {
		const t = process.hrtime.bigint();
		const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { Authorization: `Bearer ${rev}` } }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t) / 1e6, body: Buffer.concat(chunks).toString() }));
			res.on('error', reject);
		});
		req.on('error', reject);
		req.end();
	});

	// cursors spread through the whole needs_review queue, for the deep-page reads
	const cursors = [];
	for (let c = null, i = 0; i < 10000; i++) {
		const r = await get(`/v1/review/queue?state=needs_review&limit=100${c ? `&cursor=${encodeURIComponent(c)}` : ''}`);
		if (r.status !== 200) throw new Error(`queue walk: ${r.status} ${r.body}`);
		c = JSON.parse(r.body).next_cursor;
		if (!c) break;
		cursors.push(c);
	}
	const deep = cursors[Math.floor(cursors.length * 0.9)] ?? null;
	const [deepUs, deepId] = deep ? Buffer.from(deep, 'base64url').toString().split('/') : [null, null];

	/*
	 * The plan p25-api gets: the statement prepared once (as P25_STMT does
	 * on each pooled connection), executed 6 times with the same parameters
	 * so the plan cache has made its generic-or-custom choice, then
	 * EXPLAIN (ANALYZE, BUFFERS) of the 7th execution.  mode 'generic' forces
	 * the generic plan instead, to show what the cache turned down.
	 */
	const explain = async (label, params, mode = 'server') => {
		const lit = params.map((p) => (p === null ? 'NULL' : typeof p === 'number' ? String(p) : `'${String(p).replace(/'/g, "''")}'`)).join(', ');
		const out = await run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', s.env.P25_DATABASE_URL],
			{
				env: s.childEnv(),
				input: `BEGIN;
SELECT set_config('p25.role', 'staff', true) \\g /dev/null
PREPARE q AS ${sql};
${mode === 'generic' ? 'SET LOCAL plan_cache_mode = force_generic_plan;' : ''}
${Array.from({ length: 6 }, () => `EXECUTE q(${lit}) \\g /dev/null`).join('\n')}
SELECT 'plan cache: ' || generic_plans || ' generic, ' || custom_plans || ' custom plans' FROM pg_prepared_statements WHERE name = 'q';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING ON) EXECUTE q(${lit});
ROLLBACK;
`,
			});
		if (out.code !== 0) throw new Error(`EXPLAIN failed: ${out.stderr}`);
		console.log(`# EXPLAIN (ANALYZE, BUFFERS) of the queue SQL, ${label}, ${mode === 'generic'
			? 'generic plan forced (parameters unknown to the planner)' : 'the plan the server uses (7th execution of the prepared statement)'}:`);
		for (const line of out.stdout.split('\n').filter(Boolean)) console.log(`#   ${line}`);
		const walk = /Index Scan using requests_review on requests q/.test(out.stdout);
		const sorted = /Sort Key: q\.updated_at, q\.id/.test(out.stdout);
		const seq = /Seq Scan on (requests|checks)\b/.test(out.stdout);
		const exec = /Execution Time: ([\d.]+) ms/.exec(out.stdout);
		const scanned = /Bitmap Heap Scan on requests q \(actual time=[\d.]+\.\.[\d.]+ rows=(\d+)/.exec(out.stdout)
			?? /Index Scan using \S+ on requests q \(actual time=[\d.]+\.\.[\d.]+ rows=(\d+)/.exec(out.stdout);
		const removed = /on requests q [^\n]*\n(?:[^\n]*(?:Cond|Filter):[^\n]*\n){0,3}[^\n]*Rows Removed by Filter: (\d+)/.exec(out.stdout);
		fig(`queue.plan.${label}.${mode}.execution_ms`, exec ? exec[1] : 'n/a', 'ms');
		if (scanned) fig(`queue.plan.${label}.${mode}.requests_rows_read`, Number(scanned[1]) + (removed ? Number(removed[1]) : 0), 'rows');
		// the tenant view reads that tenant's rows through its own index; a
		// deep page may read the rest of the queue after the cursor through an
		// index bounded by it (and sort those few); every other view walks the
		// queue in order
		const bounded = /Index Cond: [^\n]*(updated_at, id\) >|updated_at >)/.test(out.stdout);
		const ok = !seq && (label === 'tenant' ? true : label === 'deep_page' ? bounded : walk && !sorted);
		// the outcome counts and the outcome filter's probe (migrations/0012):
		// index-only scans of checks_request_outcome, no check rows read
		const onChecks = [...out.stdout.matchAll(/(\w[\w ]*?) on checks c\w*/g)].map((m) => m[1].replace(/^.*(Index Only Scan|Index Scan|Bitmap Heap Scan|Seq Scan).*$/, '$1'));
		const fetches = [...out.stdout.matchAll(/Heap Fetches: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
		if (mode === 'server') console.log(`# checks read (${label}): ${[...new Set(onChecks)].join(', ') || 'not at all'}; heap fetches ${fetches}`);
		console.log(`# index use (${label}, ${mode}): ${label === 'tenant' ? 'no sequential scan of requests or checks'
			: label === 'deep_page' ? 'the cursor bounds an index scan of open requests'
				: 'an ordered walk of requests_review, the partial index on (updated_at, id) of open requests, without a sort'} — ${ok ? 'yes' : 'NO'}`);
		return ok;
	};
	say('EXPLAIN (ANALYZE) of the queue SQL');
	let planOk = true;
	planOk = await explain('default', [null, null, null, null, null, null, 51]) && planOk;
	await explain('default', [null, null, null, null, null, null, 51], 'generic');
	planOk = await explain('limit100', [null, null, null, null, null, null, 101]) && planOk;
	planOk = await explain('outcome_fail', [null, null, null, 'fail', null, null, 51]) && planOk;
	planOk = await explain('filtered', ['needs_review', null, 3600, 'error', null, null, 101]) && planOk;
	planOk = await explain('needs_info', ['needs_info', null, null, null, null, null, 51]) && planOk;
	planOk = await explain('tenant', [null, 't7', null, null, null, null, 51]) && planOk;
	if (deep && deepUs && deepId) planOk = await explain('deep_page', ['needs_review', null, null, null, Number(deepUs), deepId, 51]) && planOk;
	goal(planOk, 'every queue plan the server uses reads the queue in order from the requests_review index (the tenant view: from an index)');

	// ------------------------------------------------------------ queue latency

	// floor: the same client, connections and token against a call with no
	// database work at all (bearer verification only): what this machine's
	// load and the HTTP path cost by themselves
	const variants = [
		['floor_whoami', ['/v1/whoami']],
		['default', ['/v1/review/queue']],
		['needs_review', ['/v1/review/queue?state=needs_review']],
		['needs_info', ['/v1/review/queue?state=needs_info']],
		['tenant', Array.from({ length: 20 }, (_, i) => `/v1/review/queue?tenant=t${1 + i * 7}`)],
		['min_age', ['/v1/review/queue?min_age_seconds=259200']],
		['outcome_fail', ['/v1/review/queue?outcome=fail']],
		['combined', ['/v1/review/queue?state=needs_review&outcome=error&min_age_seconds=3600&limit=100']],
		['limit100', ['/v1/review/queue?limit=100']],
		['paged', cursors.length ? cursors.map((c) => `/v1/review/queue?state=needs_review&limit=50&cursor=${encodeURIComponent(c)}`) : ['/v1/review/queue']],
	];
	let allOk = true;
	for (const [name, paths] of variants) {
		say(`queue reads: ${name}`);
		for (let i = 0; i < Math.min(100, READS); i++) await get(paths[i % paths.length]); // warm
		const lat = [];
		let bad = 0;
		let items = 0;
		let next = 0;
		// the answers are parsed after the clock stops: the client is one
		// event loop, and parsing one answer (40 kB at limit=100) between
		// reads would be counted in the other connections' times
		const bodies = [];
		const t = process.hrtime.bigint();
		await Promise.all(Array.from({ length: CONNS }, async () => {
			while (next < READS) {
				const p = paths[next++ % paths.length];
				const r = await get(p);
				lat.push(r.ms);
				if (r.status !== 200) bad++;
				else bodies.push(r.body);
			}
		}));
		const secs = Number(process.hrtime.bigint() - t) / 1e9;
		for (const b of bodies) items += JSON.parse(b).items?.length ?? 0;
		lat.sort((a, b) => a - b);
		fig(`queue.${name}.p50`, ms(pct(lat, 0.5)), 'ms');
		fig(`queue.${name}.p99`, ms(pct(lat, 0.99)), 'ms');
		fig(`queue.${name}.max`, ms(lat[lat.length - 1]), 'ms');
		fig(`queue.${name}.rate`, (lat.length / secs).toFixed(0), 'req/s');
		if (bad) fig(`queue.${name}.non200`, bad, 'answers');
		if (name === 'floor_whoami') {
			console.log('# (the floor: no goal; the queue figures below include this much)');
			continue;
		}
		fig(`queue.${name}.items_per_page`, (items / Math.max(1, lat.length - bad)).toFixed(1), 'items');
		const ok = pct(lat, 0.99) < 50 && bad === 0;
		allOk &&= ok;
		goal(ok, `queue.${name} p99 < 50 ms with ${NREQ} requests in the database`);
	}
	goal(allOk, `every queue variant above: p99 < 50 ms with ${NREQ} requests in the database`);
	agent.destroy();

	// ------------------------------------------------------------ the decision race

	await s.sql(`INSERT INTO tenants (id, name, account_created_at, verified) VALUES ('race', 'Race', now() - interval '400 days', true);
INSERT INTO tenant_addresses (tenant_id, prefix) VALUES ('race', '81.250.0.0/16');`);
	const tokens = Array.from({ length: RACERS }, (_, i) => s.token({ sub: `racer-${i}`, roles: ['reviewer'], ttl: 86400 }));
	const post = (path, token, body, headers = {}) => new Promise((resolve, reject) => {
		const data = Buffer.from(JSON.stringify(body));
		const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false,
			headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': data.length, ...headers } }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
		});
		req.on('error', reject);
		req.end(data);
	});
	let base = 0;
	/*
	 * ROUNDS requests in needs_review; on each, RACERS decisions at once
	 * (pick(round, i) → [body, send If-Match?]).  Exactly one must answer 200.
	 */
	const race = async (label, pick) => {
		say(`race ${label}: ${ROUNDS} rounds of ${RACERS} parallel decisions`);
		await s.sql(`WITH r AS (INSERT INTO requests (tenant_id, status, use_case, vetting_round, description, updated_at)
  SELECT 'race', 'needs_review', 'transactional', 1, $1, now() - interval '30 days' - i * interval '1 second'
  FROM generate_series(1, ${ROUNDS}) i RETURNING id),
n AS (SELECT id, row_number() OVER () AS k FROM r)
INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
SELECT id, 'race', set_masklen('81.250.0.0'::inet + ${base} + k, 32)::cidr, 1 FROM n;`, [label]);
		base += ROUNDS;
		const ids = (await s.sql(`SELECT id FROM requests WHERE tenant_id = 'race' AND description = $1 ORDER BY updated_at`, [label])).map((r) => r[0]);
		const byStatus = {};
		const winners = {};
		const roundMs = [];
		let violations = 0;
		for (const [round, id] of ids.entries()) {
			const r0 = await get(`/v1/review/requests/${id}`).catch(() => null);
			const etag = `"${JSON.parse(r0?.body ?? '{}').version ?? 1}"`;
			const t = process.hrtime.bigint();
			const answers = await Promise.all(tokens.map((tok, i) => {
				const [body, ifMatch] = pick(round, i);
				return post(`/v1/review/requests/${id}/decision`, tok, body, ifMatch ? { 'If-Match': etag } : {});
			}));
			roundMs.push(Number(process.hrtime.bigint() - t) / 1e6);
			const won = [];
			answers.forEach((a, i) => {
				byStatus[a.status] = (byStatus[a.status] || 0) + 1;
				if (a.status === 200) {
					const st = JSON.parse(a.body).status;
					won.push(`${pick(round, i)[0].decision}${pick(round, i)[1] ? '+If-Match' : ''}→${st}`);
					winners[st] = (winners[st] || 0) + 1;
				}
			});
			if (won.length !== 1) {
				violations++;
				say(`race ${label} round ${round}: ${won.length} winners (${won.join(', ')})`);
			}
		}
		const q1 = (sql) => s.sql(sql, [label]).then((r) => Number(r[0][0]));
		const dbNotOnce = await q1(`SELECT count(*) FROM requests r WHERE r.description = $1 AND r.tenant_id = 'race' AND
			(SELECT count(*) FROM decisions d WHERE d.request_id = r.id AND d.actor <> 'policy') <> 1`);
		const dbExempt = await q1(`SELECT count(*) FROM exemptions e JOIN requests r ON r.id = e.request_id WHERE r.description = $1`);
		const dbApproved = await q1(`SELECT count(*) FROM requests WHERE description = $1 AND status = 'approved'`);
		roundMs.sort((a, b) => a - b);
		fig(`race.${label}.rounds`, ids.length, 'rounds');
		fig(`race.${label}.racers`, RACERS, 'decisions/round');
		fig(`race.${label}.single_winner_rounds`, ids.length - violations, 'rounds');
		fig(`race.${label}.violations`, violations, 'rounds');
		for (const st of Object.keys(byStatus).sort()) fig(`race.${label}.status_${st}`, byStatus[st], 'answers');
		for (const st of Object.keys(winners).sort()) fig(`race.${label}.won_${st}`, winners[st], 'answers');
		fig(`race.${label}.db_requests_not_decided_once`, dbNotOnce, 'requests');
		fig(`race.${label}.db_exemptions`, dbExempt, 'exemptions');
		fig(`race.${label}.db_approved_requests`, dbApproved, 'requests');
		fig(`race.${label}.round_p50`, ms(pct(roundMs, 0.5)), 'ms');
		fig(`race.${label}.round_p99`, ms(pct(roundMs, 0.99)), 'ms');
		const only = Object.keys(byStatus).every((k) => ['200', '409', '412'].includes(k));
		const ok = violations === 0 && dbNotOnce === 0 && dbExempt === dbApproved && only;
		goal(ok, `race.${label}: exactly one of ${RACERS} parallel decisions wins in every one of ${ids.length} rounds; the rest 409/412`);
		return ok;
	};
	const kinds = [{ decision: 'approve' }, { decision: 'deny', reason_code: 'listed' }, { decision: 'needs_info', note: 'who?' }];
	// 50 approvals, none with If-Match: the state check alone must stop 49
	const okA = await race('approve', () => [kinds[0], false]);
	// approve / deny / needs_info mixed, every second one with If-Match
	const okM = await race('mixed', (round, i) => [kinds[(round + i) % 3], i % 2 === 1]);
	if (!okA || !okM) failed = true;
} catch (e) {
	say(e.stack || String(e));
	failed = true;
} finally {
	await s.stop().catch((e) => say(String(e)));
}
process.exit(failed ? 1 : 0);
NODE
