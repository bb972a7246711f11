// lib.mjs — what the browser tests (tenant.test.mjs, console.test.mjs) share:
// launching Debian's headless Chromium through playwright-core, a fresh page
// that records every problem it reports, signing in through a page's token
// form, an axe-core scan and the no-sideways-scroll check.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

export const CHROMIUM = process.env.P25_CHROMIUM || '/usr/bin/chromium';

/** Headless Chromium; fails with the way to install it when it is missing. */
export async function launchBrowser() {
	if (!fs.existsSync(CHROMIUM)) {
		throw new Error(`${CHROMIUM} is missing: run \`bash scripts/deps.sh\` (installs chromium and the npm packages)`);
	}
	return chromium.launch({
		executablePath: CHROMIUM,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
}

/**
 * A fresh browser context and page; every problem the page reports (console
 * errors, which include CSP violations, and page errors) is pushed onto
 * `problems`.
 */
export async function newPage(browser, problems, viewport, opts = {}) {
	const ctx = await browser.newContext({ viewport, ...opts });
	const page = await ctx.newPage();
	page.setDefaultTimeout(20000);
	page.on('console', (m) => {
		if (m.type() === 'error') problems.push(`console: ${m.text()}`);
	});
	page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
	return page;
}

/** Opens `url`, pastes the token into the sign-in form and waits for the navigation `nav`. */
export async function signInAt(page, url, tok, nav) {
	await page.goto(url);
	await page.getByLabel('Bearer token').fill(tok);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.getByRole('navigation', { name: nav }).waitFor();
}

/**
 * axe-core on the page as it is now: no serious or critical violation.  A
 * scan takes seconds of CPU, so each kind of view is scanned once, in its
 * richest state.
 */
export async function axe(page, what) {
	const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
	const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
	if (bad.length) {
		const text = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.map((n) =>
			`    ${n.target.join(' ')}\n      ${n.failureSummary.replace(/\n/g, '\n      ')}`).join('\n')}`).join('\n');
		process.stderr.write(`axe violations on ${what}:\n${text}\n`);
	}
	assert.equal(bad.length, 0, `axe: ${bad.length} serious/critical violation(s) on ${what}: ${bad.map((v) => v.id).join(', ')}`);
	return r;
}

/** The page is no wider than its viewport (names up to five elements that stick out). */
export async function noHorizontalScroll(page, what) {
	const m = await page.evaluate(() => ({
		scroll: document.documentElement.scrollWidth,
		client: document.documentElement.clientWidth,
		wide: [...document.querySelectorAll('body *')]
			.filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
			.slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
	}));
	assert.ok(m.scroll <= m.client, `${what}: scrolls sideways (${m.scroll} > ${m.client}); too wide: ${m.wide.join(', ')}`);
}
