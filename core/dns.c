/*
 * dns.c — c-ares wrapper (see dns.h).  The event loop is ares_getsock() +
 * poll() + ares_process_fd(), with ares_timeout() bounding each wait.
 * Searching and /etc/hosts are off (ARES_FLAG_NOSEARCH, lookups "b"): a
 * query asks the configured servers for exactly the name given.
 *
 * Queries in flight are capped per channel (max_inflight, the window): the
 * rest wait in a FIFO here, not in c-ares, and are handed to c-ares as
 * answers come in.  A burst of thousands sent at once on one UDP socket
 * overflows the receive buffers of a loopback DNSBL (rbldnsd, dnsmasq, and
 * our own socket for the answers) and the lost queries end as timeouts;
 * with the window every query of a burst of any size is answered.  c-ares
 * starts a query's timer when it sends it, so the configured timeout stays
 * "time on the wire": time in the queue is not counted.
 *
 * The window counts "young" queries: sent less than one (first-try)
 * timeout ago and unanswered.  An older one has no datagram left in any
 * buffer to protect (answered late, lost, or at a server that does not
 * answer) and c-ares retries or ends it on its own timers; it stays
 * outstanding but leaves the window.  So a dead server costs about
 * queries / window × timeout for the burst, plus one query's tries, rather
 * than every query's full tries × timeout one window after another.
 *
 * The queue is refilled from p25_dns_wait()'s loop only (never from inside
 * a c-ares callback), so a query that fails at once (bad name, no server)
 * cannot recurse through the queue.  Like the channel, a struct p25_dns
 * belongs to one thread.
 */
#include <arpa/nameser.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ares.h>

#include "p25/config.h"
#include "p25/dns.h"
#include "p25/err.h"

/* A query waiting for room in the window; name is copied. */
struct pending {
	struct pending *next;
	p25_dns_cb cb;
	void *arg;
	int type;
	char name[];
};

/* A query handed to c-ares, until its callback. */
struct qctx {
	struct qctx *prev, *next;	/* d->young, oldest first (while !aged) */
	struct p25_dns *d;
	p25_dns_cb cb;
	void *arg;
	long long sent_ms;
	bool aged;
};

struct p25_dns {
	ares_channel ch;
	unsigned long queries;		/* handed to c-ares */
	int timeout_ms;			/* c-ares's first-try timeout */
	int max_inflight;		/* the window: young queries at most */
	int young;			/* sent less than timeout_ms ago, unanswered */
	int aged;			/* sent longer ago, unanswered (retrying) */
	int peak_young;
	size_t queued, peak_queued;
	struct qctx *young_head, *young_tail;
	struct pending *head, *tail;	/* FIFO of queries waiting for the window */
	bool closing;			/* p25_dns_free() runs: no new queries */
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;

static void
thread_free(void *p)
{
	p25_dns_free(p);
}

static void
lib_init(void)
{
	ares_library_init(ARES_LIB_INIT_ALL);
	pthread_key_create(&thread_key, thread_free);
}

struct p25_dns *
p25_dns_new(const char *servers, int timeout_ms, int tries, struct p25_err *err)
{
	struct ares_options o;
	struct p25_dns *d;
	int rc;

	pthread_once(&lib_once, lib_init);
	d = calloc(1, sizeof(*d));
	if (!d) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		return NULL;
	}
	d->max_inflight = P25_DNS_MAX_INFLIGHT_DEFAULT;
	d->timeout_ms = timeout_ms;
	memset(&o, 0, sizeof(o));
	/* NOCHECKRESP: a SERVFAIL or REFUSED answer is reported as such (an
	 * "unknown" for the checks), not retried into ECONNREFUSED */
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP;
	o.timeout = timeout_ms;
	o.tries = tries;
	o.lookups = (char *)(uintptr_t)"b";
	/* room for a full window of answers (TXT ones are long); the kernel
	 * caps it at net.core.rmem_max */
	o.socket_receive_buffer_size = 1 << 20;
	rc = ares_init_options(&d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
			       ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_RCVBUF);
	if (rc != ARES_SUCCESS) {
		free(d);
		p25_err_set(err, 503, "dns_unavailable", "cannot start the resolver: %s",
			    ares_strerror(rc));
		return NULL;
	}
	rc = ares_set_servers_ports_csv(d->ch, servers);
	if (rc != ARES_SUCCESS) {
		ares_destroy(d->ch);
		free(d);
		p25_err_set(err, 500, "bad_config", "P25_DNS_SERVERS: %s", ares_strerror(rc));
		return NULL;
	}
	return d;
}

void
p25_dns_free(struct p25_dns *d)
{
	struct pending *p;

	if (!d)
		return;
	/* as c-ares does for the queries it holds: every queued one is called
	 * back with ARES_EDESTRUCTION; queries started from those callbacks
	 * are refused the same way */
	d->closing = true;
	ares_destroy(d->ch);
	while ((p = d->head)) {
		d->head = p->next;
		p->cb(p->arg, ARES_EDESTRUCTION, NULL, 0);
		free(p);
	}
	free(d);
}

void
p25_dns_set_max_inflight(struct p25_dns *d, int n)
{
	d->max_inflight = n < 1 ? 1 : n;
}

void
p25_dns_stats(const struct p25_dns *d, struct p25_dns_stats *st)
{
	st->queries = d->queries;
	st->inflight = d->young;
	st->retrying = d->aged;
	st->queued = d->queued;
	st->peak_inflight = d->peak_young;
	st->peak_queued = d->peak_queued;
}

struct p25_dns *
p25_dns_thread(const struct p25_config *cfg, struct p25_err *err)
{
	struct p25_dns *d;

	pthread_once(&lib_once, lib_init);
	d = pthread_getspecific(thread_key);
	if (d)
		return d;
	d = p25_dns_new(cfg->dns_servers, (int)cfg->dns_timeout_ms, (int)cfg->dns_tries, err);
	if (d) {
		p25_dns_set_max_inflight(d, (int)cfg->dns_max_inflight);
		pthread_setspecific(thread_key, d);
	}
	return d;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
young_unlink(struct p25_dns *d, struct qctx *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		d->young_head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		d->young_tail = q->prev;
	q->prev = q->next = NULL;
	d->young--;
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct qctx *q = arg;
	p25_dns_cb cb = q->cb;
	void *cb_arg = q->arg;

	(void)timeouts;
	if (q->aged)
		q->d->aged--;
	else
		young_unlink(q->d, q);
	free(q);
	cb(cb_arg, status, abuf, alen);
}

/* Hands one query to c-ares (which may call back before returning). */
static void
send_query(struct p25_dns *d, const char *name, int type, p25_dns_cb cb, void *arg)
{
	struct qctx *q = calloc(1, sizeof(*q));

	if (!q) {
		cb(arg, ARES_ENOMEM, NULL, 0);
		return;
	}
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->sent_ms = now_ms();
	q->prev = d->young_tail;
	if (d->young_tail)
		d->young_tail->next = q;
	else
		d->young_head = q;
	d->young_tail = q;
	if (++d->young > d->peak_young)
		d->peak_young = d->young;
	d->queries++;
	ares_query(d->ch, name, ns_c_in, type, on_answer, q);
}

/*
 * Queries sent a first-try timeout ago or longer leave the window: their
 * datagram is no longer in any buffer (answered late, lost, or at a server
 * that does not answer) and c-ares retries or ends them on its own timers.
 * Without this a server that never answers would hold the window for every
 * query's whole tries × timeout, one window after another.  Returns the ms
 * until the oldest young query ages (-1: none).
 */
static long long
age(struct p25_dns *d, long long now)
{
	struct qctx *q;

	while ((q = d->young_head) && now - q->sent_ms >= d->timeout_ms) {
		young_unlink(d, q);
		q->aged = true;
		d->aged++;
	}
	return q ? q->sent_ms + d->timeout_ms - now : -1;
}

/* Sends queued queries while the window has room; the ms until the window
 * next opens by itself (-1: never, or nothing queued). */
static long long
pump(struct p25_dns *d)
{
	struct pending *p;

	age(d, now_ms());
	while (d->head && d->young < d->max_inflight && !d->closing) {
		p = d->head;
		d->head = p->next;
		if (!d->head)
			d->tail = NULL;
		d->queued--;
		send_query(d, p->name, p->type, p->cb, p->arg);
		free(p);
	}
	return d->head ? age(d, now_ms()) : -1;
}

void
p25_dns_query(struct p25_dns *d, const char *name, int type, p25_dns_cb cb, void *arg)
{
	struct pending *p;
	size_t len;

	if (d->closing) {
		cb(arg, ARES_EDESTRUCTION, NULL, 0);
		return;
	}
	/* room, and nothing waiting ahead of it: straight out */
	if (!d->head && d->young < d->max_inflight) {
		send_query(d, name, type, cb, arg);
		return;
	}
	len = strlen(name) + 1;
	p = malloc(sizeof(*p) + len);
	if (!p) {
		cb(arg, ARES_ENOMEM, NULL, 0);
		return;
	}
	p->next = NULL;
	p->cb = cb;
	p->arg = arg;
	p->type = type;
	memcpy(p->name, name, len);
	if (d->tail)
		d->tail->next = p;
	else
		d->head = p;
	d->tail = p;
	if (++d->queued > d->peak_queued)
		d->peak_queued = d->queued;
}

void
p25_dns_wait(struct p25_dns *d)
{
	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		int bits, i, n = 0, ms, rc;
		long long opens;

		/* refill the window with what answers and ageing freed */
		opens = pump(d);
		bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;
			/* the ARES_GETSOCK_* macros shift a signed 1 by up to 31 */
			if ((unsigned)bits & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (!ev)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		tvp = ares_timeout(d->ch, NULL, &tv);
		if (n == 0 && !tvp && !d->head)
			return;		/* nothing outstanding, nothing queued */
		ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1 : 1000;
		if (opens >= 0 && opens < ms)
			ms = (int)opens + 1;
		rc = poll(pfd, (nfds_t)n, ms);
		if (rc <= 0) {
			ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			ares_process_fd(d->ch,
			    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD,
			    pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
}

unsigned long
p25_dns_queries(const struct p25_dns *d)
{
	return d->queries;
}

const char *
p25_dns_status_name(int status)
{
	switch (status) {
	case ARES_SUCCESS: return "ok";
	case ARES_ENOTFOUND: return "nxdomain";
	case ARES_ENODATA: return "nodata";
	case ARES_ETIMEOUT: return "timeout";
	case ARES_ESERVFAIL: return "servfail";
	case ARES_EREFUSED: return "refused";
	case ARES_ECONNREFUSED: return "connection_refused";
	case ARES_EBADRESP: return "bad_response";
	case ARES_EFORMERR: return "formerr";
	case ARES_ENOMEM: return "out_of_memory";
	case ARES_EDESTRUCTION: return "cancelled";
	default: return "error";
	}
}

bool
p25_dns_status_absent(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}
