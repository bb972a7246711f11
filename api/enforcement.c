/*
 * enforcement.c — what enforcement nodes read: the JWKS (public), the
 * snapshot, the feed and the acknowledgements (enforcer role).
 *
 * Consistency: feed positions are assigned in commit order
 * (migrations/0001, feed_events), so the snapshot — read in one
 * REPEATABLE READ transaction — holds exactly the tokens that the events up
 * to its position produced, and a node that follows the feed from there
 * misses nothing and sees nothing twice.
 */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "api.h"
#include "input.h"
#include "p25/keys.h"
#include "p25/log.h"

void
jwks_get(struct api_req *r, struct p25_db *db)
{
	struct p25_err err = { 0 };
	char *s;

	if (api_begin(r, db, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	s = p25_keys_jwks(db, &err);
	p25_db_rollback(db);
	if (!s) {
		api_reply_err(r, &err);
		return;
	}
	api_reply(r, 200, "application/jwk-set+json", s, strlen(s));
	/* short: a rotated-in key must reach nodes well before it signs much */
	api_header(r, "Cache-Control", "public, max-age=60");
	free(s);
}

/* base64url and '.': the bytes a token string needs no JSON escaping for */
static const unsigned char tok_plain[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
	['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/*
 * Advice for a snapshot body's buffer p of len bytes.  Beyond glibc's mmap
 * threshold each such allocation is fresh memory, and its first write
 * faults in every 4 KiB page: on a virtual machine that costs more than
 * the copy itself (~0.25 s of CPU for 55 MB measured here, 5 ms for the
 * same copy into memory already mapped).  Asking for transparent huge pages
 * on the buffer (THP "madvise" mode, the common default) makes that a few
 * dozen faults.  Only advice: without THP nothing changes.
 */
static void
huge_advise(char *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	if (p && len >= (4u << 20)) {
		uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
		uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)4095;

		if (e > a)
			(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
	}
#else
	(void)p;
	(void)len;
#endif
}

/* A buffer of len bytes for a snapshot body (freed with free()). */
static char *
big_alloc(size_t len)
{
	char *p = malloc(len);

	huge_advise(p, len);
	return p;
}

/*
 * api_reply() for a snapshot body: the same reply, its copy made in a
 * buffer from big_alloc().  http.c frees r->resp with free().  -1 when out
 * of memory (the 503 set).
 */
static int
reply_body(struct api_req *r, const char *text, size_t len)
{
	free(r->resp);
	r->resp = big_alloc(len + 1);
	if (!r->resp) {
		r->resp_len = 0;
		api_reply_problem(r, 503, "out_of_memory", "out of memory");
		return -1;
	}
	memcpy(r->resp, text, len);
	r->resp[len] = '\0';
	r->resp_len = len;
	r->status = 200;
	r->ctype = "application/json";
	return 0;
}

/*
 * The body {"seq":N,"tokens":["<jws>",...]} is written here, row by row as
 * PostgreSQL sends the rows (p25_db_each_text: libpq's single-row mode), not
 * by json_agg in the database: with 100,000 tokens (55 MB) the aggregate's
 * per-character escaping and its sort (beyond work_mem: on disk) cost
 * seconds.  Taking the rows as they come lets the two CPUs overlap — the
 * database scans and sends while this thread writes — and keeps no result
 * set of 55 MB: holding one cost more in memory management (its thousands
 * of blocks grown into the heap, then trimmed with a TLB shootdown each
 * time) than the copying itself.  A token is base64url and dots, which
 * needs no JSON escaping; anything else (never written by p25, but the
 * column is text) goes through jansson.  No order: the agent sorts by
 * exemption id itself.
 *
 * The buffer: the fault of each fresh 4 KiB page is what costs here (see
 * huge_advise; growing 55 MB by realloc measured 0.64 s, nearly all page
 * faults, since the mremap'd block lost its huge pages).  So the body is
 * written into one mapping reserved at once — address space only, pages
 * come as they are written, in 2 MiB huge pages where THP allows: the
 * mapping is aligned to 2 MiB for that — of BODY_RESERVE or four times the
 * last body, whichever is more, and only a body beyond that is copied into
 * a mapping twice the size.  Unwritten pages cost nothing; the mapping is
 * cut to the body's size once written.
 */
#define HUGE_2M ((size_t)2 << 20)
#define BODY_RESERVE ((size_t)256 << 20)

struct body_buf {
	char *p;		/* mapping of cap bytes (munmap), 2 MiB aligned */
	size_t len, cap;
	char *dup;		/* NULL, or malloc'd, cap bytes: the same body, the reply */
};

static void
body_unmap(char *p, size_t cap)
{
	if (p)
		(void)munmap(p, cap);
}

/* A mapping of cap bytes (a multiple of 2 MiB) aligned to 2 MiB, or NULL. */
static char *
body_map(size_t cap)
{
	char *m = mmap(NULL, cap + HUGE_2M, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;
	size_t head;

	if (m == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)m + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1);
	head = (size_t)(a - (uintptr_t)m);
	if (head)
		(void)munmap(m, head);
	(void)munmap((char *)a + cap, HUGE_2M - head);
	huge_advise((char *)a, cap);
	return (char *)a;
}

/* Room for need more bytes; -1 with err when out of memory. */
static int
body_reserve(struct body_buf *bb, size_t need, struct p25_err *err)
{
	size_t cap = bb->cap ? bb->cap * 2 : BODY_RESERVE;
	char *np;

	if (bb->len + need <= bb->cap)
		return 0;
	while (cap < bb->len + need)
		cap *= 2;
	np = body_map(cap);
	if (!np) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		return -1;
	}
	if (bb->len)
		memcpy(np, bb->p, bb->len);
	body_unmap(bb->p, bb->cap);
	bb->p = np;
	bb->cap = cap;
	/* rare (a body 4 times the last one): the reply is copied at the end */
	free(bb->dup);
	bb->dup = NULL;
	return 0;
}

/* Unmaps what lies beyond the body (and its NUL), in whole 2 MiB steps. */
static void
body_trim(struct body_buf *bb)
{
	size_t keep = (bb->len + 1 + HUGE_2M - 1) & ~(HUGE_2M - 1);

	if (keep < bb->cap) {
		(void)munmap(bb->p + keep, bb->cap - keep);
		bb->cap = keep;
	}
}

/* One token of the body. */
static int
body_append(struct body_buf *bb, const char *text, size_t len, struct p25_err *err)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t k;

	if (body_reserve(bb, len + 3, err) != 0)
		return -1;
	if (bb->p[bb->len - 1] != '[')
		bb->p[bb->len++] = ',';
	for (k = 0; k < len && tok_plain[t[k]]; k++)
		;
	if (k == len) {
		bb->p[bb->len++] = '"';
		memcpy(bb->p + bb->len, t, len);
		bb->len += len;
		bb->p[bb->len++] = '"';
		return 0;
	}
	{
		json_t *js = json_stringn(text, len);
		char *esc = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		size_t el = esc ? strlen(esc) : 0;

		json_decref(js);
		if (!esc) {
			p25_err_set(err, 500, "internal", "a token cannot be written as JSON");
			return -1;
		}
		if (body_reserve(bb, el, err) != 0) {
			free(esc);
			return -1;
		}
		memcpy(bb->p + bb->len, esc, el);
		bb->len += el;
		free(esc);
	}
	return 0;
}

/*
 * p25_row_fn: one token, written twice.  The builder's own reply needs a
 * malloc'd copy of the body (http.c hands it to MHD, which frees it), and
 * made after the build that copy (55 MB into fresh memory) came after the
 * last row, adding to the answer's time: written here with each row, while
 * the data is in the cache, it overlaps with PostgreSQL sending the rows.
 */
static int
body_row(const char *text, size_t len, void *arg, struct p25_err *err)
{
	struct body_buf *bb = arg;
	size_t from = bb->len;

	if (!text)
		return 0;	/* tokens.jws is NOT NULL */
	if (body_append(bb, text, len, err) != 0)
		return -1;
	if (bb->dup)
		memcpy(bb->dup + from, bb->p + from, bb->len - from);
	return 0;
}

/*
 * The last snapshot built, shared by every fetch at the same feed position.
 * Many nodes take a snapshot at once (a fleet restarting, the hourly
 * resync), and all but the first would rebuild the same 55 MB: instead one
 * fetch builds it while the others at that position wait for it (one build
 * at a time: it also bounds the memory to one body in the making), and
 * later fetches are answered from memory after reading the position alone.
 *
 * A body is served only for the position it names: a fetch first reads the
 * feed position (and the database's clock) in its own REPEATABLE READ
 * transaction, and takes the cached body only when it was built at exactly
 * that position.  Every change to the tokens a snapshot holds writes a feed
 * event in its transaction (issue, renew, revoke, suspend, expire: see
 * core/issue.c, core/suspend.c, workers/maintain.c, api/), so at the same
 * position the same rows are current and active — except by the clock: a
 * token leaves the snapshot when its expires_at passes, with no event.  So
 * the body also carries the earliest expires_at among the current tokens
 * (read in the same transaction: at most its own tokens' earliest), and is
 * used only while the database's now() is before it; after that the next
 * fetch builds a new one.  The key set is no input of the body (the tokens
 * are served whatever key signed them; nodes verify), so it is no part of
 * the key.  The ETag stays the position: a body and its ETag always agree.
 */
struct snap_body {
	char *text;		/* a mapping of map_len bytes (body_map) */
	size_t len, map_len;
	long long seq;
	long long min_exp_us;	/* earliest expires_at of a current token (at most
				   the body's earliest), unix µs; LLONG_MAX: none */
	int refs;		/* under snap_cache.mu; the cache holds one */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t built;	/* a build ended (stored or failed) */
	struct snap_body *cur;	/* NULL: none */
	bool building;
	size_t last_len;	/* of the last body built: the next one's first guess */
} snap_cache = { .mu = PTHREAD_MUTEX_INITIALIZER, .built = PTHREAD_COND_INITIALIZER };

/* Under snap_cache.mu. */
static void
snap_unref_locked(struct snap_body *b)
{
	if (b && --b->refs == 0) {
		body_unmap(b->text, b->map_len);
		free(b);
	}
}

/* The body for seq valid at now_us (a reference), or NULL.  Under mu. */
static struct snap_body *
snap_find_locked(long long seq, long long now_us)
{
	struct snap_body *b = snap_cache.cur;

	if (!b || b->seq != seq || now_us >= b->min_exp_us)
		return NULL;
	b->refs++;
	return b;
}

static void
snap_release(struct snap_body *b)
{
	pthread_mutex_lock(&snap_cache.mu);
	snap_unref_locked(b);
	pthread_mutex_unlock(&snap_cache.mu);
}

/* CPU time of the calling thread, ns (for the debug log) */
static uint64_t
thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Reads the tokens in the open transaction (at position seq) and builds the
 * body; NULL with err on failure.  The earliest expiry comes from the same
 * snapshot of the database.  Called by the one builder (snap_cache.building
 * is ours), which alone touches snap_cache.last_len.
 *
 * The plan: the row-level-security predicate on both tables (a
 * current_setting() the planner cannot see through) makes it expect a
 * handful of rows where every row qualifies, so left alone it joins by
 * 100,000 index probes into tokens, in a parallel plan.  One sequential
 * pass over each table joined by hash costs half as much, and a parallel
 * worker would only take the CPU this thread needs to write the body while
 * the rows come: both are set for this transaction only (SET LOCAL).
 */
static struct snap_body *
snap_build(struct p25_db *db, const char *seq, char **reply, struct p25_err *err)
{
	P25_STMT(toks, 0,
	    "SELECT t.jws FROM tokens t"
	    " JOIN exemptions e ON e.id = t.exemption_id"
	    " WHERE t.current AND e.status = 'active' AND t.expires_at > now()");
	/* a lower bound of the body's earliest expiry (every current token, the
	 * exemption's status aside): one step of the index tokens_expiry */
	P25_STMT(minexp, 0,
	    "SELECT (extract(epoch FROM min(expires_at)) * 1000000)::bigint FROM tokens"
	    " WHERE current AND expires_at > now()");
	P25_STMT(plan, 0,
	    "SELECT set_config('enable_nestloop', 'off', true),"
	    " set_config('max_parallel_workers_per_gather', '0', true)");
	struct body_buf bb = { 0 };
	struct snap_body *b;
	PGresult *res;
	uint64_t t0 = api_mono_ns(), t1, c1;
	long ntok;
	int n;

	b = calloc(1, sizeof(*b));
	if (!b) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		return NULL;
	}
	b->refs = 1;
	b->seq = strtoll(seq, NULL, 10);
	res = p25_db_exec(db, &minexp, NULL, err);
	if (!res)
		goto fail;
	b->min_exp_us = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
		      ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : LLONG_MAX;
	PQclear(res);
	if (p25_db_run(db, &plan, NULL, err) < 0)
		goto fail;
	t1 = api_mono_ns();
	c1 = thread_cpu_ns();
	if (body_reserve(&bb, strlen(seq) + 32 + 4 * snap_cache.last_len, err) != 0)
		goto fail;
	n = snprintf(bb.p, bb.cap, "{\"seq\":%s,\"tokens\":[", seq);
	bb.len = (size_t)n;
	bb.dup = malloc(bb.cap);	/* address space only, as bb.p; NULL: copied later */
	huge_advise(bb.dup, bb.cap);
	if (bb.dup)
		memcpy(bb.dup, bb.p, bb.len);
	ntok = p25_db_each_text(db, &toks, NULL, body_row, &bb, err);
	if (ntok < 0 || body_reserve(&bb, 3, err) != 0)
		goto fail;
	bb.p[bb.len++] = ']';
	bb.p[bb.len++] = '}';
	bb.p[bb.len] = '\0';
	if (bb.dup) {
		char *fit;

		memcpy(bb.dup + bb.len - 2, "]}", 3);
		/* shrinking an mmap'd block: mremap in place, no copy */
		fit = realloc(bb.dup, bb.len + 1);
		*reply = fit ? fit : bb.dup;
		bb.dup = NULL;
	}
	body_trim(&bb);
	b->text = bb.p;
	b->len = bb.len;
	b->map_len = bb.cap;
	snap_cache.last_len = bb.len;
	p25_debug("snapshot.built", "seq %s, %ld tokens, %zu bytes: earliest expiry %.1f ms,"
		  " rows and body %.1f ms (this thread's CPU %.1f ms)", seq, ntok, bb.len,
		  (double)(t1 - t0) / 1e6, (double)(api_mono_ns() - t1) / 1e6,
		  (double)(thread_cpu_ns() - c1) / 1e6);
	return b;
fail:
	body_unmap(bb.p, bb.cap);
	free(bb.dup);
	free(b);
	return NULL;
}

void
enf_snapshot(struct api_req *r, struct p25_db *db)
{
	P25_STMT(pos, 0,
	    "SELECT coalesce(max(seq), 0), (extract(epoch FROM now()) * 1000000)::bigint"
	    " FROM feed_events");
	struct p25_err err = { 0 };
	char etag[40], seq[24];
	struct snap_body *b = NULL;
	PGresult *res = NULL;
	char *mine = NULL;	/* the builder's reply, written with the body */
	const char *inm, *how = "cached";
	long long nseq, now_us;
	uint64_t t0 = api_mono_ns();

	if (p25_db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &err) != 0)
		goto fail;
	db->in_tx = true;
	if (p25_db_set_actor(db, NULL, "system", &err) != 0)
		goto fail;
	res = p25_db_exec(db, &pos, NULL, &err);
	if (!res)
		goto fail;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)) {
		p25_err_set(&err, 500, "internal", "no feed position");
		goto fail;
	}
	nseq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	now_us = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	res = NULL;
	snprintf(seq, sizeof(seq), "%lld", nseq);
	snprintf(etag, sizeof(etag), "\"s%s\"", seq);
	inm = api_get_header(r, "If-None-Match");
	if (inm && strcmp(inm, etag) == 0) {
		/* the position says it all: the tokens are not read */
		p25_db_rollback(db);
		api_reply(r, 304, NULL, "", 0);
		goto headers;
	}
	pthread_mutex_lock(&snap_cache.mu);
	while (!(b = snap_find_locked(nseq, now_us)) && snap_cache.building) {
		how = "waited";
		pthread_cond_wait(&snap_cache.built, &snap_cache.mu);
	}
	if (!b)
		snap_cache.building = true;
	pthread_mutex_unlock(&snap_cache.mu);
	if (!b) {
		/* ours to build, in this transaction: exactly the rows at nseq */
		how = "built";
		b = snap_build(db, seq, &mine, &err);
		pthread_mutex_lock(&snap_cache.mu);
		snap_cache.building = false;
		if (b && (!snap_cache.cur || snap_cache.cur->seq <= b->seq)) {
			snap_unref_locked(snap_cache.cur);
			snap_cache.cur = b;
			b->refs++;	/* the cache's, besides ours */
		}
		pthread_cond_broadcast(&snap_cache.built);
		pthread_mutex_unlock(&snap_cache.mu);
		if (!b)
			goto fail;
	}
	p25_db_rollback(db);
	if (mine) {
		free(r->resp);
		r->resp = mine;		/* http.c frees it */
		r->resp_len = b->len;
		r->status = 200;
		r->ctype = "application/json";
	} else if (reply_body(r, b->text, b->len) != 0) {
		snap_release(b);
		return;
	}
	p25_debug("snapshot.served", "seq %lld, %zu bytes, %s in %.1f ms", nseq, b->len, how,
		  (double)(api_mono_ns() - t0) / 1e6);
	snap_release(b);
headers:
	api_header(r, "ETag", etag);
	api_header(r, "Cache-Control", "no-cache");
	return;
fail:
	PQclear(res);
	p25_db_rollback(db);
	api_reply_err(r, &err);
}

/*
 * The last feed answer, shared by the requests that ask the same question.
 * A revocation wakes every held long-poll at once (feed.c), and they all
 * ask for the events after the same position: the first to reach the
 * database answers for all the others instead of thousands of identical
 * queries queueing for the pool.  An answer is reused only for the same
 * after and limit, while the feed position this process knows (feed_latest,
 * from NOTIFY) has not moved, and for at most FEED_CACHE_NS, and only when
 * it holds events (fcache_put says why).  Events
 * are never changed once they have a position, so an answer is a correct
 * page of the feed for as long as it is kept.
 */
#define FEED_CACHE_NS 1000000000ull
static struct {
	pthread_mutex_t mu;
	long long after, latest;
	int limit;
	uint64_t at_ns;
	char *text;		/* NULL: none */
} fcache = { .mu = PTHREAD_MUTEX_INITIALIZER };

static char *
fcache_get(long long after, int limit, long long latest)
{
	char *s = NULL;

	pthread_mutex_lock(&fcache.mu);
	if (fcache.text && latest >= 0 && fcache.after == after && fcache.limit == limit &&
	    fcache.latest == latest && api_mono_ns() - fcache.at_ns < FEED_CACHE_NS)
		s = strdup(fcache.text);
	pthread_mutex_unlock(&fcache.mu);
	return s;
}

static void
fcache_put(long long after, int limit, long long latest, uint64_t at_ns, const char *text)
{
	char *s;

	if (latest < 0 || feed_latest() != latest)
		return;		/* the feed moved during the query: keep nothing */
	/*
	 * An empty page is never kept: an event can be committed before this
	 * process's NOTIFY arrives (latest unchanged), and a caller who saw the
	 * commit must find it at once.  "[]" is in every empty page (and may be
	 * in a reason: then a full page goes uncached, which costs only a query).
	 */
	if (strstr(text, "[]"))
		return;
	s = strdup(text);
	if (!s)
		return;
	pthread_mutex_lock(&fcache.mu);
	free(fcache.text);
	fcache.text = s;
	fcache.after = after;
	fcache.limit = limit;
	fcache.latest = latest;
	fcache.at_ns = at_ns;
	pthread_mutex_unlock(&fcache.mu);
}

/* Held polls are answered on feed.c's listener with the same query. */
void
enf_feed(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2, FEED_PAGE_SQL);
	struct p25_err err = { 0 };
	char after[24], limit[16];
	const char *p[2] = { after, limit };
	long long latest;
	uint64_t t0;
	char *s;

	if (r->lp_limit == 0 && feed_parse(r) != 0)
		return;
	latest = feed_latest();
	s = fcache_get(r->lp_after, r->lp_limit, latest);
	if (s) {
		api_reply_json_text(r, 200, s);
		api_header(r, "Cache-Control", "no-store");
		free(s);
		return;
	}
	t0 = api_mono_ns();
	snprintf(after, sizeof(after), "%lld", r->lp_after);
	snprintf(limit, sizeof(limit), "%d", r->lp_limit);
	if (api_begin(r, db, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	s = p25_db_text(db, &st, p, NULL, &err);
	p25_db_rollback(db);
	if (!s) {
		api_reply_err(r, &err);
		return;
	}
	fcache_put(r->lp_after, r->lp_limit, latest, t0, s);
	api_reply_json_text(r, 200, s);
	api_header(r, "Cache-Control", "no-store");
	free(s);
}

/* Node names: what the enforcement_nodes check allows. */
static bool
p25_node_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || (i > 0 && strchr("._:-", s[i]))))
			return false;
	return i > 0;
}

void
enf_ack(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "INSERT INTO enforcement_nodes AS n (node, acked_seq) VALUES ($1, $2::bigint)"
	    " ON CONFLICT (node) DO UPDATE SET acked_seq = greatest(n.acked_seq, $2::bigint),"
	    " acked_at = now() RETURNING acked_seq");
	P25_STMT(max, 0, "SELECT coalesce(max(seq), 0) FROM feed_events");
	static const char *const fields[] = { "node", "seq", NULL };
	struct p25_err err = { 0 };
	json_t *b, *seqv, *o;
	const char *node;
	char seq[24], *acked = NULL, *top = NULL;

	b = api_body_json(r, &err);
	if (!b)
		goto reply;
	input_known_fields(b, fields, &err);
	node = json_string_value(json_object_get(b, "node"));
	seqv = json_object_get(b, "seq");
	if (!node || strlen(node) == 0 || strlen(node) > 128 || !p25_node_ok(node))
		p25_err_add(&err, "node", "invalid_value",
			    "node must be 1 to 128 characters of letters, digits and . _ : -");
	if (!json_is_integer(seqv) || json_integer_value(seqv) < 0)
		p25_err_add(&err, "seq", "invalid_value", "seq must be a feed position (>= 0)");
	if (err.errors && json_array_size(err.errors)) {
		input_validation_failed(&err);
		goto reply;
	}
	snprintf(seq, sizeof(seq), "%lld", (long long)json_integer_value(seqv));
	if (api_begin(r, db, &err) != 0)
		goto reply;
	top = p25_db_text(db, &max, NULL, NULL, &err);
	if (!top)
		goto fail;
	if (strtoll(top, NULL, 10) < json_integer_value(seqv)) {
		p25_err_field(&err, 422, "seq_ahead", "seq",
			      "seq %s is beyond the feed's position %s", seq, top);
		goto fail;
	}
	{
		const char *p[2] = { node, seq };
		acked = p25_db_text(db, &st, p, NULL, &err);
	}
	if (!acked || p25_db_commit(db, &err) != 0)
		goto fail;
	o = json_pack("{s:s, s:I}", "node", node, "acked_seq",
		      (json_int_t)strtoll(acked, NULL, 10));
	api_reply_json(r, 200, o);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	free(acked);
	free(top);
	json_decref(b);
}
