/*
 * vetting.c — the checks (see vetting.h).
 *
 * DNS checks run in two phases on one resolver, for a batch of requests
 * at once (p25_vet_dns() is the batch of one):
 *   1. every DNSBL query (each host of each prefix in each zone of each
 *      request, plus the RFC 5782 test entries of each zone, once per
 *      batch), every PTR query, every DMARC query and every sender domain's
 *      SPF record (TXT) is started at once; PTR answers start their forward
 *      (A/AAAA) queries and DNSBL listings their TXT query from the
 *      callbacks; one p25_dns_wait() drives them all;
 *   2. SPF is evaluated per request, sender domain and address, following
 *      include, redirect, a and mx with the RFC 7208 limit of 10 lookups:
 *      all evaluations of the batch together, restarted over a per-batch
 *      answer cache until none needs a query more (see "SPF" below).
 * Hosts: an IPv4 prefix is checked address by address (requests are at
 * most /24 by default); an IPv6 prefix at its first address, the
 * granularity DNSBLs list IPv6 at.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ares.h>
#include <jansson.h>

#include "p25/config.h"
#include "p25/db.h"
#include "p25/dns.h"
#include "p25/err.h"
#include "p25/ipaddr.h"
#include "p25/validate.h"
#include "p25/vetting.h"

#define MAX_HOSTS_V4 256
#define MAX_PTR_NAMES 5
#define MAX_ZONES 8

/* ------------------------------------------------------------- checks */

static const char *const outcome_names[] = { "pass", "warn", "fail", "error" };

const char *
p25_outcome_str(enum p25_outcome o)
{
	return outcome_names[o];
}

void
p25_checks_free(struct p25_checks *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		json_decref(c->v[i].evidence);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

struct p25_check *
p25_checks_add(struct p25_checks *c, const char *name, const char *subject,
	       enum p25_outcome o, const char *code, const char *hint)
{
	struct p25_check *k;

	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 16;
		struct p25_check *nv = realloc(c->v, (size_t)cap * sizeof(*nv));
		if (!nv)
			return NULL;
		c->v = nv;
		c->cap = cap;
	}
	k = &c->v[c->n++];
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	snprintf(k->subject, sizeof(k->subject), "%s", subject);
	k->outcome = o;
	snprintf(k->code, sizeof(k->code), "%s", code ? code : "");
	snprintf(k->hint, sizeof(k->hint), "%s", hint ? hint : "");
	k->evidence = json_object();
	k->prefix_idx = -1;
	return k;
}

json_t *
p25_checks_json(const struct p25_checks *c)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < c->n; i++) {
		const struct p25_check *k = &c->v[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s*, s:s, s:O}",
		    "name", k->name, "subject", k->subject,
		    "outcome", outcome_names[k->outcome],
		    "code", k->code[0] ? k->code : NULL, "hint", k->hint,
		    "evidence", k->evidence));
	}
	return a;
}

/* -------------------------------------------------------------- hosts */

struct host {
	struct p25_prefix addr;		/* /32 or /128 */
	char text[P25_PREFIX_STRLEN];	/* without the length */
	int prefix_idx;
	/* rDNS */
	int ptr_status;
	char ptr[MAX_PTR_NAMES][256];
	bool ptr_valid[MAX_PTR_NAMES];
	int nptr;
	bool confirmed;
	int fwd_errors;
};

static void
host_text(struct host *h)
{
	p25_prefix_format(&h->addr, h->text, sizeof(h->text));
	h->text[strcspn(h->text, "/")] = '\0';
}

/* Expands the prefixes into the hosts to check; returns the count. */
static int
hosts_expand(const struct p25_prefix *addrs, int n, struct host **out)
{
	int i, total = 0, k = 0;
	struct host *h;

	for (i = 0; i < n; i++)
		total += addrs[i].family == AF_INET && addrs[i].len >= 24
			 ? 1 << (32 - addrs[i].len) : 1;
	h = calloc((size_t)total, sizeof(*h));
	if (!h)
		return -1;
	for (i = 0; i < n; i++) {
		int count = addrs[i].family == AF_INET && addrs[i].len >= 24
			    ? 1 << (32 - addrs[i].len) : 1;
		int j;
		for (j = 0; j < count; j++) {
			struct host *x = &h[k++];
			x->addr = addrs[i];
			x->addr.len = addrs[i].family == AF_INET ? 32 : 128;
			if (addrs[i].family == AF_INET)
				x->addr.addr[3] = (unsigned char)(addrs[i].addr[3] + j);
			x->prefix_idx = i;
			host_text(x);
		}
	}
	*out = h;
	return total;
}

/* --------------------------------------------------------------- DNSBL */

struct bl_query {
	struct bl_state *st;
	struct host *host;	/* NULL for the zone's RFC 5782 test entries */
	int zone;
	bool test_listed_expected;
	int status;
	char codes[8][20];	/* "127.0.0.2" */
	int ncodes;
	char txt[512];
	struct p25_dns *dns;
	char qname[P25_QNAME_MAX];
};

struct bl_state {
	char zones[MAX_ZONES][256];
	int nzones;
	bool zone_broken[MAX_ZONES];
	char zone_why[MAX_ZONES][128];
};

static void
txt_join(const unsigned char *abuf, int alen, char *out, size_t outlen)
{
	struct ares_txt_ext *txt = NULL, *t;
	size_t used = 0;

	out[0] = '\0';
	if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS)
		return;
	for (t = txt; t; t = t->next) {
		size_t n = t->length;
		if (t->record_start && used > 0 && used < outlen - 1)
			out[used++] = ' ';
		if (n > outlen - 1 - used)
			n = outlen - 1 - used;
		memcpy(out + used, t->txt, n);
		used += n;
	}
	out[used] = '\0';
	/* keep it printable: DNS text is untrusted */
	for (size_t i = 0; i < used; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] == 0x7f)
			out[i] = '?';
	ares_free_data(txt);
}

static void
bl_txt_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct bl_query *q = arg;

	if (status == ARES_SUCCESS)
		txt_join(abuf, alen, q->txt, sizeof(q->txt));
}

static void
bl_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct bl_query *q = arg;
	struct ares_addrttl ttls[8];
	int n = 8, i;

	q->status = status;
	if (status != ARES_SUCCESS)
		return;
	if (ares_parse_a_reply(abuf, alen, NULL, ttls, &n) != ARES_SUCCESS) {
		q->status = ARES_EBADRESP;
		return;
	}
	for (i = 0; i < n && q->ncodes < 8; i++)
		inet_ntop(AF_INET, &ttls[i].ipaddr, q->codes[q->ncodes++], sizeof(q->codes[0]));
	if (q->host && q->ncodes > 0)
		p25_dns_query(q->dns, q->qname, ns_t_txt, bl_txt_answer, q);
}

/* Reason code for one return code of a ZEN-style list. */
static const char *
bl_code(const char *a, const char **list)
{
	unsigned b1, b2, b3, b4;

	*list = "unknown";
	if (sscanf(a, "%u.%u.%u.%u", &b1, &b2, &b3, &b4) != 4 || b1 != 127)
		return "dnsbl_error";
	if (b2 == 255 && b3 == 255) {
		*list = "error answer";
		return "dnsbl_error";
	}
	if (b2 != 0 || b3 != 0)
		return "dnsbl_other";
	switch (b4) {
	case 2: *list = "SBL"; return "dnsbl_sbl";
	case 3: *list = "CSS"; return "dnsbl_css";
	case 4: case 5: case 6: case 7: *list = "XBL"; return "dnsbl_xbl";
	case 9: *list = "DROP"; return "dnsbl_drop";
	case 10: case 11: *list = "PBL"; return "dnsbl_pbl";
	default: return "dnsbl_other";
	}
}

static const char *
bl_hint(const char *code, const char *zone)
{
	if (strcmp(code, "dnsbl_pbl") == 0)
		return "the address is in end-user space (PBL); ask your provider to mark it as a "
		       "mail server or use a static address";
	if (strcmp(code, "dnsbl_error") == 0)
		return "the blocklist could not be asked; a reviewer will look, or ask for a "
		       "recheck later";
	return "the address is listed for abuse: find and fix the cause (open relay, "
	       "compromised host, spam), request delisting, then ask for a recheck";
}

/* ----------------------------------------------------------------- rDNS */

struct fwd_query {
	struct host *host;
};

static void
fwd_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct host *h = arg;
	int i, n;

	if (status != ARES_SUCCESS) {
		if (!p25_dns_status_absent(status))
			h->fwd_errors++;
		return;
	}
	if (h->addr.family == AF_INET) {
		struct ares_addrttl t[16];
		n = 16;
		if (ares_parse_a_reply(abuf, alen, NULL, t, &n) != ARES_SUCCESS)
			return;
		for (i = 0; i < n; i++)
			if (memcmp(&t[i].ipaddr, h->addr.addr, 4) == 0)
				h->confirmed = true;
	} else {
		struct ares_addr6ttl t[16];
		n = 16;
		if (ares_parse_aaaa_reply(abuf, alen, NULL, t, &n) != ARES_SUCCESS)
			return;
		for (i = 0; i < n; i++)
			if (memcmp(&t[i].ip6addr, h->addr.addr, 16) == 0)
				h->confirmed = true;
	}
}

struct ptr_ctx {
	struct host *host;
	struct p25_dns *dns;
};

static void
ptr_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct ptr_ctx *c = arg;
	struct host *h = c->host;
	struct hostent *he = NULL;
	int i;

	h->ptr_status = status;
	if (status != ARES_SUCCESS)
		return;
	if (ares_parse_ptr_reply(abuf, alen, h->addr.addr,
				 h->addr.family == AF_INET ? 4 : 16, h->addr.family,
				 &he) != ARES_SUCCESS || !he) {
		/* an answer whose name c-ares refuses: a PTR, but not a host name */
		snprintf(h->ptr[0], sizeof(h->ptr[0]), "(unparseable PTR record)");
		h->ptr_valid[0] = false;
		h->nptr = 1;
		return;
	}
	if (he->h_name) {
		snprintf(h->ptr[0], sizeof(h->ptr[0]), "%s", he->h_name);
		h->nptr = 1;
	}
	for (i = 0; he->h_aliases && he->h_aliases[i] && h->nptr < MAX_PTR_NAMES; i++) {
		int k;
		for (k = 0; k < h->nptr && strcasecmp(h->ptr[k], he->h_aliases[i]) != 0; k++)
			;
		if (k == h->nptr)	/* c-ares repeats h_name among the aliases */
			snprintf(h->ptr[h->nptr++], sizeof(h->ptr[0]), "%s", he->h_aliases[i]);
	}
	ares_free_hostent(he);
	for (i = 0; i < h->nptr; i++) {
		size_t k;
		/* untrusted text: anything outside host-name syntax is refused, and
		 * kept only as an inert string in the evidence */
		h->ptr_valid[i] = p25_domain_ok(h->ptr[i]);
		for (k = 0; h->ptr[i][k]; k++)
			if ((unsigned char)h->ptr[i][k] < 0x20 || (unsigned char)h->ptr[i][k] >= 0x7f)
				h->ptr[i][k] = '?';
		if (h->ptr_valid[i])
			p25_dns_query(c->dns, h->ptr[i],
				      h->addr.family == AF_INET ? ns_t_a : ns_t_aaaa, fwd_answer, h);
	}
}

/* ---------------------------------------------------------------- DMARC */

struct dmarc_query {
	char domain[256];
	int status;
	bool found;
	char record[512];
};

static void
dmarc_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct dmarc_query *q = arg;
	struct ares_txt_ext *txt = NULL, *t;

	q->status = status;
	if (status != ARES_SUCCESS || ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS)
		return;
	for (t = txt; t; t = t->next)
		if (t->record_start && t->length >= 8 &&
		    strncasecmp((const char *)t->txt, "v=DMARC1", 8) == 0) {
			q->found = true;
			snprintf(q->record, sizeof(q->record), "%.*s", (int)t->length, t->txt);
		}
	for (char *p = q->record; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	ares_free_data(txt);
}

/* ------------------------------------------------------------------ SPF */

enum spf_result { SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL,
		  SPF_TEMPERROR, SPF_PERMERROR,
		  SPF_PENDING };	/* needs an answer not in the cache yet */
static const char *const spf_names[] = { "none", "neutral", "pass", "fail", "softfail",
					 "temperror", "permerror" };

/*
 * SPF is evaluated over a per-batch answer cache, restartably: an
 * evaluation that needs an answer the cache does not hold yet records the
 * query (once per name and type) and stops as SPF_PENDING; the batch sends
 * every recorded query at once, waits, and evaluates the pending ones again
 * from the start.  Each round answers at least one more query of every
 * pending evaluation, and an evaluation makes a bounded number of queries
 * (the RFC 7208 limits), so the rounds are bounded too (SPF_MAX_ROUNDS is a
 * backstop).  A failed answer is cached like any other: an evaluation sees
 * one answer per name and type.
 */
#define SPF_MAX_ROUNDS 64
#define Q_PENDING (-1000)

struct ans {
	char name[256];
	int type;
	bool sent, done;
	int status;
	unsigned char *abuf;
	int alen;
};

struct ans_cache {
	struct ans **v;
	int n, cap;
	int nwant;	/* recorded, not sent yet */
	bool oom;
};

static void
cache_free(struct ans_cache *c)
{
	int i;

	for (i = 0; i < c->n; i++) {
		free(c->v[i]->abuf);
		free(c->v[i]);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* The entry of (name, type), recorded as wanted when new; NULL when out of
 * memory (c->oom) or for a name too long to be one. */
static struct ans *
cache_get(struct ans_cache *c, const char *name, int type)
{
	size_t len = strlen(name);
	struct ans *a;
	int i;

	for (i = 0; i < c->n; i++)
		if (c->v[i]->type == type && strcasecmp(c->v[i]->name, name) == 0)
			return c->v[i];
	if (len >= sizeof(a->name))
		return NULL;
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 32;
		struct ans **nv = realloc(c->v, (size_t)cap * sizeof(*nv));
		if (!nv) {
			c->oom = true;
			return NULL;
		}
		c->v = nv;
		c->cap = cap;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		c->oom = true;
		return NULL;
	}
	memcpy(a->name, name, len + 1);
	a->type = type;
	a->status = ARES_ETIMEOUT;
	c->v[c->n++] = a;
	c->nwant++;
	return a;
}

static void
ans_cb(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct ans *a = arg;

	a->done = true;
	a->status = status;
	if (status == ARES_SUCCESS && abuf && alen > 0) {
		a->abuf = malloc((size_t)alen);
		if (a->abuf) {
			memcpy(a->abuf, abuf, (size_t)alen);
			a->alen = alen;
		} else {
			a->status = ARES_ENOMEM;
		}
	}
}

/* Starts every recorded query (p25_dns_wait() answers them). */
static void
cache_send(struct ans_cache *c, struct p25_dns *dns)
{
	int i;

	for (i = 0; i < c->n; i++) {
		struct ans *a = c->v[i];
		if (a->sent)
			continue;
		a->sent = true;
		p25_dns_query(dns, a->name, a->type, ans_cb, a);
	}
	c->nwant = 0;
}

/* The answer to (name, type): its status (abuf/alen on success), or
 * Q_PENDING when it is not in the cache yet (it is then recorded). */
static int
cache_lookup(struct ans_cache *c, const char *name, int type,
	     const unsigned char **abuf, int *alen)
{
	struct ans *a = cache_get(c, name, type);

	*abuf = NULL;
	*alen = 0;
	if (!a)
		return c->oom ? ARES_ENOMEM : ARES_EBADNAME;
	if (!a->done)
		return Q_PENDING;
	*abuf = a->abuf;
	*alen = a->alen;
	return a->status;
}

/* Does host match name's A/AAAA records, within cidr bits?  1, 0, -1 (DNS
 * error), -3 (pending). */
static int
spf_match_name(struct ans_cache *c, const char *name, const struct p25_prefix *host,
	       int cidr, int *lookups_void)
{
	const unsigned char *abuf;
	int alen, st, i, n, match = 0, bits = cidr >= 0 ? cidr : (host->family == AF_INET ? 32 : 128);
	struct p25_prefix net;

	st = cache_lookup(c, name, host->family == AF_INET ? ns_t_a : ns_t_aaaa, &abuf, &alen);
	if (st == Q_PENDING)
		return -3;
	if (st != ARES_SUCCESS) {
		if (p25_dns_status_absent(st)) {
			(*lookups_void)++;
			return 0;
		}
		return -1;
	}
	if (!abuf)
		return 0;
	memset(&net, 0, sizeof(net));
	net.family = host->family;
	net.len = bits;
	if (host->family == AF_INET) {
		struct ares_addrttl t[16];
		n = 16;
		if (ares_parse_a_reply(abuf, alen, NULL, t, &n) == ARES_SUCCESS)
			for (i = 0; i < n && !match; i++) {
				memcpy(net.addr, &t[i].ipaddr, 4);
				match = p25_prefix_contains(&net, host) ||
					(bits == 32 && memcmp(net.addr, host->addr, 4) == 0);
			}
	} else {
		struct ares_addr6ttl t[16];
		n = 16;
		if (ares_parse_aaaa_reply(abuf, alen, NULL, t, &n) == ARES_SUCCESS)
			for (i = 0; i < n && !match; i++) {
				memcpy(net.addr, &t[i].ip6addr, 16);
				match = p25_prefix_contains(&net, host) ||
					(bits == 128 && memcmp(net.addr, host->addr, 16) == 0);
			}
	}
	return match;
}

/* Masks the host bits of p so p25_prefix_contains can compare. */
static void
prefix_mask(struct p25_prefix *p)
{
	int max = p->family == AF_INET ? 32 : 128, i;

	for (i = p->len; i < max; i++)
		p->addr[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
}

static enum spf_result spf_eval(struct ans_cache *c, const char *domain,
				const struct p25_prefix *host, int depth, int *lookups,
				int *voids, char *record, size_t rlen);

/* 1 match, 0 no match, -1 temperror, -2 permerror, -3 pending. */
static int
spf_mechanism(struct ans_cache *c, const char *mech, const char *domain,
	      const struct p25_prefix *host, int depth, int *lookups, int *voids,
	      enum spf_result *sub)
{
	char target[256];
	const char *arg = strchr(mech, ':');
	const char *slash;
	int cidr = -1;

	*sub = SPF_NONE;
	if (strcasecmp(mech, "all") == 0)
		return 1;
	if (strncasecmp(mech, "ip4:", 4) == 0 || strncasecmp(mech, "ip6:", 4) == 0) {
		struct p25_prefix net;
		struct p25_err e = { 0 };
		char buf[64];
		snprintf(buf, sizeof(buf), "%s", mech + 4);
		if (p25_prefix_parse(buf, &net, &e) != 0) {
			/* tolerate host bits in SPF ranges: mask them */
			char *s = strchr(buf, '/');
			p25_err_clear(&e);
			if (!s)
				return -2;
			*s = '\0';
			if (p25_prefix_parse(buf, &net, &e) != 0) {
				p25_err_clear(&e);
				return -2;
			}
			net.len = (int)strtol(s + 1, NULL, 10);
			prefix_mask(&net);
		}
		return net.family == host->family && p25_prefix_contains(&net, host);
	}
	slash = strchr(arg ? arg : mech, '/');
	if (slash) {
		cidr = (int)strtol(slash + 1, NULL, 10);
		if (host->family == AF_INET6 && strstr(slash + 1, "//"))
			cidr = (int)strtol(strstr(slash + 1, "//") + 2, NULL, 10);
	}
	if (arg) {
		size_t len = slash ? (size_t)(slash - arg - 1) : strlen(arg + 1);
		if (len == 0 || len >= sizeof(target))
			return -2;
		memcpy(target, arg + 1, len);
		target[len] = '\0';
	} else {
		snprintf(target, sizeof(target), "%s", domain);
	}
	if (strchr(target, '%'))	/* macros are not supported: no match */
		return 0;
	if (strncasecmp(mech, "include:", 8) == 0) {
		enum spf_result r;
		char rec[8];
		if (++(*lookups) > 10)
			return -2;
		r = spf_eval(c, target, host, depth + 1, lookups, voids, rec, sizeof(rec));
		*sub = r;
		if (r == SPF_PENDING)
			return -3;
		if (r == SPF_PASS)
			return 1;
		if (r == SPF_TEMPERROR)
			return -1;
		if (r == SPF_PERMERROR || r == SPF_NONE)
			return -2;
		return 0;
	}
	if (strncasecmp(mech, "a", 1) == 0 && (mech[1] == '\0' || mech[1] == ':' || mech[1] == '/')) {
		if (++(*lookups) > 10)
			return -2;
		return spf_match_name(c, target, host, cidr, voids);
	}
	if (strncasecmp(mech, "mx", 2) == 0 && (mech[2] == '\0' || mech[2] == ':' || mech[2] == '/')) {
		const unsigned char *abuf;
		struct ares_mx_reply *mx = NULL, *m;
		int alen, st, k = 0, rc = 0;
		if (++(*lookups) > 10)
			return -2;
		st = cache_lookup(c, target, ns_t_mx, &abuf, &alen);
		if (st == Q_PENDING)
			return -3;
		if (st != ARES_SUCCESS) {
			if (p25_dns_status_absent(st)) {
				(*voids)++;
				return 0;
			}
			return -1;
		}
		if (abuf && ares_parse_mx_reply(abuf, alen, &mx) == ARES_SUCCESS) {
			/* every exchanger's address in the same round, not one a round */
			for (m = mx, k = 0; m && k < 10; m = m->next, k++)
				cache_get(c, m->host, host->family == AF_INET ? ns_t_a : ns_t_aaaa);
			for (m = mx, k = 0; m && k < 10 && rc == 0; m = m->next, k++)
				rc = spf_match_name(c, m->host, host, cidr, voids);
		}
		ares_free_data(mx);
		return rc;
	}
	if (strncasecmp(mech, "exists:", 7) == 0) {
		const unsigned char *abuf;
		int alen, st;
		if (++(*lookups) > 10)
			return -2;
		st = cache_lookup(c, target, ns_t_a, &abuf, &alen);
		if (st == Q_PENDING)
			return -3;
		return st == ARES_SUCCESS ? 1 : p25_dns_status_absent(st) ? 0 : -1;
	}
	if (strncasecmp(mech, "ptr", 3) == 0) {	/* deprecated (RFC 7208 5.5) */
		if (++(*lookups) > 10)
			return -2;
		return 0;
	}
	return -2;	/* unknown mechanism */
}

static enum spf_result
spf_eval(struct ans_cache *c, const char *domain, const struct p25_prefix *host,
	 int depth, int *lookups, int *voids, char *record, size_t rlen)
{
	const unsigned char *abuf;
	struct ares_txt_ext *txt = NULL, *t;
	char rec[2048] = "", redirect[256] = "";
	int nrec = 0, alen, st;
	char *save = NULL, *term;
	enum spf_result res = SPF_NEUTRAL;

	if (depth > 10 || *voids > 2)
		return SPF_PERMERROR;
	st = cache_lookup(c, domain, ns_t_txt, &abuf, &alen);
	if (st == Q_PENDING)
		return SPF_PENDING;
	if (st != ARES_SUCCESS) {
		if (p25_dns_status_absent(st)) {
			(*voids)++;
			return SPF_NONE;
		}
		return SPF_TEMPERROR;
	}
	if (abuf && ares_parse_txt_reply_ext(abuf, alen, &txt) == ARES_SUCCESS) {
		char cur[2048];
		size_t used = 0;
		bool in = false;
		for (t = txt; ; t = t->next) {
			if (!t || t->record_start) {
				if (in) {
					cur[used] = '\0';
					if (strncasecmp(cur, "v=spf1", 6) == 0 &&
					    (cur[6] == ' ' || cur[6] == '\0')) {
						nrec++;
						snprintf(rec, sizeof(rec), "%s", cur);
					}
				}
				if (!t)
					break;
				used = 0;
				in = true;
			}
			size_t n = t->length < sizeof(cur) - 1 - used ? t->length : sizeof(cur) - 1 - used;
			memcpy(cur + used, t->txt, n);
			used += n;
		}
		ares_free_data(txt);
	}
	for (char *p = rec; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	if (record)
		snprintf(record, rlen, "%s", rec);
	if (nrec == 0)
		return SPF_NONE;
	if (nrec > 1)
		return SPF_PERMERROR;
	for (term = strtok_r(rec + 6, " ", &save); term; term = strtok_r(NULL, " ", &save)) {
		char q = '+';
		enum spf_result sub;
		int m;

		if (strncasecmp(term, "redirect=", 9) == 0) {
			snprintf(redirect, sizeof(redirect), "%s", term + 9);
			continue;
		}
		if (strchr(term, '=') && !strchr(term, ':'))
			continue;	/* other modifiers (exp=) */
		if (strchr("+-~?", term[0]))
			q = *term++;
		m = spf_mechanism(c, term, domain, host, depth, lookups, voids, &sub);
		if (m == -3)
			return SPF_PENDING;
		if (m == -1)
			return SPF_TEMPERROR;
		if (m == -2)
			return SPF_PERMERROR;
		if (m == 1) {
			switch (q) {
			case '-': return SPF_FAIL;
			case '~': return SPF_SOFTFAIL;
			case '?': return SPF_NEUTRAL;
			default: return SPF_PASS;
			}
		}
	}
	if (redirect[0]) {
		if (++(*lookups) > 10)
			return SPF_PERMERROR;
		res = spf_eval(c, redirect, host, depth + 1, lookups, voids, NULL, 0);
		return res == SPF_NONE ? SPF_PERMERROR : res;
	}
	return res;
}

/* ------------------------------------------------------------ the run */

/* One request of a batch: what phase 1 asked and heard. */
struct vet_req {
	struct p25_vet_input *in;
	struct host *hosts;
	int nhosts;
	struct bl_query *bq;	/* nhosts per zone */
	int nbq;
	struct ptr_ctx *pc;
	struct dmarc_query *dq;
	size_t ndom;
	bool failed;
};

/* One SPF evaluation: a sender domain of a request for one of its prefixes
 * (its first host). */
struct spf_job {
	struct vet_req *req;
	size_t d;
	int p;
	struct p25_prefix host;
	enum spf_result r;
	int lookups;
	bool done;
	char record[512];
};

static void
req_fail(struct vet_req *r, const char *why)
{
	if (r->failed)
		return;
	r->failed = true;
	r->in->rc = p25_err_set(r->in->err, 503, "out_of_memory", "%s", why);
}

/* The zones' own health (RFC 5782 §5) from their test queries. */
static void
zone_health(struct bl_state *st, const struct bl_query *tq, int ntq)
{
	int i;

	for (i = 0; i < ntq; i++) {
		const struct bl_query *q = &tq[i];
		if (q->test_listed_expected && q->status != ARES_SUCCESS) {
			st->zone_broken[q->zone] = true;
			snprintf(st->zone_why[q->zone], sizeof(st->zone_why[0]),
				 "test entry 127.0.0.2 not listed (%s)", p25_dns_status_name(q->status));
		} else if (!q->test_listed_expected && q->status == ARES_SUCCESS) {
			st->zone_broken[q->zone] = true;
			snprintf(st->zone_why[q->zone], sizeof(st->zone_why[0]),
				 "127.0.0.1 is listed: the list answers for everything");
		} else if (!q->test_listed_expected && !p25_dns_status_absent(q->status)) {
			st->zone_broken[q->zone] = true;
			snprintf(st->zone_why[q->zone], sizeof(st->zone_why[0]),
				 "test query failed (%s)", p25_dns_status_name(q->status));
		}
	}
}

/* Phase 1's rows of one request: DNSBL, rDNS, DMARC. */
static int
rows_phase1(const struct bl_state *st, const struct vet_req *r, unsigned what)
{
	const struct p25_prefix *addrs = r->in->addrs;
	int naddrs = r->in->naddrs, nhosts = r->nhosts, nbq = r->nbq, z, i, p;
	const struct host *hosts = r->hosts;
	const struct bl_query *bq = r->bq;
	const struct dmarc_query *dq = r->dq;
	struct p25_checks *out = r->in->out;
	size_t d;

	/* DNSBL rows: per prefix and zone, one row per reason code found */
	for (p = 0; p < naddrs; p++) {
		char ptxt[P25_PREFIX_STRLEN];
		p25_prefix_format(&addrs[p], ptxt, sizeof(ptxt));
		for (z = 0; z < st->nzones; z++) {
			static const char *const codes[] = { "dnsbl_drop", "dnsbl_sbl", "dnsbl_css",
				"dnsbl_xbl", "dnsbl_other", "dnsbl_pbl", "dnsbl_error" };
			json_t *listed = json_array(), *errors = json_array();
			bool any = false;
			int checked = 0;
			size_t c;
			char subject[300];

			snprintf(subject, sizeof(subject), "%.64s in %.200s", ptxt, st->zones[z]);
			for (i = 0; i < nbq; i++) {
				const struct bl_query *q = &bq[i];
				int k;
				if (!q->host || q->zone != z || q->host->prefix_idx != p)
					continue;
				checked++;
				if (st->zone_broken[z] || (q->status != ARES_SUCCESS &&
				    !p25_dns_status_absent(q->status))) {
					if (json_array_size(errors) < 16)
						json_array_append_new(errors, json_pack("{s:s, s:s}",
						    "address", q->host->text, "error", st->zone_broken[z]
						    ? st->zone_why[z] : p25_dns_status_name(q->status)));
					continue;
				}
				for (k = 0; k < q->ncodes; k++) {
					const char *list;
					const char *code = bl_code(q->codes[k], &list);
					if (json_array_size(listed) < 64)
						json_array_append_new(listed, json_pack("{s:s, s:s, s:s, s:s, s:s}",
						    "address", q->host->text, "answer", q->codes[k],
						    "list", list, "code", code, "txt", q->txt));
				}
			}
			for (c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
				size_t j;
				bool found = false;
				json_t *v;
				json_array_foreach(listed, j, v)
					if (strcmp(json_string_value(json_object_get(v, "code")), codes[c]) == 0)
						found = true;
				if (strcmp(codes[c], "dnsbl_error") == 0 && json_array_size(errors) > 0)
					found = true;
				if (!found)
					continue;
				struct p25_check *k = p25_checks_add(out, "dnsbl", subject,
				    strcmp(codes[c], "dnsbl_error") == 0 ? P25_ERROR
				    : strcmp(codes[c], "dnsbl_pbl") == 0 ? P25_WARN : P25_FAIL,
				    codes[c], bl_hint(codes[c], st->zones[z]));
				if (!k) {
					json_decref(listed);
					json_decref(errors);
					return -1;
				}
				k->prefix_idx = p;
				json_object_set_new(k->evidence, "zone", json_string(st->zones[z]));
				json_object_set_new(k->evidence, "checked", json_integer(checked));
				json_object_set(k->evidence, "listed", listed);
				if (json_array_size(errors))
					json_object_set(k->evidence, "errors", errors);
				any = true;
			}
			if (!any) {
				struct p25_check *k = p25_checks_add(out, "dnsbl", subject, P25_PASS, NULL,
								     "not listed");
				if (!k) {
					json_decref(listed);
					json_decref(errors);
					return -1;
				}
				k->prefix_idx = p;
				json_object_set_new(k->evidence, "zone", json_string(st->zones[z]));
				json_object_set_new(k->evidence, "checked", json_integer(checked));
			}
			json_decref(listed);
			json_decref(errors);
		}
	}

	/* rDNS rows: per prefix, one row per reason code */
	for (p = 0; (what & P25_VET_RDNS) && p < naddrs; p++) {
		static const struct { const char *code; enum p25_outcome o; const char *hint; } rc_tab[] = {
			{ "rdns_error", P25_ERROR, "reverse DNS could not be looked up; a reviewer "
			  "will look, or ask for a recheck later" },
			{ "rdns_missing", P25_FAIL, "publish a PTR record for the address that names "
			  "your mail server (ask the provider or use its rDNS setting)" },
			{ "rdns_invalid", P25_FAIL, "the PTR record is not a valid host name: publish "
			  "a plain host name such as mail.example.com" },
			{ "rdns_not_confirmed", P25_FAIL, "the PTR name must resolve back to the "
			  "address: add an A/AAAA record for it" },
			{ "rdns_generic", P25_FAIL, "the PTR name looks generic (derived from the "
			  "address): use a name of your own mail server, e.g. mail.example.com" },
		};
		char ptxt[P25_PREFIX_STRLEN];
		json_t *hj = json_array();
		bool has[5] = { false };
		size_t c;
		bool any = false;

		p25_prefix_format(&addrs[p], ptxt, sizeof(ptxt));
		for (i = 0; i < nhosts; i++) {
			const struct host *h = &hosts[i];
			json_t *names, *o;
			bool generic = false, valid = true;
			int k;

			if (h->prefix_idx != p)
				continue;
			names = json_array();
			for (k = 0; k < h->nptr; k++) {
				json_array_append_new(names, json_string(h->ptr[k]));
				if (!h->ptr_valid[k])
					valid = false;
				else if (p25_ptr_is_generic(&h->addr, h->ptr[k]))
					generic = true;
			}
			if (h->ptr_status != ARES_SUCCESS && !p25_dns_status_absent(h->ptr_status))
				has[0] = true;
			else if (h->ptr_status != ARES_SUCCESS || h->nptr == 0)
				has[1] = true;
			else if (!valid && !h->confirmed)
				has[2] = true;
			else if (!h->confirmed)
				has[h->fwd_errors ? 0 : 3] = true;
			else if (generic)
				has[4] = true;
			o = json_pack("{s:s, s:s, s:o, s:b, s:b}", "address", h->text,
				      "ptr_status", p25_dns_status_name(h->ptr_status), "ptr", names,
				      "forward_confirmed", h->confirmed, "generic", generic);
			if (json_array_size(hj) < 32)
				json_array_append_new(hj, o);
			else
				json_decref(o);
		}
		for (c = 0; c < 5; c++) {
			struct p25_check *k;
			if (!has[c])
				continue;
			k = p25_checks_add(out, "rdns", ptxt, rc_tab[c].o, rc_tab[c].code, rc_tab[c].hint);
			if (!k) {
				json_decref(hj);
				return -1;
			}
			k->prefix_idx = p;
			json_object_set(k->evidence, "hosts", hj);
			any = true;
		}
		if (!any) {
			struct p25_check *k = p25_checks_add(out, "rdns", ptxt, P25_PASS, NULL,
			    "reverse DNS is forward-confirmed");
			if (!k) {
				json_decref(hj);
				return -1;
			}
			json_object_set(k->evidence, "hosts", hj);
		}
		json_decref(hj);
	}

	/* DMARC rows */
	for (d = 0; d < r->ndom; d++) {
		struct p25_check *k;
		if (dq[d].found)
			k = p25_checks_add(out, "dmarc", dq[d].domain, P25_PASS, NULL, "DMARC is published");
		else if (p25_dns_status_absent(dq[d].status) || dq[d].status == ARES_SUCCESS)
			k = p25_checks_add(out, "dmarc", dq[d].domain, P25_WARN, "dmarc_missing",
			    "publish a DMARC record at _dmarc.<domain> (v=DMARC1; p=none at least)");
		else
			k = p25_checks_add(out, "dmarc", dq[d].domain, P25_ERROR, "dmarc_error",
			    "DMARC could not be looked up; ask for a recheck later");
		if (!k)
			return -1;
		json_object_set_new(k->evidence, "dns", json_string(p25_dns_status_name(dq[d].status)));
		if (dq[d].record[0])
			json_object_set_new(k->evidence, "record", json_string(dq[d].record));
	}
	return 0;
}

/* The SPF row of one evaluation. */
static int
row_spf(const struct spf_job *j)
{
	const struct vet_req *r = j->req;
	char subject[300], ptxt[P25_PREFIX_STRLEN];
	struct p25_check *k;

	p25_prefix_format(&r->in->addrs[j->p], ptxt, sizeof(ptxt));
	snprintf(subject, sizeof(subject), "%.200s for %.64s", r->dq[j->d].domain, ptxt);
	switch (j->r) {
	case SPF_PASS:
		k = p25_checks_add(r->in->out, "spf", subject, P25_PASS, NULL,
				   "SPF authorizes the address");
		break;
	case SPF_NONE:
		k = p25_checks_add(r->in->out, "spf", subject, P25_WARN, "spf_missing",
		    "publish an SPF record (v=spf1 ip4:… -all) that names this address");
		break;
	case SPF_TEMPERROR:
		k = p25_checks_add(r->in->out, "spf", subject, P25_ERROR, "spf_error",
		    "SPF could not be evaluated (DNS error); ask for a recheck later");
		break;
	case SPF_PERMERROR:
		k = p25_checks_add(r->in->out, "spf", subject, P25_WARN, "spf_fail",
		    "the SPF record is invalid or needs more than 10 lookups: fix it");
		break;
	default:
		k = p25_checks_add(r->in->out, "spf", subject, P25_WARN, "spf_fail",
		    "SPF does not authorize this address: add it to the record "
		    "(ip4:/ip6: or an include)");
		break;
	}
	if (!k)
		return -1;
	json_object_set_new(k->evidence, "result", json_string(spf_names[j->r]));
	json_object_set_new(k->evidence, "lookups", json_integer(j->lookups));
	if (j->record[0])
		json_object_set_new(k->evidence, "record", json_string(j->record));
	return 0;
}

int
p25_vet_dns_batch(const struct p25_config *cfg, struct p25_dns *dns,
		  struct p25_vet_input *in, int n, unsigned what, struct p25_err *err)
{
	struct bl_state st;
	struct bl_query tq[2 * MAX_ZONES];	/* the zones' test entries, once per batch */
	struct vet_req *reqs = NULL;
	struct spf_job *jobs = NULL;
	struct ans_cache cache = { 0 };
	int r, z, i, p, ntq = 0, njobs = 0, totalhosts = 0, round, rc = 0;
	char *zones = NULL, *save = NULL, *tok;
	size_t d;

	for (r = 0; r < n; r++)
		in[r].rc = 0;
	memset(&st, 0, sizeof(st));
	memset(tq, 0, sizeof(tq));
	if (what & P25_VET_DNSBL) {
		zones = strdup(cfg->dnsbl_zones);
		if (!zones)
			goto oom;
	}
	for (tok = zones ? strtok_r(zones, ", ", &save) : NULL;
	     tok && st.nzones < MAX_ZONES; tok = strtok_r(NULL, ", ", &save))
		snprintf(st.zones[st.nzones++], sizeof(st.zones[0]), "%s", tok);
	free(zones);
	reqs = calloc(n > 0 ? (size_t)n : 1, sizeof(*reqs));
	if (!reqs)
		goto oom;

	/* phase 1: every request's queries at once */
	for (r = 0; r < n; r++) {
		struct vet_req *q = &reqs[r];
		q->in = &in[r];
		q->ndom = in[r].domains && (what & P25_VET_MAIL) ? json_array_size(in[r].domains) : 0;
		q->nhosts = hosts_expand(in[r].addrs, in[r].naddrs, &q->hosts);
		if (q->nhosts < 0) {
			q->nhosts = 0;
			q->hosts = NULL;
			req_fail(q, "out of memory");
			continue;
		}
		q->bq = calloc((size_t)(q->nhosts ? q->nhosts : 1) * (size_t)(st.nzones ? st.nzones : 1),
			       sizeof(*q->bq));
		q->pc = calloc((size_t)(q->nhosts ? q->nhosts : 1), sizeof(*q->pc));
		q->dq = calloc(q->ndom ? q->ndom : 1, sizeof(*q->dq));
		if (!q->bq || !q->pc || !q->dq) {
			req_fail(q, "out of memory");
			continue;
		}
		totalhosts += q->nhosts;
		njobs += (int)q->ndom * in[r].naddrs;
	}
	/* the RFC 5782 test entries of each zone: once for the whole batch */
	for (z = 0; totalhosts > 0 && z < st.nzones; z++) {
		static const char *const tests[2] = { "127.0.0.2", "127.0.0.1" };
		for (i = 0; i < 2; i++) {
			struct bl_query *q = &tq[ntq++];
			struct p25_err e = { 0 };
			struct p25_prefix t;
			p25_prefix_parse(tests[i], &t, &e);
			p25_err_clear(&e);
			q->zone = z;
			q->test_listed_expected = i == 0;
			q->dns = dns;
			q->status = ARES_ETIMEOUT;
			p25_dnsbl_qname(&t, st.zones[z], q->qname, sizeof(q->qname));
			p25_dns_query(dns, q->qname, ns_t_a, bl_answer, q);
		}
	}
	for (r = 0; r < n; r++) {
		struct vet_req *q = &reqs[r];
		if (q->failed)
			continue;
		for (z = 0; z < st.nzones; z++)
			for (i = 0; i < q->nhosts; i++) {
				struct bl_query *b = &q->bq[q->nbq++];
				b->host = &q->hosts[i];
				b->zone = z;
				b->dns = dns;
				b->status = ARES_ETIMEOUT;
				if (p25_dnsbl_qname(&q->hosts[i].addr, st.zones[z], b->qname,
						    sizeof(b->qname)) < 0) {
					b->status = ARES_EBADNAME;
					continue;
				}
				p25_dns_query(dns, b->qname, ns_t_a, bl_answer, b);
			}
		for (i = 0; (what & P25_VET_RDNS) && i < q->nhosts; i++) {
			char qn[P25_QNAME_MAX];
			q->pc[i].host = &q->hosts[i];
			q->pc[i].dns = dns;
			q->hosts[i].ptr_status = ARES_ETIMEOUT;
			p25_ptr_qname(&q->hosts[i].addr, qn, sizeof(qn));
			p25_dns_query(dns, qn, ns_t_ptr, ptr_answer, &q->pc[i]);
		}
		for (d = 0; d < q->ndom; d++) {
			const char *dom = json_string_value(json_array_get(in[r].domains, d));
			char qn[300];
			snprintf(q->dq[d].domain, sizeof(q->dq[d].domain), "%s", dom ? dom : "");
			q->dq[d].status = ARES_ETIMEOUT;
			snprintf(qn, sizeof(qn), "_dmarc.%s", q->dq[d].domain);
			p25_dns_query(dns, qn, ns_t_txt, dmarc_answer, &q->dq[d]);
			/* the SPF record itself, ahead of phase 2 (shared by the batch) */
			if (in[r].naddrs > 0)
				cache_get(&cache, q->dq[d].domain, ns_t_txt);
		}
	}
	cache_send(&cache, dns);
	p25_dns_wait(dns);

	zone_health(&st, tq, ntq);
	for (r = 0; r < n; r++)
		if (!reqs[r].failed && rows_phase1(&st, &reqs[r], what) != 0)
			req_fail(&reqs[r], "out of memory");

	/* phase 2: SPF of every (domain, prefix) of every request, round by round */
	jobs = calloc(njobs > 0 ? (size_t)njobs : 1, sizeof(*jobs));
	if (!jobs) {
		for (r = 0; r < n; r++)
			req_fail(&reqs[r], "out of memory");
		goto done;
	}
	njobs = 0;
	for (r = 0; r < n; r++) {
		if (reqs[r].failed)
			continue;
		for (d = 0; d < reqs[r].ndom; d++)
			for (p = 0; p < in[r].naddrs; p++) {
				struct spf_job *j = &jobs[njobs++];
				j->req = &reqs[r];
				j->d = d;
				j->p = p;
				j->host = in[r].addrs[p];
				j->host.len = j->host.family == AF_INET ? 32 : 128;
			}
	}
	for (round = 0; ; round++) {
		int pending = 0;

		for (i = 0; i < njobs; i++) {
			struct spf_job *j = &jobs[i];
			int voids = 0;

			if (j->done)
				continue;
			j->lookups = 0;
			j->record[0] = '\0';
			j->r = spf_eval(&cache, j->req->dq[j->d].domain, &j->host, 0, &j->lookups,
					&voids, j->record, sizeof(j->record));
			if (j->r == SPF_PENDING)
				pending++;
			else
				j->done = true;
		}
		if (pending == 0)
			break;
		if (cache.nwant == 0 || round >= SPF_MAX_ROUNDS) {
			/* cannot happen (every pending evaluation recorded a query);
			 * fail closed: an unknown, never a pass */
			for (i = 0; i < njobs; i++)
				if (!jobs[i].done) {
					jobs[i].r = SPF_TEMPERROR;
					jobs[i].done = true;
				}
			break;
		}
		cache_send(&cache, dns);
		p25_dns_wait(dns);
	}
	for (i = 0; i < njobs; i++)
		if (!jobs[i].req->failed && row_spf(&jobs[i]) != 0)
			req_fail(jobs[i].req, "out of memory");
done:
	for (r = 0; r < n; r++) {
		if (reqs[r].failed)
			rc = -1;
		free(reqs[r].hosts);
		free(reqs[r].bq);
		free(reqs[r].pc);
		free(reqs[r].dq);
	}
	free(reqs);
	free(jobs);
	cache_free(&cache);
	return rc;
oom:
	/* before any query went out */
	p25_err_set(err, 503, "out_of_memory", "out of memory");
	for (r = 0; r < n; r++)
		in[r].rc = p25_err_set(in[r].err, 503, "out_of_memory", "out of memory");
	return -1;
}

int
p25_vet_dns(const struct p25_config *cfg, struct p25_dns *dns,
	    const struct p25_prefix *addrs, int naddrs, json_t *domains, unsigned what,
	    struct p25_checks *out, struct p25_err *err)
{
	struct p25_vet_input in;

	memset(&in, 0, sizeof(in));
	in.addrs = addrs;
	in.naddrs = naddrs;
	in.domains = domains;
	in.out = out;
	in.err = err;
	p25_vet_dns_batch(cfg, dns, &in, 1, what, err);
	return in.rc;
}

void
p25_vet_facts(const struct p25_policy *pol, const struct p25_facts *f,
	      struct p25_checks *out)
{
	struct p25_check *k;
	char hint[300];

	if (f->not_held[0]) {
		k = p25_checks_add(out, "ownership", f->not_held, P25_FAIL, "address_not_held",
		    "these addresses are not in your inventory: request only addresses you hold");
	} else {
		k = p25_checks_add(out, "ownership", "addresses", P25_PASS, NULL,
				   "every address is in your inventory");
	}
	if (!f->tenant_known) {
		p25_checks_add(out, "account", "account", P25_FAIL, "account_unknown",
			       "the tenant is not registered with p25");
		return;
	}
	if (f->account_age_days < pol->account_min_age_days) {
		snprintf(hint, sizeof(hint), "the account is %.0f days old; accounts younger than "
			 "%d days are reviewed by a person", f->account_age_days,
			 pol->account_min_age_days);
		k = p25_checks_add(out, "account", "age", P25_FAIL, "account_young", hint);
	} else {
		k = p25_checks_add(out, "account", "age", P25_PASS, NULL, "the account is old enough");
	}
	if (k)
		json_object_set_new(k->evidence, "age_days", json_real(f->account_age_days));
	if (!f->verified)
		p25_checks_add(out, "account", "verification", P25_FAIL, "account_unverified",
			       "verify your account (identity and payment) with the provider");
	else
		p25_checks_add(out, "account", "verification", P25_PASS, NULL, "the account is verified");
	if (strcmp(f->standing, "good") != 0) {
		k = p25_checks_add(out, "account", "standing", P25_FAIL, "account_standing",
		    "the account is not in good standing; settle it with the provider first");
		if (k)
			json_object_set_new(k->evidence, "standing", json_string(f->standing));
	} else {
		p25_checks_add(out, "account", "standing", P25_PASS, NULL, "the account is in good standing");
	}
	k = NULL;
	if (f->denials_30d > pol->history_max_denials_30d) {
		k = p25_checks_add(out, "history", "denials", P25_FAIL, "history_denials",
				   "several requests were denied recently; a person will review this one");
	}
	if (f->abuse_suspensions_90d > 0) {
		k = p25_checks_add(out, "history", "abuse", P25_FAIL, "history_abuse",
				   "an exemption of this account was suspended for abuse recently");
	}
	if (f->requests_24h > pol->history_max_requests_24h) {
		k = p25_checks_add(out, "history", "rate", P25_FAIL, "history_rate",
				   "many requests were filed in the last day");
	}
	if (!k)
		k = p25_checks_add(out, "history", "history", P25_PASS, NULL, "no worrying history");
	if (k) {
		json_object_set_new(k->evidence, "denials_30d", json_integer(f->denials_30d));
		json_object_set_new(k->evidence, "abuse_suspensions_90d",
				    json_integer(f->abuse_suspensions_90d));
		json_object_set_new(k->evidence, "requests_24h", json_integer(f->requests_24h));
	}
}

int
p25_facts_load(struct p25_db *db, const char *tenant, const char *cidrs,
	       struct p25_facts *f, struct p25_err *err)
{
	P25_STMT(st, 2,
	    "SELECT t.id IS NOT NULL, coalesce(extract(epoch FROM now() - t.account_created_at) / 86400, 0),"
	    " coalesce(t.verified, false), coalesce(t.standing, 'unknown'),"
	    " (SELECT count(*) FROM decisions d WHERE d.tenant_id = $1 AND d.decision = 'deny'"
	    "   AND d.created_at > now() - interval '30 days'),"
	    /* abuse: suspensions caused by abuse reports, and reports against the
	     * tenant's addresses (matched or not); listings alone are not abuse */
	    " (SELECT count(*) FROM exemptions e WHERE e.tenant_id = $1"
	    "   AND e.suspended_cause = 'abuse_report' AND e.updated_at > now() - interval '90 days')"
	    " + (SELECT count(*) FROM abuse_reports b WHERE b.tenant_id = $1"
	    "   AND b.received_at > now() - interval '90 days' AND p25_abuse_counts(b.category)),"
	    " (SELECT count(*) FROM requests q WHERE q.tenant_id = $1"
	    "   AND q.created_at > now() - interval '24 hours'),"
	    " (SELECT string_agg(a::text, ', ') FROM unnest($2::cidr[]) a"
	    "   WHERE NOT EXISTS (SELECT 1 FROM tenant_addresses h"
	    "     WHERE h.tenant_id = $1 AND h.prefix >>= a))"
	    " FROM (SELECT 1) one LEFT JOIN tenants t ON t.id = $1");
	const char *p[2] = { tenant, cidrs };
	PGresult *res = p25_db_exec(db, &st, p, err);

	if (!res)
		return -1;
	memset(f, 0, sizeof(*f));
	f->tenant_known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	f->account_age_days = strtod(PQgetvalue(res, 0, 1), NULL);
	f->verified = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	snprintf(f->standing, sizeof(f->standing), "%s", PQgetvalue(res, 0, 3));
	f->denials_30d = (int)strtol(PQgetvalue(res, 0, 4), NULL, 10);
	f->abuse_suspensions_90d = (int)strtol(PQgetvalue(res, 0, 5), NULL, 10);
	f->requests_24h = (int)strtol(PQgetvalue(res, 0, 6), NULL, 10);
	snprintf(f->not_held, sizeof(f->not_held), "%s", PQgetvalue(res, 0, 7));
	PQclear(res);
	return 0;
}
