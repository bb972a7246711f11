/*
 * db.h — PostgreSQL access: one connection with a prepared-statement cache,
 * transactions, and a bounded pool of connection-owning threads.
 *
 * SQL is parameterized, always: statements are declared once with
 * P25_STMT and prepared lazily on each connection.  A struct p25_db belongs
 * to one thread at a time.  The pool runs submitted work on its threads,
 * each of which owns one connection; when every connection is busy and the
 * wait queue is full, p25_pool_submit() refuses at once (the caller answers
 * 503 with Retry-After) instead of piling work up.
 */
#ifndef P25_DB_H
#define P25_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

struct p25_err;

struct p25_stmt {
	const char *sql;
	int nparams;
	int id;			/* assigned on first use; 0 = not yet */
};
#define P25_STMT(var, n, sqltext) \
	static struct p25_stmt var = { sqltext, n, 0 }

#define P25_MAX_STMTS 512

struct p25_db {
	PGconn *conn;
	char *url;
	bool in_tx;
	unsigned char prepared[P25_MAX_STMTS];
};

/* Connects (blocking).  Returns NULL with err filled (503). */
struct p25_db *p25_db_connect(const char *url, const char *appname,
			      struct p25_err *err);
void p25_db_close(struct p25_db *db);
/* Reconnects if the connection is bad.  0 when usable. */
int p25_db_ensure(struct p25_db *db, struct p25_err *err);

/*
 * Runs a declared statement.  params may hold NULLs (SQL NULL).  Returns
 * the result (caller PQclear()s) or NULL with err filled from the SQLSTATE
 * map.  Results with no rows are not errors.
 */
PGresult *p25_db_exec(struct p25_db *db, struct p25_stmt *st,
		      const char *const *params, struct p25_err *err);
/* Runs a statement for its effect; returns affected rows, or -1. */
long p25_db_run(struct p25_db *db, struct p25_stmt *st,
		const char *const *params, struct p25_err *err);
/*
 * Runs a statement whose first row's first column is text (usually JSON
 * built by PostgreSQL).  Returns a malloc'd copy (caller frees), NULL with
 * *found = false when there is no row (err untouched), NULL with err filled
 * on error.
 */
char *p25_db_text(struct p25_db *db, struct p25_stmt *st,
		  const char *const *params, bool *found, struct p25_err *err);
/* Unprepared one-off command without parameters (BEGIN, LISTEN …). */
int p25_db_command(struct p25_db *db, const char *sql, struct p25_err *err);

int p25_db_begin(struct p25_db *db, struct p25_err *err);
int p25_db_commit(struct p25_db *db, struct p25_err *err);
/* Never fails from the caller's view; safe when no transaction is open. */
void p25_db_rollback(struct p25_db *db);
/*
 * Sets the row-level-security identity for the current transaction:
 * tenant (may be NULL for staff) and role names.  Must be inside a
 * transaction (SET LOCAL semantics).
 */
int p25_db_set_actor(struct p25_db *db, const char *tenant, const char *role,
		     struct p25_err *err);
/* BEGIN and p25_db_set_actor in one; rolls back itself on failure. */
int p25_db_begin_as(struct p25_db *db, const char *tenant, const char *role,
		    struct p25_err *err);

/*
 * One transaction in one round trip, with libpq's pipeline mode: the
 * row-level-security identity and the statement (and for a write BEGIN
 * before and COMMIT after) go out together, followed by one Sync.  Both
 * must be called outside a transaction and leave none open.
 *
 * p25_db_read_as: identity + st, in the implicit transaction the Sync ends,
 * which is READ ONLY (a statement that writes fails with SQLSTATE 25006).
 * Returns st's result (caller PQclear()s) or NULL with err filled.
 *
 * p25_db_write_as: BEGIN, identity, st, COMMIT.  Returns st's result once
 * committed, or NULL with err filled and the
 * transaction rolled back.  When failed is not NULL and st itself raised
 * an error, *failed receives that result instead (err untouched; caller
 * PQclear()s, and may pass it to p25_db_error), so a statement can refuse
 * with its own SQLSTATE.
 */
PGresult *p25_db_read_as(struct p25_db *db, const char *tenant, const char *role,
			 struct p25_stmt *st, const char *const *params,
			 struct p25_err *err);

/*
 * n reads of p25_db_read_as in one round trip, read i under tenants[i] and
 * roles[i] with params[i], each in its own implicit transaction.  res[i] is
 * read i's result (caller PQclear()s) or NULL with errs[i] filled; errs must
 * come in cleared.
 */
void p25_db_read_many_as(struct p25_db *db, int n, const char *const *tenants,
			 const char *const *roles, struct p25_stmt *st,
			 const char *const *const *params, PGresult **res,
			 struct p25_err *errs);
PGresult *p25_db_write_as(struct p25_db *db, const char *tenant, const char *role,
			  struct p25_stmt *st, const char *const *params,
			  PGresult **failed, struct p25_err *err);

/* Fills err from a failed result (and logs server errors). */
void p25_db_error(struct p25_db *db, const PGresult *res, struct p25_err *err);
/* The same from an error's fields (e.g. caught and returned by a function). */
void p25_db_error_fields(const char *sqlstate, const char *message, const char *constraint,
			 struct p25_err *err);

/* --- the pool --- */

struct p25_pool;
typedef void (*p25_pool_fn)(struct p25_db *db, void *arg);

struct p25_pool_stats {
	int size;		/* connections */
	int busy;		/* running work */
	int waiting;		/* queued work */
	unsigned long rejected;	/* refused because the queue was full */
};

/*
 * Starts size threads, each connecting to url.  Connections are made
 * lazily and re-made after failures, so a pool starts even while the
 * database is down.  Returns NULL on allocation or thread failure.
 */
struct p25_pool *p25_pool_new(const char *url, int size, int queue_max,
			      const char *appname);
/*
 * Queues fn(db, arg) to run on a pool thread.  Returns 0, or -1 when the
 * queue is full or the pool is stopping (fn is then not called).
 * Thread-safe.  If the thread cannot get a connection, fn runs with
 * db == NULL and must answer 503.
 */
int p25_pool_submit(struct p25_pool *pool, p25_pool_fn fn, void *arg);
void p25_pool_stats(struct p25_pool *pool, struct p25_pool_stats *st);
/*
 * NOTIFY channel with payload (each under 64 bytes) soon, from a thread and
 * connection of the pool's own (started on first use), for a caller whose
 * transaction has committed: the notification is sent after this call, so
 * after that commit.  Asks that arrive while one is being sent collapse
 * into one NOTIFY per distinct pair.  Never blocks on the database; a
 * failure is logged (listeners must also poll).  Thread-safe.
 */
void p25_pool_notify(struct p25_pool *pool, const char *channel, const char *payload);
/* Finishes queued work, joins the threads, closes the connections. */
void p25_pool_free(struct p25_pool *pool);

/*
 * Runs a declared statement and hands the first column of each row to fn
 * as the row arrives (libpq's single-row mode), so the caller works while
 * PostgreSQL is still producing rows, and no result holds them all.  fn
 * gets the value (NUL-terminated; NULL for SQL NULL) and its length, valid
 * only during the call, and returns 0 to go on or -1 to stop (with err
 * filled by fn).  Returns the rows passed to fn, or -1 with err filled: on
 * a database error, which may come after rows were passed (the caller
 * throws away what it made of them), or when fn stopped.  The connection is
 * idle again on return.  Inside a transaction the rows are those of its
 * snapshot.
 */
typedef int (*p25_row_fn)(const char *text, size_t len, void *arg, struct p25_err *err);
long p25_db_each_text(struct p25_db *db, struct p25_stmt *st, const char *const *params,
		      p25_row_fn fn, void *arg, struct p25_err *err);

#endif
