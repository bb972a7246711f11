/*
 * monitor.c — the `monitor` job kind: scheduled DNSBL re-checks of active
 * exemptions.
 *
 * Each exemption has next_check_at, first set at a random point of the
 * interval (migrations/0005), so the re-checks of all exemptions spread
 * evenly over the interval instead of coming in bursts.  A run takes the
 * due ones in batches and starts every DNSBL query of a batch at once on
 * the thread's c-ares channel, which keeps at most P25_DNS_MAX_INFLIGHT of
 * them on the wire and queues the rest (core/dns.c), and then:
 *   - a listing the policy denies (SBL, CSS, XBL, DROP by default)
 *     suspends the exemption at once (core/suspend.c: revoke event, review
 *     item, tenant notified, evidence kept);
 *   - a listing the policy sends to review (unknown codes) raises a review
 *     item and leaves the exemption active;
 *   - a DNS error never suspends; after monitor_error_review consecutive
 *     errors it raises a review item;
 *   - otherwise the error count resets.
 * Then next_check_at moves on by one interval (re-spread at random if the
 * workers were down long enough for it to still be in the past).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "p25/db.h"
#include "p25/dns.h"
#include "p25/err.h"
#include "p25/ipaddr.h"
#include "p25/log.h"
#include "p25/suspend.h"
#include "worker.h"

/*
 * Exemptions per batch: one SELECT, one DNS wait, one transaction for the
 * rest.  The DNS window (core/dns.c), not the batch, keeps a resolver's
 * socket buffers from overflowing (unwindowed, a batch of 250 lost 173 of
 * 2000 answers and one of 2000 lost half); the batch bounds how long one
 * takes when the DNSBL is down (about 250 / P25_DNS_MAX_INFLIGHT first-try
 * timeouts plus one query's tries: 10 s with the defaults), so a run still
 * ends inside its budget plus one batch.
 */
#define MONITOR_BATCH 250
/* A run stops well inside the job lease, so a lease never expires under a
 * running monitor (which would run the same exemptions twice); the ticker
 * queues the next run. */
#define MONITOR_BUDGET_S 20

P25_STMT(mon_due, 1,
    "SELECT id, prefix::text, request_id, check_errors, tenant_id FROM exemptions"
    " WHERE status = 'active' AND next_check_at <= now()"
    " ORDER BY next_check_at LIMIT $1::integer");
P25_STMT(mon_next, 3,
    "UPDATE exemptions SET check_errors = CASE WHEN id = ANY($2::uuid[]) THEN check_errors + 1"
    "   ELSE 0 END,"
    " next_check_at = CASE WHEN next_check_at + $3::integer * interval '1 second' > now()"
    "   THEN next_check_at + $3::integer * interval '1 second'"
    "   ELSE now() + random() * $3::integer * interval '1 second' END"
    " WHERE id = ANY($1::uuid[]) AND status = 'active'"
    " RETURNING id, check_errors, request_id");
/* the check joins the request's representation: its version moves with it
 * (the ETag and p25-api's cache of request bodies rely on that) */
P25_STMT(mon_check, 6,
    "WITH q AS (UPDATE requests SET version = version + 1, updated_at = now()"
    "   WHERE id = $1 AND tenant_id = $6 RETURNING id, tenant_id, vetting_round)"
    " INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)"
    " SELECT id, tenant_id, vetting_round, 'dnsbl', $2, $3, $4::jsonb, $5 FROM q");

/* Appends s to a PostgreSQL array literal in b (cap bytes). */
static void
arr_add(char *b, size_t cap, const char *s)
{
	size_t n = strlen(b);

	if (n == 0) {
		snprintf(b, cap, "{%s}", s);
		return;
	}
	b[n - 1] = '\0';	/* drop '}' */
	snprintf(b + n - 1, cap - (n - 1), ",%s}", s);
}

/* The worst finding for one exemption among checks. */
struct finding {
	const struct p25_check *deny, *review;
	bool error;
};

static int
monitor_batch(struct p25_db *db, struct p25_dns *dns, int *handled, struct p25_err *err)
{
	struct p25_prefix *addrs = NULL;
	struct finding *f = NULL;
	struct p25_checks checks = { 0 };
	PGresult *res = NULL, *up = NULL;
	char *ids = NULL, *errs = NULL, interval[16], lim[16];
	size_t cap;
	int n, i, rc = -1;

	snprintf(lim, sizeof(lim), "%d", MONITOR_BATCH);
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		return -1;
	{
		const char *p[1] = { lim };
		res = p25_db_exec(db, &mon_due, p, err);
	}
	p25_db_rollback(db);
	if (!res)
		return -1;
	n = PQntuples(res);
	*handled = n;
	if (n == 0) {
		PQclear(res);
		return 0;
	}
	addrs = calloc((size_t)n, sizeof(*addrs));
	f = calloc((size_t)n, sizeof(*f));
	cap = (size_t)n * 40 + 8;
	ids = calloc(1, cap);
	errs = calloc(1, cap);
	if (!addrs || !f || !ids || !errs) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct p25_err e = { 0 };
		if (p25_prefix_parse(PQgetvalue(res, i, 1), &addrs[i], &e) != 0)
			memset(&addrs[i], 0, sizeof(addrs[i]));
		p25_err_clear(&e);
	}
	if (p25_vet_dns(&wctx.cfg, dns, addrs, n, NULL, P25_VET_DNSBL, &checks, err) != 0)
		goto out;
	for (i = 0; i < checks.n; i++) {
		const struct p25_check *k = &checks.v[i];
		enum p25_action a;
		if (k->prefix_idx < 0 || k->prefix_idx >= n || !k->code[0])
			continue;
		if (k->outcome == P25_ERROR) {
			f[k->prefix_idx].error = true;
			continue;
		}
		a = p25_policy_action(&wctx.policy, k->code);
		if (a == P25_ACT_DENY && !f[k->prefix_idx].deny)
			f[k->prefix_idx].deny = k;
		else if (a == P25_ACT_NEEDS_REVIEW && !f[k->prefix_idx].review)
			f[k->prefix_idx].review = k;
	}
	/* suspensions: one transaction each, the port closes as each commits */
	for (i = 0; i < n; i++) {
		const struct p25_check *k = f[i].deny;
		struct p25_err e = { 0 };
		char reason[500], *ev;
		json_t *listed;

		if (!k) {
			arr_add(ids, cap, PQgetvalue(res, i, 0));
			if (f[i].error)
				arr_add(errs, cap, PQgetvalue(res, i, 0));
			continue;
		}
		{
			json_t *all = json_object_get(k->evidence, "listed"), *l;
			size_t li;
			listed = json_array_get(all, 0);
			json_array_foreach(all, li, l)
				if (strcmp(json_string_value(json_object_get(l, "code")), k->code) == 0) {
					listed = l;
					break;
				}
		}
		snprintf(reason, sizeof(reason), "listed in %s (%s, %s): %.300s",
			 json_string_value(json_object_get(k->evidence, "zone")),
			 json_string_value(json_object_get(listed, "list")),
			 json_string_value(json_object_get(listed, "answer")),
			 json_string_value(json_object_get(listed, "txt")));
		ev = json_dumps(k->evidence, JSON_COMPACT);
		if (p25_db_begin_as(db, NULL, "system", &e) == 0) {
			const char *p[6] = { PQgetvalue(res, i, 2), k->subject, "fail", ev, k->hint,
					     PQgetvalue(res, i, 4) };
			int s = ev ? p25_suspend(db, &wctx.policy, PQgetvalue(res, i, 0), "listing",
						 k->code, reason, k->evidence, "system:monitor", &e) : -1;
			if (s == 1 && p25_db_run(db, &mon_check, p, &e) < 0)
				s = -1;
			if (s >= 0 && p25_db_commit(db, &e) == 0)
				p25_info("monitor.suspend", "exemption %s: %s", PQgetvalue(res, i, 0),
					 reason);
			else
				p25_db_rollback(db);
		}
		if (e.status)
			p25_warn("monitor.suspend_failed", "%s: %s", PQgetvalue(res, i, 0), e.detail);
		p25_err_clear(&e);
		free(ev);
	}
	/* the rest: next check time, error counts, review items — one transaction */
	snprintf(interval, sizeof(interval), "%d", wctx.policy.monitor_interval_seconds);
	if (ids[0]) {
		const char *p[3] = { ids, errs[0] ? errs : "{}", interval };
		if (p25_db_begin_as(db, NULL, "system", err) != 0)
			goto out;
		up = p25_db_exec(db, &mon_next, p, err);
		if (!up)
			goto rollback;
		for (i = 0; i < PQntuples(up); i++) {
			int errors = (int)strtol(PQgetvalue(up, i, 1), NULL, 10);
			if (errors == wctx.policy.monitor_error_review &&
			    p25_review_item(db, PQgetvalue(up, i, 2), "system:monitor", "dnsbl_error",
					    "the scheduled DNSBL re-check failed repeatedly: a person "
					    "should look", err) != 0)
				goto rollback;
		}
		for (i = 0; i < n; i++) {
			const struct p25_check *k = f[i].review;
			if (k && !f[i].deny &&
			    p25_review_item(db, PQgetvalue(res, i, 2), "system:monitor", k->code,
					    "the scheduled re-check found a listing the policy sends "
					    "to review", err) != 0)
				goto rollback;
		}
		if (p25_db_commit(db, err) != 0)
			goto out;
	}
	rc = 0;
	goto out;
rollback:
	p25_db_rollback(db);
out:
	PQclear(res);
	PQclear(up);
	p25_checks_free(&checks);
	free(addrs);
	free(f);
	free(ids);
	free(errs);
	return rc;
}

int
p25_job_monitor(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	struct p25_dns *dns = p25_dns_thread(&wctx.cfg, err);
	int handled, total = 0;
	time_t start = time(NULL);
	long budget = wctx.cfg.job_lease / 2 < MONITOR_BUDGET_S ? wctx.cfg.job_lease / 2
								 : MONITOR_BUDGET_S;

	if (!dns)
		return -1;
	do {
		if (monitor_batch(db, dns, &handled, err) != 0)
			return -1;
		total += handled;
	} while (handled == MONITOR_BATCH && time(NULL) - start < budget);
	if (total)
		p25_debug("monitor.done", "re-checked %d exemptions", total);
	return 0;
}
