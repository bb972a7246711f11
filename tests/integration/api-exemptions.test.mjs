// Exemptions end to end through the API, enough to exercise every operation
// and answer of openapi.yaml on this side (the contract test needs them):
// a reviewer's approval issues an exemption with a signed token; the tenant
// lists, reads and gives it up; reviewers revoke and reinstate; abuse
// reports suspend; enforcement nodes read the keys, the snapshot and the
// feed (long poll) and acknowledge; the tenant sees its webhook deliveries.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';

let s;
let tok; // tenant acme
let rev; // reviewer
let enf; // enforcer
const RANDOM = '0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11';

before(async () => {
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, `p25ctl keys generate: ${k.stderr}${k.stdout}`);
	await s.createTenant('acme', { addresses: ['81.2.69.0/24'], webhookUrl: 'https://hooks.acme.example/p25' });
	await s.createTenant('globex', { addresses: ['81.2.70.0/24'] });
	tok = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
	rev = s.token({ sub: 'rev-anna', roles: ['reviewer'] });
	enf = s.token({ sub: 'node-1', roles: ['enforcer'] });
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

/** Files a request for addr as acme, puts it in review, and has the reviewer approve it: its exemption ids. */
async function approved(addr, decision = {}) {
	const c = await s.api('POST', '/v1/requests', { token: tok, body: { addresses: [addr], use_case: 'transactional' } });
	assert.equal(c.status, 202, c.text);
	await s.sql("UPDATE requests SET status = 'needs_review' WHERE id = $1", [c.json.id]);
	const d = await s.api('POST', `/v1/review/requests/${c.json.id}/decision`, { token: rev,
		body: { decision: 'approve', note: 'ok', ...decision } });
	assert.equal(d.status, 200, d.text);
	assert.equal(d.json.status, 'approved');
	assert.equal(d.json.exemptions.length, 1);
	return { request: c.json.id, exemption: d.json.exemptions[0] };
}

describe('keys', () => {
	test('GET /.well-known/jwks.json: the Ed25519 public keys, public', async () => {
		const r = await s.api('GET', '/.well-known/jwks.json');
		assert.equal(r.status, 200, r.text);
		assert.equal(r.headers.get('content-type'), 'application/jwk-set+json');
		assert.match(r.headers.get('cache-control'), /max-age=\d+/);
		assert.equal(r.json.keys.length, 1);
		const [key] = r.json.keys;
		assert.equal(key.kty, 'OKP');
		assert.equal(key.crv, 'Ed25519');
		assert.equal(Buffer.from(key.x, 'base64url').length, 32);
	});
});

describe('tenant exemptions', () => {
	let ex;
	before(async () => {
		ex = await approved('81.2.69.5', { expires_in_days: 30, rate: 500, dest: ['81.2.90.0/24'] });
	});

	test('GET /v1/exemptions lists them, newest first; ?status= filters', async () => {
		const r = await s.api('GET', '/v1/exemptions', { token: tok });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.next_cursor, null);
		const it = r.json.items.find((x) => x.id === ex.exemption);
		assert.ok(it, r.text);
		assert.equal(it.cidr, '81.2.69.5/32');
		assert.equal(it.status, 'active');
		assert.equal(it.request, ex.request);
		assert.equal(it.rate, 500);
		assert.deepEqual(it.dest, ['81.2.90.0/24']);
		assert.match(it.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
		const days = (Date.parse(it.expires_at) - Date.now()) / 86400000;
		assert.ok(days > 29 && days <= 30, `expires in ${days} days`);
		const none = await s.api('GET', '/v1/exemptions?status=revoked', { token: tok });
		assert.ok(none.json.items.every((x) => x.status === 'revoked'));
		assertProblem(await s.api('GET', '/v1/exemptions?status=open', { token: tok }), 400, 'invalid_parameter', 'status');
		// another tenant sees none of them
		const g = await s.api('GET', '/v1/exemptions', { token: s.token({ roles: ['tenant'], tenant: 'globex' }) });
		assert.deepEqual(g.json, { items: [], next_cursor: null });
	});

	test('GET /v1/exemptions/{id}: the token verifies against the JWKS; others\' → 404', async () => {
		const r = await s.api('GET', `/v1/exemptions/${ex.exemption}`, { token: tok });
		assert.equal(r.status, 200, r.text);
		const [h, p] = r.json.token.split('.').slice(0, 2).map((x) => JSON.parse(Buffer.from(x, 'base64url').toString()));
		assert.equal(h.alg, 'EdDSA');
		assert.equal(p.sub, 'acme');
		assert.equal(p.jti, ex.exemption);
		assert.equal(p.p25.cidr, '81.2.69.5/32');
		const jwks = await s.api('GET', '/.well-known/jwks.json');
		assert.ok(jwks.json.keys.some((k) => k.kid === h.kid));
		const g = s.token({ roles: ['tenant'], tenant: 'globex' });
		for (const id of [ex.exemption, RANDOM, 'nope']) {
			assertProblem(await s.api('GET', `/v1/exemptions/${id}`, { token: id === ex.exemption ? g : tok }), 404, 'not_found');
		}
	});

	test('DELETE /v1/exemptions/{id}: given up → revoked with a revoke feed event; again → 409', async () => {
		const mine = await approved('81.2.69.6');
		const g = s.token({ roles: ['tenant'], tenant: 'globex' });
		assertProblem(await s.api('DELETE', `/v1/exemptions/${mine.exemption}`, { token: g }), 404, 'not_found');
		assertProblem(await s.api('DELETE', `/v1/exemptions/${RANDOM}`, { token: tok }), 404, 'not_found');
		const r = await s.api('DELETE', `/v1/exemptions/${mine.exemption}`, { token: tok });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'revoked');
		assert.equal(r.json.token, null);
		const ev = await s.sqlJson("SELECT type, reason FROM feed_events WHERE exemption_id = $1 ORDER BY id", [mine.exemption]);
		assert.deepEqual(ev.map((e) => e.type), ['grant', 'revoke']);
		assert.equal(ev[1].reason, 'relinquished');
		const again = await s.api('DELETE', `/v1/exemptions/${mine.exemption}`, { token: tok });
		assertProblem(again, 409, 'invalid_state');
		assert.match(again.json.detail, /revoked/);
	});

	test('GET /v1/webhook-deliveries: what was queued for the tenant\'s webhook', async () => {
		const r = await s.api('GET', '/v1/webhook-deliveries', { token: tok });
		assert.equal(r.status, 200, r.text);
		assert.ok(r.json.items.length >= 1, r.text);
		assert.equal(r.json.next_cursor, null);
		assert.ok(r.json.items.some((d) => d.event === 'exemption.status' || d.event === 'request.status'));
		// a tenant without a webhook has none
		const g = await s.api('GET', '/v1/webhook-deliveries', { token: s.token({ roles: ['tenant'], tenant: 'globex' }) });
		assert.deepEqual(g.json, { items: [], next_cursor: null });
	});
});

describe('revoke and reinstate (reviewer)', () => {
	test('revoke: 200 with a reason; not active → 409; bad bodies → 4xx', async () => {
		const ex = await approved('81.2.69.10');
		const url = `/v1/exemptions/${ex.exemption}/revoke`;
		assertProblem(await s.api('POST', url, { token: rev, body: {} }), 422, 'required', 'reason');
		assertProblem(await s.api('POST', url, { token: rev, body: { reason: '' } }), 422, 'invalid_text', 'reason');
		assertProblem(await s.api('POST', url, { token: rev, body: { reason: 'x', why: 'y' } }), 422, 'unknown_field', 'why');
		assertProblem(await s.api('POST', url, { token: rev, body: { reason: 7, why: 'y' } }), 422, 'validation_failed');
		assertProblem(await s.api('POST', url, { token: rev, body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('POST', url, { token: rev, body: 'spam', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		assertProblem(await s.api('POST', `/v1/exemptions/${RANDOM}/revoke`, { token: rev, body: { reason: 'x' } }), 404, 'not_found');
		const r = await s.api('POST', url, { token: rev, body: { reason: 'spam runs' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'revoked');
		assert.equal(r.json.status_reason, 'spam runs');
		assertProblem(await s.api('POST', url, { token: rev, body: { reason: 'again' } }), 409, 'invalid_state');
	});

	test('reinstate: a revoked exemption comes back with a new token; active, expired, cooling down → 409', async () => {
		const ex = await approved('81.2.69.11');
		const url = `/v1/exemptions/${ex.exemption}/reinstate`;
		assertProblem(await s.api('POST', url, { token: rev, body: { reason: 'x' } }), 409, 'invalid_state');
		assert.equal((await s.api('POST', `/v1/exemptions/${ex.exemption}/revoke`, { token: rev, body: { reason: 'oops' } })).status, 200);
		assertProblem(await s.api('POST', url, { token: rev, body: {} }), 422, 'required', 'reason');
		assertProblem(await s.api('POST', url, { token: rev, body: '[', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('POST', url, { token: rev, body: 'x', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		assertProblem(await s.api('POST', `/v1/exemptions/${RANDOM}/reinstate`, { token: rev, body: { reason: 'x' } }), 404, 'not_found');
		const r = await s.api('POST', url, { token: rev, body: { reason: 'revoked by mistake' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'active');
		assert.match(r.json.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

		const old = await approved('81.2.69.12');
		await s.sql("UPDATE exemptions SET status = 'suspended', expires_at = now() - interval '1 minute' WHERE id = $1", [old.exemption]);
		assertProblem(await s.api('POST', `/v1/exemptions/${old.exemption}/reinstate`, { token: rev, body: { reason: 'x' } }), 409, 'expired');
		const cool = await approved('81.2.69.13');
		await s.sql("UPDATE exemptions SET status = 'suspended', cooldown_until = now() + interval '1 day' WHERE id = $1", [cool.exemption]);
		assertProblem(await s.api('POST', `/v1/exemptions/${cool.exemption}/reinstate`, { token: rev, body: { reason: 'x' } }), 409, 'cooldown');
	});
});

describe('abuse reports', () => {
	test('a spam report against an exempted address suspends it at once; the same report again is counted', async () => {
		const ex = await approved('81.2.69.20');
		const rep = { address: '81.2.69.20', source: 'fbl.example.net', report_id: 'r-1', category: 'spam',
			observed_at: '2026-11-26T20:15:00Z', evidence: { subject: 'cheap watches' } };
		const r = await s.api('POST', '/v1/abuse-reports', { token: s.token({ sub: 'fbl', roles: ['reporter'] }), body: rep });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.duplicate, false);
		assert.equal(r.json.action, 'suspended');
		assert.equal(r.json.tenant, 'acme');
		assert.equal(r.json.exemption, ex.exemption);
		const [e] = await s.sqlJson('SELECT status FROM exemptions WHERE id = $1', [ex.exemption]);
		assert.equal(e.status, 'suspended');
		const again = await s.api('POST', '/v1/abuse-reports', { token: s.token({ sub: 'fbl', roles: ['reporter'] }), body: rep });
		assert.equal(again.status, 200, again.text);
		assert.equal(again.json.duplicate, true);
		assert.equal(again.json.times_seen, 2);
		assert.equal(again.json.action, 'counted');
		// the address status tells the tenant
		const st = await s.api('GET', '/v1/addresses/81.2.69.20', { token: tok });
		assert.equal(st.json.state, 'suspended');
	});

	test('a report nobody\'s address matches is stored; bad reports are refused and stored nowhere', async () => {
		const reporter = s.token({ sub: 'fbl', roles: ['reporter'] });
		const r = await s.api('POST', '/v1/abuse-reports', { token: reporter,
			body: { address: '8.8.4.4', source: 'fbl.example.net', report_id: 'r-2', category: 'other' } });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.action, 'stored');
		assert.equal(r.json.tenant, null);
		const [[n0]] = await s.sql('SELECT count(*) FROM abuse_reports');
		for (const [body, code, field] of [
			[{ address: '81.2.69.0/24', source: 'x', report_id: 'r-3', category: 'spam' }, 'invalid_address', 'address'],
			[{ address: '81.2.69.1', source: 'x', report_id: 'r-3', category: 'bulk' }, 'invalid_value', 'category'],
			[{ address: '81.2.69.1', source: 'x', category: 'spam' }, 'required', 'report_id'],
			[{ address: '81.2.69.1', source: 'x', report_id: 'r-3', category: 'spam', extra: 1 }, 'unknown_field', 'extra'],
		]) {
			assertProblem(await s.api('POST', '/v1/abuse-reports', { token: reporter, body }), 422, code, field);
		}
		assertProblem(await s.api('POST', '/v1/abuse-reports', { token: reporter, body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('POST', '/v1/abuse-reports', { token: reporter, body: 'spam!', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		const [[n1]] = await s.sql('SELECT count(*) FROM abuse_reports');
		assert.equal(n1, n0);
	});
});

describe('enforcement', () => {
	test('snapshot: every valid token and the position; If-None-Match → 304', async () => {
		await approved('81.2.69.30');
		const r = await s.api('GET', '/v1/enforcement/snapshot', { token: enf });
		assert.equal(r.status, 200, r.text);
		assert.ok(Number.isInteger(r.json.seq) && r.json.seq > 0);
		assert.ok(r.json.tokens.length >= 1);
		const etag = r.headers.get('etag');
		assert.equal(etag, `"s${r.json.seq}"`);
		const nm = await s.api('GET', '/v1/enforcement/snapshot', { token: enf, headers: { 'If-None-Match': etag } });
		assert.equal(nm.status, 304);
		assert.equal(nm.text, '');
	});

	test('feed: events after a position; bad parameters → 400', async () => {
		const r = await s.api('GET', '/v1/enforcement/feed?after=0&limit=2', { token: enf });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.events.length, 2);
		assert.equal(r.json.next, r.json.events[1].seq);
		assert.equal(r.json.events[0].type, 'grant');
		assert.ok(r.json.events[0].token);
		const all = await s.api('GET', '/v1/enforcement/feed', { token: enf });
		assert.ok(all.json.events.some((e) => e.type === 'revoke' && e.reason && !('token' in e)));
		for (const q of ['after=-1', 'after=x', 'wait=121', 'wait=-1', 'limit=0', 'limit=5001']) {
			assertProblem(await s.api('GET', `/v1/enforcement/feed?${q}`, { token: enf }), 400, 'invalid_parameter');
		}
	});

	test('feed long poll: held while there is nothing, answered as soon as an event is written', async () => {
		const snap = await s.api('GET', '/v1/enforcement/snapshot', { token: enf });
		const after0 = snap.json.seq;
		const t0 = Date.now();
		const empty = await s.api('GET', `/v1/enforcement/feed?after=${after0}&wait=1`, { token: enf });
		assert.equal(empty.status, 200);
		assert.deepEqual(empty.json, { events: [], next: after0 });
		assert.ok(Date.now() - t0 >= 900, 'held about a second');
		const ex = await approved('81.2.69.31');
		const now = (await s.api('GET', '/v1/enforcement/snapshot', { token: enf })).json.seq;
		const poll = s.api('GET', `/v1/enforcement/feed?after=${now}&wait=30`, { token: enf });
		await new Promise((r) => setTimeout(r, 300));
		const t1 = Date.now();
		assert.equal((await s.api('DELETE', `/v1/exemptions/${ex.exemption}`, { token: tok })).status, 200);
		const woken = await poll;
		assert.equal(woken.status, 200, woken.text);
		assert.ok(Date.now() - t1 < 10000, 'answered well before the wait ran out');
		assert.equal(woken.json.events[0].type, 'revoke');
		assert.equal(woken.json.events[0].exemption, ex.exemption);
	});

	test('ack: a node\'s position, never going back; beyond the feed or malformed → 4xx', async () => {
		const top = (await s.api('GET', '/v1/enforcement/snapshot', { token: enf })).json.seq;
		const r = await s.api('POST', '/v1/enforcement/ack', { token: enf, body: { node: 'hv-fra1-017', seq: top } });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json, { node: 'hv-fra1-017', acked_seq: top });
		const back = await s.api('POST', '/v1/enforcement/ack', { token: enf, body: { node: 'hv-fra1-017', seq: 1 } });
		assert.deepEqual(back.json, { node: 'hv-fra1-017', acked_seq: top });
		assertProblem(await s.api('POST', '/v1/enforcement/ack', { token: enf, body: { node: 'hv-fra1-017', seq: top + 100 } }), 422, 'seq_ahead', 'seq');
		assertProblem(await s.api('POST', '/v1/enforcement/ack', { token: enf, body: { node: '-bad node', seq: 1 } }), 422, 'invalid_value', 'node');
		assertProblem(await s.api('POST', '/v1/enforcement/ack', { token: enf, body: { node: 'n', seq: -1 } }), 422, 'invalid_value', 'seq');
		assertProblem(await s.api('POST', '/v1/enforcement/ack', { token: enf, body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('POST', '/v1/enforcement/ack', { token: enf, body: 'x', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		// the exemptions now count the node
		const ex = await s.api('GET', '/v1/exemptions?status=active', { token: tok });
		assert.ok(ex.json.items.every((x) => x.nodes === 1));
	});
});
