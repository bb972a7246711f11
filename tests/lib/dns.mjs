// dns.mjs — real DNS servers on loopback for the vetting tests, and a small
// scriptable DNS responder for what real servers will not say.
//
//   import { startDns, startResponder, startBlackhole } from '../lib/dns.mjs';
//   const dns = await startDns({
//     stack: s,                      // children tracked by the stack (logs, watchdog, stop)
//     dnsbl: { 'zen.test': { ip4: ['81.2.69.40', '81.2.69.41 :127.0.0.10:PBL for $'],
//                            ip6: ['2a02:ff0:1:66::/64'] } },
//     hosts: [['mail.example', '81.2.69.5', '2a02:ff0:1::25']],  // A/AAAA + PTR
//     hostsFile: [['mx1.example', '81.2.69.6'], ...],   // the same, thousands (a hosts file)
//     ptr:   [['81.2.69.7', 'ghost.example']],                     // PTR only
//     addr:  [['other.example', '81.2.69.99']],                    // A/AAAA only
//     txt:   [['example', 'v=spf1 ip4:81.2.69.0/26 -all']],
//     mx:    [['example', 'mx.example', 10]],
//     forward: [['66.69.2.81.in-addr.arpa', responder.server]],    // to a node responder
//   });
//   A zone is {ip4: [ip4set lines], ip6: [ip6trie lines], rfc5782: false to leave out the
//   test entries}, or just the array of ip4set lines.
//   dns.servers          '127.0.0.1:PORT' (dnsmasq) → P25_DNS_SERVERS
//   dns.zones            ['zen.test']      → P25_DNSBL_ZONES (joined with ',')
//   await dns.setZone('zen.test', { ip4: [...] })   rewrite, reload rbldnsd, wait until it serves it
//   await dns.queryCount()   queries dnsmasq received so far (its SIGUSR1 statistics)
//   await dns.stop()
//
// rbldnsd serves the DNSBL zones (ip4set and ip6trie files; the RFC 5782
// test entries 127.0.0.2 and ::ffff:127.0.0.2 are listed unless {rfc5782:
// false}, for all zones or one); dnsmasq answers the PTR/A/AAAA/TXT/MX
// records given and forwards each DNSBL zone to rbldnsd, and each name in
// `forward` to the server named (a more specific name wins over a local
// domain or a zone).  Every domain a record lives in (the
// last two labels of each name, the /24 or /48 reverse zone of each
// address) is made "local" to dnsmasq, so an unknown name there is NXDOMAIN
// (not REFUSED, which the vetting code rightly calls an error); more with
// {local: [...]}.  dnsmasq's cache is off by default ({cache: true} turns
// it on), so a zone rewrite shows at once and every query reaches a server.
//
// rbldnsd refuses to run as root (-u nobody then) and dnsmasq drops to
// nobody: the zone folder is made world-readable.  Ports are free loopback
// ports (UDP and TCP) picked at start.
//
// Each zone also lists 127.0.0.200 with TXT "generation N": setZone() knows
// rbldnsd has loaded the new file when that answer changes.
//
// startResponder({handler, upstream}) is a minimal DNS server in node
// (dgram): handler({name, type, qtype}) returns
//   undefined            → forwarded to upstream ('host:port'), or REFUSED without one
//   {drop: true}         → never answered
//   {delay: ms, ...}     → the same, ms later (alone: forwarded ms later)
//   {rcode: 'SERVFAIL'}  → that rcode (NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED)
//   {answers: [{type: 'A'|'AAAA'|'PTR'|'TXT'|'MX'|'CNAME', data, ttl}]}
//       A/AAAA data: address text; PTR/CNAME data: a name (string split on
//       '.', or an array of labels as strings/Buffers: any bytes); TXT data:
//       a string or an array of strings/Buffers (one character-string each);
//       MX data: {preference, exchange}.
// It answers UDP only (c-ares asks over UDP).  startBlackhole() is a
// responder that reads every query and answers none.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Resolver } from 'node:dns/promises';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ names

/** Expands an IPv6 address to its 8 groups of 4 hex digits. */
export function expand6(ip) {
	let s = ip.toLowerCase();
	if (s.includes('.')) { // embedded IPv4 tail
		const i = s.lastIndexOf(':');
		const v4 = s.slice(i + 1).split('.').map(Number);
		s = `${s.slice(0, i + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
	}
	const [head, tail] = s.split('::');
	const h = head ? head.split(':') : [];
	const t = tail ? tail.split(':') : [];
	const groups = s.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
	return groups.map((g) => g.padStart(4, '0'));
}

/** The RFC 5782 query labels of an address (no zone): 4 octets or 32 nibbles, reversed. */
export function reversedLabels(ip) {
	if (net.isIPv4(ip)) return ip.split('.').reverse().join('.');
	return expand6(ip).join('').split('').reverse().join('.');
}

/** in-addr.arpa / ip6.arpa name of an address. */
export function reverseName(ip) {
	return `${reversedLabels(ip)}.${net.isIPv4(ip) ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

/** The DNSBL query name of an address in zone. */
export function dnsblName(ip, zone) {
	return `${reversedLabels(ip)}.${zone}`;
}

/** The reverse zone dnsmasq is made local for: the /24 (IPv4) or /48 (IPv6) of ip. */
function reverseZone(ip) {
	if (net.isIPv4(ip)) return `${ip.split('.').slice(0, 3).reverse().join('.')}.in-addr.arpa`;
	return `${expand6(ip).join('').slice(0, 12).split('').reverse().join('.')}.ip6.arpa`;
}

function parentDomain(name) {
	const labels = name.replace(/\.$/, '').split('.');
	return labels.length <= 2 ? labels.join('.') : labels.slice(-2).join('.');
}

// ------------------------------------------------------------ ports

function freeTcpPort() {
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

/** A port free for both UDP and TCP on 127.0.0.1 a moment ago (not one of avoid). */
export async function freeUdpTcpPort(avoid = []) {
	for (let i = 0; i < 100; i++) {
		const port = await freeTcpPort();
		if (avoid.includes(port)) continue;
		const ok = await new Promise((resolve) => {
			const s = dgram.createSocket('udp4');
			s.once('error', () => resolve(false));
			s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
		});
		if (ok) return port;
	}
	throw new Error('no free UDP+TCP port');
}

// ------------------------------------------------------------ processes

// Without a stack: a minimal child record with the same surface the harness
// gives (running, pid, kill, stop, logText, exited), killed at process exit.
const orphans = new Set();
let exitHooked = false;
function spawnLocal(dir, name, bin, args) {
	if (!exitHooked) {
		exitHooked = true;
		process.on('exit', () => {
			for (const c of orphans) c.kill('SIGKILL');
		});
	}
	const logPath = path.join(dir, `${name}.log`);
	const fd = fs.openSync(logPath, 'a');
	const proc = spawn(bin, args, { stdio: ['ignore', fd, fd] });
	fs.closeSync(fd);
	const c = {
		name, proc, pid: proc.pid, log: logPath, exitStatus: null,
		get running() { return this.exitStatus === null; },
		kill(sig = 'SIGTERM') { if (this.running) try { proc.kill(sig); } catch { /* gone */ } },
		async stop() {
			if (!this.running) return this.exitStatus;
			this.kill('SIGTERM');
			const t = setTimeout(() => this.kill('SIGKILL'), 5000);
			const st = await this.exited;
			clearTimeout(t);
			return st;
		},
		logText() { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } },
	};
	c.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
		c.exitStatus = { code, signal };
		orphans.delete(c);
		resolve(c.exitStatus);
	}));
	orphans.add(c);
	return c;
}

// ------------------------------------------------------------ rbldnsd + dnsmasq

const PROBE_V4 = '127.0.0.200'; // listed with TXT "generation N": tells a reload happened

function zoneText(zone, { ip4 = [], ip6 = [], rfc5782 }, family, generation) {
	const head = [
		`$SOA 0 ns.${zone}. hostmaster.${zone}. ${generation} 600 300 86400 0`,
		`$NS 0 ns.${zone}.`,
		'$TTL 0',
	];
	if (family === 4) {
		return [...head,
			`${PROBE_V4} :127.0.0.2:generation ${generation}`,
			`:127.0.0.2:Listed in ${zone}, see http://${zone}/lookup?ip=$`,
			...(rfc5782 ? ['127.0.0.2'] : []), ...ip4, ''].join('\n');
	}
	return [...head, `:127.0.0.2:Listed in ${zone} (IPv6)`,
		...(rfc5782 ? ['::ffff:7f00:2'] : []), ...ip6, ''].join('\n');
}

function normalizeZoneSpec(spec, rfc5782 = true) {
	if (Array.isArray(spec)) return { ip4: spec, ip6: [], rfc5782 };
	return { ip4: spec?.ip4 ?? [], ip6: spec?.ip6 ?? [], rfc5782: spec?.rfc5782 ?? rfc5782 };
}

let dnsSerial = 0;

/**
 * Starts rbldnsd and dnsmasq (see the top of this file).  opts: stack (a
 * harness stack: children are its children, files under its folder) or dir;
 * dnsbl, hosts, hostsFile, ptr, addr, txt, mx, forward, local, cache (false),
 * rfc5782 (true), logQueries (false).
 */
export async function startDns({ stack, dir, dnsbl = { 'zen.test': {} }, hosts = [], hostsFile = [], ptr = [], addr = [],
	txt = [], mx = [], forward = [], local = [], cache = false, rfc5782 = true, logQueries = false } = {}) {
	const base = dir ?? (stack ? stack.dir : fs.mkdtempSync(path.join(os.tmpdir(), 'p25-dns-')));
	const zdir = path.join(base, `dns-${++dnsSerial}`);
	fs.mkdirSync(zdir, { recursive: true });
	// rbldnsd runs as nobody: every folder on the way must be searchable
	for (let p = zdir; p !== path.dirname(p); p = path.dirname(p)) {
		try {
			fs.chmodSync(p, fs.statSync(p).mode | 0o055);
		} catch { /* not ours: it had better be searchable already */ }
		if (p === os.tmpdir() || p === '/tmp') break;
	}
	const root = process.getuid?.() === 0;
	const spawnChild = (name, bin, args) => (stack ? stack.spawn(name, bin, args) : spawnLocal(zdir, name, bin, args));

	const zones = Object.keys(dnsbl);
	const specs = new Map(zones.map((z) => [z, normalizeZoneSpec(dnsbl[z], rfc5782)]));
	let generation = 1;
	const writeZones = (only) => {
		for (const z of only ?? zones) {
			for (const fam of [4, 6]) {
				const file = path.join(zdir, `${z}.${fam}.zone`);
				fs.writeFileSync(file, zoneText(z, specs.get(z), fam, generation), { mode: 0o644 });
				fs.chmodSync(file, 0o644);
				// rbldnsd reloads a zone when its file's mtime changed: make sure it did,
				// even within the second of the previous write
				const t = Date.now() / 1000 + generation;
				fs.utimesSync(file, t, t);
			}
		}
	};
	writeZones();
	const sets = zones.flatMap((z) => [`${z}:ip4set:${z}.4.zone`, `${z}:ip6trie:${z}.6.zone`]);

	let rbl = null;
	let rblPort = 0;
	if (zones.length) {
		rblPort = await freeUdpTcpPort();
		rbl = spawnChild('rbldnsd', '/usr/sbin/rbldnsd',
			['-n', ...(root ? ['-u', 'nobody'] : []), '-b', `127.0.0.1/${rblPort}`, '-w', zdir, '-c', '0', ...sets]);
	}
	const dnsPort = await freeUdpTcpPort([rblPort]);
	const args = ['--keep-in-foreground', '--conf-file=/dev/null', '--pid-file',
		...(root ? ['--user=nobody', '--group=nogroup'] : []), `--port=${dnsPort}`,
		'--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
		'--log-facility=-', ...(logQueries ? ['--log-queries'] : []),
		...(cache ? [] : ['--cache-size=0']),
		// the benchmark keeps many queries in flight at once (default 150)
		'--dns-forward-max=4096'];
	const locals = new Set(local);
	for (const [name, ...ips] of hosts) {
		locals.add(parentDomain(name));
		for (const ip of ips) locals.add(reverseZone(ip));
		args.push(`--host-record=${[name, ...ips].join(',')}`);
	}
	if (hostsFile.length) {
		// dnsmasq reads an additional hosts file even with --no-hosts: A/AAAA and PTR per line
		const file = path.join(zdir, 'hosts');
		fs.writeFileSync(file, hostsFile.map(([name, ...ips]) => ips.map((ip) => `${ip} ${name}\n`).join('')).join(''),
			{ mode: 0o644 });
		for (const [name, ...ips] of hostsFile) {
			locals.add(parentDomain(name));
			for (const ip of ips) locals.add(reverseZone(ip));
		}
		args.push(`--addn-hosts=${file}`);
	}
	for (const [ip, name] of ptr) {
		locals.add(reverseZone(ip));
		args.push(`--ptr-record=${reverseName(ip)},${name}`);
	}
	for (const [name, ...ips] of addr) {
		locals.add(parentDomain(name));
		for (const ip of ips) args.push(`--address=/${name}/${ip}`);
	}
	for (const [name, value] of txt) {
		locals.add(parentDomain(name));
		args.push(`--txt-record=${name},${value}`);
	}
	for (const [name, target, pref = 10] of mx) {
		locals.add(parentDomain(name));
		args.push(`--mx-host=${name},${target},${pref}`);
	}
	// forwarded names are more specific than the local domains and zones:
	// dnsmasq takes the longest match, so they win
	for (const [domain, server] of forward) args.push(`--server=/${domain}/${server.replace(':', '#')}`);
	for (const z of zones) args.push(`--server=/${z}/127.0.0.1#${rblPort}`);
	for (const d of locals) {
		if (!zones.includes(d)) args.push(`--local=/${d}/`);
	}
	const dnsmasq = spawnChild('dnsmasq', '/usr/sbin/dnsmasq', args);
	const servers = `127.0.0.1:${dnsPort}`;

	const resolver = () => {
		const r = new Resolver({ timeout: 500, tries: 1 });
		r.setServers([servers]);
		return r;
	};
	const rblResolver = () => {
		const r = new Resolver({ timeout: 500, tries: 1 });
		r.setServers([`127.0.0.1:${rblPort}`]);
		return r;
	};

	// up once dnsmasq answers a DNSBL test query through rbldnsd (or, with no
	// zones, once it answers at all)
	const deadline = Date.now() + 10000;
	for (;;) {
		if ((rbl && !rbl.running) || !dnsmasq.running) {
			throw new Error(`DNS did not start:\n${rbl?.logText() ?? ''}\n${dnsmasq.logText()}`);
		}
		try {
			if (zones.length) {
				const a = await resolver().resolve4(dnsblName(PROBE_V4, zones[0]));
				if (a.includes('127.0.0.2')) break;
			} else {
				await resolver().resolve4('localhost.p25-probe.invalid').catch((e) => {
					if (e.code !== 'EREFUSED' && e.code !== 'ENOTFOUND') throw e;
				});
				break;
			}
		} catch (e) {
			if (Date.now() > deadline) throw new Error(`DNS not answering: ${e.message}\n${dnsmasq.logText()}`);
		}
		await sleep(50);
	}

	const dns = {
		servers,
		zones,
		dir: zdir,
		rbldnsd: rbl,
		dnsmasq,
		rblServer: rblPort ? `127.0.0.1:${rblPort}` : null,
		resolver,

		/** Replaces a zone's entries ({ip4, ip6} or an ip4 array) and waits until rbldnsd serves them. */
		async setZone(zone, spec) {
			if (!specs.has(zone)) throw new Error(`no DNSBL zone ${zone}`);
			specs.set(zone, normalizeZoneSpec(spec, specs.get(zone).rfc5782));
			generation++;
			writeZones([zone]);
			const want = `generation ${generation}`;
			const until = Date.now() + 10000;
			for (;;) {
				rbl.kill('SIGHUP');
				try {
					const t = await rblResolver().resolveTxt(dnsblName(PROBE_V4, zone));
					if (t.some((parts) => parts.join('') === want)) return;
				} catch { /* reloading */ }
				if (Date.now() > until) throw new Error(`rbldnsd did not reload ${zone}:\n${rbl.logText()}`);
				await sleep(100);
			}
		},

		/**
		 * Queries dnsmasq received since it started: it prints its statistics
		 * on SIGUSR1 ("queries forwarded F, queries answered locally L").
		 */
		async queryCount() {
			const before = dnsmasq.logText().length;
			dnsmasq.kill('SIGUSR1');
			const until = Date.now() + 5000;
			for (;;) {
				const text = dnsmasq.logText().slice(before);
				const m = /queries forwarded (\d+), queries answered locally (\d+)/.exec(text);
				if (m) return Number(m[1]) + Number(m[2]);
				if (Date.now() > until) throw new Error('dnsmasq printed no statistics');
				await sleep(20);
			}
		},

		async stop() {
			await Promise.all([dnsmasq.stop(), rbl?.stop()]);
		},
	};
	return dns;
}

// ------------------------------------------------------------ a DNS responder in node

const TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 };
const TYPE_NAMES = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));
const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

/** Reads the question of a query: {id, flags, name, qtype, qclass, end} or null. */
function parseQuery(buf) {
	if (buf.length < 12) return null;
	const id = buf.readUInt16BE(0);
	const flags = buf.readUInt16BE(2);
	const qd = buf.readUInt16BE(4);
	if (qd < 1) return { id, flags, name: '', qtype: 0, qclass: 0, end: 12, bad: true };
	let off = 12;
	const labels = [];
	for (;;) {
		if (off >= buf.length) return null;
		const len = buf[off++];
		if (len === 0) break;
		if (len > 63 || off + len > buf.length) return null;
		labels.push(buf.subarray(off, off + len).toString('latin1'));
		off += len;
	}
	if (off + 4 > buf.length) return null;
	return { id, flags, name: labels.join('.'), qtype: buf.readUInt16BE(off), qclass: buf.readUInt16BE(off + 2),
		end: off + 4 };
}

function encodeName(name) {
	const labels = Array.isArray(name) ? name : String(name).replace(/\.$/, '').split('.').filter((l) => l !== '');
	const parts = [];
	for (const l of labels) {
		const b = Buffer.isBuffer(l) ? l : Buffer.from(l, 'latin1');
		if (b.length > 63) throw new Error(`label longer than 63 bytes: ${b.toString('latin1')}`);
		parts.push(Buffer.from([b.length]), b);
	}
	parts.push(Buffer.from([0]));
	return Buffer.concat(parts);
}

function encodeRdata(a) {
	switch (a.type) {
	case 'A':
		return Buffer.from(a.data.split('.').map(Number));
	case 'AAAA':
		return Buffer.from(expand6(a.data).join(''), 'hex');
	case 'PTR':
	case 'CNAME':
	case 'NS':
		return encodeName(a.data);
	case 'MX': {
		const p = Buffer.alloc(2);
		p.writeUInt16BE(a.data.preference ?? 10);
		return Buffer.concat([p, encodeName(a.data.exchange)]);
	}
	case 'TXT': {
		const strs = Array.isArray(a.data) ? a.data : [a.data];
		const parts = [];
		for (const s of strs) {
			let b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
			while (b.length > 255) { // long text: consecutive character-strings
				parts.push(Buffer.from([255]), b.subarray(0, 255));
				b = b.subarray(255);
			}
			parts.push(Buffer.from([b.length]), b);
		}
		return Buffer.concat(parts);
	}
	default:
		throw new Error(`responder: no encoder for type ${a.type}`);
	}
}

/** The answer packet for query q (raw question bytes kept) with rcode and answers. */
function buildAnswer(buf, q, rcode, answers = []) {
	const header = Buffer.alloc(12);
	header.writeUInt16BE(q.id, 0);
	// QR, opcode copied, AA, RD copied, RA
	const flags = 0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080 | (rcode & 0xf);
	header.writeUInt16BE(flags, 2);
	header.writeUInt16BE(q.bad ? 0 : 1, 4);
	header.writeUInt16BE(answers.length, 6);
	header.writeUInt16BE(0, 8);
	header.writeUInt16BE(0, 10);
	const question = q.bad ? Buffer.alloc(0) : buf.subarray(12, q.end);
	const rrs = answers.map((a) => {
		const rdata = encodeRdata(a);
		const fixed = Buffer.alloc(10);
		fixed.writeUInt16BE(TYPES[a.type], 0);
		fixed.writeUInt16BE(1, 2); // IN
		fixed.writeUInt32BE(a.ttl ?? 0, 4);
		fixed.writeUInt16BE(rdata.length, 8);
		// owner: a pointer to the question's name, or the name given
		const owner = a.name === undefined ? Buffer.from([0xc0, 0x0c]) : encodeName(a.name);
		return Buffer.concat([owner, fixed, rdata]);
	});
	return Buffer.concat([header, question, ...rrs]);
}

/**
 * A DNS responder on a free loopback UDP port (see the top of this file).
 * Returns {server: '127.0.0.1:PORT', port, queries (every {name, type} seen,
 * unless {record: false}), stop()}.
 */
export async function startResponder({ handler = () => undefined, upstream, record = true } = {}) {
	const port = await freeUdpTcpPort();
	const sock = dgram.createSocket('udp4');
	const queries = [];
	let up = null;
	const pending = new Map(); // upstream id → {rinfo, id}
	let nextId = Math.floor(Math.random() * 65536);
	if (upstream) {
		const [uhost, uport] = upstream.split(':');
		up = dgram.createSocket('udp4');
		await new Promise((resolve) => up.bind(0, '127.0.0.1', resolve));
		up.on('message', (msg) => {
			if (msg.length < 12) return;
			const p = pending.get(msg.readUInt16BE(0));
			if (!p) return;
			pending.delete(msg.readUInt16BE(0));
			const out = Buffer.from(msg);
			out.writeUInt16BE(p.id, 0);
			sock.send(out, p.rinfo.port, p.rinfo.address);
		});
		up.forward = (msg, q, rinfo) => {
			nextId = (nextId + 1) & 0xffff;
			pending.set(nextId, { rinfo, id: q.id });
			if (pending.size > 10000) pending.delete(pending.keys().next().value);
			const out = Buffer.from(msg);
			out.writeUInt16BE(nextId, 0);
			up.send(out, Number(uport), uhost);
		};
	}
	sock.on('message', (msg, rinfo) => {
		const q = parseQuery(msg);
		if (!q) return;
		const type = TYPE_NAMES[q.qtype] ?? String(q.qtype);
		if (record) queries.push({ name: q.name, type });
		let r;
		try {
			r = q.bad ? { rcode: 'FORMERR' } : handler({ name: q.name.toLowerCase(), type, qtype: q.qtype });
		} catch (e) {
			process.stderr.write(`dns responder: handler failed for ${q.name} ${type}: ${e.stack}\n`);
			r = { rcode: 'SERVFAIL' };
		}
		const reply = () => {
			if (r === undefined || r === null || (r.delay !== undefined && !r.rcode && !r.answers && !r.drop)) {
				if (up) return up.forward(msg, q, rinfo);
				r = { rcode: 'REFUSED' };
			}
			if (r.drop) return undefined;
			const rcode = typeof r.rcode === 'number' ? r.rcode : RCODES[r.rcode ?? 'NOERROR'];
			return sock.send(buildAnswer(msg, q, rcode, r.answers ?? []), rinfo.port, rinfo.address);
		};
		if (r?.delay > 0) setTimeout(reply, r.delay);
		else reply();
	});
	await new Promise((resolve, reject) => {
		sock.once('error', reject);
		sock.bind(port, '127.0.0.1', resolve);
	});
	return {
		server: `127.0.0.1:${port}`,
		port,
		queries,
		stop() {
			return new Promise((resolve) => {
				up?.close();
				sock.close(() => resolve());
			});
		},
	};
}

/** A "server" that reads every query on its own port and never answers. */
export function startBlackhole() {
	return startResponder({ handler: () => ({ drop: true }) });
}
