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
