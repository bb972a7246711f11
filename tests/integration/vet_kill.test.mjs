// Crash safety of vetting (issue 4): 300 requests, three p25-worker
// processes with a 5-second job lease, SIGKILLed over and over while they
// vet and restarted at once.  At the end every request is decided exactly
// once and nothing is issued twice:
//   - one decision row per request (round 1, actor 'policy'), one
//     request.decide audit row, and one transaction's worth of check rows;
//   - the decision is the one the DNS calls for (clean → approve, listed →
//     deny, no PTR → needs_info): a crash never leaves a half-seen answer;
//   - an approved request has exactly one active exemption per prefix, each
//     with exactly one token (current) and one grant event, and the grant
//     events number the exemptions; other requests have none;
//   - no vet job is left queued, running or parked.
// DNS is real (rbldnsd + dnsmasq) behind a node responder that delays a
// share of the answers, so the kills land in the middle of vetting, not only
// between requests (the test reports how many kills caught jobs running).
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, sleep } from '../lib/harness.mjs';
import { startDns, startResponder } from '../lib/dns.mjs';

const TENANTS = 10; // 300 requests for the kill test
const STOP_TENANTS = 2; // 60 more for the freeze test
const PER_TENANT = 30;
const WORKERS = 3;
const KILLS = Number(process.env.P25_KILL_COUNT || 30);
const ONLY_FREEZE = process.env.P25_VET_KILL_ONLY === 'freeze'; // to run the second test alone

let s;
let dns;
let delay;
const plan = []; // {tenant, token, addresses, expect, id}: everything filed so far
const planned = []; // the same, filed or not
const workers = [];
const stats = { kills: 0, killsWithJobsRunning: 0, jobsRunningAtKills: 0 };

const letters = (i) => {
	let l = '';
	do {
		l = String.fromCharCode(97 + (i % 26)) + l;
		i = Math.floor(i / 26);
	} while (i > 0);
	return l;
};

before(async () => {
	// which address gets what: by its last octet
	const hosts = [];
	const listed = [];
	for (let t = 0; t < TENANTS + STOP_TENANTS; t++) {
		const tenant = `k${t}`;
		for (let j = 0; j < PER_TENANT; j++) {
			const a = `81.2.${70 + t}.${j + 1}`;
			const addresses = [a];
			if (j % 5 === 0) addresses.push(`81.2.${70 + t}.${j + 101}`); // two prefixes
			let expect = 'approve';
			if (j % 6 === 1) {
				expect = 'deny';
				listed.push(`${a} :127.0.0.4:XBL listing for $`);
			} else if (j % 6 === 3) {
				expect = 'needs_info'; // no PTR for the first address
			}
			for (const [k, ip] of addresses.entries()) {
				if (k === 0 && expect === 'needs_info') continue;
				hosts.push([`mx-${letters(hosts.length)}.kill.example`, ip]);
			}
			planned.push({ tenant, addresses, expect, t });
		}
	}
	s = await startStack({ api: false, env: {
		P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '100000',
		P25_JOB_LEASE: '5', P25_JOB_MAX_ATTEMPTS: '100', P25_JOB_BATCH: '4', P25_WORKER_THREADS: '2',
		P25_DNS_TIMEOUT_MS: '3000', P25_DNS_TRIES: '2',
	} });
	// the per-tenant history limits would turn most of 30 requests a tenant into needs_review
	s.env.P25_POLICY_FILE = path.join(s.dir, 'policy.json');
	fs.writeFileSync(s.env.P25_POLICY_FILE, JSON.stringify({ version: 'kill-1', history_max_requests_24h: 100000,
		history_max_denials_30d: 1000 }));
	await s.startApi();
	dns = await startDns({ stack: s, dnsbl: { 'zen.test': { ip4: listed } }, hosts, local: ['kill.example'] });
	// most queries answered 100–500 ms late: vetting takes long enough to be killed in
	delay = await startResponder({ upstream: dns.servers, record: false,
		handler: () => (!fastDns && Math.random() < 0.6 ? { delay: 100 + Math.floor(Math.random() * 400) } : undefined) });
	Object.assign(s.env, { P25_DNS_SERVERS: delay.server, P25_DNSBL_ZONES: 'zen.test' });
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, k.stderr);

	for (let t = 0; t < TENANTS + STOP_TENANTS; t++) await s.createTenant(`k${t}`, { addresses: [`81.2.${70 + t}.0/24`] });
	if (!ONLY_FREEZE) await submitAll(planned.filter((p) => p.t < TENANTS));
});

/** Files the requests of list (8 at a time) and adds them to plan. */
async function submitAll(list) {
	const queue = [...list];
	await Promise.all(Array.from({ length: 8 }, async () => {
		while (queue.length) {
			const p = queue.shift();
			p.token = s.token({ sub: `${p.tenant}-user`, tenant: p.tenant });
			const r = await s.api('POST', '/v1/requests', { token: p.token,
				body: { addresses: p.addresses, use_case: 'transactional' } });
			assert.equal(r.status, 202, r.text);
			p.id = r.json.id;
			plan.push(p);
		}
	}));
}

after(async () => {
	await delay?.stop(); // first: an open socket would keep the test process alive
	await s?.stop();
});

async function openCount() {
	const [[n]] = await s.sql("SELECT count(*) FROM requests WHERE status IN ('pending', 'vetting')");
	return Number(n);
}

/** Every invariant of the file's header, for the requests in subset (and the whole database). */
async function checkInvariants(subset) {
	// every request decided once, as its DNS says
	const rows = await s.sqlJson(`SELECT r.id, r.status, r.vetting_round AS round,
		(SELECT count(*) FROM decisions d WHERE d.request_id = r.id) AS decisions,
		(SELECT count(*) FROM decisions d WHERE d.request_id = r.id AND d.round = 1 AND d.actor = 'policy') AS by_policy,
		(SELECT min(d.decision) FROM decisions d WHERE d.request_id = r.id) AS decision,
		(SELECT count(*) FROM audit_log a WHERE a.object_id = r.id::text AND a.action = 'request.decide') AS audits,
		(SELECT count(DISTINCT c.created_at) FROM checks c WHERE c.request_id = r.id) AS check_writes,
		(SELECT count(*) FROM request_addresses x WHERE x.request_id = r.id) AS prefixes,
		(SELECT count(*) FROM exemptions e WHERE e.request_id = r.id) AS exemptions,
		(SELECT count(*) FROM exemptions e WHERE e.request_id = r.id AND e.status = 'active') AS active,
		(SELECT count(DISTINCT e.prefix) FROM exemptions e WHERE e.request_id = r.id AND e.status = 'active') AS active_prefixes
		FROM requests r`);
	const byId = new Map(rows.map((r) => [r.id, r]));
	const statusOf = { approve: 'approved', deny: 'denied', needs_info: 'needs_info' };
	let approved = 0;
	for (const p of subset) {
		const r = byId.get(p.id);
		const what = JSON.stringify({ ...r, expect: p.expect, addresses: p.addresses });
		assert.equal(r.round, 1, what);
		assert.equal(r.decisions, 1, what);
		assert.equal(r.by_policy, 1, what);
		assert.equal(r.audits, 1, what);
		assert.equal(r.check_writes, 1, what);
		assert.equal(r.decision, p.expect, what);
		assert.equal(r.status, statusOf[p.expect], what);
		if (p.expect === 'approve') {
			approved++;
			assert.equal(r.prefixes, p.addresses.length, what);
			assert.equal(r.exemptions, r.prefixes, what);
			assert.equal(r.active, r.prefixes, what);
			assert.equal(r.active_prefixes, r.prefixes, what);
		} else {
			assert.equal(r.exemptions, 0, what);
		}
	}
	assert.ok(approved > subset.length / 3, `${approved} approved`);

	// tokens and grant events: one each per exemption, and no more in all
	const [tok] = await s.sqlJson(`SELECT
		(SELECT count(*) FROM exemptions) AS exemptions,
		(SELECT count(*) FROM tokens) AS tokens,
		(SELECT count(*) FROM tokens WHERE current) AS current_tokens,
		(SELECT count(*) FROM feed_events WHERE type = 'grant') AS grants,
		(SELECT count(*) FROM feed_events WHERE type <> 'grant') AS other_events,
		(SELECT count(*) FROM (SELECT exemption_id FROM tokens WHERE current GROUP BY 1 HAVING count(*) <> 1) x) AS bad_current,
		(SELECT count(*) FROM exemptions e WHERE (SELECT count(*) FROM tokens t WHERE t.exemption_id = e.id) <> 1) AS bad_tokens,
		(SELECT count(*) FROM exemptions e WHERE (SELECT count(*) FROM feed_events f WHERE f.exemption_id = e.id
		   AND f.type = 'grant') <> 1) AS bad_grants,
		(SELECT count(*) FROM feed_events WHERE seq IS NULL) AS unsequenced,
		(SELECT count(*) FROM audit_log WHERE action = 'exemption.grant') AS grant_audits`);
	assert.equal(tok.tokens, tok.exemptions, JSON.stringify(tok));
	assert.equal(tok.current_tokens, tok.exemptions, JSON.stringify(tok));
	assert.equal(tok.grants, tok.exemptions, JSON.stringify(tok));
	assert.equal(tok.grant_audits, tok.exemptions, JSON.stringify(tok));
	assert.equal(tok.other_events, 0, JSON.stringify(tok));
	assert.equal(tok.bad_current, 0, JSON.stringify(tok));
	assert.equal(tok.bad_tokens, 0, JSON.stringify(tok));
	assert.equal(tok.bad_grants, 0, JSON.stringify(tok));
	assert.equal(tok.unsequenced, 0, JSON.stringify(tok));

	// the queue is clean: nothing left behind, nothing given up on
	const states = await s.sqlJson("SELECT state, count(*) AS n FROM jobs WHERE kind = 'vet' GROUP BY 1 ORDER BY 1");
	assert.deepEqual(states, [{ state: 'done', n: plan.length }]);
	const [[nreq]] = await s.sql('SELECT count(*) FROM requests');
	assert.equal(Number(nreq), plan.length);
}

test('SIGKILLed workers, restarted, decide every request exactly once',
	{ timeout: 540000, skip: ONLY_FREEZE }, async () => {
	for (let i = 0; i < WORKERS; i++) workers.push(s.startWorker());
	const deadline = Date.now() + 420000;
	// kill while there is work; the last kills come while jobs are still running
	while (stats.kills < KILLS && (await openCount()) > 0) {
		await sleep(100 + Math.floor(Math.random() * 300));
		const i = Math.floor(Math.random() * WORKERS);
		const w = workers[i];
		const [[running]] = await s.sql(`SELECT count(*) FROM jobs WHERE kind = 'vet' AND state = 'running'
			AND locked_by LIKE '%:' || $1 || '/%'`, [String(w.pid)]);
		w.kill('SIGKILL');
		await w.exited;
		stats.kills++;
		if (Number(running) > 0) {
			stats.killsWithJobsRunning++;
			stats.jobsRunningAtKills += Number(running);
		}
		if (Math.random() < 0.5) await sleep(Math.floor(Math.random() * 300));
		workers[i] = s.startWorker();
		if (Date.now() > deadline) break;
	}
	// then let them finish (a killed worker's jobs come back when their lease expires)
	for (;;) {
		const open = await openCount();
		const [[jobs]] = await s.sql("SELECT count(*) FROM jobs WHERE kind = 'vet' AND state IN ('queued', 'running')");
		if (open === 0 && jobs === '0') break;
		if (Date.now() > deadline) throw new Error(`${open} requests and ${jobs} vet jobs still open`);
		await sleep(250);
	}
	await Promise.all(workers.map((w) => w.stop()));
	const [agg] = await s.sqlJson(`SELECT max(attempts) AS max_attempts, count(*) FILTER (WHERE attempts > 1) AS retried
		FROM jobs WHERE kind = 'vet'`);
	process.stderr.write(`vet_kill: ${stats.kills} SIGKILLs, ${stats.killsWithJobsRunning} of them with vet jobs running ` +
		`(${stats.jobsRunningAtKills} jobs in all); ${agg.retried} jobs ran more than once, at most ${agg.max_attempts} times\n`);
	assert.ok(stats.kills >= Math.min(KILLS, 5), `only ${stats.kills} kills happened`);
	assert.ok(stats.killsWithJobsRunning > 0, 'no kill caught a job running');
	assert.ok(agg.retried > 0, 'no job was ever run twice: the kills did not hit');

	await checkInvariants(plan);
});

// A worker that is not dead but frozen (SIGSTOP) past its lease — a paused
// VM, a swap storm, a partition that keeps its TCP connection open.  Its
// jobs' leases expire and the reaper hands them to the other worker, which
// must decide every request meanwhile; when the frozen one wakes (SIGCONT)
// it finishes what it was doing and must write nothing: the request is no
// longer 'vetting', and its lease is gone.
//
// Regression: a worker frozen inside a transaction keeps its row locks for
// as long as it is frozen.  Its jobs are reaped after the lease and claimed
// by the live worker, whose runner threads then block on those locks; their
// leases expire, the jobs are reaped and claimed by the next thread, until
// every runner is stuck behind the frozen one and nothing is vetted at all
// (seen before idle_in_transaction_session_timeout was set on the
// connections: core/db.c, 30 s).  Now PostgreSQL ends the frozen
// transaction and the others go on.
let frozenWorker;
let survivor;
let frozenList;
let frozenJobs = 0;
let lockWaits = 0; // samples that saw a backend waiting for a lock while it was frozen
let fastDns = false;

// A persistent psql: one round trip per query (the freeze needs to be quick).
class Psql {
	constructor(url, env) {
		this.p = spawn('psql', ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=0', '-d', url],
			{ env, stdio: ['pipe', 'pipe', 'inherit'] });
		this.buf = '';
		this.waiting = [];
		this.p.stdout.on('data', (d) => {
			this.buf += d;
			let i;
			while ((i = this.buf.indexOf('__END__\n')) >= 0) {
				const out = this.buf.slice(0, i);
				this.buf = this.buf.slice(i + 8);
				this.waiting.shift()(out === '' ? [] : out.replace(/\n$/, '').split('\n').map((l) => l.split('\t')));
			}
		});
	}
	query(sql) {
		return new Promise((resolve) => {
			this.waiting.push(resolve);
			this.p.stdin.write(`${sql};\n\\echo __END__\n`);
		});
	}
	close() {
		this.p.stdin.end();
	}
}
test('while a worker is frozen past its lease, the others decide every request',
	{ timeout: 300000 },
	async () => {
		frozenList = planned.filter((p) => p.t >= TENANTS);
		fastDns = true; // vetting is then mostly database time: a freeze lands in a transaction
		// the frozen-to-be worker alone first, to learn its database sessions
		const before0 = (await s.sql("SELECT pid FROM pg_stat_activity WHERE usename = 'p25_app'")).map(([p]) => p);
		frozenWorker = s.startWorker();
		let deadline = Date.now() + 120000;
		let mine = [];
		while (mine.length < 2) { // its listener and at least one runner
			mine = (await s.sql(`SELECT pid FROM pg_stat_activity WHERE usename = 'p25_app'
				AND NOT (pid = ANY($1::int[]))`, [before0])).map(([p]) => p);
			if (Date.now() > deadline) throw new Error('the worker opened no sessions');
			await sleep(50);
		}
		survivor = s.startWorker();
		const filing = submitAll(frozenList);
		// freeze it while one of its sessions holds a lock on a request (inside
		// step 1 or step 3 of a vet job); the stopped process cannot release it
		const psql = new Psql(s.env.P25_MIGRATE_DATABASE_URL, s.childEnv());
		const holding = async () => Number((await psql.query(`SELECT count(*) FROM pg_locks
			WHERE pid = ANY('{${mine.join(',')}}'::int[]) AND relation = 'requests'::regclass AND granted`))[0][0]);
		try {
			for (let tries = 0; !frozenJobs; tries++) {
				if (await holding() > 0) {
					frozenWorker.kill('SIGSTOP');
					await sleep(200); // a commit already sent to the server may still finish
					if (await holding() > 0) {
						const [[running]] = await s.sql(`SELECT count(*) FROM jobs WHERE kind = 'vet' AND state = 'running'
							AND locked_by LIKE '%:' || $1 || '/%'`, [String(frozenWorker.pid)]);
						frozenJobs = Number(running);
						break;
					}
					frozenWorker.kill('SIGCONT');
				}
				if (Date.now() > deadline) throw new Error('never caught the worker inside a transaction');
			}
		} finally {
			psql.close();
			await filing;
		}
		assert.ok(frozenJobs > 0, 'frozen holding vet jobs');
		// 5-second leases reaped every ~1.25 s; a frozen transaction ends after
		// 30 s idle (core/db.c): 75 s is plenty
		deadline = Date.now() + 75000;
		for (;;) {
			const [[open]] = await s.sql("SELECT count(*) FROM requests WHERE status IN ('pending', 'vetting')");
			if (open === '0') break;
			const [[waiting]] = await s.sql('SELECT count(*) FROM pg_locks WHERE NOT granted');
			if (waiting !== '0') lockWaits++;
			if (Date.now() > deadline) {
				const why = await s.sqlJson(`SELECT r.status, j.state, j.attempts, j.locked_by, j.last_error
					FROM requests r JOIN jobs j ON j.kind = 'vet' AND j.payload->>'request' = r.id::text
					WHERE r.status IN ('pending', 'vetting')`);
				const waits = await s.sqlJson(`SELECT locktype, relation::regclass::text AS rel, mode, pid
					FROM pg_locks WHERE NOT granted`);
				assert.fail(`${open} requests still open 75 s after a worker froze (live worker ${survivor.pid}):\n` +
					`${JSON.stringify(why)}\nungranted locks: ${JSON.stringify(waits)}`);
			}
			await sleep(250);
		}
	});

test('a frozen worker that wakes after its lease was taken over decides nothing twice', { timeout: 300000 }, async () => {
	assert.ok(frozenJobs > 0, 'the worker was frozen holding jobs');
	frozenWorker.kill('SIGCONT');
	const deadline = Date.now() + 120000;
	for (;;) {
		const [[open]] = await s.sql("SELECT count(*) FROM requests WHERE status IN ('pending', 'vetting')");
		const [[jobs]] = await s.sql("SELECT count(*) FROM jobs WHERE kind = 'vet' AND state IN ('queued', 'running')");
		if (open === '0' && jobs === '0') break;
		if (Date.now() > deadline) throw new Error(`${open} requests and ${jobs} vet jobs still open after SIGCONT`);
		await sleep(250);
	}
	// let the woken worker run into the end of whatever it was doing
	await sleep(3000);
	await Promise.all([frozenWorker.stop(), survivor.stop()]);
	const [taken] = await s.sqlJson(`SELECT count(*) AS n FROM jobs WHERE kind = 'vet' AND attempts > 1
		AND payload->>'request' = ANY($1::text[])`, [frozenList.map((p) => p.id)]);
	process.stderr.write(`vet_kill: froze a worker holding ${frozenJobs} vet jobs; ${taken.n} jobs ran more than once; ` +
		`${lockWaits} polls saw a lock wait while it was frozen\n`);
	assert.ok(taken.n >= 1, 'no job of the frozen worker was taken over');
	await checkInvariants(plan);
});
