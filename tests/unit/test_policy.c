/* test_policy.c — the policy as data: parsing and decisions (core/policy.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "p25/err.h"
#include "p25/vetting.h"

static void
decide(const struct p25_policy *p, const char *const *codes, struct p25_decision *d)
{
	struct p25_checks c = { 0 };

	p25_checks_add(&c, "ownership", "addresses", P25_PASS, NULL, "ok");
	for (; *codes; codes++)
		p25_checks_add(&c, "x", "81.2.69.5/32", P25_FAIL, *codes, "fix it");
	p25_policy_decide(p, &c, d);
	p25_checks_free(&c);
}

static const struct {
	const char *codes[4];
	const char *decision;
} cases[] = {
	{ { NULL }, "approve" },
	{ { "dnsbl_pbl", NULL }, "approve" },
	{ { "spf_fail", "dmarc_missing", NULL }, "approve" },
	{ { "dnsbl_sbl", NULL }, "deny" },
	{ { "dnsbl_css", NULL }, "deny" },
	{ { "dnsbl_xbl", NULL }, "deny" },
	{ { "dnsbl_drop", NULL }, "deny" },
	{ { "dnsbl_error", NULL }, "needs_review" },
	{ { "rdns_missing", NULL }, "needs_info" },
	{ { "rdns_generic", "account_young", NULL }, "needs_review" },
	{ { "account_unverified", NULL }, "needs_review" },
	{ { "account_standing", "rdns_missing", NULL }, "deny" },
	{ { "address_not_held", NULL }, "deny" },
	{ { "no_such_code", NULL }, "needs_review" },
};

static void
test_default_decisions(void **state)
{
	struct p25_policy p;
	size_t i;

	p25_policy_defaults(&p);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct p25_decision d;
		decide(&p, cases[i].codes, &d);
		assert_string_equal(d.decision, cases[i].decision);
		if (strcmp(d.decision, "deny") == 0)
			assert_int_equal(d.reapply_days, 30);
		else
			assert_int_equal(d.reapply_days, 0);
		p25_decision_free(&d);
	}
}

static void
test_reason_codes_and_message(void **state)
{
	static const char *const codes[] = { "dnsbl_sbl", "dnsbl_pbl", "rdns_missing", NULL };
	struct p25_policy p;
	struct p25_decision d;

	p25_policy_defaults(&p);
	decide(&p, codes, &d);
	/* warnings are not reasons; the rest are, each once */
	assert_int_equal(json_array_size(d.reason_codes), 2);
	assert_string_equal(json_string_value(json_array_get(d.reason_codes, 0)), "dnsbl_sbl");
	assert_non_null(strstr(d.message, "81.2.69.5/32: fix it"));
	p25_decision_free(&d);
}

static void
test_parse(void **state)
{
	static const char good[] = "{\"version\":\"t-1\",\"actions\":{\"dnsbl_pbl\":\"deny\"},"
				   "\"cooldown_hours\":[2,48],\"monitor_interval_seconds\":60}";
	static const char *const bad[] = {
		"{\"actions\":{}}",					/* no version */
		"{\"version\":\"v\",\"extra\":1}",			/* unknown key */
		"{\"version\":\"v\",\"actions\":{\"nope\":\"deny\"}}",	/* unknown code */
		"{\"version\":\"v\",\"actions\":{\"dnsbl_sbl\":\"maybe\"}}",	/* unknown action */
		"{\"version\":\"v\",\"actions\":{\"dnsbl_error\":\"warn\"}}",	/* unknown must not pass */
		"{\"version\":\"v\",\"account_min_age_days\":-1}",
		"{\"version\":\"v\",\"cooldown_hours\":[]}",
		"[1]",
		"{",
	};
	struct p25_policy p;
	struct p25_err err = { 0 };
	char cool[64];
	size_t i;

	assert_int_equal(p25_policy_parse(good, strlen(good), &p, &err), 0);
	assert_string_equal(p.version, "t-1");
	assert_int_equal(p25_policy_action(&p, "dnsbl_pbl"), P25_ACT_DENY);
	assert_int_equal(p25_policy_action(&p, "dnsbl_sbl"), P25_ACT_DENY);
	assert_int_equal(p.monitor_interval_seconds, 60);
	p25_policy_cooldowns(&p, cool, sizeof(cool));
	assert_string_equal(cool, "{2,48}");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(p25_policy_parse(bad[i], strlen(bad[i]), &p, &err), -1);
		assert_int_equal(err.status, 422);
		p25_err_clear(&err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_decisions),
		cmocka_unit_test(test_reason_codes_and_message),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
