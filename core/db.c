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
	int status;

	if (!state && db && PQstatus(db->conn) != CONNECTION_OK)
		state = "08006";
	status = p25_sqlstate_http(state, &code);
	if (status >= 500) {
		p25_error("db.error", "sqlstate %s: %s", state ? state : "-",
			  msg ? msg : (db ? PQerrorMessage(db->conn) : "-"));
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

int
p25_db_set_actor(struct p25_db *db, const char *tenant, const char *role,
		 struct p25_err *err)
{
	P25_STMT(st, 2, "SELECT set_config('p25.tenant', coalesce($1, ''), true),"
			" set_config('p25.role', $2, true)");
	const char *p[2] = { tenant, role };

	return p25_db_run(db, &st, p, err) < 0 ? -1 : 0;
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

/* ---------------------------------------------------------------- pool */

struct pool_item {
	p25_pool_fn fn;
	void *arg;
	struct pool_item *next;
};

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

struct p25_pool *
p25_pool_new(const char *url, int size, int queue_max, const char *appname)
{
	struct p25_pool *pool = calloc(1, sizeof(*pool));
	int i;

	if (!pool)
		return NULL;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
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
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cv);
	free(pool->threads);
	free(pool->url);
	free(pool->appname);
	free(pool);
}
