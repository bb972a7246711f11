// audit.test.mjs — the audit log (issue 6): every state change writes its
// row in the same transaction as the change; the rows are hash-chained and
// `p25ctl audit verify` finds an edited, a deleted and a reordered row; the
// service's database role cannot change or remove rows; and when the row
// cannot be written, nothing changes (fail closed).
//
// Tampering is done the way an attacker with the table owner's password
// would do it (s.sql runs as p25_owner), and undone afterwards so the next
// case starts from an intact chain.  A p25-worker runs throughout (it vets,
// and seals the chain every few seconds, concurrently with the tests).
//
// Run: P25_BUILD_DIR=$PWD/build/debug node --test tests/integration/audit.test.mjs
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, freePort, run, sleep } from '../lib/harness.mjs';

let s;
let tenantTok;
let rita;
let adminTok;

before(async () => {
	const closed = await freePort(); // every DNS query refused: vetting ends in needs_review
	s = await startStack({
		worker: true,
		env: {
			P25_DNS_SERVERS: `127.0.0.1:${closed}`, P25_DNS_TIMEOUT_MS: '200', P25_DNS_TRIES: '1',
			P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000',
		},
	});
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, k.stderr);
	tenantTok = s.token({ sub: 'alice@acme', roles: ['tenant'], tenant: 'acme' });
	rita = s.token({ sub: 'rita', roles: ['reviewer'] });
	adminTok = s.token({ sub: 'ada', roles: ['admin'] });
});
after(async () => {
	if (s) await s.stop();
});

// ------------------------------------------------------------ helpers

const rows = (sql, p) => s.sqlJson(sql, p);
const actionsOf = async (object) => (await rows('SELECT action, actor FROM audit_log WHERE object_id = $1 ORDER BY seq', [object]))
	.map((r) => `${r.action} by ${r.actor}`);
const auditCount = async () => (await rows('SELECT count(*)::int n FROM audit_log'))[0].n;

async function waitStatus(id, want, timeoutMs = 20000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const r = await s.api('GET', `/v1/requests/${id}`, { token: tenantTok });
		if (r.status === 200 && r.json.status === want) return r.json;
		if (Date.now() > deadline) assert.fail(`request ${id} never became ${want}: ${r.status} ${r.text}`);
		await sleep(100);
	}
}

let host = 10;
async function submit() {
	const r = await s.api('POST', '/v1/requests', {
		token: tenantTok, body: { addresses: [`81.2.69.${host++}`], use_case: 'transactional' },
	});
	assert.equal(r.status, 202, r.text);
	return r.json.id;
}

/** The audit row's transaction is the transaction that wrote row (table, id). */
async function sameTransaction(table, id, auditAction, object) {
	const [r] = await rows(`SELECT (SELECT xmin::text FROM ${table} WHERE id = $1) AS row_xid,
		(SELECT (xid::text::numeric % 4294967296)::text FROM audit_log WHERE object_id = $2 AND action = $3
		  ORDER BY seq DESC LIMIT 1) AS audit_xid`, [id, object, auditAction]);
	assert.ok(r.audit_xid, `no ${auditAction} row for ${object}`);
	assert.equal(r.row_xid, r.audit_xid, `${table} ${id} and its ${auditAction} audit row were written by different transactions`);
}

const seal = async () => {
	const r = await s.ctl(['audit', 'seal']);
	assert.equal(r.code, 0, r.stderr);
	return r.stdout;
};
const verify = () => s.ctl(['audit', 'verify']);
async function assertIntact(what) {
	const v = await verify();
	assert.equal(v.code, 0, `${what}: ${v.stdout}${v.stderr}`);
	assert.match(v.stdout, /^audit chain intact: \d+ links verified/);
	return v.stdout;
}
async function assertBroken(link, problem, what) {
	const v = await verify();
	assert.equal(v.code, 2, `${what}: verify should fail: ${v.stdout}${v.stderr}`);
	assert.match(v.stdout, new RegExp(`^BROKEN at link ${link}: `), `${what}: ${v.stdout}`);
	if (problem) assert.match(v.stdout, problem, `${what}: ${v.stdout}`);
	return v.stdout;
}

/** psql as the service role (P25_DATABASE_URL: p25_app, a member of p25_service). */
function asService(sql) {
	return run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', s.env.P25_DATABASE_URL, '-c', sql],
		{ env: s.childEnv() });
}

// ------------------------------------------------------------ every state change

describe('every state change writes its audit row', () => {
	let a; // the request that goes all the way
	let ex;

	test('admin: tenant.put and tenant.addresses.put', async () => {
		const put = await s.api('PUT', '/v1/admin/tenants/acme', {
			token: adminTok, body: { name: 'Acme Mail', created_at: '2020-01-01T00:00:00Z', verified: true, standing: 'good' },
		});
		assert.equal(put.status, 201, put.text);
		const inv = await s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: adminTok, body: { addresses: ['81.2.69.0/24'] } });
		assert.equal(inv.status, 200, inv.text);
		const put2 = await s.api('PUT', '/v1/admin/tenants/acme', {
			token: adminTok, body: { name: 'Acme Mail GmbH', created_at: '2020-01-01T00:00:00Z', verified: true },
		});
		assert.equal(put2.status, 200, put2.text);
		assert.deepEqual(await actionsOf('acme'), ['tenant.put by ada', 'tenant.addresses.put by ada', 'tenant.put by ada']);
		const [last] = await rows(`SELECT details, tenant_id FROM audit_log WHERE object_id = 'acme' ORDER BY seq DESC LIMIT 1`);
		assert.equal(last.details.name, 'Acme Mail GmbH');
		assert.equal(last.tenant_id, 'acme');
		// p25ctl keys generate (before()) wrote its row too
		const keys = await rows(`SELECT actor, object_type FROM audit_log WHERE action = 'key.generate'`);
		assert.deepEqual(keys, [{ actor: 'p25ctl', object_type: 'signing_key' }]);
	});

	test('tenant and worker: submit, vetting, decide', async () => {
		a = await submit();
		await waitStatus(a, 'needs_review');
		assert.deepEqual(await actionsOf(a), ['request.submit by alice@acme', 'request.vetting by system:vetting',
			'request.decide by system:vetting']);
		const [d] = await rows(`SELECT details FROM audit_log WHERE object_id = $1 AND action = 'request.decide'`, [a]);
		assert.ok(JSON.stringify(d.details).includes('needs_review'), JSON.stringify(d.details));
	});

	test('reviewer and tenant: claim, needs_info, answer, recheck, approve', async () => {
		assert.equal((await s.api('POST', `/v1/review/requests/${a}/claim`, { token: rita })).status, 200);
		const ni = await s.api('POST', `/v1/review/requests/${a}/decision`, { token: rita, body: { decision: 'needs_info', note: 'Which domains?' } });
		assert.equal(ni.status, 200, ni.text);
		const ans = await s.api('POST', `/v1/requests/${a}/messages`, { token: tenantTok, body: { body: 'shop.example' } });
		assert.equal(ans.status, 200, ans.text);
		// a second needs_info, then a recheck by the tenant instead of an answer
		const ni2 = await s.api('POST', `/v1/review/requests/${a}/decision`, { token: rita, body: { decision: 'needs_info', note: 'Fixed rDNS?' } });
		assert.equal(ni2.status, 200, ni2.text);
		await s.sql(`UPDATE decisions SET created_at = now() - interval '1 hour' WHERE request_id = $1`, [a]);
		const rc = await s.api('POST', `/v1/requests/${a}/recheck`, { token: tenantTok });
		assert.equal(rc.status, 202, rc.text);
		await waitStatus(a, 'needs_review');
		const ok = await s.api('POST', `/v1/review/requests/${a}/decision`, { token: rita, body: { decision: 'approve', expires_in_days: 10 } });
		assert.equal(ok.status, 200, ok.text);
		ex = ok.json.exemptions[0];
		assert.deepEqual(await actionsOf(a), [
			'request.submit by alice@acme', 'request.vetting by system:vetting', 'request.decide by system:vetting',
			'request.claim by rita', 'request.review by rita', 'request.answer by alice@acme', 'request.review by rita',
			'request.recheck by alice@acme', 'request.vetting by system:vetting', 'request.decide by system:vetting',
			'request.review by rita']);
		const reviews = await rows(`SELECT details FROM audit_log WHERE object_id = $1 AND action = 'request.review' ORDER BY seq`, [a]);
		assert.deepEqual(reviews.map((r) => r.details.decision), ['needs_info', 'needs_info', 'approve']);
		assert.equal(reviews[2].details.scope.expires_in_days, 10);
		assert.deepEqual(await actionsOf(ex), ['exemption.grant by rita']);
		// the decision row and its audit row: one transaction
		const [dec] = await rows(`SELECT id FROM decisions WHERE request_id = $1 ORDER BY id DESC LIMIT 1`, [a]);
		await sameTransaction('decisions', dec.id, 'request.review', a);
		await sameTransaction('exemptions', ex, 'exemption.grant', ex);
	});

	test('revoke, reinstate, relinquish', async () => {
		const rv = await s.api('POST', `/v1/exemptions/${ex}/revoke`, { token: rita, body: { reason: 'complaints' } });
		assert.equal(rv.status, 200, rv.text);
		await sameTransaction('exemptions', ex, 'exemption.revoke', ex);
		const ri = await s.api('POST', `/v1/exemptions/${ex}/reinstate`, { token: rita, body: { reason: 'resolved' } });
		assert.equal(ri.status, 200, ri.text);
		await sameTransaction('exemptions', ex, 'exemption.reinstate', ex);
		const del = await s.api('DELETE', `/v1/exemptions/${ex}`, { token: tenantTok });
		assert.equal(del.status, 200, del.text);
		await sameTransaction('exemptions', ex, 'exemption.relinquish', ex);
		assert.deepEqual(await actionsOf(ex), ['exemption.grant by rita', 'exemption.revoke by rita',
			'exemption.reinstate by rita', 'exemption.relinquish by alice@acme']);
		const [r] = await rows(`SELECT details FROM audit_log WHERE object_id = $1 AND action = 'exemption.revoke'`, [ex]);
		assert.equal(r.details.reason, 'complaints');
	});

	test('withdraw and deny', async () => {
		const b = await submit();
		const w = await s.api('POST', `/v1/requests/${b}/withdraw`, { token: tenantTok });
		assert.equal(w.status, 200, w.text);
		await sameTransaction('requests', b, 'request.withdraw', b);
		const acts = await actionsOf(b);
		assert.equal(acts[0], 'request.submit by alice@acme');
		assert.ok(acts.includes('request.withdraw by alice@acme'), acts.join(', '));
		const [wd] = await rows(`SELECT details FROM audit_log WHERE object_id = $1 AND action = 'request.withdraw'`, [b]);
		assert.ok(['pending', 'vetting', 'needs_review'].includes(wd.details.from), JSON.stringify(wd.details));

		const c = await submit();
		await waitStatus(c, 'needs_review');
		const d = await s.api('POST', `/v1/review/requests/${c}/decision`, { token: rita, body: { decision: 'deny', reason_codes: ['listed', 'rdns'], note: 'no' } });
		assert.equal(d.status, 200, d.text);
		await sameTransaction('requests', c, 'request.review', c);
		const [dn] = await rows(`SELECT details FROM audit_log WHERE object_id = $1 AND action = 'request.review'`, [c]);
		assert.deepEqual(dn.details.reason_codes, ['listed', 'rdns']);
	});

	test('refused calls write no audit row', async () => {
		const before0 = await auditCount();
		const id = await submit();
		await waitStatus(id, 'needs_review');
		const n = await auditCount();
		const refusals = [
			s.api('POST', `/v1/review/requests/${id}/decision`, { token: rita, body: { decision: 'deny', reason_code: 'nope' } }),
			s.api('POST', `/v1/review/requests/${id}/decision`, { token: rita, body: { decision: 'approve' }, headers: { 'If-Match': '"77"' } }),
			s.api('POST', `/v1/review/requests/${id}/decision`, { token: tenantTok, body: { decision: 'approve' } }),
			s.api('POST', `/v1/requests/${id}/messages`, { token: tenantTok, body: { body: 'not asked' } }),
			s.api('POST', `/v1/exemptions/${ex}/revoke`, { token: rita, body: { reason: 'already given up' } }),
			s.api('POST', `/v1/requests/${a}/withdraw`, { token: tenantTok }),
		];
		for (const r of await Promise.all(refusals)) assert.ok(r.status >= 400, `${r.status} ${r.text}`);
		assert.equal(await auditCount(), n);
		assert.ok(n > before0);
	});

	// (a regression test: the renew and expire jobs once bound two parameters
	// to a one-parameter statement and never ran — fixed in 772c06e)
	test('expiry writes exemption.expire (worker)', async () => {
		const id = await submit();
		await waitStatus(id, 'needs_review');
		const ok = await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rita, body: { decision: 'approve' } });
		assert.equal(ok.status, 200, ok.text);
		const e = ok.json.exemptions[0];
		await s.sql(`UPDATE exemptions SET expires_at = now() - interval '1 second' WHERE id = $1`, [e]);
		const deadline = Date.now() + 45000; // the expire job is queued every 30 s
		while ((await rows('SELECT status FROM exemptions WHERE id = $1', [e]))[0].status !== 'expired') {
			if (Date.now() > deadline) assert.fail('the exemption never expired');
			await sleep(500);
		}
		assert.ok((await actionsOf(e)).includes('exemption.expire by system:expiry'));
		await sameTransaction('exemptions', e, 'exemption.expire', e);
	});
});

// ------------------------------------------------------------ the chain

describe('the hash chain', () => {
	let links; // [{pos, seq}] of the sealed chain, in chain order

	before(async () => {
		await seal();
		links = await rows('SELECT pos::int, seq::int FROM audit_chain ORDER BY pos');
		assert.ok(links.length >= 20, `only ${links.length} links`);
	});

	test('sealed, then verified intact', async () => {
		const out = await seal();
		assert.match(out, /^sealed \d+ audit rows/);
		const v = await assertIntact('after sealing');
		const m = /intact: (\d+) links verified, (\d+) rows not sealed yet/.exec(v);
		assert.ok(Number(m[1]) >= links.length, v);
		// every row is in the chain exactly once; positions have no gaps
		const [c] = await rows(`SELECT count(*)::int chain, count(DISTINCT seq)::int seqs, min(pos)::int lo,
			max(pos)::int hi FROM audit_chain`);
		assert.equal(c.chain, c.seqs);
		assert.equal(c.lo, 1);
		assert.equal(c.hi, c.chain);
		// the chain: each prev_hash is the hash before it, the first is 32 zero bytes
		const [g] = await rows(`SELECT bool_and(c.prev_hash = coalesce(p.hash, '\\x${'00'.repeat(32)}'::bytea)) ok
			FROM audit_chain c LEFT JOIN audit_chain p ON p.pos = c.pos - 1`);
		assert.equal(g.ok, true);
		// sealing again with nothing new adds nothing and changes nothing
		const n0 = (await rows('SELECT count(*)::int n FROM audit_chain'))[0].n;
		await seal();
		assert.equal((await rows('SELECT count(*)::int n FROM audit_chain'))[0].n, n0);
	});

	test('an edited row breaks the chain at its link, and only there', async () => {
		const target = links[Math.floor(links.length / 2)];
		const [orig] = await rows(`SELECT actor, details::text AS details, at::text AS at FROM audit_log WHERE seq = $1`, [target.seq]);
		const edits = [
			[`UPDATE audit_log SET actor = 'someone-else' WHERE seq = $1`, 'actor'],
			[`UPDATE audit_log SET details = details || '{"reason": "nothing to see"}' WHERE seq = $1`, 'details'],
			[`UPDATE audit_log SET at = at + interval '1 microsecond' WHERE seq = $1`, 'at'],
		];
		for (const [sql, what] of edits) {
			await s.sql(sql, [target.seq]);
			const out = await assertBroken(target.pos, new RegExp(`audit row ${target.seq} \\(link ${target.pos}\\) was changed`), `edited ${what}`);
			assert.match(out, new RegExp(`\\(${target.pos - 1} links verified before it\\)`));
			await s.sql(`UPDATE audit_log SET actor = $2, details = $3::jsonb, at = $4::timestamptz WHERE seq = $1`,
				[target.seq, orig.actor, orig.details, orig.at]);
			await assertIntact(`restored after editing ${what}`);
		}
		// the first link and the last one are covered too
		for (const t of [links[0], links.at(-1)]) {
			await s.sql(`UPDATE audit_log SET object_id = object_id || 'x' WHERE seq = $1`, [t.seq]);
			await assertBroken(t.pos, /was changed after it was sealed/, `edited link ${t.pos}`);
			await s.sql(`UPDATE audit_log SET object_id = left(object_id, -1) WHERE seq = $1`, [t.seq]);
			await assertIntact(`restored link ${t.pos}`);
		}
		// rewriting the stored hash of the link instead
		const [h] = await rows('SELECT encode(hash, \'hex\') h FROM audit_chain WHERE pos = $1', [target.pos]);
		await s.sql(`UPDATE audit_chain SET hash = '\\x${'ab'.repeat(32)}'::bytea WHERE pos = $1`, [target.pos]);
		await assertBroken(target.pos, null, 'a rewritten link hash');
		await s.sql(`UPDATE audit_chain SET hash = decode($2, 'hex') WHERE pos = $1`, [target.pos, h.h]);
		await assertIntact('restored link hash');
	});

	test('a deleted row (with its chain row, as an attacker would) breaks the chain', async () => {
		const target = links[Math.floor(links.length / 3)];
		const [logRow] = await rows('SELECT seq, xid::text xid, at::text at, actor, action, object_type, object_id, tenant_id, details::text details FROM audit_log WHERE seq = $1', [target.seq]);
		const [chainRow] = await rows(`SELECT pos, seq, encode(prev_hash, 'hex') prev, encode(hash, 'hex') hash, sealed_at::text sealed_at FROM audit_chain WHERE pos = $1`, [target.pos]);
		await s.sql(`BEGIN; DELETE FROM audit_chain WHERE seq = $1; DELETE FROM audit_log WHERE seq = $1; COMMIT;`, [target.seq]);
		await assertBroken(target.pos, new RegExp(`link ${target.pos} is missing`), 'deleted row and link');

		// and renumbering the links after it to close the gap does not help
		// (in two steps: the primary key is checked row by row)
		await s.sql(`BEGIN; UPDATE audit_chain SET pos = -pos WHERE pos > $1;
			UPDATE audit_chain SET pos = -pos - 1 WHERE pos < 0; COMMIT;`, [target.pos]);
		await assertBroken(target.pos, /prev_hash differs/, 'deleted and renumbered');
		await s.sql(`BEGIN; UPDATE audit_chain SET pos = -pos WHERE pos >= $1;
			UPDATE audit_chain SET pos = -pos + 1 WHERE pos < 0; COMMIT;`, [target.pos]);
		await assertBroken(target.pos, /missing/, 'renumbered back');

		// deleting only the audit row is not possible (the chain row refers to it) —
		// and deleting only the chain row is a missing link too
		const other = links[Math.floor(links.length / 3) + 2];
		const [otherChain] = await rows(`SELECT pos, seq, encode(prev_hash, 'hex') prev, encode(hash, 'hex') hash, sealed_at::text sealed_at FROM audit_chain WHERE pos = $1`, [other.pos]);
		await assert.rejects(s.sql('DELETE FROM audit_log WHERE seq = $1', [other.seq]), /foreign key/);

		// restore, as it was
		await s.sql(`BEGIN;
			INSERT INTO audit_log (seq, xid, at, actor, action, object_type, object_id, tenant_id, details)
			VALUES ($1::bigint, $2::xid8, $3::timestamptz, $4, $5, $6, $7, $8, $9::jsonb);
			INSERT INTO audit_chain (pos, seq, prev_hash, hash, sealed_at) VALUES ($10::bigint, $1::bigint, decode($11, 'hex'), decode($12, 'hex'), $13::timestamptz);
			COMMIT;`, [logRow.seq, logRow.xid, logRow.at, logRow.actor, logRow.action, logRow.object_type, logRow.object_id,
			logRow.tenant_id, logRow.details, chainRow.pos, chainRow.prev, chainRow.hash, chainRow.sealed_at]);
		await assertIntact('restored deleted row');

		await s.sql('DELETE FROM audit_chain WHERE pos = $1', [other.pos]);
		await assertBroken(other.pos, /missing/, 'deleted chain row only');
		await s.sql(`INSERT INTO audit_chain (pos, seq, prev_hash, hash, sealed_at) VALUES ($1::bigint, $2::bigint, decode($3, 'hex'), decode($4, 'hex'), $5::timestamptz)`,
			[otherChain.pos, otherChain.seq, otherChain.prev, otherChain.hash, otherChain.sealed_at]);
		await assertIntact('restored chain row');
	});

	test('a reordering (two rows\' contents swapped) breaks the chain', async () => {
		const x = links[5];
		const y = links[9];
		const cols = 'xid, at, actor, action, object_type, object_id, tenant_id, details';
		const swap = `UPDATE audit_log a SET (${cols}) = (SELECT ${cols} FROM audit_log b
			WHERE b.seq = CASE WHEN a.seq = $1::bigint THEN $2::bigint ELSE $1::bigint END)
			WHERE a.seq IN ($1::bigint, $2::bigint)`;
		const [rx] = await rows('SELECT action, object_id FROM audit_log WHERE seq = $1', [x.seq]);
		const [ry] = await rows('SELECT action, object_id FROM audit_log WHERE seq = $1', [y.seq]);
		assert.notDeepEqual(rx, ry, 'two different rows');
		await s.sql(swap, [x.seq, y.seq]);
		assert.deepEqual((await rows('SELECT action, object_id FROM audit_log WHERE seq = $1', [x.seq]))[0], ry, 'swapped');
		await assertBroken(x.pos, /was changed after it was sealed/, 'swapped rows');
		await s.sql(swap, [x.seq, y.seq]);
		await assertIntact('swapped back');

		// neighbours: the smallest reordering there is
		const p = links[12];
		const q = links[13];
		await s.sql(swap, [p.seq, q.seq]);
		await assertBroken(p.pos, null, 'adjacent rows swapped');
		await s.sql(swap, [p.seq, q.seq]);
		await assertIntact('adjacent swapped back');
	});

	test('rows written after the tampering tests are sealed onto the same chain', async () => {
		const n0 = (await rows('SELECT max(pos)::int n FROM audit_chain'))[0].n;
		const id = await submit();
		assert.equal((await s.api('POST', `/v1/requests/${id}/withdraw`, { token: tenantTok })).status, 200);
		// the worker's sealer (every ~5 s) picks them up by itself
		const deadline = Date.now() + 20000;
		for (;;) {
			const [c] = await rows(`SELECT count(*)::int n FROM audit_log a JOIN audit_chain c USING (seq) WHERE a.object_id = $1`, [id]);
			if (c.n >= 2) break;
			if (Date.now() > deadline) assert.fail('the worker did not seal the new rows');
			await sleep(250);
		}
		assert.ok((await rows('SELECT max(pos)::int n FROM audit_chain'))[0].n > n0);
		await assertIntact('after more rows');
	});
});

// ------------------------------------------------------------ the service role

describe('the service role', () => {
	test('cannot update or delete audit rows or chain links', async () => {
		const who = await asService('SELECT current_user');
		assert.equal(who.code, 0, who.stderr);
		assert.equal(who.stdout.trim(), 'p25_app');
		const set = "SELECT set_config('p25.role', 'system', false);";
		for (const sql of [
			'UPDATE audit_log SET actor = actor',
			'DELETE FROM audit_log',
			'DELETE FROM audit_log WHERE seq = 1',
			'TRUNCATE audit_log CASCADE',
			'UPDATE audit_chain SET hash = hash',
			'DELETE FROM audit_chain',
			'TRUNCATE audit_chain',
		]) {
			const r = await asService(`${set} ${sql}`);
			assert.notEqual(r.code, 0, `${sql} was allowed`);
			assert.match(r.stderr, /permission denied for table audit_(log|chain)/, `${sql}: ${r.stderr}`);
		}
		// it can read them, and append (that is what the API and the sealer do)
		const r = await asService(`${set} SELECT count(*) > 0 FROM audit_log`);
		assert.equal(r.code, 0, r.stderr);
		assert.match(r.stdout, /t/);
		await assertIntact('after the refused changes');
	});

	// A compromised service must not be able to add a row the chain never
	// covers: with an xid below the chain head the sealer would never seal it
	// and verify would only count it as "not sealed yet", while GET /v1/audit
	// lists it with its back-dated `at`.  So seq/xid/at are not the service's
	// to choose (column grants, migrations/0007_hardening.sql); should that
	// insert ever be allowed again, verify must report the row.
	test('cannot plant a back-dated row the chain never covers', async () => {
		await seal();
		const r = await asService(`BEGIN; SELECT set_config('p25.role', 'system', true);
			INSERT INTO audit_log (actor, action, object_type, object_id, at, xid)
			VALUES ('mallory', 'request.review', 'request', 'planted', '2020-01-01T00:00:00Z', '1'::xid8); COMMIT;`);
		if (r.code !== 0) { // refused: the right answer
			assert.match(r.stderr, /permission denied/, r.stderr);
			return;
		}
		try {
			await seal();
			const v = await verify();
			assert.equal(v.code, 2, `a planted row below the chain head is not reported: ${v.stdout}`);
		} finally {
			await s.sql(`DELETE FROM audit_log WHERE object_id = 'planted' AND seq NOT IN (SELECT seq FROM audit_chain)`);
		}
	});
});

// ------------------------------------------------------------ fail closed

describe('fail closed: when the audit row cannot be written, nothing changes', () => {
	let open; // a needs_review request
	let ex; // an active exemption

	before(async () => {
		open = await submit();
		await waitStatus(open, 'needs_review');
		const id = await submit();
		await waitStatus(id, 'needs_review');
		const ok = await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rita, body: { decision: 'approve' } });
		assert.equal(ok.status, 200, ok.text);
		ex = ok.json.exemptions[0];
	});

	async function snapshot() {
		const [r] = await rows(`SELECT
			(SELECT row_to_json(r)::text FROM requests r WHERE id = $1) AS req,
			(SELECT row_to_json(e)::text FROM exemptions e WHERE id = $2) AS ex,
			(SELECT count(*) FROM requests)::int AS requests,
			(SELECT count(*) FROM decisions)::int AS decisions,
			(SELECT count(*) FROM messages)::int AS messages,
			(SELECT count(*) FROM exemptions)::int AS exemptions,
			(SELECT count(*) FROM tokens)::int AS tokens,
			(SELECT count(*) FROM feed_events)::int AS feed,
			(SELECT count(*) FROM jobs WHERE kind NOT IN ('renew', 'expire', 'audit.seal', 'monitor'))::int AS jobs,
			(SELECT count(*) FROM webhook_deliveries)::int AS webhooks,
			(SELECT count(*) FROM audit_log)::int AS audit,
			(SELECT row_to_json(t)::text FROM (SELECT name, verified, standing, webhook_url FROM tenants WHERE id = 'acme') t) AS tenant,
			(SELECT string_agg(prefix::text, ',' ORDER BY prefix) FROM tenant_addresses WHERE tenant_id = 'acme') AS inventory`,
		[open, ex]);
		return r;
	}

	test('with audit inserts failing, every kind of change is refused and leaves no trace', async () => {
		const b0 = await snapshot();
		await s.sql('ALTER TABLE audit_log ADD CONSTRAINT no_more CHECK (false) NOT VALID');
		try {
			const calls = {
				submit: () => s.api('POST', '/v1/requests', { token: tenantTok, body: { addresses: ['81.2.69.250'], use_case: 'other' } }),
				withdraw: () => s.api('POST', `/v1/requests/${open}/withdraw`, { token: tenantTok }),
				claim: () => s.api('POST', `/v1/review/requests/${open}/claim`, { token: rita }),
				approve: () => s.api('POST', `/v1/review/requests/${open}/decision`, { token: rita, body: { decision: 'approve' } }),
				needs_info: () => s.api('POST', `/v1/review/requests/${open}/decision`, { token: rita, body: { decision: 'needs_info', note: 'q' } }),
				revoke: () => s.api('POST', `/v1/exemptions/${ex}/revoke`, { token: rita, body: { reason: 'r' } }),
				relinquish: () => s.api('DELETE', `/v1/exemptions/${ex}`, { token: tenantTok }),
				tenant_put: () => s.api('PUT', '/v1/admin/tenants/acme', { token: adminTok, body: { name: 'Changed', created_at: '2020-01-01T00:00:00Z', verified: false, webhook_url: 'https://example.com/h' } }),
				addresses_put: () => s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: adminTok, body: { addresses: ['81.2.69.0/24', '81.2.72.0/24'] } }),
			};
			for (const [name, call] of Object.entries(calls)) {
				const r = await call();
				// the server's fault, said so: 503 audit_unavailable, never a 4xx blaming the input
				assert.equal(r.status, 503, `${name}: ${r.status} ${r.text}`);
				assert.match(r.headers.get('content-type') || '', /problem\+json/, name);
				assert.equal(r.json?.code, 'audit_unavailable', `${name}: ${r.text}`);
				assert.ok(r.headers.get('retry-after'), `${name}: Retry-After`);
			}
			assert.deepEqual(await snapshot(), b0, 'nothing changed');
		} finally {
			await s.sql('ALTER TABLE audit_log DROP CONSTRAINT no_more');
		}
		// and once the audit log takes rows again, the same calls go through
		const w = await s.api('POST', `/v1/review/requests/${open}/decision`, { token: rita, body: { decision: 'deny', reason_code: 'other' } });
		assert.equal(w.status, 200, w.text);
		const rv = await s.api('POST', `/v1/exemptions/${ex}/revoke`, { token: rita, body: { reason: 'r' } });
		assert.equal(rv.status, 200, rv.text);
		await seal();
		await assertIntact('after fail-closed');
	});
});
