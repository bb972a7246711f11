#!/usr/bin/env bash
# vet.sh — the vetting benchmark (issue 4): submit → decision latency of
# clean requests at a steady 20 requests/s, and vetting throughput with two
# p25-worker processes, with the DNS queries/s that took.  See
# bench/VETTING.md for what is measured and how to read it.
#
#   bash bench/vet.sh            full run (30 s of latency, 3000 requests of throughput)
#   bash bench/vet.sh --quick    10 s and 1000 requests
#
# stdout carries only figures and comments:
#   name value unit        a measurement
#   # ...                  the goal next to each figure (met or MISSED), the settings
# Progress goes to stderr.  A missed goal does not fail the run; the exit
# status is non-zero only when the run could not happen.
#
# Environment:
#   P25_BUILD_DIR           binaries from there instead of building the release preset
#   BENCH_WORKER_THREADS    P25_WORKER_THREADS of each of the two workers (8)
#   BENCH_LATENCY_SECONDS   length of the 20 requests/s run (30; 10 with --quick)
#   BENCH_RATE              requests/s of the latency run (20)
#   BENCH_REQUESTS          requests of the throughput run (3000; 1000 with --quick)
#   BENCH_KEEP=1            keep the work folder (logs, cluster, zone files)
#   BENCH_PGSS=1            load pg_stat_statements (track = all) and write the
#                           throughput run's statements, by total time, to
#                           pgss.txt in the work folder (use with BENCH_KEEP=1)
#
# Everything runs on loopback in a throwaway folder under $TMPDIR: a durable
# PostgreSQL 15 cluster (scripts/testpg.sh --durable: fsync on), rbldnsd
# serving the DNSBL zone, dnsmasq (cache off) answering PTR/A/TXT and
# forwarding the zone to rbldnsd (tests/lib/dns.mjs), p25-api and two
# p25-worker processes.  Every process this script starts is stopped at exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: bash bench/vet.sh [--quick]" >&2; exit 64 ;;
esac

# only the settings above come from the caller: a stray P25_* must not change what is measured
for v in $(compgen -e); do
	case "$v" in
	P25_BUILD_DIR) ;;
	P25_*) unset "$v" ;;
	esac
done

if [ -n "${P25_BUILD_DIR:-}" ]; then
	build=$(realpath "$P25_BUILD_DIR")
else
	echo "bench: building the release preset" >&2
	cmake --preset release >&2
	cmake --build --preset release -j 2 --target p25-api p25-worker p25ctl >&2
	build=$root/build/release
fi
for b in p25-api p25-worker p25ctl; do
	[ -x "$build/$b" ] || { echo "bench: $build/$b is missing" >&2; exit 1; }
done
for c in psql node /usr/sbin/rbldnsd /usr/sbin/dnsmasq; do
	command -v "$c" >/dev/null || { echo "bench: $c is missing (bash scripts/deps.sh)" >&2; exit 1; }
done

export BENCH_ROOT=$root BENCH_BUILD=$build BENCH_QUICK=$quick
exec node --input-type=module - <<'NODE'
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = process.env.BENCH_ROOT;
const buildDir = process.env.BENCH_BUILD;
const quick = process.env.BENCH_QUICK === '1';
const { run, signJwt, waitHealthy, freePort, sleep } = await import(pathToFileURL(`${root}/tests/lib/harness.mjs`).href);
const { startDns } = await import(pathToFileURL(`${root}/tests/lib/dns.mjs`).href);

const num = (name, def, lo, hi) => {
	const v = process.env[name] ?? String(def);
	if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) {
		console.error(`bench: ${name} must be a whole number from ${lo} to ${hi}`);
		process.exit(64);
	}
	return Number(v);
};
const THREADS = num('BENCH_WORKER_THREADS', 8, 1, 256);
const LAT_SECONDS = num('BENCH_LATENCY_SECONDS', quick ? 10 : 30, 1, 3600);
const RATE = num('BENCH_RATE', 20, 1, 10000);
const N = num('BENCH_REQUESTS', quick ? 1000 : 3000, 10, 60000);
const TENANTS = Math.ceil((RATE * LAT_SECONDS + N + 100) / 250);
if (TENANTS > 250) {
	console.error('bench: too many requests for the address plan (81.3.0.0/16, one address each)');
	process.exit(64);
}

const say = (m) => process.stderr.write(`bench: ${m}\n`);
const fig = (name, value, unit) => console.log(`${name} ${value}${unit ? ` ${unit}` : ''}`);
const goal = (ok, text) => console.log(`# goal: ${text} — ${ok === null ? 'not measured' : ok ? 'met' : 'MISSED'}`);

// ------------------------------------------------------------ the folder and its processes

const work = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'p25-vetbench-'));
fs.chmodSync(work, 0o755);
const children = [];
let stopping = false;
function start(name, bin, args, env) {
	const fd = fs.openSync(path.join(work, `${name}.log`), 'a');
	const p = spawn(bin, args, { env, stdio: ['ignore', fd, fd] });
	fs.closeSync(fd);
	const c = { name, p, done: false };
	c.exited = new Promise((r) => {
		p.on('exit', (code, sig) => r({ code, sig }));
		p.on('error', (e) => { // could not start (e.g. a binary being relinked)
			fs.appendFileSync(path.join(work, `${name}.log`), `bench: ${name}: ${e.message}\n`);
			r({ code: 127, sig: null });
		});
	});
	c.exited.then((st) => {
		c.done = true;
		if (!stopping && !c.expectExit) say(`${name} exited ${JSON.stringify(st)}; see ${work}/${name}.log`);
	});
	children.push(c);
	return c;
}
async function stopChild(c) {
	if (c.done) return;
	c.expectExit = true;
	c.p.kill('SIGTERM');
	const t = setTimeout(() => c.p.kill('SIGKILL'), 10000);
	await c.exited;
	clearTimeout(t);
}
let dns = null;
async function cleanup() {
	stopping = true;
	await Promise.all(children.map(stopChild));
	await dns?.stop().catch(() => {});
	await run('bash', [`${root}/scripts/testpg.sh`, 'stop', `${work}/pg`]);
	if (process.env.BENCH_KEEP === '1') say(`kept ${work}`);
	else fs.rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().finally(() => process.exit(130)));
// a crash: synchronous last resort
process.on('exit', () => {
	if (stopping) return;
	for (const c of children) if (!c.done) c.p.kill('SIGKILL');
	if (dns) for (const c of [dns.dnsmasq, dns.rbldnsd]) c?.kill('SIGKILL');
	spawnSync('bash', [`${root}/scripts/testpg.sh`, 'stop', `${work}/pg`], { stdio: 'ignore' });
	if (process.env.BENCH_KEEP !== '1') fs.rmSync(work, { recursive: true, force: true });
});

// A persistent psql: cheap queries for the pollers (one round trip each).
class Psql {
	constructor(url) {
		this.p = spawn('psql', ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=0', '-d', url],
			{ stdio: ['pipe', 'pipe', 'inherit'] });
		this.buf = '';
		this.waiting = [];
		this.p.stdout.on('data', (d) => {
			this.buf += d;
			let i;
			while ((i = this.buf.indexOf('__END__\n')) >= 0) {
				const out = this.buf.slice(0, i);
				this.buf = this.buf.slice(i + 8);
				const w = this.waiting.shift();
				w(out === '' ? [] : out.replace(/\n$/, '').split('\n').map((l) => l.split('\t')));
			}
		});
	}
	query(sql) {
		return new Promise((resolve) => {
			this.waiting.push(resolve);
			this.p.stdin.write(`${sql.replace(/;\s*$/, '')};\n\\echo __END__\n`);
		});
	}
	close() {
		this.p.stdin.end();
	}
}

// CPU seconds (user + system) the processes have used so far; postgres: the
// postmaster's children (backends, walwriter, checkpointer …)
function cpuSeconds(pids) {
	let ticks = 0;
	for (const pid of pids) {
		try {
			const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
			const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
			ticks += Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14 and 15)
		} catch { /* gone */ }
	}
	return ticks / 100; // USER_HZ
}
function postgresPids() {
	const master = Number(fs.readFileSync(`${work}/pg/data/postmaster.pid`, 'utf8').split('\n')[0]);
	const out = [master];
	for (const d of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(d)) continue;
		try {
			const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
			if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === master) out.push(Number(d));
		} catch { /* gone */ }
	}
	return out;
}

const pct = (a, q) => {
	if (!a.length) return NaN;
	const s = [...a].sort((x, y) => x - y);
	return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : 'n/a');

let ok = false;
try {
	// ------------------------------------------------------------ cluster, keys, tenants
	say(`work folder ${work}`);
	// a snapshot of the binaries: others may relink the build folder meanwhile
	fs.mkdirSync(`${work}/bin`);
	for (const b of ['p25-api', 'p25-worker', 'p25ctl']) fs.copyFileSync(`${buildDir}/${b}`, `${work}/bin/${b}`);
	for (const b of ['p25-api', 'p25-worker', 'p25ctl']) fs.chmodSync(`${work}/bin/${b}`, 0o755);
	const build = `${work}/bin`;
	const pg = await run('bash', [`${root}/scripts/testpg.sh`, 'start', `${work}/pg`, '--durable'], { timeoutMs: 120000 });
	if (pg.code !== 0) throw new Error(`testpg.sh: ${pg.stderr}`);
	const pgss = process.env.BENCH_PGSS === '1';
	if (pgss) { // statement statistics: a restart to load the library
		fs.appendFileSync(`${work}/pg/data/postgresql.conf`,
			"shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n");
		const rs = await run('bash', [`${root}/scripts/testpg.sh`, 'stop', `${work}/pg`]);
		const rr = rs.code === 0 && await run('bash', [`${root}/scripts/testpg.sh`, 'start', `${work}/pg`, '--durable'], { timeoutMs: 120000 });
		if (!rr || rr.code !== 0) throw new Error('testpg.sh restart with pg_stat_statements failed');
	}
	const env = {};
	for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('P25_')) env[k] = v;
	for (const line of pg.stdout.split('\n')) {
		const m = /^(P25_[A-Z_]+)=(.*)$/.exec(line);
		if (m) env[m[1]] = m[2];
	}
	const secret = crypto.randomBytes(48).toString('hex');
	fs.writeFileSync(`${work}/auth.key`, `${secret}\n`, { mode: 0o600 });
	fs.writeFileSync(`${work}/kek.hex`, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
	fs.writeFileSync(`${work}/policy.json`, JSON.stringify({ version: 'bench-1',
		description: 'the defaults, without the per-tenant request-rate and denial history limits',
		history_max_requests_24h: 100000, history_max_denials_30d: 1000 }));
	Object.assign(env, {
		P25_AUTH_ALG: 'HS256', P25_AUTH_KEY_FILE: `${work}/auth.key`, P25_AUTH_ISSUER: 'p25-bench-idp',
		P25_AUTH_AUDIENCE: 'p25', P25_KEK_FILE: `${work}/kek.hex`, P25_LOG_LEVEL: 'warn',
		P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '100000', P25_POLICY_FILE: `${work}/policy.json`,
		P25_WORKER_THREADS: String(THREADS), P25_DNSBL_ZONES: 'zen.bench',
	});
	for (const a of [['migrate'], ['keys', 'generate']]) {
		const r = await run(`${build}/p25ctl`, a, { env });
		if (r.code !== 0) throw new Error(`p25ctl ${a.join(' ')}: ${r.stderr}`);
	}
	const psql = new Psql(env.P25_MIGRATE_DATABASE_URL);
	const su = pgss ? new Psql(`postgresql:///p25?host=${work}/pg&user=postgres`) : null;
	if (su) await su.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
	await psql.query(`INSERT INTO tenants (id, name, account_created_at, verified, standing)
		SELECT 'b' || i, 'Bench ' || i, now() - interval '400 days', true, 'good' FROM generate_series(0, ${TENANTS - 1}) i`);
	await psql.query(`INSERT INTO tenant_addresses (tenant_id, prefix)
		SELECT 'b' || i, ('81.3.' || i || '.0/24')::cidr FROM generate_series(0, ${TENANTS - 1}) i`);

	// every address gets a forward-confirmed, non-generic PTR; one sender domain with SPF and DMARC
	const addrs = [];
	for (let t = 0; t < TENANTS; t++) for (let h = 1; h <= 250; h++) addrs.push({ tenant: `b${t}`, ip: `81.3.${t}.${h}` });
	const name = (i) => {
		let l = '';
		do {
			l = String.fromCharCode(97 + (i % 26)) + l;
			i = Math.floor(i / 26);
		} while (i > 0);
		return `mx-${l}.bench.example`;
	};
	dns = await startDns({ dir: work, dnsbl: { 'zen.bench': { ip4: ['81.4.0.0/16 :127.0.0.2:listed'] } },
		hostsFile: addrs.map((a, i) => [name(i), a.ip]),
		txt: [['bench.example', 'v=spf1 ip4:81.3.0.0/16 -all'], ['_dmarc.bench.example', 'v=DMARC1; p=reject']],
		local: ['bench.example'] });
	env.P25_DNS_SERVERS = dns.servers;

	const port = await freePort();
	env.P25_LISTEN = `127.0.0.1:${port}`;
	const api = start('api', `${build}/p25-api`, [], env);
	await waitHealthy(`http://127.0.0.1:${port}`, { name: 'api', get running() { return !api.done; }, logText: () => '' });
	const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
	const tokens = new Map();
	const tokenOf = (t) => {
		if (!tokens.has(t)) {
			const now = Math.floor(Date.now() / 1000);
			tokens.set(t, signJwt({ alg: 'HS256', typ: 'JWT' }, { iss: 'p25-bench-idp', aud: 'p25', sub: `${t}-user`,
				roles: ['tenant'], tenant: t, iat: now, exp: now + 86400 }, secret));
		}
		return tokens.get(t);
	};
	let next = 0;
	const submit = (tag) => new Promise((resolve, reject) => {
		const a = addrs[next++];
		const body = JSON.stringify({ addresses: [a.ip], use_case: 'transactional', sender_domains: ['bench.example'],
			description: tag });
		const t0 = performance.now();
		const req = http.request({ host: '127.0.0.1', port, path: '/v1/requests', method: 'POST', agent, headers: {
			'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
			Authorization: `Bearer ${tokenOf(a.tenant)}` } }, (res) => {
			let text = '';
			res.on('data', (d) => { text += d; });
			res.on('end', () => {
				if (res.statusCode !== 202) return reject(new Error(`submit: ${res.statusCode} ${text}`));
				resolve({ id: JSON.parse(text).id, t0, t1: performance.now() });
			});
		});
		req.on('error', reject);
		req.end(body);
	});
	const wenv = { ...env };
	delete wenv.P25_LISTEN;
	const startWorkers = () => [start('worker-1', `${build}/p25-worker`, [], wenv), start('worker-2', `${build}/p25-worker`, [], wenv)];

	// ------------------------------------------------------------ latency at a steady rate
	let workers = startWorkers();
	await sleep(500);
	say('warm-up: 20 requests');
	const warm = await Promise.all(Array.from({ length: 20 }, () => submit('warm-up')));
	for (;;) {
		const [[open]] = await psql.query(`SELECT count(*) FROM requests WHERE status IN ('pending', 'vetting')`);
		if (open === '0') break;
		await sleep(50);
	}
	say(`latency: ${RATE} requests/s for ${LAT_SECONDS} s`);
	const total = RATE * LAT_SECONDS;
	const pending = new Map(); // id → t0
	const lat = [];
	const submitMs = [];
	const ids = [];
	let submitted = 0;
	let polling = true;
	const poller = (async () => {
		while (polling || pending.size) {
			if (pending.size) {
				const list = [...pending.keys()];
				const rows = await psql.query(`SELECT id FROM requests WHERE id = ANY('{${list.join(',')}}'::uuid[])
					AND status NOT IN ('pending', 'vetting')`);
				const now = performance.now();
				for (const [id] of rows) {
					lat.push(now - pending.get(id));
					pending.delete(id);
				}
			}
			await sleep(5);
		}
	})();
	const t00 = performance.now();
	const inflight = [];
	for (let i = 0; i < total; i++) {
		const due = t00 + (i * 1000) / RATE;
		const wait = due - performance.now();
		if (wait > 0) await sleep(wait);
		inflight.push(submit('latency').then((r) => {
			pending.set(r.id, r.t0);
			ids.push(r.id);
			submitMs.push(r.t1 - r.t0);
			submitted++;
		}));
	}
	await Promise.all(inflight);
	const achieved = submitted / ((performance.now() - t00) / 1000);
	const guard = Date.now() + 120000;
	while (pending.size && Date.now() < guard) await sleep(50);
	polling = false;
	await poller;
	const server = (await psql.query(`SELECT extract(epoch FROM d.created_at - r.created_at) * 1000
		FROM requests r JOIN decisions d ON d.request_id = r.id WHERE r.id = ANY('{${ids.join(',')}}'::uuid[])`))
		.map(([v]) => Number(v));
	const outcomes = await psql.query(`SELECT status, count(*) FROM requests WHERE id = ANY('{${ids.join(',')}}'::uuid[])
		GROUP BY 1 ORDER BY 1`);

	// ------------------------------------------------------------ throughput with two workers
	await Promise.all(workers.map(stopChild));
	say(`throughput: filing ${N} requests with the workers stopped`);
	const tf = performance.now();
	const thr = [];
	await Promise.all(Array.from({ length: 16 }, async () => {
		while (thr.length < N) {
			const i = thr.length;
			thr.push(null);
			thr[i] = await submit('throughput');
		}
	}));
	const fileRate = N / ((performance.now() - tf) / 1000);
	const thrIds = thr.map((r) => r.id);
	const q0 = await dns.queryCount();
	say('throughput: two workers start');
	const dnsPids = [dns.dnsmasq.pid, dns.rbldnsd.pid];
	if (su) await su.query('SELECT pg_stat_statements_reset()');
	const cpu0 = { pg: cpuSeconds(postgresPids()), dns: cpuSeconds(dnsPids) };
	const w0 = Date.now();
	workers = startWorkers();
	for (;;) {
		const [[open]] = await psql.query(`SELECT count(*) FROM requests WHERE status IN ('pending', 'vetting')`);
		if (open === '0') break;
		if (Date.now() - w0 > 600000) throw new Error(`${open} requests still open after 10 minutes`);
		await sleep(20);
	}
	const w1 = Date.now();
	// before the workers stop: their backends still exist
	const cpu1 = { pg: cpuSeconds(postgresPids()), dns: cpuSeconds(dnsPids),
		workers: cpuSeconds(workers.map((w) => w.p.pid)) };
	const q1 = await dns.queryCount();
	const [[span, mid]] = await psql.query(`WITH d AS (SELECT d.created_at FROM decisions d
		WHERE d.request_id = ANY('{${thrIds.join(',')}}'::uuid[]))
		SELECT extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY created_at)
		 - percentile_disc(0.1) WITHIN GROUP (ORDER BY created_at)), count(*) * 0.8 FROM d`);
	const thrOutcomes = await psql.query(`SELECT status, count(*) FROM requests
		WHERE id = ANY('{${thrIds.join(',')}}'::uuid[]) GROUP BY 1 ORDER BY 1`);
	await Promise.all(workers.map(stopChild));
	if (su) {
		const rows = await su.query(`SELECT calls, round(total_exec_time::numeric, 1),
			round((total_exec_time / ${N})::numeric, 3), toplevel,
			regexp_replace(left(query, 160), '\\s+', ' ', 'g')
			FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 60`);
		fs.writeFileSync(`${work}/pgss.txt`, 'calls\ttotal_ms\tms_per_request\ttoplevel\tquery\n' +
			rows.map((r) => r.join('\t')).join('\n') + '\n');
		su.close();
	}
	psql.close();

	// ------------------------------------------------------------ figures
	const secs = (w1 - w0) / 1000;
	const p50 = pct(lat, 0.5);
	const p99 = pct(lat, 0.99);
	console.log(`# vetting benchmark: release build (${buildDir}), durable PostgreSQL 15 (fsync on), loopback DNS`);
	console.log(`# (dnsmasq, cache off, in front of rbldnsd: 1 DNSBL zone); clean requests: 1 address, 1 sender`);
	console.log(`# domain (SPF + DMARC); 2 p25-worker processes x P25_WORKER_THREADS=${THREADS}, P25_JOB_BATCH=8;`);
	console.log(`# ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end`);
	fig('vet.latency.rate', r1(achieved), 'requests/s');
	fig('vet.latency.requests', lat.length);
	fig('vet.latency.p50', r1(p50), 'ms');
	fig('vet.latency.p99', r1(p99), 'ms');
	fig('vet.latency.max', r1(Math.max(...lat)), 'ms');
	goal(Number.isFinite(p99) ? p99 < 2000 : null, 'submit → decision p99 < 2000 ms at 20 requests/s');
	fig('vet.latency.server.p50', r1(pct(server, 0.5)), 'ms');
	fig('vet.latency.server.p99', r1(pct(server, 0.99)), 'ms');
	fig('vet.latency.submit.p50', r1(pct(submitMs, 0.5)), 'ms');
	fig('vet.latency.submit.p99', r1(pct(submitMs, 0.99)), 'ms');
	console.log(`# latency run outcomes: ${outcomes.map(([st, c]) => `${st} ${c}`).join(', ')}` +
		(pending.size ? `; ${pending.size} not decided within 120 s` : ''));
	fig('vet.throughput', r1(N / secs), 'requests/s');
	fig('vet.throughput.steady', r1(Number(mid) / Number(span)), 'requests/s');
	goal(N / secs >= 300, 'vetting throughput >= 300 requests/s with two workers');
	fig('vet.throughput.requests', N);
	fig('vet.throughput.seconds', r1(secs), 's');
	fig('vet.dns.queries', r1((q1 - q0) / secs), 'queries/s');
	fig('vet.dns.per_request', r1((q1 - q0) / N), 'queries');
	fig('vet.submit.rate', r1(fileRate), 'requests/s');
	// what one decision costs in CPU, whatever else the machine is doing: the
	// capacity of the machine's cores at that cost is an upper bound, not a measurement
	const cpuW = cpu1.workers;
	const cpuPg = cpu1.pg - cpu0.pg;
	const cpuDns = cpu1.dns - cpu0.dns;
	const perReq = ((cpuW + cpuPg + cpuDns) * 1000) / N;
	fig('vet.cpu.worker', r1((cpuW * 1000) / N), 'ms/request');
	fig('vet.cpu.postgres', r1((cpuPg * 1000) / N), 'ms/request');
	fig('vet.cpu.dns', r1((cpuDns * 1000) / N), 'ms/request');
	fig('vet.cpu.total', r1(perReq), 'ms/request');
	fig('vet.capacity.cpu_bound', r1((os.cpus().length * 1000) / perReq), 'requests/s');
	console.log(`# vet.capacity.cpu_bound = CPUs / vet.cpu.total: what the cores could decide at this cost`);
	console.log(`# throughput run outcomes: ${thrOutcomes.map(([st, c]) => `${st} ${c}`).join(', ')}`);
	ok = true;
} catch (e) {
	say(`failed: ${e.stack || e.message}`);
	for (const f of fs.existsSync(work) ? fs.readdirSync(work).filter((x) => x.endsWith('.log')) : []) {
		const t = fs.readFileSync(path.join(work, f), 'utf8');
		if (t.trim()) process.stderr.write(`----- ${f}\n${t.slice(-4000)}\n`);
	}
} finally {
	await cleanup();
}
process.exit(ok ? 0 : 1);
NODE
