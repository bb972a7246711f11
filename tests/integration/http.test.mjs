// The public endpoints and what the HTTP layer answers on every route:
// /healthz, /readyz, /metrics, /openapi.yaml, the pages; 404 and 405 as
// problems; a body too large (413) or where none is taken (400) on every
// operation of openapi.yaml; and what a database that went away looks like
// (readyz 503, 503 with Retry-After, liveness unaffected).
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { SOURCE_DIR, run, startStack } from '../lib/harness.mjs';

let s;
const spec = YAML.parse(fs.readFileSync(path.join(SOURCE_DIR, 'openapi.yaml'), 'utf8'));

before(async () => {
	s = await startStack();
	await s.createTenant('acme', { addresses: ['81.2.69.0/24'] });
});
after(async () => {
	if (s) await s.stop();
});

function assertProblem(r, status, code) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.equal(r.headers.get('content-type'), 'application/problem+json');
	assert.equal(r.json.code, code, r.text);
	assert.equal(r.json.status, status);
	assert.equal(r.json.type, `https://p25.dev/problems/${code}`);
}

describe('public endpoints', () => {
	test('GET /healthz → 200 {status: ok}, with a request id', async () => {
		const r = await s.api('GET', '/healthz');
		assert.equal(r.status, 200);
		assert.deepEqual(r.json, { status: 'ok' });
		assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{16}$/);
		assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
	});

	test('GET /readyz → 200 ready, with the schema version of the migrations', async () => {
		const r = await s.api('GET', '/readyz');
		assert.equal(r.status, 200, r.text);
		const files = fs.readdirSync(path.join(SOURCE_DIR, 'migrations')).filter((f) => /^\d+_.*\.sql$/.test(f));
		const newest = Math.max(...files.map((f) => Number(f.split('_')[0])));
		assert.deepEqual(r.json, { status: 'ready', schema: newest });
	});

	test('GET /metrics → Prometheus text with p25_http_requests_total by route and status', async () => {
		await s.api('GET', '/healthz');
		const r = await s.api('GET', '/metrics');
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
		assert.match(r.text, /^# TYPE p25_http_requests_total counter$/m);
		assert.match(r.text, /^p25_http_requests_total\{method="GET",route="\/healthz",status="200"\} [1-9]\d*$/m);
		assert.match(r.text, /^p25_http_request_duration_seconds_bucket\{method="GET",route="\/healthz",le="\+Inf"\} \d+$/m);
		assert.match(r.text, /^p25_db_up 1$/m);
		assert.match(r.text, /^p25_db_pool_connections \d+$/m);
		// every sample line is "name{labels} value"
		for (const line of r.text.split('\n')) {
			if (!line || line.startsWith('#')) continue;
			assert.match(line, /^[a-z_:][a-z0-9_:]*(\{[^}]*\})? -?[0-9.e+]+$/i, line);
		}
		// unmatched paths are counted too
		await s.api('GET', '/no/such/thing');
		const m2 = await s.api('GET', '/metrics');
		assert.match(m2.text, /route="unmatched",status="404"/);
	});

	test('GET /.well-known/jwks.json is public: no keys before any was generated', async () => {
		const r = await s.api('GET', '/.well-known/jwks.json');
		assert.equal(r.status, 200, r.text);
		assert.equal(r.headers.get('content-type'), 'application/jwk-set+json');
		assert.deepEqual(r.json, { keys: [] });
	});

	test('GET /openapi.yaml serves this very spec (embedded at build time)', async () => {
		const r = await s.api('GET', '/openapi.yaml');
		assert.equal(r.status, 200);
		assert.equal(r.headers.get('content-type'), 'application/yaml');
		assert.equal(r.text, fs.readFileSync(path.join(SOURCE_DIR, 'openapi.yaml'), 'utf8'),
			'the binary serves the openapi.yaml of the source tree (rebuild p25-api?)');
		assert.equal(YAML.parse(r.text).openapi, '3.1.0');
	});

	test('GET / serves the tenant page (or 404 in a build without it); /static/{file} serves files', async () => {
		const r = await s.api('GET', '/');
		if (r.status === 200) {
			assert.match(r.headers.get('content-type'), /^text\/html/);
			assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
			assert.match(r.text, /<html/i);
		} else {
			assertProblem(r, 404, 'not_found');
		}
		const c = await s.api('GET', '/console');
		if (c.status === 200) {
			assert.match(c.headers.get('content-type'), /^text\/html/);
			assert.match(c.headers.get('content-security-policy'), /default-src 'self'/);
		} else {
			assertProblem(c, 404, 'not_found');
		}
		const y = await s.api('GET', '/static/openapi.yaml');
		assert.equal(y.status, 200);
		assert.equal(y.headers.get('content-type'), 'application/yaml');
		const files = fs.existsSync(path.join(SOURCE_DIR, 'api/static')) ? fs.readdirSync(path.join(SOURCE_DIR, 'api/static')) : [];
		for (const f of files) {
			const x = await s.api('GET', `/static/${f}`);
			assert.equal(x.status, 200, `${f}: ${x.text.slice(0, 200)}`);
		}
		for (const f of ['nope.js', '..%2Fopenapi.yaml', 'index.html.bak']) {
			assertProblem(await s.api('GET', `/static/${f}`), 404, 'not_found');
		}
	});
});

describe('the HTTP layer', () => {
	test('a path no route serves → 404 problem', async () => {
		for (const p of ['/nope', '/v1', '/v1/requests/', '/v1/requests/x/y', '/healthz/', '/static/a/b', '/V1/requests']) {
			const r = await s.api('GET', p);
			assertProblem(r, 404, 'not_found');
			assert.equal(r.json.instance, p);
		}
	});

	test('a known path with another method → 405 with Allow', async () => {
		const cases = [
			['DELETE', '/v1/requests', 'POST, GET'],
			['PATCH', '/v1/requests/0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11', 'GET'],
			['POST', '/healthz', 'GET'],
			['GET', '/v1/requests/0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11/withdraw', 'POST'],
			['DELETE', '/v1/admin/tenants/acme', 'PUT, GET'],
			['POST', '/v1/admin/tenants/acme/addresses', 'PUT, GET'],
		];
		for (const [m, p, allow] of cases) {
			const r = await s.api(m, p);
			assertProblem(r, 405, 'method_not_allowed');
			assert.equal(r.headers.get('allow'), allow, `${m} ${p}`);
		}
	});

	// every operation of the spec, with a path that reaches its handler
	const SAMPLE = { id: '0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11', ip: '81.2.69.5', file: 'openapi.yaml' };
	function operations() {
		const out = [];
		for (const [template, item] of Object.entries(spec.paths)) {
			for (const m of ['get', 'put', 'post', 'delete', 'patch']) {
				const op = item[m];
				if (!op) continue;
				let p = template.replace(/\{(\w+)\}/g, (_, n) => SAMPLE[n]);
				if (template.startsWith('/v1/admin/tenants/')) p = p.replace(SAMPLE.id, 'acme');
				const security = op.security ?? spec.security ?? [];
				const roles = security.flatMap((x) => x.bearer ?? []);
				const role = roles[0];
				const token = security.length === 0 ? undefined
					: s.token({ sub: 'http', roles: role ? [role] : [], tenant: role === 'tenant' ? 'acme' : undefined });
				out.push({ method: m.toUpperCase(), path: p, token, body: Boolean(op.requestBody), id: op.operationId });
			}
		}
		return out;
	}

	test('every operation refuses a body above P25_BODY_MAX with 413, before anything else', async () => {
		const big = Buffer.alloc(70000, 'x');
		for (const o of operations()) {
			// no token needed: the size is checked first
			const r = await s.api(o.method, o.path, { body: big, headers: { 'Content-Type': 'application/json' } });
			assertProblem(r, 413, 'body_too_large');
		}
	});

	test('every operation that takes no body refuses one with 400 unexpected_body', async () => {
		let n = 0;
		for (const o of operations()) {
			if (o.body) continue;
			const r = await s.api(o.method, o.path, { token: o.token, body: { x: 1 } });
			assertProblem(r, 400, 'unexpected_body');
			n++;
		}
		assert.ok(n >= 10);
	});

	test('HEAD is answered like GET', async () => {
		const r = await s.api('HEAD', '/healthz');
		assert.equal(r.status, 200);
		assert.equal(r.text, '');
	});
});

describe('when the database goes away', () => {
	let d;
	before(async () => {
		d = await startStack();
		await d.createTenant('acme', { addresses: ['81.2.69.0/24'] });
		const tok = d.token({ roles: ['tenant'], tenant: 'acme' });
		assert.equal((await d.api('GET', '/v1/requests', { token: tok })).status, 200, 'the pool is connected');
		const r = await run('bash', [path.join(SOURCE_DIR, 'scripts/testpg.sh'), 'stop', path.join(d.dir, 'pg')]);
		assert.equal(r.code, 0, r.stderr);
	});
	after(async () => {
		if (d) await d.stop();
	});

	test('liveness still answers; readiness is 503 with Retry-After', async () => {
		assert.equal((await d.api('GET', '/healthz')).status, 200);
		const r = await d.api('GET', '/readyz');
		assert.equal(r.status, 503, r.text);
		assert.equal(r.headers.get('content-type'), 'application/json');
		assert.equal(r.json.status, 'unavailable');
		assert.equal(r.json.reason, 'database not reachable');
		assert.ok(Number(r.headers.get('retry-after')) >= 1);
	});

	test('a call that needs the database → 503 problem with Retry-After', async () => {
		const tok = d.token({ roles: ['tenant'], tenant: 'acme' });
		for (const [m, p, body] of [['GET', '/v1/requests'], ['GET', '/v1/requests/0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11'],
			['POST', '/v1/requests', { addresses: ['81.2.69.5'], use_case: 'other' }]]) {
			const r = await d.api(m, p, { token: tok, body });
			assert.equal(r.status, 503, `${m} ${p}: ${r.text}`);
			assert.equal(r.headers.get('content-type'), 'application/problem+json');
			assert.match(r.json.code, /^database_/);
			assert.ok(Number(r.headers.get('retry-after')) >= 1);
		}
	});

	test('/metrics still answers, and says the database is down', async () => {
		const r = await d.api('GET', '/metrics');
		assert.equal(r.status, 200);
		assert.match(r.text, /p25_http_requests_total/);
		assert.doesNotMatch(r.text, /^p25_db_up 1$/m);
	});
});
