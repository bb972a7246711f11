/*
 * feed.c — one LISTEN connection per API process, fanned out to every held
 * long-poll of GET /v1/enforcement/feed.
 *
 * A long-poll with nothing to return yet is suspended in the access handler
 * and put on the waiter list (feed_hold): it holds no thread and no
 * database connection while it waits.  The listener thread owns one
 * connection that LISTENs on p25_feed (NOTIFY'd with the new position when a
 * transaction that wrote feed events commits — see migrations/0001) and
 * keeps `latest`, the highest position this process knows.  When latest
 * passes a waiter's `after`, or the waiter's deadline passes, the thread
 * takes it off the list and resumes it; the handler then runs once on the
 * pool to read the events.  So a revocation answers every held poll in one
 * wake-up, and idle polls cost a list entry each.
 *
 * Locking: `mu` guards the list and is taken by the MHD threads (hold) and
 * the listener; latest is atomic.  Registering re-checks latest under mu,
 * so no wake-up falls between the check and the registration.  Shutdown
 * (feed_stop) resumes every waiter: libmicrohttpd must not be stopped with
 * suspended connections.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <microhttpd.h>

#include "api.h"
#include "p25/log.h"

static struct {
	pthread_t thread;
	bool started;
	atomic_bool stopping;
	atomic_llong latest;
	atomic_long held;
	pthread_mutex_t mu;
	struct api_req *head;
	int efd;		/* wakes the listener: new waiter, stop */
} feed = { .latest = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

long long
feed_latest(void)
{
	return atomic_load(&feed.latest);
}

long
feed_held(void)
{
	return atomic_load(&feed.held);
}

int
feed_parse(struct api_req *r)
{
	const char *after = api_get_query(r, "after");
	const char *wait = api_get_query(r, "wait");
	const char *limit = api_get_query(r, "limit");
	char *end;
	long long v;

	r->lp_after = 0;
	r->lp_wait = 0;
	r->lp_limit = 500;
	if (after) {
		errno = 0;
		v = strtoll(after, &end, 10);
		if (errno || *end || end == after || v < 0) {
			api_reply_problem(r, 400, "invalid_parameter",
					  "after must be a feed position (a whole number >= 0)");
			return -1;
		}
		r->lp_after = v;
	}
	if (wait) {
		v = strtoll(wait, &end, 10);
		if (*end || end == wait || v < 0 || v > 120) {
			api_reply_problem(r, 400, "invalid_parameter",
					  "wait must be 0 to 120 seconds");
			return -1;
		}
		r->lp_wait = (int)v;
	}
	if (limit) {
		v = strtoll(limit, &end, 10);
		if (*end || end == limit || v < 1 || v > 5000) {
			api_reply_problem(r, 400, "invalid_parameter", "limit must be 1 to 5000");
			return -1;
		}
		r->lp_limit = (int)v;
	}
	return 0;
}

static void
poke(void)
{
	uint64_t one = 1;

	if (feed.efd >= 0 && write(feed.efd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the listener is awake anyway */
	}
}

static void
unlink_waiter(struct api_req *r)
{
	if (r->lp_prev)
		r->lp_prev->lp_next = r->lp_next;
	else
		feed.head = r->lp_next;
	if (r->lp_next)
		r->lp_next->lp_prev = r->lp_prev;
	r->lp_next = r->lp_prev = NULL;
	atomic_fetch_sub(&feed.held, 1);
}

int
feed_hold(struct api_req *r)
{
	pthread_mutex_lock(&feed.mu);
	if (atomic_load(&feed.stopping) || atomic_load(&feed.latest) > r->lp_after) {
		pthread_mutex_unlock(&feed.mu);
		return 1;
	}
	r->lp_deadline_ns = api_mono_ns() + (uint64_t)r->lp_wait * 1000000000u;
	r->lp_prev = NULL;
	r->lp_next = feed.head;
	if (feed.head)
		feed.head->lp_prev = r;
	feed.head = r;
	atomic_fetch_add(&feed.held, 1);
	pthread_mutex_unlock(&feed.mu);
	poke();		/* the listener may need an earlier timeout */
	return 0;
}

/* Resumes the waiters that can be answered; returns ms to the next deadline. */
static int
wake(bool all)
{
	uint64_t now = api_mono_ns(), next = now + 1000000000u;
	long long latest = atomic_load(&feed.latest);
	struct api_req *r, *nx;

	pthread_mutex_lock(&feed.mu);
	for (r = feed.head; r; r = nx) {
		nx = r->lp_next;
		if (all || latest > r->lp_after || now >= r->lp_deadline_ns) {
			unlink_waiter(r);
			atomic_store(&r->stage, STAGE_WOKEN);
			MHD_resume_connection(r->conn);
		} else if (r->lp_deadline_ns < next) {
			next = r->lp_deadline_ns;
		}
	}
	pthread_mutex_unlock(&feed.mu);
	return (int)((next - now) / 1000000u) + 1;
}

/*
 * Answering on the listener.  When the position moves, every held poll
 * with an older `after` can be answered, and nearly all of them ask the
 * same question (the same after and limit: nodes that are in step).  The
 * listener reads each distinct page once, on its own connection, and
 * hands the text to every waiter that asked for it, which then answers
 * straight from its MHD thread (STAGE_READY) — no pool connection per
 * waiter: 2,000 polls woken at once would otherwise queue 2,000 identical
 * queries, beyond the pool's queue (503 overloaded).  Waiters whose page
 * is not read here (more than FEED_PAGES distinct questions, a failed
 * query, a deadline) go through the pool as before (STAGE_WOKEN).
 * The query is FEED_PAGE_SQL (api.h), the one of enf_feed() too.
 */
#define FEED_PAGES 4
struct page {
	long long after;
	int limit;
	char *text;
};

static char *
read_page(PGconn *c, long long after, int limit)
{
	char a[24], l[16];
	const char *p[2] = { a, l };
	PGresult *res;
	char *s = NULL;

	snprintf(a, sizeof(a), "%lld", after);
	snprintf(l, sizeof(l), "%d", limit);
	res = PQexecParams(c, FEED_PAGE_SQL, 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    !PQgetisnull(res, 0, 0))
		s = strdup(PQgetvalue(res, 0, 0));
	else
		p25_warn("feed.listen", "cannot read the feed for held polls: %s",
			 PQerrorMessage(c));
	PQclear(res);
	return s;
}

/* Reads the pages the waiters need now and answers those waiters. */
static void
answer_waiters(PGconn *c)
{
	long long latest = atomic_load(&feed.latest);
	struct page pg[FEED_PAGES];
	struct api_req *r, *nx;
	int np = 0, i;

	pthread_mutex_lock(&feed.mu);
	for (r = feed.head; r && np < FEED_PAGES; r = r->lp_next) {
		if (latest <= r->lp_after)
			continue;
		for (i = 0; i < np; i++)
			if (pg[i].after == r->lp_after && pg[i].limit == r->lp_limit)
				break;
		if (i == np)
			pg[np++] = (struct page){ r->lp_after, r->lp_limit, NULL };
	}
	pthread_mutex_unlock(&feed.mu);
	if (np == 0)
		return;
	for (i = 0; i < np; i++)
		pg[i].text = read_page(c, pg[i].after, pg[i].limit);
	pthread_mutex_lock(&feed.mu);
	for (r = feed.head; r; r = nx) {
		nx = r->lp_next;
		for (i = 0; i < np; i++)
			if (pg[i].text && pg[i].after == r->lp_after && pg[i].limit == r->lp_limit)
				break;
		if (i == np)
			continue;
		unlink_waiter(r);
		api_reply_json_text(r, 200, pg[i].text);
		api_header(r, "Cache-Control", "no-store");
		atomic_store(&r->stage, STAGE_READY);
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&feed.mu);
	for (i = 0; i < np; i++)
		free(pg[i].text);
}

/* Takes the notifications libpq holds; false when the connection is lost. */
static bool
drain(PGconn *c)
{
	PGnotify *nt;

	if (!PQconsumeInput(c)) {
		p25_warn("feed.listen", "lost the LISTEN connection: %s", PQerrorMessage(c));
		return false;
	}
	while ((nt = PQnotifies(c))) {
		long long s = strtoll(nt->extra, NULL, 10);
		long long cur = atomic_load(&feed.latest);
		while (s > cur && !atomic_compare_exchange_weak(&feed.latest, &cur, s))
			;
		PQfreemem(nt);
	}
	return true;
}

static PGconn *
listen_connect(void)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout", NULL };
	const char *vals[] = { api.cfg.database_url, "p25-api-feed", "5", NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *res;

	if (PQstatus(c) != CONNECTION_OK)
		goto fail;
	res = PQexec(c, "SELECT set_config('p25.role', 'system', false)");
	PQclear(res);
	res = PQexec(c, "LISTEN p25_feed");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	/* the position now: notifications before LISTEN were not seen */
	res = PQexec(c, "SELECT coalesce(max(seq), 0) FROM feed_events");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		goto fail;
	}
	atomic_store(&feed.latest, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
	PQclear(res);
	return c;
fail:
	p25_warn("feed.listen", "cannot listen for feed events: %s",
		 c ? PQerrorMessage(c) : "out of memory");
	PQfinish(c);
	return NULL;
}

static void *
listener(void *arg)
{
	PGconn *c = NULL;
	int backoff = 100;

	while (!atomic_load(&feed.stopping)) {
		struct pollfd pfd[2];
		int timeout, n = 1;

		if (!c) {
			c = listen_connect();
			if (!c) {
				struct timespec ts = { backoff / 1000, (backoff % 1000) * 1000000L };
				nanosleep(&ts, NULL);
				backoff = backoff < 5000 ? backoff * 2 : 5000;
				wake(false);	/* deadlines still apply */
				continue;
			}
			backoff = 100;
		}
		timeout = wake(false);
		pfd[0].fd = feed.efd;
		pfd[0].events = POLLIN;
		pfd[1].fd = PQsocket(c);
		pfd[1].events = POLLIN;
		n = 2;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			continue;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			if (read(feed.efd, &v, sizeof(v)) < 0) {
				/* nothing pending */
			}
		}
		if (pfd[1].revents) {
			if (!drain(c)) {
				PQfinish(c);
				c = NULL;
				continue;
			}
			answer_waiters(c);
			/* notifications that came during the reads wait in libpq */
			if (!drain(c)) {
				PQfinish(c);
				c = NULL;
				continue;
			}
		}
	}
	PQfinish(c);
	return NULL;
}

int
feed_start(void)
{
	feed.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (feed.efd < 0)
		return -1;
	if (pthread_create(&feed.thread, NULL, listener, NULL) != 0)
		return -1;
	feed.started = true;
	return 0;
}

void
feed_stop(void)
{
	if (!feed.started)
		return;
	atomic_store(&feed.stopping, true);
	poke();
	pthread_join(feed.thread, NULL);
	feed.started = false;
	wake(true);
	close(feed.efd);
	feed.efd = -1;
}
