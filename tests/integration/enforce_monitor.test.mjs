// enforce_monitor.test.mjs — issue 7's "done when": a listing, an abuse
// report (JSON and ARF), an inventory release and an expiry each close port
// 25 on a real firewall, the source refused with a TCP reset within a second
// of the event.  The namespace set-up is enforce_netns.test.mjs's (issue 5):
//
//   tenant ns                       router ns                    internet ns
//   81.2.69.5 … 81.2.69.9    ──     81.2.69.1 | 192.0.2.1   ──   192.0.2.25:25 (listener)
//                                   nft table inet p25 (forward chain)
//
// The stack (PostgreSQL, p25-api, p25-worker, rbldnsd + dnsmasq from
// tests/lib/dns.mjs) runs in the root namespace; p25-enforcer runs there with
// --apply and an `nft` wrapper that loads its rule set into the router
// namespace.  Five addresses are vetted for real and approved; the agent
// opens the port for them; then, one address each, while the agent holds a
// long-poll:
//   .5  listed in SBL; the monitor (policy interval 10 s, made due now)
//       suspends it                        → refused, timed from the revoke event
//   .6  a JSON spam report                 → refused, timed from the POST
//   .7  an ARF report (Feedback-Type abuse)→ refused, timed from the POST
//   .8  the admin PUT releases it          → refused, timed from the PUT
//   .9  expires_at passes, the expire job runs → refused, timed from the revoke event
// After each, the addresses not yet closed still connect.
//
// Where namespaces are forbidden (no root, no `ip netns add`, no nftables in
// a namespace, no python3) the test says why and exits 77 (ctest's
// SKIP_RETURN_CODE — set for integration.enforce_monitor in
// tests/CMakeLists.txt like for integration.enforce_netns).
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_DIR, run, sleep, startStack } from '../lib/harness.mjs';
import { startListener as netnsListener, startProber as netnsProber } from '../lib/netns.mjs';
import { startDns } from '../lib/dns.mjs';

const ENFORCER = path.resolve(BUILD_DIR, 'p25-enforcer');
const ZONE = 'zen.test';
const INTERVAL = 10;
const id = `${process.pid % 100000}`;
const NS = { tenant: `p25mt-${id}`, router: `p25mr-${id}`, internet: `p25mi-${id}` };
const SRC = { listing: '81.2.69.5', json: '81.2.69.6', arf: '81.2.69.7', release: '81.2.69.8', expiry: '81.2.69.9' };
const DST = '192.0.2.25';
const LIMIT_MS = 1000;
const T0 = Date.now();
const log = (msg) => console.log(`enforce_monitor: [${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}`);

const helpers = [];
let nsMade = false;

function cleanup() {
	for (const c of helpers) {
		try {
			c.kill('SIGKILL');
		} catch { /* gone */ }
	}
	if (nsMade) for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

async function sh(cmd) {
	const r = await run('bash', ['-c', cmd]);
	if (r.code !== 0) throw new Error(`${cmd}\n→ exit ${r.code}: ${r.stderr}${r.stdout}`);
	return r;
}
function skip(reason) {
	console.log(`enforce_monitor: SKIP: ${reason}`);
	process.exit(77);
}

// ------------------------------------------------------------ namespaces (as enforce_netns)

async function makeNamespaces() {
	const probe = `p25mp-${id}`;
	const r = await run('ip', ['netns', 'add', probe]);
	if (r.code !== 0) skip(`cannot create a network namespace (ip netns add: ${r.stderr.trim()})`);
	await run('ip', ['netns', 'del', probe]);
	nsMade = true;
	const vt = `mvt${id}`, vrt = `mvr${id}`, vi = `mvi${id}`, vri = `mvq${id}`;
	const { tenant: T, router: R, internet: I } = NS;
	await sh(`set -e
		ip netns add ${T}; ip netns add ${R}; ip netns add ${I}
		ip link add ${vt} type veth peer name ${vrt}
		ip link set ${vt} netns ${T}; ip link set ${vrt} netns ${R}
		ip link add ${vi} type veth peer name ${vri}
		ip link set ${vi} netns ${I}; ip link set ${vri} netns ${R}
		ip -n ${T} link set lo up; ip -n ${R} link set lo up; ip -n ${I} link set lo up
		${Object.values(SRC).map((a) => `ip -n ${T} addr add ${a}/24 dev ${vt}`).join('\n')}
		ip -n ${T} link set ${vt} up
		ip -n ${T} route add default via 81.2.69.1
		ip -n ${R} addr add 81.2.69.1/24 dev ${vrt}
		ip -n ${R} addr add 192.0.2.1/24 dev ${vri}
		ip -n ${R} link set ${vrt} up; ip -n ${R} link set ${vri} up
		ip netns exec ${R} sysctl -qw net.ipv4.ip_forward=1
		ip -n ${I} addr add ${DST}/24 dev ${vi}
		ip -n ${I} link set ${vi} up
		ip -n ${I} route add default via 192.0.2.1`);
	const n = await run('ip', ['netns', 'exec', R, 'nft', 'list', 'ruleset']);
	if (n.code !== 0) skip(`nftables does not work in a namespace here: ${n.stderr.trim()}`);
}

const startListener = (py) => netnsListener(py, NS.internet, 'p25 monitor test', helpers);
const startProber = (py) => netnsProber(py, NS.tenant, DST, helpers);

// ------------------------------------------------------------ before any test: can we run?

if (process.getuid?.() !== 0) skip('not root: no CAP_NET_ADMIN for network namespaces');
if (!fs.existsSync(ENFORCER)) throw new Error(`${ENFORCER} is not built`);
const pyr = spawnSync('bash', ['-c', 'command -v python3']);
if (pyr.status !== 0) skip('python3 is not available for the listener and the prober');
const py = pyr.stdout.toString().trim();
await makeNamespaces();
log(`namespaces ${Object.values(NS).join(', ')} up`);

let s;
let dns;
let agent;
let probe;
let tenant;
let reporter;
let admin;
let enforcer;
const exm = {}; // source name → exemption id
const open = new Set(Object.keys(SRC)); // sources that must still connect

/** The API holds at least one feed long-poll (its /metrics). */
async function heldPoll() {
	const deadline = Date.now() + 10000;
	for (;;) {
		const m = await s.api('GET', '/metrics');
		const v = /^p25_feed_held (\d+)$/m.exec(m.text);
		if (v && Number(v[1]) >= 1) return;
		if (Date.now() > deadline) throw new Error(`no held long-poll\n--- agent log:\n${agent.logText()}`);
		await sleep(20);
	}
}
async function until(fn, timeoutMs, what) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms): ${what}\n--- agent log:\n${agent?.logText() ?? ''}`);
		await sleep(50);
	}
}
async function decided(id) {
	return until(async () => {
		const r = await s.api('GET', `/v1/requests/${id}`, { token: tenant });
		return ['pending', 'vetting'].includes(r.json?.status) ? null : r.json;
	}, 30000, `the decision on ${id}`);
}

/**
 * Probes name's source until it is refused (for at most timeoutMs): the
 * wall-clock time of the first refusal, and that probe.
 */
async function closedAt(name, timeoutMs = 5000) {
	const start = Date.now();
	let last;
	while (Date.now() - start < timeoutMs) {
		last = await probe(SRC[name]);
		if (last.result === 'refused') return { at: Date.now(), last };
		await sleep(10);
	}
	assert.fail(`${SRC[name]} still ${last.result} ${timeoutMs} ms on\n--- agent log:\n${agent.logText().slice(-4000)}`);
	return null;
}
async function othersStillOpen(closed) {
	open.delete(closed);
	for (const n of open) {
		const p = await probe(SRC[n]);
		assert.equal(p.result, 'connected', `${SRC[n]} (${n}) must still connect: ${JSON.stringify(p)}`);
	}
}
const eventTime = async (exemption) => Number((await s.sql(`SELECT extract(epoch FROM created_at) * 1000
	FROM feed_events WHERE exemption_id = $1 AND type = 'revoke' ORDER BY seq DESC LIMIT 1`, [exemption]))[0][0]);
function report(name, ms, last) {
	log(`${name}: ${SRC[name]} refused ${Math.round(ms)} ms after the event (reset in ${last.ms} ms)`);
	assert.ok(ms < LIMIT_MS, `${name}: the port closed ${ms} ms after the event (limit ${LIMIT_MS} ms)`);
	assert.ok(last.ms < 500, `${name}: the refusal took ${last.ms} ms: not a reset`);
}

before(async () => {
	await startListener(py);
	probe = startProber(py);
	const p = await probe(SRC.listing);
	assert.equal(p.result, 'connected', `no path tenant → internet without rules: ${JSON.stringify(p)}`);

	s = await startStack({ api: false, env: { P25_RATE_LIMIT: '0', P25_DNS_TIMEOUT_MS: '1000', P25_DNS_TRIES: '1' } });
	const policy = path.join(s.dir, 'policy.json');
	fs.writeFileSync(policy, JSON.stringify({ version: 'enforce-monitor', monitor_interval_seconds: INTERVAL }));
	dns = await startDns({
		stack: s,
		dnsbl: { [ZONE]: { ip4: [] } },
		hosts: Object.values(SRC).map((a, i) => [`mail-${'abcde'[i]}.acme.example`, a]),
		local: ['acme.example'],
	});
	Object.assign(s.env, { P25_DNS_SERVERS: dns.servers, P25_DNSBL_ZONES: ZONE, P25_POLICY_FILE: policy });
	await s.startApi();
	const g = await s.ctl(['keys', 'generate']);
	assert.equal(g.code, 0, g.stderr + g.stdout);
	await s.createTenant('acme', { addresses: ['81.2.69.0/29', SRC.release, SRC.expiry] });
	tenant = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
	reporter = s.token({ sub: 'feed:spamtrap', roles: ['reporter'] });
	admin = s.token({ sub: 'ada', roles: ['admin'] });
	enforcer = s.token({ sub: 'checker', roles: ['enforcer'] });
	s.startWorker();

	const dir = path.join(s.dir, 'node');
	fs.mkdirSync(dir);
	const jwks = await s.api('GET', '/.well-known/jwks.json');
	assert.equal(jwks.status, 200);
	fs.writeFileSync(path.join(dir, 'pin.json'), jwks.text);
	fs.writeFileSync(path.join(dir, 'bearer'), `${s.token({ sub: 'router-1', roles: ['enforcer'], ttl: 3600 })}\n`, { mode: 0o600 });
	fs.writeFileSync(path.join(dir, 'nft'), `#!/bin/sh\nexec ip netns exec ${NS.router} nft "$@"\n`, { mode: 0o755 });
	agent = s.spawn('enforcer', ENFORCER, ['--apply', '--api', s.url, '--token-file', path.join(dir, 'bearer'),
		'--jwks-pin', path.join(dir, 'pin.json'), '--state-dir', path.join(dir, 'state'), '--node', 'router-1',
		'--nft', path.join(dir, 'nft'), '--wait', '30', '--backoff-max', '2']);
	await until(async () => (await run('ip', ['netns', 'exec', NS.router, 'nft', 'list', 'table', 'inet', 'p25'])).code === 0,
		10000, 'the agent loads table inet p25');
	for (const a of Object.values(SRC)) {
		const r = await probe(a);
		assert.equal(r.result, 'refused', `${a} before any exemption: ${JSON.stringify(r)}`);
	}
	// five requests, vetted for real and approved by the policy
	const ids = {};
	for (const [name, a] of Object.entries(SRC)) {
		const r = await s.api('POST', '/v1/requests', { token: tenant, body: {
			addresses: [a], use_case: 'transactional', description: `enforce monitor ${name}` } });
		assert.equal(r.status, 202, r.text);
		ids[name] = r.json.id;
	}
	for (const [name, rid] of Object.entries(ids)) {
		const j = await decided(rid);
		assert.equal(j.status, 'approved', JSON.stringify(j, null, 1));
		exm[name] = j.exemptions[0];
	}
	for (const a of Object.values(SRC)) await until(async () => (await probe(a)).result === 'connected', 10000, `${a} connects`);
	log('five addresses approved; the agent opened port 25 for each');
});

after(async () => {
	if (agent) await agent.stop(5000);
	await s?.stop();
	cleanup(); // the listener and prober hold pipes that would keep node alive
	nsMade = false;
	helpers.length = 0;
});

// ------------------------------------------------------------ the events

test('a listing: the monitor suspends the exemption, the port closes within a second of the revoke', async () => {
	await heldPoll();
	await dns.setZone(ZONE, { ip4: [`${SRC.listing} :127.0.0.2:SBL listing for $`] });
	await s.sql('UPDATE exemptions SET next_check_at = now() WHERE id = $1', [exm.listing]);
	// the ticker queues the monitor within one interval
	const { at, last } = await closedAt('listing', (INTERVAL + 5) * 1000);
	const [[st]] = await s.sql('SELECT status FROM exemptions WHERE id = $1', [exm.listing]);
	assert.equal(st, 'suspended');
	report('listing', Math.max(0, at - await eventTime(exm.listing)), last);
	await othersStillOpen('listing');
});

test('a JSON abuse report (spam): the port closes within a second of the POST', async () => {
	await heldPoll();
	const t = Date.now();
	const r = await s.api('POST', '/v1/abuse-reports', { token: reporter, body: { address: SRC.json,
		source: 'spamtrap.example', category: 'spam', report_id: 'enf-1', evidence: { trap: 'x@trap.example' } } });
	assert.equal(r.status, 201, r.text);
	assert.equal(r.json.action, 'suspended');
	const { at, last } = await closedAt('json');
	report('json', at - t, last);
	await othersStillOpen('json');
});

test('an ARF abuse report (Feedback-Type abuse): the port closes within a second of the POST', async () => {
	await heldPoll();
	const b = 'enf_boundary_1';
	const arrival = new Date().toUTCString().replace('GMT', '+0000');
	const body = [`--${b}`, 'Content-Type: text/plain', '', `An abuse report for a message from ${SRC.arf}.`, '',
		`--${b}`, 'Content-Type: message/feedback-report', '', 'Feedback-Type: abuse', 'User-Agent: trap/1.0',
		'Version: 1', `Source-IP: ${SRC.arf}`, `Arrival-Date: ${arrival}`, '',
		`--${b}`, 'Content-Type: text/rfc822-headers', '', 'From: <x@spam.example>', 'Subject: buy',
		'Message-ID: <enf-arf-1@spam.example>', '', `--${b}--`, ''].join('\r\n');
	const t = Date.now();
	const r = await s.api('POST', '/v1/abuse-reports', { token: reporter, body,
		headers: { 'Content-Type': `multipart/report; report-type=feedback-report; boundary="${b}"` } });
	assert.equal(r.status, 201, r.text);
	assert.equal(r.json.action, 'suspended');
	const { at, last } = await closedAt('arf');
	report('arf', at - t, last);
	await othersStillOpen('arf');
});

test('an inventory release: the port closes within a second of the admin PUT', async () => {
	await heldPoll();
	const t = Date.now();
	const r = await s.api('PUT', '/v1/admin/tenants/acme/addresses', { token: admin,
		body: { addresses: ['81.2.69.0/29', SRC.expiry] } });
	assert.equal(r.status, 200, r.text);
	const { at, last } = await closedAt('release');
	report('release', at - t, last);
	const [[st]] = await s.sql('SELECT status FROM exemptions WHERE id = $1', [exm.release]);
	assert.equal(st, 'revoked');
	await othersStillOpen('release');
});

// BUG (workers/maintain.c): the expire job's `list` statement is declared
// with 2 parameters for one placeholder; every run fails with SQLSTATE 08P01
// and nothing ever expires (see wayback.test.mjs) — so the port stays open
// until the token's own exp.
test('an expiry: the expire job revokes it, the port closes within a second of the revoke',
	{}, async () => {
		await heldPoll();
		await s.sql(`UPDATE exemptions SET expires_at = now() - interval '1 second' WHERE id = $1`, [exm.expiry]);
		await s.sql("INSERT INTO jobs (kind) VALUES ('expire'); SELECT pg_notify('p25_jobs', 'expire');");
		const { at, last } = await closedAt('expiry', 10000);
		const [[st]] = await s.sql('SELECT status FROM exemptions WHERE id = $1', [exm.expiry]);
		assert.equal(st, 'expired');
		report('expiry', Math.max(0, at - await eventTime(exm.expiry)), last);
		await othersStillOpen('expiry');
	});

test('the node acknowledged everything: applied_nodes and its state on disk', async () => {
	await sleep(500);
	const [[top]] = await s.sql('SELECT max(seq) FROM feed_events');
	const state = JSON.parse(fs.readFileSync(path.join(s.dir, 'node', 'state', 'state.json'), 'utf8'));
	assert.equal(String(state.seq), top);
	const [[acked]] = await s.sql(`SELECT acked_seq FROM enforcement_nodes WHERE node = 'router-1'`);
	assert.equal(acked, top);
	assert.doesNotMatch(agent.logText(), /token_rejected/);
	void enforcer;
});
