/*
 * exemptions.c — a tenant's exemptions: list, read (with the current token
 * and how many enforcement nodes applied it), and give one up.
 *
 * Giving up (DELETE) is a revocation like any other: the status, a
 * `revoke` feed event that closes the port on every node within a second,
 * and the audit row, in one transaction.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "p25/audit.h"
#include "p25/notify.h"
#include "p25/validate.h"

void
exm_list(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "SELECT json_build_object('items', coalesce(json_agg(p25_exemption_json(x)"
	    " ORDER BY x.created_at DESC), '[]'), 'next_cursor', null)::text"
	    " FROM (SELECT * FROM exemptions WHERE tenant_id = $1"
	    "   AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC LIMIT 1000) x");
	struct p25_err err = { 0 };
	const char *status = api_get_query(r, "status");
	const char *p[2] = { r->who.tenant, status };

	if (status && strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0 &&
	    strcmp(status, "revoked") != 0 && strcmp(status, "expired") != 0) {
		p25_err_field(&err, 400, "invalid_parameter", "status",
			      "status must be one of active, suspended, revoked, expired");
		api_reply_err(r, &err);
		return;
	}
	api_reply_query(r, db, &st, p, "exemption");
}

P25_STMT(exm_one, 2, "SELECT p25_exemption_json(x)::text FROM exemptions x"
		     " WHERE id = $1 AND tenant_id = $2");

void
exm_get(struct api_req *r, struct p25_db *db)
{
	const char *p[2] = { r->params[0], r->who.tenant };

	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such exemption");
		return;
	}
	api_reply_query(r, db, &exm_one, p, "exemption");
}

void
exm_delete(struct api_req *r, struct p25_db *db)
{
	P25_STMT(upd, 2,
	    "WITH x AS (UPDATE exemptions SET status = 'revoked', updated_at = now(),"
	    "   status_reason = 'given up by the tenant'"
	    "   WHERE id = $1 AND tenant_id = $2 AND status IN ('active', 'suspended')"
	    "   RETURNING id, tenant_id, prefix),"
	    " t AS (UPDATE tokens SET current = false WHERE exemption_id = $1 AND current)"
	    " INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, reason)"
	    " SELECT 'revoke', id, tenant_id, prefix, 'relinquished' FROM x");
	P25_STMT(exists, 2, "SELECT status FROM exemptions WHERE id = $1 AND tenant_id = $2");
	struct p25_err err = { 0 };
	const char *p[2] = { r->params[0], r->who.tenant };
	bool found = false;
	char *s = NULL;
	long n;

	if (!p25_uuid_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such exemption");
		return;
	}
	if (api_begin(r, db, &err) != 0)
		goto reply;
	n = p25_db_run(db, &upd, p, &err);
	if (n < 0)
		goto fail;
	if (n == 0) {
		s = p25_db_text(db, &exists, p, &found, &err);
		if (s)
			p25_err_set(&err, 409, "invalid_state", "the exemption is already %s", s);
		else if (!err.status)
			p25_err_set(&err, 404, "not_found", "no such exemption");
		goto fail;
	}
	if (p25_audit(db, r->who.sub, "exemption.relinquish", "exemption", r->params[0],
		      r->who.tenant, NULL, &err) != 0 ||
	    p25_notify(db, r->who.tenant, "exemption.status", r->params[0], "revoked",
		       "relinquished", &err) != 0)
		goto fail;
	s = p25_db_text(db, &exm_one, p, NULL, &err);
	if (!s || p25_db_commit(db, &err) != 0)
		goto fail;
	api_reply_json_text(r, 200, s);
	free(s);
	return;
fail:
	p25_db_rollback(db);
reply:
	free(s);
	api_reply_err(r, &err);
}
