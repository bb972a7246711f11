/*
 * dns.h — asynchronous DNS on c-ares for the vetting checks.
 *
 * A struct p25_dns is one c-ares channel.  c-ares 1.18 channels are not
 * thread-safe, so each thread owns its own (p25_dns_thread() hands out a
 * thread-local one).  Queries are started with p25_dns_query(); their
 * callbacks may start more queries (PTR → A, SPF include → TXT); and
 * p25_dns_wait() drives the channel until nothing is outstanding.  Every
 * query has the configured per-try timeout and number of tries, so a
 * server that never answers ends as ARES_ETIMEOUT, not as a hang.
 *
 * At most max_inflight queries of a channel are on the wire at once
 * (P25_DNS_MAX_INFLIGHT; P25_DNS_MAX_INFLIGHT_DEFAULT for p25_dns_new());
 * the others wait in a FIFO and are sent by p25_dns_wait() as answers come
 * in, so a burst of any size does not overflow a resolver's socket buffer.
 * The timeout counts from the moment a query is sent, not from
 * p25_dns_query(): time in the queue is not time on the wire.  A query
 * unanswered for one timeout (c-ares retrying it) leaves the window, so a
 * server that never answers does not hold it for every query's tries.
 */
#ifndef P25_DNS_H
#define P25_DNS_H

#include <stdbool.h>
#include <stddef.h>

struct p25_err;
struct p25_config;

struct p25_dns;

/* The window of a channel made by p25_dns_new() (p25_dns_thread() takes
 * P25_DNS_MAX_INFLIGHT instead). */
#define P25_DNS_MAX_INFLIGHT_DEFAULT 64

struct p25_dns_stats {
	unsigned long queries;	/* sent (handed to c-ares) since the channel was made */
	int inflight;		/* in the window now: sent less than a timeout ago, unanswered */
	int retrying;		/* sent longer ago, unanswered (c-ares retries or ends them) */
	size_t queued;		/* waiting for room in the window now */
	int peak_inflight;	/* the most in the window at once */
	size_t peak_queued;	/* the most waiting at once */
};

/*
 * Called once per query.  status is an ARES_* code (ARES_SUCCESS,
 * ARES_ENOTFOUND for NXDOMAIN, ARES_ENODATA, ARES_ETIMEOUT, ARES_ESERVFAIL
 * …); abuf/alen the raw answer on success.
 */
typedef void (*p25_dns_cb)(void *arg, int status, const unsigned char *abuf, int alen);

struct p25_dns *p25_dns_new(const char *servers, int timeout_ms, int tries,
			    struct p25_err *err);
void p25_dns_free(struct p25_dns *d);
/* The calling thread's resolver built from cfg (created on first use;
 * freed at thread exit).  NULL with err on failure. */
struct p25_dns *p25_dns_thread(const struct p25_config *cfg, struct p25_err *err);

/* Queries on the wire at once on d (n < 1 counts as 1); takes effect as
 * the window next has room. */
void p25_dns_set_max_inflight(struct p25_dns *d, int n);
/* d's counters, copied into *st (for tests and benchmarks). */
void p25_dns_stats(const struct p25_dns *d, struct p25_dns_stats *st);

/* Starts a query (type: ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_ptr …): sent at
 * once if the window has room, else queued (name is copied).  cb runs from
 * p25_dns_wait() (or at once for a query that cannot start). */
void p25_dns_query(struct p25_dns *d, const char *name, int type, p25_dns_cb cb,
		   void *arg);
/* Runs the channel until no query is outstanding. */
void p25_dns_wait(struct p25_dns *d);
/* Queries sent through d since it was made (for metrics and benchmarks). */
unsigned long p25_dns_queries(const struct p25_dns *d);
/* Short name of an ARES status for evidence ("timeout", "servfail" …). */
const char *p25_dns_status_name(int status);
/* True when the status means "no such record" (NXDOMAIN, NODATA). */
bool p25_dns_status_absent(int status);

#endif
