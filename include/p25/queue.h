/*
 * queue.h — the job runtime: what p25-worker (and the test workers) run.
 *
 * The protocol (states, claim, lease and fencing, backoff, parking, reaping,
 * wake-ups, shutdown) is described in workers/README.md; the producer side
 * (p25_job_enqueue, p25_job_complete) is include/p25/jobs.h.
 *
 * One struct p25_queue per process.  p25_queue_run() blocks the calling
 * thread, which becomes the dispatcher: it holds the LISTEN connection, the
 * poll timer and the periodic reaper and cleanup.  opts.threads runner
 * threads, each with its own database connection, claim batches of jobs and
 * run their handlers.  p25_queue_stop() may be called from a signal handler.
 */
#ifndef P25_QUEUE_H
#define P25_QUEUE_H

#include "p25/jobs.h"

struct p25_config;
struct p25_err;
struct p25_queue;

struct p25_queue_opts {
	const char *database_url;	/* borrowed; copied by p25_queue_new */
	int threads;		/* runner threads (connections) */
	int lease_s;		/* seconds a claim is leased */
	int max_attempts;	/* cap on attempts; a job row may ask for fewer */
	int poll_interval_s;	/* wake-up timer when no NOTIFY arrives */
	int batch;		/* jobs claimed per round trip */
	int reap_interval_s;	/* expired-lease sweep period */
	int done_retention_s;	/* done jobs older than this are deleted */
	int cleanup_interval_s;	/* period of that deletion */
	int cleanup_batch;	/* rows deleted per cleanup statement */
};

/* Fills o from cfg (P25_WORKER_THREADS, P25_JOB_*), and the fixed defaults. */
void p25_queue_opts_init(struct p25_queue_opts *o, const struct p25_config *cfg);

/*
 * Creates a queue for the kinds in kinds[], an array ended by an entry whose
 * kind is NULL (the array is borrowed and must outlive the queue).  Kind
 * names must match the jobs.kind check (^[a-z][a-z0-9_.]{0,31}$) and be
 * unique.  Connects nothing yet.  Returns NULL with err filled.
 */
struct p25_queue *p25_queue_new(const struct p25_queue_opts *o,
				const struct p25_job_kind *kinds,
				struct p25_err *err);

/*
 * Runs until p25_queue_stop(): starts the runners, dispatches wake-ups, reaps
 * expired leases and deletes old done jobs.  On stop, runners finish the job
 * they are running, hand back the jobs they claimed but did not start, and
 * are joined before it returns 0.  -1 with err filled when the runtime could
 * not start (threads, memory).  Database outages are waited out, not errors.
 * Call once per queue.
 */
int p25_queue_run(struct p25_queue *q, struct p25_err *err);

/* Asks p25_queue_run() to return.  Async-signal-safe; any thread. */
void p25_queue_stop(struct p25_queue *q);

/* Releases q; p25_queue_run() must have returned (or never been called). */
void p25_queue_free(struct p25_queue *q);

struct p25_queue_stats {
	unsigned long claimed;	/* claims (a retried job counts each time) */
	unsigned long done;	/* completed */
	unsigned long failed;	/* handler failures re-queued with backoff */
	unsigned long parked;	/* handler failures that parked the job */
	unsigned long lost;	/* completions or failures refused by the fence */
	unsigned long released;	/* claimed, not started, handed back */
	unsigned long reaped;	/* expired leases this process re-queued or parked */
};
/* A snapshot of the counters.  Thread-safe. */
void p25_queue_stats(struct p25_queue *q, struct p25_queue_stats *st);

/*
 * The whole life of a worker binary: loads the configuration (exit 78 on a
 * bad value), starts logging as process, installs SIGTERM/SIGINT handlers
 * (the first one stops the queue gracefully, a second one kills at once),
 * runs the queue for kinds and frees everything.  Returns main()'s exit
 * status: 0 after a graceful stop.
 */
int p25_queue_main(const char *process, const struct p25_job_kind *kinds);

/*
 * Seconds before attempt `attempts + 1` of a job whose attempt number
 * `attempts` (>= 1) failed: min(2^attempts, 3600) scaled by a jitter factor
 * in [0.8, 1.2) drawn from r in [0, 1).  Pure; thread-safe.
 */
static inline double
p25_queue_backoff(int attempts, double r)
{
	double base = 3600.0;

	if (attempts < 1)
		attempts = 1;
	if (attempts < 12)
		base = (double)(1L << attempts);
	if (base > 3600.0)
		base = 3600.0;
	if (!(r >= 0.0))	/* also catches NaN */
		r = 0.0;
	if (r >= 1.0)
		r = 0.999999;
	return base * (0.8 + 0.4 * r);
}

/*
 * --- built-in job kinds ---
 * The kinds of p25-worker itself are declared in workers/worker.h and
 * registered with one line each in the kinds[] table of workers/main.c.
 * Handlers must be idempotent (they may run again after a crash or a lost
 * lease; see workers/README.md).
 */

/* "noop": completes at once.  Checks that a deployment's workers claim and
 * complete jobs: INSERT INTO jobs (kind) VALUES ('noop'); */
int p25_job_noop(struct p25_job *job, struct p25_db *db, struct p25_err *err);

#endif
