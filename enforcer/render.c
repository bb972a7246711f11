/*
 * render.c — the nftables rule set of a state.
 *
 * The script (loaded with one `nft -f`, which is one kernel transaction)
 * replaces table inet p25 as a whole:
 *
 *   table inet p25            create it if missing, so that ...
 *   delete table inet p25     ... the delete never fails, then define anew:
 *   table inet p25 {
 *     set p25_v4 { type ipv4_addr; flags interval,timeout; elements = {..} }
 *     set p25_v6 { type ipv6_addr; flags interval,timeout; elements = {..} }
 *     chain p25_smtp {
 *       <rules of scoped tokens: dest and/or rate>
 *       ip saddr @p25_v4 accept
 *       ip6 saddr @p25_v6 accept
 *       reject with tcp reset          # everyone else: a clear refusal
 *     }
 *     chain forward { type filter hook forward priority filter; policy accept;
 *                     tcp dport 25 jump p25_smtp }
 *     chain output  { type filter hook output priority filter; policy accept;
 *                     tcp dport 25 jump p25_smtp }
 *   }
 *
 * forward covers what a hypervisor or edge firewall routes for tenants;
 * output covers connections the node itself makes.  The chains only look
 * at TCP destination port 25 and accept everything else (policy accept):
 * this table adds the port-25 block and its exemptions and nothing more.
 * Matching is per packet on the source, not on conntrack state, so a
 * revocation also cuts connections already open (their next segment is
 * answered with a reset).
 *
 * Sets.  Unrestricted tokens (no dest, no rate) become elements of the
 * interval sets.  Prefixes either nest or are disjoint, and nft refuses
 * nested intervals in one set, so a prefix inside another one already in
 * the set is left out (the outer one opens it).  Each element carries a
 * kernel timeout at its token's exp (capped at ENF_TIMEOUT_MAX): should
 * the agent die, the kernel still closes the port when the token expires.
 *
 * Scoped tokens become their own rules, each bounded by `meta time <
 * exp` (the same backstop as the timeouts):
 *   dest  — `ip saddr S ip daddr { D... }`: only those destinations (dests
 *           of the other address family than S are ignored; a token whose
 *           dests are all of the other family opens nothing);
 *   rate  — messages per hour, approximated as new TCP connections per
 *           hour: `ct state new limit rate R/hour burst B packets accept`
 *           plus `ct state established accept` for the connections let in.
 *           One SMTP connection may carry several messages, so this bounds
 *           connections, not messages; the limit applies to the token as a
 *           whole (its whole cidr, one bucket), and restarts full whenever
 *           the rule set is reloaded.  B = min(R, 10).
 *
 * Safety: tokens are verified before they get here, and even so nothing is
 * pasted from token text: addresses are re-parsed (p25_cidr_normalized)
 * and printed with inet_ntop, numbers with %lld, and the jti in comments
 * only when it is made of [A-Za-z0-9._:-].
 *
 * Pure: output depends only on the state and `now`.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "enforcer.h"

struct pfx {
	int fam;
	unsigned char a[16];
	int len;
	long long exp;
};

static bool
pfx_parse(const char *s, struct pfx *p)
{
	memset(p, 0, sizeof(*p));
	return p25_cidr_normalized(s, &p->fam, p->a, &p->len);
}

static int
cmp_pfx(const void *x, const void *y)
{
	const struct pfx *a = x, *b = y;
	int c;

	if (a->fam != b->fam)
		return a->fam < b->fam ? -1 : 1;
	c = memcmp(a->a, b->a, 16);
	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* true when inner lies within outer (same family) */
static bool
pfx_within(const struct pfx *inner, const struct pfx *outer)
{
	int full = outer->len / 8, rest = outer->len % 8;

	if (inner->fam != outer->fam || inner->len < outer->len)
		return false;
	if (memcmp(inner->a, outer->a, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((inner->a[full] ^ outer->a[full]) & (0xff << (8 - rest))) == 0;
}

static void
pfx_print(struct enf_buf *b, const struct pfx *p)
{
	char txt[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->fam, p->a, txt, sizeof(txt))) {
		b->failed = true;
		return;
	}
	enf_buf_printf(b, "%s/%d", txt, p->len);
}

/* Sorts and drops prefixes nested in an earlier kept one; returns the count. */
static size_t
denest(struct pfx *v, size_t n)
{
	size_t i, w = 0;

	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_pfx);
	for (i = 0; i < n; i++) {
		if (w > 0 && pfx_within(&v[i], &v[w - 1]))
			continue;
		v[w++] = v[i];
	}
	return w;
}

static bool
jti_printable(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._:-", s[i])))
			return false;
	return i > 0 && i < 64;
}

static bool
unrestricted(const struct enf_claims *c)
{
	return c->ndest == 0 && c->rate < 0;
}

static void
render_set(struct enf_buf *b, const char *name, const char *type, const struct pfx *v,
	   size_t n, long long now)
{
	size_t i;
	long long t;

	enf_buf_printf(b, "\tset %s {\n\t\ttype %s\n\t\tflags interval,timeout\n", name, type);
	if (n > 0) {
		enf_buf_printf(b, "\t\telements = {\n");
		for (i = 0; i < n; i++) {
			t = v[i].exp - now;
			if (t < 1)
				t = 1;
			if (t > ENF_TIMEOUT_MAX)
				t = ENF_TIMEOUT_MAX;
			enf_buf_printf(b, "\t\t\t");
			pfx_print(b, &v[i]);
			enf_buf_printf(b, " timeout %llds%s\n", t, i + 1 < n ? "," : "");
		}
		enf_buf_printf(b, "\t\t}\n");
	}
	enf_buf_printf(b, "\t}\n");
}

/* The rules of one scoped token; returns 1 when it rendered any. */
static int
render_scoped(struct enf_buf *b, const struct enf_entry *e)
{
	const struct enf_claims *c = &e->c;
	const char *ip;
	struct pfx src, d[P25_MAX_DEST];
	size_t nd = 0;
	int i;
	struct enf_buf match;
	long long burst;

	if (!pfx_parse(c->cidr, &src))
		return 0;
	ip = src.fam == AF_INET ? "ip" : "ip6";
	for (i = 0; i < c->ndest && i < P25_MAX_DEST; i++)
		if (pfx_parse(c->dest[i], &d[nd]) && d[nd].fam == src.fam)
			nd++;
	enf_buf_printf(b, "\t\t# exemption %s:", jti_printable(c->jti) ? c->jti : "(unprintable id)");
	if (c->ndest > 0)
		enf_buf_printf(b, " %zu destination(s)", nd);
	if (c->rate >= 0)
		enf_buf_printf(b, " rate %lld/hour (new connections)", c->rate);
	enf_buf_printf(b, "\n");
	if (c->ndest > 0 && nd == 0) {
		enf_buf_printf(b, "\t\t# no destination of the source's address family: nothing opened\n");
		return 0;
	}
	/* the match part shared by the rules: source, destinations, expiry */
	enf_buf_init(&match, 64 * 1024);
	enf_buf_printf(&match, "%s saddr ", ip);
	pfx_print(&match, &src);
	if (nd > 0) {
		nd = denest(d, nd);
		enf_buf_printf(&match, " %s daddr { ", ip);
		for (i = 0; i < (int)nd; i++) {
			if (i)
				enf_buf_printf(&match, ", ");
			pfx_print(&match, &d[i]);
		}
		enf_buf_printf(&match, " }");
	}
	enf_buf_printf(&match, " meta time < %lld", c->exp);
	if (match.failed) {
		b->failed = true;
		enf_buf_free(&match);
		return 0;
	}
	if (c->rate < 0) {
		enf_buf_printf(b, "\t\t%s accept\n", match.p);
	} else {
		burst = c->rate < 10 ? c->rate : 10;
		if (burst < 1)
			burst = 1;
		enf_buf_printf(b, "\t\t%s ct state established accept\n", match.p);
		enf_buf_printf(b, "\t\t%s ct state new limit rate %lld/hour burst %lld packets accept\n",
			       match.p, c->rate, burst);
	}
	enf_buf_free(&match);
	return 1;
}

int
enf_render_ex(const struct enf_state *st, long long now, struct enf_buf *out,
	      struct enf_render_info *info)
{
	struct pfx *v4 = NULL, *v6 = NULL, p;
	size_t n4 = 0, n6 = 0, i, active = 0;
	unsigned scoped = 0;

	if (st->n > 0) {
		v4 = calloc(st->n, sizeof(*v4));
		v6 = calloc(st->n, sizeof(*v6));
		if (!v4 || !v6) {
			free(v4);
			free(v6);
			out->failed = true;
			return -1;
		}
	}
	for (i = 0; i < st->n; i++) {
		const struct enf_claims *c = &st->v[i].c;

		if (c->exp <= now)
			continue;	/* expired: gone, whatever the caller did */
		active++;
		if (!unrestricted(c) || !pfx_parse(c->cidr, &p))
			continue;
		p.exp = c->exp;
		if (p.fam == AF_INET)
			v4[n4++] = p;
		else
			v6[n6++] = p;
	}
	n4 = denest(v4, n4);
	n6 = denest(v6, n6);

	enf_buf_printf(out,
		       "#!/usr/sbin/nft -f\n"
		       "# p25-enforcer rule set: generated, do not edit (it is replaced whole).\n"
		       "# feed position %lld, rendered at %lld (unix time), %zu exemption(s) active\n"
		       "table inet p25\n"
		       "delete table inet p25\n"
		       "table inet p25 {\n", st->seq, now, active);
	render_set(out, "p25_v4", "ipv4_addr", v4, n4, now);
	render_set(out, "p25_v6", "ipv6_addr", v6, n6, now);
	enf_buf_printf(out, "\tchain p25_smtp {\n");
	for (i = 0; i < st->n; i++)
		if (st->v[i].c.exp > now && !unrestricted(&st->v[i].c))
			scoped += (unsigned)render_scoped(out, &st->v[i]);
	enf_buf_printf(out,
		       "\t\tip saddr @p25_v4 accept\n"
		       "\t\tip6 saddr @p25_v6 accept\n"
		       "\t\treject with tcp reset\n"
		       "\t}\n"
		       "\tchain forward {\n"
		       "\t\ttype filter hook forward priority filter; policy accept;\n"
		       "\t\ttcp dport 25 jump p25_smtp\n"
		       "\t}\n"
		       "\tchain output {\n"
		       "\t\ttype filter hook output priority filter; policy accept;\n"
		       "\t\ttcp dport 25 jump p25_smtp\n"
		       "\t}\n"
		       "}\n");
	if (info) {
		info->v4 = (unsigned)n4;
		info->v6 = (unsigned)n6;
		info->scoped = scoped;
	}
	free(v4);
	free(v6);
	return out->failed ? -1 : 0;
}

int
enf_render(const struct enf_state *st, long long now, struct enf_buf *out)
{
	return enf_render_ex(st, now, out, NULL);
}
