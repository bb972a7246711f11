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

static int
checks_store(struct p25_db *db, const char *rid, const char *tenant, const char *round,
	     const struct p25_checks *c, struct p25_err *err)
{
	P25_STMT(st, 4,
	    "INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)"
	    " SELECT $1, $2, $3::integer, x->>'name', x->>'subject', x->>'outcome',"
	    " coalesce(x->'evidence', '{}'), coalesce(x->>'hint', '')"
	    " FROM jsonb_array_elements($4::jsonb) x");
	json_t *a = p25_checks_json(c);
	char *aj = json_dumps(a, JSON_COMPACT);
	const char *p[4] = { rid, tenant, round, aj };
	long n = aj ? p25_db_run(db, &st, p, err) : -1;

	if (!aj)
		p25_err_set(err, 503, "out_of_memory", "out of memory");
	free(aj);
	json_decref(a);
	return n == c->n ? 0 : -1;
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

int
p25_job_vet(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(to_vetting, 1, "UPDATE requests SET status = 'vetting', version = version + 1,"
				" updated_at = now() WHERE id = $1");
	P25_STMT(decide, 8,
	    "INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes,"
	    " message, policy_version, reapply_after)"
	    " VALUES ($1, $2, $3::integer, $4, 'policy',"
	    " ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6, $7,"
	    " CASE WHEN $4 = 'deny' THEN now() + $8::integer * interval '1 day' END)");
	P25_STMT(set_status, 2,
	    "UPDATE requests SET status = $2, version = version + 1, updated_at = now(),"
	    " decided_at = CASE WHEN $2 IN ('approved', 'denied') THEN now() ELSE decided_at END"
	    " WHERE id = $1");
	const char *rid = json_string_value(json_object_get(job->payload, "request"));
	json_int_t round = json_integer_value(json_object_get(job->payload, "round"));
	struct p25_prefix *addrs = NULL;
	struct p25_checks checks = { 0 };
	struct p25_decision dec = { 0 };
	struct p25_facts facts;
	struct p25_dns *dns;
	PGresult *res = NULL;
	json_t *domains = NULL, *plist = NULL, *details = NULL;
	char tenant[65], roundbuf[24], status[24];
	int naddrs = 0, rc = -1;
	size_t i;

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
	addrs = calloc(MAX_ADDRS, sizeof(*addrs));
	if (!addrs) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	for (i = 0; plist && i < json_array_size(plist) && naddrs < MAX_ADDRS; i++) {
		struct p25_err e = { 0 };
		if (p25_prefix_parse(json_string_value(json_array_get(plist, i)), &addrs[naddrs], &e) == 0)
			naddrs++;
		p25_err_clear(&e);
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
	{
		char *cidrs = input_cidrs(plist);
		int frc = cidrs ? p25_facts_load(db, tenant, cidrs, &facts, err) : -1;
		free(cidrs);
		if (frc != 0)
			goto rollback;
	}
	p25_vet_facts(&wctx.policy, &facts, &checks);
	p25_policy_decide(&wctx.policy, &checks, &dec);
	{
		char *codes = json_dumps(dec.reason_codes, JSON_COMPACT);
		char days[16];
		const char *newst = strcmp(dec.decision, "approve") == 0 ? "approved"
				  : strcmp(dec.decision, "deny") == 0 ? "denied" : dec.decision;
		const char *pd[8] = { rid, tenant, roundbuf, dec.decision, codes, dec.message,
				      wctx.policy.version, days };
		const char *ps[2] = { rid, newst };
		long n1, n2;

		snprintf(days, sizeof(days), "%d", dec.reapply_days);
		if (checks_store(db, rid, tenant, roundbuf, &checks, err) != 0) {
			free(codes);
			goto rollback;
		}
		n1 = codes ? p25_db_run(db, &decide, pd, err) : -1;
		n2 = n1 == 1 ? p25_db_run(db, &set_status, ps, err) : -1;
		free(codes);
		if (n1 != 1 || n2 != 1 ||
		    p25_notify(db, tenant, "request.status", rid, newst, dec.decision, err) != 0)
			goto rollback;
	}
	if (strcmp(dec.decision, "approve") == 0) {
		struct p25_issue_opts o = { wctx.policy.exemption_days, NULL, NULL, -1 };
		if (p25_issue(db, &wctx.issuer, rid, tenant, "system:vetting", &o, NULL, err) != 0)
			goto rollback;
	}
	details = json_pack("{s:s, s:O, s:s, s:I}", "decision", dec.decision,
			    "reason_codes", dec.reason_codes, "policy_version",
			    wctx.policy.version, "round", round);
	if (p25_audit(db, "system:vetting", "request.decide", "request", rid, tenant, details,
		      err) != 0 ||
	    p25_job_complete(db, job, err) != 0)
		goto rollback;
	if (p25_db_commit(db, err) != 0)
		goto out;
	p25_info("vet.decided", "request %s round %lld: %s (%d checks, %lu DNS queries so far)",
		 rid, (long long)round, dec.decision, checks.n, p25_dns_queries(dns));
	rc = 0;
	goto out;
rollback:
	p25_db_rollback(db);
out:
	PQclear(res);
	free(addrs);
	p25_checks_free(&checks);
	p25_decision_free(&dec);
	json_decref(domains);
	json_decref(plist);
	json_decref(details);
	return rc;
}
