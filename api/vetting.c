/*
 * vetting.c — the tenant's side of vetting: recheck a request after fixing
 * what a denial or needs_info named, and readiness (the same checks on
 * addresses without filing anything).
 *
 * Readiness runs DNS from a pool thread: the resolver is the thread's own
 * c-ares channel with the configured timeouts, so a pool thread is held for
 * at most one DNS round (timeout × tries), and the pool's size bounds how
 * many run at once.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "input.h"
#include "p25/audit.h"
#include "p25/dns.h"
#include "p25/ipaddr.h"
#include "p25/jobs.h"
#include "p25/validate.h"
#include "p25/vetting.h"

/* Reason codes a tenant can fix and then ask for a recheck of a denial. */
static bool
fixable(const char *code)
{
	return strncmp(code, "dnsbl_", 6) == 0 || strncmp(code, "rdns_", 5) == 0 ||
	       strncmp(code, "spf_", 4) == 0 || strncmp(code, "dmarc_", 6) == 0;
}

void
req_recheck(struct api_req *r, struct p25_db *db)
{
	P25_STMT(look, 3,
	    "SELECT r.status, ceil(extract(epoch FROM d.created_at + $2::integer * interval '1 second'"
	    " - now())), to_jsonb(d.reason_codes)::text"
	    " FROM requests r LEFT JOIN LATERAL (SELECT * FROM decisions x WHERE x.request_id = r.id"
	    "   ORDER BY x.id DESC LIMIT 1) d ON true"
	    " WHERE r.id = $1 AND r.tenant_id = $3 FOR UPDATE OF r");
	/* the way back after a suspension (see way_back) */
	P25_STMT(susp, 1,
	    "SELECT max(e.suspensions), bool_or(e.cooldown_until > now()), max(e.cooldown_until),"
	    " (SELECT d.actor FROM decisions d WHERE d.request_id = $1 ORDER BY d.id DESC LIMIT 1)"
	    " FROM exemptions e WHERE e.request_id = $1 AND e.status = 'suspended'");
	P25_STMT(upd, 2, "UPDATE requests SET status = 'pending', version = version + 1,"
			 " vetting_round = vetting_round + 1, updated_at = now(), decided_at = NULL"
			 " WHERE id = $1 AND tenant_id = $2 RETURNING vetting_round");
	struct p25_err err = { 0 };
	char interval[16], status[24];
	PGresult *res = NULL;
	json_t *codes = NULL, *job = NULL;
	long wait;

	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such request");
		return;
	}
	snprintf(interval, sizeof(interval), "%d", api.policy.recheck_interval_seconds);
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[3] = { r->params[0], interval, r->who.tenant };
		res = p25_db_exec(db, &look, p, &err);
	}
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		p25_err_set(&err, 404, "not_found", "no such request");
		goto fail;
	}
	snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
	if (strcmp(status, "needs_review") == 0) {
		/*
		 * The way back: a request whose exemption was suspended (by the
		 * monitor or an abuse report) may be rechecked by its tenant — first
		 * offence, after the cool-down, when the policy allows; the vetting
		 * round then decides again (a listing must be gone).  Repeat
		 * offences go to a reviewer.
		 */
		const char *p[1] = { r->params[0] };
		PGresult *s2 = p25_db_exec(db, &susp, p, &err);
		if (!s2)
			goto fail;
		if (PQgetisnull(s2, 0, 0)) {
			PQclear(s2);
			p25_err_set(&err, 409, "invalid_state",
				    "the request is waiting for a reviewer; a recheck cannot change that");
			goto fail;
		}
		if (!api.policy.self_reinstate || strtol(PQgetvalue(s2, 0, 0), NULL, 10) > 1) {
			p25_err_set(&err, 409, "review_required",
				    "the exemption was suspended %s times: a reviewer decides whether "
				    "it comes back", PQgetvalue(s2, 0, 0));
			PQclear(s2);
			goto fail;
		}
		if (strcmp(PQgetvalue(s2, 0, 1), "t") == 0) {
			p25_err_set(&err, 409, "cooldown",
				    "the exemption was suspended; a recheck is possible after %s",
				    PQgetvalue(s2, 0, 2));
			p25_err_hint(&err, "fix the cause meanwhile (delisting, the abuse reported)");
			PQclear(s2);
			goto fail;
		}
		PQclear(s2);
	} else if (strcmp(status, "denied") != 0 && strcmp(status, "needs_info") != 0) {
		p25_err_set(&err, 409, "invalid_state",
			    "only a denied request or one that needs information can be rechecked; "
			    "this one is %s", status);
		goto fail;
	}
	wait = PQgetisnull(res, 0, 1) || strcmp(status, "needs_review") == 0 ? 0
	       : strtol(PQgetvalue(res, 0, 1), NULL, 10);
	if (wait > 0) {
		p25_err_set(&err, 429, "recheck_too_soon",
			    "a recheck is possible %d seconds after the last decision",
			    api.policy.recheck_interval_seconds);
		err.retry_after = (int)wait;
		goto fail;
	}
	codes = json_loads(PQgetisnull(res, 0, 2) ? "[]" : PQgetvalue(res, 0, 2), 0, NULL);
	if (strcmp(status, "denied") == 0) {
		size_t i;
		json_t *c;
		json_array_foreach(codes, i, c) {
			if (!fixable(json_string_value(c))) {
				p25_err_set(&err, 409, "not_fixable",
				    "the denial (%s) is not something a recheck can change",
				    json_string_value(c));
				p25_err_hint(&err, "file a new request once reapply_after has passed");
				goto fail;
			}
		}
	}
	PQclear(res);
	{
		const char *p[2] = { r->params[0], r->who.tenant };
		res = p25_db_exec(db, &upd, p, &err);
	}
	if (!res)
		goto fail;
	job = json_pack("{s:s, s:i}", "request", r->params[0], "round",
			(int)strtol(PQgetvalue(res, 0, 0), NULL, 10));
	if (p25_job_enqueue(db, "vet", job, NULL, 0, &err) != 0 ||
	    p25_audit(db, r->who.sub, "request.recheck", "request", r->params[0], r->who.tenant,
		      NULL, &err) != 0)
		goto fail;
	request_commit_reply(r, db, r->params[0], r->who.tenant, 202);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	PQclear(res);
	json_decref(codes);
	json_decref(job);
}

void
readiness(struct api_req *r, struct p25_db *db)
{
	static const char *const fields[] = { "addresses", "sender_domains", NULL };
	struct p25_err err = { 0 };
	struct p25_prefix *addrs = NULL;
	struct p25_checks checks = { 0 };
	struct p25_decision dec = { 0 };
	struct p25_facts f;
	struct p25_dns *dns;
	json_t *b = NULL, *domains = json_array(), *o;
	char *cidrs = NULL;
	int n = 0, rc;

	b = api_body_json(r, &err);
	if (!b)
		goto reply;
	addrs = calloc((size_t)api.cfg.max_addresses, sizeof(*addrs));
	if (!addrs) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
		goto reply;
	}
	input_known_fields(b, fields, &err);
	input_addresses(json_object_get(b, "addresses"), "addresses", (int)api.cfg.max_addresses,
			(int)api.cfg.max_prefix_v4, (int)api.cfg.max_prefix_v6, addrs, &n, &err);
	input_domains(json_object_get(b, "sender_domains"), "sender_domains", domains, &err);
	if (err.errors && json_array_size(err.errors)) {
		input_validation_failed(&err);
		goto reply;
	}
	cidrs = input_cidr_array(addrs, n);
	if (!cidrs) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
		goto reply;
	}
	if (api_begin(r, db, &err) != 0)
		goto reply;
	rc = p25_facts_load(db, r->who.tenant, cidrs, &f, &err);
	p25_db_rollback(db);	/* read-only; no transaction held over DNS */
	if (rc != 0)
		goto reply;
	if (f.not_held[0]) {
		p25_err_set(&err, 422, "address_not_held",
			    "not in your address inventory: %.400s", f.not_held);
		snprintf(err.field, sizeof(err.field), "addresses");
		goto reply;
	}
	dns = p25_dns_thread(&api.cfg, &err);
	if (!dns || p25_vet_dns(&api.cfg, dns, addrs, n, domains, P25_VET_ALL, &checks, &err) != 0)
		goto reply;
	p25_vet_facts(&api.policy, &f, &checks);
	p25_policy_decide(&api.policy, &checks, &dec);
	o = json_pack("{s:o, s:s, s:O, s:s, s:s}", "checks", p25_checks_json(&checks),
		      "would_decide", dec.decision, "reason_codes", dec.reason_codes,
		      "message", dec.message, "policy_version", api.policy.version);
	api_reply_json(r, 200, o);
	api_header(r, "Cache-Control", "no-store");
	goto out;
reply:
	api_reply_err(r, &err);
out:
	free(cidrs);
	free(addrs);
	p25_checks_free(&checks);
	p25_decision_free(&dec);
	json_decref(domains);
	json_decref(b);
}
