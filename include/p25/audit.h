/*
 * audit.h — the audit log.  Every state change writes its row through
 * p25_audit() inside the transaction that makes the change: if the row
 * cannot be written the caller rolls back and nothing changes (fail
 * closed).  Rows are hash-chained afterwards by the sealer (see
 * migrations/0001_schema.sql, audit_chain).
 */
#ifndef P25_AUDIT_H
#define P25_AUDIT_H

struct p25_db;
struct p25_err;
struct json_t;

/*
 * Appends one audit row.  actor is the principal (sub) or "system:<part>";
 * action a stable dotted name ("request.submit"); object_type/object_id
 * what changed; tenant the owning tenant (NULL for global objects);
 * details a JSON object (borrowed; may be NULL).  Must run inside the
 * caller's transaction.
 */
int p25_audit(struct p25_db *db, const char *actor, const char *action,
	      const char *object_type, const char *object_id,
	      const char *tenant, struct json_t *details, struct p25_err *err);

#endif
