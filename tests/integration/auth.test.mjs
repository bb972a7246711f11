// Authentication and roles: every call but the public ones needs a bearer
// JWT signed with the configured algorithm (HS256 here), with our issuer and
// audience, not expired; the roles of the token must allow the route.  Every
// authenticated operation of openapi.yaml is tried without a token and with a
// token of the wrong role.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { SOURCE_DIR, signJwt, startStack } from '../lib/harness.mjs';

let s;
before(async () => {
	// no clock-skew leeway, so expiry can be tested in seconds (one test puts it back)
	s = await startStack({ env: { P25_AUTH_LEEWAY: '0' } });
	await s.createTenant('acme', { addresses: ['81.2.69.0/24'] });
});
after(async () => {
	if (s) await s.stop();
});

const now = () => Math.floor(Date.now() / 1000);

function assertProblem(r, status, code) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.equal(r.headers.get('content-type'), 'application/problem+json');
	assert.equal(r.json.code, code, r.text);
	assert.equal(r.json.status, status);
}

function assert401(r, code = 'invalid_token') {
	assertProblem(r, 401, code);
	assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="p25"');
	assert.ok(r.json.hint, 'a 401 says what to do');
}

describe('bearer tokens', () => {
	const call = (token, headers = {}) => s.api('GET', '/v1/requests', { token, headers });

	test('a valid token passes', async () => {
		const r = await call(s.token({ roles: ['tenant'], tenant: 'acme' }));
		assert.equal(r.status, 200, r.text);
	});

	test('the token cache keeps the most recently used tokens of a set (four ways, LRU), each with its own principal', async () => {
		// P25_AUTH_CACHE_SIZE=4: one set of four slots, so which token goes
		// where does not depend on the hashes
		const api = await s.startApi({ P25_AUTH_CACHE_SIZE: '4' }, { replace: false });
		try {
			const stats = async () => {
				const m = await s.api('GET', '/metrics', { baseUrl: api.url });
				assert.equal(m.status, 200, m.text);
				const n = (k) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(m.text)[1]);
				return { hits: n('p25_auth_cache_hits_total'), misses: n('p25_auth_cache_misses_total') };
			};
			const toks = Array.from({ length: 5 }, (_, i) => s.token({ sub: `lru-${i}`, roles: ['tenant'], tenant: 'acme' }));
			const who = async (i) => {
				const r = await s.api('GET', '/v1/whoami', { token: toks[i], baseUrl: api.url });
				assert.equal(r.status, 200, r.text);
				assert.equal(r.json.sub, `lru-${i}`, 'each token answers with its own principal');
			};
			const delta = async (fn) => {
				const a = await stats();
				await fn();
				const b = await stats();
				return { hits: b.hits - a.hits, misses: b.misses - a.misses };
			};
			// four tokens fit: after the first round every use is a hit
			assert.deepEqual(await delta(async () => { for (const i of [0, 1, 2, 3]) await who(i); }), { hits: 0, misses: 4 });
			assert.deepEqual(await delta(async () => { for (const i of [3, 2, 1, 0, 0, 1, 2, 3]) await who(i); }), { hits: 8, misses: 0 });
			// a fifth takes the least recently used slot: token 0's
			assert.deepEqual(await delta(() => who(4)), { hits: 0, misses: 1 });
			assert.deepEqual(await delta(async () => { for (const i of [1, 2, 3, 4]) await who(i); }), { hits: 4, misses: 0 });
			assert.deepEqual(await delta(() => who(0)), { hits: 0, misses: 1 });
		} finally {
			await api.stop();
		}
	});

	test('no token → 401 missing_token with WWW-Authenticate', async () => {
		assert401(await call(undefined), 'missing_token');
		assert401(await call(undefined, { Authorization: '' }), 'missing_token');
	});

	test('an expired token → 401 token_expired (also once it was cached)', async () => {
		assert401(await call(s.token({ tenant: 'acme', exp: now() - 3600, iat: now() - 7200 })), 'token_expired');
		// a token accepted once (and cached) stops working when it expires
		const t = s.token({ tenant: 'acme', ttl: 2 });
		assert.equal((await call(t)).status, 200);
		await new Promise((r) => setTimeout(r, 3200));
		const r = await call(t);
		assertProblem(r, 401, 'token_expired');
		assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="p25"');
	});

	test('an expired token gets the same answer whether or not it was cached',
		{},
		async () => {
			const t = s.token({ sub: 'cached', tenant: 'acme', ttl: 2 });
			assert.equal((await call(t)).status, 200);
			await new Promise((r) => setTimeout(r, 3200));
			const cached = await call(t);
			const fresh = await call(s.token({ sub: 'fresh', tenant: 'acme', exp: now() - 5 }));
			assert.deepEqual(cached.json, fresh.json);
			assert401(cached, 'token_expired');
		});

	test('P25_AUTH_LEEWAY allows that much clock skew on exp and nbf, no more', async () => {
		await s.startApi({ P25_AUTH_LEEWAY: '30' });
		try {
			assert.equal((await call(s.token({ tenant: 'acme', exp: now() - 10 }))).status, 200);
			assert.equal((await call(s.token({ tenant: 'acme', nbf: now() + 10 }))).status, 200);
			assert401(await call(s.token({ tenant: 'acme', exp: now() - 40 })), 'token_expired');
			assert401(await call(s.token({ tenant: 'acme', nbf: now() + 40 })));
		} finally {
			await s.startApi({ P25_AUTH_LEEWAY: '0' });
		}
	});

	test('wrong issuer or audience → 401', async () => {
		assert401(await call(s.token({ tenant: 'acme', iss: 'someone-else' })));
		assert401(await call(s.token({ tenant: 'acme', iss: null })));
		assert401(await call(s.token({ tenant: 'acme', aud: 'another-api' })));
		assert401(await call(s.token({ tenant: 'acme', aud: null })));
		// an audience array holding ours is fine
		assert.equal((await call(s.token({ tenant: 'acme', aud: ['x', 'p25'] }))).status, 200);
	});

	test('alg none, other algorithms, and header tricks → 401', async () => {
		const t = s.token({ tenant: 'acme', alg: 'none' });
		assert.match(t, /\.$/);
		assert401(await call(t));
		// "none" with a signature anyway, and a capitalised NONE
		assert401(await call(`${t}c2ln`));
		assert401(await call(s.token({ tenant: 'acme', alg: 'NONE' })));
		for (const alg of ['HS384', 'HS512', 'RS256', 'ES256', 'EdDSA']) {
			assert401(await call(s.token({ tenant: 'acme', alg })));
		}
		// a jwk or jku in the header is refused even when the signature is good
		assert401(await call(s.token({ tenant: 'acme', header: { jku: 'https://evil.example/keys' } })));
		assert401(await call(s.token({ tenant: 'acme', header: { crit: ['exp'] } })));
	});

	test('HS256 signed with another secret → 401', async () => {
		assert401(await call(s.token({ tenant: 'acme', secret: crypto.randomBytes(48).toString('hex') })));
		// a body tampered with after signing
		const [h, , sig] = s.token({ tenant: 'acme' }).split('.');
		const forged = Buffer.from(JSON.stringify({ iss: 'p25-test-idp', aud: 'p25', sub: 'x', roles: ['admin'],
			exp: now() + 600 })).toString('base64url');
		assert401(await call(`${h}.${forged}.${sig}`));
	});

	test('missing or malformed claims → 401', async () => {
		assert401(await call(s.token({ tenant: 'acme', exp: null })));
		assert401(await call(s.token({ tenant: 'acme', nbf: now() + 3600 })));
		assert401(await call(s.token({ tenant: 'acme', claims: { sub: '' } })));
		assert401(await call(s.token({ tenant: 'acme', claims: { roles: 'tenant' } })));
		// the tenant role needs a well-formed tenant claim
		assert401(await call(s.token({ roles: ['tenant'] })));
		assert401(await call(s.token({ roles: ['tenant'], tenant: '../etc' })));
	});

	test('not a JWT, or not Bearer → 401', async () => {
		for (const a of ['Bearer ', 'Bearer abc', 'Bearer a.b', 'Bearer a.b.c.d', 'Bearer ***.***.***',
			`Basic ${Buffer.from('u:p').toString('base64')}`, `Bearer ${'a'.repeat(9000)}.b.c`]) {
			assert401(await call(undefined, { Authorization: a }));
		}
		// a token signed by the harness but with the scheme in lower case is fine
		assert.equal((await call(undefined, { Authorization: `bearer ${s.token({ tenant: 'acme' })}` })).status, 200);
	});

	test('GET /v1/whoami tells the caller who it is, for any valid token', async () => {
		const exp = now() + 600;
		const r = await s.api('GET', '/v1/whoami', { token: s.token({ sub: 'alice', roles: ['tenant', 'nonsense'], tenant: 'acme', exp }) });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json, { sub: 'alice', roles: ['tenant'], expires_at: exp, tenant: 'acme' });
		const a = await s.api('GET', '/v1/whoami', { token: s.token({ sub: 'ops', roles: ['admin', 'reviewer'], exp }) });
		assert.deepEqual(a.json, { sub: 'ops', roles: ['reviewer', 'admin'], expires_at: exp, tenant: null });
		const none = await s.api('GET', '/v1/whoami', { token: s.token({ sub: 'nobody', roles: [], exp }) });
		assert.deepEqual(none.json, { sub: 'nobody', roles: [], expires_at: exp, tenant: null });
		assert401(await s.api('GET', '/v1/whoami'), 'missing_token');
	});
});

// ------------------------------------------------------------ every operation

const spec = YAML.parse(fs.readFileSync(path.join(SOURCE_DIR, 'openapi.yaml'), 'utf8'));
const ALL_ROLES = ['tenant', 'reviewer', 'admin', 'enforcer', 'reporter'];
const SAMPLE = { id: '0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11', ip: '81.2.69.5', file: 'app.js' };

function authenticatedOperations() {
	const out = [];
	for (const [template, item] of Object.entries(spec.paths)) {
		for (const m of ['get', 'put', 'post', 'delete', 'patch']) {
			const op = item[m];
			if (!op) continue;
			const security = op.security ?? spec.security ?? [];
			if (security.length === 0) continue;
			let p = template.replace(/\{(\w+)\}/g, (_, n) => SAMPLE[n] ?? 'x');
			if (template.startsWith('/v1/admin/tenants/')) p = p.replace(SAMPLE.id, 'acme');
			out.push({ method: m.toUpperCase(), path: p, id: op.operationId, roles: security.flatMap((x) => x.bearer ?? []) });
		}
	}
	return out;
}

describe('every authenticated operation', () => {
	test('without a token → 401 missing_token; with a forged one → 401 invalid_token', async () => {
		const ops = authenticatedOperations();
		assert.ok(ops.length >= 10);
		for (const o of ops) {
			const r = await s.api(o.method, o.path);
			assert.equal(r.status, 401, `${o.method} ${o.path}: ${r.text}`);
			assert401(r, 'missing_token');
			const f = await s.api(o.method, o.path, { token: signJwt({ alg: 'HS256', typ: 'JWT' },
				{ iss: 'p25-test-idp', aud: 'p25', sub: 'x', roles: ALL_ROLES, tenant: 'acme', exp: now() + 600 }, 'not-the-secret') });
			assert401(f, 'invalid_token');
		}
	});

	test('with a valid token of none of its roles → 403 forbidden', async () => {
		let n = 0;
		for (const o of authenticatedOperations()) {
			if (o.roles.length === 0) continue; // any caller
			const others = ALL_ROLES.filter((r) => !o.roles.includes(r));
			for (const role of others) {
				const t = s.token({ sub: `as-${role}`, roles: [role], tenant: role === 'tenant' ? 'acme' : undefined });
				const r = await s.api(o.method, o.path, { token: t });
				assert.equal(r.status, 403, `${o.method} ${o.path} as ${role}: ${r.text}`);
				assertProblem(r, 403, 'forbidden');
				n++;
			}
			// no roles at all
			const r = await s.api(o.method, o.path, { token: s.token({ sub: 'nobody', roles: [] }) });
			assertProblem(r, 403, 'forbidden');
		}
		assert.ok(n > 0);
	});

	test('a tenant token on an admin route, a reviewer token on a tenant route → 403', async () => {
		const tenant = s.token({ roles: ['tenant'], tenant: 'acme' });
		assertProblem(await s.api('GET', '/v1/admin/tenants/acme', { token: tenant }), 403, 'forbidden');
		assertProblem(await s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: tenant,
			body: { addresses: ['0.0.0.0/0'] } }), 403, 'forbidden');
		const reviewer = s.token({ sub: 'rev', roles: ['reviewer'] });
		assertProblem(await s.api('POST', '/v1/requests', { token: reviewer,
			body: { addresses: ['81.2.69.5'], use_case: 'other' } }), 403, 'forbidden');
		assertProblem(await s.api('GET', '/v1/requests', { token: reviewer }), 403, 'forbidden');
		// nothing was changed by the refused admin call
		const inv = await s.sql("SELECT prefix FROM tenant_addresses WHERE tenant_id = 'acme'");
		assert.deepEqual(inv.flat(), ['81.2.69.0/24']);
	});
});
