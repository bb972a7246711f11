/*
 * suspend.c — suspension of an exemption (see suspend.h).  One statement
 * does the state change, the token and the feed event, so the port closes
 * exactly when the suspension commits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "p25/audit.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/notify.h"
#include "p25/suspend.h"
#include "p25/vetting.h"

int
p25_review_item(struct p25_db *db, const char *request_id, const char *actor,
		const char *code, const char *message, struct p25_err *err)
{
	P25_STMT(item, 4,
	    "WITH r AS (UPDATE requests SET status = 'needs_review', version = version + 1,"
	    "   updated_at = now() WHERE id = $1 AND status IN ('approved', 'needs_review')"
	    "   RETURNING id, tenant_id, vetting_round)"
	    " INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes, message)"
	    " SELECT id, tenant_id, vetting_round, 'needs_review', $2, ARRAY[$3], $4 FROM r");
	const char *p[4] = { request_id, actor, code, message };

	return p25_db_run(db, &item, p, err) < 0 ? -1 : 0;
}

int
p25_suspend(struct p25_db *db, const struct p25_policy *pol, const char *exemption_id,
	    const char *cause, const char *code, const char *reason, json_t *evidence,
	    const char *actor, struct p25_err *err)
{
	P25_STMT(st, 4,
	    "WITH x AS (UPDATE exemptions SET status = 'suspended', updated_at = now(),"
	    "   suspensions = suspensions + 1, suspended_cause = $2, status_reason = $3,"
	    "   cooldown_until = now() + ($4::integer[])[least(suspensions + 1,"
	    "     array_length($4::integer[], 1))] * interval '1 hour'"
	    "   WHERE id = $1 AND status = 'active'"
	    "   RETURNING id, tenant_id, prefix, request_id, suspensions, cooldown_until),"
	    " t AS (UPDATE tokens SET current = false WHERE exemption_id = $1 AND current),"
	    " f AS (INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, reason)"
	    "   SELECT 'revoke', id, tenant_id, prefix, 'suspended: ' || $2 FROM x)"
	    " SELECT tenant_id, request_id, suspensions, cooldown_until, prefix::text FROM x");
	char cool[64];
	json_t *d = NULL;
	PGresult *res;
	int rc = -1;

	p25_policy_cooldowns(pol, cool, sizeof(cool));
	{
		const char *p[4] = { exemption_id, cause, reason, cool };
		res = p25_db_exec(db, &st, p, err);
	}
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	{
		char msg[600];
		snprintf(msg, sizeof(msg), "exemption %s (%s) suspended: %.400s", exemption_id,
			 PQgetvalue(res, 0, 4), reason);
		if (p25_review_item(db, PQgetvalue(res, 0, 1), actor, code, msg, err) != 0)
			goto out;
	}
	d = json_pack("{s:s, s:s, s:s, s:i, s:s}", "cause", cause, "code", code, "reason", reason,
		      "suspensions", (int)strtol(PQgetvalue(res, 0, 2), NULL, 10),
		      "cooldown_until", PQgetvalue(res, 0, 3));
	if (evidence)
		json_object_set(d, "evidence", evidence);
	if (p25_audit(db, actor, "exemption.suspend", "exemption", exemption_id,
		      PQgetvalue(res, 0, 0), d, err) != 0 ||
	    p25_notify(db, PQgetvalue(res, 0, 0), "exemption.status", exemption_id, "suspended",
		       reason, err) != 0)
		goto out;
	rc = 1;
out:
	json_decref(d);
	PQclear(res);
	return rc;
}
