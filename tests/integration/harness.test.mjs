// The harness itself: a stack comes up (cluster, migrations, p25-api), talks
// HTTP and SQL, makes tenants, signs tokens, runs p25ctl, and goes away
// leaving nothing behind.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Resolver } from 'node:dns/promises';
import { startStack, signJwt, waitFor } from '../lib/harness.mjs';

let s;
before(async () => {
	s = await startStack({ env: { P25_RATE_LIMIT: '5' } });
});
after(async () => {
	if (s) await s.stop();
});

test('the api answers /healthz and /readyz', async () => {
	assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
	const h = await s.api('GET', '/healthz');
	assert.equal(h.status, 200, h.text);
	const r = await s.api('GET', '/readyz');
	assert.equal(r.status, 200, r.text);
	assert.equal(s.env.P25_RATE_LIMIT, '5');
	assert.ok(s.env.P25_DATABASE_URL.includes('user=p25_app'));
});

test('sql runs as the owner, with parameters, rows as strings', async () => {
	assert.deepEqual(await s.sql('SELECT current_user, 1 + 1'), [['p25_owner', '2']]);
	assert.deepEqual(await s.sql('SELECT $1::text, $2::int + 1, $3::text IS NULL', ["it's \"quoted\" :x $$", 41, null]),
		[["it's \"quoted\" :x $$", '42', 't']]);
	// tabs and newlines in values: sqlJson
	assert.deepEqual(await s.sqlJson('SELECT $1::text AS v', ['a\tb\nc']), [{ v: 'a\tb\nc' }]);
	assert.deepEqual(await s.sql('SELECT 1 WHERE false'), []);
	await assert.rejects(s.sql('SELECT * FROM no_such_table'), /no_such_table/);
	const j = await s.sqlJson('SELECT $1::text AS a, 2 AS b, $2::text[] AS c', ['x', ['p', 'q r']]);
	assert.deepEqual(j, [{ a: 'x', b: 2, c: ['p', 'q r'] }]);
	// the migrations ran
	const [[n]] = await s.sql('SELECT count(*) FROM schema_migrations');
	assert.ok(Number(n) >= 1);
});

test('createTenant writes the tenant and its inventory', async () => {
	await s.createTenant('t1', { addresses: ['81.2.69.0/26', '2a02:ff0:1::/48'], ageDays: 30, verified: false });
	const [t] = await s.sqlJson(`SELECT id, name, verified, standing,
		(now() - account_created_at) BETWEEN interval '29 days' AND interval '31 days' AS age_ok
		FROM tenants WHERE id = $1`, ['t1']);
	assert.deepEqual(t, { id: 't1', name: 'Tenant t1', verified: false, standing: 'good', age_ok: true });
	const prefixes = await s.sql('SELECT prefix FROM tenant_addresses WHERE tenant_id = $1 ORDER BY prefix', ['t1']);
	assert.deepEqual(prefixes.flat().sort(), ['2a02:ff0:1::/48', '81.2.69.0/26']);
	await s.createTenant('t2');
	assert.deepEqual(await s.sql("SELECT count(*) FROM tenant_addresses WHERE tenant_id = 't2'"), [['0']]);
});

test('tokens are HS256 JWTs over the stack secret; forgeries are easy to make', () => {
	const tok = s.token({ sub: 'u1', roles: ['tenant'], tenant: 't1' });
	const [h, p, sig] = tok.split('.');
	const header = JSON.parse(Buffer.from(h, 'base64url'));
	const claims = JSON.parse(Buffer.from(p, 'base64url'));
	assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
	assert.equal(claims.iss, 'p25-test-idp');
	assert.equal(claims.aud, 'p25');
	assert.equal(claims.tenant, 't1');
	assert.ok(claims.exp > claims.iat);
	const secret = fs.readFileSync(s.env.P25_AUTH_KEY_FILE, 'utf8').trim();
	assert.equal(sig, crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url'));
	assert.match(s.token({ alg: 'none' }), /\.$/);
	assert.ok(!('exp' in JSON.parse(Buffer.from(s.token({ exp: null }).split('.')[1], 'base64url'))));
	assert.equal(signJwt({ alg: 'HS256' }, {}, 'k').split('.').length, 3);
});

test('a bearer token from the harness is accepted where one from elsewhere is not', async (t) => {
	// a route behind authentication: without a token → 401, with ours not 401
	const anon = await s.api('GET', '/v1/requests');
	if (anon.status === 404) return t.skip('GET /v1/requests is not routed yet');
	assert.equal(anon.status, 401, anon.text);
	const ok = await s.api('GET', '/v1/requests', { token: s.token({ sub: 'u1', roles: ['tenant'], tenant: 't1' }) });
	assert.notEqual(ok.status, 401, ok.text);
	const bad = await s.api('GET', '/v1/requests', { token: s.token({ tenant: 't1', iss: 'someone-else' }) });
	assert.equal(bad.status, 401, bad.text);
});

test('ctl runs p25ctl with the stack environment', async () => {
	const r = await s.ctl(['--check-config']);
	assert.equal(r.code, 0, r.stderr);
	const bad = await s.ctl(['--check-config'], { env: { P25_DB_POOL_SIZE: 'lots' } });
	assert.notEqual(bad.code, 0);
	assert.match(bad.stderr + bad.stdout, /P25_DB_POOL_SIZE/);
});

test('p25ctl dev-token --count mints one token a line, the api takes each as its own tenant', async () => {
	await s.createTenant('dtc1', { addresses: ['81.2.80.0/28'] });
	await s.createTenant('dtc2', { addresses: ['81.2.80.16/28'] });
	const r = await s.ctl(['dev-token', '--sub', 'bench-user-', '--roles', 'tenant',
		'--tenant', 'dtc', '--ttl', '600', '--count', '2']);
	assert.equal(r.code, 0, r.stderr);
	const toks = r.stdout.trim().split('\n');
	assert.equal(toks.length, 2);
	for (const [i, tok] of toks.entries()) {
		const claims = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString());
		assert.equal(claims.sub, `bench-user-${i + 1}`);
		assert.equal(claims.tenant, `dtc${i + 1}`);
		const who = await s.api('GET', '/v1/whoami', { token: tok });
		assert.equal(who.status, 200, who.text);
		assert.equal(who.json.tenant, `dtc${i + 1}`);
	}
	// one token without --count, as before; a bad count is a usage error
	const one = await s.ctl(['dev-token', '--sub', 'u', '--roles', 'tenant', '--tenant', 'dtc1']);
	assert.equal(one.code, 0, one.stderr);
	assert.equal(one.stdout.trim().split('\n').length, 1);
	for (const bad of ['0', '-1', '2x', '1000001']) {
		const b = await s.ctl(['dev-token', '--sub', 'u', '--roles', 'tenant', '--count', bad]);
		assert.equal(b.code, 64, `--count ${bad}: ${b.stderr}`);
		assert.match(b.stderr, /--count/);
		assert.equal(b.stdout, '');
	}
});

test('startApi replaces the api; a second instance runs beside it', async () => {
	const old = s.apiProc;
	const url = s.url;
	await s.startApi({ P25_LOG_LEVEL: 'error' });
	assert.ok(!old.running);
	assert.equal(s.url, url);
	assert.equal((await s.api('GET', '/healthz')).status, 200);
	const second = await s.startApi({}, { replace: false });
	assert.notEqual(second.url, s.url);
	assert.equal((await s.api('GET', '/healthz', { baseUrl: second.url })).status, 200);
	const st = await second.stop();
	assert.ok(st.code === 0 || st.signal === 'SIGTERM', JSON.stringify(st));
});

test('startDns serves PTR, A, TXT and a DNSBL zone on loopback', async () => {
	const d = await s.startDns({
		dnsbl: { 'zen.test': ['81.2.69.40', '81.2.69.42 :127.255.255.254:error answer'] },
		hosts: [['mail.example.com', '81.2.69.5', '2a02:ff0:1::25']],
		ptr: [['81.2.69.7', 'ghost.example.com']],
		txt: [['example.com', 'v=spf1 ip4:81.2.69.0/26 -all']],
		local: ['example.com', '69.2.81.in-addr.arpa'],
	});
	assert.equal(s.env.P25_DNS_SERVERS, d.servers);
	assert.equal(s.env.P25_DNSBL_ZONES, 'zen.test');
	const r = new Resolver({ timeout: 1000, tries: 2 });
	r.setServers([d.servers]);
	assert.deepEqual(await r.reverse('81.2.69.5'), ['mail.example.com']);
	assert.deepEqual(await r.resolve4('mail.example.com'), ['81.2.69.5']);
	assert.deepEqual(await r.reverse('2a02:ff0:1::25'), ['mail.example.com']);
	assert.deepEqual(await r.reverse('81.2.69.7'), ['ghost.example.com']);
	await assert.rejects(r.resolve4('ghost.example.com'), { code: 'ENOTFOUND' });
	await assert.rejects(r.reverse('81.2.69.9'), { code: 'ENOTFOUND' });
	assert.deepEqual(await r.resolveTxt('example.com'), [['v=spf1 ip4:81.2.69.0/26 -all']]);
	assert.deepEqual(await r.resolve4('2.0.0.127.zen.test'), ['127.0.0.2']);
	await assert.rejects(r.resolve4('1.0.0.127.zen.test'), { code: 'ENOTFOUND' });
	assert.deepEqual(await r.resolve4('40.69.2.81.zen.test'), ['127.0.0.2']);
	assert.deepEqual(await r.resolve4('42.69.2.81.zen.test'), ['127.255.255.254']);
	await assert.rejects(r.resolve4('5.69.2.81.zen.test'), { code: 'ENOTFOUND' });
	// a worker started now gets the DNS settings
	const w = s.startWorker();
	await new Promise((res) => setTimeout(res, 2000));
	assert.ok(w.running, `the worker stopped: ${w.logText()}`);
	assert.equal(w.env?.P25_DNS_SERVERS ?? s.env.P25_DNS_SERVERS, d.servers);
	await w.stop();
});

test('stop removes everything', async () => {
	const other = await startStack({ api: false, migrate: false });
	const dir = other.dir;
	assert.ok(fs.existsSync(path.join(dir, 'pg/data/PG_VERSION')));
	await other.stop();
	assert.ok(!fs.existsSync(dir) || process.env.P25_KEEP === '1');
});
