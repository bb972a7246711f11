// webhook.test.mjs — tenant notifications (issue 6): when a request or an
// exemption changes state, a `webhook` job POSTs {event, tenant, object,
// status, reason, occurred_at} to the tenant's webhook_url, signed with
//   P25-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t "." body)>
// (secret: the 32 bytes of the tenant's webhook_secret), retried with
// backoff, and marked failed after P25_WEBHOOK_GIVE_UP seconds.
//
// The receivers are node http servers on loopback that check every
// signature the way a tenant should (recompute, constant-time compare, a
// recent t) and fail on purpose.
//
// Run: P25_BUILD_DIR=$PWD/build/debug node --test tests/integration/webhook.test.mjs
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startStack, freePort, sleep } from '../lib/harness.mjs';

let s;
let tenantTok;
let rita;
let adminTok;
const receivers = [];

before(async () => {
	const closed = await freePort(); // every DNS query refused: vetting ends in needs_review
	s = await startStack({
		worker: true,
		env: {
			P25_DNS_SERVERS: `127.0.0.1:${closed}`, P25_DNS_TIMEOUT_MS: '200', P25_DNS_TRIES: '1',
			P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000',
		},
	});
	assert.equal((await s.ctl(['keys', 'generate'])).code, 0);
	tenantTok = s.token({ sub: 'hank@hooky', roles: ['tenant'], tenant: 'hooky' });
	rita = s.token({ sub: 'rita', roles: ['reviewer'] });
	adminTok = s.token({ sub: 'ada', roles: ['admin'] });
});
after(async () => {
	for (const r of receivers) await r.close();
	if (s) await s.stop();
});

// ------------------------------------------------------------ the receiver

/**
 * Checks P25-Signature the way a tenant should: parse t and v1, recompute
 * HMAC-SHA256(key, t + "." + raw body), compare in constant time, refuse a
 * t more than 5 minutes away from now.  Returns {ok, why, t}.
 */
function checkSignature(secretHex, header, rawBody, nowMs = Date.now()) {
	if (!header) return { ok: false, why: 'no P25-Signature header' };
	const parts = Object.fromEntries(header.split(',').map((kv) => {
		const i = kv.indexOf('=');
		return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
	}));
	if (!/^\d+$/.test(parts.t ?? '') || !/^[0-9a-f]{64}$/.test(parts.v1 ?? '')) return { ok: false, why: `malformed: ${header}` };
	const t = Number(parts.t);
	if (Math.abs(nowMs / 1000 - t) > 300) return { ok: false, why: `stale t=${t}`, t };
	const key = Buffer.from(secretHex, 'hex');
	const want = crypto.createHmac('sha256', key).update(`${parts.t}.`).update(rawBody).digest();
	const got = Buffer.from(parts.v1, 'hex');
	if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return { ok: false, why: 'HMAC mismatch', t };
	return { ok: true, t };
}

/**
 * A receiver on 127.0.0.1.  fail(hit) decides whether to answer 500 (hit.n:
 * the attempt number of this delivery id, from 1).  Every hit is kept with
 * its arrival time, headers, raw body and signature check.
 */
async function startReceiver({ fail = () => false } = {}) {
	const hits = [];
	const seen = new Map();
	const r = { hits, secret: null, fail, url: '' };
	const srv = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const raw = Buffer.concat(chunks);
			const id = req.headers['p25-delivery'];
			const n = (seen.get(id) ?? 0) + 1;
			seen.set(id, n);
			const hit = {
				at: Date.now(), n, id, method: req.method, path: req.url, headers: req.headers, raw: raw.toString('utf8'),
				sig: r.secret ? checkSignature(r.secret, req.headers['p25-signature'], raw) : { ok: false, why: 'no secret yet' },
			};
			try {
				hit.json = JSON.parse(hit.raw);
			} catch { /* kept raw */ }
			hit.answer = !hit.sig.ok ? 401 : r.fail(hit) ? 500 : 204;
			hits.push(hit);
			res.writeHead(hit.answer, { 'Content-Type': 'text/plain' });
			res.end(hit.answer === 204 ? undefined : 'no');
		});
	});
	await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
	r.url = `http://127.0.0.1:${srv.address().port}/hooks/p25`;
	r.close = () => new Promise((resolve) => srv.close(resolve));
	receivers.push(r);
	return r;
}

// ------------------------------------------------------------ helpers

async function putTenant(id, url, extra = {}) {
	const r = await s.api('PUT', `/v1/admin/tenants/${id}`, {
		token: adminTok,
		body: { name: `Tenant ${id}`, created_at: '2020-01-01T00:00:00Z', verified: true, standing: 'good', webhook_url: url, ...extra },
	});
	assert.ok(r.status === 200 || r.status === 201, r.text);
	assert.equal(r.json.webhook_url, url);
	return r.json;
}
const secretOf = async (id) => (await s.sqlJson('SELECT webhook_secret FROM tenants WHERE id = $1', [id]))[0].webhook_secret;

async function waitFor(what, fn, timeoutMs = 30000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
		await sleep(100);
	}
}

async function waitStatus(id, want, token = tenantTok) {
	return waitFor(`request ${id} to become ${want}`, async () => {
		const r = await s.api('GET', `/v1/requests/${id}`, { token });
		return r.json?.status === want ? r.json : null;
	});
}

let host = 10;
async function submit(token = tenantTok, prefix = '81.2.80') {
	const r = await s.api('POST', '/v1/requests', { token, body: { addresses: [`${prefix}.${host++}`], use_case: 'transactional' } });
	assert.equal(r.status, 202, r.text);
	return r.json.id;
}

const deliveries = async (token = tenantTok) => {
	const r = await s.api('GET', '/v1/webhook-deliveries', { token });
	assert.equal(r.status, 200, r.text);
	return r.json.items;
};

// The delay each retry of a delivery was queued with, in seconds, oldest
// first (the first job is queued with none).  Each retry is a job of its own
// (workers/webhook.c), and done jobs are kept a day, so these are the
// delays the worker chose, free of how late a loaded machine ran them.
const retryDelays = async (delivery) => (await s.sqlJson(
	`SELECT extract(epoch FROM run_at - created_at)::float8 AS d FROM jobs
	  WHERE kind = 'webhook' AND payload->>'delivery' = $1 ORDER BY id`, [delivery])).map((r) => r.d);
// The queue's backoff before attempt n + 1, 2^n s × [0.8, 1.2), in whole
// seconds (job delays are whole seconds).
const backoffRange = (n) => [Math.round(0.8 * 2 ** n), Math.round(1.2 * 2 ** n)];
// A retry is never early: the next job's run_at is counted from a
// transaction that begins after the failed attempt's answer.  It may be
// late on a loaded (sanitizer, CI) machine, so arrival gaps get only a
// loose upper bound: one that still catches a retry left to the poll timer.
const assertWaits = (waits, delays) => {
	waits.forEach((w, i) => {
		const [lo, hi] = backoffRange(i + 1);
		assert.ok(delays[i + 1] >= lo && delays[i + 1] <= hi, `retry ${i + 1} queued ${delays[i + 1]} s after its attempt, not ${lo}–${hi} s`);
		assert.ok(w >= delays[i + 1] * 1000 - 50, `retry ${i + 1} came after ${w} ms, before its ${delays[i + 1]} s`);
		assert.ok(w <= delays[i + 1] * 1000 + 12000, `retry ${i + 1} came after ${w} ms, ${delays[i + 1]} s asked`);
	});
};
const hitsFor = (rcv, object, status) => rcv.hits.filter((h) => h.json?.object === object && (!status || h.json?.status === status));

// ------------------------------------------------------------ the tests

test('the signature checker itself refuses what it should', () => {
	const secret = crypto.randomBytes(32).toString('hex');
	const body = Buffer.from('{"event":"x"}');
	const t = Math.floor(Date.now() / 1000);
	const mac = (k, tt, b) => crypto.createHmac('sha256', Buffer.from(k, 'hex')).update(`${tt}.${b}`).digest('hex');
	assert.equal(checkSignature(secret, `t=${t},v1=${mac(secret, t, body)}`, body).ok, true);
	assert.equal(checkSignature(secret, `t=${t},v1=${mac(secret, t, body)}`, Buffer.from('{"event":"y"}')).why, 'HMAC mismatch');
	assert.equal(checkSignature(secret, `t=${t + 1},v1=${mac(secret, t, body)}`, body).why, 'HMAC mismatch');
	assert.equal(checkSignature(crypto.randomBytes(32).toString('hex'), `t=${t},v1=${mac(secret, t, body)}`, body).why, 'HMAC mismatch');
	assert.match(checkSignature(secret, `t=${t - 3600},v1=${mac(secret, t - 3600, body)}`, body).why, /stale/);
	assert.match(checkSignature(secret, 'v1=00', body).why, /malformed/);
	assert.equal(checkSignature(secret, undefined, body).ok, false);
});

describe('a receiver that fails twice, then accepts', () => {
	let rcv;
	let id;
	let gaps = [];
	let delays = [];

	before(async () => {
		rcv = await startReceiver({ fail: (h) => h.n <= 2 });
		const t = await putTenant('hooky', rcv.url);
		assert.equal(t.id, 'hooky');
		const inv = await s.api('PUT', '/v1/admin/tenants/hooky/addresses', { token: adminTok, body: { addresses: ['81.2.80.0/24'] } });
		assert.equal(inv.status, 200, inv.text);
		const stored = await secretOf('hooky');
		assert.match(stored, /^[0-9a-f]{64}$/, 'a fresh tenant gets a 32-byte secret');
		// the tenant learns its secret through the API, not SQL: GET shows the
		// configuration and which secret is current, never the secret itself
		const fp = (sec) => crypto.createHash('sha256').update(sec).digest('hex').slice(0, 16);
		const g = await s.api('GET', '/v1/webhook', { token: tenantTok });
		assert.equal(g.status, 200, g.text);
		assert.deepEqual(g.json, { url: rcv.url, secret_set: true, secret_fingerprint: fp(stored), signature_header: 'P25-Signature' });
		assert.ok(!g.text.includes(stored), 'GET /v1/webhook never shows the secret');
		// rotating answers the new secret once, and only that one signs from now on
		const rot = await s.api('POST', '/v1/webhook/secret', { token: tenantTok });
		assert.equal(rot.status, 200, rot.text);
		assert.match(rot.json.secret, /^[0-9a-f]{64}$/);
		assert.notEqual(rot.json.secret, stored);
		assert.equal(rot.json.secret_fingerprint, fp(rot.json.secret));
		assert.equal(rot.headers.get('cache-control'), 'no-store');
		assert.equal(await secretOf('hooky'), rot.json.secret, 'the answered secret is the stored one');
		const g2 = await s.api('GET', '/v1/webhook', { token: tenantTok });
		assert.equal(g2.json.secret_fingerprint, fp(rot.json.secret));
		// the rotation is audited, without the secret
		const au = await s.sqlJson(`SELECT actor, details FROM audit_log WHERE action = 'tenant.webhook_secret_rotate' AND object_id = 'hooky'`);
		assert.equal(au.length, 1);
		assert.equal(au[0].actor, 'hank@hooky');
		assert.deepEqual(au[0].details, { fingerprint: fp(rot.json.secret) });
		rcv.secret = rot.json.secret;
	});

	test('a status change is retried with backoff and arrives signed', async () => {
		id = await submit();
		await waitStatus(id, 'needs_review');
		const ok = await waitFor('the third attempt', () => hitsFor(rcv, id, 'needs_review').find((h) => h.answer === 204), 40000);
		const attempts = hitsFor(rcv, id, 'needs_review');
		assert.deepEqual(attempts.map((h) => [h.n, h.answer]), [[1, 500], [2, 500], [3, 204]]);
		for (const h of attempts) {
			assert.ok(h.sig.ok, `attempt ${h.n}: ${h.sig.why}`);
			assert.equal(h.method, 'POST');
			assert.equal(h.path, '/hooks/p25');
			assert.match(h.headers['content-type'], /^application\/json/);
			assert.equal(h.headers['p25-event'], 'request.status');
			assert.equal(h.id, ok.id, 'one delivery id for every attempt');
			assert.equal(h.raw, ok.raw, 'the same body every time');
			assert.ok(Math.abs(h.sig.t - h.at / 1000) < 5, 't is the time of the attempt');
		}
		assert.match(ok.id, /^[0-9a-f-]{36}$/);
		// the backoff (checked in the separate test below)
		gaps = [attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at];
		delays = await retryDelays(ok.id);
		assert.ok(attempts[2].sig.t > attempts[0].sig.t, 'each attempt signs with its own t');
		// the body
		assert.deepEqual(Object.keys(ok.json).sort(), ['event', 'object', 'occurred_at', 'reason', 'status', 'tenant']);
		assert.equal(ok.json.event, 'request.status');
		assert.equal(ok.json.tenant, 'hooky');
		assert.equal(ok.json.object, id);
		assert.equal(ok.json.status, 'needs_review');
		assert.ok(!Number.isNaN(Date.parse(ok.json.occurred_at)));
		// the tenant sees it delivered
		const d = await waitFor('the delivery to show delivered', async () =>
			(await deliveries()).find((x) => x.id === ok.id && x.status === 'delivered'));
		assert.equal(d.object, id);
		assert.equal(d.event, 'request.status');
		assert.equal(d.attempts, 3);
		assert.equal(d.last_status, 204);
	});

	// Each retry is queued with the queue's backoff (2 s, then 3–5 s) and
	// runs no earlier than that after the attempt before it.
	test('the first retries wait the queue\'s backoff (2 s, then 3–5 s)', () => {
		assert.ok(gaps.length === 2, 'the retry test ran');
		assert.deepEqual(delays.length, 3, `three jobs: ${delays}`);
		assert.equal(delays[0], 0, 'the first attempt is queued at once');
		assertWaits(gaps, delays);
	});

	test('decisions and exemption changes are notified too', async () => {
		rcv.fail = () => false;
		const ok = await s.api('POST', `/v1/review/requests/${id}/decision`, { token: rita, body: { decision: 'approve' } });
		assert.equal(ok.status, 200, ok.text);
		const ex = ok.json.exemptions[0];
		const ap = await waitFor('request.status approved', () => hitsFor(rcv, id, 'approved')[0]);
		assert.ok(ap.sig.ok, ap.sig.why);
		assert.equal(ap.json.event, 'request.status');
		const rv = await s.api('POST', `/v1/exemptions/${ex}/revoke`, { token: rita, body: { reason: 'complaints <b>from</b> ISPs' } });
		assert.equal(rv.status, 200, rv.text);
		const h = await waitFor('exemption.status revoked', () => hitsFor(rcv, ex, 'revoked')[0]);
		assert.ok(h.sig.ok, h.sig.why);
		assert.equal(h.headers['p25-event'], 'exemption.status');
		assert.deepEqual({ ...h.json, occurred_at: undefined },
			{ event: 'exemption.status', tenant: 'hooky', object: ex, status: 'revoked', reason: 'complaints <b>from</b> ISPs', occurred_at: undefined });
		const ri = await s.api('POST', `/v1/exemptions/${ex}/reinstate`, { token: rita, body: { reason: 'forged complaints' } });
		assert.equal(ri.status, 200, ri.text);
		assert.ok((await waitFor('exemption.status active', () => hitsFor(rcv, ex, 'active')[0])).sig.ok);
		const del = await s.api('DELETE', `/v1/exemptions/${ex}`, { token: tenantTok });
		assert.equal(del.status, 200, del.text);
		assert.equal((await waitFor('relinquished', () => hitsFor(rcv, ex, 'revoked')[1])).json.reason, 'relinquished');

		const w = await submit();
		assert.equal((await s.api('POST', `/v1/requests/${w}/withdraw`, { token: tenantTok })).status, 200);
		assert.ok((await waitFor('withdrawn', () => hitsFor(rcv, w, 'withdrawn')[0])).sig.ok);

		const dn = await submit();
		await waitStatus(dn, 'needs_review');
		assert.equal((await s.api('POST', `/v1/review/requests/${dn}/decision`, { token: rita, body: { decision: 'deny', reason_code: 'listed' } })).status, 200);
		const dh = await waitFor('denied', () => hitsFor(rcv, dn, 'denied')[0]);
		assert.equal(dh.json.event, 'request.status');
		assert.equal(typeof dh.json.reason, 'string');
		// every hit was correctly signed; nothing went to anyone else
		assert.deepEqual(rcv.hits.filter((x) => !x.sig.ok).map((x) => x.sig.why), []);
		assert.ok(rcv.hits.every((x) => x.json.tenant === 'hooky'));
	});

	// BUG (api/requests.c req_message): the tenant's answer moves the request
	// from needs_info to needs_review (or pending) but queues no webhook.
	test('the tenant\'s answer (needs_info → needs_review) is notified', async () => {
		const q = await submit();
		await waitStatus(q, 'needs_review');
		assert.equal((await s.api('POST', `/v1/review/requests/${q}/decision`, { token: rita, body: { decision: 'needs_info', note: 'Who?' } })).status, 200);
		await waitFor('needs_info', () => hitsFor(rcv, q, 'needs_info')[0]);
		const a = await s.api('POST', `/v1/requests/${q}/messages`, { token: tenantTok, body: { body: 'Us.' } });
		assert.equal(a.status, 200, a.text);
		assert.equal(a.json.status, 'needs_review');
		await waitFor('needs_review after the answer', () => hitsFor(rcv, q, 'needs_review')[1], 10000);
	});

	test('deliveries are the tenant\'s own', async () => {
		await s.createTenant('quiet', { addresses: ['81.2.81.0/24'] });
		const other = s.token({ sub: 'q', roles: ['tenant'], tenant: 'quiet' });
		assert.deepEqual(await deliveries(other), []);
		const mine = await deliveries();
		assert.ok(mine.length >= 5);
		assert.ok(mine.every((d) => ['delivered', 'pending', 'failed'].includes(d.status)));
		// a tenant without a webhook_url gets nothing queued
		const qid = await submit(other, '81.2.81');
		assert.equal((await s.api('POST', `/v1/requests/${qid}/withdraw`, { token: other })).status, 200);
		assert.deepEqual(await s.sqlJson(`SELECT id FROM webhook_deliveries WHERE tenant_id = 'quiet'`), []);
	});

	test('the webhook configuration is the tenant\'s own', async () => {
		// quiet (no webhook) sees its own empty configuration, not hooky's
		const other = s.token({ sub: 'q', roles: ['tenant'], tenant: 'quiet' });
		const g = await s.api('GET', '/v1/webhook', { token: other });
		assert.equal(g.status, 200, g.text);
		assert.equal(g.json.url, null);
		const before = (await s.sqlJson(`SELECT webhook_secret FROM tenants WHERE id = 'hooky'`))[0].webhook_secret;
		const rot = await s.api('POST', '/v1/webhook/secret', { token: other });
		assert.equal(rot.status, 200, rot.text);
		assert.equal((await s.sqlJson(`SELECT webhook_secret FROM tenants WHERE id = 'quiet'`))[0].webhook_secret, rot.json.secret);
		assert.equal((await s.sqlJson(`SELECT webhook_secret FROM tenants WHERE id = 'hooky'`))[0].webhook_secret, before, 'another tenant\'s rotation leaves hooky alone');
		// a token for a tenant no administrator registered: 404, nothing written
		const ghost = s.token({ sub: 'g', roles: ['tenant'], tenant: 'ghost' });
		const g404 = await s.api('GET', '/v1/webhook', { token: ghost });
		assert.equal(g404.status, 404, g404.text);
		assert.equal(g404.json.code, 'not_found');
		const r404 = await s.api('POST', '/v1/webhook/secret', { token: ghost });
		assert.equal(r404.status, 404, r404.text);
		assert.deepEqual(await s.sqlJson(`SELECT seq FROM audit_log WHERE action = 'tenant.webhook_secret_rotate' AND object_id = 'ghost'`), []);
		// fail closed: when the audit row cannot be written, the secret stays
		await s.sql('ALTER TABLE audit_log ADD CONSTRAINT no_rotation_audit CHECK (false) NOT VALID');
		try {
			const nope = await s.api('POST', '/v1/webhook/secret', { token: other });
			assert.equal(nope.status, 503, nope.text);
			assert.equal(nope.json.code, 'audit_unavailable');
			assert.ok(!/[0-9a-f]{64}/.test(nope.text), 'no secret in the refusal');
			assert.equal((await s.sqlJson(`SELECT webhook_secret FROM tenants WHERE id = 'quiet'`))[0].webhook_secret, rot.json.secret);
		} finally {
			await s.sql('ALTER TABLE audit_log DROP CONSTRAINT no_rotation_audit');
		}
		// staff have no webhook of their own
		assert.equal((await s.api('GET', '/v1/webhook', { token: rita })).status, 403);
		assert.equal((await s.api('POST', '/v1/webhook/secret', { token: rita })).status, 403);
	});

	// BUG (api/admin.c admin_tenant_put): webhook_secret is generated only
	// when the tenant row is inserted; ON CONFLICT … DO UPDATE leaves it NULL
	// for a tenant that existed before (created by p25ctl / SQL / an earlier
	// version), so setting its webhook_url later yields deliveries the worker
	// can never sign ("the delivery or the tenant's secret is unusable").
	test('a tenant registered without a secret gets one when its URL is set', async () => {
		const rcv2 = await startReceiver();
		await s.createTenant('legacy', { addresses: ['81.2.82.0/24'] });
		await putTenant('legacy', rcv2.url);
		const sec = await secretOf('legacy');
		assert.match(sec ?? '', /^[0-9a-f]{64}$/, `webhook_secret is ${sec}`);
		rcv2.secret = sec;
		const tok = s.token({ sub: 'l', roles: ['tenant'], tenant: 'legacy' });
		const id2 = await submit(tok, '81.2.82');
		assert.equal((await s.api('POST', `/v1/requests/${id2}/withdraw`, { token: tok })).status, 200);
		assert.ok((await waitFor('a signed delivery', () => hitsFor(rcv2, id2, 'withdrawn')[0], 15000)).sig.ok);
	});
});

describe('a receiver that always fails', () => {
	test('with P25_WEBHOOK_GIVE_UP=10 the delivery is failed after ≥ 10 s, and visible', async () => {
		// a worker that gives up after 10 s instead of a day
		for (const c of s.children.filter((x) => x.name === 'worker')) await c.stop();
		s.startWorker({ P25_WEBHOOK_GIVE_UP: '10' });
		const rcv = await startReceiver({ fail: () => true });
		await putTenant('hooky', rcv.url);
		rcv.secret = await secretOf('hooky');
		const id = await submit();
		const t0 = Date.now();
		assert.equal((await s.api('POST', `/v1/requests/${id}/withdraw`, { token: tenantTok })).status, 200);
		const d = await waitFor('the delivery to be failed', async () =>
			(await deliveries()).find((x) => x.object === id && x.event === 'request.status' && x.status === 'failed'), 60000);
		const elapsed = (Date.now() - t0) / 1000;
		assert.ok(elapsed >= 10, `failed after ${elapsed} s`);
		assert.ok(Date.parse(d.updated_at) - Date.parse(d.created_at) >= 10000, JSON.stringify(d));
		assert.equal(d.last_status, 500);
		assert.ok(d.last_error, JSON.stringify(d));
		const hits = hitsFor(rcv, id, 'withdrawn');
		assert.ok(hits.length >= 3, `${hits.length} attempts`);
		assert.equal(d.attempts, hits.length);
		assert.ok(hits.every((h) => h.sig.ok && h.answer === 500));
		// the backoff doubles with a jitter of ±20 % (p25_queue_backoff): the
		// delays queued grow, 2, 3–5, 6–10 s, ..., however late they ran
		const waits = hits.slice(1).map((h, i) => h.at - hits[i].at);
		const delays = await retryDelays(d.id);
		assert.equal(delays.length, hits.length, `one job an attempt: ${delays}`);
		assertWaits(waits, delays);
		for (let i = 2; i < delays.length; i++)
			assert.ok(delays[i] > delays[i - 1], `backoff grows: ${delays.join(', ')} s`);
		// given up: no further attempts
		const n = hits.length;
		await sleep(5000);
		assert.equal(hitsFor(rcv, id, 'withdrawn').length, n);

		// an endpoint that does not answer at all: connection refused, also given up
		const dead = `http://127.0.0.1:${await freePort()}/gone`;
		await putTenant('hooky', dead);
		const id2 = await submit();
		assert.equal((await s.api('POST', `/v1/requests/${id2}/withdraw`, { token: tenantTok })).status, 200);
		const d2 = await waitFor('the unreachable delivery to be failed', async () =>
			(await deliveries()).find((x) => x.object === id2 && x.status === 'failed'), 60000);
		assert.equal(d2.last_status, null);
		assert.ok(d2.last_error, JSON.stringify(d2));
		assert.ok(d2.attempts >= 2);
	});
});
