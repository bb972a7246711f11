/*
 * audit.c — writing audit rows (see audit.h).  The row is one INSERT in the
 * caller's transaction; no commit happens here.
 */
#include <stdlib.h>
#include <jansson.h>

#include "p25/audit.h"
#include "p25/db.h"
#include "p25/err.h"

int
p25_audit(struct p25_db *db, const char *actor, const char *action,
	  const char *object_type, const char *object_id, const char *tenant,
	  json_t *details, struct p25_err *err)
{
	P25_STMT(st, 6, "INSERT INTO audit_log (actor, action, object_type, object_id,"
			" tenant_id, details) VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'))");
	char *dj = details ? json_dumps(details, JSON_COMPACT) : NULL;
	const char *p[6] = { actor, action, object_type, object_id, tenant, dj };
	long n;

	if (details && !dj)
		return p25_err_set(err, 500, "internal", "cannot encode audit details");
	n = p25_db_run(db, &st, p, err);
	free(dj);
	return n == 1 ? 0 : -1;
}
