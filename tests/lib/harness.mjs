// harness.mjs — the stack every integration test talks to.
//
//   import { startStack } from '../lib/harness.mjs';
//   const s = await startStack({ worker: false, env: { P25_RATE_LIMIT: '5' } });
//   const r = await s.api('POST', '/v1/requests', { token: s.token({ roles: ['tenant'], tenant: 't1' }), body: {...} });
//   await s.stop();
//
// startStack() makes a short temporary folder (/tmp/p25-XXXXXX: the unix
// socket path of PostgreSQL is limited to 107 bytes), starts a throwaway
// PostgreSQL 15 cluster in it with scripts/testpg.sh, writes a development
// HS256 secret and a KEK, runs `p25ctl migrate`, and starts the real
// `p25-api` (and `p25-worker` when asked) from P25_BUILD_DIR (default
// build/debug) on a free loopback port, then waits for GET /healthz.
//
// Every child's stdout and stderr go to DIR/<name>.log.  When the test
// process ends with a failure the logs of every stack are printed to stderr
// (dumpLogs() prints them on demand).  Nothing outlives the test: stop() is
// also run on exit and on SIGINT/SIGTERM, and a detached watchdog stops the
// cluster and the children should the test process be killed outright
// (ctest's timeout).  P25_KEEP=1 keeps the folder (and prints where it is).
//
// When P25_CONTRACT_LOG names a file, every answer s.api() receives is
// appended to it as one JSON line {method, path, query, status, contentType,
// body, requestContentType, requestBody}: the contract test checks them
// against openapi.yaml.
//
// Only node: built-ins are used.  JWTs are signed with node:crypto.
import { spawn, spawnSync, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.P25_SOURCE_DIR || path.resolve(here, '../..');
export const BUILD_DIR = path.resolve(SOURCE_DIR, process.env.P25_BUILD_DIR || 'build/debug');
const KEEP = process.env.P25_KEEP === '1';
const CONTRACT_LOG = process.env.P25_CONTRACT_LOG || '';

export const TEST_ISSUER = 'p25-test-idp';
export const TEST_AUDIENCE = 'p25';

// ------------------------------------------------------------ small helpers

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a program to its end: {code, stdout, stderr}; never throws on a non-zero exit. */
export function run(cmd, args, { env, input, timeoutMs = 60000, cwd } = {}) {
	return new Promise((resolve, reject) => {
		const child = execFile(cmd, args, { env, cwd, timeout: timeoutMs, maxBuffer: 64 << 20 },
			(err, stdout, stderr) => {
				if (err && typeof err.code !== 'number' && !err.signal) return reject(err);
				resolve({ code: err ? (typeof err.code === 'number' ? err.code : 128) : 0,
					signal: err?.signal ?? null, stdout, stderr });
			});
		// a child that exits at once closes its stdin: not the caller's problem
		child.stdin.on('error', () => {});
		child.stdin.end(input ?? '');
	});
}

/**
 * Polls fn (sync or async) until it returns a truthy value, which it
 * resolves to; throws after timeoutMs naming what it waited for.
 */
export async function waitFor(fn, { timeoutMs = 20000, intervalMs = 100, what = 'condition' } = {}) {
	const deadline = Date.now() + timeoutMs;
	let last;
	for (;;) {
		try {
			const v = await fn();
			if (v) return v;
			last = v;
		} catch (e) {
			last = e;
		}
		if (Date.now() > deadline) {
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
				(last instanceof Error ? `: ${last.message}` : ''));
		}
		await sleep(intervalMs);
	}
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

function b64url(buf) {
	return Buffer.from(buf).toString('base64url');
}

/**
 * Signs a JWT.  alg HS256/HS384/HS512 are HMACs with secret; 'none' gives an
 * empty signature; any other alg in the header is still HMAC-SHA256 signed
 * (a forgery the server must refuse).
 */
export function signJwt(header, payload, secret) {
	const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
	if (header.alg === 'none') return `${input}.`;
	const hash = { HS384: 'sha384', HS512: 'sha512' }[header.alg] || 'sha256';
	return `${input}.${b64url(crypto.createHmac(hash, secret).update(input).digest())}`;
}

function readSecret(file) {
	// the services strip trailing newlines from the secret file: so do we
	return Buffer.from(fs.readFileSync(file, 'utf8').replace(/[\r\n]+$/, ''), 'utf8');
}

// ------------------------------------------------------------ cleanup on exit

const live = new Set(); // stacks not yet stopped
const finished = []; // {dir, logs} of stopped stacks, for the failure dump
let hooked = false;

function hookProcess() {
	if (hooked) return;
	hooked = true;
	process.on('exit', (code) => {
		for (const s of live) s._stopSync();
		if (code !== 0) dumpAll();
	});
	for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
		process.on(sig, () => {
			for (const s of live) s._stopSync();
			dumpAll();
			process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
		});
	}
}

function dumpAll() {
	for (const { dir, logs } of finished) printLogs(dir, logs);
	finished.length = 0;
}

function printLogs(dir, logs) {
	for (const [name, text] of Object.entries(logs)) {
		if (!text.trim()) continue;
		process.stderr.write(`\n----- ${dir}/${name} -----\n${text}${text.endsWith('\n') ? '' : '\n'}`);
	}
}

function readLogs(dir) {
	const logs = {};
	let names = [];
	try {
		names = fs.readdirSync(dir).filter((n) => n.endsWith('.log')).sort();
	} catch {
		return logs;
	}
	for (const n of names) {
		try {
			const text = fs.readFileSync(path.join(dir, n), 'utf8');
			logs[n] = text.length > 200000 ? `[… ${text.length - 200000} bytes cut …]\n${text.slice(-200000)}` : text;
		} catch { /* gone */ }
	}
	// PostgreSQL's own log, when it has something to say
	try {
		logs['pg/server.log'] = fs.readFileSync(path.join(dir, 'pg/server.log'), 'utf8').slice(-20000);
	} catch { /* none */ }
	return logs;
}

/** Prints the logs of a stack (all of them, or the one named) to stderr. */
export function dumpLogs(s, name) {
	const logs = readLogs(s.dir);
	printLogs(s.dir, name ? { [name]: logs[name] ?? '' } : logs);
}

// A detached shell that outlives a SIGKILLed test process: when the node
// process is gone it kills the children recorded in DIR/pids, stops the
// cluster and removes the folder.  It holds no pipe of ours (stdio ignored),
// so ctest does not wait for it.
function startWatchdog(dir) {
	const script = `
		while kill -0 "$1" 2>/dev/null; do sleep 1; done
		[ -d "$2" ] || exit 0
		if [ -f "$2/pids" ]; then while read -r p; do kill -9 "$p" 2>/dev/null; done <"$2/pids"; fi
		bash "$3" stop "$2/pg" >/dev/null 2>&1
		[ "$4" = 1 ] || rm -rf "$2"`;
	const w = spawn('bash', ['-c', script, 'p25-watchdog', String(process.pid), dir,
		path.join(SOURCE_DIR, 'scripts/testpg.sh'), KEEP ? '1' : '0'],
	{ detached: true, stdio: 'ignore' });
	w.unref();
}

// ------------------------------------------------------------ processes

const SANITIZER_REPORT = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

/** A running binary: kill(), stop(), and exited (resolves to {code, signal}). */
class Child {
	constructor(name, proc, logPath, url) {
		this.name = name;
		this.proc = proc;
		this.pid = proc.pid;
		this.log = logPath;
		this.url = url;
		this.exitStatus = null;
		this.exited = new Promise((resolve) => {
			const done = (code, signal) => {
				if (this.exitStatus) return;
				this.exitStatus = { code, signal };
				resolve(this.exitStatus);
			};
			proc.on('exit', done);
			proc.on('error', (e) => {
				// could not start (or signal): the log says why
				fs.appendFileSync(logPath, `harness: ${name}: ${e.message}\n`);
				if (proc.pid === undefined) done(127, null);
			});
		});
	}

	get running() {
		return this.exitStatus === null;
	}

	kill(signal = 'SIGTERM') {
		if (this.running) {
			try {
				this.proc.kill(signal);
			} catch { /* already gone */ }
		}
	}

	/** SIGTERM, then SIGKILL after timeoutMs; resolves to the exit status. */
	async stop(timeoutMs = 10000) {
		if (!this.running) return this.exitStatus;
		this.kill('SIGTERM');
		const t = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
		const st = await this.exited;
		clearTimeout(t);
		return st;
	}

	logText() {
		try {
			return fs.readFileSync(this.log, 'utf8');
		} catch {
			return '';
		}
	}
}

// ------------------------------------------------------------ the stack

class Stack {
	constructor(dir) {
		this.dir = dir;
		this.buildDir = BUILD_DIR;
		this.sourceDir = SOURCE_DIR;
		this.env = {};
		this.children = [];
		this.apiProc = null;
		this.url = '';
		this.port = 0;
		this.counts = {};
		this.stopped = false;
		this.dns = null;
	}

	/** The environment a child gets: ours without stray P25_*, then the stack's, then extra. */
	childEnv(extra = {}) {
		const base = {};
		for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('P25_')) base[k] = v;
		return { ...base, ...this.env, ...extra };
	}

	_logName(name) {
		this.counts[name] = (this.counts[name] || 0) + 1;
		return this.counts[name] === 1 ? `${name}.log` : `${name}-${this.counts[name]}.log`;
	}

	/** Starts BUILD_DIR/bin with the stack env (+extra); output to DIR/<name>.log. */
	spawn(name, bin, args = [], extraEnv = {}, url) {
		const logPath = path.join(this.dir, this._logName(name));
		const fd = fs.openSync(logPath, 'a');
		let proc;
		try {
			proc = spawn(path.resolve(this.buildDir, bin), args, {
				env: this.childEnv(extraEnv), stdio: ['ignore', fd, fd],
			});
		} finally {
			fs.closeSync(fd);
		}
		const child = new Child(name, proc, logPath, url);
		this.children.push(child);
		this._writePids();
		child.exited.then(() => this._writePids());
		return child;
	}

	// DIR/pids: the children still running, for the watchdog (a pid that
	// has exited is never left there to be recycled and killed)
	_writePids() {
		const pids = this.children.filter((c) => c.running && c.pid).map((c) => `${c.pid}\n`).join('');
		try {
			fs.writeFileSync(path.join(this.dir, 'pids'), pids);
		} catch { /* the folder is gone: nothing to watch */ }
	}

	/**
	 * Starts p25-api.  By default it replaces the current one (stopped first)
	 * on the same port and becomes s.apiProc / s.url; with {replace: false} it
	 * is an additional instance on a new port (its .url says where).  Waits for
	 * /healthz unless {wait: false}.
	 */
	async startApi(extraEnv = {}, { replace = true, wait = true, timeoutMs = 20000 } = {}) {
		if (replace && this.apiProc) await this.apiProc.stop();
		for (let attempt = 1; ; attempt++) {
			const port = extraEnv.P25_LISTEN ? Number(extraEnv.P25_LISTEN.split(':').pop())
				: (replace && this.port && attempt === 1 ? this.port : await freePort());
			const url = `http://127.0.0.1:${port}`;
			const child = this.spawn('api', 'p25-api', [], { P25_LISTEN: `127.0.0.1:${port}`, ...extraEnv }, url);
			if (replace) {
				this.apiProc = child;
				this.port = port;
				this.url = url;
			}
			if (!wait) return child;
			try {
				await waitHealthy(url, child, timeoutMs);
				return child;
			} catch (e) {
				// another process took the port between freePort() and bind: once more
				if (attempt < 3 && !child.running && /in use|EADDRINUSE|bind/i.test(child.logText())) continue;
				throw e;
			}
		}
	}

	/** Starts a p25-worker (any number of them); does not wait for anything. */
	startWorker(extraEnv = {}) {
		return this.spawn('worker', 'p25-worker', [], extraEnv);
	}

	/** The feed position now (the snapshot's seq), read with an enforcer TOKEN. */
	async feedHead(token) {
		const r = await this.api('GET', '/v1/enforcement/snapshot', { token });
		if (r.status !== 200) throw new Error(`snapshot: ${r.status} ${r.text}`);
		return r.json.seq;
	}

	/** The feed events after SEQ (up to 1000), read with an enforcer TOKEN. */
	async feedEvents(seq, token) {
		const r = await this.api('GET', `/v1/enforcement/feed?after=${seq}&limit=1000`, { token });
		if (r.status !== 200) throw new Error(`feed: ${r.status} ${r.text}`);
		return r.json.events;
	}

	/**
	 * An HTTP call to the API.  body: object → JSON (Content-Type set unless
	 * given), string or Buffer → sent as is.  Resolves to {status, headers
	 * (a Headers), text, json (parsed when the answer is JSON, else null)}.
	 */
	api(method, urlPath, { token, body, headers = {}, timeoutMs = 30000, baseUrl } = {}) {
		// the path goes out as written (no URL normalization: tests send odd ones)
		const base = new URL(baseUrl || this.url);
		const hdrs = { ...headers };
		const has = (n) => Object.keys(hdrs).some((k) => k.toLowerCase() === n);
		let payload;
		if (body !== undefined && body !== null) {
			if (typeof body === 'string' || Buffer.isBuffer(body)) {
				payload = Buffer.from(body);
			} else {
				payload = Buffer.from(JSON.stringify(body));
				if (!has('content-type')) hdrs['Content-Type'] = 'application/json';
			}
			if (!has('content-length') && !has('transfer-encoding')) hdrs['Content-Length'] = payload.length;
		}
		if (token && !has('authorization')) hdrs.Authorization = `Bearer ${token}`;
		return new Promise((resolve, reject) => {
			const req = http.request({ host: base.hostname, port: base.port, path: urlPath, method,
				headers: hdrs, agent: false }, (res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('error', reject);
				res.on('end', () => {
					const text = Buffer.concat(chunks).toString('utf8');
					const h = new Headers();
					for (let i = 0; i < res.rawHeaders.length; i += 2) {
						try {
							h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
						} catch { /* a header Headers will not hold */ }
					}
					const ct = h.get('content-type') || '';
					let json = null;
					if (text && /json/i.test(ct)) {
						try {
							json = JSON.parse(text);
						} catch { /* left null: the test sees text */ }
					}
					const out = { status: res.statusCode, headers: h, text, json };
					if (CONTRACT_LOG) recordContract(method, urlPath, out, hdrs, payload);
					resolve(out);
				});
			});
			req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeoutMs} ms`)));
			req.on('error', reject);
			req.end(payload);
		});
	}

	/**
	 * A bearer token signed with the stack's dev secret.  Claims default to a
	 * valid token (iss/aud of the stack, iat now, exp in ttl seconds); pass
	 * null to leave a claim out.  To forge bad ones: iss, aud, exp (e.g.
	 * now-3600), nbf, alg ('none', 'HS512', 'RS256' …), header (merged into
	 * the JOSE header), secret (sign with another key), claims (extra claims).
	 */
	token({ sub = 'u1', roles = ['tenant'], tenant, exp, nbf, iat, iss, aud, ttl = 3600,
		alg = 'HS256', header = {}, claims = {}, secret } = {}) {
		const now = Math.floor(Date.now() / 1000);
		const payload = {
			iss: iss === undefined ? this.env.P25_AUTH_ISSUER : iss,
			aud: aud === undefined ? this.env.P25_AUTH_AUDIENCE : aud,
			sub,
			roles,
			tenant,
			iat: iat === undefined ? now : iat,
			nbf,
			exp: exp === undefined ? now + ttl : exp,
			...claims,
		};
		for (const k of Object.keys(payload)) if (payload[k] === undefined || payload[k] === null) delete payload[k];
		return signJwt({ alg, typ: 'JWT', ...header }, payload, secret ?? this.secret);
	}

	/**
	 * SQL as the table owner (p25_owner: not a superuser; it owns the tables,
	 * so row-level security does not apply to it).  Parameters are $1, $2 …,
	 * passed as psql variables (quoted literals; cast as needed: $1::inet);
	 * null/undefined become NULL, arrays a PostgreSQL array literal, objects
	 * JSON.  Resolves to the rows as arrays of strings (fields split on tabs,
	 * rows on newlines: for values that may hold either, use sqlJson).
	 */
	async sql(text, params = []) {
		const args = ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
			'-d', this.env.P25_MIGRATE_DATABASE_URL];
		const body = text.replace(/\$(\d+)/g, (m, n) => {
			const i = Number(n) - 1;
			if (i < 0 || i >= params.length) throw new Error(`sql: $${n} has no parameter`);
			const v = params[i];
			if (v === null || v === undefined) return 'NULL';
			args.push('-v', `p${n}=${sqlValue(v)}`);
			return `:'p${n}'`;
		});
		const r = await run('psql', args, { input: `${body}\n`, env: this.childEnv() });
		if (r.code !== 0) throw new Error(`sql failed (${r.code}): ${r.stderr.trim()}\n  in: ${text}`);
		const out = r.stdout.replace(/\n$/, '');
		return out === '' ? [] : out.split('\n').map((line) => line.split('\t'));
	}

	/** The rows of one SELECT as objects (json_agg), [] when there are none. */
	async sqlJson(text, params = []) {
		const q = `SELECT coalesce(json_agg(t), '[]'::json) FROM (${text.replace(/;\s*$/, '')}) t`;
		const rows = await this.sql(q, params);
		return JSON.parse(rows.map((r) => r.join('\t')).join('\n'));
	}

	/** Runs p25ctl with the stack env (+opts.env) → {code, stdout, stderr}. */
	ctl(args, { env = {}, input, timeoutMs = 60000 } = {}) {
		return run(path.resolve(this.buildDir, 'p25ctl'), args, { env: this.childEnv(env), input, timeoutMs });
	}

	/** A tenant and its address inventory, straight into the database. */
	async createTenant(id, { name, addresses = [], verified = true, standing = 'good', ageDays = 400,
		webhookUrl = null } = {}) {
		await this.sql(`BEGIN;
INSERT INTO tenants (id, name, account_created_at, verified, standing, webhook_url)
VALUES ($1, $2, now() - make_interval(days => $3::int), $4::boolean, $5, $6);
INSERT INTO tenant_addresses (tenant_id, prefix) SELECT $1, unnest($7::cidr[]);
COMMIT;`, [id, name ?? `Tenant ${id}`, ageDays, verified, standing, webhookUrl, addresses]);
	}

	/**
	 * Local DNS on loopback for the vetting workers: rbldnsd serving DNSBL
	 * zones, behind dnsmasq answering PTR/A/AAAA/TXT records (and NXDOMAIN for
	 * the rest of the domains it owns).  Sets P25_DNS_SERVERS and
	 * P25_DNSBL_ZONES in s.env, so start workers after it.
	 *   dnsbl:  { 'zen.test': ['81.2.69.40', '81.2.69.41 :127.0.0.10:PBL test'] }  (ip4set lines;
	 *           127.0.0.2 is always listed, RFC 5782)
	 *   hosts:  [['mail.example.com', '81.2.69.5']]   A/AAAA and the matching PTR
	 *   ptr:    [['81.2.69.7', 'ghost.example.com']]  PTR only
	 *   txt:    [['example.com', 'v=spf1 -all']]       (a comma in the text starts a new string)
	 *   local:  ['example.com', '69.2.81.in-addr.arpa'] domains answered locally only (NXDOMAIN
	 *           for unknown names; anything else not local is REFUSED)
	 */
	async startDns({ dnsbl = { 'zen.test': [] }, hosts = [], ptr = [], txt = [], local = [] } = {}) {
		const zdir = path.join(this.dir, 'dns');
		fs.mkdirSync(zdir, { recursive: true });
		fs.chmodSync(this.dir, 0o755);
		fs.chmodSync(zdir, 0o755);
		const sets = [];
		for (const [zone, lines] of Object.entries(dnsbl)) {
			const file = `${zone}.zone`;
			fs.writeFileSync(path.join(zdir, file), [
				`$SOA 60 ns.${zone}. hostmaster.${zone}. 0 600 300 86400 60`,
				`$NS 60 ns.${zone}.`, '$TTL 60', `:127.0.0.2:Listed in ${zone}, see http://${zone}/?ip=$`,
				'127.0.0.2', ...lines, ''].join('\n'), { mode: 0o644 });
			sets.push(`${zone}:ip4set:${file}`);
		}
		const root = process.getuid?.() === 0;
		const rblPort = await freeUdpTcpPort();
		const rbl = this.spawn('rbldnsd', '/usr/sbin/rbldnsd',
			['-n', ...(root ? ['-u', 'nobody'] : []), '-b', `127.0.0.1/${rblPort}`, '-w', zdir, ...sets]);
		const dnsPort = await freeUdpTcpPort(rblPort);
		const args = ['--keep-in-foreground', '--conf-file=/dev/null', '--pid-file',
			...(root ? ['--user=nobody', '--group=nogroup'] : []), `--port=${dnsPort}`,
			'--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
			'--log-facility=-', '--log-queries'];
		for (const d of local) args.push(`--local=/${d}/`);
		for (const [name, ...addrs] of hosts) args.push(`--host-record=${[name, ...addrs].join(',')}`);
		for (const [ip, name] of ptr) args.push(`--ptr-record=${reverseName(ip)},${name}`);
		for (const [name, value] of txt) args.push(`--txt-record=${name},${value}`);
		for (const zone of Object.keys(dnsbl)) args.push(`--server=/${zone}/127.0.0.1#${rblPort}`);
		const dnsmasq = this.spawn('dnsmasq', '/usr/sbin/dnsmasq', args);
		// both are up once dnsmasq answers a DNSBL test query through rbldnsd
		const zone = Object.keys(dnsbl)[0];
		const deadline = Date.now() + 10000;
		for (;;) {
			if (!rbl.running || !dnsmasq.running) {
				throw new Error(`DNS did not start:\n${rbl.logText()}\n${dnsmasq.logText()}`);
			}
			try {
				const { Resolver } = await import('node:dns/promises');
				const r = new Resolver({ timeout: 300, tries: 1 });
				r.setServers([`127.0.0.1:${dnsPort}`]);
				if (!zone || (await r.resolve4(`2.0.0.127.${zone}`)).includes('127.0.0.2')) break;
			} catch (e) {
				if (Date.now() > deadline) throw new Error(`DNS not answering: ${e.message}\n${dnsmasq.logText()}`);
			}
			await sleep(100);
		}
		this.env.P25_DNS_SERVERS = `127.0.0.1:${dnsPort}`;
		this.env.P25_DNSBL_ZONES = Object.keys(dnsbl).join(',');
		this.dns = { servers: this.env.P25_DNS_SERVERS, zones: Object.keys(dnsbl), rbldnsd: rbl, dnsmasq };
		return this.dns;
	}

	/** The text of every log of this stack, by file name. */
	logs() {
		return readLogs(this.dir);
	}

	/**
	 * Stops the children (SIGTERM, SIGKILL after 10 s) and the cluster and
	 * removes the folder (kept with P25_KEEP=1).  Throws when a child's log
	 * holds a sanitizer report (leaks are reported at exit), after cleaning up.
	 */
	async stop() {
		if (this.stopped) return;
		this.stopped = true;
		await Promise.all(this.children.map((c) => c.stop()));
		await run('bash', [path.join(SOURCE_DIR, 'scripts/testpg.sh'), 'stop', path.join(this.dir, 'pg')]);
		const logs = readLogs(this.dir);
		finished.push({ dir: this.dir, logs });
		live.delete(this);
		this._remove();
		const bad = Object.entries(logs).filter(([n, t]) => !n.startsWith('pg/') && SANITIZER_REPORT.test(t));
		if (bad.length) {
			throw new Error(`sanitizer report in ${bad.map(([n]) => n).join(', ')}:\n` +
				bad.map(([n, t]) => `--- ${n}\n${t.slice(-8000)}`).join('\n'));
		}
	}

	_remove() {
		if (KEEP) {
			process.stderr.write(`P25_KEEP: stack kept in ${this.dir}\n`);
		} else {
			fs.rmSync(this.dir, { recursive: true, force: true });
		}
	}

	// process exit: no event loop left, so everything synchronous
	_stopSync() {
		if (this.stopped) return;
		this.stopped = true;
		for (const c of this.children) c.kill('SIGKILL');
		spawnSync('bash', [path.join(SOURCE_DIR, 'scripts/testpg.sh'), 'stop', path.join(this.dir, 'pg')],
			{ stdio: 'ignore' });
		finished.push({ dir: this.dir, logs: readLogs(this.dir) });
		live.delete(this);
		this._remove();
	}
}

function sqlValue(v) {
	if (Array.isArray(v)) {
		return `{${v.map((e) => (e === null ? 'NULL' : `"${String(e).replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;
	}
	if (typeof v === 'object' && !(v instanceof Date)) return JSON.stringify(v);
	if (v instanceof Date) return v.toISOString();
	return String(v);
}

function reverseName(ip) {
	if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
	// IPv6: expand to 32 nibbles
	const [head, tail = ''] = ip.split('::');
	const h = head ? head.split(':') : [];
	const t = tail ? tail.split(':') : [];
	const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
	const nibbles = groups.map((g) => g.padStart(4, '0')).join('');
	return `${nibbles.split('').reverse().join('.')}.ip6.arpa`;
}

async function freeUdpTcpPort(avoid) {
	const dgram = await import('node:dgram');
	for (let i = 0; i < 50; i++) {
		const port = await freePort();
		if (port === avoid) continue;
		const ok = await new Promise((resolve) => {
			const s = dgram.createSocket('udp4');
			s.once('error', () => resolve(false));
			s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
		});
		if (ok) return port;
	}
	throw new Error('no free UDP+TCP port');
}

function recordContract(method, urlPath, res, reqHeaders, payload) {
	const q = urlPath.indexOf('?');
	const reqCt = Object.entries(reqHeaders).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? null;
	const line = JSON.stringify({
		method: method.toUpperCase(),
		path: q < 0 ? urlPath : urlPath.slice(0, q),
		query: q < 0 ? '' : urlPath.slice(q + 1),
		status: res.status,
		contentType: res.headers.get('content-type'),
		body: res.text,
		requestContentType: reqCt,
		requestBody: payload ? payload.toString('utf8') : null,
	});
	fs.appendFileSync(CONTRACT_LOG, `${line}\n`);
}

/** Polls GET url/healthz until 200; fails at once when child exits. */
export async function waitHealthy(url, child, timeoutMs = 20000) {
	const deadline = Date.now() + timeoutMs;
	let last = '';
	for (;;) {
		if (child && !child.running) {
			throw new Error(`${child.name} exited (${JSON.stringify(child.exitStatus)}) before it was healthy; ` +
				`its log:\n${child.logText()}`);
		}
		try {
			const status = await new Promise((resolve, reject) => {
				const req = http.get(`${url}/healthz`, { agent: false, timeout: 1000 }, (res) => {
					res.resume();
					res.on('end', () => resolve(res.statusCode));
				});
				req.on('timeout', () => req.destroy(new Error('timeout')));
				req.on('error', reject);
			});
			if (status === 200) return;
			last = `status ${status}`;
		} catch (e) {
			last = e.message;
		}
		if (Date.now() > deadline) {
			throw new Error(`${url}/healthz not 200 within ${timeoutMs} ms (${last}); ` +
				`log of ${child?.name}:\n${child?.logText() ?? ''}`);
		}
		await sleep(child && child.running ? 50 : 0);
	}
}

/**
 * Starts a stack.  opts:
 *   env        extra P25_* settings for every binary (and p25ctl)
 *   api        start p25-api (default true)
 *   worker     also start one p25-worker (default false)
 *   migrate    run `p25ctl migrate` (default true)
 *   dns        options for s.startDns(), started before the binaries when given
 */
export async function startStack({ env = {}, api = true, worker = false, migrate = true, dns } = {}) {
	hookProcess();
	for (const bin of ['p25ctl', ...(api ? ['p25-api'] : []), ...(worker ? ['p25-worker'] : [])]) {
		if (!fs.existsSync(path.resolve(BUILD_DIR, bin))) {
			throw new Error(`${bin} is not in ${BUILD_DIR} (build it, or set P25_BUILD_DIR)`);
		}
	}
	const dir = fs.mkdtempSync('/tmp/p25-');
	const s = new Stack(dir);
	live.add(s);
	startWatchdog(dir);
	try {
		const pg = await run('bash', [path.join(SOURCE_DIR, 'scripts/testpg.sh'), 'start', path.join(dir, 'pg')],
			{ timeoutMs: 120000 });
		if (pg.code !== 0) throw new Error(`testpg.sh start failed:\n${pg.stderr}${pg.stdout}`);
		for (const line of pg.stdout.split('\n')) {
			const m = /^(P25_[A-Z_]+)=(.*)$/.exec(line);
			if (m) s.env[m[1]] = m[2];
		}
		const keyFile = path.join(dir, 'auth.key');
		const kekFile = path.join(dir, 'kek.hex');
		fs.writeFileSync(keyFile, `${crypto.randomBytes(48).toString('hex')}\n`, { mode: 0o600 });
		fs.writeFileSync(kekFile, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
		s.secret = readSecret(keyFile);
		Object.assign(s.env, {
			P25_AUTH_ALG: 'HS256',
			P25_AUTH_KEY_FILE: keyFile,
			P25_AUTH_ISSUER: TEST_ISSUER,
			P25_AUTH_AUDIENCE: TEST_AUDIENCE,
			P25_KEK_FILE: kekFile,
			P25_DEV_MODE: 'true',
			P25_LOG_LEVEL: 'warn',
			// nothing asks the machine's resolver by accident
			P25_DNS_SERVERS: '127.0.0.1:9',
			P25_DNSBL_ZONES: 'zen.test',
		});
		Object.assign(s.env, env);
		if (migrate) {
			const m = await s.ctl(['migrate']);
			if (m.code !== 0) throw new Error(`p25ctl migrate failed (${m.code}):\n${m.stderr}${m.stdout}`);
		}
		if (dns) await s.startDns(dns);
		if (api) await s.startApi();
		if (worker) s.startWorker();
		return s;
	} catch (e) {
		try {
			await s.stop();
		} catch { /* the first error is the one to see */ }
		throw e;
	}
}
