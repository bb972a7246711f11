/*
 * db.c — libpq wrapper and the bounded connection pool (see db.h).
 *
 * Prepared statements: each P25_STMT gets a process-wide id on first use
 * (atomic), and each connection remembers which ids it has prepared, under
 * the name "p25_<id>".  A reset connection forgets them all.
 *
 * Pool: size threads, each owning one connection, take work from one FIFO
 * protected by a mutex.  The FIFO holds at most queue_max waiting items; a
 * submit beyond that fails at once.  Work never blocks an HTTP thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/log.h"

static atomic_int stmt_next = 1;

/* Server notices ("relation already exists, skipping") go to the debug log,
 * not to a raw stderr line. */
static void
db_notice(void *arg, const char *msg)
{
	p25_debug("db.notice", "%s", msg);
}

struct p25_db *
p25_db_connect(const char *url, const char *appname, struct p25_err *err)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout", "options", NULL };
	const char *vals[] = { url, appname ? appname : "p25", "5", "-c TimeZone=UTC -c idle_in_transaction_session_timeout=30s", NULL };
	struct p25_db *db;

	db = calloc(1, sizeof(*db));
	if (!db) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		return NULL;
	}
	db->url = strdup(url);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (!db->url || !db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		/* the message may hold the host, never a password */
		p25_warn("db.connect", "cannot connect: %s",
			 db->conn ? PQerrorMessage(db->conn) : "out of memory");
		p25_err_set(err, 503, "database_unavailable",
			    "the database is not reachable");
		err->retry_after = 2;
		p25_db_close(db);
		return NULL;
	}
	PQsetNoticeProcessor(db->conn, db_notice, NULL);
	return db;
}

void
p25_db_close(struct p25_db *db)
{
	if (!db)
		return;
	if (db->conn)
		PQfinish(db->conn);
	free(db->url);
	free(db);
}

int
p25_db_ensure(struct p25_db *db, struct p25_err *err)
{
	if (PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	PQreset(db->conn);
	memset(db->prepared, 0, sizeof(db->prepared));
	db->in_tx = false;
	if (PQstatus(db->conn) == CONNECTION_OK) {
		p25_info("db.reconnect", "database connection re-established");
		return 0;
	}
	p25_err_set(err, 503, "database_unavailable", "the database is not reachable");
	err->retry_after = 2;
	return -1;
}

void
p25_db_error(struct p25_db *db, const PGresult *res, struct p25_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	const char *code;

	if (!state && db && PQstatus(db->conn) != CONNECTION_OK)
		state = "08006";
	/* the connection's own message only goes to the log (5xx) */
	if (!msg && db && p25_sqlstate_http(state, &code) >= 500)
		msg = PQerrorMessage(db->conn);
	p25_db_error_fields(state, msg, cons, err);
}

void
p25_db_error_fields(const char *state, const char *msg, const char *cons, struct p25_err *err)
{
	const char *code;
	int status;

	status = p25_sqlstate_http(state, &code);
	if (status >= 500) {
		p25_error("db.error", "sqlstate %s: %s", state ? state : "-", msg ? msg : "-");
		p25_err_set(err, status, code, "%s",
		    status == 503 ? "the database is busy or unavailable"
				  : "internal database error");
		if (status == 503)
			err->retry_after = 1;
	} else if (cons) {
		p25_err_set(err, status, code, "the change conflicts with %s", cons);
	} else {
		p25_err_set(err, status, code, "%s", msg ? msg : "rejected by the database");
	}
	if (state)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
}

static int
stmt_prepare(struct p25_db *db, struct p25_stmt *st, struct p25_err *err)
{
	char name[24];
	PGresult *res;
	int id = st->id;

	if (id == 0) {
		int expected = 0;
		int fresh = atomic_fetch_add(&stmt_next, 1);
		/* racing threads agree on one id; the loser's id is unused */
		if (!__atomic_compare_exchange_n(&st->id, &expected, fresh, 0,
		    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			fresh = expected;
		id = fresh;
	}
	if (id >= P25_MAX_STMTS) {
		p25_err_set(err, 500, "internal", "too many statements");
		return -1;
	}
	if (db->prepared[id])
		return id;
	snprintf(name, sizeof(name), "p25_%d", id);
	res = PQprepare(db->conn, name, st->sql, st->nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		p25_db_error(db, res, err);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	db->prepared[id] = 1;
	return id;
}

PGresult *
p25_db_exec(struct p25_db *db, struct p25_stmt *st, const char *const *params,
	    struct p25_err *err)
{
	char name[24];
	PGresult *res;
	ExecStatusType s;
	int id;

	if (!db->in_tx && p25_db_ensure(db, err) != 0)
		return NULL;
	id = stmt_prepare(db, st, err);
	if (id < 0)
		return NULL;
	snprintf(name, sizeof(name), "p25_%d", id);
	res = PQexecPrepared(db->conn, name, st->nparams, params, NULL, NULL, 0);
	s = PQresultStatus(res);
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		p25_db_error(db, res, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

long
p25_db_run(struct p25_db *db, struct p25_stmt *st, const char *const *params,
	   struct p25_err *err)
{
	PGresult *res = p25_db_exec(db, st, params, err);
	long n;

	if (!res)
		return -1;
	n = strtol(PQcmdTuples(res), NULL, 10);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		n = PQntuples(res);
	PQclear(res);
	return n;
}

char *
p25_db_text(struct p25_db *db, struct p25_stmt *st, const char *const *params,
	    bool *found, struct p25_err *err)
{
	PGresult *res = p25_db_exec(db, st, params, err);
	char *s = NULL;

	if (found)
		*found = false;
	if (!res)
		return NULL;
	if (PQntuples(res) > 0 && PQnfields(res) > 0) {
		if (found)
			*found = true;
		s = strdup(PQgetisnull(res, 0, 0) ? "null" : PQgetvalue(res, 0, 0));
		if (!s)
			p25_err_set(err, 503, "out_of_memory", "out of memory");
	}
	PQclear(res);
	return s;
}

int
p25_db_command(struct p25_db *db, const char *sql, struct p25_err *err)
{
	PGresult *res;
	ExecStatusType s;

	if (!db->in_tx && p25_db_ensure(db, err) != 0)
		return -1;
	res = PQexec(db->conn, sql);
	s = PQresultStatus(res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		p25_db_error(db, res, err);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
p25_db_begin(struct p25_db *db, struct p25_err *err)
{
	if (p25_db_command(db, "BEGIN", err) != 0)
		return -1;
	db->in_tx = true;
	return 0;
}

int
p25_db_commit(struct p25_db *db, struct p25_err *err)
{
	PGresult *res;
	int rc = 0;

	db->in_tx = false;
	res = PQexec(db->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		p25_db_error(db, res, err);
		rc = -1;
	} else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		/* COMMIT of an aborted transaction answers ROLLBACK */
		p25_err_set(err, 409, "conflict", "the transaction was rolled back");
		rc = -1;
	}
	PQclear(res);
	return rc;
}

void
p25_db_rollback(struct p25_db *db)
{
	PGresult *res;

	db->in_tx = false;
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK ||
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	res = PQexec(db->conn, "ROLLBACK");
	PQclear(res);
}

P25_STMT(actor_st, 2, "SELECT set_config('p25.tenant', coalesce($1, ''), true),"
		      " set_config('p25.role', $2, true)");
/* the same for p25_db_read_as, whose implicit transaction commits at the
 * Sync: read-only, so a statement that writes fails instead of committing */
P25_STMT(actor_ro_st, 2, "SELECT set_config('p25.tenant', coalesce($1, ''), true),"
			 " set_config('p25.role', $2, true),"
			 " set_config('transaction_read_only', 'on', true)");

int
p25_db_set_actor(struct p25_db *db, const char *tenant, const char *role,
		 struct p25_err *err)
{
	const char *p[2] = { tenant, role };

	return p25_db_run(db, &actor_st, p, err) < 0 ? -1 : 0;
}

int
p25_db_begin_as(struct p25_db *db, const char *tenant, const char *role, struct p25_err *err)
{
	if (p25_db_begin(db, err) != 0)
		return -1;
	if (p25_db_set_actor(db, tenant, role, err) != 0) {
		p25_db_rollback(db);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ pipeline */

/*
 * One transaction in one round trip (libpq pipeline mode, see db.h).  The
 * steps go out together and their results come back in order; after the
 * first error the server skips every step up to the Sync (libpq answers
 * PGRES_PIPELINE_ABORTED for each).  Blocking mode is safe here: a pipeline
 * is at most four small messages, and the server's answers to the first
 * steps are a few bytes, so neither side can fill the other's socket buffer
 * while it is still writing.
 */
#define PIPE_MAX 4

enum pipe_kind { PIPE_BEGIN, PIPE_ACTOR, PIPE_MAIN, PIPE_COMMIT };

static PGresult *
pipe_run(struct p25_db *db, bool tx, const char *tenant, const char *role,
	 struct p25_stmt *st, const char *const *params, PGresult **failed,
	 struct p25_err *err)
{
	const char *ap[2] = { tenant, role };
	enum pipe_kind kinds[PIPE_MAX];
	int ids[PIPE_MAX] = { 0 };
	PGresult *main_res = NULL;
	bool bad = false, lost = false;
	int n = 0, i;

	if (failed)
		*failed = NULL;
	if (db->in_tx) {
		p25_err_set(err, 500, "internal", "a pipelined transaction inside a transaction");
		return NULL;
	}
	if (p25_db_ensure(db, err) != 0)
		return NULL;
	/* preparing is a round trip of its own, once per connection and statement */
	if (tx)
		kinds[n++] = PIPE_BEGIN;
	kinds[n++] = PIPE_ACTOR;
	kinds[n++] = PIPE_MAIN;
	if (tx)
		kinds[n++] = PIPE_COMMIT;
	for (i = 0; i < n; i++) {
		struct p25_stmt *s = kinds[i] == PIPE_ACTOR ? (tx ? &actor_st : &actor_ro_st)
				   : kinds[i] == PIPE_MAIN ? st : NULL;
		if (s && (ids[i] = stmt_prepare(db, s, err)) < 0)
			return NULL;
	}
	if (PQenterPipelineMode(db->conn) != 1) {
		p25_db_error(db, NULL, err);
		return NULL;
	}
	for (i = 0; i < n && !bad; i++) {
		char name[24];
		int ok;

		snprintf(name, sizeof(name), "p25_%d", ids[i]);
		switch (kinds[i]) {
		case PIPE_BEGIN:
			ok = PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
			break;
		case PIPE_COMMIT:
			ok = PQsendQueryParams(db->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
			break;
		case PIPE_ACTOR:
			ok = PQsendQueryPrepared(db->conn, name, 2, ap, NULL, NULL, 0);
			break;
		default:
			ok = PQsendQueryPrepared(db->conn, name, st->nparams, params, NULL, NULL, 0);
			break;
		}
		if (!ok)
			bad = true;
	}
	if (bad || PQpipelineSync(db->conn) != 1) {
		/* nothing reached the server, or the connection broke */
		p25_db_error(db, NULL, err);
		lost = true;
		n = 0;
	}
	for (i = 0; i < n; i++) {
		PGresult *res = PQgetResult(db->conn);
		ExecStatusType s;

		if (!res) {		/* the connection broke */
			if (!err->status)
				p25_db_error(db, NULL, err);
			lost = true;
			break;
		}
		s = PQresultStatus(res);
		if (s == PGRES_FATAL_ERROR && !err->status && !(failed && *failed)) {
			if (kinds[i] == PIPE_MAIN && failed) {
				*failed = res;
				res = NULL;
			} else {
				p25_db_error(db, res, err);
			}
		} else if (kinds[i] == PIPE_COMMIT && s == PGRES_COMMAND_OK &&
			   strcmp(PQcmdStatus(res), "ROLLBACK") == 0 && !err->status) {
			p25_err_set(err, 409, "conflict", "the transaction was rolled back");
		} else if (kinds[i] == PIPE_MAIN &&
			   (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)) {
			main_res = res;
			res = NULL;
		}
		PQclear(res);
		/* each step's results end with NULL */
		while ((res = PQgetResult(db->conn)) != NULL)
			PQclear(res);
	}
	if (!lost) {
		PGresult *res = PQgetResult(db->conn);	/* the Sync */

		if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
			if (!err->status)
				p25_db_error(db, res, err);
			lost = true;
		}
		PQclear(res);
	}
	if (PQexitPipelineMode(db->conn) != 1 && !lost) {
		p25_warn("db.pipeline", "cannot leave pipeline mode: %s",
			 PQerrorMessage(db->conn));
		if (!err->status)
			p25_err_set(err, 500, "internal", "internal database error");
	}
	if (lost)
		PQreset(db->conn);	/* a broken pipeline is not reused */
	if (err->status || (failed && *failed) || lost) {
		PQclear(main_res);
		main_res = NULL;
		if (lost) {
			memset(db->prepared, 0, sizeof(db->prepared));
			if (!err->status)
				p25_err_set(err, 503, "database_unavailable",
					    "the database is not reachable");
		}
		/* an error inside BEGIN … leaves the block aborted until ROLLBACK */
		p25_db_rollback(db);
	}
	return main_res;
}

PGresult *
p25_db_read_as(struct p25_db *db, const char *tenant, const char *role,
	       struct p25_stmt *st, const char *const *params, struct p25_err *err)
{
	return pipe_run(db, false, tenant, role, st, params, NULL, err);
}

PGresult *
p25_db_write_as(struct p25_db *db, const char *tenant, const char *role,
		struct p25_stmt *st, const char *const *params, PGresult **failed,
		struct p25_err *err)
{
	return pipe_run(db, true, tenant, role, st, params, failed, err);
}

/*
 * n reads in one round trip: for each, p25_db_read_as's pair (identity, st
 * with its own params) and a Sync, so each read is its own implicit
 * transaction and one read's error is its own.  Blocking mode is safe for
 * the reason given above as long as everything sent fits the socket's
 * buffer before the answers start to fill the other way: callers send at
 * most a group of reads (a few KiB).
 */
void
p25_db_read_many_as(struct p25_db *db, int n, const char *const *tenants,
		    const char *const *roles, struct p25_stmt *st,
		    const char *const *const *params, PGresult **res, struct p25_err *errs)
{
	struct p25_err err = { 0 };
	char an[24], mn[24];
	int ida = -1, idm = -1, i, k;
	bool lost = false;

	for (i = 0; i < n; i++)
		res[i] = NULL;
	if (n <= 0)
		return;
	if (db->in_tx)
		p25_err_set(&err, 500, "internal", "a pipelined read inside a transaction");
	else if (p25_db_ensure(db, &err) == 0 &&
		 (ida = stmt_prepare(db, &actor_ro_st, &err)) >= 0 &&
		 (idm = stmt_prepare(db, st, &err)) >= 0 &&
		 PQenterPipelineMode(db->conn) != 1)
		p25_db_error(db, NULL, &err);
	if (err.status) {
		for (i = 0; i < n; i++)
			errs[i] = err;
		return;
	}
	snprintf(an, sizeof(an), "p25_%d", ida);
	snprintf(mn, sizeof(mn), "p25_%d", idm);
	for (i = 0; i < n && !lost; i++) {
		const char *ap[2] = { tenants[i], roles[i] };
		if (!PQsendQueryPrepared(db->conn, an, 2, ap, NULL, NULL, 0) ||
		    !PQsendQueryPrepared(db->conn, mn, st->nparams, params[i], NULL, NULL, 0) ||
		    PQpipelineSync(db->conn) != 1)
			lost = true;
	}
	for (i = 0; i < n && !lost; i++) {
		/* the identity's result, the read's, then the Sync */
		for (k = 0; k < 3 && !lost; k++) {
			PGresult *r = PQgetResult(db->conn);
			ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

			if (!r) {
				lost = true;
			} else if (k == 2) {
				if (s != PGRES_PIPELINE_SYNC)
					lost = true;
			} else if (s == PGRES_FATAL_ERROR && !errs[i].status) {
				p25_db_error(db, r, &errs[i]);
			} else if (k == 1 && !errs[i].status &&
				   (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)) {
				res[i] = r;
				r = NULL;
			}
			PQclear(r);
			/* each step's results end with NULL (not the Sync's) */
			if (k < 2 && !lost)
				while ((r = PQgetResult(db->conn)) != NULL)
					PQclear(r);
		}
	}
	if (!lost && PQexitPipelineMode(db->conn) != 1) {
		p25_warn("db.pipeline", "cannot leave pipeline mode: %s", PQerrorMessage(db->conn));
		lost = true;
	}
	if (lost) {
		PQreset(db->conn);	/* a broken pipeline is not reused */
		memset(db->prepared, 0, sizeof(db->prepared));
		for (i = 0; i < n; i++)
			if (!res[i] && !errs[i].status)
				p25_err_set(&errs[i], 503, "database_unavailable",
					    "the database is not reachable");
	}
}

/* ---------------------------------------------------------------- pool */

struct pool_item {
	p25_pool_fn fn;
	void *arg;
	struct pool_item *next;
};

#define NOTE_MAX 8
#define NOTE_LEN 64

struct p25_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_item *head, *tail;
	int waiting, busy, size, queue_max, nthreads;
	unsigned long rejected;
	bool stopping;
	char *url;
	char *appname;
	pthread_t *threads;
	/* the notifier (p25_pool_notify): pending pairs, its thread */
	pthread_cond_t note_cv;
	char note_chan[NOTE_MAX][NOTE_LEN], note_payload[NOTE_MAX][NOTE_LEN];
	int nnotes;
	bool note_started, note_stopping;
	pthread_t note_thread;
};

static void *
pool_main(void *p)
{
	struct p25_pool *pool = p;
	struct p25_db *db = NULL;

	for (;;) {
		struct pool_item *it;
		struct p25_err err = { 0 };

		pthread_mutex_lock(&pool->mu);
		while (!pool->head && !pool->stopping)
			pthread_cond_wait(&pool->cv, &pool->mu);
		if (!pool->head) {
			pthread_mutex_unlock(&pool->mu);
			break;
		}
		it = pool->head;
		pool->head = it->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->waiting--;
		pool->busy++;
		pthread_mutex_unlock(&pool->mu);

		if (!db)
			db = p25_db_connect(pool->url, pool->appname, &err);
		else if (p25_db_ensure(db, &err) != 0) {
			/* keep the handle: PQreset is retried next time */
		}
		p25_err_clear(&err);
		if (db && PQstatus(db->conn) == CONNECTION_OK) {
			it->fn(db, it->arg);
			/* a handler must never leave a transaction open */
			if (db->in_tx || PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
				p25_warn("db.pool", "handler left a transaction open");
				p25_db_rollback(db);
			}
		} else {
			it->fn(NULL, it->arg);
		}
		free(it);
		pthread_mutex_lock(&pool->mu);
		pool->busy--;
		pthread_mutex_unlock(&pool->mu);
	}
	p25_db_close(db);
	return NULL;
}

/*
 * The notifier: one thread with a connection of its own sends the pending
 * notifications.  It takes the whole pending set, then sends it, so a
 * notification asked for while it is sending goes out in the next round —
 * always after the caller's commit — and the asks of many transactions
 * that committed meanwhile collapse into one NOTIFY.  A NOTIFY takes a
 * database-wide lock until its transaction ends; sending one per submit
 * from every pool connection made that lock the bottleneck (measured by
 * bench/run.sh BENCH_DIAG=1: Lock:object).
 *
 * Rounds are at least NOTE_GAP_MS apart: under a steady load of submits
 * every group asked for a round of its own — some 370 a second at 1,870
 * submits a second, each a transaction and four thread wake-ups, the
 * notifier alone making a sixth of p25-api's context switches (perf,
 * sched:sched_switch).  A worker hears of new work at most NOTE_GAP_MS
 * later; vetting takes seconds.
 */
#define NOTE_GAP_MS 20

/* Nanoseconds left of the gap after the round sent at *sent (0: none). */
static long
note_gap_left(const struct timespec *sent)
{
	struct timespec now;
	long ns;

	if (sent->tv_sec == 0 && sent->tv_nsec == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long)(now.tv_sec - sent->tv_sec) * 1000000000L + (now.tv_nsec - sent->tv_nsec);
	return ns >= 0 && ns < NOTE_GAP_MS * 1000000L ? NOTE_GAP_MS * 1000000L - ns : 0;
}

static void *
note_main(void *p)
{
	/* A NOTIFY's transaction takes an xid, so its commit would wait for a
	 * WAL flush of its own; a wake-up carries no data (the work it
	 * announces committed before it, and the workers poll as well), so
	 * its transaction does not wait (SET LOCAL: also after a reconnect). */
	P25_STMT(st, 2, "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)");
	struct p25_pool *pool = p;
	struct p25_db *db = NULL;
	char chan[NOTE_MAX][NOTE_LEN], payload[NOTE_MAX][NOTE_LEN];
	struct timespec sent = { 0, 0 };	/* when the last round was sent */

	for (;;) {
		int n, i;
		long wait_ns;

		pthread_mutex_lock(&pool->mu);
		while (pool->nnotes == 0 && !pool->note_stopping)
			pthread_cond_wait(&pool->note_cv, &pool->mu);
		wait_ns = note_gap_left(&sent);
		if (wait_ns > 0 && !pool->note_stopping) {
			/* what is asked while this waits joins the round */
			struct timespec gap = { 0, wait_ns };
			pthread_mutex_unlock(&pool->mu);
			nanosleep(&gap, NULL);
			pthread_mutex_lock(&pool->mu);
		}
		n = pool->nnotes;
		memcpy(chan, pool->note_chan, sizeof(chan));
		memcpy(payload, pool->note_payload, sizeof(payload));
		pool->nnotes = 0;
		pthread_mutex_unlock(&pool->mu);
		if (n == 0)
			break;		/* stopping, nothing left to send */
		for (i = 0; i < n; i++) {
			struct p25_err err = { 0 };
			const char *pp[2] = { chan[i], payload[i] };

			if (!db)
				db = p25_db_connect(pool->url, pool->appname, &err);
			if (!db || p25_db_run(db, &st, pp, &err) < 0)
				/* the workers' poll timer picks the work up */
				p25_warn("db.notify", "cannot notify %s: %s", chan[i], err.detail);
			p25_err_clear(&err);
		}
		clock_gettime(CLOCK_MONOTONIC, &sent);
	}
	p25_db_close(db);
	return NULL;
}

void
p25_pool_notify(struct p25_pool *pool, const char *channel, const char *payload)
{
	int i;

	if (strlen(channel) >= NOTE_LEN || strlen(payload) >= NOTE_LEN) {
		p25_warn("db.notify", "channel or payload too long, not sent");
		return;
	}
	pthread_mutex_lock(&pool->mu);
	if (!pool->note_started && !pool->note_stopping) {
		if (pthread_create(&pool->note_thread, NULL, note_main, pool) == 0)
			pool->note_started = true;
		else
			p25_warn("db.notify", "cannot start the notifier thread");
	}
	for (i = 0; i < pool->nnotes; i++)
		if (strcmp(pool->note_chan[i], channel) == 0 &&
		    strcmp(pool->note_payload[i], payload) == 0)
			break;
	if (i == pool->nnotes) {
		if (pool->nnotes == NOTE_MAX) {
			pthread_mutex_unlock(&pool->mu);
			p25_warn("db.notify", "too many distinct notifications pending, %s dropped",
				 channel);
			return;
		}
		snprintf(pool->note_chan[i], NOTE_LEN, "%s", channel);
		snprintf(pool->note_payload[i], NOTE_LEN, "%s", payload);
		pool->nnotes++;
	}
	pthread_cond_signal(&pool->note_cv);
	pthread_mutex_unlock(&pool->mu);
}

struct p25_pool *
p25_pool_new(const char *url, int size, int queue_max, const char *appname)
{
	struct p25_pool *pool = calloc(1, sizeof(*pool));
	int i;

	if (!pool)
		return NULL;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pthread_cond_init(&pool->note_cv, NULL);
	pool->size = size;
	pool->queue_max = queue_max;
	pool->url = strdup(url);
	pool->appname = strdup(appname ? appname : "p25");
	pool->threads = calloc((size_t)size, sizeof(pthread_t));
	if (!pool->url || !pool->appname || !pool->threads)
		goto fail;
	for (i = 0; i < size; i++) {
		if (pthread_create(&pool->threads[i], NULL, pool_main, pool) != 0)
			goto fail;
		pool->nthreads++;
	}
	return pool;
fail:
	p25_pool_free(pool);
	return NULL;
}

int
p25_pool_submit(struct p25_pool *pool, p25_pool_fn fn, void *arg)
{
	struct pool_item *it = malloc(sizeof(*it));

	if (!it)
		return -1;
	it->fn = fn;
	it->arg = arg;
	it->next = NULL;
	pthread_mutex_lock(&pool->mu);
	/* idle threads take work at once; only the overflow waits */
	if (pool->stopping ||
	    pool->waiting >= pool->queue_max + (pool->size - pool->busy)) {
		pool->rejected++;
		pthread_mutex_unlock(&pool->mu);
		free(it);
		return -1;
	}
	if (pool->tail)
		pool->tail->next = it;
	else
		pool->head = it;
	pool->tail = it;
	pool->waiting++;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	return 0;
}

void
p25_pool_stats(struct p25_pool *pool, struct p25_pool_stats *st)
{
	pthread_mutex_lock(&pool->mu);
	st->size = pool->size;
	st->busy = pool->busy;
	st->waiting = pool->waiting;
	st->rejected = pool->rejected;
	pthread_mutex_unlock(&pool->mu);
}

void
p25_pool_free(struct p25_pool *pool)
{
	int i;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	/* after the workers: what they asked to notify is still sent */
	pthread_mutex_lock(&pool->mu);
	pool->note_stopping = true;
	pthread_cond_signal(&pool->note_cv);
	pthread_mutex_unlock(&pool->mu);
	if (pool->note_started)
		pthread_join(pool->note_thread, NULL);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cv);
	pthread_cond_destroy(&pool->note_cv);
	free(pool->threads);
	free(pool->url);
	free(pool->appname);
	free(pool);
}

/* ---------------------------------------------------------- row by row */

/*
 * p25_db_each_text (db.h).  Single-row mode: libpq makes a small result of
 * each row as it is parsed off the socket, which fn consumes and PQclear
 * gives back at once, so the memory in use stays one row however many rows
 * come.  Should the mode not be taken (libpq refuses it only when no query
 * is pending), the rows come in one result, which the same loop handles.
 * After fn stops the rest is read and dropped: the connection must be idle
 * for its next use, and fn stops only on exhaustion.
 */
long
p25_db_each_text(struct p25_db *db, struct p25_stmt *st, const char *const *params,
		 p25_row_fn fn, void *arg, struct p25_err *err)
{
	char name[24];
	PGresult *res;
	bool failed = false;
	long n = 0;
	int id;

	if (!db->in_tx && p25_db_ensure(db, err) != 0)
		return -1;
	id = stmt_prepare(db, st, err);
	if (id < 0)
		return -1;
	snprintf(name, sizeof(name), "p25_%d", id);
	if (!PQsendQueryPrepared(db->conn, name, st->nparams, params, NULL, NULL, 0)) {
		p25_db_error(db, NULL, err);
		return -1;
	}
	(void)PQsetSingleRowMode(db->conn);
	while ((res = PQgetResult(db->conn)) != NULL) {
		ExecStatusType s = PQresultStatus(res);

		if (s == PGRES_SINGLE_TUPLE || s == PGRES_TUPLES_OK) {
			int rows = PQnfields(res) > 0 ? PQntuples(res) : 0, i;

			for (i = 0; i < rows && !failed; i++) {
				const char *v = PQgetisnull(res, i, 0) ? NULL : PQgetvalue(res, i, 0);

				if (fn(v, v ? (size_t)PQgetlength(res, i, 0) : 0, arg, err) != 0)
					failed = true;
				else
					n++;
			}
		} else if (!failed) {
			/* an error, also after rows (the connection lost mid-way) */
			p25_db_error(db, res, err);
			failed = true;
		}
		PQclear(res);
	}
	return failed ? -1 : n;
}
