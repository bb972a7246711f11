// Vetting when the DNS cannot be trusted (issue 4): a DNSBL zone that fails
// its RFC 5782 health check (lists 127.0.0.1; does not list 127.0.0.2), a
// resolver that never answers, and one that answers SERVFAIL to everything.
// Each is "unknown": it sends the request to a reviewer, never approves it.
//
// One stack; each scenario runs its own p25-worker with its own DNS
// settings, files its request, waits for the decision and stops the worker,
// so no other worker vets it.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from '../lib/harness.mjs';
import { startDns, startResponder, startBlackhole } from '../lib/dns.mjs';

let s;
let dns;
let silent;
let servfail;
let n = 0;

const ADDR = { broken: '81.2.69.5', nolist: '81.2.69.6', silent: '81.2.69.7', servfail: '81.2.69.8' };

before(async () => {
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	dns = await startDns({
		stack: s,
		dnsbl: {
			'zen.test': { ip4: [] },
			// lists 127.0.0.1: a list that answers "listed" for everything
			'broken.test': { ip4: ['127.0.0.0/24 :127.0.0.2:everything is listed'] },
			// does not list its mandatory test entry 127.0.0.2
			'nolist.test': { ip4: [], rfc5782: false },
		},
		hosts: [['mail-a.p25.example', ADDR.broken], ['mail-b.p25.example', ADDR.nolist],
			['mail-c.p25.example', ADDR.silent], ['mail-d.p25.example', ADDR.servfail]],
		local: ['p25.example'],
	});
	s.env.P25_DNS_SERVERS = dns.servers;
	silent = await startBlackhole();
	servfail = await startResponder({ handler: () => ({ rcode: 'SERVFAIL' }) });
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, k.stderr);
});

after(async () => {
	// the sockets first: an open one would keep the test process alive
	await silent?.stop();
	await servfail?.stop();
	await s?.stop();
});

/** Files a request for ip with a worker started with env, waits for the decision, stops the worker. */
async function vetWith(ip, env) {
	const tenant = `t${++n}`;
	await s.createTenant(tenant, { addresses: [ip] });
	const token = s.token({ sub: `${tenant}-user`, tenant });
	const w = s.startWorker(env);
	const t0 = Date.now();
	const r = await s.api('POST', '/v1/requests', { token, body: { addresses: [ip], use_case: 'transactional',
		sender_domains: ['p25.example'] } });
	assert.equal(r.status, 202, r.text);
	const deadline = Date.now() + 60000;
	let g;
	for (;;) {
		g = await s.api('GET', `/v1/requests/${r.json.id}`, { token });
		if (!['pending', 'vetting'].includes(g.json.status)) break;
		if (!w.running) throw new Error(`the worker exited: ${w.logText()}`);
		if (Date.now() > deadline) throw new Error(`not decided in 60 s: ${g.text}`);
		await sleep(100);
	}
	const ms = Date.now() - t0;
	await w.stop();
	return { r: g.json, ms, tenant, token };
}

const rows = (r, name) => r.checks.filter((c) => c.name === name);

test('a zone that lists 127.0.0.1 is broken: its rows are errors → needs_review', async () => {
	const { r } = await vetWith(ADDR.broken, { P25_DNSBL_ZONES: 'zen.test,broken.test' });
	assert.equal(r.status, 'needs_review', JSON.stringify(r.checks, null, 1));
	assert.deepEqual(r.decision.reason_codes, ['dnsbl_error']);
	const [good] = rows(r, 'dnsbl').filter((c) => c.subject.endsWith(' in zen.test'));
	const [bad] = rows(r, 'dnsbl').filter((c) => c.subject.endsWith(' in broken.test'));
	assert.equal(good.outcome, 'pass');
	assert.equal(bad.outcome, 'error');
	assert.deepEqual(bad.evidence.errors, [{ address: ADDR.broken,
		error: '127.0.0.1 is listed: the list answers for everything' }]);
	// the address's own "listing" in the broken zone is not reported as a listing
	assert.ok(!bad.evidence.listed?.length, JSON.stringify(bad));
	assert.deepEqual(r.exemptions, []);
});

test('a zone that does not list 127.0.0.2 is broken → needs_review', async () => {
	const { r } = await vetWith(ADDR.nolist, { P25_DNSBL_ZONES: 'zen.test,nolist.test' });
	assert.equal(r.status, 'needs_review', JSON.stringify(r.checks, null, 1));
	assert.deepEqual(r.decision.reason_codes, ['dnsbl_error']);
	const [bad] = rows(r, 'dnsbl').filter((c) => c.subject.endsWith(' in nolist.test'));
	assert.equal(bad.outcome, 'error');
	assert.deepEqual(bad.evidence.errors, [{ address: ADDR.nolist, error: 'test entry 127.0.0.2 not listed (nxdomain)' }]);
});

test('a resolver that never answers: every query times out → errors → needs_review, quickly', async () => {
	const { r, ms } = await vetWith(ADDR.silent, { P25_DNS_SERVERS: silent.server, P25_DNS_TIMEOUT_MS: '200',
		P25_DNS_TRIES: '1' });
	assert.equal(r.status, 'needs_review', JSON.stringify(r.checks, null, 1));
	assert.deepEqual([...r.decision.reason_codes].sort(), ['dmarc_error', 'dnsbl_error', 'rdns_error', 'spf_error']);
	const [bl] = rows(r, 'dnsbl');
	assert.equal(bl.outcome, 'error');
	// the zone fails its health check first (its test queries time out too)
	assert.equal(bl.evidence.errors.length, 1);
	assert.equal(bl.evidence.errors[0].address, ADDR.silent);
	assert.match(bl.evidence.errors[0].error, /\(timeout\)$/);
	const [rd] = rows(r, 'rdns');
	assert.equal(rd.outcome, 'error');
	assert.equal(rd.evidence.hosts[0].ptr_status, 'timeout');
	assert.equal(rows(r, 'dmarc')[0].evidence.dns, 'timeout');
	assert.equal(rows(r, 'spf')[0].evidence.result, 'temperror');
	assert.ok(silent.queries.length >= 4, `the silent server saw ${silent.queries.length} queries`);
	// phase 1 in parallel (one timeout), SPF after it (one more): well under the 60 s guard
	assert.ok(ms < 20000, `decided in ${ms} ms`);
	assert.deepEqual(r.exemptions, []);
});

test('a resolver that answers SERVFAIL to everything → errors → needs_review', async () => {
	const { r } = await vetWith(ADDR.servfail, { P25_DNS_SERVERS: servfail.server, P25_DNS_TIMEOUT_MS: '1000',
		P25_DNS_TRIES: '1' });
	assert.equal(r.status, 'needs_review', JSON.stringify(r.checks, null, 1));
	assert.deepEqual([...r.decision.reason_codes].sort(), ['dmarc_error', 'dnsbl_error', 'rdns_error', 'spf_error']);
	assert.ok(servfail.queries.length >= 4);
	for (const c of r.checks.filter((x) => ['dnsbl', 'rdns', 'spf', 'dmarc'].includes(x.name))) {
		assert.equal(c.outcome, 'error', JSON.stringify(c));
	}
});

test('no request in this file was approved; every vet job is done', async () => {
	const [[approved]] = await s.sql("SELECT count(*) FROM requests WHERE status = 'approved'");
	assert.equal(approved, '0');
	const [[ex]] = await s.sql('SELECT count(*) FROM exemptions');
	assert.equal(ex, '0');
	const [[open]] = await s.sql("SELECT count(*) FROM jobs WHERE kind = 'vet' AND state <> 'done'");
	assert.equal(open, '0');
});
