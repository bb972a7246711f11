/*
 * queue.c — the job runtime: claim, run, complete or fail, reap, clean up.
 *
 * DESIGN
 *
 * PostgreSQL is the queue; this file only moves rows between states under a
 * lease (the protocol, with its SQL, is workers/README.md).  A process runs
 * one struct p25_queue:
 *
 *   dispatcher  the thread that called p25_queue_run().  It owns the
 *               listener connection (LISTEN p25_jobs) and poll()s its
 *               socket together with an eventfd (stop requests from signal
 *               handlers, "recompute" kicks from runners) and a timer.  It
 *               wakes the runners on a notification, on the poll timer
 *               (P25_JOB_POLL_INTERVAL: notifications are lost while
 *               disconnected) and when the earliest delayed or backed-off
 *               job falls due.  On the same connection it periodically
 *               re-queues jobs whose lease expired (the reaper) and deletes
 *               done jobs past their retention, in bounded batches.
 *   runners     opts.threads threads, each with its own connection.  A
 *               runner claims up to opts.batch due jobs of the registered
 *               kinds in one statement (FOR UPDATE SKIP LOCKED, bumping
 *               attempts and the lease number), runs their handlers one by
 *               one with no transaction open, then completes or fails each
 *               one fenced by (id, lease, state = 'running').  A kind with
 *               a batch handler (batchers[] below; "vet") gets all of its
 *               jobs of the claim in one call instead.  It claims
 *               again at once after a batch and only sleeps when a claim
 *               came back empty.
 *
 * Concurrency: runners and the dispatcher share only q->mu/q->cv/q->gen
 * (wake-ups: a runner remembers gen before it claims and sleeps only while
 * gen is unchanged, so a wake-up that races with a claim is never lost), the
 * atomic stop flag and the atomic counters.  Each struct p25_db belongs to
 * exactly one thread.  p25_queue_stop() only stores the flag and writes the
 * eventfd, so a signal handler may call it.
 *
 * Shutdown: the dispatcher notices the stop flag, bumps gen and broadcasts;
 * a runner finishes the handler it is in, hands back the jobs of its batch
 * it has not started (state back to 'queued', attempts restored, fenced,
 * with a NOTIFY so other workers pick them up at once) and exits.  The same
 * hand-back happens when half the lease has gone by before a batch's next
 * job starts, so a slow batch never runs a job on a lease about to expire.
 *
 * Delivery is at least once: a handler may run again after a crash or a
 * lost lease.  Handlers that write to the database call p25_job_complete()
 * in the transaction of their effects, which makes the effects exactly-once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "p25/config.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/jobs.h"
#include "p25/log.h"
#include "p25/queue.h"
#include "worker.h"

#define QUEUE_MAX_KINDS 64
#define QUEUE_ERROR_MAX 400	/* bytes of an error kept in jobs.last_error */
#define QUEUE_RETRY_MS 2000	/* reconnect / failed-claim pause */

/* a claimed job and the kind that runs it */
struct slot {
	struct p25_job job;
	const struct p25_job_kind *kind;
};

struct runner {
	struct p25_queue *q;
	int index;
	pthread_t thread;
	struct slot *slots;	/* opts.batch of them */
	struct runner_batch {	/* run_batch()'s arrays, opts.batch each */
		bool *done;
		struct p25_job **jobs;
		struct p25_err *errs;
		int *rcs, *idx;
	} b;
	char me[128];		/* jobs.locked_by of this runner's claims */
};

struct p25_queue {
	struct p25_queue_opts o;
	char *url;
	const struct p25_job_kind *kinds;
	size_t nkinds;
	char *kinds_param;	/* the kinds as a text[] literal: {"a","b"} */
	char host[64];

	int efd;		/* eventfd: stop requests and kicks */
	atomic_bool stop;
	bool ran;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long gen;	/* bumped by every wake-up, under mu */

	struct runner *runners;
	int nrunners;		/* started threads */

	atomic_ulong claimed, done, failed, parked, lost, released, reaped;
};

/* ------------------------------------------------------------ helpers */

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
kind_valid(const char *k)
{
	size_t i;

	if (!k || !(k[0] >= 'a' && k[0] <= 'z'))
		return false;
	for (i = 1; k[i]; i++) {
		char c = k[i];

		if (i >= 32)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

/*
 * Copies at most cap - 1 bytes of src into dst, cutting at a character
 * boundary and replacing bytes that are not UTF-8 with '?': PostgreSQL
 * refuses text that is not valid UTF-8, and a failure record it refuses
 * would leave the job to the reaper.
 */
static void
utf8_clip(char *dst, size_t cap, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	while (*s && o + 1 < cap) {
		size_t n = 1, k;

		if (*s >= 0xf0 && *s <= 0xf4)
			n = 4;
		else if (*s >= 0xe0)
			n = *s <= 0xef ? 3 : 0;
		else if (*s >= 0xc2)
			n = 2;
		else if (*s >= 0x80)
			n = 0;
		for (k = 1; n > 1 && k < n; k++)
			if ((s[k] & 0xc0) != 0x80)
				n = 0;
		if (n == 0) {
			dst[o++] = '?';
			s++;
			continue;
		}
		if (o + n >= cap)
			break;
		memcpy(dst + o, s, n);
		o += n;
		s += n;
	}
	dst[o] = '\0';
}

static void
wake_runners(struct p25_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->gen++;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static unsigned long
gen_get(struct p25_queue *q)
{
	unsigned long g;

	pthread_mutex_lock(&q->mu);
	g = q->gen;
	pthread_mutex_unlock(&q->mu);
	return g;
}

/* Sleeps up to ms, or until a wake-up after `seen`, or until stop. */
static void
wait_wake(struct p25_queue *q, unsigned long seen, long long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->mu);
	while (q->gen == seen && !atomic_load(&q->stop))
		if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&q->mu);
}

/* Asks the dispatcher to look again for the next due job. */
static void
kick(struct p25_queue *q)
{
	uint64_t one = 1;

	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: a wake-up is pending anyway */
	}
}

/* ------------------------------------------------------------ runners */

/*
 * Claims up to opts.batch due jobs into r->slots.  Returns how many, or -1
 * with err filled.  Payloads that do not parse leave job.payload NULL: the
 * job is then failed like any handler failure.
 */
static int
claim(struct runner *r, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(st, 5,
	    "WITH c AS MATERIALIZED ("
	    " SELECT id FROM jobs"
	    "  WHERE state = 'queued' AND run_at <= now() AND kind = ANY($3::text[])"
	    "  ORDER BY run_at, id FOR UPDATE SKIP LOCKED LIMIT $4)"
	    " UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,"
	    "  lease = j.lease + 1, locked_by = $1,"
	    "  locked_until = now() + make_interval(secs => $2::int), updated_at = now()"
	    " FROM c WHERE j.id = c.id"
	    " RETURNING j.id, j.kind, j.payload::text, j.attempts,"
	    "  least(j.max_attempts, $5::int), j.lease");
	struct p25_queue *q = r->q;
	char lease[16], limit[16], cap[16];
	const char *p[5] = { r->me, lease, q->kinds_param, limit, cap };
	PGresult *res;
	int i, n;

	snprintf(lease, sizeof(lease), "%d", q->o.lease_s);
	snprintf(limit, sizeof(limit), "%d", q->o.batch);
	snprintf(cap, sizeof(cap), "%d", q->o.max_attempts);
	res = p25_db_exec(db, &st, p, err);
	if (!res)
		return -1;
	n = PQntuples(res);
	if (n > q->o.batch)	/* cannot happen: LIMIT */
		n = q->o.batch;
	for (i = 0; i < n; i++) {
		struct slot *s = &r->slots[i];
		size_t k;

		memset(s, 0, sizeof(*s));
		s->job.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(s->job.kind, sizeof(s->job.kind), "%s", PQgetvalue(res, i, 1));
		s->job.payload = json_loads(PQgetvalue(res, i, 2), JSON_DECODE_ANY, NULL);
		s->job.attempts = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
		s->job.max_attempts = (int)strtol(PQgetvalue(res, i, 4), NULL, 10);
		s->job.lease = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		for (k = 0; k < q->nkinds; k++)
			if (strcmp(q->kinds[k].kind, s->job.kind) == 0)
				s->kind = &q->kinds[k];
	}
	PQclear(res);
	atomic_fetch_add(&q->claimed, (unsigned long)n);
	return n;
}

/* Hands a claimed, unstarted job back to the queue (fenced). */
static void
release(struct runner *r, struct p25_db *db, struct p25_job *job)
{
	P25_STMT(st, 2,
	    "WITH u AS ("
	    " UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = now(),"
	    "  locked_by = NULL, locked_until = NULL, updated_at = now()"
	    " WHERE id = $1 AND lease = $2 AND state = 'running'"
	    " RETURNING kind)"
	    " SELECT pg_notify('" P25_JOBS_CHANNEL "', kind) FROM u");
	struct p25_err err = { 0 };
	char id[24], lease[24];
	const char *p[2] = { id, lease };
	long n;

	snprintf(id, sizeof(id), "%lld", job->id);
	snprintf(lease, sizeof(lease), "%lld", job->lease);
	n = p25_db_run(db, &st, p, &err);
	if (n < 0)
		p25_warn("job.release_failed", "job %lld not handed back (%s); its lease "
			 "will expire", job->id, err.detail);
	else if (n == 1)
		atomic_fetch_add(&r->q->released, 1);
	p25_err_clear(&err);
}

/* Records a handler failure: back to queued with backoff, or parked. */
static void
record_failure(struct runner *r, struct p25_db *db, struct p25_job *job,
     const struct p25_err *herr)
{
	P25_STMT(st, 5,
	    "UPDATE jobs SET"
	    " state = CASE WHEN attempts >= least(max_attempts, $3::int)"
	    "  THEN 'parked' ELSE 'queued' END,"
	    " run_at = CASE WHEN attempts >= least(max_attempts, $3::int)"
	    "  THEN run_at ELSE now() + make_interval(secs => $4::float8) END,"
	    " finished_at = CASE WHEN attempts >= least(max_attempts, $3::int)"
	    "  THEN now() END,"
	    " last_error = $5, locked_by = NULL, locked_until = NULL, updated_at = now()"
	    " WHERE id = $1 AND lease = $2 AND state = 'running'"
	    " RETURNING state");
	struct p25_queue *q = r->q;
	struct p25_err err = { 0 };
	char id[24], lease[24], cap[16], delay[32], msg[QUEUE_ERROR_MAX + 1];
	const char *p[5] = { id, lease, cap, delay, msg };
	double backoff;
	PGresult *res;

	backoff = p25_queue_backoff(job->attempts,
				    (double)arc4random_uniform(1u << 24) / (double)(1u << 24));
	snprintf(id, sizeof(id), "%lld", job->id);
	snprintf(lease, sizeof(lease), "%lld", job->lease);
	snprintf(cap, sizeof(cap), "%d", q->o.max_attempts);
	snprintf(delay, sizeof(delay), "%.3f", backoff);
	utf8_clip(msg, sizeof(msg), herr->detail[0] ? herr->detail :
		  herr->code[0] ? herr->code : "handler failed");
	res = p25_db_exec(db, &st, p, &err);
	if (!res) {
		p25_error("job.fail_unrecorded", "%s attempt %d failed (%s) and the "
			  "failure could not be recorded (%s); the lease will expire",
			  job->kind, job->attempts, msg, err.detail);
	} else if (PQntuples(res) == 0) {
		atomic_fetch_add(&q->lost, 1);
		p25_warn("job.lease_lost", "%s attempt %d failed (%s) after its lease "
			 "%lld was taken over; nothing recorded", job->kind,
			 job->attempts, msg, job->lease);
	} else if (strcmp(PQgetvalue(res, 0, 0), "parked") == 0) {
		atomic_fetch_add(&q->parked, 1);
		p25_error("job.parked", "%s parked after attempt %d of %d: %s",
			  job->kind, job->attempts, job->max_attempts, msg);
	} else {
		atomic_fetch_add(&q->failed, 1);
		p25_warn("job.failed", "%s attempt %d of %d failed, retry in %.1f s: %s",
			 job->kind, job->attempts, job->max_attempts, backoff, msg);
		kick(q);	/* the dispatcher learns the new due time */
	}
	PQclear(res);
	p25_err_clear(&err);
}

/*
 * Kinds whose handler has a batch form (workers/worker.h): a runner holding
 * several claimed jobs of such a kind runs them in one call.
 */
static const struct {
	p25_job_fn one;
	p25_job_batch_fn many;
} batchers[] = {
	{ p25_job_vet, p25_job_vet_batch },
};

static p25_job_batch_fn
batcher_of(const struct p25_job_kind *k)
{
	size_t i;

	for (i = 0; k && i < sizeof(batchers) / sizeof(batchers[0]); i++)
		if (batchers[i].one == k->run)
			return batchers[i].many;
	return NULL;
}

/* After a handler: a transaction it left open is rolled back (and fails the
 * job).  Also when the connection broke mid-transaction: rollback clears
 * in_tx, without which the next statement would never reconnect. */
static bool
close_open_tx(struct p25_db *db, const char *kind)
{
	if (db->in_tx || (PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)) {
		p25_db_rollback(db);
		p25_warn("job.open_transaction", "%s handler left a transaction open; "
			 "rolled back", kind);
		return true;
	}
	return false;
}

/* Completes (when the handler did not), counts and logs a job after its
 * handler returned rc with err, or records its failure. */
static void
finish_job(struct runner *r, struct p25_db *db, struct p25_job *job, int rc,
	   struct p25_err *errp, long long t0)
{
	struct p25_queue *q = r->q;
	struct p25_err err = *errp;	/* takes it over: errp is left empty */

	memset(errp, 0, sizeof(*errp));
	if (rc == 0) {
		if (!job->completed) {
			p25_err_clear(&err);
			if (p25_job_complete(db, job, &err) != 0) {
				if (strcmp(err.code, "lease_lost") == 0) {
					atomic_fetch_add(&q->lost, 1);
					p25_warn("job.lease_lost", "%s finished after its lease "
						 "%lld was taken over", job->kind, job->lease);
				} else {
					p25_error("job.complete_failed", "%s finished but could not "
						  "be marked done (%s); it will run again",
						  job->kind, err.detail);
				}
				goto out;
			}
		}
		atomic_fetch_add(&q->done, 1);
		p25_info("job.done", "%s done in %lld ms (attempt %d)", job->kind,
			 mono_ms() - t0, job->attempts);
	} else if (strcmp(err.code, "lease_lost") == 0) {
		/* the handler's own p25_job_complete() was refused */
		atomic_fetch_add(&q->lost, 1);
		p25_warn("job.lease_lost", "%s attempt %d: lease %lld was taken over; "
			 "its effects were rolled back", job->kind, job->attempts, job->lease);
	} else {
		record_failure(r, db, job, &err);
	}
out:
	p25_err_clear(&err);
}

static void
run_job(struct runner *r, struct p25_db *db, struct slot *s)
{
	struct p25_job *job = &s->job;
	struct p25_err err = { 0 };
	char ctx[40];
	long long t0 = mono_ms();
	int rc;

	snprintf(ctx, sizeof(ctx), "job:%lld", job->id);
	p25_log_ctx(ctx);
	if (!s->kind)
		rc = p25_err_set(&err, 500, "unknown_kind", "no handler for kind %s",
				 job->kind);
	else if (!job->payload)
		rc = p25_err_set(&err, 500, "bad_payload", "the payload is not valid JSON");
	else
		rc = s->kind->run(job, db, &err);
	if (close_open_tx(db, job->kind) && rc == 0) {
		job->completed = false;
		rc = p25_err_set(&err, 500, "open_transaction",
				 "the handler returned with a transaction open");
	}
	finish_job(r, db, job, rc, &err, t0);
	p25_log_ctx(NULL);
}

/*
 * Runs slots[first] and every later slot of the same kind in slots[0..n)
 * that is not done[] yet through the kind's batch handler; marks them done.
 */
static void
run_batch(struct runner *r, struct p25_db *db, int first, int n, bool *done,
	  p25_job_batch_fn many)
{
	struct p25_job **jobs = r->b.jobs;
	struct p25_err *errs = r->b.errs;
	int *rcs = r->b.rcs, *idx = r->b.idx, m = 0, i;
	long long t0 = mono_ms();
	char ctx[40];

	for (i = first; i < n; i++) {
		struct slot *s = &r->slots[i];
		if (done[i] || s->kind != r->slots[first].kind || !s->job.payload)
			continue;
		idx[m] = i;
		jobs[m] = &s->job;
		memset(&errs[m], 0, sizeof(errs[m]));
		rcs[m] = 0;
		m++;
		done[i] = true;
	}
	snprintf(ctx, sizeof(ctx), "jobs:%lld+%d", jobs[0]->id, m - 1);
	p25_log_ctx(ctx);
	many(jobs, m, db, rcs, errs);
	if (close_open_tx(db, jobs[0]->kind)) {
		for (i = 0; i < m; i++) {
			if (rcs[i] != 0)
				continue;
			/* a completion inside the rolled-back transaction is gone */
			jobs[i]->completed = false;
			rcs[i] = p25_err_set(&errs[i], 500, "open_transaction",
					     "the handler returned with a transaction open");
		}
	}
	for (i = 0; i < m; i++) {
		snprintf(ctx, sizeof(ctx), "job:%lld", jobs[i]->id);
		p25_log_ctx(ctx);
		if (rcs[i] != 0 && !jobs[i]->completed &&
		    strcmp(errs[i].code, P25_JOB_NOT_STARTED) == 0) {
			release(r, db, jobs[i]);
			p25_err_clear(&errs[i]);
		} else {
			finish_job(r, db, jobs[i], rcs[i], &errs[i], t0);
		}
		json_decref(r->slots[idx[i]].job.payload);
		r->slots[idx[i]].job.payload = NULL;
	}
	p25_log_ctx(NULL);
}

static void *
runner_main(void *arg)
{
	struct runner *r = arg;
	struct p25_queue *q = r->q;
	struct p25_db *db = NULL;
	char app[48];

	snprintf(app, sizeof(app), "p25-worker/%d", r->index);
	while (!atomic_load(&q->stop)) {
		struct p25_err err = { 0 };
		unsigned long seen = gen_get(q);
		long long t0;
		int i, n, abandoned = 0;
		bool *done = r->b.done;

		if (!db) {
			db = p25_db_connect(q->url, app, &err);
			p25_err_clear(&err);
			if (!db)
				wait_wake(q, seen, QUEUE_RETRY_MS);
			continue;
		}
		t0 = mono_ms();
		n = claim(r, db, &err);
		if (n < 0) {
			p25_warn("queue.claim_failed", "%s", err.detail);
			p25_err_clear(&err);
			wait_wake(q, seen, QUEUE_RETRY_MS);
			continue;
		}
		if (n == 0) {
			wait_wake(q, seen, 2000LL * q->o.poll_interval_s);
			continue;
		}
		memset(done, 0, (size_t)n * sizeof(*done));
		for (i = 0; i < n; i++) {
			struct slot *s = &r->slots[i];
			p25_job_batch_fn many;
			int j, same = 0;

			if (done[i])
				continue;
			for (j = i + 1; j < n; j++)
				same += !done[j] && s->kind && r->slots[j].kind == s->kind;
			many = same > 0 && s->job.payload ? batcher_of(s->kind) : NULL;
			if (PQstatus(db->conn) != CONNECTION_OK)
				abandoned++;	/* nothing can be recorded */
			else if (atomic_load(&q->stop) ||
				 mono_ms() - t0 > 500LL * q->o.lease_s)
				release(r, db, &s->job);
			else if (many) {
				run_batch(r, db, i, n, done, many);
				continue;
			} else
				run_job(r, db, s);
			done[i] = true;
			json_decref(s->job.payload);
			s->job.payload = NULL;
		}
		if (abandoned > 0)
			p25_warn("queue.abandoned", "database connection lost: %d claimed "
				 "jobs left to the reaper", abandoned);
	}
	p25_db_close(db);
	return NULL;
}

/* ------------------------------------------------------------ dispatcher */

static struct p25_db *
listener_open(struct p25_queue *q)
{
	struct p25_err err = { 0 };
	struct p25_db *db;

	db = p25_db_connect(q->url, "p25-worker/listener", &err);
	if (db && p25_db_command(db, "LISTEN " P25_JOBS_CHANNEL, &err) != 0) {
		p25_db_close(db);
		db = NULL;
	}
	if (db)
		p25_debug("queue.listen", "listening on " P25_JOBS_CHANNEL);
	else
		p25_warn("queue.listen_failed", "%s; retrying", err.detail);
	p25_err_clear(&err);
	return db;
}

/* Takes the notifications libpq has buffered; returns how many. */
static int
drain_notifies(struct p25_db *db)
{
	PGnotify *nt;
	int n = 0;

	while ((nt = PQnotifies(db->conn)) != NULL) {
		PQfreemem(nt);
		n++;
	}
	return n;
}

/* Re-queues (or parks) running jobs whose lease expired.  Returns how many. */
static long
reap(struct p25_queue *q, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "WITH x AS MATERIALIZED ("
	    " SELECT id, locked_by FROM jobs"
	    "  WHERE state = 'running' AND locked_until < now()"
	    "  ORDER BY locked_until LIMIT $2 FOR UPDATE SKIP LOCKED),"
	    " u AS ("
	    " UPDATE jobs j SET"
	    "  state = CASE WHEN j.attempts >= least(j.max_attempts, $1::int)"
	    "   THEN 'parked' ELSE 'queued' END,"
	    "  finished_at = CASE WHEN j.attempts >= least(j.max_attempts, $1::int)"
	    "   THEN now() END,"
	    "  run_at = now(), last_error = 'lease expired', locked_by = NULL,"
	    "  locked_until = NULL, updated_at = now()"
	    " FROM x WHERE j.id = x.id"
	    " RETURNING j.id, j.kind, j.state, j.attempts, x.locked_by)"
	    " SELECT id, kind, state, attempts, locked_by,"
	    "  pg_notify('" P25_JOBS_CHANNEL "', kind) FROM u");
	struct p25_err err = { 0 };
	char cap[16];
	const char *p[2] = { cap, "500" };
	PGresult *res;
	long i, n;

	snprintf(cap, sizeof(cap), "%d", q->o.max_attempts);
	res = p25_db_exec(db, &st, p, &err);
	if (!res) {
		p25_warn("queue.reap_failed", "%s", err.detail);
		p25_err_clear(&err);
		return 0;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		char ctx[40];

		snprintf(ctx, sizeof(ctx), "job:%s", PQgetvalue(res, (int)i, 0));
		p25_log_ctx(ctx);
		p25_logf(strcmp(PQgetvalue(res, (int)i, 2), "parked") == 0 ?
			 P25_LOG_ERROR : P25_LOG_WARN, "job.lease_expired",
			 "%s attempt %s held by %s expired; now %s",
			 PQgetvalue(res, (int)i, 1), PQgetvalue(res, (int)i, 3),
			 PQgetisnull(res, (int)i, 4) ? "-" : PQgetvalue(res, (int)i, 4),
			 PQgetvalue(res, (int)i, 2));
	}
	p25_log_ctx(NULL);
	PQclear(res);
	atomic_fetch_add(&q->reaped, (unsigned long)n);
	return n;
}

/* Deletes one batch of done jobs past retention.  Returns rows deleted. */
static long
cleanup(struct p25_queue *q, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "WITH x AS MATERIALIZED ("
	    " SELECT id FROM jobs"
	    "  WHERE state = 'done' AND finished_at < now() - make_interval(secs => $1::int)"
	    "  ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
	    " DELETE FROM jobs j USING x WHERE j.id = x.id");
	struct p25_err err = { 0 };
	char keep[16], limit[16];
	const char *p[2] = { keep, limit };
	long n;

	snprintf(keep, sizeof(keep), "%d", q->o.done_retention_s);
	snprintf(limit, sizeof(limit), "%d", q->o.cleanup_batch);
	n = p25_db_run(db, &st, p, &err);
	if (n < 0) {
		p25_warn("queue.cleanup_failed", "%s", err.detail);
		n = 0;
	} else if (n > 0) {
		p25_debug("queue.cleanup", "deleted %ld done jobs", n);
	}
	p25_err_clear(&err);
	return n;
}

/*
 * Milliseconds until the earliest queued job of our kinds is due (<= 0:
 * due now).  Returns 0 with *ms set, 1 when there is none, -1 on error.
 */
static int
next_due(struct p25_queue *q, struct p25_db *db, long long *ms)
{
	P25_STMT(st, 1,
	    "SELECT ceil(extract(epoch FROM min(run_at) - now()) * 1000)::bigint"
	    " FROM jobs WHERE state = 'queued' AND kind = ANY($1::text[])");
	struct p25_err err = { 0 };
	const char *p[1] = { q->kinds_param };
	PGresult *res;
	int rc = 1;

	res = p25_db_exec(db, &st, p, &err);
	if (!res) {
		p25_warn("queue.next_due_failed", "%s", err.detail);
		p25_err_clear(&err);
		return -1;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		*ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static long long
earlier(long long a, long long b)
{
	return b > 0 && b < a ? b : a;
}

/* The dispatcher loop: returns when the stop flag is set. */
static void
dispatch(struct p25_queue *q)
{
	struct p25_db *lst = NULL;
	long long poll_ms = 1000LL * q->o.poll_interval_s;
	long long now = mono_ms();
	long long next_poll = now + poll_ms, next_reap = now, next_cleanup = now;
	long long due_at = 0, retry_at = 0;
	bool wake = true, recompute = true;

	while (!atomic_load(&q->stop)) {
		struct pollfd pfd[2];
		long long until;
		int nfd = 1, r;

		now = mono_ms();
		if (!lst && now >= retry_at) {
			lst = listener_open(q);
			if (lst)	/* notifications were lost while away */
				wake = recompute = true;
			else
				retry_at = now + QUEUE_RETRY_MS;
		}
		if (lst && now >= next_reap) {
			if (reap(q, lst) > 0)
				wake = recompute = true;
			next_reap = now + 1000LL * q->o.reap_interval_s;
		}
		if (lst && now >= next_cleanup) {
			/* a full batch means more may be waiting: go on soon */
			next_cleanup = now + (cleanup(q, lst) >= q->o.cleanup_batch ?
			    1000 : 1000LL * q->o.cleanup_interval_s);
		}
		if (now >= next_poll) {
			wake = recompute = true;
			next_poll = now + poll_ms;
		}
		if (due_at && now >= due_at) {
			wake = recompute = true;
			due_at = 0;
		}
		if (lst && recompute) {
			long long ms = 0;

			due_at = 0;
			if (next_due(q, lst, &ms) == 0) {
				if (ms <= 0)
					wake = true;
				else
					due_at = now + ms + 5;
			}
			recompute = false;
		}
		if (wake) {
			wake_runners(q);
			wake = false;
		}
		if (lst && PQstatus(lst->conn) != CONNECTION_OK) {
			p25_warn("queue.listener_lost", "listener connection lost; reconnecting");
			p25_db_close(lst);
			lst = NULL;
			retry_at = now + QUEUE_RETRY_MS;
			continue;
		}
		/* the queries above may have buffered notifications */
		if (lst && drain_notifies(lst) > 0) {
			wake = recompute = true;
			continue;
		}

		until = earlier(next_poll, due_at);
		if (lst) {
			until = earlier(until, next_reap);
			until = earlier(until, next_cleanup);
		} else {
			until = earlier(until, retry_at);
		}
		pfd[0].fd = q->efd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		if (lst) {
			pfd[1].fd = PQsocket(lst->conn);
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			nfd = 2;
		}
		now = mono_ms();
		r = poll(pfd, (nfds_t)nfd, until > now ? (int)(until - now) : 0);
		if (r < 0) {
			if (errno != EINTR)
				p25_error("queue.poll", "poll: %s", strerror(errno));
			continue;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(q->efd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another reader took it; nothing to do */
			}
			recompute = true;	/* a kick, or the stop checked above */
		}
		if (nfd == 2 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP)) &&
		    !PQconsumeInput(lst->conn)) {
			p25_warn("queue.listener_lost", "listener: %s",
				 PQerrorMessage(lst->conn));
			p25_db_close(lst);
			lst = NULL;
			retry_at = mono_ms() + QUEUE_RETRY_MS;
		}
	}
	p25_db_close(lst);
}

/* ------------------------------------------------------------ lifecycle */

void
p25_queue_opts_init(struct p25_queue_opts *o, const struct p25_config *cfg)
{
	memset(o, 0, sizeof(*o));
	o->database_url = cfg->database_url;
	o->threads = (int)cfg->worker_threads;
	o->lease_s = (int)cfg->job_lease;
	o->max_attempts = (int)cfg->job_max_attempts;
	o->poll_interval_s = (int)cfg->job_poll_interval;
	o->batch = (int)cfg->job_batch;
	/* an expired lease is noticed within a quarter lease (1..60 s) */
	o->reap_interval_s = o->lease_s / 4 < 1 ? 1 :
			     o->lease_s / 4 > 60 ? 60 : o->lease_s / 4;
	o->done_retention_s = 86400;
	o->cleanup_interval_s = 60;
	o->cleanup_batch = 1000;
}

struct p25_queue *
p25_queue_new(const struct p25_queue_opts *o, const struct p25_job_kind *kinds,
	      struct p25_err *err)
{
	struct p25_queue *q;
	pthread_condattr_t ca;
	size_t i, j, len, off;
	int rc = -1;

	q = calloc(1, sizeof(*q));
	if (!q) {
		p25_err_set(err, 500, "out_of_memory", "out of memory");
		return NULL;
	}
	q->efd = -1;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	q->o = *o;
	q->o.database_url = NULL;	/* q->url is the owned copy */

	if (!o->database_url || o->threads < 1 || o->lease_s < 1 ||
	    o->max_attempts < 1 || o->poll_interval_s < 1 || o->batch < 1 ||
	    o->reap_interval_s < 1 || o->done_retention_s < 0 ||
	    o->cleanup_interval_s < 1 || o->cleanup_batch < 1) {
		p25_err_set(err, 500, "bad_queue_options", "queue options out of range");
		goto out;
	}
	for (i = 0; kinds && kinds[i].kind; i++) {
		if (i >= QUEUE_MAX_KINDS || !kind_valid(kinds[i].kind) || !kinds[i].run) {
			p25_err_set(err, 500, "bad_job_kind", "job kind %zu (%s) is invalid "
				    "or there are more than %d", i, kinds[i].kind,
				    QUEUE_MAX_KINDS);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (strcmp(kinds[i].kind, kinds[j].kind) == 0) {
				p25_err_set(err, 500, "bad_job_kind",
					    "job kind %s registered twice", kinds[i].kind);
				goto out;
			}
	}
	q->kinds = kinds;
	q->nkinds = i;

	/* {"a","b"}: every kind is [a-z0-9_.], so nothing needs escaping */
	len = 3;
	for (i = 0; i < q->nkinds; i++)
		len += strlen(kinds[i].kind) + 3;
	q->kinds_param = malloc(len);
	q->url = strdup(o->database_url);
	if (!q->kinds_param || !q->url) {
		p25_err_set(err, 500, "out_of_memory", "out of memory");
		goto out;
	}
	off = (size_t)snprintf(q->kinds_param, len, "{");
	for (i = 0; i < q->nkinds; i++)
		off += (size_t)snprintf(q->kinds_param + off, len - off, "%s\"%s\"",
					i ? "," : "", kinds[i].kind);
	snprintf(q->kinds_param + off, len - off, "}");

	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		p25_err_set(err, 500, "internal", "eventfd: %s", strerror(errno));
		goto out;
	}
	if (gethostname(q->host, sizeof(q->host)) != 0)
		snprintf(q->host, sizeof(q->host), "localhost");
	q->host[sizeof(q->host) - 1] = '\0';
	rc = 0;
out:
	if (rc != 0) {
		p25_queue_free(q);
		q = NULL;
	}
	return q;
}

int
p25_queue_run(struct p25_queue *q, struct p25_err *err)
{
	struct p25_queue_stats st;
	json_t *kinds, *info;
	size_t k;
	int i, rc = -1;

	if (q->ran)
		return p25_err_set(err, 500, "internal", "p25_queue_run called twice");
	q->ran = true;
	q->runners = calloc((size_t)q->o.threads, sizeof(*q->runners));
	if (!q->runners) {
		p25_err_set(err, 500, "out_of_memory", "out of memory");
		goto out;
	}
	for (i = 0; i < q->o.threads; i++) {
		struct runner *r = &q->runners[i];

		r->q = q;
		r->index = i;
		snprintf(r->me, sizeof(r->me), "%s:%ld/%d", q->host, (long)getpid(), i);
		r->slots = calloc((size_t)q->o.batch, sizeof(*r->slots));
		r->b.done = calloc((size_t)q->o.batch, sizeof(*r->b.done));
		r->b.jobs = calloc((size_t)q->o.batch, sizeof(*r->b.jobs));
		r->b.errs = calloc((size_t)q->o.batch, sizeof(*r->b.errs));
		r->b.rcs = calloc((size_t)q->o.batch, sizeof(*r->b.rcs));
		r->b.idx = calloc((size_t)q->o.batch, sizeof(*r->b.idx));
		if (!r->slots || !r->b.done || !r->b.jobs || !r->b.errs || !r->b.rcs ||
		    !r->b.idx) {
			p25_err_set(err, 500, "out_of_memory", "out of memory");
			goto out;
		}
		if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
			p25_err_set(err, 500, "internal", "cannot start runner thread %d", i);
			goto out;
		}
		q->nrunners++;
	}

	kinds = json_array();
	for (k = 0; k < q->nkinds; k++)
		json_array_append_new(kinds, json_string(q->kinds[k].kind));
	info = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:o}", "msg", "job runtime started",
	    "threads", q->o.threads, "lease", q->o.lease_s, "batch", q->o.batch,
	    "max_attempts", q->o.max_attempts, "poll_interval", q->o.poll_interval_s,
	    "kinds", kinds);
	p25_logj(P25_LOG_INFO, "queue.start", info);
	if (q->nkinds == 0)
		p25_warn("queue.no_kinds", "no job kinds registered: only reaping and cleanup");

	dispatch(q);
	rc = 0;
out:
	atomic_store(&q->stop, true);
	wake_runners(q);
	for (i = 0; i < q->nrunners; i++)
		pthread_join(q->runners[i].thread, NULL);
	q->nrunners = 0;
	p25_queue_stats(q, &st);
	p25_info("queue.stop", "stopped: claimed %lu, done %lu, failed %lu, parked %lu, "
		 "lease lost %lu, handed back %lu, reaped %lu", st.claimed, st.done,
		 st.failed, st.parked, st.lost, st.released, st.reaped);
	return rc;
}

void
p25_queue_stop(struct p25_queue *q)
{
	uint64_t one = 1;

	atomic_store(&q->stop, true);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* saturated counter: the dispatcher is being woken anyway */
	}
}

void
p25_queue_stats(struct p25_queue *q, struct p25_queue_stats *st)
{
	st->claimed = atomic_load(&q->claimed);
	st->done = atomic_load(&q->done);
	st->failed = atomic_load(&q->failed);
	st->parked = atomic_load(&q->parked);
	st->lost = atomic_load(&q->lost);
	st->released = atomic_load(&q->released);
	st->reaped = atomic_load(&q->reaped);
}

void
p25_queue_free(struct p25_queue *q)
{
	int i;

	if (!q)
		return;
	if (q->runners)
		for (i = 0; i < q->o.threads; i++) {
			free(q->runners[i].slots);
			free(q->runners[i].b.done);
			free(q->runners[i].b.jobs);
			free(q->runners[i].b.errs);
			free(q->runners[i].b.rcs);
			free(q->runners[i].b.idx);
		}
	free(q->runners);
	if (q->efd >= 0)
		close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->kinds_param);
	free(q->url);
	free(q);
}

/* ------------------------------------------------------------ main()s */

static _Atomic(struct p25_queue *) main_queue;

static void
on_signal(int sig)
{
	struct p25_queue *q = atomic_load(&main_queue);

	(void)sig;
	if (q)
		p25_queue_stop(q);
}

int
p25_queue_main(const char *process, const struct p25_job_kind *kinds)
{
	struct p25_config cfg;
	struct p25_queue_opts o;
	struct p25_err err = { 0 };
	struct p25_queue *q = NULL;
	struct sigaction sa;
	int rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	p25_config_load_or_exit(&cfg);
	p25_log_init(process, cfg.log_level);
	p25_queue_opts_init(&o, &cfg);
	q = p25_queue_new(&o, kinds, &err);
	if (!q)
		goto out;

	/* first signal: graceful stop; SA_RESETHAND makes a second one fatal */
	atomic_store(&main_queue, q);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);

	if (p25_queue_run(q, &err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		p25_error("queue.exit", "%s", err.detail);
	/* a late signal must not find a freed queue nor kill us mid-exit */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	atomic_store(&main_queue, NULL);
	p25_queue_free(q);
	p25_err_clear(&err);
	p25_config_free(&cfg);
	return rc;
}

int
p25_job_noop(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	return 0;
}
