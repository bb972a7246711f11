/*
 * test_enforcer_feed.c — parsing what the API answers on the enforcement
 * endpoints (enforcer/feed.c): feed answers, snapshots and token headers;
 * and the pieces of enforcer/util.c they rely on (capped buffers, the
 * retry backoff).  Data-driven: each case is an answer and the verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "enforcer.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) (lit), (sizeof(lit) - 1)
#define T "eyJhbGciOiJFZERTQSJ9.e30.c2ln"	/* token-shaped; not verified here */

static void
test_feed_good(void **state)
{
	static const char *answer =
		"{\"events\":["
		"{\"seq\":8,\"type\":\"grant\",\"exemption\":\"ex-1\",\"cidr\":\"81.2.69.5/32\","
		"\"token\":\"" T "\"},"
		"{\"seq\":9,\"type\":\"renew\",\"exemption\":\"ex-1\",\"cidr\":\"81.2.69.5/32\","
		"\"token\":\"" T "x\"},"
		"{\"seq\":11,\"type\":\"revoke\",\"exemption\":\"ex-1\",\"cidr\":\"81.2.69.5/32\","
		"\"reason\":\"withdrawn by the tenant\"},"
		"{\"seq\":12,\"type\":\"suspend-all\",\"exemption\":\"ex-2\"}"
		"],\"next\":12}";
	struct enf_feed f;
	char err[256];

	assert_int_equal(enf_feed_parse(answer, strlen(answer), 7, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.next, 12);
	assert_int_equal(f.ev[0].seq, 8);
	assert_int_equal(f.ev[0].type, ENF_EV_GRANT);
	assert_string_equal(f.ev[0].exemption, "ex-1");
	assert_string_equal(f.ev[0].cidr, "81.2.69.5/32");
	assert_string_equal(f.ev[0].token, T);
	assert_int_equal(f.ev[1].type, ENF_EV_RENEW);
	assert_string_equal(f.ev[1].token, T "x");
	assert_int_equal(f.ev[2].type, ENF_EV_REVOKE);
	assert_null(f.ev[2].token);
	assert_string_equal(f.ev[2].reason, "withdrawn by the tenant");
	assert_int_equal(f.ev[3].type, ENF_EV_UNKNOWN);	/* kept to be skipped */
	assert_string_equal(f.ev[3].type_name, "suspend-all");
	enf_feed_free(&f);

	/* nothing new: an empty list and the position asked from */
	assert_int_equal(enf_feed_parse(S("{\"events\":[],\"next\":7}"), 7, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.next, 7);
	enf_feed_free(&f);
	/* the API may omit members it has no value for (json_strip_nulls) */
	assert_int_equal(enf_feed_parse(S("{\"events\":[{\"seq\":8,\"type\":\"revoke\","
					  "\"exemption\":\"e\"}],\"next\":8}"), 7, &f, err,
					sizeof(err)), 0);
	assert_string_equal(f.ev[0].reason, "");
	enf_feed_free(&f);
}

static void
test_feed_bad(void **state)
{
	static const struct {
		const char *json;
		const char *why;	/* a piece of the message */
	} cases[] = {
		{ "", "not JSON" },
		{ "[1]", "no events" },
		{ "{\"events\":{},\"next\":1}", "no events" },
		{ "{\"events\":[]}", "next" },
		{ "{\"events\":[],\"next\":-1}", "next" },
		{ "{\"events\":[],\"next\":\"7\"}", "next" },
		{ "{\"events\":[],\"next\":7,\"next\":8}", "not JSON" },	/* duplicate */
		{ "{\"events\":[1],\"next\":8}", "seq" },
		{ "{\"events\":[{\"type\":\"grant\"}],\"next\":8}", "seq" },
		/* positions must move forward from where we asked */
		{ "{\"events\":[{\"seq\":7,\"type\":\"revoke\",\"exemption\":\"e\"}],\"next\":7}",
		  "not after" },
		{ "{\"events\":[{\"seq\":9,\"type\":\"revoke\",\"exemption\":\"e\"},"
		  "{\"seq\":9,\"type\":\"revoke\",\"exemption\":\"e\"}],\"next\":9}", "not after" },
		{ "{\"events\":[{\"seq\":9,\"type\":\"revoke\",\"exemption\":\"e\"}],\"next\":8}",
		  "behind" },
		{ "{\"events\":[{\"seq\":8,\"type\":\"revoke\"}],\"next\":8}", "exemption" },
		{ "{\"events\":[{\"seq\":8,\"type\":\"revoke\",\"exemption\":\"\"}],\"next\":8}",
		  "revoke without" },
		{ "{\"events\":[{\"seq\":8}],\"next\":8}", "no type" },
		{ "{\"events\":[{\"seq\":8,\"type\":\"grant\",\"exemption\":\"e\"}],\"next\":8}",
		  "without a token" },
		{ "{\"events\":[{\"seq\":8,\"type\":\"renew\",\"token\":7}],\"next\":8}",
		  "without a token" },
		{ "{\"events\":[{\"seq\":8,\"type\":\"grant\",\"token\":\"\"}],\"next\":8}",
		  "without a token" },
		{ "{\"events\":[{\"seq\":8,\"type\":\"grant\",\"token\":\"a\\u0000b\"}],\"next\":8}",
		  "not JSON" },	/* jansson refuses NUL in strings */
		{ "{\"events\":[{\"seq\":8,\"type\":\"grant\",\"token\":\"t\","
		  "\"exemption\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}],"
		  "\"next\":8}", "bad exemption" },
	};
	struct enf_feed f;
	char err[256];
	size_t i;

	for (i = 0; i < N(cases); i++) {
		err[0] = '\0';
		if (enf_feed_parse(cases[i].json, strlen(cases[i].json), 7, &f, err,
				   sizeof(err)) != -1)
			fail_msg("accepted: %s", cases[i].json);
		if (!strstr(err, cases[i].why))
			fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].json, err, cases[i].why);
		assert_int_equal(f.n, 0);
		assert_null(f.ev);
	}
}

/* A token larger than any token may be is refused before it is copied. */
static void
test_feed_huge_token(void **state)
{
	size_t n = P25_TOKEN_MAX + 1, len;
	char *big = malloc(n + 128), err[256];
	struct enf_feed f;

	assert_non_null(big);
	len = (size_t)sprintf(big, "{\"events\":[{\"seq\":8,\"type\":\"grant\",\"token\":\"");
	memset(big + len, 'a', n);
	len += n;
	len += (size_t)sprintf(big + len, "\"}],\"next\":8}");
	assert_int_equal(enf_feed_parse(big, len, 7, &f, err, sizeof(err)), -1);
	free(big);
}

static void
test_snapshot(void **state)
{
	static const char *bad[] = {
		"", "{}", "{\"seq\":1}", "{\"tokens\":[]}", "{\"seq\":-1,\"tokens\":[]}",
		"{\"seq\":1,\"tokens\":[1]}", "{\"seq\":1,\"tokens\":[\"\"]}",
		"{\"seq\":1,\"tokens\":\"" T "\"}", "{\"seq\":1.5,\"tokens\":[]}",
	};
	const char *good = "{\"seq\":31,\"tokens\":[\"" T "\",\"" T "y\"]}";
	struct enf_snapshot s;
	char err[256];
	size_t i;

	assert_int_equal(enf_snapshot_parse(good, strlen(good), &s, err, sizeof(err)), 0);
	assert_int_equal(s.seq, 31);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.tokens[1], T "y");
	enf_snapshot_free(&s);
	assert_int_equal(enf_snapshot_parse(S("{\"seq\":0,\"tokens\":[]}"), &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	enf_snapshot_free(&s);
	for (i = 0; i < N(bad); i++) {
		if (enf_snapshot_parse(bad[i], strlen(bad[i]), &s, err, sizeof(err)) != -1)
			fail_msg("accepted snapshot: %s", bad[i]);
		assert_null(s.tokens);
	}
}

/* What a snapshot means, by jansson alone: the reference for the fast
 * path of enf_snapshot_parse.  0 with seq and tokens, -1 refused. */
static int
snapshot_ref(const char *in, long long *seq, json_t **toks)
{
	json_t *root = json_loads(in, JSON_REJECT_DUPLICATES, NULL), *t, *v;
	size_t i;

	*toks = NULL;
	t = json_object_get(root, "tokens");
	v = json_object_get(root, "seq");
	if (!json_is_object(root) || !json_is_array(t) || !json_is_integer(v) ||
	    json_integer_value(v) < 0) {
		json_decref(root);
		return -1;
	}
	json_array_foreach(t, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > P25_TOKEN_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			json_decref(root);
			return -1;
		}
	}
	*seq = json_integer_value(json_object_get(root, "seq"));
	*toks = json_incref(t);
	json_decref(root);
	return 0;
}

/* The snapshot parser (a fast path for p25's own shape, jansson for any
 * other) means what jansson means, shape by shape. */
static void
test_snapshot_shapes(void **state)
{
	static const char *in[] = {
		"{\"seq\":7,\"tokens\":[\"a.b.c\",\"d.e.f\"]}",
		" {\n \"seq\" : 7 ,\r\n\t\"tokens\" : [ \"a.b.c\" , \n \"d.e.f\" ] } \n",
		"{\"tokens\":[\"a.b.c\"],\"seq\":0}",
		"{\"seq\":7,\"tokens\":[ ]}",
		"{\"seq\":7,\"tokens\":[\"a\\/b\"]}",
		"{\"seq\":7,\"tokens\":[\"a\\u002eb\"]}",
		"{\"seq\":7,\"tokens\":[\"a b\"]}",
		"{\"seq\":7,\"tokens\":[\"a\\u0000b\"]}",
		"{\"seq\":7,\"tokens\":[\"a.b\"],\"extra\":true}",
		"{\"seq\":7,\"seq\":8,\"tokens\":[]}",
		"{\"seq\":7,\"tokens\":[],\"tokens\":[]}",
		"{\"seq\":07,\"tokens\":[]}",
		"{\"seq\":-0,\"tokens\":[]}",
		"{\"seq\":1e3,\"tokens\":[]}",
		"{\"seq\":123456789012345678,\"tokens\":[]}",
		"{\"seq\":1234567890123456789,\"tokens\":[]}",
		"{\"seq\":99999999999999999999,\"tokens\":[]}",
		"{\"seq\":7,\"tokens\":[\"a.b\",]}",
		"{\"seq\":7,\"tokens\":[\"a.b\"]} x",
		"{\"seq\":7,\"tokens\":[\"a.b\"]",
		"{\"seq\":7,\"tokens\":[\"a.b\"",
		"{\"seq\":7,\"tokens\":[[\"a.b\"]]}",
		"{\"seq\":7,\"tokens\":[\"\"]}",
		"{\"seq\":7 \"tokens\":[]}",
		"[{\"seq\":7,\"tokens\":[]}]",
		"{\"seq\":true,\"tokens\":[]}",
	};
	struct enf_snapshot s;
	json_t *toks;
	long long seq;
	char err[256];
	size_t i, k;
	int rc, ref;

	(void)state;
	for (i = 0; i < N(in); i++) {
		rc = enf_snapshot_parse(in[i], strlen(in[i]), &s, err, sizeof(err));
		ref = snapshot_ref(in[i], &seq, &toks);
		if (rc != ref)
			fail_msg("snapshot %s: %d, jansson says %d", in[i], rc, ref);
		if (rc == 0) {
			assert_int_equal(s.seq, seq);
			assert_int_equal(s.n, json_array_size(toks));
			for (k = 0; k < s.n; k++)
				assert_string_equal(s.tokens[k],
						    json_string_value(json_array_get(toks, k)));
		} else {
			assert_null(s.tokens);
		}
		json_decref(toks);
		enf_snapshot_free(&s);
	}
}

static void
test_token_kid(void **state)
{
	/* {"alg":"EdDSA","typ":"p25-exemption+jwt","kid":"abc"} */
	const char *t = "eyJhbGciOiJFZERTQSIsInR5cCI6InAyNS1leGVtcHRpb24rand0Iiwia2lkIjoiYWJjIn0"
			".e30.c2ln";
	char kid[64];

	assert_int_equal(enf_token_kid(t, kid, sizeof(kid)), 0);
	assert_string_equal(kid, "abc");
	assert_int_equal(enf_token_kid(t, kid, 3), -1);	/* does not fit */
	assert_int_equal(enf_token_kid(T, kid, sizeof(kid)), -1);	/* no kid */
	assert_int_equal(enf_token_kid("no-dots", kid, sizeof(kid)), -1);
	assert_int_equal(enf_token_kid("%%%.e30.x", kid, sizeof(kid)), -1);
}

static void
test_buf(void **state)
{
	struct enf_buf b;

	enf_buf_init(&b, 10);
	enf_buf_printf(&b, "%s", "12345");
	enf_buf_add(&b, "6789", 4);
	assert_false(b.failed);
	assert_string_equal(b.p, "123456789");
	enf_buf_add(&b, "ab", 2);	/* 11 > 10 */
	assert_true(b.failed);
	enf_buf_add(&b, "", 0);
	assert_true(b.failed);	/* stays failed */
	assert_string_equal(b.p, "123456789");
	enf_buf_reset(&b);
	assert_false(b.failed);
	enf_buf_printf(&b, "%d", 1234567890);
	assert_string_equal(b.p, "1234567890");
	enf_buf_free(&b);
}

static void
test_backoff(void **state)
{
	unsigned a;
	long d;

	/* equal jitter: [d/2, d], d doubling from the base to the cap */
	assert_int_equal(enf_backoff_ms(0, 1000, 60000, 0.0), 500);
	assert_int_equal(enf_backoff_ms(0, 1000, 60000, 0.999999), 999);
	assert_int_equal(enf_backoff_ms(1, 1000, 60000, 0.0), 1000);
	assert_int_equal(enf_backoff_ms(3, 1000, 60000, 0.0), 4000);
	assert_int_equal(enf_backoff_ms(6, 1000, 60000, 0.0), 30000);	/* 64 s capped at 60 */
	for (a = 0; a < 200; a++) {
		d = enf_backoff_ms(a, 1000, 60000, 0.5);
		assert_true(d >= 250 && d <= 60000);
		d = enf_backoff_ms(a, 1000, 60000, 1.0);	/* out of range: clamped */
		assert_true(d <= 60000);
	}
	/* a cap below the base is raised to it; zero base still waits */
	assert_int_equal(enf_backoff_ms(5, 2000, 100, 0.0), 1000);
	assert_true(enf_backoff_ms(0, 0, 0, 0.0) >= 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feed_good),
		cmocka_unit_test(test_feed_bad),
		cmocka_unit_test(test_feed_huge_token),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_snapshot_shapes),
		cmocka_unit_test(test_token_kid),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
