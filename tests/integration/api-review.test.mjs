// The reviewers' side and the tenant's vetting calls, through the API,
// enough to exercise every operation and answer of openapi.yaml there (the
// contract test needs them): the queue, a request's evidence, claims,
// decisions (approve, deny, needs_info; conflicts), the audit log; and the
// tenant's recheck and readiness.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';

let s;
let tok; // tenant acme
let rev; // reviewer anna
let rev2; // reviewer bo
const RANDOM = '0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11';

before(async () => {
	// DNS answers nothing here (readiness sees errors, fast)
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000',
		P25_DNS_TIMEOUT_MS: '200', P25_DNS_TRIES: '1' } });
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, `p25ctl keys generate: ${k.stderr}${k.stdout}`);
	await s.createTenant('acme', { addresses: ['81.2.69.0/24', '2a02:ff0:1::/48'] });
	await s.createTenant('globex', { addresses: ['81.2.70.0/24'] });
	tok = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
	rev = s.token({ sub: 'rev-anna', roles: ['reviewer'] });
	rev2 = s.token({ sub: 'rev-bo', roles: ['reviewer'] });
});
after(async () => {
	if (s) await s.stop();
});

function assertProblem(r, status, code, field) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.equal(r.headers.get('content-type'), 'application/problem+json');
	assert.equal(r.json.code, code, r.text);
	if (field !== undefined) assert.equal(r.json.field, field, r.text);
}

/** A request of acme's in the given state (set as the owner, like a worker would). */
async function requestIn(status, addr = '81.2.69.5', tenantTok = tok) {
	const c = await s.api('POST', '/v1/requests', { token: tenantTok, body: { addresses: [addr], use_case: 'marketing' } });
	assert.equal(c.status, 202, c.text);
	await s.sql('UPDATE requests SET status = $2, vetting_round = 1 WHERE id = $1', [c.json.id, status]);
	return c.json.id;
}

describe('queue and evidence', () => {
	const ids = [];
	before(async () => {
		ids.push(await requestIn('needs_review', '81.2.69.1'));
		ids.push(await requestIn('needs_info', '81.2.69.2'));
		ids.push(await requestIn('needs_review', '81.2.70.3', s.token({ roles: ['tenant'], tenant: 'globex' })));
		await s.sql(`INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)
			VALUES ($1, 'acme', 1, 'dnsbl', '81.2.69.1', 'pass', '{"zone":"zen.test"}', ''),
			       ($1, 'acme', 1, 'rdns', '81.2.69.1', 'error', '{}', 'the PTR lookup timed out')`, [ids[0]]);
	});

	test('GET /v1/review/queue: oldest first, with outcomes; filters; cursor pages', async () => {
		const r = await s.api('GET', '/v1/review/queue', { token: rev });
		assert.equal(r.status, 200, r.text);
		const mine = r.json.items.filter((x) => ids.includes(x.id));
		assert.deepEqual(mine.map((x) => x.id), ids);
		assert.deepEqual(mine[0].outcomes, { pass: 1, error: 1 });
		assert.equal(mine[1].outcomes, null);
		assert.ok(mine.every((x) => x.claimed_by === null));
		const info = await s.api('GET', '/v1/review/queue?state=needs_info', { token: rev });
		assert.ok(info.json.items.every((x) => x.status === 'needs_info'));
		const g = await s.api('GET', '/v1/review/queue?tenant=globex', { token: s.token({ sub: 'ops', roles: ['admin'] }) });
		assert.deepEqual(g.json.items.map((x) => x.id), [ids[2]]);
		const err = await s.api('GET', '/v1/review/queue?outcome=error', { token: rev });
		assert.deepEqual(err.json.items.map((x) => x.id), [ids[0]]);
		const old = await s.api('GET', '/v1/review/queue?min_age_seconds=3600', { token: rev });
		assert.deepEqual(old.json.items, []);
		const p1 = await s.api('GET', '/v1/review/queue?limit=2', { token: rev });
		assert.equal(p1.json.items.length, 2);
		const p2 = await s.api('GET', `/v1/review/queue?limit=2&cursor=${p1.json.next_cursor}`, { token: rev });
		assert.deepEqual([...p1.json.items, ...p2.json.items].map((x) => x.id).filter((id) => ids.includes(id)), ids);
		for (const q of ['state=pending', 'outcome=ok', 'tenant=-x', 'min_age_seconds=-1', 'limit=0', 'limit=101']) {
			assertProblem(await s.api('GET', `/v1/review/queue?${q}`, { token: rev }), 400, 'invalid_parameter', q.split('=')[0]);
		}
		assertProblem(await s.api('GET', '/v1/review/queue?cursor=zzz', { token: rev }), 400, 'invalid_cursor', 'cursor');
	});

	test('GET /v1/review/requests/{id}: the request with all its evidence; unknown → 404', async () => {
		const r = await s.api('GET', `/v1/review/requests/${ids[0]}`, { token: rev });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.headers.get('etag'), `"${r.json.version}"`);
		assert.equal(r.json.id, ids[0]);
		assert.equal(r.json.all_checks.length, 2);
		assert.equal(r.json.account.id, 'acme');
		assert.equal(r.json.account.verified, true);
		assert.ok(r.json.history.requests.some((h) => h.id === ids[1]));
		assert.equal(r.json.history.abuse_reports, 0);
		assertProblem(await s.api('GET', `/v1/review/requests/${RANDOM}`, { token: rev }), 404, 'not_found');
		assertProblem(await s.api('GET', '/v1/review/requests/nope', { token: rev }), 404, 'not_found');
	});
});

describe('claims and decisions', () => {
	test('claim: 200 and extendable; another reviewer → 409 claimed; not waiting → 409; unknown → 404', async () => {
		const id = await requestIn('needs_review', '81.2.69.10');
		const c = await s.api('POST', `/v1/review/requests/${id}/claim`, { token: rev });
		assert.equal(c.status, 200, c.text);
		assert.equal(c.json.request, id);
		assert.equal(c.json.claimed_by, 'rev-anna');
		assert.ok(Date.parse(c.json.claimed_until) > Date.now());
		assert.equal((await s.api('POST', `/v1/review/requests/${id}/claim`, { token: rev })).status, 200);
		assertProblem(await s.api('POST', `/v1/review/requests/${id}/claim`, { token: rev2 }), 409, 'claimed');
		// and another reviewer's decision is refused while the claim lasts
		assertProblem(await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rev2,
			body: { decision: 'deny', reason_codes: ['other'] } }), 409, 'claimed');
		const q = await s.api('GET', '/v1/review/queue', { token: rev });
		assert.equal(q.json.items.find((x) => x.id === id).claimed_by, 'rev-anna');
		const pending = await requestIn('pending', '81.2.69.11');
		assertProblem(await s.api('POST', `/v1/review/requests/${pending}/claim`, { token: rev }), 409, 'invalid_state');
		assertProblem(await s.api('POST', `/v1/review/requests/${RANDOM}/claim`, { token: rev }), 404, 'not_found');
	});

	test('deny: reasons from the catalogue, reapply_after; the tenant sees the decision', async () => {
		const id = await requestIn('needs_review', '81.2.69.20');
		const r = await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rev,
			body: { decision: 'deny', reason_codes: ['spam_complaints'], note: 'complaints from receivers', reapply_after_days: 7 } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'denied');
		assert.deepEqual(r.json.decision.reason_codes, ['spam_complaints']);
		const days = (Date.parse(r.json.decision.reapply_after) - Date.now()) / 86400000;
		assert.ok(days > 6.9 && days <= 7, `${days}`);
		assert.equal(r.headers.get('etag'), `"${r.json.version}"`);
		const t = await s.api('GET', `/v1/requests/${id}`, { token: tok });
		assert.equal(t.json.decision.decision, 'deny');
		// decided: a second decision → 409
		assertProblem(await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rev,
			body: { decision: 'approve' } }), 409, 'invalid_state');
	});

	test('needs_info: the question reaches the tenant as a message; approve issues exemptions', async () => {
		const id = await requestIn('needs_review', '81.2.69.21');
		const r = await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rev,
			body: { decision: 'needs_info', note: 'Which server sends from this address?' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'needs_info');
		assert.equal(r.json.messages.at(-1).role, 'reviewer');
		// while the tenant has not answered, no decision is taken
		assertProblem(await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rev,
			body: { decision: 'approve' } }), 409, 'invalid_state');
		// the tenant's answer puts it back in the review queue
		const m = await s.api('POST', `/v1/requests/${id}/messages`, { token: tok,
			body: { body: 'Our ERP sends invoices from it.' } });
		assert.equal(m.status, 200, m.text);
		assert.equal(m.json.status, 'needs_review');
		const a = await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rev,
			body: { decision: 'approve', expires_in_days: 10, prefixes: ['81.2.69.21'] } });
		assert.equal(a.status, 200, a.text);
		assert.equal(a.json.status, 'approved');
		assert.equal(a.json.exemptions.length, 1);
	});

	test('If-Match: a stale version → 412; bad bodies → 4xx; nothing decided', async () => {
		const id = await requestIn('needs_review', '81.2.69.22');
		const url = `/v1/review/requests/${id}/decision`;
		assertProblem(await s.api('POST', url, { token: rev, body: { decision: 'approve' }, headers: { 'If-Match': '"99"' } }),
			412, 'precondition_failed');
		for (const [body, code, field] of [
			[{}, 'required', 'decision'],
			[{ decision: 'maybe' }, 'invalid_value', 'decision'],
			[{ decision: 'deny' }, 'required', 'reason_codes'],
			[{ decision: 'deny', reason_codes: ['bad_vibes'] }, 'unknown_reason_code', 'reason_codes[0]'],
			[{ decision: 'needs_info' }, 'required', 'note'],
			[{ decision: 'approve', expires_in_days: 0 }, 'invalid_value', 'expires_in_days'],
			[{ decision: 'approve', rate: 0 }, 'invalid_value', 'rate'],
			[{ decision: 'approve', dest: ['10.0.0.0/8'] }, 'non_public_address', 'dest[0]'],
			[{ decision: 'approve', by: 'me' }, 'unknown_field', 'by'],
		]) {
			assertProblem(await s.api('POST', url, { token: rev, body }), 422, code, field);
		}
		assertProblem(await s.api('POST', url, { token: rev, body: { decision: 'approve', prefixes: ['81.2.69.99'] } }),
			422, 'no_prefixes');
		assertProblem(await s.api('POST', url, { token: rev, body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('POST', url, { token: rev, body: 'approve', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		assertProblem(await s.api('POST', `/v1/review/requests/${RANDOM}/decision`, { token: rev, body: { decision: 'approve' } }), 404, 'not_found');
		const [row] = await s.sqlJson('SELECT status, (SELECT count(*) FROM decisions WHERE request_id = $1) AS decisions FROM requests WHERE id = $1', [id]);
		assert.deepEqual(row, { status: 'needs_review', decisions: 0 });
		const ok = await s.api('POST', url, { token: rev, body: { decision: 'approve' }, headers: { 'If-Match': '"1"' } });
		assert.equal(ok.status, 200, ok.text);
	});

	test('two decisions at once: exactly one wins', async () => {
		const id = await requestIn('needs_review', '81.2.69.23');
		const rs = await Promise.all([rev, rev2].map((t) => s.api('POST', `/v1/review/requests/${id}/decision`, { token: t,
			body: { decision: 'deny', reason_codes: ['other'] } })));
		assert.deepEqual(rs.map((r) => r.status).sort(), [200, 409]);
	});
});

describe('audit', () => {
	test('GET /v1/audit: entries with filters and a seq cursor; bad parameters → 400', async () => {
		const r = await s.api('GET', '/v1/audit?actor=rev-anna&limit=2', { token: rev });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.items.length, 2);
		assert.ok(r.json.items.every((e) => e.actor === 'rev-anna'));
		assert.equal(r.json.next_cursor, String(r.json.items[1].seq));
		const p2 = await s.api('GET', `/v1/audit?actor=rev-anna&limit=2&cursor=${r.json.next_cursor}`, { token: rev });
		assert.ok(p2.json.items[0].seq > r.json.items[1].seq);
		const all = await s.api('GET', '/v1/audit?limit=1000', { token: s.token({ sub: 'ops', roles: ['admin'] }) });
		const submit = all.json.items.find((e) => e.action === 'request.submit');
		const byObject = await s.api('GET', `/v1/audit?object=${submit.object}`, { token: rev });
		assert.ok(byObject.json.items.every((e) => e.object === submit.object));
		const since = await s.api('GET', `/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 60000).toISOString())}`, { token: rev });
		assert.deepEqual(since.json, { items: [], next_cursor: null });
		for (const [q, field] of [['since=yesterday', 'since'], ['limit=0', 'limit'], ['limit=1001', 'limit']]) {
			assertProblem(await s.api('GET', `/v1/audit?${q}`, { token: rev }), 400, 'invalid_parameter', field);
		}
		assertProblem(await s.api('GET', `/v1/audit?actor=${'a'.repeat(201)}`, { token: rev }), 400, 'invalid_parameter');
		assertProblem(await s.api('GET', '/v1/audit?cursor=-1', { token: rev }), 400, 'invalid_cursor', 'cursor');
	});
});

describe('recheck and readiness (tenant)', () => {
	const decide = (id, codes, ago = '10 minutes', actor = 'policy', decision = 'deny') => s.sql(`BEGIN;
INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes, created_at)
VALUES ($1, 'acme', 1, $4, $5, $2::text[], now() - $3::interval);
COMMIT;`, [id, codes, ago, decision, actor]);

	test('recheck a denial the tenant could fix → 202 pending with a new vetting round', async () => {
		const id = await requestIn('denied', '81.2.69.40');
		await decide(id, ['rdns_missing', 'dnsbl_pbl']);
		const r = await s.api('POST', `/v1/requests/${id}/recheck`, { token: tok });
		assert.equal(r.status, 202, r.text);
		assert.equal(r.json.status, 'pending');
		assert.equal(r.headers.get('etag'), `"${r.json.version}"`);
		const jobs = await s.sqlJson("SELECT payload FROM jobs WHERE kind = 'vet' AND payload->>'request' = $1 ORDER BY id", [id]);
		assert.deepEqual(jobs.map((j) => j.payload.round), [1, 2]);
		// pending now: nothing to recheck
		assertProblem(await s.api('POST', `/v1/requests/${id}/recheck`, { token: tok }), 409, 'invalid_state');
	});

	test('recheck: too soon → 429 with Retry-After; not fixable → 409; others\' or unknown → 404', async () => {
		const soon = await requestIn('denied', '81.2.69.41');
		await decide(soon, ['rdns_missing'], '1 minute');
		const r = await s.api('POST', `/v1/requests/${soon}/recheck`, { token: tok });
		assertProblem(r, 429, 'recheck_too_soon');
		const ra = Number(r.headers.get('retry-after'));
		assert.ok(ra > 0 && ra <= 300, `Retry-After ${ra}`);
		const hard = await requestIn('denied', '81.2.69.42');
		await decide(hard, ['account_standing']);
		const nf = await s.api('POST', `/v1/requests/${hard}/recheck`, { token: tok });
		assertProblem(nf, 409, 'not_fixable');
		assert.ok(nf.json.hint);
		const info = await requestIn('needs_info', '81.2.69.43');
		await decide(info, ['rdns_generic'], '10 minutes', 'policy', 'needs_info');
		assert.equal((await s.api('POST', `/v1/requests/${info}/recheck`, { token: tok })).status, 202);
		const theirs = await requestIn('denied', '81.2.70.44', s.token({ roles: ['tenant'], tenant: 'globex' }));
		assertProblem(await s.api('POST', `/v1/requests/${theirs}/recheck`, { token: tok }), 404, 'not_found');
		assertProblem(await s.api('POST', `/v1/requests/${RANDOM}/recheck`, { token: tok }), 404, 'not_found');
		assertProblem(await s.api('POST', '/v1/requests/nope/recheck', { token: tok }), 404, 'not_found');
	});

	test('readiness: the checks and what the policy would decide, nothing written', async () => {
		const [[n0]] = await s.sql('SELECT count(*) FROM requests');
		const r = await s.api('POST', '/v1/readiness', { token: tok, body: { addresses: ['81.2.69.50'], sender_domains: ['example.com'] } });
		assert.equal(r.status, 200, r.text);
		assert.ok(Array.isArray(r.json.checks) && r.json.checks.length > 0);
		assert.ok(['approve', 'deny', 'needs_review', 'needs_info'].includes(r.json.would_decide));
		assert.ok(r.json.policy_version);
		assert.equal(r.headers.get('cache-control'), 'no-store');
		// no DNS answers here: an unknown result never approves
		assert.notEqual(r.json.would_decide, 'approve');
		const [[n1]] = await s.sql('SELECT count(*) FROM requests');
		assert.equal(n1, n0);
	});

	test('readiness: the same input rules as a submission', async () => {
		assertProblem(await s.api('POST', '/v1/readiness', { token: tok, body: { addresses: ['10.0.0.1'] } }), 422, 'non_public_address', 'addresses[0]');
		assertProblem(await s.api('POST', '/v1/readiness', { token: tok, body: { addresses: ['81.2.70.5'] } }), 422, 'address_not_held', 'addresses');
		assertProblem(await s.api('POST', '/v1/readiness', { token: tok, body: { addresses: ['81.2.69.5'], use_case: 'x' } }), 422, 'unknown_field', 'use_case');
		assertProblem(await s.api('POST', '/v1/readiness', { token: tok, body: { addresses: ['81.2.69.5'], sender_domains: ['-x'] } }), 422, 'invalid_domain', 'sender_domains[0]');
		assertProblem(await s.api('POST', '/v1/readiness', { token: tok, body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('POST', '/v1/readiness', { token: tok, body: 'x', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
	});
});
