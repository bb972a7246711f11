/*
 * ipaddr.c — strict address/prefix parsing, canonical text, special-purpose
 * ranges, DNSBL/PTR names and the generic-rDNS heuristic (see ipaddr.h).
 *
 * Strictness.  An address entered by a tenant ends up in an exemption that
 * opens port 25, so every accepted text has exactly one meaning: IPv4 is
 * parsed by hand (inet_pton would do, but we want our own error for
 * "081.2.69.5", which some libcs read as octal), IPv6 by inet_pton after a
 * character whitelist (no zone ids, no spaces), lengths without leading
 * zeros, and a prefix with host bits set is refused with the network it
 * probably meant, rather than silently masked: "81.2.69.5/24" is a typo far
 * more often than a wish for the whole /24.
 *
 * Special-purpose ranges.  Sources: IANA IPv4 and IPv6 Special-Purpose
 * Address Registries (RFC 6890 and updates), the multicast registries,
 * RFC 1112 (240/4), RFC 7526 (6to4 deprecated), RFC 9637 (3fff::/20).  The
 * question asked is stricter than IANA's "globally reachable" column:
 * "can a tenant's host legitimately send mail from here?".  So some
 * globally reachable ranges are refused too, each for a reason:
 *   - anycast service prefixes (AS112 192.31.196/24, 192.175.48/24,
 *     2001:4:112::/48, 2620:4f:8000::/48; AMT 192.52.193/24, 2001:3::/32):
 *     shared by many operators, never one tenant's mail host;
 *   - 6to4 (2002::/16 and its deprecated relay anycast 192.88.99/24) and
 *     Teredo (2001::/32): tunnel addresses that embed an IPv4 address we
 *     would be exempting by proxy;
 *   - NAT64 (64:ff9b::/96, 64:ff9b:1::/48): a translator, not a host;
 *   - 192.0.0.0/24 and 2001::/23 as a whole (IETF protocol assignments,
 *     including the PCP/TURN anycast addresses).
 * IPv6 outside 2000::/3 is "reserved" unless a more specific reason
 * applies (fec0::/10, 100::/64 discard-only, ::/96, 5f00::/16 ...).
 * Matching is by overlap: a prefix is refused if any address in it is
 * special; the first table entry that overlaps names the reason, so the
 * tables are ordered most-specific first where ranges nest.
 *
 * Pure functions, thread-safe, no allocation.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "p25/err.h"
#include "p25/ipaddr.h"

#define INPUT_MAX 64

/* ------------------------------------------------------------- bits */

static bool
bits_equal(const unsigned char *a, const unsigned char *b, int nbits)
{
	int full = nbits / 8, rest = nbits % 8;

	if (full && memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((a[full] & mask) != (b[full] & mask))
			return false;
	}
	return true;
}

static int
family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static void
mask_host_bits(unsigned char *addr, int len, int max)
{
	int i;

	for (i = len; i < max; i++)
		addr[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
}

bool
p25_prefix_contains(const struct p25_prefix *outer, const struct p25_prefix *inner)
{
	return outer->family == inner->family && outer->len <= inner->len &&
	       bits_equal(outer->addr, inner->addr, outer->len);
}

bool
p25_prefix_overlaps(const struct p25_prefix *a, const struct p25_prefix *b)
{
	return a->family == b->family &&
	       bits_equal(a->addr, b->addr, a->len < b->len ? a->len : b->len);
}

/* ---------------------------------------------------------- parsing */

/* The entry, quoted for an error message, if it is safe to repeat. */
static const char *
quoted(const char *s, char *buf, size_t len)
{
	size_t i, n = strnlen(s, INPUT_MAX + 1);

	if (n == 0 || n > INPUT_MAX)
		goto anon;
	/* only characters an address could contain, and a few neighbours */
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') || strchr(".:/-_%[]", s[i])))
			goto anon;
	snprintf(buf, len, "'%s'", s);
	return buf;
anon:
	return "the entry";
}

static int
invalid(struct p25_err *err, const char *s, const char *why)
{
	char q[INPUT_MAX + 3];

	p25_err_set(err, 422, "invalid_address", "%s is not an IP address or prefix: %s",
		    quoted(s, q, sizeof(q)), why);
	p25_err_hint(err, "write an address (81.2.69.5, 2a02:ff0:1::5) or a prefix "
		     "with its length (81.2.69.0/26, 2a02:ff0:1::/48)");
	return -1;
}

/* Dotted quad, exactly four decimal octets without leading zeros. */
static bool
parse_v4(const char *s, size_t n, unsigned char out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start = i;

		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return false;
		out[part] = (unsigned char)v;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

int
p25_prefix_parse(const char *s, struct p25_prefix *out, struct p25_err *err)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char abuf[INET6_ADDRSTRLEN];
	struct p25_prefix p;
	const char *slash;
	size_t n, alen, i;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	if (!s)
		return invalid(err, "", "it is empty");
	n = strnlen(s, INPUT_MAX + 1);
	if (n == 0)
		return invalid(err, s, "it is empty");
	if (n > INPUT_MAX)
		return invalid(err, s, "it is too long");
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == '.' || c == ':' || c == '/'))
			return invalid(err, s, "it holds a character that is not part of an address");
	}
	slash = memchr(s, '/', n);
	alen = slash ? (size_t)(slash - s) : n;
	if (alen == 0 || alen >= sizeof(abuf))
		return invalid(err, s, "the address part is missing or too long");
	memcpy(abuf, s, alen);
	abuf[alen] = '\0';
	if (memchr(abuf, ':', alen)) {
		p.family = AF_INET6;
		if (inet_pton(AF_INET6, abuf, p.addr) != 1)
			return invalid(err, s, "it is not a valid IPv6 address");
	} else {
		p.family = AF_INET;
		if (!parse_v4(abuf, alen, p.addr))
			return invalid(err, s, "it is not a dotted-quad IPv4 address "
				       "(four numbers 0-255, no leading zeros)");
	}
	p.len = family_bits(p.family);
	if (slash) {
		const char *d = slash + 1;
		size_t dl = n - alen - 1;
		int v = 0;

		if (dl == 0 || dl > 3 || (d[0] == '0' && dl > 1))
			return invalid(err, s, "the prefix length is not a number without leading zeros");
		for (i = 0; i < dl; i++) {
			if (d[i] < '0' || d[i] > '9')
				return invalid(err, s, "the prefix length is not a number");
			v = v * 10 + (d[i] - '0');
		}
		if (v > p.len)
			return invalid(err, s, p.family == AF_INET
				       ? "the prefix length is above 32"
				       : "the prefix length is above 128");
		p.len = v;
	}
	if (p.family == AF_INET6 && memcmp(p.addr, mapped, sizeof(mapped)) == 0) {
		char q[INPUT_MAX + 3];

		p25_err_set(err, 422, "mapped_address",
			    "%s is an IPv4-mapped IPv6 address", quoted(s, q, sizeof(q)));
		p25_err_hint(err, "write the IPv4 address itself: %u.%u.%u.%u",
			     p.addr[12], p.addr[13], p.addr[14], p.addr[15]);
		return -1;
	}
	if (slash) {
		struct p25_prefix net = p;
		char q[INPUT_MAX + 3], txt[P25_PREFIX_STRLEN];

		mask_host_bits(net.addr, net.len, family_bits(net.family));
		if (memcmp(net.addr, p.addr, sizeof(p.addr)) != 0) {
			p25_prefix_format(&net, txt, sizeof(txt));
			p25_err_set(err, 422, "host_bits_set",
				    "%s has bits set beyond its /%d prefix length",
				    quoted(s, q, sizeof(q)), p.len);
			p25_err_hint(err, "did you mean %s?", txt);
			return -1;
		}
	}
	*out = p;
	return 0;
}

void
p25_prefix_format(const struct p25_prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if ((p->family != AF_INET && p->family != AF_INET6) ||
	    !inet_ntop(p->family, p->addr, a, sizeof(a))) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "%s/%d", a, p->len);
}

/* --------------------------------------------------- special ranges */

struct special {
	int family;
	unsigned char net[16];
	int len;
	const char *reason;
	bool outside;	/* matches when p is NOT inside net/len */
};

static const struct special specials[] = {
	/* IPv4 */
	{ AF_INET, { 0, 0, 0, 0 }, 32, "unspecified", false },		/* RFC 1122 */
	{ AF_INET, { 0 }, 8, "this_network", false },			/* RFC 791 */
	{ AF_INET, { 10 }, 8, "private", false },			/* RFC 1918 */
	{ AF_INET, { 100, 64 }, 10, "shared", false },			/* RFC 6598 */
	{ AF_INET, { 127 }, 8, "loopback", false },			/* RFC 1122 */
	{ AF_INET, { 169, 254 }, 16, "link_local", false },		/* RFC 3927 */
	{ AF_INET, { 172, 16 }, 12, "private", false },			/* RFC 1918 */
	{ AF_INET, { 192, 0, 0 }, 24, "reserved", false },		/* RFC 6890 */
	{ AF_INET, { 192, 0, 2 }, 24, "documentation", false },		/* RFC 5737 */
	{ AF_INET, { 192, 31, 196 }, 24, "anycast", false },		/* RFC 7535 AS112 */
	{ AF_INET, { 192, 52, 193 }, 24, "anycast", false },		/* RFC 7450 AMT */
	{ AF_INET, { 192, 88, 99 }, 24, "6to4", false },		/* RFC 7526 */
	{ AF_INET, { 192, 168 }, 16, "private", false },		/* RFC 1918 */
	{ AF_INET, { 192, 175, 48 }, 24, "anycast", false },		/* RFC 7534 AS112 */
	{ AF_INET, { 198, 18 }, 15, "benchmarking", false },		/* RFC 2544 */
	{ AF_INET, { 198, 51, 100 }, 24, "documentation", false },	/* RFC 5737 */
	{ AF_INET, { 203, 0, 113 }, 24, "documentation", false },	/* RFC 5737 */
	{ AF_INET, { 224 }, 4, "multicast", false },			/* RFC 5771 */
	{ AF_INET, { 255, 255, 255, 255 }, 32, "broadcast", false },	/* RFC 919 */
	{ AF_INET, { 240 }, 4, "reserved", false },			/* RFC 1112 */
	/* IPv6, outside 2000::/3 */
	{ AF_INET6, { 0 }, 128, "unspecified", false },			/* RFC 4291 */
	{ AF_INET6, { [15] = 1 }, 128, "loopback", false },		/* RFC 4291 */
	{ AF_INET6, { [10] = 0xff, [11] = 0xff }, 96, "ipv4_mapped", false },
	{ AF_INET6, { 0, 0x64, 0xff, 0x9b }, 96, "nat64", false },	/* RFC 6052 */
	{ AF_INET6, { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48, "nat64", false },	/* RFC 8215 */
	{ AF_INET6, { 0xfc }, 7, "unique_local", false },		/* RFC 4193 */
	{ AF_INET6, { 0xfe, 0x80 }, 10, "link_local", false },		/* RFC 4291 */
	{ AF_INET6, { 0xff }, 8, "multicast", false },			/* RFC 4291 */
	{ AF_INET6, { 0x20 }, 3, "reserved", true },			/* not global unicast */
	/* IPv6, inside 2000::/3 */
	{ AF_INET6, { 0x20, 0x01, 0, 0 }, 32, "teredo", false },	/* RFC 4380 */
	{ AF_INET6, { 0x20, 0x01, 0, 2, 0, 0 }, 48, "benchmarking", false },	/* RFC 5180 */
	{ AF_INET6, { 0x20, 0x01, 0, 3 }, 32, "anycast", false },	/* RFC 7450 AMT */
	{ AF_INET6, { 0x20, 0x01, 0, 4, 0x01, 0x12 }, 48, "anycast", false },	/* RFC 7535 */
	{ AF_INET6, { 0x20, 0x01 }, 23, "reserved", false },		/* RFC 2928 */
	{ AF_INET6, { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation", false },	/* RFC 3849 */
	{ AF_INET6, { 0x20, 0x02 }, 16, "6to4", false },		/* RFC 3056/7526 */
	{ AF_INET6, { 0x26, 0x20, 0, 0x4f, 0x80, 0 }, 48, "anycast", false },	/* RFC 7534 */
	{ AF_INET6, { 0x3f, 0xff }, 20, "documentation", false },	/* RFC 9637 */
};

const char *
p25_prefix_special(const struct p25_prefix *p)
{
	size_t i;

	if (p->family != AF_INET && p->family != AF_INET6)
		return "reserved";
	for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		const struct special *sp = &specials[i];
		struct p25_prefix range;

		if (sp->family != p->family)
			continue;
		range.family = sp->family;
		memcpy(range.addr, sp->net, sizeof(range.addr));
		range.len = sp->len;
		if (sp->outside ? !p25_prefix_contains(&range, p)
				: p25_prefix_overlaps(&range, p))
			return sp->reason;
	}
	return NULL;
}

/* -------------------------------------------------------- DNS names */

static const char hexdig[] = "0123456789abcdef";

int
p25_dnsbl_qname(const struct p25_prefix *host, const char *zone, char *buf,
		size_t len)
{
	size_t pos = 0;
	int n, i;

	if (len > 0)
		buf[0] = '\0';
	if (!zone || !zone[0] || len == 0 ||
	    !((host->family == AF_INET && host->len == 32) ||
	      (host->family == AF_INET6 && host->len == 128)))
		return -1;
	if (host->family == AF_INET) {
		n = snprintf(buf, len, "%u.%u.%u.%u.", host->addr[3], host->addr[2],
			     host->addr[1], host->addr[0]);
		if (n < 0 || (size_t)n >= len)
			goto small;
		pos = (size_t)n;
	} else {
		if (len <= 64)
			goto small;
		for (i = 15; i >= 0; i--) {
			buf[pos++] = hexdig[host->addr[i] & 0x0f];
			buf[pos++] = '.';
			buf[pos++] = hexdig[host->addr[i] >> 4];
			buf[pos++] = '.';
		}
	}
	n = snprintf(buf + pos, len - pos, "%s", zone);
	if (n < 0 || (size_t)n >= len - pos)
		goto small;
	return (int)(pos + (size_t)n);
small:
	buf[0] = '\0';
	return -1;
}

int
p25_ptr_qname(const struct p25_prefix *host, char *buf, size_t len)
{
	return p25_dnsbl_qname(host, host->family == AF_INET ? "in-addr.arpa"
							     : "ip6.arpa", buf, len);
}

/* ------------------------------------------------------ generic rDNS */

static bool
is_dec(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(char c)
{
	return is_dec(c) || (c >= 'a' && c <= 'f');
}

static bool
is_sep(char c)
{
	return c == '-' || c == '.' || c == '_';
}

/*
 * At h[i], nvals numbers separated by one of -._ whose values are vals[],
 * each 1..maxdig digits of base 10 or 16 (leading zeros allowed), not
 * followed by another digit of that base.
 */
static bool
groups_at(const char *h, size_t n, size_t i, const unsigned *vals, int nvals,
	  int base, int maxdig)
{
	bool (*digit)(char) = base == 10 ? is_dec : is_hex;
	int g;

	for (g = 0; g < nvals; g++) {
		unsigned v = 0;
		int nd = 0;

		while (i < n && digit(h[i])) {
			if (++nd > maxdig)
				return false;
			v = v * (unsigned)base +
			    (unsigned)(is_dec(h[i]) ? h[i] - '0' : h[i] - 'a' + 10);
			i++;
		}
		if (nd == 0 || v != vals[g])
			return false;
		if (g < nvals - 1) {
			if (i >= n || !is_sep(h[i]))
				return false;
			i++;
		}
	}
	return i >= n || !digit(h[i]);
}

/* Some run of base-digits in h, bounded by non-digits, equals want. */
static bool
has_run(const char *h, size_t n, const char *want, int base)
{
	bool (*digit)(char) = base == 10 ? is_dec : is_hex;
	size_t wl = strlen(want), i = 0;

	while (i < n) {
		size_t start;

		if (!digit(h[i])) {
			i++;
			continue;
		}
		start = i;
		while (i < n && digit(h[i]))
			i++;
		if (i - start == wl && memcmp(h + start, want, wl) == 0)
			return true;
	}
	return false;
}

/* Any position starting a base-digit run where the groups match. */
static bool
has_groups(const char *h, size_t n, const unsigned *vals, int nvals, int base,
	   int maxdig)
{
	bool (*digit)(char) = base == 10 ? is_dec : is_hex;
	size_t i;

	for (i = 0; i < n; i++)
		if (digit(h[i]) && (i == 0 || !digit(h[i - 1])) &&
		    groups_at(h, n, i, vals, nvals, base, maxdig))
			return true;
	return false;
}

static bool
generic_v4(const unsigned char *a, const char *h, size_t n)
{
	unsigned fwd[4] = { a[0], a[1], a[2], a[3] };
	unsigned rev[4] = { a[3], a[2], a[1], a[0] };
	unsigned long v = (unsigned long)a[0] << 24 | (unsigned long)a[1] << 16 |
			  (unsigned long)a[2] << 8 | a[3];
	char want[16];

	if (has_groups(h, n, fwd, 4, 10, 3) || has_groups(h, n, rev, 4, 10, 3))
		return true;
	snprintf(want, sizeof(want), "%03u%03u%03u%03u", a[0], a[1], a[2], a[3]);
	if (has_run(h, n, want, 10))
		return true;
	snprintf(want, sizeof(want), "%03u%03u%03u%03u", a[3], a[2], a[1], a[0]);
	if (has_run(h, n, want, 10))
		return true;
	snprintf(want, sizeof(want), "%02x%02x%02x%02x", a[0], a[1], a[2], a[3]);
	if (has_run(h, n, want, 16))
		return true;
	/* the address as one 32-bit number; only when it cannot be short */
	snprintf(want, sizeof(want), "%lu", v);
	return a[0] > 0 && has_run(h, n, want, 10);
}

static bool
generic_v6(const unsigned char *a, const char *h, size_t n)
{
	unsigned iid[4];
	char want[INET6_ADDRSTRLEN];
	size_t i, wl;

	for (i = 0; i < 4; i++)
		iid[i] = (unsigned)a[8 + 2 * i] << 8 | a[9 + 2 * i];
	if (has_groups(h, n, iid, 4, 16, 4))
		return true;
	for (i = 0; i < 16; i++) {
		want[2 * i] = hexdig[a[i] >> 4];
		want[2 * i + 1] = hexdig[a[i] & 0x0f];
	}
	want[32] = '\0';
	if (has_run(h, n, want, 16) || has_run(h, n, want + 16, 16))
		return true;
	/* compressed text with '-' for ':' (2a02-ff0-1--5), standing alone */
	if (!inet_ntop(AF_INET6, a, want, sizeof(want)))
		return false;
	for (i = 0; want[i]; i++)
		if (want[i] == ':')
			want[i] = '-';
	wl = strlen(want);
	for (i = 0; i + wl <= n; i++) {
		if (memcmp(h + i, want, wl) != 0)
			continue;
		if ((i == 0 || (!is_hex(h[i - 1]) && h[i - 1] != '-')) &&
		    (i + wl == n || (!is_hex(h[i + wl]) && h[i + wl] != '-')))
			return true;
	}
	return false;
}

bool
p25_ptr_is_generic(const struct p25_prefix *host, const char *hostname)
{
	char h[256];
	size_t n, i;

	if (!hostname)
		return false;
	n = strnlen(hostname, sizeof(h));
	if (n == 0 || n >= sizeof(h))
		return false;
	for (i = 0; i < n; i++) {
		char c = hostname[i];
		h[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	h[n] = '\0';
	if (host->family == AF_INET)
		return generic_v4(host->addr, h, n);
	if (host->family == AF_INET6)
		return generic_v6(host->addr, h, n);
	return false;
}
