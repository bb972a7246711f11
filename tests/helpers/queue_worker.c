/*
 * queue_worker.c — a worker for the queue tests (tests/integration/
 * queue.test.sh): the real runtime (p25_queue_main) with test kinds.
 *
 *   test.effect  sleeps payload.sleep_ms (default: a random 0–50 ms; on the
 *                first attempt payload.first_sleep_ms when given), then in
 *                ONE transaction inserts (job id, lease) into test_effects
 *                and completes the job.  test_effects holding exactly one
 *                row per job after workers were killed at random proves no
 *                job was lost and none took effect twice.
 *   test.fail    fails while attempts <= payload.fail, then succeeds (the
 *                runner completes it).
 *
 * The test creates test_effects(job_id bigint, lease bigint) and grants it
 * to p25_service; the migrations know nothing of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <jansson.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/queue.h"

static int
effect_run(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(st, 2, "INSERT INTO test_effects (job_id, lease) VALUES ($1, $2)");
	json_t *ms = json_object_get(job->payload, "sleep_ms");
	json_t *first = json_object_get(job->payload, "first_sleep_ms");
	long long sleep_ms = json_is_integer(ms) ? json_integer_value(ms) :
			     (long long)arc4random_uniform(51);
	struct timespec ts;
	char id[24], lease[24];
	const char *p[2] = { id, lease };
	int rc = -1;

	if (json_is_integer(first) && job->attempts == 1)
		sleep_ms = json_integer_value(first);
	if (sleep_ms < 0 || sleep_ms > 60000)
		sleep_ms = 0;
	ts.tv_sec = (time_t)(sleep_ms / 1000);
	ts.tv_nsec = (long)(sleep_ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0) {
		/* EINTR: sleep the rest */
	}
	snprintf(id, sizeof(id), "%lld", job->id);
	snprintf(lease, sizeof(lease), "%lld", job->lease);
	if (p25_db_begin(db, err) != 0)
		goto out;
	if (p25_db_run(db, &st, p, err) < 0)
		goto out;
	if (p25_job_complete(db, job, err) != 0)
		goto out;
	if (p25_db_commit(db, err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		job->completed = false;
		p25_db_rollback(db);
	}
	return rc;
}

static int
fail_run(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	json_t *n = json_object_get(job->payload, "fail");
	long long fails = json_is_integer(n) ? json_integer_value(n) : 0;

	if (job->attempts <= fails)
		return p25_err_set(err, 500, "test_failure",
				   "test.fail attempt %d failing on purpose (%lld to go)",
				   job->attempts, fails - job->attempts + 1);
	return 0;
}

static const struct p25_job_kind kinds[] = {
	{ "test.effect", effect_run },
	{ "test.fail", fail_run },
	{ NULL, NULL }
};

int
main(void)
{
	return p25_queue_main("queue_worker", kinds);
}
