// tenant.test.mjs — the tenant page (GET /, api/static/index.html + app.js)
// driven end to end in Debian's headless Chromium through playwright-core,
// against the real p25-api and a throwaway PostgreSQL (tests/lib/harness.mjs).
//
// What a tenant does in the page: sign in with a bearer token, file a
// request through the form (client-side checks as you type, the server's
// refusals shown next to the right field), find it in the list, open it,
// read checks / hints / decision, answer a reviewer, withdraw it, and ask
// whether port 25 is open for an address.  Besides: text from the server
// (DNS evidence, hints, messages) stays inert; no Content-Security-Policy
// violation or script error happens anywhere; an axe-core scan finds no
// serious or critical accessibility violation on any view; a phone-sized
// viewport never scrolls sideways.
//
// No worker runs: requests filed through the form stay `pending`, and the
// vetted states (checks, decisions, needs_info, an active exemption) are
// written straight into the database by the test, as a worker or reviewer
// would leave them.
//
// Run: P25_BUILD_DIR=$PWD/build/debug node --test tests/browser/tenant.test.mjs
// (needs /usr/bin/chromium and the npm packages: bash scripts/deps.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import * as lib from './lib.mjs';

const TENANT = 'acme';
const HELD = ['81.2.69.0/26', '2a02:ff0:1::/48'];

let s;
let browser;
let token;
let otherToken;
const pageProblems = []; // console errors, page errors, CSP violations, from every page

before(async () => {
	browser = await lib.launchBrowser();
	s = await startStack();
	await s.createTenant(TENANT, { name: 'Acme Mail', addresses: HELD });
	await s.createTenant('globex', { addresses: ['81.2.70.0/28'] });
	token = s.token({ sub: 'alice@acme.example', roles: ['tenant'], tenant: TENANT });
	otherToken = s.token({ sub: 'bob@globex.example', roles: ['tenant'], tenant: 'globex' });
});

after(async () => {
	await browser?.close();
	await s?.stop();
});

// ------------------------------------------------------------ helpers

const newPage = (opts = {}) => lib.newPage(browser, pageProblems, { width: 1200, height: 900 }, opts);
const signIn = (page, tok = token) => lib.signInAt(page, `${s.url}/`, tok, 'Main');
const { axe, noHorizontalScroll } = lib;

const rows = (sql, p) => s.sqlJson(sql, p);

/** A request as a worker / reviewer would leave it (no API for that here). */
async function insertRequest({ status, addresses, checks = [], decision = null, messages = [], tenant = TENANT,
	created = 'now()' }) {
	const [[id]] = await s.sql(`INSERT INTO requests (tenant_id, status, use_case, description, sender_domains,
		contact_email, vetting_round, created_at, updated_at)
		VALUES ($1, $2, 'transactional', 'receipts for our shop', '{shop.example}', 'ops@acme.example', 1,
		${created}, now()) RETURNING id`, [tenant, status]);
	await s.sql(`INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
		SELECT $1, $2, a, o FROM unnest($3::cidr[]) WITH ORDINALITY x(a, o)`, [id, tenant, addresses]);
	for (const c of checks) {
		await s.sql(`INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)
			VALUES ($1, $2, 1, $3, $4, $5, $6::jsonb, $7)`, [id, tenant, c.name, c.subject, c.outcome, c.evidence, c.hint]);
	}
	if (decision) {
		await s.sql(`INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes, message,
			policy_version, reapply_after, created_at) VALUES ($1, $2, 1, $3, 'policy', $4::text[], $5, '2024-06-01',
			now() + interval '7 days', now() - interval '1 hour')`, [id, tenant, decision.decision, decision.reason_codes, decision.message]);
	}
	for (const m of messages) {
		await s.sql(`INSERT INTO messages (request_id, tenant_id, author, role, body) VALUES ($1, $2, $3, $4, $5)`,
			[id, tenant, m.author, m.role, m.body]);
	}
	return id;
}

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

// ------------------------------------------------------------ the tests

test('signed out: the sign-in form, refused tokens, and a clean accessibility scan', async () => {
	const page = await newPage();
	const res = await page.goto(`${s.url}/`);
	assert.equal(res.status(), 200);
	assert.match(res.headers()['content-security-policy'] ?? '', /script-src 'self'/);
	await page.getByRole('heading', { level: 1 }).waitFor();
	await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
	assert.equal(await page.getByRole('navigation', { name: 'Main' }).isVisible(), false);
	assert.equal(await page.locator('main').count(), 1);
	assert.equal(await page.locator('header').count(), 1);
	await axe(page, 'the signed-out page');

	// not a JWT at all: refused before anything is sent, next to the field
	const field = page.getByLabel('Bearer token');
	await field.fill('hello');
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#token-error', { hasText: 'does not look like a token' }).waitFor();
	assert.equal(await field.getAttribute('aria-invalid'), 'true');
	assert.match(await field.getAttribute('aria-describedby'), /token-error/);

	// a well-formed token signed with another key: the server refuses it
	await field.fill(s.token({ tenant: TENANT, secret: Buffer.from('not the key') }));
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#token-error', { hasText: 'refused' }).waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('p25.token')), null);

	// a valid token without the tenant role
	await field.fill(s.token({ sub: 'rev', roles: ['reviewer'] }));
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#token-error', { hasText: 'not a tenant token' }).waitFor();

	// the real thing
	await field.fill(token);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.locator('#who-text', { hasText: 'Signed in as alice@acme.example' }).waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('p25.token')), token);
	await page.getByRole('heading', { level: 2, name: 'My requests' }).waitFor();
	await page.getByText('No requests yet').waitFor();

	// a reload keeps the session (sessionStorage); signing out forgets it
	await page.reload();
	await page.locator('#who-text', { hasText: 'Signed in as alice@acme.example' }).waitFor();
	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('p25.token')), null);
	await page.reload();
	await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();

	// an expired token kept in the tab is dropped with a word why
	await page.evaluate((t) => sessionStorage.setItem('p25.token', t), s.token({ tenant: TENANT, exp: Math.floor(Date.now() / 1000) - 60 }));
	await page.reload();
	await page.locator('#token-error', { hasText: 'session has ended' }).waitFor();
	await page.context().close();
});

test('the form checks as you type: a private address is refused next to the addresses field', async () => {
	const page = await newPage();
	await signIn(page);
	await page.getByRole('link', { name: 'New request', exact: true }).click();
	await page.getByRole('heading', { level: 2, name: 'New request' }).waitFor();

	const addr = page.getByLabel(/^Addresses/);
	await addr.pressSequentially('10.1.2.3');
	const err = page.locator('#f-addresses-error');
	await err.filter({ hasText: '“10.1.2.3” (entry 1) is not a public address (10.0.0.0/8' }).waitFor();
	assert.equal(await addr.getAttribute('aria-invalid'), 'true');
	assert.match(await addr.getAttribute('aria-describedby'), /\bf-addresses-error\b/);
	assert.equal(await err.getAttribute('aria-live'), 'polite');

	// half-typed entries are not shouted at; finished malformed ones are
	await addr.fill('');
	await addr.pressSequentially('81.2.6');
	assert.equal((await err.textContent()).trim(), '');
	await addr.pressSequentially('9.5, 300.1.1.1, 192.168.7.7\n2a02:ff0:1::/64, 81.2');
	await err.filter({ hasText: '“300.1.1.1” (entry 2) is not an IPv4 or IPv6 address' }).waitFor();
	await err.filter({ hasText: '“192.168.7.7” (entry 3) is not a public address' }).waitFor();
	const typing = await err.textContent();
	assert.ok(!typing.includes('“81.2.69.5”') && !typing.includes('“2a02'), typing);
	assert.ok(!typing.includes('“81.2”'), 'the entry being typed is left alone');
	// leaving the field judges the last entry too
	await addr.blur();
	await err.filter({ hasText: '“81.2” (entry 5) is not an IPv4' }).waitFor();

	// other fields
	const mail = page.getByLabel('Contact e-mail');
	await mail.fill('ops@');
	await mail.blur();
	await page.locator('#f-contact_email-error', { hasText: 'Not an e-mail address' }).waitFor();
	await page.getByLabel('Sender domains').fill('shop.example, not a domain!, ');
	await page.locator('#f-sender_domains-error', { hasText: '“domain!”' }).waitFor();
	await page.getByLabel('Messages per day').fill('lots');
	await page.locator('#f-expected_daily_volume-error', { hasText: 'whole number' }).waitFor();

	// submitting with client-side errors sends nothing and sums them up
	await addr.fill('10.1.2.3');
	await page.getByRole('button', { name: 'File the request' }).click();
	const summary = page.getByRole('alert').filter({ hasText: 'The request was not filed' });
	await summary.waitFor();
	await summary.getByRole('button', { name: /Addresses: “10\.1\.2\.3”/ }).waitFor();
	await summary.getByRole('button', { name: /What the mail is: Choose/ }).waitFor();
	await page.locator('#f-use_case-error', { hasText: 'Choose what the mail is' }).waitFor();
	// the summary's entries take the keyboard to the field
	await summary.getByRole('button', { name: /Addresses:/ }).click();
	assert.equal(await page.evaluate(() => document.activeElement.id), 'f-addresses');
	await axe(page, 'the request form showing errors');
	assert.deepEqual(await rows('SELECT id FROM requests'), [], 'nothing was filed');
	await page.context().close();
});

test('the server\'s refusals land next to the field: address_not_held and an entry the client lets through', async () => {
	const page = await newPage();
	await signIn(page);
	await page.goto(`${s.url}/#/new`);
	const addr = page.getByLabel(/^Addresses/);
	const err = page.locator('#f-addresses-error');

	// 81.2.69.200 is a public address: only the server knows it is not acme's
	await addr.fill('81.2.69.5\n81.2.69.200');
	await page.getByLabel('What the mail is').selectOption('transactional');
	await page.getByRole('button', { name: 'File the request' }).click();
	await err.filter({ hasText: '81.2.69.200/32 is not in your address inventory' }).waitFor();
	assert.equal(await addr.getAttribute('aria-invalid'), 'true');
	const summary = page.getByRole('alert').filter({ hasText: 'The request was not filed' });
	await summary.getByRole('button', { name: /Addresses: .*81\.2\.69\.200/ }).waitFor();

	// a documentation address is refused by the server, which names the entry
	// by index (addresses[1]); the page names it by its text
	await addr.fill('81.2.69.5, 198.51.100.7');
	await page.getByLabel('Contact e-mail').fill('ops@acme.example');
	await page.getByRole('button', { name: 'File the request' }).click();
	await err.filter({ hasText: '“198.51.100.7” (entry 2):' }).waitFor();
	assert.match(await err.textContent(), /not a public address/);
	assert.doesNotMatch(await err.textContent(), /81\.2\.69\.200/, 'the old error is gone');

	// another tenant's address is not acme's either
	await addr.fill('81.2.70.1');
	await page.getByRole('button', { name: 'File the request' }).click();
	await err.filter({ hasText: '81.2.70.1/32 is not in your address inventory' }).waitFor();
	assert.deepEqual(await rows('SELECT id FROM requests'), [], 'a refused request leaves no row');
	await page.context().close();
});

let filedId;

test('submit through the form, see it listed with its state, open it', async () => {
	const page = await newPage();
	await signIn(page);
	await page.getByRole('link', { name: 'New request', exact: true }).click();
	await page.getByLabel(/^Addresses/).fill('81.2.69.5\n2a02:ff0:1::/64');
	await page.getByLabel('What the mail is').selectOption('transactional');
	await page.getByLabel('Description').fill('Order receipts <b>and</b> password resets');
	await page.getByLabel('Sender domains').fill('Shop.Example, mail.shop.example');
	await page.getByLabel('Messages per day').fill('5000');
	await page.getByLabel('Contact e-mail').fill('ops@acme.example');
	await page.getByRole('button', { name: 'File the request' }).click();

	await page.waitForURL(/#\/requests\/[0-9a-f-]{36}$/);
	filedId = decodeURIComponent(page.url().split('/').pop());
	const [row] = await rows('SELECT status, tenant_id, use_case, expected_daily_volume, contact_email, sender_domains'
		+ ' FROM requests WHERE id = $1', [filedId]);
	assert.deepEqual(row, { status: 'pending', tenant_id: TENANT, use_case: 'transactional',
		expected_daily_volume: 5000, contact_email: 'ops@acme.example',
		sender_domains: ['shop.example', 'mail.shop.example'] });
	// the form sends an Idempotency-Key, so a retried submit files once
	const keys = await rows('SELECT key FROM idempotency_keys WHERE tenant_id = $1', [TENANT]);
	assert.equal(keys.length, 1);
	assert.match(keys[0].key, /^web-[0-9a-f]{32}$/);

	// the detail view
	const detail = page.locator('#view-detail');
	await page.getByRole('heading', { level: 2, name: `Request ${filedId.slice(0, 8)}` }).waitFor();
	await detail.getByText('81.2.69.5/32').waitFor();
	await detail.getByText('2a02:ff0:1::/64').waitFor();
	await detail.locator('.badge', { hasText: 'Pending' }).first().waitFor();
	await detail.getByText('Order receipts <b>and</b> password resets').waitFor();
	await detail.getByText('shop.example, mail.shop.example').waitFor();
	await detail.getByText('No checks yet').waitFor();
	await detail.getByText('No decision yet').waitFor();
	await detail.getByRole('button', { name: 'Withdraw this request' }).waitFor();
	assert.equal(await detail.getByRole('button', { name: 'Check again' }).count(), 0, 'no recheck while pending');
	assert.equal(await detail.locator('b').count(), 0, 'the description stays text');

	// the list
	await page.getByRole('link', { name: 'My requests', exact: true }).click();
	const item = page.locator('#requests-list li', { hasText: '81.2.69.5/32, 2a02:ff0:1::/64' });
	await item.waitFor();
	await item.getByText('Pending').waitFor();
	await item.getByText('Transactional').waitFor();
	assert.equal(await page.getByRole('link', { name: 'My requests', exact: true }).getAttribute('aria-current'), 'page');
	await axe(page, 'the list of requests');

	// the status filter (in the hash, so it can be linked)
	await page.getByLabel('Show', { exact: true }).selectOption('denied');
	await page.waitForURL(/#\/requests\?status=denied$/);
	await page.getByText('No denied requests').waitFor();
	assert.equal(await page.locator('#requests-list li').count(), 0);
	await page.getByLabel('Show', { exact: true }).selectOption('pending');
	await item.waitFor();

	// open it from the list; the URL is the link to it
	await item.getByRole('link').click();
	await page.waitForURL(new RegExp(`#/requests/${filedId}$`));
	await page.getByRole('heading', { level: 2, name: `Request ${filedId.slice(0, 8)}` }).waitFor();

	// another tenant cannot open it through the page
	const other = await newPage();
	await signIn(other, otherToken);
	await other.goto(`${s.url}/#/requests/${filedId}`);
	await other.getByText('There is no such request among yours.').waitFor();
	await other.context().close();
	await page.context().close();
});

test('a vetted request: checks with outcome and hint, DNS evidence kept inert, the decision, recheck', async () => {
	const id = await insertRequest({
		status: 'denied',
		addresses: ['81.2.69.20/32'],
		checks: [
			{ name: 'ownership', subject: '81.2.69.20/32', outcome: 'pass', evidence: { held_in: '81.2.69.0/26' }, hint: '' },
			{ name: 'dnsbl', subject: '81.2.69.20/32', outcome: 'fail',
				evidence: { zone: 'zen.test', answer: '127.0.0.4', txt: HOSTILE },
				hint: 'delist 81.2.69.20 at zen.test, then ask for a recheck' },
			{ name: 'rdns', subject: '81.2.69.20/32', outcome: 'warn',
				evidence: { ptr: `${HOSTILE}.${'x'.repeat(300)}.example.net` }, hint: 'set a PTR that names your mail server' },
		],
		decision: { decision: 'deny', reason_codes: ['dnsbl_listed', 'rdns_generic'], message: `Listed. ${HOSTILE}` },
	});
	const page = await newPage();
	await signIn(page);
	await page.goto(`${s.url}/#/requests/${id}`);
	const detail = page.locator('#view-detail');
	await detail.locator('.badge', { hasText: 'Denied' }).first().waitFor();

	// checks: outcome, name, subject, hint
	const dnsbl = detail.locator('li.check', { hasText: 'dnsbl' });
	await dnsbl.getByText('Fail').waitFor();
	await dnsbl.getByText('delist 81.2.69.20 at zen.test, then ask for a recheck').waitFor();
	await detail.locator('li.check', { hasText: 'ownership' }).getByText('Pass').waitFor();
	await detail.locator('li.check', { hasText: 'rdns' }).getByText('Warning').waitFor();
	await dnsbl.getByText('What was seen').click();
	await dnsbl.locator('pre', { hasText: '127.0.0.4' }).waitFor();
	assert.match(await dnsbl.locator('pre').textContent(), /<img src=x onerror=/);

	// the decision
	const decision = detail.locator('section', { has: page.getByRole('heading', { name: 'Decision' }) });
	await decision.getByText('dnsbl_listed').waitFor();
	await decision.getByText('rdns_generic').waitFor();
	await decision.getByText('You may ask again after').waitFor();
	await decision.getByText('2024-06-01').waitFor();
	assert.match(await decision.textContent(), /Listed\. <img src=x/);

	// nothing from the server became markup or ran
	assert.equal(await detail.locator('img, script').count(), 0);
	assert.equal(await page.evaluate(() => window.__pwned), undefined);

	// a denied request is closed: no withdraw, but a recheck is offered
	assert.equal(await detail.getByRole('button', { name: 'Withdraw this request' }).count(), 0);
	await axe(page, 'the detail view of a denied request');

	// a long PTR in the evidence does not widen the page on a phone
	await page.setViewportSize({ width: 390, height: 844 });
	await detail.locator('li.check', { hasText: 'rdns' }).getByText('What was seen').click();
	await noHorizontalScroll(page, 'a denied request with long evidence on a phone');

	// the denial named fixable reasons (dnsbl_, rdns_) an hour ago: the recheck
	// puts it back to pending — or, on a server without the route yet, the
	// page says so instead of failing
	await detail.getByRole('button', { name: 'Check again' }).click();
	await detail.locator('.badge', { hasText: 'Pending' }).first()
		.or(detail.getByText('Rechecks are not available yet')).waitFor();
	if (await detail.getByText('Rechecks are not available yet').count() === 0) {
		assert.equal((await rows('SELECT status FROM requests WHERE id = $1', [id]))[0].status, 'pending');
		assert.equal(await detail.getByRole('button', { name: 'Check again' }).count(), 0);
		await detail.getByText('No checks yet').waitFor(); // a new round has none yet
	}
	await page.context().close();
});

test('needs_info: the answer box sends a message and the request goes back to pending', async () => {
	const id = await insertRequest({
		status: 'needs_info',
		addresses: ['81.2.69.30/32'],
		decision: { decision: 'needs_info', reason_codes: ['volume_unclear'], message: 'How do recipients opt in?' },
		messages: [{ author: 'rev@provider', role: 'reviewer', body: 'How do recipients opt in?' }],
	});
	const page = await newPage();
	await signIn(page);
	await page.goto(`${s.url}/#/requests/${id}`);
	const detail = page.locator('#view-detail');
	await detail.locator('.badge', { hasText: 'Needs information from you' }).first().waitFor();
	await detail.locator('.messages', { hasText: 'Reviewer' }).getByText('How do recipients opt in?').waitFor();
	await axe(page, 'the detail view of a request needing information');

	const box = page.getByLabel('Your answer to the reviewers');
	await page.getByRole('button', { name: 'Send the answer' }).click();
	await page.locator('#answer-body-error', { hasText: 'Write an answer first' }).waitFor();
	await box.fill('Double opt-in at checkout; see https://shop.example/privacy');
	await page.getByRole('button', { name: 'Send the answer' }).click();
	await detail.locator('.badge', { hasText: 'Pending' }).first().waitFor();
	await detail.locator('.messages', { hasText: 'You' }).getByText('Double opt-in at checkout').waitFor();
	assert.equal(await page.getByLabel('Your answer to the reviewers').count(), 0);
	const [row] = await rows('SELECT status FROM requests WHERE id = $1', [id]);
	assert.equal(row.status, 'pending');
	await page.context().close();
});

test('is port 25 open: the lookup shows the state of a held address', async () => {
	const approved = await insertRequest({ status: 'approved', addresses: ['81.2.69.9/32'] });
	await s.sql(`INSERT INTO exemptions (tenant_id, request_id, prefix, status, expires_at)
		VALUES ($1, $2, '81.2.69.9/32', 'active', now() + interval '90 days')`, [TENANT, approved]);
	const page = await newPage();
	await signIn(page);
	await page.getByRole('link', { name: 'Is port 25 open?' }).click();
	await page.getByRole('heading', { level: 2, name: 'Is port 25 open for my address?' }).waitFor();
	const ip = page.getByLabel('IP address');
	const answer = page.locator('#lookup-answer');

	// the address filed through the form: pending
	await ip.fill('81.2.69.5');
	await page.getByRole('button', { name: 'Check', exact: true }).click();
	await answer.getByRole('heading', { name: /closed: a request is being vetted/ }).waitFor();
	assert.equal(await answer.getAttribute('data-state'), 'pending');
	await answer.getByText('81.2.69.0/26').waitFor();
	await answer.getByRole('link', { name: /Request .*Pending/ }).waitFor();
	await axe(page, 'a lookup answer');

	// an exempted address
	await ip.fill('81.2.69.9');
	await page.getByRole('button', { name: 'Check', exact: true }).click();
	await answer.getByRole('heading', { name: 'Port 25 is open' }).waitFor();
	assert.equal(await answer.getAttribute('data-state'), 'open');

	// a held address nobody asked for (the lookup is linkable)
	await page.goto(`${s.url}/#/lookup?ip=2a02:ff0:1:ffff::99`);
	await answer.getByRole('heading', { name: /no request covers this address/ }).waitFor();
	await answer.getByRole('link', { name: 'File a request for this address' }).waitFor();

	// not held, and not an address
	await ip.fill('81.2.69.200');
	await page.getByRole('button', { name: 'Check', exact: true }).click();
	await answer.getByText('81.2.69.200 is not in your address inventory').waitFor();
	await ip.fill('81.2.69.0/24');
	await page.getByRole('button', { name: 'Check', exact: true }).click();
	await page.locator('#lookup-ip-error', { hasText: 'is a prefix' }).waitFor();
	assert.equal(await ip.getAttribute('aria-invalid'), 'true');
	await page.context().close();
});

test('withdraw from the detail view', async () => {
	assert.ok(filedId, 'the submit test filed a request');
	const page = await newPage();
	await signIn(page);
	await page.goto(`${s.url}/#/requests/${filedId}`);
	const detail = page.locator('#view-detail');
	const withdraw = detail.getByRole('button', { name: 'Withdraw this request' });
	await withdraw.click();
	// a second step, and "keep it" changes nothing
	await detail.getByRole('button', { name: 'Keep it' }).click();
	assert.equal(await withdraw.getAttribute('aria-expanded'), 'false');
	assert.equal((await rows('SELECT status FROM requests WHERE id = $1', [filedId]))[0].status, 'pending');
	await withdraw.click();
	await detail.getByRole('button', { name: 'Yes, withdraw it' }).click();
	await detail.locator('.badge', { hasText: 'Withdrawn' }).first().waitFor();
	assert.equal(await detail.getByRole('button', { name: 'Withdraw this request' }).count(), 0);
	await detail.getByText('the request is closed').waitFor();
	assert.equal((await rows('SELECT status FROM requests WHERE id = $1', [filedId]))[0].status, 'withdrawn');
	const audit = await rows(`SELECT action FROM audit_log WHERE object_id = $1 ORDER BY seq`, [filedId]);
	assert.deepEqual(audit.map((a) => a.action), ['request.submit', 'request.withdraw']);

	// the list and the lookup follow
	await page.goto(`${s.url}/#/requests?status=withdrawn`);
	await page.locator('#requests-list li', { hasText: '81.2.69.5/32' }).getByText('Withdrawn').waitFor();
	await page.goto(`${s.url}/#/lookup?ip=81.2.69.5`);
	await page.locator('#lookup-answer').getByRole('heading', { name: /no request covers/ }).waitFor();
	await page.context().close();
});

test('the list pages with "More requests" (next_cursor)', async () => {
	// 24 old withdrawn requests, in one statement
	await s.sql(`WITH r AS (
		INSERT INTO requests (tenant_id, status, use_case, created_at, updated_at)
		SELECT $1, 'withdrawn', 'other', now() - make_interval(hours => i), now() - make_interval(hours => i)
		FROM generate_series(1, 24) i RETURNING id, created_at)
		INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
		SELECT id, $1, ('81.2.69.' || (40 + extract(hour FROM now() - created_at)::int % 20) || '/32')::cidr, 1 FROM r`,
	[TENANT]);
	const total = (await rows('SELECT id FROM requests WHERE tenant_id = $1', [TENANT])).length;
	assert.ok(total > 20);
	const page = await newPage();
	await signIn(page);
	const items = page.locator('#requests-list li');
	await items.nth(19).waitFor();
	assert.equal(await items.count(), 20);
	const more = page.getByRole('button', { name: 'More requests' });
	await more.click();
	await items.nth(total - 1).waitFor();
	assert.equal(await more.isVisible(), false, 'no more after the last page');
	const ids = await items.evaluateAll((els) => els.map((e) => e.dataset.id));
	assert.equal(new Set(ids).size, total, 'every request once');
	// focus went to the first of the new items
	assert.equal(await page.evaluate(() => document.activeElement.closest('li')?.dataset.id), ids[20]);
	await page.context().close();
});

test('keyboard only: skip link, sign in, and a visible focus ring', async () => {
	const page = await newPage();
	await page.goto(`${s.url}/`);
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
	const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
	assert.notEqual(ring, 'none', 'the focused link shows a ring');
	await page.keyboard.press('Enter');
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
	await page.keyboard.insertText(token);
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'signin-submit');
	const ringBtn = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
	assert.notEqual(ringBtn, 'none');
	await page.keyboard.press('Enter');
	await page.locator('#who-text', { hasText: 'Signed in as alice@acme.example' }).waitFor();
	await page.context().close();
});

test('a phone (390x844) never scrolls sideways', async () => {
	const page = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
		deviceScaleFactor: 2 });
	await page.goto(`${s.url}/`);
	await page.getByRole('heading', { name: 'Sign in' }).waitFor();
	await noHorizontalScroll(page, 'sign in');
	await signIn(page);
	await page.locator('#requests-list li').first().waitFor();
	await noHorizontalScroll(page, 'the list');

	await page.goto(`${s.url}/#/new`);
	await page.getByLabel(/^Addresses/).fill('10.1.2.3, 2a02:ff0:1:2:3:4:5:6/128, 999.999.999.999');
	await page.getByRole('button', { name: 'File the request' }).click();
	await page.getByRole('alert').filter({ hasText: 'The request was not filed' }).waitFor();
	await noHorizontalScroll(page, 'the form with errors');

	await page.goto(`${s.url}/#/requests/${filedId}`);
	await page.locator('#view-detail .badge').first().waitFor();
	await noHorizontalScroll(page, 'a request');

	await page.goto(`${s.url}/#/lookup?ip=81.2.69.9`);
	await page.locator('#lookup-answer').waitFor();
	await noHorizontalScroll(page, 'a lookup');
	await page.context().close();
});

test('no script errors or CSP violations on any page', () => {
	// the refusals the tests provoke on purpose show up as failed loads, nothing else may
	assert.deepEqual(pageProblems.filter((p) => !/Failed to load resource: the server responded with a status of (400|401|404|405|409|422|429)/.test(p)), []);
});
