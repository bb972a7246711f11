/*
 * jobs.c — the producer and completion side of the job queue (jobs.h).
 *
 * Both functions run inside the caller's transaction on the caller's
 * connection: the API enqueues in the same transaction as the state change
 * that asks for the work, and a handler completes its job in the same
 * transaction as the work's effects.  That is the whole trick behind "a job
 * exists exactly when its cause committed" and "a job's effects are applied
 * exactly once": the fence (id, lease, state = 'running') makes the
 * completion of a worker whose lease was taken over update nothing, and the
 * caller rolls its effects back.
 *
 * The NOTIFY is issued by the enqueue statement itself (pg_notify over the
 * inserted row), so it is delivered exactly when the transaction commits and
 * never for a job that was deduplicated away.  Several enqueues of one kind
 * in a transaction collapse into one notification (PostgreSQL folds equal
 * channel + payload pairs).  The runtime, its claim and its failure
 * bookkeeping live in workers/queue.c; the protocol is workers/README.md.
 *
 * Thread-safety: stateless; the statements are process-wide, the connection
 * is the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/jobs.h"
#include "p25/log.h"

int
p25_job_enqueue_nowake(struct p25_db *db, const char *kind, json_t *payload,
		       struct p25_err *err)
{
	P25_STMT(st, 2, "INSERT INTO jobs (kind, payload) VALUES ($1, $2::jsonb)");
	char *body = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	const char *p[2] = { kind, body ? body : "{}" };
	long n;

	if (payload && !body)
		return p25_err_set(err, 500, "internal", "job payload cannot be encoded");
	n = p25_db_run(db, &st, p, err);
	free(body);
	return n == 1 ? 0 : -1;
}

void
p25_jobs_wake(struct p25_db *db, const char *kind)
{
	P25_STMT(st, 1, "SELECT pg_notify('" P25_JOBS_CHANNEL "', $1)");
	struct p25_err err = { 0 };
	const char *p[1] = { kind };

	if (p25_db_run(db, &st, p, &err) < 0)
		p25_warn("job.wake", "cannot wake the %s workers: %s", kind, err.detail);
	p25_err_clear(&err);
}

int
p25_job_enqueue(struct p25_db *db, const char *kind, json_t *payload,
		const char *dedupe_key, int delay_s, struct p25_err *err)
{
	P25_STMT(st, 4,
	    "WITH ins AS ("
	    " INSERT INTO jobs (kind, payload, dedupe_key, run_at)"
	    " VALUES ($1, $2::jsonb, $3, now() + make_interval(secs => $4::int))"
	    " ON CONFLICT (kind, dedupe_key)"
	    "  WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')"
	    " DO NOTHING"
	    " RETURNING id, kind)"
	    " SELECT id, pg_notify('" P25_JOBS_CHANNEL "', kind) FROM ins");
	char delay[16];
	char *body = NULL;
	const char *p[4];
	PGresult *res = NULL;
	int rc = -1;

	if (!kind || delay_s < 0) {
		p25_err_set(err, 500, "internal", "bad job enqueue arguments");
		goto out;
	}
	if (payload)
		body = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
	if (payload && !body) {
		p25_err_set(err, 500, "internal", "job payload cannot be encoded");
		goto out;
	}
	snprintf(delay, sizeof(delay), "%d", delay_s);
	p[0] = kind;
	p[1] = body ? body : "{}";
	p[2] = dedupe_key;
	p[3] = delay;
	res = p25_db_exec(db, &st, p, err);
	if (!res)
		goto out;
	if (PQntuples(res) == 1)
		p25_debug("job.enqueue", "queued %s job %s to run in %d s", kind,
			  PQgetvalue(res, 0, 0), delay_s);
	else
		p25_debug("job.dedupe", "%s job with key %s already queued", kind,
			  dedupe_key ? dedupe_key : "-");
	rc = 0;
out:
	PQclear(res);
	free(body);
	return rc;
}

int
p25_job_complete(struct p25_db *db, struct p25_job *job, struct p25_err *err)
{
	P25_STMT(st, 2,
	    "UPDATE jobs SET state = 'done', finished_at = now(), updated_at = now(),"
	    " locked_by = NULL, locked_until = NULL"
	    " WHERE id = $1 AND lease = $2 AND state = 'running'");
	char id[24], lease[24];
	const char *p[2] = { id, lease };
	long n;

	snprintf(id, sizeof(id), "%lld", job->id);
	snprintf(lease, sizeof(lease), "%lld", job->lease);
	n = p25_db_run(db, &st, p, err);
	if (n < 0)
		return -1;
	if (n == 0)
		return p25_err_set(err, 409, "lease_lost",
				   "job %lld lease %lld is no longer held by this worker",
				   job->id, job->lease);
	job->completed = true;
	return 0;
}
