/*
 * api.h — what the parts of p25-api share: the process context, the
 * per-request state, the route table and the reply helpers.
 *
 * Threads: libmicrohttpd's epoll threads parse, route, authenticate and
 * answer requests that need no database inline.  Requests whose route needs
 * the database are suspended and handed to the pool (db.h); a pool thread
 * runs the handler, stores the reply in the request and resumes the
 * connection; the MHD thread then queues the reply.  A handler therefore
 * runs on exactly one thread and owns its struct api_req until it returns.
 */
#ifndef P25_API_H
#define P25_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "p25/auth.h"
#include "p25/config.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/vetting.h"

struct MHD_Connection;
struct MHD_Daemon;
struct api_req;

typedef void (*api_handler)(struct api_req *r, struct p25_db *db);

enum {
	ROUTE_PUBLIC = 1 << 0,	/* no bearer token */
	ROUTE_DB = 1 << 1,	/* runs on the database pool */
	ROUTE_BODY = 1 << 2,	/* takes a request body */
	ROUTE_DB_OPTIONAL = 1 << 3,	/* handler copes with db == NULL */
	ROUTE_LONGPOLL = 1 << 4,	/* the feed: may be held until an event (feed.c) */
	ROUTE_GROUP = 1 << 5,	/* requests waiting for the pool are handled
				 * together: fn gets the first, the others
				 * follow through grp_next (http.c, groups) */
	ROUTE_GROUP_TENANTS = 1 << 6,	/* a group holds its tenants' locks until
					 * it ends: a tenant is in one such
					 * group at a time */
};

/* FNV-1a of a string: the group queues' tenants, the kept bodies' ids */
static inline uint32_t
api_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* the most requests one group carries (http.c, groups) */
#define API_GROUP_MAX 32
#define API_GROUP_SPILL 16	/* waiting submits that start a further group (http.c) */

struct api_route {
	const char *method;
	const char *pattern;	/* "/v1/requests/{id}" */
	api_handler fn;
	unsigned roles;		/* any of these role bits; 0 = any caller */
	unsigned flags;
};

extern const struct api_route api_routes[];
extern const size_t api_nroutes;

#define API_MAX_PARAMS 4
#define API_MAX_HEADERS 8

struct api_req {
	struct MHD_Connection *conn;
	const struct api_route *route;
	int route_idx;		/* -1 when none matched */
	char method[8];
	char *path;
	char *params[API_MAX_PARAMS];
	int nparams;
	char id[20];		/* request id, also in logs */

	char *body;
	size_t body_len, body_cap;
	bool body_too_big;

	struct p25_principal who;
	bool authed;

	/* the reply */
	int status;
	char *resp;
	size_t resp_len;
	const char *ctype;
	char *hdr_name[API_MAX_HEADERS];
	char *hdr_value[API_MAX_HEADERS];
	int nhdrs;

	atomic_int stage;	/* see http.c */
	/* long-poll (ROUTE_LONGPOLL) */
	long long lp_after;
	int lp_wait, lp_limit;
	uint64_t lp_deadline_ns;
	struct api_req *lp_next, *lp_prev;
	uint64_t t0_ns;
	struct api_req *grp_next;	/* ROUTE_GROUP: the next of the group */
};

enum { STAGE_NEW, STAGE_BODY, STAGE_RUNNING, STAGE_READY, STAGE_SENT,
       STAGE_HELD, STAGE_WOKEN };

struct api_ctx {
	struct p25_config cfg;
	struct p25_auth *auth;
	struct p25_pool *pool;
	struct MHD_Daemon *daemon;
	atomic_long inflight;
	atomic_bool draining;
	struct p25_policy policy;	/* read-only after start */
};
extern struct api_ctx api;

/* --- reply helpers (http.c); each sets the reply once --- */
void api_reply(struct api_req *r, int status, const char *ctype,
	       const char *body, size_t len);
/* Takes the reference to o. */
void api_reply_json(struct api_req *r, int status, json_t *o);
/* Reply with a JSON text already built (e.g. by PostgreSQL). */
void api_reply_json_text(struct api_req *r, int status, const char *text);
/* The same, taking text (malloc'd, NUL-terminated) instead of copying it. */
void api_reply_json_take(struct api_req *r, int status, char *text);
void api_reply_err(struct api_req *r, struct p25_err *err);
void api_reply_problem(struct api_req *r, int status, const char *code,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void api_header(struct api_req *r, const char *name, const char *value);

/* --- request accessors (safe from the handler's thread) --- */
const char *api_get_header(struct api_req *r, const char *name);
const char *api_get_query(struct api_req *r, const char *name);
/* Parses the body as a JSON object; NULL with err 400/415 otherwise. */
json_t *api_body_json(struct api_req *r, struct p25_err *err);

/*
 * Answers with the JSON text st returns (first row, first column), read in a
 * read-only transaction with the caller's identity: 200, or 404 "no such
 * <what>" when there is no row, or the database error.
 */
void api_reply_query(struct api_req *r, struct p25_db *db, struct p25_stmt *st,
		     const char *const *params, const char *what);

/* Opens a transaction with the caller's RLS identity. */
int api_begin(struct api_req *r, struct p25_db *db, struct p25_err *err);
/* The caller's RLS identity for this route: tenant (NULL for staff and
 * system) and role ("tenant", "staff" or "system"). */
void api_actor(const struct api_req *r, const char **tenant, const char **role);
/* One statement read in a transaction of its own with the caller's RLS
 * identity, in one round trip (p25_db_read_as).  Caller PQclear()s. */
PGresult *api_read(struct api_req *r, struct p25_db *db, struct p25_stmt *st,
		   const char *const *params, struct p25_err *err);

/* http.c */
int http_start(void);
void http_drain_and_stop(int seconds);

/* handlers, by file */
void sys_healthz(struct api_req *r, struct p25_db *db);
void sys_readyz(struct api_req *r, struct p25_db *db);
void sys_openapi(struct api_req *r, struct p25_db *db);
void sys_whoami(struct api_req *r, struct p25_db *db);
void sys_static(struct api_req *r, struct p25_db *db);
void sys_page(struct api_req *r, struct p25_db *db);

void req_submit(struct api_req *r, struct p25_db *db);
void req_list(struct api_req *r, struct p25_db *db);
void req_get(struct api_req *r, struct p25_db *db);
void req_withdraw(struct api_req *r, struct p25_db *db);
void req_message(struct api_req *r, struct p25_db *db);
/* After a change to request ID inside an open transaction: reads the
 * request back (only the tenant's when TENANT is set), commits, and answers
 * STATUS with its JSON and ETag; on any failure rolls back and answers the
 * error. */
void request_commit_reply(struct api_req *r, struct p25_db *db, const char *id,
			  const char *tenant, int status);
void admin_tenant_put(struct api_req *r, struct p25_db *db);
void admin_tenant_get(struct api_req *r, struct p25_db *db);
void admin_addresses_put(struct api_req *r, struct p25_db *db);
void admin_addresses_get(struct api_req *r, struct p25_db *db);
void addr_status(struct api_req *r, struct p25_db *db);
void req_recheck(struct api_req *r, struct p25_db *db);
void readiness(struct api_req *r, struct p25_db *db);

void review_queue(struct api_req *r, struct p25_db *db);
void review_get(struct api_req *r, struct p25_db *db);
void review_claim(struct api_req *r, struct p25_db *db);
void review_decide(struct api_req *r, struct p25_db *db);
void exm_revoke(struct api_req *r, struct p25_db *db);
void exm_reinstate(struct api_req *r, struct p25_db *db);
void audit_list(struct api_req *r, struct p25_db *db);
void deliveries_list(struct api_req *r, struct p25_db *db);
/* webhooks.c */
void webhook_get(struct api_req *r, struct p25_db *db);
void webhook_secret_rotate(struct api_req *r, struct p25_db *db);
void abuse_report(struct api_req *r, struct p25_db *db);
void jwks_get(struct api_req *r, struct p25_db *db);
void enf_snapshot(struct api_req *r, struct p25_db *db);
void enf_feed(struct api_req *r, struct p25_db *db);
void enf_ack(struct api_req *r, struct p25_db *db);
void exm_list(struct api_req *r, struct p25_db *db);
void exm_get(struct api_req *r, struct p25_db *db);
void exm_delete(struct api_req *r, struct p25_db *db);

/* One page of the feed after $1, at most $2 events, as the JSON answer:
 * enf_feed() reads it through the pool, feed.c's listener for held polls. */
#define FEED_PAGE_SQL \
	"SELECT json_build_object('events', coalesce(json_agg(json_strip_nulls(json_build_object(" \
	" 'seq', seq, 'type', type, 'exemption', exemption_id, 'cidr', prefix::text," \
	" 'token', token, 'reason', reason)) ORDER BY seq), '[]')," \
	" 'next', coalesce(max(seq), $1::bigint))::text" \
	" FROM (SELECT * FROM feed_events WHERE seq > $1::bigint ORDER BY seq LIMIT $2) e"

/* feed.c: the LISTEN thread and the held long-polls */
int feed_start(void);
void feed_stop(void);
/* Parses after/wait/limit into r; -1 with the 400 reply set. */
int feed_parse(struct api_req *r);
/* Highest feed position known to this process (-1 before the first read). */
long long feed_latest(void);
/*
 * Called from the access handler after suspending r: holds r until an
 * event after r->lp_after exists or r->lp_wait passes, then resumes it
 * (stage STAGE_WOKEN).  Returns 1 when that is already true (the caller
 * resumes it itself), 0 when r is held.
 */
int feed_hold(struct api_req *r);
/* Held long-polls (for /metrics and the benchmark). */
long feed_held(void);

/* metrics.c */
void metrics_observe(int route_idx, int status, uint64_t ns);
void metrics_group(int route_idx, int n);
void metrics_render(struct api_req *r, struct p25_db *db);

/* unix time in seconds and monotonic ns */
long long api_now(void);
uint64_t api_mono_ns(void);

#endif
