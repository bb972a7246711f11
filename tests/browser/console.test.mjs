// console.test.mjs — the review console (GET /console, api/static/console.*)
// driven end to end in Debian's headless Chromium through playwright-core,
// against the real p25-api, a p25-worker vetting against real DNS servers on
// loopback (tests/lib/dns.mjs: rbldnsd behind dnsmasq) and a throwaway
// PostgreSQL (tests/lib/harness.mjs).
//
// What a reviewer does in the console: sign in with a bearer token, filter
// the queue (oldest first, with waiting times), open a request and read all
// its evidence, account facts, history and messages, claim it, approve it
// with a narrower scope and see the exemption active, revoke and reinstate
// it, ask the tenant a question, deny with reason codes, meet a colleague's
// claim (409) and a stale view (412), and read the audit trail.
//
// Besides: markup that arrives from DNS (a DNSBL TXT record, a DMARC record;
// a PTR name is written into the evidence by SQL, since c-ares refuses such
// names) and from the tenant (description, messages) stays inert text; no
// Content-Security-Policy violation or script error happens anywhere; an
// axe-core scan finds no serious or critical violation on the queue and
// detail views; a phone-sized viewport never scrolls sideways.
//
// Run: P25_BUILD_DIR=$PWD/build/debug node --test tests/browser/console.test.mjs
// (needs /usr/bin/chromium, rbldnsd, dnsmasq and the npm packages: bash scripts/deps.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from '../lib/harness.mjs';
import { startDns } from '../lib/dns.mjs';
import * as lib from './lib.mjs';

const TENANT = 'acme';

// what hostile DNS and a hostile tenant send
const XSS_TXT = '<img src=x onerror="window.__xss=1"> see <b>zen</b>';
const XSS_DMARC = 'v=DMARC1; p=none; rua=mailto:<img src=x onerror="window.__xss=4">@shop.example';
const XSS_PTR = '<svg onload="window.__xss=5">.example';
const XSS_HINT = '<script>window.__xss=6</script> fix it';
const XSS_DESC = 'Receipts <script>window.__xss=3</script> & <i>more</i>';
const XSS_MSG = '<img src=x onerror="window.__xss=7"> we opt in';

let s;
let browser;
let rita; // reviewer
let rob; // another reviewer
let tenantTok;
const ids = {};
const pageProblems = [];

before(async () => {
	browser = await lib.launchBrowser();
	s = await startStack({ env: { P25_RATE_LIMIT: '0', P25_MAX_OPEN_REQUESTS: '1000' } });
	assert.equal((await s.ctl(['keys', 'generate'])).code, 0);
	await s.createTenant(TENANT, { name: 'Acme Mail', addresses: ['81.2.69.0/24'], ageDays: 400 });
	// 81.2.69.5/.7/.9 listed with a code the policy does not know (127.0.0.20: dnsbl_other → a
	// reviewer); .7's TXT holds markup.  Every address has a forward-confirmed PTR.
	const dns = await startDns({
		stack: s,
		dnsbl: {
			'zen.test': {
				ip4: ['81.2.69.5 :127.0.0.20:Listed for testing', `81.2.69.7 :127.0.0.20:${XSS_TXT}`,
					'81.2.69.9 :127.0.0.20:Listed too', '81.2.69.11 :127.0.0.20:Listed three'],
			},
		},
		hosts: [5, 6, 7, 9, 11].map((n) => [`mail${n}.shop.example`, `81.2.69.${n}`]),
		txt: [['shop.example', 'v=spf1 ip4:81.2.69.0/24 -all'], ['_dmarc.shop.example', XSS_DMARC]],
	});
	s.env.P25_DNS_SERVERS = dns.servers;
	s.env.P25_DNSBL_ZONES = dns.zones.join(',');
	s.startWorker();

	tenantTok = s.token({ sub: 'alice@acme', roles: ['tenant'], tenant: TENANT });
	rita = s.token({ sub: 'rita', roles: ['reviewer'] });
	rob = s.token({ sub: 'rob', roles: ['reviewer'] });
	const file = async (addresses, description = 'Order receipts') => {
		const r = await s.api('POST', '/v1/requests', {
			token: tenantTok,
			body: { addresses, use_case: 'transactional', description, sender_domains: ['shop.example'], expected_daily_volume: 900, contact_email: 'ops@acme.example' },
		});
		assert.equal(r.status, 202, r.text);
		return r.json.id;
	};
	ids.a = await file(['81.2.69.5', '81.2.69.6']);
	ids.b = await file(['81.2.69.7'], XSS_DESC);
	ids.d = await file(['81.2.69.9']);
	ids.e = await file(['81.2.69.11']);
	for (const id of Object.values(ids)) await waitStatus(id, 'needs_review');
	// F: a request to deny, written as a worker would have left it (no DNS needed)
	[[ids.f]] = await s.sql(`INSERT INTO requests (tenant_id, status, use_case, description, vetting_round, updated_at)
		VALUES ($1, 'needs_review', 'marketing', 'newsletter', 1, now() - interval '10 minutes') RETURNING id`, [TENANT]);
	await s.sql(`INSERT INTO request_addresses (request_id, tenant_id, prefix, position) VALUES ($1, $2, '81.2.69.13/32', 1)`, [ids.f, TENANT]);
	await s.sql(`INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)
		VALUES ($1, $2, 1, 'dnsbl', '81.2.69.13/32 in zen.test', 'fail', '{"listed": [{"code": "dnsbl_sbl"}]}', 'get delisted')`, [ids.f, TENANT]);
	// B: a PTR that c-ares would refuse, written as a worker would have kept it, and a hint with markup
	await s.sql(`INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)
		SELECT id, tenant_id, vetting_round, 'rdns', '81.2.69.7/32 (second PTR)', 'warn', $2::jsonb, $3 FROM requests WHERE id = $1`,
	[ids.b, { hosts: [{ address: '81.2.69.7', ptr: [XSS_PTR], forward_confirmed: false }] }, XSS_HINT]);
	// B: a question and the tenant's answer with markup
	const q = await s.api('POST', `/v1/review/requests/${ids.b}/decision`, { token: rob, body: { decision: 'needs_info', note: 'Who opts in? <b>details</b>' } });
	assert.equal(q.status, 200, q.text);
	const a = await s.api('POST', `/v1/requests/${ids.b}/messages`, { token: tenantTok, body: { body: XSS_MSG } });
	assert.equal(a.status, 200, a.text);
	// A waited longest
	await s.sql(`UPDATE requests SET updated_at = now() - interval '3 hours' WHERE id = $1`, [ids.a]);
	await s.sql(`UPDATE requests SET updated_at = now() - interval '2 hours' WHERE id = $1`, [ids.d]);
});

after(async () => {
	await browser?.close();
	await s?.stop();
});

// ------------------------------------------------------------ helpers

async function waitStatus(id, want, timeoutMs = 30000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const r = await s.api('GET', `/v1/requests/${id}`, { token: tenantTok });
		if (r.json?.status === want) return r.json;
		if (Date.now() > deadline) assert.fail(`request ${id} never became ${want}: ${r.text}`);
		await sleep(100);
	}
}

const newPage = (opts = {}) => lib.newPage(browser, pageProblems, { width: 1280, height: 900 }, opts);
const signIn = (page, tok = rita, hash = '') => lib.signInAt(page, `${s.url}/console${hash}`, tok, 'Console');
const { axe, noHorizontalScroll } = lib;

const rows = (sql, p) => s.sqlJson(sql, p);
const detail = (page) => page.locator('#view-detail');
const queueItem = (page, id) => page.locator(`#queue-list li[data-id="${id}"]`);

// ------------------------------------------------------------ the tests

test('signing in: refused tokens, a reviewer token, the session in this tab', async () => {
	const page = await newPage();
	const res = await page.goto(`${s.url}/console`);
	assert.equal(res.status(), 200);
	assert.match(res.headers()['content-security-policy'] ?? '', /script-src 'self'/);
	await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
	assert.equal(await page.getByRole('navigation', { name: 'Console' }).isVisible(), false);
	await axe(page, 'the signed-out console');

	const field = page.getByLabel('Bearer token');
	await field.fill('not a token');
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#token-error', { hasText: 'does not look like a token' }).waitFor();
	assert.equal(await field.getAttribute('aria-invalid'), 'true');
	await field.fill(s.token({ sub: 'rita', roles: ['reviewer'], secret: Buffer.from('wrong key') }));
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#token-error', { hasText: 'refused' }).waitFor();
	await field.fill(tenantTok);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#token-error', { hasText: 'neither the reviewer nor the admin role' }).waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('p25.console.token')), null);

	await field.fill(rita);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#who-text', { hasText: 'Signed in as rita' }).waitFor();
	await page.getByRole('heading', { level: 2, name: 'Review queue' }).waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('p25.console.token')), rita);
	await page.reload();
	await page.locator('#who-text', { hasText: 'Signed in as rita' }).waitFor();
	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('p25.console.token')), null);

	// a deep link survives the sign-in
	await page.goto(`${s.url}/console#/requests/${ids.d}`);
	await field.fill(rita);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await detail(page).getByRole('heading', { level: 2, name: /81\.2\.69\.9\/32/ }).waitFor();
	// an expired token kept in the tab is dropped with a word why
	await page.evaluate((t) => sessionStorage.setItem('p25.console.token', t), s.token({ sub: 'rita', roles: ['reviewer'], exp: Math.floor(Date.now() / 1000) - 120 }));
	await page.reload();
	await page.locator('#token-error', { hasText: 'session has ended' }).waitFor();
	await page.context().close();
});

test('the queue: oldest first, waiting times, filters, paging', async () => {
	const page = await newPage();
	await signIn(page);
	const list = page.locator('#queue-list > li');
	await queueItem(page, ids.e).waitFor();
	const order = await list.evaluateAll((els) => els.map((e) => e.dataset.id));
	assert.deepEqual(order.filter((x) => Object.values(ids).includes(x)), [ids.a, ids.d, ids.f, ids.e, ids.b], 'oldest first');
	const a = queueItem(page, ids.a);
	await a.getByText(/^Waiting [23] h \d+ min$/).waitFor();
	await a.getByRole('link', { name: '81.2.69.5/32, 81.2.69.6/32 — acme' }).waitFor();
	await a.getByText(/1 unknown \(error\)|1 fail|pass/).first().waitFor();
	await a.getByText('nobody').waitFor();
	await page.locator('#queue-summary', { hasText: '5 requests shown, oldest first.' }).waitFor();
	await axe(page, 'the queue');

	// min age: only A and D waited 90 minutes
	await page.getByLabel('Waiting at least (minutes)').fill('90');
	await page.getByRole('button', { name: 'Show', exact: true }).click();
	await page.waitForURL(/min_age=90/);
	await page.locator('#queue-summary', { hasText: '2 requests shown' }).waitFor();
	assert.deepEqual(await list.evaluateAll((els) => els.map((e) => e.dataset.id)), [ids.a, ids.d]);
	// a bad value is refused next to the field
	await page.getByLabel('Waiting at least (minutes)').fill('ninety');
	await page.getByRole('button', { name: 'Show', exact: true }).click();
	await page.locator('#q-age-error', { hasText: 'whole number' }).waitFor();
	assert.equal(await page.getByLabel('Waiting at least (minutes)').getAttribute('aria-invalid'), 'true');
	// tenant and outcome filters; the filters live in the URL
	await page.goto(`${s.url}/console#/queue?tenant=nobody-here`);
	await page.locator('#queue-summary', { hasText: 'No request in the queue matches' }).waitFor();
	assert.equal(await page.getByLabel('Tenant').inputValue(), 'nobody-here');
	await page.getByRole('button', { name: 'Clear filters' }).click();
	await page.locator('#queue-summary', { hasText: '5 requests shown' }).waitFor();
	await page.getByLabel('With a check that is').selectOption('pass');
	await page.getByLabel('State').selectOption('needs_review');
	await page.getByRole('button', { name: 'Show', exact: true }).click();
	await page.waitForURL(/state=needs_review/);
	await queueItem(page, ids.a).waitFor();

	// paging: 25 more requests of another tenant, 20 a page
	await s.createTenant('bulk', { addresses: ['81.2.90.0/24'] });
	await s.sql(`WITH r AS (INSERT INTO requests (tenant_id, status, use_case, vetting_round, updated_at)
		SELECT 'bulk', 'needs_review', 'other', 1, now() - make_interval(mins => i) FROM generate_series(1, 25) i RETURNING id)
		INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
		SELECT id, 'bulk', ('81.2.90.' || row_number() OVER () || '/32')::cidr, 1 FROM r`);
	await page.goto(`${s.url}/console#/queue?tenant=bulk`);
	await list.nth(19).waitFor();
	assert.equal(await list.count(), 20);
	await page.getByRole('button', { name: 'More requests' }).click();
	await list.nth(24).waitFor();
	assert.equal(await page.getByRole('button', { name: 'More requests' }).isVisible(), false);
	const got = await list.evaluateAll((els) => els.map((e) => e.dataset.id));
	assert.equal(new Set(got).size, 25);
	assert.equal(await page.evaluate(() => document.activeElement.closest('li')?.dataset.id), got[20], 'focus moves to the first new item');
	await page.context().close();
});

test('a reviewer works a needs_review request to approval and sees the exemption active', async () => {
	const page = await newPage();
	await signIn(page);
	await queueItem(page, ids.a).getByRole('link').click();
	const d = detail(page);
	await d.getByRole('heading', { level: 2, name: 'Request for 81.2.69.5/32, 81.2.69.6/32 (acme)' }).waitFor();
	await d.locator('.status-line .badge', { hasText: 'Needs review' }).waitFor();

	// the evidence on one screen: checks, DNSBL answer and TXT, account, history
	const checks = d.locator('#sec-checks');
	await checks.getByRole('heading', { name: /Round 1 \(current\)/ }).waitFor();
	await checks.locator('li.check', { hasText: '81.2.69.5/32 in zen.test' }).getByText('Listed for testing').waitFor();
	await checks.locator('li.check', { hasText: 'dnsbl_other' }).first().waitFor();
	await checks.locator('li.check', { hasText: 'rdns' }).first().getByText('mail5.shop.example').first().waitFor();
	await d.locator('#sec-account').getByText('Acme Mail').waitFor();
	await d.locator('#sec-account').getByText('400 days').waitFor();
	await d.locator('#sec-history').getByRole('heading', { name: /Earlier requests \(4\)/ }).waitFor();
	await d.locator('#sec-request').getByText('ops@acme.example').waitFor();
	await d.locator('#sec-decisions').getByText('by policy').waitFor();
	await axe(page, 'the detail view');

	// claim
	await d.getByRole('button', { name: 'Claim this request' }).click();
	await d.locator('#claim-text', { hasText: 'You have claimed this request until' }).waitFor();
	await page.locator('#announce', { hasText: 'Claimed until' }).waitFor();
	assert.equal((await rows('SELECT claimed_by FROM requests WHERE id = $1', [ids.a]))[0].claimed_by, 'rita');

	// approve, narrowed to .6 (.5 is listed), 30 days, a relay as the only destination
	await d.getByLabel('Approve: open port 25').check();
	await d.getByLabel('81.2.69.5/32').uncheck();
	await d.getByLabel('Expires after (days, optional)').fill('30');
	await d.getByLabel('Destinations only (optional)').fill('81.2.70.25');
	await d.getByLabel('Rate limit (optional)').fill('lots');
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await d.locator('#d-rate-error', { hasText: 'whole number' }).waitFor();
	await d.locator('#decide-error', { hasText: 'was not sent' }).waitFor();
	assert.equal(await page.evaluate(() => document.activeElement.id), 'd-rate');
	await d.getByLabel('Rate limit (optional)').fill('');
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await page.locator('#announce', { hasText: 'Decision recorded. Approved: 1 exemption issued.' }).waitFor();
	await d.locator('.status-line .badge', { hasText: 'Approved' }).waitFor();
	const ex = d.locator('li.exemption');
	await ex.getByRole('heading', { name: 'Exemption for 81.2.69.6/32' }).waitFor();
	await ex.locator('.badge', { hasText: 'Active' }).waitFor();
	await d.locator('#sec-decisions').getByText('by rita', { exact: false }).waitFor();
	await d.locator('#sec-decide').getByText('not waiting for a reviewer').waitFor();

	// the database and the tenant agree
	const [e] = await rows('SELECT id, status, prefix::text AS prefix, dest::text[] AS dest FROM exemptions WHERE request_id = $1', [ids.a]);
	assert.deepEqual({ status: e.status, prefix: e.prefix, dest: e.dest }, { status: 'active', prefix: '81.2.69.6/32', dest: ['81.2.70.25/32'] });
	const te = await s.api('GET', `/v1/exemptions/${e.id}`, { token: tenantTok });
	assert.equal(te.json.status, 'active');
	assert.ok(te.json.token);
	assert.equal(await ex.getAttribute('data-id'), e.id);

	// revoke and reinstate, with reasons
	await ex.getByRole('button', { name: 'Revoke 81.2.69.6/32' }).click();
	await ex.locator('.field-error', { hasText: 'Give a reason' }).waitFor();
	await ex.getByLabel('Reason for revoking 81.2.69.6/32').fill('complaints from <b>3</b> ISPs');
	await ex.getByRole('button', { name: 'Revoke 81.2.69.6/32' }).click();
	await page.locator('#announce', { hasText: 'Exemption for 81.2.69.6/32 revoked.' }).waitFor();
	await ex.locator('.badge', { hasText: 'Revoked' }).waitFor();
	await ex.getByText('complaints from <b>3</b> ISPs').first().waitFor();
	assert.equal((await rows('SELECT status FROM exemptions WHERE id = $1', [e.id]))[0].status, 'revoked');
	await ex.getByLabel('Reason for reinstating 81.2.69.6/32').fill('complaints were forged');
	await ex.getByRole('button', { name: 'Reinstate 81.2.69.6/32' }).click();
	await page.locator('#announce', { hasText: 'reinstated: it is Active' }).waitFor();
	await ex.locator('.badge', { hasText: 'Active' }).waitFor();
	assert.equal((await rows('SELECT status FROM exemptions WHERE id = $1', [e.id]))[0].status, 'active');
	// the exemption's audit trail, in the page
	await ex.getByText(/Audit trail \(3\)/).click();
	await ex.locator('.audit-action', { hasText: 'exemption.reinstate' }).waitFor();
	// the request's audit trail
	const trail = d.locator('#sec-audit');
	for (const a of ['request.submit', 'request.vetting', 'request.decide', 'request.claim', 'request.review']) {
		await trail.locator('.audit-action', { hasText: a }).first().waitFor();
	}
	await page.context().close();
});

test('DNS and tenant text holding markup stays inert text', async () => {
	const page = await newPage();
	await signIn(page, rita, `#/requests/${ids.b}`);
	const d = detail(page);
	await d.locator('#sec-checks li.check').first().waitFor();
	// every hostile string is on the page, character for character
	for (const text of [XSS_TXT, XSS_PTR, XSS_HINT, XSS_DESC, XSS_MSG, 'Who opts in? <b>details</b>']) {
		await d.getByText(text, { exact: false }).first().waitFor();
	}
	await d.getByText(XSS_DMARC.slice(0, 40), { exact: false }).first().waitFor();
	await sleep(300); // an onerror would have fired by now
	assert.equal(await page.evaluate(() => window.__xss), undefined);
	assert.equal(await page.locator('#view-detail img, #view-detail svg, #view-detail script, #view-detail b, #view-detail i').count(), 0);
	await axe(page, 'a request with hostile evidence');
	// the queue shows the tenant's text inert too
	await page.goto(`${s.url}/console#/queue?tenant=acme`);
	await queueItem(page, ids.b).waitFor();
	assert.equal(await page.evaluate(() => window.__xss), undefined);
	// a phone: long evidence wraps
	await page.setViewportSize({ width: 390, height: 844 });
	await page.goto(`${s.url}/console#/requests/${ids.b}`);
	await d.locator('#sec-checks li.check').first().waitFor();
	await noHorizontalScroll(page, 'hostile evidence on a phone');
	await page.context().close();
});

test('ask the tenant, then deny with reason codes', async () => {
	const page = await newPage();
	await signIn(page, rita, `#/requests/${ids.b}`);
	const d = detail(page);
	await d.getByLabel('Ask the tenant a question').check();
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await d.locator('#d-question-error', { hasText: 'Write the question' }).waitFor();
	await d.getByLabel('Question for the tenant').fill('Which list do you send to?');
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await page.locator('#announce', { hasText: 'The question was sent to the tenant.' }).waitFor();
	await d.locator('.status-line .badge', { hasText: 'Waiting for the tenant' }).waitFor();
	await d.locator('#sec-messages').getByText('Which list do you send to?').waitFor();
	const t = await s.api('GET', `/v1/requests/${ids.b}`, { token: tenantTok });
	assert.equal(t.json.status, 'needs_info');
	assert.equal(t.json.messages.at(-1).body, 'Which list do you send to?');

	// the tenant has the turn: the console offers no decision while B waits for the answer
	// (and the API refuses one: review.test.mjs)
	await d.locator('#sec-decide').getByText('The tenant has the turn').waitFor();
	assert.equal(await d.getByRole('button', { name: 'Record the decision' }).count(), 0);

	// deny another one with reason codes
	await page.goto(`${s.url}/console#/requests/${ids.f}`);
	await d.getByRole('heading', { level: 2, name: /81\.2\.69\.13\/32/ }).waitFor();
	await d.getByLabel('Deny').check();
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await d.locator('#d-reasons-error', { hasText: 'at least one reason' }).waitFor();
	await d.getByLabel('Listed on a blocklist').check();
	await d.getByLabel('Other (explain in the note)').check();
	await d.getByLabel('Note for the tenant').fill('Get delisted from zen.test first.');
	await d.getByLabel('New request possible after (days, optional)').fill('14');
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await page.locator('#announce', { hasText: 'Denied' }).waitFor();
	await d.locator('.status-line .badge', { hasText: 'Denied' }).waitFor();
	await d.locator('#sec-decisions').getByText('listed, other').waitFor();
	const [dec] = await rows(`SELECT reason_codes, message, reapply_after > now() + interval '13 days' AS later
		FROM decisions WHERE request_id = $1 ORDER BY id DESC LIMIT 1`, [ids.f]);
	assert.deepEqual(dec, { reason_codes: ['listed', 'other'], message: 'Get delisted from zen.test first.', later: true });
	await page.context().close();
});

test('a colleague\'s claim (409) and a stale view (412) are explained, not lost', async () => {
	const page = await newPage();
	await signIn(page, rita, `#/requests/${ids.d}`);
	const d = detail(page);
	await d.getByRole('button', { name: 'Claim this request' }).waitFor();
	// rob claims it behind rita's back
	assert.equal((await s.api('POST', `/v1/review/requests/${ids.d}/claim`, { token: rob })).status, 200);
	await d.getByLabel('Approve: open port 25').check();
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await d.locator('#decide-error', { hasText: 'Someone else holds this request' }).waitFor();
	await d.locator('#decide-error', { hasText: 'rob' }).waitFor();
	// claiming now tells who holds it
	await d.getByRole('button', { name: 'Claim this request' }).click();
	await d.locator('#claim-error', { hasText: 'Someone else is working on it' }).waitFor();

	// rob's claim ends; rob asks the tenant and the tenant answers: rita's view is stale
	await s.sql(`UPDATE requests SET claimed_until = now() - interval '1 second' WHERE id = $1`, [ids.d]);
	assert.equal((await s.api('POST', `/v1/review/requests/${ids.d}/decision`, { token: rob, body: { decision: 'needs_info', note: 'Volume?' } })).status, 200);
	assert.equal((await s.api('POST', `/v1/requests/${ids.d}/messages`, { token: tenantTok, body: { body: '900 a day' } })).status, 200);
	await d.getByLabel('Approve: open port 25').check();
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await d.locator('#decide-error', { hasText: 'changed since you opened it' }).waitFor();
	assert.equal((await rows('SELECT status FROM requests WHERE id = $1', [ids.d]))[0].status, 'needs_review');
	// reloaded: the answer is there, and deciding again works
	await d.locator('#sec-messages').getByText('900 a day').waitFor();
	await d.getByLabel('Approve: open port 25').check();
	await d.getByRole('button', { name: 'Record the decision' }).click();
	await d.locator('.status-line .badge', { hasText: 'Approved' }).waitFor();
	await d.locator('li.exemption .badge', { hasText: 'Active' }).waitFor();
	await page.context().close();
});

test('the audit view: by object, actor and time', async () => {
	const page = await newPage();
	await signIn(page, rita, `#/audit?object=${ids.a}`);
	const list = page.locator('#audit-list > li');
	await list.first().waitFor();
	const actions = await page.locator('#audit-list .audit-action').allTextContents();
	assert.equal(actions[0], 'request.submit');
	assert.ok(actions.includes('request.review'), actions.join(','));
	assert.equal(await page.getByLabel('Object id').inputValue(), ids.a);
	await axe(page, 'the audit view');
	await page.getByLabel('Actor').fill('rita');
	await page.getByRole('button', { name: 'Show entries' }).click();
	await page.waitForURL(/actor=rita/);
	await page.locator('#audit-summary', { hasText: /^2 entries shown/ }).waitFor();
	assert.deepEqual(await page.locator('#audit-list .audit-action').allTextContents(), ['request.claim', 'request.review']);
	await page.getByLabel('Since').fill('yesterday-ish');
	await page.getByRole('button', { name: 'Show entries' }).click();
	await page.locator('#a-since-error', { hasText: 'Not a date' }).waitFor();
	await page.getByLabel('Since').fill('2999-01-01T00:00:00Z');
	await page.getByRole('button', { name: 'Show entries' }).click();
	await page.locator('#audit-summary', { hasText: 'No entries match.' }).waitFor();
	// from a request to its trail
	await page.goto(`${s.url}/console#/requests/${ids.a}`);
	await page.getByRole('link', { name: 'Open in the audit view' }).click();
	await page.waitForURL(new RegExp(`#/audit\\?object=${ids.a}`));
	await list.first().waitFor();
	await page.context().close();
});

test('an admin reads but is not offered decisions', async () => {
	const page = await newPage();
	await signIn(page, s.token({ sub: 'ada', roles: ['admin'] }), `#/requests/${ids.e}`);
	await page.locator('#who-text', { hasText: 'read only' }).waitFor();
	const d = detail(page);
	await d.getByText('no reviewer role').waitFor();
	assert.equal(await d.getByRole('button', { name: 'Record the decision' }).count(), 0);
	assert.equal(await d.getByRole('button', { name: /Claim/ }).count(), 0);
	await page.context().close();
});

test('keyboard only: skip link, sign in, open a request, claim', async () => {
	const page = await newPage();
	await page.goto(`${s.url}/console#/queue?tenant=acme`);
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
	assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none');
	await page.keyboard.press('Enter');
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
	await page.keyboard.insertText(rita);
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'signin-submit');
	await page.keyboard.press('Enter');
	await queueItem(page, ids.e).waitFor();
	// tab to E's link and follow it
	for (let i = 0; i < 40; i++) {
		await page.keyboard.press('Tab');
		if (await page.evaluate((id) => document.activeElement.closest('li')?.dataset.id === id, ids.e)) break;
	}
	assert.equal(await page.evaluate(() => document.activeElement.tagName), 'A');
	await page.keyboard.press('Enter');
	await detail(page).getByRole('heading', { level: 2, name: /81\.2\.69\.11/ }).waitFor();
	assert.equal(await page.evaluate(() => document.activeElement.id), 'detail-h', 'focus moves to the view');
	for (let i = 0; i < 80; i++) {
		await page.keyboard.press('Tab');
		if (await page.evaluate(() => document.activeElement.id === 'claim-btn')) break;
	}
	assert.equal(await page.evaluate(() => document.activeElement.id), 'claim-btn');
	assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none');
	await page.keyboard.press('Enter');
	await page.locator('#claim-text', { hasText: 'You have claimed' }).waitFor();
	// the decision radios are one tab stop; arrows choose
	await page.locator('#d-approve').focus();
	await page.keyboard.press('ArrowDown');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'd-deny');
	assert.equal(await page.locator('#d-deny-fields').isVisible(), true);
	await page.context().close();
});

test('a phone (390x844) never scrolls sideways', async () => {
	const page = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
	await page.goto(`${s.url}/console`);
	await page.getByRole('heading', { name: 'Sign in' }).waitFor();
	await noHorizontalScroll(page, 'sign in');
	await signIn(page);
	await page.locator('#queue-list > li').first().waitFor();
	await noHorizontalScroll(page, 'the queue');
	await axe(page, 'the queue on a phone');
	await page.goto(`${s.url}/console#/requests/${ids.a}`);
	await detail(page).locator('li.exemption').waitFor();
	await noHorizontalScroll(page, 'a request');
	await page.goto(`${s.url}/console#/audit?object=${ids.a}`);
	await page.locator('#audit-list > li').first().waitFor();
	await noHorizontalScroll(page, 'the audit view');
	await page.context().close();
});

test('no script errors or CSP violations on any page', () => {
	// the refusals provoked on purpose show up as failed loads, nothing else may
	assert.deepEqual(pageProblems.filter((p) => !/Failed to load resource: the server responded with a status of (400|401|403|404|409|412|422)/.test(p)), []);
});
