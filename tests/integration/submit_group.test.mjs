// Submits filed and reads answered in groups (issue 3, api/http.c groups,
// p25_submit_group, req_get).
//
// Submits filed in groups:
// submits that wait for a pool connection go to the database together, in
// one transaction, each in its own subtransaction under its own tenant.
// With a pool of two connections and bursts of concurrent submits, groups
// form; these tests check that every submit of a group is answered as if
// it had been filed alone: refusals refused and leaving no row, the valid
// ones written whole with their audit row under the right tenant, the
// per-tenant open-request cap and Idempotency-Key exact across a group.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startStack, waitFor } from '../lib/harness.mjs';

let s;
const tok = {};
const NET = { acme: '81.2.69', globex: '81.2.70', initech: '81.2.71', capped: '81.2.72',
	held: '81.2.73', burst: '81.2.74' };

before(async () => {
	s = await startStack({
		env: { P25_DB_POOL_SIZE: '2', P25_DB_GROUPS: '2', P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '20' },
	});
	for (const [t, net] of Object.entries(NET)) {
		await s.createTenant(t, { addresses: [`${net}.0/24`] });
		tok[t] = s.token({ sub: `${t}-user`, roles: ['tenant'], tenant: t });
	}
});
after(async () => {
	if (s) await s.stop();
});

const submit = (t, body, headers = {}) =>
	s.api('POST', '/v1/requests', { token: tok[t], body, headers });
const body = (addr, over = {}) => ({ addresses: [addr], use_case: 'transactional', ...over });

test('a burst of mixed submits: each answered as if alone, groups formed', async () => {
	const sent = [];
	const add = (kind, t, b, headers) => sent.push({ kind, t, b, p: submit(t, b, headers) });
	for (let i = 1; i <= 12; i++) {
		for (const t of ['acme', 'globex', 'initech']) {
			if (i % 4 === 0) add('not_held', t, body(`81.2.99.${i}`));
			else if (i % 6 === 1) add('invalid', t, body(`10.0.0.${i}`));
			else add('ok', t, body(`${NET[t]}.${i}`, { description: `${t} #${i}` }));
		}
	}
	// one key three times with one body, and once with another body
	const kb = body(`${NET.acme}.200`);
	for (let i = 0; i < 3; i++) add('key', 'acme', kb, { 'Idempotency-Key': 'burst-key' });
	add('key_other', 'acme', body(`${NET.acme}.201`), { 'Idempotency-Key': 'burst-key' });

	const answers = await Promise.all(sent.map((x) => x.p));
	const created = [];
	sent.forEach((x, i) => {
		const r = answers[i];
		const what = `${x.kind} ${x.t} ${JSON.stringify(x.b)}: ${r.status} ${r.text}`;
		if (x.kind === 'ok') {
			assert.equal(r.status, 202, what);
			assert.equal(r.json.tenant, x.t, what);
			assert.deepEqual(r.json.addresses, [`${x.b.addresses[0]}/32`], what);
			assert.equal(r.json.description, x.b.description, what);
			assert.equal(r.headers.get('location'), `/v1/requests/${r.json.id}`, what);
			assert.equal(r.headers.get('etag'), `"${r.json.version}"`, what);
			created.push({ id: r.json.id, t: x.t });
		} else if (x.kind === 'not_held') {
			assert.equal(r.status, 422, what);
			assert.equal(r.json.code, 'address_not_held', what);
			assert.ok(r.json.errors.some((e) => e.code === 'address_not_held' &&
				e.field === 'addresses[0]'), what);
		} else if (x.kind === 'invalid') {
			assert.equal(r.status, 422, what);
			assert.ok(r.json.errors.some((e) => e.field === 'addresses[0]'), what);
		}
	});
	// the key: one request, whichever body came first; the same body again is
	// its replay (or "in flight"), the other body a reuse (or "in flight")
	const keyed = sent.map((x, i) => ({ x, r: answers[i] }))
		.filter((e) => e.x.kind === 'key' || e.x.kind === 'key_other');
	const firsts = keyed.filter((e) => e.r.status === 202 && !e.r.headers.get('idempotent-replayed'));
	assert.equal(firsts.length, 1, keyed.map((e) => `${e.r.status} ${e.r.text}`).join('\n'));
	const won = firsts[0];
	for (const e of keyed) {
		if (e === won) continue;
		const what = `${e.x.kind}: ${e.r.status} ${e.r.text}`;
		if (e.r.status === 409) {
			assert.equal(e.r.json.code, 'idempotency_in_flight', what);
		} else if (JSON.stringify(e.x.b) === JSON.stringify(won.x.b)) {
			assert.equal(e.r.status, 202, what);
			assert.equal(e.r.headers.get('idempotent-replayed'), 'true', what);
			assert.equal(e.r.text, won.r.text, 'a replay is the first answer byte for byte');
		} else {
			assert.equal(e.r.status, 422, what);
			assert.equal(e.r.json.code, 'idempotency_key_reused', what);
		}
	}
	created.push({ id: won.r.json.id, t: 'acme' });

	// the database: exactly the created requests, each whole, under its tenant
	const rows = await s.sqlJson(`SELECT r.id, r.tenant_id,
		(SELECT count(*) FROM request_addresses a WHERE a.request_id = r.id AND a.tenant_id = r.tenant_id) AS addrs,
		(SELECT count(*) FROM jobs j WHERE j.kind = 'vet' AND j.payload->>'request' = r.id::text) AS jobs,
		(SELECT count(*) FROM audit_log l WHERE l.object_id = r.id::text AND l.action = 'request.submit'
		    AND l.tenant_id = r.tenant_id AND l.actor = r.tenant_id || '-user') AS audits
		FROM requests r`);
	assert.equal(rows.length, created.length, 'no request row beyond the created ones');
	const byId = new Map(rows.map((x) => [x.id, x]));
	for (const c of created) {
		const row = byId.get(c.id);
		assert.ok(row, `request ${c.id} is in the database`);
		assert.equal(row.tenant_id, c.t);
		assert.deepEqual([Number(row.addrs), Number(row.jobs), Number(row.audits)], [1, 1, 1], c.id);
	}
	const [a] = await s.sqlJson(`SELECT count(*) AS n, count(DISTINCT xid) AS tx
		FROM audit_log WHERE action = 'request.submit'`);
	assert.equal(Number(a.n), created.length, 'one audit row per created request, none for refusals');
	assert.ok(Number(a.tx) < created.length,
		`groups formed: ${a.n} submits committed in ${a.tx} transactions`);
	const [k] = await s.sqlJson(`SELECT count(*) AS n FROM idempotency_keys WHERE key = 'burst-key'`);
	assert.equal(Number(k.n), 1);

	// isolation: each request is its tenant's alone
	for (const c of created.slice(0, 6)) {
		const mine = await s.api('GET', `/v1/requests/${c.id}`, { token: tok[c.t] });
		assert.equal(mine.status, 200);
		const stranger = c.t === 'globex' ? 'initech' : 'globex';
		const theirs = await s.api('GET', `/v1/requests/${c.id}`, { token: tok[stranger] });
		assert.equal(theirs.status, 404);
	}
});

test('the open-request cap holds inside a group', async () => {
	const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
		submit('capped', body(`${NET.capped}.${i + 1}`))));
	const ok = answers.filter((r) => r.status === 202).length;
	const capped = answers.filter((r) => r.status === 409 && r.json.code === 'too_many_open_requests');
	assert.equal(ok, 20, answers.map((r) => r.status).join(' '));
	assert.equal(capped.length, 10);
	const [n] = await s.sqlJson(`SELECT count(*) AS n FROM requests WHERE tenant_id = 'capped'`);
	assert.equal(Number(n.n), 20);
	const [a] = await s.sqlJson(`SELECT count(*) AS n FROM audit_log
		WHERE action = 'request.submit' AND tenant_id = 'capped'`);
	assert.equal(Number(a.n), 20);
});

/** The groups the API process handled for a route so far (its /metrics). */
async function groups(method, route) {
	const m = await s.api('GET', '/metrics');
	const get = (name) => {
		const re = new RegExp(`^${name}\\{method="${method}",route="${route.replace(/[{}]/g, '\\$&')}"\\} (\\d+)$`, 'm');
		const x = m.text.match(re);
		return x ? Number(x[1]) : 0;
	};
	return { groups: get('p25_db_groups_total'), requests: get('p25_db_group_requests_total') };
}

test('a burst of reads in groups: each answered as if alone', async () => {
	// reads of one request are a group route too: the kept bodies of a
	// group are checked in one round trip (api/requests.c, req_get)
	const made = [];
	for (const t of ['acme', 'globex', 'initech']) {
		for (let i = 0; i < 4; i++) {
			const r = await submit(t, body(`${NET[t]}.${120 + i}`, { description: `${t} read ${i}` }));
			assert.equal(r.status, 202, r.text);
			made.push({ id: r.json.id, t });
		}
	}
	const read = (id, t, headers = {}) => s.api('GET', `/v1/requests/${id}`, { token: tok[t], headers });
	// each read alone first: the bodies to compare with, now kept by the process
	const alone = new Map();
	for (const c of made) {
		const r = await read(c.id, c.t);
		assert.equal(r.status, 200, r.text);
		alone.set(c.id, r);
	}
	// changed behind the process's back (as by another process or a worker)
	const changed = made[0];
	await s.sql("UPDATE requests SET description = 'changed elsewhere', version = version + 1 WHERE id = $1",
		[changed.id]);
	const gone = made[1];
	await s.sql('DELETE FROM request_addresses WHERE request_id = $1', [gone.id]);
	await s.sql('DELETE FROM jobs WHERE payload->>\'request\' = $1', [gone.id]);
	await s.sql('DELETE FROM requests WHERE id = $1', [gone.id]);
	const g0 = await groups('GET', '/v1/requests/{id}');

	const sent = [];
	for (let round = 0; round < 4; round++) {
		for (const c of made) {
			sent.push({ kind: c === changed ? 'changed' : c === gone ? 'gone' : 'kept', c, p: read(c.id, c.t) });
			const stranger = c.t === 'globex' ? 'initech' : 'globex';
			sent.push({ kind: 'stranger', c, p: read(c.id, stranger) });
			if (c !== changed && c !== gone) {
				const etag = alone.get(c.id).headers.get('etag');
				sent.push({ kind: 'not_modified', c, p: read(c.id, c.t, { 'If-None-Match': etag }) });
			}
		}
		sent.push({ kind: 'absent', p: read('0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11', 'acme') });
		sent.push({ kind: 'absent', p: read('not-a-uuid', 'acme') });
	}
	const answers = await Promise.all(sent.map((x) => x.p));
	sent.forEach((x, i) => {
		const r = answers[i];
		const what = `${x.kind} ${x.c ? `${x.c.t} ${x.c.id}` : ''}: ${r.status} ${r.text}`;
		if (x.kind === 'kept') {
			assert.equal(r.status, 200, what);
			assert.equal(r.text, alone.get(x.c.id).text, `${what}: the same bytes as alone`);
			assert.equal(r.headers.get('etag'), alone.get(x.c.id).headers.get('etag'), what);
		} else if (x.kind === 'changed') {
			assert.equal(r.status, 200, what);
			assert.equal(r.json.description, 'changed elsewhere', what);
			assert.equal(r.headers.get('etag'), `"${r.json.version}"`, what);
			assert.notEqual(r.headers.get('etag'), alone.get(x.c.id).headers.get('etag'), what);
		} else if (x.kind === 'not_modified') {
			assert.equal(r.status, 304, what);
			assert.equal(r.text, '', what);
		} else {
			// another tenant's, deleted, unknown, malformed: all alike
			assert.equal(r.status, 404, what);
			assert.equal(r.json.code, 'not_found', what);
		}
	});
	const g1 = await groups('GET', '/v1/requests/{id}');
	const nreq = g1.requests - g0.requests, ngroups = g1.groups - g0.groups;
	assert.equal(nreq, sent.length, 'every read went through a group');
	assert.ok(ngroups < nreq, `groups formed: ${nreq} reads in ${ngroups} groups`);
});

/**
 * A psql session that holds tenant t's submit lock (the advisory lock
 * p25_submit_group takes for each tenant of a group) until release().
 */
async function holdSubmitLock(t) {
	const p = spawn('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', s.env.P25_MIGRATE_DATABASE_URL],
		{ env: s.childEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
	const ended = new Promise((resolve) => p.on('close', resolve));
	let out = '';
	const locked = new Promise((resolve, reject) => {
		p.stdout.on('data', (d) => {
			out += d;
			if (out.includes('locked')) resolve();
		});
		p.on('close', (code) => reject(new Error(`psql ended (${code}) before the lock: ${out}`)));
	});
	p.stdin.write(`SELECT pg_advisory_lock(hashtext('p25.submit:${t}')); SELECT 'locked';\n`);
	await locked;
	return {
		release: async () => {
			p.stdin.end('SELECT pg_advisory_unlock_all();\n');
			await ended;
		},
	};
}

test('a further group of submits starts only for a deep list (API_GROUP_SPILL, 16)', async () => {
	// the first group blocks on its tenant's submit lock, held here
	const lock = await holdSubmitLock('held');
	let first;
	try {
		first = submit('held', body(`${NET.held}.1`));
		await waitFor(async () => {
			const [n] = await s.sqlJson(`SELECT count(*) AS n FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted`);
			return Number(n.n) === 1;
		}, { timeoutMs: 10000, intervalMs: 25, what: 'the first group to wait for the lock' });

		// ten submits of another tenant: under the mark, they wait for the
		// running group rather than start a second one beside it
		const answered = [];
		const track = (p, i) => p.then((r) => { answered.push(i); return r; });
		const waiting = Array.from({ length: 10 }, (_, i) =>
			track(submit('burst', body(`${NET.burst}.${i + 1}`)), i));
		await new Promise((r) => setTimeout(r, 700));
		assert.deepEqual(answered, [], 'no submit under the mark was answered while the first group ran');

		// six more make sixteen waiting: a second group takes them all at once
		const more = Array.from({ length: 6 }, (_, i) =>
			track(submit('burst', body(`${NET.burst}.${i + 11}`)), i + 10));
		const rs = await Promise.all([...waiting, ...more]);
		for (const r of rs) assert.equal(r.status, 202, r.text);
		const [held] = await s.sqlJson(`SELECT count(*) AS n FROM requests WHERE tenant_id = 'held'`);
		assert.equal(Number(held.n), 0, 'the first group still waits for the lock');
		const [tx] = await s.sqlJson(`SELECT count(*) AS n, count(DISTINCT xid) AS tx FROM audit_log
			WHERE action = 'request.submit' AND tenant_id = 'burst'`);
		assert.deepEqual([Number(tx.n), Number(tx.tx)], [16, 1], 'the sixteen went as one group');
	} finally {
		await lock.release();
	}
	const r = await first;
	assert.equal(r.status, 202, r.text);
	assert.equal(r.json.tenant, 'held');
});
