/*
 * test_enforcer_render.c — the nftables rule set p25-enforcer renders from
 * a set of claims (enforcer/render.c), and the digest that decides when it
 * is reloaded (enforcer/state.c).
 *
 * Render works on verified claims only, so the states here are built from
 * claims directly (the token text is never read by the renderer).  The
 * rendered scripts are also loaded into the kernel by the namespace test
 * (tests/integration/enforce_netns.test.mjs) and checked with `nft -c`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "enforcer.h"

#define NOW 1767225600LL	/* 2026-01-01T00:00:00Z */

static void
add(struct enf_state *st, const char *jti, const char *cidr, long long exp)
{
	static const unsigned char pk[32];
	struct p25_claims c = { 0 };
	struct enf_entry *e;

	st->v = realloc(st->v, (st->n + 1) * sizeof(*st->v));
	assert_non_null(st->v);
	e = &st->v[st->n++];
	memset(e, 0, sizeof(*e));
	snprintf(c.jti, sizeof(c.jti), "%s", jti);
	snprintf(c.cidr, sizeof(c.cidr), "%s", cidr);
	c.iat = NOW - 60;
	c.nbf = NOW - 60;
	c.exp = exp;
	c.port = 25;
	c.rate = -1;
	assert_int_equal(enf_entry_set(e, "not-read-by-render", &c, pk), 0);
	st->cap = st->n;
}

/* Sets an entry's cidr and destinations (its strings live in its block). */
static void
set_scope(struct enf_entry *e, const char *cidr, int ndest, ...)
{
	struct p25_claims c;
	va_list ap;
	int k;

	enf_entry_claims(e, &c);
	if (cidr)
		snprintf(c.cidr, sizeof(c.cidr), "%s", cidr);
	c.ndest = ndest;
	va_start(ap, ndest);
	for (k = 0; k < ndest; k++)
		snprintf(c.dest[k], sizeof(c.dest[k]), "%s", va_arg(ap, const char *));
	va_end(ap);
	assert_int_equal(enf_entry_set(e, e->token, &c, e->pk), 0);
	assert_string_equal(e->token, "not-read-by-render");
	assert_int_equal(e->c.ndest, ndest);
}

static struct enf_entry *
last(struct enf_state *st)
{
	return &st->v[st->n - 1];
}

static char *
render(const struct enf_state *st, struct enf_render_info *info)
{
	struct enf_buf b;

	enf_buf_init(&b, 1 << 20);
	assert_int_equal(enf_render_ex(st, NOW, &b, info), 0);
	assert_false(b.failed);
	return b.p;
}

static void
has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("rule set lacks \"%s\":\n%s", needle, text);
}

static void
lacks(const char *text, const char *needle)
{
	if (strstr(text, needle))
		fail_msg("rule set has \"%s\":\n%s", needle, text);
}

/* No exemption: the port is closed for everyone, with a reset, on both hooks. */
static void
test_empty(void **state)
{
	struct enf_state st;
	struct enf_render_info info;
	char *t;

	enf_state_init(&st);
	st.seq = 7;
	t = render(&st, &info);
	has(t, "table inet p25\ndelete table inet p25\ntable inet p25 {\n");
	has(t, "# feed position 7, rendered at 1767225600 (unix time), 0 exemption(s) active\n");
	has(t, "\tset p25_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval,timeout\n\t}\n");
	has(t, "\tset p25_v6 {\n\t\ttype ipv6_addr\n\t\tflags interval,timeout\n\t}\n");
	lacks(t, "elements");
	has(t, "\tchain p25_smtp {\n\t\tip saddr @p25_v4 accept\n\t\tip6 saddr @p25_v6 accept\n"
	       "\t\treject with tcp reset\n\t}\n");
	has(t, "\t\ttype filter hook forward priority filter; policy accept;\n"
	       "\t\ttcp dport 25 jump p25_smtp\n");
	has(t, "\t\ttype filter hook output priority filter; policy accept;\n"
	       "\t\ttcp dport 25 jump p25_smtp\n");
	assert_int_equal(info.v4, 0);
	assert_int_equal(info.v6, 0);
	assert_int_equal(info.scoped, 0);
	free(t);
	enf_state_cleanup(&st);
}

/* Unrestricted tokens are set elements with a timeout at their exp. */
static void
test_sets(void **state)
{
	struct enf_state st;
	struct enf_render_info info;
	char *t;

	enf_state_init(&st);
	add(&st, "ex-a", "81.2.69.5/32", NOW + 3600);
	add(&st, "ex-b", "2a02:ff0:1::/48", NOW + 86400);
	add(&st, "ex-c", "81.2.69.6/32", NOW + 10);
	add(&st, "ex-old", "81.2.69.9/32", NOW);	/* exp == now: expired */
	add(&st, "ex-older", "81.2.70.0/24", NOW - 5);
	t = render(&st, &info);
	has(t, "3 exemption(s) active");
	has(t, "\t\telements = {\n\t\t\t81.2.69.5/32 timeout 3600s,\n"
	       "\t\t\t81.2.69.6/32 timeout 10s\n\t\t}\n");
	has(t, "\t\telements = {\n\t\t\t2a02:ff0:1::/48 timeout 86400s\n\t\t}\n");
	lacks(t, "81.2.69.9");
	lacks(t, "81.2.70.0");
	assert_int_equal(info.v4, 2);
	assert_int_equal(info.v6, 1);
	free(t);
	enf_state_cleanup(&st);
}

/* Nested prefixes: nft refuses overlapping intervals, the outer one opens both. */
static void
test_denest(void **state)
{
	struct enf_state st;
	struct enf_render_info info;
	char *t;

	enf_state_init(&st);
	add(&st, "ex-1", "81.2.69.5/32", NOW + 100);
	add(&st, "ex-2", "81.2.69.0/26", NOW + 200);
	add(&st, "ex-3", "81.2.69.64/26", NOW + 300);	/* adjacent, disjoint: kept */
	add(&st, "ex-4", "81.2.69.0/26", NOW + 400);	/* the same prefix twice */
	add(&st, "ex-5", "2a02:ff0:1:2::/64", NOW + 100);
	add(&st, "ex-6", "2a02:ff0:1::/48", NOW + 100);
	add(&st, "ex-7", "2a02:ff0:2::/48", NOW + 100);
	t = render(&st, &info);
	lacks(t, "81.2.69.5/32");
	has(t, "81.2.69.0/26 timeout");
	has(t, "81.2.69.64/26 timeout 300s");
	lacks(t, "2a02:ff0:1:2::/64");
	has(t, "2a02:ff0:1::/48 timeout 100s");
	has(t, "2a02:ff0:2::/48 timeout 100s");
	assert_int_equal(info.v4, 2);
	assert_int_equal(info.v6, 2);
	free(t);
	enf_state_cleanup(&st);
}

/* A token far in the future gets a capped kernel timeout. */
static void
test_timeout_cap(void **state)
{
	struct enf_state st;
	char *t, want[64];

	enf_state_init(&st);
	add(&st, "ex-long", "81.2.69.5/32", NOW + 400LL * 86400);
	t = render(&st, NULL);
	snprintf(want, sizeof(want), "81.2.69.5/32 timeout %llds\n", ENF_TIMEOUT_MAX);
	has(t, want);
	free(t);
	enf_state_cleanup(&st);
}

/* dest and rate scopes: own rules, bounded by meta time, not in the sets. */
static void
test_scoped(void **state)
{
	struct enf_state st;
	struct enf_render_info info;
	struct enf_entry *e;
	char *t;

	enf_state_init(&st);
	add(&st, "ex-dest", "81.2.69.7/32", NOW + 600);
	e = last(&st);
	set_scope(e, NULL, 3, "192.0.2.0/24", "2001:db8::/32" /* other family */,
		  "198.51.100.1/32");

	add(&st, "ex-rate", "81.2.69.8/32", NOW + 700);
	last(&st)->c.rate = 120;

	add(&st, "ex-both", "2a02:ff0:1::/64", NOW + 800);
	e = last(&st);
	e->c.rate = 3;
	set_scope(e, NULL, 2, "2001:db8:25::/48", "2001:db8:25:1::/64" /* nested */);

	add(&st, "ex-nofam", "81.2.69.9/32", NOW + 900);
	e = last(&st);
	set_scope(e, NULL, 1, "2001:db8::/32");

	t = render(&st, &info);
	has(t, "\t\t# exemption ex-dest: 2 destination(s)\n"
	       "\t\tip saddr 81.2.69.7/32 ip daddr { 192.0.2.0/24, 198.51.100.1/32 }"
	       " meta time < 1767226200 accept\n");
	has(t, "\t\t# exemption ex-rate: rate 120/hour (new connections)\n"
	       "\t\tip saddr 81.2.69.8/32 meta time < 1767226300 ct state established accept\n"
	       "\t\tip saddr 81.2.69.8/32 meta time < 1767226300 ct state new"
	       " limit rate 120/hour burst 10 packets accept\n");
	has(t, "\t\tip6 saddr 2a02:ff0:1::/64 ip6 daddr { 2001:db8:25::/48 } meta time < 1767226400"
	       " ct state new limit rate 3/hour burst 3 packets accept\n");
	has(t, "\t\t# exemption ex-nofam: 0 destination(s)\n"
	       "\t\t# no destination of the source's address family: nothing opened\n");
	lacks(t, "81.2.69.9");
	lacks(t, "2001:db8::/32");
	lacks(t, "elements");	/* none of them is unrestricted */
	/* the scoped rules come before the set rules and the reset */
	assert_true(strstr(t, "ex-dest") < strstr(t, "ip saddr @p25_v4 accept"));
	assert_int_equal(info.scoped, 3);
	free(t);
	enf_state_cleanup(&st);
}

/* Token text never reaches the script: an odd jti is not printed. */
static void
test_no_injection(void **state)
{
	struct enf_state st;
	char *t;

	enf_state_init(&st);
	add(&st, "x\n}\nflush ruleset\n#", "81.2.69.7/32", NOW + 600);
	last(&st)->c.rate = 5;
	add(&st, "bad-cidr", "81.2.69.7/24", NOW + 600);	/* not normalized: dropped */
	t = render(&st, NULL);
	lacks(t, "flush ruleset");
	has(t, "# exemption (unprintable id): rate 5/hour");
	lacks(t, "81.2.69.7/24");
	free(t);
	enf_state_cleanup(&st);
}

/* Output overflow is reported, not truncated silently. */
static void
test_overflow(void **state)
{
	struct enf_state st;
	struct enf_buf b;

	enf_state_init(&st);
	add(&st, "ex-a", "81.2.69.5/32", NOW + 3600);
	enf_buf_init(&b, 100);
	assert_int_equal(enf_render(&st, NOW, &b), -1);
	assert_true(b.failed);
	enf_buf_free(&b);
	enf_state_cleanup(&st);
}

/* The digest: structure only; renewals move timeouts, not the digest. */
static void
test_digest_and_deadlines(void **state)
{
	struct enf_state st;
	unsigned char d1[32], d2[32];

	enf_state_init(&st);
	add(&st, "ex-a", "81.2.69.5/32", NOW + 3600);
	add(&st, "ex-b", "81.2.69.6/32", NOW + 7200);
	enf_state_digest(&st, NOW, d1);
	st.v[0].c.exp = NOW + 90000;	/* renewed */
	st.v[0].c.iat = NOW;
	enf_state_digest(&st, NOW, d2);
	assert_memory_equal(d1, d2, 32);
	set_scope(&st.v[0], "81.2.69.4/32", 0);
	enf_state_digest(&st, NOW, d2);
	assert_memory_not_equal(d1, d2, 32);
	set_scope(&st.v[0], "81.2.69.5/32", 0);
	st.v[0].c.rate = 10;
	enf_state_digest(&st, NOW, d2);
	assert_memory_not_equal(d1, d2, 32);
	st.v[0].c.rate = -1;
	/* an expired entry leaves the digest even before expire() removed it */
	enf_state_digest(&st, NOW + 7200, d2);
	enf_state_digest(&st, NOW, d1);
	assert_memory_not_equal(d1, d2, 32);

	/* deadlines: never applied → exp */
	assert_int_equal(enf_state_next_deadline(&st, 600), NOW + 7200);
	enf_state_mark_applied(&st, NOW);
	assert_int_equal(st.v[0].applied_exp, NOW + 90000);
	assert_false(enf_state_refresh_due(&st, NOW, 600));
	/* ex-b renewed after the load: its loaded timeout must be refreshed 600 s early */
	st.v[1].c.exp = NOW + 100000;
	assert_int_equal(enf_state_next_deadline(&st, 600), NOW + 7200 - 600);
	assert_false(enf_state_refresh_due(&st, NOW + 6599, 600));
	assert_true(enf_state_refresh_due(&st, NOW + 6600, 600));
	enf_state_mark_applied(&st, NOW + 6600);
	assert_false(enf_state_refresh_due(&st, NOW + 6600, 600));
	assert_int_equal(enf_state_next_deadline(&st, 600), NOW + 90000);
	/* expiry by the clock */
	assert_int_equal(enf_state_next_expiry(&st), NOW + 90000);
	assert_int_equal(enf_state_expire(&st, NOW + 90000), 1);
	assert_int_equal(st.n, 1);
	assert_string_equal(st.v[0].c.jti, "ex-b");
	enf_state_cleanup(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_denest),
		cmocka_unit_test(test_timeout_cap),
		cmocka_unit_test(test_scoped),
		cmocka_unit_test(test_no_injection),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_digest_and_deadlines),
	};

	enf_log_set_level(ENF_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
