// wayback.test.mjs — after a suspension, the way back (issue 7), and the two
// other ways an exemption ends: inventory release and expiry.
//
// One stack (PostgreSQL, p25-api, one p25-worker) with real DNS on loopback
// (rbldnsd + dnsmasq, tests/lib/dns.mjs); the policy file sets
// monitor_interval_seconds to 10 so a listing suspends quickly, and keeps the
// default cool-downs [1, 24, 168, 720] hours and self_reinstate.
//
//   way back   listed → suspended (1 h cool-down) → the tenant's recheck is
//              409 cooldown naming the end time → listing gone, cool-down
//              over (cooldown_until moved into the past by SQL) → the recheck
//              re-vets and re-approves: a new active exemption with a grant
//              event supersedes the suspended one → listed again → suspended
//              with a 24 h cool-down → the tenant's recheck is 409
//              review_required → a reviewer's reinstate is 409 cooldown, and
//              works once the cool-down is over.
//   release    the admin PUT that takes an address out of a tenant's
//              inventory revokes its exemption in the same transaction
//              (revoke event, status, reason — one xid for all of it), and the
//              address can go to another tenant, who can be exempted for it.
//   expiry     expires_at in the past → the expire job expires it (status,
//              revoke event) and the renew job leaves it alone; expires_at
//              within P25_EXPIRY_WARNING → expiring_soon and an
//              exemption.expiring webhook.
// Periodic jobs (monitor, expire, renew) are queued by the test itself beside
// the worker's ticker, so nothing waits for the next tick.
//
// Regression notes name bugs these tests found (fixed in 772c06e).
//
// Run: P25_BUILD_DIR=$PWD/build/mon node --test tests/integration/wayback.test.mjs
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startStack, sleep, waitFor } from '../lib/harness.mjs';
import { startDns } from '../lib/dns.mjs';

const ZONE = 'zen.test';
const INTERVAL = 10;
const WARNING = 3600; // P25_EXPIRY_WARNING
const IP = { back: '81.2.69.5', release: '81.2.69.40', expire: '81.2.69.10', warn: '81.2.69.11', renew: '81.2.69.12',
	suspended: '81.2.69.20' };
const GOOD = Object.values(IP);
const WEBHOOK_SECRET = crypto.randomBytes(32).toString('hex');

let s;
let dns;
let hookSrv;
const hooks = [];
let tenant;
let globex;
let rita;
let admin;
let enforcer;

// ------------------------------------------------------------ helpers

const mailName = (ip) => `mail-${'abcdefghijklmnop'[GOOD.indexOf(ip)]}.p25.example`;

function assertProblem(r, status, code) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.match(r.headers.get('content-type') || '', /^application\/problem\+json/);
	if (code) assert.equal(r.json?.code, code, r.text);
}
const feedHead = () => s.feedHead(enforcer);
const feedAfter = (seq) => s.feedEvents(seq, enforcer);
const getReq = async (id, token = tenant) => {
	const r = await s.api('GET', `/v1/requests/${id}`, { token });
	assert.equal(r.status, 200, r.text);
	return r.json;
};
const getExm = async (id, token = tenant) => {
	const r = await s.api('GET', `/v1/exemptions/${id}`, { token });
	assert.equal(r.status, 200, r.text);
	return r.json;
};
const row = async (sql, p) => (await s.sqlJson(sql, p))[0];

async function kick(kind) {
	await s.sql(`INSERT INTO jobs (kind) VALUES ($1); SELECT pg_notify('p25_jobs', $1);`, [kind]);
}

async function decided(id, token = tenant) {
	let j;
	await waitFor(async () => {
		j = await getReq(id, token);
		return !['pending', 'vetting'].includes(j.status);
	}, { timeoutMs: 30000, what: `the decision on ${id}` });
	return j;
}
async function approve(addr, token = tenant) {
	const r = await s.api('POST', '/v1/requests', { token, body: {
		addresses: [addr], use_case: 'transactional', description: `wayback test ${addr}` } });
	assert.equal(r.status, 202, r.text);
	const j = await decided(r.json.id, token);
	assert.equal(j.status, 'approved', JSON.stringify(j, null, 1));
	return { id: j.id, exemption: j.exemptions[j.exemptions.length - 1] };
}

/** Lists addr in SBL, makes its exemption due, and waits for the monitor to suspend it. */
async function suspendByListing(addr, exemption) {
	await dns.setZone(ZONE, { ip4: [`${addr} :127.0.0.2:SBL listing for $`] });
	await s.sql('UPDATE exemptions SET next_check_at = now() WHERE id = $1', [exemption]);
	await kick('monitor');
	await waitFor(async () => (await getExm(exemption)).status === 'suspended',
		{ timeoutMs: (INTERVAL + 5) * 1000, what: `the suspension of ${addr}` });
	return getExm(exemption);
}
const unlist = () => dns.setZone(ZONE, { ip4: [] });

/** A PostgreSQL timestamp in a message ("2026-11-26 23:10:00.12+00") as epoch ms. */
function timeIn(text) {
	const m = /(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d(?::?\d\d)?)/.exec(text);
	assert.ok(m, `no time in: ${text}`);
	let zone = m[3];
	if (/^[+-]\d\d$/.test(zone)) zone += ':00';
	return Date.parse(`${m[1]}T${m[2]}${zone}`);
}

// ------------------------------------------------------------ the stack

before(async () => {
	s = await startStack({ api: false, env: {
		P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000', P25_DNS_TIMEOUT_MS: '1000', P25_DNS_TRIES: '1',
		P25_EXPIRY_WARNING: String(WARNING),
	} });
	const policy = path.join(s.dir, 'policy.json');
	fs.writeFileSync(policy, JSON.stringify({ version: 'wayback-test', monitor_interval_seconds: INTERVAL }));
	dns = await startDns({
		stack: s,
		dnsbl: { [ZONE]: { ip4: [] } },
		hosts: GOOD.map((ip) => [mailName(ip), ip]),
		local: ['p25.example'],
	});
	Object.assign(s.env, { P25_DNS_SERVERS: dns.servers, P25_DNSBL_ZONES: ZONE, P25_POLICY_FILE: policy });
	await s.startApi();
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, k.stderr);
	hookSrv = http.createServer((rq, rs) => {
		const chunks = [];
		rq.on('data', (c) => chunks.push(c));
		rq.on('end', () => {
			hooks.push({ headers: rq.headers, body: Buffer.concat(chunks).toString('utf8') });
			rs.writeHead(204);
			rs.end();
		});
	});
	await new Promise((r) => hookSrv.listen(0, '127.0.0.1', r));
	await s.createTenant('acme', { addresses: ['81.2.69.0/27', '81.2.69.40/32'] });
	await s.createTenant('globex', { addresses: ['81.2.71.0/24'] });
	await s.sql('UPDATE tenants SET webhook_url = $1, webhook_secret = $2 WHERE id = $3',
		[`http://127.0.0.1:${hookSrv.address().port}/hook`, WEBHOOK_SECRET, 'acme']);
	tenant = s.token({ sub: 'alice@acme', roles: ['tenant'], tenant: 'acme' });
	globex = s.token({ sub: 'gus@globex', roles: ['tenant'], tenant: 'globex' });
	rita = s.token({ sub: 'rita', roles: ['reviewer'] });
	admin = s.token({ sub: 'ada', roles: ['admin'] });
	enforcer = s.token({ sub: 'node-1', roles: ['enforcer'] });
	s.startWorker();
});

after(async () => {
	await s?.stop();
	await new Promise((r) => (hookSrv ? hookSrv.close(r) : r()));
});

// ------------------------------------------------------------ the way back

describe('the way back after a listing', () => {
	let reqId;
	let first; // the first exemption
	let second; // the one the recheck issued
	let firstCooldown;

	before(async () => {
		const a = await approve(IP.back);
		reqId = a.id;
		first = a.exemption;
	});

	test('a listing suspends it with a 1 h cool-down', async () => {
		const e = await suspendByListing(IP.back, first);
		assert.equal(e.suspensions, 1);
		assert.equal(e.suspended_cause, 'listing');
		firstCooldown = Date.parse(e.cooldown_until);
		const h = (firstCooldown - Date.parse(e.updated_at)) / 3600e3;
		assert.ok(Math.abs(h - 1) < 0.01, `cool-down ${h} h`);
		assert.equal((await getReq(reqId)).status, 'needs_review');
	});

	test('the tenant\'s recheck within the cool-down: 409 cooldown naming the end time', async () => {
		const r = await s.api('POST', `/v1/requests/${reqId}/recheck`, { token: tenant });
		assertProblem(r, 409, 'cooldown');
		const named = timeIn(r.json.detail ?? r.json.title);
		assert.ok(Math.abs(named - firstCooldown) < 1000, `named ${new Date(named).toISOString()}, cool-down ends ${new Date(firstCooldown).toISOString()}`);
		assert.equal((await getReq(reqId)).status, 'needs_review', 'nothing changed');
	});

	test('listing gone, cool-down over: the recheck re-approves with a new exemption and a grant event', async () => {
		await unlist();
		await s.sql(`UPDATE exemptions SET cooldown_until = now() - interval '1 second' WHERE id = $1`, [first]);
		const seq = await feedHead();
		const r = await s.api('POST', `/v1/requests/${reqId}/recheck`, { token: tenant });
		assert.equal(r.status, 202, r.text);
		assert.equal(r.json.status, 'pending');
		const j = await decided(reqId);
		assert.equal(j.status, 'approved', JSON.stringify(j, null, 1));
		assert.equal(j.decision.decision, 'approve');
		assert.equal(j.exemptions.length, 2);
		second = j.exemptions.find((x) => x !== first);
		const e2 = await getExm(second);
		assert.equal(e2.status, 'active');
		assert.equal(e2.cidr, `${IP.back}/32`);
		assert.ok(e2.token, 'a token again');
		const e1 = await getExm(first);
		assert.equal(e1.status, 'revoked');
		assert.match(e1.status_reason, /superseded/);
		const ev = await feedAfter(seq);
		const grant = ev.filter((x) => x.exemption === second && x.type === 'grant');
		assert.equal(grant.length, 1, JSON.stringify(ev));
		assert.equal(grant[0].token, e2.token);
		const a = await s.api('GET', `/v1/addresses/${IP.back}`, { token: tenant });
		assert.equal(a.json.state, 'open');
		assert.equal(a.json.port25_open, true);
		assert.equal(a.json.exemption.id, second);
	});

	test('a second suspension: a 24 h cool-down, and the tenant\'s recheck is 409 review_required', async () => {
		const e = await suspendByListing(IP.back, second);
		assert.equal(e.suspensions, 2, 'the count carries over to the new exemption');
		const h = (Date.parse(e.cooldown_until) - Date.parse(e.updated_at)) / 3600e3;
		assert.ok(Math.abs(h - 24) < 0.01, `second cool-down ${h} h, want 24 (the first was 1)`);
		const r = await s.api('POST', `/v1/requests/${reqId}/recheck`, { token: tenant });
		assertProblem(r, 409, 'review_required');
		assert.equal((await getReq(reqId)).status, 'needs_review');
	});

	test('a reviewer\'s reinstate: 409 cooldown while cooling down (with the end time); superseded ones never', async () => {
		await unlist();
		const e = await getExm(second);
		const r = await s.api('POST', `/v1/exemptions/${second}/reinstate`, { token: rita, body: { reason: 'delisted' } });
		assertProblem(r, 409, 'cooldown');
		assert.ok(Math.abs(timeIn(r.json.detail ?? r.json.title) - Date.parse(e.cooldown_until)) < 1000, r.text);
		const r1 = await s.api('POST', `/v1/exemptions/${first}/reinstate`, { token: rita, body: { reason: 'old one' } });
		assertProblem(r1, 409, 'superseded');
		const rt = await s.api('POST', `/v1/exemptions/${second}/reinstate`, { token: tenant, body: { reason: 'me' } });
		assertProblem(rt, 403);
	});

	test('after the cool-down the reviewer reinstates: active, a grant event, the request approved', async () => {
		await s.sql(`UPDATE exemptions SET cooldown_until = now() - interval '1 second' WHERE id = $1`, [second]);
		const seq = await feedHead();
		const r = await s.api('POST', `/v1/exemptions/${second}/reinstate`, { token: rita,
			body: { reason: 'delisted; the open relay was closed' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'active');
		assert.ok(r.json.token);
		const ev = (await feedAfter(seq)).filter((x) => x.exemption === second);
		assert.deepEqual(ev.map((x) => x.type), ['grant']);
		const j = await getReq(reqId);
		assert.equal(j.status, 'approved');
		assert.equal(j.decision.decision, 'approve');
		const e = await getExm(second);
		assert.equal(e.status, 'active');
		assert.equal(e.suspensions, 2, 'the history stays');
		const [au] = await s.sqlJson(`SELECT actor FROM audit_log WHERE action = 'exemption.reinstate' AND object_id = $1`, [second]);
		assert.equal(au.actor, 'rita');
	});
});

// ------------------------------------------------------------ release

describe('inventory release', () => {
	let reqId;
	let ex;

	before(async () => {
		const a = await approve(IP.release);
		reqId = a.id;
		ex = a.exemption;
	});

	test('the admin PUT without the address revokes its exemption in the same transaction', async () => {
		const seq = await feedHead();
		const r = await s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: admin,
			body: { addresses: ['81.2.69.0/27'] } });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json.addresses, ['81.2.69.0/27']);
		const e = await getExm(ex);
		assert.equal(e.status, 'revoked');
		assert.equal(e.status_reason, 'address released from the inventory');
		assert.equal(e.token, null);
		const ev = (await feedAfter(seq)).filter((x) => x.exemption === ex);
		assert.equal(ev.length, 1);
		assert.equal(ev[0].type, 'revoke');
		assert.equal(ev[0].reason, 'released');
		assert.equal(ev[0].cidr, `${IP.release}/32`);
		// one transaction: the exemption row, its revoke event, the new inventory and both audit rows
		const x = await row(`SELECT (SELECT xmin::text FROM exemptions WHERE id = $1) AS exemption,
			(SELECT xmin::text FROM feed_events WHERE exemption_id = $1 AND type = 'revoke') AS event,
			(SELECT xmin::text FROM tenant_addresses WHERE tenant_id = 'acme' AND prefix = '81.2.69.0/27') AS inventory,
			(SELECT (xid::text::bigint % 4294967296)::text FROM audit_log WHERE action = 'exemption.release' AND object_id = $1::text) AS audit_release,
			(SELECT (max(xid::text::bigint) % 4294967296)::text FROM audit_log WHERE action = 'tenant.addresses.put') AS audit_put`, [ex]);
		assert.ok(x.exemption && new Set(Object.values(x)).size === 1, `not one transaction: ${JSON.stringify(x)}`);
		const d = await row(`SELECT event, payload FROM webhook_deliveries WHERE object_id = $1`, [ex]);
		assert.equal(d.payload.status, 'revoked');
		assert.match(d.payload.reason, /released/);
	});

	test('the old holder no longer sees the address; it can be given to another tenant and exempted for it', async () => {
		const a = await s.api('GET', `/v1/addresses/${IP.release}`, { token: tenant });
		assertProblem(a, 404);
		const r = await s.api('PUT', '/v1/admin/tenants/globex/addresses', { token: admin,
			body: { addresses: ['81.2.71.0/24', IP.release] } });
		assert.equal(r.status, 200, r.text);
		const g = await approve(IP.release, globex);
		const e = await getExm(g.exemption, globex);
		assert.equal(e.status, 'active');
		assert.equal(e.tenant, 'globex');
		// acme cannot get it back while globex holds it
		const back = await s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: admin,
			body: { addresses: ['81.2.69.0/27', IP.release] } });
		assertProblem(back, 409, 'address_conflict');
		assert.equal((await getReq(reqId)).status, 'approved', 'the old request is history');
	});

	test('a suspended exemption is released too', async () => {
		const a = await approve(IP.suspended);
		await suspendByListing(IP.suspended, a.exemption);
		await unlist();
		const seq = await feedHead();
		// everything of 81.2.69.0/27 but 81.2.69.16-20
		const r = await s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: admin,
			body: { addresses: ['81.2.69.0/28', '81.2.69.21/32', '81.2.69.22/31', '81.2.69.24/29'] } });
		assert.equal(r.status, 200, r.text);
		const e = await getExm(a.exemption);
		assert.equal(e.status, 'revoked');
		assert.equal(e.status_reason, 'address released from the inventory');
		const ev = (await feedAfter(seq));
		assert.deepEqual(ev.map((x) => [x.exemption, x.type, x.reason]), [[a.exemption, 'revoke', 'released']],
			'only the released one, and a revoke event again: a node may have missed the first');
		// the other exemptions of acme (inside what it still holds) are untouched
		const [[n]] = await s.sql(`SELECT count(*) FROM exemptions WHERE tenant_id = 'acme' AND status = 'active'`);
		assert.ok(Number(n) >= 1);
	});
});

// ------------------------------------------------------------ expiry

describe('expiry', () => {
	let ex;
	let warnEx;
	let renewEx;

	before(async () => {
		ex = (await approve(IP.expire)).exemption;
		warnEx = (await approve(IP.warn)).exemption;
		renewEx = (await approve(IP.renew)).exemption;
	});

	test('expires_at within P25_EXPIRY_WARNING: expiring_soon and an exemption.expiring webhook', async () => {
		assert.equal((await getExm(warnEx)).expiring_soon, false);
		await s.sql(`UPDATE exemptions SET expires_at = now() + interval '30 minutes' WHERE id = $1`, [warnEx]);
		await kick('expire');
		await waitFor(async () => (await getExm(warnEx)).expiring_soon === true, { what: 'expiring_soon' });
		const e = await getExm(warnEx);
		assert.equal(e.status, 'active');
		const d = await row(`SELECT event, payload FROM webhook_deliveries WHERE object_id = $1
			AND event = 'exemption.expiring'`, [warnEx]);
		assert.ok(d, 'an exemption.expiring delivery row');
		assert.match(d.payload.reason, /expires at/);
		const h = await waitFor(() => hooks.find((x) => x.headers['p25-event'] === 'exemption.expiring'
			&& JSON.parse(x.body).object === warnEx), { what: 'the exemption.expiring POST' });
		const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(h.headers['p25-signature']);
		assert.equal(m[2], crypto.createHmac('sha256', Buffer.from(WEBHOOK_SECRET, 'hex')).update(`${m[1]}.${h.body}`).digest('hex'));
		// once: another run warns no more
		await kick('expire');
		await sleep(1000);
		const [[n]] = await s.sql(`SELECT count(*) FROM webhook_deliveries WHERE object_id = $1 AND event = 'exemption.expiring'`, [warnEx]);
		assert.equal(n, '1');
		// an exemption far from expiry is not warned
		assert.equal((await getExm(renewEx)).expiring_soon, false);
	});

	// Regression (workers/maintain.c, fixed in 772c06e): the `list` statements
	// of p25_job_expire and p25_job_renew were declared with 2 parameters for
	// one placeholder; PostgreSQL refused every execution (SQLSTATE 08P01 "bind
	// message supplies 2 parameters, but prepared statement requires 1"):
	// nothing ever expired and no token was ever renewed.
	test('expires_at in the past: the expire job expires it (status, revoke event)', async () => {
			const seq = await feedHead();
			await s.sql(`UPDATE exemptions SET expires_at = now() - interval '1 second' WHERE id = $1`, [ex]);
			await kick('expire');
			await waitFor(async () => (await getExm(ex)).status === 'expired', { timeoutMs: 15000, what: 'expiry' });
			const e = await getExm(ex);
			assert.equal(e.token, null);
			assert.match(e.status_reason, /expired/);
			const ev = (await feedAfter(seq)).filter((x) => x.exemption === ex);
			assert.deepEqual(ev.map((x) => [x.type, x.reason]), [['revoke', 'expired']]);
			const a = await s.api('GET', `/v1/addresses/${IP.expire}`, { token: tenant });
			assert.equal(a.json.port25_open, false);
		});

	test('the renew job renews an active exemption\'s token at two thirds of its life', async () => {
			const seq = await feedHead();
			await s.sql(`UPDATE tokens SET issued_at = now() - interval '20 hours', expires_at = now() + interval '4 hours'
				WHERE exemption_id = $1 AND current`, [renewEx]);
			await kick('renew');
			await waitFor(async () => (await feedAfter(seq)).some((x) => x.exemption === renewEx && x.type === 'renew'),
				{ timeoutMs: 15000, what: 'a renew event' });
		});

	test('an expired exemption is never renewed', async () => {
		// whatever the expire job did, an exemption past expires_at gets no new token
		await s.sql(`UPDATE exemptions SET expires_at = now() - interval '1 second' WHERE id = $1`, [ex]);
		await s.sql(`UPDATE tokens SET issued_at = now() - interval '20 hours' WHERE exemption_id = $1 AND current`, [ex]);
		const seq = await feedHead();
		const [[t0]] = await s.sql('SELECT count(*) FROM tokens WHERE exemption_id = $1', [ex]);
		await kick('renew');
		await kick('expire');
		await sleep(3000);
		assert.equal((await feedAfter(seq)).filter((x) => x.exemption === ex && x.type !== 'revoke').length, 0);
		const [[t1]] = await s.sql('SELECT count(*) FROM tokens WHERE exemption_id = $1', [ex]);
		assert.equal(t1, t0, 'no new token');
		const e = await getExm(ex);
		assert.ok(['active', 'expired'].includes(e.status));
		assert.ok(!e.token || e.status === 'active', 'no token on an expired exemption');
	});
});
