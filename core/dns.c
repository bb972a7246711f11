/*
 * dns.c — c-ares wrapper (see dns.h).  The event loop is ares_getsock() +
 * poll() + ares_process_fd(), with ares_timeout() bounding each wait.
 * Searching and /etc/hosts are off (ARES_FLAG_NOSEARCH, lookups "b"): a
 * query asks the configured servers for exactly the name given.
 */
#include <arpa/nameser.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <ares.h>

#include "p25/config.h"
#include "p25/dns.h"
#include "p25/err.h"

struct p25_dns {
	ares_channel ch;
	unsigned long queries;
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
	memset(&o, 0, sizeof(o));
	/* NOCHECKRESP: a SERVFAIL or REFUSED answer is reported as such (an
	 * "unknown" for the checks), not retried into ECONNREFUSED */
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP;
	o.timeout = timeout_ms;
	o.tries = tries;
	o.lookups = (char *)(uintptr_t)"b";
	rc = ares_init_options(&d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
			       ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
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
	if (!d)
		return;
	ares_destroy(d->ch);
	free(d);
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
	if (d)
		pthread_setspecific(thread_key, d);
	return d;
}

struct qctx {
	p25_dns_cb cb;
	void *arg;
};

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct qctx q = *(struct qctx *)arg;

	free(arg);
	q.cb(q.arg, status, abuf, alen);
}

void
p25_dns_query(struct p25_dns *d, const char *name, int type, p25_dns_cb cb, void *arg)
{
	struct qctx *q = malloc(sizeof(*q));

	if (!q) {
		cb(arg, ARES_ENOMEM, NULL, 0);
		return;
	}
	q->cb = cb;
	q->arg = arg;
	d->queries++;
	ares_query(d->ch, name, ns_c_in, type, on_answer, q);
}

void
p25_dns_wait(struct p25_dns *d)
{
	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		int bits, i, n = 0, ms, rc;

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
		if (n == 0 && !tvp)
			return;		/* nothing outstanding */
		ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1 : 1000;
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
