/*
 * jobs.h — the PostgreSQL job queue (protocol: workers/README.md).
 *
 * Producers enqueue inside their own transaction, so a job exists exactly
 * when the change that asked for it committed; the NOTIFY that wakes the
 * workers is delivered at that commit.  Workers claim jobs with FOR UPDATE
 * SKIP LOCKED under a lease; every claim bumps the job's lease number, and
 * completing or failing a job is fenced by it, so a worker whose lease
 * expired (and whose job another worker re-claimed) can change nothing.
 */
#ifndef P25_JOBS_H
#define P25_JOBS_H

#include <stdbool.h>

struct p25_db;
struct p25_err;
struct json_t;

#define P25_JOBS_CHANNEL "p25_jobs"

struct p25_job {
	long long id;
	char kind[33];
	struct json_t *payload;	/* owned by the runner; read-only for handlers */
	int attempts;		/* including this one */
	int max_attempts;
	long long lease;	/* fencing token of this claim */
	bool completed;		/* set by p25_job_complete() */
};

/*
 * Queues a job of kind with payload (borrowed; may be NULL for {}), to run
 * after delay_s seconds.  With a dedupe_key, a job of the same kind and key
 * that is still queued or running makes this a no-op (returns 0).  Must be
 * called inside the caller's transaction.
 */
int p25_job_enqueue(struct p25_db *db, const char *kind,
		    struct json_t *payload, const char *dedupe_key, int delay_s,
		    struct p25_err *err);

/*
 * The same without the NOTIFY, for hot paths: a transaction that NOTIFYs
 * takes a database-wide lock from its commit until its WAL is flushed, so
 * concurrent notifying commits cannot share a flush (one fsync each).
 * After the commit, call p25_jobs_wake() outside any transaction (its own
 * commit writes nothing, so the lock is brief); if the process dies in
 * between, the workers' poll timer picks the job up.
 */
int p25_job_enqueue_nowake(struct p25_db *db, const char *kind,
			   struct json_t *payload, struct p25_err *err);
/* Wakes the workers for kind.  Outside a transaction; errors are logged. */
void p25_jobs_wake(struct p25_db *db, const char *kind);

/*
 * Marks the job done inside the caller's open transaction, fenced by its
 * lease.  Returns -1 with err 409 "lease_lost" when the lease is no longer
 * this worker's: the caller must roll back.  Handlers whose work writes to
 * the database call this in the same transaction as their effects, which
 * is what makes a job take effect exactly once.
 */
int p25_job_complete(struct p25_db *db, struct p25_job *job,
		     struct p25_err *err);

/*
 * A job kind's handler.  Runs with no transaction open.  Return 0 when the
 * work is done (if the handler did not call p25_job_complete() the runner
 * completes the job in a transaction of its own), -1 with err filled to
 * have it retried with exponential backoff (parked after max_attempts).
 */
typedef int (*p25_job_fn)(struct p25_job *job, struct p25_db *db,
			  struct p25_err *err);

struct p25_job_kind {
	const char *kind;
	p25_job_fn run;
};

#endif
