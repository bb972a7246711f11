/*
 * common.js — what the tenant page (app.js) and the review console
 * (console.js) share: the element builder, the fetch wrapper that turns
 * problem+json answers into ApiError, and the pieces of token sign-in.
 * Loaded (deferred) before each page's own script, it defines one global,
 * window.P25, and nothing else.
 *
 * Plain browser JavaScript, no framework and no build step: the pages are
 * served by p25-api under a strict Content-Security-Policy (scripts and
 * styles from /static only), so nothing here uses inline handlers, inline
 * styles or innerHTML.  Everything the server says — DNS answers, tenants'
 * descriptions, hints and messages — is untrusted and reaches the page only
 * through text nodes (h() and append() below), never as markup.
 */
(function () {
	'use strict';

	const $ = (id) => document.getElementById(id);

	// ------------------------------------------------------------ DOM helpers

	/*
	 * h('p', {class: 'x'}, 'text', child, ...) — an element whose string
	 * children become text nodes.  Attributes go through setAttribute (never
	 * on*: nothing here needs one); the only property set is text
	 * (textContent).  Never markup.
	 */
	function h(tag, attrs, ...children) {
		const el = document.createElement(tag);
		if (attrs) {
			for (const [k, v] of Object.entries(attrs)) {
				if (v === null || v === undefined || v === false) continue;
				if (k === 'text') el.textContent = String(v);
				else el.setAttribute(k, v === true ? '' : String(v));
			}
		}
		append(el, children);
		return el;
	}

	function append(el, children) {
		for (const c of children) {
			if (c === null || c === undefined || c === false) continue;
			if (Array.isArray(c)) append(el, c);
			else if (c instanceof Node) el.appendChild(c);
			else el.appendChild(document.createTextNode(String(c)));
		}
	}

	function clear(el) {
		while (el.firstChild) el.removeChild(el.firstChild);
	}

	function show(el, on) {
		el.hidden = !on;
	}

	/* Says `text` in the page's live region (#announce). */
	function announce(text) {
		const a = $('announce');
		// cleared first so the same sentence twice is announced twice
		a.textContent = '';
		window.setTimeout(() => { a.textContent = text; }, 50);
	}

	function shortId(id) {
		return String(id || '').slice(0, 8);
	}

	// ------------------------------------------------------------ the API

	class ApiError extends Error {
		constructor(status, problem) {
			super(problem?.detail || problem?.title || `HTTP ${status}`);
			this.status = status;
			this.problem = problem || {};
		}
	}

	/*
	 * fetch with a bearer token (when given) and a JSON body (when given).
	 * Resolves to { status, json, etag } for a 2xx answer; otherwise throws
	 * ApiError carrying the problem+json body (status 0: no answer at all).
	 * A 401 calls onUnauthorized first, so a page can end its session.
	 */
	async function request(method, path, { body, headers = {}, token = null, cache = 'no-cache', onUnauthorized } = {}) {
		const hd = { Accept: 'application/json, application/problem+json', ...headers };
		if (token) hd.Authorization = `Bearer ${token}`;
		const init = { method, headers: hd, credentials: 'omit', cache };
		if (body !== undefined) {
			hd['Content-Type'] = 'application/json';
			init.body = JSON.stringify(body);
		}
		let res;
		try {
			res = await fetch(path, init);
		} catch (e) {
			throw new ApiError(0, { title: 'Network error',
				detail: 'The server could not be reached. Check your connection and try again.' });
		}
		let json = null;
		const text = await res.text();
		if (text) {
			try {
				json = JSON.parse(text);
			} catch (e) {
				json = null;
			}
		}
		if (!res.ok) {
			if (res.status === 401 && onUnauthorized) onUnauthorized();
			throw new ApiError(res.status, json);
		}
		return { status: res.status, json, etag: res.headers.get('ETag') };
	}

	// ------------------------------------------------------------ sign in

	const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

	/* What was pasted into a token field, without blanks or a "Bearer " prefix. */
	function pastedToken(field) {
		return field.value.trim().replace(/^Bearer\s+/i, '');
	}

	function hasRole(who, role) {
		return Array.isArray(who?.roles) && who.roles.includes(role);
	}

	/* The token kept in sessionStorage (this tab only); storage may refuse. */
	function tokenStore(key) {
		return {
			get() {
				try {
					return sessionStorage.getItem(key);
				} catch (e) {
					return null;
				}
			},
			set(token) {
				try {
					sessionStorage.setItem(key, token);
				} catch (e) { /* storage refused: the session lasts until reload */ }
			},
			remove() {
				try {
					sessionStorage.removeItem(key);
				} catch (e) { /* nothing kept */ }
			},
		};
	}

	/* The header's "who" box and the navigation, shown when signed in. */
	function showSignedIn(on) {
		show($('who'), on);
		show($('nav'), on);
	}

	function onReady(start) {
		if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
		else start();
	}

	window.P25 = Object.freeze({
		$, h, append, clear, show, announce, shortId,
		ApiError, request,
		JWT_RE, pastedToken, hasRole, tokenStore, showSignedIn, onReady,
	});
}());
