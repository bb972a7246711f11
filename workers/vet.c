/*
 * vet.c — the `vet` job kind: vets one round of one request.
 *
 * Payload {"request": id, "round": n}.  Three steps:
 *   1. a short transaction moves the request from pending to vetting (and
 *      recognizes a stale job: withdrawn request, newer round);
 *   2. the DNS checks run with no transaction open (core/vetting.c);
 *   3. one transaction re-reads the request under a row lock, adds the
 *      database checks (ownership, account, history), applies the policy,
 *      writes every check row, the decision, the new status, — on approval
 *      — the exemptions and their tokens (p25_issue), the audit row, and
 *      completes the job fenced by its lease.
 * A runner holding several claimed vet jobs runs them as a batch
 * (p25_job_vet_batch, called by workers/queue.c): step 1 for all of them in
 * one statement and one transaction, their DNS checks all at once (one
 * p25_vet_dns_batch: every query of every request in flight together, the
 * zones' test queries and shared SPF lookups sent once), then step 3 for all
 * of them in one transaction — one commit (one WAL flush, one turn of the
 * feed's commit-order lock) per batch instead of two per request.  The rows
 * of a decision go in one call (p25_vet_record, migration 0010); the
 * signing key is unsealed once per batch and the grant feed events are
 * written with their positions by one call before the commit
 * (p25_issue_batched, p25_feed_append in migration 0011).  When a
 * batch transaction fails (a lost lease, a bad row, the connection) it is
 * rolled back whole and its requests are vetted one by one as above.
 * Crash safety: a worker killed anywhere leaves either nothing of step 3 or
 * all of it.  Two workers racing after a lease expiry both reach step 3;
 * the row lock serializes them, the second sees the request already
 * decided (status no longer vetting) and the lease fence refuses the
 * first's completion if it lost the job — so a round is decided once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <jansson.h>

#include "p25/audit.h"
#include "p25/db.h"
#include "p25/dns.h"
#include "p25/err.h"
#include "p25/ipaddr.h"
#include "p25/jobs.h"
#include "p25/validate.h"
#include "p25/log.h"
#include "p25/notify.h"
#include "worker.h"

#define MAX_ADDRS 4096

P25_STMT(vet_load, 1,
    "SELECT status, vetting_round, tenant_id, to_jsonb(sender_domains)::text,"
    " (SELECT jsonb_agg(prefix::text ORDER BY position) FROM request_addresses"
    "   WHERE request_id = r.id)::text"
    " FROM requests r WHERE id = $1 FOR UPDATE");

/* Completes a job that has nothing (more) to do, in its own transaction. */
static int
finish_stale(struct p25_job *job, struct p25_db *db, const char *why, struct p25_err *err)
{
	p25_info("vet.stale", "request %s: %s", json_string_value(json_object_get(job->payload,
		 "request")), why);
	if (p25_job_complete(db, job, err) != 0 || p25_db_commit(db, err) != 0) {
		p25_db_rollback(db);
		return -1;
	}
	return 0;
}

/* The prefixes (JSON array of CIDR text) as a cidr[] literal. */
static char *
input_cidrs(json_t *plist)
{
	size_t i, cap = 3 + (plist ? json_array_size(plist) : 0) * 64, used = 1;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '{';
	for (i = 0; plist && i < json_array_size(plist); i++) {
		int n = snprintf(s + used, cap - used, "%s%s", i ? "," : "",
				 json_string_value(json_array_get(plist, i)));
		if (n < 0 || (size_t)n >= cap - used) {
			free(s);
			return NULL;
		}
		used += (size_t)n;
	}
	snprintf(s + used, cap - used, "}");
	return s;
}

/*
 * Step 3 for one request whose row this transaction has locked and found
 * still vetting in its round: the database checks, the policy, every row of
 * the decision and the job's completion.  No commit: the caller's
 * transaction (one request, or a batch) commits.
 */
static int
decide_locked(struct p25_db *db, struct p25_job *job, const char *rid, const char *tenant,
	      json_int_t round, const char *roundbuf, json_t *plist, struct p25_checks *checks,
	      struct p25_issue_batch *ib, struct p25_err *err)
{
	P25_STMT(record, 11,
	    "SELECT p25_vet_record($1::uuid, $2, $3::integer, $4::jsonb, $5, $6::jsonb, $7, $8,"
	    " $9::integer, $10, $11::jsonb)");
	struct p25_decision dec = { 0 };
	struct p25_facts facts;
	json_t *details = NULL;
	int rc = -1;

	{
		char *cidrs = input_cidrs(plist);
		int frc = cidrs ? p25_facts_load(db, tenant, cidrs, &facts, err) : -1;
		if (!cidrs)
			p25_err_set(err, 503, "out_of_memory", "out of memory");
		free(cidrs);
		if (frc != 0)
			return -1;
	}
	p25_vet_facts(&wctx.policy, &facts, checks);
	p25_policy_decide(&wctx.policy, checks, &dec);
	details = json_pack("{s:s, s:O, s:s, s:I}", "decision", dec.decision,
			    "reason_codes", dec.reason_codes, "policy_version",
			    wctx.policy.version, "round", round);
	{
		json_t *cj = p25_checks_json(checks);
		char *codes = json_dumps(dec.reason_codes, JSON_COMPACT);
		char *aj = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
		char *dj = details ? json_dumps(details, JSON_COMPACT) : NULL;
		char days[16], *nrows = NULL;
		const char *newst = strcmp(dec.decision, "approve") == 0 ? "approved"
				  : strcmp(dec.decision, "deny") == 0 ? "denied" : dec.decision;
		const char *p[11] = { rid, tenant, roundbuf, aj, dec.decision, codes, dec.message,
				      wctx.policy.version, days, newst, dj };
		bool found = false;
		int ok;

		snprintf(days, sizeof(days), "%d", dec.reapply_days);
		if (codes && aj && dj)
			nrows = p25_db_text(db, &record, p, &found, err);
		else
			p25_err_set(err, 503, "out_of_memory", "out of memory");
		/* every check has its evidence row */
		ok = nrows && strtol(nrows, NULL, 10) == checks->n;
		if (nrows && !ok)
			p25_err_set(err, 500, "internal", "%s of %d check rows written", nrows,
				    checks->n);
		free(nrows);
		free(codes);
		free(aj);
		free(dj);
		json_decref(cj);
		if (!ok ||
		    p25_notify(db, tenant, "request.status", rid, newst, dec.decision, err) != 0)
			goto out;
	}
	if (strcmp(dec.decision, "approve") == 0) {
		struct p25_issue_opts o = { wctx.policy.exemption_days, NULL, NULL, -1 };
		if (p25_issue_batched(db, &wctx.issuer, ib, rid, tenant, "system:vetting", &o, NULL,
				      err) != 0)
			goto out;
	}
	if (p25_job_complete(db, job, err) != 0)
		goto out;
	p25_info("vet.decided", "request %s round %lld: %s (%d checks)", rid, (long long)round,
		 dec.decision, checks->n);
	rc = 0;
out:
	p25_decision_free(&dec);
	json_decref(details);
	return rc;
}

/* The addresses of plist (JSON array of CIDR text), parsed; NULL when out of memory. */
static struct p25_prefix *
parse_addrs(json_t *plist, int *naddrs)
{
	struct p25_prefix *addrs = calloc(MAX_ADDRS, sizeof(*addrs));
	size_t i;

	*naddrs = 0;
	for (i = 0; addrs && plist && i < json_array_size(plist) && *naddrs < MAX_ADDRS; i++) {
		struct p25_err e = { 0 };
		if (p25_prefix_parse(json_string_value(json_array_get(plist, i)), &addrs[*naddrs],
				     &e) == 0)
			(*naddrs)++;
		p25_err_clear(&e);
	}
	return addrs;
}

int
p25_job_vet(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(to_vetting, 1, "UPDATE requests SET status = 'vetting', version = version + 1,"
				" updated_at = now() WHERE id = $1");
	const char *rid = json_string_value(json_object_get(job->payload, "request"));
	json_int_t round = json_integer_value(json_object_get(job->payload, "round"));
	struct p25_prefix *addrs = NULL;
	struct p25_checks checks = { 0 };
	struct p25_dns *dns;
	PGresult *res = NULL;
	json_t *domains = NULL, *plist = NULL;
	char tenant[65], roundbuf[24], status[24];
	int naddrs = 0, rc = -1;

	if (!rid || !p25_uuid_ok(rid) || round < 1) {
		p25_err_set(err, 400, "bad_payload", "vet job needs {request: uuid, round: n}");
		return -1;
	}
	snprintf(roundbuf, sizeof(roundbuf), "%lld", (long long)round);

	/* 1. pending → vetting */
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		return -1;
	{
		const char *p[1] = { rid };
		res = p25_db_exec(db, &vet_load, p, err);
	}
	if (!res)
		goto rollback;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return finish_stale(job, db, "no such request", err);
	}
	snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
	snprintf(tenant, sizeof(tenant), "%s", PQgetvalue(res, 0, 2));
	if ((strcmp(status, "pending") != 0 && strcmp(status, "vetting") != 0) ||
	    strtoll(PQgetvalue(res, 0, 1), NULL, 10) != round) {
		PQclear(res);
		return finish_stale(job, db, "request moved on", err);
	}
	domains = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
	plist = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
	PQclear(res);
	res = NULL;
	if (strcmp(status, "pending") == 0) {
		const char *p[1] = { rid };
		if (p25_db_run(db, &to_vetting, p, err) != 1 ||
		    p25_audit(db, "system:vetting", "request.vetting", "request", rid, tenant,
			      NULL, err) != 0)
			goto rollback;
	}
	if (p25_db_commit(db, err) != 0)
		goto out;

	/* 2. DNS, no transaction open */
	addrs = parse_addrs(plist, &naddrs);
	if (!addrs) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	dns = p25_dns_thread(&wctx.cfg, err);
	if (!dns)
		goto out;
	if (p25_vet_dns(&wctx.cfg, dns, addrs, naddrs, domains, P25_VET_ALL, &checks, err) != 0)
		goto out;

	/* 3. decide, in one transaction */
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		goto out;
	{
		const char *p[1] = { rid };
		res = p25_db_exec(db, &vet_load, p, err);
	}
	if (!res)
		goto rollback;
	if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "vetting") != 0 ||
	    strtoll(PQgetvalue(res, 0, 1), NULL, 10) != round) {
		PQclear(res);
		res = NULL;
		rc = finish_stale(job, db, "decided or withdrawn meanwhile", err);
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (decide_locked(db, job, rid, tenant, round, roundbuf, plist, &checks, NULL, err) != 0)
		goto rollback;
	if (p25_db_commit(db, err) != 0)
		goto out;
	rc = 0;
	goto out;
rollback:
	p25_db_rollback(db);
out:
	PQclear(res);
	free(addrs);
	p25_checks_free(&checks);
	json_decref(domains);
	json_decref(plist);
	return rc;
}

/* ------------------------------------------------------------ batches */

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one request of a batch */
struct vreq {
	struct p25_job *job;
	int idx;		/* into the caller's arrays */
	const char *rid;
	json_int_t round;
	char roundbuf[24];
	char tenant[65];
	json_t *domains, *plist;
	struct p25_checks checks;
	enum { VR_LIVE, VR_DONE, VR_STALE } st;
};

static int
vreq_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vreq *)a)->rid, ((const struct vreq *)b)->rid);
}

/*
 * Step 3's row locks for the live requests of a batch in one statement, in
 * id order (the order every batch takes them in): a request still vetting
 * in its round stays VR_LIVE, the others (decided or withdrawn meanwhile)
 * become VR_STALE.
 */
static int
batch_lock(struct p25_db *db, struct vreq *v, int n, struct p25_err *err)
{
	P25_STMT(st, 1,
	    "SELECT id, status, vetting_round FROM requests WHERE id = ANY ($1::uuid[])"
	    " ORDER BY id FOR UPDATE");
	size_t cap = 3 + (size_t)n * 40, used = 1;
	char *ids = malloc(cap);
	PGresult *res = NULL;
	int i, k;

	if (!ids)
		return p25_err_set(err, 503, "out_of_memory", "out of memory");
	ids[0] = '{';
	for (i = 0; i < n; i++) {
		int w;
		if (v[i].st != VR_LIVE)
			continue;
		w = snprintf(ids + used, cap - used, "%s%s", used > 1 ? "," : "", v[i].rid);
		if (w < 0 || (size_t)w >= cap - used) {
			free(ids);
			return p25_err_set(err, 500, "internal", "request id list too long");
		}
		used += (size_t)w;
	}
	snprintf(ids + used, cap - used, "}");
	{
		const char *p[1] = { ids };
		res = p25_db_exec(db, &st, p, err);
	}
	free(ids);
	if (!res)
		return -1;
	for (i = 0; i < n; i++) {
		bool live = false;

		if (v[i].st != VR_LIVE)
			continue;
		for (k = 0; k < PQntuples(res); k++) {
			if (strcmp(PQgetvalue(res, k, 0), v[i].rid) != 0)
				continue;
			live = strcmp(PQgetvalue(res, k, 1), "vetting") == 0 &&
			       strtoll(PQgetvalue(res, k, 2), NULL, 10) == v[i].round;
			break;
		}
		if (!live)
			v[i].st = VR_STALE;
	}
	PQclear(res);
	return 0;
}

/* Marks the jobs completed in a rolled-back transaction not completed. */
static void
uncomplete(struct vreq *v, int n, const bool *before)
{
	int i;

	for (i = 0; i < n; i++)
		v[i].job->completed = before[i];
}

/*
 * Step 1 for the live requests of a batch in one statement (inside the
 * caller's transaction): locks them in id order, moves those pending in
 * their round to vetting with their request.vetting audit rows, and reads
 * them.  Marks the ones that moved on (or vanished) VR_STALE.
 */
static int
batch_to_vetting(struct p25_db *db, struct vreq *v, int n, struct p25_err *err)
{
	P25_STMT(st, 1,
	    "WITH want AS (SELECT (e->>'id')::uuid AS id, (e->>'round')::integer AS round"
	    "   FROM jsonb_array_elements($1::jsonb) e),"
	    " r AS MATERIALIZED (SELECT q.id, q.status, q.vetting_round, q.tenant_id,"
	    "   to_jsonb(q.sender_domains)::text AS domains,"
	    "   (SELECT jsonb_agg(a.prefix::text ORDER BY a.position) FROM request_addresses a"
	    "     WHERE a.request_id = q.id)::text AS prefixes"
	    "   FROM requests q JOIN want w ON w.id = q.id ORDER BY q.id FOR UPDATE OF q),"
	    " u AS (UPDATE requests q SET status = 'vetting', version = q.version + 1,"
	    "   updated_at = now() FROM r JOIN want w ON w.id = r.id"
	    "   WHERE q.id = r.id AND r.status = 'pending' AND r.vetting_round = w.round"
	    "   RETURNING q.id, q.tenant_id),"
	    " a AS (INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id)"
	    "   SELECT 'system:vetting', 'request.vetting', 'request', u.id::text, u.tenant_id"
	    "   FROM u ORDER BY u.id RETURNING 1)"
	    " SELECT r.id, r.status, r.vetting_round, r.tenant_id, r.domains, r.prefixes,"
	    "   (SELECT count(*) FROM a), (SELECT count(*) FROM u) FROM r");
	json_t *want = json_array();
	char *wj = NULL;
	PGresult *res = NULL;
	int i, k, rc = -1;

	for (i = 0; want && i < n; i++)
		if (v[i].st == VR_LIVE)
			json_array_append_new(want, json_pack("{s:s, s:I}", "id", v[i].rid,
							      "round", v[i].round));
	wj = want ? json_dumps(want, JSON_COMPACT) : NULL;
	if (!wj) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	{
		const char *p[1] = { wj };
		res = p25_db_exec(db, &st, p, err);
	}
	if (!res)
		goto out;
	if (PQntuples(res) > 0 &&
	    strcmp(PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 7)) != 0) {
		/* fail closed, as p25_audit() does */
		p25_err_set(err, 503, "audit_unavailable",
			    "the change was not made because its audit record could not be written");
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool live = false;

		if (v[i].st != VR_LIVE)
			continue;
		for (k = 0; k < PQntuples(res); k++) {
			const char *status = PQgetvalue(res, k, 1);
			if (strcmp(PQgetvalue(res, k, 0), v[i].rid) != 0)
				continue;
			live = strtoll(PQgetvalue(res, k, 2), NULL, 10) == v[i].round &&
			       (strcmp(status, "pending") == 0 || strcmp(status, "vetting") == 0);
			if (live) {
				snprintf(v[i].tenant, sizeof(v[i].tenant), "%s", PQgetvalue(res, k, 3));
				v[i].domains = json_loads(PQgetvalue(res, k, 4), 0, NULL);
				v[i].plist = json_loads(PQgetvalue(res, k, 5), 0, NULL);
			}
			break;
		}
		if (!live)
			v[i].st = VR_STALE;
	}
	rc = 0;
out:
	PQclear(res);
	free(wj);
	json_decref(want);
	return rc;
}

int
p25_job_vet_batch(struct p25_job **jobs, int n, struct p25_db *db, int *rcs,
		  struct p25_err *errs)
{
	struct vreq *v;
	bool *before;
	struct p25_err err = { 0 };
	struct p25_dns *dns = NULL;
	struct p25_issue_batch ib = { 0 };	/* the signing key, loaded once per batch */
	long long t0 = mono_ms();
	struct p25_vet_input *in;
	struct p25_prefix *addrs, **va;
	int i, k, naddrs = 0, nin = 0, *vi, nlive = 0, ndone = 0;

	if (n == 1) {
		rcs[0] = p25_job_vet(jobs[0], db, &errs[0]);
		return 0;
	}
	v = calloc((size_t)n, sizeof(*v));
	before = calloc((size_t)n, sizeof(*before));
	if (!v || !before) {
		free(v);
		free(before);
		for (i = 0; i < n; i++)
			rcs[i] = p25_job_vet(jobs[i], db, &errs[i]);
		return 0;
	}
	for (i = 0; i < n; i++) {
		v[i].job = jobs[i];
		v[i].idx = i;
		v[i].rid = json_string_value(json_object_get(jobs[i]->payload, "request"));
		v[i].round = json_integer_value(json_object_get(jobs[i]->payload, "round"));
		snprintf(v[i].roundbuf, sizeof(v[i].roundbuf), "%lld", (long long)v[i].round);
		rcs[i] = 0;
		if (!v[i].rid || !p25_uuid_ok(v[i].rid) || v[i].round < 1) {
			rcs[i] = p25_err_set(&errs[i], 400, "bad_payload",
					     "vet job needs {request: uuid, round: n}");
			v[i].rid = "";
			v[i].st = VR_DONE;
		}
	}
	/* one lock order for every batch: two workers' batches cannot deadlock */
	qsort(v, (size_t)n, sizeof(*v), vreq_cmp);

	/* 1. pending → vetting, the whole batch in one transaction */
	for (i = 0; i < n; i++)
		before[i] = v[i].job->completed;
	if (p25_db_begin_as(db, NULL, "system", &err) != 0)
		goto fallback;
	if (batch_to_vetting(db, v, n, &err) != 0)
		goto fallback;
	for (i = 0; i < n; i++) {
		if (v[i].st != VR_STALE)
			continue;
		p25_info("vet.stale", "request %s: request moved on", v[i].rid);
		if (p25_job_complete(db, v[i].job, &err) != 0)
			goto fallback;
	}
	if (p25_db_commit(db, &err) != 0)
		goto fallback;
	for (i = 0; i < n; i++)
		if (v[i].st == VR_STALE)
			v[i].st = VR_DONE;

	/* 2. DNS, no transaction open: every live request's queries at once
	 * (p25_vet_dns_batch), so the batch costs one request's DNS time */
	if (mono_ms() - t0 > 250LL * wctx.cfg.job_lease) {
		/* step 1 was slow: the batch goes back to the queue untried
		 * rather than run its DNS on a lease about to expire */
		for (i = 0; i < n; i++) {
			if (v[i].st != VR_LIVE)
				continue;
			rcs[v[i].idx] = p25_err_set(&errs[v[i].idx], 503, P25_JOB_NOT_STARTED,
						    "batch ran out of lease time before its DNS");
			v[i].st = VR_DONE;
		}
	}
	in = calloc((size_t)n, sizeof(*in));
	va = calloc((size_t)n, sizeof(*va));
	vi = calloc((size_t)n, sizeof(*vi));
	for (i = 0; i < n; i++) {
		if (v[i].st != VR_LIVE)
			continue;
		addrs = NULL;
		if (!dns)
			dns = p25_dns_thread(&wctx.cfg, &errs[v[i].idx]);	/* err set when NULL */
		if (dns) {
			addrs = in && va && vi ? parse_addrs(v[i].plist, &naddrs) : NULL;
			if (!addrs)
				p25_err_set(&errs[v[i].idx], 503, "out_of_memory", "out of memory");
		}
		if (!addrs) {
			rcs[v[i].idx] = -1;	/* this job fails alone and is retried */
			v[i].st = VR_DONE;
			continue;
		}
		in[nin].addrs = addrs;
		in[nin].naddrs = naddrs;
		in[nin].domains = v[i].domains;
		in[nin].out = &v[i].checks;
		in[nin].err = &errs[v[i].idx];
		va[nin] = addrs;
		vi[nin++] = i;
	}
	if (nin > 0)
		p25_vet_dns_batch(&wctx.cfg, dns, in, nin, P25_VET_ALL, &err);
	for (k = 0; k < nin; k++) {
		i = vi[k];
		if (in[k].rc != 0) {
			rcs[v[i].idx] = -1;	/* this job fails alone and is retried */
			v[i].st = VR_DONE;
		} else {
			nlive++;
		}
		free(va[k]);
	}
	free(in);
	free(va);
	free(vi);
	p25_err_clear(&err);

	/* 3. every decision of the batch in one transaction */
	if (nlive > 0) {
		for (i = 0; i < n; i++)
			before[i] = v[i].job->completed;
		if (p25_db_begin_as(db, NULL, "system", &err) != 0)
			goto fallback;
		if (batch_lock(db, v, n, &err) != 0)
			goto fallback;
		for (i = 0; i < n; i++) {
			if (v[i].st == VR_STALE) {
				p25_info("vet.stale", "request %s: decided or withdrawn meanwhile",
					 v[i].rid);
				if (p25_job_complete(db, v[i].job, &err) != 0)
					goto fallback;
			} else if (v[i].st == VR_LIVE && decide_locked(db, v[i].job, v[i].rid, v[i].tenant, v[i].round,
						 v[i].roundbuf, v[i].plist, &v[i].checks, &ib,
						 &err) != 0) {
				goto fallback;
			}
		}
		/* the grant events with their feed positions: the last statement,
		 * so the feed's commit-order lock is held only up to the commit */
		if (p25_issue_batch_flush(db, &ib, &err) != 0 || p25_db_commit(db, &err) != 0)
			goto fallback;
		ndone = nlive;
	}
	goto out;

fallback:
	/* something in a batch transaction failed (a lost lease, a bad row, the
	 * connection): nothing of it was written; every request still open runs
	 * alone, where a failure is that job's own */
	p25_db_rollback(db);
	p25_issue_batch_end(&ib);	/* its events belonged to the rolled-back transaction */
	uncomplete(v, n, before);
	p25_warn("vet.batch_fallback", "batch of %d: %s; vetting them one by one", n,
		 err.detail[0] ? err.detail : "failed");
	for (i = 0; i < n; i++)
		if (v[i].st != VR_DONE)
			rcs[v[i].idx] = p25_job_vet(v[i].job, db, &errs[v[i].idx]);
out:
	p25_debug("vet.batch", "batch of %d: %d decided together", n, ndone);
	p25_issue_batch_end(&ib);	/* wipes the key */
	p25_err_clear(&err);
	for (i = 0; i < n; i++) {
		p25_checks_free(&v[i].checks);
		json_decref(v[i].domains);
		json_decref(v[i].plist);
	}
	free(v);
	free(before);
	return 0;
}
