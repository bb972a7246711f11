// Tenant isolation (issue 3): a tenant never sees or touches another
// tenant's objects.  First wall: the handlers name the caller's tenant, and
// another tenant's request answers 404 exactly like an id that does not
// exist.  Second wall: PostgreSQL row-level security — shown here by talking
// to the database as the service role itself (p25_app, what p25-api uses),
// where a query that forgets the tenant still sees only the tenant's rows.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { run, startStack } from '../lib/harness.mjs';

let s;
let ta; // tenant acme
let tb; // tenant globex
const ids = { acme: [], globex: [] };
const RANDOM = '0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11';

before(async () => {
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	await s.createTenant('acme', { addresses: ['81.2.69.0/24'] });
	await s.createTenant('globex', { addresses: ['81.2.70.0/24'] });
	ta = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
	tb = s.token({ sub: 'bob', roles: ['tenant'], tenant: 'globex' });
	// interleaved, so a list that leaked would show the other's rows between its own
	for (let i = 0; i < 6; i++) {
		for (const [t, tenant, net] of [[ta, 'acme', '81.2.69'], [tb, 'globex', '81.2.70']]) {
			const r = await s.api('POST', '/v1/requests', { token: t, body: { addresses: [`${net}.${i}`], use_case: 'other' } });
			assert.equal(r.status, 202, r.text);
			ids[tenant].push(r.json.id);
		}
	}
});
after(async () => {
	if (s) await s.stop();
});

const withoutInstance = ({ instance, ...rest }) => rest;

/** The 404 for another tenant's id must be the 404 for an id that does not exist. */
async function assertSameAsMissing(method, pathOf, opts) {
	const theirs = await s.api(method, pathOf(ids.globex[0]), { token: ta, ...opts });
	const none = await s.api(method, pathOf(RANDOM), { token: ta, ...opts });
	assert.equal(theirs.status, 404, theirs.text);
	assert.equal(none.status, 404, none.text);
	assert.equal(theirs.headers.get('content-type'), none.headers.get('content-type'));
	assert.equal(theirs.json.instance, pathOf(ids.globex[0]));
	assert.equal(none.json.instance, pathOf(RANDOM));
	assert.deepEqual(withoutInstance(theirs.json), withoutInstance(none.json));
	assert.equal(theirs.json.code, 'not_found');
	return theirs;
}

describe('first wall: the API', () => {
	test('GET another tenant\'s request → 404, like a random id', async () => {
		await assertSameAsMissing('GET', (id) => `/v1/requests/${id}`);
		// with If-None-Match a 304 would give its existence away
		const r = await s.api('GET', `/v1/requests/${ids.globex[0]}`, { token: ta, headers: { 'If-None-Match': '*' } });
		assert.equal(r.status, 404);
	});

	test('withdraw another tenant\'s request → 404, and it stays as it was', async () => {
		await assertSameAsMissing('POST', (id) => `/v1/requests/${id}/withdraw`);
		await assertSameAsMissing('POST', (id) => `/v1/requests/${id}/withdraw`, { headers: { 'If-Match': '"1"' } });
		const [row] = await s.sqlJson('SELECT status, version FROM requests WHERE id = $1', [ids.globex[0]]);
		assert.deepEqual(row, { status: 'pending', version: 1 });
	});

	test('answer another tenant\'s request that needs information → 404, and nothing is written', async () => {
		await s.sql("UPDATE requests SET status = 'needs_info' WHERE id = $1", [ids.globex[0]]);
		try {
			await assertSameAsMissing('POST', (id) => `/v1/requests/${id}/messages`, { body: { body: 'let me in' } });
			const [row] = await s.sqlJson(`SELECT status, version,
				(SELECT count(*) FROM messages WHERE request_id = r.id) AS messages,
				(SELECT count(*) FROM jobs WHERE payload->>'request' = r.id::text) AS jobs
				FROM requests r WHERE id = $1`, [ids.globex[0]]);
			assert.deepEqual(row, { status: 'needs_info', version: 1, messages: 0, jobs: 1 });
		} finally {
			await s.sql("UPDATE requests SET status = 'pending' WHERE id = $1", [ids.globex[0]]);
		}
	});

	test('lists never include another tenant\'s rows, on any page or filter', async () => {
		for (const [t, tenant] of [[ta, 'acme'], [tb, 'globex']]) {
			for (const q of ['limit=1', 'limit=4', 'limit=100', 'status=pending&limit=2', 'status=withdrawn']) {
				const seen = [];
				let cursor = null;
				do {
					const r = await s.api('GET', `/v1/requests?${q}${cursor ? `&cursor=${cursor}` : ''}`, { token: t });
					assert.equal(r.status, 200, r.text);
					for (const it of r.json.items) {
						assert.equal(it.tenant, tenant, `${tenant} saw ${JSON.stringify(it)}`);
						seen.push(it.id);
					}
					cursor = r.json.next_cursor;
				} while (cursor);
				if (!q.includes('withdrawn')) assert.deepEqual(seen, [...ids[tenant]].reverse(), `${tenant} ${q}`);
				else assert.deepEqual(seen, []);
			}
		}
	});

	test('a cursor made from another tenant\'s row shows nothing of theirs', async () => {
		// page through acme with a cursor pointing at globex's newest request
		const [[us]] = await s.sql('SELECT (extract(epoch FROM created_at) * 1000000)::bigint FROM requests WHERE id = $1',
			[ids.globex.at(-1)]);
		const cursor = Buffer.from(`${us}/${ids.globex.at(-1)}`).toString('base64url');
		const r = await s.api('GET', `/v1/requests?limit=100&cursor=${cursor}`, { token: ta });
		assert.equal(r.status, 200, r.text);
		assert.ok(r.json.items.every((it) => it.tenant === 'acme'));
	});

	test('the status of another tenant\'s address → 404, like an address nobody holds', async () => {
		const theirs = await s.api('GET', '/v1/addresses/81.2.70.1', { token: ta });
		const nobody = await s.api('GET', '/v1/addresses/81.2.71.1', { token: ta });
		assert.equal(theirs.status, 404, theirs.text);
		assert.equal(theirs.json.code, 'address_not_held');
		assert.equal(nobody.json.code, 'address_not_held');
		const shape = (j) => ({ ...withoutInstance(j), detail: j.detail.replace(/^\S+/, 'ADDR') });
		assert.deepEqual(shape(theirs.json), shape(nobody.json));
		// and the owner sees it
		const mine = await s.api('GET', '/v1/addresses/81.2.70.1', { token: tb });
		assert.equal(mine.status, 200, mine.text);
		assert.equal(mine.json.state, 'pending');
	});

	test('an unregistered tenant sees an empty list, and no one\'s request', async () => {
		const t = s.token({ sub: 'eve', roles: ['tenant'], tenant: 'nobody' });
		const l = await s.api('GET', '/v1/requests', { token: t });
		assert.deepEqual(l.json, { items: [], next_cursor: null });
		const g = await s.api('GET', `/v1/requests/${ids.acme[0]}`, { token: t });
		assert.equal(g.status, 404);
	});

	test('a token with the tenant role and a staff role still sees only its tenant\'s request',
		{},
		async () => {
			// globex's request, denied for a reason a recheck can fix, decided long enough ago
			await s.sql(`BEGIN;
UPDATE requests SET status = 'denied' WHERE id = $1;
INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes, created_at)
VALUES ($1, 'globex', 1, 'deny', 'policy', '{rdns_missing}', now() - interval '1 hour');
COMMIT;`, [ids.globex[1]]);
			const problems = [];
			for (const extra of ['admin', 'reviewer']) {
				const t = s.token({ sub: 'mallory', roles: ['tenant', extra], tenant: 'acme' });
				const list = await s.api('GET', '/v1/requests?limit=100', { token: t });
				if (!list.json.items.every((it) => it.tenant === 'acme')) problems.push(`${extra}: the list shows globex`);
				const r = await s.api('GET', `/v1/requests/${ids.globex[0]}`, { token: t });
				if (r.status !== 404) problems.push(`${extra}: GET globex's request → ${r.status}`);
				const rc = await s.api('POST', `/v1/requests/${ids.globex[1]}/recheck`, { token: t });
				if (rc.status !== 404) problems.push(`${extra}: recheck globex's request → ${rc.status}`);
			}
			const [row] = await s.sqlJson('SELECT status FROM requests WHERE id = $1', [ids.globex[1]]);
			if (row.status !== 'denied') problems.push(`globex's request is now ${row.status}`);
			await s.sql("UPDATE requests SET status = 'pending' WHERE id = $1", [ids.globex[1]]);
			assert.deepEqual(problems, []);
		});
});

// ------------------------------------------------------------ the second wall

/** Runs SQL as the service role (p25_app, a member of p25_service: RLS applies). */
async function asService(sql) {
	const r = await run('psql', ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
		'-d', s.env.P25_DATABASE_URL], { input: `${sql}\n`, env: s.childEnv() });
	return { ...r, rows: r.stdout.replace(/\n$/, '').split('\n').filter((l) => l !== '').map((l) => l.split('\t')) };
}

const AS_ACME = "SELECT set_config('p25.role', 'tenant', false), set_config('p25.tenant', 'acme', false) \\g /dev/null\n";

describe('second wall: row-level security, with the application\'s checks bypassed', () => {
	test('the service role is p25_app, not the owner, and is subject to RLS', async () => {
		const r = await asService("SELECT current_user, (SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user), " +
			"(SELECT tableowner FROM pg_tables WHERE tablename = 'requests')");
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.rows, [['p25_app', 'f', 'p25_owner']]);
	});

	test('as tenant acme, a SELECT with no WHERE returns only acme\'s rows', async () => {
		const [[total]] = await s.sql('SELECT count(*) FROM requests');
		assert.equal(Number(total), 12, 'the owner sees both tenants');
		const [want] = await s.sqlJson(`SELECT
			(SELECT count(*) FROM requests WHERE tenant_id = 'acme') AS requests,
			(SELECT count(*) FROM audit_log WHERE tenant_id = 'acme') AS audit`);
		const r = await asService(`${AS_ACME}
SELECT 'requests', tenant_id, count(*) FROM requests GROUP BY tenant_id;
SELECT 'request_addresses', tenant_id, count(*) FROM request_addresses GROUP BY tenant_id;
SELECT 'tenants', id, 1 FROM tenants;
SELECT 'tenant_addresses', tenant_id, count(*) FROM tenant_addresses GROUP BY tenant_id;
SELECT 'audit_log', tenant_id, count(*) FROM audit_log GROUP BY tenant_id;
SELECT 'idempotency_keys', tenant_id, count(*) FROM idempotency_keys GROUP BY tenant_id;`);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.rows, [
			['requests', 'acme', String(want.requests)], ['request_addresses', 'acme', '6'], ['tenants', 'acme', '1'],
			['tenant_addresses', 'acme', '1'], ['audit_log', 'acme', String(want.audit)],
		]);
		assert.equal(want.requests, 6);
		const ids2 = await asService(`${AS_ACME}SELECT id FROM requests ORDER BY created_at`);
		assert.deepEqual(ids2.rows.flat(), ids.acme);
	});

	test('as tenant acme, another tenant\'s request is invisible even by id', async () => {
		const r = await asService(`${AS_ACME}
SELECT count(*) FROM requests WHERE id = '${ids.globex[0]}';
SELECT coalesce(p25_request_json('${ids.globex[0]}')::text, 'NULL');
SELECT coalesce(p25_request_json('${ids.acme[0]}')->>'tenant', 'NULL');`);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.rows, [['0'], ['NULL'], ['acme']]);
	});

	test('with no role set, the service role sees nothing', async () => {
		const r = await asService(`SELECT count(*) FROM requests;
SELECT count(*) FROM request_addresses;
SELECT count(*) FROM tenants;
SELECT count(*) FROM tenant_addresses;
SELECT count(*) FROM audit_log;
SELECT count(*) FROM requests WHERE id = '${ids.acme[0]}';`);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.rows, [['0'], ['0'], ['0'], ['0'], ['0'], ['0']]);
		// the tenant role with no tenant, or an empty one, sees nothing either
		const empty = await asService(`SELECT set_config('p25.role', 'tenant', false) \\g /dev/null
SELECT count(*) FROM requests;
SELECT set_config('p25.tenant', '', false) \\g /dev/null
SELECT count(*) FROM requests;`);
		assert.deepEqual(empty.rows, [['0'], ['0']]);
	});

	test('as tenant acme, inserting a request for globex is refused by RLS', async () => {
		const [[before0]] = await s.sql("SELECT count(*) FROM requests WHERE tenant_id = 'globex'");
		const r = await asService(`${AS_ACME}
INSERT INTO requests (tenant_id, use_case) VALUES ('globex', 'other');`);
		assert.notEqual(r.code, 0, 'the insert must fail');
		assert.match(r.stderr, /new row violates row-level security policy/);
		const ra = await asService(`${AS_ACME}
INSERT INTO request_addresses (request_id, tenant_id, prefix, position) VALUES ('${ids.globex[0]}', 'globex', '81.2.70.99/32', 9);`);
		assert.notEqual(ra.code, 0);
		assert.match(ra.stderr, /row-level security/);
		// moving one of acme's requests to globex is refused too
		const mv = await asService(`${AS_ACME}
UPDATE requests SET tenant_id = 'globex' WHERE id = '${ids.acme[0]}';`);
		assert.notEqual(mv.code, 0);
		assert.match(mv.stderr, /row-level security/);
		const [[after0]] = await s.sql("SELECT count(*) FROM requests WHERE tenant_id = 'globex'");
		assert.equal(after0, before0);
	});

	test('as tenant acme, updating or deleting globex\'s rows touches nothing', async () => {
		const r = await asService(`${AS_ACME}
WITH u AS (UPDATE requests SET status = 'withdrawn' WHERE tenant_id = 'globex' RETURNING 1) SELECT count(*) FROM u;
WITH d AS (DELETE FROM tenant_addresses WHERE tenant_id = 'globex' RETURNING 1) SELECT count(*) FROM d;`);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.rows, [['0'], ['0']]);
		const [row] = await s.sqlJson(`SELECT (SELECT count(*) FROM requests WHERE tenant_id = 'globex' AND status = 'pending') AS pending,
			(SELECT count(*) FROM tenant_addresses WHERE tenant_id = 'globex') AS inventory`);
		assert.deepEqual(row, { pending: 6, inventory: 1 });
	});

	test('the staff role sees both tenants (RLS is a filter, not an empty table)', async () => {
		const r = await asService(`SELECT set_config('p25.role', 'staff', false) \\g /dev/null
SELECT tenant_id, count(*) FROM requests GROUP BY tenant_id ORDER BY 1;`);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.rows, [['acme', '6'], ['globex', '6']]);
	});
});
