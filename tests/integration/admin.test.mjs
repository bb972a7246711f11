// Admin side of tenants (issue 3): PUT/GET a tenant, PUT/GET its address
// inventory (replaced as a whole; overlap with another tenant is a 409 that
// changes nothing) — and the tenant's view of one address,
// GET /v1/addresses/{ip}: open, suspended, no request, pending, denied, …
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';

let s;
let adm;
before(async () => {
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	adm = s.token({ sub: 'ops', roles: ['admin'] });
});
after(async () => {
	if (s) await s.stop();
});

function assertProblem(r, status, code, field) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.equal(r.headers.get('content-type'), 'application/problem+json');
	assert.equal(r.json.code, code, r.text);
	assert.equal(r.json.status, status);
	if (field !== undefined) {
		assert.equal(r.json.field, field, r.text);
		if (r.json.errors) assert.ok(r.json.errors.some((e) => e.field === field), r.text);
	}
}

const put = (id, body, opts = {}) => s.api('PUT', `/v1/admin/tenants/${id}`, { token: adm, body, ...opts });
const putInv = (id, addresses, opts = {}) => s.api('PUT', `/v1/admin/tenants/${id}/addresses`,
	{ token: adm, body: addresses === undefined ? {} : { addresses }, ...opts });
const getInv = (id) => s.api('GET', `/v1/admin/tenants/${id}/addresses`, { token: adm });

async function tenantCounts() {
	const [row] = await s.sqlJson(`SELECT (SELECT count(*) FROM tenants) AS tenants,
		(SELECT count(*) FROM tenant_addresses) AS addresses, (SELECT count(*) FROM audit_log) AS audit`);
	return row;
}

// ------------------------------------------------------------ tenants

describe('PUT/GET /v1/admin/tenants/{id}', () => {
	test('PUT creates (201, Location), PUT again replaces (200), GET reads it', async () => {
		const body = { name: 'Acme Mail', created_at: '2024-01-31T12:00:00Z', verified: true, standing: 'good',
			webhook_url: 'https://hooks.acme.example/p25' };
		const c = await put('acme', body);
		assert.equal(c.status, 201, c.text);
		assert.equal(c.headers.get('location'), '/v1/admin/tenants/acme');
		assert.equal(c.json.id, 'acme');
		assert.equal(c.json.name, 'Acme Mail');
		assert.equal(Date.parse(c.json.created_at), Date.parse('2024-01-31T12:00:00Z'));
		assert.equal(c.json.verified, true);
		assert.equal(c.json.standing, 'good');
		assert.equal(c.json.webhook_url, 'https://hooks.acme.example/p25');
		assert.ok(Date.parse(c.json.registered_at) > Date.parse('2025-01-01'));

		const u = await put('acme', { name: 'Acme Corp', created_at: '2023-06-01T00:00:00+02:00', standing: 'delinquent' });
		assert.equal(u.status, 200, u.text);
		assert.equal(u.headers.get('location'), null);
		assert.equal(u.json.name, 'Acme Corp');
		assert.equal(Date.parse(u.json.created_at), Date.parse('2023-05-31T22:00:00Z'));
		assert.equal(u.json.standing, 'delinquent');
		assert.equal(u.json.verified, false, 'verified left out means false');
		assert.equal(u.json.webhook_url, null, 'webhook_url left out means none');
		assert.equal(u.json.registered_at, c.json.registered_at);

		const g = await s.api('GET', '/v1/admin/tenants/acme', { token: adm });
		assert.equal(g.status, 200, g.text);
		assert.deepEqual(g.json, u.json);
		const [row] = await s.sqlJson("SELECT name, standing, verified FROM tenants WHERE id = 'acme'");
		assert.deepEqual(row, { name: 'Acme Corp', standing: 'delinquent', verified: false });
		const audit = await s.sql("SELECT actor, action FROM audit_log WHERE object_id = 'acme' ORDER BY seq");
		assert.deepEqual(audit, [['ops', 'tenant.put'], ['ops', 'tenant.put']]);
	});

	test('unknown or malformed tenant ids → 404', async () => {
		assertProblem(await s.api('GET', '/v1/admin/tenants/nobody', { token: adm }), 404, 'not_found');
		for (const id of ['-bad', `a${'b'.repeat(64)}`, 'a%20b', '.x']) {
			assertProblem(await s.api('GET', `/v1/admin/tenants/${id}`, { token: adm }), 404, 'not_found');
			assertProblem(await put(id, { name: 'x', created_at: '2024-01-01T00:00:00Z' }), 404, 'not_found');
		}
	});

	test('bad bodies → 422 naming the field (400 malformed JSON, 415 not JSON); nothing is written', async () => {
		const b0 = await tenantCounts();
		const ok = { name: 'Globex', created_at: '2024-01-31T12:00:00Z' };
		for (const [body, code, field] of [
			[{ created_at: ok.created_at }, 'required', 'name'],
			[{ ...ok, name: '' }, 'invalid_text', 'name'],
			[{ ...ok, name: 'x'.repeat(201) }, 'too_long', 'name'],
			[{ ...ok, name: 'bell\u0007' }, 'invalid_text', 'name'],
			[{ name: 'Globex' }, 'required', 'created_at'],
			[{ ...ok, created_at: 'yesterday' }, 'invalid_timestamp', 'created_at'],
			[{ ...ok, created_at: '2024-01-31' }, 'invalid_timestamp', 'created_at'],
			[{ ...ok, created_at: '2024-01-31T12:00:00' }, 'invalid_timestamp', 'created_at'],
			[{ ...ok, verified: 'yes' }, 'invalid_type', 'verified'],
			[{ ...ok, standing: 'great' }, 'invalid_value', 'standing'],
			[{ ...ok, webhook_url: 'ftp://x.example' }, 'invalid_url', 'webhook_url'],
			[{ ...ok, webhook_secret: 'mine' }, 'unknown_field', 'webhook_secret'],
			[{ ...ok, id: 'other' }, 'unknown_field', 'id'],
		]) {
			assertProblem(await put('globex', body), 422, code, field);
		}
		const several = await put('globex', { name: '', created_at: 'x', standing: 'great' });
		assertProblem(several, 422, 'validation_failed');
		assert.equal(several.json.errors.length, 3);
		assertProblem(await put('globex', '{"name":', { headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await put('globex', JSON.stringify(ok), { headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		assert.deepEqual(await tenantCounts(), b0);
		assertProblem(await s.api('GET', '/v1/admin/tenants/globex', { token: adm }), 404, 'not_found');
	});

	test('a created_at that is not a calendar date → 422 invalid_timestamp',
		{},
		async () => {
			const b0 = await tenantCounts();
			for (const t of ['2024-02-30T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T25:00:00Z']) {
				assertProblem(await put('globex', { name: 'Globex', created_at: t }), 422, 'invalid_timestamp', 'created_at');
			}
			assert.deepEqual(await tenantCounts(), b0);
		});
});

// ------------------------------------------------------------ inventory

describe('PUT/GET /v1/admin/tenants/{id}/addresses', () => {
	before(async () => {
		assert.equal((await put('inv1', { name: 'Inv One', created_at: '2024-01-01T00:00:00Z' })).status, 201);
		assert.equal((await put('inv2', { name: 'Inv Two', created_at: '2024-01-01T00:00:00Z' })).status, 201);
	});

	test('a new tenant holds nothing', async () => {
		const r = await getInv('inv1');
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json, { tenant: 'inv1', addresses: [] });
	});

	test('PUT replaces the inventory as a whole; entries are normalized; wide prefixes are fine', async () => {
		const a = await putInv('inv1', ['81.2.69.0/24', '2A02:FF0:1::/48', '81.2.80.5']);
		assert.equal(a.status, 200, a.text);
		assert.deepEqual(a.json.tenant, 'inv1');
		assert.deepEqual([...a.json.addresses].sort(), ['2a02:ff0:1::/48', '81.2.69.0/24', '81.2.80.5/32'].sort());
		assert.deepEqual((await getInv('inv1')).json, a.json);

		const b = await putInv('inv1', ['81.2.0.0/16']);
		assert.equal(b.status, 200, b.text);
		assert.deepEqual(b.json.addresses, ['81.2.0.0/16']);
		const rows = await s.sql("SELECT prefix FROM tenant_addresses WHERE tenant_id = 'inv1'");
		assert.deepEqual(rows.flat(), ['81.2.0.0/16'], 'the old entries are gone');
		const audit = await s.sqlJson(`SELECT details FROM audit_log WHERE object_id = 'inv1'
			AND action = 'tenant.addresses.put' ORDER BY seq DESC LIMIT 1`);
		assert.deepEqual(audit[0].details.after, ['81.2.0.0/16']);
		assert.equal(audit[0].details.before.length, 3);

		const empty = await putInv('inv1', []);
		assert.equal(empty.status, 200, empty.text);
		assert.deepEqual(empty.json.addresses, []);
	});

	test('overlap with another tenant → 409 address_conflict naming it; nothing changes', async () => {
		assert.equal((await putInv('inv1', ['81.2.69.0/24', '2a02:ff0:1::/48'])).status, 200);
		assert.equal((await putInv('inv2', ['81.2.90.0/24'])).status, 200);
		const b0 = await tenantCounts();
		for (const [entry, theirs] of [['81.2.69.128/25', '81.2.69.0/24'], ['81.2.0.0/16', '81.2.69.0/24'],
			['81.2.69.7', '81.2.69.0/24'], ['2a02:ff0:1:5::/64', '2a02:ff0:1::/48']]) {
			const r = await putInv('inv2', ['81.3.91.0/24', entry]);
			assertProblem(r, 409, 'address_conflict', 'addresses');
			assert.match(r.json.detail, /held by tenant inv1/);
			assert.ok(r.json.detail.includes(theirs), r.text);
			assert.ok(r.json.hint);
		}
		assert.deepEqual(await tenantCounts(), b0);
		assert.deepEqual((await getInv('inv2')).json.addresses, ['81.2.90.0/24']);
		assert.deepEqual([...(await getInv('inv1')).json.addresses].sort(), ['2a02:ff0:1::/48', '81.2.69.0/24']);
		// the same tenant may re-shape its own prefixes
		const own = await putInv('inv1', ['81.2.69.0/25', '81.2.69.128/25']);
		assert.equal(own.status, 200, own.text);
	});

	test('bad entries → 422 naming the entry; unknown tenant → 404; nothing changes', async () => {
		const b0 = await tenantCounts();
		for (const [addresses, code, field] of [
			[['10.0.0.0/8'], 'non_public_address', 'addresses[0]'],
			[['81.2.92.0/24', 'fd00::/8'], 'non_public_address', 'addresses[1]'],
			[['81.2.92.1/24'], 'host_bits_set', 'addresses[0]'],
			[['not-an-ip'], 'invalid_address', 'addresses[0]'],
			[['81.2.92.0/24', '81.2.92.7'], 'duplicate_address', 'addresses[1]'],
			[['::ffff:81.2.92.1'], 'mapped_address', 'addresses[0]'],
			[[7], 'invalid_type', 'addresses[0]'],
			['81.2.92.0/24', 'invalid_type', 'addresses'],
			[undefined, 'required', 'addresses'],
		]) {
			assertProblem(await putInv('inv2', addresses), 422, code, field);
		}
		const extra = await s.api('PUT', '/v1/admin/tenants/inv2/addresses', { token: adm, body: { addresses: [], replace: true } });
		assertProblem(extra, 422, 'unknown_field', 'replace');
		assertProblem(await putInv('inv2', '{', { body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
		assertProblem(await s.api('PUT', '/v1/admin/tenants/inv2/addresses', { token: adm, body: '{"addresses":[]}',
			headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
		assertProblem(await putInv('nobody', ['81.2.93.0/24']), 404, 'not_found');
		assertProblem(await putInv('-bad', ['81.2.93.0/24']), 404, 'not_found');
		assertProblem(await getInv('nobody'), 404, 'not_found');
		assert.deepEqual(await tenantCounts(), b0);
		assert.deepEqual((await getInv('inv2')).json.addresses, ['81.2.90.0/24']);
	});
});

// ------------------------------------------------------------ address status

describe('GET /v1/addresses/{ip}', () => {
	let tok;
	const req = {};
	before(async () => {
		await s.createTenant('shop', { addresses: ['81.2.100.0/24', '2a02:ff0:9::/48'] });
		tok = s.token({ sub: 'sam', roles: ['tenant'], tenant: 'shop' });
		for (const [name, addr] of [['pending', '81.2.100.2'], ['denied', '81.2.100.3'], ['open', '81.2.100.4'],
			['suspended', '81.2.100.5'], ['needs_info', '81.2.100.6'], ['ended', '81.2.100.7'], ['withdrawn', '81.2.100.8']]) {
			const r = await s.api('POST', '/v1/requests', { token: tok, body: { addresses: [addr], use_case: 'other' } });
			assert.equal(r.status, 202, r.text);
			req[name] = r.json.id;
		}
		await s.sql(`BEGIN;
UPDATE requests SET status = 'denied' WHERE id = $1;
INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes, message, policy_version, reapply_after)
VALUES ($1, 'shop', 1, 'deny', 'policy', '{dnsbl_listed,rdns_generic}', '81.2.100.3 is listed in zen.test', 'p-7',
        now() + interval '7 days');
UPDATE requests SET status = 'approved' WHERE id IN ($2, $3, $5);
INSERT INTO exemptions (tenant_id, request_id, prefix, status, expires_at)
VALUES ('shop', $2, '81.2.100.4/32', 'active', now() + interval '90 days');
INSERT INTO exemptions (tenant_id, request_id, prefix, status, status_reason, expires_at)
VALUES ('shop', $3, '81.2.100.5/32', 'suspended', 'listed in zen.test', now() + interval '90 days');
INSERT INTO exemptions (tenant_id, request_id, prefix, status, status_reason, expires_at)
VALUES ('shop', $5, '81.2.100.7/32', 'revoked', 'abuse', now() + interval '90 days');
UPDATE requests SET status = 'needs_info' WHERE id = $4;
UPDATE requests SET status = 'withdrawn' WHERE id = $6;
COMMIT;`, [req.denied, req.open, req.suspended, req.needs_info, req.ended, req.withdrawn]);
	});

	const status = (ip) => s.api('GET', `/v1/addresses/${ip}`, { token: tok });

	test('no request covers it → no_request', async () => {
		const r = await status('81.2.100.1');
		assert.equal(r.status, 200, r.text);
		assert.equal(r.headers.get('cache-control'), 'private, no-cache');
		assert.deepEqual(r.json, { address: '81.2.100.1', held_in: '81.2.100.0/24', port25_open: false, exemption: null,
			request: null, decision: null, state: 'no_request', hint: r.json.hint });
		assert.match(r.json.hint, /POST \/v1\/requests/);
		// a withdrawn request does not count
		const w = await status('81.2.100.8');
		assert.equal(w.json.state, 'no_request');
	});

	test('pending → the request and since when', async () => {
		const r = await status('81.2.100.2');
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.state, 'pending');
		assert.equal(r.json.port25_open, false);
		assert.deepEqual(r.json.request, { id: req.pending, status: 'pending' });
		assert.equal(r.json.exemption, null);
		assert.equal(r.json.decision, null);
		assert.ok(r.json.since);
	});

	test('denied → the decision with its reasons and when to reapply', async () => {
		const r = await status('81.2.100.3');
		assert.equal(r.json.state, 'denied');
		assert.equal(r.json.port25_open, false);
		assert.deepEqual(r.json.request, { id: req.denied, status: 'denied' });
		assert.equal(r.json.decision.decision, 'deny');
		assert.deepEqual(r.json.decision.reason_codes, ['dnsbl_listed', 'rdns_generic']);
		assert.equal(r.json.decision.message, '81.2.100.3 is listed in zen.test');
		assert.equal(r.json.decision.policy_version, 'p-7');
		assert.ok(Date.parse(r.json.decision.reapply_after) > Date.now());
	});

	test('an active exemption → open, with the exemption', async () => {
		const r = await status('81.2.100.4');
		assert.equal(r.json.state, 'open');
		assert.equal(r.json.port25_open, true);
		assert.equal(r.json.exemption.cidr, '81.2.100.4/32');
		assert.equal(r.json.exemption.status, 'active');
		assert.equal(r.json.exemption.request, req.open);
		assert.ok(Date.parse(r.json.exemption.expires_at) > Date.now());
		assert.ok(r.json.since);
	});

	test('a suspended exemption → suspended, with its reason', async () => {
		const r = await status('81.2.100.5');
		assert.equal(r.json.state, 'suspended');
		assert.equal(r.json.port25_open, false);
		assert.equal(r.json.exemption.status, 'suspended');
		assert.equal(r.json.exemption.status_reason, 'listed in zen.test');
	});

	test('needs_info, and an approved request whose exemption ended', async () => {
		const n = await status('81.2.100.6');
		assert.equal(n.json.state, 'needs_info');
		assert.deepEqual(n.json.request, { id: req.needs_info, status: 'needs_info' });
		const e = await status('81.2.100.7');
		assert.equal(e.json.state, 'exemption_ended');
		assert.equal(e.json.exemption, null);
		assert.equal(e.json.port25_open, false);
	});

	test('IPv6: written any way, answered normalized', async () => {
		const r = await status('2A02:0FF0:0009:0000:0000:0000:0000:0001');
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.address, '2a02:ff0:9::1');
		assert.equal(r.json.held_in, '2a02:ff0:9::/48');
		assert.equal(r.json.state, 'no_request');
	});

	test('since is an RFC 3339 timestamp like every other time in the API',
		async () => {
			const r = await status('81.2.100.2');
			assert.match(r.json.since, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
		});

	test('an address the tenant does not hold → 404 address_not_held', async () => {
		for (const ip of ['81.2.101.1', '8.8.8.8', '2a02:ff0:8::1', '10.0.0.1']) {
			const r = await status(ip);
			assertProblem(r, 404, 'address_not_held');
		}
	});

	test('not a single address → 400 invalid_address', async () => {
		for (const ip of ['81.2.100', 'abc', '81.2.100.256', '081.2.100.1', '::g', '::ffff:81.2.100.1']) {
			const r = await status(ip);
			assertProblem(r, 400, 'invalid_address', 'ip');
		}
		// a prefix has a slash: that is another path, which no route serves
		for (const ip of ['81.2.100.0/24', '81.2.100.1%2F32']) {
			const r = await status(ip);
			assertProblem(r, 404, 'not_found');
		}
	});
});
