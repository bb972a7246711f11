/*
 * worker.h — what the job kinds of p25-worker share: the configuration,
 * the vetting policy and the token issuer, loaded once at start-up
 * (worker_ctx_init) before any runner thread exists and read-only after.
 */
#ifndef P25_WORKER_H
#define P25_WORKER_H

#include "p25/config.h"
#include "p25/issue.h"
#include "p25/queue.h"
#include "p25/vetting.h"

struct worker_ctx {
	struct p25_config cfg;
	struct p25_policy policy;
	struct p25_issuer issuer;
};
extern struct worker_ctx wctx;

/* Loads the context; prints the error and exits 78 on a bad value. */
void worker_ctx_init(void);
void worker_ctx_free(void);

/* "vet": vets one request round (workers/vet.c). */
int p25_job_vet(struct p25_job *job, struct p25_db *db, struct p25_err *err);

/*
 * A batch handler runs n claimed jobs of its kind together (the runtime
 * calls it instead of the kind's handler when a runner holds several of
 * them): rcs[i] and errs[i] are what the handler would have returned and
 * filled for jobs[i] (or P25_JOB_NOT_STARTED, below).  Returns 0; the
 * runtime finishes each job as after its handler.  workers/queue.c keeps the table of kinds that have one.
 */
/* err.code of a batch job the handler did not start: handed back to the
 * queue untried (its attempt refunded), not failed */
#define P25_JOB_NOT_STARTED "job_not_started"
typedef int (*p25_job_batch_fn)(struct p25_job **jobs, int n, struct p25_db *db, int *rcs,
				struct p25_err *errs);

/* "vet" by batches: every pending→vetting of the batch in one transaction,
 * the DNS checks, then every decision in one transaction (one commit, one
 * WAL flush for the batch); a failure in a batch transaction rolls it back
 * and vets those requests one by one with p25_job_vet(). */
int p25_job_vet_batch(struct p25_job **jobs, int n, struct p25_db *db, int *rcs,
		      struct p25_err *errs);

/* "webhook": POSTs one tenant notification (workers/webhook.c). */
int p25_job_webhook(struct p25_job *job, struct p25_db *db, struct p25_err *err);

/* "monitor": scheduled DNSBL re-checks of active exemptions (workers/monitor.c). */
int p25_job_monitor(struct p25_job *job, struct p25_db *db, struct p25_err *err);

/* periodic kinds and their ticker (workers/maintain.c) */
int p25_job_renew(struct p25_job *job, struct p25_db *db, struct p25_err *err);
int p25_job_expire(struct p25_job *job, struct p25_db *db, struct p25_err *err);
int p25_job_audit_seal(struct p25_job *job, struct p25_db *db, struct p25_err *err);
int worker_ticker_start(void);
void worker_ticker_stop(void);

#endif
