// The route table and openapi.yaml must not drift (STYLE.md §12): every row
// of `p25-api --routes` is an operation of the spec and every operation of the
// spec a row.  The rows of api/routes.c also say who may call a route and
// whether it takes a body: those must match the operation's `security` and
// `requestBody`.  No stack needed.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BUILD_DIR, SOURCE_DIR, run } from '../lib/harness.mjs';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const spec = YAML.parse(fs.readFileSync(path.join(SOURCE_DIR, 'openapi.yaml'), 'utf8'));

function specOperations() {
	const ops = [];
	for (const [p, item] of Object.entries(spec.paths ?? {})) {
		for (const m of METHODS) if (item[m]) ops.push({ method: m.toUpperCase(), path: p, op: item[m] });
	}
	return ops;
}

async function codeRoutes() {
	const r = await run(path.resolve(BUILD_DIR, 'p25-api'), ['--routes']);
	assert.equal(r.code, 0, `p25-api --routes failed: ${r.stderr}`);
	const rows = r.stdout.split('\n').filter(Boolean).map((line) => {
		const m = /^([A-Z]+) (\/\S*)$/.exec(line);
		assert.ok(m, `p25-api --routes printed an odd line: ${JSON.stringify(line)}`);
		return { method: m[1], path: m[2] };
	});
	assert.ok(rows.length > 0, 'p25-api --routes printed no route');
	return rows;
}

const key = (x) => `${x.method} ${x.path}`;

test('every route of p25-api is an operation of openapi.yaml', async () => {
	const ops = new Set(specOperations().map(key));
	const missing = (await codeRoutes()).map(key).filter((k) => !ops.has(k));
	assert.deepEqual(missing, [], `routes the spec does not describe:\n  ${missing.join('\n  ')}`);
});

test('every operation of openapi.yaml is a route of p25-api', async () => {
	const routes = new Set((await codeRoutes()).map(key));
	const missing = specOperations().map(key).filter((k) => !routes.has(k));
	assert.deepEqual(missing, [], `operations no route serves:\n  ${missing.join('\n  ')}`);
});

test('no route is listed twice', async () => {
	const seen = new Set();
	const dup = [];
	for (const k of (await codeRoutes()).map(key)) {
		if (seen.has(k)) dup.push(k);
		seen.add(k);
	}
	assert.deepEqual(dup, []);
});

test('operations have unique operationIds and path parameters as the route names them', () => {
	const ids = new Map();
	for (const { method, path: p, op } of specOperations()) {
		assert.ok(op.operationId, `${method} ${p} has no operationId`);
		assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is used twice`);
		ids.set(op.operationId, `${method} ${p}`);
		const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
		const params = [...(spec.paths[p].parameters ?? []), ...(op.parameters ?? [])]
			.map((x) => (x.$ref ? resolve(x.$ref) : x)).filter((x) => x.in === 'path').map((x) => x.name);
		assert.deepEqual(params.sort(), names.sort(), `${method} ${p}: path parameters`);
	}
});

function resolve(ref) {
	return ref.replace(/^#\//, '').split('/').reduce((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
}

// api/routes.c rows: { "GET", "/v1/requests", req_list, T, ROUTE_DB },
function routeRows() {
	const src = fs.readFileSync(path.join(SOURCE_DIR, 'api/routes.c'), 'utf8');
	const rows = [];
	const re = /\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*,\s*([^,]+?)\s*,\s*([^}]+?)\s*\}/g;
	for (const m of src.matchAll(re)) {
		const roles = m[4] === '0' ? [] : m[4].split('|').map((x) => x.trim());
		const flags = m[5].split('|').map((x) => x.trim());
		rows.push({ method: m[1], path: m[2], roles, flags });
	}
	return rows;
}

const ROLE = { T: 'tenant', R: 'reviewer', A: 'admin', E: 'enforcer', P: 'reporter',
	P25_ROLE_TENANT: 'tenant', P25_ROLE_REVIEWER: 'reviewer', P25_ROLE_ADMIN: 'admin',
	P25_ROLE_ENFORCER: 'enforcer', P25_ROLE_REPORTER: 'reporter' };

test('security and request bodies in the spec match the flags and roles of api/routes.c', async () => {
	const rows = routeRows();
	assert.equal(rows.length, (await codeRoutes()).length, 'could not read every row of api/routes.c');
	const ops = new Map(specOperations().map((o) => [key(o), o.op]));
	const problems = [];
	for (const row of rows) {
		const op = ops.get(key(row));
		if (!op) continue; // reported by the tests above
		const security = op.security ?? spec.security ?? [];
		const isPublic = row.flags.includes('ROUTE_PUBLIC');
		if (isPublic && security.length !== 0) problems.push(`${key(row)} is public: its security must be []`);
		if (!isPublic) {
			const scopes = security.flatMap((s) => s.bearer ?? null);
			if (security.length === 0 || scopes.includes(null)) {
				problems.push(`${key(row)} needs a bearer token: its security must name the bearer scheme`);
			} else {
				const want = row.roles.map((r) => ROLE[r] ?? `?${r}`).sort();
				if (JSON.stringify([...scopes].sort()) !== JSON.stringify(want)) {
					problems.push(`${key(row)}: roles in the spec ${JSON.stringify(scopes)}, in routes.c ${JSON.stringify(want)}`);
				}
			}
		}
		const takesBody = row.flags.includes('ROUTE_BODY');
		if (takesBody !== Boolean(op.requestBody)) {
			problems.push(`${key(row)}: ${takesBody ? 'takes a body the spec does not describe' : 'the spec describes a body the route refuses'}`);
		}
	}
	assert.deepEqual(problems, []);
});
