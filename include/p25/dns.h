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
 */
#ifndef P25_DNS_H
#define P25_DNS_H

#include <stdbool.h>

struct p25_err;
struct p25_config;

struct p25_dns;

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

/* Starts a query (type: ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_ptr …). */
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
