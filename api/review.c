/*
 * review.c — abuse reviewers: the queue, a request's full evidence, claims,
 * decisions, revocation and reinstatement, and the audit log.
 *
 * Collisions: a reviewer may claim a request for P25_CLAIM_MINUTES; while
 * the claim lasts, another reviewer's decision is refused (409 claimed).
 * Whatever the claims, a decision locks the request row and checks its
 * state (and If-Match, when sent), so of two decisions arriving together
 * exactly one wins and the other gets 409 (or 412).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "input.h"
#include "p25/audit.h"
#include "p25/ipaddr.h"
#include "p25/issue.h"
#include "p25/notify.h"
#include "p25/validate.h"

/* The catalogue of reasons a reviewer may give (docs/review.md). */
static const char *const review_codes[] = {
	"abuse_history", "listed", "rdns", "insufficient_information", "unverifiable_use_case",
	"account", "policy_violation", "spam_complaints", "compromised_host", "other", NULL
};

static bool
review_code_ok(const char *c)
{
	const char *const *k;

	for (k = review_codes; *k; k++)
		if (strcmp(*k, c) == 0)
			return true;
	return false;
}

/* ---------------------------------------------------------------- queue */

/*
 * The answer's text, {"items":[...],"next_cursor":...}, put together from
 * the rows' JSON texts as PostgreSQL rendered them (first column), without
 * parsing each item with jansson only to print it again (up to 100 per
 * page).  Row limit (the limit + 1st), when there is one, only says that
 * another page follows; its predecessor's sort key is the cursor.  Caller
 * frees; NULL when out of memory.
 */
static char *
queue_page(PGresult *res, long limit)
{
	static const char head[] = "{\"items\":[", mid[] = "],\"next_cursor\":";
	int n = PQntuples(res), i, rows = n < limit ? n : (int)limit;
	json_t *cur = n > limit ? api_cursor_encode(PQgetvalue(res, rows - 1, 1),
						    PQgetvalue(res, rows - 1, 2)) : NULL;
	const char *c = cur ? json_string_value(cur) : NULL;
	size_t len = sizeof(head) + sizeof(mid) + (c ? strlen(c) + 2 : 4) + 2, at = 0;
	char *out;

	for (i = 0; i < rows; i++)
		len += (size_t)PQgetlength(res, i, 0) + 1;
	out = malloc(len);
	if (!out) {
		json_decref(cur);
		return NULL;
	}
	memcpy(out, head, sizeof(head) - 1);
	at = sizeof(head) - 1;
	for (i = 0; i < rows; i++) {
		size_t l = (size_t)PQgetlength(res, i, 0);

		if (i > 0)
			out[at++] = ',';
		memcpy(out + at, PQgetvalue(res, i, 0), l);
		at += l;
	}
	memcpy(out + at, mid, sizeof(mid) - 1);
	at += sizeof(mid) - 1;
	if (c)
		snprintf(out + at, len - at, "\"%s\"}", c);
	else
		snprintf(out + at, len - at, "null}");
	json_decref(cur);
	return out;
}

/*
 * The queue is read in (updated_at, id) order from requests_review, the
 * partial index of open requests, stopping after limit + 1 rows that pass
 * the filters; every filter is cheap per row, so a page costs about the
 * same however long the queue is (bench/REVIEW.md).  The statement's shape
 * is what makes the planner choose that walk (migrations/0009 does the
 * rest for row-level security):
 *  - the state filter is one condition, status = ANY (the states asked
 *    for), not "status IN (both) AND status = $1": PostgreSQL multiplies
 *    the selectivities of two conditions on one column as if they were
 *    independent and would guess 1/20 of the real count;
 *  - the outcome filter's EXISTS ends in OFFSET 0, which keeps it a probe
 *    of checks_request_outcome per walked row: without it the planner may
 *    turn it into a hashed subplan that first reads every check of that
 *    outcome in the table (0.4 to 0.7 s at 100,000 requests, measured);
 *  - the "$n IS NULL OR ..." filters fold away in custom plans, so the
 *    cursor becomes an index condition of the walk.  The generic plan of
 *    this statement (parameters unknown) is estimated far costlier than the
 *    custom ones, so the plan cache keeps planning per call;
 *  - the outcome counts and the outcome probe are index-only scans of
 *    checks_request_outcome, which carries the tenant_id the RLS policy
 *    names (migrations/0012).
 * One round trip (api_read: the caller's identity and the statement in one
 * pipelined, read-only transaction), not BEGIN, set_config, the query and
 * ROLLBACK one after the other.
 */
void
review_queue(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 7,
	    "SELECT json_build_object('id', q.id, 'tenant', q.tenant_id, 'status', q.status,"
	    " 'use_case', q.use_case, 'addresses', (SELECT json_agg(a.prefix::text ORDER BY a.position)"
	    "   FROM request_addresses a WHERE a.request_id = q.id),"
	    " 'created_at', q.created_at, 'updated_at', q.updated_at,"
	    " 'waiting_seconds', floor(extract(epoch FROM now() - q.updated_at)),"
	    " 'claimed_by', CASE WHEN q.claimed_until > now() THEN q.claimed_by END,"
	    " 'claimed_until', CASE WHEN q.claimed_until > now() THEN q.claimed_until END,"
	    " 'outcomes', (SELECT json_object_agg(o.outcome, o.n) FROM (SELECT c.outcome, count(*) n"
	    "   FROM checks c WHERE c.request_id = q.id AND c.round = q.vetting_round"
	    "   GROUP BY c.outcome) o))::text,"
	    " (extract(epoch FROM q.updated_at) * 1000000)::bigint, q.id"
	    " FROM requests q"
	    " WHERE q.status = ANY (CASE WHEN $1::text IS NULL"
	    "      THEN '{needs_review,needs_info}'::text[] ELSE ARRAY[$1::text] END)"
	    " AND ($2::text IS NULL OR q.tenant_id = $2)"
	    " AND ($3::integer IS NULL OR q.updated_at <= now() - $3::integer * interval '1 second')"
	    " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM checks c WHERE c.request_id = q.id"
	    "      AND c.round = q.vetting_round AND c.outcome = $4 OFFSET 0))"
	    " AND ($5::bigint IS NULL OR (q.updated_at, q.id) >"
	    "      ('epoch'::timestamptz + $5::bigint * interval '1 microsecond', $6::uuid))"
	    " ORDER BY q.updated_at, q.id LIMIT $7");
	struct p25_err err = { 0 };
	const char *state = api_get_query(r, "state");
	const char *tenant = api_get_query(r, "tenant");
	const char *age = api_get_query(r, "min_age_seconds");
	const char *outcome = api_get_query(r, "outcome");
	const char *limit_s = api_get_query(r, "limit");
	const char *cursor = api_get_query(r, "cursor");
	char us[24] = "", cid[40] = "", lim[24];
	long limit = 50, agev;
	PGresult *res;
	char *body;

	if (state && strcmp(state, "needs_review") != 0 && strcmp(state, "needs_info") != 0) {
		p25_err_field(&err, 400, "invalid_parameter", "state",
			      "state must be needs_review or needs_info");
		goto reply;
	}
	if (outcome && strcmp(outcome, "pass") != 0 && strcmp(outcome, "warn") != 0 &&
	    strcmp(outcome, "fail") != 0 && strcmp(outcome, "error") != 0) {
		p25_err_field(&err, 400, "invalid_parameter", "outcome",
			      "outcome must be pass, warn, fail or error");
		goto reply;
	}
	if (tenant && !p25_tenant_id_ok(tenant)) {
		p25_err_field(&err, 400, "invalid_parameter", "tenant", "not a tenant id");
		goto reply;
	}
	if (input_query_long(age, "min_age_seconds", 0, 0, 100000000, &agev, &err) != 0)
		goto reply;
	if (input_query_long(limit_s, "limit", 50, 1, 100, &limit, &err) != 0)
		goto reply;
	if (cursor && api_cursor_decode(cursor, us, sizeof(us), cid, sizeof(cid)) != 0) {
		p25_err_field(&err, 400, "invalid_cursor", "cursor",
			      "the cursor is not one this API gave out");
		goto reply;
	}
	snprintf(lim, sizeof(lim), "%ld", limit + 1);
	{
		const char *p[7] = { state, tenant, age, outcome, cursor ? us : NULL,
				     cursor ? cid : NULL, lim };
		res = api_read(r, db, &st, p, &err);
	}
	if (!res)
		goto reply;
	body = queue_page(res, limit);
	PQclear(res);
	if (!body) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
		goto reply;
	}
	api_reply_json_text(r, 200, body);
	free(body);
	api_header(r, "Cache-Control", "private, no-cache");
	return;
reply:
	api_reply_err(r, &err);
}

/* ------------------------------------------------------------- details */

void
review_get(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 1,
	    "SELECT (p25_request_json(q.id) || jsonb_build_object("
	    " 'claimed_by', CASE WHEN q.claimed_until > now() THEN q.claimed_by END,"
	    " 'claimed_until', CASE WHEN q.claimed_until > now() THEN q.claimed_until END,"
	    " 'all_checks', (SELECT coalesce(jsonb_agg(jsonb_build_object('round', c.round,"
	    "    'name', c.name, 'subject', c.subject, 'outcome', c.outcome, 'hint', c.hint,"
	    "    'evidence', c.evidence, 'at', c.created_at) ORDER BY c.id), '[]')"
	    "    FROM checks c WHERE c.request_id = q.id),"
	    " 'decisions', (SELECT coalesce(jsonb_agg(jsonb_build_object('round', d.round,"
	    "    'decision', d.decision, 'actor', d.actor, 'reason_codes', to_jsonb(d.reason_codes),"
	    "    'message', d.message, 'policy_version', d.policy_version,"
	    "    'reapply_after', d.reapply_after, 'scope', d.scope, 'at', d.created_at)"
	    "    ORDER BY d.id), '[]') FROM decisions d WHERE d.request_id = q.id),"
	    " 'account', (SELECT jsonb_build_object('id', t.id, 'name', t.name,"
	    "    'created_at', t.account_created_at, 'verified', t.verified, 'standing', t.standing,"
	    "    'age_days', floor(extract(epoch FROM now() - t.account_created_at) / 86400))"
	    "    FROM tenants t WHERE t.id = q.tenant_id),"
	    " 'history', jsonb_build_object("
	    "    'requests', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', h.id, 'status',"
	    "       h.status, 'created_at', h.created_at) ORDER BY h.created_at DESC), '[]')"
	    "       FROM (SELECT * FROM requests h WHERE h.tenant_id = q.tenant_id AND h.id <> q.id"
	    "             ORDER BY h.created_at DESC LIMIT 50) h),"
	    "    'suspensions', (SELECT coalesce(jsonb_agg(jsonb_build_object('exemption', e.id,"
	    "       'cidr', e.prefix::text, 'status', e.status, 'reason', e.status_reason,"
	    "       'suspensions', e.suspensions, 'at', e.updated_at)), '[]')"
	    "       FROM exemptions e WHERE e.tenant_id = q.tenant_id AND e.suspensions > 0),"
	    "    'abuse_reports', (SELECT count(*) FROM abuse_reports b WHERE b.tenant_id = q.tenant_id))"
	    "))::text, q.version FROM requests q WHERE q.id = $1");
	struct p25_err err = { 0 };
	const char *p[1] = { r->params[0] };
	PGresult *res;
	char etag[32];

	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such request");
		return;
	}
	if (api_begin(r, db, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	res = p25_db_exec(db, &st, p, &err);
	p25_db_rollback(db);
	if (!res) {
		api_reply_err(r, &err);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		api_reply_problem(r, 404, "not_found", "no such request");
		return;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, 1));
	api_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
	api_header(r, "ETag", etag);
	api_header(r, "Cache-Control", "private, no-cache");
	PQclear(res);
}

/* --------------------------------------------------------------- claims */

void
review_claim(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 3,
	    "UPDATE requests SET claimed_by = $2,"
	    " claimed_until = now() + $3::integer * interval '1 minute'"
	    " WHERE id = $1 AND status IN ('needs_review', 'needs_info')"
	    " AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by = $2)"
	    " RETURNING json_build_object('request', id, 'claimed_by', claimed_by,"
	    " 'claimed_until', claimed_until)::text, tenant_id");
	P25_STMT(who, 1, "SELECT status, CASE WHEN claimed_until > now() THEN claimed_by END,"
			 " claimed_until FROM requests WHERE id = $1");
	struct p25_err err = { 0 };
	char mins[16], *s = NULL;
	bool found = false;
	PGresult *res;

	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such request");
		return;
	}
	snprintf(mins, sizeof(mins), "%ld", api.cfg.claim_minutes);
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[3] = { r->params[0], r->who.sub, mins };
		s = p25_db_text(db, &st, p, &found, &err);
	}
	if (!s) {
		const char *p[1] = { r->params[0] };
		if (err.status)
			goto fail;
		res = p25_db_exec(db, &who, p, &err);
		if (!res)
			goto fail;
		if (PQntuples(res) == 0)
			p25_err_set(&err, 404, "not_found", "no such request");
		else if (!PQgetisnull(res, 0, 1))
			p25_err_set(&err, 409, "claimed", "%s is working on this request until %s",
				    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		else
			p25_err_set(&err, 409, "invalid_state",
				    "a request that is %s is not waiting for review",
				    PQgetvalue(res, 0, 0));
		PQclear(res);
		goto fail;
	}
	{
		P25_STMT(owner, 1, "SELECT tenant_id FROM requests WHERE id = $1");
		const char *p[1] = { r->params[0] };
		char *tenant = p25_db_text(db, &owner, p, NULL, &err);
		int rc = tenant ? p25_audit(db, r->who.sub, "request.claim", "request", r->params[0],
					    tenant, NULL, &err) : -1;
		free(tenant);
		if (rc != 0 || p25_db_commit(db, &err) != 0)
			goto fail;
	}
	api_reply_json_text(r, 200, s);
	free(s);
	return;
fail:
	p25_db_rollback(db);
reply:
	free(s);
	api_reply_err(r, &err);
}

/* ------------------------------------------------------------ decisions */

struct decision_in {
	const char *decision;
	json_t *codes;		/* array of strings */
	const char *note;
	int expires_days;
	json_t *prefixes, *dest;
	long rate;
	int reapply_days;
};

static int
decision_parse(json_t *b, struct decision_in *d, struct p25_err *err)
{
	static const char *const fields[] = { "decision", "reason_code", "reason_codes", "note",
		"expires_in_days", "prefixes", "dest", "rate", "reapply_after_days", NULL };
	json_t *v;
	size_t i;

	memset(d, 0, sizeof(*d));
	d->expires_days = api.policy.exemption_days;
	d->reapply_days = api.policy.deny_reapply_days;
	d->rate = -1;
	d->codes = json_array();
	input_known_fields(b, fields, err);
	d->decision = input_string(b, "decision", true, 16, err);
	if (d->decision && strcmp(d->decision, "approve") != 0 && strcmp(d->decision, "deny") != 0 &&
	    strcmp(d->decision, "needs_info") != 0)
		p25_err_add(err, "decision", "invalid_value", "must be approve, deny or needs_info");
	d->note = input_string(b, "note", false, 4000, err);
	if (d->note && !p25_text_ok(d->note, 4000))
		p25_err_add(err, "note", "invalid_text", "must not contain control characters");
	if ((v = json_object_get(b, "reason_code")) && json_is_string(v))
		json_array_append(d->codes, v);
	else if (v)
		p25_err_add(err, "reason_code", "invalid_type", "must be a string");
	v = json_object_get(b, "reason_codes");
	if (v && !json_is_array(v))
		p25_err_add(err, "reason_codes", "invalid_type", "must be an array of strings");
	else if (v) {
		json_t *c;
		json_array_foreach(v, i, c)
			json_array_append(d->codes, c);
	}
	json_array_foreach(d->codes, i, v) {
		if (!json_is_string(v) || !review_code_ok(json_string_value(v))) {
			char f[40];
			snprintf(f, sizeof(f), "reason_codes[%zu]", i);
			p25_err_add(err, f, "unknown_reason_code",
				    "not in the reason catalogue (see docs/review.md)");
		}
	}
	if ((v = json_object_get(b, "expires_in_days"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3650)
			p25_err_add(err, "expires_in_days", "invalid_value", "must be 1 to 3650 days");
		else
			d->expires_days = (int)json_integer_value(v);
	}
	if ((v = json_object_get(b, "reapply_after_days"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3650)
			p25_err_add(err, "reapply_after_days", "invalid_value", "must be 0 to 3650 days");
		else
			d->reapply_days = (int)json_integer_value(v);
	}
	if ((v = json_object_get(b, "rate"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000000)
			p25_err_add(err, "rate", "invalid_value", "messages per hour, 1 to 10000000");
		else
			d->rate = (long)json_integer_value(v);
	}
	d->prefixes = json_object_get(b, "prefixes");
	d->dest = json_object_get(b, "dest");
	if (d->dest) {
		struct p25_prefix tmp[16];
		int n;
		json_t *norm = json_array();
		if (input_addresses(d->dest, "dest", 16, -1, -1, tmp, &n, err) == 0) {
			int k;
			for (k = 0; k < n; k++) {
				char t[P25_PREFIX_STRLEN];
				p25_prefix_format(&tmp[k], t, sizeof(t));
				json_array_append_new(norm, json_string(t));
			}
		}
		d->dest = norm;	/* owned from here */
	}
	if (d->prefixes) {
		struct p25_prefix tmp[64];
		int n;
		json_t *norm = json_array();
		if (input_addresses(d->prefixes, "prefixes", 64, -1, -1, tmp, &n, err) == 0) {
			int k;
			for (k = 0; k < n; k++) {
				char t[P25_PREFIX_STRLEN];
				p25_prefix_format(&tmp[k], t, sizeof(t));
				json_array_append_new(norm, json_string(t));
			}
		}
		d->prefixes = norm;
	}
	if (d->decision && strcmp(d->decision, "deny") == 0 && json_array_size(d->codes) == 0)
		p25_err_add(err, "reason_codes", "required", "a denial names at least one reason code");
	if (d->decision && strcmp(d->decision, "needs_info") == 0 && (!d->note || !d->note[0]))
		p25_err_add(err, "note", "required", "needs_info asks the tenant a question: put it in note");
	return err->errors && json_array_size(err->errors) ? -1 : 0;
}

void
review_decide(struct api_req *r, struct p25_db *db)
{
	P25_STMT(lock, 1,
	    "SELECT status, version, tenant_id, vetting_round,"
	    " CASE WHEN claimed_until > now() THEN claimed_by END FROM requests WHERE id = $1 FOR UPDATE");
	P25_STMT(ins, 9,
	    "INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes,"
	    " message, reapply_after, scope) VALUES ($1, $2, $3::integer, $4, $5,"
	    " ARRAY(SELECT jsonb_array_elements_text($6::jsonb)), coalesce($7, ''),"
	    " CASE WHEN $4 = 'deny' THEN now() + $8::integer * interval '1 day' END, $9::jsonb)");
	P25_STMT(upd, 2,
	    "UPDATE requests SET status = $2, version = version + 1, updated_at = now(),"
	    " decided_at = CASE WHEN $2 IN ('approved', 'denied') THEN now() END,"
	    " claimed_by = NULL, claimed_until = NULL WHERE id = $1");
	P25_STMT(msg, 4, "INSERT INTO messages (request_id, tenant_id, author, role, body)"
			 " VALUES ($1, $2, $3, 'reviewer', $4)");
	struct p25_err err = { 0 };
	struct decision_in d;
	json_t *b = NULL, *scope = NULL, *details = NULL;
	char tenant[65], round[16], days[16], etag[32], *codes = NULL, *sj = NULL;
	const char *im = api_get_header(r, "If-Match");
	const char *newst;
	PGresult *res = NULL;

	memset(&d, 0, sizeof(d));
	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such request");
		return;
	}
	b = api_body_json(r, &err);
	if (!b)
		goto reply;
	if (decision_parse(b, &d, &err) != 0) {
		input_validation_failed(&err);
		goto reply;
	}
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[1] = { r->params[0] };
		res = p25_db_exec(db, &lock, p, &err);
	}
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		p25_err_set(&err, 404, "not_found", "no such request");
		goto fail;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, 1));
	snprintf(tenant, sizeof(tenant), "%s", PQgetvalue(res, 0, 2));
	snprintf(round, sizeof(round), "%s", PQgetvalue(res, 0, 3));
	if (im && strcmp(im, etag) != 0) {
		p25_err_set(&err, 412, "precondition_failed",
			    "the request changed since you read it (now %s)", etag);
		goto fail;
	}
	/*
	 * Only a request waiting for review is decided.  Not one waiting for
	 * the tenant's answer: otherwise a needs_info and an approve arriving
	 * together would both win.
	 */
	if (strcmp(PQgetvalue(res, 0, 0), "needs_review") != 0) {
		if (strcmp(PQgetvalue(res, 0, 0), "needs_info") == 0)
			p25_err_set(&err, 409, "invalid_state",
				    "the request is waiting for the tenant's answer");
		else
			p25_err_set(&err, 409, "invalid_state",
				    "the request is %s: someone decided it already or it moved on",
				    PQgetvalue(res, 0, 0));
		goto fail;
	}
	if (!PQgetisnull(res, 0, 4) && strcmp(PQgetvalue(res, 0, 4), r->who.sub) != 0) {
		p25_err_set(&err, 409, "claimed", "%s has claimed this request",
			    PQgetvalue(res, 0, 4));
		goto fail;
	}
	scope = json_pack("{s:i}", "expires_in_days", d.expires_days);
	if (d.prefixes)
		json_object_set(scope, "prefixes", d.prefixes);
	if (d.dest)
		json_object_set(scope, "dest", d.dest);
	if (d.rate > 0)
		json_object_set_new(scope, "rate", json_integer(d.rate));
	codes = json_dumps(d.codes, JSON_COMPACT);
	sj = json_dumps(scope, JSON_COMPACT);
	snprintf(days, sizeof(days), "%d", d.reapply_days);
	{
		const char *p[9] = { r->params[0], tenant, round, d.decision, r->who.sub, codes,
				     d.note, days, strcmp(d.decision, "approve") == 0 ? sj : NULL };
		if (!codes || !sj || p25_db_run(db, &ins, p, &err) != 1)
			goto fail;
	}
	newst = strcmp(d.decision, "approve") == 0 ? "approved"
	      : strcmp(d.decision, "deny") == 0 ? "denied" : "needs_info";
	{
		const char *p[2] = { r->params[0], newst };
		if (p25_db_run(db, &upd, p, &err) != 1)
			goto fail;
	}
	if (strcmp(d.decision, "deny") == 0) {
		/* a suspension confirmed by a reviewer ends the exemption */
		P25_STMT(end, 1, "UPDATE exemptions SET status = 'revoked', updated_at = now(),"
				 " status_reason = 'suspension confirmed by review'"
				 " WHERE request_id = $1 AND status = 'suspended'");
		const char *p[1] = { r->params[0] };
		if (p25_db_run(db, &end, p, &err) < 0)
			goto fail;
	}
	if (strcmp(d.decision, "needs_info") == 0) {
		const char *p[4] = { r->params[0], tenant, r->who.sub, d.note };
		if (p25_db_run(db, &msg, p, &err) != 1)
			goto fail;
	}
	if (strcmp(d.decision, "approve") == 0) {
		struct p25_issue_opts o = { d.expires_days, d.prefixes, d.dest, d.rate };
		struct p25_issuer is;
		int rc = p25_issuer_init(&is, &api.cfg, &err);
		is.monitor_interval = api.policy.monitor_interval_seconds;
		if (rc == 0)
			rc = p25_issue(db, &is, r->params[0], tenant, r->who.sub, &o, NULL, &err);
		p25_issuer_wipe(&is);
		if (rc != 0)
			goto fail;
	}
	details = json_pack("{s:s, s:O, s:O}", "decision", d.decision, "reason_codes", d.codes,
			    "scope", scope);
	if (p25_audit(db, r->who.sub, "request.review", "request", r->params[0], tenant, details,
		      &err) != 0 ||
	    p25_notify(db, tenant, "request.status", r->params[0], newst, d.decision, &err) != 0)
		goto fail;
	request_commit_reply(r, db, r->params[0], NULL, 200);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	PQclear(res);
	free(codes);
	free(sj);
	json_decref(d.codes);
	json_decref(d.prefixes);
	json_decref(d.dest);
	json_decref(scope);
	json_decref(details);
	json_decref(b);
}

/* ------------------------------------------- revocation, reinstatement */

static const char *
reason_body(struct api_req *r, json_t **b, struct p25_err *err)
{
	static const char *const fields[] = { "reason", NULL };
	const char *reason;

	*b = api_body_json(r, err);
	if (!*b)
		return NULL;
	input_known_fields(*b, fields, err);
	reason = input_string(*b, "reason", true, 1000, err);
	if (reason && (!reason[0] || !p25_text_ok(reason, 1000)))
		p25_err_add(err, "reason", "invalid_text", "1 to 1000 printable characters");
	if (err->errors && json_array_size(err->errors)) {
		input_validation_failed(err);
		return NULL;
	}
	return reason;
}

P25_STMT(exm_staff_one, 1, "SELECT p25_exemption_json(x)::text FROM exemptions x WHERE id = $1");

void
exm_revoke(struct api_req *r, struct p25_db *db)
{
	P25_STMT(upd, 2,
	    "WITH x AS (UPDATE exemptions SET status = 'revoked', updated_at = now(), status_reason = $2"
	    "   WHERE id = $1 AND status IN ('active', 'suspended') RETURNING id, tenant_id, prefix),"
	    " t AS (UPDATE tokens SET current = false WHERE exemption_id = $1 AND current),"
	    " f AS (INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, reason)"
	    "   SELECT 'revoke', id, tenant_id, prefix, $2 FROM x)"
	    " SELECT tenant_id FROM x");
	struct p25_err err = { 0 };
	json_t *b = NULL;
	const char *reason;
	char *tenant = NULL, *s = NULL;
	bool found = false;

	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such exemption");
		return;
	}
	reason = reason_body(r, &b, &err);
	if (!reason)
		goto reply;
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[2] = { r->params[0], reason };
		tenant = p25_db_text(db, &upd, p, &found, &err);
	}
	if (!tenant) {
		const char *p[1] = { r->params[0] };
		if (!err.status) {
			s = p25_db_text(db, &exm_staff_one, p, &found, &err);
			if (found)
				p25_err_set(&err, 409, "invalid_state",
					    "only an active or suspended exemption can be revoked");
			else if (!err.status)
				p25_err_set(&err, 404, "not_found", "no such exemption");
		}
		goto fail;
	}
	{
		json_t *d = json_pack("{s:s}", "reason", reason);
		const char *p[1] = { r->params[0] };
		int rc = p25_audit(db, r->who.sub, "exemption.revoke", "exemption", r->params[0],
				   tenant, d, &err);
		json_decref(d);
		if (rc != 0 || p25_notify(db, tenant, "exemption.status", r->params[0], "revoked",
					  reason, &err) != 0)
			goto fail;
		s = p25_db_text(db, &exm_staff_one, p, NULL, &err);
	}
	if (!s || p25_db_commit(db, &err) != 0)
		goto fail;
	api_reply_json_text(r, 200, s);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	free(s);
	free(tenant);
	json_decref(b);
}

void
exm_reinstate(struct api_req *r, struct p25_db *db)
{
	P25_STMT(lock, 1,
	    "SELECT status, tenant_id, expires_at <= now(), cooldown_until > now(), cooldown_until,"
	    " coalesce(status_reason, '') LIKE 'superseded%' FROM exemptions WHERE id = $1 FOR UPDATE");
	P25_STMT(upd, 2, "UPDATE exemptions SET status = 'active', updated_at = now(),"
			 " status_reason = $2 WHERE id = $1");
	struct p25_err err = { 0 };
	struct p25_issuer is;
	json_t *b = NULL;
	const char *reason;
	char tenant[65], *s = NULL;
	PGresult *res = NULL;

	memset(&is, 0, sizeof(is));
	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such exemption");
		return;
	}
	reason = reason_body(r, &b, &err);
	if (!reason)
		goto reply;
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[1] = { r->params[0] };
		res = p25_db_exec(db, &lock, p, &err);
	}
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		p25_err_set(&err, 404, "not_found", "no such exemption");
		goto fail;
	}
	snprintf(tenant, sizeof(tenant), "%s", PQgetvalue(res, 0, 1));
	if (strcmp(PQgetvalue(res, 0, 0), "suspended") != 0 &&
	    strcmp(PQgetvalue(res, 0, 0), "revoked") != 0) {
		p25_err_set(&err, 409, "invalid_state", "an exemption that is %s cannot be reinstated",
			    PQgetvalue(res, 0, 0));
		goto fail;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		p25_err_set(&err, 409, "expired", "the exemption has expired; a new request is needed");
		goto fail;
	}
	if (strcmp(PQgetvalue(res, 0, 5), "t") == 0) {
		p25_err_set(&err, 409, "superseded", "a newer exemption replaced this one");
		goto fail;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
		p25_err_set(&err, 409, "cooldown", "reinstatement is possible after %s",
			    PQgetvalue(res, 0, 4));
		goto fail;
	}
	{
		const char *p[2] = { r->params[0], reason };
		json_t *d = json_pack("{s:s}", "reason", reason);
		int rc = p25_db_run(db, &upd, p, &err) == 1 ? 0 : -1;
		if (rc == 0)
			rc = p25_issuer_init(&is, &api.cfg, &err);
		if (rc == 0)
			rc = p25_issue_token(db, &is, r->params[0], "grant", &err);
		if (rc == 0)
			rc = p25_audit(db, r->who.sub, "exemption.reinstate", "exemption",
				       r->params[0], tenant, d, &err);
		if (rc == 0) {
			/* the review item the suspension raised is settled */
			P25_STMT(settle, 3,
			    "WITH q AS (UPDATE requests SET status = 'approved', version = version + 1,"
			    "   updated_at = now(), claimed_by = NULL, claimed_until = NULL"
			    "   WHERE id = (SELECT request_id FROM exemptions WHERE id = $1)"
			    "   AND status = 'needs_review' RETURNING id, tenant_id, vetting_round)"
			    " INSERT INTO decisions (request_id, tenant_id, round, decision, actor, message)"
			    " SELECT id, tenant_id, vetting_round, 'approve', $2, $3 FROM q");
			const char *ps[3] = { r->params[0], r->who.sub, reason };
			rc = p25_db_run(db, &settle, ps, &err) < 0 ? -1 : 0;
		}
		if (rc == 0)
			rc = p25_notify(db, tenant, "exemption.status", r->params[0], "active",
					reason, &err);
		json_decref(d);
		if (rc != 0)
			goto fail;
	}
	{
		const char *p[1] = { r->params[0] };
		s = p25_db_text(db, &exm_staff_one, p, NULL, &err);
	}
	if (!s || p25_db_commit(db, &err) != 0)
		goto fail;
	api_reply_json_text(r, 200, s);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	p25_issuer_wipe(&is);
	PQclear(res);
	free(s);
	json_decref(b);
}

/* ---------------------------------------------------------------- audit */

void
audit_list(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 5,
	    "SELECT json_build_object('seq', a.seq, 'at', a.at, 'actor', a.actor, 'action', a.action,"
	    " 'object_type', a.object_type, 'object', a.object_id, 'tenant', a.tenant_id,"
	    " 'details', a.details, 'hash', encode(c.hash, 'hex'), 'chain_pos', c.pos)::text"
	    " FROM audit_log a LEFT JOIN audit_chain c ON c.seq = a.seq"
	    " WHERE ($1::text IS NULL OR a.object_id = $1) AND ($2::text IS NULL OR a.actor = $2)"
	    " AND ($3::timestamptz IS NULL OR a.at >= $3::timestamptz)"
	    " AND ($4::bigint IS NULL OR a.seq > $4::bigint)"
	    " ORDER BY a.seq LIMIT $5");
	struct p25_err err = { 0 };
	const char *object = api_get_query(r, "object");
	const char *actor = api_get_query(r, "actor");
	const char *since = api_get_query(r, "since");
	const char *cursor = api_get_query(r, "cursor");
	const char *limit_s = api_get_query(r, "limit");
	char lim[24];
	long limit = 100;
	PGresult *res;
	json_t *items, *o;
	int i, n;

	if (since && !p25_timestamp_ok(since)) {
		p25_err_field(&err, 400, "invalid_parameter", "since",
			      "since must be an RFC 3339 date-time");
		goto reply;
	}
	if ((object && strlen(object) > 200) || (actor && strlen(actor) > 200)) {
		p25_err_set(&err, 400, "invalid_parameter", "object and actor are at most 200 bytes");
		goto reply;
	}
	if (cursor) {
		char *end;
		long long v = strtoll(cursor, &end, 10);
		if (*end || end == cursor || v < 0) {
			p25_err_field(&err, 400, "invalid_cursor", "cursor",
				      "the cursor is not one this API gave out");
			goto reply;
		}
	}
	if (input_query_long(limit_s, "limit", 100, 1, 1000, &limit, &err) != 0)
		goto reply;
	snprintf(lim, sizeof(lim), "%ld", limit + 1);
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[5] = { object, actor, since, cursor, lim };
		res = p25_db_exec(db, &st, p, &err);
	}
	p25_db_rollback(db);
	if (!res)
		goto reply;
	items = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		json_array_append_new(items, json_loads(PQgetvalue(res, i, 0), 0, NULL));
	o = json_pack("{s:o}", "items", items);
	if (n > limit) {
		json_t *last = json_array_get(items, (size_t)limit - 1);
		char c[24];
		snprintf(c, sizeof(c), "%lld", (long long)json_integer_value(json_object_get(last, "seq")));
		json_object_set_new(o, "next_cursor", json_string(c));
	} else {
		json_object_set_new(o, "next_cursor", json_null());
	}
	PQclear(res);
	api_reply_json(r, 200, o);
	return;
reply:
	api_reply_err(r, &err);
}

/* ------------------------------------------------ webhook deliveries */

void
deliveries_list(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 1,
	    "SELECT json_build_object('items', coalesce(json_agg(json_build_object('id', d.id,"
	    " 'event', d.event, 'object', d.object_id, 'status', d.status, 'attempts', d.attempts,"
	    " 'last_status', d.last_status, 'last_error', d.last_error, 'created_at', d.created_at,"
	    " 'updated_at', d.updated_at) ORDER BY d.created_at DESC), '[]'), 'next_cursor', null)::text"
	    " FROM (SELECT * FROM webhook_deliveries WHERE tenant_id = $1"
	    "   ORDER BY created_at DESC LIMIT 100) d");
	const char *p[1] = { r->who.tenant };

	api_reply_query(r, db, &st, p, "delivery");
}
