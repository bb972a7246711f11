// abuse.test.mjs — abuse reports (issue 7): POST /v1/abuse-reports in JSON
// and in ARF (RFC 5965 multipart/report with a message/feedback-report
// part), against the real p25-api, a p25-worker, a throwaway PostgreSQL and
// real DNS on loopback (rbldnsd + dnsmasq, tests/lib/dns.mjs).
//
// Every exemption is approved for real first (clean DNS), because a report
// against a tenant's address counts in that tenant's vetting history.  Then:
//   - a JSON spam report suspends the covering exemption at once (revoke
//     event, why on the exemption, the request and GET /v1/addresses/{ip});
//     the same (source, report_id) again is counted, not applied again;
//   - phishing (not in P25_ABUSE_SUSPEND_CATEGORIES) → review item only;
//   - an ARF report (Feedback-Type abuse) does what the JSON one does, for an
//     address inside an exempted prefix too; the same message again is a
//     duplicate;
//   - malformed ARF and malformed JSON are refused with problem+json and
//     leave no row in abuse_reports;
//   - an unmatched report is stored with the tenant that holds the address
//     (inventory) and no exemption, and the tenant's next vetting goes to a
//     reviewer (history_abuse);
//   - who may file: reporter and reviewer yes, tenant/enforcer/admin no.
//
// Regression notes name bugs these tests found (fixed in 772c06e).
//
// Run: P25_BUILD_DIR=$PWD/build/mon node --test tests/integration/abuse.test.mjs
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor } from '../lib/harness.mjs';
import { startDns } from '../lib/dns.mjs';

const ZONE = 'zen.test';
const IP = { json: '81.2.69.5', phish: '81.2.69.6', arf: '81.2.69.7', prefix: '81.2.69.12/30', inPrefix: '81.2.69.13' };
const GLOBEX_IP = '81.2.71.5'; // held by globex, never exempted
const NOBODY_IP = '81.2.99.9'; // held by no tenant
const GOOD = ['81.2.69.5', '81.2.69.6', '81.2.69.7', '81.2.69.12', '81.2.69.13', '81.2.69.14', '81.2.69.15', GLOBEX_IP];

let s;
let dns;
let tenant; // acme
let globex;
let reporter;
let rita;
let enforcer;
const req = {};
const exm = {};

// ------------------------------------------------------------ helpers

const letters = (i) => {
	let l = '';
	do {
		l = String.fromCharCode(97 + (i % 26)) + l;
		i = Math.floor(i / 26) - 1;
	} while (i >= 0);
	return l;
};
const mailName = (ip) => `mail-${letters(GOOD.indexOf(ip))}.p25.example`;

function assertProblem(r, status, code) {
	assert.equal(r.status, status, `${r.status} ${r.text}`);
	assert.match(r.headers.get('content-type') || '', /^application\/problem\+json/);
	assert.equal(r.json?.status, status, r.text);
	if (code) assert.equal(r.json?.code, code, r.text);
	assert.ok(r.json.title || r.json.detail, 'a problem says what is wrong');
}
const feedHead = () => s.feedHead(enforcer);
const feedAfter = (seq) => s.feedEvents(seq, enforcer);
const getReq = async (id, token = tenant) => {
	const r = await s.api('GET', `/v1/requests/${id}`, { token });
	assert.equal(r.status, 200, r.text);
	return r.json;
};
const getExm = async (id) => {
	const r = await s.api('GET', `/v1/exemptions/${id}`, { token: tenant });
	assert.equal(r.status, 200, r.text);
	return r.json;
};
const countReports = async () => Number((await s.sql('SELECT count(*) FROM abuse_reports'))[0][0]);
const report = (body, token = reporter) => s.api('POST', '/v1/abuse-reports', { token, body });
const arf = (text, ctype, token = reporter) => s.api('POST', '/v1/abuse-reports',
	{ token, body: text, headers: { 'Content-Type': ctype } });

async function decided(id, token = tenant) {
	let j;
	await waitFor(async () => {
		j = await getReq(id, token);
		return !['pending', 'vetting'].includes(j.status);
	}, { timeoutMs: 30000, what: `the decision on ${id}` });
	return j;
}
async function approve(addr) {
	const r = await s.api('POST', '/v1/requests', { token: tenant, body: {
		addresses: [addr], use_case: 'transactional', description: `abuse test ${addr}` } });
	assert.equal(r.status, 202, r.text);
	const j = await decided(r.json.id);
	assert.equal(j.status, 'approved', JSON.stringify(j, null, 1));
	return { id: j.id, exemption: j.exemptions[0] };
}

/** An RFC 5322 date with a numeric zone, as mail software writes it. */
function rfc5322(d, offsetMin = -300) {
	const t = new Date(d.getTime() + offsetMin * 60000);
	const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][t.getUTCDay()];
	const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][t.getUTCMonth()];
	const p = (n) => String(n).padStart(2, '0');
	const sign = offsetMin < 0 ? '-' : '+';
	const o = Math.abs(offsetMin);
	return `${day}, ${t.getUTCDate()} ${mon} ${t.getUTCFullYear()} ${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:` +
		`${p(t.getUTCSeconds())} ${sign}${p(Math.floor(o / 60))}${p(o % 60)}`;
}

const BOUNDARY = 'part1_13d.2e68ed54_boundary';
const ARF_CT = `multipart/report; report-type=feedback-report; boundary="${BOUNDARY}"`;

/**
 * A feedback report shaped like RFC 5965's extended example (Appendix B.2):
 * a human-readable part, the machine-readable message/feedback-report part
 * and the reported message (message/rfc822), CRLF line ends.  fields
 * replaces or removes (null) fields of the feedback part.
 */
function arfMessage({ sourceIp, arrival, messageId, feedbackType = 'abuse', fields = {}, parts } = {}) {
	const fb = {
		'Feedback-Type': feedbackType,
		'User-Agent': 'SomeGenerator/1.0',
		Version: '1',
		'Original-Mail-From': '<somespammer@example.net>',
		'Original-Rcpt-To': '<user@example.com>',
		'Arrival-Date': arrival,
		'Reporting-MTA': 'dns; mail.example.com',
		'Source-IP': sourceIp,
		'Authentication-Results': 'mail.example.com;\r\n        spf=fail smtp.mail=somespammer@example.com',
		'Reported-Domain': 'example.net',
		'Reported-Uri': 'http://example.net/earn_money.html',
		'Removal-Recipient': 'user@example.com',
		...fields,
	};
	const fbText = Object.entries(fb).filter(([, v]) => v !== null && v !== undefined)
		.map(([k, v]) => `${k}: ${v}`).join('\r\n');
	const human = [
		'Content-Type: text/plain; charset="US-ASCII"',
		'Content-Transfer-Encoding: 7bit',
		'',
		'This is an email abuse report for an email message received from IP',
		`${sourceIp} on ${arrival}.  For more information`,
		'about this format please see http://www.mipassoc.org/arf/.',
		''].join('\r\n');
	const feedback = ['Content-Type: message/feedback-report', '', fbText, ''].join('\r\n');
	const original = [
		'Content-Type: message/rfc822',
		'Content-Disposition: inline',
		'',
		'Received: from mailserver.example.net',
		`        (mailserver.example.net [${sourceIp}])`,
		'        by example.com with ESMTP id M63d4137594e46;',
		`        ${arrival}`,
		'From: <somespammer@example.net>',
		'To: <Undisclosed Recipients>',
		'Subject: Earn money',
		'MIME-Version: 1.0',
		'Content-type: text/plain',
		`Message-ID: ${messageId}`,
		`Date: ${arrival}`,
		'',
		'Spam Spam Spam',
		'Spam Spam Spam',
		''].join('\r\n');
	const all = parts ?? [human, feedback, original];
	return `${all.map((p) => `--${BOUNDARY}\r\n${p}`).join('\r\n')}\r\n--${BOUNDARY}--\r\n`;
}

// ------------------------------------------------------------ the stack

before(async () => {
	s = await startStack({ api: false, env: {
		P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000', P25_DNS_TIMEOUT_MS: '1000', P25_DNS_TRIES: '1',
	} });
	dns = await startDns({
		stack: s,
		dnsbl: { [ZONE]: { ip4: [] } },
		hosts: GOOD.map((ip) => [mailName(ip), ip]),
		local: ['p25.example'],
	});
	Object.assign(s.env, { P25_DNS_SERVERS: dns.servers, P25_DNSBL_ZONES: ZONE });
	await s.startApi();
	const k = await s.ctl(['keys', 'generate']);
	assert.equal(k.code, 0, k.stderr);
	await s.createTenant('acme', { addresses: ['81.2.69.0/26'] });
	await s.createTenant('globex', { addresses: ['81.2.71.0/24'] });
	tenant = s.token({ sub: 'alice@acme', roles: ['tenant'], tenant: 'acme' });
	globex = s.token({ sub: 'gus@globex', roles: ['tenant'], tenant: 'globex' });
	reporter = s.token({ sub: 'feed:spamtrap-1', roles: ['reporter'] });
	rita = s.token({ sub: 'rita', roles: ['reviewer'] });
	enforcer = s.token({ sub: 'node-1', roles: ['enforcer'] });
	s.startWorker();
	// all approvals first: a report against acme's addresses counts in its history
	for (const [name, addr] of Object.entries({ json: IP.json, phish: IP.phish, arf: IP.arf, prefix: IP.prefix })) {
		const a = await approve(addr);
		req[name] = a.id;
		exm[name] = a.exemption;
	}
});

after(async () => {
	await s?.stop();
});

// ------------------------------------------------------------ JSON

describe('a JSON report against an exempted address', () => {
	let seq0;
	let first;
	const body = {
		address: IP.json, source: 'spamtrap.example', category: 'spam',
		evidence: { trap: 'trap-17@spamtrap.example', subject: 'Cheap watches', count: 42 },
		observed_at: '2026-11-20T10:00:00Z', report_id: 'st-2026-0001',
	};

	test('suspends the exemption at once: 201, a revoke event, why on the exemption', async () => {
		seq0 = await feedHead();
		const t0 = Date.now();
		const r = await report(body);
		assert.equal(r.status, 201, r.text);
		first = r.json;
		assert.equal(r.json.duplicate, false);
		assert.equal(r.json.times_seen, 1);
		assert.equal(r.json.action, 'suspended');
		assert.equal(r.json.format, 'json');
		assert.equal(r.json.category, 'spam');
		assert.equal(r.json.tenant, 'acme');
		assert.equal(r.json.exemption, exm.json);
		// at once: the event is in the feed when the answer arrives
		const ev = (await feedAfter(seq0)).filter((e) => e.exemption === exm.json);
		assert.equal(ev.length, 1, JSON.stringify(ev));
		assert.equal(ev[0].type, 'revoke');
		assert.equal(ev[0].cidr, `${IP.json}/32`);
		assert.match(ev[0].reason, /suspended: abuse_report/);
		console.log(`abuse: JSON report → revoke event in the feed ${Date.now() - t0} ms after sending`);
		const e = await getExm(exm.json);
		assert.equal(e.status, 'suspended');
		assert.equal(e.suspended_cause, 'abuse_report');
		assert.equal(e.suspensions, 1);
		assert.equal(e.token, null);
		assert.match(e.status_reason, /abuse report \(spam\) from spamtrap\.example/);
	});

	test('the stored row: evidence, observed_at, tenant and exemption', async () => {
		const [a] = await s.sqlJson(`SELECT source, report_id, format, host(address) AS address, category, evidence,
			observed_at, tenant_id, exemption_id, times_seen FROM abuse_reports WHERE id = $1`, [first.id]);
		assert.equal(a.source, 'spamtrap.example');
		assert.equal(a.report_id, 'st-2026-0001');
		assert.equal(a.format, 'json');
		assert.equal(a.address, IP.json);
		assert.deepEqual(a.evidence, body.evidence);
		assert.equal(Date.parse(a.observed_at), Date.parse(body.observed_at));
		assert.equal(a.tenant_id, 'acme');
		assert.equal(a.exemption_id, exm.json);
	});

	test('the request and GET /v1/addresses/{ip} show why; a review item appears', async () => {
		const r = await getReq(req.json);
		assert.equal(r.status, 'needs_review');
		assert.deepEqual(r.decision.reason_codes, ['abuse_spam']);
		assert.match(r.decision.message, /abuse report \(spam\) from spamtrap\.example/);
		const a = await s.api('GET', `/v1/addresses/${IP.json}`, { token: tenant });
		assert.equal(a.status, 200, a.text);
		assert.equal(a.json.state, 'suspended');
		assert.equal(a.json.port25_open, false);
		assert.match(a.json.exemption.status_reason, /abuse report \(spam\)/);
		assert.ok(a.json.since);
		const q = await s.api('GET', '/v1/review/queue?tenant=acme', { token: rita });
		assert.ok(q.json.items.some((i) => i.id === req.json), 'in the review queue');
		const [au] = await s.sqlJson(`SELECT actor, details FROM audit_log WHERE action = 'exemption.suspend'
			AND object_id = $1`, [exm.json]);
		assert.equal(au.actor, 'feed:spamtrap-1');
		assert.equal(au.details.cause, 'abuse_report');
	});

	test('the same (source, report_id) again: 200, counted, not applied again', async () => {
		const seq = await feedHead();
		const n = await countReports();
		const r = await report({ ...body, evidence: { again: true } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.duplicate, true);
		assert.equal(r.json.times_seen, 2);
		assert.equal(r.json.action, 'counted');
		assert.equal(r.json.id, first.id);
		const r3 = await report(body, rita); // another caller, same source and id: still the same report
		assert.equal(r3.status, 200, r3.text);
		assert.equal(r3.json.times_seen, 3);
		assert.equal(await countReports(), n);
		assert.equal((await feedAfter(seq)).length, 0, 'no new event');
		const e = await getExm(exm.json);
		assert.equal(e.suspensions, 1);
		const [[audits]] = await s.sql(`SELECT count(*) FROM audit_log WHERE action = 'abuse_report.receive'
			AND object_id = $1`, [first.id]);
		assert.equal(audits, '1');
		const [[dec]] = await s.sql('SELECT count(*) FROM decisions WHERE request_id = $1 AND decision = \'needs_review\'', [req.json]);
		assert.equal(dec, '1');
	});
});

describe('a phishing report (a category that does not suspend)', () => {
	test('queues the request for review; the exemption stays active with its token', async () => {
		const seq = await feedHead();
		const r = await report({ address: IP.phish, source: 'phishtank.example', category: 'phishing',
			evidence: 'http://login-bank.example/phish', report_id: 'pt-9' });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.action, 'queued_for_review');
		assert.equal(r.json.exemption, exm.phish);
		const e = await getExm(exm.phish);
		assert.equal(e.status, 'active');
		assert.ok(e.token);
		assert.equal((await feedAfter(seq)).length, 0, 'no revoke event');
		const q = await getReq(req.phish);
		assert.equal(q.status, 'needs_review');
		assert.deepEqual(q.decision.reason_codes, ['abuse_phishing']);
		const rq = await s.api('GET', '/v1/review/queue?tenant=acme', { token: rita });
		assert.ok(rq.json.items.some((i) => i.id === req.phish));
		const [a] = await s.sqlJson('SELECT evidence FROM abuse_reports WHERE id = $1', [r.json.id]);
		assert.deepEqual(a.evidence, { text: 'http://login-bank.example/phish' });
	});
});

// ------------------------------------------------------------ ARF

describe('an ARF report (RFC 5965)', () => {
	const arrivalAt = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000);
	const arrival = rfc5322(arrivalAt);
	const msg = arfMessage({ sourceIp: IP.arf, arrival, messageId: '<8787KJKJ3K4J3K4J3K4J3.mail@example.net>' });
	let first;

	test('Feedback-Type abuse suspends the exemption of Source-IP at once', async () => {
		const seq = await feedHead();
		const r = await arf(msg, ARF_CT);
		assert.equal(r.status, 201, r.text);
		first = r.json;
		assert.equal(r.json.format, 'arf');
		assert.equal(r.json.category, 'spam');
		assert.equal(r.json.action, 'suspended');
		assert.equal(r.json.exemption, exm.arf);
		assert.equal(r.json.tenant, 'acme');
		const ev = (await feedAfter(seq)).filter((e) => e.exemption === exm.arf);
		assert.equal(ev.length, 1);
		assert.equal(ev[0].type, 'revoke');
		const e = await getExm(exm.arf);
		assert.equal(e.status, 'suspended');
		assert.equal(e.suspended_cause, 'abuse_report');
		assert.match(e.status_reason, /abuse report \(spam\) from feed:spamtrap-1/);
		const q = await getReq(req.arf);
		assert.equal(q.status, 'needs_review');
		assert.deepEqual(q.decision.reason_codes, ['abuse_spam']);
	});

	test('what is kept: the feedback fields, Arrival-Date as observed_at, the Message-ID as report id', async () => {
		const [a] = await s.sqlJson(`SELECT source, report_id, format, host(address) AS address, evidence, observed_at
			FROM abuse_reports WHERE id = $1`, [first.id]);
		assert.equal(a.source, 'feed:spamtrap-1');
		assert.equal(a.format, 'arf');
		assert.equal(a.address, IP.arf);
		assert.equal(a.report_id, '<8787KJKJ3K4J3K4J3K4J3.mail@example.net>');
		const fr = a.evidence.feedback_report;
		assert.equal(fr['feedback-type'], 'abuse');
		assert.equal(fr['source-ip'], IP.arf);
		assert.equal(fr['reported-domain'], 'example.net');
		assert.match(fr['authentication-results'], /spf=fail/, 'a folded field is unfolded');
		assert.equal(Date.parse(a.observed_at), arrivalAt.getTime(), `observed_at ${a.observed_at} from ${arrival}`);
	});

	test('the same message reported again is a duplicate', async () => {
		const seq = await feedHead();
		const r = await arf(msg, ARF_CT);
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.duplicate, true);
		assert.equal(r.json.times_seen, 2);
		assert.equal(r.json.id, first.id);
		assert.equal((await feedAfter(seq)).length, 0);
	});

	test('an address inside an exempted prefix suspends that prefix\'s exemption (LF line ends, unquoted boundary)', async () => {
		const seq = await feedHead();
		const lf = arfMessage({ sourceIp: IP.inPrefix, arrival: rfc5322(new Date(), 0), messageId: '<prefix-1@example.net>' })
			.replace(/\r\n/g, '\n');
		const r = await arf(lf, `multipart/report; boundary=${BOUNDARY}; report-type=feedback-report`);
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.action, 'suspended');
		assert.equal(r.json.exemption, exm.prefix);
		const ev = (await feedAfter(seq)).filter((e) => e.exemption === exm.prefix);
		assert.equal(ev.length, 1);
		assert.equal(ev[0].cidr, IP.prefix);
		assert.equal((await getExm(exm.prefix)).status, 'suspended');
	});

	// Regression (core/arf.c, p25_rfc5322_date, fixed in 772c06e): RFC 5322
	// §4.3 obsolete zones (UT, GMT, EST/EDT …) were refused with 422 "Arrival-Date
	// is not an RFC 5322 date", though parsers must accept the obsolete syntax
	// and RFC 5965's own examples write "Thu, 8 Mar 2005 14:00:00 EDT".
	test('Arrival-Date with an obsolete zone (EDT, GMT, as in RFC 5965\'s examples) is accepted', async () => {
			const refused = [];
			for (const [i, date] of ['Thu, 8 Mar 2005 14:00:00 EDT', 'Tue, 08 Mar 2005 18:00:00 GMT',
				'8 Mar 2005 18:00:00 UT', 'Tue, 8 Mar 2005 13:00:00 EST'].entries()) {
				const r = await arf(arfMessage({ sourceIp: NOBODY_IP, arrival: date, messageId: `<obs-${i}@example.net>` }), ARF_CT);
				if (r.status !== 201) {
					refused.push(`${date}: ${r.status} ${r.json?.detail}`);
					continue;
				}
				const [a] = await s.sqlJson('SELECT observed_at FROM abuse_reports WHERE id = $1', [r.json.id]);
				assert.equal(new Date(a.observed_at).toISOString(), '2005-03-08T18:00:00.000Z', date);
			}
			assert.deepEqual(refused, []);
		});

	// Regression (api/abuse.c, report_arf, fixed in 772c06e): Feedback-Type
	// not-spam ("the reporting entity does not consider the message spam", RFC
	// 5965 §7.3) was filed as category "other": it queued the exemption's
	// request for review and counted as abuse in the tenant's vetting history.
	test('Feedback-Type not-spam is not an abuse report against the sender', async () => {
		const seq = await feedHead();
		const [[d0]] = await s.sql('SELECT count(*) FROM decisions WHERE request_id = $1', [req.phish]);
		const r = await arf(arfMessage({ sourceIp: IP.phish, arrival: rfc5322(new Date()), feedbackType: 'not-spam',
			messageId: '<not-spam-1@example.net>' }), ARF_CT);
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.category, 'not_spam');
		assert.equal(r.json.action, 'stored');
		assert.equal((await getExm(exm.phish)).status, 'active');
		assert.equal((await feedAfter(seq)).length, 0);
		const [[d1]] = await s.sql('SELECT count(*) FROM decisions WHERE request_id = $1', [req.phish]);
		assert.equal(d1, d0, 'no review item');
	});
});

// ------------------------------------------------------------ malformed

describe('malformed reports are refused and kept nowhere', () => {
	const arrival = rfc5322(new Date());
	const good = (over = {}) => arfMessage({ sourceIp: IP.json, arrival, messageId: `<m-${Math.random()}@x.example>`, ...over });
	const fbOnly = (fields) => ['Content-Type: message/feedback-report', '', fields, ''].join('\r\n');
	const cases = {
		'no message/feedback-report part': [good({ parts: ['Content-Type: text/plain\r\n\r\nhello\r\n',
			'Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody\r\n'] }), ARF_CT, 422],
		'no Source-IP': [good({ fields: { 'Source-IP': null } }), ARF_CT, 422],
		'an empty Source-IP': [good({ fields: { 'Source-IP': '' } }), ARF_CT, 422],
		'a Source-IP that is a host name': [good({ fields: { 'Source-IP': 'mail.example.net' } }), ARF_CT, 422],
		'a Source-IP that is a prefix': [good({ fields: { 'Source-IP': '81.2.69.0/24' } }), ARF_CT, 422],
		'no Feedback-Type': [good({ fields: { 'Feedback-Type': null } }), ARF_CT, 422],
		'a bad Arrival-Date': [good({ fields: { 'Arrival-Date': 'yesterday around noon' } }), ARF_CT, 422],
		'an impossible Arrival-Date': [good({ fields: { 'Arrival-Date': 'Thu, 45 Foo 2026 25:61:00 +0000' } }), ARF_CT, 422],
		'the wrong report-type': [good(), `multipart/report; report-type=delivery-status; boundary="${BOUNDARY}"`, 422],
		'no report-type': [good(), `multipart/report; boundary="${BOUNDARY}"`, 422],
		'no boundary': [good(), 'multipart/report; report-type=feedback-report', 422],
		'a boundary that is not in the body': [good(), 'multipart/report; report-type=feedback-report; boundary="other"', 422],
		'an empty body': ['', ARF_CT, 422],
		'only the feedback part, without Source-IP': [`--${BOUNDARY}\r\n${fbOnly('Feedback-Type: abuse\r\nVersion: 1')}\r\n--${BOUNDARY}--\r\n`,
			ARF_CT, 422],
	};
	for (const [what, [text, ctype, status]] of Object.entries(cases)) {
		test(`ARF with ${what} → ${status} problem+json, no row`, async () => {
			const n = await countReports();
			const r = await arf(text, ctype);
			assertProblem(r, status);
			assert.equal(await countReports(), n, 'a row was stored');
		});
	}

	const base = { address: IP.phish, source: 'feed.example', category: 'spam', report_id: 'bad-1' };
	const jcases = {
		'no address': [{ ...base, address: undefined }, 422],
		'an address that is not one': [{ ...base, address: 'not-an-ip' }, 422],
		'a prefix instead of an address': [{ ...base, address: '81.2.69.0/24' }, 422],
		'no source': [{ ...base, source: undefined }, 422],
		'an empty source': [{ ...base, source: '' }, 422],
		'no report_id': [{ ...base, report_id: undefined }, 422],
		'an unknown category': [{ ...base, category: 'rudeness' }, 422],
		'a category of the wrong type': [{ ...base, category: 7 }, 422],
		'a bad observed_at': [{ ...base, observed_at: 'last tuesday' }, 422],
		'evidence that is a number': [{ ...base, evidence: 12 }, 422],
		'an unknown field': [{ ...base, severity: 'high' }, 422],
	};
	for (const [what, [body, status]] of Object.entries(jcases)) {
		test(`JSON with ${what} → ${status} problem+json, no row`, async () => {
			const n = await countReports();
			const r = await report(body);
			assertProblem(r, status);
			assert.equal(await countReports(), n, 'a row was stored');
		});
	}
	test('JSON that does not parse, a JSON array, a non-JSON content type → 4xx, no row', async () => {
		const n = await countReports();
		for (const [body, ct, status] of [['{"address": "81.2.69.6",', 'application/json', 400],
			['[1,2]', 'application/json', 400], [JSON.stringify(base), 'text/plain', 415]]) {
			const r = await s.api('POST', '/v1/abuse-reports', { token: reporter, body, headers: { 'Content-Type': ct } });
			assertProblem(r, status);
		}
		assert.equal(await countReports(), n);
		// and the exemption named in all of them is untouched
		assert.equal((await getExm(exm.phish)).status, 'active');
	});
});

// ------------------------------------------------------------ unmatched

describe('unmatched reports', () => {
	test('an address held by a tenant but not exempted: stored with that tenant, no exemption', async () => {
		const ready = await s.api('POST', '/v1/readiness', { token: globex, body: { addresses: [GLOBEX_IP] } });
		assert.equal(ready.status, 200, ready.text);
		assert.equal(ready.json.would_decide, 'approve', 'before the report globex would be approved');
		const r = await report({ address: GLOBEX_IP, source: 'spamtrap.example', category: 'spam', report_id: 'st-2026-0002' });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.tenant, 'globex');
		assert.equal(r.json.exemption, null);
		assert.equal(r.json.action, 'stored');
		const [a] = await s.sqlJson('SELECT tenant_id, exemption_id FROM abuse_reports WHERE id = $1', [r.json.id]);
		assert.equal(a.tenant_id, 'globex');
		assert.equal(a.exemption_id, null);
	});

	test('an address nobody holds: stored with neither', async () => {
		const r = await report({ address: NOBODY_IP, source: 'spamtrap.example', category: 'malware', report_id: 'st-2026-0003' });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.tenant, null);
		assert.equal(r.json.exemption, null);
		const [a] = await s.sqlJson('SELECT tenant_id, exemption_id, category FROM abuse_reports WHERE id = $1', [r.json.id]);
		assert.deepEqual(a, { tenant_id: null, exemption_id: null, category: 'malware' });
	});

	test('the next vetting of the tenant goes to a reviewer: history_abuse', async () => {
		const r = await s.api('POST', '/v1/requests', { token: globex, body: {
			addresses: [GLOBEX_IP], use_case: 'transactional', description: 'after a spam report' } });
		assert.equal(r.status, 202, r.text);
		const j = await decided(r.json.id, globex);
		assert.equal(j.status, 'needs_review', JSON.stringify(j, null, 1));
		assert.ok(j.decision.reason_codes.includes('history_abuse'), JSON.stringify(j.decision));
		const h = j.checks.find((c) => c.name === 'history' && c.outcome === 'fail');
		assert.ok(h, JSON.stringify(j.checks));
		assert.ok(h.evidence.abuse_suspensions_90d >= 1);
	});
});

// ------------------------------------------------------------ roles

describe('who may file a report', () => {
	const body = (id) => ({ address: NOBODY_IP, source: 'roles.example', category: 'other', report_id: id });
	test('reporter and reviewer may', async () => {
		assert.equal((await report(body('r-1'), reporter)).status, 201);
		assert.equal((await report(body('r-2'), rita)).status, 201);
	});
	test('tenant, enforcer and admin may not (403); nobody without a token (401)', async () => {
		const n = await countReports();
		assertProblem(await report(body('r-3'), tenant), 403);
		assertProblem(await report(body('r-4'), enforcer), 403);
		assertProblem(await report(body('r-5'), s.token({ sub: 'ada', roles: ['admin'] })), 403);
		assertProblem(await s.api('POST', '/v1/abuse-reports', { body: body('r-6') }), 401);
		assertProblem(await arf(arfMessage({ sourceIp: IP.phish, arrival: rfc5322(new Date()), messageId: '<t@x>' }), ARF_CT, tenant), 403);
		assert.equal(await countReports(), n);
		assert.equal((await getExm(exm.phish)).status, 'active');
	});
});
