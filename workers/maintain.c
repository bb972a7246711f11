/*
 * maintain.c — the periodic job kinds and the ticker that queues them.
 *
 *   renew        re-signs the tokens of active exemptions at two thirds of
 *                their lifetime (a `renew` feed event each), so a node that
 *                missed a revocation still closes the port when the token
 *                expires, and an honest node never sees a gap;
 *   expire       moves exemptions past expires_at to `expired` with a
 *                `revoke` event, and stops their renewals;
 *   audit.seal   extends the audit hash chain.
 * Each run handles a bounded batch in one transaction per exemption (or one
 * for the seal) and, when it filled its batch, asks to run again at once.
 *
 * The ticker: one thread per worker process that, every few seconds, queues
 * each periodic kind with a dedupe key — while one is queued or running,
 * queueing another is a no-op, so any number of worker processes produce
 * one job at a time.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "p25/audit.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/issue.h"
#include "p25/jobs.h"
#include "p25/log.h"
#include "p25/notify.h"
#include "worker.h"

#define BATCH 200

/* Ids from a one-column query, run in its own short transaction. */
static PGresult *
due(struct p25_db *db, struct p25_stmt *st, struct p25_err *err)
{
	char lim[16];
	const char *p[1] = { lim };
	PGresult *res;

	snprintf(lim, sizeof(lim), "%d", BATCH);
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		return NULL;
	res = p25_db_exec(db, st, p, err);
	p25_db_rollback(db);
	return res;
}

int
p25_job_renew(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(list, 1,
	    "SELECT e.id FROM exemptions e JOIN tokens t ON t.exemption_id = e.id AND t.current"
	    " WHERE e.status = 'active' AND e.expires_at > now()"
	    " AND t.expires_at < e.expires_at"
	    " AND t.issued_at + (t.expires_at - t.issued_at) * 2 / 3 <= now()"
	    " ORDER BY t.expires_at LIMIT $1::integer");
	P25_STMT(lock, 1, "SELECT 1 FROM exemptions WHERE id = $1 AND status = 'active' FOR UPDATE");
	PGresult *res = due(db, &list, err);
	int i, n, done = 0;

	if (!res)
		return -1;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		const char *id = PQgetvalue(res, i, 0);
		const char *p[1] = { id };
		struct p25_err e = { 0 };

		if (p25_db_begin_as(db, NULL, "system", &e) != 0 || p25_db_run(db, &lock, p, &e) != 1 ||
		    p25_issue_token(db, &wctx.issuer, id, "renew", &e) != 0 ||
		    p25_db_commit(db, &e) != 0) {
			p25_db_rollback(db);
			/* 409: revoked meanwhile — nothing to renew */
			if (e.status != 409 && e.status != 0)
				p25_warn("renew.failed", "exemption %s: %s", id, e.detail);
			p25_err_clear(&e);
			continue;
		}
		done++;
	}
	PQclear(res);
	if (done)
		p25_info("renew.done", "renewed %d tokens", done);
	return 0;
}

int
p25_job_expire(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(list, 1,
	    "SELECT id FROM exemptions WHERE status = 'active' AND expires_at <= now()"
	    " ORDER BY expires_at LIMIT $1::integer");
	P25_STMT(upd, 1,
	    "WITH x AS (UPDATE exemptions SET status = 'expired', updated_at = now(),"
	    "   status_reason = 'expired at ' || expires_at"
	    "   WHERE id = $1 AND status = 'active' AND expires_at <= now()"
	    "   RETURNING id, tenant_id, prefix),"
	    " t AS (UPDATE tokens SET current = false WHERE exemption_id = $1 AND current)"
	    " INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, reason)"
	    " SELECT 'revoke', id, tenant_id, prefix, 'expired' FROM x RETURNING tenant_id");
	/* the warning before expiry: once per exemption, with a webhook */
	P25_STMT(warn, 1,
	    "WITH x AS (UPDATE exemptions SET expiry_warned_at = now()"
	    "   WHERE id IN (SELECT id FROM exemptions WHERE status = 'active'"
	    "     AND expiry_warned_at IS NULL"
	    "     AND expires_at - $1::integer * interval '1 second' <= now() LIMIT 500)"
	    "   RETURNING id, tenant_id, expires_at)"
	    " SELECT id, tenant_id, expires_at FROM x");
	char wsec[16];
	PGresult *res;
	int i, n, done = 0;

	snprintf(wsec, sizeof(wsec), "%ld", wctx.cfg.expiry_warning);
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		return -1;
	{
		const char *p[1] = { wsec };
		res = p25_db_exec(db, &warn, p, err);
	}
	if (!res) {
		p25_db_rollback(db);
		return -1;
	}
	for (i = 0; i < PQntuples(res); i++) {
		char why[80];
		snprintf(why, sizeof(why), "expires at %s", PQgetvalue(res, i, 2));
		if (p25_notify(db, PQgetvalue(res, i, 1), "exemption.expiring", PQgetvalue(res, i, 0),
			       "active", why, err) != 0) {
			PQclear(res);
			p25_db_rollback(db);
			return -1;
		}
	}
	PQclear(res);
	if (p25_db_commit(db, err) != 0)
		return -1;

	res = due(db, &list, err);
	if (!res)
		return -1;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		const char *id = PQgetvalue(res, i, 0);
		const char *p[1] = { id };
		struct p25_err e = { 0 };
		bool found = false;
		char *tenant = NULL;

		if (p25_db_begin_as(db, NULL, "system", &e) == 0)
			tenant = p25_db_text(db, &upd, p, &found, &e);
		if (!tenant || p25_audit(db, "system:expiry", "exemption.expire", "exemption", id,
					 tenant, NULL, &e) != 0 ||
		    p25_notify(db, tenant, "exemption.status", id, "expired", "expired", &e) != 0 ||
		    p25_db_commit(db, &e) != 0) {
			p25_db_rollback(db);
			if (e.status)
				p25_warn("expire.failed", "exemption %s: %s", id, e.detail);
			p25_err_clear(&e);
			free(tenant);
			continue;
		}
		free(tenant);
		done++;
	}
	PQclear(res);
	if (done)
		p25_info("expire.done", "expired %d exemptions", done);
	return 0;
}

int
p25_job_audit_seal(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	long n;

	do {
		n = p25_audit_seal(db, 5000, err);
	} while (n == 5000);
	return n < 0 ? -1 : 0;
}

/* ----------------------------------------------------------- the ticker */

static const struct {
	const char *kind;
	int every_s;
} periodic[] = {
	{ "renew", 60 },
	{ "expire", 30 },
	{ "audit.seal", 5 },
	{ "monitor", 10 },
};

static atomic_bool ticker_stop;
static pthread_t ticker_thread;

static void *
ticker(void *arg)
{
	time_t last[sizeof(periodic) / sizeof(periodic[0])] = { 0 };
	struct p25_db *db = NULL;

	while (!atomic_load(&ticker_stop)) {
		struct timespec ts = { 1, 0 };
		time_t now = time(NULL);
		size_t i;

		for (i = 0; i < sizeof(periodic) / sizeof(periodic[0]); i++) {
			struct p25_err err = { 0 };
			if (now - last[i] < periodic[i].every_s)
				continue;
			if (!db)
				db = p25_db_connect(wctx.cfg.database_url, "p25-worker-ticker", &err);
			if (db && p25_db_begin(db, &err) == 0) {
				if (p25_job_enqueue(db, periodic[i].kind, NULL, "periodic", 0, &err) == 0 &&
				    p25_db_commit(db, &err) == 0)
					last[i] = now;
				else
					p25_db_rollback(db);
			}
			if (err.status)
				p25_debug("ticker", "%s: %s", periodic[i].kind, err.detail);
			p25_err_clear(&err);
		}
		nanosleep(&ts, NULL);
	}
	p25_db_close(db);
	return NULL;
}

int
worker_ticker_start(void)
{
	return pthread_create(&ticker_thread, NULL, ticker, NULL);
}

void
worker_ticker_stop(void)
{
	atomic_store(&ticker_stop, true);
	pthread_join(ticker_thread, NULL);
}
