// jose_interop.test.mjs — exemption tokens interoperate with a standard JOSE
// library (npm `jose`) both ways, and a signing-key rotation happens without
// a failed verification on the enforcement agents (issue 5).
//
//   1. tokens p25 issues (a request approved for real by the policy: the
//      worker vets it against the local DNS) verify with jose's jwtVerify
//      against /.well-known/jwks.json (createLocalJWKSet), alg EdDSA, typ
//      p25-exemption+jwt, issuer;
//   2. EdDSA tokens jose makes (SignJWT, an Ed25519 key exported as a JWK)
//      verify with p25's library: `p25ctl token verify TOKEN --jwks FILE`;
//   3. jose-made tokens p25 must refuse: other typ, HS256, alg none, unknown
//      kid, a known kid with another key's signature, expired, other issuer;
//   4. rotation: `p25ctl keys rotate` while agents follow the feed.  The
//      agent with --accept-new-keys (API on loopback) learns the new key
//      before it checks the first token signed with it; the pinned-only agent
//      is re-pinned by its operator right after the rotation (new JWKS +
//      SIGHUP).  Neither logs a refused token; old tokens keep verifying
//      (the JWKS keeps the old key).  A third agent whose operator forgot to
//      re-pin refuses the new token with a hint, and recovers after the
//      re-pin (a full snapshot picks up what it skipped).
//
// The agents load their rule sets through `--nft true` (a program that
// accepts anything): this test is about keys and tokens, not the kernel
// (enforce_netns.test.mjs is about the kernel).
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { BUILD_DIR, sleep, startStack } from '../lib/harness.mjs';

const ENFORCER = path.resolve(BUILD_DIR, 'p25-enforcer');
const ISS = 'p25';
const TYP = 'p25-exemption+jwt';
// clockTolerance: core/issue.c takes iat/nbf as extract(epoch FROM now())::bigint,
// which rounds to the nearest second: in the second half of a second a fresh
// token's nbf lies up to 0.5 s in the future, and jose (tolerance 0 by
// default) refuses it for that moment ("nbf" claim timestamp check failed).
// Reported; a second of tolerance keeps this test about interoperability.
const VERIFY_OPTS = { algorithms: ['EdDSA'], typ: TYP, issuer: ISS, clockTolerance: 1 };

let s;
let tenant;
let enforcer;
let dir;
const granted = {}; // address → {exemption, token}

before(async () => {
	s = await startStack({
		dns: {
			dnsbl: { 'zen.test': [] },
			hosts: [['mail.acme.example', '81.2.69.5'], ['mail2.acme.example', '81.2.69.6']],
			txt: [['acme.example', 'v=spf1 ip4:81.2.69.0/26 -all'], ['_dmarc.acme.example', 'v=DMARC1; p=reject']],
			local: ['acme.example', '69.2.81.in-addr.arpa'],
		},
	});
	const g = await s.ctl(['keys', 'generate']);
	assert.equal(g.code, 0, g.stderr + g.stdout);
	await s.createTenant('acme', { addresses: ['81.2.69.0/26'] });
	s.startWorker();
	tenant = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
	enforcer = s.token({ sub: 'node-1', roles: ['enforcer'], ttl: 3600 });
	dir = path.join(s.dir, 'jose');
	fs.mkdirSync(dir);
});
after(async () => {
	if (s) await s.stop();
});

async function waitFor(fn, timeoutMs, what) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for: ${what}`);
		await sleep(50);
	}
}

/** Files a request for one address, waits for the policy's approval; its exemption and token. */
async function approve(address) {
	const r = await s.api('POST', '/v1/requests', { token: tenant, body: {
		addresses: [address], use_case: 'transactional', description: 'receipts',
		sender_domains: ['acme.example'], expected_daily_volume: 100, contact_email: 'ops@acme.example' } });
	assert.equal(r.status, 202, r.text);
	const done = await waitFor(async () => {
		const q = await s.api('GET', `/v1/requests/${r.json.id}`, { token: tenant });
		return ['pending', 'vetting'].includes(q.json?.status) ? null : q.json;
	}, 30000, `the decision on ${address}`);
	assert.equal(done.status, 'approved', JSON.stringify(done, null, 1));
	const ex = await s.api('GET', `/v1/exemptions/${done.exemptions[0]}`, { token: tenant });
	assert.equal(ex.status, 200, ex.text);
	assert.ok(ex.json.token, 'an active exemption carries its token');
	granted[address] = { exemption: ex.json.id, token: ex.json.token };
	return granted[address];
}

async function jwks() {
	const r = await s.api('GET', '/.well-known/jwks.json');
	assert.equal(r.status, 200);
	return r.json;
}

/** p25ctl token verify → {code, out} */
async function p25verify(token, jwksFile, issuer) {
	const r = await s.ctl(['token', 'verify', token, '--jwks', jwksFile, ...(issuer ? ['--issuer', issuer] : [])]);
	return { code: r.code, out: r.stdout + r.stderr };
}

function writeJson(name, v) {
	const f = path.join(dir, name);
	fs.writeFileSync(f, JSON.stringify(v));
	return f;
}

describe('p25 → jose', () => {
	test('tokens from an approval verify with jwtVerify and the published JWKS', async () => {
		const { exemption, token } = await approve('81.2.69.5');
		const set = await jwks();
		for (const k of set.keys) {
			assert.equal(k.kty, 'OKP');
			assert.equal(k.crv, 'Ed25519');
			assert.equal('d' in k, false, 'the JWKS must never carry a private key');
		}
		const snap = await s.api('GET', '/v1/enforcement/snapshot', { token: enforcer });
		assert.equal(snap.status, 200, snap.text);
		assert.ok(snap.json.tokens.includes(token), 'the snapshot holds the exemption token');
		for (const t of snap.json.tokens) {
			const { payload, protectedHeader } = await jose.jwtVerify(t, jose.createLocalJWKSet(set), VERIFY_OPTS);
			assert.equal(protectedHeader.alg, 'EdDSA');
			assert.equal(protectedHeader.typ, TYP);
			assert.ok(set.keys.some((k) => k.kid === protectedHeader.kid));
			// the kid is the key's RFC 7638 thumbprint
			const key = set.keys.find((k) => k.kid === protectedHeader.kid);
			assert.equal(await jose.calculateJwkThumbprint({ kty: key.kty, crv: key.crv, x: key.x }), key.kid);
			assert.equal(payload.jti, exemption);
			assert.equal(payload.sub, 'acme');
			assert.deepEqual({ ...payload.p25, request: undefined }, { cidr: '81.2.69.5/32', port: 25, proto: 'tcp',
				dir: 'egress', request: undefined });
			assert.ok(payload.exp > payload.iat && payload.nbf <= payload.iat + 1);
		}
		// the grant event's token is the same and verifies too
		const feed = await s.api('GET', '/v1/enforcement/feed?after=0&wait=0', { token: enforcer });
		const grant = feed.json.events.find((e) => e.type === 'grant' && e.exemption === exemption);
		assert.ok(grant, JSON.stringify(feed.json));
		await jose.jwtVerify(grant.token, jose.createLocalJWKSet(set), VERIFY_OPTS);
		// and jose itself refuses what it should
		await assert.rejects(jose.jwtVerify(token, jose.createLocalJWKSet(set), { ...VERIFY_OPTS, issuer: 'other' }),
			{ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
		await assert.rejects(jose.jwtVerify(token, jose.createLocalJWKSet(set), { ...VERIFY_OPTS, typ: 'JWT' }),
			{ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
		await assert.rejects(jose.jwtVerify(token, jose.createLocalJWKSet(set), { ...VERIFY_OPTS, algorithms: ['ES256'] }));
		// p25's own verifier agrees
		const v = await p25verify(token, writeJson('jwks-now.json', set));
		assert.equal(v.code, 0, v.out);
		assert.match(v.out, /^valid\n/);
		assert.match(v.out, /cidr 81\.2\.69\.5\/32/);
	});
});

describe('jose → p25', () => {
	let keyA; // {publicKey, privateKey, jwk, kid}
	let keyB;
	let jwksFile;
	const now = () => Math.floor(Date.now() / 1000);

	const scope = (extra = {}) => ({ cidr: '81.2.69.5/32', port: 25, proto: 'tcp', dir: 'egress',
		request: 'req-jose', ...extra });

	async function makeKey() {
		const { publicKey, privateKey } = await jose.generateKeyPair('EdDSA', { extractable: true });
		const jwk = await jose.exportJWK(publicKey);
		const kid = await jose.calculateJwkThumbprint(jwk);
		return { publicKey, privateKey, jwk: { ...jwk, kid, use: 'sig', alg: 'EdDSA' }, kid };
	}

	function sign(key, { header = {}, claims = {}, p25 = scope(), iss = 'https://jose.test', exp = '1h',
		nbf = now() - 5 } = {}) {
		const jwt = new jose.SignJWT({ p25, ...claims })
			.setProtectedHeader({ alg: 'EdDSA', typ: TYP, kid: key.kid, ...header })
			.setIssuer(iss).setSubject('tenant-jose').setJti('ex-jose-1')
			.setIssuedAt(nbf).setNotBefore(nbf);
		jwt.setExpirationTime(exp);
		return jwt.sign(key.privateKey);
	}

	before(async () => {
		keyA = await makeKey();
		keyB = await makeKey();
		jwksFile = writeJson('jose-jwks.json', { keys: [keyA.jwk] });
	});

	test('EdDSA tokens made by jose verify with p25ctl token verify', async () => {
		const t = await sign(keyA);
		const v = await p25verify(t, jwksFile, 'https://jose.test');
		assert.equal(v.code, 0, v.out);
		assert.match(v.out, /^valid\n/);
		assert.match(v.out, new RegExp(`kid ${keyA.kid}`));
		assert.match(v.out, /cidr 81\.2\.69\.5\/32\n/);
		assert.match(v.out, /jti ex-jose-1\n/);
		// with the optional scope: dest and rate
		const t2 = await sign(keyA, { p25: scope({ dest: ['192.0.2.0/24', '2001:db8::/32'], rate: 120 }) });
		const v2 = await p25verify(t2, jwksFile, 'https://jose.test');
		assert.equal(v2.code, 0, v2.out);
		assert.match(v2.out, /dest 192\.0\.2\.0\/24\ndest 2001:db8::\/32\nrate 120\/h/);
		// and the default issuer of p25ctl is the stack's (p25)
		const t3 = await sign(keyA, { iss: ISS });
		assert.equal((await p25verify(t3, jwksFile)).code, 0);
	});

	test('jose-made tokens that p25 must refuse are refused', async () => {
		const cases = [
			['typ JWT', await sign(keyA, { header: { typ: 'JWT' } }), 'bad_header'],
			['no typ', await new jose.SignJWT({ p25: scope() }).setProtectedHeader({ alg: 'EdDSA', kid: keyA.kid })
				.setIssuer('https://jose.test').setSubject('s').setJti('j').setIssuedAt().setNotBefore(now() - 5)
				.setExpirationTime('1h').sign(keyA.privateKey), 'bad_header'],
			['HS256', await new jose.SignJWT({ p25: scope() })
				.setProtectedHeader({ alg: 'HS256', typ: TYP, kid: keyA.kid }).setIssuer('https://jose.test')
				.setSubject('s').setJti('j').setIssuedAt().setNotBefore(now() - 5).setExpirationTime('1h')
				.sign(new TextEncoder().encode('a shared secret of at least 32 bytes!!')), 'bad_header'],
			['alg none', new jose.UnsecuredJWT({ p25: scope(), iss: 'https://jose.test', sub: 's', jti: 'j',
				iat: now(), nbf: now() - 5, exp: now() + 3600 }).encode(), 'bad_header'],
			['unknown kid', await sign(keyB), 'unknown_kid'],
			['known kid, other key', await sign(keyB, { header: { kid: keyA.kid } }), 'bad_signature'],
			['expired', await sign(keyA, { nbf: now() - 7200, exp: now() - 600 }), 'expired'],
			['other issuer', await sign(keyA, { iss: 'https://evil.test' }), 'bad_issuer'],
			['port 587', await sign(keyA, { p25: scope({ port: 587 }) }), 'bad_scope'],
			['unknown scope member', await sign(keyA, { p25: scope({ ttl: 5 }) }), 'bad_scope'],
			['jku header', await sign(keyA, { header: { jku: 'https://evil.test/jwks' } }), 'bad_header'],
		];
		for (const [name, token, why] of cases) {
			const v = await p25verify(token, jwksFile, 'https://jose.test');
			assert.equal(v.code, 1, `${name}: ${v.out}`);
			assert.equal(v.out.trim(), `invalid: ${why}`, name);
		}
	});
});

describe('key rotation while agents follow the feed', () => {
	const agents = {};

	function startAgent(name, pinFile, extra = []) {
		const state = path.join(dir, `state-${name}`);
		const a = s.spawn(`enforcer-${name}`, ENFORCER, ['--apply', '--api', s.url, '--token-file',
			path.join(dir, 'bearer'), '--jwks-pin', pinFile, '--state-dir', state, '--node', name,
			'--nft', 'true', '--wait', '20', '--backoff-max', '2', '--log-level', 'info', ...extra]);
		agents[name] = { proc: a, state, pin: pinFile };
		return a;
	}

	async function acked(name) {
		const r = await s.sql('SELECT acked_seq FROM enforcement_nodes WHERE node = $1', [name]);
		return r.length ? Number(r[0][0]) : -1;
	}

	async function grantSeq(exemption) {
		const r = await s.sql("SELECT max(seq) FROM feed_events WHERE exemption_id = $1 AND type = 'grant'", [exemption]);
		return Number(r[0][0]);
	}

	test('old tokens keep verifying, new ones verify once the agent has the key: no failed verification', async () => {
		fs.writeFileSync(path.join(dir, 'bearer'), `${enforcer}\n`, { mode: 0o600 });
		const before = await jwks();
		const oldKid = before.keys[0].kid;
		const t1 = granted['81.2.69.5'] ?? await approve('81.2.69.5');
		const pinA = writeJson('pin-auto.json', before);
		const pinB = writeJson('pin-operator.json', before);
		const pinC = writeJson('pin-forgotten.json', before);
		startAgent('auto-1', pinA, ['--accept-new-keys']);
		startAgent('pinned-1', pinB);
		startAgent('forgot-1', pinC);
		const seq1 = await grantSeq(t1.exemption);
		for (const n of ['auto-1', 'pinned-1', 'forgot-1']) {
			await waitFor(async () => (await acked(n)) >= seq1, 20000, `${n} applied the first token`);
		}

		// rotate: a new active key; the JWKS publishes both
		const rot = await s.ctl(['keys', 'rotate']);
		assert.equal(rot.code, 0, rot.stderr + rot.stdout);
		const afterRot = await jwks();
		assert.equal(afterRot.keys.length, 2, JSON.stringify(afterRot));
		const newKid = afterRot.keys.find((k) => k.kid !== oldKid).kid;
		// the operator re-pins the pinned-only node: new JWKS, SIGHUP
		fs.writeFileSync(pinB, JSON.stringify(afterRot));
		agents['pinned-1'].proc.kill('SIGHUP');
		await waitFor(() => /"event":"reloaded"[^\n]*"trusted_keys":2/.test(agents['pinned-1'].proc.logText()), 10000,
			'pinned-1 reloads its pin');

		// the old token still verifies against the new JWKS (jose and p25)
		await jose.jwtVerify(t1.token, jose.createLocalJWKSet(afterRot), VERIFY_OPTS);
		assert.equal((await p25verify(t1.token, writeJson('jwks-rotated.json', afterRot))).code, 0);

		// a new approval: signed by the new key
		const t2 = await approve('81.2.69.6');
		assert.equal(jose.decodeProtectedHeader(t2.token).kid, newKid);
		await jose.jwtVerify(t2.token, jose.createLocalJWKSet(afterRot), VERIFY_OPTS);
		const v2 = await p25verify(t2.token, path.join(dir, 'jwks-rotated.json'));
		assert.equal(v2.code, 0, v2.out);
		const seq2 = await grantSeq(t2.exemption);
		for (const n of ['auto-1', 'pinned-1']) {
			await waitFor(async () => (await acked(n)) >= seq2, 20000, `${n} applied the new token`);
		}
		const auto = agents['auto-1'].proc.logText();
		assert.match(auto, /"event":"keys_refreshed","why":"unknown_kid","added":1/, auto);
		for (const n of ['auto-1', 'pinned-1']) {
			const text = agents[n].proc.logText();
			assert.doesNotMatch(text, /token_rejected/, `${n} refused a token during the rotation:\n${text}`);
			assert.match(text, new RegExp(`"event":"grant"[^\\n]*"exemption":"${t2.exemption}"[^\\n]*"result":"added"`));
		}

		// the node whose operator forgot: refuses the new token (it acks the position,
		// having applied all it could verify), says why, and recovers after the re-pin
		await waitFor(() => /"event":"token_rejected"/.test(agents['forgot-1'].proc.logText()), 20000,
			'forgot-1 refuses the token of the unpinned key');
		const forgot = agents['forgot-1'].proc.logText();
		assert.match(forgot, new RegExp(`"event":"token_rejected","reason":"unknown_kid","kid":"${newKid}"`));
		assert.match(forgot, /"hint":"[^"]*SIGHUP/);
		fs.writeFileSync(pinC, JSON.stringify(afterRot));
		// only what it logs after the SIGHUP counts: its first snapshot also added one token
		const mark = agents['forgot-1'].proc.logText().length;
		agents['forgot-1'].proc.kill('SIGHUP');
		await waitFor(() => new RegExp(`"event":"snapshot"[^\\n]*"added":1`)
			.test(agents['forgot-1'].proc.logText().slice(mark)),
			20000, 'forgot-1 takes a full snapshot with the new token');

		// every agent ends with both tokens in its state file (saved at SIGTERM)
		for (const [n, a] of Object.entries(agents)) {
			const st = await a.proc.stop(5000);
			assert.equal(st.code, 0, `${n} exit ${JSON.stringify(st)}`);
			const state = JSON.parse(fs.readFileSync(path.join(a.state, 'state.json'), 'utf8'));
			assert.ok(state.tokens.includes(t1.token), `${n}: old-key token missing`);
			assert.ok(state.tokens.includes(t2.token), `${n}: new-key token missing`);
		}
		// the auto node kept what it learned, next to the pin it never changed
		const learned = JSON.parse(fs.readFileSync(path.join(agents['auto-1'].state, 'jwks.learned.json'), 'utf8'));
		assert.deepEqual(learned.keys.map((k) => k.kid), [newKid]);
		assert.deepEqual(JSON.parse(fs.readFileSync(pinA, 'utf8')), before);
	});
});
