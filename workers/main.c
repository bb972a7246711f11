/*
 * main.c — p25-worker: runs the job kinds below on the queue runtime.
 *
 * Configuration comes from P25_* variables (P25_DATABASE_URL,
 * P25_WORKER_THREADS, P25_JOB_LEASE, P25_JOB_MAX_ATTEMPTS,
 * P25_JOB_POLL_INTERVAL, P25_JOB_BATCH, P25_LOG_LEVEL); the runtime and its
 * protocol are workers/queue.c and workers/README.md.  SIGTERM or SIGINT
 * stops claiming, lets the running handlers finish, hands back what was
 * claimed but not started and exits 0; a second signal kills at once.
 *
 * Adding a job kind: write workers/<kind>.c with its handler (a
 * p25_job_fn, declared in workers/worker.h) and add one line to kinds[]
 * below.  A kind that is not in this table is never claimed by this binary
 * (workers/README.md, "Adding a job kind").
 */
#include <stddef.h>

#include "p25/queue.h"
#include "worker.h"

static const struct p25_job_kind kinds[] = {
	{ "noop", p25_job_noop },
	{ "vet", p25_job_vet },
	{ "webhook", p25_job_webhook },
	{ "renew", p25_job_renew },
	{ "monitor", p25_job_monitor },
	{ "expire", p25_job_expire },
	{ "audit.seal", p25_job_audit_seal },
	{ NULL, NULL }
};

int
main(void)
{
	int rc;

	worker_ctx_init();	/* policy, KEK: a bad one exits 78 before any thread */
	if (worker_ticker_start() != 0)
		return 1;
	rc = p25_queue_main("p25-worker", kinds);
	worker_ticker_stop();
	worker_ctx_free();
	return rc;
}
