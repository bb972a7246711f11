/*
 * http.c — the HTTP layer of p25-api on libmicrohttpd.
 *
 * Daemon: epoll thread pool (P25_HTTP_THREADS), suspend/resume, a
 * connection timeout (no slowloris), a connection limit sized for held
 * long-polls, and a completion callback that runs on every way a request
 * ends and frees its state.
 *
 * Life of a request (api_req.stage):
 *   STAGE_NEW      first callback: route, Content-Length cap, auth.  Errors
 *                  answered at once (MHD then skips the body).
 *   body calls     appended up to P25_BODY_MAX; beyond it the rest is read
 *                  and dropped and the answer is 413.
 *   final call     no-DB route: handler runs here.  DB route: the
 *                  connection is suspended first, then the work is queued on
 *                  the pool (STAGE_RUNNING); a full pool answers 503 with
 *                  Retry-After.  The pool thread stores the reply, sets
 *                  STAGE_READY and resumes the connection; MHD calls us
 *                  again and the reply is queued.
 * Suspending before queueing matters: resuming a connection that is not
 * suspended is undefined behaviour in libmicrohttpd.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include <sodium.h>

#include "api.h"
#include "p25/log.h"

struct api_ctx api;

long long
api_now(void)
{
	return (long long)time(NULL);
}

uint64_t
api_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------- replies */

static void
reply_reset(struct api_req *r)
{
	int i;

	free(r->resp);
	r->resp = NULL;
	r->resp_len = 0;
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	r->nhdrs = 0;
}

void
api_reply(struct api_req *r, int status, const char *ctype, const char *body,
	  size_t len)
{
	free(r->resp);
	r->status = status;
	r->ctype = ctype;
	r->resp = malloc(len + 1);
	if (!r->resp) {
		r->status = 503;
		r->resp_len = 0;
		return;
	}
	memcpy(r->resp, body, len);
	r->resp[len] = '\0';
	r->resp_len = len;
}

void
api_reply_json_take(struct api_req *r, int status, char *text)
{
	free(r->resp);
	r->status = status;
	r->ctype = "application/json";
	r->resp = text;
	r->resp_len = strlen(text);
}

void
api_reply_json_text(struct api_req *r, int status, const char *text)
{
	api_reply(r, status, "application/json", text, strlen(text));
}

void
api_reply_json(struct api_req *r, int status, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!s) {
		api_reply_problem(r, 500, "internal", "cannot encode the answer");
		return;
	}
	free(r->resp);
	r->status = status;
	r->ctype = "application/json";
	r->resp = s;
	r->resp_len = strlen(s);
}

void
api_header(struct api_req *r, const char *name, const char *value)
{
	if (r->nhdrs >= API_MAX_HEADERS)
		return;
	r->hdr_name[r->nhdrs] = strdup(name);
	r->hdr_value[r->nhdrs] = strdup(value);
	if (!r->hdr_name[r->nhdrs] || !r->hdr_value[r->nhdrs]) {
		free(r->hdr_name[r->nhdrs]);
		free(r->hdr_value[r->nhdrs]);
		return;
	}
	r->nhdrs++;
}

void
api_reply_err(struct api_req *r, struct p25_err *err)
{
	char *s;
	int status = err->status ? err->status : 500;

	if (!err->code[0])
		snprintf(err->code, sizeof(err->code), "internal");
	/* headers set for a success must not leak into the error */
	reply_reset(r);
	s = p25_problem_json(err, r->path);
	if (status == 401)
		api_header(r, "WWW-Authenticate", "Bearer realm=\"p25\"");
	if (err->retry_after > 0 || status == 503 || status == 429) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", err->retry_after > 0 ? err->retry_after : 1);
		api_header(r, "Retry-After", ra);
	}
	if (!s) {
		r->status = 500;
		r->ctype = "application/problem+json";
		return;
	}
	r->status = status;
	r->ctype = "application/problem+json";
	r->resp = s;
	r->resp_len = strlen(s);
	if (status >= 500)
		p25_logf(P25_LOG_ERROR, "http.error", "%s %s: %s (%s)", r->method,
			 r->path, err->code, err->detail);
	p25_err_clear(err);
}

void
api_reply_problem(struct api_req *r, int status, const char *code,
		  const char *fmt, ...)
{
	struct p25_err err = { 0 };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.detail, sizeof(err.detail), fmt, ap);
	va_end(ap);
	err.status = status;
	snprintf(err.code, sizeof(err.code), "%s", code);
	snprintf(err.title, sizeof(err.title), "%s", p25_http_reason(status));
	api_reply_err(r, &err);
}

/* ----------------------------------------------------------- accessors */

const char *
api_get_header(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
api_get_query(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *
api_body_json(struct api_req *r, struct p25_err *err)
{
	const char *ct = api_get_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	json_error_t je;
	json_t *o;

	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		p25_err_set(err, 415, "unsupported_media_type",
			    "the body must be application/json");
		return NULL;
	}
	if (!r->body || r->body_len == 0) {
		p25_err_set(err, 400, "malformed_json", "the body is empty");
		return NULL;
	}
	o = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		p25_err_set(err, 400, "malformed_json",
			    "the body is not valid JSON: %s at line %d, column %d",
			    je.text, je.line, je.column);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		p25_err_set(err, 400, "malformed_json", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

void
api_actor(const struct api_req *r, const char **tenant, const char **role_out)
{
	const char *role = "system";

	/*
	 * The identity follows the route, not every role the token holds: on a
	 * tenant route a token that is also reviewer or admin still sees only
	 * its own tenant's rows.
	 */
	if (r->authed) {
		unsigned need = r->route->roles;
		if ((need & P25_ROLE_TENANT) && (r->who.roles & P25_ROLE_TENANT))
			role = "tenant";
		else if (r->who.roles & need & (P25_ROLE_REVIEWER | P25_ROLE_ADMIN))
			role = "staff";
		else if (!need && (r->who.roles & P25_ROLE_TENANT))
			role = "tenant";
	}
	*tenant = strcmp(role, "tenant") == 0 ? r->who.tenant : NULL;
	*role_out = role;
}

int
api_begin(struct api_req *r, struct p25_db *db, struct p25_err *err)
{
	const char *tenant, *role;

	api_actor(r, &tenant, &role);
	return p25_db_begin_as(db, tenant, role, err);
}

PGresult *
api_read(struct api_req *r, struct p25_db *db, struct p25_stmt *st,
	 const char *const *params, struct p25_err *err)
{
	const char *tenant, *role;

	api_actor(r, &tenant, &role);
	return p25_db_read_as(db, tenant, role, st, params, err);
}

void
api_reply_query(struct api_req *r, struct p25_db *db, struct p25_stmt *st,
		const char *const *params, const char *what)
{
	struct p25_err err = { 0 };
	bool found = false;
	char *s = NULL;
	PGresult *res = api_read(r, db, st, params, &err);

	if (res && PQntuples(res) > 0 && PQnfields(res) > 0) {
		found = true;
		s = strdup(PQgetisnull(res, 0, 0) ? "null" : PQgetvalue(res, 0, 0));
		if (!s)
			p25_err_set(&err, 503, "out_of_memory", "out of memory");
	}
	PQclear(res);
	if (s)
		api_reply_json_text(r, 200, s);
	else if (!found && !err.status)
		api_reply_problem(r, 404, "not_found", "no such %s", what);
	else
		api_reply_err(r, &err);
	api_header(r, "Cache-Control", "private, no-cache");
	free(s);
}

/* -------------------------------------------------------------- router */

/* Matches path against pattern; fills params (malloc'd copies). */
static int
route_match(const char *pattern, const char *path, struct api_req *r)
{
	const char *p = pattern, *u = path;
	int n = 0;

	while (*p && *u) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			const char *ue = strchr(u, '/');
			size_t len = ue ? (size_t)(ue - u) : strlen(u);
			if (!pe || len == 0 || n >= API_MAX_PARAMS)
				goto fail;
			r->params[n] = strndup(u, len);
			if (!r->params[n])
				goto fail;
			n++;
			p = pe + 1;
			u += len;
			continue;
		}
		if (*p != *u)
			goto fail;
		p++;
		u++;
	}
	if (*p || *u)
		goto fail;
	r->nparams = n;
	return 1;
fail:
	while (n > 0)
		free(r->params[--n]);
	return 0;
}

/* Finds the route; 404 when no pattern matches, 405 when only the method
 * differs (Allow lists the methods). */
static int
route_find(struct api_req *r, char *allow, size_t allowlen)
{
	size_t i, used = 0;
	int path_known = 0;
	const char *m = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;

	allow[0] = '\0';
	for (i = 0; i < api_nroutes; i++) {
		if (!route_match(api_routes[i].pattern, r->path, r))
			continue;
		if (strcmp(api_routes[i].method, m) == 0) {
			r->route = &api_routes[i];
			r->route_idx = (int)i;
			return 200;
		}
		while (r->nparams > 0)
			free(r->params[--r->nparams]);
		path_known = 1;
		int n = snprintf(allow + used, allowlen - used, "%s%s",
				 used ? ", " : "", api_routes[i].method);
		if (n > 0 && (size_t)n < allowlen - used)
			used += (size_t)n;
	}
	return path_known ? 405 : 404;
}

/* -------------------------------------------------------- the handlers */

static enum MHD_Result
queue_reply(struct api_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int i;

	static char empty[1];

	/* the body (malloc'd) goes to MHD, which free()s it: no copy of a
	 * 55 MB snapshot per answer */
	if (r->resp)
		resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	r->resp = NULL;
	if (r->ctype && r->status != 304 && r->status != 204)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
	for (i = 0; i < r->nhdrs; i++)
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (atomic_load(&api.draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	atomic_store(&r->stage, STAGE_SENT);
	return ret;
}

static void
reply_no_db(struct api_req *r)
{
	struct p25_err err = { 0 };

	p25_err_set(&err, 503, "database_unavailable", "the database is not reachable");
	err.retry_after = 2;
	api_reply_err(r, &err);
}

/* A handler is done with r (on a pool thread): hand it back to MHD. */
static void
finish_on_pool(struct api_req *r)
{
	if (!r->resp && r->status == 0)
		api_reply_problem(r, 500, "internal", "the handler gave no answer");
	p25_log_ctx(NULL);
	atomic_store(&r->stage, STAGE_READY);
	MHD_resume_connection(r->conn);
}

/* Runs on a pool thread. */
static void
run_on_pool(struct p25_db *db, void *arg)
{
	struct api_req *r = arg;

	p25_log_ctx(r->id);
	if (!db && !(r->route->flags & ROUTE_DB_OPTIONAL))
		reply_no_db(r);
	else
		r->route->fn(r, db);
	finish_on_pool(r);
}

/*
 * Groups (ROUTE_GROUP).  A request of a group route joins a waiting list
 * instead of posting a pool item of its own.  A pool thread running a
 * group item takes a share of the waiting requests of one route and hands
 * them to the route's fn together (fn gets the first, the others follow
 * through grp_next).  Under light load a group is one request; when
 * requests wait for a pool connection, a starting group takes an equal
 * share of them with the groups posted and not yet started (at most
 * API_GROUP_MAX), so the connections stay busy in parallel while each
 * carries several requests — for submits one commit, one WAL flush, for
 * the group; for reads of one request, one round trip that checks every
 * kept body of the group.
 *
 * Each route has its own waiting list.  At most P25_DB_GROUPS items of a
 * route are posted or running at once (default: one per CPU, at most the
 * pool's size): the fewer groups run side by side, the more requests each
 * carries, and one round trip and one wake-up serve them all — on a 2-CPU
 * machine two groups of reads reached 1.5x the reads of eight (bench/run.sh,
 * docs/DESIGN-NOTES.md).  The pool's FIFO never fills with items that find
 * nothing left to do, and other routes' work keeps its place in it.  A
 * thread that finished a group posts a new item when requests still wait,
 * so a waiting request always has an item posted or a thread that will
 * post one.  The list is bounded like the pool's queue: beyond
 * P25_DB_QUEUE_MAX waiting requests (plus one per group) a request is
 * refused with 503.
 *
 * A further group of a ROUTE_GROUP_TENANTS route (submits) starts only
 * when API_GROUP_SPILL requests wait.  Below that, the submits that arrive
 * while a group runs wait for it and go together when it ends, instead of
 * starting a group of two or three beside it: two groups side by side
 * each carry fewer submits (a commit and a WAL flush each), and their
 * backends wake, sleep and wait on each other more often.  Open loop at
 * 2,200 submits/s on the bench machine (bench/README.md, "Seventh
 * session"), nine runs each: PostgreSQL 442-568 us a submit against
 * 525-597 with a second group started at once, p25-api 105-135 us against
 * 124-148, with some 40 % fewer context switches in PostgreSQL; at
 * 2,500/s, starting at once fell behind the arrivals in both runs (p99
 * 119 and 548 ms) where a mark of 16 to 32 held the p99 under 50 ms in
 * five runs of six.  The price is paid when the machine has room: a
 * submit may wait for the running group, and the p99 at 2,200/s was
 * 42.6 ms against 29.9 (medians of the nine).  A burst passes the mark
 * within milliseconds and the groups run side by side as before (64
 * connections in closed loop keep two groups busy).  Reads start at once:
 * a group of reads is one round trip and costs little to run beside
 * another.
 *
 * A tenant's requests are never in two groups of a ROUTE_GROUP_TENANTS
 * route (submits) at once: such a group holds its tenants' locks (the
 * submit lock) until it commits, so a second group
 * with one of them would wait for the whole first group, and groups would
 * queue behind each other.  A request whose tenant is in a running group
 * waits for the next group; the running group posts an item when it ends.
 */
#define API_GROUP_BUSY_MAX 256
#define API_GROUP_ROUTES 64

/* The waiting list of one ROUTE_GROUP route. */
struct group_q {
	pthread_mutex_t mu;
	struct api_req *head, *tail;
	int n;			/* requests waiting */
	int pending;		/* items posted, not started */
	int running;		/* items taking or handling a group */
	/* the tenants of the requests in running groups (a request's own
	 * who.tenant, valid while its group runs), with their hash */
	struct { uint32_t h; const char *t; } busy[API_GROUP_BUSY_MAX];
	int nbusy;
};

static struct group_q group_qs[API_GROUP_ROUTES];
static int group_limit;		/* groups of one route in flight at once */

/* Whether tenant t (hash h) is among the first nbusy busy entries of q. */
static bool
tenant_busy(const struct group_q *q, uint32_t h, const char *t, int nbusy)
{
	int i;

	for (i = 0; i < nbusy; i++)
		if (q->busy[i].h == h && strcmp(q->busy[i].t, t) == 0)
			return true;
	return false;
}

static void run_group(struct p25_db *db, void *arg);

/* Answers r 503 overloaded and hands it back to MHD (from any thread). */
static void
reply_overloaded(struct api_req *r)
{
	struct p25_err err = { 0 };

	p25_err_set(&err, 503, "overloaded", "all database connections are busy");
	err.retry_after = 1;
	api_reply_err(r, &err);
	atomic_store(&r->stage, STAGE_READY);
	MHD_resume_connection(r->conn);
}

/*
 * Posts a group item if requests wait and fewer than group_limit items
 * are posted or running; called with q's lock held.  When the pool refuses
 * and nothing else would take them, the waiting requests are unlinked into
 * *refused (answered 503 by the caller, outside the lock).
 */
static void
group_post_locked(struct group_q *q, struct api_req **refused)
{
	int inflight = q->pending + q->running;

	if (q->n == 0 || inflight >= group_limit)
		return;
	/* a further group of submits waits for a deep list (see Groups) */
	if (inflight > 0 && q->n < API_GROUP_SPILL &&
	    (q->head->route->flags & ROUTE_GROUP_TENANTS))
		return;
	q->pending++;
	if (p25_pool_submit(api.pool, run_group, q) == 0)
		return;
	q->pending--;
	if (q->pending == 0 && q->running == 0) {
		*refused = q->head;
		q->head = q->tail = NULL;
		q->n = 0;
	}
}

static void
reply_refused(struct api_req *r)
{
	while (r) {
		struct api_req *next = r->grp_next;
		r->grp_next = NULL;
		reply_overloaded(r);
		r = next;
	}
}

/*
 * Takes this group's share of q's waiting requests into rs; called with
 * q's lock held.  Returns how many it took.
 */
static int
group_take_locked(struct group_q *q, struct api_req **rs, bool with_db, bool *locks)
{
	struct api_req **pp, *r;
	int n = 0, want, nbusy0 = q->nbusy;

	/* an equal share for this group and those posted but not started;
	 * groups already running take what is left when they end */
	want = (q->n + q->pending) / (q->pending + 1);
	if (want > API_GROUP_MAX)
		want = API_GROUP_MAX;
	q->tail = NULL;
	for (pp = &q->head; *pp;) {
		uint32_t h = 0;

		r = *pp;
		*locks = r->route->flags & ROUTE_GROUP_TENANTS;
		if (n < want &&
		    !(*locks && tenant_busy(q, h = api_hash(r->who.tenant), r->who.tenant, nbusy0))) {
			*pp = r->grp_next;
			r->grp_next = NULL;
			rs[n++] = r;
			q->n--;
			if (*locks && with_db && q->nbusy < API_GROUP_BUSY_MAX) {
				q->busy[q->nbusy].h = h;
				q->busy[q->nbusy++].t = r->who.tenant;
			}
		} else {
			q->tail = r;
			pp = &r->grp_next;
		}
	}
	return n;
}

/*
 * A group item: takes a share of the waiting requests and runs them as one
 * group.  When requests still wait as it ends, the same thread takes the
 * next group (up to GROUP_RUNS in a row) instead of posting an item that
 * would wake another pool thread while this one goes to sleep: one wake-up
 * less per group, which on the bench machine is a sizeable part of a
 * submit's cost (see the Groups comment above).
 */
#define GROUP_RUNS 64

static void
run_group(struct p25_db *db, void *arg)
{
	struct group_q *q = arg;
	struct api_req *rs[API_GROUP_MAX], *refused = NULL;
	int n, i, runs = 0;
	bool locks = false;

	pthread_mutex_lock(&q->mu);
	q->pending--;
	q->running++;
	for (;;) {
		n = group_take_locked(q, rs, db != NULL, &locks);
		pthread_mutex_unlock(&q->mu);
		if (n > 0 && !db) {
			for (i = 0; i < n; i++) {
				p25_log_ctx(rs[i]->id);
				reply_no_db(rs[i]);
				finish_on_pool(rs[i]);
			}
		} else if (n > 0) {
			metrics_group(rs[0]->route_idx, n);
			for (i = 0; i + 1 < n; i++)
				rs[i]->grp_next = rs[i + 1];
			rs[0]->route->fn(rs[0], db);
			/* the group's transaction is over: its tenants are free again
			 * (before the requests go back to MHD, which may free them) */
			if (locks) {
				pthread_mutex_lock(&q->mu);
				for (i = 0; i < q->nbusy;) {
					int k;
					for (k = 0; k < n && q->busy[i].t != rs[k]->who.tenant; k++)
						;
					if (k < n)
						q->busy[i] = q->busy[--q->nbusy];
					else
						i++;
				}
				pthread_mutex_unlock(&q->mu);
			}
			for (i = 0; i < n; i++) {
				rs[i]->grp_next = NULL;
				p25_log_ctx(rs[i]->id);
				finish_on_pool(rs[i]);
			}
		}
		pthread_mutex_lock(&q->mu);
		/* go on with the next group here while requests wait (a run that
		 * found only busy tenants stops: the groups holding them post) */
		if (n == 0 || q->n == 0 || !db || ++runs >= GROUP_RUNS)
			break;
	}
	q->running--;
	/* a run that found only busy tenants posts nothing: the groups holding
	 * them post when they end (no item spinning meanwhile) */
	if (n > 0)
		group_post_locked(q, &refused);
	pthread_mutex_unlock(&q->mu);
	reply_refused(refused);
}

/* Joins its route's waiting list (see Groups above); may answer r with 503 at once. */
static void
group_join(struct api_req *r)
{
	struct group_q *q = &group_qs[r->route_idx];
	struct api_req *refused = NULL;
	bool full;

	pthread_mutex_lock(&q->mu);
	full = q->n >= (int)api.cfg.db_queue_max + group_limit;
	if (!full) {
		if (q->tail)
			q->tail->grp_next = r;
		else
			q->head = r;
		q->tail = r;
		q->n++;
		group_post_locked(q, &refused);
	}
	pthread_mutex_unlock(&q->mu);
	if (full)
		reply_overloaded(r);
	reply_refused(refused);
}

/* Sets up the waiting lists; the limit of groups in flight (P25_DB_GROUPS). */
static int
groups_init(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t i;

	if (api_nroutes > API_GROUP_ROUTES) {
		p25_error("http.groups", "%zu routes, room for %d", api_nroutes, API_GROUP_ROUTES);
		return -1;
	}
	for (i = 0; i < api_nroutes; i++)
		pthread_mutex_init(&group_qs[i].mu, NULL);
	group_limit = (int)api.cfg.db_groups;
	if (group_limit == 0)
		group_limit = cpus > 0 ? (int)cpus : 1;
	if (group_limit > (int)api.cfg.db_pool_size)
		group_limit = (int)api.cfg.db_pool_size;
	return 0;
}

/*
 * A request id: a random per-thread prefix and a per-thread counter, so a
 * request costs no getrandom(2) call (ids only need to be unique, not
 * secret).
 */
static void
request_id(unsigned char out[8])
{
	static _Thread_local uint32_t prefix, counter;
	static _Thread_local bool seeded;

	if (!seeded) {
		randombytes_buf(&prefix, sizeof(prefix));
		randombytes_buf(&counter, sizeof(counter));
		seeded = true;
	}
	counter++;
	memcpy(out, &prefix, 4);
	memcpy(out + 4, &counter, 4);
}

/* Runs the handler: here when it needs no database, else on the pool. */
static enum MHD_Result
dispatch(struct api_req *r)
{
	if (!(r->route->flags & ROUTE_DB)) {
		p25_log_ctx(r->id);
		r->route->fn(r, NULL);
		p25_log_ctx(NULL);
		return queue_reply(r);
	}
	atomic_store(&r->stage, STAGE_RUNNING);
	MHD_suspend_connection(r->conn);
	if (r->route->flags & ROUTE_GROUP) {
		group_join(r);
		return MHD_YES;
	}
	if (p25_pool_submit(api.pool, run_on_pool, r) != 0)
		reply_overloaded(r);
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *upload_data,
	   size_t *upload_size, void **con_cls)
{
	struct api_req *r = *con_cls;
	int stage;

	if (!r) {
		unsigned char rnd[8];
		char allow[64];
		const char *cl;
		int found;

		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&api.inflight, 1);
		r->t0_ns = api_mono_ns();
		r->conn = conn;
		r->route_idx = -1;
		snprintf(r->method, sizeof(r->method), "%s", method);
		r->path = strdup(url);
		request_id(rnd);
		sodium_bin2hex(r->id, sizeof(r->id), rnd, sizeof(rnd));
		if (!r->path)
			return MHD_NO;
		found = route_find(r, allow, sizeof(allow));
		if (found == 404) {
			api_reply_problem(r, 404, "not_found", "no such resource");
			return queue_reply(r);
		}
		if (found == 405) {
			api_reply_problem(r, 405, "method_not_allowed",
					  "%s is not allowed here", method);
			api_header(r, "Allow", allow);
			return queue_reply(r);
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end != '\0' || n > (unsigned long long)api.cfg.body_max) {
				api_reply_problem(r, 413, "body_too_large",
				    "the body is larger than %ld bytes", api.cfg.body_max);
				return queue_reply(r);
			}
		}
		if (!(r->route->flags & ROUTE_PUBLIC)) {
			struct p25_err err = { 0 };
			const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_AUTHORIZATION);
			if (p25_auth_verify(api.auth, h, api_now(), &r->who, &err) != 0) {
				api_reply_err(r, &err);
				return queue_reply(r);
			}
			r->authed = true;
			if (r->route->roles && !(r->who.roles & r->route->roles)) {
				api_reply_problem(r, 403, "forbidden",
				    "your roles do not allow this call");
				return queue_reply(r);
			}
		}
		atomic_store(&r->stage, STAGE_BODY);
		return MHD_YES;
	}

	stage = atomic_load(&r->stage);
	if (stage == STAGE_BODY && *upload_size > 0) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (r->body_too_big || r->body_len + n > (size_t)api.cfg.body_max) {
			r->body_too_big = true;	/* read and drop the rest */
			return MHD_YES;
		}
		if (r->body_len + n + 1 > r->body_cap) {
			size_t cap = r->body_cap ? r->body_cap * 2 : 1024;
			char *nb;
			while (cap < r->body_len + n + 1)
				cap *= 2;
			nb = realloc(r->body, cap);
			if (!nb)
				return MHD_NO;
			r->body = nb;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
		return MHD_YES;
	}
	if (stage == STAGE_BODY) {
		if (r->body_too_big) {
			api_reply_problem(r, 413, "body_too_large",
			    "the body is larger than %ld bytes", api.cfg.body_max);
			return queue_reply(r);
		}
		if (r->body_len > 0 && !(r->route->flags & ROUTE_BODY)) {
			api_reply_problem(r, 400, "unexpected_body",
			    "this call takes no body");
			return queue_reply(r);
		}
		if (r->route->flags & ROUTE_LONGPOLL) {
			if (feed_parse(r) != 0)
				return queue_reply(r);
			if (r->lp_wait > 0 && !atomic_load(&api.draining) &&
			    feed_latest() <= r->lp_after) {
				/* hold it: no thread, no connection while it waits */
				atomic_store(&r->stage, STAGE_HELD);
				MHD_suspend_connection(conn);
				if (feed_hold(r) == 1) {
					atomic_store(&r->stage, STAGE_WOKEN);
					MHD_resume_connection(conn);
				}
				return MHD_YES;
			}
		}
		return dispatch(r);
	}
	if (stage == STAGE_WOKEN)
		return dispatch(r);
	if (stage == STAGE_READY)
		return queue_reply(r);
	/* STAGE_RUNNING: a spurious call while the pool works */
	return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct api_req *r = *con_cls;
	uint64_t ns;
	int i;

	if (!r)
		return;
	*con_cls = NULL;
	ns = api_mono_ns() - r->t0_ns;
	metrics_observe(r->route_idx, r->status, ns);
	if (p25_log_enabled(P25_LOG_INFO) || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:f, s:b}",
		    "id", r->id, "method", r->method,
		    "route", r->route ? r->route->pattern : "-",
		    "status", r->status, "ms", (double)ns / 1e6,
		    "complete", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
		if (r->authed)
			json_object_set_new(o, "sub", json_string(r->who.sub));
		p25_logj(P25_LOG_INFO, "http.access", o);
	}
	reply_reset(r);
	for (i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r->body);
	free(r->path);
	free(r);
	atomic_fetch_sub(&api.inflight, 1);
}

int
http_start(void)
{
	struct sockaddr_in6 sa6;
	struct sockaddr_in sa4;
	struct sockaddr *sa;
	char host[128];
	const char *colon = strrchr(api.cfg.listen, ':');
	char *end;
	long port;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;

	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 ||
	    (size_t)(colon - api.cfg.listen) >= sizeof(host)) {
		p25_error("http.listen", "P25_LISTEN: bad port in %s", api.cfg.listen);
		return -1;
	}
	memcpy(host, api.cfg.listen, (size_t)(colon - api.cfg.listen));
	host[colon - api.cfg.listen] = '\0';
	if (host[0] == '[') {	/* [::1]:8025 */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	memset(&sa4, 0, sizeof(sa4));
	memset(&sa6, 0, sizeof(sa6));
	if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa4.sin_addr) == 1) {
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sa4;
	} else if (inet_pton(AF_INET6, host, &sa6.sin6_addr) == 1) {
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
	} else {
		p25_error("http.listen", "P25_LISTEN: %s is not an IP address", host);
		return -1;
	}
	if (groups_init() != 0)
		return -1;
	api.daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
	    on_request, NULL,
	    MHD_OPTION_SOCK_ADDR, sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)api.cfg.http_threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)api.cfg.http_max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)api.cfg.http_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_END);
	if (!api.daemon) {
		p25_error("http.listen", "cannot listen on %s", api.cfg.listen);
		return -1;
	}
	return 0;
}

void
http_drain_and_stop(int seconds)
{
	uint64_t deadline = api_mono_ns() + (uint64_t)seconds * 1000000000u;

	atomic_store(&api.draining, true);
	MHD_quiesce_daemon(api.daemon);		/* stop accepting */
	feed_stop();				/* answer the held long-polls now */
	while (atomic_load(&api.inflight) > 0 && api_mono_ns() < deadline) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&api.inflight) > 0)
		p25_warn("http.drain", "%ld requests still in flight after %d s",
			 atomic_load(&api.inflight), seconds);
	MHD_stop_daemon(api.daemon);
	api.daemon = NULL;
}
