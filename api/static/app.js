/*
 * app.js — the tenant page of p25: sign in with a bearer token, file a
 * request, follow it, withdraw it, answer a reviewer, and ask whether port
 * 25 is open for an address.
 *
 * Plain browser JavaScript, no framework and no build step: the page is
 * served by p25-api under a strict Content-Security-Policy (scripts and
 * styles from /static only), so nothing here uses inline handlers, inline
 * styles or innerHTML.  Everything the server says — including DNS
 * evidence, hints and reviewers' messages, which are untrusted — reaches
 * the page through text nodes (the h() helper of common.js), never as markup.
 *
 * Routing is by hash so views can be linked and bookmarked:
 *   #/requests[?status=S]   the tenant's requests
 *   #/requests/ID           one request
 *   #/new                   the request form
 *   #/lookup[?ip=A]         is port 25 open for this address?
 * The token lives in sessionStorage (this tab only) and is checked with
 * GET /v1/whoami when the page loads and when the tenant signs in.
 */
(function () {
	'use strict';

	const tokens = P25.tokenStore('p25.token');
	const OPEN_STATES = ['pending', 'vetting', 'needs_review', 'needs_info'];
	const STATUS_TEXT = {
		pending: 'Pending',
		vetting: 'Being vetted',
		needs_review: 'Waiting for a reviewer',
		needs_info: 'Needs information from you',
		approved: 'Approved',
		denied: 'Denied',
		withdrawn: 'Withdrawn',
	};
	const USE_CASE_TEXT = {
		transactional: 'Transactional',
		marketing: 'Marketing',
		relay: 'Relay',
		personal: 'Personal',
		other: 'Other',
	};
	const OUTCOME_TEXT = { pass: 'Pass', fail: 'Fail', warn: 'Warning', error: 'Unknown (error)' };
	const DECISION_TEXT = {
		approve: 'Approved',
		deny: 'Denied',
		needs_review: 'Sent to a reviewer',
		needs_info: 'More information needed',
	};
	const LOOKUP_TEXT = {
		open: 'Port 25 is open',
		suspended: 'Port 25 is closed: the exemption is suspended',
		no_request: 'Port 25 is closed: no request covers this address',
		pending: 'Port 25 is closed: a request is being vetted or reviewed',
		denied: 'Port 25 is closed: the request was denied',
		needs_info: 'Port 25 is closed: the reviewers need information from you',
		exemption_ended: 'Port 25 is closed: the exemption ended',
	};
	const MAX_ADDRESSES = 64;
	const MAX_DOMAINS = 20;
	const POLL_MS = 5000;

	const state = {
		token: null,
		who: null,
		view: null,
		listStatus: '',
		listCursor: null,
		listSeq: 0,
		detailId: null,
		pollTimer: null,
		detailVersion: null,
		touched: new Set(),
		idem: null,
		submitted: false,
	};

	// the element builder, fetch wrapper and sign-in pieces (common.js)
	const { $, h, append, clear, show, announce, shortId, ApiError } = window.P25;

	// ------------------------------------------------------------ formatting

	function fmtTime(s) {
		if (!s) return '';
		const d = new Date(s);
		if (Number.isNaN(d.getTime())) return String(s);
		return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
	}

	function timeEl(s) {
		return h('time', { datetime: s }, fmtTime(s));
	}

	function statusBadge(status) {
		return h('span', { class: `badge status-${safeClass(status)}` }, STATUS_TEXT[status] || status);
	}

	function safeClass(s) {
		return String(s || '').replace(/[^a-z0-9_-]/gi, '');
	}

	// ------------------------------------------------------------ the API

	/* fetch with the bearer token; resolves to the parsed JSON, throws ApiError. */
	async function api(method, path, body, extraHeaders) {
		return (await P25.request(method, path, {
			body, headers: extraHeaders, token: state.token,
			onUnauthorized: () => {
				if (state.token && path !== '/v1/whoami') {
					signOut('Your session has ended (the token expired or was refused). Sign in again.');
				}
			},
		})).json;
	}

	/* One sentence for an error, with the server's hint when it gave one. */
	function problemText(e) {
		const p = e.problem || {};
		let t = p.detail || p.title || e.message || 'something went wrong';
		if (p.hint) t += ` — ${p.hint}`;
		if (e.status === 429 && p.code === 'rate_limited') t += ' (try again later)';
		return t;
	}

	// ------------------------------------------------------------ sign in

	async function signIn(token) {
		state.token = token;
		let who;
		try {
			who = await api('GET', '/v1/whoami');
		} catch (e) {
			state.token = null;
			throw e;
		}
		if (!P25.hasRole(who, 'tenant') || !who.tenant) {
			state.token = null;
			throw new ApiError(403, { detail: 'this token is not a tenant token (it has no tenant role or tenant)' });
		}
		state.who = who;
		tokens.set(token);
		$('who-text').textContent = '';
		append($('who-text'), ['Signed in as ', h('strong', null, who.sub), ' (tenant ', h('strong', null, who.tenant), ')']);
		P25.showSignedIn(true);
	}

	function signOut(message) {
		state.token = null;
		state.who = null;
		stopPolling();
		tokens.remove();
		P25.showSignedIn(false);
		$('token').value = '';
		setFieldError('token', message || '');
		// the hash stays: signing in again returns to the same place
		route();
		if (!message) announce('Signed out.');
	}

	function initSignin() {
		$('signin-form').addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const token = P25.pastedToken($('token'));
			if (!token) {
				setFieldError('token', 'Paste your token first.');
				$('token').focus();
				return;
			}
			if (!P25.JWT_RE.test(token)) {
				setFieldError('token', 'This does not look like a token: a JWT is three parts of letters, digits, - and _ separated by dots.');
				$('token').focus();
				return;
			}
			const btn = $('signin-submit');
			btn.disabled = true;
			try {
				await signIn(token);
				setFieldError('token', '');
				$('token').value = '';
				announce(`Signed in as ${state.who.sub}.`);
				if (!location.hash || location.hash === '#/' || location.hash === '#') location.hash = '#/requests';
				else route();
			} catch (e) {
				const msg = e.status === 401 ? 'The token was refused (expired, or not issued for this service).'
					: problemText(e);
				setFieldError('token', msg);
				$('token').focus();
			} finally {
				btn.disabled = false;
			}
		});
		$('signout').addEventListener('click', () => {
			signOut();
		});
	}

	// ------------------------------------------------------------ fields and errors

	/* Shows (or clears) the message under a field and marks it invalid. */
	function setFieldError(name, message) {
		const input = name === 'token' ? $('token') : $(`f-${name}`);
		const box = name === 'token' ? $('token-error') : $(`f-${name}-error`);
		if (!input || !box) return;
		const msgs = Array.isArray(message) ? message.filter(Boolean) : (message ? [message] : []);
		clear(box);
		if (msgs.length === 1) {
			box.textContent = msgs[0];
		} else if (msgs.length > 1) {
			const ul = h('ul');
			for (const m of msgs) ul.appendChild(h('li', null, m));
			box.appendChild(ul);
		}
		if (msgs.length) input.setAttribute('aria-invalid', 'true');
		else input.removeAttribute('aria-invalid');
		const field = input.closest('.field');
		if (field) field.classList.toggle('has-error', msgs.length > 0);
	}

	// ------------------------------------------------------------ address checks

	/* IPv4 dotted quad → 4 bytes, or null. */
	function parse4(s) {
		const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
		if (!m) return null;
		const b = m.slice(1).map(Number);
		if (b.some((x) => x > 255)) return null;
		return b;
	}

	/* IPv6 text → 16 bytes, or null. */
	function parse6(s) {
		if (!/^[0-9a-fA-F:.]+$/.test(s) || s.indexOf(':') < 0) return null;
		const halves = s.split('::');
		if (halves.length > 2) return null;
		const groups = (part) => (part === '' ? [] : part.split(':'));
		const head = groups(halves[0]);
		const tail = halves.length === 2 ? groups(halves[1]) : [];
		const all = halves.length === 2 ? head.concat(tail) : head;
		// an embedded IPv4 address takes the place of the last two groups
		let v4 = null;
		if (all.length && all[all.length - 1].indexOf('.') >= 0) {
			v4 = parse4(all[all.length - 1]);
			if (!v4) return null;
		}
		const words = [];
		const toWords = (list, isLast) => {
			const out = [];
			list.forEach((g, i) => {
				if (isLast && v4 && i === list.length - 1) {
					out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
				} else {
					if (!/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(NaN);
					else out.push(parseInt(g, 16));
				}
			});
			return out;
		};
		const hw = toWords(head, halves.length === 1);
		const tw = halves.length === 2 ? toWords(tail, true) : [];
		if (hw.some(Number.isNaN) || tw.some(Number.isNaN)) return null;
		if (halves.length === 2) {
			const fill = 8 - hw.length - tw.length;
			if (fill < 1) return null;
			words.push(...hw, ...new Array(fill).fill(0), ...tw);
		} else {
			if (hw.length !== 8) return null;
			words.push(...hw);
		}
		const bytes = [];
		for (const w of words) bytes.push(w >> 8, w & 255);
		return bytes;
	}

	/* "81.2.69.5", "81.2.69.0/26", "2a02:ff0:1::/64" → {family, bytes, len} or {error}. */
	function parseEntry(text) {
		const slash = text.indexOf('/');
		const addr = slash < 0 ? text : text.slice(0, slash);
		const lenText = slash < 0 ? null : text.slice(slash + 1);
		let bytes = parse4(addr);
		let family = 4;
		if (!bytes) {
			bytes = parse6(addr);
			family = 6;
		}
		if (!bytes) {
			return { error: 'is not an IPv4 or IPv6 address (for example 81.2.69.5 or 2a02:ff0:1::/64)' };
		}
		const max = family === 4 ? 32 : 128;
		let len = max;
		if (lenText !== null) {
			if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
				return { error: `has a prefix length that is not a number from 0 to ${max}` };
			}
			len = Number(lenText);
		}
		return { family, bytes, len };
	}

	// Ranges that can never send mail on the internet.  The server knows the
	// full list (shared, documentation, reserved …); these are the common
	// mistakes worth catching before anything is sent.
	const SPECIAL = [
		['0.0.0.0/8', 'this network'],
		['10.0.0.0/8', 'private, RFC 1918'],
		['100.64.0.0/10', 'shared address space'],
		['127.0.0.0/8', 'loopback'],
		['169.254.0.0/16', 'link-local'],
		['172.16.0.0/12', 'private, RFC 1918'],
		['192.168.0.0/16', 'private, RFC 1918'],
		['224.0.0.0/4', 'multicast'],
		['240.0.0.0/4', 'reserved'],
		['::/128', 'unspecified'],
		['::1/128', 'loopback'],
		['fc00::/7', 'unique local, private'],
		['fe80::/10', 'link-local'],
		['ff00::/8', 'multicast'],
	].map(([cidr, why]) => ({ cidr, why, p: parseEntry(cidr) }));

	function samePrefixBits(a, b, bits) {
		for (let i = 0; i < bits; i++) {
			const byte = i >> 3;
			const mask = 0x80 >> (i & 7);
			if ((a[byte] & mask) !== (b[byte] & mask)) return false;
		}
		return true;
	}

	function specialRange(p) {
		for (const s of SPECIAL) {
			if (s.p.family !== p.family) continue;
			if (samePrefixBits(p.bytes, s.p.bytes, Math.min(p.len, s.p.len))) return s;
		}
		return null;
	}

	/* Splits a list field: one per line or separated by commas (or spaces). */
	function splitList(text) {
		return text.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
	}

	/*
	 * Checks the addresses field.  While typing (final = false) the entry
	 * still being typed — the last one, with nothing after it — is only
	 * judged when it is already a whole address, so "10.1" does not shout
	 * "malformed" halfway through "10.1.2.3".
	 */
	function checkAddresses(text, final) {
		const entries = splitList(text);
		const open = !final && !/[\s,;]$/.test(text);
		const errors = [];
		const seen = new Map();
		if (entries.length === 0) {
			if (final) errors.push('Name at least one address.');
			return errors;
		}
		if (entries.length > MAX_ADDRESSES) errors.push(`At most ${MAX_ADDRESSES} entries.`);
		entries.forEach((e, i) => {
			const label = `“${e}” (entry ${i + 1})`;
			const p = parseEntry(e);
			const last = i === entries.length - 1;
			if (p.error) {
				if (!(open && last)) errors.push(`${label} ${p.error}.`);
				return;
			}
			const s = specialRange(p);
			if (s) {
				errors.push(`${label} is not a public address (${s.cidr}, ${s.why}): it can never send mail on the internet.`);
				return;
			}
			const key = `${p.family}/${p.bytes.join('.')}/${p.len}`;
			if (seen.has(key)) errors.push(`${label} repeats entry ${seen.get(key) + 1}.`);
			else seen.set(key, i);
		});
		return errors;
	}

	function domainOk(d) {
		let s = d;
		if (s.endsWith('.')) s = s.slice(0, -1);
		if (!s || s.length > 253) return false;
		const labels = s.split('.');
		if (labels.length < 2) return false;
		for (const l of labels) {
			if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) return false;
		}
		return /[A-Za-z]/.test(labels[labels.length - 1]);
	}

	function checkDomains(text, final) {
		const entries = splitList(text);
		const open = !final && !/[\s,;]$/.test(text);
		const errors = [];
		if (entries.length > MAX_DOMAINS) errors.push(`At most ${MAX_DOMAINS} domains.`);
		entries.forEach((d, i) => {
			if (open && i === entries.length - 1) return;
			if (!domainOk(d)) errors.push(`“${d}” (entry ${i + 1}) is not a domain name (for example example.com).`);
		});
		return errors;
	}

	function emailOk(s) {
		const at = s.lastIndexOf('@');
		if (at <= 0 || s.length > 254 || at > 64) return false;
		const local = s.slice(0, at);
		const domain = s.slice(at + 1);
		if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false;
		if (!/^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$/.test(local)) return false;
		return !domain.endsWith('.') && domainOk(domain);
	}

	const utf8Length = (s) => new TextEncoder().encode(s).length;

	/* The client-side checks of one form field: a list of messages. */
	function checkField(name, final) {
		const v = $(`f-${name}`).value;
		switch (name) {
		case 'addresses':
			return checkAddresses(v, final);
		case 'use_case':
			return final && !v ? ['Choose what the mail is.'] : [];
		case 'description':
			if (utf8Length(v) > 4000) return ['At most 4000 characters (bytes in UTF-8).'];
			// eslint-disable-next-line no-control-regex
			if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(v)) return ['Must not contain control characters.'];
			return [];
		case 'sender_domains':
			return checkDomains(v, final);
		case 'expected_daily_volume': {
			const t = v.trim().replace(/[_\s]/g, '');
			if (!t) return [];
			if (!/^\d+$/.test(t) || Number(t) > 1000000000) return ['A whole number from 0 to 1000000000.'];
			return [];
		}
		case 'contact_email': {
			const t = v.trim();
			if (!t) return [];
			if (!final && !t.includes('@')) return [];
			return emailOk(t) ? [] : ['Not an e-mail address (for example ops@example.com).'];
		}
		default:
			return [];
		}
	}

	const FORM_FIELDS = ['addresses', 'use_case', 'description', 'sender_domains',
		'expected_daily_volume', 'contact_email'];

	// ------------------------------------------------------------ the request form

	function initForm() {
		const form = $('request-form');
		for (const name of FORM_FIELDS) {
			const el = $(`f-${name}`);
			const evName = el.tagName === 'SELECT' ? 'change' : 'input';
			// while typing, the entry being typed is judged leniently; a
			// choice in a select is final at once
			el.addEventListener(evName, () => {
				setFieldError(name, checkField(name, el.tagName === 'SELECT'));
			});
			el.addEventListener('blur', () => {
				if (!el.value && !state.submitted) return;
				state.touched.add(name);
				setFieldError(name, checkField(name, true));
			});
		}
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			submitRequest();
		});
	}

	function formBody() {
		const body = {
			addresses: splitList($('f-addresses').value),
			use_case: $('f-use_case').value,
		};
		const desc = $('f-description').value;
		if (desc.trim()) body.description = desc;
		const domains = splitList($('f-sender_domains').value);
		if (domains.length) body.sender_domains = domains;
		const vol = $('f-expected_daily_volume').value.trim().replace(/[_\s]/g, '');
		if (vol) body.expected_daily_volume = /^\d+$/.test(vol) ? Number(vol) : vol;
		const email = $('f-contact_email').value.trim();
		if (email) body.contact_email = email;
		return body;
	}

	/* Summary above the form: every problem, each a button to its field. */
	function showSummary(items) {
		const box = $('form-summary');
		const list = $('form-summary-list');
		clear(list);
		if (!items.length) {
			show(box, false);
			return;
		}
		for (const it of items) {
			const li = h('li');
			if (it.field) {
				const b = h('button', { type: 'button', class: 'linklike' }, it.text);
				b.addEventListener('click', () => $(`f-${it.field}`).focus());
				li.appendChild(b);
			} else {
				li.textContent = it.text;
			}
			list.appendChild(li);
		}
		show(box, true);
		box.focus();
	}

	const FIELD_LABEL = {
		addresses: 'Addresses',
		use_case: 'What the mail is',
		description: 'Description',
		sender_domains: 'Sender domains',
		expected_daily_volume: 'Messages per day',
		contact_email: 'Contact e-mail',
	};

	/*
	 * The server's answer to a refused submission, put next to the fields:
	 * errors[] entries name "addresses[2]" or "contact_email"; a problem with
	 * no list may still name one field (address_not_held names "addresses").
	 */
	function showServerErrors(e, body) {
		const p = e.problem || {};
		const perField = {};
		const general = [];
		const list = Array.isArray(p.errors) && p.errors.length ? p.errors
			: (p.field ? [{ field: p.field, code: p.code, detail: p.detail }] : []);
		for (const it of list) {
			const m = /^([a-z_]+)(?:\[(\d+)\])?$/.exec(String(it.field || ''));
			const name = m && FORM_FIELDS.includes(m[1]) ? m[1] : null;
			let text = String(it.detail || it.code || 'not acceptable');
			if (name && m[2] !== undefined) {
				const i = Number(m[2]);
				const arr = body[name];
				const entry = Array.isArray(arr) && i < arr.length ? arr[i] : null;
				text = entry !== null ? `“${entry}” (entry ${i + 1}): ${text}` : `entry ${i + 1}: ${text}`;
			}
			if (name && !m[2] && p.hint && list.length === 1) text += ` — ${p.hint}`;
			if (name) (perField[name] = perField[name] || []).push(text);
			else general.push(`${it.field ? `${it.field}: ` : ''}${text}`);
		}
		if (!list.length) general.push(problemText(e));
		const summary = [];
		for (const name of FORM_FIELDS) {
			if (perField[name]) {
				setFieldError(name, perField[name]);
				for (const t of perField[name]) summary.push({ field: name, text: `${FIELD_LABEL[name]}: ${t}` });
			}
		}
		for (const t of general) summary.push({ text: t });
		showSummary(summary);
	}

	function randomKey() {
		const b = new Uint8Array(16);
		window.crypto.getRandomValues(b);
		return `web-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
	}

	async function submitRequest() {
		state.submitted = true;
		const summary = [];
		for (const name of FORM_FIELDS) {
			const errs = checkField(name, true);
			setFieldError(name, errs);
			for (const t of errs) summary.push({ field: name, text: `${FIELD_LABEL[name]}: ${t}` });
		}
		if (summary.length) {
			showSummary(summary);
			return;
		}
		showSummary([]);
		const body = formBody();
		// the same body sent again (a retry after a lost answer) carries the
		// same Idempotency-Key, so it is filed once; another body gets a new key
		const json = JSON.stringify(body);
		if (!state.idem || state.idem.json !== json) state.idem = { json, key: randomKey() };
		const btn = $('request-submit');
		btn.disabled = true;
		btn.textContent = 'Filing…';
		try {
			const req = await api('POST', '/v1/requests', body, { 'Idempotency-Key': state.idem.key });
			state.idem = null;
			$('request-form').reset();
			state.submitted = false;
			state.touched.clear();
			for (const name of FORM_FIELDS) setFieldError(name, []);
			announce(`Request filed for ${req.addresses.join(', ')}: ${STATUS_TEXT[req.status] || req.status}.`);
			location.hash = `#/requests/${encodeURIComponent(req.id)}`;
		} catch (e) {
			if (e.status === 401) return;
			showServerErrors(e, body);
		} finally {
			btn.disabled = false;
			btn.textContent = 'File the request';
		}
	}

	// ------------------------------------------------------------ the list

	function initList() {
		$('filter-status').addEventListener('change', () => {
			const s = $('filter-status').value;
			location.hash = s ? `#/requests?status=${encodeURIComponent(s)}` : '#/requests';
		});
		$('filter-form').addEventListener('submit', (ev) => ev.preventDefault());
		$('requests-more').addEventListener('click', () => loadList(true));
	}

	function requestCard(r) {
		const addrs = Array.isArray(r.addresses) ? r.addresses : [];
		return h('li', { class: 'card', 'data-id': r.id },
			h('h3', { class: 'card-title' },
				h('a', { href: `#/requests/${encodeURIComponent(r.id)}` }, addrs.join(', ') || `Request ${shortId(r.id)}`)),
			h('p', { class: 'card-meta' },
				statusBadge(r.status), ' ',
				h('span', null, USE_CASE_TEXT[r.use_case] || r.use_case || ''),
				' · filed ', timeEl(r.created_at)));
	}

	async function loadList(more) {
		const list = $('requests-list');
		const err = $('requests-error');
		const btn = $('requests-more');
		show(err, false);
		if (!more) {
			state.listCursor = null;
			clear(list);
			show($('requests-empty'), false);
			list.setAttribute('aria-busy', 'true');
		}
		const q = new URLSearchParams();
		if (state.listStatus) q.set('status', state.listStatus);
		q.set('limit', '20');
		if (more && state.listCursor) q.set('cursor', state.listCursor);
		btn.disabled = true;
		const seq = ++state.listSeq;
		try {
			const page = await api('GET', `/v1/requests?${q}`);
			// a newer load (another filter) or another view won
			if (state.view !== 'requests' || seq !== state.listSeq) return;
			const items = (page && page.items) || [];
			let first = null;
			for (const r of items) {
				const li = requestCard(r);
				list.appendChild(li);
				if (!first) first = li;
			}
			state.listCursor = page && page.next_cursor ? page.next_cursor : null;
			show(btn, !!state.listCursor);
			if (!more) {
				const empty = $('requests-empty');
				show(empty, items.length === 0);
				if (items.length === 0 && state.listStatus) {
					clear(empty);
					append(empty, [`No ${(STATUS_TEXT[state.listStatus] || state.listStatus).toLowerCase()} requests. `,
						h('a', { href: '#/requests' }, 'Show all requests'), '.']);
				} else if (items.length === 0) {
					clear(empty);
					append(empty, ['No requests yet. ', h('a', { href: '#/new' }, 'File a new request'), '.']);
				}
			} else {
				announce(`${items.length} more request${items.length === 1 ? '' : 's'} shown.`);
				if (first) first.querySelector('a').focus();
			}
		} catch (e) {
			if (e.status === 401) return;
			err.textContent = `The requests could not be loaded: ${problemText(e)}`;
			show(err, true);
		} finally {
			btn.disabled = false;
			list.removeAttribute('aria-busy');
		}
	}

	// ------------------------------------------------------------ one request

	function dlRow(dl, term, ...value) {
		dl.appendChild(h('dt', null, term));
		dl.appendChild(h('dd', null, ...value));
	}

	function evidenceText(ev) {
		if (ev === null || ev === undefined) return '';
		if (typeof ev === 'string') return ev;
		try {
			return JSON.stringify(ev, null, 2);
		} catch (e) {
			return String(ev);
		}
	}

	function renderChecks(checks) {
		const sec = h('section', { class: 'block' },
			h('h3', { id: 'checks-h' }, 'Checks'));
		if (!checks || !checks.length) {
			sec.appendChild(h('p', null, 'No checks yet: they run when the request is vetted.'));
			return sec;
		}
		const ul = h('ul', { class: 'checks' });
		for (const c of checks) {
			const li = h('li', { class: `check outcome-${safeClass(c.outcome)}` },
				h('p', { class: 'check-head' },
					h('span', { class: `badge outcome-${safeClass(c.outcome)}` }, OUTCOME_TEXT[c.outcome] || c.outcome),
					' ', h('strong', null, c.name || 'check'),
					c.subject ? [' — ', h('span', { class: 'mono' }, c.subject)] : null));
			if (c.hint) li.appendChild(h('p', { class: 'check-hint' }, h('span', { class: 'label' }, 'What to do: '), c.hint));
			const ev = evidenceText(c.evidence);
			if (ev && ev !== '{}') {
				li.appendChild(h('details', { class: 'evidence' },
					h('summary', null, 'What was seen'),
					h('pre', null, ev)));
			}
			ul.appendChild(li);
		}
		sec.appendChild(ul);
		return sec;
	}

	function renderDecision(d, status) {
		const sec = h('section', { class: 'block' },
			h('h3', { id: 'decision-h' }, 'Decision'));
		if (!d) {
			sec.appendChild(h('p', null, 'No decision yet.'));
			return sec;
		}
		if (status === 'pending' || status === 'vetting') {
			sec.appendChild(h('p', { class: 'note' }, 'The request is being vetted again; this is the earlier decision.'));
		}
		const dl = h('dl', { class: 'facts' });
		dlRow(dl, 'Outcome', h('span', { class: `badge decision-${safeClass(d.decision)}` }, DECISION_TEXT[d.decision] || d.decision));
		if (Array.isArray(d.reason_codes) && d.reason_codes.length) {
			const ul = h('ul', { class: 'codes' });
			for (const c of d.reason_codes) ul.appendChild(h('li', null, h('code', null, c)));
			dlRow(dl, 'Reasons', ul);
		}
		if (d.message) dlRow(dl, 'Message', h('span', { class: 'prewrap' }, d.message));
		if (d.reapply_after) dlRow(dl, 'You may ask again after', timeEl(d.reapply_after));
		if (d.policy_version) dlRow(dl, 'Policy version', d.policy_version);
		if (d.decided_at) dlRow(dl, 'Decided', timeEl(d.decided_at));
		sec.appendChild(dl);
		return sec;
	}

	function renderMessages(msgs) {
		const sec = h('section', { class: 'block' },
			h('h3', { id: 'messages-h' }, 'Messages'));
		if (!msgs || !msgs.length) {
			sec.appendChild(h('p', null, 'No messages.'));
			return sec;
		}
		const ol = h('ol', { class: 'messages' });
		const who = { tenant: 'You', reviewer: 'Reviewer', system: 'p25' };
		for (const m of msgs) {
			ol.appendChild(h('li', { class: `message role-${safeClass(m.role)}` },
				h('p', { class: 'message-head' }, h('strong', null, who[m.role] || m.role), ' · ', timeEl(m.created_at)),
				h('p', { class: 'prewrap' }, m.body)));
		}
		sec.appendChild(ol);
		return sec;
	}

	function renderActions(r) {
		const sec = h('section', { class: 'block' },
			h('h3', { id: 'actions-h' }, 'What you can do'));
		const status = h('p', { class: 'action-status', id: 'action-status', 'aria-live': 'polite' });
		let any = false;

		if (r.status === 'needs_info') {
			any = true;
			const form = h('form', { id: 'answer-form', novalidate: true },
				h('div', { class: 'field' },
					h('label', { for: 'answer-body' }, 'Your answer to the reviewers'),
					h('p', { class: 'hint', id: 'answer-body-hint' }, 'Sending it puts the request back in the queue to be vetted again.'),
					h('textarea', { id: 'answer-body', name: 'body', rows: 4, 'aria-describedby': 'answer-body-hint answer-body-error' }),
					h('p', { class: 'field-error', id: 'answer-body-error', 'aria-live': 'polite' })),
				h('button', { type: 'submit', id: 'answer-submit' }, 'Send the answer'));
			form.addEventListener('submit', async (ev) => {
				ev.preventDefault();
				const ta = $('answer-body');
				const text = ta.value;
				const errBox = $('answer-body-error');
				const setErr = (m) => {
					errBox.textContent = m;
					if (m) ta.setAttribute('aria-invalid', 'true');
					else ta.removeAttribute('aria-invalid');
				};
				if (!text.trim()) {
					setErr('Write an answer first.');
					ta.focus();
					return;
				}
				if (utf8Length(text) > 4000) {
					setErr('At most 4000 characters.');
					ta.focus();
					return;
				}
				setErr('');
				try {
					await api('POST', `/v1/requests/${encodeURIComponent(r.id)}/messages`, { body: text });
					announce('Answer sent; the request will be vetted again.');
					loadDetail(r.id, true);
				} catch (e) {
					if (e.status === 401) return;
					const p = e.problem || {};
					const fe = Array.isArray(p.errors) ? p.errors.find((x) => x.field === 'body') : null;
					setErr(fe ? fe.detail : problemText(e));
					ta.focus();
				}
			});
			sec.appendChild(form);
		}

		if (r.status === 'denied' || r.status === 'needs_info') {
			any = true;
			const btn = h('button', { type: 'button', class: 'secondary', id: 'recheck' }, 'Check again');
			const help = h('p', { class: 'hint', id: 'recheck-hint' },
				'Fixed what the checks or the decision named (a listing, reverse DNS, SPF)? Ask for the checks to run again.');
			btn.setAttribute('aria-describedby', 'recheck-hint');
			btn.addEventListener('click', async () => {
				btn.disabled = true;
				try {
					await api('POST', `/v1/requests/${encodeURIComponent(r.id)}/recheck`);
					announce('Recheck asked for; the request will be vetted again.');
					loadDetail(r.id, true);
				} catch (e) {
					if (e.status === 401) return;
					status.textContent = (e.status === 404 || e.status === 405 || e.status === 501)
						? 'Rechecks are not available yet. File a new request once the reasons are fixed.'
						: `The recheck was refused: ${problemText(e)}`;
					btn.disabled = false;
				}
			});
			sec.appendChild(h('div', { class: 'action' }, help, btn));
		}

		if (OPEN_STATES.includes(r.status)) {
			any = true;
			const btn = h('button', { type: 'button', class: 'danger', id: 'withdraw' }, 'Withdraw this request');
			const confirmBox = h('div', { class: 'confirm', id: 'withdraw-confirm', role: 'group', 'aria-labelledby': 'withdraw-q', hidden: true },
				h('p', { id: 'withdraw-q' }, 'Withdraw this request? It stops being vetted and cannot be reopened.'),
				h('div', { class: 'row' },
					h('button', { type: 'button', class: 'danger', id: 'withdraw-yes' }, 'Yes, withdraw it'),
					h('button', { type: 'button', class: 'secondary', id: 'withdraw-no' }, 'Keep it')));
			btn.addEventListener('click', () => {
				show(confirmBox, true);
				btn.setAttribute('aria-expanded', 'true');
				confirmBox.querySelector('#withdraw-no').focus();
			});
			btn.setAttribute('aria-expanded', 'false');
			btn.setAttribute('aria-controls', 'withdraw-confirm');
			confirmBox.querySelector('#withdraw-no').addEventListener('click', () => {
				show(confirmBox, false);
				btn.setAttribute('aria-expanded', 'false');
				btn.focus();
			});
			confirmBox.querySelector('#withdraw-yes').addEventListener('click', async (ev) => {
				ev.currentTarget.disabled = true;
				try {
					await api('POST', `/v1/requests/${encodeURIComponent(r.id)}/withdraw`);
					announce('The request was withdrawn.');
					loadDetail(r.id, true);
				} catch (e) {
					if (e.status === 401) return;
					status.textContent = `The request could not be withdrawn: ${problemText(e)}`;
					show(confirmBox, false);
					btn.focus();
				}
			});
			sec.appendChild(h('div', { class: 'action' }, btn, confirmBox));
		}

		if (!any) sec.appendChild(h('p', null, r.status === 'approved'
			? 'Nothing: the request was approved.'
			: 'Nothing: the request is closed. You can file a new one.'));
		sec.appendChild(status);
		return sec;
	}

	function renderDetail(r) {
		const body = $('detail-body');
		clear(body);
		$('detail-h').textContent = `Request ${shortId(r.id)}`;
		document.title = `Request ${shortId(r.id)} — p25`;

		const dl = h('dl', { class: 'facts' });
		dlRow(dl, 'Status', statusBadge(r.status));
		const addrs = h('ul', { class: 'plain mono' });
		for (const a of r.addresses || []) addrs.appendChild(h('li', null, a));
		dlRow(dl, 'Addresses', addrs);
		dlRow(dl, 'What the mail is', USE_CASE_TEXT[r.use_case] || r.use_case || '');
		if (r.description) dlRow(dl, 'Description', h('span', { class: 'prewrap' }, r.description));
		if (Array.isArray(r.sender_domains) && r.sender_domains.length) dlRow(dl, 'Sender domains', r.sender_domains.join(', '));
		if (r.expected_daily_volume !== null && r.expected_daily_volume !== undefined) {
			dlRow(dl, 'Messages per day', String(r.expected_daily_volume));
		}
		if (r.contact_email) dlRow(dl, 'Contact e-mail', r.contact_email);
		dlRow(dl, 'Filed', timeEl(r.created_at));
		dlRow(dl, 'Last change', timeEl(r.updated_at));
		dlRow(dl, 'Request id', h('span', { class: 'mono' }, r.id));
		if (Array.isArray(r.exemptions) && r.exemptions.length) {
			const ul = h('ul', { class: 'plain mono' });
			for (const x of r.exemptions) ul.appendChild(h('li', null, x));
			dlRow(dl, 'Exemptions', ul);
		}
		body.appendChild(h('section', { class: 'block' },
			h('h3', { id: 'summary-h' }, 'Summary'), dl));
		if (r.status === 'pending' || r.status === 'vetting') {
			body.appendChild(h('p', { class: 'note' }, 'This request is being vetted; this page updates itself.'));
		}
		body.appendChild(renderActions(r));
		body.appendChild(renderDecision(r.decision, r.status));
		body.appendChild(renderChecks(r.checks));
		body.appendChild(renderMessages(r.messages));
	}

	async function loadDetail(id, keepFocus) {
		const err = $('detail-error');
		stopPolling();
		try {
			const r = await api('GET', `/v1/requests/${encodeURIComponent(id)}`);
			if (state.view !== 'detail' || state.detailId !== id) return;
			show(err, false);
			state.detailVersion = r.version;
			const had = document.activeElement && document.activeElement.id;
			renderDetail(r);
			if (keepFocus) {
				// an action re-rendered the page: put focus back somewhere sensible
				const again = had && $(had);
				(again || $('detail-h')).focus();
			}
			if (r.status === 'pending' || r.status === 'vetting') startPolling(id);
		} catch (e) {
			if (e.status === 401) return;
			if (state.view !== 'detail') return;
			clear($('detail-body'));
			$('detail-h').textContent = 'Request';
			err.textContent = e.status === 404 ? 'There is no such request among yours.'
				: `The request could not be loaded: ${problemText(e)}`;
			show(err, true);
		}
	}

	function startPolling(id) {
		stopPolling();
		state.pollTimer = window.setTimeout(async () => {
			state.pollTimer = null;
			if (state.view !== 'detail' || state.detailId !== id || document.hidden) {
				if (state.view === 'detail' && state.detailId === id) startPolling(id);
				return;
			}
			try {
				const r = await api('GET', `/v1/requests/${encodeURIComponent(id)}`);
				if (state.view !== 'detail' || state.detailId !== id) return;
				if (r.version !== state.detailVersion) {
					state.detailVersion = r.version;
					renderDetail(r);
					announce(`The request is now: ${STATUS_TEXT[r.status] || r.status}.`);
				}
				if (r.status === 'pending' || r.status === 'vetting') startPolling(id);
			} catch (e) {
				if (e.status !== 401) startPolling(id);
			}
		}, POLL_MS);
	}

	function stopPolling() {
		if (state.pollTimer) window.clearTimeout(state.pollTimer);
		state.pollTimer = null;
	}

	// ------------------------------------------------------------ lookup

	function initLookup() {
		$('lookup-form').addEventListener('submit', (ev) => {
			ev.preventDefault();
			const ip = $('lookup-ip').value.trim();
			const input = $('lookup-ip');
			const box = $('lookup-ip-error');
			const p = ip.indexOf('/') < 0 ? parseEntry(ip) : { error: 'is a prefix: enter one address' };
			if (!ip || p.error) {
				box.textContent = ip ? `“${ip}” ${p.error}.` : 'Enter an address.';
				input.setAttribute('aria-invalid', 'true');
				input.focus();
				return;
			}
			box.textContent = '';
			input.removeAttribute('aria-invalid');
			const want = `#/lookup?ip=${encodeURIComponent(ip)}`;
			if (location.hash === want) lookup(ip);
			else location.hash = want;
		});
	}

	async function lookup(ip) {
		const out = $('lookup-result');
		clear(out);
		// the hash can be edited by hand: the same check as the form
		if (ip.indexOf('/') >= 0 || parseEntry(ip).error) {
			out.appendChild(h('p', { class: 'view-error', id: 'lookup-answer', role: 'alert' },
				`“${ip}” is not a single IPv4 or IPv6 address.`));
			return;
		}
		out.setAttribute('aria-busy', 'true');
		try {
			// checked above: only hex digits, dots and colons, safe in a path as is
			const a = await api('GET', `/v1/addresses/${ip}`);
			if (state.view !== 'lookup') return;
			const open = !!a.port25_open;
			const card = h('div', { class: `result ${open ? 'is-open' : 'is-closed'}`, id: 'lookup-answer', 'data-state': a.state },
				h('h3', null, LOOKUP_TEXT[a.state] || (open ? 'Port 25 is open' : 'Port 25 is closed')));
			const dl = h('dl', { class: 'facts' });
			dlRow(dl, 'Address', h('span', { class: 'mono' }, a.address));
			if (a.held_in) dlRow(dl, 'Held in your inventory as', h('span', { class: 'mono' }, a.held_in));
			dlRow(dl, 'Port 25', open ? 'open' : 'closed');
			dlRow(dl, 'State', h('code', null, a.state));
			if (a.since) dlRow(dl, 'Since', timeEl(a.since));
			if (a.exemption) {
				const x = a.exemption;
				dlRow(dl, 'Exemption', h('span', { class: 'mono' }, `${x.cidr} — ${x.status}`));
				if (x.status_reason) dlRow(dl, 'Why', h('span', { class: 'prewrap' }, x.status_reason));
				if (x.expires_at) dlRow(dl, 'Expires', timeEl(x.expires_at));
			}
			const reqId = (a.request && a.request.id) || (a.exemption && a.exemption.request);
			if (reqId) {
				dlRow(dl, 'Request', h('a', { href: `#/requests/${encodeURIComponent(reqId)}` },
					`Request ${shortId(reqId)}`, a.request && a.request.status ? ` (${STATUS_TEXT[a.request.status] || a.request.status})` : ''));
			}
			if (a.decision) {
				if (Array.isArray(a.decision.reason_codes) && a.decision.reason_codes.length) {
					dlRow(dl, 'Reasons', a.decision.reason_codes.join(', '));
				}
				if (a.decision.message) dlRow(dl, 'Message', h('span', { class: 'prewrap' }, a.decision.message));
				if (a.decision.reapply_after) dlRow(dl, 'You may ask again after', timeEl(a.decision.reapply_after));
			}
			card.appendChild(dl);
			if (a.hint) card.appendChild(h('p', { class: 'check-hint' }, h('span', { class: 'label' }, 'What to do: '), a.hint));
			if (a.state === 'no_request' || a.state === 'exemption_ended') {
				card.appendChild(h('p', null, h('a', { href: '#/new' }, 'File a request for this address')));
			}
			out.appendChild(card);
		} catch (e) {
			if (e.status === 401) return;
			const p = e.problem || {};
			let text;
			if (e.status === 404) text = `${p.detail || `${ip} is not in your address inventory`}. Only addresses your account holds can be looked up.`;
			else if (e.status === 400) text = p.detail || `${ip} is not a single IPv4 or IPv6 address.`;
			else text = `The lookup failed: ${problemText(e)}`;
			out.appendChild(h('p', { class: 'view-error', id: 'lookup-answer', role: 'alert' }, text));
		} finally {
			out.removeAttribute('aria-busy');
		}
	}

	// ------------------------------------------------------------ routing

	const VIEWS = ['signin', 'new', 'requests', 'detail', 'lookup'];
	const TITLES = {
		signin: 'Sign in — p25',
		new: 'New request — p25',
		requests: 'My requests — p25',
		detail: 'Request — p25',
		lookup: 'Is port 25 open? — p25',
	};

	function parseHash() {
		const raw = location.hash.replace(/^#/, '');
		const q = raw.indexOf('?');
		const path = q < 0 ? raw : raw.slice(0, q);
		const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
		const parts = path.split('/').filter(Boolean).map((x) => {
			try {
				return decodeURIComponent(x);
			} catch (e) {
				return x;
			}
		});
		return { parts, params };
	}

	function setView(name, focus) {
		const changed = state.view !== name;
		state.view = name;
		state.detailId = name === 'detail' ? state.detailId : null;
		for (const v of VIEWS) show($(`view-${v}`), v === name);
		document.title = TITLES[name];
		for (const a of document.querySelectorAll('[data-nav]')) {
			if (a.getAttribute('data-nav') === name) a.setAttribute('aria-current', 'page');
			else a.removeAttribute('aria-current');
		}
		const heading = $(`${name === 'signin' ? 'signin' : name}-h`);
		if (focus && changed && heading) heading.focus();
	}

	let firstRoute = true;

	function route() {
		stopPolling();
		// the first view of a page load keeps the browser's own focus
		const focus = !firstRoute;
		firstRoute = false;
		if (!state.token) {
			setView('signin', focus);
			return;
		}
		const { parts, params } = parseHash();
		if (parts[0] === 'requests' && parts[1]) {
			state.detailId = parts[1];
			setView('detail', false);
			clear($('detail-body'));
			show($('detail-error'), false);
			$('detail-h').textContent = 'Request';
			loadDetail(parts[1]);
			if (focus) $('detail-h').focus();
		} else if (parts[0] === 'new') {
			setView('new', focus);
		} else if (parts[0] === 'lookup') {
			setView('lookup', focus);
			const ip = params.get('ip');
			if (ip) {
				$('lookup-ip').value = ip;
				lookup(ip);
			} else {
				clear($('lookup-result'));
			}
		} else {
			const s = params.get('status') || '';
			state.listStatus = STATUS_TEXT[s] ? s : '';
			$('filter-status').value = state.listStatus;
			// a filter change keeps focus on the filter; arriving moves it to the heading
			setView('requests', focus);
			loadList(false);
		}
	}

	// ------------------------------------------------------------ start

	async function start() {
		initSignin();
		initForm();
		initList();
		initLookup();
		$('skip-link').addEventListener('click', (ev) => {
			ev.preventDefault();
			$('main').focus();
		});
		window.addEventListener('hashchange', route);
		const token = tokens.get();
		if (token) {
			try {
				await signIn(token);
			} catch (e) {
				tokens.remove();
				setFieldError('token', e.status === 401 ? 'Your session has ended. Sign in again.' : problemText(e));
			}
		}
		route();
		document.body.classList.add('ready');
	}

	P25.onReady(start);
}());
