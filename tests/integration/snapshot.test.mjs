// The enforcement snapshot's cache (api/enforcement.c): p25-api keeps the
// last body it built and answers later fetches at the same feed position
// from memory.  What must hold: a body is served only for the position it
// names (a new event means a new body), a token whose expires_at passed is
// never served (expiry writes no event: the cache knows its earliest
// expiry), fetches at once share one build, and ETag/304 stay the position.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor } from '../lib/harness.mjs';

let s;
let tok; // tenant acme
let rev; // reviewer
let enf; // enforcer

before(async () => {
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000', P25_LOG_LEVEL: 'debug' } });
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, `p25ctl keys generate: ${k.stderr}${k.stdout}`);
	await s.createTenant('acme', { addresses: ['81.2.69.0/24'] });
	tok = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
	rev = s.token({ sub: 'rev-anna', roles: ['reviewer'] });
	enf = s.token({ sub: 'node-1', roles: ['enforcer'] });
});
after(async () => {
	if (s) await s.stop();
});

/** Files a request for addr as acme and has the reviewer approve it: its exemption id. */
async function approved(addr) {
	const c = await s.api('POST', '/v1/requests', { token: tok, body: { addresses: [addr], use_case: 'transactional' } });
	assert.equal(c.status, 202, c.text);
	await s.sql("UPDATE requests SET status = 'needs_review' WHERE id = $1", [c.json.id]);
	const d = await s.api('POST', `/v1/review/requests/${c.json.id}/decision`, { token: rev,
		body: { decision: 'approve', note: 'ok' } });
	assert.equal(d.status, 200, d.text);
	return d.json.exemptions[0];
}

async function snapshot(headers = {}) {
	const r = await s.api('GET', '/v1/enforcement/snapshot', { token: enf, headers });
	if (r.status === 200) {
		assert.equal(r.headers.get('etag'), `"s${r.json.seq}"`, 'the ETag names the body\'s position');
	}
	return r;
}

/** The snapshot.served log lines of p25-api so far, by how they were answered. */
function served() {
	const n = { built: 0, cached: 0, waited: 0 };
	for (const line of s.apiProc.logText().split('\n')) {
		const m = line.includes('"snapshot.served"') && /seq \d+, \d+ bytes, (built|cached|waited) in/.exec(line);
		if (m) n[m[1]]++;
	}
	return n;
}

async function currentJws(exemption) {
	const [[jws]] = await s.sql('SELECT jws FROM tokens WHERE exemption_id = $1 AND current', [exemption]);
	return jws;
}

describe('snapshot cache', () => {
	let exA, exB;
	before(async () => {
		exA = await approved('81.2.69.40');
		exB = await approved('81.2.69.41');
	});

	test('a second fetch at the same position is the same body, from memory', async () => {
		const n0 = served();
		const a = await snapshot();
		assert.equal(a.status, 200, a.text);
		const b = await snapshot();
		assert.equal(b.status, 200, b.text);
		assert.equal(b.text, a.text);
		const n1 = served();
		assert.equal(n1.built - n0.built, 1, 'built once');
		assert.equal(n1.cached - n0.cached, 1, 'then answered from memory');
		assert.ok(a.json.tokens.includes(await currentJws(exA)));
		assert.ok(a.json.tokens.includes(await currentJws(exB)));
	});

	test('a new event: a new position, a new body; 304 only for the current position', async () => {
		const a = await snapshot();
		const old = a.headers.get('etag');
		assert.equal((await snapshot({ 'If-None-Match': old })).status, 304);
		// the tenant gives B up: a revoke event
		assert.equal((await s.api('DELETE', `/v1/exemptions/${exB}`, { token: tok })).status, 200);
		const b = await snapshot({ 'If-None-Match': old });
		assert.equal(b.status, 200, 'the old ETag no longer matches');
		assert.ok(b.json.seq > a.json.seq);
		assert.equal(b.json.tokens.length, a.json.tokens.length - 1);
		assert.ok(b.json.tokens.includes(await currentJws(exA)));
		assert.equal((await snapshot({ 'If-None-Match': b.headers.get('etag') })).status, 304);
		// and the body cached at the new position is the new one
		const c = await snapshot();
		assert.equal(c.text, b.text);
	});

	test('a token whose expiry passes leaves the snapshot, with no event, cache or not', async () => {
		// A's token expires in 6 s; a grant (an event) makes the next fetch build with it
		await s.sql("UPDATE tokens SET expires_at = now() + interval '6 seconds' WHERE exemption_id = $1 AND current",
			[exA]);
		const exC = await approved('81.2.69.42');
		const jwsA = await currentJws(exA);
		const a = await snapshot();
		assert.ok(a.json.tokens.includes(jwsA), 'A is still valid');
		assert.ok(a.json.tokens.includes(await currentJws(exC)));
		const n0 = served();
		const again = await snapshot();
		assert.equal(again.text, a.text);
		assert.equal(served().cached - n0.cached, 1, 'from memory while nothing expired');
		// past A's expiry: the same position, A gone — built again, not the cached body
		const [[left]] = await s.sql(
			'SELECT extract(epoch FROM expires_at - now()) FROM tokens WHERE exemption_id = $1 AND current', [exA]);
		await new Promise((r) => setTimeout(r, Math.max(0, Number(left) * 1000) + 300));
		const n1 = served();
		const b = await snapshot();
		assert.equal(b.status, 200);
		assert.equal(b.json.seq, a.json.seq, 'no event was written');
		assert.equal(b.headers.get('etag'), a.headers.get('etag'));
		assert.ok(!b.json.tokens.includes(jwsA), 'the expired token is not served');
		assert.equal(b.json.tokens.length, a.json.tokens.length - 1);
		assert.equal(served().built - n1.built, 1, 'rebuilt');
		// and the new body is cached in turn
		const c = await snapshot();
		assert.equal(c.text, b.text);
	});

	test('fetches at once share one build', async () => {
		await approved('81.2.69.43');	// a new position: nothing cached for it
		const n0 = served();
		const all = await Promise.all(Array.from({ length: 8 }, () => snapshot()));
		for (const r of all) {
			assert.equal(r.status, 200, r.text);
			assert.equal(r.text, all[0].text);
		}
		const n1 = served();
		assert.equal(n1.built - n0.built, 1, `one build for 8 fetches: ${JSON.stringify(n1)}`);
		assert.equal(n1.built + n1.cached + n1.waited - (n0.built + n0.cached + n0.waited), 8);
	});

	test('built while events are written: exactly the tokens the feed gives up to its position', async () => {
		// The body is written row by row as PostgreSQL sends them, while
		// grants and revokes commit; it must still be the state at its seq:
		// replaying the feed up to seq gives the same tokens (of the
		// exemptions made here), and no other position's.
		const mine = [];
		for (let i = 0; i < 3; i++) mine.push(await approved(`81.2.69.${50 + i}`));
		const bodies = [];
		for (let round = 0; round < 4; round++) {
			const writes = round % 2
				? s.api('DELETE', `/v1/exemptions/${mine[round]}`, { token: tok }).then((r) => r.status)
				: approved(`81.2.69.${60 + round}`).then((id) => { mine.push(id); return 200; });
			const [snap, w] = await Promise.all([snapshot(), writes]);
			assert.equal(snap.status, 200, snap.text);
			assert.equal(w, 200);
			bodies.push(snap);
		}
		bodies.push(await snapshot());
		const events = await s.feedEvents(0, enf);
		const ever = new Set((await s.sql('SELECT jws FROM tokens WHERE exemption_id = ANY($1::uuid[])', [mine]))
			.map(([j]) => j));
		for (const b of bodies) {
			const at = new Map();
			for (const e of events) {
				if (e.seq > b.json.seq || !mine.includes(e.exemption)) continue;
				if (e.type === 'revoke') at.delete(e.exemption);
				else at.set(e.exemption, e.token);
			}
			assert.deepEqual(b.json.tokens.filter((j) => ever.has(j)).sort(), [...at.values()].sort(),
				`the body at seq ${b.json.seq}`);
		}
		// the last one, fetched again: the same bytes, from memory
		const n0 = served();
		const again = await snapshot();
		assert.equal(again.text, bodies.at(-1).text);
		assert.equal(served().cached - n0.cached, 1);
	});

	test('the body is the database\'s snapshot: the same tokens as a query at that position', async () => {
		const r = await snapshot();
		const rows = await s.sql("SELECT t.jws FROM tokens t JOIN exemptions e ON e.id = t.exemption_id"
			+ " WHERE t.current AND e.status = 'active' AND t.expires_at > now()");
		assert.deepEqual([...r.json.tokens].sort(), rows.map(([j]) => j).sort());
		await waitFor(() => served().built > 0, { what: 'the log' });
	});

	test('a token text that needs JSON escaping is escaped, the others copied as they are', async () => {
		// p25 writes only base64url and dots; the column is text all the same
		const ex = await approved('81.2.69.70');
		const odd = `${await currentJws(ex)}"\\\u00e9\n`;
		await s.sql('UPDATE tokens SET jws = $2 WHERE exemption_id = $1 AND current', [ex, odd]);
		await approved('81.2.69.71');	// an event: the next fetch builds
		const r = await snapshot();
		assert.equal(r.status, 200, r.text);
		assert.ok(r.json.tokens.includes(odd), 'the odd token, read back exactly');
		// as JSON: a newline inside a value would split a row of s.sql's output
		const [[all]] = await s.sql("SELECT json_agg(t.jws)::text FROM tokens t JOIN exemptions e"
			+ " ON e.id = t.exemption_id WHERE t.current AND e.status = 'active' AND t.expires_at > now()");
		assert.deepEqual([...r.json.tokens].sort(), JSON.parse(all).sort());
	});
});
