/*
 * test_ipaddr.c — core/ipaddr.c, as tables of cases (STYLE.md §10: tests
 * that only declare data).  Each table row is one input and what must come
 * out; the test functions only loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "p25/err.h"
#include "p25/ipaddr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ parse */

static const struct {
	const char *in;
	const char *canon;	/* NULL: must fail */
	const char *code;	/* error code when failing */
	const char *hint;	/* substring of the hint, or NULL */
} parse_cases[] = {
	{ "81.2.69.5", "81.2.69.5/32", NULL, NULL },
	{ "81.2.69.0/26", "81.2.69.0/26", NULL, NULL },
	{ "81.2.69.5/32", "81.2.69.5/32", NULL, NULL },
	{ "0.0.0.0/0", "0.0.0.0/0", NULL, NULL },
	{ "255.255.255.255", "255.255.255.255/32", NULL, NULL },
	{ "2a02:ff0:1::/48", "2a02:ff0:1::/48", NULL, NULL },
	{ "2A02:FF0::1", "2a02:ff0::1/128", NULL, NULL },
	{ "2a02:0ff0:0000:0000:0000:0000:0000:0001", "2a02:ff0::1/128", NULL, NULL },
	{ "2a02:ff0:1::/64", "2a02:ff0:1::/64", NULL, NULL },
	{ "::/0", "::/0", NULL, NULL },
	{ "::1", "::1/128", NULL, NULL },
	{ "64:ff9b::81.2.69.5", "64:ff9b::5102:4505/128", NULL, NULL },
	/* host bits */
	{ "81.2.69.5/24", NULL, "host_bits_set", "did you mean 81.2.69.0/24?" },
	{ "81.2.69.65/26", NULL, "host_bits_set", "did you mean 81.2.69.64/26?" },
	{ "10.1.0.0/8", NULL, "host_bits_set", "did you mean 10.0.0.0/8?" },
	{ "2a02:ff0:1::5/48", NULL, "host_bits_set", "did you mean 2a02:ff0:1::/48?" },
	{ "2a02:ff0:1:8000::/48", NULL, "host_bits_set", "2a02:ff0:1::/48" },
	/* mapped */
	{ "::ffff:81.2.69.5", NULL, "mapped_address", "81.2.69.5" },
	{ "::FFFF:5102:4505", NULL, "mapped_address", "81.2.69.5" },
	{ "::ffff:81.2.69.0/120", NULL, "mapped_address", NULL },
	/* strictness */
	{ "081.2.69.5", NULL, "invalid_address", NULL },
	{ "81.02.69.5", NULL, "invalid_address", NULL },
	{ "81.2.69.05", NULL, "invalid_address", NULL },
	{ "81.2.69.5/024", NULL, "invalid_address", NULL },
	{ "81.2.69.0/00", NULL, "invalid_address", NULL },
	{ "81.2.69.5/33", NULL, "invalid_address", NULL },
	{ "2a02:ff0::/129", NULL, "invalid_address", NULL },
	{ "81.2.69.5/", NULL, "invalid_address", NULL },
	{ "/24", NULL, "invalid_address", NULL },
	{ "81.2.69.5/24/24", NULL, "invalid_address", NULL },
	{ "81.2.69.5/-1", NULL, "invalid_address", NULL },
	{ "81.2.69.5/+8", NULL, "invalid_address", NULL },
	{ " 81.2.69.5", NULL, "invalid_address", NULL },
	{ "81.2.69.5 ", NULL, "invalid_address", NULL },
	{ "81.2.69.5/ 24", NULL, "invalid_address", NULL },
	{ "81.2.69", NULL, "invalid_address", NULL },
	{ "81.2.69.5.1", NULL, "invalid_address", NULL },
	{ "81.2.69.256", NULL, "invalid_address", NULL },
	{ "81.2.69.1000", NULL, "invalid_address", NULL },
	{ "81..69.5", NULL, "invalid_address", NULL },
	{ "81.2.69.5.", NULL, "invalid_address", NULL },
	{ ".81.2.69.5", NULL, "invalid_address", NULL },
	{ "0x51.2.69.5", NULL, "invalid_address", NULL },
	{ "1359103237", NULL, "invalid_address", NULL },
	{ "81.2.69.5\n", NULL, "invalid_address", NULL },
	{ "fe80::1%eth0", NULL, "invalid_address", NULL },
	{ "2a02:ff0:::1", NULL, "invalid_address", NULL },
	{ "2a02:ff0::1::2", NULL, "invalid_address", NULL },
	{ "2a02:ff00f::1", NULL, "invalid_address", NULL },
	{ "[2a02:ff0::1]", NULL, "invalid_address", NULL },
	{ "2a02:ff0::g", NULL, "invalid_address", NULL },
	{ "", NULL, "invalid_address", NULL },
	{ "example.com", NULL, "invalid_address", NULL },
	{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd", NULL,
	  "invalid_address", NULL },
	{ "\xff\xfe", NULL, "invalid_address", NULL },
};

static void
test_parse_table(void **state)
{
	size_t i;

	for (i = 0; i < N(parse_cases); i++) {
		struct p25_prefix p;
		struct p25_err err = { 0 };
		char buf[P25_PREFIX_STRLEN];
		int rc = p25_prefix_parse(parse_cases[i].in, &p, &err);

		if (parse_cases[i].canon) {
			if (rc != 0)
				fail_msg("'%s' refused: %s %s", parse_cases[i].in, err.code,
					 err.detail);
			p25_prefix_format(&p, buf, sizeof(buf));
			if (strcmp(buf, parse_cases[i].canon) != 0)
				fail_msg("'%s' formats as '%s', want '%s'", parse_cases[i].in,
					 buf, parse_cases[i].canon);
		} else {
			if (rc != -1)
				fail_msg("'%s' accepted", parse_cases[i].in);
			assert_int_equal(err.status, 422);
			if (strcmp(err.code, parse_cases[i].code) != 0)
				fail_msg("'%s': code %s, want %s", parse_cases[i].in, err.code,
					 parse_cases[i].code);
			if (parse_cases[i].hint && !strstr(err.hint, parse_cases[i].hint))
				fail_msg("'%s': hint '%s' lacks '%s'", parse_cases[i].in,
					 err.hint, parse_cases[i].hint);
			assert_true(err.detail[0] != '\0');
		}
		p25_err_clear(&err);
	}
}

/* An echo of the input in the error is inert: only short printable text. */
static void
test_parse_echo(void **state)
{
	struct p25_prefix p;
	struct p25_err err = { 0 };

	assert_int_equal(p25_prefix_parse("81.2.69.5/33", &p, &err), -1);
	assert_non_null(strstr(err.detail, "'81.2.69.5/33'"));
	p25_err_clear(&err);
	assert_int_equal(p25_prefix_parse("<script>1.2.3.4", &p, &err), -1);
	assert_null(strstr(err.detail, "<script>"));
	p25_err_clear(&err);
	assert_int_equal(p25_prefix_parse("1.2.3.4\r\nX: y", &p, &err), -1);
	assert_null(strchr(err.detail, '\n'));
	p25_err_clear(&err);
	assert_int_equal(p25_prefix_parse(NULL, &p, &err), -1);
	assert_string_equal(err.code, "invalid_address");
	p25_err_clear(&err);
}

/* Every canonical text parses back to itself (round trip). */
static void
test_roundtrip(void **state)
{
	size_t i;

	for (i = 0; i < N(parse_cases); i++) {
		struct p25_prefix p, q;
		struct p25_err err = { 0 };
		char a[P25_PREFIX_STRLEN], b[P25_PREFIX_STRLEN];

		if (!parse_cases[i].canon)
			continue;
		assert_int_equal(p25_prefix_parse(parse_cases[i].canon, &p, &err), 0);
		p25_prefix_format(&p, a, sizeof(a));
		assert_int_equal(p25_prefix_parse(a, &q, &err), 0);
		p25_prefix_format(&q, b, sizeof(b));
		assert_string_equal(a, b);
		assert_memory_equal(&p, &q, sizeof(p));
	}
}

/* ---------------------------------------------------------- special */

static const struct {
	const char *in;
	const char *reason;	/* NULL = public */
} special_cases[] = {
	/* public */
	{ "81.2.69.5", NULL },
	{ "81.2.69.0/24", NULL },
	{ "8.8.8.8", NULL },
	{ "1.0.0.0/8", NULL },
	{ "11.0.0.0/8", NULL },
	{ "100.63.255.255", NULL },
	{ "100.128.0.0", NULL },
	{ "172.15.255.255", NULL },
	{ "172.32.0.0", NULL },
	{ "192.0.1.255", NULL },
	{ "192.0.3.0", NULL },
	{ "192.167.255.255", NULL },
	{ "192.169.0.0", NULL },
	{ "198.17.255.255", NULL },
	{ "198.20.0.0", NULL },
	{ "223.255.255.255", NULL },
	{ "2a02:ff0:1::/48", NULL },
	{ "2a02:ff0:1::5", NULL },
	{ "2001:200::1", NULL },		/* just past 2001::/23 */
	{ "2001:db7:ffff::1", NULL },
	{ "2003::1", NULL },
	{ "3ffe::1", NULL },
	{ "3fff:1000::1", NULL },		/* just past 3fff::/20 */
	{ "2620:4f:8001::1", NULL },
	/* IPv4 special */
	{ "0.0.0.0", "unspecified" },
	{ "0.1.2.3", "this_network" },
	{ "0.0.0.0/8", "unspecified" },
	{ "10.0.0.1", "private" },
	{ "10.0.0.0/8", "private" },
	{ "10.0.0.0/7", "private" },		/* a /7 holding 10/8 */
	{ "8.0.0.0/6", "private" },
	{ "0.0.0.0/0", "unspecified" },
	{ "172.16.0.0/12", "private" },
	{ "172.31.255.255", "private" },
	{ "172.0.0.0/8", "private" },
	{ "192.168.1.1", "private" },
	{ "100.64.0.1", "shared" },
	{ "100.127.255.255", "shared" },
	{ "100.0.0.0/8", "shared" },
	{ "127.0.0.1", "loopback" },
	{ "127.255.255.255", "loopback" },
	{ "169.254.10.10", "link_local" },
	{ "192.0.0.9", "reserved" },
	{ "192.0.0.170", "reserved" },
	{ "192.0.2.1", "documentation" },
	{ "198.51.100.7", "documentation" },
	{ "203.0.113.0/24", "documentation" },
	{ "203.0.0.0/16", "documentation" },
	{ "192.31.196.1", "anycast" },
	{ "192.52.193.1", "anycast" },
	{ "192.175.48.6", "anycast" },
	{ "192.88.99.1", "6to4" },
	{ "198.18.0.1", "benchmarking" },
	{ "198.19.255.255", "benchmarking" },
	{ "224.0.0.1", "multicast" },
	{ "239.255.255.255", "multicast" },
	{ "240.0.0.1", "reserved" },
	{ "255.255.255.254", "reserved" },
	{ "255.255.255.255", "broadcast" },
	{ "128.0.0.0/1", "link_local" },	/* overlaps many: the first listed wins */
	/* IPv6 special */
	{ "::", "unspecified" },
	{ "::1", "loopback" },
	{ "::/0", "unspecified" },
	{ "::2", "reserved" },
	{ "::81.2.69.5", "reserved" },		/* IPv4-compatible, deprecated */
	{ "64:ff9b::81.2.69.5", "nat64" },
	{ "64:ff9b:1::1", "nat64" },
	{ "100::1", "reserved" },		/* discard-only */
	{ "5f00::1", "reserved" },		/* SRv6 SIDs */
	{ "fc00::1", "unique_local" },
	{ "fd12:3456::1", "unique_local" },
	{ "fe80::1", "link_local" },
	{ "febf::1", "link_local" },
	{ "fec0::1", "reserved" },		/* site-local, deprecated */
	{ "ff02::1", "multicast" },
	{ "4000::1", "reserved" },
	{ "2001::1", "teredo" },
	{ "2001:0:5102:4505::1", "teredo" },
	{ "2001:1::1", "reserved" },		/* PCP anycast, IETF protocol */
	{ "2001:2::1", "benchmarking" },
	{ "2001:3::1", "anycast" },
	{ "2001:4:112::1", "anycast" },
	{ "2001:20::1", "reserved" },		/* ORCHIDv2 */
	{ "2001:1ff::1", "reserved" },
	{ "2001:db8::1", "documentation" },
	{ "2001:db8::/32", "documentation" },
	{ "2001:d00::/24", "documentation" },	/* holds 2001:db8::/32 */
	{ "2002:5102:4505::1", "6to4" },
	{ "2620:4f:8000::1", "anycast" },
	{ "3fff::1", "documentation" },
	{ "3fff:fff::1", "documentation" },
	{ "2000::/3", "teredo" },		/* overlaps many: first hit wins */
	{ "4000::/2", "reserved" },		/* outside 2000::/3 */
	{ "2a00::/7", NULL },
};

static void
test_special_table(void **state)
{
	size_t i;

	for (i = 0; i < N(special_cases); i++) {
		struct p25_prefix p;
		struct p25_err err = { 0 };
		const char *r;

		if (p25_prefix_parse(special_cases[i].in, &p, &err) != 0)
			fail_msg("'%s' does not parse: %s", special_cases[i].in, err.detail);
		r = p25_prefix_special(&p);
		if (special_cases[i].reason == NULL && r != NULL)
			fail_msg("'%s' is special (%s), want public", special_cases[i].in, r);
		if (special_cases[i].reason != NULL &&
		    (r == NULL || strcmp(r, special_cases[i].reason) != 0))
			fail_msg("'%s' is %s, want %s", special_cases[i].in,
				 r ? r : "public", special_cases[i].reason);
	}
}

/* ------------------------------------------------ contains/overlaps */

static const struct {
	const char *a, *b;
	bool a_contains_b, overlaps;
} rel_cases[] = {
	{ "81.2.69.0/24", "81.2.69.5", true, true },
	{ "81.2.69.0/24", "81.2.69.0/24", true, true },
	{ "81.2.69.0/24", "81.2.69.128/25", true, true },
	{ "81.2.69.128/25", "81.2.69.0/24", false, true },
	{ "81.2.69.0/25", "81.2.69.128/25", false, false },
	{ "81.2.69.0/24", "81.2.70.0/24", false, false },
	{ "0.0.0.0/0", "81.2.69.5", true, true },
	{ "81.2.69.5", "81.2.69.5", true, true },
	{ "81.2.69.5", "81.2.69.4", false, false },
	{ "81.2.69.0/24", "2a02:ff0::/32", false, false },
	{ "::/0", "81.2.69.5", false, false },
	{ "2a02:ff0::/32", "2a02:ff0:1::/48", true, true },
	{ "2a02:ff0:1::/48", "2a02:ff0::/32", false, true },
	{ "2a02:ff0:1::/48", "2a02:ff0:2::/48", false, false },
	{ "2a02:ff0:1::/63", "2a02:ff0:1:1::/64", true, true },
	{ "2a02:ff0:1::/64", "2a02:ff0:1:1::/64", false, false },
};

static void
test_relations(void **state)
{
	size_t i;

	for (i = 0; i < N(rel_cases); i++) {
		struct p25_prefix a, b;
		struct p25_err err = { 0 };

		assert_int_equal(p25_prefix_parse(rel_cases[i].a, &a, &err), 0);
		assert_int_equal(p25_prefix_parse(rel_cases[i].b, &b, &err), 0);
		if (p25_prefix_contains(&a, &b) != rel_cases[i].a_contains_b)
			fail_msg("contains(%s, %s) wrong", rel_cases[i].a, rel_cases[i].b);
		if (p25_prefix_overlaps(&a, &b) != rel_cases[i].overlaps ||
		    p25_prefix_overlaps(&b, &a) != rel_cases[i].overlaps)
			fail_msg("overlaps(%s, %s) wrong", rel_cases[i].a, rel_cases[i].b);
	}
}

/* -------------------------------------------------------- DNS names */

static const struct {
	const char *host, *zone;
	const char *dnsbl;	/* NULL: refused */
	const char *ptr;
} qname_cases[] = {
	{ "81.2.69.5", "zen.example", "5.69.2.81.zen.example", "5.69.2.81.in-addr.arpa" },
	{ "192.0.2.10", "bl.test", "10.2.0.192.bl.test", "10.2.0.192.in-addr.arpa" },
	{ "127.0.0.2", "bl.test", "2.0.0.127.bl.test", "2.0.0.127.in-addr.arpa" },
	/* RFC 5782 §2.4 style; the mapped form itself does not parse, so the
	 * nibble order is checked on a global address */
	{ "2a02:ff0:1::5", "bl6.test",
	  "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.f.f.0.2.0.a.2.bl6.test",
	  "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.f.f.0.2.0.a.2.ip6.arpa" },
	{ "2001:db8::567:89ab", "x",
	  "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.x",
	  "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
	{ "81.2.69.0/24", "zen.example", NULL, NULL },
	{ "2a02:ff0:1::/64", "zen.example", NULL, NULL },
	{ "81.2.69.5", "", NULL, "5.69.2.81.in-addr.arpa" },
};

static void
test_qnames(void **state)
{
	size_t i;

	for (i = 0; i < N(qname_cases); i++) {
		struct p25_prefix p;
		struct p25_err err = { 0 };
		char buf[P25_QNAME_MAX];
		int n;

		assert_int_equal(p25_prefix_parse(qname_cases[i].host, &p, &err), 0);
		n = p25_dnsbl_qname(&p, qname_cases[i].zone, buf, sizeof(buf));
		if (qname_cases[i].dnsbl) {
			assert_int_equal(n, (int)strlen(qname_cases[i].dnsbl));
			assert_string_equal(buf, qname_cases[i].dnsbl);
		} else {
			assert_int_equal(n, -1);
			assert_string_equal(buf, "");
		}
		n = p25_ptr_qname(&p, buf, sizeof(buf));
		if (qname_cases[i].ptr) {
			assert_int_equal(n, (int)strlen(qname_cases[i].ptr));
			assert_string_equal(buf, qname_cases[i].ptr);
		} else {
			assert_int_equal(n, -1);
		}
	}
}

/* A buffer one byte short fails cleanly, an exact one works. */
static void
test_qname_buffer(void **state)
{
	struct p25_prefix p;
	struct p25_err err = { 0 };
	char buf[P25_QNAME_MAX];
	const char *want6 = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.f.f.0.2.0.a.2.ip6.arpa";
	size_t len;

	assert_int_equal(p25_prefix_parse("81.2.69.5", &p, &err), 0);
	len = strlen("5.69.2.81.in-addr.arpa");
	assert_int_equal(p25_ptr_qname(&p, buf, len), -1);
	assert_string_equal(buf, "");
	assert_int_equal(p25_ptr_qname(&p, buf, len + 1), (int)len);
	assert_int_equal(p25_ptr_qname(&p, buf, 0), -1);
	assert_int_equal(p25_ptr_qname(&p, buf, 5), -1);

	assert_int_equal(p25_prefix_parse("2a02:ff0:1::5", &p, &err), 0);
	len = strlen(want6);
	for (size_t l = 1; l <= len; l++)
		assert_int_equal(p25_ptr_qname(&p, buf, l), -1);
	assert_int_equal(p25_ptr_qname(&p, buf, len + 1), (int)len);
	assert_string_equal(buf, want6);
}

/* ----------------------------------------------------- generic rDNS */

static const struct {
	const char *host, *name;
	bool generic;
} generic_cases[] = {
	{ "81.2.69.5", "81-2-69-5.example.net", true },
	{ "81.2.69.5", "5.69.2.81.dyn.example", true },
	{ "81.2.69.5", "5-69-2-81.dyn.example", true },
	{ "81.2.69.5", "81.2.69.5.static.example", true },
	{ "81.2.69.5", "ip-81-2-69-5.eu-west-1.compute.example", true },
	{ "81.2.69.5", "host81_2_69_5.example", true },
	{ "81.2.69.5", "081002069005.example", true },
	{ "81.2.69.5", "cpe-081-002-069-005.example", true },
	{ "81.2.69.5", "static-51024505.example", true },
	{ "81.2.69.5", "IP51024505.EXAMPLE", true },
	{ "81.2.69.5", "1359103237.example", true },
	{ "81.2.69.5", "81-2-69-5", true },
	{ "81.2.69.5", "mail.example.com", false },
	{ "81.2.69.5", "mx1.example.net", false },
	{ "81.2.69.5", "81-2-69-50.example.net", false },
	{ "81.2.69.5", "181-2-69-5.example.net", false },
	{ "81.2.69.5", "81-2-69.example.net", false },
	{ "81.2.69.5", "81-2-69-6.example.net", false },
	{ "81.2.69.5", "81-2-96-5.example.net", false },
	{ "81.2.69.5", "9081002069005.example", false },
	{ "81.2.69.5", "a51024505b.example", false },
	{ "81.2.69.5", "", false },
	{ "192.0.2.10", "10.2.0.192.in-addr.example", true },
	{ "192.0.2.10", "mail-192-0-2-11.example", false },
	{ "2a02:ff0:1::5", "2a02-ff0-1-0-0-0-0-5.dyn.example", true },
	{ "2a02:ff0:1::5", "2a02-ff0-1--5.dyn.example", true },
	{ "2a02:ff0:1::5", "host-0-0-0-5.example", true },
	{ "2a02:ff0:1::5", "0000000000000005.example", true },
	{ "2a02:ff0:1::5", "2a020ff0000100000000000000000005.example", true },
	{ "2a02:ff0:1::5", "mail.example.com", false },
	{ "2a02:ff0:1::5", "host-0-0-0-6.example", false },
	{ "2a02:ff0:1:0:1c2d:3e4f:5a6b:7c8d", "1c2d-3e4f-5a6b-7c8d.pool.example", true },
	{ "2a02:ff0:1:0:1c2d:3e4f:5a6b:7c8d", "1C2D.3E4F.5A6B.7C8D.pool.example", true },
	{ "2a02:ff0:1:0:1c2d:3e4f:5a6b:7c8d", "ip-1c2d3e4f5a6b7c8d.example", true },
	{ "2a02:ff0:1:0:1c2d:3e4f:5a6b:7c8d", "mx.example", false },
	{ "2a02:ff0:1:0:1c2d:3e4f:5a6b:7c8d", "1c2d-3e4f-5a6b-7c8e.example", false },
};

static void
test_generic_table(void **state)
{
	size_t i;
	char longname[400];

	for (i = 0; i < N(generic_cases); i++) {
		struct p25_prefix p;
		struct p25_err err = { 0 };

		assert_int_equal(p25_prefix_parse(generic_cases[i].host, &p, &err), 0);
		if (p25_ptr_is_generic(&p, generic_cases[i].name) != generic_cases[i].generic)
			fail_msg("generic(%s, %s) should be %s", generic_cases[i].host,
				 generic_cases[i].name,
				 generic_cases[i].generic ? "true" : "false");
	}
	/* overlong names (invalid DNS) are not judged */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memcpy(longname, "81-2-69-5.", 10);
	{
		struct p25_prefix p;
		struct p25_err err = { 0 };
		assert_int_equal(p25_prefix_parse("81.2.69.5", &p, &err), 0);
		assert_false(p25_ptr_is_generic(&p, longname));
		assert_false(p25_ptr_is_generic(&p, NULL));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_echo),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_special_table),
		cmocka_unit_test(test_relations),
		cmocka_unit_test(test_qnames),
		cmocka_unit_test(test_qname_buffer),
		cmocka_unit_test(test_generic_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
