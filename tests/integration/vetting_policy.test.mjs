// The vetting policy as data, and recheck (issue 4), against real DNS on
// loopback (rbldnsd + dnsmasq, a node responder for one PTR that changes).
//
// The stack runs with a custom policy (P25_POLICY_FILE, version "test-1":
// PBL → deny, a 3-second recheck interval, 7 days before a new request):
// its decisions carry its version and its actions; `p25ctl policy check`
// accepts it and refuses broken ones with a clear message.  Recheck: a
// denial for a listing, once the listing is gone from the zone, rechecks to
// an approval; a recheck too soon answers 429 with Retry-After; a denial a
// recheck cannot change answers 409; a needs_info request whose PTR was
// published rechecks to an approval.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, sleep } from '../lib/harness.mjs';
import { startDns, startResponder, reverseName } from '../lib/dns.mjs';

const ZONE = 'zen.test';
const INTERVAL = 3; // recheck_interval_seconds of the test policy
const POLICY = {
	version: 'test-1',
	description: 'PBL is a denial here; rechecks every 3 s',
	actions: { dnsbl_pbl: 'deny', spf_missing: 'ignore' },
	recheck_interval_seconds: INTERVAL,
	deny_reapply_days: 7,
};

let s;
let dns;
let resp;
let ptrFixed = false;
// policy files live in the stack's folder (removed with it)
const policyFile = (name, content) => {
	const f = path.join(s.dir, name);
	fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
	return f;
};

let n = 0;
async function tenant(addresses, opts = {}) {
	const id = `p${++n}`;
	await s.createTenant(id, { addresses, ...opts });
	return { id, token: s.token({ sub: `${id}-user`, tenant: id }) };
}

async function submit(t, addresses, extra = {}) {
	const r = await s.api('POST', '/v1/requests', { token: t.token,
		body: { addresses, use_case: 'transactional', ...extra } });
	assert.equal(r.status, 202, r.text);
	return r.json.id;
}

async function settled(t, id, timeoutMs = 60000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const g = await s.api('GET', `/v1/requests/${id}`, { token: t.token });
		assert.equal(g.status, 200, g.text);
		if (!['pending', 'vetting'].includes(g.json.status)) return g.json;
		if (Date.now() > deadline) throw new Error(`not decided: ${g.text}`);
		await sleep(100);
	}
}

const recheck = (t, id) => s.api('POST', `/v1/requests/${id}/recheck`, { token: t.token });

/** Waits until the request's last decision is older than the policy's recheck interval. */
async function pastInterval(id) {
	for (;;) {
		const [[left]] = await s.sql(`SELECT extract(epoch FROM max(created_at) + make_interval(secs => $2::int) - now())
			FROM decisions WHERE request_id = $1`, [id, INTERVAL]);
		if (Number(left) < -0.05) return;
		await sleep(Math.max(50, Number(left) * 1000 + 100));
	}
}

before(async () => {
	resp = await startResponder({
		handler(q) {
			if (q.name === reverseName('81.2.69.9') && q.type === 'PTR') {
				return ptrFixed ? { answers: [{ type: 'PTR', data: 'fixed.p25.example' }] } : { rcode: 'NXDOMAIN' };
			}
			return { rcode: 'NXDOMAIN' };
		},
	});
	s = await startStack({ api: false, env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	s.env.P25_POLICY_FILE = policyFile('policy.json', POLICY);
	dns = await startDns({
		stack: s,
		dnsbl: { [ZONE]: { ip4: ['81.2.69.40 :127.0.0.2:SBL listing for $', '81.2.69.44 :127.0.0.10:PBL listing for $'] } },
		hosts: [['mail-a.p25.example', '81.2.69.40'], ['mail-b.p25.example', '81.2.69.44'],
			['mail-c.p25.example', '81.2.69.13'], ['mail-d.p25.example', '81.2.69.5']],
		addr: [['fixed.p25.example', '81.2.69.9']],
		local: ['p25.example'],
		forward: [[reverseName('81.2.69.9'), resp.server]],
	});
	Object.assign(s.env, { P25_DNS_SERVERS: dns.servers, P25_DNSBL_ZONES: ZONE });
	await s.startApi();
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, k.stderr);
	s.startWorker();
});

after(async () => {
	await resp?.stop();
	await s?.stop();
});

// ------------------------------------------------------------ the policy file

describe('a custom policy', () => {
	test('is applied and recorded: PBL → deny under version test-1, reapply after 7 days', async () => {
		const t = await tenant(['81.2.69.44']);
		const r = await settled(t, await submit(t, ['81.2.69.44']));
		assert.equal(r.status, 'denied', JSON.stringify(r.checks, null, 1));
		assert.deepEqual(r.decision.reason_codes, ['dnsbl_pbl']);
		assert.equal(r.decision.policy_version, 'test-1');
		const days = (Date.parse(r.decision.reapply_after) - Date.parse(r.decision.decided_at)) / 86400e3;
		assert.ok(Math.abs(days - 7) < 0.01, `${days}`);
		const [row] = await s.sqlJson(`SELECT policy_version, actor FROM decisions WHERE request_id = $1`, [r.id]);
		assert.deepEqual(row, { policy_version: 'test-1', actor: 'policy' });
		const [audit] = await s.sqlJson(`SELECT details FROM audit_log WHERE object_id = $1 AND action = 'request.decide'`, [r.id]);
		assert.equal(audit.details.policy_version, 'test-1');
		assert.equal(audit.details.decision, 'deny');
	});

	test('readiness answers under the same policy', async () => {
		const t = await tenant(['81.2.69.45']);
		const r = await s.api('POST', '/v1/readiness', { token: t.token, body: { addresses: ['81.2.69.45'] } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.policy_version, 'test-1');
	});

	test('p25ctl policy check accepts it and names its version', async () => {
		const r = await s.ctl(['policy', 'check', policyFile('good.json', POLICY)]);
		assert.equal(r.code, 0, r.stderr);
		assert.match(r.stdout, /valid \(version test-1\)/);
		assert.match(r.stdout, /dnsbl_pbl\s+deny/);
	});

	test('p25ctl policy defaults prints a policy that p25ctl policy check accepts', async () => {
		const d = await s.ctl(['policy', 'defaults']);
		assert.equal(d.code, 0, d.stderr);
		const pol = JSON.parse(d.stdout);
		assert.equal(pol.account_min_age_days, 30);
		for (const c of ['dnsbl_sbl', 'dnsbl_css', 'dnsbl_xbl', 'dnsbl_drop', 'account_standing', 'address_not_held']) {
			assert.equal(pol.actions[c], 'deny', c);
		}
		assert.equal(pol.actions.dnsbl_pbl, 'warn');
		for (const c of Object.keys(pol.actions).filter((k) => k.endsWith('_error'))) {
			assert.equal(pol.actions[c], 'needs_review', c);
		}
		for (const c of ['rdns_missing', 'rdns_not_confirmed', 'rdns_generic']) assert.equal(pol.actions[c], 'needs_info', c);
		for (const c of ['account_young', 'account_unverified']) assert.equal(pol.actions[c], 'needs_review', c);
		const r = await s.ctl(['policy', 'check', policyFile('defaults.json', d.stdout)]);
		assert.equal(r.code, 0, r.stderr);
	});

	for (const [what, content, pattern] of [
		['an unknown key', { version: 'x', actionz: {} }, /unknown key "actionz"/],
		['an unknown reason code', { version: 'x', actions: { dnsbl_spam: 'deny' } }, /unknown reason code "dnsbl_spam"/],
		['an error code mapped to warn', { version: 'x', actions: { dnsbl_error: 'warn' } }, /dnsbl_error.*needs_review or deny/],
		['an error code mapped to ignore', { version: 'x', actions: { rdns_error: 'ignore' } }, /rdns_error.*needs_review or deny/],
		['an error code mapped to needs_info', { version: 'x', actions: { spf_error: 'needs_info' } }, /spf_error.*needs_review or deny/],
		['an unknown action', { version: 'x', actions: { dnsbl_sbl: 'block' } }, /must be ignore, warn, needs_info, needs_review or deny/],
		['no version', { actions: {} }, /version/],
		['a number out of bounds', { version: 'x', recheck_interval_seconds: -1 }, /recheck_interval_seconds/],
		['text that is not JSON', '{"version": "x",', /not a JSON object/],
	]) {
		test(`p25ctl policy check refuses ${what}, naming the problem, non-zero exit`, async () => {
			const f = policyFile(`bad-${what.replace(/\W+/g, '-')}.json`, content);
			const r = await s.ctl(['policy', 'check', f]);
			assert.notEqual(r.code, 0, r.stdout);
			assert.match(r.stderr, pattern);
			assert.ok(r.stderr.includes(f), `the message names the file: ${r.stderr}`);
			assert.equal(r.stdout, '');
		});
	}

	test('a worker given a bad policy refuses to start (exit 78), naming the problem', async () => {
		const w = s.startWorker({ P25_POLICY_FILE: policyFile('bad-worker.json', { version: 'x', actions: { dnsbl_error: 'warn' } }) });
		const st = await w.exited;
		assert.equal(st.code, 78, w.logText());
		assert.match(w.logText(), /dnsbl_error/);
	});
});

// ------------------------------------------------------------ recheck

describe('recheck', () => {
	test('a listing removed from the zone: too soon → 429 with Retry-After; then 202 → approved', async () => {
		const t = await tenant(['81.2.69.40']);
		const id = await submit(t, ['81.2.69.40']);
		let r = await settled(t, id);
		assert.equal(r.status, 'denied');
		assert.deepEqual(r.decision.reason_codes, ['dnsbl_sbl']);

		// at once: too soon
		const soon = await recheck(t, id);
		assert.equal(soon.status, 429, soon.text);
		assert.equal(soon.json.code, 'recheck_too_soon');
		const ra = Number(soon.headers.get('retry-after'));
		assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= INTERVAL, `Retry-After ${soon.headers.get('retry-after')}`);

		// the tenant got the address delisted
		await dns.setZone(ZONE, { ip4: ['81.2.69.44 :127.0.0.10:PBL listing for $'] });
		await pastInterval(id);
		const ok = await recheck(t, id);
		assert.equal(ok.status, 202, ok.text);
		assert.equal(ok.json.status, 'pending');
		r = await settled(t, id);
		assert.equal(r.status, 'approved', JSON.stringify(r.checks, null, 1));
		assert.equal(r.decision.decision, 'approve');
		assert.equal(r.decision.policy_version, 'test-1');
		// the checks shown are the new round's
		assert.equal(r.checks.find((c) => c.name === 'dnsbl').outcome, 'pass');
		assert.equal(r.exemptions.length, 1);
		const rounds = await s.sqlJson('SELECT round, decision, actor FROM decisions WHERE request_id = $1 ORDER BY round', [id]);
		assert.deepEqual(rounds, [{ round: 1, decision: 'deny', actor: 'policy' }, { round: 2, decision: 'approve', actor: 'policy' }]);
		const [[recheckAudits]] = await s.sql(`SELECT count(*) FROM audit_log WHERE object_id = $1 AND action = 'request.recheck'`, [id]);
		assert.equal(recheckAudits, '1');
	});

	test('needs_info (no PTR), the PTR published, recheck → approved', async () => {
		const t = await tenant(['81.2.69.9']);
		const id = await submit(t, ['81.2.69.9']);
		let r = await settled(t, id);
		assert.equal(r.status, 'needs_info', JSON.stringify(r.checks, null, 1));
		assert.deepEqual(r.decision.reason_codes, ['rdns_missing']);
		ptrFixed = true;
		await pastInterval(id);
		const ok = await recheck(t, id);
		assert.equal(ok.status, 202, ok.text);
		r = await settled(t, id);
		assert.equal(r.status, 'approved', JSON.stringify(r.checks, null, 1));
		const rd = r.checks.find((c) => c.name === 'rdns');
		assert.equal(rd.outcome, 'pass');
		assert.ok(rd.evidence.hosts[0].ptr.includes('fixed.p25.example'));
	});

	test('a denial a recheck cannot change (standing) → 409 not_fixable', async () => {
		const t = await tenant(['81.2.69.13'], { standing: 'delinquent' });
		const id = await submit(t, ['81.2.69.13']);
		const r = await settled(t, id);
		assert.equal(r.status, 'denied');
		assert.deepEqual(r.decision.reason_codes, ['account_standing']);
		await pastInterval(id);
		const c = await recheck(t, id);
		assert.equal(c.status, 409, c.text);
		assert.equal(c.headers.get('content-type'), 'application/problem+json');
		assert.equal(c.json.code, 'not_fixable');
		assert.match(c.json.detail ?? c.json.title, /account_standing/);
		const [[jobs]] = await s.sql(`SELECT count(*) FROM jobs WHERE kind = 'vet' AND payload->>'request' = $1`, [id]);
		assert.equal(jobs, '1', 'no new vet job');
		const [row] = await s.sqlJson('SELECT status, vetting_round FROM requests WHERE id = $1', [id]);
		assert.deepEqual(row, { status: 'denied', vetting_round: 1 });
	});

	test('an approved request cannot be rechecked (409); another tenant\'s answers 404', async () => {
		const t = await tenant(['81.2.69.5']);
		const id = await submit(t, ['81.2.69.5']);
		const r = await settled(t, id);
		assert.equal(r.status, 'approved', JSON.stringify(r.checks, null, 1));
		const c = await recheck(t, id);
		assert.equal(c.status, 409, c.text);
		assert.equal(c.json.code, 'invalid_state');
		const other = await tenant(['81.2.69.6']);
		const x = await recheck(other, id);
		assert.equal(x.status, 404, x.text);
	});
});
