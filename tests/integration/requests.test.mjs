// Tenant requests (issue 3): submit, validation, idempotency, limits, list,
// read with ETag, withdraw, answer — against the real p25-api and PostgreSQL.
//
// Every refusal is followed by a look at the database: a refused request
// leaves no request, address, job, audit, message or idempotency row behind.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startStack, waitFor } from '../lib/harness.mjs';

let s;
let tok; // tenant acme
const ACME = ['81.2.69.0/24', '2a02:ff0:1::/48'];

before(async () => {
	// no rate limit and a high open-request cap here; the limits have their own tests below
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	await s.createTenant('acme', { addresses: ACME });
	await s.createTenant('globex', { addresses: ['81.2.70.0/24'] });
	tok = s.token({ sub: 'alice', roles: ['tenant'], tenant: 'acme' });
});
after(async () => {
	if (s) await s.stop();
});

const good = (over = {}) => ({ addresses: ['81.2.69.5'], use_case: 'transactional', ...over });
const submit = (body, opts = {}) => s.api('POST', '/v1/requests', { token: tok, body, ...opts });

/** Row counts of everything a submission, a withdrawal or an answer writes. */
async function counts() {
	const [row] = await s.sqlJson(`SELECT
		(SELECT count(*) FROM requests) AS requests,
		(SELECT count(*) FROM request_addresses) AS request_addresses,
		(SELECT count(*) FROM jobs) AS jobs,
		(SELECT count(*) FROM audit_log) AS audit,
		(SELECT count(*) FROM messages) AS messages,
		(SELECT count(*) FROM idempotency_keys) AS idempotency_keys`);
	return row;
}

/** Asserts a problem+json answer: status, code, and (when given) the field and an errors entry for it. */
function assertProblem(r, status, code, field) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.equal(r.headers.get('content-type'), 'application/problem+json');
	assert.ok(r.json, r.text);
	assert.equal(r.json.status, status);
	assert.equal(r.json.code, code, r.text);
	assert.equal(r.json.type, `https://p25.dev/problems/${code}`);
	assert.ok(r.json.title);
	if (field !== undefined) {
		assert.equal(r.json.field, field, r.text);
		if (r.json.errors) assert.ok(r.json.errors.some((e) => e.field === field), r.text);
	}
}

/**
 * Runs fn — refused calls only — and asserts that no row was added anywhere.
 * Row counts only grow (nothing here deletes), so one look before and one
 * after a block of refusals proves that none of them left a row; a look
 * costs a psql run, so blocks keep the suite fast on a loaded machine.
 */
async function refusedLeavesNoRow(fn) {
	const before0 = await counts();
	const r = await fn();
	assert.deepEqual(await counts(), before0, `rows were added by a refused call${r?.status ? `: ${r.status} ${r.text}` : ''}`);
	return r;
}

// ------------------------------------------------------------ submit

describe('submit', () => {
	test('202 with the request, Location and ETag; addresses normalized', async () => {
		const b0 = await counts();
		const r = await submit({
			addresses: ['81.2.69.5', '2A02:0FF0:0001:0002:0000:0000:0000:0005', '2a02:ff0:1:1:0::/64', '81.2.69.128/25'],
			use_case: 'transactional',
			description: 'Order confirmations.',
			sender_domains: ['Example.COM.', 'mail.example.org'],
			expected_daily_volume: 5000,
			contact_email: 'ops@example.com',
		});
		assert.equal(r.status, 202, r.text);
		assert.equal(r.headers.get('content-type'), 'application/json');
		const b = r.json;
		assert.match(b.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
		assert.equal(r.headers.get('location'), `/v1/requests/${b.id}`);
		assert.equal(r.headers.get('etag'), '"1"');
		assert.deepEqual(b.addresses, ['81.2.69.5/32', '2a02:ff0:1:2::5/128', '2a02:ff0:1:1::/64', '81.2.69.128/25']);
		assert.equal(b.status, 'pending');
		assert.equal(b.tenant, 'acme');
		assert.equal(b.use_case, 'transactional');
		assert.equal(b.description, 'Order confirmations.');
		assert.deepEqual(b.sender_domains, ['example.com', 'mail.example.org']);
		assert.equal(b.expected_daily_volume, 5000);
		assert.equal(b.contact_email, 'ops@example.com');
		assert.equal(b.version, 1);
		assert.deepEqual(b.checks, []);
		assert.equal(b.decision, null);
		assert.deepEqual(b.exemptions, []);
		assert.deepEqual(b.messages, []);
		assert.ok(!Number.isNaN(Date.parse(b.created_at)));

		// one transaction wrote the request, its addresses, the vetting job and the audit row
		const b1 = await counts();
		assert.equal(b1.requests - b0.requests, 1);
		assert.equal(b1.request_addresses - b0.request_addresses, 4);
		assert.equal(b1.jobs - b0.jobs, 1);
		assert.equal(b1.audit - b0.audit, 1);
		const [row] = await s.sqlJson('SELECT tenant_id, status, vetting_round FROM requests WHERE id = $1', [b.id]);
		assert.deepEqual(row, { tenant_id: 'acme', status: 'pending', vetting_round: 1 });
		const addrs = await s.sql('SELECT prefix FROM request_addresses WHERE request_id = $1 ORDER BY position', [b.id]);
		assert.deepEqual(addrs.flat(), b.addresses);
		const jobs = await s.sqlJson("SELECT kind, payload, state FROM jobs WHERE payload->>'request' = $1", [b.id]);
		assert.deepEqual(jobs, [{ kind: 'vet', payload: { request: b.id, round: 1 }, state: 'queued' }]);
		const audit = await s.sqlJson('SELECT actor, action, object_type, tenant_id FROM audit_log WHERE object_id = $1', [b.id]);
		assert.deepEqual(audit, [{ actor: 'alice', action: 'request.submit', object_type: 'request', tenant_id: 'acme' }]);

		// Location names the request, which reads back the same
		const g = await s.api('GET', r.headers.get('location'), { token: tok });
		assert.equal(g.status, 200, g.text);
		assert.deepEqual(g.json, b);
		assert.equal(g.headers.get('etag'), '"1"');
	});

	test('optional fields may be left out or null', async () => {
		const r = await submit({ addresses: ['2a02:ff0:1:3::/64'], use_case: 'personal', description: null,
			sender_domains: null, expected_daily_volume: null, contact_email: null });
		assert.equal(r.status, 202, r.text);
		assert.equal(r.json.description, '');
		assert.deepEqual(r.json.sender_domains, []);
		assert.equal(r.json.expected_daily_volume, null);
		assert.equal(r.json.contact_email, null);
	});

	test('ids are time-ordered UUIDs (version 7): the time of filing, then random bits', async () => {
		const before = Date.now();
		const ids = [];
		for (let i = 0; i < 3; i++) {
			const r = await submit(good({ addresses: [`81.2.69.${40 + i}`] }));
			assert.equal(r.status, 202, r.text);
			ids.push(r.json.id);
			await new Promise((res) => setTimeout(res, 3));
		}
		const after = Date.now();
		for (const id of ids) {
			assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, id);
			const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
			assert.ok(ms >= before - 1000 && ms <= after + 1000, `${id}: ${ms} not within ${before}..${after}`);
		}
		assert.deepEqual([...ids].sort(), ids, 'later filings sort later');
		assert.equal(new Set(ids.map((id) => id.slice(19))).size, 3, 'the random part differs');
		const [{ e, a, w }] = await s.sqlJson(`SELECT
			(SELECT column_default FROM information_schema.columns WHERE table_name = 'exemptions' AND column_name = 'id') AS e,
			(SELECT column_default FROM information_schema.columns WHERE table_name = 'abuse_reports' AND column_name = 'id') AS a,
			(SELECT column_default FROM information_schema.columns WHERE table_name = 'webhook_deliveries' AND column_name = 'id') AS w`);
		for (const d of [e, a, w]) assert.equal(d, 'p25_uuid7()');
	});

	test('the answer is the request as a read renders it, byte for byte', async () => {
		// p25_submit builds its answer from the rows it wrote (migration
		// 0016); a read renders the request with p25_request_json
		const bodies = [
			good(),
			{ addresses: ['81.2.69.40', '2a02:ff0:1:9::/64', '81.2.69.48/29'], use_case: 'marketing',
				description: 'Newsletters "weekly" — ünïcode \\ and a tab\tinside',
				sender_domains: ['example.com', 'mail.example.org'], expected_daily_volume: 0,
				contact_email: 'ops@example.com' },
			{ addresses: ['2a02:ff0:1:a::1'], use_case: 'other', description: null,
				sender_domains: null, expected_daily_volume: null, contact_email: null },
		];
		for (const b of bodies) {
			const r = await submit(b);
			assert.equal(r.status, 202, r.text);
			const g = await s.api('GET', `/v1/requests/${r.json.id}`, { token: tok });
			assert.equal(g.status, 200, g.text);
			assert.equal(r.text, g.text, 'the submit answer and the read are the same bytes');
			const [row] = await s.sqlJson('SELECT p25_request_json($1)::text AS j', [r.json.id]);
			assert.equal(r.text, row.j);
		}
	});

	test('every use case is accepted', async () => {
		for (const u of ['transactional', 'marketing', 'relay', 'personal', 'other']) {
			const r = await submit(good({ use_case: u }));
			assert.equal(r.status, 202, `${u}: ${r.text}`);
			assert.equal(r.json.use_case, u);
		}
	});

	test('the workers are woken after the commit: a listener hears "vet" and then sees the job', async () => {
		// psql as a listener: a notification is printed after the next command it runs
		const psql = spawn('psql', ['-X', '-q', '-A', '-t', '-d', s.env.P25_MIGRATE_DATABASE_URL],
			{ env: s.childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
		let out = '';
		psql.stdout.on('data', (d) => { out += d; });
		psql.stderr.on('data', (d) => { out += d; });
		try {
			psql.stdin.write("LISTEN p25_jobs;\nSELECT 'listening';\n");
			await waitFor(() => out.includes('listening'), { what: 'psql listening' });
			const r = await submit(good({ addresses: ['81.2.69.21'], description: 'wake me' }));
			assert.equal(r.status, 202, r.text);
			const heard = /Asynchronous notification "p25_jobs" with payload "vet" received/;
			await waitFor(() => {
				psql.stdin.write("SELECT 'tick';\n");
				return heard.test(out);
			}, { intervalMs: 100, what: 'the vet notification' });
			// sent after the commit: the job is there for whoever was woken
			const [[n]] = await s.sql("SELECT count(*) FROM jobs WHERE kind = 'vet' AND payload->>'request' = $1",
				[r.json.id]);
			assert.equal(n, '1');
		} finally {
			psql.stdin.end();
			psql.kill();
		}
	});
});

// ------------------------------------------------------------ validation

describe('validation: each refusal is a problem naming the field, and leaves no row', () => {
	test('malformed JSON → 400 malformed_json', async () => {
		await refusedLeavesNoRow(async () => {
			for (const raw of ['{"addresses": [', '[1, 2]', '"text"', '{"a":1,"a":2}', 'nul', '{"description":"a\\u0000b"}']) {
				const r = await submit(raw, { headers: { 'Content-Type': 'application/json' } });
				assertProblem(r, 400, 'malformed_json');
				assert.equal(r.json.instance, '/v1/requests');
			}
			const empty = await submit('', { headers: { 'Content-Type': 'application/json', 'Content-Length': '0' } });
			assertProblem(empty, 400, 'malformed_json');
		});
	});

	test('a body that is not application/json → 415', async () => {
		await refusedLeavesNoRow(async () => {
			for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp']) {
				const r = await submit(JSON.stringify(good()), { headers: { 'Content-Type': ct } });
				assertProblem(r, 415, 'unsupported_media_type');
			}
			// no Content-Type at all
			const r = await submit(Buffer.from(JSON.stringify(good())));
			assertProblem(r, 415, 'unsupported_media_type');
		});
		// parameters after the type are fine
		const ok = await submit(JSON.stringify(good()), { headers: { 'Content-Type': 'application/json; charset=utf-8' } });
		assert.equal(ok.status, 202, ok.text);
	});

	test('an unknown field → 422 unknown_field (no mass assignment)', async () => {
		await refusedLeavesNoRow(async () => {
			for (const f of ['status', 'tenant', 'id', 'owner']) {
				const r = await submit(good({ [f]: 'x' }));
				assertProblem(r, 422, 'unknown_field', f);
				assert.deepEqual(r.json.errors, [{ field: f, code: 'unknown_field', detail: `unknown field "${f}"` }]);
			}
		});
	});

	const nonPublic = [
		['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['192.168.1.1', 'private'],
		['127.0.0.1', 'loopback'], ['::1', 'loopback'], ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
		['100.64.0.1', 'shared'], ['169.254.1.1', 'link_local'], ['fe80::1', 'link_local'],
		['224.0.0.1', 'multicast'], ['ff02::1', 'multicast'], ['239.1.2.0/24', 'multicast'],
		['192.0.2.1', 'documentation'], ['198.51.100.7', 'documentation'], ['203.0.113.0/24', 'documentation'],
		['2001:db8::1', 'documentation'], ['fd00::1', 'unique_local'], ['fd12:3456:789a::/48', 'unique_local'],
		['240.0.0.1', 'reserved'], ['255.255.255.255', 'broadcast'], ['198.18.0.1', 'benchmarking'],
	];
	test('addresses that can never send mail → 422 non_public_address naming the entry', async () => {
		await refusedLeavesNoRow(async () => {
			for (const [addr, why] of nonPublic) {
				const r = await submit(good({ addresses: ['81.2.69.5', addr] }));
				assertProblem(r, 422, 'non_public_address', 'addresses[1]');
				assert.match(r.json.detail, new RegExp(`\\(${why}\\)`), `${addr}: ${r.text}`);
				assert.equal(r.json.errors.length, 1);
			}
		});
	});

	const badAddresses = [
		['81.2.68.0/23', 'prefix_too_wide'], ['2a02:ff0::/32', 'prefix_too_wide'], ['2a02:ff0::/47', 'prefix_too_wide'],
		['81.2.69.1/24', 'host_bits_set'], ['2a02:ff0:1::1/64', 'host_bits_set'],
		['mail.example.com', 'invalid_address'], ['81.2.69.256', 'invalid_address'], ['81.2.69', 'invalid_address'],
		['081.2.69.5', 'invalid_address'], ['81.2.69.5/33', 'invalid_address'], ['81.2.69.5/', 'invalid_address'],
		['', 'invalid_address'], ['::ffff:81.2.69.5', 'mapped_address'],
	];
	test('malformed, too wide, host bits set, IPv4-mapped → 422 naming the entry', async () => {
		await refusedLeavesNoRow(async () => {
			for (const [addr, code] of badAddresses) {
				const r = await submit(good({ addresses: [addr] }));
				assert.equal(r.json?.code, code, `${JSON.stringify(addr)}: ${r.text}`);
				assertProblem(r, 422, code, 'addresses[0]');
			}
			// the hint says which prefix was meant
			const r = await submit(good({ addresses: ['81.2.69.1/24'] }));
			assert.match(r.json.errors[0].detail, /81\.2\.69\.0\/24/);
		});
	});

	test('an entry overlapping another, too many entries, none, or not strings → 422', async () => {
		const many = (n) => Array.from({ length: n }, (_, i) => `81.2.69.${i}`);
		await refusedLeavesNoRow(async () => {
			for (const [body, code, field] of [
				[good({ addresses: ['81.2.69.0/25', '81.2.69.5'] }), 'duplicate_address', 'addresses[1]'],
				[good({ addresses: many(65) }), 'too_many_addresses', 'addresses'],
				[{ use_case: 'other' }, 'required', 'addresses'],
				[good({ addresses: [] }), 'required', 'addresses'],
				[good({ addresses: '81.2.69.5' }), 'invalid_type', 'addresses'],
				[good({ addresses: [42] }), 'invalid_type', 'addresses[0]'],
			]) {
				const r = await submit(body);
				assertProblem(r, 422, code, field);
			}
		});
		const ok = await submit(good({ addresses: many(64) }));
		assert.equal(ok.status, 202, ok.text);
		assert.equal(ok.json.addresses.length, 64);
	});

	test('use_case missing or not one of the five → 422', async () => {
		await refusedLeavesNoRow(async () => {
			for (const [body, code] of [
				[{ addresses: ['81.2.69.5'] }, 'required'],
				[good({ use_case: 'spam' }), 'invalid_value'],
				[good({ use_case: 'Transactional' }), 'invalid_value'],
				[good({ use_case: 7 }), 'invalid_type'],
			]) {
				const r = await submit(body);
				assertProblem(r, 422, code, 'use_case');
			}
		});
	});

	test('a contact_email that is not an address → 422 invalid_email', async () => {
		await refusedLeavesNoRow(async () => {
			for (const e of ['not-an-email', 'ops@localhost', 'a..b@example.com', '@example.com', 'ops@example..com',
				'ops@-example.com', 'o ps@example.com', '.ops@example.com']) {
				const r = await submit(good({ contact_email: e }));
				assertProblem(r, 422, 'invalid_email', 'contact_email');
			}
			const r = await submit(good({ contact_email: 5 }));
			assertProblem(r, 422, 'invalid_type', 'contact_email');
		});
	});

	test('a sender domain that is not a domain name → 422 invalid_domain naming the entry', async () => {
		await refusedLeavesNoRow(async () => {
			for (const d of ['exa mple.com', '-bad.example.com', 'bad-.example.com', 'localhost', 'example.123',
				'a..example.com', `${'a'.repeat(64)}.example.com`, 'ex_ample.com']) {
				const r = await submit(good({ sender_domains: ['example.com', d] }));
				assertProblem(r, 422, 'invalid_domain', 'sender_domains[1]');
			}
			const notArray = await submit(good({ sender_domains: 'example.com' }));
			assertProblem(notArray, 422, 'invalid_value', 'sender_domains');
			const tooMany = await submit(good({ sender_domains: Array.from({ length: 21 }, (_, i) => `d${i}.example.com`) }));
			assertProblem(tooMany, 422, 'invalid_value', 'sender_domains');
		});
	});

	test('expected_daily_volume must be a whole number from 0 to 1e9', async () => {
		await refusedLeavesNoRow(async () => {
			for (const v of [-1, 1.5, '5000', 1000000001, true]) {
				const r = await submit(good({ expected_daily_volume: v }));
				assertProblem(r, 422, 'invalid_value', 'expected_daily_volume');
			}
		});
		for (const v of [0, 1000000000]) {
			const r = await submit(good({ expected_daily_volume: v }));
			assert.equal(r.status, 202, r.text);
			assert.equal(r.json.expected_daily_volume, v);
		}
	});

	test('description: control characters and more than 4000 bytes are refused', async () => {
		await refusedLeavesNoRow(async () => {
			const ctl = await submit(good({ description: 'bell\u0007' }));
			assertProblem(ctl, 422, 'invalid_text', 'description');
			const long = await submit(good({ description: 'x'.repeat(4001) }));
			assertProblem(long, 422, 'too_long', 'description');
		});
	});

	test('several failures at once → validation_failed listing each field', async () => {
		const r = await refusedLeavesNoRow(() => submit({ addresses: ['10.0.0.1', '81.2.68.0/23'], use_case: 'spam',
			contact_email: 'nope', sender_domains: ['-x'], extra: 1 }));
		assertProblem(r, 422, 'validation_failed');
		const got = r.json.errors.map((e) => `${e.field}:${e.code}`).sort();
		assert.deepEqual(got, ['addresses[0]:non_public_address', 'addresses[1]:prefix_too_wide', 'contact_email:invalid_email',
			'extra:unknown_field', 'sender_domains[0]:invalid_domain', 'use_case:invalid_value'].sort());
		assert.equal(r.json.field, r.json.errors[0].field);
	});

	test('addresses outside the tenant inventory → 422 address_not_held', async () => {
		await refusedLeavesNoRow(async () => {
			// 81.2.70.5 is globex's, 81.2.71.5 nobody's, 2a02:ff0:2::/64 outside acme's /48
			for (const a of ['81.2.70.5', '81.2.71.5', '2a02:ff0:2::/64']) {
				const r = await submit(good({ addresses: ['81.2.69.5', a] }));
				// the entry is named, like every other validation failure
				assertProblem(r, 422, 'address_not_held', 'addresses[1]');
				assert.deepEqual(r.json.errors.map((e) => e.field), ['addresses[1]'], r.text);
				assert.ok(r.json.detail.includes(a.includes('/') ? a : `${a}/32`), r.text);
				assert.ok(!r.json.detail.includes('81.2.69.5/32'), 'the held address is not named');
			}
			// a prefix only partly inside the inventory is not held either
			const partly = await submit(good({ addresses: ['2a02:ff0::/48'] }));
			assertProblem(partly, 422, 'address_not_held', 'addresses[0]');
		});
	});

	test('a tenant p25 does not know → 403 tenant_unknown', async () => {
		const t = s.token({ sub: 'x', roles: ['tenant'], tenant: 'stranger' });
		const r = await refusedLeavesNoRow(() => s.api('POST', '/v1/requests', { token: t, body: good() }));
		assertProblem(r, 403, 'tenant_unknown');
		assert.ok(r.json.hint);
	});

	test('a body above P25_BODY_MAX → 413, with Content-Length and chunked; just under it is read', async () => {
		const big = JSON.stringify(good({ description: 'x'.repeat(70000) }));
		await refusedLeavesNoRow(async () => {
			const cl = await submit(big, { headers: { 'Content-Type': 'application/json' } });
			assertProblem(cl, 413, 'body_too_large');
			const chunked = await submit(big, { headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } });
			assertProblem(chunked, 413, 'body_too_large');
			// just under the cap: parsed, and refused for its content, not its size
			const under = JSON.stringify(good({ description: 'x'.repeat(65536 - 200) }));
			assert.ok(under.length < 65536);
			const r = await submit(under, { headers: { 'Content-Type': 'application/json' } });
			assertProblem(r, 422, 'too_long', 'description');
		});
		// a chunked body under the cap is read whole
		const ok = await submit(JSON.stringify(good()), {
			headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } });
		assert.equal(ok.status, 202, ok.text);
	});
});

// ------------------------------------------------------------ idempotency

describe('Idempotency-Key', () => {
	test('a replay answers the first answer byte for byte, and files nothing', async () => {
		const key = `k-${Date.now()}-replay`;
		const body = good({ addresses: ['81.2.69.10'], contact_email: 'ops@example.com' });
		const first = await submit(body, { headers: { 'Idempotency-Key': key } });
		assert.equal(first.status, 202, first.text);
		assert.equal(first.headers.get('idempotent-replayed'), null);
		const b0 = await counts();
		const again = await submit(body, { headers: { 'Idempotency-Key': key } });
		assert.equal(again.status, 202, again.text);
		assert.equal(again.text, first.text, 'the replay is byte for byte the first answer');
		assert.equal(again.headers.get('location'), first.headers.get('location'));
		assert.equal(again.headers.get('etag'), first.headers.get('etag'));
		assert.equal(again.headers.get('content-type'), 'application/json');
		assert.equal(again.headers.get('idempotent-replayed'), 'true');
		assert.deepEqual(await counts(), b0, 'a replay writes nothing');

		// still the first answer after the request changed
		const w = await s.api('POST', `/v1/requests/${first.json.id}/withdraw`, { token: tok });
		assert.equal(w.status, 200, w.text);
		const later = await submit(body, { headers: { 'Idempotency-Key': key } });
		assert.equal(later.status, 202);
		assert.equal(later.text, first.text);
	});

	test('the same key with another body → 422 idempotency_key_reused, nothing filed', async () => {
		const key = `k-${Date.now()}-reuse`;
		const first = await submit(good({ addresses: ['81.2.69.11'] }), { headers: { 'Idempotency-Key': key } });
		assert.equal(first.status, 202, first.text);
		const r = await refusedLeavesNoRow(() => submit(good({ addresses: ['81.2.69.12'] }), { headers: { 'Idempotency-Key': key } }));
		assertProblem(r, 422, 'idempotency_key_reused', 'Idempotency-Key');
	});

	test('keys are per tenant: another tenant may use the same key', async () => {
		const key = `k-${Date.now()}-shared`;
		const a = await submit(good({ addresses: ['81.2.69.13'] }), { headers: { 'Idempotency-Key': key } });
		assert.equal(a.status, 202, a.text);
		const gtok = s.token({ sub: 'gus', roles: ['tenant'], tenant: 'globex' });
		const g = await s.api('POST', '/v1/requests', { token: gtok, body: { addresses: ['81.2.70.13'], use_case: 'other' },
			headers: { 'Idempotency-Key': key } });
		assert.equal(g.status, 202, g.text);
		assert.notEqual(g.json.id, a.json.id);
		assert.equal(g.json.tenant, 'globex');
		assert.equal(g.headers.get('idempotent-replayed'), null);
	});

	test('a malformed key → 400 invalid_idempotency_key', async () => {
		await refusedLeavesNoRow(async () => {
			for (const key of ['x'.repeat(256), '']) {
				const r = await submit(good(), { headers: { 'Idempotency-Key': key } });
				assertProblem(r, 400, 'invalid_idempotency_key', 'Idempotency-Key');
			}
		});
	});

	test('the same key ten times at once → one request; the rest 409 idempotency_in_flight or the replay', async () => {
		const key = `k-${Date.now()}-race`;
		const body = good({ addresses: ['81.2.69.14'], description: 'race' });
		const b0 = await counts();
		const rs = await Promise.all(Array.from({ length: 10 }, () => submit(body, { headers: { 'Idempotency-Key': key } })));
		const fresh = rs.filter((r) => r.status === 202 && r.headers.get('idempotent-replayed') === null);
		const replays = rs.filter((r) => r.status === 202 && r.headers.get('idempotent-replayed') === 'true');
		const busy = rs.filter((r) => r.status === 409);
		assert.equal(fresh.length, 1, rs.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n'));
		assert.equal(fresh.length + replays.length + busy.length, 10, rs.map((r) => r.status).join(','));
		for (const r of replays) assert.equal(r.text, fresh[0].text);
		for (const r of busy) {
			assertProblem(r, 409, 'idempotency_in_flight');
			assert.ok(Number(r.headers.get('retry-after')) >= 1);
		}
		const b1 = await counts();
		assert.equal(b1.requests - b0.requests, 1, 'exactly one request row');
		assert.equal(b1.jobs - b0.jobs, 1);
		assert.equal(b1.idempotency_keys - b0.idempotency_keys, 1);
		const [[n]] = await s.sql("SELECT count(*) FROM requests WHERE description = 'race'");
		assert.equal(n, '1');
		// and afterwards the key replays
		const after0 = await submit(body, { headers: { 'Idempotency-Key': key } });
		assert.equal(after0.text, fresh[0].text);
	});
});

// ------------------------------------------------------------ limits

describe('limits (p25-api restarted with other settings)', () => {
	after(async () => {
		await s.startApi({ P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' });
	});

	test('rate limit per tenant → 429 with Retry-After, nothing filed', async () => {
		await s.createTenant('rl', { addresses: ['81.2.72.0/24'] });
		await s.createTenant('rl2', { addresses: ['81.2.73.0/24'] });
		await s.startApi({ P25_RATE_LIMIT: '3', P25_MAX_OPEN_REQUESTS: '1000' });
		const t = s.token({ sub: 'r', roles: ['tenant'], tenant: 'rl' });
		for (let i = 0; i < 3; i++) {
			const r = await s.api('POST', '/v1/requests', { token: t, body: { addresses: [`81.2.72.${i}`], use_case: 'other' } });
			assert.equal(r.status, 202, r.text);
		}
		const r = await refusedLeavesNoRow(() => s.api('POST', '/v1/requests', { token: t,
			body: { addresses: ['81.2.72.9'], use_case: 'other' } }));
		assertProblem(r, 429, 'rate_limited');
		const ra = Number(r.headers.get('retry-after'));
		assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 3600, `Retry-After ${r.headers.get('retry-after')}`);
		// withdrawn requests still count: the limit is on filing
		// another tenant is not limited by rl's requests
		const t2 = s.token({ sub: 'r2', roles: ['tenant'], tenant: 'rl2' });
		const other = await s.api('POST', '/v1/requests', { token: t2, body: { addresses: ['81.2.73.1'], use_case: 'other' } });
		assert.equal(other.status, 202, other.text);
	});

	test('open-request cap → 409 too_many_open_requests; withdrawing one makes room', async () => {
		await s.createTenant('cap', { addresses: ['81.2.74.0/24'] });
		await s.startApi({ P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '2' });
		const t = s.token({ sub: 'c', roles: ['tenant'], tenant: 'cap' });
		const ids = [];
		for (let i = 0; i < 2; i++) {
			const r = await s.api('POST', '/v1/requests', { token: t, body: { addresses: [`81.2.74.${i}`], use_case: 'other' } });
			assert.equal(r.status, 202, r.text);
			ids.push(r.json.id);
		}
		const r = await refusedLeavesNoRow(() => s.api('POST', '/v1/requests', { token: t,
			body: { addresses: ['81.2.74.9'], use_case: 'other' } }));
		assertProblem(r, 409, 'too_many_open_requests');
		assert.ok(r.json.hint);
		const w = await s.api('POST', `/v1/requests/${ids[0]}/withdraw`, { token: t });
		assert.equal(w.status, 200, w.text);
		const again = await s.api('POST', '/v1/requests', { token: t, body: { addresses: ['81.2.74.9'], use_case: 'other' } });
		assert.equal(again.status, 202, again.text);
	});

	test('the cap holds under concurrency: 6 at once with room for 2 → exactly 2 filed', async () => {
		await s.createTenant('cap2', { addresses: ['81.2.75.0/24'] });
		await s.startApi({ P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '2' });
		const t = s.token({ sub: 'c2', roles: ['tenant'], tenant: 'cap2' });
		const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => s.api('POST', '/v1/requests', { token: t,
			body: { addresses: [`81.2.75.${i}`], use_case: 'other' } })));
		assert.deepEqual(rs.map((r) => r.status).sort(), [202, 202, 409, 409, 409, 409]);
		const [[n]] = await s.sql("SELECT count(*) FROM requests WHERE tenant_id = 'cap2'");
		assert.equal(n, '2');
	});

	test('the open count reads the tenant\'s requests through (tenant_id, status), never requests_open', async () => {
		// migrations/0017: with the open states written as a constant the
		// planner could serve the count from requests_open (every open
		// request of every tenant, filtered by tenant) when that index's
		// statistics are stale; a scalar subquery keeps it out of reach
		const OPEN = "r.status = ANY ((SELECT '{pending,vetting,needs_review,needs_info}'::text[])::text[])";
		const [{ def }] = await s.sqlJson("SELECT pg_get_functiondef('p25_submit_group'::regproc) AS def");
		const at = def.indexOf('LIMIT p_max_open');
		assert.ok(at > 0, 'p25_submit_group counts up to the cap');
		assert.ok(def.slice(def.lastIndexOf('SELECT count(*)', at), at).includes(OPEN), 'p25_submit_group counts with the subquery');
		// the count's plan for a tenant, as EXPLAIN's JSON text, after the
		// statements in setup (rolled back); the statement's $1 and $2 are
		// spelled with chr(36): s.sql takes $N as its own
		const explain = async (mode, tenant, setup = '') => {
			const out = await s.sql(`BEGIN;
${setup}
SET LOCAL plan_cache_mode = ${mode};
SELECT 'PREPARE q(text, bigint) AS SELECT count(*) FROM (SELECT 1 FROM requests r'
    || ' WHERE r.tenant_id = ' || chr(36) || '1 AND ' || $1 || ' LIMIT ' || chr(36) || '2) y' \\gexec
EXPLAIN (FORMAT JSON) EXECUTE q('${tenant}', 20);
ROLLBACK;`, [OPEN]);
			return out.map((r) => r.join('\t')).join('\n');
		};
		await s.createTenant('plan2');
		try {
			// 40 tenants with 50 decided requests each; statistics taken with
			// none of plan2's requests open, then 2000 of them open
			await s.sql(`INSERT INTO tenants (id, name, account_created_at, verified, standing)
SELECT 'plq' || i, 'plq', now() - interval '400 days', true, 'good' FROM generate_series(1, 40) i;
INSERT INTO requests (tenant_id, status, use_case, decided_at)
SELECT 'plq' || (1 + i % 40), 'denied', 'other', now() FROM generate_series(1, 2000) i;
VACUUM ANALYZE requests;
INSERT INTO requests (tenant_id, use_case) SELECT 'plan2', 'other' FROM generate_series(1, 2000);`);
			for (const mode of ['force_generic_plan', 'force_custom_plan']) {
				for (const tenant of ['plq1', 'plan2']) {
					const text = await explain(mode, tenant);
					const nodes = [];
					const walk = (n) => { nodes.push(n); (n.Plans ?? []).forEach(walk); };
					walk(JSON.parse(text)[0].Plan);
					const what = `${mode}, ${tenant}: ${text}`;
					assert.ok(!nodes.some((n) => n['Index Name'] === 'requests_open'), `never requests_open: ${what}`);
					assert.ok(!nodes.some((n) => n['Node Type'] === 'Seq Scan'), `no sequential scan: ${what}`);
					assert.ok(nodes.some((n) => n['Index Name'] === 'requests_tenant_status' &&
						/tenant_id = /.test(n['Index Cond'])), `the tenant's entries of requests_tenant_status: ${what}`);
					assert.ok(nodes.some((n) => /status = ANY \(\$\d+\)/.test(`${n['Index Cond'] ?? ''} ${n.Filter ?? ''}`)),
						`the open states as the subquery's value: ${what}`);
				}
			}
			// and it cannot: with the tenant indexes gone and sequential scans
			// discouraged, the planner still may not take requests_open
			for (const mode of ['force_generic_plan', 'force_custom_plan']) {
				const text = await explain(mode, 'plan2',
					'DROP INDEX requests_tenant_status;\nDROP INDEX requests_tenant_created;\nSET LOCAL enable_seqscan = off;');
				assert.ok(!text.includes('requests_open'), `${mode}, without the tenant indexes: ${text}`);
			}
			const [[open]] = await s.sql(`SELECT count(*) FROM requests r WHERE tenant_id = 'plan2' AND ${OPEN}`);
			assert.equal(open, '2000');
		} finally {
			await s.sql(`DELETE FROM requests WHERE tenant_id = 'plan2' OR tenant_id LIKE 'plq%';
DELETE FROM tenants WHERE id LIKE 'plq%';`);
		}
	});

	test('the inventory check reads the tenant\'s prefixes through tenant_addresses_pkey', async () => {
		// migrations/0019: for tenant_id = $1 the planner costed the
		// exclusion constraint's GiST index (tenant_id, prefix) a hair below
		// the primary key and took it, reading some 27 buffers a lookup
		// where the B-tree reads 3.  p25_submit_group asks for the primary
		// key's order and plans with sorting disabled: only the B-tree gives
		// that order without a sort.
		const INV = 'SELECT t.prefix FROM tenant_addresses t WHERE t.tenant_id = v_tenant ORDER BY t.tenant_id, t.prefix';
		const [{ def, config }] = await s.sqlJson(`SELECT pg_get_functiondef('p25_submit_group'::regproc) AS def,
       (SELECT proconfig FROM pg_proc WHERE oid = 'p25_submit_group'::regproc) AS config`);
		// and no JIT: the statements whose sorts have no alternative are
		// costed past jit_above_cost by enable_sort = off
		assert.deepEqual(config, ['enable_sort=off', 'jit=off']);
		assert.ok(def.replace(/\s+/g, ' ').includes(`unnest(ARRAY( ${INV})) h`), 'p25_submit_group reads the inventory in key order');
		const body = `SELECT ARRAY(${INV.replace('v_tenant', 'p_tenant')})`;
		try {
			// 2000 tenants with a /24 each; statistics taken, pages all-visible
			await s.sql(`INSERT INTO tenants (id, name, account_created_at, verified, standing)
SELECT 'inv' || i, 'inv', now() - interval '400 days', true, 'good' FROM generate_series(1, 2000) i;
INSERT INTO tenant_addresses (tenant_id, prefix)
SELECT 'inv' || i, ('44.' || (i / 256) || '.' || (i % 256) || '.0/24')::cidr FROM generate_series(1, 2000) i;`);
			for (const vacuum of [false, true]) {
				if (vacuum)
					await s.sql('VACUUM ANALYZE tenants, tenant_addresses');
				for (const mode of ['force_generic_plan', 'force_custom_plan']) {
					const out = await s.sql(`BEGIN;
SET LOCAL plan_cache_mode = ${mode};
SET LOCAL enable_sort = off;
SELECT 'PREPARE q(text) AS ' || replace($1, 'p_tenant', chr(36) || '1') \\gexec
EXPLAIN (FORMAT JSON) EXECUTE q('inv77');
ROLLBACK;`, [body]);
					const text = out.map((r) => r.join('\t')).join('\n');
					const what = `${mode}, ${vacuum ? 'after VACUUM ANALYZE' : 'fresh rows'}: ${text}`;
					assert.ok(text.includes('"tenant_addresses_pkey"'), what);
					assert.ok(!text.includes('tenant_addresses_no_overlap') && !text.includes('"Sort"'), what);
				}
			}
		} finally {
			await s.sql(`DELETE FROM tenant_addresses WHERE tenant_id LIKE 'inv%';
DELETE FROM tenants WHERE id LIKE 'inv%';`);
		}
	});

	test('ANALYZE skips the columns no query filters on, and keeps the ones the plans need', async () => {
		// migrations/0018: the statistics of payloads, stored answers and
		// free text were computed by every autoanalyze and never read
		const skipped = {
			requests: ['description', 'sender_domains', 'contact_email'], audit_log: ['details'],
			jobs: ['payload', 'last_error'], idempotency_keys: ['body', 'headers'], checks: ['evidence'],
			decisions: ['message', 'scope'], messages: ['body'], abuse_reports: ['evidence'],
			webhook_deliveries: ['payload', 'last_error'],
		};
		const kept = { requests: ['tenant_id', 'status', 'created_at'], audit_log: ['actor', 'object_id'], jobs: ['state', 'run_at'] };
		for (const [table, cols] of Object.entries(skipped)) {
			const rows = await s.sql(`SELECT attname, attstattarget FROM pg_attribute
WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped`);
			const target = Object.fromEntries(rows);
			for (const c of cols) assert.equal(target[c], '0', `${table}.${c}`);
			for (const c of kept[table] ?? []) assert.equal(target[c], '-1', `${table}.${c} keeps the default`);
		}
		await s.createTenant('stats1', { addresses: ['81.2.76.0/24'] });
		const t = s.token({ sub: 'st', roles: ['tenant'], tenant: 'stats1' });
		const r = await s.api('POST', '/v1/requests', { token: t, body: good({ addresses: ['81.2.76.1'],
			description: 'statistics', sender_domains: ['example.com'], contact_email: 'ops@example.com' }) });
		assert.equal(r.status, 202, r.text);
		await s.sql('ANALYZE requests, audit_log, jobs');
		const stats = (await s.sql(`SELECT tablename || '.' || attname FROM pg_stats
WHERE schemaname = 'public' AND tablename IN ('requests', 'audit_log', 'jobs')`)).map(([c]) => c);
		for (const c of ['requests.description', 'requests.sender_domains', 'requests.contact_email',
			'audit_log.details', 'jobs.payload'])
			assert.ok(!stats.includes(c), `no statistics for ${c}`);
		for (const c of ['requests.tenant_id', 'requests.status', 'audit_log.actor', 'jobs.state'])
			assert.ok(stats.includes(c), `statistics for ${c}: ${stats.join(' ')}`);
	});

});

// ------------------------------------------------------------ list

describe('list', () => {
	let ptok;
	const created = []; // oldest first
	before(async () => {
		await s.createTenant('paged', { addresses: ['81.2.80.0/24'] });
		ptok = s.token({ sub: 'p', roles: ['tenant'], tenant: 'paged' });
		for (let i = 0; i < 25; i++) {
			const r = await s.api('POST', '/v1/requests', { token: ptok, body: { addresses: [`81.2.80.${i}`], use_case: 'other' } });
			assert.equal(r.status, 202, r.text);
			created.push(r.json.id);
		}
	});

	async function allPages(query, limit) {
		const ids = [];
		const sizes = [];
		let cursor = null;
		for (let page = 0; page < 50; page++) {
			const q = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
			const r = await s.api('GET', `/v1/requests?${q}`, { token: ptok });
			assert.equal(r.status, 200, r.text);
			assert.equal(r.headers.get('content-type'), 'application/json');
			assert.ok(Array.isArray(r.json.items));
			assert.ok('next_cursor' in r.json);
			sizes.push(r.json.items.length);
			for (const it of r.json.items) {
				assert.equal(it.tenant, 'paged');
				ids.push(it.id);
			}
			cursor = r.json.next_cursor;
			if (cursor === null) return { ids, sizes };
			assert.equal(typeof cursor, 'string');
		}
		throw new Error('the cursor never ended');
	}

	test('25 requests, limit 10: pages of 10, 10, 5; newest first; no duplicates, no gaps', async () => {
		const { ids, sizes } = await allPages({}, 10);
		assert.deepEqual(sizes, [10, 10, 5]);
		assert.equal(new Set(ids).size, ids.length, 'no duplicates');
		assert.deepEqual(ids, [...created].reverse(), 'every request, newest first');
	});

	test('the summary shape, and the default limit of 20', async () => {
		const r = await s.api('GET', '/v1/requests', { token: ptok });
		assert.equal(r.status, 200);
		assert.equal(r.json.items.length, 20);
		assert.equal(typeof r.json.next_cursor, 'string');
		const it = r.json.items[0];
		assert.deepEqual(Object.keys(it).sort(), ['addresses', 'created_at', 'id', 'status', 'tenant', 'updated_at', 'use_case', 'version']);
		assert.equal(it.id, created.at(-1));
		assert.deepEqual(it.addresses, ['81.2.80.24/32']);
		const times = r.json.items.map((x) => Date.parse(x.created_at));
		for (let i = 1; i < times.length; i++) assert.ok(times[i - 1] >= times[i], 'newest first');
	});

	test('exactly one full page: next_cursor is null or leads to an empty page', async () => {
		const { ids } = await allPages({}, 25);
		assert.equal(ids.length, 25);
		const r = await s.api('GET', '/v1/requests?limit=100', { token: ptok });
		assert.equal(r.json.items.length, 25);
		assert.equal(r.json.next_cursor, null);
	});

	test('?status= filters, and paginates within the filter', async () => {
		const withdrawn = [created[3], created[11], created[20]];
		for (const id of withdrawn) {
			const w = await s.api('POST', `/v1/requests/${id}/withdraw`, { token: ptok });
			assert.equal(w.status, 200, w.text);
		}
		const wd = await allPages({ status: 'withdrawn' }, 2);
		assert.deepEqual(wd.ids, [...withdrawn].reverse());
		assert.deepEqual(wd.sizes, [2, 1]);
		const pending = await allPages({ status: 'pending' }, 100);
		assert.equal(pending.ids.length, 22);
		assert.ok(withdrawn.every((id) => !pending.ids.includes(id)));
		const none = await s.api('GET', '/v1/requests?status=approved', { token: ptok });
		assert.deepEqual(none.json, { items: [], next_cursor: null });
	});

	test('bad limit, status or cursor → 400', async () => {
		for (const l of ['0', '101', '-1', 'abc', '10x', '', '1e2']) {
			const r = await s.api('GET', `/v1/requests?limit=${encodeURIComponent(l)}`, { token: ptok });
			assertProblem(r, 400, 'invalid_parameter', 'limit');
		}
		for (const st of ['open', 'PENDING', '']) {
			const r = await s.api('GET', `/v1/requests?status=${st}`, { token: ptok });
			assertProblem(r, 400, 'invalid_parameter', 'status');
		}
		const forged = [
			'garbage!!', 'x'.repeat(101), Buffer.from('123/not-a-uuid').toString('base64url'),
			Buffer.from('12a/8d17801e-05bd-4027-b984-34330b1e6afc').toString('base64url'),
			Buffer.from('/8d17801e-05bd-4027-b984-34330b1e6afc').toString('base64url'),
			Buffer.from('8d17801e-05bd-4027-b984-34330b1e6afc').toString('base64url'),
		];
		for (const c of forged) {
			const r = await s.api('GET', `/v1/requests?cursor=${encodeURIComponent(c)}`, { token: ptok });
			assertProblem(r, 400, 'invalid_cursor', 'cursor');
		}
	});

	test('a tenant with no requests gets an empty list', async () => {
		await s.createTenant('quiet');
		const r = await s.api('GET', '/v1/requests', { token: s.token({ roles: ['tenant'], tenant: 'quiet' }) });
		assert.deepEqual(r.json, { items: [], next_cursor: null });
	});
});

// ------------------------------------------------------------ read

describe('read one', () => {
	test('ETag, If-None-Match → 304 with no body', async () => {
		const c = await submit(good({ addresses: ['81.2.69.20'] }));
		const url = `/v1/requests/${c.json.id}`;
		const r = await s.api('GET', url, { token: tok });
		assert.equal(r.status, 200);
		assert.equal(r.headers.get('etag'), '"1"');
		assert.equal(r.headers.get('cache-control'), 'private, no-cache');
		const nm = await s.api('GET', url, { token: tok, headers: { 'If-None-Match': '"1"' } });
		assert.equal(nm.status, 304);
		assert.equal(nm.text, '');
		assert.equal(nm.headers.get('etag'), '"1"');
		const star = await s.api('GET', url, { token: tok, headers: { 'If-None-Match': '*' } });
		assert.equal(star.status, 304);
		const stale = await s.api('GET', url, { token: tok, headers: { 'If-None-Match': '"0"' } });
		assert.equal(stale.status, 200);
		// after a change the old ETag no longer matches
		await s.api('POST', `${url}/withdraw`, { token: tok });
		const changed = await s.api('GET', url, { token: tok, headers: { 'If-None-Match': '"1"' } });
		assert.equal(changed.status, 200);
		assert.equal(changed.headers.get('etag'), '"2"');
		assert.equal(changed.json.status, 'withdrawn');
	});

	test('a kept body is served only while its version is current, and only to its tenant', async () => {
		// p25-api keeps the bodies it read (api/requests.c, the request
		// cache); a change made elsewhere (another p25-api process, a
		// worker) must show at the next read
		const c = await submit(good({ addresses: ['81.2.69.21'], description: 'first words' }));
		const url = `/v1/requests/${c.json.id}`;
		const first = await s.api('GET', url, { token: tok });
		assert.equal(first.json.description, 'first words');
		const again = await s.api('GET', url, { token: tok });
		assert.equal(again.text, first.text, 'the same version reads the same bytes');
		await s.sql("UPDATE requests SET description = 'changed elsewhere', version = version + 1 WHERE id = $1",
			[c.json.id]);
		const changed = await s.api('GET', url, { token: tok });
		assert.equal(changed.status, 200);
		assert.equal(changed.json.description, 'changed elsewhere');
		assert.equal(changed.headers.get('etag'), '"2"');
		// another tenant: 404, though the body is kept for its owner
		const other = s.token({ sub: 'bob', roles: ['tenant'], tenant: 'globex' });
		assertProblem(await s.api('GET', url, { token: other }), 404, 'not_found');
		// the row moved to another tenant (an admin's repair): the owner's kept body is not served
		await s.sql("UPDATE requests SET tenant_id = 'globex' WHERE id = $1", [c.json.id]);
		await s.sql("UPDATE request_addresses SET tenant_id = 'globex' WHERE request_id = $1", [c.json.id]);
		assertProblem(await s.api('GET', url, { token: tok }), 404, 'not_found');
		const moved = await s.api('GET', url, { token: other });
		assert.equal(moved.status, 200);
		assert.equal(moved.json.tenant, 'globex');
		assert.deepEqual(moved.json.addresses, ['81.2.69.21/32']);
	});

	test('an id that does not exist, or is not a UUID → 404 not_found', async () => {
		for (const id of ['0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11', 'abc', '0B0C9C4E-7D36-4E4F-8A59-6E1F0A3C2B1Z']) {
			const r = await s.api('GET', `/v1/requests/${id}`, { token: tok });
			assertProblem(r, 404, 'not_found');
			assert.equal(r.json.instance, `/v1/requests/${id}`);
		}
	});
});

// ------------------------------------------------------------ withdraw

describe('withdraw', () => {
	test('200 withdrawn with a new ETag and an audit row; again → 409 invalid_state', async () => {
		const c = await submit(good({ addresses: ['81.2.69.30'] }));
		const id = c.json.id;
		const b0 = await counts();
		const w = await s.api('POST', `/v1/requests/${id}/withdraw`, { token: tok });
		assert.equal(w.status, 200, w.text);
		assert.equal(w.json.status, 'withdrawn');
		assert.equal(w.json.version, 2);
		assert.equal(w.headers.get('etag'), '"2"');
		const b1 = await counts();
		assert.equal(b1.audit - b0.audit, 1);
		assert.equal(b1.requests, b0.requests);
		const audit = await s.sqlJson("SELECT actor, details FROM audit_log WHERE object_id = $1 AND action = 'request.withdraw'", [id]);
		assert.deepEqual(audit, [{ actor: 'alice', details: { from: 'pending' } }]);

		const again = await refusedLeavesNoRow(() => s.api('POST', `/v1/requests/${id}/withdraw`, { token: tok }));
		assertProblem(again, 409, 'invalid_state');
		assert.match(again.json.detail, /withdrawn/);
	});

	test('a decided request cannot be withdrawn', async () => {
		const c = await submit(good({ addresses: ['81.2.69.31'] }));
		for (const st of ['approved', 'denied']) {
			await s.sql('UPDATE requests SET status = $2 WHERE id = $1', [c.json.id, st]);
			const r = await refusedLeavesNoRow(() => s.api('POST', `/v1/requests/${c.json.id}/withdraw`, { token: tok }));
			assertProblem(r, 409, 'invalid_state');
			assert.match(r.json.detail, new RegExp(st));
		}
	});

	test('every open state can be withdrawn', async () => {
		for (const st of ['vetting', 'needs_review', 'needs_info']) {
			const c = await submit(good({ addresses: ['81.2.69.32'] }));
			await s.sql('UPDATE requests SET status = $2 WHERE id = $1', [c.json.id, st]);
			const r = await s.api('POST', `/v1/requests/${c.json.id}/withdraw`, { token: tok });
			assert.equal(r.status, 200, `${st}: ${r.text}`);
			assert.equal(r.json.status, 'withdrawn');
		}
	});

	test('If-Match: a stale ETag → 412 and nothing changes; the current one or * → 200', async () => {
		const c = await submit(good({ addresses: ['81.2.69.33'] }));
		const url = `/v1/requests/${c.json.id}/withdraw`;
		const r = await refusedLeavesNoRow(() => s.api('POST', url, { token: tok, headers: { 'If-Match': '"7"' } }));
		assertProblem(r, 412, 'precondition_failed');
		assert.ok(r.json.detail.includes('"1"'));
		const [[st]] = await s.sql('SELECT status FROM requests WHERE id = $1', [c.json.id]);
		assert.equal(st, 'pending');
		const ok = await s.api('POST', url, { token: tok, headers: { 'If-Match': '"1"' } });
		assert.equal(ok.status, 200, ok.text);
		const c2 = await submit(good({ addresses: ['81.2.69.34'] }));
		const star = await s.api('POST', `/v1/requests/${c2.json.id}/withdraw`, { token: tok, headers: { 'If-Match': '*' } });
		assert.equal(star.status, 200, star.text);
	});

	test('unknown id → 404; a body → 400 unexpected_body', async () => {
		const r = await s.api('POST', '/v1/requests/0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11/withdraw', { token: tok });
		assertProblem(r, 404, 'not_found');
		const bad = await s.api('POST', '/v1/requests/nope/withdraw', { token: tok });
		assertProblem(bad, 404, 'not_found');
		const c = await submit(good({ addresses: ['81.2.69.35'] }));
		const body = await refusedLeavesNoRow(() => s.api('POST', `/v1/requests/${c.json.id}/withdraw`, { token: tok, body: { reason: 'x' } }));
		assertProblem(body, 400, 'unexpected_body');
	});
});

// ------------------------------------------------------------ messages

describe('messages (answers to needs_info)', () => {
	test('only a request in needs_info takes an answer: 409 otherwise, nothing written', async () => {
		const c = await submit(good({ addresses: ['81.2.69.40'] }));
		const r = await refusedLeavesNoRow(() => s.api('POST', `/v1/requests/${c.json.id}/messages`, { token: tok,
			body: { body: 'hello' } }));
		assertProblem(r, 409, 'invalid_state');
		assert.match(r.json.detail, /pending/);
		for (const st of ['approved', 'denied', 'withdrawn', 'needs_review', 'vetting']) {
			await s.sql('UPDATE requests SET status = $2 WHERE id = $1', [c.json.id, st]);
			const x = await s.api('POST', `/v1/requests/${c.json.id}/messages`, { token: tok, body: { body: 'hello' } });
			assertProblem(x, 409, 'invalid_state');
		}
		const [m] = await s.sqlJson('SELECT (SELECT count(*) FROM messages WHERE request_id = $1) AS messages,' +
			" (SELECT count(*) FROM jobs WHERE payload->>'request' = $1) AS jobs", [c.json.id]);
		assert.deepEqual(m, { messages: 0, jobs: 1 });
	});

	/** Puts a request in needs_info the way a decision does: the state and the decision that asked. */
	const askFor = (id, actor) => s.sql(`BEGIN;
UPDATE requests SET status = 'needs_info', version = version + 1 WHERE id = $1;
INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes, message)
VALUES ($1, 'acme', 1, 'needs_info', $2, '{rdns_missing}', 'Which mail server sends from this address?');
COMMIT;`, [id, actor]);

	test('needs_info asked by the policy → answer → 200 pending, the message kept, a new vetting round queued', async () => {
		const c = await submit(good({ addresses: ['81.2.69.41'] }));
		const id = c.json.id;
		await askFor(id, 'policy');
		const b0 = await counts();
		const text = 'We send invoices from this address; rDNS is mail.example.com now.';
		const r = await s.api('POST', `/v1/requests/${id}/messages`, { token: tok, body: { body: text } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'pending');
		assert.equal(r.json.version, 3);
		assert.equal(r.headers.get('etag'), '"3"');
		assert.equal(r.json.messages.length, 1);
		assert.equal(r.json.messages[0].role, 'tenant');
		assert.equal(r.json.messages[0].body, text);
		assert.equal(r.json.decision.decision, 'needs_info');
		const b1 = await counts();
		assert.equal(b1.messages - b0.messages, 1);
		assert.equal(b1.jobs - b0.jobs, 1);
		assert.equal(b1.audit - b0.audit, 1);
		assert.equal(b1.requests, b0.requests);
		const jobs = await s.sqlJson("SELECT payload FROM jobs WHERE kind = 'vet' AND payload->>'request' = $1 ORDER BY id", [id]);
		assert.deepEqual(jobs.map((j) => j.payload.round), [1, 2]);
		const [row] = await s.sqlJson('SELECT status, vetting_round FROM requests WHERE id = $1', [id]);
		assert.deepEqual(row, { status: 'pending', vetting_round: 2 });
		const [m] = await s.sqlJson('SELECT author, role, tenant_id FROM messages WHERE request_id = $1', [id]);
		assert.deepEqual(m, { author: 'alice', role: 'tenant', tenant_id: 'acme' });
		const audit = await s.sql("SELECT count(*) FROM audit_log WHERE object_id = $1 AND action = 'request.answer'", [id]);
		assert.deepEqual(audit, [['1']]);
		// answered: no longer needs_info
		const again = await s.api('POST', `/v1/requests/${id}/messages`, { token: tok, body: { body: 'more' } });
		assertProblem(again, 409, 'invalid_state');
	});

	test('needs_info asked by a reviewer → answer → 200 back in the review queue, no new vetting', async () => {
		const c = await submit(good({ addresses: ['81.2.69.43'] }));
		const id = c.json.id;
		await askFor(id, 'rev-anna');
		const b0 = await counts();
		const r = await s.api('POST', `/v1/requests/${id}/messages`, { token: tok, body: { body: 'It is our invoicing host.' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.status, 'needs_review');
		assert.equal(r.json.messages.at(-1).body, 'It is our invoicing host.');
		const b1 = await counts();
		assert.equal(b1.messages - b0.messages, 1);
		assert.equal(b1.jobs - b0.jobs, 0, 'no vetting job: a person asked');
		const [row] = await s.sqlJson('SELECT status, vetting_round FROM requests WHERE id = $1', [id]);
		assert.deepEqual(row, { status: 'needs_review', vetting_round: 1 });
	});

	test('bad answers are refused and the request stays in needs_info', async () => {
		const c = await submit(good({ addresses: ['81.2.69.42'] }));
		const id = c.json.id;
		const url = `/v1/requests/${id}/messages`;
		await askFor(id, 'policy');
		const cases = [
			[{ body: {} }, 422, 'required', 'body'],
			[{ body: { body: '' } }, 422, 'invalid_text', 'body'],
			[{ body: { body: 'bell\u0007' } }, 422, 'invalid_text', 'body'],
			[{ body: { body: 'x'.repeat(4001) } }, 422, 'too_long', 'body'],
			[{ body: { body: 5 } }, 422, 'invalid_type', 'body'],
			[{ body: { body: 'hi', role: 'reviewer' } }, 422, 'unknown_field', 'role'],
			[{ body: '{"body":', headers: { 'Content-Type': 'application/json' } }, 400, 'malformed_json'],
			[{ body: 'hi', headers: { 'Content-Type': 'text/plain' } }, 415, 'unsupported_media_type'],
			[{ body: { body: 'hi' }, headers: { 'If-Match': '"1"' } }, 412, 'precondition_failed'],
		];
		await refusedLeavesNoRow(async () => {
			for (const [opts, status, code, field] of cases) {
				const r = await s.api('POST', url, { token: tok, ...opts });
				assertProblem(r, status, code, field);
			}
		});
		const [[st]] = await s.sql('SELECT status FROM requests WHERE id = $1', [id]);
		assert.equal(st, 'needs_info');
		const ok = await s.api('POST', url, { token: tok, body: { body: 'hi' }, headers: { 'If-Match': '"2"' } });
		assert.equal(ok.status, 200, ok.text);
	});

	test('an unknown request → 404', async () => {
		for (const id of ['0b0c9c4e-7d36-4e4f-8a59-6e1f0a3c2b11', 'nope']) {
			const r = await s.api('POST', `/v1/requests/${id}/messages`, { token: tok, body: { body: 'hi' } });
			assertProblem(r, 404, 'not_found');
		}
	});
});
