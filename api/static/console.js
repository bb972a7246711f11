/*
 * console.js — the review console of p25 (GET /console): abuse reviewers
 * work the queue of requests the automation could not decide, read a
 * request's full evidence on one screen, claim it, decide it (approve with
 * an optional narrower scope, deny with reason codes, or ask the tenant a
 * question), revoke and reinstate exemptions, and read the audit trail.
 *
 * Plain browser JavaScript, no framework and no build step.  The page is
 * served under a strict Content-Security-Policy (scripts and styles from
 * /static only), so nothing here uses inline handlers, inline styles or
 * innerHTML.  Everything the server says is untrusted text — DNS answers
 * (PTR names, DNSBL TXT records), tenants' descriptions and messages — and
 * reaches the page only through text nodes (h() of common.js): a PTR or TXT
 * holding markup is shown as the characters it is.
 *
 * Routing is by hash, so every view can be linked:
 *   #/queue[?state=&tenant=&min_age=&outcome=]   the queue (min_age in minutes)
 *   #/requests/ID                                 one request, all its evidence
 *   #/audit[?object=&actor=&since=]               audit entries
 * The bearer token lives in sessionStorage (this tab only) and is checked
 * with GET /v1/whoami when the page loads and at sign-in.  A token with the
 * admin role but not the reviewer role reads everything and decides
 * nothing (the API refuses it; the controls are not offered).
 */
(function () {
	'use strict';

	const tokens = P25.tokenStore('p25.console.token');
	const PAGE = 20;
	const OPEN = ['needs_review', 'needs_info'];
	const STATUS_TEXT = {
		pending: 'Pending',
		vetting: 'Being vetted',
		needs_review: 'Needs review',
		needs_info: 'Waiting for the tenant',
		approved: 'Approved',
		denied: 'Denied',
		withdrawn: 'Withdrawn',
	};
	const OUTCOME_TEXT = { pass: 'Pass', warn: 'Warning', fail: 'Fail', error: 'Unknown (error)' };
	const OUTCOME_ORDER = ['error', 'fail', 'warn', 'pass'];
	const DECISION_TEXT = {
		approve: 'Approved',
		deny: 'Denied',
		needs_review: 'Sent to review',
		needs_info: 'Asked the tenant for information',
	};
	const EXEMPTION_TEXT = { active: 'Active', suspended: 'Suspended', revoked: 'Revoked', expired: 'Expired' };
	// the reason catalogue (api/review.c review_codes)
	const REASONS = [
		['abuse_history', 'Abuse history'],
		['listed', 'Listed on a blocklist'],
		['rdns', 'Reverse DNS'],
		['insufficient_information', 'Insufficient information'],
		['unverifiable_use_case', 'Use case cannot be verified'],
		['account', 'Account (age, verification or standing)'],
		['policy_violation', 'Policy violation'],
		['spam_complaints', 'Spam complaints'],
		['compromised_host', 'Compromised host'],
		['other', 'Other (explain in the note)'],
	];
	// what each audit action leaves an exemption as
	const EXEMPTION_AFTER = {
		'exemption.grant': 'active',
		'exemption.reinstate': 'active',
		'exemption.revoke': 'revoked',
		'exemption.relinquish': 'revoked',
		'exemption.release': 'revoked',
		'exemption.suspend': 'suspended',
		'exemption.expire': 'expired',
	};
	const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

	const state = {
		token: null,
		who: null,
		canDecide: false,
		queue: { params: {}, cursor: null, seq: 0, shown: 0 },
		detail: { id: null, etag: null, data: null, seq: 0, exemptions: {} },
		audit: { params: {}, cursor: null, seq: 0, shown: 0 },
		routed: false,
	};

	// the element builder, fetch wrapper and sign-in pieces (common.js)
	const { $, h, append, clear, show, announce, shortId, ApiError, hasRole } = window.P25;

	// ------------------------------------------------------------ DOM helpers

	function setError(el, text) {
		el.textContent = text || '';
		show(el, Boolean(text));
	}

	/* The error text under a control; inputs also get aria-invalid (a
	 * fieldset of checkboxes or radios just shows the text, which its
	 * aria-describedby names). */
	function fieldError(input, errEl, text) {
		errEl.textContent = text || '';
		if (!input.matches('input, textarea, select')) return;
		if (text) input.setAttribute('aria-invalid', 'true');
		else input.removeAttribute('aria-invalid');
	}

	// ------------------------------------------------------------ formatting

	function fmtTime(iso) {
		if (!iso) return '—';
		const d = new Date(iso);
		if (Number.isNaN(d.getTime())) return String(iso);
		return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
	}

	function fmtWait(sec) {
		const s = Math.max(0, Math.floor(Number(sec) || 0));
		if (s < 60) return `${s} s`;
		if (s < 3600) return `${Math.floor(s / 60)} min`;
		if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
		return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
	}

	function plural(n, one, many) {
		return `${n} ${n === 1 ? one : many}`;
	}

	function badge(kind, value, text) {
		return h('span', { class: `badge ${kind}-${value}` }, text);
	}

	function statusBadge(st) {
		return badge('status', st, STATUS_TEXT[st] || st);
	}

	function outcomeSummary(outcomes) {
		if (!outcomes) return 'no checks';
		const parts = OUTCOME_ORDER.filter((o) => outcomes[o]).map((o) => `${outcomes[o]} ${OUTCOME_TEXT[o].toLowerCase()}`);
		return parts.length ? parts.join(', ') : 'no checks';
	}

	/*
	 * Evidence and details are arbitrary JSON from the server (and, through
	 * it, from DNS): rendered as nested definition lists of text.
	 */
	function renderValue(v, depth = 0) {
		if (v === null || v === undefined) return h('span', { class: 'muted' }, '—');
		if (typeof v !== 'object') return h('span', { class: 'value' }, String(v));
		if (depth > 6) return h('span', { class: 'value' }, JSON.stringify(v));
		if (Array.isArray(v)) {
			if (v.length === 0) return h('span', { class: 'muted' }, 'none');
			if (v.every((x) => x === null || typeof x !== 'object')) {
				return h('span', { class: 'value' }, v.map((x) => String(x)).join(', '));
			}
			return h('ol', { class: 'ev-list' }, v.map((x) => h('li', null, renderValue(x, depth + 1))));
		}
		const keys = Object.keys(v);
		if (keys.length === 0) return h('span', { class: 'muted' }, 'nothing recorded');
		return h('dl', { class: 'ev' }, keys.map((k) => [h('dt', null, k), h('dd', null, renderValue(v[k], depth + 1))]));
	}

	function facts(rows) {
		return h('dl', { class: 'facts' }, rows.filter(Boolean).map(([k, v]) =>
			[h('dt', null, k), h('dd', null, v instanceof Node ? v : (v === null || v === undefined || v === '' ? '—' : String(v)))]));
	}

	// ------------------------------------------------------------ the API

	function api(method, path, { body, headers, token = state.token } = {}) {
		return P25.request(method, path, {
			body, headers, token, cache: 'no-store',
			onUnauthorized: () => {
				if (token === state.token && state.token) {
					signOut('Your session has ended (the server no longer accepts the token). Sign in again.');
				}
			},
		});
	}

	function qs(params) {
		const u = new URLSearchParams();
		for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') u.set(k, v);
		const s = u.toString();
		return s ? `?${s}` : '';
	}

	// ------------------------------------------------------------ sign in

	async function signIn(token, { quiet = false } = {}) {
		const who = (await api('GET', '/v1/whoami', { token })).json;
		if (!hasRole(who, 'reviewer') && !hasRole(who, 'admin')) {
			const e = new ApiError(403, { detail: 'not a reviewer token' });
			throw e;
		}
		state.token = token;
		state.who = who;
		state.canDecide = hasRole(who, 'reviewer');
		tokens.set(token);
		$('who-text').textContent = `Signed in as ${who.sub}${state.canDecide ? '' : ' (read only: admin)'}`;
		P25.showSignedIn(true);
		if (!quiet) announce(`Signed in as ${who.sub}.`);
	}

	function signOut(why) {
		state.token = null;
		state.who = null;
		state.canDecide = false;
		tokens.remove();
		P25.showSignedIn(false);
		if (why) fieldError($('token'), $('token-error'), why);
		if (location.hash !== '#/signin') location.hash = '#/signin';
		else route();
	}

	async function onSignIn(ev) {
		ev.preventDefault();
		const field = $('token');
		const t = P25.pastedToken(field);
		if (!P25.JWT_RE.test(t)) {
			fieldError(field, $('token-error'), 'This does not look like a token: a JWT is three parts separated by dots.');
			field.focus();
			return;
		}
		fieldError(field, $('token-error'), '');
		$('signin-submit').disabled = true;
		try {
			await signIn(t);
			field.value = '';
			const want = state.afterSignIn && state.afterSignIn !== '#/signin' ? state.afterSignIn : '#/queue';
			state.afterSignIn = null;
			if (location.hash === want) route();
			else location.hash = want;
		} catch (e) {
			const msg = e.status === 401 ? 'The server refused this token (expired, or not issued for this service).'
				: e.status === 403 ? 'This token has neither the reviewer nor the admin role: it cannot use the review console.'
					: e.message;
			fieldError(field, $('token-error'), msg);
			field.focus();
		} finally {
			$('signin-submit').disabled = false;
		}
	}

	// ------------------------------------------------------------ routing

	function parseHash() {
		const raw = location.hash.startsWith('#/') ? location.hash.slice(1) : '/queue';
		const i = raw.indexOf('?');
		const path = i < 0 ? raw : raw.slice(0, i);
		const query = Object.fromEntries(new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)));
		return { path, query };
	}

	function showView(name) {
		for (const v of document.querySelectorAll('.view')) show(v, v.id === `view-${name}`);
		for (const a of document.querySelectorAll('nav a[data-nav]')) {
			if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
			else a.removeAttribute('aria-current');
		}
	}

	function focusHeading(id) {
		// on navigation only: the first view of a fresh load keeps the page's natural start
		if (state.routed) $(id).focus();
	}

	async function route() {
		const { path, query } = parseHash();
		if (!state.token) {
			if (path !== '/signin' && location.hash.startsWith('#/')) state.afterSignIn = location.hash;
			showView('signin');
			document.title = 'Sign in — review console — p25';
			focusHeading('signin-h');
			state.routed = true;
			return;
		}
		const m = /^\/requests\/([0-9a-fA-F-]{36})$/.exec(path);
		if (m) {
			showView('detail');
			await loadDetail(m[1]);
			focusHeading('detail-h');
		} else if (path === '/audit') {
			showView('audit');
			document.title = 'Audit trail — review console — p25';
			await loadAudit(query);
			focusHeading('audit-h');
		} else if (path === '/queue' || path === '/signin' || path === '') {
			if (path !== '/queue') {
				history.replaceState(null, '', '#/queue');
			}
			showView('queue');
			document.title = 'Review queue — p25';
			await loadQueue(path === '/queue' ? query : {});
			focusHeading('queue-h');
		} else {
			history.replaceState(null, '', '#/queue');
			return route();
		}
		state.routed = true;
	}

	// ------------------------------------------------------------ the queue

	function queueFormToHash(ev) {
		ev.preventDefault();
		const tenant = $('q-tenant').value.trim();
		const age = $('q-age').value.trim();
		let bad = false;
		if (tenant && !TENANT_RE.test(tenant)) {
			fieldError($('q-tenant'), $('q-tenant-error'), 'Not a tenant id (letters, digits, dot, dash, underscore).');
			bad = true;
		} else {
			fieldError($('q-tenant'), $('q-tenant-error'), '');
		}
		if (age && !(/^\d{1,7}$/.test(age) && Number(age) <= 1000000)) {
			fieldError($('q-age'), $('q-age-error'), 'A whole number of minutes (at most 1000000).');
			bad = true;
		} else {
			fieldError($('q-age'), $('q-age-error'), '');
		}
		if (bad) {
			document.querySelector('#queue-filters [aria-invalid="true"]').focus();
			return;
		}
		const want = `#/queue${qs({ state: $('q-state').value, tenant, min_age: age, outcome: $('q-outcome').value })}`;
		if (location.hash === want) route();
		else location.hash = want;
	}

	function queueReset() {
		$('q-state').value = '';
		$('q-tenant').value = '';
		$('q-age').value = '';
		$('q-outcome').value = '';
		fieldError($('q-tenant'), $('q-tenant-error'), '');
		fieldError($('q-age'), $('q-age-error'), '');
		if (location.hash === '#/queue') route();
		else location.hash = '#/queue';
	}

	async function loadQueue(query) {
		const q = state.queue;
		q.params = {
			state: OPEN.includes(query.state) ? query.state : '',
			tenant: query.tenant && TENANT_RE.test(query.tenant) ? query.tenant : '',
			min_age: /^\d{1,7}$/.test(query.min_age || '') && Number(query.min_age) <= 1000000 ? query.min_age : '',
			outcome: OUTCOME_TEXT[query.outcome] ? query.outcome : '',
		};
		$('q-state').value = q.params.state;
		$('q-tenant').value = q.params.tenant;
		$('q-age').value = q.params.min_age;
		$('q-outcome').value = q.params.outcome;
		q.cursor = null;
		q.shown = 0;
		clear($('queue-list'));
		await queuePage();
	}

	async function queuePage() {
		const q = state.queue;
		const seq = ++q.seq;
		const list = $('queue-list');
		list.setAttribute('aria-busy', 'true');
		setError($('queue-error'), '');
		const params = {
			state: q.params.state,
			tenant: q.params.tenant,
			min_age_seconds: q.params.min_age ? String(Number(q.params.min_age) * 60) : '',
			outcome: q.params.outcome,
			limit: String(PAGE),
			cursor: q.cursor,
		};
		try {
			const r = await api('GET', `/v1/review/queue${qs(params)}`);
			if (seq !== q.seq) return;
			const first = q.shown;
			for (const item of r.json.items) list.appendChild(queueItem(item));
			q.shown += r.json.items.length;
			q.cursor = r.json.next_cursor;
			show($('queue-more'), Boolean(q.cursor));
			const filtered = Object.values(q.params).some(Boolean);
			$('queue-summary').textContent = q.shown === 0
				? (filtered ? 'No request in the queue matches these filters.' : 'The queue is empty: nothing is waiting for a reviewer.')
				: `${plural(q.shown, 'request', 'requests')} shown, oldest first${q.cursor ? '; more below' : ''}.`;
			if (first > 0 && r.json.items.length) list.children[first].querySelector('a').focus();
		} catch (e) {
			if (seq !== q.seq) return;
			if (e.status !== 401) setError($('queue-error'), `The queue could not be loaded: ${e.message}`);
		} finally {
			if (seq === q.seq) list.removeAttribute('aria-busy');
		}
	}

	function queueItem(it) {
		const addrs = (it.addresses || []).join(', ');
		const mine = state.who && it.claimed_by === state.who.sub;
		return h('li', { class: 'card queue-item', 'data-id': it.id },
			h('h3', { class: 'card-title' },
				h('a', { href: `#/requests/${it.id}` }, `${addrs || 'no addresses'} — ${it.tenant}`)),
			h('p', { class: 'card-line' }, statusBadge(it.status),
				h('span', { class: 'waiting' }, `Waiting ${fmtWait(it.waiting_seconds)}`)),
			facts([
				['Tenant', it.tenant],
				['Use', it.use_case],
				['Checks', outcomeSummary(it.outcomes)],
				['Waiting since', fmtTime(it.updated_at)],
				['Claimed by', it.claimed_by ? `${mine ? 'you' : it.claimed_by} until ${fmtTime(it.claimed_until)}` : 'nobody'],
				['Request', shortId(it.id)],
			]));
	}

	// ------------------------------------------------------------ one request

	async function loadDetail(id, { keepMessages = false } = {}) {
		const d = state.detail;
		const seq = ++d.seq;
		if (d.id !== id) d.exemptions = {};
		d.id = id;
		const body = $('detail-body');
		setError($('detail-error'), '');
		if (!keepMessages) {
			clear(body);
			body.appendChild(h('p', { class: 'muted' }, 'Loading…'));
		}
		$('detail-h').textContent = `Request ${shortId(id)}`;
		document.title = `Request ${shortId(id)} — review console — p25`;
		try {
			const r = await api('GET', `/v1/review/requests/${id}`);
			if (seq !== d.seq) return;
			d.data = r.json;
			d.etag = r.etag;
			const trails = await Promise.all([
				auditTrail(id),
				...(r.json.exemptions || []).map((x) => auditTrail(x).catch(() => [])),
			]);
			if (seq !== d.seq) return;
			renderDetail(r.json, trails[0], trails.slice(1));
		} catch (e) {
			if (seq !== d.seq) return;
			clear(body);
			if (e.status === 404) setError($('detail-error'), 'There is no such request.');
			else if (e.status !== 401) setError($('detail-error'), `The request could not be loaded: ${e.message}`);
		}
	}

	async function auditTrail(object) {
		const items = [];
		let cursor = null;
		for (let i = 0; i < 10; i++) {
			const r = await api('GET', `/v1/audit${qs({ object, limit: '1000', cursor })}`);
			items.push(...r.json.items);
			cursor = r.json.next_cursor;
			if (!cursor) break;
		}
		return items;
	}

	function section(id, title, ...children) {
		return h('section', { class: 'panel', id, 'aria-labelledby': `${id}-h` },
			h('h3', { id: `${id}-h` }, title), ...children);
	}

	function renderDetail(q, trail, exTrails) {
		const body = $('detail-body');
		clear(body);
		const addrs = (q.addresses || []).join(', ');
		$('detail-h').textContent = `Request for ${addrs || 'no addresses'} (${q.tenant})`;
		document.title = `${addrs} — review console — p25`;
		const open = OPEN.includes(q.status);

		body.appendChild(h('p', { class: 'status-line' }, statusBadge(q.status),
			h('span', null, ` since ${fmtTime(q.updated_at)}`),
			q.claimed_by ? h('span', { class: 'claim-note' },
				` · claimed by ${state.who && q.claimed_by === state.who.sub ? 'you' : q.claimed_by} until ${fmtTime(q.claimed_until)}`) : null));

		const grid = h('div', { class: 'detail-grid' });
		body.appendChild(grid);
		const main = h('div', { class: 'detail-main' });
		const side = h('div', { class: 'detail-side' });
		grid.appendChild(main);
		grid.appendChild(side);

		// what the tenant asked for
		main.appendChild(section('sec-request', 'The request', facts([
			['Request id', q.id],
			['Tenant', q.tenant],
			['Addresses', addrs],
			['Use', q.use_case],
			['Description', q.description],
			['Sender domains', (q.sender_domains || []).join(', ')],
			['Messages per day', q.expected_daily_volume],
			['Contact', q.contact_email],
			['Filed', fmtTime(q.created_at)],
			['Last change', fmtTime(q.updated_at)],
			['Version', q.version],
		])));

		main.appendChild(renderChecks(q.all_checks || []));
		main.appendChild(renderMessages(q.messages || []));
		main.appendChild(renderDecisions(q.decisions || []));
		if ((q.exemptions || []).length) main.appendChild(renderExemptions(q.exemptions, exTrails));
		main.appendChild(renderTrail('sec-audit', 'Audit trail of this request', trail, q.id));

		// the side: claim, decide, account, history.  In needs_info the
		// tenant has the turn (DESIGN.md, request life): nothing to decide
		// until the answer puts the request back in the queue.
		if (state.canDecide && q.status === 'needs_review') {
			side.appendChild(renderClaim(q));
			side.appendChild(renderDecide(q));
		} else if (q.status === 'needs_info') {
			const asked = [...(q.messages || [])].reverse().find((m) => m.role === 'reviewer');
			side.appendChild(section('sec-decide', 'Decision',
				h('p', null, 'The tenant has the turn: this request waits for the answer to a question, and comes back to the queue when it arrives.'),
				asked ? h('p', null, h('span', { class: 'label' }, 'Asked: '), asked.body) : null));
		} else if (!open) {
			side.appendChild(section('sec-decide', 'Decision',
				h('p', null, `This request is ${STATUS_TEXT[q.status] || q.status}: it is not waiting for a reviewer.`)));
		} else {
			side.appendChild(section('sec-decide', 'Decision',
				h('p', null, 'Your token has no reviewer role: you can read this request but not decide it.')));
		}
		side.appendChild(renderAccount(q.account));
		side.appendChild(renderHistory(q.history || {}, q.tenant));
	}

	function renderChecks(checks) {
		const rounds = [...new Set(checks.map((c) => c.round))].sort((a, b) => b - a);
		const sec = section('sec-checks', 'Checks and evidence');
		if (!checks.length) {
			sec.appendChild(h('p', null, 'No checks were recorded.'));
			return sec;
		}
		rounds.forEach((round, i) => {
			const cs = checks.filter((c) => c.round === round);
			const counts = {};
			for (const c of cs) counts[c.outcome] = (counts[c.outcome] || 0) + 1;
			const list = h('ul', { class: 'checks' }, cs.map((c) => h('li', { class: `check outcome-${c.outcome}` },
				h('p', { class: 'check-head' }, badge('outcome', c.outcome, OUTCOME_TEXT[c.outcome] || c.outcome),
					h('span', { class: 'check-name' }, c.name), c.subject ? h('span', { class: 'check-subject' }, c.subject) : null),
				c.hint ? h('p', { class: 'check-hint' }, h('span', { class: 'label' }, 'Hint to the tenant: '), c.hint) : null,
				h('div', { class: 'evidence' }, h('p', { class: 'label' }, 'What was seen'), renderValue(c.evidence)),
				h('p', { class: 'muted small' }, `Checked ${fmtTime(c.at)}`))));
			const title = `Round ${round}${i === 0 ? ' (current)' : ''}: ${outcomeSummary(counts)}`;
			if (i === 0) {
				sec.appendChild(h('h4', null, title));
				sec.appendChild(list);
			} else {
				sec.appendChild(h('details', { class: 'round' }, h('summary', null, title), list));
			}
		});
		return sec;
	}

	function renderMessages(messages) {
		const sec = section('sec-messages', 'Messages');
		if (!messages.length) {
			sec.appendChild(h('p', null, 'No messages were exchanged.'));
			return sec;
		}
		sec.appendChild(h('ol', { class: 'messages' }, messages.map((m) => h('li', { class: `message role-${m.role}` },
			h('p', { class: 'message-head' }, h('span', { class: 'label' }, m.role === 'tenant' ? 'Tenant' : m.role === 'reviewer' ? 'Reviewer' : 'System'),
				` · ${fmtTime(m.created_at)}`),
			h('p', { class: 'message-body' }, m.body)))));
		return sec;
	}

	function renderDecisions(decisions) {
		const sec = section('sec-decisions', 'Decisions');
		if (!decisions.length) {
			sec.appendChild(h('p', null, 'No decisions yet.'));
			return sec;
		}
		sec.appendChild(h('ol', { class: 'decisions' }, decisions.map((d) => h('li', { class: 'decision' },
			h('p', { class: 'decision-head' }, badge('decision', d.decision, DECISION_TEXT[d.decision] || d.decision),
				h('span', null, ` by ${d.actor} · ${fmtTime(d.at)} · round ${d.round}`)),
			facts([
				(d.reason_codes || []).length ? ['Reasons', d.reason_codes.join(', ')] : null,
				d.message ? ['Message', d.message] : null,
				d.policy_version ? ['Policy version', d.policy_version] : null,
				d.reapply_after ? ['New request possible after', fmtTime(d.reapply_after)] : null,
				d.scope ? ['Scope', renderValue(d.scope)] : null,
			])))));
		return sec;
	}

	function renderAccount(a) {
		const sec = section('sec-account', 'Account');
		if (!a) {
			sec.appendChild(h('p', null, 'The tenant is not registered.'));
			return sec;
		}
		sec.appendChild(facts([
			['Name', a.name],
			['Tenant id', a.id],
			['Account created', fmtTime(a.created_at)],
			['Account age', a.age_days === null || a.age_days === undefined ? '—' : plural(a.age_days, 'day', 'days')],
			['Verified', a.verified ? 'yes' : 'no'],
			['Standing', a.standing],
		]));
		return sec;
	}

	function renderHistory(hist, tenant) {
		const sec = section('sec-history', 'History of this tenant');
		const reqs = hist.requests || [];
		sec.appendChild(h('h4', null, `Earlier requests (${reqs.length})`));
		if (reqs.length) {
			sec.appendChild(h('ul', { class: 'history' }, reqs.map((r) => h('li', null,
				h('a', { href: `#/requests/${r.id}` }, `Request ${shortId(r.id)}`), ' ', statusBadge(r.status),
				h('span', { class: 'muted' }, ` filed ${fmtTime(r.created_at)}`)))));
		} else {
			sec.appendChild(h('p', null, 'None.'));
		}
		const sus = hist.suspensions || [];
		sec.appendChild(h('h4', null, `Suspended exemptions (${sus.length})`));
		if (sus.length) {
			sec.appendChild(h('ul', { class: 'history' }, sus.map((x) => h('li', null,
				`${x.cidr}: ${EXEMPTION_TEXT[x.status] || x.status}, suspended ${plural(x.suspensions, 'time', 'times')}`,
				x.reason ? ` (${x.reason})` : '', h('span', { class: 'muted' }, ` · ${fmtTime(x.at)}`)))));
		} else {
			sec.appendChild(h('p', null, 'None.'));
		}
		sec.appendChild(h('p', null, `Abuse reports against ${tenant}: ${hist.abuse_reports ?? 0}`));
		return sec;
	}

	// ------------------------------------------------------------ claim

	function renderClaim(q) {
		const mine = state.who && q.claimed_by === state.who.sub;
		const other = q.claimed_by && !mine;
		const sec = section('sec-claim', 'Claim');
		sec.appendChild(h('p', { id: 'claim-text' }, q.claimed_by
			? `${mine ? 'You have' : `${q.claimed_by} has`} claimed this request until ${fmtTime(q.claimed_until)}.`
			: 'Nobody has claimed this request. Claim it so no colleague works on it at the same time.'));
		const btn = h('button', { type: 'button', id: 'claim-btn', class: other ? 'secondary' : null },
			mine ? 'Extend my claim' : 'Claim this request');
		if (other) btn.disabled = true;
		const err = h('p', { class: 'field-error', id: 'claim-error', role: 'alert' });
		btn.addEventListener('click', async () => {
			btn.disabled = true;
			err.textContent = '';
			try {
				const r = await api('POST', `/v1/review/requests/${q.id}/claim`);
				announce(`Claimed until ${fmtTime(r.json.claimed_until)}.`);
				await loadDetail(q.id, { keepMessages: true });
				const b = $('claim-btn');
				if (b) b.focus();
			} catch (e) {
				btn.disabled = false;
				if (e.status === 401) return;
				err.textContent = e.problem.code === 'claimed' ? `Someone else is working on it: ${e.message}`
					: `The claim failed: ${e.message}`;
			}
		});
		sec.appendChild(btn);
		sec.appendChild(err);
		return sec;
	}

	// ------------------------------------------------------------ decide

	function labelled(id, label, control, hint) {
		const hintId = hint ? `${id}-hint` : null;
		const errId = `${id}-error`;
		control.id = id;
		control.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
		return h('div', { class: 'field' },
			h('label', { for: id }, label),
			hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
			control,
			h('p', { class: 'field-error', id: errId, 'aria-live': 'polite' }));
	}

	function renderDecide(q) {
		const sec = section('sec-decide', 'Decide');
		const form = h('form', { id: 'decide-form', novalidate: true });
		const summary = h('p', { class: 'form-error', id: 'decide-error', role: 'alert', tabindex: '-1' });
		summary.hidden = true;

		const choice = h('fieldset', { class: 'choice', id: 'd-choice', 'aria-describedby': 'd-choice-error' },
			h('legend', null, 'Decision'),
			[['approve', 'Approve: open port 25'], ['deny', 'Deny'], ['needs_info', 'Ask the tenant a question']].map(([v, t]) =>
				h('div', { class: 'radio' },
					h('input', { type: 'radio', name: 'decision', id: `d-${v}`, value: v }),
					h('label', { for: `d-${v}` }, t))),
			h('p', { class: 'field-error', id: 'd-choice-error', 'aria-live': 'polite' }));

		// approve: optional narrowing
		const prefixBoxes = (q.addresses || []).map((a, i) => h('div', { class: 'check-box' },
			h('input', { type: 'checkbox', id: `d-prefix-${i}`, value: a, checked: true, class: 'd-prefix' }),
			h('label', { for: `d-prefix-${i}` }, a)));
		const approve = h('div', { class: 'group', id: 'd-approve-fields' },
			h('fieldset', { id: 'd-prefixes', 'aria-describedby': 'd-prefixes-hint d-prefixes-error' },
				h('legend', null, 'Addresses to open'),
				h('p', { class: 'hint', id: 'd-prefixes-hint' }, 'Untick an address to leave it closed (a narrower approval).'),
				prefixBoxes,
				h('p', { class: 'field-error', id: 'd-prefixes-error', 'aria-live': 'polite' })),
			labelled('d-dest', 'Destinations only (optional)', h('textarea', { rows: '2', autocomplete: 'off', spellcheck: 'false' }),
				'CIDRs the addresses may reach on port 25, such as the tenant\'s own relay; empty for anywhere.'),
			labelled('d-rate', 'Rate limit (optional)', h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off' }),
				'Messages per hour; empty for no limit.'),
			labelled('d-expires', 'Expires after (days, optional)', h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off' }),
				'1 to 3650; empty for the policy\'s default.'));

		// deny: reasons, note, when again
		const deny = h('div', { class: 'group', id: 'd-deny-fields' },
			h('fieldset', { id: 'd-reasons', 'aria-describedby': 'd-reasons-error' },
				h('legend', null, 'Reasons (at least one)'),
				REASONS.map(([code, text]) => h('div', { class: 'check-box' },
					h('input', { type: 'checkbox', id: `d-reason-${code}`, value: code, class: 'd-reason' }),
					h('label', { for: `d-reason-${code}` }, text))),
				h('p', { class: 'field-error', id: 'd-reasons-error', 'aria-live': 'polite' })),
			labelled('d-note', 'Note for the tenant', h('textarea', { rows: '3' }), 'What to fix before asking again (the tenant reads it).'),
			labelled('d-reapply', 'New request possible after (days, optional)', h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off' }),
				'0 to 3650; empty for the policy\'s default.'));

		// needs_info: the question
		const info = h('div', { class: 'group', id: 'd-info-fields' },
			labelled('d-question', 'Question for the tenant', h('textarea', { rows: '3' }),
				'The tenant answers it; the request then comes back to this queue.'));

		for (const g of [approve, deny, info]) g.hidden = true;
		const submit = h('button', { type: 'submit', id: 'decide-submit' }, 'Record the decision');
		append(form, [summary, choice, approve, deny, info, submit]);
		sec.appendChild(form);

		form.addEventListener('change', (ev) => {
			if (ev.target.name !== 'decision') return;
			approve.hidden = ev.target.value !== 'approve';
			deny.hidden = ev.target.value !== 'deny';
			info.hidden = ev.target.value !== 'needs_info';
			fieldError(choice, $('d-choice-error'), '');
		});
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			decide(q, form);
		});
		return sec;
	}

	function wholeNumber(s, lo, hi) {
		if (!/^\d{1,8}$/.test(s)) return null;
		const n = Number(s);
		return n >= lo && n <= hi ? n : null;
	}

	async function decide(q, form) {
		const summary = $('decide-error');
		summary.hidden = true;
		summary.textContent = '';
		for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
		for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
		const picked = form.querySelector('input[name="decision"]:checked');
		const errors = [];
		const fail = (inputId, errId, text) => {
			fieldError($(inputId), $(errId), text);
			errors.push(inputId);
		};
		const body = {};
		if (!picked) {
			fail('d-choice', 'd-choice-error', 'Choose approve, deny or ask.');
		} else if (picked.value === 'approve') {
			body.decision = 'approve';
			const boxes = [...form.querySelectorAll('.d-prefix')];
			const on = boxes.filter((b) => b.checked).map((b) => b.value);
			if (!on.length) fail('d-prefixes', 'd-prefixes-error', 'Tick at least one address, or deny the request.');
			else if (on.length < boxes.length) body.prefixes = on;
			const dest = $('d-dest').value.split(/[\s,]+/).filter(Boolean);
			if (dest.length) {
				const bad = dest.find((x) => !/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(x));
				if (bad) fail('d-dest', 'd-dest-error', `“${bad}” is not an address or CIDR.`);
				else body.dest = dest;
			}
			const rate = $('d-rate').value.trim();
			if (rate) {
				const n = wholeNumber(rate, 1, 10000000);
				if (n === null) fail('d-rate', 'd-rate-error', 'A whole number of messages per hour, 1 to 10000000.');
				else body.rate = n;
			}
			const exp = $('d-expires').value.trim();
			if (exp) {
				const n = wholeNumber(exp, 1, 3650);
				if (n === null) fail('d-expires', 'd-expires-error', 'A whole number of days, 1 to 3650.');
				else body.expires_in_days = n;
			}
		} else if (picked.value === 'deny') {
			body.decision = 'deny';
			body.reason_codes = [...form.querySelectorAll('.d-reason')].filter((b) => b.checked).map((b) => b.value);
			if (!body.reason_codes.length) fail('d-reasons', 'd-reasons-error', 'Name at least one reason.');
			const note = $('d-note').value.trim();
			if (note) body.note = note;
			const re = $('d-reapply').value.trim();
			if (re) {
				const n = wholeNumber(re, 0, 3650);
				if (n === null) fail('d-reapply', 'd-reapply-error', 'A whole number of days, 0 to 3650.');
				else body.reapply_after_days = n;
			}
		} else {
			body.decision = 'needs_info';
			const question = $('d-question').value.trim();
			if (!question) fail('d-question', 'd-question-error', 'Write the question the tenant should answer.');
			else body.note = question;
		}
		if (errors.length) {
			summary.textContent = `The decision was not sent: ${plural(errors.length, 'field needs', 'fields need')} attention.`;
			summary.hidden = false;
			const first = $(errors[0]);
			(first.matches('fieldset') ? first.querySelector('input') : first).focus();
			return;
		}
		const btn = $('decide-submit');
		btn.disabled = true;
		try {
			const r = await api('POST', `/v1/review/requests/${q.id}/decision`, {
				body, headers: state.detail.etag ? { 'If-Match': state.detail.etag } : {},
			});
			const n = (r.json.exemptions || []).length;
			const what = body.decision === 'approve' ? `Approved: ${plural(n, 'exemption', 'exemptions')} issued.`
				: body.decision === 'deny' ? 'Denied: the tenant has been told why.'
					: 'The question was sent to the tenant.';
			announce(`Decision recorded. ${what}`);
			await loadDetail(q.id, { keepMessages: true });
			$('detail-h').focus();
		} catch (e) {
			btn.disabled = false;
			if (e.status === 401) return;
			let text;
			if (e.status === 412) {
				text = 'The request changed since you opened it (someone else acted on it). It has been reloaded: read it again before deciding.';
			} else if (e.status === 409 && e.problem.code === 'claimed') {
				text = `Someone else holds this request: ${e.message}`;
			} else if (e.status === 409) {
				text = `The decision was refused: ${e.message}`;
			} else if (e.status === 422 && Array.isArray(e.problem.errors)) {
				const map = { prefixes: 'd-prefixes', dest: 'd-dest', rate: 'd-rate', expires_in_days: 'd-expires',
					reason_codes: 'd-reasons', note: body.decision === 'needs_info' ? 'd-question' : 'd-note',
					reapply_after_days: 'd-reapply', decision: 'd-choice' };
				for (const fe of e.problem.errors) {
					const key = String(fe.field || '').replace(/\[.*$/, '');
					const id = map[key];
					if (id) fieldError($(id), $(`${id}-error`), fe.message || fe.detail || fe.code);
				}
				text = `The server refused the decision: ${e.message}`;
			} else {
				text = `The decision failed: ${e.message}`;
			}
			if (e.status === 412 || (e.status === 409 && e.problem.code === 'invalid_state')) {
				await loadDetail(q.id, { keepMessages: true });
			}
			const s = $('decide-error') || $('detail-error');
			s.textContent = text;
			s.hidden = false;
			s.focus();
		}
	}

	// ------------------------------------------------------------ exemptions

	/* An exemption as the audit trail tells it: cidr, status, expiry. */
	function exemptionFromTrail(id, trail) {
		const x = { id, cidr: null, status: null, expires_at: null, reason: null };
		for (const a of trail) {
			if (a.action === 'exemption.grant') {
				x.cidr = a.details?.cidr || x.cidr;
				const days = Number(a.details?.expires_in_days);
				if (days > 0) x.expires_at = new Date(Date.parse(a.at) + days * 86400e3).toISOString();
			}
			if (EXEMPTION_AFTER[a.action]) {
				x.status = EXEMPTION_AFTER[a.action];
				x.reason = a.details?.reason || null;
			}
		}
		if (x.status === 'active' && x.expires_at && Date.parse(x.expires_at) <= Date.now()) x.status = 'expired';
		return x;
	}

	function renderExemptions(ids, trails) {
		const sec = section('sec-exemptions', 'Exemptions');
		const list = h('ul', { class: 'exemptions' });
		ids.forEach((id, i) => {
			const trail = trails[i] || [];
			const fromTrail = exemptionFromTrail(id, trail);
			// an answer of revoke/reinstate is the exemption itself: newer than the trail's last word, it wins
			const known = state.detail.exemptions[id];
			const last = trail.length ? Date.parse(trail[trail.length - 1].at) : 0;
			const x = known && Date.parse(known.updated_at) >= last - 1000
				? { ...fromTrail, ...known, cidr: known.cidr || fromTrail.cidr } : fromTrail;
			list.appendChild(exemptionItem(x, trails[i] || []));
		});
		sec.appendChild(list);
		return sec;
	}

	function exemptionItem(x, trail) {
		const li = h('li', { class: 'card exemption', 'data-id': x.id });
		const label = x.cidr || shortId(x.id);
		li.appendChild(h('h4', null, `Exemption for ${label}`));
		li.appendChild(h('p', { class: 'card-line' },
			x.status ? badge('exemption', x.status, EXEMPTION_TEXT[x.status] || x.status) : h('span', { class: 'muted' }, 'status unknown'),
			x.status_reason || x.reason ? h('span', null, ` ${x.status_reason || x.reason}`) : null));
		li.appendChild(facts([
			['Exemption id', x.id],
			['Expires', fmtTime(x.expires_at)],
			x.token !== undefined ? ['Token', x.token ? 'current, signed' : 'none (not active)'] : null,
		]));
		if (state.canDecide && x.status) {
			const act = x.status === 'active' || x.status === 'suspended' ? 'revoke'
				: x.status === 'revoked' ? 'reinstate' : null;
			if (act) li.appendChild(exemptionForm(x, act, label));
		}
		if (trail.length) {
			li.appendChild(h('details', { class: 'trail' }, h('summary', null, `Audit trail (${trail.length})`),
				auditList(trail)));
		}
		return li;
	}

	function exemptionForm(x, act, label) {
		const id = `x-${act}-${x.id}`;
		const input = h('input', { type: 'text', autocomplete: 'off', maxlength: '1000' });
		const field = labelled(id, act === 'revoke' ? `Reason for revoking ${label}` : `Reason for reinstating ${label}`, input,
			act === 'revoke' ? 'Enforcement nodes close port 25 within seconds; the tenant is told this reason.'
				: 'A new token is signed and port 25 opens again.');
		const btn = h('button', { type: 'submit', class: act === 'revoke' ? 'danger' : null },
			act === 'revoke' ? `Revoke ${label}` : `Reinstate ${label}`);
		const form = h('form', { class: 'exemption-form', novalidate: true }, field, btn);
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const reason = input.value.trim();
			const err = $(`${id}-error`);
			if (!reason) {
				fieldError(input, err, 'Give a reason: it is recorded and shown to the tenant.');
				input.focus();
				return;
			}
			fieldError(input, err, '');
			btn.disabled = true;
			try {
				const r = await api('POST', `/v1/exemptions/${x.id}/${act}`, { body: { reason } });
				state.detail.exemptions[x.id] = r.json;
				announce(act === 'revoke' ? `Exemption for ${label} revoked.` : `Exemption for ${label} reinstated: it is ${EXEMPTION_TEXT[r.json.status] || r.json.status}.`);
				await loadDetail(state.detail.id, { keepMessages: true });
				const again = document.querySelector(`li.exemption[data-id="${x.id}"] button`);
				if (again) again.focus();
			} catch (e) {
				btn.disabled = false;
				if (e.status === 401) return;
				fieldError(input, err, e.problem.code === 'cooldown' ? `Not yet: ${e.message}` : `Refused: ${e.message}`);
				input.focus();
			}
		});
		return form;
	}

	// ------------------------------------------------------------ audit

	function renderTrail(id, title, trail, object) {
		const sec = section(id, title);
		if (!trail.length) sec.appendChild(h('p', null, 'No entries.'));
		else sec.appendChild(auditList(trail));
		sec.appendChild(h('p', null, h('a', { href: `#/audit${qs({ object })}` }, 'Open in the audit view')));
		return sec;
	}

	function auditList(items) {
		return h('ol', { class: 'audit' }, items.map(auditItem));
	}

	function auditItem(a) {
		const details = a.details && Object.keys(a.details).length ? renderValue(a.details) : null;
		return h('li', { class: 'audit-item', 'data-seq': a.seq },
			h('p', { class: 'audit-head' }, h('span', { class: 'audit-action' }, a.action),
				h('span', null, ` by ${a.actor}`), h('span', { class: 'muted' }, ` · ${fmtTime(a.at)} · #${a.seq}`)),
			h('p', { class: 'muted small' }, `${a.object_type} ${a.object}${a.tenant ? ` · tenant ${a.tenant}` : ''} · `,
				a.hash ? `sealed, link ${a.chain_pos}, ${String(a.hash).slice(0, 16)}…` : 'not sealed yet'),
			details);
	}

	async function loadAudit(query) {
		const au = state.audit;
		au.params = { object: query.object || '', actor: query.actor || '', since: query.since || '' };
		$('a-object').value = au.params.object;
		$('a-actor').value = au.params.actor;
		$('a-since').value = au.params.since;
		au.cursor = null;
		au.shown = 0;
		clear($('audit-list'));
		await auditPage();
	}

	async function auditPage() {
		const au = state.audit;
		const seq = ++au.seq;
		const list = $('audit-list');
		setError($('audit-error'), '');
		list.setAttribute('aria-busy', 'true');
		try {
			const r = await api('GET', `/v1/audit${qs({ ...au.params, limit: '50', cursor: au.cursor })}`);
			if (seq !== au.seq) return;
			const first = au.shown;
			for (const a of r.json.items) list.appendChild(auditItem(a));
			au.shown += r.json.items.length;
			au.cursor = r.json.next_cursor;
			show($('audit-more'), Boolean(au.cursor));
			$('audit-summary').textContent = au.shown === 0 ? 'No entries match.'
				: `${plural(au.shown, 'entry', 'entries')} shown, oldest first${au.cursor ? '; more below' : ''}.`;
			if (first > 0 && r.json.items.length) {
				list.children[first].setAttribute('tabindex', '-1');
				list.children[first].focus();
			}
		} catch (e) {
			if (seq !== au.seq) return;
			if (e.status !== 401) setError($('audit-error'), `The audit entries could not be loaded: ${e.message}`);
		} finally {
			if (seq === au.seq) list.removeAttribute('aria-busy');
		}
	}

	function auditFormToHash(ev) {
		ev.preventDefault();
		const since = $('a-since').value.trim();
		if (since && Number.isNaN(Date.parse(since))) {
			fieldError($('a-since'), $('a-since-error'), 'Not a date and time: write it like 2026-01-31T12:00:00Z.');
			$('a-since').focus();
			return;
		}
		fieldError($('a-since'), $('a-since-error'), '');
		const want = `#/audit${qs({ object: $('a-object').value.trim(), actor: $('a-actor').value.trim(), since })}`;
		if (location.hash === want) route();
		else location.hash = want;
	}

	// ------------------------------------------------------------ start

	async function start() {
		$('signin-form').addEventListener('submit', onSignIn);
		$('signout').addEventListener('click', () => {
			signOut(null);
			announce('Signed out.');
		});
		$('queue-filters').addEventListener('submit', queueFormToHash);
		$('q-reset').addEventListener('click', queueReset);
		$('queue-more').addEventListener('click', () => queuePage());
		$('audit-form').addEventListener('submit', auditFormToHash);
		$('audit-more').addEventListener('click', () => auditPage());
		// only "#/…" is a route: the skip link's "#main" (or any other
		// fragment) must not navigate, so it moves the focus itself
		window.addEventListener('hashchange', () => {
			if (location.hash.startsWith('#/') || location.hash === '') route();
		});
		$('skip-link').addEventListener('click', (ev) => {
			ev.preventDefault();
			$('main').focus();
			$('main').scrollIntoView();
		});

		const saved = tokens.get();
		if (saved) {
			try {
				await signIn(saved, { quiet: true });
			} catch (e) {
				tokens.remove();
				fieldError($('token'), $('token-error'), e.status === 401
					? 'Your session has ended (the token expired or was refused). Sign in again.'
					: e.status === 403 ? 'The saved token has no reviewer role.' : e.message);
			}
		}
		await route();
	}

	P25.onReady(start);
}());
