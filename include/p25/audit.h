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

/*
 * Seals audit rows into the hash chain: every row whose transaction can no
 * longer be followed by an earlier one (xid below the snapshot's xmin), in
 * (xid, seq) order, at most limit rows.  hash = BLAKE2b-256(prev_hash ||
 * canonical entry); the first link's prev_hash is 32 zero bytes.  Runs in
 * its own transaction, serialized by an advisory lock.  Returns the number
 * of rows sealed, or -1.
 */
long p25_audit_seal(struct p25_db *db, int limit, struct p25_err *err);

struct p25_audit_report {
	long long checked;	/* links verified */
	long long unsealed;	/* rows not (yet) in the chain */
	long long broken_pos;	/* first bad link's position, -1 when none */
	char problem[256];	/* what is wrong at broken_pos */
};
/* Walks the whole chain and recomputes every link. */
int p25_audit_verify(struct p25_db *db, struct p25_audit_report *rep,
		     struct p25_err *err);

#endif
